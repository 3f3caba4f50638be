//! The hot paths: parse + validate and emit of the captured keepalived adverts, a Backup
//! taking its master's advert, a Master sending its own.
//!
//! `cargo bench -p vrrp-proto --bench wire -- --warm-up-time 1 --measurement-time 3`
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::net::IpAddr;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use vrrp_proto::wire::{Ctx, Packet, Repr, Version};
use vrrp_proto::{Announce, Config, Instant, RecvMeta, VirtualRouter};

/// A captured advert (keepalived 2.2.7, `tests/data/vectors.json`) and its IP facts.
struct Capture {
    name: &'static str,
    src: &'static str,
    dst: &'static str,
    hex: &'static str,
}

/// lb2's MASTER adverts (priority 99) from the captures.
const CAPTURES: [Capture; 3] = [
    Capture {
        name: "v2-pass",
        src: "10.99.0.12",
        dst: "224.0.0.18",
        hex: "213363010101fcf90a6300646861707269353100",
    },
    Capture {
        name: "v3-ipv4",
        src: "10.99.0.12",
        dst: "224.0.0.18",
        hex: "31336301000a75fc0a630064",
    },
    Capture {
        name: "v3-ipv6",
        src: "fe80::99:ff:fe00:c",
        dst: "ff02::12",
        hex: "3133630200646e46fe800000000000000000000000990100fd990000000000990000000000000100",
    },
];

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

impl Capture {
    fn bytes(&self) -> Vec<u8> {
        hex(self.hex)
    }
    fn ctx(&self) -> Ctx {
        Ctx::new(ip(self.src), ip(self.dst))
    }
    fn meta(&self) -> RecvMeta {
        RecvMeta::new(ip(self.src), ip(self.dst), 255)
    }
    /// lb1 as keepalived was configured for this capture (VRID 51), with priority `prio`.
    fn lb1(&self, prio: u8) -> Config {
        let (primary, interval, vips, version): (&str, u64, &[&str], Version) = match self.name {
            "v2-pass" => ("10.99.0.11", 1000, &["10.99.0.100"], Version::V2),
            "v3-ipv4" => ("10.99.0.11", 100, &["10.99.0.100"], Version::V3),
            _ => (
                "fe80::99:ff:fe00:b",
                1000,
                &["fe80::99:100", "fd99:0:0:99::100"],
                Version::V3,
            ),
        };
        let mut b = Config::builder(51, ip(primary))
            .version(version)
            .priority(prio)
            .advert_interval(Duration::from_millis(interval))
            .mac([0x02, 0x99, 0, 0, 0, 0x0b])
            .na_router_flag(false)
            .announce(Announce {
                repeat: 1,
                delay: Duration::ZERO,
                ..Announce::default()
            });
        for v in vips {
            b = b.vip(ip(v));
        }
        if version == Version::V2 {
            b = b.password(b"hapri51");
        }
        b.build().unwrap()
    }
}

fn parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse+validate");
    g.throughput(Throughput::Elements(1));
    for cap in &CAPTURES {
        let bytes = cap.bytes();
        let ctx = cap.ctx();
        g.bench_function(cap.name, |b| {
            b.iter(|| {
                let p = Packet::new_checked(black_box(&bytes[..])).unwrap();
                black_box(Repr::parse(&p, black_box(&ctx)).unwrap());
            });
        });
    }
    g.finish();
}

fn emit(c: &mut Criterion) {
    let mut g = c.benchmark_group("emit");
    g.throughput(Throughput::Elements(1));
    for cap in &CAPTURES {
        let bytes = cap.bytes();
        let ctx = cap.ctx();
        let repr = Repr::parse(&Packet::new_checked(&bytes[..]).unwrap(), &ctx).unwrap();
        let mut out = [0u8; 64];
        g.bench_function(cap.name, |b| {
            b.iter(|| black_box(black_box(&repr).emit(&mut out, black_box(&ctx)).unwrap()));
        });
    }
    g.finish();
}

/// Backup (lb1 at priority 50, so lb2 at 99 is its rightful master and every advert restarts
/// the Master_Down_Timer) taking lb2's advert, then draining `poll_action` and reading
/// `poll_timeout`, as a run loop does.
fn handle_packet(c: &mut Criterion) {
    let mut g = c.benchmark_group("handle_packet/backup");
    g.throughput(Throughput::Elements(1));
    for cap in &CAPTURES {
        let bytes = cap.bytes();
        let meta = cap.meta();
        let cfg = cap.lb1(50);
        let mut r = VirtualRouter::new(cfg);
        let mut now = Instant::ZERO;
        r.startup(now);
        while r.poll_action().is_some() {}
        g.bench_function(cap.name, |b| {
            b.iter(|| {
                now += Duration::from_micros(1);
                r.handle_packet(now, meta, black_box(&bytes)).unwrap();
                while let Some(a) = r.poll_action() {
                    black_box(a);
                }
                black_box(r.poll_timeout())
            });
        });
    }
    // The largest configuration: 255 VIPs, compared against the advert's list.
    let vips: Vec<IpAddr> = (0..255u32)
        .map(|i| IpAddr::from((u32::from_be_bytes([10, 99, 0, 0]) + i).to_be_bytes()))
        .collect();
    let mk = |prio: u8, primary: &str| {
        let mut b = Config::builder(51, ip(primary))
            .priority(prio)
            .advert_interval(Duration::from_millis(100));
        for v in &vips {
            b = b.vip(*v);
        }
        VirtualRouter::new(b.build().unwrap())
    };
    let mut master = mk(99, "10.99.0.12");
    master.startup(Instant::ZERO);
    master.handle_timeout(master.poll_timeout().unwrap());
    let mut advert = None;
    while let Some(a) = master.poll_action() {
        if let vrrp_proto::Action::SendAdvert(t) = a {
            advert = Some((RecvMeta::new(t.src, t.dst, t.ttl), t.payload.to_vec()));
        }
    }
    let (meta, bytes) = advert.unwrap();
    let mut r = mk(50, "10.99.0.11");
    let mut now = Instant::ZERO;
    r.startup(now);
    while r.poll_action().is_some() {}
    g.bench_function("v3-ipv4-255vips", |b| {
        b.iter(|| {
            now += Duration::from_micros(1);
            r.handle_packet(now, meta, black_box(&bytes)).unwrap();
            while let Some(a) = r.poll_action() {
                black_box(a);
            }
            black_box(r.poll_timeout())
        });
    });
    g.finish();
}

/// Master (lb1) at its advert timer: `handle_timeout`, then draining the advert.
fn handle_timeout(c: &mut Criterion) {
    let mut g = c.benchmark_group("handle_timeout/master");
    g.throughput(Throughput::Elements(1));
    for cap in &CAPTURES {
        let mut r = VirtualRouter::new(cap.lb1(100));
        r.startup(Instant::ZERO);
        let t = r.poll_timeout().unwrap();
        r.handle_timeout(t);
        while r.poll_action().is_some() {}
        g.bench_function(cap.name, |b| {
            b.iter(|| {
                let t = r.poll_timeout().unwrap();
                r.handle_timeout(t);
                while let Some(a) = r.poll_action() {
                    black_box(a);
                }
            });
        });
    }
    g.finish();
}

criterion_group!(benches, parse, emit, handle_packet, handle_timeout);
criterion_main!(benches);
