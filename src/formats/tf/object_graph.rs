//! The object graph of TF2 object-based checkpoints.
//!
//! `tf.train.Checkpoint` and Keras 2 `save_weights(..., save_format="tf")` store a scalar
//! string tensor `_CHECKPOINTABLE_OBJECT_GRAPH` holding a serialized
//! `TrackableObjectGraph` (`tensorflow/core/protobuf/trackable_object_graph.proto`).
//! Node 0 is the root; `children` are edges `(node_id, local_name)`; each node's
//! `attributes` list the tensors it saved, with their bundle key (`checkpoint_key`) and,
//! for variables, the TF1-style name (`full_name`, e.g. `dense/kernel`).
//!
//! Keys are built from the path of local names from the root
//! (`tensorflow/python/checkpoint/util.py`, `_escape_local_name`): in each local name `.`
//! becomes `..` and `/` becomes `.S`; the attribute part is `/.ATTRIBUTES/<name>`.

use std::collections::{HashMap, VecDeque};

use prost::Message;

use crate::pb::TrackableObjectGraph;

/// The name of the tensor that holds the graph.
pub const OBJECT_GRAPH_KEY: &str = "_CHECKPOINTABLE_OBJECT_GRAPH";

/// What the object graph says about one saved tensor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectTensor {
    /// TF1-style variable name (may be empty for non-variables).
    pub full_name: String,
    /// Path of local names from the root to the owning object, each escaped as in
    /// checkpoint keys and joined by `/` (`net/dense/kernel`, `net/table/a..b.Sc`).
    pub object_path: String,
    /// Node id of the owning object.
    pub node: usize,
}

/// A decoded object graph with a map from checkpoint key to what the graph says.
#[derive(Debug, Clone, Default)]
pub struct ObjectGraph {
    pub proto: TrackableObjectGraph,
    pub by_key: HashMap<String, ObjectTensor>,
    /// Shortest path of escaped local names from the root to each node, if reachable.
    #[cfg_attr(not(feature = "internals"), allow(dead_code))] // the tests and fuzz targets use it
    pub paths: Vec<Option<String>>,
}

/// Escape one local name the way TensorFlow builds checkpoint keys.
pub fn escape_local_name(name: &str) -> String {
    name.replace('.', "..").replace('/', ".S")
}

/// Reverse of [`escape_local_name`]; unknown escapes are kept as they are.
pub fn unescape_local_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '.' {
            match chars.peek() {
                Some('.') => {
                    chars.next();
                    out.push('.');
                }
                Some('S') => {
                    chars.next();
                    out.push('/');
                }
                _ => out.push('.'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

impl ObjectGraph {
    /// Decode the serialized graph. Errors are protobuf decoding errors, as text.
    pub fn decode(bytes: &[u8]) -> Result<ObjectGraph, String> {
        let proto = TrackableObjectGraph::decode(bytes).map_err(|e| e.to_string())?;
        let n = proto.nodes.len();
        // Breadth-first from the root gives each node its shortest path, as TensorFlow's
        // own key assignment does (`ObjectGraphView` walks breadth-first).
        let mut paths: Vec<Option<String>> = vec![None; n];
        if n > 0 {
            paths[0] = Some(String::new());
            let mut queue = VecDeque::from([0usize]);
            while let Some(id) = queue.pop_front() {
                let base = paths[id].clone().unwrap_or_default();
                for child in &proto.nodes[id].children {
                    let Ok(cid) = usize::try_from(child.node_id) else {
                        continue;
                    };
                    if cid >= n || paths[cid].is_some() {
                        continue;
                    }
                    let local = escape_local_name(&child.local_name);
                    paths[cid] = Some(if base.is_empty() {
                        local
                    } else {
                        format!("{base}/{local}")
                    });
                    queue.push_back(cid);
                }
            }
        }
        let mut by_key = HashMap::new();
        for (id, node) in proto.nodes.iter().enumerate() {
            for attr in &node.attributes {
                by_key.insert(
                    attr.checkpoint_key.clone(),
                    ObjectTensor {
                        full_name: attr.full_name.clone(),
                        object_path: paths[id].clone().unwrap_or_default(),
                        node: id,
                    },
                );
            }
        }
        Ok(ObjectGraph {
            proto,
            by_key,
            paths,
        })
    }
}

/// Builds a `TrackableObjectGraph` from object paths, for writing object-based
/// checkpoints. Node 0 is the root; a node is created for every path prefix, with edges
/// in insertion order (which is the order Keras tracks — and loads — weights in).
#[derive(Debug, Default)]
pub struct GraphBuilder {
    graph: TrackableObjectGraph,
    edges: HashMap<(usize, String), usize>,
}

impl GraphBuilder {
    pub fn new() -> Self {
        GraphBuilder {
            graph: TrackableObjectGraph {
                nodes: vec![Default::default()],
            },
            edges: HashMap::new(),
        }
    }

    fn child(&mut self, parent: usize, local: &str) -> usize {
        if let Some(&id) = self.edges.get(&(parent, local.to_string())) {
            return id;
        }
        let id = self.graph.nodes.len();
        self.graph.nodes.push(Default::default());
        self.graph.nodes[parent].children.push(
            crate::pb::trackable_object_graph::trackable_object::ObjectReference {
                node_id: id as i32,
                local_name: local.to_string(),
            },
        );
        self.edges.insert((parent, local.to_string()), id);
        id
    }

    /// Add a variable at `path` (unescaped local names); returns its checkpoint key.
    pub fn add_variable(&mut self, path: &[String], full_name: &str) -> String {
        let mut node = 0;
        for local in path {
            node = self.child(node, local);
        }
        let key = object_key(path);
        self.graph.nodes[node].attributes.push(
            crate::pb::trackable_object_graph::trackable_object::SerializedTensor {
                name: "VARIABLE_VALUE".into(),
                full_name: full_name.to_string(),
                checkpoint_key: key.clone(),
                optional_restore: false,
            },
        );
        key
    }

    /// The serialized graph.
    pub fn encode(&self) -> Vec<u8> {
        self.graph.encode_to_vec()
    }
}

/// The checkpoint key of a variable at `path`: escaped local names joined by `/`, then
/// `/.ATTRIBUTES/VARIABLE_VALUE`.
pub fn object_key(path: &[String]) -> String {
    let mut key: Vec<String> = path.iter().map(|p| escape_local_name(p)).collect();
    key.push(".ATTRIBUTES".into());
    key.push("VARIABLE_VALUE".into());
    key.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_round_trips() {
        assert_eq!(escape_local_name("a.b/c"), "a..b.Sc");
        assert_eq!(unescape_local_name("a..b.Sc"), "a.b/c");
        assert_eq!(unescape_local_name("x.y"), "x.y");
        assert_eq!(unescape_local_name(".ATTRIBUTES"), ".ATTRIBUTES");
    }

    #[test]
    fn builder_round_trips_through_the_decoder() {
        let mut b = GraphBuilder::new();
        let k = b.add_variable(
            &["layer_with_weights-0".into(), "kernel".into()],
            "dense/kernel",
        );
        assert_eq!(k, "layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE");
        b.add_variable(
            &["layer_with_weights-0".into(), "bias".into()],
            "dense/bias",
        );
        b.add_variable(&["odd".into(), "a.b/c".into()], "x");
        let g = ObjectGraph::decode(&b.encode()).unwrap();
        assert_eq!(g.by_key[&k].full_name, "dense/kernel");
        assert_eq!(g.by_key[&k].object_path, "layer_with_weights-0/kernel");
        assert!(g
            .by_key
            .contains_key("odd/a..b.Sc/.ATTRIBUTES/VARIABLE_VALUE"));
        assert_eq!(g.proto.nodes[1].children.len(), 2);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(ObjectGraph::decode(&[0xff, 0xff, 0xff]).is_err());
        let g = ObjectGraph::decode(&[]).unwrap();
        assert!(g.by_key.is_empty());
    }
}
