//! Naming rules, in one place (design §1).
//!
//! Every tensor has the file's own *key* and a canonical *variable name* in TF1 style
//! (`dense/kernel`). Readers report both; writers place tensors by the variable name.
//! The rules are documented for users in `docs/naming.md`.
//!
//! TensorFlow checkpoints:
//! - TF1 (`tf.compat.v1.train.Saver`) keys are already variable names.
//! - TF2 object-based keys look like `net/dense/kernel/.ATTRIBUTES/VARIABLE_VALUE`. The
//!   object graph's `full_name` is the variable name when present; otherwise the key minus
//!   its `/.ATTRIBUTES/VARIABLE_VALUE` suffix, with each path component unescaped
//!   (`..` → `.`, `.S` → `/`).

use crate::formats::tf::object_graph::unescape_local_name;

/// The suffix TF2 object-based checkpoints put after a variable's object path.
pub const VARIABLE_VALUE_SUFFIX: &str = "/.ATTRIBUTES/VARIABLE_VALUE";

/// The variable name for a TensorFlow checkpoint key when the object graph does not say.
pub fn variable_from_tf_key(key: &str) -> String {
    match key.strip_suffix(VARIABLE_VALUE_SUFFIX) {
        Some(path) => path
            .split('/')
            .map(unescape_local_name)
            .collect::<Vec<_>>()
            .join("/"),
        None => key.to_string(),
    }
}

/// The object path of a Keras weight below its layer's `layer_with_weights-N` node, as
/// tf-keras tracks it: `dense/kernel` → `kernel`; an RNN cell's weights sit under `cell`
/// (`lstm/lstm_cell/kernel` → `cell/kernel`); a Bidirectional wrapper's under
/// `forward_layer` / `backward_layer`; a nested model's under its own
/// `layer_with_weights-K`, K counting its weighted sub-layers in order (`nested` keeps that
/// count across the layer's weights).
pub fn keras_object_subpath(layer: &str, variable: &str, nested: &mut Vec<String>) -> Vec<String> {
    let rest = variable
        .strip_prefix(layer)
        .and_then(|r| r.strip_prefix('/'))
        .unwrap_or(variable);
    let comps: Vec<&str> = rest.split('/').collect();
    subpath(&comps, nested)
}

fn subpath(comps: &[&str], nested: &mut Vec<String>) -> Vec<String> {
    let Some((first, tail)) = comps.split_first() else {
        return Vec::new();
    };
    if tail.is_empty() {
        return vec![first.to_string()];
    }
    let mut out = Vec::new();
    if first.ends_with("_cell") || *first == "cell" {
        out.push("cell".to_string());
        out.extend(tail.iter().map(|s| s.to_string()));
    } else if first.starts_with("forward_") || first.starts_with("backward_") {
        let side = if first.starts_with("forward_") {
            "forward_layer"
        } else {
            "backward_layer"
        };
        out.push(side.to_string());
        out.extend(subpath(tail, &mut Vec::new()));
    } else {
        let k = match nested.iter().position(|n| n == first) {
            Some(k) => k,
            None => {
                nested.push(first.to_string());
                nested.len() - 1
            }
        };
        out.push(format!("layer_with_weights-{k}"));
        out.extend(tail.iter().map(|s| s.to_string()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keras_object_paths() {
        let mut n = Vec::new();
        assert_eq!(
            keras_object_subpath("dense", "dense/kernel", &mut n),
            ["kernel"]
        );
        assert_eq!(
            keras_object_subpath("lstm", "lstm/lstm_cell/kernel", &mut n),
            ["cell", "kernel"]
        );
        assert_eq!(
            keras_object_subpath(
                "bidirectional",
                "bidirectional/backward_gru/gru_cell/bias",
                &mut n
            ),
            ["backward_layer", "cell", "bias"]
        );
        let mut n = Vec::new();
        assert_eq!(
            keras_object_subpath("head", "inner_a/kernel", &mut n),
            ["layer_with_weights-0", "kernel"]
        );
        assert_eq!(
            keras_object_subpath("head", "inner_b/bias", &mut n),
            ["layer_with_weights-1", "bias"]
        );
        assert_eq!(
            keras_object_subpath("head", "inner_a/bias", &mut n),
            ["layer_with_weights-0", "bias"]
        );
    }

    #[test]
    fn tf_keys() {
        assert_eq!(variable_from_tf_key("dense/kernel"), "dense/kernel");
        assert_eq!(
            variable_from_tf_key("net/dense/kernel/.ATTRIBUTES/VARIABLE_VALUE"),
            "net/dense/kernel"
        );
        assert_eq!(
            variable_from_tf_key("net/table/a..b.Sc/.ATTRIBUTES/VARIABLE_VALUE"),
            "net/table/a.b/c"
        );
        assert_eq!(
            variable_from_tf_key("_CHECKPOINTABLE_OBJECT_GRAPH"),
            "_CHECKPOINTABLE_OBJECT_GRAPH"
        );
    }
}
