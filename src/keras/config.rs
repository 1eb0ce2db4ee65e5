//! Model configs: the `model_config` attribute of a Keras 2 full-model `.h5` and a
//! `.keras` archive's `config.json` (`tf_keras/src/saving/legacy/hdf5_format.py`,
//! `keras/src/saving/saving_lib.py`): each layer's class, activation, `trainable` flag and
//! position in the model.

use std::collections::HashMap;

/// What a model config says about one layer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct ConfigLayer {
    pub class: String,
    pub activation: Option<String>,
    pub trainable: Option<bool>,
    /// Position in the model's layer list.
    pub order: usize,
    /// Weights the config leaves out: `bias` (`use_bias: false`, EinsumDense's
    /// `bias_axes: null`), `beta` (`center: false`), `gamma` (`scale: false`).
    pub absent: Vec<&'static str>,
}

/// Layer info from a model config JSON (`model_config` attribute or `config.json`):
/// name → class, activation, trainable and position, for the model's own layers. A
/// nested model's flag is the one all its weights share (see [`effective_trainable`]).
pub(crate) fn config_layers(json: &str) -> HashMap<String, ConfigLayer> {
    let mut out = HashMap::new();
    let Ok(v) = serde_json::from_str::<serde_json::Value>(json) else {
        return out;
    };
    collect(&v, &mut out, 0);
    out
}

/// Add the layers of the model config `v`, then those of its nested models (whose
/// `order` is their position in their own container); a name already seen keeps its
/// first entry.
fn collect(v: &serde_json::Value, out: &mut HashMap<String, ConfigLayer>, depth: usize) {
    // Models nest a handful of levels; a config nesting deeper is not one Keras wrote.
    if depth > 64 {
        return;
    }
    let list = layer_list(v);
    for (order, l) in list.iter().enumerate() {
        let class = l
            .get("class_name")
            .and_then(|c| c.as_str())
            .unwrap_or_default();
        let cfg = l.get("config");
        let name = cfg
            .and_then(|c| c.get("name"))
            .or_else(|| l.get("name"))
            .and_then(|n| n.as_str());
        let Some(name) = name else { continue };
        let activation = cfg
            .and_then(|c| c.get("activation"))
            .and_then(activation_name);
        let trainable = effective_trainable(
            cfg.and_then(|c| c.get("trainable"))
                .and_then(|t| t.as_bool()),
            l,
        );
        let flag = |k: &str| cfg.and_then(|c| c.get(k)).and_then(|v| v.as_bool());
        let mut absent = Vec::new();
        if flag("use_bias") == Some(false)
            || (class == "EinsumDense"
                && cfg
                    .and_then(|c| c.get("bias_axes"))
                    .is_some_and(|b| b.is_null()))
        {
            absent.push("bias");
        }
        if flag("center") == Some(false) {
            absent.push("beta");
        }
        if flag("scale") == Some(false) {
            absent.push("gamma");
        }
        out.entry(name.to_string()).or_insert(ConfigLayer {
            class: class.to_string(),
            activation,
            trainable,
            order,
            absent,
        });
    }
    for l in &list {
        collect(l, out, depth + 1);
    }
}

/// The name of a layer config's `activation`: the function's name (`"relu"`), or the
/// class of a layer object passed as the activation (`{"class_name": "LeakyReLU", …}`,
/// both dialects).
pub(crate) fn activation_name(a: &serde_json::Value) -> Option<String> {
    match a {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Object(o) => o
            .get("class_name")
            .and_then(|c| c.as_str())
            .map(str::to_string),
        _ => None,
    }
}

/// A layer's own layers when it is a nested model (its class says so) and the config
/// lists them; empty otherwise.
pub(crate) fn inner_layers(
    config: Option<&str>,
    name: &str,
    class: Option<&str>,
) -> Vec<super::Inner> {
    let is_model =
        class.and_then(super::classes::structure) == Some(super::classes::Structure::Model);
    match config {
        Some(c) if is_model => nested_layers(c, name).unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// The layers of the nested model named `name` in a model config, in its own order:
/// (name, class, trainable flag). `None` when the config has no such nested model.
pub(crate) fn nested_layers(json: &str, name: &str) -> Option<Vec<super::Inner>> {
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    let found = find_layer(&v, name, 0)?;
    let list = layer_list(found);
    if list.is_empty() {
        return None;
    }
    Some(
        list.iter()
            .filter_map(|l| {
                let class = l.get("class_name")?.as_str()?.to_string();
                let cfg = l.get("config");
                let name = cfg
                    .and_then(|c| c.get("name"))
                    .or_else(|| l.get("name"))?
                    .as_str()?
                    .to_string();
                let trainable = effective_trainable(
                    cfg.and_then(|c| c.get("trainable"))
                        .and_then(|t| t.as_bool()),
                    l,
                );
                Some(super::Inner {
                    name,
                    class,
                    trainable,
                })
            })
            .collect(),
    )
}

fn find_layer<'a>(
    v: &'a serde_json::Value,
    name: &str,
    depth: usize,
) -> Option<&'a serde_json::Value> {
    if depth > 64 {
        return None;
    }
    let list = v.pointer("/config/layers")?.as_array()?;
    for l in list {
        let n = l
            .pointer("/config/name")
            .or_else(|| l.get("name"))
            .and_then(|n| n.as_str());
        if n == Some(name) {
            return Some(l);
        }
    }
    list.iter().find_map(|l| find_layer(l, name, depth + 1))
}

fn layer_list(v: &serde_json::Value) -> Vec<serde_json::Value> {
    v.pointer("/config/layers")
        .and_then(|l| l.as_array())
        .cloned()
        .unwrap_or_default()
}

/// The `trainable` flag that holds for every weight of `layer`, whose own config says
/// `flag`. A frozen layer freezes all its weights, so `false` is final. A nested model
/// (tf-keras saves no flag for it; Keras 3 saves `true` whatever its layers say) takes
/// the flag its inner layers share; when some are frozen and some not, no one flag holds
/// and this is `None`: each weight then follows its own inner layer (`Layer::inner`).
/// Keras counts a weight trainable only when its layer and every model around it are
/// (`Layer.trainable_weights`, `tf_keras/src/engine/base_layer.py`).
pub(crate) fn effective_trainable(flag: Option<bool>, layer: &serde_json::Value) -> Option<bool> {
    effective_at(flag, layer, 0)
}

fn effective_at(flag: Option<bool>, layer: &serde_json::Value, depth: usize) -> Option<bool> {
    if flag == Some(false) {
        return flag;
    }
    let inner = layer_list(layer);
    if inner.is_empty() || depth > 64 {
        return flag;
    }
    let mut shared = None;
    for l in inner
        .iter()
        .filter(|l| l.get("class_name").and_then(|c| c.as_str()) != Some("InputLayer"))
    {
        let f = l.pointer("/config/trainable").and_then(|t| t.as_bool());
        let f = effective_at(f, l, depth + 1)?;
        if *shared.get_or_insert(f) != f {
            return None;
        }
    }
    shared.or(flag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_parsing() {
        let cfg = r#"{"class_name": "Functional", "config": {"layers": [
            {"class_name": "Dense", "config": {"name": "d", "activation": "relu", "trainable": false}},
            {"class_name": "InputLayer", "name": "in", "config": {}}]}}"#;
        let m = config_layers(cfg);
        assert_eq!(m["d"].class, "Dense");
        assert_eq!(m["d"].activation.as_deref(), Some("relu"));
        assert_eq!(m["d"].trainable, Some(false));
        assert_eq!(m["in"].class, "InputLayer");
        assert_eq!(m["in"].order, 1);
        let nested = r#"{"config": {"layers": [{"class_name": "Sequential", "config": {"name": "s",
            "layers": [{"class_name": "Dense", "config": {"name": "a", "trainable": false}},
                       {"class_name": "Dense", "config": {"name": "b", "trainable": false}}]}}]}}"#;
        assert_eq!(config_layers(nested)["s"].trainable, Some(false));
        // Keras 3 says `trainable: true` of a model one of whose layers is frozen: no one
        // flag holds for its weights, and each inner layer keeps its own.
        let mixed = r#"{"config": {"layers": [{"class_name": "Sequential", "config": {"name": "s",
            "trainable": true,
            "layers": [{"class_name": "Dense", "config": {"name": "a", "trainable": false}},
                       {"class_name": "Dense", "config": {"name": "b", "trainable": true}}]}}]}}"#;
        assert_eq!(config_layers(mixed)["s"].trainable, None);
        let inner = nested_layers(mixed, "s").unwrap();
        assert_eq!(inner[0].trainable, Some(false));
        assert_eq!(inner[1].trainable, Some(true));
        // A frozen model freezes its layers whatever they say.
        let frozen = mixed.replace(r#""trainable": true,"#, r#""trainable": false,"#);
        assert_eq!(config_layers(&frozen)["s"].trainable, Some(false));
        assert!(config_layers("not json").is_empty());
    }
}
