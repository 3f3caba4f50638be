//! The RFC 5798 §6.4 state machine, event by event, with hand-worked timer values.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::IpAddr;
use std::time::Duration;

use vrrp_proto::wire::{AddrList, Auth, Ctx, Repr, Version};
use vrrp_proto::{
    Action, Announce, Config, ConfigBuilder, ConfigError, Instant, IpCidr, Reason, RecvMeta, State,
    VirtualRouter,
};

const VIP: [u8; 4] = [10, 0, 0, 100];

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn ms(n: u64) -> Instant {
    Instant::from_millis(n)
}

/// An owned copy of an action, so tests can collect them.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Out {
    State(State, State, Reason),
    Add(IpCidr),
    Remove(IpCidr),
    Advert { dst: IpAddr, priority: u8 },
    Garp,
    Na,
}

fn drain(r: &mut VirtualRouter) -> Vec<Out> {
    let mut v = Vec::new();
    while let Some(a) = r.poll_action() {
        v.push(match a {
            Action::StateChanged { from, to, reason } => Out::State(from, to, reason),
            Action::AddVip(c) => Out::Add(c),
            Action::RemoveVip(c) => Out::Remove(c),
            Action::SendAdvert(t) => {
                assert_eq!(t.ttl, 255);
                Out::Advert {
                    dst: t.dst,
                    priority: t.payload[2],
                }
            }
            Action::SendGratuitousArp { frame, .. } => {
                assert_eq!(frame.len(), 42);
                Out::Garp
            }
            Action::SendUnsolicitedNa { frame, .. } => {
                assert_eq!(frame.len(), 86);
                Out::Na
            }
            other => panic!("unexpected action {other:?}"),
        });
    }
    v
}

fn base(primary: &str, prio: u8) -> ConfigBuilder {
    Config::builder(51, ip(primary))
        .priority(prio)
        .vip(IpAddr::from(VIP))
        .announce(Announce {
            repeat: 1,
            delay: Duration::ZERO,
            ..Announce::default()
        })
}

fn router(b: ConfigBuilder) -> VirtualRouter {
    VirtualRouter::new(b.build().unwrap())
}

/// An advert as `src` would send it for our VRID and VIP.
fn advert(version: Version, src: &str, prio: u8, int_cs: u16) -> (RecvMeta, Vec<u8>) {
    let dst: IpAddr = if ip(src).is_ipv4() {
        ip("224.0.0.18")
    } else {
        ip("ff02::12")
    };
    let addr_bytes: Vec<u8> = match ip(src) {
        IpAddr::V4(_) => VIP.to_vec(),
        IpAddr::V6(_) => "fe80::100"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets()
            .to_vec(),
    };
    let addrs = if ip(src).is_ipv4() {
        AddrList::new_v4(&addr_bytes).unwrap()
    } else {
        AddrList::new_v6(&addr_bytes).unwrap()
    };
    let repr = Repr {
        version,
        vrid: 51,
        priority: prio,
        adver_int: int_cs,
        addrs,
        auth: Auth::None,
    };
    let mut buf = vec![0; repr.buffer_len()];
    repr.emit(&mut buf, &Ctx::new(ip(src), dst)).unwrap();
    (RecvMeta::new(ip(src), dst, 255), buf)
}

#[test]
fn backup_timers_follow_the_rfc_formulas() {
    // v3, 1 s, priority 100: Skew = (256-100)*1s/256 = 609.375 ms, MDI = 3.609375 s.
    let mut r = router(base("10.0.0.1", 100));
    r.startup(ms(1000));
    assert_eq!(
        drain(&mut r),
        [Out::State(
            State::Initialize,
            State::Backup,
            Reason::Startup
        )]
    );
    assert_eq!(r.skew_time(), Duration::from_micros(609_375));
    assert_eq!(r.master_down_interval(), Duration::from_micros(3_609_375));
    assert_eq!(
        r.poll_timeout(),
        Some(ms(1000) + Duration::from_micros(3_609_375))
    );

    // v2 skew does not depend on the interval: (256-100)/256 s even at 2 s adverts.
    let mut r = router(
        base("10.0.0.1", 100)
            .version(Version::V2)
            .advert_interval(Duration::from_secs(2)),
    );
    r.startup(ms(0));
    assert_eq!(r.skew_time(), Duration::from_micros(609_375));
    assert_eq!(r.poll_timeout(), Some(Instant::from_micros(6_609_375)));

    // An early or repeated handle_timeout changes nothing.
    r.handle_timeout(ms(10));
    r.handle_timeout(ms(10));
    assert!(drain(&mut r).iter().all(|o| matches!(o, Out::State(..))));
    assert_eq!(r.state(), State::Backup);
}

#[test]
fn master_down_timer_makes_a_master_with_the_documented_action_order() {
    let mut r = router(base("10.0.0.1", 100).announce(Announce {
        repeat: 2,
        delay: Duration::ZERO,
        ..Announce::default()
    }));
    r.startup(ms(0));
    let _ = drain(&mut r);
    let t = r.poll_timeout().unwrap();
    r.handle_timeout(t);
    let vip = IpCidr::host(IpAddr::from(VIP));
    assert_eq!(
        drain(&mut r),
        [
            Out::State(State::Backup, State::Master, Reason::MasterDown),
            Out::Add(vip),
            Out::Advert {
                dst: ip("224.0.0.18"),
                priority: 100
            },
            Out::Garp,
            Out::Garp,
        ]
    );
    assert_eq!(r.stats().master_transitions, 1);
    // Adverts every interval.
    assert_eq!(r.poll_timeout(), Some(t + Duration::from_secs(1)));
    r.handle_timeout(t + Duration::from_secs(1));
    assert_eq!(
        drain(&mut r),
        [Out::Advert {
            dst: ip("224.0.0.18"),
            priority: 100
        }]
    );
    // Shutdown: priority 0, then addresses removed, then the state change.
    r.shutdown(t + Duration::from_millis(1500));
    assert_eq!(
        drain(&mut r),
        [
            Out::Advert {
                dst: ip("224.0.0.18"),
                priority: 0
            },
            Out::Remove(vip),
            Out::State(State::Master, State::Initialize, Reason::Shutdown),
        ]
    );
    assert_eq!(r.poll_timeout(), None);
    assert_eq!(r.stats().priority_zero_sent, 1);
    assert_eq!(r.stats().adverts_sent, 3);
}

#[test]
fn address_owner_is_master_at_startup() {
    let mut r = router(base("10.0.0.100", 255));
    r.startup(ms(0));
    let out = drain(&mut r);
    assert_eq!(
        out[0],
        Out::State(State::Initialize, State::Master, Reason::Startup)
    );
    assert_eq!(r.state(), State::Master);
    // The owner discards adverts (RFC 5798 §7.1) and counts them.
    let (meta, bytes) = advert(Version::V3, "10.0.0.2", 254, 100);
    assert_eq!(
        r.handle_packet(ms(5), meta, &bytes),
        Err(vrrp_proto::RecvError::Owner)
    );
    assert_eq!(r.stats().owner_discards, 1);
}

#[test]
fn backup_accepts_higher_and_learns_the_master_interval() {
    let mut r = router(base("10.0.0.1", 100));
    r.startup(ms(0));
    let _ = drain(&mut r);
    // The master advertises every 50 cs: MDI = 1.5 s + 156*0.5/256 s = 1.8046875 s.
    let (meta, bytes) = advert(Version::V3, "10.0.0.2", 200, 50);
    r.handle_packet(ms(700), meta, &bytes).unwrap();
    assert_eq!(r.master_adver_interval(), Duration::from_millis(500));
    assert_eq!(
        r.poll_timeout(),
        Some(ms(700) + Duration::from_micros(1_804_688 - 1))
    );
    assert_eq!(r.master(), Some(ip("10.0.0.2")));
    assert_eq!(r.stats().adverts_received, 1);
}

#[test]
fn priority_zero_cuts_the_wait_to_skew_time() {
    let mut r = router(base("10.0.0.1", 100));
    r.startup(ms(0));
    let (meta, bytes) = advert(Version::V3, "10.0.0.2", 200, 100);
    r.handle_packet(ms(100), meta, &bytes).unwrap();
    let (meta, bytes) = advert(Version::V3, "10.0.0.2", 0, 100);
    r.handle_packet(ms(200), meta, &bytes).unwrap();
    assert_eq!(
        r.poll_timeout(),
        Some(ms(200) + Duration::from_micros(609_375))
    );
    let _ = drain(&mut r);
    r.handle_timeout(r.poll_timeout().unwrap());
    assert_eq!(
        drain(&mut r)[0],
        Out::State(State::Backup, State::Master, Reason::PriorityZeroReceived)
    );
    assert_eq!(r.stats().priority_zero_received, 1);
}

#[test]
fn preempt_discards_a_lower_master_and_nopreempt_keeps_it() {
    for preempt in [true, false] {
        let mut r = router(base("10.0.0.1", 150).preempt(preempt));
        r.startup(ms(0));
        let _ = drain(&mut r);
        let first = r.poll_timeout().unwrap();
        let (meta, bytes) = advert(Version::V3, "10.0.0.2", 100, 100);
        r.handle_packet(ms(500), meta, &bytes).unwrap();
        if preempt {
            // Discarded: the timer still runs from startup.
            assert_eq!(r.poll_timeout(), Some(first));
            r.handle_timeout(first);
            assert_eq!(
                drain(&mut r)[0],
                Out::State(State::Backup, State::Master, Reason::Preempted)
            );
        } else {
            assert!(r.poll_timeout().unwrap() > first);
            assert_eq!(r.state(), State::Backup);
        }
    }
}

#[test]
fn preempt_delay_holds_back_preemption() {
    let mut r = router(base("10.0.0.1", 150).preempt_delay(Duration::from_secs(5)));
    r.startup(ms(0));
    let _ = drain(&mut r);
    // A lower master advertises every second. The delay runs from the later of startup and
    // the first sight of it (0.5 s), so until 5.5 s we follow it.
    let mut t = 500;
    while t < 5500 {
        let (meta, bytes) = advert(Version::V3, "10.0.0.2", 100, 100);
        r.handle_packet(ms(t), meta, &bytes).unwrap();
        r.handle_timeout(ms(t));
        assert_eq!(r.state(), State::Backup, "at {t} ms");
        t += 1000;
    }
    assert_eq!(r.poll_timeout(), Some(ms(5500)));
    r.handle_timeout(ms(5500));
    assert_eq!(
        drain(&mut r).last().cloned(),
        Some(Out::Garp),
        "became master and announced"
    );
    assert_eq!(r.state(), State::Master);
}

#[test]
fn master_yields_to_higher_priority_and_to_the_higher_address_on_a_tie() {
    let cases = [
        ("10.0.0.2", 101, true),
        ("10.0.0.2", 100, true),  // tie, sender's address is higher
        ("10.0.0.0", 100, false), // tie, ours is higher
        ("10.0.0.2", 99, false),
    ];
    for (src, prio, yields) in cases {
        let mut r = router(base("10.0.0.1", 100));
        r.startup(ms(0));
        r.handle_timeout(r.poll_timeout().unwrap());
        let _ = drain(&mut r);
        let (meta, bytes) = advert(Version::V3, src, prio, 100);
        r.handle_packet(ms(4000), meta, &bytes).unwrap();
        let out = drain(&mut r);
        if yields {
            assert_eq!(
                out,
                [
                    Out::Remove(IpCidr::host(IpAddr::from(VIP))),
                    Out::State(State::Master, State::Backup, Reason::HigherPriorityReceived)
                ]
            );
            assert_eq!(r.master(), Some(ip(src)));
        } else {
            // It stays master, advertises at once and re-announces the VIP, so the
            // other router yields and the hosts that followed it come back.
            assert!(
                matches!(out.first(), Some(Out::Advert { priority: 100, .. })),
                "{src} {prio}: {out:?}"
            );
            let repeat = usize::from(r.config().announce().repeat);
            assert_eq!(out.len(), 1 + repeat, "{src} {prio}: {out:?}");
            assert!(out.iter().skip(1).all(|o| *o == Out::Garp), "{out:?}");
            assert_eq!(r.state(), State::Master);
            assert_eq!(r.stats().lower_priority_master_seen, 1);
        }
    }
}

#[test]
fn master_answers_a_release_with_an_advert() {
    let mut r = router(base("10.0.0.1", 100));
    r.startup(ms(0));
    r.handle_timeout(r.poll_timeout().unwrap());
    let _ = drain(&mut r);
    let (meta, bytes) = advert(Version::V3, "10.0.0.2", 0, 100);
    r.handle_packet(ms(4000), meta, &bytes).unwrap();
    assert_eq!(
        drain(&mut r),
        [Out::Advert {
            dst: ip("224.0.0.18"),
            priority: 100
        }]
    );
    assert_eq!(r.poll_timeout(), Some(ms(5000)));
}

#[test]
fn unicast_peers_get_one_advert_each() {
    let mut r = router(
        base("10.0.0.1", 255)
            .unicast_peer(ip("10.0.0.2"))
            .unicast_peer(ip("10.0.0.3"))
            .check_unicast_src(true),
    );
    r.startup(ms(0));
    let adverts: Vec<_> = drain(&mut r)
        .into_iter()
        .filter(|o| matches!(o, Out::Advert { .. }))
        .collect();
    assert_eq!(
        adverts,
        [
            Out::Advert {
                dst: ip("10.0.0.2"),
                priority: 255
            },
            Out::Advert {
                dst: ip("10.0.0.3"),
                priority: 255
            }
        ]
    );
    let mut b = router(
        base("10.0.0.2", 100)
            .unicast_peer(ip("10.0.0.1"))
            .check_unicast_src(true),
    );
    b.startup(ms(0));
    let (meta, bytes) = advert(Version::V3, "10.0.0.9", 200, 100);
    assert!(matches!(
        b.handle_packet(ms(1), meta, &bytes),
        Err(vrrp_proto::RecvError::UnknownSource(_))
    ));
    assert_eq!(b.stats().unknown_source, 1);
}

#[test]
fn announcements_repeat_space_delay_and_refresh() {
    let mut r = router(base("10.0.0.100", 255).announce(Announce {
        repeat: 3,
        interval: Duration::from_millis(100),
        delay: Duration::from_secs(2),
        refresh: Duration::from_secs(10),
        refresh_repeat: 2,
    }));
    r.startup(ms(0));
    let mut garps = vec![];
    let mut now = ms(0);
    garps.extend(
        drain(&mut r)
            .into_iter()
            .filter(|o| *o == Out::Garp)
            .map(|_| now),
    );
    while now < ms(21_000) {
        now = r.poll_timeout().unwrap();
        r.handle_timeout(now);
        garps.extend(
            drain(&mut r)
                .into_iter()
                .filter(|o| *o == Out::Garp)
                .map(|_| now),
        );
    }
    let expect: Vec<Instant> = [
        0, 100, 200, // first burst, 100 ms apart
        2000, 2100, 2200, // second burst after garp_master_delay
        10_000, 10_100, // refresh, refresh_repeat 2
        20_000, 20_100,
    ]
    .into_iter()
    .map(ms)
    .collect();
    assert_eq!(garps, expect);
}

#[test]
fn ipv6_instance_sends_to_ff02_12_and_announces_with_na() {
    let mut r = router(
        Config::builder(51, ip("fe80::1"))
            .priority(255)
            .vip(ip("fe80::100"))
            .vip(ip("2001:db8::100"))
            .announce(Announce {
                repeat: 1,
                delay: Duration::ZERO,
                ..Announce::default()
            }),
    );
    r.startup(ms(0));
    let out = drain(&mut r);
    assert!(out.contains(&Out::Advert {
        dst: ip("ff02::12"),
        priority: 255
    }));
    assert_eq!(out.iter().filter(|o| **o == Out::Na).count(), 2);
}

#[test]
fn fault_releases_and_recovers() {
    let mut r = router(base("10.0.0.1", 100));
    r.startup(ms(0));
    r.handle_timeout(r.poll_timeout().unwrap());
    let _ = drain(&mut r);
    r.set_fault(ms(5000), true);
    assert_eq!(
        drain(&mut r),
        [
            Out::Advert {
                dst: ip("224.0.0.18"),
                priority: 0
            },
            Out::Remove(IpCidr::host(IpAddr::from(VIP))),
            Out::State(State::Master, State::Fault, Reason::Fault),
        ]
    );
    assert_eq!(r.poll_timeout(), None);
    // Adverts are counted but ignored in FAULT.
    let (meta, bytes) = advert(Version::V3, "10.0.0.2", 200, 100);
    r.handle_packet(ms(5100), meta, &bytes).unwrap();
    assert_eq!(r.state(), State::Fault);
    r.set_fault(ms(6000), false);
    assert_eq!(
        drain(&mut r),
        [Out::State(
            State::Fault,
            State::Backup,
            Reason::FaultCleared
        )]
    );
    assert_eq!(r.poll_timeout(), Some(ms(6000) + r.master_down_interval()));
}

#[test]
fn lowering_the_master_priority_lets_a_preempting_backup_take_over() {
    let mut m = router(base("10.0.0.2", 150));
    let mut b = router(base("10.0.0.1", 100));
    m.startup(ms(0));
    b.startup(ms(0));
    m.handle_timeout(m.poll_timeout().unwrap());
    let _ = drain(&mut m);
    m.set_priority(ms(4000), 50).unwrap();
    assert_eq!(m.set_priority(ms(4000), 0), Err(ConfigError::Priority(0)));
    assert_eq!(
        m.set_priority(ms(4000), 255),
        Err(ConfigError::Priority(255))
    );
    let (meta, bytes) = advert(Version::V3, "10.0.0.2", m.priority(), 100);
    b.handle_packet(ms(4000), meta, &bytes).unwrap();
    // Discarded: b keeps its startup deadline and preempts when it fires.
    let t = b.poll_timeout().unwrap();
    assert_eq!(t, ms(0) + b.master_down_interval());
    b.handle_timeout(t);
    assert_eq!(b.state(), State::Master);
}

#[test]
fn the_builder_names_the_bad_field() {
    let ok = || Config::builder(51, ip("10.0.0.1")).vip(IpAddr::from(VIP));
    assert_eq!(
        Config::builder(0, ip("10.0.0.1"))
            .vip(IpAddr::from(VIP))
            .build()
            .unwrap_err(),
        ConfigError::Vrid(0)
    );
    assert_eq!(
        ok().priority(0).build().unwrap_err(),
        ConfigError::Priority(0)
    );
    assert_eq!(
        ok().advert_interval(Duration::ZERO).build().unwrap_err(),
        ConfigError::AdvertIntervalZero
    );
    assert!(matches!(
        ok().advert_interval(Duration::from_secs(41)).build(),
        Err(ConfigError::AdvertIntervalTooLarge { version: 3, .. })
    ));
    assert!(matches!(
        ok().version(Version::V2)
            .advert_interval(Duration::from_secs(256))
            .build(),
        Err(ConfigError::AdvertIntervalTooLarge { version: 2, .. })
    ));
    assert!(matches!(
        ok().version(Version::V2)
            .advert_interval(Duration::from_millis(1500))
            .build(),
        Err(ConfigError::AdvertIntervalResolution { version: 2, .. })
    ));
    assert!(matches!(
        ok().advert_interval(Duration::from_millis(15)).build(),
        Err(ConfigError::AdvertIntervalResolution { version: 3, .. })
    ));
    assert_eq!(
        Config::builder(51, ip("10.0.0.1")).build().unwrap_err(),
        ConfigError::NoVip
    );
    assert_eq!(
        ok().vip(ip("fe80::1")).build().unwrap_err(),
        ConfigError::MixedFamilies {
            field: "virtual_ipaddress",
            addr: ip("fe80::1")
        }
    );
    assert_eq!(
        ok().unicast_peer(ip("fe80::2")).build().unwrap_err(),
        ConfigError::MixedFamilies {
            field: "unicast_peer",
            addr: ip("fe80::2")
        }
    );
    assert_eq!(
        ok().version(Version::V2)
            .password(b"123456789")
            .build()
            .unwrap_err(),
        ConfigError::PasswordTooLong(9)
    );
    assert_eq!(
        ok().password(b"pw").build().unwrap_err(),
        ConfigError::AuthWithV3
    );
    assert_eq!(
        Config::builder(51, ip("fe80::1"))
            .version(Version::V2)
            .vip(ip("fe80::100"))
            .build()
            .unwrap_err(),
        ConfigError::V2WithIpv6
    );
    assert!(matches!(
        ok().preempt_delay(Duration::from_secs(1001)).build(),
        Err(ConfigError::PreemptDelay(_))
    ));
    assert_eq!(
        ok().vip(IpAddr::from(VIP)).build().unwrap_err(),
        ConfigError::DuplicateVip(IpAddr::from(VIP))
    );
    let mut many = ok();
    for i in 0..255u8 {
        many = many.vip(IpAddr::from([10, 1, 0, i]));
    }
    assert_eq!(many.build().unwrap_err(), ConfigError::TooManyVips(256));
    // The messages name the keepalived field.
    assert!(
        ConfigError::Vrid(0)
            .to_string()
            .contains("virtual_router_id")
    );
    assert!(
        ConfigError::PasswordTooLong(9)
            .to_string()
            .contains("auth_pass")
    );
    assert!(ok().build().is_ok());
}
