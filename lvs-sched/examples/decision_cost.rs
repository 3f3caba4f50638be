//! The cost of one decision at 1,000 destinations (weights `i % 5 + 1`, 1,024 client flows
//! built beforehand), without `Service` or counter updates, through the concrete type and
//! through `Box<dyn Scheduler>`, and nginx's O(n) walks for comparison.
//!
//! Each figure is the best of 5 runs, in **CPU time** of this thread where Linux provides it
//! (`/proc/thread-self/schedstat`), so that other processes on a shared machine do not
//! inflate it; the wall-clock figure is printed beside it. The Criterion benches
//! (`decide/*` in `benches/schedule.rs`) measure the same loops in wall-clock time.
//!
//! `cargo run -p lvs-sched --release --example decision_cost`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant as Clock;

use lvs_sched::ipvs::{dh, mh, rr, sh, wrr};
use lvs_sched::nginx::{hash::Hash, ip_hash::IpHash, round_robin::RoundRobin};
use lvs_sched::{Dest, DestSet, Flow, Instant, SchedConfig, Scheduler, SchedulerKind};

const N: usize = 1000;

fn addr(i: usize, port: u16) -> SocketAddr {
    let b = |s: u32| u8::try_from((i >> s) & 0xff).unwrap();
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, b(16), b(8), b(0))), port)
}

fn dest_set() -> DestSet {
    let mut set = DestSet::new();
    for i in 0..N {
        set.push(Dest::new(addr(i, 80), u32::try_from(i % 5 + 1).unwrap()));
    }
    set
}

/// CPU time of this thread in ns, if the kernel reports it.
fn cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// (cpu ns, wall ns) per decision, best of 5 runs of `iters` decisions.
fn measure(iters: usize, mut decide: impl FnMut(usize)) -> (Option<f64>, f64) {
    for i in 0..iters / 4 {
        decide(i & 1023);
    }
    let (mut best_cpu, mut best_wall) = (f64::INFINITY, f64::INFINITY);
    let mut have_cpu = true;
    for _ in 0..5 {
        let c0 = cpu_ns();
        let w0 = Clock::now();
        for i in 0..iters {
            decide(i & 1023);
        }
        let wall = w0.elapsed().as_nanos() as f64 / iters as f64;
        best_wall = best_wall.min(wall);
        match (c0, cpu_ns()) {
            (Some(a), Some(b)) => best_cpu = best_cpu.min((b - a) as f64 / iters as f64),
            _ => have_cpu = false,
        }
    }
    (have_cpu.then_some(best_cpu), best_wall)
}

fn report(name: &str, (cpu, wall): (Option<f64>, f64)) {
    let cpu = cpu.map_or_else(|| "-".to_owned(), |c| format!("{c:.1}"));
    println!("{name:<28} {cpu:>10} {wall:>10.1}");
}

fn concrete(name: &str, flows: &[Flow<'_>], iters: usize, mut s: impl Scheduler) {
    let mut set = dest_set();
    s.rebuild(&set);
    let r = measure(iters, |i| {
        black_box(s.schedule(black_box(&mut set), black_box(&flows[i]), Instant::ZERO));
    });
    report(name, r);
}

fn dynamic(flows: &[Flow<'_>], iters: usize, kind: SchedulerKind) {
    let mut set = dest_set();
    let mut s: Box<dyn Scheduler> = kind.build(SchedConfig::default());
    s.rebuild(&set);
    let r = measure(iters, |i| {
        black_box(s.schedule(black_box(&mut set), black_box(&flows[i]), Instant::ZERO));
    });
    report(&format!("{}/dyn", kind.name()), r);
}

fn main() {
    let keys: Vec<[u8; 4]> = (0..1024u32)
        .map(|k| k.wrapping_mul(2_654_435_761).to_le_bytes())
        .collect();
    let flows: Vec<Flow<'_>> = (0..1024)
        .map(|k| Flow::tcp(addr(0x10_0000 + k * 7919, 40000), addr(k, 80)).with_key(&keys[k]))
        .collect();
    let flags = SchedConfig::default().flags;
    let fast = 10_000_000;
    let slow = 60_000;
    println!(
        "{:<28} {:>10} {:>10}",
        "ns/decision, 1,000 dests", "cpu", "wall"
    );
    concrete("rr/concrete", &flows, fast, rr::Rr::new());
    concrete("wrr/concrete", &flows, fast, wrr::Wrr::new());
    concrete("dh/concrete", &flows, fast, dh::Dh::new());
    concrete("sh/concrete", &flows, fast, sh::Sh::new(flags));
    concrete("mh/concrete", &flows, fast, mh::Mh::new(flags));
    concrete("round_robin/concrete", &flows, fast, RoundRobin::new());
    concrete("ip_hash/concrete", &flows, fast, IpHash::new());
    concrete("hash/concrete", &flows, fast, Hash::new());
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
        dynamic(&flows, fast, kind);
    }
    concrete("round_robin/walk", &flows, slow, RoundRobin::reference());
    concrete("ip_hash/walk", &flows, slow, IpHash::reference());
    concrete("hash/walk", &flows, slow, Hash::reference());
}
