//! `IpvsMessage`: the generic-netlink payload of the IPVS family (genl header + attributes).

use super::consts as c;
use super::nla::{Writer, parse_all};
use super::{
    DaemonAttr, DestAttr, Error, GENL_HEADER_LEN, IpvsCmd, RawNla, ServiceAttr, emit_into, get_u32,
};

/// A first-level attribute of an IPVS message.
///
/// For [`IpvsCmd::GetInfo`] / [`IpvsCmd::SetInfo`] the first level carries
/// `IPVS_INFO_ATTR_*` instead, parsed as [`CmdAttr::InfoVersion`] and
/// [`CmdAttr::InfoConnTabSize`] (their numbers overlap with `SERVICE` and `DEST`).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CmdAttr {
    /// `IPVS_CMD_ATTR_SERVICE` (nested).
    Service(Vec<ServiceAttr>),
    /// `IPVS_CMD_ATTR_DEST` (nested).
    Dest(Vec<DestAttr>),
    /// `IPVS_CMD_ATTR_DAEMON` (nested).
    Daemon(Vec<DaemonAttr>),
    /// `IPVS_CMD_ATTR_TIMEOUT_TCP` (u32 seconds).
    TimeoutTcp(u32),
    /// `IPVS_CMD_ATTR_TIMEOUT_TCP_FIN` (u32 seconds).
    TimeoutTcpFin(u32),
    /// `IPVS_CMD_ATTR_TIMEOUT_UDP` (u32 seconds).
    TimeoutUdp(u32),
    /// `IPVS_INFO_ATTR_VERSION` (u32, `0x00MMmmpp`), in GET_INFO replies.
    InfoVersion(u32),
    /// `IPVS_INFO_ATTR_CONN_TAB_SIZE` (u32), in GET_INFO replies.
    InfoConnTabSize(u32),
    /// An attribute this crate does not know.
    Other(RawNla),
}

/// An IPVS generic netlink message: command, family version, attributes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IpvsMessage {
    /// The command (`genlmsghdr.cmd`).
    pub cmd: IpvsCmd,
    /// The family version (`genlmsghdr.version`, [`c::IPVS_GENL_VERSION`] = 1).
    pub version: u8,
    /// The first-level attributes, in wire order.
    pub attrs: Vec<CmdAttr>,
}

impl IpvsMessage {
    /// A message of version [`c::IPVS_GENL_VERSION`].
    #[must_use]
    pub const fn new(cmd: IpvsCmd, attrs: Vec<CmdAttr>) -> Self {
        Self {
            cmd,
            version: c::IPVS_GENL_VERSION,
            attrs,
        }
    }

    /// Parse a generic netlink payload (the 4-byte `genlmsghdr` and the attributes) as IPVS.
    ///
    /// The `reserved` field of the genl header is ignored. Errors name the field that was wrong.
    pub fn parse(buf: &[u8]) -> Result<Self, Error> {
        let (Some(&cmd), Some(&version), Some(rest)) =
            (buf.first(), buf.get(1), buf.get(GENL_HEADER_LEN..))
        else {
            return Err(Error::Truncated {
                what: "genl header",
                needed: GENL_HEADER_LEN,
                got: buf.len(),
            });
        };
        Self::parse_attrs(IpvsCmd::from(cmd), version, rest)
    }

    /// Parse the attributes following a genl header whose fields are already known.
    pub fn parse_attrs(cmd: IpvsCmd, version: u8, buf: &[u8]) -> Result<Self, Error> {
        let info = cmd.has_info_attrs();
        let attrs = parse_all(buf, |kind, full, v| {
            Ok(match (info, kind) {
                (true, c::IPVS_INFO_ATTR_VERSION) => {
                    CmdAttr::InfoVersion(get_u32("IPVS_INFO_ATTR_VERSION", v)?)
                }
                (true, c::IPVS_INFO_ATTR_CONN_TAB_SIZE) => {
                    CmdAttr::InfoConnTabSize(get_u32("IPVS_INFO_ATTR_CONN_TAB_SIZE", v)?)
                }
                (false, c::IPVS_CMD_ATTR_SERVICE) => CmdAttr::Service(ServiceAttr::parse_all(v)?),
                (false, c::IPVS_CMD_ATTR_DEST) => CmdAttr::Dest(DestAttr::parse_all(v)?),
                (false, c::IPVS_CMD_ATTR_DAEMON) => CmdAttr::Daemon(DaemonAttr::parse_all(v)?),
                (false, c::IPVS_CMD_ATTR_TIMEOUT_TCP) => {
                    CmdAttr::TimeoutTcp(get_u32("IPVS_CMD_ATTR_TIMEOUT_TCP", v)?)
                }
                (false, c::IPVS_CMD_ATTR_TIMEOUT_TCP_FIN) => {
                    CmdAttr::TimeoutTcpFin(get_u32("IPVS_CMD_ATTR_TIMEOUT_TCP_FIN", v)?)
                }
                (false, c::IPVS_CMD_ATTR_TIMEOUT_UDP) => {
                    CmdAttr::TimeoutUdp(get_u32("IPVS_CMD_ATTR_TIMEOUT_UDP", v)?)
                }
                _ => CmdAttr::Other(RawNla {
                    kind: full,
                    value: v.to_vec(),
                }),
            })
        })?;
        Ok(Self {
            cmd,
            version,
            attrs,
        })
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        w.buf.push(u8::from(self.cmd));
        w.buf.push(self.version);
        w.buf.extend_from_slice(&[0, 0]);
        for a in &self.attrs {
            match a {
                CmdAttr::Service(s) => {
                    let at = w.start_nest(c::IPVS_CMD_ATTR_SERVICE);
                    ServiceAttr::emit_all(s, w);
                    w.finish_nest(at);
                }
                CmdAttr::Dest(d) => {
                    let at = w.start_nest(c::IPVS_CMD_ATTR_DEST);
                    DestAttr::emit_all(d, w);
                    w.finish_nest(at);
                }
                CmdAttr::Daemon(d) => {
                    let at = w.start_nest(c::IPVS_CMD_ATTR_DAEMON);
                    DaemonAttr::emit_all(d, w);
                    w.finish_nest(at);
                }
                CmdAttr::TimeoutTcp(v) => w.u32(c::IPVS_CMD_ATTR_TIMEOUT_TCP, *v),
                CmdAttr::TimeoutTcpFin(v) => w.u32(c::IPVS_CMD_ATTR_TIMEOUT_TCP_FIN, *v),
                CmdAttr::TimeoutUdp(v) => w.u32(c::IPVS_CMD_ATTR_TIMEOUT_UDP, *v),
                CmdAttr::InfoVersion(v) => w.u32(c::IPVS_INFO_ATTR_VERSION, *v),
                CmdAttr::InfoConnTabSize(v) => w.u32(c::IPVS_INFO_ATTR_CONN_TAB_SIZE, *v),
                CmdAttr::Other(raw) => w.raw(raw),
            }
        }
    }

    /// Append the encoded message (genl header + attributes) to `out`.
    ///
    /// Fails with [`Error::TooLarge`] if an attribute exceeds the 64 KiB `nla_len` limit;
    /// `out` is then left as it was.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        let start = out.len();
        let mut w = Writer {
            buf: core::mem::take(out),
            overflow: false,
        };
        self.write(&mut w);
        *out = w.buf;
        if w.overflow {
            let len = out.len().saturating_sub(start);
            out.truncate(start);
            return Err(Error::TooLarge {
                what: "attribute",
                len,
            });
        }
        Ok(())
    }

    /// The encoded message as a new vector.
    ///
    /// An attribute over 64 KiB cannot be encoded; its length field is then written as 0, so
    /// use [`IpvsMessage::encode_into`] when the attributes come from untrusted input.
    #[must_use]
    pub fn to_vec(&self) -> Vec<u8> {
        let mut w = Writer::default();
        self.write(&mut w);
        w.buf
    }

    /// Bytes [`IpvsMessage::emit`] will write.
    #[must_use]
    pub fn buffer_len(&self) -> usize {
        self.to_vec().len()
    }

    /// Write the encoded message into `buf`, returning the bytes written.
    ///
    /// Fails with [`Error::InsufficientSize`] (writing nothing) if `buf` is too short.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let mut v = Vec::new();
        self.encode_into(&mut v)?;
        emit_into(&v, buf)
    }
}
