//! Sealed session cookies: open arbitrary bytes; whatever opens re-seals and re-opens equal.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    session_store::fuzzing::cookie_open(data);
});
