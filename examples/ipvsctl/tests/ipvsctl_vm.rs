//! ipvsctl against ipvsadm on a real kernel, in the qemu VM (`scripts/ipvs-vm.sh` as the
//! cargo runner; ipvsadm is on the VM's PATH):
//!
//! ```sh
//! CI=true CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER=$PWD/scripts/ipvs-vm.sh \
//!   cargo test -p ipvsctl --test ipvsctl_vm -- --ignored
//! ```
//!
//! ipvsctl runs in-process: the test calls [`ipvsctl::main_with`] (what the
//! `ipvsctl` binary's one-line `main` calls) with an argv, a stdin and captured
//! stdout/stderr, so nothing but the test binary has to be copied into the VM. ipvsadm runs
//! as a child process.
//!
//! One test function, one VM boot, four phases; every mismatch is collected and reported
//! at the end so one run shows them all:
//! 1. the same services and destinations configured through ipvsadm and through ipvsctl
//!    give identical `ipvsadm -Sn`, and on each table `ipvsctl -L…` prints exactly what
//!    `ipvsadm -L…` prints (`-n`, `--stats`, `--rate`, `--exact`, `--thresholds`,
//!    `--persistent-conn`, `--tun-info`, `--nosort`, `--timeout`, one service, `-S`, `-Sn`);
//! 2. `ipvsctl -S | ipvsadm -R` and `ipvsadm -S | ipvsctl -R` restore identical tables;
//! 3. refusals: same exit status and same stderr for bad input and kernel errors, also
//!    inside `-R` scripts;
//! 4. speed: `-R` of 1,000 services × 2 destinations, ipvsctl vs ipvsadm (printed, not
//!    asserted).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Instant;

use ipvsctl::{main_with, names::SystemNames, restore};

/// What one invocation did: exit status, stdout, stderr.
type Outcome = (i32, String, String);

fn split(args: &str) -> Vec<String> {
    args.split_whitespace().map(str::to_owned).collect()
}

/// ipvsadm ARGS with `stdin`.
fn adm(args: &str, stdin: &str) -> Outcome {
    let mut child = Command::new("ipvsadm")
        .args(split(args))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ipvsadm on PATH (is this running in the VM?)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// ipvsctl ARGS with `stdin`, in-process, called "ipvsadm" so messages naming the program
/// compare equal.
fn ctl(args: &str, stdin: &str) -> Outcome {
    let mut argv = vec!["ipvsadm".to_owned()];
    argv.extend(split(args));
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = main_with(
        &argv,
        &mut stdin.as_bytes(),
        &mut out,
        &mut err,
        &SystemNames::new(),
    );
    (
        i32::from(code),
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).into_owned(),
    )
}

fn must(what: &str, o: &Outcome) {
    assert!(
        o.0 == 0 && o.2.is_empty(),
        "{what}: status {} stderr {:?}",
        o.0,
        o.2
    );
}

fn flush() {
    must("ipvsadm -C", &adm("-C", ""));
}

/// Collects mismatches instead of stopping at the first.
#[derive(Default)]
struct Report {
    checks: usize,
    failures: Vec<String>,
}

impl Report {
    fn same(&mut self, what: &str, a: &Outcome, c: &Outcome) {
        self.checks += 1;
        if a != c {
            self.failures.push(format!(
                "--- {what}\nipvsadm: status {} stdout:\n{}stderr: {:?}\nipvsctl: status {} stdout:\n{}stderr: {:?}",
                a.0, a.1, a.2, c.0, c.1, c.2
            ));
        }
    }
    fn text(&mut self, what: &str, a: &str, c: &str) {
        self.checks += 1;
        if a != c {
            self.failures
                .push(format!("--- {what}\nexpected:\n{a}\ngot:\n{c}"));
        }
    }
}

struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
    fn pick<'a>(&mut self, v: &[&'a str]) -> &'a str {
        v[self.next(v.len() as u64) as usize]
    }
}

/// A random-ish table as ipvsadm commands: every scheduler, TCP/UDP/SCTP/fwmark, IPv4 and
/// IPv6, persistence with netmasks, one-packet, scheduler flags, a persistence engine,
/// DR/NAT/tunnels (ipip, gue, gre), weights and thresholds.
fn commands(seed: u64) -> Vec<String> {
    let mut r = Lcg(seed);
    let scheds = [
        "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh",
    ];
    let mut out = Vec::new();
    for (i, sched) in scheds.iter().enumerate() {
        let svc = match i % 4 {
            0 => format!("-t 10.0.0.{}:80", i + 1),
            1 => format!("-u 10.0.0.{}:53", i + 1),
            2 => format!("-t [2001:db8::{}]:443", i + 1),
            _ => format!("-f {}", i + 1),
        };
        let mut line = format!("-A {svc} -s {sched}");
        if r.next(2) == 0 {
            line.push_str(&format!(" -p {}", 10 + r.next(900)));
            if r.next(2) == 0 {
                line.push_str(if svc.contains('[') {
                    " -M 64"
                } else {
                    " -M 255.255.255.0"
                });
            }
        }
        if svc.starts_with("-u") && r.next(2) == 0 {
            line.push_str(" -o");
        }
        match *sched {
            "sh" => line.push_str(" -b sh-fallback,sh-port"),
            "mh" => line.push_str(" -b mh-port"),
            "rr" if r.next(2) == 0 => line.push_str(" -b flag-3"),
            _ => {}
        }
        out.push(line);
        let v6 = svc.contains('[');
        for j in 0..(1 + r.next(4)) {
            let ip = if v6 {
                format!("[2001:db8:1::{}]", 10 * i as u64 + j + 1)
            } else {
                format!("192.168.{i}.{}", j + 1)
            };
            let port = if svc.starts_with("-f") {
                String::new()
            } else {
                format!(":{}", 8000 + r.next(3))
            };
            let fwd = r.pick(&[
                "-m",
                "-g",
                "-i",
                "-i --tun-type gue --tun-port 6080 --tun-csum",
                "-i --tun-type gre --tun-nocsum",
                "-m",
            ]);
            let mut d = format!("-a {svc} -r {ip}{port} {fwd} -w {}", r.next(20));
            if r.next(3) == 0 {
                let u = 10 + r.next(100);
                d.push_str(&format!(" -x {u} -y {}", u / 2));
            }
            out.push(d);
        }
    }
    out.push("-A --sctp-service 10.0.0.40:5000 -s rr".to_owned());
    out.push("-a --sctp-service 10.0.0.40:5000 -r 192.168.40.1:5000 -m".to_owned());
    out.push("-A -u 10.0.0.50:5060 -s rr -p 60 --pe sip".to_owned());
    out.push("-A -f 99 -6 -s wlc".to_owned());
    out.push("-a -f 99 -6 -r 2001:db8:2::1 -g -w 4".to_owned());
    // A tunnel to an IPv6 real server from an IPv4 service.
    out.push("-a -t 10.0.0.1:80 -r [2001:db8:3::1]:80 -i -w 2".to_owned());
    // Port 0 persistent ("all ports") service, default scheduler, -r without port.
    out.push("-A -t 10.0.0.60:0 -p".to_owned());
    out.push("-a -t 10.0.0.60:0 -r 192.168.60.1".to_owned());
    // Edits of both kinds.
    out.push("-E -t 10.0.0.60:0 -s lc -p 120".to_owned());
    out.push("-e -t 10.0.0.60:0 -r 192.168.60.1 -w 9".to_owned());
    out
}

const LISTINGS: &[&str] = &[
    "-Ln",
    "-L -n",
    "-Ln --stats",
    "-Ln --stats --exact",
    "-Ln --rate",
    "-Ln --rate --exact",
    "-Ln --thresholds",
    "-Ln --persistent-conn",
    "-Ln --tun-info",
    "-Ln --nosort",
    "-Ln --timeout",
    "-Ln -t 10.0.0.1:80",
    "-Ln -f 4",
    "-Ln --stats -u 10.0.0.2:53",
    "-L",
    "-S",
    "-Sn",
    "-S -n",
];

fn compare_listings(rep: &mut Report, label: &str) {
    for l in LISTINGS {
        rep.same(&format!("{label}: {l}"), &adm(l, ""), &ctl(l, ""));
    }
}

/// Run every phase in one VM boot.
#[test]
#[ignore = "needs ip_vs: runs in the qemu VM via scripts/ipvs-vm.sh"]
fn ipvsctl_matches_ipvsadm() {
    let mut rep = Report::default();

    // ---- 1. same table both ways, same listings ----
    for seed in [1_u64, 7, 42] {
        let cmds = commands(seed);
        flush();
        for c in &cmds {
            must(&format!("ipvsadm {c}"), &adm(c, ""));
        }
        let by_adm = adm("-Sn", "").1;
        compare_listings(&mut rep, &format!("seed {seed}, configured by ipvsadm"));
        flush();
        for c in &cmds {
            let o = ctl(c, "");
            rep.same(
                &format!("ipvsctl {c}"),
                &(0, String::new(), String::new()),
                &o,
            );
        }
        let by_ctl = adm("-Sn", "").1;
        rep.text(
            &format!("seed {seed}: -Sn after ipvsctl vs after ipvsadm"),
            &by_adm,
            &by_ctl,
        );
        compare_listings(&mut rep, &format!("seed {seed}, configured by ipvsctl"));
    }
    // Zeroing, timeouts.
    rep.same("-Z", &adm("-Z", ""), &ctl("-Z", ""));
    rep.same(
        "-Z one",
        &adm("-Z -t 10.0.0.1:80", ""),
        &ctl("-Z -t 10.0.0.1:80", ""),
    );
    must("ipvsctl --set", &ctl("--set 901 121 301", ""));
    rep.text(
        "--timeout after ipvsctl --set",
        "Timeout (tcp tcpfin udp): 901 121 301\n",
        &adm("-Ln --timeout", "").1,
    );
    must("ipvsadm --set", &adm("--set 900 120 300", ""));

    // ---- 2. save/restore round trips ----
    let reference = adm("-Sn", "").1;
    for save in ["-S", "-Sn"] {
        let saved = ctl(save, "");
        flush();
        let r = adm("-R", &saved.1);
        rep.same(
            &format!("ipvsctl {save} | ipvsadm -R"),
            &(0, String::new(), String::new()),
            &r,
        );
        rep.text(
            &format!("ipvsctl {save} | ipvsadm -R: -Sn"),
            &reference,
            &adm("-Sn", "").1,
        );
        let saved = adm(save, "");
        flush();
        let r = ctl("-R", &saved.1);
        rep.same(
            &format!("ipvsadm {save} | ipvsctl -R"),
            &(0, String::new(), String::new()),
            &r,
        );
        rep.text(
            &format!("ipvsadm {save} | ipvsctl -R: -Sn"),
            &reference,
            &adm("-Sn", "").1,
        );
    }

    // ---- 3. refusals ----
    let base = "-A -t 10.9.0.1:80 -s rr\n-a -t 10.9.0.1:80 -r 10.9.0.5:80 -m\n-A -f 77 -s wrr\n";
    let errors = [
        "-A -t 10.9.0.1:80 -s rr",
        "-A -t 10.9.0.2:80 -s nosuch",
        "-A -t 10.9.0.2:80 -s Bad-Name",
        "-A -t 10.9.0.2:80 -s rr --pe nosuchpe -p",
        "-E -t 10.9.0.99:80 -s rr",
        "-D -t 10.9.0.99:80",
        "-D -f 78",
        "-Z -t 10.9.0.99:80",
        "-a -t 10.9.0.99:80 -r 10.9.0.5:80",
        "-a -t 10.9.0.1:80 -r 10.9.0.5:80 -m",
        "-e -t 10.9.0.1:80 -r 10.9.0.6:80 -m",
        "-d -t 10.9.0.1:80 -r 10.9.0.6:80",
        "-e -t 10.9.0.1:80 -r 10.9.0.5:80 -m -x 1 -y 5",
        "-a -t 10.9.0.1:80 -r [2001:db8::1]:80 -m",
        "-L -t 10.9.0.99:80",
        "-Ln -t 10.9.0.99:80 --stats",
        "-A -t 10.9.0.3:0 -s rr",
        "-A -t 10.9.0.3 -s rr",
        "-A -t 10.9.0.3:80 -s rr -o",
        "-A -u 10.9.0.3:80 -s rr -b flag-9",
        "-A -u 10.9.0.3:80 -s rr -b sh-port",
        "-A -t 10.9.0.3:80 -p abc",
        "-A -t 10.9.0.3:80 -M 255.255.255.0 -p 0",
        "-A -t 10.9.0.3:80 -x 5",
        "-A",
        "-A -t",
        "-A -t 1.2.3:x",
        "-A -f 0",
        "-A -6 -f 5",
        "-a -t 10.9.0.1:80 -r 10.9.0.7:80 -w 70000",
        "-a -t 10.9.0.1:80 -r 10.9.0.7:80 -w -1",
        "-a -f 77 -r 10.9.0.7 -i --tun-type gue",
        "-a -f 77 -r 10.9.0.7 -i --tun-type gre --tun-port 5",
        "-a -f 77 -r 10.9.0.7 -i --tun-type gue --tun-port 5 --tun-csum --tun-remcsum",
        "-a -f 77 -r 10.9.0.7 -m --tun-type gre",
        "-a -f 77 -r 10.9.0.7 -i --tun-type vxlan",
        "-a -t 10.9.0.1:80",
        "-d -t 10.9.0.1:80 -r 10.9.0.5:80 -w 3",
        "-L --timeout --stats",
        "-L --daemon --persistent-conn",
        "-L -n -n",
        "-L -A",
        "-C extra",
        "--set 1 2",
        "--set 1 2 x",
        "--start-daemon sideways",
        "--foo",
        "-L --foo",
        "-n -L",
        "-Q",
        "",
    ];
    for e in errors {
        flush();
        must("base", &adm("-R", base));
        let a = adm(e, "");
        flush();
        must("base", &adm("-R", base));
        let c = ctl(e, "");
        rep.same(&format!("error case {e:?}"), &a, &c);
    }
    // Inside -R: a refused line in the middle, then a line that does not parse.
    for script in [
        "-A -t 10.9.0.1:80 -s rr\n-a -t 10.9.0.1:80 -r 10.9.0.6:80 -m\n-a -t 10.9.0.1:80 -r 10.9.0.7:80\n",
        "-A -t 10.9.0.2:80 -s nosuch\n-a -t 10.9.0.2:80 -r 10.9.0.6:80\n-A -t 10.9.0.3:80\n",
        "-A -t 10.9.0.4:80\n-a -t 10.9.0.4:80 -r 10.9.0.6:80 -w 99999\n-A -t 10.9.0.5:80\n",
        "ipvsadm -A -t 10.9.0.4:80\n\n  \n-D -t 10.9.0.99:80\n",
    ] {
        flush();
        must("base", &adm("-R", base));
        let a = adm("-R", script);
        let a_table = adm("-Sn", "").1;
        flush();
        must("base", &adm("-R", base));
        let c = ctl("-R", script);
        let c_table = adm("-Sn", "").1;
        rep.same(&format!("-R script {script:?}"), &a, &c);
        rep.text(&format!("-R script {script:?}: -Sn"), &a_table, &c_table);
    }

    // Sync daemon listing.
    flush();
    must(
        "start daemon",
        &adm("--start-daemon backup --mcast-interface lo --syncid 9", ""),
    );
    rep.same(
        "-L --daemon",
        &adm("-L --daemon", ""),
        &ctl("-L --daemon", ""),
    );
    must("stop daemon", &adm("--stop-daemon backup", ""));
    rep.same(
        "-L --daemon (none)",
        &adm("-L --daemon", ""),
        &ctl("-L --daemon", ""),
    );

    // ---- 4. speed: 1,000 services x 2 destinations ----
    let mut script = String::new();
    for i in 0..1000u32 {
        let vip = format!("10.{}.{}.{}:80", 100 + i / 65536, (i / 256) % 256, i % 256);
        script.push_str(&format!("-A -t {vip} -s wrr\n"));
        for j in 1..=2 {
            script.push_str(&format!(
                "-a -t {vip} -r 172.16.{}.{}:8080 -m -w {j}\n",
                i % 256,
                j
            ));
        }
    }
    flush();
    let t = Instant::now();
    let a = adm("-R", &script);
    let adm_time = t.elapsed();
    must("ipvsadm -R (1000x2)", &a);
    let a_table = adm("-Sn", "").1;
    flush();
    let t = Instant::now();
    let c = ctl("-R", &script);
    let ctl_time = t.elapsed();
    must("ipvsctl -R (1000x2)", &c);
    let c_table = adm("-Sn", "").1;
    rep.text("1000x2 restore: -Sn", &a_table, &c_table);
    // How much of ipvsctl's time is parsing (no kernel involved).
    let t = Instant::now();
    let (steps, bad) = restore::parse_script(&script, "ipvsadm", &SystemNames::new());
    let parse_time = t.elapsed();
    assert!(bad.is_none() && steps.len() == 3000, "{bad:?}");
    println!(
        "-R of 1000 services x 2 destinations (3000 lines): ipvsadm {:.3} s, ipvsctl {:.3} s \
         (of which parsing {:.3} s), ipvsctl is {:.1}x faster ({} build)",
        adm_time.as_secs_f64(),
        ctl_time.as_secs_f64(),
        parse_time.as_secs_f64(),
        adm_time.as_secs_f64() / ctl_time.as_secs_f64().max(1e-9),
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    flush();

    println!(
        "{} comparisons, {} mismatches",
        rep.checks,
        rep.failures.len()
    );
    assert!(
        rep.failures.is_empty(),
        "{} of {} comparisons differ:\n{}",
        rep.failures.len(),
        rep.checks,
        rep.failures.join("\n")
    );
}

/// With `CI=true` the VM must be runnable here: the ignored test above must not be skipped
/// silently for want of qemu.
#[test]
fn ci_requires_the_vm() {
    if std::env::var("CI").as_deref() != Ok("true") {
        println!("CI is not true: the VM check is advisory here");
        return;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/ipvs-vm.sh");
    let st = Command::new(script).arg("--check").status().unwrap();
    assert!(
        st.success(),
        "CI=true but the IPVS VM cannot run here ({st}): install qemu-system-x86 busybox-static cpio kmod ipvsadm"
    );
}
