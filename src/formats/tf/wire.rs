//! The protocol buffer wire format, read in place (no copies, no allocation).
//!
//! ```text
//! message := field*
//! field   := tag:varint value          tag = field_number << 3 | wire_type
//! value   := varint                    wire type 0 (int32, int64, uint*, bool, enum)
//!          | 8 bytes little-endian     wire type 1 (fixed64, double)
//!          | len:varint len bytes      wire type 2 (strings, bytes, messages, packed repeated)
//!          | 4 bytes little-endian     wire type 5 (fixed32, float)
//! ```
//!
//! Wire types 3 and 4 (groups) are deprecated and used by no TensorFlow message; they are
//! errors here. Two protobuf rules matter to readers built on this module: a message field
//! that occurs several times is the *merge* of its occurrences (as if their bytes were
//! concatenated), and a repeated scalar field may be written packed (one length-delimited
//! run) or one value per tag, in any mix.
//!
//! Source: <https://protobuf.dev/programming-guides/encoding/>.

use super::coding::{get_varint64, VarintError};

/// One field's value, borrowing from the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    Varint(u64),
    Fixed64([u8; 8]),
    Len(&'a [u8]),
    Fixed32([u8; 4]),
}

impl Value<'_> {
    /// The wire type's name, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Varint(_) => "a varint",
            Value::Fixed64(_) => "a fixed64",
            Value::Len(_) => "a length-delimited field",
            Value::Fixed32(_) => "a fixed32",
        }
    }
}

/// One field: its number and value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field<'a> {
    pub number: u32,
    pub value: Value<'a>,
}

/// The largest field number protobuf allows.
const MAX_FIELD: u64 = (1 << 29) - 1;

/// Iterates over the fields of one serialized message.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Where the value of the field last read starts.
    value_at: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader {
            buf,
            pos: 0,
            value_at: 0,
        }
    }

    /// The bytes of the value [`Reader::next_field`] last read, in place in the buffer:
    /// a fixed32's 4 or a fixed64's 8 bytes, a varint's encoding, a length-delimited
    /// field's length and contents. For readers that keep runs of values without copying.
    pub fn value_bytes(&self) -> &'a [u8] {
        &self.buf[self.value_at..self.pos]
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    fn varint(&mut self, what: &str) -> Result<u64, String> {
        let (v, n) = get_varint64(&self.buf[self.pos..]).map_err(|e| {
            let why = match e {
                VarintError::Truncated => "the message ends inside it",
                VarintError::Overflow => "more than 10 bytes",
            };
            format!("byte {}: bad {what} varint ({why})", self.pos)
        })?;
        self.pos += n;
        Ok(v)
    }

    fn take(&mut self, n: u64, what: &str) -> Result<&'a [u8], String> {
        let left = self.buf.len() - self.pos;
        let n = usize::try_from(n)
            .ok()
            .filter(|&n| n <= left)
            .ok_or_else(|| {
                format!(
                    "byte {}: {what} of {n} bytes runs past the end of the message ({left} bytes left; truncated?)",
                    self.pos
                )
            })?;
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// The next field, `None` at the end of the message.
    pub fn next_field(&mut self) -> Result<Option<Field<'a>>, String> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let at = self.pos;
        let tag = self.varint("tag")?;
        let number = tag >> 3;
        if number == 0 || number > MAX_FIELD {
            return Err(format!("byte {at}: field number {number} is not valid"));
        }
        let number = number as u32;
        self.value_at = self.pos;
        let value = match tag & 7 {
            0 => Value::Varint(self.varint("value")?),
            1 => Value::Fixed64(self.take(8, "a fixed64")?.try_into().expect("8 bytes")),
            2 => {
                let len = self.varint("length")?;
                Value::Len(self.take(len, &format!("field {number}"))?)
            }
            5 => Value::Fixed32(self.take(4, "a fixed32")?.try_into().expect("4 bytes")),
            3 | 4 => {
                return Err(format!(
                    "byte {at}: field {number} is a group (wire type {}), which no TensorFlow message uses",
                    tag & 7
                ))
            }
            w => return Err(format!("byte {at}: field {number} has invalid wire type {w}")),
        };
        Ok(Some(Field { number, value }))
    }
}

/// Where `inner` (a sub-slice of `outer`) starts within `outer`.
pub fn offset_in(outer: &[u8], inner: &[u8]) -> usize {
    let o = outer.as_ptr() as usize;
    let i = inner.as_ptr() as usize;
    debug_assert!(i >= o && i + inner.len() <= o + outer.len());
    i.wrapping_sub(o)
}

/// The values of a packed run of varints, each checked.
pub fn packed_varints(run: &[u8]) -> impl Iterator<Item = Result<u64, String>> + '_ {
    let mut pos = 0;
    std::iter::from_fn(move || {
        if pos >= run.len() {
            return None;
        }
        Some(match get_varint64(&run[pos..]) {
            Ok((v, n)) => {
                pos += n;
                Ok(v)
            }
            Err(e) => {
                let at = pos;
                pos = run.len();
                Err(format!("packed varint at byte {at} of its run: {e}"))
            }
        })
    })
}

/// Number of varints in a packed run, checking that each is well formed.
pub fn count_packed_varints(run: &[u8]) -> Result<u64, String> {
    let mut n = 0u64;
    let mut len = 0usize;
    for &b in run {
        len += 1;
        if len > 10 {
            return Err("a packed varint of more than 10 bytes".into());
        }
        if b & 0x80 == 0 {
            n += 1;
            len = 0;
        }
    }
    if len != 0 {
        return Err("a packed run of varints ends inside a varint".into());
    }
    Ok(n)
}

/// Check that `buf` is a well-formed message (every field's framing), without looking
/// into nested messages.
#[cfg(test)]
pub fn well_formed(buf: &[u8]) -> Result<(), String> {
    let mut r = Reader::new(buf);
    while r.next_field()?.is_some() {}
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_wire_type() {
        // field 1 varint 150, field 2 "hi", field 3 fixed32, field 4 fixed64
        let mut b = vec![
            0x08, 0x96, 0x01, 0x12, 2, b'h', b'i', 0x1d, 1, 2, 3, 4, 0x21,
        ];
        b.extend_from_slice(&[9; 8]);
        let mut r = Reader::new(&b);
        assert_eq!(r.next_field().unwrap().unwrap().value, Value::Varint(150));
        assert_eq!(r.next_field().unwrap().unwrap().value, Value::Len(b"hi"));
        assert_eq!(
            r.next_field().unwrap().unwrap().value,
            Value::Fixed32([1, 2, 3, 4])
        );
        assert_eq!(r.value_bytes(), &[1, 2, 3, 4]);
        assert_eq!(
            r.next_field().unwrap().unwrap().value,
            Value::Fixed64([9; 8])
        );
        assert_eq!(r.next_field().unwrap(), None);
    }

    #[test]
    fn bad_framing_is_an_error() {
        for bad in [
            &[0x12, 5, b'a'][..],
            &[0x08][..],
            &[0x0b][..],
            &[0x07][..],
            &[0x00, 0x00][..],
            &[0x1d, 1, 2][..],
            &[
                0x12, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
            ][..],
        ] {
            assert!(well_formed(bad).is_err(), "{bad:?}");
        }
        assert_eq!(count_packed_varints(&[1, 0x80, 1, 2]).unwrap(), 3);
        assert!(count_packed_varints(&[1, 0x80]).is_err());
        let v: Vec<_> = packed_varints(&[1, 0x80, 1]).collect();
        assert_eq!(v, vec![Ok(1), Ok(128)]);
    }
}
