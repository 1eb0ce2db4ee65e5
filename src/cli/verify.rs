//! `ckptconv verify INPUT...`: read everything, check every checksum and bound.

use std::path::Path;

use serde_json::json;

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
    pub tensors: usize,
    pub bytes: u64,
    pub problems: Vec<Error>,
}

/// Verify one input: open it and read every tensor.
pub fn verify_path(path: &Path, read: crate::formats::ReadOptions) -> Report {
    match crate::formats::open_with(path, read) {
        Err(e) => Report {
            tensors: 0,
            bytes: 0,
            problems: vec![e],
        },
        Ok(src) => {
            let problems = src.verify();
            Report {
                tensors: src.tensors().len(),
                bytes: src.tensors().iter().map(|t| t.byte_len).sum(),
                problems,
            }
        }
    }
}

pub(crate) fn run(args: &VerifyArgs, read: crate::formats::ReadOptions) -> Result<u8> {
    let mut failed = 0usize;
    let mut docs = Vec::new();
    for input in &args.inputs {
        let r = verify_path(input, read);
        if !r.problems.is_empty() {
            failed += 1;
        }
        if args.json {
            docs.push(json!({
                "input": input.display().to_string(),
                "ok": r.problems.is_empty(),
                "tensors": r.tensors,
                "bytes": r.bytes,
                "problems": r.problems.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
            }));
        } else if r.problems.is_empty() {
            println!(
                "{}: ok ({} tensors, {})",
                input.display(),
                thousands(r.tensors as u64),
                human_bytes(r.bytes)
            );
        } else {
            for p in &r.problems {
                println!("{}: FAILED: {p}", input.display());
            }
        }
    }
    if args.json {
        let doc = json!({ "ok": failed == 0, "inputs": docs });
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).expect("JSON of plain values")
        );
    } else if args.inputs.len() > 1 {
        eprintln!(
            "verified {} inputs: {} ok, {} failed",
            args.inputs.len(),
            args.inputs.len() - failed,
            failed
        );
    }
    Ok(if failed == 0 { 0 } else { 1 })
}
