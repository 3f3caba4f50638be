//! `IPVS_CMD_*`: the 17 commands of the IPVS generic netlink family.

use super::consts as c;

/// An IPVS generic netlink command (`IPVS_CMD_*`). Unknown numbers survive as `Other`.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpvsCmd {
    /// `IPVS_CMD_NEW_SERVICE`: add a service (`ipvsadm -A`); also the command of service replies.
    NewService,
    /// `IPVS_CMD_SET_SERVICE`: edit a service (`ipvsadm -E`).
    SetService,
    /// `IPVS_CMD_DEL_SERVICE`: delete a service (`ipvsadm -D`).
    DelService,
    /// `IPVS_CMD_GET_SERVICE`: get one service, or dump all (`ipvsadm -L`).
    GetService,
    /// `IPVS_CMD_NEW_DEST`: add a destination (`ipvsadm -a`); also the command of dest replies.
    NewDest,
    /// `IPVS_CMD_SET_DEST`: edit a destination (`ipvsadm -e`).
    SetDest,
    /// `IPVS_CMD_DEL_DEST`: delete a destination (`ipvsadm -d`).
    DelDest,
    /// `IPVS_CMD_GET_DEST`: dump the destinations of one service.
    GetDest,
    /// `IPVS_CMD_NEW_DAEMON`: start a sync daemon (`--start-daemon`); also daemon replies.
    NewDaemon,
    /// `IPVS_CMD_DEL_DAEMON`: stop a sync daemon (`--stop-daemon`).
    DelDaemon,
    /// `IPVS_CMD_GET_DAEMON`: dump the sync daemons (`-L --daemon`).
    GetDaemon,
    /// `IPVS_CMD_SET_CONFIG`: set timeouts (`--set`); also the GET_CONFIG reply.
    SetConfig,
    /// `IPVS_CMD_GET_CONFIG`: get timeouts (`-L --timeout`).
    GetConfig,
    /// `IPVS_CMD_SET_INFO`: only used in the GET_INFO reply.
    SetInfo,
    /// `IPVS_CMD_GET_INFO`: version and connection table size.
    GetInfo,
    /// `IPVS_CMD_ZERO`: zero counters (`ipvsadm -Z`).
    Zero,
    /// `IPVS_CMD_FLUSH`: delete every service (`ipvsadm -C`).
    Flush,
    /// A command number this crate does not know (including `IPVS_CMD_UNSPEC`).
    Other(u8),
}

impl From<IpvsCmd> for u8 {
    fn from(cmd: IpvsCmd) -> Self {
        match cmd {
            IpvsCmd::NewService => c::IPVS_CMD_NEW_SERVICE,
            IpvsCmd::SetService => c::IPVS_CMD_SET_SERVICE,
            IpvsCmd::DelService => c::IPVS_CMD_DEL_SERVICE,
            IpvsCmd::GetService => c::IPVS_CMD_GET_SERVICE,
            IpvsCmd::NewDest => c::IPVS_CMD_NEW_DEST,
            IpvsCmd::SetDest => c::IPVS_CMD_SET_DEST,
            IpvsCmd::DelDest => c::IPVS_CMD_DEL_DEST,
            IpvsCmd::GetDest => c::IPVS_CMD_GET_DEST,
            IpvsCmd::NewDaemon => c::IPVS_CMD_NEW_DAEMON,
            IpvsCmd::DelDaemon => c::IPVS_CMD_DEL_DAEMON,
            IpvsCmd::GetDaemon => c::IPVS_CMD_GET_DAEMON,
            IpvsCmd::SetConfig => c::IPVS_CMD_SET_CONFIG,
            IpvsCmd::GetConfig => c::IPVS_CMD_GET_CONFIG,
            IpvsCmd::SetInfo => c::IPVS_CMD_SET_INFO,
            IpvsCmd::GetInfo => c::IPVS_CMD_GET_INFO,
            IpvsCmd::Zero => c::IPVS_CMD_ZERO,
            IpvsCmd::Flush => c::IPVS_CMD_FLUSH,
            IpvsCmd::Other(n) => n,
        }
    }
}

impl From<u8> for IpvsCmd {
    fn from(n: u8) -> Self {
        match n {
            c::IPVS_CMD_NEW_SERVICE => Self::NewService,
            c::IPVS_CMD_SET_SERVICE => Self::SetService,
            c::IPVS_CMD_DEL_SERVICE => Self::DelService,
            c::IPVS_CMD_GET_SERVICE => Self::GetService,
            c::IPVS_CMD_NEW_DEST => Self::NewDest,
            c::IPVS_CMD_SET_DEST => Self::SetDest,
            c::IPVS_CMD_DEL_DEST => Self::DelDest,
            c::IPVS_CMD_GET_DEST => Self::GetDest,
            c::IPVS_CMD_NEW_DAEMON => Self::NewDaemon,
            c::IPVS_CMD_DEL_DAEMON => Self::DelDaemon,
            c::IPVS_CMD_GET_DAEMON => Self::GetDaemon,
            c::IPVS_CMD_SET_CONFIG => Self::SetConfig,
            c::IPVS_CMD_GET_CONFIG => Self::GetConfig,
            c::IPVS_CMD_SET_INFO => Self::SetInfo,
            c::IPVS_CMD_GET_INFO => Self::GetInfo,
            c::IPVS_CMD_ZERO => Self::Zero,
            c::IPVS_CMD_FLUSH => Self::Flush,
            other => Self::Other(other),
        }
    }
}

impl IpvsCmd {
    /// Whether the first-level attributes of this command are `IPVS_INFO_ATTR_*`
    /// (the GET_INFO reply) rather than `IPVS_CMD_ATTR_*`.
    #[must_use]
    pub const fn has_info_attrs(self) -> bool {
        matches!(self, Self::SetInfo | Self::GetInfo)
    }
}
