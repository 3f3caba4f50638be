//! The failover demo's HTTP response, answer and URL parsers on arbitrary bytes: never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    failover_demo::fuzzing::demo_response(data);
});
