//! The demo's client: logs in once through the VIP, then requests it at a fixed rate, one TCP
//! connection per request (as a browser behind a NAT would open new connections), and records
//! who answered each request, how long it took and what went wrong.
//!
//! Plain blocking sockets on a thread that lives in the client's network namespace; the
//! HTTP/1.1 exchange is written by hand (`Connection: close`, read to EOF) so that nothing in
//! an HTTP client library (pools, retries) hides a failure.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

/// The largest response the client reads (the demo's answers are one short line).
const MAX_RESPONSE: usize = 16 * 1024;

/// What one request got.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// `200 OK` with the demo web server's answer line.
    Answer(Answer),
    /// An HTTP status other than 200 (e.g. 502 from a balancer, 401 for a lost session).
    Status(u16),
    /// The connection was refused (nothing listens on the VIP there).
    Refused,
    /// The connection was reset or closed before a complete response.
    Reset,
    /// No connection or no complete answer within the timeout.
    Timeout,
    /// A response that is not HTTP or not the demo's answer.
    Malformed,
}

impl Outcome {
    /// `true` for a `200` with a well-formed answer.
    #[must_use]
    pub fn is_ok(&self) -> bool {
        matches!(self, Self::Answer(_))
    }

    /// A short label for the timeline.
    #[must_use]
    pub fn label(&self) -> String {
        match self {
            Self::Answer(a) => format!("{} via {}", a.served_by, a.via),
            Self::Status(s) => format!("HTTP {s}"),
            Self::Refused => "refused".into(),
            Self::Reset => "reset".into(),
            Self::Timeout => "timeout".into(),
            Self::Malformed => "malformed".into(),
        }
    }
}

/// The demo web server's answer: `served_by=rs1 peer=10.99.0.11 user=alice hits=42`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// The real server that answered.
    pub served_by: String,
    /// The balancer the real server saw the request from (its address mapped to a name by
    /// the caller of [`parse_answer`], or the address itself).
    pub via: String,
    /// The session's user, `None` when the session was not found.
    pub user: Option<String>,
    /// The session's request counter after this request.
    pub hits: Option<u64>,
}

/// Parses an answer line; `None` if a field is missing or malformed.
#[must_use]
pub fn parse_answer(body: &str, via_name: impl Fn(&str) -> String) -> Option<Answer> {
    let line = body.lines().next()?;
    let mut served_by = None;
    let mut via = None;
    let mut user = None;
    let mut hits = None;
    for field in line.split_ascii_whitespace() {
        let (k, v) = field.split_once('=')?;
        match k {
            "served_by" => served_by = Some(v.to_owned()),
            "peer" => via = Some(via_name(v)),
            "user" => user = Some((v != "-").then(|| v.to_owned())),
            "hits" => {
                hits = Some(if v == "-" {
                    None
                } else {
                    Some(v.parse().ok()?)
                })
            }
            _ => {}
        }
    }
    Some(Answer {
        served_by: served_by?,
        via: via?,
        user: user?,
        hits: hits?,
    })
}

/// One request.
#[derive(Clone, Debug)]
pub struct Sample {
    /// Which client thread sent it.
    pub client: usize,
    /// When it was started.
    pub start: Instant,
    /// How long until the answer (or the failure).
    pub latency: Duration,
    /// What it got.
    pub outcome: Outcome,
}

/// A raw HTTP response.
#[derive(Debug)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The `Set-Cookie` header values.
    pub set_cookies: Vec<String>,
    /// The body.
    pub body: String,
}

/// Why a request failed.
#[derive(Debug)]
pub enum Failure {
    /// Connection refused.
    Refused,
    /// Reset / closed early.
    Reset,
    /// Timed out.
    Timeout,
    /// Not a well-formed HTTP response.
    Malformed,
}

impl From<Failure> for Outcome {
    fn from(f: Failure) -> Self {
        match f {
            Failure::Refused => Self::Refused,
            Failure::Reset => Self::Reset,
            Failure::Timeout => Self::Timeout,
            Failure::Malformed => Self::Malformed,
        }
    }
}

fn classify(e: &io::Error) -> Failure {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => Failure::Refused,
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => Failure::Timeout,
        _ => Failure::Reset,
    }
}

/// Sends one HTTP/1.1 request with `Connection: close` and reads the whole response.
///
/// # Errors
/// [`Failure`] for anything but a complete, parseable response.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    cookie: Option<&str>,
    timeout: Duration,
) -> Result<Response, Failure> {
    let deadline = Instant::now() + timeout;
    let mut s = TcpStream::connect_timeout(&addr, timeout).map_err(|e| classify(&e))?;
    let _ = s.set_nodelay(true);
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: failover-demo\r\nConnection: close\r\nContent-Length: 0\r\n",
        addr.ip()
    );
    if let Some(c) = cookie {
        req.push_str("Cookie: ");
        req.push_str(c);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(Failure::Timeout);
    }
    s.set_write_timeout(Some(left)).map_err(|e| classify(&e))?;
    s.write_all(req.as_bytes()).map_err(|e| classify(&e))?;
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0_u8; 2048];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Failure::Timeout);
        }
        s.set_read_timeout(Some(left)).map_err(|e| classify(&e))?;
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if buf.len() > MAX_RESPONSE {
                    return Err(Failure::Malformed);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(classify(&e)),
        }
    }
    let _ = s.shutdown(Shutdown::Both);
    parse_response(&buf)
}

/// Parses a complete `Connection: close` response (`Content-Length` or read-to-EOF body;
/// chunked bodies are decoded).
///
/// # Errors
/// [`Failure::Malformed`] or, for a body shorter than announced, [`Failure::Reset`].
pub fn parse_response(buf: &[u8]) -> Result<Response, Failure> {
    // Nothing, or the start of a status line and no more: the peer went away mid-answer.
    if b"HTTP/1.".starts_with(buf) || (buf.starts_with(b"HTTP/1.") && !contains(buf, b"\r\n\r\n")) {
        return Err(Failure::Reset);
    }
    let text = std::str::from_utf8(buf).map_err(|_| Failure::Malformed)?;
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return Err(Failure::Malformed);
    };
    let mut lines = head.split("\r\n");
    let status_line = lines.next().ok_or(Failure::Malformed)?;
    let mut parts = status_line.splitn(3, ' ');
    if !parts.next().is_some_and(|v| v.starts_with("HTTP/1.")) {
        return Err(Failure::Malformed);
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or(Failure::Malformed)?;
    let mut set_cookies = Vec::new();
    let mut length = None;
    let mut chunked = false;
    for l in lines {
        let (name, value) = l.split_once(':').ok_or(Failure::Malformed)?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("set-cookie") {
            set_cookies.push(value.to_owned());
        } else if name.eq_ignore_ascii_case("content-length") {
            length = Some(value.parse::<usize>().map_err(|_| Failure::Malformed)?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.eq_ignore_ascii_case("chunked");
        }
    }
    let body = if chunked {
        dechunk(body)?
    } else if let Some(n) = length {
        if body.len() < n {
            return Err(Failure::Reset);
        }
        body.get(..n).ok_or(Failure::Malformed)?.to_owned()
    } else {
        body.to_owned()
    };
    Ok(Response {
        status,
        set_cookies,
        body,
    })
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn dechunk(mut rest: &str) -> Result<String, Failure> {
    let mut out = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n").ok_or(Failure::Reset)?;
        let size = size.split(';').next().unwrap_or_default().trim();
        let n = usize::from_str_radix(size, 16).map_err(|_| Failure::Malformed)?;
        if n == 0 {
            return Ok(out);
        }
        let data = after.get(..n).ok_or(Failure::Reset)?;
        out.push_str(data);
        rest = after
            .get(n..)
            .and_then(|r| r.strip_prefix("\r\n"))
            .ok_or(Failure::Reset)?;
    }
}

/// The `name=value` part of a `Set-Cookie` header for cookie `name`.
#[must_use]
pub fn cookie_pair<'a>(set_cookies: &'a [String], name: &str) -> Option<&'a str> {
    set_cookies.iter().find_map(|sc| {
        let pair = sc.split(';').next()?.trim();
        let (n, _) = pair.split_once('=')?;
        (n == name).then_some(pair)
    })
}

/// What a client thread does.
#[derive(Clone, Debug)]
pub struct ClientPlan {
    /// The VIP and port.
    pub target: SocketAddr,
    /// Requests per second for this thread.
    pub rate: f64,
    /// Per-request timeout.
    pub timeout: Duration,
    /// The user to log in as.
    pub user: String,
    /// The session cookie's name.
    pub cookie_name: String,
    /// Maps a peer address in the answer to a balancer name.
    pub balancers: Vec<(String, String)>,
}

/// A running client thread's shared state.
#[derive(Debug, Default)]
pub struct Live {
    samples: Mutex<Vec<Sample>>,
    stop: AtomicBool,
}

impl Live {
    /// Asks the thread to stop after its current request.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// A copy of the samples so far.
    #[must_use]
    pub fn snapshot(&self) -> Vec<Sample> {
        self.samples
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The most recent sample's outcome.
    #[must_use]
    pub fn last(&self) -> Option<Sample> {
        self.samples
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .last()
            .cloned()
    }

    fn push(&self, s: Sample) {
        self.samples
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(s);
    }
}

/// Why the login failed.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// No answer.
    #[error("POST /login through {target} failed: {what:?}")]
    Request {
        /// The VIP.
        target: SocketAddr,
        /// What went wrong.
        what: Failure,
    },
    /// An answer without the session cookie.
    #[error("POST /login through {target} answered {status} without a `{cookie}` cookie: {body:?}")]
    NoCookie {
        /// The VIP.
        target: SocketAddr,
        /// Its status.
        status: u16,
        /// The cookie name expected.
        cookie: String,
        /// Its body.
        body: String,
    },
}

/// Logs in (retrying for up to `within`), returning the `name=value` cookie pair.
///
/// # Errors
/// [`LoginError`] when no login succeeded in time.
pub fn login(plan: &ClientPlan, within: Duration) -> Result<String, LoginError> {
    let deadline = Instant::now() + within;
    loop {
        let path = format!("/login?user={}", plan.user);
        let err = match request(plan.target, "POST", &path, None, plan.timeout) {
            Ok(r) => match cookie_pair(&r.set_cookies, &plan.cookie_name) {
                Some(c) if r.status == 200 => return Ok(c.to_owned()),
                _ => LoginError::NoCookie {
                    target: plan.target,
                    status: r.status,
                    cookie: plan.cookie_name.clone(),
                    body: r.body,
                },
            },
            Err(what) => LoginError::Request {
                target: plan.target,
                what,
            },
        };
        if Instant::now() >= deadline {
            return Err(err);
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// The request loop of one client thread: `GET /whoami` at `plan.rate` until stopped.
/// Requests are started on a fixed schedule, at a phase of its own per client; one that
/// overruns its slot delays the next (it never piles up).
pub fn run(id: usize, plan: &ClientPlan, cookie: &str, live: &Arc<Live>) {
    let period = Duration::from_secs_f64(1.0 / plan.rate.max(0.001));
    // Clients logged in together would otherwise request in lockstep (bursts of one request
    // per client each period); each starts at its own phase of the period instead, spread by
    // the golden ratio so that any number of clients covers the period evenly.
    #[allow(clippy::cast_precision_loss, reason = "client ids are small")]
    let phase = (id as f64 * 0.618_033_988_749_895).fract();
    let mut next = Instant::now() + period.mul_f64(phase);
    let via_name = |addr: &str| {
        plan.balancers
            .iter()
            .find(|(a, _)| a == addr)
            .map_or_else(|| addr.to_owned(), |(_, n)| n.clone())
    };
    while !live.stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if next > now {
            thread::sleep(next - now);
        }
        let start = Instant::now();
        next = (next + period).max(start);
        let outcome = match request(plan.target, "GET", "/whoami", Some(cookie), plan.timeout) {
            Ok(r) if r.status == 200 => {
                parse_answer(&r.body, via_name).map_or(Outcome::Malformed, Outcome::Answer)
            }
            Ok(r) => Outcome::Status(r.status),
            Err(f) => f.into(),
        };
        live.push(Sample {
            client: id,
            start,
            latency: start.elapsed(),
            outcome,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_parse() {
        let a = parse_answer("served_by=rs1 peer=10.99.0.11 user=alice hits=7\n", |p| {
            if p == "10.99.0.11" {
                "lb1".into()
            } else {
                p.into()
            }
        });
        assert_eq!(
            a,
            Some(Answer {
                served_by: "rs1".into(),
                via: "lb1".into(),
                user: Some("alice".into()),
                hits: Some(7)
            })
        );
        let none = parse_answer("served_by=rs2 peer=x user=- hits=-", str::to_owned);
        assert_eq!(none.and_then(|a| a.user), None);
        assert_eq!(
            parse_answer("served_by=rs1 user=alice hits=7", str::to_owned),
            None
        );
        assert_eq!(parse_answer("garbage", str::to_owned), None);
        assert_eq!(
            parse_answer("served_by=rs1 peer=a user=b hits=x", str::to_owned),
            None
        );
    }

    #[test]
    fn responses_parse() {
        let r = parse_response(
            b"HTTP/1.1 200 OK\r\nSet-Cookie: id=abc; Path=/\r\ncontent-length: 3\r\n\r\nhey",
        )
        .map_err(|e| format!("{e:?}"));
        let r = r
            .as_ref()
            .map(|r| (r.status, r.body.as_str(), &r.set_cookies[..]));
        assert_eq!(r, Ok((200, "hey", &["id=abc; Path=/".to_owned()][..])));
        let c = parse_response(
            b"HTTP/1.1 502 Bad Gateway\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        );
        assert_eq!(
            c.map(|r| (r.status, r.body)).ok(),
            Some((502, "abc".into()))
        );
        assert!(matches!(
            parse_response(b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\nhey"),
            Err(Failure::Reset)
        ));
        assert!(matches!(
            parse_response(b"SSH-2.0"),
            Err(Failure::Malformed)
        ));
        assert!(matches!(
            parse_response(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n"),
            Err(Failure::Malformed)
        ));
        assert_eq!(
            cookie_pair(&["a=1; Path=/".into(), "id=xyz; HttpOnly".into()], "id"),
            Some("id=xyz")
        );
    }
}
