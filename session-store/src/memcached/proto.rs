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
    /// `HD`, a meta command's success, with the item's new CAS unique when the command asked
    /// for it (flag `c`: `HD c<unique>`). Meta `NS`, `EX` and `NF` parse as
    /// [`NotStored`](Self::NotStored), [`Exists`](Self::Exists) and
    /// [`NotFound`](Self::NotFound).
    Hd(Option<u64>),
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
            Self::Hd(_) => "HD",
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
        if items.is_empty()
            && let Some(reply) = meta_status(l)?
        {
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

/// A meta command's status line (`HD`, `NS`, `EX`, `NF`, each maybe followed by return flags),
/// or `None` if `l` is not one. Of the return flags only `c<unique>` is read; others are
/// skipped.
fn meta_status(l: &[u8]) -> Result<Option<Reply>, ProtocolError> {
    let mut words = l.split(|&b| b == b' ');
    let status = match words.next() {
        Some(b"HD") => Reply::Hd(None),
        Some(b"NS") => Reply::NotStored,
        Some(b"EX") => Reply::Exists,
        Some(b"NF") => Reply::NotFound,
        _ => return Ok(None),
    };
    let mut cas = None;
    for w in words {
        match w.split_first() {
            Some((b'c', digits)) => cas = Some(number::<u64>("cas", Some(digits))?),
            Some(_) => {}
            // Two spaces in a row, or a trailing one: not what a server writes.
            None => return Err(ProtocolError::UnknownReply { len: l.len() }),
        }
    }
    Ok(Some(match status {
        Reply::Hd(_) => Reply::Hd(cas),
        other => other,
    }))
}

fn message(after_word: &[u8]) -> String {
    String::from_utf8_lossy(after_word.strip_prefix(b" ").unwrap_or(after_word)).into_owned()
}

/// Appends a meta set that returns the new CAS unique (`ms <key> <len> T<exptime> c`): with
/// `cas`, only if the item's unique is still `cas` (`C<cas>`; `EX` if it changed, `NF` if it is
/// gone); without, only if the key is absent (mode `E`, like `add`; `NS` if present). Client
/// flags are 0, as the text commands store them.
pub(crate) fn meta_set(out: &mut Vec<u8>, key: &str, exptime: u32, data: &[u8], cas: Option<u64>) {
    out.extend_from_slice(b"ms ");
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(format!(" {} T{exptime} c", data.len()).as_bytes());
    match cas {
        Some(c) => out.extend_from_slice(format!(" C{c}").as_bytes()),
        None => out.extend_from_slice(b" ME"),
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
        Reply::Hd(Some(c)) => out.extend_from_slice(format!("HD c{c}\r\n").as_bytes()),
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
    fn meta_statuses() {
        let p = |b: &[u8]| parse_reply(b, 10);
        assert_eq!(p(b"HD c17\r\n").unwrap(), Some((Reply::Hd(Some(17)), 8)));
        assert_eq!(p(b"HD\r\n").unwrap(), Some((Reply::Hd(None), 4)));
        assert_eq!(
            p(b"HD k t5 c9\r\n").unwrap(),
            Some((Reply::Hd(Some(9)), 12))
        );
        assert_eq!(p(b"EX c0\r\n").unwrap(), Some((Reply::Exists, 7)));
        assert_eq!(p(b"NS\r\n").unwrap(), Some((Reply::NotStored, 4)));
        assert_eq!(p(b"NF\r\n").unwrap(), Some((Reply::NotFound, 4)));
        assert_eq!(
            p(b"HD cx\r\n"),
            Err(ProtocolError::BadValueLine { field: "cas" })
        );
        assert_eq!(
            p(b"HD  c1\r\n"),
            Err(ProtocolError::UnknownReply { len: 6 })
        );
        assert_eq!(p(b"HDX\r\n"), Err(ProtocolError::UnknownReply { len: 3 }));
        assert_eq!(p(b"HD c1").unwrap(), None);
    }

    #[test]
    fn commands_are_framed() {
        let mut out = Vec::new();
        meta_set(&mut out, "s:k", 60, b"v", Some(7));
        assert_eq!(out, b"ms s:k 1 T60 c C7\r\nv\r\n");
        out.clear();
        meta_set(&mut out, "s:k", 0, b"", None);
        assert_eq!(out, b"ms s:k 0 T0 c ME\r\n\r\n");
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
            proptest::option::of(any::<u64>()).prop_map(Reply::Hd),
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
