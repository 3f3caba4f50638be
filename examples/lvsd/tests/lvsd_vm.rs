//! lvsd against the real kernel IPVS, in the qemu VM (`scripts/ipvs-vm.sh` as the runner):
//!
//! ```sh
//! CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER=$PWD/scripts/ipvs-vm.sh \
//!   cargo test -p lvsd --test lvsd_vm -- --ignored
//! ```
//!
//! A NAT and a DR virtual server on the VM's loopback with two local real servers: the failed
//! one is left out (or weighted 0 with inhibit_on_failure), traffic through the VIP reaches the
//! healthy one, a recovered server comes back, and the services go when lvsd stops.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use keepalived_conf::lvs::parse_lvs_str;
use lvsd::{State, serve};

const CONF: &str = "
virtual_server 10.10.10.10 80 {
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server 10.10.10.10 9001 {
        weight 1
        TCP_CHECK {
            connect_timeout 1
        }
    }
    real_server 10.10.10.10 9002 {
        weight 2
        TCP_CHECK {
            connect_timeout 1
        }
    }
}
virtual_server 10.10.10.10 81 {
    delay_loop 1
    lb_algo wlc
    lb_kind DR
    persistence_timeout 30
    protocol TCP
    real_server 10.10.10.20 81 {
        weight 3
        inhibit_on_failure
        TCP_CHECK {
            connect_timeout 1
            connect_ip 10.10.10.10
            connect_port 9001
        }
    }
}
";

fn sh(cmd: &str) -> String {
    let out = Command::new("sh").arg("-c").arg(cmd).output().unwrap();
    let mut s = String::from_utf8_lossy(&out.stdout).into_owned();
    s.push_str(&String::from_utf8_lossy(&out.stderr));
    s
}

/// A real server: answers its name on every connection until stopped.
struct Rs {
    stop: Arc<AtomicBool>,
    t: Option<JoinHandle<()>>,
}

impl Rs {
    fn start(port: u16, name: &'static str) -> Self {
        let l = TcpListener::bind(("0.0.0.0", port)).unwrap();
        l.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let s2 = Arc::clone(&stop);
        let t = thread::spawn(move || {
            while !s2.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((mut c, _)) => {
                        let _ = c.write_all(name.as_bytes());
                    }
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Self { stop, t: Some(t) }
    }
}

impl Drop for Rs {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.t.take() {
            let _ = t.join();
        }
    }
}

fn table() -> String {
    sh("ipvsadm -Ln")
}

fn wait_table(what: &str, timeout: Duration, cond: impl Fn(&str) -> bool) {
    let end = Instant::now() + timeout;
    loop {
        let t = table();
        if cond(&t) {
            return;
        }
        assert!(Instant::now() < end, "{what}: timed out; table:\n{t}");
        thread::sleep(Duration::from_millis(100));
    }
}

fn ask(port: u16) -> String {
    let mut s = TcpStream::connect_timeout(
        &format!("10.10.10.10:{port}").parse().unwrap(),
        Duration::from_secs(3),
    )
    .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

fn line_for<'a>(t: &'a str, rs: &str, after: &str) -> Option<&'a str> {
    let start = t.find(after)?;
    t.get(start..)?
        .lines()
        .skip(1)
        .take_while(|l| l.trim_start().starts_with("->"))
        .find(|l| l.contains(rs))
}

#[test]
#[ignore = "needs ip_vs: runs in the qemu VM via scripts/ipvs-vm.sh"]
fn lvsd_keeps_ipvs_equal_to_the_config_and_the_health() {
    println!(
        "{}",
        sh("ip link set lo up; ip addr add 10.10.10.10/32 dev lo 2>&1 || true")
    );
    let rs1 = Rs::start(9001, "rs1");
    let (conf, warnings) = parse_lvs_str(CONF, "keepalived.conf").unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let lvsd = thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(serve(State::new(conf), None, async {
            let _ = stop_rx.await;
        }))
    });

    // rs2 (9002) is down from the start: only rs1 stays in the NAT service.
    wait_table("rs2 removed", Duration::from_secs(10), |t| {
        t.contains("TCP  10.10.10.10:80 rr")
            && line_for(t, "10.10.10.10:9001", "10.10.10.10:80").is_some()
            && line_for(t, "10.10.10.10:9002", "10.10.10.10:80").is_none()
    });
    let t = table();
    println!("{t}");
    assert!(t.contains("TCP  10.10.10.10:81 wlc persistent 30"), "{t}");
    // A remote DR real server, checked through connect_ip/connect_port.
    let dr = line_for(&t, "10.10.10.20:81", "10.10.10.10:81").unwrap();
    assert!(
        dr.contains("Route") && dr.split_whitespace().nth(3) == Some("3"),
        "{dr}"
    );
    for _ in 0..4 {
        assert_eq!(ask(80), "rs1", "through the VIP");
    }

    // rs2 comes up: added with its weight; traffic reaches both.
    let rs2 = Rs::start(9002, "rs2");
    wait_table("rs2 added", Duration::from_secs(10), |t| {
        line_for(t, "10.10.10.10:9002", "10.10.10.10:80")
            // The kernel reports a local real server as "Local" whatever was asked.
            .is_some_and(|l| {
                (l.contains("Masq") || l.contains("Local"))
                    && l.split_whitespace().nth(3) == Some("2")
            })
    });
    let answers: Vec<String> = (0..6).map(|_| ask(80)).collect();
    assert!(answers.iter().any(|a| a == "rs2"), "{answers:?}");

    // rs1 fails: removed from the NAT service, weight 0 in the DR one (inhibit_on_failure).
    drop(rs1);
    wait_table("rs1 failed", Duration::from_secs(10), |t| {
        line_for(t, "10.10.10.10:9001", "10.10.10.10:80").is_none()
            && line_for(t, "10.10.10.20:81", "10.10.10.10:81")
                .is_some_and(|l| l.split_whitespace().nth(3) == Some("0"))
    });
    for _ in 0..4 {
        assert_eq!(ask(80), "rs2", "only rs2 is left");
    }

    // lvsd stops: its services go.
    stop_tx.send(()).unwrap();
    lvsd.join().unwrap().unwrap();
    let t = table();
    assert!(
        !t.contains("10.10.10.10:80") && !t.contains("10.10.10.10:81"),
        "{t}"
    );
    drop(rs2);
}
