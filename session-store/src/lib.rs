#![doc = include_str!("../README.md")]
#![doc = include_str!("../DETAILS.md")]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

use std::fmt;
use std::future::Future;

/// Implements [`SessionStore`] (server side) for `$store<C>` by forwarding every method to the
/// store's inherent `async fn create_impl`, `save_impl`, `compare_and_save_impl`, `load_impl`,
/// `delete_impl` and `touch_impl`, with the same arguments.
#[cfg(any(
    feature = "sqlite",
    feature = "postgres",
    feature = "mysql",
    feature = "memcached",
    feature = "redis"
))]
macro_rules! forward_session_store {
    ($store:ident) => {
        impl<C: $crate::Clock> $crate::SessionStore for $store<C> {
            const SERVER_SIDE: bool = true;

            fn create(
                &self,
                rec: &mut $crate::Record,
            ) -> impl ::std::future::Future<Output = Result<$crate::Token, $crate::StoreError>> + Send
            {
                self.create_impl(rec)
            }

            fn save(
                &self,
                rec: &mut $crate::Record,
            ) -> impl ::std::future::Future<Output = Result<$crate::Token, $crate::StoreError>> + Send
            {
                self.save_impl(rec)
            }

            fn compare_and_save(
                &self,
                rec: &mut $crate::Record,
            ) -> impl ::std::future::Future<Output = Result<$crate::Token, $crate::StoreError>> + Send
            {
                self.compare_and_save_impl(rec)
            }

            fn load(
                &self,
                token: &$crate::Token,
            ) -> impl ::std::future::Future<
                Output = Result<Option<$crate::Record>, $crate::StoreError>,
            > + Send {
                self.load_impl(token)
            }

            fn delete(
                &self,
                token: &$crate::Token,
            ) -> impl ::std::future::Future<Output = Result<(), $crate::StoreError>> + Send {
                self.delete_impl(token)
            }

            fn touch(
                &self,
                token: &$crate::Token,
                expires: $crate::UnixTime,
            ) -> impl ::std::future::Future<
                Output = Result<Option<$crate::Token>, $crate::StoreError>,
            > + Send {
                self.touch_impl(token, expires)
            }
        }
    };
}

pub mod any;
pub mod clock;
pub mod codec;
#[cfg(feature = "cookie")]
pub mod cookie;
mod error;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
#[cfg(feature = "http")]
pub mod http;
mod id;
#[cfg(feature = "memcached")]
pub mod memcached;
#[cfg(feature = "memory")]
pub mod memory;
mod record;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
pub mod sql;

#[cfg(feature = "http")]
pub use crate::http::{CookieConfig, SameSite, Session, SessionLayer, SessionService};
#[cfg(feature = "redis")]
pub use crate::redis::{RedisError, RedisOptions, RedisStore};
pub use any::{AnyStore, DynSessionStore};
pub use clock::{Clock, ManualClock, SystemClock, UnixTime};
#[cfg(feature = "cookie")]
pub use cookie::{CookieStore, Key, KeyError, KeyRing, OpenError};
pub use error::{BoxError, DataError, DataOp, StoreError, error_chain};
pub use id::{ID_LEN, ID_TEXT_LEN, IdError, SessionId};
#[cfg(feature = "memcached")]
pub use memcached::{MemcachedError, MemcachedOptions, MemcachedStore};
#[cfg(feature = "memory")]
pub use memory::MemoryStore;
pub use record::Record;
#[cfg(feature = "mysql")]
pub use sql::MysqlStore;
#[cfg(feature = "postgres")]
pub use sql::PostgresStore;
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
pub use sql::SqlError;
#[cfg(feature = "sqlite")]
pub use sql::SqliteStore;

/// What the client carries (the cookie value): the session id for server-side stores, the
/// whole sealed record for `CookieStore`.
///
/// A token from a client is untrusted text; stores parse it (strict base64url, exact length,
/// AEAD) before using it. `Debug` shows only the length: tokens are bearer credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// Wraps text received from a client (or produced by a store).
    #[must_use]
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    /// The text to put into the cookie.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The text, owned.
    #[must_use]
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token({} bytes)", self.0.len())
    }
}

impl From<SessionId> for Token {
    fn from(id: SessionId) -> Self {
        Self(id.to_text())
    }
}

/// A session backend.
///
/// Every write takes `&mut Record` and, on success, sets the record's
/// [`version`](Record::version) to the version now stored and returns the [`Token`] the client
/// must carry from now on (it changes on every write only for the cookie store). On error
/// nothing was written and the record is unchanged.
///
/// Methods are native `async fn`-in-trait with `Send` futures, so a store can be used from any
/// multi-threaded runtime; stores that need no I/O return ready futures.
///
/// The trait is shaped for network backends too: `create` maps to `SET NX` / memcached `add` /
/// `INSERT`, `compare_and_save` to a `WATCH`/Lua script / memcached `cas` / `UPDATE … WHERE
/// version = ?`, and `touch` to `EXPIRE` / memcached `touch`.
pub trait SessionStore: Send + Sync + 'static {
    /// `true` if the session state lives on the server, so that `delete` revokes a session and
    /// `compare_and_save` compares against one shared copy. `false` for the cookie store, whose
    /// only copy is in the client's hands (see its docs for what that means).
    const SERVER_SIDE: bool;

    /// [`SERVER_SIDE`](Self::SERVER_SIDE) of this store, asked at run time: the same value for
    /// every store except [`AnyStore`], whose type cannot know and which answers for the store
    /// it wraps.
    fn is_server_side(&self) -> bool {
        Self::SERVER_SIDE
    }

    /// Inserts a new session; never overwrites. If `rec`'s id is already taken it draws fresh
    /// ids (hence `&mut`) and returns [`StoreError::Conflict`] only when its retry budget runs
    /// out. The stored version is 1.
    fn create(&self, rec: &mut Record) -> impl Future<Output = Result<Token, StoreError>> + Send;

    /// Unconditional write (last writer wins): inserts or replaces, storing
    /// `max(stored, rec.version) + 1`. Prefer [`compare_and_save`](Self::compare_and_save)
    /// whenever two requests can touch one session.
    fn save(&self, rec: &mut Record) -> impl Future<Output = Result<Token, StoreError>> + Send;

    /// Version-checked write: succeeds only if the stored version is still `rec.version()`,
    /// then stores `rec.version() + 1`. Otherwise [`StoreError::VersionMismatch`]; load again,
    /// re-apply the change and retry.
    fn compare_and_save(
        &self,
        rec: &mut Record,
    ) -> impl Future<Output = Result<Token, StoreError>> + Send;

    /// The session for `token`, or `Ok(None)` if it is unknown, expired, deleted, or the
    /// token is malformed, tampered or sealed with an unknown key (never an error: that is
    /// client input). `Err` is for backend failures only.
    fn load(
        &self,
        token: &Token,
    ) -> impl Future<Output = Result<Option<Record>, StoreError>> + Send;

    /// Removes the session. Deleting an unknown session is not an error.
    fn delete(&self, token: &Token) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Moves the expiry of a live session to `expires` without changing its data or version
    /// (rolling expiry never conflicts with writers). `Ok(None)` if the session is absent or
    /// expired; otherwise the token to carry from now on.
    fn touch(
        &self,
        token: &Token,
        expires: UnixTime,
    ) -> impl Future<Output = Result<Option<Token>, StoreError>> + Send;
}

#[cfg(any(
    feature = "memory",
    feature = "sqlite",
    feature = "postgres",
    feature = "mysql",
    feature = "memcached",
    feature = "redis"
))]
/// Draws a fresh id from the OS CSPRNG.
pub(crate) fn fresh_id() -> Result<SessionId, StoreError> {
    let mut b = [0_u8; ID_LEN];
    getrandom::fill(&mut b).map_err(StoreError::Random)?;
    Ok(SessionId::from_bytes(b))
}
