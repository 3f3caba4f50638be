//! Netlink attributes (`struct nlattr`): a 4-byte header `{len: u16, type: u16}`, the
//! payload, and padding to a multiple of 4.

use super::{Error, align4};

/// Offset range of `nla_len` in the attribute header.
const LEN: core::ops::Range<usize> = 0..2;
/// Offset range of `nla_type`.
const KIND: core::ops::Range<usize> = 2..4;
/// Size of the attribute header.
pub(crate) const NLA_HEADER_LEN: usize = 4;
/// `NLA_TYPE_MASK`: the type without the `NESTED` / `NET_BYTEORDER` flag bits.
pub(crate) const NLA_TYPE_MASK: u16 = 0x3fff;

/// An attribute this crate does not interpret: its full type (flag bits included) and payload.
///
/// Attributes added by kernels newer than this crate arrive as `Other(RawNla)` and are emitted
/// back unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RawNla {
    /// `nla_type`, including the `NLA_F_NESTED` / `NLA_F_NET_BYTEORDER` bits.
    pub kind: u16,
    /// The payload, without padding.
    pub value: Vec<u8>,
}

/// Iterator over the attributes in a buffer, yielding `(type, payload)`.
///
/// Stops after the first error (a truncated header or a length that overruns the buffer).
#[derive(Debug, Clone)]
pub struct NlaIter<'a> {
    buf: &'a [u8],
    failed: bool,
}

impl<'a> NlaIter<'a> {
    /// Iterate over the attributes packed in `buf`.
    #[must_use]
    pub const fn new(buf: &'a [u8]) -> Self {
        Self { buf, failed: false }
    }
}

impl<'a> Iterator for NlaIter<'a> {
    type Item = Result<(u16, &'a [u8]), Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.buf.is_empty() || self.failed {
            return None;
        }
        let item = split_nla(self.buf);
        match item {
            Ok((kind, value, rest)) => {
                self.buf = rest;
                Some(Ok((kind, value)))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

fn split_nla(buf: &[u8]) -> Result<(u16, &[u8], &[u8]), Error> {
    let (Some(len), Some(kind)) = (buf.get(LEN), buf.get(KIND)) else {
        return Err(Error::Truncated {
            what: "attribute header",
            needed: NLA_HEADER_LEN,
            got: buf.len(),
        });
    };
    let len = usize::from(u16::from_ne_bytes([
        len.first().copied().unwrap_or(0),
        len.get(1).copied().unwrap_or(0),
    ]));
    let kind = u16::from_ne_bytes([
        kind.first().copied().unwrap_or(0),
        kind.get(1).copied().unwrap_or(0),
    ]);
    if len < NLA_HEADER_LEN || len > buf.len() {
        return Err(Error::BadLength {
            what: "attribute",
            len,
            available: buf.len(),
        });
    }
    let value = buf.get(NLA_HEADER_LEN..len).unwrap_or_default();
    // The last attribute may lack its padding.
    let next = align4(len).min(buf.len());
    let rest = buf.get(next..).unwrap_or_default();
    Ok((kind, value, rest))
}

/// Parse a whole attribute buffer with `f`, which maps `(type without flags, full type,
/// payload)` to a typed attribute.
pub(crate) fn parse_all<T>(
    buf: &[u8],
    mut f: impl FnMut(u16, u16, &[u8]) -> Result<T, Error>,
) -> Result<Vec<T>, Error> {
    let mut out = Vec::new();
    for item in NlaIter::new(buf) {
        let (kind, value) = item?;
        out.push(f(kind & NLA_TYPE_MASK, kind, value)?);
    }
    Ok(out)
}

/// Appends attributes to a `Vec<u8>`. Internal: lengths are checked at the end by the callers
/// through [`Writer::finish_nest`] and the message encoders.
#[derive(Debug, Default)]
pub(crate) struct Writer {
    pub(crate) buf: Vec<u8>,
    pub(crate) overflow: bool,
}

impl Writer {
    pub(crate) fn put(&mut self, kind: u16, value: &[u8]) {
        let len = NLA_HEADER_LEN + value.len();
        let len16 = u16::try_from(len).unwrap_or_else(|_| {
            self.overflow = true;
            0
        });
        self.buf.extend_from_slice(&len16.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(value);
        self.pad();
    }
    pub(crate) fn pad(&mut self) {
        let target = align4(self.buf.len());
        self.buf.resize(target, 0);
    }
    pub(crate) fn u8(&mut self, kind: u16, v: u8) {
        self.put(kind, &[v]);
    }
    pub(crate) fn u16(&mut self, kind: u16, v: u16) {
        self.put(kind, &v.to_ne_bytes());
    }
    pub(crate) fn be16(&mut self, kind: u16, v: u16) {
        self.put(kind, &v.to_be_bytes());
    }
    pub(crate) fn u32(&mut self, kind: u16, v: u32) {
        self.put(kind, &v.to_ne_bytes());
    }
    pub(crate) fn u64(&mut self, kind: u16, v: u64) {
        self.put(kind, &v.to_ne_bytes());
    }
    pub(crate) fn string(&mut self, kind: u16, s: &str) {
        let mut v = Vec::with_capacity(s.len() + 1);
        v.extend_from_slice(s.as_bytes());
        v.push(0);
        self.put(kind, &v);
    }
    pub(crate) fn raw(&mut self, nla: &RawNla) {
        self.put(nla.kind, &nla.value);
    }
    /// Start a nested attribute; returns the offset to pass to [`Writer::finish_nest`].
    ///
    /// Like the kernel's IPVS code (seen in real replies: no `NLA_F_NESTED` bit) and libnl,
    /// the type carries no flag, so re-emitted kernel replies are byte-identical.
    pub(crate) fn start_nest(&mut self, kind: u16) -> usize {
        let at = self.buf.len();
        self.buf.extend_from_slice(&[0, 0]);
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        at
    }
    pub(crate) fn finish_nest(&mut self, at: usize) {
        let len = self.buf.len().saturating_sub(at);
        let len16 = u16::try_from(len).unwrap_or_else(|_| {
            self.overflow = true;
            0
        });
        if let Some(slot) = self.buf.get_mut(at..at + 2) {
            slot.copy_from_slice(&len16.to_ne_bytes());
        }
    }
}
