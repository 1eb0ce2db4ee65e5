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
use crate::keras::shapes::{self, Flavour, ShapeRow};
use crate::keras::KerasConfig;
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
    /// Keras' Output Shape for the layer, when the file carries a model config.
    pub shape: Option<ShapeRow>,
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
    /// The model's name, from its config.
    pub model_name: Option<String>,
    /// Which Keras wrote the file (and so how Keras would print its summary), when known.
    pub flavour: Option<Flavour>,
    /// True when the rows are the config's `model.layers`, with output shapes.
    pub from_config: bool,
    /// What is known of the row order when no config gives it.
    pub order_note: Option<String>,
    /// Tensors left out as second copies of weights (a Keras 3 `export()`).
    pub duplicates: usize,
    /// Keras 3 seed generator state: a variable, not a weight.
    pub seed_state: Count,
    pub seed_tensors: usize,
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
    class: Option<&str>,
) -> WeightLine {
    let t = &src.tensors()[i];
    let params = if t.dtype == DType::String {
        0
    } else {
        t.num_elements().unwrap_or(0)
    };
    let trainable = if naming::non_trainable_by_definition(&t.variable)
        || class.is_some_and(crate::keras::classes::all_weights_non_trainable)
        || frozen == Some(true)
    {
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
    // Whether the file says of every weight of its layers if it is trainable (i.e. there
    // is a config).
    let known = !src.layers().is_empty()
        && src.layers().iter().all(|l| {
            l.tensors()
                .all(|i| crate::keras::layout::config_trainable(l, src, i).is_some())
        });
    let duplicates = export_duplicates(src);
    // Weights that are no weights of the model: second copies, seed generator state.
    let not_counted =
        |i: usize| duplicates.contains(&i) || is_seed_state(&src.tensors()[i]);
    for l in src.layers() {
        // A Keras 3 Sequential tracks its layers through the Functional it wraps
        // (`model/_functional/_operations/<i>/…` under `tf.train.Checkpoint`): that is no
        // layer of the model, so its weights are grouped by their own layers' scopes.
        if l.class_name.is_none() && l.name == "_functional" {
            continue;
        }
        let weights = l
            .tensors()
            .filter(|&i| roles[i] == Role::Weight && !not_counted(i))
            .map(|i| {
                placed.insert(i);
                let frozen = known
                    .then(|| crate::keras::layout::config_trainable(l, src, i))
                    .flatten()
                    .map(|t| !t);
                weight_line(src, i, frozen, &graph, l.class_name.as_deref())
            })
            .collect();
        layers.push(LayerLine {
            name: l.name.clone(),
            class_name: l.class_name.clone(),
            activation: l.activation.clone(),
            weights,
            shape: None,
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
    let mut seed_state = Count::default();
    let mut seed_tensors = 0;
    let mut unplaced = Vec::new();
    for (i, t) in src.tensors().iter().enumerate() {
        match roles[i] {
            Role::Weight if duplicates.contains(&i) => {}
            // Keras 3 keeps a SeedGenerator's state in `model.variables` but not in
            // `model.weights`, so `count_params()` leaves it out.
            Role::Weight if is_seed_state(t) => {
                seed_tensors += 1;
                seed_state.add(&weight_line(src, i, None, &graph, None));
            }
            Role::Weight if !placed.contains(&i) => unplaced.push(i),
            Role::Optimizer => {
                optimizer_tensors += 1;
                optimizer.add(&weight_line(src, i, None, &graph, None));
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
    group_unplaced(src, unplaced, &mut layers, &mut by_scope, &graph);
    let config = config_rows(src, &mut layers);
    let from_config = config.is_some();
    let (model_name, flavour, order_note) = match config {
        Some((name, f, note)) => (name, Some(f), note),
        None => (None, flavour_without_config(src), order_note(src)),
    };
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
        model_name,
        flavour,
        from_config,
        order_note,
        duplicates: duplicates.len(),
        seed_state,
        seed_tensors,
    }
}

/// Keras 3's `SeedGenerator.state` (`keras/src/random/seed_generator.py`).
/// A random generator's state, which layers track but do not count among their
/// weights: Keras 3's `SeedGenerator` (`seed_generator_state`), and the
/// `tf.random.Generator` of a tf-keras `RandomGenerator` (`RandomFlip` and the other
/// preprocessing layers: `_random_generator/_generator/_state_var` in a checkpoint).
fn is_seed_state(t: &crate::tensor::TensorInfo) -> bool {
    t.variable.rsplit('/').next() == Some("seed_generator_state")
        || t.name.contains("_random_generator/_generator/_state_var/")
}

/// A Keras 3 `export()` SavedModel stores every weight twice: under `variables/<i>` (the
/// model's variables) and `_all_variables/<i>` (what the serving function captures;
/// `keras/src/export/saved_model_export_archive.py`). The second copies, when the first
/// exist.
fn export_duplicates(src: &dyn TensorSource) -> HashSet<usize> {
    let ts = src.tensors();
    if !ts.iter().any(|t| t.name.starts_with("variables/")) {
        return HashSet::new();
    }
    ts.iter()
        .enumerate()
        .filter(|(_, t)| t.name.starts_with("_all_variables/"))
        .map(|(i, _)| i)
        .collect()
}

/// `variables/10` after `variables/2`: digits compare as numbers.
fn natural_key(s: &str) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let mut text = String::new();
    let mut num: Option<u64> = None;
    for ch in s.chars() {
        match (ch.to_digit(10), num) {
            (Some(d), Some(n)) => num = Some(n.saturating_mul(10).saturating_add(u64::from(d))),
            (Some(d), None) => num = Some(u64::from(d)),
            (None, Some(n)) => {
                out.push((std::mem::take(&mut text), n));
                num = None;
                text.push(ch);
            }
            (None, None) => text.push(ch),
        }
    }
    out.push((text, num.unwrap_or(0)));
    out
}

/// Weights no recorded layer holds, grouped into layers by scope: the file's own
/// layer of that name when there is one, else a layer per scope, in the file's order
/// (keys in natural order). A first scope every such weight shares, above several layers,
/// is the model's name (`cnn/conv2d/kernel` of a Keras 3 export) and is left out. Within a
/// new layer, weights take Keras' per-class order (kernel before bias) when every name is
/// a built-in one.
fn group_unplaced(
    src: &dyn TensorSource,
    mut unplaced: Vec<usize>,
    layers: &mut Vec<LayerLine>,
    by_scope: &mut std::collections::HashMap<String, usize>,
    graph: &GraphTrainable<'_>,
) {
    let ts = src.tensors();
    unplaced.sort_by_cached_key(|&i| natural_key(&ts[i].name));
    let comps: Vec<Vec<&str>> = unplaced
        .iter()
        .map(|&i| ts[i].variable.split('/').collect())
        .collect();
    let first = comps.first().map(|c| c[0]);
    let strip = first.is_some_and(|f| {
        comps.iter().all(|c| c.len() >= 3 && c[0] == f)
            && !by_scope.contains_key(f)
            && comps.iter().map(|c| c[1]).collect::<HashSet<_>>().len() >= 2
    });
    let start = layers.len();
    for (&i, c) in unplaced.iter().zip(&comps) {
        let c = if strip { &c[1..] } else { &c[..] };
        let scope = if c.len() > 1 {
            c[..c.len() - 1].join("/")
        } else {
            c.join("/")
        };
        let mut w = weight_line(src, i, None, graph, None);
        if strip {
            w.variable = c.join("/");
        }
        match by_scope.get(&scope) {
            Some(&k) => layers[k].weights.push(w),
            None => {
                by_scope.insert(scope.clone(), layers.len());
                layers.push(LayerLine {
                    name: scope,
                    class_name: None,
                    activation: None,
                    weights: vec![w],
                    shape: None,
                });
            }
        }
    }
    for l in &mut layers[start..] {
        let prefix = format!("{}/", l.name);
        let ranks: Option<Vec<Vec<usize>>> = l
            .weights
            .iter()
            .map(|w| {
                crate::keras::classes::weight_rank(
                    w.variable.strip_prefix(&prefix).unwrap_or(&w.variable),
                )
            })
            .collect();
        if let Some(r) = ranks {
            let mut paired: Vec<(Vec<usize>, WeightLine)> =
                r.into_iter().zip(l.weights.drain(..)).collect();
            paired.sort_by(|a, b| a.0.cmp(&b.0));
            l.weights = paired.into_iter().map(|(_, w)| w).collect();
        }
    }
}

/// When the file carries a model config: the rows become the config's `model.layers`
/// (a Sequential's without its InputLayer, as Keras lists them) with their output shapes,
/// each taking the weights of the file's layer of that name; a layer of the file that
/// the config does not list stays, after them, when it has weights, and is noted.
/// Returns the model's name, the Keras flavour of the config and that note.
fn config_rows(
    src: &dyn TensorSource,
    layers: &mut Vec<LayerLine>,
) -> Option<(Option<String>, Flavour, Option<String>)> {
    let (json, flavour) = match src.keras_config()? {
        KerasConfig::Keras3(j) => (j, Flavour::Keras3),
        KerasConfig::Keras2(j) => (j, Flavour::TfKeras),
    };
    let model = shapes::infer(json, flavour)?;
    let info = crate::keras::config::config_layers(json);
    let mut by_name: std::collections::HashMap<String, usize> = Default::default();
    for (k, l) in layers.iter().enumerate() {
        by_name.entry(l.name.clone()).or_insert(k);
    }
    let mut old: Vec<Option<LayerLine>> = std::mem::take(layers).into_iter().map(Some).collect();
    for row in model.rows {
        let found = by_name.get(&row.name).and_then(|&k| old[k].take());
        let line = match found {
            Some(mut l) => {
                // As Keras prints it (`Custom>Scale` is the class `Scale`).
                l.class_name = Some(row.class.clone());
                l.shape = Some(row);
                l
            }
            None => LayerLine {
                name: row.name.clone(),
                class_name: Some(row.class.clone()),
                activation: info.get(&row.name).and_then(|c| c.activation.clone()),
                weights: Vec::new(),
                shape: Some(row),
            },
        };
        layers.push(line);
    }
    let extra: Vec<LayerLine> = old
        .into_iter()
        .flatten()
        .filter(|l| !l.weights.is_empty())
        .collect();
    let note = (!extra.is_empty()).then(|| {
        let names: Vec<&str> = extra.iter().map(|l| l.name.as_str()).collect();
        format!(
            "the file has weights in layers its model config does not list ({}): they follow the config's rows, without shapes",
            names.join(", ")
        )
    });
    layers.extend(extra);
    Some((model.name, flavour, note))
}

/// Without a config: Keras 3 for a Keras 3 `.weights.h5` (its `layers/…/vars` paths);
/// tf-keras for a Keras 2 `.h5` whose weight names carry TensorFlow's `:0` (tf-keras'
/// `w.name`; Keras 3's legacy `.h5` writes `w.path`, without it); unknown otherwise.
fn flavour_without_config(src: &dyn TensorSource) -> Option<Flavour> {
    if src.keras3_paths() {
        return Some(Flavour::Keras3);
    }
    let tf_names = || {
        src.tensors()
            .iter()
            .filter(|t| naming::role(&t.name, &t.variable) == Role::Weight)
            .all(|t| crate::keras::strip_output_index(&t.name) != t.name)
    };
    (src.loads_by_position() && !src.tensors().is_empty() && tf_names()).then_some(Flavour::TfKeras)
}

/// What the row order is, when no config gives `model.layers`.
fn order_note(src: &dyn TensorSource) -> Option<String> {
    if src.keras3_paths() {
        let in_layers = src
            .tensors()
            .iter()
            .any(|t| t.name.trim_start_matches('/').starts_with("layers/"));
        if !in_layers {
            return Some(
                "rows in the file's group order (a subclassed model keeps its layers at their attribute \
                 names, which record neither their classes nor the model's order)"
                    .into(),
            );
        }
        return Some(
            "rows in the file's group order (by class name: a Keras 3 .weights.h5 without its config does not record \
             the model's layer order); classes from the group paths"
                .into(),
        );
    }
    match src.layer_order() {
        crate::keras::Order::Recorded => None,
        crate::keras::Order::Created => {
            Some("layers in the order their variables were created".into())
        }
        crate::keras::Order::Inferred => {
            Some("layers in name order (the file does not record the model's)".into())
        }
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

/// tf-keras' `readable_memory_size` (`tf_keras/src/utils/layer_utils.py`): the same
/// steps as Keras 3's, but bytes are `Byte` (`0.00 Byte`, `48.00 Byte`).
pub fn tf_keras_size(bytes: u64) -> String {
    let s = keras_size(bytes);
    match s.strip_suffix(" B") {
        Some(n) => format!("{n} Byte"),
        None => s,
    }
}

/// A size as the file's Keras prints it.
pub fn size_for(bytes: u64, flavour: Option<Flavour>) -> String {
    match flavour {
        Some(Flavour::TfKeras) => tf_keras_size(bytes),
        _ => keras_size(bytes),
    }
}

/// A count as the file's Keras prints it: tf-keras plain (`1797`), Keras 3 with
/// thousands separators (`1,797`).
pub fn count_for(n: u64, flavour: Option<Flavour>) -> String {
    match flavour {
        Some(Flavour::TfKeras) => n.to_string(),
        _ => crate::cli::output::thousands(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tf_keras_sizes() {
        assert_eq!(tf_keras_size(0), "0.00 Byte");
        assert_eq!(tf_keras_size(7188), "7.02 KB");
        assert_eq!(count_for(1797, Some(Flavour::TfKeras)), "1797");
        assert_eq!(count_for(1797, Some(Flavour::Keras3)), "1,797");
    }

    #[test]
    fn sizes_like_keras() {
        assert_eq!(keras_size(10132), "9.89 KB");
        assert_eq!(keras_size(48), "48.00 B");
        assert_eq!(keras_size(1024), "1.00 KB");
        assert_eq!(keras_size(5 << 20), "5.00 MB");
    }
}
