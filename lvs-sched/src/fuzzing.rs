//! Fuzzing entry point (feature `fuzzing`): decode an operation sequence from bytes, drive a
//! [`Service`], and check the invariants after every step. Panics (on purpose) when an
//! invariant breaks, so the fuzzer reports it.

#![allow(clippy::panic)]

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use core::time::Duration;

use alloc::boxed::Box;
use alloc::vec::Vec;

use crate::ipvs::{lc, nq, sed, wlc};
use crate::nginx::{Tried, hash::Hash, ip_hash::IpHash, random::Random, round_robin::RoundRobin};
use crate::{
    Dest, DestId, DestSet, Flow, Instant, Protocol, SchedConfig, SchedFlags, Scheduler,
    SchedulerKind, Service, SplitMix64,
};

struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn u8(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes([
            self.u8()?,
            self.u8()?,
            self.u8()?,
            self.u8()?,
        ]))
    }
}

fn addr(b: u8, port: u16) -> SocketAddr {
    if b & 0x80 != 0 {
        SocketAddr::new(
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, u16::from(b), 1)),
            port,
        )
    } else {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, b, b.wrapping_mul(7), 1)), port)
    }
}

/// Decode `data` as: kind, flags, then operations (add/weight/availability/thresholds/
/// open/deactivate/close/failure/success/schedule/advance time and run timers/a retried
/// request), checking after every
/// `schedule` that the choice is an available destination with weight > 0 (and, for IPVS
/// schedulers other than `lblc`, not overloaded), that the O(log n) least-connection
/// schedulers agree with the kernel's linear scan, and that the nginx balancers' fast paths
/// (smooth-WRR cycle cache, weight index) agree with nginx's walks, state included, on
/// first tries and on retries (which never offer a peer twice).
pub fn run_ops(data: &[u8]) {
    let mut b = Bytes(data);
    let (Some(k), Some(f)) = (b.u8(), b.u8()) else {
        return;
    };
    let kinds = SchedulerKind::ALL;
    let Some(&kind) = kinds.get(usize::from(k) % kinds.len()) else {
        return;
    };
    let config = SchedConfig {
        flags: SchedFlags {
            fallback: f & 1 != 0,
            port: f & 2 != 0,
        },
        seed: u64::from(f),
        ..SchedConfig::default()
    };
    let mut svc = Service::new(kind, config);
    // The nginx balancers with a fast path (cycle cache, weight index) run beside their
    // reference walk, which must make every decision the same way.
    let mut shadow = reference(kind, config);
    let mut now = Instant::ZERO;
    let mut steps = 0;
    while let Some(op) = b.u8() {
        steps += 1;
        if steps > 2000 {
            break;
        }
        let n = svc.dests().len();
        let pick = |x: u8| DestId(if n == 0 { 0 } else { usize::from(x) % n });
        match op % 13 {
            0 => {
                let (Some(a), Some(w)) = (b.u8(), b.u32()) else {
                    break;
                };
                if n < 32 {
                    let w = if w & 0x1ff == 0x100 { w } else { w % 8 };
                    both(&mut svc, &mut shadow, |s| {
                        s.add_dest(Dest::new(addr(a, 80), w));
                    });
                }
            }
            1 => {
                let (Some(x), Some(w)) = (b.u8(), b.u32()) else {
                    break;
                };
                let w = if w & 0x1ff == 0x100 { w } else { w % 8 };
                both(&mut svc, &mut shadow, |s| {
                    s.set_weight(pick(x), w);
                });
            }
            2 => {
                let (Some(x), Some(a)) = (b.u8(), b.u8()) else {
                    break;
                };
                both(&mut svc, &mut shadow, |s| {
                    s.set_available(pick(x), a & 1 == 0);
                });
            }
            3 => {
                let (Some(x), Some(u), Some(l)) = (b.u8(), b.u8(), b.u8()) else {
                    break;
                };
                both(&mut svc, &mut shadow, |s| {
                    s.set_thresholds(pick(x), u32::from(u % 16), u32::from(l % 16));
                });
            }
            4 | 5 => {
                let Some(x) = b.u8() else { break };
                both(&mut svc, &mut shadow, |s| {
                    s.conn_opened(pick(x));
                });
            }
            6 => {
                let Some(x) = b.u8() else { break };
                both(&mut svc, &mut shadow, |s| {
                    s.conn_deactivated(pick(x));
                });
            }
            7 => {
                let (Some(x), Some(a)) = (b.u8(), b.u8()) else {
                    break;
                };
                both(&mut svc, &mut shadow, |s| {
                    s.conn_closed(pick(x), a & 1 == 0);
                });
            }
            8 => {
                let Some(x) = b.u8() else { break };
                both(&mut svc, &mut shadow, |s| {
                    s.report_failure(pick(x), now);
                });
            }
            9 => {
                let Some(x) = b.u8() else { break };
                both(&mut svc, &mut shadow, |s| {
                    s.report_success(pick(x));
                });
            }
            10 => {
                let Some(d) = b.u8() else { break };
                now += Duration::from_secs(u64::from(d));
                // Run the lblc/lblcr collection timer without scheduling.
                both(&mut svc, &mut shadow, |s| s.tick(now));
            }
            12 => {
                let (Some(c), Some(k)) = (b.u8(), b.u8()) else {
                    break;
                };
                retries(&mut svc, &mut shadow, c, k, now);
            }
            _ => {
                let (Some(c), Some(p)) = (b.u8(), b.u8()) else {
                    break;
                };
                let key = [c, p];
                let flow = Flow {
                    src: addr(c, u16::from(p) * 257),
                    dst: addr(p, 80),
                    proto: if p & 1 == 0 {
                        Protocol::Tcp
                    } else {
                        Protocol::Other(47)
                    },
                    key: Some(&key),
                };
                let got = check(&mut svc, &flow, now);
                if let Some(r) = &mut shadow {
                    assert_eq!(
                        got,
                        r.schedule(&flow, now),
                        "{kind}: fast path and reference walk disagree"
                    );
                    assert!(
                        svc.dests() == r.dests(),
                        "{kind}: state differs from the reference walk"
                    );
                }
            }
        }
    }
}

/// One request retried up to `k % 8 + 1` times (`schedule_next` with one [`Tried`]): an nginx
/// balancer never offers a peer twice, and the fast paths agree with the reference walks.
fn retries(svc: &mut Service, shadow: &mut Option<Service>, c: u8, k: u8, now: Instant) {
    let kind = svc.kind();
    let key = [c];
    let flow = Flow::tcp(addr(c, 4000), addr(c.wrapping_add(1), 80)).with_key(&key);
    let (mut t, mut rt) = (Tried::new(), Tried::new());
    let mut seen: Vec<DestId> = Vec::new();
    for _ in 0..=(k % 8) {
        let got = svc.schedule_next(&flow, now, &mut t);
        if let Some(r) = shadow {
            assert_eq!(
                got,
                r.schedule_next(&flow, now, &mut rt),
                "{kind}: retry: fast path and reference walk disagree"
            );
            assert!(
                svc.dests() == r.dests(),
                "{kind}: retry: state differs from the reference walk"
            );
        }
        let Some(id) = got else { break };
        if kind.is_nginx() {
            assert!(!seen.contains(&id), "{kind}: retry offered {id:?} twice");
            let Some(d) = svc.dests().get(id) else {
                panic!("{kind}: picked unknown {id:?}")
            };
            assert!(!d.nginx.down, "{kind}: retry picked down {id:?}");
        }
        seen.push(id);
    }
}

/// Apply `f` to the service and to its reference shadow, if any.
fn both(svc: &mut Service, shadow: &mut Option<Service>, f: impl Fn(&mut Service)) {
    f(svc);
    if let Some(r) = shadow {
        f(r);
    }
}

/// A service deciding with the reference walk of `kind`, for the kinds with a fast path.
fn reference(kind: SchedulerKind, config: SchedConfig) -> Option<Service> {
    let rng = || Box::new(SplitMix64::new(config.seed));
    let sched: Box<dyn Scheduler> = match kind {
        SchedulerKind::NginxRoundRobin => Box::new(RoundRobin::reference()),
        SchedulerKind::NginxIpHash => Box::new(IpHash::reference()),
        SchedulerKind::NginxHash => Box::new(Hash::reference()),
        SchedulerKind::NginxRandom => Box::new(Random::reference(false, rng())),
        SchedulerKind::NginxRandomTwo => Box::new(Random::reference(true, rng())),
        _ => return None,
    };
    Some(Service::with_scheduler(sched, DestSet::new()))
}

fn check(svc: &mut Service, flow: &Flow<'_>, now: Instant) -> Option<DestId> {
    let kind = svc.kind();
    let reference = match kind {
        SchedulerKind::Lc => Some(lc::linear_pick(svc.dests())),
        SchedulerKind::Wlc => Some(wlc::linear_pick(svc.dests())),
        SchedulerKind::Sed => Some(sed::linear_pick(svc.dests())),
        SchedulerKind::Nq => Some(nq::linear_pick(svc.dests())),
        _ => None,
    };
    let any_eligible = svc
        .dests()
        .iter()
        .any(|(_, d)| d.is_available() && d.weight() > 0);
    let got = svc.schedule(flow, now);
    if let Some(r) = reference {
        assert_eq!(got, r, "{kind}: tree and linear scan disagree");
    }
    let id = got?;
    let Some(d) = svc.dests().get(id) else {
        panic!("{kind}: picked unknown {id:?}")
    };
    assert!(any_eligible, "{kind}: picked with nothing eligible");
    assert!(d.is_available(), "{kind}: picked unavailable {id:?}");
    assert!(d.weight() > 0, "{kind}: picked weight 0 {id:?}");
    if !kind.is_nginx() && kind != SchedulerKind::Lblc {
        assert!(!d.is_overloaded(), "{kind}: picked overloaded {id:?}");
    }
    if kind.is_nginx() {
        assert!(!d.nginx.down, "{kind}: picked down {id:?}");
    }
    got
}
