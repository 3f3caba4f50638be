//! What kv.rs and servers.rs share: finding server binaries, free loopback ports, and starting
//! a server under a `sh` reaper in its own process group whose standard input is a pipe from
//! this process. When the pipe closes (the guard is dropped, or this process ends however it
//! ends) the reaper stops the server by PID (SIGTERM, then SIGKILL after a grace period),
//! waits for it and deletes its directory.
#![allow(dead_code, unreachable_pub)]

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};

/// The first of `names` found on `PATH` or in /usr/sbin, /usr/bin, /sbin.
pub fn which_any(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    dirs.extend(["/usr/sbin", "/usr/bin", "/sbin"].map(PathBuf::from));
    names
        .iter()
        .flat_map(|n| dirs.iter().map(move |d| d.join(n)))
        .find(|p| p.is_file())
}

/// Whether this process runs as root (effective uid 0).
pub fn is_root() -> bool {
    // /proc/self/status: "Uid:\treal\teffective\tsaved\tfs".
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|rest| rest.split_whitespace().nth(1).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

/// A loopback port that was free a moment ago.
pub fn try_free_port() -> Result<u16, String> {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|e| format!("bind: {e}"))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("local_addr: {e}"))
}

/// `false` once `pid` has exited (gone, or a zombie awaiting its reaper).
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next().map(|st| st != "Z"))
        })
        .unwrap_or(false)
}

/// Starts `argv` (program and arguments, output to `log`) under a reaper that deletes `dir`
/// after the server stopped, and SIGKILLs it `kill_after_secs` after the SIGTERM. Returns the
/// server's PID, the reaper and the pipe whose closing stops it.
pub fn spawn_reaped<S: AsRef<OsStr>>(
    argv: &[S],
    dir: &Path,
    log: &Path,
    kill_after_secs: u32,
) -> Result<(u32, Child, ChildStdin), String> {
    const SCRIPT: &str = r#"
"$@" >"$REAP_LOG" 2>&1 </dev/null &
pid=$!
echo "$pid"
read -r _ignored || true
kill -s TERM "$pid" 2>/dev/null
( sleep "$REAP_GRACE"; kill -s KILL "$pid" 2>/dev/null ) >/dev/null 2>&1 </dev/null &
wait "$pid"
rm -rf "$REAP_DIR"
"#;
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(SCRIPT)
        .arg("session-store-test-reaper")
        .args(argv)
        .env("REAP_LOG", log)
        .env("REAP_DIR", dir)
        .env("REAP_GRACE", kill_after_secs.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        // Its own process group: a Ctrl-C aimed at the tests must not kill the reaper first.
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot spawn the reaper shell: {e}"))?;
    let stdin = child.stdin.take().ok_or("reaper has no stdin")?;
    let stdout = child.stdout.take().ok_or("reaper has no stdout")?;
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(|e| format!("reading the server pid: {e}"))?;
    let pid = line
        .trim()
        .parse::<u32>()
        .map_err(|e| format!("reaper printed {line:?} instead of a pid: {e}"))?;
    Ok((pid, child, stdin))
}
