//! How Keras-layout targets lay a [`Model`] out, and the checks that make a wrong load
//! impossible: a Keras 2 `save_weights` `.h5` (`tf_keras/src/saving/legacy/hdf5_format.py`,
//! loaded by position) and a tf-keras TF-format checkpoint (`layer_with_weights-k/…`
//! object paths, `tf_keras/src/engine/functional.py` `_layer_checkpoint_dependencies`).

use std::collections::{HashMap, HashSet};

use super::{classes, Layer, Model, Order};
use crate::error::{Error, Result};
use crate::naming::{self, Role};
use crate::plan::{Planned, Skipped};
use crate::tensor::TensorSource;

/// What a Keras-layout writer should do with the planned tensors.
#[derive(Debug, Default)]
pub struct Groups {
    /// Every layer of the model in order, with its planned weights in Keras' order.
    pub layers: Vec<(String, Vec<Planned>)>,
    /// Optimizer state, for the target's own place for it.
    pub optimizer: Vec<Planned>,
    /// Tensors the target has no place for (counters, metrics, weights in no layer).
    pub skipped: Vec<Skipped>,
}

/// Refuse unless a position- or path-loaded Keras layout of `model` loads every weight
/// where it belongs: each weighted layer's weights in known order, and a layer order that
/// is either recorded or such that any mistake fails loudly (no two weighted layers with
/// the same weight shapes, which a loader could swap without noticing).
pub fn check_loadable(model: &Model, src: &dyn TensorSource, target: &str) -> Result<()> {
    let refuse = |msg: String| Err(Error::unsupported(src.path(), format!("{target}: {msg}")));
    for l in model.weighted() {
        if !l.ordered {
            let names: Vec<&str> = l
                .tensors()
                .map(|i| src.tensors()[i].variable.as_str())
                .collect();
            return refuse(format!(
                "the order of layer {:?}'s weights ({}) is not recorded in the file and their names are not Keras built-ins; write --layout flat, or convert from a Keras file of this model",
                l.name,
                names.join(", ")
            ));
        }
    }
    let weighted: Vec<&Layer> = model.weighted().collect();
    if model.order == Order::Inferred && weighted.len() > 1 {
        let names: Vec<&str> = weighted.iter().take(6).map(|l| l.name.as_str()).collect();
        return refuse(format!(
            "the file does not record the order of the model's {} layers with weights ({}{}){}; Keras loads them by position, so write --layout flat, or convert from a file that records the model (Keras .h5, .keras, a TF-format checkpoint, a TF1 checkpoint with its .meta)",
            weighted.len(),
            names.join(", "),
            if weighted.len() > names.len() { ", …" } else { "" },
            model.why.as_deref().map(|w| format!(": {w}")).unwrap_or_default()
        ));
    }
    if model.order == Order::Created {
        // Built in this order, but branches side by side may be listed otherwise in the
        // model: allowed only where a mix-up would fail loudly (no two layers with
        // weights of the same shapes, which a loader could swap without noticing).
        let mut seen: HashMap<Vec<&[u64]>, &str> = HashMap::new();
        for l in &weighted {
            let sig: Vec<&[u64]> = l
                .tensors()
                .map(|i| src.tensors()[i].shape.as_slice())
                .collect();
            if let Some(other) = seen.insert(sig, &l.name) {
                return refuse(format!(
                    "the file records only the order in which the graph created its layers, and layers {other:?} and {:?} have weights of the same shapes, so Keras could load each into the other's place without an error; write --layout flat, or convert from a file that records the model (Keras .h5, .keras, a TF-format checkpoint)",
                    l.name
                ));
            }
        }
    }
    Ok(())
}

/// Split `plan` into the model's layers (in model order, weights in Keras' order), the
/// optimizer's state, and what a Keras layout has no place for.
pub fn groups(src: &dyn TensorSource, model: &Model, plan: &[Planned]) -> Groups {
    let by_index: HashMap<usize, &Planned> = plan.iter().map(|p| (p.index, p)).collect();
    let mut used = HashSet::new();
    let mut g = Groups::default();
    for l in &model.layers {
        let mut weights: Vec<Planned> = l
            .tensors()
            .filter_map(|i| by_index.get(&i).map(|p| (*p).clone()))
            .collect();
        // Keras 2 `.h5` files list a layer's weights as `trainable_weights +
        // non_trainable_weights` (`_legacy_weights`): a nested model's BatchNormalization
        // statistics come after all its trainable weights, not after their own layer's.
        // A source loaded by position already has that order; others have tracking order.
        if !src.loads_by_position() {
            weights.sort_by_key(|p| {
                naming::non_trainable_by_definition(&src.tensors()[p.index].variable)
            });
        }
        used.extend(weights.iter().map(|p| p.index));
        g.layers.push((l.name.clone(), weights));
    }
    // Keras 2 restores a full model's optimizer state by position: it is kept only in
    // the order a Keras 2 file recorded.
    let optimizer: HashMap<usize, usize> = src
        .optimizer_order()
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(k, &i)| (i, k))
        .collect();
    for p in plan {
        if used.contains(&p.index) {
            continue;
        }
        let t = &src.tensors()[p.index];
        match naming::role(&t.name, &t.variable) {
            Role::Optimizer if optimizer.contains_key(&p.index) => g.optimizer.push(p.clone()),
            Role::Optimizer => g.skipped.push(Skipped {
                name: p.name.clone(),
                reason: "optimizer state in no order Keras 2 could restore it by (the source does not list it as a Keras 2 .h5 does); --weights-only leaves it out".into(),
            }),
            role => g.skipped.push(Skipped {
                name: p.name.clone(),
                reason: match role {
                    Role::Weight => "a weight in no layer of the model".into(),
                    r => format!("{} state, which Keras weight files do not hold", r.name()),
                },
            }),
        }
    }
    g.optimizer
        .sort_by_key(|p| optimizer.get(&p.index).copied());
    g
}

/// A weight's path below its layer's name scope: `dense/kernel` in layer `dense` →
/// `kernel`; Keras 2.0's `conv2d_1_1/kernel` in layer `conv2d_1` → `kernel`;
/// `tf_bert_model/bert/x` in layer `bert` → `x`; a nested model's `dense_3/kernel` stays.
pub fn local_path<'v>(layer: &str, variable: &'v str) -> Vec<&'v str> {
    let comps: Vec<&'v str> = variable.split('/').collect();
    if comps.len() > 1 && is_scope_of(layer, comps[0]) {
        return comps[1..].to_vec();
    }
    if comps.len() > 2 && comps[1] == layer {
        return comps[2..].to_vec();
    }
    comps
}

/// True if `scope` is layer `layer`'s name scope: its name, or its name uniquified by a
/// TensorFlow graph (`conv2d_1_1` for `conv2d_1`, as Keras 2.0-era files have it).
pub fn is_scope_of(layer: &str, scope: &str) -> bool {
    scope == layer
        || scope
            .strip_prefix(layer)
            .and_then(|r| r.strip_prefix('_'))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The tf-keras object path (below the root) of every weight of the model's weighted
/// layers: `layer_with_weights-k/<path below the layer>` (a subclassed model's layers:
/// `<attribute>/<path below the layer>`). Refuses when a path cannot be
/// known, so that a checkpoint never "loads" with weights tf-keras does not find.
pub fn object_paths(src: &dyn TensorSource, model: &Model) -> Result<Vec<(usize, Vec<String>)>> {
    let mut out = Vec::new();
    for (k, l) in model.weighted().enumerate() {
        let mut nested = Vec::new();
        let node = match &l.tracked_as {
            Some(attr) => attr.clone(),
            None => format!("layer_with_weights-{k}"),
        };
        for w in &l.weights {
            let mut path = vec![node.clone()];
            let sub = match &w.object_path {
                Some(p) => p
                    .split('/')
                    .map(crate::formats::tf::object_graph::unescape_local_name)
                    .collect(),
                None => layer_object_path(src, l, w.tensor, &mut nested)?,
            };
            path.extend(sub);
            out.push((w.tensor, path));
        }
    }
    Ok(out)
}

fn layer_object_path(
    src: &dyn TensorSource,
    l: &Layer,
    tensor: usize,
    nested: &mut Vec<String>,
) -> Result<Vec<String>> {
    let variable = &src.tensors()[tensor].variable;
    let local = local_path(&l.name, variable);
    classes::object_subpath(l.class_name.as_deref(), &l.name, &local, nested).ok_or_else(|| {
        Error::unsupported(
            src.path(),
            format!(
                "cannot tell where tf-keras tracks weight {variable:?} of layer {:?} ({}); write --layout tf1 or flat, or convert from a file with the model's config",
                l.name,
                l.class_name.as_deref().unwrap_or("class not recorded")
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_paths() {
        assert_eq!(local_path("dense", "dense/kernel"), ["kernel"]);
        assert_eq!(local_path("conv2d_1", "conv2d_1_1/kernel"), ["kernel"]);
        assert_eq!(local_path("bert", "tf_bert_model/bert/emb/w"), ["emb", "w"]);
        assert_eq!(local_path("seq", "dense_3/kernel"), ["dense_3", "kernel"]);
        assert_eq!(
            local_path("lstm", "lstm/lstm_cell/kernel"),
            ["lstm_cell", "kernel"]
        );
        assert!(is_scope_of("conv2d_1", "conv2d_1_1"));
        assert!(!is_scope_of("conv2d_1", "conv2d_1_x"));
        assert!(!is_scope_of("conv2d_1", "conv2d_11"));
    }
}
