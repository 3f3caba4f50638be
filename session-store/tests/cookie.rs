//! The conformance suite and cookie-specific behaviour of `CookieStore`.
#![cfg(feature = "cookie")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod conformance;

use std::time::Duration;

use session_store::cookie::{Key, KeyError, MAX_COOKIE_BYTES, OpenError, TOKEN_FORMAT_V2};
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
    // Format byte 0x03: base64 of 0x03 followed by the rest.
    let mut raw = base64_decode(bytes);
    assert_eq!(raw[0], TOKEN_FORMAT_V2);
    raw[0] = 3;
    assert!(matches!(
        s.open(base64_encode(&raw).as_bytes()),
        Err(OpenError::UnknownFormat(3))
    ));
    // Non-canonical base64url (non-zero trailing bits, padding, other alphabet) is Malformed.
    let mut t = bytes.to_vec();
    if t.len() % 4 != 0 {
        let last = t.len() - 1;
        t[last] = if t[last] == b'B' { b'C' } else { b'B' };
        assert!(matches!(s.open(&t), Err(OpenError::Malformed)));
    }
    assert!(matches!(s.open(b"AAAAAAAA===="), Err(OpenError::Malformed)));
    let mut t = bytes.to_vec();
    t[10] = b'+';
    assert!(matches!(s.open(&t), Err(OpenError::Malformed)));
    // Format byte 1 is not a format this store opens.
    let mut other = vec![1, 0, 0, 0, 1];
    other.extend_from_slice(&[0; 24 + 16 + 1]);
    assert!(matches!(
        s.open(base64_encode(&other).as_bytes()),
        Err(OpenError::UnknownFormat(1))
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
    // Fixed key 1 = [1; 32], cookie "sid", nonce [9; 12], record(1), binary payload (codec
    // format 2), token format 2 (AES-256-GCM): the format is frozen.
    let s = store(clock());
    let t = s.seal_with_nonce(&conformance::record(1), [9; 12]).unwrap();
    assert_eq!(t.as_str(), KAT_TOKEN_V2);
    assert_eq!(
        s.open(KAT_TOKEN_V2.as_bytes()).unwrap(),
        conformance::record(1)
    );
}

const KAT_TOKEN_V2: &str = "AgAAAAEJCQkJCQkJCQkJCQmiYRHAJaXpm9ip_HH78KNfu8T52qCH0WluW9E8b60lCWsRwRgv_qEqZgnS9tKod_N9M9eaZA5H8nJ9vSXO";

#[test]
fn format_1_tokens_do_not_open() {
    // Token format 1 (XChaCha20-Poly1305) is not opened: one cipher only. These tokens are
    // authentic under K1 in that format; here they are an unknown format, i.e. a new session.
    let s = store(clock());
    for t in [FORMAT_1_BINARY, FORMAT_1_JSON] {
        assert!(matches!(
            s.open(t.as_bytes()),
            Err(OpenError::UnknownFormat(1))
        ));
    }
}

const FORMAT_1_BINARY: &str = "AQAAAAEJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQnx7L6XX8c5Y1Is8SIWT-h483x1RntmM59_M-90T0YCIXdhOZnz_mWRjJZA9fuwm6MPxP0G-9Jm7WU9EZwU";

const FORMAT_1_JSON: &str = "AQAAAAEJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQnylp3_fPwaIwJosmJGC6s4o7nVyIAlzTzh3Ks1HGVAABVHdtuhvFOk3coZpq7R_gHphl612zvfE0VFL_8NxBrNhhxhCN7q0-WLtNNsxVHWIM64ZwFhPfGV8JjP7yqRE5HqknPtWXq6Y-XsVjwOhg";

#[test]
fn keys_generate_and_load_from_base64_hex_and_env() {
    let a = Key::generate().unwrap();
    let b = Key::generate().unwrap();
    assert_ne!(a, b);
    assert_eq!(format!("{a:?}"), "Key(..)");
    let text = a.to_base64();
    assert_eq!(text.len(), 43);
    assert_eq!(Key::from_base64(&text).unwrap(), a);
    // Standard alphabet, padded, with whitespace: `openssl rand -base64 32`.
    use base64::Engine as _;
    let std = base64::engine::general_purpose::STANDARD.encode(K1);
    assert_eq!(
        Key::from_base64(&format!(" {std}\n")).unwrap(),
        Key::from(K1)
    );
    let hex: String = K2.iter().map(|b| format!("{b:02X}")).collect();
    assert_eq!(Key::from_hex(&hex).unwrap(), Key::from(K2));
    assert_eq!(Key::parse(&hex.to_lowercase()).unwrap(), Key::from(K2));
    assert!(matches!(Key::from_hex("0g"), Err(KeyError::NotHex)));
    assert!(matches!(Key::from_hex("abc"), Err(KeyError::NotHex)));
    assert!(matches!(
        Key::from_hex("00ff"),
        Err(KeyError::Length { found: 2 })
    ));
    assert!(matches!(Key::from_base64("!!"), Err(KeyError::NotBase64)));
    assert!(matches!(
        Key::from_base64("AAAA"),
        Err(KeyError::Length { found: 3 })
    ));
    // Errors never echo the key.
    let e = Key::from_base64(&text[..40]).unwrap_err().to_string();
    assert!(!e.contains(&text[..40]), "{e}");

    // An unset variable (`set_var` is unsafe in a multi-threaded test binary, so only the
    // missing case is tested here; the parsing is `Key::parse` / `KeyRing::parse`).
    let var = "SESSION_STORE_TEST_KEY_7f3a";
    assert!(matches!(
        Key::from_env(var),
        Err(KeyError::EnvMissing { .. })
    ));
    assert!(matches!(
        KeyRing::from_env(var),
        Err(KeyError::EnvMissing { .. })
    ));
}

#[test]
fn key_ring_spec_first_seals_all_open() {
    let (k1, k2) = (Key::from(K1), Key::from(K2));
    let spec = format!("2:{}, 1:{}", k2.to_base64(), k1.to_base64());
    let ring = KeyRing::parse(&spec).unwrap();
    assert_eq!(ring.primary_id(), 2);
    assert_eq!(format!("{ring:?}"), "KeyRing { ids: [2, 1] }");
    // A token of key 1 opens in the parsed ring; the same ring built by hand agrees.
    let old = store(clock());
    let t = old.seal(&conformance::record(1)).unwrap();
    let s = CookieStore::with_clock("sid", ring, clock());
    assert_eq!(
        s.open(t.as_str().as_bytes()).unwrap(),
        conformance::record(1)
    );
    assert!(matches!(KeyRing::parse(""), Err(KeyError::EmptyRing)));
    assert!(matches!(
        KeyRing::parse("x"),
        Err(KeyError::RingEntry { index: 0 })
    ));
    assert!(matches!(
        KeyRing::parse(&format!("1:{},", k1.to_base64())),
        Err(KeyError::RingEntry { index: 1 })
    ));
    assert!(matches!(
        KeyRing::parse(&format!("1:{0},1:{0}", k1.to_base64())),
        Err(KeyError::DuplicateId { id: 1 })
    ));
    assert!(matches!(
        KeyRing::parse("1:zz"),
        Err(KeyError::NotBase64 | KeyError::Length { .. })
    ));
    let g = KeyRing::generate(5).unwrap();
    assert_eq!(g.primary_id(), 5);
}

/// The documented associated data: prefix, name, 0x00, header.
fn aad(prefix: &[u8], name: &str, header: &[u8]) -> Vec<u8> {
    let mut aad = prefix.to_vec();
    aad.extend_from_slice(name.as_bytes());
    aad.push(0);
    aad.extend_from_slice(header);
    aad
}

/// The documented AES key: HKDF-SHA256, no salt, info "session-store/cookie/v2 aes-256-gcm",
/// computed with RustCrypto's `hkdf` (not the store's `ring`).
fn v2_key(key: [u8; 32]) -> [u8; 32] {
    let mut okm = [0; 32];
    hkdf::Hkdf::<sha2::Sha256>::new(None, &key)
        .expand(b"session-store/cookie/v2 aes-256-gcm", &mut okm)
        .unwrap();
    okm
}

/// The version-2 token layout written out independently of `CookieStore` (RustCrypto's
/// `aes-gcm` and `hkdf` instead of `ring`), around any codec payload.
fn independent_seal_v2(
    key: [u8; 32],
    key_id: u32,
    name: &str,
    nonce: [u8; 12],
    plain: &[u8],
) -> String {
    use aes_gcm::aead::{Aead, KeyInit, Payload};
    let mut header = vec![2_u8];
    header.extend_from_slice(&key_id.to_be_bytes());
    let aad = aad(b"session-store/cookie/v2\0", name, &header);
    let ct = aes_gcm::Aes256Gcm::new(&v2_key(key).into())
        .encrypt(
            &nonce.into(),
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

/// Decrypts a version-2 token independently of `CookieStore`; returns the plaintext.
fn independent_open_v2(key: [u8; 32], name: &str, token: &str) -> Vec<u8> {
    use aes_gcm::aead::{Aead, KeyInit, Payload};
    let raw = base64_decode(token.as_bytes());
    let (header, rest) = raw.split_at(5);
    assert_eq!(header[0], 2);
    let (nonce, ct) = rest.split_at(12);
    let aad = aad(b"session-store/cookie/v2\0", name, header);
    aes_gcm::Aes256Gcm::new(&v2_key(key).into())
        .decrypt(
            &<[u8; 12]>::try_from(nonce).unwrap().into(),
            Payload { msg: ct, aad: &aad },
        )
        .unwrap()
}

#[test]
fn every_format_opens_and_matches_the_documented_layout() {
    let s = store(clock());
    let r = conformance::record(1);
    let json = session_store::codec::encode_json(&r).unwrap();
    let binary = session_store::codec::encode(&r).unwrap();
    assert_eq!(json[0], session_store::codec::FORMAT_V1);
    assert_eq!(binary[0], session_store::codec::FORMAT_V2);
    assert!(binary.len() < json.len());
    // Either payload opens.
    let v2_json = independent_seal_v2(K1, 1, "sid", [4; 12], &json);
    let v2_bin = independent_seal_v2(K1, 1, "sid", [4; 12], &binary);
    for t in [&v2_json, &v2_bin] {
        assert_eq!(s.open(t.as_bytes()).unwrap(), r);
    }
    // What the store seals is exactly the version-2 layout above with a binary payload.
    assert_eq!(s.seal_with_nonce(&r, [4; 12]).unwrap().as_str(), v2_bin);
    // A session with a JSON payload re-seals binary on save.
    let mut loaded = s.open(v2_json.as_bytes()).unwrap();
    let t = futures_ready(s.save(&mut loaded));
    let plain = independent_open_v2(K1, "sid", t.as_str());
    assert_eq!(plain[0], session_store::codec::FORMAT_V2);
    assert_eq!(s.open(t.as_str().as_bytes()).unwrap(), loaded);
    // An authentic payload of an unknown codec format is `Corrupt`, not `Tampered`.
    let t9 = independent_seal_v2(K1, 1, "sid", [4; 12], &[9, 0, 0]);
    assert!(matches!(s.open(t9.as_bytes()), Err(OpenError::Corrupt(_))));
    // Sealed with the ring key itself instead of the HKDF-derived one: Tampered.
    let mut raw = base64_decode(v2_bin.as_bytes());
    let plain_len = raw.len() - 5 - 12 - 16;
    let underived = {
        use aes_gcm::aead::{AeadInOut, KeyInit};
        let c = aes_gcm::Aes256Gcm::new(&K1.into());
        let aad = aad(b"session-store/cookie/v2\0", "sid", &raw[..5]);
        let mut buf = binary.clone();
        let tag = c
            .encrypt_inout_detached(&[4; 12].into(), &aad, buf.as_mut_slice().into())
            .unwrap();
        buf.extend_from_slice(&tag);
        buf
    };
    assert_eq!(underived.len(), plain_len + 16);
    raw.truncate(5 + 12);
    raw.extend_from_slice(&underived);
    assert!(matches!(
        s.open(base64_encode(&raw).as_bytes()),
        Err(OpenError::Tampered)
    ));
}

#[test]
fn nonces_count_up_from_one_random_start_per_process() {
    let s = store(clock());
    let r = conformance::record(1);
    let nonce = |t: &str| -> u128 {
        let raw = base64_decode(t.as_bytes());
        let mut b = [0; 16];
        b[4..].copy_from_slice(&raw[5..17]);
        u128::from_be_bytes(b)
    };
    let a = nonce(s.seal(&r).unwrap().as_str());
    let b = nonce(s.seal(&r).unwrap().as_str());
    // Other tests seal concurrently in this process, so only strictly increasing (mod 2^96)
    // and never equal is certain.
    let step = b.wrapping_sub(a) & ((1 << 96) - 1);
    assert!((1..1 << 32).contains(&step), "step {step}");
    // Another store (another key) in the same process continues the same sequence.
    let other = CookieStore::with_clock("x", KeyRing::new(9, K2), clock());
    let c = nonce(other.seal(&r).unwrap().as_str());
    let step = c.wrapping_sub(b) & ((1 << 96) - 1);
    assert!((1..1 << 32).contains(&step), "step {step}");
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
