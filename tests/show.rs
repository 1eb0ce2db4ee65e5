//! `ckptconv show`: the values it prints equal what TensorFlow's `get_tensor` returned
//! for the same checkpoint (testdata/tf/*/expected.json, recorded by the generator), for
//! every dtype, read back from both the text and the JSON output.

mod common;

use common::{ckptconv, stderr, stdout, testdata, unhex};
use serde_json::Value;

/// Parse a Python bytes literal as `show` writes it.
fn unrepr(s: &str) -> Vec<u8> {
    let body = &s[2..s.len() - 1];
    let mut out = Vec::new();
    let b = body.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            match b[i + 1] {
                b'x' => {
                    out.push(u8::from_str_radix(&body[i + 2..i + 4], 16).unwrap());
                    i += 4;
                    continue;
                }
                b'n' => out.push(b'\n'),
                b't' => out.push(b'\t'),
                b'r' => out.push(b'\r'),
                c => out.push(c),
            }
            i += 2;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

fn num(v: &Value) -> f64 {
    match v {
        Value::Number(n) => n.as_f64().unwrap(),
        Value::String(s) => s.parse().unwrap(),
        other => panic!("not a number: {other}"),
    }
}

/// The little-endian bytes of the flat list of JSON values, as dtype `dtype`.
fn encode(dtype: &str, vals: &[Value]) -> Vec<u8> {
    let mut out = Vec::new();
    for v in vals {
        match dtype {
            "float32" => out.extend((num(v) as f32).to_le_bytes()),
            "float64" => out.extend(num(v).to_le_bytes()),
            "float16" => out.extend(half::f16::from_f64(num(v)).to_le_bytes()),
            "bfloat16" => out.extend(half::bf16::from_f64(num(v)).to_le_bytes()),
            "complex64" => {
                out.extend((num(&v[0]) as f32).to_le_bytes());
                out.extend((num(&v[1]) as f32).to_le_bytes());
            }
            "complex128" => {
                out.extend(num(&v[0]).to_le_bytes());
                out.extend(num(&v[1]).to_le_bytes());
            }
            "bool" => out.push(v.as_bool().unwrap() as u8),
            "int8" => out.extend((v.as_i64().unwrap() as i8).to_le_bytes()),
            "uint8" => out.extend((v.as_u64().unwrap() as u8).to_le_bytes()),
            "int16" => out.extend((v.as_i64().unwrap() as i16).to_le_bytes()),
            "uint16" => out.extend((v.as_u64().unwrap() as u16).to_le_bytes()),
            "int32" => out.extend((v.as_i64().unwrap() as i32).to_le_bytes()),
            "uint32" => out.extend((v.as_u64().unwrap() as u32).to_le_bytes()),
            "int64" => out.extend(v.as_i64().unwrap().to_le_bytes()),
            "uint64" => out.extend(v.as_u64().unwrap().to_le_bytes()),
            other => panic!("dtype {other}"),
        }
    }
    out
}

fn flatten(v: &Value, out: &mut Vec<Value>) {
    match v {
        Value::Array(items) => {
            for x in items {
                flatten(x, out);
            }
        }
        other => out.push(other.clone()),
    }
}

/// Complex values are `[re, im]` pairs: flatten to pairs, not numbers.
fn flatten_complex(v: &Value, out: &mut Vec<Value>) {
    match v {
        Value::Array(items) if items.len() == 2 && items.iter().all(|x| !x.is_array()) => {
            out.push(v.clone())
        }
        Value::Array(items) => {
            for x in items {
                flatten_complex(x, out);
            }
        }
        other => panic!("{other}"),
    }
}

/// The text output's values in order: tokens between brackets and spaces.
fn text_tokens(text: &str) -> Vec<String> {
    let body = text.split_once('\n').unwrap().1;
    let mut toks = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut prev = '\0';
    for c in body.chars() {
        if let Some(q) = quote {
            cur.push(c);
            if c == q && prev != '\\' {
                quote = None;
            }
            prev = if prev == '\\' && c == '\\' { '\0' } else { c };
            continue;
        }
        match c {
            '[' | ']' | ' ' | '\n' => {
                if !cur.is_empty() {
                    toks.push(std::mem::take(&mut cur));
                }
            }
            '\'' | '"' if cur == "b" => {
                quote = Some(c);
                cur.push(c);
                prev = c;
            }
            _ => cur.push(c),
        }
    }
    if !cur.is_empty() {
        toks.push(cur);
    }
    toks
}

#[test]
fn show_prints_what_tensorflow_read_for_every_dtype() {
    let dir = testdata().join("tf/tf1_saver");
    let expected: Value =
        serde_json::from_slice(&std::fs::read(dir.join("expected.json")).unwrap()).unwrap();
    let mut checked = 0;
    for v in expected["variables"].as_array().unwrap() {
        let name = v["name"].as_str().unwrap();
        let dtype = v["dtype"].as_str().unwrap();
        let o = ckptconv([
            "show",
            dir.to_str().unwrap(),
            name,
            "--json",
            "--limit",
            "0",
        ]);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        let doc: Value = serde_json::from_str(&stdout(&o)).unwrap();
        assert_eq!(doc["dtype"], dtype);
        let text = ckptconv(["show", dir.to_str().unwrap(), name, "--limit", "0"]);
        assert!(text.status.success());
        let tokens = text_tokens(&stdout(&text));
        if dtype == "string" {
            let want: Vec<Vec<u8>> = v["strings"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| unhex(h.as_str().unwrap()))
                .collect();
            let mut got = Vec::new();
            flatten(&doc["values"], &mut got);
            let got: Vec<Vec<u8>> = got.iter().map(|s| unrepr(s.as_str().unwrap())).collect();
            assert_eq!(got, want, "{name} (json)");
            let from_text: Vec<Vec<u8>> = tokens.iter().map(|s| unrepr(s)).collect();
            assert_eq!(from_text, want, "{name} (text)");
        } else {
            let want = unhex(v["hex"].as_str().unwrap());
            let mut vals = Vec::new();
            if dtype.starts_with("complex") {
                flatten_complex(&doc["values"], &mut vals);
            } else {
                flatten(&doc["values"], &mut vals);
            }
            assert_eq!(encode(dtype, &vals), want, "{name} (json)");
            // The text: parse each token as the JSON value it stands for.
            let as_json: Vec<Value> = tokens
                .iter()
                .map(|t| match dtype {
                    "bool" => Value::Bool(t == "True"),
                    d if d.starts_with("complex") => {
                        let t = t.trim_end_matches('j');
                        let cut = t
                            .char_indices()
                            .skip(1)
                            .filter(|&(i, c)| (c == '+' || c == '-') && !t[..i].ends_with('e'))
                            .map(|(i, _)| i)
                            .last()
                            .unwrap();
                        serde_json::json!([
                            t[..cut].to_string(),
                            t[cut..].trim_start_matches('+').to_string()
                        ])
                    }
                    d if d.starts_with("float") || d == "bfloat16" => Value::String(t.clone()),
                    _ => serde_json::from_str(t).unwrap(),
                })
                .collect();
            assert_eq!(encode(dtype, &as_json), want, "{name} (text: {tokens:?})");
        }
        checked += 1;
    }
    assert!(checked >= 20, "{checked}");
}

#[test]
fn large_tensors_are_summarized_and_stats_stream() {
    let t = tempfile::tempdir().unwrap();
    let a = t.path().join("a.safetensors");
    common::big_safetensors(&a, 1, 1);
    let o = ckptconv(["show", a.to_str().unwrap(), "t0000"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = stdout(&o);
    assert!(s.contains(" ... "), "{s}");
    assert!(s.lines().count() <= 3, "{s}");
    let o = ckptconv(["show", a.to_str().unwrap(), "t0000", "--stats", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let doc: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(doc["stats"]["count"], 262_144);
    assert_eq!(doc["stats"]["nan"], 0);
    // A name that is not there is a usage error that points at inspect.
    let o = ckptconv(["show", a.to_str().unwrap(), "t00"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("t0000"), "{}", stderr(&o));
}

#[test]
fn show_of_a_corrupt_tensor_fails_instead_of_printing_wrong_values() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("ckpt");
    common::copy_dir(&testdata().join("tf/tf1_saver"), &dir);
    let data = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains(".data-"))
        .unwrap();
    let mut bytes = std::fs::read(&data).unwrap();
    for b in bytes.iter_mut() {
        *b ^= 0x55;
    }
    std::fs::write(&data, bytes).unwrap();
    let o = ckptconv(["show", dir.to_str().unwrap(), "net/dense/kernel"]);
    common::assert_clean_failure(&o, &["net/dense/kernel", "checksum mismatch"]);
    assert!(
        stdout(&o).is_empty(),
        "printed before the check: {}",
        stdout(&o)
    );
}
