//! The failover demo's parsers on stable: the fuzz seeds replayed
//! (`fuzz/seeds/demo_response`), and a round trip from an
//! answer, through an HTTP/1.1 response (plain or chunked), back to the same answer.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use failover_demo::client::{Answer, parse_answer, parse_response};
use failover_demo::fuzzing;
use proptest::prelude::*;

fn seeds(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/seeds")
        .join(target);
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let p = e.unwrap().path();
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no seeds in {}", dir.display());
    out
}

#[test]
fn demo_response_seeds() {
    for (_, data) in seeds("demo_response") {
        fuzzing::demo_response(&data);
    }
}

fn http_response(body: &str, chunked: bool) -> Vec<u8> {
    if chunked {
        let mut r = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
        for piece in body.as_bytes().chunks(7) {
            r.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
            r.extend_from_slice(piece);
            r.extend_from_slice(b"\r\n");
        }
        r.extend_from_slice(b"0\r\n\r\n");
        r
    } else {
        format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }
}

proptest! {
    #[test]
    fn answers_round_trip(
        served_by in "[a-z][a-z0-9]{0,11}",
        peer in any::<[u8; 4]>(),
        user in proptest::option::of("[A-Za-z0-9][A-Za-z0-9_-]{0,31}"),
        hits in proptest::option::of(any::<u64>()),
        chunked in any::<bool>(),
    ) {
        let via = std::net::Ipv4Addr::from(peer).to_string();
        let body = format!(
            "served_by={served_by} peer={via} user={} hits={}\n",
            user.as_deref().unwrap_or("-"),
            hits.map_or_else(|| "-".to_owned(), |h| h.to_string())
        );
        let r = parse_response(&http_response(&body, chunked)).map_err(|e| format!("{e:?}"));
        let r = r.map_err(TestCaseError::fail)?;
        prop_assert_eq!(r.status, 200);
        prop_assert_eq!(&r.body, &body);
        let a = parse_answer(&r.body, str::to_owned);
        prop_assert_eq!(a, Some(Answer { served_by, via, user, hits }));
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        fuzzing::demo_response(&data);
    }
}
