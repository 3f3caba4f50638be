//! Global IPVS settings and facts: connection [`Timeouts`] and the version and table size
//! ([`Info`]).

use crate::wire::CmdAttr;

/// Connection timeouts in seconds (`ipvsadm --set tcp tcpfin udp`); 0 leaves one unchanged.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Timeouts {
    /// TCP established.
    pub tcp: u32,
    /// TCP after FIN.
    pub tcp_fin: u32,
    /// UDP.
    pub udp: u32,
}

impl Timeouts {
    /// The three timeouts.
    #[must_use]
    pub const fn new(tcp: u32, tcp_fin: u32, udp: u32) -> Self {
        Self { tcp, tcp_fin, udp }
    }
    /// The `IPVS_CMD_ATTR_TIMEOUT_*` attributes of a SET_CONFIG request.
    #[must_use]
    pub fn attrs(self) -> Vec<CmdAttr> {
        vec![
            CmdAttr::TimeoutTcp(self.tcp),
            CmdAttr::TimeoutTcpFin(self.tcp_fin),
            CmdAttr::TimeoutUdp(self.udp),
        ]
    }
    /// Read a GET_CONFIG reply's attributes (absent ones stay 0).
    #[must_use]
    pub fn from_attrs(attrs: &[CmdAttr]) -> Self {
        let mut t = Self::default();
        for a in attrs {
            match a {
                CmdAttr::TimeoutTcp(v) => t.tcp = *v,
                CmdAttr::TimeoutTcpFin(v) => t.tcp_fin = *v,
                CmdAttr::TimeoutUdp(v) => t.udp = *v,
                _ => {}
            }
        }
        t
    }
}

/// `IPVS_CMD_GET_INFO`: version and connection table size.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Info {
    /// `0x00MMmmpp`, e.g. `0x010201` for 1.2.1.
    pub version: u32,
    /// Size of the connection hash table.
    pub conn_tab_size: u32,
}

impl Info {
    /// `(major, minor, patch)`.
    #[must_use]
    pub const fn version_triple(&self) -> (u8, u8, u8) {
        let [_, a, b, c] = self.version.to_be_bytes();
        (a, b, c)
    }
    /// Read a GET_INFO reply's attributes (absent ones stay 0).
    #[must_use]
    pub fn from_attrs(attrs: &[CmdAttr]) -> Self {
        let mut i = Self::default();
        for a in attrs {
            match a {
                CmdAttr::InfoVersion(v) => i.version = *v,
                CmdAttr::InfoConnTabSize(v) => i.conn_tab_size = *v,
                _ => {}
            }
        }
        i
    }
}
