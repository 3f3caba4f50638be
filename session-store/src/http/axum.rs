//! The axum extractor (feature `axum`): a handler takes `session: Session` as an argument.
//!
//! Needs the [`SessionLayer`](super::SessionLayer) on the router (or on the route); without it
//! the extractor rejects the request with [`MissingSessionLayer`], a `500` whose body says what
//! to add.

use axum_core::extract::FromRequestParts;
use axum_core::response::{IntoResponse, Response};
use http::StatusCode;
use http::request::Parts;

use super::Session;

/// The rejection of the [`Session`] extractor: the request did not pass through a
/// [`SessionLayer`](super::SessionLayer). A programming error, answered `500`.
#[derive(thiserror::Error, Debug, Clone, Copy, Default)]
#[error(
    "no Session in the request: add `.layer(SessionLayer::new(store))` to the router, above \
     the routes that take a Session"
)]
pub struct MissingSessionLayer;

impl IntoResponse for MissingSessionLayer {
    fn into_response(self) -> Response {
        (StatusCode::INTERNAL_SERVER_ERROR, self.to_string()).into_response()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Session {
    type Rejection = MissingSessionLayer;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Self>()
            .cloned()
            .ok_or(MissingSessionLayer)
    }
}
