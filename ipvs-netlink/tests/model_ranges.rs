//! The model's ranges follow the kernel: weights 0..=i32::MAX, port 0 only where the kernel
//! can use it (persistent services; fwmark services have no port).
#![allow(clippy::unwrap_used, missing_docs)]

use std::net::SocketAddr;

use ipvs_netlink::wire::{DestAttr, ServiceAttr};
use ipvs_netlink::{ConfigError, Dest, DestEntry, Family, ForwardMethod, Service, ServiceKey};

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn weights_span_the_kernels_int() {
    let d = Dest::new(sa("10.0.0.2:80"), ForwardMethod::Masq).unwrap();
    for w in [0, 1, 65_535, 65_536, 1_000_000, Dest::MAX_WEIGHT] {
        let got = d.clone().with_weight(w).unwrap();
        assert_eq!(got.weight(), w);
        assert!(got.attrs().contains(&DestAttr::Weight(w)));
    }
    assert_eq!(Dest::MAX_WEIGHT, i32::MAX.unsigned_abs());
    for w in [Dest::MAX_WEIGHT + 1, u32::MAX] {
        let e = d.clone().with_weight(w).unwrap_err();
        assert_eq!(e, ConfigError::WeightOutOfRange { weight: w });
        assert!(e.to_string().starts_with("weight"), "{e}");
        assert!(e.to_string().contains("2147483647"), "{e}");
    }
    // A kernel reply with a large weight reads back unchanged.
    let big = d.with_weight(3_000_000).unwrap();
    let back = DestEntry::from_attrs(&big.attrs(), Family::V4).unwrap();
    assert_eq!(back.dest, big);
}

#[test]
fn port_zero_only_on_persistent_services() {
    for key in [
        ServiceKey::tcp(sa("10.0.0.1:0")),
        ServiceKey::udp(sa("[2001:db8::1]:0")),
    ] {
        assert_eq!(Service::new(key, "rr").unwrap_err(), ConfigError::ZeroPort);
        let p = Service::new_persistent(key, "rr", 300).unwrap();
        assert!(p.attrs().contains(&ServiceAttr::Port(0)));
        assert_eq!(p.timeout(), 300);
    }
    let fwm = ServiceKey::Fwmark {
        family: Family::V4,
        mark: 1,
    };
    Service::new(fwm, "rr").unwrap();
    Service::new(ServiceKey::tcp(sa("10.0.0.1:1")), "rr").unwrap();
}
