#!/usr/bin/env python3
"""Writes testdata/summary/: tiny models saved by real tf-keras 2.21 and Keras 3, each with
the text of its own `model.summary()` (`*.summary.txt`) and that text parsed into rows
(name, class, output shape, Param #), the model name and the totals lines
(`*.summary.json`, by tests/interop/keras_summary_text.py). tests/summary_golden.rs checks
`ckptconv summary` against them.

Run from the repository root in a venv with tests/interop/requirements.txt installed:

    python testdata/generate_summary.py

Files (FLAVOUR is `tfk` for tf-keras, `k3` for Keras 3):
- `mlp.*`: Sequential Input(3) → Dense(32, relu) → Dense(32, LeakyReLU() as activation) →
  Dense(16) → Dense(5): 1,797 params. `mlp.tfk.h5`, `mlp.tfk_savedmodel/` (compiled with a
  metric and trained one step, so its variables hold metric and optimizer state);
  Keras 3 trained one step (optimizer state): `mlp.k3.keras`, `mlp.k3.h5`.
- `cnn.*`: Conv2D(32,3×3) 896, Conv2D(64) 18,496, Conv2D(128) 73,856, Dense(10) 1,290:
  `cnn.tfk.h5`; Keras 3 trained one step: `cnn.k3.keras`.
- `zoo.*`: a functional model with most built-in layer classes, a layer shared by two
  inputs of different shapes, a nested Sequential and RNN states: `zoo.tfk.h5`,
  `zoo.k3.keras`, `zoo.k3.h5`; weights only (no config): `zoo.k3.weights.h5` and the
  Keras 3 `export()` SavedModel `zoo.k3_export/` (every weight stored twice, plus a
  Dropout's seed generator state).
- `mlp.k3_tfcheckpoint/`: the Keras 3 MLP under `tf.train.Checkpoint` (`python
  testdata/generate_summary.py tfcheckpoint` writes only this one).
- `custom.tfk.h5`, `custom.k3.keras`: a custom layer between an input and a Dense
  (`python testdata/generate_summary.py custom` writes only these).
"""
import json
import os
import shutil
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "summary")
sys.path.insert(0, os.path.join(HERE, "..", "tests", "interop"))

from keras_summary_text import parse, summary_text  # noqa: E402


def mlp(keras):
    L = keras.layers
    return keras.Sequential([
        keras.Input((3,)),
        L.Dense(32, activation="relu", name="d1"),
        L.Dense(32, activation=L.LeakyReLU(), name="d2"),
        L.Dense(16, name="d3"),
        L.Dense(5, name="d4"),
    ], name="mlp")


def cnn(keras):
    L = keras.layers
    return keras.Sequential([
        keras.Input((32, 32, 3)),
        L.Conv2D(32, 3, activation="relu"),
        L.MaxPooling2D(),
        L.Conv2D(64, 3, activation="relu"),
        L.MaxPooling2D(),
        L.Conv2D(128, 3, activation="relu"),
        L.GlobalAveragePooling2D(),
        L.Dense(10, activation="softmax"),
    ], name="cnn")


def zoo(keras):
    L = keras.layers
    seq = keras.Input((10, 8), name="seq")
    x = L.Conv1D(6, 3, padding="causal", dilation_rate=2, name="causal")(seq)
    x = L.Conv1D(6, 3, strides=2, padding="valid", name="strided")(x)
    x = L.ZeroPadding1D((1, 2), name="zpad1")(x)
    x = L.Cropping1D(1, name="crop1")(x)
    x = L.UpSampling1D(2, name="up1")(x)
    x = L.MaxPooling1D(2, name="pool1")(x)
    x = L.LayerNormalization(name="ln")(x)
    lstm_out, h, c = L.LSTM(5, return_sequences=True, return_state=True, name="lstm")(x)
    x = L.Bidirectional(L.LSTM(4, return_sequences=True), merge_mode="ave", name="bi_ave")(lstm_out)
    fwd, bwd = L.Bidirectional(L.GRU(3), merge_mode=None, name="bi_none")(x)
    g = L.GRU(3, reset_after=False, name="gru_v1")(lstm_out)
    s = L.SimpleRNN(2, return_sequences=True, name="srnn")(lstm_out)
    s = L.TimeDistributed(L.Dense(7), name="td")(s)
    s = L.GlobalMaxPooling1D(name="gmax1")(s)
    merged = L.Concatenate(name="cat")([fwd, bwd, g, h, c, s])
    rep = L.RepeatVector(4, name="repeat")(merged)
    rep = L.Permute((2, 1), name="permute")(rep)
    rep = L.Reshape((-1, 4), name="reshape")(rep)
    flat = L.Flatten(name="flat")(rep)

    img = keras.Input((12, 12, 3), name="img")
    y = L.Conv2D(4, 3, strides=2, padding="same", name="conv_same")(img)
    y = L.SeparableConv2D(5, 3, name="sep")(y)
    y = L.DepthwiseConv2D(3, depth_multiplier=2, padding="same", name="dw")(y)
    y = L.Conv2DTranspose(3, 3, strides=2, name="deconv")(y)
    y = L.BatchNormalization(name="bn")(y)
    y = L.ZeroPadding2D(((1, 2), (0, 1)), name="zpad2")(y)
    y = L.Cropping2D(1, name="crop2")(y)
    y = L.UpSampling2D(2, name="up2")(y)
    y = L.AveragePooling2D(3, strides=2, padding="same", name="avg")(y)
    y = L.Activation("relu", name="act")(y)
    y = L.Rescaling(0.5, name="rescale")(y)
    y2 = L.Conv2D(3, 1, name="pointwise")(y)
    y = L.Add(name="add")([y, y2])
    y = L.Multiply(name="mul")([y, y2])
    y = L.Average(name="avg_merge")([y, y2])
    y = L.GlobalAveragePooling2D(name="gap")(y)

    tok = keras.Input((6,), dtype="int32", name="tok")
    e = L.Embedding(20, 8, name="embed")(tok)
    e = L.MultiHeadAttention(2, 4, name="mha")(e, e)
    e = L.EinsumDense("abc,cd->abd", output_shape=(None, 4), bias_axes="d", name="einsum")(e)
    e = L.Dropout(0.1, name="drop")(e)

    # Called on (None, 26, 4) and (None, 6, 4): tf-keras prints "multiple".
    shared = L.Dense(3, name="shared")
    a = L.GlobalMaxPooling1D(name="gmax_a")(shared(rep))
    b = L.GlobalMaxPooling1D(name="gmax_b")(shared(e))
    inner = keras.Sequential([L.Dense(4, activation="tanh"), L.Dense(2)], name="inner")
    out = L.Concatenate(name="heads")([inner(a), inner(b), y, flat])
    return keras.Model([seq, img, tok], out, name="zoo")


def train(m, keras):
    m.compile(optimizer="adam", loss="mse")
    x = [np.ones((2,) + tuple(i.shape[1:]), "float32") for i in m.inputs]
    y = np.ones((2,) + tuple(m.outputs[0].shape[1:]), "float32")
    m.fit(x if len(x) > 1 else x[0], y, epochs=1, verbose=0)


def write(stem, model):
    text = summary_text(model)
    with open(os.path.join(OUT, f"{stem}.summary.txt"), "w") as f:
        f.write(text)
    with open(os.path.join(OUT, f"{stem}.summary.json"), "w") as f:
        json.dump(parse(text), f, indent=1, ensure_ascii=False)
        f.write("\n")


def tf_checkpoint():
    """`mlp.k3_tfcheckpoint/`: the Keras 3 MLP under `tf.train.Checkpoint(model=m)`,
    whose layers sit below the Functional a Keras 3 Sequential wraps
    (`model/_functional/_operations/<i>/…`)."""
    import keras
    import tensorflow as tf

    m = mlp(keras)
    d = os.path.join(OUT, "mlp.k3_tfcheckpoint")
    shutil.rmtree(d, ignore_errors=True)
    tf.train.Checkpoint(model=m).write(os.path.join(d, "ckpt"))


def custom_model(keras):
    """Input(4) → a custom layer (`Twice`, not built in) → Dense(3)."""

    class Twice(keras.layers.Layer):
        def call(self, x):
            return x * 2

    inp = keras.Input((4,), name="x")
    y = Twice(name="twice")(inp)
    y = keras.layers.Dense(3, name="after")(y)
    return keras.Model(inp, y, name="custom")


def custom():
    """`custom.tfk.h5`, `custom.k3.keras`: a model with a custom layer, whose output shape
    ckptconv cannot compute (it prints `?`); Keras 3 records the shape of the tensor the
    next layer takes, so that layer's shape is known there."""
    import tf_keras

    m = custom_model(tf_keras)
    m.save(os.path.join(OUT, "custom.tfk.h5"))
    write("custom.tfk", m)
    import keras

    m = custom_model(keras)
    m.save(os.path.join(OUT, "custom.k3.keras"))
    write("custom.k3", m)


def main():
    if sys.argv[1:] == ["tfcheckpoint"]:
        return tf_checkpoint()
    if sys.argv[1:] == ["custom"]:
        return custom()
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    import tf_keras

    m = mlp(tf_keras)
    m.save(os.path.join(OUT, "mlp.tfk.h5"))
    write("mlp.tfk", m)
    m.compile(optimizer="adam", loss="mse", metrics=["mae"])
    m.fit(np.ones((2, 3)), np.ones((2, 5)), epochs=1, verbose=0)
    m.save(os.path.join(OUT, "mlp.tfk_savedmodel"), save_format="tf")
    m = cnn(tf_keras)
    m.save(os.path.join(OUT, "cnn.tfk.h5"))
    write("cnn.tfk", m)
    m = zoo(tf_keras)
    m.save(os.path.join(OUT, "zoo.tfk.h5"))
    write("zoo.tfk", m)

    import keras

    m = mlp(keras)
    train(m, keras)
    m.save(os.path.join(OUT, "mlp.k3.keras"))
    m.save(os.path.join(OUT, "mlp.k3.h5"))
    write("mlp.k3", m)
    m = cnn(keras)
    train(m, keras)
    m.save(os.path.join(OUT, "cnn.k3.keras"))
    write("cnn.k3", m)
    m = zoo(keras)
    m.save(os.path.join(OUT, "zoo.k3.keras"))
    m.save(os.path.join(OUT, "zoo.k3.h5"))
    m.save_weights(os.path.join(OUT, "zoo.k3.weights.h5"))
    m.export(os.path.join(OUT, "zoo.k3_export"), verbose=False)
    write("zoo.k3", m)
    tf_checkpoint()
    custom()


if __name__ == "__main__":
    main()
