//! [`ConfigError`]: what a constructor refuses, naming the field, before anything is sent.

/// A request that the kernel would refuse, caught before sending. Each variant names the field.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A scheduler or persistence-engine name is empty, too long or not `[a-z0-9_]`.
    #[error(
        "invalid {field} {name:?}: use 1 to 15 lowercase letters, digits or '_' (e.g. \"wlc\", \"sip\")"
    )]
    InvalidName {
        /// `"scheduler"`, `"persistence engine"` or `"mcast interface"`.
        field: &'static str,
        /// The rejected name.
        name: String,
    },
    /// Port 0 on a non-persistent TCP/UDP/SCTP service.
    ///
    /// The kernel stores such a service but never schedules a connection to it (its
    /// scheduler logs "port zero only supported in persistent services"), and ipvsadm
    /// refuses it ("Zero port specified for non-persistent service"). On a persistent
    /// service port 0 is the kernel's catch-all for every port of the address, so it is
    /// allowed there; fwmark services have no port.
    #[error(
        "port: 0 is only valid for a persistent service (ipvsadm: zero port specified for non-persistent service); give a port or set a persistence timeout"
    )]
    ZeroPort,
    /// A netmask that is not contiguous, has the wrong family, or a prefix outside 1..=128.
    #[error(
        "netmask {value}: use a contiguous IPv4 mask such as 255.255.255.0 for IPv4 services, a prefix length 1..=128 for IPv6"
    )]
    BadNetmask {
        /// The rejected value, as written.
        value: String,
    },
    /// A weight above 2,147,483,647: the kernel keeps weights as a C `int` and refuses
    /// negative ones with `ERANGE` (`ip_vs_add_dest`).
    #[error("weight {weight} out of range: use 0..=2147483647 (0 stops new connections)")]
    WeightOutOfRange {
        /// The rejected weight.
        weight: u32,
    },
    /// Lower threshold above upper threshold (`ERANGE` from the kernel).
    #[error(
        "thresholds: lower threshold {lower} is above upper threshold {upper}; lower it or raise the upper one"
    )]
    Thresholds {
        /// `-y`.
        lower: u32,
        /// `-x`.
        upper: u32,
    },
    /// A GUE tunnel without a port.
    #[error("tunnel port: a GUE tunnel needs a non-zero UDP port (--tun-port)")]
    TunnelPort,
    /// A reply lacked an attribute every kernel sends.
    #[error("kernel reply lacks {field}; the kernel and this crate disagree on the IPVS ABI")]
    Missing {
        /// The attribute.
        field: &'static str,
    },
    /// A reply carried a value this crate cannot represent.
    #[error("kernel reply has an unexpected {field} value {value}")]
    Unexpected {
        /// The attribute.
        field: &'static str,
        /// Its value.
        value: u32,
    },
}
