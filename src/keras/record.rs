//! ckptconv's own record of a model in the files it writes without a Keras layout of
//! their own: the checkpoint header's `ckptconv_layers` field and the safetensors
//! `__metadata__` key `ckptconv_layers`. Without it, a Keras file converted to a
//! checkpoint or safetensors and back would have lost its layer order.
//!
//! ```text
//! {"order": "recorded" | "created" | "inferred", "h5_order": bool,
//!  "layers": [{"name", "class_name", "activation", "trainable", "tracked_as", "inner",
//!              "weights": [key, …], "object_paths": [path or null, …]}, …]}
//! ```
//! Keys are the output's own tensor names. Files written before the `order` field hold
//! the bare `layers` array (order recorded).

use std::collections::HashMap;

use serde_json::{json, Value};

use super::{Layer, Model, Order, Weight};

/// The safetensors `__metadata__` key (and checkpoint header field) that holds the record.
pub const METADATA_KEY: &str = "ckptconv_layers";

/// The record of `model`, its weights named by `key` (tensors without a key, i.e. not
/// written, are left out).
pub fn encode(model: &Model, h5_order: bool, key: &dyn Fn(usize) -> Option<String>) -> String {
    let layers: Vec<Value> = model
        .layers
        .iter()
        .map(|l| {
            let kept: Vec<(&Weight, String)> = l
                .weights
                .iter()
                .filter_map(|w| key(w.tensor).map(|k| (w, k)))
                .collect();
            json!({
                "name": l.name,
                "class_name": l.class_name,
                "activation": l.activation,
                "trainable": l.trainable,
                "tracked_as": l.tracked_as,
                "inner": l.inner,
                "ordered": l.ordered,
                "weights": kept.iter().map(|(_, k)| k).collect::<Vec<_>>(),
                "object_paths": kept.iter().map(|(w, _)| &w.object_path).collect::<Vec<_>>(),
            })
        })
        .collect();
    let order = match model.order {
        Order::Recorded => "recorded",
        Order::Created => "created",
        Order::Inferred => "inferred",
    };
    json!({"order": order, "h5_order": h5_order, "layers": layers}).to_string()
}

/// The layers and their order from a record, with weights resolved to tensor indices by
/// `index`; `None` if the record is malformed or names a tensor that is not there (then
/// it is ignored, and the file is read without it).
pub fn decode(json: &str, index: &HashMap<&str, usize>) -> Option<(Vec<Layer>, Order, bool)> {
    let v: Value = serde_json::from_str(json).ok()?;
    let h5_order = v.get("h5_order").and_then(|b| b.as_bool()).unwrap_or(false);
    let (order, list) = match &v {
        Value::Array(a) => (Order::Recorded, a),
        Value::Object(o) => {
            let order = match o.get("order")?.as_str()? {
                "recorded" => Order::Recorded,
                "created" => Order::Created,
                "inferred" => Order::Inferred,
                _ => return None,
            };
            (order, o.get("layers")?.as_array()?)
        }
        _ => return None,
    };
    let s = |x: &Value, k: &str| x.get(k).and_then(|v| v.as_str()).map(str::to_string);
    let layers = list
        .iter()
        .map(|l| {
            let tensors = l
                .get("weights")?
                .as_array()?
                .iter()
                .map(|w| index.get(w.as_str()?).copied())
                .collect::<Option<Vec<usize>>>()?;
            let mut layer = Layer {
                class_name: s(l, "class_name"),
                activation: s(l, "activation"),
                trainable: l.get("trainable").and_then(|t| t.as_bool()),
                tracked_as: s(l, "tracked_as"),
                ..Layer::recorded(s(l, "name")?, tensors)
            };
            if let Some(inner) = l.get("inner") {
                layer.inner = serde_json::from_value(inner.clone()).ok()?;
            }
            if let Some(o) = l.get("ordered").and_then(|o| o.as_bool()) {
                layer.ordered = o;
            }
            if let Some(paths) = l.get("object_paths").and_then(|p| p.as_array()) {
                if paths.len() == layer.weights.len() {
                    for (w, p) in layer.weights.iter_mut().zip(paths) {
                        w.object_path = p.as_str().map(str::to_string);
                    }
                }
            }
            Some(layer)
        })
        .collect::<Option<Vec<Layer>>>()?;
    Some((layers, order, h5_order))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut l = Layer::recorded("bert".into(), [0, 1]);
        l.tracked_as = Some("bert".into());
        l.weights[1].object_path = Some("embeddings/weight".into());
        let m = Model {
            layers: vec![l.clone(), Layer::recorded("pool".into(), [])],
            order: Order::Created,
            why: None,
        };
        let names = ["a", "b"];
        let json = encode(&m, true, &|i| Some(names[i].to_string()));
        let index: HashMap<&str, usize> = [("a", 0), ("b", 1)].into_iter().collect();
        let (layers, order, h5) = decode(&json, &index).unwrap();
        assert_eq!(order, Order::Created);
        assert!(h5);
        assert_eq!(layers[0], l);
        assert!(decode("[{\"name\": \"x\", \"weights\": [\"zz\"]}]", &index).is_none());
        assert_eq!(decode("[]", &index).unwrap().1, Order::Recorded);
    }
}
