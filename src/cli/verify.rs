//! `ckptconv verify INPUT...`: read everything, check every checksum and bound.

use std::path::Path;

use serde_json::json;

use super::json::{error_json, Schema, Style, Unknown};
use super::output::{human_bytes, thousands};
use super::VerifyArgs;
use crate::error::{Error, Result};

pub(crate) const AFTER_HELP: &str = "\
Reads every tensor of every input: block checksums of the index, every
tensor's crc32c, string length checksums, offsets and sizes against the data
files, partitioned-variable slices. Prints one line per input (`ok`, or one
line per problem, each naming the file and the tensor) and exits 0 only if
every input is good, else 1.

Examples:
  ckptconv verify model.ckpt
  ckptconv verify runs/*/checkpoint && echo all good";

/// The outcome of verifying one input.
#[derive(Debug)]
pub struct Report {
    /// The input's format and the file read, when it could be opened.
    pub format: Option<&'static str>,
    pub path: Option<std::path::PathBuf>,
    pub tensors: usize,
    pub bytes: u64,
    pub problems: Vec<Error>,
}

/// Verify one input: open it and read every tensor.
pub fn verify_path(path: &Path, read: crate::formats::ReadOptions) -> Report {
    match crate::formats::open_with(path, read) {
        Err(e) => Report {
            format: None,
            path: None,
            tensors: 0,
            bytes: 0,
            problems: vec![e],
        },
        Ok(src) => {
            let problems = src.verify();
            Report {
                format: Some(src.format().name()),
                path: Some(src.path().to_path_buf()),
                tensors: src.tensors().len(),
                bytes: src.tensors().iter().map(|t| t.byte_len).sum(),
                problems,
            }
        }
    }
}

/// `verify --json`'s own keys (docs/json.md).
pub(crate) const JSON: Schema = Schema {
    command: "verify",
    keys: &[
        ("format", Unknown::Null),
        ("path", Unknown::Null),
        ("tensors", Unknown::Null),
        ("bytes", Unknown::Null),
        ("problems", Unknown::List),
    ],
    style: Style::Line,
};

/// One input's `--json` line: `error` is its first problem, `problems` all of them.
fn report_json(input: &Path, r: &Report) -> serde_json::Value {
    let problems: Vec<serde_json::Value> = r.problems.iter().map(error_json).collect();
    let mut own = json!({ "problems": problems });
    if let Some(path) = &r.path {
        own["format"] = json!(r.format);
        own["path"] = json!(path.display().to_string());
        own["tensors"] = json!(r.tensors);
        own["bytes"] = json!(r.bytes);
    }
    JSON.object_with(&input.display().to_string(), own, problems.first().cloned())
}

pub(crate) fn run(args: &VerifyArgs, read: crate::formats::ReadOptions) -> Result<u8> {
    let mut failed = 0usize;
    for input in &args.inputs {
        let r = verify_path(input, read);
        if !r.problems.is_empty() {
            failed += 1;
        }
        if args.json {
            JSON.print(&report_json(input, &r))?;
            for e in &r.problems {
                eprintln!("ckptconv: error: {}", crate::error::chain(e));
            }
        } else if r.problems.is_empty() {
            println!(
                "{}: ok ({} tensors, {})",
                input.display(),
                thousands(r.tensors as u64),
                human_bytes(r.bytes)
            );
        } else {
            for p in &r.problems {
                println!("{}: FAILED: {}", input.display(), crate::error::chain(p));
            }
        }
    }
    if !args.json && args.inputs.len() > 1 {
        eprintln!(
            "verified {} inputs: {} ok, {} failed",
            args.inputs.len(),
            args.inputs.len() - failed,
            failed
        );
    }
    Ok(if failed == 0 { 0 } else { 1 })
}
