//! `--like TEMPLATE`: a source's weights in exactly the layout of a template file — a
//! Keras file (or TF-format checkpoint) of the *target* model, with any weights.
//!
//! The template says everything a weights file may not: the target model's layers, their
//! classes and order, nested models, object paths, and for `.keras` the config. The
//! source only has to supply the bytes. [`retarget`] matches source weights to template
//! weights and returns a [`Like`]: a [`TensorSource`] that looks like the template (its
//! tensors, layers, config) and reads the source's bytes, which any writer then lays out
//! as it would the template itself.
//!
//! Matching, the first way that applies:
//!
//! 1. Two Keras 3 files whose model weights sit at the same paths (`layers/dense_1/vars/0`)
//!    with the same shapes: by path, as Keras 3 itself matches them.
//! 2. Both models' layers with weights have the same names, and each pair the same weight
//!    names below the layer: by name (transformers' `bert`, listed trainable-first in a
//!    `tf_model.h5` and in tracking order in a checkpoint). A tied weight that one side
//!    lists under several layers is compared in the layer whose scope holds it only, and
//!    the template's other copies take the same source tensor.
//! 3. Otherwise layer by layer, both models as Keras sees them (nested models expanded into
//!    their layers, layers without weights dropped). When both record their layer order,
//!    the k-th layer of one is the k-th of the other (by name, when the leaf layers have
//!    the same names). When one side (a Keras 3 `.weights.h5` without config) knows only
//!    the order within each class, each layer of the other side takes the next layer of its
//!    class; a Keras 3 file's classes come from its group paths, never from layer names,
//!    and two same-shaped look-alikes whose classes only names give are refused.
//!    Within a pair of layers, weights match by their names below the layer when both
//!    have the same names, else by position in Keras' order.
//!
//! Every pair must have the same shape and dtype, every template weight must be filled and
//! every source weight used; otherwise the error shows the mismatch as a table.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::keras::{self, Layer, Model, Order};
use crate::naming::{self, Role};
use crate::tensor::{Format, TensorData, TensorInfo, TensorSource};

/// A template's structure over a source's bytes.
pub struct Like<'a> {
    src: &'a dyn TensorSource,
    template: &'a dyn TensorSource,
    /// This source's tensors: the template's model weights.
    infos: Vec<TensorInfo>,
    /// For each of them, the source tensor that fills it.
    map: Vec<usize>,
    /// For each, its index in the template.
    from: Vec<usize>,
    layers: Vec<Layer>,
}

/// One matched pair, for reports: (template key, source key).
pub type Pair = (String, String);

impl Like<'_> {
    /// Which source tensor fills which template tensor, in the template's order.
    pub fn pairs(&self) -> Vec<Pair> {
        self.from
            .iter()
            .zip(&self.map)
            .map(|(&t, &s)| {
                (
                    self.template.tensors()[t].name.clone(),
                    self.src.tensors()[s].name.clone(),
                )
            })
            .collect()
    }
}

/// A nested model's layer while its weights are gathered: name, class, weights.
type Kid = (String, Option<String>, Vec<(usize, String)>);

/// A layer reduced to what matching needs.
struct Unit {
    name: String,
    /// Its class, with its nested model's class before it (`Functional>Dense`).
    class: Option<String>,
    /// (tensor, path below the layer) in Keras' order.
    weights: Vec<(usize, String)>,
    /// True when the file does not say where this layer stands among its nested model's
    /// layers, nor its weights' order (a Keras 2 `.h5` lists a nested model's weights
    /// trainable first): it can be matched by name only.
    uncertain: bool,
    /// True when its class is inferred, not recorded.
    inferred: bool,
}

/// A layer's class: recorded, or from its name and weights.
fn class_of(
    src: &dyn TensorSource,
    name: &str,
    class: Option<&str>,
    weights: &[(usize, String)],
) -> Option<String> {
    if let Some(c) = class {
        return Some(keras::keras3::keras3_class(c).unwrap_or(c).to_string());
    }
    if let Some(c) = weights
        .first()
        .and_then(|(t, _)| keras3_group_class(src, *t))
    {
        return Some(c.to_string());
    }
    let ws: Vec<(Vec<String>, usize)> = weights
        .iter()
        .map(|(t, p)| (p.split('/').map(str::to_string).collect(), *t))
        .collect();
    keras::keras3::infer_class(name, &ws, &|t| src.tensors()[t].shape.clone()).map(str::to_string)
}

/// In a Keras 3 file, the class its path gives a weight's layer: the last
/// `layers/<snake class>[_N]` of its key (`layers/sequential/layers/layer_normalization/
/// vars/0` → LayerNormalization), which Keras 3 wrote from the class itself, whatever the
/// layer's name says.
fn keras3_group_class(src: &dyn TensorSource, t: usize) -> Option<&'static str> {
    if !src.keras3_paths() {
        return None;
    }
    let name = &src.tensors()[t].name;
    let comps: Vec<&str> = name.trim_start_matches('/').split('/').collect();
    let k = comps.iter().rposition(|c| *c == "layers")?;
    keras::classes::class_from_snake(keras::classes::strip_counter(comps.get(k + 1)?))
}

/// Whether a unit's class is inferred: not recorded, nor given by a Keras 3 path.
fn class_inferred(src: &dyn TensorSource, recorded: bool, weights: &[(usize, String)]) -> bool {
    !recorded
        && weights
            .first()
            .and_then(|(t, _)| keras3_group_class(src, *t))
            .is_none()
}

/// Sort weights by Keras' global rank when every name is a built-in one; `false` when not.
fn rank_sort(weights: &mut Vec<(usize, String)>) -> bool {
    let ranks: Option<Vec<Vec<usize>>> = weights
        .iter()
        .map(|(_, p)| keras::classes::weight_rank(p))
        .collect();
    let Some(r) = ranks else { return false };
    let mut paired: Vec<_> = r.into_iter().zip(weights.drain(..)).collect();
    paired.sort_by(|a, b| a.0.cmp(&b.0));
    *weights = paired.into_iter().map(|(_, w)| w).collect();
    true
}

/// [`rank_sort`] by the last name only, when all weights sit under one scope below the
/// layer (one wrapped layer's weights).
fn rank_sort_wrapped(weights: &mut [(usize, String)]) -> bool {
    let scope = |p: &str| p.rsplit_once('/').map(|(a, _)| a.to_string());
    let first = weights.first().and_then(|w| scope(&w.1));
    if first.is_none() || weights.iter().any(|w| scope(&w.1) != first) {
        return false;
    }
    let mut last: Vec<(usize, String)> = weights
        .iter()
        .map(|(t, p)| (*t, p.rsplit('/').next().unwrap_or(p).to_string()))
        .collect();
    if !rank_sort(&mut last) {
        return false;
    }
    let order: Vec<usize> = last.iter().map(|(t, _)| *t).collect();
    weights.sort_by_key(|(t, _)| order.iter().position(|x| x == t));
    true
}

/// The weighted layers of a model, nested models expanded into their layers, in model
/// order.
fn units(src: &dyn TensorSource, model: &Model) -> Result<Vec<Unit>> {
    let mut out = Vec::new();
    for l in model.weighted() {
        let locals: Vec<(usize, Vec<String>)> = l
            .tensors()
            .map(|t| {
                let v = &src.tensors()[t].variable;
                (
                    t,
                    keras::layout::local_path(&l.name, v)
                        .into_iter()
                        .map(str::to_string)
                        .collect(),
                )
            })
            .collect();
        if l.tracked_as.is_some() || !l.is_nested_model(src) {
            let mut weights: Vec<(usize, String)> =
                locals.into_iter().map(|(t, p)| (t, p.join("/"))).collect();
            // A wrapper's weights under its layer's scope (`time_distributed/dense/kernel`)
            // are that one layer's: in the order of their own names.
            let ordered = l.ordered || rank_sort(&mut weights) || rank_sort_wrapped(&mut weights);
            out.push(Unit {
                class: class_of(src, &l.name, l.class_name.as_deref(), &weights),
                inferred: class_inferred(src, l.class_name.is_some(), &weights),
                name: l.name.clone(),
                weights,
                uncertain: !ordered,
            });
            continue;
        }
        let parent = l
            .class_name
            .as_deref()
            .map(|c| keras::keras3::keras3_class(c).unwrap_or(c).to_string())
            .unwrap_or_else(|| "Model".into());
        // (name, class, weights) of each of its layers.
        let mut kids: Vec<Kid> = Vec::new();
        for i in &l.inner {
            kids.push((i.name.clone(), Some(i.class.clone()), Vec::new()));
        }
        for (t, local) in locals {
            if local.len() < 2 {
                return Err(Error::unsupported(
                    src.path(),
                    format!(
                        "weight {:?} of nested model {:?} is in none of its layers",
                        src.tensors()[t].variable,
                        l.name
                    ),
                ));
            }
            let k = kids.iter().position(|k| k.0 == local[0]).or_else(|| {
                (!l.inner.is_empty())
                    .then(|| {
                        kids.iter()
                            .position(|k| keras::layout::is_scope_of(&k.0, &local[0]))
                    })
                    .flatten()
            });
            let k = match k {
                Some(k) => k,
                None if l.inner.is_empty() => {
                    kids.push((local[0].clone(), None, Vec::new()));
                    kids.len() - 1
                }
                None => {
                    return Err(Error::unsupported(
                        src.path(),
                        format!(
                            "weight {:?} belongs to none of the layers nested model {:?}'s config lists",
                            src.tensors()[t].variable,
                            l.name
                        ),
                    ))
                }
            };
            kids[k].2.push((t, local[1..].join("/")));
        }
        // A Keras 2 .h5 lists a nested model's weights trainable first: without its
        // config, neither its layers' order nor (for names that are not built-in) their
        // weights' order is known.
        let h5 = src.h5_weight_order() && l.inner.is_empty();
        let several = kids.iter().filter(|k| !k.2.is_empty()).count() > 1;
        for (name, class, mut weights) in kids {
            if weights.is_empty() {
                continue;
            }
            let sorted = rank_sort(&mut weights);
            let inferred = class_inferred(src, class.is_some(), &weights);
            let class = class_of(src, &name, class.as_deref(), &weights);
            out.push(Unit {
                name,
                class: class.map(|c| format!("{parent}>{c}")),
                weights,
                uncertain: h5 && (several || !sorted),
                inferred,
            });
        }
    }
    Ok(out)
}

fn class_key(u: &Unit) -> String {
    u.class.clone().unwrap_or_default()
}

/// Match `src` to `template`; see the module docs.
pub fn retarget<'a>(src: &'a dyn TensorSource, template: &'a dyn TensorSource) -> Result<Like<'a>> {
    let tpath = template.path();
    let refuse =
        |msg: String| Error::unsupported(src.path(), format!("--like {}: {msg}", tpath.display()));
    let sm = keras::describe(src);
    let tm = keras::describe(template);
    if tm.weighted().next().is_none() {
        return Err(refuse(
            "the template holds no Keras model (no layers with weights)".into(),
        ));
    }
    if let Some(pairs) = by_keras3_paths(src, &sm, template, &tm) {
        return Ok(finish(src, template, &pairs));
    }
    if let Some(pairs) = by_layer_names(src, &sm, template, &tm) {
        return Ok(finish(src, template, &pairs));
    }
    let su = units(src, &sm).map_err(|e| refuse(format!("the source: {}", e.detail())))?;
    let tu = units(template, &tm).map_err(|e| refuse(format!("the template: {}", e.detail())))?;
    let order_known = |m: &Model| m.order != Order::Inferred;
    let same_names = {
        let a: HashSet<&str> = su.iter().map(|u| u.name.as_str()).collect();
        let b: HashSet<&str> = tu.iter().map(|u| u.name.as_str()).collect();
        a == b && a.len() == su.len() && b.len() == tu.len()
    };
    if !same_names {
        for (side, us) in [("source", &su), ("template", &tu)] {
            if let Some(u) = us.iter().find(|u| u.uncertain) {
                return Err(refuse(format!(
                    "the {side} does not record the order of layer {:?} in its nested model, or of its weights (a Keras 2 .h5 without the model's config lists them trainable first), and the layer names differ between source and template; take a {side} with the model's config (a full-model .h5, .keras, or a TF-format checkpoint)",
                    u.name
                )));
            }
        }
    }
    // Pairs of (source unit, template unit).
    let unit_pairs: Vec<(usize, usize)> = {
        if same_names {
            tu.iter()
                .enumerate()
                .map(|(k, t)| {
                    (
                        su.iter()
                            .position(|s| s.name == t.name)
                            .expect("same names"),
                        k,
                    )
                })
                .collect()
        } else if order_known(&sm) && order_known(&tm) {
            if sm.order == Order::Created {
                created_is_safe(src, &su).map_err(&refuse)?;
            }
            (0..su.len().min(tu.len())).map(|k| (k, k)).collect()
        } else if order_known(&sm) || order_known(&tm) {
            // One side knows each class's order only: the ordered side's layers take the
            // other's next layer of their class.
            let (ordered, counted, flip) = if order_known(&sm) {
                (&su, &tu, false)
            } else {
                (&tu, &su, true)
            };
            let (oside, oinput) = if flip {
                ("template", template)
            } else {
                ("source", src)
            };
            // Both sides' inferred classes: a misleading name on either side would pair a
            // layer with another of its look-alikes.
            for (side, input, us) in [
                (oside, oinput, ordered),
                (
                    if flip { "source" } else { "template" },
                    if flip { src } else { template },
                    counted,
                ),
            ] {
                let items: Vec<(&str, &str, bool, Vec<Vec<u64>>)> = us
                    .iter()
                    .filter_map(|u| {
                        let class = u.class.as_deref()?;
                        let class = class.rsplit('>').next().unwrap_or(class);
                        let sig = u
                            .weights
                            .iter()
                            .map(|(t, _)| input.tensors()[*t].shape.clone())
                            .collect();
                        Some((u.name.as_str(), class, u.inferred, sig))
                    })
                    .collect();
                if let Some((a, b)) = keras::keras3::told_apart_by_names(&items) {
                    return Err(refuse(format!(
                        "the {side} does not record the classes of layers {a:?} and {b:?}, whose weights have the same shapes and look alike, and the other file tells its layers apart only by class; take a {side} that records the model (a .keras, a full-model .h5)"
                    )));
                }
            }
            let mut queues: HashMap<String, std::collections::VecDeque<usize>> = HashMap::new();
            for (k, u) in counted.iter().enumerate() {
                queues.entry(class_key(u)).or_default().push_back(k);
            }
            let mut pairs = Vec::new();
            for (k, u) in ordered.iter().enumerate() {
                let Some(j) = queues.get_mut(&class_key(u)).and_then(|q| q.pop_front()) else {
                    break;
                };
                pairs.push(if flip { (j, k) } else { (k, j) });
            }
            pairs
        } else {
            return Err(refuse(
                "neither the source nor the template records its layer order; take a template that does (a .keras, a Keras 2 .h5, a TF-format checkpoint)".into(),
            ));
        }
    };
    // Weights within each pair of layers.
    let mut pairs: Vec<(usize, usize)> = Vec::new(); // (source tensor, template tensor)
    let mut bad = false;
    for &(s, t) in &unit_pairs {
        let (su_, tu_) = (&su[s], &tu[t]);
        let snames: HashSet<&str> = su_.weights.iter().map(|w| w.1.as_str()).collect();
        let tnames: HashSet<&str> = tu_.weights.iter().map(|w| w.1.as_str()).collect();
        if su_.weights.len() != tu_.weights.len() {
            bad = true;
            break;
        }
        if snames == tnames && snames.len() == su_.weights.len() {
            for (tt, n) in &tu_.weights {
                let (st, _) = su_.weights.iter().find(|w| &w.1 == n).expect("same names");
                pairs.push((*st, *tt));
            }
        } else {
            pairs.extend(
                su_.weights
                    .iter()
                    .zip(&tu_.weights)
                    .map(|(a, b)| (a.0, b.0)),
            );
        }
    }
    let fits = |s: usize, t: usize| fits(src, s, template, t);
    let s_all: usize = su.iter().map(|u| u.weights.len()).sum();
    let t_all: usize = tu.iter().map(|u| u.weights.len()).sum();
    if bad
        || unit_pairs.len() != su.len()
        || unit_pairs.len() != tu.len()
        || pairs.len() != s_all
        || pairs.len() != t_all
        || pairs.iter().any(|&(s, t)| !fits(s, t))
    {
        return Err(refuse(mismatch_table(src, template, &su, &tu, &unit_pairs)));
    }
    Ok(finish(src, template, &pairs))
}

/// Two Keras 3 files whose model weights sit at the same paths (`layers/dense_1/vars/0`)
/// with the same shapes: Keras 3 itself matches them so.
fn by_keras3_paths(
    src: &dyn TensorSource,
    sm: &Model,
    template: &dyn TensorSource,
    tm: &Model,
) -> Option<Vec<(usize, usize)>> {
    if !src.keras3_paths() || !template.keras3_paths() {
        return None;
    }
    let keys = |s: &dyn TensorSource, m: &Model| -> HashMap<String, usize> {
        m.weighted()
            .flat_map(|l| l.tensors())
            .map(|t| (s.tensors()[t].name.trim_start_matches('/').to_string(), t))
            .collect()
    };
    let (a, b) = (keys(src, sm), keys(template, tm));
    if a.len() != b.len() || a.is_empty() {
        return None;
    }
    pair_by_key(src, &a, template, &b)
}

/// Whether source tensor `s` can fill template tensor `t`: the same shape and dtype.
fn fits(src: &dyn TensorSource, s: usize, template: &dyn TensorSource, t: usize) -> bool {
    let (a, b) = (&src.tensors()[s], &template.tensors()[t]);
    a.shape == b.shape && a.dtype == b.dtype
}

/// Pairs (source tensor, template tensor) of the same key, when every template key has a
/// source tensor that fits it.
fn pair_by_key(
    src: &dyn TensorSource,
    a: &HashMap<String, usize>,
    template: &dyn TensorSource,
    b: &HashMap<String, usize>,
) -> Option<Vec<(usize, usize)>> {
    b.iter()
        .map(|(k, &tt)| {
            let &st = a.get(k)?;
            fits(src, st, template, tt).then_some((st, tt))
        })
        .collect()
}

/// Both models' layers with weights have the same names, and each pair the same weight
/// names below the layer: pairs by name, when every pair has the same shape and dtype
/// (transformers' `bert` layer, written trainable-first in a `tf_model.h5` and in tracking
/// order in a checkpoint).
///
/// A tied weight a layer lists but another layer owns ([`tied`]) is left out of its
/// layer's comparison, and a template's is filled from whatever fills its owner: a
/// sharded transformers save lists the word embeddings once, while its `tf_model.h5`
/// lists them under `roberta` and again under `lm_head` (which holds the embedding layer
/// as its decoder, so Keras tracks its weights there too), and `from_pretrained` reads
/// both copies.
fn by_layer_names(
    src: &dyn TensorSource,
    sm: &Model,
    template: &dyn TensorSource,
    tm: &Model,
) -> Option<Vec<(usize, usize)>> {
    let sl: Vec<&Layer> = sm.weighted().collect();
    let tl: Vec<&Layer> = tm.weighted().collect();
    if sl.len() != tl.len() {
        return None;
    }
    let (s_tied, t_tied) = (tied(src, &sl), tied(template, &tl));
    // A layer's own weights by their path below it, and how many it has.
    let locals = |s: &dyn TensorSource, k: usize, l: &Layer, tied: &HashMap<(usize, usize), usize>| {
        let own: Vec<usize> = l.tensors().filter(|&t| !tied.contains_key(&(k, t))).collect();
        let by_path: HashMap<String, usize> = own
            .iter()
            .map(|&t| {
                let v = &s.tensors()[t].variable;
                (keras::layout::local_path(&l.name, v).join("/"), t)
            })
            .collect();
        (by_path, own.len())
    };
    let mut pairs = Vec::new();
    for (tk, t) in tl.iter().enumerate() {
        let sk = sl.iter().position(|s| s.name == t.name)?;
        let (a, an) = locals(src, sk, sl[sk], &s_tied);
        let (b, bn) = locals(template, tk, t, &t_tied);
        if a.len() != an || b.len() != bn || a.len() != b.len() {
            return None;
        }
        pairs.extend(pair_by_key(src, &a, template, &b)?);
    }
    // Each tied template weight: the source tensor that fills its owner.
    let by_template: HashMap<usize, usize> = pairs.iter().map(|&(s, t)| (t, s)).collect();
    let mut extra = std::collections::BTreeMap::new();
    for (&(_, copy), owner) in &t_tied {
        if copy == *owner || by_template.contains_key(&copy) {
            // One tensor several layers list: filled once, with its owner's.
            continue;
        }
        let &st = by_template.get(owner)?;
        if !fits(src, st, template, copy) {
            return None;
        }
        extra.insert(copy, st);
    }
    pairs.extend(extra.into_iter().map(|(t, s)| (s, t)));
    Some(pairs)
}

/// The weights some layer lists that another layer owns, each with its owner's tensor: the
/// same variable listed by several layers (a tied weight) is owned by the one layer whose
/// name scope holds it (`tf_roberta_for_masked_lm/roberta/embeddings/…` is `roberta`'s,
/// also listed by `lm_head`). A variable no layer or several layers hold in their scope,
/// or whose copies differ in shape or dtype, is left as it is.
fn tied(src: &dyn TensorSource, layers: &[&Layer]) -> HashMap<(usize, usize), usize> {
    let mut by_variable: HashMap<&str, Vec<(usize, usize)>> = HashMap::new();
    for (k, l) in layers.iter().enumerate() {
        for t in l.tensors() {
            by_variable
                .entry(src.tensors()[t].variable.as_str())
                .or_default()
                .push((k, t));
        }
    }
    let mut out = HashMap::new();
    for (v, listed) in by_variable {
        if listed.len() < 2 {
            continue;
        }
        let depth = v.split('/').count();
        let in_scope = |k: usize| keras::layout::local_path(&layers[k].name, v).len() < depth;
        let owners: Vec<usize> = listed
            .iter()
            .filter(|&&(k, _)| in_scope(k))
            .map(|&(_, t)| t)
            .collect();
        let [owner] = owners[..] else { continue };
        let o = &src.tensors()[owner];
        for &(k, t) in &listed {
            let c = &src.tensors()[t];
            if !in_scope(k) && c.shape == o.shape && c.dtype == o.dtype {
                out.insert((k, t), owner);
            }
        }
    }
    out
}

/// The [`Like`] source of matched pairs (source tensor, template tensor): the template's
/// model weights, in the template's order.
fn finish<'a>(
    src: &'a dyn TensorSource,
    template: &'a dyn TensorSource,
    pairs: &[(usize, usize)],
) -> Like<'a> {
    let by_template: HashMap<usize, usize> = pairs.iter().map(|&(s, t)| (t, s)).collect();
    let mut from: Vec<usize> = by_template.keys().copied().collect();
    from.sort_unstable();
    let back: HashMap<usize, usize> = from.iter().enumerate().map(|(k, &t)| (t, k)).collect();
    let infos: Vec<TensorInfo> = from
        .iter()
        .map(|&t| template.tensors()[t].clone())
        .collect();
    let map: Vec<usize> = from.iter().map(|t| by_template[t]).collect();
    let layers: Vec<Layer> = template
        .layers()
        .iter()
        .map(|l| Layer {
            weights: l
                .weights
                .iter()
                .filter_map(|w| {
                    back.get(&w.tensor).map(|&k| keras::Weight {
                        tensor: k,
                        ..w.clone()
                    })
                })
                .collect(),
            ..l.clone()
        })
        .collect();
    Like {
        src,
        template,
        infos,
        map,
        from,
        layers,
    }
}

/// A creation order (TF1 `.meta`) is the model's, except where branches run side by side:
/// refuse when two layers with weights of the same shapes could trade places.
fn created_is_safe(src: &dyn TensorSource, units: &[Unit]) -> std::result::Result<(), String> {
    let mut seen: HashMap<Vec<&[u64]>, &str> = HashMap::new();
    for u in units {
        let sig: Vec<&[u64]> = u
            .weights
            .iter()
            .map(|(t, _)| src.tensors()[*t].shape.as_slice())
            .collect();
        if let Some(other) = seen.insert(sig, &u.name) {
            return Err(format!(
                "the source records only the order its layers were created in, and layers {other:?} and {:?} have weights of the same shapes and different names from the template's, so which is which cannot be told",
                u.name
            ));
        }
    }
    Ok(())
}

/// The error for models that do not match: a line of summary, then both sides side by
/// side, one weight a row, with `!` where they differ.
fn mismatch_table(
    src: &dyn TensorSource,
    template: &dyn TensorSource,
    su: &[Unit],
    tu: &[Unit],
    unit_pairs: &[(usize, usize)],
) -> String {
    let s_all: usize = su.iter().map(|u| u.weights.len()).sum();
    let t_all: usize = tu.iter().map(|u| u.weights.len()).sum();
    let cell = |s: &dyn TensorSource, u: &Unit, w: &(usize, String)| {
        let t = &s.tensors()[w.0];
        (
            format!("{}/{}", u.name, w.1),
            format!("{:?} {}", t.shape, t.dtype),
        )
    };
    let mut rows: Vec<(String, String, String, String)> = Vec::new();
    let mut done_s = HashSet::new();
    let mut done_t = HashSet::new();
    for &(s, t) in unit_pairs {
        let n = su[s].weights.len().max(tu[t].weights.len());
        for k in 0..n {
            let a = su[s].weights.get(k).map(|w| cell(src, &su[s], w));
            let b = tu[t].weights.get(k).map(|w| cell(template, &tu[t], w));
            let (a1, a2) = a.unwrap_or_default();
            let (b1, b2) = b.unwrap_or_default();
            rows.push((a1, a2, b1, b2));
        }
        done_s.insert(s);
        done_t.insert(t);
    }
    for (_, u) in su.iter().enumerate().filter(|(k, _)| !done_s.contains(k)) {
        for w in &u.weights {
            let (a1, a2) = cell(src, u, w);
            rows.push((a1, a2, String::new(), String::new()));
        }
    }
    for (_, u) in tu.iter().enumerate().filter(|(k, _)| !done_t.contains(k)) {
        for w in &u.weights {
            let (b1, b2) = cell(template, u, w);
            rows.push((String::new(), String::new(), b1, b2));
        }
    }
    let w1 = rows.iter().map(|r| r.0.len()).max().unwrap_or(0).max(12);
    let w2 = rows.iter().map(|r| r.1.len()).max().unwrap_or(0).max(5);
    let w3 = rows.iter().map(|r| r.2.len()).max().unwrap_or(0).max(14);
    let mut out = format!(
        "the models do not match: the source has {} layers with {s_all} weights, the template {} layers with {t_all} weights (! marks the first rows that differ):\n",
        su.len(),
        tu.len()
    );
    out.push_str(&format!(
        "   {:w1$}  {:w2$}  {:w3$}  shape\n",
        "source weight", "shape", "template weight"
    ));
    for (shown, r) in rows.iter().enumerate() {
        let differs = r.1 != r.3;
        if shown >= 60 {
            out.push_str(&format!("   … {} more rows\n", rows.len() - shown));
            break;
        }
        out.push_str(&format!(
            " {} {:w1$}  {:w2$}  {:w3$}  {}\n",
            if differs { '!' } else { ' ' },
            r.0,
            r.1,
            r.2,
            r.3
        ));
    }
    out.trim_end().to_string()
}

impl TensorSource for Like<'_> {
    fn format(&self) -> Format {
        self.template.format()
    }
    fn path(&self) -> &Path {
        self.src.path()
    }
    fn tensors(&self) -> &[TensorInfo] {
        &self.infos
    }
    fn read(&self, index: usize) -> Result<TensorData<'_>> {
        self.src.read(self.map[index])
    }
    fn strings(&self, index: usize) -> Result<Box<dyn crate::tensor::StringReader + '_>> {
        self.src.strings(self.map[index])
    }
    fn read_unchecked(
        &self,
        index: usize,
    ) -> Result<(TensorData<'_>, Option<crate::tensor::Crc32cCheck>)> {
        self.src.read_unchecked(self.map[index])
    }
    fn file_range(&self, index: usize) -> Option<crate::tensor::FileRange<'_>> {
        self.src.file_range(self.map[index])
    }
    fn cast_of(&self, index: usize) -> Option<(&dyn TensorSource, usize)> {
        self.src.cast_of(self.map[index])
    }
    fn stored_at(&self, index: usize) -> Option<(u32, u64)> {
        self.src.stored_at(self.map[index])
    }
    fn files(&self) -> Vec<PathBuf> {
        let mut v = self.src.files();
        v.extend(self.template.files());
        v
    }
    fn layers(&self) -> &[Layer] {
        &self.layers
    }
    fn layer_order(&self) -> Order {
        self.template.layer_order()
    }
    fn h5_weight_order(&self) -> bool {
        self.template.h5_weight_order()
    }
    fn keras3_paths(&self) -> bool {
        self.template.keras3_paths()
    }
    fn keras_config(&self) -> Option<keras::KerasConfig<'_>> {
        self.template.keras_config()
    }
    fn loads_by_position(&self) -> bool {
        self.template.loads_by_position()
    }
    fn release(&self, index: usize) {
        self.src.release(self.map[index]);
    }
}

/// Source tensors no template weight takes that are not model weights (optimizer state,
/// counters): reported as skipped by the conversion.
pub fn left_out(src: &dyn TensorSource, like: &Like<'_>) -> Vec<crate::plan::Skipped> {
    let used: HashSet<usize> = like.map.iter().copied().collect();
    src.tensors()
        .iter()
        .enumerate()
        .filter(|(i, t)| {
            !used.contains(i)
                && naming::role(&t.name, &t.variable) != Role::Metadata
                && !(src.format() == Format::TfCheckpoint
                    && t.name == crate::formats::tf::object_graph::OBJECT_GRAPH_KEY)
        })
        .map(|(_, t)| crate::plan::Skipped {
            name: t.variable.clone(),
            reason: format!(
                "{} state, which --like does not carry over (the template's layout holds model weights)",
                naming::role(&t.name, &t.variable).name()
            ),
        })
        .collect()
}
