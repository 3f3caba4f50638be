//! Replays the seeds of the `vrrpd_recv`, `rtnl_reply` and `proc_connector` fuzz targets on
//! stable, and checks that they exercise the real paths (keepalived's adverts parse; a real
//! link dump decodes; the connector messages parse).
#![allow(clippy::unwrap_used, clippy::panic)]

use std::fs;
use std::path::PathBuf;

use proptest::prelude::*;
use vrrp_linux::fuzzing::{proc_connector, rtnl_reply, vrrpd_recv};
use vrrp_linux::process::connector::{MESSAGE_LEN, ProcEvent, ProcMessage};
use vrrp_linux::rtnl::fuzz_reply;
use vrrp_linux::socket::raw_ip::parse_ipv4;

fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/seeds")
        .join(target);
    let mut out: Vec<_> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let p = e.unwrap().path();
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                fs::read(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn vrrpd_recv_seeds() {
    let s = seeds("vrrpd_recv");
    assert!(s.len() >= 4);
    for (name, data) in &s {
        let rcv = parse_ipv4(data).unwrap_or_else(|| panic!("{name}: keepalived's advert"));
        assert_eq!(rcv.ttl, 255, "{name}");
        assert_eq!(rcv.dst.to_string(), "224.0.0.18", "{name}");
        vrrpd_recv(data);
    }
}

#[test]
fn rtnl_reply_seeds() {
    let s = seeds("rtnl_reply");
    let decoded: usize = s.iter().map(|(_, d)| fuzz_reply(d)).sum();
    // lo, eth0, eth1, vrrp.51 and their addresses.
    assert!(decoded >= 6, "{decoded}");
    for (_, d) in &s {
        rtnl_reply(d);
    }
}

#[test]
fn proc_connector_seeds() {
    let s = seeds("proc_connector");
    let mut events = 0;
    for (name, data) in &s {
        for chunk in data.chunks(MESSAGE_LEN) {
            let m = ProcMessage::parse(chunk).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(m.is_some(), "{name}");
            events += 1;
        }
        proc_connector(data);
    }
    assert!(events >= 8, "{events}");
}

fn proc_event() -> impl Strategy<Value = ProcEvent> {
    prop_oneof![
        any::<u32>().prop_map(|err| ProcEvent::Ack { err }),
        any::<[u32; 4]>().prop_map(|[a, b, c, d]| ProcEvent::Fork {
            parent_pid: a,
            parent_tgid: b,
            child_pid: c,
            child_tgid: d
        }),
        any::<(u32, u32)>().prop_map(|(pid, tgid)| ProcEvent::Exec { pid, tgid }),
        any::<(u32, u32, [u8; 16])>().prop_map(|(pid, tgid, comm)| ProcEvent::Comm {
            pid,
            tgid,
            comm
        }),
        any::<[u32; 4]>().prop_map(|[a, b, c, d]| ProcEvent::Exit {
            pid: a,
            tgid: b,
            exit_code: c,
            exit_signal: d
        }),
        prop_oneof![
            Just(4u32),
            Just(0x40),
            Just(0x80),
            Just(0x100),
            Just(0x4000_0000)
        ]
        .prop_map(|what| ProcEvent::Other { what }),
    ]
}

proptest! {
    #[test]
    fn proc_messages_read_back_as_written(
        event in proc_event(),
        seq in any::<u32>(),
        ack in any::<u32>(),
        cpu in any::<u32>(),
        timestamp_ns in any::<u64>(),
    ) {
        let m = ProcMessage { seq, ack, cpu, timestamp_ns, event };
        let mut b = Vec::new();
        m.emit(&mut b);
        prop_assert_eq!(ProcMessage::parse(&b), Ok(Some(m)));
    }

    #[test]
    fn proc_connector_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = ProcMessage::parse(&data);
        proc_connector(&data);
    }

    #[test]
    fn raw_ipv4_parse_never_panics_and_stays_in_bounds(data in proptest::collection::vec(any::<u8>(), 0..120)) {
        if let Some(r) = parse_ipv4(&data) {
            prop_assert!(r.payload.len() + 20 <= data.len());
        }
        vrrpd_recv(&data);
    }

    #[test]
    fn raw_ipv4_header_round_trip(ttl in any::<u8>(), src in any::<[u8; 4]>(), dst in any::<[u8; 4]>(),
                                 payload in proptest::collection::vec(any::<u8>(), 0..64), opts in 0usize..4) {
        let ihl = 5 + opts;
        let total = ihl * 4 + payload.len();
        let mut p = vec![0u8; ihl * 4];
        p[0] = 0x40 | u8::try_from(ihl).unwrap();
        p[2..4].copy_from_slice(&u16::try_from(total).unwrap().to_be_bytes());
        p[8] = ttl;
        p[9] = 112;
        p[12..16].copy_from_slice(&src);
        p[16..20].copy_from_slice(&dst);
        p.extend_from_slice(&payload);
        let r = parse_ipv4(&p).unwrap();
        prop_assert_eq!(r.ttl, ttl);
        prop_assert_eq!(r.src, std::net::IpAddr::from(src));
        prop_assert_eq!(r.dst, std::net::IpAddr::from(dst));
        prop_assert_eq!(r.payload, payload);
        // Any other protocol is not ours.
        p[9] = 6;
        prop_assert!(parse_ipv4(&p).is_none());
    }

    #[test]
    fn netlink_garbage_never_panics(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        rtnl_reply(&data);
    }
}
