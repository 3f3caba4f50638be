//! Entry points for the cargo-fuzz targets in `fuzz/` (feature `fuzzing`). Not a stable API.

use std::time::Duration;

use crate::clock::UnixTime;
use crate::cookie::{CookieStore, KeyRing};
use crate::{ManualClock, Record, SessionId, codec};

/// The fixed "now" of the fuzz store (2023-11-14T22:13:20Z).
pub const NOW: UnixTime = UnixTime::from_secs(1_700_000_000);
/// Name of the fuzz store's cookie.
pub const COOKIE_NAME: &str = "sid";

/// The fuzz store: cookie `sid`, keys 7 (sealing) and 3 (older), clock fixed at [`NOW`].
#[must_use]
pub fn store() -> CookieStore<ManualClock> {
    let keys = KeyRing::new(3, [0x33; 32]).rotate(7, [0x77; 32]);
    CookieStore::with_clock(COOKIE_NAME, keys, ManualClock::new(NOW))
}

/// A sample record, valid at [`NOW`], for seeds and tests.
#[must_use]
pub fn sample_record(id_byte: u8, ttl: Duration) -> Record {
    Record::new(SessionId::from_bytes([id_byte; 16]), NOW, ttl)
}

/// Opens `data` as a token with the fuzz store. Must not panic. Whatever opens must re-seal
/// and re-open to an equal record; a violation panics, which is what the fuzzer looks for.
///
/// Random bytes essentially never pass the AEAD, so `data` is also fed straight to the
/// decoder that sits behind it ([`codec::decode`]), with the same oracle: whatever decodes
/// re-encodes and re-decodes equal.
pub fn cookie_open(data: &[u8]) {
    if let Ok(rec) = codec::decode(data) {
        #[expect(
            clippy::panic,
            reason = "the fuzz oracle reports violations by panicking"
        )]
        match codec::encode(&rec).map(|b| codec::decode(&b)) {
            Ok(Ok(again)) if again == rec => {}
            other => panic!("decoded record does not re-encode and re-decode equal: {other:?}"),
        }
    }
    let store = store();
    let Ok(rec) = store.open(data) else { return };
    #[expect(
        clippy::panic,
        reason = "the fuzz oracle reports violations by panicking"
    )]
    match store.seal(&rec).map(|t| store.open(t.as_str().as_bytes())) {
        Ok(Ok(again)) if again == rec => {}
        other => panic!("opened record does not re-seal and re-open equal: {other:?}"),
    }
}

/// Feeds `data` to the memcached reply parser (limit: 4 KiB values). Must not panic; a reply
/// it parses must parse again from exactly the bytes it consumed, no shorter prefix may parse,
/// an error on a prefix must stay an error, and a parsed reply must re-encode and parse equal.
/// A violation panics, which is what the fuzzer looks for.
pub fn memcached_reply(data: &[u8]) {
    #[expect(
        clippy::panic,
        reason = "the fuzz oracle reports violations by panicking"
    )]
    if let Err(violation) = crate::memcached::check_parser(data, 4096) {
        panic!("memcached reply parser: {violation}");
    }
}
