//! [`StoreError`], the one error type of every [`SessionStore`](crate::SessionStore).

use crate::codec;

/// `e` and its chain of sources, joined by `": "`: what the crate logs for a failure, so the
/// root cause (e.g. the database's own message) is in one line.
#[must_use]
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(s) = next {
        let t = s.to_string();
        if !out.ends_with(&t) {
            out.push_str(": ");
            out.push_str(&t);
        }
        next = s.source();
    }
    out
}

/// A boxed backend error, kept whole as the `source` (never stringified).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a store operation failed. Nothing was written when one of these is returned.
#[non_exhaustive]
#[derive(thiserror::Error, Debug)]
pub enum StoreError {
    /// `create` kept drawing ids that already exist; the RNG is broken or the store is under
    /// attack. Retrying is pointless.
    #[error("session id already exists (retry budget exhausted)")]
    Conflict,
    /// `compare_and_save` found another version stored: somebody else wrote since this record
    /// was loaded (or the session expired or was deleted: `found: None`). Load again, re-apply
    /// the change, and retry.
    #[error("version mismatch: record was loaded at version {expected}, store has {found:?}")]
    VersionMismatch {
        /// The record's version, i.e. the version it was loaded at.
        expected: u64,
        /// The stored version, `None` if the session is gone.
        found: Option<u64>,
    },
    /// The store holds its configured maximum of sessions. Sweep, raise the bound, or shed load.
    #[error("session store is full ({max_sessions} sessions)")]
    Full {
        /// The configured bound.
        max_sessions: usize,
    },
    /// The encoded session is larger than the backend allows (for `cookie`: the 4,096-byte
    /// cookie). Store less in the session.
    #[error("session is {size} bytes encoded, over the limit of {limit}")]
    TooLarge {
        /// Bytes needed.
        size: usize,
        /// Bytes allowed.
        limit: usize,
    },
    /// The record could not be encoded.
    #[error("session record encoding failed")]
    Encode(#[source] codec::Error),
    /// The OS CSPRNG failed while drawing a session id or a nonce; retry later.
    #[error("the OS random number generator failed; retry later")]
    Random(#[source] getrandom::Error),
    /// The backend is unreachable; retry or fail over.
    #[error("session backend unavailable; retry or fail over")]
    Unavailable(#[source] BoxError),
    /// Any other backend failure.
    #[error("session backend error")]
    Backend(#[source] BoxError),
}

/// What a [`DataError`] was doing.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataOp {
    /// Reading a value as a Rust type (`get`).
    Read,
    /// Converting a Rust value to the stored representation (`insert`).
    Write,
}

/// A session value could not be read as the requested type, or a value could not be stored.
///
/// Returned by [`Record::get`](crate::Record::get) / [`Record::insert`](crate::Record::insert)
/// and the HTTP `Session`'s methods of the same names. The underlying serializer's error is
/// kept as the [`source`](std::error::Error::source), without making its type part of this
/// crate's API.
#[derive(thiserror::Error, Debug)]
#[error("{}", self.describe())]
pub struct DataError {
    key: String,
    op: DataOp,
    ty: &'static str,
    #[source]
    source: serde_json::Error,
}

impl DataError {
    pub(crate) fn read<T: ?Sized>(key: &str, source: serde_json::Error) -> Self {
        Self {
            key: key.to_owned(),
            op: DataOp::Read,
            ty: std::any::type_name::<T>(),
            source,
        }
    }

    pub(crate) fn write<T: ?Sized>(key: &str, source: serde_json::Error) -> Self {
        Self {
            key: key.to_owned(),
            op: DataOp::Write,
            ty: std::any::type_name::<T>(),
            source,
        }
    }

    /// The session key that was read or written.
    #[must_use]
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Whether reading or writing failed.
    #[must_use]
    pub fn op(&self) -> DataOp {
        self.op
    }

    /// The Rust type that was asked for (read) or given (write), as `std::any::type_name`
    /// spells it.
    #[must_use]
    pub fn type_name(&self) -> &'static str {
        self.ty
    }

    fn describe(&self) -> String {
        match self.op {
            DataOp::Read => format!(
                "session value {:?} does not deserialize as {} ({}); the stored value has \
                 another shape: read it as the type that wrote it, or remove the key",
                self.key, self.ty, self.source
            ),
            DataOp::Write => format!(
                "value of type {} for session key {:?} cannot be stored ({}); session values \
                 must serialize to JSON (maps need string keys)",
                self.ty, self.key, self.source
            ),
        }
    }
}
