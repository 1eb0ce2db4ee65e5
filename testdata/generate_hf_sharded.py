#!/usr/bin/env python3
"""Writes testdata/hf_sharded/: transformers' sharded `tf_model.h5` of a tiny random BERT.

Run from the repository root in a venv with `tests/interop/requirements.txt`
(tensorflow-cpu 2.21, tf-keras, transformers 4.57):

    python testdata/generate_hf_sharded.py

`TFBertModel(config).save_pretrained(dir, max_shard_size=…)` writes
`tf_model-0000k-of-0000N.h5` (each shard's root `layer_names` lists its datasets, each at
the weight's name without the model's: `bert/embeddings/LayerNorm/beta:0`) and
`tf_model.h5.index.json` (`weight_map`: each weight's full name to its shard). The same
model is also saved whole, `whole/tf_model.h5` (what `save_pretrained` writes without
sharding: one layer group `bert`, `weight_names` in Keras' order), which the tests use as
a `--like` template and as the reference layout.

`expected.json` records what h5py reads: every shard's `layer_names` and every dataset's
dtype, shape and bytes (hex), the index's `weight_map`, and `whole/tf_model.h5`'s
`weight_names` for layer `bert`.

Weights are seeded (`tf.random.set_seed`); a rerun writes the same values.
"""
import json
import os
import shutil
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import transformers as T  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "hf_sharded")


def strings(x):
    return [v.decode() if isinstance(v, bytes) else str(v) for v in x]


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    cfg = T.BertConfig(vocab_size=16, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                       intermediate_size=16, max_position_embeddings=16, type_vocab_size=2)
    tf.random.set_seed(7)
    model = T.TFBertModel(cfg)
    model(model.dummy_inputs)
    model.save_pretrained(OUT, max_shard_size=1200)
    model.save_pretrained(os.path.join(OUT, "whole"))
    os.remove(os.path.join(OUT, "whole", "config.json"))  # the one beside the shards serves
    with open(os.path.join(OUT, "tf_model.h5.index.json")) as f:
        index = json.load(f)
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) >= 3, shards
    doc = {"transformers": T.__version__, "weight_map": index["weight_map"], "shards": {}}
    for s in shards:
        with h5py.File(os.path.join(OUT, s), "r") as f:
            names = strings(f.attrs["layer_names"])
            datasets = {}
            for n in names:
                a = np.asarray(f[n])
                datasets[n] = {"dtype": a.dtype.name, "shape": list(a.shape),
                               "hex": np.ascontiguousarray(a).tobytes().hex()}
            doc["shards"][s] = {"layer_names": names, "datasets": datasets}
    with h5py.File(os.path.join(OUT, "whole", "tf_model.h5"), "r") as f:
        doc["whole_layer_names"] = strings(f.attrs["layer_names"])
        doc["whole_weight_names"] = strings(f["bert"].attrs["weight_names"])
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(doc, f, indent=1, sort_keys=True)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(d, n)) for d, _, ns in os.walk(OUT) for n in ns)
    print(f"wrote {OUT}: {len(shards)} shards, {total} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
