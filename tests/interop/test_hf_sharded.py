"""transformers' sharded tf_model.h5, judged by h5py and by transformers itself.

`TFBertModel.save_pretrained(dir, max_shard_size=…)` of a tiny random BERT writes
`tf_model-0000k-of-0000N.h5` shards (root `layer_names` lists datasets, not layer groups)
and `tf_model.h5.index.json` (`weight_map`: weight name → shard). ckptconv must:

- read each shard on its own (copied away from its index) and through the index, the
  latter also when given any shard beside the index: every tensor equal to h5py's read;
- convert the index to one safetensors file, every tensor equal to h5py's read of the
  shards, named by the index's weight names (without `:0`);
- convert the index to one `tf_model.h5` that `from_pretrained` loads with outputs
  identical to the original model's (test_third_party's judge). The shards list weights
  by name, not in Keras' order, so this needs `--like` a `tf_model.h5` of the same model
  class (another instance's, other weights); without it the conversion is refused cleanly.
"""
import json
import os
import shutil

import h5py
import numpy as np
import pytest
import tensorflow as tf
from safetensors.numpy import load_file

from conftest import inspect_json, run
from test_third_party import HF_MODELS, convert, hf, hf_judge, hf_outputs  # noqa: F401 (hf: fixture)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def strings(x):
    return [v.decode() if isinstance(v, bytes) else str(v) for v in x]


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    import transformers as T

    root = tmp_path_factory.mktemp("hf_sharded")
    cfg = T.BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                       intermediate_size=64, max_position_embeddings=64)
    ids = tf.constant([[5, 17, 42, 8, 93, 1], [2, 3, 4, 5, 6, 7]], dtype=tf.int32)
    inputs = {"input_ids": ids, "token_type_ids": tf.constant([[0, 0, 0, 1, 1, 1]] * 2),
              "attention_mask": tf.constant([[1] * 6, [1, 1, 1, 1, 0, 0]])}
    tf.random.set_seed(0)
    m = T.TFBertModel(cfg)
    want = hf_outputs(m, inputs)
    m.save_pretrained(str(root / "h5"))
    m.save_pretrained(str(root / "sharded"), max_shard_size="30KB")
    tf.random.set_seed(1)
    fresh = T.TFBertModel(cfg)
    hf_outputs(fresh, inputs)
    fresh.save_pretrained(str(root / "fresh"))
    d = root / "sharded"
    with open(d / "tf_model.h5.index.json") as f:
        index = json.load(f)
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) >= 3, shards
    size = sum(os.path.getsize(d / s) for s in shards)
    assert size < 600_000, size
    # h5py's read of every shard: dataset path -> value, per shard.
    datasets = {}
    for s in shards:
        with h5py.File(d / s, "r") as f:
            datasets[s] = {n: np.asarray(f[n]) for n in strings(f.attrs["layer_names"])}
    case = {"cls": T.TFBertModel, "inputs": inputs, "want": want, "dir": root}
    return {"dir": d, "index": index, "shards": shards, "datasets": datasets, "case": case}


def dataset_of(weight):
    """transformers' shard dataset for a weight name (modeling_tf_utils.save_pretrained)."""
    if "model." in weight or len(weight.split("/")) == 1:
        return weight
    return "/".join(weight.split("/")[1:])


def test_the_judge_loads_transformers_own_sharded_set(bert):
    hf_judge(bert["case"], bert["dir"])


def test_each_shard_on_its_own(bert, tmp_path):
    for s in bert["shards"]:
        alone = tmp_path / s
        shutil.copy(bert["dir"] / s, alone)
        doc = inspect_json(alone)
        want = bert["datasets"][s]
        assert {t["name"] for t in doc["tensors"]} == set(want)
        for t in doc["tensors"]:
            assert t["variable"] == t["name"][: -len(":0")]
            assert t["shape"] == list(want[t["name"]].shape)
        run("verify", alone, check=0)
        run("summary", alone, check=0)
        out = tmp_path / (s + ".safetensors")
        run("convert", alone, "-o", out, "--no-progress", check=0)
        got = load_file(str(out))
        assert sorted(got) == sorted(n[: -len(":0")] for n in want)
        for n, v in want.items():
            assert np.array_equal(got[n[: -len(":0")]], v) and got[n[: -len(":0")]].dtype == v.dtype, n


def test_the_index_and_every_shard_beside_it_read_as_the_whole_model(bert):
    index = bert["dir"] / "tf_model.h5.index.json"
    doc = inspect_json(index)
    by_name = {t["name"]: t for t in doc["tensors"]}
    wm = bert["index"]["weight_map"]
    assert len(by_name) == len(wm)
    for w, s in wm.items():
        t = by_name[dataset_of(w)]
        assert t["variable"] == w[: -len(":0")]
        assert t["shape"] == list(bert["datasets"][s][dataset_of(w)].shape)
    run("verify", index, check=0)
    for s in bert["shards"]:
        assert inspect_json(bert["dir"] / s)["tensors"] == doc["tensors"], s
        run("verify", bert["dir"] / s, check=0)


def test_the_index_converts_to_one_safetensors(bert, tmp_path):
    out = tmp_path / "model.safetensors"
    run("convert", bert["dir"] / "tf_model.h5.index.json", "-o", out, "--no-progress", check=0)
    got = load_file(str(out))
    wm = bert["index"]["weight_map"]
    assert sorted(got) == sorted(w[: -len(":0")] for w in wm)
    for w, s in wm.items():
        v = bert["datasets"][s][dataset_of(w)]
        g = got[w[: -len(":0")]]
        assert g.dtype == v.dtype and np.array_equal(g, v), w


def test_the_index_converts_to_one_tf_model_h5_that_from_pretrained_loads(bert, tmp_path):
    index = bert["dir"] / "tf_model.h5.index.json"
    refused = tmp_path / "refused" / "tf_model.h5"
    p = run("convert", index, "-o", refused, "--no-progress")
    errors = [line for line in p.stderr.splitlines() if line.startswith("ckptconv: error: ")]
    assert p.returncode == 1 and len(errors) == 1 and "--like" in errors[0], p.stderr
    assert not refused.exists()

    out = tmp_path / "one"
    out.mkdir()
    shutil.copy(bert["dir"] / "config.json", out / "config.json")
    template = bert["case"]["dir"] / "fresh" / "tf_model.h5"
    run("convert", index, "-o", out / "tf_model.h5", "--like", template, "--no-progress", check=0)
    assert not any(f.startswith("tf_model-") for f in os.listdir(out))
    hf_judge(bert["case"], out)
    # The same through a shard given as the input.
    out2 = tmp_path / "two"
    out2.mkdir()
    run("convert", bert["dir"] / bert["shards"][-1], "-o", out2 / "tf_model.h5", "--like", template,
        "--no-progress", check=0)
    hf_judge(bert["case"], out2)


def test_a_damaged_set_fails_cleanly(bert, tmp_path):
    d = tmp_path / "set"
    shutil.copytree(bert["dir"], d)
    index = d / "tf_model.h5.index.json"
    doc = json.loads(index.read_text())
    w = sorted(doc["weight_map"])[0]
    other = next(s for s in bert["shards"] if s != doc["weight_map"][w])
    doc["weight_map"][w] = other
    index.write_text(json.dumps(doc))
    p = run("convert", index, "-o", tmp_path / "x.safetensors")
    assert p.returncode == 1 and w in p.stderr and other in p.stderr, p.stderr
    assert not (tmp_path / "x.safetensors").exists()
    doc["weight_map"][w] = "../" + bert["shards"][0]
    index.write_text(json.dumps(doc))
    p = run("inspect", index)
    assert p.returncode == 1 and "outside the index's directory" in p.stderr, p.stderr


@pytest.mark.parametrize("model", HF_MODELS)
def test_every_third_party_model_index_converts_like_its_tf_model_h5(hf, tmp_path, model):
    """test_third_party's four models (max_shard_size="10KB"): index -> one tf_model.h5
    --like another instance's tf_model.h5 -> from_pretrained. T5's tf_model.h5 lists its
    shared embedding under `shared/`, `encoder/` and `decoder/` while the index has it once:
    --like fills the encoder's and decoder's copies from `shared`'s (a tied weight)."""
    case = hf[model]
    out = tmp_path / "out"
    template = str(case["dir"] / "fresh" / "tf_model.h5")
    if convert(case["dir"] / "sharded" / "tf_model.h5.index.json", out / "tf_model.h5", "--like", template,
               may_refuse=False):
        hf_judge(case, out)


def test_masked_lm_with_tied_embeddings_converts_like_its_tf_model_h5(tmp_path):
    """TFRobertaForMaskedLM: its tf_model.h5 lists the word embeddings (the whole embedding
    layer, the lm_head's decoder) under `roberta/` and again under `lm_head/`; the sharded
    index lists them once. --like pairs the lm_head's own weights by name and fills its
    copies of the tied ones from `roberta`'s, so from_pretrained loads the one file."""
    import transformers as T

    cfg = T.RobertaConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                          intermediate_size=64, max_position_embeddings=40)
    ids = tf.constant([[0, 17, 42, 8, 93, 2], [0, 3, 4, 5, 6, 2]], dtype=tf.int32)
    inputs = {"input_ids": ids, "attention_mask": tf.constant([[1] * 6, [1, 1, 1, 1, 0, 0]])}
    tf.random.set_seed(0)
    m = T.TFRobertaForMaskedLM(cfg)
    want = hf_outputs(m, inputs)
    m.save_pretrained(str(tmp_path / "h5"))
    m.save_pretrained(str(tmp_path / "sharded"), max_shard_size="8KB")
    tf.random.set_seed(1)
    fresh = T.TFRobertaForMaskedLM(cfg)
    hf_outputs(fresh, inputs)
    fresh.save_pretrained(str(tmp_path / "fresh"))
    index = tmp_path / "sharded" / "tf_model.h5.index.json"
    assert len(set(json.loads(index.read_text())["weight_map"].values())) >= 3
    with h5py.File(tmp_path / "fresh" / "tf_model.h5", "r") as f:
        assert any("word_embeddings" in n for n in strings(f["lm_head"].attrs["weight_names"]))
    case = {"cls": T.TFRobertaForMaskedLM, "inputs": inputs, "want": want, "dir": tmp_path}
    template = tmp_path / "fresh" / "tf_model.h5"
    for k, src in enumerate([index, tmp_path / "sharded" / "tf_model-00001-of-00005.h5"]):
        if not src.exists():  # another shard count: any shard beside the index will do
            src = next((tmp_path / "sharded").glob("tf_model-*.h5"))
        out = tmp_path / f"one{k}"
        out.mkdir()
        run("convert", src, "-o", out / "tf_model.h5", "--like", template, "--no-progress", check=0)
        hf_judge(case, out)

