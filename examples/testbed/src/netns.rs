//! Named Linux network namespaces for tests and demos.
//!
//! A [`Netns`] is a namespace created with `ip netns add` (so it shows up in `ip netns list`
//! and can be entered with `ip netns exec`). It is deleted when the value is dropped, if this
//! value created it. Code can run inside it in three ways:
//!
//! * [`Netns::run`]: a closure on a fresh thread that has joined the namespace with
//!   `setns(2)`; sockets it creates stay in the namespace after the closure returns.
//! * [`Netns::spawn`]: the same for a long-lived background thread.
//! * [`Netns::command`] / [`Netns::ip`]: external programs through `ip netns exec` / `ip -n`.
//!
//! Everything here needs root (`CAP_SYS_ADMIN`) and iproute2; [`prereq`] tells whether the
//! machine has both, and [`Netns::require_or_skip`] turns that into a test guard.

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};

use nix::sched::{CloneFlags, setns};

/// Where `ip netns add` puts the bind mounts that keep named namespaces alive.
pub const NETNS_RUN_DIR: &str = "/run/netns";

/// What went wrong while creating, entering or driving a network namespace.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    /// The name cannot be used as a namespace name.
    #[error(
        "invalid network namespace name {name:?}: {reason}; use 1 to 64 characters from [A-Za-z0-9_.-], not \".\" or \"..\""
    )]
    InvalidName {
        /// The rejected name.
        name: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A namespace of that name exists already (left over from a crashed run, or in use).
    #[error(
        "network namespace {name:?} already exists; pick another name or remove the stale one with `ip netns del {name}`"
    )]
    Exists {
        /// The namespace name.
        name: String,
    },
    /// An external program could not be started at all.
    #[error("could not start `{cmdline}`: {source}; is iproute2 installed and in PATH?")]
    Spawn {
        /// The command line that was attempted.
        cmdline: String,
        /// The error from `exec`.
        #[source]
        source: io::Error,
    },
    /// An external program ran and failed.
    #[error("`{cmdline}` failed ({status}): {stderr}")]
    Failed {
        /// The command line that failed.
        cmdline: String,
        /// Its exit status, as text.
        status: String,
        /// What it printed on stderr (trimmed).
        stderr: String,
    },
    /// Joining the namespace, or a file operation inside it, failed.
    #[error(
        "{what} in network namespace {name:?}: {source}; are we root and does /run/netns/{name} exist?"
    )]
    Io {
        /// The namespace name.
        name: String,
        /// What was being done.
        what: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

/// A named network namespace (`/run/netns/NAME`).
#[derive(Debug)]
pub struct Netns {
    name: String,
    path: PathBuf,
    owned: bool,
}

impl Netns {
    /// Creates the namespace `name` with `ip netns add`. It is deleted again when the returned
    /// value is dropped.
    ///
    /// # Errors
    /// [`NetnsError::InvalidName`], [`NetnsError::Exists`] if the name is taken, or the error
    /// of `ip netns add` (typically: not root).
    pub fn create(name: &str) -> Result<Self, NetnsError> {
        validate_name(name)?;
        let path = Path::new(NETNS_RUN_DIR).join(name);
        if path.exists() {
            return Err(NetnsError::Exists {
                name: name.to_owned(),
            });
        }
        match run_output(Command::new("ip").args(["netns", "add", name])) {
            Ok(_) => {}
            Err(NetnsError::Failed { stderr, .. }) if stderr.contains("File exists") => {
                return Err(NetnsError::Exists {
                    name: name.to_owned(),
                });
            }
            Err(e) => return Err(e),
        }
        Ok(Self {
            name: name.to_owned(),
            path,
            owned: true,
        })
    }

    /// Refers to an existing namespace without taking ownership: it is not deleted on drop.
    ///
    /// # Errors
    /// [`NetnsError::InvalidName`], or [`NetnsError::Io`] if `/run/netns/NAME` does not exist.
    pub fn attach(name: &str) -> Result<Self, NetnsError> {
        validate_name(name)?;
        let path = Path::new(NETNS_RUN_DIR).join(name);
        if let Err(source) = std::fs::metadata(&path) {
            return Err(NetnsError::Io {
                name: name.to_owned(),
                what: "looking up".into(),
                source,
            });
        }
        Ok(Self {
            name: name.to_owned(),
            path,
            owned: false,
        })
    }

    /// The namespace name (as in `ip netns list`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The namespace file, `/run/netns/NAME`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether this value deletes the namespace when dropped.
    pub fn is_owned(&self) -> bool {
        self.owned
    }

    fn open(&self) -> io::Result<File> {
        File::open(&self.path)
    }

    /// Runs `f` on a fresh thread that has joined this namespace and returns its result.
    ///
    /// Sockets created by `f` belong to this namespace for their whole life, so a listener
    /// bound here can be served from any other thread afterwards. A panic in `f` is passed on
    /// to the caller.
    ///
    /// # Errors
    /// Opening `/run/netns/NAME` or `setns(2)` failed (the closure is not run then).
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> io::Result<T> {
        let file = self.open()?;
        let joined = thread::scope(|s| {
            s.spawn(move || {
                setns(&file, CloneFlags::CLONE_NEWNET).map_err(io::Error::from)?;
                drop(file);
                Ok(f())
            })
            .join()
        });
        match joined {
            Ok(result) => result,
            Err(payload) => std::panic::resume_unwind(payload),
        }
    }

    /// Starts a named background thread inside this namespace and returns its handle once the
    /// thread has joined the namespace. Threads that `f` spawns inherit the namespace.
    ///
    /// # Errors
    /// Opening `/run/netns/NAME`, creating the thread or `setns(2)` failed (`f` is not run).
    pub fn spawn<T, F>(&self, thread_name: &str, f: F) -> io::Result<JoinHandle<Option<T>>>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let file = self.open()?;
        let (tx, rx) = mpsc::sync_channel::<io::Result<()>>(1);
        let handle = thread::Builder::new()
            .name(thread_name.to_owned())
            .spawn(move || {
                let entered = setns(&file, CloneFlags::CLONE_NEWNET).map_err(io::Error::from);
                drop(file);
                let ok = entered.is_ok();
                // The receiver waits for this message; if it is gone there is nobody to run for.
                if tx.send(entered).is_err() || !ok {
                    return None;
                }
                Some(f())
            })?;
        match rx.recv() {
            Ok(Ok(())) => Ok(handle),
            Ok(Err(e)) => {
                let _ = handle.join();
                Err(e)
            }
            Err(_) => {
                let _ = handle.join();
                Err(io::Error::other(
                    "namespace thread ended before joining the namespace",
                ))
            }
        }
    }

    /// A [`Command`] that runs `program` in this namespace (`ip netns exec NAME program`).
    /// Add arguments, redirections and environment as usual; the spawned PID is `program`'s,
    /// because `ip netns exec` replaces itself with it.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.arg("netns").arg("exec").arg(&self.name).arg(program);
        cmd
    }

    /// Runs `ip -n NAME ARGS...` and returns its stdout.
    ///
    /// # Errors
    /// [`NetnsError::Spawn`] if `ip` cannot be started, [`NetnsError::Failed`] (with stderr
    /// and the command line) if it exits unsuccessfully.
    pub fn ip<I, S>(&self, args: I) -> Result<String, NetnsError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new("ip");
        cmd.arg("-n").arg(&self.name).args(args);
        run_output(&mut cmd)
    }

    /// Runs `program ARGS...` in this namespace (through `ip netns exec`) and returns its stdout.
    ///
    /// # Errors
    /// As [`Netns::ip`].
    pub fn output<I, S>(&self, program: &str, args: I) -> Result<String, NetnsError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.command(program);
        cmd.args(args);
        run_output(&mut cmd)
    }

    /// Sets a sysctl of this namespace, e.g. `sysctl("net.ipv4.conf.all.rp_filter", "0")`,
    /// by writing `/proc/sys/...` from a thread inside the namespace (per-namespace `net.*`
    /// keys resolve to the namespace of the writing thread).
    ///
    /// # Errors
    /// [`NetnsError::Io`] if the key does not exist or the write is refused.
    pub fn sysctl(&self, key: &str, value: &str) -> Result<(), NetnsError> {
        let path = Path::new("/proc/sys").join(key.replace('.', "/"));
        let io_err = |source| NetnsError::Io {
            name: self.name.clone(),
            what: format!("setting sysctl {key}={value}"),
            source,
        };
        self.run(|| std::fs::write(&path, value))
            .map_err(io_err)?
            .map_err(io_err)
    }

    /// Checks [`prereq`] for a test: returns `true` if network namespaces can be used.
    /// Otherwise, when the environment variable `CI` is `true`, panics with the reason (a CI
    /// machine must be able to run these tests); else prints `skipped: <reason>` and returns
    /// `false` so the test can return early.
    #[allow(
        clippy::panic,
        reason = "a test guard: failing the test on CI is its purpose"
    )]
    #[track_caller]
    pub fn require_or_skip() -> bool {
        match prereq() {
            Ok(()) => true,
            Err(reason) => {
                if std::env::var("CI").is_ok_and(|v| v == "true") {
                    panic!("network namespace tests cannot run on CI: {reason}");
                }
                eprintln!("skipped: {reason}");
                false
            }
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if self.owned
            && let Err(e) = run_output(Command::new("ip").args(["netns", "del", &self.name]))
        {
            eprintln!(
                "warning: could not delete network namespace {}: {e}",
                self.name
            );
        }
    }
}

/// Tells whether this machine can run the namespace tests: we are root, `ip` (iproute2)
/// exists, and a named network namespace can actually be created and entered. The answer is
/// computed once per process. `Err` holds a sentence saying what is missing.
///
/// # Errors
/// The reason why namespaces cannot be used here.
pub fn prereq() -> Result<(), String> {
    static ANSWER: OnceLock<Result<(), String>> = OnceLock::new();
    ANSWER.get_or_init(check_prereq).clone()
}

fn check_prereq() -> Result<(), String> {
    if !nix::unistd::geteuid().is_root() {
        return Err("not running as root (network namespaces need CAP_SYS_ADMIN)".into());
    }
    match Command::new("ip")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(s) if s.success() => {}
        Ok(s) => return Err(format!("`ip -V` failed ({s}): is iproute2 broken?")),
        Err(e) => return Err(format!("`ip` (iproute2) cannot be run: {e}")),
    }
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "hprq-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    );
    let ns = Netns::create(&name).map_err(|e| format!("cannot create a network namespace: {e}"))?;
    ns.ip(["link", "set", "lo", "up"])
        .map_err(|e| format!("cannot configure a network namespace: {e}"))?;
    ns.run(|| std::net::UdpSocket::bind("127.0.0.1:0").map(drop))
        .and_then(|r| r)
        .map_err(|e| format!("cannot enter a network namespace with setns: {e}"))?;
    Ok(())
}

fn validate_name(name: &str) -> Result<(), NetnsError> {
    let bad = |reason| {
        Err(NetnsError::InvalidName {
            name: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() || name.len() > 64 {
        return bad("length out of range");
    }
    if name == "." || name == ".." {
        return bad("reserved name");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
    {
        return bad("unsupported character");
    }
    Ok(())
}

/// The command line of `cmd`, for error messages.
pub(crate) fn cmdline(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs `cmd` to completion and returns its stdout, or a typed error with stderr.
pub(crate) fn run_output(cmd: &mut Command) -> Result<String, NetnsError> {
    let out: Output = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|source| NetnsError::Spawn {
            cmdline: cmdline(cmd),
            source,
        })?;
    if !out.status.success() {
        return Err(NetnsError::Failed {
            cmdline: cmdline(cmd),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
