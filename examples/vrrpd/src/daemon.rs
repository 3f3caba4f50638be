//! The daemon: instances, sockets, the run loop, reload and shutdown.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::task::Poll;
use std::time::Duration;

use std::os::fd::AsFd;
use std::sync::Arc;

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};
use tokio::io::AsyncWriteExt;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use vrrp_proto::policy::{FaultCause, Policy, PolicyAction, plan_reload};
use vrrp_proto::wire::{Version, virtual_mac};
use vrrp_proto::{Action, Config, ConfigError, IpCidr, Reason, RecvMeta, State, VirtualRouter};

use super::cli::Options;
use super::log::log;
use super::notify;
use super::report::{self, InstanceReport, state_name};
use super::track::{self, Outcome};
use keepalived_conf::{ConfError, VrrpConf, VrrpInstance, VrrpScript, VrrpTrackProcess};
use vrrp_linux::process::{ParamMatch, ProcessSpec, ProcessWatcher};
use vrrp_linux::rtnl::{
    AsyncLinkWatcher, Link, Route as NlRoute, RouteKind as NlRouteKind, Rtnl, RtnlError,
    Rule as NlRule, RuleAction as NlRuleAction,
};
use vrrp_linux::socket::{IoError, PacketSocket, Received, VrrpRecvSocket, VrrpSendSocket};

/// Why the daemon could not start or had to stop.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DaemonError {
    /// The configuration file is unusable: nothing was applied.
    #[error("configuration: {0}")]
    Config(#[from] ConfError),
    /// An instance's values are refused by the VRRP engine.
    #[error("{file}:{line}: vrrp_instance {instance}: {source}")]
    Instance {
        /// The instance.
        instance: String,
        /// Its file.
        file: PathBuf,
        /// Its line.
        line: u32,
        /// The engine's reason.
        #[source]
        source: ConfigError,
    },
    /// An instance's interface cannot be used.
    #[error(
        "vrrp_instance {instance}: interface {iface}: {reason} (check the interface name and that it has an address)"
    )]
    Interface {
        /// The instance.
        instance: String,
        /// The interface.
        iface: String,
        /// What is missing.
        reason: String,
    },
    /// A route-netlink operation failed.
    #[error("{what}: {source}")]
    Rtnl {
        /// What was being done.
        what: String,
        /// The netlink error.
        #[source]
        source: RtnlError,
    },
    /// A socket could not be set up.
    #[error(transparent)]
    Socket(#[from] IoError),
    /// The PID file could not be written.
    #[error("writing pid file {path}: {source}")]
    PidFile {
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The async runtime or a signal handler could not be set up.
    #[error("runtime: {0}")]
    Runtime(#[source] io::Error),
}

/// Inputs to the run loop from the helper tasks.
#[derive(Debug)]
pub(crate) enum Event {
    /// A check script finished one run.
    Script { name: String, outcome: Outcome },
    /// Link state changes.
    Links(Vec<Link>),
    /// Link notifications were lost: re-read every link.
    Resync,
    /// A scrape of the Prometheus endpoint.
    Metrics(oneshot::Sender<String>),
    /// A tracked process gained or lost its quorum.
    Process {
        name: String,
        have_quorum: bool,
        count: u32,
    },
    /// Process tracking stopped working.
    ProcessError(String),
    /// A signal the daemon acts on.
    Signal(SignalKind),
}

/// Sends [`Event`]s from the tokio tasks to the run loop, which sleeps in its own `epoll`: each
/// send also bumps an `eventfd` the loop waits on.
#[derive(Debug, Clone)]
pub(crate) struct EventTx {
    tx: UnboundedSender<Event>,
    wake: Arc<EventFd>,
}

impl EventTx {
    /// Queues `ev` and wakes the loop; `Err` once the loop is gone.
    pub(crate) fn send(&self, ev: Event) -> Result<(), ()> {
        self.tx.send(ev).map_err(|_| ())?;
        // A full counter (2^64 - 2 wakeups unread) still wakes the loop.
        let _ = self.wake.write(1);
        Ok(())
    }
}

/// `epoll` tokens of the run loop: the timer, the event channel, and receive sockets (the
/// interface index shifted left once, plus 1 for IPv6).
const TOKEN_TIMER: u64 = u64::MAX;
const TOKEN_EVENTS: u64 = u64::MAX - 1;

fn reader_token(ifindex: u32, v6: bool) -> u64 {
    (u64::from(ifindex) << 1) | u64::from(v6)
}

/// Checks what can be checked without touching the system: every instance's values pass
/// the VRRP engine's validation (with a stand-in interface address).
pub(crate) fn validate(conf: &VrrpConf) -> Result<(), DaemonError> {
    for inst in &conf.instances {
        let primary = if is_v6(inst) {
            IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1))
        } else {
            IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))
        };
        engine_config(conf, inst, primary, [0x02, 0, 0, 0, 0, 1])?;
    }
    Ok(())
}

/// The `vrrp_track_process` definitions an instance or a sync group tracks, as the process
/// watcher's specs (unreferenced ones are not watched).
pub(crate) fn process_specs(conf: &VrrpConf) -> Vec<ProcessSpec> {
    let used = |p: &VrrpTrackProcess| {
        conf.instances
            .iter()
            .flat_map(|i| &i.track_processes)
            .chain(conf.sync_groups.iter().flat_map(|g| &g.track_processes))
            .any(|t| t.name == p.name)
    };
    conf.track_processes
        .iter()
        .filter(|p| used(p))
        .map(|p| ProcessSpec {
            name: p.name.clone(),
            process: p.process.clone(),
            params: p.params.clone(),
            param_match: match p.param_match {
                None => ParamMatch::None,
                Some(keepalived_conf::ParamMatch::Exact) => ParamMatch::Exact,
                Some(keepalived_conf::ParamMatch::Initial) => ParamMatch::Initial,
                Some(keepalived_conf::ParamMatch::Partial) => ParamMatch::Partial,
            },
            full_command: p.full_command,
            quorum: p.quorum,
            quorum_max: p.quorum_max.unwrap_or(u32::MAX),
            fork_delay: p.fork_delay,
            terminate_delay: p.terminate_delay,
        })
        .collect()
}

/// Runs the daemon until SIGTERM or SIGINT.
pub(crate) fn run(opts: &Options) -> Result<(), DaemonError> {
    let (conf, warnings) = keepalived_conf::parse_vrrp(&opts.config)?;
    for w in &warnings {
        log!("warning: {w}");
    }
    validate(&conf)?;
    if let Some(p) = &opts.pid_file {
        std::fs::write(p, format!("{}\n", std::process::id())).map_err(|source| {
            DaemonError::PidFile {
                path: p.clone(),
                source,
            }
        })?;
    }
    // The VRRP sockets and timer are served by this thread's own epoll loop (one wakeup and
    // no runtime bookkeeping per advert); scripts, netlink, process events, signals, mail and
    // metrics run as tokio tasks on one worker thread and reach the loop as events.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("vrrpd-tasks")
        .enable_all()
        .build()
        .map_err(DaemonError::Runtime)?;
    let _ctx = rt.enter();
    let res = (|| {
        let mut d = Daemon::new(opts.clone())?;
        // Process tracking first: the instances start with the processes' verdicts.
        rt.block_on(d.watch_processes(process_specs(&conf)));
        d.start(conf)?;
        d.run(&rt)
    })();
    if let Some(p) = &opts.pid_file {
        let _ = std::fs::remove_file(p);
    }
    res
}

fn is_v6(inst: &VrrpInstance) -> bool {
    inst.vips.first().is_some_and(|v| v.addr.is_ipv6())
}

fn engine_config(
    conf: &VrrpConf,
    inst: &VrrpInstance,
    primary: IpAddr,
    mac: [u8; 6],
) -> Result<Config, DaemonError> {
    let mut b = Config::builder(inst.vrid, primary)
        .version(if inst.version == 3 {
            Version::V3
        } else {
            Version::V2
        })
        .priority(inst.priority)
        .advert_interval(inst.advert_int)
        .preempt(inst.preempt)
        .preempt_delay(inst.preempt_delay)
        .accept_mode(inst.accept)
        .mac(mac)
        .use_vmac(inst.use_vmac.is_some())
        .announce(inst.announce(&conf.global));
    for v in &inst.vips {
        let cidr = IpCidr::new(v.addr, v.prefix).unwrap_or_else(|| IpCidr::host(v.addr));
        b = b.vip(cidr);
    }
    if inst.version == 2
        && let Some(p) = &inst.auth_pass
    {
        b = b.password(p);
    }
    for p in &inst.unicast_peers {
        b = b.unicast_peer(*p);
    }
    b.build().map_err(|source| DaemonError::Instance {
        instance: inst.name.clone(),
        file: inst.pos.file.to_path_buf(),
        line: inst.pos.line,
        source,
    })
}

/// One running `vrrp_instance`.
struct Inst {
    conf: VrrpInstance,
    router: VirtualRouter,
    /// Where adverts are received (the configured interface).
    ifindex: u32,
    /// Where adverts, GARPs and the VIPs go (the VMAC interface with `use_vmac`).
    xmit_ifindex: u32,
    xmit_iface: String,
    /// The interface of each advertised VIP, in configuration order.
    vip_dev: Vec<u32>,
    /// `virtual_ipaddress_excluded`: (address, prefix, interface).
    excluded: Vec<(IpAddr, u8, u32)>,
    /// The VMAC interface we created, deleted when the instance goes.
    vmac: Option<u32>,
    /// `virtual_routes`, interfaces resolved: installed after the VIPs on becoming MASTER.
    routes: Vec<NlRoute>,
    /// `virtual_rules`: installed after the routes, removed before them.
    rules: Vec<NlRule>,
    /// Whether `routes` and `rules` are installed.
    routes_set: bool,
    /// The priority the router was last told (its configured one at start).
    applied_priority: u8,
    /// In FAULT by the tracking policy.
    faulted: bool,
    /// Adverts refused so far.
    dropped: u64,
}

struct Daemon {
    opts: Options,
    epoch: std::time::Instant,
    conf: VrrpConf,
    rtnl: Rtnl,
    tx: EventTx,
    rx: UnboundedReceiver<Event>,
    /// The run loop's epoll: the receive sockets, the timer, the event channel's eventfd.
    poller: Epoll,
    instances: Vec<Inst>,
    /// The receive sockets, read by the run loop itself (one wakeup per advertisement).
    readers: HashMap<(u32, bool), VrrpRecvSocket>,
    /// The packet being handled (its buffer reused from one packet to the next).
    scratch: Received,
    senders: HashMap<(u32, IpAddr), VrrpSendSocket>,
    packets: HashMap<u32, PacketSocket>,
    /// The running check scripts.
    scripts: HashMap<String, (VrrpScript, JoinHandle<()>)>,
    /// The process watcher's task and what it watches.
    processes: Option<(Vec<ProcessSpec>, JoinHandle<()>)>,
    /// The last verdict of each tracked process (quorum held); an unknown one has none.
    process_verdicts: HashMap<String, bool>,
    /// Tracking and sync groups: `policy`'s instances are `instances`, in order.
    policy: Policy,
    links: HashMap<u32, Link>,
    unknown_vrid: u64,
    watcher: Option<JoinHandle<()>>,
    metrics: Option<JoinHandle<()>>,
    /// Where e-mail alerts go (`None`: no `smtp_server` or no `notification_email`).
    mailer: Option<ka_alert::Mailer>,
    /// `static_ipaddress`, `static_routes`, `static_rules` as installed.
    statics: Statics,
}

/// A script or process check an instance tracks, by name.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tracked {
    Script(String),
    Process(String),
}

/// The static addresses, routes and rules, interfaces resolved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Statics {
    addrs: Vec<(IpAddr, u8, u32)>,
    routes: Vec<NlRoute>,
    rules: Vec<NlRule>,
}

/// A rule in route-netlink terms.
fn nl_rule(r: &keepalived_conf::Rule) -> NlRule {
    NlRule {
        ipv6: r.family == vrrp_proto::wire::AddrFamily::Ipv6,
        invert: r.invert,
        from: r.from.map(|p| (p.addr, p.len)),
        to: r.to.map(|p| (p.addr, p.len)),
        iif: r.iif.clone(),
        oif: r.oif.clone(),
        fwmark: r.fwmark.map(|(m, _)| m),
        fwmask: r.fwmark.and_then(|(_, k)| k),
        priority: r.priority,
        action: match r.action {
            keepalived_conf::RuleAction::Table(t) => NlRuleAction::Table(t),
            keepalived_conf::RuleAction::Blackhole => NlRuleAction::Blackhole,
            keepalived_conf::RuleAction::Unreachable => NlRuleAction::Unreachable,
            keepalived_conf::RuleAction::Prohibit => NlRuleAction::Prohibit,
        },
        protocol: r.protocol(),
    }
}

/// How a route is logged: `ip route`'s words.
fn route_text(r: &NlRoute) -> String {
    let mut s = format!("{}/{}", r.dst, r.dst_len);
    if let Some(g) = r.gateway {
        s += &format!(" via {g}");
    }
    if r.table != keepalived_conf::RT_TABLE_MAIN {
        s += &format!(" table {}", r.table);
    }
    s
}

/// How a rule is logged: `ip rule`'s words.
fn rule_text(r: &NlRule) -> String {
    let mut s = format!("{}:", r.priority);
    match r.from {
        Some((a, l)) => s += &format!(" from {a}/{l}"),
        None => s += " from all",
    }
    if let Some((a, l)) = r.to {
        s += &format!(" to {a}/{l}");
    }
    s
}

impl Daemon {
    fn new(opts: Options) -> Result<Self, DaemonError> {
        let rtnl = Rtnl::open().map_err(|source| DaemonError::Rtnl {
            what: "opening route netlink".into(),
            source,
        })?;
        let (tx, rx) = unbounded_channel();
        let wake = EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)
            .map_err(|e| DaemonError::Runtime(e.into()))?;
        let poller = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)
            .map_err(|e| DaemonError::Runtime(e.into()))?;
        poller
            .add(&wake, EpollEvent::new(EpollFlags::EPOLLIN, TOKEN_EVENTS))
            .map_err(|e| DaemonError::Runtime(e.into()))?;
        Ok(Self {
            opts,
            epoch: std::time::Instant::now(),
            conf: VrrpConf::default(),
            rtnl,
            tx: EventTx {
                tx,
                wake: Arc::new(wake),
            },
            rx,
            poller,
            instances: Vec::new(),
            readers: HashMap::new(),
            scratch: Received::default(),
            senders: HashMap::new(),
            packets: HashMap::new(),
            scripts: HashMap::new(),
            processes: None,
            process_verdicts: HashMap::new(),
            policy: Policy::builder().build(),
            links: HashMap::new(),
            unknown_vrid: 0,
            watcher: None,
            metrics: None,
            mailer: None,
            statics: Statics::default(),
        })
    }

    fn now(&self) -> vrrp_proto::Instant {
        vrrp_proto::Instant::from_std(self.epoch, std::time::Instant::now())
    }

    fn rtnl_err(what: impl Into<String>) -> impl FnOnce(RtnlError) -> DaemonError {
        let what = what.into();
        move |source| DaemonError::Rtnl { what, source }
    }

    // ---- start-up ----

    /// Builds every instance (nothing is started until all of them could be built, so a
    /// configuration never half-applies), then starts them.
    fn start(&mut self, conf: VrrpConf) -> Result<(), DaemonError> {
        let watcher =
            AsyncLinkWatcher::open().map_err(Self::rtnl_err("subscribing to link events"))?;
        self.watcher = Some(spawn_link_watcher(watcher, self.tx.clone()));
        if let Some(addr) = self.opts.metrics {
            self.metrics = Some(spawn_metrics(addr, self.tx.clone())?);
        }
        let mut built = Vec::new();
        for inst in &conf.instances {
            built.push(self.build(&conf, inst)?);
        }
        let statics = self.build_statics(&conf)?;
        // As keepalived at start: leftovers of an earlier run go, then everything is added.
        self.remove_statics(&statics, true);
        self.add_statics(&statics);
        self.statics = statics;
        self.mailer = ka_alert::Mailer::new(&conf.global);
        self.conf = conf;
        self.start_scripts();
        let now = self.now();
        for mut inst in built {
            self.remove_stale_vips(&inst);
            inst.router.startup(now);
            self.instances.push(inst);
        }
        self.rebuild_policy();
        for i in 0..self.instances.len() {
            self.drain(i);
        }
        log!(
            "started: {} instance(s), {} script(s)",
            self.instances.len(),
            self.scripts.len()
        );
        Ok(())
    }

    fn build(&mut self, conf: &VrrpConf, inst: &VrrpInstance) -> Result<Inst, DaemonError> {
        let link = self
            .rtnl
            .link_by_name(&inst.interface)
            .map_err(|e| DaemonError::Interface {
                instance: inst.name.clone(),
                iface: inst.interface.clone(),
                reason: e.to_string(),
            })?;
        self.links.insert(link.index, link.clone());
        let v6 = is_v6(inst);
        let primary = match if v6 {
            inst.unicast_src_ip.or(inst.mcast_src_ip)
        } else {
            inst.mcast_src_ip.or(inst.unicast_src_ip)
        } {
            Some(a) => a,
            None => self.primary_address(inst, link.index, v6)?,
        };
        let (xmit_ifindex, xmit_iface, vmac, mac) = match &inst.use_vmac {
            Some(name) => {
                let vmac_addr = virtual_mac(v6, inst.vrid);
                let idx = self
                    .rtnl
                    .add_macvlan(name, link.index, vmac_addr)
                    .map_err(Self::rtnl_err(format!("creating VMAC interface {name}")))?;
                // The base interface must not answer ARP for the VIP with its own MAC, and
                // replies to clients arrive on the VMAC interface but route out the base.
                let _ =
                    vrrp_linux::rtnl::sysctl_set_iface("ipv4", &inst.interface, "arp_ignore", "1");
                let _ = vrrp_linux::rtnl::sysctl_set_iface("ipv4", name, "arp_ignore", "1");
                let _ = vrrp_linux::rtnl::sysctl_set_iface("ipv4", name, "rp_filter", "0");
                let _ = vrrp_linux::rtnl::sysctl_set_iface("ipv4", name, "accept_local", "1");
                log!("({}) VMAC {name} created on {}", inst.name, inst.interface);
                (idx, name.clone(), Some(idx), link.mac)
            }
            None => (link.index, inst.interface.clone(), None, link.mac),
        };
        let cfg = engine_config(conf, inst, primary, mac)?;
        let mut vip_dev = Vec::new();
        for v in &inst.vips {
            vip_dev.push(self.dev_index(v.dev.as_deref(), xmit_ifindex)?);
        }
        let mut excluded = Vec::new();
        for v in &inst.excluded_vips {
            excluded.push((
                v.addr,
                v.prefix,
                self.dev_index(v.dev.as_deref(), xmit_ifindex)?,
            ));
        }
        self.ensure_sockets(
            &inst.interface,
            link.index,
            v6,
            &xmit_iface,
            xmit_ifindex,
            primary,
        )?;
        let priority = cfg.priority();
        let mut routes = Vec::new();
        for r in &inst.virtual_routes {
            routes.push(self.nl_route(r)?);
        }
        let rules = inst.virtual_rules.iter().map(nl_rule).collect();
        Ok(Inst {
            routes,
            rules,
            routes_set: false,
            conf: inst.clone(),
            router: VirtualRouter::new(cfg),
            ifindex: link.index,
            xmit_ifindex,
            xmit_iface,
            vip_dev,
            excluded,
            vmac,
            applied_priority: priority,
            faulted: false,
            dropped: 0,
        })
    }

    /// A route in route-netlink terms, its `dev` looked up.
    fn nl_route(&mut self, r: &keepalived_conf::Route) -> Result<NlRoute, DaemonError> {
        let oif = match &r.dev {
            None => None,
            Some(name) => Some(
                self.rtnl
                    .link_by_name(name)
                    .map(|l| l.index)
                    .map_err(Self::rtnl_err(format!("looking up route device {name}")))?,
            ),
        };
        Ok(NlRoute {
            kind: match r.kind {
                keepalived_conf::RouteKind::Unicast => NlRouteKind::Unicast,
                keepalived_conf::RouteKind::Blackhole => NlRouteKind::Blackhole,
                keepalived_conf::RouteKind::Unreachable => NlRouteKind::Unreachable,
                keepalived_conf::RouteKind::Prohibit => NlRouteKind::Prohibit,
            },
            dst: r.dst.addr,
            dst_len: r.dst.len,
            pref_src: r.src,
            gateway: r.via,
            oif,
            scope: r.scope,
            table: r.table,
            metric: r.metric,
            protocol: r.protocol(),
        })
    }

    /// `static_ipaddress`, `static_routes` and `static_rules`, interfaces looked up.
    fn build_statics(&mut self, conf: &VrrpConf) -> Result<Statics, DaemonError> {
        let mut st = Statics::default();
        for a in &conf.static_addresses {
            let dev = self.dev_index(a.dev.as_deref(), 0)?;
            st.addrs.push((a.addr, a.prefix, dev));
        }
        for r in &conf.static_routes {
            st.routes.push(self.nl_route(r)?);
        }
        st.rules = conf.static_rules.iter().map(nl_rule).collect();
        Ok(st)
    }

    /// Adds the static addresses, then routes, then rules (keepalived's order).
    fn add_statics(&mut self, st: &Statics) {
        for (a, p, dev) in &st.addrs {
            if let Err(e) = self.rtnl.add_addr(*dev, *a, *p) {
                log!("adding static address {a}/{p}: {e}");
            }
        }
        for r in &st.routes {
            if let Err(e) = self.rtnl.add_route(r) {
                log!("adding static route {}: {e}", route_text(r));
            }
        }
        for r in &st.rules {
            if let Err(e) = self.rtnl.add_rule(r) {
                log!("adding static rule {}: {e}", rule_text(r));
            }
        }
    }

    /// Removes the static rules, then routes, then addresses (keepalived's order);
    /// `quiet`: leftovers of an earlier run, which need not be there.
    fn remove_statics(&mut self, st: &Statics, quiet: bool) {
        for r in &st.rules {
            match self.rtnl.del_rule(r) {
                Ok(true) if quiet => log!("removed stale static rule {}", rule_text(r)),
                Err(e) if !quiet => log!("removing static rule {}: {e}", rule_text(r)),
                _ => {}
            }
        }
        for r in &st.routes {
            match self.rtnl.del_route(r) {
                Ok(true) if quiet => log!("removed stale static route {}", route_text(r)),
                Err(e) if !quiet => log!("removing static route {}: {e}", route_text(r)),
                _ => {}
            }
        }
        for (a, p, dev) in &st.addrs {
            match self.rtnl.del_addr(*dev, *a, *p) {
                Ok(true) if quiet => log!("removed stale static address {a}/{p}"),
                Err(e) if !quiet => log!("removing static address {a}/{p}: {e}"),
                _ => {}
            }
        }
    }

    /// Installs (`on`) or removes instance `i`'s virtual routes and rules, once: routes then
    /// rules on the way in, rules then routes on the way out, as keepalived does.
    fn set_routes(&mut self, i: usize, on: bool) {
        let inst = &mut self.instances[i];
        if inst.routes_set == on || (inst.routes.is_empty() && inst.rules.is_empty()) {
            return;
        }
        inst.routes_set = on;
        let name = inst.conf.name.clone();
        let (routes, rules) = (inst.routes.clone(), inst.rules.clone());
        if on {
            for r in &routes {
                if let Err(e) = self.rtnl.add_route(r) {
                    log!("({name}) adding route {}: {e}", route_text(r));
                }
            }
            for r in &rules {
                if let Err(e) = self.rtnl.add_rule(r) {
                    log!("({name}) adding rule {}: {e}", rule_text(r));
                }
            }
        } else {
            for r in &rules {
                if let Err(e) = self.rtnl.del_rule(r) {
                    log!("({name}) removing rule {}: {e}", rule_text(r));
                }
            }
            for r in &routes {
                if let Err(e) = self.rtnl.del_route(r) {
                    log!("({name}) removing route {}: {e}", route_text(r));
                }
            }
        }
    }

    fn dev_index(&mut self, dev: Option<&str>, default: u32) -> Result<u32, DaemonError> {
        match dev {
            None => Ok(default),
            Some(name) => self
                .rtnl
                .link_by_name(name)
                .map(|l| l.index)
                .map_err(Self::rtnl_err(format!("looking up VIP device {name}"))),
        }
    }

    /// The advert source: the interface's first primary IPv4 address that is not one of our
    /// VIPs, or its IPv6 link-local address.
    fn primary_address(
        &mut self,
        inst: &VrrpInstance,
        ifindex: u32,
        v6: bool,
    ) -> Result<IpAddr, DaemonError> {
        let addrs = self.rtnl.addrs(ifindex).map_err(Self::rtnl_err(format!(
            "reading addresses of {}",
            inst.interface
        )))?;
        let vip = |a: &IpAddr| inst.vips.iter().any(|v| v.addr == *a);
        let found = addrs.iter().find(|a| {
            if v6 {
                a.addr.is_ipv6() && a.link_local
            } else {
                a.addr.is_ipv4() && !a.secondary && !vip(&a.addr)
            }
        });
        found.map(|a| a.addr).ok_or_else(|| DaemonError::Interface {
            instance: inst.name.clone(),
            iface: inst.interface.clone(),
            reason: if v6 {
                "no IPv6 link-local address".into()
            } else {
                "no IPv4 address to send adverts from (set mcast_src_ip)".into()
            },
        })
    }

    fn ensure_sockets(
        &mut self,
        iface: &str,
        ifindex: u32,
        v6: bool,
        xmit_iface: &str,
        xmit_ifindex: u32,
        src: IpAddr,
    ) -> Result<(), DaemonError> {
        // Adverts arrive on the configured interface; with a VMAC they also arrive on the
        // VMAC interface (a macvlan delivers frames whose source is its own MAC, i.e. the
        // master's adverts, to itself rather than to the base interface).
        let mut rx = vec![(iface, ifindex)];
        if xmit_ifindex != ifindex {
            rx.push((xmit_iface, xmit_ifindex));
        }
        for (name, idx) in rx {
            if let Entry::Vacant(e) = self.readers.entry((idx, v6)) {
                let sock = VrrpRecvSocket::open(name, idx, v6)?;
                // Level-triggered: a socket left with packets (after a bounded batch) is
                // reported again. Closing the socket removes it from the epoll.
                self.poller
                    .add(
                        sock.as_fd(),
                        EpollEvent::new(EpollFlags::EPOLLIN, reader_token(idx, v6)),
                    )
                    .map_err(|e| IoError::socket("adding to epoll", name, e.into()))?;
                e.insert(sock);
            }
        }
        if let Entry::Vacant(e) = self.senders.entry((xmit_ifindex, src)) {
            e.insert(VrrpSendSocket::open(xmit_iface, xmit_ifindex, src)?);
        }
        if let Entry::Vacant(e) = self.packets.entry(xmit_ifindex) {
            e.insert(PacketSocket::open(xmit_iface, xmit_ifindex)?);
        }
        Ok(())
    }

    /// A restart after a crash (kill -9) finds the old VIPs still configured; a backup must
    /// not keep them, so they go before the instance starts.
    fn remove_stale_vips(&mut self, inst: &Inst) {
        let vips = inst.router.config().vips().to_vec();
        for (v, dev) in vips.iter().zip(&inst.vip_dev) {
            if let Ok(true) = self.rtnl.del_addr(*dev, v.addr(), v.prefix_len()) {
                log!("({}) removed stale VIP {}", inst.conf.name, v.addr());
            }
        }
        for (a, p, dev) in &inst.excluded {
            let _ = self.rtnl.del_addr(*dev, *a, *p);
        }
        for r in &inst.rules {
            if let Ok(true) = self.rtnl.del_rule(r) {
                log!("({}) removed stale rule {}", inst.conf.name, rule_text(r));
            }
        }
        for r in &inst.routes {
            if let Ok(true) = self.rtnl.del_route(r) {
                log!("({}) removed stale route {}", inst.conf.name, route_text(r));
            }
        }
    }

    /// Starts watching `specs` (unless they are what is watched already): the verdicts are
    /// known when this returns. When the kernel's process events cannot be had, every
    /// tracked process is taken as down, as keepalived does.
    async fn watch_processes(&mut self, specs: Vec<ProcessSpec>) {
        if self.processes.as_ref().is_some_and(|(s, _)| *s == specs) {
            return;
        }
        if let Some((_, h)) = self.processes.take() {
            h.abort();
        }
        self.process_verdicts.clear();
        if specs.is_empty() {
            return;
        }
        match ProcessWatcher::open(specs.clone()).await {
            Ok(mut w) => {
                for (i, spec) in specs.iter().enumerate() {
                    let up = w.tracker().have_quorum(i).unwrap_or(false);
                    let n = w.tracker().count(i).unwrap_or(0);
                    log!(
                        "tracked process {}: {n} running, quorum {}",
                        spec.name,
                        if up { "held" } else { "lost" }
                    );
                    self.process_verdicts.insert(spec.name.clone(), up);
                }
                let tx = self.tx.clone();
                let h = tokio::spawn(async move {
                    loop {
                        let ev = match w.next().await {
                            Ok(c) => Event::Process {
                                name: w.tracker().specs()[c.spec].name.clone(),
                                have_quorum: c.have_quorum,
                                count: w.tracker().count(c.spec).unwrap_or(0),
                            },
                            Err(e) => Event::ProcessError(e.to_string()),
                        };
                        let stop = matches!(ev, Event::ProcessError(_));
                        if tx.send(ev).is_err() || stop {
                            return;
                        }
                    }
                });
                self.processes = Some((specs, h));
            }
            Err(e) => {
                log!("error: track_process cannot run, every tracked process is down: {e}");
                for s in &specs {
                    self.process_verdicts.insert(s.name.clone(), false);
                }
                // Nothing to wait for: an empty task keeps the specs for the next reload.
                self.processes = Some((specs, tokio::spawn(async {})));
            }
        }
    }

    fn on_process(&mut self, name: &str, have_quorum: bool, count: u32) {
        self.process_verdicts.insert(name.to_owned(), have_quorum);
        let Some(chk) = self.policy.process_id(name) else {
            return;
        };
        if self.policy.handle_process(chk, have_quorum).is_none() {
            return;
        }
        log!(
            "Quorum {} for tracked process {name} ({count} running)",
            if have_quorum { "gained" } else { "lost" }
        );
        self.apply_policy();
    }

    fn start_scripts(&mut self) {
        for s in self.conf.scripts.clone() {
            let timeout = s.timeout.unwrap_or(s.interval);
            let h = track::spawn_runner(
                s.name.clone(),
                s.script.clone(),
                s.interval,
                timeout,
                self.tx.clone(),
            );
            self.scripts.insert(s.name.clone(), (s, h));
        }
    }

    /// Builds the tracking policy of the running instances (their scripts, interfaces and
    /// sync groups), keeps the verdicts of the checks that did not change, sets the links'
    /// current states, and carries out what it asks for.
    fn rebuild_policy(&mut self) {
        let mut b = Policy::builder();
        // Every script is a check, tracked or not, so that its verdicts are logged.
        for (def, _) in self.scripts.values() {
            b.script(&def.name, def.rise, def.fall);
        }
        // What each instance tracks besides interfaces: its own scripts and processes, then
        // those of its sync group (a member tracking the same one gets the group's weight,
        // keeping its own direction; a group with an address owner has no weights).
        let mut tracks: Vec<Vec<(Tracked, i32, bool)>> = Vec::new();
        for inst in &self.instances {
            let c = &inst.conf;
            let mut t = Vec::new();
            for s in &c.track_scripts {
                if let Some((def, _)) = self.scripts.get(&s.name) {
                    let w = s.weight.unwrap_or(def.weight);
                    t.push((Tracked::Script(s.name.clone()), w, def.weight_reverse));
                }
            }
            for p in &c.track_processes {
                if let Some(def) = self.conf.track_processes.iter().find(|d| d.name == p.name) {
                    let w = p.weight.unwrap_or(def.weight);
                    let r = p.reverse.unwrap_or(def.weight_reverse);
                    t.push((Tracked::Process(p.name.clone()), w, r));
                }
            }
            tracks.push(t);
        }
        for g in &self.conf.sync_groups {
            let members: Vec<usize> = g
                .instances
                .iter()
                .filter_map(|n| self.instances.iter().position(|i| i.conf.name == *n))
                .collect();
            let owner = members
                .iter()
                .any(|&k| self.instances[k].conf.priority == 255);
            let mut entries = Vec::new();
            for s in &g.track_scripts {
                if let Some((def, _)) = self.scripts.get(&s.name) {
                    let w = s.weight.unwrap_or(def.weight);
                    entries.push((Tracked::Script(s.name.clone()), w, def.weight_reverse));
                }
            }
            for p in &g.track_processes {
                if let Some(def) = self.conf.track_processes.iter().find(|d| d.name == p.name) {
                    let w = p.weight.unwrap_or(def.weight);
                    let r = p.reverse.unwrap_or(def.weight_reverse);
                    entries.push((Tracked::Process(p.name.clone()), w, r));
                }
            }
            for (what, w, r) in entries {
                let w = if owner { 0 } else { w };
                for &k in &members {
                    match tracks[k].iter_mut().find(|(t, _, _)| *t == what) {
                        Some(own) if own.1 != 0 => own.1 = w,
                        Some(_) => {}
                        None => tracks[k].push((what.clone(), w, r)),
                    }
                }
            }
        }
        let mut ids = Vec::new();
        for (inst, tracked) in self.instances.iter().zip(&tracks) {
            let c = &inst.conf;
            let id = b.instance(&c.name, c.priority);
            ids.push(id);
            if !c.dont_track_primary {
                let own = b.interface(&c.interface);
                b.track(id, own, 0);
            }
            for t in &c.track_interfaces {
                let chk = b.interface(&t.name);
                b.track(id, chk, t.weight);
            }
            for (what, w, r) in tracked {
                let chk = match what {
                    Tracked::Script(name) => match self.scripts.get(name) {
                        Some((def, _)) => b.script(&def.name, def.rise, def.fall),
                        None => continue,
                    },
                    Tracked::Process(name) => b.process(name),
                };
                b.track_with(id, chk, *w, *r);
            }
        }
        for g in &self.conf.sync_groups {
            let members: Vec<_> = g
                .instances
                .iter()
                .filter_map(|n| self.instances.iter().position(|i| i.conf.name == *n))
                .map(|k| ids[k])
                .collect();
            b.sync_group(&g.name, &members);
        }
        let mut policy = b.build();
        policy.carry_over(&self.policy);
        for l in self.links.values() {
            if let Some(chk) = policy.interface_id(&l.name) {
                policy.handle_link(chk, l.up && l.running);
            }
        }
        // A process the watcher has no verdict for is down.
        let checks: Vec<_> = policy.checks().collect();
        for chk in checks {
            let Some(name) = policy.check_name(chk).map(str::to_owned) else {
                continue;
            };
            if policy.process_id(&name) == Some(chk) {
                let up = self.process_verdicts.get(&name).copied().unwrap_or(false);
                policy.handle_process(chk, up);
            }
        }
        // The new policy's actions are differences from the configured priorities; the
        // routers of instances kept across a reload may be elsewhere, so each router is
        // brought to what the policy says instead.
        while policy.poll_action().is_some() {}
        self.policy = policy;
        for (i, id) in ids.into_iter().enumerate() {
            let want_priority = self
                .policy
                .priority(id)
                .unwrap_or(self.instances[i].conf.priority);
            let want_fault = self.policy.is_fault(id);
            if want_priority != self.instances[i].applied_priority {
                let from = self.instances[i].applied_priority;
                self.set_priority(i, from, want_priority);
            }
            if want_fault != self.instances[i].faulted {
                self.set_fault(i, want_fault);
            }
        }
    }

    fn set_priority(&mut self, i: usize, from: u8, to: u8) {
        let now = self.now();
        let inst = &mut self.instances[i];
        log!(
            "({}) Changing effective priority from {from} to {to}",
            inst.conf.name
        );
        inst.applied_priority = to;
        if let Err(e) = inst.router.set_priority(now, to) {
            log!("({}) priority {to} refused: {e}", inst.conf.name);
        }
        self.drain(i);
    }

    fn set_fault(&mut self, i: usize, fault: bool) {
        if fault {
            let causes = self.fault_texts(i);
            log!(
                "({}) entering FAULT: {}",
                self.instances[i].conf.name,
                causes.join(", ")
            );
        }
        let now = self.now();
        let inst = &mut self.instances[i];
        inst.faulted = fault;
        inst.router.set_fault(now, fault);
        self.drain(i);
    }

    /// Carries out the policy's actions on the routers.
    fn apply_policy(&mut self) {
        while let Some(a) = self.policy.poll_action() {
            match a {
                PolicyAction::SetPriority { instance, from, to } => {
                    self.set_priority(instance.index(), from, to);
                }
                PolicyAction::SetFault { instance, fault } => {
                    self.set_fault(instance.index(), fault);
                }
                _ => {}
            }
        }
    }

    /// Why instance `i` is in FAULT, in words.
    fn fault_texts(&self, i: usize) -> Vec<String> {
        let Some(id) = self.policy.instances().nth(i) else {
            return Vec::new();
        };
        let inst = &self.instances[i];
        self.policy
            .fault_causes(id)
            .into_iter()
            .map(|c| match c {
                FaultCause::Check(name) if name == inst.conf.interface => {
                    format!("interface {name} down")
                }
                FaultCause::Check(name) if self.policy.interface_id(name).is_some() => {
                    format!("tracked interface {name} down")
                }
                FaultCause::Check(name) if self.policy.process_id(name).is_some() => {
                    format!("tracked process {name} without quorum")
                }
                FaultCause::Check(name) => format!("script {name} failed"),
                FaultCause::SyncGroup(g) => format!("sync group {g} member in FAULT"),
                _ => "unknown".into(),
            })
            .collect()
    }

    // ---- the loop ----

    fn run(&mut self, rt: &tokio::runtime::Runtime) -> Result<(), DaemonError> {
        let os = |e: nix::Error| DaemonError::Runtime(e.into());
        let signals = spawn_signals(self.tx.clone())?;
        let mut timer = vrrp_linux::Timer::new(self.epoch).map_err(DaemonError::Runtime)?;
        // Edge-triggered: an expired timer that is not re-armed (no deadline left) is not
        // reported again.
        self.poller
            .add(
                timer.as_fd(),
                EpollEvent::new(EpollFlags::EPOLLIN | EpollFlags::EPOLLET, TOKEN_TIMER),
            )
            .map_err(os)?;
        // The sockets are open and every instance runs: ready.
        notify::ready(&format!("running {} instance(s)", self.instances.len()));
        let period = notify::watchdog_period();
        let mut next_ping = period.map(|p| std::time::Instant::now() + p);
        let mut events = [EpollEvent::empty(); 16];
        'run: loop {
            let deadline = self.next_deadline();
            timer
                .arm(deadline.map(vrrp_proto::Instant::since_epoch))
                .map_err(DaemonError::Runtime)?;
            let timeout = match next_ping {
                Some(t) => {
                    let left = t.saturating_duration_since(std::time::Instant::now());
                    EpollTimeout::try_from(left).unwrap_or(EpollTimeout::MAX)
                }
                None => EpollTimeout::NONE,
            };
            let n = match self.poller.wait(&mut events, timeout) {
                Ok(n) => n,
                Err(nix::errno::Errno::EINTR) => 0,
                Err(e) => return Err(os(e)),
            };
            // Events (signals first among them) before packets: a flood cannot hold off
            // SIGTERM.
            let ready = &events[..n.min(events.len())];
            if ready.iter().any(|e| e.data() == TOKEN_EVENTS) {
                let _ = self.tx.wake.read();
                while let Ok(ev) = self.rx.try_recv() {
                    match ev {
                        Event::Signal(k) if k == SignalKind::terminate() => {
                            log!("Received SIGTERM: releasing mastership and stopping");
                            break 'run;
                        }
                        Event::Signal(k) if k == SignalKind::interrupt() => {
                            log!("Received SIGINT: releasing mastership and stopping");
                            break 'run;
                        }
                        Event::Signal(k) if k == SignalKind::hangup() => rt.block_on(self.reload()),
                        Event::Signal(k) if k == SignalKind::user_defined1() => {
                            rt.block_on(self.dump(false));
                        }
                        Event::Signal(k) if k == SignalKind::user_defined2() => {
                            rt.block_on(self.dump(true));
                        }
                        ev => self.on_event(ev),
                    }
                }
            }
            let mut fired = false;
            for e in ready {
                match e.data() {
                    TOKEN_EVENTS => {}
                    TOKEN_TIMER => {
                        timer.clear();
                        fired = true;
                    }
                    token => self.read_socket(token),
                }
            }
            if let (Some(t), Some(p)) = (next_ping, period)
                && std::time::Instant::now() >= t
            {
                notify::watchdog();
                next_ping = Some(std::time::Instant::now() + p);
            }
            // Timers only need a look when the timerfd fired (armed at the earliest deadline;
            // one already past fires at once); an input that moved a timer earlier is caught
            // by the next deadline computed above.
            if fired && deadline.is_some_and(|d| d <= self.now()) {
                self.on_timers();
            }
        }
        signals.abort();
        notify::stopping();
        self.shutdown_all();
        Ok(())
    }

    /// Reads receive socket `token` until it is drained, at most 64 datagrams (a flooded
    /// socket is reported again by the level-triggered epoll, after the other events).
    fn read_socket(&mut self, token: u64) {
        let key = (u32::try_from(token >> 1).unwrap_or(0), token & 1 == 1);
        for _ in 0..64 {
            let Some(sock) = self.readers.get_mut(&key) else {
                return;
            };
            match sock.recv_drained_into(&mut self.scratch) {
                Ok((got, drained)) => {
                    if got {
                        let rcv = std::mem::take(&mut self.scratch);
                        self.on_packet(key.0, &rcv);
                        self.scratch = rcv;
                    }
                    if drained {
                        return;
                    }
                }
                // Would block, or the link went away: wait for the socket to report more.
                Err(_) => return,
            }
        }
    }

    fn next_deadline(&self) -> Option<vrrp_proto::Instant> {
        self.instances
            .iter()
            .filter_map(|i| i.router.poll_timeout())
            .min()
    }

    fn on_timers(&mut self) {
        let now = self.now();
        for i in 0..self.instances.len() {
            let due = self.instances[i]
                .router
                .poll_timeout()
                .is_some_and(|t| t <= now);
            if due {
                self.instances[i].router.handle_timeout(now);
                self.drain(i);
            }
        }
    }

    fn on_event(&mut self, ev: Event) {
        match ev {
            Event::Script { name, outcome } => self.on_script(&name, outcome),
            Event::Links(links) => self.on_links(links),
            Event::Resync => match self.rtnl.links() {
                Ok(links) => self.on_links(links),
                Err(e) => log!("re-reading links: {e}"),
            },
            Event::Metrics(reply) => {
                let text = report::prometheus(&self.reports(), self.unknown_vrid);
                let _ = reply.send(text);
            }
            Event::Process {
                name,
                have_quorum,
                count,
            } => self.on_process(&name, have_quorum, count),
            // Handled by the run loop itself.
            Event::Signal(_) => {}
            Event::ProcessError(e) => {
                log!("error: track_process stopped, every tracked process is down: {e}");
                let names: Vec<String> = self.process_verdicts.keys().cloned().collect();
                for n in names {
                    self.on_process(&n, false, 0);
                }
            }
        }
    }

    fn on_packet(&mut self, ifindex: u32, rcv: &Received) {
        let now = self.now();
        let meta = RecvMeta::new(rcv.src, rcv.dst, rcv.ttl);
        let mut matched = false;
        for i in 0..self.instances.len() {
            let inst = &mut self.instances[i];
            let here = inst.ifindex == ifindex || inst.xmit_ifindex == ifindex;
            if !here || !inst.router.accepts(&meta, &rcv.payload) {
                continue;
            }
            matched = true;
            if let Err(e) = inst.router.handle_packet(now, meta, &rcv.payload) {
                // Counted by the router; logged at 1, 2, 4, 8, ... so a flood cannot fill
                // the log.
                inst.dropped += 1;
                if inst.dropped.is_power_of_two() {
                    log!(
                        "({}) dropped advert from {}: {e} ({} dropped so far)",
                        inst.conf.name,
                        rcv.src,
                        inst.dropped
                    );
                }
            }
            self.drain(i);
        }
        if !matched {
            self.unknown_vrid += 1;
        }
    }

    fn on_script(&mut self, name: &str, outcome: Outcome) {
        let Some(chk) = self.policy.script_id(name) else {
            return;
        };
        let success = outcome == Outcome::Success;
        let Some(ok) = self.policy.handle_check(chk, success) else {
            return;
        };
        if ok {
            log!("VRRP_Script({name}) succeeded");
        } else {
            let why = match outcome {
                Outcome::Failed(Some(c)) => format!("exited with status {c}"),
                Outcome::Failed(None) => "killed by a signal".into(),
                Outcome::TimedOut => "timed out".into(),
                Outcome::SpawnFailed => "could not be run".into(),
                Outcome::Success => "succeeded".into(),
            };
            log!("VRRP_Script({name}) failed ({why})");
        }
        self.apply_policy();
    }

    fn on_links(&mut self, links: Vec<Link>) {
        for l in links {
            let old = self.links.insert(l.index, l.clone());
            let changed = old
                .as_ref()
                .is_none_or(|o| o.running != l.running || o.up != l.up);
            if !changed {
                continue;
            }
            log!(
                "Netlink reports {} {}",
                l.name,
                if l.up && l.running { "up" } else { "down" }
            );
            if let Some(chk) = self.policy.interface_id(&l.name) {
                self.policy.handle_link(chk, l.up && l.running);
            }
        }
        self.apply_policy();
    }

    /// Drains instance `i`'s actions into the system.
    fn drain(&mut self, i: usize) {
        loop {
            let inst = &mut self.instances[i];
            let Some(action) = inst.router.poll_action() else {
                // The VIPs of a new master are in place: its routes and rules follow.
                if inst.router.state() == State::Master {
                    self.set_routes(i, true);
                }
                return;
            };
            match action {
                Action::StateChanged { from, to, reason } => {
                    let name = inst.conf.name.clone();
                    log!(
                        "({name}) Entering {} STATE ({})",
                        state_name(to),
                        reason_text(reason)
                    );
                    let prio = inst.router.priority();
                    let excluded = inst.excluded.clone();
                    let conf = inst.conf.clone();
                    if to == State::Master {
                        for (a, p, dev) in &excluded {
                            let _ = self.rtnl.add_addr(*dev, *a, *p);
                        }
                    } else if from == State::Master {
                        self.set_routes(i, false);
                        for (a, p, dev) in &excluded {
                            let _ = self.rtnl.del_addr(*dev, *a, *p);
                        }
                    }
                    self.notify(&conf, to, prio);
                    self.mail(&conf, to);
                }
                Action::AddVip(cidr) => {
                    let dev = vip_dev(inst, cidr);
                    let name = inst.conf.name.clone();
                    if let Err(e) = self.rtnl.add_addr(dev, cidr.addr(), cidr.prefix_len()) {
                        log!("({name}) adding VIP {}: {e}", cidr.addr());
                    }
                }
                Action::RemoveVip(cidr) => {
                    // Rules and routes go before the addresses they may use.
                    self.set_routes(i, false);
                    let inst = &mut self.instances[i];
                    let dev = vip_dev(inst, cidr);
                    let name = inst.conf.name.clone();
                    if let Err(e) = self.rtnl.del_addr(dev, cidr.addr(), cidr.prefix_len()) {
                        log!("({name}) removing VIP {}: {e}", cidr.addr());
                    }
                }
                Action::SendAdvert(t) => {
                    let key = (inst.xmit_ifindex, t.src);
                    if let Some(s) = self.senders.get(&key)
                        && let Err(e) = s.send(t.dst, t.payload)
                    {
                        // A cut link makes every send fail: say it once per state.
                        if !inst.faulted {
                            log!("({}) {e}", inst.conf.name);
                        }
                    }
                }
                Action::SendGratuitousArp { frame, .. }
                | Action::SendUnsolicitedNa { frame, .. } => {
                    if let Some(p) = self.packets.get(&inst.xmit_ifindex) {
                        let _ = p.send(frame);
                    }
                }
                _ => {}
            }
        }
    }

    fn notify(&self, conf: &VrrpInstance, to: State, prio: u8) {
        let (specific, word) = match to {
            State::Master => (conf.notify_master.as_deref(), "MASTER"),
            State::Backup => (conf.notify_backup.as_deref(), "BACKUP"),
            State::Fault => (conf.notify_fault.as_deref(), "FAULT"),
            _ => (conf.notify_stop.as_deref(), "STOP"),
        };
        if let Some(cmd) = specific {
            track::notify(cmd, &[]);
        }
        if let Some(cmd) = &conf.notify {
            let p = prio.to_string();
            track::notify(cmd, &["INSTANCE", &conf.name, word, &p]);
        }
        for g in &self.conf.sync_groups {
            if !g.instances.contains(&conf.name) {
                continue;
            }
            let specific = match to {
                State::Master => g.notify_master.as_deref(),
                State::Backup => g.notify_backup.as_deref(),
                State::Fault => g.notify_fault.as_deref(),
                _ => None,
            };
            if let Some(cmd) = specific {
                track::notify(cmd, &[]);
            }
            if let Some(cmd) = &g.notify {
                track::notify(cmd, &["GROUP", &g.name, word, "0"]);
            }
        }
    }

    /// keepalived's `vrrp_smtp_notifier`: the state change is mailed when the instance's
    /// `smtp_alert` resolves true and mail is configured. The mail is sent by its own task,
    /// bounded by `smtp_connect_timeout`: the state change never waits for it.
    fn mail(&self, conf: &VrrpInstance, to: State) {
        let Some(mailer) = &self.mailer else { return };
        if !conf.smtp_alert(&self.conf.global) {
            return;
        }
        let state = match to {
            State::Master => ka_alert::VrrpState::Master,
            State::Backup => ka_alert::VrrpState::Backup,
            State::Fault => ka_alert::VrrpState::Fault,
            _ => return,
        };
        let alert = mailer.vrrp_instance(&conf.name, state);
        let mailer = mailer.clone();
        let name = conf.name.clone();
        tokio::spawn(async move {
            match mailer.send(&alert).await {
                Ok(()) => log!("({name}) SMTP alert sent: {}", alert.subject),
                Err(e) => log!("({name}) SMTP alert not sent: {e}"),
            }
        });
    }

    // ---- reload, dumps, shutdown ----

    /// SIGHUP: re-reads the configuration. On any error the running configuration stays as
    /// it is. Unchanged instances keep running (a master stays master); changed ones are
    /// restarted, removed ones released.
    async fn reload(&mut self) {
        notify::reloading();
        let status = match self.try_reload().await {
            Ok(n) => format!("running {n} instance(s); reload done"),
            Err(e) => format!("reload refused, running configuration kept: {e}"),
        };
        notify::ready(&status);
    }

    /// The reload itself: the number of instances running after it, or why it was refused.
    async fn try_reload(&mut self) -> Result<usize, String> {
        log!("Reloading configuration {}", self.opts.config.display());
        let (conf, warnings) = match keepalived_conf::parse_vrrp(&self.opts.config) {
            Ok(v) => v,
            Err(e) => {
                log!("reload refused, keeping the running configuration: {e}");
                return Err(e.to_string());
            }
        };
        for w in &warnings {
            log!("warning: {w}");
        }
        if let Err(e) = validate(&conf) {
            log!("reload refused, keeping the running configuration: {e}");
            return Err(e.to_string());
        }
        // An instance keeps running (a master stays master) when neither it nor anything it
        // depends on changed.
        let context_same = conf.scripts == self.conf.scripts
            && conf.track_processes == self.conf.track_processes
            && conf.global == self.conf.global
            && conf.sync_groups == self.conf.sync_groups;
        let running: Vec<VrrpInstance> = self.instances.iter().map(|i| i.conf.clone()).collect();
        let plan = plan_reload(&running, &conf.instances, context_same);
        // Build the new and changed instances first: if one fails, nothing changes.
        let mut fresh = Vec::new();
        for &n in &plan.start {
            let Some(inst) = conf.instances.get(n) else {
                continue;
            };
            match self.build(&conf, inst) {
                Ok(b) => fresh.push(b),
                Err(e) => {
                    log!("reload refused, keeping the running configuration: {e}");
                    for b in fresh {
                        self.drop_vmac(&b);
                    }
                    return Err(e.to_string());
                }
            }
        }
        // Release the instances that go away or change.
        let now = self.now();
        let mut keep = Vec::new();
        for (o, mut inst) in std::mem::take(&mut self.instances).into_iter().enumerate() {
            if !plan.stop.contains(&o) {
                keep.push(inst);
            } else {
                log!("({}) stopping for reload", inst.conf.name);
                inst.router.shutdown(now);
                self.instances.push(inst);
                let last = self.instances.len() - 1;
                self.drain(last);
                if let Some(inst) = self.instances.pop() {
                    let fresh_has_vmac = fresh.iter().any(|f| f.vmac == inst.vmac);
                    if !fresh_has_vmac {
                        self.drop_vmac(&inst);
                    }
                }
            }
        }
        self.instances = keep;
        // Static entries: those no longer configured go, the configured ones are (re)added,
        // as keepalived's clear_diff_static_* and start do.
        match self.build_statics(&conf) {
            Ok(new) if new != self.statics => {
                let old = std::mem::take(&mut self.statics);
                let gone = Statics {
                    addrs: old
                        .addrs
                        .into_iter()
                        .filter(|a| !new.addrs.contains(a))
                        .collect(),
                    routes: old
                        .routes
                        .into_iter()
                        .filter(|r| !new.routes.contains(r))
                        .collect(),
                    rules: old
                        .rules
                        .into_iter()
                        .filter(|r| !new.rules.contains(r))
                        .collect(),
                };
                self.remove_statics(&gone, false);
                self.add_statics(&new);
                self.statics = new;
            }
            Ok(_) => {}
            Err(e) => log!("static addresses, routes and rules kept: {e}"),
        }
        // Scripts: restart the runners; the policy keeps the verdicts of unchanged scripts.
        for (_, (_, h)) in self.scripts.drain() {
            h.abort();
        }
        self.mailer = ka_alert::Mailer::new(&conf.global);
        self.watch_processes(process_specs(&conf)).await;
        self.conf = conf;
        self.start_scripts();
        let now = self.now();
        for mut inst in fresh {
            self.remove_stale_vips(&inst);
            inst.router.startup(now);
            self.instances.push(inst);
        }
        self.rebuild_policy();
        for i in 0..self.instances.len() {
            self.drain(i);
        }
        log!("Reload done: {} instance(s)", self.instances.len());
        Ok(self.instances.len())
    }

    fn drop_vmac(&mut self, inst: &Inst) {
        if let Some(idx) = inst.vmac {
            let _ = self.rtnl.del_link(idx);
            self.packets.remove(&idx);
            self.senders.retain(|(i, _), _| *i != idx);
            self.readers.retain(|(i, _), _| *i != idx);
        }
    }

    fn reports(&self) -> Vec<InstanceReport> {
        self.instances
            .iter()
            .enumerate()
            .map(|(k, i)| {
                let cfg = i.router.config();
                InstanceReport {
                    name: i.conf.name.clone(),
                    vrid: cfg.vrid(),
                    version: i.conf.version,
                    interface: i.conf.interface.clone(),
                    state: i.router.state(),
                    base_priority: cfg.priority(),
                    priority: i.router.priority(),
                    master: i.router.master(),
                    advert_int: cfg.advert_interval(),
                    master_down_interval: i.router.master_down_interval(),
                    vips: cfg
                        .vips()
                        .iter()
                        .map(|v| format!("{}/{} dev {}", v.addr(), v.prefix_len(), i.xmit_iface))
                        .collect(),
                    faults: self.fault_texts(k),
                    stats: *i.router.stats(),
                }
            })
            .collect()
    }

    async fn dump(&self, stats: bool) {
        let (path, text) = if stats {
            (&self.opts.stats_file, report::stats(&self.reports()))
        } else {
            (&self.opts.data_file, report::data(&self.reports()))
        };
        match tokio::fs::write(path, text).await {
            Ok(()) => log!("wrote {}", path.display()),
            Err(e) => log!("writing {}: {e}", path.display()),
        }
    }

    /// SIGTERM: every instance sends priority 0 (if master), removes its VIPs, and any VMAC
    /// interface we made goes.
    fn shutdown_all(&mut self) {
        let now = self.now();
        for i in 0..self.instances.len() {
            self.instances[i].router.shutdown(now);
            self.drain(i);
        }
        for inst in std::mem::take(&mut self.instances) {
            for (a, p, dev) in &inst.excluded {
                let _ = self.rtnl.del_addr(*dev, *a, *p);
            }
            self.drop_vmac(&inst);
        }
        let statics = std::mem::take(&mut self.statics);
        self.remove_statics(&statics, false);
        for (_, (_, h)) in self.scripts.drain() {
            h.abort();
        }
        self.readers.clear();
        if let Some(h) = self.watcher.take() {
            h.abort();
        }
        if let Some(h) = self.metrics.take() {
            h.abort();
        }
        log!("Stopped");
    }
}

fn vip_dev(inst: &Inst, cidr: IpCidr) -> u32 {
    inst.router
        .config()
        .vips()
        .iter()
        .position(|v| *v == cidr)
        .and_then(|k| inst.vip_dev.get(k).copied())
        .unwrap_or(inst.xmit_ifindex)
}

fn reason_text(r: Reason) -> &'static str {
    match r {
        Reason::Startup => "init",
        Reason::MasterDown => "master down: no advert for Master_Down_Interval",
        Reason::PriorityZeroReceived => "master released: priority 0 received",
        Reason::Preempted => "preempting a lower-priority master",
        Reason::HigherPriorityReceived => "received advert with higher priority",
        Reason::Shutdown => "shutdown",
        Reason::Fault => "fault",
        Reason::FaultCleared => "fault cleared",
        _ => "other",
    }
}

/// Forwards SIGTERM, SIGINT, SIGHUP, SIGUSR1 and SIGUSR2 to the run loop.
fn spawn_signals(tx: EventTx) -> Result<JoinHandle<()>, DaemonError> {
    let kinds = [
        SignalKind::terminate(),
        SignalKind::interrupt(),
        SignalKind::hangup(),
        SignalKind::user_defined1(),
        SignalKind::user_defined2(),
    ];
    let mut streams = Vec::new();
    for k in kinds {
        streams.push((k, signal(k).map_err(DaemonError::Runtime)?));
    }
    Ok(tokio::spawn(async move {
        loop {
            let k = std::future::poll_fn(|cx| {
                for (k, s) in &mut streams {
                    if let Poll::Ready(Some(())) = s.poll_recv(cx) {
                        return Poll::Ready(*k);
                    }
                }
                Poll::Pending
            })
            .await;
            if tx.send(Event::Signal(k)).is_err() {
                return;
            }
        }
    }))
}

fn spawn_link_watcher(mut w: AsyncLinkWatcher, tx: EventTx) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let ev = match w.events().await {
                Ok(links) => Event::Links(links),
                Err(RtnlError::EventsLost) => Event::Resync,
                Err(e) => {
                    log!("link events: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            if tx.send(ev).is_err() {
                return;
            }
        }
    })
}

fn spawn_metrics(addr: std::net::SocketAddr, tx: EventTx) -> Result<JoinHandle<()>, DaemonError> {
    let std_listener = std::net::TcpListener::bind(addr).map_err(DaemonError::Runtime)?;
    std_listener
        .set_nonblocking(true)
        .map_err(DaemonError::Runtime)?;
    let listener = tokio::net::TcpListener::from_std(std_listener).map_err(DaemonError::Runtime)?;
    log!("metrics on http://{addr}/metrics");
    Ok(tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                continue;
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                // Read the request head (bounded), then answer with the metrics.
                let mut buf = [0u8; 2048];
                let mut got = 0;
                while got < buf.len() {
                    let Some(rest) = buf.get_mut(got..) else {
                        break;
                    };
                    match tokio::time::timeout(
                        Duration::from_secs(5),
                        tokio::io::AsyncReadExt::read(&mut conn, rest),
                    )
                    .await
                    {
                        Ok(Ok(0)) | Err(_) | Ok(Err(_)) => break,
                        Ok(Ok(n)) => got += n,
                    }
                    if buf
                        .get(..got)
                        .is_some_and(|b| b.windows(4).any(|w| w == b"\r\n\r\n"))
                    {
                        break;
                    }
                }
                let (rtx, rrx) = oneshot::channel();
                if tx.send(Event::Metrics(rtx)).is_err() {
                    return;
                }
                let Ok(body) = rrx.await else { return };
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = conn.write_all(head.as_bytes()).await;
                let _ = conn.write_all(body.as_bytes()).await;
                let _ = conn.shutdown().await;
            });
        }
    }))
}
