//! [`AnyStore`]: one store type for a backend chosen at run time (from configuration), and
//! [`DynSessionStore`], the dyn-compatible form of [`SessionStore`] behind it.
//!
//! [`SessionStore`]'s methods return `impl Future`, so `dyn SessionStore` is not possible.
//! [`DynSessionStore`] returns boxed futures instead and is implemented for every
//! `SessionStore`; [`AnyStore`] wraps an `Arc<dyn DynSessionStore>` and implements
//! `SessionStore` again, so it goes wherever a store goes (the HTTP layer included). The cost
//! is one allocation per call for the boxed future.
//!
//! Import [`DynSessionStore`] only where you call it directly: a concrete store implements
//! both traits, whose methods share names.
//!
//! ```
//! use std::time::Duration;
//! use session_store::{AnyStore, Clock, MemoryStore, Record, SessionId, SessionStore, SystemClock};
//!
//! fn store_from_config(kind: &str) -> Result<AnyStore, String> {
//!     match kind {
//!         "memory" => Ok(AnyStore::new(MemoryStore::new(100_000))),
//!         // "sqlite" => Ok(AnyStore::new(SqliteStore::open(path, clock).await?)), …
//!         other => Err(format!("unknown session backend {other:?}")),
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = store_from_config("memory")?;
//! let mut rec = Record::new(SessionId::random()?, SystemClock::default().now(), Duration::from_secs(60));
//! let token = store.create(&mut rec).await?;
//! assert!(store.load(&token).await?.is_some());
//! assert!(store.is_server_side());
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::{Record, SessionStore, StoreError, Token, UnixTime};

/// A boxed, `Send` future borrowing the store and its arguments for `'a`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// [`SessionStore`] with boxed futures, so it can be a trait object (`dyn DynSessionStore`).
/// Implemented for every `SessionStore`; the methods mean exactly what the `SessionStore`
/// methods of the same names mean.
pub trait DynSessionStore: Send + Sync + 'static {
    /// [`SessionStore::SERVER_SIDE`] of the store behind it.
    fn server_side(&self) -> bool;
    /// [`SessionStore::create`].
    fn create<'a>(&'a self, rec: &'a mut Record) -> BoxFuture<'a, Result<Token, StoreError>>;
    /// [`SessionStore::save`].
    fn save<'a>(&'a self, rec: &'a mut Record) -> BoxFuture<'a, Result<Token, StoreError>>;
    /// [`SessionStore::compare_and_save`].
    fn compare_and_save<'a>(
        &'a self,
        rec: &'a mut Record,
    ) -> BoxFuture<'a, Result<Token, StoreError>>;
    /// [`SessionStore::load`].
    fn load<'a>(&'a self, token: &'a Token) -> BoxFuture<'a, Result<Option<Record>, StoreError>>;
    /// [`SessionStore::delete`].
    fn delete<'a>(&'a self, token: &'a Token) -> BoxFuture<'a, Result<(), StoreError>>;
    /// [`SessionStore::touch`].
    fn touch<'a>(
        &'a self,
        token: &'a Token,
        expires: UnixTime,
    ) -> BoxFuture<'a, Result<Option<Token>, StoreError>>;
}

impl<S: SessionStore> DynSessionStore for S {
    fn server_side(&self) -> bool {
        S::SERVER_SIDE
    }
    fn create<'a>(&'a self, rec: &'a mut Record) -> BoxFuture<'a, Result<Token, StoreError>> {
        Box::pin(SessionStore::create(self, rec))
    }
    fn save<'a>(&'a self, rec: &'a mut Record) -> BoxFuture<'a, Result<Token, StoreError>> {
        Box::pin(SessionStore::save(self, rec))
    }
    fn compare_and_save<'a>(
        &'a self,
        rec: &'a mut Record,
    ) -> BoxFuture<'a, Result<Token, StoreError>> {
        Box::pin(SessionStore::compare_and_save(self, rec))
    }
    fn load<'a>(&'a self, token: &'a Token) -> BoxFuture<'a, Result<Option<Record>, StoreError>> {
        Box::pin(SessionStore::load(self, token))
    }
    fn delete<'a>(&'a self, token: &'a Token) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(SessionStore::delete(self, token))
    }
    fn touch<'a>(
        &'a self,
        token: &'a Token,
        expires: UnixTime,
    ) -> BoxFuture<'a, Result<Option<Token>, StoreError>> {
        Box::pin(SessionStore::touch(self, token, expires))
    }
}

/// Any store, picked at run time: an `Arc<dyn DynSessionStore>` that is itself a
/// [`SessionStore`]. Cheap to clone.
///
/// Its [`SessionStore::SERVER_SIDE`] is `false` because the type cannot know;
/// [`SessionStore::is_server_side`] gives the wrapped store's answer.
#[derive(Clone)]
pub struct AnyStore {
    inner: Arc<dyn DynSessionStore>,
}

impl AnyStore {
    /// Wraps `store`.
    #[must_use]
    pub fn new<S: SessionStore>(store: S) -> Self {
        Self {
            inner: Arc::new(store),
        }
    }

    /// Wraps a store that is shared with other code (e.g. one a sweeper also holds).
    #[must_use]
    pub fn from_arc<S: SessionStore>(store: Arc<S>) -> Self {
        Self { inner: store }
    }

    /// Wraps an existing trait object.
    #[must_use]
    pub fn from_dyn(store: Arc<dyn DynSessionStore>) -> Self {
        Self { inner: store }
    }
}

impl fmt::Debug for AnyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnyStore")
            .field("server_side", &self.inner.server_side())
            .finish_non_exhaustive()
    }
}

impl SessionStore for AnyStore {
    /// Unknown at compile time: see [`SessionStore::is_server_side`].
    const SERVER_SIDE: bool = false;

    fn is_server_side(&self) -> bool {
        self.inner.server_side()
    }

    async fn create(&self, rec: &mut Record) -> Result<Token, StoreError> {
        self.inner.create(rec).await
    }

    async fn save(&self, rec: &mut Record) -> Result<Token, StoreError> {
        self.inner.save(rec).await
    }

    async fn compare_and_save(&self, rec: &mut Record) -> Result<Token, StoreError> {
        self.inner.compare_and_save(rec).await
    }

    async fn load(&self, token: &Token) -> Result<Option<Record>, StoreError> {
        self.inner.load(token).await
    }

    async fn delete(&self, token: &Token) -> Result<(), StoreError> {
        self.inner.delete(token).await
    }

    async fn touch(&self, token: &Token, expires: UnixTime) -> Result<Option<Token>, StoreError> {
        self.inner.touch(token, expires).await
    }
}
