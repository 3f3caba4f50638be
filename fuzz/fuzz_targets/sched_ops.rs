//! Random destination edits, connection events and schedule() calls: never weight 0,
//! unavailable or overloaded; the O(log n) least-connection index equals the linear scan.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    lvs_sched::fuzzing::run_ops(data);
});
