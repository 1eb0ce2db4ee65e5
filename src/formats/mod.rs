//! One module per format, and detection of the format by content (design §1).
//!
//! [`open`] looks at the bytes first (magic numbers), and at names only where a format has
//! no magic of its own (a data shard is raw bytes). It also recognises common files that
//! are *not* ours — PyTorch / Lightning `.ckpt` archives and pickles — and says so by name
//! instead of reporting a corrupt checkpoint.

pub mod h5;
pub mod safetensors;
pub mod tf;

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use crate::error::{Error, Result};
use crate::tensor::TensorSource;

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
    /// A JSON object (Keras 3 sharded weights map `.weights.json`).
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
        if tail == tf::table::TABLE_MAGIC.to_le_bytes() {
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

/// Whether the file name says it is one of the files of a TensorFlow checkpoint whose
/// content has no magic of its own (data shards, `.meta` graphs, the state file).
fn is_tf_part_name(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    name == "checkpoint"
        || tf::resolve::strip_shard_suffix(name).is_some()
        || (name.ends_with(".meta") && path.with_extension("index").is_file())
}

/// For a file whose content matched no format: what its name claims it is and why it is
/// not, so that the error names the file's real trouble (a truncated safetensors header, a
/// `.keras` that is no zip) instead of a missing checkpoint index. `None` for names that
/// do not claim a format (a checkpoint prefix may be anything).
fn claimed_format(path: &Path) -> Option<String> {
    path.file_name()?.to_str()?;
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default();
    let mut buf = [0u8; 64];
    let n = File::open(path)
        .and_then(|mut f| read_up_to(&mut f, &mut buf))
        .unwrap_or(0);
    let head = &buf[..n];
    let text = !head.is_empty()
        && head
            .iter()
            .all(|&b| b.is_ascii_graphic() || b.is_ascii_whitespace());
    let looks = if text { " (it is text)" } else { "" };
    Some(match ext {
        "keras" => format!("not a .keras archive: a .keras file is a zip archive, and this is not one{looks}"),
        "safetensors" => {
            let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
            if head.len() >= 8 {
                let hlen = u64::from_le_bytes(head[..8].try_into().ok()?);
                format!(
                    "not a safetensors file: its first 8 bytes give a header of {hlen} bytes in a file of {len}, and a safetensors header is JSON that fits in the file{looks}"
                )
            } else {
                format!("not a safetensors file: {len} bytes, shorter than the 8-byte header length")
            }
        }
        "h5" | "hdf5" | "he5" => format!("not an HDF5 file: no HDF5 signature at its start{looks}"),
        "json" => "not a Keras sharded weights map (.weights.json)".to_string(),
        "pt" | "pth" | "bin" => format!("not a file ckptconv reads (.{ext}: PyTorch?){looks}"),
        "pb" | "pbtxt" => format!(
            "a .{ext} file: frozen GraphDefs and protobuf text are not read; give a SavedModel directory or a checkpoint"
        ),
        _ if text && ext != "index" && ext != "ckpt" => {
            "a text file, not a TensorFlow, Keras or safetensors file".to_string()
        }
        _ => return None,
    })
}

/// Open any supported input, detecting its format.
///
/// Checkpoint data files, `.index` files and safetensors files are memory-mapped and
/// read in place. A mapped file that another process truncates while it is being read
/// makes the process receive SIGBUS (the kernel has no bytes to give for the lost pages);
/// TensorFlow and Keras never rewrite a checkpoint in place, and ckptconv never writes
/// to an input, so this only happens when something else shrinks an input mid-read.
/// Large tensors are copied with `pread` (see [`crate::output::write_at_offsets`]), which
/// turns such a truncation into an ordinary error naming the file and tensor.
pub fn open(path: &Path) -> Result<Box<dyn TensorSource>> {
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
                    return Ok(Box::new(h5::H5Source::open_keras_archive(path)?));
                }
                return Err(Error::unsupported(
                    path,
                    "zip archive without model.weights.h5 (not a .keras model)",
                ));
            }
            Sniffed::Pickle => {
                return Err(Error::unsupported(
                    path,
                    "this is a Python pickle (a legacy PyTorch torch.save file?), not a \
                     TensorFlow or Keras file",
                ));
            }
            Sniffed::Hdf5 => return Ok(Box::new(h5::H5Source::open(path)?)),
            Sniffed::Json => return Ok(Box::new(h5::H5Source::open_sharded(path)?)),
            Sniffed::Safetensors => {
                return Ok(Box::new(safetensors::SafetensorsSource::open(path)?))
            }
            Sniffed::Empty => {
                return Err(Error::corrupt(path, "empty file"));
            }
            Sniffed::Unknown => {
                if let Some(what) = claimed_format(path) {
                    return Err(Error::corrupt(path, what));
                }
            }
            Sniffed::TfIndex => {}
        }
    }
    // A V2 checkpoint first, as TensorFlow's CheckpointReader does; else a V1 one.
    let prefix = match tf::resolve::resolve_prefix(path) {
        Ok(prefix) => prefix,
        Err(e) => match tf::v1::resolve(path)? {
            Some(files) => return Ok(Box::new(tf::v1::V1Checkpoint::open(&files)?)),
            None => return Err(e),
        },
    };
    Ok(Box::new(tf::Bundle::open(&prefix)?))
}
