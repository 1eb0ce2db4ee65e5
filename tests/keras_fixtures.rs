//! Every Keras / HDF5 fixture read bit-exactly against h5py's values
//! (testdata/*/*.expected.json, written by testdata/generate_keras.py), plus layouts,
//! canonical names and bad inputs.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use ckptconv::formats;
use ckptconv::formats::h5::{H5Source, Layout};
use ckptconv::tensor::TensorSource;
use common::{assert_clean_failure, ckptconv};
use serde_json::Value;

fn fixture(p: &str) -> PathBuf {
    common::testdata().join(p)
}

fn expected(p: &str) -> Value {
    let mut e = fixture(p).into_os_string();
    e.push(".expected.json");
    serde_json::from_slice(&fs::read(PathBuf::from(e)).unwrap()).unwrap()
}

fn check(p: &str) -> Box<dyn TensorSource> {
    let src = formats::open(&fixture(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
    let exp = expected(p);
    let ds = exp["datasets"].as_array().unwrap();
    let names: Vec<&str> = src.tensors().iter().map(|t| t.name.as_str()).collect();
    let want: Vec<&str> = ds.iter().map(|d| d["name"].as_str().unwrap()).collect();
    if p.ends_with(".json") {
        // Sharded: parts are listed one after the other.
        let mut a = names.clone();
        let mut b = want.clone();
        a.sort();
        b.sort();
        assert_eq!(a, b, "{p}: names");
    } else {
        assert_eq!(names, want, "{p}: names");
    }
    for d in ds {
        common::check_tensor(src.as_ref(), d, p);
    }
    assert!(src.verify().is_empty(), "{p}: verify");
    src
}

fn variable(src: &dyn TensorSource, name: &str) -> String {
    src.tensors()[src.find(name).unwrap()].variable.clone()
}

#[test]
fn keras2_weights() {
    let src = check("keras2/weights.h5");
    assert_eq!(src.format().name(), "keras-h5");
    assert_eq!(variable(src.as_ref(), "conv/conv/kernel:0"), "conv/kernel");
    assert_eq!(
        variable(src.as_ref(), "lstm/lstm/lstm_cell/recurrent_kernel:0"),
        "lstm/lstm_cell/recurrent_kernel"
    );
    let h = H5Source::open(&fixture("keras2/weights.h5")).unwrap();
    assert_eq!(h.layout(), Layout::Keras2Weights);
    let names: Vec<&str> = h.layers().iter().map(|l| l.name.as_str()).collect();
    assert_eq!(
        names,
        ["image", "tokens", "conv", "embed", "bn", "lstm", "flat", "head", "cat", "out"]
    );
    // Weight order within a layer is the file's (trainable, then non-trainable).
    let bn = &h.layers()[4];
    let order: Vec<&str> = bn
        .tensors()
        .map(|i| h.tensors()[i].variable.as_str())
        .collect();
    assert_eq!(
        order,
        [
            "bn/gamma",
            "bn/beta",
            "bn/moving_mean",
            "bn/moving_variance"
        ]
    );
}

#[test]
fn keras2_full_model_with_config_and_optimizer() {
    let src = check("keras2/full.h5");
    let h = H5Source::open(&fixture("keras2/full.h5")).unwrap();
    assert_eq!(h.layout(), Layout::Keras2FullModel);
    assert!(h.model_config().unwrap().contains("\"Conv2D\""));
    assert!(h.training_config().is_some());
    let conv = h.layers().iter().find(|l| l.name == "conv").unwrap();
    assert_eq!(conv.class_name.as_deref(), Some("Conv2D"));
    assert_eq!(conv.activation.as_deref(), Some("relu"));
    assert!(src
        .tensors()
        .iter()
        .any(|t| t.name.starts_with("optimizer_weights/")));
}

#[test]
fn keras2_split_layer_names() {
    let exp = expected("keras2/long_names.h5");
    assert!(exp["layer_name_attrs"].as_array().unwrap().len() > 1);
    check("keras2/long_names.h5");
    let h = H5Source::open(&fixture("keras2/long_names.h5")).unwrap();
    assert_eq!(h.layers().len(), 302, "input + 300 activations + dense");
    assert!(h.layers()[1].name.len() > 200);
}

#[test]
fn keras3_weights_with_bfloat16_and_nested_layers() {
    let src = check("keras3/model.weights.h5");
    let h = H5Source::open(&fixture("keras3/model.weights.h5")).unwrap();
    assert_eq!(h.layout(), Layout::Keras3Weights);
    assert_eq!(
        variable(src.as_ref(), "layers/dense/vars/0"),
        "bf16_dense/kernel"
    );
    assert_eq!(
        src.tensors()[src.find("layers/dense/vars/0").unwrap()]
            .dtype
            .name(),
        "bfloat16"
    );
    assert_eq!(
        variable(src.as_ref(), "layers/lstm/cell/vars/1"),
        "lstm/lstm_cell/recurrent_kernel"
    );
    assert_eq!(
        variable(src.as_ref(), "layers/sequential/layers/dense_1/vars/0"),
        "head/inner_b/kernel"
    );
    assert_eq!(
        variable(src.as_ref(), "layers/batch_normalization/vars/3"),
        "bn/moving_variance"
    );
    assert_eq!(variable(src.as_ref(), "optimizer/vars/0"), "optimizer/0");
    let bn = h.layers().iter().find(|l| l.name == "bn").unwrap();
    assert_eq!(bn.class_name.as_deref(), Some("BatchNormalization"));
}

#[test]
fn keras3_legacy_h5_and_archive_and_shards() {
    check("keras3/legacy.h5");
    let src = check("keras3/model.keras");
    assert!(src.path().ends_with("model.keras"));
    let h = H5Source::open_keras_archive(&fixture("keras3/model.keras")).unwrap();
    assert!(h.archive_config().unwrap().contains("fixture_model"));
    let out = h.layers().iter().find(|l| l.name == "out").unwrap();
    assert_eq!(out.class_name.as_deref(), Some("Dense"));
    assert_eq!(out.activation.as_deref(), Some("softmax"));
    let sharded = check("keras3/sharded.weights.json");
    let parts: std::collections::BTreeSet<_> =
        sharded.tensors().iter().filter_map(|t| t.shard).collect();
    assert!(parts.len() > 1);
    // Sharded parts lack the `name` attribute; names still come out the same.
    let whole = formats::open(&fixture("keras3/model.weights.h5")).unwrap();
    for t in whole.tensors() {
        if let Some(i) = sharded.find(&t.name) {
            let v = &sharded.tensors()[i].variable;
            if !t.name.starts_with("layers/") {
                assert_eq!(v, &t.variable);
            }
        }
    }
}

#[test]
fn generic_hdf5_every_dtype() {
    let src = check("h5/mixed.h5");
    assert_eq!(src.format().name(), "hdf5");
    // Chunked+gzip and big-endian data are read through libhdf5, the rest is borrowed.
    let i = src.find("numeric/f4").unwrap();
    assert!(src.read(i).unwrap().is_borrowed());
    let i = src.find("chunked_gzip").unwrap();
    assert!(!src.read(i).unwrap().is_borrowed());
}

#[test]
fn inspect_json_names_are_h5py_paths() {
    let o = ckptconv([
        Path::new("inspect"),
        Path::new("--json"),
        &fixture("keras2/full.h5"),
    ]);
    assert_eq!(o.status.code(), Some(0));
    let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["format"], "keras-h5");
    assert_eq!(
        doc["tensors"][0]["name"].as_str().unwrap().chars().next(),
        Some('m')
    );
}

fn scratch_copy(p: &str) -> (tempfile::TempDir, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let dst = t.path().join(Path::new(p).file_name().unwrap());
    fs::copy(fixture(p), &dst).unwrap();
    (t, dst)
}

#[test]
fn truncated_h5() {
    let (_t, p) = scratch_copy("keras2/weights.h5");
    let b = fs::read(&p).unwrap();
    for cut in [b.len() / 2, 2000, 100, 8] {
        fs::write(&p, &b[..cut]).unwrap();
        assert_clean_failure(&ckptconv([Path::new("verify"), &p]), &["weights.h5"]);
        assert_clean_failure(&ckptconv([Path::new("inspect"), &p]), &["weights.h5"]);
    }
}

#[test]
fn flipped_bytes_never_panic() {
    let (_t, p) = scratch_copy("keras3/model.weights.h5");
    let orig = fs::read(&p).unwrap();
    let mut seed = 12345u64;
    for _ in 0..40 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let pos = (seed >> 33) as usize % orig.len();
        let mut b = orig.clone();
        b[pos] ^= 1 << ((seed >> 20) % 8);
        fs::write(&p, &b).unwrap();
        let o = ckptconv([Path::new("verify"), &p]);
        let all = common::stdout(&o) + &common::stderr(&o);
        assert!(matches!(o.status.code(), Some(0) | Some(1)), "{all}");
        assert!(!all.contains("panicked"), "{all}");
    }
}

#[test]
fn not_hdf5_and_broken_archives() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("fake.h5");
    fs::write(
        &p,
        b"\x89HDF\r\n\x1a\nthis is not really hdf5 at all, just a header",
    )
    .unwrap();
    assert_clean_failure(&ckptconv([Path::new("inspect"), &p]), &["fake.h5", "HDF5"]);
    let z = t.path().join("broken.keras");
    let b = fs::read(fixture("keras3/model.keras")).unwrap();
    fs::write(&z, &b[..b.len() / 2]).unwrap();
    assert_clean_failure(&ckptconv([Path::new("inspect"), &z]), &["broken.keras"]);
    let j = t.path().join("x.weights.json");
    fs::write(
        &j,
        br#"{"weight_map": {"/layers/a/vars": "missing_00000.weights.h5"}}"#,
    )
    .unwrap();
    assert_clean_failure(
        &ckptconv([Path::new("inspect"), &j]),
        &["missing_00000.weights.h5"],
    );
    fs::write(
        &j,
        br#"{"weight_map": {"/layers/a/vars": "../../etc/passwd"}}"#,
    )
    .unwrap();
    assert_clean_failure(&ckptconv([Path::new("inspect"), &j]), &["outside"]);
}

#[test]
fn keras_layout_required_but_absent() {
    let e = H5Source::open_keras(&fixture("h5/mixed.h5")).unwrap_err();
    assert!(e.to_string().contains("without a Keras layout"), "{e}");
    assert!(e.to_string().contains("mixed.h5"), "{e}");
    assert!(matches!(e, ckptconv::Error::Unsupported { .. }), "{e:?}");
    assert!(H5Source::open_keras(&fixture("keras2/weights.h5")).is_ok());
}

/// Layers with weights, in model order, each with its weights' variable names in the
/// order Keras loads them: what the generator recorded from the live model.
fn assert_layers_match(src: &dyn TensorSource, exp: &Value, ctx: &str) {
    let got: Vec<(String, Vec<String>)> = src
        .layers()
        .iter()
        .filter(|l| !l.weights.is_empty())
        .map(|l| {
            (
                l.name.clone(),
                l.tensors()
                    .map(|i| src.tensors()[i].variable.clone())
                    .collect(),
            )
        })
        .collect();
    let want: Vec<(String, Vec<String>)> = exp["weighted_layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["name"].as_str().unwrap().to_string(),
                l["weights"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|w| w.as_str().unwrap().to_string())
                    .collect(),
            )
        })
        .collect();
    assert_eq!(got, want, "{ctx}: layers");
}

#[test]
fn layer_order_of_keras2_files_and_tf_format_checkpoint() {
    for p in ["keras2/weights.h5", "keras2/full.h5"] {
        let src = formats::open(&fixture(p)).unwrap();
        assert_layers_match(src.as_ref(), &expected(p), p);
    }
    let p = "keras2/tf_format/weights";
    let src = formats::open(&fixture(p)).unwrap();
    // A TF-format checkpoint does not record layer names: a nested model ("head", whose
    // weights share no scope) keeps the checkpoint's own name for it.
    let mut exp = expected(p);
    exp["weighted_layers"][4]["name"] = "layer_with_weights-4".into();
    assert_layers_match(src.as_ref(), &exp, p);
    for d in expected(p)["datasets"].as_array().unwrap() {
        common::check_tensor(src.as_ref(), d, p);
    }
}

/// The CLI reads an HDF5 file's metadata in its probe process and takes the probe's
/// answer instead of reading it again: that answer must be exactly what an in-process
/// open finds (tensors, variables, layers, configs), for every layout.
#[test]
fn probe_answer_equals_an_in_process_open() {
    for p in [
        "keras2/weights.h5",
        "keras2/full.h5",
        "keras2/long_names.h5",
        "keras3/legacy.h5",
        "keras3/model.weights.h5",
        "h5/mixed.h5",
    ] {
        let path = fixture(p);
        let o = ckptconv([Path::new("__h5probe"), Path::new("--emit"), &path]);
        assert!(o.status.success(), "{p}: probe failed");
        let answer: Value = serde_json::from_slice(&o.stdout).unwrap();
        let src = H5Source::open(&path).unwrap();
        let tensors = serde_json::to_value(src.tensors()).unwrap();
        assert_eq!(answer["tensors"], tensors, "{p}: tensors");
        let layers = serde_json::to_value(src.layers()).unwrap();
        assert_eq!(answer["layers"], layers, "{p}: layers");
        assert_eq!(
            answer["model_config"].as_str(),
            src.model_config(),
            "{p}: model_config"
        );
        assert!(!src.tensors().is_empty(), "{p}: no tensors");
    }
}
