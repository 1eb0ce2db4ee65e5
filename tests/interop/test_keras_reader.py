"""ckptconv reads `.h5`, `.weights.h5` and `.keras` files freshly written by tf-keras 2.21
and Keras 3 for architectures not in testdata: `inspect --json` lists the same dataset
names and shapes as h5py, `verify` passes, and broken copies fail cleanly."""
import io
import os
import zipfile

import h5py
import numpy as np
import pytest

from conftest import inspect_json, run

os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def h5py_listing(f):
    out = []
    f.visititems(lambda n, o: out.append((n, list(o.shape))) if isinstance(o, h5py.Dataset) else None)
    return out


def ours(path):
    doc = inspect_json(path)
    return doc, [(t["name"], t["shape"]) for t in doc["tensors"]]


def check_h5(path):
    with h5py.File(path, "r") as f:
        want = h5py_listing(f)
    doc, got = ours(path)
    assert got == want
    assert doc["format"] == "keras-h5"
    assert ": ok (" in run("verify", path, check=0).stdout
    return doc


def architectures(keras):
    L = keras.layers
    cnn = keras.Sequential([
        keras.Input((16, 16, 3)),
        L.Conv2D(8, 3, padding="same", activation="relu"),
        L.DepthwiseConv2D(3),
        L.SeparableConv2D(6, 3),
        L.BatchNormalization(),
        L.MaxPooling2D(),
        L.Conv2DTranspose(4, 2),
        L.GlobalAveragePooling2D(),
        L.Dense(10, activation="softmax"),
    ], name="cnn")
    inp = keras.Input((7,), dtype="int32")
    x = L.Embedding(30, 8)(inp)
    x = L.Bidirectional(L.GRU(5, return_sequences=True))(x)
    x = L.LayerNormalization()(x)
    x = L.SimpleRNN(4)(x)
    x = L.Dense(3, use_bias=False)(x)
    rnn = keras.Model(inp, x, name="rnn")
    q = keras.Input((5, 8))
    att = L.MultiHeadAttention(num_heads=2, key_dim=4)(q, q)
    att = L.Dense(2)(L.Flatten()(att))
    mha = keras.Model(q, att, name="mha")
    return [cnn, rnn, mha]


def fit(model):
    model.compile(optimizer="rmsprop", loss="mse")
    xs = [np.zeros((2,) + tuple(i.shape[1:]), dtype="int32" if "int" in str(i.dtype) else "float32") for i in model.inputs]
    ys = np.zeros_like(np.asarray(model.predict(xs, verbose=0), dtype="float32"))
    model.fit(xs, ys, epochs=1, verbose=0)


@pytest.mark.parametrize("index", [0, 1, 2])
def test_tf_keras_files(tmp_path, index):
    import tf_keras as keras

    model = architectures(keras)[index]
    fit(model)
    p = tmp_path / "w.h5"
    model.save_weights(str(p))
    doc = check_h5(p)
    # Canonical names drop Keras 2's ':0'.
    assert all(not t["variable"].endswith(":0") for t in doc["tensors"])
    p = tmp_path / "full.h5"
    model.save(str(p))
    check_h5(p)


@pytest.mark.parametrize("index", [0, 1, 2])
def test_keras3_files(tmp_path, index):
    import keras

    model = architectures(keras)[index]
    fit(model)
    p = tmp_path / "m.weights.h5"
    model.save_weights(str(p))
    check_h5(p)
    p = tmp_path / "legacy.h5"
    model.save(str(p))
    check_h5(p)
    p = tmp_path / "m.keras"
    model.save(str(p))
    with zipfile.ZipFile(p) as z, h5py.File(io.BytesIO(z.read("model.weights.h5")), "r") as f:
        want = h5py_listing(f)
    _, got = ours(p)
    assert got == want
    assert ": ok (" in run("verify", p, check=0).stdout


def test_keras3_bfloat16_and_shards(tmp_path):
    import keras

    L = keras.layers
    model = keras.Sequential([keras.Input((12,)), L.Dense(32, dtype="bfloat16"), L.Dense(16, dtype="bfloat16"), L.Dense(4)])
    fit(model)
    p = tmp_path / "bf.weights.h5"
    model.save_weights(str(p))
    doc = check_h5(p)
    assert [t["dtype"] for t in doc["tensors"]].count("bfloat16") >= 4
    j = tmp_path / "sh.weights.json"
    model.save_weights(str(j), max_shard_size=0.000001)
    parts = sorted(x for x in os.listdir(tmp_path) if x.startswith("sh") and x.endswith(".h5"))
    assert len(parts) > 1
    want = []
    for part in parts:
        with h5py.File(tmp_path / part, "r") as f:
            want += h5py_listing(f)
    _, got = ours(j)
    assert sorted(got) == sorted(want)
    assert ": ok (" in run("verify", j, check=0).stdout


def test_broken_keras_files(tmp_path):
    import keras

    model = architectures(keras)[0]
    p = tmp_path / "m.weights.h5"
    model.save_weights(str(p))
    raw = p.read_bytes()
    t = tmp_path / "trunc.weights.h5"
    t.write_bytes(raw[: len(raw) // 3])
    r = run("verify", t, check=1)
    assert "trunc.weights.h5" in r.stdout
    n = tmp_path / "random.h5"
    n.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    r = run("inspect", n, check=1)
    assert "random.h5" in r.stderr
