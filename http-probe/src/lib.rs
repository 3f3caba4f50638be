#![doc = include_str!("../README.md")]

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The most of a response head that is read (status line and headers).
pub const MAX_HEAD: usize = 16 * 1024;

/// Which status codes pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Expect {
    /// Any 2xx (the default).
    #[default]
    Success,
    /// Exactly this code.
    Status(u16),
}

impl Expect {
    /// Whether `code` passes.
    #[must_use]
    pub fn accepts(self, code: u16) -> bool {
        match self {
            Self::Success => (200..300).contains(&code),
            Self::Status(want) => code == want,
        }
    }
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Success => f.write_str("2xx"),
            Self::Status(c) => write!(f, "{c}"),
        }
    }
}

/// Why a probe failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProbeError {
    /// The TCP connection could not be made (refused, unreachable, ...).
    #[error("TCP connection to {addr} failed: {source}")]
    Connect {
        /// Where.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Nothing (or not all of it) within the deadline.
    #[error("{addr} did not answer within {after:?}")]
    Timeout {
        /// Where.
        addr: SocketAddr,
        /// The deadline.
        after: Duration,
    },
    /// Sending the request or reading the answer failed (reset, closed early).
    #[error("HTTP request to {addr}{path} failed: {source}")]
    Io {
        /// Where.
        addr: SocketAddr,
        /// The request path.
        path: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The answer is not an HTTP/1.x response head.
    #[error("{addr}{path} did not answer HTTP: {reason}")]
    NotHttp {
        /// Where.
        addr: SocketAddr,
        /// The request path.
        path: String,
        /// What was wrong with it.
        reason: String,
    },
    /// The status is not the expected one.
    #[error("HTTP status code error to {addr}{path}: got {got}, expected {expected}")]
    Status {
        /// Where.
        addr: SocketAddr,
        /// The request path.
        path: String,
        /// What came back.
        got: u16,
        /// What was expected.
        expected: Expect,
    },
}

/// Connects to `addr` within `timeout` and closes the connection: the server accepts
/// connections.
///
/// # Errors
/// [`ProbeError::Connect`] or [`ProbeError::Timeout`].
pub async fn tcp(addr: SocketAddr, timeout: Duration) -> Result<(), ProbeError> {
    match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(source)) => Err(ProbeError::Connect { addr, source }),
        Err(_) => Err(ProbeError::Timeout {
            addr,
            after: timeout,
        }),
    }
}

/// An HTTP `GET` probe: the path, the `Host` header, the status that passes and the deadline.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct HttpProbe {
    path: String,
    host: Option<String>,
    user_agent: String,
    expect: Expect,
    timeout: Duration,
}

impl HttpProbe {
    /// `GET path`, expecting any 2xx within 1 s, with the server's address as `Host`.
    pub fn get(path: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            host: None,
            user_agent: "http-probe".into(),
            expect: Expect::Success,
            timeout: Duration::from_secs(1),
        }
    }

    /// The `Host` header (keepalived's `virtualhost`).
    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.host = Some(host.into());
        self
    }

    /// The `User-Agent` header.
    pub fn user_agent(mut self, ua: impl Into<String>) -> Self {
        self.user_agent = ua.into();
        self
    }

    /// Which status passes.
    pub fn expect(mut self, expect: Expect) -> Self {
        self.expect = expect;
        self
    }

    /// The deadline for the whole exchange.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The request path.
    #[must_use]
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Runs the probe against `addr`; the status code when it passes.
    ///
    /// # Errors
    /// A [`ProbeError`] that says why the server is not healthy.
    pub async fn run(&self, addr: SocketAddr) -> Result<u16, ProbeError> {
        let code = match tokio::time::timeout(self.timeout, self.exchange(addr)).await {
            Ok(r) => r?,
            Err(_) => {
                return Err(ProbeError::Timeout {
                    addr,
                    after: self.timeout,
                });
            }
        };
        if self.expect.accepts(code) {
            Ok(code)
        } else {
            Err(ProbeError::Status {
                addr,
                path: self.path.clone(),
                got: code,
                expected: self.expect,
            })
        }
    }

    async fn exchange(&self, addr: SocketAddr) -> Result<u16, ProbeError> {
        let io_err = |source| ProbeError::Io {
            addr,
            path: self.path.clone(),
            source,
        };
        let mut s = TcpStream::connect(addr)
            .await
            .map_err(|source| ProbeError::Connect { addr, source })?;
        let host = self.host.clone().unwrap_or_else(|| addr.to_string());
        let req = format!(
            "GET {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {}\r\nAccept: */*\r\nConnection: close\r\n\r\n",
            self.path, self.user_agent
        );
        s.write_all(req.as_bytes()).await.map_err(io_err)?;
        let mut buf = Vec::with_capacity(1024);
        loop {
            match parse_status(&buf) {
                Ok(Some(code)) => return Ok(code),
                Ok(None) => {}
                Err(reason) => {
                    return Err(ProbeError::NotHttp {
                        addr,
                        path: self.path.clone(),
                        reason,
                    });
                }
            }
            if buf.len() >= MAX_HEAD {
                return Err(ProbeError::NotHttp {
                    addr,
                    path: self.path.clone(),
                    reason: format!("no complete status line in {MAX_HEAD} bytes"),
                });
            }
            let mut chunk = [0u8; 2048];
            let n = s.read(&mut chunk).await.map_err(io_err)?;
            if n == 0 {
                let reason = if buf.is_empty() {
                    "closed without answering".to_owned()
                } else {
                    "closed in the middle of the response head".to_owned()
                };
                return Err(ProbeError::NotHttp {
                    addr,
                    path: self.path.clone(),
                    reason,
                });
            }
            buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
        }
    }
}

/// The status code once the response head's status line is complete; `None` while more is
/// needed.
///
/// # Errors
/// A description when the bytes are not an HTTP/1.x response.
pub fn parse_status(head: &[u8]) -> Result<Option<u16>, String> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    match resp.parse(head) {
        Ok(_) => Ok(resp.code),
        // More headers than fit: the status line was read, which is all a probe needs.
        Err(httparse::Error::TooManyHeaders) => Ok(resp.code),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        assert_eq!(parse_status(b""), Ok(None));
        assert_eq!(parse_status(b"HTTP/1.1 20"), Ok(None));
        assert_eq!(parse_status(b"HTTP/1.1 204 No Content\r\n"), Ok(Some(204)));
        assert_eq!(
            parse_status(b"HTTP/1.0 503 x\r\nA: b\r\n\r\n"),
            Ok(Some(503))
        );
        assert!(parse_status(b"SSH-2.0-OpenSSH\r\n").is_err());
        assert!(parse_status(b"HTTP/1.1 abc\r\n").is_err());
    }

    #[test]
    fn expectations() {
        assert!(Expect::Success.accepts(204));
        assert!(!Expect::Success.accepts(301));
        assert!(Expect::Status(301).accepts(301));
        assert_eq!(Expect::Success.to_string(), "2xx");
    }
}
