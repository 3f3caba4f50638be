//! What the crate logs through `tracing`: a store failure names its cause (a SQLite database
//! without `migrate()` says so), and compare-and-set conflicts and their retries are visible.
//! The log is captured by a small in-test subscriber.
#![cfg(all(feature = "axum", feature = "memory", feature = "sqlite"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod web;

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::routing::get;
use session_store::http::{CookieConfig, Session, SessionLayer};
use session_store::{
    MemoryStore, Record, SessionStore, SqliteStore, StoreError, SystemClock, Token,
};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record as SpanRecord};
use tracing::{Event, Metadata, Subscriber};

/// Collects every event as `LEVEL message key=value …`, one line each.
#[derive(Clone, Default)]
struct Capture {
    lines: Arc<Mutex<Vec<String>>>,
    next_id: Arc<AtomicU64>,
}

struct Line(String);

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, " {value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(self.next_id.fetch_add(1, Ordering::Relaxed) + 1)
    }
    fn record(&self, _: &Id, _: &SpanRecord<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut line = Line(event.metadata().level().to_string());
        event.record(&mut line);
        self.lines.lock().unwrap().push(line.0);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

impl Capture {
    fn text(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }
}

async fn hello(session: Session) -> String {
    session.insert("k", "v").unwrap();
    "hi".into()
}

#[tokio::test(flavor = "current_thread")]
async fn sqlite_without_migrate_logs_the_missing_table() {
    let log = Capture::default();
    let _guard = tracing::subscriber::set_default(log.clone());
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("s.db"), SystemClock::default())
        .await
        .unwrap();
    // No migrate(). Saving the first session fails: 500, and the log says why.
    let app = Router::new()
        .route("/", get(hello))
        .layer(SessionLayer::new(store).cookie(CookieConfig::new("sid").secure(false)));
    let addr = web::serve(app).await;
    let r = web::request(addr, "GET", "/", None).await;
    assert_eq!(r.status, 500, "{r:?}");
    let text = log.text();
    assert!(
        text.contains("table sessions missing: call migrate()"),
        "log:\n{text}"
    );
    assert!(text.contains("no such table: sessions"), "log:\n{text}");
    assert!(text.contains("answering 500"), "log:\n{text}");
    // With a cookie, the load fails first: 503, same cause in the log.
    let r = web::request(addr, "GET", "/", Some("sid=AAAAAAAAAAAAAAAAAAAAAA")).await;
    assert_eq!(r.status, 503, "{r:?}");
    assert!(
        log.text().contains("failed on load; answering 503"),
        "log:\n{}",
        log.text()
    );
}

/// A store that reports a conflict on every `compare_and_save`.
struct AlwaysConflicts(MemoryStore);

impl SessionStore for AlwaysConflicts {
    const SERVER_SIDE: bool = true;
    async fn create(&self, rec: &mut Record) -> Result<Token, StoreError> {
        self.0.create(rec).await
    }
    async fn save(&self, rec: &mut Record) -> Result<Token, StoreError> {
        self.0.save(rec).await
    }
    async fn compare_and_save(&self, rec: &mut Record) -> Result<Token, StoreError> {
        Err(StoreError::VersionMismatch {
            expected: rec.version(),
            found: Some(rec.version() + 1),
        })
    }
    async fn load(&self, token: &Token) -> Result<Option<Record>, StoreError> {
        self.0.load(token).await
    }
    async fn delete(&self, token: &Token) -> Result<(), StoreError> {
        self.0.delete(token).await
    }
    async fn touch(
        &self,
        token: &Token,
        expires: session_store::UnixTime,
    ) -> Result<Option<Token>, StoreError> {
        self.0.touch(token, expires).await
    }
}

async fn count(session: Session) -> String {
    let n = session.get::<u64>("n").unwrap().unwrap_or(0) + 1;
    session.insert("n", &n).unwrap();
    n.to_string()
}

#[tokio::test(flavor = "current_thread")]
async fn compare_and_set_conflicts_and_retries_are_logged() {
    let log = Capture::default();
    let _guard = tracing::subscriber::set_default(log.clone());
    let app = Router::new().route("/", get(count)).layer(
        SessionLayer::new(AlwaysConflicts(MemoryStore::new(100)))
            .cookie(CookieConfig::new("sid").secure(false)),
    );
    let mut b = web::Browser::new(web::serve(app).await, "sid");
    assert_eq!(b.get("/").await.body, "1");
    assert_eq!(b.get("/").await.status, 409);
    let text = log.text();
    assert_eq!(
        text.matches("compare-and-set conflict); reloading").count(),
        3,
        "log:\n{text}"
    );
    assert!(text.contains("retry=3"), "log:\n{text}");
    assert!(text.contains("answering 409"), "log:\n{text}");
}
