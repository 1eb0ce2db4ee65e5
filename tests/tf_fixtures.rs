//! Every TensorFlow fixture is listed and read bit-exactly against the values TensorFlow
//! itself read back (testdata/tf/*/expected.json, written by testdata/generate_tf.py).

mod common;

use std::path::Path;

use ckptconv::formats;
use serde_json::Value;

fn check_fixture(dir: &str) {
    let root = common::testdata().join("tf").join(dir);
    let expected: Value =
        serde_json::from_slice(&std::fs::read(root.join("expected.json")).unwrap()).unwrap();
    let src = formats::open(&root).unwrap_or_else(|e| panic!("{dir}: {e}"));
    let vars = expected["variables"].as_array().unwrap();
    let names: Vec<&str> = src.tensors().iter().map(|t| t.name.as_str()).collect();
    let want: Vec<&str> = vars.iter().map(|v| v["name"].as_str().unwrap()).collect();
    assert_eq!(names, want, "{dir}: names");
    let full_names = expected.get("full_names");
    for v in vars {
        let name = v["name"].as_str().unwrap();
        let i = common::check_tensor(src.as_ref(), v, dir);
        let info = &src.tensors()[i];
        if let Some(Value::String(full)) = full_names.and_then(|m| m.get(name)) {
            if !full.is_empty() {
                assert_eq!(&info.variable, full, "{dir}/{name}: variable name");
            }
        }
    }
    assert!(src.verify().is_empty(), "{dir}: verify");
}

#[test]
fn tf1_saver_every_dtype() {
    check_fixture("tf1_saver");
}

#[test]
fn partitioned_variables_are_reassembled() {
    check_fixture("partitioned");
    let src = formats::open(&common::testdata().join("tf/partitioned")).unwrap();
    let emb = &src.tensors()[src.find("emb/embeddings").unwrap()];
    assert_eq!(emb.slices, 3);
    // Slice keys are not listed.
    assert!(src.tensors().iter().all(|t| !t.name.starts_with('\0')));
}

#[test]
fn multi_shard_checkpoint() {
    check_fixture("multi_shard");
    let src = formats::open(&common::testdata().join("tf/multi_shard")).unwrap();
    let big = &src.tensors()[src.find("big/.ATTRIBUTES/VARIABLE_VALUE").unwrap()];
    assert!(
        big.slices > 1,
        "the max-shard-size policy slices big variables"
    );
    assert_eq!(big.variable, "big/kernel");
}

#[test]
fn object_graph_checkpoint_with_state_file() {
    check_fixture("tf2_object");
    let src = formats::open(&common::testdata().join("tf/tf2_object")).unwrap();
    // The state file names ckpt-2, the latest.
    assert!(src.path().ends_with("ckpt-2"));
    let t = &src.tensors()[src
        .find("net/table/a..b.Sc/.ATTRIBUTES/VARIABLE_VALUE")
        .unwrap()];
    assert_eq!(t.variable, "odd/name");
    assert_eq!(t.object_path.as_deref(), Some("net/table/a..b.Sc"));
}

#[test]
fn saved_model_directory() {
    check_fixture("saved_model");
}

#[test]
fn reads_borrow_from_the_map() {
    let src = formats::open(&common::testdata().join("tf/tf1_saver/model.ckpt")).unwrap();
    let i = src.find("net/dense/kernel").unwrap();
    assert!(src.read(i).unwrap().is_borrowed());
    let _ = Path::new("");
}

/// Our table builder makes TensorFlow's choices: re-encoding the entries of an index that
/// TensorFlow wrote gives the same bytes.
#[test]
fn table_builder_reproduces_tensorflow_index_bytes() {
    use ckptconv::formats::tf::table::{Table, TableBuilder, TableOptions};
    for p in [
        "tf1_saver/model.ckpt.index",
        "partitioned/model.ckpt.index",
        "multi_shard/ckpt.index",
        "tf2_object/ckpt-2.index",
        "saved_model/variables/variables.index",
    ] {
        let tf_bytes = std::fs::read(common::testdata().join("tf").join(p)).unwrap();
        let table = Table::parse(&tf_bytes).unwrap();
        let mut b = TableBuilder::new(Vec::new(), TableOptions::default());
        for (k, v) in &table.entries {
            b.add(k, v).unwrap();
        }
        let ours = b.finish().unwrap();
        assert!(ours == tf_bytes, "{p}: our index differs from TensorFlow's");
    }
}
