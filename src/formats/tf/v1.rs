//! TF1 V1 checkpoints: the tensor-slice files that `tf.compat.v1.train.Saver(write_version=
//! SaverDef.V1)` still writes and TensorFlow's `TensorSliceReader` reads
//! (`tensorflow/core/util/tensor_slice_writer.cc`, `tensor_slice_reader.cc`,
//! `saved_tensor_slice_util.{h,cc}`, `saved_tensor_slice.proto`).
//!
//! A V1 checkpoint is one file (`model.ckpt`) or shards `NAME-%05d-of-%05d` (a sharded
//! Saver; TensorFlow Serving's `export-00000-of-00001`). Each file is the same sorted table
//! as a V2 `.index` (see `table.rs`; TensorFlow writes it uncompressed, 256 KiB blocks),
//! but the table holds the tensors themselves:
//!
//! ```text
//! key ""                                  SavedTensorSlices { meta: SavedTensorSliceMeta {
//!                                           tensor: [SavedSliceMeta { name, shape, type,
//!                                                      slice: [TensorSliceProto] }],
//!                                           versions: VersionDef } }
//! key EncodeTensorNameSlice(name, slice)  SavedTensorSlices { data: SavedSlice {
//!                                           name, slice, data: TensorProto } }
//!     = 00 | name, 00 → 00 ff, ff → ff 00 | 00 01 | rank | (start, length) × rank
//!       (OrderedCode, see slice.rs; a full dimension is start 0, length −1)
//!
//! a slice's value, as TensorFlow writes it (`Fill` in saved_tensor_slice_util.h):
//!   12 len                SavedTensorSlices.data
//!     0a len name         SavedSlice.name
//!     12 len extents      SavedSlice.slice
//!     1a len              SavedSlice.data (TensorProto), one packed run of elements:
//!       2a len f32le × n         float_val = 5       float32                  ┐ the tensor's
//!       32 len f64le × n         double_val = 6      float64                  │ own bytes:
//!       4a len (f32le re, im)×n  scomplex_val = 9    complex64                │ borrowed from
//!       62 len (f64le re, im)×n  dcomplex_val = 12   complex128               ┘ the map
//!       3a len varint × n        int_val = 7         int32 int16 int8 uint16 uint8
//!       52 len varint × n        int64_val = 10      int64
//!       5a len varint × n        bool_val = 11       bool
//!       6a len varint × n        half_val = 13       float16 (its 16 bits in an int32)
//!       82 01 len varint × n     uint32_val = 16     uint32 ┐ read by TensorFlow, never
//!       8a 01 len varint × n     uint64_val = 17     uint64 ┘ written by it
//!       42 len bytes, per element  string_val = 8    string
//! ```
//!
//! Why it is read this way:
//!
//! - **Lazily, like `TensorSliceReader`.** The file is the model, so opening reads only the
//!   footer, the index block and the `""` meta of each file; a slice's block is read (and
//!   its checksum checked) when the slice is. Memory is bounded by the tensor being read,
//!   and the map's pages are dropped after it ([`TensorSource::release`]).
//! - **Zero-copy where the wire format allows.** A packed `float_val` is exactly the
//!   tensor's little-endian bytes, so float and complex tensors in one slice are borrowed
//!   from the map, as are `bool_val` runs of 0/1 bytes and `tensor_content`. Varint fields
//!   must be decoded.
//! - **TensorFlow's rules, exactly** (`TensorSliceReader::CopySliceData`, `LoadShard`,
//!   `TensorSliceSet::Register`): a slice must hold exactly as many values as its extent
//!   has elements (`TensorProtoDataSize`; TensorFlow's fill-with-the-last-value rule is
//!   `Tensor::FromProto`'s, not the V1 reader's), counting complex values as floats / 2;
//!   `int_val` values are narrowed to the dtype (low bits, as Eigen's cast does), `half_val`
//!   keeps the low 16 bits, a `bool_val` is true when non-zero; the same tensor in several
//!   shards must agree in shape and type; overlapping slices are an error; the file's
//!   `versions` must admit a version-1 reader. The data entry's own `name` and `slice` are
//!   ignored, as TensorFlow ignores them: the key says which slice it is.
//! - **Beyond `tf.train.load_checkpoint(...).get_tensor`**, which refuses sliced tensors
//!   ("Sliced checkpoints are not supported") and float16, uint16 and complex tensors
//!   ("Data type not supported") in V1 files: ckptconv reads those as TensorFlow's restore
//!   ops do (`RestoreV2` falls back to `TensorSliceReader`). A slice whose typed field is
//!   empty but whose `tensor_content` holds exactly its bytes is read from `tensor_content`
//!   (TensorFlow's V1 reader ignores that field and would refuse the slice; the bytes are
//!   unambiguous). Slices must tile the tensor exactly, checked at open as for V2 bundles.
//! - **Refused:** bfloat16 and float8 (TensorFlow has no V1 encoding for them: its writer
//!   refuses to save them and its reader has no case for them), quantized, resource and
//!   variant types, protobuf groups.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use prost::Message;

use super::coding;
use super::slice::{self, Extent};
use super::table::TableIndex;
use super::wire::{self, Value};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::pb::{BundleHeaderProto, SavedTensorSlices};
use crate::tensor::{num_elements, Format, TensorData, TensorInfo, TensorSource};

/// TensorFlow's `TF_CHECKPOINT_VERSION`: the reader version a V1 file's `versions` must admit.
const READER_VERSION: i32 = 1;
/// More files than this is not a checkpoint TensorFlow would write (`%05d` shard numbers).
const MAX_FILES: usize = 100_000;

/// The files of a V1 checkpoint, as [`resolve`] found them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1Files {
    /// What the checkpoint is called: the file itself, or the shards' common name
    /// (`dir/export` for `dir/export-00000-of-00001`). Its `.meta` is `NAME.meta`.
    pub name: PathBuf,
    /// Every file, in order.
    pub files: Vec<PathBuf>,
}

/// If `name` is `BASE-K-of-N` with decimal K < N (TensorFlow writes `%05d`): (BASE, K, N).
pub fn shard_name(name: &str) -> Option<(&str, u32, u32)> {
    crate::naming::numbered_part(name).filter(|&(_, k, n)| k < n)
}

/// Whether `path` is a regular file ending with the table magic.
fn is_table(path: &Path) -> Result<bool> {
    Ok(path.is_file() && crate::formats::sniff(path)? == crate::formats::Sniffed::TfIndex)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The V1 checkpoint a user's path names, if it names one: the file itself, one of its
/// shards (`export-00000-of-00002`: every shard is read), the shards' common name
/// (`export`) or a pattern (`export-?????-of-00002`, any glob TensorFlow would accept),
/// its `.meta`, a `checkpoint` state file naming it or a directory holding that state
/// file, or a directory holding exactly one V1 checkpoint. `None` when the path names no
/// V1 checkpoint (the caller then reports why it is no V2 checkpoint either); an error
/// when it does but the checkpoint is incomplete (a shard missing) or ambiguous.
pub fn resolve(path: &Path) -> Result<Option<V1Files>> {
    if path.is_dir() {
        return from_dir(path);
    }
    if file_name(path) == "checkpoint" && path.is_file() {
        return from_state_file(path);
    }
    named(path)
}

fn from_state_file(state: &Path) -> Result<Option<V1Files>> {
    let (_, candidates) = super::resolve::state_file_candidates(state)?;
    for c in candidates {
        if let Some(found) = named(&c)? {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

/// A V1 checkpoint named by a file, shard, pattern, common name or `.meta`, or by the V2
/// spelling of its parts (`model.ckpt.index`, `model.ckpt.data-00000-of-00001`) when no
/// such file exists: a user who adds `.index` by habit means the V1 file beside it.
fn named(path: &Path) -> Result<Option<V1Files>> {
    let name = file_name(path);
    if !path.exists() {
        let stem = name
            .strip_suffix(".index")
            .or_else(|| super::resolve::strip_shard_suffix(&name))
            .filter(|s| !s.is_empty());
        if let Some(stem) = stem {
            if let Some(found) = named(&path.with_file_name(stem))? {
                return Ok(Some(found));
            }
        }
    }
    if path.is_file() {
        if !is_table(path)? {
            return match name.strip_suffix(".meta") {
                Some(stem) if !stem.is_empty() => named(&path.with_file_name(stem)),
                _ => Ok(None),
            };
        }
        if let Some((base, _, n)) = shard_name(&name) {
            let set = shard_set(&path.with_file_name(base), n)?;
            if set.files.iter().any(|f| f == path) {
                return Ok(Some(set));
            }
        }
        return Ok(Some(V1Files {
            name: path.to_path_buf(),
            files: vec![path.to_path_buf()],
        }));
    }
    if name.contains(['*', '?', '[']) {
        return pattern(path);
    }
    common_name(path)
}

/// Every shard `BASE-%05d-of-%05d` of `n`, each of which must exist.
fn shard_set(base: &Path, n: u32) -> Result<V1Files> {
    if n as usize > MAX_FILES {
        return Err(Error::limit(
            base,
            format!("{n} shards (more than {MAX_FILES})"),
        ));
    }
    let stem = file_name(base);
    let files: Vec<PathBuf> = (0..n)
        .map(|k| base.with_file_name(format!("{stem}-{k:05}-of-{n:05}")))
        .collect();
    if let Some((k, missing)) = files.iter().enumerate().find(|(_, f)| !f.is_file()) {
        return Err(Error::not_found(
            missing,
            format!(
                "shard {k} of the {n} of V1 checkpoint {} does not exist",
                base.display()
            ),
        ));
    }
    Ok(V1Files {
        name: base.to_path_buf(),
        files,
    })
}

fn list_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, "list", e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    Ok(v)
}

/// The files matching a glob in their directory (TensorFlow's `GetMatchingPaths`); a
/// complete shard set when they are the shards of one checkpoint.
fn pattern(path: &Path) -> Result<Option<V1Files>> {
    let name = file_name(path);
    // A name that is no valid pattern names no file either (the caller says so).
    let Ok(glob) = globset::GlobBuilder::new(&name)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
    else {
        return Ok(None);
    };
    let glob = glob.compile_matcher();
    let dir = path.parent().unwrap_or(Path::new(""));
    if !dir.as_os_str().is_empty() && !dir.is_dir() {
        return Ok(None);
    }
    let files: Vec<PathBuf> = list_dir(dir)?
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| glob.is_match(n)))
        .collect();
    if files.is_empty() {
        return Ok(None);
    }
    if files.len() > MAX_FILES {
        return Err(Error::limit(
            path,
            format!("{} files match (more than {MAX_FILES})", files.len()),
        ));
    }
    let names: Vec<String> = files.iter().map(|f| file_name(f)).collect();
    let shards: Vec<_> = names.iter().filter_map(|n| shard_name(n)).collect();
    if shards.len() == names.len() {
        let (base, _, n) = shards[0];
        if shards.iter().all(|&(b, _, m)| b == base && m == n) {
            return shard_set(&path.with_file_name(base), n).map(Some);
        }
    }
    Ok(Some(V1Files {
        name: path.to_path_buf(),
        files,
    }))
}

/// `dir/NAME` where `dir/NAME-K-of-N` exist.
fn common_name(path: &Path) -> Result<Option<V1Files>> {
    let name = file_name(path);
    if name.is_empty() {
        return Ok(None);
    }
    let dir = path.parent().unwrap_or(Path::new(""));
    if !dir.as_os_str().is_empty() && !dir.is_dir() {
        return Ok(None);
    }
    let mut counts: Vec<u32> = list_dir(dir)?
        .iter()
        .filter_map(|f| {
            let n = file_name(f);
            shard_name(&n).and_then(|(b, _, n)| (b == name).then_some(n))
        })
        .collect();
    counts.sort_unstable();
    counts.dedup();
    match counts.as_slice() {
        [] => Ok(None),
        [n] => shard_set(path, *n).map(Some),
        several => Err(Error::not_found(
            path,
            format!(
                "shards of {} V1 checkpoints of this name (of {}): give one shard or a pattern",
                several.len(),
                several
                    .iter()
                    .map(|n| format!("{n:05}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

fn from_dir(dir: &Path) -> Result<Option<V1Files>> {
    let state = dir.join("checkpoint");
    if state.is_file() {
        return from_state_file(&state);
    }
    // Every V1 checkpoint here: single tables, and shard sets by common name (a file
    // that cannot be read is not one).
    let mut found: std::collections::BTreeSet<(PathBuf, Option<u32>)> = Default::default();
    for f in list_dir(dir)? {
        let name = file_name(&f);
        if name.ends_with(".index") || !is_table(&f).unwrap_or(false) {
            continue;
        }
        found.insert(match shard_name(&name) {
            Some((base, _, n)) => (f.with_file_name(base), Some(n)),
            None => (f, None),
        });
    }
    let mut found = found.into_iter();
    match (found.next(), found.len()) {
        (None, _) => Ok(None),
        (Some((path, None)), 0) => Ok(Some(V1Files {
            name: path.clone(),
            files: vec![path],
        })),
        (Some((base, Some(n))), 0) => shard_set(&base, n).map(Some),
        (Some((first, _)), more) => Err(Error::not_found(
            dir,
            format!(
                "{} V1 checkpoints in this directory and no `checkpoint` state file to choose: {}{}",
                more + 1,
                first.display(),
                found
                    .map(|(p, _)| format!(", {}", p.display()))
                    .collect::<String>()
            ),
        )),
    }
}

/// The bytes of one file: a read-only map, or (for tests and fuzzing) bytes in memory.
enum Backing {
    Map(Mmap),
    Owned(Vec<u8>),
}

struct V1File {
    path: PathBuf,
    backing: Backing,
    index: TableIndex,
}

impl V1File {
    fn open(path: &Path, opts: crate::formats::ReadOptions) -> Result<V1File> {
        let mut file = File::open(path).map_err(|e| Error::io(path, "open", e))?;
        let len = file
            .metadata()
            .map_err(|e| Error::io(path, "stat", e))?
            .len();
        if len == 0 {
            return Err(Error::corrupt(path, "empty file (not a V1 checkpoint)"));
        }
        if !opts.mmap {
            // Without maps the table is read into memory whole (within the budget): its
            // lookups work on one byte slice.
            use std::io::Read;
            let mut buf = opts.empty_buffer(len, path, "(V1 checkpoint file)")?;
            (&mut file)
                .take(len)
                .read_to_end(&mut buf)
                .map_err(|e| Error::io(path, "read", e))?;
            return Self::with(path, Backing::Owned(buf));
        }
        // SAFETY: a read-only map of an input file. Another process truncating it while we
        // read would raise SIGBUS (see `formats::open`); TensorFlow never rewrites a
        // checkpoint in place and ckptconv never writes to inputs. Every offset is checked
        // against the length the map had when it was made.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, "map", e))?;
        Self::with(path, Backing::Map(map))
    }

    fn with(path: &Path, backing: Backing) -> Result<V1File> {
        let bytes = match &backing {
            Backing::Map(m) => &m[..],
            Backing::Owned(v) => &v[..],
        };
        let index = TableIndex::open(bytes).map_err(|e| Error::corrupt(path, e.0))?;
        Ok(V1File {
            path: path.to_path_buf(),
            backing,
            index,
        })
    }

    fn bytes(&self) -> &[u8] {
        match &self.backing {
            Backing::Map(m) => m,
            Backing::Owned(v) => v,
        }
    }

    /// The table value of one slice of tensor `name`.
    fn slice_value(&self, name: &str, ext: &[Extent]) -> Result<Cow<'_, [u8]>> {
        let key = slice::encode_slice_key(name.as_bytes(), ext);
        self.index
            .get(self.bytes(), &key)
            .map_err(|e| Error::corrupt_tensor(&self.path, name, e.0))?
            .ok_or_else(|| {
                Error::corrupt_tensor(
                    &self.path,
                    name,
                    format!("slice {}: no entry for it in the table", slice::show(ext)),
                )
            })
    }

    /// The table block holding the entry of slice `ext` of `name`: (offset, length).
    fn block_of(&self, name: &str, ext: &[Extent]) -> Option<(u64, u64)> {
        let key = slice::encode_slice_key(name.as_bytes(), ext);
        self.index
            .block_for(&key)
            .map(|b| self.index.block_range(b))
    }
}

/// One stored slice of a tensor.
#[derive(Debug, Clone)]
struct Part {
    file: usize,
    extents: Vec<Extent>,
    elements: u64,
}

/// A V1 checkpoint opened for reading.
pub struct V1Checkpoint {
    name: PathBuf,
    files: Vec<V1File>,
    tensors: Vec<TensorInfo>,
    parts: Vec<Vec<Part>>,
    meta: Option<super::meta::MetaGraph>,
}

impl std::fmt::Debug for V1Checkpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("V1Checkpoint")
            .field("name", &self.name)
            .field("files", &self.files.len())
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

/// A tensor as the metas of the files list it, before its slices are checked together.
struct Listed {
    dtype: i32,
    shape: Vec<u64>,
    /// The file that listed it first, for messages.
    first_file: usize,
    parts: Vec<Part>,
}

#[cfg_attr(not(feature = "internals"), allow(dead_code))] // the tests and fuzz targets use it
impl V1Checkpoint {
    /// Open the checkpoint `files`: every file's footer, index block and meta are read and
    /// checked, and every tensor's slices checked against its shape; no tensor is read.
    pub fn open(files: &V1Files) -> Result<V1Checkpoint> {
        Self::open_with(files, crate::formats::ReadOptions::default())
    }

    /// [`open`](Self::open), reading as `opts` say (without maps, each file is read into
    /// memory whole).
    pub fn open_with(files: &V1Files, opts: crate::formats::ReadOptions) -> Result<V1Checkpoint> {
        let opened = files
            .files
            .iter()
            .map(|p| V1File::open(p, opts))
            .collect::<Result<Vec<_>>>()?;
        let mut c = Self::from_files(&files.name, opened)?;
        // A TF1 Saver's graph (NAME.meta) says in which order the model created its
        // variables; one that cannot be read only leaves that order unknown.
        c.meta = super::meta::read(&files.name).ok().flatten();
        Ok(c)
    }

    /// A checkpoint of one file whose bytes are `bytes` (named `path` in messages): the
    /// entry point of the `v1_checkpoint` fuzz target.
    pub fn from_bytes(path: &Path, bytes: Vec<u8>) -> Result<V1Checkpoint> {
        let f = V1File::with(path, Backing::Owned(bytes))?;
        Self::from_files(path, vec![f])
    }

    fn from_files(name: &Path, files: Vec<V1File>) -> Result<V1Checkpoint> {
        let mut listed: BTreeMap<String, Listed> = BTreeMap::new();
        for (fi, f) in files.iter().enumerate() {
            read_meta(fi, f, &files, &mut listed)?;
        }
        let mut tensors = Vec::with_capacity(listed.len());
        let mut parts = Vec::with_capacity(listed.len());
        for (tname, t) in listed {
            let path = &files[t.first_file].path;
            let tbad = |w: String| Error::corrupt_tensor(path, &tname, w);
            let unsupported = |w: String| Error::unsupported_tensor(path, &tname, w);
            let dtype = match DType::from_tf(t.dtype) {
                Ok(d) if field_of(d).is_some() => d,
                Ok(d) => {
                    return Err(unsupported(format!(
                        "dtype {d} in a V1 checkpoint (TensorFlow has no V1 encoding for it)"
                    )))
                }
                Err(Some(n)) => return Err(unsupported(format!("dtype {n}"))),
                Err(None) => return Err(tbad(format!("unknown dtype {}", t.dtype))),
            };
            let elements = num_elements(&t.shape)
                .ok_or_else(|| tbad(format!("shape {:?} has too many elements", t.shape)))?;
            // No two slices sharing an element and as many elements as the shape: the
            // slices tile the tensor exactly (TensorFlow refuses overlapping slices when it
            // registers them, and a tensor its slices do not cover when it restores it).
            if let Some((a, b)) =
                slice::first_overlap(&t.shape, t.parts.iter().map(|p| p.extents.as_slice()))
            {
                return Err(tbad(format!(
                    "slices {} and {} overlap",
                    slice::show(&t.parts[a].extents),
                    slice::show(&t.parts[b].extents)
                )));
            }
            let covered = t
                .parts
                .iter()
                .try_fold(0u64, |acc, p| acc.checked_add(p.elements))
                .ok_or_else(|| tbad("slice element counts overflow".into()))?;
            if covered != elements {
                return Err(tbad(format!(
                    "slices hold {covered} elements but the shape {:?} has {elements}",
                    t.shape
                )));
            }
            let byte_len = match dtype.size() {
                Some(es) => elements
                    .checked_mul(es as u64)
                    .ok_or_else(|| tbad("byte size overflows".into()))?,
                None => 0,
            };
            let first = t.parts[0].file;
            let shard = t
                .parts
                .iter()
                .all(|p| p.file == first)
                .then_some(first as u32);
            tensors.push(TensorInfo {
                variable: crate::naming::variable_from_tf_key(&tname),
                name: tname,
                dtype,
                shape: t.shape,
                byte_len,
                shard,
                slices: if t.parts.len() > 1 { t.parts.len() } else { 0 },
                object_path: None,
            });
            parts.push(t.parts);
        }
        let mut c = V1Checkpoint {
            name: name.to_path_buf(),
            files,
            tensors,
            parts,
            meta: None,
        };
        // A string tensor's size is that of its stored values (its blocks are read for
        // it; one that cannot be read is reported when the tensor is).
        for i in 0..c.tensors.len() {
            if c.tensors[i].dtype == DType::String {
                let t = &c.tensors[i];
                let stored: u64 = c.parts[i]
                    .iter()
                    .filter_map(|p| c.files[p.file].slice_value(&t.name, &p.extents).ok())
                    .map(|v| v.len() as u64)
                    .sum();
                c.tensors[i].byte_len = stored;
            }
        }
        Ok(c)
    }

    /// Every file read, in order.
    pub fn paths(&self) -> Vec<&Path> {
        self.files.iter().map(|f| f.path.as_path()).collect()
    }

    /// The elements of slice `part` of tensor `index`, as little-endian bytes.
    fn slice_bytes(&self, index: usize, part: &Part) -> Result<Cow<'_, [u8]>> {
        let t = &self.tensors[index];
        let value = self.files[part.file].slice_value(&t.name, &part.extents)?;
        let bad = |w: String| self.slice_error(index, part, w);
        match value {
            Cow::Borrowed(v) => values(v, t.dtype, part.elements).map_err(bad),
            Cow::Owned(v) => values(&v, t.dtype, part.elements)
                .map(|b| Cow::Owned(b.into_owned()))
                .map_err(bad),
        }
    }

    /// The elements of string slice `part` of tensor `index`.
    fn slice_strings(&self, index: usize, part: &Part) -> Result<Vec<Vec<u8>>> {
        let t = &self.tensors[index];
        let value = self.files[part.file].slice_value(&t.name, &part.extents)?;
        strings(&value, part.elements).map_err(|w| self.slice_error(index, part, w))
    }

    /// What is wrong with slice `part` of tensor `index`, naming its file.
    fn slice_error(&self, index: usize, part: &Part, what: String) -> Error {
        Error::corrupt_tensor(
            &self.files[part.file].path,
            &self.tensors[index].name,
            format!("slice {}: {what}", slice::show(&part.extents)),
        )
    }

    fn too_big(&self, index: usize) -> Error {
        let t = &self.tensors[index];
        Error::unsupported_tensor(
            &self.name,
            &t.name,
            format!(
                "{} elements do not fit in memory",
                t.num_elements().unwrap_or(u64::MAX)
            ),
        )
    }

    fn read_strings(&self, index: usize) -> Result<Vec<Vec<u8>>> {
        let parts = &self.parts[index];
        if let [only] = parts.as_slice() {
            return self.slice_strings(index, only);
        }
        // Every slice decoded (each checked against the bytes present) before the tensor
        // is assembled.
        let decoded = parts
            .iter()
            .map(|p| self.slice_strings(index, p))
            .collect::<Result<Vec<_>>>()?;
        let t = &self.tensors[index];
        let n = t
            .num_elements()
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| self.too_big(index))?;
        let mut full: Vec<Vec<u8>> = Vec::new();
        full.try_reserve_exact(n).map_err(|_| self.too_big(index))?;
        full.resize(n, Vec::new());
        for (p, strings) in parts.iter().zip(decoded) {
            let mut it = strings.into_iter();
            slice::for_each_run(&t.shape, &p.extents, |first, len| {
                for (dst, s) in full[first as usize..(first + len) as usize]
                    .iter_mut()
                    .zip(&mut it)
                {
                    *dst = s;
                }
            });
        }
        Ok(full)
    }
}

/// Read the meta of file `fi` and list its tensors' slices in `listed`.
fn read_meta(
    fi: usize,
    f: &V1File,
    files: &[V1File],
    listed: &mut BTreeMap<String, Listed>,
) -> Result<()> {
    let bad = |w: String| Error::corrupt(&f.path, w);
    let (key, value) = f
        .index
        .first(f.bytes())
        .map_err(|e| bad(e.0))?
        .ok_or_else(|| {
            bad("the table is empty: no SavedTensorSlices meta under the key \"\"".into())
        })?;
    if !key.is_empty() {
        return Err(bad(format!(
            "the first key is {:?}, not \"\": no SavedTensorSlices meta (not a V1 checkpoint)",
            String::from_utf8_lossy(&key)
        )));
    }
    // A V2 bundle's header starts with its field 1, num_shards, a varint; a V1 meta with
    // its field 1, a message.
    if value.first() == Some(&0x08) && BundleHeaderProto::decode(&value[..]).is_ok() {
        return Err(bad(
            "this is the index of a TensorFlow V2 checkpoint (its first entry is a \
             BundleHeaderProto), not a V1 checkpoint: name it PREFIX.index, beside its \
             PREFIX.data-* files"
                .into(),
        ));
    }
    let sts = SavedTensorSlices::decode(&value[..])
        .map_err(|e| bad(format!("SavedTensorSlices meta: {e}")))?;
    // TensorFlow parses a missing meta as an empty one: a file of no tensors.
    let meta = sts.meta.unwrap_or_default();
    if let Some(v) = &meta.versions {
        if v.producer < 0 {
            return Err(bad(format!(
                "meta versions: producer {} is negative",
                v.producer
            )));
        }
        if v.min_consumer > READER_VERSION {
            return Err(Error::unsupported(
                &f.path,
                format!(
                    "meta versions: needs a reader of version {} or newer (this reads version {READER_VERSION})",
                    v.min_consumer
                ),
            ));
        }
        if v.bad_consumers.contains(&READER_VERSION) {
            return Err(Error::unsupported(
                &f.path,
                format!(
                    "meta versions: this checkpoint disallows version-{READER_VERSION} readers"
                ),
            ));
        }
    }
    for ssm in meta.tensor {
        let tbad = |w: String| Error::corrupt_tensor(&f.path, &ssm.name, w);
        let shape = super::bundle::parse_shape(ssm.shape.as_ref()).map_err(&tbad)?;
        for s in &ssm.slice {
            let extents = slice::extents(s);
            let elements = slice::check_extents(&shape, &extents).map_err(&tbad)?;
            let part = Part {
                file: fi,
                extents,
                elements,
            };
            match listed.get_mut(&ssm.name) {
                None => {
                    listed.insert(
                        ssm.name.clone(),
                        Listed {
                            dtype: ssm.r#type,
                            shape: shape.clone(),
                            first_file: fi,
                            parts: vec![part],
                        },
                    );
                }
                Some(t) => {
                    let other = files[t.first_file].path.display();
                    if t.shape != shape {
                        return Err(tbad(format!(
                            "shape {shape:?} here but {:?} in {other}",
                            t.shape
                        )));
                    }
                    if t.dtype != ssm.r#type {
                        return Err(tbad(format!(
                            "dtype {} here but {} in {other}",
                            ssm.r#type, t.dtype
                        )));
                    }
                    t.parts.push(part);
                }
            }
        }
    }
    Ok(())
}

/// How a dtype's elements are stored in a `TensorProto` (saved_tensor_slice_util.h).
#[derive(Debug, Clone, Copy)]
enum Field {
    /// Fixed-width little-endian values (packed, or one per field), `width` bytes each;
    /// complex numbers count as two.
    Fixed {
        number: u32,
        width: usize,
        per_element: usize,
    },
    /// Varints (packed, or one per field).
    Varint { number: u32 },
    /// One length-delimited field per element.
    Bytes { number: u32 },
}

impl Field {
    fn number(self) -> u32 {
        match self {
            Field::Fixed { number, .. } | Field::Varint { number } | Field::Bytes { number } => {
                number
            }
        }
    }
}

const TENSOR_CONTENT: u32 = 4;

fn field_of(d: DType) -> Option<Field> {
    use Field::*;
    Some(match d {
        DType::Float32 => Fixed {
            number: 5,
            width: 4,
            per_element: 1,
        },
        DType::Float64 => Fixed {
            number: 6,
            width: 8,
            per_element: 1,
        },
        DType::Complex64 => Fixed {
            number: 9,
            width: 4,
            per_element: 2,
        },
        DType::Complex128 => Fixed {
            number: 12,
            width: 8,
            per_element: 2,
        },
        DType::Int32 | DType::Int16 | DType::Int8 | DType::UInt16 | DType::UInt8 => {
            Varint { number: 7 }
        }
        DType::Int64 => Varint { number: 10 },
        DType::Bool => Varint { number: 11 },
        DType::Float16 => Varint { number: 13 },
        DType::UInt32 => Varint { number: 16 },
        DType::UInt64 => Varint { number: 17 },
        DType::String => Bytes { number: 8 },
        DType::BFloat16 | DType::Float8E5M2 | DType::Float8E4M3FN => return None,
    })
}

/// Every field of the message `msg`, in order, with the bytes of its value in place
/// ([`wire::Reader::value_bytes`]); an error for a message that does not decode.
fn for_each_field<'a>(
    msg: &'a [u8],
    mut f: impl FnMut(u32, Value<'a>, &'a [u8]) -> std::result::Result<(), String>,
) -> std::result::Result<(), String> {
    let mut r = wire::Reader::new(msg);
    while let Some(field) = r.next_field()? {
        f(field.number, field.value, r.value_bytes())?;
    }
    Ok(())
}

/// The bytes of every `TensorProto` of a slice's table value, in order: the `data` of
/// each `SavedTensorSlices.data`. Protobuf merges repeated occurrences of a message field,
/// which for repeated fields inside it means concatenating them, so the values are those
/// of all of them, in order.
fn tensor_protos(value: &[u8]) -> std::result::Result<Vec<&[u8]>, String> {
    let mut out = Vec::new();
    for_each_field(value, |n, w, _| {
        if let (2, Value::Len(saved_slice)) = (n, w) {
            for_each_field(saved_slice, |m, w, _| {
                if let (3, Value::Len(tp)) = (m, w) {
                    out.push(tp);
                }
                Ok(())
            })
            .map_err(|e| format!("SavedSlice: {e}"))?;
        }
        Ok(())
    })
    .map_err(|e| format!("SavedTensorSlices: {e}"))?;
    Ok(out)
}

/// What a slice's `TensorProto`s hold for one dtype's field.
struct Found<'a> {
    /// Runs of the field's values as stored: packed contents, or single values' bytes.
    runs: Vec<&'a [u8]>,
    /// Single varint values (not packed), in order among `runs` by `order`.
    order: Vec<Piece>,
    varints: Vec<u64>,
    /// Values found.
    count: u64,
    /// The last `tensor_content`.
    content: Option<&'a [u8]>,
}

#[derive(Debug, Clone, Copy)]
enum Piece {
    Run(usize),
    Value(usize),
}

fn find<'a>(protos: &[&'a [u8]], field: Field) -> std::result::Result<Found<'a>, String> {
    let mut found = Found {
        runs: Vec::new(),
        order: Vec::new(),
        varints: Vec::new(),
        count: 0,
        content: None,
    };
    for tp in protos {
        for_each_field(tp, |n, w, raw| {
            match (field, w) {
                (_, Value::Len(b)) if n == TENSOR_CONTENT => found.content = Some(b),
                (Field::Fixed { number, width, .. }, Value::Len(b)) if n == number => {
                    if b.len() % width != 0 {
                        return Err(format!(
                            "packed {} of {} bytes is not a whole number of {width}-byte values",
                            super::tensor_proto::field_name(number),
                            b.len()
                        ));
                    }
                    found.count += (b.len() / width) as u64;
                    found.order.push(Piece::Run(found.runs.len()));
                    found.runs.push(b);
                }
                (
                    Field::Fixed {
                        number, width: 4, ..
                    },
                    Value::Fixed32(_),
                )
                | (
                    Field::Fixed {
                        number, width: 8, ..
                    },
                    Value::Fixed64(_),
                ) if n == number => {
                    found.count += 1;
                    found.order.push(Piece::Run(found.runs.len()));
                    found.runs.push(raw);
                }
                (Field::Varint { number }, Value::Len(b)) if n == number => {
                    // Every varint ends with a byte below 0x80, and the run must end with one.
                    if b.last().is_some_and(|&x| x >= 0x80) {
                        return Err(format!(
                            "packed {} ends inside a varint",
                            super::tensor_proto::field_name(number)
                        ));
                    }
                    found.count += b.iter().filter(|&&x| x < 0x80).count() as u64;
                    found.order.push(Piece::Run(found.runs.len()));
                    found.runs.push(b);
                }
                (Field::Varint { number }, Value::Varint(v)) if n == number => {
                    found.count += 1;
                    found.order.push(Piece::Value(found.varints.len()));
                    found.varints.push(v);
                }
                (Field::Bytes { number }, Value::Len(b)) if n == number => {
                    found.count += 1;
                    found.runs.push(b);
                }
                // Other fields, and a known field with another wire type, are skipped as
                // protobuf skips unknown fields.
                _ => {}
            }
            Ok(())
        })
        .map_err(|e| format!("TensorProto: {e}"))?;
    }
    Ok(found)
}

/// The number of elements `found` holds: `TensorProtoDataSize` (complex values count as
/// floats / 2).
fn elements_of(found: &Found<'_>, field: Field) -> u64 {
    match field {
        Field::Fixed { per_element, .. } => found.count / per_element as u64,
        _ => found.count,
    }
}

fn count_error(found: &Found<'_>, field: Field, want: u64) -> String {
    let unit = match field {
        Field::Fixed { per_element: 2, .. } => " (complex values)",
        _ => "",
    };
    format!(
        "{} values{unit} in {} where the slice has {want} elements",
        elements_of(found, field),
        super::tensor_proto::field_name(field.number())
    )
}

/// A numeric slice's elements found in its table value and counted: `Located::bytes`
/// then decodes them.
struct Located<'a> {
    found: Found<'a>,
    field: Field,
    dtype: DType,
    /// The slice's bytes: elements × dtype size.
    nbytes: usize,
    /// The elements are `tensor_content` (the typed field being empty).
    content: bool,
}

/// Find and count the `want` elements of a numeric slice whose table value is `value`,
/// checking that they are there; nothing is allocated for them yet.
fn locate(value: &[u8], dtype: DType, want: u64) -> std::result::Result<Located<'_>, String> {
    let field = field_of(dtype).ok_or_else(|| format!("dtype {dtype}"))?;
    let esize = dtype.size().ok_or("not numeric")? as u64;
    let nbytes = want
        .checked_mul(esize)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| format!("{want} elements of {dtype} overflow"))?;
    let protos = tensor_protos(value)?;
    let found = find(&protos, field)?;
    let have = elements_of(&found, field);
    let mut content = false;
    if have != want {
        // TensorFlow reads only the typed field; a slice written elsewhere in
        // tensor_content is read when it holds exactly the slice (see the module docs).
        match found.content {
            Some(c) if have == 0 && c.len() == nbytes => content = true,
            Some(c) if have == 0 => {
                return Err(format!(
                    "tensor_content holds {} bytes where the slice has {want} elements of {dtype} ({nbytes} bytes)",
                    c.len()
                ))
            }
            _ => return Err(count_error(&found, field, want)),
        }
    }
    Ok(Located {
        found,
        field,
        dtype,
        nbytes,
        content,
    })
}

impl<'a> Located<'a> {
    /// The elements, little-endian; borrowed from the table value where they lie there as
    /// they are. No allocation is larger than the values present: each was counted in the
    /// value, and takes at least one byte of it.
    fn bytes(self) -> std::result::Result<Cow<'a, [u8]>, String> {
        let Located {
            found,
            field,
            dtype,
            nbytes,
            content,
        } = self;
        if content {
            return Ok(Cow::Borrowed(found.content.expect("content found")));
        }
        let alloc = |n: usize| -> std::result::Result<Vec<u8>, String> {
            let mut v = Vec::new();
            v.try_reserve_exact(n)
                .map_err(|_| format!("{n} bytes do not fit in memory"))?;
            Ok(v)
        };
        match field {
            Field::Fixed { .. } => {
                if let [run] = found.runs.as_slice() {
                    return Ok(Cow::Borrowed(&run[..nbytes]));
                }
                let mut out = alloc(nbytes)?;
                for r in &found.runs {
                    let take = r.len().min(nbytes - out.len());
                    out.extend_from_slice(&r[..take]);
                }
                Ok(Cow::Owned(out))
            }
            Field::Varint { number } => {
                if let ([run], true) = (found.runs.as_slice(), found.varints.is_empty()) {
                    if dtype == DType::Bool && run.iter().all(|&b| b <= 1) {
                        return Ok(Cow::Borrowed(run));
                    }
                }
                let mut out = alloc(nbytes)?;
                let mut put = |v: u64| match dtype {
                    // int_val holds an int32 (the varint of its 64-bit sign extension);
                    // TensorFlow narrows it to the dtype, keeping the low bits.
                    DType::Int8 | DType::UInt8 => out.push(v as u8),
                    DType::Int16 | DType::UInt16 | DType::Float16 => {
                        out.extend_from_slice(&(v as u16).to_le_bytes())
                    }
                    DType::Int32 | DType::UInt32 => {
                        out.extend_from_slice(&(v as u32).to_le_bytes())
                    }
                    DType::Bool => out.push(u8::from(v != 0)),
                    _ => out.extend_from_slice(&v.to_le_bytes()),
                };
                for piece in &found.order {
                    match *piece {
                        Piece::Value(i) => put(found.varints[i]),
                        Piece::Run(i) => {
                            let mut cur = coding::Cursor::new(found.runs[i]);
                            while !cur.is_empty() {
                                let v = cur.varint64().map_err(|e| {
                                    format!("{}: {e}", super::tensor_proto::field_name(number))
                                })?;
                                put(v);
                            }
                        }
                    }
                }
                debug_assert_eq!(out.len(), nbytes);
                Ok(Cow::Owned(out))
            }
            Field::Bytes { .. } => Err("not numeric".into()),
        }
    }
}

/// The `want` elements of a numeric slice whose table value is `value`, little-endian;
/// borrowed from `value` where they lie there as they are.
fn values(value: &[u8], dtype: DType, want: u64) -> std::result::Result<Cow<'_, [u8]>, String> {
    locate(value, dtype, want)?.bytes()
}

/// The `want` elements of a string slice whose table value is `value`.
fn strings(value: &[u8], want: u64) -> std::result::Result<Vec<Vec<u8>>, String> {
    let field = Field::Bytes { number: 8 };
    let protos = tensor_protos(value)?;
    let found = find(&protos, field)?;
    if found.count != want {
        if found.count == 0 && found.content.is_some_and(|c| !c.is_empty()) {
            return Err("string elements in tensor_content (unsupported)".into());
        }
        return Err(count_error(&found, field, want));
    }
    // `want` fields were counted in the value: the list is no longer than its bytes allow.
    let mut out = Vec::new();
    out.try_reserve_exact(found.runs.len())
        .map_err(|_| format!("{want} strings do not fit in memory"))?;
    out.extend(found.runs.iter().map(|s| s.to_vec()));
    Ok(out)
}

impl TensorSource for V1Checkpoint {
    fn format(&self) -> Format {
        Format::TfCheckpointV1
    }

    fn path(&self) -> &Path {
        &self.name
    }

    fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    fn files(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = self.files.iter().map(|f| f.path.clone()).collect();
        if self.meta.is_some() {
            v.push(super::meta::meta_path(&self.name));
        }
        v
    }

    fn tf1_graph(&self) -> Option<&super::meta::MetaGraph> {
        self.meta.as_ref()
    }

    fn stored_at(&self, index: usize) -> Option<(u32, u64)> {
        let p = self.parts[index].first()?;
        let (offset, _) = self.files[p.file].block_of(&self.tensors[index].name, &p.extents)?;
        Some((p.file as u32, offset))
    }

    fn release(&self, index: usize) {
        let name = &self.tensors[index].name;
        for p in &self.parts[index] {
            let f = &self.files[p.file];
            if let (Backing::Map(m), Some((offset, len))) =
                (&f.backing, f.block_of(name, &p.extents))
            {
                crate::formats::release_range(m, offset, len);
            }
        }
    }

    fn read(&self, index: usize) -> Result<TensorData<'_>> {
        let t = &self.tensors[index];
        if t.dtype == DType::String {
            return Ok(TensorData::Strings(self.read_strings(index)?));
        }
        let parts = &self.parts[index];
        if let [only] = parts.as_slice() {
            // One slice covering the tensor (checked at open): its values are the tensor.
            return Ok(TensorData::Bytes(self.slice_bytes(index, only)?));
        }
        // Every slice's values are found and counted before the tensor is allocated, so
        // that it is never larger than the values the files hold; each is then decoded
        // (borrowed where it can be) and placed, one at a time.
        let stored = parts
            .iter()
            .map(|p| self.files[p.file].slice_value(&t.name, &p.extents))
            .collect::<Result<Vec<_>>>()?;
        let located = parts
            .iter()
            .zip(&stored)
            .map(|(p, value)| {
                locate(value, t.dtype, p.elements).map_err(|w| self.slice_error(index, p, w))
            })
            .collect::<Result<Vec<_>>>()?;
        let esize = t.dtype.size().expect("numeric") as u64;
        let n = usize::try_from(t.byte_len).map_err(|_| self.too_big(index))?;
        let mut full: Vec<u8> = Vec::new();
        full.try_reserve_exact(n).map_err(|_| self.too_big(index))?;
        full.resize(n, 0);
        for (p, l) in parts.iter().zip(located) {
            let bytes = l.bytes().map_err(|w| self.slice_error(index, p, w))?;
            slice::scatter(&mut full, &t.shape, &p.extents, &bytes, esize);
        }
        Ok(TensorData::Bytes(Cow::Owned(full)))
    }

    fn verify(&self) -> Vec<Error> {
        // The whole of every table (each block's checksum, the key order), a block's pages
        // dropped once it is checked; then every tensor.
        let mut errs: Vec<Error> = self
            .files
            .iter()
            .filter_map(|f| {
                let release = |i| {
                    if let Backing::Map(m) = &f.backing {
                        let (offset, len) = f.index.block_range(i);
                        crate::formats::release_range(m, offset, len);
                    }
                };
                f.index
                    .walk(f.bytes(), |_, _| Ok(()), release)
                    .err()
                    .map(|e| Error::corrupt(&f.path, e.0))
            })
            .collect();
        errs.extend(crate::tensor::verify_parallel(self));
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_names() {
        assert_eq!(shard_name("export-00000-of-00001"), Some(("export", 0, 1)));
        assert_eq!(
            shard_name("model.ckpt-123-00002-of-00003"),
            Some(("model.ckpt-123", 2, 3))
        );
        assert_eq!(shard_name("export-00001-of-00001"), None);
        assert_eq!(shard_name("export-0000-of-00001"), None);
        assert_eq!(shard_name("-00000-of-00001"), None);
        assert_eq!(shard_name("model.ckpt"), None);
        assert_eq!(shard_name("x-?????-of-00002"), None);
    }

    fn varints(vals: &[u64]) -> Vec<u8> {
        let mut out = Vec::new();
        for &v in vals {
            coding::put_varint64(&mut out, v);
        }
        out
    }

    /// A slice's table value whose TensorProto is `tp`.
    fn value_of(tp: &[u8]) -> Vec<u8> {
        let mut ss = vec![0x0a, 1, b'v', 0x1a];
        coding::put_varint64(&mut ss, tp.len() as u64);
        ss.extend_from_slice(tp);
        let mut v = vec![0x12];
        coding::put_varint64(&mut v, ss.len() as u64);
        v.extend_from_slice(&ss);
        v
    }

    fn field(number: u32, wire: u64, body: &[u8]) -> Vec<u8> {
        let mut out = varints(&[(u64::from(number) << 3) | wire]);
        if wire == 2 {
            coding::put_varint64(&mut out, body.len() as u64);
        }
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn packed_floats_are_borrowed() {
        let floats: Vec<u8> = [1.5f32, -2.0, 3.25]
            .iter()
            .flat_map(|f| f.to_le_bytes())
            .collect();
        let v = value_of(&field(5, 2, &floats));
        let got = values(&v, DType::Float32, 3).unwrap();
        assert!(matches!(got, Cow::Borrowed(_)));
        assert_eq!(got.as_ref(), floats.as_slice());
        assert!(values(&v, DType::Float32, 2)
            .unwrap_err()
            .contains("3 values in float_val"));
        assert!(values(&v, DType::Float32, 4).is_err());
    }

    #[test]
    fn split_and_unpacked_values_are_joined() {
        // Two packed runs and an unpacked fixed32, in two TensorProtos (merged).
        let a = field(5, 2, &1f32.to_le_bytes());
        let b = field(5, 5, &2f32.to_le_bytes());
        let c = field(5, 2, &3f32.to_le_bytes());
        let mut tp1 = a.clone();
        tp1.extend(b);
        let mut v = value_of(&tp1);
        v.extend(value_of(&c));
        let got = values(&v, DType::Float32, 3).unwrap();
        let want: Vec<u8> = [1f32, 2., 3.]
            .iter()
            .flat_map(|f| f.to_le_bytes())
            .collect();
        assert_eq!(got.as_ref(), want.as_slice());
    }

    #[test]
    fn int_val_is_narrowed_like_tensorflow() {
        // int8 -5 as TensorFlow writes it (int32 sign-extended to a 10-byte varint), 300
        // as uint8 (TensorFlow keeps the low 8 bits: 44), an unpacked value.
        let mut tp = field(7, 2, &varints(&[(-5i64) as u64, 300]));
        tp.extend(field(7, 0, &varints(&[7])));
        let v = value_of(&tp);
        assert_eq!(values(&v, DType::Int8, 3).unwrap().as_ref(), &[0xfb, 44, 7]);
        assert_eq!(
            values(&v, DType::Int32, 3).unwrap().as_ref(),
            [-5i32, 300, 7]
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect::<Vec<_>>()
                .as_slice()
        );
        // half_val: the low 16 bits.
        let v = value_of(&field(13, 2, &varints(&[0x3c00, 0x1_c000])));
        assert_eq!(
            values(&v, DType::Float16, 2).unwrap().as_ref(),
            &[0, 0x3c, 0, 0xc0]
        );
        // bool: non-zero is true; 0/1 runs are borrowed.
        let v = value_of(&field(11, 2, &[1, 0, 1]));
        let got = values(&v, DType::Bool, 3).unwrap();
        assert!(matches!(got, Cow::Borrowed(_)));
        let v = value_of(&field(11, 2, &varints(&[2, 0, 300])));
        assert_eq!(values(&v, DType::Bool, 3).unwrap().as_ref(), &[1, 0, 1]);
    }

    #[test]
    fn complex_counts_pairs_like_tensorflow() {
        // Five floats are two complex64 values (TensorProtoDataSize = size / 2).
        let floats: Vec<u8> = (0..5).flat_map(|i| (i as f32).to_le_bytes()).collect();
        let v = value_of(&field(9, 2, &floats));
        assert_eq!(
            values(&v, DType::Complex64, 2).unwrap().as_ref(),
            &floats[..16]
        );
        assert!(values(&v, DType::Complex64, 3).is_err());
    }

    #[test]
    fn tensor_content_only_when_the_typed_field_is_empty() {
        let raw: Vec<u8> = [1i64, -2].iter().flat_map(|x| x.to_le_bytes()).collect();
        let v = value_of(&field(4, 2, &raw));
        let got = values(&v, DType::Int64, 2).unwrap();
        assert!(matches!(got, Cow::Borrowed(_)));
        assert_eq!(got.as_ref(), raw.as_slice());
        assert!(values(&v, DType::Int64, 3)
            .unwrap_err()
            .contains("tensor_content holds 16"));
        // Typed values win, as in TensorFlow.
        let mut tp = field(4, 2, &raw);
        tp.extend(field(10, 2, &varints(&[9, 8])));
        let v = value_of(&tp);
        assert_eq!(values(&v, DType::Int64, 2).unwrap()[0], 9);
    }

    #[test]
    fn strings_one_field_each() {
        let mut tp = field(8, 2, b"");
        tp.extend(field(8, 2, b"\xff\x00x"));
        let v = value_of(&tp);
        assert_eq!(
            strings(&v, 2).unwrap(),
            vec![b"".to_vec(), b"\xff\x00x".to_vec()]
        );
        assert!(strings(&v, 3)
            .unwrap_err()
            .contains("2 values in string_val"));
    }

    #[test]
    fn malformed_values_are_errors() {
        // Truncated varint run, bad packed length, a length past the end, a group, field 0.
        for bad in [
            value_of(&field(7, 2, &[0x80])),
            value_of(&field(5, 2, &[0, 0, 0])),
            vec![0x12, 0x7f, 0],
            value_of(&[0x0b, 0x0c]),
            value_of(&[0x00, 0x01]),
            vec![
                0x12, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
            ],
        ] {
            assert!(values(&bad, DType::Int32, 1).is_err(), "{bad:?}");
            assert!(values(&bad, DType::Float32, 1).is_err(), "{bad:?}");
        }
        // A huge claimed count with few bytes: refused by the count, nothing allocated.
        let v = value_of(&field(5, 2, &[0; 8]));
        assert!(values(&v, DType::Float32, 1 << 60).is_err());
    }
}
