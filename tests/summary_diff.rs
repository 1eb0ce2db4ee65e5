//! `summary` totals equal Keras' own count_params() and trainable count (recorded by the
//! fixture generator); `diff` proves conversions lossless and tells different models apart.

mod common;

use std::fs;
use std::path::Path;

use common::{ckptconv, stdout};
use serde_json::Value;

fn expected(p: &str) -> Value {
    let path = common::testdata().join(format!("{p}.expected.json"));
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

fn summary_json(p: &Path) -> Value {
    let o = ckptconv([Path::new("summary"), Path::new("--json"), p]);
    assert_eq!(o.status.code(), Some(0), "{}", common::stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn full_model_totals_match_keras() {
    for p in ["keras2/full.h5", "keras3/legacy.h5", "keras3/model.keras"] {
        let exp = expected(p);
        let doc = summary_json(&common::testdata().join(p));
        assert_eq!(doc["total_params"], exp["count_params"], "{p}");
        assert_eq!(doc["trainable_params"], exp["trainable_params"], "{p}");
        assert_eq!(
            doc["non_trainable_params"], exp["non_trainable_params"],
            "{p}"
        );
        assert!(
            doc["optimizer_params"].as_u64().unwrap() > 0,
            "{p}: optimizer listed apart"
        );
        let conv = doc["layers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["name"] == "conv")
            .unwrap();
        assert_eq!(conv["class_name"], "Conv2D");
        assert_eq!(conv["activation"], "relu");
        assert_eq!(conv["params"], 57);
    }
}

#[test]
fn weights_only_files_show_the_total_and_say_trainable_is_unknown() {
    let exp = expected("keras2/weights.h5");
    let n = exp["count_params"].as_u64().unwrap();
    for p in [
        "keras2/weights.h5",
        "keras2/tf_format/weights",
        "keras3/model.weights.h5",
    ] {
        let o = ckptconv([Path::new("summary"), &common::testdata().join(p)]);
        let out = stdout(&o);
        let want = if p.starts_with("keras3") {
            expected("keras3/model.weights.h5")["count_params"]
                .as_u64()
                .unwrap()
        } else {
            n
        };
        let line = format!("Total params: {} (", ckptconv::cli::output::thousands(want));
        assert!(out.contains(&line), "{p}: {out}");
        assert!(out.contains("Trainable params: unknown"), "{p}: {out}");
        // Sizes as the file's Keras prints them: tf-keras says `Byte`.
        let bytes = if p == "keras2/weights.h5" {
            "24.00 Byte"
        } else {
            "24.00 B"
        };
        assert!(
            out.contains(&format!(
                "Non-trainable params: unknown (at least 6 ({bytes}))"
            )),
            "{p}: {out}"
        );
    }
    // A TF checkpoint's optimizer slots and counters are listed apart.
    let o = ckptconv([
        Path::new("summary"),
        &common::testdata().join("tf/tf1_saver"),
    ]);
    assert!(stdout(&o).contains("Counters (not in the totals): global_step = 42"));
}

#[test]
fn diff_of_a_file_and_its_conversions_is_same() {
    let dir = tempfile::tempdir().unwrap();
    let src = common::testdata().join("keras2/full.h5");
    for out in ["a.safetensors", "b/model", "c.h5"] {
        let p = dir.path().join(out);
        assert_eq!(
            ckptconv([Path::new("convert"), &src, Path::new("-o"), &p])
                .status
                .code(),
            Some(0)
        );
        let o = ckptconv([Path::new("diff"), &src, &p]);
        assert_eq!(o.status.code(), Some(0), "{out}: {}", stdout(&o));
        assert!(stdout(&o).trim_end().ends_with("same"));
    }
    // Keras' own .h5 and its own TF-format save of the same model.
    let o = ckptconv([
        Path::new("diff"),
        &common::testdata().join("keras2/weights.h5"),
        &common::testdata().join("keras2/tf_format"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    // With --include-optimizer, the full model's optimizer state is compared too: the
    // weights-only file has none.
    let o = ckptconv([
        Path::new("diff"),
        &src,
        &common::testdata().join("keras2/weights.h5"),
        Path::new("--include-optimizer"),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("only in A: "));
}

#[test]
fn diff_of_different_models_reports_and_fails() {
    let o = ckptconv([
        Path::new("diff"),
        Path::new("--json"),
        &common::testdata().join("keras2/weights.h5"),
        &common::testdata().join("keras3/model.weights.h5"),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["same"], false);
    let only_b: Vec<&str> = doc["only_in_b"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(only_b.contains(&"bf16_dense/kernel"), "{only_b:?}");
    let mism: Vec<&str> = doc["mismatched"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert!(
        mism.contains(&"out/kernel"),
        "shapes [51, 2] vs [4, 2]: {mism:?}"
    );
    assert!(doc["value_differences"]
        .as_array()
        .unwrap()
        .iter()
        .any(|v| v["name"] == "conv/kernel"));
}

#[test]
fn tolerances() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.safetensors");
    let src = common::testdata().join("keras2/weights.h5");
    assert_eq!(
        ckptconv([Path::new("convert"), &src, Path::new("-o"), &a])
            .status
            .code(),
        Some(0)
    );
    // Flip the lowest mantissa bit of the first float of the data.
    let mut bytes = fs::read(&a).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    bytes[8 + n] ^= 1;
    let b = dir.path().join("b.safetensors");
    fs::write(&b, bytes).unwrap();
    let o = ckptconv([Path::new("diff"), &a, &b]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("1 of "), "{}", stdout(&o));
    let o = ckptconv([
        Path::new("diff"),
        &a,
        &b,
        Path::new("--atol"),
        Path::new("1e-6"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).contains("1 within tolerance"));
}
