//! [`ProcessWatcher`]: a [`Tracker`] fed by the kernel's process-event connector and `/proc`.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

use netlink_sys::{Socket, SocketAddr};
use thiserror::Error;
use tokio::io::unix::AsyncFd;

use super::connector::{CN_IDX_PROC, NETLINK_CONNECTOR, ProcEvent, ProcMessage, subscription};
use super::tracker::{ProcInfo, ProcessSpec, QuorumChange, Tracker};

/// How long after lost events the processes are counted again (keepalived waits as long,
/// to let a burst of forks settle).
pub const RESCAN_DELAY: Duration = Duration::from_secs(1);

/// How long [`ProcessWatcher::open`] waits for the kernel to confirm the subscription.
const ACK_TIMEOUT: Duration = Duration::from_secs(2);

/// Why process tracking could not start or stopped.
#[derive(Debug, Error)]
pub enum ProcessError {
    /// The connector socket could not be opened or bound.
    #[error("cannot open the process-event connector: {0} (the kernel needs CONFIG_PROC_EVENTS)")]
    Open(#[source] io::Error),
    /// The subscription was refused.
    #[error(
        "the kernel refused the process-event subscription: {0} (it answers only in the initial \
         network namespace; opening the socket there needs CAP_SYS_ADMIN)"
    )]
    Subscribe(#[source] io::Error),
    /// No answer to the subscription.
    #[error(
        "the kernel did not confirm the process-event subscription within {0:?}: is \
         CONFIG_PROC_EVENTS enabled?"
    )]
    NoAck(Duration),
    /// Reading the socket failed (other than lost events, which start a recount).
    #[error("reading process events: {0}")]
    Recv(#[source] io::Error),
    /// `/proc` could not be read.
    #[error("reading /proc: {0}")]
    Proc(#[source] io::Error),
}

/// What a [`ProcessWatcher`] has seen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WatcherStats {
    /// Process events handled.
    pub events: u64,
    /// Datagrams that were not well-formed process events (or not from the kernel).
    pub malformed: u64,
    /// Times the socket overflowed (`ENOBUFS`: events lost).
    pub overflows: u64,
    /// Recounts of `/proc` after an overflow.
    pub rescans: u64,
}

/// Counts the processes of some [`ProcessSpec`]s as they start, change and end, and reports
/// quorum changes.
///
/// It subscribes to the kernel's process events, then scans `/proc`; each fork, `execve`,
/// rename and exit updates its [`Tracker`]. When the socket overflows and events are lost,
/// it doubles its receive buffer and counts again from `/proc` after [`RESCAN_DELAY`].
///
/// The kernel delivers process events only to sockets of the initial network namespace. A
/// watcher started in another one (a container, a test namespace) opens its socket there
/// from a short-lived thread, which needs `CAP_SYS_ADMIN`; processes are seen through the
/// caller's `/proc`.
///
/// ```no_run
/// # async fn f() -> Result<(), vrrp_linux::process::ProcessError> {
/// use vrrp_linux::process::{ProcessSpec, ProcessWatcher};
///
/// let mut w = ProcessWatcher::open(vec![ProcessSpec::new("proxy", "nginx")]).await?;
/// loop {
///     let change = w.next().await?;
///     println!("{}: quorum {}", w.tracker().specs()[change.spec].name, change.have_quorum);
/// }
/// # }
/// ```
#[derive(Debug)]
pub struct ProcessWatcher {
    sock: AsyncFd<Socket>,
    tracker: Tracker,
    buf: Vec<u8>,
    rescan_at: Option<Instant>,
    stats: WatcherStats,
}

impl ProcessWatcher {
    /// Subscribes to process events and counts the running processes. The first
    /// [`next`](Self::next) calls report every spec's initial verdict.
    pub async fn open(specs: Vec<ProcessSpec>) -> Result<Self, ProcessError> {
        let sock = open_socket()?;
        sock.set_non_blocking(true).map_err(ProcessError::Open)?;
        let sock = crate::socket::register(sock).map_err(ProcessError::Open)?;
        let mut w = Self {
            sock,
            tracker: Tracker::new(specs),
            buf: Vec::with_capacity(1024),
            rescan_at: None,
            stats: WatcherStats::default(),
        };
        w.sock
            .get_ref()
            .send(&subscription(true), 0)
            .map_err(ProcessError::Subscribe)?;
        tokio::time::timeout(ACK_TIMEOUT, w.wait_for_ack())
            .await
            .map_err(|_| ProcessError::NoAck(ACK_TIMEOUT))??;
        w.scan()?;
        Ok(w)
    }

    async fn wait_for_ack(&mut self) -> Result<(), ProcessError> {
        loop {
            let mut guard = self.sock.readable().await.map_err(ProcessError::Recv)?;
            loop {
                match recv(guard.get_inner(), &mut self.buf, &mut self.stats) {
                    Ok(Some(ProcMessage {
                        event: ProcEvent::Ack { err },
                        ..
                    })) => {
                        if err != 0 {
                            let e = i32::try_from(err).unwrap_or(libc::EINVAL);
                            return Err(ProcessError::Subscribe(io::Error::from_raw_os_error(e)));
                        }
                        return Ok(());
                    }
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        guard.clear_ready();
                        break;
                    }
                    Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {}
                    Err(e) => return Err(ProcessError::Recv(e)),
                }
            }
        }
    }

    /// The counts and verdicts.
    pub fn tracker(&self) -> &Tracker {
        &self.tracker
    }

    /// Sets the socket's receive buffer (`SO_RCVBUF`, keepalived's
    /// `process_monitor_rcv_bufs`): a busy machine forks faster than a small buffer drains,
    /// and an overflow costs a recount. The kernel caps it at `net.core.rmem_max`.
    pub fn set_receive_buffer(&self, bytes: usize) -> Result<(), ProcessError> {
        let b = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
        self.sock
            .get_ref()
            .set_rx_buf_sz(b)
            .map_err(ProcessError::Open)
    }

    /// What it has seen.
    pub fn stats(&self) -> WatcherStats {
        self.stats
    }

    /// The next quorum change. Cancel-safe: a change not yet returned stays queued.
    pub async fn next(&mut self) -> Result<QuorumChange, ProcessError> {
        loop {
            if let Some(c) = self.tracker.poll_change() {
                return Ok(c);
            }
            let deadline = [self.tracker.poll_timeout(), self.rescan_at]
                .into_iter()
                .flatten()
                .min();
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                r = self.sock.readable() => {
                    let mut guard = r.map_err(ProcessError::Recv)?;
                    loop {
                        match recv(guard.get_inner(), &mut self.buf, &mut self.stats) {
                            Ok(Some(m)) => handle(&mut self.tracker, &mut self.stats, m),
                            Ok(None) => {}
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                                self.stats.overflows += 1;
                                grow_buffer(guard.get_inner());
                                self.rescan_at = Some(Instant::now() + RESCAN_DELAY);
                            }
                            Err(e) => return Err(ProcessError::Recv(e)),
                        }
                    }
                    guard.clear_ready();
                }
                () = sleep => {
                    let now = Instant::now();
                    if self.rescan_at.is_some_and(|t| t <= now) {
                        self.rescan_at = None;
                        self.stats.rescans += 1;
                        self.scan()?;
                    }
                    self.tracker.handle_timeout(now);
                }
            }
        }
    }

    fn scan(&mut self) -> Result<(), ProcessError> {
        let procs = read_procs(self.tracker.needs_cmdline())?;
        let infos = procs.iter().map(|(pid, comm, cmdline)| ProcInfo {
            pid: *pid,
            comm,
            cmdline,
        });
        self.tracker.handle_scan(Instant::now(), infos);
        Ok(())
    }
}

/// One datagram: `Ok(None)` when it is not a process event from the kernel.
fn recv(
    sock: &Socket,
    buf: &mut Vec<u8>,
    stats: &mut WatcherStats,
) -> io::Result<Option<ProcMessage>> {
    buf.clear();
    buf.reserve(1024);
    let (n, from) = sock.recv_from(buf, 0)?;
    if from.port_number() != 0 || n > buf.len() {
        stats.malformed += 1;
        return Ok(None);
    }
    match ProcMessage::parse(buf) {
        Ok(m) => Ok(m),
        Err(_) => {
            stats.malformed += 1;
            Ok(None)
        }
    }
}

/// Doubles the receive buffer after an overflow.
fn grow_buffer(sock: &Socket) {
    if let Ok(size) = sock.get_rx_buf_sz() {
        // The kernel reports the doubled value it keeps: setting that doubles the buffer.
        let _ = sock.set_rx_buf_sz(libc::c_int::try_from(size).unwrap_or(libc::c_int::MAX));
    }
}

/// One process event into the tracker (threads are not processes).
fn handle(tracker: &mut Tracker, stats: &mut WatcherStats, m: ProcMessage) {
    stats.events += 1;
    let now = Instant::now();
    match m.event {
        ProcEvent::Fork {
            parent_tgid,
            child_pid,
            child_tgid,
            ..
        } if child_pid == child_tgid => tracker.handle_fork(now, parent_tgid, child_tgid),
        ProcEvent::Exec { pid, tgid } if pid == tgid => {
            // Gone already: its exit follows.
            let Ok(comm) = fs::read(format!("/proc/{pid}/comm")) else {
                return;
            };
            let cmdline = if tracker.needs_cmdline() {
                match fs::read(format!("/proc/{pid}/cmdline")) {
                    Ok(c) => c,
                    Err(_) => return,
                }
            } else {
                Vec::new()
            };
            tracker.handle_exec(ProcInfo {
                pid,
                comm: &comm,
                cmdline: &cmdline,
            });
        }
        ProcEvent::Comm { pid, tgid, comm } if pid == tgid => {
            tracker.handle_comm(pid, ProcEvent::comm_name(&comm));
        }
        ProcEvent::Exit { pid, tgid, .. } if pid == tgid => tracker.handle_exit(now, pid),
        _ => {}
    }
}

/// A process read from `/proc`: pid, name, command line.
type Proc = (u32, Vec<u8>, Vec<u8>);

/// Every process of `/proc` but zombies: pid, name (from `stat`) and, when asked, command
/// line. Processes that end while being read are left out.
fn read_procs(cmdline: bool) -> Result<Vec<Proc>, ProcessError> {
    let mut out = Vec::new();
    for e in fs::read_dir("/proc").map_err(ProcessError::Proc)? {
        let Ok(e) = e else { continue };
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = fs::read(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // "PID (COMM) S ...": the name may hold spaces and parentheses; it ends at the last ')'.
        let (Some(open), Some(close)) = (
            stat.iter().position(|&b| b == b'('),
            stat.iter().rposition(|&b| b == b')'),
        ) else {
            continue;
        };
        if close < open || stat.get(close + 2) == Some(&b'Z') {
            continue;
        }
        let comm = stat[open + 1..close].to_vec();
        let cmd = if cmdline {
            match fs::read(format!("/proc/{pid}/cmdline")) {
                Ok(c) => c,
                Err(_) => continue,
            }
        } else {
            Vec::new()
        };
        out.push((pid, comm, cmd));
    }
    Ok(out)
}

/// The initial network namespace: that of `kthreadd` (pid 2 of the initial pid namespace;
/// kernel threads never leave the initial namespaces), else that of pid 1.
fn init_netns() -> Option<std::path::PathBuf> {
    let kthreadd = fs::read("/proc/2/comm").is_ok_and(|c| c.starts_with(b"kthreadd"));
    let pids: &[u32] = if kthreadd { &[2, 1] } else { &[1] };
    pids.iter()
        .map(|p| std::path::PathBuf::from(format!("/proc/{p}/ns/net")))
        .find(|p| fs::metadata(p).is_ok())
}

/// The connector socket, bound to the process-event group, in the initial network namespace.
fn open_socket() -> Result<Socket, ProcessError> {
    let ns_id = |p: &std::path::Path| fs::metadata(p).ok().map(|m| (m.dev(), m.ino()));
    let init = init_netns();
    let in_init = match &init {
        Some(p) => ns_id(p) == ns_id(std::path::Path::new("/proc/thread-self/ns/net")),
        // No way to name it (no privilege): where we are is all there is.
        None => true,
    };
    let Some(init) = init.filter(|_| !in_init) else {
        return bound_socket();
    };
    // Network namespaces are per thread: a short-lived thread enters the initial one, opens
    // the socket and ends; the socket stays in the namespace it was made in.
    let t = std::thread::spawn(move || -> Result<Socket, ProcessError> {
        let ns = fs::File::open(init).map_err(ProcessError::Open)?;
        nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(|e| ProcessError::Open(io::Error::from(e)))?;
        bound_socket()
    });
    match t.join() {
        Ok(Ok(s)) => Ok(s),
        // Not allowed to enter it: the socket is made here, and the subscription says
        // whether the kernel serves this namespace.
        Ok(Err(_)) | Err(_) => bound_socket(),
    }
}

fn bound_socket() -> Result<Socket, ProcessError> {
    let mut s = Socket::new(NETLINK_CONNECTOR).map_err(ProcessError::Open)?;
    s.bind(&SocketAddr::new(0, CN_IDX_PROC))
        .map_err(ProcessError::Open)?;
    Ok(s)
}
