"""`summary` agrees with Keras' own count_params() and trainable count on freshly written
models (with frozen layers and a frozen nested model); `diff` says a Keras .h5 and the same
model's TF-format save are the same, and two different models are not."""
import json
import os

import numpy as np

from conftest import run

os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def build(keras, frozen=True, width=6):
    L = keras.layers
    inner = keras.Sequential([L.Dense(width, activation="relu"), L.Dense(3)], name="inner")
    inp = keras.Input((5,))
    x = L.Dense(width, activation="tanh", name="first")(inp)
    x = L.BatchNormalization(name="bn")(x)
    x = inner(x)
    x = L.Dense(2, name="last")(x)
    m = keras.Model(inp, x)
    if frozen:
        m.get_layer("first").trainable = False
        inner.trainable = False
    m.compile(optimizer="adam", loss="mse")
    m.fit(np.ones((4, 5), "float32"), np.ones((4, 2), "float32"), epochs=1, verbose=0)
    return m


def trainable_count(m):
    return int(sum(np.prod(w.shape) for w in m.trainable_weights))


def summary(path):
    return json.loads(run("summary", "--json", path, check=0).stdout)


def test_tf_keras_summary_and_diff(tmp_path):
    import tf_keras as keras

    m = build(keras)
    full = str(tmp_path / "full.h5")
    m.save(full)
    doc = summary(full)
    assert doc["total_params"] == m.count_params()
    assert doc["trainable_params"] == trainable_count(m)
    assert doc["non_trainable_params"] == m.count_params() - trainable_count(m)

    w = str(tmp_path / "w.h5")
    m.save_weights(w)
    ck = str(tmp_path / "tf" / "w")
    m.save_weights(ck)
    for p in (w, ck):
        out = run("summary", p, check=0).stdout
        assert f"Total params: {m.count_params():,} (" in out, out

    assert run("diff", w, ck, check=0).stdout.strip().endswith("same")
    assert run("diff", full, ck).returncode == 0
    other = build(keras, frozen=False, width=7)
    o = str(tmp_path / "other.h5")
    other.save_weights(o)
    r = run("diff", w, o, check=1)
    assert "DIFFERENT" in r.stdout


def test_keras3_summary(tmp_path):
    import keras

    m = build(keras)
    for name in ("m.h5", "m.keras"):
        p = str(tmp_path / name)
        m.save(p)
        doc = summary(p)
        assert doc["total_params"] == m.count_params(), name
        assert doc["trainable_params"] == trainable_count(m), name
    p = str(tmp_path / "m.weights.h5")
    m.save_weights(p)
    assert f"Total params: {m.count_params():,} (" in run("summary", p, check=0).stdout
    assert run("diff", p, str(tmp_path / "m.keras"), check=0).returncode == 0
