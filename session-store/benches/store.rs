//! Hot paths: cookie seal+open of a 1 KiB session; memory load+save.
//!
//! `cargo bench -p session-store --all-features --bench store`
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use session_store::{
    CookieStore, KeyRing, ManualClock, MemoryStore, Record, SessionId, SessionStore, Token,
    UnixTime,
};

const NOW: UnixTime = UnixTime::from_secs(1_700_000_000);

/// Both stores return ready futures: one poll with a no-op waker completes them.
fn now_or_never<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("store future was not ready"),
    }
}

fn session_1k(n: u8) -> Record {
    let mut r = Record::new(
        SessionId::from_bytes([n; 16]),
        NOW,
        Duration::from_secs(3600),
    );
    r.insert("user", "alice@example.com").unwrap();
    r.insert("roles", &["admin", "ops"]).unwrap();
    // Pad the JSON encoding to ~1 KiB (1,024 bytes of JSON; 962 bytes in the binary codec).
    r.insert("blob", &"x".repeat(1024 - 120)).unwrap();
    r
}

fn cookie(c: &mut Criterion) {
    let store = CookieStore::with_clock("sid", KeyRing::new(1, [7; 32]), ManualClock::new(NOW));
    let rec = session_1k(1);
    let plain = session_store::codec::encode(&rec).unwrap().len();
    let mut g = c.benchmark_group("cookie");
    g.throughput(Throughput::Bytes(plain as u64));
    g.bench_function("seal+open 1KiB", |b| {
        b.iter(|| {
            let t = store.seal(black_box(&rec)).unwrap();
            black_box(store.open(t.as_str().as_bytes()).unwrap())
        });
    });
    let t = store.seal(&rec).unwrap();
    g.bench_function("open 1KiB", |b| {
        b.iter(|| black_box(store.open(black_box(t.as_str().as_bytes())).unwrap()));
    });
    g.bench_function("seal 1KiB", |b| {
        b.iter(|| black_box(store.seal(black_box(&rec)).unwrap()))
    });
    // Where the time goes. The codec alone (binary, as sealed; JSON, as sealed before).
    let bytes = session_store::codec::encode(&rec).unwrap();
    g.bench_function("codec encode+decode 1KiB", |b| {
        b.iter(|| {
            let e = session_store::codec::encode(black_box(&rec)).unwrap();
            black_box(session_store::codec::decode(black_box(&bytes)).unwrap());
            e
        })
    });
    let json = session_store::codec::encode_json(&rec).unwrap();
    g.bench_function("codec json encode+decode 1KiB", |b| {
        b.iter(|| {
            let e = session_store::codec::encode_json(black_box(&rec)).unwrap();
            black_box(session_store::codec::decode(black_box(&json)).unwrap());
            e
        })
    });
    // The AEAD alone, in place, both directions (what seal+open cannot go below): AES-256-GCM
    // through `ring`.
    {
        use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
        let Ok(key) = UnboundKey::new(&AES_256_GCM, &[7; 32]) else {
            unreachable!("32-byte key")
        };
        let aead = LessSafeKey::new(key);
        let mut buf = bytes.clone();
        g.bench_function("aes256gcm (ring) seal+open 1KiB", |b| {
            b.iter(|| {
                let tag = aead
                    .seal_in_place_separate_tag(
                        Nonce::assume_unique_for_key([1; 12]),
                        Aad::from(b"aad"),
                        &mut buf,
                    )
                    .unwrap();
                aead.open_in_place_separate_tag(
                    Nonce::assume_unique_for_key([1; 12]),
                    Aad::from(b"aad"),
                    tag,
                    &mut buf,
                    0..,
                )
                .unwrap();
                black_box(&buf);
            })
        });
    }
    // base64url of the sealed bytes, both directions: `base64-simd` (what the cookie store
    // uses) and the `base64` crate (what it used).
    {
        use base64::Engine as _;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let raw = vec![0x5a_u8; bytes.len() + 33];
        g.bench_function("base64url (base64-simd) encode+decode 1KiB", |b| {
            b.iter(|| {
                let t = base64_simd::URL_SAFE_NO_PAD.encode_to_string(black_box(&raw));
                black_box(
                    base64_simd::URL_SAFE_NO_PAD
                        .decode_to_vec(t.as_bytes())
                        .unwrap(),
                )
            })
        });
        g.bench_function("base64url (base64) encode+decode 1KiB", |b| {
            b.iter(|| {
                let t = URL_SAFE_NO_PAD.encode(black_box(&raw));
                black_box(URL_SAFE_NO_PAD.decode(t.as_bytes()).unwrap())
            })
        });
    }
    g.finish();
}

fn memory(c: &mut Criterion) {
    let store = MemoryStore::with_clock(1_000_000, ManualClock::new(NOW));
    let tokens: Vec<Token> = (0..1024_u32)
        .map(|i| {
            let mut id = [0_u8; 16];
            id[..4].copy_from_slice(&i.to_le_bytes());
            let mut r = Record::new(SessionId::from_bytes(id), NOW, Duration::from_secs(3600));
            r.insert("user", "alice").unwrap();
            r.insert("counter", &0_u64).unwrap();
            now_or_never(store.create(&mut r)).unwrap()
        })
        .collect();
    let mut g = c.benchmark_group("memory");
    g.throughput(Throughput::Elements(2)); // one load + one save
    let mut i = 0_usize;
    g.bench_function("load+compare_and_save", |b| {
        b.iter(|| {
            i = (i + 1) & 1023;
            let t = &tokens[i];
            let mut r = now_or_never(store.load(black_box(t))).unwrap().unwrap();
            now_or_never(store.compare_and_save(&mut r)).unwrap()
        });
    });
    g.bench_function("load+save", |b| {
        b.iter(|| {
            i = (i + 1) & 1023;
            let t = &tokens[i];
            let mut r = now_or_never(store.load(black_box(t))).unwrap().unwrap();
            now_or_never(store.save(&mut r)).unwrap()
        });
    });
    g.finish();
}

criterion_group!(benches, cookie, memory);
criterion_main!(benches);
