"""Check that config3's translation loads in Keras 3 as the same model tf-keras built.

For each fixture NAME.json (a tf-keras model config, see generate.py):

1. tf-keras (this process' child, `tf_keras` only): `model_from_json`, seeded weights of
   the right shapes via `set_weights`, predictions on a fixed seeded input.
2. `cargo run --example keras3_config NAME.json` translates the config.
3. Keras 3 (a fresh child with KERAS_BACKEND=tensorflow importing `keras`, never
   `tf_keras`): `deserialize_keras_object(config)` inside `ObjectSharingScope`, exactly as
   `saving_lib._model_from_config` does for a `.keras` archive; the same weights by
   `set_weights`; predictions compared with tf-keras' (`np.array_equal`, else the largest
   difference is reported). Then a real `.keras` zip (config.json, metadata.json and a
   model.weights.h5 written by that Keras 3 model's `save_weights`) goes through
   `keras.saving.load_model`, and its predictions are compared too.

Run from the repository root with the venv python:

    ~/.cache/ckptconv-venv/bin/python testdata/keras2_configs/check.py [NAME ...]
"""

import json
import os
import pathlib
import subprocess
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent
FIXTURES = ["mlp", "cnn", "to_json_cnn", "bilstm_gru", "transformer", "nested",
            "zoo", "mobilenet_v2", "resnet50"]

TF_KERAS = r'''
import json, os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np
import tf_keras as k
cfg, out = sys.argv[1], sys.argv[2]
model = k.models.model_from_json(open(cfg).read())
rng = np.random.default_rng(0)
weights = []
for w in model.weights:
    if "moving_variance" in w.name:
        a = rng.uniform(0.5, 1.5, w.shape)
    else:
        a = rng.normal(0.0, 0.2, w.shape)
    weights.append(a.astype(w.dtype.as_numpy_dtype))
model.set_weights(weights)
inputs = []
for t in model.inputs:
    shape = [2 if d is None else d for d in t.shape]
    if t.dtype.is_integer:
        inputs.append(rng.integers(0, 10, shape).astype(t.dtype.as_numpy_dtype))
    else:
        inputs.append(rng.normal(0.0, 1.0, shape).astype(t.dtype.as_numpy_dtype))
pred = model.predict(inputs if len(inputs) > 1 else inputs[0], verbose=0)
pred = pred if isinstance(pred, list) else [pred]
np.savez(out, **{f"w{i}": w for i, w in enumerate(weights)},
         **{f"x{i}": x for i, x in enumerate(inputs)},
         **{f"y{i}": y for i, y in enumerate(pred)})
print(len(weights), len(inputs), len(pred))
'''

KERAS3 = r'''
import datetime, json, os, sys, zipfile
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np
import keras
from keras.src.saving.serialization_lib import ObjectSharingScope
assert "tf_keras" not in sys.modules
cfg_path, data, tmp = sys.argv[1], sys.argv[2], sys.argv[3]
config = json.load(open(cfg_path))
d = np.load(data)
nw = len([k for k in d.files if k.startswith("w")])
nx = len([k for k in d.files if k.startswith("x")])
ny = len([k for k in d.files if k.startswith("y")])
weights = [d[f"w{i}"] for i in range(nw)]
xs = [d[f"x{i}"] for i in range(nx)]
ys = [d[f"y{i}"] for i in range(ny)]
x = xs if nx > 1 else xs[0]

def compare(model, what):
    pred = model.predict(x, verbose=0)
    pred = pred if isinstance(pred, (list, tuple)) else [pred]
    if len(pred) != len(ys):
        return f"{what}: {len(pred)} outputs, tf-keras had {len(ys)}"
    res = []
    for a, b in zip(pred, ys):
        a = np.asarray(a)
        if a.shape != b.shape:
            return f"{what}: output shape {a.shape} vs tf-keras {b.shape}"
        if not np.array_equal(a, b):
            res.append(float(np.max(np.abs(a.astype("float64") - b))))
    if res:
        return f"{what}: NOT identical, max abs diff {max(res):.3g}"
    return f"{what}: identical"

with ObjectSharingScope():
    model = keras.saving.deserialize_keras_object(json.loads(json.dumps(config)))
shapes = [tuple(w.shape) for w in model.get_weights()]
if shapes != [w.shape for w in weights]:
    print(f"weight shapes differ: keras3 {shapes} vs tf-keras {[w.shape for w in weights]}")
    sys.exit(1)
model.set_weights(weights)
r1 = compare(model, "deserialize_keras_object")
wpath = os.path.join(tmp, "m.weights.h5")
model.save_weights(wpath)
kpath = os.path.join(tmp, "m.keras")
with zipfile.ZipFile(kpath, "w") as z:
    z.writestr("config.json", json.dumps(config))
    z.writestr("metadata.json", json.dumps({
        "keras_version": keras.__version__,
        "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S")}))
    z.write(wpath, "model.weights.h5")
loaded = keras.saving.load_model(kpath)
r2 = compare(loaded, "load_model(.keras)")
print(f"{len(model.layers)} layers, {nw} weights; {r1}; {r2}")
'''


def main():
    names = sys.argv[1:] or FIXTURES
    subprocess.run(["cargo", "build", "-q", "--example", "keras3_config"],
                   cwd=ROOT, check=True)
    exe = ROOT / "target" / "debug" / "examples" / "keras3_config"
    py = sys.executable
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3")
    ok = True
    for name in names:
        with tempfile.TemporaryDirectory() as tmp:
            data = os.path.join(tmp, "data.npz")
            r = subprocess.run([py, "-c", TF_KERAS, str(HERE / f"{name}.json"), data],
                               capture_output=True, text=True, env=env)
            if r.returncode:
                print(f"{name}: tf-keras failed\n{r.stderr[-2000:]}")
                ok = False
                continue
            t = subprocess.run([str(exe), str(HERE / f"{name}.json")],
                               capture_output=True, text=True)
            if t.returncode:
                print(f"{name}: translation refused: {t.stderr.strip()}")
                ok = False
                continue
            cfg = os.path.join(tmp, "config.json")
            pathlib.Path(cfg).write_text(t.stdout)
            r = subprocess.run([py, "-c", KERAS3, cfg, data, tmp],
                               capture_output=True, text=True, env=env)
            if r.returncode:
                print(f"{name}: Keras 3 failed\n{r.stderr[-3000:]}")
                ok = False
                continue
            line = r.stdout.strip().splitlines()[-1]
            print(f"{name}: {line}")
            ok &= "NOT" not in line and "differ" not in line
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
