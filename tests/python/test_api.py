"""The Python module against the fixtures' expected.json (what TensorFlow, Keras and h5py
read back), in a venv with numpy, pytest and ml_dtypes only: no TensorFlow, Keras or h5py.

Run by .ci/run after `maturin build` and `pip install` of the wheel:

    python -m pytest tests/python -q

CKPTCONV (optional) names the cargo-built binary, for the byte-identity checks of
`convert` against the CLI.
"""

import glob
import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import ckptconv

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TD = os.path.join(ROOT, "testdata")


def _tf_fixtures():
    out = []
    for e in sorted(glob.glob(os.path.join(TD, "tf", "*", "expected.json"))):
        d = json.load(open(e))
        dirn = os.path.dirname(e)
        if "graph" in d:
            path = os.path.join(dirn, "graph.pb")
        elif "?" in d.get("prefix", "?"):
            path = dirn  # a sharded V1 checkpoint: the directory's state file names it
        else:
            path = os.path.join(dirn, d["prefix"])
        out.append(pytest.param(path, d["variables"], id=os.path.relpath(dirn, TD)))
    return out


def _keras_fixtures():
    out = []
    for e in sorted(glob.glob(os.path.join(TD, "**", "*.expected.json"), recursive=True)):
        d = json.load(open(e))
        path = e[: -len(".expected.json")]
        out.append(pytest.param(path, d["datasets"], id=os.path.relpath(path, TD)))
    return out


def _hf_fixtures():
    # Any shard (or the index) reads the whole sharded model through its index: every
    # shard's datasets, checked against what h5py read from each shard.
    d = json.load(open(os.path.join(TD, "hf_sharded", "expected.json")))
    lst = []
    for _, content in sorted(d["shards"].items()):
        lst += [dict(name=k, **v) for k, v in content["datasets"].items()]
    return [
        pytest.param(os.path.join(TD, "hf_sharded", p), lst, id=p)
        for p in ("tf_model.h5.index.json", sorted(d["shards"])[0])
    ]


def _hexes(v):
    """A string tensor's expected elements, flattened (nested lists of hex)."""
    if isinstance(v, list):
        return [h for x in v for h in _hexes(x)]
    return [v]


def _check(path, expected):
    with ckptconv.safe_open(path) as f:
        keys = set(f.keys())
        # Every key is one the judge read (a tf-keras TF-format checkpoint also holds
        # its object graph, which tf.train.list_variables lists but expected.json not).
        assert keys - {e["name"] for e in expected} <= {"_CHECKPOINTABLE_OBJECT_GRAPH"}
        for e in expected:
            name = e["name"]
            assert name in keys, name
            info = f.info(name)
            arr = f.get_tensor(name)
            assert list(arr.shape) == list(e["shape"]), name
            assert list(info["shape"]) == list(e["shape"]), name
            assert not arr.flags.writeable, name
            want = e["hex"] if "hex" in e else e["strings"]
            if isinstance(want, list) or info["dtype"] == "string":
                assert arr.dtype == object, name
                got = [bytes(x).hex() for x in arr.reshape(-1)]
                assert got == _hexes(want), name
                continue
            assert arr.tobytes().hex() == want, name
            assert arr.dtype.itemsize * arr.size == info["byte_len"], name
            if info["dtype"] not in ("bfloat16", "float8_e5m2", "float8_e4m3fn"):
                assert arr.dtype == np.dtype(ckptconv._PLAIN[info["dtype"]]), name


@pytest.mark.parametrize("path,expected", _tf_fixtures())
def test_tf_fixture(path, expected):
    _check(path, expected)
    with ckptconv.safe_open(path) as f:
        for e in expected:
            if e.get("dtype") and "string" not in e["dtype"]:
                assert f.info(e["name"])["dtype"] == e["dtype"], e["name"]


@pytest.mark.parametrize("path,expected", _keras_fixtures())
def test_keras_fixture(path, expected):
    _check(path, expected)


@pytest.mark.parametrize("path,expected", _hf_fixtures())
def test_hf_shard(path, expected):
    _check(path, expected)


def test_load_matches_safe_open():
    p = os.path.join(TD, "tf", "tf1_saver", "model.ckpt")
    d = ckptconv.load(p)
    with ckptconv.safe_open(p) as f:
        assert list(d) == f.keys()
        for k in f.keys():
            np.testing.assert_array_equal(d[k], f.get_tensor(k))


def test_zero_copy_view_outlives_the_handle():
    p = os.path.join(TD, "tf", "tf1_saver", "model.ckpt")
    with ckptconv.safe_open(p) as f:
        a = f.get_tensor("net/dense/kernel")
        b = f.get_tensor("net/dense/kernel")
    assert a.base is not None and not a.flags.owndata
    # Two reads of a mapped tensor see the same memory: no copy was made.
    assert a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
    with pytest.raises(ValueError):
        a[0, 0] = 1.0
    del f
    assert a.shape == (5, 7) and np.isfinite(a).all()


def test_bfloat16_with_ml_dtypes():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    with ckptconv.safe_open(os.path.join(TD, "tf", "tf1_saver", "model.ckpt")) as f:
        a = f.get_tensor("dtypes/bfloat16")
    assert a.dtype == np.dtype(ml_dtypes.bfloat16)
    assert np.isfinite(a.astype(np.float32)).all()


def test_bfloat16_without_ml_dtypes():
    # A child interpreter in which ml_dtypes cannot be imported.
    code = (
        "import sys, warnings\n"
        "sys.modules['ml_dtypes'] = None\n"
        "import ckptconv\n"
        "with warnings.catch_warnings(record=True) as w:\n"
        "    warnings.simplefilter('always')\n"
        f"    f = ckptconv.safe_open({os.path.join(TD, 'tf', 'tf1_saver', 'model.ckpt')!r})\n"
        "    a = f.get_tensor('dtypes/bfloat16')\n"
        "assert a.dtype.name == 'uint16', a.dtype\n"
        "assert any('ml_dtypes' in str(x.message) for x in w), [str(x.message) for x in w]\n"
        "print(a.tobytes().hex())\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    exp = json.load(open(os.path.join(TD, "tf", "tf1_saver", "expected.json")))
    want = next(v["hex"] for v in exp["variables"] if v["name"] == "dtypes/bfloat16")
    assert r.stdout.strip() == want


def test_strings_and_complex():
    with ckptconv.safe_open(os.path.join(TD, "tf", "tf1_saver", "model.ckpt")) as f:
        s = f.get_tensor("strings/vector")
        c = f.get_tensor("dtypes/complex64")
    assert s.dtype == object and all(isinstance(x, bytes) for x in s)
    assert c.dtype == np.complex64


def test_partitioned_variable_is_reassembled():
    p = os.path.join(TD, "tf", "partitioned", "model.ckpt")
    with ckptconv.safe_open(p) as f:
        parted = [k for k in f.keys() if f.info(k)["slices"] > 0]
        assert parted
        for k in parted:
            a = f.get_tensor(k)
            assert list(a.shape) == f.info(k)["shape"]


def test_get_slice():
    with ckptconv.safe_open(os.path.join(TD, "tf", "tf1_saver", "model.ckpt")) as f:
        sl = f.get_slice("net/dense/kernel")
        assert sl.get_shape() == [5, 7]
        assert sl.get_dtype() == "float32"
        np.testing.assert_array_equal(sl[1:3, ::2], f.get_tensor("net/dense/kernel")[1:3, ::2])


def test_info_names_keras_layer():
    with ckptconv.safe_open(os.path.join(TD, "keras2", "weights.h5")) as f:
        info = f.info("conv/conv/kernel:0")
    assert info["layer"] == "conv"
    assert info["layer_class"] in (None, "Conv2D")
    assert info["variable"] == "conv/kernel"


def test_errors_are_typed_with_the_cli_message(tmp_path):
    with pytest.raises(ckptconv.NotFoundError) as e:
        ckptconv.safe_open(tmp_path / "nothing.ckpt")
    assert "nothing.ckpt" in str(e.value)
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    with pytest.raises(ckptconv.CorruptError):
        ckptconv.safe_open(bad)
    assert issubclass(ckptconv.CorruptError, ckptconv.Error)
    # A header the file holds but larger than ckptconv parses: a limit, not corruption.
    big = tmp_path / "big.safetensors"
    n = (16 << 20) + 8
    big.write_bytes(n.to_bytes(8, "little") + b"{}" + b" " * (n - 2))
    with pytest.raises(ckptconv.LimitError) as e:
        ckptconv.safe_open(big)
    assert "big.safetensors" in str(e.value) and "header" in str(e.value)
    # The same length claimed by a small file is the file's fault.
    short = tmp_path / "short.safetensors"
    short.write_bytes(n.to_bytes(8, "little") + b"{}")
    with pytest.raises(ckptconv.CorruptError):
        ckptconv.safe_open(short)
    with pytest.raises(KeyError):
        ckptconv.safe_open(os.path.join(TD, "tf", "tf1_saver", "model.ckpt")).get_tensor("nope")


def test_inspect_summary_diff_match_the_cli():
    p = os.path.join(TD, "keras2", "weights.h5")
    ins = ckptconv.inspect(p)
    summ = ckptconv.summary(p)
    d = ckptconv.diff(p, p)
    assert d["same"] is True
    # The envelope every --json object has (docs/json.md).
    for cmd, got in (("inspect", ins), ("summary", summ), ("diff", d)):
        assert got["command"] == cmd and got["input"] == p, got
        assert got["ok"] is True and got["error"] is None, got
    assert d["input_b"] == p
    exe = os.environ.get("CKPTCONV")
    if exe:
        for args, got in (
            (["inspect", p, "--json"], ins),
            (["summary", p, "--json"], summ),
            (["diff", p, p, "--json"], d),
        ):
            out = subprocess.run([exe, *args], capture_output=True, check=True).stdout
            assert json.loads(out) == got, args


def _tree_bytes(path):
    if os.path.isfile(path):
        return {os.path.basename(path): open(path, "rb").read()}
    out = {}
    for dp, _, fs in os.walk(path):
        for f in fs:
            full = os.path.join(dp, f)
            out[os.path.relpath(full, path)] = open(full, "rb").read()
    return out


@pytest.mark.parametrize(
    "src,out,kw,flags",
    [
        ("tf/tf1_saver/model.ckpt", "m.safetensors", {}, []),
        ("keras2/weights.h5", "w.safetensors", {"dtype": "float16"}, ["--dtype", "float16"]),
        ("tf/multi_shard/ckpt", "c.h5", {"layout": "flat"}, ["--layout", "flat"]),
        ("keras3/model.weights.h5", "k.safetensors", {"include": "*dense*"}, ["--include", "*dense*"]),
        ("tf/v1_partitioned/model.ckpt", "v1.safetensors", {}, []),
        # Keras 2 full model -> Keras 3 weights; a sharded transformers save --like a
        # template of the same model.
        ("keras2/full.h5", "model.weights.h5", {"weights_only": True}, ["--weights-only"]),
        (
            "hf_sharded/tf_model.h5.index.json",
            "tf_model.h5",
            {"like": os.path.join(TD, "hf_sharded", "whole", "tf_model.h5")},
            ["--like", os.path.join(TD, "hf_sharded", "whole", "tf_model.h5")],
        ),
    ],
)
def test_convert_is_byte_identical_to_the_cli(tmp_path, src, out, kw, flags):
    src = os.path.join(TD, src)
    a = tmp_path / "py" / out
    a.parent.mkdir()
    rep = ckptconv.convert(src, a, **kw)
    assert rep["status"] == "ok" and rep["tensors"] > 0
    assert set(rep) >= {"command", "input", "ok", "error", "output", "status", "path",
                        "output_format", "tensors", "bytes", "files"}
    assert rep["command"] == "convert" and rep["ok"] is True and rep["error"] is None
    exe = os.environ.get("CKPTCONV")
    if not exe:
        pytest.skip("CKPTCONV not set: no CLI to compare with")
    b = tmp_path / "cli" / out
    b.parent.mkdir()
    subprocess.run([exe, "convert", src, "-o", str(b), *flags, "--no-progress"], check=True, capture_output=True)
    ta, tb = _tree_bytes(str(a.parent)), _tree_bytes(str(b.parent))
    assert ta.keys() == tb.keys()
    for k in ta:
        assert ta[k] == tb[k], k
    # And the output reads back with the input's values.
    d = ckptconv.diff(src, a)
    assert d["compared"] > 0 and not d["value_differences"], d


def test_convert_refuses_to_overwrite(tmp_path):
    dst = tmp_path / "x.safetensors"
    src = os.path.join(TD, "tf", "tf1_saver", "model.ckpt")
    ckptconv.convert(src, dst)
    with pytest.raises(ckptconv.ExistsError):
        ckptconv.convert(src, dst)
    ckptconv.convert(src, dst, force=True)
    with pytest.raises(ckptconv.UsageError):
        ckptconv.convert(src, tmp_path / "y.safetensors", dtype="nonsense")
    # A template of another model: refused, nothing written.
    with pytest.raises(ckptconv.UnsupportedError) as e:
        ckptconv.convert(
            os.path.join(TD, "keras2", "weights.h5"),
            tmp_path / "z.weights.h5",
            like=os.path.join(TD, "keras3", "model.weights.h5"),
        )
    assert "--like" in str(e.value)
    assert not (tmp_path / "z.weights.h5").exists()


def test_console_script_runs_the_cli():
    exe = os.path.join(os.path.dirname(sys.executable), "ckptconv")
    p = os.path.join(TD, "keras2", "weights.h5")
    r = subprocess.run([exe, "inspect", p, "--json"], capture_output=True)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == ckptconv.inspect(p)
    r = subprocess.run([exe, "inspect", "/nonexistent/x.ckpt"], capture_output=True, text=True)
    assert r.returncode == 1 and r.stderr.startswith("ckptconv: error: ")
    r = subprocess.run([exe, "--bogus"], capture_output=True, text=True)
    assert r.returncode == 2


def test_import_is_fast_and_imports_no_tensorflow():
    code = (
        "import sys, time\n"
        "t = time.perf_counter()\n"
        "import ckptconv\n"
        "dt = time.perf_counter() - t\n"
        "bad = [m for m in ('tensorflow', 'keras', 'h5py', 'torch', 'numpy') if m in sys.modules]\n"
        "print(dt, bad)\n"
    )
    best = None
    for _ in range(3):
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        dt, bad = r.stdout.split(" ", 1)
        assert bad.strip() == "[]", bad
        best = float(dt) if best is None else min(best, float(dt))
    assert best < 0.1, best


def test_no_tensorflow_in_this_venv():
    for m in ("tensorflow", "keras", "h5py"):
        with pytest.raises(ImportError):
            __import__(m)


def test_ctrl_c_stops_convert_and_leaves_nothing(tmp_path):
    # A 2 GiB (sparse) safetensors file takes a few seconds to convert; SIGINT after
    # 0.3 s must raise KeyboardInterrupt in the converting interpreter and leave no
    # output, not even a temporary file.
    big = tmp_path / "big.safetensors"
    n = 512 << 20
    hdr = {f"t{i}": {"dtype": "F32", "shape": [n // 4], "data_offsets": [i * n, (i + 1) * n]} for i in range(4)}
    h = json.dumps(hdr).encode()
    h += b" " * (-len(h) % 8)
    with open(big, "wb") as f:
        f.write(len(h).to_bytes(8, "little") + h)
        f.truncate(8 + len(h) + 4 * n)
    out = tmp_path / "out"
    out.mkdir()
    code = (
        "import sys, ckptconv\n"
        "print('go', flush=True)\n"
        "try:\n"
        f"    ckptconv.convert({str(big)!r}, {str(out / 'm.ckpt')!r}, to='ckpt')\n"
        "    print('finished')\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted')\n"
    )
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "go"
    import time, signal

    time.sleep(0.3)
    p.send_signal(signal.SIGINT)
    rest, _ = p.communicate(timeout=120)
    assert rest.strip() == "interrupted"
    assert p.returncode == 0
    assert os.listdir(out) == []


def test_threads_read_in_parallel():
    # The GIL is released during reads: many threads over one handle agree with load().
    from concurrent.futures import ThreadPoolExecutor

    p = os.path.join(TD, "keras3", "model.weights.h5")
    want = ckptconv.load(p)
    with ckptconv.safe_open(p) as f:
        with ThreadPoolExecutor(4) as ex:
            got = dict(zip(f.keys(), ex.map(f.get_tensor, f.keys())))
    assert got.keys() == want.keys()
    for k in want:
        assert got[k].tobytes() == want[k].tobytes(), k


def test_metadata_is_safetensors_own_map_or_what_the_file_is(tmp_path):
    import json
    import struct
    header = {"__metadata__": {"format": "pt", "note": "x"},
              "t": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}
    hb = json.dumps(header).encode()
    p = tmp_path / "m.safetensors"
    p.write_bytes(struct.pack("<Q", len(hb)) + hb + np.array([1.5, 2.5], np.float32).tobytes())
    with ckptconv.safe_open(str(p)) as f:
        assert f.metadata() == {"format": "pt", "note": "x"}
        assert f.get_tensor("t").tolist() == [1.5, 2.5]
    with ckptconv.safe_open(os.path.join(TD, "tf", "tf1_saver")) as f:
        assert f.metadata()["format"] == "tf-checkpoint"
