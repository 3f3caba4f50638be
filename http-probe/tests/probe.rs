//! The probes against real servers on loopback: each answers one way (a status, garbage,
//! silence, a close) and the probe must say so.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::time::Duration;

use http_probe::{Expect, HttpProbe, ProbeError, tcp};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A server that reads the request head, checks it, then sends `answer` (split in two writes
/// to exercise partial reads) and, if `hold`, keeps the connection open for a while.
async fn server(answer: &'static [u8], hold: bool) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut got = 0;
                while !buf[..got].windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = s.read(&mut buf[got..]).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    got += n;
                }
                let req = String::from_utf8_lossy(&buf[..got]).into_owned();
                assert!(req.starts_with("GET /health HTTP/1.1\r\n"), "{req}");
                assert!(req.contains("\r\nHost: "), "{req}");
                let (a, b) = answer.split_at(answer.len() / 2);
                let _ = s.write_all(a).await;
                tokio::time::sleep(Duration::from_millis(5)).await;
                let _ = s.write_all(b).await;
                if hold {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                }
            });
        }
    });
    addr
}

#[tokio::test(flavor = "current_thread")]
async fn statuses_pass_or_fail_as_expected() {
    let ok = server(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", true).await;
    let probe = HttpProbe::get("/health").timeout(Duration::from_secs(2));
    assert_eq!(probe.run(ok).await.unwrap(), 200);
    let down = server(b"HTTP/1.1 503 Service Unavailable\r\n\r\n", false).await;
    match probe.run(down).await {
        Err(ProbeError::Status {
            got: 503,
            expected: Expect::Success,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    let moved = server(b"HTTP/1.0 301 Moved\r\nLocation: /x\r\n\r\n", false).await;
    let want_301 = probe
        .clone()
        .expect(Expect::Status(301))
        .host("example.com");
    assert_eq!(want_301.run(moved).await.unwrap(), 301);
}

#[tokio::test(flavor = "current_thread")]
async fn garbage_silence_and_closes_are_errors() {
    let probe = HttpProbe::get("/health").timeout(Duration::from_millis(300));
    let ssh = server(b"SSH-2.0-OpenSSH_9.2\r\n", true).await;
    assert!(matches!(
        probe.run(ssh).await,
        Err(ProbeError::NotHttp { .. })
    ));
    let closes = server(b"", false).await;
    assert!(matches!(
        probe.run(closes).await,
        Err(ProbeError::NotHttp { .. })
    ));
    let half = server(b"HTTP/1.1 2", false).await;
    assert!(matches!(
        probe.run(half).await,
        Err(ProbeError::NotHttp { .. })
    ));
    let silent = server(b"", true).await;
    let t = std::time::Instant::now();
    assert!(matches!(
        probe.run(silent).await,
        Err(ProbeError::Timeout { .. })
    ));
    assert!(t.elapsed() < Duration::from_secs(2));
}

#[tokio::test(flavor = "current_thread")]
async fn tcp_probe_and_refused_ports() {
    let ok = server(b"", true).await;
    tcp(ok, Duration::from_secs(1)).await.unwrap();
    // A bound socket that never listens: connections to it are refused, and no other test
    // can take the port meanwhile.
    let holder = tokio::net::TcpSocket::new_v4().unwrap();
    holder.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = holder.local_addr().unwrap();
    assert!(matches!(
        tcp(addr, Duration::from_secs(1)).await,
        Err(ProbeError::Connect { .. })
    ));
    let probe = HttpProbe::get("/health");
    let err = probe.run(addr).await.unwrap_err();
    assert!(matches!(err, ProbeError::Connect { .. }), "{err}");
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
    drop(holder);
}
