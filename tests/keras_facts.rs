//! The Rust Keras tables against what real tf-keras 2.21 and Keras 3.15 wrote
//! (`testdata/keras_facts.json`, from `testdata/generate_keras_facts.py`):
//! - every built-in layer's weights are in the order `classes::weight_rank` derives from
//!   their names;
//! - where tf-keras tracks each weight in a TF-format checkpoint is the path
//!   `classes::object_subpath` gives, from the class and, where unambiguous, without it;
//! - a nested model's weights in a Keras 2 `.h5` are in the order the `.h5` writer puts them.

use std::collections::HashMap;

use ckptconv::keras::{classes, layout};
use serde_json::Value;

fn facts() -> Value {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/keras_facts.json");
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

fn strip(w: &str) -> &str {
    ckptconv::keras::strip_output_index(w)
}

/// Cases whose weights are not a built-in class's own (a subclassed model's attributes,
/// tf-keras' `adapt()` names without a layer scope, a layer object as an activation).
fn builtin(class: &str) -> bool {
    classes::structure(class).is_some()
}

#[test]
fn weight_order_follows_the_rank_of_built_in_names() {
    let f = facts();
    let mut checked = 0;
    for flavour in ["tf_keras", "keras3"] {
        for (case, c) in f[flavour].as_object().unwrap() {
            for l in c["layers"].as_array().unwrap() {
                let class = l["class"].as_str().unwrap();
                let name = l["name"].as_str().unwrap();
                let weights: Vec<&str> = l["weights"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|w| strip(w.as_str().unwrap()))
                    .collect();
                if weights.len() < 2 || !builtin(class) || case.starts_with("Normalization") {
                    continue;
                }
                if classes::structure(class) == Some(classes::Structure::Model) {
                    continue;
                }
                let ranks: Vec<Option<Vec<usize>>> = weights
                    .iter()
                    .map(|w| classes::weight_rank(&layout::local_path(name, w).join("/")))
                    .collect();
                if flavour == "keras3" && class == "TimeDistributed" {
                    // Keras 3 keeps the inner layer's scope (`time_distributed/dense/…`):
                    // not a built-in scope, so the order is the file's, never derived.
                    assert!(ranks.iter().any(|r| r.is_none()), "{flavour} {case}");
                    continue;
                }
                let ranks: Vec<Vec<usize>> = ranks
                    .into_iter()
                    .map(|r| r.unwrap_or_else(|| panic!("{flavour} {case}: {weights:?}")))
                    .collect();
                assert!(
                    ranks.windows(2).all(|w| w[0] < w[1]),
                    "{flavour} {case} {name}: {weights:?} is not in rank order"
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 40, "{checked}");
}

#[test]
fn object_paths_are_where_tf_keras_tracks_each_weight() {
    let f = facts();
    let mut checked = 0;
    for (case, c) in f["tf_keras"].as_object().unwrap() {
        let Some(keys) = c["save_weights_tf"].as_array() else {
            continue;
        };
        let key_of: HashMap<&str, &str> = keys
            .iter()
            .map(|k| (k["weight"].as_str().unwrap(), k["key"].as_str().unwrap()))
            .collect();
        for l in c["layers"].as_array().unwrap() {
            let class = l["class"].as_str().unwrap();
            let name = l["name"].as_str().unwrap();
            if !builtin(class) || case.starts_with("Normalization") || case == "Subclassed" {
                continue;
            }
            let mut nested = Vec::new();
            let mut nested_unknown = Vec::new();
            for w in l["weights"].as_array().unwrap() {
                let w = w.as_str().unwrap();
                let Some(key) = key_of.get(w) else { continue };
                // `layer_with_weights-k/<below the layer>/.ATTRIBUTES/VARIABLE_VALUE`
                let below: Vec<&str> = key
                    .strip_suffix("/.ATTRIBUTES/VARIABLE_VALUE")
                    .unwrap()
                    .split('/')
                    .skip(1)
                    .collect();
                let local = layout::local_path(name, strip(w));
                let got = classes::object_subpath(Some(class), name, &local, &mut nested)
                    .unwrap_or_else(|| panic!("{case}: {w}: no path for class {class}"));
                assert_eq!(got, below, "{case}: {w} ({class})");
                // Without the class: the same path, or a refusal, never another path.
                if let Some(p) = classes::object_subpath(None, name, &local, &mut nested_unknown) {
                    assert_eq!(p, below, "{case}: {w} (class unknown)");
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 60, "{checked}");
}

#[test]
fn nested_models_list_trainable_weights_first_in_h5() {
    let f = facts();
    let c = &f["tf_keras"]["Nested_Sequential"];
    let inner = c["layers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["class"] == "Sequential")
        .unwrap();
    let tracked: Vec<&str> = inner["weights"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| strip(w.as_str().unwrap()))
        .collect();
    let h5: Vec<&str> = inner["h5_order"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| strip(w.as_str().unwrap()))
        .collect();
    // What keras::layout::groups does to tracking order for a Keras 2 .h5.
    let mut ours = tracked.clone();
    ours.sort_by_key(|w| ckptconv::naming::non_trainable_by_definition(w));
    assert_eq!(ours, h5);
}

/// A model as the facts describe it: tf-keras' layers (names, classes, weights in order,
/// shapes), as a Keras file with a config would give them to ckptconv.
struct Described {
    tensors: Vec<ckptconv::TensorInfo>,
    layers: Vec<ckptconv::Layer>,
}

impl ckptconv::tensor::TensorSource for Described {
    fn format(&self) -> ckptconv::Format {
        ckptconv::Format::KerasH5
    }
    fn path(&self) -> &std::path::Path {
        std::path::Path::new("facts")
    }
    fn tensors(&self) -> &[ckptconv::TensorInfo] {
        &self.tensors
    }
    fn read(&self, _: usize) -> ckptconv::Result<ckptconv::TensorData<'_>> {
        unreachable!("layouts read no data")
    }
    fn layers(&self) -> &[ckptconv::Layer] {
        &self.layers
    }
}

#[test]
fn keras3_groups_are_where_keras3_saves_each_weight() {
    let f = facts();
    let mut checked = 0;
    for (case, c) in f["tf_keras"].as_object().unwrap() {
        let Some(k3) = f["keras3"].get(case) else {
            continue; // CuDNN layers: no Keras 3 class
        };
        if case == "Subclassed" {
            continue; // attribute paths: refused without --like
        }
        let shapes: HashMap<&str, Vec<u64>> = c["model_weights"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| {
                let s = w["shape"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|d| d.as_u64().unwrap())
                    .collect();
                (w["name"].as_str().unwrap(), s)
            })
            .collect();
        let mut src = Described {
            tensors: Vec::new(),
            layers: Vec::new(),
        };
        for l in c["layers"].as_array().unwrap() {
            let mut layer = ckptconv::Layer {
                name: l["name"].as_str().unwrap().to_string(),
                class_name: Some(l["class"].as_str().unwrap().to_string()),
                ordered: true,
                ..Default::default()
            };
            for w in l["weights"].as_array().unwrap() {
                let w = w.as_str().unwrap();
                let shape = shapes[w].clone();
                let n: u64 = shape.iter().product();
                layer.weights.push(ckptconv::keras::Weight {
                    tensor: src.tensors.len(),
                    object_path: None,
                });
                src.tensors.push(ckptconv::TensorInfo {
                    name: w.to_string(),
                    variable: strip(w).to_string(),
                    dtype: ckptconv::DType::Float32,
                    shape,
                    byte_len: n * 4,
                    shard: None,
                    slices: 0,
                    object_path: None,
                });
            }
            src.layers.push(layer);
        }
        let plan: Vec<ckptconv::plan::Planned> = (0..src.tensors.len())
            .map(|i| ckptconv::plan::Planned {
                index: i,
                name: src.tensors[i].variable.clone(),
            })
            .collect();
        let model = ckptconv::keras::describe(&src);
        let got = ckptconv::keras::keras3::layout(&src, &model, &plan)
            .unwrap_or_else(|e| panic!("{case}: {e}"));
        let mut at: HashMap<usize, String> = HashMap::new();
        for g in &got.groups {
            for v in &g.vars {
                at.insert(v.index, format!("{}/vars/{}", g.path, v.name));
            }
        }
        // Keras 3's own file of the same model: the k-th weight (in layer order) at …
        let want: Vec<&str> = k3["weights_h5"]["datasets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["path"].as_str().unwrap())
            .collect();
        let order: Vec<&str> = k3["layers"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|l| {
                l["weights"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|w| w.as_str().unwrap())
            })
            .collect();
        let by_weight: HashMap<&str, &str> = k3["weights_h5"]["datasets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| (d["weight"].as_str().unwrap(), d["path"].as_str().unwrap()))
            .collect();
        assert_eq!(want.len(), src.tensors.len(), "{case}");
        for (i, w) in order.iter().enumerate() {
            assert_eq!(
                at.get(&i).map(String::as_str),
                Some(by_weight[w]),
                "{case}: weight {i} ({w})"
            );
            checked += 1;
        }
    }
    assert!(checked > 80, "{checked}");
}
