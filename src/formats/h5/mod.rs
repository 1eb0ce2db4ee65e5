//! Keras HDF5 files, read through the system libhdf5.
//!
//! Layouts, detected from the file's groups and attributes, not its extension:
//!
//! ```text
//! Keras 2 save_weights (tf_keras/src/saving/legacy/hdf5_format.py)
//!   /  attrs layer_names[, layer_names0, layer_names1 … when > 64 KiB], backend, keras_version
//!   /<layer>            attrs weight_names = ["dense/kernel:0", "dense/bias:0"]
//!   /<layer>/<weight name>   dataset (the '/' in the weight name nests groups)
//! Keras 2/3 full model save('x.h5'): the same under /model_weights, plus root attrs
//!   model_config, training_config and a group /optimizer_weights (weight_names attr).
//!   Keras 3 writes no ':0' suffixes here and stores bfloat16 as bare 2-byte opaque.
//! Keras 3 save_weights('x.weights.h5') (keras/src/saving/saving_lib.py)
//!   /layers/<snake_case class>[_N]/vars/<i>        attr `name` on vars = the layer's name
//!   /layers/<x>/cell/vars/<i>, /layers/<x>/layers/<y>/vars/<i>   nested layers
//!   /optimizer/vars/<i>, /vars                     optimizer and model variables
//!   bfloat16: 2-byte opaque with attr dtype="bfloat16"
//! Keras 3 sharded: x.weights.json {"weight_map": {"/layers/…/vars": part(s)}} + parts
//! .keras: a zip of config.json, metadata.json, model.weights.h5
//! ```
//!
//! Anything else that is HDF5 is read generically: every dataset, named by its path.
//!
//! Tensor bytes come straight from a memory map of the file when a dataset is stored
//! contiguously, little-endian and unfiltered (what h5py and Keras write); otherwise
//! libhdf5 reads them (chunked, compressed, big-endian data), converting only byte order.

pub mod archive;
pub mod keras;
pub mod raw;
pub mod writer;

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use crate::formats::{FileBytes, ReadOptions};

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::tensor::{
    num_elements, FileRange, Format, StringReader, TensorData, TensorInfo, TensorSource,
};
use raw::{Kind, TypeInfo};

pub use keras::Layout;

/// Compressed chunks may expand this much (deflate's limit is about 1032×).
const MAX_EXPANSION: u64 = 1100;
/// Below this size a tensor may be read whatever its stored size (fill values).
const MIN_UNBOUNDED: u64 = 1 << 26;
/// How many times its file's size a string dataset's strings may decode to. Each
/// variable-length string is an object of its own in the file's global heap (h5py and
/// libhdf5 write one per element), so real files decode to less than their size; a
/// crafted one whose elements all point at one large heap object would decode to far
/// more than it holds.
const STRING_EXPANSION: u64 = 4;

/// One HDF5 file of a source (several for Keras 3 sharded weights).
struct Part {
    /// The path shown in messages.
    path: PathBuf,
    /// The file libhdf5 opens (differs from `path` for a `.keras` archive's weights).
    real: PathBuf,
    /// Opened on first use when the metadata came from the probe process (which has
    /// already read everything libhdf5 will be asked for); at once otherwise.
    file: std::sync::OnceLock<hdf5::File>,
    /// The file's bytes, for contiguous datasets (mapped unless the options say not to).
    bytes: FileBytes,
    /// Keeps the extracted weights of a `.keras` archive alive.
    _temp: Option<tempfile::TempPath>,
}

impl Part {
    /// The libhdf5 handle, opening the file now if it was not opened yet.
    fn file(&self) -> Result<&hdf5::File> {
        if let Some(f) = self.file.get() {
            return Ok(f);
        }
        let f = open_h5(&self.real, &self.path)?;
        Ok(self.file.get_or_init(|| f))
    }
}

/// What the probe process learns about a file and hands back to ckptconv, so that the
/// file's metadata is read by libhdf5 once, not twice (see [`probe`]).
#[derive(serde::Serialize, serde::Deserialize)]
struct Skeleton {
    format: Format,
    layout: Layout,
    tensors: Vec<TensorInfo>,
    entries: Vec<Entry>,
    layers: Vec<crate::keras::Layer>,
    layer_order: crate::keras::Order,
    optimizer_order: Vec<usize>,
    aliases: Vec<(usize, String, usize)>,
    model_config: Option<String>,
    training_config: Option<String>,
}

#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
enum Storage {
    /// Contiguous little-endian bytes at this file offset: borrowed from the map.
    Mapped(u64),
    /// Read through libhdf5.
    Read,
    /// No bytes.
    Empty,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Entry {
    part: usize,
    /// HDF5 path with its leading slash.
    path: String,
    info: TypeInfo,
    storage: Storage,
}

/// A Keras (or plain) HDF5 weights source.
pub struct H5Source {
    path: PathBuf,
    format: Format,
    layout: Layout,
    parts: Vec<Part>,
    tensors: Vec<TensorInfo>,
    entries: Vec<Entry>,
    layers: Vec<crate::keras::Layer>,
    layer_order: crate::keras::Order,
    /// A Keras 2 full model's `optimizer_weights`, in its `weight_names` order.
    optimizer_order: Vec<usize>,
    /// Other hard links to datasets already listed: (part, path, entry index).
    aliases: Vec<(usize, String, usize)>,
    model_config: Option<String>,
    training_config: Option<String>,
    archive_config: Option<String>,
    /// transformers' `tf_model.h5.index.json`, while the layout is being applied.
    hf_index: Option<HfIndex>,
}

impl std::fmt::Debug for H5Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H5Source")
            .field("path", &self.path)
            .field("layout", &self.layout)
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

/// Open `real` with libhdf5, naming `shown` in errors. libhdf5 takes a shared lock on the
/// file; a writer (h5py, Keras, a training job) holds an exclusive one while the file is
/// open, and that refusal is told apart from a damaged file.
fn open_h5(real: &Path, shown: &Path) -> Result<hdf5::File> {
    hdf5::File::open(real).map_err(|e| {
        let msg = e.to_string();
        if msg.contains("unable to lock file") {
            Error::io(
                shown,
                "open",
                std::io::Error::new(
                    std::io::ErrorKind::WouldBlock,
                    "the file is locked by another process that has it open for writing \
                     (wait for it to finish, or set HDF5_USE_FILE_LOCKING=FALSE to read it \
                     anyway)",
                ),
            )
        } else {
            h5err(shown, "not a readable HDF5 file (truncated or corrupt?)", e)
        }
    })
}

fn h5err(path: &Path, what: &str, e: impl std::fmt::Display) -> Error {
    Error::corrupt(path, format!("{what}: {e}"))
}

/// How long the probe may take on a file of `size` bytes: metadata plus any chunked data
/// at 10 MB/s, after a base of a few seconds (`CKPTCONV_H5_PROBE_SECONDS` sets the base).
fn probe_seconds(size: u64) -> u64 {
    let base = std::env::var("CKPTCONV_H5_PROBE_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(PROBE_BASE_SECS);
    base.saturating_add(size / 10_000_000)
}

/// The executable that can run `__h5probe`: a process-wide fact, set once by the
/// `ckptconv` command line and by the Python module ([`set_isolation`]). The Rust API
/// alone has no such executable, so it reads HDF5 files in process.
static PROBE_EXE: std::sync::OnceLock<(PathBuf, Vec<std::ffi::OsString>)> =
    std::sync::OnceLock::new();

/// The largest Keras 3 sharded weights map (`.weights.json`) read.
const MAX_WEIGHT_MAP: u64 = 64 << 20;

/// A shard map's text as JSON.
fn json_doc(path: &Path, text: &[u8]) -> Result<serde_json::Value> {
    serde_json::from_slice(text).map_err(|e| Error::corrupt(path, format!("not JSON: {e}")))
}

/// The `weight_map` object both shard maps (Keras 3's and transformers') have; `what`
/// names the kind of map for the message when there is none.
fn weight_map<'a>(
    path: &Path,
    doc: &'a serde_json::Value,
    what: &str,
) -> Result<&'a serde_json::Map<String, serde_json::Value>> {
    doc.get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(|| Error::corrupt(path, format!("no \"weight_map\" object (not {what})")))
}

/// The part files a Keras 3 `.weights.json` names, sorted and each once; a name that
/// leaves the map's directory is refused (only the named input and its own parts are
/// read). The entry point of the `weights_json` fuzz target.
pub fn parse_weight_map(path: &Path, text: &[u8]) -> Result<Vec<String>> {
    let doc = json_doc(path, text)?;
    let map = weight_map(path, &doc, "a Keras sharded weights map")?;
    let mut names = std::collections::BTreeSet::new();
    for v in map.values() {
        let list: Vec<&serde_json::Value> = match v {
            serde_json::Value::Array(a) => a.iter().collect(),
            other => vec![other],
        };
        for item in list {
            let s = item
                .as_str()
                .ok_or_else(|| Error::corrupt(path, "weight_map values must be file names"))?;
            if Path::new(s).components().count() != 1 || s.contains("..") || s.contains('/') {
                return Err(Error::corrupt(
                    path,
                    format!("weight_map names a file outside its directory: {s:?}"),
                ));
            }
            names.insert(s.to_string());
        }
    }
    Ok(names.into_iter().collect())
}

/// A sharded weights map's bytes, after checking its size against [`MAX_WEIGHT_MAP`].
fn read_weight_map(path: &Path) -> Result<Vec<u8>> {
    let len = std::fs::metadata(path)
        .map_err(|e| Error::io(path, "stat", e))?
        .len();
    if len > MAX_WEIGHT_MAP {
        return Err(Error::limit(
            path,
            format!(
                "{len} bytes, more than the {MAX_WEIGHT_MAP} a sharded weights map may have here"
            ),
        ));
    }
    std::fs::read(path).map_err(|e| Error::io(path, "read", e))
}

/// transformers' `tf_model.h5.index.json` (`modeling_tf_utils.py`, `tf_shard_checkpoint`):
/// `{"metadata": {"total_size": N}, "weight_map": {"<weight name>": "<shard file>"}}`,
/// each weight's full TF name (`tf_bert_model/bert/…/beta:0`) to the shard that holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HfIndex {
    /// (weight name, shard file), in the map's order.
    pub weights: Vec<(String, String)>,
    /// The shard files, sorted, each once.
    pub shards: Vec<String>,
}

/// True when a JSON sharded weights map is transformers' (keys are weight names) rather
/// than Keras 3's (keys are group paths starting with `/`).
fn is_hf_index(text: &[u8]) -> bool {
    let Ok(doc) = serde_json::from_slice::<serde_json::Value>(text) else {
        return false;
    };
    doc.get("weight_map")
        .and_then(|m| m.as_object())
        .is_some_and(|m| !m.is_empty() && m.keys().any(|k| !k.starts_with('/')))
}

/// A file name a map may name: one plain component, in the map's own directory.
fn plain_file_name(s: &str) -> bool {
    let mut c = Path::new(s).components();
    matches!(
        (c.next(), c.next()),
        (Some(std::path::Component::Normal(_)), None)
    ) && !s.contains('/')
        && !s.contains('\\')
        && !s.contains('\0')
}

/// Parse transformers' `tf_model.h5.index.json`: every shard must be a plain `.h5` file
/// name in the index's directory (`../x.h5` or an absolute path is refused), every weight
/// name a TensorFlow one. The entry point of the `hf_index` fuzz target.
pub fn parse_hf_index(path: &Path, text: &[u8]) -> Result<HfIndex> {
    let doc = json_doc(path, text)?;
    let map = weight_map(path, &doc, "transformers' tf_model.h5.index.json")?;
    if let Some(m) = doc.get("metadata") {
        if !m.is_object() {
            return Err(Error::corrupt(path, "\"metadata\" is not an object"));
        }
    }
    let mut weights = Vec::with_capacity(map.len());
    let mut shards = std::collections::BTreeSet::new();
    for (w, v) in map {
        let s = v.as_str().ok_or_else(|| {
            Error::corrupt_tensor(path, w, "weight_map: the value is not a file name")
        })?;
        if w.is_empty() || w.starts_with('/') {
            return Err(Error::corrupt_tensor(
                path,
                w,
                "weight_map: not a TensorFlow weight name",
            ));
        }
        if !plain_file_name(s) {
            return Err(Error::corrupt_tensor(
                path,
                w,
                format!("weight_map puts it in {s:?}, a file outside the index's directory; only shards beside the index are read"),
            ));
        }
        if !s.ends_with(".h5") {
            return Err(Error::unsupported(
                path,
                format!("weight_map puts {w:?} in {s:?}: ckptconv reads transformers' sharded tf_model.h5 (.h5 shards) through its index, not sharded .safetensors or .bin; convert each part"),
            ));
        }
        shards.insert(s.to_string());
        weights.push((w.clone(), s.to_string()));
    }
    if weights.is_empty() {
        return Err(Error::corrupt(path, "weight_map names no weights"));
    }
    Ok(HfIndex {
        weights,
        shards: shards.into_iter().collect(),
    })
}

/// For a shard of transformers' sharded `tf_model.h5` (`NAME-00001-of-00003.h5`), its
/// index `NAME.h5.index.json` when that is beside it.
fn hf_index_beside(path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?.to_str()?;
    let (base, _, _) = crate::naming::numbered_part(name.strip_suffix(".h5")?)?;
    let index = path.with_file_name(format!("{base}.h5.index.json"));
    index.is_file().then_some(index)
}

/// The largest `config.json` read from a `.keras` archive.
const MAX_KERAS_CONFIG: u64 = 16 << 20;
/// How many times its archive's size `model.weights.h5` may expand to.
const MAX_KERAS_EXPANSION: u64 = 20;
/// The name of `.keras` extraction temporaries, before the extracting process's id.
const KERAS_TEMP_MARKER: &str = ".ckptconv-keras-";

fn z_len(path: &Path) -> Result<u64> {
    Ok(std::fs::metadata(path)
        .map_err(|e| Error::io(path, "stat", e))?
        .len())
}

/// Seconds the probe may take on any file, before the allowance for its size (10 MB/s).
const PROBE_BASE_SECS: u64 = 5;

/// Open every HDF5 file in a child process first (`EXE __h5probe FILE`), so that a file
/// that crashes libhdf5 itself (some corrupt files do, e.g. in its global heap code) is
/// reported as corrupt instead of taking this process down. `exe` must be the `ckptconv`
/// binary, whose `main` answers `__h5probe` with [`probe`].
pub fn set_isolation(exe: PathBuf) {
    set_isolation_command(exe, Vec::new());
}

/// [`set_isolation`] for a host whose executable needs arguments before `__h5probe`
/// (the Python module: its interpreter and its probe script). The first call wins.
pub fn set_isolation_command(exe: PathBuf, args: Vec<std::ffi::OsString>) {
    let _ = PROBE_EXE.set((exe, args));
}

/// What the child does: open the file as ckptconv would and read everything libhdf5
/// reads for us (metadata, attributes, strings, non-contiguous datasets). Exit 0 when
/// all went well, 1 on an ordinary error; a crash shows as a signal. With `emit`, it
/// also prints what it learnt (a `Skeleton`, as JSON) on stdout, so that the parent
/// does not read the same metadata again: on a file of 20,000 small tensors that halves
/// the time to open it.
pub fn probe(path: &Path, emit: bool) -> u8 {
    // A deadline of its own, one second past the parent's: should the parent be gone
    // without the kernel telling us, a file that loops libhdf5 still ends here.
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let secs = probe_seconds(size).saturating_add(1);
    // SAFETY: alarm only schedules SIGALRM, whose default action ends this process.
    unsafe {
        libc::alarm(u32::try_from(secs).unwrap_or(u32::MAX));
    }
    let Ok(src) = H5Source::open_unisolated(path, ReadOptions::default()) else {
        return 1;
    };
    for (i, e) in src.entries.iter().enumerate() {
        if src.tensors[i].dtype == DType::String {
            // A window of elements at a time, as ckptconv reads them; up to the ceiling,
            // past which ckptconv reads no more of them either.
            let Ok(mut r) = src.string_windows(i) else {
                return 1;
            };
            loop {
                match r.next() {
                    Ok(Some(_)) => {}
                    Ok(None) | Err(raw::StringsError::Ceiling(_)) => break,
                    Err(raw::StringsError::Other(_)) => return 1,
                }
            }
        } else if !matches!(e.storage, Storage::Mapped(_)) && src.read(i).is_err() {
            return 1;
        }
    }
    if emit {
        let sk = Skeleton {
            format: src.format,
            layout: src.layout,
            tensors: src.tensors.clone(),
            entries: src.entries.clone(),
            layers: src.layers.clone(),
            layer_order: src.layer_order,
            optimizer_order: src.optimizer_order.clone(),
            aliases: src.aliases.clone(),
            model_config: src.model_config.clone(),
            training_config: src.training_config.clone(),
        };
        use std::io::Write;
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        if serde_json::to_writer(&mut out, &sk).is_err() || out.flush().is_err() {
            return 1;
        }
    }
    // Leave without closing the file: the process ends here, and libhdf5's orderly close
    // of a large file's metadata cache is time spent on nothing.
    std::mem::forget(src);
    0
}

/// Run the probe on `path` (when isolation is on). `Ok(None)`: isolation is off, or the
/// probe met an ordinary error (the in-process open then reports it with its own
/// message). `Ok(Some(json))`: the file is safe to open, and, with `emit`, what the probe
/// learnt about it.
fn isolate(path: &Path, emit: bool) -> Result<Option<Vec<u8>>> {
    let Some((exe, args)) = PROBE_EXE.get() else {
        return Ok(None);
    };
    let mut cmd = std::process::Command::new(exe);
    cmd.args(args).arg("__h5probe");
    // The probe dies with us: a killed parent must not leave it spinning on a file that
    // loops libhdf5.
    // SAFETY: between fork and exec only async-signal-safe calls are made (prctl).
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    if emit {
        cmd.arg("--emit");
    }
    let mut child = cmd
        .arg(path)
        .stdin(std::process::Stdio::null())
        .stdout(if emit {
            std::process::Stdio::piped()
        } else {
            std::process::Stdio::null()
        })
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| Error::io(exe, "run the HDF5 probe", e))?;
    // Drain stdout while waiting, or a large answer would fill the pipe and stall it.
    let reader = child.stdout.take().map(|mut out| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            std::io::Read::read_to_end(&mut out, &mut buf).map(|_| buf)
        })
    });
    // Some corrupt files make libhdf5 loop forever: give the probe a deadline generous
    // for real files (metadata plus any chunked data at 10 MB/s), then give up on it.
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let limit = std::time::Duration::from_secs(probe_seconds(size));
    let start = std::time::Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if start.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Error::corrupt(
                    path,
                    format!(
                        "corrupt HDF5 file: libhdf5 did not finish reading it in {} s, so it is not read",
                        limit.as_secs()
                    ),
                ));
            }
            Ok(None) => {
                // The command line's Ctrl-C while the probe runs (a library caller's open
                // is bounded by the probe's deadline instead).
                if crate::cli::signals::token().is_cancelled() {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(Error::Interrupted);
                }
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            Err(e) => return Err(Error::io(exe, "wait for the HDF5 probe", e)),
        }
    };
    let answer = reader.and_then(|r| r.join().ok()).and_then(|r| r.ok());
    use std::os::unix::process::ExitStatusExt;
    match status.signal() {
        Some(sig) => Err(Error::corrupt(
            path,
            format!(
                "corrupt HDF5 file: libhdf5 crashed reading it (signal {sig}), so it is not read"
            ),
        )),
        None if status.success() => Ok(Some(answer.unwrap_or_default())),
        // An ordinary error is reported by the in-process open, with its own message.
        None => Ok(None),
    }
}

/// Open an HDF5 file read-only (after the probe, when isolation is on).
fn open_part(path: &Path, temp: Option<tempfile::TempPath>, opts: ReadOptions) -> Result<Part> {
    isolate(path, false)?;
    open_part_unisolated(path, temp, opts)
}

/// Open `path` for reading contiguous datasets (mapped unless `opts` say not to).
fn map_file(path: &Path, opts: ReadOptions) -> Result<FileBytes> {
    FileBytes::open(path, opts).map_err(|e| Error::io(path, "open", e))
}

fn open_part_unisolated(
    path: &Path,
    temp: Option<tempfile::TempPath>,
    opts: ReadOptions,
) -> Result<Part> {
    let file = open_h5(path, path)?;
    let bytes = map_file(path, opts)?;
    Ok(Part {
        path: path.to_path_buf(),
        real: path.to_path_buf(),
        file: std::sync::OnceLock::from(file),
        bytes,
        _temp: temp,
    })
}

/// Group nesting deeper than this is not a Keras file, and guards against cycles.
const MAX_DEPTH: usize = 64;

/// Call `found` with every dataset under `group`, depth-first in name order (what h5py's
/// `visititems` lists), as a full path with a leading slash.
///
/// Each member is opened once, relative to its group (`H5Oopen`), and then asked what it
/// is: asking by name first and opening by full path afterwards costs libhdf5 two to
/// four more name lookups per object, which dominated opening files of many small tensors.
/// Nothing is passed over: a dangling link, an external link, and any object that is
/// neither a dataset nor a group (a named datatype: what a dataset whose header lost its
/// dataspace message reads as) is an error naming its path.
/// Hard links can make cycles: `budget` (objects left to visit, from the file's size:
/// every object takes bytes of its own) and [`MAX_DEPTH`] stop a walk that would not end.
/// Datasets reached by several hard links: each is one tensor, read once; its other
/// paths are aliases of the first (a file of 2,000 links to one dataset is one tensor).
#[derive(Default)]
struct Links {
    /// Object token → the first path that reached it, for objects with several links.
    seen: HashMap<String, String>,
    /// (another path, the first path).
    aliases: Vec<(String, String)>,
}

fn walk(
    path: &Path,
    group: &hdf5::Group,
    base: &str,
    depth: usize,
    budget: &mut u64,
    links: &mut Links,
    found: &mut dyn FnMut(String, &hdf5::Dataset) -> Result<()>,
) -> Result<()> {
    if depth > MAX_DEPTH {
        return Err(Error::corrupt(
            path,
            format!("{base}: groups nested more than {MAX_DEPTH} deep (a link cycle?)"),
        ));
    }
    let mut failure: Option<Error> = None;
    let visited = group.iter_visit(
        hdf5::IndexType::Name,
        hdf5::IterationOrder::Increasing,
        |name, info| {
            let full = format!("{base}/{name}");
            let r = (|| {
                // An external link pulls in another file's objects: only the named input
                // is read.
                if info.link_type == hdf5::LinkType::External {
                    return Err(Error::unsupported(
                        path,
                        format!("{full}: an external link to another HDF5 file; ckptconv reads only the file it is given"),
                    ));
                }
                *budget = budget.checked_sub(1).ok_or_else(|| {
                    Error::corrupt(
                        path,
                        format!("{full}: more objects than the file can hold (a link cycle?)"),
                    )
                })?;
                let Ok(cname) = std::ffi::CString::new(name) else {
                    return Ok(());
                };
                let id = raw::h5(|| {
                    // SAFETY: a valid group id and NUL-terminated name; a negative id (a
                    // dangling link) is handled below, an open one is owned by the handle
                    // made from it.
                    unsafe {
                        hdf5_sys::h5o::H5Oopen(
                            group.id(),
                            cname.as_ptr(),
                            hdf5_sys::h5p::H5P_DEFAULT,
                        )
                    }
                });
                if id < 0 {
                    // Nothing is skipped in silence: a dangling link or an object libhdf5
                    // cannot open is an error naming it.
                    return Err(Error::corrupt(
                        path,
                        format!("{full}: cannot be opened (a dangling link, or a corrupt object header)"),
                    ));
                }
                // SAFETY: `id` is a fresh open object id.
                let kind = raw::h5(|| unsafe { hdf5_sys::h5i::H5Iget_type(id) });
                match kind {
                    hdf5_sys::h5i::H5I_type_t::H5I_DATASET => {
                        // SAFETY: `id` is an open dataset id; the handle takes it over.
                        let ds: hdf5::Dataset = unsafe { hdf5::from_id(id) }
                            .map_err(|e| h5err(path, &format!("open {full}"), e))?;
                        let info = ds
                            .loc_info()
                            .map_err(|e| h5err(path, &format!("object info of {full}"), e))?;
                        if info.num_links > 1 {
                            let token = format!("{:?}", info.token);
                            if let Some(first) = links.seen.get(&token) {
                                links.aliases.push((full, first.clone()));
                                return Ok(());
                            }
                            links.seen.insert(token, full.clone());
                        }
                        found(full, &ds)
                    }
                    hdf5_sys::h5i::H5I_type_t::H5I_GROUP => {
                        // SAFETY: `id` is an open group id; the handle takes it over.
                        let g: hdf5::Group = unsafe { hdf5::from_id(id) }
                            .map_err(|e| h5err(path, &format!("open {full}"), e))?;
                        walk(path, &g, &full, depth + 1, budget, links, found)
                    }
                    other => {
                        drop(raw::Id(id, hdf5_sys::h5o::H5Oclose));
                        // libhdf5 tells objects apart by the messages in their headers:
                        // one bit flipped in a dataset's header (its dataspace message's
                        // type) leaves only a datatype message, and the dataset reads as
                        // a named datatype. Keras and h5py never write those; a walk that
                        // passed over it would drop a tensor without a word.
                        let what = match other {
                            hdf5_sys::h5i::H5I_type_t::H5I_DATATYPE => {
                                "a named (committed) datatype".to_string()
                            }
                            k => format!("an HDF5 object of kind {k:?}"),
                        };
                        Err(Error::corrupt(
                            path,
                            format!(
                                "{}: {what}, neither a dataset nor a group; weight files hold \
                                 none, and a damaged dataset header reads as one, so the file \
                                 is not read rather than read without it",
                                crate::error::short(&full)
                            ),
                        ))
                    }
                }
            })();
            match r {
                Ok(()) => Ok(()),
                Err(e) => {
                    failure = Some(e);
                    // Stop the iteration; the error is reported below.
                    Err(hdf5::Error::from("stopped"))
                }
            }
        },
    );
    if let Some(e) = failure {
        return Err(e);
    }
    visited.map_err(|e| {
        h5err(
            path,
            &format!(
                "list the members of {}",
                if base.is_empty() { "/" } else { base }
            ),
            e,
        )
    })
}

/// The dtype of a dataset, from its HDF5 type and (for opaque data) its `dtype` attribute.
fn dtype_of(
    info: &TypeInfo,
    dtype_attr: Option<&str>,
    keras: bool,
) -> std::result::Result<DType, String> {
    Ok(match &info.kind {
        Kind::Int { size, signed } | Kind::Enum { size, signed } => match (size, signed) {
            (1, true) => DType::Int8,
            (2, true) => DType::Int16,
            (4, true) => DType::Int32,
            (8, true) => DType::Int64,
            (1, false) => DType::UInt8,
            (2, false) => DType::UInt16,
            (4, false) => DType::UInt32,
            (8, false) => DType::UInt64,
            _ => return Err(format!("{size}-byte integers")),
        },
        Kind::Float { size } => match size {
            2 => DType::Float16,
            4 => DType::Float32,
            8 => DType::Float64,
            _ => return Err(format!("{size}-byte floats")),
        },
        Kind::Bool => DType::Bool,
        Kind::Complex { part: 4 } => DType::Complex64,
        Kind::Complex { .. } => DType::Complex128,
        Kind::Opaque { size } => match dtype_attr.and_then(DType::from_name) {
            Some(d) if d.size() == Some(*size) => d,
            None if *size == 2 && (keras || dtype_attr.is_none()) => DType::BFloat16,
            _ => {
                return Err(format!(
                    "{size}-byte opaque data{}",
                    dtype_attr
                        .map(|a| format!(" with dtype attribute {a:?}"))
                        .unwrap_or_default()
                ))
            }
        },
        Kind::FixedString { .. } | Kind::VarString => DType::String,
        Kind::Other(what) => return Err(format!("HDF5 type {what}")),
    })
}

/// A string dataset's elements for [`TensorSource::strings`], errors naming the file and
/// the dataset.
struct H5StringReader<'a> {
    inner: raw::H5Strings,
    path: &'a Path,
    name: &'a str,
    file_len: u64,
}

impl StringReader for H5StringReader<'_> {
    fn len(&self) -> u64 {
        self.inner.len()
    }

    fn next(&mut self) -> Result<Option<&[u8]>> {
        let (path, name, file_len) = (self.path, self.name, self.file_len);
        self.inner.next().map_err(|e| match e {
            raw::StringsError::Ceiling(c) => Error::limit_tensor(
                path,
                name,
                format!(
                    "its strings decode to more than {c} bytes, the most ckptconv reads from a file of \
                     {file_len} bytes ({STRING_EXPANSION}× its size, at least {MIN_UNBOUNDED}); its elements \
                     must point at the same heap objects over and over, so it is not read"
                ),
            ),
            raw::StringsError::Other(w) => Error::corrupt_tensor(path, name, w),
        })
    }
}

#[cfg_attr(not(feature = "internals"), allow(dead_code))] // the tests and fuzz targets use it
impl H5Source {
    /// String dataset `index`, ready to be read a window of elements at a time, with the
    /// ceiling on what its strings may decode to: [`STRING_EXPANSION`] × the file's size
    /// (at least [`MIN_UNBOUNDED`]).
    fn string_windows(&self, index: usize) -> std::result::Result<raw::H5Strings, String> {
        let e = &self.entries[index];
        let part = &self.parts[e.part];
        let file_len = part.bytes.len();
        let ceiling = match e.info.kind {
            Kind::VarString => file_len.saturating_mul(STRING_EXPANSION),
            // Fixed-length strings are stored in the dataset itself, maybe compressed:
            // the bound of any compressed data.
            _ => part
                .file()
                .map_err(|x| x.detail())?
                .dataset(&e.path)
                .map_err(|x| x.to_string())?
                .storage_size()
                .saturating_mul(MAX_EXPANSION),
        }
        .max(MIN_UNBOUNDED);
        let ds = part
            .file()
            .map_err(|x| x.detail())?
            .dataset(&e.path)
            .map_err(|x| x.to_string())?;
        raw::H5Strings::open(&ds, &e.info, ceiling)
    }

    /// Open one HDF5 file (Keras 2, Keras 3, full model, or generic).
    pub fn open(path: &Path) -> Result<H5Source> {
        Self::open_with(path, ReadOptions::default())
    }

    /// [`open`](Self::open), reading the file as `opts` says.
    pub fn open_with(path: &Path, opts: ReadOptions) -> Result<H5Source> {
        let answer = isolate(path, true)?;
        match answer.and_then(|json| serde_json::from_slice::<Skeleton>(&json).ok()) {
            Some(sk) => Self::from_skeleton(path, sk, opts),
            None => Self::open_unisolated(path, opts),
        }
    }

    /// A source from what the probe learnt; libhdf5 opens the file only if a tensor
    /// must be read through it.
    fn from_skeleton(path: &Path, sk: Skeleton, opts: ReadOptions) -> Result<H5Source> {
        if sk.tensors.len() != sk.entries.len() || sk.entries.iter().any(|e| e.part != 0) {
            return Self::open_unisolated(path, opts);
        }
        let part = Part {
            path: path.to_path_buf(),
            real: path.to_path_buf(),
            file: std::sync::OnceLock::new(),
            bytes: map_file(path, opts)?,
            _temp: None,
        };
        Ok(H5Source {
            path: path.to_path_buf(),
            format: sk.format,
            layout: sk.layout,
            parts: vec![part],
            tensors: sk.tensors,
            entries: sk.entries,
            layers: sk.layers,
            layer_order: sk.layer_order,
            optimizer_order: sk.optimizer_order,
            aliases: sk.aliases,
            model_config: sk.model_config,
            training_config: sk.training_config,
            archive_config: None,
            hf_index: None,
        })
    }

    fn open_unisolated(path: &Path, opts: ReadOptions) -> Result<H5Source> {
        let part = open_part_unisolated(path, None, opts)?;
        Self::from_parts(path, vec![part], None, None)
    }

    /// Open a file that must have a Keras layout (for commands that need layers).
    pub fn open_keras(path: &Path) -> Result<H5Source> {
        let src = Self::open(path)?;
        if src.layout == Layout::Generic {
            return Err(Error::unsupported(
                path,
                "HDF5 file without a Keras layout (no layer_names attribute, no \
                 /model_weights group, no /layers group)",
            ));
        }
        Ok(src)
    }

    /// Open a `.keras` archive: its `model.weights.h5`, plus `config.json`.
    pub fn open_keras_archive(path: &Path) -> Result<H5Source> {
        Self::open_keras_archive_with(path, ReadOptions::default())
    }

    /// [`open_keras_archive`](Self::open_keras_archive), reading as `opts` says.
    pub fn open_keras_archive_with(path: &Path, opts: ReadOptions) -> Result<H5Source> {
        use std::io::Read;
        let f = File::open(path).map_err(|e| Error::io(path, "open", e))?;
        let mut z = zip::ZipArchive::new(f)
            .map_err(|e| Error::corrupt(path, format!("bad zip archive: {e}")))?;
        let archive_len = z_len(path)?;
        let config = match z.by_name("config.json") {
            Ok(entry) => {
                // Real configs are kilobytes to a few megabytes.
                if entry.size() > MAX_KERAS_CONFIG {
                    return Err(Error::limit(
                        path,
                        format!(
                            "config.json of {} bytes, more than the {MAX_KERAS_CONFIG} a model config may have here",
                            entry.size()
                        ),
                    ));
                }
                let mut s = String::new();
                entry
                    .take(MAX_KERAS_CONFIG)
                    .read_to_string(&mut s)
                    .map_err(|e| Error::corrupt(path, format!("config.json: {e}")))?;
                Some(s)
            }
            Err(_) => None,
        };
        let entry = z.by_name("model.weights.h5").map_err(|_| {
            Error::corrupt(
                path,
                "zip archive has no model.weights.h5 (not a .keras file)",
            )
        })?;
        // A zip bomb must not fill the disk: the entry may expand to its declared size
        // only, and that only within a ratio of the archive's size that real weights
        // (stored, or deflated float data) never approach.
        let declared = entry.size();
        let ceiling = archive_len
            .saturating_mul(MAX_KERAS_EXPANSION)
            .saturating_add(1 << 20);
        if declared > ceiling {
            return Err(Error::corrupt(
                path,
                format!(
                    "model.weights.h5 claims {declared} bytes from a {archive_len}-byte archive (a zip bomb?)"
                ),
            ));
        }
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
        let temp_dir = std::env::temp_dir();
        crate::commit::remove_stale_temps(&temp_dir, KERAS_TEMP_MARKER);
        let tmp = tempfile::Builder::new()
            .prefix(&format!("{KERAS_TEMP_MARKER}{}-", std::process::id()))
            .suffix(".h5")
            .tempfile_in(&temp_dir)
            .or_else(|_| tempfile::NamedTempFile::new_in(dir.unwrap_or(Path::new("."))))
            .map_err(|e| Error::io(std::env::temp_dir(), "create a temporary file", e))?;
        let (mut file, tpath) = tmp.into_parts();
        let copied = std::io::copy(&mut entry.take(declared.saturating_add(1)), &mut file)
            .map_err(|e| Error::corrupt(path, format!("model.weights.h5: {e}")))?;
        if copied != declared {
            return Err(Error::corrupt(
                path,
                format!(
                    "model.weights.h5 expands to {copied} bytes, not the {declared} its entry says"
                ),
            ));
        }
        drop(file);
        let p = tpath.to_path_buf();
        let part = open_part(&p, Some(tpath), opts).map_err(|e| match e {
            Error::Input { kind, what, .. } => {
                Error::input(kind, path, format!("model.weights.h5: {what}"))
            }
            other => other,
        })?;
        let mut src = Self::from_parts(path, vec![part], config, None)?;
        src.parts[0].path = path.join("model.weights.h5");
        Ok(src)
    }

    /// Open an HDF5 file: a shard of transformers' sharded `tf_model.h5` with its index
    /// beside it is read as the whole model, through the index (as a TF checkpoint's data
    /// shard is read as its checkpoint); any other file on its own.
    pub fn open_file(path: &Path) -> Result<H5Source> {
        Self::open_file_with(path, ReadOptions::default())
    }

    /// [`open_file`](Self::open_file), reading as `opts` say.
    pub fn open_file_with(path: &Path, opts: ReadOptions) -> Result<H5Source> {
        match hf_index_beside(path) {
            Some(index) => Self::open_hf_index_with(&index, Some(path), opts),
            None => Self::open_with(path, opts),
        }
    }

    /// Open a JSON map of shards, told apart by content: Keras 3's `.weights.json` (its
    /// keys are group paths, `/layers/dense/vars`) or transformers' `tf_model.h5.index.json`
    /// (its keys are weight names, `tf_bert_model/bert/…:0`).
    pub fn open_sharded(path: &Path) -> Result<H5Source> {
        Self::open_sharded_with(path, ReadOptions::default())
    }

    /// [`open_sharded`](Self::open_sharded), reading as `opts` say.
    pub fn open_sharded_with(path: &Path, opts: ReadOptions) -> Result<H5Source> {
        let text = read_weight_map(path)?;
        if is_hf_index(&text) {
            return Self::open_hf_index_text(path, &text, None, opts);
        }
        let names = parse_weight_map(path, &text)?;
        let dir = path.parent().unwrap_or(Path::new(""));
        let mut parts = Vec::new();
        for n in &names {
            let p = dir.join(n);
            if !p.is_file() {
                return Err(Error::not_found(
                    &p,
                    format!("shard named by {} is missing", path.display()),
                ));
            }
            parts.push(open_part(&p, None, opts)?);
        }
        if parts.is_empty() {
            return Err(Error::corrupt(path, "weight_map names no files"));
        }
        Self::from_parts(path, parts, None, None)
    }

    /// Open transformers' sharded `tf_model.h5` through its `tf_model.h5.index.json`, as
    /// `load_tf_sharded_weights` reads it: every shard the index names (plain file names
    /// in the index's directory, each checked to exist), every weight where the index
    /// says. `shard`: the shard the user named, which must be one of them.
    pub fn open_hf_index(path: &Path, shard: Option<&Path>) -> Result<H5Source> {
        Self::open_hf_index_with(path, shard, ReadOptions::default())
    }

    /// [`open_hf_index`](Self::open_hf_index), reading as `opts` say.
    pub fn open_hf_index_with(
        path: &Path,
        shard: Option<&Path>,
        opts: ReadOptions,
    ) -> Result<H5Source> {
        let text = read_weight_map(path)?;
        Self::open_hf_index_text(path, &text, shard, opts)
    }

    fn open_hf_index_text(
        path: &Path,
        text: &[u8],
        shard: Option<&Path>,
        opts: ReadOptions,
    ) -> Result<H5Source> {
        let index = parse_hf_index(path, text)?;
        let dir = path.parent().unwrap_or(Path::new(""));
        if let Some(s) = shard {
            let name = s.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            if !index.shards.iter().any(|n| n == name) {
                return Err(Error::corrupt(
                    s,
                    format!(
                        "a shard of transformers' sharded tf_model.h5 that its index {} does not name (it names {})",
                        path.display(),
                        index.shards.join(", ")
                    ),
                ));
            }
        }
        let mut parts = Vec::new();
        for n in &index.shards {
            let p = dir.join(n);
            if !p.is_file() {
                return Err(Error::not_found(
                    &p,
                    format!("shard named by {} is missing", path.display()),
                ));
            }
            parts.push(open_part(&p, None, opts)?);
        }
        Self::from_parts(path, parts, None, Some(index))
    }

    fn from_parts(
        path: &Path,
        parts: Vec<Part>,
        archive_config: Option<String>,
        hf_index: Option<HfIndex>,
    ) -> Result<H5Source> {
        let layout =
            keras::detect(parts[0].file()?).map_err(|e| Error::corrupt(&parts[0].path, e))?;
        let layout = if hf_index.is_some() {
            for p in &parts {
                let l = keras::detect(p.file()?).map_err(|e| Error::corrupt(&p.path, e))?;
                if l != Layout::HfShard {
                    return Err(Error::corrupt(
                        &p.path,
                        format!(
                            "named by {} but not a shard of transformers' sharded tf_model.h5 (its root layer_names does not list its datasets)",
                            path.display()
                        ),
                    ));
                }
            }
            Layout::HfSharded
        } else if parts.len() > 1 {
            Layout::Keras3Sharded
        } else {
            layout
        };
        let keras = layout != Layout::Generic;
        let mut tensors = Vec::new();
        let mut entries = Vec::new();
        let mut pending_aliases: Vec<(usize, String, String)> = Vec::new();
        for (pi, part) in parts.iter().enumerate() {
            let map_len = part.bytes.len();
            let mut budget = map_len / 8 + 1000;
            let addr_size = part
                .file()?
                .fcpl()
                .map_err(|e| h5err(&part.path, "file creation properties", e))?
                .sizes()
                .sizeof_addr as u64;
            let mut found = |p: String, ds: &hdf5::Dataset| -> Result<()> {
                let name = p.trim_start_matches('/').to_string();
                let bad = |what: String| Error::corrupt_tensor(&part.path, &name, what);
                raw::h5(|| raw::check_storage(ds))
                    .map_err(|w| Error::unsupported_tensor(&part.path, &name, w))?;
                let info = raw::dataset_type(ds).map_err(bad)?;
                // Only opaque data needs its `dtype` attribute (Keras 3's bfloat16).
                let dtype_attr = match info.kind {
                    Kind::Opaque { .. } => match raw::read_str_attr(ds, "dtype") {
                        Ok(a) => a,
                        Err(e) if e.limit => {
                            return Err(Error::limit_tensor(&part.path, &name, e.msg))
                        }
                        Err(_) => None,
                    },
                    _ => None,
                };
                let dtype = dtype_of(&info, dtype_attr.as_deref(), keras)
                    .map_err(|w| Error::unsupported_tensor(&part.path, &name, w))?;
                let shape: Vec<u64> = ds.shape().iter().map(|&d| d as u64).collect();
                let elements =
                    num_elements(&shape).ok_or_else(|| bad("element count overflows".into()))?;
                raw::check_extent(ds, &info, elements, map_len, addr_size).map_err(bad)?;
                let byte_len = match (&info.kind, dtype.size()) {
                    (Kind::VarString, _) => ds.storage_size(),
                    (_, Some(es)) => elements
                        .checked_mul(es as u64)
                        .ok_or_else(|| bad("byte size overflows".into()))?,
                    (_, None) => elements
                        .checked_mul(info.size as u64)
                        .ok_or_else(|| bad("byte size overflows".into()))?,
                };
                let storage = if byte_len == 0 {
                    Storage::Empty
                } else {
                    match ds.offset() {
                        Some(off)
                            if dtype != DType::String
                                && (!info.big_endian || info.size == 1)
                                && ds.storage_size() == byte_len
                                && off.checked_add(byte_len).is_some_and(|e| e <= map_len) =>
                        {
                            Storage::Mapped(off)
                        }
                        _ => Storage::Read,
                    }
                };
                tensors.push(TensorInfo {
                    variable: name.clone(),
                    name,
                    dtype,
                    shape,
                    byte_len,
                    shard: (parts.len() > 1).then_some(pi as u32),
                    slices: 0,
                    object_path: None,
                });
                entries.push(Entry {
                    part: pi,
                    path: p,
                    info,
                    storage,
                });
                Ok(())
            };
            let root = part
                .file()?
                .as_group()
                .map_err(|e| h5err(&part.path, "root group", e))?;
            let mut links = Links::default();
            walk(
                &part.path,
                &root,
                "",
                0,
                &mut budget,
                &mut links,
                &mut found,
            )?;
            pending_aliases.extend(links.aliases.into_iter().map(|(a, f)| (pi, a, f)));
        }
        let aliases: Vec<(usize, String, usize)> = pending_aliases
            .into_iter()
            .filter_map(|(pi, alias, first)| {
                let i = entries
                    .iter()
                    .position(|e: &Entry| e.part == pi && e.path == first)?;
                Some((pi, alias, i))
            })
            .collect();
        let mut src = H5Source {
            path: path.to_path_buf(),
            format: if keras { Format::KerasH5 } else { Format::Hdf5 },
            layout,
            parts,
            tensors,
            entries,
            layers: Vec::new(),
            layer_order: crate::keras::Order::Recorded,
            optimizer_order: Vec::new(),
            aliases,
            model_config: None,
            training_config: None,
            archive_config,
            hf_index,
        };
        keras::apply_layout(&mut src)?;
        Ok(src)
    }

    /// Which layout was detected.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// The root `model_config` attribute of a full-model file (JSON).
    pub fn model_config(&self) -> Option<&str> {
        self.model_config.as_deref()
    }

    /// The root `training_config` attribute of a full-model file (JSON).
    pub fn training_config(&self) -> Option<&str> {
        self.training_config.as_deref()
    }

    /// `config.json` of a `.keras` archive.
    pub fn archive_config(&self) -> Option<&str> {
        self.archive_config.as_deref()
    }
}

impl TensorSource for H5Source {
    fn format(&self) -> Format {
        self.format
    }

    fn path(&self) -> &Path {
        &self.path
    }

    fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    fn layers(&self) -> &[crate::tensor::Layer] {
        &self.layers
    }

    fn layer_order(&self) -> crate::keras::Order {
        self.layer_order
    }

    fn loads_by_position(&self) -> bool {
        matches!(self.layout, Layout::Keras2Weights | Layout::Keras2FullModel)
    }

    fn keras3_paths(&self) -> bool {
        matches!(self.layout, Layout::Keras3Weights | Layout::Keras3Sharded)
    }

    fn keras_config(&self) -> Option<crate::keras::KerasConfig<'_>> {
        match (&self.archive_config, &self.model_config) {
            (Some(c), _) => Some(crate::keras::KerasConfig::Keras3(c)),
            (None, Some(c)) if crate::keras::is_keras3_top(c) => {
                Some(crate::keras::KerasConfig::Keras3(c))
            }
            (None, Some(c)) => Some(crate::keras::KerasConfig::Keras2(c)),
            _ => None,
        }
    }

    fn optimizer_order(&self) -> Option<&[usize]> {
        (!self.optimizer_order.is_empty()).then_some(self.optimizer_order.as_slice())
    }

    fn files(&self) -> Vec<PathBuf> {
        let mut v = vec![self.path.clone()];
        for p in &self.parts {
            if p._temp.is_none() && p.path != self.path {
                v.push(p.path.clone());
            }
        }
        v
    }

    fn stored_at(&self, index: usize) -> Option<(u32, u64)> {
        let e = &self.entries[index];
        match e.storage {
            Storage::Mapped(off) => Some((e.part as u32, off)),
            _ => None,
        }
    }

    fn file_range(&self, index: usize) -> Option<FileRange<'_>> {
        let e = &self.entries[index];
        match e.storage {
            Storage::Mapped(off) => Some(FileRange {
                file: self.parts[e.part].bytes.file(),
                offset: off,
                check: None,
            }),
            _ => None,
        }
    }

    fn release(&self, index: usize) {
        let e = &self.entries[index];
        if let Storage::Mapped(off) = e.storage {
            self.parts[e.part]
                .bytes
                .release(off, self.tensors[index].byte_len);
        }
    }

    fn strings(&self, index: usize) -> Result<Box<dyn StringReader + '_>> {
        let info = &self.tensors[index];
        let part = &self.parts[self.entries[index].part];
        if info.dtype != DType::String {
            return Err(Error::unsupported_tensor(
                &part.path,
                &info.name,
                "not a string tensor",
            ));
        }
        let inner = self
            .string_windows(index)
            .map_err(|w| Error::corrupt_tensor(&part.path, &info.name, w))?;
        Ok(Box::new(H5StringReader {
            inner,
            path: &part.path,
            name: &info.name,
            file_len: part.bytes.len(),
        }))
    }

    fn read(&self, index: usize) -> Result<TensorData<'_>> {
        let info = &self.tensors[index];
        let e = &self.entries[index];
        let part = &self.parts[e.part];
        let bad = |what: String| Error::corrupt_tensor(&part.path, &info.name, what);
        if info.dtype == DType::String {
            let mut r = self.strings(index)?;
            let mut out = Vec::new();
            while let Some(s) = r.next()? {
                out.push(s.to_vec());
            }
            return Ok(TensorData::Strings(out));
        }
        match e.storage {
            Storage::Empty => Ok(TensorData::Bytes(Cow::Borrowed(&[]))),
            Storage::Mapped(off) => part
                .bytes
                .get(off, info.byte_len, &part.path, &info.name)
                .ok_or_else(|| bad("data lies past the end of the file (truncated?)".into()))?
                .map(TensorData::Bytes),
            Storage::Read => {
                let ds = part
                    .file()?
                    .dataset(&e.path)
                    .map_err(|x| bad(x.to_string()))?;
                // Bound the allocation by what the file stores: deflate expands at most
                // ~1032×, so a shape far beyond that is a lie, not a tensor.
                let stored = ds.storage_size();
                if info.byte_len > stored.saturating_mul(MAX_EXPANSION).max(MIN_UNBOUNDED) {
                    return Err(bad(format!(
                        "declares {} bytes of data but the file stores only {stored}",
                        info.byte_len
                    )));
                }
                let mut out = part
                    .bytes
                    .opts()
                    .buffer(info.byte_len, &part.path, &info.name)?;
                raw::read_dataset_le(&ds, &e.info, &mut out).map_err(bad)?;
                Ok(TensorData::Bytes(Cow::Owned(out)))
            }
        }
    }
}
