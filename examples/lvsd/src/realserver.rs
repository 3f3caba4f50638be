//! Prepares a direct-routing (LVS-DR) real server, as the classic `realserver.sh` does: the
//! VIP on `lo` (so the server accepts packets addressed to it) and ARP tuned so it never
//! answers or announces the VIP on the wire (`arp_ignore=1`, `arp_announce=2` on `lo` and
//! `all`), leaving the director the only host the clients' ARP finds.

use std::net::IpAddr;

use vrrp_linux::rtnl::{Rtnl, RtnlError, sysctl_set};

/// The sysctls set by [`start`] (and reset to 0 by [`stop`]).
pub const SYSCTLS: [&str; 4] = [
    "net.ipv4.conf.lo.arp_ignore",
    "net.ipv4.conf.lo.arp_announce",
    "net.ipv4.conf.all.arp_ignore",
    "net.ipv4.conf.all.arp_announce",
];

fn host_prefix(ip: IpAddr) -> u8 {
    if ip.is_ipv4() { 32 } else { 128 }
}

/// Adds each VIP to `lo` as a host address and sets the ARP sysctls. Returns how many VIPs
/// were added (those already there are left alone).
pub fn start(vips: &[IpAddr]) -> Result<usize, RtnlError> {
    let mut r = Rtnl::open()?;
    let lo = r.link_by_name("lo")?;
    let mut added = 0;
    for v in vips {
        if r.add_addr(lo.index, *v, host_prefix(*v))? {
            added += 1;
        }
    }
    for (k, v) in SYSCTLS.iter().zip(["1", "2", "1", "2"]) {
        sysctl_set(k, v)?;
    }
    Ok(added)
}

/// Removes the VIPs from `lo` and resets the ARP sysctls to 0 (the kernel default).
pub fn stop(vips: &[IpAddr]) -> Result<usize, RtnlError> {
    let mut r = Rtnl::open()?;
    let lo = r.link_by_name("lo")?;
    let mut removed = 0;
    for v in vips {
        if r.del_addr(lo.index, *v, host_prefix(*v))? {
            removed += 1;
        }
    }
    for k in SYSCTLS {
        sysctl_set(k, "0")?;
    }
    Ok(removed)
}
