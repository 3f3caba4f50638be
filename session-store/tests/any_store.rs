//! `AnyStore`: the backend picked from a configuration string at run time. The conformance
//! suite runs on two backends through it (memory and SQLite), and one axum app serves either.
#![cfg(all(
    feature = "axum",
    feature = "memory",
    feature = "sqlite",
    feature = "cookie"
))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod conformance;
mod web;

use std::path::Path;

use axum::Router;
use axum::routing::get;
use session_store::http::{CookieConfig, Session, SessionLayer};
use session_store::{
    AnyStore, Clock, CookieStore, KeyRing, ManualClock, MemoryStore, SessionStore, SqliteStore,
    SystemClock,
};

/// What an application would do with its configuration: `memory`, `sqlite`, `cookie`.
async fn open<C: Clock + Clone>(kind: &str, dir: &Path, clock: C) -> AnyStore {
    match kind {
        "memory" => AnyStore::new(MemoryStore::with_clock(10_000, clock)),
        "sqlite" => {
            let s = SqliteStore::open(dir.join("sessions.db"), clock)
                .await
                .unwrap();
            s.migrate().await.unwrap();
            AnyStore::new(s)
        }
        "cookie" => AnyStore::new(CookieStore::with_clock(
            "sid",
            KeyRing::generate(1).unwrap(),
            clock,
        )),
        other => panic!("unknown backend {other}"),
    }
}

mod memory {
    use super::*;
    conformance::store_conformance!(async |clock| {
        open("memory", Path::new("/nonexistent"), clock).await
    });
}

mod sqlite {
    use super::*;
    conformance::store_conformance!(async |clock| {
        let dir = tempfile::tempdir().unwrap().keep();
        open::<ManualClock>("sqlite", &dir, clock).await
    });
}

#[tokio::test]
async fn server_side_is_the_wrapped_stores() {
    let dir = tempfile::tempdir().unwrap();
    let c = ManualClock::new(conformance::T0);
    assert!(open("memory", dir.path(), c.clone()).await.is_server_side());
    assert!(open("sqlite", dir.path(), c.clone()).await.is_server_side());
    assert!(!open("cookie", dir.path(), c).await.is_server_side());
}

async fn count(session: Session) -> String {
    let n = session.get::<u64>("n").unwrap().unwrap_or(0) + 1;
    session.insert("n", &n).unwrap();
    n.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_app_on_backends_from_configuration() {
    for kind in ["memory", "sqlite", "cookie"] {
        let dir = tempfile::tempdir().unwrap();
        let store = open(kind, dir.path(), SystemClock::default()).await;
        let app = Router::new()
            .route("/", get(count))
            .layer(SessionLayer::new(store).cookie(CookieConfig::new("sid").secure(false)));
        let mut b = web::Browser::new(web::serve(app).await, "sid");
        for want in ["1", "2", "3"] {
            let r = b.get("/").await;
            assert_eq!((r.status, r.body.as_str()), (200, want), "{kind}: {r:?}");
        }
    }
}
