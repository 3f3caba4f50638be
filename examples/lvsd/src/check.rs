//! keepalived's `TCP_CHECK` and `HTTP_GET` checkers: every `delay_loop`, a connect (and for
//! HTTP a GET whose status must match), retried `retry` times `delay_before_retry` apart
//! before the server counts as failed.

use std::net::SocketAddr;
use std::time::Duration;

use http_probe::{Expect, HttpProbe, ProbeError};

use keepalived_conf::lvs::{Check, Connect};

/// Why one attempt failed, in keepalived's words where it has them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckError {
    /// The TCP connection failed or timed out.
    #[error("TCP connection to [{addr}] failed: {reason}")]
    Connect {
        /// Where.
        addr: SocketAddr,
        /// The OS reason or "timeout".
        reason: String,
    },
    /// The HTTP exchange failed (closed, timed out, garbage).
    #[error("HTTP request to [{addr}]{path} failed: {reason}")]
    Http {
        /// Where.
        addr: SocketAddr,
        /// The URL path.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// The status code is not the expected one.
    #[error("HTTP status code error to [{addr}]{path}: got {got}, expected {expected}")]
    Status {
        /// Where.
        addr: SocketAddr,
        /// The URL path.
        path: String,
        /// What came back.
        got: u16,
        /// What was expected ("2xx" when unset).
        expected: String,
    },
}

/// The address a checker connects to: `connect_ip`/`connect_port` override the server's.
pub fn target(server: SocketAddr, c: &Connect) -> SocketAddr {
    SocketAddr::new(
        c.connect_ip.unwrap_or(server.ip()),
        c.connect_port.unwrap_or(server.port()),
    )
}

/// Runs one check with its retries: `Ok` as soon as an attempt passes, else the last error.
pub async fn run(check: &Check, server: SocketAddr, vhost: Option<&str>) -> Result<(), CheckError> {
    let c = match check {
        Check::Tcp(c) | Check::Http { connect: c, .. } => c,
    };
    let attempts = c.retry.max(1);
    let mut last = None;
    for n in 0..attempts {
        if n > 0 {
            tokio::time::sleep(c.delay_before_retry).await;
        }
        let res = match check {
            Check::Tcp(c) => tcp(target(server, c), c.connect_timeout).await,
            Check::Http { connect, urls } => {
                let mut r = Ok(());
                for u in urls {
                    r = http(
                        target(server, connect),
                        connect.connect_timeout,
                        &u.path,
                        u.status_code,
                        vhost,
                    )
                    .await;
                    if r.is_err() {
                        break;
                    }
                }
                r
            }
        };
        match res {
            Ok(()) => return Ok(()),
            Err(e) => last = Some(e),
        }
    }
    match last {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

async fn tcp(addr: SocketAddr, timeout: Duration) -> Result<(), CheckError> {
    http_probe::tcp(addr, timeout).await.map_err(|e| match e {
        ProbeError::Connect { source, .. } => CheckError::Connect {
            addr,
            reason: source.to_string(),
        },
        _ => CheckError::Connect {
            addr,
            reason: "timeout".into(),
        },
    })
}

async fn http(
    addr: SocketAddr,
    timeout: Duration,
    path: &str,
    want: Option<u16>,
    vhost: Option<&str>,
) -> Result<(), CheckError> {
    // keepalived sends the real server's address as Host unless `virtualhost` is set.
    let host = vhost.map_or_else(|| addr.ip().to_string(), str::to_owned);
    let probe = HttpProbe::get(path)
        .host(host)
        .user_agent("lvsd")
        .expect(want.map_or(Expect::Success, Expect::Status))
        .timeout(timeout);
    let fail = |reason: String| CheckError::Http {
        addr,
        path: path.to_owned(),
        reason,
    };
    match probe.run(addr).await {
        Ok(_) => Ok(()),
        Err(ProbeError::Status { got, expected, .. }) => Err(CheckError::Status {
            addr,
            path: path.to_owned(),
            got,
            expected: expected.to_string(),
        }),
        Err(ProbeError::Connect { source, .. }) => Err(fail(source.to_string())),
        Err(ProbeError::Timeout { .. }) => Err(fail("timeout".into())),
        Err(ProbeError::Io { source, .. }) => Err(fail(source.to_string())),
        Err(ProbeError::NotHttp { reason, .. }) => {
            Err(fail(format!("not an HTTP response: {reason}")))
        }
        Err(e) => Err(fail(e.to_string())),
    }
}
