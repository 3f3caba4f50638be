//! Entry points for the cargo-fuzz targets in `fuzz/` (feature `fuzzing`).
//!
//! Each target body is one call: `fuzz/fuzz_targets/vrrp_parse.rs` calls [`vrrp_parse`] and
//! `fuzz/fuzz_targets/vrrp_router.rs` calls [`vrrp_router`]. `tests/corpus.rs` replays the seeds
//! in `fuzz/seeds/<target>/` through the same functions on stable, so `cargo test --features
//! fuzzing` covers every seed.
//!
//! The functions check invariants with `assert!`: a broken invariant is a panic, which is how a
//! fuzzer reports a finding. They decode their input byte by byte (no `arbitrary`), so a seed
//! can be written by hand; the formats are documented on each function.
//!
//! cargo-fuzz builds with `--cfg fuzzing`, under which
//! [`Packet::verify_checksum`](crate::wire::Packet::verify_checksum) always succeeds, so that
//! mutated inputs reach the checks behind the checksum. The oracles here therefore compare
//! re-parsed [`Repr`]s rather than bytes, and check the emitted checksum themselves.

// A fuzz target reports a broken invariant by panicking.
#![allow(clippy::panic)]

use alloc::vec::Vec;
use core::fmt::{self, Write as _};
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use core::time::Duration;

use crate::wire::{
    self, AddrFamily, AddrList, Auth, Ctx, InsufficientSize, MULTICAST_V4, MULTICAST_V6, Packet,
    Repr, V3Checksum, Version,
};
use crate::{Action, Announce, Config, Instant, RecvMeta, State, Stats, VirtualRouter};

/// The longest VRRP message: v3 over IPv6 with 255 addresses (v2 tops out at 1 036 bytes).
const MAX_MESSAGE: usize = 8 + 255 * 16;

/// The hosts of the keepalived captures (`tests/data/vectors.json`): lb1 is `.11`, lb2 `.12`.
const LB0_V4: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 10);
const LB1_V4: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 11);
const LB2_V4: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 12);
const LB3_V4: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 13);
const LB0_V6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0x99, 0xff, 0xfe00, 0x0a);
const LB1_V6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0x99, 0xff, 0xfe00, 0x0b);
const LB2_V6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0x99, 0xff, 0xfe00, 0x0c);
const LB3_V6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0x99, 0xff, 0xfe00, 0x0d);
/// lb1's interface MAC in the captures.
const LB1_MAC: [u8; 6] = [0x02, 0x99, 0x00, 0x00, 0x00, 0x0b];

// ---------------------------------------------------------------------------------------------
// vrrp_parse

/// Splits a `vrrp_parse` input into the IP header context and the VRRP message.
///
/// The first byte selects the context; the rest is the message. Bits of the first byte:
///
/// | bits | meaning |
/// |---|---|
/// | 0-1 | 0: IPv4 src and dst; 1: IPv6; 2: IPv4 src, IPv6 dst; 3: IPv6 src, IPv4 dst |
/// | 2-3 | VRRPv3 IPv4 checksum: 0 and 3 pseudo-header, 1 message only, 2 either |
/// | 4 | source: 0 lb1 (`10.99.0.11` / `fe80::99:ff:fe00:b`), 1 lb2 (`.12` / `...:c`) |
/// | 5 | destination: 0 the multicast group, 1 the other lb (unicast) |
/// | 6-7 | ignored |
///
/// So a captured lb1 advert is `00` + the message (IPv6: `01`), an lb2 one `10` (`11`).
/// Returns `None` for empty input.
pub fn parse_input(data: &[u8]) -> Option<(Ctx, &[u8])> {
    let (&head, msg) = data.split_first()?;
    let lb2 = head & 0x10 != 0;
    let unicast = head & 0x20 != 0;
    let (me4, peer4, me6, peer6) = if lb2 {
        (LB2_V4, LB1_V4, LB2_V6, LB1_V6)
    } else {
        (LB1_V4, LB2_V4, LB1_V6, LB2_V6)
    };
    let dst4 = if unicast { peer4 } else { MULTICAST_V4 };
    let dst6 = if unicast { peer6 } else { MULTICAST_V6 };
    let (src, dst): (IpAddr, IpAddr) = match head & 3 {
        0 => (me4.into(), dst4.into()),
        1 => (me6.into(), dst6.into()),
        2 => (me4.into(), dst6.into()),
        _ => (me6.into(), dst4.into()),
    };
    let mode = match (head >> 2) & 3 {
        1 => V3Checksum::MessageOnly,
        2 => V3Checksum::Either,
        _ => V3Checksum::PseudoHeader,
    };
    Some((Ctx::new(src, dst).with_v3_checksum(mode), msg))
}

/// The `vrrp_parse` fuzz target: see [`parse_one`].
pub fn vrrp_parse(data: &[u8]) {
    let _ = parse_one(data);
}

/// Decodes `data` with [`parse_input`], runs [`Packet::new_checked`] and [`Repr::parse`], and
/// checks the oracle; returns the parse result (`None` for empty input).
///
/// Checked: nothing panics (accessors, `Display`, `Debug`, error messages); a message shorter
/// than the header is `Truncated` from both entry points; whatever parses has
/// `buffer_len() == len`, refuses a buffer one byte short with `InsufficientSize` without
/// writing to it, re-emits with a correct checksum in the context's convention, re-parses to an
/// equal `Repr`, and re-emits the same bytes except for the fields a `Repr` does not keep (the
/// checksum, the v3 reserved bits, v2 authentication data when the type is 0).
pub fn parse_one(data: &[u8]) -> Option<Result<Repr<'_>, wire::Error>> {
    let (ctx, msg) = parse_input(data)?;
    let mut sink = Sink;
    let packet = match Packet::new_checked(msg) {
        Ok(p) => p,
        Err(e) => {
            assert_eq!(
                e,
                wire::Error::Truncated {
                    needed: 8,
                    got: msg.len()
                }
            );
            let _ = write!(sink, "{} {e} {e:?}", Packet::new_unchecked(msg));
            // `Repr::parse` checks the length itself.
            assert_eq!(Repr::parse(&Packet::new_unchecked(msg), &ctx), Err(e));
            return Some(Err(e));
        }
    };
    let _ = write!(
        sink,
        "{packet} {packet:?} {} {} {} {} {} {} {} {} {}",
        packet.version(),
        packet.kind(),
        packet.vrid(),
        packet.priority(),
        packet.addr_count(),
        packet.v2_auth_type(),
        packet.v2_adver_int(),
        packet.v3_max_adver_int(),
        packet.checksum(),
    );
    let res = Repr::parse(&packet, &ctx);
    match &res {
        Ok(repr) => {
            let _ = write!(sink, "{repr:?}");
            check_reemit(repr, msg, &ctx);
        }
        Err(e) => {
            let _ = write!(sink, "{e} {e:?}");
        }
    }
    Some(res)
}

/// The re-emission oracle for a message that parsed.
fn check_reemit(repr: &Repr<'_>, msg: &[u8], ctx: &Ctx) {
    let len = repr.buffer_len();
    assert_eq!(
        len,
        msg.len(),
        "buffer_len disagrees with the parsed length"
    );
    let mut buf = [0xa5u8; MAX_MESSAGE];
    // One byte short: refused, and nothing written.
    if let Some(short) = buf.get_mut(..len.saturating_sub(1)) {
        assert_eq!(
            repr.emit(short, ctx),
            Err(InsufficientSize { required: len })
        );
    }
    assert!(
        buf.iter().all(|&b| b == 0xa5),
        "emit wrote into a short buffer"
    );
    assert_eq!(repr.emit(&mut buf, ctx), Ok(len));
    let out = buf.get(..len).unwrap_or_default();
    assert!(
        buf.get(len..)
            .unwrap_or_default()
            .iter()
            .all(|&b| b == 0xa5),
        "emit wrote past buffer_len"
    );
    assert!(checksum_ok(out, ctx), "emit wrote a wrong checksum");
    let again = Packet::new_checked(out).and_then(|p| Repr::parse(&p, ctx));
    assert_eq!(again, Ok(*repr), "re-emitted message re-parses differently");
    // Byte for byte, apart from what a Repr does not keep.
    let auth_start = len.saturating_sub(8);
    for (i, (&a, &b)) in msg.iter().zip(out).enumerate() {
        let same = match (i, repr.version, repr.auth) {
            (6 | 7, ..) => true,
            (4, Version::V3, _) => a & 0x0f == b,
            (_, Version::V2, Auth::None) if i >= auth_start => b == 0,
            _ => a == b,
        };
        assert!(same, "re-emitted byte {i} differs: {a:#04x} -> {b:#04x}");
    }
}

/// Whether `msg`'s stored checksum is the one its version and `ctx` call for when sending
/// (computed independently of `verify_checksum`, which `cfg(fuzzing)` turns off).
fn checksum_ok(msg: &[u8], ctx: &Ctx) -> bool {
    let Ok(p) = Packet::new_checked(msg) else {
        return false;
    };
    let pseudo = match (p.version(), ctx.family()) {
        (2, _) => false,
        (_, Ok(AddrFamily::Ipv6)) => true,
        _ => ctx.v3_checksum != V3Checksum::MessageOnly,
    };
    p.compute_checksum(ctx, pseudo) == Ok(p.checksum())
}

/// A `fmt::Write` that discards everything: formatting must not panic, its output is moot.
struct Sink;

impl fmt::Write for Sink {
    fn write_str(&mut self, _: &str) -> fmt::Result {
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// vrrp_router

/// How far a [`run_router`] input got, so a corpus test can tell a seed exercised something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RouterRun {
    /// Events decoded and applied (the startup at time zero not included).
    pub events: usize,
    /// Packets `handle_packet` accepted.
    pub accepted: usize,
    /// Packets `handle_packet` refused.
    pub refused: usize,
    /// The router's counters at the end.
    pub stats: Stats,
    /// The state at the end.
    pub state: State,
}

/// The `vrrp_router` fuzz target: see [`run_router`].
pub fn vrrp_router(data: &[u8]) {
    let _ = run_router(data);
}

/// Decodes the 8-byte configuration header of a `vrrp_router` input into a [`Config`] for
/// lb1 (`10.99.0.11`, or `fe80::99:ff:fe00:b` for IPv6; MAC `02:99:00:00:00:0b`) and returns
/// it with the rest of the input. `None` when the input is shorter or the builder refuses.
///
/// | byte | meaning |
/// |---|---|
/// | 0 | flags: bit 0 VRRPv2 (else v3), 1 IPv6, 2 `nopreempt`, 3 password `hapri51` (v2 only), 4 unicast peers lb2 and lb3, 5 `check_unicast_src`, 6 `use_vmac` |
/// | 1 | VRID (0 is refused) |
/// | 2 | priority (0 is refused) |
/// | 3 | interval: 255 the maximum (255 s / 40.95 s); else v2 `1 + b % 3` s, v3 `(1 + b) * 10` ms |
/// | 4 | VIPs: 255 gives 255 of them, else `1 + b % 4` (`10.99.0.100` up; IPv6 `fe80::99:100`, `fd99:0:0:99::100` up) |
/// | 5 | `preempt_delay`: bit 7 clear 0, else `(b & 0x7f) * 100` ms |
/// | 6 | announce: repeat `b & 3`, bit 2 spacing 10 ms, bit 3 delay 1 s, bit 4 refresh 2 s, refresh repeat `(b >> 5) & 3` |
/// | 7 | bit 0 NA router flag, bit 1 accept mode, bits 2-3 v3 checksum (1 message only, 2 either) |
pub fn router_config(data: &[u8]) -> Option<(Config, &[u8])> {
    let (head, rest) = data.split_first_chunk::<8>()?;
    let [
        flags,
        vrid,
        priority,
        interval,
        nvips,
        delay,
        announce,
        misc,
    ] = *head;
    let v2 = flags & 1 != 0;
    let v6 = flags & 2 != 0;
    let primary: IpAddr = if v6 { LB1_V6.into() } else { LB1_V4.into() };
    let interval = match (v2, interval) {
        (true, 255) => Duration::from_secs(255),
        (false, 255) => Duration::from_millis(40_950),
        (true, b) => Duration::from_secs(1 + u64::from(b % 3)),
        (false, b) => Duration::from_millis((1 + u64::from(b)) * 10),
    };
    let mut b = Config::builder(vrid, primary)
        .version(if v2 { Version::V2 } else { Version::V3 })
        .priority(priority)
        .advert_interval(interval)
        .preempt(flags & 4 == 0)
        .check_unicast_src(flags & 0x20 != 0)
        .use_vmac(flags & 0x40 != 0)
        .mac(LB1_MAC)
        .na_router_flag(misc & 1 != 0)
        .accept_mode(misc & 2 != 0)
        .v3_checksum(match (misc >> 2) & 3 {
            1 => V3Checksum::MessageOnly,
            2 => V3Checksum::Either,
            _ => V3Checksum::PseudoHeader,
        })
        .announce(Announce {
            repeat: announce & 3,
            interval: Duration::from_millis(if announce & 4 != 0 { 10 } else { 0 }),
            delay: Duration::from_secs(u64::from(announce & 8 != 0)),
            refresh: Duration::from_secs(if announce & 0x10 != 0 { 2 } else { 0 }),
            refresh_repeat: (announce >> 5) & 3,
        });
    if delay & 0x80 != 0 {
        b = b.preempt_delay(Duration::from_millis(u64::from(delay & 0x7f) * 100));
    }
    if v2 && flags & 8 != 0 {
        b = b.password(b"hapri51");
    }
    if flags & 0x10 != 0 {
        let (p2, p3): (IpAddr, IpAddr) = if v6 {
            (LB2_V6.into(), LB3_V6.into())
        } else {
            (LB2_V4.into(), LB3_V4.into())
        };
        b = b.unicast_peer(p2).unicast_peer(p3);
    }
    let n = if nvips == 255 {
        255
    } else {
        1 + usize::from(nvips % 4)
    };
    for i in 0..n {
        b = b.vip(vip(v6, i));
    }
    Some((b.build().ok()?, rest))
}

/// The `i`th virtual address of the fuzzed configuration: the captures' VIPs first.
fn vip(v6: bool, i: usize) -> IpAddr {
    let i = u32::try_from(i).unwrap_or(0);
    if v6 {
        if i == 0 {
            Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0x99, 0x100).into()
        } else {
            Ipv6Addr::new(0xfd99, 0, 0, 0x99, 0, 0, 0, 0x100 + (i as u16 - 1)).into()
        }
    } else {
        Ipv4Addr::from_bits(Ipv4Addr::new(10, 99, 0, 100).to_bits() + i).into()
    }
}

/// Runs the `vrrp_router` target and reports how far it got; `None` when [`router_config`]
/// refuses the header.
///
/// After the 8-byte header (see [`router_config`]) the router is started at time zero and the
/// rest of the input is a list of events, each an opcode byte (its low three bits select the
/// event) and its arguments; a missing argument byte reads as zero.
///
/// | op | args | event |
/// |---|---|---|
/// | 0 | `hi lo` | advance time by `hi lo` × 10 µs (bit 3 of the opcode set: × 1 ms) |
/// | 1 | | jump to [`VirtualRouter::poll_timeout`] and call `handle_timeout` |
/// | 2 | `who prio mut m1 m2` | a valid advert with priority `prio` from a peer, mutated (below) |
/// | 3 | `len bytes…` | `len` raw bytes from lb2 to the multicast group, TTL 255 |
/// | 4 | | `handle_timeout(now)` (possibly early: a no-op) |
/// | 5 | `p` | `set_priority(p)` |
/// | 6 | `b` | `set_fault(b & 1 == 1)` |
/// | 7 | `b` | `b & 1 == 1`: `startup`, else `shutdown` |
///
/// `who`: bits 0-1 the source (lb2, lb3, lb1 = ourselves, lb0 = a lower address); bits 2-3 the
/// address list (2: the first VIP only, 3: the first VIP changed, else ours); bit 4 sent
/// unicast to us; bits 5-6 the interval (0 ours, 1 double, 2 zero, 3 `m1` cs); bit 7 the other
/// version. `mut & 7`: 0 none, 1 XOR byte `m1 % len` with `m2`, 2 the same then a fresh
/// checksum, 3 truncate to `m1 % len`, 4 append `m2`, 5 TTL `m2`, 6 the wrong password (v2)
/// or VRID + 1, 7 a source of the other family.
///
/// Checked after every event, with the actions drained: nothing panics; a refused packet
/// leaves state, deadline, master and priority unchanged, queues nothing and bumps exactly one
/// error counter by one; a packet [`VirtualRouter::accepts`] declines is refused; after
/// `handle_timeout(now)` the next deadline is later than `now`; actions come in the documented
/// order (`StateChanged` to Master, then `AddVip` for each address in order, then the adverts,
/// then the announcements; leaving: priority-0 adverts, `RemoveVip` for each address,
/// `StateChanged`); `AddVip`/`RemoveVip` balance, so the addresses are held exactly while
/// Master; every advert and frame is well formed and matches the configuration; a timer runs
/// exactly in Backup and Master. And RFC 5798 §6.4.2/§6.4.3 on every advert taken: a Backup
/// never becomes Master on a packet, a release sets its timer to Skew_Time and an advert it
/// follows to Master_Down_Interval; a Master yields exactly to a higher priority, or to an
/// equal one from a higher address.
pub fn run_router(data: &[u8]) -> Option<RouterRun> {
    let (cfg, rest) = router_config(data)?;
    let mut h = Harness::new(cfg);
    h.router.startup(h.now);
    h.drain();
    let mut input = Input(rest);
    let mut events = 0;
    while let Some(op) = input.next() {
        events += 1;
        match op & 7 {
            0 => {
                let unit = if op & 8 != 0 { 1000 } else { 10 };
                let dt = u64::from(input.u16()) * unit;
                h.now = Instant::from_micros(h.now.micros().saturating_add(dt));
            }
            1 => {
                if let Some(t) = h.router.poll_timeout() {
                    h.now = h.now.max(t);
                }
                h.timeout();
            }
            2 => {
                let args = [input.u8(), input.u8(), input.u8(), input.u8(), input.u8()];
                h.synthesized(args);
            }
            3 => {
                let n = usize::from(input.u8());
                let bytes = input.take(n);
                let meta = RecvMeta::new(h.peer(0), h.multicast(), 255);
                h.packet(meta, bytes);
            }
            4 => h.timeout(),
            5 => {
                let p = input.u8();
                let before = h.router.priority();
                let res = h.router.set_priority(h.now, p);
                let refused = p == 0 || (p == 255 && h.router.config().priority() != 255);
                assert_eq!(res.is_err(), refused);
                assert_eq!(h.router.priority(), if refused { before } else { p });
                h.drain();
            }
            6 => {
                let fault = input.u8() & 1 == 1;
                h.router.set_fault(h.now, fault);
                h.drain();
            }
            _ => {
                if input.u8() & 1 == 1 {
                    h.router.startup(h.now);
                } else {
                    h.router.shutdown(h.now);
                }
                h.drain();
            }
        }
    }
    Some(RouterRun {
        events,
        accepted: h.accepted,
        refused: h.refused,
        stats: *h.router.stats(),
        state: h.router.state(),
    })
}

/// The rest of a fuzz input; reads past the end give zeros.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn next(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
    fn u8(&mut self) -> u8 {
        self.next().unwrap_or(0)
    }
    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }
    fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }
}

/// The router under test, the clock, and the model of what the IO layer has been told.
struct Harness {
    router: VirtualRouter,
    cfg: Config,
    now: Instant,
    /// The state as announced by `StateChanged` actions.
    state: State,
    /// Which VIPs the IO layer holds, as told by `AddVip`/`RemoveVip`.
    held: Vec<bool>,
    /// The configured VIPs packed back to back, as adverts carry them.
    vip_bytes: Vec<u8>,
    accepted: usize,
    refused: usize,
}

impl Harness {
    fn new(cfg: Config) -> Self {
        let mut vip_bytes = Vec::new();
        for v in cfg.vips() {
            match v.addr() {
                IpAddr::V4(a) => vip_bytes.extend_from_slice(&a.octets()),
                IpAddr::V6(a) => vip_bytes.extend_from_slice(&a.octets()),
            }
        }
        Self {
            router: VirtualRouter::new(cfg.clone()),
            held: alloc::vec![false; cfg.vips().len()],
            cfg,
            now: Instant::ZERO,
            state: State::Initialize,
            vip_bytes,
            accepted: 0,
            refused: 0,
        }
    }

    fn v6(&self) -> bool {
        self.cfg.family() == AddrFamily::Ipv6
    }

    fn multicast(&self) -> IpAddr {
        if self.v6() {
            MULTICAST_V6.into()
        } else {
            MULTICAST_V4.into()
        }
    }

    /// lb2, lb3, lb1 (ourselves), lb0, in the configured family.
    fn peer(&self, i: u8) -> IpAddr {
        match (self.v6(), i & 3) {
            (false, 0) => LB2_V4.into(),
            (false, 1) => LB3_V4.into(),
            (false, 2) => LB1_V4.into(),
            (false, _) => LB0_V4.into(),
            (true, 0) => LB2_V6.into(),
            (true, 1) => LB3_V6.into(),
            (true, 2) => LB1_V6.into(),
            (true, _) => LB0_V6.into(),
        }
    }

    /// `handle_timeout(now)`; afterwards no deadline may be due.
    fn timeout(&mut self) {
        self.router.handle_timeout(self.now);
        if let Some(t) = self.router.poll_timeout() {
            assert!(
                t > self.now,
                "deadline {t} not after handle_timeout({})",
                self.now
            );
        }
        self.drain();
    }

    /// Op 2: a valid advert from a peer, then perhaps a mutation.
    fn synthesized(&mut self, [who, priority, mutation, m1, m2]: [u8; 5]) {
        let mut src = self.peer(who);
        let dst = if who & 0x10 != 0 {
            self.cfg.primary()
        } else {
            self.multicast()
        };
        let family = self.cfg.family();
        let alen = family.addr_len();
        let mut changed = self.vip_bytes.clone();
        if let Some(b) = changed.get_mut(alen - 1) {
            *b ^= 0x80;
        }
        let addr_bytes = match (who >> 2) & 3 {
            2 => self.vip_bytes.get(..alen).unwrap_or_default(),
            3 => &changed,
            _ => &self.vip_bytes,
        };
        let Some(addrs) = AddrList::new(family, addr_bytes) else {
            return;
        };
        let ours = self.cfg.advert_interval_cs();
        let adver_int = match (who >> 5) & 3 {
            0 => ours,
            1 => ours.saturating_mul(2),
            2 => 0,
            _ => u16::from(m1),
        };
        let version = match (self.cfg.version(), who & 0x80 != 0) {
            (Version::V2, false) | (Version::V3, true) => Version::V2,
            _ => Version::V3,
        };
        let mut auth = if version == self.cfg.version() {
            *self.cfg.auth()
        } else {
            Auth::None
        };
        let mut vrid = self.cfg.vrid();
        let mut ttl = 255;
        if mutation & 7 == 6 {
            if version == Version::V2 {
                auth = Auth::Simple(*b"wrongpw\0");
            } else {
                vrid = vrid.wrapping_add(1);
            }
        }
        if mutation & 7 == 7 {
            src = match src {
                IpAddr::V4(_) => LB2_V6.into(),
                IpAddr::V6(_) => LB2_V4.into(),
            };
        }
        let repr = Repr {
            version,
            vrid,
            priority,
            adver_int,
            addrs,
            auth,
        };
        let ctx = Ctx::new(src, dst).with_v3_checksum(self.cfg.v3_checksum());
        let mut buf = [0u8; MAX_MESSAGE + 1];
        let Ok(mut len) = repr.emit(&mut buf, &ctx) else {
            return;
        };
        match mutation & 7 {
            1 | 2 => {
                if let Some(b) = buf.get_mut(usize::from(m1) % len) {
                    *b ^= m2;
                }
                if mutation & 7 == 2 {
                    let mut p = Packet::new_unchecked(buf.get_mut(..len).unwrap_or_default());
                    let _ = p.fill_checksum(&ctx);
                }
            }
            3 => len = usize::from(m1) % len,
            4 => {
                if let Some(b) = buf.get_mut(len) {
                    *b = m2;
                    len += 1;
                }
            }
            5 => ttl = m2,
            _ => {}
        }
        let bytes = buf.get(..len).unwrap_or_default();
        self.packet(RecvMeta::new(src, dst, ttl), bytes);
    }

    /// `handle_packet`, with the refusal and counter invariants.
    fn packet(&mut self, meta: RecvMeta, bytes: &[u8]) {
        let r = &mut self.router;
        let accepts = r.accepts(&meta, bytes);
        let before = (
            r.state(),
            r.poll_timeout(),
            r.master(),
            r.priority(),
            r.master_adver_interval(),
        );
        let stats = *r.stats();
        let res = r.handle_packet(self.now, meta, bytes);
        let after = *r.stats();
        let errors_before = error_counters(&stats);
        let errors_after = error_counters(&after);
        let bumped: u64 = errors_after
            .iter()
            .zip(errors_before)
            .map(|(a, b)| a - b)
            .sum();
        match res {
            Err(e) => {
                self.refused += 1;
                let _ = write!(Sink, "{e} {e:?}");
                let now = (
                    r.state(),
                    r.poll_timeout(),
                    r.master(),
                    r.priority(),
                    r.master_adver_interval(),
                );
                assert_eq!(now, before, "a refused packet ({e:?}) changed the router");
                assert!(
                    r.poll_action().is_none(),
                    "a refused packet queued an action"
                );
                assert_eq!(bumped, 1, "{e:?} must bump exactly one error counter");
                assert_eq!(
                    (after.adverts_received, after.priority_zero_received),
                    (stats.adverts_received, stats.priority_zero_received)
                );
            }
            Ok(()) => {
                self.accepted += 1;
                assert!(accepts, "accepts() declined a packet handle_packet took");
                assert_eq!(after.adverts_received, stats.adverts_received + 1);
                let prio = bytes.get(2).copied();
                assert_eq!(
                    after.priority_zero_received - stats.priority_zero_received,
                    u64::from(prio == Some(0))
                );
                // Only an address owner's advert with another address list is taken and
                // counted as an address-list error.
                let owner_mismatch = after.address_list_errors - stats.address_list_errors;
                assert!(bumped == owner_mismatch && (bumped == 0 || prio == Some(255)));
                self.check_receive(before.0, before.3, meta.src, prio.unwrap_or(0));
            }
        }
        self.drain();
    }

    /// RFC 5798 §6.4.2 / §6.4.3 for an advert with priority `prio` from `src` that was taken
    /// while in `state` with running priority `ours`.
    fn check_receive(&self, state: State, ours: u8, src: IpAddr, prio: u8) {
        let r = &self.router;
        match state {
            // A Backup becomes Master only through its timers, never on a packet. A release
            // starts Skew_Time; an advert it follows restarts Master_Down_Interval.
            State::Backup => {
                assert_eq!(r.state(), State::Backup, "an advert made a Backup leave");
                let follows = prio >= ours || !self.cfg.preempt();
                if prio == 0 {
                    // (A pending preempt_delay timer may come first.)
                    let skew = Some(self.now + r.skew_time());
                    if self.cfg.preempt_delay().is_zero() {
                        assert_eq!(r.poll_timeout(), skew);
                    } else {
                        assert!(r.poll_timeout() <= skew);
                    }
                } else if follows {
                    assert_eq!(r.poll_timeout(), Some(self.now + r.master_down_interval()));
                    assert_eq!(r.master(), Some(src));
                }
            }
            // A Master yields to a higher priority, or to an equal one from a higher address.
            State::Master => {
                let higher = match (src, self.cfg.primary()) {
                    (IpAddr::V4(a), IpAddr::V4(b)) => a > b,
                    (IpAddr::V6(a), IpAddr::V6(b)) => a > b,
                    _ => false,
                };
                let yields = prio > ours || (prio == ours && higher);
                let want = if yields { State::Backup } else { State::Master };
                assert_eq!(r.state(), want, "Master took priority {prio} from {src}");
            }
            State::Initialize | State::Fault => assert_eq!(r.state(), state),
        }
    }

    /// Drains `poll_action` and checks the order, the contents and the VIP balance.
    fn drain(&mut self) {
        let prio = self.router.priority();
        let n = self.held.len();
        let dests = self.cfg.unicast_peers().len().max(1);
        let mut phase = Phase::Idle;
        let mut adverts_in_row = 0usize;
        let mut announcements = 0usize;
        let mut became_master = false;
        let announce = *self.cfg.announce();
        while let Some(action) = self.router.poll_action() {
            if !matches!(action, Action::SendAdvert(_)) {
                assert_eq!(
                    adverts_in_row % dests,
                    0,
                    "adverts come one per destination"
                );
                adverts_in_row = 0;
            }
            match action {
                Action::StateChanged { from, to, reason } => {
                    let _ = write!(Sink, "{reason:?}");
                    assert_eq!(from, self.state, "StateChanged from a state we were not in");
                    assert_ne!(from, to);
                    match phase {
                        Phase::Leave => assert_eq!(from, State::Master),
                        Phase::Idle => assert_ne!(from, State::Master, "left Master holding VIPs"),
                        _ => panic!("StateChanged in the middle of {phase:?}"),
                    }
                    self.state = to;
                    phase = if to == State::Master {
                        became_master = true;
                        Phase::Adding(0)
                    } else {
                        Phase::Idle
                    };
                }
                Action::AddVip(c) => {
                    let Phase::Adding(i) = phase else {
                        panic!("AddVip({c}) outside the becoming-master sequence ({phase:?})");
                    };
                    assert_eq!(Some(&c), self.cfg.vips().get(i), "AddVip out of order");
                    let held = self.held.get_mut(i).map(|h| core::mem::replace(h, true));
                    assert_eq!(held, Some(false), "AddVip of a held address");
                    phase = if i + 1 == n {
                        Phase::Adverts(dests)
                    } else {
                        Phase::Adding(i + 1)
                    };
                }
                Action::RemoveVip(c) => {
                    let i = match phase {
                        Phase::Idle | Phase::Releasing => 0,
                        Phase::Removing(i) => i,
                        _ => panic!("RemoveVip({c}) in the middle of {phase:?}"),
                    };
                    assert_eq!(self.state, State::Master, "RemoveVip while not Master");
                    assert_eq!(Some(&c), self.cfg.vips().get(i), "RemoveVip out of order");
                    let held = self.held.get_mut(i).map(|h| core::mem::replace(h, false));
                    assert_eq!(held, Some(true), "RemoveVip of an address not held");
                    phase = if i + 1 == n {
                        Phase::Leave
                    } else {
                        Phase::Removing(i + 1)
                    };
                }
                Action::SendAdvert(t) => {
                    assert_eq!(self.state, State::Master, "advert while not Master");
                    adverts_in_row += 1;
                    let p =
                        check_advert(&self.cfg, &self.vip_bytes, t.src, t.dst, t.ttl, t.payload);
                    phase = match phase {
                        Phase::Adverts(left) => {
                            assert_eq!(p, prio, "becoming master advertises the running priority");
                            if left > 1 {
                                Phase::Adverts(left - 1)
                            } else {
                                Phase::Idle
                            }
                        }
                        Phase::Idle if p == prio => Phase::Idle,
                        Phase::Idle | Phase::Releasing if p == 0 => Phase::Releasing,
                        _ => panic!("advert with priority {p} in {phase:?} (running {prio})"),
                    };
                }
                Action::SendGratuitousArp { vip, frame } => {
                    check_announce(&self.cfg, self.state, phase, announcements, IpAddr::V4(vip));
                    let mut want = [0u8; wire::GARP_FRAME_LEN];
                    let ok = wire::gratuitous_arp(self.cfg.announce_mac(), vip, &mut want);
                    assert_eq!(ok, Ok(wire::GARP_FRAME_LEN));
                    assert_eq!(frame, &want[..], "gratuitous ARP frame");
                    announcements += 1;
                }
                Action::SendUnsolicitedNa { vip, frame } => {
                    check_announce(&self.cfg, self.state, phase, announcements, IpAddr::V6(vip));
                    let mut want = [0u8; wire::NA_FRAME_LEN];
                    let ok = wire::unsolicited_na(
                        self.cfg.announce_mac(),
                        vip,
                        self.cfg.na_router_flag,
                        &mut want,
                    );
                    assert_eq!(ok, Ok(wire::NA_FRAME_LEN));
                    assert_eq!(frame, &want[..], "unsolicited NA frame");
                    announcements += 1;
                }
            }
        }
        assert_eq!(
            adverts_in_row % dests,
            0,
            "adverts come one per destination"
        );
        assert_eq!(phase, Phase::Idle, "action sequence cut short");
        let state = self.router.state();
        assert_eq!(
            state, self.state,
            "state() disagrees with the StateChanged actions"
        );
        let master = state == State::Master;
        assert!(
            self.held.iter().all(|&h| h == master),
            "VIPs must be held exactly while Master"
        );
        if became_master {
            let rounds = if announce.interval.is_zero() {
                usize::from(announce.repeat)
            } else {
                usize::from(announce.repeat.min(1))
            };
            assert_eq!(
                announcements,
                rounds * n,
                "announcements on becoming master"
            );
        }
        let running = matches!(state, State::Backup | State::Master);
        assert_eq!(
            self.router.poll_timeout().is_some(),
            running,
            "a timer runs exactly in Backup and Master"
        );
        if master {
            assert_eq!(self.router.master(), Some(self.cfg.primary()));
        }
    }
}

/// Checks when and for what an announcement frame comes: in rounds over the VIPs, in order.
fn check_announce(cfg: &Config, state: State, phase: Phase, seen: usize, vip: IpAddr) {
    assert_eq!(
        phase,
        Phase::Idle,
        "announcement in the middle of {phase:?}"
    );
    assert_eq!(state, State::Master, "announcement while not Master");
    let n = cfg.vips().len().max(1);
    let want = cfg.vips().get(seen % n).map(|c| c.addr());
    assert_eq!(Some(vip), want, "announcements go round the VIPs in order");
}

/// Where a drain is in the documented action sequences.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Between sequences.
    Idle,
    /// Became Master; the `AddVip` of VIP `.0` comes next.
    Adding(usize),
    /// All VIPs added; `.0` adverts with the running priority come next.
    Adverts(usize),
    /// Priority-0 adverts of a release were sent; more, or the `RemoveVip`s, come next.
    Releasing,
    /// Leaving Master; the `RemoveVip` of VIP `.0` comes next.
    Removing(usize),
    /// All VIPs removed; the `StateChanged` from Master comes next.
    Leave,
}

/// Checks an advert the router asked to send; returns its priority.
fn check_advert(
    cfg: &Config,
    vip_bytes: &[u8],
    src: IpAddr,
    dst: IpAddr,
    ttl: u8,
    payload: &[u8],
) -> u8 {
    assert_eq!(src, cfg.primary());
    assert_eq!(ttl, 255);
    if cfg.unicast_peers().is_empty() {
        let group: IpAddr = match cfg.family() {
            AddrFamily::Ipv4 => MULTICAST_V4.into(),
            AddrFamily::Ipv6 => MULTICAST_V6.into(),
        };
        assert_eq!(dst, group);
    } else {
        assert!(cfg.unicast_peers().contains(&dst));
    }
    let ctx = Ctx::new(src, dst).with_v3_checksum(cfg.v3_checksum());
    assert!(checksum_ok(payload, &ctx), "advert checksum");
    let repr = Packet::new_checked(payload).and_then(|p| Repr::parse(&p, &ctx));
    let Ok(repr) = repr else {
        panic!("the router emitted an advert that does not parse: {repr:?}");
    };
    assert_eq!(repr.version, cfg.version());
    assert_eq!(repr.vrid, cfg.vrid());
    assert_eq!(repr.adver_int, cfg.advert_interval_cs());
    assert_eq!(repr.addrs.as_bytes(), vip_bytes);
    assert_eq!(&repr.auth, cfg.auth());
    repr.priority
}

/// The error counters of `s`: a refused packet bumps exactly one of them.
fn error_counters(s: &Stats) -> [u64; 15] {
    [
        s.adv_interval_errors,
        s.ip_ttl_errors,
        s.invalid_type,
        s.address_list_errors,
        s.packet_length_errors,
        s.checksum_errors,
        s.version_errors,
        s.vrid_errors,
        s.auth_failures,
        s.invalid_auth_type,
        s.auth_type_mismatch,
        s.address_family_errors,
        s.own_adverts,
        s.unknown_source,
        s.owner_discards,
    ]
}
