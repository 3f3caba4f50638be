//! Property tests: SessionId text round trip and strict parsing; cookie seal/open round trip,
//! and every single-byte mutation and every truncation of a token failing to open.
#![allow(clippy::unwrap_used, clippy::panic)]

use proptest::prelude::*;
use session_store::{ID_TEXT_LEN, SessionId};

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
    use std::time::Duration;

    use proptest::prelude::*;
    use serde_json::Value;
    use session_store::cookie::MAX_COOKIE_BYTES;
    use session_store::{
        CookieStore, KeyRing, ManualClock, Record, SessionId, StoreError, UnixTime,
    };

    const NOW: UnixTime = UnixTime::from_secs(1_700_000_000);

    fn store() -> CookieStore<ManualClock> {
        CookieStore::with_clock(
            "sid",
            KeyRing::new(5, [5; 32]).rotate(6, [6; 32]),
            ManualClock::new(NOW),
        )
    }

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
        fn record()(id in any::<[u8; 16]>(), ttl in 1_u64..1_000_000,
                    data in prop::collection::btree_map("[a-z]{1,12}", json_value(), 0..8)) -> Record {
            let mut r = Record::new(SessionId::from_bytes(id), NOW, Duration::from_secs(ttl));
            r.data_mut().extend(data);
            r
        }
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
