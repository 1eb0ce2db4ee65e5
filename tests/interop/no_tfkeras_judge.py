"""The judge of test_no_tfkeras.py, run in a venv with Keras 3 and TensorFlow but NO tf-keras
(~/.cache/ckptconv-venv-keras3, from requirements-keras3.txt).

    python no_tfkeras_judge.py template OUT_DIR
        writes OUT_DIR/template.weights.h5 and OUT_DIR/template.keras: the model built by
        `build` in Keras 3 with freshly initialised weights (TEMPLATE_SEED);
    python no_tfkeras_judge.py judge --weights W.npz --x X.npy [--weights-h5 F]... [--keras F]...
        W.npz holds the tf-keras model's get_weights() (arr_0, arr_1, …), X.npy the input batch.
        The Keras 3 model with those weights (set_weights) gives the reference predictions; each
        --weights-h5 file is loaded with load_weights into a fresh model (FRESH_SEED, whose own
        predictions must differ), each --keras file with keras.models.load_model; all must
        predict exactly (np.array_equal) what the reference predicts and hold exactly its weights.
        Each --decoy file (a .keras or .weights.h5 holding other weights, e.g. a template) is
        loaded the same way and must NOT: the judge shows it tells them apart.

Both print one JSON object on stdout (the last line); `judge` sets "ok".

`build` takes the Keras module as `K`, so that test_no_tfkeras.py builds the very same
architecture with tf-keras (importing this file imports no framework).
"""
import argparse
import importlib.util
import json
import os
import sys

FRESH_SEED = 7
TEMPLATE_SEED = 11


def build(K):
    """A small functional CNN with BatchNormalization (the same code for tf-keras and Keras 3)."""
    inp = K.Input((8, 8, 3))
    x = K.layers.Conv2D(4, 3, padding="same")(inp)
    x = K.layers.BatchNormalization()(x)
    x = K.layers.ReLU()(x)
    x = K.layers.Conv2D(5, 3)(x)
    x = K.layers.BatchNormalization()(x)
    x = K.layers.GlobalAveragePooling2D()(x)
    out = K.layers.Dense(3)(x)
    return K.Model(inp, out)


def no_tf_keras():
    """tf-keras must be absent: the point of this venv."""
    try:
        import tf_keras  # noqa: F401
    except ImportError:
        return importlib.util.find_spec("tf_keras") is None
    return False


def keras3():
    import keras

    keras.utils.set_random_seed(0)
    return keras


def predict(model, x):
    return model.predict(x, verbose=0)


def cmd_template(args):
    keras = keras3()
    keras.utils.set_random_seed(TEMPLATE_SEED)
    m = build(keras)
    os.makedirs(args.out_dir, exist_ok=True)
    wh5 = os.path.join(args.out_dir, "template.weights.h5")
    kf = os.path.join(args.out_dir, "template.keras")
    m.save_weights(wh5)
    m.save(kf)
    print(json.dumps({"no_tf_keras": no_tf_keras(), "keras": keras.__version__,
                      "weights_h5": wh5, "keras_file": kf}))
    return 0


def cmd_judge(args):
    import numpy as np

    verdict = {"no_tf_keras": no_tf_keras(), "python": sys.executable, "checks": {},
               "errors": []}
    keras = keras3()
    verdict["keras"] = keras.__version__
    import tensorflow as tf
    verdict["tensorflow"] = tf.__version__

    x = np.load(args.x)
    npz = np.load(args.weights)
    weights = [npz[f"arr_{i}"] for i in range(len(npz.files))]

    ref_model = build(keras)
    ref_model.set_weights(weights)
    ref = predict(ref_model, x)
    verdict["reference"] = ref.tolist()

    def same_weights(model):
        got = model.get_weights()
        return len(got) == len(weights) and all(
            g.shape == w.shape and g.dtype == w.dtype and np.array_equal(g, w)
            for g, w in zip(got, weights))

    def judge(name, load):
        c = {}
        verdict["checks"][name] = c
        try:
            model, fresh = load()
            if fresh is not None:
                c["fresh_differs"] = bool(not np.array_equal(fresh, ref))
            got = predict(model, x)
            c["identical"] = bool(np.array_equal(got, ref))
            c["weights_identical"] = bool(same_weights(model))
            if not c["identical"]:
                c["max_abs_diff"] = float(np.max(np.abs(got - ref)))
        except Exception as e:  # noqa: BLE001 — the verdict reports it
            c["error"] = f"{type(e).__name__}: {e}"
            verdict["errors"].append(f"{name}: {c['error']}")

    def load_weights(path):
        keras.utils.set_random_seed(FRESH_SEED)
        m = build(keras)
        fresh = predict(m, x)
        m.load_weights(path)
        return m, fresh

    for path in args.weights_h5:
        judge(path, lambda path=path: load_weights(path))

    def load_keras(path):
        return keras.models.load_model(path), None

    for path in args.keras:
        judge(path, lambda path=path: load_keras(path))

    for path in args.decoy:
        judge(path, lambda path=path: load_keras(path) if path.endswith(".keras")
              else load_weights(path))
        verdict["checks"][path]["decoy"] = True

    def passed(c):
        if c.get("decoy"):
            return "error" not in c and not c["identical"] and not c["weights_identical"]
        return (c.get("identical") and c.get("weights_identical")
                and c.get("fresh_differs", True))

    verdict["ok"] = bool(
        verdict["no_tf_keras"] and not verdict["errors"] and verdict["checks"]
        and all(passed(c) for c in verdict["checks"].values()))
    print(json.dumps(verdict))
    return 0


def main():
    # Only when run as the judge (test_no_tfkeras.py imports `build` from this file).
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
    os.environ.pop("TF_USE_LEGACY_KERAS", None)
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("template")
    t.add_argument("out_dir")
    j = sub.add_parser("judge")
    j.add_argument("--weights", required=True)
    j.add_argument("--x", required=True)
    j.add_argument("--weights-h5", action="append", default=[])
    j.add_argument("--keras", action="append", default=[])
    j.add_argument("--decoy", action="append", default=[])
    args = p.parse_args()
    return cmd_template(args) if args.cmd == "template" else cmd_judge(args)


if __name__ == "__main__":
    sys.exit(main())
