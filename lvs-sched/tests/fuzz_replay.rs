//! Replays the fuzz seeds (and a few fixed byte strings) through the fuzz target's function.
#![cfg(feature = "fuzzing")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

#[test]
fn replay_fixed_inputs() {
    let inputs: &[&[u8]] = &[
        b"",
        b"\x00",
        b"\x03\x00\x00\x01\x05\x00\x00\x00\x00\x02\x03\x00\x00\x00\x0b\x01\x02\x04\x00\x0b\x01\x02",
        b"\x0a\x03\x00\x81\xff\xff\xff\x7f\x00\x02\x01\x00\x00\x00\x03\x00\x01\x00\x04\x00\x0b\x09\x09",
        &[0xff; 64],
    ];
    for i in inputs {
        lvs_sched::fuzzing::run_ops(i);
    }
}

#[test]
fn replay_seed_corpus() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/sched_ops");
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut n = 0;
    for e in entries {
        let data = std::fs::read(e.unwrap().path()).unwrap();
        lvs_sched::fuzzing::run_ops(&data);
        n += 1;
    }
    assert!(n > 0, "no seeds in {}", dir.display());
}

/// Pseudo-random byte strings through the fuzz target's function (a short fuzz run without
/// libFuzzer): every op, including timer ticks and retried requests, for every kind.
#[test]
fn replay_random_inputs() {
    use lvs_sched::Rng;
    let mut rng = lvs_sched::SplitMix64::new(7);
    for n in 0..1500u32 {
        let len = 2 + (rng.next_u32() % 400) as usize;
        let mut data: Vec<u8> = (0..len).map(|_| rng.next_u32() as u8).collect();
        data[0] = (n % 21) as u8;
        lvs_sched::fuzzing::run_ops(&data);
    }
}
