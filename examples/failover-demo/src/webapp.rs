//! `demo-web`: the real servers of the failover demo (rs1, rs2). A small hyper server that
//! answers with its own name and keeps a login session in a shared
//! [`session_store`] backend through its tower [`SessionLayer`], so a user logged in on one
//! server stays logged in when the balancer sends the next request to the other one.
//!
//! ```text
//! demo-web --name rs1 --listen 10.99.0.21:8080 --store sqlite:/var/lib/demo/sessions.db
//!          [--cookie sid] [--ttl SECS]
//! ```
//!
//! Stores: `sqlite:PATH` (one file shared by every server, the default of the demo),
//! `redis://HOST:PORT/`, `redis+sentinel://HOST:PORT[,HOST:PORT...]/SERVICE`,
//! `memcached://HOST:PORT[,HOST:PORT...][?replicas=N]`.
//!
//! Routes (every answer is one line, `served_by=NAME peer=ADDR user=USER hits=N`, where
//! `peer` is the address the request came from — the balancer — and `hits` the session's
//! request counter):
//!
//! - `POST /login?user=NAME` starts a session (a fresh id, `hits=0`);
//! - `GET /whoami` (or `/`) counts the request in the session; `401` without a session;
//! - `POST /logout` deletes the session;
//! - `GET /healthz` answers `ok` without touching sessions.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::process::ExitCode;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use session_store::http::{CookieConfig, Session, SessionLayer};
use session_store::{
    MemcachedOptions, MemcachedStore, RedisOptions, RedisStore, SessionStore, SqliteStore,
    SystemClock,
};
use tokio::net::TcpListener;
use tower_layer::Layer;
use tower_service::Service;

/// Why `demo-web` could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebError {
    /// Bad command line.
    #[error("{0}")]
    Usage(String),
    /// The store could not be opened.
    #[error("cannot open the session store {spec:?}: {message}")]
    Store {
        /// The `--store` value.
        spec: String,
        /// What went wrong.
        message: String,
    },
    /// The listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// The runtime could not start.
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
}

/// `demo-web`'s options.
#[derive(Clone, Debug)]
pub struct WebOptions {
    /// The name it answers with.
    pub name: String,
    /// Where it listens.
    pub listen: SocketAddr,
    /// The store specification.
    pub store: String,
    /// The session cookie's name.
    pub cookie: String,
    /// Session lifetime.
    pub ttl: Duration,
}

const USAGE: &str =
    "usage: demo-web --name NAME --listen ADDR:PORT --store SPEC [--cookie NAME] [--ttl SECS]
  SPEC: sqlite:PATH | redis://HOST:PORT/ | redis+sentinel://HOST:PORT[,...]/SERVICE
        | memcached://HOST:PORT[,HOST:PORT...][?replicas=N]
";

impl WebOptions {
    /// Parses the command line (without the program name).
    ///
    /// # Errors
    /// [`WebError::Usage`]; `Usage("")` for `--help`.
    pub fn parse(
        args: impl IntoIterator<Item = impl Into<std::ffi::OsString>>,
    ) -> Result<Self, WebError> {
        use lexopt::prelude::*;
        let usage = |m: String| WebError::Usage(m);
        let mut name = None;
        let mut listen = None;
        let mut store = None;
        let mut cookie = "sid".to_owned();
        let mut ttl = Duration::from_secs(3600);
        let mut help = false;
        let mut p = lexopt::Parser::from_args(args);
        let mut go = || -> Result<(), lexopt::Error> {
            while let Some(arg) = p.next()? {
                match arg {
                    Long("name") => name = Some(p.value()?.string()?),
                    Long("listen") => listen = Some(p.value()?.parse::<SocketAddr>()?),
                    Long("store") => store = Some(p.value()?.string()?),
                    Long("cookie") => cookie = p.value()?.string()?,
                    Long("ttl") => {
                        let secs: u64 = p.value()?.parse()?;
                        if secs == 0 {
                            return Err("--ttl: expected seconds, more than 0".into());
                        }
                        ttl = Duration::from_secs(secs);
                    }
                    Short('h') | Long("help") => {
                        help = true;
                        return Ok(());
                    }
                    _ => return Err(arg.unexpected()),
                }
            }
            Ok(())
        };
        go().map_err(|e| usage(e.to_string()))?;
        if help {
            return Err(usage(String::new()));
        }
        Ok(Self {
            name: name.ok_or_else(|| usage("--name is required".into()))?,
            listen: listen.ok_or_else(|| usage("--listen is required".into()))?,
            store: store.ok_or_else(|| usage("--store is required".into()))?,
            cookie,
            ttl,
        })
    }
}

/// The request handler behind the session layer.
#[derive(Clone, Debug)]
pub struct App {
    name: String,
    peer: SocketAddr,
}

fn line(name: &str, peer: SocketAddr, user: Option<&str>, hits: Option<u64>) -> String {
    format!(
        "served_by={name} peer={} user={} hits={}\n",
        peer.ip(),
        user.unwrap_or("-"),
        hits.map_or_else(|| "-".to_owned(), |h| h.to_string())
    )
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// A user name from `?user=NAME`: 1–32 of `[A-Za-z0-9_-]`, starting with a letter or digit
/// (so it is never `-`, which the answer line uses for "no user").
fn user_param(query: Option<&str>) -> Option<&str> {
    query?
        .split('&')
        .find_map(|kv| kv.strip_prefix("user="))
        .filter(|u| {
            (1..=32).contains(&u.len())
                && u.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
                && u.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        })
}

impl App {
    fn handle<B>(&self, req: &Request<B>) -> Response<Full<Bytes>> {
        let Some(session) = req.extensions().get::<Session>() else {
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "no session layer\n".into(),
            );
        };
        let (name, peer) = (self.name.as_str(), self.peer);
        match (req.method(), req.uri().path()) {
            (&Method::GET, "/healthz") => text(StatusCode::OK, "ok\n".into()),
            (&Method::POST, "/login") => {
                let Some(user) = user_param(req.uri().query()) else {
                    return text(
                        StatusCode::BAD_REQUEST,
                        "login needs ?user=NAME (1-32 of A-Z a-z 0-9 _ -, starting with a letter or digit)\n".into(),
                    );
                };
                session.cycle_id();
                session.clear();
                if session.insert("user", user).is_err() || session.insert("hits", &0_u64).is_err()
                {
                    return text(StatusCode::INTERNAL_SERVER_ERROR, "encoding\n".into());
                }
                text(StatusCode::OK, line(name, peer, Some(user), Some(0)))
            }
            (&Method::POST, "/logout") => {
                session.delete();
                text(StatusCode::OK, line(name, peer, None, None))
            }
            (&Method::GET, "/whoami" | "/") => {
                let user: Option<String> = session.get("user").ok().flatten();
                let Some(user) = user else {
                    return text(StatusCode::UNAUTHORIZED, line(name, peer, None, None));
                };
                let hits = session.get::<u64>("hits").ok().flatten().unwrap_or(0) + 1;
                if session.insert("hits", &hits).is_err() {
                    return text(StatusCode::INTERNAL_SERVER_ERROR, "encoding\n".into());
                }
                text(StatusCode::OK, line(name, peer, Some(&user), Some(hits)))
            }
            _ => text(StatusCode::NOT_FOUND, "not found\n".into()),
        }
    }
}

impl<B> Service<Request<B>> for App {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let resp = self.handle(&req);
        Box::pin(async move { Ok(resp) })
    }
}

async fn serve<S: SessionStore>(opts: WebOptions, store: S) -> Result<(), WebError> {
    let listener = TcpListener::bind(opts.listen)
        .await
        .map_err(|source| WebError::Bind {
            addr: opts.listen,
            source,
        })?;
    let layer = SessionLayer::new(store)
        .ttl(opts.ttl)
        .cookie(CookieConfig::new(opts.cookie.clone()).secure(false));
    eprintln!(
        "demo-web {}: listening on {} (sessions in {})",
        opts.name, opts.listen, opts.store
    );
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                eprintln!("demo-web {}: accept: {e}", opts.name);
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let svc = layer.layer(App {
            name: opts.name.clone(),
            peer,
        });
        tokio::spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), TowerToHyperService::new(svc))
                .await;
        });
    }
}

fn store_err(spec: &str, e: impl std::fmt::Display) -> WebError {
    WebError::Store {
        spec: spec.to_owned(),
        message: e.to_string(),
    }
}

/// Opens the store `opts.store` names and serves until killed.
///
/// # Errors
/// [`WebError`] when the store or the listener cannot be opened.
pub async fn run(opts: WebOptions) -> Result<(), WebError> {
    let spec = opts.store.clone();
    if let Some(path) = spec.strip_prefix("sqlite:") {
        let store = SqliteStore::open(path, SystemClock::default())
            .await
            .map_err(|e| store_err(&spec, e))?;
        store.migrate().await.map_err(|e| store_err(&spec, e))?;
        serve(opts, store).await
    } else if let Some(rest) = spec.strip_prefix("redis+sentinel://") {
        let (hosts, service) = rest
            .split_once('/')
            .filter(|(_, s)| !s.is_empty())
            .ok_or_else(|| store_err(&spec, "expected redis+sentinel://HOST:PORT[,...]/SERVICE"))?;
        let urls: Vec<String> = hosts.split(',').map(|h| format!("redis://{h}/")).collect();
        let refs: Vec<&str> = urls.iter().map(String::as_str).collect();
        let store = RedisStore::sentinel(
            &refs,
            service,
            RedisOptions::default(),
            SystemClock::default(),
        )
        .map_err(|e| store_err(&spec, e))?;
        serve(opts, store).await
    } else if spec.starts_with("redis://") {
        let store = RedisStore::standalone(&spec, RedisOptions::default(), SystemClock::default())
            .map_err(|e| store_err(&spec, e))?;
        serve(opts, store).await
    } else if let Some(rest) = spec.strip_prefix("memcached://") {
        let (hosts, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut mo = MemcachedOptions::new(hosts.split(',').filter(|h| !h.is_empty()));
        for kv in query.split('&').filter(|kv| !kv.is_empty()) {
            match kv.split_once('=') {
                Some(("replicas", n)) => {
                    let n = n
                        .parse::<usize>()
                        .map_err(|_| store_err(&spec, format!("replicas={n:?}: not a number")))?;
                    mo = mo.replicas(n);
                }
                _ => return Err(store_err(&spec, format!("unknown parameter {kv:?}"))),
            }
        }
        let store =
            MemcachedStore::new(mo, SystemClock::default()).map_err(|e| store_err(&spec, e))?;
        serve(opts, store).await
    } else {
        Err(WebError::Usage(format!(
            "--store {spec:?}: expected sqlite:PATH, redis://..., redis+sentinel://... or memcached://..."
        )))
    }
}

/// `demo-web`'s `main`.
#[must_use]
pub fn main_with(args: impl IntoIterator<Item = impl Into<std::ffi::OsString>>) -> ExitCode {
    let opts = match WebOptions::parse(args) {
        Ok(o) => o,
        Err(WebError::Usage(m)) if m.is_empty() => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprint!("demo-web: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("demo-web: {}", WebError::Runtime(e));
            return ExitCode::FAILURE;
        }
    };
    let name = opts.name.clone();
    match rt.block_on(run(opts)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("demo-web {name}: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names() {
        assert_eq!(user_param(Some("user=alice")), Some("alice"));
        assert_eq!(user_param(Some("x=1&user=bob_2")), Some("bob_2"));
        assert_eq!(user_param(Some("user=")), None);
        assert_eq!(user_param(Some("user=-")), None);
        assert_eq!(user_param(Some("user=a%20b")), None);
        assert_eq!(user_param(None), None);
    }

    #[test]
    fn options() {
        let o = WebOptions::parse(
            [
                "--name",
                "rs1",
                "--listen",
                "127.0.0.1:8080",
                "--store",
                "sqlite:/tmp/x",
            ]
            .map(String::from),
        );
        assert!(o.is_ok_and(|o| o.name == "rs1" && o.cookie == "sid"));
        assert!(WebOptions::parse(["--name".to_owned()]).is_err());
    }
}
