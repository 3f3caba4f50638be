//! VRRP messages with a decoded IP context: parse, re-emit, re-parse equal.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    vrrp_proto::fuzzing::vrrp_parse(data);
});
