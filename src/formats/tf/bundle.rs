//! Reading a TensorBundle checkpoint: `PREFIX.index` plus `PREFIX.data-%05d-of-%05d`.
//!
//! Defined by `tensorflow/core/util/tensor_bundle/tensor_bundle.cc` and
//! `tensorflow/core/protobuf/tensor_bundle.proto`:
//!
//! ```text
//! PREFIX.index       sorted table (see table.rs):
//!                      ""        -> BundleHeaderProto {num_shards, endianness, version}
//!                      00 …      -> BundleEntryProto of one slice of a partitioned variable
//!                      "name"    -> BundleEntryProto {dtype, shape, shard_id, offset, size,
//!                                                     crc32c (masked), slices}
//! PREFIX.data-K-of-N raw bytes; tensor = bytes [offset, offset+size) of shard `shard_id`
//!   numeric:  elements × dtype size bytes, row-major, in the header's endianness
//!   string:   varint64 length × elements | u32le masked crc32c of the lengths (each fed to
//!             the crc as u32le, or u64le if it does not fit) | the string bytes;
//!             the entry crc continues from the length crc over the 4 checksum bytes and
//!             then the string bytes
//! ```
//!
//! Opening reads only the index; data shards are memory-mapped on first use. Every field is
//! validated with checked arithmetic before it is used to index or allocate, and every
//! tensor's crc32c is checked when its bytes are read. Partitioned variables are listed
//! under their full name only (as `tf.train.list_variables` does) and reassembled on read.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use prost::Message;

use super::coding;
use super::object_graph::{ObjectGraph, OBJECT_GRAPH_KEY};
use super::slice::{self, Extent};
use super::strings::BundleStrings;
use super::table::Table;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::formats::filebytes::{FileBytes, ReadOptions};
use crate::naming;
use crate::pb::{BundleEntryProto, BundleHeaderProto};
use crate::tensor::{
    num_elements, Crc32cCheck, FileRange, Format, Layer, StringReader, TensorData, TensorInfo,
    TensorSource,
};

/// More shards than this is not a checkpoint TensorFlow would write (`%05d` file names).
pub const MAX_SHARDS: i32 = 100_000;

/// The path of data shard `id` of `num` for `prefix`.
pub fn shard_path(prefix: &Path, id: u32, num: u32) -> PathBuf {
    let mut s = prefix.as_os_str().to_os_string();
    s.push(format!(".data-{id:05}-of-{num:05}"));
    PathBuf::from(s)
}

/// The `.index` path for `prefix`.
pub fn index_path(prefix: &Path) -> PathBuf {
    let mut s = prefix.as_os_str().to_os_string();
    s.push(".index");
    PathBuf::from(s)
}

/// Where one stored run of bytes lives.
#[derive(Debug, Clone, Copy)]
struct Loc {
    shard: u32,
    offset: u64,
    size: u64,
    /// Masked crc32c as stored.
    crc: u32,
}

#[derive(Debug, Clone)]
enum Stored {
    Plain(Loc),
    Sliced(Vec<(Vec<Extent>, Loc)>),
}

/// A TensorFlow checkpoint opened for reading.
pub struct Bundle {
    prefix: PathBuf,
    num_shards: u32,
    big_endian: bool,
    tensors: Vec<TensorInfo>,
    stored: Vec<Stored>,
    shards: Vec<OnceLock<std::result::Result<FileBytes, (std::io::ErrorKind, String)>>>,
    /// How data files are read (mapped or not) and the allocation budget.
    opts: ReadOptions,
    object_graph: Option<ObjectGraph>,
    layers: Vec<Layer>,
    /// The `.meta` graph beside a TF1 checkpoint, when there is one and it decodes.
    meta: Option<super::meta::MetaGraph>,
    layer_order: crate::keras::Order,
    /// The layers' weights are in Keras 2 `.h5` order (a record made from such a file).
    h5_order: bool,
    /// The SavedModel's `keras_metadata.pb`, when its layers came from it.
    keras_metadata: Option<PathBuf>,
    /// The model's config from `keras_metadata.pb` (its root's `model_config`).
    keras_model_config: Option<String>,
}

impl std::fmt::Debug for Bundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bundle")
            .field("prefix", &self.prefix)
            .field("num_shards", &self.num_shards)
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

fn key_str(key: &[u8]) -> String {
    String::from_utf8_lossy(key).into_owned()
}

#[cfg_attr(not(feature = "internals"), allow(dead_code))] // the tests and fuzz targets use it
impl Bundle {
    /// Open the checkpoint at `prefix` (`prefix.index` must exist). Reads and validates the
    /// whole index; touches no data shard except to read the object graph.
    pub fn open(prefix: &Path) -> Result<Bundle> {
        Self::open_with(prefix, ReadOptions::default())
    }

    /// [`open`](Self::open), reading files as `opts` says.
    pub fn open_with(prefix: &Path, opts: ReadOptions) -> Result<Bundle> {
        let index = index_path(prefix);
        let file = FileBytes::open(&index, opts).map_err(|e| Error::io(&index, "open", e))?;
        let table = match file.get(0, file.len(), &index, "(index)") {
            Some(bytes) => Table::parse(&bytes?),
            None => Table::parse(&[]),
        }
        .map_err(|e| Error::corrupt(&index, e.0))?;
        let mut bundle = Self::from_table(prefix, &index, table, opts)?;
        // A TF1 checkpoint's graph says in which order the model created its variables.
        // One that cannot be read only leaves that order unknown (Keras layouts are then
        // refused), so it is not an error here.
        if bundle.object_graph.is_none() {
            bundle.meta = super::meta::read(prefix).ok().flatten();
        }
        bundle.attach_keras_metadata();
        Ok(bundle)
    }

    /// Parse `.index` bytes for the checkpoint `prefix` (data files are opened only when a
    /// tensor is read). The entry point of the `bundle_index` fuzz target.
    pub fn from_index_bytes(prefix: &Path, bytes: &[u8]) -> Result<Bundle> {
        let index = index_path(prefix);
        let table = Table::parse(bytes).map_err(|e| Error::corrupt(&index, e.0))?;
        Self::from_table(prefix, &index, table, ReadOptions::default())
    }

    fn from_table(prefix: &Path, index: &Path, table: Table, opts: ReadOptions) -> Result<Bundle> {
        let bad = |what: String| Error::corrupt(index, what);
        let mut entries = table.entries.into_iter();
        let header = match entries.next() {
            Some((k, v)) if k.is_empty() => BundleHeaderProto::decode(v.as_slice())
                .map_err(|e| bad(format!("bundle header: {e}")))?,
            _ => return Err(bad("missing bundle header entry (the empty key)".into())),
        };
        if header.num_shards <= 0 || header.num_shards > MAX_SHARDS {
            return Err(bad(format!(
                "bundle header: num_shards {} is out of range (1..={MAX_SHARDS})",
                header.num_shards
            )));
        }
        let num_shards = header.num_shards as u32;
        let big_endian = match header.endianness {
            0 => false,
            1 => true,
            e => return Err(bad(format!("bundle header: unknown endianness {e}"))),
        };
        if let Some(v) = &header.version {
            if v.min_consumer > 1 {
                return Err(Error::unsupported(
                    index,
                    format!(
                        "bundle version: needs a reader of version {} or newer (this reads version 1)",
                        v.min_consumer
                    ),
                ));
            }
            if v.bad_consumers.contains(&1) {
                return Err(Error::unsupported(
                    index,
                    "bundle version: this checkpoint disallows version-1 readers",
                ));
            }
        }

        // Decode every entry, then set aside the ones that are slices of another.
        let mut decoded: Vec<(Vec<u8>, BundleEntryProto)> = Vec::new();
        for (k, v) in entries {
            let e = BundleEntryProto::decode(v.as_slice())
                .map_err(|e| Error::corrupt_tensor(index, &key_str(&k), format!("entry: {e}")))?;
            decoded.push((k, e));
        }
        let by_key: HashMap<&[u8], usize> = decoded
            .iter()
            .enumerate()
            .map(|(i, (k, _))| (k.as_slice(), i))
            .collect();
        let mut slice_keys: HashSet<Vec<u8>> = HashSet::new();
        for (k, e) in &decoded {
            for s in &e.slices {
                slice_keys.insert(slice::encode_slice_key(k, &slice::extents(s)));
            }
        }

        let mut tensors = Vec::new();
        let mut stored = Vec::new();
        for (k, e) in &decoded {
            if slice_keys.contains(k) {
                continue;
            }
            let name = key_str(k);
            let tbad = |what: String| Error::corrupt_tensor(index, &name, what);
            let dtype = DType::from_tf(e.dtype).map_err(|known| match known {
                Some(n) => Error::unsupported_tensor(index, &name, format!("dtype {n}")),
                None => tbad(format!("unknown dtype {}", e.dtype)),
            })?;
            let shape = parse_shape(e.shape.as_ref()).map_err(&tbad)?;
            let elements = num_elements(&shape)
                .ok_or_else(|| tbad(format!("shape {shape:?} has too many elements")))?;
            let (st, byte_len, shard) = if e.slices.is_empty() {
                let loc = loc_of(e, num_shards).map_err(&tbad)?;
                let byte_len = check_size(dtype, elements, loc.size).map_err(&tbad)?;
                (Stored::Plain(loc), byte_len, Some(loc.shard))
            } else {
                let Some(esize) = dtype.size() else {
                    return Err(Error::unsupported_tensor(
                        index,
                        &name,
                        "partitioned string tensors",
                    ));
                };
                let mut parts = Vec::new();
                let mut covered: u64 = 0;
                for s in &e.slices {
                    let ext = slice::extents(s);
                    let count = slice::check_extents(&shape, &ext).map_err(&tbad)?;
                    let skey = slice::encode_slice_key(k, &ext);
                    let Some(&si) = by_key.get(skey.as_slice()) else {
                        return Err(tbad(format!("slice {} has no entry", slice::show(&ext))));
                    };
                    let se = &decoded[si].1;
                    if se.dtype != e.dtype {
                        return Err(tbad(format!(
                            "slice {} has dtype {} but the variable has {}",
                            slice::show(&ext),
                            se.dtype,
                            e.dtype
                        )));
                    }
                    let loc = loc_of(se, num_shards)
                        .map_err(|w| tbad(format!("slice {}: {w}", slice::show(&ext))))?;
                    check_size(dtype, count, loc.size)
                        .map_err(|w| tbad(format!("slice {}: {w}", slice::show(&ext))))?;
                    covered = covered
                        .checked_add(count)
                        .ok_or_else(|| tbad("slice element counts overflow".into()))?;
                    parts.push((ext, loc));
                }
                if covered != elements {
                    return Err(tbad(format!(
                        "slices hold {covered} elements but the shape {shape:?} has {elements}"
                    )));
                }
                // As many elements as the shape and no two slices overlapping: the slices
                // tile the tensor exactly (no element read twice, none left unread).
                if let Some((a, b)) =
                    slice::first_overlap(&shape, parts.iter().map(|p| p.0.as_slice()))
                {
                    return Err(tbad(format!(
                        "slices {} and {} overlap",
                        slice::show(&parts[a].0),
                        slice::show(&parts[b].0)
                    )));
                }
                let byte_len = elements
                    .checked_mul(esize as u64)
                    .ok_or_else(|| tbad("byte size overflows".into()))?;
                let first = parts[0].1.shard;
                let shard = parts.iter().all(|p| p.1.shard == first).then_some(first);
                (Stored::Sliced(parts), byte_len, shard)
            };
            tensors.push(TensorInfo {
                variable: name.clone(),
                name,
                dtype,
                shape,
                byte_len,
                shard,
                slices: e.slices.len(),
                object_path: None,
            });
            stored.push(st);
        }

        let mut bundle = Bundle {
            prefix: prefix.to_path_buf(),
            num_shards,
            big_endian,
            tensors,
            stored,
            shards: (0..num_shards).map(|_| OnceLock::new()).collect(),
            opts,
            object_graph: None,
            layers: Vec::new(),
            meta: None,
            layer_order: crate::keras::Order::Recorded,
            h5_order: false,
            keras_metadata: None,
            keras_model_config: None,
        };
        bundle.attach_object_graph()?;
        if !header.ckptconv_layers.is_empty() {
            // Our own record of the Keras layers wins: it also has names and classes.
            let index: HashMap<&str, usize> = bundle
                .tensors
                .iter()
                .enumerate()
                .map(|(i, t)| (t.name.as_str(), i))
                .collect();
            if let Some((layers, order, h5_order)) =
                crate::keras::record::decode(&header.ckptconv_layers, &index)
            {
                bundle.layers = layers;
                bundle.layer_order = order;
                bundle.h5_order = h5_order;
            }
        }
        Ok(bundle)
    }

    /// Read `_CHECKPOINTABLE_OBJECT_GRAPH`, if present, and fill in variable names and
    /// object paths.
    ///
    /// The graph decides every name this checkpoint is listed and converted under (a
    /// tf-keras `save_weights` checkpoint is `dense_a/kernel` only through it), so a graph
    /// that cannot be read is an error of the whole checkpoint, not a tensor to skip: its
    /// extent is checked against the data file and its crc32c against the entry, and
    /// bytes that do not parse as a `TrackableObjectGraph` are refused. Falling back to
    /// names derived from the keys would give other names with exit 0.
    fn attach_object_graph(&mut self) -> Result<()> {
        let Some(i) = self.find(OBJECT_GRAPH_KEY) else {
            for t in &mut self.tensors {
                t.variable = naming::variable_from_tf_key(&t.name);
            }
            return Ok(());
        };
        let why = "; the object graph names every variable, so the checkpoint cannot be read without it";
        let file = match self.tensors[i].shard {
            Some(s) => shard_path(&self.prefix, s, self.num_shards),
            None => self.prefix.clone(),
        };
        let strings = match self.read(i) {
            Ok(TensorData::Strings(s)) => s,
            Ok(TensorData::Bytes(_)) => {
                return Err(Error::corrupt_tensor(
                    &file,
                    OBJECT_GRAPH_KEY,
                    format!("dtype {} (a string expected){why}", self.tensors[i].dtype),
                ))
            }
            Err(mut e) => {
                if let Error::Input { what, .. } = &mut e {
                    what.push_str(why);
                }
                return Err(e);
            }
        };
        let [bytes] = strings.as_slice() else {
            return Err(Error::corrupt_tensor(
                &file,
                OBJECT_GRAPH_KEY,
                format!(
                    "{} strings (one expected){why}",
                    strings.len()
                ),
            ));
        };
        let graph = ObjectGraph::decode(bytes).map_err(|e| {
            Error::corrupt_tensor(
                &file,
                OBJECT_GRAPH_KEY,
                format!("not a TrackableObjectGraph ({e}){why}"),
            )
        })?;
        let entries: Vec<(&str, Option<&str>)> = self
            .tensors
            .iter()
            .map(|t| {
                let full = graph.by_key.get(&t.name).map(|o| o.full_name.as_str());
                (t.name.as_str(), full)
            })
            .collect();
        let names = naming::tf2_variable_names(&entries);
        for (t, name) in self.tensors.iter_mut().zip(names) {
            t.variable = name;
            t.object_path = graph.by_key.get(&t.name).map(|o| o.object_path.clone());
        }
        (self.layers, self.layer_order) = keras_layers(&graph, &self.tensors);
        self.object_graph = Some(graph);
        Ok(())
    }

    /// A tf-keras SavedModel's `keras_metadata.pb` (`SAVED_MODEL/keras_metadata.pb` beside
    /// `variables/variables`): each layer's name, class, trainable flag and config, by its
    /// object path (`root.layer_with_weights-N`). It gives the layers from the object graph
    /// what a checkpoint alone does not record: names, classes, and a nested model's own
    /// layers and frozen flags. A file that cannot be read is not used.
    fn attach_keras_metadata(&mut self) {
        let path = self.keras_metadata_path();
        if self.layers.is_empty() || self.layer_order != crate::keras::Order::Recorded {
            return;
        }
        let Some(path) = path else { return };
        let Ok(bytes) = std::fs::read(&path) else {
            return;
        };
        let Ok(md) = crate::pb::KerasSavedMetadata::decode(bytes.as_slice()) else {
            return;
        };
        let by_path: HashMap<&str, &str> = md
            .nodes
            .iter()
            .map(|n| (n.node_path.as_str(), n.metadata.as_str()))
            .collect();
        // Only a model saved as the SavedModel's root has its layers at root.layer_with_weights-N.
        if !by_path.contains_key("root") {
            return;
        }
        for (n, layer) in self.layers.iter_mut().enumerate() {
            let Some(json) = by_path.get(format!("root.layer_with_weights-{n}").as_str()) else {
                continue;
            };
            let Ok(v) = serde_json::from_str::<serde_json::Value>(json) else {
                continue;
            };
            let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
            if let Some(name) = s("name") {
                layer.name = name;
            }
            layer.class_name = s("class_name");
            layer.trainable = crate::keras::config::effective_trainable(
                v.get("trainable").and_then(|t| t.as_bool()),
                &v,
            );
            layer.activation = v
                .pointer("/config/activation")
                .and_then(crate::keras::config::activation_name);
            // The nested model's config, wrapped as a model holding it, for the one
            // reading of nested configs.
            let wrapped = serde_json::json!({"config": {"layers": [v]}}).to_string();
            layer.inner = crate::keras::config::inner_layers(
                Some(&wrapped),
                &layer.name,
                layer.class_name.as_deref(),
            );
        }
        // The whole model's config, as a full-model .h5 holds it (tuples as lists).
        self.keras_model_config = by_path
            .get("root")
            .and_then(|j| serde_json::from_str::<serde_json::Value>(j).ok())
            .and_then(|v| v.get("model_config").cloned())
            .map(|mut c| {
                untuple(&mut c, 0);
                c.to_string()
            });
        self.keras_metadata = Some(path);
    }

    fn keras_metadata_path(&self) -> Option<PathBuf> {
        let vars = self.prefix.parent()?;
        let is_saved_model =
            self.prefix.file_name()? == "variables" && vars.file_name()? == "variables";
        let p = vars.parent()?.join("keras_metadata.pb");
        (is_saved_model && p.is_file() && p.metadata().ok()?.len() <= 64 << 20).then_some(p)
    }

    /// The checkpoint prefix.
    pub fn prefix(&self) -> &Path {
        &self.prefix
    }

    /// Number of data shards.
    pub fn num_shards(&self) -> u32 {
        self.num_shards
    }

    /// Whether tensor data is stored big-endian (it is byte-swapped on read).
    pub fn is_big_endian(&self) -> bool {
        self.big_endian
    }

    /// The decoded object graph of a TF2 object-based checkpoint.
    pub fn object_graph(&self) -> Option<&ObjectGraph> {
        self.object_graph.as_ref()
    }

    /// Data file `id`, opened (and mapped, unless the options say not to) on first use.
    fn shard(&self, id: u32) -> Result<(&FileBytes, PathBuf)> {
        let path = shard_path(&self.prefix, id, self.num_shards);
        let cell = &self.shards[id as usize];
        let loaded = cell.get_or_init(|| {
            FileBytes::open(&path, self.opts).map_err(|e| (e.kind(), e.to_string()))
        });
        match loaded {
            Ok(s) => Ok((s, path)),
            Err((kind, msg)) => Err(Error::io(
                &path,
                "open",
                std::io::Error::new(*kind, msg.clone()),
            )),
        }
    }

    /// Data file of `loc`, with `loc`'s extent checked to lie inside it.
    fn shard_holding(&self, name: &str, loc: &Loc, what: &str) -> Result<(&FileBytes, PathBuf)> {
        let (data, path) = self.shard(loc.shard)?;
        if loc
            .offset
            .checked_add(loc.size)
            .is_none_or(|end| end > data.len())
        {
            return Err(Error::corrupt_tensor(
                &path,
                name,
                format!(
                    "{what}offset {} + size {} is past the end of the data file ({} bytes; truncated?)",
                    loc.offset,
                    loc.size,
                    data.len()
                ),
            )
            .with_kind(crate::error::InputErrorKind::Truncated));
        }
        Ok((data, path))
    }

    /// The stored bytes of `loc`, bounds-checked (not checksummed).
    fn stored_bytes(&self, name: &str, loc: &Loc, what: &str) -> Result<Cow<'_, [u8]>> {
        let (data, path) = self.shard_holding(name, loc, what)?;
        data.get(loc.offset, loc.size, &path, name)
            .expect("extent checked by shard_holding")
    }

    /// The stored crc32c of `loc`, to check its bytes against.
    fn crc_check(&self, name: &str, loc: &Loc, what: &str) -> Crc32cCheck {
        Crc32cCheck {
            expected: coding::unmask(loc.crc),
            file: shard_path(&self.prefix, loc.shard, self.num_shards),
            tensor: name.to_string(),
            part: what.to_string(),
        }
    }

    fn checked_numeric(&self, name: &str, loc: &Loc, what: &str) -> Result<Cow<'_, [u8]>> {
        let bytes = self.stored_bytes(name, loc, what)?;
        self.crc_check(name, loc, what)
            .check(coding::crc32c(&bytes))?;
        Ok(bytes)
    }

    /// String tensor `info` stored at `loc`, its lengths read and checked, ready to hand
    /// out its elements one at a time (read with `pread`, never mapped).
    fn string_reader(&self, info: &TensorInfo, loc: &Loc) -> Result<BundleStrings<'_>> {
        let path = shard_path(&self.prefix, loc.shard, self.num_shards);
        if self.big_endian {
            return Err(Error::unsupported_tensor(
                &path,
                &info.name,
                "string tensors in big-endian checkpoints",
            ));
        }
        // Bounds-checked against the data file (no byte is read here).
        let (data, _) = self.shard_holding(&info.name, loc, "")?;
        let file = data.file();
        let n = info.num_elements().unwrap_or(u64::MAX);
        BundleStrings::open(file, &path, &info.name, (loc.offset, loc.size), n, loc.crc)
    }

    fn read_strings(&self, info: &TensorInfo, loc: &Loc) -> Result<Vec<Vec<u8>>> {
        let mut r = self.string_reader(info, loc)?;
        let mut out = Vec::new();
        while let Some(s) = r.next()? {
            out.push(s.to_vec());
        }
        Ok(out)
    }

    fn to_host(&self, dtype: DType, bytes: &[u8]) -> Vec<u8> {
        let mut v = bytes.to_vec();
        if self.big_endian {
            let unit = dtype.swap_unit().unwrap_or(1);
            if unit > 1 {
                for chunk in v.chunks_exact_mut(unit) {
                    chunk.reverse();
                }
            }
        }
        v
    }
}

/// The node of the Keras model in an object graph: the root when it has
/// `layer_with_weights-N` children (`model.save_weights`, a SavedModel), else the one
/// child of the root that has (`tf.train.Checkpoint(model=m)` → `model`). `None` when
/// there is none, or several (a checkpoint of two models).
fn model_node(g: &ObjectGraph) -> Option<usize> {
    let has_layers = |id: usize| {
        g.proto.nodes.get(id).is_some_and(|n| {
            n.children
                .iter()
                .any(|c| c.local_name.starts_with("layer_with_weights-"))
        })
    };
    if has_layers(0) {
        return Some(0);
    }
    let root = g.proto.nodes.first()?;
    let mut found = root
        .children
        .iter()
        .filter_map(|c| usize::try_from(c.node_id).ok())
        .filter(|&id| has_layers(id));
    let first = found.next()?;
    found.next().is_none().then_some(first)
}

/// Children that list an object's variables again (SavedModels track them twice).
const LIST_CHILDREN: &[&str] = &[
    "variables",
    "trainable_variables",
    "non_trainable_variables",
    "_all_variables",
    "keras_api",
    "weights",
    "trainable_weights",
    "non_trainable_weights",
];

/// Children of a model node that are its state, not its layers.
const NOT_LAYERS: &[&str] = &[
    "optimizer",
    "save_counter",
    "step",
    "global_step",
    "keras_api",
    "variables",
    "trainable_variables",
    "non_trainable_variables",
    "_all_variables",
    "signatures",
    "root",
    "_default_save_signature",
];

/// tf-keras' SavedModel metadata writes tuples as `{"class_name": "__tuple__", "items":
/// [...]}` (`tf_keras/src/saving/legacy/saved_model/json_utils.py`) and marks objects
/// shared between layers with `shared_object_id` (`serialization.SharedObjectConfig`, for
/// rebuilding one Python object, not part of any layer's config); a model config
/// elsewhere has lists and no such marks.
fn untuple(v: &mut serde_json::Value, depth: usize) {
    if depth > 256 {
        return;
    }
    if let Some(o) = v.as_object_mut() {
        if o.get("class_name").and_then(|c| c.as_str()) == Some("__tuple__") {
            if let Some(items) = o.remove("items") {
                *v = items;
                untuple(v, depth + 1);
                return;
            }
        }
        o.remove("shared_object_id");
        for x in o.values_mut() {
            untuple(x, depth + 1);
        }
    } else if let Some(a) = v.as_array_mut() {
        for x in a {
            untuple(x, depth + 1);
        }
    }
}

/// The layers of a Keras model saved in TF format, and how their order is known.
///
/// A Functional or Sequential model (`model.save_weights`, a SavedModel, or under
/// `tf.train.Checkpoint(model=m)`): the model node's `layer_with_weights-N` children in
/// order of N ([`Order::Recorded`](crate::keras::Order)). A subclassed model (transformers'
/// `TFBertModel`: `bert/…`): the model node's attribute children that hold variables, in
/// tracking order ([`Order::Created`](crate::keras::Order)), each named by its attribute.
/// Each layer has the variables of its subtree in tracking order (children order, depth
/// first), which is the order Keras loads weights in, and each variable's object path
/// below the layer's node.
fn keras_layers(g: &ObjectGraph, tensors: &[TensorInfo]) -> (Vec<Layer>, crate::keras::Order) {
    let by_name: HashMap<&str, usize> = tensors
        .iter()
        .enumerate()
        .map(|(i, t)| (t.name.as_str(), i))
        .collect();
    let Some(model) = model_node(g) else {
        return (subclassed_layers(g, &by_name), crate::keras::Order::Created);
    };
    let mut numbered: Vec<(u64, usize)> = g.proto.nodes[model]
        .children
        .iter()
        .filter_map(|c| {
            let n = c
                .local_name
                .strip_prefix("layer_with_weights-")?
                .parse()
                .ok()?;
            Some((n, usize::try_from(c.node_id).ok()?))
        })
        .collect();
    numbered.sort();
    let mut layers = Vec::new();
    for (n, node) in numbered {
        let weights = subtree_weights(g, node, &by_name);
        // The layer's name is the scope its weights share: each weight's variable name
        // without as many trailing components as its object path below the layer has
        // (`conv/kernel` at `kernel` → `conv`; `lstm/lstm_cell/kernel` at `cell/kernel` →
        // `lstm`; `Conv/BatchNorm/gamma` at `gamma` → `Conv/BatchNorm`). A nested model's
        // weights share none, and the checkpoint does not record its name; neither does
        // it when two layers would get the same name.
        let scope = |w: &crate::keras::Weight| -> Option<String> {
            let v: Vec<&str> = tensors[w.tensor].variable.split('/').collect();
            let below = w.object_path.as_deref()?.split('/').count();
            (v.len() > below).then(|| v[..v.len() - below].join("/"))
        };
        // (tf-keras names a TimeDistributed's weights `time_distributed/kernel` although
        // they sit at `layer/kernel`: then the first component, when all share it.)
        let first = |w: &crate::keras::Weight| {
            tensors[w.tensor]
                .variable
                .split('/')
                .next()
                .map(str::to_string)
        };
        let shared = |f: &dyn Fn(&crate::keras::Weight) -> Option<String>| {
            let v = weights.first().and_then(f)?;
            (!v.is_empty() && weights.iter().all(|w| f(w).as_deref() == Some(v.as_str())))
                .then_some(v)
        };
        let name = shared(&scope)
            .or_else(|| shared(&first))
            .filter(|f| !layers.iter().any(|l: &Layer| &l.name == f))
            .unwrap_or_else(|| format!("layer_with_weights-{n}"));
        layers.push(Layer {
            name,
            weights,
            ordered: true,
            ..Layer::default()
        });
    }
    (layers, crate::keras::Order::Recorded)
}

/// A subclassed model's layers: the children of the model node (the root, or its child
/// `model` under `tf.train.Checkpoint(model=m)`) other than state, that hold variables.
fn subclassed_layers(g: &ObjectGraph, by_name: &HashMap<&str, usize>) -> Vec<Layer> {
    let Some(root) = g.proto.nodes.first() else {
        return Vec::new();
    };
    let model = root
        .children
        .iter()
        .find(|c| c.local_name == "model")
        .and_then(|c| usize::try_from(c.node_id).ok())
        .filter(|&id| id < g.proto.nodes.len())
        .unwrap_or(0);
    // A list attribute (`self.blocks = [Block(), Block()]`) is a node whose children are
    // numbered; each element is a layer of the model (Keras' `model.layers` flattens it),
    // tracked at `blocks/0`, `blocks/1`.
    let mut tracked: Vec<(String, usize)> = Vec::new();
    for c in &g.proto.nodes[model].children {
        if NOT_LAYERS.contains(&c.local_name.as_str()) {
            continue;
        }
        let Ok(id) = usize::try_from(c.node_id) else {
            continue;
        };
        let node = g.proto.nodes.get(id);
        let is_list = node.is_some_and(|n| {
            n.attributes.is_empty()
                && !n.children.is_empty()
                && n.children
                    .iter()
                    .all(|e| e.local_name.parse::<usize>().is_ok())
        });
        if is_list {
            for e in &node.expect("checked").children {
                if let Ok(eid) = usize::try_from(e.node_id) {
                    tracked.push((format!("{}/{}", c.local_name, e.local_name), eid));
                }
            }
        } else {
            tracked.push((c.local_name.clone(), id));
        }
    }
    tracked
        .into_iter()
        .filter_map(|(name, id)| {
            let weights = subtree_weights(g, id, by_name);
            (!weights.is_empty()).then(|| Layer {
                name: name.clone(),
                weights,
                ordered: true,
                tracked_as: Some(name),
                ..Layer::default()
            })
        })
        .collect()
}

/// The variables below `node`, depth first in children order, with their object paths
/// below it; `seen` guards against cycles in hostile graphs.
fn subtree_weights(
    g: &ObjectGraph,
    node: usize,
    by_name: &HashMap<&str, usize>,
) -> Vec<crate::keras::Weight> {
    let mut weights = Vec::new();
    let mut seen = HashSet::new();
    let mut stack: Vec<(usize, String)> = vec![(node, String::new())];
    while let Some((id, path)) = stack.pop() {
        if id >= g.proto.nodes.len() || !seen.insert(id) {
            continue;
        }
        let obj = &g.proto.nodes[id];
        for a in &obj.attributes {
            if a.name == "VARIABLE_VALUE" {
                if let Some(&i) = by_name.get(a.checkpoint_key.as_str()) {
                    weights.push(crate::keras::Weight {
                        tensor: i,
                        object_path: Some(path.clone()),
                    });
                }
            }
        }
        // Attributes before lists: a SavedModel's layer also tracks its weights in
        // `variables/0`, `trainable_variables/0`…; the attribute (`kernel`) is where
        // tf-keras restores them, and gives the weight order.
        let mut children: Vec<_> = obj.children.iter().collect();
        children.sort_by_key(|c| LIST_CHILDREN.contains(&c.local_name.as_str()));
        for c in children.into_iter().rev() {
            if let Ok(cid) = usize::try_from(c.node_id) {
                let local = super::object_graph::escape_local_name(&c.local_name);
                let p = if path.is_empty() {
                    local
                } else {
                    format!("{path}/{local}")
                };
                stack.push((cid, p));
            }
        }
    }
    weights
}

/// The sub-slice `[offset, offset+size)` of `data`, if it lies within it.
pub(crate) fn parse_shape(
    shape: Option<&crate::pb::TensorShapeProto>,
) -> std::result::Result<Vec<u64>, String> {
    let Some(shape) = shape else {
        return Ok(Vec::new());
    };
    if shape.unknown_rank {
        return Err("shape has unknown rank".into());
    }
    shape
        .dim
        .iter()
        .enumerate()
        .map(|(i, d)| {
            u64::try_from(d.size)
                .map_err(|_| format!("shape dimension {i} is negative ({})", d.size))
        })
        .collect()
}

fn loc_of(e: &BundleEntryProto, num_shards: u32) -> std::result::Result<Loc, String> {
    let shard = u32::try_from(e.shard_id)
        .ok()
        .filter(|&s| s < num_shards)
        .ok_or_else(|| format!("shard_id {} is out of range (0..{num_shards})", e.shard_id))?;
    let offset = u64::try_from(e.offset).map_err(|_| format!("offset {} is negative", e.offset))?;
    let size = u64::try_from(e.size).map_err(|_| format!("size {} is negative", e.size))?;
    offset
        .checked_add(size)
        .ok_or_else(|| format!("offset {offset} + size {size} overflows"))?;
    Ok(Loc {
        shard,
        offset,
        size,
        crc: e.crc32c,
    })
}

/// Check the stored size against the shape; returns the tensor's byte length.
fn check_size(dtype: DType, elements: u64, size: u64) -> std::result::Result<u64, String> {
    match dtype.size() {
        Some(es) => {
            let want = elements
                .checked_mul(es as u64)
                .ok_or_else(|| format!("{elements} elements of {dtype} overflow the byte size"))?;
            if want != size {
                return Err(format!(
                    "size {size} does not match the shape ({elements} elements of {dtype} = {want} bytes)"
                ));
            }
            Ok(size)
        }
        None => {
            // At least one length byte per element, plus the 4-byte length checksum.
            let min = elements.saturating_add(4);
            if size < min {
                return Err(format!(
                    "size {size} is too small for {elements} strings (at least {min} bytes)"
                ));
            }
            Ok(size)
        }
    }
}

/// Encode a string tensor the way TensorFlow stores it (see the module docs); returns the
/// bytes and the unmasked entry crc32c.
pub fn encode_strings(strings: &[Vec<u8>]) -> (Vec<u8>, u32) {
    let total: usize = strings.iter().map(|s| s.len() + 10).sum::<usize>() + 4;
    let mut out = Vec::with_capacity(total);
    let mut crc = 0u32;
    for s in strings {
        let len = s.len() as u64;
        coding::put_varint64(&mut out, len);
        crc = match u32::try_from(len) {
            Ok(l) => coding::crc32c_extend(crc, &l.to_le_bytes()),
            Err(_) => coding::crc32c_extend(crc, &len.to_le_bytes()),
        };
    }
    let masked = coding::mask(crc).to_le_bytes();
    out.extend_from_slice(&masked);
    crc = coding::crc32c_extend(crc, &masked);
    for s in strings {
        out.extend_from_slice(s);
        crc = coding::crc32c_extend(crc, s);
    }
    (out, crc)
}

/// Decode a string tensor's stored bytes (see the module docs) and check both checksums.
#[cfg_attr(not(feature = "internals"), allow(dead_code))] // the tests and fuzz targets use it
pub fn decode_strings(
    bytes: &[u8],
    n: u64,
    stored_crc: u32,
) -> std::result::Result<Vec<Vec<u8>>, String> {
    // Every element takes at least one length byte: bound the allocation by the input.
    if n > bytes.len() as u64 {
        return Err(format!("{n} strings cannot fit in {} bytes", bytes.len()));
    }
    let mut cur = coding::Cursor::new(bytes);
    let mut lens = Vec::with_capacity(n as usize);
    let mut crc = 0u32;
    let mut total: u64 = 0;
    for i in 0..n {
        let len = cur
            .varint64()
            .map_err(|e| format!("string {i}: length: {e}"))?;
        crc = match u32::try_from(len) {
            Ok(l) => coding::crc32c_extend(crc, &l.to_le_bytes()),
            Err(_) => coding::crc32c_extend(crc, &len.to_le_bytes()),
        };
        total = total
            .checked_add(len)
            .ok_or_else(|| "string lengths overflow".to_string())?;
        lens.push(len);
    }
    let stored_len_crc = cur
        .take(4)
        .ok_or_else(|| "truncated before the length checksum".to_string())?;
    let stored_len_crc = u32::from_le_bytes(stored_len_crc.try_into().expect("4 bytes"));
    if coding::unmask(stored_len_crc) != crc {
        return Err(format!(
            "string length checksum mismatch (stored {:#010x}, computed {crc:#010x})",
            coding::unmask(stored_len_crc)
        ));
    }
    crc = coding::crc32c_extend(crc, &stored_len_crc.to_le_bytes());
    if total != cur.remaining() as u64 {
        return Err(format!(
            "string lengths add up to {total} bytes but {} bytes follow them",
            cur.remaining()
        ));
    }
    let mut out = Vec::with_capacity(lens.len());
    for len in lens {
        let s = cur.take(len as usize).expect("total checked above");
        crc = coding::crc32c_extend(crc, s);
        out.push(s.to_vec());
    }
    if coding::unmask(stored_crc) != crc {
        return Err(format!(
            "checksum mismatch (stored {:#010x}, computed {crc:#010x})",
            coding::unmask(stored_crc)
        ));
    }
    Ok(out)
}

impl TensorSource for Bundle {
    fn format(&self) -> Format {
        Format::TfCheckpoint
    }

    fn path(&self) -> &Path {
        &self.prefix
    }

    fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    fn layers(&self) -> &[Layer] {
        &self.layers
    }

    fn keras_config(&self) -> Option<crate::keras::KerasConfig<'_>> {
        self.keras_model_config
            .as_deref()
            .map(crate::keras::KerasConfig::Keras2)
    }

    fn files(&self) -> Vec<PathBuf> {
        let mut v = vec![index_path(&self.prefix)];
        v.extend((0..self.num_shards).map(|i| shard_path(&self.prefix, i, self.num_shards)));
        if self.meta.is_some() {
            v.push(super::meta::meta_path(&self.prefix));
        }
        v.extend(self.keras_metadata.clone());
        v
    }

    fn layer_order(&self) -> crate::keras::Order {
        self.layer_order
    }

    fn h5_weight_order(&self) -> bool {
        self.h5_order
    }

    fn tf1_graph(&self) -> Option<&super::meta::MetaGraph> {
        self.meta.as_ref()
    }

    fn release(&self, index: usize) {
        let locs: Vec<Loc> = match &self.stored[index] {
            Stored::Plain(l) => vec![*l],
            Stored::Sliced(parts) => parts.iter().map(|p| p.1).collect(),
        };
        for l in locs {
            if let Some(Ok(data)) = self.shards[l.shard as usize].get() {
                data.release(l.offset, l.size);
            }
        }
    }

    fn stored_at(&self, index: usize) -> Option<(u32, u64)> {
        match &self.stored[index] {
            Stored::Plain(loc) => Some((loc.shard, loc.offset)),
            Stored::Sliced(_) => None,
        }
    }

    fn file_range(&self, index: usize) -> Option<FileRange<'_>> {
        let info = &self.tensors[index];
        match &self.stored[index] {
            Stored::Plain(loc) if info.dtype != DType::String && !self.big_endian => {
                // A data file that cannot be opened, or an extent past its end: no range,
                // so that the caller's `read_unchecked` reports it.
                let (data, _) = self.shard_holding(&info.name, loc, "").ok()?;
                Some(FileRange {
                    file: data.file(),
                    offset: loc.offset,
                    check: Some(self.crc_check(&info.name, loc, "")),
                })
            }
            _ => None,
        }
    }

    fn strings(&self, index: usize) -> Result<Box<dyn StringReader + '_>> {
        let info = &self.tensors[index];
        match &self.stored[index] {
            Stored::Plain(loc) if info.dtype == DType::String => {
                Ok(Box::new(self.string_reader(info, loc)?))
            }
            _ => Err(Error::unsupported_tensor(
                &self.prefix,
                &info.name,
                "not a string tensor",
            )),
        }
    }

    fn read_unchecked(&self, index: usize) -> Result<(TensorData<'_>, Option<Crc32cCheck>)> {
        let info = &self.tensors[index];
        match &self.stored[index] {
            Stored::Plain(loc) if info.dtype != DType::String && !self.big_endian => {
                let bytes = self.stored_bytes(&info.name, loc, "")?;
                let check = self.crc_check(&info.name, loc, "");
                Ok((TensorData::Bytes(bytes), Some(check)))
            }
            _ => Ok((self.read(index)?, None)),
        }
    }

    fn read(&self, index: usize) -> Result<TensorData<'_>> {
        let info = &self.tensors[index];
        match &self.stored[index] {
            Stored::Plain(loc) => {
                if info.dtype == DType::String {
                    return Ok(TensorData::Strings(self.read_strings(info, loc)?));
                }
                let bytes = self.checked_numeric(&info.name, loc, "")?;
                if self.big_endian {
                    Ok(TensorData::Bytes(Cow::Owned(
                        self.to_host(info.dtype, &bytes),
                    )))
                } else {
                    Ok(TensorData::Bytes(bytes))
                }
            }
            Stored::Sliced(parts) => {
                let esize = info.dtype.size().expect("validated at open") as u64;
                // byte_len was checked at open to equal the sum of the slices' stored
                // sizes, and the slices not to overlap. Every slice's bytes are found in
                // its data file (and checksummed) before anything is allocated, so the
                // tensor built here is never larger than the files holding it.
                let mut found = Vec::with_capacity(parts.len());
                for (ext, loc) in parts {
                    let what = format!("slice {}: ", slice::show(ext));
                    found.push(self.checked_numeric(&info.name, loc, &what)?);
                }
                let mut full = self.opts.buffer(info.byte_len, &self.prefix, &info.name)?;
                for ((ext, _), bytes) in parts.iter().zip(found) {
                    let host;
                    let src: &[u8] = if self.big_endian {
                        host = self.to_host(info.dtype, &bytes);
                        &host
                    } else {
                        &bytes
                    };
                    slice::scatter(&mut full, &info.shape, ext, src, esize);
                }
                Ok(TensorData::Bytes(Cow::Owned(full)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_names() {
        assert_eq!(
            shard_path(Path::new("a/model.ckpt"), 3, 12),
            PathBuf::from("a/model.ckpt.data-00003-of-00012")
        );
        assert_eq!(index_path(Path::new("x")), PathBuf::from("x.index"));
    }

    #[test]
    fn strings_decode_and_check() {
        // Build the encoding by hand: two strings "ab", "".
        let mut bytes = vec![2u8, 0u8];
        let mut crc = coding::crc32c_extend(0, &2u32.to_le_bytes());
        crc = coding::crc32c_extend(crc, &0u32.to_le_bytes());
        let masked = coding::mask(crc);
        bytes.extend_from_slice(&masked.to_le_bytes());
        crc = coding::crc32c_extend(crc, &masked.to_le_bytes());
        bytes.extend_from_slice(b"ab");
        crc = coding::crc32c_extend(crc, b"ab");
        let out = decode_strings(&bytes, 2, coding::mask(crc)).unwrap();
        assert_eq!(out, vec![b"ab".to_vec(), vec![]]);
        assert!(decode_strings(&bytes, 2, coding::mask(crc) ^ 1)
            .unwrap_err()
            .contains("checksum"));
        assert!(decode_strings(&bytes, 1 << 62, 0)
            .unwrap_err()
            .contains("cannot fit"));
        assert!(decode_strings(&bytes[..3], 2, 0).is_err());
    }

    #[test]
    fn strings_round_trip() {
        let v = vec![b"".to_vec(), b"\x00\xffbin".to_vec(), vec![b'x'; 300]];
        let (bytes, crc) = encode_strings(&v);
        assert_eq!(decode_strings(&bytes, 3, coding::mask(crc)).unwrap(), v);
    }
}
