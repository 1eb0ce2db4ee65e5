//! `--json` follows docs/json.md (issue 18): every command, on success and on failure,
//! prints objects with exactly the keys that page lists (its ```json-keys blocks), of
//! the types it gives, and the exit status it documents.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use common::{ckptconv, stderr, stdout, testdata};
use serde_json::Value;

/// A documented key: its name and the JSON types it may have.
type Keys = BTreeMap<String, Vec<String>>;

/// The ```json-keys NAME blocks of docs/json.md: NAME → its keys (first word of each
/// line) and their types (second word, `|`-separated).
fn documented() -> BTreeMap<String, Keys> {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/json.md"))
        .expect("docs/json.md");
    let mut out = BTreeMap::new();
    let mut current: Option<(String, Keys)> = None;
    for line in doc.lines() {
        if let Some(name) = line.strip_prefix("```json-keys ") {
            current = Some((name.trim().to_string(), Keys::new()));
        } else if line.starts_with("```") {
            if let Some((name, keys)) = current.take() {
                assert!(!keys.is_empty(), "empty json-keys block {name}");
                assert!(
                    out.insert(name.clone(), keys).is_none(),
                    "two blocks {name}"
                );
            }
        } else if let Some((name, keys)) = current.as_mut() {
            let mut words = line.split_whitespace();
            let (Some(key), Some(types)) = (words.next(), words.next()) else {
                panic!("json-keys {name}: a line without a type: {line:?}");
            };
            let types: Vec<String> = types.split('|').map(str::to_string).collect();
            for t in &types {
                assert!(
                    ["string", "integer", "number", "bool", "list", "object", "null"]
                        .contains(&t.as_str()),
                    "json-keys {name}: {key}: unknown type {t}"
                );
            }
            assert!(
                keys.insert(key.to_string(), types).is_none(),
                "json-keys {name}: {key} twice"
            );
        }
    }
    out
}

/// The error kinds docs/json.md's table lists.
fn documented_kinds() -> BTreeSet<String> {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/json.md"))
        .unwrap();
    let table = doc.split("### Errors").nth(1).expect("### Errors section");
    table
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_string)
        .collect()
}

fn type_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_u64() || n.is_i64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "object",
    }
}

/// The JSON values `out` holds: one indented document, or JSON Lines.
fn objects(out: &str) -> Vec<Value> {
    serde_json::Deserializer::from_str(out)
        .into_iter::<Value>()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{out}"))
}

/// What one run should print.
struct Case<'a> {
    command: &'a str,
    args: Vec<String>,
    /// Per object printed: `None` for success, `Some(kind)` for an error of that kind.
    want: Vec<Option<&'a str>>,
    exit: i32,
}

fn check(case: &Case<'_>) {
    let schema = documented();
    let envelope = &schema["envelope"];
    let own = schema
        .get(case.command)
        .unwrap_or_else(|| panic!("docs/json.md has no json-keys {} block", case.command));
    let kinds = documented_kinds();
    let o = ckptconv(&case.args);
    let (out, err) = (stdout(&o), stderr(&o));
    let ctx = format!("{:?}\nstdout:\n{out}\nstderr:\n{err}", case.args);
    assert_eq!(o.status.code(), Some(case.exit), "exit status: {ctx}");
    assert!(!err.contains("panicked"), "{ctx}");
    let docs = objects(&out);
    assert_eq!(docs.len(), case.want.len(), "objects printed: {ctx}");
    for (doc, want) in docs.iter().zip(&case.want) {
        let obj = doc
            .as_object()
            .unwrap_or_else(|| panic!("not an object: {ctx}"));
        let got: BTreeSet<&str> = obj.keys().map(String::as_str).collect();
        let documented: BTreeSet<&str> = envelope
            .keys()
            .chain(own.keys())
            .map(String::as_str)
            .collect();
        assert_eq!(got, documented, "keys of {doc}\n{ctx}");
        for (key, v) in obj {
            let types = envelope.get(key).or_else(|| own.get(key)).unwrap();
            assert!(
                types.iter().any(|t| t == type_of(v)),
                "{key}: {v} is {}, documented {types:?}\n{ctx}",
                type_of(v)
            );
        }
        assert_eq!(doc["command"], case.command, "{ctx}");
        assert!(doc["input"].is_string(), "{ctx}");
        assert_eq!(
            doc["ok"],
            doc["error"].is_null(),
            "ok is error == null: {ctx}"
        );
        match want {
            None => assert!(doc["error"].is_null(), "unexpected error in {doc}\n{ctx}"),
            Some(kind) => {
                let e = doc["error"].as_object().unwrap_or_else(|| panic!("{ctx}"));
                assert_eq!(
                    e.keys().map(String::as_str).collect::<Vec<_>>(),
                    ["kind", "message"],
                    "{ctx}"
                );
                assert_eq!(e["kind"], *kind, "{ctx}");
                assert!(kinds.contains(*kind), "kind {kind} not in docs/json.md");
                let msg = e["message"].as_str().unwrap();
                // The same message on stderr, for people.
                assert!(err.contains(&format!("ckptconv: error: {msg}")), "{ctx}");
                // A list the command did not get to fill is [], never null.
                for (key, types) in own {
                    if types == &["list"] {
                        assert!(doc[key].is_array(), "{key}: {ctx}");
                    }
                }
            }
        }
    }
}

fn s(p: impl AsRef<Path>) -> String {
    p.as_ref().display().to_string()
}

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|x| x.to_string()).collect()
}

struct Files {
    _dir: tempfile::TempDir,
    missing: String,
    corrupt: String,
    dir: std::path::PathBuf,
}

fn files() -> Files {
    let dir = tempfile::tempdir().unwrap();
    let corrupt = dir.path().join("corrupt.h5");
    let mut bytes = std::fs::read(testdata().join("keras2/weights.h5")).unwrap();
    bytes.truncate(100); // an HDF5 signature, then nothing
    std::fs::write(&corrupt, bytes).unwrap();
    Files {
        missing: s(dir.path().join("missing.h5")),
        corrupt: s(&corrupt),
        dir: dir.path().to_path_buf(),
        _dir: dir,
    }
}

#[test]
fn every_command_has_a_documented_key_block() {
    let schema = documented();
    let names: Vec<&str> = schema.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        ["convert", "diff", "envelope", "inspect", "show", "summary", "verify"]
    );
    assert_eq!(
        schema["envelope"].keys().collect::<Vec<_>>(),
        ["command", "error", "input", "ok"]
    );
    let kinds = documented_kinds();
    for k in [
        "corrupt",
        "unsupported",
        "not_found",
        "io",
        "usage",
        "exists",
        "interrupted",
    ] {
        assert!(kinds.contains(k), "{k}");
    }
}

#[test]
fn inspect() {
    let f = files();
    let meta = s(testdata().join("tf/tf1_meta"));
    let h5 = s(testdata().join("keras2/weights.h5"));
    for input in [&meta, &h5] {
        check(&Case {
            command: "inspect",
            args: args(&["inspect", "--json", input]),
            want: vec![None],
            exit: 0,
        });
    }
    check(&Case {
        command: "inspect",
        args: args(&["inspect", "--json", &f.missing]),
        want: vec![Some("not_found")],
        exit: 1,
    });
    check(&Case {
        command: "inspect",
        args: args(&["inspect", "--json", &f.corrupt]),
        want: vec![Some("corrupt")],
        exit: 1,
    });
}

#[test]
fn verify() {
    let f = files();
    let h5 = s(testdata().join("keras2/weights.h5"));
    let ckpt = s(testdata().join("tf/tf2_object"));
    check(&Case {
        command: "verify",
        args: args(&["verify", "--json", &h5, &ckpt]),
        want: vec![None, None],
        exit: 0,
    });
    check(&Case {
        command: "verify",
        args: args(&["verify", "--json", &h5, &f.missing, &f.corrupt]),
        want: vec![None, Some("not_found"), Some("corrupt")],
        exit: 1,
    });
}

#[test]
fn summary() {
    let f = files();
    for input in ["keras2/weights.h5", "keras3/model.keras", "tf/tf2_object"] {
        check(&Case {
            command: "summary",
            args: args(&["summary", "--json", &s(testdata().join(input))]),
            want: vec![None],
            exit: 0,
        });
    }
    check(&Case {
        command: "summary",
        args: args(&["summary", "--json", &f.corrupt]),
        want: vec![Some("corrupt")],
        exit: 1,
    });
}

#[test]
fn diff() {
    let f = files();
    let h5 = s(testdata().join("keras2/weights.h5"));
    let other = s(testdata().join("keras3/model.weights.h5"));
    // Same, different (still ok: the comparison worked), and a file that cannot be read.
    check(&Case {
        command: "diff",
        args: args(&["diff", "--json", &h5, &h5]),
        want: vec![None],
        exit: 0,
    });
    check(&Case {
        command: "diff",
        args: args(&["diff", "--json", &h5, &other]),
        want: vec![None],
        exit: 1,
    });
    check(&Case {
        command: "diff",
        args: args(&["diff", "--json", &h5, &f.missing]),
        want: vec![Some("not_found")],
        exit: 2,
    });
    check(&Case {
        command: "diff",
        args: args(&["diff", "--json", &f.corrupt, &h5]),
        want: vec![Some("corrupt")],
        exit: 2,
    });
}

#[test]
fn show() {
    let f = files();
    let ckpt = s(testdata().join("tf/tf1_saver"));
    for extra in [&[][..], &["--stats"][..]] {
        let mut a = args(&["show", "--json", &ckpt, "dtypes/int8"]);
        a.extend(args(extra));
        check(&Case {
            command: "show",
            args: a,
            want: vec![None],
            exit: 0,
        });
    }
    check(&Case {
        command: "show",
        args: args(&["show", "--json", &ckpt, "no/such/tensor"]),
        want: vec![Some("usage")],
        exit: 2,
    });
    check(&Case {
        command: "show",
        args: args(&["show", "--json", &f.missing, "x"]),
        want: vec![Some("not_found")],
        exit: 1,
    });
}

#[test]
fn convert() {
    let f = files();
    let h5 = s(testdata().join("keras2/weights.h5"));
    let out = s(f.dir.join("out.safetensors"));
    check(&Case {
        command: "convert",
        args: args(&["convert", "--json", &h5, "-o", &out]),
        want: vec![None],
        exit: 0,
    });
    // The output is there now: refused, or skipped.
    check(&Case {
        command: "convert",
        args: args(&["convert", "--json", &h5, "-o", &out]),
        want: vec![Some("exists")],
        exit: 1,
    });
    check(&Case {
        command: "convert",
        args: args(&["convert", "--json", &h5, "-o", &out, "--skip-existing"]),
        want: vec![None],
        exit: 0,
    });
    // A refused conversion: a template of another model.
    let like = s(testdata().join("keras3/model.weights.h5"));
    check(&Case {
        command: "convert",
        args: args(&[
            "convert",
            "--json",
            &h5,
            "-o",
            &s(f.dir.join("z.weights.h5")),
            "--like",
            &like,
        ]),
        want: vec![Some("unsupported")],
        exit: 1,
    });
    // An input-specific usage error prints its line too.
    check(&Case {
        command: "convert",
        args: args(&[
            "convert",
            "--json",
            &h5,
            "-o",
            &s(f.dir.join("none.safetensors")),
            "--include",
            "nomatch*",
        ]),
        want: vec![Some("usage")],
        exit: 2,
    });
    // Names an HDF5 file cannot hold (a dataset at "net/dense/bias" and another inside
    // it, as `kernel` and `kernel/Momentum` of any TF1 training checkpoint): made by the
    // user's --rename, a usage error; as the input has them, the input's (unsupported).
    let ckpt = s(testdata().join("tf/tf1_saver/model.ckpt"));
    let nested = s(f.dir.join("nested.safetensors"));
    let into_bias = "^net/dense/kernel$=net/dense/bias/kernel";
    for (input, rename, kind, exit) in [
        (&ckpt, Some(into_bias), None, 0),
        (&ckpt, Some(into_bias), Some("usage"), 2),
        (&nested, None, Some("unsupported"), 1),
    ] {
        let out = match kind {
            None => nested.clone(),
            Some(k) => s(f.dir.join(format!("flat-{k}.h5"))),
        };
        let mut a = args(&["convert", "--json", input, "-o", &out]);
        if kind.is_some() {
            a.extend(args(&["--layout", "flat"]));
        }
        if let Some(r) = rename {
            a.extend(args(&["--rename", r]));
        }
        check(&Case {
            command: "convert",
            args: a,
            want: vec![kind],
            exit,
        });
        assert!(kind.is_none() || !Path::new(&out).exists(), "{out} written");
    }
    // The input's fault names the input and the tensor, and says what to pass.
    let o = ckptconv([
        "convert",
        &nested,
        "-o",
        &s(f.dir.join("flat.h5")),
        "--layout",
        "flat",
    ]);
    let err = stderr(&o);
    for needle in [
        nested.as_str(),
        "tensor \"net/dense/bias/kernel\"",
        "--rename",
        "--exclude",
        ".safetensors",
    ] {
        assert!(err.contains(needle), "{needle:?} in {err}");
    }
    // Many inputs: one line each, in the order they finish (one job: the given order).
    check(&Case {
        command: "convert",
        args: args(&[
            "convert",
            "--json",
            "-j",
            "1",
            &h5,
            &f.missing,
            &f.corrupt,
            "--out-dir",
            &s(f.dir.join("batch")),
            "--to",
            "safetensors",
        ]),
        want: vec![None, Some("not_found"), Some("corrupt")],
        exit: 1,
    });
}

/// Errors in the arguments themselves print no JSON (docs/json.md).
#[test]
fn argument_errors_print_no_json() {
    let h5 = s(testdata().join("keras2/weights.h5"));
    for a in [
        args(&["inspect", "--json", "--bogus", &h5]),
        args(&["convert", "--json", &h5, &h5, "-o", "x.safetensors"]),
        args(&["convert", "--json", &h5, "--out-dir", "x"]),
        args(&["inspect", "--json", "--max-alloc", "lots", &h5]),
    ] {
        let o = ckptconv(&a);
        assert_eq!(o.status.code(), Some(2), "{a:?}: {}", stderr(&o));
        assert!(stdout(&o).is_empty(), "{a:?}: {}", stdout(&o));
    }
}

/// The example outputs in docs/json.md parse, and have their command's documented keys.
#[test]
fn documented_examples_have_the_documented_keys() {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/json.md"))
        .unwrap();
    let schema = documented();
    // Every example output block parses, and each object's keys are its command's.
    let mut seen = 0;
    for block in doc.split("```console\n").skip(1) {
        let block = block.split("\n```").next().unwrap();
        let mut text = String::new();
        let mut flush = |text: &mut String| {
            if text.trim().is_empty() {
                return;
            }
            // `"layers": [ … ]` stands for rows cut out.
            let t = text.replace("[ … ]", "[]");
            for v in objects(&t) {
                let cmd = v["command"].as_str().unwrap().to_string();
                let want: BTreeSet<&String> = schema["envelope"]
                    .keys()
                    .chain(schema[&cmd].keys())
                    .collect();
                let got: BTreeSet<&String> = v.as_object().unwrap().keys().collect();
                assert_eq!(got, want, "docs/json.md example of {cmd}");
                seen += 1;
            }
            text.clear();
        };
        for line in block.lines() {
            if line.starts_with("$ ") {
                flush(&mut text);
            } else {
                text.push_str(line);
                text.push('\n');
            }
        }
        flush(&mut text);
    }
    assert!(seen >= 12, "{seen} examples");
}
