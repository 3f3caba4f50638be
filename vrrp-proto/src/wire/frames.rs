//! The frames a new master sends so that neighbours re-learn where the virtual addresses live:
//! a gratuitous ARP (IPv4, RFC 5798 §6.4.1/§6.4.2) and an unsolicited Neighbor Advertisement
//! (IPv6, RFC 4861 §7.2.6). Also the virtual MAC of a VRID (RFC 5798 §7.3).

#![allow(clippy::indexing_slicing)] // fixed-size frames written at constant offsets

use core::net::{Ipv4Addr, Ipv6Addr};

use super::InsufficientSize;
use super::checksum;

/// A 48-bit Ethernet (MAC) address.
pub type EthernetAddress = [u8; 6];

/// Length of a gratuitous ARP frame: Ethernet header (14) + ARP for IPv4 over Ethernet (28).
pub const GARP_FRAME_LEN: usize = 42;
/// Length of an unsolicited NA frame: Ethernet (14) + IPv6 (40) + NA (24) + target link-layer
/// address option (8).
pub const NA_FRAME_LEN: usize = 86;

const ETHERTYPE_ARP: [u8; 2] = [0x08, 0x06];
const ETHERTYPE_IPV6: [u8; 2] = [0x86, 0xdd];
const BROADCAST: EthernetAddress = [0xff; 6];
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// The virtual router MAC address: `00-00-5E-00-01-{VRID}` for IPv4, `00-00-5E-00-02-{VRID}`
/// for IPv6 (RFC 5798 §7.3).
pub const fn virtual_mac(ipv6: bool, vrid: u8) -> EthernetAddress {
    [0x00, 0x00, 0x5e, 0x00, if ipv6 { 0x02 } else { 0x01 }, vrid]
}

/// Writes a gratuitous ARP for `vip` from `mac` into `buf`, returns [`GARP_FRAME_LEN`].
///
/// The frame is an ARP *request* broadcast with sender and target protocol address both
/// `vip` and target hardware address ff:ff:ff:ff:ff:ff: byte for byte what keepalived sends.
pub fn gratuitous_arp(
    mac: EthernetAddress,
    vip: Ipv4Addr,
    buf: &mut [u8],
) -> Result<usize, InsufficientSize> {
    let out = buf.get_mut(..GARP_FRAME_LEN).ok_or(InsufficientSize {
        required: GARP_FRAME_LEN,
    })?;
    out[0..6].copy_from_slice(&BROADCAST);
    out[6..12].copy_from_slice(&mac);
    out[12..14].copy_from_slice(&ETHERTYPE_ARP);
    // htype Ethernet, ptype IPv4, hlen 6, plen 4, op request
    out[14..22].copy_from_slice(&[0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01]);
    out[22..28].copy_from_slice(&mac);
    out[28..32].copy_from_slice(&vip.octets());
    out[32..38].copy_from_slice(&BROADCAST);
    out[38..42].copy_from_slice(&vip.octets());
    Ok(GARP_FRAME_LEN)
}

/// Writes an unsolicited Neighbor Advertisement for `vip` from `mac` into `buf`, returns
/// [`NA_FRAME_LEN`].
///
/// Sent from `vip` to ff02::1 (MAC 33:33:00:00:00:01) with hop limit 255, the Override flag,
/// the Router flag when `router` is true (RFC 5798 §6.4.1 asks for it; keepalived 2.2.7 leaves
/// it clear), and a target link-layer address option carrying `mac`. The ICMPv6 checksum is
/// filled in.
pub fn unsolicited_na(
    mac: EthernetAddress,
    vip: Ipv6Addr,
    router: bool,
    buf: &mut [u8],
) -> Result<usize, InsufficientSize> {
    let out = buf.get_mut(..NA_FRAME_LEN).ok_or(InsufficientSize {
        required: NA_FRAME_LEN,
    })?;
    let all_nodes = ALL_NODES.octets();
    out[0..6].copy_from_slice(&[0x33, 0x33, 0, 0, 0, 1]);
    out[6..12].copy_from_slice(&mac);
    out[12..14].copy_from_slice(&ETHERTYPE_IPV6);
    // IPv6: version 6, no traffic class or flow label, payload 32, next header ICMPv6 (58),
    // hop limit 255.
    out[14..22].copy_from_slice(&[0x60, 0, 0, 0, 0, 32, 58, 255]);
    out[22..38].copy_from_slice(&vip.octets());
    out[38..54].copy_from_slice(&all_nodes);
    let icmp = 54;
    // type 136 (NA), code 0, checksum (later), flags R|S|O in the top bits, 29 reserved bits.
    let flags = if router { 0xa0 } else { 0x20 };
    out[icmp..icmp + 8].copy_from_slice(&[136, 0, 0, 0, flags, 0, 0, 0]);
    out[icmp + 8..icmp + 24].copy_from_slice(&vip.octets());
    // option: target link-layer address (type 2), length 1 (8 bytes)
    out[icmp + 24..icmp + 26].copy_from_slice(&[2, 1]);
    out[icmp + 26..icmp + 32].copy_from_slice(&mac);
    let pseudo =
        checksum::pseudo_header_sum(vip.into(), ALL_NODES.into(), 58, 32).unwrap_or_default();
    let sum = checksum::finish(checksum::sum(&out[icmp..icmp + 32], pseudo));
    out[icmp + 2..icmp + 4].copy_from_slice(&sum.to_be_bytes());
    Ok(NA_FRAME_LEN)
}
