//! [`vrrp_linux::Instance`] on the real thing: network namespaces on a Linux bridge, real VIPs,
//! and Debian's keepalived 2.2.7 as the peer. The first test drives the API in process; the
//! second runs the `vip_service` example (an HTTP service that holds the VIP only while it
//! serves) as a program.
//!
//! Needs root and keepalived; skipped otherwise (failing instead when `CI=true`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::error::Error;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use testbed::netns::Netns;
use testbed::{Testbed, keepalived, keepalived_or_skip};
use vrrp_linux::{Instance, Status};
use vrrp_proto::wire::Version;
use vrrp_proto::{IpCidr, State};

type TestResult = Result<(), Box<dyn Error>>;

const VIP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 99, 0, 100));
const PORT: u16 = 8080;

/// One test bed at a time: both tests measure take-overs at 0.1 s adverts on 2 cores.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

fn prereqs() -> bool {
    Netns::require_or_skip() && keepalived_or_skip()
}

fn testbed() -> Result<Testbed, Box<dyn Error>> {
    let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("vrrp-linux");
    let tb = Testbed::new_in(&["client", "lb1", "lb2"], base)?;
    eprintln!("test bed {} in {}", tb.prefix(), tb.run_dir().display());
    Ok(tb)
}

/// keepalived on lb2: VRRPv3 every 0.1 s, priority 100, preempting, VIP 10.99.0.100/24.
fn keepalived_backup(tb: &Testbed) -> Result<testbed::Daemon, Box<dyn Error>> {
    let conf = "global_defs {\n    router_id lb2\n}\nvrrp_instance VI_1 {\n    state BACKUP\n    interface eth0\n    virtual_router_id 51\n    priority 100\n    advert_int 0.1\n    version 3\n    virtual_ipaddress {\n        10.99.0.100/24\n    }\n}\n";
    Ok(keepalived(tb, "lb2", conf)?)
}

/// Waits until `host` alone holds the VIP; panics with the holders and `logs` otherwise.
fn wait_holder(tb: &Testbed, host: &str, timeout: Duration, what: &str, logs: &dyn Fn() -> String) {
    let start = Instant::now();
    loop {
        let h = tb.vip_holders(VIP).unwrap_or_default();
        if h == [host] {
            eprintln!("{what}: {host} holds the VIP after {:?}", start.elapsed());
            return;
        }
        if start.elapsed() > timeout {
            panic!(
                "{what}: VIP held by {h:?}, not {host}, after {timeout:?}\n{}",
                logs()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits (in async code) until the instance's status satisfies `pred`.
async fn wait_status(
    rx: &mut tokio::sync::watch::Receiver<Status>,
    timeout: Duration,
    pred: impl Fn(&Status) -> bool,
) -> Status {
    let r = tokio::time::timeout(timeout, rx.wait_for(|s| pred(s)))
        .await
        .map(|r| r.map(|s| *s));
    match r {
        Ok(Ok(s)) => s,
        Ok(Err(_)) => panic!("the instance stopped"),
        Err(_) => panic!("status still {:?} after {timeout:?}", *rx.borrow()),
    }
}

#[test]
fn instance_api_against_keepalived() -> TestResult {
    let _g = serial();
    if !prereqs() {
        return Ok(());
    }
    let tb = testbed()?;
    let ka = keepalived_backup(&tb)?;
    let logs = || format!("--- keepalived ---\n{}", ka.log().unwrap_or_default());
    let vip = IpCidr::new(VIP, 24).unwrap();
    let stats = tb.ns("lb1")?.run(|| {
        // Worker threads are created here, so they live in lb1's namespace too; the test's
        // blocking checks run on this thread and never stall the instance's task.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let vr = Instance::builder("eth0", 51)
                .router(move |b| {
                    b.version(Version::V3)
                        .priority(150)
                        .advert_interval(Duration::from_millis(100))
                        .vip(vip)
                })
                .start()
                .unwrap();
            let mut rx = vr.subscribe();
            let s = wait_status(&mut rx, Duration::from_secs(3), |s| {
                s.state == State::Master
            })
            .await;
            assert_eq!(s.priority, 150);
            wait_holder(
                &tb,
                "lb1",
                Duration::from_secs(1),
                "started with priority 150",
                &logs,
            );

            // Below keepalived's 100: keepalived preempts.
            vr.set_priority(50).await.unwrap();
            wait_status(&mut rx, Duration::from_secs(2), |s| {
                s.state == State::Backup
            })
            .await;
            wait_holder(&tb, "lb2", Duration::from_secs(1), "priority 50", &logs);
            assert_eq!(
                vr.status().master,
                Some(IpAddr::V4(Ipv4Addr::new(10, 99, 0, 12)))
            );

            // Back above it: we preempt.
            vr.set_priority(150).await.unwrap();
            wait_status(&mut rx, Duration::from_secs(2), |s| {
                s.state == State::Master
            })
            .await;
            wait_holder(
                &tb,
                "lb1",
                Duration::from_secs(1),
                "priority 150 again",
                &logs,
            );

            // An out-of-range priority is refused and changes nothing.
            assert!(vr.set_priority(0).await.is_err());
            assert_eq!(vr.status().priority, 150);

            // FAULT: released at once with priority 0.
            let t = Instant::now();
            vr.set_fault(true).await.unwrap();
            let s = wait_status(&mut rx, Duration::from_secs(1), |s| s.state == State::Fault).await;
            assert!(s.fault_requested);
            wait_holder(&tb, "lb2", Duration::from_millis(500), "fault", &logs);
            eprintln!("fault → keepalived master in {:?}", t.elapsed());
            vr.set_fault(false).await.unwrap();
            wait_status(&mut rx, Duration::from_secs(2), |s| {
                s.state == State::Master
            })
            .await;
            wait_holder(&tb, "lb1", Duration::from_secs(1), "fault cleared", &logs);

            // Shutdown releases with priority 0 and removes the VIP.
            let stats = vr.shutdown().await.unwrap();
            wait_holder(&tb, "lb2", Duration::from_millis(500), "shutdown", &logs);
            stats
        })
    })?;
    assert!(stats.priority_zero_sent >= 2, "{stats:?}");
    assert!(stats.master_transitions >= 3, "{stats:?}");
    assert!(stats.adverts_received > 0, "{stats:?}");
    let log = ka.log()?;
    assert!(log.contains("Entering MASTER STATE"), "{log}");
    ka.stop()?;
    Ok(())
}

/// The `vip_service` example, built by `cargo test` next to this test's directory.
fn example() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap();
    let p = dir.join("examples/vip_service");
    assert!(
        p.is_file(),
        "{} is missing: build it with cargo build -p vrrp-linux --example vip_service",
        p.display()
    );
    p
}

/// One HTTP/1.1 request from the client host; the status code and body.
fn http(
    tb: &Testbed,
    method: &str,
    to: SocketAddr,
    path: &str,
) -> Result<(u16, String), Box<dyn Error>> {
    let text = tb.ns("client")?.run(|| -> std::io::Result<String> {
        let mut s = TcpStream::connect_timeout(&to, Duration::from_secs(1))?;
        s.set_read_timeout(Some(Duration::from_secs(2)))?;
        write!(s, "{method} {path} HTTP/1.1\r\nhost: {to}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        Ok(out)
    })??;
    let status = text
        .get(9..12)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("not an HTTP response: {text:?}"))?;
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    Ok((status, body))
}

#[test]
fn vip_service_example_holds_the_vip_only_while_it_serves() -> TestResult {
    let _g = serial();
    if !prereqs() {
        return Ok(());
    }
    let exe = example();
    let tb = testbed()?;
    let ka = keepalived_backup(&tb)?;
    let svc = tb.spawn(
        "lb1",
        "vip_service",
        exe.to_str().unwrap(),
        [
            "--interface",
            "eth0",
            "--vrid",
            "51",
            "--priority",
            "150",
            "--vip",
            "10.99.0.100/24",
            "--advert-int",
            "0.1",
            "--port",
            "8080",
            "--name",
            "lb1",
        ],
    )?;
    let logs = || {
        format!(
            "--- vip_service ---\n{}\n--- keepalived ---\n{}",
            svc.log().unwrap_or_default(),
            ka.log().unwrap_or_default()
        )
    };
    let vip = SocketAddr::new(VIP, PORT);
    let own = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 99, 0, 11)), PORT);

    wait_holder(&tb, "lb1", Duration::from_secs(3), "started", &logs);
    assert_eq!(
        http(&tb, "GET", vip, "/")?,
        (200, "served by lb1\n".into()),
        "{}",
        logs()
    );

    // Maintenance: the service stops serving, its health check fails, the VIP goes.
    assert_eq!(http(&tb, "POST", own, "/maintenance")?.0, 200);
    wait_holder(&tb, "lb2", Duration::from_secs(2), "maintenance", &logs);
    assert_eq!(http(&tb, "GET", own, "/")?.0, 503);

    // Serving again: the VIP comes back (priority 150 preempts keepalived's 100).
    assert_eq!(http(&tb, "DELETE", own, "/maintenance")?.0, 200);
    wait_holder(
        &tb,
        "lb1",
        Duration::from_secs(2),
        "maintenance over",
        &logs,
    );
    assert_eq!(
        http(&tb, "GET", vip, "/")?,
        (200, "served by lb1\n".into()),
        "{}",
        logs()
    );

    // SIGTERM: released with priority 0, keepalived takes over within Skew_Time and a bit.
    svc.signal(Signal::SIGTERM)?;
    wait_holder(&tb, "lb2", Duration::from_millis(500), "SIGTERM", &logs);
    let status = svc.wait_exit(Duration::from_secs(5))?;
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}\n{}",
        logs()
    );
    let log = svc.log()?;
    for line in [
        "state Master priority 150",
        "health check failed",
        "state Fault",
        "released after",
    ] {
        assert!(log.contains(line), "no {line:?} in\n{log}");
    }
    ka.stop()?;
    Ok(())
}
