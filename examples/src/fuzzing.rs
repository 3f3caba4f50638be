//! Entry points of the cargo-fuzz targets in `fuzz/` (feature `fuzzing`).
//!
//! `fuzz/fuzz_targets/keepalived_conf.rs` calls [`keepalived_conf`], `vrrpd_recv.rs`
//! [`vrrpd_recv`], `rtnl_reply.rs` [`rtnl_reply`], `lbd_conf.rs` [`lbd_conf`] and
//! `demo_response.rs` [`demo_response`];
//! `tests/kaconf_corpus.rs` replays the seeds in `fuzz/seeds/keepalived_conf/` through it on
//! stable. A broken invariant is a panic, which is how a fuzzer reports a finding.

// A fuzz target reports a broken invariant by panicking.
#![allow(clippy::panic)]

use crate::kaconf::lvs::LvsConf;
use crate::kaconf::{ConfError, Options, VrrpConf, Warning, parse_tree_str};

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

/// A datagram as a raw VRRP socket delivers it (IPv4 header included) through the daemon's
/// receive path: [`crate::io::raw_ip::parse_ipv4`], then a v2 and a v3 virtual router. A
/// refused packet must leave the router's state unchanged.
pub fn vrrpd_recv(data: &[u8]) {
    use std::net::{IpAddr, Ipv4Addr};

    use vrrp_proto::wire::Version;
    use vrrp_proto::{Config, Instant, RecvMeta, VirtualRouter};

    let Some(rcv) = crate::io::raw_ip::parse_ipv4(data) else {
        return;
    };
    assert!(rcv.payload.len() <= data.len());
    for version in [Version::V2, Version::V3] {
        let mut b = Config::builder(51, IpAddr::V4(Ipv4Addr::new(10, 99, 0, 11)))
            .version(version)
            .priority(100)
            .vip(IpAddr::V4(Ipv4Addr::new(10, 99, 0, 100)));
        if version == Version::V2 {
            b = b.password(b"hapri1");
        }
        let Ok(cfg) = b.build() else {
            panic!("the fuzz router's configuration is valid");
        };
        let mut r = VirtualRouter::new(cfg);
        r.startup(Instant::from_millis(0));
        while r.poll_action().is_some() {}
        let meta = RecvMeta::new(rcv.src, rcv.dst, rcv.ttl);
        let before = (r.state(), r.master(), r.poll_timeout());
        if r.handle_packet(Instant::from_millis(10), meta, &rcv.payload)
            .is_err()
        {
            assert_eq!(before, (r.state(), r.master(), r.poll_timeout()));
        }
        while r.poll_action().is_some() {}
    }
}

/// Route-netlink reply bytes through [`crate::rtnl::fuzz_reply`].
pub fn rtnl_reply(data: &[u8]) {
    let _ = crate::rtnl::fuzz_reply(data);
}

/// lbd's configuration readers, nginx syntax and TOML, on arbitrary bytes: a [`Config`] or a
/// [`ConfigError`] naming file, line and column (within the text), never a panic.
///
/// [`Config`]: crate::lbd::config::Config
/// [`ConfigError`]: crate::lbd::config::ConfigError
pub fn lbd_conf(data: &[u8]) {
    use crate::lbd::config::{ConfigError, parse_str};
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let lines = text.split('\n').count();
    for name in ["fuzz.conf", "fuzz.toml"] {
        match parse_str(std::path::Path::new(name), text) {
            Ok(_) => {}
            Err(ConfigError::At { line, .. }) => {
                if line == 0 || line > lines + 1 {
                    panic!("error on line {line} of a {lines}-line text");
                }
            }
            Err(ConfigError::Read { .. }) => {}
            // `ConfigError` is non-exhaustive.
            #[allow(unreachable_patterns)]
            Err(_) => {}
        }
    }
}

/// The failover demo's response parsers (the client's HTTP/1.1 response reader, the answer
/// line, `Set-Cookie` lookup) and `http-check`'s URL splitter on arbitrary bytes: never a
/// panic; a parsed answer's fields come from the input.
pub fn demo_response(data: &[u8]) {
    use crate::demo::{check, client};
    if let Ok(r) = client::parse_response(data) {
        if let Some(a) = client::parse_answer(&r.body, str::to_owned)
            && !r.body.contains(&a.served_by)
        {
            panic!("served_by {:?} is not in the body", a.served_by);
        }
        let _ = client::cookie_pair(&r.set_cookies, "sid");
    }
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok((authority, path)) = check::split_url(text)
        && (!path.starts_with('/') || authority.is_empty())
    {
        panic!("split {text:?} into {authority:?} and {path:?}");
    }
}
