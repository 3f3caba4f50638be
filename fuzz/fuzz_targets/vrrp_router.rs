//! One virtual router driven by a decoded stream of timed events, with its invariants checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    vrrp_proto::fuzzing::vrrp_router(data);
});
