//! [`MemoryStore`]: sharded, bounded, in-process sessions with TTL expiry.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::future::{Future, ready};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::clock::{Clock, SystemClock, UnixTime};
use crate::{Record, SessionId, SessionStore, StoreError, Token, fresh_id};

/// Number of shards; a power of two so the shard is a mask of the (random) id.
const SHARDS: usize = 16;
/// How many fresh ids `create` draws before giving up with [`StoreError::Conflict`].
const CREATE_RETRIES: usize = 4;

/// Sessions in process memory: 16 `Mutex<HashMap>` shards chosen by the id's random bits,
/// a bound on the number of sessions ([`StoreError::Full`] beyond it), and expiry read from an
/// injected [`Clock`].
///
/// Records are shared, not copied: `load` returns a clone of the stored [`Record`] and a save
/// keeps a clone of the caller's, and a clone shares the session data (copy on write), so
/// neither copies the data map; the caller's first change to a loaded record copies it once.
///
/// Expired sessions are invisible to `load` at once and are freed by [`sweep`](Self::sweep)
/// (call it periodically, or use `spawn_sweeper` with the `tokio` feature). An expired session
/// still counts towards the bound until swept, but `create` sweeps its shard's expired entries
/// before reporting `Full`.
///
/// Nothing here survives a restart or is shared between processes: use it for one instance,
/// tests, or as the cache tier.
pub struct MemoryStore<C: Clock = SystemClock> {
    shards: Box<[Mutex<HashMap<SessionId, Record>>]>,
    len: AtomicUsize,
    max_sessions: usize,
    clock: C,
}

impl MemoryStore<SystemClock> {
    /// A store on the system clock holding at most `max_sessions` sessions.
    #[must_use]
    pub fn new(max_sessions: usize) -> Self {
        Self::with_clock(max_sessions, SystemClock)
    }
}

impl<C: Clock> MemoryStore<C> {
    /// A store reading time from `clock` (tests pass a [`ManualClock`](crate::ManualClock)).
    #[must_use]
    pub fn with_clock(max_sessions: usize, clock: C) -> Self {
        let shards = (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect();
        Self {
            shards,
            len: AtomicUsize::new(0),
            max_sessions,
            clock,
        }
    }

    /// Sessions held, including expired ones not yet swept.
    #[must_use]
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// `true` if no session is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The configured bound.
    #[must_use]
    pub fn max_sessions(&self) -> usize {
        self.max_sessions
    }

    /// Frees every session expired at `now`; returns how many were removed. Takes one shard
    /// lock at a time, so it never stalls the whole store.
    pub fn sweep(&self, now: UnixTime) -> usize {
        (0..self.shards.len())
            .map(|i| self.sweep_shard(i, now))
            .sum()
    }

    fn sweep_shard(&self, i: usize, now: UnixTime) -> usize {
        let Some(shard) = self.shards.get(i) else {
            return 0;
        };
        let mut map = lock(shard);
        let before = map.len();
        map.retain(|_, r| !r.is_expired(now));
        let removed = before - map.len();
        self.len.fetch_sub(removed, Ordering::Relaxed);
        removed
    }

    fn shard_index(&self, id: &SessionId) -> usize {
        // The mask keeps the index < SHARDS == shards.len().
        (id.shard_hash() as usize) & (SHARDS - 1)
    }

    fn shard(&self, id: &SessionId) -> MutexGuard<'_, HashMap<SessionId, Record>> {
        let i = self.shard_index(id);
        // `shards` has exactly SHARDS entries and `i < SHARDS`; `get` keeps clippy's
        // indexing lint honest and the fallback is unreachable.
        match self.shards.get(i).or_else(|| self.shards.first()) {
            Some(m) => lock(m),
            None => unreachable_empty(),
        }
    }

    /// Reserves one slot of the bound, or reports `Full`.
    fn reserve(&self) -> Result<(), StoreError> {
        self.len
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max_sessions).then_some(n + 1)
            })
            .map(drop)
            .map_err(|_| StoreError::Full {
                max_sessions: self.max_sessions,
            })
    }

    fn create_sync(&self, rec: &mut Record) -> Result<Token, StoreError> {
        let now = self.clock.now();
        let mut id = rec.id();
        for _ in 0..CREATE_RETRIES {
            let mut map = self.shard(&id);
            let taken = map.get(&id).is_some_and(|r| !r.is_expired(now));
            if !taken {
                let replaces_expired = map.contains_key(&id);
                if !replaces_expired && self.reserve().is_err() {
                    // Full: free this shard's expired sessions (under the lock we hold), retry.
                    let before = map.len();
                    map.retain(|_, r| !r.is_expired(now));
                    self.len.fetch_sub(before - map.len(), Ordering::Relaxed);
                    self.reserve()?;
                }
                let mut stored = rec.clone();
                stored.set_id(id);
                stored.set_version(1);
                map.insert(id, stored);
                rec.set_id(id);
                rec.set_version(1);
                return Ok(Token::from(id));
            }
            drop(map);
            id = fresh_id()?;
        }
        Err(StoreError::Conflict)
    }

    fn write_sync(&self, rec: &mut Record, check: bool) -> Result<Token, StoreError> {
        let now = self.clock.now();
        let id = rec.id();
        // Built before taking the lock; cloning the record only bumps its data's refcount.
        let token = Token::from(id);
        let mut stored = rec.clone();
        let mut map = self.shard(&id);
        // One hash of the id for the lookup and the write.
        let (new_version, replaced) = match map.entry(id) {
            Entry::Occupied(mut e) => {
                let found = Some(e.get())
                    .filter(|r| !r.is_expired(now))
                    .map(Record::version);
                if check && found != Some(rec.version()) {
                    return Err(StoreError::VersionMismatch {
                        expected: rec.version(),
                        found,
                    });
                }
                let v = found.unwrap_or(0).max(rec.version()).saturating_add(1);
                stored.set_version(v);
                (v, Some(e.insert(stored)))
            }
            Entry::Vacant(e) => {
                if check {
                    return Err(StoreError::VersionMismatch {
                        expected: rec.version(),
                        found: None,
                    });
                }
                self.reserve()?;
                let v = rec.version().saturating_add(1);
                stored.set_version(v);
                e.insert(stored);
                (v, None)
            }
        };
        drop(map);
        // The replaced record (possibly the last owner of its data) is freed outside the lock.
        drop(replaced);
        rec.set_version(new_version);
        Ok(token)
    }

    fn load_sync(&self, token: &Token) -> Option<Record> {
        let id = SessionId::parse(token.as_str().as_bytes()).ok()?;
        let now = self.clock.now();
        self.shard(&id)
            .get(&id)
            .filter(|r| !r.is_expired(now))
            .cloned()
    }

    fn delete_sync(&self, token: &Token) {
        if let Ok(id) = SessionId::parse(token.as_str().as_bytes())
            && self.shard(&id).remove(&id).is_some()
        {
            self.len.fetch_sub(1, Ordering::Relaxed);
        }
    }

    fn touch_sync(&self, token: &Token, expires: UnixTime) -> Option<Token> {
        let id = SessionId::parse(token.as_str().as_bytes()).ok()?;
        let now = self.clock.now();
        let mut map = self.shard(&id);
        let rec = map.get_mut(&id).filter(|r| !r.is_expired(now))?;
        rec.set_expires(expires);
        Some(Token::from(id))
    }
}

#[cfg(feature = "tokio")]
impl<C: Clock> MemoryStore<C> {
    /// Spawns a tokio task that calls [`sweep`](Self::sweep) every `period` until the store's
    /// last other `Arc` is dropped. Must be called inside a tokio runtime.
    pub fn spawn_sweeper(
        self: &std::sync::Arc<Self>,
        period: std::time::Duration,
    ) -> tokio::task::JoinHandle<()> {
        let weak = std::sync::Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            loop {
                tick.tick().await;
                let Some(store) = weak.upgrade() else { break };
                store.sweep(store.clock.now());
            }
        })
    }
}

impl<C: Clock> std::fmt::Debug for MemoryStore<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("len", &self.len())
            .field("max_sessions", &self.max_sessions)
            .finish_non_exhaustive()
    }
}

/// Locks a shard. A poisoned lock is taken over: no code path panics while holding one, and
/// every mutation leaves the map consistent.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cold]
fn unreachable_empty() -> ! {
    // `with_clock` always builds SHARDS (> 0) shards.
    unreachable!("MemoryStore has no shards")
}

impl<C: Clock> SessionStore for MemoryStore<C> {
    const SERVER_SIDE: bool = true;

    fn create(&self, rec: &mut Record) -> impl Future<Output = Result<Token, StoreError>> + Send {
        ready(self.create_sync(rec))
    }

    fn save(&self, rec: &mut Record) -> impl Future<Output = Result<Token, StoreError>> + Send {
        ready(self.write_sync(rec, false))
    }

    fn compare_and_save(
        &self,
        rec: &mut Record,
    ) -> impl Future<Output = Result<Token, StoreError>> + Send {
        ready(self.write_sync(rec, true))
    }

    fn load(
        &self,
        token: &Token,
    ) -> impl Future<Output = Result<Option<Record>, StoreError>> + Send {
        ready(Ok(self.load_sync(token)))
    }

    fn delete(&self, token: &Token) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.delete_sync(token);
        ready(Ok(()))
    }

    fn touch(
        &self,
        token: &Token,
        expires: UnixTime,
    ) -> impl Future<Output = Result<Option<Token>, StoreError>> + Send {
        ready(Ok(self.touch_sync(token, expires)))
    }
}
