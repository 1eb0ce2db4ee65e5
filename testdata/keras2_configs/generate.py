"""Write the Keras 2 model configs that `src/keras/config3.rs` translates.

Each fixture `NAME.json` is the `model_config` attribute of a full-model `.h5` that
tf-keras 2.21 writes with `model.save(...)` (what ckptconv reads from a Keras 2 file).
(tf-keras 2.21 writes initializers, regularizers and constraints in the `module` form even
there; the Keras 2.0-2.3 forms are covered by hand-written configs in the Rust tests.)
`to_json_cnn.json` is `model.to_json()` of the CNN fixture, which carries `module`,
`registered_name` and `build_config` on every layer.

Run with the project's venv python (tf-keras 2.21):

    ~/.cache/ckptconv-venv/bin/python testdata/keras2_configs/generate.py

Weights are not stored: `check.py` sets seeded weights of the right shapes.
"""

import json
import os
import pathlib
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import h5py  # noqa: E402
import tf_keras as k  # noqa: E402
from tf_keras import layers as L  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent


def h5_model_config(model):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "m.h5")
        model.save(path)
        with h5py.File(path, "r") as f:
            mc = f.attrs["model_config"]
    return json.loads(mc if isinstance(mc, str) else mc.decode("utf-8"))


def mlp():
    return k.Sequential(
        [
            L.Dense(8, activation="relu", input_shape=(6,),
                    kernel_regularizer=k.regularizers.l2(1e-4),
                    kernel_constraint=k.constraints.MaxNorm(3.0)),
            L.Dropout(0.25),
            L.Dense(8, activation="tanh", use_bias=False,
                    kernel_initializer=k.initializers.HeNormal(seed=1)),
            L.BatchNormalization(),
            L.LeakyReLU(alpha=0.2),
            L.Dense(3, activation="softmax"),
        ],
        name="mlp",
    )


def cnn():
    x = L.Input((16, 16, 3), name="image")
    y = L.ZeroPadding2D(1)(x)
    y = L.Conv2D(4, 3, strides=2, name="stem")(y)
    y = L.BatchNormalization(name="stem_bn")(y)
    y = L.ReLU(6.0)(y)
    y = L.DepthwiseConv2D(3, padding="same", depth_multiplier=2)(y)
    y = L.BatchNormalization(momentum=0.9, epsilon=1e-5)(y)
    y = L.Activation("swish")(y)
    y = L.SeparableConv2D(6, 3, padding="same", activation="relu")(y)
    r = L.Conv2D(6, 1)(y)
    y = L.Add()([y, r])
    y = L.MaxPooling2D()(y)
    y = L.AveragePooling2D(pool_size=(2, 2), strides=1)(y)
    y = L.Conv2DTranspose(3, 2, strides=2)(y)
    y = L.Conv1D(2, 1)(L.Reshape((-1, 3))(y))
    y = L.Flatten()(y)
    a = L.GlobalAveragePooling2D()(L.Conv2D(5, 1)(x))
    y = L.Concatenate()([y, a])
    y = L.Rescaling(0.5, offset=0.1)(y)
    out = L.Dense(4)(y)
    return k.Model(x, out, name="cnn")


def rnn():
    x = L.Input((7,), dtype="int32", name="tokens")
    e = L.Embedding(20, 6, mask_zero=False)(x)
    y = L.Bidirectional(L.LSTM(5, return_sequences=True), merge_mode="concat")(e)
    y = L.GRU(4, return_sequences=True)(y)
    y = L.GRU(3, reset_after=False, name="gru_v1")(y)
    s = L.SimpleRNN(3)(e)
    y = L.Multiply()([y, s])
    return k.Model(x, L.Dense(2)(y), name="bilstm_gru")


def transformer():
    x = L.Input((5, 8), name="seq")
    m = L.Input((5, 8), name="memory")
    att = L.MultiHeadAttention(num_heads=2, key_dim=4, name="self_attn")
    h = att(x, x)
    h = L.Add(name="res1")([x, h])
    h = L.LayerNormalization(epsilon=1e-6, name="ln_1")(h)
    c = L.MultiHeadAttention(num_heads=2, key_dim=3, value_dim=2,
                             name="cross_attn")(h, m, m)
    h = L.Add(name="res2")([h, c])
    h = L.LayerNormalization(name="ln_2")(h)
    f = L.EinsumDense("abc,cd->abd", output_shape=(None, 16), bias_axes="d",
                      activation="gelu", name="ffn_in")(h)
    f = L.Dense(8, name="ffn_out")(f)
    h = L.Add(name="res3")([h, f])
    h = L.GroupNormalization(groups=2, name="gn")(h)
    pooled = L.GlobalAveragePooling1D(name="pool")(h)
    return k.Model([x, m], [h, pooled], name="transformer_block")


def nested():
    inner = k.Sequential(
        [L.Dense(6, activation="relu", input_shape=(4,)), L.Dense(5)],
        name="inner_seq",
    )
    fi = L.Input((5,))
    inner_fn = k.Model(fi, L.PReLU(name="inner_prelu")(L.Dense(3)(fi)),
                       name="inner_fn")
    x = L.Input((3, 4), name="frames")
    side = L.Input((4,), name="side")
    per_frame = k.Sequential(
        [L.Dense(6, activation="relu", input_shape=(4,)), L.Dense(5)],
        name="per_frame",
    )
    t = L.TimeDistributed(per_frame)(x)
    t = L.TimeDistributed(L.Dense(5))(t)
    t = L.PReLU(shared_axes=[1])(t)
    t = L.Flatten()(t)
    # Shared layers: inner_seq and inner_fn are each called twice.
    a = inner_fn(inner(side))
    b = inner_fn(L.Dense(5, name="side_proj")(side))
    shared = L.Dense(3, name="shared_dense")
    out = L.Concatenate()([t, shared(a), shared(b), inner(side)])
    return k.Model([x, side], [out, a], name="nested")


def zoo():
    x = L.Input((8, 8, 2), name="img")
    y = L.Conv2D(3, 3, padding="same", dilation_rate=1, groups=1)(x)
    y = L.ZeroPadding2D(((1, 0), (0, 1)))(y)
    y = L.Cropping2D(((1, 0), (0, 1)))(y)
    y = L.UpSampling2D(2)(y)
    y = L.SpatialDropout2D(0.1)(y)
    y = L.GaussianNoise(0.1)(y)
    y = L.ELU()(y)
    y = L.GlobalMaxPooling2D()(y)
    v = L.Input((6, 3), name="vec")
    z = L.Conv1D(4, 3, padding="causal")(v)
    z = L.DepthwiseConv1D(2)(z)
    z = L.SeparableConv1D(3, 2, padding="same")(z)
    z = L.Conv1DTranspose(3, 2)(z)
    z = L.ZeroPadding1D(1)(z)
    z = L.Cropping1D((1, 1))(z)
    z = L.MaxPooling1D(2)(z)
    z = L.AveragePooling1D(1)(z)
    z = L.UpSampling1D(2)(z)
    z = L.Permute((2, 1))(z)
    z = L.Softmax(axis=-1)(z)
    z = L.LayerNormalization(axis=[1, 2])(z)
    z = L.GlobalMaxPooling1D()(z)
    z = L.RepeatVector(2)(z)
    z = L.Flatten()(z)
    w = L.Input((4, 4, 4, 1), name="vol")
    u = L.Conv3D(2, 2)(w)
    u = L.Conv3DTranspose(2, 2)(u)
    u = L.MaxPooling3D(2)(u)
    u = L.GlobalAveragePooling3D()(u)
    y = L.Concatenate()([y, z, u])
    d = L.Dense(4, activation="selu")(y)
    e = L.Dense(4, activation="elu")(y)
    out = [
        L.Subtract()([d, e]),
        L.Average()([d, e]),
        L.Maximum()([d, e]),
        L.Minimum()([d, e]),
        L.Dot(axes=1)([d, e]),
        L.Masking(0.0)(L.Reshape((2, 2))(d)),
        L.ActivityRegularization(l1=0.01)(L.Dense(2, activation="softplus")(e)),
        L.Dense(2, activation="exponential")(L.AlphaDropout(0.1)(e)),
        L.UnitNormalization()(L.GaussianDropout(0.1)(d)),
    ]
    return k.Model([x, v, w], out, name="zoo")


def main():
    k.utils.set_random_seed(0)
    fixtures = {
        "mlp": mlp(),
        "cnn": cnn(),
        "bilstm_gru": rnn(),
        "transformer": transformer(),
        "nested": nested(),
        "zoo": zoo(),
        "mobilenet_v2": k.applications.MobileNetV2(
            weights=None, input_shape=(32, 32, 3), alpha=0.35, classes=10),
        "resnet50": k.applications.ResNet50(
            weights=None, input_shape=(32, 32, 3), classes=10),
    }
    for name, model in fixtures.items():
        cfg = h5_model_config(model)
        (HERE / f"{name}.json").write_text(json.dumps(cfg, indent=1) + "\n")
    (HERE / "to_json_cnn.json").write_text(
        json.dumps(json.loads(fixtures["cnn"].to_json()), indent=1) + "\n")


if __name__ == "__main__":
    main()
