//! The configuration model of `lbd` and its two file formats: TOML (`*.toml`) and the subset
//! of nginx's configuration language described in the [module documentation](super).
//!
//! Both formats produce the same [`Config`]; every error names the file, the line and the
//! column of the offending token.
//!
//! This module holds the model ([`Config`] and its parts), the helpers both readers share
//! (durations, sizes, addresses, validation) and the entry points [`load`] and [`parse_str`];
//! the readers themselves live in `nginx` (the nginx syntax) and `toml` (TOML tables).

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use http::HeaderName;
use lvs_sched::SchedulerKind;

use super::template::{Template, TemplateError};

mod nginx;
mod toml;

/// A configuration that could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{}: cannot read the configuration: {source} (check the path and its permissions)", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file was read but something in it is wrong.
    #[error("{}:{line}:{column}: {message}", path.display())]
    At {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column (in characters).
        column: usize,
        /// What is wrong and what to write instead.
        message: String,
    },
}

/// Where the access log goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogTarget {
    /// No access log.
    Off,
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
    /// A file, opened for appending.
    File(PathBuf),
}

impl LogTarget {
    /// The target `access_log` names: `off`, `stdout`, `stderr` (or their `/dev/` paths), or
    /// else a file.
    #[must_use]
    pub fn named(s: &str) -> Self {
        match s {
            "off" => Self::Off,
            "stdout" | "/dev/stdout" => Self::Stdout,
            "stderr" | "/dev/stderr" => Self::Stderr,
            p => Self::File(PathBuf::from(p)),
        }
    }
}

/// The access log's buffering (nginx's `access_log PATH combined buffer=SIZE flush=TIME`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogBuffer {
    /// Bytes gathered per worker before they are written (nginx's `buffer=`; 64 KiB when
    /// only `flush=` is given).
    pub size: usize,
    /// The longest a line waits in the buffer (nginx's `flush=`; `None`: until the buffer is
    /// full, a reload or reopen, or the stop, as nginx without `flush=`).
    pub flush: Option<Duration>,
}

/// An `access_log` directive of a `server` or `location` block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogConf {
    /// Where the lines go.
    pub target: LogTarget,
    /// Its `buffer=`/`flush=`.
    pub buffer: Option<LogBuffer>,
}

/// The buffer size nginx uses when `flush=` is given without `buffer=`.
pub const DEFAULT_LOG_BUFFER: usize = 64 * 1024;

/// Parse the arguments after the path of `access_log` (nginx's
/// `[FORMAT] [buffer=SIZE] [flush=TIME]`); the only format is `combined` (with lbd's upstream
/// fields after it).
///
/// # Errors
/// A message naming the argument that is not understood.
pub fn parse_log_params<'a>(
    params: impl IntoIterator<Item = &'a str>,
) -> Result<Option<LogBuffer>, (usize, String)> {
    let mut size = None;
    let mut flush = None;
    for (i, p) in params.into_iter().enumerate() {
        let at = |m: String| (i, m);
        if let Some(v) = p.strip_prefix("buffer=") {
            let n = parse_size(v).map_err(at)?;
            if n == 0 {
                return Err(at(
                    "`buffer=0`: leave `buffer=` out to write each line at once".into(),
                ));
            }
            // More than a worker should hold: nginx warns past 64 KiB for the same reason.
            if n > 16 << 20 {
                return Err(at(format!("`buffer={v}` is too large: at most 16m")));
            }
            size = Some(usize::try_from(n).map_err(|_| at(format!("`buffer={v}` is too large")))?);
        } else if let Some(v) = p.strip_prefix("flush=") {
            let d = parse_duration(v).map_err(at)?;
            if d.is_zero() {
                return Err(at(
                    "`flush=0`: give a time such as 1s, or leave `buffer=` out".into(),
                ));
            }
            flush = Some(d);
        } else if i == 0 && p == "combined" {
        } else if p.starts_with("gzip") || p.starts_with("if=") {
            return Err(at(format!("`access_log ... {p}` is not supported by lbd")));
        } else if i == 0 && !p.contains('=') {
            return Err(at(format!(
                "unknown log format `{p}`: lbd writes nginx's `combined` format followed by \
                 its upstream fields; write `combined` or leave the format out"
            )));
        } else {
            return Err(at(format!(
                "unknown `access_log` parameter `{p}`: use buffer=SIZE and flush=TIME"
            )));
        }
    }
    Ok(match (size, flush) {
        (None, None) => None,
        (size, flush) => Some(LogBuffer {
            size: size.unwrap_or(DEFAULT_LOG_BUFFER),
            flush,
        }),
    })
}

/// The whole configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// The file it was read from.
    pub path: PathBuf,
    /// Worker threads of the runtime (0: one per CPU).
    pub workers: usize,
    /// The name `lbd_status` locations answer (default: the host name).
    pub node_name: String,
    /// The pid file written at start (the `-p`/`--pid` option wins).
    pub pid_file: Option<PathBuf>,
    /// The access log.
    pub access_log: LogTarget,
    /// `buffer=`/`flush=` of `access_log`: lines are gathered per worker and written in
    /// batches (`None`: one write per line).
    pub access_log_buffer: Option<LogBuffer>,
    /// How long a graceful stop waits for requests in flight.
    pub shutdown_timeout: Duration,
    /// The `upstream` blocks.
    pub upstreams: Vec<UpstreamConf>,
    /// The `server` blocks.
    pub servers: Vec<ServerConf>,
}

/// One `upstream NAME { ... }` block.
#[derive(Clone, Debug)]
pub struct UpstreamConf {
    /// Its name, as `proxy_pass http://NAME` refers to it.
    pub name: String,
    /// The balancer.
    pub kind: SchedulerKind,
    /// The key of `hash KEY [consistent]`.
    pub hash_key: Option<Template>,
    /// `sticky cookie NAME`.
    pub sticky_cookie: Option<String>,
    /// Idle keep-alive connections kept per server (`keepalive N`, default 32; 0 disables).
    pub keepalive: usize,
    /// The servers, in order.
    pub peers: Vec<PeerConf>,
    /// The active health check, if any.
    pub health: Option<HealthConf>,
}

/// One `server ADDR params;` line of an upstream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerConf {
    /// The address.
    pub addr: SocketAddr,
    /// `weight=` (default 1).
    pub weight: u32,
    /// `max_fails=` (default 1; 0 disables passive health).
    pub max_fails: u32,
    /// `fail_timeout=` (default 10 s).
    pub fail_timeout: Duration,
    /// `max_conns=` (default 0: unlimited).
    pub max_conns: u32,
    /// `backup`.
    pub backup: bool,
    /// `down`.
    pub down: bool,
}

/// What an active health check does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HealthKind {
    /// Connect over TCP.
    Tcp,
    /// `GET uri` expecting `status`.
    Http {
        /// The path requested.
        uri: String,
        /// The expected status.
        status: u16,
    },
}

/// `health_check ...;` of an upstream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthConf {
    /// The probe.
    pub kind: HealthKind,
    /// Time between probes (default 5 s).
    pub interval: Duration,
    /// Probe timeout (default 2 s).
    pub timeout: Duration,
    /// Consecutive passes that bring a server back (default 2).
    pub rise: u32,
    /// Consecutive failures that take it out (default 3).
    pub fall: u32,
}

impl Default for HealthConf {
    fn default() -> Self {
        Self {
            kind: HealthKind::Http {
                uri: "/".into(),
                status: 200,
            },
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(2),
            rise: 2,
            fall: 3,
        }
    }
}

/// One `server { ... }` block.
#[derive(Clone, Debug)]
pub struct ServerConf {
    /// The `listen` addresses.
    pub listen: Vec<SocketAddr>,
    /// Its own `access_log` (`None`: the top-level one).
    pub access_log: Option<LogConf>,
    /// The locations, in file order.
    pub locations: Vec<LocationConf>,
}

/// One `location [=] PATH { ... }` block.
#[derive(Clone, Debug)]
pub struct LocationConf {
    /// `=`: the path must match exactly; otherwise it is a prefix.
    pub exact: bool,
    /// The path.
    pub path: String,
    /// What the location does.
    pub action: Action,
    /// The `access_log` of the location, or else of its server (`None`: the top-level one).
    pub access_log: Option<LogConf>,
}

/// The handler of a location.
#[derive(Clone, Debug)]
pub enum Action {
    /// `proxy_pass http://NAME`.
    Proxy(ProxyConf),
    /// `lbd_status`: answer `node_name`.
    Status,
    /// `return CODE [TEXT]`.
    Return {
        /// The status.
        status: u16,
        /// The body.
        body: String,
    },
}

/// The `proxy_next_upstream` conditions, as a bit set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NextUpstream(pub u16);

impl NextUpstream {
    /// `error`.
    pub const ERROR: u16 = 1;
    /// `timeout`.
    pub const TIMEOUT: u16 = 1 << 1;
    /// `invalid_header`.
    pub const INVALID_HEADER: u16 = 1 << 2;
    /// `http_500`.
    pub const HTTP_500: u16 = 1 << 3;
    /// `http_502`.
    pub const HTTP_502: u16 = 1 << 4;
    /// `http_503`.
    pub const HTTP_503: u16 = 1 << 5;
    /// `http_504`.
    pub const HTTP_504: u16 = 1 << 6;
    /// `http_403`.
    pub const HTTP_403: u16 = 1 << 7;
    /// `http_404`.
    pub const HTTP_404: u16 = 1 << 8;
    /// `http_429`.
    pub const HTTP_429: u16 = 1 << 9;
    /// `non_idempotent`.
    pub const NON_IDEMPOTENT: u16 = 1 << 10;

    const NAMES: [(&'static str, u16); 11] = [
        ("error", Self::ERROR),
        ("timeout", Self::TIMEOUT),
        ("invalid_header", Self::INVALID_HEADER),
        ("http_500", Self::HTTP_500),
        ("http_502", Self::HTTP_502),
        ("http_503", Self::HTTP_503),
        ("http_504", Self::HTTP_504),
        ("http_403", Self::HTTP_403),
        ("http_404", Self::HTTP_404),
        ("http_429", Self::HTTP_429),
        ("non_idempotent", Self::NON_IDEMPOTENT),
    ];

    /// nginx's default: `error timeout`.
    pub const DEFAULT: Self = Self(Self::ERROR | Self::TIMEOUT);

    /// Whether `bit` is set.
    #[must_use]
    pub const fn has(self, bit: u16) -> bool {
        self.0 & bit != 0
    }

    /// The bit of an `http_NNN` condition for a response status, if there is one.
    #[must_use]
    pub const fn status_bit(status: u16) -> Option<u16> {
        match status {
            500 => Some(Self::HTTP_500),
            502 => Some(Self::HTTP_502),
            503 => Some(Self::HTTP_503),
            504 => Some(Self::HTTP_504),
            403 => Some(Self::HTTP_403),
            404 => Some(Self::HTTP_404),
            429 => Some(Self::HTTP_429),
            _ => None,
        }
    }

    /// Parse the words of the directive (`off` alone clears everything).
    ///
    /// # Errors
    /// A message naming the unknown word and the valid ones.
    pub fn parse<'a>(words: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        let mut bits = 0;
        let mut off = false;
        let mut n = 0;
        for w in words {
            n += 1;
            if w == "off" {
                off = true;
                continue;
            }
            match Self::NAMES.iter().find(|(name, _)| *name == w) {
                Some((_, b)) => bits |= b,
                None => {
                    return Err(format!(
                        "unknown proxy_next_upstream condition `{w}`: use off or any of error, \
                         timeout, invalid_header, http_500, http_502, http_503, http_504, \
                         http_403, http_404, http_429, non_idempotent"
                    ));
                }
            }
        }
        if off && n > 1 {
            return Err(
                "proxy_next_upstream `off` cannot be combined with other conditions".into(),
            );
        }
        if n == 0 {
            return Err("proxy_next_upstream needs at least one condition (or `off`)".into());
        }
        Ok(Self(bits))
    }
}

/// The proxy settings of a location.
#[derive(Clone, Debug)]
pub struct ProxyConf {
    /// The upstream name of `proxy_pass http://NAME`.
    pub upstream: String,
    /// `proxy_next_upstream`.
    pub next_upstream: NextUpstream,
    /// `proxy_next_upstream_tries` (0: as many as there are servers).
    pub tries: u32,
    /// `proxy_next_upstream_timeout` (zero: no limit).
    pub next_timeout: Duration,
    /// `proxy_connect_timeout` (default 60 s).
    pub connect_timeout: Duration,
    /// `proxy_read_timeout` (default 60 s): between two reads from the upstream.
    pub read_timeout: Duration,
    /// `proxy_send_timeout` (default 60 s): sending the request.
    pub send_timeout: Duration,
    /// `proxy_set_header NAME VALUE` (an empty value removes the header).
    pub set_headers: Vec<(HeaderName, Template)>,
    /// `client_max_body_size` (default 1 MiB; 0: no limit).
    pub client_max_body_size: u64,
}

impl ProxyConf {
    fn new(upstream: String) -> Self {
        Self {
            upstream,
            next_upstream: NextUpstream::DEFAULT,
            tries: 0,
            next_timeout: Duration::ZERO,
            connect_timeout: Duration::from_secs(60),
            read_timeout: Duration::from_secs(60),
            send_timeout: Duration::from_secs(60),
            set_headers: Vec::new(),
            client_max_body_size: 1 << 20,
        }
    }
}

/// Read and check a configuration file: TOML when the name ends in `.toml`, the nginx
/// subset otherwise.
///
/// # Errors
/// [`ConfigError`] naming the file, line and column.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_str(path, &text)
}

/// Parse configuration text read from `path` (the name picks the format).
///
/// # Errors
/// [`ConfigError`] naming the file, line and column.
pub fn parse_str(path: &Path, text: &str) -> Result<Config, ConfigError> {
    let is_toml = path.extension().is_some_and(|e| e == "toml");
    let at = |pos: Pos, message: String| ConfigError::At {
        path: path.to_path_buf(),
        line: pos.line,
        column: pos.column,
        message,
    };
    let cfg = if is_toml {
        toml::parse(path, text).map_err(|(p, m)| at(p, m))?
    } else {
        nginx::parse(path, text).map_err(|(p, m)| at(p, m))?
    };
    Ok(cfg)
}

/// A position in the file (1-based).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pos {
    /// Line.
    pub line: usize,
    /// Column, in characters.
    pub column: usize,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// The position of byte `offset` in `text`.
pub(crate) fn pos_of(text: &str, offset: usize) -> Pos {
    let mut line = 1;
    let mut column = 1;
    for (i, c) in text.char_indices() {
        if i >= offset {
            break;
        }
        if c == '\n' {
            line += 1;
            column = 1;
        } else {
            column += 1;
        }
    }
    Pos { line, column }
}

/// Parse an nginx time (`30s`, `500ms`, `1m`, `2h`, `1d`, a bare number is seconds; units
/// may be combined: `1m30s`).
///
/// # Errors
/// A message saying what a valid time looks like.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad =
        || format!("invalid time `{s}`: write e.g. 500ms, 30s, 1m, 1h (a bare number is seconds)");
    if s.is_empty() {
        return Err(bad());
    }
    if let Ok(n) = s.parse::<u64>() {
        return Ok(Duration::from_secs(n));
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let (num, tail) = rest.split_at(digits);
        let n: u64 = num.parse().map_err(|_| bad())?;
        let unit = tail.bytes().take_while(u8::is_ascii_alphabetic).count();
        let (u, tail) = tail.split_at(unit);
        let d = match u {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.saturating_mul(60)),
            "h" => Duration::from_secs(n.saturating_mul(3600)),
            "d" => Duration::from_secs(n.saturating_mul(86400)),
            _ => return Err(bad()),
        };
        total = total.saturating_add(d);
        rest = tail;
    }
    Ok(total)
}

/// Parse an nginx size (`1m`, `512k`, `10`).
///
/// # Errors
/// A message saying what a valid size looks like.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let bad = || format!("invalid size `{s}`: write e.g. 512, 64k, 1m, 1g");
    let (num, mult) = match s.as_bytes().last() {
        Some(b'k' | b'K') => (&s[..s.len() - 1], 1 << 10),
        Some(b'm' | b'M') => (&s[..s.len() - 1], 1 << 20),
        Some(b'g' | b'G') => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    let n: u64 = num.parse().map_err(|_| bad())?;
    n.checked_mul(mult).ok_or_else(bad)
}

/// Resolve `host:port` (a literal address first, then the system resolver, first answer).
fn resolve(s: &str) -> Result<SocketAddr, String> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    if !s.contains(':') {
        // nginx's default port for `server`.
        return resolve(&format!("{s}:80"));
    }
    match s.to_socket_addrs() {
        Ok(mut it) => it
            .next()
            .ok_or_else(|| format!("`{s}` resolves to no address: give an IP:PORT")),
        Err(e) => Err(format!("cannot resolve `{s}`: {e}; give an IP:PORT")),
    }
}

/// Resolve a `listen` value: `PORT`, `ADDR:PORT`, `[V6]:PORT`, `*:PORT`.
fn listen_addr(s: &str) -> Result<SocketAddr, String> {
    if let Ok(p) = s.parse::<u16>() {
        return Ok(SocketAddr::from(([0, 0, 0, 0], p)));
    }
    if let Some(p) = s.strip_prefix("*:") {
        let p: u16 = p
            .parse()
            .map_err(|_| format!("invalid listen port in `{s}`: use 1..65535"))?;
        return Ok(SocketAddr::from(([0, 0, 0, 0], p)));
    }
    s.parse::<SocketAddr>()
        .map_err(|_| format!("invalid listen address `{s}`: write PORT, IP:PORT or [IPv6]:PORT"))
}

fn default_node_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "lbd".into())
}

/// Whether nginx allows `backup` with this balancer (only round robin and `least_conn`).
const fn backup_ok(kind: SchedulerKind) -> bool {
    matches!(
        kind,
        SchedulerKind::NginxRoundRobin | SchedulerKind::NginxLeastConn
    )
}

/// Checks shared by both formats, after parsing: references, backup, listen addresses.
fn validate(cfg: &Config, where_: &dyn Fn(Item) -> Pos) -> Result<(), (Pos, String)> {
    for (ui, u) in cfg.upstreams.iter().enumerate() {
        if u.peers.is_empty() {
            return Err((
                where_(Item::Upstream(ui)),
                format!("upstream `{}` has no server: add `server IP:PORT;`", u.name),
            ));
        }
        if cfg.upstreams[..ui].iter().any(|o| o.name == u.name) {
            return Err((
                where_(Item::Upstream(ui)),
                format!("duplicate upstream `{}`: rename one of them", u.name),
            ));
        }
        if !backup_ok(u.kind)
            && let Some(pi) = u.peers.iter().position(|p| p.backup)
        {
            return Err((
                where_(Item::Peer(ui, pi)),
                format!(
                    "`backup` cannot be used with the `{}` balancer (nginx allows it only with \
                     round robin and least_conn): remove it or change the balancer",
                    u.kind
                ),
            ));
        }
        if (u.kind == SchedulerKind::NginxHash || u.kind == SchedulerKind::NginxChash)
            && u.hash_key.is_none()
        {
            return Err((
                where_(Item::Upstream(ui)),
                format!(
                    "upstream `{}`: the hash balancer needs a key (`hash $remote_addr;`)",
                    u.name
                ),
            ));
        }
    }
    if cfg.servers.is_empty() {
        return Err((
            Pos { line: 1, column: 1 },
            "no `server` block: add one with a `listen` and a `location`".into(),
        ));
    }
    for (si, s) in cfg.servers.iter().enumerate() {
        if s.listen.is_empty() {
            return Err((
                where_(Item::Server(si)),
                "server block without `listen`: add `listen IP:PORT;`".into(),
            ));
        }
        for (li, l) in s.locations.iter().enumerate() {
            if let Action::Proxy(p) = &l.action
                && !cfg.upstreams.iter().any(|u| u.name == p.upstream)
            {
                return Err((
                    where_(Item::Location(si, li)),
                    format!(
                        "proxy_pass names unknown upstream `{}`: define `upstream {} {{ ... }}`",
                        p.upstream, p.upstream
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// `proxy_pass http://IP:PORT` without an upstream of that name: as nginx does, an implicit
/// upstream with that one server (default parameters, round robin).
fn implicit_upstreams(cfg: &mut Config) {
    let mut extra = Vec::new();
    for s in &cfg.servers {
        for l in &s.locations {
            let Action::Proxy(p) = &l.action else {
                continue;
            };
            if cfg
                .upstreams
                .iter()
                .chain(&extra)
                .any(|u: &UpstreamConf| u.name == p.upstream)
            {
                continue;
            }
            let Ok(addr) = p.upstream.parse::<SocketAddr>() else {
                continue;
            };
            extra.push(UpstreamConf {
                name: p.upstream.clone(),
                kind: SchedulerKind::NginxRoundRobin,
                hash_key: None,
                sticky_cookie: None,
                keepalive: 32,
                peers: vec![PeerConf {
                    addr,
                    weight: 1,
                    max_fails: 1,
                    fail_timeout: Duration::from_secs(10),
                    max_conns: 0,
                    backup: false,
                    down: false,
                }],
                health: None,
            });
        }
    }
    cfg.upstreams.extend(extra);
}

/// Something [`validate`] may point at.
#[derive(Clone, Copy, Debug)]
enum Item {
    Upstream(usize),
    Peer(usize, usize),
    Server(usize),
    Location(usize, usize),
}

fn parse_template(s: &str) -> Result<Template, String> {
    Template::parse(s).map_err(|e: TemplateError| e.to_string())
}

fn parse_header_name(s: &str) -> Result<HeaderName, String> {
    HeaderName::from_bytes(s.as_bytes())
        .map_err(|_| format!("invalid header name `{s}`: use letters, digits and `-`"))
}

/// The scheduler of `scheduler NAME` / `balance = NAME`.
fn scheduler(name: &str) -> Result<SchedulerKind, String> {
    name.parse::<SchedulerKind>().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    /// Parse `text` as the file `name` and return the error's line, column and message.
    pub(super) fn err_at(text: &str, name: &str) -> (usize, usize, String) {
        match parse_str(Path::new(name), text).unwrap_err() {
            ConfigError::At {
                line,
                column,
                message,
                ..
            } => (line, column, message),
            e => panic!("unexpected {e}"),
        }
    }

    #[test]
    fn access_log_buffer_and_flush() {
        let srv = "\nserver { listen 127.0.0.1:1; location / { return 200; } }\n";
        let parse = |head: &str| parse_str(Path::new("a.conf"), &format!("{head}{srv}"));
        let c = parse("access_log /tmp/a.log combined buffer=32k flush=2s;").unwrap();
        assert_eq!(c.access_log, LogTarget::File(PathBuf::from("/tmp/a.log")));
        let want = LogBuffer {
            size: 32 * 1024,
            flush: Some(Duration::from_secs(2)),
        };
        assert_eq!(c.access_log_buffer, Some(want));
        // flush= alone: nginx's 64k buffer; buffer= alone: no timer; neither: no buffer.
        let c = parse("access_log /tmp/a.log combined flush=500ms;").unwrap();
        assert_eq!(c.access_log_buffer.unwrap().size, DEFAULT_LOG_BUFFER);
        let c = parse("access_log stdout buffer=8k;").unwrap();
        assert_eq!(c.access_log_buffer.unwrap().flush, None);
        assert_eq!(
            parse("access_log /tmp/a.log;").unwrap().access_log_buffer,
            None
        );
        assert_eq!(
            parse("access_log /tmp/a.log combined;")
                .unwrap()
                .access_log_buffer,
            None
        );
        for (bad, column, says) in [
            (
                "access_log /tmp/a.log main;",
                23,
                "unknown log format `main`",
            ),
            ("access_log /tmp/a.log combined buffr=1k;", 32, "buffr=1k"),
            ("access_log /tmp/a.log combined buffer=0;", 32, "buffer=0"),
            (
                "access_log /tmp/a.log combined buffer=1q;",
                32,
                "invalid size",
            ),
            ("access_log /tmp/a.log combined flush=0;", 32, "flush=0"),
            ("access_log /tmp/a.log combined gzip;", 32, "not supported"),
            ("access_log off buffer=1k;", 1, "takes 1 argument"),
        ] {
            let (l, c, m) = err_at(&format!("{bad}{srv}"), "a.conf");
            assert_eq!((l, c), (1, column), "{bad}: {m}");
            assert!(m.contains(says), "{bad}: {m}");
        }
        let toml = "access_log = \"/tmp/a.log\"\naccess_log_buffer = \"16k\"\naccess_log_flush = \"1s\"\n[[server]]\nlisten = [\"127.0.0.1:1\"]\n[[server.location]]\npath = \"/\"\nreturn = 200\n";
        let c = parse_str(Path::new("a.toml"), toml).unwrap();
        let want = LogBuffer {
            size: 16 * 1024,
            flush: Some(Duration::from_secs(1)),
        };
        assert_eq!(c.access_log_buffer, Some(want));
        let bad = toml.replace("16k", "16q");
        let (l, c, m) = err_at(&bad, "a.toml");
        assert_eq!((l, c), (2, 21), "{m}");
        assert!(m.contains("invalid size `16q`"), "{m}");
        let (l, c, m) = err_at(&toml.replace("\"1s\"", "\"soon\""), "a.toml");
        assert_eq!((l, c), (3, 20), "{m}");
        assert!(m.contains("invalid time"), "{m}");
        let late = toml.replacen(
            "access_log_buffer",
            "shutdown_timeout = \"x\"\naccess_log_buffer",
            1,
        );
        let (l, c, m) = err_at(&late, "a.toml");
        assert_eq!((l, c), (2, 20), "{m}");
    }

    #[test]
    fn server_and_location_access_logs_inherit() {
        let c = parse_str(
            Path::new("a.conf"),
            "access_log off;\nserver { listen 127.0.0.1:1; access_log /s.log buffer=4k;\n\
             location / { return 200; }\n location /q { access_log off; return 200; } }\n\
             server { listen 127.0.0.1:2; location / { return 200; } }\n",
        )
        .unwrap();
        let site = LogConf {
            target: LogTarget::File(PathBuf::from("/s.log")),
            buffer: Some(LogBuffer {
                size: 4096,
                flush: None,
            }),
        };
        let off = LogConf {
            target: LogTarget::Off,
            buffer: None,
        };
        assert_eq!(c.access_log, LogTarget::Off);
        assert_eq!(c.servers[0].access_log.as_ref(), Some(&site));
        assert_eq!(c.servers[0].locations[0].access_log.as_ref(), Some(&site));
        assert_eq!(c.servers[0].locations[1].access_log.as_ref(), Some(&off));
        assert_eq!(c.servers[1].access_log, None);
        assert_eq!(c.servers[1].locations[0].access_log, None);
        let (l, c, m) = err_at(
            "server { listen 127.0.0.1:1;\n location / { access_log /x main; return 200; } }",
            "a.conf",
        );
        assert_eq!((l, c), (2, 29), "{m}");
        let t = "[[server]]\nlisten = [\"127.0.0.1:1\"]\naccess_log = \"/s.log\"\n\
                 access_log_buffer = \"4k\"\n[[server.location]]\npath = \"/\"\nreturn = 200\n\
                 [[server.location]]\npath = \"/q\"\naccess_log = \"off\"\nreturn = 200\n";
        let c = parse_str(Path::new("a.toml"), t).unwrap();
        assert_eq!(c.servers[0].locations[0].access_log.as_ref(), Some(&site));
        assert_eq!(c.servers[0].locations[1].access_log.as_ref(), Some(&off));
        let bad = t.replace("access_log = \"/s.log\"\n", "");
        let (_, _, m) = err_at(&bad, "a.toml");
        assert!(m.contains("need access_log"), "{m}");
    }

    #[test]
    fn proxy_pass_to_an_address_makes_an_implicit_upstream() {
        let c = parse_str(
            Path::new("x.conf"),
            "server { listen 127.0.0.1:1; location / { proxy_pass http://127.0.0.1:9; } }",
        )
        .unwrap();
        assert_eq!(c.upstreams.len(), 1);
        assert_eq!(c.upstreams[0].name, "127.0.0.1:9");
        assert_eq!(c.upstreams[0].peers[0].addr, "127.0.0.1:9".parse().unwrap());
    }

    #[test]
    fn durations_and_sizes() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("7").unwrap(), Duration::from_secs(7));
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("").is_err());
        assert_eq!(parse_size("2k").unwrap(), 2048);
        assert!(parse_size("k").is_err());
    }
}
