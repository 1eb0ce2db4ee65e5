//! TF2 checkpoints of `tf.Variable`s created without names (testdata/tf/unnamed_*, written
//! by testdata/generate_tf_unnamed.py): every such variable's object-graph `full_name` is
//! `Variable`, so each takes its object path as its variable name (docs/naming.md), and
//! every output — safetensors, `.h5`, a checkpoint in each layout — has every tensor once,
//! under that name, with TensorFlow's own bytes.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ckptconv::formats::tf::object_graph::{ObjectGraph, OBJECT_GRAPH_KEY};
use ckptconv::tensor::TensorSource;
use ckptconv::{formats, TensorData};
use common::{assert_clean_failure, ckptconv, unhex};
use serde_json::Value;

const FIXTURES: &[&str] = &[
    "unnamed_module",
    "unnamed_step_net",
    "unnamed_saved_model",
    "unnamed_sharded",
];

struct Fixture {
    dir: PathBuf,
    expected: Value,
}

impl Fixture {
    fn new(name: &str) -> Fixture {
        let dir = common::testdata().join("tf").join(name);
        let expected =
            serde_json::from_slice(&std::fs::read(dir.join("expected.json")).unwrap()).unwrap();
        Fixture { dir, expected }
    }

    /// Source key → (expected variable name, expected bytes), variables only.
    fn variables(&self) -> BTreeMap<String, (String, Vec<u8>)> {
        let names = self.expected["variable_names"].as_object().unwrap();
        self.expected["variables"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["name"] != OBJECT_GRAPH_KEY)
            .map(|t| {
                let key = t["name"].as_str().unwrap().to_string();
                let v = names[&key].as_str().unwrap().to_string();
                (key, (v, unhex(t["hex"].as_str().unwrap())))
            })
            .collect()
    }

    /// Expected variable name → bytes.
    fn by_variable(&self) -> BTreeMap<String, Vec<u8>> {
        self.variables().into_values().collect()
    }
}

fn bytes(src: &dyn TensorSource, i: usize) -> Vec<u8> {
    match src.read(i).unwrap() {
        TensorData::Bytes(b) => b.into_owned(),
        TensorData::Strings(_) => panic!("{}: strings", src.tensors()[i].name),
    }
}

/// `ckptconv convert IN -o OUT FLAGS` must succeed.
fn convert(input: &Path, out: &Path, flags: &[&str]) {
    let mut args: Vec<&std::ffi::OsStr> = vec!["convert".as_ref(), input.as_os_str()];
    args.extend(["-o".as_ref(), out.as_os_str(), "--no-progress".as_ref()]);
    args.extend(flags.iter().map(|f| std::ffi::OsStr::new(*f)));
    let o = ckptconv(&args);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{} -> {} {flags:?}: {}",
        input.display(),
        out.display(),
        common::stderr(&o)
    );
}

/// Every tensor of `out` (but its object graph), by key: its bytes.
fn contents(out: &Path) -> BTreeMap<String, Vec<u8>> {
    let src = formats::open(out).unwrap_or_else(|e| panic!("{}: {e}", out.display()));
    let mut m = BTreeMap::new();
    for (i, t) in src.tensors().iter().enumerate() {
        if t.name == OBJECT_GRAPH_KEY {
            continue;
        }
        assert!(
            m.insert(t.name.clone(), bytes(src.as_ref(), i)).is_none(),
            "{}: {} twice",
            out.display(),
            t.name
        );
    }
    assert!(src.verify().is_empty(), "{}: verify", out.display());
    m
}

#[test]
fn fixtures_have_several_unnamed_variables() {
    for name in FIXTURES {
        let f = Fixture::new(name);
        let full = f.expected["full_names"].as_object().unwrap();
        let unnamed = full.values().filter(|v| *v == "Variable").count();
        assert!(unnamed >= 4, "{name}: {unnamed} variables named Variable");
        // Two variables that name themselves `w` in two sub-modules: also shared.
        assert_eq!(full.values().filter(|v| *v == "w").count(), 2, "{name}");
    }
}

#[test]
fn each_variable_takes_its_object_path_and_unique_full_names_stay() {
    for name in FIXTURES {
        let f = Fixture::new(name);
        let src = formats::open(&f.dir).unwrap_or_else(|e| panic!("{name}: {e}"));
        let want = f.variables();
        let mut seen = 0;
        for (i, t) in src.tensors().iter().enumerate() {
            if t.name == OBJECT_GRAPH_KEY {
                continue;
            }
            let (v, b) = &want[&t.name];
            assert_eq!(&t.variable, v, "{name}/{}: variable name", t.name);
            assert_eq!(&bytes(src.as_ref(), i), b, "{name}/{}: bytes", t.name);
            seen += 1;
        }
        assert_eq!(seen, want.len(), "{name}: every tensor listed");
        // The uniquely named one keeps its full name; no two share a name.
        assert!(src.tensors().iter().any(|t| t.variable == "only_one"));
        let mut names: Vec<&str> = src.tensors().iter().map(|t| t.variable.as_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), src.tensors().len(), "{name}: unique names");
        assert!(src.verify().is_empty(), "{name}: verify");
    }
}

#[test]
fn the_sharded_fixture_slices_a_variable_across_data_files() {
    let f = Fixture::new("unnamed_sharded");
    let src = formats::open(&f.dir).unwrap();
    let big = &src.tensors()[src.find("net/big/.ATTRIBUTES/VARIABLE_VALUE").unwrap()];
    assert!(big.slices > 1, "MaxShardSizePolicy slices net/big");
    assert_eq!(big.variable, "net/big");
    assert!(src.files().len() >= 4, "an index and three data files");
}

#[test]
fn safetensors_h5_and_tf1_checkpoints_hold_every_tensor_under_its_unique_name() {
    let t = tempfile::tempdir().unwrap();
    for name in FIXTURES {
        let f = Fixture::new(name);
        let want = f.by_variable();
        for (out, flags) in [
            (format!("{name}.safetensors"), vec![]),
            (format!("{name}.h5"), vec!["--layout", "flat"]),
            (format!("{name}_tf1/ckpt"), vec!["--layout", "tf1"]),
        ] {
            let out = t.path().join(out);
            convert(&f.dir, &out, &flags);
            assert_eq!(contents(&out), want, "{name} -> {}", out.display());
        }
    }
}

#[test]
fn object_layout_keeps_every_object_path_and_writes_the_unique_names_as_full_names() {
    let t = tempfile::tempdir().unwrap();
    for name in FIXTURES {
        let f = Fixture::new(name);
        let want = f.variables();
        let out = t.path().join(name).join("ckpt");
        convert(&f.dir, &out, &["--layout", "object"]);
        let got = contents(&out);
        // Every variable at the key it had, so that tf.train.Checkpoint restores it into
        // the same objects (counters at the root included: `step`, `save_counter`).
        let keys: BTreeMap<String, Vec<u8>> = want
            .iter()
            .map(|(k, (_, b))| (k.clone(), b.clone()))
            .collect();
        assert_eq!(got, keys, "{name}: keys and bytes");
        let src = formats::open(&out).unwrap();
        let i = src.find(OBJECT_GRAPH_KEY).expect("an object graph");
        let TensorData::Strings(s) = src.read(i).unwrap() else {
            panic!("graph")
        };
        let g = ObjectGraph::decode(&s[0]).unwrap();
        for (key, (v, _)) in &want {
            assert_eq!(&g.by_key[key].full_name, v, "{name}/{key}: full_name");
        }
    }
}

#[test]
fn keep_layout_keeps_the_input_keys() {
    let t = tempfile::tempdir().unwrap();
    let f = Fixture::new("unnamed_step_net");
    let out = t.path().join("keep/ckpt");
    convert(&f.dir, &out, &[]);
    let got = contents(&out);
    let want: BTreeMap<String, Vec<u8>> = f
        .variables()
        .into_iter()
        .map(|(k, (_, b))| (k, b))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn names_are_the_same_on_every_run() {
    let t = tempfile::tempdir().unwrap();
    let f = Fixture::new("unnamed_sharded");
    let a = t.path().join("a.safetensors");
    let b = t.path().join("b.safetensors");
    convert(&f.dir, &a, &[]);
    convert(&f.dir, &b, &[]);
    assert_eq!(std::fs::read(a).unwrap(), std::fs::read(b).unwrap());
}

#[test]
fn a_keras_h5_of_a_tf_module_is_refused_with_what_to_write_instead() {
    let t = tempfile::tempdir().unwrap();
    for name in FIXTURES {
        let f = Fixture::new(name);
        let out = t.path().join(format!("{name}.h5"));
        let o = ckptconv([
            Path::new("convert"),
            &f.dir,
            Path::new("-o"),
            &out,
            Path::new("--no-progress"),
        ]);
        // A tf.Module is no Keras model: its attributes could not be loaded by position.
        assert_clean_failure(&o, &["--layout flat"]);
        assert!(!out.exists());
    }
}

#[test]
fn inspect_json_shows_the_unique_names() {
    let f = Fixture::new("unnamed_module");
    let o = ckptconv([Path::new("inspect"), Path::new("--json"), &f.dir]);
    assert_eq!(o.status.code(), Some(0));
    let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
    let by_key: BTreeMap<&str, &str> = doc["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["name"].as_str().unwrap(), t["variable"].as_str().unwrap()))
        .collect();
    assert_eq!(by_key["table/0/.ATTRIBUTES/VARIABLE_VALUE"], "table/0");
    assert_eq!(by_key["first/w/.ATTRIBUTES/VARIABLE_VALUE"], "first/w");
    assert_eq!(by_key["named/.ATTRIBUTES/VARIABLE_VALUE"], "only_one");
}
