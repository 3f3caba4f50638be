//! [`Record`]: one session as the stores keep it.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::clock::UnixTime;
use crate::error::DataError;
use crate::id::SessionId;

/// One session: its id, its data (a JSON object, read and written through typed accessors),
/// when it was created, when it expires, and its version.
///
/// `version` is the version of the stored copy this record was loaded from (0 for a record
/// that was never stored).
///
/// Cloning is cheap: the data map is reference-counted and shared between clones until one of
/// them changes it ([`data_mut`](Self::data_mut), [`insert`](Self::insert),
/// [`remove`](Self::remove) copy it first if it is shared). So the memory store hands out and
/// keeps records without copying session data. Every successful write stores `version + 1` and updates the record,
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
    #[serde(rename = "d", with = "shared_map")]
    data: Arc<Map<String, Value>>,
}

/// (De)serializes the shared map as a plain map.
mod shared_map {
    use std::sync::Arc;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use serde_json::{Map, Value};

    pub(super) fn serialize<S: Serializer>(
        m: &Arc<Map<String, Value>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        m.as_ref().serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Arc<Map<String, Value>>, D::Error> {
        Map::deserialize(d).map(Arc::new)
    }
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
            data: Arc::new(Map::new()),
        }
    }

    /// A record from its decoded fields (the codec).
    pub(crate) fn from_parts(
        id: SessionId,
        created: UnixTime,
        expires: UnixTime,
        version: u64,
        data: Map<String, Value>,
    ) -> Self {
        Self {
            id,
            created,
            expires,
            version,
            data: Arc::new(data),
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

    /// The raw data map, mutable (copied first if another clone shares it).
    pub fn data_mut(&mut self) -> &mut Map<String, Value> {
        Arc::make_mut(&mut self.data)
    }

    /// Reads `key` as a `T`. `Ok(None)` if the key is absent.
    ///
    /// # Errors
    /// [`DataError`]: the value exists but does not deserialize as `T`.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, DataError> {
        self.data
            .get(key)
            .map(|v| T::deserialize(v).map_err(|e| DataError::read::<T>(key, e)))
            .transpose()
    }

    /// Writes `value` under `key`, returning the previous raw value.
    ///
    /// # Errors
    /// [`DataError`]: `value` does not serialize to JSON (e.g. a map with non-string keys);
    /// the record is unchanged.
    pub fn insert<T: Serialize + ?Sized>(
        &mut self,
        key: &str,
        value: &T,
    ) -> Result<Option<Value>, DataError> {
        let v = serde_json::to_value(value).map_err(|e| DataError::write::<T>(key, e))?;
        Ok(self.data_mut().insert(key.to_owned(), v))
    }

    /// Removes `key`, returning its raw value.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        if self.data.contains_key(key) {
            self.data_mut().remove(key)
        } else {
            None
        }
    }

    #[cfg(any(
        feature = "memory",
        feature = "sqlite",
        feature = "postgres",
        feature = "mysql",
        feature = "memcached",
        feature = "redis"
    ))]
    pub(crate) fn set_id(&mut self, id: SessionId) {
        self.id = id;
    }

    #[cfg(any(
        feature = "memory",
        feature = "cookie",
        feature = "sqlite",
        feature = "postgres",
        feature = "mysql",
        feature = "memcached",
        feature = "redis"
    ))]
    pub(crate) fn set_version(&mut self, v: u64) {
        self.version = v;
    }
}
