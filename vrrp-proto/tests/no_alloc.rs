//! The steady-state paths allocate nothing: a Backup taking its master's adverts, and a Master
//! sending its own, counted by a global allocator that tallies this thread's allocations.
// The counting allocator needs `unsafe impl GlobalAlloc`; it only delegates to `System`.
#![allow(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::IpAddr;
use std::time::Duration;

use vrrp_proto::wire::{AddrList, Ctx, Repr, Version};
use vrrp_proto::{Announce, Config, ConfigBuilder, Instant, RecvMeta, State, VirtualRouter};

thread_local! {
    /// Allocations (including reallocations) made by this thread. `const`-initialised and
    /// without a destructor, so touching it from the allocator never allocates.
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

struct Counting;

// SAFETY: every method forwards its arguments unchanged to `System`, which upholds the
// `GlobalAlloc` contract; the only addition is a thread-local counter update, which neither
// allocates nor unwinds.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        // SAFETY: the caller's guarantees for `layout` are passed on unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` (through us) with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        // SAFETY: `ptr` was allocated by `System` (through us) with `layout`; the caller
        // guarantees `new_size` is valid for it.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations this thread makes while running `f`.
fn allocations(f: impl FnOnce()) -> u64 {
    let before = ALLOCS.with(Cell::get);
    f();
    ALLOCS.with(Cell::get) - before
}

const ITERATIONS: u64 = 10_000;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// lb1 in the captures' shape, with refresh announcements on so they are in the loop too.
fn lb1(version: Version, primary: &str, vips: &[&str]) -> ConfigBuilder {
    let mut b = Config::builder(51, ip(primary))
        .version(version)
        .priority(100)
        .mac([0x02, 0x99, 0, 0, 0, 0x0b])
        .announce(Announce {
            repeat: 2,
            refresh: Duration::from_secs(2),
            refresh_repeat: 1,
            ..Announce::default()
        });
    for v in vips {
        b = b.vip(ip(v));
    }
    if version == Version::V2 {
        b = b.password(b"hapri51");
    }
    b
}

/// The master's advert (priority 200, from `src`) for `cfg`, and its metadata.
fn advert(cfg: &Config, src: &str) -> (RecvMeta, Vec<u8>) {
    let mut bytes = Vec::new();
    for v in cfg.vips() {
        match v.addr() {
            IpAddr::V4(a) => bytes.extend_from_slice(&a.octets()),
            IpAddr::V6(a) => bytes.extend_from_slice(&a.octets()),
        }
    }
    let dst = if cfg.primary().is_ipv6() {
        ip("ff02::12")
    } else {
        ip("224.0.0.18")
    };
    let repr = Repr {
        version: cfg.version(),
        vrid: cfg.vrid(),
        priority: 200,
        adver_int: cfg.advert_interval_cs(),
        addrs: AddrList::new(cfg.family(), &bytes).unwrap(),
        auth: *cfg.auth(),
    };
    let mut out = vec![0; repr.buffer_len()];
    repr.emit(&mut out, &Ctx::new(ip(src), dst)).unwrap();
    (RecvMeta::new(ip(src), dst, 255), out)
}

fn drain(r: &mut VirtualRouter) -> usize {
    let mut n = 0;
    while let Some(a) = r.poll_action() {
        std::hint::black_box(a);
        n += 1;
    }
    n
}

fn backup_steady_state(b: ConfigBuilder, master: &str) {
    let cfg = b.build().unwrap();
    let (meta, bytes) = advert(&cfg, master);
    let interval = cfg.advert_interval();
    let mut r = VirtualRouter::new(cfg);
    let mut now = Instant::ZERO;
    r.startup(now);
    drain(&mut r);
    let step = |r: &mut VirtualRouter, now: &mut Instant| {
        *now += interval;
        r.handle_packet(*now, meta, &bytes).unwrap();
        drain(r);
        std::hint::black_box(r.poll_timeout());
    };
    for _ in 0..100 {
        step(&mut r, &mut now);
    }
    let n = allocations(|| {
        for _ in 0..ITERATIONS {
            step(&mut r, &mut now);
        }
    });
    assert_eq!(r.state(), State::Backup);
    assert_eq!(r.stats().adverts_received, 100 + ITERATIONS);
    assert_eq!(n, 0, "{n} allocations in {ITERATIONS} Backup adverts");
}

fn master_steady_state(b: ConfigBuilder) {
    let mut r = VirtualRouter::new(b.build().unwrap());
    r.startup(Instant::ZERO);
    drain(&mut r);
    let mut actions = 0;
    let mut step = |r: &mut VirtualRouter| {
        let t = r.poll_timeout().unwrap();
        r.handle_timeout(t);
        actions += drain(r);
    };
    // Takeover, the delayed announcements, and some adverts.
    for _ in 0..100 {
        step(&mut r);
    }
    assert_eq!(r.state(), State::Master);
    let sent = r.stats().adverts_sent;
    let n = allocations(|| {
        for _ in 0..ITERATIONS {
            step(&mut r);
        }
    });
    assert_eq!(r.state(), State::Master);
    // Every timeout sent an advert or a refresh announcement.
    assert!(r.stats().adverts_sent - sent > ITERATIONS / 2);
    assert!(actions > ITERATIONS as usize);
    assert_eq!(n, 0, "{n} allocations in {ITERATIONS} Master timeouts");
}

/// One test, so no other test's allocations run on this thread meanwhile (the counter is
/// per thread anyway).
#[test]
fn steady_state_paths_do_not_allocate() {
    // The counter works.
    assert!(allocations(|| drop(std::hint::black_box(vec![1u8; 16]))) >= 1);

    let v3 = || lb1(Version::V3, "10.99.0.11", &["10.99.0.100"]);
    backup_steady_state(v3(), "10.99.0.12");
    master_steady_state(v3());

    let v2 = lb1(Version::V2, "10.99.0.11", &["10.99.0.100"]);
    backup_steady_state(v2.clone(), "10.99.0.12");
    master_steady_state(v2);

    let v6 = || {
        lb1(
            Version::V3,
            "fe80::99:ff:fe00:b",
            &["fe80::99:100", "fd99:0:0:99::100"],
        )
        .advert_interval(Duration::from_millis(100))
    };
    backup_steady_state(v6(), "fe80::99:ff:fe00:c");
    master_steady_state(v6());

    // Unicast to two peers: one advert per peer.
    let uni = || {
        lb1(Version::V3, "10.99.0.11", &["10.99.0.100", "10.99.0.101"])
            .unicast_peer(ip("10.99.0.12"))
            .unicast_peer(ip("10.99.0.13"))
    };
    backup_steady_state(uni(), "10.99.0.12");
    master_steady_state(uni());
}
