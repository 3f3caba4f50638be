//! Optimistic concurrency: a version-checked write that, on a conflict, reloads the session,
//! re-applies this request's operations and retries up to [`CAS_RETRIES`] times.

use ::http::StatusCode;
use serde_json::{Map, Value};

use super::failure::{CONFLICT, Outcome, SessionFailure, save_failed};
use super::layer::Shared;
use super::session::{Loaded, Op};
use crate::{Record, SessionStore, StoreError, Token};

/// How many times a conflicting save is retried (reload, re-apply, save) before the layer
/// answers `409 Conflict`.
pub const CAS_RETRIES: usize = 3;

/// Re-applies recorded operations, in order, to a freshly loaded copy of the data.
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

impl<S: SessionStore> Shared<S> {
    /// Version-checked write of `data` over `loaded`; on a conflict reload, re-apply `ops`,
    /// retry.
    pub(super) async fn compare_and_save(
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
                Err(StoreError::VersionMismatch { expected, found }) if retries < CAS_RETRIES => {
                    retries += 1;
                    tracing::debug!(
                        retry = retries,
                        expected,
                        found,
                        "session changed concurrently (compare-and-set conflict); reloading and \
                         re-applying this request's changes"
                    );
                    match self.store.load(&token).await {
                        Ok(Some(fresh)) if !fresh.is_expired(self.now()) => {
                            record = fresh;
                            apply(record.data_mut(), ops);
                        }
                        Ok(_) => {
                            tracing::info!(
                                "session ended (expired or deleted) during a conflicting write; \
                                 answering 409 and clearing the cookie"
                            );
                            return Err(self.conflict(true));
                        }
                        Err(e) => return Err(save_failed(e)),
                    }
                }
                Err(StoreError::VersionMismatch { .. }) => {
                    tracing::warn!(
                        retries = CAS_RETRIES,
                        "session kept changing concurrently (compare-and-set conflicts); \
                         answering 409"
                    );
                    return Err(self.conflict(false));
                }
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
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

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
}
