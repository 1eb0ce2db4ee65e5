//! Per-class facts about Keras' built-in layers: weight order, snake-case names (Keras 3
//! group names), and where tf-keras' object graph tracks each weight.
//!
//! Sources (tables in `docs/keras.md`, measured by `testdata/generate_keras_facts.py`):
//! - weight order is the order of `add_weight` calls in each layer's `build`
//!   (`tf_keras/src/layers/**`, `keras/src/layers/**`), which is `layer.weights`, the order
//!   `get_weights()`, `save_weights` and `load_weights` use;
//! - object-graph attributes are the names tf-keras tracks children under
//!   (`RNN.cell`, `Bidirectional.forward_layer`/`backward_layer`, `Wrapper.layer`,
//!   `MultiHeadAttention._query_dense` …; weights by their own names).
//!
//! Every built-in layer's weights fall in one global order of local names ([`weight_rank`]):
//! no built-in class puts, say, `bias` before `kernel` or `beta` before `gamma`. So a
//! layer whose weights all have known local names can be put in Keras' order from names
//! alone, whatever its class.

/// Local weight names in the order every built-in layer creates them. A layer's weights
/// sorted by this rank are in Keras' order (see the module docs).
const WEIGHT_ORDER: &[&str] = &[
    // Convolutions (SeparableConv: depthwise, pointwise, bias), Dense, EinsumDense, RNN
    // cells (kernel, recurrent_kernel, bias), PReLU.
    "depthwise_kernel",
    "pointwise_kernel",
    "kernel",
    "recurrent_kernel",
    "bias",
    // Normalisation layers: BatchNormalization, LayerNormalization, GroupNormalization.
    "gamma",
    "beta",
    "moving_mean",
    "moving_variance",
    // Embedding, PReLU, Normalization (adapted state).
    "embeddings",
    "alpha",
    "mean",
    "variance",
    "count",
];

/// Sub-layer scopes inside one layer's weight names, in the order the layer tracks them:
/// MultiHeadAttention's dense layers, Bidirectional's directions.
const SUBLAYER_ORDER: &[&str] = &["query", "key", "value", "attention_output"];

/// The rank of a weight's path below its layer (`kernel`, `lstm_cell/kernel`,
/// `forward_lstm/lstm_cell/bias`, `query/kernel`), or `None` when a component is not a
/// built-in name: then the order of that layer's weights cannot be derived from names.
pub fn weight_rank(local: &str) -> Option<Vec<usize>> {
    let comps: Vec<&str> = local.split('/').collect();
    let (last, scopes) = comps.split_last()?;
    let mut rank = Vec::with_capacity(comps.len());
    for s in scopes {
        rank.push(
            if let Some(i) = SUBLAYER_ORDER.iter().position(|x| x == s) {
                i
            } else if s.starts_with("forward_") {
                0
            } else if s.starts_with("backward_") {
                1
            } else if s.ends_with("_cell") || *s == "cell" {
                0
            } else if is_activation_scope(s) {
                // A layer object passed as `activation=`: created after the layer's own.
                usize::MAX
            } else {
                return None;
            },
        );
    }
    rank.push(WEIGHT_ORDER.iter().position(|x| x == last)?);
    Some(rank)
}

/// The scope of a layer object used as another layer's `activation=` (only PReLU of the
/// activation layers has weights): tracked under `activation`.
fn is_activation_scope(s: &str) -> bool {
    strip_counter(s) == "p_re_lu"
}

/// Keras 3's snake-case name of a class (`keras.src.utils.naming.to_snake_case`), as used
/// for `.weights.h5` group names and auto-generated layer names.
pub fn snake_case(class: &str) -> String {
    // to_snake_case: re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name), then
    // re.sub("([a-z])([A-Z])", r"\1_\2", ...).lower().
    let c: Vec<char> = class.chars().collect();
    let mut s1 = String::new();
    for i in 0..c.len() {
        if i > 0
            && c[i].is_ascii_uppercase()
            && c.get(i + 1).is_some_and(|n| n.is_ascii_lowercase())
        {
            s1.push('_');
        }
        s1.push(c[i]);
    }
    let c: Vec<char> = s1.chars().collect();
    let mut out = String::new();
    for i in 0..c.len() {
        if i > 0 && c[i].is_ascii_uppercase() && c[i - 1].is_ascii_lowercase() {
            out.push('_');
        }
        out.push(c[i].to_ascii_lowercase());
    }
    out
}

/// Built-in classes whose Keras 3 group names we recognise (`conv2d_1` → `Conv2D`).
const CLASSES: &[&str] = &[
    "Dense",
    "EinsumDense",
    "Conv1D",
    "Conv2D",
    "Conv3D",
    "Conv1DTranspose",
    "Conv2DTranspose",
    "Conv3DTranspose",
    "DepthwiseConv1D",
    "DepthwiseConv2D",
    "SeparableConv1D",
    "SeparableConv2D",
    "BatchNormalization",
    "LayerNormalization",
    "GroupNormalization",
    "Embedding",
    "LSTM",
    "GRU",
    "SimpleRNN",
    "ConvLSTM1D",
    "ConvLSTM2D",
    "ConvLSTM3D",
    "Bidirectional",
    "TimeDistributed",
    "MultiHeadAttention",
    "PReLU",
    "Normalization",
    "Sequential",
    "Functional",
];

/// The class of a Keras 3 group or auto-generated layer name (`conv2d_3` → `Conv2D`),
/// among the built-in classes.
pub fn class_from_snake(snake: &str) -> Option<&'static str> {
    // Keras 3's own snake case of "Conv2D" is "conv2d"; "PReLU" is "p_re_lu".
    CLASSES.iter().copied().find(|c| snake_case(c) == snake)
}

/// Built-in classes without weights, whose Keras 3 `.weights.h5` groups are empty
/// (`layers/flatten/vars`): their class from the group name, for listing them.
const WEIGHTLESS_CLASSES: &[&str] = &[
    "InputLayer",
    "Activation",
    "ReLU",
    "LeakyReLU",
    "ELU",
    "Softmax",
    "Dropout",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "SpatialDropout3D",
    "GaussianNoise",
    "GaussianDropout",
    "Flatten",
    "Reshape",
    "Permute",
    "RepeatVector",
    "Concatenate",
    "Add",
    "Subtract",
    "Multiply",
    "Average",
    "Maximum",
    "Minimum",
    "MaxPooling1D",
    "MaxPooling2D",
    "MaxPooling3D",
    "AveragePooling1D",
    "AveragePooling2D",
    "AveragePooling3D",
    "GlobalMaxPooling1D",
    "GlobalMaxPooling2D",
    "GlobalMaxPooling3D",
    "GlobalAveragePooling1D",
    "GlobalAveragePooling2D",
    "GlobalAveragePooling3D",
    "ZeroPadding1D",
    "ZeroPadding2D",
    "ZeroPadding3D",
    "Cropping1D",
    "Cropping2D",
    "Cropping3D",
    "UpSampling1D",
    "UpSampling2D",
    "UpSampling3D",
    "Rescaling",
    "Masking",
];

/// [`class_from_snake`], weightless built-in classes included (`flatten` → `Flatten`,
/// `input_layer` → `InputLayer`).
pub fn class_from_snake_any(snake: &str) -> Option<&'static str> {
    class_from_snake(snake).or_else(|| {
        WEIGHTLESS_CLASSES
            .iter()
            .copied()
            .find(|c| snake_case(c) == snake)
    })
}

/// The local names of a Keras 3 `vars/0…n` group by its snake-case class (the group name
/// without `_N`; an RNN's `cell` group as `<rnn>_cell`), in order.
pub fn keras3_vars(class: &str) -> Option<&'static [&'static str]> {
    Some(match class {
        "dense" | "conv1d" | "conv2d" | "conv3d" | "conv1d_transpose" | "conv2d_transpose"
        | "conv3d_transpose" | "depthwise_conv1d" | "depthwise_conv2d" | "einsum_dense" => {
            &["kernel", "bias"]
        }
        "separable_conv1d" | "separable_conv2d" => {
            &["depthwise_kernel", "pointwise_kernel", "bias"]
        }
        "batch_normalization" => &["gamma", "beta", "moving_mean", "moving_variance"],
        "layer_normalization" | "group_normalization" => &["gamma", "beta"],
        "embedding" => &["embeddings"],
        "lstm_cell" | "gru_cell" | "simple_rnn_cell" | "conv_lstm1d_cell" | "conv_lstm2d_cell"
        | "conv_lstm3d_cell" => &["kernel", "recurrent_kernel", "bias"],
        // MultiHeadAttention's EinsumDense sub-layers.
        "query_dense" | "key_dense" | "value_dense" | "output_dense" => &["kernel", "bias"],
        "normalization" => &["mean", "variance", "count"],
        "p_re_lu" | "prelu" => &["alpha"],
        _ => return None,
    })
}

/// `dense_12` → `dense`; `dense` → `dense`.
pub fn strip_counter(name: &str) -> &str {
    match name.rsplit_once('_') {
        Some((base, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => base,
        _ => name,
    }
}

/// Classes whose every weight is created with `trainable=False`: Normalization's `mean`,
/// `variance` and `count` (`keras/src/layers/preprocessing/normalization.py`,
/// `tf_keras/src/layers/preprocessing/normalization.py`).
pub fn all_weights_non_trainable(class: &str) -> bool {
    class == "Normalization"
}

/// The shape of a layer's object subtree in tf-keras, by class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Structure {
    /// Weights tracked by their own names directly under the layer (Dense, Conv*, BN …).
    Plain,
    /// An RNN: weights under `cell` (`lstm/lstm_cell/kernel` → `cell/kernel`).
    Rnn,
    /// Bidirectional: `forward_layer/…`, `backward_layer/…`, each an RNN.
    Bidirectional,
    /// TimeDistributed and other single-layer wrappers: the wrapped layer under `layer`.
    Wrapper,
    /// MultiHeadAttention: `_query_dense`, `_key_dense`, `_value_dense`, `_output_dense`.
    Attention,
    /// A nested model: its weighted layers under `layer_with_weights-K`.
    Model,
}

/// The structure of a class, for built-in classes.
pub fn structure(class: &str) -> Option<Structure> {
    Some(match class {
        "LSTM" | "GRU" | "SimpleRNN" | "ConvLSTM1D" | "ConvLSTM2D" | "ConvLSTM3D" | "RNN"
        | "CuDNNLSTM" | "CuDNNGRU" => {
            if class.starts_with("CuDNN") {
                Structure::Plain
            } else {
                Structure::Rnn
            }
        }
        "Bidirectional" => Structure::Bidirectional,
        "TimeDistributed" => Structure::Wrapper,
        "MultiHeadAttention" => Structure::Attention,
        "Sequential" | "Functional" | "Model" => Structure::Model,
        "Dense" | "EinsumDense" | "Conv1D" | "Conv2D" | "Conv3D" | "Conv1DTranspose"
        | "Conv2DTranspose" | "Conv3DTranspose" | "DepthwiseConv1D" | "DepthwiseConv2D"
        | "SeparableConv1D" | "SeparableConv2D" | "BatchNormalization" | "LayerNormalization"
        | "GroupNormalization" | "UnitNormalization" | "Embedding" | "PReLU" | "Normalization"
        | "Convolution1D" | "Convolution2D" | "Convolution3D" => Structure::Plain,
        _ => return None,
    })
}

/// Auto-generated names of classes whose weights look like a plain layer's but are
/// tracked elsewhere (`time_distributed/kernel` is tracked at `layer/kernel`): without a
/// class, a layer so named cannot be placed.
pub fn looks_like_wrapper(layer_name: &str) -> bool {
    matches!(strip_counter(layer_name), "time_distributed")
}

/// MultiHeadAttention's weight scopes → the attributes tf-keras tracks them under.
fn attention_attr(scope: &str) -> Option<&'static str> {
    Some(match scope {
        "query" => "_query_dense",
        "key" => "_key_dense",
        "value" => "_value_dense",
        "attention_output" => "_output_dense",
        _ => return None,
    })
}

/// The object path below a layer's node of one of its weights, as tf-keras tracks it,
/// from the class (when known) and the weight's path below the layer's name scope
/// (`local`: `kernel`, `lstm_cell/kernel`, `forward_gru/gru_cell/bias`, `query/kernel`,
/// or `dense_3/kernel` in a nested model). `nested` numbers a nested model's weighted
/// layers across its weights. `None`: the path cannot be known.
pub fn object_subpath(
    class: Option<&str>,
    layer_name: &str,
    local: &[&str],
    nested: &mut Vec<String>,
) -> Option<Vec<String>> {
    let structure = match class {
        Some(c) => structure(c)?,
        None => infer_structure(layer_name, local)?,
    };
    let own = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    match (structure, local) {
        // Keras 3 calls a depthwise kernel `kernel`; tf-keras tracks `depthwise_kernel`.
        (Structure::Plain, ["kernel"])
            if matches!(class, Some("DepthwiseConv1D" | "DepthwiseConv2D")) =>
        {
            Some(own(&["depthwise_kernel"]))
        }
        // A Keras 3 variable index that no name was found for (`vars/1` of a layer with
        // fewer variables than its class has): tf-keras tracks it by a name not known.
        (Structure::Plain, [w]) if w.bytes().all(|b| b.is_ascii_digit()) => None,
        (Structure::Plain, [w]) => Some(own(&[w])),
        (_, [scope, w]) if is_activation_scope(scope) => Some(own(&["activation", w])),
        (Structure::Rnn, [cell, w]) if cell.ends_with("_cell") || *cell == "cell" => {
            Some(own(&["cell", w]))
        }
        // Keras 3 names an RNN's weights `lstm/kernel`: still tracked under `cell`.
        (Structure::Rnn, [w]) => Some(own(&["cell", w])),
        (Structure::Bidirectional, [side, rest @ ..]) => {
            let attr = if side.starts_with("forward_") {
                "forward_layer"
            } else if side.starts_with("backward_") {
                "backward_layer"
            } else {
                return None;
            };
            let mut out = vec![attr.to_string()];
            out.extend(object_subpath(Some("LSTM"), side, rest, &mut Vec::new())?);
            Some(out)
        }
        (Structure::Wrapper, [w]) => Some(own(&["layer", w])),
        (Structure::Wrapper, [_inner, w]) => Some(own(&["layer", w])),
        (Structure::Attention, [scope, w]) => Some(own(&[attention_attr(scope)?, w])),
        (Structure::Model, [inner, rest @ ..]) if !rest.is_empty() => {
            let k = match nested.iter().position(|n| n == inner) {
                Some(k) => k,
                None => {
                    nested.push(inner.to_string());
                    nested.len() - 1
                }
            };
            let mut out = vec![format!("layer_with_weights-{k}")];
            out.extend(object_subpath(None, inner, rest, &mut Vec::new())?);
            Some(out)
        }
        _ => None,
    }
}

/// The structure of a layer of unknown class, from the shape of its weight names.
fn infer_structure(layer_name: &str, local: &[&str]) -> Option<Structure> {
    // tf-keras names ConvLSTM weights `conv_lstm2d/kernel` but tracks them under `cell`;
    // CuDNN RNNs have the same names and no cell. Only their auto-names tell them apart.
    match strip_counter(layer_name) {
        "conv_lstm1d" | "conv_lstm2d" | "conv_lstm3d" => return Some(Structure::Rnn),
        "cu_dnnlstm" | "cu_dnngru" => return Some(Structure::Plain),
        _ => {}
    }
    match local {
        [_] if looks_like_wrapper(layer_name) => None,
        ["recurrent_kernel"] => None,
        [w] if WEIGHT_ORDER.contains(w) => Some(Structure::Plain),
        // A custom layer's weights are tracked under their own names too.
        [_] => Some(Structure::Plain),
        [first, _] if is_activation_scope(first) => Some(Structure::Plain),
        [first, _] if first.ends_with("_cell") => Some(Structure::Rnn),
        [first, ..] if first.starts_with("forward_") || first.starts_with("backward_") => {
            Some(Structure::Bidirectional)
        }
        [first, _] if attention_attr(first).is_some() => Some(Structure::Attention),
        [..] => Some(Structure::Model),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case_like_keras() {
        assert_eq!(snake_case("Conv2D"), "conv2d");
        assert_eq!(snake_case("BatchNormalization"), "batch_normalization");
        assert_eq!(snake_case("PReLU"), "p_re_lu");
        assert_eq!(snake_case("LSTM"), "lstm");
        assert_eq!(snake_case("SimpleRNN"), "simple_rnn");
        assert_eq!(snake_case("Conv2DTranspose"), "conv2d_transpose");
        assert_eq!(snake_case("MultiHeadAttention"), "multi_head_attention");
        assert_eq!(snake_case("ConvLSTM2D"), "conv_lstm2d");
        assert_eq!(class_from_snake("conv2d"), Some("Conv2D"));
        assert_eq!(class_from_snake("p_re_lu"), Some("PReLU"));
        assert_eq!(class_from_snake("simple_rnn"), Some("SimpleRNN"));
        assert_eq!(
            class_from_snake("depthwise_conv2d"),
            Some("DepthwiseConv2D")
        );
        assert_eq!(class_from_snake("nope"), None);
        assert_eq!(strip_counter("dense_12"), "dense");
        assert_eq!(strip_counter("conv2d"), "conv2d");
    }

    #[test]
    fn every_builtin_order_follows_the_rank() {
        let orders: &[&[&str]] = &[
            &["kernel", "bias"],
            &["depthwise_kernel", "pointwise_kernel", "bias"],
            &["depthwise_kernel", "bias"],
            &["gamma", "beta", "moving_mean", "moving_variance"],
            &["beta", "moving_mean", "moving_variance"],
            &["gamma", "moving_mean", "moving_variance"],
            &[
                "lstm_cell/kernel",
                "lstm_cell/recurrent_kernel",
                "lstm_cell/bias",
            ],
            &[
                "forward_lstm/lstm_cell/kernel",
                "forward_lstm/lstm_cell/recurrent_kernel",
                "forward_lstm/lstm_cell/bias",
                "backward_lstm/lstm_cell/kernel",
                "backward_lstm/lstm_cell/recurrent_kernel",
                "backward_lstm/lstm_cell/bias",
            ],
            &[
                "query/kernel",
                "query/bias",
                "key/kernel",
                "key/bias",
                "value/kernel",
                "value/bias",
                "attention_output/kernel",
                "attention_output/bias",
            ],
            &["mean", "variance", "count"],
        ];
        for order in orders {
            let ranks: Vec<_> = order.iter().map(|w| weight_rank(w).unwrap()).collect();
            assert!(ranks.windows(2).all(|w| w[0] < w[1]), "{order:?}");
        }
        assert_eq!(weight_rank("w"), None);
        assert_eq!(weight_rank("dense_3/kernel"), None);
    }

    #[test]
    fn object_paths() {
        let p = |class: Option<&str>, layer: &str, local: &str| {
            let l: Vec<&str> = local.split('/').collect();
            object_subpath(class, layer, &l, &mut Vec::new()).map(|v| v.join("/"))
        };
        assert_eq!(p(None, "dense", "kernel").as_deref(), Some("kernel"));
        assert_eq!(
            p(None, "lstm", "lstm_cell/kernel").as_deref(),
            Some("cell/kernel")
        );
        assert_eq!(
            p(None, "bidirectional", "backward_gru/gru_cell/bias").as_deref(),
            Some("backward_layer/cell/bias")
        );
        assert_eq!(
            p(None, "mha", "attention_output/kernel").as_deref(),
            Some("_output_dense/kernel")
        );
        assert_eq!(p(None, "time_distributed", "kernel"), None);
        assert_eq!(
            p(None, "conv_lstm2d_1", "kernel").as_deref(),
            Some("cell/kernel")
        );
        assert_eq!(p(None, "my_rnn", "recurrent_kernel"), None);
        assert_eq!(p(None, "cu_dnnlstm", "kernel").as_deref(), Some("kernel"));
        assert_eq!(
            p(Some("TimeDistributed"), "td", "kernel").as_deref(),
            Some("layer/kernel")
        );
        assert_eq!(
            p(Some("LSTM"), "lstm", "kernel").as_deref(),
            Some("cell/kernel")
        );
        assert_eq!(p(Some("Dense"), "dense", "a/kernel"), None);
        let mut n = Vec::new();
        let l1 = ["inner_a", "kernel"];
        let l2 = ["inner_b", "lstm_cell", "bias"];
        assert_eq!(
            object_subpath(Some("Sequential"), "s", &l1, &mut n).unwrap(),
            ["layer_with_weights-0", "kernel"]
        );
        assert_eq!(
            object_subpath(None, "s", &l2, &mut n).unwrap(),
            ["layer_with_weights-1", "cell", "bias"]
        );
    }
}
