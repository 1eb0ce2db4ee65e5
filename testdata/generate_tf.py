#!/usr/bin/env python3
"""Writes the TensorFlow checkpoint fixtures in testdata/tf/ with real TensorFlow.

Run from the repository root in a venv with `tensorflow-cpu==2.21.0`:

    python testdata/generate_tf.py

Every fixture directory gets an `expected.json` holding what TensorFlow itself reads
back (`tf.train.list_variables` and `tf.train.load_checkpoint(...).get_tensor`): names,
dtypes, shapes and the exact bytes of every tensor (hex, little-endian, row-major; string
tensors as a list of hex strings). The Rust tests compare our reader against these.

Values are seeded, so rerunning gives the same tensors (the `.meta` graph and the object
graph may still differ in incidental bytes between TensorFlow versions).
"""
import json
import os
import shutil
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.core.protobuf import trackable_object_graph_pb2  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tf")
RNG = np.random.default_rng(20261121)


def tensor_bytes(value):
    """Exact bytes of a tensor as TensorFlow returns it."""
    if isinstance(value, bytes):
        # A scalar string: not through numpy, whose fixed-width bytes drop trailing NULs.
        return {"strings": [value.hex()]}
    arr = np.asarray(value)
    if arr.dtype.kind in ("O", "S"):
        return {"strings": [bytes(x).hex() for x in arr.reshape(-1).tolist()]}
    return {"hex": np.ascontiguousarray(arr).tobytes().hex()}


def dump_expected(prefix, out_dir, extra=None):
    """Record what TensorFlow reads back from the checkpoint at `prefix`."""
    reader = tf.train.load_checkpoint(prefix)
    dtypes = reader.get_variable_to_dtype_map()
    variables = []
    for name, shape in tf.train.list_variables(prefix):
        entry = {"name": name, "dtype": dtypes[name].name, "shape": list(shape)}
        entry.update(tensor_bytes(reader.get_tensor(name)))
        variables.append(entry)
    doc = {
        "tensorflow": tf.__version__,
        "prefix": os.path.relpath(prefix, out_dir),
        "variables": variables,
    }
    if "_CHECKPOINTABLE_OBJECT_GRAPH" in dtypes:
        graph = trackable_object_graph_pb2.TrackableObjectGraph()
        graph.ParseFromString(reader.get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH"))
        doc["full_names"] = {
            attr.checkpoint_key: attr.full_name
            for node in graph.nodes
            for attr in node.attributes
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


def tf1_saver():
    """A TF1 Saver checkpoint with every dtype, strings, a scalar, an empty tensor."""
    out = fresh("tf1_saver")
    g = tf.Graph()
    with g.as_default():
        dtypes = [
            tf.float16, tf.bfloat16, tf.float32, tf.float64,
            tf.int8, tf.int16, tf.int32, tf.int64,
            tf.uint8, tf.uint16, tf.uint32, tf.uint64,
            tf.bool, tf.complex64, tf.complex128,
        ]
        for dt in dtypes:
            tf.compat.v1.Variable(random_values(dt, [3, 4]), name=f"dtypes/{dt.name}")
        tf.compat.v1.Variable(np.float32(3.25), name="scalar")
        tf.compat.v1.Variable(np.zeros([0, 3], np.float32), name="empty")
        tf.compat.v1.Variable(
            np.array([b"", b"hello", b"\x00\xff\x80binary\n", b"x" * 300], dtype=object),
            name="strings/vector",
        )
        tf.compat.v1.Variable(np.array(b"", dtype=object), name="strings/empty_scalar")
        with tf.compat.v1.variable_scope("net"):
            tf.compat.v1.get_variable("dense/kernel", initializer=random_values(tf.float32, [5, 7]))
            tf.compat.v1.get_variable("dense/bias", initializer=random_values(tf.float32, [7]))
        step = tf.compat.v1.train.get_or_create_global_step()
        assign = step.assign(42)
        saver = tf.compat.v1.train.Saver()
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            sess.run(assign)
            prefix = saver.save(sess, os.path.join(out, "model.ckpt"), write_meta_graph=True)
    dump_expected(prefix, out)


def partitioned():
    """TF1 partitioned variables: a full entry with `slices` plus one key per slice."""
    out = fresh("partitioned")
    g = tf.Graph()
    with g.as_default():
        specs = [
            ("emb/embeddings", tf.float32, [10, 4], tf.compat.v1.fixed_size_partitioner(3)),
            ("proj/kernel", tf.float64, [6, 5], tf.compat.v1.fixed_size_partitioner(2, axis=1)),
            ("ids", tf.int64, [7], tf.compat.v1.fixed_size_partitioner(4)),
        ]
        assigns = []
        for name, dtype, shape, partitioner in specs:
            full = random_values(dtype, shape)
            var = tf.compat.v1.get_variable(
                name, shape=shape, dtype=dtype,
                initializer=tf.compat.v1.zeros_initializer(), partitioner=partitioner,
            )
            for part in var:
                offset = part._get_save_slice_info().var_offset
                index = tuple(slice(o, o + n) for o, n in zip(offset, part.shape.as_list()))
                assigns.append(part.assign(full[index]))
        tf.compat.v1.get_variable("plain", initializer=random_values(tf.float32, [2, 2]))
        saver = tf.compat.v1.train.Saver(sharded=False)
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            sess.run(assigns)
            prefix = saver.save(sess, os.path.join(out, "model.ckpt"), write_meta_graph=False)
    dump_expected(prefix, out)


class Net(tf.Module):
    def __init__(self, name=None):
        super().__init__(name=name)
        self.dense = tf.Module(name="dense")
        self.dense.kernel = tf.Variable(random_values(tf.float32, [8, 6]), name="dense/kernel")
        self.dense.bias = tf.Variable(random_values(tf.float32, [6]), name="dense/bias")
        self.embed = tf.Variable(random_values(tf.bfloat16, [20, 3]), name="embedding/embeddings")
        self.counts = tf.Variable(random_values(tf.int32, [4]), name="counts")
        self.blocks = [tf.Variable(random_values(tf.float16, [2, i + 1]), name=f"block_{i}/w") for i in range(3)]
        self.table = {"a.b/c": tf.Variable(random_values(tf.float32, [3]), name="odd/name")}


def multi_shard():
    """A TF2 checkpoint split by MaxShardSizePolicy: several shards, sliced variables."""
    out = fresh("multi_shard")
    net = Net()
    big = tf.Variable(random_values(tf.float32, [64, 16]), name="big/kernel")
    ckpt = tf.train.Checkpoint(net=net, big=big)
    options = tf.train.CheckpointOptions(
        experimental_sharding_callback=tf.train.experimental.MaxShardSizePolicy(max_shard_size=1024)
    )
    prefix = ckpt.write(os.path.join(out, "ckpt"), options=options)
    dump_expected(prefix, out)


def tf2_object():
    """A tf.train.Checkpoint with an object graph, a `checkpoint` state file and an optimizer."""
    out = fresh("tf2_object")
    net = Net()
    opt = tf.keras.optimizers.SGD(momentum=0.9) if hasattr(tf.keras.optimizers, "SGD") else None
    ckpt = tf.train.Checkpoint(net=net, step=tf.Variable(7, dtype=tf.int64))
    manager = tf.train.CheckpointManager(ckpt, out, max_to_keep=2)
    manager.save()
    net.counts.assign_add([1, 1, 1, 1])
    prefix = manager.save()
    del opt
    dump_expected(prefix, out, {"latest": os.path.basename(prefix)})


def saved_model():
    """A SavedModel: weights in variables/variables.{index,data-*}."""
    out = fresh("saved_model")

    class Affine(tf.Module):
        def __init__(self):
            super().__init__()
            self.w = tf.Variable(random_values(tf.float32, [3, 2]), name="w")
            self.b = tf.Variable(random_values(tf.float32, [2]), name="b")

        @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32)])
        def __call__(self, x):
            return tf.matmul(x, self.w) + self.b

    tf.saved_model.save(Affine(), out)
    dump_expected(os.path.join(out, "variables", "variables"), out)


def main():
    os.makedirs(ROOT, exist_ok=True)
    for fn in (tf1_saver, partitioned, multi_shard, tf2_object, saved_model):
        fn()
        print("wrote", fn.__name__, file=sys.stderr)


if __name__ == "__main__":
    main()
