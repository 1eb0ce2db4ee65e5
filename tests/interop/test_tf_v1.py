"""TF1 V1 checkpoints (`Saver(write_version=SaverDef.V1)`, TensorFlow's tensor-slice tables),
freshly written here by TensorFlow — not the committed fixtures — and one from PyPI that
TensorFlow 0.11 wrote in 2016 (deepnlp 0.1.5).

For each: ckptconv lists what `tf.train.list_variables` lists, through every spelling of
the checkpoint's path; `verify` passes; and every tensor, converted to each output format,
reads back bit-exactly what TensorFlow reads from the V1 original — a V2 checkpoint through
`tf.train.load_checkpoint`, safetensors through the safetensors library, `.h5` through
h5py — except what ckptconv says it skipped because the format cannot hold it.

V1 files written here without TensorFlow, in the TensorProto forms TensorFlow reads but
does not write (int_val values out of their dtype's range, half_val high bits, bool_val 2,
an odd number of complex floats, values split over merged messages or not packed,
uint32/uint64 fields), are read as TensorFlow's `RestoreV2` reads them; slices with too
few or too many values are refused by both; a slice held in `tensor_content`, which
TensorFlow's V1 reader refuses, is read by ckptconv.

TensorFlow's own value of a V1 tensor: `tf.train.load_checkpoint(...).get_tensor`, or,
for what that refuses in V1 files (sliced tensors; float16, uint16 and complex), the
`RestoreV2` op with the full slice `""`, which reads V1 files through TensorFlow's
TensorSliceReader.
"""
import glob
import json
import os
import shutil

import h5py
import numpy as np
import pytest
import tensorflow as tf
from safetensors.numpy import load_file

import third_party as tp
from conftest import inspect_json, run

V1 = tf.compat.v1.train.SaverDef.V1
# What TensorFlow 2.21 saves in V1 files (it refuses bfloat16, uint32 and uint64).
DTYPES = [
    tf.float16, tf.float32, tf.float64, tf.int8, tf.int16, tf.int32, tf.int64,
    tf.uint8, tf.uint16, tf.bool, tf.complex64, tf.complex128, tf.string,
]


def values(rng, dtype, shape):
    if dtype == tf.string:
        n = int(np.prod(shape))
        return np.array([bytes(rng.integers(0, 256, size=int(rng.integers(0, 9)), dtype=np.uint8))
                         for _ in range(n)], dtype=object).reshape(shape)
    if dtype == tf.bool:
        return rng.integers(0, 2, size=shape).astype(bool)
    if dtype.is_complex:
        return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype.as_numpy_dtype)
    if dtype.is_floating:
        return rng.standard_normal(shape).astype(np.float32).astype(dtype.as_numpy_dtype)
    info = np.iinfo(dtype.as_numpy_dtype)
    return rng.integers(info.min, info.max, size=shape, dtype=dtype.as_numpy_dtype, endpoint=True)


def as_bytes(value):
    """A tensor's exact bytes (little-endian, row-major), or its list of strings."""
    if isinstance(value, bytes):
        return [value]
    arr = np.asarray(value)
    if arr.dtype.kind in ("O", "S"):
        return [bytes(x) if not isinstance(x, str) else x.encode() for x in arr.reshape(-1).tolist()]
    if arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    return np.ascontiguousarray(arr).tobytes()


def tensorflow_reads(path):
    """name -> (dtype name, shape, bytes or strings): what TensorFlow reads from the V1
    checkpoint `path` (see the module docs)."""
    reader = tf.train.load_checkpoint(path)
    dtypes = reader.get_variable_to_dtype_map()
    out = {}
    for name, shape in tf.train.list_variables(path):
        try:
            value = reader.get_tensor(name)
        except Exception as e:  # noqa: BLE001 - TensorFlow raises several types here
            msg = str(e)
            assert "Sliced checkpoints are not supported" in msg or "Data type not supported" in msg, msg
            value = tf.raw_ops.RestoreV2(prefix=path, tensor_names=[name], shape_and_slices=[""],
                                         dtypes=[dtypes[name]])[0].numpy()
        out[name] = (dtypes[name].name, list(shape), as_bytes(value))
    return out


def ours(path):
    doc = inspect_json(path)
    assert doc["format"] == "tf-checkpoint-v1", path
    return {t["name"]: (t["dtype"], t["shape"]) for t in doc["tensors"]}


def judge(out):
    """name -> bytes or strings, as the output format's own library reads `out`."""
    if out.endswith(".safetensors"):
        return {k: as_bytes(v) for k, v in load_file(out).items()}
    if out.endswith(".h5"):
        got = {}
        with h5py.File(out, "r") as f:
            f.visititems(lambda k, o: got.__setitem__(k, as_bytes(o[()])) if isinstance(o, h5py.Dataset) else None)
        return got
    reader = tf.train.load_checkpoint(out)
    return {name: as_bytes(reader.get_tensor(name)) for name, _ in tf.train.list_variables(out)}


def check(path, spellings=()):
    """`path` (a V1 checkpoint as TensorFlow names it) and its other `spellings` list what
    TensorFlow lists; verify passes; every output format holds TensorFlow's values."""
    want = tensorflow_reads(path)
    assert want
    listing = {k: (d, s) for k, (d, s, _) in want.items()}
    for p in [path, *spellings]:
        assert ours(p) == listing, p
    assert ": ok (" in run("verify", path, check=0).stdout
    tmp = os.path.join(os.path.dirname(path), "converted")
    for out, flags in [("ck/model", []), ("x.safetensors", []), ("x.h5", ["--layout", "flat"])]:
        out = os.path.join(tmp, out)
        r = run("convert", path, "-o", out, "--no-progress", "--json", *flags, check=0)
        skipped = {s["name"] for s in json.loads(r.stdout.splitlines()[-1])["skipped"]}
        if out.endswith("model"):
            assert not skipped, skipped  # a checkpoint holds every dtype V1 has
        got = judge(out)
        for name, (dtype, _, value) in want.items():
            if name in skipped:
                # Only what the format cannot hold: strings and complex128 in safetensors,
                # strings with NUL bytes in HDF5.
                assert dtype in ("string", "complex128"), (out, name, dtype)
                continue
            assert name in got, f"{out}: {name} missing"
            assert got[name] == value, f"{out}: {name} differs"
    shutil.rmtree(tmp)


def save(graph_fn, path, sharded=False):
    g = tf.Graph()
    with g.as_default():
        assigns = graph_fn() or []
        saver = tf.compat.v1.train.Saver(write_version=V1, sharded=sharded)
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            sess.run(assigns)
            return saver.save(sess, path, write_meta_graph=False)


def partitioned(rng, name, dtype, shape, partitioner, devices=None):
    """A partitioned variable of random values; the ops assigning them. `devices`: place
    partition k on devices[k % len(devices)] (a sharded Saver writes one shard per device)."""
    full = values(rng, dtype, shape)
    count = [0]

    def device(op):
        if devices and op.type in ("VariableV2", "VarHandleOp"):
            count[0] += 1
            return devices[(count[0] - 1) % len(devices)]
        return op.device

    with tf.compat.v1.device(device):
        var = tf.compat.v1.get_variable(name, shape=shape, dtype=dtype, partitioner=partitioner,
                                        initializer=tf.compat.v1.zeros_initializer(), use_resource=False)
    ops = []
    for part in var:
        off = part._get_save_slice_info().var_offset
        ops.append(part.assign(full[tuple(slice(o, o + n) for o, n in zip(off, part.shape.as_list()))]))
    return ops


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fresh_single_file_every_dtype(tmp_path, seed):
    rng = np.random.default_rng(seed)

    def graph():
        for i, dt in enumerate(DTYPES):
            rank = int(rng.integers(0, 4))
            shape = [int(rng.integers(0, 5)) for _ in range(rank)]
            tf.compat.v1.Variable(values(rng, dt, shape), name=f"s{i % 3}/v.{i}/{dt.name}")
        tf.compat.v1.Variable(values(rng, tf.float32, [64, 33]), name="big/kernel")

    path = save(graph, str(tmp_path / "model.ckpt"))
    check(path, [str(tmp_path), str(tmp_path / "checkpoint")])


def test_fresh_partitioned(tmp_path):
    rng = np.random.default_rng(11)

    def graph():
        ops = []
        ops += partitioned(rng, "emb", tf.float32, [11, 3], tf.compat.v1.fixed_size_partitioner(4))
        ops += partitioned(rng, "cols", tf.float64, [3, 7], tf.compat.v1.fixed_size_partitioner(3, axis=1))
        ops += partitioned(rng, "ids", tf.int64, [9], tf.compat.v1.fixed_size_partitioner(2))
        ops += partitioned(rng, "half", tf.float16, [6, 2], tf.compat.v1.fixed_size_partitioner(3))
        ops += partitioned(rng, "flags", tf.bool, [5, 2, 2], tf.compat.v1.fixed_size_partitioner(2))
        ops += partitioned(rng, "small", tf.int8, [4, 4], tf.compat.v1.min_max_variable_partitioner(
            max_partitions=4, min_slice_size=4))
        tf.compat.v1.Variable(values(rng, tf.int32, [3]), name="plain")
        return ops

    path = save(graph, str(tmp_path / "model.ckpt"))
    check(path, [str(tmp_path)])


def test_fresh_sharded_and_every_spelling(tmp_path):
    """A sharded Saver: one shard per device. Variables without a device and on /cpu:0 are
    two devices to the Saver, so this needs no second CPU."""
    rng = np.random.default_rng(5)

    def graph():
        with tf.device("/cpu:0"):
            tf.compat.v1.Variable(values(rng, tf.float32, [3, 2]), name="on_cpu/kernel")
            tf.compat.v1.Variable(values(rng, tf.string, [2]), name="on_cpu/names")
        tf.compat.v1.Variable(values(rng, tf.complex128, [2, 2]), name="anywhere/phase")
        return partitioned(rng, "spread", tf.float32, [8, 3], tf.compat.v1.fixed_size_partitioner(4),
                           devices=["/cpu:0", ""])

    path = save(graph, str(tmp_path / "model.ckpt"), sharded=True)
    assert path.endswith("-?????-of-00002"), path
    shards = sorted(glob.glob(str(tmp_path / "model.ckpt-*")))
    assert len(shards) == 2
    base = str(tmp_path / "model.ckpt")
    check(path, [base, *shards, str(tmp_path), str(tmp_path / "checkpoint"), base + "-*"])
    # TensorFlow Serving's naming, in a directory without a state file.
    serving = tmp_path / "serving" / "00000123"
    serving.mkdir(parents=True)
    for k, s in enumerate(shards):
        shutil.copy(s, serving / f"export-{k:05d}-of-00002")
    check(str(serving / "export-?????-of-00002"), [str(serving / "export"), str(serving)])


def test_corrupted_v1_files_fail_naming_the_file(tmp_path):
    rng = np.random.default_rng(9)

    def graph():
        tf.compat.v1.Variable(values(rng, tf.float32, [40, 40]), name="w")

    path = save(graph, str(tmp_path / "model.ckpt"))
    good = open(path, "rb").read()
    for i, bad in enumerate([good[: len(good) // 2], good[:-1],
                             good[:100] + bytes([good[100] ^ 1]) + good[101:]]):
        p = tmp_path / f"bad{i}.ckpt"
        p.write_bytes(bad)
        r = run("verify", p)
        assert r.returncode == 1 and p.name in r.stdout + r.stderr, r.stdout + r.stderr
        # TensorFlow refuses them too.
        with pytest.raises(Exception):  # noqa: B017 - any of TensorFlow's error types
            tf.train.load_checkpoint(str(p)).get_tensor("w")


# ------------------------------------------------ a V1 checkpoint from PyPI (2016)

def test_deepnlp_pos_tagger_2016():
    """deepnlp 0.1.5's POS tagger: written by TensorFlow 0.11, its state file naming
    /mnt/pypi/…, an LSTM and a 25 MB embedding."""
    d = tp.member("deepnlp", "deepnlp/pos/ckpt/zh")
    work = os.path.join(tp.cache_dir(), "deepnlp-pos-v1-work")
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(d, work)
    try:
        listing = ours(work)
        assert len(listing) == 8 and listing["pos_var_scope/embedding"] == ("float32", [50000, 128])
        check(os.path.join(work, "pos.ckpt"), [work, os.path.join(work, "checkpoint")])
    finally:
        shutil.rmtree(work, ignore_errors=True)


# ------------------------------- TensorProto forms TensorFlow itself does not write

def _crc32c(data, _table=[]):
    if not _table:
        for i in range(256):
            c = i
            for _ in range(8):
                c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
            _table.append(c)
    c = 0xFFFFFFFF
    for b in data:
        c = _table[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def _varint(v):
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def _block(entries):
    """A table block of `entries` (every entry a restart point), with its trailer."""
    import struct
    body, restarts = b"", []
    for k, v in entries:
        restarts.append(len(body))
        body += _varint(0) + _varint(len(k)) + _varint(len(v)) + k + v
    body += b"".join(struct.pack("<I", r) for r in restarts) + struct.pack("<I", len(restarts))
    crc = _crc32c(body + b"\0")
    masked = (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF
    return body, body + b"\0" + struct.pack("<I", masked)


def write_table(path, entries):
    """A LevelDB-style table as TensorFlow reads it, written here without TensorFlow: one
    data block, an empty metaindex, the index, the footer."""
    import struct
    entries = sorted(entries)
    data, out = _block(entries)
    meta, meta_bytes = _block([])
    meta_off = len(out)
    out += meta_bytes
    index, index_bytes = _block([(entries[-1][0], _varint(0) + _varint(len(data)))])
    index_off = len(out)
    out += index_bytes
    footer = _varint(meta_off) + _varint(len(meta)) + _varint(index_off) + _varint(len(index))
    out += footer + b"\0" * (40 - len(footer)) + struct.pack("<Q", 0xDB4775248B80FB57)
    with open(path, "wb") as f:
        f.write(out)


def slice_key(name, rank):
    """EncodeTensorNameSlice(name, full slice of `rank` dimensions)."""
    esc = name.encode().replace(b"\xff", b"\xff\x00").replace(b"\x00", b"\x00\xff")
    return b"\x00" + esc + b"\x00\x01" + bytes([1, rank]) + b"\x80\x7f" * rank


def v1_file(path, tensors):
    """A V1 file of full-slice tensors: (name, dtype, shape, serialized SavedTensorSlices
    value or values, concatenated as protobuf merges them)."""
    from tensorflow.core.framework import tensor_shape_pb2, tensor_slice_pb2
    from tensorflow.core.util import saved_tensor_slice_pb2 as sts

    meta = sts.SavedTensorSlices()
    entries = []
    for name, dtype, shape, value in tensors:
        t = meta.meta.tensor.add(name=name, type=dtype.as_datatype_enum)
        t.shape.CopyFrom(tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in shape]))
        t.slice.add().CopyFrom(tensor_slice_pb2.TensorSliceProto(
            extent=[tensor_slice_pb2.TensorSliceProto.Extent() for _ in shape]))
        entries.append((slice_key(name, len(shape)), value))
    meta.meta.versions.producer = 1
    write_table(path, [(b"", meta.SerializeToString())] + entries)


def slice_value(**fields):
    from tensorflow.core.framework import tensor_pb2
    from tensorflow.core.util import saved_tensor_slice_pb2 as sts

    v = sts.SavedTensorSlices()
    v.data.data.CopyFrom(tensor_pb2.TensorProto(**fields))
    return v.SerializeToString()


def raw_slice_value(tensor_proto_bytes):
    """A slice value whose TensorProto is given as bytes: 12 len (1a len TP)."""
    inner = b"\x1a" + _varint(len(tensor_proto_bytes)) + tensor_proto_bytes
    return b"\x12" + _varint(len(inner)) + inner


ACCEPTED = [
    # int_val narrowed to the dtype (300 as uint8 is 44), half_val's low 16 bits, a
    # bool_val of 2, five floats as two complex64, float_val split over two merged
    # messages, unpacked values, uint32/uint64 fields (TensorFlow reads them from V1 files
    # but cannot save them there).
    ("u8", tf.uint8, [3], slice_value(int_val=[300, -1, 7])),
    ("i16", tf.int16, [2], slice_value(int_val=[70000, -70000])),
    ("f16", tf.float16, [2], slice_value(half_val=[0x3C00, 0x1BC00])),
    ("flags", tf.bool, [3], raw_slice_value(b"\x5a\x03\x01\x00\x02")),
    ("c64", tf.complex64, [2], slice_value(scomplex_val=[1, 2, 3, 4, 5])),
    ("split", tf.float32, [3], slice_value(float_val=[1, 2]) + slice_value(float_val=[3])),
    ("unpacked", tf.float32, [2], raw_slice_value(b"\x2d\x00\x00\x80\x3f\x2d\x00\x00\x00\x40")),
    ("i64", tf.int64, [2], raw_slice_value(b"\x50\x05\x52\x01\x7f")),
    ("u32", tf.uint32, [2], slice_value(uint32_val=[7, 2**32 - 1])),
    ("u64", tf.uint64, [1], slice_value(uint64_val=[2**64 - 2])),
]


def test_crafted_forms_read_as_tensorflow_reads_them(tmp_path):
    path = str(tmp_path / "forms.ckpt")
    v1_file(path, ACCEPTED)
    want = {}
    for name, dtype, _, _ in ACCEPTED:
        value = tf.raw_ops.RestoreV2(prefix=path, tensor_names=[name], shape_and_slices=[""],
                                     dtypes=[dtype])[0].numpy()
        want[name] = as_bytes(value)
    assert want["u8"] == bytes([44, 255, 7]) and want["flags"] == bytes([1, 0, 1])
    out = str(tmp_path / "v2" / "model")
    run("convert", path, "-o", out, "--no-progress", check=0)
    assert judge(out) == want


@pytest.mark.parametrize("name,dtype,shape,value", [
    # Fewer values than elements: no fill with the last value, in either reader.
    ("short", tf.float32, [3], slice_value(float_val=[5.0])),
    # More values than elements.
    ("long", tf.int32, [2], slice_value(int_val=[1, 2, 3, 4])),
    # tensor_content: TensorFlow's V1 reader does not look there; ckptconv reads it.
    ("content", tf.float32, [2], slice_value(tensor_content=np.array([1.5, -2], "<f4").tobytes())),
])
def test_crafted_forms_tensorflow_refuses(tmp_path, name, dtype, shape, value):
    path = str(tmp_path / f"{name}.ckpt")
    v1_file(path, [(name, dtype, shape, value)])
    with pytest.raises(tf.errors.InvalidArgumentError, match="Error copying slice data"):
        tf.raw_ops.RestoreV2(prefix=path, tensor_names=[name], shape_and_slices=[""], dtypes=[dtype])
    r = run("verify", path)
    if name == "content":
        assert r.returncode == 0, r.stdout + r.stderr
        out = str(tmp_path / "x.safetensors")
        run("convert", path, "-o", out, "--no-progress", check=0)
        assert judge(out)[name] == np.array([1.5, -2], "<f4").tobytes()
    else:
        assert r.returncode == 1 and "where the slice has" in r.stdout + r.stderr, r.stdout + r.stderr
