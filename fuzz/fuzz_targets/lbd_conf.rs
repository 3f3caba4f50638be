//! lbd's nginx-syntax and TOML configuration readers on arbitrary text: errors, never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    lbd::fuzzing::lbd_conf(data);
});
