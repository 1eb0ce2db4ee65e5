//! `ckptconv inspect INPUT [--json]`: list tensors without reading their data.

use serde_json::{json, Value};

use super::json::{Schema, Style, Unknown};
use super::output::{human_bytes, shape, table, thousands, Align};
use super::InspectArgs;
use crate::dtype::DType;
use crate::error::Result;
use crate::tensor::TensorSource;

pub(crate) const AFTER_HELP: &str = "\
Lists every tensor under the file's own key (what tf.train.list_variables or
h5py shows), with its dtype (TensorFlow's names), shape and size in bytes.
Partitioned variables are listed once, under their full name. Tensor data is
not read (except the object graph of a TF2 checkpoint, for variable names):
use `ckptconv verify` to check the data.
For a TF1 checkpoint with a .meta graph, variables the graph has and the
checkpoint lacks are listed after the totals.

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

/// One tensor's entry in the `--json` document.
fn tensor_json(t: &crate::tensor::TensorInfo) -> Value {
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
}

/// `inspect --json`'s own keys (docs/json.md).
pub(crate) const JSON: Schema = Schema {
    command: "inspect",
    keys: &[
        ("format", Unknown::Null),
        ("path", Unknown::Null),
        ("tensors", Unknown::List),
        ("graph_only_variables", Unknown::Null),
        ("totals", Unknown::Null),
    ],
    style: Style::Pretty,
};

/// Write the `--json` document for `input` (as given), one tensor at a time: its size is
/// the file's tensor count times a line, never held in memory whole (a file of 10^6
/// tensors is ~100 MB of JSON).
pub fn write_json(
    input: &str,
    src: &dyn TensorSource,
    w: &mut impl std::io::Write,
) -> std::io::Result<()> {
    let tot = totals(src);
    let graph_only = src.tf1_graph().map(|g| g.missing_from(src.tensors()));
    let doc = JSON.object(
        input,
        json!({
            "format": src.format().name(),
            "path": src.path().display().to_string(),
            // Streamed below.
            "tensors": [],
            "graph_only_variables": graph_only,
            "totals": {"tensors": tot.tensors, "parameters": tot.parameters, "bytes": tot.bytes},
        }),
        None,
    );
    let doc = doc.as_object().expect("an object");
    writeln!(w, "{{")?;
    for (k, (key, value)) in doc.iter().enumerate() {
        let comma = if k + 1 < doc.len() { "," } else { "" };
        let key = serde_json::to_string(key).expect("JSON of a string");
        if key != "\"tensors\"" {
            writeln!(w, "  {key}: {value}{comma}")?;
            continue;
        }
        writeln!(w, "  {key}: [")?;
        let n = src.tensors().len();
        for (i, t) in src.tensors().iter().enumerate() {
            let line = serde_json::to_string(&tensor_json(t)).expect("JSON of plain values");
            writeln!(w, "    {line}{}", if i + 1 < n { "," } else { "" })?;
        }
        writeln!(w, "  ]{comma}")?;
    }
    writeln!(w, "}}")
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
    if let Some(g) = src.tf1_graph() {
        let missing = g.missing_from(src.tensors());
        if !missing.is_empty() {
            out.push_str(&format!(
                "In the .meta graph but not in the checkpoint ({}): {}\n",
                missing.len(),
                missing.join(", ")
            ));
        }
    }
    out
}

pub(crate) fn run(args: &InspectArgs, read: crate::formats::ReadOptions) -> Result<u8> {
    let input = args.input.display().to_string();
    let src = match crate::formats::open_with(&args.input, read) {
        Ok(src) => src,
        Err(e) if args.json => {
            JSON.print_failure(&input, Value::Null, &e);
            return Ok(crate::cli::exit_code(&e));
        }
        Err(e) => return Err(e),
    };
    if args.json {
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        write_json(&input, src.as_ref(), &mut out)
            .and_then(|()| std::io::Write::flush(&mut out))
            .map_err(|e| crate::Error::io("stdout", "write", e))?;
    } else {
        print!("{}", to_text(src.as_ref()));
    }
    Ok(0)
}
