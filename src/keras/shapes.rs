//! Output shapes from a model config, as Keras' `model.summary()` prints them.
//!
//! One home for the shape facts: each built-in layer's `compute_output_shape`, mirrored
//! from Keras 3 (`keras/src/layers/…`) and tf-keras (`tf_keras/src/layers/…`), which agree
//! for every class here. A functional model's layers are walked in config order, each
//! inbound node resolved from the tensors its inputs name (`inbound_nodes` in Keras 2's
//! `[[name, node, tensor, kwargs], …]` dialect and Keras 3's `{"args", "kwargs"}` one with
//! `__keras_tensor__` entries). A layer whose shape cannot be computed (a custom or
//! unknown class, a call this module does not model, a config that gives no input shape)
//! gets a reason, never a guess.
//!
//! Sources, by class:
//! - InputLayer: `batch_input_shape` (tf-keras `engine/input_layer.py`) / `batch_shape`
//!   (Keras 3 `keras/src/layers/core/input_layer.py`).
//! - Dense, EinsumDense: `keras/src/layers/core/dense.py`, `core/einsum_dense.py`
//!   (`_analyze_split_string`, `full_output_shape`).
//! - Conv*, Conv*Transpose, DepthwiseConv*, SeparableConv*: `keras/src/layers/convolutional/
//!   base_conv.py` → `keras/src/ops/operation_utils.py` `compute_conv_output_shape`;
//!   tf-keras `utils/conv_utils.py` `conv_output_length`, `deconv_output_length`.
//! - Pooling: `keras/src/layers/pooling/base_pooling.py` → `compute_pooling_output_shape`;
//!   global pooling `base_global_pooling.py` (`keepdims`).
//! - Reshaping: `keras/src/layers/reshaping/{flatten,reshape,permute,repeat_vector,
//!   cropping*,zero_padding*,up_sampling*}.py`.
//! - Embedding `core/embedding.py`; RNNs `rnn/rnn.py` (`return_sequences`,
//!   `return_state`), `rnn/bidirectional.py` (merge modes), `rnn/time_distributed.py`,
//!   `rnn/conv_lstm.py`; MultiHeadAttention `attention/multi_head_attention.py`; merging
//!   `merging/base_merge.py` (`_compute_elemwise_op_output_shape`), `merging/concatenate.py`.
//! - Ops in a functional graph: tf-keras `TFOpLambda` (`tf_keras/src/layers/core/
//!   tf_op_layer.py`; its shape is TensorFlow's inference) and Keras 3 operations
//!   (`keras/src/ops/numpy.py`, `nn.py`; `broadcast_shapes` in
//!   `keras/src/ops/operation_utils.py`): element-wise ones broadcast their operands.
//! - keras.applications' own layers: `LayerScale`, `StochasticDepth`
//!   (`applications/convnext.py`), `CustomScaleLayer` (`applications/inception_resnet_v2.py`).

use serde_json::Value;

/// A dimension: `None` when unknown (the batch, a variable length).
pub type Dim = Option<u64>;
/// A tensor shape.
pub type Shape = Vec<Dim>;

/// A layer's outputs from one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outputs {
    pub shapes: Vec<Shape>,
    /// True when the layer returns a list (LSTM with `return_state`, Bidirectional with
    /// `merge_mode=None`), which Keras prints as `[(…), (…)]`.
    pub list: bool,
    /// True when the layer returns a tuple, which tf-keras prints as `((…), (…))`
    /// (MultiHeadAttention with `return_attention_scores`).
    pub tuple: bool,
}

impl Outputs {
    fn one(s: Shape) -> Outputs {
        Outputs {
            shapes: vec![s],
            list: false,
            tuple: false,
        }
    }
}

/// What Keras shows in a row's Output Shape column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowShape {
    Known(Outputs),
    /// tf-keras: a layer called several times with different shapes.
    Multiple,
    /// Cannot be computed from the config; why.
    Unknown(String),
}

/// One row of the summary: a layer of the model's `model.layers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapeRow {
    pub name: String,
    pub class: String,
    pub shape: RowShape,
}

/// The model a config describes, as `model.summary()` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelShapes {
    pub name: Option<String>,
    pub class: String,
    pub rows: Vec<ShapeRow>,
}

/// Which Keras prints the summary (the two differ in how shared layers and inputs show).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    TfKeras,
    Keras3,
}

type R<T> = std::result::Result<T, String>;

const OVERFLOW: &str = "sizes too large to compute";

/// Passes over a functional config's layers; configs list layers by depth, so one pass
/// is the rule and a few are plenty (this bounds the work on a hostile config).
const MAX_PASSES: usize = 64;

/// Deepest nesting of models followed (Keras files nest a handful of levels).
const MAX_DEPTH: usize = 32;

/// The rows of `model.summary()` for a model config (`{"class_name", "config"}`).
/// `None` when the JSON is not a Sequential or Functional model config.
pub fn infer(config: &str, flavour: Flavour) -> Option<ModelShapes> {
    let v: Value = serde_json::from_str(config).ok()?;
    let class = v.get("class_name")?.as_str()?.to_string();
    if !is_model_class(&class) {
        return None;
    }
    let name = v
        .pointer("/config/name")
        .and_then(|n| n.as_str())
        .map(str::to_string);
    let (rows, _) = run_model(&v, None, flavour, 0);
    Some(ModelShapes { name, class, rows })
}

fn is_model_class(c: &str) -> bool {
    matches!(c, "Sequential" | "Functional" | "Model")
}

/// Run a model config on `given` input shapes (its own declared inputs when `None`):
/// its rows and its outputs.
fn run_model(
    v: &Value,
    given: Option<&[Shape]>,
    flavour: Flavour,
    depth: usize,
) -> (Vec<ShapeRow>, R<Outputs>) {
    if depth > MAX_DEPTH {
        return (Vec::new(), Err("models nest too deep".into()));
    }
    let class = v.get("class_name").and_then(|c| c.as_str()).unwrap_or("");
    let cfg = v.get("config").unwrap_or(&Value::Null);
    // Old Keras 2 Sequential configs are the bare layer list.
    let layers: &[Value] = match cfg {
        Value::Array(a) => a,
        _ => cfg
            .get("layers")
            .and_then(|l| l.as_array())
            .map(|a| a.as_slice())
            .unwrap_or(&[]),
    };
    if class == "Sequential" {
        sequential(cfg, layers, given, flavour, depth)
    } else {
        functional(cfg, layers, given, flavour, depth)
    }
}

fn layer_name(l: &Value) -> String {
    l.pointer("/config/name")
        .or_else(|| l.get("name"))
        .and_then(|n| n.as_str())
        .unwrap_or("")
        .to_string()
}

/// A layer's class as Keras prints it (`layer.__class__.__name__`): a tf-keras
/// registered name `Package>Name` is the class `Name`.
fn layer_class(l: &Value) -> String {
    let c = l.get("class_name").and_then(|c| c.as_str()).unwrap_or("");
    c.rsplit('>').next().unwrap_or(c).to_string()
}

/// A declared batch shape: `batch_input_shape` (Keras 2) or `batch_shape` (Keras 3).
fn batch_shape(cfg: &Value) -> Option<Shape> {
    let s = cfg
        .get("batch_shape")
        .filter(|s| !s.is_null())
        .or_else(|| cfg.get("batch_input_shape").filter(|s| !s.is_null()))?;
    parse_shape(s)
}

fn parse_shape(s: &Value) -> Option<Shape> {
    s.as_array()?
        .iter()
        .map(|d| match d {
            Value::Null => Some(None),
            d => d.as_u64().map(Some),
        })
        .collect()
}

fn sequential(
    cfg: &Value,
    layers: &[Value],
    given: Option<&[Shape]>,
    flavour: Flavour,
    depth: usize,
) -> (Vec<ShapeRow>, R<Outputs>) {
    let declared = layers
        .first()
        .and_then(|l| l.get("config"))
        .and_then(batch_shape)
        .or_else(|| cfg.get("build_input_shape").and_then(parse_shape));
    let mut cur: R<Outputs> = match (given, declared) {
        (Some([s]), _) => Ok(Outputs::one(s.clone())),
        (Some(_), _) => Err("a Sequential model called on several inputs".into()),
        (None, Some(s)) => Ok(Outputs::one(s)),
        (None, None) => Err("the config gives no input shape (the model was not built)".into()),
    };
    let mut rows = Vec::new();
    for l in layers {
        let class = layer_class(l);
        if class == "InputLayer" {
            continue;
        }
        let out = cur.and_then(|o| match o.shapes.as_slice() {
            [s] if !o.list => call(l, &In::One(s.clone()), &[], flavour, depth),
            _ => Err("the layer before returns several tensors".into()),
        });
        rows.push(ShapeRow {
            name: layer_name(l),
            class,
            shape: match &out {
                Ok(o) => RowShape::Known(o.clone()),
                Err(e) => RowShape::Unknown(e.clone()),
            },
        });
        cur = out.map_err(|e| format!("an earlier layer's shape is unknown ({e})"));
    }
    (rows, cur)
}

/// A layer's input as a call sees it.
#[derive(Debug, Clone)]
enum In {
    One(Shape),
    Many(Vec<In>),
}

impl In {
    fn one(&self) -> R<&Shape> {
        match self {
            In::One(s) => Ok(s),
            In::Many(_) => Err("called on a list of tensors".into()),
        }
    }

    fn list(&self) -> R<Vec<&Shape>> {
        match self {
            In::Many(v) => v.iter().map(|i| i.one()).collect(),
            In::One(_) => Err("called on one tensor, not a list".into()),
        }
    }
}

fn has_scalar(i: &In) -> bool {
    match i {
        In::One(s) => s.is_empty(),
        In::Many(v) => v.iter().any(has_scalar),
    }
}

/// A reference to a tensor or a structure of them in a node's arguments.
#[derive(Debug, Clone)]
enum Arg {
    T(String, usize, usize),
    /// A Keras 3 `__keras_tensor__` with the shape its config records.
    K(String, usize, usize, Shape),
    /// A number (an op's scalar operand: `x + 3.0`).
    Num,
    L(Vec<Arg>),
    Other,
}

/// A node of a functional config: positional arguments and keyword tensors.
struct Node {
    args: Vec<Arg>,
    kwargs: Vec<(String, Arg)>,
    /// Keyword arguments that are plain values (`return_attention_scores`, `training`).
    flags: serde_json::Map<String, Value>,
}

fn keras2_ref(v: &Value) -> Option<Arg> {
    let a = v.as_array()?;
    let name = a.first()?.as_str()?;
    let node = a.get(1)?.as_u64()? as usize;
    let tensor = a.get(2)?.as_u64()? as usize;
    Some(Arg::T(name.to_string(), node, tensor))
}

fn keras3_arg(v: &Value, depth: usize) -> Arg {
    if depth > MAX_DEPTH {
        return Arg::Other;
    }
    match v {
        Value::Object(o)
            if o.get("class_name").and_then(|c| c.as_str()) == Some("__keras_tensor__") =>
        {
            match (
                v.pointer("/config/keras_history").and_then(keras2_ref),
                v.pointer("/config/shape").and_then(parse_shape),
            ) {
                (Some(Arg::T(n, a, b)), Some(s)) => Arg::K(n, a, b, s),
                (Some(t), _) => t,
                _ => Arg::Other,
            }
        }
        Value::Array(a) => Arg::L(a.iter().map(|x| keras3_arg(x, depth + 1)).collect()),
        Value::Number(_) => Arg::Num,
        _ => Arg::Other,
    }
}

fn has_tensor(a: &Arg) -> bool {
    match a {
        Arg::T(..) | Arg::K(..) => true,
        Arg::L(v) => v.iter().any(has_tensor),
        Arg::Num | Arg::Other => false,
    }
}

/// The nodes of a layer entry's `inbound_nodes`, in either dialect.
fn parse_nodes(l: &Value) -> R<Vec<Node>> {
    let Some(nodes) = l.get("inbound_nodes").and_then(|n| n.as_array()) else {
        return Ok(Vec::new());
    };
    nodes
        .iter()
        .map(|n| match n {
            // Keras 3: {"args": [...], "kwargs": {...}}.
            Value::Object(o) => {
                let args = o
                    .get("args")
                    .and_then(|a| a.as_array())
                    .map(|a| a.iter().map(|x| keras3_arg(x, 0)).collect())
                    .unwrap_or_default();
                let mut kwargs = Vec::new();
                let mut flags = serde_json::Map::new();
                if let Some(kw) = o.get("kwargs").and_then(|k| k.as_object()) {
                    for (k, v) in kw {
                        match keras3_arg(v, 0) {
                            a if has_tensor(&a) => kwargs.push((k.clone(), a)),
                            _ => {
                                flags.insert(k.clone(), v.clone());
                            }
                        }
                    }
                }
                Ok(Node {
                    args,
                    kwargs,
                    flags,
                })
            }
            // tf-keras TFOpLambda: one entry, [name, node, tensor, kwargs].
            Value::Array(entry) if entry.first().is_some_and(|f| f.is_string()) => {
                let t = keras2_ref(n)
                    .ok_or("an inbound node entry is not [name, node, tensor, kwargs]")?;
                let mut kwargs = Vec::new();
                let mut flags = serde_json::Map::new();
                if let Some(kw) = entry.get(3).and_then(|k| k.as_object()) {
                    for (k, v) in kw {
                        match (keras2_ref(v), v) {
                            (Some(a), _) => kwargs.push((k.clone(), a)),
                            (None, Value::Number(_)) => kwargs.push((k.clone(), Arg::Num)),
                            (None, _) => {
                                flags.insert(k.clone(), v.clone());
                            }
                        }
                    }
                }
                Ok(Node {
                    args: vec![t],
                    kwargs,
                    flags,
                })
            }
            // Keras 2: [[name, node, tensor, kwargs], ...].
            Value::Array(entries) => {
                let refs: Vec<Arg> = entries
                    .iter()
                    .map(|e| {
                        keras2_ref(e)
                            .ok_or("an inbound node entry is not [name, node, tensor, kwargs]")
                    })
                    .collect::<std::result::Result<_, _>>()?;
                let mut kwargs = Vec::new();
                let mut flags = serde_json::Map::new();
                if let Some(kw) = entries
                    .first()
                    .and_then(|e| e.get(3))
                    .and_then(|k| k.as_object())
                {
                    for (k, v) in kw {
                        match keras2_ref(v) {
                            Some(a) => kwargs.push((k.clone(), a)),
                            None => {
                                flags.insert(k.clone(), v.clone());
                            }
                        }
                    }
                }
                let args = if refs.len() == 1 {
                    refs
                } else {
                    vec![Arg::L(refs)]
                };
                Ok(Node {
                    args,
                    kwargs,
                    flags,
                })
            }
            _ => Err("an inbound node in a form not known".into()),
        })
        .collect()
}

type Env = std::collections::HashMap<(String, usize), R<Outputs>>;

fn resolve(a: &Arg, env: &Env) -> Option<R<In>> {
    match a {
        // Keras 3 records each input tensor's shape in the node: when the layer that made
        // it has no computed shape (a custom layer), the recorded one is Keras' own.
        Arg::K(name, node, tensor, shape) => {
            let o = env.get(&(name.clone(), *node))?;
            Some(Ok(In::One(
                match o.as_ref().ok().and_then(|o| o.shapes.get(*tensor)) {
                    Some(s) => s.clone(),
                    None => shape.clone(),
                },
            )))
        }
        Arg::T(name, node, tensor) => {
            let o = env.get(&(name.clone(), *node))?;
            Some(
                o.as_ref()
                    .map_err(|e| format!("input {name} has no known shape ({e})"))
                    .and_then(|o| {
                        o.shapes
                            .get(*tensor)
                            .cloned()
                            .map(In::One)
                            .ok_or_else(|| format!("input {name} has no output {tensor}"))
                    }),
            )
        }
        Arg::L(v) => {
            let mut out = Vec::new();
            for x in v {
                match resolve(x, env)? {
                    Ok(i) => out.push(i),
                    Err(e) => return Some(Err(e)),
                }
            }
            Some(Ok(In::Many(out)))
        }
        Arg::Num => Some(Ok(In::One(Vec::new()))),
        Arg::Other => Some(Err("an input that is not a tensor".into())),
    }
}

fn functional(
    cfg: &Value,
    layers: &[Value],
    given: Option<&[Shape]>,
    flavour: Flavour,
    depth: usize,
) -> (Vec<ShapeRow>, R<Outputs>) {
    let mut env: Env = Default::default();
    // Inputs, in `input_layers` order, take the given shapes.
    let input_names: Vec<String> = refs_of(cfg.get("input_layers"))
        .into_iter()
        .map(|(n, _, _)| n)
        .collect();
    let parsed: Vec<R<Vec<Node>>> = layers.iter().map(parse_nodes).collect();
    let mut per_layer: Vec<Vec<R<Outputs>>> = vec![Vec::new(); layers.len()];
    let mut done = vec![false; layers.len()];
    for (k, l) in layers.iter().enumerate() {
        if layer_class(l) == "InputLayer" {
            let name = layer_name(l);
            let pos = input_names.iter().position(|n| *n == name);
            let s = match (given, pos) {
                (Some(g), Some(p)) if p < g.len() => Ok(Outputs::one(g[p].clone())),
                _ => l
                    .get("config")
                    .and_then(batch_shape)
                    .map(Outputs::one)
                    .ok_or_else(|| "the input layer gives no shape".to_string()),
            };
            env.insert((name, 0), s.clone());
            per_layer[k].push(s);
            done[k] = true;
        }
    }
    // Layers in config order; a node whose inputs come later waits for another pass
    // (configs list layers by depth, so one pass is the rule).
    let mut progress = true;
    let mut passes = 0;
    while progress && passes < MAX_PASSES {
        passes += 1;
        progress = false;
        for (k, l) in layers.iter().enumerate() {
            if done[k] {
                continue;
            }
            let name = layer_name(l);
            let nodes = match &parsed[k] {
                Ok(n) => n,
                Err(e) => {
                    // The layer's calls are not understood: what takes its outputs is
                    // unknown too, and says so.
                    let calls = l
                        .get("inbound_nodes")
                        .and_then(|n| n.as_array())
                        .map_or(0, |n| n.len());
                    let skip = skips_first_node(l, flavour);
                    for i in 0..calls {
                        env.insert((name.clone(), i + skip), Err(e.clone()));
                    }
                    per_layer[k].push(Err(e.clone()));
                    done[k] = true;
                    progress = true;
                    continue;
                }
            };
            let skip = skips_first_node(l, flavour);
            while per_layer[k].len() < nodes.len() {
                let n = &nodes[per_layer[k].len()];
                let Some(out) = call_node(l, n, &env, flavour, depth) else {
                    break;
                };
                env.insert((name.clone(), per_layer[k].len() + skip), out.clone());
                per_layer[k].push(out);
                progress = true;
            }
            if per_layer[k].len() == nodes.len() {
                done[k] = true;
                progress = true;
            }
        }
    }
    let rows = layers
        .iter()
        .enumerate()
        .map(|(k, l)| ShapeRow {
            name: layer_name(l),
            class: layer_class(l),
            shape: row_shape(&per_layer[k], done[k], flavour),
        })
        .collect();
    let outs: Vec<(String, usize, usize)> = refs_of(cfg.get("output_layers"));
    let single = cfg
        .get("output_layers")
        .and_then(|o| o.as_array())
        .is_some_and(|a| a.first().is_some_and(|f| f.is_string()));
    let mut shapes = Vec::new();
    let mut result = Ok(());
    for (n, node, t) in &outs {
        match resolve(&Arg::T(n.clone(), *node, *t), &env) {
            Some(Ok(In::One(s))) => shapes.push(s),
            Some(Err(e)) => result = Err(e),
            _ => result = Err(format!("output {n} is not computed")),
        }
    }
    let outputs = result.and_then(|_| {
        if shapes.is_empty() {
            Err("the config names no outputs".to_string())
        } else {
            Ok(Outputs {
                list: !(single || shapes.len() == 1),
                shapes,
                tuple: false,
            })
        }
    });
    (rows, outputs)
}

/// `[name, node, tensor]` or a list of them.
fn refs_of(v: Option<&Value>) -> Vec<(String, usize, usize)> {
    let Some(a) = v.and_then(|v| v.as_array()) else {
        return Vec::new();
    };
    if a.first().is_some_and(|f| f.is_string()) {
        return match keras2_ref(v.unwrap_or(&Value::Null)) {
            Some(Arg::T(n, a, b)) => vec![(n, a, b)],
            _ => Vec::new(),
        };
    }
    a.iter()
        .filter_map(|r| match keras2_ref(r) {
            Some(Arg::T(n, a, b)) => Some((n, a, b)),
            _ => None,
        })
        .collect()
}

/// tf-keras numbers a nested model's nodes from 1 when its first node is its own
/// creation from an InputLayer (`_should_skip_first_node` in
/// `tf_keras/src/engine/functional.py`), so the config's references to its calls do too.
fn skips_first_node(l: &Value, flavour: Flavour) -> usize {
    let nested = is_model_class(&layer_class(l));
    let first_input = l
        .pointer("/config/layers/0/class_name")
        .and_then(|c| c.as_str())
        == Some("InputLayer");
    usize::from(flavour == Flavour::TfKeras && nested && first_input)
}

fn row_shape(nodes: &[R<Outputs>], done: bool, flavour: Flavour) -> RowShape {
    if !done {
        return RowShape::Unknown(
            "its inputs are never computed (a cycle, or a layer the config does not list)".into(),
        );
    }
    match nodes {
        [] => RowShape::Unknown("the layer is never called in the model".into()),
        [one] => match one {
            Ok(o) => RowShape::Known(o.clone()),
            Err(e) => RowShape::Unknown(e.clone()),
        },
        many => match flavour {
            // Keras 3 `format_layer_shape` keeps the last node's shapes.
            Flavour::Keras3 => match &many[many.len() - 1] {
                Ok(o) => RowShape::Known(o.clone()),
                Err(e) => RowShape::Unknown(e.clone()),
            },
            // tf-keras `layer.output_shape` is defined when every node agrees, else
            // print_summary shows "multiple".
            Flavour::TfKeras => {
                let known: Option<Vec<&Outputs>> = many.iter().map(|o| o.as_ref().ok()).collect();
                match known {
                    Some(k) if k.iter().all(|o| *o == k[0]) => RowShape::Known(k[0].clone()),
                    Some(_) => RowShape::Multiple,
                    None => RowShape::Unknown("a call's shape is unknown".into()),
                }
            }
        },
    }
}

fn call_node(l: &Value, n: &Node, env: &Env, flavour: Flavour, depth: usize) -> Option<R<Outputs>> {
    if let Some(f) = op_function(l) {
        // An op's operands: every positional argument and every keyword tensor.
        let mut operands = Vec::new();
        for a in n.args.iter().chain(n.kwargs.iter().map(|(_, a)| a)) {
            match resolve(a, env)? {
                Ok(In::One(s)) => operands.push(s),
                Ok(In::Many(_)) => return Some(Err(format!("op {f} called on a list"))),
                Err(e) => return Some(Err(e)),
            }
        }
        return Some(op_output(&f, &operands, cfg_of(l)).map(Outputs::one));
    }
    let Some(first) = n.args.first() else {
        return Some(Err("a call without inputs".into()));
    };
    let input = match resolve(first, env)? {
        Ok(i) => i,
        Err(e) => return Some(Err(e)),
    };
    let mut extra: Vec<(String, In)> = Vec::new();
    for (k, a) in n.args.iter().skip(1).enumerate() {
        match resolve(a, env) {
            Some(Ok(i)) => extra.push((format!("#{}", k + 1), i)),
            Some(Err(e)) => return Some(Err(e)),
            None => return None,
        }
    }
    for (k, a) in &n.kwargs {
        match resolve(a, env) {
            Some(Ok(i)) => extra.push((k.clone(), i)),
            Some(Err(e)) => return Some(Err(e)),
            None => return None,
        }
    }
    for (k, v) in &n.flags {
        if v.as_bool() == Some(true) {
            extra.push((format!("flag:{k}"), In::Many(Vec::new())));
        }
    }
    Some(call(l, &input, &extra, flavour, depth))
}

/// The function of an op node: a tf-keras `TFOpLambda`'s `function`
/// (`__operators__.add`, `math.multiply`, `nn.relu6`) or a Keras 3 operation's class
/// (`keras.src.ops.numpy.Add` for `x + 3.0`). `None` for a layer.
fn op_function(l: &Value) -> Option<String> {
    if l.get("class_name").and_then(|c| c.as_str()) == Some("TFOpLambda") {
        return l
            .pointer("/config/function")
            .and_then(|f| f.as_str())
            .map(|f| format!("tf.{f}"));
    }
    match l.get("module").and_then(|m| m.as_str()) {
        Some(module) => module
            .starts_with("keras.src.ops.")
            .then(|| format!("{module}.{}", layer_class(l))),
        // Keras 3's legacy `.h5` drops the module. An operation's config holds its name
        // and its own arguments (`Operation.get_config`); a layer's always has
        // `trainable` (`Layer.get_config`).
        None => {
            let c = l.get("config")?.as_object()?;
            if c.contains_key("trainable") {
                return None;
            }
            let class = layer_class(l);
            ELEMENTWISE_OPS
                .iter()
                .chain(REDUCTION_OPS)
                .find(|f| {
                    f.starts_with("keras.src.ops.") && f.rsplit('.').next() == Some(class.as_str())
                })
                .map(|f| f.to_string())
        }
    }
}

/// Element-wise ops, whose output is their operands broadcast together.
const ELEMENTWISE_OPS: &[&str] = &[
    "tf.__operators__.add",
    "tf.__operators__.sub",
    "tf.__operators__.mul",
    "tf.__operators__.truediv",
    "tf.math.add",
    "tf.math.subtract",
    "tf.math.multiply",
    "tf.math.truediv",
    "tf.math.divide",
    "tf.math.maximum",
    "tf.math.minimum",
    "tf.math.sigmoid",
    "tf.math.tanh",
    "tf.math.negative",
    "tf.math.square",
    "tf.math.sqrt",
    "tf.math.exp",
    "tf.math.abs",
    "tf.nn.relu",
    "tf.nn.relu6",
    "tf.nn.sigmoid",
    "tf.nn.silu",
    "tf.nn.swish",
    "keras.src.ops.numpy.Add",
    "keras.src.ops.numpy.Subtract",
    "keras.src.ops.numpy.Multiply",
    "keras.src.ops.numpy.Divide",
    "keras.src.ops.numpy.TrueDivide",
    "keras.src.ops.numpy.Maximum",
    "keras.src.ops.numpy.Minimum",
    "keras.src.ops.numpy.Negative",
    "keras.src.ops.numpy.Abs",
    "keras.src.ops.numpy.Square",
    "keras.src.ops.numpy.Sqrt",
    "keras.src.ops.numpy.Exp",
    "keras.src.ops.nn.Relu",
    "keras.src.ops.nn.Relu6",
    "keras.src.ops.nn.Sigmoid",
    "keras.src.ops.nn.HardSigmoid",
    "keras.src.ops.nn.Silu",
    "keras.src.ops.nn.HardSilu",
    // Comparisons and logic, which Keras 3 inserts itself to build masks
    // (`Embedding(mask_zero=True)`, `Masking`: `not_equal`, then `any`).
    "keras.src.ops.numpy.Equal",
    "keras.src.ops.numpy.NotEqual",
    "keras.src.ops.numpy.Greater",
    "keras.src.ops.numpy.GreaterEqual",
    "keras.src.ops.numpy.Less",
    "keras.src.ops.numpy.LessEqual",
    "keras.src.ops.numpy.LogicalAnd",
    "keras.src.ops.numpy.LogicalOr",
    "keras.src.ops.numpy.LogicalNot",
    "keras.src.ops.core.ConvertToTensor",
    "keras.src.ops.core.Cast",
    "tf.math.equal",
    "tf.math.not_equal",
    "tf.math.greater",
    "tf.math.less",
    "tf.math.logical_and",
    "tf.math.logical_or",
    "tf.math.logical_not",
    "tf.cast",
];

/// Reductions over `axis` (an int, a list, or none for all), keeping the reduced axes as
/// 1 with `keepdims` (`keras/src/ops/operation_utils.py` `reduce_shape`).
const REDUCTION_OPS: &[&str] = &[
    "keras.src.ops.numpy.Any",
    "keras.src.ops.numpy.All",
    "keras.src.ops.numpy.Sum",
    "keras.src.ops.numpy.Mean",
    "keras.src.ops.numpy.Max",
    "keras.src.ops.numpy.Min",
    "keras.src.ops.numpy.Prod",
];

fn op_output(f: &str, operands: &[Shape], c: &Value) -> R<Shape> {
    if REDUCTION_OPS.contains(&f) {
        let [s] = operands else {
            return Err(format!("op {f} on other than one tensor"));
        };
        return reduce_shape(s, get(c, "axis"), boolean(c, "keepdims", false));
    }
    if !ELEMENTWISE_OPS.contains(&f) {
        return Err(format!(
            "the output shape of op {f} is not computed by ckptconv"
        ));
    }
    broadcast(operands)
}

fn reduce_shape(s: &Shape, axis: Option<&Value>, keepdims: bool) -> R<Shape> {
    let rank = s.len() as i64;
    let norm = |a: &Value| -> R<usize> {
        let a = a.as_i64().ok_or("axis is not an integer")?;
        let k = if a < 0 { a + rank } else { a };
        (0..rank)
            .contains(&k)
            .then_some(k as usize)
            .ok_or_else(|| format!("axis {a} is outside rank {rank}"))
    };
    let axes: Vec<usize> = match axis {
        None => (0..s.len()).collect(),
        Some(Value::Array(v)) => v.iter().map(norm).collect::<R<_>>()?,
        Some(a) => vec![norm(a)?],
    };
    Ok(s.iter()
        .enumerate()
        .filter_map(|(i, d)| match (axes.contains(&i), keepdims) {
            (false, _) => Some(*d),
            (true, true) => Some(Some(1)),
            (true, false) => None,
        })
        .collect())
}

/// NumPy broadcasting with unknown sizes, as TensorFlow's shape inference and Keras 3's
/// `broadcast_shapes` (`keras/src/ops/operation_utils.py`) do it: an unknown size against
/// a known one other than 1 is the known one.
fn broadcast(shapes: &[Shape]) -> R<Shape> {
    let rank = shapes
        .iter()
        .map(|s| s.len())
        .max()
        .ok_or("an op without operands")?;
    let mut out: Shape = vec![Some(1); rank];
    let mut seen = vec![false; rank];
    for s in shapes {
        let off = rank - s.len();
        for (i, d) in s.iter().enumerate() {
            let j = off + i;
            let cur = out[j];
            out[j] = match (cur, *d) {
                _ if !seen[j] => *d,
                (Some(1), x) | (x, Some(1)) => x,
                (None, x) | (x, None) => x,
                (Some(a), Some(b)) if a == b => Some(a),
                (Some(a), Some(b)) => {
                    return Err(format!("operands of sizes {a} and {b} do not broadcast"))
                }
            };
            seen[j] = true;
        }
    }
    Ok(out)
}

// ---- per-class rules ----

fn cfg_of(l: &Value) -> &Value {
    l.get("config").unwrap_or(&Value::Null)
}

fn get<'a>(c: &'a Value, k: &str) -> Option<&'a Value> {
    c.get(k).filter(|v| !v.is_null())
}

fn uint(c: &Value, k: &str) -> R<u64> {
    get(c, k)
        .and_then(|v| v.as_u64())
        .ok_or_else(|| format!("config has no integer {k:?}"))
}

fn boolean(c: &Value, k: &str, default: bool) -> bool {
    get(c, k).and_then(|v| v.as_bool()).unwrap_or(default)
}

fn string<'a>(c: &'a Value, k: &str, default: &'a str) -> &'a str {
    get(c, k).and_then(|v| v.as_str()).unwrap_or(default)
}

/// An int or a list of `n` ints (`kernel_size: 3` or `[3, 3]`).
fn tuple(c: &Value, k: &str, n: usize, default: Option<u64>) -> R<Vec<u64>> {
    match get(c, k) {
        None => default
            .map(|d| vec![d; n])
            .ok_or_else(|| format!("config has no {k:?}")),
        Some(Value::Number(x)) => x
            .as_u64()
            .map(|d| vec![d; n])
            .ok_or_else(|| format!("{k:?} is not a count")),
        Some(Value::Array(a)) if a.len() == n => a
            .iter()
            .map(|d| {
                d.as_u64()
                    .ok_or_else(|| format!("{k:?} is not a list of counts"))
            })
            .collect(),
        Some(Value::Array(a)) if a.len() == 1 => {
            let d = a[0]
                .as_u64()
                .ok_or_else(|| format!("{k:?} is not a count"))?;
            Ok(vec![d; n])
        }
        Some(_) => Err(format!("{k:?} is not {n} counts")),
    }
}

fn channels_first(c: &Value) -> bool {
    string(c, "data_format", "channels_last") == "channels_first"
}

fn rank_at_least(s: &Shape, n: usize, class: &str) -> R<()> {
    if s.len() < n {
        return Err(format!(
            "{class} needs an input of rank {n} or more, got {}",
            s.len()
        ));
    }
    Ok(())
}

/// `conv_output_length` (tf-keras `utils/conv_utils.py`; Keras 3
/// `compute_conv_output_shape` agrees): same/causal → ceil(n / s); valid →
/// ceil((n − d·(k−1)) / s); full → ceil((n + d·(k−1)) / s).
pub fn conv_output_length(n: Dim, k: u64, padding: &str, stride: u64, dilation: u64) -> R<Dim> {
    let Some(n) = n else { return Ok(None) };
    if stride == 0 || k == 0 || dilation == 0 {
        return Err("a zero kernel size, stride or dilation".into());
    }
    let dk = (k - 1)
        .checked_mul(dilation)
        .and_then(|x| x.checked_add(1))
        .ok_or(OVERFLOW)?;
    let len = match padding {
        "same" | "causal" => n,
        "valid" => {
            if n < dk {
                return Err(format!(
                    "input length {n} is shorter than the kernel's reach {dk}"
                ));
            }
            n - dk + 1
        }
        "full" => n.checked_add(dk - 1).ok_or(OVERFLOW)?,
        p => return Err(format!("padding {p:?} not known")),
    };
    Ok(Some(len.div_ceil(stride)))
}

/// `deconv_output_length` (tf-keras `utils/conv_utils.py`, Keras 3
/// `keras/src/utils/conv_utils.py`... `compute_conv_transpose_output_shape`).
pub fn deconv_output_length(
    n: Dim,
    k: u64,
    padding: &str,
    output_padding: Option<u64>,
    stride: u64,
    dilation: u64,
) -> R<Dim> {
    let Some(n) = n else { return Ok(None) };
    if k == 0 || stride == 0 || dilation == 0 {
        return Err("a zero kernel size, stride or dilation".into());
    }
    let k = (k - 1)
        .checked_mul(dilation)
        .and_then(|x| x.checked_add(1))
        .ok_or(OVERFLOW)?;
    let ns = n.checked_mul(stride).ok_or(OVERFLOW)?;
    let len = match output_padding {
        None => match padding {
            "valid" => ns.checked_add(k.saturating_sub(stride)).ok_or(OVERFLOW)?,
            "full" => ns
                .checked_sub(stride.saturating_add(k) - 2)
                .ok_or("a negative output length")?,
            "same" => ns,
            p => return Err(format!("padding {p:?} not known")),
        },
        Some(op) => {
            let pad = match padding {
                "same" => k / 2,
                "valid" => 0,
                "full" => k - 1,
                p => return Err(format!("padding {p:?} not known")),
            };
            (n.saturating_sub(1))
                .checked_mul(stride)
                .and_then(|x| x.checked_add(k))
                .and_then(|x| x.checked_add(op))
                .ok_or(OVERFLOW)?
                .checked_sub(pad.saturating_mul(2))
                .ok_or("a negative output length")?
        }
    };
    Ok(Some(len))
}

/// The spatial dimensions of a conv-like input and where its channels are.
fn spatial(s: &Shape, rank: usize, cf: bool, class: &str) -> R<(Vec<Dim>, Dim)> {
    if s.len() != rank + 2 {
        return Err(format!(
            "{class} needs an input of rank {}, got {}",
            rank + 2,
            s.len()
        ));
    }
    Ok(if cf {
        (s[2..].to_vec(), s[1])
    } else {
        (s[1..=rank].to_vec(), s[rank + 1])
    })
}

fn assemble(batch: Dim, sp: Vec<Dim>, ch: Dim, cf: bool) -> Shape {
    let mut out = vec![batch];
    if cf {
        out.push(ch);
        out.extend(sp);
    } else {
        out.extend(sp);
        out.push(ch);
    }
    out
}

fn conv_rank(class: &str) -> Option<usize> {
    ["1D", "2D", "3D"]
        .iter()
        .position(|r| class.contains(r))
        .map(|p| p + 1)
}

fn conv(c: &Value, s: &Shape, class: &str, rank: usize) -> R<Shape> {
    let cf = channels_first(c);
    let (sp, ch) = spatial(s, rank, cf, class)?;
    let k = tuple(c, "kernel_size", rank, None)?;
    let st = tuple(c, "strides", rank, Some(1))?;
    let d = tuple(c, "dilation_rate", rank, Some(1))?;
    let padding = string(c, "padding", "valid");
    let transpose = class.ends_with("Transpose");
    let mut out = Vec::new();
    for i in 0..rank {
        out.push(if transpose {
            let op = match get(c, "output_padding") {
                None => None,
                Some(_) => Some(tuple(c, "output_padding", rank, None)?[i]),
            };
            deconv_output_length(sp[i], k[i], padding, op, st[i], d[i])?
        } else {
            conv_output_length(sp[i], k[i], padding, st[i], d[i])?
        });
    }
    let channels = if class.starts_with("Depthwise") {
        let dm = tuple(c, "depth_multiplier", 1, Some(1))?[0];
        match ch {
            Some(c0) => Some(c0.checked_mul(dm).ok_or(OVERFLOW)?),
            None => None,
        }
    } else {
        Some(uint(c, "filters")?)
    };
    Ok(assemble(s[0], out, channels, cf))
}

fn pool(c: &Value, s: &Shape, class: &str, rank: usize) -> R<Shape> {
    let cf = channels_first(c);
    let (sp, ch) = spatial(s, rank, cf, class)?;
    let p = tuple(c, "pool_size", rank, Some(2))?;
    let st = match get(c, "strides") {
        None => p.clone(),
        Some(_) => tuple(c, "strides", rank, None)?,
    };
    let padding = string(c, "padding", "valid");
    let out = (0..rank)
        .map(|i| conv_output_length(sp[i], p[i], padding, st[i], 1))
        .collect::<R<Vec<Dim>>>()?;
    Ok(assemble(s[0], out, ch, cf))
}

fn global_pool(c: &Value, s: &Shape, class: &str, rank: usize) -> R<Shape> {
    let cf = channels_first(c);
    let (_, ch) = spatial(s, rank, cf, class)?;
    Ok(if boolean(c, "keepdims", false) {
        assemble(s[0], vec![Some(1); rank], ch, cf)
    } else {
        vec![s[0], ch]
    })
}

fn product(d: &[Dim]) -> Dim {
    d.iter()
        .try_fold(1u64, |a, x| x.and_then(|x| a.checked_mul(x)))
}

fn reshape(c: &Value, s: &Shape) -> R<Shape> {
    let t = get(c, "target_shape")
        .and_then(|t| t.as_array())
        .ok_or("config has no target_shape")?;
    let target: Vec<i64> = t
        .iter()
        .map(|d| d.as_i64().ok_or("target_shape is not a list of integers"))
        .collect::<std::result::Result<_, _>>()?;
    let known: Option<u64> = target.iter().filter(|d| **d != -1).try_fold(1u64, |a, d| {
        u64::try_from(*d).ok().and_then(|d| a.checked_mul(d))
    });
    let known = known.ok_or("target_shape has a negative size")?;
    let total = product(&s[1..]);
    let mut out = vec![s[0]];
    for d in &target {
        out.push(if *d == -1 {
            match total {
                Some(t) if known > 0 && t % known == 0 => Some(t / known),
                Some(_) => return Err("target_shape does not divide the input".into()),
                None => None,
            }
        } else {
            Some(*d as u64)
        });
    }
    Ok(out)
}

fn pad_or_crop(c: &Value, s: &Shape, class: &str, rank: usize, key: &str, grow: bool) -> R<Shape> {
    let cf = channels_first(c);
    let (sp, ch) = if rank == 1 {
        if s.len() != 3 {
            return Err(format!("{class} needs an input of rank 3"));
        }
        (vec![s[1]], s[2])
    } else {
        spatial(s, rank, cf, class)?
    };
    // An int, a pair per axis, or (1D) one pair.
    let v = get(c, key).ok_or_else(|| format!("config has no {key:?}"))?;
    let pairs: Vec<(u64, u64)> = match v {
        Value::Number(n) => {
            let n = n.as_u64().ok_or("a negative amount")?;
            vec![(n, n); rank]
        }
        Value::Array(a) if rank == 1 && a.len() == 2 && a.iter().all(|x| x.is_u64()) => {
            vec![(a[0].as_u64().unwrap_or(0), a[1].as_u64().unwrap_or(0))]
        }
        Value::Array(a) if a.len() == rank => a
            .iter()
            .map(|x| match x {
                Value::Number(n) => n.as_u64().map(|n| (n, n)),
                Value::Array(p) if p.len() == 2 => Some((p[0].as_u64()?, p[1].as_u64()?)),
                _ => None,
            })
            .collect::<Option<_>>()
            .ok_or_else(|| format!("{key:?} not understood"))?,
        _ => return Err(format!("{key:?} not understood")),
    };
    let out = sp
        .iter()
        .zip(&pairs)
        .map(|(d, (a, b))| match d {
            None => Ok(None),
            Some(d) if grow => d
                .checked_add(*a)
                .and_then(|x| x.checked_add(*b))
                .map(Some)
                .ok_or_else(|| OVERFLOW.to_string()),
            Some(d) => d
                .checked_sub(a.saturating_add(*b))
                .map(Some)
                .ok_or_else(|| "cropping more than the input".to_string()),
        })
        .collect::<R<Vec<Dim>>>()?;
    Ok(if rank == 1 {
        vec![s[0], out[0], ch]
    } else {
        assemble(s[0], out, ch, cf)
    })
}

fn upsample(c: &Value, s: &Shape, class: &str, rank: usize) -> R<Shape> {
    let cf = channels_first(c);
    let (sp, ch, key) = if rank == 1 {
        if s.len() != 3 {
            return Err(format!("{class} needs an input of rank 3"));
        }
        (vec![s[1]], s[2], "size")
    } else {
        let (a, b) = spatial(s, rank, cf, class)?;
        (a, b, "size")
    };
    let f = tuple(c, key, rank, Some(2))?;
    let out: Vec<Dim> = sp
        .iter()
        .zip(&f)
        .map(|(d, f)| match d {
            Some(d) => d.checked_mul(*f).map(Some).ok_or(OVERFLOW),
            None => Ok(None),
        })
        .collect::<std::result::Result<_, _>>()?;
    Ok(if rank == 1 {
        vec![s[0], out[0], ch]
    } else {
        assemble(s[0], out, ch, cf)
    })
}

/// `_compute_elemwise_op_output_shape` of `merging/base_merge.py`.
fn elementwise(shapes: &[&Shape]) -> R<Shape> {
    let Some(first) = shapes.first() else {
        return Err("a merge of no inputs".into());
    };
    let mut out: Vec<Dim> = first[1..].to_vec();
    for s in &shapes[1..] {
        let b = &s[1.min(s.len())..];
        if b.len() > out.len() {
            let extra = b.len() - out.len();
            let mut o = b[..extra].to_vec();
            o.extend(out);
            out = o;
        }
        let off = out.len() - b.len();
        for (i, j) in b.iter().enumerate() {
            let a = out[off + i];
            out[off + i] = match (a, *j) {
                (None, _) | (_, None) => None,
                (Some(1), y) => y,
                (x, Some(1)) => x,
                (Some(x), Some(y)) if x == y => Some(x),
                (Some(x), Some(y)) => {
                    return Err(format!("inputs of sizes {x} and {y} do not broadcast"))
                }
            };
        }
    }
    let batch = if shapes.iter().all(|s| s.first() == first.first()) {
        first[0]
    } else {
        None
    };
    let mut r = vec![batch];
    r.extend(out);
    Ok(r)
}

fn concatenate(c: &Value, shapes: &[&Shape]) -> R<Shape> {
    let first = shapes.first().ok_or("a concatenation of no inputs")?;
    let rank = first.len() as i64;
    let axis = get(c, "axis").and_then(|a| a.as_i64()).unwrap_or(-1);
    let ax = if axis < 0 { rank + axis } else { axis };
    if ax < 0 || ax >= rank {
        return Err(format!("axis {axis} is outside rank {rank}"));
    }
    let ax = ax as usize;
    let mut out = (*first).clone();
    for s in &shapes[1..] {
        if s.len() != first.len() {
            return Err("inputs of different ranks".into());
        }
        out[ax] = match (out[ax], s[ax]) {
            (Some(a), Some(b)) => Some(a.checked_add(b).ok_or(OVERFLOW)?),
            _ => None,
        };
        for i in 0..out.len() {
            if i != ax && out[i].is_none() {
                out[i] = s[i];
            }
        }
    }
    Ok(out)
}

/// `Attention` and `AdditiveAttention` (`keras/src/layers/attention/attention.py`
/// `compute_output_shape`): called on `[query, value]` or `[query, value, key]`, the
/// output is the query's shape with the value's last size; with
/// `return_attention_scores` the scores `(batch, Tq, Tv)` follow.
fn dot_attention(inputs: &[&Shape], extra: &[(String, In)]) -> R<Outputs> {
    let (q, v) = match inputs {
        [q, v] | [q, v, _] => (*q, *v),
        _ => return Err("called on other than [query, value(, key)]".into()),
    };
    rank_at_least(q, 2, "Attention")?;
    rank_at_least(v, 2, "Attention")?;
    let mut out = q.clone();
    *out.last_mut().ok_or("rank 0")? = v[v.len() - 1];
    if !extra
        .iter()
        .any(|(k, _)| k == "flag:return_attention_scores")
    {
        return Ok(Outputs::one(out));
    }
    let key = inputs.get(2).copied().unwrap_or(v);
    rank_at_least(key, 2, "Attention")?;
    let scores = vec![q[0], q[q.len() - 2], key[key.len() - 2]];
    Ok(Outputs {
        shapes: vec![out, scores],
        list: false,
        tuple: true,
    })
}

/// `RNN(cell)` (`keras/src/layers/rnn/rnn.py` `compute_output_shape`): the output size is
/// the (last stacked) cell's `units`; each cell adds its states (an LSTM cell two, a GRU
/// or SimpleRNN cell one) when `return_state`.
fn generic_rnn(c: &Value, s: &Shape) -> R<Outputs> {
    rank_at_least(s, 3, "RNN")?;
    let cell = get(c, "cell").ok_or("the RNN's config has no cell")?;
    let cells: Vec<&Value> = match layer_class(cell).as_str() {
        "StackedRNNCells" => get(cfg_of(cell), "cells")
            .and_then(|c| c.as_array())
            .ok_or("StackedRNNCells without cells")?
            .iter()
            .collect(),
        _ => vec![cell],
    };
    let mut states = Vec::new();
    let mut units = None;
    for cell in &cells {
        let u = uint(cfg_of(cell), "units")?;
        let n = match layer_class(cell).as_str() {
            "LSTMCell" => 2,
            "GRUCell" | "SimpleRNNCell" => 1,
            other => return Err(format!("the states of a {other} are not known")),
        };
        states.extend(std::iter::repeat_n(vec![s[0], Some(u)], n));
        units = Some(u);
    }
    let units = units.ok_or("an RNN of no cells")?;
    let out = if boolean(c, "return_sequences", false) {
        vec![s[0], s[1], Some(units)]
    } else {
        vec![s[0], Some(units)]
    };
    if !boolean(c, "return_state", false) {
        return Ok(Outputs::one(out));
    }
    if cells.len() > 1 {
        // Each LSTM cell's pair of states is a list within the list: a nesting these
        // rows do not model.
        return Err("the states of stacked cells are nested lists".into());
    }
    let mut shapes = vec![out];
    shapes.extend(states);
    Ok(Outputs {
        shapes,
        list: true,
        tuple: false,
    })
}

/// `Dot` (`keras/src/layers/merging/dot.py` `compute_output_shape`): both inputs lose
/// their summed axis, the second its batch too; a rank-1 result gets a trailing 1.
fn dot(c: &Value, shapes: &[&Shape]) -> R<Shape> {
    let [a, b] = shapes else {
        return Err("Dot is called on two inputs".into());
    };
    let axes = match get(c, "axes") {
        Some(Value::Number(n)) => {
            let n = n.as_i64().ok_or("axes is not an integer")?;
            [n, n]
        }
        Some(Value::Array(v)) if v.len() == 2 => {
            let n = |k: usize| v[k].as_i64().ok_or("axes is not two integers");
            [n(0)?, n(1)?]
        }
        _ => return Err("config has no axes".into()),
    };
    let norm = |ax: i64, rank: usize| -> R<usize> {
        let r = rank as i64;
        let a = if ax < 0 { ax + r } else { ax };
        (1..r)
            .contains(&a)
            .then_some(a as usize)
            .ok_or_else(|| format!("axis {ax} is outside rank {rank}"))
    };
    let (i, j) = (norm(axes[0], a.len())?, norm(axes[1], b.len())?);
    let mut out = (*a).clone();
    out.remove(i);
    let mut rest = (*b).clone();
    rest.remove(j);
    rest.remove(0);
    out.extend(rest);
    if out.len() == 1 {
        out.push(Some(1));
    }
    Ok(out)
}

fn inner_layer(c: &Value) -> R<&Value> {
    get(c, "layer").ok_or_else(|| "the wrapper's config has no layer".into())
}

/// An RNN's outputs: `return_sequences`, `return_state` (`rnn/rnn.py`
/// `compute_output_shape`), states per class.
fn rnn(c: &Value, s: &Shape, class: &str) -> R<Outputs> {
    rank_at_least(s, 3, class)?;
    let units = uint(c, "units")?;
    let seq = boolean(c, "return_sequences", false);
    let out = if seq {
        vec![s[0], s[1], Some(units)]
    } else {
        vec![s[0], Some(units)]
    };
    if !boolean(c, "return_state", false) {
        return Ok(Outputs::one(out));
    }
    let states = match class {
        "LSTM" => 2,
        "GRU" | "SimpleRNN" => 1,
        _ => return Err(format!("the states of a {class} are not known")),
    };
    let mut shapes = vec![out];
    shapes.extend(std::iter::repeat_n(vec![s[0], Some(units)], states));
    Ok(Outputs {
        shapes,
        list: true,
        tuple: false,
    })
}

fn conv_lstm(c: &Value, s: &Shape, class: &str, rank: usize) -> R<Outputs> {
    if s.len() != rank + 3 {
        return Err(format!("{class} needs an input of rank {}", rank + 3));
    }
    let mut frame = vec![s[0]];
    frame.extend_from_slice(&s[2..]);
    let mut cc = c.clone();
    if let Some(o) = cc.as_object_mut() {
        o.insert(
            "dilation_rate".into(),
            c.get("dilation_rate").cloned().unwrap_or(1.into()),
        );
    }
    let f = conv(&cc, &frame, "Conv", rank)?;
    let step = f[1..].to_vec();
    let out = if boolean(c, "return_sequences", false) {
        let mut o = vec![s[0], s[1]];
        o.extend(step.iter().cloned());
        o
    } else {
        let mut o = vec![s[0]];
        o.extend(step.iter().cloned());
        o
    };
    if !boolean(c, "return_state", false) {
        return Ok(Outputs::one(out));
    }
    let mut st = vec![s[0]];
    st.extend(step);
    Ok(Outputs {
        shapes: vec![out, st.clone(), st],
        list: true,
        tuple: false,
    })
}

fn bidirectional(c: &Value, s: &Shape, flavour: Flavour, depth: usize) -> R<Outputs> {
    let inner = inner_layer(c)?;
    let f = call(inner, &In::One(s.clone()), &[], flavour, depth + 1)?;
    let b = match get(c, "backward_layer") {
        Some(bl) => call(bl, &In::One(s.clone()), &[], flavour, depth + 1)?,
        None => f.clone(),
    };
    let (fo, fstates) = f.shapes.split_first().ok_or("no outputs")?;
    let (bo, bstates) = b.shapes.split_first().ok_or("no outputs")?;
    let mode = get(c, "merge_mode").and_then(|m| m.as_str());
    let mut shapes = match mode {
        None => vec![fo.clone(), bo.clone()],
        Some("concat") => {
            let mut o = fo.clone();
            let last = o.len() - 1;
            o[last] = match (fo[last], bo[last]) {
                (Some(a), Some(b)) => Some(a.checked_add(b).ok_or(OVERFLOW)?),
                _ => None,
            };
            vec![o]
        }
        Some("sum" | "mul" | "ave") => vec![fo.clone()],
        Some(m) => return Err(format!("merge_mode {m:?} not known")),
    };
    shapes.extend(fstates.iter().cloned());
    shapes.extend(bstates.iter().cloned());
    let list = shapes.len() > 1;
    Ok(Outputs {
        shapes,
        list,
        tuple: false,
    })
}

fn time_distributed(c: &Value, s: &Shape, flavour: Flavour, depth: usize) -> R<Outputs> {
    rank_at_least(s, 3, "TimeDistributed")?;
    let inner = inner_layer(c)?;
    let mut frame = vec![s[0]];
    frame.extend_from_slice(&s[2..]);
    let o = call(inner, &In::One(frame), &[], flavour, depth + 1)?;
    let shapes = o
        .shapes
        .iter()
        .map(|x| {
            let mut r = vec![x.first().copied().flatten(), s[1]];
            r.extend_from_slice(x.get(1..).unwrap_or(&[]));
            r
        })
        .collect();
    Ok(Outputs {
        shapes,
        list: o.list,
        tuple: o.tuple,
    })
}

fn attention(c: &Value, q: &Shape, extra: &[(String, In)]) -> R<Outputs> {
    rank_at_least(q, 3, "MultiHeadAttention")?;
    let value = extra
        .iter()
        .find(|(k, _)| k == "#1" || k == "value")
        .map(|(_, v)| v.one())
        .transpose()?
        .ok_or("the call names no value tensor")?;
    let out_last = match get(c, "output_shape") {
        None => q[q.len() - 1],
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::Array(a)) if a.len() == 1 => a[0].as_u64(),
        Some(_) => return Err("a multi-dimensional output_shape is not modelled".into()),
    };
    let mut out = q.clone();
    let last = out.len() - 1;
    out[last] = out_last;
    if extra
        .iter()
        .any(|(k, _)| k == "flag:return_attention_scores")
    {
        let heads = uint(c, "num_heads")?;
        if q.len() != 3 {
            return Err("attention scores of a rank above 3 are not modelled".into());
        }
        let scores = vec![q[0], Some(heads), q[1], value.get(1).copied().flatten()];
        return Ok(Outputs {
            shapes: vec![out, scores],
            list: true,
            tuple: true,
        });
    }
    Ok(Outputs::one(out))
}

/// EinsumDense's `full_output_shape` (`_analyze_split_string`).
fn einsum_dense(c: &Value, s: &Shape, flavour: Flavour) -> R<Shape> {
    let eq = string(c, "equation", "");
    let (lhs, out_spec) = eq.split_once("->").ok_or("equation has no ->")?;
    let (in_spec, _) = lhs.split_once(',').ok_or("equation has no weight term")?;
    let mut o: Vec<Dim> = match get(c, "output_shape") {
        Some(Value::Number(n)) => vec![n.as_u64()],
        Some(Value::Array(a)) => a.iter().map(|d| d.as_u64()).collect(),
        _ => return Err("config has no output_shape".into()),
    };
    let left = in_spec.starts_with("...");
    let in_letters = in_spec.trim_start_matches("...").trim_end_matches("...");
    let elided = s.len() as i64 - in_letters.len() as i64;
    o.insert(0, s[0]);
    if elided > 0 && left {
        for d in s.iter().take(elided as usize).skip(1) {
            o.insert(1, *d);
        }
    } else if elided > 0 {
        for d in &s[s.len() - elided as usize..] {
            o.push(*d);
        }
    }
    // tf-keras builds a functional model by running the layer's einsum on symbolic
    // tensors, so TensorFlow's shape inference fills an output dimension the config leaves
    // `None` from the input dimension of the same letter; Keras 3 keeps
    // `full_output_shape` as it is.
    if flavour == Flavour::TfKeras {
        if elided > 0 {
            if o[1..].iter().any(|d| d.is_none()) {
                return Err("tf-keras' shape of an elided EinsumDense is not modelled".into());
            }
        } else if o.len() == out_spec.len() {
            for (j, ch) in out_spec.chars().enumerate() {
                if o[j].is_none() {
                    if let Some(i) = in_letters.chars().position(|x| x == ch) {
                        o[j] = s.get(i).copied().flatten();
                    }
                }
            }
        }
    }
    Ok(o)
}

/// One call of the layer entry `l` on `input` (with `extra` positional/keyword tensors).
fn call(
    l: &Value,
    input: &In,
    extra: &[(String, In)],
    flavour: Flavour,
    depth: usize,
) -> R<Outputs> {
    if depth > MAX_DEPTH {
        return Err("layers nest too deep".into());
    }
    let class = layer_class(l);
    let c = cfg_of(l);
    if has_scalar(input) {
        return Err("an input without a batch dimension".into());
    }
    let one = |f: &dyn Fn(&Shape) -> R<Shape>| -> R<Outputs> { f(input.one()?).map(Outputs::one) };
    match class.as_str() {
        "Sequential" | "Functional" | "Model" => {
            let given: Vec<Shape> = match input {
                In::One(s) => vec![s.clone()],
                In::Many(v) => v.iter().map(|i| i.one().cloned()).collect::<R<_>>()?,
            };
            run_model(l, Some(&given), flavour, depth + 1).1
        }
        "Dense" => one(&|s| {
            rank_at_least(s, 2, "Dense")?;
            let mut o = s.clone();
            *o.last_mut().ok_or("rank 0")? = Some(uint(c, "units")?);
            Ok(o)
        }),
        "EinsumDense" => one(&|s| einsum_dense(c, s, flavour)),
        "Conv1D" | "Conv2D" | "Conv3D" | "Convolution1D" | "Convolution2D" | "Convolution3D"
        | "Conv1DTranspose" | "Conv2DTranspose" | "Conv3DTranspose" | "Conv2DTransposed"
        | "DepthwiseConv1D" | "DepthwiseConv2D" | "SeparableConv1D" | "SeparableConv2D" => {
            let rank = conv_rank(&class).ok_or("rank not known")?;
            one(&|s| conv(c, s, &class, rank))
        }
        "MaxPooling1D" | "MaxPooling2D" | "MaxPooling3D" | "AveragePooling1D"
        | "AveragePooling2D" | "AveragePooling3D" | "MaxPool1D" | "MaxPool2D" | "MaxPool3D"
        | "AvgPool1D" | "AvgPool2D" | "AvgPool3D" => {
            let rank = conv_rank(&class).ok_or("rank not known")?;
            one(&|s| pool(c, s, &class, rank))
        }
        "GlobalMaxPooling1D" | "GlobalMaxPooling2D" | "GlobalMaxPooling3D"
        | "GlobalAveragePooling1D" | "GlobalAveragePooling2D" | "GlobalAveragePooling3D"
        | "GlobalMaxPool1D" | "GlobalMaxPool2D" | "GlobalMaxPool3D" | "GlobalAvgPool1D"
        | "GlobalAvgPool2D" | "GlobalAvgPool3D" => {
            let rank = conv_rank(&class).ok_or("rank not known")?;
            one(&|s| global_pool(c, s, &class, rank))
        }
        // `flatten.py`: (batch, product of the rest), 1 for a rank-1 input; the
        // channels_first permutation does not change the product.
        "Flatten" => one(&|s| {
            Ok(vec![s.first().copied().flatten(), product(s.get(1..).unwrap_or(&[]))])
        }),
        "Reshape" => one(&|s| reshape(c, s)),
        "Permute" => one(&|s| {
            let dims: Vec<usize> = get(c, "dims")
                .and_then(|d| d.as_array())
                .ok_or("config has no dims")?
                .iter()
                .map(|d| d.as_u64().map(|d| d as usize))
                .collect::<Option<_>>()
                .ok_or("dims is not a list of axes")?;
            let mut o = vec![s[0]];
            for d in dims {
                o.push(*s.get(d).ok_or("dims name an axis the input lacks")?);
            }
            Ok(o)
        }),
        "RepeatVector" => one(&|s| {
            if s.len() != 2 {
                return Err("RepeatVector needs an input of rank 2".into());
            }
            Ok(vec![s[0], Some(uint(c, "n")?), s[1]])
        }),
        "Embedding" => one(&|s| {
            let mut o = s.clone();
            o.push(Some(uint(c, "output_dim")?));
            Ok(o)
        }),
        "LSTM" | "GRU" | "SimpleRNN" | "CuDNNLSTM" | "CuDNNGRU" => {
            let cl = class.trim_start_matches("CuDNN");
            rnn(c, input.one()?, cl)
        }
        "ConvLSTM1D" | "ConvLSTM2D" | "ConvLSTM3D" => {
            let rank = conv_rank(&class).ok_or("rank not known")?;
            conv_lstm(c, input.one()?, &class, rank)
        }
        "Bidirectional" => bidirectional(c, input.one()?, flavour, depth),
        "TimeDistributed" => time_distributed(c, input.one()?, flavour, depth),
        "MultiHeadAttention" => attention(c, input.one()?, extra),
        "Attention" | "AdditiveAttention" => dot_attention(&input.list()?, extra),
        "RNN" => generic_rnn(c, input.one()?),
        "Dot" => dot(c, &input.list()?).map(Outputs::one),
        "Concatenate" => concatenate(c, &input.list()?).map(Outputs::one),
        "Add" | "Subtract" | "Multiply" | "Average" | "Maximum" | "Minimum" => {
            elementwise(&input.list()?).map(Outputs::one)
        }
        "Cropping1D" => one(&|s| pad_or_crop(c, s, &class, 1, "cropping", false)),
        "Cropping2D" => one(&|s| pad_or_crop(c, s, &class, 2, "cropping", false)),
        "Cropping3D" => one(&|s| pad_or_crop(c, s, &class, 3, "cropping", false)),
        "ZeroPadding1D" => one(&|s| pad_or_crop(c, s, &class, 1, "padding", true)),
        "ZeroPadding2D" => one(&|s| pad_or_crop(c, s, &class, 2, "padding", true)),
        "ZeroPadding3D" => one(&|s| pad_or_crop(c, s, &class, 3, "padding", true)),
        "UpSampling1D" => one(&|s| upsample(c, s, &class, 1)),
        "UpSampling2D" => one(&|s| upsample(c, s, &class, 2)),
        "UpSampling3D" => one(&|s| upsample(c, s, &class, 3)),
        "Resizing" | "CenterCrop" | "RandomCrop" => one(&|s| {
            rank_at_least(s, 3, &class)?;
            let (h, w) = (uint(c, "height")?, uint(c, "width")?);
            let mut o = s.clone();
            let n = o.len();
            if channels_first(c) {
                o[n - 2] = Some(h);
                o[n - 1] = Some(w);
            } else {
                o[n - 3] = Some(h);
                o[n - 2] = Some(w);
            }
            Ok(o)
        }),
        c if SAME_SHAPE.contains(&c) => one(&|s| Ok(s.clone())),
        // keras.applications' own layers: `LayerScale` and `StochasticDepth`
        // (`keras/src/applications/convnext.py`, `x * gamma`, a dropped path) keep the
        // shape; `CustomScaleLayer` (`inception_resnet_v2.py`) is
        // `inputs[0] + inputs[1] * scale`.
        "LayerScale" | "StochasticDepth" => one(&|s| Ok(s.clone())),
        "CustomScaleLayer" => {
            let v: Vec<Shape> = input.list()?.into_iter().cloned().collect();
            broadcast(&v).map(Outputs::one)
        }
        "InputLayer" => Err("an input layer called as a layer".into()),
        other => Err(format!(
            "the output shape of a {other} layer is not computed by ckptconv (a class it does not model)"
        )),
    }
}

/// Layers whose output has their input's shape (`compute_output_shape` returns it).
const SAME_SHAPE: &[&str] = &[
    "Activation",
    "ReLU",
    "LeakyReLU",
    "PReLU",
    "ELU",
    "Softmax",
    "ThresholdedReLU",
    "Dropout",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "SpatialDropout3D",
    "GaussianNoise",
    "GaussianDropout",
    "AlphaDropout",
    "ActivityRegularization",
    "Masking",
    "BatchNormalization",
    "LayerNormalization",
    "GroupNormalization",
    "UnitNormalization",
    "Normalization",
    "Rescaling",
    "Identity",
    "RandomFlip",
    "RandomRotation",
    "RandomZoom",
    "RandomTranslation",
    "RandomContrast",
    "RandomBrightness",
];

/// Keras' text for a shape: tf-keras `str(tuple)` (`(None,)` for rank 1); Keras 3
/// `format_shape` (`"(" + ", ".join(…) + ")"`, so `(None)`).
pub fn format_shape(s: &Shape, flavour: Flavour) -> String {
    let parts: Vec<String> = s
        .iter()
        .map(|d| d.map_or("None".to_string(), |d| d.to_string()))
        .collect();
    if flavour == Flavour::TfKeras && parts.len() == 1 {
        return format!("({},)", parts[0]);
    }
    format!("({})", parts.join(", "))
}

/// The Output Shape column for a row. tf-keras prints an InputLayer's shape as the list
/// `[(None, 3)]` (`InputLayer.output_shape` of a functional input).
pub fn format_row(row: &ShapeRow, flavour: Flavour) -> String {
    match &row.shape {
        RowShape::Known(o) => {
            let list = o.list || (flavour == Flavour::TfKeras && row.class == "InputLayer");
            let parts: Vec<String> = o.shapes.iter().map(|s| format_shape(s, flavour)).collect();
            if o.tuple && flavour == Flavour::TfKeras {
                format!("({})", parts.join(", "))
            } else if list {
                format!("[{}]", parts.join(", "))
            } else {
                parts.join(", ")
            }
        }
        RowShape::Multiple => "multiple".into(),
        RowShape::Unknown(_) => "?".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn conv_lengths() {
        assert_eq!(conv_output_length(Some(32), 3, "valid", 1, 1), Ok(Some(30)));
        assert_eq!(conv_output_length(Some(32), 3, "same", 2, 1), Ok(Some(16)));
        assert_eq!(conv_output_length(Some(33), 3, "same", 2, 1), Ok(Some(17)));
        assert_eq!(conv_output_length(Some(10), 3, "valid", 1, 2), Ok(Some(6)));
        assert_eq!(
            conv_output_length(Some(10), 3, "causal", 1, 4),
            Ok(Some(10))
        );
        assert_eq!(conv_output_length(Some(7), 3, "valid", 2, 1), Ok(Some(3)));
        assert_eq!(conv_output_length(None, 3, "valid", 2, 1), Ok(None));
        assert!(conv_output_length(Some(2), 3, "valid", 1, 1).is_err());
        assert_eq!(
            deconv_output_length(Some(4), 3, "same", None, 2, 1),
            Ok(Some(8))
        );
        assert_eq!(
            deconv_output_length(Some(4), 3, "valid", None, 2, 1),
            Ok(Some(9))
        );
        assert_eq!(
            deconv_output_length(Some(4), 3, "valid", Some(1), 2, 1),
            Ok(Some(10))
        );
    }

    #[test]
    fn sequential_and_functional() {
        let seq = r#"{"class_name":"Sequential","config":{"name":"s","layers":[
            {"class_name":"InputLayer","config":{"batch_shape":[null,28,28,1],"name":"i"}},
            {"class_name":"Conv2D","config":{"name":"c","filters":32,"kernel_size":[3,3],"padding":"valid"}},
            {"class_name":"MaxPooling2D","config":{"name":"p","pool_size":[2,2]}},
            {"class_name":"Flatten","config":{"name":"f"}},
            {"class_name":"Dense","config":{"name":"d","units":10}},
            {"class_name":"Mystery","config":{"name":"m"}}]}}"#;
        let m = infer(seq, Flavour::Keras3).unwrap();
        let got: Vec<String> = m
            .rows
            .iter()
            .map(|r| format_row(r, Flavour::Keras3))
            .collect();
        assert_eq!(
            got,
            [
                "(None, 26, 26, 32)",
                "(None, 13, 13, 32)",
                "(None, 5408)",
                "(None, 10)",
                "?"
            ]
        );
        assert_eq!(m.name.as_deref(), Some("s"));
        let f = r#"{"class_name":"Functional","config":{"name":"f","layers":[
            {"class_name":"InputLayer","name":"a","config":{"batch_input_shape":[null,10,8],"name":"a"},"inbound_nodes":[]},
            {"class_name":"LSTM","name":"l","config":{"name":"l","units":4,"return_sequences":true,"return_state":true},"inbound_nodes":[[["a",0,0,{}]]]},
            {"class_name":"Bidirectional","name":"b","config":{"name":"b","merge_mode":null,"layer":{"class_name":"GRU","config":{"units":3}}},"inbound_nodes":[[["l",0,0,{}]]]},
            {"class_name":"Concatenate","name":"c","config":{"name":"c"},"inbound_nodes":[[["b",0,0,{}],["b",0,1,{}]]]}],
            "input_layers":[["a",0,0]],"output_layers":[["c",0,0]]}}"#;
        let m = infer(f, Flavour::TfKeras).unwrap();
        let got: Vec<String> = m
            .rows
            .iter()
            .map(|r| format_row(r, Flavour::TfKeras))
            .collect();
        assert_eq!(
            got,
            [
                "[(None, 10, 8)]",
                "[(None, 10, 4), (None, 4), (None, 4)]",
                "[(None, 3), (None, 3)]",
                "(None, 6)"
            ]
        );
    }

    #[test]
    fn hostile_values_never_panic() {
        let classes = [
            "Dense",
            "EinsumDense",
            "Conv1D",
            "Conv2D",
            "Conv3D",
            "Conv2DTranspose",
            "DepthwiseConv2D",
            "SeparableConv1D",
            "MaxPooling2D",
            "AveragePooling1D",
            "GlobalMaxPooling2D",
            "Flatten",
            "Reshape",
            "Permute",
            "RepeatVector",
            "Embedding",
            "LSTM",
            "GRU",
            "ConvLSTM2D",
            "Bidirectional",
            "TimeDistributed",
            "MultiHeadAttention",
            "Concatenate",
            "Add",
            "Cropping2D",
            "ZeroPadding1D",
            "UpSampling3D",
            "Resizing",
            "Dropout",
            "Sequential",
            "Functional",
            "Nope",
        ];
        let values = [
            json!(0),
            json!(1),
            json!(-1),
            json!(u64::MAX),
            json!([u64::MAX, u64::MAX]),
            json!([[u64::MAX, 1], [0, u64::MAX]]),
            json!([]),
            json!(null),
            json!("x"),
            json!({"class_name": "LSTM", "config": {"units": u64::MAX}}),
        ];
        let keys = [
            "units",
            "kernel_size",
            "strides",
            "dilation_rate",
            "filters",
            "pool_size",
            "padding",
            "target_shape",
            "dims",
            "n",
            "output_dim",
            "layer",
            "axis",
            "cropping",
            "size",
            "depth_multiplier",
            "output_padding",
            "output_shape",
            "equation",
            "height",
            "width",
            "num_heads",
            "merge_mode",
            "layers",
        ];
        let shapes: Vec<Shape> = vec![
            vec![],
            vec![None],
            vec![None, Some(u64::MAX)],
            vec![None, Some(u64::MAX), Some(u64::MAX), Some(3)],
            vec![None, Some(0), Some(0), Some(0), Some(0)],
            vec![Some(1); 6],
        ];
        for class in classes {
            for v in &values {
                let mut cfg = serde_json::Map::new();
                for k in keys {
                    cfg.insert(k.into(), v.clone());
                }
                cfg.insert("return_state".into(), json!(true));
                cfg.insert("return_sequences".into(), json!(true));
                let l = json!({"class_name": class, "config": cfg});
                for sh in &shapes {
                    let _ = call(&l, &In::One(sh.clone()), &[], Flavour::TfKeras, 0);
                    let many = In::Many(vec![In::One(sh.clone()), In::One(sh.clone())]);
                    let _ = call(
                        &l,
                        &many,
                        &[("#1".into(), In::One(sh.clone()))],
                        Flavour::Keras3,
                        0,
                    );
                }
            }
        }
        // Not JSON, not a model, a cycle, references to nothing.
        assert!(infer("{", Flavour::Keras3).is_none());
        assert!(infer("[]", Flavour::Keras3).is_none());
        let cyc = r#"{"class_name":"Functional","config":{"layers":[
            {"class_name":"Dense","config":{"name":"a","units":2},"inbound_nodes":[[["b",0,0,{}]]]},
            {"class_name":"Dense","config":{"name":"b","units":2},"inbound_nodes":[[["a",0,0,{}]]]},
            {"class_name":"Dense","config":{"name":"c","units":2},"inbound_nodes":[[["zz",7,9,{}]]]}]}}"#;
        let m = infer(cyc, Flavour::TfKeras).unwrap();
        assert!(m
            .rows
            .iter()
            .all(|r| matches!(r.shape, RowShape::Unknown(_))));
    }

    #[test]
    fn ops_broadcast_their_operands() {
        // tf-keras: `x + 3.0`, `tf.nn.relu6`, `tf.math.multiply(w, x)` (a tensor keyword).
        let tfk = r#"{"class_name":"Functional","config":{"name":"m","layers":[
            {"class_name":"InputLayer","name":"i","config":{"batch_input_shape":[null,4,4,3],"name":"i"},"inbound_nodes":[]},
            {"class_name":"TFOpLambda","name":"a","config":{"name":"a","function":"__operators__.add"},"inbound_nodes":[["i",0,0,{"y":3.0,"name":null}]]},
            {"class_name":"TFOpLambda","name":"r","config":{"name":"r","function":"nn.relu6"},"inbound_nodes":[["a",0,0,{}]]},
            {"class_name":"TFOpLambda","name":"m2","config":{"name":"m2","function":"math.multiply"},"inbound_nodes":[["r",0,0,{"y":["i",0,0]}]]},
            {"class_name":"TFOpLambda","name":"g","config":{"name":"g","function":"gather"},"inbound_nodes":[["r",0,0,{}]]}],
            "input_layers":[["i",0,0]],"output_layers":[["m2",0,0]]}}"#;
        let m = infer(tfk, Flavour::TfKeras).unwrap();
        let got: Vec<String> = m
            .rows
            .iter()
            .map(|r| format_row(r, Flavour::TfKeras))
            .collect();
        assert_eq!(
            got,
            [
                "[(None, 4, 4, 3)]",
                "(None, 4, 4, 3)",
                "(None, 4, 4, 3)",
                "(None, 4, 4, 3)",
                "?"
            ]
        );
        // Keras 3: `keras.src.ops.numpy.Add` of a tensor and a number, and of two tensors
        // of which one has a size 1 axis.
        let k3 = r#"{"class_name":"Functional","config":{"name":"m","layers":[
            {"module":"keras.layers","class_name":"InputLayer","name":"i","config":{"batch_shape":[null,5,1],"name":"i"},"inbound_nodes":[]},
            {"module":"keras.src.ops.numpy","class_name":"Add","name":"add","config":{"name":"add"},"inbound_nodes":[{"args":[{"class_name":"__keras_tensor__","config":{"shape":[null,5,1],"keras_history":["i",0,0]}},3.0],"kwargs":{}}]},
            {"module":"keras.src.ops.numpy","class_name":"Multiply","name":"mul","config":{"name":"mul"},"inbound_nodes":[{"args":[{"class_name":"__keras_tensor__","config":{"shape":[null,5,1],"keras_history":["add",0,0]}},{"class_name":"__keras_tensor__","config":{"shape":[null,1,7],"keras_history":["i2",0,0]}}],"kwargs":{}}]},
            {"module":"keras.layers","class_name":"InputLayer","name":"i2","config":{"batch_shape":[null,1,7],"name":"i2"},"inbound_nodes":[]}],
            "input_layers":[["i",0,0],["i2",0,0]],"output_layers":[["mul",0,0]]}}"#;
        let m = infer(k3, Flavour::Keras3).unwrap();
        let got: Vec<String> = m
            .rows
            .iter()
            .map(|r| format_row(r, Flavour::Keras3))
            .collect();
        assert_eq!(
            got,
            [
                "(None, 5, 1)",
                "(None, 5, 1)",
                "(None, 5, 7)",
                "(None, 1, 7)"
            ]
        );
        assert_eq!(
            broadcast(&[vec![None, Some(3)], vec![Some(4), Some(1)]]),
            Ok(vec![Some(4), Some(3)])
        );
        assert!(broadcast(&[vec![Some(2)], vec![Some(3)]]).is_err());
    }

    #[test]
    fn attention_shapes_and_bad_ranks() {
        let q = vec![None, Some(4), Some(8)];
        let v = vec![None, Some(6), Some(5)];
        let scores = [("flag:return_attention_scores".to_string(), In::Many(vec![]))];
        let out = dot_attention(&[&q, &v], &scores).unwrap();
        assert_eq!(out.shapes, vec![vec![None, Some(4), Some(5)], vec![None, Some(4), Some(6)]]);
        // A key of rank 1 (a crafted config) is an error, not an index out of bounds.
        let bad_key = vec![Some(3)];
        assert!(dot_attention(&[&q, &v, &bad_key], &scores).is_err());
        assert!(dot_attention(&[&q, &bad_key], &[]).is_err());
    }
}
