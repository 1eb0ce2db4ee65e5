//! Keys of the slices of partitioned variables, and how slices fit into the full tensor.
//!
//! A partitioned variable `name` has one entry under `name` (dtype, full shape and the list
//! of slices, no data) and one entry per slice under an *encoded slice key*, defined by
//! `EncodeTensorNameSlice` in `tensorflow/core/util/saved_tensor_slice_util.cc` using
//! `tensorflow/core/lib/strings/ordered_code.cc`:
//!
//! ```text
//! key := num(0) string(name) num(rank) (signed(start) signed(length))*rank
//! num(v)     := len:u8 then v big-endian in `len` bytes, leading zeros dropped (0 → 00)
//! string(s)  := s with 00 → 00 ff and ff → ff 00, then the separator 00 01
//! signed(v)  := order-preserving signed varint: 1 byte `0x80 ^ v` for -64 ≤ v < 64;
//!               longer forms put the length in leading bits of the first byte(s)
//! ```
//!
//! A full dimension is start 0, length −1 (an extent without `length` in the proto).
//! Because every slice key starts with byte 00 they sort right after the header key `""`.

use crate::pb::TensorSliceProto;

/// One dimension of a slice: `start` and `length`, where `length` −1 means "all of it".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    pub start: i64,
    pub length: i64,
}

/// Extents of a slice proto, in TensorFlow's convention (full extent = length −1).
pub fn extents(proto: &TensorSliceProto) -> Vec<Extent> {
    use crate::pb::tensor_slice_proto::extent::HasLength;
    proto
        .extent
        .iter()
        .map(|e| Extent {
            start: e.start,
            length: match e.has_length {
                Some(HasLength::Length(l)) => l,
                None => -1,
            },
        })
        .collect()
}

fn write_num_increasing(out: &mut Vec<u8>, v: u64) {
    let bytes = v.to_be_bytes();
    let skip = bytes.iter().take_while(|&&b| b == 0).count();
    out.push((8 - skip) as u8);
    out.extend_from_slice(&bytes[skip..]);
}

fn write_string(out: &mut Vec<u8>, s: &[u8]) {
    for &b in s {
        match b {
            0x00 => out.extend_from_slice(&[0x00, 0xff]),
            0xff => out.extend_from_slice(&[0xff, 0x00]),
            b => out.push(b),
        }
    }
    out.extend_from_slice(&[0x00, 0x01]);
}

/// Bytes of the encoding of `v` for each length 1..=10 (ordered_code.cc).
fn signed_len(v: i64) -> usize {
    let x = if v < 0 { !v } else { v } as u64;
    // Number of significant bits, plus one for the sign.
    let bits = 64 - x.leading_zeros() as usize + 1;
    // n bytes hold values of up to 7n - 1 significant bits (10 bytes hold all 64).
    bits.div_ceil(7).clamp(1, 10)
}

fn write_signed_num_increasing(out: &mut Vec<u8>, v: i64) {
    let len = signed_len(v);
    if len == 1 {
        out.push(0x80 ^ (v as u8));
        return;
    }
    // v sign-extended to 10 bytes, big-endian.
    let sign = if v < 0 { 0xff } else { 0x00 };
    let mut buf = [sign; 10];
    buf[2..].copy_from_slice(&v.to_be_bytes());
    let begin = 10 - len;
    // Header: `len - 1` bits equal to the sign-complement… expressed as the XOR masks
    // TensorFlow applies to the first two bytes.
    const HEADER: [[u8; 2]; 11] = [
        [0, 0],
        [0x80, 0],
        [0xc0, 0],
        [0xe0, 0],
        [0xf0, 0],
        [0xf8, 0],
        [0xfc, 0],
        [0xfe, 0],
        [0xff, 0],
        [0xff, 0x80],
        [0xff, 0xc0],
    ];
    buf[begin] ^= HEADER[len][0];
    buf[begin + 1] ^= HEADER[len][1];
    out.extend_from_slice(&buf[begin..]);
}

/// The table key under which one slice of `name` is stored.
pub fn encode_slice_key(name: &[u8], extents: &[Extent]) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len() + 4 + extents.len() * 4);
    write_num_increasing(&mut out, 0);
    write_string(&mut out, name);
    write_num_increasing(&mut out, extents.len() as u64);
    for e in extents {
        write_signed_num_increasing(&mut out, e.start);
        write_signed_num_increasing(&mut out, e.length);
    }
    out
}

fn read_num_increasing(buf: &mut &[u8]) -> Option<u64> {
    let (&len, rest) = buf.split_first()?;
    let len = len as usize;
    if len > 8 || rest.len() < len {
        return None;
    }
    let v = rest[..len]
        .iter()
        .fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
    *buf = &rest[len..];
    Some(v)
}

fn read_string(buf: &mut &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i + 1 < buf.len() {
        match (buf[i], buf[i + 1]) {
            (0x00, 0x01) => {
                *buf = &buf[i + 2..];
                return Some(out);
            }
            (0x00, 0xff) => out.push(0x00),
            (0xff, 0x00) => out.push(0xff),
            (0x00, _) | (0xff, _) => return None,
            (b, _) => {
                out.push(b);
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    None
}

fn read_signed_num_increasing(buf: &mut &[u8]) -> Option<i64> {
    let first = *buf.first()?;
    let xor: u64 = if first & 0x80 == 0 { !0 } else { 0 };
    let x0 = first ^ (xor as u8);
    let len = if x0 != 0xff {
        // Count leading one bits of x0: that many bytes follow... plus one.
        (x0 ^ 0xff).leading_zeros() as usize
    } else {
        let second = buf.get(1)? ^ (xor as u8);
        if second < 0x80 {
            8
        } else if second < 0xc0 {
            9
        } else {
            let third = buf.get(2)? ^ (xor as u8);
            if second == 0xc0 && third < 0x80 {
                10
            } else {
                return None;
            }
        }
    };
    if len == 0 || buf.len() < len {
        return None;
    }
    let mut x: u64 = if len < 8 {
        buf[..len]
            .iter()
            .fold(xor, |acc, &b| (acc << 8) | u64::from(b))
    } else {
        u64::from_be_bytes(buf[len - 8..len].try_into().ok()?)
    };
    const MASK: [u64; 11] = [
        0,
        0x80,
        0xc000,
        0x00e0_0000,
        0xf000_0000,
        0x00f8_0000_0000,
        0xfc00_0000_0000,
        0x00fe_0000_0000_0000,
        0xff00_0000_0000_0000,
        0x8000_0000_0000_0000,
        0,
    ];
    x ^= MASK[len];
    *buf = &buf[len..];
    Some(x as i64)
}

/// Decode a slice key back into the variable name and extents; `None` if malformed.
pub fn decode_slice_key(key: &[u8]) -> Option<(Vec<u8>, Vec<Extent>)> {
    let mut buf = key;
    if read_num_increasing(&mut buf)? != 0 {
        return None;
    }
    let name = read_string(&mut buf)?;
    let rank = read_num_increasing(&mut buf)?;
    // Each extent needs at least two bytes: bound the allocation by the input.
    if rank > (buf.len() / 2) as u64 {
        return None;
    }
    let mut extents = Vec::with_capacity(rank as usize);
    for _ in 0..rank {
        let start = read_signed_num_increasing(&mut buf)?;
        let length = read_signed_num_increasing(&mut buf)?;
        extents.push(Extent { start, length });
    }
    if !buf.is_empty() {
        return None;
    }
    Some((name, extents))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn enc_signed(v: i64) -> Vec<u8> {
        let mut out = Vec::new();
        write_signed_num_increasing(&mut out, v);
        out
    }

    #[test]
    fn signed_examples_from_ordered_code() {
        // The two worked examples in ordered_code.cc.
        assert_eq!(enc_signed(0x424242), vec![0xf0, 0x42, 0x42, 0x42]);
        assert_eq!(enc_signed(-0x800), vec![0x38, 0x00]);
        assert_eq!(enc_signed(0), vec![0x80]);
        assert_eq!(enc_signed(-1), vec![0x7f]);
        assert_eq!(enc_signed(63), vec![0xbf]);
        assert_eq!(enc_signed(64).len(), 2);
        assert_eq!(enc_signed(i64::MAX).len(), 10);
        assert_eq!(enc_signed(i64::MIN).len(), 10);
    }

    #[test]
    fn key_layout() {
        let key = encode_slice_key(
            b"a\x00\xff",
            &[Extent {
                start: 0,
                length: -1,
            }],
        );
        assert_eq!(
            key,
            vec![0x00, b'a', 0x00, 0xff, 0xff, 0x00, 0x00, 0x01, 0x01, 0x01, 0x80, 0x7f]
        );
    }

    proptest! {
        #[test]
        fn signed_round_trip_and_order(a: i64, b: i64) {
            let ea = enc_signed(a);
            let eb = enc_signed(b);
            let mut s = ea.as_slice();
            prop_assert_eq!(read_signed_num_increasing(&mut s), Some(a));
            prop_assert!(s.is_empty());
            prop_assert_eq!(a.cmp(&b), ea.cmp(&eb));
        }

        #[test]
        fn key_round_trip(name: Vec<u8>, ext in proptest::collection::vec((any::<i64>(), any::<i64>()), 0..5)) {
            let extents: Vec<Extent> = ext.iter().map(|&(start, length)| Extent { start, length }).collect();
            let key = encode_slice_key(&name, &extents);
            prop_assert_eq!(decode_slice_key(&key), Some((name, extents)));
        }

        #[test]
        fn decode_never_panics(bytes: Vec<u8>) {
            let _ = decode_slice_key(&bytes);
        }
    }
}
