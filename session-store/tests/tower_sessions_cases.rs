//! The cases tower-sessions' route tests check (its `tests/common` macro: no session set,
//! bogus and malformed cookies, insert, max-age, get, get of a missing value, remove the last
//! value, cycle id, flush, flush with a domain, expiry), each as a test of this crate's
//! `SessionLayer` in an axum app over real HTTP, named after the case. Plus what a
//! tower-sessions user relies on beyond those: expiry of an idle session and concurrent
//! requests on one session.
//!
//! Deliberate differences (each test that meets one says so and checks our behaviour):
//!
//! * **Default `SameSite`** is `Lax` here, `Strict` in tower-sessions: `Lax` keeps a user
//!   logged in when they follow a link from another site; `CookieConfig::same_site` sets
//!   `Strict`. The app below sets `Strict`, as tower-sessions' tests expect.
//! * **`Max-Age` is always sent** and follows the session's remaining lifetime (every session
//!   has a server-side TTL, `SessionLayer::ttl`); tower-sessions omits it by default
//!   (`Expiry::OnSessionEnd`, a browser-session cookie). `CookieConfig::max_age` fixes it.
//! * **No per-session expiry** (`set_expiry` / `Expiry::AtDateTime`, changing the expiry
//!   type): the TTL is the layer's; a session's expiry rolls with `touch`.
//! * **Flush is `Session::delete`**; `Session::clear` empties the data and keeps the id.
#![cfg(all(feature = "axum", feature = "memory"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod web;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use session_store::http::{CookieConfig, SameSite, Session, SessionLayer};
use session_store::{ManualClock, MemoryStore, UnixTime};
use tokio::sync::Barrier;
use web::{Browser, request};

const HOUR: Duration = Duration::from_secs(3600);

fn routes() -> Router {
    Router::new()
        .route("/", get(|_: Session| async { "Hello, world!" }))
        .route(
            "/insert",
            get(|s: Session| async move { s.insert("foo", &42).unwrap() }),
        )
        .route(
            "/get",
            get(|s: Session| async move { format!("{}", s.get::<usize>("foo").unwrap().unwrap()) }),
        )
        .route(
            "/get_value",
            get(|s: Session| async move { format!("{:?}", s.get::<usize>("foo").unwrap()) }),
        )
        .route(
            "/remove_value",
            get(|s: Session| async move {
                s.remove("foo");
            }),
        )
        .route("/cycle_id", get(|s: Session| async move { s.cycle_id() }))
        .route("/flush", get(|s: Session| async move { s.delete() }))
}

/// The app of tower-sessions' tests: cookie `id`, `Secure`, `SameSite=Strict`, TTL one hour,
/// an optional domain; memory store on a manual clock.
async fn app(domain: Option<&str>) -> (SocketAddr, ManualClock) {
    let clock = ManualClock::new(UnixTime::from_secs(1_700_000_000));
    let mut cookie = CookieConfig::new("id").same_site(SameSite::Strict);
    if let Some(d) = domain {
        cookie = cookie.try_domain(d).unwrap();
    }
    let layer = SessionLayer::new(MemoryStore::with_clock(1000, clock.clone()))
        .cookie(cookie)
        .ttl(HOUR)
        .clock(clock.clone());
    (web::serve(routes().layer(layer)).await, clock)
}

fn attr<'a>(attrs: &'a [String], name: &str) -> Option<&'a str> {
    attrs.iter().find_map(|a| {
        let (n, v) = a.split_once('=').unwrap_or((a.as_str(), ""));
        n.eq_ignore_ascii_case(name).then_some(v)
    })
}

#[tokio::test]
async fn no_session_set() {
    let (addr, _) = app(None).await;
    let r = request(addr, "GET", "/", None).await;
    assert_eq!(r.status, 200);
    assert!(r.set_cookies().is_empty(), "{r:?}");
}

#[tokio::test]
async fn bogus_session_cookie() {
    let (addr, _) = app(None).await;
    let r = request(addr, "GET", "/insert", Some("id=AAAAAAAAAAAAAAAAAAAAAA")).await;
    assert_eq!(r.status, 200);
    let (value, _) = r.cookie("id").unwrap();
    assert_ne!(value, "AAAAAAAAAAAAAAAAAAAAAA");
}

#[tokio::test]
async fn malformed_session_cookie() {
    let (addr, _) = app(None).await;
    let r = request(addr, "GET", "/insert", Some("id=malformed")).await;
    assert_eq!(r.status, 200);
    let (value, _) = r.cookie("id").unwrap();
    assert_ne!(value, "malformed");
}

#[tokio::test]
async fn insert_session() {
    let (addr, _) = app(None).await;
    let r = request(addr, "GET", "/insert", None).await;
    let (_, attrs) = r.cookie("id").unwrap();
    assert!(attr(&attrs, "HttpOnly").is_some(), "{attrs:?}");
    assert_eq!(attr(&attrs, "SameSite"), Some("Strict"));
    let max_age: u64 = attr(&attrs, "Max-Age").unwrap().parse().unwrap();
    assert!(max_age <= 3600, "{max_age}");
    assert!(attr(&attrs, "Secure").is_some(), "{attrs:?}");
    assert_eq!(attr(&attrs, "Path"), Some("/"));
}

/// Deliberate difference: tower-sessions sends no `Max-Age` by default (browser-session
/// cookie); here it always follows the session's remaining lifetime.
#[tokio::test]
async fn session_max_age() {
    let (addr, _) = app(None).await;
    let r = request(addr, "GET", "/insert", None).await;
    let (_, attrs) = r.cookie("id").unwrap();
    assert_eq!(attr(&attrs, "Max-Age"), Some("3600"));
    assert!(attr(&attrs, "Secure").is_some() && attr(&attrs, "HttpOnly").is_some());
    assert_eq!(attr(&attrs, "Path"), Some("/"));
}

#[tokio::test]
async fn default_same_site_is_lax() {
    // Deliberate difference (module docs): tower-sessions defaults to Strict.
    let clock = ManualClock::new(UnixTime::from_secs(1_700_000_000));
    let layer = SessionLayer::new(MemoryStore::with_clock(10, clock.clone())).clock(clock);
    let addr = web::serve(routes().layer(layer)).await;
    let (_, attrs) = request(addr, "GET", "/insert", None)
        .await
        .cookie("id")
        .unwrap();
    assert_eq!(attr(&attrs, "SameSite"), Some("Lax"));
}

#[tokio::test]
async fn get_session() {
    let (addr, _) = app(None).await;
    let mut b = Browser::new(addr, "id");
    b.get("/insert").await;
    let r = b.get("/get").await;
    assert_eq!((r.status, r.body.as_str()), (200, "42"));
}

#[tokio::test]
async fn get_no_value() {
    let (addr, _) = app(None).await;
    let r = request(addr, "GET", "/get_value", None).await;
    assert_eq!(r.body, "None");
}

#[tokio::test]
async fn remove_last_value() {
    let (addr, _) = app(None).await;
    let mut b = Browser::new(addr, "id");
    b.get("/insert").await;
    b.get("/remove_value").await;
    assert_eq!(b.get("/get_value").await.body, "None");
}

#[tokio::test]
async fn cycle_session_id() {
    let (addr, _) = app(None).await;
    let mut b = Browser::new(addr, "id");
    b.get("/insert").await;
    let first = b.cookie.clone().unwrap();
    let stale = first.clone();
    b.get("/cycle_id").await;
    let second = b.cookie.clone().unwrap();
    assert_ne!(first, second);
    assert_eq!(b.get("/get").await.body, "42");
    // The old id no longer opens the session.
    let r = request(addr, "GET", "/get_value", Some(&format!("id={stale}"))).await;
    assert_eq!(r.body, "None");
}

#[tokio::test]
async fn flush_session() {
    let (addr, _) = app(None).await;
    let mut b = Browser::new(addr, "id");
    b.get("/insert").await;
    let r = b.get("/flush").await;
    let (value, attrs) = r.cookie("id").unwrap();
    assert_eq!(value, "");
    assert_eq!(attr(&attrs, "Max-Age"), Some("0"));
    assert_eq!(attr(&attrs, "Path"), Some("/"));
}

#[tokio::test]
async fn flush_with_domain() {
    let (addr, _) = app(Some("localhost")).await;
    let mut b = Browser::new(addr, "id");
    b.get("/insert").await;
    let r = b.get("/flush").await;
    let (value, attrs) = r.cookie("id").unwrap();
    assert_eq!(value, "");
    assert_eq!(attr(&attrs, "Max-Age"), Some("0"));
    assert_eq!(attr(&attrs, "Domain"), Some("localhost"));
    assert_eq!(attr(&attrs, "Path"), Some("/"));
}

/// tower-sessions' `set_expiry` with `Expiry::OnInactivity(1 h)`: the first response's
/// `Max-Age` is one hour. Its second half (a per-session `AtDateTime` expiry) and
/// `change_expiry_type` have no counterpart here: deliberate difference (module docs).
#[tokio::test]
async fn set_expiry() {
    let (addr, clock) = app(Some("localhost")).await;
    let mut b = Browser::new(addr, "id");
    let (_, attrs) = b.get("/insert").await.cookie("id").unwrap();
    assert_eq!(attr(&attrs, "Max-Age"), Some("3600"));
    // Inactivity: past half the TTL a read rolls the expiry forward to a full hour again.
    clock.advance(Duration::from_secs(40 * 60));
    let r = b.get("/get").await;
    assert_eq!(r.body, "42");
    let (_, attrs) = r.cookie("id").unwrap();
    assert_eq!(attr(&attrs, "Max-Age"), Some("3600"));
}

#[tokio::test]
async fn expired_session_is_a_new_session() {
    let (addr, clock) = app(None).await;
    let mut b = Browser::new(addr, "id");
    b.get("/insert").await;
    clock.advance(HOUR);
    let r = b.get("/get_value").await;
    assert_eq!(r.body, "None");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_on_one_session_keep_both_writes() {
    let barrier = Arc::new(Barrier::new(2));
    let routes = Router::new()
        .route(
            "/insert",
            get(|s: Session| async move { s.insert("foo", &42).unwrap() }),
        )
        .route(
            "/set/{k}",
            get({
                let barrier = Arc::clone(&barrier);
                move |s: Session, axum::extract::Path(k): axum::extract::Path<String>| {
                    let barrier = Arc::clone(&barrier);
                    async move {
                        // Both requests have loaded the same version before either writes.
                        barrier.wait().await;
                        s.insert(&k, &true).unwrap();
                    }
                }
            }),
        )
        .route(
            "/keys",
            get(|s: Session| async move {
                format!(
                    "{:?} {:?}",
                    s.get::<bool>("a").unwrap(),
                    s.get::<bool>("b").unwrap()
                )
            }),
        );
    let layer = SessionLayer::new(MemoryStore::new(100)).cookie(CookieConfig::new("id"));
    let addr = web::serve(routes.layer(layer)).await;
    let mut b = Browser::new(addr, "id");
    b.get("/insert").await;
    let (mut b1, mut b2) = (b.clone(), b.clone());
    let (r1, r2) = tokio::join!(b1.get("/set/a"), b2.get("/set/b"));
    assert_eq!((r1.status, r2.status), (200, 200), "{r1:?} {r2:?}");
    assert_eq!(b.get("/keys").await.body, "Some(true) Some(true)");
}
