//! The counting rules of tracked processes, sans IO: which processes match a
//! [`ProcessSpec`], how many run, and when a quorum is gained or lost, with keepalived's
//! `fork_delay` and `terminate_delay`.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// How the parameters of a [`ProcessSpec`] are compared with a command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum ParamMatch {
    /// Not compared.
    #[default]
    None,
    /// The arguments are exactly the parameters.
    Exact,
    /// The arguments start with the parameters, the last one a prefix of its argument.
    Initial,
    /// The arguments start with the parameters, each one a whole argument.
    Partial,
}

/// Which processes count, and how many make a quorum (keepalived's `vrrp_track_process`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessSpec {
    /// The name it is reported under.
    pub name: String,
    /// Compared with the process name (`comm`: at most 15 bytes of the program's file
    /// name) or, with [`full_command`](Self::full_command), with the command line's first
    /// word.
    pub process: String,
    /// The arguments compared after the first word (with [`ParamMatch`] other than `None`).
    pub params: Vec<String>,
    /// How [`params`](Self::params) are compared.
    pub param_match: ParamMatch,
    /// Match the command line (`/proc/PID/cmdline`) rather than the process name.
    pub full_command: bool,
    /// The fewest matching processes for the quorum.
    pub quorum: u32,
    /// The most matching processes for the quorum (`u32::MAX`: no limit).
    pub quorum_max: u32,
    /// How long a quorum gained by a new process (a fork) must wait before it counts.
    pub fork_delay: Duration,
    /// How long a quorum lost by a process ending must wait before it counts.
    pub terminate_delay: Duration,
}

impl ProcessSpec {
    /// A spec matching process name `process` with quorum 1 and no delays.
    pub fn new(name: &str, process: &str) -> Self {
        Self {
            name: name.into(),
            process: process.into(),
            params: Vec::new(),
            param_match: ParamMatch::None,
            full_command: false,
            quorum: 1,
            quorum_max: u32::MAX,
            fork_delay: Duration::ZERO,
            terminate_delay: Duration::ZERO,
        }
    }

    /// Whether `count` processes make the quorum.
    pub fn in_quorum(&self, count: u32) -> bool {
        (self.quorum..=self.quorum_max).contains(&count)
    }

    /// Whether a process with this name and command line is one of those counted. `comm` is
    /// the name as `/proc/PID/comm` gives it (a trailing newline is ignored); `cmdline` the
    /// NUL-separated arguments of `/proc/PID/cmdline`.
    pub fn matches(&self, comm: &[u8], cmdline: &[u8]) -> bool {
        if self.full_command {
            let (first, rest) = match cmdline.iter().position(|&b| b == 0) {
                Some(i) => (&cmdline[..i], &cmdline[i + 1..]),
                None => (cmdline, &[][..]),
            };
            first == self.process.as_bytes() && self.params_match(rest)
        } else {
            let comm = comm.strip_suffix(b"\n").unwrap_or(comm);
            comm == self.process.as_bytes()
        }
    }

    /// The parameters against the arguments after the first word (NUL-terminated each).
    fn params_match(&self, args: &[u8]) -> bool {
        let mut want = Vec::new();
        for p in &self.params {
            want.extend_from_slice(p.as_bytes());
            want.push(0);
        }
        match self.param_match {
            ParamMatch::None => true,
            ParamMatch::Exact => args == want.as_slice(),
            ParamMatch::Partial => args.starts_with(&want),
            ParamMatch::Initial => {
                want.pop();
                args.starts_with(&want)
            }
        }
    }
}

/// A process as `/proc` shows it.
#[derive(Debug, Clone, Copy)]
pub struct ProcInfo<'a> {
    /// Its process id.
    pub pid: u32,
    /// `/proc/PID/comm`.
    pub comm: &'a [u8],
    /// `/proc/PID/cmdline`.
    pub cmdline: &'a [u8],
}

/// A spec's quorum changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuorumChange {
    /// The spec's index in the [`Tracker`].
    pub spec: usize,
    /// Whether it has its quorum now.
    pub have_quorum: bool,
}

#[derive(Debug, Clone, Default)]
struct State {
    count: u32,
    have_quorum: bool,
    fork_timer: Option<Instant>,
    terminate_timer: Option<Instant>,
}

/// Counts the processes of each [`ProcessSpec`] from a scan of `/proc` and process events,
/// and reports quorum changes as keepalived 2.2.7 does:
///
/// - a new process (fork of a counted one) that completes the quorum counts after
///   `fork_delay`; one that ends and breaks it counts after `terminate_delay`; each cancels
///   the other's pending timer, and the verdict is then taken at once;
/// - `execve` and a name change re-match the process (a program that is no longer the one
///   looked for stops counting at once, with no delay);
/// - [`handle_scan`](Self::handle_scan) after lost events recounts from scratch; a quorum
///   lost in the recount waits `terminate_delay`, one gained counts at once (a delay pending
///   before the recount is dropped; the recount's verdict replaces it).
///
/// A process is counted once per spec (keepalived counts a process again when it re-executes
/// the same program).
#[derive(Debug, Clone)]
pub struct Tracker {
    specs: Vec<ProcessSpec>,
    state: Vec<State>,
    pids: HashMap<u32, Vec<usize>>,
    changes: VecDeque<QuorumChange>,
    scanned: bool,
}

impl Tracker {
    /// A tracker of `specs`, which counts nothing until the first
    /// [`handle_scan`](Self::handle_scan).
    pub fn new(specs: Vec<ProcessSpec>) -> Self {
        let state = specs
            .iter()
            .map(|s| State {
                have_quorum: s.in_quorum(0),
                ..State::default()
            })
            .collect();
        Self {
            specs,
            state,
            pids: HashMap::new(),
            changes: VecDeque::new(),
            scanned: false,
        }
    }

    /// The specs, in their index order.
    pub fn specs(&self) -> &[ProcessSpec] {
        &self.specs
    }

    /// Whether any spec matches on the command line (a scan then needs `cmdline`).
    pub fn needs_cmdline(&self) -> bool {
        self.specs.iter().any(|s| s.full_command)
    }

    /// How many processes of spec `i` are counted.
    pub fn count(&self, i: usize) -> Option<u32> {
        self.state.get(i).map(|s| s.count)
    }

    /// Whether spec `i` has its quorum (as last reported).
    pub fn have_quorum(&self, i: usize) -> Option<bool> {
        self.state.get(i).map(|s| s.have_quorum)
    }

    /// The processes counted (for any spec), by pid.
    pub fn tracked_pids(&self) -> impl Iterator<Item = u32> + '_ {
        self.pids.keys().copied()
    }

    /// The processes counted for spec `i`.
    pub fn pids(&self, i: usize) -> impl Iterator<Item = u32> + '_ {
        self.pids
            .iter()
            .filter(move |(_, specs)| specs.contains(&i))
            .map(|(pid, _)| *pid)
    }

    /// The next quorum change. After the first scan every spec is reported once, with its
    /// initial verdict.
    pub fn poll_change(&mut self) -> Option<QuorumChange> {
        self.changes.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.state
            .iter()
            .flat_map(|s| [s.fork_timer, s.terminate_timer])
            .flatten()
            .min()
    }

    /// Runs the delays that are due.
    pub fn handle_timeout(&mut self, now: Instant) {
        for i in 0..self.state.len() {
            let s = &mut self.state[i];
            let mut due = false;
            for t in [&mut s.fork_timer, &mut s.terminate_timer] {
                if t.is_some_and(|at| at <= now) {
                    *t = None;
                    due = true;
                }
            }
            if due {
                let up = self.specs[i].in_quorum(self.state[i].count);
                self.update(i, up);
            }
        }
    }

    /// Every process running (from `/proc`; zombies left out). The first scan sets the
    /// counts and reports every spec; a later one (after the event stream lost messages)
    /// recounts and reports what changed.
    pub fn handle_scan<'a>(&mut self, now: Instant, procs: impl IntoIterator<Item = ProcInfo<'a>>) {
        self.pids.clear();
        for s in &mut self.state {
            s.count = 0;
            s.fork_timer = None;
            s.terminate_timer = None;
        }
        for p in procs {
            for i in 0..self.specs.len() {
                if self.specs[i].matches(p.comm, p.cmdline) {
                    self.add(p.pid, i);
                }
            }
        }
        if !self.scanned {
            self.scanned = true;
            for i in 0..self.specs.len() {
                let up = self.specs[i].in_quorum(self.state[i].count);
                self.state[i].have_quorum = up;
                self.changes.push_back(QuorumChange {
                    spec: i,
                    have_quorum: up,
                });
            }
            return;
        }
        for i in 0..self.specs.len() {
            let spec = &self.specs[i];
            let up = spec.in_quorum(self.state[i].count);
            if up == self.state[i].have_quorum {
                continue;
            }
            if up {
                self.update(i, true);
            } else if !spec.terminate_delay.is_zero() {
                self.state[i].terminate_timer = Some(now + spec.terminate_delay);
            } else {
                self.update(i, false);
            }
        }
    }

    /// A new process `child` forked by `parent` (process ids; threads are not processes).
    /// The child counts for every spec the parent counts for.
    pub fn handle_fork(&mut self, now: Instant, parent: u32, child: u32) {
        let Some(specs) = self.pids.get(&parent).cloned() else {
            return;
        };
        for i in specs {
            if !self.add(child, i) {
                continue;
            }
            let (spec, s) = (&self.specs[i], &mut self.state[i]);
            if s.count != spec.quorum && Some(s.count) != spec.quorum_max.checked_add(1) {
                continue;
            }
            if s.terminate_timer.take().is_none() && !spec.fork_delay.is_zero() {
                s.fork_timer = Some(now + spec.fork_delay);
                continue;
            }
            let up = s.count == spec.quorum;
            self.update(i, up);
        }
    }

    /// Process `pid` ended.
    pub fn handle_exit(&mut self, now: Instant, pid: u32) {
        let Some(specs) = self.pids.remove(&pid) else {
            return;
        };
        for i in specs {
            let (spec, s) = (&self.specs[i], &mut self.state[i]);
            let old = s.count;
            s.count = old.saturating_sub(1);
            if old != spec.quorum && s.count != spec.quorum_max {
                continue;
            }
            if s.fork_timer.take().is_none() && !spec.terminate_delay.is_zero() {
                s.terminate_timer = Some(now + spec.terminate_delay);
                continue;
            }
            let up = s.count == spec.quorum_max;
            self.update(i, up);
        }
    }

    /// Process `p` ran `execve`: its name and command line are matched again.
    pub fn handle_exec(&mut self, p: ProcInfo<'_>) {
        let had = self.pids.contains_key(&p.pid);
        for i in 0..self.specs.len() {
            if self.specs[i].matches(p.comm, p.cmdline) {
                self.gain(p.pid, i);
            } else if had {
                self.lose(p.pid, i);
            }
        }
        self.forget_if_empty(p.pid);
    }

    /// Process `pid` changed its name to `comm`: specs matching the name re-match it.
    pub fn handle_comm(&mut self, pid: u32, comm: &[u8]) {
        if let Some(specs) = self.pids.get(&pid).cloned() {
            for i in specs {
                if self.specs[i].full_command {
                    continue;
                }
                if self.specs[i].matches(comm, b"") {
                    return;
                }
                self.lose(pid, i);
            }
        }
        for i in 0..self.specs.len() {
            if !self.specs[i].full_command && self.specs[i].matches(comm, b"") {
                self.gain(pid, i);
            }
        }
        self.forget_if_empty(pid);
    }

    /// Counts `pid` for spec `i` (once); whether it was new.
    fn add(&mut self, pid: u32, i: usize) -> bool {
        let specs = self.pids.entry(pid).or_default();
        if specs.contains(&i) {
            return false;
        }
        specs.push(i);
        self.state[i].count = self.state[i].count.saturating_add(1);
        true
    }

    /// A re-matched process counts for spec `i`: no delay, a pending loss cancelled.
    fn gain(&mut self, pid: u32, i: usize) {
        if !self.add(pid, i) {
            return;
        }
        let (spec, s) = (&self.specs[i], &mut self.state[i]);
        if s.count == spec.quorum || Some(s.count) == spec.quorum_max.checked_add(1) {
            s.terminate_timer = None;
            let up = s.count == spec.quorum;
            self.update(i, up);
        }
    }

    /// A re-matched process no longer counts for spec `i`: no delay, a pending gain
    /// cancelled.
    fn lose(&mut self, pid: u32, i: usize) {
        let Some(specs) = self.pids.get_mut(&pid) else {
            return;
        };
        let Some(at) = specs.iter().position(|&s| s == i) else {
            return;
        };
        specs.remove(at);
        let (spec, s) = (&self.specs[i], &mut self.state[i]);
        let old = s.count;
        s.count = old.saturating_sub(1);
        if old == spec.quorum || s.count == spec.quorum_max {
            s.fork_timer = None;
            let up = s.count == spec.quorum_max;
            self.update(i, up);
        }
    }

    fn forget_if_empty(&mut self, pid: u32) {
        if self.pids.get(&pid).is_some_and(Vec::is_empty) {
            self.pids.remove(&pid);
        }
    }

    fn update(&mut self, i: usize, up: bool) {
        let s = &mut self.state[i];
        if s.have_quorum != up {
            s.have_quorum = up;
            self.changes.push_back(QuorumChange {
                spec: i,
                have_quorum: up,
            });
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn p<'a>(pid: u32, comm: &'a [u8], cmdline: &'a [u8]) -> ProcInfo<'a> {
        ProcInfo { pid, comm, cmdline }
    }

    fn changes(t: &mut Tracker) -> Vec<(usize, bool)> {
        std::iter::from_fn(|| t.poll_change())
            .map(|c| (c.spec, c.have_quorum))
            .collect()
    }

    #[test]
    fn names_command_lines_and_parameters() {
        let mut s = ProcessSpec::new("x", "nginx");
        assert!(s.matches(b"nginx\n", b"/usr/sbin/nginx\0"));
        assert!(!s.matches(b"nginx2", b""));
        s.full_command = true;
        s.process = "/usr/sbin/nginx".into();
        assert!(s.matches(b"", b"/usr/sbin/nginx\0-c\0/etc/a.conf\0"));
        s.params = vec!["-c".into(), "/etc/a".into()];
        s.param_match = ParamMatch::Exact;
        assert!(!s.matches(b"", b"/usr/sbin/nginx\0-c\0/etc/a.conf\0"));
        assert!(s.matches(b"", b"/usr/sbin/nginx\0-c\0/etc/a\0"));
        s.param_match = ParamMatch::Initial;
        assert!(s.matches(b"", b"/usr/sbin/nginx\0-c\0/etc/a.conf\0"));
        s.param_match = ParamMatch::Partial;
        assert!(!s.matches(b"", b"/usr/sbin/nginx\0-c\0/etc/a.conf\0"));
        assert!(s.matches(b"", b"/usr/sbin/nginx\0-c\0/etc/a\0-g\0x\0"));
        s.params.clear();
        s.param_match = ParamMatch::Exact;
        assert!(s.matches(b"", b"/usr/sbin/nginx\0"));
        assert!(!s.matches(b"", b"/usr/sbin/nginx\0-t\0"));
    }

    #[test]
    fn quorum_with_delays_as_keepalived() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut spec = ProcessSpec::new("p", "srv");
        spec.quorum = 2;
        spec.fork_delay = Duration::from_millis(100);
        spec.terminate_delay = Duration::from_millis(200);
        let mut t = Tracker::new(vec![spec]);
        t.handle_scan(t0, [p(10, b"srv", b""), p(11, b"bash", b"")]);
        assert_eq!(changes(&mut t), [(0, false)]);
        assert_eq!(t.count(0), Some(1));
        // A fork completes the quorum: it counts after fork_delay.
        t.handle_fork(ms(0), 10, 12);
        assert_eq!(t.count(0), Some(2));
        assert_eq!(t.poll_timeout(), Some(ms(100)));
        t.handle_timeout(ms(99));
        assert!(changes(&mut t).is_empty());
        t.handle_timeout(ms(100));
        assert_eq!(changes(&mut t), [(0, true)]);
        // An exit breaks it: lost after terminate_delay, unless a fork comes first.
        t.handle_exit(ms(200), 12);
        assert_eq!(t.poll_timeout(), Some(ms(400)));
        t.handle_fork(ms(300), 10, 13);
        assert_eq!(t.poll_timeout(), None);
        assert!(changes(&mut t).is_empty());
        t.handle_exit(ms(500), 13);
        t.handle_timeout(ms(700));
        assert_eq!(changes(&mut t), [(0, false)]);
        // Threads and unrelated processes are not counted.
        t.handle_fork(ms(800), 11, 14);
        assert_eq!(t.count(0), Some(1));
    }

    #[test]
    fn exec_and_rename_rematch_at_once() {
        let t0 = Instant::now();
        let mut spec = ProcessSpec::new("p", "srv");
        spec.terminate_delay = Duration::from_secs(5);
        let mut t = Tracker::new(vec![spec]);
        t.handle_scan(t0, [p(10, b"srv", b"")]);
        assert_eq!(changes(&mut t), [(0, true)]);
        t.handle_exec(p(10, b"other", b""));
        assert_eq!(changes(&mut t), [(0, false)]);
        t.handle_comm(10, b"srv");
        assert_eq!(changes(&mut t), [(0, true)]);
        t.handle_exec(p(10, b"srv", b""));
        assert_eq!(t.count(0), Some(1));
        t.handle_comm(10, b"x");
        assert_eq!(changes(&mut t), [(0, false)]);
        assert_eq!(t.tracked_pids().count(), 0);
    }

    #[test]
    fn quorum_max_and_the_rescan() {
        let t0 = Instant::now();
        let mut spec = ProcessSpec::new("p", "w");
        spec.quorum = 1;
        spec.quorum_max = 2;
        spec.terminate_delay = Duration::from_millis(50);
        let mut t = Tracker::new(vec![spec]);
        t.handle_scan(t0, [p(1, b"w", b""), p(2, b"w", b"")]);
        assert_eq!(changes(&mut t), [(0, true)]);
        t.handle_fork(t0, 1, 3);
        assert_eq!(changes(&mut t), [(0, false)]);
        t.handle_exit(t0, 3);
        assert!(changes(&mut t).is_empty());
        t.handle_timeout(t0 + Duration::from_millis(50));
        assert_eq!(changes(&mut t), [(0, true)]);
        // Events lost: the recount finds none left; the loss waits terminate_delay.
        t.handle_scan(t0, []);
        assert!(changes(&mut t).is_empty());
        t.handle_timeout(t0 + Duration::from_millis(50));
        assert_eq!(changes(&mut t), [(0, false)]);
        t.handle_scan(t0, [p(5, b"w", b"")]);
        assert_eq!(changes(&mut t), [(0, true)]);
    }
}
