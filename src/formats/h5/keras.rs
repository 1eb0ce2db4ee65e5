//! Keras layouts inside HDF5: detection, canonical variable names, layers and configs.
//!
//! Sources: `tf_keras/src/saving/legacy/hdf5_format.py` (Keras 2 `save_weights` and full
//! models: `layer_names`, `weight_names`, attributes split into `name0`, `name1`, … when
//! larger than 64512 bytes) and `keras/src/saving/saving_lib.py` (Keras 3 `.weights.h5`:
//! `layers/<x>/vars/<i>`). The naming rules are documented in `docs/naming.md`.

use std::collections::HashMap;

use super::{raw, H5Source};
use crate::error::{short, Error, Result};

/// The Keras layout of an HDF5 file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Layout {
    /// Keras 2 `save_weights('x.h5')`: `layer_names` at the root.
    Keras2Weights,
    /// Full model `save('x.h5')`: `layer_names` under `/model_weights` (Keras 2, and
    /// Keras 3's legacy writer).
    Keras2FullModel,
    /// Keras 3 `save_weights('x.weights.h5')` (also inside `.keras` archives).
    Keras3Weights,
    /// Keras 3 sharded weights (`.weights.json` + parts).
    Keras3Sharded,
    /// One shard of transformers' sharded `tf_model.h5` (`tf_model-00001-of-00003.h5`):
    /// root `layer_names` lists dataset paths (`bert/embeddings/LayerNorm/beta:0`), not
    /// layer groups.
    HfShard,
    /// transformers' sharded `tf_model.h5` read whole through `tf_model.h5.index.json`.
    HfSharded,
    /// No Keras layout: every dataset, by path.
    Generic,
}

/// Detect the layout from the root group.
pub fn detect(file: &hdf5::File) -> std::result::Result<Layout, String> {
    let root = file.as_group().map_err(|e| e.to_string())?;
    let has_attr = |loc: &hdf5::Location, name: &str| {
        loc.attr_names()
            .map(|ns| ns.iter().any(|n| n == name || *n == format!("{name}0")))
            .unwrap_or(false)
    };
    if has_attr(&root, "layer_names") {
        // transformers' shards list their datasets where Keras lists layer groups.
        let first = raw::read_split_attr(&root, "layer_names")
            .ok()
            .flatten()
            .and_then(|names| names.into_iter().next());
        if first.is_some_and(|n| !n.is_empty() && root.dataset(&n).is_ok()) {
            return Ok(Layout::HfShard);
        }
        return Ok(Layout::Keras2Weights);
    }
    if root.link_exists("model_weights") {
        if let Ok(g) = root.group("model_weights") {
            if has_attr(&g, "layer_names") {
                return Ok(Layout::Keras2FullModel);
            }
        }
    }
    let is_group = |n: &str| root.link_exists(n) && root.group(n).is_ok();
    if is_group("layers")
        || (is_group("optimizer") && root.link_exists("optimizer/vars"))
        || is_group("vars")
    {
        return Ok(Layout::Keras3Weights);
    }
    Ok(Layout::Generic)
}

pub use crate::keras::strip_output_index;

/// Numbers in numeric order, then other names in byte order: a total order (mixing the
/// two comparisons pairwise is not one, and made the sort panic on `["20x", …]`).
fn sort_numeric(names: &mut [String]) {
    names.sort_by_cached_key(|n| (n.parse::<u64>().map_or((1, 0), |v| (0, v)), n.clone()));
}

/// Fill in variable names, layers and configs for the detected layout.
pub(super) fn apply_layout(src: &mut H5Source) -> Result<()> {
    let mut index: HashMap<(usize, String), usize> = src
        .entries
        .iter()
        .enumerate()
        .map(|(i, e)| ((e.part, e.path.clone()), i))
        .collect();
    // Another hard link to a dataset already listed names the same tensor.
    for (part, path, i) in &src.aliases {
        index.entry((*part, path.clone())).or_insert(*i);
    }
    match src.layout {
        super::Layout::Generic => Ok(()),
        super::Layout::Keras2Weights | super::Layout::Keras2FullModel => keras2(src, &index),
        super::Layout::Keras3Weights | super::Layout::Keras3Sharded => keras3(src, &index),
        super::Layout::HfShard | super::Layout::HfSharded => hf_shards(src, &index),
    }
}

/// transformers' sharded `tf_model.h5` (`modeling_tf_utils.py`: `save_pretrained` with
/// `max_shard_size`, `load_tf_sharded_weights`): each shard's root `layer_names` lists its
/// datasets, each at the weight's name without the model's (`bert/…/beta:0`,
/// [`naming::hf_shard_dataset`](crate::naming::hf_shard_dataset)).
///
/// One shard on its own: each listed dataset's variable name is its path without `:0`
/// (the shard does not record the model's name). Read through the index: the weight's
/// name from the index's `weight_map`, without `:0` (`tf_bert_model/bert/…/beta`, as in
/// a `tf_model.h5`), after checking that every weight of the map is listed in the shard
/// the map names, and every listed dataset is a weight the map puts in that shard.
///
/// Layers: the first component of each dataset path (`bert`, as transformers' top-level
/// layers are named in a `tf_model.h5`). The shards list weights by name, not in Keras'
/// order, so no layer's weight order is known ([`crate::keras::Layer::ordered`] is false): a
/// Keras layout is written only `--like` a file that records it.
fn hf_shards(src: &mut H5Source, index: &HashMap<(usize, String), usize>) -> Result<()> {
    let hf = src.hf_index.take();
    // (shard file, dataset path) → weight name, from the index.
    let mut placed: HashMap<(&str, &str), &str> = HashMap::new();
    // dataset path → (weight, shard), to name the shard a misplaced weight belongs in.
    let mut by_dataset: HashMap<&str, (&str, &str)> = HashMap::new();
    if let Some(h) = &hf {
        for (w, shard) in &h.weights {
            let d = crate::naming::hf_shard_dataset(w);
            if let Some((other, other_shard)) = by_dataset.insert(d, (w, shard)) {
                return Err(Error::unsupported(
                    &src.path,
                    format!(
                        "weight_map: weights {other:?} ({other_shard}) and {w:?} ({shard}) are both stored as {d:?}, which transformers cannot tell apart"
                    ),
                ));
            }
            placed.insert((shard.as_str(), d), w.as_str());
        }
    }
    let mut listed = vec![false; src.tensors.len()];
    let mut layers: Vec<crate::keras::Layer> = Vec::new();
    let mut found = 0usize;
    for pi in 0..src.parts.len() {
        let part_path = src.parts[pi].path.clone();
        let file_name = part_path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let bad = |w: String| Error::corrupt(&part_path, w);
        let root = src.parts[pi]
            .file()?
            .as_group()
            .map_err(|e| bad(e.to_string()))?;
        let names = raw::read_split_attr(&root, "layer_names")
            .map_err(|e| e.context("layer_names").into_error(&part_path))?
            .ok_or_else(|| {
                bad(
                    "no layer_names attribute: not a shard of transformers' sharded tf_model.h5"
                        .into(),
                )
            })?;
        for name in names {
            let &i = index.get(&(pi, format!("/{name}"))).ok_or_else(|| {
                bad(format!(
                    "layer_names lists {:?} but there is no dataset /{}",
                    short(&name),
                    short(&name)
                ))
            })?;
            if std::mem::replace(&mut listed[i], true) {
                return Err(bad(format!("layer_names lists {:?} twice", short(&name))));
            }
            src.tensors[i].variable = match &hf {
                None => strip_output_index(&name).to_string(),
                Some(_) => match placed.get(&(file_name.as_str(), name.as_str())) {
                    Some(w) => {
                        found += 1;
                        strip_output_index(w).to_string()
                    }
                    None => {
                        let why = match by_dataset.get(name.as_str()) {
                            Some((w, shard)) => format!(
                                "weight {w:?} is in this shard, but {} puts it in {shard}",
                                src.path.display()
                            ),
                            None => format!(
                                "this shard holds it, but the weight_map of {} lists no weight stored as {name:?}",
                                src.path.display()
                            ),
                        };
                        return Err(Error::corrupt_tensor(&part_path, &name, why));
                    }
                },
            };
            let layer = name.split('/').next().unwrap_or(&name).to_string();
            match layers.iter_mut().find(|l| l.name == layer) {
                Some(l) => l.weights.push(crate::keras::Weight {
                    tensor: i,
                    object_path: None,
                }),
                None => layers.push(crate::keras::Layer {
                    ordered: false,
                    ..crate::keras::Layer::recorded(layer, [i])
                }),
            }
        }
        if hf.is_some() {
            // Through the index, every dataset is a weight of the map.
            if let Some(i) =
                (0..src.tensors.len()).find(|&i| src.entries[i].part == pi && !listed[i])
            {
                return Err(Error::corrupt_tensor(
                    &part_path,
                    &src.tensors[i].name,
                    "a dataset the shard's layer_names does not list",
                ));
            }
        }
    }
    if let Some(h) = &hf {
        if found != h.weights.len() {
            let listed_names: std::collections::HashSet<(&str, &str)> = src
                .entries
                .iter()
                .zip(&listed)
                .filter(|(_, &l)| l)
                .map(|(e, _)| {
                    let f = src.parts[e.part]
                        .path
                        .file_name()
                        .and_then(|n| n.to_str())
                        .unwrap_or_default();
                    (f, e.path.trim_start_matches('/'))
                })
                .collect();
            let (w, shard) = h
                .weights
                .iter()
                .find(|(w, shard)| {
                    !listed_names.contains(&(shard.as_str(), crate::naming::hf_shard_dataset(w)))
                })
                .expect("a weight not found");
            return Err(Error::corrupt_tensor(
                &src.path,
                w,
                format!(
                    "the weight_map puts it in {shard}, whose layer_names lists no {:?}",
                    crate::naming::hf_shard_dataset(w)
                ),
            ));
        }
    }
    // A layer of one weight has its weights in order whatever the shards say.
    for l in &mut layers {
        l.ordered = l.weights.len() <= 1;
    }
    src.layer_order = if layers.len() > 1 {
        crate::keras::Order::Inferred
    } else {
        crate::keras::Order::Recorded
    };
    src.layers = layers;
    Ok(())
}

fn keras2(src: &mut H5Source, index: &HashMap<(usize, String), usize>) -> Result<()> {
    let part = &src.parts[0];
    let path = part.path.clone();
    let bad = |w: String| Error::corrupt(&path, w);
    let root = part.file()?.as_group().map_err(|e| bad(e.to_string()))?;
    let attr_err = |e: raw::AttrError| e.into_error(&path);
    src.model_config = raw::read_str_attr(&root, "model_config").map_err(attr_err)?;
    // Keras 3's legacy `.h5` holds Keras 3's own config (its layers serialized as Keras 3
    // serializes them), without the top-level `module` that `config.json` has: add it, so
    // that the config says which Keras wrote it ([`crate::keras::KerasConfig`]).
    let version = raw::read_str_attr(&root, "keras_version").ok().flatten();
    if version.as_deref().is_some_and(|v| v.starts_with("3.")) {
        src.model_config = src
            .model_config
            .take()
            .map(|c| crate::keras::keras3_top(&c).unwrap_or(c));
    }
    src.training_config = raw::read_str_attr(&root, "training_config").map_err(attr_err)?;
    let base = if src.layout == Layout::Keras2FullModel {
        "/model_weights"
    } else {
        ""
    };
    let base_group = if base.is_empty() {
        root.clone()
    } else {
        root.group(base).map_err(|e| bad(e.to_string()))?
    };
    let layer_names = raw::read_split_attr(&base_group, "layer_names")
        .map_err(attr_err)?
        .unwrap_or_default();
    let config = src
        .model_config
        .as_deref()
        .map(crate::keras::config::config_layers)
        .unwrap_or_default();
    let mut layers = Vec::new();
    for lname in layer_names {
        let g = base_group.group(&lname).map_err(|_| {
            bad(format!(
                "layer_names lists {:?} but there is no group {base}/{}",
                short(&lname),
                short(&lname)
            ))
        })?;
        let weights = raw::read_split_attr(&g, "weight_names")
            .map_err(|e| {
                e.context(&format!("layer {:?}", short(&lname)))
                    .into_error(&path)
            })?
            .unwrap_or_default();
        let mut tensors = Vec::new();
        for w in &weights {
            let dpath = format!("{base}/{lname}/{w}");
            let &i = index.get(&(0, dpath.clone())).ok_or_else(|| {
                bad(format!(
                    "layer {:?} lists weight {:?} but there is no dataset {}",
                    short(&lname),
                    short(w),
                    short(&dpath)
                ))
            })?;
            tensors.push(i);
        }
        let (class_name, activation, trainable) = match config.get(&lname) {
            Some(c) => (Some(c.class.clone()), c.activation.clone(), c.trainable),
            None => (None, None, None),
        };
        let nested_model = class_name
            .as_deref()
            .and_then(crate::keras::classes::structure)
            == Some(crate::keras::classes::Structure::Model);
        let names = canonical_weight_names(&lname, &weights, nested_model);
        for (&i, n) in tensors.iter().zip(names) {
            src.tensors[i].variable = n;
        }
        let inner = crate::keras::config::inner_layers(
            src.model_config.as_deref(),
            &lname,
            class_name.as_deref(),
        );
        layers.push(crate::keras::Layer {
            class_name,
            activation,
            trainable,
            inner,
            ..crate::keras::Layer::recorded(lname, tensors)
        });
    }
    if let Ok(g) = root.group("optimizer_weights") {
        let names = raw::read_split_attr(&g, "weight_names")
            .map_err(|e| e.context("optimizer_weights").into_error(&path))?
            .unwrap_or_default();
        // A name listed with no dataset is a weight lost (Keras' loader would fail on it),
        // not one to pass over.
        for w in names {
            let dpath = format!("/optimizer_weights/{w}");
            let &i = index.get(&(0, dpath.clone())).ok_or_else(|| {
                bad(format!(
                    "optimizer_weights lists weight {:?} but there is no dataset {}",
                    short(&w),
                    short(&dpath)
                ))
            })?;
            src.tensors[i].variable = strip_output_index(&w).to_string();
            src.optimizer_order.push(i);
        }
    }
    src.layers = layers;
    Ok(())
}

/// The variable names of one Keras 2 layer's `weight_names`: without the `:0` output
/// index, and with a Keras 2.0-era uniquified scope put back to the layer's own name
/// (`conv2d_1_1/kernel:0` in layer `conv2d_1` → `conv2d_1/kernel`: TensorFlow renamed the
/// scope because a graph already had one so named). Only when every weight of the layer
/// sits in the same such scope, and the layer is not a nested model (whose weights sit
/// in its inner layers' scopes).
fn canonical_weight_names(layer: &str, weights: &[String], nested_model: bool) -> Vec<String> {
    let stripped: Vec<&str> = weights.iter().map(|w| strip_output_index(w)).collect();
    let scope = stripped
        .first()
        .and_then(|w| w.split_once('/'))
        .map(|(s, _)| s);
    let renamed = !nested_model
        && scope.is_some_and(|s| {
            s != layer
                && crate::keras::layout::is_scope_of(layer, s)
                && stripped
                    .iter()
                    .all(|w| w.split_once('/').is_some_and(|(x, _)| x == s))
        });
    stripped
        .iter()
        .map(|w| match (renamed, w.split_once('/')) {
            (true, Some((_, rest))) => format!("{layer}/{rest}"),
            _ => w.to_string(),
        })
        .collect()
}

fn keras3(src: &mut H5Source, index: &HashMap<(usize, String), usize>) -> Result<()> {
    let config = src
        .archive_config
        .as_deref()
        .map(crate::keras::config::config_layers)
        .unwrap_or_default();
    let mut layers: Vec<crate::keras::Layer> = Vec::new();
    // Each layer's group name (`dense_3`): Keras 3 numbers same-class siblings in model
    // order, so within one class the counter is the order.
    let mut groups: Vec<String> = Vec::new();
    let numbers = std::cell::RefCell::new(Numbering::new());
    for pi in 0..src.parts.len() {
        let file = src.parts[pi].file()?.clone();
        let path = src.parts[pi].path.clone();
        let bad = |w: String| Error::corrupt(&path, w);
        let root = file.as_group().map_err(|e| bad(e.to_string()))?;
        // A Functional or Sequential model's layers sit in `layers/`, named by class; a
        // subclassed model's at the root, at their attribute names (`/d1/vars/0` for
        // `self.d1 = Dense(…)`), which say nothing of their class.
        let mut found: Vec<(hdf5::Group, String, bool)> = Vec::new();
        if let Ok(lg) = root.group("layers") {
            for n in lg.member_names().map_err(|e| bad(e.to_string()))? {
                if let Ok(g) = lg.group(&n) {
                    found.push((g, n, true));
                }
            }
        }
        for n in root.member_names().map_err(|e| bad(e.to_string()))? {
            if ["layers", "vars", "optimizer"].contains(&n.as_str()) {
                continue;
            }
            if let Ok(g) = root.group(&n) {
                found.push((g, n, false));
            }
        }
        found.sort_by(|a, b| (!a.2, &a.1).cmp(&(!b.2, &b.1)));
        let walk = Walk3 {
            index,
            pi,
            config: &config,
            numbers: &numbers,
        };
        for (g, n, in_layers) in found {
            let mut tensors = Vec::new();
            let (real, ordered) = layer3(src, &walk, &g, &n, &[], None, &mut tensors)?;
            let snake = crate::keras::classes::strip_counter(&n);
            let (class_name, activation, trainable) = match config.get(&real) {
                Some(c) => (Some(c.class.clone()), c.activation.clone(), c.trainable),
                None => (
                    in_layers
                        .then(|| crate::keras::classes::class_from_snake_any(snake))
                        .flatten()
                        .map(str::to_string),
                    None,
                    None,
                ),
            };
            match layers.iter_mut().find(|l| l.name == real) {
                Some(l) => {
                    l.weights
                        .extend(crate::keras::Layer::recorded(real, tensors).weights);
                    l.ordered &= ordered;
                }
                None => {
                    let inner = crate::keras::config::inner_layers(
                        src.archive_config.as_deref(),
                        &real,
                        class_name.as_deref(),
                    );
                    layers.push(crate::keras::Layer {
                        class_name,
                        activation,
                        trainable,
                        ordered,
                        inner,
                        ..crate::keras::Layer::recorded(real, tensors)
                    });
                    groups.push(n.clone());
                }
            }
        }
        for (group, prefix) in [("optimizer/vars", "optimizer"), ("vars", "vars")] {
            if let Ok(g) = root.group(group) {
                for (_, vname) in vars_of(&path, &g, &numbers)? {
                    let t = var_index(index, pi, &path, format!("/{group}/{vname}"))?;
                    src.tensors[t].variable = format!("{prefix}/{vname}");
                }
            }
        }
    }
    let lone_shard = src.parts.len() == 1 && keras3_shard_name(&src.parts[0].path);
    check_numbering(numbers.into_inner(), !lone_shard)?;
    // Keras 3 names groups by class, not by position: with a config, use its order.
    // Without one, same-class layers are in counter order (`dense`, `dense_1`, …), and
    // the order across classes is unknown.
    let mut keyed: Vec<(String, crate::keras::Layer)> = groups.into_iter().zip(layers).collect();
    if !config.is_empty() && keyed.iter().all(|(_, l)| config.contains_key(&l.name)) {
        keyed.sort_by_key(|(_, l)| config.get(&l.name).map_or(usize::MAX, |c| c.order));
        src.layer_order = crate::keras::Order::Recorded;
    } else {
        keyed.sort_by_key(|(g, _)| crate::keras::natural_key(g));
        let classes: std::collections::HashSet<&str> = keyed
            .iter()
            .filter(|(_, l)| !l.weights.is_empty())
            .map(|(g, _)| crate::keras::classes::strip_counter(g))
            .collect();
        src.layer_order = if classes.len() <= 1 {
            crate::keras::Order::Recorded
        } else {
            crate::keras::Order::Inferred
        };
    }
    let layers: Vec<crate::keras::Layer> = keyed.into_iter().map(|(_, l)| l).collect();
    src.layers = layers;
    Ok(())
}

/// Dataset names of a `vars` group, in numeric order, with their position; each numbered
/// one is noted in `numbers` under the group's path (see [`check_numbering`]).
///
/// A member that is not a dataset is an error naming the group (`path` is the file, for
/// the message): Keras 3 (`saving_lib.py`, `save_own_variables`) writes a layer's
/// variables as datasets, and a damaged one must not be passed over. Names that are not
/// numbers (a custom layer's own keys) come after the numbered ones.
fn vars_of(
    path: &std::path::Path,
    g: &hdf5::Group,
    numbers: &std::cell::RefCell<Numbering>,
) -> Result<Vec<(usize, String)>> {
    let gname = g.name();
    let bad = |w: String| Error::corrupt(path, format!("{}: {w}", short(&gname)));
    // By link name: asking libhdf5 an iterated object's name (`H5Iget_name`) searches the
    // whole file for it, which made files of a thousand layers take seconds per layer.
    let mut names: Vec<String> = g
        .member_names()
        .map_err(|e| bad(format!("cannot list its members: {e}")))?;
    if let Some(n) = names.iter().find(|n| g.dataset(n).is_err()) {
        return Err(bad(format!(
            "member {:?} is not a dataset (Keras 3 stores a layer's variables as datasets)",
            short(n)
        )));
    }
    sort_numeric(&mut names);
    // A group may be walked twice (a nested container's layers are looked at once to
    // learn their classes): its numbers are noted once per file.
    let mut numbers = numbers.borrow_mut();
    let entry = numbers
        .entry(gname.clone())
        .or_insert_with(|| (path.to_path_buf(), std::collections::BTreeMap::new()));
    entry.1.entry(path.to_path_buf()).or_insert_with(|| {
        names
            .iter()
            .filter_map(|n| n.parse::<u64>().ok())
            .collect()
    });
    Ok(names.into_iter().enumerate().collect())
}

/// The tensor of dataset `dpath` in part `pi` (file `path`): every member of a `vars`
/// group was checked to be a dataset ([`vars_of`]), so one the walk did not read is an
/// error, not a variable to pass over.
fn var_index(
    index: &HashMap<(usize, String), usize>,
    pi: usize,
    path: &std::path::Path,
    dpath: String,
) -> Result<usize> {
    let key = (pi, dpath);
    index.get(&key).copied().ok_or_else(|| {
        Error::corrupt(
            path,
            format!("{}: a variable that was not read", short(&key.1)),
        )
    })
}

/// The numbered variables of each `vars` group, by the group's path (over every part
/// of sharded weights): the first file that has the group, and each file's numbers.
type Numbering = std::collections::BTreeMap<
    String,
    (
        std::path::PathBuf,
        std::collections::BTreeMap<std::path::PathBuf, Vec<u64>>,
    ),
>;

/// Whether `path` is named as one part of Keras 3 sharded weights is
/// (`ShardedH5IOStore`: `<name>_00001.weights.h5`).
fn keras3_shard_name(path: &std::path::Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(".weights.h5"))
        .and_then(|n| n.rsplit_once('_'))
        .is_some_and(|(_, d)| d.len() >= 5 && d.bytes().all(|b| b.is_ascii_digit()))
}

/// Keras 3 numbers a layer's variables `vars/0`, `vars/1`, … in its weight order, from 0
/// without a gap (sharded weights may spread one group's over several parts, so the
/// check is over all of them): a gap, or a number twice (`1` and `01`), is a variable lost
/// to damage, and an error naming the group and the missing number. `from_zero`: false
/// for one part of sharded weights read on its own, whose first group may continue one
/// the previous part began (its numbers still run without a gap).
fn check_numbering(numbers: Numbering, from_zero: bool) -> Result<()> {
    for (group, (path, parts)) in numbers {
        let mut v: Vec<u64> = parts.into_values().flatten().collect();
        v.sort_unstable();
        let first = if from_zero {
            0
        } else {
            v.first().copied().unwrap_or(0)
        };
        for (k, &n) in v.iter().enumerate() {
            let k = first.saturating_add(k as u64);
            if n != k {
                let what = if n < k {
                    format!("variable {n} twice")
                } else {
                    format!(
                        "no variable {k} (it has {}): Keras 3 numbers a layer's variables \
                         0, 1, 2, … without a gap",
                        v.iter()
                            .take(20)
                            .map(|n| n.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                            + if v.len() > 20 { ", …" } else { "" }
                    )
                };
                return Err(Error::corrupt(path, format!("{}: {what}", short(&group))));
            }
        }
    }
    Ok(())
}

/// Sub-objects of a Keras 3 layer group, in the order the layer tracks them (and lists
/// their weights): an RNN's cell, Bidirectional's directions, a wrapper's layer,
/// MultiHeadAttention's dense layers, a layer used as activation.
const SUBOBJECT_ORDER: &[&str] = &[
    "cell",
    "forward_layer",
    "backward_layer",
    "layer",
    "query_dense",
    "key_dense",
    "value_dense",
    "output_dense",
    "activation",
];

/// What walking one Keras 3 layer group needs.
struct Walk3<'a> {
    index: &'a HashMap<(usize, String), usize>,
    pi: usize,
    config: &'a HashMap<String, crate::keras::config::ConfigLayer>,
    numbers: &'a std::cell::RefCell<Numbering>,
}

/// Name the variables of one Keras 3 layer group and its nested layers, appending them to
/// `tensors` in Keras' weight order (own variables, then sub-objects in tracking order);
/// returns the layer's real name, and whether that order is known (a nested container
/// without a config, with layers of several classes, is not: its groups are named by
/// class, not by position).
fn layer3(
    src: &mut H5Source,
    w: &Walk3<'_>,
    g: &hdf5::Group,
    group_name: &str,
    chain: &[String],
    parent_snake: Option<&str>,
    tensors: &mut Vec<usize>,
) -> Result<(String, bool)> {
    use crate::keras::classes::strip_counter;
    let gpath = g.name();
    let vars = g.group("vars").ok();
    // A `name` that cannot be read leaves the group's name, unless it is over the
    // ceiling on decoded strings: that is refused, not passed over.
    let real = match vars.as_ref().map(|v| raw::read_str_attr(v, "name")) {
        Some(Ok(Some(n))) => n,
        Some(Err(e)) if e.limit => return Err(e.into_error(&src.parts[w.pi].path)),
        _ => group_name.to_string(),
    };
    // The class: from the group name in a `layers/` container (`dense_3`), else from the
    // object's own name (`forward_layer` holds `forward_lstm`; `layer` holds `dense`).
    let snake = match (group_name, parent_snake) {
        ("cell", Some(p)) => format!("{p}_cell"),
        // MultiHeadAttention's `query_dense` (whose name is `query`) names its class.
        _ if crate::keras::classes::keras3_vars(group_name).is_some() => group_name.to_string(),
        _ if SUBOBJECT_ORDER.contains(&group_name) && real != group_name => {
            let r = real
                .strip_prefix("forward_")
                .or_else(|| real.strip_prefix("backward_"))
                .unwrap_or(&real);
            strip_counter(r).to_string()
        }
        _ => strip_counter(group_name).to_string(),
    };
    let mut new_chain = chain.to_vec();
    new_chain.push(real.clone());
    if let Some(v) = &vars {
        let names = vars_of(&src.parts[w.pi].path, v, w.numbers)?;
        // The variables a layer has: its class's, less those its config leaves out
        // (`use_bias`, `center`, `scale`); without a config, a missing last `bias`.
        let absent: &[&str] = w.config.get(&real).map_or(&[], |c| c.absent.as_slice());
        let known: Option<Vec<&str>> = crate::keras::classes::keras3_vars(&snake)
            .map(|k| {
                k.iter()
                    .copied()
                    .filter(|v| !absent.contains(v))
                    .collect::<Vec<_>>()
            })
            .filter(|k| k.len() >= names.len())
            .and_then(|k| {
                if k.len() == names.len() {
                    Some(k)
                } else if names.len() + 1 == k.len() && k.last() == Some(&"bias") {
                    Some(k[..names.len()].to_vec())
                } else {
                    None
                }
            });
        for (i, vname) in &names {
            let t = var_index(
                w.index,
                w.pi,
                &src.parts[w.pi].path,
                format!("{gpath}/vars/{vname}"),
            )?;
            let local = match &known {
                Some(k) => k[*i].to_string(),
                None => vname.clone(),
            };
            src.tensors[t].variable = format!("{}/{local}", new_chain.join("/"));
            tensors.push(t);
        }
    }
    let mut ordered = true;
    let mut subs = g.member_names().unwrap_or_default();
    subs.sort_by_key(|s| {
        (
            SUBOBJECT_ORDER
                .iter()
                .position(|x| x == s)
                .unwrap_or(usize::MAX),
            s.clone(),
        )
    });
    for s in subs {
        if s == "vars" {
            continue;
        }
        let Ok(sg) = g.group(&s) else { continue };
        if s == "layers" {
            // A nested container: its layers in the config's order, else in counter
            // order, which is the model's only within one class.
            let mut inner: Vec<(String, String)> = sg
                .member_names()
                .unwrap_or_default()
                .into_iter()
                .map(|n| {
                    let name = sg
                        .group(&n)
                        .ok()
                        .and_then(|ig| ig.group("vars").ok())
                        .and_then(|v| raw::read_str_attr(&v, "name").ok().flatten())
                        .unwrap_or_else(|| n.clone());
                    (n, name)
                })
                .collect();
            if inner.iter().all(|(_, name)| w.config.contains_key(name)) {
                inner.sort_by_key(|(_, name)| w.config[name].order);
            } else {
                inner.sort_by_key(|(n, _)| crate::keras::natural_key(n));
                let mut classes = std::collections::HashSet::new();
                for (n, _) in &inner {
                    let before = tensors.len();
                    if let Ok(ig) = sg.group(n) {
                        let mut probe = Vec::new();
                        let _ = layer3(src, w, &ig, n, &new_chain, Some(&snake), &mut probe)?;
                        if !probe.is_empty() {
                            classes.insert(strip_counter(n).to_string());
                        }
                    }
                    debug_assert_eq!(before, tensors.len());
                }
                ordered &= classes.len() <= 1;
            }
            for (n, _) in inner {
                if let Ok(ig) = sg.group(&n) {
                    let (_, o) = layer3(src, w, &ig, &n, &new_chain, Some(&snake), tensors)?;
                    ordered &= o;
                }
            }
        } else {
            let (_, o) = layer3(src, w, &sg, &s, &new_chain, Some(&snake), tensors)?;
            ordered &= o;
        }
    }
    Ok((real, ordered))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(strip_output_index("dense/kernel:0"), "dense/kernel");
        assert_eq!(strip_output_index("dense/kernel"), "dense/kernel");
        assert_eq!(strip_output_index("a:b"), "a:b");
        let mut v = vec!["10".to_string(), "2".into(), "1".into()];
        sort_numeric(&mut v);
        assert_eq!(v, ["1", "2", "10"]);
        let mut v: Vec<String> = (0..34).map(|i| i.to_string()).collect();
        v[20] = "20x".into();
        sort_numeric(&mut v);
        assert_eq!(v[32], "33");
        assert_eq!(v[33], "20x");
    }
}
