//! Known-answer tests from keepalived 2.2.7 captures (`tests/data/vectors.json`, decoded by
//! tshark; also readable as text in the vrrp-interop harness): every captured advert parses to
//! tshark's field values and re-emits byte for byte, every gratuitous ARP and unsolicited NA is
//! what `wire` builds, a `VirtualRouter` configured like keepalived sends the same bytes, takes
//! keepalived's, and refuses mutated real packets with the right error and counter.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::OnceLock;
use std::time::Duration;

use serde::Deserialize;
use vrrp_proto::wire::{
    self, AddrFamily, Auth, Ctx, EthernetAddress, Packet, Repr, V3Checksum, Version,
};
use vrrp_proto::{
    Action, Announce, Config, Instant, RecvError, RecvMeta, State, Stats, VirtualRouter,
};

#[derive(Debug, Deserialize)]
struct File {
    vectors: Vec<Vector>,
}

#[derive(Debug, Deserialize)]
struct Vector {
    file: String,
    frame: u32,
    kind: String,
    description: String,
    ethernet_hex: String,
    ip_hex: Option<String>,
    vrrp_hex: Option<String>,
    #[serde(default)]
    tshark: BTreeMap<String, String>,
}

fn vectors() -> &'static [Vector] {
    static V: OnceLock<Vec<Vector>> = OnceLock::new();
    V.get_or_init(|| {
        let text = include_str!("data/vectors.json");
        serde_json::from_str::<File>(text).unwrap().vectors
    })
}

fn hex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// The captured frame `frame` of `file` (e.g. `"v2-pass"`).
fn find(file: &str, frame: u32) -> &'static Vector {
    vectors()
        .iter()
        .find(|v| v.file == format!("{file}.pcap") && v.frame == frame)
        .unwrap_or_else(|| panic!("no frame {frame} in {file}"))
}

/// The IP header facts of a captured VRRP packet, and its payload.
struct Ip {
    src: IpAddr,
    dst: IpAddr,
    ttl: u8,
    payload: Vec<u8>,
}

/// Decodes the IPv4 or IPv6 header of `ip_hex` (no extension headers in these captures).
fn ip_header(v: &Vector) -> Ip {
    let b = hex(v.ip_hex.as_deref().unwrap());
    match b[0] >> 4 {
        4 => {
            let ihl = usize::from(b[0] & 0x0f) * 4;
            assert_eq!(b[9], wire::IPPROTO_VRRP);
            assert_eq!(usize::from(u16::from_be_bytes([b[2], b[3]])), b.len());
            Ip {
                src: IpAddr::from(<[u8; 4]>::try_from(&b[12..16]).unwrap()),
                dst: IpAddr::from(<[u8; 4]>::try_from(&b[16..20]).unwrap()),
                ttl: b[8],
                payload: b[ihl..].to_vec(),
            }
        }
        6 => {
            assert_eq!(b[6], wire::IPPROTO_VRRP);
            assert_eq!(usize::from(u16::from_be_bytes([b[4], b[5]])), b.len() - 40);
            Ip {
                src: IpAddr::from(<[u8; 16]>::try_from(&b[8..24]).unwrap()),
                dst: IpAddr::from(<[u8; 16]>::try_from(&b[24..40]).unwrap()),
                ttl: b[7],
                payload: b[40..].to_vec(),
            }
        }
        n => panic!("IP version {n}"),
    }
}

fn ts<'a>(v: &'a Vector, field: &str) -> &'a str {
    v.tshark
        .get(field)
        .unwrap_or_else(|| panic!("{} frame {}: no tshark {field}", v.file, v.frame))
}

fn ts_u(v: &Vector, field: &str) -> u64 {
    ts(v, field).parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

// ---- the wire layer against tshark ----

#[test]
fn the_capture_set_is_complete() {
    let count = |k: &str| vectors().iter().filter(|v| v.kind == k).count();
    assert_eq!(count("vrrp"), 20);
    assert_eq!(count("arp"), 8);
    assert_eq!(count("na"), 2);
    assert_eq!(vectors().len(), 30);
}

#[test]
fn every_captured_advert_parses_to_tsharks_fields_and_reemits_byte_for_byte() {
    for v in vectors().iter().filter(|v| v.kind == "vrrp") {
        let what = format!("{} frame {} ({})", v.file, v.frame, v.description);
        let h = ip_header(v);
        let msg = hex(v.vrrp_hex.as_deref().unwrap());
        assert_eq!(h.payload, msg, "{what}: vrrp_hex is the IP payload");
        let v6 = h.src.is_ipv6();
        let (src, dst, ttl) = if v6 {
            ("ipv6.src", "ipv6.dst", "ipv6.hlim")
        } else {
            ("ip.src", "ip.dst", "ip.ttl")
        };
        assert_eq!(h.src, ip(ts(v, src)), "{what}");
        assert_eq!(h.dst, ip(ts(v, dst)), "{what}");
        assert_eq!(u64::from(h.ttl), ts_u(v, ttl), "{what}");
        assert_eq!(h.ttl, 255, "{what}");

        let ctx = Ctx::new(h.src, h.dst);
        let packet = Packet::new_checked(&msg[..]).unwrap();
        let repr = Repr::parse(&packet, &ctx).unwrap_or_else(|e| panic!("{what}: {e}"));

        assert_eq!(
            u64::from(repr.version.number()),
            ts_u(v, "vrrp.version"),
            "{what}"
        );
        assert_eq!(u64::from(packet.kind()), ts_u(v, "vrrp.type"), "{what}");
        assert_eq!(u64::from(repr.vrid), ts_u(v, "vrrp.virt_rtr_id"), "{what}");
        assert_eq!(u64::from(repr.priority), ts_u(v, "vrrp.prio"), "{what}");
        assert_eq!(
            repr.addrs.len() as u64,
            ts_u(v, "vrrp.addr_count"),
            "{what}"
        );
        assert_eq!(
            format!("{:#06x}", packet.checksum()),
            ts(v, "vrrp.checksum"),
            "{what}"
        );
        assert_eq!(
            ts(v, "vrrp.checksum.status"),
            "1",
            "{what}: tshark says good"
        );
        let addrs_field = if v6 { "vrrp.ipv6_addr" } else { "vrrp.ip_addr" };
        let want: Vec<IpAddr> = ts(v, addrs_field).split(',').map(ip).collect();
        assert_eq!(repr.addrs.iter().collect::<Vec<_>>(), want, "{what}");
        assert_eq!(repr.addrs.family(), AddrFamily::of(&h.src), "{what}");
        match repr.version {
            Version::V2 => {
                assert_eq!(
                    u64::from(repr.auth.type_code()),
                    ts_u(v, "vrrp.auth_type"),
                    "{what}"
                );
                assert_eq!(
                    u64::from(repr.adver_int),
                    ts_u(v, "vrrp.adver_int") * 100,
                    "{what}"
                );
                match (&repr.auth, v.tshark.get("vrrp.auth_string")) {
                    (Auth::None, None) => {}
                    (Auth::Simple(pw), Some(s)) => {
                        let end = pw.iter().position(|&b| b == 0).unwrap_or(8);
                        assert_eq!(&pw[..end], s.as_bytes(), "{what}");
                    }
                    (a, s) => panic!("{what}: auth {a:?} vs tshark {s:?}"),
                }
            }
            Version::V3 => {
                assert_eq!(repr.auth, Auth::None, "{what}");
                assert_eq!(ts(v, "vrrp.reserved_mbz"), "0", "{what}");
                assert_eq!(
                    u64::from(repr.adver_int),
                    ts_u(v, "vrrp.short_adver_int"),
                    "{what}"
                );
            }
        }

        let mut out = vec![0u8; repr.buffer_len()];
        assert_eq!(repr.emit(&mut out, &ctx), Ok(msg.len()), "{what}");
        assert_eq!(out, msg, "{what}: re-emitted bytes differ");
    }
}

#[test]
fn keepalived_v3_ipv4_uses_the_pseudo_header_checksum() {
    // keepalived's default; a peer configured for the v2-style (message only) checksum
    // refuses it, and `Either` takes both.
    let v = find("v3-ipv4", 1);
    let h = ip_header(v);
    let p = Packet::new_checked(&h.payload[..]).unwrap();
    let ctx = Ctx::new(h.src, h.dst);
    let only = ctx.with_v3_checksum(V3Checksum::MessageOnly);
    assert!(matches!(
        Repr::parse(&p, &only),
        Err(wire::Error::Checksum { stored: 0x74fd, .. })
    ));
    assert!(Repr::parse(&p, &ctx.with_v3_checksum(V3Checksum::Either)).is_ok());
    // v2 never uses the pseudo-header.
    let v = find("v2-noauth", 1);
    let h = ip_header(v);
    let p = Packet::new_checked(&h.payload[..]).unwrap();
    assert_eq!(
        p.compute_checksum(&Ctx::new(h.src, h.dst), false),
        Ok(0x7003)
    );
}

const LB1_MAC: EthernetAddress = [0x02, 0x99, 0, 0, 0, 0x0b];
const LB2_MAC: EthernetAddress = [0x02, 0x99, 0, 0, 0, 0x0c];

#[test]
fn every_captured_gratuitous_arp_is_what_wire_builds() {
    let vip = Ipv4Addr::new(10, 99, 0, 100);
    for v in vectors().iter().filter(|v| v.kind == "arp") {
        let frame = hex(&v.ethernet_hex);
        let mac = if frame[6..12] == LB1_MAC {
            LB1_MAC
        } else {
            assert_eq!(frame[6..12], LB2_MAC, "{} frame {}", v.file, v.frame);
            LB2_MAC
        };
        let mut buf = [0u8; 64];
        let n = wire::gratuitous_arp(mac, vip, &mut buf).unwrap();
        assert_eq!(&buf[..n], &frame[..], "{} frame {}", v.file, v.frame);
    }
}

#[test]
fn every_captured_unsolicited_na_is_what_wire_builds_without_the_router_flag() {
    let vip: Ipv6Addr = "fe80::99:100".parse().unwrap();
    for v in vectors().iter().filter(|v| v.kind == "na") {
        let frame = hex(&v.ethernet_hex);
        assert_eq!(ip(ts(v, "ipv6.src")), IpAddr::V6(vip));
        assert_eq!(ip(ts(v, "ipv6.dst")), ip("ff02::1"));
        assert_eq!(ts(v, "ipv6.hlim"), "255");
        let mac = if frame[6..12] == LB1_MAC {
            LB1_MAC
        } else {
            LB2_MAC
        };
        let mut buf = [0u8; 128];
        let n = wire::unsolicited_na(mac, vip, false, &mut buf).unwrap();
        assert_eq!(&buf[..n], &frame[..], "{} frame {}", v.file, v.frame);
        // With the RFC 5798 Router flag the frame differs in the flags and the checksum only.
        let n = wire::unsolicited_na(mac, vip, true, &mut buf).unwrap();
        let diff: Vec<usize> = (0..n).filter(|&i| buf[i] != frame[i]).collect();
        assert_eq!(diff, [56, 57, 58], "{} frame {}", v.file, v.frame);
    }
}

// ---- a VirtualRouter configured like the capture ----

/// One capture scenario: the frames of each side and how keepalived was configured.
struct Scenario {
    file: &'static str,
    version: Version,
    password: Option<&'static [u8]>,
    interval: Duration,
    vips: &'static [&'static str],
    v6: bool,
    /// lb1 master advert, lb1 announcement, lb1 priority 0, lb2 master advert, lb2
    /// announcement, lb2 priority 0.
    frames: [u32; 6],
}

const SCENARIOS: [Scenario; 5] = [
    Scenario {
        file: "v2-noauth",
        version: Version::V2,
        password: None,
        interval: Duration::from_secs(1),
        vips: &["10.99.0.100"],
        v6: false,
        frames: [1, 2, 9, 10, 11, 20],
    },
    Scenario {
        file: "v2-pass",
        version: Version::V2,
        password: Some(b"hapri51"),
        interval: Duration::from_secs(1),
        vips: &["10.99.0.100"],
        v6: false,
        frames: [1, 2, 9, 10, 11, 20],
    },
    Scenario {
        file: "v3-ipv4",
        version: Version::V3,
        password: None,
        interval: Duration::from_millis(100),
        vips: &["10.99.0.100"],
        v6: false,
        frames: [1, 2, 10, 11, 12, 42],
    },
    Scenario {
        file: "v3-ipv4-3vips",
        version: Version::V3,
        password: None,
        interval: Duration::from_secs(1),
        vips: &["10.99.0.100", "10.99.0.101", "10.99.0.102"],
        v6: false,
        frames: [1, 2, 19, 20, 21, 40],
    },
    Scenario {
        file: "v3-ipv6",
        version: Version::V3,
        password: None,
        interval: Duration::from_secs(1),
        vips: &["fe80::99:100", "fd99:0:0:99::100"],
        v6: true,
        frames: [1, 2, 14, 15, 16, 30],
    },
];

impl Scenario {
    /// The configuration of lb1 (`lb2 == false`, priority 100) or lb2 (priority 99).
    fn config(&self, lb2: bool) -> Config {
        let (primary, mac, prio) = match (self.v6, lb2) {
            (false, false) => ("10.99.0.11", LB1_MAC, 100),
            (false, true) => ("10.99.0.12", LB2_MAC, 99),
            (true, false) => ("fe80::99:ff:fe00:b", LB1_MAC, 100),
            (true, true) => ("fe80::99:ff:fe00:c", LB2_MAC, 99),
        };
        let mut b = Config::builder(51, ip(primary))
            .version(self.version)
            .priority(prio)
            .advert_interval(self.interval)
            .mac(mac)
            .na_router_flag(false)
            .announce(Announce {
                repeat: 2,
                ..Announce::default()
            });
        for v in self.vips {
            b = b.vip(ip(v));
        }
        if let Some(pw) = self.password {
            b = b.password(pw);
        }
        b.build().unwrap()
    }

    fn vector(&self, i: usize) -> &'static Vector {
        find(self.file, self.frames[i])
    }

    /// A router of side `lb2` in Backup after startup at time zero.
    fn backup(&self, lb2: bool) -> VirtualRouter {
        let mut r = VirtualRouter::new(self.config(lb2));
        r.startup(Instant::ZERO);
        while r.poll_action().is_some() {}
        assert_eq!(r.state(), State::Backup);
        r
    }

    /// A router of side `lb2` that has become Master by Master_Down_Timer, actions drained.
    fn master(&self, lb2: bool) -> VirtualRouter {
        let mut r = self.backup(lb2);
        let t = r.poll_timeout().unwrap();
        r.handle_timeout(t);
        while r.poll_action().is_some() {}
        assert_eq!(r.state(), State::Master);
        r
    }
}

/// What a router sent: adverts (with their IP facts) and announcement frames, in order.
#[derive(Default)]
struct Sent {
    adverts: Vec<(IpAddr, IpAddr, u8, Vec<u8>)>,
    frames: Vec<Vec<u8>>,
}

fn sent(r: &mut VirtualRouter) -> Sent {
    let mut s = Sent::default();
    while let Some(a) = r.poll_action() {
        match a {
            Action::SendAdvert(t) => s.adverts.push((t.src, t.dst, t.ttl, t.payload.to_vec())),
            Action::SendGratuitousArp { frame, .. } | Action::SendUnsolicitedNa { frame, .. } => {
                s.frames.push(frame.to_vec());
            }
            _ => {}
        }
    }
    s
}

#[test]
fn a_router_configured_like_keepalived_sends_keepalived_s_bytes() {
    for sc in &SCENARIOS {
        for lb2 in [false, true] {
            let what = format!("{} {}", sc.file, if lb2 { "lb2" } else { "lb1" });
            let base = if lb2 { 3 } else { 0 };
            let mut r = sc.backup(lb2);
            let t = r.poll_timeout().unwrap();
            r.handle_timeout(t);
            let s = sent(&mut r);
            assert_eq!(r.state(), State::Master, "{what}");

            // The first advert: payload and IP facts as captured.
            let want = ip_header(sc.vector(base));
            let (src, dst, ttl, payload) = &s.adverts[0];
            assert_eq!((*src, *dst, *ttl), (want.src, want.dst, want.ttl), "{what}");
            assert_eq!(payload, &want.payload, "{what}: first advert");
            // The first announcement (the first VIP's GARP or NA) as captured.
            assert_eq!(
                s.frames[0],
                hex(&sc.vector(base + 1).ethernet_hex),
                "{what}: first announcement"
            );
            assert_eq!(s.frames.len(), 2 * sc.vips.len(), "{what}: repeat 2");

            // The periodic advert is the same message.
            let t = r.poll_timeout().unwrap();
            r.handle_timeout(t);
            let s = sent(&mut r);
            assert_eq!(s.adverts[0].3, want.payload, "{what}: periodic advert");

            // Shutdown: the priority-0 advert as captured.
            r.shutdown(t);
            let s = sent(&mut r);
            let want = ip_header(sc.vector(base + 2));
            assert_eq!(s.adverts.len(), 1, "{what}");
            assert_eq!(s.adverts[0].3, want.payload, "{what}: priority 0");
            assert_eq!(r.state(), State::Initialize, "{what}");
        }
    }
}

#[test]
fn a_router_takes_keepalived_s_adverts_from_either_side() {
    for sc in &SCENARIOS {
        // lb1 (priority 100) in Backup sees lb2's (99) adverts: valid, but lower, so with
        // preemption they do not reset its Master_Down_Timer.
        let mut r = sc.backup(false);
        let deadline = r.poll_timeout();
        let lb2 = ip_header(sc.vector(3));
        let now = Instant::from_millis(10);
        let meta = RecvMeta::new(lb2.src, lb2.dst, lb2.ttl);
        assert_eq!(
            r.handle_packet(now, meta, &lb2.payload),
            Ok(()),
            "{}",
            sc.file
        );
        assert_eq!(r.poll_timeout(), deadline, "{}", sc.file);
        assert_eq!(r.stats().adverts_received, 1);
        // lb2's release starts Skew_Time.
        let zero = ip_header(sc.vector(5));
        let meta = RecvMeta::new(zero.src, zero.dst, zero.ttl);
        assert_eq!(
            r.handle_packet(now, meta, &zero.payload),
            Ok(()),
            "{}",
            sc.file
        );
        assert_eq!(r.poll_timeout(), Some(now + r.skew_time()), "{}", sc.file);
        assert_eq!(r.stats().priority_zero_received, 1);

        // lb2 (99) in Backup follows lb1's (100) adverts: the timer restarts, lb1 is master.
        let mut r = sc.backup(true);
        let lb1 = ip_header(sc.vector(0));
        let now = Instant::from_millis(500);
        let meta = RecvMeta::new(lb1.src, lb1.dst, lb1.ttl);
        assert_eq!(
            r.handle_packet(now, meta, &lb1.payload),
            Ok(()),
            "{}",
            sc.file
        );
        assert_eq!(r.master(), Some(lb1.src), "{}", sc.file);
        assert_eq!(r.master_adver_interval(), sc.interval, "{}", sc.file);
        assert_eq!(
            r.poll_timeout(),
            Some(now + r.master_down_interval()),
            "{}",
            sc.file
        );

        // lb1 as Master hears lb2 (lower): it stays and answers at once with an advert and
        // re-announcements, as keepalived does; lb2's release makes it advertise.
        let mut r = sc.master(false);
        let meta = RecvMeta::new(lb2.src, lb2.dst, lb2.ttl);
        assert_eq!(
            r.handle_packet(now, meta, &lb2.payload),
            Ok(()),
            "{}",
            sc.file
        );
        assert_eq!(r.state(), State::Master);
        assert_eq!(sent(&mut r).adverts.len(), 1, "{}", sc.file);
        let meta = RecvMeta::new(zero.src, zero.dst, zero.ttl);
        assert_eq!(
            r.handle_packet(now, meta, &zero.payload),
            Ok(()),
            "{}",
            sc.file
        );
        assert_eq!(sent(&mut r).adverts.len(), 1, "{}", sc.file);

        // lb2 as Master hears lb1 (higher): it yields.
        let mut r = sc.master(true);
        let meta = RecvMeta::new(lb1.src, lb1.dst, lb1.ttl);
        assert_eq!(
            r.handle_packet(now, meta, &lb1.payload),
            Ok(()),
            "{}",
            sc.file
        );
        assert_eq!(r.state(), State::Backup, "{}", sc.file);
    }
}

// ---- refusals, with mutated real packets ----

/// A mutated copy of a captured packet.
struct Case {
    name: &'static str,
    meta: RecvMeta,
    bytes: Vec<u8>,
    want: RecvError,
    /// The one counter that must move.
    counter: fn(&mut Stats) -> &mut u64,
}

/// Rewrites the checksum of `bytes` for `meta`, as a sender would after the mutation.
fn refill(meta: &RecvMeta, bytes: &mut [u8]) {
    let ctx = Ctx::new(meta.src, meta.dst);
    Packet::new_unchecked(bytes).fill_checksum(&ctx).unwrap();
}

/// Cases for the v2-pass lb1 router, cut from lb2's captured advert (and others).
fn v2_cases() -> Vec<Case> {
    let lb2 = ip_header(find("v2-pass", 10));
    let meta = RecvMeta::new(lb2.src, lb2.dst, 255);
    let base = lb2.payload.clone();
    let mut cases = Vec::new();
    let mut case = |name, meta: RecvMeta, f: &dyn Fn(&mut Vec<u8>), fix: bool, want, counter| {
        let mut bytes = base.clone();
        f(&mut bytes);
        if fix {
            refill(&meta, &mut bytes);
        }
        cases.push(Case {
            name,
            meta,
            bytes,
            want,
            counter,
        });
    };
    let ttl254 = RecvMeta::new(lb2.src, lb2.dst, 254);
    case(
        "ttl 254",
        ttl254,
        &|_| {},
        false,
        RecvError::IpTtl(254),
        |s| &mut s.ip_ttl_errors,
    );
    case(
        "bad checksum",
        meta,
        &|b| b[7] ^= 1,
        false,
        RecvError::Wire(wire::Error::Checksum {
            stored: 0xfcf8,
            computed: 0xfcf9,
        }),
        |s| &mut s.checksum_errors,
    );
    case(
        "wrong vrid",
        meta,
        &|b| b[1] = 52,
        true,
        RecvError::VrId {
            expected: 51,
            got: 52,
        },
        |s| &mut s.vrid_errors,
    );
    case(
        "wrong password",
        meta,
        &|b| b[12..20].copy_from_slice(b"hapri52\0"),
        true,
        RecvError::AuthFailure,
        |s| &mut s.auth_failures,
    );
    case(
        "auth type 0 against PASS",
        meta,
        &|b| {
            b[4] = 0;
            b[12..20].fill(0);
        },
        true,
        RecvError::AuthTypeMismatch {
            expected: 1,
            got: 0,
        },
        |s| &mut s.auth_type_mismatch,
    );
    case(
        "unknown auth type 3",
        meta,
        &|b| b[4] = 3,
        true,
        RecvError::Wire(wire::Error::AuthType(3)),
        |s| &mut s.invalid_auth_type,
    );
    case(
        "IP AH auth type 2",
        meta,
        &|b| b[4] = 2,
        true,
        RecvError::Wire(wire::Error::IpAhAuth),
        |s| &mut s.invalid_auth_type,
    );
    case(
        "interval 2 s against 1 s",
        meta,
        &|b| b[5] = 2,
        true,
        RecvError::AdvInterval {
            expected: 100,
            got: 200,
        },
        |s| &mut s.adv_interval_errors,
    );
    case(
        "truncated",
        meta,
        &|b| {
            b.pop();
        },
        false,
        RecvError::Wire(wire::Error::Truncated {
            needed: 20,
            got: 19,
        }),
        |s| &mut s.packet_length_errors,
    );
    case(
        "shorter than the header",
        meta,
        &|b| b.truncate(5),
        false,
        RecvError::Wire(wire::Error::Truncated { needed: 8, got: 5 }),
        |s| &mut s.packet_length_errors,
    );
    case(
        "trailing byte",
        meta,
        &|b| b.push(0),
        false,
        RecvError::Wire(wire::Error::Length {
            expected: 20,
            got: 21,
        }),
        |s| &mut s.packet_length_errors,
    );
    case(
        "version 4",
        meta,
        &|b| b[0] = 0x41,
        true,
        RecvError::Wire(wire::Error::Version(4)),
        |s| &mut s.version_errors,
    );
    case(
        "type 2",
        meta,
        &|b| b[0] = 0x22,
        true,
        RecvError::Wire(wire::Error::Kind(2)),
        |s| &mut s.invalid_type,
    );
    case(
        "count 0",
        meta,
        &|b| {
            b[3] = 0;
            b.drain(8..12);
        },
        true,
        RecvError::Wire(wire::Error::NoAddress),
        |s| &mut s.address_list_errors,
    );
    case(
        "another VIP",
        meta,
        &|b| b[11] = 101,
        true,
        RecvError::AddressList,
        |s| &mut s.address_list_errors,
    );
    let lb1 = ip_header(find("v2-pass", 1));
    let own = RecvMeta::new(lb1.src, lb1.dst, 255);
    cases.push(Case {
        name: "own advert looped back",
        meta: own,
        bytes: lb1.payload,
        want: RecvError::OwnAdvert,
        counter: |s| &mut s.own_adverts,
    });
    // A valid VRRPv3 advert (keepalived's) on a v2 router.
    let v3 = ip_header(find("v3-ipv4-3vips", 20));
    cases.push(Case {
        name: "VRRPv3 on a v2 router",
        meta: RecvMeta::new(v3.src, v3.dst, 255),
        bytes: v3.payload,
        want: RecvError::Version {
            expected: 2,
            got: 3,
        },
        counter: |s| &mut s.version_errors,
    });
    // An IPv6 source with an IPv4 destination.
    let mixed = RecvMeta::new(ip("fe80::99:ff:fe00:c"), lb2.dst, 255);
    cases.push(Case {
        name: "mixed families",
        meta: mixed,
        bytes: base,
        want: RecvError::Wire(wire::Error::AddressFamily),
        counter: |s| &mut s.address_family_errors,
    });
    cases
}

/// Cases for the v3-ipv4 lb1 router (10 cs), cut from lb2's captured advert.
fn v3_cases() -> Vec<Case> {
    let lb2 = ip_header(find("v3-ipv4", 11));
    let meta = RecvMeta::new(lb2.src, lb2.dst, 255);
    let fixed = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = lb2.payload.clone();
        f(&mut b);
        refill(&meta, &mut b);
        b
    };
    vec![
        Case {
            name: "v3 interval 0",
            meta,
            bytes: fixed(&|b| b[5] = 0),
            want: RecvError::AdvInterval {
                expected: 10,
                got: 0,
            },
            counter: |s| &mut s.adv_interval_errors,
        },
        Case {
            name: "VRRPv2 on a v3 router",
            meta,
            bytes: ip_header(find("v2-noauth", 10)).payload,
            want: RecvError::Version {
                expected: 3,
                got: 2,
            },
            counter: |s| &mut s.version_errors,
        },
        Case {
            name: "v3 message-only checksum",
            meta,
            bytes: {
                let mut b = lb2.payload.clone();
                let ctx = Ctx::new(meta.src, meta.dst).with_v3_checksum(V3Checksum::MessageOnly);
                Packet::new_unchecked(&mut b[..])
                    .fill_checksum(&ctx)
                    .unwrap();
                b
            },
            want: RecvError::Wire(wire::Error::Checksum {
                stored: 0x60fa,
                computed: 0x75fc,
            }),
            counter: |s| &mut s.checksum_errors,
        },
        Case {
            name: "hop limit 1",
            meta: RecvMeta::new(lb2.src, lb2.dst, 1),
            bytes: lb2.payload.clone(),
            want: RecvError::IpTtl(1),
            counter: |s| &mut s.ip_ttl_errors,
        },
    ]
}

/// Feeds every case to `r`: each is refused with its own error, bumps exactly its counter by
/// one, and leaves state, deadline, master and the action queue as they were.
fn refuse_all(r: &mut VirtualRouter, cases: &[Case]) {
    let now = Instant::from_millis(20);
    for c in cases {
        let state = r.state();
        let deadline = r.poll_timeout();
        let master = r.master();
        let before = *r.stats();
        let res = r.handle_packet(now, c.meta, &c.bytes);
        assert_eq!(res, Err(c.want), "{}", c.name);
        let mut want = before;
        *(c.counter)(&mut want) += 1;
        assert_eq!(*r.stats(), want, "{}: exactly its counter moves", c.name);
        assert_eq!(r.state(), state, "{}", c.name);
        assert_eq!(r.poll_timeout(), deadline, "{}", c.name);
        assert_eq!(r.master(), master, "{}", c.name);
        assert!(r.poll_action().is_none(), "{}", c.name);
    }
}

#[test]
fn mutated_real_packets_are_refused_with_their_own_error_and_counter() {
    let v2 = &SCENARIOS[1];
    let cases = v2_cases();
    // The error checks are sound: the unmutated packet is accepted.
    let lb2 = ip_header(find("v2-pass", 10));
    let mut r = v2.backup(false);
    let meta = RecvMeta::new(lb2.src, lb2.dst, 255);
    assert_eq!(r.handle_packet(Instant::ZERO, meta, &lb2.payload), Ok(()));
    refuse_all(&mut v2.backup(false), &cases);
    refuse_all(&mut v2.master(false), &cases);

    let v3 = &SCENARIOS[2];
    let cases = v3_cases();
    refuse_all(&mut v3.backup(false), &cases);
    refuse_all(&mut v3.master(false), &cases);
}

#[test]
fn an_address_owners_advert_with_another_address_list_is_taken_and_counted() {
    // RFC 5798 §7.1: a mismatched list is dropped unless the priority is 255.
    let sc = &SCENARIOS[1];
    let lb2 = ip_header(find("v2-pass", 10));
    let meta = RecvMeta::new(lb2.src, lb2.dst, 255);
    let mut b = lb2.payload.clone();
    b[11] = 101;
    b[2] = 255;
    refill(&meta, &mut b);
    let mut r = sc.master(false);
    let before = *r.stats();
    assert_eq!(r.handle_packet(Instant::ZERO, meta, &b), Ok(()));
    assert_eq!(
        r.stats().address_list_errors,
        before.address_list_errors + 1
    );
    assert_eq!(r.stats().adverts_received, before.adverts_received + 1);
    // ... and the owner's priority wins.
    assert_eq!(r.state(), State::Backup);
}

#[test]
fn errors_render_with_their_numbers() {
    let e = RecvError::Wire(wire::Error::Truncated {
        needed: 20,
        got: 19,
    });
    assert!(e.to_string().contains("needed 20 bytes, got 19"), "{e}");
    let e = RecvError::AdvInterval {
        expected: 100,
        got: 200,
    };
    assert!(e.to_string().contains("200"), "{e}");
}
