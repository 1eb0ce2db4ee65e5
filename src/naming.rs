//! Naming rules, in one place.
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

/// What a tensor is, for commands that treat model weights apart from training state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A weight of the model.
    Weight,
    /// Optimizer state: slots (Adam m/v, momentum), iteration counts, learning rates.
    Optimizer,
    /// A training counter: `global_step`, `save_counter`, a `tf.train.Checkpoint` step.
    Counter,
    /// A metric's state (a tf-keras SavedModel's `keras_api/metrics/0/count`).
    Metric,
    /// Bookkeeping of the file format (the TF2 object graph).
    Metadata,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Weight => "weight",
            Role::Optimizer => "optimizer",
            Role::Counter => "counter",
            Role::Metric => "metric",
            Role::Metadata => "metadata",
        }
    }
}

/// Slot suffixes of TF1 optimizers (`dense/kernel/Adam`, `…/Adam_1`, `…/Momentum`).
const TF1_SLOTS: &[&str] = &[
    "Adam",
    "Adam_1",
    "Momentum",
    "RMSProp",
    "RMSProp_1",
    "Adagrad",
    "Adadelta",
    "Adadelta_1",
    "Ftrl",
    "Ftrl_1",
    "ExponentialMovingAverage",
];

/// Keras optimizer classes: their variables are named `<Optimizer>/…` (`Adam/m/conv/kernel`,
/// Keras 3's `adam/iteration`).
const KERAS_OPTIMIZERS: &[&str] = &[
    "adam",
    "adamw",
    "adamax",
    "nadam",
    "sgd",
    "rmsprop",
    "adagrad",
    "adadelta",
    "ftrl",
    "lion",
    "adafactor",
    "lamb",
    "loss_scale_optimizer",
    "lossscaleoptimizer",
];

/// A scope named after an optimizer (`Adam`, `adam_1`, `SGD`): its variables and ops are
/// the optimizer's.
/// If the file name `name` is `BASE-K-of-N`, with K and N decimal and at least five digits
/// each (`%05d`, as TensorFlow's checkpoint shards, V1 checkpoints and transformers'
/// sharded files number their parts): (BASE, K, N). Callers check K against N in their
/// format's numbering (TensorFlow's from 0, transformers' from 1).
pub fn numbered_part(name: &str) -> Option<(&str, u32, u32)> {
    let (left, n) = name.rsplit_once("-of-")?;
    let (base, k) = left.rsplit_once('-')?;
    let num = |s: &str| {
        (s.len() >= 5 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u32>().ok())
            .flatten()
    };
    let (k, n) = (num(k)?, num(n)?);
    (!base.is_empty()).then_some((base, k, n))
}

pub fn is_optimizer_scope(scope: &str) -> bool {
    let base = crate::keras::classes::strip_counter(scope).to_ascii_lowercase();
    KERAS_OPTIMIZERS.contains(&base.as_str())
}

/// Classify a tensor by its key and variable name (rules in docs/naming.md).
pub fn role(key: &str, variable: &str) -> Role {
    if key == crate::formats::tf::object_graph::OBJECT_GRAPH_KEY {
        return Role::Metadata;
    }
    let first = key.split('/').next().unwrap_or_default();
    if key.starts_with("keras_api/metrics/") || variable.starts_with("keras_api/metrics/") {
        return Role::Metric;
    }
    if first == "optimizer" || first == "optimizer_weights" || key.contains("/.OPTIMIZER_SLOT/") {
        return Role::Optimizer;
    }
    let last = variable.rsplit('/').next().unwrap_or_default();
    if matches!(variable, "global_step" | "save_counter")
        || matches!(first, "save_counter" | "global_step")
        || key == "step/.ATTRIBUTES/VARIABLE_VALUE"
    {
        return Role::Counter;
    }
    let vfirst = variable.split('/').next().unwrap_or_default();
    // Keras 2.0-era full models name optimizer variables `training/Adam/Variable_3`.
    let vsecond = variable.split('/').nth(1).unwrap_or_default();
    if vfirst == "training" && KERAS_OPTIMIZERS.contains(&vsecond.to_ascii_lowercase().as_str()) {
        return Role::Optimizer;
    }
    if matches!(
        variable,
        "beta1_power" | "beta2_power" | "iteration" | "iterations" | "learning_rate"
    ) || (variable.contains('/') && TF1_SLOTS.contains(&last))
        || (variable.contains('/')
            && KERAS_OPTIMIZERS.contains(&vfirst.to_ascii_lowercase().as_str()))
    {
        return Role::Optimizer;
    }
    Role::Weight
}

/// Weight names that are non-trainable by definition (BatchNormalization moving
/// statistics, Normalization layer state, seed generator state).
pub fn non_trainable_by_definition(variable: &str) -> bool {
    let last = variable.rsplit('/').next().unwrap_or_default();
    matches!(
        last,
        "moving_mean" | "moving_variance" | "seed_generator_state"
    )
}

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

/// Where transformers stores a TF weight in a shard of its sharded `tf_model.h5`
/// (`modeling_tf_utils.py`, `save_pretrained` and `load_tf_sharded_weights`): the weight's
/// name without its first component (the model's name: `tf_bert_model/bert/…/beta:0` →
/// `bert/…/beta:0`), unless the name holds `model.` or has a single component, which are
/// kept whole. The index's `weight_map` names weights the first way, the shard's
/// `layer_names` and datasets the second.
pub fn hf_shard_dataset(weight: &str) -> &str {
    if weight.contains("model.") {
        return weight;
    }
    match weight.split_once('/') {
        Some((_, rest)) => rest,
        None => weight,
    }
}

/// Children that list an object's variables a second time: Keras 3's `model.export()`
/// tracks every weight in `variables/<i>` and again in `_all_variables/<j>` (two objects,
/// one variable, the same `full_name`).
const VARIABLE_LISTS: &[&str] = &[
    "variables",
    "trainable_variables",
    "non_trainable_variables",
    "_all_variables",
];

/// The variable names of the tensors of a TF2 object-based checkpoint, given each one's
/// key and the object graph's `full_name` for it (`None` or empty when the graph has
/// none). The rule (docs/naming.md):
///
/// 1. the `full_name` when the graph gives one, else the key's object path
///    ([`variable_from_tf_key`]);
/// 2. a name that several tensors would share is, for each of them, replaced by its
///    object path — unless every one of them sits in a different variable list
///    (`VARIABLE_LISTS`: `variables/3` and `_all_variables/0`): that is one variable
///    listed twice (Keras 3's `export()`), which keeps its name and is written once;
/// 3. step 2 again until no new name is shared (an object path may be another tensor's
///    `full_name`); names that are still shared after that are object paths that
///    unescape alike (`a.Sb` and `a/b`), and writers refuse them.
///
/// `tf.Variable`s created without a name (every `tf.Module` tutorial's) all have the
/// `full_name` `Variable`; this gives them `net/w`, `net/table/0`. It depends on the
/// checkpoint's keys and full names only, so it is the same on every run.
pub fn tf2_variable_names(entries: &[(&str, Option<&str>)]) -> Vec<String> {
    let mut names: Vec<String> = Vec::with_capacity(entries.len());
    // True once a tensor's name is its object path (it cannot change again).
    let mut by_path: Vec<bool> = Vec::with_capacity(entries.len());
    for (key, full) in entries {
        match full.filter(|f| !f.is_empty()) {
            Some(f) => {
                names.push(f.to_string());
                by_path.push(false);
            }
            None => {
                names.push(variable_from_tf_key(key));
                by_path.push(true);
            }
        }
    }
    loop {
        let mut groups: std::collections::BTreeMap<&str, Vec<usize>> = Default::default();
        for (i, n) in names.iter().enumerate() {
            groups.entry(n.as_str()).or_default().push(i);
        }
        let mut rename = Vec::new();
        for members in groups.values().filter(|m| m.len() > 1) {
            let all_full = members.iter().all(|&i| !by_path[i]);
            if all_full && listed_again(members.iter().map(|&i| entries[i].0)) {
                continue;
            }
            rename.extend(members.iter().copied().filter(|&i| !by_path[i]));
        }
        if rename.is_empty() {
            return names;
        }
        for i in rename {
            names[i] = variable_from_tf_key(entries[i].0);
            by_path[i] = true;
        }
    }
}

/// True when every key is an element of a variable list (`…/variables/3/.ATTRIBUTES/…`)
/// and no two are in the same list: one variable listed in several lists.
fn listed_again<'a>(keys: impl Iterator<Item = &'a str>) -> bool {
    let mut lists = std::collections::HashSet::new();
    for key in keys {
        let Some(path) = key.strip_suffix(VARIABLE_VALUE_SUFFIX) else {
            return false;
        };
        let Some((list, element)) = path.rsplit_once('/') else {
            return false;
        };
        let list_name = list.rsplit('/').next().unwrap_or(list);
        if element.is_empty()
            || !element.bytes().all(|b| b.is_ascii_digit())
            || !VARIABLE_LISTS.contains(&list_name)
            || !lists.insert(list)
        {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_parts() {
        assert_eq!(
            numbered_part("m.ckpt.data-00000-of-00002"),
            Some(("m.ckpt.data", 0, 2))
        );
        assert_eq!(numbered_part("export-00001-of-00001"), Some(("export", 1, 1)));
        assert_eq!(numbered_part("tf_model-00003-of-00003"), Some(("tf_model", 3, 3)));
        assert_eq!(numbered_part("x-0001-of-00002"), None);
        assert_eq!(numbered_part("-00001-of-00002"), None);
        assert_eq!(numbered_part("x-00001-of-0000a"), None);
    }

    #[test]
    fn roles() {
        assert_eq!(role("dense/kernel", "dense/kernel"), Role::Weight);
        assert_eq!(
            role("dense/kernel/Adam_1", "dense/kernel/Adam_1"),
            Role::Optimizer
        );
        assert_eq!(role("beta1_power", "beta1_power"), Role::Optimizer);
        assert_eq!(role("global_step", "global_step"), Role::Counter);
        assert_eq!(
            role("save_counter/.ATTRIBUTES/VARIABLE_VALUE", "save_counter"),
            Role::Counter
        );
        assert_eq!(
            role(
                "optimizer/_variables/1/.ATTRIBUTES/VARIABLE_VALUE",
                "Adam/m/conv/kernel"
            ),
            Role::Optimizer
        );
        assert_eq!(
            role("layer_with_weights-0/kernel/.OPTIMIZER_SLOT/optimizer/m/.ATTRIBUTES/VARIABLE_VALUE", "x"),
            Role::Optimizer
        );
        assert_eq!(
            role("optimizer_weights/Adam/iter:0", "Adam/iter"),
            Role::Optimizer
        );
        assert_eq!(role("optimizer/vars/3", "optimizer/3"), Role::Optimizer);
        assert_eq!(
            role(
                "_CHECKPOINTABLE_OBJECT_GRAPH",
                "_CHECKPOINTABLE_OBJECT_GRAPH"
            ),
            Role::Metadata
        );
        assert_eq!(role("Adam", "Adam"), Role::Weight);
        assert_eq!(role("Adam/m/bn/beta", "Adam/m/bn/beta"), Role::Optimizer);
        assert_eq!(role("x", "adam/iteration"), Role::Optimizer);
        assert_eq!(
            role("training/Adam/Variable_99", "training/Adam/Variable_99"),
            Role::Optimizer
        );
        assert_eq!(
            role(
                "keras_api/metrics/0/count/.ATTRIBUTES/VARIABLE_VALUE",
                "count"
            ),
            Role::Metric
        );
        assert!(non_trainable_by_definition("bn/moving_mean"));
        assert!(!non_trainable_by_definition("bn/gamma"));
    }

    #[test]
    fn unnamed_variables_take_their_object_paths() {
        let v = "/.ATTRIBUTES/VARIABLE_VALUE";
        let k = |p: &str| format!("{p}{v}");
        let keys = [
            k("net/a"),
            k("net/table/0"),
            k("net/table/1"),
            k("net/inner/w"),
            k("net/named"),
            k("step"),
            "_CHECKPOINTABLE_OBJECT_GRAPH".to_string(),
        ];
        let full = [
            Some("Variable"),
            Some("Variable"),
            Some("Variable"),
            Some("Variable"),
            Some("named"),
            Some("Variable"),
            None,
        ];
        let entries: Vec<(&str, Option<&str>)> =
            keys.iter().map(|k| k.as_str()).zip(full).collect();
        assert_eq!(
            tf2_variable_names(&entries),
            [
                "net/a",
                "net/table/0",
                "net/table/1",
                "net/inner/w",
                "named",
                "step",
                "_CHECKPOINTABLE_OBJECT_GRAPH"
            ]
        );
        // The order of the entries does not change any name.
        let mut rev = entries.clone();
        rev.reverse();
        let mut names = tf2_variable_names(&rev);
        names.reverse();
        assert_eq!(names, tf2_variable_names(&entries));
    }

    #[test]
    fn an_object_path_that_is_another_full_name_moves_that_one_too() {
        let entries = [
            ("a/.ATTRIBUTES/VARIABLE_VALUE", Some("Variable")),
            ("b/.ATTRIBUTES/VARIABLE_VALUE", Some("Variable")),
            ("c/.ATTRIBUTES/VARIABLE_VALUE", Some("a")),
            ("d/.ATTRIBUTES/VARIABLE_VALUE", Some("d/kernel")),
        ];
        assert_eq!(tf2_variable_names(&entries), ["a", "b", "c", "d/kernel"]);
        // No full name at all: the key's path, unescaped.
        assert_eq!(
            tf2_variable_names(&[("x/a..b/.ATTRIBUTES/VARIABLE_VALUE", Some(""))]),
            ["x/a.b"]
        );
    }

    #[test]
    fn one_variable_listed_twice_keeps_its_name() {
        // Keras 3 export(): `variables/0` and `_all_variables/3` are one weight.
        let entries = [
            (
                "variables/0/.ATTRIBUTES/VARIABLE_VALUE",
                Some("dense/kernel"),
            ),
            (
                "_all_variables/3/.ATTRIBUTES/VARIABLE_VALUE",
                Some("dense/kernel"),
            ),
            ("variables/1/.ATTRIBUTES/VARIABLE_VALUE", Some("dense/bias")),
            (
                "_all_variables/0/.ATTRIBUTES/VARIABLE_VALUE",
                Some("dense/bias"),
            ),
        ];
        assert_eq!(
            tf2_variable_names(&entries),
            ["dense/kernel", "dense/kernel", "dense/bias", "dense/bias"]
        );
        // Two in the same list are two variables.
        let entries = [
            (
                "m/_all_variables/0/.ATTRIBUTES/VARIABLE_VALUE",
                Some("Variable"),
            ),
            (
                "m/_all_variables/1/.ATTRIBUTES/VARIABLE_VALUE",
                Some("Variable"),
            ),
        ];
        assert_eq!(
            tf2_variable_names(&entries),
            ["m/_all_variables/0", "m/_all_variables/1"]
        );
        // A list element and an attribute: two variables.
        let entries = [
            ("variables/0/.ATTRIBUTES/VARIABLE_VALUE", Some("Variable")),
            ("w/.ATTRIBUTES/VARIABLE_VALUE", Some("Variable")),
        ];
        assert_eq!(tf2_variable_names(&entries), ["variables/0", "w"]);
    }

    #[test]
    fn transformers_shard_datasets() {
        assert_eq!(
            hf_shard_dataset("tf_bert_model/bert/embeddings/LayerNorm/beta:0"),
            "bert/embeddings/LayerNorm/beta:0"
        );
        assert_eq!(
            hf_shard_dataset("model.shared/weight:0"),
            "model.shared/weight:0"
        );
        assert_eq!(
            hf_shard_dataset("final_logits_bias:0"),
            "final_logits_bias:0"
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
