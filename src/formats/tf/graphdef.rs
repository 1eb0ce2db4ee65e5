//! Frozen TensorFlow graphs: a serialized `GraphDef` whose weights are `Const` nodes.
//!
//! `tf.compat.v1.graph_util.convert_variables_to_constants` (TF1) and
//! `convert_variables_to_constants_v2` (TF2) replace each variable by a `Const` node
//! holding its value; tf2onnx's test models and many packages ship such `graph.pb` files.
//! The schema (`tensorflow/core/framework/graph.proto`, `node_def.proto`,
//! `attr_value.proto`, `tensor.proto`):
//!
//! ```text
//! GraphDef                         (no magic number, no checksum)
//!   1 node      repeated NodeDef
//!   2 library   FunctionDefLibrary (functions' own nodes: not read)
//!   3 version   int32 (deprecated)
//!   4 versions  VersionDef { 1 producer, 2 min_consumer, 3 bad_consumers }
//!   5 debug_info
//! NodeDef
//!   1 name      "dense/kernel"         3 input   repeated string
//!   2 op        "Const"                4 device  string
//!   5 attr      map<string, AttrValue>: entries { 1 key, 2 value }
//!   6 experimental_debug_info          7 experimental_type
//! AttrValue     oneof: 1 list, 2 s, 3 i, 4 f, 5 b, 6 type, 7 shape, 8 tensor, 9 placeholder, 10 func
//! A Const node: attr "value" → AttrValue.tensor (a TensorProto, see tensor_proto.rs)
//!               attr "dtype" → AttrValue.type (must agree with the tensor's dtype)
//! ```
//!
//! **What is listed**: every `Const` node of the graph's own node list, in file order,
//! under its node name, decoded as TensorFlow's `Const` kernel would (`Tensor::FromProto`,
//! including splats; see [`super::tensor_proto`]). That includes the frozen variables and
//! every other constant the graph holds (shapes, axes, folded values): `--include` /
//! `--exclude` select among them. TF1 freezing names each frozen variable's `Const` after
//! the variable (`dense/kernel`); TF2 freezing names it after the read that captured it
//! (`sequential/dense/MatMul/ReadVariableOp/resource`), because a TF2 function graph does
//! not record variable names. Nodes inside `library` functions are not listed.
//!
//! **Detection** (there is no magic number): the whole file must parse as a GraphDef's top
//! level (fields 1–5 only, each with its wire type, `versions` holding only its three
//! varint fields, the last field ending exactly at the end of the file), with at least one
//! node, every node having a non-empty UTF-8 `name` and `op` (and UTF-8 `input`s and
//! `device`). The check walks the file once, allocates nothing and reads no tensor. Its
//! limits: a GraphDef with no nodes, or with fields added by a future TensorFlow at the
//! top level, is not recognised; files over 2 GiB are not GraphDefs (protobuf's limit). A
//! file whose first nodes parse but whose end does not is reported as a damaged GraphDef
//! (a truncated download). The same walk tells a SavedModel's `saved_model.pb`, a TF1
//! `.meta` (`MetaGraphDef`) and an ONNX `ModelProto` apart, for messages ([`classify`]).
//!
//! A GraphDef has no checksum: a flipped bit inside a tensor's bytes changes a value
//! without any sign. Everything else is checked: framing, UTF-8, shapes against
//! `tensor_content`, dtypes (the attr against the tensor), unique names of Const nodes,
//! and the decoded size of splats ([`super::tensor_proto::MAX_DECODED_BYTES`]). Only the
//! named file is read.

use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use super::tensor_proto::{self, Parsed, Storage};
use super::wire::{offset_in, Reader, Value};
use crate::error::{Error, Result};
use crate::tensor::{Format, TensorData, TensorInfo, TensorSource};

/// Files larger than this are not GraphDefs (protobuf's 2 GiB message limit).
pub const MAX_GRAPHDEF_BYTES: u64 = i32::MAX as u64;

/// What a protobuf-looking file is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A GraphDef (see the module docs for the test).
    GraphDef,
    /// The first `nodes` nodes parse as a GraphDef's, the rest does not.
    Damaged {
        nodes: usize,
        first: String,
        why: String,
    },
    /// A SavedModel's `saved_model.pb` (`SavedModel { 1 schema version, 2 meta_graphs }`).
    SavedModel,
    /// A `MetaGraphDef` (a TF1 `.meta` graph).
    MetaGraphDef,
    /// An ONNX `ModelProto` (`1 ir_version`, `7 graph`, …), with its producer's name.
    Onnx { producer: Option<String> },
    /// Some other well-formed protocol buffer.
    OtherProto,
    /// Not a protocol buffer at all.
    NotProto,
}

/// A node's name and op: both must be non-empty UTF-8, as must its inputs and device.
fn node_name_op(node: &[u8]) -> std::result::Result<(&str, &str), String> {
    let (mut name, mut op) = ("", "");
    let mut r = Reader::new(node);
    while let Some(f) = r.next_field()? {
        match (f.number, f.value) {
            (1..=4, Value::Len(s)) => {
                let s = std::str::from_utf8(s).map_err(|_| {
                    format!(
                        "{} is not UTF-8",
                        ["name", "op", "input", "device"][f.number as usize - 1]
                    )
                })?;
                match f.number {
                    1 => name = s,
                    2 => op = s,
                    _ => {}
                }
            }
            (5..=7, Value::Len(_)) => {}
            (1..=7, v) => {
                return Err(format!(
                    "NodeDef field {} written as {}",
                    f.number,
                    v.kind()
                ))
            }
            _ => {}
        }
    }
    if name.is_empty() {
        return Err("a node without a name".into());
    }
    if op.is_empty() {
        return Err(format!("node {name:?} has no op"));
    }
    Ok((name, op))
}

/// A `VersionDef`: fields 1 and 2 varints, 3 varints (packed or not), nothing else.
fn check_versions(v: &[u8]) -> std::result::Result<(), String> {
    let mut r = Reader::new(v);
    while let Some(f) = r.next_field()? {
        match (f.number, f.value) {
            (1..=3, Value::Varint(_)) | (3, Value::Len(_)) => {}
            (n, v) => return Err(format!("versions: field {n} written as {}", v.kind())),
        }
    }
    Ok(())
}

/// Walk a GraphDef's top level, checking it as the module docs say: the number of nodes,
/// or how many nodes were good (and the first one's name) before what went wrong.
fn check_graph(bytes: &[u8]) -> std::result::Result<usize, (usize, String, String)> {
    let mut r = Reader::new(bytes);
    let mut nodes = 0usize;
    let mut first = String::new();
    loop {
        let at = r.position();
        let f = match r.next_field() {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return Err((nodes, first, e)),
        };
        let bad = |why: String| Err((nodes, first.clone(), format!("byte {at}: {why}")));
        match (f.number, f.value) {
            (1, Value::Len(node)) => match node_name_op(node) {
                Ok((name, _)) => {
                    if nodes == 0 {
                        first = name.to_string();
                    }
                    nodes += 1;
                }
                Err(e) => return bad(format!("node {nodes}: {e}")),
            },
            (4, Value::Len(v)) => {
                if let Err(e) = check_versions(v) {
                    return bad(e);
                }
            }
            (2 | 5, Value::Len(_)) | (3, Value::Varint(_)) => {}
            (n, v) => {
                return bad(format!(
                    "field {n} ({}) is not part of a GraphDef",
                    v.kind()
                ))
            }
        }
    }
    if nodes == 0 {
        return Err((0, first, "no nodes".into()));
    }
    Ok(nodes)
}

/// The fields of a message if it is well formed: (number, value) pairs, at most `max`.
fn top_fields(bytes: &[u8], max: usize) -> Option<Vec<(u32, Value<'_>)>> {
    let mut r = Reader::new(bytes);
    let mut out = Vec::new();
    while let Some(f) = r.next_field().ok()? {
        if out.len() == max {
            // Only the count matters past here: check the rest is well formed.
            continue;
        }
        out.push((f.number, f.value));
    }
    Some(out)
}

fn is_meta_graph(bytes: &[u8]) -> bool {
    let mut r = Reader::new(bytes);
    let mut graph = false;
    loop {
        match r.next_field() {
            Ok(Some(f)) => match (f.number, f.value) {
                (2, Value::Len(g)) => {
                    if check_graph(g).is_err() {
                        return false;
                    }
                    graph = true;
                }
                (1 | 3..=7, Value::Len(_)) => {}
                _ => return false,
            },
            Ok(None) => return graph,
            Err(_) => return false,
        }
    }
}

/// What a file's bytes are, as far as protocol buffers go (module docs). Linear in the
/// file's size, no allocation to speak of.
pub fn classify(bytes: &[u8]) -> Kind {
    if bytes.is_empty() || bytes.len() as u64 > MAX_GRAPHDEF_BYTES {
        return Kind::NotProto;
    }
    match check_graph(bytes) {
        Ok(_) => return Kind::GraphDef,
        Err((nodes, first, why)) if nodes > 0 => {
            return Kind::Damaged { nodes, first, why };
        }
        Err(_) => {}
    }
    let Some(fields) = top_fields(bytes, 64) else {
        return Kind::NotProto;
    };
    if is_meta_graph(bytes) {
        return Kind::MetaGraphDef;
    }
    let only_1_2 = fields
        .iter()
        .all(|(n, v)| matches!((n, v), (1, Value::Varint(_)) | (2, Value::Len(_))));
    if only_1_2
        && fields
            .iter()
            .any(|(n, v)| matches!((n, v), (2, Value::Len(m)) if is_meta_graph(m)))
    {
        return Kind::SavedModel;
    }
    let onnx_types = fields.iter().all(|(n, v)| match (n, v) {
        (1 | 5, Value::Varint(_)) => true,
        (1 | 5, _) => false,
        (2..=4 | 6..=8 | 14 | 20 | 25, v) => matches!(v, Value::Len(_)),
        _ => true,
    });
    let ir = fields
        .iter()
        .any(|(n, v)| matches!((n, v), (1, Value::Varint(1..=100))));
    let graph = fields.iter().any(|(n, _)| *n == 7);
    if onnx_types && ir && graph {
        let producer = fields.iter().find_map(|(n, v)| match (n, v) {
            (2, Value::Len(s)) => std::str::from_utf8(s).ok().map(str::to_string),
            _ => None,
        });
        return Kind::Onnx { producer };
    }
    Kind::OtherProto
}

/// Where a Const node's tensor lies and what it holds.
#[derive(Debug, Clone)]
struct Const {
    /// The `TensorProto`'s occurrences (merged, as protobuf merges them).
    parts: Vec<Range<usize>>,
    parsed: Parsed,
}

/// The bytes of a GraphDef: a map of the file, or bytes in memory (fuzzing, tests).
enum Bytes {
    Map(File, Mmap),
    Owned(Vec<u8>),
}

impl Bytes {
    fn get(&self) -> &[u8] {
        match self {
            Bytes::Map(_, m) => m,
            Bytes::Owned(v) => v,
        }
    }
}

/// A frozen graph opened for reading: its Const nodes as tensors.
pub struct GraphDef {
    path: PathBuf,
    bytes: Bytes,
    tensors: Vec<TensorInfo>,
    consts: Vec<Const>,
}

impl std::fmt::Debug for GraphDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphDef")
            .field("path", &self.path)
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

/// Map `path` for reading; `None` for an empty file.
fn map_file(path: &Path) -> Result<(File, Option<Mmap>)> {
    let file = File::open(path).map_err(|e| Error::io(path, "open", e))?;
    let len = file
        .metadata()
        .map_err(|e| Error::io(path, "stat", e))?
        .len();
    if len == 0 {
        return Ok((file, None));
    }
    // SAFETY: a read-only map of an input; ckptconv never writes to inputs, and TensorFlow
    // does not rewrite a .pb in place (a file truncated under us could raise SIGBUS, as
    // for every mapped input: see formats::open).
    let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, "map", e))?;
    Ok((file, Some(map)))
}

/// What is at `path` if it is a GraphDef: the opened graph, or else its [`Kind`].
#[cfg_attr(not(feature = "internals"), allow(dead_code))] // the tests and fuzz targets use it
pub fn detect(path: &Path) -> Result<std::result::Result<GraphDef, Kind>> {
    detect_with(path, crate::formats::ReadOptions::default())
}

/// [`detect`], reading as `opts` say: without a map, the file is read into memory (a
/// GraphDef is parsed whole anyway), if it is no larger than a GraphDef can be.
pub fn detect_with(
    path: &Path,
    opts: crate::formats::ReadOptions,
) -> Result<std::result::Result<GraphDef, Kind>> {
    if !opts.mmap {
        use std::io::Read;
        let mut file = File::open(path).map_err(|e| Error::io(path, "open", e))?;
        let len = file
            .metadata()
            .map_err(|e| Error::io(path, "stat", e))?
            .len();
        if len == 0 || len > i32::MAX as u64 {
            return Ok(Err(Kind::NotProto));
        }
        let mut buf = opts.empty_buffer(len, path, "(graph)")?;
        (&mut file)
            .take(len)
            .read_to_end(&mut buf)
            .map_err(|e| Error::io(path, "read", e))?;
        return match classify(&buf) {
            Kind::GraphDef => GraphDef::from_bytes(path, Bytes::Owned(buf)).map(Ok),
            other => Ok(Err(other)),
        };
    }
    let (file, map) = map_file(path)?;
    let Some(map) = map else {
        return Ok(Err(Kind::NotProto));
    };
    match classify(&map) {
        Kind::GraphDef => GraphDef::from_bytes(path, Bytes::Map(file, map)).map(Ok),
        other => Ok(Err(other)),
    }
}

#[cfg_attr(not(feature = "internals"), allow(dead_code))] // the tests and fuzz targets use it
impl GraphDef {
    /// Open the frozen graph at `path`.
    pub fn open(path: &Path) -> Result<GraphDef> {
        match detect(path)? {
            Ok(g) => Ok(g),
            Err(Kind::Damaged { nodes, first, why }) => Err(damaged(path, nodes, &first, &why)),
            Err(_) => Err(Error::corrupt(path, "not a GraphDef")),
        }
    }

    /// A GraphDef held in memory (the entry point of the `graphdef` fuzz target): any
    /// bytes, detected as [`classify`] does, then read as [`open`](Self::open) reads.
    pub fn from_vec(path: &Path, bytes: Vec<u8>) -> Result<GraphDef> {
        match classify(&bytes) {
            Kind::GraphDef => GraphDef::from_bytes(path, Bytes::Owned(bytes)),
            Kind::Damaged { nodes, first, why } => Err(damaged(path, nodes, &first, &why)),
            _ => Err(Error::corrupt(path, "not a GraphDef")),
        }
    }

    fn from_bytes(path: &Path, bytes: Bytes) -> Result<GraphDef> {
        let (tensors, consts) = read_consts(path, bytes.get())?;
        Ok(GraphDef {
            path: path.to_path_buf(),
            bytes,
            tensors,
            consts,
        })
    }
}

/// The error for a file whose first nodes are a GraphDef's and whose rest is not.
pub fn damaged(path: &Path, nodes: usize, first: &str, why: &str) -> Error {
    Error::corrupt(
        path,
        format!(
            "a damaged GraphDef: its first {nodes} node(s) parse (the first is {first:?}), then {why}"
        ),
    )
}

/// An attr's value: the merged occurrences of an `AttrValue`.
fn attr_parts(entry: &[u8]) -> std::result::Result<(&str, Vec<&[u8]>), String> {
    let mut key = "";
    let mut value = Vec::new();
    let mut r = Reader::new(entry);
    while let Some(f) = r.next_field()? {
        match (f.number, f.value) {
            (1, Value::Len(k)) => {
                key = std::str::from_utf8(k).map_err(|_| "an attr name is not UTF-8".to_string())?
            }
            (2, Value::Len(v)) => value.push(v),
            (1 | 2, v) => {
                return Err(format!(
                    "attr entry field {} written as {}",
                    f.number,
                    v.kind()
                ))
            }
            _ => {}
        }
    }
    Ok((key, value))
}

/// Every Const node of a GraphDef that [`classify`] accepted.
fn read_consts(path: &Path, buf: &[u8]) -> Result<(Vec<TensorInfo>, Vec<Const>)> {
    let mut tensors = Vec::new();
    let mut consts = Vec::new();
    let mut names: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut r = Reader::new(buf);
    let mut k = 0usize;
    while let Some(f) = r
        .next_field()
        .map_err(|e| Error::corrupt(path, format!("GraphDef: {e}")))?
    {
        let (1, Value::Len(node)) = (f.number, f.value) else {
            continue;
        };
        let index = k;
        k += 1;
        let (name, op) = node_name_op(node)
            .map_err(|e| Error::corrupt(path, format!("GraphDef node {index}: {e}")))?;
        if op != "Const" {
            continue;
        }
        let bad =
            |what: String| Error::corrupt_tensor(path, name, format!("Const node {index}: {what}"));
        // attr: map<string, AttrValue>; a later entry with the same key replaces an earlier.
        let mut value: Option<Vec<&[u8]>> = None;
        let mut dtype_attr: Option<Vec<&[u8]>> = None;
        let mut nr = Reader::new(node);
        while let Some(f) = nr.next_field().map_err(&bad)? {
            if let (5, Value::Len(entry)) = (f.number, f.value) {
                let (key, parts) = attr_parts(entry).map_err(&bad)?;
                match key {
                    "value" => value = Some(parts),
                    "dtype" => dtype_attr = Some(parts),
                    _ => {}
                }
            }
        }
        let Some(value) = value else {
            return Err(bad("no attr \"value\" (a Const node's tensor)".into()));
        };
        let (case, tensor, _) =
            attr_oneof(&value).map_err(|e| bad(format!("attr \"value\": {e}")))?;
        if case != Some(8) {
            return Err(bad("attr \"value\" does not hold a tensor".into()));
        }
        let parts: Vec<Range<usize>> = tensor
            .iter()
            .map(|t| {
                let s = offset_in(buf, t);
                s..s + t.len()
            })
            .collect();
        let parsed = tensor_proto::parse(buf, &parts)
            .map_err(|e| bad(format!("attr \"value\": tensor.{e}")))?;
        if let Some(d) = dtype_attr {
            let (case, _, ty) = attr_oneof(&d).map_err(|e| bad(format!("attr \"dtype\": {e}")))?;
            if case != Some(6) {
                return Err(bad("attr \"dtype\" does not hold a type".into()));
            }
            if ty != parsed.dtype.to_tf() {
                let said = crate::dtype::DType::from_tf(ty)
                    .map(|d| d.name().to_string())
                    .unwrap_or_else(|_| format!("type {ty}"));
                return Err(bad(format!(
                    "attr \"dtype\" is {said} but the tensor's dtype is {}",
                    parsed.dtype
                )));
            }
        }
        if let Some(&other) = names.get(name) {
            return Err(bad(format!("the same name as Const node {other}")));
        }
        names.insert(name.to_string(), index);
        tensors.push(TensorInfo {
            name: name.to_string(),
            variable: name.to_string(),
            dtype: parsed.dtype,
            shape: parsed.shape.clone(),
            byte_len: parsed.byte_len,
            shard: None,
            slices: 0,
            object_path: None,
        });
        consts.push(Const { parts, parsed });
    }
    Ok((tensors, consts))
}

/// See [`attr_oneof`].
type Oneof<'a> = (Option<u32>, Vec<&'a [u8]>, i32);

/// What an `AttrValue` (given as its merged occurrences) holds in the end: the number of
/// the oneof member set last, the occurrences of its `tensor` (8) message when that is the
/// member, and its `type` (6).
fn attr_oneof<'a>(parts: &[&'a [u8]]) -> std::result::Result<Oneof<'a>, String> {
    let mut case = None;
    let mut tensor: Vec<&'a [u8]> = Vec::new();
    let mut ty = 0i32;
    for p in parts {
        let mut r = Reader::new(p);
        while let Some(f) = r.next_field()? {
            match (f.number, f.value) {
                (8, Value::Len(t)) => {
                    // Setting another member of a oneof clears this one; setting it again
                    // merges (protobuf's rules).
                    if case != Some(8) {
                        tensor.clear();
                    }
                    tensor.push(t);
                    case = Some(8);
                }
                (6, Value::Varint(v)) => {
                    ty = v as i32;
                    case = Some(6);
                }
                (3 | 5, Value::Varint(_))
                | (4, Value::Fixed32(_))
                | (1 | 2 | 7 | 9 | 10, Value::Len(_)) => case = Some(f.number),
                (1..=10, v) => {
                    return Err(format!(
                        "AttrValue field {} written as {}",
                        f.number,
                        v.kind()
                    ))
                }
                _ => {}
            }
        }
    }
    if case != Some(8) {
        tensor.clear();
    }
    Ok((case, tensor, ty))
}

impl TensorSource for GraphDef {
    fn format(&self) -> Format {
        Format::TfGraphDef
    }

    fn path(&self) -> &Path {
        &self.path
    }

    fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    fn read(&self, index: usize) -> Result<TensorData<'_>> {
        let c = self
            .consts
            .get(index)
            .ok_or_else(|| Error::corrupt(&self.path, format!("no tensor {index}")))?;
        tensor_proto::decode(self.bytes.get(), &c.parts, &c.parsed).map_err(|e| {
            Error::corrupt_tensor(
                &self.path,
                &self.tensors[index].name,
                format!("attr \"value\": tensor.{e}"),
            )
        })
    }

    fn file_range(&self, index: usize) -> Option<crate::tensor::FileRange<'_>> {
        match (&self.bytes, &self.consts.get(index)?.parsed.storage) {
            (Bytes::Map(f, _), Storage::Content(r)) => Some(crate::tensor::FileRange {
                file: f,
                offset: r.start as u64,
                check: None,
            }),
            _ => None,
        }
    }

    fn stored_at(&self, index: usize) -> Option<(u32, u64)> {
        match &self.consts.get(index)?.parsed.storage {
            Storage::Content(r) => Some((0, r.start as u64)),
            _ => self.consts[index]
                .parts
                .first()
                .map(|r| (0, r.start as u64)),
        }
    }

    fn release(&self, index: usize) {
        if let (Bytes::Map(_, m), Some(c)) = (&self.bytes, self.consts.get(index)) {
            if let Storage::Content(r) = &c.parsed.storage {
                crate::formats::release_range(m, r.start as u64, r.len() as u64);
            }
        }
    }
}
