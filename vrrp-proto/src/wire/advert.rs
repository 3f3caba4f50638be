//! The VRRP ADVERTISEMENT message: RFC 3768 §5 (v2) and RFC 5798 §5 (v3).
//!
//! ```text
//! v2:  | 2 | 1 | VRID | Priority | Count IP Addrs | Auth Type | Adver Int (s) | Checksum |
//!      | IPv4 address 1 .. n | Authentication Data (8 bytes) |
//! v3:  | 3 | 1 | VRID | Priority | Count IPvX Addr | rsvd(4) Max Adver Int (12, cs) | Checksum |
//!      | IPv4 or IPv6 address 1 .. n |
//! ```

// Accessors index below `HEADER_LEN`, which `new_checked` guarantees; address and auth
// accessors check lengths with `get`.
#![allow(clippy::indexing_slicing)]

use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::checksum;
use super::{Error, InsufficientSize};

/// IP protocol number of VRRP (IANA): 112.
pub const IPPROTO_VRRP: u8 = 112;
/// The VRRP type for ADVERTISEMENT, the only type defined.
pub const ADVERT_TYPE: u8 = 1;
/// The IPv4 multicast group for VRRP: 224.0.0.18.
pub const MULTICAST_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// The IPv6 multicast group for VRRP: ff02::12.
pub const MULTICAST_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);

const HEADER_LEN: usize = 8;
const V2_AUTH_LEN: usize = 8;

mod field {
    pub(super) type Field = core::ops::Range<usize>;
    pub(super) const VERS_TYPE: usize = 0;
    pub(super) const VRID: usize = 1;
    pub(super) const PRIORITY: usize = 2;
    pub(super) const COUNT: usize = 3;
    pub(super) const V2_AUTH_TYPE: usize = 4;
    pub(super) const V2_ADVER_INT: usize = 5;
    pub(super) const V3_MAX_ADVER_INT: Field = 4..6;
    pub(super) const CHECKSUM: Field = 6..8;
    pub(super) const ADDRS: usize = 8;
}

/// The protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// VRRPv2, RFC 3768: IPv4 only, intervals in seconds, optional simple-password auth.
    V2,
    /// VRRPv3, RFC 5798: IPv4 and IPv6, intervals in centiseconds, no auth.
    V3,
}

impl Version {
    /// The version nibble on the wire.
    pub const fn number(self) -> u8 {
        match self {
            Self::V2 => 2,
            Self::V3 => 3,
        }
    }
}

/// The address family an advertisement's address list is in (taken from the IP header).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddrFamily {
    /// 4-byte addresses.
    Ipv4,
    /// 16-byte addresses.
    Ipv6,
}

impl AddrFamily {
    /// The family of `addr`.
    pub const fn of(addr: &IpAddr) -> Self {
        match addr {
            IpAddr::V4(_) => Self::Ipv4,
            IpAddr::V6(_) => Self::Ipv6,
        }
    }

    /// Bytes per address.
    pub const fn addr_len(self) -> usize {
        match self {
            Self::Ipv4 => 4,
            Self::Ipv6 => 16,
        }
    }
}

/// VRRPv2 authentication (RFC 2338 §5.3.6; RFC 3768 keeps the field for compatibility).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Auth {
    /// Type 0: no authentication (the 8 data bytes are zero). Always the case for v3.
    None,
    /// Type 1: a simple password of up to 8 bytes, zero-padded (keepalived `auth_type PASS`).
    Simple([u8; 8]),
}

impl Auth {
    /// The auth type byte on the wire.
    pub const fn type_code(&self) -> u8 {
        match self {
            Self::None => 0,
            Self::Simple(_) => 1,
        }
    }
}

impl fmt::Debug for Auth {
    /// Never prints the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::Simple(_) => f.write_str("Simple(<redacted>)"),
        }
    }
}

/// Which checksum VRRPv3 over IPv4 uses. (IPv6 always includes the pseudo-header; v2 never.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum V3Checksum {
    /// Over the pseudo-header and the message (RFC 5798 §5.2.8; keepalived's default).
    #[default]
    PseudoHeader,
    /// Over the message only, as in v2 (keepalived's `v3_checksum_as_v2`, some vendors).
    MessageOnly,
    /// Receive either form (emit the pseudo-header form): for mixed networks.
    Either,
}

/// What the checksum and address decoding need from the IP header around the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Ctx {
    /// IP source address.
    pub src: IpAddr,
    /// IP destination address (the multicast group, or a unicast peer).
    pub dst: IpAddr,
    /// The VRRPv3-over-IPv4 checksum convention.
    pub v3_checksum: V3Checksum,
}

impl Ctx {
    /// A context with the default (RFC 5798 pseudo-header) checksum convention.
    pub const fn new(src: IpAddr, dst: IpAddr) -> Self {
        Self {
            src,
            dst,
            v3_checksum: V3Checksum::PseudoHeader,
        }
    }

    /// The same context with another VRRPv3 IPv4 checksum convention.
    pub const fn with_v3_checksum(mut self, mode: V3Checksum) -> Self {
        self.v3_checksum = mode;
        self
    }

    /// The family of the IP header, or `AddressFamily` when source and destination disagree.
    pub fn family(&self) -> Result<AddrFamily, Error> {
        let f = AddrFamily::of(&self.src);
        if f == AddrFamily::of(&self.dst) {
            Ok(f)
        } else {
            Err(Error::AddressFamily)
        }
    }
}

/// A validated run of 4- or 16-byte addresses, borrowed from a packet or a caller's buffer.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddrList<'a> {
    family: AddrFamily,
    bytes: &'a [u8],
}

impl<'a> AddrList<'a> {
    /// Addresses of `family` packed back to back; `None` unless the length is a non-zero
    /// multiple of the address size and the count fits in the one-byte count field.
    pub fn new(family: AddrFamily, bytes: &'a [u8]) -> Option<Self> {
        let n = family.addr_len();
        let count = bytes.len() / n;
        (!bytes.is_empty() && bytes.len().is_multiple_of(n) && count <= 255)
            .then_some(Self { family, bytes })
    }

    /// IPv4 addresses packed back to back (see [`AddrList::new`]).
    pub fn new_v4(bytes: &'a [u8]) -> Option<Self> {
        Self::new(AddrFamily::Ipv4, bytes)
    }

    /// IPv6 addresses packed back to back (see [`AddrList::new`]).
    pub fn new_v6(bytes: &'a [u8]) -> Option<Self> {
        Self::new(AddrFamily::Ipv6, bytes)
    }

    /// The family of the addresses.
    pub const fn family(&self) -> AddrFamily {
        self.family
    }

    /// The number of addresses (1 to 255).
    pub const fn len(&self) -> usize {
        self.bytes.len() / self.family.addr_len()
    }

    /// Always false: a list holds at least one address.
    pub const fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The packed bytes.
    pub const fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The addresses in wire order.
    pub fn iter(&self) -> impl Iterator<Item = IpAddr> + 'a {
        let family = self.family;
        self.bytes
            .chunks_exact(family.addr_len())
            .map(move |c| match family {
                AddrFamily::Ipv4 => IpAddr::V4(Ipv4Addr::new(c[0], c[1], c[2], c[3])),
                AddrFamily::Ipv6 => {
                    let mut o = [0u8; 16];
                    o.copy_from_slice(c);
                    IpAddr::V6(Ipv6Addr::from(o))
                }
            })
    }
}

impl fmt::Debug for AddrList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// A zero-copy view of a VRRP message. See the [module docs](super) for the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking it; accessors may then panic on a short buffer.
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps a buffer after [`Packet::check_len`].
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Ensures the 8-byte fixed header is present, so no header accessor panics.
    pub fn check_len(&self) -> Result<(), Error> {
        let got = self.buffer.as_ref().len();
        if got < HEADER_LEN {
            return Err(Error::Truncated {
                needed: HEADER_LEN,
                got,
            });
        }
        Ok(())
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The version nibble (2 or 3 when valid).
    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VERS_TYPE] >> 4
    }

    /// The type nibble (1 = ADVERTISEMENT).
    #[inline]
    pub fn kind(&self) -> u8 {
        self.buffer.as_ref()[field::VERS_TYPE] & 0x0f
    }

    /// The virtual router identifier.
    #[inline]
    pub fn vrid(&self) -> u8 {
        self.buffer.as_ref()[field::VRID]
    }

    /// The sender's priority (0 = the master is leaving, 255 = address owner).
    #[inline]
    pub fn priority(&self) -> u8 {
        self.buffer.as_ref()[field::PRIORITY]
    }

    /// The address count.
    #[inline]
    pub fn addr_count(&self) -> u8 {
        self.buffer.as_ref()[field::COUNT]
    }

    /// The v2 authentication type (byte 4; in v3 this is the high byte of the interval).
    #[inline]
    pub fn v2_auth_type(&self) -> u8 {
        self.buffer.as_ref()[field::V2_AUTH_TYPE]
    }

    /// The v2 advertisement interval in seconds.
    #[inline]
    pub fn v2_adver_int(&self) -> u8 {
        self.buffer.as_ref()[field::V2_ADVER_INT]
    }

    /// The v3 Max Adver Int in centiseconds (the 4 reserved bits masked off).
    #[inline]
    pub fn v3_max_adver_int(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::V3_MAX_ADVER_INT];
        u16::from_be_bytes([b[0], b[1]]) & 0x0fff
    }

    /// The stored checksum.
    #[inline]
    pub fn checksum(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::CHECKSUM];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// The whole message.
    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// The checksum this message should carry in the given convention (the stored field is
    /// counted as zero).
    pub fn compute_checksum(&self, ctx: &Ctx, pseudo: bool) -> Result<u16, Error> {
        let data = self.buffer.as_ref();
        let mut acc = checksum::sum(&data[..field::CHECKSUM.start], 0);
        acc = checksum::sum(&data[field::CHECKSUM.end..], acc);
        if pseudo {
            let len = u32::try_from(data.len()).map_err(|_| Error::Length {
                expected: 0,
                got: data.len(),
            })?;
            acc += checksum::pseudo_header_sum(ctx.src, ctx.dst, IPPROTO_VRRP, len)
                .ok_or(Error::AddressFamily)?;
        }
        Ok(checksum::finish(acc))
    }

    /// Checks the stored checksum against the version's and family's convention.
    ///
    /// Always succeeds under `cfg(fuzzing)`, so a fuzzer reaches the code behind it.
    pub fn verify_checksum(&self, ctx: &Ctx) -> Result<(), Error> {
        let stored = self.checksum();
        let pseudo_first = match (self.version(), ctx.family()?) {
            (2, _) => false,
            (_, AddrFamily::Ipv6) => true,
            _ => ctx.v3_checksum != V3Checksum::MessageOnly,
        };
        let computed = self.compute_checksum(ctx, pseudo_first)?;
        if cfg!(fuzzing) || computed == stored {
            return Ok(());
        }
        if self.version() == 3
            && ctx.v3_checksum == V3Checksum::Either
            && ctx.family()? == AddrFamily::Ipv4
            && self.compute_checksum(ctx, false)? == stored
        {
            return Ok(());
        }
        Err(Error::Checksum { stored, computed })
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Writes the checksum field for the message as it stands.
    pub fn fill_checksum(&mut self, ctx: &Ctx) -> Result<(), Error> {
        let pseudo = match (self.version(), ctx.family()?) {
            (2, _) => false,
            (_, AddrFamily::Ipv6) => true,
            _ => ctx.v3_checksum != V3Checksum::MessageOnly,
        };
        let c = self.compute_checksum(ctx, pseudo)?;
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
        Ok(())
    }
}

/// A valid VRRP advertisement. Its fields are those of the RFCs, so the struct is exhaustive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr<'a> {
    /// Protocol version.
    pub version: Version,
    /// Virtual router identifier (1..=255 when valid; 0 is carried so it can be counted).
    pub vrid: u8,
    /// Sender priority.
    pub priority: u8,
    /// The advertisement interval in centiseconds. For v2 it is the seconds field × 100.
    pub adver_int: u16,
    /// The virtual addresses.
    pub addrs: AddrList<'a>,
    /// v2 authentication ([`Auth::None`] for v3).
    pub auth: Auth,
}

impl<'a> Repr<'a> {
    /// The expected message length for `version` with `count` addresses of `family`.
    pub const fn message_len(version: Version, family: AddrFamily, count: usize) -> usize {
        let auth = match version {
            Version::V2 => V2_AUTH_LEN,
            Version::V3 => 0,
        };
        HEADER_LEN + count * family.addr_len() + auth
    }

    /// Parses and validates a message received with the IP header context `ctx`: version,
    /// type, length against the address count, checksum, and (v2) auth type.
    ///
    /// It does not check what depends on configuration (VRID, TTL, interval, password,
    /// address list): [`crate::VirtualRouter::handle_packet`] does.
    pub fn parse(packet: &Packet<&'a [u8]>, ctx: &Ctx) -> Result<Self, Error> {
        packet.check_len()?;
        let data: &'a [u8] = packet.buffer;
        let version = match packet.version() {
            2 => Version::V2,
            3 => Version::V3,
            v => return Err(Error::Version(v)),
        };
        if packet.kind() != ADVERT_TYPE {
            return Err(Error::Kind(packet.kind()));
        }
        let family = ctx.family()?;
        if version == Version::V2 && family != AddrFamily::Ipv4 {
            return Err(Error::AddressFamily);
        }
        let count = usize::from(packet.addr_count());
        let expected = Self::message_len(version, family, count);
        if data.len() < expected {
            return Err(Error::Truncated {
                needed: expected,
                got: data.len(),
            });
        }
        if data.len() > expected {
            return Err(Error::Length {
                expected,
                got: data.len(),
            });
        }
        packet.verify_checksum(ctx)?;
        if count == 0 {
            return Err(Error::NoAddress);
        }
        let addr_end = field::ADDRS + count * family.addr_len();
        let addr_bytes = data.get(field::ADDRS..addr_end).ok_or(Error::Truncated {
            needed: expected,
            got: data.len(),
        })?;
        let addrs = AddrList::new(family, addr_bytes).ok_or(Error::NoAddress)?;
        let (adver_int, auth) = match version {
            Version::V2 => {
                let auth = match packet.v2_auth_type() {
                    0 => Auth::None,
                    1 => {
                        let mut pw = [0u8; V2_AUTH_LEN];
                        let src =
                            data.get(addr_end..addr_end + V2_AUTH_LEN)
                                .ok_or(Error::Truncated {
                                    needed: expected,
                                    got: data.len(),
                                })?;
                        pw.copy_from_slice(src);
                        Auth::Simple(pw)
                    }
                    2 => return Err(Error::IpAhAuth),
                    t => return Err(Error::AuthType(t)),
                };
                (u16::from(packet.v2_adver_int()) * 100, auth)
            }
            Version::V3 => (packet.v3_max_adver_int(), Auth::None),
        };
        Ok(Self {
            version,
            vrid: packet.vrid(),
            priority: packet.priority(),
            adver_int,
            addrs,
            auth,
        })
    }

    /// The length [`Repr::emit`] writes.
    pub const fn buffer_len(&self) -> usize {
        Self::message_len(self.version, self.addrs.family(), self.addrs.len())
    }

    /// Writes the message, checksum included, into the front of `buf`; returns its length.
    ///
    /// For v2 the interval is written in whole seconds (`adver_int / 100`, at most 255) and the
    /// auth type and data from `auth`; for v3 the interval clamped to 12 bits (at most 4095 cs) and no auth. On
    /// [`InsufficientSize`] nothing is written.
    pub fn emit(&self, buf: &mut [u8], ctx: &Ctx) -> Result<usize, InsufficientSize> {
        let len = self.buffer_len();
        let out = buf
            .get_mut(..len)
            .ok_or(InsufficientSize { required: len })?;
        out[field::VERS_TYPE] = (self.version.number() << 4) | ADVERT_TYPE;
        out[field::VRID] = self.vrid;
        out[field::PRIORITY] = self.priority;
        // `AddrList` holds at most 255 addresses.
        out[field::COUNT] = u8::try_from(self.addrs.len()).unwrap_or(u8::MAX);
        match self.version {
            Version::V2 => {
                out[field::V2_AUTH_TYPE] = self.auth.type_code();
                out[field::V2_ADVER_INT] = u8::try_from(self.adver_int / 100).unwrap_or(u8::MAX);
            }
            Version::V3 => {
                out[field::V3_MAX_ADVER_INT]
                    .copy_from_slice(&self.adver_int.min(0x0fff).to_be_bytes());
            }
        }
        out[field::CHECKSUM].fill(0);
        let addr_end = field::ADDRS + self.addrs.as_bytes().len();
        out[field::ADDRS..addr_end].copy_from_slice(self.addrs.as_bytes());
        if self.version == Version::V2 {
            let auth = &mut out[addr_end..addr_end + V2_AUTH_LEN];
            match &self.auth {
                Auth::None => auth.fill(0),
                Auth::Simple(pw) => auth.copy_from_slice(pw),
            }
        }
        let mut p = Packet::new_unchecked(&mut *out);
        // The family check cannot fail for a consistent `ctx`; an inconsistent one leaves a
        // zero checksum, which every receiver refuses.
        let _ = p.fill_checksum(ctx);
        Ok(len)
    }
}

impl<T: AsRef<[u8]>> fmt::Display for Packet<T> {
    /// A one-line summary in tcpdump's style.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.check_len().is_err() {
            return f.write_str("VRRP (truncated)");
        }
        write!(
            f,
            "VRRPv{}, type {}, vrid {}, prio {}, count {}, checksum {:#06x}, length {}",
            self.version(),
            self.kind(),
            self.vrid(),
            self.priority(),
            self.addr_count(),
            self.checksum(),
            self.buffer.as_ref().len()
        )
    }
}
