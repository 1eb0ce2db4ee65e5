//! The command line on TensorFlow checkpoints: every accepted kind of path, `--json`,
//! exit codes, and corrupted copies that must fail cleanly with one line naming the file.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{assert_clean_failure, ckptconv, stdout};
use serde_json::Value;

fn fixture(p: &str) -> PathBuf {
    common::testdata().join("tf").join(p)
}

fn inspect_json(path: &Path) -> Value {
    let o = ckptconv([Path::new("inspect"), Path::new("--json"), path]);
    assert_eq!(o.status.code(), Some(0), "{}", common::stderr(&o));
    serde_json::from_str(&stdout(&o)).unwrap()
}

fn names(doc: &Value) -> Vec<String> {
    doc["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn every_kind_of_path_resolves_to_the_same_checkpoint() {
    let d = fixture("tf1_saver");
    let reference = names(&inspect_json(&d.join("model.ckpt")));
    assert_eq!(reference.len(), 22);
    for p in [
        d.join("model.ckpt.index"),
        d.join("model.ckpt.data-00000-of-00001"),
        d.join("model.ckpt.meta"),
        d.join("checkpoint"),
        d.clone(),
    ] {
        assert_eq!(names(&inspect_json(&p)), reference, "{}", p.display());
    }
    let sm = fixture("saved_model");
    let a = names(&inspect_json(&sm));
    assert_eq!(a, names(&inspect_json(&sm.join("variables"))));
    assert_eq!(
        a,
        names(&inspect_json(&sm.join("variables/variables.index")))
    );
    let ms = fixture("multi_shard");
    let a = names(&inspect_json(&ms.join("ckpt")));
    assert_eq!(
        a,
        names(&inspect_json(&ms.join("ckpt.data-00003-of-00005")))
    );
    assert_eq!(a, names(&inspect_json(&ms)));
}

#[test]
fn json_document_shape() {
    let doc = inspect_json(&fixture("tf2_object"));
    assert_eq!(doc["format"], "tf-checkpoint");
    assert!(doc["path"].as_str().unwrap().ends_with("ckpt-2"));
    let t = doc["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "net/dense/kernel/.ATTRIBUTES/VARIABLE_VALUE")
        .unwrap();
    assert_eq!(t["dtype"], "float32");
    assert_eq!(t["shape"], serde_json::json!([8, 6]));
    assert_eq!(t["bytes"], 192);
    assert_eq!(t["variable"], "dense/kernel");
    assert_eq!(doc["totals"]["tensors"], 11);
}

#[test]
fn human_table_has_totals() {
    let o = ckptconv([Path::new("inspect"), &fixture("tf1_saver")]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        out.lines().any(|l| l.starts_with("net/dense/kernel ")
            && l.contains(" float32 ")
            && l.contains("[5, 7]")),
        "{out}"
    );
    assert!(out.contains("22 tensors, 224 parameters"), "{out}");
}

#[test]
fn verify_many_inputs() {
    let o = ckptconv([
        Path::new("verify"),
        &fixture("tf1_saver"),
        &fixture("partitioned"),
        &fixture("multi_shard"),
        &fixture("tf2_object"),
        &fixture("saved_model"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert_eq!(stdout(&o).matches(": ok (").count(), 5);
}

#[test]
fn usage_errors_exit_2() {
    let o = ckptconv(["inspect"]);
    assert_eq!(o.status.code(), Some(2));
    let o = ckptconv(["frobnicate"]);
    assert_eq!(o.status.code(), Some(2));
    let o = ckptconv(["--help"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("Exit codes"));
}

/// A scratch copy of a fixture directory.
fn scratch(name: &str) -> (tempfile::TempDir, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let d = t.path().join(name);
    common::copy_dir(&fixture(name), &d);
    (t, d)
}

fn flip(path: &Path, pos: usize) {
    let mut b = fs::read(path).unwrap();
    b[pos] ^= 0x01;
    fs::write(path, b).unwrap();
}

#[test]
fn flipped_data_byte_is_a_checksum_error_naming_file_and_tensor() {
    let (_t, d) = scratch("tf1_saver");
    let data = d.join("model.ckpt.data-00000-of-00001");
    // Find where net/dense/kernel lives and flip a byte inside it.
    let src = ckptconv::formats::open(&d.join("model.ckpt")).unwrap();
    let mut offset = 0;
    for t in src.tensors() {
        if t.name == "net/dense/kernel" {
            break;
        }
        offset += t.byte_len as usize;
    }
    drop(src);
    // Tensors are stored in key order, back to back.
    flip(&data, offset + 3);
    let o = ckptconv([Path::new("verify"), &d.join("model.ckpt")]);
    assert_clean_failure(
        &o,
        &[
            "model.ckpt.data-00000-of-00001",
            "net/dense/kernel",
            "checksum",
        ],
    );
}

#[test]
fn flipped_string_byte_is_a_checksum_error() {
    let (_t, d) = scratch("tf2_object");
    let data = d.join("ckpt-2.data-00000-of-00001");
    let len = fs::metadata(&data).unwrap().len() as usize;
    // The object graph (a string tensor) is the first key and so the first bytes.
    flip(&data, 40);
    let o = ckptconv([Path::new("verify"), &d]);
    assert_clean_failure(&o, &["ckpt-2.data-00000-of-00001", "checksum"]);
    assert!(len > 40);
}

/// The object graph decides every name (a tf-keras `save_weights` checkpoint is
/// `dense/kernel` only through it): one damaged byte in it, or a data file cut short
/// before its end, must fail every command that reads the checkpoint, never fall back to
/// the keys' names with exit 0.
#[test]
fn damaged_object_graph_fails_every_command() {
    use ckptconv::formats::tf::object_graph::OBJECT_GRAPH_KEY;
    let t = tempfile::tempdir().unwrap();
    let d = t.path().join("tf_format");
    common::copy_dir(&common::testdata().join("keras2/tf_format"), &d);
    let prefix = d.join("weights");
    let data = d.join("weights.data-00000-of-00001");
    let (offset, len) = {
        let src = ckptconv::formats::open(&prefix).unwrap();
        let i = src.find(OBJECT_GRAPH_KEY).expect("an object graph");
        let (shard, offset) = src.stored_at(i).expect("stored in one piece");
        assert_eq!(shard, 0);
        // Intact, the graph names the variables as the model did.
        let doc = inspect_json(&prefix);
        let variables: Vec<&str> = doc["tensors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["variable"].as_str().unwrap())
            .collect();
        assert!(variables.contains(&"conv/kernel"), "{variables:?}");
        (offset as usize, src.tensors()[i].byte_len as usize)
    };
    let intact = fs::read(&data).unwrap();
    let out = t.path().join("out");
    let commands = |what: &[&str]| {
        let runs: Vec<Vec<std::ffi::OsString>> = vec![
            vec!["inspect".into(), prefix.clone().into()],
            vec!["verify".into(), prefix.clone().into()],
            vec![
                "convert".into(),
                prefix.clone().into(),
                "-o".into(),
                out.join("w.safetensors").into(),
            ],
            vec![
                "convert".into(),
                prefix.clone().into(),
                "-o".into(),
                out.join("tf1/m").into(),
                "--layout".into(),
                "tf1".into(),
            ],
            vec![
                "convert".into(),
                prefix.clone().into(),
                "-o".into(),
                out.join("flat.h5").into(),
                "--layout".into(),
                "flat".into(),
            ],
            vec![
                "convert".into(),
                prefix.clone().into(),
                "-o".into(),
                out.join("k.h5").into(),
            ],
        ];
        for args in runs {
            let o = ckptconv(&args);
            let mut needles = vec!["weights.data-00000-of-00001", OBJECT_GRAPH_KEY];
            needles.extend_from_slice(what);
            assert_clean_failure(&o, &needles);
            assert!(!out.exists(), "{args:?} wrote output");
        }
    };
    // One flipped byte in the middle of the serialized graph.
    flip(&data, offset + len / 2);
    commands(&["checksum mismatch"]);
    // The data file cut inside the graph.
    fs::write(&data, &intact[..offset + len / 2]).unwrap();
    commands(&["past the end of the data file", "truncated"]);
    // Intact, the same commands succeed.
    fs::write(&data, &intact).unwrap();
    let o = ckptconv([
        Path::new("convert"),
        &prefix,
        Path::new("-o"),
        &out.join("w.safetensors"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", common::stderr(&o));
}

#[test]
fn flipped_index_byte_is_a_checksum_error() {
    let (_t, d) = scratch("tf1_saver");
    flip(&d.join("model.ckpt.index"), 30);
    let o = ckptconv([Path::new("verify"), &d.join("model.ckpt")]);
    assert_clean_failure(&o, &["model.ckpt.index", "checksum"]);
    let o = ckptconv([Path::new("inspect"), &d.join("model.ckpt")]);
    assert_clean_failure(&o, &["model.ckpt.index", "checksum"]);
}

#[test]
fn truncated_index() {
    let (_t, d) = scratch("tf1_saver");
    let p = d.join("model.ckpt.index");
    let b = fs::read(&p).unwrap();
    for cut in [b.len() - 1, b.len() - 48, 100, 10] {
        fs::write(&p, &b[..cut]).unwrap();
        let o = ckptconv([Path::new("verify"), &p]);
        assert_clean_failure(&o, &["model.ckpt.index"]);
    }
}

#[test]
fn missing_shard() {
    let (_t, d) = scratch("multi_shard");
    fs::remove_file(d.join("ckpt.data-00002-of-00005")).unwrap();
    let o = ckptconv([Path::new("verify"), &d.join("ckpt")]);
    assert_clean_failure(&o, &["ckpt.data-00002-of-00005", "No such file"]);
}

#[test]
fn truncated_shard() {
    let (_t, d) = scratch("tf1_saver");
    let p = d.join("model.ckpt.data-00000-of-00001");
    let b = fs::read(&p).unwrap();
    fs::write(&p, &b[..b.len() / 2]).unwrap();
    let o = ckptconv([Path::new("verify"), &d.join("model.ckpt")]);
    assert_clean_failure(&o, &["model.ckpt.data-00000-of-00001", "truncated"]);
}

#[test]
fn random_bytes_and_empty_files() {
    let t = tempfile::tempdir().unwrap();
    let mut seed: u64 = 0x9e3779b97f4a7c15;
    let random: Vec<u8> = (0..4096)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect();
    let idx = t.path().join("junk.index");
    fs::write(&idx, &random).unwrap();
    assert_clean_failure(&ckptconv([Path::new("verify"), &idx]), &["junk.index"]);
    assert_clean_failure(&ckptconv([Path::new("inspect"), &idx]), &["junk.index"]);
    let raw = t.path().join("junk.bin");
    fs::write(&raw, &random).unwrap();
    assert_clean_failure(&ckptconv([Path::new("verify"), &raw]), &["junk.bin"]);
    let empty = t.path().join("empty.index");
    fs::write(&empty, b"").unwrap();
    assert_clean_failure(
        &ckptconv([Path::new("verify"), &empty]),
        &["empty.index", "empty"],
    );
    let empty2 = t.path().join("empty");
    fs::write(&empty2, b"").unwrap();
    assert_clean_failure(&ckptconv([Path::new("inspect"), &empty2]), &["empty"]);
}

#[test]
fn nothing_at_the_path_says_what_was_looked_for() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("nope");
    assert_clean_failure(
        &ckptconv([Path::new("inspect"), &p]),
        &["nope", "nope.index"],
    );
    assert_clean_failure(
        &ckptconv([Path::new("inspect"), t.path()]),
        &["no TensorFlow checkpoint in this directory"],
    );
}

#[test]
fn one_bad_input_fails_verify_but_others_are_checked() {
    let (_t, d) = scratch("tf1_saver");
    flip(&d.join("model.ckpt.data-00000-of-00001"), 5);
    let o = ckptconv([Path::new("verify"), &fixture("partitioned"), &d]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(out.contains("partitioned: ok"), "{out}");
    assert!(out.contains("FAILED"), "{out}");
}

#[test]
fn pytorch_files_are_named_as_such() {
    let t = tempfile::tempdir().unwrap();
    let zpath = t.path().join("model.ckpt");
    {
        let f = fs::File::create(&zpath).unwrap();
        let mut z = zip::ZipWriter::new(f);
        let opts: zip::write::SimpleFileOptions = Default::default();
        z.start_file("archive/data.pkl", opts).unwrap();
        std::io::Write::write_all(&mut z, b"\x80\x02}q\x00.").unwrap();
        z.finish().unwrap();
    }
    assert_clean_failure(&ckptconv([Path::new("inspect"), &zpath]), &["PyTorch"]);
    let pkl = t.path().join("old.ckpt");
    fs::write(&pkl, b"\x80\x02\x8a\x0alp\xfc\x9cF\xf9 j\xa8P\x19.").unwrap();
    assert_clean_failure(&ckptconv([Path::new("inspect"), &pkl]), &["pickle"]);
}
