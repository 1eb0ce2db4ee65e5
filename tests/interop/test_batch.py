"""Batch conversion as a user runs it: two dozen Keras TF-format checkpoints plus a broken
file through `convert runs/*/weights --out-dir out --to h5`; every good output loads in
tf-keras with identical predictions, the broken input is named and the exit status is 1.
And the documented shell loop over `*.index` files."""
import glob
import os
import subprocess

import numpy as np

from conftest import binary, run


def test_two_dozen_runs_and_a_broken_one(tmp_path):
    import tf_keras as keras

    L = keras.layers
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 6)).astype("float32")
    cfg = None
    want = {}
    for i in range(24):
        m = keras.Sequential([keras.Input((6,)), L.Dense(5, activation="relu"), L.BatchNormalization(), L.Dense(2)])
        for w in m.weights:
            v = rng.standard_normal(w.shape).astype("float32")
            w.assign(np.abs(v) + 0.5 if "variance" in w.name else v)
        cfg = m.to_json()
        prefix = str(tmp_path / "runs" / f"run{i:02d}" / "weights")
        m.save_weights(prefix)
        want[i] = m.predict(x, verbose=0)
    broken = tmp_path / "runs" / "run24"
    broken.mkdir()
    (broken / "weights.index").write_bytes(b"\x00" * 100)
    (broken / "weights.data-00000-of-00001").write_bytes(b"")

    inputs = sorted(glob.glob(str(tmp_path / "runs" / "*" / "weights.index")))
    out = tmp_path / "out"
    r = run("convert", *inputs, "--out-dir", out, "--to", "h5")
    assert r.returncode == 1, r.stderr
    assert "run24" in r.stderr and "1 of 25 inputs failed" in r.stderr, r.stderr
    for i in range(24):
        m = keras.models.model_from_json(cfg)
        m.load_weights(str(out / f"run{i:02d}" / "weights.h5"))
        assert np.array_equal(m.predict(x, verbose=0), want[i]), i


def test_documented_shell_loop(tmp_path):
    import tensorflow as tf

    for i in range(3):
        ck = tf.train.Checkpoint(v=tf.Variable(np.arange(6, dtype="float32") * i, name="v"))
        ck.write(str(tmp_path / "runs" / f"r{i}" / "model"))
    env = dict(os.environ, PATH=os.path.dirname(binary()) + os.pathsep + os.environ["PATH"])
    loop = 'for f in runs/*/*.index; do ckptconv convert "$f" -o "${f%.index}.safetensors"; done'
    subprocess.run(["bash", "-c", loop], cwd=tmp_path, env=env, check=True, capture_output=True)
    from safetensors.numpy import load_file

    for i in range(3):
        st = load_file(str(tmp_path / "runs" / f"r{i}" / "model.safetensors"))
        assert np.array_equal(st["v"], np.arange(6, dtype="float32") * i)
