//! The [`Session`] handle: one request's view of its session data, recording what the handler
//! changed for the layer to store.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::{DataError, Record, SessionId, Token};

/// One operation of the handler, recorded to be re-applied on a conflict.
#[derive(Clone)]
pub(super) enum Op {
    Set(String, Value),
    Remove(String),
    Clear,
}

/// A session as it came from the store, with the token that loaded it.
#[derive(Clone)]
pub(super) struct Loaded {
    pub(super) record: Record,
    pub(super) token: Token,
}

pub(super) struct State {
    /// The handler's view of the data.
    pub(super) data: Map<String, Value>,
    /// What the store holds (as of load or of the last write by this layer).
    pub(super) loaded: Option<Loaded>,
    /// Operations since `loaded`.
    pub(super) ops: Vec<Op>,
    pub(super) changed: bool,
    pub(super) cycle: bool,
    pub(super) deleted: bool,
    /// The token of a session to delete from the store.
    pub(super) delete_token: Option<Token>,
}

/// The session of one request, found by the inner service in the request's extensions:
/// `req.extensions().get::<Session>()`, or with feature `axum` as an extractor
/// (`async fn handler(session: Session)`).
///
/// Cheap to clone (an `Arc<Mutex<..>>`), `Send` and `Sync`. Reads and writes act on this
/// request's copy; the layer stores the changes after the handler's response (see the
/// [module docs](super)). `Debug` shows neither data nor token.
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
    pub(super) fn new(loaded: Option<Loaded>) -> Self {
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
    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads `key` as a `T`; `Ok(None)` if absent.
    ///
    /// # Errors
    /// [`DataError`]: the value exists but does not deserialize as `T`.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, DataError> {
        self.lock()
            .data
            .get(key)
            .map(|v| T::deserialize(v).map_err(|e| DataError::read::<T>(key, e)))
            .transpose()
    }

    /// Writes `value` under `key`. Writing the value the key already has is not a change.
    ///
    /// # Errors
    /// [`DataError`]: `value` does not serialize to JSON; the session is unchanged.
    pub fn insert<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<(), DataError> {
        let v = serde_json::to_value(value).map_err(|e| DataError::write::<T>(key, e))?;
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

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
}
