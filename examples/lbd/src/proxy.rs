//! The request path: location matching, the proxy with `proxy_next_upstream` retries, and the
//! response body that returns the upstream connection to its pool when it ends.

use std::convert::Infallible;
use std::io::Write as _;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::request::Parts;
use http::{Method, Request, Response, StatusCode, Version};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use lvs_sched::{DestId, Flow};
use tokio::time::Sleep;

use super::State;
use super::client::{BodyReader, ClientError, Conn, Head};
use super::config::{NextUpstream, ProxyConf};
use super::idle::Busy;
use super::log::{Attempt, Record};
use super::template::{Ctx, Template, cookie};
use super::upstream::{Outcome, Picked, Upstream, connect};

/// The body of every response `lbd` sends.
#[derive(Debug)]
pub enum RespBody {
    /// A body made here (status page, errors).
    Full(Full<Bytes>),
    /// An upstream body, streamed.
    Upstream(Box<UpstreamBody>),
}

impl RespBody {
    fn text(s: &'static str) -> Self {
        Self::Full(Full::new(Bytes::from_static(s.as_bytes())))
    }
}

/// A response body that holds its connection's [`Busy`] mark until hyper has sent it all (or
/// dropped it), so that the header timeout does not run meanwhile.
#[derive(Debug)]
pub struct Tracked {
    body: RespBody,
    _busy: Busy,
}

impl Tracked {
    /// `body`, with the request counted as in progress until it is dropped.
    #[must_use]
    pub const fn new(body: RespBody, busy: Busy) -> Self {
        Self { body, _busy: busy }
    }
}

impl Body for Tracked {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }
    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }
    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Why a proxied body stopped.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The upstream was silent for longer than `proxy_read_timeout`.
    #[error("upstream timed out while sending the response body (raise proxy_read_timeout?)")]
    Timeout,
    /// The upstream connection failed mid-body.
    #[error("upstream failed mid-response: {0}")]
    Upstream(#[from] ClientError),
}

impl Body for RespBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match self.get_mut() {
            Self::Full(f) => Pin::new(f)
                .poll_frame(cx)
                .map_err(|e: Infallible| match e {}),
            Self::Upstream(u) => u.poll(cx),
        }
    }
    fn is_end_stream(&self) -> bool {
        match self {
            Self::Full(f) => f.is_end_stream(),
            Self::Upstream(u) => u.held.is_none() && (u.done.is_none() || u.inner.is_end()),
        }
    }
    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Full(f) => f.size_hint(),
            Self::Upstream(u) => u
                .inner
                .exact_len()
                .map_or_else(SizeHint::default, SizeHint::with_exact),
        }
    }
}

/// What to do when an upstream body ends.
#[derive(Debug)]
struct Done {
    state: Arc<State>,
    picked: Picked,
    record: Record,
    status: u16,
    outcome: Outcome,
}

impl Done {
    /// `conn`: the connection, when the response was complete and it may carry another.
    fn finish(self, conn: Option<Conn>, clean: bool, bytes: u64) {
        if let Some(conn) = conn
            && let Some(p) = self.picked.upstream().peers.get(self.picked.id().0)
        {
            p.pool.put(conn);
        }
        // A body cut short is not an upstream failure in nginx's accounting.
        let outcome = if clean { self.outcome } else { Outcome::Next };
        self.picked.release(outcome);
        self.record
            .write(self.state.log(self.record.log), self.status, bytes);
    }
}

/// An upstream response body being streamed to the client.
#[derive(Debug)]
pub struct UpstreamBody {
    inner: BodyReader,
    done: Option<Done>,
    read_timeout: Duration,
    sleep: Option<Pin<Box<Sleep>>>,
    bytes: u64,
    /// Data was handed out since the last `Pending`: an error is held back for one poll so
    /// that the client gets those bytes before its connection is aborted.
    fresh: bool,
    held: Option<BodyError>,
}

impl UpstreamBody {
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        if let Some(e) = self.held.take() {
            return Poll::Ready(Some(Err(e)));
        }
        if self.done.is_none() {
            return Poll::Ready(None);
        }
        match self.inner.poll_data(cx) {
            Poll::Ready(Some(Ok(data))) => {
                self.fresh = true;
                self.bytes += data.len() as u64;
                if let Some(s) = &mut self.sleep {
                    s.as_mut()
                        .reset(tokio::time::Instant::now() + self.read_timeout);
                }
                if self.inner.is_end() {
                    // The last bytes: hand the connection back now rather than on the next
                    // poll, so that the next request can use it at once.
                    self.finish_clean();
                }
                Poll::Ready(Some(Ok(Frame::data(data))))
            }
            Poll::Ready(Some(Err(e))) => {
                if let Some(d) = self.done.take() {
                    d.finish(None, false, self.bytes);
                }
                if std::mem::take(&mut self.fresh) {
                    // Let hyper flush what it has (it does on `Pending`), then fail.
                    self.held = Some(BodyError::Upstream(e));
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                Poll::Ready(Some(Err(BodyError::Upstream(e))))
            }
            Poll::Ready(None) => {
                self.finish_clean();
                Poll::Ready(None)
            }
            Poll::Pending => {
                self.fresh = false;
                let t = self.read_timeout;
                let s = self
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(t)));
                ready!(s.as_mut().poll(cx));
                if let Some(d) = self.done.take() {
                    d.finish(None, false, self.bytes);
                }
                Poll::Ready(Some(Err(BodyError::Timeout)))
            }
        }
    }

    /// The body is complete: account it and pool the connection if it may be reused.
    fn finish_clean(&mut self) {
        if let Some(d) = self.done.take() {
            let conn = self.inner.take_reusable();
            d.finish(conn, true, self.bytes);
        }
    }
}

impl Drop for UpstreamBody {
    fn drop(&mut self) {
        if self.done.is_some() {
            if self.inner.is_end() {
                self.finish_clean();
            } else if let Some(d) = self.done.take() {
                // The client went away (or the body was never polled to its end).
                d.finish(None, false, self.bytes);
            }
        }
    }
}

/// The client connection a request came on.
#[derive(Clone, Copy, Debug)]
pub struct ConnInfo {
    /// The client.
    pub remote: SocketAddr,
    /// The listening address.
    pub local: SocketAddr,
}

/// A location's handler at run time.
#[derive(Debug)]
pub enum Handler {
    /// Proxy to an upstream.
    Proxy(Box<ProxyRt>),
    /// Answer the node name.
    Status(Bytes),
    /// A fixed answer.
    Return(StatusCode, Bytes),
}

/// A header to set on upstream requests.
#[derive(Debug)]
pub enum SetHeader {
    /// A constant value (computed once).
    Fixed(HeaderName, HeaderValue),
    /// A value with variables.
    Dynamic(HeaderName, Template),
    /// An empty value: the header is not sent.
    Remove(HeaderName),
}

impl SetHeader {
    /// The header it sets.
    #[must_use]
    pub const fn name(&self) -> &HeaderName {
        match self {
            Self::Fixed(n, _) | Self::Dynamic(n, _) | Self::Remove(n) => n,
        }
    }
}

/// A proxy location at run time.
#[derive(Debug)]
pub struct ProxyRt {
    /// The settings.
    pub conf: ProxyConf,
    /// The upstream.
    pub upstream: Arc<Upstream>,
    /// The headers to set, in order.
    pub set_headers: Vec<SetHeader>,
    /// Whether `Host` is among them (otherwise `$proxy_host` is sent, as nginx does).
    pub sets_host: bool,
    /// `Host: $proxy_host`.
    pub default_host: Option<HeaderValue>,
    /// Whether a header is set more than once (the last value wins).
    pub dup_names: bool,
}

impl ProxyRt {
    /// Build from the configuration.
    #[must_use]
    pub fn new(conf: ProxyConf, upstream: Arc<Upstream>) -> Self {
        let set_headers = conf
            .set_headers
            .iter()
            .map(|(n, t)| match t.as_literal() {
                Some("") => SetHeader::Remove(n.clone()),
                Some(s) => match HeaderValue::from_str(s) {
                    Ok(v) => SetHeader::Fixed(n.clone(), v),
                    Err(_) => SetHeader::Remove(n.clone()),
                },
                None => SetHeader::Dynamic(n.clone(), t.clone()),
            })
            .collect();
        let sets_host = conf.set_headers.iter().any(|(n, _)| n == header::HOST);
        let default_host = HeaderValue::from_str(&upstream.name).ok();
        let dup_names = conf
            .set_headers
            .iter()
            .enumerate()
            .any(|(i, (n, _))| conf.set_headers.iter().skip(i + 1).any(|(m, _)| m == n));
        Self {
            conf,
            upstream,
            set_headers,
            sets_host,
            default_host,
            dup_names,
        }
    }
}

/// A `server` block at run time: exact locations, then prefixes longest first.
#[derive(Debug, Default)]
pub struct ServerRt {
    /// `location = PATH`: its handler and access log (an index for [`State::log`]).
    pub exact: Vec<(Box<str>, Handler, usize)>,
    /// `location PATH`, longest first.
    pub prefix: Vec<(Box<str>, Handler, usize)>,
    /// The server's access log, for requests no location takes.
    pub log: usize,
}

impl ServerRt {
    /// The handler for `path` (nginx: exact match, else the longest prefix) and the index of
    /// its access log.
    #[must_use]
    pub fn find(&self, path: &str) -> Option<(&Handler, usize)> {
        self.exact
            .iter()
            .find(|(p, ..)| &**p == path)
            .or_else(|| self.prefix.iter().find(|(p, ..)| path.starts_with(&**p)))
            .map(|(_, h, log)| (h, *log))
    }
}

fn simple(status: StatusCode, body: &'static str) -> Response<RespBody> {
    let mut r = Response::new(RespBody::text(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
    r
}

fn error_page(status: StatusCode) -> Response<RespBody> {
    let body = match status {
        StatusCode::BAD_REQUEST => "<html><body><h1>400 Bad Request</h1></body></html>\n",
        StatusCode::NOT_FOUND => "<html><body><h1>404 Not Found</h1></body></html>\n",
        StatusCode::PAYLOAD_TOO_LARGE => {
            "<html><body><h1>413 Request Entity Too Large</h1></body></html>\n"
        }
        StatusCode::GATEWAY_TIMEOUT => "<html><body><h1>504 Gateway Time-out</h1></body></html>\n",
        _ => "<html><body><h1>502 Bad Gateway</h1></body></html>\n",
    };
    simple(status, body)
}

/// The service function of a client connection.
///
/// # Errors
/// Never: every failure becomes an HTTP error response.
pub async fn handle(
    state: Arc<State>,
    server: usize,
    conn: ConnInfo,
    req: Request<Incoming>,
) -> Result<Response<RespBody>, Infallible> {
    let start = std::time::Instant::now();
    let (parts, body) = req.into_parts();
    let (handler, log) = match state.servers.get(server) {
        Some(s) => s
            .find(parts.uri.path())
            .map_or((None, s.log), |(h, log)| (Some(h), log)),
        None => (None, 0),
    };
    let record = Record::new(&parts, conn.remote, start, state.log(log), log);
    let resp = match handler {
        None => error_page(StatusCode::NOT_FOUND),
        Some(Handler::Status(text)) => {
            let mut r = Response::new(RespBody::Full(Full::new(text.clone())));
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Some(Handler::Return(status, text)) => {
            let mut r = Response::new(RespBody::Full(Full::new(text.clone())));
            *r.status_mut() = *status;
            r
        }
        Some(Handler::Proxy(p)) => {
            return Ok(proxy(&state, p, conn, parts, body, record).await);
        }
    };
    let bytes = resp.body().size_hint().exact().unwrap_or(0);
    record.write(state.log(record.log), resp.status().as_u16(), bytes);
    Ok(resp)
}

/// Hop-by-hop headers (RFC 9110 §7.6.1) and the ones `lbd` computes itself.
fn skip_request_header(n: &HeaderName) -> bool {
    n == header::CONNECTION
        || n == header::TE
        || n == header::TRAILER
        || n == header::TRANSFER_ENCODING
        || n == header::UPGRADE
        || n == header::HOST
        || n == header::CONTENT_LENGTH
        || n == header::PROXY_AUTHORIZATION
        || n == header::EXPECT
        || n.as_str() == "keep-alive"
        || n.as_str() == "proxy-connection"
}

fn skip_response_header(n: &HeaderName) -> bool {
    n == header::CONNECTION
        || n == header::TRANSFER_ENCODING
        || n == header::UPGRADE
        || n == header::TRAILER
        || n.as_str() == "keep-alive"
        || n.as_str() == "proxy-connection"
}

/// Names listed in the `Connection` header (also hop-by-hop).
fn in_connection(parts: &Parts, n: &HeaderName) -> bool {
    parts.headers.get_all(header::CONNECTION).iter().any(|v| {
        v.as_bytes()
            .split(|&c| c == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(n.as_str().as_bytes()))
    })
}

/// Append `name: value\r\n`.
fn header_line(out: &mut Vec<u8>, name: &HeaderName, value: &[u8]) {
    out.extend_from_slice(name.as_str().as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Serialize the upstream request head into `out`: the client's method and target, its
/// end-to-end headers, then `Host` and the `proxy_set_header` ones, then `Content-Length`.
fn write_request(
    parts: &Parts,
    rt: &ProxyRt,
    ctx: &Ctx<'_>,
    body_len: usize,
    scratch: &mut Vec<u8>,
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(parts.method.as_str().as_bytes());
    out.push(b' ');
    let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    out.extend_from_slice(if target.is_empty() { "/" } else { target }.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let has_conn = parts.headers.contains_key(header::CONNECTION);
    for (n, v) in &parts.headers {
        if skip_request_header(n)
            || rt.set_headers.iter().any(|s| s.name() == n)
            || (has_conn && in_connection(parts, n))
        {
            continue;
        }
        header_line(out, n, v.as_bytes());
    }
    if !rt.sets_host
        && let Some(h) = &rt.default_host
    {
        header_line(out, &header::HOST, h.as_bytes());
    }
    for (i, s) in rt.set_headers.iter().enumerate() {
        // A later setting of the same header that yields a value wins (as a map insert).
        let overridden = |scratch: &mut Vec<u8>| {
            rt.set_headers.iter().skip(i + 1).any(|later| {
                later.name() == s.name()
                    && match later {
                        SetHeader::Fixed(..) => true,
                        SetHeader::Remove(_) => false,
                        SetHeader::Dynamic(_, t) => {
                            scratch.clear();
                            t.eval(ctx, scratch);
                            !scratch.is_empty() && HeaderValue::from_bytes(scratch).is_ok()
                        }
                    }
            })
        };
        match s {
            SetHeader::Fixed(n, v) => {
                if !rt.dup_names || !overridden(scratch) {
                    header_line(out, n, v.as_bytes());
                }
            }
            SetHeader::Dynamic(n, t) => {
                if rt.dup_names && overridden(scratch) {
                    continue;
                }
                scratch.clear();
                t.eval(ctx, scratch);
                if !scratch.is_empty() && HeaderValue::from_bytes(scratch).is_ok() {
                    header_line(out, n, scratch);
                }
            }
            SetHeader::Remove(_) => {}
        }
    }
    if body_len > 0 || parts.headers.contains_key(header::CONTENT_LENGTH) {
        let _ = write!(out, "content-length: {body_len}\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// How an attempt failed.
#[derive(Debug)]
enum Fail {
    /// `error`: connect failure or I/O error; `sent` says whether the request may have
    /// reached the server.
    Error { sent: bool },
    /// `timeout`.
    Timeout { sent: bool },
    /// `invalid_header`: the response could not be parsed.
    InvalidHeader,
}

impl Fail {
    const fn bit(&self) -> u16 {
        match self {
            Self::Error { .. } => NextUpstream::ERROR,
            Self::Timeout { .. } => NextUpstream::TIMEOUT,
            Self::InvalidHeader => NextUpstream::INVALID_HEADER,
        }
    }
    const fn sent(&self) -> bool {
        match self {
            Self::Error { sent } | Self::Timeout { sent } => *sent,
            Self::InvalidHeader => true,
        }
    }
}

/// One try on server `id`: a pooled connection (replaced once if it turns out stale) or a
/// new one, then the request, then the response head.
/// `t0`: when the attempt starts (the timeouts count from it).
async fn attempt(
    rt: &ProxyRt,
    id: DestId,
    idempotent: bool,
    head_request: bool,
    body: &Bytes,
    t0: std::time::Instant,
    mut make: impl FnMut(&mut Vec<u8>),
) -> Result<(Head, Conn), Fail> {
    let Some(peer) = rt.upstream.peers.get(id.0) else {
        return Err(Fail::Error { sent: false });
    };
    let conf = &rt.conf;
    // proxy_read_timeout covers the wait for the response header; a request body adds
    // proxy_send_timeout for sending it.
    let wait = if body.is_empty() {
        conf.read_timeout
    } else {
        conf.read_timeout.saturating_add(conf.send_timeout)
    };
    let deadline = tokio::time::Instant::from_std(t0) + wait;
    let mut stale_retry = true;
    loop {
        let (mut conn, pooled) = match peer.pool.take(t0) {
            Some(c) => (c, true),
            None => match connect(peer.addr, conf.connect_timeout).await {
                Ok(c) => (c, false),
                Err(super::upstream::ConnectError::Timeout) => {
                    return Err(Fail::Timeout { sent: false });
                }
                Err(_) => return Err(Fail::Error { sent: false }),
            },
        };
        make(conn.request_buf());
        // A fresh connection's wait counts from the end of the connect.
        let deadline = if pooled {
            deadline
        } else {
            tokio::time::Instant::now() + wait
        };
        let res = conn.exchange(body, head_request, deadline).await;
        match res {
            Err(_) => return Err(Fail::Timeout { sent: true }),
            Ok(Ok(head)) => return Ok((head, conn)),
            Ok(Err((e, sent))) => {
                // A kept-alive connection the server closed meanwhile: not the server's
                // fault, try a fresh connection once (nginx does the same for cached ones).
                if pooled
                    && stale_retry
                    && matches!(e, ClientError::Closed | ClientError::Io(_))
                    && (!sent || idempotent)
                {
                    stale_retry = false;
                    continue;
                }
                if matches!(e, ClientError::Invalid(_) | ClientError::TooLarge) {
                    return Err(Fail::InvalidHeader);
                }
                return Err(Fail::Error { sent });
            }
        }
    }
}

async fn read_body(body: Incoming, limit: u64) -> Result<Bytes, StatusCode> {
    if body.is_end_stream() {
        return Ok(Bytes::new());
    }
    if limit != 0
        && let Some(n) = body.size_hint().exact()
        && n > limit
    {
        return Err(StatusCode::PAYLOAD_TOO_LARGE);
    }
    let limit = if limit == 0 {
        usize::MAX
    } else {
        usize::try_from(limit).unwrap_or(usize::MAX)
    };
    match Limited::new(body, limit).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(StatusCode::PAYLOAD_TOO_LARGE),
        Err(_) => Err(StatusCode::BAD_REQUEST),
    }
}

async fn proxy(
    state: &Arc<State>,
    rt: &ProxyRt,
    conn: ConnInfo,
    parts: Parts,
    body: Incoming,
    mut record: Record,
) -> Response<RespBody> {
    let fail = |status: StatusCode, record: &Record| {
        let r = error_page(status);
        let bytes = r.body().size_hint().exact().unwrap_or(0);
        record.write(state.log(record.log), status.as_u16(), bytes);
        r
    };
    let body = match read_body(body, rt.conf.client_max_body_size).await {
        Ok(b) => b,
        Err(s) => return fail(s, &record),
    };
    let up = &rt.upstream;
    let conf = &rt.conf;
    let ctx = Ctx {
        req: &parts,
        remote: conn.remote,
        local: conn.local,
        proxy_host: &up.name,
        node_name: &state.node_name,
    };
    let mut key = Vec::new();
    if let Some(t) = &up.hash_key {
        t.eval(&ctx, &mut key);
    }
    let mut flow = Flow::tcp(conn.remote, conn.local);
    if up.hash_key.is_some() {
        flow = flow.with_key(&key);
    }
    let sticky = up.sticky_cookie.as_deref().and_then(|c| cookie(&parts, c));
    let head_request = parts.method == Method::HEAD;
    let idempotent = !(parts.method == Method::POST
        || parts.method == Method::PATCH
        || parts.method.as_str() == "LOCK");
    let max_tries = match conf.tries {
        0 => up.peers.len(),
        n => (n as usize).min(up.peers.len()),
    }
    .max(1);
    let start = record.start;
    let mut tried = super::upstream::Tried::default();
    let mut scratch = Vec::new();
    // The status answered if no server is left.
    let mut last_status = StatusCode::BAD_GATEWAY;
    // The time of each try: the request's start for the first (one clock read serves the
    // choice, the pool's idle check and the timeout) unless reading a body took time, read
    // again for a retry.
    let mut t0 = if body.is_empty() {
        start
    } else {
        std::time::Instant::now()
    };
    while let Some(id) = {
        let sticky = if tried.is_empty() {
            sticky
        } else {
            t0 = std::time::Instant::now();
            None
        };
        up.pick(&flow, &mut tried, sticky, t0)
    } {
        tried.push(id);
        let picked = Picked::new(up, id);
        let addr = up.peers.get(id.0).map_or(conn.local, |p| p.addr);
        let res = attempt(rt, id, idempotent, head_request, &body, t0, |out| {
            write_request(&parts, rt, &ctx, body.len(), &mut scratch, out);
        })
        .await;
        // Only the access log wants the time of each try.
        let took = || {
            if record.enabled {
                t0.elapsed()
            } else {
                Duration::ZERO
            }
        };
        let may_retry = |sent: bool| {
            tried.len() < max_tries
                && (conf.next_timeout.is_zero() || start.elapsed() < conf.next_timeout)
                && (!sent || idempotent || conf.next_upstream.has(NextUpstream::NON_IDEMPOTENT))
        };
        match res {
            Ok((resp, conn)) => {
                let status = resp.status.as_u16();
                record.attempt(Attempt {
                    addr,
                    status,
                    time: took(),
                });
                let bit = NextUpstream::status_bit(status).filter(|&b| conf.next_upstream.has(b));
                let outcome = match bit {
                    Some(NextUpstream::HTTP_403 | NextUpstream::HTTP_404) => Outcome::Next,
                    Some(_) => Outcome::Failure,
                    None => Outcome::Success,
                };
                if bit.is_some() && may_retry(true) {
                    // Drop this response; its connection is not reused.
                    picked.release(outcome);
                    continue;
                }
                return respond(state, rt, picked, resp, conn, sticky, record, outcome);
            }
            Err(f) => {
                record.attempt(Attempt {
                    addr,
                    status: 0,
                    time: took(),
                });
                picked.release(Outcome::Failure);
                last_status = if matches!(f, Fail::Timeout { .. }) {
                    StatusCode::GATEWAY_TIMEOUT
                } else {
                    StatusCode::BAD_GATEWAY
                };
                if conf.next_upstream.has(f.bit()) && may_retry(f.sent()) {
                    continue;
                }
                break;
            }
        }
    }
    fail(last_status, &record)
}

#[allow(clippy::too_many_arguments)]
fn respond(
    state: &Arc<State>,
    rt: &ProxyRt,
    picked: Picked,
    head: Head,
    conn: Conn,
    sticky: Option<&[u8]>,
    record: Record,
    outcome: Outcome,
) -> Response<RespBody> {
    let inner = BodyReader::new(conn, &head);
    let mut resp = Response::new(());
    *resp.status_mut() = head.status;
    *resp.headers_mut() = head.headers;
    let (mut parts, ()) = resp.into_parts();
    let status = parts.status.as_u16();
    if parts.headers.contains_key(header::CONNECTION) {
        let names: Vec<HeaderName> = parts
            .headers
            .get_all(header::CONNECTION)
            .iter()
            .flat_map(|v| v.as_bytes().split(|&c| c == b','))
            .filter_map(|t| HeaderName::from_bytes(t.trim_ascii()).ok())
            .collect();
        for n in names {
            parts.headers.remove(n);
        }
    }
    let drop_names: Vec<HeaderName> = parts
        .headers
        .keys()
        .filter(|n| skip_response_header(n))
        .cloned()
        .collect();
    for n in drop_names {
        parts.headers.remove(n);
    }
    let up = &rt.upstream;
    if let Some(p) = up.peers.get(picked.id().0)
        && let Some(sc) = &p.set_cookie
        && sticky != Some(p.cookie_value.as_bytes())
    {
        parts.headers.append(header::SET_COOKIE, sc.clone());
    }
    parts.version = Version::HTTP_11;
    let body = UpstreamBody {
        inner,
        done: Some(Done {
            state: Arc::clone(state),
            picked,
            record,
            status,
            outcome,
        }),
        read_timeout: rt.conf.read_timeout,
        sleep: None,
        bytes: 0,
        fresh: false,
        held: None,
    };
    Response::from_parts(parts, RespBody::Upstream(Box::new(body)))
}
