//! Entry points of the cargo-fuzz targets `vrrpd_recv`, `rtnl_reply` and `proc_connector`
//! (feature `fuzzing`).
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

/// Process-connector datagrams (76-byte pieces of `data`) through
/// [`crate::process::connector::ProcMessage::parse`], written back and parsed again, then as
/// events into a [`crate::process::Tracker`] whose counts must stay consistent.
pub fn proc_connector(data: &[u8]) {
    use std::time::{Duration, Instant};

    use crate::process::connector::{MESSAGE_LEN, ProcEvent, ProcMessage};
    use crate::process::{ProcInfo, ProcessSpec, Tracker};

    let mut a = ProcessSpec::new("a", "srv");
    a.quorum = 2;
    a.fork_delay = Duration::from_millis(5);
    a.terminate_delay = Duration::from_millis(7);
    let mut b = ProcessSpec::new("b", "/bin/srv");
    b.full_command = true;
    b.quorum_max = 3;
    let mut t = Tracker::new(vec![a, b]);
    let t0 = Instant::now();
    t.handle_scan(
        t0,
        [ProcInfo {
            pid: 1,
            comm: b"srv",
            cmdline: b"/bin/srv\0",
        }],
    );
    for (n, chunk) in data.chunks(MESSAGE_LEN).enumerate() {
        let now = t0 + Duration::from_millis(n as u64);
        let Ok(Some(m)) = ProcMessage::parse(chunk) else {
            continue;
        };
        let mut out = Vec::new();
        m.emit(&mut out);
        assert_eq!(ProcMessage::parse(&out), Ok(Some(m)), "round trip");
        // Small pids, so that events meet the processes they are about.
        let small = |p: u32| p % 8;
        match m.event {
            ProcEvent::Fork {
                parent_tgid,
                child_tgid,
                ..
            } => t.handle_fork(now, small(parent_tgid), small(child_tgid)),
            ProcEvent::Exec { tgid, .. } => {
                let (comm, cmdline): (&[u8], &[u8]) = match m.seq % 3 {
                    0 => (b"srv", b"srv\0"),
                    1 => (b"x", b"/bin/srv\0-d\0"),
                    _ => (b"x", b"x\0"),
                };
                t.handle_exec(ProcInfo {
                    pid: small(tgid),
                    comm,
                    cmdline,
                });
            }
            ProcEvent::Comm { tgid, comm, .. } => {
                t.handle_comm(small(tgid), ProcEvent::comm_name(&comm));
            }
            ProcEvent::Exit { tgid, .. } => t.handle_exit(now, small(tgid)),
            ProcEvent::Ack { .. } | ProcEvent::Other { .. } => t.handle_timeout(now),
        }
        while t.poll_change().is_some() {}
        for i in 0..2 {
            assert_eq!(t.count(i), Some(t.pids(i).count() as u32), "count {i}");
        }
    }
    t.handle_timeout(t0 + Duration::from_secs(3600));
    while t.poll_change().is_some() {}
    assert_eq!(t.poll_timeout(), None);
    for i in 0..2 {
        let spec = &t.specs()[i];
        let up = spec.in_quorum(t.count(i).unwrap_or(0));
        assert_eq!(t.have_quorum(i), Some(up), "settled verdict {i}");
    }
}
