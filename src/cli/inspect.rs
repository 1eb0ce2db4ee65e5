//! `ckptconv inspect INPUT [--json]`: list tensors without reading their data.

use serde_json::{json, Value};

use super::output::{human_bytes, shape, table, thousands, Align};
use super::InspectArgs;
use crate::dtype::DType;
use crate::error::Result;
use crate::tensor::TensorSource;

pub(crate) const AFTER_HELP: &str = "\
Lists every tensor under the file's own key (what tf.train.list_variables or h5py shows),
with its dtype (TensorFlow's names), shape and size in bytes. Partitioned variables are
listed once, under their full name. Tensor data is not read (except the object graph of
a TF2 checkpoint, for variable names): use
`ckptconv verify` to check the data.

Examples:
  ckptconv inspect model.ckpt
  ckptconv inspect model.ckpt.index --json | jq '.tensors[].name'";

/// Totals over a listing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub tensors: u64,
    /// Elements of numeric tensors.
    pub parameters: u64,
    pub bytes: u64,
}

/// Sum up the tensors of a source.
pub fn totals(src: &dyn TensorSource) -> Totals {
    let mut t = Totals::default();
    for info in src.tensors() {
        t.tensors += 1;
        if info.dtype != DType::String {
            t.parameters = t
                .parameters
                .saturating_add(info.num_elements().unwrap_or(0));
        }
        t.bytes = t.bytes.saturating_add(info.byte_len);
    }
    t
}

/// The `--json` document.
pub fn to_json(src: &dyn TensorSource) -> Value {
    let tensors: Vec<Value> = src
        .tensors()
        .iter()
        .map(|t| {
            let mut o = json!({
                "name": t.name,
                "dtype": t.dtype.name(),
                "shape": t.shape,
                "bytes": t.byte_len,
                "variable": t.variable,
            });
            if let Some(s) = t.shard {
                o["shard"] = json!(s);
            }
            if t.slices > 0 {
                o["slices"] = json!(t.slices);
            }
            if let Some(p) = &t.object_path {
                o["object_path"] = json!(p);
            }
            o
        })
        .collect();
    let tot = totals(src);
    json!({
        "format": src.format().name(),
        "path": src.path().display().to_string(),
        "tensors": tensors,
        "totals": {
            "tensors": tot.tensors,
            "parameters": tot.parameters,
            "bytes": tot.bytes,
        },
    })
}

/// The human table.
pub fn to_text(src: &dyn TensorSource) -> String {
    let tensors = src.tensors();
    let show_var = tensors.iter().any(|t| t.variable != t.name);
    let show_shard = tensors
        .iter()
        .any(|t| t.shard.unwrap_or(0) != 0 || t.slices > 0);
    let mut header = vec!["NAME", "DTYPE", "SHAPE", "BYTES"];
    let mut align = vec![Align::Left, Align::Left, Align::Left, Align::Right];
    if show_shard {
        header.push("SHARD");
        align.push(Align::Right);
    }
    if show_var {
        header.push("VARIABLE");
        align.push(Align::Left);
    }
    let rows: Vec<Vec<String>> = tensors
        .iter()
        .map(|t| {
            let mut r = vec![
                t.name.clone(),
                t.dtype.name().to_string(),
                shape(&t.shape),
                thousands(t.byte_len),
            ];
            if show_shard {
                r.push(match (t.shard, t.slices) {
                    (Some(s), 0) => s.to_string(),
                    (Some(s), n) => format!("{s} ({n} slices)"),
                    (None, n) => format!("* ({n} slices)"),
                });
            }
            if show_var {
                r.push(t.variable.clone());
            }
            r
        })
        .collect();
    let tot = totals(src);
    let mut out = format!("{} ({})\n", src.path().display(), src.format().name());
    out.push_str(&table(&header, &align, &rows));
    out.push_str(&format!(
        "{} tensors, {} parameters, {} ({} bytes)\n",
        thousands(tot.tensors),
        thousands(tot.parameters),
        human_bytes(tot.bytes),
        thousands(tot.bytes)
    ));
    out
}

pub(crate) fn run(args: &InspectArgs) -> Result<u8> {
    let src = crate::formats::open(&args.input)?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&to_json(src.as_ref())).expect("JSON of plain values")
        );
    } else {
        print!("{}", to_text(src.as_ref()));
    }
    Ok(0)
}
