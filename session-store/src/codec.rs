//! The one byte encoding of a [`Record`]: a format byte, then compact JSON.
//!
//! Pure: no clock, no RNG. Server-side stores that keep bytes (Redis, memcached, SQL) and the
//! cookie store all use it, so one fuzz target covers every decoder.

#![warn(clippy::indexing_slicing)]

use crate::record::Record;

/// The current encoding: `0x01` followed by the JSON object `{"i","c","e","v","d"}`.
pub const FORMAT_V1: u8 = 1;

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
    /// The JSON body is malformed, has unknown fields, or a value does not serialize.
    #[error("record JSON is invalid")]
    Json(#[source] serde_json::Error),
}

/// Encodes `rec` into `out` (appending).
///
/// # Errors
/// [`Error::Json`] if a value in the data map cannot be serialized (not possible for a
/// `serde_json::Map`, but kept typed rather than assumed).
pub fn encode_into(rec: &Record, out: &mut Vec<u8>) -> Result<(), Error> {
    out.push(FORMAT_V1);
    serde_json::to_writer(&mut *out, rec).map_err(Error::Json)
}

/// Encodes `rec`.
///
/// # Errors
/// As [`encode_into`].
pub fn encode(rec: &Record) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(128);
    encode_into(rec, &mut out)?;
    Ok(out)
}

/// Decodes bytes written by [`encode`]. Never panics on any input.
///
/// # Errors
/// [`Error::Empty`], [`Error::UnknownFormat`], or [`Error::Json`] for anything that is not a
/// well-formed record (including trailing bytes and unknown fields).
pub fn decode(bytes: &[u8]) -> Result<Record, Error> {
    let (&format, body) = bytes.split_first().ok_or(Error::Empty)?;
    if format != FORMAT_V1 {
        return Err(Error::UnknownFormat(format));
    }
    serde_json::from_slice(body).map_err(Error::Json)
}
