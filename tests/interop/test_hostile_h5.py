"""Only the named input is ever read: HDF5 files whose datasets would pull bytes from
elsewhere (external storage, external links, virtual datasets, filter plugins) are
refused by every command, with nothing written and no byte of the other file in any
output. Files made with h5py, as an attacker would make them."""
import os

import h5py
import numpy as np
import pytest

from conftest import inspect_json, run

SECRET = b"ssh-rsa AAAA-this-is-the-victims-secret-key-material-0123456789abcdef" * 4


def keras_file(path, make_dataset):
    """A Keras 2 weights file whose one weight is made by `make_dataset(group, name)`."""
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [b"dense"]
        f.attrs["backend"] = b"tensorflow"
        g = f.create_group("dense")
        g.attrs["weight_names"] = [b"dense/kernel:0"]
        make_dataset(g.create_group("dense"), "kernel:0")


def external_storage(tmp_path):
    secret = tmp_path / "id_rsa"
    secret.write_bytes(SECRET)
    path = tmp_path / "ext.h5"
    keras_file(path, lambda g, n: g.create_dataset(
        n, shape=(len(SECRET),), dtype="u1", external=[(str(secret), 0, len(SECRET))]))
    return path


def external_link(tmp_path):
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["data"] = np.frombuffer(SECRET, dtype="u1")
    path = tmp_path / "link.h5"

    def make(g, n):
        g[n] = h5py.ExternalLink(str(other), "/data")
    keras_file(path, make)
    return path


def virtual_dataset(tmp_path):
    other = tmp_path / "src.h5"
    with h5py.File(other, "w") as f:
        f["data"] = np.frombuffer(SECRET, dtype="u1")
    path = tmp_path / "vds.h5"

    def make(g, n):
        layout = h5py.VirtualLayout(shape=(len(SECRET),), dtype="u1")
        layout[:] = h5py.VirtualSource(str(other), "data", shape=(len(SECRET),))
        g.create_virtual_dataset(n, layout)
    keras_file(path, make)
    return path


def unknown_filter(tmp_path):
    path = tmp_path / "blosc.h5"

    def make(g, n):
        ds = g.create_dataset(n, shape=(64,), dtype="u1", chunks=(64,), compression=32001,
                              allow_unknown_filter=True)
        ds.id.write_direct_chunk((0,), bytes(range(64)))
    keras_file(path, make)
    return path


CASES = {"external_storage": external_storage, "external_link": external_link,
         "virtual_dataset": virtual_dataset, "unknown_filter": unknown_filter}
WORDS = {"external_storage": "external file", "external_link": "external link",
         "virtual_dataset": "virtual dataset", "unknown_filter": "filter"}


@pytest.mark.parametrize("case", sorted(CASES))
def test_nothing_from_elsewhere(tmp_path, case):
    path = CASES[case](tmp_path)
    outdir = tmp_path / "out"
    outdir.mkdir()
    for args in (["inspect", path], ["verify", path], ["summary", path],
                 ["convert", path, "-o", outdir / "a.safetensors"],
                 ["convert", path, "-o", outdir / "b.h5", "--layout", "flat"],
                 ["convert", path, "-o", outdir / "ck"]):
        r = run(*args)
        assert r.returncode == 1, f"{args[0]}: exit {r.returncode}\n{r.stdout}{r.stderr}"
        said = r.stdout + r.stderr  # verify reports on stdout
        assert WORDS[case] in said, said
        assert len(said.strip().splitlines()) == 1, said
    assert os.listdir(outdir) == []
    # And no byte of the other file reached any output, here or in a temporary.
    for root, _, files in os.walk(tmp_path):
        for name in files:
            if name in ("id_rsa", "other.h5", "src.h5"):
                continue
            p = os.path.join(root, name)
            if os.path.realpath(p) == os.path.realpath(path):
                continue
            assert SECRET[:32] not in open(p, "rb").read(), p


def test_plugin_path_is_not_used(tmp_path):
    """HDF5_PLUGIN_PATH pointing at a directory of would-be filter plugins: the unknown
    filter is refused without libhdf5 looking there (a plugin that ran would leave a
    file behind)."""
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    # Not a real shared object: dlopen of it would fail; what matters is the refusal
    # comes from ckptconv's filter check, before libhdf5 reads the data.
    (plugins / "libH5Zblosc.so").write_bytes(b"\x7fELF not really")
    path = unknown_filter(tmp_path)
    env = dict(os.environ, HDF5_PLUGIN_PATH=str(plugins))
    import subprocess
    from conftest import binary
    r = subprocess.run([binary(), "verify", str(path)], capture_output=True, text=True, env=env)
    assert r.returncode == 1 and "filter 32001" in r.stdout + r.stderr, r.stdout + r.stderr


def test_hard_links_to_one_dataset_are_one_tensor(tmp_path):
    """2,000 hard links to one 1 MB dataset: one tensor, read and written once (not 2 GB
    of output), and a Keras layout that names a second link still finds its weight."""
    path = tmp_path / "links.h5"
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [b"a", b"b"]
        f.attrs["backend"] = b"tensorflow"
        f.create_group("a").attrs["weight_names"] = [b"kernel:0"]
        f.create_group("b").attrs["weight_names"] = [b"kernel:0"]
        f["a/kernel:0"] = np.arange(1 << 18, dtype="float32")
        f["b/kernel:0"] = f["a/kernel:0"]  # the same dataset under layer b
        g = f.create_group("many")
        for i in range(2000):
            g[f"l{i}"] = f["a/kernel:0"]
    doc = inspect_json(path)
    assert len(doc["tensors"]) == 1, [t["name"] for t in doc["tensors"]]
    out = tmp_path / "o.safetensors"
    run("convert", path, "-o", out, check=0)
    assert os.path.getsize(out) < 2 << 20


def test_a_dangling_link_is_an_error_not_a_missing_tensor(tmp_path):
    path = tmp_path / "dangling.h5"
    with h5py.File(path, "w") as f:
        f["w"] = np.zeros(3, dtype="float32")
        f["gone"] = h5py.SoftLink("/nowhere")
    for cmd in ("inspect", "verify"):
        r = run(cmd, path)
        assert r.returncode == 1, r.stdout + r.stderr
        assert "gone" in r.stdout + r.stderr


def test_a_keras_zip_bomb_is_refused_without_filling_the_disk(tmp_path):
    """A .keras whose model.weights.h5 inflates 1000-fold: refused from the sizes in the
    zip directory, before anything is extracted."""
    import tempfile
    import zipfile

    path = tmp_path / "bomb.keras"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("config.json", "{}")
        z.writestr("metadata.json", "{}")
        with z.open("model.weights.h5", "w", force_zip64=True) as f:
            chunk = b"\0" * (1 << 20)
            for _ in range(300):
                f.write(chunk)
    assert os.path.getsize(path) < 2 << 20
    before = set(os.listdir(tempfile.gettempdir()))
    r = run("inspect", path)
    assert r.returncode == 1 and "zip bomb" in r.stderr, r.stderr
    after = set(os.listdir(tempfile.gettempdir()))
    assert not [n for n in after - before if "ckptconv" in n]


def test_a_named_datatype_is_an_error_not_a_missing_tensor(tmp_path):
    """A named (committed) datatype where a dataset would be: what a dataset whose header
    lost its dataspace message reads as. Every command fails naming it; none drops it."""
    path = tmp_path / "named.h5"
    with h5py.File(path, "w") as f:
        f["w"] = np.zeros(3, dtype="float32")
        f["t"] = np.dtype("float32")
    for cmd in ("inspect", "verify"):
        r = run(cmd, path)
        assert r.returncode == 1, r.stdout + r.stderr
        assert "/t" in r.stdout + r.stderr and "named" in r.stdout + r.stderr


def test_an_optimizer_weight_listed_but_missing_is_an_error(tmp_path):
    """A Keras 2 full model whose optimizer_weights lists a weight with no dataset: a
    weight lost, not one to pass over (Keras' loader would fail on it)."""
    path = tmp_path / "full.h5"
    with h5py.File(path, "w") as f:
        mw = f.create_group("model_weights")
        mw.attrs["layer_names"] = [b"dense"]
        g = mw.create_group("dense")
        g.attrs["weight_names"] = [b"dense/kernel:0"]
        g["dense/kernel:0"] = np.zeros((2, 2), dtype="float32")
        o = f.create_group("optimizer_weights")
        o.attrs["weight_names"] = [b"Adam/iter:0", b"Adam/m/dense/kernel:0"]
        o["Adam/iter:0"] = np.int64(3)
    for cmd in ("inspect", "verify"):
        r = run(cmd, path)
        assert r.returncode == 1, r.stdout + r.stderr
        assert "Adam/m/dense/kernel:0" in r.stdout + r.stderr


def test_keras3_vars_numbered_with_a_gap_is_an_error(tmp_path):
    """Keras 3 numbers a layer's variables vars/0, 1, 2, … without a gap: 0, 1, 3 has
    lost variable 2."""
    path = tmp_path / "m.weights.h5"
    with h5py.File(path, "w") as f:
        v = f.create_group("layers/dense/vars")
        for i in (0, 1, 3):
            v[str(i)] = np.zeros(2, dtype="float32")
        f.create_group("optimizer/vars")["0"] = np.int64(1)
    for cmd in ("inspect", "verify"):
        r = run(cmd, path)
        assert r.returncode == 1, r.stdout + r.stderr
        assert "/layers/dense/vars" in r.stdout + r.stderr and "no variable 2" in r.stdout + r.stderr
