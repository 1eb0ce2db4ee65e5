//! One module per format, and detection of the format by content.
//!
//! [`open`] looks at the bytes first (magic numbers), then at the structure of files that
//! have none (a frozen GraphDef is a bare protocol buffer: [`tf::graphdef::classify`]), and
//! at names only where a format has no content to go by (a data shard is raw bytes). It
//! also recognises common files that are *not* ours — PyTorch / Lightning `.ckpt` archives
//! and pickles, ONNX and TFLite models, NumPy files, compressed or tar archives, protobuf
//! text, a `.meta` graph without its checkpoint — and says what they are and what was
//! expected, instead of reporting a missing checkpoint index for a file that exists.

mod filebytes;
pub mod h5;
pub mod safetensors;
pub mod tf;

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use crate::error::{Error, Result};
use crate::tensor::TensorSource;

pub(crate) use filebytes::FileBytes;
pub use filebytes::ReadOptions;

/// Drop the pages of `map[offset..offset+len]` from this process (see
/// [`TensorSource::release`]). Errors are ignored: this is only advice.
pub(crate) fn release_range(map: &memmap2::Mmap, offset: u64, len: u64) {
    let (Ok(off), Ok(len)) = (usize::try_from(offset), usize::try_from(len)) else {
        return;
    };
    if len == 0 || off.checked_add(len).is_none_or(|end| end > map.len()) {
        return;
    }
    // SAFETY: MADV_DONTNEED on a read-only, file-backed shared mapping only drops this
    // process's page-table entries; the next access faults the same bytes back in from
    // the page cache, so no live slice into the map ever sees different contents.
    let _ = unsafe { map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, off, len) };
}

/// What the first and last bytes of a file say it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniffed {
    /// Ends with the LevelDB table magic: a TensorBundle `.index`.
    TfIndex,
    /// HDF5 signature at offset 0.
    Hdf5,
    /// A zip archive (`.keras`, or a PyTorch archive).
    Zip,
    /// A Python pickle (legacy `torch.save`).
    Pickle,
    /// A u64 header length followed by `{`: safetensors.
    Safetensors,
    /// A JSON object (Keras 3 sharded weights map `.weights.json`, transformers'
    /// `tf_model.h5.index.json`).
    Json,
    /// Empty file.
    Empty,
    /// None of the above.
    Unknown,
}

const HDF5_MAGIC: &[u8; 8] = b"\x89HDF\r\n\x1a\n";

/// Classify a file by its first 16 and last 8 bytes.
pub fn sniff(path: &Path) -> Result<Sniffed> {
    let mut f = File::open(path).map_err(|e| Error::io(path, "open", e))?;
    let len = f.metadata().map_err(|e| Error::io(path, "stat", e))?.len();
    if len == 0 {
        return Ok(Sniffed::Empty);
    }
    let mut head = [0u8; 16];
    let n = read_up_to(&mut f, &mut head).map_err(|e| Error::io(path, "read", e))?;
    let head = &head[..n];
    if head.starts_with(HDF5_MAGIC) {
        return Ok(Sniffed::Hdf5);
    }
    if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        return Ok(Sniffed::Zip);
    }
    // Safetensors before pickle: a header length of 0x?80 with a second byte of 2–5 (896
    // bytes, say) starts like a pickle's protocol opcode; a pickle has no `{` at byte 8
    // after a length that fits the file.
    if head.len() >= 9 && head[8] == b'{' {
        let hlen = u64::from_le_bytes(head[..8].try_into().expect("8 bytes"));
        if hlen.checked_add(8).is_some_and(|end| end <= len) {
            return Ok(Sniffed::Safetensors);
        }
    }
    if head.len() >= 2 && head[0] == 0x80 && (2..=5).contains(&head[1]) {
        return Ok(Sniffed::Pickle);
    }
    if head.first() == Some(&b'{') && path.extension().is_none_or(|e| e != "index") {
        return Ok(Sniffed::Json);
    }
    if len >= tf::table::FOOTER_LEN as u64 {
        let mut tail = [0u8; 8];
        f.seek(SeekFrom::End(-8))
            .map_err(|e| Error::io(path, "seek", e))?;
        f.read_exact(&mut tail)
            .map_err(|e| Error::io(path, "read", e))?;
        if tf::table::has_table_magic(&tail) {
            return Ok(Sniffed::TfIndex);
        }
    }
    Ok(Sniffed::Unknown)
}

fn read_up_to(f: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Names of the members of a zip archive, for telling `.keras` from PyTorch.
fn zip_members(path: &Path) -> Result<Vec<String>> {
    let f = File::open(path).map_err(|e| Error::io(path, "open", e))?;
    let z = zip::ZipArchive::new(f)
        .map_err(|e| Error::corrupt(path, format!("bad zip archive: {e}")))?;
    Ok(z.file_names()
        .filter_map(|n| n.ok().map(|n| n.into_owned()))
        .collect())
}

/// What a zip archive that is not a `.keras` model holds, for the error.
fn zip_without_keras(members: &[String]) -> String {
    let has = |suffix: &str| members.iter().any(|m| m.ends_with(suffix));
    if !members.is_empty()
        && members
            .iter()
            .all(|m| m.ends_with(".npy") || m.ends_with('/'))
    {
        return "a NumPy .npz archive (not a .keras model); ".to_string() + EXPECTED;
    }
    let inside = [
        ("saved_model.pb", "a SavedModel"),
        (".index", "a TensorFlow checkpoint"),
        (".h5", "an HDF5 file"),
        (".safetensors", "a safetensors file"),
        (".pb", "a .pb graph"),
    ]
    .iter()
    .find(|(s, _)| has(s))
    .map(|(_, w)| format!(" holding {w}: unpack it first and give the file or directory inside"))
    .unwrap_or_else(|| " without model.weights.h5 (not a .keras model)".to_string());
    format!("a zip archive{inside}")
}

/// Whether the file name says it is one of the files of a TensorFlow checkpoint whose
/// content has no magic of its own (data shards, `.meta` graphs, the state file).
fn is_tf_part_name(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    name == "checkpoint"
        || tf::resolve::strip_shard_suffix(name).is_some()
        || (name.ends_with(".meta")
            && (path.with_extension("index").is_file()
                || tf::v1::resolve(path).ok().flatten().is_some()))
}

/// What ckptconv reads, for messages about files that are none of it.
const EXPECTED: &str =
    "ckptconv reads TensorFlow checkpoints and SavedModels, frozen GraphDefs (.pb), \
                        Keras HDF5 and .keras files, and safetensors";

/// What the content of a file that matched no format looks like.
struct Described {
    /// "an ONNX model (ModelProto, made by tf2onnx)", "a text file", …
    what: String,
    /// What to do instead, when there is something better to say than [`EXPECTED`].
    hint: Option<String>,
    /// A format recognised for what it is (not unknown bytes).
    known: bool,
}

/// The first `n` bytes of a file (fewer if it is shorter).
fn head_of(path: &Path, n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    let got = File::open(path)
        .and_then(|mut f| read_up_to(&mut f, &mut buf))
        .unwrap_or(0);
    buf.truncate(got);
    buf
}

/// Whether `head` looks like text: UTF-8 (a character cut at the end allowed) without
/// control characters other than tab, newline and carriage return.
fn is_text(head: &[u8]) -> bool {
    let valid = match std::str::from_utf8(head) {
        Ok(s) => s,
        Err(e) if e.error_len().is_none() => {
            std::str::from_utf8(&head[..e.valid_up_to()]).unwrap_or_default()
        }
        Err(_) => return false,
    };
    !valid.is_empty()
        && valid
            .chars()
            .all(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r'))
}

/// Describe a file by its content: magic numbers, then the protocol buffers TensorFlow
/// and ONNX write ([`tf::graphdef::classify`]), then text.
fn describe(path: &Path, kind: &tf::graphdef::Kind) -> Described {
    use tf::graphdef::Kind;
    let head = head_of(path, 512);
    let known = |what: &str, hint: Option<String>| Described {
        what: what.to_string(),
        hint,
        known: true,
    };
    let at = |off: usize, magic: &[u8]| head.get(off..off + magic.len()) == Some(magic);
    if at(4, b"TFL3") {
        return known(
            "a TensorFlow Lite model (a FlatBuffer with identifier TFL3)",
            Some("ckptconv does not read TFLite models; convert the model they came from".into()),
        );
    }
    if at(0, b"\x93NUMPY") {
        return known("a NumPy .npy array", None);
    }
    if at(0, b"GGUF") {
        return known("a GGUF model file (llama.cpp)", None);
    }
    for (magic, what) in [
        (&b"\x1f\x8b"[..], "gzip"),
        (&b"BZh"[..], "bzip2"),
        (&b"\xfd7zXZ\x00"[..], "xz"),
        (&b"\x28\xb5\x2f\xfd"[..], "zstd"),
    ] {
        if at(0, magic) {
            return known(
                &format!("a {what}-compressed file"),
                Some("unpack it first (a downloaded model is often a .tar.gz)".into()),
            );
        }
    }
    if at(257, b"ustar") {
        return known(
            "a tar archive",
            Some("unpack it first and give the model file or directory inside".into()),
        );
    }
    match kind {
        Kind::MetaGraphDef => {
            let stem = path.with_extension("");
            let index = tf::bundle::index_path(&stem);
            let hint = if path.extension().is_some_and(|e| e == "meta") {
                format!(
                    "its checkpoint does not exist (neither {} nor a V1 checkpoint {}); give the checkpoint saved with it",
                    index.display(),
                    stem.display()
                )
            } else {
                "give the checkpoint saved with it".to_string()
            };
            return known(
                "a TF1 MetaGraphDef (a .meta graph), which describes a graph but holds no weights",
                Some(hint),
            );
        }
        Kind::Onnx { producer } => {
            let by = producer
                .as_deref()
                .filter(|p| !p.is_empty())
                .map(|p| format!(", made by {p}"))
                .unwrap_or_default();
            return known(
                &format!("an ONNX model (ModelProto{by})"),
                Some("ckptconv does not read ONNX; convert the model it came from".into()),
            );
        }
        _ => {}
    }
    if is_text(&head) {
        let text = String::from_utf8_lossy(&head);
        let first = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'))
            .unwrap_or_default();
        let starts = |w: &str| {
            first.strip_prefix(w).is_some_and(|r| {
                let r = r.trim_start();
                r.starts_with('{') || r.starts_with(':')
            })
        };
        if starts("node") || starts("versions") || starts("library") {
            return known(
                "a GraphDef in protobuf text format (pbtxt)",
                Some(
                    "ckptconv reads binary GraphDefs: write one with \
                     tf.io.write_graph(graph_def, DIR, \"graph.pb\", as_text=False)"
                        .into(),
                ),
            );
        }
        if starts("saved_model_schema_version") || starts("meta_graphs") {
            return known(
                "a SavedModel in protobuf text format (saved_model.pbtxt)",
                Some("give the SavedModel's directory (its weights are in variables/)".into()),
            );
        }
        if starts("meta_info_def") || starts("graph_def") || starts("collection_def") {
            return known(
                "a MetaGraphDef in protobuf text format, which holds no weights",
                Some("give the checkpoint saved with it".into()),
            );
        }
        if starts("model_checkpoint_path") {
            return known(
                "a checkpoint state file (text)",
                Some("give its directory, or name the file `checkpoint`".into()),
            );
        }
        return Described {
            what: "a text file".into(),
            hint: None,
            known: false,
        };
    }
    if matches!(kind, Kind::OtherProto) && head.len() >= 16 {
        return known(
            "a protocol buffer, but not a GraphDef, SavedModel, MetaGraphDef or ONNX model",
            None,
        );
    }
    let hex: Vec<String> = head.iter().take(8).map(|b| format!("{b:02x}")).collect();
    Described {
        what: format!("unrecognised binary data (starting {})", hex.join(" ")),
        hint: None,
        known: false,
    }
}

/// For a file whose content matched no format: what its name claims it is and why it is
/// not, so that the error names the file's real trouble (a truncated safetensors header, a
/// `.keras` that is no zip) instead of a missing checkpoint index; `d` says what the
/// content looks like. `None` for names that do not claim a format (a checkpoint prefix
/// may be anything).
fn claimed_format(path: &Path, d: &Described) -> Option<String> {
    path.file_name()?.to_str()?;
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default();
    let head = head_of(path, 8);
    let looks = format!("; it looks like {}", d.what);
    Some(match ext {
        "keras" => format!(
            "not a .keras archive: a .keras file is a zip archive, and this is not one{looks}"
        ),
        "safetensors" => {
            let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
            if head.len() >= 8 {
                let hlen = u64::from_le_bytes(head[..8].try_into().ok()?);
                format!(
                    "not a safetensors file: its first 8 bytes give a header of {hlen} bytes in a file of {len}, and a safetensors header is JSON that fits in the file{looks}"
                )
            } else {
                format!(
                    "not a safetensors file: {len} bytes, shorter than the 8-byte header length"
                )
            }
        }
        "h5" | "hdf5" | "he5" => format!("not an HDF5 file: no HDF5 signature at its start{looks}"),
        "json" => "not a Keras sharded weights map (.weights.json)".to_string(),
        "pt" | "pth" | "bin" => format!("not a file ckptconv reads (.{ext}: PyTorch?){looks}"),
        "pb" | "pbtxt" => {
            let hint = d
                .hint
                .as_deref()
                .map(|h| format!("; {h}"))
                .unwrap_or_default();
            format!(
                "not a frozen GraphDef or a SavedModel's saved_model.pb: it looks like {}{hint}",
                d.what
            )
        }
        _ => return None,
    })
}

/// For a path that does not exist and holds a shell pattern character: why the shell left
/// it as it is, and what to type instead. A checkpoint prefix is not a file, so
/// `runs/*/weights` matches nothing and reaches us unexpanded.
fn unexpanded_pattern(path: &Path) -> Option<String> {
    let s = path.to_str()?;
    if !s.contains(['*', '?', '[']) || path.symlink_metadata().is_ok() {
        return None;
    }
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| "./".to_string(), |p| format!("{}/", p.display()));
    Some(format!(
        "no such file: the shell left this pattern unexpanded because it matched no file. \
         A checkpoint prefix is not a file; match its index ({s}.index) or the directories \
         holding the checkpoints ({dir})"
    ))
}

/// A SavedModel's `saved_model.pb` (named so, or a `SavedModel` by content): its
/// directory's `variables/variables` checkpoint.
fn open_saved_model_pb(path: &Path, opts: ReadOptions) -> Result<Box<dyn TensorSource>> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let prefix = dir.join("variables").join("variables");
    if tf::bundle::index_path(&prefix).is_file() {
        return Ok(Box::new(tf::Bundle::open_with(&prefix, opts)?));
    }
    Err(Error::not_found(
        path,
        format!(
            "a SavedModel's saved_model.pb, but its weights {} do not exist (a SavedModel \
             without variables keeps its constants in the graph, which ckptconv does not read)",
            tf::bundle::index_path(&prefix).display()
        ),
    ))
}

/// A file that sniffed as none of the formats with a magic number: a frozen GraphDef, a
/// SavedModel's `saved_model.pb`, or an error that says what the file is. `Ok(None)`
/// leaves it to the checkpoint resolution (an `.index` that is damaged, or a file whose
/// name is a checkpoint's prefix).
fn open_unmarked(path: &Path, opts: ReadOptions) -> Result<Option<Box<dyn TensorSource>>> {
    use tf::graphdef::Kind;
    let kind = match tf::graphdef::detect_with(path, opts)? {
        Ok(g) => return Ok(Some(Box::new(g))),
        Err(kind) => kind,
    };
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    if kind == Kind::SavedModel || name == "saved_model.pb" {
        return open_saved_model_pb(path, opts).map(Some);
    }
    if matches!(name, "fingerprint.pb" | "keras_metadata.pb")
        && path.with_file_name("saved_model.pb").is_file()
    {
        return Err(Error::unsupported(
            path,
            format!(
                "a SavedModel's {name}, which holds no weights; give the SavedModel's directory or its saved_model.pb"
            ),
        ));
    }
    if let Kind::Damaged { nodes, first, why } = &kind {
        return Err(tf::graphdef::damaged(path, *nodes, first, why));
    }
    let d = describe(path, &kind);
    if let Some(what) = claimed_format(path, &d) {
        return Err(if d.known {
            Error::unsupported(path, what)
        } else {
            Error::corrupt(path, what)
        });
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default();
    if ext == "index" || tf::bundle::index_path(path).is_file() {
        return Ok(None);
    }
    let hint = d.hint.unwrap_or_else(|| EXPECTED.to_string());
    let msg = format!("{}; {hint}", d.what);
    Err(if d.known {
        Error::unsupported(path, msg)
    } else {
        Error::not_found(path, format!("not a format ckptconv reads: {msg}"))
    })
}

/// Open any supported input, detecting its format.
///
/// Checkpoint data files, `.index` files, safetensors files and contiguous HDF5 datasets
/// are memory-mapped and read in place. A mapped file that another process truncates
/// while it is being read makes the process receive SIGBUS (the kernel has no bytes to
/// give for the lost pages); TensorFlow and Keras never rewrite a checkpoint in place,
/// and ckptconv never writes to an input, so this only happens when something else
/// shrinks an input mid-read. Large tensors are copied with `pread` (see
/// `copy::write_at_offsets`), which turns such a truncation into an ordinary
/// error naming the file and tensor. To read without any map, use [`open_with`] and
/// [`ReadOptions::with_mmap`]`(false)` (the CLI's `--no-mmap`).
#[cfg_attr(not(feature = "internals"), allow(dead_code))] // the tests and fuzz targets use it
pub fn open(path: &Path) -> Result<Box<dyn TensorSource>> {
    open_with(path, ReadOptions::default())
}

/// [`open`], reading files as `opts` say: with or without memory maps, and within an
/// allocation budget for whole-tensor buffers.
pub fn open_with(path: &Path, opts: ReadOptions) -> Result<Box<dyn TensorSource>> {
    if path.is_file() && !is_tf_part_name(path) {
        match sniff(path)? {
            Sniffed::Zip => {
                let members = zip_members(path)?;
                if members
                    .iter()
                    .any(|m| m == "data.pkl" || m.ends_with("/data.pkl"))
                {
                    return Err(Error::unsupported(
                        path,
                        "this is a PyTorch / Lightning checkpoint (a torch.save zip archive \
                         with data.pkl), not a TensorFlow or Keras file",
                    ));
                }
                if members.iter().any(|m| m == "model.weights.h5") {
                    return Ok(Box::new(h5::H5Source::open_keras_archive_with(path, opts)?));
                }
                return Err(Error::unsupported(path, zip_without_keras(&members)));
            }
            Sniffed::Pickle => {
                return Err(Error::unsupported(
                    path,
                    "this is a Python pickle (a legacy PyTorch torch.save file?), not a \
                     TensorFlow or Keras file",
                ));
            }
            Sniffed::Hdf5 => return Ok(Box::new(h5::H5Source::open_file_with(path, opts)?)),
            Sniffed::Json => return Ok(Box::new(h5::H5Source::open_sharded_with(path, opts)?)),
            Sniffed::Safetensors => {
                return Ok(Box::new(safetensors::SafetensorsSource::open_with(
                    path, opts,
                )?))
            }
            Sniffed::Empty => {
                return Err(Error::corrupt(path, "empty file"));
            }
            Sniffed::Unknown => {
                if let Some(src) = open_unmarked(path, opts)? {
                    return Ok(src);
                }
            }
            Sniffed::TfIndex => {}
        }
    }
    // A V2 checkpoint first, as TensorFlow's CheckpointReader does; else a V1 one.
    let prefix = match tf::resolve::resolve_prefix(path) {
        Ok(prefix) => prefix,
        Err(e) => match tf::v1::resolve(path)? {
            Some(files) => return Ok(Box::new(tf::v1::V1Checkpoint::open_with(&files, opts)?)),
            // Nothing at all: a shell pattern that matched nothing gets its hint (a V1
            // pattern such as `export-?????-of-00001` is resolved above).
            None => {
                return Err(unexpanded_pattern(path)
                    .map(|hint| Error::not_found(path, hint))
                    .unwrap_or(e))
            }
        },
    };
    Ok(Box::new(tf::Bundle::open_with(&prefix, opts)?))
}
