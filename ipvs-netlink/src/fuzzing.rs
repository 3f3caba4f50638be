//! Entry points of the cargo-fuzz targets (feature `fuzzing`), also replayed by `cargo test`.

use crate::exchange;
use crate::wire::{IpvsMessage, NetlinkMessage, NetlinkPayload, parse_stream};

/// Fuzz a kernel reply: parse `data` as a netlink datagram; every message that parses must
/// re-emit and re-parse equal, and every generic netlink payload that parses as IPVS must
/// too. Also runs the client's classifier. Panics (only) when an oracle fails.
#[expect(
    clippy::panic,
    reason = "a failed round-trip oracle is what the fuzzer looks for"
)]
pub fn reply(data: &[u8]) {
    let _ = exchange::classify(data, 0x20);
    let Ok(msgs) = parse_stream(data) else {
        // Still exercise the IPVS layer on the raw bytes.
        ipvs_message(data);
        return;
    };
    for m in &msgs {
        let mut out = Vec::new();
        if m.encode_into(&mut out).is_err() {
            continue;
        }
        match NetlinkMessage::parse(&out) {
            Ok((again, _)) if &again == m => {}
            other => panic!("netlink re-parse differs: {m:?} -> {other:?}"),
        }
        if let NetlinkPayload::Genl(g) = &m.payload {
            let mut genl = vec![g.cmd, g.version, 0, 0];
            genl.extend_from_slice(&g.attrs);
            ipvs_message(&genl);
        }
    }
}

#[expect(
    clippy::panic,
    reason = "a failed round-trip oracle is what the fuzzer looks for"
)]
fn ipvs_message(data: &[u8]) {
    let Ok(msg) = IpvsMessage::parse(data) else {
        return;
    };
    let mut out = Vec::new();
    if msg.encode_into(&mut out).is_err() {
        return;
    }
    match IpvsMessage::parse(&out) {
        Ok(again) if again == msg => {}
        other => panic!("IPVS re-parse differs: {msg:?} -> {other:?}"),
    }
}
