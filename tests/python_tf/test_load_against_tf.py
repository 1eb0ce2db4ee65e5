"""`ckptconv.load` / `safe_open` judged by TensorFlow and h5py on files written fresh by
them in this test (not the committed fixtures): every tensor equal in dtype, shape and
bytes to `tf.train.load_checkpoint(...).get_tensor` or to h5py's read.

Runs in the interop venv (TensorFlow, tf-keras, h5py) with the wheel installed; .ci/run
does that after building the wheel:

    python -m pytest tests/python_tf -q
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

tf = pytest.importorskip("tensorflow")
h5py = pytest.importorskip("h5py")
import ckptconv  # noqa: E402

RNG = np.random.default_rng(20261130)


def same(got, want, what):
    want = np.asarray(want)
    if want.dtype.kind in ("O", "S"):
        assert got.dtype == object, what
        assert [bytes(x) for x in got.reshape(-1)] == [bytes(x) for x in want.reshape(-1)], what
        return
    assert got.shape == want.shape, what
    if want.dtype.name == "bfloat16":
        assert got.dtype.name == "bfloat16", what
    else:
        assert got.dtype == want.dtype, f"{what}: {got.dtype} vs {want.dtype}"
    assert np.ascontiguousarray(got).tobytes() == np.ascontiguousarray(want).tobytes(), what


def tensors(shapes_dtypes):
    out = {}
    for i, (shape, dt) in enumerate(shapes_dtypes):
        if dt == tf.string:
            v = np.array([bytes(RNG.integers(0, 256, size=int(n)).astype(np.uint8))
                          for n in RNG.integers(0, 40, size=int(np.prod(shape)))],
                         dtype=object).reshape(shape)
        elif dt == tf.bool:
            v = RNG.integers(0, 2, size=shape).astype(bool)
        elif dt.is_integer:
            v = RNG.integers(-100 if not dt.is_unsigned else 0, 100, size=shape).astype(dt.as_numpy_dtype)
        elif dt.is_complex:
            v = (RNG.normal(size=shape) + 1j * RNG.normal(size=shape)).astype(dt.as_numpy_dtype)
        else:
            v = RNG.normal(size=shape).astype(np.float32)
        out[f"v{i}"] = tf.Variable(tf.cast(v, dt) if dt not in (tf.string,) else v, name=f"v{i}")
    return out


DTYPES = [tf.float32, tf.float64, tf.float16, tf.bfloat16, tf.int8, tf.int16, tf.int32,
          tf.int64, tf.uint8, tf.uint16, tf.bool, tf.complex64, tf.complex128, tf.string]


def check_checkpoint(prefix):
    reader = tf.train.load_checkpoint(prefix)
    names = [n for n, _ in tf.train.list_variables(prefix)]
    loaded = ckptconv.load(prefix)
    with ckptconv.safe_open(prefix) as f:
        keys = set(f.keys())
        for n in names:
            assert n in keys, n
            same(f.get_tensor(n), reader.get_tensor(n), n)
    for n in names:
        if n == "_CHECKPOINTABLE_OBJECT_GRAPH":
            continue
        same(loaded[n], reader.get_tensor(n), n)
    return len(names)


def test_tf2_checkpoint_of_every_dtype(tmp_path):
    shapes = [tuple(int(d) for d in RNG.integers(1, 5, size=RNG.integers(0, 4))) for _ in DTYPES]
    ckpt = tf.train.Checkpoint(**tensors(list(zip(shapes, DTYPES))))
    prefix = ckpt.write(str(tmp_path / "ckpt"))
    assert check_checkpoint(prefix) >= len(DTYPES)


def test_tf1_saver_partitioned_and_sharded(tmp_path):
    g = tf.Graph()
    with g.as_default():
        v1 = tf.compat.v1
        emb = v1.get_variable("emb", shape=[11, 3], partitioner=v1.fixed_size_partitioner(3),
                              initializer=v1.random_normal_initializer(seed=1))
        w = v1.get_variable("dense/kernel", shape=[4, 5], initializer=v1.random_normal_initializer(seed=2))
        s = v1.get_variable("step", shape=[], dtype=tf.int64, initializer=v1.zeros_initializer())
        saver = v1.train.Saver(sharded=True)
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            prefix = saver.save(sess, str(tmp_path / "model.ckpt"))
    assert emb is not None and w is not None and s is not None
    assert check_checkpoint(prefix) == 3


def test_tf1_v1_checkpoint(tmp_path):
    g = tf.Graph()
    with g.as_default():
        v1 = tf.compat.v1
        v1.get_variable("a", shape=[3, 2], initializer=v1.random_normal_initializer(seed=3))
        v1.get_variable("b", shape=[5], dtype=tf.int32, initializer=v1.ones_initializer())
        saver = v1.train.Saver(write_version=v1.train.SaverDef.V1)
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            path = saver.save(sess, str(tmp_path / "v1.ckpt"))
    reader = tf.train.load_checkpoint(path)
    got = ckptconv.load(path)
    for n, _ in tf.train.list_variables(path):
        same(got[n], reader.get_tensor(n), n)


def test_keras_h5_against_h5py(tmp_path):
    import tf_keras as keras
    m = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4), keras.layers.BatchNormalization(),
                          keras.layers.Dense(2)])
    path = str(tmp_path / "w.h5")
    m.save_weights(path)
    want = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: want.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    with ckptconv.safe_open(path) as f:
        assert set(f.keys()) == set(want)
        for k, v in want.items():
            same(f.get_tensor(k), v, k)


def test_get_tensor_of_a_large_file_maps_instead_of_copying(tmp_path):
    """A 2 GiB safetensors file of eight 256 MiB tensors: one tensor read and summed in a
    child process raises its peak RSS by about that tensor, not by the file."""
    import json
    import struct
    import subprocess
    import sys
    n, size = 8, 256 << 20
    path = tmp_path / "big.safetensors"
    header = {f"t{i}": {"dtype": "F32", "shape": [size // 4], "data_offsets": [i * size, (i + 1) * size]}
              for i in range(n)}
    hb = json.dumps(header).encode()
    hb += b" " * (-len(hb) % 8)
    block = np.arange(1 << 18, dtype=np.float32).tobytes()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)) + hb)
        for _ in range(n * size // len(block)):
            f.write(block)
    code = f"""
import resource, numpy as np, ckptconv
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with ckptconv.safe_open({str(path)!r}) as f:
    t = f.get_tensor("t2")
    total = float(t[:1 << 18].astype(np.float64).sum())
    s = float(t.astype(np.float64, copy=False)[::4096].sum())
    t.sum()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(peak - base, total)
"""
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    grew_kib, total = out.split()
    assert float(total) == float(np.arange(1 << 18, dtype=np.float64).sum())
    # The tensor's own pages (256 MiB) and numpy's temporaries, never the whole file.
    assert int(grew_kib) < 400 * 1024, f"peak RSS grew by {grew_kib} KiB for a 256 MiB tensor of a 2 GiB file"
