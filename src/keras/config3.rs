//! A Keras 2 / tf-keras model config (the `model_config` attribute of a full-model `.h5`,
//! or `model.to_json()`) turned into the `config.json` of a Keras 3 `.keras` archive, for
//! built-in layers only. Anything that cannot be carried over exactly is an error naming
//! the layer and the reason, never a guess.
//!
//! # What Keras 3.15 does with the result
//!
//! `keras/src/saving/saving_lib.py` (`_load_model_from_fileobj` → `_model_from_config`)
//! hands the whole `config.json` to `serialization_lib.deserialize_keras_object`
//! (`keras/src/saving/serialization_lib.py`), which needs `module` on the top-level object
//! to find the class (`_retrieve_class_or_fn`): tf-keras' top level has none, so it is
//! written here (`keras` / `Sequential`; `keras.src.models.functional` / `Functional`, as
//! Keras 3 itself writes them). No `build_config` is written: `Functional.from_config`
//! (`keras/src/models/functional.py`, `functional_from_config`) builds every layer by
//! calling it, and `Sequential.from_config` (`keras/src/models/sequential.py`) builds
//! from its `InputLayer` (or `build_input_shape`, kept when there is one), before
//! `_load_state` reads the weights.
//!
//! Inner layers get the full Keras 3 form (`module`, `class_name`, `config`,
//! `registered_name`), which `deserialize_keras_object` resolves through Keras' exported
//! names; wrappers (`TimeDistributed`, `Bidirectional`) deserialize their `layer` that way
//! and need it. Keras 3 would also take the legacy form in a Functional's or Sequential's
//! layer list (`legacy/saving/saving_utils.py`, `model_from_config`), but that path
//! rewrites keys (`batch_input_shape`, a one-element `axis`) on its own terms.
//!
//! # Layer configs
//!
//! Each built-in class has the list of arguments its Keras 3.15 `__init__` takes (plus
//! `name`, `trainable`, `dtype`, `activity_regularizer`, which the base `Layer` takes).
//! A tf-keras key outside that list is translated by a rule below or refused; nothing is
//! passed through unseen, because Keras 3 raises on some unknown keys and silently
//! accepts others (`implementation` of `LSTM`/`GRU` is popped from `**kwargs`).
//!
//! | tf-keras | Keras 3 | why |
//! |---|---|---|
//! | `InputLayer.batch_input_shape` | `batch_shape` | renamed (`layers/core/input_layer.py`) |
//! | `batch_input_shape` on the first layer of a Sequential without `InputLayer` (Keras 2.0–2.2) | an explicit `InputLayer` named `<layer>_input`, as tf-keras makes | Keras 3 layers take no `batch_input_shape` |
//! | `batch_input_shape` anywhere else | dropped | tf-keras repeats the InputLayer's shape there |
//! | RNN `time_major: false` | dropped | Keras 3 has no time-major RNNs (true: refused) |
//! | `groups: 1` of Conv*Transpose, DepthwiseConv, SeparableConv | dropped | Keras 3 lacks the key there (other values: refused) |
//! | `GRU` without `reset_after` (Keras < 2.1.3) | `reset_after: false` | Keras 3's default is `true`, another model |
//! | `LeakyReLU.alpha` | `negative_slope` | renamed |
//! | `SeparableConv*` `kernel_initializer`/`_regularizer`/`_constraint` | dropped | inherited from tf-keras' Conv, unused there, not taken by Keras 3 |
//! | `Embedding.input_length` | dropped | shape inference only; `sparse: false` dropped too |
//! | `MultiHeadAttention.query_shape`/`key_shape`/`value_shape` | dropped | build shapes; the call builds it |
//! | `softmax_robust_masking`/`robust_masking: false` | dropped | not in Keras 3 (true: refused) |
//! | `SpatialDropout*` `trainable`, `noise_shape: null` | dropped | Keras 3's `__init__` takes neither |
//! | `BatchNormalization.axis: [k]` | `k` | Keras 3 wants an int |
//! | `BatchNormalization.renorm`, `virtual_batch_size`, `synchronized: true` | refused | other weights / other math |
//! | `ZeroPadding1D`, `Flatten`, `Global*Pooling1D` without `data_format` | `channels_last` | Keras 2 had no such option there (channels-last only); Keras 3's default follows the loading user's `image_data_format` |
//! | activation `hard_sigmoid` | refused | tf-keras: `0.2x + 0.5`; Keras 3: `x/6 + 0.5` |
//! | a layer's `dtype` policy dict (`Policy`) | Keras 3 `DTypePolicy` | renamed class |
//!
//! Initializers, regularizers and constraints are rewritten to Keras 3's form
//! (`{"module": "keras.initializers", "class_name": …, "config": …, "registered_name":
//! null}`) for the built-in classes; string identifiers of built-in ones are kept (Keras 3's
//! `initializers.get` takes them). Custom ones are refused.
//!
//! # Graph
//!
//! A Functional layer's `inbound_nodes` in tf-keras' list form
//! (`[[name, node, tensor, kwargs], …]`) is read natively by Keras 3's
//! `functional.deserialize_node` (its "legacy case"), but that case passes `kwargs`
//! through as they are: a tensor in them (`MultiHeadAttention`'s `value`, an RNN's
//! `initial_state`) would arrive as a `[name, node, tensor]` list. Such nodes are written
//! in Keras 3's form (`{"args": …, "kwargs": …}` with `__keras_tensor__` references, whose
//! `shape`/`dtype` are placeholders: `convert_revived_tensor` replaces each by the real
//! tensor from `keras_history` before the call). Nodes without tensor kwargs keep the
//! list form.
//!
//! Node indices of nested models differ: tf-keras counts a model built from an `Input`
//! (a Functional, or a Sequential that starts with an `InputLayer`) from 1, its node 0
//! being the one that links its input to its output (`tf_keras/src/engine/functional.py`,
//! `_should_skip_first_node`). Keras 3 has no such node: it indexes `_inbound_nodes` from 0
//! when it calls layers, and subtracts 1 only for a Functional (not a Sequential) in
//! `input_layers`/`output_layers` (`functional_from_config`, `get_tensor`). References
//! are renumbered accordingly. A Sequential without `InputLayer` in its config is counted
//! from 0 by tf-keras but from 1 by Keras ≤ 2.2; which one is read off the references,
//! and refused when they do not say.
//!
//! Refused: custom classes, `Lambda` (Python bytecode), `CuDNNLSTM`/`CuDNNGRU` (no Keras 3
//! class), any unknown class or key, a layer wrapped by `TimeDistributed`/`Bidirectional`
//! that is also in the model (tf-keras shares one object; its config lists two).

use serde_json::{json, Map, Value};

/// Layer classes translated, with the arguments their Keras 3.15 `__init__` takes.
#[rustfmt::skip]
const LAYERS: &[(&str, &[&str])] = &[
    ("Dense", &["units", "activation", "use_bias", "kernel_initializer", "bias_initializer", "kernel_regularizer", "bias_regularizer", "activity_regularizer", "kernel_constraint", "bias_constraint"]),
    ("EinsumDense", &["equation", "output_shape", "activation", "bias_axes", "kernel_initializer", "bias_initializer", "kernel_regularizer", "bias_regularizer", "kernel_constraint", "bias_constraint"]),
    ("Conv1D", &["filters", "kernel_size", "strides", "padding", "data_format", "dilation_rate", "groups", "activation", "use_bias", "kernel_initializer", "bias_initializer", "kernel_regularizer", "bias_regularizer", "activity_regularizer", "kernel_constraint", "bias_constraint"]),
    ("Conv2D", &["filters", "kernel_size", "strides", "padding", "data_format", "dilation_rate", "groups", "activation", "use_bias", "kernel_initializer", "bias_initializer", "kernel_regularizer", "bias_regularizer", "activity_regularizer", "kernel_constraint", "bias_constraint"]),
    ("Conv3D", &["filters", "kernel_size", "strides", "padding", "data_format", "dilation_rate", "groups", "activation", "use_bias", "kernel_initializer", "bias_initializer", "kernel_regularizer", "bias_regularizer", "activity_regularizer", "kernel_constraint", "bias_constraint"]),
    ("Conv1DTranspose", &["filters", "kernel_size", "strides", "padding", "output_padding", "data_format", "dilation_rate", "activation", "use_bias", "kernel_initializer", "bias_initializer", "kernel_regularizer", "bias_regularizer", "activity_regularizer", "kernel_constraint", "bias_constraint"]),
    ("Conv2DTranspose", &["filters", "kernel_size", "strides", "padding", "output_padding", "data_format", "dilation_rate", "activation", "use_bias", "kernel_initializer", "bias_initializer", "kernel_regularizer", "bias_regularizer", "activity_regularizer", "kernel_constraint", "bias_constraint"]),
    ("Conv3DTranspose", &["filters", "kernel_size", "strides", "padding", "data_format", "output_padding", "dilation_rate", "activation", "use_bias", "kernel_initializer", "bias_initializer", "kernel_regularizer", "bias_regularizer", "activity_regularizer", "kernel_constraint", "bias_constraint"]),
    ("DepthwiseConv1D", &["kernel_size", "strides", "padding", "depth_multiplier", "data_format", "dilation_rate", "activation", "use_bias", "depthwise_initializer", "bias_initializer", "depthwise_regularizer", "bias_regularizer", "activity_regularizer", "depthwise_constraint", "bias_constraint"]),
    ("DepthwiseConv2D", &["kernel_size", "strides", "padding", "depth_multiplier", "data_format", "dilation_rate", "activation", "use_bias", "depthwise_initializer", "bias_initializer", "depthwise_regularizer", "bias_regularizer", "activity_regularizer", "depthwise_constraint", "bias_constraint"]),
    ("SeparableConv1D", &["filters", "kernel_size", "strides", "padding", "data_format", "dilation_rate", "depth_multiplier", "activation", "use_bias", "depthwise_initializer", "pointwise_initializer", "bias_initializer", "depthwise_regularizer", "pointwise_regularizer", "bias_regularizer", "activity_regularizer", "depthwise_constraint", "pointwise_constraint", "bias_constraint"]),
    ("SeparableConv2D", &["filters", "kernel_size", "strides", "padding", "data_format", "dilation_rate", "depth_multiplier", "activation", "use_bias", "depthwise_initializer", "pointwise_initializer", "bias_initializer", "depthwise_regularizer", "pointwise_regularizer", "bias_regularizer", "activity_regularizer", "depthwise_constraint", "pointwise_constraint", "bias_constraint"]),
    ("BatchNormalization", &["axis", "momentum", "epsilon", "center", "scale", "beta_initializer", "gamma_initializer", "moving_mean_initializer", "moving_variance_initializer", "beta_regularizer", "gamma_regularizer", "beta_constraint", "gamma_constraint"]),
    ("LayerNormalization", &["axis", "epsilon", "center", "scale", "beta_initializer", "gamma_initializer", "beta_regularizer", "gamma_regularizer", "beta_constraint", "gamma_constraint"]),
    ("GroupNormalization", &["groups", "axis", "epsilon", "center", "scale", "beta_initializer", "gamma_initializer", "beta_regularizer", "gamma_regularizer", "beta_constraint", "gamma_constraint"]),
    ("UnitNormalization", &["axis"]),
    ("Embedding", &["input_dim", "output_dim", "embeddings_initializer", "embeddings_regularizer", "embeddings_constraint", "mask_zero"]),
    ("LSTM", &["units", "activation", "recurrent_activation", "use_bias", "kernel_initializer", "recurrent_initializer", "bias_initializer", "unit_forget_bias", "kernel_regularizer", "recurrent_regularizer", "bias_regularizer", "activity_regularizer", "kernel_constraint", "recurrent_constraint", "bias_constraint", "dropout", "recurrent_dropout", "seed", "return_sequences", "return_state", "go_backwards", "stateful", "unroll", "implementation"]),
    ("GRU", &["units", "activation", "recurrent_activation", "use_bias", "kernel_initializer", "recurrent_initializer", "bias_initializer", "kernel_regularizer", "recurrent_regularizer", "bias_regularizer", "activity_regularizer", "kernel_constraint", "recurrent_constraint", "bias_constraint", "dropout", "recurrent_dropout", "seed", "return_sequences", "return_state", "go_backwards", "stateful", "unroll", "reset_after", "implementation"]),
    ("SimpleRNN", &["units", "activation", "use_bias", "kernel_initializer", "recurrent_initializer", "bias_initializer", "kernel_regularizer", "recurrent_regularizer", "bias_regularizer", "activity_regularizer", "kernel_constraint", "recurrent_constraint", "bias_constraint", "dropout", "recurrent_dropout", "return_sequences", "return_state", "go_backwards", "stateful", "unroll", "seed"]),
    ("Bidirectional", &["layer", "merge_mode", "backward_layer"]),
    ("TimeDistributed", &["layer"]),
    ("MultiHeadAttention", &["num_heads", "key_dim", "value_dim", "dropout", "use_bias", "output_shape", "attention_axes", "kernel_initializer", "bias_initializer", "kernel_regularizer", "bias_regularizer", "activity_regularizer", "kernel_constraint", "bias_constraint", "seed"]),
    ("PReLU", &["alpha_initializer", "alpha_regularizer", "alpha_constraint", "shared_axes"]),
    ("ReLU", &["max_value", "negative_slope", "threshold"]),
    ("LeakyReLU", &["negative_slope"]),
    ("ELU", &["alpha"]),
    ("Softmax", &["axis"]),
    ("Activation", &["activation"]),
    ("Dropout", &["rate", "noise_shape", "seed"]),
    ("SpatialDropout1D", &["rate", "seed"]),
    ("SpatialDropout2D", &["rate", "data_format", "seed"]),
    ("SpatialDropout3D", &["rate", "data_format", "seed"]),
    ("GaussianNoise", &["stddev", "seed"]),
    ("GaussianDropout", &["rate", "seed"]),
    ("AlphaDropout", &["rate", "noise_shape", "seed"]),
    ("ActivityRegularization", &["l1", "l2"]),
    ("Flatten", &["data_format"]),
    ("Reshape", &["target_shape"]),
    ("Permute", &["dims"]),
    ("RepeatVector", &["n"]),
    ("Masking", &["mask_value"]),
    ("MaxPooling1D", &["pool_size", "strides", "padding", "data_format"]),
    ("MaxPooling2D", &["pool_size", "strides", "padding", "data_format"]),
    ("MaxPooling3D", &["pool_size", "strides", "padding", "data_format"]),
    ("AveragePooling1D", &["pool_size", "strides", "padding", "data_format"]),
    ("AveragePooling2D", &["pool_size", "strides", "padding", "data_format"]),
    ("AveragePooling3D", &["pool_size", "strides", "padding", "data_format"]),
    ("GlobalAveragePooling1D", &["data_format", "keepdims"]),
    ("GlobalAveragePooling2D", &["data_format", "keepdims"]),
    ("GlobalAveragePooling3D", &["data_format", "keepdims"]),
    ("GlobalMaxPooling1D", &["data_format", "keepdims"]),
    ("GlobalMaxPooling2D", &["data_format", "keepdims"]),
    ("GlobalMaxPooling3D", &["data_format", "keepdims"]),
    ("Add", &[]),
    ("Subtract", &[]),
    ("Concatenate", &["axis"]),
    ("Multiply", &[]),
    ("Average", &[]),
    ("Maximum", &[]),
    ("Minimum", &[]),
    ("Dot", &["axes", "normalize"]),
    ("ZeroPadding1D", &["padding", "data_format"]),
    ("ZeroPadding2D", &["padding", "data_format"]),
    ("ZeroPadding3D", &["padding", "data_format"]),
    ("Cropping1D", &["cropping"]),
    ("Cropping2D", &["cropping", "data_format"]),
    ("Cropping3D", &["cropping", "data_format"]),
    ("UpSampling1D", &["size"]),
    ("UpSampling2D", &["size", "data_format", "interpolation"]),
    ("UpSampling3D", &["size", "data_format"]),
    ("Rescaling", &["scale", "offset"]),
    // Adapted (mean, variance, count as variables) or given mean/variance: the same
    // arguments and meaning in both (`preprocessing/normalization.py`).
    ("Normalization", &["axis", "mean", "variance", "invert"]),
];

/// Classes without a `data_format` in some Keras 2 version (channels-last only there),
/// whose Keras 3 default follows the loading user's `image_data_format`.
const CHANNELS_LAST_WHEN_ABSENT: &[&str] = &[
    "Flatten",
    "ZeroPadding1D",
    "GlobalAveragePooling1D",
    "GlobalMaxPooling1D",
];

/// Keras 3 `__init__`s that take no `**kwargs` for the base `Layer` beyond these.
const NARROW_BASE: &[&str] = &["SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D"];

/// Activations whose tf-keras and Keras 3 functions agree (checked on a grid of inputs
/// with `np.array_equal`; `hard_sigmoid` does not).
const ACTIVATIONS: &[&str] = &[
    "linear",
    "relu",
    "sigmoid",
    "softmax",
    "tanh",
    "elu",
    "selu",
    "softplus",
    "softsign",
    "exponential",
    "swish",
    "silu",
    "gelu",
    "relu6",
    "mish",
    "log_softmax",
    "leaky_relu",
];

const INITIALIZERS: &[&str] = &[
    "Zeros",
    "Ones",
    "Constant",
    "RandomNormal",
    "RandomUniform",
    "TruncatedNormal",
    "VarianceScaling",
    "Orthogonal",
    "Identity",
    "GlorotUniform",
    "GlorotNormal",
    "HeNormal",
    "HeUniform",
    "LecunNormal",
    "LecunUniform",
];
const INITIALIZER_STRINGS: &[&str] = &[
    "zeros",
    "ones",
    "constant",
    "random_normal",
    "random_uniform",
    "truncated_normal",
    "variance_scaling",
    "orthogonal",
    "identity",
    "glorot_uniform",
    "glorot_normal",
    "he_normal",
    "he_uniform",
    "lecun_normal",
    "lecun_uniform",
];
const REGULARIZERS: &[&str] = &["L1", "L2", "L1L2", "OrthogonalRegularizer"];
const CONSTRAINTS: &[&str] = &["MaxNorm", "MinMaxNorm", "NonNeg", "UnitNorm"];
const DTYPES: &[&str] = &[
    "float16",
    "float32",
    "float64",
    "bfloat16",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "bool",
    "string",
    "mixed_float16",
    "mixed_bfloat16",
];

type Obj = Map<String, Value>;

/// Translate a Keras 2 / tf-keras model config into a Keras 3 `config.json` value.
pub fn from_keras2(model_config: &Value) -> Result<Value, String> {
    let top = model_config
        .as_object()
        .ok_or("the model config is not a JSON object")?;
    for k in top.keys() {
        if !matches!(
            k.as_str(),
            "class_name" | "config" | "keras_version" | "backend" | "module" | "registered_name"
        ) {
            return Err(format!(
                "the model config has an unknown top-level key `{k}`"
            ));
        }
    }
    let class = top
        .get("class_name")
        .and_then(Value::as_str)
        .ok_or("the model config has no `class_name`")?;
    check_builtin(top, class, "the model")?;
    let cfg = top
        .get("config")
        .ok_or("the model config has no `config`")?;
    model(class, cfg, None, "the model")
}

/// A model (Sequential or Functional) in Keras 3's full form.
fn model(class: &str, cfg: &Value, entry_name: Option<&str>, at: &str) -> Result<Value, String> {
    match class {
        "Sequential" => Ok(json!({
            "module": "keras",
            "class_name": "Sequential",
            "config": sequential(cfg, entry_name, at)?,
            "registered_name": null,
        })),
        "Functional" | "Model" => Ok(json!({
            "module": "keras.src.models.functional",
            "class_name": "Functional",
            "config": functional(obj(cfg, at)?, at)?,
            "registered_name": "Functional",
        })),
        _ => Err(format!(
            "{at}: class `{class}` is not a Sequential or Functional model"
        )),
    }
}

fn obj<'a>(v: &'a Value, at: &str) -> Result<&'a Obj, String> {
    v.as_object()
        .ok_or_else(|| format!("{at}: its config is not a JSON object"))
}

/// Refuse an entry whose `module`/`registered_name` say it is not Keras' own class.
fn check_builtin(entry: &Obj, class: &str, at: &str) -> Result<(), String> {
    if let Some(m) = entry.get("module") {
        let ok = match m {
            Value::Null => false,
            Value::String(s) => s == "keras" || s.starts_with("keras."),
            _ => false,
        };
        if !ok {
            return Err(format!(
                "{at}: class `{class}` comes from module {m}, not Keras (a custom class)"
            ));
        }
    }
    match entry.get("registered_name") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(r)) if r == class || r == "Functional" => Ok(()),
        Some(r) => Err(format!(
            "{at}: class `{class}` is registered as {r} (a custom class)"
        )),
    }
}

fn sequential(cfg: &Value, entry_name: Option<&str>, at: &str) -> Result<Value, String> {
    // Keras 2.0–2.1 wrote a Sequential's config as the bare list of its layers.
    let (name, layers, build_input_shape) = match cfg {
        Value::Array(list) => (
            entry_name.unwrap_or("sequential").to_string(),
            list.as_slice(),
            None,
        ),
        Value::Object(o) => {
            for k in o.keys() {
                if !matches!(
                    k.as_str(),
                    "name" | "layers" | "build_input_shape" | "trainable"
                ) {
                    return Err(format!("{at}: Sequential config has an unknown key `{k}`"));
                }
            }
            if o.get("trainable").is_some_and(|t| t != &Value::Bool(true)) {
                return Err(format!(
                    "{at}: Sequential config has `trainable` {}, which Keras 3's Sequential.from_config ignores",
                    o["trainable"]
                ));
            }
            let name = o
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("{at}: Sequential config has no `name`"))?;
            let layers = o
                .get("layers")
                .and_then(Value::as_array)
                .ok_or_else(|| format!("{at}: Sequential config has no `layers` list"))?;
            (
                name.to_string(),
                layers.as_slice(),
                o.get("build_input_shape").filter(|v| !v.is_null()),
            )
        }
        _ => {
            return Err(format!(
                "{at}: Sequential config is neither an object nor a list"
            ))
        }
    };
    let at = format!("Sequential `{name}`");
    let mut out = Vec::new();
    let first_is_input = layers
        .first()
        .and_then(|l| l.get("class_name"))
        .and_then(Value::as_str)
        == Some("InputLayer");
    for (i, l) in layers.iter().enumerate() {
        let e = obj(l, &at)?;
        let t = layer(e, &at)?;
        if i == 0 && !first_is_input {
            if let Some(shape) = t.batch_input_shape {
                let dtype = match t.input_dtype.or(t.dtype_str) {
                    Some(d) => d,
                    None => "float32".to_string(),
                };
                out.push(json!({
                    "module": "keras.layers",
                    "class_name": "InputLayer",
                    "config": {
                        "batch_shape": shape,
                        "dtype": dtype,
                        "sparse": false,
                        "name": format!("{}_input", t.name),
                    },
                    "registered_name": null,
                }));
            }
        } else if t.input_dtype.is_some() {
            return Err(format!(
                "{at}: layer `{}` has `input_dtype` but is not the model's first layer",
                t.name
            ));
        }
        out.push(t.value);
    }
    let mut c = Obj::new();
    c.insert("name".into(), Value::String(name));
    c.insert("layers".into(), Value::Array(out));
    if let Some(b) = build_input_shape {
        if first_is_input {
            return Err(format!(
                "{at}: has both an InputLayer and `build_input_shape`"
            ));
        }
        c.insert("build_input_shape".into(), b.clone());
    }
    Ok(Value::Object(c))
}

/// A translated layer, with what its container needs to know.
struct Translated {
    value: Value,
    name: String,
    /// `batch_input_shape` the tf-keras layer carried (dropped from `value`).
    batch_input_shape: Option<Value>,
    /// Keras 1/2.0 `input_dtype` (dropped from `value`).
    input_dtype: Option<String>,
    /// The layer's `dtype`, when a plain string.
    dtype_str: Option<String>,
}

/// One layer entry (`{"class_name", "config", …}`) in Keras 3's form, without the
/// Functional-only `name`/`inbound_nodes`.
fn layer(entry: &Obj, at: &str) -> Result<Translated, String> {
    let class = entry
        .get("class_name")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{at}: a layer has no `class_name`"))?;
    let cfg = entry
        .get("config")
        .ok_or_else(|| format!("{at}: a `{class}` layer has no `config`"))?;
    let name = cfg
        .get("name")
        .or_else(|| entry.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let here = format!("layer `{name}` ({class}) in {at}");
    check_builtin(entry, class, &here)?;
    match class {
        "Sequential" | "Functional" | "Model" => {
            return Ok(Translated {
                value: model(class, cfg, Some(&name), &here)?,
                name,
                batch_input_shape: None,
                input_dtype: None,
                dtype_str: None,
            })
        }
        "Lambda" => {
            return Err(format!(
                "{here}: Lambda layers hold Python code (bytecode), which cannot be translated"
            ))
        }
        "CuDNNLSTM" | "CuDNNGRU" => {
            return Err(format!(
            "{here}: Keras 3 has no {class} (its weights are laid out differently from LSTM/GRU)"
        ))
        }
        _ => {}
    }
    if class == "InputLayer" {
        return input_layer(obj(cfg, &here)?, name, &here);
    }
    let Some((_, allowed)) = LAYERS.iter().find(|(c, _)| *c == class) else {
        return Err(format!(
            "{here}: class `{class}` is not a built-in layer this translation knows"
        ));
    };
    let cfg = obj(cfg, &here)?;
    let mut out = Obj::new();
    let mut batch_input_shape = None;
    let mut input_dtype = None;
    let mut dtype_str = None;
    for (k, v) in cfg {
        let k = k.as_str();
        let drop_if = |want: &Value| -> Result<(), String> {
            if v == want {
                Ok(())
            } else {
                Err(format!(
                    "{here}: `{k}` is {v}; Keras 3's {class} only has the behaviour of {want}"
                ))
            }
        };
        match (class, k) {
            (_, "name") => {
                out.insert(k.into(), v.clone());
            }
            (c, "trainable") if NARROW_BASE.contains(&c) => {}
            (_, "trainable") => {
                if !v.is_boolean() {
                    return Err(format!("{here}: `trainable` is {v}, not a boolean"));
                }
                out.insert(k.into(), v.clone());
            }
            (_, "dtype") => {
                if let Some(s) = v.as_str() {
                    dtype_str = Some(s.to_string());
                }
                out.insert(k.into(), dtype(v, &here)?);
            }
            (_, "batch_input_shape") => batch_input_shape = Some(v.clone()),
            (_, "input_dtype") => {
                input_dtype = Some(
                    v.as_str()
                        .filter(|s| DTYPES.contains(s))
                        .ok_or_else(|| format!("{here}: `input_dtype` {v} is not a known dtype"))?
                        .to_string(),
                )
            }
            (c, "activity_regularizer") if !NARROW_BASE.contains(&c) => {
                out.insert(k.into(), nested_object(v, "regularizers", REGULARIZERS, &[], &here, k)?);
            }
            ("LSTM" | "GRU" | "SimpleRNN", "time_major") => drop_if(&Value::Bool(false))?,
            ("LSTM" | "GRU", "implementation") => {
                if !(v == &json!(1) || v == &json!(2)) {
                    return Err(format!("{here}: `implementation` {v} is not 1 or 2"));
                }
                out.insert(k.into(), v.clone());
            }
            (
                "Conv1DTranspose" | "Conv2DTranspose" | "Conv3DTranspose" | "DepthwiseConv1D"
                | "DepthwiseConv2D" | "SeparableConv1D" | "SeparableConv2D",
                "groups",
            ) => drop_if(&json!(1))?,
            // tf-keras' SeparableConv inherits these from Conv and never uses them.
            (
                "SeparableConv1D" | "SeparableConv2D",
                "kernel_initializer" | "kernel_regularizer" | "kernel_constraint",
            ) => {}
            ("LeakyReLU", "alpha") => {
                out.insert("negative_slope".into(), v.clone());
            }
            ("Embedding", "input_length") => {}
            ("Embedding", "sparse") => drop_if(&Value::Bool(false))?,
            ("MultiHeadAttention", "query_shape" | "key_shape" | "value_shape") => {}
            ("MultiHeadAttention", "softmax_robust_masking") => drop_if(&Value::Bool(false))?,
            ("Softmax", "robust_masking") => drop_if(&Value::Bool(false))?,
            ("SpatialDropout1D" | "SpatialDropout2D" | "SpatialDropout3D", "noise_shape") => {
                drop_if(&Value::Null)?
            }
            ("BatchNormalization", "axis") => {
                let axis = match v {
                    Value::Number(_) => v.clone(),
                    Value::Array(a) if a.len() == 1 && a[0].is_i64() => a[0].clone(),
                    _ => {
                        return Err(format!(
                            "{here}: `axis` {v} is not one axis (Keras 3's BatchNormalization takes one)"
                        ))
                    }
                };
                out.insert(k.into(), axis);
            }
            ("BatchNormalization", "renorm" | "virtual_batch_size" | "synchronized" | "fused" | "adjustment") => {
                let harmless = (k == "synchronized" && v == &Value::Bool(false))
                    || (k == "fused" && (v.is_null() || v == &Value::Bool(true) || v == &Value::Bool(false)));
                if harmless {
                    continue;
                }
                return Err(format!(
                    "{here}: `{k}` {v} is not translated (other weights or other math in Keras 3)"
                ));
            }
            (_, k2) if allowed.contains(&k2) => {
                let t = if k2 == "layer" || k2 == "backward_layer" {
                    if v.is_null() && k2 == "backward_layer" {
                        Value::Null
                    } else {
                        let e = obj(v, &here)?;
                        layer(e, &here)?.value
                    }
                } else if k2.ends_with("_initializer") {
                    nested_object(v, "initializers", INITIALIZERS, INITIALIZER_STRINGS, &here, k)?
                } else if k2.ends_with("_regularizer") {
                    nested_object(v, "regularizers", REGULARIZERS, &[], &here, k)?
                } else if k2.ends_with("_constraint") {
                    nested_object(v, "constraints", CONSTRAINTS, &[], &here, k)?
                } else if k2 == "activation" || k2 == "recurrent_activation" {
                    activation(v, &here, k)?
                } else {
                    v.clone()
                };
                out.insert(k.into(), t);
            }
            _ => {
                return Err(format!(
                    "{here}: key `{k}` ({v}) is not one Keras 3's {class} takes, and has no known translation"
                ))
            }
        }
    }
    // Defaults that differ between Keras versions, written out.
    if class == "GRU" && !out.contains_key("reset_after") {
        // Keras < 2.1.3 had only the reset-before variant; Keras 3 defaults to after.
        out.insert("reset_after".into(), Value::Bool(false));
    }
    if matches!(class, "LSTM" | "GRU") && !out.contains_key("recurrent_activation") {
        return Err(format!(
            "{here}: no `recurrent_activation` (Keras 2.0–2.2 defaulted to hard_sigmoid, tf-keras and Keras 3 to sigmoid)"
        ));
    }
    // tf-keras' SpatialDropout2D/3D never write their data_format: both tf-keras and
    // Keras 3 resolve the missing one from image_data_format(), so it is left out.
    let unwritten = matches!(class, "SpatialDropout2D" | "SpatialDropout3D");
    if allowed.contains(&"data_format") && !out.contains_key("data_format") && !unwritten {
        if CHANNELS_LAST_WHEN_ABSENT.contains(&class) {
            out.insert("data_format".into(), json!("channels_last"));
        } else {
            return Err(format!(
                "{here}: no `data_format`; Keras 3 would take the loading user's image_data_format"
            ));
        }
    }
    if matches!(class, "Bidirectional" | "TimeDistributed") && !out.contains_key("layer") {
        return Err(format!("{here}: wrapper without `layer`"));
    }
    Ok(Translated {
        value: json!({
            "module": "keras.layers",
            "class_name": class,
            "config": Value::Object(out),
            "registered_name": null,
        }),
        name,
        batch_input_shape,
        input_dtype,
        dtype_str,
    })
}

fn input_layer(cfg: &Obj, name: String, here: &str) -> Result<Translated, String> {
    let mut out = Obj::new();
    for (k, v) in cfg {
        match k.as_str() {
            "name" => {
                out.insert(k.clone(), v.clone());
            }
            "batch_input_shape" | "batch_shape" => {
                if !v.is_array() {
                    return Err(format!("{here}: `{k}` {v} is not a shape"));
                }
                out.insert("batch_shape".into(), v.clone());
            }
            "dtype" | "input_dtype" => {
                let d = v
                    .as_str()
                    .filter(|s| DTYPES.contains(s))
                    .ok_or_else(|| format!("{here}: `{k}` {v} is not a known dtype"))?;
                out.insert("dtype".into(), json!(d));
            }
            "sparse" => {
                out.insert(k.clone(), v.clone());
            }
            "ragged" | "optional" => {
                if v != &Value::Bool(false) {
                    return Err(format!("{here}: `{k}` {v} is not translated"));
                }
            }
            "type_spec" if v.is_null() => {}
            _ => {
                return Err(format!(
                    "{here}: InputLayer key `{k}` ({v}) has no known translation"
                ))
            }
        }
    }
    if !out.contains_key("batch_shape") {
        return Err(format!("{here}: InputLayer without a shape"));
    }
    Ok(Translated {
        value: json!({
            "module": "keras.layers",
            "class_name": "InputLayer",
            "config": Value::Object(out),
            "registered_name": null,
        }),
        name,
        batch_input_shape: None,
        input_dtype: None,
        dtype_str: None,
    })
}

fn dtype(v: &Value, here: &str) -> Result<Value, String> {
    match v {
        Value::String(s) if DTYPES.contains(&s.as_str()) => Ok(v.clone()),
        Value::Object(o)
            if matches!(
                o.get("class_name").and_then(Value::as_str),
                Some("Policy" | "DTypePolicy")
            ) =>
        {
            let name = o
                .get("config")
                .and_then(|c| c.get("name"))
                .and_then(Value::as_str)
                .filter(|s| DTYPES.contains(s))
                .ok_or_else(|| format!("{here}: dtype policy {v} is not a known one"))?;
            Ok(json!({
                "module": "keras",
                "class_name": "DTypePolicy",
                "config": {"name": name},
                "registered_name": null,
            }))
        }
        _ => Err(format!("{here}: dtype {v} is not translated")),
    }
}

fn activation(v: &Value, here: &str, key: &str) -> Result<Value, String> {
    match v.as_str() {
        Some("hard_sigmoid") => Err(format!(
            "{here}: `{key}` hard_sigmoid is 0.2x+0.5 in Keras 2 but x/6+0.5 in Keras 3"
        )),
        Some(s) if ACTIVATIONS.contains(&s) => Ok(v.clone()),
        None if v.is_null() => Ok(json!("linear")),
        _ => Err(format!(
            "{here}: `{key}` {v} is not a built-in activation known to agree in Keras 3"
        )),
    }
}

/// An initializer, regularizer or constraint in Keras 3's form.
fn nested_object(
    v: &Value,
    kind: &str,
    classes: &[&str],
    strings: &[&str],
    here: &str,
    key: &str,
) -> Result<Value, String> {
    match v {
        Value::Null => Ok(Value::Null),
        Value::String(s) if strings.contains(&s.as_str()) => Ok(v.clone()),
        Value::Object(o) => {
            let class = o.get("class_name").and_then(Value::as_str).unwrap_or("");
            if !classes.contains(&class) {
                return Err(format!(
                    "{here}: `{key}` class `{class}` is not a built-in Keras 3 {kind} class"
                ));
            }
            check_builtin(o, class, here)?;
            for k in o.keys() {
                if !matches!(
                    k.as_str(),
                    "class_name" | "config" | "module" | "registered_name"
                ) {
                    return Err(format!("{here}: `{key}` has an unknown key `{k}`"));
                }
            }
            let cfg = o.get("config").cloned().unwrap_or_else(|| json!({}));
            if !cfg.is_object() {
                return Err(format!("{here}: `{key}` config {cfg} is not an object"));
            }
            Ok(json!({
                "module": format!("keras.{kind}"),
                "class_name": class,
                "config": cfg,
                "registered_name": null,
            }))
        }
        _ => Err(format!("{here}: `{key}` {v} is not translated")),
    }
}

/// A tensor reference `[layer, node, tensor]`.
fn as_ref(v: &Value) -> Option<(&str, u64, u64)> {
    let a = v.as_array()?;
    if a.len() != 3 {
        return None;
    }
    Some((a[0].as_str()?, a[1].as_u64()?, a[2].as_u64()?))
}

fn functional(cfg: &Obj, at: &str) -> Result<Value, String> {
    for k in cfg.keys() {
        if !matches!(
            k.as_str(),
            "name" | "trainable" | "layers" | "input_layers" | "output_layers"
        ) {
            return Err(format!("{at}: Functional config has an unknown key `{k}`"));
        }
    }
    let name = cfg
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{at}: Functional config has no `name`"))?;
    let at = format!("model `{name}`");
    let layers = cfg
        .get("layers")
        .and_then(Value::as_array)
        .ok_or_else(|| format!("{at}: no `layers` list"))?;

    // Names, classes and node counts, to renumber references to nested models.
    let mut info: Vec<(String, String, usize, bool)> = Vec::new();
    for l in layers {
        let e = obj(l, &at)?;
        let class = e.get("class_name").and_then(Value::as_str).unwrap_or("");
        let lname = e
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{at}: a `{class}` layer entry has no `name`"))?;
        if info.iter().any(|(n, ..)| n == lname) {
            return Err(format!("{at}: two layers are named `{lname}`"));
        }
        let nodes = e
            .get("inbound_nodes")
            .and_then(Value::as_array)
            .ok_or_else(|| format!("{at}: layer `{lname}` has no `inbound_nodes` list"))?;
        let seq_with_input = class == "Sequential"
            && e.get("config")
                .and_then(|c| c.get("layers"))
                .and_then(Value::as_array)
                .and_then(|a| a.first())
                .and_then(|f| f.get("class_name"))
                .and_then(Value::as_str)
                == Some("InputLayer");
        // An InputLayer's own node (0) is not listed.
        let count = if class == "InputLayer" {
            1
        } else {
            nodes.len()
        };
        info.push((lname.to_string(), class.to_string(), count, seq_with_input));
    }
    // Every reference, to read off where tf-keras started counting a model's nodes.
    let mut refs: Vec<(String, u64)> = Vec::new();
    fn collect(v: &Value, names: &[(String, String, usize, bool)], refs: &mut Vec<(String, u64)>) {
        if let Some((n, i, _)) = as_ref(v) {
            if names.iter().any(|(m, ..)| m == n) {
                refs.push((n.to_string(), i));
                return;
            }
        }
        match v {
            Value::Array(a) => a.iter().for_each(|x| collect(x, names, refs)),
            Value::Object(o) => o.values().for_each(|x| collect(x, names, refs)),
            _ => {}
        }
    }
    for l in layers {
        collect(&l["inbound_nodes"], &info, &mut refs);
    }
    for k in ["input_layers", "output_layers"] {
        if let Some(v) = cfg.get(k) {
            collect(v, &info, &mut refs);
        }
    }
    // tf-keras' first saved node index for each layer.
    let mut base: std::collections::HashMap<&str, u64> = Default::default();
    for (n, class, count, seq_with_input) in &info {
        let mine: Vec<u64> = refs.iter().filter(|(m, _)| m == n).map(|r| r.1).collect();
        let b = match class.as_str() {
            "Functional" | "Model" => 1,
            "Sequential" if *seq_with_input => 1,
            "Sequential" => {
                let has0 = mine.contains(&0);
                let has_n = mine.contains(&(*count as u64));
                match (has0, has_n) {
                    (true, false) => 0,
                    (false, true) => 1,
                    (false, false) if mine.is_empty() => 0,
                    _ => {
                        return Err(format!(
                            "{at}: cannot tell how the node indices of nested Sequential `{n}` (no InputLayer) are counted"
                        ))
                    }
                }
            }
            _ => 0,
        };
        if let Some(bad) = mine.iter().find(|&&i| i < b || i >= b + *count as u64) {
            return Err(format!(
                "{at}: a reference to node {bad} of `{n}`, which has {count} node(s) counted from {b}"
            ));
        }
        base.insert(n.as_str(), b);
    }
    let is_model = |n: &str| -> bool {
        info.iter()
            .any(|(m, c, ..)| m == n && matches!(c.as_str(), "Functional" | "Model"))
    };

    let mut out_layers = Vec::new();
    let mut names_here: Vec<&str> = Vec::new();
    for l in layers {
        let e = obj(l, &at)?;
        for k in e.keys() {
            if !matches!(
                k.as_str(),
                "class_name"
                    | "config"
                    | "name"
                    | "inbound_nodes"
                    | "module"
                    | "registered_name"
                    | "build_config"
            ) {
                return Err(format!("{at}: a layer entry has an unknown key `{k}`"));
            }
        }
        let lname = e["name"].as_str().unwrap_or_default();
        names_here.push(lname);
        let t = layer(e, &at)?;
        if t.input_dtype.is_some() {
            return Err(format!("{at}: layer `{lname}` has Keras 1's `input_dtype`"));
        }
        if !t.name.is_empty() && t.name != lname {
            return Err(format!(
                "{at}: layer entry `{lname}` has config name `{}`",
                t.name
            ));
        }
        let mut v = t.value;
        let nodes = e["inbound_nodes"].as_array().cloned().unwrap_or_default();
        let mut new_nodes = Vec::new();
        for node in &nodes {
            new_nodes.push(node_to_keras3(node, &base, &at, lname)?);
        }
        let o = v.as_object_mut().expect("a layer is an object");
        o.insert("name".into(), json!(lname));
        o.insert("inbound_nodes".into(), Value::Array(new_nodes));
        out_layers.push(v);
    }
    // A wrapped layer that is also the model's own layer is one object in tf-keras,
    // two in its config.
    for l in &out_layers {
        for key in ["layer", "backward_layer"] {
            let inner = l["config"].get(key).and_then(|x| x["config"].get("name"));
            if let Some(n) = inner.and_then(Value::as_str) {
                if names_here.contains(&n) {
                    return Err(format!(
                        "{at}: layer `{}` wraps `{n}`, which the model also calls itself; tf-keras shares one layer there but its config lists two",
                        l["name"].as_str().unwrap_or_default()
                    ));
                }
            }
        }
    }
    let endpoints = |k: &str| -> Result<Value, String> {
        let v = cfg.get(k).ok_or_else(|| format!("{at}: no `{k}`"))?;
        let mapped = map_endpoints(v, &|n: &str, i: u64| {
            let b = base.get(n).copied().unwrap_or(0);
            // Keras 3 subtracts 1 for a Functional here (functional_from_config).
            if is_model(n) {
                i - b + 1
            } else {
                i - b
            }
        })
        .ok_or_else(|| format!("{at}: `{k}` {v} is not a structure of [layer, node, tensor]"))?;
        // tf-keras wraps a single input or output in a list and treats it as single.
        Ok(match mapped {
            Value::Array(a) if a.len() == 1 && as_ref(&a[0]).is_some() => a[0].clone(),
            m => m,
        })
    };
    let mut c = Obj::new();
    c.insert("name".into(), json!(name));
    if let Some(t) = cfg.get("trainable") {
        if !t.is_boolean() {
            return Err(format!("{at}: `trainable` {t} is not a boolean"));
        }
        c.insert("trainable".into(), t.clone());
    }
    c.insert("layers".into(), Value::Array(out_layers));
    c.insert("input_layers".into(), endpoints("input_layers")?);
    c.insert("output_layers".into(), endpoints("output_layers")?);
    Ok(Value::Object(c))
}

fn map_endpoints(v: &Value, f: &dyn Fn(&str, u64) -> u64) -> Option<Value> {
    if let Some((n, i, t)) = as_ref(v) {
        return Some(json!([n, f(n, i), t]));
    }
    match v {
        Value::Array(a) => a
            .iter()
            .map(|x| map_endpoints(x, f))
            .collect::<Option<Vec<_>>>()
            .map(Value::Array),
        Value::Object(o) => o
            .iter()
            .map(|(k, x)| map_endpoints(x, f).map(|m| (k.clone(), m)))
            .collect::<Option<Obj>>()
            .map(Value::Object),
        _ => None,
    }
}

/// One tf-keras node (`[[layer, node, tensor, kwargs], …]`) in a form Keras 3 reads.
fn node_to_keras3(
    node: &Value,
    base: &std::collections::HashMap<&str, u64>,
    at: &str,
    lname: &str,
) -> Result<Value, String> {
    let bad = || format!("{at}: layer `{lname}` has a call node {node} of an unknown form");
    let entries = node.as_array().ok_or_else(bad)?;
    if entries.is_empty() {
        return Err(bad());
    }
    let renumber = |n: &str, i: u64| -> Result<u64, String> {
        let b = *base
            .get(n)
            .ok_or_else(|| format!("{at}: layer `{lname}` is called on unknown layer `{n}`"))?;
        i.checked_sub(b).ok_or_else(|| {
            format!("{at}: layer `{lname}` is called on node {i} of layer `{n}`, which has no such node")
        })
    };
    let mut kwargs: Option<&Value> = None;
    let mut firsts = Vec::new();
    for e in entries {
        let a = e.as_array().ok_or_else(bad)?;
        let r = match a.len() {
            3 | 4 => match (a[0].as_str(), a[1].as_u64(), a[2].as_u64()) {
                (Some(n), Some(i), Some(t)) => (n, i, t),
                _ => return Err(bad()),
            },
            _ => return Err(bad()),
        };
        let kw = a.get(3);
        if let Some(k) = kw {
            if !k.is_object() {
                return Err(bad());
            }
            // Keras 3's legacy reader keeps the last entry's kwargs; tf-keras writes the
            // same ones on each.
            if kwargs.is_some_and(|p| p != k) {
                return Err(format!(
                    "{at}: layer `{lname}` has a call node whose inputs carry different kwargs"
                ));
            }
            kwargs = Some(k);
        }
        firsts.push((r.0.to_string(), renumber(r.0, r.1)?, r.2));
    }
    let kwargs = kwargs.cloned().unwrap_or_else(|| json!({}));
    let mut has_tensor = false;
    let names: Vec<&str> = base.keys().copied().collect();
    let kwargs = map_kwargs(&kwargs, &names, &mut has_tensor, &|n, i| renumber(n, i))?;
    if !has_tensor {
        return Ok(Value::Array(
            firsts
                .iter()
                .map(|(n, i, t)| json!([n, i, t, kwargs]))
                .collect(),
        ));
    }
    let tensor = |n: &str, i: u64, t: u64| {
        json!({"class_name": "__keras_tensor__",
               "config": {"shape": [], "dtype": "float32", "keras_history": [n, i, t]}})
    };
    let first = if firsts.len() == 1 {
        tensor(&firsts[0].0, firsts[0].1, firsts[0].2)
    } else {
        Value::Array(firsts.iter().map(|(n, i, t)| tensor(n, *i, *t)).collect())
    };
    Ok(json!({"args": [first], "kwargs": kwargs}))
}

/// Call kwargs with tensor references (`[layer, node, tensor]` naming a layer of the
/// model) turned into `__keras_tensor__` references.
fn map_kwargs(
    v: &Value,
    names: &[&str],
    has_tensor: &mut bool,
    renumber: &dyn Fn(&str, u64) -> Result<u64, String>,
) -> Result<Value, String> {
    if let Some((n, i, t)) = as_ref(v) {
        if names.contains(&n) {
            *has_tensor = true;
            return Ok(json!({"class_name": "__keras_tensor__",
                "config": {"shape": [], "dtype": "float32",
                           "keras_history": [n, renumber(n, i)?, t]}}));
        }
    }
    Ok(match v {
        Value::Array(a) => Value::Array(
            a.iter()
                .map(|x| map_kwargs(x, names, has_tensor, renumber))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| Ok((k.clone(), map_kwargs(x, names, has_tensor, renumber)?)))
                .collect::<Result<_, String>>()?,
        ),
        _ => v.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Value {
        let p = format!(
            "{}/testdata/keras2_configs/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
    }

    fn layers(v: &Value) -> &Vec<Value> {
        v["config"]["layers"].as_array().unwrap()
    }

    /// Found by the `keras3_config` fuzz target: a call node whose node index is below
    /// the called layer's first node made the renumbering subtract with overflow.
    #[test]
    fn a_node_index_below_the_layers_first_is_an_error_not_a_panic() {
        let p = format!(
            "{}/tests/bad/fuzz_keras3_config_node_underflow.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let v: Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
        assert!(from_keras2(&v).is_err());
    }

    fn find<'a>(v: &'a Value, name: &str) -> &'a Value {
        layers(v)
            .iter()
            .find(|l| l["name"] == name || l["config"]["name"] == name)
            .unwrap()
    }

    #[test]
    fn every_fixture_translates() {
        for f in [
            "mlp",
            "cnn",
            "to_json_cnn",
            "bilstm_gru",
            "transformer",
            "nested",
            "zoo",
            "mobilenet_v2",
            "resnet50",
        ] {
            let v = from_keras2(&fixture(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
            assert!(v["module"].is_string(), "{f}");
            // Same layers, same order, same classes.
            let src = fixture(f);
            let a: Vec<&Value> = layers(&src).iter().map(|l| &l["class_name"]).collect();
            let b: Vec<&Value> = layers(&v).iter().map(|l| &l["class_name"]).collect();
            assert_eq!(a, b, "{f}");
            let text = v.to_string();
            assert!(!text.contains("batch_input_shape"), "{f}");
            assert!(!text.contains("time_major"), "{f}");
        }
    }

    #[test]
    fn sequential_top_level() {
        let v = from_keras2(&fixture("mlp")).unwrap();
        assert_eq!(v["module"], "keras");
        assert_eq!(v["class_name"], "Sequential");
        let l = layers(&v);
        assert_eq!(l[0]["class_name"], "InputLayer");
        assert_eq!(l[0]["config"]["batch_shape"], json!([null, 6]));
        assert_eq!(l[5]["class_name"], "LeakyReLU");
        assert!(l[5]["config"]["negative_slope"].is_number());
        assert!(l[5]["config"].get("alpha").is_none());
        assert_eq!(
            l[1]["config"]["kernel_constraint"]["module"],
            "keras.constraints"
        );
    }

    #[test]
    fn functional_top_level_and_single_endpoints() {
        let v = from_keras2(&fixture("cnn")).unwrap();
        assert_eq!(v["class_name"], "Functional");
        assert_eq!(v["module"], "keras.src.models.functional");
        assert_eq!(v["config"]["input_layers"], json!(["image", 0, 0]));
        for l in layers(&v) {
            let c = l["class_name"].as_str().unwrap();
            assert!(l["config"].get("groups").is_none() || c == "Conv2D" || c == "Conv1D");
        }
    }

    #[test]
    fn tensor_kwargs_become_keras3_nodes() {
        let v = from_keras2(&fixture("transformer")).unwrap();
        let n = &find(&v, "cross_attn")["inbound_nodes"][0];
        assert_eq!(
            n["args"][0]["config"]["keras_history"],
            json!(["ln_1", 0, 0])
        );
        assert_eq!(
            n["kwargs"]["value"]["config"]["keras_history"],
            json!(["memory", 0, 0])
        );
        // Nodes without tensor kwargs keep tf-keras' list form.
        assert_eq!(
            find(&v, "res1")["inbound_nodes"],
            json!([[["seq", 0, 0, {}], ["self_attn", 0, 0, {}]]])
        );
        let mha = &find(&v, "self_attn")["config"];
        assert!(mha.get("query_shape").is_none());
        assert!(mha.get("softmax_robust_masking").is_none());
    }

    #[test]
    fn nested_model_nodes_are_renumbered() {
        let v = from_keras2(&fixture("nested")).unwrap();
        // tf-keras counts inner_seq's (built from an Input) and inner_fn's nodes from 1.
        assert_eq!(
            find(&v, "inner_fn")["inbound_nodes"][0],
            json!([["inner_seq", 0, 0, {}]])
        );
        assert_eq!(
            find(&v, "shared_dense")["inbound_nodes"],
            json!([[["inner_fn", 0, 0, {}]], [["inner_fn", 1, 0, {}]]])
        );
        // Keras 3 subtracts one for a Functional in output_layers itself.
        assert_eq!(
            v["config"]["output_layers"],
            json!([["concatenate_1", 0, 0], ["inner_fn", 1, 0]])
        );
        let td = &find(&v, "time_distributed")["config"]["layer"];
        assert_eq!(td["class_name"], "Sequential");
        assert_eq!(td["module"], "keras");
    }

    #[test]
    fn gru_reset_after_and_rnn_keys() {
        let v = from_keras2(&fixture("bilstm_gru")).unwrap();
        assert_eq!(find(&v, "gru_v1")["config"]["reset_after"], false);
        let bi = &layers(&v)[2];
        assert_eq!(bi["config"]["layer"]["module"], "keras.layers");
        // An old GRU without reset_after is the reset-before variant.
        let old = json!({"class_name": "Sequential", "config": [
            {"class_name": "GRU", "config": {"name": "gru_1", "trainable": true,
             "batch_input_shape": [null, 3, 2], "dtype": "float32", "units": 4,
             "activation": "tanh", "recurrent_activation": "sigmoid", "use_bias": true,
             "return_sequences": false}}]});
        let v = from_keras2(&old).unwrap();
        let l = layers(&v);
        assert_eq!(l[0]["class_name"], "InputLayer");
        assert_eq!(l[0]["config"]["name"], "gru_1_input");
        assert_eq!(l[0]["config"]["batch_shape"], json!([null, 3, 2]));
        assert_eq!(l[1]["config"]["reset_after"], false);
    }

    fn err(v: Value) -> String {
        from_keras2(&v).unwrap_err()
    }

    fn seq(layer: Value) -> Value {
        json!({"class_name": "Sequential", "config": {"name": "s", "layers": [
            {"class_name": "InputLayer", "config": {"batch_input_shape": [null, 3, 2],
             "dtype": "float32", "sparse": false, "ragged": false, "name": "in"}},
            layer]}})
    }

    #[test]
    fn refusals_name_layer_and_reason() {
        let e = err(seq(
            json!({"class_name": "Lambda", "config": {"name": "lam",
            "function": ["4wEAAAAAAAAA", null, null], "function_type": "lambda"}}),
        ));
        assert!(e.contains("`lam`") && e.contains("Lambda"), "{e}");
        let e = err(seq(
            json!({"class_name": "CuDNNLSTM", "config": {"name": "c", "units": 2}}),
        ));
        assert!(e.contains("CuDNNLSTM"), "{e}");
        let e = err(seq(
            json!({"class_name": "MyLayer", "config": {"name": "m"}}),
        ));
        assert!(e.contains("`m`") && e.contains("MyLayer"), "{e}");
        let e = err(seq(json!({"module": "mypkg.layers", "class_name": "Dense",
            "config": {"name": "d", "units": 2}, "registered_name": "mypkg>Dense"})));
        assert!(e.contains("custom"), "{e}");
        let e = err(seq(
            json!({"class_name": "Dense", "config": {"name": "d", "units": 2,
            "surprise": 1}}),
        ));
        assert!(e.contains("surprise"), "{e}");
        let e = err(seq(
            json!({"class_name": "LSTM", "config": {"name": "l", "units": 2,
            "activation": "tanh", "recurrent_activation": "hard_sigmoid"}}),
        ));
        assert!(e.contains("hard_sigmoid"), "{e}");
        let e = err(seq(
            json!({"class_name": "LSTM", "config": {"name": "l", "units": 2,
            "time_major": true, "recurrent_activation": "sigmoid"}}),
        ));
        assert!(e.contains("time_major"), "{e}");
        let e = err(seq(
            json!({"class_name": "LSTM", "config": {"name": "l", "units": 2}}),
        ));
        assert!(e.contains("recurrent_activation"), "{e}");
        let e = err(seq(
            json!({"class_name": "BatchNormalization", "config": {"name": "b",
            "axis": -1, "renorm": true}}),
        ));
        assert!(e.contains("renorm"), "{e}");
        let e = err(seq(
            json!({"class_name": "Conv2DTranspose", "config": {"name": "t",
            "filters": 2, "kernel_size": [2, 2], "groups": 2, "data_format": "channels_last"}}),
        ));
        assert!(e.contains("groups"), "{e}");
        let e = err(seq(json!({"class_name": "Conv2D", "config": {"name": "k",
            "filters": 2, "kernel_size": [2, 2]}})));
        assert!(e.contains("data_format"), "{e}");
        let e = err(seq(
            json!({"class_name": "Dense", "config": {"name": "d", "units": 2,
            "kernel_initializer": {"class_name": "MyInit", "config": {}}}}),
        ));
        assert!(e.contains("MyInit"), "{e}");
    }

    #[test]
    fn wrapped_layer_also_called_is_refused() {
        let mut v = fixture("nested");
        // Make the TimeDistributed wrap a layer with the name of one the model calls.
        v["config"]["layers"][1]["config"]["layer"]["config"]["name"] = json!("side_proj");
        let e = from_keras2(&v).unwrap_err();
        assert!(e.contains("side_proj"), "{e}");
    }

    #[test]
    fn channels_last_written_where_keras2_had_none() {
        let v = from_keras2(&seq(json!({"class_name": "ZeroPadding1D",
            "config": {"name": "z", "padding": [1, 1]}})))
        .unwrap();
        assert_eq!(layers(&v)[1]["config"]["data_format"], "channels_last");
    }
}
