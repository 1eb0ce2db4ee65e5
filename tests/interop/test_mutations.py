"""Mutations of files freshly written by TensorFlow, tf-keras and Keras 3 (not testdata):
every command ends in exit 0 or 1, never a panic or a signal, with a short message, and no
temporary file is left behind.

Seeded, so a failure reproduces. Mutations: bit flips, random bytes, zeroed ranges,
truncation and duplicated ranges, on the `.h5` files and on both files of checkpoints
(tf.train.Checkpoint, and tf-keras `save_weights` in TF format).
"""
import os
import random
import shutil

import numpy as np
import pytest

from conftest import run

os.environ.setdefault("KERAS_BACKEND", "tensorflow")


@pytest.fixture(scope="module")
def originals(tmp_path_factory):
    import keras as k3
    import tensorflow as tf
    import tf_keras as keras

    d = tmp_path_factory.mktemp("originals")
    m = keras.Sequential([
        keras.layers.Input((6,)),
        keras.layers.Dense(5, activation="relu", name="d1"),
        keras.layers.BatchNormalization(),
        keras.layers.Dense(3, name="out"),
    ])
    m.save_weights(str(d / "k2.h5"))
    m.save(str(d / "k2full.h5"))
    os.makedirs(d / "tfk")
    m.save_weights(str(d / "tfk" / "w"))
    m3 = k3.Sequential([k3.layers.Input((4,)), k3.layers.Dense(3, name="a"), k3.layers.LayerNormalization()])
    m3.save_weights(str(d / "k3.weights.h5"))
    v = {
        "x": tf.Variable(np.arange(12, dtype=np.float32).reshape(3, 4)),
        "s": tf.Variable(b"hello"),
        "i": tf.Variable(np.int64(7)),
    }
    tf.train.Checkpoint(**v).write(str(d / "tf2" / "ck"))
    return d


CASES = [
    ("k2.h5", ["k2.h5"]),
    ("k2full.h5", ["k2full.h5"]),
    ("k3.weights.h5", ["k3.weights.h5"]),
    ("tf2/ck", ["tf2/ck.index", "tf2/ck.data-00000-of-00001"]),
    ("tfk/w", ["tfk/w.index", "tfk/w.data-00000-of-00001"]),
]


def mutate(data, rng):
    kind = rng.choice(["flip", "bytes", "zero", "trunc", "dup"])
    i = rng.randrange(len(data))
    if kind == "flip":
        for _ in range(rng.randint(1, 4)):
            j = rng.randrange(len(data))
            data[j] ^= 1 << rng.randrange(8)
    elif kind == "bytes":
        k = rng.randint(1, 16)
        data[i:i + k] = bytes(rng.randrange(256) for _ in range(k))
    elif kind == "zero":
        k = rng.randint(1, 512)
        data[i:i + k] = bytes(min(k, len(data) - i))
    elif kind == "trunc":
        del data[i:]
    else:
        k = rng.randint(1, 64)
        data[i:i] = data[i:i + k]
    return kind


def test_mutated_files_fail_cleanly_everywhere(originals, tmp_path, monkeypatch):
    # Some mutations make libhdf5 1.10 loop forever (tests/bad/libhdf5_global_heap_hang.h5
    # is one); the probe's deadline turns that into an error. These files are tiny: 5 s.
    monkeypatch.setenv("CKPTCONV_H5_PROBE_SECONDS", "5")
    rng = random.Random(20261122)
    outcomes = {0: 0, 1: 0}
    for n in range(40):
        name, files = rng.choice(CASES)
        work = tmp_path / f"m{n}"
        src_dir = originals / os.path.dirname(name)
        shutil.copytree(src_dir, work)
        target = work / os.path.basename(rng.choice(files))
        data = bytearray(target.read_bytes())
        kind = mutate(data, rng)
        target.write_bytes(bytes(data))
        inp = work / os.path.basename(name)
        for args in (
            ["verify", inp],
            ["inspect", inp],
            ["summary", inp],
            ["convert", inp, "-o", work / "o.safetensors"],
            ["convert", inp, "-o", work / "o.h5"],
            ["convert", inp, "-o", work / "oc" / "model"],
        ):
            p = run(*args)  # asserts no panic
            said = (p.stdout + p.stderr).strip()
            what = f"{name} ({kind} of {target.name}) {args[0]}: exit {p.returncode}\n{said}"
            assert p.returncode in (0, 1), what
            if p.returncode == 1:
                # A short, clear message (verify reports on stdout, the others on stderr).
                assert 0 < len(said.splitlines()) <= 3, what
            outcomes[p.returncode] += 1
            left = [f for f in os.listdir(work) if "ckptconv-tmp" in f]
            assert not left, f"{what}\nleft {left}"
    # The sweep exercised both outcomes.
    assert outcomes[0] > 0 and outcomes[1] > 0, outcomes
