//! Running programs in the hosts of a [`Testbed`] and supervising them: [`Daemon`], the
//! registry of started processes, and killing a process together with its companion.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::{STOP_GRACE, Testbed, TestbedError, io_err, lock, netns};

/// A process started by the test bed, tracked until it is reaped.
#[derive(Debug)]
pub(crate) struct Proc {
    child: Child,
    /// A pid file naming a second process to kill with this one (keepalived's VRRP child).
    companion: Option<PathBuf>,
}

pub(crate) type Registry = Arc<Mutex<BTreeMap<u64, Proc>>>;

impl Testbed {
    /// Starts `program ARGS...` inside `host` (through `ip netns exec`), with stdin from
    /// `/dev/null` and stdout and stderr appended to `<run dir>/<name>.log`.
    ///
    /// # Errors
    /// [`TestbedError::UnknownHost`], the log file cannot be created, or the spawn fails.
    pub fn spawn<I, S>(
        &self,
        host: &str,
        name: &str,
        program: &str,
        args: I,
    ) -> Result<Daemon, TestbedError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut cmd = self.host(host)?.ns.command(program);
        cmd.args(args);
        self.spawn_command(name, cmd, None)
    }

    /// Starts `cmd` as the tracked process `name` (see [`Testbed::spawn`]); `companion` is a
    /// pid file naming a second process to kill with it.
    pub(crate) fn spawn_command(
        &self,
        name: &str,
        mut cmd: Command,
        companion: Option<PathBuf>,
    ) -> Result<Daemon, TestbedError> {
        let log_path = self.run_dir.join(format!("{name}.log"));
        let log = File::options()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(io_err(format!("creating log file {}", log_path.display())))?;
        let log2 = log
            .try_clone()
            .map_err(io_err("duplicating the log file handle"))?;
        cmd.stdin(Stdio::null()).stdout(log).stderr(log2);
        let child = cmd.spawn().map_err(io_err(format!(
            "starting {name}: `{}`",
            netns::cmdline(&cmd)
        )))?;
        let pid = child.id();
        let key = self.next_proc.fetch_add(1, Ordering::Relaxed);
        lock(&self.procs).insert(key, Proc { child, companion });
        Ok(Daemon {
            key,
            pid,
            name: name.to_owned(),
            log_path,
            procs: Arc::clone(&self.procs),
        })
    }
}

/// A process started in a host of a [`Testbed`]. It is killed (SIGKILL, with its companion
/// process if any) when dropped, and by the test bed's drop if it is still running then.
#[derive(Debug)]
pub struct Daemon {
    key: u64,
    pid: u32,
    name: String,
    log_path: PathBuf,
    procs: Registry,
}

fn to_pid(pid: u32) -> Option<Pid> {
    i32::try_from(pid).ok().map(Pid::from_raw)
}

/// Reads a pid file and returns the PID if that process still runs, is the same program as
/// `parent` (when `parent` still exists) and, if `require_child`, is `parent`'s child.
fn companion_pid(file: &Path, parent: u32, require_child: bool) -> Option<u32> {
    let pid: u32 = fs::read_to_string(file).ok()?.trim().parse().ok()?;
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let ppid: u32 = status
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))
        .and_then(|v| v.trim().parse().ok())?;
    let comm = fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    let parent_comm = fs::read_to_string(format!("/proc/{parent}/comm")).ok();
    let same_program = parent_comm.is_none_or(|pc| pc.trim() == comm.trim());
    if (require_child && ppid != parent) || !same_program {
        return None;
    }
    Some(pid)
}

/// SIGKILLs a tracked process and its companion, then reaps it. The parent is stopped first
/// so that it cannot respawn the companion (keepalived respawns a dead VRRP child at once).
pub(crate) fn kill_proc(p: &mut Proc) -> Option<ExitStatus> {
    let running = matches!(p.child.try_wait(), Ok(None));
    let pid = p.child.id();
    if running && let Some(parent) = to_pid(pid) {
        let _ = kill(parent, Signal::SIGSTOP);
    }
    let companion = p
        .companion
        .as_deref()
        .and_then(|f| companion_pid(f, pid, running));
    if let Some(c) = companion.and_then(to_pid) {
        let _ = kill(c, Signal::SIGKILL);
    }
    if running {
        let _ = p.child.kill();
    }
    let status = p.child.wait().ok();
    if let Some(c) = companion {
        // Not our child: wait (briefly) until it has gone.
        let deadline = Instant::now() + Duration::from_secs(1);
        while Path::new(&format!("/proc/{c}")).exists() && Instant::now() < deadline {
            if fs::read_to_string(format!("/proc/{c}/stat")).is_ok_and(|s| {
                s.rsplit(')')
                    .next()
                    .is_some_and(|r| r.trim_start().starts_with('Z'))
            }) {
                break;
            }
            thread::sleep(Duration::from_millis(5));
        }
    }
    status
}

impl Daemon {
    /// The daemon's name (also its log file name).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The PID of the started program.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The PID of the companion process (keepalived's VRRP child) if it runs now.
    pub fn companion_pid(&self) -> Option<u32> {
        let procs = lock(&self.procs);
        let p = procs.get(&self.key)?;
        companion_pid(p.companion.as_deref()?, self.pid, true)
    }

    /// The path of the log file (stdout and stderr).
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The log text so far.
    ///
    /// # Errors
    /// The log file cannot be read.
    pub fn log(&self) -> Result<String, TestbedError> {
        let bytes = fs::read(&self.log_path)
            .map_err(io_err(format!("reading {}", self.log_path.display())))?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    fn with_proc<T>(
        &self,
        f: impl FnOnce(&mut Proc) -> Result<T, TestbedError>,
    ) -> Result<T, TestbedError> {
        let mut procs = lock(&self.procs);
        let p = procs
            .get_mut(&self.key)
            .ok_or_else(|| TestbedError::Gone(self.name.clone()))?;
        f(p)
    }

    /// Sends `signal` to the started program (for keepalived: the parent, which forwards
    /// SIGTERM / SIGHUP to its VRRP child).
    ///
    /// # Errors
    /// [`TestbedError::Gone`] if the process was reaped, [`TestbedError::Signal`] if `kill(2)`
    /// fails.
    pub fn signal(&self, signal: Signal) -> Result<(), TestbedError> {
        self.with_proc(|p| {
            if !matches!(p.child.try_wait(), Ok(None)) {
                return Err(TestbedError::Gone(self.name.clone()));
            }
            let err = |source| TestbedError::Signal {
                name: self.name.clone(),
                pid: self.pid,
                signal,
                source,
            };
            let pid = to_pid(self.pid).ok_or(err(nix::Error::ESRCH))?;
            kill(pid, signal).map_err(err)
        })
    }

    /// Sends `signal` to the started program and then to its companion process if one runs
    /// (keepalived: parent, then VRRP child). With SIGSTOP / SIGCONT this freezes or thaws
    /// the whole daemon, as a hung machine would.
    ///
    /// # Errors
    /// As [`Daemon::signal`].
    pub fn signal_all(&self, signal: Signal) -> Result<(), TestbedError> {
        self.signal(signal)?;
        if let Some(c) = self.companion_pid()
            && let Some(pid) = to_pid(c)
        {
            kill(pid, signal).map_err(|source| TestbedError::Signal {
                name: format!("{} (companion)", self.name),
                pid: c,
                signal,
                source,
            })?;
        }
        Ok(())
    }

    /// Kills the program with SIGKILL, together with its companion process (keepalived's VRRP
    /// child, which would otherwise be respawned or left behind), and reaps it.
    ///
    /// # Errors
    /// [`TestbedError::Gone`] if it was reaped already.
    pub fn kill9(&self) -> Result<Option<ExitStatus>, TestbedError> {
        self.with_proc(|p| Ok(kill_proc(p)))
    }

    /// Waits up to `timeout` for the program to exit; `Ok(None)` if it still runs.
    ///
    /// # Errors
    /// [`TestbedError::Gone`], or `waitpid` failing.
    pub fn wait_exit(&self, timeout: Duration) -> Result<Option<ExitStatus>, TestbedError> {
        let deadline = Instant::now() + timeout;
        loop {
            let status = self.with_proc(|p| {
                p.child
                    .try_wait()
                    .map_err(io_err(format!("waiting for {}", self.name)))
            })?;
            if status.is_some() || Instant::now() >= deadline {
                return Ok(status);
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Graceful stop: SIGTERM, then up to [`STOP_GRACE`] for it to exit, then SIGKILL (with
    /// the companion). Returns the exit status.
    ///
    /// # Errors
    /// [`TestbedError::Gone`], or signalling / waiting failed.
    pub fn stop(&self) -> Result<Option<ExitStatus>, TestbedError> {
        match self.signal(Signal::SIGTERM) {
            Ok(()) => {}
            // Exited already: fall through to collect the status.
            Err(TestbedError::Gone(_)) => {}
            Err(e) => return Err(e),
        }
        if let Some(status) = self.wait_exit(STOP_GRACE)? {
            return Ok(Some(status));
        }
        self.kill9()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let proc = lock(&self.procs).remove(&self.key);
        if let Some(mut p) = proc {
            kill_proc(&mut p);
        }
    }
}
