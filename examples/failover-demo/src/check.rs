//! `http-check`: the classic `nginx_check.sh`, natively — "is the local proxy answering?" as
//! a `track_script` for vrrpd or keepalived.
//!
//! ```text
//! http-check http://127.0.0.1/ping [--timeout SECS] [--status CODE]
//! ```
//!
//! Sends `GET` and exits 0 when an answer with the expected status (any 2xx by default)
//! arrives within the timeout (1 s), 1 otherwise, with the reason on standard error. Where the
//! classic script restarts nginx and kills keepalived when that fails, a `vrrp_script` with a
//! negative `weight` hands the VIP over without killing anything, and the balancer comes
//! back by itself when its proxy does.

use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

use http_probe::{Expect, HttpProbe};

/// A parsed `http://HOST[:PORT]/PATH`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// Resolved address.
    pub addr: SocketAddr,
    /// Path and query.
    pub path: String,
}

/// Parses `http://HOST[:PORT][/PATH]` and resolves `HOST`.
///
/// # Errors
/// A message saying what is wrong.
pub fn parse_url(url: &str) -> Result<Target, String> {
    let (with_port, path) = split_url(url)?;
    let addr = with_port
        .to_socket_addrs()
        .map_err(|e| format!("{with_port:?}: {e}"))?
        .next()
        .ok_or_else(|| format!("{with_port:?}: no address"))?;
    Ok(Target { addr, path })
}

/// Splits `http://HOST[:PORT][/PATH]` into `HOST:PORT` (port 80 when absent) and the path,
/// without resolving anything.
///
/// # Errors
/// A message saying what is wrong.
pub fn split_url(url: &str) -> Result<(String, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url:?}: only http:// URLs are checked"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let with_port = if authority.starts_with('[') {
        if authority.contains("]:") {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        }
    } else if authority.contains(':') {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    if authority.is_empty() || authority.chars().any(|c| c.is_whitespace() || c == '@') {
        return Err(format!(
            "{url:?}: no host, or a host with spaces or user info"
        ));
    }
    Ok((with_port, path.to_owned()))
}

const USAGE: &str = "usage: http-check http://HOST[:PORT]/PATH [--timeout SECS] [--status CODE]\n";

/// `http-check`'s `main`.
#[must_use]
pub fn main_with(args: impl IntoIterator<Item = impl Into<std::ffi::OsString>>) -> ExitCode {
    let (url, timeout, status) = match parse_args(args) {
        Ok(Some(a)) => a,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprint!("http-check: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let target = match parse_url(&url) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("http-check: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("http-check: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let probe = HttpProbe::get(target.path.as_str())
        .host(target.addr.ip().to_string())
        .user_agent("http-check")
        .expect(status.map_or(Expect::Success, Expect::Status))
        .timeout(timeout);
    match rt.block_on(probe.run(target.addr)) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("http-check: {url}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The URL, timeout and expected status; `None` for `--help`.
fn parse_args(
    args: impl IntoIterator<Item = impl Into<std::ffi::OsString>>,
) -> Result<Option<(String, Duration, Option<u16>)>, lexopt::Error> {
    use lexopt::prelude::*;
    let mut url = None;
    let mut timeout = Duration::from_secs(1);
    let mut status = None;
    let mut p = lexopt::Parser::from_args(args);
    while let Some(arg) = p.next()? {
        match arg {
            Long("timeout") => {
                let s: f64 = p.value()?.parse()?;
                if !(s.is_finite() && s > 0.0 && s < 3600.0) {
                    return Err("--timeout needs seconds between 0 and 3600".into());
                }
                timeout = Duration::from_secs_f64(s);
            }
            Long("status") => {
                let c: u16 = p.value()?.parse()?;
                if !(100..600).contains(&c) {
                    return Err("--status needs an HTTP status code".into());
                }
                status = Some(c);
            }
            Short('h') | Long("help") => return Ok(None),
            Value(v) if url.is_none() => url = Some(v.string()?),
            _ => return Err(arg.unexpected()),
        }
    }
    let url = url.ok_or("a URL is needed")?;
    Ok(Some((url, timeout, status)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let t = parse_url("http://127.0.0.1/ping");
        assert_eq!(
            t,
            Ok(Target {
                addr: SocketAddr::from(([127, 0, 0, 1], 80)),
                path: "/ping".into()
            })
        );
        let t = parse_url("http://[::1]:8080");
        assert_eq!(t.map(|t| (t.addr.port(), t.path)), Ok((8080, "/".into())));
        assert!(parse_url("https://x/").is_err());
        assert!(parse_url("http://999.1.1.1/").is_err());
    }

    #[test]
    fn command_line() {
        let args = |a: &[&str]| parse_args(a.iter().map(|s| (*s).to_owned()));
        assert_eq!(
            args(&["http://127.0.0.1/ping"]).ok(),
            Some(Some((
                "http://127.0.0.1/ping".into(),
                Duration::from_secs(1),
                None
            )))
        );
        assert_eq!(
            args(&["--timeout", "0.2", "http://x/", "--status", "204"]).ok(),
            Some(Some((
                "http://x/".into(),
                Duration::from_millis(200),
                Some(204)
            )))
        );
        assert_eq!(args(&["--help"]).ok(), Some(None));
        for bad in [
            &[][..],
            &["--timeout", "0", "http://x/"],
            &["--status", "99", "http://x/"],
            &["a", "b"],
            &["--bogus"],
        ] {
            assert!(args(bad).is_err(), "{bad:?}");
        }
    }
}
