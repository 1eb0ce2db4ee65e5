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

#[cfg(test)]
mod tests {
    use super::*;

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
