//! lbd's configuration readers on stable: the fuzz seeds replayed (`fuzz/seeds/lbd_conf`), and
//! arbitrary bytes never panic.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use lbd::fuzzing;
use proptest::prelude::*;

fn seeds(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/seeds")
        .join(target);
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let p = e.unwrap().path();
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no seeds in {}", dir.display());
    out
}

#[test]
fn lbd_conf_seeds() {
    for (path, data) in seeds("lbd_conf") {
        fuzzing::lbd_conf(&data);
        let text = String::from_utf8(data).unwrap();
        let parsed = lbd::config::parse_str(&path, &text);
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        // The seeds are meaningful: the good ones parse, the broken one fails with a line.
        if name.starts_with("broken") {
            assert!(parsed.is_err(), "{name} parsed");
        } else {
            assert!(parsed.is_ok(), "{name}: {:?}", parsed.err());
        }
    }
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        fuzzing::lbd_conf(&data);
    }
}
