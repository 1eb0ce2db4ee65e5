#!/usr/bin/env python3
"""Writes the frozen-graph and `.meta` fixtures in testdata/tf/ with real TensorFlow.

Run from the repository root in a venv with `tensorflow-cpu==2.21.0`:

    python testdata/generate_tf_graph.py

- `tf/frozen_v1/graph.pb`: a TF1 graph (conv, batch-norm-like and dense variables of
  several dtypes) frozen with `tf.compat.v1.graph_util.convert_variables_to_constants`,
  plus constants in every TensorProto form: `tensor_content`, typed repeated fields
  (`float_val`, `half_val` for float16 and bfloat16, `int_val`, `int64_val`, `bool_val`,
  `string_val`, `scomplex_val`, `dcomplex_val`, `uint32_val`, `uint64_val`, `float8_val`),
  splats (fewer values than elements), strings, a scalar and an empty tensor.
- `tf/frozen_v2/graph.pb`: a TF2 `tf.Module` frozen with `convert_variables_to_constants_v2`
  (its Const nodes are named after the reads that captured the variables).
- `tf/tf1_meta/`: a TF1 Saver checkpoint and its `.meta` graph with trainable and
  non-trainable variables, a partitioned one, and one the Saver was not given.

Each directory gets an `expected.json`. For frozen graphs, `variables` lists every Const
node in file order with what TensorFlow reads: the file parsed with
`tf.compat.v1.GraphDef` and each node's `value` through `tf.make_ndarray` (`"source":
"make_ndarray"`), checked here against TensorFlow's C++ `Const` kernel (the graph imported
and run in a session) — the two agree on every node where `make_ndarray` works. A few
nodes hold values that only the C++ rules decode (`make_ndarray` raises on them: an
`int_val` out of the element's range, more values than elements, a string
`tensor_content`); those record the session's values (`"source": "session"`). Bytes are
hex, little-endian, row-major; strings a list of hex strings.

Values are seeded: a rerun writes the same tensor bytes.
"""
import json
import os
import shutil
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import ml_dtypes  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.core.framework import (  # noqa: E402
    attr_value_pb2,
    graph_pb2,
    tensor_pb2,
    tensor_shape_pb2,
    types_pb2,
)
from tensorflow.python.framework.convert_to_constants import (  # noqa: E402
    convert_variables_to_constants_v2,
)

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tf")
RNG = np.random.default_rng(20261205)


def as_bytes(x):
    # make_ndarray pads a string tensor without values with "" (a str).
    return x.encode() if isinstance(x, str) else bytes(x)


def tensor_bytes(arr):
    """Exact bytes of a numpy value as TensorFlow returned it."""
    arr = np.asarray(arr)
    if arr.dtype.kind in ("O", "S"):
        return {"strings": [as_bytes(x).hex() for x in arr.reshape(-1).tolist()]}
    return {"hex": np.ascontiguousarray(arr).tobytes().hex()}


def fresh(name):
    path = os.path.join(ROOT, name)
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


def random_values(dtype, shape):
    dtype = tf.as_dtype(dtype)
    if dtype == tf.bool:
        return RNG.integers(0, 2, size=shape).astype(bool)
    if dtype.is_complex:
        return (RNG.standard_normal(shape) + 1j * RNG.standard_normal(shape)).astype(dtype.as_numpy_dtype)
    if dtype.is_floating:
        return RNG.standard_normal(shape).astype(np.float32).astype(dtype.as_numpy_dtype)
    info = np.iinfo(dtype.as_numpy_dtype)
    return RNG.integers(info.min, info.max, size=shape, dtype=dtype.as_numpy_dtype, endpoint=True)


def session_values(graph_def, names):
    """What TensorFlow's C++ Const kernel gives for each node (Tensor::FromProto)."""
    g = tf.Graph()
    with g.as_default():
        tf.graph_util.import_graph_def(graph_def, name="")
        with tf.compat.v1.Session(graph=g) as sess:
            return dict(zip(names, sess.run([n + ":0" for n in names])))


def same(a, b):
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype.kind in ("O", "S") or b.dtype.kind in ("O", "S"):
        return a.shape == b.shape and [as_bytes(x) for x in a.reshape(-1)] == [as_bytes(x) for x in b.reshape(-1)]
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def dump_graph(graph_def, out_dir, cpp_only=()):
    """Write graph.pb and expected.json: every Const, as TensorFlow reads it."""
    path = os.path.join(out_dir, "graph.pb")
    with open(path, "wb") as f:
        f.write(graph_def.SerializeToString())
    parsed = tf.compat.v1.GraphDef()
    with open(path, "rb") as f:
        parsed.ParseFromString(f.read())
    consts = [n for n in parsed.node if n.op == "Const"]
    cpp = session_values(parsed, [n.name for n in consts])
    variables = []
    for n in consts:
        proto = n.attr["value"].tensor
        dtype = tf.as_dtype(proto.dtype)
        shape = [d.size for d in proto.tensor_shape.dim]
        entry = {"name": n.name, "dtype": dtype.name, "shape": shape}
        try:
            value = tf.make_ndarray(proto)
        except Exception:  # noqa: BLE001 - make_ndarray refuses what only C++ decodes
            assert n.name in cpp_only, f"{n.name}: make_ndarray failed"
            value, entry["source"] = cpp[n.name], "session"
        else:
            assert n.name not in cpp_only, f"{n.name}: make_ndarray works after all"
            assert same(value, cpp[n.name]), f"{n.name}: make_ndarray and C++ disagree"
            entry["source"] = "make_ndarray"
        assert list(np.shape(value)) == shape, n.name
        entry.update(tensor_bytes(value))
        variables.append(entry)
    doc = {
        "tensorflow": tf.__version__,
        "graph": "graph.pb",
        "nodes": len(parsed.node),
        "variables": variables,
    }
    with open(os.path.join(out_dir, "expected.json"), "w") as f:
        json.dump(doc, f, indent=1, sort_keys=True)
        f.write("\n")


def proto_const(g, name, dtype, shape, **fields):
    """A Const node whose TensorProto is written field by field (the forms tf.constant
    does not choose by itself)."""
    t = tensor_pb2.TensorProto(
        dtype=dtype,
        tensor_shape=tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=s) for s in shape]
        ),
    )
    for k, v in fields.items():
        if isinstance(v, bytes):
            setattr(t, k, v)
        else:
            getattr(t, k).extend(v)
    return g.create_op(
        "Const", [], [tf.as_dtype(dtype)],
        attrs={
            "value": attr_value_pb2.AttrValue(tensor=t),
            "dtype": attr_value_pb2.AttrValue(type=dtype),
        },
        name=name,
    ).outputs[0]


def half_bits(values, dtype):
    return [int(x) for x in np.array(values, dtype=dtype).view(np.uint16)]


def frozen_v1():
    out = fresh("frozen_v1")
    g = tf.Graph()
    keep = []
    with g.as_default():
        v = lambda name, dt, shape, **kw: tf.compat.v1.get_variable(  # noqa: E731
            name, initializer=random_values(dt, shape), **kw)
        x = tf.compat.v1.placeholder(tf.float32, [None, 6, 6, 3], name="input")
        w = v("conv1/weights", tf.float32, [3, 3, 3, 4])
        b = v("conv1/biases", tf.float32, [4])
        h = tf.nn.relu(tf.nn.conv2d(x, w, 1, "SAME") + b)
        gamma, beta = v("bn/gamma", tf.float32, [4]), v("bn/beta", tf.float32, [4])
        mean = v("bn/moving_mean", tf.float32, [4], trainable=False)
        var = tf.compat.v1.get_variable("bn/moving_variance", initializer=np.abs(random_values(tf.float32, [4])) + 0.5, trainable=False)
        h = (h - mean) * tf.math.rsqrt(var + 1e-3) * gamma + beta
        h = tf.reshape(h, [-1, 6 * 6 * 4])
        k, bias = v("dense/kernel", tf.float32, [144, 5]), v("dense/bias", tf.float64, [5])
        logits = tf.matmul(h, k) + tf.cast(bias, tf.float32)
        e16, ebf = v("emb/half", tf.float16, [6, 2]), v("emb/bf16", tf.bfloat16, [6, 2])
        ids = v("emb/ids", tf.int64, [3])
        table = tf.cast(e16, tf.float32) + tf.cast(ebf, tf.float32)
        picked = tf.gather(table, tf.math.floormod(ids, 6))
        step = tf.compat.v1.train.get_or_create_global_step()
        y = tf.identity(logits, name="logits")
        z = tf.identity(picked, name="picked")
        s = tf.identity(step, name="step")
        keep += ["logits", "picked", "step"]

        def c(value, name, **kw):
            keep.append(tf.constant(value, name=name, **kw).op.name)

        # tf.constant's own choices: tensor_content for arrays, typed fields for splats.
        c(random_values(tf.float32, [2, 3]), "content/f32")
        c(random_values(tf.float16, [4]), "content/f16")
        c(random_values(tf.bfloat16, [2, 2]), "content/bf16")
        c(random_values(tf.int8, [5]), "content/i8")
        c(random_values(tf.uint64, [2]), "content/u64")
        c(np.array([1, 2, 3], dtype=ml_dtypes.float8_e4m3fn), "content/f8_e4m3fn")
        c(1.5, "splat/f32", shape=[4, 5])
        c(np.float16(0.25), "splat/f16", shape=[3, 3])
        c(np.array(-2.5, dtype=ml_dtypes.bfloat16), "splat/bf16", shape=[2, 4])
        keep.append(tf.zeros([2, 3], tf.int64, name="splat/zeros_i64").op.name)
        c(True, "splat/bool", shape=[4])
        c(b"pad", "splat/string", shape=[3])
        c(np.uint32(4000000000), "splat/u32", shape=[2])
        c(np.int16(-7), "splat/i16", shape=[2, 2])
        c(np.complex64(1 - 2j), "splat/c64", shape=[3])
        c(np.array([b"", b"hello", b"\x00\xff\x80bin\n", b"x" * 300], dtype=object), "strings/vector")
        c(b"scalar string", "strings/scalar")
        c([1 + 2j, -3.5 + 0.25j], "typed/c128", dtype=tf.complex128)
        c(3.25, "scalar/f32")
        c(np.zeros([0, 3], np.float32), "empty/f32")

        def p(name, dtype, shape, **fields):
            keep.append(proto_const(g, name, dtype, shape, **fields).op.name)

        # Typed fields written by hand, with several values and partial splats.
        p("typed/f32_partial", types_pb2.DT_FLOAT, [2, 3], float_val=[1.0, -2.0, 0.5])
        p("typed/f64_partial", types_pb2.DT_DOUBLE, [4], double_val=[1e-300, 2.5])
        p("typed/i32", types_pb2.DT_INT32, [3], int_val=[-1, 2147483647, -2147483648])
        p("typed/u8", types_pb2.DT_UINT8, [2, 2], int_val=[0, 255, 17])
        p("typed/u16", types_pb2.DT_UINT16, [3], int_val=[65535, 1])
        p("typed/i64", types_pb2.DT_INT64, [3], int64_val=[-(2**63), 2**63 - 1, 5])
        p("typed/u64", types_pb2.DT_UINT64, [2], uint64_val=[2**64 - 1, 3])
        p("typed/bool", types_pb2.DT_BOOL, [5], bool_val=[True, False, True])
        p("typed/f16", types_pb2.DT_HALF, [2, 3], half_val=half_bits([1.0, -0.5, 65504.0], np.float16))
        p("typed/bf16", types_pb2.DT_BFLOAT16, [5], half_val=half_bits([1.0, 3.0e38, -1.5], ml_dtypes.bfloat16))
        p("typed/c64_odd", types_pb2.DT_COMPLEX64, [3], scomplex_val=[1.0, 2.0, 3.0, 4.0, 5.0])
        p("typed/f8_e5m2", types_pb2.DT_FLOAT8_E5M2, [4], float8_val=bytes([0x3C, 0x40]))
        p("typed/strings", types_pb2.DT_STRING, [2, 2], string_val=[b"a", b"", b"last"])
        p("typed/none_f32", types_pb2.DT_FLOAT, [3])
        p("typed/none_str", types_pb2.DT_STRING, [2])
        # Only TensorFlow's C++ rules decode these (make_ndarray raises).
        p("cpp/i8_wrap", types_pb2.DT_INT8, [3], int_val=[300, -200])
        p("cpp/f32_extra", types_pb2.DT_FLOAT, [2], float_val=[1.0, 2.0, 3.0])
        p("cpp/string_content", types_pb2.DT_STRING, [3], tensor_content=b"\x01\x00\x03ab\x00c")
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            sess.run(step.assign(42))
            frozen = tf.compat.v1.graph_util.convert_variables_to_constants(sess, g.as_graph_def(), keep)
    del y, z, s
    dump_graph(frozen, out, cpp_only={"cpp/i8_wrap", "cpp/f32_extra", "cpp/string_content"})


def frozen_v2():
    out = fresh("frozen_v2")

    class Net(tf.Module):
        def __init__(self):
            super().__init__()
            self.filters = tf.Variable(random_values(tf.float32, [3, 3, 2, 4]), name="conv/kernel")
            self.kernel = tf.Variable(random_values(tf.float32, [4, 3]), name="dense/kernel")
            self.bias = tf.Variable(random_values(tf.float32, [3]), name="dense/bias")

        @tf.function(input_signature=[tf.TensorSpec([None, 5, 5, 2], tf.float32)])
        def __call__(self, x):
            h = tf.nn.conv2d(x, self.filters, 1, "VALID")
            h = tf.reduce_mean(h, axis=[1, 2])
            return tf.nn.softmax(tf.matmul(h, self.kernel) + self.bias)

    net = Net()  # the function holds it weakly
    frozen = convert_variables_to_constants_v2(net.__call__.get_concrete_function())
    dump_graph(frozen.graph.as_graph_def(), out)


def tf1_meta():
    """A Saver checkpoint with its .meta: trainable and non-trainable variables, a
    partitioned one, and one variable left out of the Saver's var_list."""
    out = fresh("tf1_meta")
    g = tf.Graph()
    with g.as_default():
        get = tf.compat.v1.get_variable
        get("dense/kernel", initializer=random_values(tf.float32, [4, 3]))
        get("dense/bias", initializer=random_values(tf.float32, [3]))
        get("frozen_layer/kernel", initializer=random_values(tf.float32, [3, 2]), trainable=False)
        get("bn/moving_mean", initializer=random_values(tf.float32, [3]), trainable=False)
        emb = get("emb/embeddings", shape=[10, 4], initializer=tf.compat.v1.ones_initializer(),
                  partitioner=tf.compat.v1.fixed_size_partitioner(2))
        unsaved = get("extra/unsaved", initializer=random_values(tf.float32, [2]))
        step = tf.compat.v1.train.get_or_create_global_step()
        saved = [v for v in tf.compat.v1.global_variables() if v is not unsaved]
        saver = tf.compat.v1.train.Saver(var_list=saved)
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            sess.run(step.assign(7))
            prefix = saver.save(sess, os.path.join(out, "model.ckpt"), write_meta_graph=True)
        del emb
    reader = tf.train.load_checkpoint(prefix)
    dtypes = reader.get_variable_to_dtype_map()
    variables = []
    for name, shape in tf.train.list_variables(prefix):
        entry = {"name": name, "dtype": dtypes[name].name, "shape": list(shape)}
        entry.update(tensor_bytes(reader.get_tensor(name)))
        variables.append(entry)
    # What the .meta graph says, by checkpoint name (a partitioned variable's parts are
    # saved under their full name).
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.train.import_meta_graph(prefix + ".meta", clear_devices=True)

    def ckpt_name(v):
        info = v._get_save_slice_info()
        return info.full_name if info else v.op.name

    trainable = sorted({ckpt_name(v) for v in graph.get_collection("trainable_variables")})
    graph_vars = sorted({ckpt_name(v) for v in graph.get_collection("variables")})
    in_ckpt = {v["name"] for v in variables}
    size = {v["name"]: int(np.prod(v["shape"])) for v in variables}
    weights = [n for n in in_ckpt if n != "global_step"]
    doc = {
        "tensorflow": tf.__version__,
        "prefix": "model.ckpt",
        "variables": variables,
        "meta": {
            "trainable": trainable,
            "graph_only": [n for n in graph_vars if n not in in_ckpt],
            "trainable_params": sum(size[n] for n in weights if n in trainable),
            "non_trainable_params": sum(size[n] for n in weights if n not in trainable),
        },
    }
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(doc, f, indent=1, sort_keys=True)
        f.write("\n")


def main():
    os.makedirs(ROOT, exist_ok=True)
    for fn in (frozen_v1, frozen_v2, tf1_meta):
        fn()
        print("wrote", fn.__name__, file=sys.stderr)


if __name__ == "__main__":
    main()
