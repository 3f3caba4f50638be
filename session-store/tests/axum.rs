//! The `Session` extractor in an axum 0.8 app served on a loopback port, driven by raw HTTP
//! requests: login (id cycled), a page that needs the login, logout, a missing layer, and
//! the same app on SQLite.
#![cfg(all(feature = "axum", feature = "memory", feature = "sqlite"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod web;

use axum::Router;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::routing::{get, post};
use session_store::http::{CookieConfig, Session, SessionLayer};
use session_store::{MemoryStore, SessionStore, SqliteStore, SystemClock};
use web::{Browser, serve};

#[derive(serde::Deserialize)]
struct Login {
    user: String,
}

async fn login(session: Session, Query(q): Query<Login>) -> Result<String, StatusCode> {
    session.cycle_id();
    session
        .insert("user", &q.user)
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
    Ok(format!("welcome {}", q.user))
}

async fn me(session: Session) -> Result<String, StatusCode> {
    match session.get::<String>("user") {
        Ok(Some(user)) => Ok(user),
        Ok(None) => Err(StatusCode::UNAUTHORIZED),
        Err(_) => Err(StatusCode::INTERNAL_SERVER_ERROR),
    }
}

async fn logout(session: Session) -> &'static str {
    session.delete();
    "bye"
}

fn routes() -> Router {
    Router::new()
        .route("/login", post(login))
        .route("/me", get(me))
        .route("/logout", post(logout))
}

fn app<S: SessionStore + 'static>(store: S) -> Router {
    routes().layer(SessionLayer::new(store).cookie(CookieConfig::new("sid").secure(false)))
}

async fn login_me_logout(app: Router) {
    let addr = serve(app).await;
    let mut b = Browser::new(addr, "sid");
    assert_eq!(b.get("/me").await.status, 401);
    assert!(b.cookie.is_none(), "a read creates no session");

    let r = b.post("/login?user=alice").await;
    assert_eq!((r.status, r.body.as_str()), (200, "welcome alice"));
    let (_, attrs) = r.cookie("sid").unwrap();
    assert!(attrs.iter().any(|a| a == "HttpOnly"), "{attrs:?}");
    let first = b.cookie.clone().unwrap();

    let r = b.get("/me").await;
    assert_eq!((r.status, r.body.as_str()), (200, "alice"));

    // Logging in again cycles the id: the old cookie is dead.
    let mut stale = b.clone();
    b.post("/login?user=bob").await;
    assert_ne!(b.cookie.as_deref(), Some(first.as_str()));
    assert_eq!(b.get("/me").await.body, "bob");
    assert_eq!(stale.get("/me").await.status, 401);

    let r = b.post("/logout").await;
    assert_eq!((r.status, r.body.as_str()), (200, "bye"));
    let (value, attrs) = r.cookie("sid").unwrap();
    assert!(value.is_empty());
    assert!(attrs.iter().any(|a| a == "Max-Age=0"), "{attrs:?}");
    assert!(b.cookie.is_none());
    assert_eq!(b.get("/me").await.status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_login_and_logout_on_memory() {
    login_me_logout(app(MemoryStore::new(1000))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_login_and_logout_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("s.db"), SystemClock::default())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    login_me_logout(app(store)).await;
}

#[tokio::test]
async fn extractor_without_layer_says_what_to_add() {
    let addr = serve(routes()).await;
    let r = web::request(addr, "GET", "/me", None).await;
    assert_eq!(r.status, 500);
    assert!(r.body.contains("SessionLayer::new"), "{}", r.body);
}
