"""`ckptconv summary` equals Keras' own `model.summary()` row for row (name, class, output
shape, Param #), with the same model name and totals lines, for keras.applications
architectures saved every way that carries a config: tf-keras full-model `.h5` and
SavedModel, Keras 3 `.keras` and legacy `.h5`. The reference is the live model's summary."""
import json
import os

import pytest

from conftest import run
from keras_summary_text import parse, summary_text

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

APPS = {
    "MobileNetV2": dict(input_shape=(96, 96, 3), alpha=0.35, classes=10),
    "ResNet50": dict(input_shape=(64, 64, 3), classes=10),
    "EfficientNetB0": dict(input_shape=(64, 64, 3), classes=10),
    # hard-swish as ops: tf-keras TFOpLambda nodes, Keras 3 keras.src.ops.numpy nodes.
    "MobileNetV3Small": dict(input_shape=(64, 64, 3), classes=10),
}


def ours(path):
    doc = json.loads(run("summary", "--json", path, check=0).stdout)
    text = run("summary", path, check=0).stdout
    totals = [line.strip() for line in text.splitlines()
              if line.strip().split(" params:")[0] in ("Total", "Trainable", "Non-trainable", "Optimizer")]
    name = next((line[len('Model: "'):-1] for line in text.splitlines() if line.startswith("Model: ")), None)
    return doc, totals, name


def compare(path, want):
    doc, totals, name = ours(path)
    rows = [{"name": l["name"], "class_name": l["class_name"], "output_shape": l["output_shape_text"],
             "params": l["params"]} for l in doc["layers"]]
    assert name == want["model_name"], path
    assert len(rows) == len(want["rows"]), (path, len(rows), len(want["rows"]))
    for got, exp in zip(rows, want["rows"]):
        assert got == exp, (path, got, exp)
    assert totals == want["totals"], (path, totals, want["totals"])


def weights_only(path, count, shown):
    """A weights-only file: the total is count_params(), nothing else is claimed."""
    doc, totals, name = ours(path)
    assert doc["total_params"] == count, path
    assert totals[0].startswith(f"Total params: {shown} ("), (path, totals)
    assert doc["trainable_params"] is None and name is None, path
    assert all(l["output_shape"] is None for l in doc["layers"]), path


@pytest.mark.parametrize("app", list(APPS))
def test_tf_keras_applications(tmp_path, app):
    tf_keras = pytest.importorskip("tf_keras")

    m = getattr(tf_keras.applications, app)(weights=None, **APPS[app])
    want = parse(summary_text(m))
    h5 = str(tmp_path / "m.h5")
    m.save(h5)
    compare(h5, want)
    w = str(tmp_path / "w.h5")
    m.save_weights(w)
    weights_only(w, m.count_params(), f"{m.count_params()}")
    if app == "MobileNetV2":
        # A SavedModel is slow to trace: one architecture is enough.
        sm = str(tmp_path / "sm")
        m.save(sm, save_format="tf")
        compare(sm, want)


@pytest.mark.parametrize("app", list(APPS))
def test_keras3_applications(tmp_path, app):
    import keras

    m = getattr(keras.applications, app)(weights=None, **APPS[app])
    want = parse(summary_text(m))
    for name in ("m.keras", "m.h5"):
        p = str(tmp_path / name)
        m.save(p)
        compare(p, want)
    w = str(tmp_path / "m.weights.h5")
    m.save_weights(w)
    weights_only(w, m.count_params(), f"{m.count_params():,}")


def _zoo():
    import sys

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "testdata"))
    import generate_summary

    return generate_summary


def test_tf_keras_zoo(tmp_path):
    """Most built-in classes, a shared layer ("multiple"), RNN states, a nested model."""
    tf_keras = pytest.importorskip("tf_keras")

    gen = _zoo()
    m = gen.zoo(tf_keras)
    want = parse(summary_text(m))
    h5 = str(tmp_path / "zoo.h5")
    m.save(h5)
    compare(h5, want)
    sm = str(tmp_path / "zoo_sm")
    m.save(sm, save_format="tf")
    compare(sm, want)


def test_keras3_zoo_compiled(tmp_path):
    """Keras 3 counts a built optimizer's variables in its Total and prints them apart."""
    import keras

    gen = _zoo()
    m = gen.zoo(keras)
    gen.train(m, keras)
    want = parse(summary_text(m))
    assert any(t.startswith("Optimizer params:") for t in want["totals"])
    for name in ("zoo.keras", "zoo.h5"):
        p = str(tmp_path / name)
        m.save(p)
        compare(p, want)


def graphs(keras):
    """Small graphs that exercise node bookkeeping: a nested Functional called twice, a
    Sequential built by fit() without an Input, a Sequential in a Sequential, attention
    scores (a tuple in tf-keras), 3D and transposed convolutions."""
    import numpy as np

    L = keras.layers
    ei = keras.Input((5,))
    enc = keras.Model(ei, L.Dense(3, name="enc_d")(ei), name="encoder")
    a, b = keras.Input((5,), name="a"), keras.Input((5,), name="b")
    siamese = keras.Model([a, b], L.Dense(1, name="head")(L.Concatenate(name="cc")([enc(a), enc(b)])),
                          name="siamese")
    lazy = keras.Sequential([L.Dense(4), L.Dropout(0.1), L.Dense(2)], name="lazy")
    lazy.compile("adam", "mse")
    lazy.fit(np.ones((2, 7)), np.ones((2, 2)), verbose=0)
    inner = keras.Sequential([L.Dense(4), L.Dense(3)], name="inner")
    outer = keras.Sequential([keras.Input((6,)), inner, L.Dense(2)], name="outer")
    q = keras.Input((4, 6), name="q")
    att, scores = L.MultiHeadAttention(2, 3, name="mha")(q, q, return_attention_scores=True)
    v = keras.Input((8, 8, 8, 1), name="vol")
    c = L.Conv3D(2, 3, strides=2, padding="same", name="c3")(v)
    c = L.Conv3DTranspose(2, 2, strides=2, name="ct3")(L.MaxPooling3D(2, name="mp3")(c))
    t = L.GlobalAveragePooling1D(name="g1")(L.Conv1DTranspose(3, 3, strides=2, name="ct1")(q))
    misc = keras.Model([q, v], [att, scores, L.GlobalAveragePooling3D(name="g3")(c), t], name="misc")
    # One frozen layer inside a nested model: its weights alone are non-trainable.
    frozen = keras.Sequential([L.Dense(3, name="f", trainable=False), L.Dense(2, name="t")], name="part")
    x = keras.Input((4,), name="x")
    part_frozen = keras.Model(x, L.Dense(1, name="o")(frozen(x)), name="part_frozen")
    # Attention layers, an RNN of stacked cells, Dot.
    k = keras.Input((5,), name="k")
    builtins = keras.Model(
        [q, k],
        [L.Attention(name="att")([q, q]), L.AdditiveAttention(name="addatt")([q, q]),
         L.RNN([L.LSTMCell(3), L.GRUCell(2)], name="cells")(q),
         L.Dot(axes=1, name="dot")([k, k])],
        name="builtins")
    # The mask ops Keras 3 inserts itself (NotEqual, Any), and a random generator's state.
    t_in, s_in = keras.Input((5,), dtype="int32", name="t"), keras.Input((5, 3), name="s")
    e = L.LSTM(2, name="l1")(L.Embedding(10, 4, mask_zero=True, name="emb")(t_in))
    m = L.LSTM(2, name="l2")(L.Masking(name="mask")(s_in))
    img = keras.Input((8, 10, 3), name="img")
    f = L.GlobalMaxPooling2D(name="gmp")(L.RandomFlip("horizontal", name="flip")(img))
    masks = keras.Model([t_in, s_in, img], L.Concatenate(name="cat")([e, m, f]), name="masks")
    return [siamese, lazy, outer, misc, part_frozen, builtins, masks]


def test_tf_keras_graphs(tmp_path):
    tf_keras = pytest.importorskip("tf_keras")

    for m in graphs(tf_keras):
        want = parse(summary_text(m))
        p = str(tmp_path / f"{m.name}.h5")
        m.save(p)
        compare(p, want)
        if m.name in ("part_frozen", "masks"):
            sm = str(tmp_path / m.name)
            m.save(sm, save_format="tf")
            compare(sm, want)


def test_keras3_graphs(tmp_path):
    import keras

    for m in graphs(keras):
        want = parse(summary_text(m))
        for ext in (".keras", ".h5"):
            p = str(tmp_path / f"{m.name}{ext}")
            m.save(p)
            compare(p, want)
