//! A checkpoint's string tensor, streamed (see [`bundle`](super::bundle) for the
//! encoding): `varint64 length × n | u32le masked crc32c of the lengths | the bytes`.
//!
//! Opening reads the lengths once, with `pread` through a small buffer, and checks their
//! checksum and that they add up to the bytes that follow; nothing is kept per element.
//! The elements are then handed out one at a time, the lengths read again beside the
//! bytes, and the entry's checksum is checked after the last. Memory: two small buffers
//! and the largest element, whatever the tensor's size; this process never maps the
//! bytes (a mapped gigabyte would count in its resident memory).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::coding::{self, VarintError};
use crate::error::{Error, Result};
use crate::tensor::{Crc32cCheck, StringReader, TfEncoded};

/// Buffer of the lengths readers.
const BUF: usize = 64 << 10;

/// Bytes `[pos, end)` of a file, read front to back with `pread` through a buffer.
struct Window<'a> {
    file: &'a File,
    /// Next file offset to fetch into the buffer.
    pos: u64,
    end: u64,
    buf: Vec<u8>,
    at: usize,
    filled: usize,
}

enum Fault {
    Varint(VarintError),
    Io(std::io::Error),
}

impl<'a> Window<'a> {
    fn new(file: &'a File, pos: u64, end: u64) -> Window<'a> {
        Window {
            file,
            pos,
            end,
            buf: Vec::new(),
            at: 0,
            filled: 0,
        }
    }

    /// The file offset of the next byte handed out.
    fn position(&self) -> u64 {
        self.pos - (self.filled - self.at) as u64
    }

    fn byte(&mut self) -> std::io::Result<Option<u8>> {
        if self.at == self.filled {
            let n = usize::try_from(self.end - self.pos).map_or(BUF, |r| r.min(BUF));
            if n == 0 {
                return Ok(None);
            }
            self.buf.resize(n, 0);
            self.file.read_exact_at(&mut self.buf[..n], self.pos)?;
            self.pos += n as u64;
            self.at = 0;
            self.filled = n;
        }
        let b = self.buf[self.at];
        self.at += 1;
        Ok(Some(b))
    }

    /// A varint64, decoded as [`coding::get_varint64`] does.
    fn varint64(&mut self) -> std::result::Result<u64, Fault> {
        let mut value = 0u64;
        for i in 0..10 {
            let Some(b) = self.byte().map_err(Fault::Io)? else {
                return Err(Fault::Varint(VarintError::Truncated));
            };
            if i == 9 && (b & 0x7f) > 1 {
                return Err(Fault::Varint(VarintError::Overflow));
            }
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(Fault::Varint(VarintError::Overflow))
    }
}

/// TensorFlow feeds each length to the crc as a u32, or a u64 if it does not fit.
fn crc_len(crc: u32, len: u64) -> u32 {
    match u32::try_from(len) {
        Ok(l) => coding::crc32c_extend(crc, &l.to_le_bytes()),
        Err(_) => coding::crc32c_extend(crc, &len.to_le_bytes()),
    }
}

/// One string tensor of a checkpoint, its lengths checked, handed out an element at a
/// time.
pub(crate) struct BundleStrings<'a> {
    file: &'a File,
    path: PathBuf,
    name: String,
    /// Where the tensor starts in the file, and its stored size.
    offset: u64,
    size: u64,
    n: u64,
    /// Bytes of the varint lengths; the crc32c of the lengths (unmasked).
    lengths_len: u64,
    lengths_crc: u32,
    /// The entry's stored crc32c (unmasked).
    expected: u32,
    lengths: Window<'a>,
    /// File offset of the next element's bytes.
    next_at: u64,
    crc: u32,
    given: u64,
    checked: bool,
    elem: Vec<u8>,
}

impl<'a> BundleStrings<'a> {
    /// Read and check the lengths of the `n` strings stored in `[offset, offset + size)`
    /// of `file` (whose bounds the caller checked) with entry crc32c `stored_crc` (masked,
    /// as stored).
    pub(crate) fn open(
        file: &'a File,
        path: &Path,
        name: &str,
        (offset, size): (u64, u64),
        n: u64,
        stored_crc: u32,
    ) -> Result<BundleStrings<'a>> {
        let bad = |w: String| Error::corrupt_tensor(path, name, w);
        let end = offset
            .checked_add(size)
            .ok_or_else(|| bad(format!("offset {offset} + size {size} overflows")))?;
        // Every element takes at least one length byte.
        if n > size {
            return Err(bad(format!("{n} strings cannot fit in {size} bytes")));
        }
        let io = |e: std::io::Error| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                bad("the file ends inside the tensor (truncated?)".into())
            } else {
                Error::io(path, "read", e)
            }
        };
        let mut w = Window::new(file, offset, end);
        let mut crc = 0u32;
        let mut total = 0u64;
        for i in 0..n {
            let len = w.varint64().map_err(|f| match f {
                Fault::Varint(e) => bad(format!("string {i}: length: {e}")),
                Fault::Io(e) => io(e),
            })?;
            crc = crc_len(crc, len);
            total = total
                .checked_add(len)
                .ok_or_else(|| bad("string lengths overflow".into()))?;
        }
        let lengths_len = w.position() - offset;
        let mut stored = [0u8; 4];
        for b in &mut stored {
            *b = w
                .byte()
                .map_err(io)?
                .ok_or_else(|| bad("truncated before the length checksum".into()))?;
        }
        let stored = u32::from_le_bytes(stored);
        if coding::unmask(stored) != crc {
            return Err(bad(format!(
                "string length checksum mismatch (stored {:#010x}, computed {crc:#010x})",
                coding::unmask(stored)
            )));
        }
        let follow = end - w.position();
        if total != follow {
            return Err(bad(format!(
                "string lengths add up to {total} bytes but {follow} bytes follow them"
            )));
        }
        let lengths_crc = crc;
        Ok(BundleStrings {
            file,
            path: path.to_path_buf(),
            name: name.to_string(),
            offset,
            size,
            n,
            lengths_len,
            lengths_crc,
            expected: coding::unmask(stored_crc),
            lengths: Window::new(file, offset, offset + lengths_len),
            next_at: offset + lengths_len + 4,
            crc: coding::crc32c_extend(lengths_crc, &stored.to_le_bytes()),
            given: 0,
            checked: false,
            elem: Vec::new(),
        })
    }

    fn check(&self) -> Crc32cCheck {
        Crc32cCheck {
            expected: self.expected,
            file: self.path.clone(),
            tensor: self.name.clone(),
            part: String::new(),
        }
    }
}

impl StringReader for BundleStrings<'_> {
    fn len(&self) -> u64 {
        self.n
    }

    fn next(&mut self) -> Result<Option<&[u8]>> {
        if self.given == self.n {
            if !self.checked {
                self.check().check(self.crc)?;
                self.checked = true;
            }
            return Ok(None);
        }
        let bad = |w: String| Error::corrupt_tensor(&self.path, &self.name, w);
        // Checked at open: the lengths decode and add up to the bytes that follow.
        let len = self
            .lengths
            .varint64()
            .map_err(|_| bad("string lengths changed while being read".into()))?;
        let end = self
            .next_at
            .checked_add(len)
            .filter(|&e| e <= self.offset + self.size)
            .ok_or_else(|| bad("string lengths changed while being read".into()))?;
        let n = usize::try_from(len)
            .map_err(|_| bad(format!("a string of {len} bytes does not fit in memory")))?;
        self.elem.clear();
        self.elem.try_reserve_exact(n).map_err(|_| {
            Error::unsupported_tensor(
                &self.path,
                &self.name,
                format!("a string of {len} bytes does not fit in memory"),
            )
        })?;
        self.elem.resize(n, 0);
        self.file
            .read_exact_at(&mut self.elem, self.next_at)
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::UnexpectedEof {
                    bad("the file ends inside the tensor (truncated?)".into())
                } else {
                    Error::io(&self.path, "read", e)
                }
            })?;
        self.next_at = end;
        self.crc = coding::crc32c_extend(self.crc, &self.elem);
        self.given += 1;
        Ok(Some(&self.elem))
    }

    fn tf_encoded(&self) -> Option<TfEncoded<'_>> {
        Some(TfEncoded {
            file: self.file,
            offset: self.offset,
            size: self.size,
            lengths_len: self.lengths_len,
            lengths_crc: self.lengths_crc,
            check: self.check(),
        })
    }
}
