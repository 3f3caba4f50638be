//! The run-time state of an `upstream` block: the lvs-sched [`Service`] behind a mutex whose
//! critical sections are one pick or one report, the per-server keep-alive pools, and the
//! health flags. A reload hands the health state of the servers it keeps to the new
//! generation ([`Upstream::with_previous`]).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use http::HeaderValue;
use lvs_sched::nginx::Tried as NginxTried;
use lvs_sched::{Dest, DestId, DestSet, Flow, Instant, SchedConfig, SchedulerKind, Service};
use tokio::net::TcpStream;

use super::client::Conn;
use super::config::UpstreamConf;
use super::template::Template;

/// Time since the first call, the clock handed to lvs-sched.
#[must_use]
pub fn now() -> Instant {
    at(std::time::Instant::now())
}

/// `t` on lvs-sched's clock (microseconds since the first call of [`now`] or [`at`]; 0 for
/// earlier instants): a request's start time read once serves every decision about it.
#[must_use]
pub fn at(t: std::time::Instant) -> Instant {
    static EPOCH: OnceLock<std::time::Instant> = OnceLock::new();
    Instant::from_std(*EPOCH.get_or_init(|| t), t)
}

/// How an attempt on a server ended, for the passive health accounting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Served (nginx `free` with state 0).
    Success,
    /// Failed: counts toward `max_fails` (`NGX_PEER_FAILED`).
    Failure,
    /// Moved to the next server without counting a failure (`http_403`, `http_404`).
    Next,
}

/// One upstream server at run time.
#[derive(Debug)]
pub struct Peer {
    /// Its address.
    pub addr: SocketAddr,
    /// Its address as text (for logs and `Host`).
    pub addr_text: Box<str>,
    /// The value of the sticky cookie naming it.
    pub cookie_value: Box<str>,
    /// The `Set-Cookie` header naming it, when the upstream is sticky.
    pub set_cookie: Option<HeaderValue>,
    /// `down` in the configuration.
    pub conf_down: bool,
    /// The last active health check result (true until a check fails `fall` times).
    pub healthy: AtomicBool,
    /// Consecutive passed active health checks (toward `rise`).
    pub check_passes: AtomicU32,
    /// Consecutive failed active health checks (toward `fall`).
    pub check_fails: AtomicU32,
    /// Idle keep-alive connections.
    pub pool: Pool,
}

/// An `upstream` block at run time.
#[derive(Debug)]
pub struct Upstream {
    /// Its name.
    pub name: Box<str>,
    /// The `hash` key.
    pub hash_key: Option<Template>,
    /// The sticky cookie name.
    pub sticky_cookie: Option<Box<str>>,
    /// The servers, indexed like the lvs-sched destinations.
    pub peers: Box<[Peer]>,
    /// The configuration it was built from.
    pub conf: UpstreamConf,
    sched: Mutex<Service>,
    nginx: bool,
}

/// The servers already tried for one request (no allocation up to 8), and for the nginx
/// balancers nginx's own per-request state (lvs-sched's [`NginxTried`]: the `tried` bitmap, the
/// move to the backup list, the hash balancers' draw counters), made at the first pick.
#[derive(Debug, Default)]
pub struct Tried {
    small: [usize; 8],
    n: usize,
    more: Vec<usize>,
    nginx: Option<NginxTried>,
}

impl Tried {
    /// Add `id`.
    pub fn push(&mut self, id: DestId) {
        if let Some(slot) = self.small.get_mut(self.n) {
            *slot = id.0;
            self.n += 1;
        } else {
            self.more.push(id.0);
        }
    }
    /// Whether `id` was tried.
    #[must_use]
    pub fn contains(&self, id: DestId) -> bool {
        self.small.iter().take(self.n).any(|&i| i == id.0) || self.more.contains(&id.0)
    }
    /// How many were tried.
    #[must_use]
    pub fn len(&self) -> usize {
        self.n + self.more.len()
    }
    /// Whether none was tried.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }
}

/// FNV-1a, for the sticky cookie values (stable across restarts and reloads).
fn fnv1a(s: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in s {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

impl Upstream {
    /// Build the run-time state of `conf`; `workers` sizes the pool shards.
    #[must_use]
    pub fn new(conf: &UpstreamConf, workers: usize) -> Self {
        Self::with_previous(conf, workers, None)
    }

    /// Build the run-time state of `conf` for a reload: the servers of `prev` (the upstream of
    /// the same name in the running generation) that `conf` still lists at the same address
    /// keep their passive health state (`max_fails` count and `fail_timeout` window) and, when
    /// both generations have a `health_check`, their active check state; the other servers
    /// start as configured.
    #[must_use]
    pub fn with_previous(conf: &UpstreamConf, workers: usize, prev: Option<&Self>) -> Self {
        let mut set = DestSet::new();
        for p in &conf.peers {
            let mut d = Dest::new(p.addr, p.weight);
            d.nginx.max_fails = p.max_fails;
            d.nginx.fail_timeout = p.fail_timeout;
            d.nginx.max_conns = p.max_conns;
            d.nginx.backup = p.backup;
            d.nginx.down = p.down;
            set.push(d);
        }
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| {
                u64::try_from(d.as_nanos() & u128::from(u64::MAX)).unwrap_or(1)
            });
        let mut svc = Service::from_dests(
            conf.kind,
            SchedConfig {
                seed,
                ..SchedConfig::default()
            },
            set,
        );
        let peers: Box<[Peer]> = conf
            .peers
            .iter()
            .enumerate()
            .map(|(i, p)| {
                if p.down {
                    svc.set_available(DestId(i), false);
                }
                let addr_text: Box<str> = p.addr.to_string().into();
                let cookie_value: Box<str> = format!("{:016x}", fnv1a(addr_text.as_bytes())).into();
                let set_cookie = conf.sticky_cookie.as_ref().and_then(|name| {
                    HeaderValue::from_str(&format!("{name}={cookie_value}; Path=/")).ok()
                });
                Peer {
                    addr: p.addr,
                    addr_text,
                    cookie_value,
                    set_cookie,
                    conf_down: p.down,
                    healthy: AtomicBool::new(true),
                    check_passes: AtomicU32::new(0),
                    check_fails: AtomicU32::new(0),
                    pool: Pool::new(workers, conf.keepalive),
                }
            })
            .collect();
        if let Some(old) = prev {
            carry_health(old, &mut svc, &peers, conf.health.is_some());
        }
        Self {
            name: conf.name.as_str().into(),
            hash_key: conf.hash_key.clone(),
            sticky_cookie: conf.sticky_cookie.as_deref().map(Into::into),
            peers,
            nginx: conf.kind.is_nginx(),
            conf: conf.clone(),
            sched: Mutex::new(svc),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Service> {
        // A panic while holding the lock cannot leave the scheduler half-updated in a way
        // that matters more than stopping: keep serving with the state as it is.
        self.sched
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The balancer's kind.
    #[must_use]
    pub fn kind(&self) -> SchedulerKind {
        self.conf.kind
    }

    /// Choose a server for a request, skipping `tried`, and count a connection on it (the
    /// caller records the pick with [`Tried::push`]). `sticky` is the value of the sticky
    /// cookie, honoured while its server is usable. The nginx balancers choose as nginx does
    /// for each try of a request (`Service::schedule_next`: tried peers skipped, the backup
    /// list once the primaries are used up, `None` when nothing is left). `now`: the time of
    /// the decision (the request's start serves for its first try).
    pub fn pick(
        &self,
        flow: &Flow<'_>,
        tried: &mut Tried,
        sticky: Option<&[u8]>,
        now: std::time::Instant,
    ) -> Option<DestId> {
        let now = at(now);
        let sticky_id = sticky.and_then(|v| {
            self.peers
                .iter()
                .position(|p| p.cookie_value.as_bytes() == v)
                .map(DestId)
        });
        let mut svc = self.lock();
        if let Some(id) = sticky_id
            && !tried.contains(id)
            && svc.dests().get(id).is_some_and(|d| d.nginx_usable(now))
        {
            if self.nginx {
                tried.nginx.get_or_insert_with(NginxTried::new).insert(id);
            }
            svc.conn_opened(id);
            return Some(id);
        }
        let id = if self.nginx {
            let state = tried.nginx.get_or_insert_with(NginxTried::new);
            svc.schedule_next(flow, now, state)
        } else {
            // IPVS schedulers know nothing of tries or max_fails: ask again (rr-like ones
            // move on) and skip what nginx would skip.
            let mut found = None;
            for _ in 0..self.peers.len().max(1) {
                let Some(id) = svc.schedule(flow, now) else {
                    break;
                };
                if !tried.contains(id) && svc.dests().get(id).is_some_and(|d| d.nginx_usable(now)) {
                    found = Some(id);
                    break;
                }
            }
            found
        }?;
        svc.conn_opened(id);
        Some(id)
    }

    /// The request on `id` is over: close the connection count and account the outcome.
    pub fn release(&self, id: DestId, outcome: Outcome) {
        // Only a failure needs the time (its fail_timeout window starts now).
        let now = (outcome == Outcome::Failure).then(now);
        let mut svc = self.lock();
        svc.conn_closed(id, true);
        match outcome {
            Outcome::Success => {
                svc.report_success(id);
            }
            Outcome::Failure => {
                if let Some(now) = now {
                    svc.report_failure(id, now);
                }
            }
            Outcome::Next => {}
        }
    }

    /// Record an active health check verdict for server `i`.
    pub fn set_healthy(&self, i: usize, healthy: bool) {
        let Some(p) = self.peers.get(i) else { return };
        p.healthy.store(healthy, Ordering::Relaxed);
        self.lock()
            .set_available(DestId(i), healthy && !p.conf_down);
    }

    /// Whether server `i` may be picked now (for tests and the status page).
    #[must_use]
    pub fn usable(&self, i: usize) -> bool {
        self.lock()
            .dests()
            .get(DestId(i))
            .is_some_and(|d| d.nginx_usable(now()))
    }
}

/// Copy the health state of the servers of `old` that `peers` lists again (matched by address,
/// in order, so a server listed twice matches its own occurrence) into `svc` and `peers`.
fn carry_health(old: &Upstream, svc: &mut Service, peers: &[Peer], checked: bool) {
    let old_svc = old.lock();
    let mut used = vec![false; old.peers.len()];
    let active = checked && old.conf.health.is_some();
    for (i, p) in peers.iter().enumerate() {
        let Some(j) = old
            .peers
            .iter()
            .enumerate()
            .position(|(j, o)| o.addr == p.addr && !used.get(j).copied().unwrap_or(true))
        else {
            continue;
        };
        if let Some(u) = used.get_mut(j) {
            *u = true;
        }
        if let Some(d) = old_svc.dests().get(DestId(j)) {
            let was = &d.nginx;
            let (fails, accessed, checked_at) = (was.fails, was.accessed, was.checked);
            svc.configure_nginx(DestId(i), |n| {
                n.fails = fails;
                n.accessed = accessed;
                n.checked = checked_at;
            });
        }
        if active && let Some(o) = old.peers.get(j) {
            let healthy = o.healthy.load(Ordering::Relaxed);
            p.healthy.store(healthy, Ordering::Relaxed);
            p.check_passes
                .store(o.check_passes.load(Ordering::Relaxed), Ordering::Relaxed);
            p.check_fails
                .store(o.check_fails.load(Ordering::Relaxed), Ordering::Relaxed);
            if !healthy {
                svc.set_available(DestId(i), false);
            }
        }
    }
}

/// A request counted on a server by [`Upstream::pick`]: released with an outcome, or, if
/// dropped first (the client went away), released without accounting, so the connection
/// counts `least_conn` and the IPVS schedulers read never drift.
#[derive(Debug)]
pub struct Picked {
    up: Arc<Upstream>,
    id: DestId,
    done: bool,
}

impl Picked {
    /// Count a request on `id` of `up` (already counted by `pick`).
    #[must_use]
    pub fn new(up: &Arc<Upstream>, id: DestId) -> Self {
        Self {
            up: Arc::clone(up),
            id,
            done: false,
        }
    }
    /// The server.
    #[must_use]
    pub const fn id(&self) -> DestId {
        self.id
    }
    /// The upstream.
    #[must_use]
    pub fn upstream(&self) -> &Upstream {
        &self.up
    }
    /// End the request with `outcome`.
    pub fn release(mut self, outcome: Outcome) {
        self.done = true;
        self.up.release(self.id, outcome);
    }
}

impl Drop for Picked {
    fn drop(&mut self) {
        if !self.done {
            self.up.release(self.id, Outcome::Next);
        }
    }
}

/// Idle keep-alive connections to one server, sharded by worker thread so that workers do not
/// contend on one lock.
#[derive(Debug)]
pub struct Pool {
    shards: Box<[Shard]>,
    per_shard: usize,
}

/// One worker's idle connections, on a cache line of its own so that two workers taking and
/// putting connections do not invalidate each other's line.
#[derive(Debug, Default)]
#[repr(align(64))]
struct Shard(Mutex<Vec<Idle>>);

#[derive(Debug)]
struct Idle {
    conn: Conn,
    since: std::time::Instant,
}

/// How long an idle upstream connection is kept (nginx's `keepalive_timeout` default).
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

fn shard_index(n: usize) -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: usize = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    SHARD.with(|s| *s) % n.max(1)
}

impl Pool {
    /// A pool keeping up to `keepalive` idle connections in all (at least one per shard when
    /// `keepalive > 0`).
    #[must_use]
    pub fn new(workers: usize, keepalive: usize) -> Self {
        let n = workers.clamp(1, 64);
        let per_shard = if keepalive == 0 {
            0
        } else {
            keepalive.div_ceil(n)
        };
        Self {
            shards: (0..n).map(|_| Shard::default()).collect(),
            per_shard,
        }
    }

    fn shard(&self) -> Option<&Mutex<Vec<Idle>>> {
        self.shards
            .get(shard_index(self.shards.len()))
            .map(|s| &s.0)
    }

    /// An idle connection that is still open, most recently used first (`now`: about the
    /// current time; the request's start serves).
    pub fn take(&self, now: std::time::Instant) -> Option<Conn> {
        let shard = self.shard()?;
        loop {
            let idle = shard
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .pop()?;
            if idle.conn.is_reusable() && now.saturating_duration_since(idle.since) < IDLE_TIMEOUT {
                return Some(idle.conn);
            }
        }
    }

    /// Keep `conn` for reuse (dropped, which closes it, when the pool is full).
    pub fn put(&self, conn: Conn) {
        if self.per_shard == 0 {
            return;
        }
        let Some(shard) = self.shard() else { return };
        let mut v = shard
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if v.len() >= self.per_shard {
            v.remove(0);
        }
        v.push(Idle {
            conn,
            since: std::time::Instant::now(),
        });
    }
}

/// Why a new connection could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// `proxy_connect_timeout` passed.
    #[error("connect timed out (raise proxy_connect_timeout or check the server)")]
    Timeout,
    /// Refused, unreachable, ...
    #[error("connect failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Open a new connection to `addr` (with `TCP_NODELAY`).
///
/// # Errors
/// [`ConnectError`].
pub async fn connect(addr: SocketAddr, timeout: Duration) -> Result<Conn, ConnectError> {
    let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Err(_) => return Err(ConnectError::Timeout),
        Ok(r) => r?,
    };
    let _ = stream.set_nodelay(true);
    Ok(Conn::new(stream))
}
