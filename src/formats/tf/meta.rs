//! The `.meta` file a TF1 `tf.compat.v1.train.Saver` writes beside its checkpoint: a
//! serialized `MetaGraphDef` (`tensorflow/core/protobuf/meta_graph.proto`).
//!
//! ```text
//! MetaGraphDef
//!   2: graph_def        GraphDef { 1: node NodeDef { 1: name } } (names only)
//!   4: collection_def   map<string, CollectionDef>
//!        "variables"           → bytes_list of serialized VariableDef, creation order
//!        "trainable_variables" → the same, trainable ones only
//! VariableDef
//!   1: variable_name    "dense/kernel:0"
//!   4: save_slice_info_def { 1: full_name }   one part of a partitioned variable
//!   7: trainable
//! ```
//!
//! A partitioned variable's parts (`emb/part_0:0`, …) are listed under the name the
//! checkpoint holds the whole under (their `full_name`, `emb`), once.
//!
//! What it gives: the order in which the graph created its variables — for a Keras model
//! built in graph mode, the order its layers were built in — and which are trainable.

use std::path::{Path, PathBuf};

use prost::Message;

use crate::error::{Error, Result};
use crate::pb::{collection_def, MetaGraphDef, VariableDef};

/// `.meta` files larger than this are not read (their graphs, not their variable lists,
/// make them large; 1 GiB covers every graph we have seen by far).
const MAX_META_BYTES: u64 = 1 << 30;

/// The variables of a TF1 graph.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetaGraph {
    /// Every global variable's name as a checkpoint keys it (without `:0`; a partitioned
    /// variable's full name), in creation order.
    pub variables: Vec<String>,
    /// The trainable ones.
    pub trainable: Vec<String>,
    /// The distinct first two name components of the graph's nodes (`sequential/dense`
    /// for `sequential/dense/MatMul`): a Keras layer called inside a nested model runs its
    /// ops under the model's scope, while its variables keep the layer's own.
    pub scopes: std::collections::BTreeSet<(String, String)>,
}

impl MetaGraph {
    /// The graph's variables that none of `tensors` holds (by variable name or key): what
    /// a checkpoint saved with a narrower `var_list` left out.
    pub fn missing_from<'a>(&'a self, tensors: &[crate::tensor::TensorInfo]) -> Vec<&'a str> {
        let held: std::collections::HashSet<&str> = tensors
            .iter()
            .flat_map(|t| [t.name.as_str(), t.variable.as_str()])
            .collect();
        self.variables
            .iter()
            .map(String::as_str)
            .filter(|v| !held.contains(v))
            .collect()
    }

    /// Whether the graph says if `variable` is trainable: `Some` when the graph has it.
    #[cfg(test)]
    pub fn trainable(&self, variable: &str) -> Option<bool> {
        self.variables
            .iter()
            .any(|v| v == variable)
            .then(|| self.trainable.iter().any(|v| v == variable))
    }
}

/// `PREFIX.meta`.
pub fn meta_path(prefix: &Path) -> PathBuf {
    let mut s = prefix.as_os_str().to_owned();
    s.push(".meta");
    PathBuf::from(s)
}

/// Decode a `MetaGraphDef`'s variable collections.
pub fn parse(path: &Path, bytes: &[u8]) -> Result<MetaGraph> {
    let bad = |w: String| Error::corrupt(path, w);
    let mg = MetaGraphDef::decode(bytes).map_err(|e| bad(format!("MetaGraphDef: {e}")))?;
    let names = |key: &str| -> Result<Vec<String>> {
        let Some(c) = mg.collection_def.get(key) else {
            return Ok(Vec::new());
        };
        let Some(collection_def::Kind::BytesList(list)) = &c.kind else {
            return Err(bad(format!(
                "collection {key:?} is not a list of VariableDefs"
            )));
        };
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for v in &list.value {
            let d = VariableDef::decode(v.as_slice())
                .map_err(|e| bad(format!("collection {key:?}: VariableDef: {e}")))?;
            let name = match d.save_slice_info_def {
                Some(s) if !s.full_name.is_empty() => s.full_name,
                _ => crate::keras::strip_output_index(&d.variable_name).to_string(),
            };
            if seen.insert(name.clone()) {
                out.push(name);
            }
        }
        Ok(out)
    };
    let mut scopes = std::collections::BTreeSet::new();
    for n in mg.graph_def.iter().flat_map(|g| &g.node) {
        let mut parts = n.name.split('/');
        if let (Some(a), Some(b), Some(_)) = (parts.next(), parts.next(), parts.next()) {
            if !scopes.contains(&(a.to_string(), b.to_string())) {
                scopes.insert((a.to_string(), b.to_string()));
            }
        }
    }
    Ok(MetaGraph {
        variables: names("variables")?,
        trainable: names("trainable_variables")?,
        scopes,
    })
}

/// Read `PREFIX.meta` if it exists; `None` when there is none.
pub fn read(prefix: &Path) -> Result<Option<MetaGraph>> {
    let path = meta_path(prefix);
    let file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(&path, "open", e)),
    };
    let len = file
        .metadata()
        .map_err(|e| Error::io(&path, "stat", e))?
        .len();
    if len > MAX_META_BYTES {
        return Err(Error::limit(
            &path,
            format!("{len} bytes, more than the {MAX_META_BYTES} a .meta graph may have here"),
        ));
    }
    if len == 0 {
        return Err(Error::corrupt(&path, "empty file"));
    }
    // SAFETY: the map is only read, and dropped before returning; a file truncated under
    // us could raise SIGBUS, as for every mapped input (TensorFlow never rewrites a .meta).
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(&path, "map", e))?;
    parse(&path, &map).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_in_creation_order() {
        let var = |n: &str, t: bool| {
            VariableDef {
                variable_name: n.into(),
                trainable: t,
                save_slice_info_def: None,
            }
            .encode_to_vec()
        };
        let mut mg = MetaGraphDef::default();
        let list = |v: Vec<Vec<u8>>| crate::pb::CollectionDef {
            kind: Some(collection_def::Kind::BytesList(collection_def::BytesList {
                value: v,
            })),
        };
        mg.collection_def.insert(
            "variables".into(),
            list(vec![
                var("dense_1/kernel:0", true),
                var("global_step:0", false),
            ]),
        );
        mg.collection_def.insert(
            "trainable_variables".into(),
            list(vec![var("dense_1/kernel:0", true)]),
        );
        let got = parse(Path::new("x.meta"), &mg.encode_to_vec()).unwrap();
        assert_eq!(got.variables, ["dense_1/kernel", "global_step"]);
        assert_eq!(got.trainable, ["dense_1/kernel"]);
        assert_eq!(got.trainable("dense_1/kernel"), Some(true));
        assert_eq!(got.trainable("global_step"), Some(false));
        assert_eq!(got.trainable("other"), None);
        // The parts of a partitioned variable are the whole, once.
        let part = |n: &str| {
            VariableDef {
                variable_name: n.into(),
                trainable: true,
                save_slice_info_def: Some(crate::pb::SaveSliceInfoDef {
                    full_name: "emb".into(),
                }),
            }
            .encode_to_vec()
        };
        let mut mg = MetaGraphDef::default();
        mg.collection_def.insert(
            "variables".into(),
            list(vec![part("emb/part_0:0"), part("emb/part_1:0")]),
        );
        let got = parse(Path::new("x.meta"), &mg.encode_to_vec()).unwrap();
        assert_eq!(got.variables, ["emb"]);
        assert!(parse(Path::new("x.meta"), &[0xff, 0xff]).is_err());
    }
}
