//! HTTP session middleware: a tower [`Layer`] that gives hyper, axum and tower services a
//! [`Session`] backed by any [`SessionStore`].
//!
//! The crate docs have two compiled examples, an axum 0.8 app (feature `axum`: handlers take
//! [`Session`] as an extractor) and a hyper 1 server with a plain tower service (the handler
//! finds the [`Session`] in the request's extensions); `tests/axum.rs` and
//! `tests/http_layer.rs` drive both over real HTTP.
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
//!    (`req.extensions().get::<Session>()`; axum: a `session: Session` argument, feature
//!    `axum`).
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
//!
//! # Compared with tower-sessions
//!
//! The cases of tower-sessions' route tests run against this layer in
//! `tests/tower_sessions_cases.rs` (no session set, bogus and malformed cookies, insert,
//! get, remove, cycle id, flush with and without a domain, cookie attributes, expiry,
//! concurrent requests). Deliberate differences:
//!
//! * The default `SameSite` is `Lax` (tower-sessions: `Strict`), so following a link from
//!   another site keeps the user logged in; set [`CookieConfig::same_site`] for `Strict`.
//! * `Max-Age` is always sent and follows the session's remaining lifetime: every session has
//!   a server-side TTL ([`SessionLayer::ttl`], rolled forward by `touch`). tower-sessions sends
//!   none by default (a browser-session cookie). [`CookieConfig::max_age`] fixes the value.
//! * No per-session expiry (tower-sessions' `set_expiry`): the TTL is the layer's.
//! * Flushing is [`Session::delete`]; [`Session::clear`] empties the data and keeps the id.
//! * Handlers never await the store: `get` / `insert` act on the request's copy, and the
//!   layer stores the changes once, after the handler, with a version check.
//!
//!
//! One job per file: `cookie` (the cookie's attributes, rendering and parsing), `session` (the
//! [`Session`] handle), `layer` (the tower layer and service), `save` (storing the handler's
//! changes after the response), `retry` (conflicting writes) and `failure` ([`SessionFailure`]
//! and the layer's own error responses).
//!
//! [`Clock`]: crate::Clock
//! [`Layer`]: tower_layer::Layer
//! [`SessionStore::compare_and_save`]: crate::SessionStore::compare_and_save
//! [`SessionStore::create`]: crate::SessionStore::create
//! [`SessionStore::load`]: crate::SessionStore::load
//! [`SessionStore::touch`]: crate::SessionStore::touch
//! [`SessionStore`]: crate::SessionStore
//! [`StoreError::VersionMismatch`]: crate::StoreError::VersionMismatch
//! [`Token`]: crate::Token

#[cfg(feature = "axum")]
mod axum;
mod cookie;
mod failure;
mod layer;
mod retry;
mod save;
mod session;

#[cfg(feature = "axum")]
pub use axum::MissingSessionLayer;
pub use cookie::{CookieConfig, CookieConfigError, SameSite, find_cookie};
pub use failure::SessionFailure;
pub use layer::{DEFAULT_TTL, SessionLayer, SessionService};
pub use retry::CAS_RETRIES;
pub use session::Session;
