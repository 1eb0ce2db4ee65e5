//! The data model in the middle of every conversion (design §1).
//!
//! A reader first lists [`TensorInfo`]s — cheap, no tensor data touched — then hands out
//! the bytes of one tensor at a time through [`TensorSource::read`]. Those bytes are a
//! borrowed slice of a memory map whenever they sit contiguous and unchanged on disk, and
//! an owned buffer only when they must be decoded, byte-swapped or reassembled. Nothing
//! ever loads a whole checkpoint into memory.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use crate::dtype::DType;
use crate::error::{Error, Result};

/// The kinds of file ckptconv reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Format {
    /// A TensorFlow TensorBundle checkpoint (`PREFIX.index` + `PREFIX.data-*`).
    TfCheckpoint,
    /// A Keras HDF5 file (any of its layouts).
    KerasH5,
    /// An HDF5 file without a Keras layout: every dataset, generically.
    Hdf5,
    /// A safetensors file.
    Safetensors,
}

impl Format {
    /// The name used in `--json` output and messages.
    pub fn name(self) -> &'static str {
        match self {
            Format::TfCheckpoint => "tf-checkpoint",
            Format::KerasH5 => "keras-h5",
            Format::Hdf5 => "hdf5",
            Format::Safetensors => "safetensors",
        }
    }
}

/// What a reader knows about one tensor before reading its bytes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TensorInfo {
    /// The file's own key: what `tf.train.list_variables` (or h5py's `visititems`) shows.
    pub name: String,
    /// The canonical variable name it stands for, TF1 style (`dense/kernel`).
    /// Equal to `name` when the file has nothing better.
    pub variable: String,
    /// Element type.
    pub dtype: DType,
    /// Dimensions, outermost first. Empty for a scalar.
    pub shape: Vec<u64>,
    /// Bytes of the tensor's data. For numeric types `elements × dtype size`; for strings
    /// the bytes stored in the file (lengths, checksum and contents).
    pub byte_len: u64,
    /// Data file index for sharded formats (`None` when spread over several).
    pub shard: Option<u32>,
    /// Number of stored slices of a partitioned variable (0 when not partitioned).
    pub slices: usize,
    /// Path of the owning object in a TF2 object graph (`net/dense/kernel`), if any.
    pub object_path: Option<String>,
}

impl TensorInfo {
    /// Number of elements, `None` on overflow (never for a validated tensor).
    pub fn num_elements(&self) -> Option<u64> {
        num_elements(&self.shape)
    }
}

/// Product of the dimensions with overflow checking (1 for a scalar).
pub fn num_elements(shape: &[u64]) -> Option<u64> {
    shape.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d))
}

/// The contents of one tensor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TensorData<'a> {
    /// Numeric data: little-endian, row-major, exactly `TensorInfo::byte_len` bytes.
    Bytes(Cow<'a, [u8]>),
    /// A string tensor: one byte string per element, row-major.
    Strings(Vec<Vec<u8>>),
}

impl TensorData<'_> {
    /// The numeric bytes, or `None` for a string tensor.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            TensorData::Bytes(b) => Some(b),
            TensorData::Strings(_) => None,
        }
    }

    /// True if the bytes are borrowed from the file (zero-copy).
    pub fn is_borrowed(&self) -> bool {
        matches!(self, TensorData::Bytes(Cow::Borrowed(_)))
    }
}

/// [`TensorSource::verify`]'s work, on several threads (up to the number of cores, at
/// most 4): checksumming is the work, and it is memory-bound per core. Errors come in
/// tensor order, each message once.
fn verify_parallel<S: TensorSource + ?Sized>(src: &S) -> Vec<Error> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let n = src.tensors().len();
    let workers = std::thread::available_parallelism()
        .map_or(1, |w| w.get())
        .clamp(1, 4)
        .min(n.max(1));
    let next = AtomicUsize::new(0);
    let mut found: Vec<(usize, Error)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                s.spawn(|| {
                    let mut errs = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= n {
                            break errs;
                        }
                        if let Err(e) = src.read(i) {
                            errs.push((i, e));
                        }
                        src.release(i);
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("reading does not panic"))
            .collect()
    });
    found.sort_by_key(|(i, _)| *i);
    let mut seen = std::collections::HashSet::new();
    found
        .into_iter()
        .map(|(_, e)| e)
        .filter(|e| seen.insert(e.to_string()))
        .collect()
}

/// A stored crc32c that [`TensorSource::read_unchecked`] left for the caller to check.
#[derive(Debug, Clone)]
pub struct Crc32cCheck {
    /// The crc32c (unmasked) the bytes must have.
    pub expected: u32,
    /// The file holding the bytes, for the error.
    pub file: PathBuf,
    /// The tensor, for the error.
    pub tensor: String,
    /// Which part of the tensor, for the error (`slice …: `); usually empty.
    pub part: String,
}

impl Crc32cCheck {
    /// An error naming the file and tensor unless `computed` is the stored crc32c.
    pub fn check(&self, computed: u32) -> Result<()> {
        if computed == self.expected {
            return Ok(());
        }
        Err(Error::corrupt_tensor(
            &self.file,
            &self.tensor,
            format!(
                "{}checksum mismatch (stored {:#010x}, computed {:#010x})",
                self.part, self.expected, computed
            ),
        ))
    }
}

/// Tensors at least this large get their crc32c computed on a second thread while they
/// are written; below it a thread costs more than it saves.
pub(crate) const OVERLAP_CRC_MIN: usize = 1 << 20;

/// Run `write` (which writes `bytes` somewhere) and, when `want_crc`, compute the crc32c
/// of `bytes` alongside: on a second thread for large tensors, so that checksumming
/// overlaps the copy into the page cache instead of adding to it (both are memory-bound
/// and take about as long). Returns what `write` returned and the crc if asked for.
pub fn write_with_crc<R>(
    bytes: &[u8],
    want_crc: bool,
    write: impl FnOnce() -> Result<R>,
) -> Result<(R, Option<u32>)> {
    if !want_crc {
        return Ok((write()?, None));
    }
    if bytes.len() < OVERLAP_CRC_MIN {
        let crc = crc32c::crc32c(bytes);
        return Ok((write()?, Some(crc)));
    }
    std::thread::scope(|s| {
        let h = s.spawn(|| crc32c::crc32c(bytes));
        let r = write();
        let crc = h.join().expect("crc32c does not panic");
        Ok((r?, Some(crc)))
    })
}

pub use crate::keras::Layer;

/// A source of tensors: every reader implements it, every writer accepts any of them.
pub trait TensorSource: Sync {
    /// Which format was read.
    fn format(&self) -> Format;

    /// The path the user gave, resolved (for a TF checkpoint: the prefix).
    fn path(&self) -> &Path;

    /// Every tensor, in the file's own order (for TF checkpoints: key order).
    fn tensors(&self) -> &[TensorInfo];

    /// The data of tensor `index` (an index into [`TensorSource::tensors`]),
    /// with every checksum the format carries checked.
    fn read(&self, index: usize) -> Result<TensorData<'_>>;

    /// Like [`read`](Self::read), but a source whose format stores a crc32c of exactly
    /// the returned bytes may leave that check to the caller and return it as a
    /// [`Crc32cCheck`]. Writers use this to checksum each tensor once, on a second thread
    /// while the bytes are written ([`write_with_crc`]); they must call
    /// [`Crc32cCheck::check`] before committing any output.
    fn read_unchecked(&self, index: usize) -> Result<(TensorData<'_>, Option<Crc32cCheck>)> {
        Ok((self.read(index)?, None))
    }

    /// The file and offset holding exactly the bytes [`read_unchecked`](Self::read_unchecked)
    /// returns for tensor `index`, when the source maps them straight from a file. Writers
    /// read large such tensors with `pread` instead of through the map
    /// ([`crate::output::write_at_offsets`]), which saves this process faulting in every
    /// page and keeps its memory flat.
    fn file_range(&self, _index: usize) -> Option<(&std::fs::File, u64)> {
        None
    }

    /// Where tensor `index`'s stored bytes start in the source's files: (file number,
    /// offset). Writers lay tensors out, or copy them, in this order where they can: the
    /// source is read front to back, and a checkpoint keeps TensorFlow's own data order.
    fn stored_at(&self, _index: usize) -> Option<(u32, u64)> {
        None
    }

    /// Every file this source reads (so that outputs never replace one of them).
    fn files(&self) -> Vec<std::path::PathBuf> {
        vec![self.path().to_path_buf()]
    }

    /// The model's layers in model order, when the file records them (Keras HDF5 files,
    /// Keras TF-format checkpoints); empty otherwise.
    fn layers(&self) -> &[Layer] {
        &[]
    }

    /// Whether [`layers`](Self::layers) are in the model's order as the file records it
    /// (Keras 3 `.weights.h5` without a config name layers by class, not by position).
    fn layer_order(&self) -> crate::keras::Order {
        crate::keras::Order::Recorded
    }

    /// The TF1 graph beside a checkpoint (its `.meta`), when there is one: the order the
    /// model created its variables in (the order a graph-mode Keras model built its
    /// layers in), and the name scopes its layers were called in.
    fn tf1_graph(&self) -> Option<&crate::formats::tf::meta::MetaGraph> {
        None
    }

    /// A Keras 2 full model's optimizer state in the order the file lists it (Keras 2
    /// restores it by position); `None` when the file records no such order.
    fn optimizer_order(&self) -> Option<&[usize]> {
        None
    }

    /// True when Keras loads this file by position (a Keras 2 `.h5`: the k-th layer with
    /// weights, its weights in order), so that the order of layers and weights is part of
    /// what the file says.
    fn loads_by_position(&self) -> bool {
        false
    }

    /// Tell the source that tensor `index` has been consumed, so that memory-mapped pages
    /// holding it can be dropped from this process (resident memory then stays flat as
    /// files grow). Reading it again later still works.
    fn release(&self, _index: usize) {}

    /// Find a tensor by its key.
    fn find(&self, name: &str) -> Option<usize> {
        self.tensors().iter().position(|t| t.name == name)
    }

    /// Read every tensor and check every checksum and bound; return every problem found
    /// (empty when the input is good). The same message is reported once (a missing data
    /// file would otherwise be reported for each tensor in it).
    fn verify(&self) -> Vec<Error> {
        verify_parallel(self)
    }
}
