//! `lvsd`: keepalived's `virtual_server` half. It reads the `virtual_server` / `real_server`
//! blocks of a keepalived.conf ([`keepalived_conf::lvs`]), health-checks the real servers
//! (`TCP_CHECK`, `HTTP_GET`) and keeps the kernel's IPVS table equal to the configuration
//! through [`ipvs_netlink`]: a failed real server is removed (or weighted 0 with
//! `inhibit_on_failure`), a recovered one comes back, the `sorry_server` stands in when the
//! quorum is lost: the server list keepalived keeps for LVS.
//!
//! lvsd owns the whole IPVS table, as `ipvsadm -C` followed by the configuration would: a
//! service that is not in the configuration is removed. On SIGTERM it removes its services
//! (keepalived's default without `--dont-release-ipvs`); SIGHUP reloads the file, keeping the
//! health of servers that are still configured.

pub mod check;
pub mod desired;
pub mod realserver;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use ipvs_netlink::{ApplyReport, Change, Client, IpvsError};
use sd_notify::NotifyState;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};
use tokio::task::JoinHandle;

use self::desired::{DesiredError, Health, Sorry};
use ka_alert::{CheckKind, Mailer};
use keepalived_conf::lvs::{Check, LvsConf, parse_lvs};
use keepalived_conf::{ConfError, GlobalDefs, Warning, parse_vrrp};

/// Why lvsd could not start or apply.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LvsdError {
    /// The configuration file is unusable: nothing was applied.
    #[error("configuration: {0}")]
    Config(#[from] ConfError),
    /// A virtual server the IPVS model refuses.
    #[error(transparent)]
    Desired(#[from] DesiredError),
    /// The kernel refused or could not be reached (is ip_vs loaded? are we root?).
    #[error("IPVS: {0}")]
    Ipvs(#[from] IpvsError),
    /// The runtime or signal handlers could not be set up.
    #[error("runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

/// The command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The keepalived.conf to read.
    pub config: PathBuf,
    /// Print the equivalent ipvsadm commands and exit.
    pub dry_run: bool,
    /// `-t`: check the configuration, print what was ignored, and exit (keepalived's
    /// `--config-test`).
    pub test: bool,
    /// Write the PID here.
    pub pid_file: Option<PathBuf>,
}

const USAGE: &str = "\
usage: lvsd [-f FILE] [-t] [--dry-run] [--pid FILE]

  -f, --use-file FILE  keepalived.conf with virtual_server blocks
                       (default /etc/keepalived/keepalived.conf)
  -t, --config-test    check the configuration and exit (1 if it is refused)
  -d, --dry-run        print the ipvsadm commands for the configuration (all servers
                       healthy) and exit
  -p, --pid FILE       write the PID here
  -n, -l, -D, -C       accepted for keepalived compatibility
  -h, --help           this text
";

impl Options {
    /// Parses the arguments after the program name; `None` for `--help`.
    ///
    /// # Errors
    /// An unknown option or a missing value.
    pub fn parse<I>(args: I) -> Result<Option<Self>, lexopt::Error>
    where
        I: IntoIterator,
        I::Item: Into<std::ffi::OsString>,
    {
        use lexopt::prelude::*;
        let mut o = Self {
            config: PathBuf::from("/etc/keepalived/keepalived.conf"),
            dry_run: false,
            test: false,
            pid_file: None,
        };
        let mut p = lexopt::Parser::from_args(args);
        while let Some(arg) = p.next()? {
            match arg {
                Short('f') | Long("use-file") => o.config = p.value()?.into(),
                Short('p') | Long("pid") => o.pid_file = Some(p.value()?.into()),
                Short('d') | Long("dry-run") => o.dry_run = true,
                Short('t') | Long("config-test") => o.test = true,
                // keepalived's -n -l -D and --check: lvsd always runs in the foreground,
                // logs to stderr and only does the checkers.
                Short('n' | 'l' | 'D' | 'C') | Long("check") => {}
                Short('h') | Long("help") => return Ok(None),
                _ => return Err(arg.unexpected()),
            }
        }
        Ok(Some(o))
    }
}

/// The state lvsd keeps: configuration, health, sorry-server use.
#[derive(Debug, Clone, Default)]
pub struct State {
    /// The configuration.
    pub conf: LvsConf,
    /// Health per (virtual server, real server); absent = healthy.
    pub health: Health,
    /// Sorry-server use per virtual server.
    pub sorry: Sorry,
    /// `global_defs` (the mail settings and `smtp_alert` defaults).
    pub global: GlobalDefs,
    /// Where alerts go (`None`: no `smtp_server` or no `notification_email`).
    pub mailer: Option<Mailer>,
}

impl State {
    /// A state with every real server healthy.
    pub fn new(conf: LvsConf) -> Self {
        let mut s = Self {
            conf,
            health: Health::new(),
            sorry: Sorry::new(),
            global: GlobalDefs::default(),
            mailer: None,
        };
        s.refresh_sorry();
        s
    }

    /// The same state with `global`'s mail settings: real servers going up or down are
    /// mailed as keepalived does ([`State::mail_health`]).
    #[must_use]
    pub fn with_global(mut self, global: GlobalDefs) -> Self {
        self.mailer = Mailer::new(&global);
        self.global = global;
        self
    }

    /// keepalived's real server alert: when mail is configured and the real server's
    /// `smtp_alert` resolves true, mails that `rs` of virtual server `vs` went up or down, as
    /// its checker number `check` saw it. The mail is sent by its own task, bounded by
    /// `smtp_connect_timeout`, and a failure is logged: nothing waits for it.
    pub fn mail_health(
        &self,
        vs: usize,
        rs: SocketAddr,
        up: bool,
        check: usize,
    ) -> Option<JoinHandle<()>> {
        let mailer = self.mailer.clone()?;
        let v = self.conf.virtual_servers.get(vs)?;
        let r = v.real_servers.iter().find(|r| r.addr == rs)?;
        if !r.smtp_alert(&self.global) {
            return None;
        }
        let kind = match r.checks.get(check) {
            Some(Check::Http { .. }) => CheckKind::Http,
            _ => CheckKind::Tcp,
        };
        let alert = mailer.real_server(v.addr, v.protocol, rs, up, kind);
        Some(tokio::spawn(async move {
            match mailer.send(&alert).await {
                Ok(()) => log(format_args!("SMTP alert sent: {}", alert.subject)),
                Err(e) => log(format_args!("SMTP alert not sent: {e}")),
            }
        }))
    }

    /// Records a check result; returns whether the server's health changed.
    pub fn set_health(&mut self, vs: usize, rs: SocketAddr, up: bool) -> bool {
        let old = self.health.insert((vs, rs), up).unwrap_or(true);
        let changed = old != up;
        if changed {
            self.refresh_sorry();
        }
        changed
    }

    fn refresh_sorry(&mut self) {
        for (i, vs) in self.conf.virtual_servers.iter().enumerate() {
            let was = self.sorry.get(&i).copied().unwrap_or(false);
            let now = desired::needs_sorry(vs, i, &self.health, was);
            self.sorry.insert(i, now);
        }
    }

    /// The table the kernel should have.
    pub fn desired(&self) -> Result<Vec<ipvs_netlink::DesiredService>, LvsdError> {
        Ok(desired::desired(&self.conf, &self.health, &self.sorry)?)
    }

    /// Makes the kernel's table equal to [`State::desired`].
    pub fn apply(&self, client: &mut Client) -> Result<ApplyReport, LvsdError> {
        Ok(client.apply(&self.desired()?)?)
    }
}

/// The program: parses the arguments, then prints the dry run or runs the daemon.
pub fn run() -> ExitCode {
    let opts = match Options::parse(std::env::args_os().skip(1)) {
        Ok(Some(o)) => o,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprint!("lvsd: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let (conf, warnings) = match parse_lvs(&opts.config) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("lvsd: {e}");
            return ExitCode::from(1);
        }
    };
    warn(&warnings);
    if opts.test {
        eprintln!(
            "{}: OK ({} virtual server(s), {} warning(s))",
            opts.config.display(),
            conf.virtual_servers.len(),
            warnings.len()
        );
        return ExitCode::SUCCESS;
    }
    let state = State::new(conf).with_global(global_defs(&opts.config));
    if opts.dry_run {
        return match state.desired() {
            Ok(t) => {
                print!("ipvsadm -C\n{}", desired::ipvsadm_commands(&state.conf, &t));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("lvsd: {e}");
                ExitCode::from(1)
            }
        };
    }
    if let Some(p) = &opts.pid_file
        && let Err(e) = std::fs::write(p, format!("{}\n", std::process::id()))
    {
        eprintln!("lvsd: writing {}: {e}", p.display());
        return ExitCode::from(1);
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("lvsd: runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let res = rt.block_on(async {
        let mut term = signal(SignalKind::terminate()).map_err(LvsdError::Runtime)?;
        let mut int = signal(SignalKind::interrupt()).map_err(LvsdError::Runtime)?;
        let stop = async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        };
        serve(state, Some(opts.config.clone()), stop).await
    });
    if let Some(p) = &opts.pid_file {
        let _ = std::fs::remove_file(p);
    }
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log(format_args!("{e}"));
            ExitCode::from(1)
        }
    }
}

/// The `global_defs` of `path` (mail settings), read by the VRRP layer, which the LVS layer
/// leaves alone; a file the VRRP layer refuses gives keepalived's defaults (no mail), with a
/// message.
fn global_defs(path: &std::path::Path) -> GlobalDefs {
    match parse_vrrp(path) {
        Ok((c, _)) => c.global,
        Err(e) => {
            log(format_args!("global_defs not read, no mail alerts: {e}"));
            GlobalDefs::default()
        }
    }
}

fn warn(w: &[Warning]) {
    for w in w {
        log(format_args!("warning: {w}"));
    }
}

fn log(args: std::fmt::Arguments<'_>) {
    eprintln!("lvsd[{}]: {args}", std::process::id());
}

/// A check result from a checker task.
#[derive(Debug)]
struct Verdict {
    generation: u64,
    vs: usize,
    rs: SocketAddr,
    check: usize,
    result: Result<(), check::CheckError>,
}

fn spawn_checkers(
    state: &State,
    generation: u64,
    tx: &UnboundedSender<Verdict>,
) -> Vec<JoinHandle<()>> {
    let mut tasks = Vec::new();
    for (vi, vs) in state.conf.virtual_servers.iter().enumerate() {
        for rs in &vs.real_servers {
            for (ci, chk) in rs.checks.iter().enumerate() {
                let (chk, tx, addr) = (chk.clone(), tx.clone(), rs.addr);
                let delay = vs.delay_loop.max(Duration::from_millis(100));
                let vhost = vs.virtualhost.clone();
                tasks.push(tokio::spawn(async move {
                    loop {
                        let result = check::run(&chk, addr, vhost.as_deref()).await;
                        let v = Verdict {
                            generation,
                            vs: vi,
                            rs: addr,
                            check: ci,
                            result,
                        };
                        if tx.send(v).is_err() {
                            return;
                        }
                        tokio::time::sleep(delay).await;
                    }
                }));
            }
        }
    }
    tasks
}

/// Tells systemd (through `NOTIFY_SOCKET`, when it is set) how the service is doing.
fn notify_manager(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        log(format_args!("cannot notify the service manager: {e}"));
    }
}

/// Sends `READY=1` when dropped: the end of a reload, on every path out of it.
struct ReadyOnDrop;

impl Drop for ReadyOnDrop {
    fn drop(&mut self) {
        notify_manager(&[NotifyState::Ready]);
    }
}

/// Runs lvsd on `state` until `stop` completes: applies the table, runs the checkers, applies
/// every health change, reloads `config` (if given) on SIGHUP, and removes its services at
/// the end.
pub async fn serve(
    mut state: State,
    config: Option<PathBuf>,
    stop: impl Future<Output = ()>,
) -> Result<(), LvsdError> {
    let mut client = Client::new()?;
    let report = state.apply(&mut client)?;
    log_report(&state, &report);
    let (tx, mut rx) = unbounded_channel();
    let mut generation = 0u64;
    let mut tasks = spawn_checkers(&state, generation, &tx);
    // (vs, rs) -> per-check results.
    let mut results: HashMap<(usize, SocketAddr), HashMap<usize, bool>> = HashMap::new();
    let mut hup = signal(SignalKind::hangup()).map_err(LvsdError::Runtime)?;
    // Under systemd (Type=notify): the table is applied and the checkers run, ready.
    notify_manager(&[NotifyState::Ready, NotifyState::Status("running")]);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => break,
            _ = hup.recv() => {
                let Some(path) = &config else { continue };
                match NotifyState::monotonic_usec_now() {
                    Ok(now) => notify_manager(&[NotifyState::Reloading, now]),
                    Err(_) => notify_manager(&[NotifyState::Reloading]),
                }
                // READY=1 again once the reload is over, whatever its outcome.
                let _ready = ReadyOnDrop;
                match parse_lvs(path) {
                    Err(e) => log(format_args!("reload refused, keeping the running configuration: {e}")),
                    Ok((conf, w)) => {
                        warn(&w);
                        let mut next = State::new(conf).with_global(global_defs(path));
                        // Keep the health of servers that are still configured at the same place.
                        for (i, vs) in next.conf.virtual_servers.iter().enumerate() {
                            let old = state.conf.virtual_servers.iter().position(|o| o.addr == vs.addr);
                            for rs in &vs.real_servers {
                                if let Some(up) = old.and_then(|o| state.health.get(&(o, rs.addr))) {
                                    next.health.insert((i, rs.addr), *up);
                                }
                            }
                        }
                        next.refresh_sorry();
                        if let Err(e) = next.desired() {
                            log(format_args!("reload refused, keeping the running configuration: {e}"));
                            continue;
                        }
                        for t in tasks.drain(..) {
                            t.abort();
                        }
                        results.clear();
                        generation += 1;
                        state = next;
                        tasks = spawn_checkers(&state, generation, &tx);
                        match state.apply(&mut client) {
                            Ok(r) => log_report(&state, &r),
                            Err(e) => log(format_args!("{e}")),
                        }
                        log(format_args!("Reloaded {}", path.display()));
                    }
                }
            }
            v = rx.recv() => {
                let Some(v) = v else { break };
                if v.generation != generation {
                    continue;
                }
                if let Err(e) = &v.result {
                    log(format_args!("{e}"));
                }
                let checks = results.entry((v.vs, v.rs)).or_default();
                checks.insert(v.check, v.result.is_ok());
                // A server is up when each of its checks last passed (a check that has not
                // reported yet counts as passing: keepalived starts servers alive).
                let up = checks.values().all(|ok| *ok);
                if !state.set_health(v.vs, v.rs, up) {
                    continue;
                }
                notify(&state, v.vs, v.rs, up);
                let _ = state.mail_health(v.vs, v.rs, up, v.check);
                match state.apply(&mut client) {
                    Ok(r) => log_report(&state, &r),
                    Err(e) => log(format_args!("{e}")),
                }
            }
        }
    }
    notify_manager(&[NotifyState::Stopping]);
    for t in tasks {
        t.abort();
    }
    // Release: remove the configured services.
    let ours: Vec<_> = state
        .conf
        .virtual_servers
        .iter()
        .map(desired::key)
        .collect();
    for key in &ours {
        match client.delete_service(key) {
            Ok(()) => log(format_args!("Removing Virtual Server {key}")),
            Err(e) => log(format_args!("removing {key}: {e}")),
        }
    }
    Ok(())
}

fn notify(state: &State, vs: usize, rs: SocketAddr, up: bool) {
    let Some(r) = state
        .conf
        .virtual_servers
        .get(vs)
        .and_then(|v| v.real_servers.iter().find(|r| r.addr == rs))
    else {
        return;
    };
    let cmd = if up { &r.notify_up } else { &r.notify_down };
    if let Some(cmd) = cmd
        && let Ok(mut child) = tokio::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(cmd)
            .spawn()
    {
        tokio::spawn(async move {
            let _ = child.wait().await;
        });
    }
}

fn log_report(state: &State, r: &ApplyReport) {
    let _ = state;
    for c in &r.changes {
        match c {
            Change::AddService(k) => log(format_args!("Adding Virtual Server {k}")),
            Change::EditService(k) => log(format_args!("Editing Virtual Server {k}")),
            Change::DeleteService(k) => log(format_args!("Removing Virtual Server {k}")),
            Change::AddDest(k, a) => log(format_args!(
                "Adding service [{}]:{} to VS {k}",
                a.ip(),
                a.port()
            )),
            Change::EditDest(k, a) => log(format_args!(
                "Changing weight of service [{}]:{} in VS {k}",
                a.ip(),
                a.port()
            )),
            Change::DeleteDest(k, a) => log(format_args!(
                "Removing service [{}]:{} from VS {k}",
                a.ip(),
                a.port()
            )),
            _ => {}
        }
    }
}
