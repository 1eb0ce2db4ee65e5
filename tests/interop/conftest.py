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
