//! The conformance suite and memory-specific behaviour of `MemoryStore`.
#![cfg(feature = "memory")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod conformance;

use std::time::Duration;

use session_store::{ManualClock, MemoryStore, Record, SessionId, SessionStore, StoreError, Token};

conformance::store_conformance!(|clock| MemoryStore::with_clock(10_000, clock));

#[tokio::test]
async fn full_store_is_a_typed_error_and_writes_nothing() {
    let clock = ManualClock::new(conformance::T0);
    let s = MemoryStore::with_clock(2, clock.clone());
    for n in 0..2 {
        s.create(&mut conformance::record(n)).await.unwrap();
    }
    let mut third = conformance::record(2);
    match s.create(&mut third).await {
        Err(StoreError::Full { max_sessions: 2 }) => {}
        other => panic!("expected Full, got {other:?}"),
    }
    assert_eq!(third.version(), 0, "failed create left the record changed");
    assert_eq!(s.len(), 2);
    assert!(s.load(&Token::from(third.id())).await.unwrap().is_none());
    // save of an unknown session is also bounded.
    match s.save(&mut third).await {
        Err(StoreError::Full { .. }) => {}
        other => panic!("expected Full, got {other:?}"),
    }
    // Once the others expire, create makes room by sweeping its shard or the whole store.
    clock.advance(conformance::TTL);
    assert_eq!(s.sweep(conformance::T0.saturating_add(conformance::TTL)), 2);
    assert!(s.is_empty());
    s.create(&mut third).await.unwrap();
    assert_eq!(s.len(), 1);
}

#[tokio::test]
async fn sweep_frees_only_expired() {
    let clock = ManualClock::new(conformance::T0);
    let s = MemoryStore::with_clock(100, clock.clone());
    for n in 0..10 {
        let mut r = conformance::record(n);
        if n % 2 == 0 {
            r.set_ttl(conformance::T0, Duration::from_secs(600));
        }
        s.create(&mut r).await.unwrap();
    }
    assert_eq!(s.sweep(conformance::T0), 0);
    assert_eq!(s.sweep(conformance::T0.saturating_add(conformance::TTL)), 5);
    assert_eq!(s.len(), 5);
}

#[tokio::test]
async fn compare_and_save_on_missing_session_reports_none_found() {
    let s = MemoryStore::with_clock(10, ManualClock::new(conformance::T0));
    let mut r = Record::new(
        SessionId::from_bytes([1; 16]),
        conformance::T0,
        conformance::TTL,
    );
    match s.compare_and_save(&mut r).await {
        Err(StoreError::VersionMismatch {
            expected: 0,
            found: None,
        }) => {}
        other => panic!("{other:?}"),
    }
    assert!(s.is_empty());
}

#[cfg(feature = "tokio")]
#[tokio::test(start_paused = true)]
async fn sweeper_task_sweeps() {
    let clock = ManualClock::new(conformance::T0);
    let s = std::sync::Arc::new(MemoryStore::with_clock(10, clock.clone()));
    s.create(&mut conformance::record(1)).await.unwrap();
    let handle = s.spawn_sweeper(Duration::from_secs(30));
    tokio::time::sleep(Duration::from_secs(31)).await; // virtual time: start_paused
    assert_eq!(s.len(), 1, "swept a live session");
    clock.advance(conformance::TTL);
    tokio::time::sleep(Duration::from_secs(31)).await;
    assert_eq!(s.len(), 0, "sweeper did not run");
    drop(s);
    tokio::time::sleep(Duration::from_secs(31)).await;
    assert!(handle.is_finished(), "sweeper outlived its store");
}
