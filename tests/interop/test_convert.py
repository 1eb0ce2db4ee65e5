"""Real TensorFlow, Keras, h5py and safetensors judge what `ckptconv convert` writes.

- every fixture, every direction: the judge loads our output and gets identical tensors;
- tf-keras models load converted `.h5` and checkpoints (tf1 and object layouts) and predict
  exactly what the original weights predict;
- a Keras 3 legacy `.h5` round-tripped through a checkpoint loads in Keras 3, same predictions;
- `tf.compat.v1.train.Saver` restores a converted TF1 checkpoint;
- freshly written models (not in testdata) behave the same.
"""
import json
import os

import h5py
import numpy as np
import pytest
import tensorflow as tf
from safetensors.numpy import load_file

from conftest import ROOT, inspect_json, run

TESTDATA = os.path.join(ROOT, "testdata")
FIXTURES = [
    "tf/tf1_saver", "tf/partitioned", "tf/multi_shard", "tf/tf2_object", "tf/saved_model",
    "keras2/weights.h5", "keras2/full.h5", "keras2/tf_format/weights",
    "keras3/model.weights.h5", "keras3/legacy.h5", "keras3/model.keras", "keras3/sharded.weights.json",
    "h5/mixed.h5",
]
DIRECTIONS = [
    ("st.safetensors", []),
    ("k.h5", []),
    ("flat.h5", ["--layout", "flat"]),
    ("tf1/model", ["--layout", "tf1"]),
    ("obj/model", ["--layout", "object"]),
]


def source_values(fixture):
    """variable name -> (dtype name, shape, bytes or list of bytes), from the judges."""
    path = os.path.join(TESTDATA, fixture)
    doc = inspect_json(path)
    variable = {t["name"]: t["variable"] for t in doc["tensors"]}
    exp_path = path + ".expected.json" if os.path.isfile(path + ".expected.json") else None
    if exp_path is None:
        exp_path = os.path.join(path, "expected.json")
    exp = json.load(open(exp_path))
    entries = exp.get("variables") or exp.get("datasets")
    out = {}
    for e in entries:
        if e["name"] not in variable:
            continue
        val = [bytes.fromhex(s) for s in e["strings"]] if "strings" in e else bytes.fromhex(e["hex"])
        out[variable[e["name"]]] = (e["dtype"], e["shape"], val)
    return out


def as_bytes(arr):
    arr = np.asarray(arr)
    if arr.dtype.kind in ("O", "S"):
        return [x if isinstance(x, bytes) else str(x).encode() for x in arr.reshape(-1).tolist()]
    if arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    return np.ascontiguousarray(arr).tobytes()


def judge(out):
    """name -> bytes, as the format's own library reads `out`."""
    if out.endswith(".safetensors"):
        return {k: as_bytes(v) for k, v in load_file(out).items()}
    if out.endswith(".h5"):
        got = {}
        with h5py.File(out, "r") as f:
            def visit(name, obj):
                if isinstance(obj, h5py.Dataset):
                    v = obj[()]
                    got[name] = [v] if isinstance(v, bytes) else as_bytes(v)
            f.visititems(visit)
        return got
    reader = tf.train.load_checkpoint(out)
    got = {}
    for name, _ in tf.train.list_variables(out):
        v = reader.get_tensor(name)
        got[name] = [v] if isinstance(v, bytes) else as_bytes(v)
    return got


@pytest.mark.parametrize("fixture", FIXTURES)
def test_every_direction_is_identical_for_the_judges(tmp_path, fixture):
    want = source_values(fixture)
    for name, flags in DIRECTIONS:
        out = str(tmp_path / name)
        r = run("convert", os.path.join(TESTDATA, fixture), "-o", out, "--no-progress", "--json", *flags)
        if r.returncode == 1 and name in ("k.h5", "obj/model") and "--layout" in r.stdout + r.stderr:
            # A Keras layout the source does not reveal (layer order, where a weight
            # goes) is refused with a pointer to a layout that works; nothing is written.
            assert not os.path.exists(out) and not os.path.exists(out + ".index"), name
            continue
        assert r.returncode == 0, r.stderr
        skipped = {s["name"] for s in json.loads(r.stdout.splitlines()[-1])["skipped"]}
        got = judge(out)
        ours = {t["name"]: t["variable"] for t in inspect_json(out)["tensors"]}
        by_var = {ours[k]: v for k, v in got.items() if k in ours}
        for var, (dtype, shape, val) in want.items():
            if var in skipped or var == "_CHECKPOINTABLE_OBJECT_GRAPH":
                continue
            assert var in by_var, f"{fixture} -> {name}: {var} missing"
            if dtype == "bfloat16" and name.endswith(".safetensors"):
                # safetensors.numpy reads BF16 into a 2-byte numpy type; compare bytes.
                pass
            assert by_var[var] == val, f"{fixture} -> {name}: {var} differs"


def keras2_model(fixture="keras2/weights.h5"):
    import tf_keras as keras

    exp = json.load(open(os.path.join(TESTDATA, fixture + ".expected.json")))
    return keras.models.model_from_json(exp["model_json"])


def keras2_inputs():
    rng = np.random.default_rng(11)
    return [rng.standard_normal((4, 6, 6, 2)).astype("float32"), rng.integers(0, 12, (4, 5)).astype("int32")]


def test_tf_keras_loads_converted_checkpoints_and_h5(tmp_path):
    src = os.path.join(TESTDATA, "keras2", "weights.h5")
    m0 = keras2_model()
    m0.load_weights(src)
    want = m0.predict(keras2_inputs(), verbose=0)

    # h5 -> checkpoint, TF1 names: loads by name.
    out = str(tmp_path / "tf1" / "model")
    run("convert", src, "-o", out, "--layout", "tf1", check=0)
    m1 = keras2_model()
    m1.load_weights(out)
    assert np.array_equal(m1.predict(keras2_inputs(), verbose=0), want)

    # h5 -> checkpoint, object layout: the model nests a Sequential whose layer order a
    # weights-only .h5 does not record (it lists trainable weights first): refused.
    # From the full-model .h5 of the same model, whose config records it, it is
    # restored through the object graph.
    out = str(tmp_path / "obj" / "model")
    r = run("convert", src, "-o", out, "--layout", "object", check=1)
    assert "nested model" in r.stderr and not os.path.exists(out + ".index")
    full = os.path.join(TESTDATA, "keras2", "full.h5")
    m_full = keras2_model("keras2/full.h5")
    m_full.load_weights(full)
    want_full = m_full.predict(keras2_inputs(), verbose=0)
    run("convert", full, "-o", out, "--layout", "object", check=0)
    m2 = keras2_model("keras2/full.h5")
    status = m2.load_weights(out)
    status.assert_existing_objects_matched()
    assert np.array_equal(m2.predict(keras2_inputs(), verbose=0), want_full)

    # Keras' own TF-format checkpoint -> h5: its nested Sequential's .h5 order depends on
    # frozen layers the checkpoint does not record: refused. -> object layout: loads.
    tf_ckpt = os.path.join(TESTDATA, "keras2", "tf_format", "weights")
    m3 = keras2_model()
    m3.load_weights(tf_ckpt).expect_partial()
    want3 = m3.predict(keras2_inputs(), verbose=0)
    out = str(tmp_path / "from_tf.h5")
    r = run("convert", tf_ckpt, "-o", out, check=1)
    assert "nested model" in r.stderr and not os.path.exists(out)
    out = str(tmp_path / "from_tf" / "model")
    run("convert", tf_ckpt, "-o", out, "--layout", "object", check=0)
    m4 = keras2_model()
    m4.load_weights(out).assert_existing_objects_matched()
    assert np.array_equal(m4.predict(keras2_inputs(), verbose=0), want3)


def test_keras3_cannot_load_bfloat16_legacy_h5_even_its_own():
    """Keras 3's legacy .h5 loader fails on a bfloat16 layer even in the file Keras 3 wrote
    (`No cast function available`), so prediction identity through .h5 is checked on a
    float32 model below; bfloat16 bytes are checked bit-exactly by h5py above. If Keras
    fixes this, this test fails and the round trip below should include the bf16 model."""
    import keras

    src = os.path.join(TESTDATA, "keras3", "legacy.h5")
    exp = json.load(open(src + ".expected.json"))
    m0 = keras.models.model_from_json(exp["model_json"])
    with pytest.raises(Exception):
        m0.load_weights(src)


def test_saver_restores_a_converted_tf1_checkpoint(tmp_path):
    src = os.path.join(TESTDATA, "tf", "tf1_saver", "model.ckpt")
    out = str(tmp_path / "conv" / "model")
    run("convert", src, "-o", out, "--layout", "tf1", check=0)
    reader = tf.train.load_checkpoint(src)
    names = tf.train.list_variables(src)
    dtypes = reader.get_variable_to_dtype_map()
    g = tf.Graph()
    with g.as_default():
        variables = {}
        for name, shape in names:
            variables[name] = tf.compat.v1.get_variable(name, shape=shape, dtype=dtypes[name],
                                                        initializer=tf.compat.v1.zeros_initializer() if dtypes[name] != tf.string else tf.compat.v1.constant_initializer(""),
                                                        use_resource=False)
        saver = tf.compat.v1.train.Saver(var_list=variables)
        with tf.compat.v1.Session() as sess:
            saver.restore(sess, out)
            for name, var in variables.items():
                got = sess.run(var)
                want = reader.get_tensor(name)
                assert as_bytes(got) == as_bytes(want) if not isinstance(want, bytes) else got == want, name


def fresh_tf_keras_model(keras):
    L = keras.layers
    inp = keras.Input((10, 3))
    x = L.Conv1D(6, 3, activation="relu")(inp)
    x = L.BatchNormalization()(x)
    x = L.GRU(5, return_sequences=True)(x)
    x = L.LayerNormalization()(x)
    x = L.GlobalMaxPooling1D()(x)
    x = L.Dense(7, activation="gelu")(x)
    out = L.Dense(2)(x)
    m = keras.Model(inp, out)
    m.compile(optimizer="adam", loss="mse")
    rng = np.random.default_rng(3)
    m.fit(rng.standard_normal((16, 10, 3)).astype("float32"), rng.standard_normal((16, 2)).astype("float32"), epochs=2, verbose=0)
    return m


def test_fresh_tf_keras_model_all_directions(tmp_path):
    import tf_keras as keras

    m = fresh_tf_keras_model(keras)
    x = np.random.default_rng(9).standard_normal((5, 10, 3)).astype("float32")
    want = m.predict(x, verbose=0)
    h5 = str(tmp_path / "w.h5")
    m.save_weights(h5)
    tfck = str(tmp_path / "tf" / "w")
    m.save_weights(tfck)
    cfg = m.to_json()

    def check(path, **kw):
        m2 = keras.models.model_from_json(cfg)
        st = m2.load_weights(path)
        if kw.get("object"):
            st.assert_existing_objects_matched()
        assert np.array_equal(m2.predict(x, verbose=0), want), path

    for layout in ("tf1", "object"):
        out = str(tmp_path / f"h5_to_{layout}" / "m")
        run("convert", h5, "-o", out, "--layout", layout, check=0)
        check(out, object=(layout == "object"))
    out = str(tmp_path / "tf_to.h5")
    run("convert", tfck, "-o", out, check=0)
    check(out)
    out = str(tmp_path / "tf_to.safetensors")
    run("convert", tfck, "-o", out, check=0)
    st = load_file(out)
    for w in m.weights:
        assert np.array_equal(st[w.name.split(":")[0]], w.numpy()), w.name
    # ckpt -> ckpt keeps every tensor bit-exact.
    out = str(tmp_path / "copy" / "w")
    run("convert", tfck, "-o", out, check=0)
    r0, r1 = tf.train.load_checkpoint(tfck), tf.train.load_checkpoint(out)
    for name, _ in tf.train.list_variables(tfck):
        a, b = r0.get_tensor(name), r1.get_tensor(name)
        assert (a == b) if isinstance(a, bytes) else as_bytes(a) == as_bytes(b), name


def test_fresh_keras3_legacy_h5_round_trip(tmp_path):
    import keras

    m = fresh_tf_keras_model(keras)
    x = np.random.default_rng(9).standard_normal((5, 10, 3)).astype("float32")
    want = np.asarray(m.predict(x, verbose=0))
    h5 = str(tmp_path / "m.h5")
    m.save(h5)
    for layout in ("tf1", "object"):
        ck = str(tmp_path / layout / "m")
        run("convert", h5, "-o", ck, "--layout", layout, check=0)
        back = str(tmp_path / f"back_{layout}.h5")
        run("convert", ck, "-o", back, check=0)
        m2 = keras.models.model_from_json(m.to_json())
        m2.load_weights(back)
        assert np.array_equal(np.asarray(m2.predict(x, verbose=0)), want), layout
    # And from the .weights.h5 of the same model.
    w = str(tmp_path / "m.weights.h5")
    m.save_weights(w)
    out = str(tmp_path / "w.safetensors")
    run("convert", w, "-o", out, check=0)
    st = load_file(out)
    assert len(st) >= len(m.weights)


def test_existing_output_survives(tmp_path):
    out = tmp_path / "x.safetensors"
    out.write_bytes(b"keep me")
    r = run("convert", os.path.join(TESTDATA, "keras2", "weights.h5"), "-o", out, check=1)
    assert "already exists" in r.stderr
    assert out.read_bytes() == b"keep me"


def test_large_tensors_copied_by_the_pipeline_read_back_exactly(tmp_path):
    """Large tensors are copied by a two-thread pread/pwrite pipeline at whatever offsets
    the source and the output have (odd sizes, HDF5 datasets placed by libhdf5), small ones
    written directly. TensorFlow, h5py and safetensors read them exactly, in every
    direction."""
    from safetensors.numpy import save_file

    rng = np.random.default_rng(7)
    tensors = {
        "a/kernel": rng.standard_normal((513, 1023)).astype(np.float32),  # ~2 MiB, odd size
        "b/kernel": rng.standard_normal((700, 800)).astype(np.float16),
        "c/bias": rng.standard_normal(17).astype(np.float32),  # small: written, not copied
        "d/kernel": rng.integers(-9, 9, size=(1 << 20) + 3, dtype=np.int8),
    }
    st = str(tmp_path / "src.safetensors")
    save_file(tensors, st)
    want = {k: as_bytes(v) for k, v in tensors.items()}
    ck = str(tmp_path / "ck/model")
    run("convert", st, "-o", ck, "--no-progress", check=0)
    assert judge(ck) == want
    # Four layers in no recorded order: a Keras .h5 would be refused, so HDF5 goes flat.
    for name, flags in [("back.safetensors", []), ("k.h5", ["--layout", "flat"]), ("tf1/model", ["--layout", "tf1"])]:
        out = str(tmp_path / name)
        run("convert", ck, "-o", out, "--no-progress", *flags, check=0)
        got = judge(out)
        ours = {t["name"]: t["variable"] for t in inspect_json(out)["tensors"]}
        assert {ours[k]: v for k, v in got.items()} == want, name
    # And from the HDF5 file back to a checkpoint, which TensorFlow reads: its data file
    # holds the tensors back to back, as TensorFlow writes them.
    ck2 = str(tmp_path / "ck2/model")
    run("convert", str(tmp_path / "k.h5"), "-o", ck2, "--no-progress", check=0)
    data = ck2 + ".data-00000-of-00001"
    assert os.path.getsize(data) == sum(v.nbytes for v in tensors.values())
    got = judge(ck2)
    ours = {t["name"]: t["variable"] for t in inspect_json(ck2)["tensors"]}
    assert {ours[k]: v for k, v in got.items()} == want
