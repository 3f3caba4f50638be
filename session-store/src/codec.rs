//! The byte encoding of a [`Record`]: a format byte, then the body.
//!
//! Pure: no clock, no RNG. Server-side stores that keep bytes (Redis, memcached, SQL) and the
//! cookie store all use it, so one fuzz target covers every decoder.
//!
//! # Formats
//!
//! * **`0x02`, binary ([`FORMAT_V2`]), written by [`encode`].** All integers are LEB128
//!   varints (little-endian groups of 7 bits; the shortest form only):
//!
//!   | field | encoding |
//!   |---|---|
//!   | id | 16 bytes |
//!   | created, expires | varint seconds since the epoch |
//!   | version | varint |
//!   | data | varint entry count, then per entry: key (varint length + UTF-8), value |
//!
//!   A value is a tag byte and its body: `0x00` null, `0x01` false, `0x02` true, `0x03`
//!   non-negative integer (varint), `0x04` negative integer `n` (varint of `-(n + 1)`), `0x05`
//!   float (8 bytes, IEEE 754 little-endian, finite), `0x06` string (varint length + UTF-8),
//!   `0x07` array (varint count + values), `0x08` object (varint count + key/value pairs, keys
//!   as strings without a tag). Nesting is limited to [`MAX_DEPTH`] levels, the same as
//!   `serde_json`'s reader, and [`encode`] refuses deeper data rather than write what it could
//!   not read back. Decoding refuses duplicate keys, overlong varints, trailing bytes, non-UTF-8
//!   strings and non-finite floats, and never allocates more than the input's length justifies.
//!   Floats keep every bit (no decimal round trip), and integers stay integers.
//! * **`0x01`, JSON ([`FORMAT_V1`]), still decoded, written only by [`encode_json`].** Compact
//!   JSON `{"i","c","e","v","d"}`. Records stored by earlier versions of this crate (and cookies
//!   sealed by them) keep loading.
//!
//! Readers of format 1 only (this crate before format 2) report [`Error::UnknownFormat`] on
//! format-2 bytes: in a mixed fleet sharing a server-side store, upgrade every reader first.

#![warn(clippy::indexing_slicing)]

use serde_json::{Map, Number, Value};

use crate::clock::UnixTime;
use crate::id::{ID_LEN, SessionId};
use crate::record::Record;

/// The JSON encoding: `0x01` followed by the JSON object `{"i","c","e","v","d"}`. Decoded;
/// written only by [`encode_json`].
pub const FORMAT_V1: u8 = 1;
/// The binary encoding described in the [module docs](self); what [`encode`] writes.
pub const FORMAT_V2: u8 = 2;
/// The deepest nesting of arrays and objects inside one data value that [`encode`] writes and
/// [`decode`] accepts (the data map itself is not counted).
pub const MAX_DEPTH: usize = 127;

const TAG_NULL: u8 = 0;
const TAG_FALSE: u8 = 1;
const TAG_TRUE: u8 = 2;
const TAG_UINT: u8 = 3;
const TAG_NINT: u8 = 4;
const TAG_FLOAT: u8 = 5;
const TAG_STRING: u8 = 6;
const TAG_ARRAY: u8 = 7;
const TAG_OBJECT: u8 = 8;

/// Why a record could not be encoded or decoded.
#[non_exhaustive]
#[derive(thiserror::Error, Debug)]
pub enum Error {
    /// Empty input.
    #[error("encoded record is empty")]
    Empty,
    /// The format byte names an encoding this version of the crate does not know.
    #[error("unknown record format {0:#04x}")]
    UnknownFormat(u8),
    /// The JSON body (format 1) is malformed, has unknown fields, or a value does not
    /// serialize.
    #[error("record JSON is invalid")]
    Json(#[source] serde_json::Error),
    /// The binary body (format 2) is malformed.
    #[error("binary record is invalid at byte {offset}: {reason}")]
    Invalid {
        /// Offset into the encoded record (format byte included) where decoding stopped.
        offset: usize,
        /// What was wrong there.
        reason: &'static str,
    },
    /// The data nests arrays and objects deeper than [`MAX_DEPTH`]; nothing was encoded.
    #[error("session data nests deeper than {limit} levels")]
    TooDeep {
        /// [`MAX_DEPTH`].
        limit: usize,
    },
    /// A number is neither a 64-bit integer nor a finite `f64` (only possible with
    /// `serde_json`'s `arbitrary_precision`); nothing was encoded.
    #[error("session data holds a number that is not a 64-bit integer or a finite f64")]
    Number,
}

/// Encodes `rec` in the binary format ([`FORMAT_V2`]) into `out` (appending exactly
/// [`encoded_len`] bytes).
///
/// # Errors
/// [`Error::TooDeep`] or [`Error::Number`]; `out` is then unchanged.
pub fn encode_into(rec: &Record, out: &mut Vec<u8>) -> Result<(), Error> {
    let len = encoded_len(rec)?;
    out.reserve(len);
    put_record(out, rec);
    Ok(())
}

/// Appends the encoding of `rec`, which [`encoded_len`] has already accepted (it checks the
/// depth and numbers that this writes without checking again).
pub(crate) fn put_record(out: &mut Vec<u8>, rec: &Record) {
    out.push(FORMAT_V2);
    out.extend_from_slice(rec.id().as_bytes());
    put_varint(out, rec.created().as_secs());
    put_varint(out, rec.expires().as_secs());
    put_varint(out, rec.version());
    put_map(out, rec.data());
}

/// Encodes `rec` in the binary format ([`FORMAT_V2`]).
///
/// # Errors
/// As [`encode_into`].
pub fn encode(rec: &Record) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    encode_into(rec, &mut out)?;
    Ok(out)
}

/// The number of bytes [`encode`] produces for `rec`, without encoding it.
///
/// # Errors
/// As [`encode_into`].
pub fn encoded_len(rec: &Record) -> Result<usize, Error> {
    let head = 1
        + ID_LEN
        + varint_len(rec.created().as_secs())
        + varint_len(rec.expires().as_secs())
        + varint_len(rec.version());
    Ok(head + map_len(rec.data(), 0)?)
}

/// Encodes `rec` in the JSON format ([`FORMAT_V1`]), as versions before format 2 wrote it:
/// for readers that know only format 1, and for tests of the upgrade path.
///
/// # Errors
/// [`Error::Json`] if a value cannot be serialized (not possible for a `serde_json::Map`, but
/// kept typed rather than assumed).
pub fn encode_json(rec: &Record) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(128);
    out.push(FORMAT_V1);
    serde_json::to_writer(&mut out, rec).map_err(Error::Json)?;
    Ok(out)
}

/// Decodes bytes written by [`encode`] or [`encode_json`]. Never panics on any input.
///
/// # Errors
/// [`Error::Empty`], [`Error::UnknownFormat`], or [`Error::Invalid`] / [`Error::Json`] for
/// anything that is not a well-formed record of its format (including trailing bytes and, for
/// JSON, unknown fields).
pub fn decode(bytes: &[u8]) -> Result<Record, Error> {
    let (&format, body) = bytes.split_first().ok_or(Error::Empty)?;
    match format {
        FORMAT_V2 => decode_binary(body),
        FORMAT_V1 => serde_json::from_slice(body).map_err(Error::Json),
        other => Err(Error::UnknownFormat(other)),
    }
}

// ---------------------------------------------------------------------------------------------
// Encoding.

fn varint_len(v: u64) -> usize {
    // 1 byte per started group of 7 significant bits; 0 takes one byte.
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        // Truncation to the low 7 bits (plus the continuation bit) is the point.
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn str_len(s: &str) -> usize {
    varint_len(s.len() as u64) + s.len()
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// Length of a map's body (count + entries). `depth` is the nesting level of the map itself.
fn map_len(m: &Map<String, Value>, depth: usize) -> Result<usize, Error> {
    let mut n = varint_len(m.len() as u64);
    for (k, v) in m {
        n += str_len(k) + value_len(v, depth)?;
    }
    Ok(n)
}

fn put_map(out: &mut Vec<u8>, m: &Map<String, Value>) {
    put_varint(out, m.len() as u64);
    for (k, v) in m {
        put_str(out, k);
        put_value(out, v);
    }
}

enum Num {
    Uint(u64),
    Nint(u64),
    Float(f64),
}

fn classify(n: &Number) -> Result<Num, Error> {
    if let Some(u) = n.as_u64() {
        Ok(Num::Uint(u))
    } else if let Some(i) = n.as_i64() {
        // `as_u64` failed, so `i < 0` and `!i == -(i + 1)` is in 0..=i64::MAX.
        Ok(Num::Nint(!i as u64))
    } else if let Some(f) = n.as_f64().filter(|f| f.is_finite()) {
        Ok(Num::Float(f))
    } else {
        Err(Error::Number)
    }
}

/// Encoded length of `v` (tag included), found inside a container at nesting level `depth`.
fn value_len(v: &Value, depth: usize) -> Result<usize, Error> {
    Ok(1 + match v {
        Value::Null | Value::Bool(_) => 0,
        Value::Number(n) => match classify(n)? {
            Num::Uint(u) | Num::Nint(u) => varint_len(u),
            Num::Float(_) => 8,
        },
        Value::String(s) => str_len(s),
        Value::Array(a) => {
            let depth = nested(depth)?;
            let mut n = varint_len(a.len() as u64);
            for x in a {
                n += value_len(x, depth)?;
            }
            n
        }
        Value::Object(m) => map_len(m, nested(depth)?)?,
    })
}

fn nested(depth: usize) -> Result<usize, Error> {
    if depth >= MAX_DEPTH {
        Err(Error::TooDeep { limit: MAX_DEPTH })
    } else {
        Ok(depth + 1)
    }
}

/// Writes `v`; [`value_len`] has already checked depth and numbers.
fn put_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => out.push(TAG_NULL),
        Value::Bool(false) => out.push(TAG_FALSE),
        Value::Bool(true) => out.push(TAG_TRUE),
        Value::Number(n) => match classify(n) {
            Ok(Num::Uint(u)) => {
                out.push(TAG_UINT);
                put_varint(out, u);
            }
            Ok(Num::Nint(u)) => {
                out.push(TAG_NINT);
                put_varint(out, u);
            }
            Ok(Num::Float(f)) => {
                out.push(TAG_FLOAT);
                out.extend_from_slice(&f.to_le_bytes());
            }
            // Unreachable after `value_len`; written as null rather than panicking.
            Err(_) => out.push(TAG_NULL),
        },
        Value::String(s) => {
            out.push(TAG_STRING);
            put_str(out, s);
        }
        Value::Array(a) => {
            out.push(TAG_ARRAY);
            put_varint(out, a.len() as u64);
            for x in a {
                put_value(out, x);
            }
        }
        Value::Object(m) => {
            out.push(TAG_OBJECT);
            put_map(out, m);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Decoding.

fn decode_binary(body: &[u8]) -> Result<Record, Error> {
    let mut r = Reader { buf: body, pos: 0 };
    let id = SessionId::from_bytes(r.array::<ID_LEN>()?);
    let created = UnixTime::from_secs(r.varint()?);
    let expires = UnixTime::from_secs(r.varint()?);
    let version = r.varint()?;
    let data = r.map(0)?;
    if r.pos != body.len() {
        return Err(r.err("trailing bytes"));
    }
    Ok(Record::from_parts(id, created, expires, version, data))
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn err(&self, reason: &'static str) -> Error {
        // +1: offsets count the format byte.
        Error::Invalid {
            offset: self.pos + 1,
            reason,
        }
    }

    fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    fn byte(&mut self) -> Result<u8, Error> {
        let b = *self
            .buf
            .get(self.pos)
            .ok_or_else(|| self.err("unexpected end"))?;
        self.pos += 1;
        Ok(b)
    }

    fn bytes(&mut self, n: usize) -> Result<&'a [u8], Error> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or_else(|| self.err("length overflows"))?;
        let s = self
            .buf
            .get(self.pos..end)
            .ok_or_else(|| self.err("unexpected end"))?;
        self.pos = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let s = self.bytes(N)?;
        <[u8; N]>::try_from(s).map_err(|_| self.err("unexpected end"))
    }

    /// A canonical (shortest) LEB128 varint of at most 64 bits.
    fn varint(&mut self) -> Result<u64, Error> {
        let mut v = 0_u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            let group = u64::from(b & 0x7f);
            if shift == 63 && group > 1 {
                return Err(self.err("varint overflows 64 bits"));
            }
            v |= group << shift;
            if b & 0x80 == 0 {
                if b == 0 && shift > 0 {
                    return Err(self.err("overlong varint"));
                }
                return Ok(v);
            }
        }
        Err(self.err("varint overflows 64 bits"))
    }

    /// A count of items that each take at least `min_item` bytes: bounded by what is left, so
    /// a forged count cannot make the decoder allocate or loop beyond the input.
    fn count(&mut self, min_item: usize) -> Result<usize, Error> {
        let n = self.varint()?;
        match usize::try_from(n) {
            Ok(n) if n.saturating_mul(min_item) <= self.remaining() => Ok(n),
            _ => Err(self.err("count exceeds the input")),
        }
    }

    fn string(&mut self) -> Result<String, Error> {
        let n = self.count(1)?;
        let start = self.pos;
        let s = self.bytes(n)?;
        // `simdutf8` validates exactly as `std::str::from_utf8` does, several times faster on
        // long strings (the usual large session value).
        match simdutf8::basic::from_utf8(s) {
            Ok(s) => Ok(s.to_owned()),
            Err(_) => {
                self.pos = start;
                Err(self.err("string is not UTF-8"))
            }
        }
    }

    /// A map body (count + entries); `depth` is the map's own nesting level.
    fn map(&mut self, depth: usize) -> Result<Map<String, Value>, Error> {
        // An entry is at least a 1-byte key length and a 1-byte value.
        let n = self.count(2)?;
        let mut m = Map::new();
        for _ in 0..n {
            let at = self.pos;
            let k = self.string()?;
            let v = self.value(depth)?;
            if m.insert(k, v).is_some() {
                self.pos = at;
                return Err(self.err("duplicate key"));
            }
        }
        Ok(m)
    }

    /// A tagged value inside a container at nesting level `depth`.
    fn value(&mut self, depth: usize) -> Result<Value, Error> {
        let tag = self.byte()?;
        Ok(match tag {
            TAG_NULL => Value::Null,
            TAG_FALSE => Value::Bool(false),
            TAG_TRUE => Value::Bool(true),
            TAG_UINT => Value::from(self.varint()?),
            TAG_NINT => {
                let m = self.varint()?;
                let m = i64::try_from(m).map_err(|_| self.err("negative integer overflows"))?;
                Value::from(!m)
            }
            TAG_FLOAT => {
                let f = f64::from_le_bytes(self.array::<8>()?);
                Value::Number(Number::from_f64(f).ok_or_else(|| self.err("float not finite"))?)
            }
            TAG_STRING => Value::String(self.string()?),
            TAG_ARRAY => {
                let depth = self.deeper(depth)?;
                let n = self.count(1)?;
                let mut a = Vec::with_capacity(n);
                for _ in 0..n {
                    a.push(self.value(depth)?);
                }
                Value::Array(a)
            }
            TAG_OBJECT => {
                let depth = self.deeper(depth)?;
                Value::Object(self.map(depth)?)
            }
            _ => {
                self.pos -= 1;
                return Err(self.err("unknown value tag"));
            }
        })
    }

    fn deeper(&self, depth: usize) -> Result<usize, Error> {
        if depth >= MAX_DEPTH {
            Err(self.err("nesting deeper than MAX_DEPTH"))
        } else {
            Ok(depth + 1)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

    use std::time::Duration;

    use super::*;

    fn rec() -> Record {
        let mut r = Record::new(
            SessionId::from_bytes([3; 16]),
            UnixTime::from_secs(1_700_000_000),
            Duration::from_secs(3600),
        );
        r.insert("user", "alice").unwrap();
        r.insert("n", &-5_i64).unwrap();
        r.insert("f", &1.5_f64).unwrap();
        r.insert("xs", &[1_u64, 2, 3]).unwrap();
        r.insert(
            "nested",
            &serde_json::json!({"a": [null, true, false, {"b": "c"}]}),
        )
        .unwrap();
        r
    }

    #[test]
    fn round_trip_and_len() {
        let r = rec();
        let b = encode(&r).unwrap();
        assert_eq!(b[0], FORMAT_V2);
        assert_eq!(b.len(), encoded_len(&r).unwrap());
        assert_eq!(decode(&b).unwrap(), r);
        // Format 1 still decodes.
        assert_eq!(decode(&encode_json(&r).unwrap()).unwrap(), r);
    }

    #[test]
    fn frozen_layout() {
        let mut r = Record::new(
            SessionId::from_bytes([1; 16]),
            UnixTime::from_secs(300),
            Duration::from_secs(1),
        );
        r.insert("k", &-1_i64).unwrap();
        let b = encode(&r).unwrap();
        let mut want = vec![2];
        want.extend([1; 16]);
        want.extend([0xac, 0x02, 0xad, 0x02, 0x00]); // 300, 301, version 0
        want.extend([1, 1, b'k', TAG_NINT, 0]); // one entry "k" = -1
        assert_eq!(b, want);
    }

    #[test]
    fn varints_are_canonical() {
        for v in [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            assert_eq!(b.len(), varint_len(v));
            let mut r = Reader { buf: &b, pos: 0 };
            assert_eq!(r.varint().unwrap(), v);
        }
        // Overlong zero, overlong one, 11 bytes, and a 10th byte above 1.
        for bad in [
            &[0x80, 0x00][..],
            &[0x81, 0x00],
            &[0xff; 11],
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02],
        ] {
            assert!(Reader { buf: bad, pos: 0 }.varint().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn refuses_malformed() {
        let b = encode(&rec()).unwrap();
        let mut trailing = b.clone();
        trailing.push(0);
        assert!(matches!(decode(&trailing), Err(Error::Invalid { .. })));
        for len in 0..b.len() {
            assert!(decode(&b[..len]).is_err(), "truncation to {len} decoded");
        }
        // Duplicate key: two entries "a".
        let mut dup = vec![2];
        dup.extend([0; 16]);
        dup.extend([0, 0, 0, 2, 1, b'a', TAG_NULL, 1, b'a', TAG_TRUE]);
        assert!(matches!(
            decode(&dup),
            Err(Error::Invalid {
                reason: "duplicate key",
                ..
            })
        ));
        // A huge count with no bytes behind it.
        let mut huge = vec![2];
        huge.extend([0; 16]);
        huge.extend([0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f]);
        assert!(decode(&huge).is_err());
        // NaN.
        let mut nan = vec![2];
        nan.extend([0; 16]);
        nan.extend([0, 0, 0, 1, 1, b'f', TAG_FLOAT]);
        nan.extend(f64::NAN.to_le_bytes());
        assert!(decode(&nan).is_err());
        assert!(matches!(decode(&[9]), Err(Error::UnknownFormat(9))));
        assert!(matches!(decode(&[]), Err(Error::Empty)));
    }

    #[test]
    fn depth_limit_is_symmetric() {
        fn nest(levels: usize) -> Value {
            let mut v = Value::Null;
            for _ in 0..levels {
                v = Value::Array(vec![v]);
            }
            v
        }
        let mut r = rec();
        r.data_mut().insert("deep".into(), nest(MAX_DEPTH));
        let b = encode(&r).unwrap();
        assert_eq!(decode(&b).unwrap(), r);
        r.data_mut().insert("deep".into(), nest(MAX_DEPTH + 1));
        assert!(matches!(encode(&r), Err(Error::TooDeep { .. })));
        // A hand-made body one level too deep is refused, without recursing further.
        let mut deep = vec![2];
        deep.extend([0; 16]);
        deep.extend([0, 0, 0, 1, 1, b'd']);
        deep.extend(std::iter::repeat_n([TAG_ARRAY, 1], MAX_DEPTH + 1).flatten());
        deep.push(TAG_NULL);
        assert!(decode(&deep).is_err());
        deep.truncate(deep.len() - 3);
        deep.push(TAG_NULL);
        assert!(decode(&deep).is_ok());
    }
}
