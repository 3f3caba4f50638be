//! Property tests: SessionId text round trip and strict parsing; the record codec's round trip
//! (binary format, and the JSON format it replaced), refusal of truncations and trailing bytes,
//! and no panic on mutated input; cookie seal/open round trip, and every single-byte mutation
//! and every truncation of a token failing to open.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::time::Duration;

use proptest::prelude::*;
use serde_json::Value;
use session_store::codec;
use session_store::{ID_TEXT_LEN, Record, SessionId, UnixTime};

const NOW: UnixTime = UnixTime::from_secs(1_700_000_000);

#[cfg_attr(not(feature = "cookie"), allow(dead_code))]
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1e15_f64..1e15).prop_map(Value::from),
        ".{0,40}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(".{0,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

prop_compose! {
    #[cfg_attr(not(feature = "cookie"), allow(dead_code))]
    fn record()(id in any::<[u8; 16]>(), ttl in 1_u64..1_000_000,
                data in prop::collection::btree_map("[a-z]{1,12}", json_value(), 0..8)) -> Record {
        let mut r = Record::new(SessionId::from_bytes(id), NOW, Duration::from_secs(ttl));
        r.data_mut().extend(data);
        r
    }
}

/// Like [`json_value`], with every finite `f64` (not only "nice" ones), full-range integers
/// and deeper nesting, for the codec.
fn any_json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(8, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(any::<String>(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

prop_compose! {
    fn any_record()(id in any::<[u8; 16]>(), created in any::<u64>(), ttl in any::<u64>(),
                    version in any::<u64>(),
                    data in prop::collection::btree_map(any::<String>(), any_json_value(), 0..10)) -> Record {
        let mut r = Record::new(SessionId::from_bytes(id), UnixTime::from_secs(created), Duration::from_secs(ttl));
        r.data_mut().extend(data);
        // Versions are set only by stores; a JSON round trip carries any value in.
        let mut json = serde_json::to_value(&r).unwrap();
        json["v"] = Value::from(version);
        serde_json::from_value(json).unwrap()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// The binary codec: round trip, exact length, and the JSON format it replaced still
    /// decoding to the same record.
    #[test]
    fn codec_round_trip(r in any_record()) {
        let b = codec::encode(&r).unwrap();
        prop_assert_eq!(b.first().copied(), Some(codec::FORMAT_V2));
        prop_assert_eq!(b.len(), codec::encoded_len(&r).unwrap());
        prop_assert_eq!(&codec::decode(&b).unwrap(), &r);
        prop_assert_eq!(&codec::decode(&codec::encode_json(&r).unwrap()).unwrap(), &r);
    }

    /// Every proper prefix of an encoding is refused, and so is any extra byte.
    #[test]
    fn codec_refuses_truncation_and_trailing_bytes(r in any_record(), extra in any::<u8>()) {
        let b = codec::encode(&r).unwrap();
        for len in 0..b.len() {
            prop_assert!(codec::decode(&b[..len]).is_err(), "prefix of {} bytes decoded", len);
        }
        let mut longer = b.clone();
        longer.push(extra);
        prop_assert!(codec::decode(&longer).is_err());
    }

    /// Arbitrary and mutated bodies never panic; whatever decodes re-encodes to the same
    /// record (the fuzz oracle).
    #[test]
    fn codec_mutations_never_panic(r in any_record(), edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4)) {
        let mut b = codec::encode(&r).unwrap();
        for (i, v) in edits {
            let i = i.index(b.len());
            b[i] = v;
        }
        if let Ok(got) = codec::decode(&b) {
            prop_assert_eq!(codec::decode(&codec::encode(&got).unwrap()).unwrap(), got);
        }
    }
}

proptest! {
    #[test]
    fn session_id_text_round_trip(bytes in any::<[u8; 16]>()) {
        let id = SessionId::from_bytes(bytes);
        let text = id.to_string();
        prop_assert_eq!(text.len(), ID_TEXT_LEN);
        prop_assert!(text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        prop_assert_eq!(SessionId::parse(text.as_bytes()).unwrap(), id);
        let json = serde_json::to_string(&id).unwrap();
        prop_assert_eq!(serde_json::from_str::<SessionId>(&json).unwrap(), id);
    }

    #[test]
    fn session_id_rejects_wrong_length(text in "[A-Za-z0-9_-]{0,64}") {
        prop_assume!(text.len() != ID_TEXT_LEN);
        prop_assert!(SessionId::parse(text.as_bytes()).is_err());
    }

    #[test]
    fn session_id_rejects_foreign_bytes(bytes in any::<[u8; 16]>(), pos in 0..ID_TEXT_LEN, bad in any::<u8>()) {
        prop_assume!(!(bad.is_ascii_alphanumeric() || bad == b'-' || bad == b'_'));
        let mut text = SessionId::from_bytes(bytes).to_string().into_bytes();
        text[pos] = bad;
        prop_assert!(SessionId::parse(&text).is_err());
    }

    #[test]
    fn session_id_parse_is_canonical(text in "[A-Za-z0-9_-]{22}") {
        // Whatever parses prints back to exactly the same text (non-zero trailing bits in the
        // last character are rejected, so no two texts name one id).
        if let Ok(id) = SessionId::parse(text.as_bytes()) {
            prop_assert_eq!(id.to_string(), text);
        }
    }
}

#[cfg(feature = "cookie")]
mod cookie {
    use proptest::prelude::*;
    use session_store::cookie::MAX_COOKIE_BYTES;
    use session_store::{CookieStore, KeyRing, ManualClock, StoreError};

    use super::{NOW, record};

    fn store() -> CookieStore<ManualClock> {
        CookieStore::with_clock(
            "sid",
            KeyRing::new(5, [5; 32]).rotate(6, [6; 32]),
            ManualClock::new(NOW),
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        #[test]
        fn seal_open_round_trip(r in record()) {
            let s = store();
            match s.seal(&r) {
                Ok(t) => {
                    prop_assert!("sid".len() + 1 + t.as_str().len() <= MAX_COOKIE_BYTES);
                    prop_assert_eq!(s.open(t.as_str().as_bytes()).unwrap(), r);
                }
                Err(StoreError::TooLarge { size, limit }) => prop_assert!(size > limit),
                Err(e) => prop_assert!(false, "{e:?}"),
            }
        }

        #[test]
        fn every_mutation_and_truncation_fails(r in record(), xor in 1_u8..=255) {
            let s = store();
            let Ok(t) = s.seal(&r) else { return Ok(()) };
            let bytes = t.as_str().as_bytes();
            for i in 0..bytes.len() {
                let mut m = bytes.to_vec();
                m[i] ^= xor;
                prop_assert!(s.open(&m).is_err(), "mutation at {i} opened");
            }
            for len in 0..bytes.len() {
                prop_assert!(s.open(&bytes[..len]).is_err(), "truncation to {len} opened");
            }
        }
    }
}
