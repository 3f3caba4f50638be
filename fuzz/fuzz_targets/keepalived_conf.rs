//! keepalived.conf text through both typed layers: what parses renders and re-parses equal.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    hapri_examples::fuzzing::keepalived_conf(data);
});
