//! Property tests of the wire layer (round trip of every `Repr` shape, every truncation,
//! arbitrary input, short output buffers) and of `VirtualRouter::handle_packet` on arbitrary
//! and mutated input.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::Duration;

use proptest::prelude::*;
use vrrp_proto::wire::{self, AddrList, Ctx, InsufficientSize, Packet, Repr, V3Checksum};
use vrrp_proto::{Config, Instant, RecvMeta, State, VirtualRouter};

use strategies::{arb_ctx, arb_shape};

/// The proptest strategies of this crate.
mod strategies {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    use proptest::prelude::*;
    use vrrp_proto::wire::{AddrFamily, AddrList, Auth, Ctx, Repr, V3Checksum, Version};

    /// An owned description of a `Repr` (which borrows its addresses) and the context to
    /// emit it in.
    #[derive(Debug, Clone)]
    pub(crate) struct Shape {
        pub(crate) version: Version,
        pub(crate) family: AddrFamily,
        pub(crate) vrid: u8,
        pub(crate) priority: u8,
        pub(crate) adver_int: u16,
        pub(crate) addr_bytes: Vec<u8>,
        pub(crate) auth: Auth,
        pub(crate) ctx: Ctx,
    }

    impl Shape {
        pub(crate) fn repr(&self) -> Repr<'_> {
            Repr {
                version: self.version,
                vrid: self.vrid,
                priority: self.priority,
                adver_int: self.adver_int,
                addrs: AddrList::new(self.family, &self.addr_bytes).unwrap(),
                auth: self.auth,
            }
        }
    }

    pub(crate) fn arb_mode() -> impl Strategy<Value = V3Checksum> {
        prop_oneof![
            Just(V3Checksum::PseudoHeader),
            Just(V3Checksum::MessageOnly),
            Just(V3Checksum::Either),
        ]
    }

    fn arb_ip(family: AddrFamily) -> BoxedStrategy<IpAddr> {
        match family {
            AddrFamily::Ipv4 => any::<[u8; 4]>()
                .prop_map(|o| IpAddr::V4(Ipv4Addr::from(o)))
                .boxed(),
            AddrFamily::Ipv6 => any::<[u8; 16]>()
                .prop_map(|o| IpAddr::V6(Ipv6Addr::from(o)))
                .boxed(),
        }
    }

    /// A context of one family (source and destination agree).
    pub(crate) fn arb_ctx_in(family: AddrFamily) -> impl Strategy<Value = Ctx> {
        (arb_ip(family), arb_ip(family), arb_mode())
            .prop_map(|(s, d, m)| Ctx::new(s, d).with_v3_checksum(m))
    }

    /// Any context, mixed families included.
    pub(crate) fn arb_ctx() -> impl Strategy<Value = Ctx> {
        let fam = || prop_oneof![Just(AddrFamily::Ipv4), Just(AddrFamily::Ipv6)];
        (fam(), fam())
            .prop_flat_map(|(a, b)| (arb_ip(a), arb_ip(b), arb_mode()))
            .prop_map(|(s, d, m)| Ctx::new(s, d).with_v3_checksum(m))
    }

    /// Every representable advert: v2 (IPv4, seconds, with or without a password) or v3
    /// (IPv4 or IPv6, 12-bit centiseconds), 1 to 255 addresses, any VRID and priority.
    pub(crate) fn arb_shape() -> impl Strategy<Value = Shape> {
        let version = prop_oneof![Just(Version::V2), Just(Version::V3)];
        (version, any::<bool>())
            .prop_flat_map(|(version, v6)| {
                let family = if v6 && version == Version::V3 {
                    AddrFamily::Ipv6
                } else {
                    AddrFamily::Ipv4
                };
                // Mostly few addresses; sometimes up to the 255 the count field allows.
                let count = prop_oneof![4 => 1usize..=4, 1 => 1usize..=255];
                let adver_int = match version {
                    Version::V2 => (0u16..=255).prop_map(|s| s * 100).boxed(),
                    Version::V3 => (0u16..=0x0fff).boxed(),
                };
                let auth = match version {
                    Version::V2 => {
                        prop_oneof![Just(Auth::None), any::<[u8; 8]>().prop_map(Auth::Simple)]
                            .boxed()
                    }
                    Version::V3 => Just(Auth::None).boxed(),
                };
                (
                    Just(version),
                    Just(family),
                    any::<u8>(),
                    any::<u8>(),
                    adver_int,
                    count.prop_flat_map(move |n| {
                        proptest::collection::vec(any::<u8>(), n * family.addr_len())
                    }),
                    auth,
                    arb_ctx_in(family),
                )
            })
            .prop_map(
                |(version, family, vrid, priority, adver_int, addr_bytes, auth, ctx)| Shape {
                    version,
                    family,
                    vrid,
                    priority,
                    adver_int,
                    addr_bytes,
                    auth,
                    ctx,
                },
            )
    }
}

fn emit(repr: &Repr<'_>, ctx: &Ctx) -> Vec<u8> {
    let mut buf = vec![0u8; repr.buffer_len()];
    assert_eq!(repr.emit(&mut buf, ctx), Ok(buf.len()));
    buf
}

fn parse<'a>(bytes: &'a [u8], ctx: &Ctx) -> Result<Repr<'a>, wire::Error> {
    Packet::new_checked(bytes).and_then(|p| Repr::parse(&p, ctx))
}

proptest! {
    #[test]
    fn every_repr_round_trips_and_every_truncation_fails(shape in arb_shape()) {
        let repr = shape.repr();
        let ctx = shape.ctx;
        let bytes = emit(&repr, &ctx);
        prop_assert_eq!(bytes.len(), Repr::message_len(repr.version, shape.family, repr.addrs.len()));
        prop_assert_eq!(parse(&bytes, &ctx), Ok(repr));
        // Emitting the parsed form gives the same bytes.
        prop_assert_eq!(emit(&parse(&bytes, &ctx).unwrap(), &ctx), bytes.clone());
        // Every prefix is refused with a typed length error, never a panic.
        for t in 0..bytes.len() {
            let cut = &bytes[..t];
            let want = if t < 8 {
                wire::Error::Truncated { needed: 8, got: t }
            } else {
                wire::Error::Truncated { needed: bytes.len(), got: t }
            };
            prop_assert_eq!(parse(cut, &ctx), Err(want));
            prop_assert_eq!(Repr::parse(&Packet::new_unchecked(cut), &ctx), Err(want));
        }
        // One byte too many is a length error.
        let mut long = bytes.clone();
        long.push(0);
        prop_assert_eq!(
            parse(&long, &ctx),
            Err(wire::Error::Length { expected: bytes.len(), got: bytes.len() + 1 })
        );
    }

    #[test]
    fn emit_into_a_short_buffer_writes_nothing(
        shape in arb_shape(),
        short in any::<prop::sample::Index>(),
        fill in any::<u8>(),
    ) {
        let repr = shape.repr();
        let len = repr.buffer_len();
        let n = short.index(len);
        let mut buf = vec![fill; n];
        prop_assert_eq!(repr.emit(&mut buf, &shape.ctx), Err(InsufficientSize { required: len }));
        prop_assert!(buf.iter().all(|&b| b == fill));
        // A longer buffer is fine: exactly `len` bytes are written, the rest is untouched.
        let mut buf = vec![fill; len + 3];
        prop_assert_eq!(repr.emit(&mut buf, &shape.ctx), Ok(len));
        prop_assert!(buf[len..].iter().all(|&b| b == fill));
    }

    #[test]
    fn a_flipped_byte_is_always_refused(
        shape in arb_shape(),
        at in any::<prop::sample::Index>(),
        xor in 1u8..,
    ) {
        let repr = shape.repr();
        let mut bytes = emit(&repr, &shape.ctx);
        let i = at.index(bytes.len());
        bytes[i] ^= xor;
        // The checksum covers every byte, and one changed byte always changes a ones'-complement
        // sum (only 0x0000 <-> 0xffff, two bytes, would not); the count and version bytes fail
        // earlier. Only `Either` may take the flipped message in its other convention.
        match parse(&bytes, &shape.ctx) {
            Err(_) => {}
            Ok(r) => {
                prop_assert_eq!(shape.ctx.v3_checksum, V3Checksum::Either);
                let again = emit(&r, &shape.ctx);
                prop_assert_eq!(parse(&again, &shape.ctx), Ok(r));
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..80),
        ctx in arb_ctx(),
    ) {
        let mut s = String::new();
        match Packet::new_checked(&bytes[..]) {
            Ok(p) => {
                write!(s, "{p} {}", p.v3_max_adver_int()).unwrap();
                if let Ok(r) = Repr::parse(&p, &ctx) {
                    write!(s, "{r:?}").unwrap();
                    let again = emit(&r, &ctx);
                    prop_assert_eq!(parse(&again, &ctx), Ok(r));
                }
            }
            Err(e) => {
                prop_assert!(bytes.len() < 8);
                write!(s, "{e} {}", Packet::new_unchecked(&bytes[..])).unwrap();
            }
        }
        // The fuzz target's oracle on the same input, on stable.
        let mut input = vec![0u8];
        input.extend_from_slice(&bytes);
        for head in [0u8, 1, 2, 3, 4, 8, 0x11, 0x21] {
            input[0] = head;
            vrrp_proto::fuzzing::vrrp_parse(&input);
        }
    }

    #[test]
    fn handle_packet_on_arbitrary_bytes_never_panics_and_refusals_change_nothing(
        setup in 0usize..4,
        packets in proptest::collection::vec(
            (arb_packet(), 0u8..4, prop_oneof![9 => Just(255u8), 1 => any::<u8>()]),
            1..8,
        ),
    ) {
        let mut r = router(setup);
        // After the Master setup's takeover at 3.609 s: time never goes backwards.
        let mut now = Instant::from_millis(3_700);
        for (bytes, who, ttl) in packets {
            let family_v6 = r.config().primary().is_ipv6();
            let meta = RecvMeta::new(source(family_v6, who), group(family_v6), ttl);
            let state = r.state();
            let deadline = r.poll_timeout();
            let master = r.master();
            let stats = *r.stats();
            match r.handle_packet(now, meta, &bytes) {
                Ok(()) => prop_assert_eq!(r.stats().adverts_received, stats.adverts_received + 1),
                Err(e) => {
                    prop_assert_eq!(r.state(), state, "{}", e);
                    prop_assert_eq!(r.poll_timeout(), deadline, "{}", e);
                    prop_assert_eq!(r.master(), master, "{}", e);
                    prop_assert!(r.poll_action().is_none());
                    prop_assert_ne!(*r.stats(), stats);
                }
            }
            while r.poll_action().is_some() {}
            now += Duration::from_millis(7);
        }
    }

    #[test]
    fn the_router_fuzz_target_holds_on_random_streams(
        data in proptest::collection::vec(any::<u8>(), 8..300),
    ) {
        vrrp_proto::fuzzing::vrrp_router(&data);
    }
}

/// Bytes for `handle_packet`: random, or a valid advert for the test routers (VRID 51, VIP
/// 10.99.0.100 or fe80::99:100, interval 1 s) with one byte changed or the length cut.
fn arb_packet() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..48),
        (
            any::<bool>(),
            any::<bool>(),
            any::<u8>(),
            0u8..4,
            any::<prop::sample::Index>(),
            any::<u8>()
        )
            .prop_map(|(v2, v6, priority, who, at, xor)| {
                let v6 = v6 && !v2;
                let vip: Vec<u8> = if v6 {
                    "fe80::99:100"
                        .parse::<std::net::Ipv6Addr>()
                        .unwrap()
                        .octets()
                        .to_vec()
                } else {
                    vec![10, 99, 0, 100]
                };
                let repr = Repr {
                    version: if v2 {
                        wire::Version::V2
                    } else {
                        wire::Version::V3
                    },
                    vrid: 51,
                    priority,
                    adver_int: 100,
                    addrs: AddrList::new(
                        if v6 {
                            wire::AddrFamily::Ipv6
                        } else {
                            wire::AddrFamily::Ipv4
                        },
                        &vip,
                    )
                    .unwrap(),
                    auth: wire::Auth::None,
                };
                let mut b = emit(&repr, &Ctx::new(source(v6, who), group(v6)));
                // Half the time keep it valid (only the checksum of source `who` holds).
                if xor & 1 == 0 {
                    let i = at.index(b.len() + 1);
                    if i == b.len() {
                        b.pop();
                    } else {
                        b[i] ^= xor;
                    }
                }
                b
            }),
    ]
}

fn source(v6: bool, who: u8) -> IpAddr {
    let last = [12u8, 13, 11, 10][usize::from(who % 4)];
    if v6 {
        IpAddr::V6(std::net::Ipv6Addr::new(
            0xfe80,
            0,
            0,
            0,
            0x99,
            0xff,
            0xfe00,
            u16::from(last),
        ))
    } else {
        IpAddr::from([10, 99, 0, last])
    }
}

fn group(v6: bool) -> IpAddr {
    if v6 {
        wire::MULTICAST_V6.into()
    } else {
        wire::MULTICAST_V4.into()
    }
}

/// lb1 (priority 100, VRID 51, 1 s) as v3 IPv4 Backup, v3 IPv4 Master, v2 Backup, v3 IPv6
/// Master.
fn router(setup: usize) -> VirtualRouter {
    let (v2, v6, master) = [
        (false, false, false),
        (false, false, true),
        (true, false, false),
        (false, true, true),
    ][setup];
    let mut b = Config::builder(51, source(v6, 2)).priority(100);
    b = if v6 {
        b.vip("fe80::99:100".parse::<IpAddr>().unwrap())
    } else {
        b.vip(IpAddr::from([10, 99, 0, 100]))
    };
    if v2 {
        b = b.version(wire::Version::V2);
    }
    let mut r = VirtualRouter::new(b.build().unwrap());
    r.startup(Instant::ZERO);
    if master {
        let t = r.poll_timeout().unwrap();
        r.handle_timeout(t);
    }
    while r.poll_action().is_some() {}
    assert_eq!(
        r.state(),
        if master { State::Master } else { State::Backup }
    );
    r
}
