#![allow(dead_code, unreachable_pub)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use lvs_sched::{Dest, DestId, Flow, Instant, SchedConfig, SchedulerKind, Service};

pub fn v4(a: u8, b: u8, c: u8, d: u8, port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(a, b, c, d)), port)
}

pub fn v6(last: u16, port: u16) -> SocketAddr {
    SocketAddr::new(
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, last)),
        port,
    )
}

pub fn service(kind: SchedulerKind, weights: &[u32]) -> Service {
    let mut s = Service::new(kind, SchedConfig::default());
    for (i, &w) in weights.iter().enumerate() {
        s.add_dest(Dest::new(v4(10, 0, 0, i as u8 + 1, 80), w));
    }
    s
}

pub fn flow(i: u32) -> Flow<'static> {
    let b = i.to_be_bytes();
    Flow::tcp(
        v4(b[0].wrapping_add(100), b[1], b[2], b[3], 40000),
        v4(192, 0, 2, b[3], 80),
    )
}

pub fn picks(s: &mut Service, n: usize) -> Vec<usize> {
    (0..n)
        .map(|i| {
            s.schedule(&flow(i as u32), Instant::ZERO)
                .map_or(usize::MAX, |d| d.0)
        })
        .collect()
}

pub fn letters(v: &[usize]) -> String {
    v.iter()
        .map(|&i| {
            if i == usize::MAX {
                '-'
            } else {
                (b'a' + i as u8) as char
            }
        })
        .collect()
}

pub const D0: DestId = DestId(0);
pub const D1: DestId = DestId(1);
pub const D2: DestId = DestId(2);
