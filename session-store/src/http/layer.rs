//! The tower [`Layer`] and [`Service`]: [`SessionLayer`] and its configuration, and
//! [`SessionService`], which loads the session, calls the inner service and hands the
//! outcome to the response.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use ::http::header::SET_COOKIE;
use ::http::{Request, Response, StatusCode};
use tower_layer::Layer;
use tower_service::Service;

use super::cookie::{CookieConfig, find_cookie};
use super::failure::{LOAD_FAILED, Outcome, SessionFailure, plain};
use super::session::{Loaded, Session};
use crate::{Clock, SessionStore, SystemClock, Token, UnixTime};

/// The session lifetime [`SessionLayer::new`] uses: 24 hours.
pub const DEFAULT_TTL: Duration = Duration::from_secs(24 * 3600);

/// What the layer needs per request, shared by every clone of the service.
pub(super) struct Shared<S> {
    pub(super) store: Arc<S>,
    pub(super) cookie: CookieConfig,
    pub(super) ttl: Duration,
    pub(super) clock: Arc<dyn Clock>,
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
        let span =
            tracing::debug_span!("session", method = %req.method(), path = %req.uri().path());
        Box::pin(tracing::Instrument::instrument(
            shared.handle(inner, req),
            span,
        ))
    }
}

impl<S: SessionStore> Shared<S> {
    pub(super) fn now(&self) -> UnixTime {
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
                        tracing::error!(
                            error = %crate::error_chain(&e),
                            "session store failed on load; answering 503"
                        );
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
}
