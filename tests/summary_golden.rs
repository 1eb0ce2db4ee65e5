//! `summary` equals Keras' own `model.summary()` row for row (name, class, output shape,
//! Param #), with the same model name and totals lines, for the files
//! `testdata/generate_summary.py` wrote with real tf-keras and Keras 3 beside the text of
//! their `model.summary()` (parsed into `*.summary.json`).

mod common;

use std::fs;
use std::path::Path;

use common::{ckptconv, stdout};
use serde_json::{json, Value};

/// Each file and the summary it must equal.
const CASES: &[(&str, &str)] = &[
    ("mlp.tfk.h5", "mlp.tfk"),
    ("mlp.tfk_savedmodel", "mlp.tfk"),
    ("mlp.k3.keras", "mlp.k3"),
    ("mlp.k3.h5", "mlp.k3"),
    ("cnn.tfk.h5", "cnn.tfk"),
    ("cnn.k3.keras", "cnn.k3"),
    ("zoo.tfk.h5", "zoo.tfk"),
    ("zoo.k3.keras", "zoo.k3"),
    ("zoo.k3.h5", "zoo.k3"),
];

fn dir() -> std::path::PathBuf {
    common::testdata().join("summary")
}

fn summary_json(p: &Path) -> Value {
    let o = ckptconv([Path::new("summary"), Path::new("--json"), p]);
    assert_eq!(o.status.code(), Some(0), "{}", common::stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

const TOTALS: &[&str] = &["Total", "Trainable", "Non-trainable", "Optimizer"];

#[test]
fn rows_name_and_totals_equal_keras_summary() {
    for (file, stem) in CASES {
        let p = dir().join(file);
        let want: Value =
            serde_json::from_slice(&fs::read(dir().join(format!("{stem}.summary.json"))).unwrap())
                .unwrap();
        let doc = summary_json(&p);
        let rows: Vec<Value> = doc["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                json!({
                    "name": l["name"],
                    "class_name": l["class_name"],
                    "output_shape": l["output_shape_text"],
                    "params": l["params"],
                })
            })
            .collect();
        let want_rows = want["rows"].as_array().unwrap();
        assert_eq!(rows.len(), want_rows.len(), "{file}: {rows:#?}");
        for (got, exp) in rows.iter().zip(want_rows) {
            assert_eq!(got, exp, "{file}");
        }
        assert_eq!(doc["model_name"], want["model_name"], "{file}");
        let text = stdout(&ckptconv([Path::new("summary"), &p]));
        let totals: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| {
                l.split(" params:")
                    .next()
                    .is_some_and(|k| TOTALS.contains(&k))
            })
            .collect();
        let want_totals: Vec<&str> = want["totals"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(totals, want_totals, "{file}");
        let header = format!("Model: \"{}\"", want["model_name"].as_str().unwrap());
        assert!(text.lines().any(|l| l == header), "{file}: {text}");
    }
}

#[test]
fn flavour_and_unknown_shapes_in_json() {
    let doc = summary_json(&dir().join("zoo.tfk.h5"));
    assert_eq!(doc["keras_flavour"], "tf-keras");
    let shared = doc["layers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == "shared")
        .unwrap();
    assert_eq!(shared["output_shape"], Value::Null);
    assert_eq!(shared["output_shape_text"], "multiple");
    let doc = summary_json(&dir().join("zoo.k3.keras"));
    assert_eq!(doc["keras_flavour"], "keras3");
    let lstm = doc["layers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == "lstm")
        .unwrap();
    assert_eq!(
        lstm["output_shape"],
        json!([[null, 5, 5], [null, 5], [null, 5]])
    );
    // A LeakyReLU passed as an activation shows its class.
    let doc = summary_json(&dir().join("mlp.k3.keras"));
    let d2 = &doc["layers"][1];
    assert_eq!(d2["name"], "d2");
    assert_eq!(d2["activation"], "LeakyReLU");
}

#[test]
fn explain_reproduces_the_worked_examples() {
    let o = ckptconv([
        Path::new("summary"),
        Path::new("--explain"),
        &dir().join("mlp.tfk.h5"),
    ]);
    let out = stdout(&o);
    for want in [
        "Dense: 32·(3+1) = 128, so it takes 3 inputs",
        "Dense: 32·(32+1) = 1,056, so it takes 32 inputs",
        "Dense: 16·(32+1) = 528, so it takes 32 inputs",
        "Dense: 5·(16+1) = 85, so it takes 16 inputs",
    ] {
        assert!(out.contains(want), "{want}: {out}");
    }
    assert!(out.contains("Total params: 1797 (7.02 KB)"), "{out}");
    let out = stdout(&ckptconv([
        Path::new("summary"),
        Path::new("--explain"),
        &dir().join("cnn.k3.keras"),
    ]));
    for want in [
        "Conv2D: 32·(3·3·3+1) = 896, so it takes 3 channels",
        "Conv2D: 64·(32·3·3+1) = 18,496, so it takes 32 channels",
        "Conv2D: 128·(64·3·3+1) = 73,856, so it takes 64 channels",
        "Dense: 10·(128+1) = 1,290, so it takes 128 inputs",
    ] {
        assert!(out.contains(want), "{want}: {out}");
    }
    let out = stdout(&ckptconv([
        Path::new("summary"),
        Path::new("--explain"),
        &dir().join("zoo.k3.keras"),
    ]));
    for want in [
        "LSTM: 4·U·(I+U+1) = 4·5·(6+5+1) = 240",
        "GRU: 3·U·(I+U+1) = 3·3·(5+3+1) = 81",
        "BatchNormalization: 4·C = 4·3 = 12, of which 2·C = 6 are non-trainable",
        "Embedding: V·D = 20·8 = 160",
        "MultiHeadAttention: h·k·(dq+1)",
    ] {
        assert!(out.contains(want), "{want}: {out}");
    }
}

#[test]
fn weights_only_files_total_is_count_params_and_nothing_unknown_is_shown_as_known() {
    let want: Value =
        serde_json::from_slice(&fs::read(dir().join("zoo.k3.summary.json")).unwrap()).unwrap();
    // Keras 3's Total of an uncompiled model is its count_params().
    let total = want["totals"][0].as_str().unwrap();
    for file in ["zoo.k3.weights.h5", "zoo.k3_export"] {
        let p = dir().join(file);
        let text = stdout(&ckptconv([Path::new("summary"), &p]));
        assert!(text.lines().any(|l| l == total), "{file}: {text}");
        assert!(!text.contains("Output Shape"), "{file}: {text}");
        assert!(!text.contains("Model: "), "{file}: {text}");
        assert!(text.contains("Trainable params: unknown"), "{file}: {text}");
        let doc = summary_json(&p);
        for l in doc["layers"].as_array().unwrap() {
            assert!(l["output_shape"].is_null(), "{file}: {l}");
            assert!(l["output_shape_text"].is_null(), "{file}: {l}");
        }
        assert!(doc["model_name"].is_null());
    }
    // The export's second copies and the Dropout's seed state are listed apart.
    let doc = summary_json(&dir().join("zoo.k3_export"));
    assert!(doc["duplicate_tensors"].as_u64().unwrap() > 0);
    assert!(doc["seed_generator_tensors"].as_u64().unwrap() > 0);
    let first = &doc["layers"][0];
    assert_eq!(first["name"], "causal");
    assert_eq!(first["weights"][0]["name"], "causal/kernel");
    // A Keras 3 .weights.h5 without config: classes from the group paths, weightless
    // ones too, and the output says whose order the rows are in.
    let doc = summary_json(&dir().join("zoo.k3.weights.h5"));
    assert!(doc["layer_order"]
        .as_str()
        .unwrap()
        .contains("file's group order"));
    for l in doc["layers"].as_array().unwrap() {
        assert!(l["class_name"].is_string(), "{l}");
    }
}

#[test]
fn keras3_model_under_tf_train_checkpoint_lists_its_layers_kernel_first() {
    let doc = summary_json(&dir().join("mlp.k3_tfcheckpoint"));
    let layers = doc["layers"].as_array().unwrap();
    let names: Vec<&str> = layers.iter().map(|l| l["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["d1", "d2", "d3", "d4"]);
    for l in layers {
        assert!(
            l["weights"][0]["name"]
                .as_str()
                .unwrap()
                .ends_with("/kernel"),
            "{l}"
        );
    }
    assert_eq!(doc["total_params"], 1797);
}

#[test]
fn a_custom_layer_shape_is_unknown_and_said_why_never_guessed() {
    for (file, after) in [
        ("custom.tfk.h5", "?"),
        // Keras 3 records the shape of the tensor the next layer takes.
        ("custom.k3.keras", "(None, 3)"),
    ] {
        let doc = summary_json(&dir().join(file));
        let layers = doc["layers"].as_array().unwrap();
        let twice = &layers[1];
        assert_eq!(twice["class_name"], "Twice", "{file}");
        assert_eq!(twice["output_shape_text"], "?", "{file}");
        assert!(twice["output_shape"].is_null(), "{file}");
        assert!(
            twice["output_shape_unknown"]
                .as_str()
                .unwrap()
                .contains("Twice"),
            "{file}: {twice}"
        );
        assert_eq!(layers[2]["output_shape_text"], after, "{file}");
        assert_eq!(layers[2]["params"], 15);
    }
}
