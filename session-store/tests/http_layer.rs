//! `session_store::http` over real HTTP: hyper 1 servers on loopback ports, a raw HTTP/1.1
//! client on `TcpStream`, and memory, SQLite (two servers, one file) and cookie stores, plus
//! stores that fail on purpose.
#![cfg(all(
    feature = "http",
    feature = "memory",
    feature = "cookie",
    feature = "sqlite"
))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use session_store::http::{CookieConfig, SameSite, Session, SessionFailure, SessionLayer};
use session_store::{
    CookieStore, KeyRing, ManualClock, MemoryStore, Record, SessionStore, SqliteStore, StoreError,
    SystemClock, Token, UnixTime,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Barrier;
use tower_layer::Layer;
use tower_service::Service;

const T0: u64 = 1_700_000_000;

// ---------------------------------------------------------------------------------------------
// The application: a tower service made from a closure.

/// `tower::service_fn` without the `tower` crate.
#[derive(Clone)]
struct ServiceFn<F>(F);

fn service_fn<F>(f: F) -> ServiceFn<F> {
    ServiceFn(f)
}

impl<F, Fut, R> Service<R> for ServiceFn<F>
where
    F: FnMut(R) -> Fut,
    Fut: Future<Output = Result<Response<Full<Bytes>>, Infallible>>,
{
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Fut;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: R) -> Fut {
        (self.0)(req)
    }
}

/// Shared by the handler of every server in a test.
#[derive(Default)]
struct App {
    /// Handler invocations.
    calls: AtomicUsize,
    /// `/set` waits here (if set), so that concurrent requests load the same version.
    barrier: Option<Barrier>,
}

fn query<'a>(req: &'a Request<Incoming>, key: &str) -> Option<&'a str> {
    req.uri().query()?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then_some(v)
    })
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::from(body));
    *r.status_mut() = status;
    r
}

async fn handler(
    app: Arc<App>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    app.calls.fetch_add(1, Ordering::SeqCst);
    let Some(session) = req.extensions().get::<Session>().cloned() else {
        return Ok(text(StatusCode::INTERNAL_SERVER_ERROR, "no session".into()));
    };
    let body = match req.uri().path() {
        "/login" => {
            let user = query(&req, "user").unwrap_or("alice");
            session.cycle_id();
            session.insert("user", user).unwrap();
            "ok".to_owned()
        }
        "/whoami" => session
            .get::<String>("user")
            .unwrap()
            .unwrap_or_else(|| "anonymous".to_owned()),
        "/count" => {
            let n = session.get::<u64>("count").unwrap().unwrap_or(0) + 1;
            session.insert("count", &n).unwrap();
            n.to_string()
        }
        "/set" => {
            if let Some(b) = &app.barrier {
                b.wait().await;
            }
            let k = query(&req, "k").unwrap_or("k");
            let v = query(&req, "v").unwrap_or("v");
            session.insert(k, v).unwrap();
            "ok".to_owned()
        }
        "/get" => {
            let k = query(&req, "k").unwrap_or("k");
            session.get::<String>(k).unwrap().unwrap_or_default()
        }
        "/logout" => {
            session.delete();
            "bye".to_owned()
        }
        "/info" => format!(
            "new={} version={} id={}",
            session.is_new(),
            session.version(),
            session.id().is_some()
        ),
        _ => return Ok(text(StatusCode::NOT_FOUND, "not found".into())),
    };
    Ok(text(StatusCode::OK, body))
}

/// Serves `layer` around the app on a fresh loopback port until the test ends.
async fn serve<S: SessionStore>(layer: SessionLayer<S>, app: Arc<App>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let svc = layer.layer(service_fn(move |req| handler(Arc::clone(&app), req)));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let svc = TowerToHyperService::new(svc.clone());
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}

// ---------------------------------------------------------------------------------------------
// A raw HTTP/1.1 client.

#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Resp {
    fn set_cookies(&self) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("set-cookie"))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The single `Set-Cookie`, split into its value and its attributes.
    fn cookie(&self) -> Option<(String, String)> {
        let all = self.set_cookies();
        assert!(all.len() <= 1, "several Set-Cookie: {all:?}");
        let c = all.first()?;
        let (pair, attrs) = c.split_once("; ").unwrap_or((c, ""));
        let value = pair.strip_prefix("id=").expect("cookie named id");
        Some((value.to_owned(), attrs.to_owned()))
    }
}

/// Sends one request with the raw `cookie_header` bytes (if any) and reads the whole answer.
async fn request_raw(addr: SocketAddr, path: &str, cookie_header: Option<&[u8]>) -> Resp {
    let fut = async {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let mut req =
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n").into_bytes();
        if let Some(c) = cookie_header {
            req.extend_from_slice(b"Cookie: ");
            req.extend_from_slice(c);
            req.extend_from_slice(b"\r\n");
        }
        req.extend_from_slice(b"\r\n");
        s.write_all(&req).await.unwrap();
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.unwrap();
        parse_response(&buf)
    };
    tokio::time::timeout(Duration::from_secs(30), fut)
        .await
        .expect("request timed out")
}

fn parse_response(buf: &[u8]) -> Resp {
    let text = String::from_utf8_lossy(buf);
    let (head, body) = text.split_once("\r\n\r\n").expect("complete response");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    let headers = lines
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.trim().to_owned(), v.trim().to_owned())
        })
        .collect();
    Resp {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// A browser with one cookie.
#[derive(Default, Clone)]
struct Browser {
    cookie: Option<String>,
}

impl Browser {
    async fn get(&mut self, addr: SocketAddr, path: &str) -> Resp {
        let header = self.cookie.as_ref().map(|c| format!("id={c}"));
        let resp = request_raw(addr, path, header.as_deref().map(str::as_bytes)).await;
        if let Some((value, attrs)) = resp.cookie() {
            if attrs.contains("Max-Age=0") {
                self.cookie = None;
            } else {
                self.cookie = Some(value);
            }
        }
        resp
    }
}

fn ok(resp: &Resp, body: &str) {
    assert_eq!((resp.status, resp.body.as_str()), (200, body), "{resp:?}");
}

// ---------------------------------------------------------------------------------------------
// Stores that fail on purpose.

#[derive(Default)]
struct Faults {
    fail_load: AtomicBool,
    fail_save: AtomicBool,
    fail_touch: AtomicBool,
    always_conflict: AtomicBool,
    cas_calls: AtomicUsize,
    mismatches: AtomicUsize,
    loads: AtomicUsize,
}

struct Faulty<S> {
    inner: S,
    faults: Arc<Faults>,
}

fn broken(what: &str) -> StoreError {
    StoreError::Unavailable(what.to_owned().into())
}

impl<S: SessionStore> SessionStore for Faulty<S> {
    const SERVER_SIDE: bool = S::SERVER_SIDE;

    async fn create(&self, rec: &mut Record) -> Result<Token, StoreError> {
        if self.faults.fail_save.load(Ordering::SeqCst) {
            return Err(broken("create"));
        }
        self.inner.create(rec).await
    }

    async fn save(&self, rec: &mut Record) -> Result<Token, StoreError> {
        if self.faults.fail_save.load(Ordering::SeqCst) {
            return Err(broken("save"));
        }
        self.inner.save(rec).await
    }

    async fn compare_and_save(&self, rec: &mut Record) -> Result<Token, StoreError> {
        self.faults.cas_calls.fetch_add(1, Ordering::SeqCst);
        if self.faults.fail_save.load(Ordering::SeqCst) {
            return Err(broken("compare_and_save"));
        }
        if self.faults.always_conflict.load(Ordering::SeqCst) {
            self.faults.mismatches.fetch_add(1, Ordering::SeqCst);
            return Err(StoreError::VersionMismatch {
                expected: rec.version(),
                found: Some(rec.version() + 1),
            });
        }
        let out = self.inner.compare_and_save(rec).await;
        if matches!(out, Err(StoreError::VersionMismatch { .. })) {
            self.faults.mismatches.fetch_add(1, Ordering::SeqCst);
        }
        out
    }

    async fn load(&self, token: &Token) -> Result<Option<Record>, StoreError> {
        self.faults.loads.fetch_add(1, Ordering::SeqCst);
        if self.faults.fail_load.load(Ordering::SeqCst) {
            return Err(broken("load"));
        }
        self.inner.load(token).await
    }

    async fn delete(&self, token: &Token) -> Result<(), StoreError> {
        if self.faults.fail_save.load(Ordering::SeqCst) {
            return Err(broken("delete"));
        }
        self.inner.delete(token).await
    }

    async fn touch(&self, token: &Token, expires: UnixTime) -> Result<Option<Token>, StoreError> {
        if self.faults.fail_touch.load(Ordering::SeqCst) {
            return Err(broken("touch"));
        }
        self.inner.touch(token, expires).await
    }
}

fn faulty<S>(inner: S) -> (Faulty<S>, Arc<Faults>) {
    let faults = Arc::new(Faults::default());
    (
        Faulty {
            inner,
            faults: Arc::clone(&faults),
        },
        faults,
    )
}

fn memory() -> (MemoryStore<ManualClock>, ManualClock) {
    let clock = ManualClock::new(UnixTime::from_secs(T0));
    (MemoryStore::with_clock(10_000, clock.clone()), clock)
}

async fn sqlite(path: &std::path::Path) -> SqliteStore<SystemClock> {
    let s = SqliteStore::open(path, SystemClock::default())
        .await
        .unwrap();
    s.migrate().await.unwrap();
    s
}

// ---------------------------------------------------------------------------------------------
// Tests.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_sets_cookie_and_session_follows_it() {
    let (store, clock) = memory();
    let store = Arc::new(store);
    let layer = SessionLayer::from_arc(Arc::clone(&store)).clock(clock);
    let app = Arc::new(App::default());
    let addr = serve(layer, Arc::clone(&app)).await;
    let mut b = Browser::default();

    // Reading a new session stores nothing and sets no cookie.
    let r = b.get(addr, "/whoami").await;
    ok(&r, "anonymous");
    assert!(r.set_cookies().is_empty());
    assert!(store.is_empty());

    let r = b.get(addr, "/login?user=alice").await;
    ok(&r, "ok");
    let (token, attrs) = r.cookie().expect("login sets the cookie");
    assert_eq!(token.len(), 22, "a session id");
    assert_eq!(
        attrs,
        "Path=/; Max-Age=86400; Secure; HttpOnly; SameSite=Lax"
    );
    assert_eq!(store.len(), 1);

    // The session follows the cookie; a fresh session needs no touch, so no Set-Cookie.
    let r = b.get(addr, "/whoami").await;
    ok(&r, "alice");
    assert!(r.set_cookies().is_empty());
    ok(&b.get(addr, "/info").await, "new=false version=1 id=true");
    ok(&b.get(addr, "/count").await, "1");
    ok(&b.get(addr, "/count").await, "2");
    ok(&b.get(addr, "/info").await, "new=false version=3 id=true");

    // Another browser has its own session.
    let mut other = Browser::default();
    ok(&other.get(addr, "/whoami").await, "anonymous");
    ok(
        &other.get(addr, "/info").await,
        "new=true version=0 id=false",
    );
    assert_eq!(app.calls.load(Ordering::SeqCst), 9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookie_attributes_are_configurable() {
    let (store, clock) = memory();
    let layer = SessionLayer::new(store)
        .clock(clock)
        .ttl(Duration::from_secs(600))
        .cookie(
            CookieConfig::new("id")
                .path("/app")
                .domain("example.test")
                .secure(false)
                .same_site(SameSite::Strict),
        );
    let addr = serve(layer, Arc::new(App::default())).await;
    let r = Browser::default().get(addr, "/login").await;
    let (_, attrs) = r.cookie().unwrap();
    assert_eq!(
        attrs,
        "Path=/app; Domain=example.test; Max-Age=600; HttpOnly; SameSite=Strict"
    );

    let layer = SessionLayer::new(memory().0)
        .cookie(CookieConfig::default().max_age(Some(Duration::from_secs(42))));
    let addr = serve(layer, Arc::new(App::default())).await;
    let r = Browser::default().get(addr, "/login").await;
    assert!(r.cookie().unwrap().1.contains("Max-Age=42;"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_cycles_the_id() {
    let (store, clock) = memory();
    let store = Arc::new(store);
    let addr = serve(
        SessionLayer::from_arc(Arc::clone(&store)).clock(clock),
        Arc::new(App::default()),
    )
    .await;
    let mut b = Browser::default();
    ok(&b.get(addr, "/count").await, "1");
    let before = b.clone();
    ok(&b.get(addr, "/login?user=bob").await, "ok");
    assert_ne!(b.cookie, before.cookie, "login must issue a new id");
    // The data moved along, the old id is gone.
    ok(&b.get(addr, "/whoami").await, "bob");
    ok(&b.get(addr, "/count").await, "2");
    let mut old = before;
    ok(&old.get(addr, "/whoami").await, "anonymous");
    assert_eq!(store.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_share_one_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sessions.db");
    let a = serve(
        SessionLayer::new(sqlite(&path).await),
        Arc::new(App::default()),
    )
    .await;
    let b = serve(
        SessionLayer::new(sqlite(&path).await),
        Arc::new(App::default()),
    )
    .await;
    let mut browser = Browser::default();

    ok(&browser.get(a, "/login?user=carol").await, "ok");
    // Server A "fails"; the load balancer sends the browser to B.
    ok(&browser.get(b, "/whoami").await, "carol");
    ok(&browser.get(b, "/count").await, "1");
    ok(&browser.get(a, "/count").await, "2");
    ok(&browser.get(b, "/count").await, "3");

    // Logout on B: the cookie is expired, and the old cookie no longer works on A either.
    let stolen = browser.clone();
    let r = browser.get(b, "/logout").await;
    ok(&r, "bye");
    let (value, attrs) = r.cookie().unwrap();
    assert_eq!(value, "");
    assert!(attrs.starts_with("Path=/; Max-Age=0;"), "{attrs}");
    assert_eq!(browser.cookie, None);
    let mut stolen = stolen;
    let r = stolen.get(a, "/whoami").await;
    ok(&r, "anonymous");
    ok(&stolen.get(a, "/count").await, "1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_to_different_keys_both_survive() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sessions.db");
    let (store_a, faults_a) = faulty(sqlite(&path).await);
    let (store_b, faults_b) = faulty(sqlite(&path).await);
    let app = Arc::new(App {
        barrier: Some(Barrier::new(2)),
        ..App::default()
    });
    let a = serve(SessionLayer::new(store_a), Arc::clone(&app)).await;
    let b = serve(SessionLayer::new(store_b), Arc::clone(&app)).await;
    let mut browser = Browser::default();
    ok(&browser.get(a, "/login?user=dave").await, "ok");

    for round in 0..3 {
        // Both requests load the same version, then both write: one compare-and-save loses
        // and the layer re-applies its write on the fresh record.
        let (mut b1, mut b2) = (browser.clone(), browser.clone());
        let k1 = format!("/set?k=a{round}&v=from-a");
        let k2 = format!("/set?k=b{round}&v=from-b");
        let (r1, r2) = tokio::join!(b1.get(a, &k1), b2.get(b, &k2));
        ok(&r1, "ok");
        ok(&r2, "ok");
    }
    let mismatches =
        faults_a.mismatches.load(Ordering::SeqCst) + faults_b.mismatches.load(Ordering::SeqCst);
    assert!(
        mismatches >= 3,
        "the retry path was not taken: {mismatches}"
    );
    for round in 0..3 {
        ok(&browser.get(a, &format!("/get?k=a{round}")).await, "from-a");
        ok(&browser.get(b, &format!("/get?k=b{round}")).await, "from-b");
    }
    ok(&browser.get(b, "/whoami").await, "dave");
    // create + 6 writes.
    ok(
        &browser.get(a, "/info").await,
        "new=false version=7 id=true",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_conflicts_answer_409() {
    let (store, clock) = memory();
    let (store, faults) = faulty(store);
    let addr = serve(
        SessionLayer::new(store).clock(clock),
        Arc::new(App::default()),
    )
    .await;
    let mut b = Browser::default();
    ok(&b.get(addr, "/count").await, "1");
    faults.always_conflict.store(true, Ordering::SeqCst);
    let before = b.clone();
    let r = b.get(addr, "/count").await;
    assert_eq!(r.status, 409, "{r:?}");
    assert!(r.set_cookies().is_empty());
    assert_eq!(b.cookie, before.cookie);
    // One attempt and three retries.
    assert_eq!(faults.cas_calls.load(Ordering::SeqCst), 4);
    faults.always_conflict.store(false, Ordering::SeqCst);
    ok(&b.get(addr, "/count").await, "2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_deleted_during_request_is_not_resurrected() {
    let (store, clock) = memory();
    let store = Arc::new(store);
    let app = Arc::new(App {
        barrier: Some(Barrier::new(2)),
        ..App::default()
    });
    let addr = serve(
        SessionLayer::from_arc(Arc::clone(&store)).clock(clock),
        Arc::clone(&app),
    )
    .await;
    let mut browser = Browser::default();
    ok(&browser.get(addr, "/login").await, "ok");
    let mut writer = browser.clone();
    let set = tokio::spawn(async move { writer.get(addr, "/set?k=x&v=y").await });
    // Wait until the /set handler has loaded the session, then log out meanwhile.
    while app.calls.load(Ordering::SeqCst) < 2 {
        tokio::task::yield_now().await;
    }
    ok(&browser.clone().get(addr, "/logout").await, "bye");
    app.barrier.as_ref().unwrap().wait().await;
    let r = set.await.unwrap();
    assert_eq!(r.status, 409, "{r:?}");
    assert!(r.cookie().unwrap().1.contains("Max-Age=0"));
    assert!(store.is_empty(), "a logged-out session came back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_tampered_cookies_give_a_new_session() {
    let (store, clock) = memory();
    let store = Arc::new(store);
    let addr = serve(
        SessionLayer::from_arc(Arc::clone(&store)).clock(clock),
        Arc::new(App::default()),
    )
    .await;
    let mut b = Browser::default();
    ok(&b.get(addr, "/login?user=erin").await, "ok");
    let good = b.cookie.clone().unwrap();
    let mut tampered = good.clone().into_bytes();
    tampered[3] = if tampered[3] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();

    let garbage: Vec<Vec<u8>> = vec![
        b"id=garbage".to_vec(),
        format!("id={tampered}").into_bytes(),
        format!("id={good}x").into_bytes(),
        b"id=".to_vec(),
        b"id".to_vec(),
        b";;;==;".to_vec(),
        b"id=\xff\xfe\xfd".to_vec(),
        b"id=\"unterminated".to_vec(),
        vec![b'x'; 6000],
        format!("id={}", "A".repeat(5000)).into_bytes(),
    ];
    for g in &garbage {
        let r = request_raw(addr, "/whoami", Some(g)).await;
        ok(&r, "anonymous");
        assert!(r.set_cookies().is_empty());
    }
    // Writing with a bad cookie starts a new session with a new id.
    let r = request_raw(addr, "/count", Some(format!("id={tampered}").as_bytes())).await;
    ok(&r, "1");
    assert_ne!(r.cookie().unwrap().0, good);
    // The good cookie is found after an empty one with the same name.
    let r = request_raw(
        addr,
        "/whoami",
        Some(format!("a=1; id=; theme=dark;id={good}").as_bytes()),
    )
    .await;
    ok(&r, "erin");
    assert_eq!(store.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_failure_answers_503_without_calling_the_handler() {
    let (store, clock) = memory();
    let (store, faults) = faulty(store);
    let app = Arc::new(App::default());
    let addr = serve(SessionLayer::new(store).clock(clock), Arc::clone(&app)).await;
    let mut b = Browser::default();
    ok(&b.get(addr, "/login").await, "ok");
    assert_eq!(app.calls.load(Ordering::SeqCst), 1);

    faults.fail_load.store(true, Ordering::SeqCst);
    let r = b.get(addr, "/whoami").await;
    assert_eq!(r.status, 503, "{r:?}");
    assert_eq!(r.body, "session store unavailable\n");
    assert!(
        r.set_cookies().is_empty(),
        "the cookie must survive a hiccup"
    );
    assert_eq!(app.calls.load(Ordering::SeqCst), 1, "handler was called");
    // Without a cookie there is nothing to load.
    ok(&Browser::default().get(addr, "/whoami").await, "anonymous");

    faults.fail_load.store(false, Ordering::SeqCst);
    ok(&b.get(addr, "/whoami").await, "alice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn save_failure_answers_500() {
    let (store, clock) = memory();
    let (store, faults) = faulty(store);
    let app = Arc::new(App::default());
    let addr = serve(SessionLayer::new(store).clock(clock), Arc::clone(&app)).await;
    let mut b = Browser::default();
    ok(&b.get(addr, "/count").await, "1");

    faults.fail_save.store(true, Ordering::SeqCst);
    for path in ["/count", "/logout", "/login"] {
        let r = b.get(addr, path).await;
        assert_eq!(r.status, 500, "{path}: {r:?}");
        assert_eq!(r.body, "session could not be saved\n");
        assert!(r.set_cookies().is_empty());
    }
    assert!(Browser::default().get(addr, "/count").await.status == 500);
    // Reads still work, and nothing was written.
    ok(&b.get(addr, "/whoami").await, "anonymous");
    faults.fail_save.store(false, Ordering::SeqCst);
    ok(&b.get(addr, "/count").await, "2");
    assert_eq!(app.calls.load(Ordering::SeqCst), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookie_store_end_to_end() {
    let keys = KeyRing::new(1, [7; 32]);
    let layer = SessionLayer::new(CookieStore::new("id", keys));
    const { assert!(!<CookieStore as SessionStore>::SERVER_SIDE) };
    let addr = serve(layer, Arc::new(App::default())).await;
    let mut b = Browser::default();
    ok(&b.get(addr, "/whoami").await, "anonymous");
    let r = b.get(addr, "/login?user=frank").await;
    ok(&r, "ok");
    let (t1, attrs) = r.cookie().unwrap();
    assert!(t1.len() > 60, "the cookie is the sealed record");
    assert_eq!(
        attrs,
        "Path=/; Max-Age=86400; Secure; HttpOnly; SameSite=Lax"
    );
    ok(&b.get(addr, "/whoami").await, "frank");
    ok(&b.get(addr, "/count").await, "1");
    let t2 = b.cookie.clone().unwrap();
    assert_ne!(t1, t2, "every write reseals");
    ok(&b.get(addr, "/count").await, "2");
    ok(&b.get(addr, "/info").await, "new=false version=3 id=true");

    // Tampering is a new session.
    let mut bad = t2.clone().into_bytes();
    bad[40] = if bad[40] == b'A' { b'B' } else { b'A' };
    let r = request_raw(addr, "/whoami", Some(&[b"id=".as_slice(), &bad].concat())).await;
    ok(&r, "anonymous");

    let old = b.clone();
    let r = b.get(addr, "/logout").await;
    assert!(r.cookie().unwrap().1.contains("Max-Age=0"));
    ok(&b.get(addr, "/whoami").await, "anonymous");
    // The documented limit of a client-held session: a copy of the old token still opens.
    ok(&old.clone().get(addr, "/whoami").await, "frank");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_expiry_touches_and_expired_sessions_never_come_back() {
    let (store, clock) = memory();
    let (store, faults) = faulty(store);
    let layer = SessionLayer::new(store)
        .clock(clock.clone())
        .ttl(Duration::from_secs(100));
    let addr = serve(layer, Arc::new(App::default())).await;
    let mut b = Browser::default();
    let r = b.get(addr, "/login?user=gina").await;
    assert!(r.cookie().unwrap().1.contains("Max-Age=100;"));
    let token = b.cookie.clone();

    // 60 s left of 100: no touch.
    clock.advance(Duration::from_secs(40));
    let r = b.get(addr, "/whoami").await;
    ok(&r, "gina");
    assert!(r.set_cookies().is_empty());

    // 40 s left: touched, the cookie's Max-Age is refreshed, same id.
    clock.advance(Duration::from_secs(20));
    let r = b.get(addr, "/whoami").await;
    ok(&r, "gina");
    let (value, attrs) = r.cookie().expect("touch refreshes the cookie");
    assert!(attrs.contains("Max-Age=100;"), "{attrs}");
    assert_eq!(Some(value), token);

    // Past the original expiry (t = 110), alive thanks to the touch (expires at t = 160).
    clock.advance(Duration::from_secs(50));
    ok(&b.get(addr, "/whoami").await, "gina");
    // A write moves the expiry too, and refreshes the cookie.
    let r = b.get(addr, "/count").await;
    ok(&r, "1");
    assert!(r.cookie().unwrap().1.contains("Max-Age=100;"));

    // A failed touch keeps the response and the cookie.
    clock.advance(Duration::from_secs(60));
    faults.fail_touch.store(true, Ordering::SeqCst);
    let r = b.get(addr, "/whoami").await;
    ok(&r, "gina");
    assert!(r.set_cookies().is_empty());
    faults.fail_touch.store(false, Ordering::SeqCst);

    // Expired: a new session, and the old cookie never works again.
    clock.advance(Duration::from_secs(41));
    let stale = b.clone();
    let r = b.get(addr, "/whoami").await;
    ok(&r, "anonymous");
    assert!(r.set_cookies().is_empty());
    let r = b.get(addr, "/count").await;
    ok(&r, "1");
    assert_ne!(b.cookie, stale.cookie);
    ok(&stale.clone().get(addr, "/whoami").await, "anonymous");
}

/// The layer is a plain tower service: failures are visible to an outer layer through the
/// response extensions, and the handle is usable outside HTTP.
#[tokio::test]
async fn failures_are_attached_to_responses() {
    let (store, clock) = memory();
    let (store, faults) = faulty(store);
    faults.fail_load.store(true, Ordering::SeqCst);
    let mut svc =
        SessionLayer::new(store)
            .clock(clock)
            .layer(service_fn(|_req: Request<()>| async {
                Ok::<_, Infallible>(Response::new(Full::from("inner")))
            }));
    let req = Request::builder()
        .header("cookie", "id=AAAAAAAAAAAAAAAAAAAAAA")
        .body(())
        .unwrap();
    let resp = svc.call(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(matches!(
        resp.extensions().get::<SessionFailure>(),
        Some(SessionFailure::Load(_))
    ));
    assert_eq!(faults.loads.load(Ordering::SeqCst), 1);
}
