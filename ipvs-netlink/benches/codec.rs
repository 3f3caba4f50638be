//! Encode/decode of service and destination messages (the hot path of dumps and `apply`).
#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ipvs_netlink::wire::{CmdAttr, IpvsCmd, IpvsMessage};
use ipvs_netlink::{Dest, ForwardMethod, Service, ServiceKey};

fn codec(c: &mut Criterion) {
    let key = ServiceKey::tcp("10.0.0.1:80".parse().unwrap());
    let svc = IpvsMessage::new(
        IpvsCmd::NewService,
        vec![CmdAttr::Service(Service::new(key, "wlc").unwrap().attrs())],
    );
    let dest = Dest::new("10.0.1.1:8080".parse().unwrap(), ForwardMethod::Masq)
        .unwrap()
        .with_weight(3)
        .unwrap();
    let dst = IpvsMessage::new(
        IpvsCmd::NewDest,
        vec![CmdAttr::Service(key.attrs()), CmdAttr::Dest(dest.attrs())],
    );
    let mut g = c.benchmark_group("ipvs_codec");
    for (name, msg) in [("service", &svc), ("dest", &dst)] {
        let bytes = msg.to_vec();
        g.throughput(Throughput::Bytes(bytes.len() as u64));
        g.bench_function(format!("encode_{name}"), |b| {
            let mut out = Vec::with_capacity(256);
            b.iter(|| {
                out.clear();
                black_box(msg).encode_into(&mut out).unwrap();
                black_box(out.len())
            });
        });
        g.bench_function(format!("decode_{name}"), |b| {
            b.iter(|| IpvsMessage::parse(black_box(&bytes)).unwrap());
        });
    }
    g.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
