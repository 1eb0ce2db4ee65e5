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
                .take(4)
                .map(|i| src.tensors()[i].variable.as_str())
                .collect();
            let more = l.weights.len().saturating_sub(names.len());
            return refuse(format!(
                "the order of layer {:?}'s weights ({}{}) is not recorded in the file and their names are not Keras built-ins; write --layout flat, pass --like with a Keras file of this model (any weights; for transformers, the tf_model.h5 that save_pretrained writes), or convert from a Keras file of this model",
                l.name,
                names.join(", "),
                if more > 0 { format!(", … {more} more") } else { String::new() }
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
                    "the file records only the order in which the model created or tracked its layers, and layers {other:?} and {:?} have weights of the same shapes, so Keras could load each into the other's place without an error; write --layout flat, or convert from a file that records the model (Keras .h5, .keras, a TF-format checkpoint)",
                    l.name
                ));
            }
        }
    }
    Ok(())
}

/// The layer of a nested model that a weight belongs to: the index in `inner` whose name
/// is the first scope of the weight's path below the nested model.
fn inner_of(l: &Layer, src: &dyn TensorSource, tensor: usize) -> Option<usize> {
    let v = &src.tensors()[tensor].variable;
    let local = local_path(&l.name, v);
    let scope = if local.len() >= 2 {
        local[0]
    } else {
        return None;
    };
    // The layer of that name, else one whose scope TensorFlow uniquified (`dense_1_1`):
    // never `dense` for `dense_1` when a `dense_1` exists.
    l.inner
        .iter()
        .position(|i| i.name == scope)
        .or_else(|| l.inner.iter().position(|i| is_scope_of(&i.name, scope)))
}

/// Whether Keras counts weight `tensor` of layer `l` trainable, as far as the file's
/// config says: a frozen layer freezes all its weights, and in a nested model whose
/// layers are not all alike each weight follows its own layer's flag. `None` when the
/// file does not say (no config, or a weight in none of the layers it lists).
pub(crate) fn config_trainable(l: &Layer, src: &dyn TensorSource, tensor: usize) -> Option<bool> {
    if l.trainable.is_some() || l.inner.is_empty() {
        return l.trainable;
    }
    l.inner[inner_of(l, src, tensor)?].trainable
}

/// A nested model's weights in the order a Keras 2 `.h5` lists them and tf-keras loads
/// them (`_legacy_weights`: `trainable_weights + non_trainable_weights`, each gathered
/// layer by layer): first every trainable weight of its trainable layers, then the rest,
/// each part in layer order. That depends on which of its layers are frozen, which only a
/// model config says; without one the order cannot be known.
fn nested_h5_order(
    src: &dyn TensorSource,
    l: &Layer,
    weights: Vec<Planned>,
) -> Result<Vec<Planned>> {
    let refuse = |why: String| {
        Err(Error::unsupported(
            src.path(),
            format!(
                "a Keras .h5: layer {:?} is a nested model, whose weights Keras 2 .h5 files list trainable first, which depends on which of its layers are frozen, and {why}; write --layout flat (a plain HDF5 file of its tensors), a checkpoint with --layout object, or convert from a file with the model's config (a full-model .h5, .keras)",
                l.name
            ),
        ))
    };
    if l.inner.is_empty() {
        return refuse("this file does not record its layers' trainable flags".into());
    }
    let mut keyed = Vec::with_capacity(weights.len());
    for p in weights {
        let Some(k) = inner_of(l, src, p.index) else {
            return refuse(format!(
                "weight {:?} belongs to none of the layers its config lists",
                src.tensors()[p.index].variable
            ));
        };
        let i = &l.inner[k];
        if i.trainable.is_none() {
            return refuse(format!(
                "the config does not say whether {:?} is trainable",
                i.name
            ));
        }
        if classes::structure(&i.class) == Some(classes::Structure::Model) {
            return refuse(format!("it holds another nested model ({:?})", i.name));
        }
        // A frozen model lists every weight as non-trainable, in layer order.
        let trainable = l.trainable != Some(false)
            && l.inner[k].trainable == Some(true)
            && !naming::non_trainable_by_definition(&src.tensors()[p.index].variable);
        keyed.push((!trainable, k, p));
    }
    // Stable: within each part, layer order, then each layer's own weight order.
    keyed.sort_by_key(|(nt, k, _)| (*nt, *k));
    Ok(keyed.into_iter().map(|(_, _, p)| p).collect())
}

/// Split `plan` into the model's layers (in model order, weights in Keras' order), the
/// optimizer's state, and what a Keras layout has no place for.
pub fn groups(src: &dyn TensorSource, model: &Model, plan: &[Planned]) -> Result<Groups> {
    let by_index: HashMap<usize, &Planned> = plan.iter().map(|p| (p.index, p)).collect();
    let mut used = HashSet::new();
    let mut g = Groups::default();
    for l in &model.layers {
        let mut weights: Vec<Planned> = l
            .tensors()
            .filter_map(|i| by_index.get(&i).map(|p| (*p).clone()))
            .collect();
        // Keras 2 `.h5` files list a layer's weights as `trainable_weights +
        // non_trainable_weights` (`_legacy_weights`). A source loaded by position already
        // has that order. For one layer it is the layer's own order; for a nested model
        // it depends on which of its layers are frozen.
        if !src.h5_weight_order() && l.is_nested_model(src) {
            weights = nested_h5_order(src, l, weights)?;
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
    Ok(g)
}

/// A weight's path below its layer's name scope: `dense/kernel` in layer `dense` →
/// `kernel`; Keras 2.0's `conv2d_1_1/kernel` in layer `conv2d_1` → `kernel`;
/// `tf_bert_model/bert/x` in layer `bert` → `x`; a nested model's `dense_3/kernel` stays.
pub fn local_path<'v>(layer: &str, variable: &'v str) -> Vec<&'v str> {
    // A layer name may hold `/` itself (keras.applications: `Conv/BatchNorm`): its whole
    // name is the scope.
    if let Some(rest) = variable
        .strip_prefix(layer)
        .and_then(|r| r.strip_prefix('/'))
        .filter(|r| !r.is_empty())
    {
        return rest.split('/').collect();
    }
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
        let unrecorded = l.weights.iter().any(|w| w.object_path.is_none());
        if unrecorded && l.is_nested_model(src) {
            // A nested model's weights under `layer_with_weights-K` of its own, K counting
            // its layers with weights in its order, which only its config says (a Keras 2
            // .h5 lists them trainable first, not layer by layer).
            if l.inner.is_empty() {
                return Err(Error::unsupported(
                    src.path(),
                    format!(
                        "a tf-keras checkpoint: layer {:?} is a nested model, and the file does not record the order of its layers (no model config); write --layout tf1, or convert from a file with the model's config",
                        l.name
                    ),
                ));
            }
            let weighted: Vec<usize> = (0..l.inner.len())
                .filter(|&i| l.tensors().any(|t| inner_of(l, src, t) == Some(i)))
                .collect();
            for w in &l.weights {
                let v = &src.tensors()[w.tensor].variable;
                let i = inner_of(l, src, w.tensor).ok_or_else(|| {
                    Error::unsupported(
                        src.path(),
                        format!(
                            "a tf-keras checkpoint: weight {v:?} of nested model {:?} belongs to none of the layers its config lists",
                            l.name
                        ),
                    )
                })?;
                let kk = weighted
                    .iter()
                    .position(|&x| x == i)
                    .expect("a weighted layer");
                let inner = &l.inner[i];
                let local = local_path(&l.name, v);
                let sub = classes::object_subpath(
                    Some(&inner.class),
                    &inner.name,
                    &local[1..],
                    &mut Vec::new(),
                )
                .ok_or_else(|| {
                    Error::unsupported(
                        src.path(),
                        format!(
                            "cannot tell where tf-keras tracks weight {v:?} of layer {:?} ({}) in nested model {:?}; write --layout tf1 or flat",
                            inner.name, inner.class, l.name
                        ),
                    )
                })?;
                let mut path = vec![
                    format!("layer_with_weights-{k}"),
                    format!("layer_with_weights-{kk}"),
                ];
                path.extend(sub);
                out.push((w.tensor, path));
            }
            continue;
        }
        // A subclassed model's layer is tracked at its attribute path (`bert`, or
        // `blocks/0` for an element of a list attribute).
        let node: Vec<String> = match &l.tracked_as {
            Some(attr) => attr.split('/').map(str::to_string).collect(),
            None => vec![format!("layer_with_weights-{k}")],
        };
        for w in &l.weights {
            let mut path = node.clone();
            let sub = match &w.object_path {
                // Empty when the layer's node is the variable itself (a `tf.Module`'s
                // attribute `w`): the layer's path is the variable's.
                Some(p) => p
                    .split('/')
                    .filter(|c| !c.is_empty())
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
    // `my_model/dense/kernel` in layer `dense`: the weight carries its model's name, as a
    // subclassed model's do. tf-keras tracks such a model's layers by attribute names,
    // which a weights file does not record (a Functional model's would be `dense/kernel`;
    // a file with a config is not a subclassed model's: those cannot be saved so).
    let comps: Vec<&str> = variable.split('/').collect();
    if l.tracked_as.is_none()
        && l.class_name.is_none()
        && comps.len() > 2
        && comps[1] == l.name
        && !is_scope_of(&l.name, comps[0])
        && !variable.starts_with(&format!("{}/", l.name))
    {
        return Err(Error::unsupported(
            src.path(),
            format!(
                "a tf-keras checkpoint: weight {variable:?} of layer {:?} carries its model's name ({:?}), as a subclassed model's do, and tf-keras tracks such a model's layers by attribute names this file does not record; write --layout tf1",
                l.name, comps[0]
            ),
        ));
    }
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
            local_path("Conv/BatchNorm", "Conv/BatchNorm/gamma"),
            ["gamma"]
        );
        assert_eq!(
            local_path("conv1/bn", "conv1/bn/moving_mean"),
            ["moving_mean"]
        );
        assert_eq!(
            local_path("lstm", "lstm/lstm_cell/kernel"),
            ["lstm_cell", "kernel"]
        );
        assert!(is_scope_of("conv2d_1", "conv2d_1_1"));
        assert!(!is_scope_of("conv2d_1", "conv2d_1_x"));
        assert!(!is_scope_of("conv2d_1", "conv2d_11"));
    }
}
