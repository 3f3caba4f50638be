//! keepalived's `TCP_CHECK` and `HTTP_GET` checkers: every `delay_loop`, a connect (and for
//! HTTP a GET whose status must match), retried `retry` times `delay_before_retry` apart
//! before the server counts as failed.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

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
    match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(CheckError::Connect {
            addr,
            reason: e.to_string(),
        }),
        Err(_) => Err(CheckError::Connect {
            addr,
            reason: "timeout".into(),
        }),
    }
}

async fn http(
    addr: SocketAddr,
    timeout: Duration,
    path: &str,
    want: Option<u16>,
    vhost: Option<&str>,
) -> Result<(), CheckError> {
    let fail = |reason: String| CheckError::Http {
        addr,
        path: path.to_owned(),
        reason,
    };
    let exchange = async {
        let mut s = TcpStream::connect(addr)
            .await
            .map_err(|e| fail(e.to_string()))?;
        let host = vhost.map_or_else(|| addr.ip().to_string(), str::to_owned);
        let req = format!(
            "GET {path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: lvsd\r\nConnection: close\r\n\r\n"
        );
        s.write_all(req.as_bytes())
            .await
            .map_err(|e| fail(e.to_string()))?;
        // The status line is all we need; read at most 4 KiB.
        let mut buf = vec![0u8; 4096];
        let mut got = 0;
        while got < 12 {
            let Some(rest) = buf.get_mut(got..) else {
                break;
            };
            let n = s.read(rest).await.map_err(|e| fail(e.to_string()))?;
            if n == 0 {
                break;
            }
            got += n;
        }
        let head = String::from_utf8_lossy(buf.get(..got).unwrap_or_default()).into_owned();
        Ok::<String, CheckError>(head)
    };
    let head = match tokio::time::timeout(timeout, exchange).await {
        Ok(r) => r?,
        Err(_) => return Err(fail("timeout".into())),
    };
    let code = head
        .strip_prefix("HTTP/")
        .and_then(|r| r.split_whitespace().nth(1))
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or_else(|| fail(format!("not an HTTP response: {:?}", head.lines().next())))?;
    let ok = match want {
        Some(w) => code == w,
        None => (200..300).contains(&code),
    };
    if ok {
        Ok(())
    } else {
        Err(CheckError::Status {
            addr,
            path: path.to_owned(),
            got: code,
            expected: want.map_or_else(|| "2xx".into(), |w| w.to_string()),
        })
    }
}
