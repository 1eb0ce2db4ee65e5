#!/usr/bin/env python3
"""Writes a large checkpoint with TensorFlow itself, for `scripts/bench.sh`.

    python scripts/tf_bench_checkpoint.py OUT_PREFIX [GIB] [N_TENSORS]
    BENCH_CKPT=OUT_PREFIX scripts/bench.sh

About GIB GiB (default 2) of float32 variables, N_TENSORS of them (default 300), of mixed
sizes (the same 1×–40× spread as `examples/synth.rs`), saved by `tf.train.Checkpoint`
(the object-based format every TF2 program writes). Values are seeded normal floats, so
the data does not compress and has no special structure.

Needs TensorFlow (the interop venv has it: ~/.cache/ckptconv-venv/bin/python). The
benchmark itself needs no Python; this only makes its input a file TensorFlow wrote.
"""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    prefix = sys.argv[1]
    gib = float(sys.argv[2]) if len(sys.argv) > 2 else 2.0
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 300
    total = int(gib * (1 << 30)) // 4
    weights = [1 + (i * 7919) % 40 for i in range(n)]
    wsum = sum(weights)
    rng = np.random.default_rng(20261122)
    variables = {}
    for i, w in enumerate(weights):
        elems = max(1, total * w // wsum)
        # A 2-D shape when it divides evenly, as real weight matrices have.
        shape = (elems // 256, 256) if elems % 256 == 0 and elems >= 256 else (elems,)
        value = rng.standard_normal(elems, dtype=np.float32).reshape(shape)
        variables[f"layer_{i:03d}"] = tf.Variable(value, name=f"layer_{i:03d}")
    os.makedirs(os.path.dirname(os.path.abspath(prefix)), exist_ok=True)
    path = tf.train.Checkpoint(**variables).write(prefix)
    size = sum(
        os.path.getsize(os.path.join(os.path.dirname(path) or ".", f))
        for f in os.listdir(os.path.dirname(path) or ".")
        if f.startswith(os.path.basename(path) + ".")
    )
    print(f"{path}: {n} float32 variables, {size / (1 << 30):.2f} GiB, written by TensorFlow {tf.__version__}")


if __name__ == "__main__":
    main()
