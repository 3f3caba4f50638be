//! Entry points of the cargo-fuzz targets `vrrpd_recv` and `rtnl_reply` (feature `fuzzing`).
//!
//! A broken invariant is a panic, which is how a fuzzer reports a finding.

// A fuzz target reports a broken invariant by panicking.
#![allow(clippy::panic)]

/// A datagram as a raw VRRP socket delivers it (IPv4 header included) through the daemon's
/// receive path: [`crate::socket::raw_ip::parse_ipv4`], then a v2 and a v3 virtual router. A
/// refused packet must leave the router's state unchanged.
pub fn vrrpd_recv(data: &[u8]) {
    use std::net::{IpAddr, Ipv4Addr};

    use vrrp_proto::wire::Version;
    use vrrp_proto::{Config, Instant, RecvMeta, VirtualRouter};

    let Some(rcv) = crate::socket::raw_ip::parse_ipv4(data) else {
        return;
    };
    assert!(rcv.payload.len() <= data.len());
    for version in [Version::V2, Version::V3] {
        let mut b = Config::builder(51, IpAddr::V4(Ipv4Addr::new(10, 99, 0, 11)))
            .version(version)
            .priority(100)
            .vip(IpAddr::V4(Ipv4Addr::new(10, 99, 0, 100)));
        if version == Version::V2 {
            b = b.password(b"hapri1");
        }
        let Ok(cfg) = b.build() else {
            panic!("the fuzz router's configuration is valid");
        };
        let mut r = VirtualRouter::new(cfg);
        r.startup(Instant::from_millis(0));
        while r.poll_action().is_some() {}
        let meta = RecvMeta::new(rcv.src, rcv.dst, rcv.ttl);
        let before = (r.state(), r.master(), r.poll_timeout());
        if r.handle_packet(Instant::from_millis(10), meta, &rcv.payload)
            .is_err()
        {
            assert_eq!(before, (r.state(), r.master(), r.poll_timeout()));
        }
        while r.poll_action().is_some() {}
    }
}

/// Route-netlink reply bytes through [`crate::rtnl::fuzz_reply`].
pub fn rtnl_reply(data: &[u8]) {
    let _ = crate::rtnl::fuzz_reply(data);
}
