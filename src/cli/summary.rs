//! `ckptconv summary INPUT [--json]`

use serde_json::{json, Value};

use super::output::{shape, table, thousands, Align};
use super::SummaryArgs;
use crate::error::Result;
use crate::summary::{keras_size, summarize, Count, Summary};
use crate::tensor::TensorSource;

pub(crate) const AFTER_HELP: &str = "\
Shows what model a weights file holds, the way Keras' model.summary() does:
each layer with its type and activation (when the file carries a model
config), its weights' shapes and its parameter count, then Keras' totals.
Optimizer state and counters are listed apart and not counted. Without a model
config (or, for a TF1 checkpoint, the trainable_variables of its .meta graph)
the trainable count cannot be known (a layer may have been frozen) and is
shown as unknown.

Examples:
  ckptconv summary model.h5
  ckptconv summary runs/exp1/ --json | jq .total_params";

fn count_json(c: Option<Count>) -> Value {
    match c {
        Some(c) => json!(c.params),
        None => Value::Null,
    }
}

/// The `--json` document.
pub fn to_json(src: &dyn TensorSource, s: &Summary) -> Value {
    json!({
        "format": src.format().name(),
        "path": src.path().display().to_string(),
        "layers": s.layers.iter().map(|l| json!({
            "name": l.name,
            "class_name": l.class_name,
            "activation": l.activation,
            "params": l.params(),
            "weights": l.weights.iter().map(|w| json!({
                "name": w.variable,
                "dtype": w.dtype.name(),
                "shape": w.shape,
                "params": w.params,
                "trainable": w.trainable,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "total_params": s.total.params,
        "total_bytes": s.total.bytes,
        "trainable_params": count_json(s.trainable),
        "non_trainable_params": count_json(s.non_trainable),
        "non_trainable_params_at_least": s.non_trainable_at_least.params,
        "optimizer_params": s.optimizer.params,
        "optimizer_tensors": s.optimizer_tensors,
        "counters": s.counters.iter().map(|(n, v)| json!({"name": n, "value": v})).collect::<Vec<_>>(),
    })
}

/// The human summary.
pub fn to_text(src: &dyn TensorSource, s: &Summary) -> String {
    let rows: Vec<Vec<String>> = s
        .layers
        .iter()
        .map(|l| {
            let title = match &l.class_name {
                Some(c) => format!("{} ({c})", l.name),
                None => l.name.clone(),
            };
            let prefix = format!("{}/", l.name);
            let weights: Vec<String> = l
                .weights
                .iter()
                .map(|w| {
                    let local = w.variable.strip_prefix(&prefix).unwrap_or(&w.variable);
                    format!("{local} {}", shape(&w.shape))
                })
                .collect();
            vec![
                title,
                l.activation.clone().unwrap_or_default(),
                weights.join(", "),
                thousands(l.params()),
            ]
        })
        .collect();
    let mut out = format!("{} ({})\n", src.path().display(), src.format().name());
    out.push_str(&table(
        &["Layer (type)", "Activation", "Weights", "Param #"],
        &[Align::Left, Align::Left, Align::Left, Align::Right],
        &rows,
    ));
    let line = |c: Count| format!("{} ({})", thousands(c.params), keras_size(c.bytes));
    out.push_str(&format!("Total params: {}\n", line(s.total)));
    match (s.trainable, s.non_trainable) {
        (Some(t), Some(n)) => {
            out.push_str(&format!("Trainable params: {}\n", line(t)));
            out.push_str(&format!("Non-trainable params: {}\n", line(n)));
        }
        _ => {
            let upto = Count {
                params: s.total.params - s.non_trainable_at_least.params,
                bytes: s.total.bytes - s.non_trainable_at_least.bytes,
            };
            out.push_str(&format!(
                "Trainable params: unknown (no model config; {} unless layers were frozen)\n",
                thousands(upto.params)
            ));
            out.push_str(&format!(
                "Non-trainable params: unknown (at least {})\n",
                line(s.non_trainable_at_least)
            ));
        }
    }
    if s.optimizer_tensors > 0 {
        out.push_str(&format!(
            "Optimizer state (not in the totals): {} tensors, {} params ({})\n",
            s.optimizer_tensors,
            thousands(s.optimizer.params),
            keras_size(s.optimizer.bytes)
        ));
    }
    if !s.counters.is_empty() {
        let c: Vec<String> = s
            .counters
            .iter()
            .map(|(n, v)| match v {
                Some(v) => format!("{n} = {v}"),
                None => n.clone(),
            })
            .collect();
        out.push_str(&format!("Counters (not in the totals): {}\n", c.join(", ")));
    }
    out
}

pub(crate) fn run(args: &SummaryArgs, read: crate::formats::ReadOptions) -> Result<u8> {
    let src = crate::formats::open_with(&args.input, read)?;
    let s = summarize(src.as_ref());
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&to_json(src.as_ref(), &s)).expect("JSON of plain values")
        );
    } else {
        print!("{}", to_text(src.as_ref(), &s));
    }
    Ok(0)
}
