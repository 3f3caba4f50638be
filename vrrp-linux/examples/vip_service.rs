//! A tokio HTTP service that holds a virtual IP only while it serves.
//!
//! ```text
//! vip_service --interface eth0 --vrid 51 --priority 150 --vip 192.0.2.100/24
//!             [--advert-int 0.1] [--port 8080] [--name web1]
//! ```
//!
//! It answers `GET /` with `served by NAME`. Every advert interval it checks itself the way a
//! load balancer would (`GET /healthz` over TCP): when the check fails the VRRP instance
//! enters FAULT, releases the VIP with a priority-0 advert and the backup (keepalived or
//! another instance) takes over; when the check passes again it leaves FAULT and, having the
//! higher priority, takes the VIP back. `POST /maintenance` makes the service refuse requests
//! (503) until `DELETE /maintenance`. SIGTERM or Ctrl-C releases the VIP and exits.
//! Every state change is printed on stdout. Needs root (raw sockets, addresses).

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{SignalKind, signal};
use vrrp_linux::instance::Instance;
use vrrp_proto::IpCidr;
use vrrp_proto::wire::Version;

struct Args {
    interface: String,
    vrid: u8,
    priority: u8,
    vip: IpCidr,
    advert_int: Duration,
    port: u16,
    name: String,
}

fn parse_args() -> Result<Args, lexopt::Error> {
    use lexopt::prelude::*;
    let mut a = Args {
        interface: "eth0".into(),
        vrid: 51,
        priority: 100,
        vip: IpCidr::host(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 100))),
        advert_int: Duration::from_secs(1),
        port: 8080,
        name: "web".into(),
    };
    let mut p = lexopt::Parser::from_env();
    while let Some(arg) = p.next()? {
        match arg {
            Long("interface") => a.interface = p.value()?.string()?,
            Long("vrid") => a.vrid = p.value()?.parse()?,
            Long("priority") => a.priority = p.value()?.parse()?,
            Long("vip") => {
                let text = p.value()?.string()?;
                let (addr, len) = text.split_once('/').unwrap_or((&text, "32"));
                let addr: IpAddr = addr.parse().map_err(|e| format!("--vip {text}: {e}"))?;
                let len: u8 = len.parse().map_err(|e| format!("--vip {text}: {e}"))?;
                a.vip = IpCidr::new(addr, len).ok_or(format!("--vip {text}: bad prefix"))?;
            }
            Long("advert-int") => {
                let secs: f64 = p.value()?.parse()?;
                a.advert_int = Duration::try_from_secs_f64(secs).map_err(|e| e.to_string())?;
            }
            Long("port") => a.port = p.value()?.parse()?,
            Long("name") => a.name = p.value()?.string()?,
            _ => return Err(arg.unexpected()),
        }
    }
    Ok(a)
}

/// Answers one request; `serving` is false while in maintenance.
async fn handle(
    req: Request<Incoming>,
    name: Arc<str>,
    serving: Arc<AtomicBool>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let reply = |status: StatusCode, body: String| {
        let mut r = Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = status;
        Ok(r)
    };
    let up = serving.load(Ordering::Relaxed);
    match (req.method(), req.uri().path()) {
        (&Method::POST, "/maintenance") => {
            serving.store(false, Ordering::Relaxed);
            reply(StatusCode::OK, "maintenance on\n".into())
        }
        (&Method::DELETE, "/maintenance") => {
            serving.store(true, Ordering::Relaxed);
            reply(StatusCode::OK, "maintenance off\n".into())
        }
        _ if !up => reply(StatusCode::SERVICE_UNAVAILABLE, "maintenance\n".into()),
        (_, "/healthz") => reply(StatusCode::OK, "ok\n".into()),
        _ => reply(StatusCode::OK, format!("served by {name}\n")),
    }
}

/// The self-check: `GET /healthz` answered 200 within a second.
async fn healthy(port: u16) -> bool {
    let check = async {
        let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).await?;
        s.write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
            .await?;
        let mut head = [0u8; 12];
        s.read_exact(&mut head).await?;
        Ok::<bool, std::io::Error>(head.starts_with(b"HTTP/1.1 200"))
    };
    tokio::time::timeout(Duration::from_secs(1), check)
        .await
        .is_ok_and(|r| r.unwrap_or(false))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    let name: Arc<str> = args.name.clone().into();
    let serving = Arc::new(AtomicBool::new(true));

    // Listen on every address, the VIP included once it arrives.
    let listener = TcpListener::bind(SocketAddr::from(([0, 0, 0, 0], args.port))).await?;
    let (n, s) = (name.clone(), serving.clone());
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (n, s) = (n.clone(), s.clone());
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| handle(req, n.clone(), s.clone()));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });

    let (vip, priority, advert_int) = (args.vip, args.priority, args.advert_int);
    let vr = Instance::builder(&args.interface, args.vrid)
        .router(move |b| {
            b.version(Version::V3)
                .priority(priority)
                .advert_interval(advert_int)
                .vip(vip)
        })
        .start()?;

    let mut status = vr.subscribe();
    tokio::spawn(async move {
        loop {
            let s = *status.borrow_and_update();
            println!("state {:?} priority {}", s.state, s.priority);
            if status.changed().await.is_err() {
                return;
            }
        }
    });

    let mut term = signal(SignalKind::terminate())?;
    let mut tick = tokio::time::interval(args.advert_int);
    let mut failing = false;
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
            _ = tick.tick() => {
                let fail = !healthy(args.port).await;
                if fail != failing {
                    failing = fail;
                    println!("health check {}", if fail { "failed" } else { "passed" });
                    vr.set_fault(fail).await?;
                }
            }
        }
    }
    let stats = vr.shutdown().await?;
    println!("released after {} adverts sent", stats.adverts_sent);
    Ok(())
}
