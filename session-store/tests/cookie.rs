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
    // Fixed key 1 = [1; 32], cookie "sid", nonce [9; 24], record(1), binary payload (codec
    // format 2): the format is frozen.
    let s = store(clock());
    let t = s.seal_with_nonce(&conformance::record(1), [9; 24]).unwrap();
    assert_eq!(t.as_str(), KAT_TOKEN);
    assert_eq!(
        s.open(KAT_TOKEN.as_bytes()).unwrap(),
        conformance::record(1)
    );
}

const KAT_TOKEN: &str = "AQAAAAEJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQnx7L6XX8c5Y1Is8SIWT-h483x1RntmM59_M-90T0YCIXdhOZnz_mWRjJZA9fuwm6MPxP0G-9Jm7WU9EZwU";

#[test]
fn format_1_json_token_still_opens() {
    // The known-answer token of the versions before the binary codec (JSON payload, codec
    // format 1), frozen then: cookies issued before the upgrade keep working.
    let s = store(clock());
    assert_eq!(
        s.open(KAT_TOKEN_V1.as_bytes()).unwrap(),
        conformance::record(1)
    );
}

const KAT_TOKEN_V1: &str = "AQAAAAEJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQnylp3_fPwaIwJosmJGC6s4o7nVyIAlzTzh3Ks1HGVAABVHdtuhvFOk3coZpq7R_gHphl612zvfE0VFL_8NxBrNhhxhCN7q0-WLtNNsxVHWIM64ZwFhPfGV8JjP7yqRE5HqknPtWXq6Y-XsVjwOhg";

/// The token layout written out independently of `CookieStore` (header, nonce, AEAD with
/// the documented associated data), around any codec payload.
fn independent_seal(
    key: [u8; 32],
    key_id: u32,
    name: &str,
    nonce: [u8; 24],
    plain: &[u8],
) -> String {
    use chacha20poly1305::aead::{Aead, KeyInit, Payload};
    use chacha20poly1305::{XChaCha20Poly1305, XNonce};
    let mut header = vec![1_u8];
    header.extend_from_slice(&key_id.to_be_bytes());
    let mut aad = b"session-store/cookie/v1\0".to_vec();
    aad.extend_from_slice(name.as_bytes());
    aad.push(0);
    aad.extend_from_slice(&header);
    let ct = XChaCha20Poly1305::new(&key.into())
        .encrypt(
            &XNonce::from(nonce),
            Payload {
                msg: plain,
                aad: &aad,
            },
        )
        .unwrap();
    let mut raw = header;
    raw.extend_from_slice(&nonce);
    raw.extend_from_slice(&ct);
    base64_encode(&raw)
}

/// Decrypts a token independently of `CookieStore`; returns the plaintext.
fn independent_open(key: [u8; 32], name: &str, token: &str) -> Vec<u8> {
    use chacha20poly1305::aead::{Aead, KeyInit, Payload};
    use chacha20poly1305::{XChaCha20Poly1305, XNonce};
    let raw = base64_decode(token.as_bytes());
    let (header, rest) = raw.split_at(5);
    let (nonce, ct) = rest.split_at(24);
    let mut aad = b"session-store/cookie/v1\0".to_vec();
    aad.extend_from_slice(name.as_bytes());
    aad.push(0);
    aad.extend_from_slice(header);
    XChaCha20Poly1305::new(&key.into())
        .decrypt(
            &XNonce::try_from(nonce).unwrap(),
            Payload { msg: ct, aad: &aad },
        )
        .unwrap()
}

#[test]
fn both_payload_formats_open_and_match_the_documented_layout() {
    let s = store(clock());
    let r = conformance::record(1);
    let json = session_store::codec::encode_json(&r).unwrap();
    let binary = session_store::codec::encode(&r).unwrap();
    assert_eq!(json[0], session_store::codec::FORMAT_V1);
    assert_eq!(binary[0], session_store::codec::FORMAT_V2);
    assert!(binary.len() < json.len());
    let t1 = independent_seal(K1, 1, "sid", [4; 24], &json);
    let t2 = independent_seal(K1, 1, "sid", [4; 24], &binary);
    assert_eq!(s.open(t1.as_bytes()).unwrap(), r);
    assert_eq!(s.open(t2.as_bytes()).unwrap(), r);
    // What the store seals is exactly the layout above with a binary payload.
    assert_eq!(s.seal_with_nonce(&r, [4; 24]).unwrap().as_str(), t2);
    // A format-1 session re-seals in format 2 on save.
    let mut loaded = s.open(t1.as_bytes()).unwrap();
    let t = futures_ready(s.save(&mut loaded));
    let plain = independent_open(K1, "sid", t.as_str());
    assert_eq!(plain[0], session_store::codec::FORMAT_V2);
    assert_eq!(s.open(t.as_str().as_bytes()).unwrap(), loaded);
    // An authentic payload of an unknown codec format is `Corrupt`, not `Tampered`.
    let t9 = independent_seal(K1, 1, "sid", [4; 24], &[9, 0, 0]);
    assert!(matches!(s.open(t9.as_bytes()), Err(OpenError::Corrupt(_))));
}

fn futures_ready<T>(f: impl Future<Output = Result<T, StoreError>>) -> T {
    let mut f = std::pin::pin!(f);
    match f
        .as_mut()
        .poll(&mut std::task::Context::from_waker(std::task::Waker::noop()))
    {
        std::task::Poll::Ready(v) => v.unwrap(),
        std::task::Poll::Pending => panic!("cookie store futures are ready"),
    }
}

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
