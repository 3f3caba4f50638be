//! Prints, for `mh` and nginx `hash consistent` at 1,000 destinations, the fraction of
//! 100,000 keys that move when one destination goes, and the max/mean load.
//!
//! `cargo run -p lvs-sched --release --example disruption`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use lvs_sched::{Dest, DestId, Flow, Instant, SchedConfig, SchedulerKind, Service};

fn main() {
    const N: usize = 1000;
    const KEYS: u32 = 100_000;
    for kind in [SchedulerKind::Mh, SchedulerKind::NginxChash] {
        let mut s = Service::new(kind, SchedConfig::default());
        for i in 0..N {
            let ip = Ipv4Addr::new(10, 2, (i / 250) as u8, (i % 250) as u8 + 1);
            s.add_dest(Dest::new(SocketAddr::new(IpAddr::V4(ip), 80), 1));
        }
        fn flow(k: u32, key: &[u8; 4]) -> Flow<'_> {
            let b = k.wrapping_mul(2_654_435_761).to_be_bytes();
            let src = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3])), 40000);
            let dst = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 80);
            let mut f = Flow::tcp(src, dst);
            f.key = Some(key.as_slice());
            f
        }
        let keys: Vec<[u8; 4]> = (0..KEYS)
            .map(|k| k.wrapping_mul(2_654_435_761).to_le_bytes())
            .collect();
        let mut load = vec![0u32; N];
        let before: Vec<Option<DestId>> = keys
            .iter()
            .enumerate()
            .map(|(k, key)| {
                let d = s.schedule(&flow(k as u32, key), Instant::ZERO);
                if let Some(d) = d {
                    load[d.0] += 1;
                }
                d
            })
            .collect();
        let max = load.iter().copied().max().unwrap_or(0);
        let mean = f64::from(KEYS) / N as f64;
        s.set_available(DestId(N / 2), false);
        let moved = keys
            .iter()
            .enumerate()
            .filter(|(k, key)| s.schedule(&flow(*k as u32, key), Instant::ZERO) != before[*k])
            .count();
        println!(
            "{kind:>16}: N={N} keys={KEYS} moved={:.4} (ideal {:.4}) max/mean load={:.2} (max {max}, mean {mean:.1})",
            moved as f64 / f64::from(KEYS),
            1.0 / N as f64,
            f64::from(max) / mean,
        );
    }
}
