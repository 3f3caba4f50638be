//! HTTP session middleware: a tower [`Layer`] that gives hyper, axum and tower services a
//! [`Session`] backed by any [`SessionStore`].
//!
//! ```text
//! let layer = SessionLayer::new(SqliteStore::open(path, SystemClock::default()).await?)
//!     .cookie(CookieConfig::new("sid").same_site(SameSite::Strict))
//!     .ttl(Duration::from_secs(8 * 3600));
//!
//! // hyper 1 + hyper-util, per accepted connection (`service_fn` being any tower service):
//! let svc = TowerToHyperService::new(layer.layer(service_fn(handler)));
//! http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await?;
//! // axum: Router::new().route(..).layer(layer), and `Extension<Session>` in handlers.
//!
//! // In the handler:
//! let session = req.extensions().get::<Session>().cloned().ok_or("no session layer")?;
//! session.insert("user", "alice")?;
//! session.cycle_id(); // logged in: new id
//! ```
//!
//! `tests/http_layer.rs` is a complete, compiled version (hyper server, raw HTTP client).
//!
//! The layer needs no async runtime of its own: it only awaits the store and the inner
//! service, so it runs wherever they run.
//!
//! # Per request
//!
//! 1. **Before the inner service.** The `Cookie` request headers are searched for the session
//!    cookie (every `Cookie` header, every `a=b; c=d` pair; the first well-formed cookie with
//!    the configured name wins; malformed pairs, non-UTF-8 bytes and empty values are skipped,
//!    never an error). Its value is passed to [`SessionStore::load`] as a [`Token`].
//!    * A store **error** answers `503 Service Unavailable` without calling the inner
//!      service: a store hiccup must not look like a logout.
//!    * No cookie, an unknown, expired, deleted or tampered token: a new, empty session. It is
//!      stored only if the handler writes to it.
//!
//!    The [`Session`] handle is put into the request's extensions
//!    (`req.extensions().get::<Session>()`; axum: `Extension<Session>`).
//! 2. **After the inner service** the layer looks at what the handler did:
//!    * **Wrote** ([`Session::insert`] of a value different from the current one,
//!      [`remove`](Session::remove) of a present key, [`clear`](Session::clear) of non-empty
//!      data): a new session is stored with [`SessionStore::create`] (unless its data ended up
//!      empty), a loaded one with [`SessionStore::compare_and_save`]. If another request wrote
//!      the session in the meantime ([`StoreError::VersionMismatch`]), the session is loaded
//!      again and *this request's operations* (key set, key removed, clear) are re-applied to
//!      the fresh copy, up to [`CAS_RETRIES`] times; after that the answer is
//!      `409 Conflict`. Re-applying operations keeps writes to different keys from
//!      overwriting each other; it does not make read-modify-write of one key (a counter)
//!      atomic — the last request's value for that key wins. If the session is gone when
//!      reloaded (expired, or deleted by a logout elsewhere) it is not brought back: `409`, and
//!      the cookie is cleared. Any other store error answers `500 Internal Server Error` with a
//!      short text body; the handler's response is dropped, so the client never believes a
//!      write happened that did not. Every write moves the session's expiry to now + TTL.
//!    * **Did not write**, and the session was loaded with less than half its TTL left: it is
//!      extended with [`SessionStore::touch`] (rolling expiry). A failed touch is not fatal: the
//!      handler's response goes out with a [`SessionFailure::Touch`] extension, the session
//!      keeps its old expiry.
//!    * [`Session::delete`]: the session is deleted from the store and the cookie expired
//!      (`Max-Age=0`). Data written after `delete` goes into a brand-new session.
//!    * [`Session::cycle_id`]: the data moves to a new session (new id, via `create`) and the
//!      old one is deleted: call it after login against session fixation.
//!
//!    `Set-Cookie` is sent on every write (the token is new for a new session and for the
//!    cookie store on every write, and `Max-Age` is refreshed), on a touch, and on delete. Its
//!    `Max-Age` is the remaining lifetime of the session unless [`CookieConfig::max_age`] fixes
//!    it, so the cookie expires with the session. Responses the layer makes itself carry a
//!    [`SessionFailure`] in their extensions for logging by an outer layer.
//!
//!    Only what the handler did before its response future completed is stored; changes made
//!    later through a kept clone of the [`Session`] are lost. The layer appends its
//!    `Set-Cookie`; a handler should not set the session cookie itself.
//!
//! Expired sessions never come back: the store refuses to load them, and the layer checks the
//! expiry against its own [`Clock`] too ([`SessionLayer::clock`]; give it the store's clock in
//! tests).
//!
//! # Backends
//!
//! Any [`SessionStore`] works: memory, SQL, memcached and Redis keep the session on the server
//! and the cookie carries its id; with `CookieStore` (`SERVER_SIDE == false`) the cookie
//! carries the sealed record itself, and the same code applies because the store returns a new
//! token on every write. Give the `CookieStore` the same name as the cookie. The cookie store's
//! limits (no revocation on delete, no conflict detection) are described in its docs.
//!
//! Tokens are bearer credentials: nothing here logs them, and no `Debug` output contains one.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use ::http::header::{CACHE_CONTROL, CONTENT_TYPE, COOKIE, SET_COOKIE};
use ::http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use tower_layer::Layer;
use tower_service::Service;

use crate::{Clock, Record, SessionId, SessionStore, StoreError, SystemClock, Token, UnixTime};

/// How many times a conflicting save is retried (reload, re-apply, save) before the layer
/// answers `409 Conflict`.
pub const CAS_RETRIES: usize = 3;

/// The session lifetime [`SessionLayer::new`] uses: 24 hours.
pub const DEFAULT_TTL: Duration = Duration::from_secs(24 * 3600);

/// The `SameSite` cookie attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SameSite {
    /// Sent only with same-site requests.
    Strict,
    /// Sent with same-site requests and top-level cross-site navigations (the default).
    Lax,
    /// Sent with every request. Browsers require `Secure` with it.
    None,
}

impl SameSite {
    fn as_str(self) -> &'static str {
        match self {
            Self::Strict => "Strict",
            Self::Lax => "Lax",
            Self::None => "None",
        }
    }
}

/// Why a [`CookieConfig`] value was refused by a `try_` constructor.
#[non_exhaustive]
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum CookieConfigError {
    /// The name is empty or has a character outside RFC 6265's `token` (controls, spaces,
    /// separators such as `=`, `;`, `,`, non-ASCII).
    #[error("invalid cookie name (must be a non-empty RFC 6265 token)")]
    Name,
    /// The path does not start with `/`, or contains a control character or `;`.
    #[error("invalid cookie path (must start with '/', no ';' or control characters)")]
    Path,
    /// The domain is empty or has a character other than ASCII letters, digits, `-` and `.`.
    #[error("invalid cookie domain (ASCII letters, digits, '-' and '.' only)")]
    Domain,
}

/// The session cookie's name and attributes.
///
/// Defaults: name `id`, `Path=/`, no `Domain`, `Secure`, `HttpOnly`, `SameSite=Lax`, and a
/// `Max-Age` that follows the session's remaining lifetime.
///
/// Names and attributes are validated. The `try_` constructors return a
/// [`CookieConfigError`]; the infallible builders ([`new`](Self::new), [`path`](Self::path),
/// [`domain`](Self::domain)) never panic and **ignore an invalid value**, keeping the
/// previous one (the default for `new`). Use the `try_` forms when the value comes from
/// configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CookieConfig {
    name: String,
    path: String,
    domain: Option<String>,
    secure: bool,
    http_only: bool,
    same_site: SameSite,
    max_age: Option<Duration>,
}

impl Default for CookieConfig {
    fn default() -> Self {
        Self {
            name: "id".to_owned(),
            path: "/".to_owned(),
            domain: None,
            secure: true,
            http_only: true,
            same_site: SameSite::Lax,
            max_age: None,
        }
    }
}

impl CookieConfig {
    /// The defaults with the cookie called `name`; an invalid name is ignored (the name stays
    /// `id`): see [`try_new`](Self::try_new).
    #[must_use]
    pub fn new(name: impl Into<String>) -> Self {
        Self::try_new(name).unwrap_or_default()
    }

    /// The defaults with the cookie called `name`.
    ///
    /// # Errors
    /// [`CookieConfigError::Name`] unless `name` is a non-empty RFC 6265 token.
    pub fn try_new(name: impl Into<String>) -> Result<Self, CookieConfigError> {
        let name = name.into();
        if !valid_name(&name) {
            return Err(CookieConfigError::Name);
        }
        Ok(Self {
            name,
            ..Self::default()
        })
    }

    /// Sets `Path`; an invalid path is ignored: see [`try_path`](Self::try_path).
    #[must_use]
    pub fn path(self, p: impl Into<String>) -> Self {
        let p = p.into();
        if valid_path(&p) {
            Self { path: p, ..self }
        } else {
            self
        }
    }

    /// Sets `Path`.
    ///
    /// # Errors
    /// [`CookieConfigError::Path`] unless `p` starts with `/` and has no `;` or control
    /// characters.
    pub fn try_path(self, p: impl Into<String>) -> Result<Self, CookieConfigError> {
        let p = p.into();
        if valid_path(&p) {
            Ok(Self { path: p, ..self })
        } else {
            Err(CookieConfigError::Path)
        }
    }

    /// Sets `Domain`; an invalid domain is ignored: see [`try_domain`](Self::try_domain).
    #[must_use]
    pub fn domain(self, d: impl Into<String>) -> Self {
        let d = d.into();
        if valid_domain(&d) {
            Self {
                domain: Some(d),
                ..self
            }
        } else {
            self
        }
    }

    /// Sets `Domain` (the cookie then also goes to subdomains).
    ///
    /// # Errors
    /// [`CookieConfigError::Domain`] unless `d` is non-empty ASCII letters, digits, `-`, `.`.
    pub fn try_domain(self, d: impl Into<String>) -> Result<Self, CookieConfigError> {
        let d = d.into();
        if valid_domain(&d) {
            Ok(Self {
                domain: Some(d),
                ..self
            })
        } else {
            Err(CookieConfigError::Domain)
        }
    }

    /// `Secure`: send the cookie over HTTPS only (default on). Turn off only for plain-HTTP
    /// development.
    #[must_use]
    pub fn secure(self, on: bool) -> Self {
        Self { secure: on, ..self }
    }

    /// `HttpOnly`: hide the cookie from scripts (default on).
    #[must_use]
    pub fn http_only(self, on: bool) -> Self {
        Self {
            http_only: on,
            ..self
        }
    }

    /// `SameSite` (default [`SameSite::Lax`]).
    #[must_use]
    pub fn same_site(self, s: SameSite) -> Self {
        Self {
            same_site: s,
            ..self
        }
    }

    /// A fixed `Max-Age` (whole seconds); `None` (the default) makes the cookie expire with
    /// the session.
    #[must_use]
    pub fn max_age(self, d: Option<Duration>) -> Self {
        Self { max_age: d, ..self }
    }

    /// The cookie name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The `Set-Cookie` value `name=value; Path=..; Domain=..; Max-Age=N; Secure; HttpOnly;
    /// SameSite=..` (attributes that are off or unset are left out).
    fn render(&self, value: &str, max_age: u64) -> String {
        use fmt::Write as _;
        let mut s = String::with_capacity(self.name.len() + value.len() + 80);
        let _ = write!(s, "{}={}; Path={}", self.name, value, self.path);
        if let Some(d) = &self.domain {
            let _ = write!(s, "; Domain={d}");
        }
        let _ = write!(s, "; Max-Age={max_age}");
        if self.secure {
            s.push_str("; Secure");
        }
        if self.http_only {
            s.push_str("; HttpOnly");
        }
        let _ = write!(s, "; SameSite={}", self.same_site.as_str());
        s
    }

    /// The `Set-Cookie` header for `value`; `None` if `value` is not a valid cookie value.
    fn header(&self, value: &str, max_age: u64) -> Option<HeaderValue> {
        if !value.bytes().all(cookie_octet) {
            return None;
        }
        HeaderValue::from_str(&self.render(value, max_age)).ok()
    }

    /// The `Set-Cookie` header that makes the browser drop the cookie.
    fn expired(&self) -> Option<HeaderValue> {
        self.header("", 0)
    }
}

/// RFC 6265 `token` (RFC 2616 §2.2): visible ASCII except separators.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|b| {
            b.is_ascii_graphic()
                && !matches!(
                    b,
                    b'(' | b')'
                        | b'<'
                        | b'>'
                        | b'@'
                        | b','
                        | b';'
                        | b':'
                        | b'\\'
                        | b'"'
                        | b'/'
                        | b'['
                        | b']'
                        | b'?'
                        | b'='
                        | b'{'
                        | b'}'
                )
        })
}

/// RFC 6265 `av-octet` (no controls, no `;`), ASCII only, starting with `/`.
fn valid_path(p: &str) -> bool {
    p.starts_with('/') && p.bytes().all(|b| (b' '..=b'~').contains(&b) && b != b';')
}

fn valid_domain(d: &str) -> bool {
    !d.is_empty()
        && d.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// RFC 6265 `cookie-octet`: visible ASCII except `"`, `,`, `;`, `\`.
fn cookie_octet(b: u8) -> bool {
    b.is_ascii_graphic() && !matches!(b, b'"' | b',' | b';' | b'\\')
}

/// The value of the first well-formed cookie called `name` in the request's `Cookie` headers.
///
/// Every `Cookie` header is read, each as a `;`-separated list of `name=value` pairs; spaces
/// and tabs around names and values are trimmed and a value in double quotes is unquoted.
/// Pairs without `=`, values that are empty, non-UTF-8 or contain bytes outside RFC 6265's
/// `cookie-octet` are skipped. Never fails, never panics.
#[must_use]
pub fn find_cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .find_map(|h| find_in_header(h.as_bytes(), name))
}

fn find_in_header<'a>(header: &'a [u8], name: &str) -> Option<&'a str> {
    header.split(|&b| b == b';').find_map(|pair| {
        let eq = pair.iter().position(|&b| b == b'=')?;
        let (n, v) = pair.split_at(eq);
        let v = v.get(1..)?;
        if trim(n) != name.as_bytes() {
            return None;
        }
        let v = trim(v);
        let v = match v {
            [b'"', inner @ .., b'"'] => inner,
            _ => v,
        };
        if v.is_empty() || !v.iter().all(|&b| cookie_octet(b)) {
            return None;
        }
        std::str::from_utf8(v).ok()
    })
}

fn trim(s: &[u8]) -> &[u8] {
    let ws = |b: &u8| *b == b' ' || *b == b'\t';
    let start = s.iter().position(|b| !ws(b)).unwrap_or(s.len());
    let end = s.iter().rposition(|b| !ws(b)).map_or(start, |i| i + 1);
    s.get(start..end).unwrap_or_default()
}

/// Why the layer answered (or annotated) a response: found in the extensions of the responses
/// it makes itself (`503`, `409`, `500`) and of a handler response whose rolling touch failed,
/// so an outer layer can log it. Never contains a token.
#[non_exhaustive]
#[derive(thiserror::Error, Debug, Clone)]
pub enum SessionFailure {
    /// Loading the session failed; the request was answered `503` without calling the inner
    /// service.
    #[error("session store failed on load")]
    Load(#[source] Arc<StoreError>),
    /// Writing the session failed; the handler's response was replaced by `500`.
    #[error("session store failed on save")]
    Save(#[source] Arc<StoreError>),
    /// The session kept changing under this request ([`CAS_RETRIES`] retries), or it ended
    /// (expired, deleted elsewhere) before the write; answered `409`.
    #[error("session changed concurrently or ended before the write")]
    Conflict,
    /// Extending the session's lifetime failed; the handler's response was kept.
    #[error("session store failed on touch")]
    Touch(#[source] Arc<StoreError>),
    /// The store returned a token that is not a valid cookie value; answered `500`.
    #[error("store returned a token that cannot be a cookie value")]
    BadToken,
}

/// One operation of the handler, recorded to be re-applied on a conflict.
#[derive(Clone)]
enum Op {
    Set(String, Value),
    Remove(String),
    Clear,
}

fn apply(data: &mut Map<String, Value>, ops: &[Op]) {
    for op in ops {
        match op {
            Op::Set(k, v) => {
                data.insert(k.clone(), v.clone());
            }
            Op::Remove(k) => {
                data.remove(k);
            }
            Op::Clear => data.clear(),
        }
    }
}

/// A session as it came from the store, with the token that loaded it.
#[derive(Clone)]
struct Loaded {
    record: Record,
    token: Token,
}

struct State {
    /// The handler's view of the data.
    data: Map<String, Value>,
    /// What the store holds (as of load or of the last write by this layer).
    loaded: Option<Loaded>,
    /// Operations since `loaded`.
    ops: Vec<Op>,
    changed: bool,
    cycle: bool,
    deleted: bool,
    /// The token of a session to delete from the store.
    delete_token: Option<Token>,
}

/// The session of one request, found by the inner service in the request's extensions:
/// `req.extensions().get::<Session>()` (axum: `Extension<Session>`).
///
/// Cheap to clone (an `Arc<Mutex<..>>`), `Send` and `Sync`. Reads and writes act on this
/// request's copy; the layer stores the changes after the handler's response (see the
/// [module docs](self)). `Debug` shows neither data nor token.
#[derive(Clone)]
pub struct Session {
    state: Arc<Mutex<State>>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.lock();
        f.debug_struct("Session")
            .field("is_new", &st.loaded.is_none())
            .field(
                "version",
                &st.loaded.as_ref().map_or(0, |l| l.record.version()),
            )
            .field("keys", &st.data.len())
            .field("changed", &st.changed)
            .finish_non_exhaustive()
    }
}

impl Session {
    fn new(loaded: Option<Loaded>) -> Self {
        let data = loaded
            .as_ref()
            .map(|l| l.record.data().clone())
            .unwrap_or_default();
        Self {
            state: Arc::new(Mutex::new(State {
                data,
                loaded,
                ops: Vec::new(),
                changed: false,
                cycle: false,
                deleted: false,
                delete_token: None,
            })),
        }
    }

    /// A poisoned lock is taken over: no code path panics while holding it, and every
    /// mutation leaves the state consistent.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads `key` as a `T`; `Ok(None)` if absent.
    ///
    /// # Errors
    /// The value exists but does not deserialize as `T`.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, serde_json::Error> {
        self.lock()
            .data
            .get(key)
            .map(|v| T::deserialize(v))
            .transpose()
    }

    /// Writes `value` under `key`. Writing the value the key already has is not a change.
    ///
    /// # Errors
    /// `value` does not serialize to JSON; the session is unchanged.
    pub fn insert<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
    ) -> Result<(), serde_json::Error> {
        let v = serde_json::to_value(value)?;
        let mut st = self.lock();
        if st.data.get(key) == Some(&v) {
            return Ok(());
        }
        st.data.insert(key.to_owned(), v.clone());
        st.ops.push(Op::Set(key.to_owned(), v));
        st.changed = true;
        Ok(())
    }

    /// Removes `key`, returning its value (removing an absent key is not a change).
    pub fn remove(&self, key: &str) -> Option<Value> {
        let mut st = self.lock();
        let old = st.data.remove(key);
        if old.is_some() {
            st.ops.push(Op::Remove(key.to_owned()));
            st.changed = true;
        }
        old
    }

    /// Drops all data but keeps the session (and its id).
    pub fn clear(&self) {
        let mut st = self.lock();
        if !st.data.is_empty() {
            st.data.clear();
            st.ops.clear();
            st.ops.push(Op::Clear);
            st.changed = true;
        }
    }

    /// Logout: deletes the session from the store and expires the cookie (`Max-Age=0`). Data
    /// written afterwards in this request goes into a new session with a new id.
    pub fn delete(&self) {
        let mut st = self.lock();
        if let Some(l) = st.loaded.take()
            && st.delete_token.is_none()
        {
            st.delete_token = Some(l.token);
        }
        st.data.clear();
        st.ops.clear();
        st.changed = false;
        st.cycle = false;
        st.deleted = true;
    }

    /// Moves the data to a new id and deletes the old session: call it when privileges change
    /// (login) so an id planted before login is useless after it (session fixation). A new
    /// session gets a fresh id anyway; for it this does nothing.
    pub fn cycle_id(&self) {
        let mut st = self.lock();
        if st.loaded.is_some() {
            st.cycle = true;
        }
    }

    /// The stored session's id; `None` for a session not saved yet (new, cycled or deleted).
    /// For the cookie store too (the id is inside the sealed record).
    #[must_use]
    pub fn id(&self) -> Option<SessionId> {
        let st = self.lock();
        if st.cycle {
            return None;
        }
        st.loaded.as_ref().map(|l| l.record.id())
    }

    /// `true` if no stored session was found for this request (or it was deleted).
    #[must_use]
    pub fn is_new(&self) -> bool {
        self.lock().loaded.is_none()
    }

    /// The version of the stored copy (0 for a new session).
    #[must_use]
    pub fn version(&self) -> u64 {
        self.lock()
            .loaded
            .as_ref()
            .map_or(0, |l| l.record.version())
    }
}

/// What the layer needs per request, shared by every clone of the service.
struct Shared<S> {
    store: Arc<S>,
    cookie: CookieConfig,
    ttl: Duration,
    clock: Arc<dyn Clock>,
}

/// The session layer: wraps a service in a [`SessionService`]. Cloning is cheap (`Arc`s).
pub struct SessionLayer<S> {
    shared: Arc<Shared<S>>,
}

impl<S> Clone for SessionLayer<S> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S> fmt::Debug for SessionLayer<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionLayer")
            .field("cookie", &self.shared.cookie)
            .field("ttl", &self.shared.ttl)
            .finish_non_exhaustive()
    }
}

impl<S: SessionStore> SessionLayer<S> {
    /// A layer over `store` with a 24-hour TTL ([`DEFAULT_TTL`]), [`CookieConfig::default`]
    /// and the system clock.
    #[must_use]
    pub fn new(store: S) -> Self {
        Self::from_arc(Arc::new(store))
    }

    /// A layer over a store that is shared with other code.
    #[must_use]
    pub fn from_arc(store: Arc<S>) -> Self {
        Self {
            shared: Arc::new(Shared {
                store,
                cookie: CookieConfig::default(),
                ttl: DEFAULT_TTL,
                clock: Arc::new(SystemClock),
            }),
        }
    }

    fn with(self, f: impl FnOnce(&mut Shared<S>)) -> Self {
        let old = self.shared;
        let mut shared = Shared {
            store: Arc::clone(&old.store),
            cookie: old.cookie.clone(),
            ttl: old.ttl,
            clock: Arc::clone(&old.clock),
        };
        f(&mut shared);
        Self {
            shared: Arc::new(shared),
        }
    }

    /// Sets the cookie name and attributes.
    #[must_use]
    pub fn cookie(self, c: CookieConfig) -> Self {
        self.with(|s| s.cookie = c)
    }

    /// Sets the session lifetime (whole seconds). Every write moves the expiry to now + `ttl`;
    /// a request that does not write but finds less than half of `ttl` left extends it with
    /// [`SessionStore::touch`] (rolling expiry).
    #[must_use]
    pub fn ttl(self, ttl: Duration) -> Self {
        self.with(|s| s.ttl = ttl)
    }

    /// Sets the clock used for new sessions' expiry, for the rolling-expiry decision and for
    /// `Max-Age`. Use the store's clock (tests: the same [`ManualClock`](crate::ManualClock)).
    #[must_use]
    pub fn clock(self, clock: impl Clock) -> Self {
        self.with(|s| s.clock = Arc::new(clock))
    }

    /// The store.
    #[must_use]
    pub fn store(&self) -> &Arc<S> {
        &self.shared.store
    }

    /// The cookie configuration.
    #[must_use]
    pub fn cookie_config(&self) -> &CookieConfig {
        &self.shared.cookie
    }
}

impl<S, I> Layer<I> for SessionLayer<S> {
    type Service = SessionService<S, I>;

    fn layer(&self, inner: I) -> Self::Service {
        SessionService {
            inner,
            shared: Arc::clone(&self.shared),
        }
    }
}

/// The service [`SessionLayer`] makes: loads the session, calls `I`, stores the changes.
pub struct SessionService<S, I> {
    inner: I,
    shared: Arc<Shared<S>>,
}

impl<S, I: Clone> Clone for SessionService<S, I> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S, I> fmt::Debug for SessionService<S, I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionService")
            .field("cookie", &self.shared.cookie)
            .field("ttl", &self.shared.ttl)
            .finish_non_exhaustive()
    }
}

impl<S, I, B, RB> Service<Request<B>> for SessionService<S, I>
where
    S: SessionStore,
    I: Service<Request<B>, Response = Response<RB>> + Clone + Send + 'static,
    I::Future: Send,
    I::Error: Send,
    B: Send + 'static,
    RB: From<&'static str> + Send + 'static,
{
    type Response = Response<RB>;
    type Error = I::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<RB>, I::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        // The instance that was polled ready handles this request; a fresh clone stays here.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let shared = Arc::clone(&self.shared);
        Box::pin(shared.handle(inner, req))
    }
}

/// What happens to the response after the handler.
enum Outcome {
    /// Leave it as it is.
    Keep,
    /// Add this `Set-Cookie`.
    Cookie(HeaderValue),
    /// Keep it, with this failure in its extensions.
    Annotate(SessionFailure),
    /// Replace it by an error response (optionally with a `Set-Cookie`).
    Fail(
        StatusCode,
        &'static str,
        SessionFailure,
        Option<HeaderValue>,
    ),
}

fn plain<RB: From<&'static str>>(
    status: StatusCode,
    body: &'static str,
    failure: SessionFailure,
    cookie: Option<HeaderValue>,
) -> Response<RB> {
    let mut resp = Response::new(RB::from(body));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(c) = cookie {
        h.insert(SET_COOKIE, c);
    }
    resp.extensions_mut().insert(failure);
    resp
}

const LOAD_FAILED: &str = "session store unavailable\n";
const SAVE_FAILED: &str = "session could not be saved\n";
const CONFLICT: &str = "session changed concurrently; retry\n";

fn save_failed(e: StoreError) -> Outcome {
    Outcome::Fail(
        StatusCode::INTERNAL_SERVER_ERROR,
        SAVE_FAILED,
        SessionFailure::Save(Arc::new(e)),
        None,
    )
}

impl<S: SessionStore> Shared<S> {
    fn now(&self) -> UnixTime {
        self.clock.now()
    }

    async fn handle<I, B, RB>(
        self: Arc<Self>,
        mut inner: I,
        mut req: Request<B>,
    ) -> Result<Response<RB>, I::Error>
    where
        I: Service<Request<B>, Response = Response<RB>>,
        RB: From<&'static str>,
    {
        let loaded = match find_cookie(req.headers(), &self.cookie.name) {
            None => None,
            Some(text) => {
                let token = Token::new(text);
                match self.store.load(&token).await {
                    Ok(Some(record)) if !record.is_expired(self.now()) => {
                        Some(Loaded { record, token })
                    }
                    Ok(_) => None,
                    Err(e) => {
                        return Ok(plain(
                            StatusCode::SERVICE_UNAVAILABLE,
                            LOAD_FAILED,
                            SessionFailure::Load(Arc::new(e)),
                            None,
                        ));
                    }
                }
            }
        };
        let session = Session::new(loaded);
        req.extensions_mut().insert(session.clone());
        let mut resp = inner.call(req).await?;
        match self.finish(&session).await {
            Outcome::Keep => {}
            Outcome::Cookie(c) => {
                resp.headers_mut().append(SET_COOKIE, c);
            }
            Outcome::Annotate(f) => {
                resp.extensions_mut().insert(f);
            }
            Outcome::Fail(status, body, failure, cookie) => {
                return Ok(plain(status, body, failure, cookie));
            }
        }
        Ok(resp)
    }

    /// Stores what the handler did to `session`.
    async fn finish(&self, session: &Session) -> Outcome {
        // Snapshot under the lock; never hold it across an await.
        let (data, loaded, ops, changed, cycle, deleted, delete_token) = {
            let mut st = session.lock();
            (
                st.data.clone(),
                st.loaded.clone(),
                std::mem::take(&mut st.ops),
                std::mem::take(&mut st.changed),
                std::mem::take(&mut st.cycle),
                std::mem::take(&mut st.deleted),
                st.delete_token.take(),
            )
        };
        if let Some(token) = delete_token
            && let Err(e) = self.store.delete(&token).await
        {
            return save_failed(e);
        }
        let written = match loaded {
            Some(l) if cycle => self.create(data, Some(l.token)).await,
            Some(l) if changed => self.compare_and_save(l, data, &ops).await,
            None if changed && !data.is_empty() => self.create(data, None).await,
            Some(l) => return self.maybe_touch(session, l).await,
            None if deleted => return self.expire_cookie(),
            None => return Outcome::Keep,
        };
        let (record, token) = match written {
            Ok(w) => w,
            Err(o) => return o,
        };
        let max_age = record
            .expires()
            .as_secs()
            .saturating_sub(self.now().as_secs());
        let Some(cookie) = self.set_cookie(token.as_str(), max_age) else {
            return Outcome::Fail(
                StatusCode::INTERNAL_SERVER_ERROR,
                SAVE_FAILED,
                SessionFailure::BadToken,
                None,
            );
        };
        let mut st = session.lock();
        st.data = record.data().clone();
        st.loaded = Some(Loaded { record, token });
        Outcome::Cookie(cookie)
    }

    fn set_cookie(&self, value: &str, session_left: u64) -> Option<HeaderValue> {
        let max_age = self.cookie.max_age.map_or(session_left, |d| d.as_secs());
        self.cookie.header(value, max_age)
    }

    fn expire_cookie(&self) -> Outcome {
        self.cookie.expired().map_or(Outcome::Keep, Outcome::Cookie)
    }

    /// Stores `data` as a new session; then deletes `old` (after `cycle_id`).
    async fn create(
        &self,
        data: Map<String, Value>,
        old: Option<Token>,
    ) -> Result<(Record, Token), Outcome> {
        let id = SessionId::random().map_err(|e| match e {
            crate::IdError::Rng(r) => save_failed(StoreError::Random(r)),
            other => save_failed(StoreError::Backend(Box::new(other))),
        })?;
        let mut record = Record::new(id, self.now(), self.ttl);
        *record.data_mut() = data;
        let token = self.store.create(&mut record).await.map_err(save_failed)?;
        if let Some(old) = old {
            self.store.delete(&old).await.map_err(save_failed)?;
        }
        Ok((record, token))
    }

    /// Version-checked write of `data` over `loaded`; on a conflict reload, re-apply `ops`,
    /// retry.
    async fn compare_and_save(
        &self,
        loaded: Loaded,
        data: Map<String, Value>,
        ops: &[Op],
    ) -> Result<(Record, Token), Outcome> {
        let Loaded { mut record, token } = loaded;
        *record.data_mut() = data;
        let mut retries = 0;
        loop {
            record.set_ttl(self.now(), self.ttl);
            match self.store.compare_and_save(&mut record).await {
                Ok(new_token) => return Ok((record, new_token)),
                Err(StoreError::VersionMismatch { .. }) if retries < CAS_RETRIES => {
                    retries += 1;
                    match self.store.load(&token).await {
                        Ok(Some(fresh)) if !fresh.is_expired(self.now()) => {
                            record = fresh;
                            apply(record.data_mut(), ops);
                        }
                        Ok(_) => return Err(self.conflict(true)),
                        Err(e) => return Err(save_failed(e)),
                    }
                }
                Err(StoreError::VersionMismatch { .. }) => return Err(self.conflict(false)),
                Err(e) => return Err(save_failed(e)),
            }
        }
    }

    fn conflict(&self, gone: bool) -> Outcome {
        let cookie = if gone { self.cookie.expired() } else { None };
        Outcome::Fail(
            StatusCode::CONFLICT,
            CONFLICT,
            SessionFailure::Conflict,
            cookie,
        )
    }

    /// Rolling expiry: extends a session with less than half its TTL left.
    async fn maybe_touch(&self, session: &Session, loaded: Loaded) -> Outcome {
        let now = self.now();
        let left = loaded
            .record
            .expires()
            .as_secs()
            .saturating_sub(now.as_secs());
        if Duration::from_secs(left).saturating_mul(2) >= self.ttl {
            return Outcome::Keep;
        }
        let expires = now.saturating_add(self.ttl);
        match self.store.touch(&loaded.token, expires).await {
            Ok(Some(token)) => {
                let Some(cookie) = self.set_cookie(token.as_str(), self.ttl.as_secs()) else {
                    return Outcome::Annotate(SessionFailure::BadToken);
                };
                let mut st = session.lock();
                if let Some(l) = st.loaded.as_mut() {
                    l.record.set_expires(expires);
                    l.token = token;
                }
                Outcome::Cookie(cookie)
            }
            // Gone meanwhile (expired, deleted elsewhere): drop the cookie.
            Ok(None) => self.expire_cookie(),
            Err(e) => Outcome::Annotate(SessionFailure::Touch(Arc::new(e))),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn headers(values: &[&[u8]]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(COOKIE, HeaderValue::from_bytes(v).unwrap());
        }
        h
    }

    #[test]
    fn finds_first_cookie_with_our_name() {
        let h = headers(&[b"a=1; id=first; id=second", b"id=third"]);
        assert_eq!(find_cookie(&h, "id"), Some("first"));
        assert_eq!(find_cookie(&h, "a"), Some("1"));
        assert_eq!(find_cookie(&h, "b"), None);
        assert_eq!(find_cookie(&HeaderMap::new(), "id"), None);
    }

    #[test]
    fn searches_every_cookie_header() {
        let h = headers(&[b"a=1", b"b=2;id=x2"]);
        assert_eq!(find_cookie(&h, "id"), Some("x2"));
    }

    #[test]
    fn trims_and_unquotes() {
        let h = headers(&[b"  a=1 ;\tid = \"abc\" "]);
        assert_eq!(find_cookie(&h, "id"), Some("abc"));
        assert_eq!(find_cookie(&h, "a"), Some("1"));
    }

    #[test]
    fn skips_malformed_pairs() {
        // No '=', empty value, bad octets, non-UTF-8, prefix names: all skipped.
        let h = headers(&[
            b"id; id=; id=a\"b; id=a\\b; ids=no; xid=no; =id; id=\xff\xfe",
            b"id=good",
        ]);
        assert_eq!(find_cookie(&h, "id"), Some("good"));
        let h = headers(&[b";;;=;==;id"]);
        assert_eq!(find_cookie(&h, "id"), None);
    }

    #[test]
    fn value_may_contain_equals() {
        let h = headers(&[b"id=a=b"]);
        assert_eq!(find_cookie(&h, "id"), Some("a=b"));
    }

    #[test]
    fn renders_default_attributes() {
        let c = CookieConfig::default();
        assert_eq!(
            c.render("tok", 60),
            "id=tok; Path=/; Max-Age=60; Secure; HttpOnly; SameSite=Lax"
        );
    }

    #[test]
    fn renders_every_attribute() {
        let c = CookieConfig::new("sid")
            .path("/app")
            .domain("example.com")
            .secure(false)
            .http_only(false)
            .same_site(SameSite::Strict);
        assert_eq!(
            c.render("v", 5),
            "sid=v; Path=/app; Domain=example.com; Max-Age=5; SameSite=Strict"
        );
        let c = CookieConfig::default().same_site(SameSite::None);
        assert!(
            c.render("v", 0)
                .ends_with("; Secure; HttpOnly; SameSite=None")
        );
        assert_eq!(
            c.expired().unwrap().to_str().unwrap(),
            "id=; Path=/; Max-Age=0; Secure; HttpOnly; SameSite=None"
        );
    }

    #[test]
    fn refuses_bad_cookie_values() {
        let c = CookieConfig::default();
        assert!(c.header("a;b", 1).is_none());
        assert!(c.header("a b", 1).is_none());
        assert!(c.header("é", 1).is_none());
        assert!(c.header("Zm9v_-", 1).is_some());
    }

    #[test]
    fn validates_config() {
        assert_eq!(CookieConfig::try_new("a b"), Err(CookieConfigError::Name));
        assert_eq!(CookieConfig::try_new(""), Err(CookieConfigError::Name));
        assert_eq!(CookieConfig::try_new("a=b"), Err(CookieConfigError::Name));
        assert_eq!(
            CookieConfig::try_new("sid\u{e9}"),
            Err(CookieConfigError::Name)
        );
        assert_eq!(
            CookieConfig::try_new("__Host-sid").unwrap().name(),
            "__Host-sid"
        );
        assert_eq!(
            CookieConfig::default().try_path("app"),
            Err(CookieConfigError::Path)
        );
        assert_eq!(
            CookieConfig::default().try_path("/a;b"),
            Err(CookieConfigError::Path)
        );
        assert_eq!(
            CookieConfig::default().try_domain("exa mple.com"),
            Err(CookieConfigError::Domain)
        );
        // The infallible builders keep the previous value.
        assert_eq!(CookieConfig::new("bad;name").name(), "id");
        let c = CookieConfig::new("sid")
            .path("/ok")
            .path("bad")
            .domain("x;y");
        assert_eq!(
            c.render("v", 1),
            "sid=v; Path=/ok; Max-Age=1; Secure; HttpOnly; SameSite=Lax"
        );
    }

    #[test]
    fn session_records_changes() {
        let s = Session::new(None);
        assert!(s.is_new());
        assert_eq!(s.id(), None);
        assert_eq!(s.version(), 0);
        s.insert("a", &1).unwrap();
        s.insert("a", &1).unwrap();
        assert_eq!(s.get::<u32>("a").unwrap(), Some(1));
        assert_eq!(s.remove("missing"), None);
        let st = s.lock();
        assert!(st.changed);
        assert_eq!(st.ops.len(), 1);
        drop(st);
        s.clear();
        let st = s.lock();
        assert!(st.data.is_empty());
        assert!(matches!(st.ops.as_slice(), [Op::Clear]));
    }

    #[test]
    fn replay_applies_in_order() {
        let mut data = Map::new();
        data.insert("keep".into(), Value::from(1));
        data.insert("gone".into(), Value::from(2));
        apply(
            &mut data,
            &[
                Op::Remove("gone".into()),
                Op::Set("new".into(), Value::from(3)),
            ],
        );
        assert_eq!(data.len(), 2);
        assert_eq!(data.get("new"), Some(&Value::from(3)));
        apply(&mut data, &[Op::Clear, Op::Set("x".into(), Value::Null)]);
        assert_eq!(data.len(), 1);
    }

    proptest! {
        #[test]
        fn parsing_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200),
                                name in "[a-z]{0,3}") {
            let found = find_in_header(&bytes, &name);
            if let Some(v) = found {
                prop_assert!(!v.is_empty());
                prop_assert!(v.bytes().all(cookie_octet));
            }
            if let Ok(h) = HeaderValue::from_bytes(&bytes) {
                let mut map = HeaderMap::new();
                map.append(COOKIE, h);
                prop_assert_eq!(find_cookie(&map, &name), found);
            }
        }

        #[test]
        fn finds_what_it_renders(value in "[A-Za-z0-9_-]{1,64}", other in "x[a-z]{0,8}=[a-z]{0,8}") {
            let c = CookieConfig::default();
            let set = c.render(&value, 10);
            // A browser sends back only `name=value`.
            let pair = set.split(';').next().unwrap_or_default();
            let header = format!("{other}; {pair}");
            prop_assert_eq!(find_in_header(header.as_bytes(), "id"), Some(value.as_str()));
        }
    }
}
