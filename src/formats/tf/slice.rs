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
//!
//! The same keys and the same geometry serve both checkpoint formats that slice tensors —
//! V2 bundles (partitioned variables, `MaxShardSizePolicy`) and V1 tensor-slice files,
//! where every tensor is stored as slices — so the checks live here once: [`check_extents`]
//! (a slice lies within its tensor), [`first_overlap`] (no element stored twice; with a
//! matching element count this means the slices tile the tensor exactly) and
//! [`for_each_run`] / [`scatter`] (where a slice's row-major elements go in the full
//! tensor).

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

/// A slice as TensorFlow prints it in messages: `[start,length:…]`, `-` for a full dimension.
pub fn show(ext: &[Extent]) -> String {
    let parts: Vec<String> = ext
        .iter()
        .map(|e| {
            if e.length == -1 {
                "-".to_string()
            } else {
                format!("{},{}", e.start, e.length)
            }
        })
        .collect();
    format!("[{}]", parts.join(":"))
}

/// (start, length) of an extent within a dimension of size `dim`, if it lies within it.
pub fn resolve_extent(e: &Extent, dim: u64) -> Option<(u64, u64)> {
    if e.length == -1 {
        return (e.start == 0).then_some((0, dim));
    }
    let start = u64::try_from(e.start).ok()?;
    let len = u64::try_from(e.length).ok()?;
    (start.checked_add(len)? <= dim).then_some((start, len))
}

/// Validate one slice's extents against the full shape; returns its element count.
pub fn check_extents(shape: &[u64], ext: &[Extent]) -> Result<u64, String> {
    if ext.len() != shape.len() {
        return Err(format!(
            "slice {} has rank {} but the variable has rank {}",
            show(ext),
            ext.len(),
            shape.len()
        ));
    }
    let mut count: u64 = 1;
    for (d, (e, &dim)) in ext.iter().zip(shape).enumerate() {
        let (_, len) = resolve_extent(e, dim)
            .ok_or_else(|| format!("slice {} is outside dimension {d} of size {dim}", show(ext)))?;
        count = count
            .checked_mul(len)
            .ok_or_else(|| "slice element count overflows".to_string())?;
    }
    Ok(count)
}

/// Two slices that share an element, if any (their positions in `slices`, smaller first).
/// Slices with no elements share none; every slice must have passed [`check_extents`].
///
/// A sweep along the dimension where the slices start at the most distinct places: each
/// slice is compared only with those still open there, so a variable cut along any one
/// axis — how partitioners and `MaxShardSizePolicy` cut them — takes `n log n`, not the
/// `n²` that a file listing many thousand slices could otherwise ask for.
pub fn first_overlap<'a>(
    shape: &[u64],
    slices: impl IntoIterator<Item = &'a [Extent]>,
) -> Option<(usize, usize)> {
    let boxes: Vec<Vec<(u64, u64)>> = slices
        .into_iter()
        .map(|ext| {
            ext.iter()
                .zip(shape)
                .map(|(e, &d)| resolve_extent(e, d).map_or((0, 0), |(s, l)| (s, s + l)))
                .collect()
        })
        .collect();
    // Slices with no elements share none.
    let mut order: Vec<usize> = (0..boxes.len())
        .filter(|&i| boxes[i].iter().all(|&(s, e)| s < e))
        .collect();
    if shape.is_empty() {
        // Every slice of a scalar is the whole scalar.
        return (order.len() > 1).then(|| (order[0], order[1]));
    }
    let distinct = |d: usize| {
        let mut starts: Vec<u64> = order.iter().map(|&i| boxes[i][d].0).collect();
        starts.sort_unstable();
        starts.dedup();
        starts.len()
    };
    let axis = (0..shape.len()).max_by_key(|&d| distinct(d)).unwrap_or(0);
    order.sort_by_key(|&i| (boxes[i][axis].0, i));
    let meet = |a: &[(u64, u64)], b: &[(u64, u64)]| {
        a.iter()
            .zip(b)
            .all(|(&(s1, e1), &(s2, e2))| s1.max(s2) < e1.min(e2))
    };
    let mut open: Vec<usize> = Vec::new();
    for &i in &order {
        let start = boxes[i][axis].0;
        open.retain(|&j| boxes[j][axis].1 > start);
        if let Some(&j) = open.iter().find(|&&j| meet(&boxes[i], &boxes[j])) {
            return Some((i.min(j), i.max(j)));
        }
        open.push(i);
    }
    None
}

/// Call `f(first, n)` for each run of consecutive elements of slice `ext` (which must have
/// passed [`check_extents`] for `shape`), in the slice's row-major order: the slice's next
/// `n` elements go to elements `first..first + n` of the full row-major tensor. A slice
/// with no elements has no runs.
pub fn for_each_run(shape: &[u64], ext: &[Extent], mut f: impl FnMut(u64, u64)) {
    let bounds: Vec<(u64, u64)> = ext
        .iter()
        .zip(shape)
        .map(|(e, &d)| resolve_extent(e, d).expect("checked by check_extents"))
        .collect();
    let rank = shape.len();
    if rank == 0 {
        f(0, 1);
        return;
    }
    if bounds.iter().any(|&(_, len)| len == 0) {
        return;
    }
    // Strides of the full tensor, in elements (no overflow: each is at most its element
    // count, which check_extents' caller has bounded).
    let mut strides = vec![1u64; rank];
    for d in (0..rank - 1).rev() {
        strides[d] = strides[d + 1] * shape[d + 1];
    }
    let run = bounds[rank - 1].1;
    let mut idx = vec![0u64; rank - 1];
    loop {
        let mut dst = bounds[rank - 1].0;
        for d in 0..rank - 1 {
            dst += (bounds[d].0 + idx[d]) * strides[d];
        }
        f(dst, run);
        // Advance the multi-index over the outer dimensions.
        let mut d = rank - 1;
        loop {
            if d == 0 {
                return;
            }
            d -= 1;
            idx[d] += 1;
            if idx[d] < bounds[d].1 {
                break;
            }
            idx[d] = 0;
        }
    }
}

/// Copy a slice's row-major bytes (`esize` bytes an element) into its place in the full
/// tensor `full`. `src` holds exactly the slice's elements and `full` the tensor's.
pub fn scatter(full: &mut [u8], shape: &[u64], ext: &[Extent], src: &[u8], esize: u64) {
    let mut at = 0usize;
    for_each_run(shape, ext, |first, n| {
        let (dst, len) = ((first * esize) as usize, (n * esize) as usize);
        full[dst..dst + len].copy_from_slice(&src[at..at + len]);
        at += len;
    });
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

#[cfg_attr(not(feature = "internals"), allow(dead_code))] // the tests and fuzz targets use it
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

#[cfg_attr(not(feature = "internals"), allow(dead_code))] // the tests and fuzz targets use it
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

#[cfg_attr(not(feature = "internals"), allow(dead_code))] // the tests and fuzz targets use it
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
#[cfg_attr(not(feature = "internals"), allow(dead_code))] // the tests and fuzz targets use it
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

    fn ext(v: &[(i64, i64)]) -> Vec<Extent> {
        v.iter()
            .map(|&(start, length)| Extent { start, length })
            .collect()
    }

    #[test]
    fn scatter_places_slices() {
        // A 3x4 tensor of u8 assembled from a [0:3, 0:2] and a [0:3, 2:4] slice.
        let shape = [3u64, 4];
        let mut full = vec![0u8; 12];
        let left = ext(&[(0, -1), (0, 2)]);
        let right = ext(&[(0, 3), (2, 2)]);
        scatter(&mut full, &shape, &left, &[1, 2, 5, 6, 9, 10], 1);
        scatter(&mut full, &shape, &right, &[3, 4, 7, 8, 11, 12], 1);
        assert_eq!(full, (1..=12).collect::<Vec<u8>>());
    }

    #[test]
    fn empty_slices_have_no_runs() {
        // An empty slice along an outer dimension used to copy one inner run from its
        // (empty) data.
        let shape = [4u64, 3];
        let mut runs = Vec::new();
        for_each_run(&shape, &ext(&[(4, 0), (0, -1)]), |a, n| runs.push((a, n)));
        for_each_run(&shape, &ext(&[(0, -1), (1, 0)]), |a, n| runs.push((a, n)));
        assert!(runs.is_empty());
        let mut full = vec![0u8; 12];
        scatter(&mut full, &shape, &ext(&[(2, 0), (0, -1)]), &[], 1);
        for_each_run(&[], &[], |a, n| runs.push((a, n)));
        assert_eq!(runs, vec![(0, 1)]);
    }

    #[test]
    fn overlaps_are_found() {
        let shape = [10u64, 4];
        let a = ext(&[(0, 4), (0, -1)]);
        let b = ext(&[(4, 6), (0, -1)]);
        let c = ext(&[(3, 2), (1, 1)]);
        let empty = ext(&[(2, 0), (0, -1)]);
        assert_eq!(first_overlap(&shape, [a.as_slice(), b.as_slice()]), None);
        assert_eq!(
            first_overlap(&shape, [a.as_slice(), b.as_slice(), c.as_slice()]),
            Some((0, 2))
        );
        assert_eq!(
            first_overlap(&shape, [a.as_slice(), empty.as_slice()]),
            None
        );
        assert_eq!(first_overlap(&[], [&[][..], &[][..]]), Some((0, 1)));
        assert_eq!(first_overlap(&[], [&[][..]]), None);
    }

    #[test]
    fn many_slices_are_checked_quickly() {
        // 200 000 rows of a [200000, 8] variable, one slice each, then one row twice.
        let shape = [200_000u64, 8];
        let mut slices: Vec<Vec<Extent>> = (0..200_000)
            .rev()
            .map(|r| ext(&[(r, 1), (0, -1)]))
            .collect();
        let t = std::time::Instant::now();
        assert_eq!(
            first_overlap(&shape, slices.iter().map(Vec::as_slice)),
            None
        );
        slices.push(ext(&[(123, 1), (2, 3)]));
        let found = first_overlap(&shape, slices.iter().map(Vec::as_slice));
        assert_eq!(found, Some((200_000 - 124, 200_000)));
        assert!(t.elapsed().as_secs() < 5);
    }

    proptest! {
        #[test]
        fn sweep_agrees_with_every_pair(
            boxes in proptest::collection::vec(((0i64..6, 0i64..4), (0i64..6, 0i64..4)), 0..12),
        ) {
            let shape = [10u64, 10];
            let slices: Vec<Vec<Extent>> = boxes
                .iter()
                .map(|&((s0, l0), (s1, l1))| ext(&[(s0, l0), (s1, l1)]))
                .collect();
            let found = first_overlap(&shape, slices.iter().map(Vec::as_slice));
            let pairwise = (0..slices.len()).any(|a| {
                (a + 1..slices.len()).any(|b| {
                    slices[a].iter().zip(&slices[b]).all(|(x, y)| {
                        x.start.max(y.start) < (x.start + x.length).min(y.start + y.length)
                    })
                })
            });
            prop_assert_eq!(found.is_some(), pairwise);
            if let Some((a, b)) = found {
                prop_assert!(a < b);
            }
        }
    }

    #[test]
    fn extents_are_validated() {
        assert!(check_extents(&[4], &ext(&[(2, 3)])).is_err());
        assert!(check_extents(&[4], &ext(&[(-1, 1)])).is_err());
        assert!(check_extents(&[4], &ext(&[(1, -1)])).is_err());
        assert_eq!(check_extents(&[4, 5], &ext(&[(0, -1), (1, 2)])), Ok(8));
        assert!(check_extents(&[4], &[]).is_err());
        assert!(check_extents(&[u64::MAX, u64::MAX], &ext(&[(0, -1), (0, -1)])).is_err());
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
