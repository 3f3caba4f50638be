//! [`RtnlError`]: everything the route-netlink helpers can fail with, each variant saying
//! what went wrong and what to do about it.

use std::io;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use netlink_packet_core::DecodeError;

/// An error from [`Rtnl`](super::Rtnl), [`LinkWatcher`](super::LinkWatcher) or the sysctl
/// helpers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RtnlError {
    /// A system call on the netlink socket failed.
    #[error("{op}: netlink socket error: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The underlying error (its raw OS error keeps the errno).
        #[source]
        source: io::Error,
    },
    /// The kernel refused a request with `errno`.
    #[error("{op}: the kernel refused: {}", kernel_text(*errno))]
    Kernel {
        /// The positive errno from the kernel's `NLMSG_ERROR` (e.g. `libc::EPERM`).
        errno: i32,
        /// What was being done.
        op: &'static str,
    },
    /// No network interface has this name.
    #[error("no network interface named {name:?}: check the name with `ip link`")]
    NoSuchLink {
        /// The name that was looked up.
        name: String,
    },
    /// No network interface has this index (it may have been removed meanwhile).
    #[error(
        "no network interface with index {index}: it does not exist (any more); look it up again by name"
    )]
    NoSuchIndex {
        /// The index that was looked up.
        index: u32,
    },
    /// A reply could not be decoded by netlink-packet-route.
    #[error(
        "{op}: undecodable netlink reply: {source}; this is a kernel/library mismatch, please report it"
    )]
    Decode {
        /// What was being done.
        op: &'static str,
        /// The decoder's complaint.
        #[source]
        source: DecodeError,
    },
    /// A reply was structurally broken (truncated, bad lengths, missing attribute).
    #[error("{op}: malformed netlink reply: {what}")]
    Malformed {
        /// What was being done.
        op: &'static str,
        /// What was wrong with it.
        what: &'static str,
    },
    /// The kernel did not answer in time.
    #[error(
        "{op}: no answer from the kernel within {timeout:?}; the system may be overloaded, retry"
    )]
    Timeout {
        /// What was being done.
        op: &'static str,
        /// How long was waited.
        timeout: Duration,
    },
    /// A dump kept changing under us (`NLM_F_DUMP_INTR` on every attempt).
    #[error("{op}: the kernel's table kept changing during the dump; retry later")]
    DumpInterrupted {
        /// What was being done.
        op: &'static str,
    },
    /// An interface or sysctl name that cannot be valid.
    #[error("invalid name {name:?}: {why}")]
    InvalidName {
        /// The rejected name.
        name: String,
        /// Why it was rejected.
        why: &'static str,
    },
    /// A prefix length too long for the address family.
    #[error("invalid prefix length /{prefix} for {addr}: at most 32 for IPv4, 128 for IPv6")]
    InvalidPrefix {
        /// The address.
        addr: IpAddr,
        /// The rejected prefix length.
        prefix: u8,
    },
    /// A route or rule whose addresses are not all of one family.
    #[error("{what}: IPv4 and IPv6 addresses mixed in one {what}")]
    MixedFamilies {
        /// `route` or `rule`.
        what: &'static str,
    },
    /// A MAC address that no interface may use (multicast or all zeros).
    #[error(
        "invalid interface MAC address {}: it must be unicast and not all zeros",
        fmt_mac(mac)
    )]
    InvalidMac {
        /// The rejected address.
        mac: [u8; 6],
    },
    /// A link with the requested name exists but is not what the caller wanted to reuse.
    #[error(
        "a link named {name:?} (index {index}) already exists and is {found}; delete it (`ip link del {name}`) or choose another name"
    )]
    LinkConflict {
        /// The name asked for.
        name: String,
        /// The index of the existing link.
        index: u32,
        /// What the existing link is (e.g. "a veth", "a macvlan on another parent").
        found: String,
    },
    /// The kernel dropped notifications because the socket's buffer was full (`ENOBUFS`).
    #[error(
        "link notifications were lost (receive buffer overflow); re-read every link with Rtnl::links() to resynchronise"
    )]
    EventsLost,
    /// Reading or writing a sysctl under `/proc/sys` failed.
    #[error("sysctl {path}: {source}{}", sysctl_hint(source))]
    Sysctl {
        /// The file under `/proc/sys`.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

impl RtnlError {
    /// The errno behind this error, when there is one (kernel refusal, socket or sysctl error).
    #[must_use]
    pub fn errno(&self) -> Option<i32> {
        match self {
            Self::Kernel { errno, .. } => Some(*errno),
            Self::Io { source, .. } | Self::Sysctl { source, .. } => source.raw_os_error(),
            Self::EventsLost => Some(libc::ENOBUFS),
            _ => None,
        }
    }

    /// Whether the error means "not allowed": run as root or with `CAP_NET_ADMIN`.
    #[must_use]
    pub fn is_permission_denied(&self) -> bool {
        matches!(self.errno(), Some(libc::EPERM | libc::EACCES))
    }

    pub(super) fn io(op: &'static str) -> impl FnOnce(io::Error) -> Self {
        move |source| Self::Io { op, source }
    }
}

/// "EPERM (Operation not permitted): run as root or grant CAP_NET_ADMIN" and the like.
fn kernel_text(errno: i32) -> String {
    let e = nix::errno::Errno::from_raw(errno);
    let hint = match errno {
        libc::EPERM | libc::EACCES => "run as root or grant CAP_NET_ADMIN",
        libc::ENODEV => "the interface does not exist (any more)",
        libc::EEXIST => "it already exists",
        libc::EADDRNOTAVAIL => "no such address on that interface, or the address is not usable",
        libc::EOPNOTSUPP => {
            "the kernel lacks this feature or link type (load its module, e.g. `modprobe macvlan`)"
        }
        libc::EAFNOSUPPORT => "that address family is not available (IPv6 disabled?)",
        libc::EINVAL => "the kernel rejected an argument (check name, prefix, MAC and MTU)",
        libc::ERANGE => "a value is out of range (name too long? MTU?)",
        libc::EBUSY => "the device is busy (enslaved or in use); retry or release it first",
        libc::EADDRINUSE => "that MAC address is already used by another link on the same parent",
        libc::ENOBUFS | libc::ENOMEM => "the kernel is out of memory; retry later",
        libc::ENETDOWN => "the interface is down; bring it up first",
        _ => "see the errno",
    };
    format!("{e:?} ({}): {hint}", e.desc())
}

fn sysctl_hint(source: &io::Error) -> &'static str {
    match source.kind() {
        io::ErrorKind::NotFound => {
            " (no such sysctl: is the interface present in this network namespace, and the key spelled right?)"
        }
        io::ErrorKind::PermissionDenied => " (run as root)",
        io::ErrorKind::InvalidInput => " (the kernel rejected the value)",
        _ => "",
    }
}

pub(super) fn fmt_mac(mac: &[u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]
    )
}
