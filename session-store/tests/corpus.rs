//! Replays `../fuzz/seeds/cookie_open/` through the fuzz entry point on stable, so plain
//! `cargo test --features fuzzing` covers every seed, and checks each seed opens (or not) as
//! its name says (seeds of token format 1 must not open).
#![cfg(feature = "fuzzing")]
#![allow(clippy::unwrap_used, clippy::panic)]

use std::fs;
use std::path::PathBuf;

use session_store::OpenError;
use session_store::fuzzing::{cookie_open, store};

#[test]
fn cookie_open_seeds() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/cookie_open");
    let mut names = Vec::new();
    let mut n_open = 0;
    for entry in fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let data = fs::read(&path).unwrap();
        cookie_open(&data);
        let opened = store().open(&data);
        // Token format 1 (XChaCha20-Poly1305) no longer opens; such seeds stay as fuzz input.
        let format_1 = {
            use base64::Engine as _;
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(&data)
                .is_ok_and(|raw| raw.first() == Some(&1))
        };
        if format_1 && !matches!(name.as_str(), "garbage.txt" | "codec_record.bin") {
            assert!(
                matches!(opened, Err(OpenError::UnknownFormat(1))),
                "{name}: {opened:?}"
            );
            names.push(name);
            continue;
        }
        if opened.is_ok() {
            n_open += 1;
        }
        match name.as_str() {
            "expired.txt" => assert!(matches!(opened, Err(OpenError::Expired { .. })), "{name}"),
            "garbage.txt" => assert!(opened.is_err(), "{name}"),

            "codec_record.bin" => {
                assert!(opened.is_err(), "{name} is not a token");
                assert!(
                    session_store::codec::decode(&data).is_ok(),
                    "{name} decodes"
                );
            }
            _ => assert!(opened.is_ok(), "{name}: {opened:?}"),
        }
        names.push(name);
    }
    assert!(names.len() >= 10, "seeds missing: {names:?}");
    assert!(n_open >= 3, "too few seeds open: {names:?}");
}

#[test]
fn memcached_reply_seeds() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/memcached_reply");
    let mut n = 0;
    for entry in fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let data = fs::read(entry.unwrap().path()).unwrap();
        session_store::fuzzing::memcached_reply(&data);
        n += 1;
    }
    assert!(n >= 5, "seeds missing");
}
