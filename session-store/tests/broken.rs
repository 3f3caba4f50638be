//! The conformance suite can fail: run its checks on deliberately broken stores and assert
//! that the checks that should catch each defect report failure (and that the rest still pass,
//! so the failures are caused by the defect, not by the harness).
#![cfg(feature = "memory")]
#![allow(clippy::unwrap_used, clippy::panic)]

mod conformance;

use std::future::Future;
use std::sync::Arc;

use session_store::{ManualClock, MemoryStore, Record, SessionStore, StoreError, Token, UnixTime};

/// Accepts `save`/`compare_and_save` but drops the write.
struct DropWrites(MemoryStore<ManualClock>);

/// Implements `compare_and_save` as a blind `save`: the lost-update race.
struct IgnoreVersion(MemoryStore<ManualClock>);

/// Ignores `delete`.
struct NoDelete(MemoryStore<ManualClock>);

macro_rules! delegate_reads {
    () => {
        const SERVER_SIDE: bool = true;
        fn create(
            &self,
            rec: &mut Record,
        ) -> impl Future<Output = Result<Token, StoreError>> + Send {
            self.0.create(rec)
        }
        fn load(
            &self,
            t: &Token,
        ) -> impl Future<Output = Result<Option<Record>, StoreError>> + Send {
            self.0.load(t)
        }
        fn touch(
            &self,
            t: &Token,
            e: UnixTime,
        ) -> impl Future<Output = Result<Option<Token>, StoreError>> + Send {
            self.0.touch(t, e)
        }
    };
}

impl SessionStore for DropWrites {
    delegate_reads!();
    async fn save(&self, rec: &mut Record) -> Result<Token, StoreError> {
        Ok(Token::from(rec.id()))
    }
    async fn compare_and_save(&self, rec: &mut Record) -> Result<Token, StoreError> {
        Ok(Token::from(rec.id()))
    }
    fn delete(&self, t: &Token) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.0.delete(t)
    }
}

impl SessionStore for IgnoreVersion {
    delegate_reads!();
    fn save(&self, rec: &mut Record) -> impl Future<Output = Result<Token, StoreError>> + Send {
        self.0.save(rec)
    }
    fn compare_and_save(
        &self,
        rec: &mut Record,
    ) -> impl Future<Output = Result<Token, StoreError>> + Send {
        self.0.save(rec)
    }
    fn delete(&self, t: &Token) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.0.delete(t)
    }
}

impl SessionStore for NoDelete {
    delegate_reads!();
    fn save(&self, rec: &mut Record) -> impl Future<Output = Result<Token, StoreError>> + Send {
        self.0.save(rec)
    }
    fn compare_and_save(
        &self,
        rec: &mut Record,
    ) -> impl Future<Output = Result<Token, StoreError>> + Send {
        self.0.compare_and_save(rec)
    }
    async fn delete(&self, _t: &Token) -> Result<(), StoreError> {
        Ok(())
    }
}

fn mem(c: &ManualClock) -> MemoryStore<ManualClock> {
    MemoryStore::with_clock(10_000, c.clone())
}

#[tokio::test]
async fn suite_catches_dropped_writes() {
    let c = ManualClock::new(conformance::T0);
    let s = DropWrites(mem(&c));
    assert!(conformance::save_persists(&s, &c).await.is_err());
    assert!(
        conformance::compare_and_save_rejects_stale(&s, &c)
            .await
            .is_err()
    );
    // Checks that don't depend on writes still pass: the failures are the defect's.
    conformance::create_then_load(&s, &c).await.unwrap();
    conformance::bogus_tokens_are_none(&s, &c).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn suite_catches_dropped_writes_under_concurrency() {
    let c = ManualClock::new(conformance::T0);
    let s = Arc::new(DropWrites(mem(&c)));
    let r = conformance::concurrent_increments_lose_nothing(s, &c).await;
    assert!(
        r.as_ref().is_err_and(|e| e.contains("lost updates")),
        "{r:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn suite_catches_lost_update_race() {
    let c = ManualClock::new(conformance::T0);
    let s = IgnoreVersion(mem(&c));
    assert!(
        conformance::compare_and_save_rejects_stale(&s, &c)
            .await
            .is_err()
    );
    conformance::save_persists(&s, &c).await.unwrap();
    // The check yields between load and save (as a handler doing I/O would), so blind saves
    // from the other tasks land in between and increments are lost.
    let s = Arc::new(IgnoreVersion(mem(&c)));
    let r = conformance::concurrent_increments_lose_nothing(s, &c).await;
    assert!(
        r.as_ref().is_err_and(|e| e.contains("lost updates")),
        "{r:?}"
    );
}

#[tokio::test]
async fn suite_catches_ignored_delete() {
    let c = ManualClock::new(conformance::T0);
    let s = NoDelete(mem(&c));
    assert!(conformance::delete_revokes(&s, &c).await.is_err());
    conformance::save_persists(&s, &c).await.unwrap();
}
