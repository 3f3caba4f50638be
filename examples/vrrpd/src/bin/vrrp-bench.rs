//! `vrrp-bench`: failover outage and resource use of `vrrpd` next to keepalived, in one run.
//!
//! As root, it builds two identical namespace test beds (lb1, lb2, client on a bridge), one
//! running a vrrpd pair and one a keepalived pair with the same keepalived.conf, and
//! alternates the runs between them so both see the same machine load. A client probes the
//! VIP over TCP every 5 ms; the outage of a run is the time from the last answer from lb1 to
//! the first from lb2 (see `testbed::outage`).
//!
//! ```text
//! vrrp-bench [--runs N] [--faults link,term,proc] [--configs v2-1,v3-0.1,v3-0.05,v3-0.01]
//!            [--resources SECONDS] [--vrrpd PATH]
//! ```
//!
//! Faults: `link` sets lb1's bridge port down (cable cut; restored by setting it up),
//! `term` sends SIGTERM to lb1's daemon (priority-0 release; restored by starting it again),
//! `proc` kills (SIGKILL) the "proxy" process lb1 tracks with `vrrp_track_process` weight 0
//! (FAULT and a priority-0 release; restored by starting it again). keepalived 2.2.7 cannot
//! track processes inside a network namespace (the kernel refuses its connector subscription
//! there) and stays in FAULT: its `proc` cell says so.
//! `--resources S` measures CPU time and RSS of each daemon over S seconds with 1 and 255
//! instances instead.

use std::error::Error;
use std::fs;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use testbed::{Daemon, Probe, Responder, Testbed, keepalived, outage};

const VIP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 99, 0, 100));
const PORT: u16 = 8080;

type Res<T> = Result<T, Box<dyn Error>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Impl {
    Vrrpd,
    Keepalived,
}

impl Impl {
    fn name(self) -> &'static str {
        match self {
            Self::Vrrpd => "vrrpd",
            Self::Keepalived => "keepalived",
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Cfg {
    version: u8,
    advert: f64,
}

impl Cfg {
    /// `v2-1`, `v3-0.05`: VRRP version 2 or 3 and an advert interval keepalived accepts
    /// (a finite number of seconds in 0.01..=255).
    fn parse(s: &str) -> Option<Self> {
        let (v, a) = s.split_once('-')?;
        let version = v
            .strip_prefix('v')?
            .parse()
            .ok()
            .filter(|v| matches!(v, 2 | 3))?;
        let advert: f64 = a.parse().ok()?;
        (advert.is_finite() && (0.01..=255.0).contains(&advert)).then_some(Self { version, advert })
    }
    fn label(self) -> String {
        format!("v{} {} s", self.version, self.advert)
    }
    fn advert(self) -> Duration {
        Duration::from_secs_f64(self.advert)
    }
    fn skew(self) -> Duration {
        self.advert() * 157 / 256
    }
    fn mdi(self) -> Duration {
        self.advert() * 3 + self.skew()
    }
    /// The goal: 3 x advert_int + Skew_Time + 20 ms.
    fn goal(self) -> Duration {
        self.mdi() + Duration::from_millis(20)
    }
}

/// The keepalived.conf of `host`; `proxy`: the process name its instances track with weight
/// 0.
fn conf(host: &str, prio: u8, cfg: Cfg, instances: u16, proxy: Option<&str>) -> String {
    let mut s = format!("global_defs {{\n    router_id {host}\n}}\n");
    let mut track = String::new();
    if let Some(p) = proxy {
        s.push_str(&format!(
            "vrrp_track_process proxy {{\n    process {p}\n    weight 0\n}}\n"
        ));
        track = "    track_process {\n        proxy\n    }\n".into();
    }
    for k in 0..instances.max(1) {
        let vrid = 51 + k;
        let vrid = if vrid > 255 { vrid - 255 } else { vrid };
        let vip = if k == 0 {
            "10.99.0.100/24".to_owned()
        } else {
            format!("10.99.1.{}/32", k % 256)
        };
        let vip = if k >= 256 {
            format!("10.99.2.{}/32", k - 256)
        } else {
            vip
        };
        s.push_str(&format!(
            "vrrp_instance VI_{k} {{\n    state {}\n    interface eth0\n    virtual_router_id {vrid}\n    priority {prio}\n    advert_int {}\n    version {}\n{track}    virtual_ipaddress {{\n        {vip}\n    }}\n}}\n",
            if prio == 100 { "MASTER" } else { "BACKUP" },
            cfg.advert,
            cfg.version,
        ));
    }
    s
}

struct Bed {
    which: Impl,
    tb: Testbed,
    lb1: Option<Daemon>,
    lb2: Option<Daemon>,
    probe: Option<Probe>,
    _r: (Responder, Responder),
    vrrpd: PathBuf,
    /// With the `proc` fault: lb1's tracked "proxy" (a copy of `sleep` under a name of its
    /// own) and the running process.
    proxy: Option<(String, PathBuf, Option<Daemon>)>,
}

impl Bed {
    fn new(which: Impl, base: &Path, vrrpd: &Path) -> Res<Self> {
        let tb = Testbed::new_in(&["lb1", "lb2", "client"], base)?;
        let r = (
            Responder::start(&tb, "lb1", PORT)?,
            Responder::start(&tb, "lb2", PORT)?,
        );
        Ok(Self {
            which,
            tb,
            lb1: None,
            lb2: None,
            probe: None,
            _r: r,
            vrrpd: vrrpd.to_path_buf(),
            proxy: None,
        })
    }

    /// Whether lb1's keepalived logged that the kernel refused its process-event
    /// subscription.
    fn refused(&self) -> bool {
        self.lb1
            .as_ref()
            .and_then(|d| d.log().ok())
            .is_some_and(|l| l.contains("process event listen - errno 111"))
    }

    /// lb1 tracks a "proxy" process from now on (call before [`up`](Self::up)).
    fn track_proxy(&mut self) -> Res<()> {
        let name = format!("hpb{}{}", std::process::id() % 100_000, unique());
        let path = self.tb.run_dir().join(&name);
        fs::copy("/bin/sleep", &path)?;
        self.proxy = Some((name, path, None));
        self.start_proxy()
    }

    fn start_proxy(&mut self) -> Res<()> {
        if let Some((_, path, running)) = &mut self.proxy {
            let d = self.tb.spawn(
                "lb1",
                &format!("proxy-{}", unique()),
                &path.display().to_string(),
                ["3600"],
            )?;
            *running = Some(d);
        }
        Ok(())
    }

    fn conf(&self, host: &str, cfg: Cfg, instances: u16) -> String {
        let prio = if host == "lb1" { 100 } else { 99 };
        let proxy = self
            .proxy
            .as_ref()
            .filter(|_| host == "lb1")
            .map(|(n, _, _)| n.as_str());
        conf(host, prio, cfg, instances, proxy)
    }

    fn start(&self, host: &str, conf: &str) -> Res<Daemon> {
        match self.which {
            Impl::Keepalived => Ok(keepalived(&self.tb, host, conf)?),
            Impl::Vrrpd => {
                let dir = self.tb.run_dir().join(format!("vrrpd-{host}"));
                fs::create_dir_all(&dir)?;
                let path = dir.join("keepalived.conf");
                fs::write(&path, conf)?;
                let d = self.tb.spawn(
                    host,
                    &format!("vrrpd-{host}-{}", unique()),
                    &self.vrrpd.display().to_string(),
                    ["-f", &path.display().to_string()],
                )?;
                wait(Duration::from_secs(5), || {
                    d.log().unwrap_or_default().contains("started:")
                });
                Ok(d)
            }
        }
    }

    fn up(&mut self, cfg: Cfg, instances: u16) -> Res<()> {
        self.lb2 = Some(self.start("lb2", &self.conf("lb2", cfg, instances))?);
        self.lb1 = Some(self.start("lb1", &self.conf("lb1", cfg, instances))?);
        let ok = wait(cfg.mdi() * 3 + Duration::from_secs(3), || {
            self.tb.vip_holders(VIP).unwrap_or_default() == ["lb1"]
        });
        if !ok {
            return Err(format!("{}: lb1 never became master", self.which.name()).into());
        }
        Ok(())
    }

    fn down(&mut self) {
        self.probe = None;
        for d in [self.lb1.take(), self.lb2.take()].into_iter().flatten() {
            let _ = d.stop();
        }
    }

    /// One fault: returns the outage the client saw.
    fn run(&mut self, cfg: Cfg, fault: &str) -> Res<Option<Duration>> {
        if self.probe.is_none() {
            self.probe = Some(Probe::start(
                &self.tb,
                "client",
                VIP,
                PORT,
                Duration::from_millis(5),
            )?);
        }
        let probe = self.probe.as_ref().ok_or("no probe")?;
        if !probe.wait_for_answer("lb1", cfg.mdi() * 4 + Duration::from_secs(5)) {
            return Err(format!("{}: lb1 does not answer", self.which.name()).into());
        }
        // Steady state for a few adverts, then a random phase within one advert interval: a
        // silent master's outage depends on when it fell silent relative to its last advert,
        // and a fixed phase would bias one daemon against the other.
        thread::sleep(cfg.advert() * 3 + Duration::from_millis(100));
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        thread::sleep(cfg.advert().mul_f64(f64::from(nanos % 1000) / 1000.0));
        let at = Instant::now();
        match fault {
            "link" => self.tb.set_port("lb1", false)?,
            "term" => {
                if let Some(d) = &self.lb1 {
                    d.signal(Signal::SIGTERM)?;
                }
            }
            "proc" => {
                if let Some((_, _, Some(p))) = &self.proxy {
                    p.kill9()?;
                }
            }
            other => return Err(format!("unknown fault {other}").into()),
        }
        let got = probe.wait_for_answer("lb2", cfg.mdi() * 2 + Duration::from_secs(2));
        thread::sleep(Duration::from_millis(50));
        let samples = probe.snapshot();
        let o = if got {
            outage(&samples, "lb1", "lb2", at)
        } else {
            None
        };
        // Restore, and let lb1 preempt back.
        match fault {
            "link" => self.tb.set_port("lb1", true)?,
            "proc" => self.start_proxy()?,
            _ => {
                if let Some(d) = self.lb1.take() {
                    let _ = d.wait_exit(Duration::from_secs(5));
                }
                let lb1 = self.start("lb1", &self.conf("lb1", cfg, 1))?;
                self.lb1 = Some(lb1);
            }
        }
        Ok(o)
    }
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

fn wait(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if f() {
            return true;
        }
        thread::sleep(Duration::from_millis(5));
    }
    f()
}

fn stats(v: &[Duration]) -> (f64, f64) {
    let mut ms: Vec<f64> = v.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    ms.sort_by(f64::total_cmp);
    let med = if ms.is_empty() {
        f64::NAN
    } else if ms.len() % 2 == 1 {
        ms[ms.len() / 2]
    } else {
        f64::midpoint(ms[ms.len() / 2 - 1], ms[ms.len() / 2])
    };
    (med, ms.last().copied().unwrap_or(f64::NAN))
}

fn failover(opts: &Opts) -> Res<()> {
    let base = std::env::temp_dir().join("vrrp-bench");
    println!(
        "| config | fault | vrrpd median (max) ms | keepalived median (max) ms | vrrpd / keepalived | goal 3*adv+skew+20 ms | vrrpd within goal |"
    );
    println!("|---|---|---|---|---|---|---|");
    for cfg in &opts.configs {
        for fault in &opts.faults {
            let mut beds = [
                Bed::new(Impl::Vrrpd, &base, &opts.vrrpd)?,
                Bed::new(Impl::Keepalived, &base, &opts.vrrpd)?,
            ];
            // Which beds run: a daemon that cannot track the process stays in FAULT.
            let mut live = [true, true];
            for (k, b) in beds.iter_mut().enumerate() {
                if fault == "proc" {
                    b.track_proxy()?;
                }
                match b.up(*cfg, 1) {
                    Ok(()) => {}
                    Err(e) if fault == "proc" && b.which == Impl::Keepalived && b.refused() => {
                        eprintln!("{}: {e}", b.which.name());
                        live[k] = false;
                    }
                    Err(e) => return Err(e),
                }
            }
            let mut got: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
            for r in 0..opts.runs {
                for (k, b) in beds.iter_mut().enumerate() {
                    if !live[k] {
                        continue;
                    }
                    match b.run(*cfg, fault)? {
                        Some(o) => got[k].push(o),
                        None => eprintln!("{} run {r}: no switch-over seen", b.which.name()),
                    }
                }
            }
            for b in &mut beds {
                b.down();
            }
            if !live[1] {
                let (vm, vx) = stats(&got[0]);
                let goal = cfg.goal().as_secs_f64() * 1e3;
                println!(
                    "| {} | {fault} | {vm:.0} ({vx:.0}) | stays in FAULT: no process events in a network namespace | - | {goal:.0} | {} |",
                    cfg.label(),
                    if vx <= goal { "yes" } else { "no" }
                );
                continue;
            }
            let (vm, vx) = stats(&got[0]);
            let (km, kx) = stats(&got[1]);
            let goal = cfg.goal().as_secs_f64() * 1e3;
            println!(
                "| {} | {fault} | {vm:.0} ({vx:.0}) | {km:.0} ({kx:.0}) | {:.2} | {goal:.0} | {} |",
                cfg.label(),
                vm / km,
                if vx <= goal { "yes" } else { "no" }
            );
        }
    }
    Ok(())
}

/// Nanoseconds on CPU of `pid` (all its threads, from `/proc/PID/task/*/schedstat`) and its
/// VmRSS in KiB.
fn cpu_rss(pid: u32) -> Option<(u64, u64)> {
    let mut ns = 0u64;
    for t in fs::read_dir(format!("/proc/{pid}/task")).ok()?.flatten() {
        let s = fs::read_to_string(t.path().join("schedstat")).unwrap_or_default();
        ns += s
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
    }
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some((ns, rss))
}

fn pids(d: &Daemon) -> Vec<u32> {
    let mut v = vec![d.pid()];
    if let Some(c) = d.companion_pid() {
        v.push(c);
    }
    // keepalived also forks a checker child; count every child of the parent.
    if let Ok(children) = fs::read_to_string(format!("/proc/{0}/task/{0}/children", d.pid())) {
        for c in children.split_whitespace().filter_map(|c| c.parse().ok()) {
            if !v.contains(&c) {
                v.push(c);
            }
        }
    }
    v
}

fn resources(opts: &Opts, secs: u64) -> Res<()> {
    let base = std::env::temp_dir().join("vrrp-bench");
    println!(
        "| daemon | instances | config | MASTER on-CPU ms/s | BACKUP on-CPU ms/s | MASTER RSS KiB | BACKUP RSS KiB |"
    );
    println!("|---|---|---|---|---|---|---|");
    for cfg in &opts.configs {
        for n in [1u16, 255] {
            for which in [Impl::Vrrpd, Impl::Keepalived] {
                let mut b = Bed::new(which, &base, &opts.vrrpd)?;
                b.up(*cfg, n)?;
                thread::sleep(cfg.mdi() + Duration::from_secs(1));
                let (Some(m), Some(s)) = (&b.lb1, &b.lb2) else {
                    continue;
                };
                let (pm, ps) = (pids(m), pids(s));
                let sample = |p: &[u32]| -> (u64, u64) {
                    p.iter()
                        .filter_map(|p| cpu_rss(*p))
                        .fold((0, 0), |a, x| (a.0 + x.0, a.1 + x.1))
                };
                let (m0, s0) = (sample(&pm), sample(&ps));
                thread::sleep(Duration::from_secs(secs));
                let (m1, s1) = (sample(&pm), sample(&ps));
                #[allow(clippy::cast_precision_loss, reason = "ns counts fit f64 well enough")]
                let per_s = |a: u64, b: u64| (b - a) as f64 / 1e6 / secs as f64;
                println!(
                    "| {} | {n} | {} | {:.2} | {:.2} | {} | {} |",
                    which.name(),
                    cfg.label(),
                    per_s(m0.0, m1.0),
                    per_s(s0.0, s1.0),
                    m1.1,
                    s1.1
                );
                b.down();
            }
        }
    }
    Ok(())
}

struct Opts {
    runs: usize,
    faults: Vec<String>,
    configs: Vec<Cfg>,
    resources: Option<u64>,
    vrrpd: PathBuf,
}

/// The options from `args` (without the program name); `vrrpd` defaults to the `vrrpd` beside
/// `exe`.
fn parse_opts<I>(args: I, exe: &Path) -> Res<Opts>
where
    I: IntoIterator,
    I::Item: Into<std::ffi::OsString>,
{
    let mut o = Opts {
        runs: 5,
        faults: vec!["link".into(), "term".into()],
        configs: ["v2-1", "v3-0.1", "v3-0.05", "v3-0.01"]
            .iter()
            .filter_map(|c| Cfg::parse(c))
            .collect(),
        resources: None,
        vrrpd: exe.with_file_name("vrrpd"),
    };
    use lexopt::prelude::*;
    let mut p = lexopt::Parser::from_args(args);
    while let Some(arg) = p.next()? {
        match arg {
            Long("runs") => o.runs = p.value()?.parse()?,
            Long("faults") => {
                o.faults = p.value()?.string()?.split(',').map(str::to_owned).collect();
            }
            Long("configs") => {
                o.configs = p
                    .value()?
                    .string()?
                    .split(',')
                    .map(|c| Cfg::parse(c).ok_or(format!("bad config {c}")))
                    .collect::<Result<_, _>>()?;
            }
            Long("resources") => o.resources = Some(p.value()?.parse()?),
            Long("vrrpd") => o.vrrpd = p.value()?.into(),
            _ => return Err(arg.unexpected().into()),
        }
    }
    Ok(o)
}

fn main() -> ExitCode {
    let res = std::env::current_exe()
        .map_err(Into::into)
        .and_then(|exe| parse_opts(std::env::args_os().skip(1), &exe))
        .and_then(|o| match o.resources {
            Some(s) => resources(&o, s),
            None => failover(&o),
        });
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vrrp-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn parse(args: &[&str]) -> Res<Opts> {
        parse_opts(args.iter().copied(), Path::new("/opt/bin/vrrp-bench"))
    }

    #[test]
    fn defaults() {
        let o = parse(&[]).unwrap();
        assert_eq!(o.runs, 5);
        assert_eq!(o.faults, ["link", "term"]);
        assert_eq!(o.configs.len(), 4);
        assert_eq!(o.resources, None);
        assert_eq!(o.vrrpd, PathBuf::from("/opt/bin/vrrpd"));
    }

    #[test]
    fn every_option() {
        let o = parse(&[
            "--runs",
            "9",
            "--faults",
            "term",
            "--configs",
            "v2-1,v3-0.05",
            "--resources",
            "30",
            "--vrrpd=/x/vrrpd",
        ])
        .unwrap();
        assert_eq!(o.runs, 9);
        assert_eq!(o.faults, ["term"]);
        let c: Vec<_> = o.configs.iter().map(|c| (c.version, c.advert)).collect();
        assert_eq!(c, [(2, 1.0), (3, 0.05)]);
        assert_eq!(o.resources, Some(30));
        assert_eq!(o.vrrpd, PathBuf::from("/x/vrrpd"));
    }

    #[test]
    fn bad_values_are_errors() {
        for bad in [
            &["--runs", "x"][..],
            &["--runs"],
            &["--configs", "v3"],
            &["--configs", "v4-1"],
            &["--configs", "v3--1"],
            &["--configs", "v3-NaN"],
            &["--configs", "v3-inf"],
            &["--configs", "v3-0"],
            &["--resources", "-1"],
            &["--bogus"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
