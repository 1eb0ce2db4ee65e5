//! Element types, with their names in every format.
//!
//! The user-facing name of a dtype is always TensorFlow's (`float32`, `bfloat16`,
//! `complex64`, `string`, …), whatever file it came from (design §3). The enum values of
//! TensorFlow's `DataType` come from `tensorflow/core/framework/types.proto`.

use std::fmt;

/// An element type. Every numeric type is stored little-endian, row-major, in our data
/// model; `String` tensors are a list of byte strings.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum DType {
    Bool,
    Int8,
    Int16,
    Int32,
    Int64,
    UInt8,
    UInt16,
    UInt32,
    UInt64,
    Float16,
    BFloat16,
    Float32,
    Float64,
    Complex64,
    Complex128,
    Float8E5M2,
    Float8E4M3FN,
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
pub fn decode_f64(dtype: DType, bytes: &[u8]) -> Option<Vec<f64>> {
    macro_rules! conv {
        ($t:ty, $n:expr) => {
            bytes
                .chunks_exact($n)
                .map(|c| <$t>::from_le_bytes(c.try_into().expect("chunk")) as f64)
                .collect()
        };
    }
    Some(match dtype {
        DType::Float32 | DType::Complex64 => conv!(f32, 4),
        DType::Float64 | DType::Complex128 => conv!(f64, 8),
        DType::Float16 => bytes
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f64())
            .collect(),
        DType::BFloat16 => bytes
            .chunks_exact(2)
            .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f64())
            .collect(),
        DType::Int8 => conv!(i8, 1),
        DType::Int16 => conv!(i16, 2),
        DType::Int32 => conv!(i32, 4),
        DType::Int64 => conv!(i64, 8),
        DType::UInt8 | DType::Bool => conv!(u8, 1),
        DType::UInt16 => conv!(u16, 2),
        DType::UInt32 => conv!(u32, 4),
        DType::UInt64 => conv!(u64, 8),
        DType::Float8E5M2 | DType::Float8E4M3FN | DType::String => return None,
    })
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
}
