//! Round-trip property tests for every IPVS message and attribute, truncation tests, and
//! known-answer tests with labelled bytes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::net::{Ipv4Addr, Ipv6Addr};

use ipvs_netlink::exchange;
use ipvs_netlink::wire::{
    self, CmdAttr, DaemonAttr, DestAttr, GenlMessage, IpvsCmd, IpvsMessage, NetlinkHeader,
    NetlinkMessage, NetlinkPayload, RawNla, ServiceAttr, StatsAttr,
};
use proptest::prelude::*;

fn raw() -> impl Strategy<Value = RawNla> {
    (
        100u16..0x3fff,
        proptest::collection::vec(any::<u8>(), 0..24),
    )
        .prop_map(|(kind, value)| RawNla { kind, value })
}

fn name() -> impl Strategy<Value = String> {
    "[a-z0-9_]{0,15}"
}

fn stats() -> impl Strategy<Value = Vec<StatsAttr>> {
    proptest::collection::vec(
        prop_oneof![
            any::<u64>().prop_map(StatsAttr::Conns),
            any::<u64>().prop_map(StatsAttr::InPkts),
            any::<u64>().prop_map(StatsAttr::OutPkts),
            any::<u64>().prop_map(StatsAttr::InBytes),
            any::<u64>().prop_map(StatsAttr::OutBytes),
            any::<u64>().prop_map(StatsAttr::Cps),
            any::<u64>().prop_map(StatsAttr::InPps),
            any::<u64>().prop_map(StatsAttr::OutPps),
            any::<u64>().prop_map(StatsAttr::InBps),
            any::<u64>().prop_map(StatsAttr::OutBps),
            raw().prop_map(StatsAttr::Other),
        ],
        0..12,
    )
}

fn service_attrs() -> impl Strategy<Value = Vec<ServiceAttr>> {
    proptest::collection::vec(
        prop_oneof![
            any::<u16>().prop_map(ServiceAttr::Af),
            any::<u16>().prop_map(ServiceAttr::Protocol),
            any::<[u8; 16]>().prop_map(ServiceAttr::Addr),
            any::<u16>().prop_map(ServiceAttr::Port),
            any::<u32>().prop_map(ServiceAttr::Fwmark),
            name().prop_map(ServiceAttr::SchedName),
            (any::<u32>(), any::<u32>())
                .prop_map(|(flags, mask)| ServiceAttr::Flags { flags, mask }),
            any::<u32>().prop_map(ServiceAttr::Timeout),
            any::<u32>().prop_map(ServiceAttr::Netmask),
            stats().prop_map(ServiceAttr::Stats),
            name().prop_map(ServiceAttr::PeName),
            stats().prop_map(ServiceAttr::Stats64),
            raw().prop_map(ServiceAttr::Other),
        ],
        0..14,
    )
}

fn dest_attrs() -> impl Strategy<Value = Vec<DestAttr>> {
    proptest::collection::vec(
        prop_oneof![
            any::<[u8; 16]>().prop_map(DestAttr::Addr),
            any::<u16>().prop_map(DestAttr::Port),
            any::<u32>().prop_map(DestAttr::FwdMethod),
            any::<u32>().prop_map(DestAttr::Weight),
            any::<u32>().prop_map(DestAttr::UThresh),
            any::<u32>().prop_map(DestAttr::LThresh),
            any::<u32>().prop_map(DestAttr::ActiveConns),
            any::<u32>().prop_map(DestAttr::InactConns),
            any::<u32>().prop_map(DestAttr::PersistConns),
            stats().prop_map(DestAttr::Stats),
            any::<u16>().prop_map(DestAttr::AddrFamily),
            stats().prop_map(DestAttr::Stats64),
            any::<u8>().prop_map(DestAttr::TunType),
            any::<u16>().prop_map(DestAttr::TunPort),
            any::<u16>().prop_map(DestAttr::TunFlags),
            raw().prop_map(DestAttr::Other),
        ],
        0..16,
    )
}

fn daemon_attrs() -> impl Strategy<Value = Vec<DaemonAttr>> {
    proptest::collection::vec(
        prop_oneof![
            any::<u32>().prop_map(DaemonAttr::State),
            name().prop_map(DaemonAttr::McastIfn),
            any::<u32>().prop_map(DaemonAttr::SyncId),
            any::<u16>().prop_map(DaemonAttr::SyncMaxlen),
            any::<[u8; 4]>().prop_map(|b| DaemonAttr::McastGroup(Ipv4Addr::from(b))),
            any::<[u8; 16]>().prop_map(|b| DaemonAttr::McastGroup6(Ipv6Addr::from(b))),
            any::<u16>().prop_map(DaemonAttr::McastPort),
            any::<u8>().prop_map(DaemonAttr::McastTtl),
            raw().prop_map(DaemonAttr::Other),
        ],
        0..9,
    )
}

fn cmd_attrs() -> impl Strategy<Value = Vec<CmdAttr>> {
    proptest::collection::vec(
        prop_oneof![
            service_attrs().prop_map(CmdAttr::Service),
            dest_attrs().prop_map(CmdAttr::Dest),
            daemon_attrs().prop_map(CmdAttr::Daemon),
            any::<u32>().prop_map(CmdAttr::TimeoutTcp),
            any::<u32>().prop_map(CmdAttr::TimeoutTcpFin),
            any::<u32>().prop_map(CmdAttr::TimeoutUdp),
            raw().prop_map(CmdAttr::Other),
        ],
        0..5,
    )
}

fn message() -> impl Strategy<Value = IpvsMessage> {
    prop_oneof![
        (
            (1u8..=17).prop_filter("not info", |c| *c != 14 && *c != 15),
            cmd_attrs()
        )
            .prop_map(|(c, a)| IpvsMessage::new(IpvsCmd::from(c), a)),
        (
            prop_oneof![Just(14u8), Just(15u8)],
            proptest::collection::vec(
                prop_oneof![
                    any::<u32>().prop_map(CmdAttr::InfoVersion),
                    any::<u32>().prop_map(CmdAttr::InfoConnTabSize),
                    raw().prop_map(CmdAttr::Other),
                ],
                0..4
            )
        )
            .prop_map(|(c, a)| IpvsMessage::new(IpvsCmd::from(c), a)),
        (18u8..=255, cmd_attrs()).prop_map(|(c, a)| IpvsMessage::new(IpvsCmd::from(c), a)),
    ]
}

proptest! {
    #[test]
    fn ipvs_message_round_trips(msg in message()) {
        let bytes = msg.to_vec();
        prop_assert_eq!(bytes.len(), msg.buffer_len());
        prop_assert_eq!(IpvsMessage::parse(&bytes).unwrap(), msg.clone());
        // emit into an exact buffer and into a short one
        let mut exact = vec![0u8; bytes.len()];
        prop_assert_eq!(msg.emit(&mut exact).unwrap(), bytes.len());
        prop_assert_eq!(&exact, &bytes);
        let mut short = vec![0xAAu8; bytes.len() - 1];
        let short_is_insufficient = matches!(msg.emit(&mut short), Err(wire::Error::InsufficientSize { .. }));
        prop_assert!(short_is_insufficient);
        prop_assert!(short.iter().all(|&b| b == 0xAA), "a failed emit must not write");
    }

    #[test]
    fn framed_request_round_trips_and_every_truncation_fails(msg in message(), seq in any::<u32>()) {
        let mut out = Vec::new();
        exchange::encode_request(&mut out, 0x20, 0x5, seq, &msg).unwrap();
        let msgs = wire::parse_stream(&out).unwrap();
        prop_assert_eq!(msgs.len(), 1);
        let NetlinkPayload::Genl(g) = &msgs[0].payload else { panic!("not genl") };
        prop_assert_eq!(msgs[0].header.seq, seq);
        let parsed = IpvsMessage::parse_attrs(IpvsCmd::from(g.cmd), g.version, &g.attrs).unwrap();
        prop_assert_eq!(parsed, msg);
        for cut in 0..out.len() {
            prop_assert!(wire::parse_stream(&out[..cut]).is_err() || cut == 0);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        ipvs_netlink::fuzzing::reply(&data);
    }

    #[test]
    fn netlink_messages_round_trip(kind in any::<u16>(), flags in any::<u16>(), seq in any::<u32>(),
                                   body in proptest::collection::vec(any::<u8>(), 4..64)) {
        let payload = match kind {
            2 => NetlinkPayload::Error { code: i32::from_ne_bytes([body[0], body[1], body[2], body[3]]), request: body[4..].to_vec() },
            3 => NetlinkPayload::Done(body.clone()),
            1 => NetlinkPayload::Noop(body.clone()),
            4 => NetlinkPayload::Overrun(body.clone()),
            k if k >= 16 => NetlinkPayload::Genl(GenlMessage { cmd: body[0], version: body[1], reserved: u16::from_ne_bytes([body[2], body[3]]), attrs: body[4..].to_vec() }),
            _ => NetlinkPayload::Other(body.clone()),
        };
        let m = NetlinkMessage { header: NetlinkHeader { kind, flags, seq, pid: 7 }, payload };
        let mut out = Vec::new();
        m.encode_into(&mut out).unwrap();
        prop_assert_eq!(out.len(), m.buffer_len());
        let (again, used) = NetlinkMessage::parse(&out).unwrap();
        prop_assert_eq!(used, out.len());
        prop_assert_eq!(again, m);
    }
}

/// GET_INFO reply as the kernel builds it (labelled): version 1.2.1, table size 4096.
#[test]
fn known_answer_info_reply() {
    #[rustfmt::skip]
    let bytes: &[u8] = &[
        0x24, 0, 0, 0,      // nlmsg_len 36
        0x20, 0,            // nlmsg_type: the IPVS family id (0x20 here)
        0, 0,               // flags
        9, 0, 0, 0,         // seq 9
        0x2a, 0, 0, 0,      // pid 42
        14, 1, 0, 0,        // genl: cmd IPVS_CMD_SET_INFO, version 1
        8, 0, 1, 0,  0x01, 0x02, 0x01, 0x00, // IPVS_INFO_ATTR_VERSION = 0x010201
        8, 0, 2, 0,  0x00, 0x10, 0x00, 0x00, // IPVS_INFO_ATTR_CONN_TAB_SIZE = 4096
    ];
    let ev = exchange::classify(bytes, 0x20).unwrap();
    let exchange::Event::Data { seq: 9, msg } = &ev[0] else {
        panic!("{ev:?}")
    };
    assert_eq!(
        *msg,
        IpvsMessage::new(
            IpvsCmd::SetInfo,
            vec![
                CmdAttr::InfoVersion(0x010201),
                CmdAttr::InfoConnTabSize(4096)
            ]
        )
    );
    assert_eq!(&msg.to_vec()[..], &bytes[16..]);
}

/// A TCP service 10.0.0.1:80 in a NEW_SERVICE message, byte by byte.
#[test]
fn known_answer_service_port_is_big_endian() {
    let mut addr = [0u8; 16];
    addr[..4].copy_from_slice(&[10, 0, 0, 1]);
    let msg = IpvsMessage::new(
        IpvsCmd::NewService,
        vec![CmdAttr::Service(vec![
            ServiceAttr::Af(2),
            ServiceAttr::Protocol(6),
            ServiceAttr::Addr(addr),
            ServiceAttr::Port(80),
            ServiceAttr::Netmask(u32::from_ne_bytes([255, 255, 255, 0])),
        ])],
    );
    #[rustfmt::skip]
    let expected: Vec<u8> = [
        &[1u8, 1, 0, 0][..],                 // genl: NEW_SERVICE, version 1
        &[56, 0, 1, 0],                      // IPVS_CMD_ATTR_SERVICE (nested, no flag), len 56
        &[6, 0, 1, 0, 2, 0, 0, 0],           // AF = AF_INET (+2 pad)
        &[6, 0, 2, 0, 6, 0, 0, 0],           // PROTOCOL = TCP (+2 pad)
        &[20, 0, 3, 0, 10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], // ADDR (16 bytes)
        &[6, 0, 4, 0, 0, 80, 0, 0],          // PORT = 80 big-endian
        &[8, 0, 9, 0, 255, 255, 255, 0],     // NETMASK 255.255.255.0, network order
    ].concat();
    assert_eq!(msg.to_vec(), expected);
    assert_eq!(IpvsMessage::parse(&expected).unwrap(), msg);
}

#[test]
fn unknown_attributes_survive() {
    // A future IPVS_SVC_ATTR_* (99) inside a service, and a future top-level attribute.
    let bytes = [
        2u8, 1, 0, 0, 20, 0, 1, 0, 6, 0, 1, 0, 10, 0, 0, 0, 5, 0, 99, 0, 7, 0, 0, 0, 8, 0, 42, 0,
        1, 2, 3, 4,
    ];
    let msg = IpvsMessage::parse(&bytes).unwrap();
    assert_eq!(
        msg.attrs,
        vec![
            CmdAttr::Service(vec![
                ServiceAttr::Af(10),
                ServiceAttr::Other(RawNla {
                    kind: 99,
                    value: vec![7]
                })
            ]),
            CmdAttr::Other(RawNla {
                kind: 42,
                value: vec![1, 2, 3, 4]
            }),
        ]
    );
    assert_eq!(msg.to_vec(), bytes);
}

#[test]
fn hostile_inputs_are_errors() {
    // attribute length beyond the buffer
    assert!(matches!(
        IpvsMessage::parse(&[1, 1, 0, 0, 200, 0, 1, 0]),
        Err(wire::Error::BadLength { .. })
    ));
    // known attribute with the wrong size: a 3-byte port
    let e = IpvsMessage::parse(&[1, 1, 0, 0, 12, 0, 1, 0x80, 7, 0, 4, 0, 0, 80, 1, 0]).unwrap_err();
    assert!(e.to_string().contains("IPVS_SVC_ATTR_PORT"), "{e}");
    // a netlink header claiming more than it has
    assert!(wire::parse_stream(&[255, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).is_err());
    // NLMSG_ERROR without its code
    assert!(wire::parse_stream(&[16, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).is_err());
}

/// Bytes the Debian 6.1 kernel sent for `IPVS_CMD_GET_SERVICE` (dump), captured in the VM by
/// `tests/vm.rs::kernel_reply_bytes_reemit_identically`: every message parses, and re-emits
/// byte for byte.
#[test]
fn known_answer_kernel_service_dump() {
    let hex = include_str!("fixtures/kernel_get_service_dump.hex").trim();
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    let msgs = wire::parse_stream(&bytes).unwrap();
    assert_eq!(msgs.len(), 7);
    let mut out = Vec::new();
    for m in &msgs {
        m.encode_into(&mut out).unwrap();
        let NetlinkPayload::Genl(g) = &m.payload else {
            panic!("{m:?}")
        };
        let mut raw = vec![g.cmd, g.version, 0, 0];
        raw.extend_from_slice(&g.attrs);
        let parsed = IpvsMessage::parse(&raw).unwrap();
        assert_eq!(parsed.to_vec(), raw);
    }
    assert_eq!(out, bytes, "framing re-emits identically");
    // The first entry: TCP [2001:db8::1]:443 wlc, persistent 60, prefix 64.
    let NetlinkPayload::Genl(g) = &msgs[0].payload else {
        panic!()
    };
    let m = IpvsMessage::parse_attrs(IpvsCmd::from(g.cmd), g.version, &g.attrs).unwrap();
    let CmdAttr::Service(s) = &m.attrs[0] else {
        panic!()
    };
    let e = ipvs_netlink::ServiceEntry::from_attrs(s).unwrap();
    assert_eq!(e.service.key().to_string(), "TCP [2001:db8::1]:443");
    assert_eq!(e.service.scheduler().as_str(), "wlc");
    assert_eq!(e.service.timeout(), 60);
    assert_eq!(e.service.netmask(), ipvs_netlink::Netmask::V6(64));
}

/// Every reply captured from the kernel in the VM (service and destination dumps with
/// stats and stats64, GET_INFO, GET_CONFIG) parses and re-emits byte for byte.
#[test]
fn known_answer_every_kernel_capture_reemits_identically() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let hex = std::fs::read_to_string(&path).unwrap();
        let hex = hex.trim();
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        let mut out = Vec::new();
        for m in wire::parse_stream(&bytes).unwrap() {
            m.encode_into(&mut out).unwrap();
            if let NetlinkPayload::Genl(g) = &m.payload {
                let mut raw = vec![g.cmd, g.version, 0, 0];
                raw.extend_from_slice(&g.attrs);
                assert_eq!(IpvsMessage::parse(&raw).unwrap().to_vec(), raw, "{path:?}");
                n += 1;
            }
        }
        assert_eq!(out, bytes, "{path:?}");
    }
    assert!(n >= 7 + 5 + 2, "only {n} messages in {dir}");
}

#[test]
fn known_answer_kernel_dest_dump_fields() {
    let hex = include_str!("fixtures/kernel_get_dest_dump.hex").trim();
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    let mut dests = Vec::new();
    for m in wire::parse_stream(&bytes).unwrap() {
        let NetlinkPayload::Genl(g) = &m.payload else {
            continue;
        };
        let msg = IpvsMessage::parse_attrs(IpvsCmd::from(g.cmd), g.version, &g.attrs).unwrap();
        assert_eq!(msg.cmd, IpvsCmd::NewDest);
        let CmdAttr::Dest(d) = &msg.attrs[0] else {
            panic!()
        };
        dests.push(
            ipvs_netlink::DestEntry::from_attrs(d, ipvs_netlink::Family::V4)
                .unwrap()
                .dest,
        );
    }
    // The five destinations of TCP 10.0.0.1:80 in tests/vm.rs's catalogue.
    let mut addrs: Vec<String> = dests.iter().map(|d| d.addr().to_string()).collect();
    addrs.sort();
    assert_eq!(
        addrs,
        [
            "10.0.0.2:80",
            "10.0.0.3:80",
            "10.0.0.4:80",
            "10.0.0.5:80",
            "10.0.0.6:80"
        ]
    );
    let gue = dests
        .iter()
        .find(|d| d.addr().to_string() == "10.0.0.4:80")
        .unwrap();
    assert_eq!(
        gue.forward(),
        ipvs_netlink::ForwardMethod::Tunnel(ipvs_netlink::TunnelType::Gue {
            port: 6080,
            flags: 1
        })
    );
    let thr = dests
        .iter()
        .find(|d| d.addr().to_string() == "10.0.0.3:80")
        .unwrap();
    assert_eq!((thr.upper_threshold(), thr.lower_threshold()), (10, 5));
}
