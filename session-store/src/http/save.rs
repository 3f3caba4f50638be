//! Storing what the handler did to the session after its response: create, write, delete,
//! cycle the id or extend the expiry, and the `Set-Cookie` that goes with it.

use std::sync::Arc;
use std::time::Duration;

use ::http::{HeaderValue, StatusCode};
use serde_json::{Map, Value};

use super::failure::{Outcome, SAVE_FAILED, SessionFailure, save_failed};
use super::layer::Shared;
use super::session::{Loaded, Session};
use crate::{Record, SessionId, SessionStore, StoreError, Token};

impl<S: SessionStore> Shared<S> {
    /// Stores what the handler did to `session`.
    pub(super) async fn finish(&self, session: &Session) -> Outcome {
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
            Err(e) => {
                tracing::warn!(
                    error = %crate::error_chain(&e),
                    "session store failed on touch; the session keeps its old expiry"
                );
                Outcome::Annotate(SessionFailure::Touch(Arc::new(e)))
            }
        }
    }
}
