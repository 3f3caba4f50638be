//! The HTTP/1.1 client side of the proxy: one upstream connection driven by the request that
//! uses it (no connection task, no channels), writing the request in one go and reading the
//! response head and body straight from the socket into one buffer, whose bytes are handed on
//! without copying.
//!
//! Response bodies are framed as RFC 9112 §6.3 says: none for `HEAD`, 1xx, 204 and 304;
//! chunked when `Transfer-Encoding` ends in `chunked` (trailers are read and dropped, as
//! nginx does); `Content-Length`; otherwise until the upstream closes (then the connection is
//! not reused). A connection goes back to the keep-alive pool only after a complete response
//! that did not ask to close it and with nothing unread behind it.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf as _, Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{StatusCode, Version};
use tokio::io::{AsyncWriteExt as _, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

/// The largest response head accepted (nginx answers 502 "upstream sent too big header" past
/// its `proxy_buffer_size`).
pub const MAX_HEAD: usize = 64 * 1024;
/// The most response header fields accepted.
const MAX_HEADERS: usize = 128;
/// How much is read from the socket at a time.
const READ_CHUNK: usize = 16 * 1024;
/// The longest chunk-size line (with extensions) accepted.
const MAX_CHUNK_LINE: usize = 4096;

/// Why an exchange with an upstream failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Reading or writing the socket failed.
    #[error("upstream I/O: {0}")]
    Io(#[from] io::Error),
    /// The upstream closed the connection before a complete response head.
    #[error("upstream closed the connection before a complete response header")]
    Closed,
    /// The response head could not be parsed.
    #[error("upstream sent an invalid header: {0}")]
    Invalid(&'static str),
    /// The response head is larger than [`MAX_HEAD`].
    #[error("upstream sent too big a header (more than {MAX_HEAD} bytes)")]
    TooLarge,
    /// The body ended before its announced length.
    #[error("upstream closed the connection before the end of the body")]
    Incomplete,
    /// The chunked body is malformed.
    #[error("upstream sent an invalid chunked body")]
    BadChunk,
}

/// The upstream did not answer in time (see [`Conn::exchange`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimedOut;

/// How the body of a response is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// `n` bytes still to come.
    Length(u64),
    /// Chunked, in the given state.
    Chunked(Chunk),
    /// Until the upstream closes.
    Eof,
    /// Complete.
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Expecting a chunk-size line.
    Size,
    /// Inside a chunk: `n` data bytes left.
    Data(u64),
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// After the last chunk: trailer lines until an empty one.
    Trailers,
}

/// One connection to an upstream server.
#[derive(Debug)]
pub struct Conn {
    stream: TcpStream,
    buf: BytesMut,
    scratch: Box<[u8]>,
    out: Vec<u8>,
    /// The timer of [`Conn::exchange`], kept from one request to the next: moving a
    /// registered deadline forward costs tokio no lock, a new timer does.
    sleep: Option<Pin<Box<Sleep>>>,
}

impl Conn {
    /// Wrap a connected stream.
    #[must_use]
    pub fn new(stream: TcpStream) -> Self {
        Self {
            stream,
            buf: BytesMut::new(),
            scratch: vec![0; READ_CHUNK].into_boxed_slice(),
            out: Vec::new(),
            sleep: None,
        }
    }

    /// Send the request serialized with [`Conn::request_buf`] and `body`, then read the
    /// response head, all before `deadline`.
    ///
    /// # Errors
    /// [`TimedOut`] when the time ran out; otherwise as [`Conn::send`] and
    /// [`Conn::read_head`] (the flag tells whether any of the request may have been written).
    pub async fn exchange(
        &mut self,
        body: &Bytes,
        head_request: bool,
        deadline: Instant,
    ) -> Result<Result<Head, (ClientError, bool)>, TimedOut> {
        let mut sleep = match self.sleep.take() {
            Some(mut s) => {
                s.as_mut().reset(deadline);
                s
            }
            None => Box::pin(tokio::time::sleep_until(deadline)),
        };
        let res = {
            let work = async {
                // Let the other connections of this thread that are ready run first, and send
                // after the next poll for events: the requests of one round of the event loop
                // then reach the upstreams together, and an upstream takes several of them per
                // wake-up instead of being woken for each (lbd-bench: +4 % to +12 %
                // requests/s, a lower p99; half the upstreams' context switches). The delay is
                // one pass over the ready connections.
                tokio::task::yield_now().await;
                self.send(body).await?;
                self.read_head(head_request).await.map_err(|e| (e, true))
            };
            let mut work = std::pin::pin!(work);
            std::future::poll_fn(|cx| {
                if let Poll::Ready(r) = work.as_mut().poll(cx) {
                    return Poll::Ready(Ok(r));
                }
                if sleep.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Err(TimedOut));
                }
                Poll::Pending
            })
            .await
        };
        self.sleep = Some(sleep);
        res
    }

    /// Whether an idle connection can still be used: the upstream has neither closed it nor
    /// sent anything unasked (no system call unless the socket was reported readable).
    #[must_use]
    pub fn is_reusable(&self) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        let mut probe = [0u8; 1];
        matches!(self.stream.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    /// The buffer the request is serialized into (cleared).
    pub fn request_buf(&mut self) -> &mut Vec<u8> {
        self.out.clear();
        &mut self.out
    }

    /// Send the request serialized with [`Conn::request_buf`], then `body`. `Err((error,
    /// written))` tells whether any byte was written.
    ///
    /// # Errors
    /// The I/O error, and whether part of the request was written.
    pub async fn send(&mut self, body: &Bytes) -> Result<(), (ClientError, bool)> {
        if !body.is_empty() && body.len() <= 16 * 1024 {
            self.out.extend_from_slice(body);
        }
        let mut written = 0;
        while written < self.out.len() {
            match self.stream.write(&self.out[written..]).await {
                Ok(0) => return Err((ClientError::Closed, written > 0)),
                Ok(n) => written += n,
                Err(e) => return Err((ClientError::Io(e), written > 0)),
            }
        }
        if body.len() > 16 * 1024 {
            self.stream
                .write_all(body)
                .await
                .map_err(|e| (ClientError::Io(e), true))?;
        }
        Ok(())
    }

    async fn fill(&mut self) -> Result<usize, ClientError> {
        let n = std::future::poll_fn(|cx| {
            poll_fill(&mut self.stream, &mut self.scratch, &mut self.buf, cx)
        })
        .await?;
        Ok(n)
    }

    /// Read the response head (skipping 1xx interim responses). `head_request`: the request
    /// was `HEAD`, so the response has no body whatever its header says.
    ///
    /// # Errors
    /// [`ClientError`]; [`ClientError::Closed`] when the upstream closed before sending
    /// anything (a kept-alive connection it had given up on).
    pub async fn read_head(&mut self, head_request: bool) -> Result<Head, ClientError> {
        loop {
            if !self.buf.is_empty() {
                let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
                let mut resp = httparse::Response::new(&mut slots);
                match resp.parse(&self.buf) {
                    Ok(httparse::Status::Complete(n)) => {
                        // The header values are slices of the head's bytes rather than copies.
                        let mut fields = [Field::EMPTY; MAX_HEADERS];
                        let parsed = Parsed::of(&resp, &self.buf, &mut fields);
                        let bytes = self.buf.split_to(n).freeze();
                        let head = Head::from_fields(&parsed, &fields, &bytes, head_request)?;
                        if head.status.is_informational()
                            && head.status != StatusCode::SWITCHING_PROTOCOLS
                        {
                            continue;
                        }
                        return Ok(head);
                    }
                    Ok(httparse::Status::Partial) => {
                        if self.buf.len() >= MAX_HEAD {
                            return Err(ClientError::TooLarge);
                        }
                    }
                    Err(httparse::Error::TooManyHeaders) => {
                        return Err(ClientError::Invalid("too many header fields"));
                    }
                    Err(_) => return Err(ClientError::Invalid("malformed response head")),
                }
            }
            let had = self.buf.len();
            if self.fill().await? == 0 {
                return Err(if had == 0 {
                    ClientError::Closed
                } else {
                    ClientError::Invalid("response head cut short")
                });
            }
        }
    }
}

/// Read once from `stream` into `scratch` (initialized once per connection, so that no
/// uninitialized memory is involved) and append what came to `buf`; `Ok(0)` at end of stream.
fn poll_fill(
    stream: &mut TcpStream,
    scratch: &mut [u8],
    buf: &mut BytesMut,
    cx: &mut Context<'_>,
) -> Poll<io::Result<usize>> {
    let mut rb = ReadBuf::new(scratch);
    ready!(tokio::io::AsyncRead::poll_read(
        Pin::new(stream),
        cx,
        &mut rb
    ))?;
    let got = rb.filled();
    buf.extend_from_slice(got);
    Poll::Ready(Ok(got.len()))
}

/// A parsed response head.
#[derive(Debug)]
pub struct Head {
    /// The status.
    pub status: StatusCode,
    /// The version the upstream spoke.
    pub version: Version,
    /// The header fields.
    pub headers: HeaderMap,
    framing: Framing,
    keep_alive: bool,
}

fn has_token(headers: &HeaderMap, name: &HeaderName, token: &[u8]) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.as_bytes()
            .split(|&c| c == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
    })
}

/// Where a header field's name and value lie in the buffer a head was parsed from.
#[derive(Clone, Copy, Debug)]
struct Field {
    name: (usize, usize),
    value: (usize, usize),
}

impl Field {
    const EMPTY: Self = Self {
        name: (0, 0),
        value: (0, 0),
    };
}

/// A parsed status line and the positions of the header fields, so that the buffer can be
/// split off (and its bytes shared by the header values) once the parser lets go of it.
#[derive(Debug)]
struct Parsed {
    code: Option<u16>,
    version: Option<u8>,
    fields: usize,
}

impl Parsed {
    /// Record `r`, parsed from `buf`, with the field positions in `fields`.
    fn of(r: &httparse::Response<'_, '_>, buf: &[u8], fields: &mut [Field]) -> Self {
        let base = buf.as_ptr() as usize;
        // httparse hands out sub-slices of `buf`; anything else is treated as empty.
        let span = |s: &[u8]| {
            let start = (s.as_ptr() as usize).wrapping_sub(base);
            if start <= buf.len() && s.len() <= buf.len() - start {
                (start, start + s.len())
            } else {
                (0, 0)
            }
        };
        let mut n = 0;
        for (h, f) in r.headers.iter().zip(fields.iter_mut()) {
            *f = Field {
                name: span(h.name.as_bytes()),
                value: span(h.value),
            };
            n += 1;
        }
        Self {
            code: r.code,
            version: r.version,
            fields: n,
        }
    }
}

impl Head {
    #[cfg(test)]
    fn from_parsed(
        r: &httparse::Response<'_, '_>,
        text: &[u8],
        head_request: bool,
    ) -> Result<Self, ClientError> {
        let mut fields = [Field::EMPTY; MAX_HEADERS];
        let parsed = Parsed::of(r, text, &mut fields);
        Self::from_fields(
            &parsed,
            &fields,
            &Bytes::copy_from_slice(text),
            head_request,
        )
    }

    /// Build the head from the status line and fields found in `bytes`.
    fn from_fields(
        r: &Parsed,
        fields: &[Field],
        bytes: &Bytes,
        head_request: bool,
    ) -> Result<Self, ClientError> {
        let code = r.code.ok_or(ClientError::Invalid("no status"))?;
        let status =
            StatusCode::from_u16(code).map_err(|_| ClientError::Invalid("bad status code"))?;
        let version = if r.version == Some(1) {
            Version::HTTP_11
        } else {
            Version::HTTP_10
        };
        let fields = fields.get(..r.fields).unwrap_or_default();
        let mut headers = HeaderMap::with_capacity(fields.len());
        for f in fields {
            let name = bytes
                .get(f.name.0..f.name.1)
                .and_then(|n| HeaderName::from_bytes(n).ok())
                .ok_or(ClientError::Invalid("bad header name"))?;
            let value = if f.value.0 < f.value.1 && f.value.1 <= bytes.len() {
                HeaderValue::from_maybe_shared(bytes.slice(f.value.0..f.value.1))
                    .map_err(|_| ClientError::Invalid("bad header value"))?
            } else {
                HeaderValue::from_static("")
            };
            headers.append(name, value);
        }
        let mut keep_alive =
            version == Version::HTTP_11 && !has_token(&headers, &header::CONNECTION, b"close");
        let framing = if head_request
            || status.is_informational()
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED
        {
            Framing::Length(0)
        } else if headers.contains_key(header::TRANSFER_ENCODING) {
            let chunked_last = headers
                .get_all(header::TRANSFER_ENCODING)
                .iter()
                .next_back()
                .and_then(|v| v.as_bytes().rsplit(|&c| c == b',').next())
                .is_some_and(|t| t.trim_ascii().eq_ignore_ascii_case(b"chunked"));
            if chunked_last {
                Framing::Chunked(Chunk::Size)
            } else {
                keep_alive = false;
                Framing::Eof
            }
        } else if headers.contains_key(header::CONTENT_LENGTH) {
            let mut len: Option<u64> = None;
            for v in headers.get_all(header::CONTENT_LENGTH) {
                for part in v.as_bytes().split(|&c| c == b',') {
                    let part = part.trim_ascii();
                    if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
                        return Err(ClientError::Invalid("bad Content-Length"));
                    }
                    let n: u64 = std::str::from_utf8(part)
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .ok_or(ClientError::Invalid("bad Content-Length"))?;
                    if len.is_some_and(|l| l != n) {
                        return Err(ClientError::Invalid("conflicting Content-Length"));
                    }
                    len = Some(n);
                }
            }
            Framing::Length(len.unwrap_or(0))
        } else {
            keep_alive = false;
            Framing::Eof
        };
        if status == StatusCode::SWITCHING_PROTOCOLS {
            keep_alive = false;
        }
        Ok(Self {
            status,
            version,
            headers,
            framing,
            keep_alive,
        })
    }
}

/// A response body being read from its connection.
#[derive(Debug)]
pub struct BodyReader {
    conn: Option<Conn>,
    framing: Framing,
    keep_alive: bool,
}

impl BodyReader {
    /// Start reading the body announced by `head` on `conn`.
    #[must_use]
    pub fn new(conn: Conn, head: &Head) -> Self {
        Self {
            conn: Some(conn),
            framing: head.framing,
            keep_alive: head.keep_alive,
        }
    }

    /// Whether the body is complete.
    #[must_use]
    pub fn is_end(&self) -> bool {
        matches!(self.framing, Framing::Done | Framing::Length(0))
    }

    /// The exact remaining length, when known.
    #[must_use]
    pub fn exact_len(&self) -> Option<u64> {
        match self.framing {
            Framing::Length(n) => Some(n),
            Framing::Done => Some(0),
            _ => None,
        }
    }

    /// The connection, if the body is complete and the connection can carry another request
    /// (it is taken: the reader has none afterwards).
    pub fn take_reusable(&mut self) -> Option<Conn> {
        if !(self.keep_alive && self.is_end()) {
            return None;
        }
        self.conn.take().filter(|c| c.buf.is_empty())
    }

    fn fail(&mut self, e: ClientError) -> Poll<Option<Result<Bytes, ClientError>>> {
        self.framing = Framing::Done;
        self.keep_alive = false;
        Poll::Ready(Some(Err(e)))
    }

    /// The next piece of the body: `None` at its end.
    ///
    /// # Errors
    /// [`ClientError`] when the upstream fails or breaks the framing.
    pub fn poll_data(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, ClientError>>> {
        loop {
            let Some(conn) = self.conn.as_mut() else {
                return Poll::Ready(None);
            };
            let need_more = match self.framing {
                Framing::Done | Framing::Length(0) => {
                    self.framing = Framing::Done;
                    return Poll::Ready(None);
                }
                Framing::Length(left) => {
                    if conn.buf.is_empty() {
                        true
                    } else {
                        let k = usize::try_from(left)
                            .unwrap_or(usize::MAX)
                            .min(conn.buf.len());
                        let data = conn.buf.split_to(k).freeze();
                        self.framing = Framing::Length(left - k as u64);
                        return Poll::Ready(Some(Ok(data)));
                    }
                }
                Framing::Eof => {
                    if conn.buf.is_empty() {
                        true
                    } else {
                        let data = conn.buf.split().freeze();
                        return Poll::Ready(Some(Ok(data)));
                    }
                }
                Framing::Chunked(state) => {
                    match step_chunked(&mut self.framing, &mut conn.buf, state) {
                        Ok(Step::Data(d)) => return Poll::Ready(Some(Ok(d))),
                        Ok(Step::Again) => false,
                        Ok(Step::NeedMore) => true,
                        Err(e) => return self.fail(e),
                    }
                }
            };
            if need_more {
                match ready!(poll_fill(
                    &mut conn.stream,
                    &mut conn.scratch,
                    &mut conn.buf,
                    cx
                )) {
                    Ok(0) if self.framing == Framing::Eof => {
                        self.framing = Framing::Done;
                        return Poll::Ready(None);
                    }
                    Ok(0) => return self.fail(ClientError::Incomplete),
                    Ok(_) => {}
                    Err(e) => return self.fail(ClientError::Io(e)),
                }
            }
        }
    }
}

/// One step of the chunked decoder on the buffered bytes.
fn step_chunked(
    framing: &mut Framing,
    buf: &mut BytesMut,
    state: Chunk,
) -> Result<Step, ClientError> {
    match state {
        Chunk::Size => {
            let Some(eol) = buf.iter().position(|&c| c == b'\n') else {
                if buf.len() > MAX_CHUNK_LINE {
                    return Err(ClientError::BadChunk);
                }
                return Ok(Step::NeedMore);
            };
            let line = &buf[..eol];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let digits = line
                .split(|&c| c == b';')
                .next()
                .unwrap_or_default()
                .trim_ascii();
            if digits.is_empty() || digits.len() > 15 {
                return Err(ClientError::BadChunk);
            }
            let mut size: u64 = 0;
            for &d in digits {
                let v = char::from(d).to_digit(16).ok_or(ClientError::BadChunk)?;
                size = (size << 4) | u64::from(v);
            }
            buf.advance(eol + 1);
            *framing = Framing::Chunked(if size == 0 {
                Chunk::Trailers
            } else {
                Chunk::Data(size)
            });
            Ok(Step::Again)
        }
        Chunk::Data(left) => {
            if buf.is_empty() {
                return Ok(Step::NeedMore);
            }
            let k = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
            let data = buf.split_to(k).freeze();
            let left = left - k as u64;
            *framing = Framing::Chunked(if left == 0 {
                Chunk::DataEnd
            } else {
                Chunk::Data(left)
            });
            Ok(Step::Data(data))
        }
        Chunk::DataEnd => {
            if buf.len() < 2 {
                if buf.first().is_some_and(|&c| c != b'\r') {
                    return Err(ClientError::BadChunk);
                }
                return Ok(Step::NeedMore);
            }
            if &buf[..2] != b"\r\n" {
                return Err(ClientError::BadChunk);
            }
            buf.advance(2);
            *framing = Framing::Chunked(Chunk::Size);
            Ok(Step::Again)
        }
        Chunk::Trailers => {
            let Some(eol) = buf.iter().position(|&c| c == b'\n') else {
                if buf.len() > MAX_HEAD {
                    return Err(ClientError::BadChunk);
                }
                return Ok(Step::NeedMore);
            };
            let empty = eol == 0 || (eol == 1 && buf.first() == Some(&b'\r'));
            buf.advance(eol + 1);
            if empty {
                *framing = Framing::Done;
            }
            Ok(Step::Again)
        }
    }
}

enum Step {
    Data(Bytes),
    Again,
    NeedMore,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn head(text: &str, head_request: bool) -> Result<Head, ClientError> {
        let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut r = httparse::Response::new(&mut slots);
        assert!(r.parse(text.as_bytes()).unwrap().is_complete());
        Head::from_parsed(&r, text.as_bytes(), head_request)
    }

    #[test]
    fn framing() {
        let h = head("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", false).unwrap();
        assert_eq!(h.framing, Framing::Length(5));
        assert!(h.keep_alive);
        let h = head("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true).unwrap();
        assert_eq!(h.framing, Framing::Length(0));
        let h = head(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nConnection: close\r\n\r\n",
            false,
        )
        .unwrap();
        assert_eq!(h.framing, Framing::Chunked(Chunk::Size));
        assert!(!h.keep_alive);
        let h = head("HTTP/1.0 200 OK\r\n\r\n", false).unwrap();
        assert_eq!(h.framing, Framing::Eof);
        assert!(!h.keep_alive);
        let h = head("HTTP/1.1 204 No Content\r\n\r\n", false).unwrap();
        assert_eq!(h.framing, Framing::Length(0));
        assert!(head("HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n", false).is_err());
        assert!(head("HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", false).is_err());
        let h = head("HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\n", false).unwrap();
        assert_eq!(h.framing, Framing::Length(3));
    }
}
