//! `ckptconv show INPUT TENSOR`: a tensor's values (see [`crate::show`]).

use std::io::Write;

use serde_json::json;

use super::json::{Schema, Style, Unknown};
use super::ShowArgs;
use crate::error::{Error, Result};

pub(crate) const AFTER_HELP: &str = "\
Prints a tensor's values as numpy prints an array (nested brackets, `...` where a
tensor of more than --limit elements is summarized), like inspect_checkpoint
--tensor_name or h5dump -d. Every value is written so that it reads back exactly:
floats in the shortest text that gives the same float32 / float16 / bfloat16,
integers in full, strings as Python bytes literals. Stored checksums are checked
first. TENSOR is a name as `inspect` lists it. --stats gives min, max, mean, std
and the NaN and Inf counts, computed a piece at a time.

Examples:
  ckptconv show model.ckpt dense/kernel
  ckptconv show model.h5 dense/dense/kernel:0 --limit 0      # every value
  ckptconv show model.safetensors encoder.weight --stats --json";

/// `show --json`'s own keys (docs/json.md).
pub(crate) const JSON: Schema = Schema {
    command: "show",
    keys: &[
        ("name", Unknown::Null),
        ("dtype", Unknown::Null),
        ("shape", Unknown::Null),
        ("values", Unknown::Null),
        ("stats", Unknown::Null),
    ],
    style: Style::Line,
};

pub(crate) fn run(args: &ShowArgs, read: crate::formats::ReadOptions) -> Result<u8> {
    if !args.json {
        return show(args, read);
    }
    // The tensor as asked for, until it is found.
    let mut known = json!({"name": args.tensor});
    match show_json(args, read, &mut known) {
        Ok(()) => Ok(0),
        Err(e) => {
            JSON.print_failure(&args.input.display().to_string(), known, &e);
            Ok(crate::cli::exit_code(&e))
        }
    }
}

/// `--json`: fills `known` as it learns the tensor; prints only on success.
fn show_json(
    args: &ShowArgs,
    read: crate::formats::ReadOptions,
    known: &mut serde_json::Value,
) -> Result<()> {
    let src = crate::formats::open_with(&args.input, read)?;
    let index = find(args, src.as_ref())?;
    let t = &src.tensors()[index];
    *known = json!({
        "name": t.name,
        "dtype": t.dtype.name(),
        "shape": t.shape,
    });
    if args.stats {
        known["stats"] =
            serde_json::to_value(crate::show::stats(src.as_ref(), index)?).expect("plain values");
        known["values"] = serde_json::Value::Null;
    } else {
        known["values"] = crate::show::json_tensor(src.as_ref(), index, args.limit)?;
        known["stats"] = serde_json::Value::Null;
    }
    let doc = JSON.object(
        &args.input.display().to_string(),
        std::mem::take(known),
        None,
    );
    JSON.print(&doc)
}

/// The index of the tensor `args` names, or a usage error naming near matches.
fn find(args: &ShowArgs, src: &dyn crate::tensor::TensorSource) -> Result<usize> {
    src.find(&args.tensor).ok_or_else(|| {
        let near: Vec<&str> = src
            .tensors()
            .iter()
            .map(|t| t.name.as_str())
            .filter(|n| n.contains(args.tensor.as_str()) || args.tensor.contains(*n))
            .take(5)
            .collect();
        let hint = if near.is_empty() {
            "`ckptconv inspect` lists the names".to_string()
        } else {
            format!("did you mean {}?", near.join(", "))
        };
        Error::Usage(format!(
            "{}: no tensor named {:?}; {hint}",
            args.input.display(),
            args.tensor
        ))
    })
}

fn show(args: &ShowArgs, read: crate::formats::ReadOptions) -> Result<u8> {
    let src = crate::formats::open_with(&args.input, read)?;
    let index = find(args, src.as_ref())?;
    let t = &src.tensors()[index];
    let mut out = std::io::stdout().lock();
    let werr = |e| Error::io("stdout", "write", e);
    // Everything is read (and checked) before the first line is printed.
    let body = if args.stats {
        let s = crate::show::stats(src.as_ref(), index)?;
        let opt = |v: Option<String>| v.unwrap_or_else(|| "-".into());
        let num = |v: Option<f64>| v.map_or_else(|| "-".into(), |x| format!("{x}"));
        format!(
            "count {}  min {}  max {}  mean {}  std {}  nan {}  inf {}",
            s.count,
            opt(s.min),
            opt(s.max),
            num(s.mean),
            num(s.std),
            s.nan,
            s.inf
        )
    } else {
        crate::show::format_tensor(src.as_ref(), index, args.limit)?
    };
    writeln!(
        out,
        "{} {} {}\n{body}",
        t.name,
        t.dtype.name(),
        super::output::shape(&t.shape)
    )
    .map_err(werr)?;
    Ok(0)
}
