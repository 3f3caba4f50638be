//! The configuration model of `lbd` and its two file formats: TOML (`*.toml`) and the subset
//! of nginx's configuration language described in the [module documentation](super).
//!
//! Both formats produce the same [`Config`]; every error names the file, the line and the
//! column of the offending token.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use http::HeaderName;
use lvs_sched::SchedulerKind;

use super::template::{Template, TemplateError};

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
        toml_conf::parse(path, text).map_err(|(p, m)| at(p, m))?
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

mod nginx {
    //! The nginx-syntax parser.

    use super::*;

    #[derive(Clone, Debug)]
    struct Tok {
        text: String,
        pos: Pos,
        quoted: bool,
    }

    #[derive(Clone, Debug)]
    enum Node {
        Directive {
            name: Tok,
            args: Vec<Tok>,
            block: Option<Vec<Self>>,
        },
    }

    type Err = (Pos, String);

    struct Lexer<'a> {
        chars: std::iter::Peekable<std::str::CharIndices<'a>>,
        line: usize,
        col: usize,
        end: Pos,
    }

    #[derive(Debug)]
    enum Lex {
        Word(Tok),
        Semi(Pos),
        Open(Pos),
        Close(Pos),
    }

    impl Lexer<'_> {
        fn bump(&mut self) -> Option<char> {
            let (_, c) = self.chars.next()?;
            if c == '\n' {
                self.line += 1;
                self.col = 1;
            } else {
                self.col += 1;
            }
            self.end = Pos {
                line: self.line,
                column: self.col,
            };
            Some(c)
        }
        fn pos(&self) -> Pos {
            Pos {
                line: self.line,
                column: self.col,
            }
        }
        fn next_tok(&mut self) -> Result<Option<Lex>, Err> {
            loop {
                let Some(&(_, c)) = self.chars.peek() else {
                    return Ok(None);
                };
                if c.is_whitespace() {
                    self.bump();
                } else if c == '#' {
                    while let Some(&(_, c)) = self.chars.peek() {
                        if c == '\n' {
                            break;
                        }
                        self.bump();
                    }
                } else {
                    break;
                }
            }
            let pos = self.pos();
            let Some(&(_, c)) = self.chars.peek() else {
                return Ok(None);
            };
            match c {
                ';' => {
                    self.bump();
                    return Ok(Some(Lex::Semi(pos)));
                }
                '{' => {
                    self.bump();
                    return Ok(Some(Lex::Open(pos)));
                }
                '}' => {
                    self.bump();
                    return Ok(Some(Lex::Close(pos)));
                }
                '"' | '\'' => {
                    self.bump();
                    let mut text = String::new();
                    loop {
                        match self.bump() {
                            None => {
                                return Err((
                                    pos,
                                    format!("unterminated string: add the closing {c}"),
                                ));
                            }
                            Some('\\') => match self.bump() {
                                Some('n') => text.push('\n'),
                                Some('t') => text.push('\t'),
                                Some(o) => text.push(o),
                                None => {
                                    return Err((
                                        pos,
                                        format!("unterminated string: add the closing {c}"),
                                    ));
                                }
                            },
                            Some(q) if q == c => break,
                            Some(o) => text.push(o),
                        }
                    }
                    return Ok(Some(Lex::Word(Tok {
                        text,
                        pos,
                        quoted: true,
                    })));
                }
                _ => {}
            }
            let mut text = String::new();
            while let Some(&(_, c)) = self.chars.peek() {
                if c.is_whitespace() || c == ';' || c == '{' || c == '}' {
                    break;
                }
                if c == '\\' {
                    self.bump();
                    if let Some(n) = self.bump() {
                        text.push(n);
                    }
                    continue;
                }
                text.push(c);
                self.bump();
            }
            Ok(Some(Lex::Word(Tok {
                text,
                pos,
                quoted: false,
            })))
        }
    }

    fn parse_block(lx: &mut Lexer<'_>, open: Option<Pos>) -> Result<Vec<Node>, Err> {
        let mut nodes = Vec::new();
        let mut words: Vec<Tok> = Vec::new();
        loop {
            match lx.next_tok()? {
                None => {
                    if let Some(p) = open {
                        return Err((p, "unclosed `{`: add the matching `}`".into()));
                    }
                    if let Some(w) = words.first() {
                        return Err((
                            lx.end,
                            format!("unexpected end of file: directive `{}` needs a `;`", w.text),
                        ));
                    }
                    return Ok(nodes);
                }
                Some(Lex::Word(t)) => words.push(t),
                Some(Lex::Semi(p)) => {
                    let mut it = words.drain(..);
                    let Some(name) = it.next() else {
                        return Err((p, "unexpected `;`: remove it".into()));
                    };
                    nodes.push(Node::Directive {
                        name,
                        args: it.collect(),
                        block: None,
                    });
                }
                Some(Lex::Open(p)) => {
                    let mut it = words.drain(..);
                    let Some(name) = it.next() else {
                        return Err((p, "unexpected `{`: a block needs a directive name".into()));
                    };
                    let args = it.collect();
                    let block = parse_block(lx, Some(p))?;
                    nodes.push(Node::Directive {
                        name,
                        args,
                        block: Some(block),
                    });
                }
                Some(Lex::Close(p)) => {
                    if let Some(w) = words.first() {
                        return Err((
                            w.pos,
                            format!("directive `{}` is not terminated by `;`", w.text),
                        ));
                    }
                    if open.is_none() {
                        return Err((p, "unexpected `}`: no block is open here".into()));
                    }
                    return Ok(nodes);
                }
            }
        }
    }

    /// `access_log off | stdout | stderr | PATH [combined] [buffer=SIZE] [flush=TIME]`.
    fn log_directive(name: &Tok, args: &[Tok]) -> Result<LogConf, Err> {
        need_args(name, args, 1, usize::MAX)?;
        let target = LogTarget::named(&args[0].text);
        if target == LogTarget::Off {
            need_args(name, args, 1, 1)?;
        }
        let buffer = parse_log_params(args[1..].iter().map(|a| a.text.as_str()))
            .map_err(|(i, m)| (args.get(1 + i).map_or(name.pos, |a| a.pos), m))?;
        Ok(LogConf { target, buffer })
    }

    fn need_args(name: &Tok, args: &[Tok], min: usize, max: usize) -> Result<(), Err> {
        if args.len() < min || args.len() > max {
            let want = if min == max {
                format!("{min}")
            } else if max == usize::MAX {
                format!("at least {min}")
            } else {
                format!("{min} to {max}")
            };
            return Err((
                name.pos,
                format!(
                    "`{}` takes {want} argument(s), {} given",
                    name.text,
                    args.len()
                ),
            ));
        }
        Ok(())
    }

    fn no_block(name: &Tok, block: Option<&Vec<Node>>) -> Result<(), Err> {
        if block.is_some() {
            return Err((
                name.pos,
                format!("`{}` does not take a block: end it with `;`", name.text),
            ));
        }
        Ok(())
    }

    fn block<'a>(name: &Tok, block: Option<&'a Vec<Node>>) -> Result<&'a [Node], Err> {
        block.map(Vec::as_slice).ok_or_else(|| {
            (
                name.pos,
                format!("`{}` needs a block `{{ ... }}`", name.text),
            )
        })
    }

    fn at<T>(t: &Tok, r: Result<T, String>) -> Result<T, Err> {
        r.map_err(|m| (t.pos, m))
    }

    fn num<T: std::str::FromStr>(t: &Tok, what: &str) -> Result<T, Err> {
        t.text.parse::<T>().map_err(|_| {
            (
                t.pos,
                format!("invalid {what} `{}`: give a whole number", t.text),
            )
        })
    }

    fn flag(t: &Tok) -> Result<bool, Err> {
        match t.text.as_str() {
            "on" => Ok(true),
            "off" => Ok(false),
            _ => Err((t.pos, format!("expected `on` or `off`, found `{}`", t.text))),
        }
    }

    struct Positions {
        upstreams: Vec<Pos>,
        peers: Vec<Vec<Pos>>,
        servers: Vec<Pos>,
        locations: Vec<Vec<Pos>>,
    }

    pub(super) fn parse(path: &Path, text: &str) -> Result<Config, Err> {
        let mut lx = Lexer {
            chars: text.char_indices().peekable(),
            line: 1,
            col: 1,
            end: Pos { line: 1, column: 1 },
        };
        let nodes = parse_block(&mut lx, None)?;
        let mut cfg = Config {
            path: path.to_path_buf(),
            workers: 0,
            node_name: String::new(),
            pid_file: None,
            access_log: LogTarget::Stdout,
            access_log_buffer: None,
            shutdown_timeout: Duration::from_secs(30),
            upstreams: Vec::new(),
            servers: Vec::new(),
        };
        let mut ps = Positions {
            upstreams: Vec::new(),
            peers: Vec::new(),
            servers: Vec::new(),
            locations: Vec::new(),
        };
        main_block(&nodes, &mut cfg, &mut ps, true)?;
        implicit_upstreams(&mut cfg);
        if cfg.node_name.is_empty() {
            cfg.node_name = default_node_name();
        }
        let where_ = |i: Item| -> Pos {
            let p = match i {
                Item::Upstream(u) => ps.upstreams.get(u),
                Item::Peer(u, p) => ps.peers.get(u).and_then(|v| v.get(p)),
                Item::Server(s) => ps.servers.get(s),
                Item::Location(s, l) => ps.locations.get(s).and_then(|v| v.get(l)),
            };
            p.copied().unwrap_or(Pos { line: 1, column: 1 })
        };
        validate(&cfg, &where_)?;
        Ok(cfg)
    }

    /// The main context and `http { }` (which we flatten).
    fn main_block(
        nodes: &[Node],
        cfg: &mut Config,
        ps: &mut Positions,
        top: bool,
    ) -> Result<(), Err> {
        for Node::Directive {
            name,
            args,
            block: b,
        } in nodes
        {
            match name.text.as_str() {
                "http" if top => {
                    need_args(name, args, 0, 0)?;
                    main_block(block(name, b.as_ref())?, cfg, ps, false)?;
                }
                "events" if top => {
                    // Accepted for nginx compatibility; connections are not limited.
                    block(name, b.as_ref())?;
                }
                "worker_processes" | "workers" | "worker_threads" => {
                    no_block(name, b.as_ref())?;
                    need_args(name, args, 1, 1)?;
                    cfg.workers = if args[0].text == "auto" {
                        0
                    } else {
                        num(&args[0], "worker count")?
                    };
                }
                "node_name" => {
                    no_block(name, b.as_ref())?;
                    need_args(name, args, 1, 1)?;
                    cfg.node_name.clone_from(&args[0].text);
                }
                "pid" => {
                    no_block(name, b.as_ref())?;
                    need_args(name, args, 1, 1)?;
                    cfg.pid_file = Some(PathBuf::from(&args[0].text));
                }
                "shutdown_timeout" | "worker_shutdown_timeout" => {
                    no_block(name, b.as_ref())?;
                    need_args(name, args, 1, 1)?;
                    cfg.shutdown_timeout = at(&args[0], parse_duration(&args[0].text))?;
                }
                "access_log" => {
                    no_block(name, b.as_ref())?;
                    let l = log_directive(name, args)?;
                    cfg.access_log = l.target;
                    cfg.access_log_buffer = l.buffer;
                }
                // Accepted and ignored: errors go to standard error.
                "error_log" | "include" if !top || name.text == "error_log" => {
                    if name.text == "include" {
                        return Err((
                            name.pos,
                            "`include` is not supported: put everything in one file".into(),
                        ));
                    }
                }
                "upstream" => {
                    need_args(name, args, 1, 1)?;
                    let body = block(name, b.as_ref())?;
                    ps.upstreams.push(name.pos);
                    let mut peers = Vec::new();
                    let u = upstream(&args[0].text, body, &mut peers)?;
                    ps.peers.push(peers);
                    cfg.upstreams.push(u);
                }
                "server" => {
                    need_args(name, args, 0, 0)?;
                    let body = block(name, b.as_ref())?;
                    ps.servers.push(name.pos);
                    let mut locs = Vec::new();
                    let s = server(body, &mut locs)?;
                    ps.locations.push(locs);
                    cfg.servers.push(s);
                }
                other => {
                    return Err((
                        name.pos,
                        format!(
                            "unknown directive `{other}` here: see the lbd documentation for the supported subset"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    fn upstream(uname: &str, nodes: &[Node], peer_pos: &mut Vec<Pos>) -> Result<UpstreamConf, Err> {
        let mut u = UpstreamConf {
            name: uname.to_owned(),
            kind: SchedulerKind::NginxRoundRobin,
            hash_key: None,
            sticky_cookie: None,
            keepalive: 32,
            peers: Vec::new(),
            health: None,
        };
        let mut balancer: Option<Pos> = None;
        let mut set_balancer =
            |name: &Tok, kind: SchedulerKind, u: &mut UpstreamConf| -> Result<(), Err> {
                if let Some(p) = balancer {
                    return Err((
                        name.pos,
                        format!(
                            "a balancer was already chosen at line {}: keep only one",
                            p.line
                        ),
                    ));
                }
                balancer = Some(name.pos);
                u.kind = kind;
                Ok(())
            };
        for Node::Directive {
            name,
            args,
            block: b,
        } in nodes
        {
            no_block(name, b.as_ref())?;
            match name.text.as_str() {
                "server" => {
                    need_args(name, args, 1, usize::MAX)?;
                    peer_pos.push(name.pos);
                    u.peers.push(peer(args)?);
                }
                "ip_hash" => {
                    need_args(name, args, 0, 0)?;
                    set_balancer(name, SchedulerKind::NginxIpHash, &mut u)?;
                }
                "least_conn" => {
                    need_args(name, args, 0, 0)?;
                    set_balancer(name, SchedulerKind::NginxLeastConn, &mut u)?;
                }
                "hash" => {
                    need_args(name, args, 1, 2)?;
                    let kind = match args.get(1) {
                        None => SchedulerKind::NginxHash,
                        Some(t) if t.text == "consistent" => SchedulerKind::NginxChash,
                        Some(t) => {
                            return Err((
                                t.pos,
                                format!("expected `consistent`, found `{}`", t.text),
                            ));
                        }
                    };
                    set_balancer(name, kind, &mut u)?;
                    u.hash_key = Some(at(&args[0], parse_template(&args[0].text))?);
                }
                "random" => {
                    need_args(name, args, 0, 2)?;
                    let kind = match args.first() {
                        None => SchedulerKind::NginxRandom,
                        Some(t) if t.text == "two" => {
                            if let Some(m) = args.get(1)
                                && m.text != "least_conn"
                            {
                                return Err((
                                    m.pos,
                                    format!(
                                        "`random two` supports only the `least_conn` method, found `{}`",
                                        m.text
                                    ),
                                ));
                            }
                            SchedulerKind::NginxRandomTwo
                        }
                        Some(t) => {
                            return Err((t.pos, format!("expected `two`, found `{}`", t.text)));
                        }
                    };
                    set_balancer(name, kind, &mut u)?;
                }
                "scheduler" | "balance" => {
                    need_args(name, args, 1, 1)?;
                    let kind = at(&args[0], scheduler(&args[0].text))?;
                    set_balancer(name, kind, &mut u)?;
                }
                "sticky" => {
                    need_args(name, args, 2, usize::MAX)?;
                    if args[0].text != "cookie" {
                        return Err((
                            args[0].pos,
                            format!(
                                "only `sticky cookie NAME` is supported, found `{}`",
                                args[0].text
                            ),
                        ));
                    }
                    let c = &args[1].text;
                    if c.is_empty()
                        || !c
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                    {
                        return Err((
                            args[1].pos,
                            format!("invalid cookie name `{c}`: use letters, digits, `_` and `-`"),
                        ));
                    }
                    u.sticky_cookie = Some(c.clone());
                }
                "keepalive" => {
                    need_args(name, args, 1, 1)?;
                    u.keepalive = num(&args[0], "connection count")?;
                }
                "health_check" => {
                    let mut h = HealthConf::default();
                    let mut uri = "/".to_owned();
                    let mut status = 200u16;
                    let mut tcp = false;
                    for a in args {
                        let (k, v) = a.text.split_once('=').ok_or_else(|| {
                            (
                                a.pos,
                                format!("expected key=value in health_check, found `{}`", a.text),
                            )
                        })?;
                        match k {
                            "interval" => h.interval = at(a, parse_duration(v))?,
                            "timeout" => h.timeout = at(a, parse_duration(v))?,
                            "rise" | "passes" => {
                                h.rise = at(
                                    a,
                                    v.parse().map_err(|_| {
                                        format!("invalid {k} `{v}`: give a number ≥ 1")
                                    }),
                                )?
                            }
                            "fall" | "fails" => {
                                h.fall = at(
                                    a,
                                    v.parse().map_err(|_| {
                                        format!("invalid {k} `{v}`: give a number ≥ 1")
                                    }),
                                )?
                            }
                            "uri" => {
                                if !v.starts_with('/') {
                                    return Err((
                                        a.pos,
                                        format!("health_check uri `{v}` must start with `/`"),
                                    ));
                                }
                                uri = v.to_owned();
                            }
                            "status" => {
                                status = at(
                                    a,
                                    v.parse().map_err(|_| {
                                        format!("invalid status `{v}`: give 100..599")
                                    }),
                                )?
                            }
                            "type" => match v {
                                "tcp" => tcp = true,
                                "http" => tcp = false,
                                _ => {
                                    return Err((
                                        a.pos,
                                        format!("health_check type `{v}`: use http or tcp"),
                                    ));
                                }
                            },
                            _ => {
                                return Err((
                                    a.pos,
                                    format!(
                                        "unknown health_check parameter `{k}`: use interval, timeout, rise, fall, uri, status, type"
                                    ),
                                ));
                            }
                        }
                    }
                    if h.rise == 0 || h.fall == 0 || h.interval.is_zero() || h.timeout.is_zero() {
                        return Err((
                            name.pos,
                            "health_check rise, fall, interval and timeout must be above 0".into(),
                        ));
                    }
                    h.kind = if tcp {
                        HealthKind::Tcp
                    } else {
                        HealthKind::Http { uri, status }
                    };
                    u.health = Some(h);
                }
                "keepalive_timeout" | "keepalive_requests" | "zone" => {}
                other => {
                    return Err((
                        name.pos,
                        format!(
                            "unknown directive `{other}` in upstream: use server, ip_hash, least_conn, hash, random, scheduler, sticky, keepalive, health_check"
                        ),
                    ));
                }
            }
        }
        Ok(u)
    }

    fn peer(args: &[Tok]) -> Result<PeerConf, Err> {
        let addr = at(&args[0], resolve(&args[0].text))?;
        let mut p = PeerConf {
            addr,
            weight: 1,
            max_fails: 1,
            fail_timeout: Duration::from_secs(10),
            max_conns: 0,
            backup: false,
            down: false,
        };
        for a in &args[1..] {
            match a.text.split_once('=') {
                Some(("weight", v)) => {
                    p.weight = at(
                        a,
                        v.parse()
                            .ok()
                            .filter(|w| *w >= 1)
                            .ok_or_else(|| format!("invalid weight `{v}`: give a number ≥ 1")),
                    )?;
                }
                Some(("max_fails", v)) => {
                    p.max_fails = at(
                        a,
                        v.parse()
                            .map_err(|_| format!("invalid max_fails `{v}`: give a number")),
                    )?
                }
                Some(("max_conns", v)) => {
                    p.max_conns = at(
                        a,
                        v.parse()
                            .map_err(|_| format!("invalid max_conns `{v}`: give a number")),
                    )?
                }
                Some(("fail_timeout", v)) => p.fail_timeout = at(a, parse_duration(v))?,
                None if a.text == "backup" => p.backup = true,
                None if a.text == "down" => p.down = true,
                _ => {
                    return Err((
                        a.pos,
                        format!(
                            "unknown server parameter `{}`: use weight=, max_fails=, fail_timeout=, max_conns=, backup, down",
                            a.text
                        ),
                    ));
                }
            }
        }
        Ok(p)
    }

    fn server(nodes: &[Node], loc_pos: &mut Vec<Pos>) -> Result<ServerConf, Err> {
        let mut s = ServerConf {
            listen: Vec::new(),
            access_log: None,
            locations: Vec::new(),
        };
        // Server-level proxy settings are inherited by locations that do not set them.
        let mut inherited: Vec<&Node> = Vec::new();
        for n in nodes {
            let Node::Directive {
                name,
                args,
                block: b,
            } = n;
            match name.text.as_str() {
                "listen" => {
                    no_block(name, b.as_ref())?;
                    need_args(name, args, 1, usize::MAX)?;
                    s.listen.push(at(&args[0], listen_addr(&args[0].text))?);
                }
                "server_name" => no_block(name, b.as_ref())?,
                "access_log" => {
                    no_block(name, b.as_ref())?;
                    s.access_log = Some(log_directive(name, args)?);
                }
                "location" => {}
                _ if name.text.starts_with("proxy_") || name.text == "client_max_body_size" => {
                    no_block(name, b.as_ref())?;
                    inherited.push(n);
                }
                other => {
                    return Err((
                        name.pos,
                        format!(
                            "unknown directive `{other}` in server: use listen, server_name, location, access_log and proxy_* settings"
                        ),
                    ));
                }
            }
        }
        for n in nodes {
            let Node::Directive {
                name,
                args,
                block: b,
            } = n;
            if name.text != "location" {
                continue;
            }
            let body = block(name, b.as_ref())?;
            let (exact, path) = match args.as_slice() {
                [p] => (false, p),
                [eq, p] if eq.text == "=" => (true, p),
                [m, _] => {
                    return Err((
                        m.pos,
                        format!(
                            "location modifier `{}` is not supported: use `=` or none",
                            m.text
                        ),
                    ));
                }
                _ => return Err((name.pos, "location takes `[=] PATH`".into())),
            };
            if !path.text.starts_with('/') {
                return Err((
                    path.pos,
                    format!("location path `{}` must start with `/`", path.text),
                ));
            }
            loc_pos.push(name.pos);
            let mut l = location(exact, &path.text, &inherited, body, name)?;
            if l.access_log.is_none() {
                l.access_log.clone_from(&s.access_log);
            }
            s.locations.push(l);
        }
        Ok(s)
    }

    fn location(
        exact: bool,
        path: &str,
        inherited: &[&Node],
        nodes: &[Node],
        lname: &Tok,
    ) -> Result<LocationConf, Err> {
        let mut action: Option<Action> = None;
        let mut access_log = None;
        let mut settings: Vec<&Node> = inherited.to_vec();
        let mut own_headers = false;
        for n in nodes {
            let Node::Directive {
                name,
                args,
                block: b,
            } = n;
            no_block(name, b.as_ref())?;
            match name.text.as_str() {
                "proxy_pass" => {
                    need_args(name, args, 1, 1)?;
                    let target = args[0].text.strip_prefix("http://").ok_or_else(|| {
                        (
                            args[0].pos,
                            format!(
                                "proxy_pass `{}`: only http://UPSTREAM is supported",
                                args[0].text
                            ),
                        )
                    })?;
                    let target = target.strip_suffix('/').unwrap_or(target);
                    if target.is_empty() || target.contains('/') {
                        return Err((
                            args[0].pos,
                            "proxy_pass takes http://UPSTREAM without a URI part".into(),
                        ));
                    }
                    if action.is_some() {
                        return Err((name.pos, "this location already has a handler: keep one of proxy_pass, lbd_status, return".into()));
                    }
                    action = Some(Action::Proxy(ProxyConf::new(target.to_owned())));
                }
                "access_log" => access_log = Some(log_directive(name, args)?),
                "lbd_status" => {
                    need_args(name, args, 0, 0)?;
                    if action.is_some() {
                        return Err((name.pos, "this location already has a handler: keep one of proxy_pass, lbd_status, return".into()));
                    }
                    action = Some(Action::Status);
                }
                "return" => {
                    need_args(name, args, 1, 2)?;
                    let status: u16 = num(&args[0], "status")?;
                    if !(100..=599).contains(&status) {
                        return Err((
                            args[0].pos,
                            format!("return status {status} is out of 100..599"),
                        ));
                    }
                    if action.is_some() {
                        return Err((name.pos, "this location already has a handler: keep one of proxy_pass, lbd_status, return".into()));
                    }
                    action = Some(Action::Return {
                        status,
                        body: args.get(1).map(|t| t.text.clone()).unwrap_or_default(),
                    });
                }
                _ if name.text.starts_with("proxy_") || name.text == "client_max_body_size" => {
                    if name.text == "proxy_set_header" && !own_headers {
                        // As in nginx, headers set in the location replace the inherited ones.
                        own_headers = true;
                        settings
                            .retain(|Node::Directive { name, .. }| name.text != "proxy_set_header");
                    }
                    settings.push(n);
                }
                other => {
                    return Err((
                        name.pos,
                        format!(
                            "unknown directive `{other}` in location: use proxy_pass, lbd_status, return, access_log and proxy_* settings"
                        ),
                    ));
                }
            }
        }
        let Some(mut action) = action else {
            return Err((
                lname.pos,
                "location has no handler: add proxy_pass http://UPSTREAM, lbd_status or return"
                    .into(),
            ));
        };
        if let Action::Proxy(p) = &mut action {
            for Node::Directive { name, args, .. } in settings {
                proxy_setting(p, name, args)?;
            }
        }
        Ok(LocationConf {
            exact,
            path: path.to_owned(),
            action,
            access_log,
        })
    }

    fn proxy_setting(p: &mut ProxyConf, name: &Tok, args: &[Tok]) -> Result<(), Err> {
        match name.text.as_str() {
            "proxy_next_upstream" => {
                need_args(name, args, 1, usize::MAX)?;
                p.next_upstream = at(
                    name,
                    NextUpstream::parse(args.iter().map(|t| t.text.as_str())),
                )?;
            }
            "proxy_next_upstream_tries" => {
                need_args(name, args, 1, 1)?;
                p.tries = num(&args[0], "try count")?;
            }
            "proxy_next_upstream_timeout" => {
                need_args(name, args, 1, 1)?;
                p.next_timeout = at(&args[0], parse_duration(&args[0].text))?;
            }
            "proxy_connect_timeout" => {
                need_args(name, args, 1, 1)?;
                p.connect_timeout = at(&args[0], parse_duration(&args[0].text))?;
            }
            "proxy_read_timeout" => {
                need_args(name, args, 1, 1)?;
                p.read_timeout = at(&args[0], parse_duration(&args[0].text))?;
            }
            "proxy_send_timeout" => {
                need_args(name, args, 1, 1)?;
                p.send_timeout = at(&args[0], parse_duration(&args[0].text))?;
            }
            "client_max_body_size" => {
                need_args(name, args, 1, 1)?;
                p.client_max_body_size = at(&args[0], parse_size(&args[0].text))?;
            }
            "proxy_set_header" => {
                need_args(name, args, 1, 2)?;
                let h = at(&args[0], parse_header_name(&args[0].text))?;
                let v = args.get(1).map_or("", |t| t.text.as_str());
                let t = at(args.get(1).unwrap_or(&args[0]), parse_template(v))?;
                p.set_headers.retain(|(n, _)| *n != h);
                p.set_headers.push((h, t));
            }
            "proxy_http_version" => {
                need_args(name, args, 1, 1)?;
                if args[0].text != "1.1" && args[0].text != "1.0" {
                    return Err((args[0].pos, "proxy_http_version: use 1.1".into()));
                }
            }
            "proxy_buffering" | "proxy_request_buffering" | "proxy_intercept_errors" => {
                need_args(name, args, 1, 1)?;
                flag(&args[0])?;
            }
            other => {
                return Err((
                    name.pos,
                    format!(
                        "unsupported directive `{other}`: see the lbd documentation for the proxy_* subset"
                    ),
                ));
            }
        }
        let _ = args.iter().any(|t| t.quoted);
        Ok(())
    }
}

mod toml_conf {
    //! The TOML format (the same model with TOML tables).

    use std::collections::BTreeMap;

    use serde::Deserialize;

    use super::*;

    type Err = (Pos, String);

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        #[serde(default, alias = "worker_threads")]
        workers: Option<usize>,
        #[serde(default)]
        node_name: Option<String>,
        #[serde(default)]
        pid: Option<PathBuf>,
        #[serde(default)]
        access_log: Option<String>,
        #[serde(default)]
        access_log_buffer: Option<toml::Spanned<String>>,
        #[serde(default)]
        access_log_flush: Option<toml::Spanned<String>>,
        #[serde(default)]
        shutdown_timeout: Option<toml::Spanned<String>>,
        #[serde(default)]
        upstream: BTreeMap<String, toml::Spanned<Upstream>>,
        #[serde(default)]
        server: Vec<toml::Spanned<Server>>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Upstream {
        #[serde(default)]
        balance: Option<toml::Spanned<String>>,
        #[serde(default)]
        hash: Option<toml::Spanned<String>>,
        #[serde(default)]
        consistent: bool,
        #[serde(default)]
        sticky_cookie: Option<String>,
        #[serde(default)]
        keepalive: Option<usize>,
        #[serde(default)]
        server: Vec<toml::Spanned<Peer>>,
        #[serde(default)]
        health_check: Option<toml::Spanned<Health>>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Peer {
        addr: String,
        #[serde(default)]
        weight: Option<u32>,
        #[serde(default)]
        max_fails: Option<u32>,
        #[serde(default)]
        fail_timeout: Option<String>,
        #[serde(default)]
        max_conns: Option<u32>,
        #[serde(default)]
        backup: bool,
        #[serde(default)]
        down: bool,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Health {
        #[serde(default, rename = "type")]
        kind: Option<String>,
        #[serde(default)]
        uri: Option<String>,
        #[serde(default)]
        status: Option<u16>,
        #[serde(default)]
        interval: Option<String>,
        #[serde(default)]
        timeout: Option<String>,
        #[serde(default)]
        rise: Option<u32>,
        #[serde(default)]
        fall: Option<u32>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Server {
        listen: Vec<String>,
        #[serde(default)]
        access_log: Option<String>,
        #[serde(default)]
        access_log_buffer: Option<String>,
        #[serde(default)]
        access_log_flush: Option<String>,
        #[serde(default)]
        location: Vec<toml::Spanned<Location>>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Location {
        #[serde(default)]
        access_log: Option<String>,
        #[serde(default)]
        access_log_buffer: Option<String>,
        #[serde(default)]
        access_log_flush: Option<String>,
        #[serde(default)]
        path: Option<String>,
        #[serde(default)]
        exact: Option<String>,
        #[serde(default)]
        proxy_pass: Option<String>,
        #[serde(default)]
        lbd_status: bool,
        #[serde(default, rename = "return")]
        ret: Option<u16>,
        #[serde(default)]
        body: Option<String>,
        #[serde(default)]
        proxy_next_upstream: Option<Vec<String>>,
        #[serde(default)]
        proxy_next_upstream_tries: Option<u32>,
        #[serde(default)]
        proxy_next_upstream_timeout: Option<String>,
        #[serde(default)]
        proxy_connect_timeout: Option<String>,
        #[serde(default)]
        proxy_read_timeout: Option<String>,
        #[serde(default)]
        proxy_send_timeout: Option<String>,
        #[serde(default)]
        client_max_body_size: Option<String>,
        #[serde(default)]
        proxy_set_header: Vec<(String, String)>,
    }

    pub(super) fn parse(path: &Path, text: &str) -> Result<Config, Err> {
        let f: File = toml::from_str(text).map_err(|e| {
            let pos = e
                .span()
                .map_or(Pos { line: 1, column: 1 }, |s| pos_of(text, s.start));
            (pos, e.message().to_owned())
        })?;
        let sp = |s: std::ops::Range<usize>| pos_of(text, s.start);
        let mut upstream_pos = Vec::new();
        let mut peer_pos = Vec::new();
        let mut upstreams = Vec::new();
        for (name, u) in f.upstream {
            let upos = sp(u.span());
            let u = u.into_inner();
            let mut kind = SchedulerKind::NginxRoundRobin;
            if let Some(b) = &u.balance {
                kind = scheduler(b.get_ref()).map_err(|m| (sp(b.span()), m))?;
            }
            let mut hash_key = None;
            if let Some(h) = &u.hash {
                hash_key = Some(parse_template(h.get_ref()).map_err(|m| (sp(h.span()), m))?);
                if u.balance.is_none() {
                    kind = if u.consistent {
                        SchedulerKind::NginxChash
                    } else {
                        SchedulerKind::NginxHash
                    };
                }
            }
            let mut peers = Vec::new();
            let mut pp = Vec::new();
            for p in u.server {
                let ppos = sp(p.span());
                let p = p.into_inner();
                fn at<T>(pos: Pos, r: Result<T, String>) -> Result<T, Err> {
                    r.map_err(|m| (pos, m))
                }
                pp.push(ppos);
                peers.push(PeerConf {
                    addr: at(ppos, resolve(&p.addr))?,
                    weight: p.weight.unwrap_or(1).max(1),
                    max_fails: p.max_fails.unwrap_or(1),
                    fail_timeout: match &p.fail_timeout {
                        Some(t) => at(ppos, parse_duration(t))?,
                        None => Duration::from_secs(10),
                    },
                    max_conns: p.max_conns.unwrap_or(0),
                    backup: p.backup,
                    down: p.down,
                });
            }
            let health = match u.health_check {
                None => None,
                Some(h) => {
                    let hpos = sp(h.span());
                    let h = h.into_inner();
                    let at = |r: Result<_, String>| r.map_err(|m| (hpos, m));
                    let mut c = HealthConf::default();
                    if let Some(i) = &h.interval {
                        c.interval = at(parse_duration(i))?;
                    }
                    if let Some(i) = &h.timeout {
                        c.timeout = at(parse_duration(i))?;
                    }
                    c.rise = h.rise.unwrap_or(c.rise);
                    c.fall = h.fall.unwrap_or(c.fall);
                    c.kind = match h.kind.as_deref() {
                        Some("tcp") => HealthKind::Tcp,
                        None | Some("http") => HealthKind::Http {
                            uri: h.uri.unwrap_or_else(|| "/".into()),
                            status: h.status.unwrap_or(200),
                        },
                        Some(o) => {
                            return Err((
                                hpos,
                                format!("health_check type `{o}`: use http or tcp"),
                            ));
                        }
                    };
                    if c.rise == 0 || c.fall == 0 || c.interval.is_zero() || c.timeout.is_zero() {
                        return Err((
                            hpos,
                            "health_check rise, fall, interval and timeout must be above 0".into(),
                        ));
                    }
                    Some(c)
                }
            };
            upstream_pos.push(upos);
            peer_pos.push(pp);
            upstreams.push(UpstreamConf {
                name,
                kind,
                hash_key,
                sticky_cookie: u.sticky_cookie,
                keepalive: u.keepalive.unwrap_or(32),
                peers,
                health,
            });
        }
        let mut servers = Vec::new();
        let mut server_pos = Vec::new();
        let mut loc_pos = Vec::new();
        for s in f.server {
            let spos = sp(s.span());
            let s = s.into_inner();
            let mut listen = Vec::new();
            for l in &s.listen {
                listen.push(listen_addr(l).map_err(|m| (spos, m))?);
            }
            let access_log = log_conf(
                s.access_log.as_deref(),
                s.access_log_buffer.as_deref(),
                s.access_log_flush.as_deref(),
            )
            .map_err(|m| (spos, m))?;
            let mut locations = Vec::new();
            let mut lp = Vec::new();
            for l in s.location {
                let lpos = sp(l.span());
                let l = l.into_inner();
                lp.push(lpos);
                let mut l = location(l).map_err(|m| (lpos, m))?;
                if l.access_log.is_none() {
                    l.access_log.clone_from(&access_log);
                }
                locations.push(l);
            }
            server_pos.push(spos);
            loc_pos.push(lp);
            servers.push(ServerConf {
                listen,
                access_log,
                locations,
            });
        }
        let mut cfg = Config {
            path: path.to_path_buf(),
            workers: f.workers.unwrap_or(0),
            node_name: f.node_name.unwrap_or_else(default_node_name),
            pid_file: f.pid,
            access_log: f
                .access_log
                .as_deref()
                .map_or(LogTarget::Stdout, LogTarget::named),
            access_log_buffer: {
                // Each setting as the nginx parameter it stands for, with its position.
                let params: Vec<(String, Pos)> = (f.access_log_buffer.iter())
                    .map(|b| (format!("buffer={}", b.get_ref()), sp(b.span())))
                    .chain(
                        (f.access_log_flush.iter())
                            .map(|t| (format!("flush={}", t.get_ref()), sp(t.span()))),
                    )
                    .collect();
                parse_log_params(params.iter().map(|(p, _)| p.as_str())).map_err(|(i, m)| {
                    let pos = params.get(i).map_or(Pos { line: 1, column: 1 }, |p| p.1);
                    (pos, m)
                })?
            },
            shutdown_timeout: match &f.shutdown_timeout {
                Some(t) => parse_duration(t.get_ref()).map_err(|m| (sp(t.span()), m))?,
                None => Duration::from_secs(30),
            },
            upstreams,
            servers,
        };
        let where_ = |i: Item| -> Pos {
            let p = match i {
                Item::Upstream(u) => upstream_pos.get(u),
                Item::Peer(u, p) => peer_pos.get(u).and_then(|v| v.get(p)),
                Item::Server(s) => server_pos.get(s),
                Item::Location(s, l) => loc_pos.get(s).and_then(|v| v.get(l)),
            };
            p.copied().unwrap_or(Pos { line: 1, column: 1 })
        };
        implicit_upstreams(&mut cfg);
        validate(&cfg, &where_)?;
        Ok(cfg)
    }

    /// The `access_log*` keys of a `[[server]]` or `[[server.location]]` table.
    fn log_conf(
        target: Option<&str>,
        buffer: Option<&str>,
        flush: Option<&str>,
    ) -> Result<Option<LogConf>, String> {
        let Some(target) = target else {
            if buffer.is_some() || flush.is_some() {
                return Err("access_log_buffer/access_log_flush need access_log here".into());
            }
            return Ok(None);
        };
        let target = LogTarget::named(target);
        let params: Vec<String> = (buffer.iter().map(|b| format!("buffer={b}")))
            .chain(flush.iter().map(|t| format!("flush={t}")))
            .collect();
        let buffer = parse_log_params(params.iter().map(String::as_str)).map_err(|(_, m)| m)?;
        Ok(Some(LogConf { target, buffer }))
    }

    fn location(l: Location) -> Result<LocationConf, String> {
        let access_log = log_conf(
            l.access_log.as_deref(),
            l.access_log_buffer.as_deref(),
            l.access_log_flush.as_deref(),
        )?;
        let (exact, path) = match (l.exact, l.path) {
            (Some(p), None) => (true, p),
            (None, Some(p)) => (false, p),
            _ => return Err("a location needs exactly one of `path` (prefix) or `exact`".into()),
        };
        if !path.starts_with('/') {
            return Err(format!("location path `{path}` must start with `/`"));
        }
        let handlers = usize::from(l.proxy_pass.is_some())
            + usize::from(l.lbd_status)
            + usize::from(l.ret.is_some());
        if handlers != 1 {
            return Err(
                "a location needs exactly one of proxy_pass, lbd_status = true, return".into(),
            );
        }
        let action = if let Some(target) = l.proxy_pass {
            let t = target.strip_prefix("http://").ok_or_else(|| {
                format!("proxy_pass `{target}`: only http://UPSTREAM is supported")
            })?;
            let t = t.strip_suffix('/').unwrap_or(t);
            let mut p = ProxyConf::new(t.to_owned());
            if let Some(n) = &l.proxy_next_upstream {
                p.next_upstream = NextUpstream::parse(n.iter().map(String::as_str))?;
            }
            p.tries = l.proxy_next_upstream_tries.unwrap_or(0);
            if let Some(t) = &l.proxy_next_upstream_timeout {
                p.next_timeout = parse_duration(t)?;
            }
            if let Some(t) = &l.proxy_connect_timeout {
                p.connect_timeout = parse_duration(t)?;
            }
            if let Some(t) = &l.proxy_read_timeout {
                p.read_timeout = parse_duration(t)?;
            }
            if let Some(t) = &l.proxy_send_timeout {
                p.send_timeout = parse_duration(t)?;
            }
            if let Some(s) = &l.client_max_body_size {
                p.client_max_body_size = parse_size(s)?;
            }
            for (h, v) in &l.proxy_set_header {
                let h = parse_header_name(h)?;
                p.set_headers.retain(|(n, _)| *n != h);
                p.set_headers.push((h, parse_template(v)?));
            }
            Action::Proxy(p)
        } else if l.lbd_status {
            Action::Status
        } else {
            Action::Return {
                status: l.ret.unwrap_or(200),
                body: l.body.unwrap_or_default(),
            }
        };
        Ok(LocationConf {
            exact,
            path,
            action,
            access_log,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    const SEED: &str = r#"
worker_processes 2;
node_name lb1;
upstream backend {
    ip_hash;
    server 127.0.0.1:8081 weight=4 max_fails=2 fail_timeout=30s;
    server 127.0.0.1:8082;
    server 127.0.0.1:8083 down;
    keepalive 16;
    health_check interval=1s rise=2 fall=3 uri=/health;
}
upstream rr {
    server 127.0.0.1:9001;
    server 127.0.0.1:9002 backup;
    sticky cookie srv;
}
upstream w { scheduler wlc; server 127.0.0.1:1; server 127.0.0.1:2; }
upstream h { hash $cookie_x consistent; server 127.0.0.1:1; server 127.0.0.1:2; }
upstream r { random two least_conn; server 127.0.0.1:1; server 127.0.0.1:2; }
server {
    listen 127.0.0.1:8080;
    proxy_connect_timeout 2s;
    location / {
        proxy_pass http://backend;
        proxy_next_upstream error timeout http_502 non_idempotent;
        proxy_next_upstream_tries 3;
        proxy_next_upstream_timeout 10s;
        proxy_read_timeout 5s;
        proxy_set_header Host $host;
        proxy_set_header X-Real-IP $remote_addr;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
    }
    location = /lbd-status { lbd_status; }
}
"#;

    #[test]
    fn nginx_seed_parses() {
        let c = parse_str(Path::new("lbd.conf"), SEED).unwrap();
        assert_eq!(c.workers, 2);
        assert_eq!(c.node_name, "lb1");
        assert_eq!(c.upstreams.len(), 5);
        let b = &c.upstreams[0];
        assert_eq!(b.kind, SchedulerKind::NginxIpHash);
        assert_eq!(b.keepalive, 16);
        assert_eq!(b.peers[0].weight, 4);
        assert_eq!(b.peers[0].max_fails, 2);
        assert_eq!(b.peers[0].fail_timeout, Duration::from_secs(30));
        assert!(b.peers[2].down);
        assert_eq!(b.health.as_ref().unwrap().interval, Duration::from_secs(1));
        assert!(c.upstreams[1].peers[1].backup);
        assert_eq!(c.upstreams[1].sticky_cookie.as_deref(), Some("srv"));
        assert_eq!(c.upstreams[2].kind, SchedulerKind::Wlc);
        assert_eq!(c.upstreams[3].kind, SchedulerKind::NginxChash);
        assert_eq!(c.upstreams[4].kind, SchedulerKind::NginxRandomTwo);
        let l = &c.servers[0].locations[0];
        let Action::Proxy(p) = &l.action else {
            panic!("not proxy")
        };
        assert_eq!(p.tries, 3);
        assert_eq!(p.connect_timeout, Duration::from_secs(2));
        assert!(p.next_upstream.has(NextUpstream::HTTP_502));
        assert!(p.next_upstream.has(NextUpstream::NON_IDEMPOTENT));
        assert!(!p.next_upstream.has(NextUpstream::HTTP_500));
        assert_eq!(p.set_headers.len(), 4);
        assert!(c.servers[0].locations[1].exact);
        assert!(matches!(c.servers[0].locations[1].action, Action::Status));
    }

    fn err_at(text: &str, name: &str) -> (usize, usize, String) {
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
    fn nginx_errors_name_line_and_column() {
        let (l, c, m) = err_at(
            "upstream a {\n  server 127.0.0.1:1 wieght=2;\n}\n",
            "x.conf",
        );
        assert_eq!((l, c), (2, 22), "{m}");
        assert!(m.contains("wieght=2"), "{m}");
        let (l, _, m) = err_at(
            "server {\n listen 1;\n location / { proxy_pass http://nope; }\n}\n",
            "x.conf",
        );
        assert_eq!(l, 3);
        assert!(m.contains("unknown upstream `nope`"), "{m}");
        let (l, c, _) = err_at("upstream a {\n server 127.0.0.1:1\n}\n", "x.conf");
        assert_eq!((l, c), (2, 2));
        let (l, _, m) = err_at(
            "upstream a { hash $remote_addr; server 127.0.0.1:1 backup; }",
            "x.conf",
        );
        assert_eq!(l, 1);
        assert!(m.contains("backup"), "{m}");
        let (_, _, m) = err_at(
            "upstream a { scheduler bogus; server 127.0.0.1:1; }",
            "x.conf",
        );
        assert!(m.contains("unknown scheduler"), "{m}");
        let (l, _, m) = err_at(
            "server {\n listen 1;\n location / {\n proxy_pass http://u;\n proxy_next_upstream error http_999;\n }\n}",
            "x.conf",
        );
        assert_eq!(l, 5);
        assert!(m.contains("http_999"), "{m}");
        let (l, _, _) = err_at(
            "server { listen 1;\n location / { return 200 \"x; } }",
            "x.conf",
        );
        assert_eq!(l, 2);
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
    fn toml_parses_and_reports_positions() {
        let t = r#"
workers = 3
node_name = "lb2"
access_log = "off"
[upstream.b]
balance = "least_conn"
[[upstream.b.server]]
addr = "127.0.0.1:1"
weight = 2
fail_timeout = "5s"
[[upstream.b.server]]
addr = "127.0.0.1:2"
backup = true
[upstream.b.health_check]
type = "tcp"
interval = "500ms"
[[server]]
listen = ["127.0.0.1:0"]
[[server.location]]
path = "/"
proxy_pass = "http://b"
proxy_next_upstream = ["error", "http_503"]
proxy_set_header = [["X-Real-IP", "$remote_addr"]]
[[server.location]]
exact = "/lbd-status"
lbd_status = true
"#;
        let c = parse_str(Path::new("c.toml"), t).unwrap();
        assert_eq!(c.workers, 3);
        assert_eq!(c.access_log, LogTarget::Off);
        let u = &c.upstreams[0];
        assert_eq!(u.kind, SchedulerKind::NginxLeastConn);
        assert_eq!(u.peers[0].fail_timeout, Duration::from_secs(5));
        assert!(u.peers[1].backup);
        assert_eq!(u.health.as_ref().unwrap().kind, HealthKind::Tcp);
        let (l, _, m) = err_at("workers = 1\nbogus = 2\n", "c.toml");
        assert_eq!(l, 2, "{m}");
        let (l, _, m) = err_at(
            "[[server]]\nlisten = [\"1\"]\n[[server.location]]\npath = \"/\"\nproxy_pass = \"http://x\"\n",
            "c.toml",
        );
        assert_eq!(l, 3, "{m}");
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
