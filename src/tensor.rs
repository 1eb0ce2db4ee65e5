//! The data model in the middle of every conversion.
//!
//! A reader first lists [`TensorInfo`]s — cheap, no tensor data touched — then hands out
//! the bytes of one tensor at a time through [`TensorSource::read`]. Those bytes are a
//! borrowed slice of a memory map whenever they sit contiguous and unchanged on disk, and
//! an owned buffer only when they must be decoded, byte-swapped or reassembled. Nothing
//! ever loads a whole checkpoint into memory.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use crate::dtype::{Cast, DType};
use crate::error::{Error, InputErrorKind, Result};

/// The kinds of file ckptconv reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[cfg_attr(not(feature = "internals"), non_exhaustive)]
pub enum Format {
    /// A TensorFlow TensorBundle checkpoint (`PREFIX.index` + `PREFIX.data-*`).
    TfCheckpoint,
    /// A TF1 V1 checkpoint: TensorFlow's tensor-slice tables (`model.ckpt`, or shards
    /// `NAME-%05d-of-%05d`).
    TfCheckpointV1,
    /// A Keras HDF5 file (any of its layouts).
    KerasH5,
    /// An HDF5 file without a Keras layout: every dataset, generically.
    Hdf5,
    /// A safetensors file.
    Safetensors,
    /// A frozen TensorFlow graph (a `GraphDef` `.pb`): its `Const` nodes.
    TfGraphDef,
}

impl Format {
    /// The name used in `--json` output and messages.
    pub fn name(self) -> &'static str {
        match self {
            Format::TfCheckpoint => "tf-checkpoint",
            Format::TfCheckpointV1 => "tf-checkpoint-v1",
            Format::KerasH5 => "keras-h5",
            Format::Hdf5 => "hdf5",
            Format::Safetensors => "safetensors",
            Format::TfGraphDef => "tf-graphdef",
        }
    }
}

/// What a reader knows about one tensor before reading its bytes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(not(feature = "internals"), non_exhaustive)]
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
#[cfg_attr(not(feature = "internals"), non_exhaustive)]
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
pub(crate) fn verify_parallel<S: TensorSource + ?Sized>(src: &S) -> Vec<Error> {
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
                        if let Err(e) = check_readable(src, i) {
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

/// Read tensor `i` of `src` for [`TensorSource::verify`]: a string tensor an element at a
/// time ([`TensorSource::strings`]), a large one that lies in a file as it is with `pread`
/// a piece at a time (its stored checksum checked over the pieces), anything else whole.
pub(crate) fn check_readable<S: TensorSource + ?Sized>(src: &S, i: usize) -> Result<()> {
    use std::os::unix::fs::FileExt;
    let t = &src.tensors()[i];
    if t.dtype == DType::String {
        let mut r = src.strings(i)?;
        while r.next()?.is_some() {}
        return Ok(());
    }
    let Some(range) = src
        .file_range(i)
        .filter(|_| t.byte_len >= VERIFY_PIECE as u64)
    else {
        return src.read(i).map(|_| ());
    };
    let path = range
        .check
        .as_ref()
        .map_or_else(|| src.path().to_path_buf(), |c| c.file.clone());
    let mut buf = vec![0u8; VERIFY_PIECE];
    let (mut done, mut crc) = (0u64, 0u32);
    while done < t.byte_len {
        let n = (t.byte_len - done).min(VERIFY_PIECE as u64) as usize;
        let at = range
            .offset
            .checked_add(done)
            .ok_or_else(|| Error::corrupt_tensor(&path, &t.name, "offset overflows"))?;
        range.file.read_exact_at(&mut buf[..n], at).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                Error::corrupt_tensor(
                    &path,
                    &t.name,
                    "the file ends inside the tensor (truncated?)",
                )
                .with_kind(InputErrorKind::Truncated)
            } else {
                Error::io(&path, "read", e)
            }
        })?;
        if range.check.is_some() {
            crc = crc32c::crc32c_append(crc, &buf[..n]);
        }
        done += n as u64;
    }
    match range.check {
        Some(c) => c.check(crc),
        None => Ok(()),
    }
}

/// The piece [`check_readable`] reads a large tensor in, and the size from which it does.
const VERIFY_PIECE: usize = 1 << 20;

/// The elements of one string tensor, handed out front to back one at a time
/// ([`TensorSource::strings`]), so that memory is bounded by an element (or a reader's
/// window of elements) rather than the tensor: a checkpoint's string tensor is read with
/// `pread`, an HDF5 one a window of elements at a time.
pub trait StringReader {
    /// Number of elements.
    fn len(&self) -> u64;

    /// True for a tensor of no elements.
    #[allow(dead_code)] // the pair of `len` that clippy asks for
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The next element, or `None` after the last. Every checksum the format carries is
    /// checked by the time `None` is returned (over every element: a reader left
    /// unfinished has checked only what it handed out, if that).
    fn next(&mut self) -> Result<Option<&[u8]>>;

    /// The tensor as TensorFlow stores it, when it lies in a file in exactly that encoding
    /// (a checkpoint's string tensor): a checkpoint writer copies those bytes as they are.
    fn tf_encoded(&self) -> Option<TfEncoded<'_>> {
        None
    }
}

/// A string tensor stored in TensorFlow's encoding (varint64 lengths, the masked crc32c
/// of the lengths, the bytes) at `offset` of `file`, `size` bytes in all. Its lengths have
/// been read and checked already: what is left to check while the bytes are copied is
/// that the crc32c of bytes `[lengths_len, size)` continued from `lengths_crc` is
/// `check.expected`.
pub struct TfEncoded<'a> {
    pub file: &'a std::fs::File,
    pub offset: u64,
    pub size: u64,
    /// Bytes of the varint lengths (the masked length checksum follows them).
    pub lengths_len: u64,
    /// The crc32c (unmasked) of the lengths, as TensorFlow computes it.
    pub lengths_crc: u32,
    /// The entry's crc32c, with the file and tensor for the error.
    pub check: Crc32cCheck,
}

/// A [`StringReader`] over strings already in memory.
pub struct VecStrings {
    strings: std::vec::IntoIter<Vec<u8>>,
    len: u64,
    current: Vec<u8>,
}

impl VecStrings {
    pub fn new(strings: Vec<Vec<u8>>) -> VecStrings {
        VecStrings {
            len: strings.len() as u64,
            strings: strings.into_iter(),
            current: Vec::new(),
        }
    }
}

impl StringReader for VecStrings {
    fn len(&self) -> u64 {
        self.len
    }

    fn next(&mut self) -> Result<Option<&[u8]>> {
        match self.strings.next() {
            Some(s) => {
                self.current = s;
                Ok(Some(&self.current))
            }
            None => Ok(None),
        }
    }
}

/// Where a tensor's stored bytes lie in a file ([`TensorSource::file_range`]).
#[derive(Debug)]
pub struct FileRange<'a> {
    /// The open file.
    pub file: &'a std::fs::File,
    /// Where the bytes start; the tensor's `byte_len` of them follow.
    pub offset: u64,
    /// The stored checksum of exactly those bytes, for the caller to check.
    pub check: Option<Crc32cCheck>,
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
        )
        .with_kind(InputErrorKind::Checksum))
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

/// How many bytes [`Pieces`] callers take at a time when they have no reason of their own
/// to choose (a whole number of elements of every dtype).
pub(crate) const PIECE: usize = 1 << 20;

/// The bytes of one tensor of a source, handed out front to back in pieces, with memory
/// bounded by the pieces whatever the tensor's size: the bytes
/// [`TensorSource::read_unchecked`] gives, read with `pread` where they lie in a file
/// ([`TensorSource::file_range`]) so that this process never maps them, else copied from
/// the data it gave (borrowed from a map, or already in memory). For a tensor that is
/// another source's tensor cast to a new dtype ([`TensorSource::cast_of`]), each piece is
/// cast from that tensor's stored bytes, read the same way. A crc32c the source left to
/// the caller is checked by [`finish`](Self::finish), over the stored bytes.
pub struct Pieces<'s> {
    /// What the stored source gave, when its bytes do not lie in a file as they are;
    /// kept alive while they are handed out.
    bytes: Cow<'s, [u8]>,
    /// Where the stored bytes lie in a file, read with `pread` (then `bytes` is empty).
    file: Option<(&'s std::fs::File, u64)>,
    /// Stored bytes in all.
    stored_len: usize,
    check: Option<Crc32cCheck>,
    cast: Option<Cast>,
    /// The file holding the stored bytes and the tensor's name, for errors.
    path: PathBuf,
    name: String,
    /// Stored bytes consumed, and bytes handed out of `len`.
    read: usize,
    given: usize,
    len: usize,
    /// crc32c of the stored bytes so far (when `check` needs it, or it is the answer).
    stored_crc: Option<u32>,
    /// crc32c of the cast bytes handed out so far, when asked for.
    cast_crc: Option<u32>,
    want_crc: bool,
    /// Scratch space for casts.
    stored: Vec<u8>,
    values: Vec<f64>,
}

impl<'s> Pieces<'s> {
    /// Start on tensor `index` of `src`; [`finish`](Self::finish) returns the crc32c of
    /// every byte handed out when `want_crc`. The bytes must be numeric, exactly the
    /// tensor's `byte_len`.
    pub fn open(src: &'s dyn TensorSource, index: usize, want_crc: bool) -> Result<Pieces<'s>> {
        let t = src
            .tensors()
            .get(index)
            .ok_or_else(|| Error::corrupt(src.path(), format!("no tensor {index}")))?;
        let (stored_src, j, cast) = match src.cast_of(index) {
            Some((inner, j)) => {
                let from = inner
                    .tensors()
                    .get(j)
                    .ok_or_else(|| Error::corrupt(inner.path(), format!("no tensor {j}")))?
                    .dtype;
                let cast = Cast::new(from, t.dtype).ok_or_else(|| {
                    Error::unsupported_tensor(
                        src.path(),
                        &t.name,
                        format!("cannot cast {from} to {}", t.dtype),
                    )
                })?;
                (inner, j, Some(cast))
            }
            None => (src, index, None),
        };
        let st = &stored_src.tensors()[j];
        // Bytes that lie in a file are read from it piece by piece; only others are read
        // (or borrowed from a map) whole.
        let (bytes, file, check) = match stored_src.file_range(j) {
            Some(r) if st.dtype != DType::String => {
                (Cow::Borrowed(&[][..]), Some((r.file, r.offset)), r.check)
            }
            _ => {
                let (data, check) = stored_src.read_unchecked(j)?;
                let TensorData::Bytes(bytes) = data else {
                    return Err(Error::unsupported_tensor(
                        stored_src.path(),
                        &st.name,
                        "not numeric data",
                    ));
                };
                // Writers place tensors by `byte_len`: handing out more would overrun
                // the next.
                if bytes.len() as u64 != st.byte_len {
                    return Err(Error::corrupt_tensor(
                        stored_src.path(),
                        &st.name,
                        format!("{} bytes where {} were expected", bytes.len(), st.byte_len),
                    ));
                }
                (bytes, None, check)
            }
        };
        let stored_len = usize::try_from(st.byte_len).map_err(|_| {
            Error::unsupported_tensor(stored_src.path(), &st.name, "larger than memory")
        })?;
        let len = match cast {
            Some(c) => c.output_len(st.byte_len),
            None => Some(st.byte_len),
        };
        let len = len
            .filter(|&n| n == t.byte_len)
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| {
                Error::corrupt_tensor(
                    src.path(),
                    &t.name,
                    format!(
                        "{} bytes of {} do not make {} bytes of {}",
                        st.byte_len, st.dtype, t.byte_len, t.dtype
                    ),
                )
            })?;
        let path = check
            .as_ref()
            .map_or_else(|| stored_src.path().to_path_buf(), |c| c.file.clone());
        let crc_stored = check.is_some() || (want_crc && cast.is_none());
        Ok(Pieces {
            bytes,
            file,
            stored_len,
            check,
            cast,
            path,
            name: st.name.clone(),
            read: 0,
            given: 0,
            len,
            stored_crc: crc_stored.then_some(0),
            cast_crc: (want_crc && cast.is_some()).then_some(0),
            want_crc,
            stored: Vec::new(),
            values: Vec::new(),
        })
    }

    /// Bytes in all.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for an empty tensor.
    #[allow(dead_code)] // the pair of `len` that clippy asks for
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes not handed out yet.
    pub fn remaining(&self) -> usize {
        self.len - self.given
    }

    /// Fill `out` with the next `out.len()` bytes: at most [`remaining`](Self::remaining),
    /// and for a cast a whole number of elements (as any piece of a size that divides the
    /// tensor's, or its end, is).
    pub fn read_into(&mut self, out: &mut [u8]) -> Result<()> {
        let n = out.len();
        if n > self.remaining() {
            return Err(Error::corrupt_tensor(
                &self.path,
                &self.name,
                format!("{n} bytes asked for where {} are left", self.remaining()),
            ));
        }
        match self.cast {
            None => {
                self.fill(out)?;
                self.stored_crc = self.stored_crc.map(|c| crc32c::crc32c_append(c, out));
            }
            Some(cast) => {
                let m = cast
                    .input_len(n as u64)
                    .and_then(|m| usize::try_from(m).ok())
                    .ok_or_else(|| {
                        Error::corrupt_tensor(
                            &self.path,
                            &self.name,
                            format!("{n} bytes are not whole {} elements", cast.to()),
                        )
                    })?;
                let mut stored = std::mem::take(&mut self.stored);
                stored.resize(m, 0);
                let filled = self.fill(&mut stored);
                self.stored = stored;
                filled?;
                let stored = &self.stored[..m];
                self.stored_crc = self.stored_crc.map(|c| crc32c::crc32c_append(c, stored));
                cast.apply(stored, &mut self.values, out);
                self.cast_crc = self.cast_crc.map(|c| crc32c::crc32c_append(c, out));
            }
        }
        self.given += n;
        Ok(())
    }

    /// The next `buf.len()` stored bytes.
    fn fill(&mut self, buf: &mut [u8]) -> Result<()> {
        use std::os::unix::fs::FileExt;
        let end = self
            .read
            .checked_add(buf.len())
            .filter(|&e| e <= self.stored_len)
            .ok_or_else(|| {
                Error::corrupt_tensor(&self.path, &self.name, "read past the tensor's end")
            })?;
        match self.file {
            Some((f, offset)) => {
                let pos = offset
                    .checked_add(self.read as u64)
                    .ok_or_else(|| Error::corrupt(&self.path, "source offset overflows"))?;
                f.read_exact_at(buf, pos).map_err(|e| {
                    if e.kind() == std::io::ErrorKind::UnexpectedEof {
                        Error::corrupt_tensor(
                            &self.path,
                            &self.name,
                            "the file ends inside the tensor (truncated?)",
                        )
                        .with_kind(InputErrorKind::Truncated)
                    } else {
                        Error::io(&self.path, "read", e)
                    }
                })?;
            }
            None => buf.copy_from_slice(&self.bytes[self.read..end]),
        }
        self.read = end;
        Ok(())
    }

    /// Check the stored crc32c (over every stored byte: a tensor left unfinished is not
    /// checked) and return the crc32c of every
    /// byte handed out, when it was asked for.
    pub fn finish(self) -> Result<Option<u32>> {
        if let (Some(c), Some(crc)) = (&self.check, self.stored_crc) {
            if self.read == self.stored_len {
                c.check(crc)?;
            }
        }
        Ok(match self.cast {
            _ if !self.want_crc => None,
            Some(_) => self.cast_crc,
            None => self.stored_crc,
        })
    }
}

/// Compare two string tensors element by element ([`TensorSource::strings`]: one element
/// of each in memory at a time), reading both to the end so that their checksums are
/// checked: (elements compared, elements that differ, including any one has beyond the
/// other's end).
pub fn compare_strings(
    a: &dyn TensorSource,
    i: usize,
    b: &dyn TensorSource,
    j: usize,
) -> Result<(u64, u64)> {
    let (mut p, mut q) = (a.strings(i)?, b.strings(j)?);
    let (mut elements, mut differing) = (0u64, 0u64);
    loop {
        match (p.next()?, q.next()?) {
            (None, None) => return Ok((elements, differing)),
            (Some(x), Some(y)) => differing += u64::from(x != y),
            _ => differing += 1,
        }
        elements += 1;
    }
}

/// Whether tensor `i` of `a` and tensor `j` of `b` hold the same data: compared a
/// [`PIECE`] at a time for numbers (checksums checked to the end), an element at a time
/// for strings.
pub(crate) fn same_data(
    a: &dyn TensorSource,
    i: usize,
    b: &dyn TensorSource,
    j: usize,
) -> Result<bool> {
    let (sa, sb) = (
        a.tensors()[i].dtype == DType::String,
        b.tensors()[j].dtype == DType::String,
    );
    if sa != sb {
        return Ok(false);
    }
    if sa {
        return Ok(compare_strings(a, i, b, j)?.1 == 0);
    }
    let (mut p, mut q) = (Pieces::open(a, i, false)?, Pieces::open(b, j, false)?);
    if p.len() != q.len() {
        return Ok(false);
    }
    let mut same = true;
    let (mut x, mut y) = (vec![0u8; p.len().min(PIECE)], vec![0u8; p.len().min(PIECE)]);
    while p.remaining() > 0 {
        let n = p.remaining().min(PIECE);
        p.read_into(&mut x[..n])?;
        q.read_into(&mut y[..n])?;
        same &= x[..n] == y[..n];
    }
    p.finish()?;
    q.finish()?;
    Ok(same)
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

    /// The elements of string tensor `index`, one at a time: what writers, `verify` and
    /// `diff` use, so that a string tensor is never held whole. The default hands out
    /// what [`read`](Self::read) gives; readers whose files can hold large string
    /// tensors stream them, and wrappers forward to their source.
    fn strings(&self, index: usize) -> Result<Box<dyn StringReader + '_>> {
        match self.read(index)? {
            TensorData::Strings(s) => Ok(Box::new(VecStrings::new(s))),
            TensorData::Bytes(_) => Err(Error::unsupported_tensor(
                self.path(),
                &self.tensors()[index].name,
                "not a string tensor",
            )),
        }
    }

    /// Like [`read`](Self::read), but a source whose format stores a crc32c of exactly
    /// the returned bytes may leave that check to the caller and return it as a
    /// [`Crc32cCheck`]. Writers use this to checksum each tensor once, on a second thread
    /// while the bytes are written ([`write_with_crc`]); they must call
    /// [`Crc32cCheck::check`] before committing any output.
    fn read_unchecked(&self, index: usize) -> Result<(TensorData<'_>, Option<Crc32cCheck>)> {
        Ok((self.read(index)?, None))
    }

    /// Whether tensor `index` is named by the user (`--rename`) rather than by the input.
    /// A name an output cannot hold is then the arguments' fault, a usage error; else it
    /// is the input's (see [`crate::plan::check_names`]). Wrappers that rename say so.
    fn renamed(&self, _index: usize) -> bool {
        false
    }

    /// The file and offset holding exactly the bytes [`read_unchecked`](Self::read_unchecked)
    /// returns for tensor `index`, when they lie in a file as they are, with the stored
    /// checksum left to the caller. Writers read large such tensors with `pread` instead
    /// of through a map or a buffer ([`crate::copy::write_at_offsets`], [`Pieces`]),
    /// which keeps memory flat whether or not the source maps its files.
    fn file_range(&self, _index: usize) -> Option<FileRange<'_>> {
        None
    }

    /// When tensor `index` is tensor `j` of another source with its floats cast to this
    /// tensor's dtype (a [`crate::transform::Transformed`] under `--dtype`): that source
    /// and `j`. [`Pieces`] then casts the stored bytes piece by piece, as writers copy
    /// them, instead of holding the whole cast tensor as [`read`](Self::read) does.
    fn cast_of(&self, _index: usize) -> Option<(&dyn TensorSource, usize)> {
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

    /// True when each layer's weights are listed as a Keras 2 `.h5` lists them
    /// (`trainable_weights + non_trainable_weights`, which for a nested model depends on
    /// which of its layers were frozen): a Keras 2 `.h5`, or a file ckptconv made from one.
    fn h5_weight_order(&self) -> bool {
        self.loads_by_position()
    }

    /// A Keras 2 full model's optimizer state in the order the file lists it (Keras 2
    /// restores it by position); `None` when the file records no such order.
    fn optimizer_order(&self) -> Option<&[usize]> {
        None
    }

    /// True when the tensors are named by Keras 3's own layout (`/layers/dense_1/vars/0`,
    /// a `.weights.h5` or `.keras` file), which a Keras 3 output can keep as it is.
    fn keras3_paths(&self) -> bool {
        false
    }

    /// The string map a format stores beside its tensors, when it has one: a safetensors
    /// file's `__metadata__`.
    fn file_metadata(&self) -> Option<&std::collections::HashMap<String, String>> {
        None
    }

    /// The model's config when the file holds one: Keras 3's `config.json` (a `.keras`
    /// archive) or a Keras 2 `model_config` (a full-model `.h5`).
    fn keras_config(&self) -> Option<crate::keras::KerasConfig<'_>> {
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
