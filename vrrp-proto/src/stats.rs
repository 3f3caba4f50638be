//! Per-router counters, named after the VRRPv3 MIB (RFC 6527) and, for v2 authentication,
//! the VRRP MIB (RFC 2787).

use crate::error::RecvError;
use crate::wire;

/// Counters of one virtual router. Every refused packet bumps exactly one error counter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Transitions to Master (`vrrpv3StatisticsMasterTransitions`).
    pub master_transitions: u64,
    /// Valid advertisements received (`vrrpv3StatisticsRcvdAdvertisements`).
    pub adverts_received: u64,
    /// Advertisements sent (one per destination).
    pub adverts_sent: u64,
    /// Advertisements with priority 0 received (`vrrpv3StatisticsRcvdPriZeroPackets`).
    pub priority_zero_received: u64,
    /// Advertisements with priority 0 sent (`vrrpv3StatisticsSentPriZeroPackets`).
    pub priority_zero_sent: u64,
    /// Advertisement interval mismatches (v2) or zero intervals (v3)
    /// (`vrrpv3StatisticsAdvIntervalErrors`).
    pub adv_interval_errors: u64,
    /// TTL / hop limit other than 255 (`vrrpv3StatisticsIpTtlErrors`).
    pub ip_ttl_errors: u64,
    /// Packet types other than ADVERTISEMENT (`vrrpv3StatisticsRcvdInvalidTypePackets`).
    pub invalid_type: u64,
    /// Address lists that do not match the configuration (`vrrpv3StatisticsAddressListErrors`).
    pub address_list_errors: u64,
    /// Truncated or over-long packets (`vrrpv3StatisticsPacketLengthErrors`).
    pub packet_length_errors: u64,
    /// Bad checksums (`vrrpv3RouterChecksumErrors`).
    pub checksum_errors: u64,
    /// Unknown or unconfigured versions (`vrrpv3RouterVersionErrors`).
    pub version_errors: u64,
    /// Packets for another VRID delivered here (`vrrpv3RouterVrIdErrors`).
    pub vrid_errors: u64,
    /// Wrong password (RFC 2787 `vrrpStatsAuthFailures`).
    pub auth_failures: u64,
    /// Unknown auth type, or IP AH (RFC 2787 `vrrpStatsInvalidAuthType`).
    pub invalid_auth_type: u64,
    /// Auth type differs from ours (RFC 2787 `vrrpStatsAuthTypeMismatch`).
    pub auth_type_mismatch: u64,
    /// Adverts whose IP header families disagree, or v2 over IPv6.
    pub address_family_errors: u64,
    /// Our own adverts looped back to us.
    pub own_adverts: u64,
    /// Adverts from a source that is not a configured unicast peer (`check_unicast_src`).
    pub unknown_source: u64,
    /// Adverts an address owner discarded (RFC 5798 §7.1).
    pub owner_discards: u64,
    /// Adverts from a lower-priority router that thought it was master, received while
    /// Master (answered at once with an advert and re-announcements).
    pub lower_priority_master_seen: u64,
}

impl Stats {
    /// Counts one refused packet.
    pub(crate) fn count(&mut self, e: &RecvError) {
        let c = match e {
            RecvError::Wire(w) => match w {
                wire::Error::Truncated { .. } | wire::Error::Length { .. } => {
                    &mut self.packet_length_errors
                }
                wire::Error::Version(_) => &mut self.version_errors,
                wire::Error::Kind(_) => &mut self.invalid_type,
                wire::Error::Checksum { .. } => &mut self.checksum_errors,
                wire::Error::NoAddress => &mut self.address_list_errors,
                wire::Error::AuthType(_) | wire::Error::IpAhAuth => &mut self.invalid_auth_type,
                wire::Error::AddressFamily => &mut self.address_family_errors,
            },
            RecvError::IpTtl(_) => &mut self.ip_ttl_errors,
            RecvError::Version { .. } => &mut self.version_errors,
            RecvError::VrId { .. } => &mut self.vrid_errors,
            RecvError::AuthTypeMismatch { .. } => &mut self.auth_type_mismatch,
            RecvError::AuthFailure => &mut self.auth_failures,
            RecvError::AdvInterval { .. } => &mut self.adv_interval_errors,
            RecvError::AddressList => &mut self.address_list_errors,
            RecvError::OwnAdvert => &mut self.own_adverts,
            RecvError::UnknownSource(_) => &mut self.unknown_source,
            RecvError::Owner => &mut self.owner_discards,
        };
        *c = c.saturating_add(1);
    }
}
