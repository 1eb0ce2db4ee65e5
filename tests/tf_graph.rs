//! Frozen GraphDefs (`.pb`) read bit-exactly against what TensorFlow reads
//! (testdata/tf/frozen_*/expected.json, written by testdata/generate_tf_graph.py); a
//! SavedModel's `saved_model.pb`; a TF1 checkpoint's `.meta` graph in `summary` and
//! `inspect`; crafted and damaged graphs; and what files that are none of the formats are
//! said to be.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use ckptconv::formats;
use common::{assert_clean_failure, ckptconv, stderr, stdout};
use serde_json::Value;

fn expected(dir: &str) -> Value {
    let p = common::testdata()
        .join("tf")
        .join(dir)
        .join("expected.json");
    serde_json::from_slice(&fs::read(p).unwrap()).unwrap()
}

fn graph(dir: &str) -> PathBuf {
    common::testdata().join("tf").join(dir).join("graph.pb")
}

fn check_frozen(dir: &str) {
    let exp = expected(dir);
    let src = formats::open(&graph(dir)).unwrap_or_else(|e| panic!("{dir}: {e}"));
    assert_eq!(src.format().name(), "tf-graphdef");
    let vars = exp["variables"].as_array().unwrap();
    let names: Vec<&str> = src.tensors().iter().map(|t| t.name.as_str()).collect();
    let want: Vec<&str> = vars.iter().map(|v| v["name"].as_str().unwrap()).collect();
    assert_eq!(names, want, "{dir}: every Const node, in file order");
    for v in vars {
        let i = common::check_tensor(src.as_ref(), v, dir);
        assert_eq!(src.tensors()[i].variable, src.tensors()[i].name);
    }
    assert!(src.verify().is_empty(), "{dir}: verify");
}

#[test]
fn frozen_v1_graph_every_tensor_proto_form() {
    check_frozen("frozen_v1");
    let src = formats::open(&graph("frozen_v1")).unwrap();
    // tensor_content is served from the map; typed fields are decoded.
    let k = src.find("dense/kernel").unwrap();
    assert!(src.read(k).unwrap().is_borrowed());
    let s = src.find("splat/f32").unwrap();
    assert!(!src.read(s).unwrap().is_borrowed());
    assert_eq!(src.tensors()[s].shape, [4, 5]);
    // The cases only TensorFlow's C++ rules decode are among them.
    let exp = expected("frozen_v1");
    let cpp: Vec<&str> = exp["variables"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["source"] == "session")
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        cpp,
        ["cpp/i8_wrap", "cpp/f32_extra", "cpp/string_content"],
        "the generator's C++-only cases"
    );
}

#[test]
fn frozen_v2_graph() {
    check_frozen("frozen_v2");
}

#[test]
fn detected_by_content_whatever_the_name() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("weights");
    fs::copy(graph("frozen_v2"), &p).unwrap();
    let src = formats::open(&p).unwrap();
    assert_eq!(src.format().name(), "tf-graphdef");
    let o = ckptconv([Path::new("inspect"), &p]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("(tf-graphdef)"), "{}", stdout(&o));
}

/// Converted to a checkpoint, the graph's tensors are the same (`diff` reads both).
#[test]
fn converts_to_a_checkpoint_that_diff_finds_the_same() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("ckpt/model");
    let o = ckptconv([
        Path::new("convert"),
        &graph("frozen_v1"),
        Path::new("-o"),
        &out,
        Path::new("--no-progress"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let d = ckptconv([Path::new("diff"), &graph("frozen_v1"), &out]);
    assert_eq!(d.status.code(), Some(0), "{}{}", stdout(&d), stderr(&d));
    // And to safetensors, strings and complex128 skipped with a note.
    let st = t.path().join("g.safetensors");
    let o = ckptconv([
        Path::new("convert"),
        &graph("frozen_v1"),
        Path::new("-o"),
        &st,
        Path::new("--no-progress"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let back = formats::open(&st).unwrap();
    assert!(back.find("dense/kernel").is_some());
    assert!(back.find("strings/vector").is_none());
}

#[test]
fn saved_model_pb_reads_its_variables() {
    let dir = common::testdata().join("tf/saved_model");
    let by_pb = formats::open(&dir.join("saved_model.pb")).unwrap();
    let by_dir = formats::open(&dir).unwrap();
    assert_eq!(by_pb.path(), by_dir.path());
    assert!(by_pb.path().ends_with("variables/variables"));
    assert_eq!(by_pb.tensors(), by_dir.tensors());
    // Without its variables: said so.
    let t = tempfile::tempdir().unwrap();
    fs::copy(dir.join("saved_model.pb"), t.path().join("saved_model.pb")).unwrap();
    assert_clean_failure(
        &ckptconv([Path::new("inspect"), &t.path().join("saved_model.pb")]),
        &[
            "saved_model.pb",
            "variables/variables.index",
            "do not exist",
        ],
    );
    // Its other files hold no weights: said so.
    assert_clean_failure(
        &ckptconv([Path::new("inspect"), &dir.join("fingerprint.pb")]),
        &[
            "a SavedModel's fingerprint.pb",
            "give the SavedModel's directory",
        ],
    );
    // A SavedModel by content, under another name.
    let renamed = t.path().join("model.pb");
    fs::copy(dir.join("saved_model.pb"), &renamed).unwrap();
    assert_clean_failure(
        &ckptconv([Path::new("inspect"), &renamed]),
        &["a SavedModel's saved_model.pb"],
    );
}

#[test]
fn meta_graph_gives_summary_its_trainable_split() {
    let exp = expected("tf1_meta");
    let dir = common::testdata().join("tf/tf1_meta");
    let o = ckptconv([Path::new("summary"), Path::new("--json"), &dir]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["trainable_params"], exp["meta"]["trainable_params"]);
    assert_eq!(
        doc["non_trainable_params"],
        exp["meta"]["non_trainable_params"]
    );
    let text = stdout(&ckptconv([Path::new("summary"), &dir]));
    assert!(text.contains("Trainable params: 55 ("), "{text}");
    assert!(text.contains("Non-trainable params: 9 ("), "{text}");
    // Every checkpoint tensor as TensorFlow reads it.
    let src = formats::open(&dir).unwrap();
    for v in exp["variables"].as_array().unwrap() {
        common::check_tensor(src.as_ref(), v, "tf1_meta");
    }
    // A partitioned variable's parts are one variable of the graph, under its full name.
    let g = src.tf1_graph().unwrap();
    assert!(g.variables.iter().any(|v| v == "emb/embeddings"));
    assert!(!g.variables.iter().any(|v| v.contains("part_")));
}

#[test]
fn inspect_lists_graph_variables_the_checkpoint_lacks() {
    let exp = expected("tf1_meta");
    let dir = common::testdata().join("tf/tf1_meta");
    let text = stdout(&ckptconv([Path::new("inspect"), &dir]));
    assert!(
        text.ends_with("In the .meta graph but not in the checkpoint (1): extra/unsaved\n"),
        "{text}"
    );
    let o = ckptconv([Path::new("inspect"), Path::new("--json"), &dir]);
    let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["graph_only_variables"], exp["meta"]["graph_only"]);
    // A checkpoint whose graph it holds whole: an empty list, and no footer.
    let saver = common::testdata().join("tf/tf1_saver");
    let o = ckptconv([Path::new("inspect"), Path::new("--json"), &saver]);
    let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["graph_only_variables"], serde_json::json!([]));
    assert!(!stdout(&ckptconv([Path::new("inspect"), &saver])).contains(".meta graph"));
    // No .meta: null (docs/json.md: the same keys always).
    let o = ckptconv([
        Path::new("inspect"),
        Path::new("--json"),
        &common::testdata().join("tf/partitioned"),
    ]);
    let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["graph_only_variables"], Value::Null);
}

// ------------------------------------------------------------------ crafted graphs

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn field(out: &mut Vec<u8>, n: u32, bytes: &[u8]) {
    varint(out, u64::from(n) << 3 | 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn vfield(out: &mut Vec<u8>, n: u32, v: u64) {
    varint(out, u64::from(n) << 3);
    varint(out, v);
}

/// A TensorProto: dtype, shape, then `rest` (raw fields).
fn tensor(dtype: i32, shape: &[i64], rest: &[u8]) -> Vec<u8> {
    let mut t = Vec::new();
    vfield(&mut t, 1, dtype as u64);
    let mut s = Vec::new();
    for &d in shape {
        let mut dim = Vec::new();
        vfield(&mut dim, 1, d as u64);
        field(&mut s, 2, &dim);
    }
    field(&mut t, 2, &s);
    t.extend_from_slice(rest);
    t
}

/// A Const node with `value` = tensor and `dtype` = type.
fn const_node(name: &str, dtype: i32, tensor: &[u8]) -> Vec<u8> {
    let mut n = Vec::new();
    field(&mut n, 1, name.as_bytes());
    field(&mut n, 2, b"Const");
    let mut value = Vec::new();
    field(&mut value, 8, tensor);
    let mut entry = Vec::new();
    field(&mut entry, 1, b"value");
    field(&mut entry, 2, &value);
    field(&mut n, 5, &entry);
    let mut ty = Vec::new();
    vfield(&mut ty, 6, dtype as u64);
    let mut entry = Vec::new();
    field(&mut entry, 1, b"dtype");
    field(&mut entry, 2, &ty);
    field(&mut n, 5, &entry);
    n
}

fn node(name: &str, op: &str) -> Vec<u8> {
    let mut n = Vec::new();
    field(&mut n, 1, name.as_bytes());
    field(&mut n, 2, op.as_bytes());
    n
}

fn graph_of(nodes: &[Vec<u8>]) -> Vec<u8> {
    let mut g = Vec::new();
    for n in nodes {
        field(&mut g, 1, n);
    }
    let mut v = Vec::new();
    vfield(&mut v, 1, 1882);
    field(&mut g, 4, &v);
    g
}

const FLOAT: i32 = 1;
const STRING: i32 = 7;

#[test]
fn crafted_graphs_read_as_tensorflow_reads_them() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("g.pb");
    let mut f = Vec::new();
    // float_val, unpacked, written twice: 1.0 then 2.0; and a shape in two occurrences
    // (protobuf merges them: [2] then [3] is [2, 3]).
    let mut rest = Vec::new();
    varint(&mut rest, 5 << 3 | 5);
    rest.extend_from_slice(&1f32.to_le_bytes());
    varint(&mut rest, 5 << 3 | 5);
    rest.extend_from_slice(&2f32.to_le_bytes());
    let mut dim = Vec::new();
    vfield(&mut dim, 1, 3);
    let mut shape = Vec::new();
    field(&mut shape, 2, &dim);
    field(&mut rest, 2, &shape);
    f.push(const_node("c", FLOAT, &tensor(FLOAT, &[2], &rest)));
    f.push(node("x", "Placeholder"));
    fs::write(&p, graph_of(&f)).unwrap();
    let src = formats::open(&p).unwrap();
    assert_eq!(src.tensors().len(), 1);
    assert_eq!(src.tensors()[0].shape, [2, 3]);
    let want: Vec<u8> = [1f32, 2., 2., 2., 2., 2.]
        .iter()
        .flat_map(|x| x.to_le_bytes())
        .collect();
    assert_eq!(src.read(0).unwrap().as_bytes().unwrap(), want.as_slice());
}

/// Each crafted graph fails with exit 1, one line naming the file and the node.
#[test]
fn crafted_bad_graphs_fail_cleanly() {
    let t = tempfile::tempdir().unwrap();
    let mut one_float = Vec::new();
    varint(&mut one_float, 5 << 3 | 5);
    one_float.extend_from_slice(&1f32.to_le_bytes());
    let mut long_string = Vec::new();
    field(&mut long_string, 8, &[b'x'; 1000]);
    let mut content = Vec::new();
    field(&mut content, 4, &[0; 12]);
    let mut not_tensor = Vec::new();
    field(&mut not_tensor, 1, b"n");
    field(&mut not_tensor, 2, b"Const");
    let mut e = Vec::new();
    field(&mut e, 1, b"value");
    let mut s = Vec::new();
    field(&mut s, 2, b"a string, not a tensor");
    field(&mut e, 2, &s);
    field(&mut not_tensor, 5, &e);
    type Case<'a> = (&'a str, Vec<Vec<u8>>, Vec<&'a str>);
    let cases: Vec<Case> = vec![
        (
            "splat_bomb",
            vec![const_node(
                "bomb",
                FLOAT,
                &tensor(FLOAT, &[1_000_000, 1_000_000], &one_float),
            )],
            vec!["\"bomb\"", "float_val", "allowed"],
        ),
        (
            "string_bomb",
            vec![const_node(
                "s",
                STRING,
                &tensor(STRING, &[10_000_000], &long_string),
            )],
            vec!["\"s\"", "string_val", "allowed"],
        ),
        (
            "overflow",
            vec![const_node(
                "o",
                FLOAT,
                &tensor(FLOAT, &[1 << 40, 1 << 40], &[]),
            )],
            vec!["\"o\"", "int64"],
        ),
        (
            "negative",
            vec![const_node("neg", FLOAT, &tensor(FLOAT, &[-3], &[]))],
            vec!["\"neg\"", "negative"],
        ),
        (
            "content_size",
            vec![const_node("c", FLOAT, &tensor(FLOAT, &[2], &content))],
            vec!["\"c\"", "tensor_content has 12 bytes", "needs 8"],
        ),
        (
            "dtype_mismatch",
            vec![const_node("d", 3, &tensor(FLOAT, &[1], &one_float))],
            vec!["\"d\"", "attr \"dtype\" is int32", "float32"],
        ),
        (
            "duplicate",
            vec![
                const_node("same", FLOAT, &tensor(FLOAT, &[1], &one_float)),
                const_node("same", FLOAT, &tensor(FLOAT, &[1], &one_float)),
            ],
            vec!["\"same\"", "the same name as Const node 0"],
        ),
        (
            "no_value",
            vec![node("lonely", "Const")],
            vec!["\"lonely\"", "no attr \"value\""],
        ),
        (
            "value_not_tensor",
            vec![not_tensor],
            vec!["\"n\"", "does not hold a tensor"],
        ),
        (
            "resource",
            vec![const_node("r", 20, &tensor(20, &[1], &[]))],
            vec!["\"r\"", "unsupported dtype resource"],
        ),
        (
            "invalid_dtype",
            vec![const_node("i", 0, &tensor(0, &[1], &[]))],
            vec!["\"i\"", "DT_INVALID"],
        ),
    ];
    for (name, nodes, needles) in cases {
        let p = t.path().join(format!("{name}.pb"));
        fs::write(&p, graph_of(&nodes)).unwrap();
        let mut want = needles.clone();
        let shown = p.display().to_string();
        want.push(&shown);
        for cmd in ["inspect", "verify"] {
            let o = ckptconv([Path::new(cmd), &p]);
            assert_clean_failure(&o, &want);
        }
    }
}

#[test]
fn truncated_graphs_are_damaged_not_something_else() {
    let t = tempfile::tempdir().unwrap();
    let orig = fs::read(graph("frozen_v1")).unwrap();
    let p = t.path().join("graph.pb");
    // Cut inside the last node: a damaged GraphDef, named as such.
    fs::write(&p, &orig[..orig.len() - 20]).unwrap();
    assert_clean_failure(
        &ckptconv([Path::new("inspect"), &p]),
        &["damaged GraphDef", "truncated"],
    );
    // Cut everywhere: exit 0 (a cut between nodes leaves a smaller graph) or 1, never a
    // panic, and never a missing index.
    for cut in (1..orig.len()).step_by(97) {
        fs::write(&p, &orig[..cut]).unwrap();
        let o = ckptconv([Path::new("verify"), &p]);
        let all = stdout(&o) + &stderr(&o);
        assert!(
            matches!(o.status.code(), Some(0) | Some(1)),
            "cut {cut}: {all}"
        );
        assert!(!all.contains("panicked"), "cut {cut}: {all}");
        assert!(!all.contains(".index"), "cut {cut}: {all}");
    }
}

#[test]
fn bit_flips_in_a_frozen_graph_never_panic() {
    let orig = fs::read(graph("frozen_v1")).unwrap();
    let mut s: u64 = 0x5eed_0016;
    let (mut ok, mut refused) = (0, 0);
    for _ in 0..3000 {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        let pos = (s % orig.len() as u64) as usize;
        let mut b = orig.clone();
        b[pos] ^= 1 << ((s >> 40) % 8);
        // Through the library (fast): open, read every tensor, verify.
        match formats::tf::graphdef::GraphDef::from_vec(Path::new("g.pb"), b) {
            Ok(g) => {
                use ckptconv::tensor::TensorSource;
                for i in 0..g.tensors().len() {
                    let _ = g.read(i);
                }
                let _ = g.verify();
                ok += 1;
            }
            Err(e) => {
                assert!(e.to_string().starts_with("g.pb: "), "{e}");
                refused += 1;
            }
        }
    }
    assert!(ok > 0 && refused > 0, "{ok} read, {refused} refused");
}

// ------------------------------------------------------------------ what a file is

#[test]
fn files_that_are_none_of_the_formats_are_named_for_what_they_are() {
    let t = tempfile::tempdir().unwrap();
    let meta = fs::read(common::testdata().join("tf/tf1_saver/model.ckpt.meta")).unwrap();
    // An ONNX ModelProto: ir_version 8, producer "pytorch", a graph with one node, opset.
    let mut onnx = Vec::new();
    vfield(&mut onnx, 1, 8);
    field(&mut onnx, 2, b"pytorch");
    field(&mut onnx, 3, b"2.1.0");
    let mut g = Vec::new();
    let mut n = Vec::new();
    field(&mut n, 1, b"input");
    field(&mut n, 2, b"output");
    field(&mut n, 4, b"Relu");
    field(&mut g, 1, &n);
    field(&mut g, 2, b"main_graph");
    field(&mut onnx, 7, &g);
    let mut opset = Vec::new();
    vfield(&mut opset, 2, 17);
    field(&mut onnx, 8, &opset);
    let mut tflite = vec![0x1c, 0, 0, 0];
    tflite.extend_from_slice(b"TFL3");
    tflite.extend_from_slice(&[0; 32]);
    let mut npy = b"\x93NUMPY\x01\x00v\x00".to_vec();
    npy.extend_from_slice(b"{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }");
    let mut tar = vec![0u8; 600];
    tar[..9].copy_from_slice(b"model.pb\0");
    tar[257..262].copy_from_slice(b"ustar");
    let cases: Vec<(&str, Vec<u8>, Vec<&str>)> = vec![
        (
            "model.ckpt.meta",
            meta.clone(),
            vec!["MetaGraphDef", "its checkpoint does not exist (neither"],
        ),
        (
            "graph.pb",
            meta,
            vec!["not a frozen GraphDef", "MetaGraphDef"],
        ),
        ("model.onnx", onnx.clone(), vec!["ONNX model", "pytorch"]),
        ("model", onnx, vec!["ONNX model"]),
        ("model.tflite", tflite.clone(), vec!["TensorFlow Lite"]),
        ("weights", tflite, vec!["TensorFlow Lite"]),
        ("w.npy", npy, vec!["NumPy .npy"]),
        (
            "model.tar.gz",
            b"\x1f\x8b\x08\x00\x00\x00\x00\x00".to_vec(),
            vec!["gzip-compressed", "unpack it first"],
        ),
        ("model.tar", tar, vec!["tar archive"]),
        (
            "graph.pbtxt",
            b"# a graph\nnode {\n  name: \"x\"\n  op: \"Const\"\n}\n".to_vec(),
            vec!["protobuf text format", "as_text=False"],
        ),
        (
            "saved_model.pbtxt",
            b"saved_model_schema_version: 1\nmeta_graphs {\n}\n".to_vec(),
            vec!["SavedModel in protobuf text format"],
        ),
        (
            "notes",
            b"just some words\n".to_vec(),
            vec!["a text file", "ckptconv reads"],
        ),
        (
            "blob",
            vec![0xde, 0xad, 0xbe, 0xef, 0xff, 0xff, 0xff, 0xff, 0, 1, 2],
            vec!["unrecognised binary data (starting de ad be ef"],
        ),
    ];
    for (name, bytes, needles) in cases {
        let p = t.path().join(name);
        fs::write(&p, &bytes).unwrap();
        let o = ckptconv([Path::new("inspect"), &p]);
        assert_clean_failure(&o, &needles);
        let err = stderr(&o);
        assert!(err.lines().count() == 1, "{name}: {err}");
        if !name.ends_with(".meta") {
            assert!(
                !err.contains(".index"),
                "{name}: never a missing index: {err}"
            );
        }
        fs::remove_file(&p).unwrap();
    }
    // A NumPy .npz (a zip of .npy members).
    let npz = t.path().join("arrays.npz");
    {
        let mut z = zip::ZipWriter::new(fs::File::create(&npz).unwrap());
        z.start_file("a.npy", zip::write::SimpleFileOptions::default())
            .unwrap();
        std::io::Write::write_all(&mut z, b"\x93NUMPY").unwrap();
        z.finish().unwrap();
    }
    assert_clean_failure(&ckptconv([Path::new("inspect"), &npz]), &["NumPy .npz"]);
}
