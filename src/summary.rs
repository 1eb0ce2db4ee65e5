//! A Keras-style `model.summary()` from weights alone.
//!
//! Layers come from the file when it records them (Keras HDF5 layer groups, Keras 3
//! `layers/*`, a Keras TF-format checkpoint's object graph, ckptconv's own record in
//! checkpoints it wrote); otherwise weights are grouped by the scope before the last `/`
//! of their variable name. Class and activation come from the model config when there is
//! one. Optimizer state, counters and format bookkeeping are counted apart and excluded
//! from the totals, as Keras' `count_params()` excludes them.
//!
//! Trainable or not: a weight is non-trainable when its layer is frozen in the model config
//! or when it is non-trainable by definition (BatchNormalization's moving statistics). A TF1
//! checkpoint's `.meta` graph says it for each variable it has (its `trainable_variables`
//! collection). Otherwise a layer may have been frozen, so the trainable count is unknown
//! and said so; only the non-trainable-by-definition count is certain ("at least").

use std::collections::HashSet;

use crate::dtype::DType;
use crate::naming::{self, Role};
use crate::tensor::TensorSource;

/// One weight in a summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightLine {
    pub variable: String,
    pub dtype: DType,
    pub shape: Vec<u64>,
    pub params: u64,
    pub bytes: u64,
    /// `None` when it cannot be known.
    pub trainable: Option<bool>,
}

/// One layer in a summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerLine {
    pub name: String,
    pub class_name: Option<String>,
    pub activation: Option<String>,
    pub weights: Vec<WeightLine>,
}

impl LayerLine {
    pub fn params(&self) -> u64 {
        self.weights.iter().map(|w| w.params).sum()
    }
}

/// A parameter count and its size in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Count {
    pub params: u64,
    pub bytes: u64,
}

impl Count {
    fn add(&mut self, w: &WeightLine) {
        self.params += w.params;
        self.bytes += w.bytes;
    }
}

/// The whole summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub layers: Vec<LayerLine>,
    pub total: Count,
    /// `None` when the file cannot say (no model config).
    pub trainable: Option<Count>,
    pub non_trainable: Option<Count>,
    /// Non-trainable by definition: certain even without a config.
    pub non_trainable_at_least: Count,
    pub optimizer: Count,
    pub optimizer_tensors: usize,
    /// Counters (`global_step`, `save_counter`, …) with their values when scalar integers.
    pub counters: Vec<(String, Option<i64>)>,
}

/// For each variable of a TF1 checkpoint's `.meta` graph, whether it is trainable.
type GraphTrainable<'a> = Option<std::collections::HashMap<&'a str, bool>>;

fn graph_trainable(src: &dyn TensorSource) -> GraphTrainable<'_> {
    let g = src.tf1_graph()?;
    let trainable: HashSet<&str> = g.trainable.iter().map(String::as_str).collect();
    Some(
        g.variables
            .iter()
            .map(|v| (v.as_str(), trainable.contains(v.as_str())))
            .collect(),
    )
}

fn weight_line(
    src: &dyn TensorSource,
    i: usize,
    frozen: Option<bool>,
    graph: &GraphTrainable<'_>,
) -> WeightLine {
    let t = &src.tensors()[i];
    let params = if t.dtype == DType::String {
        0
    } else {
        t.num_elements().unwrap_or(0)
    };
    let trainable = if naming::non_trainable_by_definition(&t.variable) || frozen == Some(true) {
        Some(false)
    } else {
        // The model config's word, else the TF1 graph's collections.
        frozen.map(|_| true).or_else(|| {
            graph
                .as_ref()
                .and_then(|g| g.get(t.variable.as_str()).copied())
        })
    };
    WeightLine {
        variable: t.variable.clone(),
        dtype: t.dtype,
        shape: t.shape.clone(),
        params,
        bytes: t.byte_len,
        trainable,
    }
}

/// Summarize a source.
pub fn summarize(src: &dyn TensorSource) -> Summary {
    let roles: Vec<Role> = src
        .tensors()
        .iter()
        .map(|t| naming::role(&t.name, &t.variable))
        .collect();
    let graph = graph_trainable(src);
    let mut layers: Vec<LayerLine> = Vec::new();
    let mut placed = HashSet::new();
    // Whether every layer with weights says if it is trainable (i.e. there is a config).
    let known = !src.layers().is_empty()
        && src
            .layers()
            .iter()
            .filter(|l| !l.weights.is_empty())
            .all(|l| l.trainable.is_some());
    for l in src.layers() {
        let frozen = if known { l.trainable.map(|t| !t) } else { None };
        let weights = l
            .tensors()
            .filter(|&i| roles[i] == Role::Weight)
            .map(|i| {
                placed.insert(i);
                weight_line(src, i, frozen, &graph)
            })
            .collect();
        layers.push(LayerLine {
            name: l.name.clone(),
            class_name: l.class_name.clone(),
            activation: l.activation.clone(),
            weights,
        });
    }
    // Linear in the tensor count: weights outside the recorded layers find their scope's
    // line through an index, not a search.
    let mut by_scope: std::collections::HashMap<String, usize> = layers
        .iter()
        .enumerate()
        .map(|(k, l)| (l.name.clone(), k))
        .collect();
    let mut optimizer = Count::default();
    let mut optimizer_tensors = 0;
    let mut counters = Vec::new();
    for (i, t) in src.tensors().iter().enumerate() {
        match roles[i] {
            Role::Weight if !placed.contains(&i) => {
                let scope = match t.variable.rsplit_once('/') {
                    Some((s, _)) => s.to_string(),
                    None => t.variable.clone(),
                };
                let w = weight_line(src, i, None, &graph);
                match by_scope.get(&scope) {
                    Some(&k) => layers[k].weights.push(w),
                    None => {
                        by_scope.insert(scope.clone(), layers.len());
                        layers.push(LayerLine {
                            name: scope,
                            class_name: None,
                            activation: None,
                            weights: vec![w],
                        });
                    }
                }
            }
            Role::Optimizer => {
                optimizer_tensors += 1;
                optimizer.add(&weight_line(src, i, None, &graph));
            }
            Role::Counter => {
                let value = match (t.dtype, src.read(i)) {
                    (DType::Int64, Ok(d)) => d
                        .as_bytes()
                        .and_then(|b| b.try_into().ok())
                        .map(i64::from_le_bytes),
                    (DType::Int32, Ok(d)) => d
                        .as_bytes()
                        .and_then(|b| b.try_into().ok())
                        .map(|b| i64::from(i32::from_le_bytes(b))),
                    _ => None,
                };
                counters.push((t.variable.clone(), value));
            }
            _ => {}
        }
    }
    let mut total = Count::default();
    let mut trainable = Count::default();
    let mut non_trainable = Count::default();
    let mut at_least = Count::default();
    let mut all_known = true;
    for w in layers.iter().flat_map(|l| &l.weights) {
        total.add(w);
        match w.trainable {
            Some(true) => trainable.add(w),
            Some(false) => {
                non_trainable.add(w);
                at_least.add(w);
            }
            None => all_known = false,
        }
    }
    Summary {
        layers,
        total,
        trainable: all_known.then_some(trainable),
        non_trainable: all_known.then_some(non_trainable),
        non_trainable_at_least: at_least,
        optimizer,
        optimizer_tensors,
        counters,
    }
}

/// Keras' `readable_memory_size`: `9.89 KB`, `48.00 B` (powers of 1024).
pub fn keras_size(bytes: u64) -> String {
    let units = ["B", "KB", "MB", "GB", "TB", "PB"];
    let mut v = bytes as f64;
    for u in units {
        if v / 1024.0 < 1.0 {
            return format!("{v:.2} {u}");
        }
        v /= 1024.0;
    }
    format!("{v:.2} PB")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_keras() {
        assert_eq!(keras_size(10132), "9.89 KB");
        assert_eq!(keras_size(48), "48.00 B");
        assert_eq!(keras_size(1024), "1.00 KB");
        assert_eq!(keras_size(5 << 20), "5.00 MB");
    }
}
