//! `ckptconv show INPUT TENSOR`: a tensor's values (see [`crate::show`]).

use std::io::Write;

use serde_json::json;

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

pub(crate) fn run(args: &ShowArgs, read: crate::formats::ReadOptions) -> Result<u8> {
    let src = crate::formats::open_with(&args.input, read)?;
    let index = src.find(&args.tensor).ok_or_else(|| {
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
    })?;
    let t = &src.tensors()[index];
    let mut out = std::io::stdout().lock();
    let werr = |e| Error::io("stdout", "write", e);
    if args.json {
        let mut doc = json!({
            "name": t.name,
            "dtype": t.dtype.name(),
            "shape": t.shape,
        });
        if args.stats {
            doc["stats"] = serde_json::to_value(crate::show::stats(src.as_ref(), index)?)
                .expect("plain values");
        } else {
            doc["values"] = crate::show::json_tensor(src.as_ref(), index, args.limit)?;
        }
        writeln!(out, "{doc}").map_err(werr)?;
        return Ok(0);
    }
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
