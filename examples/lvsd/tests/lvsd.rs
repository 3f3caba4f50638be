//! lvsd without a kernel IPVS: the dry run, the table it derives from health, its checkers
//! against real local servers, and the DR real-server helper in a network namespace. The
//! kernel side runs in the qemu VM (`tests/lvsd_vm.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use keepalived_conf::lvs::{Check, Connect, Url, parse_lvs_str};
use lvsd::check::{self, CheckError};
use lvsd::desired::ipvsadm_commands;
use lvsd::{Options, State};
use testbed::netns::Netns;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The classic LVS-DR configuration (wrr, persistence, TCP_CHECK).
const SEED: &str = "
virtual_server 192.168.1.100 80 {
    delay_loop 6
    lb_algo wrr
    lb_kind DR
    persistence_timeout 60
    protocol TCP
    real_server 192.168.1.21 80 {
        weight 3
        TCP_CHECK {
            connect_timeout 10
            nb_get_retry 3
            delay_before_retry 3
            connect_port 80
        }
    }
    real_server 192.168.1.22 80 {
        weight 1
        inhibit_on_failure
        TCP_CHECK {
            connect_timeout 10
            connect_port 80
        }
    }
}
virtual_server 10.0.0.1 53 {
    lb_algo rr
    lb_kind NAT
    protocol UDP
    quorum 2
    hysteresis 1
    sorry_server 10.0.9.9 53
    real_server 10.0.0.11 53 {
        weight 1
    }
    real_server 10.0.0.12 53 {
        weight 1
    }
}
";

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

#[test]
fn dry_run_prints_the_ipvsadm_commands() -> TestResult {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("lvsd");
    std::fs::create_dir_all(&dir)?;
    let conf = dir.join("keepalived.conf");
    std::fs::write(&conf, SEED)?;
    let out = Command::new(env!("CARGO_BIN_EXE_lvsd"))
        .args(["--dry-run", "-f"])
        .arg(&conf)
        .output()?;
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8(out.stdout)?,
        "ipvsadm -C\n\
         ipvsadm -A -t 192.168.1.100:80 -s wrr -p 60\n\
         ipvsadm -a -t 192.168.1.100:80 -r 192.168.1.21:80 -g -w 3\n\
         ipvsadm -a -t 192.168.1.100:80 -r 192.168.1.22:80 -g -w 1\n\
         ipvsadm -A -u 10.0.0.1:53 -s rr\n\
         ipvsadm -a -u 10.0.0.1:53 -r 10.0.0.11:53 -m -w 1\n\
         ipvsadm -a -u 10.0.0.1:53 -r 10.0.0.12:53 -m -w 1\n"
    );
    // A scheduler keepalived does not know: as in keepalived, a warning naming file and line,
    // and its default scheduler, wlc.
    std::fs::write(&conf, SEED.replace("lb_algo rr", "lb_algo bogus"))?;
    let out = Command::new(env!("CARGO_BIN_EXE_lvsd"))
        .args(["--dry-run", "-f"])
        .arg(&conf)
        .output()?;
    assert!(out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("keepalived.conf:") && err.contains("bogus"),
        "{err}"
    );
    assert!(
        String::from_utf8(out.stdout)?.contains("ipvsadm -A -u 10.0.0.1:53 -s wlc\n"),
        "{err}"
    );
    // A broken file: file and line, exit 1.
    std::fs::write(&conf, SEED.replacen('}', "", 1))?;
    let out = Command::new(env!("CARGO_BIN_EXE_lvsd"))
        .args(["--dry-run", "-f"])
        .arg(&conf)
        .output()?;
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("keepalived.conf:"), "{err}");
    Ok(())
}

#[test]
fn failed_servers_leave_or_go_to_weight_zero_and_the_sorry_server_stands_in() -> TestResult {
    let (conf, _) = parse_lvs_str(SEED, "seed.conf")?;
    let mut st = State::new(conf);
    let table = |st: &State| ipvsadm_commands(&st.conf, &st.desired().unwrap_or_default());

    // .21 fails: removed. .22 fails: kept at weight 0 (inhibit_on_failure).
    assert!(st.set_health(0, sa("192.168.1.21:80"), false));
    assert!(
        !st.set_health(0, sa("192.168.1.21:80"), false),
        "no change the second time"
    );
    assert!(st.set_health(0, sa("192.168.1.22:80"), false));
    let t = table(&st);
    assert!(!t.contains("192.168.1.21:80"), "{t}");
    assert!(t.contains("-r 192.168.1.22:80 -g -w 0"), "{t}");

    // quorum 2, hysteresis 1: one of two UDP servers down → sorry server in.
    assert!(!table(&st).contains("10.0.9.9"));
    st.set_health(1, sa("10.0.0.11:53"), false);
    let t = table(&st);
    assert!(t.contains("-r 10.0.9.9:53"), "{t}");
    assert!(!t.contains("10.0.0.11"), "{t}");
    // Back to 2 = quorum, but hysteresis keeps the sorry server until quorum + 1.
    st.set_health(1, sa("10.0.0.11:53"), true);
    assert!(
        table(&st).contains("-r 10.0.9.9:53"),
        "hysteresis: {}",
        table(&st)
    );
    Ok(())
}

#[test]
fn options_parse() {
    let o = Options::parse(["-f", "/x.conf", "--dry-run"].map(String::from))
        .unwrap_or_else(|e| panic!("{e}"))
        .expect("not --help");
    assert!(o.dry_run);
    assert_eq!(o.config, std::path::PathBuf::from("/x.conf"));
    assert!(Options::parse(["--bogus".to_owned()]).is_err());
    assert!(Options::parse(["-f".to_owned()]).is_err());
    assert!(matches!(Options::parse(["--help".to_owned()]), Ok(None)));
    let o = Options::parse(["--use-file=/y.conf", "-n", "-l", "-D"].map(String::from))
        .unwrap_or_else(|e| panic!("{e}"))
        .expect("not --help");
    assert_eq!(o.config, std::path::PathBuf::from("/y.conf"));
    assert!(!o.test);
    // keepalived's habit: `-t -f FILE`.
    let o = Options::parse(["-t", "-f", "/z.conf"])
        .unwrap_or_else(|e| panic!("{e}"))
        .expect("not --help");
    assert!(o.test && !o.dry_run);
    assert_eq!(o.config, std::path::PathBuf::from("/z.conf"));
}

/// `lvsd -t -f FILE` on the LVS director's configuration of the classic LVS + keepalived set-up,
/// verbatim: accepted with keepalived's warnings (port 0 service, real server ports reset,
/// unknown TCP_CHECK keywords), exit 0; a broken file: exit 1 with file and line.
#[test]
fn config_test_reads_the_director_configuration() -> TestResult {
    let conf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../keepalived-conf/tests/data/keepalived_diff/seed_lvs_director.conf");
    let out = Command::new(env!("CARGO_BIN_EXE_lvsd"))
        .args(["-t", "-f"])
        .arg(&conf)
        .output()?;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("OK (1 virtual server(s), 6 warning(s))"),
        "{err}"
    );
    assert!(
        err.contains("unknown keyword `nb_get_retry` in TCP_CHECK"),
        "{err}"
    );
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("lvsd-t");
    std::fs::create_dir_all(&dir)?;
    let broken = dir.join("broken.conf");
    std::fs::write(&broken, "virtual_server 10.0.0.1 80 {\n")?;
    let out = Command::new(env!("CARGO_BIN_EXE_lvsd"))
        .args(["-t", "-f"])
        .arg(&broken)
        .output()?;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("broken.conf:1:"));
    Ok(())
}

/// A tiny HTTP server answering `status` to everything, counting connections.
fn http_server(status: u16) -> (SocketAddr, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let addr = l.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let hits = Arc::new(AtomicUsize::new(0));
    let h = Arc::clone(&hits);
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            h.fetch_add(1, Ordering::SeqCst);
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf);
            let _ = write!(s, "HTTP/1.0 {status} X\r\nContent-Length: 0\r\n\r\n");
        }
    });
    (addr, hits)
}

fn connect(timeout_ms: u64, retry: u32, delay_ms: u64) -> Connect {
    Connect {
        connect_timeout: Duration::from_millis(timeout_ms),
        retry,
        delay_before_retry: Duration::from_millis(delay_ms),
        ..Connect::default()
    }
}

#[tokio::test(flavor = "current_thread")]
async fn checkers_against_real_servers() {
    // TCP: a listening port passes, a closed one fails with keepalived's wording, after
    // `retry` attempts spaced by delay_before_retry.
    let l = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let open = l.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let tcp = Check::Tcp(connect(500, 1, 0));
    assert_eq!(check::run(&tcp, open, None).await, Ok(()));
    drop(l);
    // The closed port: bound by a socket that never listens, so nothing else can take it and
    // no connect picks it as its own source port (a connect to itself would succeed).
    let closed = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
        .unwrap_or_else(|e| panic!("{e}"));
    closed
        .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap_or_else(|e| panic!("{e}"));
    let refused = closed
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .unwrap_or_else(|| panic!("no local address"));
    let t = Instant::now();
    let tcp3 = Check::Tcp(connect(500, 3, 100));
    let err = check::run(&tcp3, refused, None).await;
    assert!(matches!(err, Err(CheckError::Connect { .. })), "{err:?}");
    assert!(
        err.as_ref()
            .is_err_and(|e| e.to_string().starts_with("TCP connection to [127.0.0.1:")),
        "{err:?}"
    );
    assert!(
        t.elapsed() >= Duration::from_millis(200),
        "retries were not spaced"
    );

    // HTTP: status 200 passes with no status_code (any 2xx); 503 fails; status_code 503 passes.
    let (ok, hits) = http_server(200);
    let url = |code| Url {
        path: "/health".into(),
        status_code: code,
        digest: None,
    };
    let http = |code| Check::Http {
        connect: connect(1000, 2, 50),
        urls: vec![url(code)],
    };
    assert_eq!(
        check::run(&http(None), ok, Some("www.example")).await,
        Ok(())
    );
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    let (bad, bad_hits) = http_server(503);
    let err = check::run(&http(None), bad, None).await;
    assert!(
        matches!(err, Err(CheckError::Status { got: 503, .. })),
        "{err:?}"
    );
    assert_eq!(bad_hits.load(Ordering::SeqCst), 2, "one retry");
    assert_eq!(check::run(&http(Some(503)), bad, None).await, Ok(()));

    // connect_port overrides the server's port.
    let mut c = connect(500, 1, 0);
    c.connect_port = Some(ok.port());
    assert_eq!(
        check::run(&Check::Tcp(c), sa("127.0.0.1:1"), None).await,
        Ok(())
    );
}

#[test]
fn realserver_prepares_lo_and_arp_in_a_namespace() -> TestResult {
    if !Netns::require_or_skip() {
        return Ok(());
    }
    let ns = Netns::create(&format!("hrs-{}", std::process::id()))?;
    ns.ip(["link", "set", "lo", "up"])?;
    let vip = "192.168.1.100".parse()?;
    let added = ns.run(move || lvsd::realserver::start(&[vip]))??;
    assert_eq!(added, 1);
    let lo = ns.ip(["-br", "addr", "show", "dev", "lo"])?;
    assert!(lo.contains("192.168.1.100/32"), "{lo}");
    for (k, want) in lvsd::realserver::SYSCTLS.iter().zip(["1", "2", "1", "2"]) {
        let path = format!("/proc/sys/{}", k.replace('.', "/"));
        let got = ns.output("cat", [path.as_str()])?;
        assert_eq!(got.trim(), want, "{k}");
    }
    let removed = ns.run(move || lvsd::realserver::stop(&[vip]))??;
    assert_eq!(removed, 1);
    let lo = ns.ip(["-br", "addr", "show", "dev", "lo"])?;
    assert!(!lo.contains("192.168.1.100"), "{lo}");
    Ok(())
}

/// A real server going down is mailed as keepalived does: the checker sees the server fail,
/// lvsd's state records it and mails it (the same path `serve` takes, without the kernel's
/// IPVS).
#[tokio::test(flavor = "current_thread")]
async fn real_server_down_is_mailed() -> TestResult {
    if !testbed::smtp::aiosmtpd_or_skip() {
        return Ok(());
    }
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("lvsd-smtp-{port}"));
    let sink = testbed::smtp::SmtpServer::sink(SocketAddr::from(([127, 0, 0, 1], port)), &dir)?;
    let real = TcpListener::bind("127.0.0.1:0")?;
    let rs = real.local_addr()?;
    let text = format!(
        "global_defs {{\n    router_id lvs1\n    notification_email {{\n        ops@example.com\n    \
         }}\n    notification_email_from lvsd@example.com\n    smtp_server 127.0.0.1 {port}\n    \
         smtp_connect_timeout 2\n}}\nvirtual_server 10.0.0.1 80 {{\n    protocol TCP\n    \
         lb_algo rr\n    lb_kind NAT\n    real_server 127.0.0.1 {} {{\n        TCP_CHECK {{\n    \
         connect_timeout 1\n        }}\n    }}\n    real_server 127.0.0.2 80 {{\n        \
         smtp_alert off\n    }}\n}}\n",
        rs.port()
    );
    let (conf, _) = parse_lvs_str(&text, "t.conf")?;
    let (vrrp, _) = keepalived_conf::parse_vrrp_str(&text, "t.conf")?;
    let mut state = State::new(conf).with_global(vrrp.global);
    let Check::Tcp(_) = &state.conf.virtual_servers[0].real_servers[0].checks[0] else {
        panic!("not a TCP_CHECK")
    };
    let chk = state.conf.virtual_servers[0].real_servers[0].checks[0].clone();
    assert_eq!(check::run(&chk, rs, None).await, Ok(()));
    drop(real);
    let result = check::run(&chk, rs, None).await;
    assert!(result.is_err(), "{result:?}");
    assert!(state.set_health(0, rs, false));
    let task = state.mail_health(0, rs, false, 0).expect("an alert is due");
    task.await?;
    let mails = sink.wait_for(1, Duration::from_secs(5));
    assert_eq!(mails.len(), 1, "{mails:?}");
    let m = &mails[0];
    assert_eq!(
        m.header("Subject"),
        Some(
            format!(
                "[lvs1] Realserver [127.0.0.1]:tcp:{} of virtual server [10.0.0.1]:tcp:80 - DOWN",
                rs.port()
            )
            .as_str()
        )
    );
    assert_eq!(m.header("From"), Some("lvsd@example.com"));
    assert_eq!(m.header("To"), Some("ops@example.com"));
    assert_eq!(m.header("X-Mailer"), Some("Keepalived"));
    assert!(m.header("Date").is_some(), "{}", m.data);
    assert_eq!(m.rcpt_to, ["ops@example.com"]);
    assert_eq!(m.body(), "=> TCP CHECK failed on service <=\r\n\r\n");
    // smtp_alert off: no alert for that real server.
    let other = sa("127.0.0.2:80");
    assert!(state.set_health(0, other, false));
    assert!(state.mail_health(0, other, false, 0).is_none());
    Ok(())
}
