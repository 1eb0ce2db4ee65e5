"""ckptconv reads checkpoints that TensorFlow writes, fresh, with names, shapes, dtypes,
shard counts and object graphs that are not in testdata; every accepted kind of path
gives the same listing as `tf.train.list_variables`, `verify` passes, and corrupted copies
fail with a message naming the file."""
import glob
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from conftest import inspect_json, run

RNG = np.random.default_rng(7)
DTYPES = [
    tf.float16, tf.bfloat16, tf.float32, tf.float64, tf.int8, tf.int16, tf.int32, tf.int64,
    tf.uint8, tf.uint16, tf.uint32, tf.uint64, tf.bool, tf.complex64, tf.complex128,
]


def values(dtype, shape):
    if dtype == tf.string:
        return np.array([bytes(RNG.integers(0, 256, size=int(RNG.integers(0, 9)), dtype=np.uint8))
                         for _ in range(int(np.prod(shape)))], dtype=object).reshape(shape)
    if dtype == tf.bool:
        return RNG.integers(0, 2, size=shape).astype(bool)
    if dtype.is_complex:
        return (RNG.standard_normal(shape) + 1j * RNG.standard_normal(shape)).astype(dtype.as_numpy_dtype)
    if dtype.is_floating:
        return RNG.standard_normal(shape).astype(np.float32).astype(dtype.as_numpy_dtype)
    info = np.iinfo(dtype.as_numpy_dtype)
    return RNG.integers(info.min, info.max, size=shape, dtype=dtype.as_numpy_dtype, endpoint=True)


def expected_listing(prefix):
    reader = tf.train.load_checkpoint(prefix)
    dtypes = reader.get_variable_to_dtype_map()
    return [(name, dtypes[name].name, list(shape)) for name, shape in tf.train.list_variables(prefix)]


def our_listing(path):
    doc = inspect_json(path)
    assert doc["format"] == "tf-checkpoint"
    return [(t["name"], t["dtype"], t["shape"]) for t in doc["tensors"]]


def path_kinds(prefix):
    """Every spelling of a checkpoint a user may type."""
    kinds = [prefix, prefix + ".index"] + sorted(glob.glob(prefix + ".data-*"))
    d = os.path.dirname(prefix)
    if os.path.exists(os.path.join(d, "checkpoint")):
        kinds += [d, os.path.join(d, "checkpoint")]
    if os.path.exists(prefix + ".meta"):
        kinds.append(prefix + ".meta")
    return kinds


def check_checkpoint(prefix, extra_paths=()):
    want = expected_listing(prefix)
    assert want
    for p in list(path_kinds(prefix)) + list(extra_paths):
        assert our_listing(p) == want, p
    out = run("verify", prefix, check=0).stdout
    assert ": ok (" in out


def write_tf1(tmp_path, dtypes, shapes, partition=None):
    g = tf.Graph()
    with g.as_default():
        assigns = []
        for i, (dt, shape) in enumerate(zip(dtypes, shapes)):
            name = f"scope_{i % 3}/layer.{i}/{dt.name}_var"
            if partition and dt.is_floating and len(shape) >= 1 and shape[0] >= 4:
                full = values(dt, shape)
                var = tf.compat.v1.get_variable(
                    name, shape=shape, dtype=dt, initializer=tf.compat.v1.zeros_initializer(),
                    partitioner=tf.compat.v1.fixed_size_partitioner(partition))
                for part in var:
                    off = part._get_save_slice_info().var_offset
                    idx = tuple(slice(o, o + n) for o, n in zip(off, part.shape.as_list()))
                    assigns.append(part.assign(full[idx]))
            else:
                tf.compat.v1.Variable(values(dt, shape), name=name)
        tf.compat.v1.Variable(values(tf.string, [3, 2]), name="meta/strings")
        tf.compat.v1.train.get_or_create_global_step()
        saver = tf.compat.v1.train.Saver()
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            sess.run(assigns)
            return saver.save(sess, str(tmp_path / "run" / "weights.ckpt"), global_step=1234)


@pytest.mark.parametrize("seed", [1, 2])
def test_tf1_saver_random_dtypes_and_shapes(tmp_path, seed):
    rng = np.random.default_rng(seed)
    n = 12
    dtypes = [DTYPES[int(rng.integers(0, len(DTYPES)))] for _ in range(n)]
    shapes = [list(rng.integers(0, 7, size=int(rng.integers(0, 4)))) for _ in range(n)]
    prefix = write_tf1(tmp_path, dtypes, shapes)
    check_checkpoint(prefix)


def test_tf1_partitioned(tmp_path):
    dtypes = [tf.float32, tf.float64, tf.float16, tf.float32]
    shapes = [[13, 3], [8], [9, 2, 2], [5, 5]]
    prefix = write_tf1(tmp_path, dtypes, shapes, partition=3)
    check_checkpoint(prefix)
    doc = inspect_json(prefix)
    assert any(t.get("slices", 0) == 3 for t in doc["tensors"])


class Tower(tf.Module):
    def __init__(self, width):
        super().__init__()
        self.layers = [
            {"w": tf.Variable(values(tf.float32, [width, width + i])), "b": tf.Variable(values(tf.float32, [width + i]))}
            for i in range(4)
        ]
        self.emb = tf.Variable(values(tf.bfloat16, [50, width]), name="emb/weights")
        self.steps = tf.Variable(values(tf.int64, []), name="steps")
        self.labels = tf.Variable(values(tf.string, [4]), name="labels")
        self.odd = {"x.y/z": tf.Variable(values(tf.float64, [2]), name="odd.name")}


@pytest.mark.parametrize("max_shard", [700, 4096, None])
def test_tf2_object_checkpoint_sharded(tmp_path, max_shard):
    ckpt = tf.train.Checkpoint(tower=Tower(12), extra=tf.Variable(values(tf.float32, [40, 30])))
    options = None
    if max_shard:
        options = tf.train.CheckpointOptions(
            experimental_sharding_callback=tf.train.experimental.MaxShardSizePolicy(max_shard_size=max_shard))
    manager = tf.train.CheckpointManager(ckpt, str(tmp_path / "ckpts"), max_to_keep=3)
    manager.save(options=options)
    prefix = manager.save(options=options)
    shards = glob.glob(prefix + ".data-*")
    if max_shard == 700:
        assert len(shards) > 3
    check_checkpoint(prefix)
    # The object graph's full names are exposed as variable names; the unnamed variables
    # (all `Variable`) take their object paths instead (docs/naming.md).
    from tensorflow.core.protobuf import trackable_object_graph_pb2
    graph = trackable_object_graph_pb2.TrackableObjectGraph()
    graph.ParseFromString(tf.train.load_checkpoint(prefix).get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH"))
    full = {a.checkpoint_key: a.full_name for n in graph.nodes for a in n.attributes if a.full_name}
    shared = {f for f in full.values() if list(full.values()).count(f) > 1}
    assert "Variable" in shared
    doc = inspect_json(tmp_path / "ckpts")
    for t in doc["tensors"]:
        if t["name"] in full:
            want = full[t["name"]]
            if want in shared:
                want = t["name"][: -len("/.ATTRIBUTES/VARIABLE_VALUE")]
            assert t["variable"] == want


def test_tf_keras_save_weights_tf_format(tmp_path):
    import tf_keras as keras

    model = keras.Sequential([
        keras.layers.Input((10,)),
        keras.layers.Dense(16, activation="relu"),
        keras.layers.BatchNormalization(),
        keras.layers.Dense(3),
    ])
    model.compile(optimizer="adam", loss="mse")
    model.fit(np.zeros((8, 10)), np.zeros((8, 3)), epochs=1, verbose=0)
    prefix = str(tmp_path / "keras_tf" / "weights")
    model.save_weights(prefix)
    check_checkpoint(prefix)


def test_saved_model(tmp_path):
    class M(tf.Module):
        def __init__(self):
            super().__init__()
            self.k = tf.Variable(values(tf.float32, [4, 4]))
            self.c = tf.Variable(values(tf.int32, [4]))

        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32)])
        def __call__(self, x):
            return tf.matmul(x, self.k)

    out = tmp_path / "sm"
    tf.saved_model.save(M(), str(out))
    prefix = str(out / "variables" / "variables")
    check_checkpoint(prefix, extra_paths=[out, out / "variables"])


def test_corrupted_copies_fail_with_file_name(tmp_path):
    ckpt = tf.train.Checkpoint(tower=Tower(8))
    prefix = ckpt.write(str(tmp_path / "orig" / "ck"))
    reader = tf.train.load_checkpoint(prefix)
    names = [n for n, _ in tf.train.list_variables(prefix)]
    assert names

    def copy(name):
        dst = tmp_path / name
        shutil.copytree(tmp_path / "orig", dst)
        return str(dst / "ck")

    # A flipped byte in the data file: a checksum error naming the data file.
    bad = copy("flip_data")
    data = bad + ".data-00000-of-00001"
    raw = bytearray(open(data, "rb").read())
    raw[len(raw) // 2] ^= 0x40
    open(data, "wb").write(raw)
    p = run("verify", bad, check=1)
    assert "checksum" in p.stdout and "ck.data-00000-of-00001" in p.stdout, p.stdout
    with pytest.raises(Exception):  # TensorFlow agrees the copy is corrupt
        r = tf.train.load_checkpoint(bad)
        for n in names:
            r.get_tensor(n)

    # A flipped byte in the index.
    bad = copy("flip_index")
    raw = bytearray(open(bad + ".index", "rb").read())
    raw[len(raw) // 3] ^= 0x01
    open(bad + ".index", "wb").write(raw)
    p = run("verify", bad, check=1)
    assert "ck.index" in p.stdout

    # Truncated data, missing data, truncated index.
    bad = copy("trunc_data")
    os.truncate(bad + ".data-00000-of-00001", 10)
    assert "ck.data-00000-of-00001" in run("verify", bad, check=1).stdout
    bad = copy("missing")
    os.remove(bad + ".data-00000-of-00001")
    assert "ck.data-00000-of-00001" in run("verify", bad, check=1).stdout
    bad = copy("trunc_index")
    os.truncate(bad + ".index", 40)
    assert "ck.index" in run("verify", bad, check=1).stdout
    del reader
