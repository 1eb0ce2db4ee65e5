"""Frozen GraphDefs written here by TensorFlow, judged by TensorFlow.

Each graph is frozen in a temporary directory (TF1 `convert_variables_to_constants`, TF2
`convert_variables_to_constants_v2`, and a graph of hand-written TensorProtos in every
typed-field form), then:

- `ckptconv inspect --json` lists exactly its Const nodes, in order, with TensorFlow's
  dtypes and shapes, and `ckptconv show`-free reading is checked through the conversions:
- converted to a TF checkpoint, `tf.train.load_checkpoint` returns for every Const the
  bytes `tf.make_ndarray` gives for its `value` (the file parsed with
  `tf.compat.v1.GraphDef`);
- converted to safetensors, the `safetensors` library returns the same bytes (strings and
  complex128, which safetensors cannot hold, are reported as skipped);
- converted to a flat `.h5`, h5py returns the same bytes (strings with NUL bytes skipped).

Also real files from pinned wheels (tests/interop/third_party.py): a SavedModel's
`saved_model.pb` given by path reads as its variables, and an ONNX and two TFLite models
are named as such, not reported as a checkpoint without an index.
"""
import json
import os

import h5py
import ml_dtypes
import numpy as np
import pytest
import tensorflow as tf
from safetensors.numpy import load_file
from tensorflow.core.framework import attr_value_pb2, tensor_pb2, tensor_shape_pb2, types_pb2
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

import third_party as tp
from conftest import inspect_json, run

RNG = np.random.default_rng(16)


def rand(dtype, shape):
    dtype = tf.as_dtype(dtype)
    if dtype == tf.bool:
        return RNG.integers(0, 2, size=shape).astype(bool)
    if dtype.is_complex:
        return (RNG.standard_normal(shape) + 1j * RNG.standard_normal(shape)).astype(dtype.as_numpy_dtype)
    if dtype.is_floating:
        return RNG.standard_normal(shape).astype(np.float32).astype(dtype.as_numpy_dtype)
    info = np.iinfo(dtype.as_numpy_dtype)
    return RNG.integers(info.min, info.max, size=shape, dtype=dtype.as_numpy_dtype, endpoint=True)


def write(graph_def, path):
    with open(path, "wb") as f:
        f.write(graph_def.SerializeToString())
    return str(path)


def frozen_v1(tmp):
    g = tf.Graph()
    with g.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, 8, 8, 3], name="images")
        w = tf.compat.v1.get_variable("conv/weights", initializer=rand(tf.float32, [3, 3, 3, 8]))
        b = tf.compat.v1.get_variable("conv/biases", initializer=rand(tf.float32, [8]))
        h = tf.nn.relu(tf.nn.conv2d(x, w, 2, "SAME") + b)
        mean = tf.compat.v1.get_variable("bn/moving_mean", initializer=rand(tf.float32, [8]), trainable=False)
        h = tf.reshape(h - mean, [-1, 4 * 4 * 8])
        k = tf.compat.v1.get_variable("dense/kernel", initializer=rand(tf.float32, [128, 10]))
        kb = tf.compat.v1.get_variable("dense/bias", initializer=rand(tf.bfloat16, [10]))
        y = tf.identity(tf.matmul(h, k) + tf.cast(kb, tf.float32), name="logits")
        e = tf.compat.v1.get_variable("emb/table", initializer=rand(tf.float16, [7, 3]))
        z = tf.identity(tf.cast(e, tf.float32) * tf.constant(0.5, shape=[7, 3]), name="emb_out")
        names = tf.identity(tf.constant([b"a", b"\x00b", b""]), name="names")
        del y, z, names
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            gd = tf.compat.v1.graph_util.convert_variables_to_constants(
                sess, g.as_graph_def(), ["logits", "emb_out", "names"])
    return write(gd, tmp / "frozen_v1.pb")


def frozen_v2(tmp):
    class Net(tf.Module):
        def __init__(self):
            super().__init__()
            self.w = tf.Variable(rand(tf.float32, [6, 4]))
            self.b = tf.Variable(rand(tf.float64, [4]))
            self.scale = tf.Variable(rand(tf.float16, [4]))

        @tf.function(input_signature=[tf.TensorSpec([None, 6], tf.float32)])
        def __call__(self, x):
            y = tf.matmul(x, self.w) + tf.cast(self.b, tf.float32)
            return y * tf.cast(self.scale, tf.float32)

    net = Net()
    f = convert_variables_to_constants_v2(net.__call__.get_concrete_function())
    return write(f.graph.as_graph_def(), tmp / "frozen_v2.pb")


def typed_fields(tmp):
    """Const nodes whose TensorProtos use typed repeated fields, with splats."""
    g = tf.Graph()
    T = types_pb2

    def const(name, dtype, shape, **fields):
        t = tensor_pb2.TensorProto(dtype=dtype, tensor_shape=tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=s) for s in shape]))
        for k, v in fields.items():
            if isinstance(v, bytes):
                setattr(t, k, v)
            else:
                getattr(t, k).extend(v)
        g.create_op("Const", [], [tf.as_dtype(dtype)], name=name, attrs={
            "value": attr_value_pb2.AttrValue(tensor=t), "dtype": attr_value_pb2.AttrValue(type=dtype)})

    bits = lambda v, d: [int(x) for x in np.array(v, dtype=d).view(np.uint16)]  # noqa: E731
    with g.as_default():
        const("f32", T.DT_FLOAT, [64, 32], float_val=[0.125])
        const("f64", T.DT_DOUBLE, [3, 3], double_val=[1.0, 2.0, -3.5])
        const("f16", T.DT_HALF, [5, 2], half_val=bits([0.5, -2.0], np.float16))
        const("bf16", T.DT_BFLOAT16, [4, 4], half_val=bits([1.5, 1e30, -0.25], ml_dtypes.bfloat16))
        const("i8", T.DT_INT8, [6], int_val=[-128, 127, 3])
        const("i16", T.DT_INT16, [2, 3], int_val=[-32768])
        const("i32", T.DT_INT32, [4], int_val=[1, -1])
        const("i64", T.DT_INT64, [3, 2], int64_val=[2**62, -5])
        const("u8", T.DT_UINT8, [3], int_val=[200])
        const("u16", T.DT_UINT16, [2], int_val=[65535, 7])
        const("u32", T.DT_UINT32, [5], uint32_val=[2**32 - 1, 0])
        const("u64", T.DT_UINT64, [2, 2], uint64_val=[2**64 - 1])
        const("bool", T.DT_BOOL, [7], bool_val=[True, False])
        const("c64", T.DT_COMPLEX64, [4], scomplex_val=[1.0, -1.0, 0.5, 2.0])
        const("c128", T.DT_COMPLEX128, [2], dcomplex_val=[3.0, 4.0])
        const("str", T.DT_STRING, [2, 2], string_val=[b"x", b"yz"])
        const("f8", T.DT_FLOAT8_E4M3FN, [3], float8_val=bytes([0x38, 0x40]))
        const("zeros", T.DT_FLOAT, [2, 5])
        const("scalar", T.DT_INT64, [], int64_val=[99])
        const("empty", T.DT_FLOAT, [0, 4])
    return write(g.as_graph_def(), tmp / "typed.pb")


BUILDERS = {"frozen_v1": frozen_v1, "frozen_v2": frozen_v2, "typed_fields": typed_fields}


def tf_consts(path):
    """Every Const node, as TensorFlow parses the file and make_ndarray reads its value."""
    gd = tf.compat.v1.GraphDef()
    with open(path, "rb") as f:
        gd.ParseFromString(f.read())
    return [(n.name, tf.make_ndarray(n.attr["value"].tensor)) for n in gd.node if n.op == "Const"]


def as_bytes(x):
    return x.encode() if isinstance(x, str) else bytes(x)


def same(got, want, name):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"{name}: shape {got.shape} != {want.shape}"
    if want.dtype.kind in ("O", "S"):
        assert [as_bytes(x) for x in got.reshape(-1)] == [as_bytes(x) for x in want.reshape(-1)], name
        return
    assert np.ascontiguousarray(got).tobytes() == np.ascontiguousarray(want).tobytes(), f"{name}: bytes differ"


@pytest.fixture(params=sorted(BUILDERS))
def graph(request, tmp_path):
    path = BUILDERS[request.param](tmp_path)
    return path, tf_consts(path)


def test_inspect_lists_every_const(graph):
    path, consts = graph
    doc = inspect_json(path)
    assert doc["format"] == "tf-graphdef"
    got = [(t["name"], t["dtype"], t["shape"]) for t in doc["tensors"]]
    want = [(n, tf.as_dtype(v.dtype).name if v.dtype.kind != "O" else "string", list(v.shape)) for n, v in consts]
    assert got == want
    assert run("verify", path).returncode == 0


def test_checkpoint_reads_back_bit_exact(graph, tmp_path):
    path, consts = graph
    out = tmp_path / "ckpt" / "model"
    run("convert", path, "-o", out, "--no-progress", check=0)
    reader = tf.train.load_checkpoint(str(out))
    assert sorted(reader.get_variable_to_shape_map()) == sorted(n for n, _ in consts)
    for name, want in consts:
        same(reader.get_tensor(name), want, name)


def test_safetensors_reads_back_bit_exact(graph, tmp_path):
    path, consts = graph
    out = tmp_path / "g.safetensors"
    p = run("convert", path, "-o", out, "--no-progress", "--json", check=0)
    skipped = {s["name"] for s in json.loads(p.stdout.splitlines()[-1])["skipped"]}
    # The safetensors library's numpy loader has no float8; read those raw from its header.
    with open(out, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
        data = f.read()
    numpy_ok = load_file(str(out)) if not any(
        v.get("dtype", "").startswith("F8") for v in header.values() if isinstance(v, dict)) else {}
    for name, want in consts:
        if want.dtype.kind == "O" or want.dtype == np.complex128:
            assert name in skipped and name not in header, name
            continue
        begin, end = header[name]["data_offsets"]
        assert header[name]["shape"] == list(want.shape), name
        assert data[begin:end] == np.ascontiguousarray(want).tobytes(), f"{name}: bytes differ"
        if name in numpy_ok:
            got = numpy_ok[name]
            same(got.view(want.dtype) if got.dtype != want.dtype else got, want, name)


def test_flat_h5_reads_back_bit_exact(graph, tmp_path):
    path, consts = graph
    out = tmp_path / "g.h5"
    p = run("convert", path, "-o", out, "--layout", "flat", "--no-progress", "--json", check=0)
    skipped = {s["name"] for s in json.loads(p.stdout.splitlines()[-1])["skipped"]}
    with h5py.File(out, "r") as f:
        for name, want in consts:
            if name in skipped:
                assert want.dtype.kind == "O" and any(b"\x00" in as_bytes(x) for x in want.reshape(-1)), name
                continue
            got = f[name][()]
            if want.dtype.kind == "O":
                same(np.asarray(got, dtype=object), want, name)
            else:
                # Opaque types (bfloat16, float8) read as raw bytes.
                same(np.asarray(got).view(want.dtype).reshape(want.shape), want, name)


# ------------------------------------------------------------------ real files

def test_real_saved_model_pb_reads_its_variables():
    sm = tp.member("basic-pitch", "basic_pitch/saved_models/icassp_2022/nmp")
    by_dir = inspect_json(sm)
    by_pb = inspect_json(os.path.join(sm, "saved_model.pb"))
    assert by_pb["tensors"] == by_dir["tensors"]
    assert by_pb["path"].endswith("variables/variables")


@pytest.mark.parametrize("pkg, inner, needle", [
    ("basic-pitch", "basic_pitch/saved_models/icassp_2022/nmp.onnx", "an ONNX model"),
    ("basic-pitch", "basic_pitch/saved_models/icassp_2022/nmp.tflite", "TensorFlow Lite"),
    ("fer", "fer/data/emotion_model_quantized.tflite", "TensorFlow Lite"),
])
def test_real_models_of_other_formats_are_named(pkg, inner, needle):
    path = tp.member(pkg, inner)
    p = run("inspect", path)
    assert p.returncode == 1, p.stderr
    assert needle in p.stderr, p.stderr
    assert ".index" not in p.stderr, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr


# ------------------------------------------------------------------ a .meta beside a TF1 checkpoint

def test_meta_graph_trainable_split_and_missing_variables(tmp_path):
    """`summary` takes trainable / non-trainable from the graph's collections, `inspect`
    lists the variables the Saver was not given."""
    g = tf.Graph()
    with g.as_default():
        get = tf.compat.v1.get_variable
        get("conv/kernel", initializer=rand(tf.float32, [3, 3, 2, 5]))
        get("conv/bias", initializer=rand(tf.float32, [5]))
        get("frozen/kernel", initializer=rand(tf.float32, [5, 4]), trainable=False)
        get("stats/mean", initializer=rand(tf.float32, [4]), trainable=False)
        get("big", shape=[12, 3], initializer=tf.compat.v1.zeros_initializer(),
            partitioner=tf.compat.v1.fixed_size_partitioner(3))
        left_out = [get("aux/a", initializer=rand(tf.float32, [2])),
                    get("aux/b", initializer=rand(tf.float32, [3]), trainable=False)]
        tf.compat.v1.train.get_or_create_global_step()
        saved = [v for v in tf.compat.v1.global_variables() if all(v is not x for x in left_out)]
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            prefix = tf.compat.v1.train.Saver(var_list=saved).save(sess, str(tmp_path / "model.ckpt"))
        trainable = {v.op.name.split("/part_")[0]: int(np.prod(v.shape))
                     for v in tf.compat.v1.trainable_variables() if all(v is not x for x in left_out)}
    sizes = {n: int(np.prod(s)) for n, s in tf.train.list_variables(prefix)}
    want_trainable = sum(sizes[n] for n in trainable)
    want_non = sum(s for n, s in sizes.items() if n not in trainable and n != "global_step")
    doc = json.loads(run("summary", "--json", prefix, check=0).stdout)
    assert (doc["trainable_params"], doc["non_trainable_params"]) == (want_trainable, want_non)
    assert inspect_json(prefix)["graph_only_variables"] == ["aux/a", "aux/b"]
