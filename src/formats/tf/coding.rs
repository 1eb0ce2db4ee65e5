//! Byte-level encodings shared by the table and bundle code: LevelDB varints, fixed-width
//! little-endian integers and TensorFlow's masked crc32c.
//!
//! Source of truth: `tensorflow/tsl/lib/core/coding.cc` (varints) and
//! `tensorflow/tsl/lib/hash/crc32c.h` (mask). Decoders never read past the slice they are
//! given and report "truncated" or "too long" instead of panicking.

/// Added to the rotated crc by [`mask`].
const MASK_DELTA: u32 = 0xa282_ead8;

/// TensorFlow/LevelDB masked crc32c: rotate right by 15 bits and add a constant, so that
/// the crc of data containing embedded crcs stays well distributed.
pub fn mask(crc: u32) -> u32 {
    crc.rotate_right(15).wrapping_add(MASK_DELTA)
}

/// Inverse of [`mask`].
pub fn unmask(masked: u32) -> u32 {
    masked.wrapping_sub(MASK_DELTA).rotate_left(15)
}

/// crc32c (Castagnoli) of `data`, hardware-accelerated where the CPU allows.
pub fn crc32c(data: &[u8]) -> u32 {
    crc32c::crc32c(data)
}

/// Continue a crc32c over more data.
pub fn crc32c_extend(crc: u32, data: &[u8]) -> u32 {
    crc32c::crc32c_append(crc, data)
}

/// Why a varint could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VarintError {
    /// The input ended inside the varint.
    Truncated,
    /// More bytes than the type allows, or a value that does not fit.
    Overflow,
}

impl std::fmt::Display for VarintError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            VarintError::Truncated => "truncated varint",
            VarintError::Overflow => "varint too long",
        })
    }
}

/// Decode a varint64 at the start of `buf`; returns the value and the bytes used.
pub fn get_varint64(buf: &[u8]) -> Result<(u64, usize), VarintError> {
    let mut value: u64 = 0;
    for (i, &b) in buf.iter().enumerate().take(10) {
        let part = u64::from(b & 0x7f);
        if i == 9 && (b & 0x7f) > 1 {
            return Err(VarintError::Overflow);
        }
        value |= part << (7 * i);
        if b & 0x80 == 0 {
            return Ok((value, i + 1));
        }
    }
    if buf.len() >= 10 {
        Err(VarintError::Overflow)
    } else {
        Err(VarintError::Truncated)
    }
}

/// Decode a varint32 at the start of `buf`.
pub fn get_varint32(buf: &[u8]) -> Result<(u32, usize), VarintError> {
    let (v, n) = get_varint64(&buf[..buf.len().min(5)])?;
    u32::try_from(v)
        .map(|v| (v, n))
        .map_err(|_| VarintError::Overflow)
}

/// Append `v` as a varint.
pub fn put_varint64(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Read a little-endian u32 at `pos`, if it fits in `buf`.
pub fn get_fixed32(buf: &[u8], pos: usize) -> Option<u32> {
    let end = pos.checked_add(4)?;
    let bytes = buf.get(pos..end)?;
    Some(u32::from_le_bytes(bytes.try_into().ok()?))
}

/// A cursor over a byte slice for sequential decoding with bounds checks.
#[derive(Debug, Clone)]
pub struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Cursor { buf, pos: 0 }
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    pub fn varint32(&mut self) -> Result<u32, VarintError> {
        let (v, n) = get_varint32(&self.buf[self.pos..])?;
        self.pos += n;
        Ok(v)
    }

    pub fn varint64(&mut self) -> Result<u64, VarintError> {
        let (v, n) = get_varint64(&self.buf[self.pos..])?;
        self.pos += n;
        Ok(v)
    }

    /// Take the next `n` bytes, or `None` if fewer remain.
    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let out = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn crc32c_known_vectors() {
        // From the crc32c test vectors used by LevelDB and TensorFlow (crc32c_test.cc).
        assert_eq!(crc32c(&[0u8; 32]), 0x8a91_36aa);
        assert_eq!(crc32c(&[0xffu8; 32]), 0x62a8_ab43);
        let inc: Vec<u8> = (0..32).collect();
        assert_eq!(crc32c(&inc), 0x46dd_794e);
        let dec: Vec<u8> = (0..32).rev().collect();
        assert_eq!(crc32c(&dec), 0x113f_db5c);
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
        assert_eq!(
            crc32c_extend(crc32c(b"hello "), b"world"),
            crc32c(b"hello world")
        );
    }

    #[test]
    fn mask_vectors() {
        // Masked values of the crcs above, as TensorFlow's Mask() computes them.
        let crc = crc32c(b"foo");
        assert_ne!(mask(crc), crc);
        assert_ne!(mask(mask(crc)), crc);
        assert_eq!(unmask(mask(crc)), crc);
        assert_eq!(unmask(unmask(mask(mask(crc)))), crc);
        // The masked crc of no bytes: what TF stores for an empty tensor.
        assert_eq!(mask(0), 0xa282_ead8);
        assert_eq!(mask(0x8a91_36aa), 0x0fd7_fffa);
    }

    #[test]
    fn varint_errors() {
        assert_eq!(get_varint64(&[]), Err(VarintError::Truncated));
        assert_eq!(get_varint64(&[0x80, 0x80]), Err(VarintError::Truncated));
        assert_eq!(get_varint64(&[0xff; 11]), Err(VarintError::Overflow));
        assert_eq!(
            get_varint32(&[0xff, 0xff, 0xff, 0xff, 0x1f]),
            Err(VarintError::Overflow)
        );
        assert_eq!(
            get_varint32(&[0xff, 0xff, 0xff, 0xff, 0x0f]),
            Ok((u32::MAX, 5))
        );
        assert_eq!(get_varint64(&[0x96, 0x01]), Ok((150, 2)));
    }

    proptest! {
        #[test]
        fn varint_round_trip(v: u64) {
            let mut buf = Vec::new();
            put_varint64(&mut buf, v);
            prop_assert_eq!(get_varint64(&buf), Ok((v, buf.len())));
        }

        #[test]
        fn varint_never_panics(bytes: Vec<u8>) {
            let _ = get_varint64(&bytes);
            let _ = get_varint32(&bytes);
        }
    }
}
