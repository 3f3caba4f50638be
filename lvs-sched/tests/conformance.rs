//! The shared conformance suite, run for every `SchedulerKind`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use lvs_sched::{Dest, DestId, Flow, Instant, SchedConfig, SchedulerKind, Service};

fn flows() -> Vec<Flow<'static>> {
    (0..64u32)
        .map(|i| {
            let f = if i % 2 == 0 {
                flow(i)
            } else {
                Flow::tcp(v6(i as u16, 5000 + i as u16), v6(1, 80))
            };
            f.with_key(KEYS[i as usize % KEYS.len()])
        })
        .collect()
}

const KEYS: &[&[u8]] = &[b"/", b"/a", b"/b/c", b"user-1", b"user-2", b"x"];

macro_rules! scheduler_conformance {
    ($($name:ident => $kind:expr),* $(,)?) => {$(
        mod $name {
            use super::*;

            fn kind() -> SchedulerKind {
                $kind
            }

            #[test]
            fn empty_set_gives_none() {
                let mut s = Service::new(kind(), SchedConfig::default());
                for f in flows() {
                    assert_eq!(s.schedule(&f, Instant::ZERO), None);
                }
            }

            #[test]
            fn all_weight_zero_gives_none() {
                let mut s = service(kind(), &[0, 0, 0]);
                for f in flows() {
                    assert_eq!(s.schedule(&f, Instant::ZERO), None);
                }
            }

            #[test]
            fn all_unavailable_gives_none() {
                let mut s = service(kind(), &[1, 2, 3]);
                for i in 0..3 {
                    s.set_available(DestId(i), false);
                }
                for f in flows() {
                    assert_eq!(s.schedule(&f, Instant::ZERO), None);
                }
            }

            #[test]
            fn never_weight_zero_unavailable_or_overloaded() {
                let mut s = service(kind(), &[0, 2, 1, 3, 1]);
                s.set_available(DestId(2), false);
                if !kind().is_nginx() {
                    s.set_thresholds(DestId(3), 1, 0);
                    s.conn_opened(DestId(3));
                } else {
                    s.configure_nginx(DestId(3), |p| p.down = true);
                }
                for (i, f) in flows().iter().enumerate() {
                    let got = s.schedule(f, Instant::from_millis(i as u64));
                    let Some(id) = got else {
                        assert!(kind().is_hashing(), "{}: None with usable dests", kind());
                        continue;
                    };
                    assert!(id == DestId(1) || id == DestId(4), "{}: picked {id:?}", kind());
                }
            }

            #[test]
            fn ipv4_and_ipv6_destinations() {
                let mut s = Service::new(kind(), SchedConfig::default());
                s.add_dest(Dest::new(v4(10, 0, 0, 1, 80), 1));
                s.add_dest(Dest::new(v6(2, 80), 1));
                let mut seen = [false; 2];
                for f in flows() {
                    if let Some(id) = s.schedule(&f, Instant::ZERO) {
                        seen[id.0] = true;
                    }
                }
                assert!(seen[0] || seen[1]);
            }

            #[test]
            fn hashing_is_stable_while_set_unchanged() {
                if !kind().is_hashing() {
                    return;
                }
                let mut s = service(kind(), &[1, 2, 3, 1]);
                for f in flows() {
                    let a = s.schedule(&f, Instant::ZERO);
                    assert_eq!(s.schedule(&f, Instant::ZERO), a);
                }
            }
        }
    )*};
}

scheduler_conformance! {
    rr => SchedulerKind::Rr,
    wrr => SchedulerKind::Wrr,
    lc => SchedulerKind::Lc,
    wlc => SchedulerKind::Wlc,
    sed => SchedulerKind::Sed,
    nq => SchedulerKind::Nq,
    dh => SchedulerKind::Dh,
    sh => SchedulerKind::Sh,
    lblc => SchedulerKind::Lblc,
    lblcr => SchedulerKind::Lblcr,
    mh => SchedulerKind::Mh,
    fo => SchedulerKind::Fo,
    ovf => SchedulerKind::Ovf,
    twos => SchedulerKind::Twos,
    nginx_round_robin => SchedulerKind::NginxRoundRobin,
    nginx_ip_hash => SchedulerKind::NginxIpHash,
    nginx_hash => SchedulerKind::NginxHash,
    nginx_chash => SchedulerKind::NginxChash,
    nginx_least_conn => SchedulerKind::NginxLeastConn,
    nginx_random => SchedulerKind::NginxRandom,
    nginx_random_two => SchedulerKind::NginxRandomTwo,
}

#[test]
fn every_kind_is_covered() {
    assert_eq!(SchedulerKind::ALL.len(), 21);
}
