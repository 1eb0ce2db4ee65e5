//! transformers' sharded `tf_model.h5` (testdata/hf_sharded/, written by
//! testdata/generate_hf_sharded.py): `tf_model-0000k-of-00004.h5` shards, whose root
//! `layer_names` lists datasets rather than layer groups, and `tf_model.h5.index.json`.
//! A shard reads on its own; the index (or a shard beside it) reads as the whole model,
//! every weight checked to be where the index says; a damaged set fails cleanly, exit 1.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ckptconv::tensor::TensorSource;
use ckptconv::{formats, TensorData};
use common::{assert_clean_failure, ckptconv, unhex};
use serde_json::Value;

fn dir() -> PathBuf {
    common::testdata().join("hf_sharded")
}

fn expected() -> Value {
    serde_json::from_slice(&std::fs::read(dir().join("expected.json")).unwrap()).unwrap()
}

fn shards(e: &Value) -> Vec<String> {
    e["shards"].as_object().unwrap().keys().cloned().collect()
}

fn bytes(src: &dyn TensorSource, i: usize) -> Vec<u8> {
    match src.read(i).unwrap() {
        TensorData::Bytes(b) => b.into_owned(),
        TensorData::Strings(_) => panic!("strings"),
    }
}

/// Every tensor of `path`: key → (variable, bytes).
fn read_all(path: &Path) -> BTreeMap<String, (String, Vec<u8>)> {
    let src = formats::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(src.verify().is_empty(), "{}: verify", path.display());
    src.tensors()
        .iter()
        .enumerate()
        .map(|(i, t)| (t.name.clone(), (t.variable.clone(), bytes(src.as_ref(), i))))
        .collect()
}

fn run(args: &[&dyn AsRef<std::ffi::OsStr>]) -> std::process::Output {
    ckptconv(args.iter().map(|a| a.as_ref()))
}

/// A copy of the fixture set to damage.
fn copy() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(dir()).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), t.path().join(e.file_name())).unwrap();
        }
    }
    t
}

fn edit_index(d: &Path, f: impl FnOnce(&mut serde_json::Map<String, Value>)) {
    let p = d.join("tf_model.h5.index.json");
    let mut doc: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    f(doc["weight_map"].as_object_mut().unwrap());
    std::fs::write(&p, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
}

#[test]
fn the_fixture_is_sharded_and_small() {
    let e = expected();
    assert!(shards(&e).len() >= 3);
    let total: u64 = walk(&dir())
        .iter()
        .map(|p| p.metadata().unwrap().len())
        .sum();
    assert!(total < 200_000, "{total} bytes");
}

fn walk(d: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(d).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            v.extend(walk(&p));
        } else {
            v.push(p);
        }
    }
    v
}

#[test]
fn each_shard_reads_on_its_own() {
    let e = expected();
    let t = tempfile::tempdir().unwrap();
    for s in shards(&e) {
        // Without its index beside it, a shard is read alone.
        let alone = t.path().join(&s);
        std::fs::copy(dir().join(&s), &alone).unwrap();
        let got = read_all(&alone);
        let want = e["shards"][&s]["datasets"].as_object().unwrap();
        assert_eq!(got.len(), want.len(), "{s}");
        for (name, d) in want {
            let (v, b) = &got[name];
            assert_eq!(v, name.strip_suffix(":0").unwrap(), "{s}/{name}: variable");
            assert_eq!(b, &unhex(d["hex"].as_str().unwrap()), "{s}/{name}: bytes");
        }
        for cmd in [&["inspect"][..], &["verify"], &["summary"]] {
            let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = cmd
                .iter()
                .map(|c| c as &dyn AsRef<std::ffi::OsStr>)
                .collect();
            args.push(&alone);
            let o = run(&args);
            assert_eq!(
                o.status.code(),
                Some(0),
                "{cmd:?} {s}: {}",
                common::stderr(&o)
            );
        }
        let o = run(&[&"diff", &alone, &alone]);
        assert_eq!(o.status.code(), Some(0), "diff {s}: {}", common::stderr(&o));
        let out = t.path().join(format!("{s}.safetensors"));
        let o = run(&[&"convert", &alone, &"-o", &out, &"--no-progress"]);
        assert_eq!(o.status.code(), Some(0), "{}", common::stderr(&o));
        let st = read_all(&out);
        for (name, d) in want {
            let v = name.strip_suffix(":0").unwrap();
            assert_eq!(st[v].1, unhex(d["hex"].as_str().unwrap()), "{s}: {v}");
        }
    }
}

#[test]
fn the_index_reads_the_whole_model_under_its_weight_names() {
    let e = expected();
    let got = read_all(&dir().join("tf_model.h5.index.json"));
    let map = e["weight_map"].as_object().unwrap();
    assert_eq!(got.len(), map.len());
    for (w, shard) in map {
        let dataset = ckptconv::naming::hf_shard_dataset(w);
        let (v, b) = &got[dataset];
        assert_eq!(v, w.strip_suffix(":0").unwrap(), "{w}");
        let want = &e["shards"][shard.as_str().unwrap()]["datasets"][dataset]["hex"];
        assert_eq!(b, &unhex(want.as_str().unwrap()), "{w}");
    }
    // A shard beside the index reads as the whole model too (as a checkpoint's data
    // shard does), whichever shard it is.
    for s in shards(&e) {
        let via = read_all(&dir().join(&s));
        assert_eq!(via, got, "{s}");
    }
}

#[test]
fn the_index_converts_to_one_safetensors_and_like_a_tf_model_h5_to_one_tf_model_h5() {
    let e = expected();
    let t = tempfile::tempdir().unwrap();
    let index = dir().join("tf_model.h5.index.json");
    let st = t.path().join("model.safetensors");
    let o = run(&[&"convert", &index, &"-o", &st, &"--no-progress"]);
    assert_eq!(o.status.code(), Some(0), "{}", common::stderr(&o));
    let got = read_all(&st);
    for (w, shard) in e["weight_map"].as_object().unwrap() {
        let d = ckptconv::naming::hf_shard_dataset(w);
        let want = &e["shards"][shard.as_str().unwrap()]["datasets"][d]["hex"];
        let v = w.strip_suffix(":0").unwrap();
        assert_eq!(got[v].1, unhex(want.as_str().unwrap()), "{w}");
    }

    // The shards do not record Keras' weight order: a Keras .h5 is refused, naming --like.
    let h5 = t.path().join("a/tf_model.h5");
    let o = run(&[&"convert", &index, &"-o", &h5, &"--no-progress"]);
    assert_clean_failure(&o, &["\"bert\"", "--like", "--layout flat"]);
    assert!(!h5.exists());

    // --like the tf_model.h5 of the same model: transformers' layout, Keras' order.
    let whole = dir().join("whole/tf_model.h5");
    let o = run(&[
        &"convert",
        &index,
        &"-o",
        &h5,
        &"--like",
        &whole,
        &"--no-progress",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", common::stderr(&o));
    let a = formats::open(&h5).unwrap();
    let b = formats::open(&whole).unwrap();
    let names = |s: &dyn TensorSource| -> Vec<String> {
        s.layers()[0]
            .tensors()
            .map(|i| s.tensors()[i].name.clone())
            .collect()
    };
    assert_eq!(a.layers().len(), 1);
    assert_eq!(a.layers()[0].name, "bert");
    assert_eq!(
        names(a.as_ref()),
        names(b.as_ref()),
        "weight_names in Keras' order"
    );
    let want_order: Vec<String> = e["whole_weight_names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| format!("bert/{}", w.as_str().unwrap()))
        .collect();
    assert_eq!(names(a.as_ref()), want_order);
    for (i, t) in a.tensors().iter().enumerate() {
        let j = b.find(&t.name).unwrap();
        assert_eq!(bytes(a.as_ref(), i), bytes(b.as_ref(), j), "{}", t.name);
    }
}

#[test]
fn a_missing_shard_is_an_error_naming_it() {
    let t = copy();
    let gone = "tf_model-00003-of-00004.h5";
    std::fs::remove_file(t.path().join(gone)).unwrap();
    let o = run(&[&"inspect", &t.path().join("tf_model.h5.index.json")]);
    assert_clean_failure(&o, &[gone, "missing", "tf_model.h5.index.json"]);
    // The same through a shard beside the index.
    let o = run(&[&"verify", &t.path().join("tf_model-00001-of-00004.h5")]);
    assert_clean_failure(&o, &[gone, "missing"]);
}

#[test]
fn a_weight_the_index_puts_in_another_shard_is_an_error_naming_both() {
    let t = copy();
    let mut moved = (String::new(), String::new());
    edit_index(t.path(), |m| {
        let (w, s) = m
            .iter()
            .next()
            .map(|(w, s)| (w.clone(), s.clone()))
            .unwrap();
        let other = if s == "tf_model-00002-of-00004.h5" {
            "tf_model-00003-of-00004.h5"
        } else {
            "tf_model-00002-of-00004.h5"
        };
        m.insert(w.clone(), Value::from(other));
        moved = (w, other.to_string());
    });
    let o = run(&[&"inspect", &t.path().join("tf_model.h5.index.json")]);
    assert_clean_failure(&o, &[&moved.0, &moved.1]);
    let o = run(&[
        &"convert",
        &t.path().join("tf_model.h5.index.json"),
        &"-o",
        &t.path().join("x.safetensors"),
    ]);
    assert_clean_failure(&o, &[&moved.0]);
    assert!(!t.path().join("x.safetensors").exists());
}

#[test]
fn a_weight_the_index_does_not_list_or_a_listed_weight_no_shard_holds_is_an_error() {
    let t = copy();
    let mut dropped = String::new();
    edit_index(t.path(), |m| {
        dropped = m.keys().next_back().unwrap().clone();
        m.remove(&dropped);
    });
    let o = run(&[&"inspect", &t.path().join("tf_model.h5.index.json")]);
    assert_clean_failure(
        &o,
        &[ckptconv::naming::hf_shard_dataset(&dropped), "weight_map"],
    );

    let t = copy();
    edit_index(t.path(), |m| {
        m.insert(
            "tf_bert_model/bert/extra/kernel:0".into(),
            Value::from("tf_model-00001-of-00004.h5"),
        );
    });
    let o = run(&[&"inspect", &t.path().join("tf_model.h5.index.json")]);
    assert_clean_failure(
        &o,
        &[
            "tf_bert_model/bert/extra/kernel:0",
            "tf_model-00001-of-00004.h5",
        ],
    );
}

#[test]
fn a_shard_outside_the_index_directory_is_refused() {
    for bad in [
        "../tf_model-00001-of-00004.h5",
        "/tmp/x.h5",
        "sub/x.h5",
        "..",
    ] {
        let t = copy();
        edit_index(t.path(), |m| {
            let w = m.keys().next().unwrap().clone();
            m.insert(w, Value::from(bad));
        });
        let o = run(&[&"inspect", &t.path().join("tf_model.h5.index.json")]);
        assert_clean_failure(&o, &[bad, "outside the index's directory"]);
    }
}

#[test]
fn other_damage_fails_cleanly() {
    let t = copy();
    let index = t.path().join("tf_model.h5.index.json");
    // safetensors shards are not read through the index.
    edit_index(t.path(), |m| {
        let w = m.keys().next().unwrap().clone();
        m.insert(w, Value::from("model-00001-of-00002.safetensors"));
    });
    assert_clean_failure(&run(&[&"inspect", &index]), &["safetensors"]);
    // Not a map of names to files.
    std::fs::write(&index, br#"{"metadata": {}, "weight_map": {"a/b:0": 3}}"#).unwrap();
    assert_clean_failure(&run(&[&"inspect", &index]), &["a/b:0", "not a file name"]);
    std::fs::write(&index, br#"{"metadata": {}, "weight_map": {"a/b:0": "#).unwrap();
    assert_clean_failure(&run(&[&"inspect", &index]), &["not JSON"]);
    // A shard the index beside it does not name.
    let t = copy();
    edit_index(t.path(), |m| {
        let keep: Vec<String> = m
            .iter()
            .filter(|(_, s)| *s != "tf_model-00004-of-00004.h5")
            .map(|(w, _)| w.clone())
            .collect();
        m.retain(|w, _| keep.contains(w));
    });
    let o = run(&[&"inspect", &t.path().join("tf_model-00004-of-00004.h5")]);
    assert_clean_failure(&o, &["tf_model-00004-of-00004.h5", "does not name"]);
    // An index naming a file that is not a transformers shard.
    let t = copy();
    std::fs::copy(
        dir().join("whole/tf_model.h5"),
        t.path().join("tf_model-00002-of-00004.h5"),
    )
    .unwrap();
    let o = run(&[&"inspect", &t.path().join("tf_model.h5.index.json")]);
    assert_clean_failure(&o, &["tf_model-00002-of-00004.h5", "not a shard"]);
}

#[test]
fn keras3_sharded_maps_still_open_as_keras3() {
    let src = formats::open(&common::testdata().join("keras3/sharded.weights.json")).unwrap();
    assert!(src.keras3_paths());
}
