//! The memcached text protocol, sans I/O: request encoding and an incremental reply parser.
//!
//! [`parse_reply`] looks at the bytes received so far and returns `Ok(None)` until one whole
//! reply is there, so the caller can read more and call it again. It never panics, never
//! allocates more than the value size it was told to accept, and an error on a prefix stays an
//! error however the reply continues (the fuzz target `memcached_reply` checks all three).

#![warn(clippy::indexing_slicing)]

/// The longest reply line accepted (a `VALUE` line holds a key of at most 250 bytes and three
/// numbers; error lines carry a short message).
pub(crate) const MAX_LINE: usize = 2048;

/// One item of a `get`/`gets` reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Item {
    /// The key, as the server echoed it.
    pub(crate) key: Vec<u8>,
    /// The client flags stored with the item.
    pub(crate) flags: u32,
    /// The CAS unique (present in `gets` replies).
    pub(crate) cas: Option<u64>,
    /// The value.
    pub(crate) data: Vec<u8>,
}

/// A complete reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Reply {
    /// `VALUE …` blocks terminated by `END` (`END` alone: a miss).
    Values(Vec<Item>),
    /// `STORED`
    Stored,
    /// `NOT_STORED` (`add` found the key, or `replace` did not).
    NotStored,
    /// `EXISTS` (`cas`: the item changed since `gets`).
    Exists,
    /// `NOT_FOUND`
    NotFound,
    /// `DELETED`
    Deleted,
    /// `TOUCHED`
    Touched,
    /// `ERROR`: the server did not understand the command.
    Error,
    /// `CLIENT_ERROR <message>`: the request was malformed (e.g. a bad key).
    ClientError(String),
    /// `SERVER_ERROR <message>`: the server could not do it (e.g. out of memory, object too
    /// large).
    ServerError(String),
}

/// Why bytes from the server are not a memcached reply.
#[non_exhaustive]
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum ProtocolError {
    /// A reply line is longer than any reply to our commands can be.
    #[error("reply line longer than {MAX_LINE} bytes: not a memcached server, or a broken one")]
    LineTooLong,
    /// A line that is not one of the replies the text protocol defines.
    #[error("unrecognised reply line ({len} bytes): not a memcached text-protocol server")]
    UnknownReply {
        /// Length of the line.
        len: usize,
    },
    /// A `VALUE` line whose fields are missing or not numbers.
    #[error("malformed VALUE line (field {field})")]
    BadValueLine {
        /// The offending field (`"key"`, `"flags"`, `"bytes"`, `"cas"`).
        field: &'static str,
    },
    /// A value larger than the client accepts.
    #[error("server announced a {bytes}-byte value, over the {limit}-byte limit")]
    ValueTooLarge {
        /// Announced size.
        bytes: u64,
        /// Accepted size.
        limit: usize,
    },
    /// A value's data is not followed by `\r\n`.
    #[error("value data not terminated by CRLF")]
    MissingTerminator,
    /// A reply that does not answer the command sent (e.g. `DELETED` to a `cas`), or items for
    /// another key.
    #[error("reply {reply} does not answer {op}")]
    Unexpected {
        /// The command sent.
        op: &'static str,
        /// The reply received.
        reply: &'static str,
    },
}

impl Reply {
    /// A short name for error messages.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Self::Values(_) => "VALUE/END",
            Self::Stored => "STORED",
            Self::NotStored => "NOT_STORED",
            Self::Exists => "EXISTS",
            Self::NotFound => "NOT_FOUND",
            Self::Deleted => "DELETED",
            Self::Touched => "TOUCHED",
            Self::Error => "ERROR",
            Self::ClientError(_) => "CLIENT_ERROR",
            Self::ServerError(_) => "SERVER_ERROR",
        }
    }
}

/// A line (without CRLF) and the bytes after it.
type Split<'a> = (&'a [u8], &'a [u8]);

/// The first line of `buf` and the bytes after it; `Ok(None)` if the CRLF has not arrived yet.
fn line(buf: &[u8]) -> Result<Option<Split<'_>>, ProtocolError> {
    let Some(pos) = buf.windows(2).position(|w| w == b"\r\n") else {
        // No CRLF yet: only wait for more if the line can still become valid.
        // (A line of exactly MAX_LINE bytes may still be waiting for its '\n'.)
        return if buf.len() > MAX_LINE + 1 {
            Err(ProtocolError::LineTooLong)
        } else {
            Ok(None)
        };
    };
    if pos > MAX_LINE {
        return Err(ProtocolError::LineTooLong);
    }
    let (l, rest) = buf.split_at(pos);
    Ok(Some((l, rest.get(2..).unwrap_or_default())))
}

fn number<T: std::str::FromStr>(field: &'static str, s: Option<&[u8]>) -> Result<T, ProtocolError> {
    let s = s.ok_or(ProtocolError::BadValueLine { field })?;
    // Digits only: `FromStr` would also take a leading '+'.
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return Err(ProtocolError::BadValueLine { field });
    }
    std::str::from_utf8(s)
        .ok()
        .and_then(|t| t.parse().ok())
        .ok_or(ProtocolError::BadValueLine { field })
}

/// Parses one reply from the start of `buf`, accepting values of at most `max_value` bytes.
///
/// `Ok(Some((reply, consumed)))` once a whole reply is there; `Ok(None)` if more bytes are
/// needed; `Err` if the bytes cannot begin a valid reply.
///
/// # Errors
/// [`ProtocolError`] for anything that is not a text-protocol reply.
pub(crate) fn parse_reply(
    buf: &[u8],
    max_value: usize,
) -> Result<Option<(Reply, usize)>, ProtocolError> {
    let mut items = Vec::new();
    let mut rest = buf;
    loop {
        let Some((l, after)) = line(rest)? else {
            return Ok(None);
        };
        let simple = match l {
            b"END" => Some(Reply::Values(std::mem::take(&mut items))),
            _ if !items.is_empty() && !l.starts_with(b"VALUE ") => {
                return Err(ProtocolError::UnknownReply { len: l.len() });
            }
            b"STORED" => Some(Reply::Stored),
            b"NOT_STORED" => Some(Reply::NotStored),
            b"EXISTS" => Some(Reply::Exists),
            b"NOT_FOUND" => Some(Reply::NotFound),
            b"DELETED" => Some(Reply::Deleted),
            b"TOUCHED" => Some(Reply::Touched),
            b"ERROR" => Some(Reply::Error),
            _ => {
                let client = l
                    .strip_prefix(b"CLIENT_ERROR")
                    .map(|msg| Reply::ClientError(message(msg)));
                client.or_else(|| {
                    l.strip_prefix(b"SERVER_ERROR")
                        .map(|msg| Reply::ServerError(message(msg)))
                })
            }
        };
        if let Some(reply) = simple {
            return Ok(Some((reply, buf.len() - after.len())));
        }
        let Some(fields) = l.strip_prefix(b"VALUE ") else {
            return Err(ProtocolError::UnknownReply { len: l.len() });
        };
        let mut f = fields.split(|&b| b == b' ');
        let key = f
            .next()
            .filter(|k| !k.is_empty())
            .ok_or(ProtocolError::BadValueLine { field: "key" })?;
        let flags: u32 = number("flags", f.next())?;
        let bytes: u64 = number("bytes", f.next())?;
        let cas = f
            .next()
            .map(|c| number::<u64>("cas", Some(c)))
            .transpose()?;
        if f.next().is_some() {
            return Err(ProtocolError::BadValueLine { field: "cas" });
        }
        let len = usize::try_from(bytes)
            .ok()
            .filter(|&n| n <= max_value)
            .ok_or(ProtocolError::ValueTooLarge {
                bytes,
                limit: max_value,
            })?;
        let Some(data) = after.get(..len) else {
            return Ok(None);
        };
        let tail = after.get(len..).unwrap_or_default();
        match tail {
            [] | [b'\r'] => return Ok(None),
            [b'\r', b'\n', more @ ..] => rest = more,
            _ => return Err(ProtocolError::MissingTerminator),
        }
        items.push(Item {
            key: key.to_vec(),
            flags,
            cas,
            data: data.to_vec(),
        });
    }
}

fn message(after_word: &[u8]) -> String {
    String::from_utf8_lossy(after_word.strip_prefix(b" ").unwrap_or(after_word)).into_owned()
}

/// Appends a storage command (`add`, `set`, `cas`) to `out`.
pub(crate) fn storage(
    out: &mut Vec<u8>,
    verb: &str,
    key: &str,
    exptime: u32,
    data: &[u8],
    cas: Option<u64>,
) {
    out.extend_from_slice(verb.as_bytes());
    out.push(b' ');
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(format!(" 0 {exptime} {}", data.len()).as_bytes());
    if let Some(c) = cas {
        out.extend_from_slice(format!(" {c}").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// Appends a one-key command (`gets <key>`, `delete <key>`) to `out`.
pub(crate) fn keyed(out: &mut Vec<u8>, verb: &str, key: &str) {
    out.extend_from_slice(verb.as_bytes());
    out.push(b' ');
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// The reply as the server would send it (for tests and the fuzz oracle).
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn encode_reply(r: &Reply) -> Vec<u8> {
    let mut out = Vec::new();
    match r {
        Reply::Values(items) => {
            for it in items {
                out.extend_from_slice(b"VALUE ");
                out.extend_from_slice(&it.key);
                out.extend_from_slice(format!(" {} {}", it.flags, it.data.len()).as_bytes());
                if let Some(c) = it.cas {
                    out.extend_from_slice(format!(" {c}").as_bytes());
                }
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(&it.data);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"END\r\n");
        }
        Reply::ClientError(m) => out.extend_from_slice(format!("CLIENT_ERROR {m}\r\n").as_bytes()),
        Reply::ServerError(m) => out.extend_from_slice(format!("SERVER_ERROR {m}\r\n").as_bytes()),
        other => {
            out.extend_from_slice(other.name().as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }
    out
}

/// The fuzz oracle: parsing `data` never panics; a parsed reply is found again, with the same
/// length, in exactly the consumed prefix; every shorter prefix is incomplete (never a
/// different reply); an error on a prefix stays an error on the whole input.
///
/// Returns a description of the first violation.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn check_parser(data: &[u8], max_value: usize) -> Result<(), String> {
    let whole = parse_reply(data, max_value);
    match &whole {
        Ok(Some((reply, n))) => {
            let prefix = data.get(..*n).ok_or("consumed more than the input")?;
            if parse_reply(prefix, max_value) != whole {
                return Err(format!("reply {reply:?} not found again in its {n} bytes"));
            }
            // Prefixes (bounded: the check is quadratic).
            for k in (0..*n).rev().take(512) {
                let p = data.get(..k).ok_or("prefix")?;
                if let Ok(Some(other)) = parse_reply(p, max_value) {
                    return Err(format!("prefix of {k} bytes parsed as {other:?}"));
                }
            }
            let again = encode_reply(reply);
            if let Reply::Values(items) = reply
                && items.iter().all(|i| !i.key.contains(&b' '))
            {
                match parse_reply(&again, max_value) {
                    Ok(Some((r2, n2))) if &r2 == reply && n2 == again.len() => {}
                    other => return Err(format!("re-encoded reply parses as {other:?}")),
                }
            }
        }
        Ok(None) => {}
        Err(_) => {}
    }
    for k in (0..data.len()).take(512) {
        let p = data.get(..k).ok_or("prefix")?;
        if parse_reply(p, max_value).is_err() && whole.is_ok() {
            return Err(format!(
                "prefix of {k} bytes is an error but the whole is {whole:?}"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn known_replies() {
        let r = parse_reply(b"VALUE k 0 3 42\r\nabc\r\nEND\r\nSTORED\r\n", 10).unwrap();
        assert_eq!(
            r,
            Some((
                Reply::Values(vec![Item {
                    key: b"k".to_vec(),
                    flags: 0,
                    cas: Some(42),
                    data: b"abc".to_vec()
                }]),
                26
            ))
        );
        assert_eq!(
            parse_reply(b"END\r\n", 10).unwrap(),
            Some((Reply::Values(vec![]), 5))
        );
        assert_eq!(
            parse_reply(b"SERVER_ERROR object too large for cache\r\n", 10).unwrap(),
            Some((Reply::ServerError("object too large for cache".into()), 41))
        );
        assert_eq!(parse_reply(b"STORED\r", 10).unwrap(), None);
        assert_eq!(parse_reply(b"VALUE k 0 3 1\r\nabc\r", 10).unwrap(), None);
        assert_eq!(
            parse_reply(b"VALUE k 0 3 1\r\nabcd\r\n", 10),
            Err(ProtocolError::MissingTerminator)
        );
        assert_eq!(
            parse_reply(b"VALUE k 0 99 1\r\n", 10),
            Err(ProtocolError::ValueTooLarge {
                bytes: 99,
                limit: 10
            })
        );
        assert_eq!(
            parse_reply(b"VALUE k +0 3 1\r\n", 10),
            Err(ProtocolError::BadValueLine { field: "flags" })
        );
        assert_eq!(
            parse_reply(b"HELLO\r\n", 10),
            Err(ProtocolError::UnknownReply { len: 5 })
        );
        assert_eq!(
            parse_reply(&[b'x'; MAX_LINE + 2], 10),
            Err(ProtocolError::LineTooLong)
        );
    }

    #[test]
    fn commands_are_framed() {
        let mut out = Vec::new();
        storage(&mut out, "cas", "s:k", 60, b"v\r\n", Some(7));
        assert_eq!(out, b"cas s:k 0 60 3 7\r\nv\r\n\r\n");
        out.clear();
        keyed(&mut out, "gets", "s:k");
        assert_eq!(out, b"gets s:k\r\n");
    }

    fn item() -> impl Strategy<Value = Item> {
        (
            "[!-~]{1,20}",
            any::<u32>(),
            proptest::option::of(any::<u64>()),
            proptest::collection::vec(any::<u8>(), 0..64),
        )
            .prop_map(|(key, flags, cas, data)| Item {
                key: key.into_bytes(),
                flags,
                cas,
                data,
            })
    }

    fn reply() -> impl Strategy<Value = Reply> {
        prop_oneof![
            proptest::collection::vec(item(), 0..3).prop_map(Reply::Values),
            Just(Reply::Stored),
            Just(Reply::NotStored),
            Just(Reply::Exists),
            Just(Reply::NotFound),
            Just(Reply::Deleted),
            Just(Reply::Touched),
            Just(Reply::Error),
            "[ -~]{0,30}".prop_map(Reply::ClientError),
            "[ -~]{0,30}".prop_map(Reply::ServerError),
        ]
    }

    proptest! {
        /// Encoded replies parse back whole, in any number of chunks, and leave what follows.
        #[test]
        fn replies_round_trip(r in reply(), trailer in proptest::collection::vec(any::<u8>(), 0..8)) {
            let bytes = encode_reply(&r);
            let mut with_trailer = bytes.clone();
            with_trailer.extend_from_slice(&trailer);
            prop_assert_eq!(parse_reply(&with_trailer, 64).unwrap(), Some((r, bytes.len())));
            for k in 0..bytes.len() {
                prop_assert_eq!(parse_reply(&bytes[..k], 64).unwrap(), None);
            }
        }

        /// Arbitrary bytes never panic and satisfy the fuzz oracle.
        #[test]
        fn arbitrary_bytes_satisfy_the_oracle(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            prop_assert_eq!(check_parser(&data, 64), Ok(()));
        }

        /// Mostly valid replies with one byte changed satisfy the oracle too.
        #[test]
        fn mutated_replies_satisfy_the_oracle(r in reply(), at in any::<prop::sample::Index>(), b in any::<u8>()) {
            let mut bytes = encode_reply(&r);
            let i = at.index(bytes.len());
            bytes[i] = b;
            prop_assert_eq!(check_parser(&bytes, 64), Ok(()));
        }
    }
}
