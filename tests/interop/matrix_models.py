"""Models, inputs and sources for the Keras interop matrix (test_keras_matrix.py).

Every model is built by one builder for both frameworks (`K` is `tf_keras` or Keras 3),
after `clear_session()`, so that layer names are what a fresh process gives (a TF1-named
checkpoint is loaded by variable name). Sources are written by the real libraries into a
temporary directory; nothing is cached in the repository.
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402

SOURCE_SEED = {"tfkeras": 1, "keras3": 2, "tf1": 3}
FRESH_SEED = 7  # the fresh target models: different from every source seed
REF_SEED = 11


def frameworks():
    import keras
    import tf_keras

    return {"tfkeras": tf_keras, "keras3": keras}


# --- the models -------------------------------------------------------------------------

def mlp(K):
    """Two hidden Dense layers of identical shape: a layer-order mistake is silent."""
    L = K.layers
    return K.Sequential([
        K.Input((16,)),
        L.Dense(16, activation="tanh"),
        L.Dense(16, activation="tanh"),
        L.Dense(3),
    ])


def cnn(K):
    """Three BatchNormalization layers of identical shape, with moving statistics."""
    L = K.layers
    return K.Sequential([
        K.Input((8, 8, 3)),
        L.Conv2D(8, 3, padding="same"),
        L.BatchNormalization(),
        L.ReLU(),
        L.SeparableConv2D(8, 3, padding="same"),
        L.BatchNormalization(),
        L.DepthwiseConv2D(3),
        L.BatchNormalization(),
        L.GlobalAveragePooling2D(),
        L.Dense(4),
    ])


def rnn(K):
    L = K.layers
    inp = K.Input((6, 4))
    x = L.Bidirectional(L.LSTM(5, return_sequences=True))(inp)
    x = L.GRU(6)(x)
    out = L.Dense(3)(x)
    return K.Model(inp, out)


def transformer(K):
    """Custom layer names whose sorted order is not the layer order; two LayerNorms alike."""
    L = K.layers
    inp = K.Input((6, 8), name="tokens")
    att = L.MultiHeadAttention(num_heads=2, key_dim=4, name="self_attn")(inp, inp)
    x = L.Add(name="res_attn")([inp, att])
    x = L.LayerNormalization(name="ln_attn")(x)
    h = L.Dense(16, activation="relu", name="ffn_in")(x)
    h = L.Dense(8, name="ffn_out")(h)
    x = L.Add(name="res_ffn")([x, h])
    x = L.LayerNormalization(name="ln_ffn")(x)
    x = L.GlobalAveragePooling1D(name="pool")(x)
    out = L.Dense(2, name="classifier")(x)
    return K.Model(inp, out, name="encoder_block")


def nested(K):
    """A Functional model holding a nested Sequential, a TimeDistributed(Dense), a PReLU."""
    L = K.layers
    inp = K.Input((5, 6))
    x = L.TimeDistributed(L.Dense(7))(inp)
    x = L.PReLU()(x)
    x = L.Flatten()(x)
    inner = K.Sequential([K.Input((35,)), L.Dense(8, activation="tanh"), L.Dense(8, activation="tanh")])
    x = inner(x)
    out = L.Dense(3)(x)
    return K.Model(inp, out)


def frozen(K):
    """Transfer learning: a nested base whose first Dense is frozen (and a BatchNormalization),
    under a trainable head. A Keras 2 .h5 lists the base's weights trainable first, so
    the frozen kernel comes after the others there, not in layer order."""
    L = K.layers
    base = K.Sequential([K.Input((12,)), L.Dense(10), L.BatchNormalization(), L.Dense(10),
                         L.Dense(10)], name="base")
    base.layers[0].trainable = False
    inp = K.Input((12,))
    out = L.Dense(3)(base(inp))
    return K.Model(inp, out)


def mobilenet(K):
    return K.applications.MobileNetV2(weights=None, input_shape=(32, 32, 3), alpha=0.35, classes=10)


BUILDERS = {"mlp": mlp, "cnn": cnn, "rnn": rnn, "transformer": transformer, "nested": nested,
            "frozen": frozen, "mobilenet": mobilenet}
MODELS = list(BUILDERS)


def build(K, model, seed, clear=True):
    if clear:
        K.backend.clear_session()
    K.utils.set_random_seed(seed)
    return BUILDERS[model](K)


def input_shape(model):
    return {"mlp": (16,), "cnn": (8, 8, 3), "rnn": (6, 4), "transformer": (6, 8), "nested": (5, 6),
            "frozen": (12,), "mobilenet": (32, 32, 3)}[model]


def inputs(model, n=3, seed=0):
    rng = np.random.default_rng(100 + MODELS.index(model) + 1000 * seed)
    return rng.standard_normal((n,) + input_shape(model)).astype("float32")


def predict(m, x):
    """Inference as a user runs it; the same path for the reference and the judged model."""
    return np.asarray(m(x, training=False))


def weight_name(w):
    return getattr(w, "path", None) or w.name


def perturbed(names, values, seed):
    """Every weight moved off its initial value (BatchNorm moving statistics included), so
    a weight that is not restored changes the predictions."""
    rng = np.random.default_rng(seed)
    out = []
    for name, v in zip(names, values):
        if "moving_variance" in name:
            out.append(rng.uniform(0.5, 2.0, v.shape).astype(v.dtype))
        else:
            out.append((v + rng.normal(0.0, 0.1, v.shape)).astype(v.dtype))
    return out


def train_targets(model, x, out_shape):
    rng = np.random.default_rng(5)
    return rng.standard_normal((x.shape[0],) + tuple(out_shape)).astype("float32")


# --- the sources ------------------------------------------------------------------------

SOURCES = {
    # id: (family: whose weights it holds, whether it carries optimizer state)
    "tfkeras_h5": ("tfkeras", False),  # save_weights('w.h5')
    "tfkeras_tf": ("tfkeras", True),  # save_weights('w'): a compiled model's keeps the optimizer
    "tfkeras_full_h5": ("tfkeras", True),  # save('m.h5') after compile(Adam) + fit
    "tfkeras_ckpt_manager": ("tfkeras", True),  # tf.train.Checkpoint(model, optimizer) + manager
    "tfkeras_savedmodel": ("tfkeras", True),  # save('dir', save_format='tf'), compiled metrics
    "tfkeras_safetensors": ("tfkeras", False),  # {w.name: value}
    "tf1_saver": ("tf1", True),  # graph mode, AdamOptimizer, global_step, Saver
    "keras3_weights_h5": ("keras3", False),  # save_weights('w.weights.h5')
    "keras3_keras": ("keras3", True),  # save('m.keras')
    "keras3_legacy_h5": ("keras3", True),  # save('m.h5')
    "keras3_export": ("keras3", False),  # export('dir'): SavedModel
    "keras3_safetensors": ("keras3", False),  # {w.path: value}
}


def fit_one_step(K, m, x):
    m.compile(optimizer=K.optimizers.Adam(1e-3), loss="mse", metrics=["mae"])
    y = train_targets(m, x, m.output_shape[1:])
    m.fit(x, y, batch_size=len(x), epochs=1, verbose=0)


def write_safetensors(m, path):
    from safetensors.numpy import save_file

    # np.array, not np.ascontiguousarray: that makes a 0-d weight 1-d.
    tensors = {weight_name(w): np.array(w.numpy(), order="C") for w in m.weights}
    assert len(tensors) == len(m.weights), "duplicate weight names"
    save_file(tensors, path)


def write_tfkeras_sources(model, d):
    """The tf-keras source model (fit one step with Adam, then perturbed) and its files."""
    import tensorflow as tf
    import tf_keras

    m = build(tf_keras, model, SOURCE_SEED["tfkeras"])
    x = inputs(model, n=4, seed=1)
    fit_one_step(tf_keras, m, x)
    m.set_weights(perturbed([weight_name(w) for w in m.weights], m.get_weights(), 21))
    paths = {}
    paths["tfkeras_h5"] = os.path.join(d, "tfkeras", "w.h5")
    os.makedirs(os.path.dirname(paths["tfkeras_h5"]), exist_ok=True)
    m.save_weights(paths["tfkeras_h5"])
    paths["tfkeras_tf"] = os.path.join(d, "tfkeras", "tf", "w")
    m.save_weights(paths["tfkeras_tf"])
    paths["tfkeras_full_h5"] = os.path.join(d, "tfkeras", "m.h5")
    m.save(paths["tfkeras_full_h5"])
    ckpt = tf.train.Checkpoint(model=m, optimizer=m.optimizer)
    mgr = tf.train.CheckpointManager(ckpt, os.path.join(d, "tfkeras", "manager"), max_to_keep=2)
    mgr.save()
    paths["tfkeras_ckpt_manager"] = os.path.join(d, "tfkeras", "manager")
    paths["tfkeras_savedmodel"] = os.path.join(d, "tfkeras", "savedmodel")
    m.save(paths["tfkeras_savedmodel"], save_format="tf")
    paths["tfkeras_safetensors"] = os.path.join(d, "tfkeras", "w.safetensors")
    write_safetensors(m, paths["tfkeras_safetensors"])
    return m.get_weights(), paths


def write_keras3_sources(model, d):
    import keras

    m = build(keras, model, SOURCE_SEED["keras3"])
    x = inputs(model, n=4, seed=2)
    fit_one_step(keras, m, x)
    m.set_weights(perturbed([weight_name(w) for w in m.weights], m.get_weights(), 22))
    os.makedirs(os.path.join(d, "keras3"), exist_ok=True)
    paths = {}
    paths["keras3_weights_h5"] = os.path.join(d, "keras3", "w.weights.h5")
    m.save_weights(paths["keras3_weights_h5"])
    paths["keras3_keras"] = os.path.join(d, "keras3", "m.keras")
    m.save(paths["keras3_keras"])
    paths["keras3_legacy_h5"] = os.path.join(d, "keras3", "m.h5")
    m.save(paths["keras3_legacy_h5"])
    paths["keras3_export"] = os.path.join(d, "keras3", "export")
    m.export(paths["keras3_export"], verbose=False)
    paths["keras3_safetensors"] = os.path.join(d, "keras3", "w.safetensors")
    write_safetensors(m, paths["keras3_safetensors"])
    return m.get_weights(), paths


def write_tf1_saver(model, d):
    """The tf-keras model built inside tf.Graph(), trained one step by a TF1 AdamOptimizer
    train op with a global_step, perturbed, saved by tf.compat.v1.train.Saver."""
    import tensorflow as tf
    import tf_keras

    v1 = tf.compat.v1
    g = tf.Graph()
    with g.as_default():
        v1.set_random_seed(SOURCE_SEED["tf1"])
        np.random.seed(SOURCE_SEED["tf1"])
        m = build(tf_keras, model, SOURCE_SEED["tf1"], clear=False)
        x = inputs(model, n=4, seed=3)
        x_ph = v1.placeholder(tf.float32, (None,) + input_shape(model))
        y = m(x_ph, training=True)
        y_ph = v1.placeholder(tf.float32, y.shape)
        loss = tf.reduce_mean(tf.square(y - y_ph))
        step = v1.train.get_or_create_global_step()
        train = v1.train.AdamOptimizer(1e-3).minimize(loss, global_step=step, var_list=m.trainable_weights)
        saver = v1.train.Saver()
        with v1.Session(graph=g) as sess:
            sess.run(v1.global_variables_initializer())
            sess.run(train, {x_ph: x, y_ph: train_targets(m, x, y.shape[1:])})
            values = perturbed([w.name for w in m.weights], sess.run(m.weights), 23)
            phs = [v1.placeholder(w.dtype.base_dtype, w.shape) for w in m.weights]
            sess.run([w.assign(p) for w, p in zip(m.weights, phs)], dict(zip(phs, values)))
            prefix = saver.save(sess, os.path.join(d, "tf1", "model.ckpt"), global_step=step)
            values = sess.run(m.weights)
    return values, {"tf1_saver": prefix}
