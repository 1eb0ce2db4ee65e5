//! `ckptconv diff A B [--json] [--atol X] [--rtol Y] [--include-optimizer]`

use serde_json::json;

use super::json::{Schema, Style, Unknown};
use super::DiffArgs;
use crate::diff::{diff, DiffOptions};
use crate::error::Result;
use crate::tensor::TensorSource;

pub(crate) const AFTER_HELP: &str = "\
Compares two weight files of any formats, tensor by tensor: tensors present on
one side only, dtype or shape mismatches, and value differences (count of
differing elements, largest absolute difference). Tensors are matched by their
canonical variable names (a Keras .h5's conv/kernel:0 is its TF checkpoint's
layer_with_weights-0/kernel), then by Keras layer position. Exact by default;
--atol/--rtol compare as numpy.allclose does. Optimizer state and counters are
left out unless --include-optimizer.

When either file is a Keras 2 .h5 (which Keras loads by position), the k-th
weight of the k-th layer with weights must also be the same weight on both
sides: an order difference changes what Keras loads, and is reported as a
difference.

Exit status: 0 when the weights are the same (within tolerance), 1 when they
differ, 2 when a file cannot be read (as cmp and diff do).

Examples:
  ckptconv diff model.h5 converted/model  # prove a conversion lost nothing
  ckptconv diff a.safetensors b.safetensors --atol 1e-6";

/// `diff --json`'s own keys (docs/json.md).
pub(crate) const JSON: Schema = Schema {
    command: "diff",
    keys: &[
        ("input_b", Unknown::Null),
        ("a", Unknown::Null),
        ("b", Unknown::Null),
        ("same", Unknown::Null),
        ("compared", Unknown::Null),
        ("identical", Unknown::Null),
        ("within_tolerance", Unknown::Null),
        ("only_in_a", Unknown::List),
        ("only_in_b", Unknown::List),
        ("order_differences", Unknown::List),
        ("mismatched", Unknown::List),
        ("value_differences", Unknown::List),
    ],
    style: Style::Pretty,
};

/// `diff`'s exit codes are `cmp`'s: 0 same, 1 different, 2 trouble (a file that cannot
/// be read included).
pub(crate) fn run(args: &DiffArgs, read: crate::formats::ReadOptions) -> Result<u8> {
    // The files' own paths, as far as they were opened (for --json on failure).
    let mut opened = json!({"input_b": args.b.display().to_string()});
    match compare(args, read, &mut opened) {
        Ok(code) => Ok(code),
        Err(e) => {
            if args.json {
                JSON.print_failure(&args.a.display().to_string(), opened, &e);
            } else {
                eprintln!("ckptconv: error: {}", crate::error::chain(&e));
            }
            Ok(2)
        }
    }
}

fn compare(
    args: &DiffArgs,
    read: crate::formats::ReadOptions,
    opened: &mut serde_json::Value,
) -> Result<u8> {
    let a = crate::formats::open_with(&args.a, read)?;
    opened["a"] = json!(a.path().display().to_string());
    let b = crate::formats::open_with(&args.b, read)?;
    opened["b"] = json!(b.path().display().to_string());
    let opts = DiffOptions {
        cancel: super::signals::token(),
        atol: args.atol,
        rtol: args.rtol,
        include_optimizer: args.include_optimizer,
    };
    let r = diff(a.as_ref(), b.as_ref(), &opts)?;
    if args.json {
        let (ia, ib) = (args.a.display().to_string(), args.b.display().to_string());
        JSON.print(&json_doc(&ia, &ib, a.as_ref(), b.as_ref(), &r))?;
    } else {
        println!("A: {} ({})", a.path().display(), a.format().name());
        println!("B: {} ({})", b.path().display(), b.format().name());
        for n in &r.only_in_a {
            println!("only in A: {n}");
        }
        for n in &r.only_in_b {
            println!("only in B: {n}");
        }
        for (n, x, y) in &r.mismatched {
            println!("differs: {n}: {x} vs {y}");
        }
        for o in &r.order {
            println!("differs in order: {o}");
        }
        for v in &r.values {
            println!(
                "differs: {}: {} of {} elements, max abs diff {}",
                v.name, v.differing, v.elements, v.max_abs_diff
            );
        }
        println!(
            "{} compared: {} identical, {} within tolerance, {} differ; {} only in A, {} only in B",
            r.compared,
            r.identical,
            r.within_tolerance,
            r.mismatched.len() + r.values.len(),
            r.only_in_a.len(),
            r.only_in_b.len()
        );
        println!("{}", if r.same() { "same" } else { "DIFFERENT" });
    }
    Ok(if r.same() { 0 } else { 1 })
}

/// What `diff --json` prints for inputs `input_a` and `input_b` (as given).
pub(crate) fn json_doc(
    input_a: &str,
    input_b: &str,
    a: &dyn TensorSource,
    b: &dyn TensorSource,
    r: &crate::diff::DiffReport,
) -> serde_json::Value {
    let own = json!({
        "input_b": input_b,
        "a": a.path().display().to_string(),
        "b": b.path().display().to_string(),
        "same": r.same(),
        "compared": r.compared,
        "identical": r.identical,
        "within_tolerance": r.within_tolerance,
        "only_in_a": r.only_in_a,
        "only_in_b": r.only_in_b,
        "order_differences": r.order,
        "mismatched": r.mismatched.iter().map(|(n, x, y)| json!({"name": n, "a": x, "b": y})).collect::<Vec<_>>(),
        "value_differences": r.values.iter().map(|v| json!({
            "name": v.name, "elements": v.elements, "differing": v.differing,
            "max_abs_diff": if v.max_abs_diff.is_finite() { json!(v.max_abs_diff) } else { json!(null) },
        })).collect::<Vec<_>>(),
    });
    JSON.object(input_a, own, None)
}
