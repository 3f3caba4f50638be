//! What goes wrong: [`SessionFailure`], the layer's own error responses (`503`, `409`, `500`)
//! and the outcome of storing a request's changes.

use std::sync::Arc;

use ::http::header::{CACHE_CONTROL, CONTENT_TYPE, SET_COOKIE};
use ::http::{HeaderValue, Response, StatusCode};

use crate::StoreError;

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
    ///
    /// [`CAS_RETRIES`]: super::CAS_RETRIES
    #[error("session changed concurrently or ended before the write")]
    Conflict,
    /// Extending the session's lifetime failed; the handler's response was kept.
    #[error("session store failed on touch")]
    Touch(#[source] Arc<StoreError>),
    /// The store returned a token that is not a valid cookie value; answered `500`.
    #[error("store returned a token that cannot be a cookie value")]
    BadToken,
}

/// What happens to the response after the handler.
pub(super) enum Outcome {
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

pub(super) fn plain<RB: From<&'static str>>(
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

pub(super) const LOAD_FAILED: &str = "session store unavailable\n";
pub(super) const SAVE_FAILED: &str = "session could not be saved\n";
pub(super) const CONFLICT: &str = "session changed concurrently; retry\n";

pub(super) fn save_failed(e: StoreError) -> Outcome {
    tracing::error!(
        error = %crate::error_chain(&e),
        "session store failed on save; answering 500"
    );
    Outcome::Fail(
        StatusCode::INTERNAL_SERVER_ERROR,
        SAVE_FAILED,
        SessionFailure::Save(Arc::new(e)),
        None,
    )
}
