//! `ckptconv summary INPUT [--json] [--explain]`

use serde_json::{json, Value};

use super::json::{Schema, Style, Unknown};
use super::output::{shape, table, thousands, Align};
use super::SummaryArgs;
use crate::error::Result;
use crate::keras::explain;
use crate::keras::shapes::{self, Flavour, RowShape};
use crate::summary::{count_for, keras_size, size_for, summarize, Count, LayerLine, Summary};
use crate::tensor::TensorSource;

pub(crate) const AFTER_HELP: &str = "\
Shows what model a weights file holds, the way Keras' model.summary() does. When the file
carries a model config (a full-model .h5, a .keras, Keras 3's legacy .h5, a tf-keras
SavedModel), the rows are Keras' own: each layer's name and type, its output shape
(computed from the config; '?' where it cannot be, with the reason in --json) and Param #,
with the model name and the totals in the words of the Keras that wrote the file. After a
'|' come ckptconv's own columns: activation and weight shapes. Optimizer state and counters
are listed apart. Without a model config there are no output shapes and the trainable
count cannot be known (a layer may have been frozen): it is shown as unknown.

--explain adds, for each layer, the formula that gives its Param # from its weight shapes
(Dense: units·(inputs+1); Conv2D: filters·(channels·kh·kw+1); ...).

Examples:
  ckptconv summary model.h5
  ckptconv summary model.keras --explain
  ckptconv summary runs/exp1/ --json | jq .total_params";

fn count_json(c: Option<Count>) -> Value {
    match c {
        Some(c) => json!(c.params),
        None => Value::Null,
    }
}

fn flavour_name(f: Option<Flavour>) -> Value {
    match f {
        Some(Flavour::TfKeras) => json!("tf-keras"),
        Some(Flavour::Keras3) => json!("keras3"),
        None => Value::Null,
    }
}

/// A layer's weights as the formula sees them.
fn formula(l: &LayerLine) -> String {
    let prefix = format!("{}/", l.name);
    let ws: Vec<explain::W<'_>> = l
        .weights
        .iter()
        .map(|w| explain::W {
            local: w.variable.strip_prefix(&prefix).unwrap_or(&w.variable),
            shape: &w.shape,
        })
        .collect();
    explain::formula(l.class_name.as_deref(), &ws, l.params())
}

fn shape_json(l: &LayerLine) -> (Value, Value) {
    let Some(row) = &l.shape else {
        return (Value::Null, json!("the file carries no model config"));
    };
    match &row.shape {
        RowShape::Known(o) => {
            let each: Vec<Value> = o.shapes.iter().map(|s| json!(s)).collect();
            if o.list {
                (Value::Array(each), Value::Null)
            } else {
                (each.into_iter().next().unwrap_or(Value::Null), Value::Null)
            }
        }
        RowShape::Multiple => (
            Value::Null,
            json!("called several times with different shapes"),
        ),
        RowShape::Unknown(why) => (Value::Null, json!(why)),
    }
}

/// The Output Shape column as the file's Keras prints it; `None` without a config.
fn shape_text(l: &LayerLine, f: Option<Flavour>) -> Option<String> {
    Some(shapes::format_row(l.shape.as_ref()?, f?))
}

/// `summary --json`'s own keys (docs/json.md).
pub(crate) const JSON: Schema = Schema {
    command: "summary",
    keys: &[
        ("format", Unknown::Null),
        ("path", Unknown::Null),
        ("model_name", Unknown::Null),
        ("keras_flavour", Unknown::Null),
        ("layer_order", Unknown::Null),
        ("layers", Unknown::List),
        ("total_params", Unknown::Null),
        ("total_bytes", Unknown::Null),
        ("trainable_params", Unknown::Null),
        ("non_trainable_params", Unknown::Null),
        ("non_trainable_params_at_least", Unknown::Null),
        ("optimizer_params", Unknown::Null),
        ("optimizer_bytes", Unknown::Null),
        ("optimizer_tensors", Unknown::Null),
        ("duplicate_tensors", Unknown::Null),
        ("seed_generator_params", Unknown::Null),
        ("seed_generator_tensors", Unknown::Null),
        ("counters", Unknown::List),
    ],
    style: Style::Pretty,
};

/// The `--json` document for `input` (as given).
pub fn to_json(input: &str, src: &dyn TensorSource, s: &Summary) -> Value {
    let own = json!({
        "format": src.format().name(),
        "path": src.path().display().to_string(),
        "model_name": s.model_name,
        "keras_flavour": flavour_name(s.flavour),
        "layer_order": s.order_note,
        "layers": s.layers.iter().map(|l| {
            let (shape, why) = shape_json(l);
            json!({
                "name": l.name,
                "class_name": l.class_name,
                "activation": l.activation,
                "output_shape": shape,
                "output_shape_unknown": why,
                "output_shape_text": shape_text(l, s.flavour),
                "params": l.params(),
                "formula": formula(l),
                "weights": l.weights.iter().map(|w| json!({
                    "name": w.variable,
                    "dtype": w.dtype.name(),
                    "shape": w.shape,
                    "params": w.params,
                    "trainable": w.trainable,
                })).collect::<Vec<_>>(),
            })
        }).collect::<Vec<_>>(),
        "total_params": s.total.params,
        "total_bytes": s.total.bytes,
        "trainable_params": count_json(s.trainable),
        "non_trainable_params": count_json(s.non_trainable),
        "non_trainable_params_at_least": s.non_trainable_at_least.params,
        "optimizer_params": s.optimizer.params,
        "optimizer_bytes": s.optimizer.bytes,
        "optimizer_tensors": s.optimizer_tensors,
        "duplicate_tensors": s.duplicates,
        "seed_generator_params": s.seed_state.params,
        "seed_generator_tensors": s.seed_tensors,
        "counters": s.counters.iter().map(|(n, v)| json!({"name": n, "value": v})).collect::<Vec<_>>(),
    });
    JSON.object(input, own, None)
}

/// The human summary.
pub fn to_text(src: &dyn TensorSource, s: &Summary, explain: bool) -> String {
    let f = s.flavour;
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
            let mut row = vec![title];
            if s.from_config {
                row.push(shape_text(l, f).unwrap_or_else(|| "?".into()));
            }
            row.push(count_for(l.params(), f));
            row.push("|".into());
            row.push(l.activation.clone().unwrap_or_default());
            row.push(weights.join(", "));
            row
        })
        .collect();
    let which = match f {
        Some(Flavour::TfKeras) => ", tf-keras",
        Some(Flavour::Keras3) => ", Keras 3",
        None => "",
    };
    let mut out = format!(
        "{} ({}{which})\n",
        src.path().display(),
        src.format().name()
    );
    if let Some(n) = &s.model_name {
        out.push_str(&format!("Model: \"{n}\"\n"));
    }
    if let Some(n) = &s.order_note {
        out.push_str(&format!("Note: {n}\n"));
    }
    let (header, align): (Vec<&str>, Vec<Align>) = if s.from_config {
        (
            vec![
                "Layer (type)",
                "Output Shape",
                "Param #",
                "|",
                "Activation",
                "Weights",
            ],
            vec![
                Align::Left,
                Align::Left,
                Align::Right,
                Align::Left,
                Align::Left,
                Align::Left,
            ],
        )
    } else {
        (
            vec!["Layer (type)", "Param #", "|", "Activation", "Weights"],
            vec![
                Align::Left,
                Align::Right,
                Align::Left,
                Align::Left,
                Align::Left,
            ],
        )
    };
    out.push_str(&table(&header, &align, &rows));
    let line = |c: Count| format!("{} ({})", count_for(c.params, f), size_for(c.bytes, f));
    let keras3_optimizer = f == Some(Flavour::Keras3) && s.from_config && s.optimizer_tensors > 0;
    // Keras 3's rich table prints its totals lines with a leading space.
    let lead = if f == Some(Flavour::Keras3) && s.from_config {
        " "
    } else {
        ""
    };
    match (s.trainable, s.non_trainable) {
        (Some(t), Some(n)) => {
            let mut total = s.total;
            if keras3_optimizer {
                // Keras 3's summary counts a built optimizer's variables in the total.
                total.params += s.optimizer.params;
                total.bytes += s.optimizer.bytes;
            }
            out.push_str(&format!("{lead}Total params: {}\n", line(total)));
            out.push_str(&format!("{lead}Trainable params: {}\n", line(t)));
            out.push_str(&format!("{lead}Non-trainable params: {}\n", line(n)));
            if keras3_optimizer {
                out.push_str(&format!("{lead}Optimizer params: {}\n", line(s.optimizer)));
            }
        }
        _ => {
            out.push_str(&format!("Total params: {}\n", line(s.total)));
            let upto = s.total.params - s.non_trainable_at_least.params;
            let why = if s.from_config {
                "the model config does not say it of every weight"
            } else {
                "no model config"
            };
            out.push_str(&format!(
                "Trainable params: unknown ({why}; {} unless layers were frozen)\n",
                count_for(upto, f)
            ));
            out.push_str(&format!(
                "Non-trainable params: unknown (at least {})\n",
                line(s.non_trainable_at_least)
            ));
        }
    }
    if keras3_optimizer {
        out.push_str(&format!(
            "(ckptconv) Optimizer state: {} tensors, in Keras 3's Total above; the model's count_params() is {}\n",
            s.optimizer_tensors,
            thousands(s.total.params)
        ));
    } else if s.optimizer_tensors > 0 {
        out.push_str(&format!(
            "Optimizer state (not in the totals): {} tensors, {} params ({})\n",
            s.optimizer_tensors,
            thousands(s.optimizer.params),
            keras_size(s.optimizer.bytes)
        ));
    }
    if s.seed_tensors > 0 {
        out.push_str(&format!(
            "Seed generator state (not in the totals, nor in Keras' count_params()): {} tensors, {} params\n",
            s.seed_tensors,
            thousands(s.seed_state.params)
        ));
    }
    if s.duplicates > 0 {
        out.push_str(&format!(
            "Not counted: {} tensors under _all_variables/ (a Keras 3 export() stores each weight twice)\n",
            s.duplicates
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
    if explain {
        out.push_str("Param # explained:\n");
        let rows: Vec<Vec<String>> = s
            .layers
            .iter()
            .map(|l| vec![l.name.clone(), formula(l)])
            .collect();
        out.push_str(&table(
            &["Layer", "Formula"],
            &[Align::Left, Align::Left],
            &rows,
        ));
    }
    out
}

pub(crate) fn run(args: &SummaryArgs, read: crate::formats::ReadOptions) -> Result<u8> {
    let input = args.input.display().to_string();
    let src = match crate::formats::open_with(&args.input, read) {
        Ok(src) => src,
        Err(e) if args.json => {
            JSON.print_failure(&input, Value::Null, &e);
            return Ok(crate::cli::exit_code(&e));
        }
        Err(e) => return Err(e),
    };
    let s = summarize(src.as_ref());
    if args.json {
        JSON.print(&to_json(&input, src.as_ref(), &s))?;
    } else {
        print!("{}", to_text(src.as_ref(), &s, args.explain));
    }
    Ok(0)
}
