#!/usr/bin/env python3
"""Writes the Keras HDF5 fixtures in testdata/keras2, testdata/keras3 and testdata/h5 with
real tf-keras 2.21 (Keras 2), Keras 3 and h5py.

Run from the repository root in a venv with tests/interop/requirements.txt installed:

    python testdata/generate_keras.py

Every file gets `<file>.expected.json`: each HDF5 dataset as h5py's `visititems` lists it
(path without the leading slash), its dtype (TensorFlow's names), shape and exact bytes
(hex; strings as lists of hex), plus the model's `count_params()` and trainable count where
a model wrote the file, and its JSON config (to rebuild it in later tests).
"""
import io
import json
import os
import shutil
import sys
import zipfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import h5py  # noqa: E402
import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def dtype_name(ds):
    dt = ds.dtype
    if dt.kind == "V" and dt.itemsize == 2 and not dt.names:
        # Keras 3 stores bfloat16 as 2-byte opaque (with attr dtype="bfloat16" in
        # .weights.h5, without it in legacy .h5).
        return "bfloat16"
    if dt == np.bool_:
        return "bool"
    if dt.kind in ("S", "O", "U"):
        return "string"
    return np.dtype(dt).newbyteorder("=").name


def dataset_entry(name, ds):
    entry = {"name": name, "dtype": dtype_name(ds), "shape": list(ds.shape)}
    if entry["dtype"] == "string":
        vals = ds[()]
        flat = np.asarray(vals, dtype=object).reshape(-1) if ds.shape != () else [vals]
        entry["strings"] = [(v if isinstance(v, bytes) else v.encode()).hex() for v in flat]
    else:
        arr = ds[()]
        arr = np.asarray(arr)
        if arr.dtype.kind in "fiuc" and arr.dtype.byteorder == ">":
            arr = arr.astype(arr.dtype.newbyteorder("<"))
        entry["hex"] = np.ascontiguousarray(arr).tobytes().hex()
    return entry


def h5_listing(f):
    out = []

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            out.append(dataset_entry(name, obj))

    f.visititems(visit)
    return out


def write_expected(path, datasets, model=None, extra=None):
    doc = {"datasets": datasets}
    if model is not None:
        trainable = int(sum(np.prod(w.shape) for w in model.trainable_weights))
        total = int(model.count_params())
        doc.update({
            "count_params": total,
            "trainable_params": trainable,
            "non_trainable_params": total - trainable,
            "model_json": model.to_json(),
        })
        # Layers with weights, in model order, and their weights in load order.
        doc["weighted_layers"] = [
            {"name": l.name, "class_name": type(l).__name__,
             "weights": [w.name.split(":")[0] for w in l.weights]}
            for l in model.layers if l.weights
        ]
    if extra:
        doc.update(extra)
    with open(path + ".expected.json", "w") as fh:
        json.dump(doc, fh, indent=1, sort_keys=True)
        fh.write("\n")


def expect_h5(path, model=None, extra=None):
    with h5py.File(path, "r") as f:
        write_expected(path, h5_listing(f), model, extra)


def fresh(name):
    d = os.path.join(HERE, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


def build(keras, bf16=False):
    """Conv2D, BatchNormalization, Embedding, LSTM, Dense, a nested model, opt. bfloat16."""
    L = keras.layers
    img = keras.Input((6, 6, 2), name="image")
    x = L.Conv2D(3, 3, activation="relu", name="conv")(img)
    x = L.BatchNormalization(name="bn")(x)
    x = L.Flatten(name="flat")(x)
    seq = keras.Input((5,), dtype="int32", name="tokens")
    e = L.Embedding(12, 4, name="embed")(seq)
    e = L.LSTM(3, name="lstm")(e)
    head = keras.Sequential([L.Dense(4, activation="tanh", name="inner_a"), L.Dense(3, name="inner_b")], name="head")
    e = head(e)
    x = L.Concatenate(name="cat")([x, e])
    if bf16:
        x = L.Dense(4, dtype="bfloat16", name="bf16_dense")(x)
        x = L.Activation("linear", dtype="float32", name="to_f32")(x)
    out = L.Dense(2, activation="softmax", name="out")(x)
    model = keras.Model([img, seq], out, name="fixture_model")
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    rng = np.random.default_rng(5)
    xs = [rng.standard_normal((8, 6, 6, 2)).astype("float32"), rng.integers(0, 12, (8, 5)).astype("int32")]
    ys = np.eye(2)[rng.integers(0, 2, 8)].astype("float32")
    model.fit(xs, ys, epochs=1, batch_size=4, verbose=0)
    return model, xs


def keras2():
    import tf_keras as keras

    keras.utils.set_random_seed(1)
    d = fresh("keras2")
    model, xs = build(keras)
    extra = {"predict_input_seed": 5}
    p = os.path.join(d, "weights.h5")
    model.save_weights(p)
    expect_h5(p, model, extra)
    p = os.path.join(d, "full.h5")
    model.save(p)
    expect_h5(p, model, extra)
    # The same model saved in TF format: an object-based checkpoint (with optimizer slots).
    os.makedirs(os.path.join(d, "tf_format"))
    p = os.path.join(d, "tf_format", "weights")
    model.save_weights(p)
    import tensorflow as tf
    reader = tf.train.load_checkpoint(p)
    dtypes = reader.get_variable_to_dtype_map()
    tensors = []
    for name, shape in tf.train.list_variables(p):
        if dtypes[name] == tf.string:
            continue
        arr = np.ascontiguousarray(np.asarray(reader.get_tensor(name)))
        tensors.append({"name": name, "dtype": dtypes[name].name, "shape": list(shape), "hex": arr.tobytes().hex()})
    write_expected(p, tensors, model, extra)

    # Layer names longer than the 64 KiB attribute limit: split into layer_names0, 1, ...
    L = keras.layers
    inp = keras.Input((2,), name="in")
    x = inp
    for i in range(300):
        x = L.Activation("linear", name=f"act_{i:03d}_" + "n" * 220)(x)
    x = L.Dense(1, name="last")(x)
    long = keras.Model(inp, x, name="long_names")
    p = os.path.join(d, "long_names.h5")
    long.save_weights(p)
    with h5py.File(p, "r") as f:
        split = sorted(k for k in f.attrs if k.startswith("layer_names"))
    assert len(split) > 1, split
    expect_h5(p, None, {"layer_name_attrs": split, "count_params": int(long.count_params())})


def keras3():
    import keras

    keras.utils.set_random_seed(1)
    d = fresh("keras3")
    model, xs = build(keras, bf16=True)
    p = os.path.join(d, "model.weights.h5")
    model.save_weights(p)
    expect_h5(p, model)
    p = os.path.join(d, "legacy.h5")
    model.save(p)
    expect_h5(p, model)
    p = os.path.join(d, "model.keras")
    model.save(p)
    with zipfile.ZipFile(p) as z:
        members = z.namelist()
        with h5py.File(io.BytesIO(z.read("model.weights.h5")), "r") as f:
            write_expected(p, h5_listing(f), model, {"members": members})
    # Sharded weights: a .weights.json map plus numbered .weights.h5 parts.
    p = os.path.join(d, "sharded.weights.json")
    model.save_weights(p, max_shard_size=0.000002)  # in GiB: about 2 KB per part
    parts = sorted(n for n in os.listdir(d) if n.startswith("sharded") and n.endswith(".h5"))
    assert len(parts) > 1, parts
    listing = []
    for part in parts:
        with h5py.File(os.path.join(d, part), "r") as f:
            listing.extend(dict(e, part=part) for e in h5_listing(f))
    write_expected(p, listing, model, {"parts": parts})


def generic():
    """Every dtype h5py writes, chunked/compressed and big-endian data, no Keras layout."""
    d = fresh("h5")
    p = os.path.join(d, "mixed.h5")
    rng = np.random.default_rng(3)
    with h5py.File(p, "w") as f:
        for t in ["f2", "f4", "f8", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8"]:
            f[f"numeric/{t}"] = (rng.standard_normal((3, 4)) * 100).astype(t)
        f["numeric/big_endian_f4"] = rng.standard_normal((5,)).astype(">f4")
        f["numeric/big_endian_i8"] = rng.integers(-9, 9, (2, 2)).astype(">i8")
        f["bool"] = rng.integers(0, 2, (4,)).astype(bool)
        f["complex64"] = (rng.standard_normal(3) + 1j * rng.standard_normal(3)).astype("c8")
        f["complex128"] = (rng.standard_normal((2, 2)) + 1j).astype("c16")
        f["scalar"] = np.float64(2.5)
        f["empty"] = np.zeros((0, 4), "f4")
        f.create_dataset("chunked_gzip", data=np.arange(1000, dtype="f4").reshape(10, 100),
                         chunks=(3, 30), compression="gzip")
        f["strings/fixed"] = np.array([b"ab", b"", b"xyz\x01"], dtype="S4")
        f["strings/vlen"] = np.array(["hello", "", "wörld"], dtype=h5py.string_dtype())
        f["strings/scalar"] = "just one"
        f.attrs["note"] = "not a Keras file"
    expect_h5(p)


def main():
    for fn in (keras2, keras3, generic):
        fn()
        print("wrote", fn.__name__, file=sys.stderr)


if __name__ == "__main__":
    main()
