#!/usr/bin/env python3
"""Writes the TF1 V1 checkpoint fixtures in testdata/tf/v1_*/ with real TensorFlow.

Run from the repository root in a venv with `tensorflow-cpu==2.21.0`:

    python testdata/generate_tf_v1.py

A V1 checkpoint is what `tf.compat.v1.train.Saver(write_version=SaverDef.V1)` writes:
TensorFlow's tensor-slice tables (`model.ckpt`, or shards `NAME-%05d-of-%05d`), see
docs/formats.md. Every fixture directory gets an `expected.json` with what TensorFlow itself
reads back: `tf.train.list_variables` names and shapes, and every tensor's exact bytes (hex,
little-endian, row-major; string tensors as a list of hex strings).

The values come from `tf.train.load_checkpoint(...).get_tensor`. For a V1 checkpoint that
reader refuses sliced tensors ("Sliced checkpoints are not supported") and float16,
uint16, complex64 and complex128 ("Data type not supported"); those tensors' values come
from the op that restores V1 checkpoints, `RestoreV2` with the full-tensor slice `""`
(which falls back to TensorFlow's TensorSliceReader), and their entry says
`"reader": "RestoreV2"`. Where both readers work they are checked to agree.

TensorFlow 2.21 saves these dtypes in V1 checkpoints: float16/32/64, int8/16/32/64,
uint8/16, bool, complex64/128 and string. It refuses bfloat16 ("Saving data type bfloat16
not yet supported"), uint32 and uint64 ("Tensor slice serialization not implemented"), so
no fixture has them.

Values are seeded, so rerunning gives the same tensors (the `checkpoint` state files hold
absolute paths of the machine that ran this).
"""
import json
import os
import shutil
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tf")
RNG = np.random.default_rng(20261130)
V1 = tf.compat.v1.train.SaverDef.V1

# Two CPU devices, so that a sharded Saver writes one shard per device.
_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(_cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)

DTYPES = [
    tf.float16, tf.float32, tf.float64,
    tf.int8, tf.int16, tf.int32, tf.int64, tf.uint8, tf.uint16,
    tf.bool, tf.complex64, tf.complex128,
]
STRINGS = [b"", b"hello", b"\x00\xff\x80binary\n", b"\xc3\x28 not UTF-8", b"x" * 300]


def tensor_bytes(value):
    """Exact bytes of a tensor as TensorFlow returns it."""
    if isinstance(value, bytes):
        # A scalar string: not through numpy, whose fixed-width bytes drop trailing NULs.
        return {"strings": [value.hex()]}
    arr = np.asarray(value)
    if arr.dtype.kind in ("O", "S"):
        return {"strings": [bytes(x).hex() for x in arr.reshape(-1).tolist()]}
    return {"hex": np.ascontiguousarray(arr).tobytes().hex()}


def read_back(path):
    """[(name, dtype name, shape, value, reader)] of the V1 checkpoint `path`, as TensorFlow
    reads it (see the module docs)."""
    reader = tf.train.load_checkpoint(path)
    dtypes = reader.get_variable_to_dtype_map()
    out = []
    for name, shape in tf.train.list_variables(path):
        dtype = dtypes[name]
        restored = tf.raw_ops.RestoreV2(
            prefix=path, tensor_names=[name], shape_and_slices=[""], dtypes=[dtype])[0].numpy()
        try:
            value, how = reader.get_tensor(name), "get_tensor"
        except Exception as e:  # noqa: BLE001 - TensorFlow raises several types here
            msg = str(e)
            assert "Sliced checkpoints are not supported" in msg or "Data type not supported" in msg, msg
            value, how = restored, "RestoreV2"
        else:
            assert tensor_bytes(value) == tensor_bytes(restored), name
        out.append((name, dtype.name, list(shape), value, how))
    return out


def dump_expected(path, out_dir, extra=None):
    variables = []
    for name, dtype, shape, value, how in read_back(path):
        entry = {"name": name, "dtype": dtype, "shape": shape, "reader": how}
        entry.update(tensor_bytes(value))
        variables.append(entry)
    doc = {
        "tensorflow": tf.__version__,
        "format": "V1",
        "prefix": os.path.relpath(path, out_dir),
        "files": sorted(f for f in os.listdir(out_dir) if f not in ("checkpoint", "expected.json")),
        "variables": variables,
    }
    if extra:
        doc.update(extra)
    with open(os.path.join(out_dir, "expected.json"), "w") as f:
        json.dump(doc, f, indent=1, sort_keys=True)
        f.write("\n")


def fresh(name):
    path = os.path.join(ROOT, name)
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


def random_values(dtype, shape):
    if dtype == tf.bool:
        return RNG.integers(0, 2, size=shape).astype(bool)
    if dtype.is_complex:
        real = RNG.standard_normal(shape) + 1j * RNG.standard_normal(shape)
        return real.astype(dtype.as_numpy_dtype)
    if dtype.is_floating:
        return RNG.standard_normal(shape).astype(np.float32).astype(dtype.as_numpy_dtype)
    info = np.iinfo(dtype.as_numpy_dtype)
    return RNG.integers(info.min, info.max, size=shape, dtype=dtype.as_numpy_dtype, endpoint=True)


def save(graph_fn, out, name="model.ckpt", sharded=False, meta=False, assigns=()):
    g = tf.Graph()
    with g.as_default():
        extra = graph_fn() or []
        saver = tf.compat.v1.train.Saver(write_version=V1, sharded=sharded)
        with tf.compat.v1.Session(config=tf.compat.v1.ConfigProto(device_count={"CPU": 2})) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            sess.run(list(assigns) + list(extra))
            return saver.save(sess, os.path.join(out, name), write_meta_graph=meta)


def partition(name, dtype, shape, partitioner, devices=None):
    """A partitioned variable holding random values; returns the ops that assign them
    (`devices`: place partition k on devices[k % len(devices)])."""
    full = random_values(dtype, shape)
    placed = [0]

    def device(op):
        if devices and op.type in ("VariableV2", "VarHandleOp"):
            placed[0] += 1
            return devices[(placed[0] - 1) % len(devices)]
        return op.device

    with tf.compat.v1.device(device):
        var = tf.compat.v1.get_variable(
            name, shape=shape, dtype=dtype, initializer=tf.compat.v1.zeros_initializer(),
            partitioner=partitioner, use_resource=False)
    ops = []
    for part in var:
        offset = part._get_save_slice_info().var_offset
        index = tuple(slice(o, o + n) for o, n in zip(offset, part.shape.as_list()))
        ops.append(part.assign(full[index]))
    return ops


def v1_dtypes():
    """Every dtype TensorFlow saves in V1, strings (empty, binary, not UTF-8, long), a
    scalar, an empty [0, 3] tensor, global_step; the .meta graph and a state file."""
    out = fresh("v1_dtypes")

    def graph():
        for dt in DTYPES:
            tf.compat.v1.Variable(random_values(dt, [3, 4]), name=f"dtypes/{dt.name}")
        tf.compat.v1.Variable(np.float64(-0.0), name="scalar")
        tf.compat.v1.Variable(np.zeros([0, 3], np.float32), name="empty")
        tf.compat.v1.Variable(np.array(STRINGS, dtype=object), name="strings/vector")
        tf.compat.v1.Variable(np.array(b"", dtype=object), name="strings/empty_scalar")
        with tf.compat.v1.variable_scope("net"):
            tf.compat.v1.get_variable("dense/kernel", initializer=random_values(tf.float32, [5, 7]))
            tf.compat.v1.get_variable("dense/bias", initializer=random_values(tf.float32, [7]))
        step = tf.compat.v1.train.get_or_create_global_step()
        return [step.assign(42)]

    path = save(graph, out, meta=True)
    dump_expected(path, out)


def v1_partitioned():
    """Partitioned variables (fixed_size_partitioner along axis 0 and 1, int64 too) and a
    plain one, in one V1 file: a tensor per name with several slices."""
    out = fresh("v1_partitioned")
    assigns = []

    def graph():
        assigns.extend(partition("emb/embeddings", tf.float32, [10, 4], tf.compat.v1.fixed_size_partitioner(3)))
        assigns.extend(partition("proj/kernel", tf.float64, [6, 5], tf.compat.v1.fixed_size_partitioner(2, axis=1)))
        assigns.extend(partition("ids", tf.int64, [7], tf.compat.v1.fixed_size_partitioner(4)))
        assigns.extend(partition("half", tf.float16, [5, 2], tf.compat.v1.fixed_size_partitioner(2)))
        tf.compat.v1.get_variable("plain", initializer=random_values(tf.float32, [2, 2]))
        return assigns

    path = save(graph, out)
    dump_expected(path, out)


def v1_sharded():
    """A sharded Saver over two CPU devices: shards model.ckpt-0000K-of-0000N, a variable
    whose slices lie in different shards, and a `checkpoint` state file naming the
    pattern model.ckpt-?????-of-0000N."""
    out = fresh("v1_sharded")
    assigns = []

    def graph():
        with tf.device("/cpu:0"):
            tf.compat.v1.Variable(random_values(tf.float32, [2, 3]), name="a/kernel")
            tf.compat.v1.Variable(np.array([b"one", b"", b"\xff"], dtype=object), name="a/names")
        with tf.device("/cpu:1"):
            tf.compat.v1.Variable(random_values(tf.int32, [4]), name="b/counts")
            tf.compat.v1.Variable(random_values(tf.complex64, [2]), name="b/phase")
        assigns.extend(partition("spread/emb", tf.float32, [9, 2], tf.compat.v1.fixed_size_partitioner(3),
                                 devices=["/cpu:0", "/cpu:1"]))
        return assigns

    path = save(graph, out, sharded=True)
    dump_expected(path, out, {"latest": os.path.basename(path)})


def main():
    os.makedirs(ROOT, exist_ok=True)
    for fn in (v1_dtypes, v1_partitioned, v1_sharded):
        fn()
        print("wrote", fn.__name__, file=sys.stderr)


if __name__ == "__main__":
    main()
