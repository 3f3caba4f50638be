//! The namespace test bed on the real thing: a keepalived 2.2.7 pair (Debian's package),
//! a responder on each balancer and a client probing the VIP every 5 ms.
//!
//! Needs root; skipped otherwise (failing instead when `CI=true`).

use std::error::Error;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use testbed::netns::Netns;
use testbed::{
    Probe, Responder, Testbed, keepalived, keepalived_program, outage, serving_at, takeover,
};

const VIP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 99, 0, 100));
const PORT: u16 = 8080;

type TestResult = Result<(), Box<dyn Error>>;

fn conf(host: &str, state: &str, priority: u8) -> String {
    format!(
        "global_defs {{
    router_id {host}
}}
vrrp_instance VI_1 {{
    state {state}
    interface eth0
    virtual_router_id 51
    priority {priority}
    advert_int 0.1
    version 3
    virtual_ipaddress {{
        10.99.0.100/24 dev eth0
    }}
}}
"
    )
}

/// Polls `cond` every 5 ms until it holds or `timeout` passes; returns whether it held.
fn wait_until(
    timeout: Duration,
    mut cond: impl FnMut() -> Result<bool, Box<dyn Error>>,
) -> Result<bool, Box<dyn Error>> {
    let deadline = Instant::now() + timeout;
    loop {
        if cond()? {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        thread::sleep(Duration::from_millis(5));
    }
}

fn keepalived_available() -> bool {
    let program = keepalived_program();
    let found = program.is_absolute() && program.exists()
        || std::process::Command::new(&program)
            .arg("--version")
            .output()
            .is_ok();
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "keepalived ({}) is missing on CI: apt-get install keepalived",
            program.display()
        );
        eprintln!(
            "skipped: keepalived ({}) is not installed",
            program.display()
        );
    }
    found
}

fn ms(d: Option<Duration>) -> String {
    d.map_or_else(
        || "none".to_owned(),
        |d| format!("{:.1} ms", d.as_secs_f64() * 1e3),
    )
}

#[test]
fn keepalived_pair_fails_over_and_back() -> TestResult {
    if !Netns::require_or_skip() || !keepalived_available() {
        return Ok(());
    }
    let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("testbed");
    let tb = Testbed::new_in(&["lb1", "lb2", "client"], base)?;
    eprintln!("test bed {} in {}", tb.prefix(), tb.run_dir().display());

    let _r1 = Responder::start(&tb, "lb1", PORT)?;
    let _r2 = Responder::start(&tb, "lb2", PORT)?;
    let ka1 = keepalived(&tb, "lb1", &conf("lb1", "MASTER", 100))?;
    let ka2 = keepalived(&tb, "lb2", &conf("lb2", "BACKUP", 99))?;

    // keepalived starts in BACKUP even with `state MASTER`, and takes over after MDI.
    let lb1_only = || -> Result<bool, Box<dyn Error>> { Ok(tb.vip_holders(VIP)? == ["lb1"]) };
    assert!(
        wait_until(Duration::from_secs(5), lb1_only)?,
        "lb1 did not become the only VIP holder: {:?}\nlb1 log:\n{}",
        tb.vip_holders(VIP)?,
        ka1.log()?
    );
    let probe = Probe::start(&tb, "client", VIP, PORT, Duration::from_millis(5))?;
    assert!(
        probe.wait_for_answer("lb1", Duration::from_secs(2)),
        "the probe never got lb1"
    );
    thread::sleep(Duration::from_millis(300));

    // 1. Cable cut: lb1 goes silent, lb2 takes over after Master_Down_Interval.
    let cut = Instant::now();
    tb.set_port("lb1", false)?;
    let lb2_holds =
        || -> Result<bool, Box<dyn Error>> { Ok(tb.vip_holders(VIP)?.iter().any(|h| h == "lb2")) };
    assert!(
        wait_until(Duration::from_secs(1), lb2_holds)?,
        "lb2 did not take the VIP within 1 s of the cut"
    );
    assert!(
        probe.wait_for_answer("lb2", Duration::from_secs(1)),
        "the probe never got lb2"
    );
    assert_eq!(
        tb.neigh_mac("client", VIP)?,
        Some(tb.mac("lb2")?),
        "client ARP entry for the VIP"
    );
    eprintln!("after the cut, VIP holders: {:?}", tb.vip_holders(VIP)?);
    thread::sleep(Duration::from_millis(500));

    // 2. Restore: lb1 comes back and preempts lb2.
    let restore = Instant::now();
    tb.set_port("lb1", true)?;
    assert!(
        wait_until(Duration::from_secs(3), lb1_only)?,
        "lb1 did not preempt: holders {:?}",
        tb.vip_holders(VIP)?
    );
    assert!(
        probe.wait_for_answer("lb1", Duration::from_secs(1)),
        "the probe never got lb1 back"
    );
    assert_eq!(
        tb.neigh_mac("client", VIP)?,
        Some(tb.mac("lb1")?),
        "client ARP entry after failback"
    );
    thread::sleep(Duration::from_millis(500));

    // 3. Graceful stop of lb1: priority-0 advert, lb2 takes over after Skew_Time.
    let term = Instant::now();
    ka1.signal(Signal::SIGTERM)?;
    assert!(
        wait_until(Duration::from_secs(1), lb2_holds)?,
        "lb2 did not take the VIP within 1 s of SIGTERM"
    );
    assert!(
        probe.wait_for_answer("lb2", Duration::from_secs(1)),
        "the probe never got lb2"
    );
    let exited = ka1.wait_exit(Duration::from_secs(5))?;
    assert!(
        exited.is_some(),
        "keepalived on lb1 did not exit after SIGTERM"
    );
    assert_eq!(
        tb.vip_holders(VIP)?,
        ["lb2"],
        "lb1 must release the VIP on SIGTERM"
    );
    thread::sleep(Duration::from_millis(200));
    let samples = probe.stop();

    let link = outage(&samples, "lb1", "lb2", cut);
    let back = outage(&samples, "lb2", "lb1", restore);
    let graceful = outage(&samples, "lb1", "lb2", term);
    let answered = samples.iter().filter(|s| s.answer.is_some()).count();
    eprintln!(
        "probes: {} ({answered} answered)\n\
         link cut:  outage {} takeover {}\n\
         failback:  outage {} takeover {}\n\
         SIGTERM:   outage {} takeover {}",
        samples.len(),
        ms(link),
        ms(takeover(&samples, "lb2", cut)),
        ms(back),
        ms(takeover(&samples, "lb1", restore)),
        ms(graceful),
        ms(takeover(&samples, "lb2", term)),
    );
    assert_eq!(serving_at(&samples, cut), Some("lb1"));
    assert_eq!(serving_at(&samples, restore), Some("lb2"));
    assert_eq!(serving_at(&samples, term), Some("lb1"));
    // v3, advert_int 0.1 s, priority 99: MDI = 361 ms; a silent master is replaced between
    // MDI - advert_int and MDI after the cut (generous bounds for a loaded machine).
    let link = link.ok_or("no outage measured for the cable cut")?;
    assert!(
        (Duration::from_millis(150)..Duration::from_millis(1000)).contains(&link),
        "link-cut outage {link:?} is not near Master_Down_Interval (361 ms)"
    );
    // Graceful: Skew_Time (61 ms) plus a few ms.
    let graceful = graceful.ok_or("no outage measured for SIGTERM")?;
    assert!(
        graceful < Duration::from_millis(500),
        "SIGTERM outage {graceful:?} is far above Skew_Time (61 ms)"
    );

    ka2.stop()?;
    Ok(())
}
