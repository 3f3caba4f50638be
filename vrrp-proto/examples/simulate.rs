//! An election, a failover, a preempt-back and a clean hand-over, on virtual time.
//!
//! `cargo run -p vrrp-proto --features sim --example simulate`

use std::net::IpAddr;
use std::time::Duration;

use vrrp_proto::sim::{EventKind, Lan, Link};
use vrrp_proto::wire::Version;
use vrrp_proto::{Config, ConfigError};

fn main() -> Result<(), ConfigError> {
    let vip: IpAddr = [192, 168, 1, 108].into();
    let cfg = |primary: [u8; 4], priority| {
        Config::builder(51, primary.into())
            .version(Version::V2)
            .priority(priority)
            .advert_interval(Duration::from_secs(1))
            .password(b"1111")
            .vip(vip)
            .build()
    };
    let names = ["lb1", "lb2"];
    let mut lan = Lan::new(1, Link::new(0, Duration::from_micros(200), Duration::ZERO));
    let lb1 = lan.add_router(cfg([192, 168, 1, 101], 100)?);
    lan.add_router(cfg([192, 168, 1, 102], 99)?);

    println!("VRRPv2, VRID 51, advert_int 1 s, VIP {vip}; lb1 priority 100, lb2 priority 99");
    let mut script = vec![
        (0.0, "both start", Op::StartAll),
        (10.0, "lb1 crashes (kill -9)", Op::Crash(lb1)),
        (20.0, "lb1 restarts", Op::Restart(lb1)),
        (
            30.0,
            "lb1 shuts down cleanly (priority 0)",
            Op::Shutdown(lb1),
        ),
    ];
    script.reverse();
    let mut printed = 0;
    let end = vrrp_proto::Instant::from_millis(35_000);
    let flush = |lan: &Lan, printed: &mut usize| {
        for e in &lan.events()[*printed..] {
            if let EventKind::StateChanged { from, to, reason } = e.kind {
                println!(
                    "{:>10}  {:<4}  {from:?} -> {to:?} ({reason:?})",
                    e.at.to_string(),
                    names[e.node]
                );
            }
        }
        *printed = lan.events().len();
    };
    while let Some((at, what, op)) = script.pop() {
        lan.run_until(vrrp_proto::Instant::from_millis((at * 1000.0) as u64));
        flush(&lan, &mut printed);
        println!("{:>10}  ----  {what}", lan.now().to_string());
        match op {
            Op::StartAll => lan.start_all(),
            Op::Crash(i) => lan.crash(i),
            Op::Restart(i) => lan.restart(i),
            Op::Shutdown(i) => lan.shutdown(i),
        }
        flush(&lan, &mut printed);
    }
    lan.run_until(end);
    flush(&lan, &mut printed);
    let masters: Vec<&str> = lan.masters().iter().map(|&i| names[i]).collect();
    println!(
        "{:>10}  ----  master now: {masters:?}",
        lan.now().to_string()
    );
    for (i, name) in names.iter().enumerate() {
        if let Some(r) = lan.router(i) {
            let s = r.stats();
            println!(
                "{name}: became master {} times, adverts sent {}, received {}, priority-0 sent {}",
                s.master_transitions, s.adverts_sent, s.adverts_received, s.priority_zero_sent
            );
        }
    }
    Ok(())
}

#[derive(Clone, Copy)]
enum Op {
    StartAll,
    Crash(usize),
    Restart(usize),
    Shutdown(usize),
}
