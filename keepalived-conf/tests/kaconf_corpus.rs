//! Replays the fuzz seeds in `../fuzz/seeds/keepalived_conf/` through the fuzz target's
//! function on stable, so plain `cargo test` covers every seed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::path::PathBuf;

use keepalived_conf::fuzzing::keepalived_conf;

/// Every seed of the target, with its file name, sorted by name.
fn seeds() -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/keepalived_conf");
    let mut out: Vec<_> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let path = e.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, fs::read(&path).unwrap())
        })
        .collect();
    out.sort();
    out
}

#[test]
fn keepalived_conf_seeds() {
    let seeds = seeds();
    assert!(seeds.len() >= 5, "the seeds are there");
    for (name, data) in &seeds {
        let out = keepalived_conf(data);
        // `error-*` seeds are refused by both layers, every other seed is accepted by both.
        let ok = !name.starts_with("error-");
        assert_eq!((out.vrrp, out.lvs), (ok, ok), "{name}");
    }
}
