//! Validated service options: scheduler and persistence-engine [`Name`]s, [`ServiceFlags`]
//! and the persistence [`Netmask`].

use std::fmt;
use std::net::Ipv4Addr;

use super::{ConfigError, Family};
use crate::wire::consts as c;

/// A scheduler or persistence-engine name: 1 to 15 bytes of `[a-z0-9_]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Name(pub(super) String);

impl Name {
    fn new(field: &'static str, name: &str) -> Result<Self, ConfigError> {
        let ok = !name.is_empty()
            && name.len() < c::IP_VS_SCHEDNAME_MAXLEN
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if ok {
            Ok(Self(name.to_owned()))
        } else {
            Err(ConfigError::InvalidName {
                field,
                name: name.to_owned(),
            })
        }
    }
    /// A scheduler name (`-s`), e.g. `"wlc"`.
    pub fn scheduler(name: &str) -> Result<Self, ConfigError> {
        Self::new("scheduler", name)
    }
    /// A persistence engine name (`--pe`), e.g. `"sip"`.
    pub fn persistence_engine(name: &str) -> Result<Self, ConfigError> {
        Self::new("persistence engine", name)
    }
    /// The name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Service flags the user controls (`IP_VS_SVC_F_*` without `HASHED`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct ServiceFlags(u32);

impl ServiceFlags {
    /// `IP_VS_SVC_F_PERSISTENT` (set by `-p`).
    pub const PERSISTENT: Self = Self(c::IP_VS_SVC_F_PERSISTENT);
    /// `IP_VS_SVC_F_ONEPACKET` (`-o`).
    pub const ONE_PACKET: Self = Self(c::IP_VS_SVC_F_ONEPACKET);
    /// `IP_VS_SVC_F_SCHED1` (`-b flag-1`).
    pub const SCHED1: Self = Self(c::IP_VS_SVC_F_SCHED1);
    /// `IP_VS_SVC_F_SCHED2` (`-b flag-2`).
    pub const SCHED2: Self = Self(c::IP_VS_SVC_F_SCHED2);
    /// `IP_VS_SVC_F_SCHED3` (`-b flag-3`).
    pub const SCHED3: Self = Self(c::IP_VS_SVC_F_SCHED3);
    /// `sh-fallback` (= `SCHED1`).
    pub const SH_FALLBACK: Self = Self(c::IP_VS_SVC_F_SCHED_SH_FALLBACK);
    /// `sh-port` (= `SCHED2`).
    pub const SH_PORT: Self = Self(c::IP_VS_SVC_F_SCHED_SH_PORT);
    /// `mh-fallback` (= `SCHED1`).
    pub const MH_FALLBACK: Self = Self(c::IP_VS_SVC_F_SCHED_MH_FALLBACK);
    /// `mh-port` (= `SCHED2`).
    pub const MH_PORT: Self = Self(c::IP_VS_SVC_F_SCHED_MH_PORT);
    /// The flags the user can set.
    const USER_MASK: u32 = !c::IP_VS_SVC_F_HASHED;

    /// No flags.
    #[must_use]
    pub const fn empty() -> Self {
        Self(0)
    }
    /// From raw bits; the kernel-internal `HASHED` bit is dropped.
    #[must_use]
    pub const fn from_bits(bits: u32) -> Self {
        Self(bits & Self::USER_MASK)
    }
    /// The raw bits.
    #[must_use]
    pub const fn bits(self) -> u32 {
        self.0
    }
    /// Whether all bits of `other` are set.
    #[must_use]
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }
}

impl core::ops::BitOr for ServiceFlags {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

/// Persistence granularity (`-M`): an IPv4 mask or an IPv6 prefix length.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Netmask {
    /// A contiguous IPv4 mask (sent as a big-endian `u32`).
    V4(Ipv4Addr),
    /// An IPv6 prefix length 1..=128 (sent as a `u32`).
    V6(u8),
}

impl Netmask {
    /// An IPv4 mask; must be contiguous (`255.255.255.0`, not `255.0.255.0`).
    pub fn v4(mask: Ipv4Addr) -> Result<Self, ConfigError> {
        let bits = u32::from(mask);
        if bits.leading_ones() + bits.trailing_zeros() == 32 {
            Ok(Self::V4(mask))
        } else {
            Err(ConfigError::BadNetmask {
                value: mask.to_string(),
            })
        }
    }
    /// An IPv6 prefix length, 1..=128.
    pub fn v6(prefix: u8) -> Result<Self, ConfigError> {
        if (1..=128).contains(&prefix) {
            Ok(Self::V6(prefix))
        } else {
            Err(ConfigError::BadNetmask {
                value: format!("/{prefix}"),
            })
        }
    }
    /// The full mask of a family (what the kernel stores when none is given).
    #[must_use]
    pub const fn full(family: Family) -> Self {
        match family {
            Family::V4 => Self::V4(Ipv4Addr::BROADCAST),
            Family::V6 => Self::V6(128),
        }
    }
    pub(super) fn family(self) -> Family {
        match self {
            Self::V4(_) => Family::V4,
            Self::V6(_) => Family::V6,
        }
    }
    /// The `IPVS_SVC_ATTR_NETMASK` value (read/written native-endian).
    #[must_use]
    pub fn raw(self) -> u32 {
        match self {
            Self::V4(m) => u32::from_ne_bytes(m.octets()),
            Self::V6(p) => u32::from(p),
        }
    }
    pub(super) fn from_raw(family: Family, raw: u32) -> Result<Self, ConfigError> {
        match family {
            Family::V4 => Ok(Self::V4(Ipv4Addr::from(raw.to_ne_bytes()))),
            Family::V6 => u8::try_from(raw)
                .map(Self::V6)
                .map_err(|_| ConfigError::Unexpected {
                    field: "IPVS_SVC_ATTR_NETMASK",
                    value: raw,
                }),
        }
    }
}

impl fmt::Display for Netmask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::V4(m) => write!(f, "{m}"),
            Self::V6(p) => write!(f, "{p}"),
        }
    }
}
