//! Configuration of one virtual router, validated once when built.

use alloc::vec::Vec;
use core::fmt;
use core::net::IpAddr;
use core::time::Duration;

use crate::wire::{AddrFamily, Auth, EthernetAddress, V3Checksum, Version};

/// An address with a prefix length, as in keepalived's `virtual_ipaddress { 10.0.0.1/24 }`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpCidr {
    addr: IpAddr,
    prefix_len: u8,
}

impl IpCidr {
    /// `addr/prefix_len`; `None` when the prefix is longer than the address (32 or 128).
    pub const fn new(addr: IpAddr, prefix_len: u8) -> Option<Self> {
        let max = match addr {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        if prefix_len > max {
            None
        } else {
            Some(Self { addr, prefix_len })
        }
    }

    /// A host route: `/32` for IPv4, `/128` for IPv6 (keepalived's default).
    pub const fn host(addr: IpAddr) -> Self {
        let prefix_len = match addr {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        Self { addr, prefix_len }
    }

    /// The address.
    pub const fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length.
    pub const fn prefix_len(&self) -> u8 {
        self.prefix_len
    }
}

impl fmt::Display for IpCidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

impl fmt::Debug for IpCidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl From<IpAddr> for IpCidr {
    fn from(addr: IpAddr) -> Self {
        Self::host(addr)
    }
}

/// Gratuitous ARP / unsolicited NA behaviour on becoming master, after keepalived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Announce {
    /// Announcements per address sent on becoming master (`garp_master_repeat`, default 5).
    pub repeat: u8,
    /// Spacing between those announcements (`vrrp_garp_interval`, default 0: back to back).
    pub interval: Duration,
    /// Delay of the second burst after becoming master (`garp_master_delay`, default 5 s;
    /// zero disables it).
    pub delay: Duration,
    /// Period of refresh announcements while master (`garp_master_refresh`, default 0: off).
    pub refresh: Duration,
    /// Announcements per address at each refresh (`garp_master_refresh_repeat`, default 1).
    pub refresh_repeat: u8,
}

impl Default for Announce {
    fn default() -> Self {
        Self {
            repeat: 5,
            interval: Duration::ZERO,
            delay: Duration::from_secs(5),
            refresh: Duration::ZERO,
            refresh_repeat: 1,
        }
    }
}

/// The most addresses one advertisement can carry (the count field is one byte).
pub const MAX_VIPS: usize = 255;
/// The longest `preempt_delay` keepalived accepts.
pub const MAX_PREEMPT_DELAY: Duration = Duration::from_secs(1000);

/// Why a [`ConfigBuilder`] refused a configuration. Each variant names the keepalived field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// VRID 0 is reserved.
    #[error("virtual_router_id {0} is out of range: use 1 to 255")]
    Vrid(u8),
    /// Priority 0 is reserved for the master's release message.
    #[error("priority {0} is out of range: use 1 to 255 (255 = address owner)")]
    Priority(u8),
    /// The advertisement interval is zero.
    #[error("advert_int must be greater than zero")]
    AdvertIntervalZero,
    /// The advertisement interval is larger than the version can carry.
    #[error("advert_int {got:?} is too large for VRRPv{version}: at most {max:?}")]
    AdvertIntervalTooLarge {
        /// The configured interval.
        got: Duration,
        /// The largest allowed.
        max: Duration,
        /// The protocol version.
        version: u8,
    },
    /// The advertisement interval is not a whole number of the version's unit.
    #[error("advert_int {got:?} is not a multiple of {unit:?}, the VRRPv{version} unit")]
    AdvertIntervalResolution {
        /// The configured interval.
        got: Duration,
        /// The unit: 1 s for v2, 10 ms for v3.
        unit: Duration,
        /// The protocol version.
        version: u8,
    },
    /// No virtual address.
    #[error("virtual_ipaddress is empty: give at least one address")]
    NoVip,
    /// More virtual addresses than an advertisement can carry.
    #[error("virtual_ipaddress has {0} addresses; at most 255 fit in an advertisement")]
    TooManyVips(usize),
    /// The same virtual address listed twice.
    #[error("virtual_ipaddress lists {0} twice")]
    DuplicateVip(IpAddr),
    /// Addresses of both families in one instance.
    #[error("{field}: {addr} is not in the instance's address family; use one instance per family")]
    MixedFamilies {
        /// The field holding the odd address.
        field: &'static str,
        /// The address.
        addr: IpAddr,
    },
    /// A PASS password longer than 8 bytes.
    #[error("auth_pass is {0} bytes long; VRRPv2 simple passwords are at most 8")]
    PasswordTooLong(usize),
    /// Authentication configured for VRRPv3, which has none.
    #[error("authentication is not part of VRRPv3; remove it or use vrrp_version 2")]
    AuthWithV3,
    /// VRRPv2 with IPv6 addresses.
    #[error("VRRPv2 is IPv4-only; use vrrp_version 3 for IPv6")]
    V2WithIpv6,
    /// The preempt delay is longer than keepalived allows.
    #[error("preempt_delay {0:?} is too large: at most 1000 s")]
    PreemptDelay(Duration),
}

/// A validated virtual router configuration. Build it with [`Config::builder`].
#[derive(Clone, PartialEq, Eq)]
pub struct Config {
    pub(crate) vrid: u8,
    pub(crate) version: Version,
    pub(crate) priority: u8,
    pub(crate) adver_int_cs: u16,
    pub(crate) primary: IpAddr,
    pub(crate) vips: Vec<IpCidr>,
    pub(crate) preempt: bool,
    pub(crate) preempt_delay: Duration,
    pub(crate) accept_mode: bool,
    pub(crate) auth: Auth,
    pub(crate) unicast_peers: Vec<IpAddr>,
    pub(crate) check_unicast_src: bool,
    pub(crate) mac: EthernetAddress,
    pub(crate) use_vmac: bool,
    pub(crate) announce: Announce,
    pub(crate) v3_checksum: V3Checksum,
    pub(crate) na_router_flag: bool,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("vrid", &self.vrid)
            .field("version", &self.version)
            .field("priority", &self.priority)
            .field("adver_int_cs", &self.adver_int_cs)
            .field("primary", &self.primary)
            .field("vips", &self.vips)
            .field("preempt", &self.preempt)
            .field("preempt_delay", &self.preempt_delay)
            .field("accept_mode", &self.accept_mode)
            .field("auth", &self.auth)
            .field("unicast_peers", &self.unicast_peers)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Starts a configuration for virtual router `vrid` on an interface whose primary address
    /// (the advert source; for IPv6 the link-local address) is `primary`.
    pub fn builder(vrid: u8, primary: IpAddr) -> ConfigBuilder {
        ConfigBuilder {
            cfg: Self {
                vrid,
                version: Version::V3,
                priority: 100,
                adver_int_cs: 100,
                primary,
                vips: Vec::new(),
                preempt: true,
                preempt_delay: Duration::ZERO,
                accept_mode: false,
                auth: Auth::None,
                unicast_peers: Vec::new(),
                check_unicast_src: false,
                mac: [0; 6],
                use_vmac: false,
                announce: Announce::default(),
                v3_checksum: V3Checksum::PseudoHeader,
                na_router_flag: true,
            },
            interval: Duration::from_secs(1),
            password: None,
        }
    }

    /// The virtual router id.
    pub fn vrid(&self) -> u8 {
        self.vrid
    }
    /// The protocol version.
    pub fn version(&self) -> Version {
        self.version
    }
    /// The configured priority.
    pub fn priority(&self) -> u8 {
        self.priority
    }
    /// The advertisement interval.
    pub fn advert_interval(&self) -> Duration {
        Duration::from_millis(u64::from(self.adver_int_cs) * 10)
    }
    /// The advertisement interval in centiseconds, as on the wire.
    pub fn advert_interval_cs(&self) -> u16 {
        self.adver_int_cs
    }
    /// The primary (source) address.
    pub fn primary(&self) -> IpAddr {
        self.primary
    }
    /// The virtual addresses, in advertisement order.
    pub fn vips(&self) -> &[IpCidr] {
        &self.vips
    }
    /// The address family of the instance.
    pub fn family(&self) -> AddrFamily {
        AddrFamily::of(&self.primary)
    }
    /// Whether a higher-priority backup takes over from a lower-priority master.
    pub fn preempt(&self) -> bool {
        self.preempt
    }
    /// How long preemption waits after startup or after first seeing a lower-priority master.
    pub fn preempt_delay(&self) -> Duration {
        self.preempt_delay
    }
    /// Accept mode (RFC 5798 §6.1): whether a non-owner master accepts packets for the VIPs.
    /// The engine only carries the flag; the IO layer enforces it.
    pub fn accept_mode(&self) -> bool {
        self.accept_mode
    }
    /// v2 authentication.
    pub fn auth(&self) -> &Auth {
        &self.auth
    }
    /// Unicast peers (empty: multicast).
    pub fn unicast_peers(&self) -> &[IpAddr] {
        &self.unicast_peers
    }
    /// The MAC announcements are sent from: the virtual MAC with `use_vmac`, else the
    /// interface MAC.
    pub fn announce_mac(&self) -> EthernetAddress {
        if self.use_vmac {
            crate::wire::virtual_mac(self.family() == AddrFamily::Ipv6, self.vrid)
        } else {
            self.mac
        }
    }
    /// Whether the instance uses the virtual MAC (keepalived `use_vmac`).
    pub fn use_vmac(&self) -> bool {
        self.use_vmac
    }
    /// Announcement settings.
    pub fn announce(&self) -> &Announce {
        &self.announce
    }
    /// The VRRPv3 IPv4 checksum convention.
    pub fn v3_checksum(&self) -> V3Checksum {
        self.v3_checksum
    }
}

/// Builds a [`Config`]; [`ConfigBuilder::build`] checks every field.
#[derive(Debug, Clone)]
#[must_use]
pub struct ConfigBuilder {
    cfg: Config,
    interval: Duration,
    password: Option<Vec<u8>>,
}

impl ConfigBuilder {
    /// Protocol version (default v3).
    pub fn version(mut self, v: Version) -> Self {
        self.cfg.version = v;
        self
    }
    /// Priority, 1..=255 (default 100; 255 = address owner).
    pub fn priority(mut self, p: u8) -> Self {
        self.cfg.priority = p;
        self
    }
    /// Advertisement interval (default 1 s): whole seconds for v2 (1..=255 s), multiples of
    /// 10 ms for v3 (10 ms..=40.95 s).
    pub fn advert_interval(mut self, d: Duration) -> Self {
        self.interval = d;
        self
    }
    /// Adds a virtual address.
    pub fn vip(mut self, vip: impl Into<IpCidr>) -> Self {
        self.cfg.vips.push(vip.into());
        self
    }
    /// Preemption (default on; keepalived `nopreempt` turns it off).
    pub fn preempt(mut self, on: bool) -> Self {
        self.cfg.preempt = on;
        self
    }
    /// keepalived `preempt_delay` (default 0, at most 1000 s).
    pub fn preempt_delay(mut self, d: Duration) -> Self {
        self.cfg.preempt_delay = d;
        self
    }
    /// Accept mode (default off).
    pub fn accept_mode(mut self, on: bool) -> Self {
        self.cfg.accept_mode = on;
        self
    }
    /// VRRPv2 simple password (keepalived `auth_type PASS`, `auth_pass`), at most 8 bytes.
    pub fn password(mut self, pass: &[u8]) -> Self {
        self.password = Some(pass.to_vec());
        self
    }
    /// Adds a unicast peer (keepalived `unicast_peer`); adverts then go to each peer.
    pub fn unicast_peer(mut self, peer: IpAddr) -> Self {
        self.cfg.unicast_peers.push(peer);
        self
    }
    /// Refuse adverts from sources that are not unicast peers (keepalived `check_unicast_src`).
    pub fn check_unicast_src(mut self, on: bool) -> Self {
        self.cfg.check_unicast_src = on;
        self
    }
    /// The interface MAC, the source of announcements unless `use_vmac`.
    pub fn mac(mut self, mac: EthernetAddress) -> Self {
        self.cfg.mac = mac;
        self
    }
    /// Announce from the virtual MAC 00-00-5E-00-01/02-VRID (keepalived `use_vmac`).
    pub fn use_vmac(mut self, on: bool) -> Self {
        self.cfg.use_vmac = on;
        self
    }
    /// Announcement repeat, spacing, delay and refresh.
    pub fn announce(mut self, a: Announce) -> Self {
        self.cfg.announce = a;
        self
    }
    /// The VRRPv3 IPv4 checksum convention (default: pseudo-header, as keepalived).
    pub fn v3_checksum(mut self, mode: V3Checksum) -> Self {
        self.cfg.v3_checksum = mode;
        self
    }
    /// Whether unsolicited NAs carry the Router flag (default true, RFC 5798 §6.4.1;
    /// keepalived 2.2.7 sends it clear).
    pub fn na_router_flag(mut self, on: bool) -> Self {
        self.cfg.na_router_flag = on;
        self
    }

    /// Checks every field and returns the configuration, or the first problem found.
    pub fn build(self) -> Result<Config, ConfigError> {
        let Self {
            mut cfg,
            interval,
            password,
        } = self;
        if cfg.vrid == 0 {
            return Err(ConfigError::Vrid(0));
        }
        if cfg.priority == 0 {
            return Err(ConfigError::Priority(0));
        }
        if interval.is_zero() {
            return Err(ConfigError::AdvertIntervalZero);
        }
        let version = cfg.version.number();
        let (unit, max) = match cfg.version {
            Version::V2 => (Duration::from_secs(1), Duration::from_secs(255)),
            Version::V3 => (Duration::from_millis(10), Duration::from_millis(40_950)),
        };
        if interval > max {
            return Err(ConfigError::AdvertIntervalTooLarge {
                got: interval,
                max,
                version,
            });
        }
        if interval.as_nanos() % unit.as_nanos() != 0 {
            return Err(ConfigError::AdvertIntervalResolution {
                got: interval,
                unit,
                version,
            });
        }
        // At most 40 950 ms / 10 = 4095 centiseconds: fits.
        cfg.adver_int_cs = u16::try_from(interval.as_millis() / 10).unwrap_or(u16::MAX);
        if cfg.vips.is_empty() {
            return Err(ConfigError::NoVip);
        }
        if cfg.vips.len() > MAX_VIPS {
            return Err(ConfigError::TooManyVips(cfg.vips.len()));
        }
        for (i, v) in cfg.vips.iter().enumerate() {
            if cfg.vips.iter().skip(i + 1).any(|w| w.addr() == v.addr()) {
                return Err(ConfigError::DuplicateVip(v.addr()));
            }
        }
        let family = cfg.family();
        if cfg.version == Version::V2 && family == AddrFamily::Ipv6 {
            return Err(ConfigError::V2WithIpv6);
        }
        let odd = |field: &'static str, a: IpAddr| {
            (AddrFamily::of(&a) != family).then_some(ConfigError::MixedFamilies { field, addr: a })
        };
        for v in &cfg.vips {
            if let Some(e) = odd("virtual_ipaddress", v.addr()) {
                return Err(e);
            }
        }
        for p in &cfg.unicast_peers {
            if let Some(e) = odd("unicast_peer", *p) {
                return Err(e);
            }
        }
        if cfg.preempt_delay > MAX_PREEMPT_DELAY {
            return Err(ConfigError::PreemptDelay(cfg.preempt_delay));
        }
        if let Some(pw) = password {
            if cfg.version == Version::V3 {
                return Err(ConfigError::AuthWithV3);
            }
            if pw.len() > 8 {
                return Err(ConfigError::PasswordTooLong(pw.len()));
            }
            let mut padded = [0u8; 8];
            if let Some(dst) = padded.get_mut(..pw.len()) {
                dst.copy_from_slice(&pw);
            }
            cfg.auth = Auth::Simple(padded);
        }
        Ok(cfg)
    }
}
