//! Replays the fuzz seeds in `../fuzz/seeds/<target>/` through the fuzz targets' functions on
//! stable, so plain `cargo test --features fuzzing` covers every seed (design §2.6).
#![cfg(feature = "fuzzing")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::path::PathBuf;

use vrrp_proto::State;
use vrrp_proto::fuzzing::{parse_one, run_router, vrrp_parse, vrrp_router};

/// Every seed of `target`, with its file name, sorted by name.
fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/seeds")
        .join(target);
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
fn vrrp_parse_seeds() {
    let seeds = seeds("vrrp_parse");
    assert!(seeds.len() >= 20, "the captured adverts are seeds");
    for (name, data) in &seeds {
        vrrp_parse(data);
        let res = parse_one(data).unwrap();
        // The captured keepalived adverts parse (checksums included: this is not cfg(fuzzing)).
        if name.starts_with("capture-") {
            assert!(res.is_ok(), "{name}: {res:?}");
        }
    }
}

#[test]
fn vrrp_router_seeds() {
    let seeds = seeds("vrrp_router");
    assert!(!seeds.is_empty());
    for (name, data) in &seeds {
        vrrp_router(data);
        let run = run_router(data).unwrap_or_else(|| panic!("{name}: config refused"));
        assert!(run.events > 0, "{name}");
        if name.starts_with("capture-") {
            // lb1 took over, took lb2's captured adverts and release, and became master
            // again after the restart.
            assert!(run.accepted >= 4, "{name}: {run:?}");
            assert!(run.stats.master_transitions >= 3, "{name}: {run:?}");
            assert!(run.stats.priority_zero_received >= 1, "{name}: {run:?}");
            assert_eq!(run.state, State::Master, "{name}: {run:?}");
        }
        if name.starts_with("mutations-") {
            assert!(run.accepted > 0 && run.refused > 0, "{name}: {run:?}");
        }
    }
}
