//! [`RedisStore`] (feature `redis`): sessions in Redis, standalone, behind Sentinel or in a
//! Redis Cluster, on [redis-rs](::redis) with tokio.
//!
//! Each session is one hash under `prefix + id`: `v` (version), `e` (expiry, Unix seconds by
//! the store's [`Clock`]) and `d` (the record in the crate's [`codec`] encoding). Every write
//! is one Lua script (sent as `EVALSHA`, loaded on `NOSCRIPT`), so the check and the write are
//! atomic on the server:
//!
//! * `create`: refuses a live session (`e > now`), else replaces the key; version 1.
//! * `compare_and_save`: writes only if `v` is still the record's version and the session is
//!   live; otherwise reports the stored version, which becomes
//!   [`StoreError::VersionMismatch`].
//! * `save`: stores `max(v, record) + 1`. `touch`: moves `e` of a live session only.
//! * Every write also sets `PEXPIRE`: the remaining lifetime plus a grace period, so Redis
//!   drops dead sessions by itself; the `e` field (the store's clock) decides what is live.
//!
//! **Sentinel**: [`RedisStore::sentinel`] asks the sentinels for the master of a named
//! service (redis-rs checks with `ROLE` that it really is the master). The connection is
//! multiplexed and cached; any connection error, timeout or `READONLY` reply drops it, and the
//! next operation asks the sentinels again, so after a failover the store follows the promoted
//! replica as soon as the sentinels report it. Operations are not retried inside the store (a
//! write whose reply was lost may have happened): they fail with
//! [`StoreError::Unavailable`] and the caller retries.
//!
//! **Cluster**: [`RedisStore::cluster`] uses redis-rs's async cluster client. Every script
//! touches exactly one key, the session's, so it runs unchanged on the master that owns the
//! key's hash slot; sessions spread over all masters by their ids. The cluster client learns
//! the slot map from the nodes given (any reachable one will do), keeps one multiplexed
//! connection per node, follows `MOVED` (and refreshes the map) and `ASK` redirections
//! during resharding, and waits and resends on `TRYAGAIN`, `CLUSTERDOWN` and `READONLY`, and
//! after a lost connection (when a master failed and its replica is being promoted). Unlike
//! the Sentinel mode, that last case means a write whose connection broke may be sent twice:
//! the scripts make that harmless for the data (a repeated `compare_and_save` reports
//! [`StoreError::VersionMismatch`] although its write is stored, a repeated `create` draws a
//! fresh id and leaves an unused session behind that expires, a repeated `save` bumps the
//! version once more). All of that happens within one operation's time budget, the connect
//! timeout plus the response timeout; when it runs out the operation fails with
//! [`StoreError::Unavailable`]. The connection to the cluster is made on first use and then
//! kept: it repairs itself.
//!
//! **Durable writes**: with [`RedisOptions::wait_for_replicas`], every write is followed by
//! `WAIT numreplicas timeout` on the same connection; fewer acknowledgements than asked for
//! fail the operation with [`RedisError::NotDurable`] (as `Unavailable`). That error is the
//! one exception to "on error nothing was written": the master has the write, it is just not
//! known to survive the master's death. In a cluster, the write and its `WAIT` go out as one
//! pipeline to the master of the session key's slot (`WAIT` only counts the replicas of the
//! node it runs on, and only writes made on the same connection), so it is that master's
//! replicas that must acknowledge; a pipeline that is redirected or resent is resent whole.
//! Redis Cluster replication is asynchronous like any other: `WAIT` makes a loss unlikely, not
//! impossible (a replica that acknowledged may still not be the one promoted).

use std::sync::Mutex;
use std::time::Duration;

use ::redis::aio::{ConnectionLike, MultiplexedConnection};
use ::redis::cluster::{ClusterClient, ClusterClientBuilder};
use ::redis::cluster_async::ClusterConnection;
use ::redis::cluster_routing::{Route, SingleNodeRoutingInfo, SlotAddr};
use ::redis::sentinel::{SentinelClient, SentinelServerType};
use ::redis::{
    AsyncConnectionConfig, Client, Cmd, ErrorKind, FromRedisValue, IntoConnectionInfo, Pipeline,
    RedisFuture, Script, ServerErrorKind, Value,
};

use crate::clock::{Clock, SystemClock, UnixTime};
use crate::{Record, SessionId, StoreError, Token, codec};

/// How many ids `create` tries before giving up with [`StoreError::Conflict`].
const CREATE_RETRIES: usize = 4;
/// The longest `PEXPIRE` set (100 years), whatever the session's expiry.
const MAX_TTL_MS: u64 = 100 * 365 * 24 * 3600 * 1000;

/// `KEYS[1]`; `ARGV`: now, data, expires, ttl ms. 1 if created, 0 if a live session holds the key.
const CREATE: &str = r"
local e = redis.call('HGET', KEYS[1], 'e')
if e and tonumber(e) > tonumber(ARGV[1]) then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'v', '1', 'e', ARGV[3], 'd', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
";

/// `KEYS[1]`; `ARGV`: now, expected version, new version, data, expires, ttl ms.
/// `'ok'`, `'none'` (absent or expired) or the stored version.
const COMPARE_AND_SAVE: &str = r"
local cur = redis.call('HMGET', KEYS[1], 'v', 'e')
if not cur[1] or not cur[2] or tonumber(cur[2]) <= tonumber(ARGV[1]) then return 'none' end
if cur[1] ~= ARGV[2] then return cur[1] end
redis.call('HSET', KEYS[1], 'v', ARGV[3], 'e', ARGV[5], 'd', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
return 'ok'
";

/// The Lua script [`RedisStore`]'s `save` runs (by `EVALSHA`): `KEYS[1]` the session key;
/// `ARGV` the record's version, its encoding, its expiry (Unix seconds) and the TTL in
/// milliseconds; returns the version stored (the larger of the stored and given versions,
/// plus one). Public so that a benchmark can time the same server-side work with another
/// client (the crate's load tool runs it under `redis-benchmark`).
pub const SAVE_SCRIPT: &str = SAVE;

/// `KEYS[1]`; `ARGV`: record version, data, expires, ttl ms. Returns the version stored.
const SAVE: &str = r"
local cur = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
local v = string.format('%.0f', math.max(cur, tonumber(ARGV[1])) + 1)
redis.call('HSET', KEYS[1], 'v', v, 'e', ARGV[3], 'd', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return v
";

/// `KEYS[1]`; `ARGV`: now, new expiry, ttl ms. 1 if a live session was touched, else 0.
const TOUCH: &str = r"
local e = redis.call('HGET', KEYS[1], 'e')
if not e or tonumber(e) <= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'e', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
";

/// Why a Redis operation failed; the driver's error is kept as the source.
///
/// Session operations return [`StoreError`]; it wraps one of these as
/// [`StoreError::Unavailable`] (unreachable, timed out, no master known, read-only replica,
/// not durable: retry or fail over) or [`StoreError::Backend`] (anything else).
#[non_exhaustive]
#[derive(thiserror::Error, Debug)]
pub enum RedisError {
    /// The URL, sentinel list or cluster node list is not usable (empty, or a URL does not
    /// parse). Check it (`redis://host:port/db`; cluster nodes take no database number).
    #[error("invalid Redis connection settings")]
    Config(#[source] ::redis::RedisError),
    /// Connecting failed: the server is down, no sentinel could name a reachable master
    /// for the service, or no cluster node given could be reached or report the slot map.
    /// Retry; after a failover the sentinels name the new master.
    #[error("cannot connect to Redis ({target})")]
    Connect {
        /// `host:port`, `sentinel service NAME` or `cluster NODE,NODE,…`.
        target: String,
        /// The driver's error.
        #[source]
        source: ::redis::RedisError,
    },
    /// A command failed. A connection error or `READONLY` means the master went away or was
    /// demoted: the connection is dropped and the next operation reconnects. In a cluster,
    /// `CLUSTERDOWN`, `TRYAGAIN` or a redirection still pending when the time ran out mean the
    /// cluster is failing over or resharding.
    #[error("Redis {op} failed")]
    Command {
        /// The store operation.
        op: &'static str,
        /// The driver's error.
        #[source]
        source: ::redis::RedisError,
    },
    /// A script answered something it never returns: the key holds data of another program.
    #[error("Redis {op}: unexpected script reply {reply:?}; the key holds foreign data")]
    UnexpectedReply {
        /// The store operation.
        op: &'static str,
        /// What came back.
        reply: String,
    },
    /// A stored session is not a record this crate can decode (a field is missing or not a
    /// number, or `d` does not decode). Delete the key.
    #[error("stored Redis session cannot be decoded")]
    Corrupt(#[source] Option<codec::Error>),
    /// The write reached the master, but fewer replicas than required acknowledged it within
    /// the timeout: it may be lost if the master dies now. Check replication (`INFO
    /// replication`), or lower the requirement.
    #[error(
        "Redis write acknowledged by {acked} of {wanted} replicas within {timeout:?}; it is on the master but not known to be durable"
    )]
    NotDurable {
        /// Replicas that acknowledged.
        acked: i64,
        /// Replicas required.
        wanted: u32,
        /// The `WAIT` timeout.
        timeout: Duration,
    },
}

fn unavailable(e: &::redis::RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || e.is_unrecoverable_error()
        || matches!(
            e.kind(),
            ErrorKind::Server(
                ServerErrorKind::ReadOnly
                    | ServerErrorKind::MasterDown
                    | ServerErrorKind::BusyLoading
                    | ServerErrorKind::TryAgain
                    | ServerErrorKind::ClusterDown
                    | ServerErrorKind::Moved
                    | ServerErrorKind::Ask
            ) | ErrorKind::MasterNameNotFoundBySentinel
                | ErrorKind::EmptySentinelList
                | ErrorKind::ClusterConnectionNotFound
        )
}

impl RedisError {
    fn into_store(self) -> StoreError {
        let retry = match &self {
            Self::Connect { .. } | Self::NotDurable { .. } => true,
            Self::Command { source, .. } => unavailable(source),
            _ => false,
        };
        if retry {
            StoreError::Unavailable(Box::new(self))
        } else {
            StoreError::Backend(Box::new(self))
        }
    }
}

impl From<RedisError> for StoreError {
    fn from(e: RedisError) -> Self {
        e.into_store()
    }
}

/// Settings of a [`RedisStore`]; start from [`RedisOptions::default`].
#[derive(Clone, Debug)]
pub struct RedisOptions {
    key_prefix: String,
    durable: Option<(u32, Duration)>,
    connect_timeout: Duration,
    response_timeout: Duration,
    expiry_grace: Duration,
}

impl Default for RedisOptions {
    /// Key prefix `"session:"`, no `WAIT`, 1 s connect and response timeouts, 60 s expiry
    /// grace.
    fn default() -> Self {
        Self {
            key_prefix: "session:".to_owned(),
            durable: None,
            connect_timeout: Duration::from_secs(1),
            response_timeout: Duration::from_secs(1),
            expiry_grace: Duration::from_secs(60),
        }
    }
}

impl RedisOptions {
    /// The prefix of every key.
    #[must_use]
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self
    }

    /// After every write, `WAIT replicas timeout`: the write succeeds only once `replicas`
    /// replicas acknowledged it (else [`RedisError::NotDurable`]). In a cluster these are
    /// replicas of the master owning the session's slot. The response timeout is raised to at
    /// least `timeout` + 1 s.
    #[must_use]
    pub fn wait_for_replicas(mut self, replicas: u32, timeout: Duration) -> Self {
        self.durable = Some((replicas, timeout));
        self
    }

    /// The time a connection attempt may take.
    #[must_use]
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }

    /// The time one command may take to answer.
    #[must_use]
    pub fn response_timeout(mut self, d: Duration) -> Self {
        self.response_timeout = d;
        self
    }

    /// How long past a session's expiry Redis keeps the key (the store's clock decides expiry;
    /// this only has to cover clock differences between hosts).
    #[must_use]
    pub fn expiry_grace(mut self, d: Duration) -> Self {
        self.expiry_grace = d;
        self
    }
}

/// Where the master is.
enum Target {
    Standalone(Client),
    Sentinel {
        service: String,
        client: tokio::sync::Mutex<SentinelClient>,
    },
    Cluster {
        /// `host:port` of the nodes given, comma-separated, for messages.
        nodes: String,
        client: ClusterClient,
        /// Made on first use, then kept (it reconnects and follows the topology itself).
        conn: tokio::sync::Mutex<Option<ClusterConnection>>,
    },
}

/// The cached connection and the address it goes to.
#[derive(Clone)]
struct Cached {
    conn: MultiplexedConnection,
    addr: String,
}

/// A connection to one server (standalone, Sentinel) or to a cluster.
#[derive(Clone)]
enum Conn {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}

/// `EVALSHA` of `script` on the one key `key`; the caller adds the `ARGV`.
fn evalsha(script: &Script, key: &str) -> Cmd {
    let mut c = ::redis::cmd("EVALSHA");
    c.arg(script.get_hash()).arg(1).arg(key);
    c
}

fn is_noscript(e: &::redis::RedisError) -> bool {
    e.kind() == ErrorKind::Server(ServerErrorKind::NoScript)
}

/// Sessions in Redis; see the [module docs](self) for the layout, scripts, Sentinel, Cluster
/// and durable writes. Connects on first use.
pub struct RedisStore<C: Clock = SystemClock> {
    target: Target,
    cached: Mutex<Option<Cached>>,
    opts: RedisOptions,
    clock: C,
    create: Script,
    compare_and_save: Script,
    save: Script,
    touch: Script,
}

impl<C: Clock> RedisStore<C> {
    fn with_target(target: Target, opts: RedisOptions, clock: C) -> Self {
        Self {
            target,
            cached: Mutex::new(None),
            opts,
            clock,
            create: Script::new(CREATE),
            compare_and_save: Script::new(COMPARE_AND_SAVE),
            save: Script::new(SAVE),
            touch: Script::new(TOUCH),
        }
    }

    /// A store on the standalone server at `url` (`redis://[user:password@]host:port[/db]`).
    /// No I/O happens here.
    ///
    /// # Errors
    /// [`RedisError::Config`] if the URL does not parse.
    pub fn standalone(url: &str, opts: RedisOptions, clock: C) -> Result<Self, RedisError> {
        let client = Client::open(url).map_err(RedisError::Config)?;
        Ok(Self::with_target(Target::Standalone(client), opts, clock))
    }

    /// A store on the master of `service` as the sentinels at `sentinels` (`redis://host:port`
    /// each) report it, following failovers. No I/O happens here.
    ///
    /// # Errors
    /// [`RedisError::Config`] if the list is empty or a URL does not parse.
    pub fn sentinel(
        sentinels: &[&str],
        service: &str,
        opts: RedisOptions,
        clock: C,
    ) -> Result<Self, RedisError> {
        let client = SentinelClient::build(
            sentinels.to_vec(),
            service.to_owned(),
            None,
            SentinelServerType::Master,
        )
        .map_err(RedisError::Config)?;
        Ok(Self::with_target(
            Target::Sentinel {
                service: service.to_owned(),
                client: tokio::sync::Mutex::new(client),
            },
            opts,
            clock,
        ))
    }

    /// A store on the Redis Cluster that the nodes `nodes` (`redis://[user:password@]host:port`
    /// each; some or all of the cluster's nodes, one reachable node suffices) belong to. Each
    /// session lives on the master owning its key's slot; redirections, resharding and
    /// failovers are followed (see the [module docs](self)). [`RedisOptions::wait_for_replicas`]
    /// waits for replicas of that master. No I/O happens here; the first operation connects.
    ///
    /// # Errors
    /// [`RedisError::Config`] if the list is empty, a URL does not parse, or the URLs carry
    /// different credentials or database numbers (a Redis Cluster only has database 0).
    pub fn cluster(nodes: &[&str], opts: RedisOptions, clock: C) -> Result<Self, RedisError> {
        let response = Self::response_timeout(&opts);
        let client = ClusterClientBuilder::new(nodes.iter().copied())
            .connection_timeout(opts.connect_timeout)
            .response_timeout(response)
            .overall_response_timeout(Some(opts.connect_timeout.saturating_add(response)))
            // Retries (after CLUSTERDOWN, TRYAGAIN, a lost node) start after 10 ms and back
            // off to at most 500 ms; the overall timeout bounds their number.
            .min_retry_wait(10)
            .max_retry_wait(500)
            .build()
            .map_err(RedisError::Config)?;
        // `host:port` only: the URLs may carry passwords.
        let addrs = nodes
            .iter()
            .map(|n| n.into_connection_info().map(|i| i.addr().to_string()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(RedisError::Config)?;
        Ok(Self::with_target(
            Target::Cluster {
                nodes: addrs.join(","),
                client,
                conn: tokio::sync::Mutex::new(None),
            },
            opts,
            clock,
        ))
    }

    /// The store's clock.
    #[must_use]
    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// The Redis key of session `id`: the prefix, then the id's 22 characters.
    #[must_use]
    pub fn key_for(&self, id: SessionId) -> String {
        format!("{}{id}", self.opts.key_prefix)
    }

    /// `host:port` of the server the store is connected to now (`None` before the first
    /// operation and after a connection error, and always for a cluster, where every master
    /// has a connection).
    #[must_use]
    pub fn connected_to(&self) -> Option<String> {
        self.cache().as_ref().map(|c| c.addr.clone())
    }

    /// Connects if needed and sends `PING` (in a cluster: to every node of the slot map): a
    /// health check, and after a failover a way to make the store find the new master before
    /// the next request does.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] if no master (in a cluster: some node) can be reached.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.conn().await?;
        let r: Result<String, _> = ::redis::cmd("PING").query_async(&mut conn).await;
        self.check("ping", r).map(drop)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Option<Cached>> {
        self.cached.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The response timeout: at least the `WAIT` timeout + 1 s with durable writes.
    fn response_timeout(opts: &RedisOptions) -> Duration {
        match opts.durable {
            Some((_, wait)) => opts
                .response_timeout
                .max(wait.saturating_add(Duration::from_secs(1))),
            None => opts.response_timeout,
        }
    }

    fn config(&self) -> AsyncConnectionConfig {
        AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.opts.connect_timeout))
            .set_response_timeout(Some(Self::response_timeout(&self.opts)))
    }

    /// The cached connection, or a new one (asking the sentinels where the master is, or
    /// the cluster nodes for the slot map).
    async fn conn(&self) -> Result<Conn, StoreError> {
        if let Some(c) = self.cache().as_ref() {
            return Ok(Conn::Single(c.conn.clone()));
        }
        let (client, target) = match &self.target {
            Target::Standalone(client) => {
                let addr = client.get_connection_info().addr().to_string();
                (client.clone(), addr)
            }
            Target::Sentinel { service, client } => {
                let found = client.lock().await.async_get_client().await;
                let client = found.map_err(|source| RedisError::Connect {
                    target: format!("sentinel service {service}"),
                    source,
                })?;
                let addr = client.get_connection_info().addr().to_string();
                (client, addr)
            }
            Target::Cluster {
                nodes,
                client,
                conn,
            } => {
                // Never cached above: the cluster connection is kept in the target.
                return self
                    .cluster_conn(nodes, client, conn)
                    .await
                    .map(Conn::Cluster);
            }
        };
        let conn = client
            .get_multiplexed_async_connection_with_config(&self.config())
            .await
            .map_err(|source| RedisError::Connect {
                target: target.clone(),
                source,
            })?;
        *self.cache() = Some(Cached {
            conn: conn.clone(),
            addr: target,
        });
        Ok(Conn::Single(conn))
    }

    /// The cluster connection, made on first use (one at a time) within the operation budget.
    async fn cluster_conn(
        &self,
        nodes: &str,
        client: &ClusterClient,
        slot: &tokio::sync::Mutex<Option<ClusterConnection>>,
    ) -> Result<ClusterConnection, StoreError> {
        let mut slot = slot.lock().await;
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let budget = self
            .opts
            .connect_timeout
            .saturating_add(Self::response_timeout(&self.opts));
        let made = match tokio::time::timeout(budget, client.get_async_connection()).await {
            Ok(r) => r,
            Err(_) => Err(::redis::RedisError::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "no cluster node answered in time",
            ))),
        };
        let conn = made.map_err(|source| RedisError::Connect {
            target: format!("cluster {nodes}"),
            source,
        })?;
        *slot = Some(conn.clone());
        Ok(conn)
    }

    /// Maps a command result; connection-class errors drop the cached connection (a cluster
    /// connection is kept: it reconnects by itself).
    fn check<T>(
        &self,
        op: &'static str,
        r: Result<T, ::redis::RedisError>,
    ) -> Result<T, StoreError> {
        r.map_err(|source| {
            if unavailable(&source) {
                *self.cache() = None;
            }
            RedisError::Command { op, source }.into_store()
        })
    }

    /// A reply converted to `T`, a server error in it mapped like a failed command.
    fn reply<T: FromRedisValue>(&self, op: &'static str, v: Value) -> Result<T, StoreError> {
        let v = self.check(op, v.extract_error())?;
        self.check(op, ::redis::from_redis_value(v).map_err(Into::into))
    }

    /// `WAIT` for the configured replicas; `None` without durable writes.
    fn wait_cmd(&self) -> Option<Cmd> {
        let (wanted, timeout) = self.opts.durable?;
        let ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        let mut c = ::redis::cmd("WAIT");
        c.arg(wanted).arg(ms);
        Some(c)
    }

    /// `acked` replicas acknowledged: an error if that is fewer than configured.
    fn enough(&self, acked: i64) -> Result<(), StoreError> {
        match self.opts.durable {
            Some((wanted, timeout)) if acked < i64::from(wanted) => Err(RedisError::NotDurable {
                acked,
                wanted,
                timeout,
            }
            .into()),
            _ => Ok(()),
        }
    }

    /// Sends `cmd`, a command on the single key `key` (the `EVALSHA` of `script` if given:
    /// then the script is loaded on `NOSCRIPT` and the command sent again). If the reply says
    /// that it wrote (`wrote`) and durable writes are configured, the replicas must
    /// acknowledge it: `WAIT` follows on the same connection (standalone, Sentinel), or is
    /// pipelined behind `cmd` to the master of `key`'s slot (cluster).
    async fn write<T: FromRedisValue>(
        &self,
        op: &'static str,
        key: &str,
        cmd: &Cmd,
        script: Option<&Script>,
        wrote: impl Fn(&T) -> bool + Send,
    ) -> Result<T, StoreError> {
        match self.conn().await? {
            Conn::Single(mut conn) => {
                let mut r = cmd.query_async::<Value>(&mut conn).await;
                if let (Some(script), Err(e)) = (script, &r)
                    && is_noscript(e)
                {
                    let loaded = script.load_async(&mut conn).await;
                    self.check(op, loaded)?;
                    r = cmd.query_async::<Value>(&mut conn).await;
                }
                let v = self.check(op, r)?;
                let out: T = self.reply(op, v)?;
                if wrote(&out)
                    && let Some(wait) = self.wait_cmd()
                {
                    let acked = wait.query_async::<i64>(&mut conn).await;
                    self.enough(self.check(op, acked)?)?;
                }
                Ok(out)
            }
            Conn::Cluster(mut conn) => {
                let mut pipe = ::redis::pipe();
                pipe.add_command(cmd.clone());
                let wait = self.wait_cmd();
                if let Some(wait) = &wait {
                    pipe.add_command(wait.clone());
                }
                let route =
                    SingleNodeRoutingInfo::SpecificNode(Route::with_key(key, SlotAddr::Master));
                let count = pipe.len();
                let mut r = conn
                    .route_pipeline(pipe.clone(), 0, count, route.clone())
                    .await;
                let noscript = match &r {
                    Err(e) => is_noscript(e),
                    Ok(replies) => matches!(
                        replies.first(),
                        Some(Value::ServerError(e)) if e.kind() == Some(ServerErrorKind::NoScript)
                    ),
                };
                if let (Some(script), true) = (script, noscript) {
                    // `SCRIPT LOAD` goes to every master.
                    let loaded = script.load_async(&mut conn).await;
                    self.check(op, loaded)?;
                    r = conn.route_pipeline(pipe, 0, count, route).await;
                }
                let mut replies = self.check(op, r)?.into_iter();
                let first = replies.next().ok_or(RedisError::UnexpectedReply {
                    op,
                    reply: "no reply".to_owned(),
                })?;
                let out: T = self.reply(op, first)?;
                if wrote(&out) && wait.is_some() {
                    let acked = replies.next().ok_or(RedisError::UnexpectedReply {
                        op,
                        reply: "no WAIT reply".to_owned(),
                    })?;
                    self.enough(self.reply(op, acked)?)?;
                }
                Ok(out)
            }
        }
    }

    /// `PEXPIRE` for a session expiring at `expires`: remaining lifetime plus grace.
    fn ttl_ms(&self, expires: UnixTime) -> u64 {
        let remaining = expires
            .as_secs()
            .saturating_sub(self.clock.now().as_secs())
            .saturating_add(self.opts.expiry_grace.as_secs());
        remaining.saturating_mul(1000).clamp(1, MAX_TTL_MS)
    }

    fn encode(rec: &Record, id: SessionId, version: u64) -> Result<(Record, Vec<u8>), StoreError> {
        let mut stored = rec.clone();
        stored.set_id(id);
        stored.set_version(version);
        let data = codec::encode(&stored).map_err(StoreError::Encode)?;
        Ok((stored, data))
    }

    async fn create_impl(&self, rec: &mut Record) -> Result<Token, StoreError> {
        let mut id = rec.id();
        for _ in 0..CREATE_RETRIES {
            let (stored, data) = Self::encode(rec, id, 1)?;
            let key = self.key_for(id);
            let mut cmd = evalsha(&self.create, &key);
            cmd.arg(self.clock.now().as_secs())
                .arg(data)
                .arg(stored.expires().as_secs())
                .arg(self.ttl_ms(stored.expires()));
            let created = self
                .write::<i64>("create", &key, &cmd, Some(&self.create), |r| *r == 1)
                .await?;
            if created == 1 {
                *rec = stored;
                return Ok(Token::from(id));
            }
            id = crate::fresh_id()?;
        }
        Err(StoreError::Conflict)
    }

    async fn save_impl(&self, rec: &mut Record) -> Result<Token, StoreError> {
        let id = rec.id();
        let (_, data) = Self::encode(rec, id, rec.version())?;
        let key = self.key_for(id);
        let mut cmd = evalsha(&self.save, &key);
        cmd.arg(rec.version())
            .arg(data)
            .arg(rec.expires().as_secs())
            .arg(self.ttl_ms(rec.expires()));
        let v = self
            .write::<String>("save", &key, &cmd, Some(&self.save), |_| true)
            .await?;
        let version: u64 = v.parse().map_err(|_| RedisError::UnexpectedReply {
            op: "save",
            reply: v.clone(),
        })?;
        rec.set_version(version);
        Ok(Token::from(id))
    }

    async fn compare_and_save_impl(&self, rec: &mut Record) -> Result<Token, StoreError> {
        let id = rec.id();
        let expected = rec.version();
        let new = expected.saturating_add(1);
        let (stored, data) = Self::encode(rec, id, new)?;
        let key = self.key_for(id);
        let mut cmd = evalsha(&self.compare_and_save, &key);
        cmd.arg(self.clock.now().as_secs())
            .arg(expected)
            .arg(new)
            .arg(data)
            .arg(stored.expires().as_secs())
            .arg(self.ttl_ms(stored.expires()));
        let reply = self
            .write::<String>(
                "compare_and_save",
                &key,
                &cmd,
                Some(&self.compare_and_save),
                |r| r == "ok",
            )
            .await?;
        match reply.as_str() {
            "ok" => {
                *rec = stored;
                Ok(Token::from(id))
            }
            "none" => Err(StoreError::VersionMismatch {
                expected,
                found: None,
            }),
            other => {
                let found = other.parse().map_err(|_| RedisError::UnexpectedReply {
                    op: "compare_and_save",
                    reply: other.to_owned(),
                })?;
                Err(StoreError::VersionMismatch {
                    expected,
                    found: Some(found),
                })
            }
        }
    }

    async fn load_impl(&self, token: &Token) -> Result<Option<Record>, StoreError> {
        let Ok(id) = SessionId::parse(token.as_str().as_bytes()) else {
            return Ok(None);
        };
        let mut conn = self.conn().await?;
        // In a cluster the key routes the command to its slot's master.
        let r = ::redis::cmd("HMGET")
            .arg(self.key_for(id))
            .arg("v")
            .arg("e")
            .arg("d")
            .query_async::<(Option<String>, Option<String>, Option<Vec<u8>>)>(&mut conn)
            .await;
        let (v, e, d) = match self.check("load", r)? {
            (None, None, None) => return Ok(None),
            (Some(v), Some(e), Some(d)) => (v, e, d),
            _ => return Err(RedisError::Corrupt(None).into()),
        };
        let (Ok(version), Ok(expires)) = (v.parse::<u64>(), e.parse::<u64>()) else {
            return Err(RedisError::Corrupt(None).into());
        };
        let expires = UnixTime::from_secs(expires);
        if self.clock.now() >= expires {
            return Ok(None);
        }
        let mut rec = codec::decode(&d).map_err(|e| RedisError::Corrupt(Some(e)))?;
        rec.set_version(version);
        rec.set_expires(expires);
        Ok(Some(rec))
    }

    async fn delete_impl(&self, token: &Token) -> Result<(), StoreError> {
        let Ok(id) = SessionId::parse(token.as_str().as_bytes()) else {
            return Ok(());
        };
        let key = self.key_for(id);
        let mut cmd = ::redis::cmd("DEL");
        cmd.arg(&key);
        self.write::<i64>("delete", &key, &cmd, None, |_| true)
            .await
            .map(drop)
    }

    async fn touch_impl(
        &self,
        token: &Token,
        expires: UnixTime,
    ) -> Result<Option<Token>, StoreError> {
        let Ok(id) = SessionId::parse(token.as_str().as_bytes()) else {
            return Ok(None);
        };
        let key = self.key_for(id);
        let mut cmd = evalsha(&self.touch, &key);
        cmd.arg(self.clock.now().as_secs())
            .arg(expires.as_secs())
            .arg(self.ttl_ms(expires));
        let touched = self
            .write::<i64>("touch", &key, &cmd, Some(&self.touch), |r| *r == 1)
            .await?;
        Ok((touched == 1).then(|| Token::from(id)))
    }
}

forward_session_store!(RedisStore);

impl<C: Clock> std::fmt::Debug for RedisStore<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let target = match &self.target {
            Target::Standalone(c) => c.get_connection_info().addr().to_string(),
            Target::Sentinel { service, .. } => format!("sentinel service {service}"),
            Target::Cluster { nodes, .. } => format!("cluster {nodes}"),
        };
        f.debug_struct("RedisStore")
            .field("target", &target)
            .field("connected_to", &self.connected_to())
            .finish_non_exhaustive()
    }
}
