//! ns per decision for every scheduler, the O(log n) least-connection index against the
//! kernel's linear scan, the decision alone (no counter updates; concrete type and
//! `Box<dyn Scheduler>`), and the Maglev table build at 1,000 destinations, M = 65537.
#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use lvs_sched::hash::maglev::Table;
use lvs_sched::ipvs::{dh, lc, mh, nq, rr, sed, sh, wlc, wrr};
use lvs_sched::nginx::{hash::Hash, ip_hash::IpHash, round_robin::RoundRobin};
use lvs_sched::{
    Dest, DestId, DestSet, Flow, Instant, SchedConfig, Scheduler, SchedulerKind, Service,
};

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
                    let d = s.schedule(black_box(&flow(i, &keys[i])), Instant::ZERO);
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
        // nq with every server busy (one connection held open on each): the kernel's scan can
        // no longer stop at the first idle server, and must look at every one.
        if n >= 1000 {
            let mut tree = service(SchedulerKind::Nq, n);
            let mut linear = service(SchedulerKind::Fo, n);
            for s in [&mut tree, &mut linear] {
                for d in 0..n {
                    s.conn_opened(DestId(d));
                }
            }
            g.bench_with_input(BenchmarkId::new("nq-busy", n), &n, |b, _| {
                b.iter(|| {
                    let d = tree.schedule(black_box(&flow(0, &keys[0])), Instant::ZERO);
                    if let Some(d) = d {
                        tree.conn_opened(d);
                        tree.conn_closed(d, true);
                    }
                    d
                });
            });
            g.bench_with_input(BenchmarkId::new("nq-busy-linear", n), &n, |b, _| {
                b.iter(|| {
                    let d = nq::linear_pick(black_box(linear.dests()));
                    if let Some(d) = d {
                        linear.conn_opened(d);
                        linear.conn_closed(d, true);
                    }
                    d
                });
            });
        }
    }
    g.finish();
}

fn dest_set(n: usize) -> DestSet {
    let mut set = DestSet::new();
    for i in 0..n {
        set.push(Dest::new(addr(i, 80), (i % 5 + 1) as u32));
    }
    set
}

/// One decision per iteration, nothing else: no `Service`, no counter updates, the flows
/// built beforehand. `decide` is the scheduler's `schedule`, called through the concrete type
/// or through `Box<dyn Scheduler>`.
fn bench_decide(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    flows: &[Flow<'_>],
    mut sched: impl Scheduler,
) {
    let mut set = dest_set(1000);
    sched.rebuild(&set);
    let mut i = 0usize;
    g.bench_function(name, |b| {
        b.iter(|| {
            i = (i + 1) & 1023;
            sched.schedule(black_box(&mut set), black_box(&flows[i]), Instant::ZERO)
        });
    });
}

fn bench_decide_dyn(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    flows: &[Flow<'_>],
    kind: SchedulerKind,
) {
    let mut set = dest_set(1000);
    let mut sched: Box<dyn Scheduler> = kind.build(SchedConfig::default());
    sched.rebuild(&set);
    let mut i = 0usize;
    g.bench_function(name, |b| {
        b.iter(|| {
            i = (i + 1) & 1023;
            let d: Option<DestId> =
                sched.schedule(black_box(&mut set), black_box(&flows[i]), Instant::ZERO);
            d
        });
    });
}

fn decision_only(c: &mut Criterion) {
    let keys = keys();
    let flows: Vec<Flow<'_>> = (0..1024).map(|k| flow(k, &keys[k])).collect();
    let mut g = c.benchmark_group("decide");
    g.throughput(Throughput::Elements(1));
    let flags = SchedConfig::default().flags;
    bench_decide(&mut g, "rr/concrete/1000", &flows, rr::Rr::new());
    bench_decide(&mut g, "wrr/concrete/1000", &flows, wrr::Wrr::new());
    bench_decide(&mut g, "dh/concrete/1000", &flows, dh::Dh::new());
    bench_decide(&mut g, "sh/concrete/1000", &flows, sh::Sh::new(flags));
    bench_decide(&mut g, "mh/concrete/1000", &flows, mh::Mh::new(flags));
    bench_decide(
        &mut g,
        "round_robin/concrete/1000",
        &flows,
        RoundRobin::new(),
    );
    bench_decide(&mut g, "ip_hash/concrete/1000", &flows, IpHash::new());
    bench_decide(&mut g, "hash/concrete/1000", &flows, Hash::new());
    // nginx's O(n) walks, kept as the reference: the cost before the cache and the index.
    bench_decide(
        &mut g,
        "round_robin/walk/1000",
        &flows,
        RoundRobin::reference(),
    );
    bench_decide(&mut g, "ip_hash/walk/1000", &flows, IpHash::reference());
    bench_decide(&mut g, "hash/walk/1000", &flows, Hash::reference());
    for kind in [
        SchedulerKind::Rr,
        SchedulerKind::Wrr,
        SchedulerKind::Dh,
        SchedulerKind::Sh,
        SchedulerKind::Mh,
        SchedulerKind::NginxRoundRobin,
        SchedulerKind::NginxIpHash,
        SchedulerKind::NginxHash,
        SchedulerKind::NginxRandom,
    ] {
        bench_decide_dyn(&mut g, &format!("{}/dyn/1000", kind.name()), &flows, kind);
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

criterion_group!(benches, per_decision, decision_only, maglev_build);
criterion_main!(benches);
