"""Shared helpers for the interop suite: real TensorFlow/Keras judge ckptconv."""
import json
import os
import subprocess

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import pytest  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def binary():
    path = os.environ.get("CKPTCONV") or os.path.join(ROOT, "target", "release", "ckptconv")
    if not os.path.exists(path):
        pytest.fail(f"ckptconv binary not found at {path}: run `cargo build --release` or set CKPTCONV")
    return path


def run(*args, check=None):
    """Run ckptconv; returns CompletedProcess. `check` asserts the exit code."""
    p = subprocess.run([binary(), *map(str, args)], capture_output=True, text=True)
    assert "panicked" not in p.stderr, p.stderr
    if check is not None:
        assert p.returncode == check, f"exit {p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}"
    return p


def inspect_json(path):
    return json.loads(run("inspect", "--json", path, check=0).stdout)


@pytest.fixture(scope="session")
def bundles(tmp_path_factory):
    """One test_keras_matrix.Bundle per model per session: the model's sources written by
    real tf-keras, Keras 3 and TF1, and its reference predictions."""
    from test_keras_matrix import Bundle

    root = str(tmp_path_factory.mktemp("keras_matrix"))
    cache = {}

    def get(model):
        if model not in cache:
            cache[model] = Bundle(model, root)
        return cache[model]

    return get
