//! A raw HTTP/1.1 client on `TcpStream` and a one-cookie "browser", for the tests that run an
//! axum app on a loopback port.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A parsed response.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    /// Every `Set-Cookie` value.
    pub fn set_cookies(&self) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("set-cookie"))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The `Set-Cookie` for `name`: its value and its attributes (split, trimmed).
    pub fn cookie(&self, name: &str) -> Option<(String, Vec<String>)> {
        self.set_cookies().into_iter().find_map(|c| {
            let mut parts = c.split(';').map(str::trim);
            let (n, v) = parts.next()?.split_once('=')?;
            (n == name).then(|| (v.to_owned(), parts.map(str::to_owned).collect()))
        })
    }
}

/// Serves `app` on a fresh loopback port.
pub async fn serve(app: axum::Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// One request with an optional raw `Cookie` header.
pub async fn request(addr: SocketAddr, method: &str, path: &str, cookie: Option<&str>) -> Resp {
    let fut = async {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: 0\r\n"
        );
        if let Some(c) = cookie {
            req.push_str(&format!("Cookie: {c}\r\n"));
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.unwrap();
        parse(&buf)
    };
    tokio::time::timeout(Duration::from_secs(30), fut)
        .await
        .expect("request timed out")
}

fn parse(buf: &[u8]) -> Resp {
    let text = String::from_utf8_lossy(buf);
    let (head, body) = text.split_once("\r\n\r\n").expect("complete response");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Resp {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// A browser that keeps one cookie, as a browser would from `Set-Cookie`.
#[derive(Clone)]
pub struct Browser {
    pub addr: SocketAddr,
    pub name: String,
    pub cookie: Option<String>,
}

impl Browser {
    pub fn new(addr: SocketAddr, name: &str) -> Self {
        Self {
            addr,
            name: name.to_owned(),
            cookie: None,
        }
    }

    pub async fn send(&mut self, method: &str, path: &str) -> Resp {
        let header = self.cookie.as_ref().map(|c| format!("{}={c}", self.name));
        let resp = request(self.addr, method, path, header.as_deref()).await;
        if let Some((value, attrs)) = resp.cookie(&self.name) {
            if attrs.iter().any(|a| a == "Max-Age=0") {
                self.cookie = None;
            } else {
                self.cookie = Some(value);
            }
        }
        resp
    }

    pub async fn get(&mut self, path: &str) -> Resp {
        self.send("GET", path).await
    }

    pub async fn post(&mut self, path: &str) -> Resp {
        self.send("POST", path).await
    }
}
