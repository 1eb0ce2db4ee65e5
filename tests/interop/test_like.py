"""`convert SRC -o OUT --like TEMPLATE`, judged as the matrix judges (test_keras_matrix.py):
the output loads into a fresh model of the target framework (or, for `.keras`, through
`keras.models.load_model`) and predicts exactly what the source's weights predict — or
ckptconv refused with one line and wrote nothing.

The templates are files of the target model that hold *other* weights (the other
framework's family of the same model, or a freshly built model with renamed layers), so
an output that took any bytes from its template predicts differently and fails.

Cells (model × source × template):
- Keras 2 → Keras 3: every tf-keras and TF1 source, with a Keras 3 `.keras` template
  (→ `.keras`) and a Keras 3 `.weights.h5` template (→ `.weights.h5`);
- Keras 3 → tf-keras: every Keras 3 source, with a tf-keras `.h5` template (→ `.h5`) and a
  tf-keras TF-format checkpoint template (→ a TF-format checkpoint);
- within one framework: the sources a Keras layout cannot be made from without the model
  (nested and frozen models from TF-format checkpoints and tf.train.Checkpoint, TF1 and
  safetensors files), with a freshly initialised full model as template (tf-keras
  `model.save('m.h5')` → `.h5`; Keras 3 `.keras` → `.weights.h5`);
- renamed layers: a Keras 3 template whose layers all have other names.
"""
import fnmatch
import os

import pytest

import matrix_models as mm
import test_keras_matrix as tm

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::UserWarning")]

TF_SOURCES = ["tfkeras_h5", "tfkeras_tf", "tfkeras_full_h5", "tfkeras_ckpt_manager",
              "tfkeras_savedmodel", "tfkeras_safetensors", "tf1_saver"]
K3_SOURCES = ["keras3_weights_h5", "keras3_keras", "keras3_legacy_h5", "keras3_safetensors"]

# (template source id, output in the cell's directory, framework that loads it)
TO_KERAS3 = [("keras3_keras", "out.keras"), ("keras3_weights_h5", "out.weights.h5")]
TO_TFKERAS = [("tfkeras_h5", "out.h5"), ("tfkeras_tf", os.path.join("out", "ckpt"))]

# Sources that record the model (layer order, nesting) themselves: with any template that
# does too, the conversion must happen.
RECORDED = {"tfkeras_h5", "tfkeras_tf", "tfkeras_full_h5", "tfkeras_ckpt_manager",
            "tfkeras_savedmodel", "keras3_keras", "keras3_legacy_h5", "keras3_weights_h5"}
# ...except where one side is a Keras 2 weights-only .h5 of a nested model (its weights
# listed trainable first, its layers' order not recorded) or a Keras 3 .weights.h5 whose
# nested model has layers of several classes, and names do not settle it.
MAY_REFUSE = ["nested-tfkeras_h5-*", "frozen-tfkeras_h5-*", "*-like-tfkeras_h5-*",
              "*-like-keras3_weights_h5-*", "nested-keras3_weights_h5-*",
              "frozen-keras3_weights_h5-*"]


def like_cells():
    out = []
    for model in mm.MODELS:
        cross = model in tm.CROSS_FRAMEWORK_OK
        for source in TF_SOURCES:
            if source == "tf1_saver" and model not in tm.TF1_MODELS:
                continue
            if cross:
                for template, path in TO_KERAS3:
                    out.append((model, source, template, path, "keras3"))
            if source in ("tfkeras_tf", "tfkeras_ckpt_manager", "tf1_saver", "tfkeras_safetensors"):
                out.append((model, source, "fresh_tfkeras_h5", "out.h5", "tfkeras"))
        for source in K3_SOURCES:
            if cross:
                for template, path in TO_TFKERAS:
                    out.append((model, source, template, path, "tfkeras"))
            out.append((model, source, "fresh_keras3_keras", "out.weights.h5", "keras3"))
    for model in ("mlp", "cnn"):
        for source in ("tfkeras_tf", "tfkeras_h5", "keras3_keras"):
            out.append((model, source, "renamed_keras", "out.keras", "keras3"))
    return out


CELLS = like_cells()
RESULTS = {}  # cell id -> (kind, detail)


class _Summary:
    def pytest_terminal_summary(self, terminalreporter):
        if not RESULTS:
            return
        counts = {k: sum(1 for r in RESULTS.values() if r[0] == k) for k in ("pass", "refused", "FAIL")}
        terminalreporter.section("ckptconv --like cells")
        terminalreporter.write_line(
            f"{counts['pass']} pass, {counts['refused']} refused, {counts['FAIL']} FAIL of {len(RESULTS)}")
        for kind in ("FAIL", "refused"):
            for cid, (k, detail) in RESULTS.items():
                if k == kind:
                    terminalreporter.write_line(f"{kind:7} {cid}: {detail[:300]}")


@pytest.fixture(scope="module", autouse=True)
def _summary(request):
    pm = request.config.pluginmanager
    if not pm.has_plugin("ckptconv-like-summary"):
        pm.register(_Summary(), "ckptconv-like-summary")
    yield


def cell_id(c):
    model, source, template, path, fw = c
    return f"{model}-{source}-like-{template}-to-{os.path.basename(path)}"


def must_convert(cid, source, template):
    if any(fnmatch.fnmatchcase(cid, p) for p in MAY_REFUSE):
        return False
    return source in RECORDED and template in RECORDED | {
        "renamed_keras", "fresh_tfkeras_h5", "fresh_keras3_keras"}


def fresh_template(model, root, kind):
    """A full model of the target framework, freshly initialised (other weights than every
    source's): `fresh_tfkeras_h5` (tf-keras model.save('m.h5')) or `fresh_keras3_keras`."""
    K = mm.frameworks()["tfkeras" if kind == "fresh_tfkeras_h5" else "keras3"]
    name = "fresh.h5" if kind == "fresh_tfkeras_h5" else "fresh.keras"
    path = os.path.join(root, model, "templates", name)
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        K.backend.clear_session()
        K.utils.set_random_seed(mm.FRESH_SEED + 1)
        mm.BUILDERS[model](K).save(path)
    return path


def renamed_template(b, model, root):
    """A Keras 3 .keras of the model whose every layer has another name (prefix `r_`),
    freshly initialised: layers are matched by order and class, not by name."""
    import keras

    path = os.path.join(root, model, "keras3", "renamed.keras")
    if os.path.exists(path):
        return path
    m = mm.build(keras, model, mm.FRESH_SEED)
    cfg = m.get_config()
    names = {}

    def rename(layer_cfgs):
        for lc in layer_cfgs:
            old = lc["config"]["name"]
            names[old] = "r_" + old
            lc["config"]["name"] = names[old]
            if "name" in lc:
                lc["name"] = names[old]
            if "layers" in lc["config"]:
                rename(lc["config"]["layers"])

    rename(cfg["layers"])
    text = keras.utils.serialize_keras_object(m)
    import json

    def sub(v):
        if isinstance(v, str) and v in names:
            return names[v]
        if isinstance(v, list):
            return [sub(x) for x in v]
        if isinstance(v, dict):
            return {k: sub(x) for k, x in v.items()}
        return v

    text["config"] = sub(cfg)
    r = keras.saving.deserialize_keras_object(json.loads(json.dumps(text)))
    r.save(path)
    return path


@pytest.mark.parametrize("cell", CELLS, ids=[cell_id(c) for c in CELLS])
def test_like(bundles, tmp_path, cell):
    model, source, template, path, fw = cell
    b = bundles(model)
    if template == "renamed_keras":
        tpath = renamed_template(b, model, b.root)
    elif template.startswith("fresh_"):
        tpath = fresh_template(model, b.root, template)
    else:
        tpath = b.paths[template]
    c = tm.Cell(model, source, "like", path, ["--like", tpath], fw)
    cid = cell_id(cell)
    kind, detail = tm.judge(c, b, str(tmp_path), must=must_convert(cid, source, template),
                            table_ok=True)
    RESULTS[cid] = (kind, detail.replace(b.root + os.sep, "$TMP/"))
    if kind == "FAIL":
        pytest.fail(f"{cid}: {detail}", pytrace=False)


def test_mismatch_is_a_table(bundles, tmp_path):
    """A template of another model: refused, with both sides side by side, nothing written."""
    from conftest import run

    b, other = bundles("mlp"), bundles("cnn")
    out = tmp_path / "out.keras"
    p = run("convert", b.paths["tfkeras_tf"], "-o", out, "--like", other.paths["keras3_keras"])
    assert p.returncode == 1, p.stderr
    assert "do not match" in p.stderr and "template weight" in p.stderr, p.stderr
    assert "!" in p.stderr
    assert not out.exists() and os.listdir(tmp_path) == []


def test_json_reports_the_mapping(bundles, tmp_path):
    import json

    from conftest import run

    b = bundles("mlp")
    out = tmp_path / "out.weights.h5"
    p = run("convert", b.paths["tfkeras_tf"], "-o", out, "--like", b.paths["keras3_weights_h5"],
            "--json", check=0)
    doc = json.loads(p.stdout.splitlines()[-1])
    pairs = {m["template"]: m["source"] for m in doc["mapping"]}
    assert pairs["layers/dense/vars/0"].startswith("layer_with_weights-0/kernel")
    assert pairs["layers/dense_1/vars/1"].startswith("layer_with_weights-1/bias")
    assert len(pairs) == len(b.weights["tfkeras"])
