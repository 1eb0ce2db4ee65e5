//! A tensor's values, as `inspect_checkpoint --tensor_name` or `h5dump -d` print them:
//! numpy's `str()` layout (nested brackets, no commas, `...` where a large tensor is
//! summarized), every element written so that reading it back gives the stored value
//! exactly, and `--stats` computed in bounded memory.
//!
//! Why exact and not numpy's 8 digits: the point of `show` is to check a conversion, so
//! `0.1f32` prints as `0.1` and `0.10000001f32` as `0.10000001` (shortest text that reads
//! back as the same float), bfloat16 and float16 as the shortest text that reads back as
//! the same bfloat16 / float16 value, integers in full.
//!
//! Memory: elements are read where they lie ([`TensorSource::file_range`], `pread` per
//! element) after the tensor's checksum is checked a piece at a time, or from the
//! source's own bytes; string tensors element by element. Statistics stream the tensor a
//! piece at a time ([`Pieces`]).

use std::fmt::Write as _;

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::tensor::{Pieces, TensorData, TensorSource};

/// Elements shown on each side of a summarized axis (numpy's `edgeitems`).
pub const EDGE_ITEMS: u64 = 3;

/// Default `--limit`: tensors with more elements are summarized (numpy's `threshold`).
pub const DEFAULT_LIMIT: u64 = 1000;

/// One element as text: shortest exact form for floats, Python's repr for bytes.
pub fn format_element(dtype: DType, b: &[u8]) -> String {
    match dtype {
        DType::Float32 => float(f64::from(f32::from_le_bytes(arr(b))), F32),
        DType::Float64 => float(f64::from_le_bytes(arr(b)), F64),
        DType::Float16 => float(half::f16::from_le_bytes(arr(b)).to_f64(), F16),
        DType::BFloat16 => float(half::bf16::from_le_bytes(arr(b)).to_f64(), BF16),
        DType::Float8E5M2 => float(f8_e5m2(b[0]), F8),
        DType::Float8E4M3FN => float(f8_e4m3fn(b[0]), F8),
        DType::Complex64 => complex(
            f64::from(f32::from_le_bytes(arr(&b[..4]))),
            f64::from(f32::from_le_bytes(arr(&b[4..]))),
            F32,
        ),
        DType::Complex128 => complex(
            f64::from_le_bytes(arr(&b[..8])),
            f64::from_le_bytes(arr(&b[8..])),
            F64,
        ),
        DType::Bool => if b[0] != 0 { "True" } else { "False" }.to_string(),
        DType::Int8 => (b[0] as i8).to_string(),
        DType::UInt8 => b[0].to_string(),
        DType::Int16 => i16::from_le_bytes(arr(b)).to_string(),
        DType::UInt16 => u16::from_le_bytes(arr(b)).to_string(),
        DType::Int32 => i32::from_le_bytes(arr(b)).to_string(),
        DType::UInt32 => u32::from_le_bytes(arr(b)).to_string(),
        DType::Int64 => i64::from_le_bytes(arr(b)).to_string(),
        DType::UInt64 => u64::from_le_bytes(arr(b)).to_string(),
        DType::String => bytes_repr(b),
    }
}

fn arr<const N: usize>(b: &[u8]) -> [u8; N] {
    b[..N].try_into().expect("element of its dtype's size")
}

/// Which float a value is, for its shortest exact text.
#[derive(Clone, Copy)]
enum Width {
    F64,
    F32,
    F16,
    BF16,
    /// float8: few enough values that 4 significant digits are exact.
    F8,
}
use Width::{BF16, F16, F32, F64, F8};

/// The shortest decimal that reads back as `v` in `w`'s precision.
fn shortest(v: f64, w: Width) -> String {
    match w {
        F64 => format!("{v:e}"),
        F32 => format!("{:e}", v as f32),
        F16 | BF16 | F8 => {
            // Fewest significant digits that round back to the same value.
            for digits in 1..=9 {
                let s = format!("{v:.*e}", digits - 1);
                let back: f64 = s.parse().expect("our own float text");
                let same = match w {
                    F16 => half::f16::from_f64(back) == half::f16::from_f64(v),
                    BF16 => half::bf16::from_f64(back) == half::bf16::from_f64(v),
                    _ => back == v,
                };
                if same {
                    return s;
                }
            }
            format!("{v:e}")
        }
    }
}

/// numpy's style: `1.`, `0.5`, `-2.25`, `1e-05`, `1.5e+20`, `nan`, `inf`.
fn float(v: f64, w: Width) -> String {
    if v.is_nan() {
        return "nan".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf" } else { "-inf" }.into();
    }
    let sci = shortest(v, w); // "1.5e-5", "-2.25e0"
    let (mant, exp) = sci.split_once('e').expect("exponent form");
    let exp: i32 = exp.parse().expect("exponent");
    if v != 0.0 && !(-4..16).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mant}e{sign}{:02}", exp.unsigned_abs());
    }
    // Positional: place the decimal point in the significant digits.
    let (neg, digits) = match mant.strip_prefix('-') {
        Some(m) => (true, m.replace('.', "")),
        None => (false, mant.replace('.', "")),
    };
    let point = exp + 1; // digits before the decimal point
    let mut s = String::new();
    if neg {
        s.push('-');
    }
    if point <= 0 {
        s.push_str("0.");
        s.extend(std::iter::repeat_n('0', point.unsigned_abs() as usize));
        s.push_str(&digits);
    } else {
        let p = point as usize;
        if digits.len() <= p {
            s.push_str(&digits);
            s.extend(std::iter::repeat_n('0', p - digits.len()));
            s.push('.');
        } else {
            s.push_str(&digits[..p]);
            s.push('.');
            s.push_str(&digits[p..]);
        }
    }
    s
}

fn complex(re: f64, im: f64, w: Width) -> String {
    let im_s = float(im, w);
    let sep = if im_s.starts_with('-') { "" } else { "+" };
    format!("{}{sep}{im_s}j", float(re, w))
}

/// Python's `repr` of a `bytes` object.
pub fn bytes_repr(b: &[u8]) -> String {
    let quote = if b.contains(&b'\'') && !b.contains(&b'"') {
        '"'
    } else {
        '\''
    };
    let mut s = String::with_capacity(b.len() + 3);
    s.push('b');
    s.push(quote);
    for &c in b {
        match c {
            b'\\' => s.push_str("\\\\"),
            b'\t' => s.push_str("\\t"),
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            c if c == quote as u8 => {
                s.push('\\');
                s.push(c as char);
            }
            0x20..=0x7e => s.push(c as char),
            c => {
                let _ = write!(s, "\\x{c:02x}");
            }
        }
    }
    s.push(quote);
    s
}

/// float8 e5m2: the top byte of a float16.
fn f8_e5m2(b: u8) -> f64 {
    half::f16::from_bits(u16::from(b) << 8).to_f64()
}

/// float8 e4m3fn: 1 sign, 4 exponent (bias 7), 3 mantissa bits; no infinities, and
/// S.1111.111 is NaN.
fn f8_e4m3fn(b: u8) -> f64 {
    let sign = if b & 0x80 != 0 { -1.0 } else { 1.0 };
    let exp = i32::from((b >> 3) & 0xf);
    let man = f64::from(b & 0x7);
    if exp == 0xf && b & 0x7 == 0x7 {
        return f64::NAN;
    }
    if exp == 0 {
        sign * man / 8.0 * 2f64.powi(-6)
    } else {
        sign * (1.0 + man / 8.0) * 2f64.powi(exp - 7)
    }
}

/// Which indices of an axis of length `n` are shown: all, or the first and last
/// [`EDGE_ITEMS`] with a gap between.
fn shown(n: u64, summarize: bool) -> Vec<Option<u64>> {
    if summarize && n > 2 * EDGE_ITEMS {
        let mut v: Vec<Option<u64>> = (0..EDGE_ITEMS).map(Some).collect();
        v.push(None);
        v.extend((n - EDGE_ITEMS..n).map(Some));
        v
    } else {
        (0..n).map(Some).collect()
    }
}

/// Elements of one tensor, handed out in increasing flat order.
trait Elements {
    /// The text of element `flat` (never called with a smaller `flat` than before).
    fn get(&mut self, flat: u64) -> Result<String>;
}

/// Numeric elements: from the source's bytes, or with `pread` from its file.
struct Numeric<'s> {
    dtype: DType,
    size: u64,
    data: NumericData<'s>,
}

enum NumericData<'s> {
    Bytes(std::borrow::Cow<'s, [u8]>),
    File(&'s std::fs::File, u64),
}

impl Elements for Numeric<'_> {
    fn get(&mut self, flat: u64) -> Result<String> {
        use std::os::unix::fs::FileExt;
        let at = flat * self.size;
        let mut buf = [0u8; 16];
        let b = &mut buf[..self.size as usize];
        match &self.data {
            NumericData::Bytes(bytes) => {
                b.copy_from_slice(&bytes[at as usize..(at + self.size) as usize])
            }
            NumericData::File(f, offset) => f
                .read_exact_at(b, offset + at)
                .map_err(|e| Error::io("(tensor data)", "read", e))?,
        }
        Ok(format_element(self.dtype, b))
    }
}

/// String elements, read front to back.
struct Strings<'s> {
    reader: Box<dyn crate::tensor::StringReader + 's>,
    next: u64,
}

impl Elements for Strings<'_> {
    fn get(&mut self, flat: u64) -> Result<String> {
        while self.next < flat {
            self.reader.next()?;
            self.next += 1;
        }
        self.next += 1;
        let s = self.reader.next()?.unwrap_or_default();
        Ok(bytes_repr(s))
    }
}

/// Tensor `index` of `src` as numpy's `str()` prints it, summarized when it has more than
/// `limit` elements (`0`: never). Checksums are checked first.
pub fn format_tensor(src: &dyn TensorSource, index: usize, limit: u64) -> Result<String> {
    let mut out = String::new();
    walk(src, index, limit, &mut Text(&mut out))?;
    Ok(out)
}

/// Tensor `index` of `src` as JSON: nested lists (`"..."` where summarized), floats as
/// numbers (`"nan"`, `"inf"`, `"-inf"` as strings), complex as `[re, im]`, strings as
/// Python bytes literals.
pub fn json_tensor(src: &dyn TensorSource, index: usize, limit: u64) -> Result<serde_json::Value> {
    let mut j = Json(vec![vec![]]);
    walk(src, index, limit, &mut j)?;
    let top =
        j.0.pop()
            .and_then(|mut v| v.pop())
            .unwrap_or(serde_json::Value::Null);
    Ok(top)
}

/// What [`walk`] builds: text or JSON.
trait Sink {
    fn open(&mut self, depth: usize, first: bool, newlines: usize);
    fn close(&mut self);
    fn element(&mut self, dtype: DType, text: String, first: bool);
    fn gap(&mut self, depth: usize, newlines: usize, inner: bool);
}

struct Text<'a>(&'a mut String);

impl Sink for Text<'_> {
    fn open(&mut self, depth: usize, first: bool, newlines: usize) {
        if !first {
            self.0.extend(std::iter::repeat_n('\n', newlines));
            self.0.extend(std::iter::repeat_n(' ', depth));
        }
        self.0.push('[');
    }
    fn close(&mut self) {
        self.0.push(']');
    }
    fn element(&mut self, _: DType, text: String, first: bool) {
        if !first {
            self.0.push(' ');
        }
        self.0.push_str(&text);
    }
    fn gap(&mut self, depth: usize, newlines: usize, inner: bool) {
        if inner {
            self.0.push_str(" ...");
        } else {
            self.0.extend(std::iter::repeat_n('\n', newlines));
            self.0.extend(std::iter::repeat_n(' ', depth));
            self.0.push_str("...");
        }
    }
}

struct Json(Vec<Vec<serde_json::Value>>);

impl Sink for Json {
    fn open(&mut self, _: usize, _: bool, _: usize) {
        self.0.push(Vec::new());
    }
    fn close(&mut self) {
        let v = self.0.pop().expect("opened");
        self.0
            .last_mut()
            .expect("outer")
            .push(serde_json::Value::Array(v));
    }
    fn element(&mut self, dtype: DType, text: String, _: bool) {
        self.0
            .last_mut()
            .expect("outer")
            .push(json_value(dtype, &text));
    }
    fn gap(&mut self, _: usize, _: usize, _: bool) {
        self.0.last_mut().expect("outer").push("...".into());
    }
}

fn json_value(dtype: DType, text: &str) -> serde_json::Value {
    use serde_json::Value;
    let num = |t: &str| -> Value {
        match t {
            "nan" | "inf" | "-inf" => Value::String(t.into()),
            _ => t
                .parse::<f64>()
                .ok()
                .and_then(|f| serde_json::Number::from_f64(f).map(Value::Number))
                .unwrap_or_else(|| Value::String(t.into())),
        }
    };
    match dtype {
        DType::String => Value::String(text.into()),
        DType::Bool => Value::Bool(text == "True"),
        DType::Complex64 | DType::Complex128 => {
            // "re+imj" / "re-imj": split at the sign that starts the imaginary part.
            let t = text.trim_end_matches('j');
            let cut = t
                .char_indices()
                .skip(1)
                .filter(|&(i, c)| (c == '+' || c == '-') && !t[..i].ends_with('e'))
                .map(|(i, _)| i)
                .last()
                .unwrap_or(t.len());
            let im = t[cut..].trim_start_matches('+');
            Value::Array(vec![num(&t[..cut]), num(im)])
        }
        DType::Float16
        | DType::BFloat16
        | DType::Float32
        | DType::Float64
        | DType::Float8E5M2
        | DType::Float8E4M3FN => num(text),
        _ => text
            .parse::<i64>()
            .map(Value::from)
            .or_else(|_| text.parse::<u64>().map(Value::from))
            .unwrap_or_else(|_| Value::String(text.into())),
    }
}

/// Walk tensor `index` in numpy's order, handing what is shown to `sink`.
fn walk(src: &dyn TensorSource, index: usize, limit: u64, sink: &mut dyn Sink) -> Result<()> {
    let t = src
        .tensors()
        .get(index)
        .ok_or_else(|| Error::corrupt(src.path(), format!("no tensor {index}")))?;
    let n = t
        .num_elements()
        .ok_or_else(|| Error::corrupt_tensor(src.path(), &t.name, "element count overflows"))?;
    let summarize = limit > 0 && n > limit;
    let mut elements: Box<dyn Elements + '_> = if t.dtype == DType::String {
        Box::new(Strings {
            reader: src.strings(index)?,
            next: 0,
        })
    } else {
        let size = t.dtype.size().expect("numeric") as u64;
        // Every stored checksum is checked before any value is shown.
        crate::tensor::check_readable(src, index)?;
        let data = match src.file_range(index) {
            Some(r) => NumericData::File(r.file, r.offset),
            None => match src.read(index)? {
                TensorData::Bytes(b) => NumericData::Bytes(b),
                TensorData::Strings(_) => {
                    return Err(Error::corrupt_tensor(
                        src.path(),
                        &t.name,
                        "strings where numbers were expected",
                    ))
                }
            },
        };
        if let NumericData::Bytes(b) = &data {
            if b.len() as u64 != n * size {
                return Err(Error::corrupt_tensor(
                    src.path(),
                    &t.name,
                    format!("{} bytes where {} were expected", b.len(), n * size),
                ));
            }
        }
        Box::new(Numeric {
            dtype: t.dtype,
            size,
            data,
        })
    };
    let shape = &t.shape;
    if shape.is_empty() {
        sink.element(t.dtype, elements.get(0)?, true);
        return Ok(());
    }
    // Row-major strides, in elements.
    let mut strides = vec![1u64; shape.len()];
    for d in (0..shape.len() - 1).rev() {
        strides[d] = strides[d + 1] * shape[d + 1];
    }
    let walker = Walker {
        shape,
        strides: &strides,
        summarize,
        dtype: t.dtype,
    };
    walker.rec(0, 0, true, elements.as_mut(), sink)
}

/// What [`walk`] recurses over.
struct Walker<'a> {
    shape: &'a [u64],
    strides: &'a [u64],
    summarize: bool,
    dtype: DType,
}

impl Walker<'_> {
    /// Axis `d` of the block starting at flat index `base`.
    fn rec(
        &self,
        d: usize,
        base: u64,
        first: bool,
        elements: &mut dyn Elements,
        sink: &mut dyn Sink,
    ) -> Result<()> {
        let rank = self.shape.len();
        sink.open(d, first, rank - d);
        for (k, i) in shown(self.shape[d], self.summarize).into_iter().enumerate() {
            let first_here = k == 0;
            match i {
                None => sink.gap(d + 1, rank - d - 1, d + 1 == rank),
                Some(i) if d + 1 == rank => {
                    sink.element(self.dtype, elements.get(base + i)?, first_here);
                }
                Some(i) => self.rec(
                    d + 1,
                    base + i * self.strides[d],
                    first_here,
                    elements,
                    sink,
                )?,
            }
        }
        sink.close();
        Ok(())
    }
}

/// Summary statistics of one tensor, computed a piece at a time.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Stats {
    /// Elements in all.
    pub count: u64,
    /// Smallest and largest value, NaN left out (as text, exact).
    pub min: Option<String>,
    pub max: Option<String>,
    /// Mean and population standard deviation of the finite values.
    pub mean: Option<f64>,
    pub std: Option<f64>,
    /// NaN and ±Inf elements.
    pub nan: u64,
    pub inf: u64,
}

/// [`Stats`] of numeric tensor `index` (not complex, not strings).
pub fn stats(src: &dyn TensorSource, index: usize) -> Result<Stats> {
    let t = &src.tensors()[index];
    if matches!(
        t.dtype,
        DType::String | DType::Complex64 | DType::Complex128
    ) {
        return Err(Error::unsupported_tensor(
            src.path(),
            &t.name,
            format!("--stats of {} values", t.dtype),
        ));
    }
    let size = t.dtype.size().expect("numeric");
    let mut pieces = Pieces::open(src, index, false)?;
    let mut buf = vec![0u8; (256usize << 10) / size * size];
    let mut st = Stats::default();
    // Exact extremes: integers as i128, floats as f64 (every dtype here fits).
    let (mut lo, mut hi): (Option<Extreme>, Option<Extreme>) = (None, None);
    // Welford's running mean and sum of squared deviations.
    let (mut finite, mut mean, mut m2) = (0u64, 0.0f64, 0.0f64);
    while pieces.remaining() > 0 {
        let n = pieces.remaining().min(buf.len());
        pieces.read_into(&mut buf[..n])?;
        for e in buf[..n].chunks_exact(size) {
            st.count += 1;
            let (v, exact) = value(t.dtype, e);
            if v.is_nan() {
                st.nan += 1;
                continue;
            }
            if v.is_infinite() {
                st.inf += 1;
            } else {
                finite += 1;
                let delta = v - mean;
                mean += delta / finite as f64;
                m2 += delta * (v - mean);
            }
            let less = |a: &Extreme| (v, exact) < (a.0, a.1);
            let more = |a: &Extreme| (v, exact) > (a.0, a.1);
            if lo.as_ref().is_none_or(less) {
                lo = Some((v, exact, e.to_vec()));
            }
            if hi.as_ref().is_none_or(more) {
                hi = Some((v, exact, e.to_vec()));
            }
        }
    }
    pieces.finish()?;
    st.min = lo.map(|(_, _, b)| format_element(t.dtype, &b));
    st.max = hi.map(|(_, _, b)| format_element(t.dtype, &b));
    if finite > 0 {
        st.mean = Some(mean);
        st.std = Some((m2 / finite as f64).sqrt());
    }
    Ok(st)
}

/// A smallest or largest element: its value, exactly for integers, and its bytes.
type Extreme = (f64, i128, Vec<u8>);

/// An element as f64 (for ordering and moments) and, for integers, exactly.
fn value(dtype: DType, b: &[u8]) -> (f64, i128) {
    let int = |i: i128| (i as f64, i);
    match dtype {
        DType::Int8 => int(i128::from(b[0] as i8)),
        DType::UInt8 | DType::Bool => int(i128::from(b[0])),
        DType::Int16 => int(i128::from(i16::from_le_bytes(arr(b)))),
        DType::UInt16 => int(i128::from(u16::from_le_bytes(arr(b)))),
        DType::Int32 => int(i128::from(i32::from_le_bytes(arr(b)))),
        DType::UInt32 => int(i128::from(u32::from_le_bytes(arr(b)))),
        DType::Int64 => int(i128::from(i64::from_le_bytes(arr(b)))),
        DType::UInt64 => int(i128::from(u64::from_le_bytes(arr(b)))),
        DType::Float8E5M2 => (f8_e5m2(b[0]), 0),
        DType::Float8E4M3FN => (f8_e4m3fn(b[0]), 0),
        DType::Float16 => (half::f16::from_le_bytes(arr(b)).to_f64(), 0),
        DType::BFloat16 => (half::bf16::from_le_bytes(arr(b)).to_f64(), 0),
        DType::Float32 => (f64::from(f32::from_le_bytes(arr(b))), 0),
        DType::Float64 => (f64::from_le_bytes(arr(b)), 0),
        DType::Complex64 | DType::Complex128 | DType::String => (f64::NAN, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_as_numpy_does_and_read_back_exactly() {
        let f = |v: f32| format_element(DType::Float32, &v.to_le_bytes());
        assert_eq!(f(1.0), "1.");
        assert_eq!(f(0.5), "0.5");
        assert_eq!(f(-2.25), "-2.25");
        assert_eq!(f(0.1), "0.1");
        assert_eq!(f(1e-5), "1e-05");
        assert_eq!(f(1.5e20), "1.5e+20");
        assert_eq!(f(123456.0), "123456.");
        assert_eq!(f(0.0), "0.");
        assert_eq!(f(-0.0), "-0.");
        assert_eq!(f(f32::NAN), "nan");
        assert_eq!(f(f32::NEG_INFINITY), "-inf");
        for v in [0.1f32, 1.0 / 3.0, 16777217.0, 1e-38, 3.4e38, 1e-45] {
            let back: f32 = f(v).trim_end_matches('.').parse().unwrap();
            assert_eq!(back.to_bits(), v.to_bits(), "{v}");
        }
        let h = half::f16::from_f32(0.1);
        assert_eq!(format_element(DType::Float16, &h.to_le_bytes()), "0.1");
        let b = half::bf16::from_f32(0.1);
        assert_eq!(format_element(DType::BFloat16, &b.to_le_bytes()), "0.1");
    }

    #[test]
    fn other_dtypes() {
        assert_eq!(
            format_element(DType::Int64, &i64::MIN.to_le_bytes()),
            i64::MIN.to_string()
        );
        assert_eq!(
            format_element(DType::UInt64, &u64::MAX.to_le_bytes()),
            u64::MAX.to_string()
        );
        assert_eq!(format_element(DType::Bool, &[1]), "True");
        let mut c = 1.5f32.to_le_bytes().to_vec();
        c.extend((-2.0f32).to_le_bytes());
        assert_eq!(format_element(DType::Complex64, &c), "1.5-2.j");
        assert_eq!(bytes_repr(b"a'b\x00\n"), "b\"a'b\\x00\\n\"");
        assert_eq!(bytes_repr(b"plain"), "b'plain'");
        assert_eq!(f8_e4m3fn(0x38), 1.0);
        assert_eq!(f8_e4m3fn(0x7e), 448.0);
        assert!(f8_e4m3fn(0x7f).is_nan());
        assert_eq!(f8_e5m2(0x3c), 1.0);
        assert_eq!(
            json_value(DType::Complex64, "1.5-2.j"),
            serde_json::json!([1.5, -2.0])
        );
        assert_eq!(
            json_value(DType::Complex64, "1e-05+1e+20j"),
            serde_json::json!([1e-5, 1e20])
        );
    }
}
