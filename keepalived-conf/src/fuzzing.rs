//! Entry points of the cargo-fuzz target `keepalived_conf` (feature `fuzzing`).
//!
//! `tests/kaconf_corpus.rs` replays the seeds in `fuzz/seeds/keepalived_conf/` through
//! [`keepalived_conf`] on stable. A broken invariant is a panic, which is how a fuzzer
//! reports a finding.

// A fuzz target reports a broken invariant by panicking.
#![allow(clippy::panic)]

use crate::lvs::LvsConf;
use crate::{ConfError, Options, VrrpConf, Warning, parse_tree_str};

/// Which typed layers accepted an input, for the corpus test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// The VRRP layer accepted it.
    pub vrrp: bool,
    /// The LVS layer accepted it.
    pub lvs: bool,
}

/// Parses `text` (includes skipped) through the VRRP layer.
pub fn vrrp_of(text: &str, name: &str) -> Result<(VrrpConf, Vec<Warning>), ConfError> {
    let (nodes, mut w) = parse_tree_str(text, name, &Options::without_includes())?;
    let (conf, w2) = VrrpConf::from_nodes(&nodes)?;
    w.extend(w2);
    Ok((conf, w))
}

/// Parses `text` (includes skipped) through the LVS layer.
pub fn lvs_of(text: &str, name: &str) -> Result<(LvsConf, Vec<Warning>), ConfError> {
    let (nodes, mut w) = parse_tree_str(text, name, &Options::without_includes())?;
    let (conf, w2) = LvsConf::from_nodes(&nodes)?;
    w.extend(w2);
    Ok((conf, w))
}

/// Parses `data` as keepalived.conf text through both typed layers, never reading files
/// (`include` is skipped). Non-UTF-8 input is refused up front, as the file reader does.
///
/// The oracle: whatever a layer accepts renders to text that parses back to an equal
/// configuration; and an error's message names the input file.
pub fn keepalived_conf(data: &[u8]) -> Outcome {
    let Ok(text) = std::str::from_utf8(data) else {
        return Outcome {
            vrrp: false,
            lvs: false,
        };
    };
    let vrrp = match vrrp_of(text, "fuzz.conf") {
        Ok((conf, _)) => {
            let rendered = conf.to_string();
            match vrrp_of(&rendered, "rendered.conf") {
                Ok((back, _)) => assert_eq!(conf, back, "VRRP round trip differs:\n{rendered}"),
                Err(e) => panic!("rendered VRRP config refused: {e}\n{rendered}"),
            }
            true
        }
        Err(e) => {
            assert!(e.to_string().starts_with("fuzz.conf:"), "{e}");
            false
        }
    };
    let lvs = match lvs_of(text, "fuzz.conf") {
        Ok((conf, _)) => {
            let rendered = conf.to_string();
            match lvs_of(&rendered, "rendered.conf") {
                Ok((back, _)) => assert_eq!(conf, back, "LVS round trip differs:\n{rendered}"),
                Err(e) => panic!("rendered LVS config refused: {e}\n{rendered}"),
            }
            true
        }
        Err(e) => {
            assert!(e.to_string().starts_with("fuzz.conf:"), "{e}");
            false
        }
    };
    Outcome { vrrp, lvs }
}
