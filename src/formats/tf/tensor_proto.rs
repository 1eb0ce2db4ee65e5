//! A serialized `TensorProto` (`tensorflow/core/framework/tensor.proto`) decoded exactly as
//! TensorFlow's `Tensor::FromProto` (`tensorflow/core/framework/tensor.cc`) decodes it,
//! read in place from the bytes that hold it.
//!
//! ```text
//! TensorProto
//!    1 dtype           DataType (enum)
//!    2 tensor_shape    TensorShapeProto { 2 dim: Dim { 1 size: int64, 2 name }, 3 unknown_rank }
//!    4 tensor_content  bytes: the values as raw little-endian bytes, row-major
//!                      (strings: varint32 length × n, then the bytes)
//!   typed repeated fields, used when tensor_content is empty:
//!    5 float_val       float32                    13 half_val   float16, bfloat16 (bits in int32)
//!    6 double_val      float64                    16 uint32_val uint32
//!    7 int_val         int32, int16, int8, uint16, uint8 (truncated to the type)
//!    8 string_val      string                     17 uint64_val uint64
//!    9 scomplex_val    complex64 (re, im pairs)   18 float8_val bytes, float8 types (1 byte each)
//!   10 int64_val       int64                      11 bool_val   bool
//!   12 dcomplex_val    complex128 (re, im pairs)
//! ```
//!
//! TensorFlow's rules, which this module follows to the byte (and which `tf.make_ndarray`
//! agrees with wherever it does not raise):
//!
//! - a tensor of no elements is empty, whatever the fields hold;
//! - a non-empty `tensor_content` wins over typed fields and must be exactly
//!   `elements × dtype size` bytes;
//! - a typed field with *fewer* values than elements is completed by repeating its last
//!   value (a splat: `tf.constant(0.0, shape=[1000, 1000])` stores one `float_val`); one
//!   with *no* values gives zeros (empty strings); extra values are ignored; a complex
//!   field's count is halved (rounding down);
//! - `int_val` and `half_val` values are truncated to the element's width, as C++'s
//!   conversion from `int32` does (`tf.make_ndarray` raises on such values instead);
//! - the shape's `unknown_rank` flag is ignored (`TensorShape::IsValid`); dimensions must
//!   be ≥ 0, at most 254 of them, their product within `int64`.
//!
//! A splat lets a few bytes stand for a huge tensor, so the decoded size of a tensor stored
//! in typed fields, and of any string tensor, is capped at [`MAX_DECODED_BYTES`] (a string
//! element counts [`STRING_ELEMENT_COST`] bytes besides its contents): over it, parsing
//! fails with an error that names the field and the limit. `tensor_content` is served in
//! place and has no such limit (the file holds those bytes).

use std::borrow::Cow;
use std::ops::Range;

use super::wire::{count_packed_varints, offset_in, packed_varints, Field, Reader, Value};
use crate::dtype::DType;
use crate::tensor::TensorData;

/// The most bytes a tensor stored in typed fields (or any string tensor) may decode to.
pub const MAX_DECODED_BYTES: u64 = 1 << 30;

/// What each string element costs in memory besides its bytes (a `Vec<u8>`), counted
/// against [`MAX_DECODED_BYTES`].
pub const STRING_ELEMENT_COST: u64 = 24;

/// TensorFlow's `TensorShape::MaxDimensions()`.
pub const MAX_RANK: usize = 254;

/// How a tensor's values are stored in its proto.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Storage {
    /// No elements.
    Empty,
    /// `tensor_content` of a numeric tensor: exactly its bytes, at this range of the buffer.
    Content(Range<usize>),
    /// `tensor_content` of a string tensor: varint32 lengths, then the bytes.
    StringContent(Range<usize>),
    /// Typed repeated fields (`float_val`, …), expanded when read.
    Fields,
}

/// A `TensorProto` whose structure has been checked: what it holds and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub dtype: DType,
    pub shape: Vec<u64>,
    pub elements: u64,
    /// Bytes of the decoded tensor: `elements × dtype size`, or a string tensor's bytes.
    pub byte_len: u64,
    pub storage: Storage,
}

/// The name of a `TensorProto` field, for messages.
pub fn field_name(n: u32) -> &'static str {
    match n {
        1 => "dtype",
        2 => "tensor_shape",
        3 => "version_number",
        4 => "tensor_content",
        5 => "float_val",
        6 => "double_val",
        7 => "int_val",
        8 => "string_val",
        9 => "scomplex_val",
        10 => "int64_val",
        11 => "bool_val",
        12 => "dcomplex_val",
        13 => "half_val",
        14 => "resource_handle_val",
        15 => "variant_val",
        16 => "uint32_val",
        17 => "uint64_val",
        18 => "float8_val",
        _ => "an unknown field",
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Enc {
    Varint,
    Fixed32,
    Fixed64,
    /// One length-delimited value per occurrence (`string_val`, messages).
    Len,
    /// A `bytes` field: the last occurrence wins (`float8_val`).
    Bytes,
}

fn encoding(n: u32) -> Option<Enc> {
    Some(match n {
        5 | 9 => Enc::Fixed32,
        6 | 12 => Enc::Fixed64,
        7 | 10 | 11 | 13 | 16 | 17 => Enc::Varint,
        8 | 14 | 15 => Enc::Len,
        18 => Enc::Bytes,
        _ => return None,
    })
}

/// The typed field that holds `d`'s values (`ProtoHelper<T>` in tensor.cc).
fn typed_field(d: DType) -> u32 {
    match d {
        DType::Float32 => 5,
        DType::Float64 => 6,
        DType::Int32 | DType::UInt8 | DType::UInt16 | DType::Int16 | DType::Int8 => 7,
        DType::String => 8,
        DType::Complex64 => 9,
        DType::Int64 => 10,
        DType::Bool => 11,
        DType::Complex128 => 12,
        DType::Float16 | DType::BFloat16 => 13,
        DType::UInt32 => 16,
        DType::UInt64 => 17,
        DType::Float8E5M2 | DType::Float8E4M3FN => 18,
    }
}

/// Call `f` on every field of the message made of `parts` of `buf` (a message field
/// written several times is the merge of its occurrences: their concatenation); `f`
/// returns `Ok(false)` to stop early.
fn walk<'a>(
    buf: &'a [u8],
    parts: &[Range<usize>],
    mut f: impl FnMut(Field<'a>) -> Result<bool, String>,
) -> Result<(), String> {
    for p in parts {
        let bytes = buf
            .get(p.clone())
            .ok_or_else(|| "tensor bytes out of range".to_string())?;
        let mut r = Reader::new(bytes);
        while let Some(field) = r.next_field()? {
            if !f(field)? {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// How many values one occurrence of repeated field `n` holds.
fn count_values(n: u32, enc: Enc, v: &Value<'_>) -> Result<u64, String> {
    let name = field_name(n);
    let run_of = |size: usize, run: &[u8]| {
        if run.len() % size == 0 {
            Ok((run.len() / size) as u64)
        } else {
            Err(format!(
                "{name}: a packed run of {} bytes is not whole {size}-byte values",
                run.len()
            ))
        }
    };
    match (enc, v) {
        (Enc::Varint, Value::Varint(_))
        | (Enc::Fixed32, Value::Fixed32(_))
        | (Enc::Fixed64, Value::Fixed64(_))
        | (Enc::Len, Value::Len(_)) => Ok(1),
        (Enc::Varint, Value::Len(run)) => {
            count_packed_varints(run).map_err(|e| format!("{name}: {e}"))
        }
        (Enc::Fixed32, Value::Len(run)) => run_of(4, run),
        (Enc::Fixed64, Value::Len(run)) => run_of(8, run),
        (Enc::Bytes, Value::Len(b)) => Ok(b.len() as u64),
        _ => Err(format!("{name}: written as {}", v.kind())),
    }
}

/// Parse a `TensorShapeProto` occurrence into `dims` (merged: dims are appended).
fn parse_shape(bytes: &[u8], dims: &mut Vec<i64>) -> Result<(), String> {
    let mut r = Reader::new(bytes);
    while let Some(f) = r.next_field().map_err(|e| format!("tensor_shape: {e}"))? {
        match (f.number, f.value) {
            (2, Value::Len(dim)) => {
                if dims.len() >= MAX_RANK {
                    return Err(format!(
                        "tensor_shape: more than {MAX_RANK} dimensions (TensorFlow's limit)"
                    ));
                }
                let k = dims.len();
                let mut size = 0i64;
                let mut d = Reader::new(dim);
                while let Some(f) = d
                    .next_field()
                    .map_err(|e| format!("tensor_shape.dim[{k}]: {e}"))?
                {
                    match (f.number, f.value) {
                        (1, Value::Varint(v)) => size = v as i64,
                        (1, v) => {
                            return Err(format!(
                                "tensor_shape.dim[{k}].size: written as {}",
                                v.kind()
                            ))
                        }
                        _ => {}
                    }
                }
                dims.push(size);
            }
            (3, Value::Varint(_)) => {} // unknown_rank: ignored by TensorShape::IsValid
            (2 | 3, v) => {
                return Err(format!(
                    "tensor_shape: field {} written as {}",
                    f.number,
                    v.kind()
                ))
            }
            _ => {}
        }
    }
    Ok(())
}

/// Check a `TensorProto` made of `parts` of `buf` (usually one; several when the message
/// occurs several times, as protobuf merges them) and say what it holds. Errors name the
/// field.
pub fn parse(buf: &[u8], parts: &[Range<usize>]) -> Result<Parsed, String> {
    let mut dtype_raw: i32 = 0;
    let mut dims: Vec<i64> = Vec::new();
    let mut content: Option<Range<usize>> = None;
    walk(buf, parts, |f| {
        match (f.number, f.value) {
            (1, Value::Varint(v)) => dtype_raw = v as i32,
            (2, Value::Len(s)) => parse_shape(s, &mut dims)?,
            (3, Value::Varint(_)) => {}
            (4, Value::Len(c)) => {
                let start = offset_in(buf, c);
                content = Some(start..start + c.len());
            }
            (1..=4, v) => return Err(format!("{}: written as {}", field_name(f.number), v.kind())),
            (n, v) => {
                // Typed fields: their framing is checked here, their values when read.
                if let Some(enc) = encoding(n) {
                    count_values(n, enc, &v)?;
                }
            }
        }
        Ok(true)
    })?;
    if dtype_raw == 0 {
        return Err("dtype is not set (DT_INVALID)".into());
    }
    let dtype = DType::from_tf(dtype_raw).map_err(|known| match known {
        Some(n) => format!("unsupported dtype {n}"),
        None => format!("unknown dtype {dtype_raw}"),
    })?;
    let mut shape = Vec::with_capacity(dims.len());
    let mut elements: u64 = 1;
    for (k, &d) in dims.iter().enumerate() {
        let d = u64::try_from(d)
            .map_err(|_| format!("tensor_shape.dim[{k}].size is negative ({d})"))?;
        elements = elements
            .checked_mul(d)
            .filter(|&e| e <= i64::MAX as u64)
            .ok_or_else(|| format!("tensor_shape {dims:?} has more elements than int64 holds"))?;
        shape.push(d);
    }
    let too_big = |field: &str, bytes: u64| {
        format!(
            "{field}: {elements} elements of {dtype} decode to {bytes} bytes, more than the \
             {MAX_DECODED_BYTES} allowed for a tensor stored as repeated values or strings"
        )
    };
    let esize = dtype.size();
    let (storage, byte_len) = match (elements, content.filter(|c| !c.is_empty())) {
        (0, _) => (Storage::Empty, 0),
        (_, Some(c)) => match esize {
            Some(es) => {
                let want = elements
                    .checked_mul(es as u64)
                    .ok_or_else(|| format!("{elements} elements of {dtype} overflow"))?;
                if c.len() as u64 != want {
                    return Err(format!(
                        "tensor_content has {} bytes, but shape {shape:?} of {dtype} needs {want}",
                        c.len()
                    ));
                }
                (Storage::Content(c), want)
            }
            None => {
                let bytes = string_content_len(&buf[c.clone()], elements)
                    .map_err(|e| format!("tensor_content (strings): {e}"))?;
                let cost = bytes.saturating_add(elements.saturating_mul(STRING_ELEMENT_COST));
                if cost > MAX_DECODED_BYTES {
                    return Err(too_big("tensor_content", cost));
                }
                (Storage::StringContent(c), bytes)
            }
        },
        (_, None) => {
            let field = typed_field(dtype);
            let name = field_name(field);
            match esize {
                Some(es) => {
                    let bytes = elements
                        .checked_mul(es as u64)
                        .filter(|&b| b <= MAX_DECODED_BYTES)
                        .ok_or_else(|| too_big(name, elements.saturating_mul(es as u64)))?;
                    (Storage::Fields, bytes)
                }
                None => {
                    let bytes = string_field_len(buf, parts, elements)?;
                    let cost = bytes.saturating_add(elements.saturating_mul(STRING_ELEMENT_COST));
                    if cost > MAX_DECODED_BYTES {
                        return Err(too_big(name, cost));
                    }
                    (Storage::Fields, bytes)
                }
            }
        }
    };
    Ok(Parsed {
        dtype,
        shape,
        elements,
        byte_len,
        storage,
    })
}

/// TensorFlow's `GetVarint32`: at most 5 bytes, bits past 32 dropped.
fn tf_varint32(buf: &[u8], pos: &mut usize) -> Option<u32> {
    let mut result: u32 = 0;
    let mut shift = 0u32;
    while shift <= 28 {
        let b = u32::from(*buf.get(*pos)?);
        *pos += 1;
        if b & 0x80 != 0 {
            result |= (b & 0x7f) << shift;
        } else {
            result |= b << shift;
            return Some(result);
        }
        shift += 7;
    }
    None
}

/// The lengths of a string `tensor_content` (`port::DecodeStringList`): `n` varint32
/// lengths, then exactly their total in bytes. Calls `each` with each string's range.
fn string_content(c: &[u8], n: u64, mut each: impl FnMut(Range<usize>)) -> Result<u64, String> {
    // Every length takes at least one byte: `n` is bounded by the input before anything
    // is done `n` times.
    if n > c.len() as u64 {
        return Err(format!("{n} strings cannot fit in {} bytes", c.len()));
    }
    let mut pos = 0usize;
    let mut total: u64 = 0;
    for i in 0..n {
        let len = tf_varint32(c, &mut pos).ok_or_else(|| format!("length of string {i}"))?;
        total += u64::from(len);
    }
    if total != (c.len() - pos) as u64 {
        return Err(format!(
            "the lengths add up to {total} bytes, but {} bytes follow them",
            c.len() - pos
        ));
    }
    let mut lp = 0usize;
    let mut at = pos;
    for _ in 0..n {
        let len = tf_varint32(c, &mut lp).expect("read above") as usize;
        each(at..at + len);
        at += len;
    }
    Ok(total)
}

fn string_content_len(c: &[u8], n: u64) -> Result<u64, String> {
    string_content(c, n, |_| {})
}

/// The decoded bytes of a string tensor of `n` elements stored in `string_val`.
fn string_field_len(buf: &[u8], parts: &[Range<usize>], n: u64) -> Result<u64, String> {
    let (mut seen, mut total, mut last) = (0u64, 0u64, 0u64);
    walk(buf, parts, |f| {
        if let (8, Value::Len(s)) = (f.number, f.value) {
            if seen == n {
                return Ok(false);
            }
            seen += 1;
            last = s.len() as u64;
            total = total.saturating_add(last);
        }
        Ok(true)
    })?;
    Ok(total.saturating_add((n - seen).saturating_mul(last)))
}

/// Append `count` copies of the `size` bytes that end `out` (a splat of the last value).
fn repeat_last(out: &mut Vec<u8>, size: usize, count: usize) {
    let start = out.len() - size;
    let end = out.len() + size * count;
    while out.len() < end {
        let have = out.len() - start;
        let n = have.min(end - out.len());
        out.extend_from_within(start..start + n);
    }
}

/// One element of `dtype` from a varint typed-field value, as C++ converts the field's
/// type (int32, int64, uint32, uint64, bool) to the element type.
fn push_varint(out: &mut Vec<u8>, dtype: DType, v: u64) {
    match dtype {
        DType::Int8 | DType::UInt8 => out.push(v as u8),
        DType::Int16 | DType::UInt16 | DType::Float16 | DType::BFloat16 => {
            out.extend_from_slice(&(v as u16).to_le_bytes())
        }
        DType::Int32 | DType::UInt32 => out.extend_from_slice(&(v as u32).to_le_bytes()),
        DType::Bool => out.push(u8::from(v != 0)),
        _ => out.extend_from_slice(&v.to_le_bytes()),
    }
}

/// The values of a tensor [`parse`] checked. Numeric `tensor_content` is borrowed from
/// `buf`; everything else is decoded into memory (at most [`MAX_DECODED_BYTES`]).
pub fn decode<'b>(
    buf: &'b [u8],
    parts: &[Range<usize>],
    p: &Parsed,
) -> Result<TensorData<'b>, String> {
    let n = usize::try_from(p.elements).map_err(|_| "too many elements".to_string())?;
    match &p.storage {
        Storage::Empty if p.dtype == DType::String => Ok(TensorData::Strings(Vec::new())),
        Storage::Empty => Ok(TensorData::Bytes(Cow::Borrowed(&[]))),
        Storage::Content(r) => buf
            .get(r.clone())
            .map(|b| TensorData::Bytes(Cow::Borrowed(b)))
            .ok_or_else(|| "tensor_content out of range".to_string()),
        Storage::StringContent(r) => {
            let c = buf
                .get(r.clone())
                .ok_or_else(|| "tensor_content out of range".to_string())?;
            let mut out = alloc_vec::<Vec<u8>>(n)?;
            string_content(c, p.elements, |s| out.push(c[s].to_vec()))
                .map_err(|e| format!("tensor_content (strings): {e}"))?;
            Ok(TensorData::Strings(out))
        }
        Storage::Fields if p.dtype == DType::String => {
            let mut out = alloc_vec::<Vec<u8>>(n)?;
            walk(buf, parts, |f| {
                if let (8, Value::Len(s)) = (f.number, f.value) {
                    if out.len() == n {
                        return Ok(false);
                    }
                    out.push(s.to_vec());
                }
                Ok(true)
            })?;
            let last = out.last().cloned().unwrap_or_default();
            out.resize(n, last);
            Ok(TensorData::Strings(out))
        }
        Storage::Fields => {
            decode_fields(buf, parts, p, n).map(|v| TensorData::Bytes(Cow::Owned(v)))
        }
    }
}

/// A vector with room for `n` elements, or an error if memory cannot be had.
fn alloc_vec<T>(n: usize) -> Result<Vec<T>, String> {
    let mut v = Vec::new();
    v.try_reserve_exact(n)
        .map_err(|_| format!("{n} elements do not fit in memory"))?;
    Ok(v)
}

fn decode_fields(
    buf: &[u8],
    parts: &[Range<usize>],
    p: &Parsed,
    n: usize,
) -> Result<Vec<u8>, String> {
    let dtype = p.dtype;
    let es = dtype.size().expect("numeric");
    let total = usize::try_from(p.byte_len).map_err(|_| "too large".to_string())?;
    let mut out = alloc_vec::<u8>(total)?;
    let field = typed_field(dtype);
    // Whole elements taken from the field (a complex number's halves come in pairs).
    let taken;
    if field == 18 {
        // float8_val: one bytes field, the last occurrence wins.
        let mut last: &[u8] = &[];
        walk(buf, parts, |f| {
            if let (18, Value::Len(b)) = (f.number, f.value) {
                last = b;
            }
            Ok(true)
        })?;
        let k = last.len().min(n);
        out.extend_from_slice(&last[..k]);
        taken = k;
    } else {
        let want = n * es;
        let enc = encoding(field).expect("typed fields have an encoding");
        walk(buf, parts, |f| {
            if f.number != field || out.len() >= want {
                return Ok(out.len() < want);
            }
            match (enc, f.value) {
                (Enc::Varint, Value::Varint(v)) => push_varint(&mut out, dtype, v),
                (Enc::Varint, Value::Len(run)) => {
                    for v in packed_varints(run) {
                        if out.len() >= want {
                            break;
                        }
                        push_varint(&mut out, dtype, v?);
                    }
                }
                (Enc::Fixed32, Value::Fixed32(b)) => out.extend_from_slice(&b),
                (Enc::Fixed64, Value::Fixed64(b)) => out.extend_from_slice(&b),
                (Enc::Fixed32 | Enc::Fixed64, Value::Len(run)) => {
                    let unit = if enc == Enc::Fixed32 { 4 } else { 8 };
                    let k = run.len().min(want - out.len());
                    out.extend_from_slice(&run[..k - k % unit]);
                }
                (_, v) => return Err(format!("{}: written as {}", field_name(field), v.kind())),
            }
            Ok(out.len() < want)
        })?;
        out.truncate(want);
        // A complex field's odd last half is no element (NumElements = size / 2).
        out.truncate(out.len() - out.len() % es);
        taken = out.len() / es;
    }
    if taken == 0 {
        out.resize(total, 0);
    } else if taken < n {
        repeat_last(&mut out, es, n - taken);
    }
    debug_assert_eq!(out.len(), total);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    fn len_field(out: &mut Vec<u8>, n: u32, bytes: &[u8]) {
        varint(out, u64::from(n) << 3 | 2);
        varint(out, bytes.len() as u64);
        out.extend_from_slice(bytes);
    }

    fn proto(dtype: DType, shape: &[i64], rest: &[u8]) -> Vec<u8> {
        let mut t = Vec::new();
        varint(&mut t, 8);
        varint(&mut t, dtype.to_tf() as u64);
        let mut s = Vec::new();
        for &d in shape {
            let mut dim = Vec::new();
            varint(&mut dim, 8);
            varint(&mut dim, d as u64);
            len_field(&mut s, 2, &dim);
        }
        len_field(&mut t, 2, &s);
        t.extend_from_slice(rest);
        t
    }

    fn whole(t: &[u8]) -> Vec<Range<usize>> {
        std::iter::once(0..t.len()).collect()
    }

    fn bytes_of(t: &[u8]) -> Result<Vec<u8>, String> {
        let parts = whole(t);
        let p = parse(t, &parts)?;
        match decode(t, &parts, &p)? {
            TensorData::Bytes(b) => Ok(b.into_owned()),
            TensorData::Strings(_) => Err("strings".into()),
        }
    }

    #[test]
    fn splat_repeats_the_last_value() {
        let mut f = Vec::new();
        len_field(&mut f, 5, &[0, 0, 0xc0, 0x3f, 0, 0, 0x20, 0x40]);
        let t = proto(DType::Float32, &[2, 2], &f);
        let want: Vec<u8> = [1.5f32, 2.5, 2.5, 2.5]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        assert_eq!(bytes_of(&t).unwrap(), want);
        // No values: zeros. More values than elements: the first ones.
        assert_eq!(
            bytes_of(&proto(DType::Int64, &[3], &[])).unwrap(),
            vec![0; 24]
        );
        let mut f = Vec::new();
        len_field(&mut f, 7, &[1, 2, 3]);
        assert_eq!(bytes_of(&proto(DType::Int8, &[2], &f)).unwrap(), vec![1, 2]);
    }

    #[test]
    fn int_val_is_truncated_like_cpp() {
        let mut f = Vec::new();
        let mut run = Vec::new();
        varint(&mut run, 300);
        varint(&mut run, (-200i64) as u64);
        len_field(&mut f, 7, &run);
        assert_eq!(
            bytes_of(&proto(DType::Int8, &[3], &f)).unwrap(),
            vec![44, 56, 56]
        );
        let mut f = Vec::new();
        varint(&mut f, 13 << 3);
        varint(&mut f, 0x13c00);
        assert_eq!(
            bytes_of(&proto(DType::Float16, &[1], &f)).unwrap(),
            vec![0x00, 0x3c]
        );
    }

    #[test]
    fn complex_count_is_halved() {
        let mut f = Vec::new();
        let run: Vec<u8> = [1f32, 2., 3.]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        len_field(&mut f, 9, &run);
        let got = bytes_of(&proto(DType::Complex64, &[3], &f)).unwrap();
        let one: Vec<u8> = [1f32, 2.].iter().flat_map(|x| x.to_le_bytes()).collect();
        assert_eq!(got, [one.clone(), one.clone(), one].concat());
    }

    #[test]
    fn content_must_fit_the_shape_and_bombs_are_refused() {
        let mut f = Vec::new();
        len_field(&mut f, 4, &[0; 4]);
        assert!(parse(&proto(DType::Float32, &[2], &f), &whole(&[])).is_err());
        let t = proto(DType::Float32, &[2], &f);
        assert!(parse(&t, &whole(&t)).unwrap_err().contains("needs 8"));
        let t = proto(DType::Float32, &[1_000_000, 1_000_000], &[0x2d, 0, 0, 0, 0]);
        let e = parse(&t, &whole(&t)).unwrap_err();
        assert!(e.contains("float_val") && e.contains("allowed"), "{e}");
        let t = proto(DType::Float32, &[1 << 40, 1 << 40], &[]);
        assert!(parse(&t, &whole(&t)).unwrap_err().contains("int64"));
        let t = proto(DType::Float32, &[-1], &[]);
        assert!(parse(&t, &whole(&t)).unwrap_err().contains("negative"));
    }

    #[test]
    fn strings_in_both_forms() {
        let mut f = Vec::new();
        len_field(&mut f, 8, b"a");
        len_field(&mut f, 8, b"bc");
        let t = proto(DType::String, &[3], &f);
        let parts = whole(&t);
        let p = parse(&t, &parts).unwrap();
        assert_eq!(p.byte_len, 5);
        assert_eq!(
            decode(&t, &parts, &p).unwrap(),
            TensorData::Strings(vec![b"a".to_vec(), b"bc".to_vec(), b"bc".to_vec()])
        );
        let mut f = Vec::new();
        len_field(&mut f, 4, b"\x01\x02abc");
        let t = proto(DType::String, &[2], &f);
        let parts = whole(&t);
        let p = parse(&t, &parts).unwrap();
        assert_eq!(
            decode(&t, &parts, &p).unwrap(),
            TensorData::Strings(vec![b"a".to_vec(), b"bc".to_vec()])
        );
        let mut f = Vec::new();
        len_field(&mut f, 4, b"\x01\x03abc");
        let t = proto(DType::String, &[2], &f);
        assert!(parse(&t, &whole(&t)).is_err());
    }
}
