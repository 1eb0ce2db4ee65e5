"""Read TensorFlow checkpoints and Keras files into numpy, and convert them, without
TensorFlow.

    >>> import ckptconv
    >>> with ckptconv.safe_open("model.ckpt") as f:
    ...     for name in f.keys():
    ...         arr = f.get_tensor(name)

The API mirrors the ``safetensors`` package where the ideas match: :func:`safe_open`,
:func:`load`; plus :func:`convert`, :func:`inspect`, :func:`summary` and :func:`diff`,
which return the same data as the command's ``--json``. See docs/python.md.

numpy is imported on first use, not at import time, so that ``import ckptconv`` is fast.
"""

from __future__ import annotations

import json as _json
import os as _os
import sys as _sys
import warnings as _warnings

from . import _ckptconv
from ._ckptconv import (
    CorruptError,
    Error,
    ExistsError,
    InterruptedError,
    LimitError,
    IoError,
    NotFoundError,
    UnsupportedError,
    UsageError,
)

__version__ = _ckptconv.__version__

__all__ = [
    "safe_open",
    "load",
    "convert",
    "inspect",
    "summary",
    "diff",
    "Error",
    "CorruptError",
    "UnsupportedError",
    "NotFoundError",
    "IoError",
    "UsageError",
    "ExistsError",
    "InterruptedError",
    "LimitError",
]

# HDF5 isolation: every HDF5 file is opened by a child process first (this interpreter
# running _h5probe.py), so that a file that crashes libhdf5 raises CorruptError instead
# of killing the caller. Skipped where the interpreter cannot be re-executed.
_PROBE = _os.path.join(_os.path.dirname(_os.path.abspath(__file__)), "_h5probe.py")
if _sys.executable and _os.path.exists(_sys.executable) and _os.path.exists(_PROBE):
    _ckptconv.set_isolation([_sys.executable, _PROBE])

_PLAIN = {
    "bool": "|b1",
    "int8": "|i1",
    "int16": "<i2",
    "int32": "<i4",
    "int64": "<i8",
    "uint8": "|u1",
    "uint16": "<u2",
    "uint32": "<u4",
    "uint64": "<u8",
    "float16": "<f2",
    "float32": "<f4",
    "float64": "<f8",
    "complex64": "<c8",
    "complex128": "<c16",
}
# dtype -> (ml_dtypes attribute, raw stand-in)
_ML = {
    "bfloat16": ("bfloat16", "<u2"),
    "float8_e5m2": ("float8_e5m2", "|u1"),
    "float8_e4m3fn": ("float8_e4m3fn", "|u1"),
}
_warned: set = set()


def _np_dtype(name: str):
    """The numpy dtype for a ckptconv dtype name (TensorFlow's names)."""
    import numpy as np

    if name in _PLAIN:
        return np.dtype(_PLAIN[name])
    if name in _ML:
        attr, raw = _ML[name]
        try:
            import ml_dtypes
        except ImportError:
            if name not in _warned:
                _warned.add(name)
                _warnings.warn(
                    f"ckptconv: {name} tensors are returned as raw {np.dtype(raw).name} "
                    "(their bit patterns): install ml_dtypes to get them as "
                    f"ml_dtypes.{attr}",
                    stacklevel=3,
                )
            return np.dtype(raw)
        return np.dtype(getattr(ml_dtypes, attr))
    if name == "string":
        return np.dtype(object)
    raise UnsupportedError(f"no numpy dtype for {name}")


class _View:
    """A read-only view of bytes borrowed from an open source's memory map; keeps the
    source (and so the map) alive as long as any array over it lives."""

    __slots__ = ("__array_interface__", "_owner")

    def __init__(self, owner, address: int, nbytes: int):
        self._owner = owner
        self.__array_interface__ = {
            "data": (address, True),
            "shape": (nbytes,),
            "typestr": "|u1",
            "version": 3,
        }


class _Slice:
    """``safe_open(...).get_slice(name)``: shape and dtype without reading; indexing
    reads the tensor (whole, then slices it: a view when the tensor is zero-copy)."""

    def __init__(self, f: "safe_open", name: str):
        self._f = f
        self._name = name
        self._t = f._info[name]

    def get_shape(self) -> list:
        return list(self._t[3])

    def get_dtype(self) -> str:
        return self._t[2]

    def __getitem__(self, key):
        return self._f.get_tensor(self._name)[key]

    def __len__(self) -> int:
        shape = self._t[3]
        if not shape:
            raise TypeError("len() of a scalar tensor")
        return shape[0]


class safe_open:
    """Open a weights file of any format ckptconv reads (TF checkpoint prefix, directory
    or SavedModel, V1 checkpoint, frozen GraphDef, Keras .h5 / .keras / .weights.h5,
    sharded saves, safetensors) for lazy reading.

    ``framework`` is accepted for compatibility with ``safetensors.safe_open``; only
    numpy (``"numpy"``/``"np"``) is supported. ``mmap=False`` reads with plain reads,
    never memory-mapped (the CLI's ``--no-mmap``); arrays are then copies.
    """

    def __init__(self, path, framework: str = "numpy", device: str = "cpu", *, mmap: bool = True):
        if framework not in ("numpy", "np"):
            raise UsageError(f"framework {framework!r} is not supported (only numpy)")
        if device != "cpu":
            raise UsageError(f"device {device!r} is not supported (only cpu)")
        self._r = _ckptconv.open(_os.fspath(path), mmap)
        self._tensors = self._r.tensors()
        self._index = {}
        self._info = {}
        for i, t in enumerate(self._tensors):
            self._index.setdefault(t[0], i)
            self._info.setdefault(t[0], t)
        self._layer_of = {}
        for layer in self._r.layers():
            for w in layer["weights"]:
                self._layer_of.setdefault(w, layer)

    # context manager
    def __enter__(self) -> "safe_open":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Drop this handle. Arrays already returned stay valid (they keep the file's map
        alive)."""
        self._r = None

    def _reader(self):
        if self._r is None:
            raise UsageError("the file is closed")
        return self._r

    def keys(self) -> list:
        """The file's own tensor keys, in its order (what ``tf.train.list_variables`` or
        h5py shows)."""
        return [t[0] for t in self._tensors]

    def __iter__(self):
        return iter(self.keys())

    def __contains__(self, name) -> bool:
        return name in self._index

    def __len__(self) -> int:
        return len(self._tensors)

    def _i(self, name: str) -> int:
        try:
            return self._index[name]
        except KeyError:
            raise KeyError(f"no tensor {name!r} in {self._reader().path()}") from None

    def metadata(self) -> dict:
        """For a safetensors file, its ``__metadata__`` (as ``safetensors.safe_open``
        gives it; ``{}`` when there is none). For other formats, what the file is:
        ``{"format": ..., "path": ...}`` (strings, as safetensors' metadata are)."""
        r = self._reader()
        own = r.file_metadata()
        if own is not None:
            return dict(own)
        return {"format": r.format(), "path": _os.fspath(r.path())}

    def info(self, name: str) -> dict:
        """A tensor's dtype, shape, canonical variable name and Keras layer, without
        reading it."""
        i = self._i(name)
        t = self._tensors[i]
        layer = self._layer_of.get(i)
        return {
            "name": t[0],
            "variable": t[1],
            "dtype": t[2],
            "shape": list(t[3]),
            "byte_len": t[4],
            "shard": t[5],
            "slices": t[6],
            "object_path": t[7],
            "layer": None if layer is None else layer["name"],
            "layer_class": None if layer is None else layer["class_name"],
        }

    def get_slice(self, name: str) -> _Slice:
        self._i(name)
        return _Slice(self, name)

    def get_tensor(self, name: str):
        """The tensor as a numpy array, checksums checked, bit-exact. Zero-copy and
        read-only when its bytes lie in the file as they are (the array is a view of the
        memory-mapped file); otherwise a read-only array over a decoded copy. Strings
        come as an object array of ``bytes``."""
        import numpy as np

        i = self._i(name)
        t = self._tensors[i]
        dtype_name, shape, nbytes = t[2], tuple(t[3]), t[4]
        dt = _np_dtype(dtype_name)
        kind, payload = self._reader().read(i)
        if kind == "strings":
            arr = np.empty(len(payload), dtype=object)
            arr[:] = payload
            arr = arr.reshape(shape)
            arr.flags.writeable = False
            return arr
        if nbytes == 0:
            arr = np.empty(shape, dtype=dt)
            arr.flags.writeable = False
            return arr
        if kind == "ptr":
            raw = np.asarray(_View(self._r, payload, nbytes))
        else:
            raw = np.frombuffer(payload, dtype=np.uint8)
        return raw.view(dt).reshape(shape)


def load(path, *, mmap: bool = True) -> dict:
    """Every tensor of a weights file: ``{key: numpy array}`` (see :meth:`safe_open.get_tensor`)."""
    with safe_open(path, mmap=mmap) as f:
        return {k: f.get_tensor(k) for k in f.keys()}


def _list(v) -> list:
    if v is None:
        return []
    if isinstance(v, (str, bytes, _os.PathLike)):
        return [_os.fspath(v)]
    return [_os.fspath(x) for x in v]


def convert(
    src,
    dst,
    *,
    to=None,
    layout=None,
    like=None,
    include=None,
    exclude=None,
    rename=None,
    dtype=None,
    weights_only: bool = False,
    force: bool = False,
    strict: bool = False,
    max_shard_size=None,
    fsync: bool = True,
    mmap: bool = True,
) -> dict:
    """Convert ``src`` to ``dst``, exactly as ``ckptconv convert SRC -o DST`` does (the
    same argument parsing and code; the same output bytes). Returns the report that
    ``convert --json`` prints. ``include``/``exclude`` take a glob or a list of them;
    ``rename`` a ``"RE=REPL"`` string, a list of them, or a dict ``{RE: REPL}`` (applied
    in order). Ctrl-C stops it (no output left behind) and raises KeyboardInterrupt."""
    argv = ["ckptconv", "convert", "--output=" + _os.fspath(dst)]
    if to is not None:
        argv.append("--to=" + str(to))
    if layout is not None:
        argv.append("--layout=" + str(layout))
    if like is not None:
        argv.append("--like=" + _os.fspath(like))
    for g in _list(include):
        argv.append("--include=" + g)
    for g in _list(exclude):
        argv.append("--exclude=" + g)
    if isinstance(rename, dict):
        rename = [f"{k}={v}" for k, v in rename.items()]
    for r in _list(rename):
        argv.append("--rename=" + r)
    if dtype is not None:
        argv.append("--dtype=" + str(dtype))
    if weights_only:
        argv.append("--weights-only")
    if force:
        argv.append("--force")
    if strict:
        argv.append("--strict")
    if max_shard_size is not None:
        argv.append("--max-shard-size=" + str(max_shard_size))
    if not fsync:
        argv.append("--no-fsync")
    if not mmap:
        argv.append("--no-mmap")
    argv += ["--", _os.fspath(src)]
    return _json.loads(_ckptconv.convert(argv))


def inspect(path, *, mmap: bool = True) -> dict:
    """What ``ckptconv inspect PATH --json`` prints, as Python data."""
    return _json.loads(_ckptconv.inspect_json(_os.fspath(path), mmap))


def summary(path, *, mmap: bool = True) -> dict:
    """What ``ckptconv summary PATH --json`` prints, as Python data."""
    return _json.loads(_ckptconv.summary_json(_os.fspath(path), mmap))


def diff(a, b, *, atol: float = 0.0, rtol: float = 0.0, include_optimizer: bool = False, mmap: bool = True) -> dict:
    """What ``ckptconv diff A B --json`` prints, as Python data (``"same"`` says whether
    the weights are equal within the tolerances)."""
    return _json.loads(
        _ckptconv.diff_json(_os.fspath(a), _os.fspath(b), atol, rtol, include_optimizer, mmap)
    )
