//! [`MemcachedStore`] (feature `memcached`): sessions on several memcached servers, placed on a
//! libmemcached-compatible ketama ring, with CAS-checked writes, optional replicas and ejection
//! of dead servers.
//!
//! * **Placement.** The key `prefix + session id` goes to the server that libmemcached picks
//!   with the configured [`Distribution`] and server weights, so a libmemcached client of the
//!   same servers with the matching setting finds it: see [Placement](#placement) below. With
//!   `replicas(r)` it is also written to the next `r - 1` distinct servers clockwise.
//! * **Versions.** The value is the record in the crate's [`codec`] encoding,
//!   version and expiry included. `compare_and_save` reads it with `gets`, checks the version
//!   and writes with a meta set compared against the CAS unique read (`ms … C<unique>`), so a
//!   write in between (memcached's CAS unique changed) makes it re-read: no lost update across
//!   any number of application servers. `create` is an add-mode meta set (`ME`).
//! * **One round trip per save.** Every write asks for the item's new CAS unique (flag `c`),
//!   and without replicas the store remembers, for the sessions it recently read or wrote,
//!   the copy and unique it saw. A `save`, `compare_and_save` or `touch` then starts from that
//!   copy and sends only the CAS-checked write: if nothing else wrote the session meanwhile it
//!   lands, otherwise the server refuses it (`EX`) and the store reads and decides as above. A
//!   version mismatch or a missing session is never reported from the remembered copy alone.
//!   The meta protocol needs memcached 1.6 or later (Debian 12 has 1.6.18).
//! * **Expiry** follows the store's [`Clock`]: the expiry inside the value decides. The
//!   memcached `exptime` (remaining lifetime plus a grace period) only makes memcached drop the
//!   item eventually, so application servers' clocks may differ a little from memcached's.
//! * **Failures.** A server that fails `failure_limit` requests in a row (connection refused or
//!   reset, timeout) is ejected: it leaves the ring, so its keys move to the next server (where
//!   the replicas are), as libmemcached's auto-eject does. After `retry_after` it is tried
//!   again; one more failure ejects it again, one success takes it back.
//! * **Replicas.** Writes go to the primary first (its `cas` decides), then to each replica
//!   with a version check of their own (a replica only ever moves to a newer version, so
//!   concurrent writers cannot leave it older than the primary). Reads ask every replica and
//!   take the newest live copy; writes repair a primary that lost the session (a restarted
//!   server comes back empty). A write is acknowledged once the primary stored it; a replica
//!   that is down at that moment misses it.
//!
//! # Placement
//!
//! The three distributions are libmemcached's consistent ("ketama") continuum; set the one the
//! other clients use with [`MemcachedOptions::distribution`], the weights with
//! [`MemcachedOptions::weighted`] (weight 0 counts as 1, as in libmemcached):
//!
//! | [`Distribution`] | libmemcached | pylibmc | PHP `memcached` extension |
//! |---|---|---|---|
//! | `KetamaWeighted` (default) | `MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED` | `behaviors={"ketama_weighted": True}` | `Memcached::OPT_LIBKETAMA_COMPATIBLE` |
//! | `Ketama` | `MEMCACHED_BEHAVIOR_KETAMA`, or distribution `MEMCACHED_DISTRIBUTION_CONSISTENT`, set before the servers are added | `behaviors={"ketama": True}` or `{"distribution": "consistent"}` | `Memcached::OPT_DISTRIBUTION` = `DISTRIBUTION_CONSISTENT`, or `memcached.default_consistent_hash = On` |
//! | `ConsistentWeighted` | distribution `MEMCACHED_DISTRIBUTION_CONSISTENT_WEIGHTED` | `behaviors={"distribution": "consistent weighted"}` | — |
//!
//! `KetamaWeighted` hashes keys with MD5 and gives each server `4 × ⌊w/W × 40 × n⌋` points
//! computed in `f32` as libmemcached does (25 equal servers get 156 points each, not 160; a
//! fixed 160 would put about 2 % of such a ring's keys on another server). `Ketama` hashes keys
//! with libmemcached's default one-at-a-time hash and gives every server 100 points; a server
//! weight above 1 switches libmemcached, and this store, to the weighted points (keeping the
//! one-at-a-time key hash). `ConsistentWeighted` is that combination whatever the weights.
//! The hosts' spelling and the order of the list are part of the ring.
//!
//! **Checked** against pylibmc 1.6.3 on libmemcached 1.1.4 (Debian 12) with real memcached
//! servers: 20 random server lists per distribution (1–64 servers in random order, weights
//! 0–65,535; `Ketama` selected both ways), per list 2,000 keys written by pylibmc and 2,000
//! sessions written by this store, each found by reading every server directly on exactly the
//! server the other side expects (120,000 + 120,000 keys), and pylibmc reads back every
//! session (`CI=true cargo test -p session-store --all-features --test memcached placement --
//! --nocapture` prints these figures and the random start it used). Each server's point count matches libmemcached's own continuum for
//! 1,400 weight lists (`tests/data/libmemcached_points.txt`, made by
//! `tests/data/libmemcached_points.c`). PHP is not run by the tests: its rows name the
//! libmemcached behaviour the extension sets.
//!
//! **Not matched:**
//! * libmemcached's default distribution (modula: pylibmc or PHP without a ketama setting),
//!   `CONSISTENT_KETAMA_SPY`, random and virtual-bucket distributions, a `hash` or `ketama_hash`
//!   behaviour other than the default, and sorted hosts (`_sort_hosts`).
//! * A libmemcached namespace (PHP's `Memcached::OPT_PREFIX_KEY`): libmemcached leaves it out of
//!   the key's hash, this store hashes the whole key, prefix included.
//! * PHP's session handler (`session.save_handler = memcached`): with
//!   `memcached.sess_consistent_hash` on it sets `MEMCACHED_BEHAVIOR_KETAMA` (or
//!   `KETAMA_WEIGHTED` with `memcached.sess_consistent_hash_type = ketama_weighted`) after
//!   adding the servers, so it ignores weights with `ketama`; it hashes the session id without
//!   `memcached.sess_prefix` and stores PHP-serialized data, so it cannot share sessions with
//!   this store.
//! * Ejection: libmemcached rebuilds its continuum from the live servers, which with weighted
//!   points changes every live server's point count; this store keeps the live servers' points
//!   (so replicas stay where they are), and only the ejected server's keys move. The two agree
//!   again once every server is back.
//! * libmemcached 1.1.4 aborts on an assertion with more than 100 servers on a consistent
//!   distribution; this store has no such limit.

mod proto;
mod ring;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

pub use proto::ProtocolError;
use proto::Reply;
pub use ring::Distribution;
use ring::Ring;

use crate::clock::{Clock, SystemClock, UnixTime};
use crate::{Record, SessionId, StoreError, Token, codec};

#[cfg(feature = "fuzzing")]
pub(crate) use proto::check_parser;

/// memcached's longest key.
pub const MAX_KEY_LEN: usize = 250;
/// memcached treats relative expiry times above 30 days as absolute Unix times.
const MAX_RELATIVE_EXPTIME: u64 = 30 * 24 * 3600;
/// How many ids `create` tries before giving up with [`StoreError::Conflict`].
const CREATE_RETRIES: usize = 4;
/// How many rounds a write makes when its `cas` keeps losing to other writers.
const WRITE_RETRIES: u32 = 64;
/// Idle connections kept per server. At least the number of operations an application server
/// runs at once: with 16, 64 concurrent tasks made up to 48 requests at a time open and close a
/// TCP connection each, and `save` at concurrency 64 ran at a fifth of memcslap's `set` rate
/// (examples/loadgen.rs). An idle connection costs memcached a few KiB.
const MAX_IDLE: usize = 128;

/// Why a memcached operation failed, naming the server.
///
/// Session operations return [`StoreError`]; it wraps one of these as
/// [`StoreError::Unavailable`] (`Io`, `Timeout`, `AllEjected`: retry or fail over) or
/// [`StoreError::Backend`] (anything else).
#[non_exhaustive]
#[derive(thiserror::Error, Debug)]
pub enum MemcachedError {
    /// The server list is empty.
    #[error("no memcached servers configured: give at least one \"host:port\"")]
    NoServers,
    /// A server is not written `host:port`.
    #[error("memcached server {addr:?} is not \"host:port\" with a port number 1-65535")]
    BadAddress {
        /// The text given.
        addr: String,
    },
    /// A server is listed twice.
    #[error("memcached server {addr} is listed twice")]
    DuplicateServer {
        /// The repeated address.
        addr: String,
    },
    /// The key prefix would make keys memcached refuses.
    #[error(
        "key prefix {prefix:?} is not allowed: printable ASCII without spaces, at most {max} bytes"
    )]
    BadPrefix {
        /// The prefix given.
        prefix: String,
        /// The longest prefix allowed (memcached's 250-byte key limit minus the id).
        max: usize,
    },
    /// `replicas` is 0 or more than the number of servers on the ring (a server whose weight
    /// is too small a share to earn a point is not on it).
    #[error(
        "replicas must be between 1 and the number of servers on the ring ({servers}), got {replicas}"
    )]
    Replicas {
        /// The value given.
        replicas: usize,
        /// The number of servers on the ring.
        servers: usize,
    },
    /// Connecting, sending or receiving failed: the server is down or unreachable. Repeated
    /// failures eject it; retry (the next attempt may go to another server).
    #[error("memcached {server}: {op} failed on the connection")]
    Io {
        /// `host:port`.
        server: String,
        /// The store operation.
        op: &'static str,
        /// The socket error.
        #[source]
        source: std::io::Error,
    },
    /// No complete reply within the I/O timeout: the server hangs or the network drops packets.
    #[error("memcached {server}: {op} got no reply within {timeout:?}")]
    Timeout {
        /// `host:port`.
        server: String,
        /// The store operation.
        op: &'static str,
        /// The configured I/O timeout.
        timeout: Duration,
    },
    /// The reply is not the memcached text protocol: check the address points at memcached.
    #[error("memcached {server}: {op}: malformed reply")]
    Protocol {
        /// `host:port`.
        server: String,
        /// The store operation.
        op: &'static str,
        /// What is wrong with it.
        #[source]
        source: ProtocolError,
    },
    /// The server refused the command (`ERROR`, `CLIENT_ERROR`, `SERVER_ERROR`, e.g. out of
    /// memory or an item larger than its `-I` limit).
    #[error("memcached {server}: {op} refused: {reply} {message}")]
    Refused {
        /// `host:port`.
        server: String,
        /// The store operation.
        op: &'static str,
        /// `ERROR`, `CLIENT_ERROR` or `SERVER_ERROR`.
        reply: &'static str,
        /// The server's message.
        message: String,
    },
    /// Every server is ejected after failures. Check the servers; they are retried after the
    /// retry delay.
    #[error("every memcached server is ejected after failures; retry after the retry delay")]
    AllEjected,
    /// A stored value is not a record this crate can decode: another program wrote the key, or
    /// a newer incompatible version of the crate did. Delete the key or change the prefix.
    #[error("memcached {server}: stored session cannot be decoded")]
    Corrupt {
        /// `host:port`.
        server: String,
        /// The decoder's error.
        #[source]
        source: codec::Error,
    },
    /// A write lost its `cas` to other writers of the same session this many times in a row.
    /// Retry later, or write the session less often.
    #[error("{op} gave up after {attempts} rounds of concurrent writes to the same session")]
    Contention {
        /// The store operation.
        op: &'static str,
        /// Rounds attempted.
        attempts: u32,
    },
}

impl MemcachedError {
    fn into_store(self) -> StoreError {
        if matches!(
            self,
            Self::Io { .. } | Self::Timeout { .. } | Self::AllEjected
        ) {
            StoreError::Unavailable(Box::new(self))
        } else {
            StoreError::Backend(Box::new(self))
        }
    }
}

impl From<MemcachedError> for StoreError {
    fn from(e: MemcachedError) -> Self {
        e.into_store()
    }
}

/// Settings of a [`MemcachedStore`]; start from [`MemcachedOptions::new`].
#[derive(Clone, Debug)]
pub struct MemcachedOptions {
    /// `host:port` and weight, in configuration order.
    servers: Vec<(String, u32)>,
    distribution: Distribution,
    replicas: usize,
    failure_limit: u32,
    retry_after: Duration,
    io_timeout: Duration,
    key_prefix: String,
    max_value_size: usize,
    expiry_grace: Duration,
}

impl MemcachedOptions {
    /// The servers, as `"host:port"` (IPv6: `"[::1]:11211"`), and defaults: 1 copy of each
    /// session, eject after 2 consecutive failures, retry after 2 s, 1 s I/O timeout, key
    /// prefix `"session:"`, values up to 1 MiB − 1 KiB (memcached's default item size limit
    /// less room for the item header), 60 s expiry grace.
    ///
    /// Every server has weight 1 and keys are placed by [`Distribution::KetamaWeighted`]. The
    /// host text and the order of the list are part of the ring (as in libmemcached): give
    /// every client the same spelling of the same servers, in the same order.
    #[must_use]
    pub fn new<S: Into<String>>(servers: impl IntoIterator<Item = S>) -> Self {
        Self::weighted(servers.into_iter().map(|s| (s, 1)))
    }

    /// The servers with their weights, as `("host:port", weight)`, and the defaults of
    /// [`new`](Self::new). With [`Distribution::KetamaWeighted`] a server's share of the keys
    /// follows its share of the total weight (the weights libmemcached is given:
    /// `memcached_server_add_with_weight`, pylibmc's `"host:port:weight"`). A weight of 0
    /// counts as 1, as in libmemcached. A server whose share is too small for one point of the
    /// ring (below about 1/40 of the average weight) gets no keys, as in libmemcached.
    ///
    /// ```
    /// use session_store::MemcachedOptions;
    /// // The first server has twice the memory of the others.
    /// let opts = MemcachedOptions::weighted([
    ///     ("10.0.0.1:11211", 2),
    ///     ("10.0.0.2:11211", 1),
    ///     ("10.0.0.3:11211", 1),
    /// ]);
    /// ```
    #[must_use]
    pub fn weighted<S: Into<String>>(servers: impl IntoIterator<Item = (S, u32)>) -> Self {
        Self {
            servers: servers
                .into_iter()
                .map(|(addr, weight)| (addr.into(), weight))
                .collect(),
            distribution: Distribution::default(),
            replicas: 1,
            failure_limit: 2,
            retry_after: Duration::from_secs(2),
            io_timeout: Duration::from_secs(1),
            key_prefix: "session:".to_owned(),
            max_value_size: 1024 * 1024 - 1024,
            expiry_grace: Duration::from_secs(60),
        }
    }

    /// How keys are placed: the libmemcached distribution the other clients of these servers
    /// use (the [module docs](self) name the client setting each one matches). Default:
    /// [`Distribution::KetamaWeighted`].
    #[must_use]
    pub fn distribution(mut self, distribution: Distribution) -> Self {
        self.distribution = distribution;
        self
    }

    /// Write every session to `n` distinct servers (the primary and the next `n - 1` on the
    /// ring), so up to `n - 1` servers can die without losing sessions.
    #[must_use]
    pub fn replicas(mut self, n: usize) -> Self {
        self.replicas = n;
        self
    }

    /// Eject a server after this many consecutive failures (at least 1).
    #[must_use]
    pub fn failure_limit(mut self, n: u32) -> Self {
        self.failure_limit = n.max(1);
        self
    }

    /// How long an ejected server stays out of the ring before it is tried again.
    #[must_use]
    pub fn retry_after(mut self, d: Duration) -> Self {
        self.retry_after = d;
        self
    }

    /// The time one request (connect, send, whole reply) may take.
    #[must_use]
    pub fn io_timeout(mut self, d: Duration) -> Self {
        self.io_timeout = d;
        self
    }

    /// The prefix of every key (printable ASCII, no spaces), to share servers with other data.
    #[must_use]
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self
    }

    /// The largest encoded session written; larger ones are [`StoreError::TooLarge`]. Match the
    /// servers' `-I` item size limit.
    #[must_use]
    pub fn max_value_size(mut self, bytes: usize) -> Self {
        self.max_value_size = bytes;
        self
    }

    /// How long past a session's expiry memcached keeps the item (the store's clock decides
    /// expiry; this only has to cover clock differences between hosts).
    #[must_use]
    pub fn expiry_grace(mut self, d: Duration) -> Self {
        self.expiry_grace = d;
        self
    }
}

/// One connection with the bytes received but not yet parsed.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

#[derive(Debug, Default)]
struct Health {
    failures: u32,
    ejected_until: Option<Instant>,
}

struct Node {
    addr: String,
    host: String,
    port: u16,
    idle: Mutex<Vec<Conn>>,
    health: Mutex<Health>,
}

impl Node {
    fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Conn>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn usable(&self, now: Instant) -> bool {
        self.health().ejected_until.is_none_or(|t| now >= t)
    }
}

/// What went wrong inside one request, before it is attributed to a server.
enum Fail {
    Io(std::io::Error),
    Protocol(ProtocolError),
}

/// Sessions on memcached servers; see the [module docs](self) for placement, versions,
/// expiry, replicas and ejection.
///
/// Connections are opened on first use and pooled per server, so [`new`](Self::new) does no
/// I/O and the store can be built before the servers are up.
pub struct MemcachedStore<C: Clock = SystemClock> {
    nodes: Vec<Node>,
    ring: Ring,
    opts: MemcachedOptions,
    clock: C,
    hints: Mutex<Hints>,
}

/// The last copy of each recently read or written session that this store saw on its server,
/// with that server's index and the item's CAS unique (kept only with `replicas(1)`, at most
/// [`MAX_HINTS`] entries, all dropped when full). A write starts from it instead of reading
/// the session first, and the server's CAS check refuses the write if the item changed since:
/// the usual load-then-save of a request, and repeated saves, take one round trip each.
type Hints = HashMap<String, (usize, Record, u64)>;

/// How many sessions [`Hints`] remembers before it starts over.
const MAX_HINTS: usize = 4096;

/// Splits `host:port` (or `[v6]:port`).
fn parse_addr(addr: &str) -> Option<(String, u16)> {
    let (host, port) = addr.rsplit_once(':')?;
    let port: u16 = port.parse().ok().filter(|&p| p != 0)?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    (!host.is_empty() && !host.contains(char::is_whitespace)).then(|| (host.to_owned(), port))
}

impl<C: Clock> MemcachedStore<C> {
    /// A store on `opts`' servers, reading time from `clock`. No I/O happens here.
    ///
    /// # Errors
    /// [`MemcachedError::NoServers`], [`BadAddress`](MemcachedError::BadAddress),
    /// [`DuplicateServer`](MemcachedError::DuplicateServer),
    /// [`BadPrefix`](MemcachedError::BadPrefix) or [`Replicas`](MemcachedError::Replicas).
    pub fn new(opts: MemcachedOptions, clock: C) -> Result<Self, MemcachedError> {
        if opts.servers.is_empty() {
            return Err(MemcachedError::NoServers);
        }
        let mut parsed: Vec<(String, u16, u32)> = Vec::with_capacity(opts.servers.len());
        for (addr, weight) in &opts.servers {
            let (host, port) = parse_addr(addr)
                .ok_or_else(|| MemcachedError::BadAddress { addr: addr.clone() })?;
            if parsed.iter().any(|(h, p, _)| *h == host && *p == port) {
                return Err(MemcachedError::DuplicateServer { addr: addr.clone() });
            }
            parsed.push((host, port, *weight));
        }
        let max = MAX_KEY_LEN - crate::ID_TEXT_LEN;
        let p = &opts.key_prefix;
        if p.len() > max || !p.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(MemcachedError::BadPrefix {
                prefix: p.clone(),
                max,
            });
        }
        let ring = Ring::new(&parsed, opts.distribution);
        let on_ring = ring.servers_on_ring();
        if opts.replicas == 0 || opts.replicas > on_ring {
            return Err(MemcachedError::Replicas {
                replicas: opts.replicas,
                servers: on_ring,
            });
        }
        let nodes = opts
            .servers
            .iter()
            .zip(parsed)
            .map(|((addr, _), (host, port, _))| Node {
                addr: addr.clone(),
                host,
                port,
                idle: Mutex::new(Vec::new()),
                health: Mutex::new(Health::default()),
            })
            .collect();
        Ok(Self {
            nodes,
            ring,
            opts,
            clock,
            hints: Mutex::new(HashMap::new()),
        })
    }

    /// The store's clock.
    #[must_use]
    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// The memcached key of session `id`: the prefix, then the id's 22 characters.
    #[must_use]
    pub fn key_for(&self, id: SessionId) -> String {
        format!("{}{id}", self.opts.key_prefix)
    }

    /// Every server on the ring in ring order for the raw memcached `key`, ignoring
    /// ejections: the first is where libmemcached puts the key (with the configured
    /// [`Distribution`]).
    #[must_use]
    pub fn ring_order(&self, key: &[u8]) -> Vec<&str> {
        self.ring
            .walk(key, self.nodes.len(), |_| true)
            .into_iter()
            .filter_map(|i| self.nodes.get(i).map(|n| n.addr.as_str()))
            .collect()
    }

    /// The servers that hold the session `token` names right now (primary first, ejected
    /// servers skipped); empty for a malformed token or when every server is ejected.
    #[must_use]
    pub fn servers_for(&self, token: &Token) -> Vec<&str> {
        let Ok(id) = SessionId::parse(token.as_str().as_bytes()) else {
            return Vec::new();
        };
        self.targets(&self.key_for(id))
            .unwrap_or_default()
            .into_iter()
            .filter_map(|i| self.nodes.get(i).map(|n| n.addr.as_str()))
            .collect()
    }

    /// The servers currently ejected (out of the ring until their retry time).
    #[must_use]
    pub fn ejected(&self) -> Vec<&str> {
        let now = Instant::now();
        self.nodes
            .iter()
            .filter(|n| !n.usable(now))
            .map(|n| n.addr.as_str())
            .collect()
    }

    fn targets(&self, key: &str) -> Result<Vec<usize>, MemcachedError> {
        let now = Instant::now();
        let t = self.ring.walk(key.as_bytes(), self.opts.replicas, |i| {
            self.nodes.get(i).is_some_and(|n| n.usable(now))
        });
        if t.is_empty() {
            Err(MemcachedError::AllEjected)
        } else {
            Ok(t)
        }
    }

    fn node(&self, i: usize) -> Result<&Node, MemcachedError> {
        // Indices come from the ring, which was built from `nodes`.
        self.nodes.get(i).ok_or(MemcachedError::AllEjected)
    }

    /// The `exptime` for an item expiring at `expires` by the store's clock: the remaining
    /// lifetime plus the grace period, relative (absolute past memcached's 30-day limit,
    /// 0 = never if even that does not fit).
    fn exptime(&self, expires: UnixTime) -> u32 {
        let remaining = expires.as_secs().saturating_sub(self.clock.now().as_secs());
        let secs = remaining
            .saturating_add(self.opts.expiry_grace.as_secs())
            .max(1);
        if secs <= MAX_RELATIVE_EXPTIME {
            return u32::try_from(secs).unwrap_or(0);
        }
        let abs = SystemClock.now().as_secs().saturating_add(secs);
        // memcached reads exptime as a signed 32-bit number.
        i32::try_from(abs)
            .ok()
            .and_then(|a| u32::try_from(a).ok())
            .unwrap_or(0)
    }

    /// Sends `cmd` to server `i` and reads one reply, keeping the server's health.
    async fn request(
        &self,
        i: usize,
        op: &'static str,
        cmd: &[u8],
    ) -> Result<Reply, MemcachedError> {
        let node = self.node(i)?;
        let max_value = self.opts.max_value_size.max(1024 * 1024);
        let pooled = node.idle().pop();
        let exchange = async {
            let mut conn = match pooled {
                Some(c) => c,
                None => {
                    let stream = TcpStream::connect((node.host.as_str(), node.port))
                        .await
                        .map_err(Fail::Io)?;
                    stream.set_nodelay(true).map_err(Fail::Io)?;
                    Conn {
                        stream,
                        buf: Vec::new(),
                    }
                }
            };
            conn.stream.write_all(cmd).await.map_err(Fail::Io)?;
            let mut chunk = [0_u8; 8192];
            loop {
                if let Some((reply, n)) =
                    proto::parse_reply(&conn.buf, max_value).map_err(Fail::Protocol)?
                {
                    conn.buf.drain(..n);
                    return Ok((reply, conn));
                }
                let n = conn.stream.read(&mut chunk).await.map_err(Fail::Io)?;
                if n == 0 {
                    return Err(Fail::Io(std::io::ErrorKind::UnexpectedEof.into()));
                }
                conn.buf
                    .extend_from_slice(chunk.get(..n).unwrap_or_default());
            }
        };
        let server = || node.addr.clone();
        match tokio::time::timeout(self.opts.io_timeout, exchange).await {
            Ok(Ok((reply, conn))) => {
                *node.health() = Health::default();
                let mut idle = node.idle();
                if conn.buf.is_empty() && idle.len() < MAX_IDLE {
                    idle.push(conn);
                }
                match reply {
                    Reply::Error => Err(MemcachedError::Refused {
                        server: server(),
                        op,
                        reply: "ERROR",
                        message: String::new(),
                    }),
                    Reply::ClientError(message) | Reply::ServerError(message) => {
                        Err(MemcachedError::Refused {
                            server: server(),
                            op,
                            reply: "SERVER_ERROR or CLIENT_ERROR",
                            message,
                        })
                    }
                    other => Ok(other),
                }
            }
            Ok(Err(Fail::Protocol(source))) => Err(MemcachedError::Protocol {
                server: server(),
                op,
                source,
            }),
            Ok(Err(Fail::Io(source))) => {
                self.failed(node);
                Err(MemcachedError::Io {
                    server: server(),
                    op,
                    source,
                })
            }
            Err(_elapsed) => {
                self.failed(node);
                Err(MemcachedError::Timeout {
                    server: server(),
                    op,
                    timeout: self.opts.io_timeout,
                })
            }
        }
    }

    /// Counts a failure; ejects the server at the limit. Pooled connections to it are dropped
    /// (after a crash they are all dead, and a revived server must not meet them).
    fn failed(&self, node: &Node) {
        node.idle().clear();
        let mut h = node.health();
        h.failures = h.failures.saturating_add(1);
        if h.failures >= self.opts.failure_limit {
            h.ejected_until = Some(Instant::now() + self.opts.retry_after);
        }
    }

    /// `gets key` on server `i`: the decoded record and its CAS unique.
    async fn gets(
        &self,
        i: usize,
        op: &'static str,
        key: &str,
    ) -> Result<Option<(Record, u64)>, MemcachedError> {
        let mut cmd = Vec::with_capacity(key.len() + 8);
        proto::keyed(&mut cmd, "gets", key);
        let reply = self.request(i, op, &cmd).await?;
        let node = self.node(i)?;
        let unexpected = |reply: &'static str| MemcachedError::Protocol {
            server: node.addr.clone(),
            op,
            source: ProtocolError::Unexpected { op: "gets", reply },
        };
        let Reply::Values(mut items) = reply else {
            return Err(unexpected(reply.name()));
        };
        let Some(item) = items.pop() else {
            self.forget(key);
            return Ok(None);
        };
        match (items.is_empty(), item.cas) {
            (true, Some(cas)) if item.key == key.as_bytes() => {
                let rec = codec::decode(&item.data).map_err(|source| MemcachedError::Corrupt {
                    server: node.addr.clone(),
                    source,
                })?;
                self.remember(i, key, &rec, cas);
                Ok(Some((rec, cas)))
            }
            _ => Err(unexpected("VALUE for another key or without CAS")),
        }
    }

    /// Stores `value`, the encoding of `rec`, on server `i` with a meta set: only if the item's
    /// CAS unique is still `cas`, or with `None` only if the key is absent (like `cas` / `add`).
    /// Returns
    /// [`Reply::Stored`] with the item's new unique, or the reply that refused it
    /// ([`Reply::Exists`], [`Reply::NotFound`], [`Reply::NotStored`]) with `None`.
    async fn put(
        &self,
        i: usize,
        op: &'static str,
        key: &str,
        rec: &Record,
        value: &[u8],
        cas: Option<u64>,
    ) -> Result<(Reply, Option<u64>), MemcachedError> {
        let mut cmd = Vec::with_capacity(key.len() + value.len() + 64);
        proto::meta_set(&mut cmd, key, self.exptime(rec.expires()), value, cas);
        let reply = self.request(i, op, &cmd).await;
        if !matches!(reply, Ok(Reply::Hd(Some(_)))) {
            self.forget(key);
        }
        match reply? {
            Reply::Hd(unique) => {
                if let Some(u) = unique {
                    self.remember(i, key, rec, u);
                }
                Ok((Reply::Stored, unique))
            }
            reply @ (Reply::NotStored | Reply::Exists | Reply::NotFound) => Ok((reply, None)),
            other => Err(MemcachedError::Protocol {
                server: self.node(i)?.addr.clone(),
                op,
                source: ProtocolError::Unexpected {
                    op: "ms",
                    reply: other.name(),
                },
            }),
        }
    }

    /// Remembers that server `i` holds `rec` under `key` with CAS unique `cas` (from a read or
    /// a write of this store), so the next write of `key` can skip its read: see [`Hints`].
    fn remember(&self, i: usize, key: &str, rec: &Record, cas: u64) {
        if self.opts.replicas > 1 {
            return;
        }
        let mut hints = self
            .hints
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if hints.len() >= MAX_HINTS && !hints.contains_key(key) {
            hints.clear();
        }
        hints.insert(key.to_owned(), (i, rec.clone(), cas));
    }

    fn forget(&self, key: &str) {
        if self.opts.replicas > 1 {
            return;
        }
        self.hints
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(key);
    }

    /// The remembered copy of `key` on server `i`, if any.
    fn hint(&self, i: usize, key: &str) -> Option<(Record, u64)> {
        if self.opts.replicas > 1 {
            return None;
        }
        let hints = self
            .hints
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match hints.get(key) {
            Some((node, rec, cas)) if *node == i => Some((rec.clone(), *cas)),
            _ => None,
        }
    }

    /// `rec` as stored under `id` at `version`, checked against the size limit.
    fn encode(
        &self,
        rec: &Record,
        id: SessionId,
        version: u64,
    ) -> Result<(Record, Vec<u8>), StoreError> {
        let mut stored = rec.clone();
        stored.set_id(id);
        stored.set_version(version);
        let value = codec::encode(&stored).map_err(StoreError::Encode)?;
        if value.len() > self.opts.max_value_size {
            return Err(StoreError::TooLarge {
                size: value.len(),
                limit: self.opts.max_value_size,
            });
        }
        Ok((stored, value))
    }

    /// The primary's copy of `key` (record and CAS unique). With replicas, also reads them and
    /// first copies a newer live replica copy to the primary (which lost it, or missed writes
    /// while it was ejected).
    async fn primary_state(
        &self,
        op: &'static str,
        key: &str,
        targets: &[usize],
    ) -> Result<Option<(Record, u64)>, StoreError> {
        let (&primary, replicas) = targets.split_first().ok_or(MemcachedError::AllEjected)?;
        for _ in 0..WRITE_RETRIES {
            let current = self.gets(primary, op, key).await?;
            let now = self.clock.now();
            let mut newest: Option<Record> = None;
            for &r in replicas {
                if let Ok(Some((rec, _))) = self.gets(r, op, key).await
                    && !rec.is_expired(now)
                    && newest.as_ref().is_none_or(|n| rec.version() > n.version())
                {
                    newest = Some(rec);
                }
            }
            let stale = match (&current, &newest) {
                (_, None) => false,
                (None, Some(_)) => true,
                (Some((p, _)), Some(n)) => p.is_expired(now) || n.version() > p.version(),
            };
            let Some(newer) = newest.filter(|_| stale) else {
                return Ok(current);
            };
            let value = codec::encode(&newer).map_err(StoreError::Encode)?;
            // Whatever the outcome, read the primary again.
            self.put(
                primary,
                op,
                key,
                &newer,
                &value,
                current.map(|(_, cas)| cas),
            )
            .await?;
        }
        Err(MemcachedError::Contention {
            op,
            attempts: WRITE_RETRIES,
        }
        .into())
    }

    /// Brings each replica to `stored` unless it already holds a newer version. Failures only
    /// count against the replica's health: the primary has the write.
    async fn replicate(
        &self,
        op: &'static str,
        key: &str,
        replicas: &[usize],
        stored: &Record,
        value: &[u8],
    ) {
        let now = self.clock.now();
        for &r in replicas {
            for _ in 0..8 {
                let Ok(current) = self.gets(r, op, key).await else {
                    break;
                };
                let cas = match &current {
                    None => None,
                    Some((rec, cas)) => {
                        let behind = rec.is_expired(now)
                            || rec.version() < stored.version()
                            || (rec.version() == stored.version()
                                && rec.expires() != stored.expires());
                        if !behind {
                            break;
                        }
                        Some(*cas)
                    }
                };
                match self.put(r, op, key, stored, value, cas).await {
                    Ok((Reply::Stored, _)) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        }
    }

    async fn create_impl(&self, rec: &mut Record) -> Result<Token, StoreError> {
        let mut id = rec.id();
        for _ in 0..CREATE_RETRIES {
            let key = self.key_for(id);
            let targets = self.targets(&key)?;
            let (&primary, replicas) = targets.split_first().ok_or(MemcachedError::AllEjected)?;
            let (stored, value) = self.encode(rec, id, 1)?;
            let mut done = matches!(
                self.put(primary, "create", &key, &stored, &value, None)
                    .await?
                    .0,
                Reply::Stored
            );
            if !done {
                // Taken. An expired session (by our clock) is garbage: replace it atomically.
                match self.gets(primary, "create", &key).await? {
                    None => {}
                    Some((old, cas)) if old.is_expired(self.clock.now()) => {
                        done = matches!(
                            self.put(primary, "create", &key, &stored, &value, Some(cas))
                                .await?
                                .0,
                            Reply::Stored
                        );
                    }
                    Some(_) => id = crate::fresh_id()?,
                }
            }
            if done {
                self.replicate("create", &key, replicas, &stored, &value)
                    .await;
                *rec = stored;
                return Ok(Token::from(id));
            }
        }
        Err(StoreError::Conflict)
    }

    /// The common loop of `save`, `compare_and_save` and `touch`: read the primary, let
    /// `decide` turn its copy into the record to store (or an early answer), write it with a
    /// CAS-checked (or add-mode) meta set, retry if another writer got in between, then
    /// replicate.
    ///
    /// Without replicas, the first attempt starts from this store's remembered copy of the
    /// session when it has one (see [`Hints`]) instead of reading it: one round trip instead of
    /// two. The CAS unique makes that safe — the write lands only if the server still holds
    /// exactly that copy — and an early answer (a version mismatch, a missing session) is never
    /// given from a remembered copy: it is checked against a real read first.
    async fn write_loop<T>(
        &self,
        op: &'static str,
        id: SessionId,
        mut decide: impl FnMut(Option<&Record>) -> Result<Result<Record, T>, StoreError>,
    ) -> Result<Result<Record, T>, StoreError> {
        let key = self.key_for(id);
        let mut may_use_hint = true;
        let mut reads = 0;
        loop {
            let targets = self.targets(&key)?;
            let (&primary, replicas) = targets.split_first().ok_or(MemcachedError::AllEjected)?;
            let hinted = if may_use_hint && replicas.is_empty() {
                self.hint(primary, &key)
            } else {
                None
            };
            may_use_hint = false;
            let from_hint = hinted.is_some();
            let current = match hinted {
                Some(h) => Some(h),
                None => {
                    if reads == WRITE_RETRIES {
                        break;
                    }
                    reads += 1;
                    self.primary_state(op, &key, &targets).await?
                }
            };
            let next = match decide(current.as_ref().map(|(r, _)| r))? {
                Ok(next) => next,
                Err(_) if from_hint => continue,
                Err(answer) => return Ok(Err(answer)),
            };
            let (stored, value) = self.encode(&next, id, next.version())?;
            let cas = current.map(|(_, cas)| cas);
            if let (Reply::Stored, _) = self.put(primary, op, &key, &stored, &value, cas).await? {
                self.replicate(op, &key, replicas, &stored, &value).await;
                return Ok(Ok(stored));
            }
        }
        Err(MemcachedError::Contention {
            op,
            attempts: WRITE_RETRIES,
        }
        .into())
    }

    async fn save_impl(&self, rec: &mut Record) -> Result<Token, StoreError> {
        let id = rec.id();
        let result = self
            .write_loop::<std::convert::Infallible>("save", id, |current| {
                let mut next = rec.clone();
                let base = current.map_or(0, Record::version).max(rec.version());
                next.set_version(base.saturating_add(1));
                Ok(Ok(next))
            })
            .await?;
        let Ok(stored) = result;
        *rec = stored;
        Ok(Token::from(id))
    }

    async fn compare_and_save_impl(&self, rec: &mut Record) -> Result<Token, StoreError> {
        let id = rec.id();
        let expected = rec.version();
        let now = self.clock.now();
        let result = self
            .write_loop("compare_and_save", id, |current| {
                let found = current.filter(|c| !c.is_expired(now)).map(Record::version);
                if found != Some(expected) {
                    return Ok(Err(StoreError::VersionMismatch { expected, found }));
                }
                let mut next = rec.clone();
                next.set_version(expected.saturating_add(1));
                Ok(Ok(next))
            })
            .await?;
        *rec = result?;
        Ok(Token::from(id))
    }

    async fn load_impl(&self, token: &Token) -> Result<Option<Record>, StoreError> {
        let Ok(id) = SessionId::parse(token.as_str().as_bytes()) else {
            return Ok(None);
        };
        let key = self.key_for(id);
        let now = self.clock.now();
        let mut newest: Option<Record> = None;
        let mut answered = false;
        let mut last_err = None;
        for t in self.targets(&key)? {
            match self.gets(t, "load", &key).await {
                Ok(found) => {
                    answered = true;
                    if let Some((rec, _)) = found
                        && !rec.is_expired(now)
                        && newest.as_ref().is_none_or(|n| rec.version() > n.version())
                    {
                        newest = Some(rec);
                    }
                }
                Err(e @ (MemcachedError::Io { .. } | MemcachedError::Timeout { .. })) => {
                    last_err = Some(e);
                }
                Err(e) => return Err(e.into()),
            }
        }
        match (answered, last_err) {
            (false, Some(e)) => Err(e.into()),
            _ => Ok(newest),
        }
    }

    async fn delete_impl(&self, token: &Token) -> Result<(), StoreError> {
        let Ok(id) = SessionId::parse(token.as_str().as_bytes()) else {
            return Ok(());
        };
        let key = self.key_for(id);
        let mut cmd = Vec::with_capacity(key.len() + 8);
        proto::keyed(&mut cmd, "delete", &key);
        self.forget(&key);
        let mut first_err = None;
        for t in self.targets(&key)? {
            match self.request(t, "delete", &cmd).await {
                Ok(Reply::Deleted | Reply::NotFound) => {}
                Ok(other) => {
                    first_err.get_or_insert(MemcachedError::Protocol {
                        server: self.node(t)?.addr.clone(),
                        op: "delete",
                        source: ProtocolError::Unexpected {
                            op: "delete",
                            reply: other.name(),
                        },
                    });
                }
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        first_err.map_or(Ok(()), |e| Err(e.into()))
    }

    async fn touch_impl(
        &self,
        token: &Token,
        expires: UnixTime,
    ) -> Result<Option<Token>, StoreError> {
        let Ok(id) = SessionId::parse(token.as_str().as_bytes()) else {
            return Ok(None);
        };
        let now = self.clock.now();
        let result = self
            .write_loop("touch", id, |current| {
                let Some(cur) = current.filter(|c| !c.is_expired(now)) else {
                    return Ok(Err(()));
                };
                let mut next = cur.clone();
                next.set_expires(expires);
                Ok(Ok(next))
            })
            .await?;
        Ok(result.ok().map(|_| Token::from(id)))
    }
}

forward_session_store!(MemcachedStore);

impl<C: Clock> std::fmt::Debug for MemcachedStore<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemcachedStore")
            .field("servers", &self.opts.servers)
            .field("distribution", &self.opts.distribution)
            .field("replicas", &self.opts.replicas)
            .field("ejected", &self.ejected())
            .finish_non_exhaustive()
    }
}
