//! The connection-synchronisation daemon: its role ([`DaemonState`]) and configuration
//! ([`SyncDaemon`]).

use std::net::IpAddr;

use super::ConfigError;
use crate::wire::DaemonAttr;
use crate::wire::consts as c;

/// Sync daemon role.
#[expect(
    clippy::exhaustive_enums,
    reason = "the kernel has exactly these two roles"
)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DaemonState {
    /// `IP_VS_STATE_MASTER` (`--start-daemon master`).
    Master,
    /// `IP_VS_STATE_BACKUP`.
    Backup,
}

impl DaemonState {
    /// The `IP_VS_STATE_*` value.
    #[must_use]
    pub const fn bits(self) -> u32 {
        match self {
            Self::Master => c::IP_VS_STATE_MASTER,
            Self::Backup => c::IP_VS_STATE_BACKUP,
        }
    }
}

/// A connection-synchronisation daemon (`--start-daemon`).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SyncDaemon {
    /// Master or backup.
    pub state: DaemonState,
    /// Multicast interface (`--mcast-interface`).
    pub mcast_ifn: String,
    /// `--syncid`.
    pub syncid: u32,
    /// `--sync-maxlen` (the kernel picks one when `None`).
    pub sync_maxlen: Option<u16>,
    /// `--mcast-group`.
    pub mcast_group: Option<IpAddr>,
    /// `--mcast-port`.
    pub mcast_port: Option<u16>,
    /// `--mcast-ttl`.
    pub mcast_ttl: Option<u8>,
}

impl SyncDaemon {
    /// A daemon on `ifname` with `syncid`; interface names are 1 to 15 bytes.
    pub fn new(state: DaemonState, ifname: &str, syncid: u32) -> Result<Self, ConfigError> {
        if ifname.is_empty() || ifname.len() >= c::IP_VS_IFNAME_MAXLEN || ifname.contains('\0') {
            return Err(ConfigError::InvalidName {
                field: "mcast interface",
                name: ifname.to_owned(),
            });
        }
        Ok(Self {
            state,
            mcast_ifn: ifname.to_owned(),
            syncid,
            sync_maxlen: None,
            mcast_group: None,
            mcast_port: None,
            mcast_ttl: None,
        })
    }
    /// The attributes of a NEW_DAEMON request.
    #[must_use]
    pub fn attrs(&self) -> Vec<DaemonAttr> {
        let mut a = vec![
            DaemonAttr::State(self.state.bits()),
            DaemonAttr::McastIfn(self.mcast_ifn.clone()),
            DaemonAttr::SyncId(self.syncid),
        ];
        if let Some(v) = self.sync_maxlen {
            a.push(DaemonAttr::SyncMaxlen(v));
        }
        match self.mcast_group {
            Some(IpAddr::V4(g)) => a.push(DaemonAttr::McastGroup(g)),
            Some(IpAddr::V6(g)) => a.push(DaemonAttr::McastGroup6(g)),
            None => {}
        }
        if let Some(v) = self.mcast_port {
            a.push(DaemonAttr::McastPort(v));
        }
        if let Some(v) = self.mcast_ttl {
            a.push(DaemonAttr::McastTtl(v));
        }
        a
    }
    /// Read a GET_DAEMON reply entry.
    pub fn from_attrs(attrs: &[DaemonAttr]) -> Result<Self, ConfigError> {
        let mut d = Self {
            state: DaemonState::Master,
            mcast_ifn: String::new(),
            syncid: 0,
            sync_maxlen: None,
            mcast_group: None,
            mcast_port: None,
            mcast_ttl: None,
        };
        for a in attrs {
            match a {
                DaemonAttr::State(s) => {
                    d.state = match *s {
                        c::IP_VS_STATE_MASTER => DaemonState::Master,
                        c::IP_VS_STATE_BACKUP => DaemonState::Backup,
                        other => {
                            return Err(ConfigError::Unexpected {
                                field: "IPVS_DAEMON_ATTR_STATE",
                                value: other,
                            });
                        }
                    }
                }
                DaemonAttr::McastIfn(s) => d.mcast_ifn.clone_from(s),
                DaemonAttr::SyncId(v) => d.syncid = *v,
                DaemonAttr::SyncMaxlen(v) => d.sync_maxlen = Some(*v),
                DaemonAttr::McastGroup(g) => d.mcast_group = Some(IpAddr::V4(*g)),
                DaemonAttr::McastGroup6(g) => d.mcast_group = Some(IpAddr::V6(*g)),
                DaemonAttr::McastPort(v) => d.mcast_port = Some(*v),
                DaemonAttr::McastTtl(v) => d.mcast_ttl = Some(*v),
                _ => {}
            }
        }
        Ok(d)
    }
}
