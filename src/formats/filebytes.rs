//! How readers get at an input file's bytes: through a memory map (the default), or with
//! `pread` into buffers of their own ([`ReadOptions::mmap`] off), and the allocation
//! budget ([`ReadOptions::max_alloc`]) that every whole-tensor buffer is checked against.
//!
//! Why both. A map lets a tensor be handed out as a slice of the file, with no copy and
//! no memory of our own, and most conversions copy large tensors with `pread` anyway
//! (`copy::write_at_offsets`). Its one hazard: if another process truncates
//! a mapped file while we read it, the kernel has no bytes for the lost pages and sends
//! SIGBUS, which kills the process. Without maps, the same truncation is an ordinary
//! read error naming the file and tensor, at the price of one buffer per tensor read (the
//! tensor's size, checked against the file's size and the budget before it is made).
//!
//! ```text
//! FileBytes { file, len (at open), map: Some(Mmap) | None }
//!   get(offset, n) ─ map  → &map[offset .. offset+n]          (borrowed)
//!                  └ none → pread(file, offset, n) into a Vec  (owned, budgeted)
//! ```
//!
//! Offsets are checked against the length the file had at open in both modes.

use std::borrow::Cow;
use std::fs::File;
use std::path::Path;

use memmap2::Mmap;

use crate::error::{Error, Result};

/// How inputs are read. `ReadOptions::default()` maps files and sets no allocation
/// budget beyond what the system grants (allocations are always fallible).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReadOptions {
    /// Memory-map inputs (the default). Off: read them with `pread` only, so that a file
    /// truncated by another process mid-read gives an error, never SIGBUS.
    pub mmap: bool,
    /// The largest single buffer a reader may allocate for one tensor (a partitioned
    /// variable reassembled, a compressed HDF5 dataset decoded, a tensor read without a
    /// map), in bytes. `None`: no budget but the file's own size checks. Going over it is
    /// an error naming the file, tensor and limit.
    pub max_alloc: Option<u64>,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            mmap: true,
            max_alloc: None,
        }
    }
}

impl ReadOptions {
    /// These options with memory maps on or off.
    pub fn with_mmap(mut self, mmap: bool) -> Self {
        self.mmap = mmap;
        self
    }

    /// These options with an allocation budget.
    pub fn with_max_alloc(mut self, max_alloc: Option<u64>) -> Self {
        self.max_alloc = max_alloc;
        self
    }

    /// A zeroed buffer of `len` bytes for tensor `tensor` of `path`, within the budget
    /// and allocated fallibly: the one place readers make whole-tensor buffers.
    pub(crate) fn buffer(&self, len: u64, path: &Path, tensor: &str) -> Result<Vec<u8>> {
        let mut v = self.empty_buffer(len, path, tensor)?;
        // `len` fits in usize: `empty_buffer` reserved that much.
        v.resize(len as usize, 0);
        Ok(v)
    }

    /// An empty buffer with room for `len` bytes (see [`buffer`](Self::buffer)).
    pub(crate) fn empty_buffer(&self, len: u64, path: &Path, tensor: &str) -> Result<Vec<u8>> {
        if let Some(max) = self.max_alloc {
            if len > max {
                return Err(Error::limit_tensor(
                    path,
                    tensor,
                    format!(
                        "reading it takes a buffer of {len} bytes, over the allocation limit of {max} (--max-alloc)"
                    ),
                ));
            }
        }
        let too_big =
            || Error::limit_tensor(path, tensor, format!("{len} bytes do not fit in memory"));
        let n = usize::try_from(len).map_err(|_| too_big())?;
        let mut v = Vec::new();
        v.try_reserve_exact(n).map_err(|_| too_big())?;
        Ok(v)
    }
}

/// An input file opened for reading, mapped or not (see the module docs).
pub(crate) struct FileBytes {
    file: File,
    len: u64,
    map: Option<Mmap>,
    opts: ReadOptions,
}

impl std::fmt::Debug for FileBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileBytes")
            .field("len", &self.len)
            .field("mapped", &self.map.is_some())
            .finish()
    }
}

impl FileBytes {
    /// Open `path`; map it when the options say so and it is not empty.
    pub(crate) fn open(path: &Path, opts: ReadOptions) -> std::io::Result<FileBytes> {
        let file = File::open(path)?;
        Self::from_file(file, opts)
    }

    /// [`open`](Self::open) for a file already open.
    pub(crate) fn from_file(file: File, opts: ReadOptions) -> std::io::Result<FileBytes> {
        let len = file.metadata()?.len();
        let map = if opts.mmap && len > 0 {
            // SAFETY: a read-only map of an input file. Every access goes through `get`,
            // which checks offsets against the length the file had when it was mapped.
            // If another process truncates the file while we read it, accesses past the
            // new end fault (SIGBUS); TensorFlow and Keras never rewrite a finished file
            // in place and ckptconv never writes to its inputs. `ReadOptions::mmap` off
            // avoids the map altogether.
            let map = unsafe { Mmap::map(&file)? };
            let _ = map.advise(memmap2::Advice::Sequential);
            Some(map)
        } else {
            None
        };
        Ok(FileBytes {
            file,
            len,
            map,
            opts,
        })
    }

    /// The open file (for `pread` by writers and string readers).
    pub(crate) fn file(&self) -> &File {
        &self.file
    }

    /// The file's length when it was opened.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// How the file is read (and the allocation budget).
    pub(crate) fn opts(&self) -> ReadOptions {
        self.opts
    }

    /// Whether the bytes come from a map (and so borrow for free).
    #[cfg(test)]
    pub(crate) fn is_mapped(&self) -> bool {
        self.map.is_some()
    }

    /// Bytes `offset .. offset + n`: `None` when they lie past the end of the file as it
    /// was opened; borrowed from the map, or read into a buffer within the budget (the
    /// error then names `path` and `tensor`).
    pub(crate) fn get(
        &self,
        offset: u64,
        n: u64,
        path: &Path,
        tensor: &str,
    ) -> Option<Result<Cow<'_, [u8]>>> {
        let end = offset.checked_add(n)?;
        if end > self.len {
            return None;
        }
        if let Some(map) = &self.map {
            // In bounds of the map: `end <= len == map.len()`.
            return Some(Ok(Cow::Borrowed(&map[offset as usize..end as usize])));
        }
        Some(self.pread(offset, n, path, tensor).map(Cow::Owned))
    }

    fn pread(&self, offset: u64, n: u64, path: &Path, tensor: &str) -> Result<Vec<u8>> {
        use std::os::unix::fs::FileExt;
        let mut buf = self.opts.buffer(n, path, tensor)?;
        self.file.read_exact_at(&mut buf, offset).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                Error::corrupt_tensor(
                    path,
                    tensor,
                    format!(
                        "the file is shorter than when it was opened: bytes {offset}..{} are gone (truncated while being read?)",
                        offset + n
                    ),
                )
                .with_kind(crate::error::InputErrorKind::Truncated)
            } else {
                Error::io(path, "read", e)
            }
        })?;
        Ok(buf)
    }

    /// Drop the pages of `offset .. offset + n` from this process (advice only; nothing
    /// to do without a map).
    pub(crate) fn release(&self, offset: u64, n: u64) {
        if let Some(map) = &self.map {
            crate::formats::release_range(map, offset, n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file_with(bytes: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(bytes).unwrap();
        f
    }

    #[test]
    fn both_modes_give_the_same_bytes_and_bounds() {
        let f = file_with(b"0123456789");
        for mmap in [true, false] {
            let opts = ReadOptions::default().with_mmap(mmap);
            let fb = FileBytes::open(f.path(), opts).unwrap();
            assert_eq!(fb.is_mapped(), mmap);
            assert_eq!(fb.len(), 10);
            let got = fb.get(2, 5, f.path(), "t").unwrap().unwrap();
            assert_eq!(&*got, b"23456");
            assert!(fb.get(8, 3, f.path(), "t").is_none());
            assert!(fb.get(u64::MAX, 2, f.path(), "t").is_none());
            assert_eq!(&*fb.get(10, 0, f.path(), "t").unwrap().unwrap(), b"");
        }
    }

    #[test]
    fn unmapped_read_of_a_file_truncated_after_open_is_an_error() {
        let f = file_with(&[7u8; 4096]);
        let fb = FileBytes::open(f.path(), ReadOptions::default().with_mmap(false)).unwrap();
        f.as_file().set_len(100).unwrap();
        let err = fb
            .get(0, 4096, f.path(), "w")
            .unwrap()
            .unwrap_err()
            .to_string();
        assert!(err.contains("shorter than when it was opened"), "{err}");
    }

    #[test]
    fn the_budget_refuses_large_buffers() {
        let f = file_with(&[1u8; 64]);
        let opts = ReadOptions::default()
            .with_mmap(false)
            .with_max_alloc(Some(16));
        let fb = FileBytes::open(f.path(), opts).unwrap();
        assert_eq!(fb.get(0, 16, f.path(), "t").unwrap().unwrap().len(), 16);
        let err = fb
            .get(0, 17, f.path(), "t")
            .unwrap()
            .unwrap_err()
            .to_string();
        assert!(err.contains("over the allocation limit of 16"), "{err}");
    }
}
