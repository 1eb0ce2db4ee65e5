//! Keras 3's own weights layout (`.weights.h5`, and `model.weights.h5` inside `.keras`).
//!
//! `keras/src/saving/saving_lib.py` (`_save_state`, `_save_container_state`,
//! `H5IOStore`) walks the model's objects and gives each one a group:
//!
//! ```text
//! /vars                                   the model's own variables (none, for models)
//! /layers/<snake class>[_N]/vars/<i>      a layer's own variables, i = 0, 1, … in the
//!                                         order the layer created them (trainable first)
//! /layers/lstm/cell/vars/<i>              a sub-object at its attribute name: an RNN's
//!                                         `cell`, Bidirectional's `forward_layer` /
//!                                         `backward_layer`, a wrapper's `layer`,
//!                                         MultiHeadAttention's `_query_dense` …,
//!                                         a layer used as `activation`
//! /layers/sequential/layers/dense/vars/…  a nested model: a container of its own
//! /optimizer/vars/<i>                     the optimizer's variables
//! ```
//!
//! Inside each container (`layers` of a model), groups are named by class, not by layer
//! name: the k-th layer of class `Dense` is `dense_k` (`dense` for the first), counted in
//! the model's layer order. Keras 3's loader walks its own model the same way and reads
//! each object's group; a missing group reads as no variables, and a layer whose group
//! holds another number of variables than it has is an error. So what a writer must get
//! right is each layer's class and, within one class, the layers' order; a wrong class
//! (or a layer missed from a count) fails to load, loudly, because some layer then finds
//! a group with the wrong number of variables. Same-class layers with weights of the same
//! shapes in the wrong order would load silently wrong: their order must be known.
//!
//! The sub-object attribute names are the ones tf-keras' object graph uses
//! ([`classes::object_subpath`]), so both layouts come from one table.

use std::collections::{BTreeMap, HashMap};

use super::layout::{is_scope_of, local_path};
use super::{classes, Layer, Model, Order};
use crate::error::{Error, Result};
use crate::naming::{self, Role};
use crate::plan::{Planned, Skipped};
use crate::tensor::TensorSource;

/// One object's `vars` group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group3 {
    /// The object's path (`layers/dense_1`, `layers/lstm/cell`; empty for the root).
    pub path: String,
    /// The object's own name, stored as the `vars` group's `name` attribute.
    pub name: Option<String>,
    /// Its variables in order: each planned name is the dataset name (`0`, `1`, …).
    pub vars: Vec<Planned>,
}

/// What a Keras 3 weights writer should write.
#[derive(Debug, Default)]
pub struct Layout3 {
    pub groups: Vec<Group3>,
    pub skipped: Vec<Skipped>,
}

impl Layout3 {
    /// Every planned tensor, in group order.
    pub fn planned(&self) -> impl Iterator<Item = &Planned> {
        self.groups.iter().flat_map(|g| &g.vars)
    }
}

/// A layer as Keras 3 sees it: a class, its weights with their paths below the layer,
/// and for a nested model its own layers.
#[derive(Debug, Clone)]
pub struct Node {
    pub name: String,
    pub class: Option<String>,
    /// Each weight's tensor and its path below the layer's name scope (`kernel`,
    /// `lstm_cell/kernel`), in the layer's creation order.
    pub weights: Vec<(usize, Vec<String>)>,
    /// A nested model's layers, in its order.
    pub children: Vec<Node>,
    /// True when the class is not recorded but inferred (from the name or the weights).
    pub inferred: bool,
}

impl Node {
    fn is_model(&self) -> bool {
        self.class
            .as_deref()
            .is_some_and(|c| classes::structure(c) == Some(classes::Structure::Model))
    }

    fn has_weights(&self) -> bool {
        !self.weights.is_empty() || self.children.iter().any(Node::has_weights)
    }

    /// Its weights in order, a nested model's layer by layer.
    pub fn all_weights(&self) -> Vec<(usize, String)> {
        let mut out: Vec<(usize, String)> = self
            .weights
            .iter()
            .map(|(t, l)| (*t, l.join("/")))
            .collect();
        for c in &self.children {
            out.extend(
                c.all_weights()
                    .into_iter()
                    .map(|(t, l)| (t, format!("{}/{l}", c.name))),
            );
        }
        out
    }
}

/// Keras 3's class for a class name a Keras 2 config may hold, or why there is none.
pub fn keras3_class(class: &str) -> std::result::Result<&str, String> {
    Ok(match class {
        "Model" => "Functional",
        "Convolution1D" => "Conv1D",
        "Convolution2D" => "Conv2D",
        "Convolution3D" => "Conv3D",
        "CuDNNLSTM" | "CuDNNGRU" => {
            return Err(format!(
                "{class} does not exist in Keras 3, and its weights (one fused bias per gate pair) are not those of Keras 3's {}",
                &class[5..]
            ))
        }
        c => c,
    })
}

/// The class of a layer whose file does not record it: from its auto-generated name
/// (`conv2d_3`), when its weights agree, else from its weights' names and ranks. A wrong
/// guess cannot load silently (see the module docs): it only decides which group name a
/// layer gets, and Keras 3 finds no group, or one of another size, for a mis-classed layer.
pub fn infer_class(
    name: &str,
    weights: &[(Vec<String>, usize)],
    shape: &dyn Fn(usize) -> Vec<u64>,
) -> Option<&'static str> {
    // A layer named under its model's scope (`sequential/conv2d_1`) by its own name.
    let own = name.rsplit('/').next().unwrap_or(name);
    if weights.is_empty() {
        // Nothing to go by but an auto-name (no weights say "Embedding" by their absence).
        return classes::class_from_snake(classes::strip_counter(own));
    }
    let first = |w: &(Vec<String>, usize)| w.0.first().cloned().unwrap_or_default();
    let last = |w: &(Vec<String>, usize)| w.0.last().cloned().unwrap_or_default();
    let rank_of = |n: &str| {
        weights
            .iter()
            .find(|w| last(w) == n && w.0.len() == 1)
            .map(|w| shape(w.1).len())
    };
    let by_weights = || -> Option<&'static str> {
        if weights
            .iter()
            .any(|w| first(w).starts_with("forward_") || first(w).starts_with("backward_"))
        {
            return Some("Bidirectional");
        }
        let scopes: std::collections::BTreeSet<String> = weights
            .iter()
            .filter(|w| w.0.len() >= 2)
            .map(first)
            .collect();
        if !scopes.is_empty() {
            if scopes
                .iter()
                .all(|s| matches!(s.as_str(), "query" | "key" | "value" | "attention_output"))
            {
                return Some("MultiHeadAttention");
            }
            if scopes.len() == 1 && weights.iter().all(|w| w.0.len() == 2) {
                let s = scopes.iter().next()?;
                if let Some(cell) = s.strip_suffix("_cell") {
                    return match classes::strip_counter(cell) {
                        "lstm" => Some("LSTM"),
                        "gru" => Some("GRU"),
                        "simple_rnn" => Some("SimpleRNN"),
                        _ => None,
                    };
                }
            }
            return None;
        }
        let names: std::collections::BTreeSet<String> = weights.iter().map(last).collect();
        let has = |n: &str| names.contains(n);
        let only = |allowed: &[&str]| names.iter().all(|n| allowed.contains(&n.as_str()));
        if has("moving_mean") || has("moving_variance") {
            return only(&["gamma", "beta", "moving_mean", "moving_variance"])
                .then_some("BatchNormalization");
        }
        if only(&["embeddings"]) {
            return Some("Embedding");
        }
        if only(&["alpha"]) {
            return Some("PReLU");
        }
        if only(&["mean", "variance", "count"]) && has("mean") {
            return Some("Normalization");
        }
        if only(&["gamma", "beta"]) {
            return Some("LayerNormalization");
        }
        if has("pointwise_kernel") && only(&["depthwise_kernel", "pointwise_kernel", "bias"]) {
            return match rank_of("depthwise_kernel")? {
                3 => Some("SeparableConv1D"),
                4 => Some("SeparableConv2D"),
                _ => None,
            };
        }
        if has("depthwise_kernel") && only(&["depthwise_kernel", "bias"]) {
            return match rank_of("depthwise_kernel")? {
                3 => Some("DepthwiseConv1D"),
                4 => Some("DepthwiseConv2D"),
                _ => None,
            };
        }
        if has("kernel") && only(&["kernel", "bias"]) {
            return match rank_of("kernel")? {
                2 => Some("Dense"),
                3 => Some("Conv1D"),
                4 => Some("Conv2D"),
                5 => Some("Conv3D"),
                _ => None,
            };
        }
        None
    };
    let guessed = by_weights();
    // tf-keras names a depthwise kernel `depthwise_kernel`: that says the class, whatever
    // the layer's name (only Keras 3's plain `kernel` leaves it to the name).
    if weights.iter().any(|w| last(w) == "depthwise_kernel") && guessed.is_some() {
        return guessed;
    }
    match classes::class_from_snake(classes::strip_counter(own)) {
        // The auto-name, when the weights say the same or say nothing against it (a
        // Conv2DTranspose's weights look like a Conv2D's).
        Some(c) if agrees(c, guessed) => Some(c),
        _ => guessed,
    }
}

/// Classes whose weights look alike (names and ranks), which only a recorded class or a
/// layer's name tells apart.
pub fn family(c: &str) -> &str {
    match c {
        "Dense" | "EinsumDense" => "dense",
        // Keras 3 names a depthwise kernel `kernel`: by names, a Conv's.
        "Conv1D" | "Conv1DTranspose" | "ConvLSTM1D" | "DepthwiseConv1D" => "conv1",
        "Conv2D" | "Conv2DTranspose" | "ConvLSTM2D" | "DepthwiseConv2D" => "conv2",
        "Conv3D" | "Conv3DTranspose" | "ConvLSTM3D" => "conv3",
        "LayerNormalization" | "GroupNormalization" => "norm",
        "Sequential" | "Functional" => "model",
        _ => c,
    }
}

/// Two layers whose classes were inferred (not recorded), of different classes of one
/// [`family`], with weights of the same shapes: had their names misled (a Conv2DTranspose
/// named `conv2d` beside a Conv2D named `conv2d_transpose`), each would take the other's
/// place without an error. Items: (name, class, inferred, weight shapes).
pub fn told_apart_by_names(
    items: &[(&str, &str, bool, Vec<Vec<u64>>)],
) -> Option<(String, String)> {
    for (i, a) in items.iter().enumerate() {
        for b in &items[i + 1..] {
            if (a.2 || b.2) && a.1 != b.1 && family(a.1) == family(b.1) && a.3 == b.3 {
                return Some((a.0.to_string(), b.0.to_string()));
            }
        }
    }
    None
}

/// Whether a class from a layer's name fits what its weights suggest.
fn agrees(named: &str, guessed: Option<&str>) -> bool {
    let Some(g) = guessed else {
        return classes::structure(named).is_some();
    };
    // A wrapper's weights are its layer's (TimeDistributed(Dense) has a Dense's).
    if g == named || classes::structure(named) == Some(classes::Structure::Wrapper) {
        return true;
    }
    family(g) == family(named)
}

/// The model as Keras 3 sees it. Refuses what Keras 3 would place by attribute names the
/// file does not record (a subclassed model's layers) and classes Keras 3 does not have.
pub fn tree(src: &dyn TensorSource, model: &Model) -> Result<Vec<Node>> {
    let refuse = |msg: String| Error::unsupported(src.path(), format!("a Keras 3 file: {msg}"));
    let shape = |t: usize| src.tensors()[t].shape.clone();
    let mut out = Vec::with_capacity(model.layers.len());
    for l in &model.layers {
        if let Some(attr) = &l.tracked_as {
            return Err(refuse(format!(
                "layer {:?} is an attribute ({attr:?}) of a subclassed model, and Keras 3 finds such layers by attribute names and classes this file does not record; pass --like with a .weights.h5 or .keras saved by the Keras 3 model",
                l.name
            )));
        }
        let locals: Vec<(usize, Vec<String>)> = l
            .weights
            .iter()
            .map(|w| {
                let v = &src.tensors()[w.tensor].variable;
                (
                    w.tensor,
                    local_path(&l.name, v)
                        .into_iter()
                        .map(str::to_string)
                        .collect(),
                )
            })
            .collect();
        if !l.weights.is_empty() && l.is_nested_model(src) {
            out.push(nested(src, l, locals)?);
            continue;
        }
        let class = match &l.class_name {
            Some(c) => Some(
                keras3_class(c)
                    .map_err(|w| refuse(format!("layer {:?}: {w}", l.name)))?
                    .to_string(),
            ),
            None => {
                let ws: Vec<(Vec<String>, usize)> =
                    locals.iter().map(|(t, p)| (p.clone(), *t)).collect();
                infer_class(&l.name, &ws, &shape).map(str::to_string)
            }
        };
        if !l.weights.is_empty() && !l.ordered {
            return Err(refuse(format!(
                "the order of layer {:?}'s weights is not recorded and their names are not Keras built-ins; pass --like with a file of this model saved by Keras",
                l.name
            )));
        }
        out.push(Node {
            name: l.name.clone(),
            inferred: l.class_name.is_none(),
            class,
            weights: locals,
            children: Vec::new(),
        });
    }
    Ok(out)
}

/// A nested model's node: its layers from its config (names, classes, order), else from
/// its weights' first scopes in the order the file tracks them.
fn nested(src: &dyn TensorSource, l: &Layer, locals: Vec<(usize, Vec<String>)>) -> Result<Node> {
    let refuse = |msg: String| {
        Error::unsupported(
            src.path(),
            format!(
                "a Keras 3 file: layer {:?} is a nested model, and {msg}; pass --like with a .weights.h5 or .keras saved by the Keras 3 model",
                l.name
            ),
        )
    };
    let shape = |t: usize| src.tensors()[t].shape.clone();
    // Keras 3 names a nested model's group by its class: `sequential` or `functional`.
    let class = match &l.class_name {
        Some(c) => keras3_class(c).map_err(&refuse)?.to_string(),
        None => match classes::strip_counter(&l.name) {
            "sequential" => "Sequential".into(),
            "model" | "functional" => "Functional".into(),
            _ => {
                return Err(refuse(
                    "the file does not record whether it is a Sequential or a Functional model"
                        .into(),
                ))
            }
        },
    };
    let mut children: Vec<Node> = Vec::new();
    if !l.inner.is_empty() {
        for i in &l.inner {
            children.push(Node {
                name: i.name.clone(),
                class: Some(keras3_class(&i.class).map_err(&refuse)?.to_string()),
                weights: Vec::new(),
                children: Vec::new(),
                inferred: false,
            });
        }
        for (t, local) in locals {
            let k = (local.len() >= 2)
                .then(|| {
                    l.inner
                        .iter()
                        .position(|i| i.name == local[0])
                        .or_else(|| l.inner.iter().position(|i| is_scope_of(&i.name, &local[0])))
                })
                .flatten()
                .ok_or_else(|| {
                    refuse(format!(
                        "weight {:?} belongs to none of the layers its config lists",
                        src.tensors()[t].variable
                    ))
                })?;
            children[k].weights.push((t, local[1..].to_vec()));
        }
    } else {
        if src.h5_weight_order() {
            // A Keras 2 .h5 lists a nested model's weights trainable first: the first
            // appearance of its layers is not their order when some are frozen.
            let scopes: std::collections::BTreeSet<&str> = locals
                .iter()
                .filter(|(_, p)| p.len() >= 2)
                .map(|(_, p)| p[0].as_str())
                .collect();
            if scopes.len() > 1 {
                return Err(refuse(
                    "a Keras 2 .h5 without the model's config does not record its layers' order"
                        .into(),
                ));
            }
        }
        for (t, local) in locals {
            if local.len() < 2 {
                return Err(refuse(format!(
                    "weight {:?} is in none of its layers",
                    src.tensors()[t].variable
                )));
            }
            match children.iter_mut().find(|c| c.name == local[0]) {
                Some(c) => c.weights.push((t, local[1..].to_vec())),
                None => children.push(Node {
                    name: local[0].clone(),
                    class: None,
                    weights: vec![(t, local[1..].to_vec())],
                    children: Vec::new(),
                    inferred: true,
                }),
            }
        }
        for c in &mut children {
            let ws: Vec<(Vec<String>, usize)> =
                c.weights.iter().map(|(t, p)| (p.clone(), *t)).collect();
            c.class = infer_class(&c.name, &ws, &shape).map(str::to_string);
        }
    }
    for c in &mut children {
        if c.is_model() && c.has_weights() {
            return Err(refuse(format!(
                "it holds another nested model ({:?})",
                c.name
            )));
        }
        // Keras' own order within each layer (a Keras 2 .h5 lists a nested model's
        // weights trainable first across its layers).
        let ranks: Option<Vec<Vec<usize>>> = c
            .weights
            .iter()
            .map(|(_, p)| classes::weight_rank(&p.join("/")))
            .collect();
        match ranks {
            Some(r) => {
                let mut paired: Vec<_> = r.into_iter().zip(c.weights.drain(..)).collect();
                paired.sort_by(|a, b| a.0.cmp(&b.0));
                c.weights = paired.into_iter().map(|(_, w)| w).collect();
            }
            None if src.h5_weight_order() && c.weights.len() > 1 => {
                return Err(refuse(format!(
                    "the order of its layer {:?}'s weights is not recorded and their names are not Keras built-ins",
                    c.name
                )))
            }
            None => {}
        }
    }
    Ok(Node {
        name: l.name.clone(),
        class: Some(class),
        weights: Vec::new(),
        children,
        inferred: l.class_name.is_none(),
    })
}

/// Refuse when two layers of one class, with weights of the same shapes, could be in
/// another order in the model than in the file: Keras 3 tells them apart only by their
/// order, and would load each into the other's place without an error.
fn check_class_order(src: &dyn TensorSource, model: &Model, nodes: &[Node]) -> Result<()> {
    if model.order == Order::Recorded {
        return Ok(());
    }
    let mut seen: HashMap<(String, Vec<Vec<u64>>), &str> = HashMap::new();
    for n in nodes.iter().filter(|n| n.has_weights()) {
        let sig: Vec<Vec<u64>> = n
            .all_weights()
            .iter()
            .map(|(t, _)| src.tensors()[*t].shape.clone())
            .collect();
        let class = n.class.clone().unwrap_or_default();
        if let Some(other) = seen.insert((class.clone(), sig), &n.name) {
            return Err(Error::unsupported(
                src.path(),
                format!(
                    "a Keras 3 file: the file records only the order in which the model created its layers, and layers {other:?} and {:?} are both {class} with weights of the same shapes, which Keras 3 tells apart only by their order in the model; pass --like with a .weights.h5 or .keras saved by the Keras 3 model",
                    n.name
                ),
            ));
        }
    }
    Ok(())
}

/// Refuse where inferred classes decide which of two same-shaped layers goes where
/// ([`told_apart_by_names`]), in each container.
fn check_inferred_classes(src: &dyn TensorSource, nodes: &[Node]) -> Result<()> {
    let items: Vec<(&str, &str, bool, Vec<Vec<u64>>)> = nodes
        .iter()
        .filter(|n| n.has_weights())
        .filter_map(|n| {
            let sig = n
                .all_weights()
                .iter()
                .map(|(t, _)| src.tensors()[*t].shape.clone())
                .collect();
            Some((n.name.as_str(), n.class.as_deref()?, n.inferred, sig))
        })
        .collect();
    if let Some((a, b)) = told_apart_by_names(&items) {
        return Err(Error::unsupported(
            src.path(),
            format!(
                "a Keras 3 file: the file does not record the classes of layers {a:?} and {b:?}, whose weights have the same shapes and look alike; their names say they are of different classes, and Keras 3 places each by its class, so a misleading name would swap them; pass --like with a .weights.h5 or .keras saved by the Keras 3 model"
            ),
        ));
    }
    for n in nodes.iter().filter(|n| n.is_model()) {
        check_inferred_classes(src, &n.children)?;
    }
    Ok(())
}

/// Lay a model out as Keras 3 does. `plan` is what may be written (others are skipped).
pub fn layout(src: &dyn TensorSource, model: &Model, plan: &[Planned]) -> Result<Layout3> {
    if src.keras3_paths() {
        return Ok(same_paths(src, plan));
    }
    let weighted = model.weighted().count();
    if model.order == Order::Inferred && weighted > 1 {
        // Names alone say neither the order nor which layers sit in a nested model.
        return Err(Error::unsupported(
            src.path(),
            format!(
                "a Keras 3 file: the file does not record the model's layers ({weighted} with weights), only variable names{}, which say neither their order nor which of them sit in a nested model; pass --like with a .weights.h5 or .keras saved by the Keras 3 model",
                model.why.as_deref().map(|w| format!(" ({w})")).unwrap_or_default()
            ),
        ));
    }
    let nodes = tree(src, model)?;
    check_class_order(src, model, &nodes)?;
    check_inferred_classes(src, &nodes)?;
    let mut out = Layout3::default();
    let planned: HashMap<usize, &Planned> = plan.iter().map(|p| (p.index, p)).collect();
    let mut groups: BTreeMap<String, usize> = BTreeMap::new();
    place(src, &nodes, "", &planned, &mut out, &mut groups)?;
    let used: std::collections::HashSet<usize> = out.planned().map(|p| p.index).collect();
    for p in plan.iter().filter(|p| !used.contains(&p.index)) {
        let t = &src.tensors()[p.index];
        let role = naming::role(&t.name, &t.variable);
        out.skipped.push(Skipped {
            name: t.variable.clone(),
            reason: match role {
                Role::Weight => "a weight in no layer of the model".into(),
                Role::Optimizer => "optimizer state, which ckptconv does not translate into a Keras 3 optimizer's variables (--weights-only leaves it out without a note)".into(),
                r => format!("{} state, which Keras 3 weight files do not hold", r.name()),
            },
        });
    }
    Ok(out)
}

fn place(
    src: &dyn TensorSource,
    nodes: &[Node],
    prefix: &str,
    planned: &HashMap<usize, &Planned>,
    out: &mut Layout3,
    groups: &mut BTreeMap<String, usize>,
) -> Result<()> {
    let mut counters: HashMap<String, usize> = HashMap::new();
    for n in nodes {
        let Some(class) = &n.class else {
            if !n.has_weights() {
                // A layer without weights and of unknown class: had it the class of a
                // layer with weights, that layer's group would be numbered one lower,
                // and Keras 3 fails to load it (a group of another size), loudly.
                continue;
            }
            let names: Vec<String> = n
                .all_weights()
                .iter()
                .map(|(t, _)| src.tensors()[*t].variable.clone())
                .collect();
            return Err(Error::unsupported(
                src.path(),
                format!(
                    "a Keras 3 file: the class of layer {:?} (weights {}) is not recorded and not one of Keras' built-in layers' by its weights, and Keras 3 names its group by class; pass --like with a .weights.h5 or .keras saved by the Keras 3 model",
                    n.name,
                    names.join(", ")
                ),
            ));
        };
        let snake = classes::snake_case(class);
        let k = counters.entry(snake.clone()).or_insert(0);
        let gname = if *k == 0 {
            snake.clone()
        } else {
            format!("{snake}_{k}")
        };
        *k += 1;
        let base = format!("{prefix}layers/{gname}");
        if n.is_model() {
            place(src, &n.children, &format!("{base}/"), planned, out, groups)?;
            continue;
        }
        for (t, local) in &n.weights {
            let Some(p) = planned.get(t) else { continue };
            let comps: Vec<&str> = local.iter().map(String::as_str).collect();
            let sub = classes::object_subpath(Some(class), &n.name, &comps, &mut Vec::new())
                .ok_or_else(|| {
                    Error::unsupported(
                        src.path(),
                        format!(
                            "a Keras 3 file: cannot tell where Keras 3 keeps weight {:?} of layer {:?} ({class})",
                            src.tensors()[*t].variable, n.name
                        ),
                    )
                })?;
            let (_, dirs) = sub.split_last().expect("a path has a last component");
            let mut path = base.clone();
            for d in dirs {
                path.push('/');
                // Keras 3's MultiHeadAttention has public properties `query_dense`, …,
                // which its walk (public names first) reaches before tf-keras' private
                // attributes of the same objects.
                path.push_str(match d.as_str() {
                    "_query_dense" | "_key_dense" | "_value_dense" | "_output_dense" => &d[1..],
                    d => d,
                });
            }
            let name = if comps.len() >= 2 {
                comps[comps.len() - 2].to_string()
            } else {
                n.name.clone()
            };
            let g = *groups.entry(path.clone()).or_insert_with(|| {
                out.groups.push(Group3 {
                    path,
                    name: Some(name),
                    vars: Vec::new(),
                });
                out.groups.len() - 1
            });
            let i = out.groups[g].vars.len();
            out.groups[g].vars.push(Planned {
                index: p.index,
                name: i.to_string(),
            });
        }
    }
    Ok(())
}

/// A Keras 3 source's own groups: every tensor where it was (`/layers/dense/vars/0` →
/// group `layers/dense`, dataset `0`), optimizer state included.
fn same_paths(src: &dyn TensorSource, plan: &[Planned]) -> Layout3 {
    let mut out = Layout3::default();
    let mut groups: BTreeMap<String, usize> = BTreeMap::new();
    for p in plan {
        let t = &src.tensors()[p.index];
        let key = t.name.trim_start_matches('/');
        let Some((dir, var)) = key.rsplit_once('/') else {
            out.skipped.push(Skipped {
                name: t.name.clone(),
                reason: "not in a Keras 3 vars group".into(),
            });
            continue;
        };
        let Some(path) = dir.strip_suffix("vars").map(|d| d.trim_end_matches('/')) else {
            out.skipped.push(Skipped {
                name: t.name.clone(),
                reason: "not in a Keras 3 vars group".into(),
            });
            continue;
        };
        let name = t
            .variable
            .rsplit('/')
            .nth(1)
            .map(str::to_string)
            .filter(|_| !path.is_empty() && path != "optimizer");
        let g = *groups.entry(path.to_string()).or_insert_with(|| {
            out.groups.push(Group3 {
                path: path.to_string(),
                name,
                vars: Vec::new(),
            });
            out.groups.len() - 1
        });
        out.groups[g].vars.push(Planned {
            index: p.index,
            name: var.to_string(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_from_weights() {
        let shapes: HashMap<usize, Vec<u64>> = [
            (0, vec![4, 3]),
            (1, vec![3]),
            (2, vec![3, 3, 1, 8]),
            (3, vec![3, 3, 8, 1]),
        ]
        .into_iter()
        .collect();
        let shape = |t: usize| shapes[&t].clone();
        let w = |n: &[(&str, usize)]| -> Vec<(Vec<String>, usize)> {
            n.iter()
                .map(|(p, t)| (p.split('/').map(str::to_string).collect(), *t))
                .collect()
        };
        assert_eq!(
            infer_class("fc1", &w(&[("kernel", 0), ("bias", 1)]), &shape),
            Some("Dense")
        );
        assert_eq!(
            infer_class("block1_conv1", &w(&[("kernel", 2), ("bias", 1)]), &shape),
            Some("Conv2D")
        );
        assert_eq!(
            infer_class(
                "conv2d_transpose_1",
                &w(&[("kernel", 2), ("bias", 1)]),
                &shape
            ),
            Some("Conv2DTranspose")
        );
        assert_eq!(
            infer_class("dw", &w(&[("depthwise_kernel", 3), ("bias", 1)]), &shape),
            Some("DepthwiseConv2D")
        );
        assert_eq!(
            infer_class(
                "bn",
                &w(&[
                    ("gamma", 1),
                    ("beta", 1),
                    ("moving_mean", 1),
                    ("moving_variance", 1)
                ]),
                &shape
            ),
            Some("BatchNormalization")
        );
        assert_eq!(
            infer_class("enc", &w(&[("lstm_cell/kernel", 0)]), &shape),
            Some("LSTM")
        );
        assert_eq!(
            infer_class("x", &w(&[("forward_gru/gru_cell/kernel", 0)]), &shape),
            Some("Bidirectional")
        );
        assert_eq!(infer_class("x", &w(&[("w", 0)]), &shape), None);
        // A name that says Dense over a rank-4 kernel is not trusted.
        assert_eq!(
            infer_class("dense_1", &w(&[("kernel", 2)]), &shape),
            Some("Conv2D")
        );
        assert_eq!(keras3_class("Model"), Ok("Functional"));
        assert!(keras3_class("CuDNNLSTM").is_err());
    }
}
