//! Throw-away PostgreSQL and MariaDB servers for the SQL tests.
//!
//! The first test that asks for a server starts it: a fresh data directory in a temp dir
//! (`initdb` / `mariadb-install-db`), the server listening on 127.0.0.1 at a port picked
//! here, never the system-wide service. Every test then gets its own database on it.
//!
//! Cleanup does not depend on the test binary exiting cleanly: the server is started by a
//! small `sh` "reaper" in its own process group, whose standard input is a pipe from this
//! process. When the test process ends (normally, by panic, Ctrl-C or SIGKILL) the pipe
//! closes, and the reaper stops the server by PID (SIGTERM, SIGKILL after 20 s), waits for it
//! and deletes the directory.
//!
//! A missing server binary skips the tests that need it with a reason on stderr, except with
//! `CI=true`, where it is a failure.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used
)]

use std::io::Write;
use std::net::{Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use session_store::sql::sqlx::{self, Connection};

#[path = "reaper.rs"]
mod reaper;
use reaper::{alive, is_root, spawn_reaped, try_free_port, which_any};

/// How long a server may take to become ready.
const START_TIMEOUT: Duration = Duration::from_secs(90);

/// A running throw-away server.
#[derive(Debug)]
pub struct Server {
    /// `"postgres"` or `"mariadb"`.
    pub kind: &'static str,
    /// The loopback port it listens on.
    pub port: u16,
    /// The server's PID (the reaper stops it by this PID).
    pub pid: u32,
    /// The temp dir holding data, socket and log; deleted by the reaper.
    pub dir: PathBuf,
    /// Held open for the life of the test process; its closing tells the reaper to act.
    _reaper_stdin: Mutex<ChildStdin>,
}

/// What starting a server came to.
enum Started {
    Ready(Server),
    /// The binaries are not installed: skip (fail under `CI=true`).
    Missing(String),
    /// The binaries are there but the server did not start: always a failure.
    Failed(String),
}

impl From<Result<Server, String>> for Started {
    fn from(r: Result<Server, String>) -> Self {
        r.map_or_else(Self::Failed, Self::Ready)
    }
}

static PG: OnceLock<Started> = OnceLock::new();
static MARIADB: OnceLock<Started> = OnceLock::new();
static DB_COUNTER: AtomicU32 = AtomicU32::new(0);

/// The PostgreSQL server of this test process, started on first use; `None` if the binaries
/// are missing outside CI (the reason is printed).
pub fn postgres() -> Option<&'static Server> {
    let started = PG.get_or_init(|| match find_postgres() {
        Ok(bins) => start_postgres(&bins).into(),
        Err(reason) => Started::Missing(reason),
    });
    resolve("postgres", started)
}

/// The MariaDB server of this test process, started on first use; `None` if the binaries
/// are missing outside CI (the reason is printed).
pub fn mariadb() -> Option<&'static Server> {
    let started = MARIADB.get_or_init(|| match find_mariadb() {
        Ok(bins) => start_mariadb(&bins).into(),
        Err(reason) => Started::Missing(reason),
    });
    resolve("mariadb", started)
}

fn resolve(kind: &str, started: &'static Started) -> Option<&'static Server> {
    match started {
        Started::Ready(server) => Some(server),
        Started::Missing(reason) => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("CI=true, so {kind} tests may not be skipped: {reason}");
            }
            static PRINTED: Mutex<Vec<String>> = Mutex::new(Vec::new());
            let mut printed = PRINTED.lock().unwrap_or_else(|p| p.into_inner());
            if !printed.iter().any(|k| k == kind) {
                printed.push(kind.to_owned());
                // Straight to stderr: the test harness captures `eprintln!`.
                let _ = writeln!(std::io::stderr(), "{kind} tests skipped: {reason}");
            }
            None
        }
        Started::Failed(e) => panic!("could not start {kind}: {e}"),
    }
}

impl Server {
    /// A new, empty database on this server, named uniquely in this process; returns its URL.
    pub async fn fresh_database(&self) -> String {
        let name = format!("t{}", DB_COUNTER.fetch_add(1, Ordering::Relaxed));
        match self.kind {
            #[cfg(feature = "postgres")]
            "postgres" => {
                let admin = format!("postgres://postgres@127.0.0.1:{}/postgres", self.port);
                let mut c = sqlx::PgConnection::connect(&admin).await.unwrap();
                // An identifier cannot be a bind parameter; `name` is ours, digits and a 't'.
                sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
                    .execute(&mut c)
                    .await
                    .unwrap();
                c.close().await.unwrap();
                format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
            }
            #[cfg(feature = "mysql")]
            "mariadb" => {
                let admin = format!("mysql://root@127.0.0.1:{}/", self.port);
                let mut c = sqlx::MySqlConnection::connect(&admin).await.unwrap();
                sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
                    .execute(&mut c)
                    .await
                    .unwrap();
                c.close().await.unwrap();
                format!("mysql://root@127.0.0.1:{}/{name}", self.port)
            }
            other => panic!("no database driver for {other} in this build"),
        }
    }
}

struct PgBins {
    initdb: PathBuf,
    postgres: PathBuf,
    pg_isready: PathBuf,
}

/// Debian keeps the server binaries in /usr/lib/postgresql/<major>/bin; take the newest.
fn find_postgres() -> Result<PgBins, String> {
    let mut dirs: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((major, e.path().join("bin")))
        })
        .collect();
    dirs.sort();
    if let Some(bin) = std::env::var_os("PG_BIN_DIR") {
        dirs.push((u32::MAX, PathBuf::from(bin)));
    }
    dirs.into_iter()
        .rev()
        .map(|(_, bin)| PgBins {
            initdb: bin.join("initdb"),
            postgres: bin.join("postgres"),
            pg_isready: bin.join("pg_isready"),
        })
        .find(|b| b.initdb.is_file() && b.postgres.is_file() && b.pg_isready.is_file())
        .ok_or_else(|| {
            "no /usr/lib/postgresql/*/bin/{initdb,postgres,pg_isready} (apt-get install \
             postgresql, or set PG_BIN_DIR)"
                .to_owned()
        })
}

struct MariaBins {
    install_db: PathBuf,
    server: PathBuf,
}

fn find_mariadb() -> Result<MariaBins, String> {
    let install_db = which_any(&["mariadb-install-db", "mysql_install_db"]);
    let server = which_any(&["mariadbd", "mysqld"]);
    match (install_db, server) {
        (Some(install_db), Some(server)) => Ok(MariaBins { install_db, server }),
        _ => Err("no mariadb-install-db and mariadbd (apt-get install mariadb-server)".to_owned()),
    }
}

/// Runs `cmd` to completion, failing with its output.
fn run(what: &str, cmd: &mut Command) -> Result<(), String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{what}: cannot run {cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn wait_ready(
    kind: &str,
    pid: u32,
    log: &Path,
    mut ready: impl FnMut() -> bool,
) -> Result<(), String> {
    let start = Instant::now();
    loop {
        if ready() {
            return Ok(());
        }
        let log_text = || std::fs::read_to_string(log).unwrap_or_default();
        if !alive(pid) {
            return Err(format!(
                "{kind} (pid {pid}) exited during start-up:\n{}",
                log_text()
            ));
        }
        if start.elapsed() > START_TIMEOUT {
            return Err(format!(
                "{kind} not ready after {START_TIMEOUT:?}:\n{}",
                log_text()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn temp_dir(prefix: &str) -> Result<tempfile::TempDir, String> {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .map_err(|e| format!("cannot create a temp dir: {e}"))
}

fn start_postgres(bins: &PgBins) -> Result<Server, String> {
    let tmp = temp_dir("session-store-pg-")?;
    let dir = tmp.path().to_path_buf();
    let data = dir.join("data");
    let log = dir.join("postgres.log");
    let root = is_root();
    // PostgreSQL refuses to run as root: run it as the `postgres` system user, owning the dir.
    let as_user = |program: &Path| -> Vec<std::ffi::OsString> {
        let mut v: Vec<std::ffi::OsString> = Vec::new();
        if root {
            for a in [
                "setpriv",
                "--reuid=postgres",
                "--regid=postgres",
                "--init-groups",
                "--",
            ] {
                v.push(a.into());
            }
        }
        v.push(program.into());
        v
    };
    if root {
        run(
            "chown",
            Command::new("chown").arg("postgres:postgres").arg(&dir),
        )?;
    }
    let initdb = as_user(&bins.initdb);
    run(
        "initdb",
        Command::new(&initdb[0])
            .args(&initdb[1..])
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"]),
    )?;
    let port = try_free_port()?;
    let mut server = as_user(&bins.postgres);
    server.push("-D".into());
    server.push(data.clone().into());
    server.push("-p".into());
    server.push(port.to_string().into());
    server.push("-k".into());
    server.push(dir.clone().into());
    for setting in [
        "listen_addresses=127.0.0.1",
        "fsync=off",
        "synchronous_commit=off",
        "full_page_writes=off",
        "max_connections=300",
        "shared_buffers=32MB",
    ] {
        server.push("-c".into());
        server.push(setting.into());
    }
    let args: Vec<&std::ffi::OsStr> = server.iter().map(|s| s.as_os_str()).collect();
    let (pid, _reaper, stdin) = spawn_reaped(&args, &dir, &log, 20)?;
    // From here on the reaper owns the directory.
    let _ = tmp.keep();
    let isready = bins.pg_isready.clone();
    wait_ready("postgres", pid, &log, || {
        Command::new(&isready)
            .args([
                "-q",
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-U",
                "postgres",
            ])
            .stdin(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })?;
    Ok(Server {
        kind: "postgres",
        port,
        pid,
        dir,
        _reaper_stdin: Mutex::new(stdin),
    })
}

fn start_mariadb(bins: &MariaBins) -> Result<Server, String> {
    let tmp = temp_dir("session-store-mariadb-")?;
    let dir = tmp.path().to_path_buf();
    let data = dir.join("data");
    let log = dir.join("mariadbd.log");
    let user: Vec<String> = if is_root() {
        vec!["--user=root".to_owned()]
    } else {
        Vec::new()
    };
    run(
        "mariadb-install-db",
        Command::new(&bins.install_db)
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .args(["--auth-root-authentication-method=normal", "--skip-test-db"])
            .args(&user),
    )?;
    let port = try_free_port()?;
    let mut server: Vec<std::ffi::OsString> = vec![
        bins.server.clone().into(),
        "--no-defaults".into(),
        format!("--datadir={}", data.display()).into(),
        format!("--socket={}", dir.join("mysqld.sock").display()).into(),
        format!("--pid-file={}", dir.join("mysqld.pid").display()).into(),
        format!("--port={port}").into(),
        "--bind-address=127.0.0.1".into(),
        // Any client may connect as anyone: a private, loopback-only, throw-away server.
        "--skip-grant-tables".into(),
        "--max-connections=500".into(),
        "--innodb-buffer-pool-size=64M".into(),
        "--innodb-flush-log-at-trx-commit=2".into(),
    ];
    server.extend(user.into_iter().map(Into::into));
    let args: Vec<&std::ffi::OsStr> = server.iter().map(|s| s.as_os_str()).collect();
    let (pid, _reaper, stdin) = spawn_reaped(&args, &dir, &log, 20)?;
    let _ = tmp.keep();
    wait_ready("mariadb", pid, &log, || {
        TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok()
    })?;
    Ok(Server {
        kind: "mariadb",
        port,
        pid,
        dir,
        _reaper_stdin: Mutex::new(stdin),
    })
}
