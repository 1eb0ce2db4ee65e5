#!/usr/bin/env python3
"""Writes testdata/tf/unnamed_*: TF2 checkpoints of `tf.Variable`s created without names.

Run from the repository root in a venv with `tensorflow-cpu==2.21.0`:

    python testdata/generate_tf_unnamed.py

Every `tf.Variable` created without a name in eager mode is called `Variable` (its object
graph `full_name`), so a `tf.Module` of such variables has many tensors of one name; so
do two sub-modules that each name their variable `w`. Each fixture directory gets an
`expected.json` as `generate_tf.py` writes it (what `tf.train.load_checkpoint` reads back:
keys, dtypes, shapes, exact bytes, and the object graph's `checkpoint_key -> full_name`),
plus `variable_names`: the variable name docs/naming.md gives each key (the `full_name` when
no other tensor has it, else the key's object path), computed here on its own from the
keys and full names.

- `unnamed_module/`: `tf.train.Checkpoint(root=net).write()`: the module is the root.
- `unnamed_step_net/`: `tf.train.Checkpoint(step=…, net=net).save()`: `save_counter`, a
  `checkpoint` state file.
- `unnamed_saved_model/`: `tf.saved_model.save(net)`, net with a `tf.function`.
- `unnamed_sharded/`: `tf.train.Checkpoint(net=net).write()` with `MaxShardSizePolicy`:
  several data files, one variable sliced across them.

Values are seeded; a rerun writes the same tensor bytes.
"""
import json
import os
import shutil
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from generate_tf import dump_expected  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tf")
SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"


def values(rng, shape, dtype=np.float32):
    if np.issubdtype(dtype, np.integer):
        return rng.integers(-1000, 1000, size=shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


class Inner(tf.Module):
    """A nested module: one unnamed variable, one named `w` (as its sibling's is)."""

    def __init__(self, rng, n):
        super().__init__()
        self.kernel = tf.Variable(values(rng, [n, 2]))
        self.w = tf.Variable(values(rng, [2]), name="w")


class Net(tf.Module):
    """Unnamed variables (two of the same shape and value), a list of them, nested
    modules, a uniquely named variable."""

    def __init__(self, seed, big=False):
        super().__init__()
        rng = np.random.default_rng(seed)
        self.a = tf.Variable(np.zeros([3], np.float32))
        self.b = tf.Variable(np.zeros([3], np.float32))  # same shape, same bytes as a
        self.scale = tf.Variable(values(rng, [], np.float32))
        self.table = [tf.Variable(values(rng, [2, 2])), tf.Variable(values(rng, [4], np.int64))]
        self.first = Inner(rng, 3)
        self.second = Inner(rng, 4)
        self.named = tf.Variable(values(rng, [2, 3]), name="only_one")
        if big:
            self.big = tf.Variable(values(rng, [32, 16]))

    @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32)])
    def __call__(self, x):
        return tf.matmul(x + self.a + self.b, self.first.kernel) * self.scale + self.first.w


def object_path(key):
    """The key's object path, each component unescaped (`..` -> `.`, `.S` -> `/`)."""
    out = []
    for comp in key[: -len(SUFFIX)].split("/"):
        s, i = "", 0
        while i < len(comp):
            if comp[i] == "." and i + 1 < len(comp) and comp[i + 1] in ".S":
                s += "." if comp[i + 1] == "." else "/"
                i += 2
            else:
                s += comp[i]
                i += 1
        out.append(s)
    return "/".join(out)


def unique_names(full_names):
    """docs/naming.md: a full name several tensors share -> each one's object path, until
    no name is shared (none of these fixtures lists a variable twice)."""
    names = {k: (f if f else object_path(k)) for k, f in full_names.items()}
    by_path = {k: not f for k, f in full_names.items()}
    while True:
        count = {}
        for n in names.values():
            count[n] = count.get(n, 0) + 1
        moved = [k for k, n in names.items() if count[n] > 1 and not by_path[k]]
        if not moved:
            return names
        for k in moved:
            names[k] = object_path(k)
            by_path[k] = True


def finish(prefix, out, extra=None):
    dump_expected(prefix, out, extra)
    path = os.path.join(out, "expected.json")
    with open(path) as f:
        doc = json.load(f)
    doc["variable_names"] = unique_names(doc["full_names"])
    shared = [k for k, v in doc["full_names"].items() if v == "Variable"]
    assert len(shared) > 1, f"{out}: the fixture must have several unnamed variables"
    with open(path, "w") as f:
        json.dump(doc, f, indent=1, sort_keys=True)
        f.write("\n")


def fresh(name):
    path = os.path.join(ROOT, name)
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


def unnamed_module():
    out = fresh("unnamed_module")
    prefix = tf.train.Checkpoint(root=Net(1)).write(os.path.join(out, "ckpt"))
    finish(prefix, out, {"seed": 1, "root": "net"})


def unnamed_step_net():
    out = fresh("unnamed_step_net")
    ckpt = tf.train.Checkpoint(step=tf.Variable(41, dtype=tf.int64), net=Net(2))
    ckpt.step.assign_add(1)
    prefix = ckpt.save(os.path.join(out, "ckpt"))
    finish(prefix, out, {"seed": 2, "root": "checkpoint(step, net)", "step": 42})


def unnamed_saved_model():
    out = fresh("unnamed_saved_model")
    tf.saved_model.save(Net(3), out)
    finish(os.path.join(out, "variables", "variables"), out, {"seed": 3, "root": "net"})


def unnamed_sharded():
    out = fresh("unnamed_sharded")
    ckpt = tf.train.Checkpoint(net=Net(4, big=True))
    options = tf.train.CheckpointOptions(
        experimental_sharding_callback=tf.train.experimental.MaxShardSizePolicy(max_shard_size=1024)
    )
    prefix = ckpt.write(os.path.join(out, "ckpt"), options=options)
    shards = [f for f in os.listdir(out) if ".data-" in f]
    assert len(shards) >= 3, shards
    finish(prefix, out, {"seed": 4, "root": "checkpoint(net)", "big": True})


def main():
    os.makedirs(ROOT, exist_ok=True)
    for fn in (unnamed_module, unnamed_step_net, unnamed_saved_model, unnamed_sharded):
        fn()
        print("wrote", fn.__name__, file=sys.stderr)


if __name__ == "__main__":
    main()
