//! [`Record`]: one session as the stores keep it.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::clock::UnixTime;
use crate::id::SessionId;

/// One session: its id, its data (a JSON object, read and written through typed accessors),
/// when it was created, when it expires, and its version.
///
/// `version` is the version of the stored copy this record was loaded from (0 for a record
/// that was never stored). Every successful write stores `version + 1` and updates the record,
/// so [`SessionStore::compare_and_save`](crate::SessionStore::compare_and_save) can tell whether
/// somebody else wrote in between.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    #[serde(rename = "i")]
    id: SessionId,
    #[serde(rename = "c")]
    created: UnixTime,
    #[serde(rename = "e")]
    expires: UnixTime,
    #[serde(rename = "v")]
    version: u64,
    #[serde(rename = "d")]
    data: Map<String, Value>,
}

impl Record {
    /// A new, empty, never-stored session created at `now` that expires `ttl` later.
    #[must_use]
    pub fn new(id: SessionId, now: UnixTime, ttl: Duration) -> Self {
        Self {
            id,
            created: now,
            expires: now.saturating_add(ttl),
            version: 0,
            data: Map::new(),
        }
    }

    /// The session's id.
    #[must_use]
    pub fn id(&self) -> SessionId {
        self.id
    }

    /// Creation time.
    #[must_use]
    pub fn created(&self) -> UnixTime {
        self.created
    }

    /// Expiry time: stores treat the session as absent from this instant on.
    #[must_use]
    pub fn expires(&self) -> UnixTime {
        self.expires
    }

    /// Sets the expiry; takes effect at the next save.
    pub fn set_expires(&mut self, at: UnixTime) {
        self.expires = at;
    }

    /// Sets the expiry to `now + ttl`; takes effect at the next save.
    pub fn set_ttl(&mut self, now: UnixTime, ttl: Duration) {
        self.expires = now.saturating_add(ttl);
    }

    /// `true` once `now` has reached the expiry.
    #[must_use]
    pub fn is_expired(&self, now: UnixTime) -> bool {
        now >= self.expires
    }

    /// The version of the stored copy this record came from (0: never stored).
    #[must_use]
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The raw data map.
    #[must_use]
    pub fn data(&self) -> &Map<String, Value> {
        &self.data
    }

    /// The raw data map, mutable.
    pub fn data_mut(&mut self) -> &mut Map<String, Value> {
        &mut self.data
    }

    /// Reads `key` as a `T`. `Ok(None)` if the key is absent.
    ///
    /// # Errors
    /// The value exists but does not deserialize as `T`.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, serde_json::Error> {
        self.data.get(key).map(|v| T::deserialize(v)).transpose()
    }

    /// Writes `value` under `key`, returning the previous raw value.
    ///
    /// # Errors
    /// `value` does not serialize to JSON (e.g. a map with non-string keys); the record is
    /// unchanged.
    pub fn insert<T: Serialize + ?Sized>(
        &mut self,
        key: &str,
        value: &T,
    ) -> Result<Option<Value>, serde_json::Error> {
        let v = serde_json::to_value(value)?;
        Ok(self.data.insert(key.to_owned(), v))
    }

    /// Removes `key`, returning its raw value.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        self.data.remove(key)
    }

    #[cfg(any(
        feature = "memory",
        feature = "sqlite",
        feature = "postgres",
        feature = "mysql"
    ))]
    pub(crate) fn set_id(&mut self, id: SessionId) {
        self.id = id;
    }

    #[cfg(any(
        feature = "memory",
        feature = "cookie",
        feature = "sqlite",
        feature = "postgres",
        feature = "mysql"
    ))]
    pub(crate) fn set_version(&mut self, v: u64) {
        self.version = v;
    }
}
