//! The conformance suite and cookie-specific behaviour of `CookieStore`.
#![cfg(feature = "cookie")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod conformance;

use std::time::Duration;

use session_store::cookie::{MAX_COOKIE_BYTES, OpenError};
use session_store::{CookieStore, KeyRing, ManualClock, SessionStore, StoreError};

const K1: [u8; 32] = [1; 32];
const K2: [u8; 32] = [2; 32];

fn store(clock: ManualClock) -> CookieStore<ManualClock> {
    CookieStore::with_clock("sid", KeyRing::new(1, K1), clock)
}

conformance::store_conformance!(store);

fn clock() -> ManualClock {
    ManualClock::new(conformance::T0)
}

#[tokio::test]
async fn rotation_newest_seals_all_open() {
    let old = store(clock());
    let mut r = conformance::record(1);
    let t_old = old.create(&mut r).await.unwrap();

    let rotated = CookieStore::with_clock("sid", KeyRing::new(1, K1).rotate(2, K2), clock());
    assert_eq!(rotated.keys().primary_id(), 2);
    // The old token still opens under the rotated ring…
    let got = rotated
        .load(&t_old)
        .await
        .unwrap()
        .expect("old key still opens");
    assert_eq!(got, r);
    // …and a save re-seals it with the new key, which the old-only ring cannot open.
    let mut got = got;
    let t_new = rotated.save(&mut got).await.unwrap();
    assert!(matches!(
        old.open(t_new.as_str().as_bytes()),
        Err(OpenError::UnknownKey(2))
    ));
    assert!(rotated.open(t_new.as_str().as_bytes()).is_ok());

    // Retiring the old key ends its tokens; the sealing key cannot be retired.
    let mut ring = KeyRing::new(1, K1).rotate(2, K2);
    assert!(!ring.retire(2));
    assert!(ring.retire(1));
    let retired = CookieStore::with_clock("sid", ring, clock());
    assert!(matches!(
        retired.open(t_old.as_str().as_bytes()),
        Err(OpenError::UnknownKey(1))
    ));
    assert!(retired.load(&t_old).await.unwrap().is_none());
}

#[tokio::test]
async fn same_key_id_different_key_is_tampered() {
    let a = store(clock());
    let b = CookieStore::with_clock("sid", KeyRing::new(1, K2), clock());
    let t = a.create(&mut conformance::record(1)).await.unwrap();
    assert!(matches!(
        b.open(t.as_str().as_bytes()),
        Err(OpenError::Tampered)
    ));
}

#[tokio::test]
async fn token_is_bound_to_cookie_name() {
    let a = store(clock());
    let b = CookieStore::with_clock("other", KeyRing::new(1, K1), clock());
    let t = a.create(&mut conformance::record(1)).await.unwrap();
    assert!(matches!(
        b.open(t.as_str().as_bytes()),
        Err(OpenError::Tampered)
    ));
    assert!(b.load(&t).await.unwrap().is_none());
}

#[tokio::test]
async fn reasons_are_typed() {
    let c = clock();
    let s = store(c.clone());
    let t = s.create(&mut conformance::record(1)).await.unwrap();
    let bytes = t.as_str().as_bytes();
    assert!(matches!(s.open(b"***"), Err(OpenError::Malformed)));
    assert!(matches!(
        s.open(b"AAAA"),
        Err(OpenError::Truncated { len: 3, .. })
    ));
    assert!(matches!(
        s.open(&vec![b'A'; MAX_COOKIE_BYTES + 1]),
        Err(OpenError::TooLong { .. })
    ));
    // Format byte 0x02: base64 of 0x02 followed by the rest.
    let mut raw = base64_decode(bytes);
    raw[0] = 2;
    assert!(matches!(
        s.open(base64_encode(&raw).as_bytes()),
        Err(OpenError::UnknownFormat(2))
    ));
    c.advance(conformance::TTL);
    assert!(matches!(s.open(bytes), Err(OpenError::Expired { .. })));
}

#[tokio::test]
async fn oversized_session_is_too_large_and_record_unchanged() {
    let s = store(clock());
    let mut r = conformance::record(1);
    let t = s.create(&mut r).await.unwrap();
    r.insert("blob", &"x".repeat(MAX_COOKIE_BYTES)).unwrap();
    let before = r.clone();
    match s.save(&mut r).await {
        Err(StoreError::TooLarge { size, limit }) => {
            assert_eq!(limit, MAX_COOKIE_BYTES);
            assert!(size > limit);
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert_eq!(r, before, "failed save changed the record");
    assert!(s.load(&t).await.unwrap().is_some(), "old token still valid");
}

#[tokio::test]
async fn largest_session_that_fits_is_at_most_4096_with_name() {
    let s = store(clock());
    let mut r = conformance::record(1);
    // Grow the blob until sealing fails; the last success must fit the budget exactly.
    let mut last_ok = None;
    for n in (2_800..3_200).step_by(1) {
        r.insert("blob", &"x".repeat(n)).unwrap();
        match s.save(&mut r).await {
            Ok(t) => last_ok = Some(t),
            Err(StoreError::TooLarge { .. }) => break,
            Err(e) => panic!("{e:?}"),
        }
    }
    let t = last_ok.expect("some size fits");
    assert!("sid".len() + 1 + t.as_str().len() <= MAX_COOKIE_BYTES);
    assert!("sid".len() + 1 + t.as_str().len() > MAX_COOKIE_BYTES - 4);
}

#[tokio::test]
async fn every_seal_uses_a_fresh_nonce() {
    let s = store(clock());
    let r = conformance::record(1);
    let a = s.seal(&r).unwrap();
    let b = s.seal(&r).unwrap();
    assert_ne!(a, b);
    assert_eq!(
        s.open(a.as_str().as_bytes()).unwrap(),
        s.open(b.as_str().as_bytes()).unwrap()
    );
}

#[test]
fn known_answer_vector() {
    // Fixed key 1 = [1; 32], cookie "sid", nonce [9; 24], record(1): the format is frozen.
    let s = store(clock());
    let t = s.seal_with_nonce(&conformance::record(1), [9; 24]).unwrap();
    assert_eq!(t.as_str(), KAT_TOKEN);
    assert_eq!(
        s.open(KAT_TOKEN.as_bytes()).unwrap(),
        conformance::record(1)
    );
}

const KAT_TOKEN: &str = "AQAAAAEJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQnylp3_fPwaIwJosmJGC6s4o7nVyIAlzTzh3Ks1HGVAABVHdtuhvFOk3coZpq7R_gHphl612zvfE0VFL_8NxBrNhhxhCN7q0-WLtNNsxVHWIM64ZwFhPfGV8JjP7yqRE5HqknPtWXq6Y-XsVjwOhg";

#[tokio::test]
async fn touch_reseals_with_new_expiry() {
    let c = clock();
    let s = store(c.clone());
    let t = s.create(&mut conformance::record(1)).await.unwrap();
    let later = conformance::T0.saturating_add(Duration::from_secs(3600));
    let t2 = s.touch(&t, later).await.unwrap().unwrap();
    assert_ne!(t, t2);
    c.advance(Duration::from_secs(3000));
    assert!(s.load(&t).await.unwrap().is_none());
    assert_eq!(s.load(&t2).await.unwrap().unwrap().expires(), later);
}

fn base64_decode(b: &[u8]) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(b)
        .unwrap()
}

fn base64_encode(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}
