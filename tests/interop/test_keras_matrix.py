"""The Keras interop matrix: real tf-keras and Keras 3 load what `ckptconv convert` makes
of files the real libraries wrote, and must predict exactly what the source weights predict.

A cell is model x source x target, with an id like `mlp-tfkeras_h5-to-h5_keras3`:

- models (matrix_models.py): an MLP with two identical hidden Dense layers, a CNN with
  three alike BatchNormalizations (random moving statistics), SeparableConv2D and
  DepthwiseConv2D, Bidirectional(LSTM) + GRU, a transformer block with custom layer
  names, a Functional model with a nested Sequential, TimeDistributed(Dense) and PReLU,
  a transfer-learning model whose nested base has a frozen layer, and
  MobileNetV2(alpha=0.35, 32x32);
- sources, written once per session by tf-keras, Keras 3, TF1 graph mode and safetensors
  (see matrix_models.SOURCES);
- targets: `convert SRC -o out.h5` loaded by tf-keras and by Keras 3 `load_weights`;
  `convert SRC -o out/ckpt --layout tf1` (variable names) and `--layout object` loaded by tf-keras
  `load_weights` (with `assert_existing_objects_matched()` when the output has an object
  graph); the same four with `--weights-only` where the source carries optimizer state.

The judge: a freshly built model of the target framework (another seed; it must predict
differently from the reference first) loads the output, and its predictions must equal
(np.array_equal) those of the reference: the target framework's model given the source's
weights with `set_weights` (get_weights order is the same in both frameworks for these
models: test_weight_order_agrees_across_frameworks).

A cell passes when the output loads with identical predictions, or when ckptconv refuses
with exit code 1, one non-empty line on stderr and no output file. It fails when ckptconv
exits 0 but loading raises or predicts differently, exits with another code or panics,
or refuses a cell listed in MUST_CONVERT. A table of every cell is printed at the end
(and written to $CKPTCONV_MATRIX_TABLE when set).
"""
import fnmatch
import os
import re
import subprocess
import time
from dataclasses import dataclass, field

import h5py
import numpy as np
import pytest

import matrix_models as mm
from conftest import binary

# Keras' deprecation and user warnings (hundreds per run) would bury the results table.
pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::UserWarning")]

TARGETS = {
    # id: (output path in the cell's directory, flags, framework that loads it)
    "h5_tfkeras": ("out.h5", [], "tfkeras"),
    "h5_keras3": ("out.h5", [], "keras3"),
    # TF1 variable names, which tf-keras load_weights matches by name.
    "ckpt_tfkeras": (os.path.join("out", "ckpt"), ["--layout", "tf1"], "tfkeras"),
    "object_tfkeras": (os.path.join("out", "ckpt"), ["--layout", "object"], "tfkeras"),
    # Keras 3's own formats: load_weights of a .weights.h5, keras.models.load_model of a
    # .keras (the model built from the archive's config, not the judge's fresh model).
    "weights_h5_keras3": ("out.weights.h5", [], "keras3"),
    "keras_keras3": ("out.keras", [], "keras3"),
}
WEIGHTS_ONLY = "_weights_only"  # target suffix: the same with --weights-only

# Cross-framework cells (a Keras 3 source judged by tf-keras and the reverse) rely on
# get_weights() order agreeing between the frameworks; test_weight_order_agrees_across_frameworks
# checks it for every model listed here.
CROSS_FRAMEWORK_OK = {"mlp", "cnn", "rnn", "transformer", "nested", "mobilenet"}
# Models for which the TF1 graph-mode Saver source is written (all are feasible).
TF1_MODELS = {"mlp", "cnn", "rnn", "transformer", "nested", "frozen", "mobilenet"}

# Cells that must convert (a refusal fails them): every cell whose source records layer
# order and class itself. fnmatch patterns over cell ids; MAY_REFUSE overrides.
MUST_CONVERT = [
    "*-tfkeras_h5-to-*",  # Keras 2 save_weights .h5: layer_names + weight_names
    "*-tfkeras_tf-to-*",  # tf-keras TF-format save_weights: object graph by layer
    "*-tfkeras_full_h5-to-*",  # model.save('m.h5'): model_config + layer_names
    "*-tfkeras_ckpt_manager-to-*",  # tf.train.Checkpoint(model=..., optimizer=...)
    "*-tfkeras_savedmodel-to-*",  # SavedModel: object graph by layer + keras_metadata
    "*-keras3_keras-to-*",  # .keras: config.json
    "*-keras3_legacy_h5-to-*",  # Keras 3 model.save('m.h5'): model_config + layer_names
]
# A Keras 2 weights-only .h5 has no classes: `time_distributed/kernel` may be a Dense's
# or a TimeDistributed's, tracked at different object paths.
MAY_REFUSE = [
    "nested-tfkeras_h5-to-object_tfkeras*",
    # A nested model's weights in a Keras 2 .h5 come trainable first, which depends on
    # which of its layers are frozen; an object graph (TF format, tf.train.Checkpoint)
    # does not record that, so a Keras .h5 of it is refused. (A tf-keras SavedModel's
    # keras_metadata.pb does record it: those cells must convert.)
    "nested-tfkeras_tf-to-h5*", "nested-tfkeras_ckpt_manager-to-h5*",
    "frozen-tfkeras_tf-to-h5*", "frozen-tfkeras_ckpt_manager-to-h5*",
    # ...and a weights-only .h5 lists them in that order without saying which layers are
    # frozen, so their object paths (the base's layer order) cannot be told.
    "frozen-tfkeras_h5-to-object_tfkeras*",
    # Keras 3 names a nested model's group by its class (`sequential`, `functional`), which
    # an object graph does not record; nor does a weights-only .h5 record its layers' order.
    "nested-tfkeras_h5-to-weights_h5*", "nested-tfkeras_tf-to-weights_h5*",
    "nested-tfkeras_ckpt_manager-to-weights_h5*", "frozen-tfkeras_h5-to-weights_h5*",
    "frozen-tfkeras_tf-to-weights_h5*", "frozen-tfkeras_ckpt_manager-to-weights_h5*",
    # A .keras archive holds the model's config, which weights-only files do not record
    # (`--like model.keras` supplies it: tests/interop/test_like.py).
    "*-tfkeras_h5-to-keras_keras3*", "*-tfkeras_tf-to-keras_keras3*",
    "*-tfkeras_ckpt_manager-to-keras_keras3*",
]
# Not cells: a Keras 3 file's variable names are Keras 3's (`sequential/dense/kernel`,
# a depthwise `kernel`), which tf-keras does not match by name; translating them to
# tf-keras' names is not something ckptconv does yet (its object layout places them).
NOT_CELLS = ["*-keras3_*-to-ckpt_tfkeras*"]


def must_convert(cell_id):
    return any(fnmatch.fnmatchcase(cell_id, p) for p in MUST_CONVERT) and not any(
        fnmatch.fnmatchcase(cell_id, p) for p in MAY_REFUSE)


def family_framework(family):
    return "keras3" if family == "keras3" else "tfkeras"


@dataclass
class Cell:
    model: str
    source: str
    target: str
    out: str
    flags: list = field(default_factory=list)
    fw: str = "tfkeras"

    @property
    def family(self):
        return mm.SOURCES[self.source][0]

    @property
    def id(self):
        return f"{self.model}-{self.source}-to-{self.target}"


def cells():
    out = []
    for model in mm.MODELS:
        for source, (family, has_optimizer) in mm.SOURCES.items():
            if family == "tf1" and model not in TF1_MODELS:
                continue
            for weights_only in ([False, True] if has_optimizer else [False]):
                for target, (path, flags, fw) in TARGETS.items():
                    if fw != family_framework(family) and model not in CROSS_FRAMEWORK_OK:
                        continue
                    extra = ["--weights-only"] if weights_only else []
                    name = target + (WEIGHTS_ONLY if weights_only else "")
                    cell = Cell(model, source, name, path, flags + extra, fw)
                    if not any(fnmatch.fnmatchcase(cell.id, p) for p in NOT_CELLS):
                        out.append(cell)
    return out


CELLS = cells()
RESULTS = {}  # cell id -> (kind, detail, seconds); kind: pass | refused | FAIL
SOURCE_SECONDS = {}  # model -> seconds spent writing its sources and references


# --- the sources, once per session -------------------------------------------------------

class Bundle:
    """One model's sources, the weights each source family holds (get_weights order) and
    the reference predictions per (family, target framework)."""

    def __init__(self, model, root):
        start = time.monotonic()
        self.model, self.root = model, root
        self.x = mm.inputs(model)
        self.paths, self.weights, self.refs, self.shapes = {}, {}, {}, {}
        writers = [("tfkeras", mm.write_tfkeras_sources), ("keras3", mm.write_keras3_sources)]
        if model in TF1_MODELS:
            writers.append(("tf1", mm.write_tf1_saver))
        for family, write in writers:
            self.weights[family], paths = write(model, os.path.join(root, model))
            self.paths.update(paths)
        fws = mm.frameworks()
        for family, values in self.weights.items():
            for fw, K in fws.items():
                if fw != family_framework(family) and model not in CROSS_FRAMEWORK_OK:
                    continue
                m = mm.build(K, model, mm.REF_SEED)
                self.shapes[fw] = [tuple(w.shape) for w in m.get_weights()]
                m.set_weights(values)
                pred = mm.predict(m, self.x)
                assert np.isfinite(pred).all(), f"{model}: reference predictions are not finite"
                assert np.array_equal(mm.predict(m, self.x), pred), f"{model}: {fw} inference is not deterministic"
                self.refs[family, fw] = pred
        SOURCE_SECONDS[model] = time.monotonic() - start


# The `bundles` fixture (conftest.py) builds one Bundle per model per session, shared with
# test_like.py.


# --- running ckptconv and loading its output ----------------------------------------------

def convert(src, out, flags):
    cmd = [binary(), "convert", src, "-o", out, "--no-progress", *flags]
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        return None


def files_under(d):
    return sorted(os.path.relpath(os.path.join(r, f), d) for r, _, fs in os.walk(d) for f in fs)


def has_object_graph(prefix):
    import tensorflow as tf

    return any(n == "_CHECKPOINTABLE_OBJECT_GRAPH" for n, _ in tf.train.list_variables(prefix))


def first_line(e):
    """The exception's type and the start of its message, on one line, with each
    `<tf.Variable 'name' shape=... numpy=...>` shortened to its name."""
    text = re.sub(r"<tf\.Variable '([^']+)'[^>]*>", r"\1", " ".join(str(e).split()))
    return f"{type(e).__name__}: {text[:300]}" + ("..." if len(text) > 300 else "")


def short(names, n=4):
    names = list(names)
    return ", ".join(names[:n]) + (f" (+{len(names) - n} more)" if len(names) > n else "")


def clean(name):
    return name[:-2] if name.endswith(":0") else name


def mismatch(fresh, init, want_w, got, want, before):
    """Why predictions differ: which weights were not restored, which hold another's."""
    names = [clean(mm.weight_name(w)) for w in fresh.weights]
    got_w = fresh.get_weights()
    unrestored, wrong = [], []
    for name, g, w0, w in zip(names, got_w, init, want_w):
        if g.shape == w.shape and np.array_equal(g, w):
            continue
        if g.shape == w0.shape and np.array_equal(g, w0):
            unrestored.append(name)
            continue
        other = [names[j] for j, w2 in enumerate(want_w) if w2.shape == g.shape and np.array_equal(g, w2)]
        wrong.append(f"{name}<-{other[0]}" if other else f"{name}<-?")
    if np.array_equal(got, before):
        parts = ["nothing restored (predictions unchanged)"]
    else:
        parts = [f"predictions differ (max |diff| {float(np.max(np.abs(got - want))):.3g})"]
    if unrestored and not np.array_equal(got, before):
        parts.append(f"{len(unrestored)}/{len(names)} weights not restored: {short(unrestored)}")
    if wrong:
        parts.append(f"{len(wrong)}/{len(names)} weights hold other values: {short(wrong)}")
    if not wrong and not unrestored:
        parts.append("every weight equals the reference")
    return "; ".join(parts)


def judge(cell, b, tmp, must=None, table_ok=False):
    """The cell's verdict; `must` overrides MUST_CONVERT (whether a refusal fails it);
    `table_ok` accepts a refusal whose first line is followed by a table (--like)."""
    src = b.paths[cell.source]
    out = os.path.join(tmp, cell.out)
    p = convert(src, out, cell.flags)
    if p is None:
        return "FAIL", "ckptconv did not finish in 300 s"
    lines = [line.strip() for line in p.stderr.splitlines() if line.strip()]
    if "panicked" in p.stderr or p.returncode not in (0, 1):
        return "FAIL", f"exit {p.returncode}: {' | '.join(lines[-3:])}"
    if p.returncode == 1:
        left = files_under(tmp)
        if not lines:
            return "FAIL", "exit 1 with an empty stderr"
        if len(lines) > 1 and not (table_ok and "do not match" in lines[0]):
            return "FAIL", f"exit 1 with a {len(lines)}-line message: {' | '.join(lines[:4])}"
        if left:
            return "FAIL", f"refused ({lines[0]}) but left files: {short(left)}"
        if must_convert(cell.id) if must is None else must:
            return "FAIL", f"refused, but must convert: {lines[0]}"
        return "refused", lines[0]

    K = mm.frameworks()[cell.fw]
    want = b.refs[cell.family, cell.fw]
    fresh = mm.build(K, cell.model, mm.FRESH_SEED)
    init = fresh.get_weights()
    before = mm.predict(fresh, b.x)
    assert not np.array_equal(before, want), "judge: a fresh model already predicts the reference"
    loader = f"{'tf-keras' if cell.fw == 'tfkeras' else 'Keras 3'} load_weights"
    if out.endswith(".keras"):
        # The archive's own config builds the model: a whole model, judged as a user runs it.
        try:
            loaded = K.models.load_model(out)
        except Exception as e:
            return "FAIL", f"exit 0, Keras 3 load_model raised {first_line(e)}"
        got = mm.predict(loaded, b.x)
        if np.array_equal(got, want):
            return "pass", ""
        return "FAIL", "exit 0, load_model predicts differently " + mismatch(loaded, init, b.weights[cell.family], got, want, before)
    try:
        status = fresh.load_weights(out)
        if cell.fw == "tfkeras" and not out.endswith(".h5") and has_object_graph(out):
            loader += " + assert_existing_objects_matched"
            status.assert_existing_objects_matched()
            status.expect_partial()
    except Exception as e:  # the cell's verdict: the output does not load
        return "FAIL", f"exit 0, {loader} raised {first_line(e)}"
    got = mm.predict(fresh, b.x)
    if np.array_equal(got, want):
        return "pass", ""
    return "FAIL", "exit 0, " + mismatch(fresh, init, b.weights[cell.family], got, want, before)


# --- the tests --------------------------------------------------------------------------

@pytest.mark.parametrize("model", sorted(CROSS_FRAMEWORK_OK, key=mm.MODELS.index))
def test_weight_order_agrees_across_frameworks(bundles, model):
    """Cross-framework references are the target framework's model given the source's
    get_weights(): that needs the same order of the same shapes in tf-keras and Keras 3,
    and the same function (to float rounding) with the same weights."""
    b = bundles(model)
    assert b.shapes["tfkeras"] == b.shapes["keras3"]
    for family in ("tfkeras", "keras3"):
        np.testing.assert_allclose(b.refs[family, "keras3"], b.refs[family, "tfkeras"], rtol=1e-4, atol=1e-5)


def optimizer_state(path, source):
    """Names of the optimizer (and TF1 training) variables in a source, by the libraries."""
    import zipfile
    import io

    import tensorflow as tf

    if source.endswith("_h5") and source != "keras3_weights_h5":
        with h5py.File(path, "r") as f:
            names = []
            if "optimizer_weights" in f:
                f["optimizer_weights"].visit(names.append)
            return names
    if source == "keras3_keras":
        with zipfile.ZipFile(path) as z, h5py.File(io.BytesIO(z.read("model.weights.h5")), "r") as f:
            names = []
            if "optimizer" in f:
                f["optimizer"].visit(names.append)
            return names
    if source.startswith("keras3") or source.endswith("safetensors"):
        return []
    if os.path.exists(os.path.join(path, "saved_model.pb")):
        path = os.path.join(path, "variables", "variables")
    names = [n for n, _ in tf.train.list_variables(path)]
    if source == "tf1_saver":
        return [n for n in names if n.endswith("/Adam") or n in ("global_step", "beta1_power")]
    return [n for n in names if n.startswith("optimizer/")]


@pytest.mark.parametrize("model", mm.MODELS)
def test_sources_are_what_the_matrix_says(bundles, model):
    """Every source exists; those given --weights-only cells carry optimizer state (the
    others do not); the SavedModel has compiled metrics; TF1 has global_step and slots."""
    import tensorflow as tf
    from safetensors.numpy import load_file

    b = bundles(model)
    for source, (family, has_optimizer) in mm.SOURCES.items():
        if family == "tf1" and model not in TF1_MODELS:
            continue
        path = b.paths[source]
        assert os.path.exists(path) or os.path.exists(path + ".index"), source
        assert bool(optimizer_state(path, source)) == has_optimizer, source
    sm = [n for n, _ in tf.train.list_variables(os.path.join(b.paths["tfkeras_savedmodel"], "variables", "variables"))]
    assert any(n.startswith("keras_api/metrics/") for n in sm)
    if model in TF1_MODELS:
        tf1 = [n for n, _ in tf.train.list_variables(b.paths["tf1_saver"])]
        assert "global_step" in tf1 and any(n.endswith("/Adam_1") for n in tf1)
    for source in ("tfkeras_safetensors", "keras3_safetensors"):
        keys = list(load_file(b.paths[source]))
        assert len(keys) == len(b.weights[mm.SOURCES[source][0]]) and keys == sorted(keys)


@pytest.mark.parametrize("cell", CELLS, ids=[c.id for c in CELLS])
def test_cell(bundles, tmp_path, cell):
    b = bundles(cell.model)
    t0 = time.monotonic()
    kind, detail = judge(cell, b, str(tmp_path))
    detail = detail.replace(b.root + os.sep, "$TMP/").replace(str(tmp_path) + os.sep, "")
    RESULTS[cell.id] = (kind, detail, time.monotonic() - t0)
    if kind == "FAIL":
        pytest.fail(f"{cell.id}: {detail}", pytrace=False)


# --- the results table ------------------------------------------------------------------

COLUMNS = [(t, t) for t in TARGETS] + [(t + WEIGHTS_ONLY, "wo:" + t) for t in TARGETS]
ABBREV = {"h5_tfkeras": "h5>tfk", "h5_keras3": "h5>k3", "ckpt_tfkeras": "ckpt>tfk", "object_tfkeras": "obj>tfk",
          "weights_h5_keras3": "wh5>k3", "keras_keras3": "keras>k3"}


def table():
    if not RESULTS:
        return []
    counts = {k: sum(1 for r in RESULTS.values() if r[0] == k) for k in ("pass", "refused", "FAIL")}
    lines = [f"ckptconv Keras matrix: {counts['pass']} pass, {counts['refused']} refused, "
             f"{counts['FAIL']} FAIL of {len(RESULTS)} cells run ({len(CELLS)} in the matrix), "
             f"{sum(r[2] for r in RESULTS.values()):.0f} s in cells"]
    heads = [ABBREV[c] if not c.endswith(WEIGHTS_ONLY) else "wo:" + ABBREV[c[:-len(WEIGHTS_ONLY)]]
             for c, _ in COLUMNS]
    lines.append(f"{'model-source':34}" + "".join(f"{h:>12}" for h in heads))
    mark = {"pass": "ok", "refused": "refused", "FAIL": "FAIL"}
    for model in mm.MODELS:
        for source in mm.SOURCES:
            row = []
            any_cell = False
            for col, _ in COLUMNS:
                cid = f"{model}-{source}-to-{col}"
                if cid in RESULTS:
                    any_cell = True
                    row.append(mark[RESULTS[cid][0]] + ("*" if must_convert(cid) else ""))
                else:
                    row.append("." if all(c.id != cid for c in CELLS) else "?")
            if any_cell:
                lines.append(f"{model + '-' + source:34}" + "".join(f"{x:>12}" for x in row))
    lines.append("(* = in MUST_CONVERT; . = not a cell; ? = not run; wo: = --weights-only)")
    per_model = []
    for model in mm.MODELS:
        cell_s = sum(r[2] for cid, r in RESULTS.items() if cid.startswith(model + "-"))
        if model in SOURCE_SECONDS or cell_s:
            per_model.append(f"{model} {SOURCE_SECONDS.get(model, 0):.0f}+{cell_s:.0f}")
    lines.append("seconds (sources+cells): " + ", ".join(per_model))
    for kind in ("FAIL", "refused"):
        for cid, (k, detail, _) in RESULTS.items():
            if k == kind:
                lines.append(f"{kind:7} {cid}: {detail}")
    return lines


class _TablePrinter:
    def pytest_terminal_summary(self, terminalreporter):
        lines = table()
        if not lines:
            return
        terminalreporter.section("ckptconv Keras interop matrix")
        for line in lines:
            terminalreporter.write_line(line)
        path = os.environ.get("CKPTCONV_MATRIX_TABLE")
        if path:
            with open(path, "w") as f:
                f.write("\n".join(lines) + "\n")


@pytest.fixture(scope="module", autouse=True)
def _print_table_at_the_end(request):
    pm = request.config.pluginmanager
    if not pm.has_plugin("ckptconv-keras-matrix-table"):
        pm.register(_TablePrinter(), "ckptconv-keras-matrix-table")
    yield
