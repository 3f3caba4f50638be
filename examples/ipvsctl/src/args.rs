//! The command line: ipvsadm's options (popt style: clustered short options such as `-Ln`,
//! attached or separate arguments, `--long=value`), its option/command validity table, and
//! its checks, turned into one [`Command`].
//!
//! Every refusal is an [`ArgError`] whose text is the one ipvsadm prints for the same input.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use ipvs_netlink::wire::DestAttr;
use ipvs_netlink::{
    ConfigError, DaemonState, Dest, DestEntry, Family, ForwardMethod, Netmask, Protocol, Service,
    ServiceFlags, ServiceKey, SyncDaemon, Timeouts, TunnelType,
};

use super::names::Names;

/// What ipvsadm would refuse on the command line, in its words.
///
/// Each message is ipvsadm's, byte for byte (scripts match on them); the variant docs say
/// what to change.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgError {
    /// No command, or an option before the command: put a command (`-A`, `-L`, …) first.
    #[error("Try `{program} -h' or '{program} --help' for more information.")]
    TryHelp {
        /// argv\[0\].
        program: String,
    },
    /// An option ipvsadm does not know: check the spelling against `-h`.
    #[error("{option}: unknown option")]
    UnknownOption {
        /// The option as written.
        option: String,
    },
    /// An option that needs a value got none: give the value.
    #[error("{option}: missing argument")]
    MissingArgument {
        /// The option as written.
        option: String,
    },
    /// An option that is not valid here, such as a second command (`-L -A`): run the
    /// commands one at a time (or use `-R`).
    #[error("invalid option `{0}'")]
    InvalidOption(String),
    /// The same option twice: give it once.
    #[error("multiple '{0}' options specified")]
    MultipleOption(&'static str),
    /// The command needs this option: add it.
    #[error("You need to supply the '{option}' option for the '{command}' command")]
    NeedOption {
        /// ipvsadm's option name.
        option: &'static str,
        /// ipvsadm's command name.
        command: &'static str,
    },
    /// The option means nothing for this command: drop it.
    #[error("Illegal '{option}' option with the '{command}' command")]
    IllegalOption {
        /// ipvsadm's option name.
        option: &'static str,
        /// ipvsadm's command name.
        command: &'static str,
    },
    /// Two mutually exclusive options: keep one.
    #[error("The option '{option}' conflicts with the '{other}' option in the '{command}' command")]
    Conflict {
        /// The later option.
        option: &'static str,
        /// The earlier one.
        other: &'static str,
        /// ipvsadm's command name.
        command: &'static str,
    },
    /// `-t/-u/--sctp-service` needs `ADDR[:PORT]` (IPv6 as `[ADDR]:PORT`).
    #[error("illegal virtual server address[:port] specified")]
    IllegalVirtualServer,
    /// `-r` needs `ADDR[:PORT]` (IPv6 as `[ADDR]:PORT`).
    #[error("illegal real server address[:port] specified")]
    IllegalRealServer,
    /// `-f` needs a mark 1..=4294967295.
    #[error("invalid fwmark value `{0}' specified")]
    InvalidFwmark(String),
    /// A timeout must be a number of seconds within ipvsadm's range (31 days at most).
    #[error("invalid timeout value `{0}' specified")]
    InvalidTimeout(String),
    /// `-M` on an IPv4 service needs a dotted mask such as 255.255.255.0.
    #[error("illegal virtual server persistent mask specified")]
    IllegalMask,
    /// `-M` on an IPv6 service needs a prefix length 1..=128.
    #[error("illegal ipv6 netmask specified")]
    IllegalV6Mask,
    /// `-w` takes 0..=65535.
    #[error("illegal weight specified")]
    IllegalWeight,
    /// `-x` takes a non-negative number.
    #[error("illegal u_threshold specified")]
    IllegalUpperThreshold,
    /// `-y` takes a non-negative number.
    #[error("illegal l_threshold specified")]
    IllegalLowerThreshold,
    /// `--syncid` takes 0..=255.
    #[error("illegal syncid specified")]
    IllegalSyncId,
    /// `--mcast-group` takes a multicast address.
    #[error("illegal mcast-group specified")]
    IllegalMcastGroup,
    /// `--mcast-port` takes 1..=65535.
    #[error("illegal mcast-port specified")]
    IllegalMcastPort,
    /// `--mcast-ttl` takes 1..=255.
    #[error("illegal mcast-ttl specified")]
    IllegalMcastTtl,
    /// `--sync-maxlen` takes 1..=65535.
    #[error("illegal sync-maxlen specified")]
    IllegalSyncMaxlen,
    /// `--mcast-interface` takes an interface name of at most 15 bytes.
    #[error("illegal mcast-interface specified")]
    IllegalMcastInterface,
    /// `-6` only qualifies a `-f` given before it.
    #[error("-6 used before -f\n")]
    SixBeforeF,
    /// `-b` knows flag-1..3, sh-fallback, sh-port, mh-fallback, mh-port.
    #[error("invalid scheduler flag `{0}'")]
    InvalidSchedFlag(String),
    /// sh-* flags need `-s sh`, mh-* flags `-s mh`.
    #[error("incompatible scheduler flag `{0}'")]
    IncompatibleSchedFlag(String),
    /// `--tun-type` is ipip, gue or gre.
    #[error("illegal tunnel type specified")]
    IllegalTunnelType,
    /// `--tun-port` takes 1..=65535.
    #[error("illegal tunnel port specified")]
    IllegalTunnelPort,
    /// `--start-daemon` takes master or backup.
    #[error("illegal start-daemon parameter specified")]
    IllegalStartDaemon,
    /// `--stop-daemon` takes master or backup.
    #[error("illegal start_daemon specified")]
    IllegalStopDaemon,
    /// `--set` takes three numbers: tcp tcpfin udp.
    #[error("--set option requires 3 timeout values")]
    SetNeedsThree,
    /// A word that is not an option's value: quote it or drop it.
    #[error("unexpected argument {0}")]
    UnexpectedArgument(String),
    /// Port 0 is only for persistent services: give a port or `-p`.
    #[error("Zero port specified for non-persistent service")]
    ZeroPort,
    /// `-o` applies to UDP and fwmark services only.
    #[error("One-Packet Scheduling is only for UDP virtual services")]
    OnePacketNotUdp,
    /// A real server of another family than its service needs `-i` (tunnelling).
    #[error("Different address family is allowed only for tunneling servers")]
    MixedFamily,
    /// `--tun-*` options need `-i`.
    #[error("Tunnel options conflict with forward method")]
    TunnelOptionsWithoutTunnel,
    /// The tunnel type needs this option (gue: `--tun-port`).
    #[error("You need to supply the '{option}' option for the '{tunnel}' tunnel type")]
    TunnelNeedsOption {
        /// ipvsadm's option name.
        option: &'static str,
        /// ipip, gue or gre.
        tunnel: &'static str,
    },
    /// The tunnel type does not take this option.
    #[error("Illegal '{option}' option with the '{tunnel}' tunnel type")]
    TunnelIllegalOption {
        /// ipvsadm's option name.
        option: &'static str,
        /// ipip, gue or gre.
        tunnel: &'static str,
    },
    /// Two checksum options: keep one.
    #[error(
        "The option '{option}' conflicts with the '{other}' option in the '{tunnel}' tunnel type"
    )]
    TunnelConflict {
        /// The later option.
        option: &'static str,
        /// The earlier one.
        other: &'static str,
        /// ipip, gue or gre.
        tunnel: &'static str,
    },
    /// `-L` with exclusive listing options (e.g. `--timeout --stats`): keep one.
    #[error("options conflicts in the list command")]
    ListConflict,
    /// `-c`: the IPVS netlink interface has no connection dump; read /proc/net/ip_vs_conn.
    #[error(
        "-c/--connection is not supported by ipvsctl: the IPVS netlink interface has no connection list; read /proc/net/ip_vs_conn instead"
    )]
    ConnectionsUnsupported,
    /// A scheduler or persistence-engine name no kernel module can have (ipvsadm sends it
    /// and the kernel answers ENOENT): check `-s`/`--pe` (`modprobe ip_vs_<name>`).
    #[error("Scheduler or persistence engine not found")]
    SchedulerNotFound,
    /// A value the crate refuses before sending (the message names the field).
    #[error("{0}")]
    Config(ConfigError),
}

impl From<ConfigError> for ArgError {
    fn from(e: ConfigError) -> Self {
        match e {
            ConfigError::InvalidName {
                field: "scheduler" | "persistence engine",
                ..
            } => Self::SchedulerNotFound,
            other => Self::Config(other),
        }
    }
}

impl ArgError {
    /// The exit status ipvsadm uses for this refusal: 255 for popt-level errors (ipvsadm
    /// returns -1), 2 for everything its `fail()` reports.
    #[must_use]
    pub const fn exit_code(&self) -> u8 {
        match self {
            Self::TryHelp { .. }
            | Self::UnknownOption { .. }
            | Self::MissingArgument { .. }
            | Self::SchedulerNotFound => 255,
            _ => 2,
        }
    }
}

/// How a listing is printed (ipvsadm's `FMT_*` flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Format {
    /// `-n`: numeric addresses and ports.
    pub numeric: bool,
    /// `-S`: rules (`-A …`/`-a …`) instead of a table.
    pub rule: bool,
    /// `--stats`.
    pub stats: bool,
    /// `--rate`.
    pub rate: bool,
    /// `--thresholds`.
    pub thresholds: bool,
    /// `--persistent-conn`.
    pub persistent_conn: bool,
    /// `--nosort`.
    pub nosort: bool,
    /// `--exact`.
    pub exact: bool,
    /// `--tun-info`.
    pub tun_info: bool,
}

/// What `-L` lists.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListWhat {
    /// The whole table, with the version header.
    All,
    /// One service (no header; "No such service" if absent).
    Service(ServiceKey),
    /// `--timeout`.
    Timeouts,
    /// `--daemon`.
    Daemons,
}

/// One parsed ipvsadm invocation.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `-L`/`-l` (also no argument at all).
    List {
        /// What to list.
        what: ListWhat,
        /// How.
        format: Format,
    },
    /// `-S`.
    Save {
        /// `rule` is always set; `numeric` with `-n`.
        format: Format,
    },
    /// `-R`: read commands from stdin.
    Restore,
    /// `-C`.
    Flush,
    /// `-A`.
    AddService(Service),
    /// `-E`.
    EditService(Service),
    /// `-D`.
    DeleteService(ServiceKey),
    /// `-Z [service]`.
    Zero(Option<ServiceKey>),
    /// `-a`.
    AddDest(ServiceKey, Dest),
    /// `-e`.
    EditDest(ServiceKey, Dest),
    /// `-d`.
    DeleteDest(ServiceKey, SocketAddr),
    /// `--set tcp tcpfin udp`.
    SetTimeouts(Timeouts),
    /// `--start-daemon`.
    StartDaemon(SyncDaemon),
    /// `--stop-daemon`.
    StopDaemon(DaemonState),
    /// `-h`.
    Help,
    /// `-v`.
    Version,
}

/// ipvsadm's commands, in the order of its validity table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmd {
    Add,
    Edit,
    Del,
    Flush,
    List,
    AddDest,
    DelDest,
    EditDest,
    Timeout,
    StartDaemon,
    StopDaemon,
    Restore,
    Save,
    Zero,
}

impl Cmd {
    const fn index(self) -> usize {
        self as usize
    }
    const fn name(self) -> &'static str {
        match self {
            Self::Add => "add-service",
            Self::Edit => "edit-service",
            Self::Del => "delete-service",
            Self::Flush => "flush",
            Self::List => "list",
            Self::AddDest => "add-server",
            Self::DelDest => "delete-server",
            Self::EditDest => "edit-server",
            Self::Timeout => "set",
            Self::StartDaemon => "start-daemon",
            Self::StopDaemon => "stop-daemon",
            Self::Restore => "restore",
            Self::Save => "save",
            Self::Zero => "zero",
        }
    }
}

/// ipvsadm's option classes (columns of its validity table), with its names for them.
const OPT_NAMES: [&str; 34] = [
    "numeric",
    "connection",
    "service-address",
    "scheduler",
    "persistent",
    "netmask",
    "real-server",
    "forwarding-method",
    "weight",
    "u-threshold",
    "l-threshold",
    "mcast-interface",
    "timeout",
    "daemon",
    "stats",
    "rate",
    "thresholds",
    "persistent-conn",
    "nosort",
    "syncid",
    "exact",
    "ops",
    "pe",
    "sched-flags",
    "mcast-group",
    "mcast-port",
    "mcast-ttl",
    "sync-maxlen",
    "tun-info",
    "tun-type",
    "tun-port",
    "tun-nocsum",
    "tun-csum",
    "tun-remcsum",
];

mod opt {
    pub(super) const NUMERIC: usize = 0;
    pub(super) const CONNECTION: usize = 1;
    pub(super) const SERVICE: usize = 2;
    pub(super) const SCHEDULER: usize = 3;
    pub(super) const PERSISTENT: usize = 4;
    pub(super) const NETMASK: usize = 5;
    pub(super) const SERVER: usize = 6;
    pub(super) const FORWARD: usize = 7;
    pub(super) const WEIGHT: usize = 8;
    pub(super) const UTHRESHOLD: usize = 9;
    pub(super) const LTHRESHOLD: usize = 10;
    pub(super) const MCAST: usize = 11;
    pub(super) const TIMEOUT: usize = 12;
    pub(super) const DAEMON: usize = 13;
    pub(super) const STATS: usize = 14;
    pub(super) const RATE: usize = 15;
    pub(super) const THRESHOLDS: usize = 16;
    pub(super) const PERSISTENTCONN: usize = 17;
    pub(super) const NOSORT: usize = 18;
    pub(super) const SYNCID: usize = 19;
    pub(super) const EXACT: usize = 20;
    pub(super) const ONEPACKET: usize = 21;
    pub(super) const PE: usize = 22;
    pub(super) const SCHED_FLAGS: usize = 23;
    pub(super) const MCAST_GROUP: usize = 24;
    pub(super) const MCAST_PORT: usize = 25;
    pub(super) const MCAST_TTL: usize = 26;
    pub(super) const SYNC_MAXLEN: usize = 27;
    pub(super) const TUN_INFO: usize = 28;
    pub(super) const TUN_TYPE: usize = 29;
    pub(super) const TUN_PORT: usize = 30;
    pub(super) const TUN_NOCSUM: usize = 31;
    pub(super) const TUN_CSUM: usize = 32;
    pub(super) const TUN_REMCSUM: usize = 33;
}

/// Which option classes each command takes: `+` required, `x` illegal, `1` at most one of
/// the `1`s, ` ` optional (the columns follow [`OPT_NAMES`]).
const VALID: [&[u8; 34]; 14] = [
    b"xx+   xxxxxxxxxxxxxxx   xxxxxxxxxx", // add-service
    b"xx+   xxxxxxxxxxxxxxx   xxxxxxxxxx", // edit-service
    b"xx+xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", // delete-service
    b"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", // flush
    b" 11xxxxxxxxx11       xxxxxxx xxxxx", // list
    b"xx+xxx+    xxxxxxxxxxxxxxxxxx     ", // add-server
    b"xx+xxx+xxxxxxxxxxxxxxxxxxxxxxxxxxx", // delete-server
    b"xx+xxx+    xxxxxxxxxxxxxxxxxx     ", // edit-server
    b"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", // set
    b"xxxxxxxxxxx xxxxxxx xxxx    xxxxxx", // start-daemon
    b"xxxxxxxxxxxxxxxxxxx xxxxxxxxxxxxxx", // stop-daemon
    b"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", // restore
    b" xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", // save
    b"xx xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", // zero
];

/// The long options and what they are (short letter, if any, and whether they take a value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arg {
    No,
    Required,
    Optional,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Short(char),
    SctpService,
    Set,
    StartDaemon,
    StopDaemon,
    McastInterface,
    SyncId,
    Timeout,
    Daemon,
    Stats,
    Rate,
    Thresholds,
    PersistentConn,
    NoSort,
    Sort,
    Pe,
    McastGroup,
    McastPort,
    McastTtl,
    SyncMaxlen,
    TunInfo,
    TunType,
    TunPort,
    TunNoCsum,
    TunCsum,
    TunRemCsum,
}

const LONG: &[(&str, Key, Arg)] = &[
    ("add-service", Key::Short('A'), Arg::No),
    ("edit-service", Key::Short('E'), Arg::No),
    ("delete-service", Key::Short('D'), Arg::No),
    ("clear", Key::Short('C'), Arg::No),
    ("list", Key::Short('L'), Arg::No),
    ("zero", Key::Short('Z'), Arg::No),
    ("add-server", Key::Short('a'), Arg::No),
    ("edit-server", Key::Short('e'), Arg::No),
    ("delete-server", Key::Short('d'), Arg::No),
    ("set", Key::Set, Arg::No),
    ("help", Key::Short('h'), Arg::No),
    ("version", Key::Short('v'), Arg::No),
    ("restore", Key::Short('R'), Arg::No),
    ("save", Key::Short('S'), Arg::No),
    ("start-daemon", Key::StartDaemon, Arg::Required),
    ("stop-daemon", Key::StopDaemon, Arg::Required),
    ("tcp-service", Key::Short('t'), Arg::Required),
    ("udp-service", Key::Short('u'), Arg::Required),
    ("sctp-service", Key::SctpService, Arg::Required),
    ("fwmark-service", Key::Short('f'), Arg::Required),
    ("scheduler", Key::Short('s'), Arg::Required),
    ("persistent", Key::Short('p'), Arg::Optional),
    ("netmask", Key::Short('M'), Arg::Required),
    ("real-server", Key::Short('r'), Arg::Required),
    ("masquerading", Key::Short('m'), Arg::No),
    ("ipip", Key::Short('i'), Arg::No),
    ("gatewaying", Key::Short('g'), Arg::No),
    ("weight", Key::Short('w'), Arg::Required),
    ("u-threshold", Key::Short('x'), Arg::Required),
    ("l-threshold", Key::Short('y'), Arg::Required),
    ("numeric", Key::Short('n'), Arg::No),
    ("connection", Key::Short('c'), Arg::No),
    ("mcast-interface", Key::McastInterface, Arg::Required),
    ("syncid", Key::SyncId, Arg::Required),
    ("timeout", Key::Timeout, Arg::No),
    ("daemon", Key::Daemon, Arg::No),
    ("stats", Key::Stats, Arg::No),
    ("rate", Key::Rate, Arg::No),
    ("thresholds", Key::Thresholds, Arg::No),
    ("persistent-conn", Key::PersistentConn, Arg::No),
    ("nosort", Key::NoSort, Arg::No),
    ("sort", Key::Sort, Arg::No),
    ("exact", Key::Short('X'), Arg::No),
    ("ipv6", Key::Short('6'), Arg::No),
    ("ops", Key::Short('o'), Arg::No),
    ("pe", Key::Pe, Arg::Required),
    ("sched-flags", Key::Short('b'), Arg::Required),
    ("mcast-group", Key::McastGroup, Arg::Required),
    ("mcast-port", Key::McastPort, Arg::Required),
    ("mcast-ttl", Key::McastTtl, Arg::Required),
    ("sync-maxlen", Key::SyncMaxlen, Arg::Required),
    ("tun-info", Key::TunInfo, Arg::No),
    ("tun-type", Key::TunType, Arg::Required),
    ("tun-port", Key::TunPort, Arg::Required),
    ("tun-nocsum", Key::TunNoCsum, Arg::No),
    ("tun-csum", Key::TunCsum, Arg::No),
    ("tun-remcsum", Key::TunRemCsum, Arg::No),
];

/// The short letters and whether they take a value.
fn short(c: char) -> Option<Arg> {
    match c {
        'A' | 'E' | 'D' | 'C' | 'L' | 'l' | 'Z' | 'a' | 'e' | 'd' | 'h' | 'v' | 'R' | 'S' | 'm'
        | 'i' | 'g' | 'n' | 'c' | 'X' | '6' | 'o' => Some(Arg::No),
        't' | 'u' | 'f' | 's' | 'M' | 'r' | 'w' | 'x' | 'y' | 'b' => Some(Arg::Required),
        'p' => Some(Arg::Optional),
        _ => None,
    }
}

/// One option as popt hands it over.
#[derive(Debug)]
struct Opt {
    /// The argv word it came from (what ipvsadm names in "invalid option").
    word: String,
    key: Key,
    value: Option<String>,
}

/// Split argv (without argv\[0\]) into options and leftover words, popt style.
fn tokenize(args: &[String]) -> (Vec<Result<Opt, ArgError>>, Vec<String>) {
    let mut opts = Vec::new();
    let mut words = Vec::new();
    let mut i = 0;
    while let Some(a) = args.get(i) {
        i += 1;
        if a == "--" {
            words.extend(args.iter().skip(i).cloned());
            break;
        }
        if let Some(long) = a.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_owned())),
                None => (long, None),
            };
            let Some(&(_, key, kind)) = LONG.iter().find(|(n, _, _)| *n == name) else {
                opts.push(Err(ArgError::UnknownOption { option: a.clone() }));
                break;
            };
            let value = match (kind, inline) {
                (Arg::No, _) => None,
                (_, Some(v)) => Some(v),
                (Arg::Required, None) => {
                    if let Some(v) = args.get(i) {
                        i += 1;
                        Some(v.clone())
                    } else {
                        opts.push(Err(ArgError::MissingArgument { option: a.clone() }));
                        break;
                    }
                }
                (Arg::Optional, None) => match args.get(i) {
                    Some(v) if !v.starts_with('-') => {
                        i += 1;
                        Some(v.clone())
                    }
                    _ => None,
                },
            };
            opts.push(Ok(Opt {
                word: a.clone(),
                key,
                value,
            }));
        } else if a.len() > 1 && a.starts_with('-') {
            let body: Vec<char> = a.chars().skip(1).collect();
            let mut j = 0;
            let mut stop = false;
            while let Some(&c) = body.get(j) {
                j += 1;
                let Some(kind) = short(c) else {
                    opts.push(Err(ArgError::UnknownOption {
                        option: format!("-{c}"),
                    }));
                    stop = true;
                    break;
                };
                let rest: String = body.iter().skip(j).collect();
                let value = match kind {
                    Arg::No => None,
                    Arg::Required => {
                        j = body.len();
                        if !rest.is_empty() {
                            Some(rest)
                        } else if let Some(v) = args.get(i) {
                            i += 1;
                            Some(v.clone())
                        } else {
                            opts.push(Err(ArgError::MissingArgument {
                                option: format!("-{c}"),
                            }));
                            stop = true;
                            break;
                        }
                    }
                    Arg::Optional => {
                        j = body.len();
                        if !rest.is_empty() {
                            Some(rest)
                        } else {
                            match args.get(i) {
                                Some(v) if !v.starts_with('-') => {
                                    i += 1;
                                    Some(v.clone())
                                }
                                _ => None,
                            }
                        }
                    }
                };
                opts.push(Ok(Opt {
                    word: a.clone(),
                    key: Key::Short(c),
                    value,
                }));
            }
            if stop {
                break;
            }
        } else {
            words.push(a.clone());
        }
    }
    (opts, words)
}

/// `string_to_number`: a whole decimal number within `min..=max`.
fn number(s: &str, min: i64, max: i64) -> Option<i64> {
    let t = s.strip_prefix('+').unwrap_or(s);
    let neg = t.starts_with('-');
    let digits = t.strip_prefix('-').unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let v: i64 = digits.parse().ok()?;
    let v = if neg { -v } else { v };
    (min..=max).contains(&v).then_some(v)
}

/// ipvsadm's longest persistence or connection timeout: 31 days.
const MAX_TIMEOUT: i64 = 86400 * 31;
/// `-p` without a value.
const DEFAULT_PERSISTENCE: u32 = 300;
/// `-s` when none is given.
const DEFAULT_SCHEDULER: &str = "wlc";

/// Parse `ADDR[:PORT]` / `[V6]:PORT` the way ipvsadm does: `Some((ip, port))`, port `None`
/// when absent; `None` when unparsable.
fn parse_addr(buf: &str, proto: Protocol, names: &dyn Names) -> Option<(IpAddr, Option<u16>)> {
    if buf.is_empty() || buf.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (host, port) = if let Some(inner) = buf.strip_prefix('[') {
        let (h, after) = inner.split_once(']')?;
        let p = after.strip_prefix(':')?;
        (h, Some(p))
    } else if buf.parse::<std::net::Ipv6Addr>().is_ok() {
        (buf, None)
    } else {
        match buf.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (buf, None),
        }
    };
    let ip = if let Ok(v6) = host.parse::<std::net::Ipv6Addr>() {
        IpAddr::V6(v6)
    } else if let Some(v4) = inet_aton(host) {
        IpAddr::V4(v4)
    } else {
        IpAddr::V4(names.host_to_addr(host)?)
    };
    let port = match port {
        None => None,
        Some(p) => Some(match number(p, 0, 65535) {
            Some(n) => u16::try_from(n).ok()?,
            None => names.service_to_port(p, proto)?,
        }),
    };
    Some((ip, port))
}

/// `inet_aton`: dotted quads, also the short forms `a.b.c`, `a.b`, `a` and hex/octal parts.
fn inet_aton(s: &str) -> Option<Ipv4Addr> {
    if s.is_empty() {
        return None;
    }
    let parts: Vec<&str> = s.split('.').collect();
    if parts.len() > 4 {
        return None;
    }
    let mut vals = Vec::with_capacity(parts.len());
    for p in &parts {
        let v = if let Some(h) = p.strip_prefix("0x").or_else(|| p.strip_prefix("0X")) {
            u32::from_str_radix(h, 16).ok()?
        } else if p.len() > 1 && p.starts_with('0') {
            u32::from_str_radix(p, 8).ok()?
        } else if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) {
            p.parse().ok()?
        } else {
            return None;
        };
        vals.push(v);
    }
    let (last, head) = vals.split_last()?;
    let mut addr: u32 = 0;
    for (i, v) in head.iter().enumerate() {
        if *v > 255 {
            return None;
        }
        addr |= v << (24 - 8 * i);
    }
    let room = 32 - 8 * u32::try_from(head.len()).ok()?;
    if room < 32 && u64::from(*last) >= (1u64 << room) {
        return None;
    }
    Some(Ipv4Addr::from(addr | last))
}

/// The command entry ipvsadm fills while reading options.
#[derive(Debug)]
struct Entry {
    family: Family,
    protocol: Protocol,
    addr: Option<IpAddr>,
    port: u16,
    fwmark: u32,
    scheduler: String,
    persistent: bool,
    timeout: u32,
    netmask_v4: Ipv4Addr,
    netmask_v6: u8,
    one_packet: bool,
    pe: Option<String>,
    sched_flags: Option<String>,
    dest: Option<(IpAddr, u16)>,
    forward: u32,
    weight: u32,
    upper: u32,
    lower: u32,
    tun_type: u8,
    tun_port: u16,
    tun_flags: u16,
    daemon_state: DaemonState,
    mcast_ifn: Option<String>,
    syncid: u32,
    mcast_group: Option<IpAddr>,
    mcast_port: Option<u16>,
    mcast_ttl: Option<u8>,
    sync_maxlen: Option<u16>,
}

const FWD_MASQ: u32 = 0;
const FWD_TUNNEL: u32 = 2;
const FWD_DROUTE: u32 = 3;

impl Default for Entry {
    fn default() -> Self {
        Self {
            family: Family::V4,
            protocol: Protocol::Tcp,
            addr: None,
            port: 0,
            fwmark: 0,
            scheduler: String::new(),
            persistent: false,
            timeout: 0,
            netmask_v4: Ipv4Addr::BROADCAST,
            netmask_v6: 128,
            one_packet: false,
            pe: None,
            sched_flags: None,
            dest: None,
            forward: FWD_DROUTE,
            weight: 1,
            upper: 0,
            lower: 0,
            tun_type: 0,
            tun_port: 0,
            tun_flags: 0,
            daemon_state: DaemonState::Master,
            mcast_ifn: None,
            syncid: 0,
            mcast_group: None,
            mcast_port: None,
            mcast_ttl: None,
            sync_maxlen: None,
        }
    }
}

impl Entry {
    fn key(&self) -> ServiceKey {
        if self.fwmark != 0 {
            ServiceKey::Fwmark {
                family: self.family,
                mark: self.fwmark,
            }
        } else {
            let ip = self.addr.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
            ServiceKey::Inet {
                protocol: self.protocol,
                addr: SocketAddr::new(ip, self.port),
            }
        }
    }

    fn sched_flag_bits(&self) -> Result<ServiceFlags, ArgError> {
        let Some(arg) = &self.sched_flags else {
            return Ok(ServiceFlags::empty());
        };
        let sched = if self.scheduler.is_empty() {
            DEFAULT_SCHEDULER
        } else {
            self.scheduler.as_str()
        };
        let mut flags = ServiceFlags::empty();
        let mut any = false;
        for flag in arg.split(',').filter(|f| !f.is_empty()) {
            any = true;
            let (bits, needs) = match flag {
                "flag-1" => (ServiceFlags::SCHED1, None),
                "flag-2" => (ServiceFlags::SCHED2, None),
                "flag-3" => (ServiceFlags::SCHED3, None),
                "sh-fallback" => (ServiceFlags::SH_FALLBACK, Some("sh")),
                "sh-port" => (ServiceFlags::SH_PORT, Some("sh")),
                "mh-fallback" => (ServiceFlags::MH_FALLBACK, Some("mh")),
                "mh-port" => (ServiceFlags::MH_PORT, Some("mh")),
                other => return Err(ArgError::InvalidSchedFlag(other.to_owned())),
            };
            if needs.is_some_and(|s| s != sched) {
                return Err(ArgError::IncompatibleSchedFlag(flag.to_owned()));
            }
            flags = flags | bits;
        }
        if !any {
            return Err(ArgError::InvalidSchedFlag(String::new()));
        }
        Ok(flags)
    }

    fn service(&self) -> Result<Service, ArgError> {
        let key = self.key();
        let sched = if self.scheduler.is_empty() {
            DEFAULT_SCHEDULER
        } else {
            self.scheduler.as_str()
        };
        let mut svc = if self.persistent {
            Service::new_persistent(key, sched, self.timeout)?
        } else {
            Service::new(key, sched)?
        };
        let mask = match key.family() {
            Family::V4 => Netmask::v4(self.netmask_v4)?,
            Family::V6 => Netmask::v6(self.netmask_v6)?,
        };
        if mask != Netmask::full(key.family()) {
            svc = svc.with_netmask(mask)?;
        }
        let mut flags = self.sched_flag_bits()?;
        if self.one_packet {
            flags = flags | ServiceFlags::ONE_PACKET;
        }
        svc = svc.with_flags(flags);
        if let Some(pe) = &self.pe {
            svc = svc.with_pe(pe)?;
        }
        Ok(svc)
    }

    fn dest_addr(&self) -> SocketAddr {
        let (ip, port) = self.dest.unwrap_or((IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0));
        SocketAddr::new(ip, port)
    }

    fn dest(&self) -> Result<Dest, ArgError> {
        let forward = match self.forward {
            FWD_MASQ => ForwardMethod::Masq,
            FWD_TUNNEL => ForwardMethod::Tunnel(match self.tun_type {
                1 => TunnelType::Gue {
                    port: self.tun_port,
                    flags: self.tun_flags,
                },
                2 => TunnelType::Gre {
                    flags: self.tun_flags,
                },
                _ => TunnelType::Ipip,
            }),
            _ => ForwardMethod::DirectRoute,
        };
        let d = Dest::new(self.dest_addr(), forward)?;
        // ipvsadm 1.31 and the kernel take weights up to INT_MAX and leave the threshold
        // check (lower above upper: ERANGE) to the kernel; the crate's constructors are
        // stricter, so the destination is built from its attributes with the given values.
        let attrs: Vec<DestAttr> = d
            .attrs()
            .into_iter()
            .map(|a| match a {
                DestAttr::Weight(_) => DestAttr::Weight(self.weight),
                DestAttr::UThresh(_) => DestAttr::UThresh(self.upper),
                DestAttr::LThresh(_) => DestAttr::LThresh(self.lower),
                other => other,
            })
            .collect();
        Ok(DestEntry::from_attrs(&attrs, self.family)?.dest)
    }
}

/// The options that name tunnel settings, with their column.
const TUN_OPTS: [usize; 4] = [
    opt::TUN_PORT,
    opt::TUN_NOCSUM,
    opt::TUN_CSUM,
    opt::TUN_REMCSUM,
];
/// Per tunnel type (ipip, gue, gre), per [`TUN_OPTS`] entry.
const TUN_VALID: [&[u8; 4]; 3] = [b"xxxx", b"+111", b"x11x"];
const TUN_NAMES: [&str; 3] = ["ipip", "gue", "gre"];

/// A parsed invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// The command.
    pub command: Command,
}

/// Parse one ipvsadm invocation. `argv[0]` is the program name (used in the "Try … -h"
/// message); `names` resolves host and service names.
pub fn parse(argv: &[String], names: &dyn Names) -> Result<Parsed, ArgError> {
    let program = argv
        .first()
        .cloned()
        .unwrap_or_else(|| "ipvsadm".to_owned());
    let rest = argv.get(1..).unwrap_or_default();
    if rest.is_empty() {
        return Ok(Parsed {
            command: Command::List {
                what: ListWhat::All,
                format: Format::default(),
            },
        });
    }
    let try_help = || ArgError::TryHelp {
        program: program.clone(),
    };
    let (opts, words) = tokenize(rest);
    let mut opts = opts.into_iter();
    let mut ce = Entry::default();
    let mut format = Format::default();
    let mut seen = [false; 34];

    let Some(Ok(first)) = opts.next() else {
        return Err(try_help());
    };
    let cmd = match first.key {
        Key::Short('A') => Cmd::Add,
        Key::Short('E') => Cmd::Edit,
        Key::Short('D') => Cmd::Del,
        Key::Short('a') => Cmd::AddDest,
        Key::Short('e') => Cmd::EditDest,
        Key::Short('d') => Cmd::DelDest,
        Key::Short('C') => Cmd::Flush,
        Key::Short('L' | 'l') => Cmd::List,
        Key::Short('Z') => Cmd::Zero,
        Key::Set => Cmd::Timeout,
        Key::Short('R') => Cmd::Restore,
        Key::Short('S') => Cmd::Save,
        Key::StartDaemon | Key::StopDaemon => {
            let state = match first.value.as_deref() {
                Some("master") => DaemonState::Master,
                Some("backup") => DaemonState::Backup,
                _ if first.key == Key::StartDaemon => return Err(ArgError::IllegalStartDaemon),
                _ => return Err(ArgError::IllegalStopDaemon),
            };
            ce.daemon_state = state;
            if first.key == Key::StartDaemon {
                Cmd::StartDaemon
            } else {
                Cmd::StopDaemon
            }
        }
        Key::Short('h') => {
            return Ok(Parsed {
                command: Command::Help,
            });
        }
        Key::Short('v') => {
            return Ok(Parsed {
                command: Command::Version,
            });
        }
        _ => return Err(try_help()),
    };

    let set = |seen: &mut [bool; 34], o: usize| -> Result<(), ArgError> {
        let slot = seen
            .get_mut(o)
            .ok_or_else(|| ArgError::InvalidOption(String::new()))?;
        if *slot {
            return Err(ArgError::MultipleOption(
                OPT_NAMES.get(o).copied().unwrap_or(""),
            ));
        }
        *slot = true;
        Ok(())
    };

    for o in opts.by_ref() {
        let o = o?;
        let value = o.value.clone().unwrap_or_default();
        match o.key {
            Key::Short(
                'A' | 'E' | 'D' | 'a' | 'e' | 'd' | 'C' | 'L' | 'l' | 'Z' | 'R' | 'S' | 'h' | 'v',
            )
            | Key::Set
            | Key::StartDaemon
            | Key::StopDaemon => return Err(ArgError::InvalidOption(o.word)),
            Key::Short('t' | 'u') | Key::SctpService => {
                set(&mut seen, opt::SERVICE)?;
                ce.protocol = match o.key {
                    Key::Short('t') => Protocol::Tcp,
                    Key::Short('u') => Protocol::Udp,
                    _ => Protocol::Sctp,
                };
                let (ip, port) =
                    parse_addr(&value, ce.protocol, names).ok_or(ArgError::IllegalVirtualServer)?;
                ce.family = Family::of(&ip);
                if ce.family == Family::V6 {
                    ce.netmask_v6 = 128;
                }
                ce.addr = Some(ip);
                if let Some(p) = port {
                    ce.port = p;
                }
            }
            Key::Short('f') => {
                set(&mut seen, opt::SERVICE)?;
                ce.family = Family::V4;
                ce.protocol = Protocol::Tcp;
                let mark = number(&value, 1, i64::from(u32::MAX))
                    .and_then(|m| u32::try_from(m).ok())
                    .ok_or_else(|| ArgError::InvalidFwmark(value.clone()))?;
                ce.fwmark = mark;
            }
            Key::Short('s') => {
                set(&mut seen, opt::SCHEDULER)?;
                ce.scheduler = value.chars().take(15).collect();
            }
            Key::Short('p') => {
                set(&mut seen, opt::PERSISTENT)?;
                ce.persistent = true;
                ce.timeout = match &o.value {
                    None => DEFAULT_PERSISTENCE,
                    Some(v) => number(v, 1, MAX_TIMEOUT)
                        .and_then(|t| u32::try_from(t).ok())
                        .ok_or_else(|| ArgError::InvalidTimeout(v.clone()))?,
                };
            }
            Key::Short('M') => {
                set(&mut seen, opt::NETMASK)?;
                if ce.family == Family::V6 {
                    let n = atoi(&value);
                    ce.netmask_v6 = u8::try_from(n)
                        .ok()
                        .filter(|n| (1..=128).contains(n))
                        .ok_or(ArgError::IllegalV6Mask)?;
                } else {
                    ce.netmask_v4 = inet_aton(&value)
                        .or_else(|| names.host_to_addr(&value))
                        .ok_or(ArgError::IllegalMask)?;
                }
            }
            Key::Short('r') => {
                set(&mut seen, opt::SERVER)?;
                let (ip, port) =
                    parse_addr(&value, ce.protocol, names).ok_or(ArgError::IllegalRealServer)?;
                ce.dest = Some((ip, port.unwrap_or(ce.port)));
            }
            Key::Short('i') => {
                set(&mut seen, opt::FORWARD)?;
                ce.forward = FWD_TUNNEL;
            }
            Key::Short('g') => {
                set(&mut seen, opt::FORWARD)?;
                ce.forward = FWD_DROUTE;
            }
            Key::Short('m') => {
                set(&mut seen, opt::FORWARD)?;
                ce.forward = FWD_MASQ;
            }
            Key::Short('w') => {
                set(&mut seen, opt::WEIGHT)?;
                ce.weight = number(&value, 0, i64::from(i32::MAX))
                    .and_then(|w| u32::try_from(w).ok())
                    .ok_or(ArgError::IllegalWeight)?;
            }
            Key::Short('x') => {
                set(&mut seen, opt::UTHRESHOLD)?;
                ce.upper = number(&value, 0, i64::from(i32::MAX))
                    .and_then(|w| u32::try_from(w).ok())
                    .ok_or(ArgError::IllegalUpperThreshold)?;
            }
            Key::Short('y') => {
                set(&mut seen, opt::LTHRESHOLD)?;
                ce.lower = number(&value, 0, i64::from(i32::MAX))
                    .and_then(|w| u32::try_from(w).ok())
                    .ok_or(ArgError::IllegalLowerThreshold)?;
            }
            Key::Short('c') => set(&mut seen, opt::CONNECTION)?,
            Key::Short('n') => {
                set(&mut seen, opt::NUMERIC)?;
                format.numeric = true;
            }
            Key::McastInterface => {
                set(&mut seen, opt::MCAST)?;
                ce.mcast_ifn = Some(value);
            }
            Key::SyncId => {
                set(&mut seen, opt::SYNCID)?;
                ce.syncid = number(&value, 0, 255)
                    .and_then(|v| u32::try_from(v).ok())
                    .ok_or(ArgError::IllegalSyncId)?;
            }
            Key::Timeout => set(&mut seen, opt::TIMEOUT)?,
            Key::Daemon => set(&mut seen, opt::DAEMON)?,
            Key::Stats => {
                set(&mut seen, opt::STATS)?;
                format.stats = true;
            }
            Key::Rate => {
                set(&mut seen, opt::RATE)?;
                format.rate = true;
            }
            Key::Thresholds => {
                set(&mut seen, opt::THRESHOLDS)?;
                format.thresholds = true;
            }
            Key::PersistentConn => {
                set(&mut seen, opt::PERSISTENTCONN)?;
                format.persistent_conn = true;
            }
            Key::NoSort => {
                set(&mut seen, opt::NOSORT)?;
                format.nosort = true;
            }
            Key::Sort => {}
            Key::Short('X') => {
                set(&mut seen, opt::EXACT)?;
                format.exact = true;
            }
            Key::Short('6') => {
                if ce.fwmark == 0 {
                    return Err(ArgError::SixBeforeF);
                }
                ce.family = Family::V6;
                ce.netmask_v6 = 128;
            }
            Key::Short('o') => {
                set(&mut seen, opt::ONEPACKET)?;
                ce.one_packet = true;
            }
            Key::Pe => {
                set(&mut seen, opt::PE)?;
                ce.pe = Some(value.chars().take(15).collect());
            }
            Key::Short('b') => {
                set(&mut seen, opt::SCHED_FLAGS)?;
                ce.sched_flags = Some(value);
            }
            Key::McastGroup => {
                set(&mut seen, opt::MCAST_GROUP)?;
                let ip = value
                    .parse::<IpAddr>()
                    .ok()
                    .filter(IpAddr::is_multicast)
                    .ok_or(ArgError::IllegalMcastGroup)?;
                ce.mcast_group = Some(ip);
            }
            Key::McastPort => {
                set(&mut seen, opt::MCAST_PORT)?;
                ce.mcast_port = Some(
                    number(&value, 1, 65535)
                        .and_then(|v| u16::try_from(v).ok())
                        .ok_or(ArgError::IllegalMcastPort)?,
                );
            }
            Key::McastTtl => {
                set(&mut seen, opt::MCAST_TTL)?;
                ce.mcast_ttl = Some(
                    number(&value, 1, 255)
                        .and_then(|v| u8::try_from(v).ok())
                        .ok_or(ArgError::IllegalMcastTtl)?,
                );
            }
            Key::SyncMaxlen => {
                set(&mut seen, opt::SYNC_MAXLEN)?;
                ce.sync_maxlen = Some(
                    number(&value, 1, 65535)
                        .and_then(|v| u16::try_from(v).ok())
                        .ok_or(ArgError::IllegalSyncMaxlen)?,
                );
            }
            Key::TunInfo => {
                set(&mut seen, opt::TUN_INFO)?;
                format.tun_info = true;
            }
            Key::TunType => {
                set(&mut seen, opt::TUN_TYPE)?;
                ce.tun_type = match value.as_str() {
                    "ipip" => 0,
                    "gue" => 1,
                    "gre" => 2,
                    _ => return Err(ArgError::IllegalTunnelType),
                };
            }
            Key::TunPort => {
                set(&mut seen, opt::TUN_PORT)?;
                ce.tun_port = number(&value, 1, 65535)
                    .and_then(|v| u16::try_from(v).ok())
                    .ok_or(ArgError::IllegalTunnelPort)?;
            }
            Key::TunNoCsum => set(&mut seen, opt::TUN_NOCSUM)?,
            Key::TunCsum => {
                set(&mut seen, opt::TUN_CSUM)?;
                ce.tun_flags |= 1;
            }
            Key::TunRemCsum => {
                set(&mut seen, opt::TUN_REMCSUM)?;
                ce.tun_flags |= 2;
            }
            Key::Short(other) => {
                return Err(ArgError::UnknownOption {
                    option: format!("-{other}"),
                });
            }
        }
    }

    let mut words = words.into_iter();
    let mut timeouts = Timeouts::default();
    if cmd == Cmd::Timeout {
        let (Some(a), Some(b), Some(c)) = (words.next(), words.next(), words.next()) else {
            return Err(ArgError::SetNeedsThree);
        };
        let t = |s: &String| {
            number(s, 0, MAX_TIMEOUT)
                .and_then(|v| u32::try_from(v).ok())
                .ok_or_else(|| ArgError::InvalidTimeout(s.clone()))
        };
        timeouts = Timeouts::new(t(&a)?, t(&b)?, t(&c)?);
    }
    if let Some(w) = words.next() {
        return Err(ArgError::UnexpectedArgument(w));
    }
    // Scheduler flags are checked against the scheduler once every option is read.
    if ce.sched_flags.is_some() {
        ce.sched_flag_bits()?;
    }

    check_table(cmd, &seen)?;

    if matches!(cmd, Cmd::Add | Cmd::Edit) {
        if ce.fwmark == 0 && ce.port == 0 && !ce.persistent {
            return Err(ArgError::ZeroPort);
        }
        if ce.one_packet && ce.fwmark == 0 && ce.protocol != Protocol::Udp {
            return Err(ArgError::OnePacketNotUdp);
        }
    }
    if matches!(cmd, Cmd::AddDest | Cmd::EditDest) {
        if ce.fwmark == 0
            && matches!(ce.forward, FWD_TUNNEL | FWD_DROUTE)
            && let Some((ip, _)) = ce.dest
        {
            ce.dest = Some((ip, ce.port));
        }
        let dest_family = ce.dest.map_or(ce.family, |(ip, _)| Family::of(&ip));
        if dest_family != ce.family && ce.forward != FWD_TUNNEL {
            return Err(ArgError::MixedFamily);
        }
        let any_tun = TUN_OPTS
            .iter()
            .any(|&o| seen.get(o).copied().unwrap_or(false))
            || seen.get(opt::TUN_TYPE).copied().unwrap_or(false);
        if any_tun && ce.forward != FWD_TUNNEL {
            return Err(ArgError::TunnelOptionsWithoutTunnel);
        }
        check_tunnel(ce.tun_type, &seen)?;
    }

    let key = ce.key();
    let command = match cmd {
        Cmd::Add => Command::AddService(ce.service()?),
        Cmd::Edit => Command::EditService(ce.service()?),
        Cmd::Del => Command::DeleteService(key),
        Cmd::Flush => Command::Flush,
        Cmd::List => {
            let has = |o: usize| seen.get(o).copied().unwrap_or(false);
            if (has(opt::CONNECTION) || has(opt::TIMEOUT) || has(opt::DAEMON))
                && (has(opt::STATS) || has(opt::RATE) || has(opt::THRESHOLDS))
                || (has(opt::TIMEOUT) || has(opt::DAEMON)) && has(opt::PERSISTENTCONN)
            {
                return Err(ArgError::ListConflict);
            }
            let what = if has(opt::CONNECTION) {
                return Err(ArgError::ConnectionsUnsupported);
            } else if has(opt::SERVICE) {
                ListWhat::Service(key)
            } else if has(opt::TIMEOUT) {
                ListWhat::Timeouts
            } else if has(opt::DAEMON) {
                ListWhat::Daemons
            } else {
                ListWhat::All
            };
            Command::List { what, format }
        }
        Cmd::AddDest => Command::AddDest(key, ce.dest()?),
        Cmd::EditDest => Command::EditDest(key, ce.dest()?),
        Cmd::DelDest => Command::DeleteDest(key, ce.dest_addr()),
        Cmd::Timeout => Command::SetTimeouts(timeouts),
        Cmd::StartDaemon => {
            let ifn = ce.mcast_ifn.clone().unwrap_or_else(|| "eth0".to_owned());
            let mut d = SyncDaemon::new(ce.daemon_state, &ifn, ce.syncid)
                .map_err(|_| ArgError::IllegalMcastInterface)?;
            d.mcast_group = ce.mcast_group;
            d.mcast_port = ce.mcast_port;
            d.mcast_ttl = ce.mcast_ttl;
            d.sync_maxlen = ce.sync_maxlen;
            Command::StartDaemon(d)
        }
        Cmd::StopDaemon => Command::StopDaemon(ce.daemon_state),
        Cmd::Restore => Command::Restore,
        Cmd::Save => Command::Save {
            format: Format {
                rule: true,
                ..format
            },
        },
        Cmd::Zero => Command::Zero(
            seen.get(opt::SERVICE)
                .copied()
                .unwrap_or(false)
                .then_some(key),
        ),
    };
    Ok(Parsed { command })
}

/// C's `atoi`: leading whitespace, sign, digits; 0 when none.
fn atoi(s: &str) -> i64 {
    let t = s.trim_start();
    let (neg, t) = match t.as_bytes().first() {
        Some(b'-') => (true, t.get(1..).unwrap_or("")),
        Some(b'+') => (false, t.get(1..).unwrap_or("")),
        _ => (false, t),
    };
    let mut v: i64 = 0;
    for b in t.bytes().take_while(u8::is_ascii_digit) {
        v = v.saturating_mul(10).saturating_add(i64::from(b - b'0'));
    }
    if neg { -v } else { v }
}

fn check_table(cmd: Cmd, seen: &[bool; 34]) -> Result<(), ArgError> {
    let Some(row) = VALID.get(cmd.index()) else {
        return Ok(());
    };
    let mut last: Option<usize> = None;
    for (j, (&given, &rule)) in seen.iter().zip(row.iter()).enumerate() {
        let name = OPT_NAMES.get(j).copied().unwrap_or("");
        if !given {
            if rule == b'+' {
                return Err(ArgError::NeedOption {
                    option: name,
                    command: cmd.name(),
                });
            }
        } else {
            if rule == b'x' {
                return Err(ArgError::IllegalOption {
                    option: name,
                    command: cmd.name(),
                });
            }
            if rule == b'1' {
                if let Some(l) = last {
                    return Err(ArgError::Conflict {
                        option: name,
                        other: OPT_NAMES.get(l).copied().unwrap_or(""),
                        command: cmd.name(),
                    });
                }
                last = Some(j);
            }
        }
    }
    Ok(())
}

fn check_tunnel(tun_type: u8, seen: &[bool; 34]) -> Result<(), ArgError> {
    let t = usize::from(tun_type);
    let (Some(row), Some(&tunnel)) = (TUN_VALID.get(t), TUN_NAMES.get(t)) else {
        return Ok(());
    };
    let mut last: Option<usize> = None;
    for (&o, &rule) in TUN_OPTS.iter().zip(row.iter()) {
        let name = OPT_NAMES.get(o).copied().unwrap_or("");
        if !seen.get(o).copied().unwrap_or(false) {
            if rule == b'+' {
                return Err(ArgError::TunnelNeedsOption {
                    option: name,
                    tunnel,
                });
            }
        } else {
            if rule == b'x' {
                return Err(ArgError::TunnelIllegalOption {
                    option: name,
                    tunnel,
                });
            }
            if rule == b'1' {
                if let Some(l) = last {
                    return Err(ArgError::TunnelConflict {
                        option: name,
                        other: OPT_NAMES.get(l).copied().unwrap_or(""),
                        tunnel,
                    });
                }
                last = Some(o);
            }
        }
    }
    Ok(())
}
