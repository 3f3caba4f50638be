//! ns per decision for every scheduler, the O(log n) least-connection index against the
//! kernel's linear scan, and the Maglev table build at 1,000 destinations, M = 65537.
#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use lvs_sched::hash::maglev::Table;
use lvs_sched::ipvs::{lc, nq, sed, wlc};
use lvs_sched::{Dest, DestSet, Flow, Instant, SchedConfig, SchedulerKind, Service};

fn addr(i: usize, port: u16) -> SocketAddr {
    SocketAddr::new(
        IpAddr::V4(Ipv4Addr::new(10, (i >> 16) as u8, (i >> 8) as u8, i as u8)),
        port,
    )
}

fn service(kind: SchedulerKind, n: usize) -> Service {
    let mut set = DestSet::new();
    for i in 0..n {
        set.push(Dest::new(addr(i, 80), (i % 5 + 1) as u32));
    }
    Service::from_dests(kind, SchedConfig::default(), set)
}

fn keys() -> Vec<[u8; 4]> {
    (0..1024u32)
        .map(|k| k.wrapping_mul(2_654_435_761).to_le_bytes())
        .collect()
}

fn flow(k: usize, key: &[u8; 4]) -> Flow<'_> {
    Flow::tcp(addr(0x10_0000 + k * 7919, 40000), addr(k, 80)).with_key(key)
}

fn per_decision(c: &mut Criterion) {
    let keys = keys();
    let mut g = c.benchmark_group("schedule");
    g.throughput(Throughput::Elements(1));
    for &n in &[10usize, 100, 1000, 10_000] {
        for &kind in SchedulerKind::ALL {
            let mut s = service(kind, n);
            let mut i = 0usize;
            g.bench_with_input(BenchmarkId::new(kind.name(), n), &n, |b, _| {
                b.iter(|| {
                    i = (i + 1) & 1023;
                    let d = s.schedule(black_box(&flow(i, &keys[i])), Instant(0));
                    if let Some(d) = d {
                        s.conn_opened(d);
                        s.conn_closed(d, true);
                    }
                    d
                });
            });
        }
        // The kernel's O(n) scan, with the same open/close counter updates.
        for (name, f) in [
            ("lc-linear", lc::linear_pick as fn(&DestSet) -> _),
            ("wlc-linear", wlc::linear_pick),
            ("sed-linear", sed::linear_pick),
            ("nq-linear", nq::linear_pick),
        ] {
            let mut s = service(SchedulerKind::Fo, n);
            g.bench_with_input(BenchmarkId::new(name, n), &n, |b, _| {
                b.iter(|| {
                    let d = f(black_box(s.dests()));
                    if let Some(d) = d {
                        s.conn_opened(d);
                        s.conn_closed(d, true);
                    }
                    d
                });
            });
        }
    }
    g.finish();
}

fn maglev_build(c: &mut Criterion) {
    let dests: Vec<_> = (0..1000).map(|i| (addr(i, 80), 1u32, i)).collect();
    let mut g = c.benchmark_group("maglev_build");
    // The peer takes about half a second (and 500 MB) per build: keep the sample small.
    g.sample_size(10);
    g.bench_function("lvs-sched/1000/65537", |b| {
        b.iter(|| Table::build(black_box(&dests), 65_537))
    });
    // The peer: the `maglev` crate's table for the same 1,000 nodes and table size.
    let nodes: Vec<SocketAddr> = (0..1000).map(|i| addr(i, 80)).collect();
    g.bench_function("maglev-crate/1000/65537", |b| {
        b.iter(|| maglev::Maglev::with_capacity(black_box(nodes.clone()), 65_537))
    });
    g.finish();
}

criterion_group!(benches, per_decision, maglev_build);
criterion_main!(benches);
