//! Integration tests of `lbd`: the real binary in front of hyper servers started here, all on
//! 127.0.0.1 with ephemeral ports.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream as StdStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// What a test upstream answers: status, body, delay.
type Behave = Arc<dyn Fn(&http::request::Parts) -> (u16, String, Duration) + Send + Sync>;

/// A hyper upstream server counting connections and requests.
struct Backend {
    addr: SocketAddr,
    conns: Arc<AtomicUsize>,
    reqs: Arc<AtomicUsize>,
    /// Requests other than health checks.
    app_reqs: Arc<AtomicUsize>,
    last_headers: Arc<Mutex<Vec<(String, String)>>>,
    health: Arc<AtomicU16>,
}

impl Backend {
    async fn start(name: &'static str) -> Self {
        Self::with(Arc::new(move |_| (200, name.to_owned(), Duration::ZERO))).await
    }

    async fn status(status: u16, name: &'static str) -> Self {
        Self::with(Arc::new(move |_| (status, name.to_owned(), Duration::ZERO))).await
    }

    async fn with(behave: Behave) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let b = Self {
            addr,
            conns: Arc::default(),
            reqs: Arc::default(),
            app_reqs: Arc::default(),
            last_headers: Arc::default(),
            health: Arc::new(AtomicU16::new(200)),
        };
        let (conns, reqs, app, last, health) = (
            Arc::clone(&b.conns),
            Arc::clone(&b.reqs),
            Arc::clone(&b.app_reqs),
            Arc::clone(&b.last_headers),
            Arc::clone(&b.health),
        );
        tokio::spawn(async move {
            loop {
                let Ok((s, _)) = listener.accept().await else {
                    return;
                };
                conns.fetch_add(1, Ordering::SeqCst);
                let (reqs, app, last, health, behave) = (
                    Arc::clone(&reqs),
                    Arc::clone(&app),
                    Arc::clone(&last),
                    Arc::clone(&health),
                    Arc::clone(&behave),
                );
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<Incoming>| {
                        let (reqs, app, last, health, behave) = (
                            Arc::clone(&reqs),
                            Arc::clone(&app),
                            Arc::clone(&last),
                            Arc::clone(&health),
                            Arc::clone(&behave),
                        );
                        async move {
                            reqs.fetch_add(1, Ordering::SeqCst);
                            let (parts, body) = req.into_parts();
                            let body = body
                                .collect()
                                .await
                                .map(|c| c.to_bytes())
                                .unwrap_or_default();
                            if parts.uri.path() == "/health" {
                                let st = health.load(Ordering::SeqCst);
                                let mut r = Response::new(Full::new(Bytes::from_static(b"hc")));
                                *r.status_mut() = http::StatusCode::from_u16(st).unwrap();
                                return Ok::<_, hyper::Error>(r);
                            }
                            app.fetch_add(1, Ordering::SeqCst);
                            *last.lock().unwrap() = parts
                                .headers
                                .iter()
                                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("?").to_owned()))
                                .collect();
                            let (status, mut text, delay) = behave(&parts);
                            if parts.uri.path() == "/echo-body" {
                                text = String::from_utf8_lossy(&body).into_owned();
                            }
                            if !delay.is_zero() {
                                tokio::time::sleep(delay).await;
                            }
                            let mut r = Response::new(Full::new(Bytes::from(text)));
                            *r.status_mut() = http::StatusCode::from_u16(status).unwrap();
                            Ok(r)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(s), svc)
                        .await;
                });
            }
        });
        b
    }

    fn app(&self) -> usize {
        self.app_reqs.load(Ordering::SeqCst)
    }

    fn header(&self, name: &str) -> Option<String> {
        self.last_headers
            .lock()
            .unwrap()
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }
}

/// A raw TCP upstream answering every connection with `bytes` then closing.
async fn raw_backend(bytes: &'static [u8]) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(bytes).await;
                let _ = s.shutdown().await;
            });
        }
    });
    addr
}

/// A port nothing listens on.
/// A loopback address that refuses connections for the rest of the test process: a socket is
/// bound to it and never listens (and is never closed). A listener bound and dropped would
/// leave the port free for another test to take, or for a connect to pick as its own source
/// port and connect to itself; a port held by a bound socket is skipped by the kernel's
/// ephemeral port choice.
fn closed_port() -> SocketAddr {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    let addr = s.local_addr().unwrap().as_socket().unwrap();
    std::mem::forget(s);
    addr
}

/// A loopback port free a moment ago, for lbd to listen on.
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A running `lbd`, killed on drop; its stderr is collected.
struct Lbd {
    child: Child,
    port: u16,
    conf: PathBuf,
    stderr: Arc<Mutex<String>>,
    _dir: TempDir,
}

struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "lbd-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Lbd {
    /// Start with `body` (the config without the `server` listen line; `LISTEN` is replaced).
    async fn start(conf_text: &str) -> Self {
        Self::start_file(conf_text, "lbd.conf").await
    }

    /// Start with the configuration written to a file called `name`.
    async fn start_file(conf_text: &str, name: &str) -> Self {
        let dir = TempDir::new();
        let port = free_port();
        let conf = dir.0.join(name);
        let text = conf_text
            .replace("LISTEN", &format!("127.0.0.1:{port}"))
            .replace("PIDFILE", &dir.0.join("lbd.pid").display().to_string())
            .replace("LOGDIR", &dir.0.display().to_string());
        std::fs::write(&conf, text).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_lbd"))
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().unwrap();
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        for _ in 0..200 {
            if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return Self {
                    child,
                    port,
                    conf,
                    stderr,
                    _dir: dir,
                };
            }
            if let Ok(Some(st)) = child.try_wait() {
                panic!("lbd exited with {st}: {}", stderr.lock().unwrap());
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("lbd did not start: {}", stderr.lock().unwrap());
    }

    fn signal(&self, sig: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap());
        nix::sys::signal::kill(pid, sig).unwrap();
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    async fn get(&self, path: &str) -> Resp {
        request(self.port, "GET", path, &[], "").await
    }
}

impl Drop for Lbd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug)]
struct Resp {
    status: u16,
    headers: HashMap<String, String>,
    body: String,
}

/// One request on a fresh connection.
async fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &'static str,
) -> Resp {
    let s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let (mut tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(s))
        .await
        .unwrap();
    tokio::spawn(conn);
    send(&mut tx, method, path, headers, body).await
}

async fn send(
    tx: &mut hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &'static str,
) -> Resp {
    let mut b = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "example.com:8080");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    tx.ready().await.unwrap();
    let r = tx
        .send_request(
            b.body(Full::new(Bytes::from_static(body.as_bytes())))
                .unwrap(),
        )
        .await
        .unwrap();
    let status = r.status().as_u16();
    let headers = r
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let body =
        String::from_utf8_lossy(&r.into_body().collect().await.unwrap().to_bytes()).into_owned();
    Resp {
        status,
        headers,
        body,
    }
}

fn upstream(name: &str, extra: &str, servers: &[(SocketAddr, &str)]) -> String {
    let mut s = format!("upstream {name} {{\n{extra}\n");
    for (a, p) in servers {
        s.push_str(&format!("  server {a} {p};\n"));
    }
    s.push_str("}\n");
    s
}

fn conf(upstreams: &str, location: &str) -> String {
    format!(
        "workers 2;\nnode_name lb-test;\naccess_log stderr;\n{upstreams}\nserver {{\n listen LISTEN;\n location / {{\n  proxy_pass http://u;\n{location}\n }}\n location = /lbd-status {{ lbd_status; }}\n}}\n"
    )
}

#[tokio::test]
async fn smooth_wrr_5_1_1_and_status() {
    let (a, b, c) = (
        Backend::start("a").await,
        Backend::start("b").await,
        Backend::start("c").await,
    );
    let up = upstream(
        "u",
        "",
        &[
            (a.addr, "weight=5"),
            (b.addr, "weight=1"),
            (c.addr, "weight=1"),
        ],
    );
    let lbd = Lbd::start(&conf(&up, "")).await;
    let mut got = Vec::new();
    for _ in 0..14 {
        got.push(lbd.get("/").await.body);
    }
    assert_eq!(got.join(" "), "a a b a c a a a a b a c a a");
    let st = lbd.get("/lbd-status").await;
    assert_eq!((st.status, st.body.as_str()), (200, "lb-test\n"));
    // The access log names the upstream and its status.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let log = lbd.stderr();
    assert!(
        log.contains(&format!(
            "\"GET / HTTP/1.1\" 200 1 \"-\" \"-\" upstream={} ustatus=200",
            a.addr
        )),
        "{log}"
    );
}

#[tokio::test]
async fn ipvs_wrr_scheduler_follows_the_kernel_order() {
    let (a, b, c) = (
        Backend::start("a").await,
        Backend::start("b").await,
        Backend::start("c").await,
    );
    let up = upstream(
        "u",
        "scheduler wrr;",
        &[
            (a.addr, "weight=4"),
            (b.addr, "weight=3"),
            (c.addr, "weight=2"),
        ],
    );
    let lbd = Lbd::start(&conf(&up, "")).await;
    let mut got = Vec::new();
    for _ in 0..9 {
        got.push(lbd.get("/").await.body);
    }
    // lvs-sched's README: the kernel's wrr order for weights 4, 3, 2 added in this order (the
    // kernel walks its list from the last added, c, b, a): 0,1,0,2,1,0,2,1,0.
    assert_eq!(got.join(" "), "a b a c b a c b a");
}

#[tokio::test]
async fn least_conn_avoids_the_busy_server() {
    let slow = Backend::with(Arc::new(|_| {
        (200, "slow".into(), Duration::from_millis(1500))
    }))
    .await;
    let fast = Backend::start("fast").await;
    let up = upstream("u", "least_conn;", &[(slow.addr, ""), (fast.addr, "")]);
    let lbd = Lbd::start(&conf(&up, "")).await;
    let port = lbd.port;
    let busy = tokio::spawn(async move { request(port, "GET", "/", &[], "").await });
    tokio::time::sleep(Duration::from_millis(150)).await;
    for _ in 0..5 {
        assert_eq!(lbd.get("/").await.body, "fast");
    }
    assert_eq!(busy.await.unwrap().body, "slow");
    // The slow request is over: the counts are equal again and the tie goes by round robin.
    let mut seen = std::collections::HashSet::new();
    for _ in 0..4 {
        seen.insert(lbd.get("/").await.body);
    }
    assert_eq!(seen.len(), 2, "{seen:?}");
    // A client that gives up mid-request does not leave a connection counted on the server.
    for _ in 0..2 {
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        drop(s);
    }
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let mut seen = std::collections::HashSet::new();
    for _ in 0..4 {
        seen.insert(lbd.get("/").await.body);
    }
    assert_eq!(seen.len(), 2, "{seen:?}");
}

#[tokio::test]
async fn ip_hash_matches_lvs_sched_and_sticks() {
    let bs = [
        Backend::start("a").await,
        Backend::start("b").await,
        Backend::start("c").await,
    ];
    let servers: Vec<_> = bs.iter().map(|b| (b.addr, "")).collect();
    let lbd = Lbd::start(&conf(&upstream("u", "ip_hash;", &servers), "")).await;
    // What lvs-sched's nginx ip_hash picks for a client on 127.0.0.x.
    let mut set = lvs_sched::DestSet::new();
    for b in &bs {
        set.push(lvs_sched::Dest::new(b.addr, 1));
    }
    let mut svc = lvs_sched::Service::from_dests(
        lvs_sched::SchedulerKind::NginxIpHash,
        Default::default(),
        set,
    );
    let flow = lvs_sched::Flow::tcp(
        "127.0.0.1:40000".parse().unwrap(),
        "127.0.0.1:80".parse().unwrap(),
    );
    let want = svc.schedule(&flow, lvs_sched::Instant::ZERO).unwrap();
    let want = ["a", "b", "c"][want.0];
    for _ in 0..8 {
        assert_eq!(lbd.get("/").await.body, want);
    }
}

#[tokio::test]
async fn hash_request_uri_consistent_is_stable() {
    let bs = [
        Backend::start("a").await,
        Backend::start("b").await,
        Backend::start("c").await,
    ];
    let servers: Vec<_> = bs.iter().map(|b| (b.addr, "")).collect();
    let lbd = Lbd::start(&conf(
        &upstream("u", "hash $request_uri consistent;", &servers),
        "",
    ))
    .await;
    let mut seen = std::collections::HashSet::new();
    for i in 0..12 {
        let path = format!("/k{i}");
        let first = lbd.get(&path).await.body;
        assert_eq!(lbd.get(&path).await.body, first);
        seen.insert(first);
    }
    assert!(seen.len() >= 2, "12 keys all on one server: {seen:?}");
}

#[tokio::test]
async fn get_is_retried_on_502_and_refused_post_is_not_retried_after_sending() {
    let bad1 = Backend::status(502, "bad1").await;
    let bad2 = Backend::status(502, "bad2").await;
    let good = Backend::start("good").await;
    let refused = closed_port();
    let up = upstream(
        "u",
        "",
        &[
            (refused, "max_fails=0"),
            (bad1.addr, "max_fails=0"),
            (bad2.addr, "max_fails=0"),
            (good.addr, "max_fails=0"),
        ],
    );
    let lbd = Lbd::start(&conf(&up, "proxy_next_upstream error timeout http_502;")).await;
    // GET: refused and 502 are skipped until the good server answers.
    for _ in 0..4 {
        let r = lbd.get("/").await;
        assert_eq!((r.status, r.body.as_str()), (200, "good"));
    }
    // POST: once a server answered 502 the request was sent: no retry, the 502 is passed on.
    // (A refused connect is retried even for POST, as in nginx: nothing was sent.)
    let before = bad1.app() + bad2.app() + good.app();
    let r = request(lbd.port, "POST", "/", &[], "x").await;
    let after = bad1.app() + bad2.app() + good.app();
    assert_eq!(after - before, 1, "POST reached {} servers", after - before);
    if r.body != "good" {
        assert_eq!(r.status, 502);
    }
    // Several POSTs: at least one lands on a 502 server and is answered 502, never retried.
    let mut saw_502 = false;
    for _ in 0..4 {
        let before = bad1.app() + bad2.app() + good.app();
        let r = request(lbd.port, "POST", "/", &[], "x").await;
        assert_eq!(bad1.app() + bad2.app() + good.app() - before, 1);
        saw_502 |= r.status == 502 && r.body.starts_with("bad");
    }
    assert!(saw_502);
}

#[tokio::test]
async fn non_idempotent_allows_post_retry() {
    let bad = Backend::status(502, "bad").await;
    let good = Backend::start("good").await;
    let up = upstream(
        "u",
        "",
        &[(bad.addr, "max_fails=0"), (good.addr, "max_fails=0")],
    );
    let lbd = Lbd::start(&conf(
        &up,
        "proxy_next_upstream error http_502 non_idempotent;",
    ))
    .await;
    for _ in 0..4 {
        let r = request(lbd.port, "POST", "/echo-body", &[], "payload").await;
        assert_eq!((r.status, r.body.as_str()), (200, "payload"));
    }
    assert!(bad.app() >= 1);
}

#[tokio::test]
async fn tries_and_timeout_limits() {
    let bs = [
        Backend::status(502, "x").await,
        Backend::status(502, "y").await,
        Backend::status(502, "z").await,
    ];
    let servers: Vec<_> = bs.iter().map(|b| (b.addr, "max_fails=0")).collect();
    let lbd = Lbd::start(&conf(
        &upstream("u", "", &servers),
        "proxy_next_upstream http_502;\nproxy_next_upstream_tries 2;",
    ))
    .await;
    let r = lbd.get("/").await;
    assert_eq!(r.status, 502);
    assert_eq!(bs.iter().map(Backend::app).sum::<usize>(), 2);
    drop(lbd);

    // Each try takes 300 ms; the 100 ms budget allows no second try.
    let slow: Vec<Backend> = vec![
        Backend::with(Arc::new(|_| (502, "s1".into(), Duration::from_millis(300)))).await,
        Backend::with(Arc::new(|_| (502, "s2".into(), Duration::from_millis(300)))).await,
    ];
    let servers: Vec<_> = slow.iter().map(|b| (b.addr, "max_fails=0")).collect();
    let lbd = Lbd::start(&conf(
        &upstream("u", "", &servers),
        "proxy_next_upstream http_502;\nproxy_next_upstream_timeout 100ms;",
    ))
    .await;
    let r = lbd.get("/").await;
    assert_eq!(r.status, 502);
    assert_eq!(slow.iter().map(Backend::app).sum::<usize>(), 1);
}

#[tokio::test]
async fn read_timeout_is_504_or_next_server() {
    let slow = Backend::with(Arc::new(|_| (200, "slow".into(), Duration::from_secs(3)))).await;
    let fast = Backend::start("fast").await;
    let up = upstream(
        "u",
        "",
        &[(slow.addr, "max_fails=0"), (fast.addr, "max_fails=0")],
    );
    let lbd = Lbd::start(&conf(
        &up,
        "proxy_read_timeout 200ms;\nproxy_next_upstream timeout;",
    ))
    .await;
    let t = std::time::Instant::now();
    let r = lbd.get("/").await;
    assert_eq!((r.status, r.body.as_str()), (200, "fast"));
    assert!(t.elapsed() < Duration::from_secs(2));
    drop(lbd);
    let up = upstream("u", "", &[(slow.addr, "")]);
    let lbd = Lbd::start(&conf(&up, "proxy_read_timeout 200ms;")).await;
    assert_eq!(lbd.get("/").await.status, 504);
}

/// The upstream timeouts count from when the request is complete: a client that takes longer
/// to send its body than `proxy_read_timeout` + `proxy_send_timeout` still gets its answer.
#[tokio::test]
async fn a_slow_request_body_does_not_use_up_the_upstream_timeout() {
    let b = Backend::start("b").await;
    let up = upstream("u", "", &[(b.addr, "")]);
    let lbd = Lbd::start(&conf(
        &up,
        "proxy_read_timeout 300ms;\nproxy_send_timeout 300ms;",
    ))
    .await;
    // Kept-alive upstream connections in both workers' pools, so that the slow request's
    // timeout is not counted from a fresh connect.
    for _ in 0..2 {
        assert_eq!(lbd.get("/").await.status, 200);
    }
    let port = lbd.port;
    let out = tokio::task::spawn_blocking(move || {
        let mut s = StdStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nConnection: close\r\n\r\nab",
        )
        .unwrap();
        std::thread::sleep(Duration::from_millis(1000));
        s.write_all(b"cd").unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    })
    .await
    .unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{}", short(&out));
    assert!(out.ends_with('b'), "{}", short(&out));
}

#[tokio::test]
async fn passive_health_ejects_for_fail_timeout() {
    let bad = Backend::status(502, "bad").await;
    let good = Backend::start("good").await;
    let up = upstream(
        "u",
        "",
        &[(bad.addr, "max_fails=1 fail_timeout=1s"), (good.addr, "")],
    );
    let lbd = Lbd::start(&conf(&up, "proxy_next_upstream error http_502;")).await;
    assert_eq!(lbd.get("/").await.body, "good");
    assert_eq!(bad.app(), 1);
    for _ in 0..6 {
        assert_eq!(lbd.get("/").await.body, "good");
    }
    assert_eq!(
        bad.app(),
        1,
        "the failed server was tried within fail_timeout"
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    for _ in 0..3 {
        assert_eq!(lbd.get("/").await.body, "good");
    }
    assert_eq!(
        bad.app(),
        2,
        "the failed server was not tried again after fail_timeout"
    );
}

#[tokio::test]
async fn active_health_marks_down_and_up() {
    let a = Backend::start("a").await;
    let b = Backend::start("b").await;
    let up = upstream(
        "u",
        "health_check interval=100ms timeout=500ms rise=2 fall=2 uri=/health;",
        &[(a.addr, ""), (b.addr, "")],
    );
    let lbd = Lbd::start(&conf(&up, "")).await;
    let mut bodies = Vec::new();
    for _ in 0..4 {
        bodies.push(lbd.get("/").await.body);
    }
    assert_eq!(bodies, ["a", "b", "a", "b"]);
    a.health.store(503, Ordering::SeqCst);
    // fall=2 at 100 ms: out within a few hundred ms (wait for the log line, at most 5 s).
    for _ in 0..250 {
        if lbd.stderr().contains("is down") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let before = a.app();
    for _ in 0..6 {
        assert_eq!(lbd.get("/").await.body, "b");
    }
    assert_eq!(a.app(), before);
    assert!(lbd.stderr().contains("is down"), "{}", lbd.stderr());
    a.health.store(200, Ordering::SeqCst);
    for _ in 0..250 {
        if lbd.stderr().contains("is up") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut got_a = false;
    for _ in 0..4 {
        got_a |= lbd.get("/").await.body == "a";
    }
    assert!(got_a);
    // TCP checks: a closed port is taken out.
    drop(lbd);
    let dead = closed_port();
    let up = upstream(
        "u",
        "health_check type=tcp interval=100ms rise=1 fall=1;",
        &[(dead, "max_fails=0"), (b.addr, "")],
    );
    let lbd = Lbd::start(&conf(&up, "proxy_next_upstream off;")).await;
    for _ in 0..250 {
        if lbd.stderr().contains("is down") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for _ in 0..4 {
        assert_eq!(lbd.get("/").await.status, 200);
    }
}

#[tokio::test]
async fn backup_only_when_primaries_are_down() {
    let a = Backend::start("a").await;
    let b = Backend::start("b").await;
    let c = Backend::start("c").await;
    let up = upstream("u", "", &[(a.addr, ""), (b.addr, ""), (c.addr, "backup")]);
    let lbd = Lbd::start(&conf(&up, "")).await;
    for _ in 0..6 {
        assert_ne!(lbd.get("/").await.body, "c");
    }
    assert_eq!(c.app(), 0);
    drop(lbd);
    let (d1, d2) = (closed_port(), closed_port());
    let up = upstream("u", "", &[(d1, ""), (d2, ""), (c.addr, "backup")]);
    let lbd = Lbd::start(&conf(&up, "")).await;
    for _ in 0..4 {
        let r = lbd.get("/").await;
        assert_eq!((r.status, r.body.as_str()), (200, "c"));
    }
}

#[tokio::test]
async fn a_retry_moves_from_a_single_failing_primary_to_the_backup() {
    // nginx: with one primary and a backup the request's retry goes to the backup list
    // (lvs-sched's per-request tried state), and a refused or 502 primary is not tried twice.
    let bad = Backend::status(502, "bad").await;
    let backup = Backend::start("backup").await;
    let up = upstream(
        "u",
        "",
        &[(bad.addr, "max_fails=0"), (backup.addr, "backup")],
    );
    let lbd = Lbd::start(&conf(&up, "proxy_next_upstream error http_502;")).await;
    for i in 1..=3 {
        let r = lbd.get("/").await;
        assert_eq!((r.status, r.body.as_str()), (200, "backup"));
        assert_eq!((bad.app(), backup.app()), (i, i));
    }
    drop(lbd);
    // Both down (refused): the primary and the backup are each tried once, then 502.
    let (d1, d2) = (closed_port(), closed_port());
    let up = upstream("u", "", &[(d1, "max_fails=0"), (d2, "backup")]);
    let lbd = Lbd::start(&conf(&up, "proxy_next_upstream error;")).await;
    assert_eq!(lbd.get("/").await.status, 502);
}

#[tokio::test]
async fn proxy_headers() {
    let a = Backend::start("a").await;
    let up = upstream("u", "", &[(a.addr, "")]);
    let lbd = Lbd::start(&conf(
        &up,
        "proxy_set_header Host $host;\nproxy_set_header X-Real-IP $remote_addr;\nproxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\nproxy_set_header X-Forwarded-Proto $scheme;",
    ))
    .await;
    let r = request(
        lbd.port,
        "GET",
        "/p?q=1",
        &[
            ("x-forwarded-for", "10.9.8.7"),
            ("connection", "keep-alive, x-hop"),
            ("x-hop", "1"),
            ("x-other", "kept"),
        ],
        "",
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(a.header("host").as_deref(), Some("example.com"));
    assert_eq!(a.header("x-real-ip").as_deref(), Some("127.0.0.1"));
    assert_eq!(
        a.header("x-forwarded-for").as_deref(),
        Some("10.9.8.7, 127.0.0.1")
    );
    assert_eq!(a.header("x-forwarded-proto").as_deref(), Some("http"));
    assert_eq!(a.header("x-other").as_deref(), Some("kept"));
    assert_eq!(a.header("x-hop"), None);
    assert_eq!(a.header("connection"), None);
    drop(lbd);
    // Without proxy_set_header Host, nginx sends the upstream name.
    let lbd = Lbd::start(&conf(&up, "")).await;
    lbd.get("/").await;
    assert_eq!(a.header("host").as_deref(), Some("u"));
}

#[tokio::test]
async fn upstream_keepalive_reuses_connections() {
    let a = Backend::start("a").await;
    let up = upstream("u", "keepalive 8;", &[(a.addr, "")]);
    let lbd = Lbd::start(&conf(&up, "").replace("workers 2;", "workers 1;")).await;
    for _ in 0..20 {
        assert_eq!(lbd.get("/").await.body, "a");
    }
    // One client connection, many requests.
    let s = TcpStream::connect(("127.0.0.1", lbd.port)).await.unwrap();
    let (mut tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(s))
        .await
        .unwrap();
    tokio::spawn(conn);
    for _ in 0..20 {
        assert_eq!(send(&mut tx, "GET", "/", &[], "").await.body, "a");
    }
    assert_eq!(a.app(), 40);
    assert_eq!(
        a.conns.load(Ordering::SeqCst),
        1,
        "upstream connections were not reused"
    );
}

#[tokio::test]
async fn sticky_cookie_pins_the_server() {
    let a = Backend::start("a").await;
    let b = Backend::start("b").await;
    let up = upstream("u", "sticky cookie srv;", &[(a.addr, ""), (b.addr, "")]);
    let lbd = Lbd::start(&conf(&up, "")).await;
    let first = lbd.get("/").await;
    let cookie = first
        .headers
        .get("set-cookie")
        .expect("no Set-Cookie")
        .clone();
    let pair = cookie.split(';').next().unwrap().to_owned();
    assert!(pair.starts_with("srv="));
    for _ in 0..5 {
        let r = request(lbd.port, "GET", "/", &[("cookie", &pair)], "").await;
        assert_eq!(r.body, first.body);
        assert!(!r.headers.contains_key("set-cookie"));
    }
    // Without the cookie, round robin goes on.
    assert_ne!(lbd.get("/").await.body, lbd.get("/").await.body);
}

#[tokio::test]
async fn bad_requests_and_bad_upstreams() {
    let a = Backend::start("a").await;
    let cut = raw_backend(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten..").await;
    let invalid = raw_backend(b"HTTP/1.1 200 OK\r\nBad Header Line\r\n\r\n").await;
    let text = format!(
        "workers 2;\naccess_log off;\n{}{}{}server {{\n listen LISTEN;\n location / {{ proxy_pass http://u; }}\n location /cut {{ proxy_pass http://cut; }}\n location /invalid {{ proxy_pass http://inv; }}\n}}\n",
        upstream("u", "", &[(a.addr, "")]),
        upstream("cut", "", &[(cut, "")]),
        upstream("inv", "", &[(invalid, "")]),
    );
    let lbd = Lbd::start(&text).await;
    let raw = |req: Vec<u8>| {
        let port = lbd.port;
        move || {
            let mut s = StdStream::connect(("127.0.0.1", port)).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let _ = s.write_all(&req);
            let mut out = Vec::new();
            let _ = s.read_to_end(&mut out);
            String::from_utf8_lossy(&out).into_owned()
        }
    };
    let big = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    let out = tokio::task::spawn_blocking(raw(big.into_bytes()))
        .await
        .unwrap();
    assert!(out.starts_with("HTTP/1.1 431"), "{out}");
    let chunked =
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"
            .to_vec();
    let out = tokio::task::spawn_blocking(raw(chunked)).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 400"), "{out}");
    let garbage = b"\x01\x02 nonsense\r\n\r\n".to_vec();
    let out = tokio::task::spawn_blocking(raw(garbage)).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 400"), "{out}");
    let out = tokio::task::spawn_blocking(raw(
        b"GET /invalid HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(),
    ))
    .await
    .unwrap();
    assert!(out.starts_with("HTTP/1.1 502"), "{out}");
    let out = tokio::task::spawn_blocking(raw(
        b"GET /cut HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(),
    ))
    .await
    .unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(out.ends_with("only ten.."), "{out}");
    // Still serving.
    assert_eq!(lbd.get("/").await.body, "a");
    assert_eq!(lbd.get("/").await.body, "a");
}

/// The number of open file descriptors of process `pid`.
fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// The start of `s`, for assertion messages.
fn short(s: &str) -> String {
    s.chars().take(300).collect()
}

/// Send `req` on a fresh connection and read until the server closes it (at most 5 s);
/// returns what came back and how long the close took.
fn raw_exchange(port: u16, req: &[u8]) -> (String, Duration) {
    let t = std::time::Instant::now();
    let mut s = StdStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.write_all(req);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    (String::from_utf8_lossy(&out).into_owned(), t.elapsed())
}

/// Bad upstream responses: a response whose header is complete but whose body goes wrong
/// cannot become a 502 any more (the status line is already on its way to the client): `lbd`
/// then aborts the client connection, so the client sees a truncated body and no clean end
/// (nginx does the same). Everything that fails before the header gives 502.
#[tokio::test]
async fn bad_upstream_bodies_abort_and_nothing_leaks() {
    let a = Backend::start("a").await;
    let bad_chunk = raw_backend(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    )
    .await;
    let cut_chunked =
        raw_backend(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n").await;
    let cut_length = raw_backend(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten..").await;
    let big_head: &'static [u8] = Box::leak(
        format!(
            "HTTP/1.1 200 OK\r\nX-Big: {}\r\nContent-Length: 2\r\n\r\nok",
            "b".repeat(100 * 1024)
        )
        .into_bytes()
        .into_boxed_slice(),
    );
    let big_head = raw_backend(big_head).await;
    let silent_close = raw_backend(b"").await;
    let half_head = raw_backend(b"HTTP/1.1 200 OK\r\nContent-Le").await;
    let mut text = String::from("workers 2;\naccess_log off;\n");
    let cases = [
        ("u", a.addr),
        ("badchunk", bad_chunk),
        ("cutchunked", cut_chunked),
        ("cutlength", cut_length),
        ("bighead", big_head),
        ("silent", silent_close),
        ("halfhead", half_head),
    ];
    for (name, addr) in cases {
        text.push_str(&upstream(name, "", &[(addr, "")]));
    }
    text.push_str("server {\n listen LISTEN;\n location / { proxy_pass http://u; }\n");
    for (name, _) in &cases[1..] {
        text.push_str(&format!(
            " location /{name} {{ proxy_pass http://{name}; proxy_next_upstream off; }}\n"
        ));
    }
    text.push_str("}\n");
    let mut lbd = Lbd::start(&text).await;
    let pid = lbd.child.id();
    let port = lbd.port;
    for _ in 0..4 {
        assert_eq!(lbd.get("/").await.body, "a");
    }
    let baseline = fd_count(pid);
    let check = move || {
        for _ in 0..10 {
            // Keep-alive requests: lbd must close the connection itself after a broken body.
            for path in ["/badchunk", "/cutchunked"] {
                let (out, took) = raw_exchange(
                    port,
                    format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
                );
                assert!(
                    took < Duration::from_secs(4),
                    "{path}: not closed: {}",
                    short(&out)
                );
                assert!(
                    out.is_empty() || out.starts_with("HTTP/1.1 200"),
                    "{path}: {}",
                    short(&out)
                );
                assert!(
                    !out.ends_with("0\r\n\r\n"),
                    "{path}: ended cleanly: {}",
                    short(&out)
                );
            }
            let (out, took) = raw_exchange(port, b"GET /cutlength HTTP/1.1\r\nHost: x\r\n\r\n");
            assert!(took < Duration::from_secs(4), "not closed: {}", short(&out));
            assert!(out.starts_with("HTTP/1.1 200"), "{}", short(&out));
            assert!(out.ends_with("only ten.."), "{}", short(&out));
            for path in ["/bighead", "/silent", "/halfhead"] {
                let (out, _) = raw_exchange(
                    port,
                    format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                        .as_bytes(),
                );
                assert!(out.starts_with("HTTP/1.1 502"), "{path}: {}", short(&out));
            }
            // Client-side garbage.
            let big = format!(
                "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
                "a".repeat(64 * 1024)
            );
            let (out, _) = raw_exchange(port, big.as_bytes());
            assert!(out.starts_with("HTTP/1.1 431"), "{}", short(&out));
            let (out, _) = raw_exchange(port, b"\x01\x02 nonsense\r\n\r\n");
            assert!(out.starts_with("HTTP/1.1 400"), "{}", short(&out));
            let (out, _) = raw_exchange(
                port,
                b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            );
            assert!(out.starts_with("HTTP/1.1 400"), "{}", short(&out));
        }
    };
    tokio::task::spawn_blocking(check).await.unwrap();
    assert!(
        matches!(lbd.child.try_wait(), Ok(None)),
        "lbd died: {}",
        lbd.stderr()
    );
    // Still serving, and back to the descriptors it had (the client connections above are
    // closed; a few idle upstream connections may have been opened by the other worker).
    assert_eq!(lbd.get("/").await.body, "a");
    let mut now = fd_count(pid);
    for _ in 0..100 {
        if now <= baseline + 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
        now = fd_count(pid);
    }
    assert!(
        now <= baseline + 2,
        "fd leak: {baseline} before, {now} after"
    );
}

#[tokio::test]
async fn sighup_reloads_and_keeps_old_config_on_error() {
    let a = Backend::start("a").await;
    let up = upstream("u", "", &[(a.addr, "")]);
    let lbd = Lbd::start(&conf(&up, "")).await;
    assert_eq!(lbd.get("/lbd-status").await.body, "lb-test\n");
    let text = std::fs::read_to_string(&lbd.conf).unwrap();
    std::fs::write(
        &lbd.conf,
        text.replace("node_name lb-test;", "node_name lb-new;"),
    )
    .unwrap();
    lbd.signal(nix::sys::signal::Signal::SIGHUP);
    let mut ok = false;
    for _ in 0..100 {
        if lbd.get("/lbd-status").await.body == "lb-new\n" {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(ok, "{}", lbd.stderr());
    std::fs::write(
        &lbd.conf,
        "node_name broken;\nupstream u {\n  server 127.0.0.1:1 weight=zero;\n}\n",
    )
    .unwrap();
    lbd.signal(nix::sys::signal::Signal::SIGHUP);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let err = lbd.stderr();
    assert!(err.contains("lbd.conf:3:"), "{err}");
    assert!(err.contains("keeping the running configuration"), "{err}");
    assert_eq!(lbd.get("/lbd-status").await.body, "lb-new\n");
    assert_eq!(lbd.get("/").await.body, "a");
}

/// Send SIGHUP after rewriting the configuration with `edit`, and wait until `/lbd-status`
/// answers `node_name` (which the edit must set).
async fn reload_to(lbd: &Lbd, node_name: &str, edit: impl FnOnce(String) -> String) {
    let text = std::fs::read_to_string(&lbd.conf).unwrap();
    std::fs::write(&lbd.conf, edit(text)).unwrap();
    lbd.signal(nix::sys::signal::Signal::SIGHUP);
    let want = format!("{node_name}\n");
    for _ in 0..200 {
        if lbd.get("/lbd-status").await.body == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the reload did not take effect: {}", lbd.stderr());
}

#[tokio::test]
async fn sighup_keeps_passive_health_state_of_unchanged_servers() {
    let bad = Backend::status(502, "bad").await;
    let good = Backend::start("good").await;
    let added = Backend::start("added").await;
    let fail_timeout = Duration::from_secs(3);
    let up = upstream(
        "u",
        "",
        &[(bad.addr, "max_fails=1 fail_timeout=3s"), (good.addr, "")],
    );
    let lbd = Lbd::start(&conf(&up, "proxy_next_upstream error http_502;")).await;
    // Round robin tries `bad` first: it fails once and is out for fail_timeout.
    assert_eq!(lbd.get("/").await.body, "good");
    let failed_at = std::time::Instant::now();
    assert_eq!(bad.app(), 1);
    // Reload: the same two servers plus a new one.
    let good_line = format!("  server {} ;\n", good.addr);
    reload_to(&lbd, "lb-new", |t| {
        t.replace("node_name lb-test;", "node_name lb-new;")
            .replace(
                &good_line,
                &format!("{good_line}  server {} ;\n", added.addr),
            )
    })
    .await;
    // Right after the reload `bad` is still out (a fresh state would try it first), and the
    // new server is in service.
    let mut bodies = Vec::new();
    for _ in 0..6 {
        bodies.push(lbd.get("/").await.body);
    }
    assert!(
        failed_at.elapsed() < fail_timeout,
        "too slow to tell: {:?}",
        failed_at.elapsed()
    );
    assert_eq!(
        bad.app(),
        1,
        "the failed server was tried right after the reload"
    );
    assert!(
        bodies.iter().all(|b| b == "good" || b == "added"),
        "{bodies:?}"
    );
    assert!(bodies.iter().any(|b| b == "added"), "{bodies:?}");
    // After fail_timeout it is tried again.
    tokio::time::sleep(
        (fail_timeout + Duration::from_millis(300)).saturating_sub(failed_at.elapsed()),
    )
    .await;
    for _ in 0..4 {
        assert_ne!(lbd.get("/").await.body, "bad");
    }
    assert_eq!(
        bad.app(),
        2,
        "the failed server was not tried after fail_timeout"
    );
    // A server removed by a reload is dropped; adding it back starts it afresh.
    let bad_line = format!("  server {} max_fails=1 fail_timeout=3s;\n", bad.addr);
    reload_to(&lbd, "lb-3", |t| {
        t.replace("node_name lb-new;", "node_name lb-3;")
            .replace(&bad_line, "")
    })
    .await;
    for _ in 0..4 {
        assert_ne!(lbd.get("/").await.body, "bad");
    }
    assert_eq!(bad.app(), 2);
}

#[tokio::test]
async fn sighup_keeps_active_health_state_of_unchanged_servers() {
    let a = Backend::start("a").await;
    let b = Backend::start("b").await;
    let up = upstream(
        "u",
        "health_check interval=200ms timeout=500ms rise=10 fall=1 uri=/health;",
        &[(a.addr, ""), (b.addr, "")],
    );
    let lbd = Lbd::start(&conf(&up, "")).await;
    a.health.store(503, Ordering::SeqCst);
    for _ in 0..250 {
        if lbd.stderr().contains("is down") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(lbd.stderr().contains("is down"), "{}", lbd.stderr());
    // Healthy again, but rise=10 at 200 ms: it stays out for about 2 s, reload or not.
    a.health.store(200, Ordering::SeqCst);
    let healed_at = std::time::Instant::now();
    reload_to(&lbd, "lb-new", |t| {
        t.replace("node_name lb-test;", "node_name lb-new;")
    })
    .await;
    let before = a.app();
    for _ in 0..6 {
        assert_eq!(lbd.get("/").await.body, "b");
    }
    assert!(healed_at.elapsed() < Duration::from_millis(1500));
    assert_eq!(
        a.app(),
        before,
        "a server down by health checks was used after the reload"
    );
    // The runs go on across the reload: back in service after `rise` passes.
    for _ in 0..250 {
        if lbd.stderr().contains("is up") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut got_a = false;
    for _ in 0..4 {
        got_a |= lbd.get("/").await.body == "a";
    }
    assert!(got_a, "{}", lbd.stderr());
}

#[tokio::test]
async fn sigterm_and_sigquit_finish_requests_in_flight_and_exit_0() {
    for sig in [
        nix::sys::signal::Signal::SIGTERM,
        nix::sys::signal::Signal::SIGQUIT,
    ] {
        graceful_stop(sig).await;
    }
}

async fn graceful_stop(sig: nix::sys::signal::Signal) {
    let slow = Backend::with(Arc::new(|_| {
        (200, "slow".into(), Duration::from_millis(600))
    }))
    .await;
    let up = upstream("u", "", &[(slow.addr, "")]);
    let mut lbd = Lbd::start(&format!("pid PIDFILE;\n{}", conf(&up, ""))).await;
    let port = lbd.port;
    let pid_file = lbd.conf.with_file_name("lbd.pid");
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    assert_eq!(pid.trim(), lbd.child.id().to_string());
    let inflight = tokio::spawn(async move { request(port, "GET", "/", &[], "").await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    lbd.signal(sig);
    let r = inflight.await.unwrap();
    assert_eq!((r.status, r.body.as_str()), (200, "slow"));
    let mut status = None;
    for _ in 0..100 {
        if let Some(s) = lbd.child.try_wait().unwrap() {
            status = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let status = status.expect("lbd did not exit");
    assert!(status.success(), "{status}: {}", lbd.stderr());
    assert!(!pid_file.exists(), "the pid file was left behind");
    assert!(TcpStream::connect(("127.0.0.1", port)).await.is_err());
}

/// Open a keep-alive connection to `port` (its requests stay on one worker).
async fn keepalive(port: u16) -> hyper::client::conn::http1::SendRequest<Full<Bytes>> {
    let s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let (tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(s))
        .await
        .unwrap();
    tokio::spawn(conn);
    tx
}

async fn wait_for_stderr(lbd: &Lbd, text: &str) {
    for _ in 0..200 {
        if lbd.stderr().contains(text) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("lbd did not print `{text}`: {}", lbd.stderr());
}

#[tokio::test]
async fn buffered_access_log_is_written_when_full_on_reopen_and_at_stop() {
    let a = Backend::start("a").await;
    let up = upstream("u", "", &[(a.addr, "")]);
    let mut lbd = Lbd::start(&format!(
        "workers 2;\naccess_log LOGDIR/access.log combined buffer=4k;\n{up}\
         server {{ listen LISTEN; location / {{ proxy_pass http://u; }} }}\n"
    ))
    .await;
    let path = lbd.conf.with_file_name("access.log");
    let rotated = lbd.conf.with_file_name("access.log.1");
    let read = |p: &PathBuf| std::fs::read_to_string(p).unwrap();
    let mut tx = keepalive(lbd.port).await;
    for i in 0..5 {
        assert_eq!(
            send(&mut tx, "GET", &format!("/r{i}"), &[], "")
                .await
                .status,
            200
        );
    }
    // Five short lines fit in the 4 KiB buffer, and there is no flush= timer.
    assert_eq!(read(&path), "");
    // logrotate: rename, then SIGUSR1. The buffered lines go to the renamed file, the new
    // lines to a new file at the configured path.
    std::fs::rename(&path, &rotated).unwrap();
    lbd.signal(nix::sys::signal::Signal::SIGUSR1);
    wait_for_stderr(&lbd, "access logs reopened").await;
    let old = read(&rotated);
    assert_eq!(old.lines().count(), 5, "{old}");
    for i in 0..5 {
        assert!(
            old.contains(&format!("\"GET /r{i} HTTP/1.1\" 200 1 ")),
            "{old}"
        );
    }
    assert_eq!(read(&path), "");
    // 40 lines of ~240 bytes do not fit in 4 KiB: whole lines are written as it fills.
    let pad = "p".repeat(150);
    for i in 0..40 {
        let r = send(&mut tx, "GET", &format!("/{pad}/{i:02}"), &[], "").await;
        assert_eq!(r.status, 200);
    }
    let part = read(&path);
    let n = part.lines().count();
    assert!(
        (16..40).contains(&n),
        "{n} lines written before the stop: {part}"
    );
    assert!(part.ends_with('\n'), "a line was split: {part}");
    drop(tx);
    // The stop writes the rest.
    lbd.signal(nix::sys::signal::Signal::SIGTERM);
    let mut status = None;
    for _ in 0..200 {
        status = lbd.child.try_wait().unwrap();
        if status.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        status.expect("lbd did not exit").success(),
        "{}",
        lbd.stderr()
    );
    let all = read(&path);
    let lines: Vec<&str> = all.lines().collect();
    assert_eq!(lines.len(), 40, "{all}");
    for (i, l) in lines.iter().enumerate() {
        assert!(
            l.contains(&format!("/{pad}/{i:02} HTTP/1.1\" 200 1 ")),
            "{l}"
        );
    }
}

#[tokio::test]
async fn server_and_location_access_logs() {
    let a = Backend::start("a").await;
    let up = upstream("u", "", &[(a.addr, "")]);
    // nginx's inheritance: a location's access_log, else its server's, else the top-level one.
    let lbd = Lbd::start(&format!(
        "workers 2;\naccess_log LOGDIR/main.log;\n{up}\
         server {{ listen LISTEN;\n access_log LOGDIR/site.log;\n\
         location / {{ proxy_pass http://u; }}\n\
         location = /health {{ access_log off; return 200 ok; }}\n\
         location /api/ {{ access_log LOGDIR/api.log combined buffer=8k flush=100ms; proxy_pass http://u; }}\n\
         location /same/ {{ access_log LOGDIR/main.log; return 204; }}\n}}\n"
    ))
    .await;
    for path in ["/page", "/health", "/api/x", "/same/y"] {
        let r = lbd.get(path).await;
        assert!(r.status < 300, "{path}: {}", r.status);
    }
    let dir = lbd.conf.parent().unwrap().to_owned();
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap_or_default();
    let mut api = String::new();
    for _ in 0..100 {
        api = read("api.log");
        if !api.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let site = read("site.log");
    let main = read("main.log");
    assert!(site.contains("\"GET /page HTTP/1.1\" 200 "), "{site}");
    assert!(api.contains("\"GET /api/x HTTP/1.1\" 200 "), "{api}");
    assert!(main.contains("\"GET /same/y HTTP/1.1\" 204 "), "{main}");
    let all = format!("{site}{api}{main}");
    assert_eq!(
        all.lines().count(),
        3,
        "one line each, none for /health: {all}"
    );
    assert!(!all.contains("/health"), "{all}");
}

#[tokio::test]
async fn access_log_flush_interval_writes_an_idle_buffer() {
    let a = Backend::start("a").await;
    let up = upstream("u", "", &[(a.addr, "")]);
    let mut lbd = Lbd::start(&format!(
        "workers 2;\naccess_log LOGDIR/access.log combined buffer=64k flush=200ms;\n{up}\
         server {{ listen LISTEN; location / {{ proxy_pass http://u; }} }}\n"
    ))
    .await;
    let path = lbd.conf.with_file_name("access.log");
    assert_eq!(lbd.get("/flushed").await.status, 200);
    // The line waits in the buffer for at most one flush interval, with lbd still running.
    let mut text = String::new();
    for _ in 0..100 {
        text = std::fs::read_to_string(&path).unwrap();
        if !text.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        text.contains("\"GET /flushed HTTP/1.1\" 200 1 "),
        "{text:?}"
    );
    assert!(
        lbd.child.try_wait().unwrap().is_none(),
        "written by the timer, not at exit"
    );
}

#[tokio::test]
async fn toml_configuration_serves() {
    let a = Backend::start("a").await;
    let b = Backend::start("b").await;
    let text = format!(
        "workers = 2\nnode_name = \"lb-toml\"\naccess_log = \"off\"\n\
         [upstream.u]\nbalance = \"round_robin\"\n\
         [[upstream.u.server]]\naddr = \"{}\"\nweight = 2\n\
         [[upstream.u.server]]\naddr = \"{}\"\n\
         [[server]]\nlisten = [\"LISTEN\"]\n\
         [[server.location]]\npath = \"/\"\nproxy_pass = \"http://u\"\n\
         proxy_set_header = [[\"X-Real-IP\", \"$remote_addr\"]]\n\
         [[server.location]]\nexact = \"/lbd-status\"\nlbd_status = true\n",
        a.addr, b.addr
    );
    let lbd = Lbd::start_file(&text, "lbd.toml").await;
    assert_eq!(lbd.get("/lbd-status").await.body, "lb-toml\n");
    let mut got = Vec::new();
    for _ in 0..6 {
        got.push(lbd.get("/").await.body);
    }
    assert_eq!(got.join(" "), "a b a a b a");
    assert_eq!(b.header("x-real-ip").as_deref(), Some("127.0.0.1"));
}

#[test]
fn test_flag_and_errors_name_file_line_column() {
    let dir = TempDir::new();
    let good = dir.0.join("good.conf");
    std::fs::write(&good, "upstream u { server 127.0.0.1:1; }\nserver { listen 127.0.0.1:1; location / { proxy_pass http://u; } }\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_lbd"))
        .arg("-t")
        .arg("-c")
        .arg(&good)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bad = dir.0.join("bad.conf");
    std::fs::write(
        &bad,
        "upstream u {\n  least_conn;\n  server 127.0.0.1:1 max_fails=x;\n}\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_lbd"))
        .arg("-t")
        .arg("-c")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.conf:3:22: invalid max_fails `x`"),
        "{err}"
    );
    let toml = dir.0.join("c.toml");
    std::fs::write(
        &toml,
        "workers = 1\n[[server]]\nlisten = [\"127.0.0.1:1\"]\nbogus = 1\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_lbd"))
        .arg("-t")
        .arg("-c")
        .arg(&toml)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("c.toml:4:"), "{err}");
    let out = Command::new(env!("CARGO_BIN_EXE_lbd"))
        .arg("-x")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// Under systemd (`Type=notify`): `READY=1` once the listening socket accepts; a broken reload
/// sends `RELOADING=1` (with `MONOTONIC_USEC=`), then `READY=1` with the error in `STATUS=`,
/// and lbd keeps serving; SIGTERM sends `STOPPING=1`.
#[test]
fn systemd_notify_ready_reload_and_stop() {
    let dir = TempDir::new();
    let notify = testbed::NotifySocket::bind(&dir.0).unwrap();
    let port = free_port();
    let conf = dir.0.join("lbd.conf");
    let good = format!(
        "upstream u {{ server 127.0.0.1:1; }}\nserver {{ listen 127.0.0.1:{port}; location / {{ proxy_pass http://u; }} }}\n"
    );
    std::fs::write(&conf, &good).unwrap();
    let (key, value) = notify
        .env()
        .split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_lbd"))
        .arg("-c")
        .arg(&conf)
        .env(key, value)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
    let ready = notify.until("READY=1", Duration::from_secs(10));
    let accepts = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
    let broken = || std::fs::write(&conf, "upstream u {\n").unwrap();
    broken();
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
    let reload = notify.until("READY=1", Duration::from_secs(5));
    let still = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let stopping = notify.until("STOPPING=1", Duration::from_secs(5));
    let _ = child.wait();
    assert!(ready.is_some(), "no READY=1");
    assert!(accepts, "READY=1 before the listener accepts");
    let reload = reload.expect("no READY=1 after the reload").concat();
    assert!(
        reload.contains("RELOADING=1") && reload.contains("MONOTONIC_USEC="),
        "{reload}"
    );
    assert!(reload.contains("STATUS=reload failed"), "{reload}");
    assert!(still, "lbd stopped serving after a broken reload");
    assert!(stopping.is_some(), "no STOPPING=1");
}
