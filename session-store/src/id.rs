//! [`SessionId`]: 128 bits from the OS CSPRNG, written as 22 characters of base64url.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq as _;

/// Length in bytes of a [`SessionId`].
pub const ID_LEN: usize = 16;
/// Length in characters of the base64url (unpadded) text of a [`SessionId`].
pub const ID_TEXT_LEN: usize = 22;

/// A session identifier: 128 random bits.
///
/// The field is private: an id is made by [`SessionId::random`] (the OS CSPRNG), by
/// [`SessionId::from_bytes`] (tests, a seeded RNG) or by parsing what a client sent with
/// [`SessionId::parse`], which accepts exactly 22 characters of canonical unpadded base64url
/// and nothing else. Equality runs in constant time, so comparing a guessed id with a stored one
/// leaks nothing through timing. `Debug` prints only a short prefix, so ids don't end up in
/// logs whole.
#[derive(Clone, Copy, Eq)]
pub struct SessionId([u8; ID_LEN]);

impl SessionId {
    /// A fresh id from the operating system's CSPRNG (`getrandom`).
    ///
    /// # Errors
    /// [`IdError::Rng`] if the OS refuses randomness (for example very early at boot, or
    /// under a seccomp filter that forbids `getrandom(2)`). Retrying later may succeed.
    pub fn random() -> Result<Self, IdError> {
        let mut b = [0_u8; ID_LEN];
        getrandom::fill(&mut b).map_err(IdError::Rng)?;
        Ok(Self(b))
    }

    /// An id with the given bits. For tests and for callers that bring their own CSPRNG.
    #[must_use]
    pub const fn from_bytes(bytes: [u8; ID_LEN]) -> Self {
        Self(bytes)
    }

    /// The raw bits.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; ID_LEN] {
        &self.0
    }

    /// Parses the text a client sent (cookie value, header). Call it before using a
    /// client-supplied id for anything.
    ///
    /// # Errors
    /// [`IdError::Length`] unless the text is exactly 22 bytes; [`IdError::Encoding`] if it is
    /// not canonical unpadded base64url (other alphabets, padding, non-zero trailing bits).
    pub fn parse(text: &[u8]) -> Result<Self, IdError> {
        if text.len() != ID_TEXT_LEN {
            return Err(IdError::Length {
                expected: ID_TEXT_LEN,
                got: text.len(),
            });
        }
        let mut out = [0_u8; ID_LEN];
        match URL_SAFE_NO_PAD.decode_slice(text, &mut out) {
            Ok(ID_LEN) => Ok(Self(out)),
            Ok(_) | Err(_) => Err(IdError::Encoding),
        }
    }

    /// The 22-character text, as [`Display`](fmt::Display) writes it, in one allocation and
    /// without the formatting machinery (every save returns it as the token).
    pub(crate) fn to_text(self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    #[cfg(feature = "memory")]
    /// A shard selector; the id is uniformly random, so its first 8 bytes are too.
    pub(crate) fn shard_hash(&self) -> u64 {
        let [a, b, c, d, e, f, g, h, ..] = self.0;
        u64::from_le_bytes([a, b, c, d, e, f, g, h])
    }
}

impl PartialEq for SessionId {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl std::hash::Hash for SessionId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // One write of the 16 bytes (no length prefix: the length is fixed).
        state.write(&self.0);
    }
}

impl fmt::Display for SessionId {
    /// The 22-character base64url text, as it goes into a cookie.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0_u8; ID_TEXT_LEN];
        match URL_SAFE_NO_PAD.encode_slice(self.0, &mut buf) {
            Ok(_) => f.write_str(std::str::from_utf8(&buf).map_err(|_| fmt::Error)?),
            Err(_) => Err(fmt::Error),
        }
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.to_string();
        let prefix = text.get(..4).unwrap_or("");
        write!(f, "SessionId({prefix}…)")
    }
}

impl FromStr for SessionId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        Self::parse(s.as_bytes())
    }
}

impl serde::Serialize for SessionId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for SessionId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::parse(s.as_bytes()).map_err(serde::de::Error::custom)
    }
}

/// Why a [`SessionId`] could not be made.
#[non_exhaustive]
#[derive(thiserror::Error, Debug)]
pub enum IdError {
    /// The text is not 22 bytes long; it was not issued by this crate.
    #[error("session id must be {expected} base64url characters, got {got} bytes")]
    Length {
        /// Always [`ID_TEXT_LEN`].
        expected: usize,
        /// Length of the text that was offered.
        got: usize,
    },
    /// The text has the right length but is not canonical unpadded base64url.
    #[error("session id is not canonical unpadded base64url")]
    Encoding,
    /// The OS CSPRNG failed; retry later.
    #[error("the OS random number generator failed; retry later")]
    Rng(#[source] getrandom::Error),
}
