//! `http-check`: the seed's `nginx_check.sh`, natively — "is the local proxy answering?" as
//! a `track_script` for vrrpd or keepalived.
//!
//! ```text
//! http-check http://127.0.0.1/ping [--timeout SECS] [--status CODE]
//! ```
//!
//! Sends `GET` and exits 0 when an answer with the expected status (any 2xx by default)
//! arrives within the timeout (1 s), 1 otherwise, with the reason on standard error. Where the
//! seed's script restarts nginx and kills keepalived when that fails, a `vrrp_script` with a
//! negative `weight` hands the VIP over without killing anything, and the balancer comes
//! back by itself when its proxy does.

use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

use super::client::{self, Failure};

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
pub fn main_with(args: impl IntoIterator<Item = String>) -> ExitCode {
    let mut url = None;
    let mut timeout = Duration::from_secs(1);
    let mut status: Option<u16> = None;
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--timeout" => match it.next().and_then(|v| v.parse::<f64>().ok()) {
                Some(s) if s.is_finite() && s > 0.0 && s < 3600.0 => {
                    timeout = Duration::from_secs_f64(s);
                }
                _ => {
                    eprint!("http-check: --timeout needs seconds\n{USAGE}");
                    return ExitCode::from(2);
                }
            },
            "--status" => match it.next().and_then(|v| v.parse::<u16>().ok()) {
                Some(c) if (100..600).contains(&c) => status = Some(c),
                _ => {
                    eprint!("http-check: --status needs an HTTP status code\n{USAGE}");
                    return ExitCode::from(2);
                }
            },
            "-h" | "--help" => {
                print!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            _ if url.is_none() && !a.starts_with('-') => url = Some(a),
            _ => {
                eprint!("http-check: unexpected argument {a:?}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let Some(url) = url else {
        eprint!("{USAGE}");
        return ExitCode::from(2);
    };
    let target = match parse_url(&url) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("http-check: {e}");
            return ExitCode::from(2);
        }
    };
    match client::request(target.addr, "GET", &target.path, None, timeout) {
        Ok(r) if status.map_or((200..300).contains(&r.status), |s| s == r.status) => {
            ExitCode::SUCCESS
        }
        Ok(r) => {
            eprintln!("http-check: {url} answered {}", r.status);
            ExitCode::FAILURE
        }
        Err(f) => {
            let why = match f {
                Failure::Refused => "connection refused",
                Failure::Reset => "connection reset",
                Failure::Timeout => "timed out",
                Failure::Malformed => "not an HTTP answer",
            };
            eprintln!("http-check: {url}: {why}");
            ExitCode::FAILURE
        }
    }
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
}
