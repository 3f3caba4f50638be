//! keepalived.conf text through both typed layers: what parses renders and re-parses equal.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    keepalived_conf::fuzzing::keepalived_conf(data);
});
