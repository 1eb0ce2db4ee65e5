//! Everything Keras, in one place: the model description that Keras-layout writers,
//! `summary` and `diff` consume, how each source reveals it, and how each target lays it
//! out.
//!
//! Keras loads weights by *position* (a Keras 2 `.h5`: the k-th layer with weights gets the
//! k-th group, its weights in order) or by *object path* (a TF-format checkpoint:
//! `layer_with_weights-k/cell/kernel`). Either way, a file that names its tensors right but
//! lists layers or weights in another order loads without error and predicts garbage when
//! shapes happen to agree. So a Keras layout is only ever written from a [`Model`] whose
//! layer order and per-layer weight order are known; otherwise the conversion is refused
//! ([`layout::check_loadable`]).
//!
//! Where a model comes from:
//!
//! | source | layers and their order | weights in each layer |
//! |---|---|---|
//! | Keras 2 `.h5` | `layer_names` (recorded) | `weight_names` (recorded) |
//! | Keras 3 `.weights.h5` / `.keras` | the config's order when there is one, else unknown across classes | `vars/0…n` (recorded) |
//! | tf-keras TF-format checkpoint, `tf.train.Checkpoint(model=…)`, SavedModel | the object graph's `layer_with_weights-k` (recorded) | the object graph's tracking order (recorded) |
//! | TF1 Saver checkpoint, safetensors, any other names | the variable names' scopes (inferred) | sorted by [`classes::weight_rank`] when every name is a built-in one |
//! | transformers' sharded `tf_model.h5` (shards, index) | the dataset paths' first components (`bert`; inferred when several) | not recorded (the shards sort weights by name): a Keras layout needs `--like` |
//!
//! Optimizer state, counters, metrics and the object graph are never layers
//! ([`crate::naming::role`]).

pub mod classes;
pub(crate) mod config;
pub mod config3;
pub mod explain;
pub mod keras3;
pub mod layout;
pub mod record;
pub mod shapes;

use serde::{Deserialize, Serialize};

use crate::naming::{self, Role};
use crate::tensor::TensorSource;

/// One weight of a layer.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(not(feature = "internals"), non_exhaustive)]
pub struct Weight {
    /// Index into the source's tensors.
    pub tensor: usize,
    /// Its object path below the layer's node in tf-keras' object graph (`cell/kernel`),
    /// when the source records it (TF-format checkpoints).
    pub object_path: Option<String>,
}

/// A layer of a model, as a Keras file or a Keras TF-format checkpoint records it, or as
/// inferred from variable names.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(not(feature = "internals"), non_exhaustive)]
pub struct Layer {
    /// The layer's own name (`dense_1`, or a user's name).
    pub name: String,
    /// Its class (`Dense`), when known.
    pub class_name: Option<String>,
    /// Its activation (`relu`), when the file says.
    pub activation: Option<String>,
    /// Its `trainable` flag, when the file says.
    pub trainable: Option<bool>,
    /// Its weights, in Keras' order when [`Layer::ordered`].
    pub weights: Vec<Weight>,
    /// True when `weights` are known to be in Keras' order (recorded by the file, or
    /// derived from built-in weight names).
    pub ordered: bool,
    /// The attribute a subclassed model tracks the layer under (`bert`), when that is how
    /// the file reached it; `None` for a Functional or Sequential model's layers, which
    /// tf-keras tracks as `layer_with_weights-k`.
    pub tracked_as: Option<String>,
    /// A nested model's own layers, in its order, when the file's config says (empty
    /// otherwise).
    pub inner: Vec<Inner>,
}

/// A layer of a nested model, from the model config.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(not(feature = "internals"), non_exhaustive)]
pub struct Inner {
    /// The layer's name.
    pub name: String,
    /// Its class (`Dense`).
    pub class: String,
    /// Its `trainable` flag, when the config says.
    pub trainable: Option<bool>,
}

impl Layer {
    /// True when the layer is a model of its own (a nested Sequential or Functional, or,
    /// without a class, a layer whose weights sit in the scopes of several layers of its
    /// own), whose weights Keras 2 `.h5` files list trainable first and tf-keras tracks
    /// under `layer_with_weights-K` of its own.
    #[doc(hidden)] // takes the crate-private reader trait
    pub fn is_nested_model(&self, src: &dyn TensorSource) -> bool {
        if let Some(c) = &self.class_name {
            return classes::structure(c) == Some(classes::Structure::Model);
        }
        if !self.inner.is_empty() {
            return true;
        }
        let scopes: std::collections::BTreeSet<&str> = self
            .weights
            .iter()
            .filter_map(|w| {
                let v = &src.tensors()[w.tensor].variable;
                let local = layout::local_path(&self.name, v);
                (local.len() >= 2).then(|| local[0])
            })
            .collect();
        scopes.len() >= 2 && !scopes.iter().any(|s| is_sublayer_scope(s))
    }
}

impl Layer {
    /// A layer whose weights the file lists in Keras' order.
    pub(crate) fn recorded(name: String, tensors: impl IntoIterator<Item = usize>) -> Layer {
        Layer {
            name,
            weights: tensors
                .into_iter()
                .map(|tensor| Weight {
                    tensor,
                    object_path: None,
                })
                .collect(),
            ordered: true,
            ..Layer::default()
        }
    }

    /// Indices of its weights' tensors, in order.
    pub fn tensors(&self) -> impl Iterator<Item = usize> + '_ {
        self.weights.iter().map(|w| w.tensor)
    }
}

/// A model config a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KerasConfig<'a> {
    /// Keras 3's `config.json` (`.keras` archives).
    Keras3(&'a str),
    /// A Keras 2 `model_config` (full-model `.h5`, `model.to_json()`).
    Keras2(&'a str),
}

/// A Keras 3 model config (`{"class_name", "config"}`, as Keras 3's legacy `.h5` holds it)
/// in `config.json`'s form: with the module and registered name Keras 3's
/// `serialize_keras_object` gives a Sequential or Functional model. `None` for another
/// class or what is not such a JSON object.
pub fn keras3_top(model_config: &str) -> Option<String> {
    let mut v: serde_json::Value = serde_json::from_str(model_config).ok()?;
    let o = v.as_object_mut()?;
    let (module, registered) = match o.get("class_name")?.as_str()? {
        "Sequential" => ("keras", serde_json::Value::Null),
        "Functional" => ("keras.src.models.functional", "Functional".into()),
        _ => return None,
    };
    o.entry("module").or_insert(module.into());
    o.entry("registered_name").or_insert(registered);
    Some(v.to_string())
}

/// True for a model config in Keras 3's `config.json` form (a top-level `module`).
pub fn is_keras3_top(model_config: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(model_config)
        .ok()
        .is_some_and(|v| v.get("module").is_some())
}

/// How a model's layer order is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(not(feature = "internals"), non_exhaustive)]
pub enum Order {
    /// The file records the model's layer order.
    Recorded,
    /// The order the model built or tracked its layers in (a TF1 graph's variable
    /// creation order; a subclassed model's attribute tracking order): the order of
    /// `model.layers` for a Sequential model, a subclassed one and most functional ones,
    /// but not necessarily where branches run side by side.
    Created,
    /// Only variable names (or class-named groups) say which layers exist; their order
    /// is a guess that loaders must not rely on.
    Inferred,
}

/// A model: its layers in model order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(not(feature = "internals"), non_exhaustive)]
pub struct Model {
    /// The layers, in model order (as well as [`order`](Model::order) says it is known).
    pub layers: Vec<Layer>,
    /// How the order of `layers` is known.
    pub order: Order,
    /// Why the order is not better known, when the source said something about it
    /// (for refusals).
    pub why: Option<String>,
}

impl Model {
    /// The layers that have weights, in order (what Keras' loaders walk).
    pub fn weighted(&self) -> impl Iterator<Item = &Layer> {
        self.layers.iter().filter(|l| !l.weights.is_empty())
    }
}

/// The model a source describes: its recorded layers when it has them, otherwise layers
/// inferred from variable names. Only model weights are placed in layers.
pub fn describe(src: &dyn TensorSource) -> Model {
    if !src.layers().is_empty() {
        let mut layers = src.layers().to_vec();
        for l in &mut layers {
            l.weights.retain(|w| {
                let t = &src.tensors()[w.tensor];
                naming::role(&t.name, &t.variable) == Role::Weight
            });
        }
        return Model {
            layers,
            order: src.layer_order(),
            why: None,
        };
    }
    from_names(src)
}

/// `dense/kernel:0` → `dense/kernel` (Keras 2 weight names carry TF's output index).
pub fn strip_output_index(name: &str) -> &str {
    match name.rsplit_once(':') {
        Some((base, idx)) if !idx.is_empty() && idx.bytes().all(|b| b.is_ascii_digit()) => base,
        _ => name,
    }
}

/// Model auto-names: a shared first scope so named is the model, not a layer
/// (`sequential_1/dense_4/kernel`, Keras 3 paths).
fn is_model_scope(s: &str) -> bool {
    matches!(
        classes::strip_counter(s),
        "sequential" | "functional" | "model"
    )
}

/// Scopes that are parts of one layer, never layers of their own.
fn is_sublayer_scope(s: &str) -> bool {
    s.ends_with("_cell")
        || s.starts_with("forward_")
        || s.starts_with("backward_")
        || matches!(s, "query" | "key" | "value" | "attention_output")
}

/// Layers from variable names: weights grouped by their first scope, after a scope
/// every weight shares that names the model (an auto-named model, or a scope above
/// several layers). Layer order is natural name order (`dense_2` before `dense_10`), and
/// [`Order::Inferred`].
fn from_names(src: &dyn TensorSource) -> Model {
    let weights: Vec<(usize, Vec<&str>)> = src
        .tensors()
        .iter()
        .enumerate()
        .filter(|(_, t)| naming::role(&t.name, &t.variable) == Role::Weight)
        .map(|(i, t)| (i, t.variable.split('/').collect()))
        .collect();
    let first = weights.first().map(|(_, c)| c[0]);
    let shared = first.filter(|f| weights.iter().all(|(_, c)| c.len() >= 3 && c[0] == *f));
    let strip = shared.is_some_and(|f| {
        let seconds: std::collections::BTreeSet<&str> = weights.iter().map(|(_, c)| c[1]).collect();
        is_model_scope(f) || (seconds.len() >= 2 && !seconds.iter().any(|s| is_sublayer_scope(s)))
    });
    let skip = usize::from(strip);
    let mut layers: Vec<Layer> = Vec::new();
    let mut locals: Vec<Vec<String>> = Vec::new();
    let mut by_name: std::collections::HashMap<String, usize> = Default::default();
    for (i, comps) in &weights {
        let (name, local) = if comps.len() > skip + 1 {
            (comps[..=skip].join("/"), comps[skip + 1..].join("/"))
        } else {
            (comps.join("/"), String::new())
        };
        let k = *by_name.entry(name.clone()).or_insert_with(|| {
            layers.push(Layer {
                name: name.clone(),
                ..Layer::default()
            });
            locals.push(Vec::new());
            layers.len() - 1
        });
        layers[k].weights.push(Weight {
            tensor: *i,
            object_path: None,
        });
        locals[k].push(local);
    }
    for (l, loc) in layers.iter_mut().zip(&locals) {
        let ranks: Option<Vec<Vec<usize>>> = loc.iter().map(|n| classes::weight_rank(n)).collect();
        match ranks {
            Some(r) => {
                let mut paired: Vec<(Vec<usize>, Weight)> =
                    r.into_iter().zip(l.weights.drain(..)).collect();
                paired.sort_by(|a, b| a.0.cmp(&b.0));
                l.weights = paired.into_iter().map(|(_, w)| w).collect();
                l.ordered = true;
            }
            None => l.ordered = l.weights.len() <= 1,
        }
    }
    // The graph's creation order, when every weight is in it and no layer was called
    // inside a nested model; else names only.
    let nested = src
        .tf1_graph()
        .map(|g| nested_calls(g, &layers))
        .unwrap_or_default();
    let why = (!nested.is_empty()).then(|| {
        format!(
            "its .meta graph calls layers {} inside a nested model, which the variable names do not group",
            nested.join(", ")
        )
    });
    let graph = src.tf1_graph().filter(|_| nested.is_empty());
    let created: Option<std::collections::HashMap<&str, usize>> = graph.map(|g| {
        g.variables
            .iter()
            .enumerate()
            .map(|(k, n)| (n.as_str(), k))
            .collect()
    });
    let first_created = |l: &Layer| -> Option<usize> {
        let c = created.as_ref()?;
        l.tensors()
            .map(|i| c.get(src.tensors()[i].variable.as_str()).copied())
            .collect::<Option<Vec<usize>>>()?
            .into_iter()
            .min()
    };
    let keys: Option<Vec<usize>> = layers.iter().map(first_created).collect();
    match keys {
        Some(k) => {
            let mut keyed: Vec<(usize, Layer)> = k.into_iter().zip(layers).collect();
            keyed.sort_by_key(|(k, _)| *k);
            Model {
                layers: keyed.into_iter().map(|(_, l)| l).collect(),
                order: Order::Created,
                why: None,
            }
        }
        None => {
            layers.sort_by_key(|l| natural_key(&l.name));
            Model {
                layers,
                order: Order::Inferred,
                why,
            }
        }
    }
}

/// Name scopes that run a graph's training, not its model.
const NOT_MODEL_SCOPES: &[&str] = &["gradients", "training", "save", "loss", "metrics"];

/// Layers a TF1 graph called inside a nested model: under a scope that is no layer of
/// ours and no training machinery (`sequential/dense/MatMul` for layer `dense`), and that
/// holds calls of some layers but not all (a scope that calls them all is the model's
/// own, when it was called on a placeholder). Their variable names do not say which
/// model they belong to, so the model's layer list cannot be told from them.
fn nested_calls<'a>(g: &crate::formats::tf::meta::MetaGraph, layers: &'a [Layer]) -> Vec<&'a str> {
    let names: std::collections::HashSet<&str> = layers.iter().map(|l| l.name.as_str()).collect();
    let mut by_scope: std::collections::BTreeMap<&str, std::collections::BTreeSet<&str>> =
        Default::default();
    for (a, b) in &g.scopes {
        if names.contains(b.as_str())
            && !names.contains(a.as_str())
            && !NOT_MODEL_SCOPES.contains(&a.as_str())
            && !crate::naming::is_optimizer_scope(a)
        {
            by_scope.entry(a).or_default().insert(b);
        }
    }
    let mut nested: Vec<&'a str> = Vec::new();
    for called in by_scope.values() {
        if called.len() < names.len() {
            for l in layers.iter().filter(|l| called.contains(l.name.as_str())) {
                if !nested.contains(&l.name.as_str()) {
                    nested.push(&l.name);
                }
            }
        }
    }
    nested
}

/// `dense_10` sorts after `dense_2`: (base, counter) with no counter first.
pub(crate) fn natural_key(name: &str) -> (String, u64) {
    let base = classes::strip_counter(name);
    let n = name[base.len()..]
        .trim_start_matches('_')
        .parse::<u64>()
        .map_or(0, |n| n + 1);
    (base.to_string(), n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order() {
        let mut v = vec!["dense_10", "dense_2", "dense", "conv2d_1", "dense_1"];
        v.sort_by_key(|n| natural_key(n));
        assert_eq!(v, ["conv2d_1", "dense", "dense_1", "dense_2", "dense_10"]);
    }
}
