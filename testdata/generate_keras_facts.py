#!/usr/bin/env python3
"""Measures how real tf-keras 2.21 and Keras 3.15 name, order and lay out the weights of
each built-in layer class, and writes the facts to testdata/keras_facts.json.

Run from the repository root in a venv with tests/interop/requirements.txt installed
(tensorflow-cpu, tf-keras, keras 3, h5py):

    python testdata/generate_keras_facts.py

Nothing here is a fixture for byte-exact tests: the JSON holds names, paths and shapes only
(no tensor values), so that the Rust tables in src/keras/ can be checked against what Keras
itself writes. docs/keras.md explains the facts.

Schema of keras_facts.json (every list is in the order described):

    {
      "schema": "ckptconv-keras-facts/1",
      "generated_by": "testdata/generate_keras_facts.py",
      "versions": {"tensorflow", "tf_keras", "keras", "h5py"},
      "tf_keras": {CASE: TFK_CASE},        # CASE names a model, e.g. "Dense", "GRU",
      "keras3":   {CASE: K3_CASE},         #   "GRU_reset_after_false", "Nested_Sequential"
      "state":    {NAME: {...}}            # non-weight state: see the state_* functions
    }

    TFK_CASE = {
      "description": str,                  # the model, in Keras terms
      "layers": [                          # model.layers, every layer (weightless too)
        {"name", "class",
         "weights": [name, ...],           # layer.weights (== get_weights() order)
         "h5_order": [name, ...]}          # only where it differs: trainable then
      ],                                   #   non-trainable, the order h5 files use
      "model_weights": [{"name", "shape", "trainable", "dtype"}],  # model.weights order;
                                           #   dtype only where it is not float32
      "save_weights_h5": {                 # model.save_weights("x.h5")
        "layer_names": [...],              # root attr
        "weight_names": {layer: [...]},    # each layer group's attr, in order
        "top_level_model_weights": [...],  # weight_names of that group
        "root_groups": [...]               # h5 groups at the root
      },
      "weights_h5": WEIGHTS_H5,            # model.save_weights("x.weights.h5")
      "save_weights_tf": [                 # model.save_weights("x") (TF format), in
        {"weight", "key", "full_name"}],   #   model_weights order; key = checkpoint key,
                                           #   full_name = the object graph's full_name
      "save_weights_tf_root_children": [...],   # object graph root's child names
      "tf_train_checkpoint": [{"weight", "key", "full_name"}],  # tf.train.Checkpoint(
      "tf_train_checkpoint_other": [{"key", "full_name", "shape"}],  # model=m) (some cases)
      "tf1_graph": {                       # the same layers built in a tf.Graph (TF1)
        "global_variables": [{"name", "shape"}],  # creation order
        "layer_weights": [[name, ...], ...]       # only where it differs from the above
      }
    }

    K3_CASE = {
      "description": str,
      "layers": [{"name", "class", "weights": [path, ...]}],   # model.layers, layer.weights
      "model_weights": [{"path", "name", "shape", "trainable", "dtype"}],
      "weights_h5": WEIGHTS_H5,            # model.save_weights("x.weights.h5")
      "legacy_h5": {                       # model.save("x.h5")
        "layer_names", "weight_names": {layer: [...]}, "model_weights_groups"},
      "tf_train_checkpoint": [...], "tf_train_checkpoint_other": [...]   # as above
    }

    WEIGHTS_H5 = {
      "datasets": [{"weight", "path"}],    # model_weights order; path = h5 dataset
      "other_datasets": [{"path", "shape"}],   # datasets matched to no model weight
      "vars_groups": [{"path", "name", "n"}]   # every `vars` group (h5py visit order),
    }                                          #   its `name` attr (null: none), datasets

A matched entry has no shape: it holds the weight's value, so its shape is the weight's
(see model_weights). A key ending in "_other" lists what matched no weight. Cases marked
only="tf_keras" (CuDNNLSTM/CuDNNGRU) have no "keras3" entry.

    "state": {   # small Dense models, compiled with Adam and metrics=["mae"], one fit step
      "tf_keras_compiled_adam", "tf_keras_compiled_legacy_adam": {
        "optimizer_variables", "save_weights_tf", "tf_train_checkpoint_model_optimizer",
        "save_h5_root_groups", "save_h5_root_attrs", "save_h5_optimizer_weight_names",
        "save_h5_optimizer_datasets", "saved_model_variables"},   # every key, unfiltered
      "keras3_compiled_adam": {            # with a Dropout(seed=1): seed generator state
        "model_weights", "optimizer_variables", "dropout_seed_generator_state",
        "weights_h5_datasets", "weights_h5_vars_groups", "legacy_h5_root_groups",
        "legacy_h5_optimizer_weight_names", "legacy_h5_optimizer_datasets",
        "export_variables",                # model.export(): `_all_variables/N` (unstable
        "tf_train_checkpoint_model_optimizer"},  # index, so N) and `variables/<i>`
      "tf1_saver_adam_global_step": {"global_variables", "checkpoint_keys"},
      "tf1_graph_model_built_twice": {     # the Keras 2.0 `conv2d_1_1/kernel:0` effect
        "weights_first_build", "weights_second_build", "h5_layer_names",
        "h5_weight_names", "h5_datasets"}
    }
    Checkpoint key lists here are {"key", "shape", "full_name"} in list_variables order.
A step that raises records {"error": "..."} instead. Weight-to-key mapping is by value:
every weight is first set to distinct random values (ints: distinct constants).
"""
import json
import os
import shutil
import sys
import tempfile
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ["KERAS_BACKEND"] = "tensorflow"

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.core.protobuf import trackable_object_graph_pb2  # noqa: E402

import tf_keras  # noqa: E402
import keras  # noqa: E402

warnings.filterwarnings("ignore")
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "keras_facts.json")
TMP = tempfile.mkdtemp(prefix="keras_facts_")
RNG = np.random.default_rng(1234)
OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"


# ---------------------------------------------------------------------------- helpers


def tmp(name):
    path = os.path.join(TMP, name)
    if os.path.isdir(path):
        shutil.rmtree(path)
    elif os.path.exists(path):
        os.remove(path)
    return path


def shape_of(x):
    return [int(d) for d in x.shape]


def dec(x):
    return x.decode("utf8") if isinstance(x, bytes) else str(x)


def attr_list(group, name):
    """Keras' save_attributes_to_hdf5_group splits long lists into name0, name1, ..."""
    if name in group.attrs:
        return [dec(x) for x in group.attrs[name]]
    out, i = [], 0
    while f"{name}{i}" in group.attrs:
        out += [dec(x) for x in group.attrs[f"{name}{i}"]]
        i += 1
    return out


def fill_distinct(variables):
    """Gives every variable values no other variable has, so files map back by value."""
    for i, v in enumerate(variables):
        dt = np.dtype(v.dtype.as_numpy_dtype if hasattr(v.dtype, "as_numpy_dtype") else v.dtype)
        shape = shape_of(v)
        if dt.kind in "iu":
            val = np.full(shape, 1000 + i, dtype=dt)
        else:
            val = RNG.standard_normal(shape).astype(dt) + np.asarray(i, dtype=dt)
        v.assign(val)


def weight_entry(entry, w):
    """entry + shape, trainable, and dtype where it is not float32."""
    entry = {**entry, "shape": shape_of(w), "trainable": bool(w.trainable)}
    dtype = tf.as_dtype(w.dtype).name
    if dtype != "float32":
        entry["dtype"] = dtype
    return entry


def snapshot(variables):
    return [np.array(v.numpy()) for v in variables]


def match(value, snaps):
    """Index of the snapshot equal to value, else None."""
    value = np.asarray(value)
    for i, s in enumerate(snaps):
        if s.shape == value.shape and s.dtype == value.dtype and np.array_equal(s, value):
            return i
    return None


def object_graph_full_names(path):
    """checkpoint_key -> full_name from the TF2 object graph, if there is one."""
    reader = tf.train.load_checkpoint(path)
    if not reader.has_tensor(OBJECT_GRAPH_KEY):
        return {}
    graph = trackable_object_graph_pb2.TrackableObjectGraph()
    graph.ParseFromString(reader.get_tensor(OBJECT_GRAPH_KEY))
    out = {}
    for node in graph.nodes:
        for attr in node.attributes:
            out[attr.checkpoint_key] = attr.full_name
    return out


def object_graph_root_children(path):
    """Local names of the object graph root's children, in the graph's order."""
    reader = tf.train.load_checkpoint(path)
    graph = trackable_object_graph_pb2.TrackableObjectGraph()
    graph.ParseFromString(reader.get_tensor(OBJECT_GRAPH_KEY))
    return [c.local_name for c in graph.nodes[0].children]


def checkpoint_listing(path, names, snaps, skip_optimizer=True):
    """Every checkpoint key, mapped to the weight whose value it holds, in weight order."""
    reader = tf.train.load_checkpoint(path)
    full = object_graph_full_names(path)
    matched, other = [], []
    for key, shape in tf.train.list_variables(path):
        if key == OBJECT_GRAPH_KEY:
            continue
        if skip_optimizer and (".OPTIMIZER_SLOT" in key or key.startswith("optimizer/")):
            continue
        i = match(reader.get_tensor(key), snaps)
        entry = {"key": key}
        if key in full:
            entry["full_name"] = full[key]
        if i is None:
            other.append({**entry, "shape": list(shape)})
        else:  # same value, so same shape as the weight: see model_weights
            matched.append((i, {"weight": names[i], **entry}))
    matched.sort(key=lambda t: t[0])
    return [e for _, e in matched], other


def guarded(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except Exception as e:  # record what Keras refuses, keep going
        return {"error": f"{type(e).__name__}: {str(e).splitlines()[0][:300]}"}


def h5_walk(path):
    """(datasets, vars groups) of an HDF5 file in h5py's visit order."""
    datasets, groups = [], []
    with h5py.File(path, "r") as f:

        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                datasets.append((name, obj[()]))
            elif name == "vars" or name.endswith("/vars"):
                groups.append(
                    {
                        "path": name,
                        "name": dec(obj.attrs["name"]) if "name" in obj.attrs else None,
                        "n": len(obj.keys()),
                    }
                )

        f.visititems(visit)
    return datasets, groups


# ---------------------------------------------------------------------------- cases
#
# A case: Case(key, description, input shapes, make(L, lib) -> layers, apply, kind).
# L is tf_keras.layers or keras.layers, lib is tf_keras or keras. kind:
#   "functional": lib.Model(inputs, apply(layers, inputs)) (apply defaults to chaining)
#   "sequential": lib.Sequential([lib.Input(shape)] + layers)
#   "subclassed": make returns the model object itself (see subclassed_make)
# Names are auto-generated (the session is cleared first) unless the case sets one.
# Every model is run once on zeros, so that lazily built sublayers (an activation layer
# object) have their variables.


class Case:
    def __init__(self, key, desc, shapes, make, apply=None, kind="functional",
                 only=None, forward=True):
        self.key, self.desc, self.shapes, self.make = key, desc, shapes, make
        self.apply = apply or chain
        self.kind = kind
        self.only = only  # "tf_keras": a class Keras 3 does not have
        self.forward = forward  # False: the layer has no CPU kernel, build only


def chain(layers, inputs):
    x = inputs[0]
    for layer in layers:
        x = layer(x)
    return x


def mha_apply(layers, inputs):
    q, v = inputs
    return layers[0](q, v)


def normalization_make(L, lib):
    layer = L.Normalization()
    layer.adapt(np.arange(12, dtype="float32").reshape(3, 4))
    return [layer]


def nested_sequential_make(L, lib):
    inner = lib.Sequential([L.Dense(3), L.BatchNormalization(), L.Dense(3)], name="inner")
    return [L.Dense(4), inner, L.Dense(2)]


def nested_functional_make(L, lib):
    i = lib.Input((3,))
    h = L.Dense(3, name="enc_dense")(i)
    h = L.LayerNormalization()(h)
    enc = lib.Model(i, h, name="encoder")
    return [L.Dense(3), enc, L.Dense(2)]


def subclassed_make(L, lib):
    class Net(lib.Model):
        def __init__(self):
            super().__init__()
            self.encoder = L.Dense(3)
            self.blocks = [L.Dense(3), L.BatchNormalization(), L.Dense(2)]
            self.head = L.Dense(1, name="head_layer")

        def call(self, x):
            x = self.encoder(x)
            for b in self.blocks:
                x = b(x)
            return self.head(x)

    return Net()


def cudnn_make(L, lib):
    # TF2's tf-keras still has them (v1 API: tf.compat.v1.keras.layers.CuDNNLSTM). They
    # build and save on a CPU; only running them needs a GPU.
    from tf_keras.src.layers.rnn.cudnn_gru import CuDNNGRU
    from tf_keras.src.layers.rnn.cudnn_lstm import CuDNNLSTM

    return [CuDNNLSTM(3, return_sequences=True), CuDNNGRU(2)]


def mk(*fns):
    return lambda L, lib: [f(L) for f in fns]


CASES = [
    Case("Dense", "Dense(3), Dense(3), Dense(2, name='head') on (4,)", [(4,)],
         mk(lambda L: L.Dense(3), lambda L: L.Dense(3), lambda L: L.Dense(2, name="head"))),
    Case("Dense_no_bias", "Dense(3, use_bias=False) on (4,)", [(4,)],
         mk(lambda L: L.Dense(3, use_bias=False))),
    Case("EinsumDense", "EinsumDense('ab,bc->ac', 3, bias_axes='c'), then one without bias",
         [(4,)],
         mk(lambda L: L.EinsumDense("ab,bc->ac", output_shape=3, bias_axes="c"),
            lambda L: L.EinsumDense("ab,bc->ac", output_shape=2))),
    Case("Conv1D", "Conv1D(3, 3), Conv1D(2, 1, name='c') on (8, 2)", [(8, 2)],
         mk(lambda L: L.Conv1D(3, 3), lambda L: L.Conv1D(2, 1, name="c"))),
    Case("Conv2D", "Conv2D(3, 3), Conv2D(2, 1) on (6, 6, 2)", [(6, 6, 2)],
         mk(lambda L: L.Conv2D(3, 3), lambda L: L.Conv2D(2, 1))),
    Case("Conv3D", "Conv3D(2, 2) on (4, 4, 4, 1)", [(4, 4, 4, 1)],
         mk(lambda L: L.Conv3D(2, 2))),
    Case("Conv1DTranspose", "Conv1DTranspose(3, 3) on (5, 2)", [(5, 2)],
         mk(lambda L: L.Conv1DTranspose(3, 3))),
    Case("Conv2DTranspose", "Conv2DTranspose(3, 3) on (4, 4, 2)", [(4, 4, 2)],
         mk(lambda L: L.Conv2DTranspose(3, 3))),
    Case("Conv3DTranspose", "Conv3DTranspose(2, 2) on (3, 3, 3, 1)", [(3, 3, 3, 1)],
         mk(lambda L: L.Conv3DTranspose(2, 2))),
    Case("DepthwiseConv1D", "DepthwiseConv1D(3, depth_multiplier=2) on (8, 2)", [(8, 2)],
         mk(lambda L: L.DepthwiseConv1D(3, depth_multiplier=2))),
    Case("DepthwiseConv2D", "DepthwiseConv2D(3, depth_multiplier=2) on (6, 6, 2)", [(6, 6, 2)],
         mk(lambda L: L.DepthwiseConv2D(3, depth_multiplier=2))),
    Case("SeparableConv1D", "SeparableConv1D(3, 3) on (8, 2)", [(8, 2)],
         mk(lambda L: L.SeparableConv1D(3, 3))),
    Case("SeparableConv2D", "SeparableConv2D(3, 3) on (6, 6, 2)", [(6, 6, 2)],
         mk(lambda L: L.SeparableConv2D(3, 3))),
    Case("BatchNormalization", "BatchNormalization() twice on (4,)", [(4,)],
         mk(lambda L: L.BatchNormalization(), lambda L: L.BatchNormalization())),
    Case("BatchNormalization_center_false", "BatchNormalization(center=False) on (4,)", [(4,)],
         mk(lambda L: L.BatchNormalization(center=False))),
    Case("BatchNormalization_scale_false", "BatchNormalization(scale=False) on (4,)", [(4,)],
         mk(lambda L: L.BatchNormalization(scale=False))),
    Case("LayerNormalization", "LayerNormalization() on (4,)", [(4,)],
         mk(lambda L: L.LayerNormalization())),
    Case("LayerNormalization_center_false", "LayerNormalization(center=False) on (4,)",
         [(4,)], mk(lambda L: L.LayerNormalization(center=False))),
    Case("GroupNormalization", "GroupNormalization(groups=2) on (3, 4)", [(3, 4)],
         mk(lambda L: L.GroupNormalization(groups=2))),
    Case("Embedding", "Embedding(10, 3) on int (5,)", [((5,), "int32")],
         mk(lambda L: L.Embedding(10, 3))),
    Case("LSTM", "LSTM(3, return_sequences=True), LSTM(2, name='enc') on (5, 4)", [(5, 4)],
         mk(lambda L: L.LSTM(3, return_sequences=True), lambda L: L.LSTM(2, name="enc"))),
    Case("GRU", "GRU(3) (reset_after=True) on (5, 4)", [(5, 4)],
         mk(lambda L: L.GRU(3))),
    Case("GRU_reset_after_false", "GRU(3, reset_after=False) on (5, 4)", [(5, 4)],
         mk(lambda L: L.GRU(3, reset_after=False))),
    Case("SimpleRNN", "SimpleRNN(3) on (5, 4)", [(5, 4)],
         mk(lambda L: L.SimpleRNN(3))),
    Case("ConvLSTM2D", "ConvLSTM2D(2, 3) on (3, 5, 5, 1)", [(3, 5, 5, 1)],
         mk(lambda L: L.ConvLSTM2D(2, 3))),
    Case("Bidirectional_LSTM", "Bidirectional(LSTM(3)) on (5, 4)", [(5, 4)],
         mk(lambda L: L.Bidirectional(L.LSTM(3)))),
    Case("Bidirectional_GRU", "Bidirectional(GRU(3, name='g'), name='bi') on (5, 4)", [(5, 4)],
         mk(lambda L: L.Bidirectional(L.GRU(3, name="g"), name="bi"))),
    Case("TimeDistributed_Dense", "TimeDistributed(Dense(3)) on (5, 4)", [(5, 4)],
         mk(lambda L: L.TimeDistributed(L.Dense(3)))),
    Case("TimeDistributed_Conv2D", "TimeDistributed(Conv2D(2, 3, name='frame_conv')) on "
         "(3, 5, 5, 1)", [(3, 5, 5, 1)],
         mk(lambda L: L.TimeDistributed(L.Conv2D(2, 3, name="frame_conv")))),
    Case("MultiHeadAttention",
         "MultiHeadAttention(num_heads=2, key_dim=3)(q, v), q (5, 4), v (6, 4)",
         [(5, 4), (6, 4)],
         mk(lambda L: L.MultiHeadAttention(num_heads=2, key_dim=3)), mha_apply),
    Case("PReLU", "PReLU() on (4,)", [(4,)],
         mk(lambda L: L.PReLU())),
    Case("Dense_activation_PReLU", "Dense(3, activation=PReLU()) on (4,)", [(4,)],
         mk(lambda L: L.Dense(3, activation=L.PReLU()))),
    Case("Dense_activation_LeakyReLU", "Dense(3, activation=LeakyReLU()) on (4,)", [(4,)],
         mk(lambda L: L.Dense(3, activation=L.LeakyReLU()))),
    Case("Normalization", "Normalization() adapted on 3x4 data, on (4,)", [(4,)],
         normalization_make),
    Case("Normalization_not_adapted", "Normalization() built by the model call, on (4,)",
         [(4,)], mk(lambda L: L.Normalization())),
    Case("Weightless_counting",
         "Activation, Dense(3), Dropout(0.5), Activation, Dense(2, name='out'), Flatten on (4,)",
         [(4,)],
         mk(lambda L: L.Activation("relu"), lambda L: L.Dense(3), lambda L: L.Dropout(0.5),
            lambda L: L.Activation("relu"), lambda L: L.Dense(2, name="out"),
            lambda L: L.Flatten())),
    Case("Weightless_same_class",
         "Normalization(mean=0., variance=1.) (no variables), Dense(3), Normalization() "
         "(variables) on (4,)", [(4,)],
         mk(lambda L: L.Normalization(mean=0.0, variance=1.0), lambda L: L.Dense(3),
            lambda L: L.Normalization())),
    Case("Mixed_trainable_order", "Dense(3), BatchNormalization(), Dense(2) on (4,)", [(4,)],
         mk(lambda L: L.Dense(3), lambda L: L.BatchNormalization(), lambda L: L.Dense(2))),
    Case("Sequential_top", "Sequential([Input((4,)), Dense(3), Dropout(0.1), Dense(2)])",
         [(4,)],
         mk(lambda L: L.Dense(3), lambda L: L.Dropout(0.1), lambda L: L.Dense(2)),
         kind="sequential"),
    Case("Nested_Sequential",
         "Dense(4), Sequential([Dense(3), BatchNormalization(), Dense(3)], name='inner'), "
         "Dense(2)", [(4,)], nested_sequential_make),
    Case("Nested_Functional",
         "Dense(3), Model(Dense(3, name='enc_dense'), LayerNormalization(), name='encoder'), "
         "Dense(2)", [(4,)], nested_functional_make),
    Case("Subclassed",
         "Model subclass: self.encoder = Dense(3); self.blocks = [Dense(3), "
         "BatchNormalization(), Dense(2)]; self.head = Dense(1, name='head_layer'); on (4,)",
         [(4,)], subclassed_make, kind="subclassed"),
]

CASES.append(
    Case("CuDNNLSTM_CuDNNGRU", "CuDNNLSTM(3, return_sequences=True), CuDNNGRU(2) on (5, 4); "
         "built, never run", [(5, 4)], cudnn_make, only="tf_keras", forward=False))

TF_TRAIN_CHECKPOINT_CASES = {"Dense", "LSTM", "Bidirectional_LSTM", "TimeDistributed_Dense",
                             "MultiHeadAttention", "Nested_Sequential", "Sequential_top",
                             "Subclassed", "Dense_activation_PReLU"}


def build_model(case, lib):
    lib.backend.clear_session()
    layers = case.make(lib.layers, lib)
    if case.kind == "subclassed":
        model = layers
    elif case.kind == "sequential":
        shape, dtype = spec(case.shapes[0])
        model = lib.Sequential([lib.Input(shape, dtype=dtype)] + layers)
    else:
        inputs = [lib.Input(shape, dtype=dtype) for shape, dtype in map(spec, case.shapes)]
        outputs = case.apply(layers, inputs)
        model = lib.Model(inputs[0] if len(inputs) == 1 else inputs, outputs)
    if case.forward:
        zeros = [np.zeros((1,) + shape, dtype=dtype)
                 for shape, dtype in map(spec, case.shapes)]
        model(zeros[0] if len(zeros) == 1 else zeros)
    return model


def spec(s):
    """(shape, dtype) of an input entry: a shape tuple, or (shape, dtype)."""
    if len(s) == 2 and isinstance(s[0], tuple) and isinstance(s[1], str):
        return s
    return s, "float32"


# ---------------------------------------------------------------------------- tf-keras


def tfk_h5(model):
    path = tmp("tfk.h5")
    model.save_weights(path)
    with h5py.File(path, "r") as f:
        names = attr_list(f, "layer_names")
        out = {"layer_names": names, "weight_names": {}}
        for n in names:
            out["weight_names"][n] = attr_list(f[n], "weight_names")
        if "top_level_model_weights" in f:
            out["top_level_model_weights"] = attr_list(f["top_level_model_weights"],
                                                       "weight_names")
        out["root_groups"] = sorted(f.keys())
    return out


def tfk_tf_format(model, names, snaps):
    path = tmp("tfk_ckpt")
    os.makedirs(path)
    model.save_weights(os.path.join(path, "ckpt"))
    matched, other = checkpoint_listing(os.path.join(path, "ckpt"), names, snaps)
    return matched, other, object_graph_root_children(os.path.join(path, "ckpt"))


def train_checkpoint(model, names, snaps):
    path = tmp("trainckpt")
    saved = tf.train.Checkpoint(model=model).save(os.path.join(path, "ckpt"))
    return checkpoint_listing(saved, names, snaps)


def tfk_graph(case):
    with tf.Graph().as_default():
        L = tf_keras.layers
        layers = case.make(L, tf_keras)
        inputs = [tf.compat.v1.placeholder(dtype, (None,) + shape)
                  for shape, dtype in map(spec, case.shapes)]
        if case.kind == "subclassed":
            layers(inputs[0])
            layers = [layers]
        else:
            case.apply(layers, inputs)
        out = {"global_variables": [{"name": v.name, "shape": shape_of(v)}
                                    for v in tf.compat.v1.global_variables()]}
        per_layer = [[w.name for w in layer.weights] for layer in layers]
        if sum(per_layer, []) != [v["name"] for v in out["global_variables"]]:
            out["layer_weights"] = per_layer
        return out


def put_listing(out, field, res):
    """Stores (matched, other[, root children]) or an error under field, field_other..."""
    if isinstance(res, dict):
        out[field] = res
        return
    out[field], other = res[0], res[1]
    if other:
        out[field + "_other"] = other
    if len(res) > 2:
        out[field + "_root_children"] = res[2]


def tfk_case(case):
    model = build_model(case, tf_keras)
    weights = model.weights
    fill_distinct(weights)
    snaps = snapshot(weights)
    names = [w.name for w in weights]
    layers = []
    for layer in model.layers:
        entry = {"name": layer.name, "class": layer.__class__.__name__,
                 "weights": [w.name for w in layer.weights]}
        legacy = [w.name for w in layer.trainable_weights + layer.non_trainable_weights]
        if legacy != entry["weights"]:
            entry["h5_order"] = legacy
        layers.append(entry)
    out = {
        "description": case.desc,
        "layers": layers,
        "model_weights": [weight_entry({"name": w.name}, w) for w in weights],
        "save_weights_h5": guarded(tfk_h5, model),
        "weights_h5": guarded(weights_h5, model, names, snaps),
    }
    put_listing(out, "save_weights_tf", guarded(tfk_tf_format, model, names, snaps))
    if case.key in TF_TRAIN_CHECKPOINT_CASES:
        put_listing(out, "tf_train_checkpoint", guarded(train_checkpoint, model, names, snaps))
    out["tf1_graph"] = guarded(tfk_graph, case)
    return out


# ---------------------------------------------------------------------------- Keras 3


def weights_h5(model, paths, snaps):
    path = tmp("x.weights.h5")
    model.save_weights(path)
    datasets, groups = h5_walk(path)
    matched, other = [], []
    for name, value in datasets:
        i = match(value, snaps)
        if i is None:
            other.append({"path": name, "shape": list(np.shape(value))})
        else:
            matched.append((i, {"weight": paths[i], "path": name}))
    matched.sort(key=lambda t: t[0])
    return {"datasets": [e for _, e in matched], "other_datasets": other,
            "vars_groups": groups}


def k3_legacy_h5(model):
    path = tmp("k3_legacy.h5")
    model.save(path)
    with h5py.File(path, "r") as f:
        g = f["model_weights"]
        names = attr_list(g, "layer_names")
        out = {"layer_names": names, "weight_names": {}}
        for n in names:
            out["weight_names"][n] = attr_list(g[n], "weight_names")
        out["model_weights_groups"] = sorted(g.keys())
    return out


def k3_case(case):
    model = build_model(case, keras)
    weights = model.weights
    fill_distinct(weights)
    snaps = snapshot(weights)
    paths = [w.path for w in weights]
    out = {
        "description": case.desc,
        "layers": [{"name": layer.name, "class": layer.__class__.__name__,
                    "weights": [w.path for w in layer.weights]} for layer in model.layers],
        "model_weights": [weight_entry({"path": w.path, "name": w.name}, w) for w in weights],
        "weights_h5": guarded(weights_h5, model, paths, snaps),
        "legacy_h5": guarded(k3_legacy_h5, model),
    }
    if case.key in TF_TRAIN_CHECKPOINT_CASES:
        put_listing(out, "tf_train_checkpoint", guarded(train_checkpoint, model, paths, snaps))
    return out


# ---------------------------------------------------------------------------- state


def keys_of(path):
    """Every checkpoint key (object graph excluded) with shape and full_name."""
    full = object_graph_full_names(path)
    out = []
    for key, shape in tf.train.list_variables(path):
        if key == OBJECT_GRAPH_KEY:
            continue
        entry = {"key": key, "shape": list(shape)}
        if key in full:
            entry["full_name"] = full[key]
        out.append(entry)
    return out


def h5_datasets(path, under=""):
    out = []
    with h5py.File(path, "r") as f:
        root = f[under] if under else f

        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                out.append({"path": name, "shape": list(obj.shape)})

        root.visititems(visit)
    return out


def h5_weight_names(path, group):
    with h5py.File(path, "r") as f:
        return attr_list(f[group], "weight_names")


def fit_once(model, lib):
    model.compile(optimizer=lib.optimizers.Adam(1e-3), loss="mse", metrics=["mae"])
    x = np.ones((4, 4), dtype="float32")
    y = np.ones((4, 2), dtype="float32")
    model.fit(x, y, epochs=1, batch_size=4, verbose=0)


def small_model(lib, dropout=False):
    lib.backend.clear_session()
    i = lib.Input((4,))
    h = lib.layers.Dense(3)(i)
    if dropout:
        h = lib.layers.Dropout(0.5, seed=1)(h)
    return lib.Model(i, lib.layers.Dense(2)(h))


def state_tfk_compiled(legacy_optimizer):
    """tf-keras Dense(3)->Dense(2), compiled with Adam and metrics=['mae'], one fit step."""
    tf_keras.backend.clear_session()
    model = small_model(tf_keras)
    opt = (tf_keras.optimizers.legacy.Adam(1e-3) if legacy_optimizer
           else tf_keras.optimizers.Adam(1e-3))
    model.compile(optimizer=opt, loss="mse", metrics=["mae"])
    model.fit(np.ones((4, 4), "float32"), np.ones((4, 2), "float32"), epochs=1,
              batch_size=4, verbose=0)
    out = {"optimizer": type(opt).__module__ + "." + type(opt).__name__,
           "optimizer_variables": [v.name for v in opt.variables()]
           if callable(getattr(opt, "variables", None)) else
           [v.name for v in opt.variables]}
    d = tmp("tfk_state")
    os.makedirs(d)
    model.save_weights(os.path.join(d, "ckpt"))
    out["save_weights_tf"] = keys_of(os.path.join(d, "ckpt"))
    saved = tf.train.Checkpoint(model=model, optimizer=opt).save(os.path.join(d, "tc"))
    out["tf_train_checkpoint_model_optimizer"] = keys_of(saved)
    model.save(os.path.join(d, "full.h5"))
    with h5py.File(os.path.join(d, "full.h5"), "r") as f:
        out["save_h5_root_groups"] = sorted(f.keys())
        out["save_h5_root_attrs"] = sorted(f.attrs.keys())
    out["save_h5_optimizer_weight_names"] = h5_weight_names(os.path.join(d, "full.h5"),
                                                            "optimizer_weights")
    out["save_h5_optimizer_datasets"] = h5_datasets(os.path.join(d, "full.h5"),
                                                    "optimizer_weights")
    model.save(os.path.join(d, "sm"), save_format="tf")
    out["saved_model_variables"] = keys_of(os.path.join(d, "sm", "variables", "variables"))
    return out


def state_k3_compiled():
    """Keras 3 Dense(3)->Dropout(seed=1)->Dense(2), Adam, metrics=['mae'], one fit step."""
    model = small_model(keras, dropout=True)
    fit_once(model, keras)
    opt = model.optimizer
    out = {
        "model_weights": [w.path for w in model.weights],
        "optimizer_variables": [{"path": v.path, "shape": shape_of(v)} for v in opt.variables],
        "dropout_seed_generator_state": [
            {"path": v.path, "shape": shape_of(v), "dtype": v.dtype}
            for layer in model.layers if isinstance(layer, keras.layers.Dropout)
            for v in [layer.seed_generator.state]],
    }
    d = tmp("k3_state")
    os.makedirs(d)
    model.save_weights(os.path.join(d, "m.weights.h5"))
    out["weights_h5_datasets"] = h5_datasets(os.path.join(d, "m.weights.h5"))
    _, groups = h5_walk(os.path.join(d, "m.weights.h5"))
    out["weights_h5_vars_groups"] = groups
    model.save(os.path.join(d, "legacy.h5"))
    with h5py.File(os.path.join(d, "legacy.h5"), "r") as f:
        out["legacy_h5_root_groups"] = sorted(f.keys())
    out["legacy_h5_optimizer_weight_names"] = h5_weight_names(
        os.path.join(d, "legacy.h5"), "optimizer_weights")
    out["legacy_h5_optimizer_datasets"] = h5_datasets(os.path.join(d, "legacy.h5"),
                                                      "optimizer_weights")
    model.export(os.path.join(d, "export"), format="tf_saved_model", verbose=False)
    # `_all_variables/<i>` follows the traced function's capture order, which changes from
    # run to run: keep those keys with the index replaced by N, sorted by full_name.
    exported = keys_of(os.path.join(d, "export", "variables", "variables"))
    for e in exported:
        if e["key"].startswith("_all_variables/"):
            e["key"] = "_all_variables/N/" + e["key"].split("/", 2)[2]
    exported.sort(key=lambda e: (not e["key"].startswith("_all_variables/"),
                                 e.get("full_name", "") if e["key"].startswith("_all_")
                                 else e["key"]))
    out["export_variables"] = exported
    saved = tf.train.Checkpoint(model=model, optimizer=opt).save(os.path.join(d, "tc"))
    out["tf_train_checkpoint_model_optimizer"] = keys_of(saved)
    return out


def state_tf1_saver():
    """TF1 graph: tf-keras Dense(3) on a placeholder, AdamOptimizer.minimize with
    global_step, tf.compat.v1.train.Saver."""
    d = tmp("tf1")
    os.makedirs(d)
    with tf.Graph().as_default():
        x = tf.compat.v1.placeholder("float32", (None, 4))
        y = tf_keras.layers.Dense(3)(x)
        loss = tf.reduce_mean(tf.square(y))
        gs = tf.compat.v1.train.get_or_create_global_step()
        train = tf.compat.v1.train.AdamOptimizer(1e-3).minimize(loss, global_step=gs)
        saver = tf.compat.v1.train.Saver()
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            sess.run(train, {x: np.ones((2, 4), "float32")})
            path = saver.save(sess, os.path.join(d, "model.ckpt"), global_step=gs)
        names = [v.name for v in tf.compat.v1.global_variables()]
    return {"global_variables": names, "checkpoint_keys": keys_of(path)}


def state_tf1_built_twice():
    """A Keras 2.0-style collision: the same model (layers named conv2d_1 and dense_1, as
    Keras 2.0 auto-named them) built twice in one TF1 graph, then save_weights('x.h5')."""
    from tf_keras.src import backend as K

    path = tmp("twice.h5")
    with tf.Graph().as_default():
        names = []
        for _ in range(2):
            i = tf_keras.Input((4,))
            h = tf_keras.layers.Dense(3, name="conv2d_1")(i)
            model = tf_keras.Model(i, tf_keras.layers.Dense(2, name="dense_1")(h))
            names.append([w.name for w in model.weights])
        K.get_session()
        model.save_weights(path)
    with h5py.File(path, "r") as f:
        layer_names = attr_list(f, "layer_names")
        weight_names = {n: attr_list(f[n], "weight_names") for n in layer_names}
    return {"weights_first_build": names[0], "weights_second_build": names[1],
            "h5_layer_names": layer_names, "h5_weight_names": weight_names,
            "h5_datasets": [d["path"] for d in h5_datasets(path)]}


# ---------------------------------------------------------------------------- main


def compact_json(obj, depth=0):
    """JSON with one line per leaf object or list of scalars, so the file stays small and
    diffs stay readable."""

    def flat(o):
        if isinstance(o, dict):
            return all(not isinstance(v, (dict, list)) or
                       (isinstance(v, list) and all(not isinstance(x, (dict, list)) for x in v))
                       for v in o.values())
        if isinstance(o, list):
            return all(not isinstance(x, (dict, list)) for x in o)
        return True

    if flat(obj):
        return json.dumps(obj)
    pad, inner = " " * depth, " " * (depth + 1)
    if isinstance(obj, dict):
        items = [f"{inner}{json.dumps(k)}: {compact_json(v, depth + 1)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    items = [inner + compact_json(v, depth + 1) for v in obj]
    return "[\n" + ",\n".join(items) + "\n" + pad + "]"



def main():
    t0 = time.time()
    facts = {
        "schema": "ckptconv-keras-facts/1",
        "generated_by": "testdata/generate_keras_facts.py",
        "versions": {"tensorflow": tf.__version__, "tf_keras": tf_keras.__version__,
                     "keras": keras.__version__, "h5py": h5py.__version__},
    }
    facts["tf_keras"] = {c.key: guarded(tfk_case, c) for c in CASES}
    print(f"tf_keras cases: {time.time() - t0:.1f}s", file=sys.stderr)
    facts["keras3"] = {c.key: guarded(k3_case, c) for c in CASES if c.only != "tf_keras"}
    print(f"keras3 cases: {time.time() - t0:.1f}s", file=sys.stderr)
    facts["state"] = {
        "tf_keras_compiled_adam": guarded(state_tfk_compiled, False),
        "tf_keras_compiled_legacy_adam": guarded(state_tfk_compiled, True),
        "keras3_compiled_adam": guarded(state_k3_compiled),
        "tf1_saver_adam_global_step": guarded(state_tf1_saver),
        "tf1_graph_model_built_twice": guarded(state_tf1_built_twice),
    }
    print(f"state: {time.time() - t0:.1f}s", file=sys.stderr)
    with open(OUT, "w") as f:
        f.write(compact_json(facts))
        f.write("\n")
    shutil.rmtree(TMP, ignore_errors=True)
    print(f"wrote {OUT} in {time.time() - t0:.1f}s", file=sys.stderr)


if __name__ == "__main__":
    main()
