//! Starting keepalived (VRRP only) in a host of a [`Testbed`].

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use crate::{Daemon, Testbed, TestbedError, io_err};

/// Writes `conf` to `<run dir>/keepalived-<host>/keepalived.conf` and starts Debian's
/// keepalived in `host`, in the foreground, VRRP only, logging to its log file:
/// `keepalived -n -P -l -D -G -f CONF -p PID -r VRRPPID -c CHKPID -i HOST`.
/// Every instance gets its own pid files (the defaults are global and a second instance would
/// exit with "daemon is already running"). Returns once the VRRP child has written its pid file.
///
/// The returned [`Daemon`] is the keepalived parent; [`Daemon::signal`] goes to it (it
/// forwards to the VRRP child) and [`Daemon::kill9`] kills both.
///
/// # Errors
/// [`TestbedError::UnknownHost`], file errors, the spawn failing, keepalived exiting during
/// start-up ([`TestbedError::DaemonExited`] with its log) or not starting its VRRP child within
/// 5 s ([`TestbedError::Timeout`]).
pub fn keepalived(tb: &Testbed, host: &str, conf: &str) -> Result<Daemon, TestbedError> {
    let ns = tb.ns(host)?;
    let dir = tb.run_dir.join(format!("keepalived-{host}"));
    fs::create_dir_all(&dir).map_err(io_err(format!("creating {}", dir.display())))?;
    let conf_path = dir.join("keepalived.conf");
    let pid_file = dir.join("keepalived.pid");
    let vrrp_pid = dir.join("vrrp.pid");
    let chk_pid = dir.join("checkers.pid");
    fs::write(&conf_path, conf).map_err(io_err(format!("writing {}", conf_path.display())))?;
    for f in [&pid_file, &vrrp_pid, &chk_pid] {
        match fs::remove_file(f) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(format!("removing stale {}", f.display()))(e)),
        }
    }
    let mut cmd = ns.command(keepalived_program());
    cmd.args(["-n", "-P", "-l", "-D", "-G", "-f"])
        .arg(&conf_path)
        .arg("-p")
        .arg(&pid_file)
        .arg("-r")
        .arg(&vrrp_pid)
        .arg("-c")
        .arg(&chk_pid)
        .arg("-i")
        .arg(host);
    let daemon = tb.spawn_command(&format!("keepalived-{host}"), cmd, Some(vrrp_pid.clone()))?;
    let timeout = Duration::from_secs(5);
    let deadline = Instant::now() + timeout;
    loop {
        if daemon.companion_pid().is_some() {
            return Ok(daemon);
        }
        if let Some(status) = daemon.wait_exit(Duration::ZERO)? {
            let log = daemon.log().unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(15).collect();
            return Err(TestbedError::DaemonExited {
                name: daemon.name().to_owned(),
                status: status.to_string(),
                log_tail: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
            });
        }
        if Instant::now() >= deadline {
            return Err(TestbedError::Timeout {
                what: format!("keepalived on {host} to write {}", vrrp_pid.display()),
                after: timeout,
            });
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// The keepalived binary: `$KEEPALIVED` if set, else `/usr/sbin/keepalived` if it exists,
/// else `keepalived` from `PATH`.
pub fn keepalived_program() -> PathBuf {
    if let Some(p) = std::env::var_os("KEEPALIVED") {
        return PathBuf::from(p);
    }
    let debian = Path::new("/usr/sbin/keepalived");
    if debian.exists() {
        debian.to_path_buf()
    } else {
        PathBuf::from("keepalived")
    }
}

/// Whether keepalived can run here: `true` when [`keepalived_program`] exists or answers
/// `--version`. Otherwise a test should skip: this prints `skipped: …` and returns `false`,
/// except with `CI=true`, where a missing keepalived is a failure (a panic).
#[allow(
    clippy::panic,
    reason = "a test guard: failing the test on CI is its purpose"
)]
#[track_caller]
pub fn keepalived_or_skip() -> bool {
    let p = keepalived_program();
    let found = p.exists()
        || std::process::Command::new(&p)
            .arg("--version")
            .output()
            .is_ok();
    if !found {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("keepalived is missing on CI: apt-get install keepalived");
        }
        eprintln!("skipped: keepalived is not installed");
    }
    found
}
