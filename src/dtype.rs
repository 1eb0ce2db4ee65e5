//! Element types, with their names in every format.
//!
//! The user-facing name of a dtype is always TensorFlow's (`float32`, `bfloat16`,
//! `complex64`, `string`, …), whatever file it came from. The enum values of
//! TensorFlow's `DataType` come from `tensorflow/core/framework/types.proto`.

use std::fmt;

/// An element type. Every numeric type is stored little-endian, row-major, in our data
/// model; `String` tensors are a list of byte strings.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[non_exhaustive]
pub enum DType {
    /// Boolean, one byte (0 or 1).
    Bool,
    /// Signed 8-bit integer.
    Int8,
    /// Signed 16-bit integer.
    Int16,
    /// Signed 32-bit integer.
    Int32,
    /// Signed 64-bit integer.
    Int64,
    /// Unsigned 8-bit integer.
    UInt8,
    /// Unsigned 16-bit integer.
    UInt16,
    /// Unsigned 32-bit integer.
    UInt32,
    /// Unsigned 64-bit integer.
    UInt64,
    /// IEEE 754 half precision.
    Float16,
    /// bfloat16 (the top half of a float32).
    BFloat16,
    /// IEEE 754 single precision.
    Float32,
    /// IEEE 754 double precision.
    Float64,
    /// Two float32s: real, imaginary.
    Complex64,
    /// Two float64s: real, imaginary.
    Complex128,
    /// 8-bit float, 5 exponent and 2 mantissa bits.
    Float8E5M2,
    /// 8-bit float, 4 exponent and 3 mantissa bits, finite (no infinities).
    Float8E4M3FN,
    /// Byte strings (no fixed element size).
    String,
}

impl DType {
    /// Every dtype, in a stable order.
    pub const ALL: [DType; 18] = [
        DType::Bool,
        DType::Int8,
        DType::Int16,
        DType::Int32,
        DType::Int64,
        DType::UInt8,
        DType::UInt16,
        DType::UInt32,
        DType::UInt64,
        DType::Float16,
        DType::BFloat16,
        DType::Float32,
        DType::Float64,
        DType::Complex64,
        DType::Complex128,
        DType::Float8E5M2,
        DType::Float8E4M3FN,
        DType::String,
    ];

    /// TensorFlow's name (`tf.DType.name`).
    pub fn name(self) -> &'static str {
        match self {
            DType::Bool => "bool",
            DType::Int8 => "int8",
            DType::Int16 => "int16",
            DType::Int32 => "int32",
            DType::Int64 => "int64",
            DType::UInt8 => "uint8",
            DType::UInt16 => "uint16",
            DType::UInt32 => "uint32",
            DType::UInt64 => "uint64",
            DType::Float16 => "float16",
            DType::BFloat16 => "bfloat16",
            DType::Float32 => "float32",
            DType::Float64 => "float64",
            DType::Complex64 => "complex64",
            DType::Complex128 => "complex128",
            DType::Float8E5M2 => "float8_e5m2",
            DType::Float8E4M3FN => "float8_e4m3fn",
            DType::String => "string",
        }
    }

    /// Parse TensorFlow's name (also accepts `half`, `float`, `double`).
    pub fn from_name(name: &str) -> Option<DType> {
        let n = match name {
            "half" => "float16",
            "float" => "float32",
            "double" => "float64",
            other => other,
        };
        DType::ALL.iter().copied().find(|d| d.name() == n)
    }

    /// Bytes per element; `None` for strings (variable length).
    pub fn size(self) -> Option<usize> {
        Some(match self {
            DType::Bool | DType::Int8 | DType::UInt8 => 1,
            DType::Float8E5M2 | DType::Float8E4M3FN => 1,
            DType::Int16 | DType::UInt16 | DType::Float16 | DType::BFloat16 => 2,
            DType::Int32 | DType::UInt32 | DType::Float32 => 4,
            DType::Int64 | DType::UInt64 | DType::Float64 | DType::Complex64 => 8,
            DType::Complex128 => 16,
            DType::String => return None,
        })
    }

    /// The size of the scalar that must be byte-swapped for an endianness change
    /// (a complex number is two floats).
    pub fn swap_unit(self) -> Option<usize> {
        match self {
            DType::Complex64 => Some(4),
            DType::Complex128 => Some(8),
            other => other.size(),
        }
    }

    /// TensorFlow `DataType` enum value.
    pub fn to_tf(self) -> i32 {
        match self {
            DType::Float32 => 1,
            DType::Float64 => 2,
            DType::Int32 => 3,
            DType::UInt8 => 4,
            DType::Int16 => 5,
            DType::Int8 => 6,
            DType::String => 7,
            DType::Complex64 => 8,
            DType::Int64 => 9,
            DType::Bool => 10,
            DType::BFloat16 => 14,
            DType::UInt16 => 17,
            DType::Complex128 => 18,
            DType::Float16 => 19,
            DType::UInt32 => 22,
            DType::UInt64 => 23,
            DType::Float8E5M2 => 24,
            DType::Float8E4M3FN => 25,
        }
    }

    /// From a TensorFlow `DataType` enum value; `Err` carries TensorFlow's name of a
    /// known-but-unsupported type (quantized, resource, variant, …) or `None` if unknown.
    pub fn from_tf(v: i32) -> Result<DType, Option<&'static str>> {
        if let Some(d) = DType::ALL.iter().copied().find(|d| d.to_tf() == v) {
            return Ok(d);
        }
        Err(match v {
            11 => Some("qint8"),
            12 => Some("quint8"),
            13 => Some("qint32"),
            15 => Some("qint16"),
            16 => Some("quint16"),
            20 => Some("resource"),
            21 => Some("variant"),
            26 => Some("float8_e4m3fnuz"),
            27 => Some("float8_e4m3b11fnuz"),
            28 => Some("float8_e5m2fnuz"),
            29 => Some("int4"),
            30 => Some("uint4"),
            31 => Some("int2"),
            32 => Some("uint2"),
            v if v > 100 && v < 200 => Some("reference type"),
            _ => None,
        })
    }
}

/// Decode little-endian elements of a numeric dtype to f64 (complex numbers as two
/// elements, bool as 0/1); `None` for strings and float8.
#[cfg_attr(not(feature = "internals"), allow(dead_code))] // the tests and fuzz targets use it
pub fn decode_f64(dtype: DType, bytes: &[u8]) -> Option<Vec<f64>> {
    let mut out = Vec::new();
    decode_f64_into(dtype, bytes, &mut out).then_some(out)
}

/// [`decode_f64`] into `out` (cleared first, its allocation reused), for decoding a large
/// tensor piece by piece; false (and `out` empty) for strings and float8.
pub fn decode_f64_into(dtype: DType, bytes: &[u8], out: &mut Vec<f64>) -> bool {
    out.clear();
    macro_rules! conv {
        ($t:ty, $n:expr) => {
            out.extend(
                bytes
                    .chunks_exact($n)
                    .map(|c| <$t>::from_le_bytes(c.try_into().expect("chunk")) as f64),
            )
        };
    }
    match dtype {
        DType::Float32 | DType::Complex64 => conv!(f32, 4),
        DType::Float64 | DType::Complex128 => conv!(f64, 8),
        DType::Float16 => out.extend(
            bytes
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f64()),
        ),
        DType::BFloat16 => out.extend(
            bytes
                .chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f64()),
        ),
        DType::Int8 => conv!(i8, 1),
        DType::Int16 => conv!(i16, 2),
        DType::Int32 => conv!(i32, 4),
        DType::Int64 => conv!(i64, 8),
        DType::UInt8 | DType::Bool => conv!(u8, 1),
        DType::UInt16 => conv!(u16, 2),
        DType::UInt32 => conv!(u32, 4),
        DType::UInt64 => conv!(u64, 8),
        DType::Float8E5M2 | DType::Float8E4M3FN | DType::String => return false,
    }
    true
}

/// What `--dtype` does to bytes: little-endian floats of one type to another, each
/// rounded once, to nearest even, from its exact value (as TensorFlow casts). Works on
/// any whole number of elements, so that a large tensor is cast piece by piece.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cast {
    from: DType,
    to: DType,
}

impl Cast {
    /// A cast from float16, bfloat16, float32 or float64 to float16, bfloat16 or float32;
    /// `None` for any other pair.
    pub fn new(from: DType, to: DType) -> Option<Cast> {
        let source = matches!(
            from,
            DType::Float16 | DType::BFloat16 | DType::Float32 | DType::Float64
        );
        let target = matches!(to, DType::Float16 | DType::BFloat16 | DType::Float32);
        (source && target).then_some(Cast { from, to })
    }

    /// The source type.
    pub fn from(self) -> DType {
        self.from
    }

    /// The target type.
    pub fn to(self) -> DType {
        self.to
    }

    fn sizes(self) -> (u64, u64) {
        // Both are numeric (checked by `new`): neither size is `None`.
        let size = |d: DType| d.size().unwrap_or(1) as u64;
        (size(self.from), size(self.to))
    }

    /// Bytes out for `input` bytes in; `None` unless `input` is whole elements, or on
    /// overflow.
    pub fn output_len(self, input: u64) -> Option<u64> {
        let (a, b) = self.sizes();
        (input % a == 0)
            .then(|| (input / a).checked_mul(b))
            .flatten()
    }

    /// Bytes in for `output` bytes out; `None` unless `output` is whole elements, or on
    /// overflow.
    pub fn input_len(self, output: u64) -> Option<u64> {
        let (a, b) = self.sizes();
        (output % b == 0)
            .then(|| (output / b).checked_mul(a))
            .flatten()
    }

    /// Cast the elements of `input` into `out`, which holds
    /// [`output_len`](Self::output_len)`(input.len())` bytes (of a shorter one, only the
    /// elements both hold are cast). `values` is scratch space, reused between pieces.
    pub fn apply(self, input: &[u8], values: &mut Vec<f64>, out: &mut [u8]) {
        decode_f64_into(self.from, input, values);
        // Rounded once, to nearest even, from the exact value (every source float is
        // exact as an f64).
        macro_rules! put {
            ($n:expr, $f:expr) => {
                for (o, &v) in out.chunks_exact_mut($n).zip(values.iter()) {
                    o.copy_from_slice(&$f(v).to_le_bytes());
                }
            };
        }
        match self.to {
            DType::Float16 => put!(2, half::f16::from_f64),
            DType::BFloat16 => put!(2, half::bf16::from_f64),
            DType::Float32 => put!(4, |v: f64| v as f32),
            // `new` admits no other target.
            _ => {}
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_enum_values_round_trip() {
        for d in DType::ALL {
            assert_eq!(DType::from_name(d.name()), Some(d));
            assert_eq!(DType::from_tf(d.to_tf()), Ok(d));
        }
        assert_eq!(DType::from_tf(20), Err(Some("resource")));
        assert_eq!(DType::from_tf(9999), Err(None));
        assert_eq!(DType::from_name("half"), Some(DType::Float16));
        assert_eq!(DType::Complex128.size(), Some(16));
        assert_eq!(DType::Complex128.swap_unit(), Some(8));
        assert_eq!(DType::String.size(), None);
    }

    /// What `--dtype` did before casts went piece by piece: the whole tensor decoded,
    /// then each value rounded once.
    fn reference(from: DType, to: DType, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for v in decode_f64(from, bytes).unwrap() {
            match to {
                DType::Float16 => out.extend_from_slice(&half::f16::from_f64(v).to_le_bytes()),
                DType::BFloat16 => out.extend_from_slice(&half::bf16::from_f64(v).to_le_bytes()),
                DType::Float32 => out.extend_from_slice(&(v as f32).to_le_bytes()),
                _ => unreachable!(),
            }
        }
        out
    }

    #[test]
    fn casts_in_pieces_are_bit_identical() {
        // Every float16 and bfloat16; float32s and float64s across the whole range of
        // bit patterns (NaNs, infinities, subnormals, ties), plus the halfway cases.
        let all16: Vec<u8> = (0..=u16::MAX).flat_map(|v| v.to_le_bytes()).collect();
        let mut f32s: Vec<u8> = (0..1u32 << 18)
            .map(|k| k.wrapping_mul(0x9E37_79B9) ^ (k >> 3))
            .chain([
                0x3380_0000,
                0x3380_1000,
                0x3F80_1000,
                0x3F80_3000,
                0x4780_0000,
            ])
            .flat_map(|v| v.to_le_bytes())
            .collect();
        f32s.extend((0..1u32 << 16).flat_map(|k| (0x3F80_0000u32 | (k << 1) | 1).to_le_bytes()));
        let f64s: Vec<u8> = (0..1u64 << 16)
            .map(|k| k.wrapping_mul(0x9E37_79B9_7F4A_7C15))
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let inputs = [
            (DType::Float16, &all16),
            (DType::BFloat16, &all16),
            (DType::Float32, &f32s),
            (DType::Float64, &f64s),
        ];
        for (from, bytes) in inputs {
            for to in [DType::Float16, DType::BFloat16, DType::Float32] {
                let c = Cast::new(from, to).unwrap();
                let want = reference(from, to, bytes);
                let len = c.output_len(bytes.len() as u64).unwrap() as usize;
                assert_eq!(len, want.len());
                // Whole, and in pieces that are not powers of two.
                for piece in [len, 24 * 1000, 8] {
                    let mut out = vec![0u8; len];
                    let mut values = Vec::new();
                    for (k, o) in out.chunks_mut(piece).enumerate() {
                        let m = c.input_len(o.len() as u64).unwrap() as usize;
                        let at = c.input_len((k * piece) as u64).unwrap() as usize;
                        c.apply(&bytes[at..at + m], &mut values, o);
                    }
                    assert!(out == want, "{from} -> {to} in pieces of {piece}");
                }
            }
        }
        assert_eq!(Cast::new(DType::Int8, DType::Float16), None);
        assert_eq!(Cast::new(DType::Float32, DType::Float64), None);
        let c = Cast::new(DType::Float32, DType::Float16).unwrap();
        assert_eq!(c.output_len(6), None);
        assert_eq!(c.input_len(3), None);
        assert_eq!(c.input_len(u64::MAX - 1), None);
    }
}
