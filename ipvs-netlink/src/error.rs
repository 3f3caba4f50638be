//! `IpvsError`: everything the client can fail with, and the kernel's errnos in ipvsadm's words.

use std::fmt;

use crate::model::ConfigError;
use crate::wire;

/// The operation a kernel error belongs to (the ipvsadm command it corresponds to).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// Resolving the "IPVS" generic netlink family.
    ResolveFamily,
    /// `-A`.
    AddService,
    /// `-E`.
    EditService,
    /// `-D`.
    DeleteService,
    /// `-L -t ADDR` (one service).
    GetService,
    /// `-L` (all services).
    ListServices,
    /// `-a`.
    AddDest,
    /// `-e`.
    EditDest,
    /// `-d`.
    DeleteDest,
    /// listing the destinations of a service.
    ListDests,
    /// `-C`.
    Flush,
    /// `-Z`.
    Zero,
    /// `--set`.
    SetTimeouts,
    /// `-L --timeout`.
    GetTimeouts,
    /// version / connection table size.
    Info,
    /// `--start-daemon`.
    StartDaemon,
    /// `--stop-daemon`.
    StopDaemon,
    /// `-L --daemon`.
    ListDaemons,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ResolveFamily => "resolve the IPVS netlink family",
            Self::AddService => "add service",
            Self::EditService => "edit service",
            Self::DeleteService => "delete service",
            Self::GetService => "get service",
            Self::ListServices => "list services",
            Self::AddDest => "add destination",
            Self::EditDest => "edit destination",
            Self::DeleteDest => "delete destination",
            Self::ListDests => "list destinations",
            Self::Flush => "flush",
            Self::Zero => "zero counters",
            Self::SetTimeouts => "set timeouts",
            Self::GetTimeouts => "get timeouts",
            Self::Info => "get info",
            Self::StartDaemon => "start sync daemon",
            Self::StopDaemon => "stop sync daemon",
            Self::ListDaemons => "list sync daemons",
        })
    }
}

/// What a kernel errno means for the operation that got it (ipvsadm's `ipvs_strerror` table).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KernelError {
    /// `EEXIST` on add service.
    ServiceExists,
    /// `ESRCH` on a service operation.
    NoSuchService,
    /// `EEXIST` on add destination.
    DestExists,
    /// `ENOENT` on edit / delete destination.
    NoSuchDest,
    /// `ENOENT` on add / edit service: the scheduler or persistence engine module is missing.
    SchedulerNotFound,
    /// `EEXIST` on start daemon.
    DaemonRunning,
    /// `ESRCH` on stop daemon.
    NoDaemon,
    /// `ENOMEM`.
    Memory,
    /// `EPERM`.
    PermissionDenied,
    /// `EINVAL`.
    Invalid,
    /// `ERANGE`: weight or thresholds out of range.
    OutOfRange,
    /// `EAFNOSUPPORT` / `EOPNOTSUPP`.
    NotSupported,
    /// `EBUSY`: another dump is in progress on the socket.
    Busy,
    /// Any other errno.
    Other,
}

/// Linux errno values (asm-generic/errno-base.h, errno.h).
pub(crate) mod errno {
    pub(crate) const EPERM: i32 = 1;
    pub(crate) const ENOENT: i32 = 2;
    pub(crate) const ESRCH: i32 = 3;
    pub(crate) const ENOMEM: i32 = 12;
    pub(crate) const EBUSY: i32 = 16;
    pub(crate) const EEXIST: i32 = 17;
    pub(crate) const EINVAL: i32 = 22;
    pub(crate) const ERANGE: i32 = 34;
    pub(crate) const EOPNOTSUPP: i32 = 95;
    pub(crate) const EAFNOSUPPORT: i32 = 97;
}

impl KernelError {
    /// Classify `errno` (positive) for `op`.
    #[must_use]
    pub const fn classify(op: Op, errno: i32) -> Self {
        use crate::error::errno as e;
        match (op, errno) {
            (Op::AddService, e::EEXIST) => Self::ServiceExists,
            (Op::AddService | Op::EditService, e::ENOENT) => Self::SchedulerNotFound,
            (
                Op::EditService
                | Op::DeleteService
                | Op::GetService
                | Op::Zero
                | Op::AddDest
                | Op::EditDest
                | Op::DeleteDest
                | Op::ListDests,
                e::ESRCH,
            ) => Self::NoSuchService,
            (Op::AddDest, e::EEXIST) => Self::DestExists,
            (Op::EditDest | Op::DeleteDest, e::ENOENT) => Self::NoSuchDest,
            (Op::StartDaemon, e::EEXIST) => Self::DaemonRunning,
            (Op::StopDaemon, e::ESRCH) => Self::NoDaemon,
            (_, e::ENOMEM) => Self::Memory,
            (_, e::EPERM) => Self::PermissionDenied,
            (_, e::EINVAL) => Self::Invalid,
            (_, e::ERANGE) => Self::OutOfRange,
            (_, e::EOPNOTSUPP | e::EAFNOSUPPORT) => Self::NotSupported,
            (_, e::EBUSY) => Self::Busy,
            _ => Self::Other,
        }
    }

    /// ipvsadm's wording, plus what to do.
    #[must_use]
    pub const fn message(self) -> &'static str {
        match self {
            Self::ServiceExists => "Service already exists (edit it instead, or delete it first)",
            Self::NoSuchService => "No such service (add the service first)",
            Self::DestExists => "Destination already exists (edit it instead)",
            Self::NoSuchDest => "No such destination",
            Self::SchedulerNotFound => {
                "Scheduler or persistence engine not found (modprobe ip_vs_<name> / ip_vs_pe_<name>)"
            }
            Self::DaemonRunning => "Daemon has already run (stop it first)",
            Self::NoDaemon => "No daemon is running",
            Self::Memory => "Memory allocation problem",
            Self::PermissionDenied => "Permission denied (you must be root or have CAP_NET_ADMIN)",
            Self::Invalid => {
                "Invalid operation. Possibly wrong module version, address not unicast, or a forwarding method the service's family does not allow"
            }
            Self::OutOfRange => "Weight or threshold out of range",
            Self::NotSupported => "Operation not supported with this address family",
            Self::Busy => "Device or resource busy (another dump is running on this socket)",
            Self::Other => "Unexpected kernel error",
        }
    }
}

impl fmt::Display for KernelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

/// Everything a [`crate::Client`] operation can fail with.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum IpvsError {
    /// The request was refused before sending.
    #[error("invalid request: {0}")]
    Config(#[from] ConfigError),
    /// The kernel refused the request.
    #[error("{op}: {kind} (errno {errno})")]
    Kernel {
        /// What was attempted.
        op: Op,
        /// The positive errno.
        errno: i32,
        /// Its meaning for `op`.
        kind: KernelError,
    },
    /// The kernel has no "IPVS" generic netlink family.
    #[error(
        "the kernel has no IPVS netlink family: load it with `modprobe ip_vs` (kernel built without CONFIG_IP_VS?)"
    )]
    FamilyNotFound,
    /// A socket call failed.
    #[error("netlink socket error during {op}: {source}")]
    Io {
        /// What was attempted.
        op: Op,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// No reply within the client's timeout ([`crate::Client::set_timeout`]).
    #[error(
        "no reply from the kernel during {op} within the timeout; the request may or may not have been applied: re-read the table"
    )]
    Timeout {
        /// What was attempted.
        op: Op,
    },
    /// A reply did not parse.
    #[error("malformed kernel reply during {op}: {source}")]
    Wire {
        /// What was attempted.
        op: Op,
        /// The parse error.
        #[source]
        source: wire::Error,
    },
    /// A reply parsed but is not what the request calls for.
    #[error("unexpected kernel reply during {op}: {what}")]
    Protocol {
        /// What was attempted.
        op: Op,
        /// What was wrong.
        what: &'static str,
    },
}

impl IpvsError {
    /// A kernel error from a positive errno.
    #[must_use]
    pub const fn kernel(op: Op, errno: i32) -> Self {
        Self::Kernel {
            op,
            errno,
            kind: KernelError::classify(op, errno),
        }
    }
    /// The kernel error kind, if this is one.
    #[must_use]
    pub const fn kernel_kind(&self) -> Option<KernelError> {
        match self {
            Self::Kernel { kind, .. } => Some(*kind),
            _ => None,
        }
    }
}
