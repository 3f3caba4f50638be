#![no_main]
//! A netlink reply stream from the kernel: parse, re-emit, re-parse equal; never panic.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ipvs_netlink::fuzzing::reply(data));
