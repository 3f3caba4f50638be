//! The VRRP part of keepalived.conf: `global_defs`, `vrrp_script`, `vrrp_instance`,
//! `vrrp_sync_group`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use vrrp_proto::Announce;
use vrrp_proto::wire::AddrFamily;

use super::{
    ConfError, Ctx, Node, Options, Pos, SourcePos, Warning, arg, bad_value, block, bool_arg,
    command_arg, int_arg, ip_arg, narrow, out_of_range, parse_tree, parse_tree_str, secs_arg,
};

/// Top-level keywords the LVS layer handles; the VRRP layer skips them silently.
pub(crate) const LVS_TOP: &[&str] = &["virtual_server", "virtual_server_group"];
/// Top-level keywords the VRRP layer handles; the LVS layer skips them silently.
pub(crate) const VRRP_TOP: &[&str] = &[
    "global_defs",
    "vrrp_script",
    "vrrp_track_process",
    "vrrp_instance",
    "vrrp_sync_group",
    "static_ipaddress",
    "static_routes",
    "static_rules",
];
/// keepalived top-level keywords neither layer supports: a warning from the VRRP layer only.
pub(crate) const OTHER_TOP: &[&str] = &[
    "linkbeat_interfaces",
    "vrrp_track_file",
    "track_file",
    "bfd_instance",
    "garp_group",
    "net_namespace",
    "instance",
];

const SECS_1000: Duration = Duration::from_secs(1000);
const SECS_DAY: Duration = Duration::from_secs(86_400);

/// The whole VRRP configuration.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VrrpConf {
    /// `global_defs`.
    pub global: GlobalDefs,
    /// The `vrrp_script` blocks, in file order.
    pub scripts: Vec<VrrpScript>,
    /// The `vrrp_track_process` blocks, in file order (those without `process` are dropped).
    pub track_processes: Vec<VrrpTrackProcess>,
    /// The `vrrp_instance` blocks, in file order.
    pub instances: Vec<VrrpInstance>,
    /// The `vrrp_sync_group` blocks, in file order.
    pub sync_groups: Vec<SyncGroup>,
    /// `static_ipaddress`: addresses installed at start whatever the state, each with its
    /// `dev`.
    pub static_addresses: Vec<Vip>,
    /// `static_routes`: routes installed at start whatever the state.
    pub static_routes: Vec<Route>,
    /// `static_rules`: rules installed at start whatever the state.
    pub static_rules: Vec<Rule>,
}

/// `script_user USER [GROUP]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptUser {
    /// The user scripts run as.
    pub user: String,
    /// The group, if not the user's primary group.
    pub group: Option<String>,
}

/// `global_defs`, with keepalived's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalDefs {
    /// `router_id` (keepalived defaults to the host name).
    pub router_id: Option<String>,
    /// `vrrp_version`: the default version of IPv4 instances (2). IPv6 instances use 3.
    pub vrrp_version: u8,
    /// `vrrp_garp_master_delay` (5 s; 0 disables the second burst).
    pub garp_master_delay: Duration,
    /// `vrrp_garp_master_repeat` (5).
    pub garp_master_repeat: u8,
    /// `vrrp_garp_master_refresh` (0: no refresh).
    pub garp_master_refresh: Duration,
    /// `vrrp_garp_master_refresh_repeat` (1).
    pub garp_master_refresh_repeat: u8,
    /// `vrrp_garp_interval`: spacing of gratuitous ARPs (0).
    pub garp_interval: Duration,
    /// `vrrp_gna_interval`: spacing of unsolicited neighbour advertisements (0).
    pub gna_interval: Duration,
    /// `enable_script_security`.
    pub enable_script_security: bool,
    /// `script_user`.
    pub script_user: Option<ScriptUser>,
    /// `vrrp_strict`: strict RFC compliance; makes `no_accept` the default.
    pub vrrp_strict: bool,
    /// The e-mail alert settings.
    pub smtp: SmtpSettings,
}

/// E-mail alerts: where keepalived sends a mail when an instance changes state (or, for the
/// LVS half, a real server goes up or down).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpSettings {
    /// `notification_email { ... }`: the recipients, every word of the block (none: no mail).
    pub to: Vec<String>,
    /// `notification_email_from` (keepalived: the user it runs as, `@` and the host name).
    pub from: Option<String>,
    /// `smtp_server HOST [PORT]` (none: no mail).
    pub server: Option<SmtpServer>,
    /// `smtp_connect_timeout` in whole seconds (30 s; 0 is read as 1 s, as keepalived does).
    pub connect_timeout: Duration,
    /// `smtp_helo_name` (keepalived: the host name).
    pub helo_name: Option<String>,
    /// `smtp_alert [BOOL]`: the default of every instance and real server.
    pub alert: Option<bool>,
    /// `smtp_alert_vrrp [BOOL]`: the default of VRRP instances, over `smtp_alert`.
    pub alert_vrrp: Option<bool>,
    /// `smtp_alert_checker [BOOL]`: the default of virtual and real servers, over `smtp_alert`.
    pub alert_checker: Option<bool>,
}

impl Default for SmtpSettings {
    fn default() -> Self {
        Self {
            to: Vec::new(),
            from: None,
            server: None,
            connect_timeout: Duration::from_secs(30),
            helo_name: None,
            alert: None,
            alert_vrrp: None,
            alert_checker: None,
        }
    }
}

/// `smtp_server HOST [PORT]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpServer {
    /// An IP address or a host name, as written.
    pub host: String,
    /// The TCP port (25).
    pub port: u16,
}

impl Default for GlobalDefs {
    fn default() -> Self {
        let a = Announce::default();
        Self {
            router_id: None,
            vrrp_version: 2,
            garp_master_delay: a.delay,
            garp_master_repeat: a.repeat,
            garp_master_refresh: a.refresh,
            garp_master_refresh_repeat: a.refresh_repeat,
            garp_interval: a.interval,
            gna_interval: a.interval,
            enable_script_security: false,
            script_user: None,
            vrrp_strict: false,
            smtp: SmtpSettings::default(),
        }
    }
}

/// `vrrp_script NAME { ... }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VrrpScript {
    /// The name `track_script` refers to.
    pub name: String,
    /// Where it was defined.
    pub pos: SourcePos,
    /// `script`: the command line.
    pub script: String,
    /// `interval` between runs (1 s).
    pub interval: Duration,
    /// `timeout` of one run (keepalived: the interval when unset).
    pub timeout: Option<Duration>,
    /// `weight` (-254..=254, 0: the script failing faults the instance).
    pub weight: i32,
    /// `weight N reverse`: the priority moves the other way (keepalived's `reverse`).
    pub weight_reverse: bool,
    /// `rise`: successes before the script counts as up (1).
    pub rise: u32,
    /// `fall`: failures before it counts as down (1).
    pub fall: u32,
    /// `user USER [GROUP]`.
    pub user: Option<ScriptUser>,
}

/// The longest `fork_delay`, `terminate_delay` or `delay` of a `vrrp_track_process` that
/// keepalived 2.2.7 runs as written: 2147.483647 s, the most microseconds a C `int` holds.
///
/// keepalived reads up to 3600 s, but a longer delay than this wraps to a negative number and
/// then never ends (the quorum change it delays is never counted); the reader refuses such a
/// delay rather than run something else. Beyond 3600 s keepalived ignores the line, with a
/// message, and so does the reader.
pub const MAX_PROCESS_DELAY: Duration = Duration::from_micros(i32::MAX as u64);

/// The longest delay keepalived reads (beyond it the line is ignored).
const PROCESS_DELAY_READ_MAX: Duration = Duration::from_secs(3600);

/// How the parameters of a running process are compared with those of
/// [`VrrpTrackProcess::params`] (keepalived's `param_match`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamMatch {
    /// The process has exactly the parameters configured, no more (with none configured: no
    /// parameters at all). Set by `param_match` without a word, and by parameters after
    /// `process` when no `param_match` came before.
    Exact,
    /// `param_match initial`: the configured parameters match the process's first ones, except
    /// that the last configured one need only be the start of the process's parameter.
    Initial,
    /// `param_match partial`: the configured parameters match the process's first ones
    /// exactly; the process may have more.
    Partial,
}

impl ParamMatch {
    /// The word after `param_match` (none for [`ParamMatch::Exact`]).
    pub fn word(self) -> Option<&'static str> {
        match self {
            Self::Exact => None,
            Self::Initial => Some("initial"),
            Self::Partial => Some("partial"),
        }
    }
}

/// `vrrp_track_process NAME { ... }`: a check that counts the running processes of a name.
///
/// Its verdict is the quorum: at least [`quorum`](Self::quorum) and at most
/// [`quorum_max`](Self::quorum_max) matching processes. The defaults are keepalived 2.2.7's
/// (weight 0, quorum 1, no maximum, no delays, matching the process name only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VrrpTrackProcess {
    /// The name `track_process` refers to.
    pub name: String,
    /// Where it was defined.
    pub pos: SourcePos,
    /// `process`: the first word, matched exactly against the process name (`comm`, the
    /// first 15 bytes of the program's file name), or against the first word of the command
    /// line with [`full_command`](Self::full_command). Only the first `process` line counts.
    pub process: String,
    /// The further words of `process`: the parameters, each one word of the command line
    /// (a quoted word may hold spaces). Giving any turns on `full_command` and, without an
    /// earlier `param_match`, [`ParamMatch::Exact`].
    pub params: Vec<String>,
    /// `param_match [initial|partial]`, which also turns on `full_command`; `None`: the
    /// parameters are not compared.
    pub param_match: Option<ParamMatch>,
    /// `weight` (-254..=254, default 0: the quorum being lost faults the instances tracking
    /// it). A positive weight is added to the priority while the quorum holds, a negative one
    /// while it does not. Only the first non-zero `weight` line counts, as in keepalived.
    pub weight: i32,
    /// `weight N reverse`: the weight is applied the other way round (with weight 0: the
    /// instances are faulted while the quorum holds).
    pub weight_reverse: bool,
    /// `quorum`: the fewest matching processes for the check to hold (1; 1..=65535 as written,
    /// 0 only through `quorum_max 0`).
    pub quorum: u32,
    /// `quorum_max`: the most matching processes for the check to hold (0..=65535; `None`,
    /// the default: no maximum). `quorum_max 0` also sets the quorum to 0: the check holds
    /// only while no such process runs.
    pub quorum_max: Option<u32>,
    /// `fork_delay` (or `delay`): how long a quorum gained by a new process must last before
    /// it counts (0; whole microseconds, 1 µs..=[`MAX_PROCESS_DELAY`] as written).
    pub fork_delay: Duration,
    /// `terminate_delay` (or `delay`): how long a quorum lost by a process ending must last
    /// before it counts (0; whole microseconds, 1 µs..=[`MAX_PROCESS_DELAY`] as written).
    pub terminate_delay: Duration,
    /// `full_command`: [`process`](Self::process) and the parameters are matched against the
    /// command line (`/proc/PID/cmdline`) rather than the process name. Also turned on by
    /// parameters and by `param_match`.
    pub full_command: bool,
}

impl VrrpTrackProcess {
    /// The quorum as a range of process counts (`quorum_max` `None` is `u32::MAX`).
    pub fn quorum_range(&self) -> std::ops::RangeInclusive<u32> {
        self.quorum..=self.quorum_max.unwrap_or(u32::MAX)
    }
}

/// `state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InitialState {
    /// `MASTER`.
    Master,
    /// `BACKUP` (the default).
    #[default]
    Backup,
}

/// One virtual address: `ADDR[/PREFIX] [dev IFACE] [brd X] [scope S] [label L]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vip {
    /// The address.
    pub addr: IpAddr,
    /// The prefix length (default /32 or /128).
    pub prefix: u8,
    /// `dev`: the interface, if not the instance's.
    pub dev: Option<String>,
    /// `brd`: the broadcast address.
    pub brd: Option<IpAddr>,
    /// `scope`.
    pub scope: Option<String>,
    /// `label`.
    pub label: Option<String>,
}

/// `track_interface { IFACE [weight N] }` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackIf {
    /// The interface.
    pub name: String,
    /// The weight (0: the interface going down faults the instance).
    pub weight: i32,
}

/// `track_script { NAME [weight N] }` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackScript {
    /// The `vrrp_script` name.
    pub name: String,
    /// A weight overriding the script's.
    pub weight: Option<i32>,
}

/// `track_process { NAME [weight N [reverse|noreverse]] }` entry, in a `vrrp_instance` or a
/// `vrrp_sync_group`.
///
/// keepalived finds the `vrrp_track_process` when it reads the reference: one defined further
/// down the file is not found (the reference is dropped with a warning).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackProcess {
    /// The `vrrp_track_process` name.
    pub name: String,
    /// `weight N`: a weight overriding the process's (`None`: the process's). A value
    /// keepalived cannot read is the process's weight, as keepalived takes it.
    pub weight: Option<i32>,
    /// `reverse` (`Some(true)`) or `noreverse` (`Some(false)`) after the weight, overriding
    /// the process's `reverse` (`None`: the process's). Only read after a weight, and only
    /// written back with one.
    pub reverse: Option<bool>,
}

/// Per-instance gratuitous ARP / NA settings; `None` takes the `global_defs` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GarpSettings {
    /// `garp_master_delay`.
    pub master_delay: Option<Duration>,
    /// `garp_master_repeat`.
    pub master_repeat: Option<u8>,
    /// `garp_master_refresh`.
    pub master_refresh: Option<Duration>,
    /// `garp_master_refresh_repeat`.
    pub master_refresh_repeat: Option<u8>,
    /// `garp_interval` (IPv4 instances).
    pub interval: Option<Duration>,
    /// `gna_interval` (IPv6 instances).
    pub gna_interval: Option<Duration>,
}

/// `vrrp_instance NAME { ... }`, defaults resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VrrpInstance {
    /// The name.
    pub name: String,
    /// Where it was defined (not compared).
    pub pos: SourcePos,
    /// `state` (BACKUP). A sync group whose members are not all MASTER address owners
    /// (priority 255) starts as BACKUP, as in keepalived.
    pub state: InitialState,
    /// `interface`.
    pub interface: String,
    /// `virtual_router_id`.
    pub vrid: u8,
    /// `priority` (100; 255 with `state MASTER`, as in keepalived).
    pub priority: u8,
    /// `advert_int` (1 s): whole seconds for VRRPv2, centiseconds for VRRPv3.
    pub advert_int: Duration,
    /// `version`: the instance's, else 3 for IPv6, else `global_defs.vrrp_version`.
    pub version: u8,
    /// False with `nopreempt`.
    pub preempt: bool,
    /// `preempt_delay` (0).
    pub preempt_delay: Duration,
    /// `authentication { auth_type PASS auth_pass P }`: the password as sent, at most
    /// 8 bytes (keepalived truncates longer ones). Dropped with a warning under VRRPv3.
    pub auth_pass: Option<Vec<u8>>,
    /// `virtual_ipaddress`: all of the instance's family.
    pub vips: Vec<Vip>,
    /// `virtual_ipaddress_excluded`, plus the `virtual_ipaddress` entries of the other family.
    pub excluded_vips: Vec<Vip>,
    /// `mcast_src_ip`.
    pub mcast_src_ip: Option<IpAddr>,
    /// `unicast_src_ip`.
    pub unicast_src_ip: Option<IpAddr>,
    /// `unicast_peer`.
    pub unicast_peers: Vec<IpAddr>,
    /// `track_interface`.
    pub track_interfaces: Vec<TrackIf>,
    /// `track_script`.
    pub track_scripts: Vec<TrackScript>,
    /// `track_process`: each names a `vrrp_track_process` defined above the instance. Kept
    /// with their weights in a sync group without `sync_group_tracking_weight` and on the
    /// address owner too, as keepalived 2.2.7 does (its weight-0 rule for those covers
    /// tracked interfaces and scripts, not processes).
    pub track_processes: Vec<TrackProcess>,
    /// `notify_master`.
    pub notify_master: Option<String>,
    /// `notify_backup`.
    pub notify_backup: Option<String>,
    /// `notify_fault`.
    pub notify_fault: Option<String>,
    /// `notify_stop`.
    pub notify_stop: Option<String>,
    /// `notify`.
    pub notify: Option<String>,
    /// `use_vmac [NAME]`: the macvlan interface name (default `vrrp.<vrid>`).
    pub use_vmac: Option<String>,
    /// `vmac_xmit_base`.
    pub vmac_xmit_base: bool,
    /// `accept` / `no_accept` (accept, unless `vrrp_strict`).
    pub accept: bool,
    /// `garp_*` overrides.
    pub garp: GarpSettings,
    /// `dont_track_primary`.
    pub dont_track_primary: bool,
    /// `smtp_alert [BOOL]`; unset takes `smtp_alert_vrrp`, then `smtp_alert` (see
    /// [`VrrpInstance::smtp_alert`]).
    pub smtp_alert: Option<bool>,
    /// `virtual_routes`: installed after the addresses when the instance becomes MASTER,
    /// removed when it leaves MASTER.
    pub virtual_routes: Vec<Route>,
    /// `virtual_rules`: installed after the routes when the instance becomes MASTER,
    /// removed (before the routes) when it leaves MASTER.
    pub virtual_rules: Vec<Rule>,
}

impl VrrpInstance {
    /// The address family: of the first virtual address, else of the source or first peer
    /// address, else IPv4.
    pub fn family(&self) -> AddrFamily {
        let addr = self
            .vips
            .first()
            .map(|v| v.addr)
            .or(self.unicast_src_ip)
            .or(self.mcast_src_ip)
            .or(self.unicast_peers.first().copied());
        match addr {
            Some(IpAddr::V6(_)) => AddrFamily::Ipv6,
            _ => AddrFamily::Ipv4,
        }
    }

    /// Whether state changes of this instance are mailed: its `smtp_alert`, else
    /// `smtp_alert_vrrp`, else `smtp_alert`, else no.
    pub fn smtp_alert(&self, global: &GlobalDefs) -> bool {
        self.smtp_alert
            .or(global.smtp.alert_vrrp)
            .or(global.smtp.alert)
            .unwrap_or(false)
    }

    /// The announcement settings: the instance's `garp_*` values over the global ones.
    pub fn announce(&self, global: &GlobalDefs) -> Announce {
        let interval = match self.family() {
            AddrFamily::Ipv4 => self.garp.interval.unwrap_or(global.garp_interval),
            AddrFamily::Ipv6 => self.garp.gna_interval.unwrap_or(global.gna_interval),
        };
        Announce {
            repeat: self.garp.master_repeat.unwrap_or(global.garp_master_repeat),
            interval,
            delay: self.garp.master_delay.unwrap_or(global.garp_master_delay),
            refresh: self
                .garp
                .master_refresh
                .unwrap_or(global.garp_master_refresh),
            refresh_repeat: self
                .garp
                .master_refresh_repeat
                .unwrap_or(global.garp_master_refresh_repeat),
        }
    }
}

/// `vrrp_sync_group NAME { group { ... } ... }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncGroup {
    /// The name.
    pub name: String,
    /// Where it was defined (not compared).
    pub pos: SourcePos,
    /// `group`: the instance names.
    pub instances: Vec<String>,
    /// `notify_master`.
    pub notify_master: Option<String>,
    /// `notify_backup`.
    pub notify_backup: Option<String>,
    /// `notify_fault`.
    pub notify_fault: Option<String>,
    /// `notify`.
    pub notify: Option<String>,
    /// `track_script`.
    pub track_scripts: Vec<TrackScript>,
    /// `track_process`: each names a `vrrp_track_process` defined above the group, and is
    /// tracked by every member. Where a member also tracks the process itself with a
    /// non-zero weight, keepalived uses the group's weight instead (keeping the member's
    /// direction). In a group with an address owner (priority 255) a weighted entry gets
    /// weight 0, with a warning, as keepalived does.
    pub track_processes: Vec<TrackProcess>,
    /// `sync_group_tracking_weight` (or the older `global_tracking`): the members keep their
    /// tracking weights. Without it keepalived drops weighted track scripts of the members and
    /// makes their tracked interfaces weight 0 (FAULT when down).
    pub tracking_weight: bool,
}

/// Reads the VRRP configuration of `path` and its includes.
pub fn parse_vrrp(path: &Path) -> Result<(VrrpConf, Vec<Warning>), ConfError> {
    let (nodes, mut warnings) = parse_tree(path, &Options::default())?;
    let (conf, w) = VrrpConf::from_nodes(&nodes)?;
    warnings.extend(w);
    Ok((conf, warnings))
}

/// Parses VRRP configuration text; `name` is used in positions and as the base of includes.
pub fn parse_vrrp_str(
    text: &str,
    name: impl AsRef<Path>,
) -> Result<(VrrpConf, Vec<Warning>), ConfError> {
    let (nodes, mut warnings) = parse_tree_str(text, name, &Options::default())?;
    let (conf, w) = VrrpConf::from_nodes(&nodes)?;
    warnings.extend(w);
    Ok((conf, warnings))
}

/// Fields whose final value depends on other blocks, with the positions to blame.
struct Pending {
    version: Option<(u8, Pos)>,
    accept: Option<bool>,
    advert: Option<(Duration, Pos)>,
    vmac_default: bool,
    has_interface: bool,
    has_vrid: bool,
    auth_pos: Option<Pos>,
    track_pos: Vec<Pos>,
    has_priority: bool,
}

/// The positions of a sync group's instance and script references.
type SyncRefs = (Vec<Pos>, Vec<Pos>);

fn weight_arg(node: &Node, i: usize) -> Result<i32, ConfError> {
    narrow(node, int_arg(node, i, -254, 254)?)
}

fn u8_arg(node: &Node, i: usize, min: i64) -> Result<u8, ConfError> {
    narrow(node, int_arg(node, i, min, 255)?)
}

fn script_user(node: &Node, ctx: &mut Ctx) -> Result<ScriptUser, ConfError> {
    ctx.max_args(node, 2);
    Ok(ScriptUser {
        user: arg(node, 0, "a user name")?.to_string(),
        group: node.args.get(1).cloned(),
    })
}

impl VrrpConf {
    /// Builds the VRRP configuration from a parsed tree; other keywords are warnings.
    pub fn from_nodes(nodes: &[Node]) -> Result<(Self, Vec<Warning>), ConfError> {
        let mut ctx = Ctx::default();
        let mut conf = Self::default();
        let mut pending = Vec::new();
        let mut sync_refs = Vec::new();
        let mut prio = RulePriorities::default();
        for node in nodes {
            match node.keyword.as_str() {
                "global_defs" => global_defs(node, &mut conf.global, &mut ctx)?,
                "static_ipaddress" => {
                    let l = static_addresses(node, &mut ctx);
                    conf.static_addresses.extend(lenient_list(l, &mut ctx)?);
                }
                "static_routes" => {
                    let l = routes_block(node, &mut ctx);
                    conf.static_routes.extend(lenient_list(l, &mut ctx)?);
                }
                "static_rules" => {
                    let l = rules_block(node, &mut prio, &mut ctx);
                    conf.static_rules.extend(lenient_list(l, &mut ctx)?);
                }
                "vrrp_script" => conf.scripts.extend(script(node, &mut ctx)?),
                "vrrp_track_process" => {
                    if let Some(p) = track_process(node, &mut ctx)? {
                        if let Some(first) = conf.track_processes.iter().find(|o| o.name == p.name)
                        {
                            return Err(dup("vrrp_track_process", &p.name, &p.pos, &first.pos));
                        }
                        conf.track_processes.push(p);
                    }
                }
                "vrrp_instance" => {
                    let (inst, p) = instance(node, &conf.track_processes, &mut prio, &mut ctx)?;
                    conf.instances.push(inst);
                    pending.push(p);
                }
                "vrrp_sync_group" => {
                    let (g, refs) = sync_group(node, &conf.track_processes, &mut ctx)?;
                    conf.sync_groups.push(g);
                    sync_refs.push(refs);
                }
                k if LVS_TOP.contains(&k) => {}
                k if OTHER_TOP.contains(&k) => ctx.unsupported(node),
                _ => ctx.unknown(node, "the top level"),
            }
        }
        conf.resolve(pending, &sync_refs, &mut ctx)?;
        Ok((conf, ctx.warnings))
    }

    fn resolve(
        &mut self,
        pending: Vec<Pending>,
        sync_refs: &[SyncRefs],
        ctx: &mut Ctx,
    ) -> Result<(), ConfError> {
        let mut scripts: HashMap<&str, &Pos> = HashMap::new();
        for s in &self.scripts {
            if let Some(first) = scripts.insert(&s.name, &s.pos.0) {
                return Err(dup("vrrp_script", &s.name, &s.pos, first));
            }
        }
        let mut names: HashMap<String, Pos> = HashMap::new();
        let mut vrids: HashMap<(String, u8, bool), (String, Pos)> = HashMap::new();
        for (inst, p) in self.instances.iter_mut().zip(pending) {
            let pos = inst.pos.0.clone();
            if let Some(first) = names.insert(inst.name.clone(), pos.clone()) {
                return Err(dup("vrrp_instance", &inst.name, &pos, &first));
            }
            let missing = |keyword: &str| ConfError::MissingKeyword {
                pos: pos.clone(),
                kind: "vrrp_instance".into(),
                name: inst.name.clone(),
                keyword: keyword.into(),
            };
            if !p.has_interface {
                return Err(missing("interface"));
            }
            if !p.has_vrid {
                return Err(missing("virtual_router_id"));
            }
            // keepalived adds an address listed twice once (the kernel refuses the second),
            // without a word; the advertisement and the engine carry it once too.
            let mut seen = std::collections::HashSet::new();
            inst.vips.retain(|v| seen.insert(v.addr));
            // keepalived keeps one family in virtual_ipaddress and moves the others.
            if let Some(first) = inst.vips.first().map(|v| v.addr.is_ipv6()) {
                let (keep, moved): (Vec<Vip>, Vec<Vip>) = std::mem::take(&mut inst.vips)
                    .into_iter()
                    .partition(|v| v.addr.is_ipv6() == first);
                inst.vips = keep;
                for v in moved {
                    ctx.warn(
                        &pos,
                        format!(
                            "vrrp_instance `{}`: {} is not of the family of the first \
                             virtual address; moved to virtual_ipaddress_excluded",
                            inst.name, v.addr
                        ),
                    );
                    inst.excluded_vips.push(v);
                }
            }
            let v6 = inst.family() == AddrFamily::Ipv6;
            inst.version = match (&p.version, v6) {
                (Some((2, vpos)), true) => {
                    return Err(ConfError::Invalid {
                        pos: vpos.clone(),
                        message: format!(
                            "vrrp_instance `{}` has IPv6 addresses but VRRPv2 is IPv4 only: \
                             use `version 3`",
                            inst.name
                        ),
                    });
                }
                (Some((v, _)), _) => *v,
                (None, true) => 3,
                (None, false) => self.global.vrrp_version,
            };
            if inst.vips.is_empty() {
                // keepalived drops such an instance under VRRPv3, IPv6 or vrrp_strict, and warns
                // otherwise.
                if inst.version == 3 || v6 || self.global.vrrp_strict {
                    return Err(ConfError::Invalid {
                        pos,
                        message: format!(
                            "vrrp_instance `{}` has no virtual_ipaddress: VRRPv3, IPv6 and \
                             vrrp_strict need at least one",
                            inst.name
                        ),
                    });
                }
                ctx.warn(
                    &pos,
                    format!(
                        "vrrp_instance `{}` has no virtual_ipaddress; at least one is sensible",
                        inst.name
                    ),
                );
            }
            let (adv, apos) = p.advert.unwrap_or((Duration::from_secs(1), pos.clone()));
            inst.advert_int = advert_int(adv, &apos, inst.version, ctx);
            if inst.version == 3 && inst.auth_pass.is_some() {
                let apos = p.auth_pos.as_ref().unwrap_or(&pos);
                ctx.warn(
                    apos,
                    "authentication is not part of VRRPv3; ignored (as keepalived does)",
                );
                inst.auth_pass = None;
            }
            // keepalived's default priority is 255 (the address owner's) for `state MASTER`.
            if !p.has_priority && inst.state == InitialState::Master {
                inst.priority = 255;
            }
            inst.accept = p.accept.unwrap_or(!self.global.vrrp_strict);
            if p.vmac_default {
                inst.use_vmac = Some(format!("vrrp.{}", inst.vrid));
            }
            // keepalived drops a reference to a script that does not exist, with a message.
            let mut kept = p.track_pos.iter();
            inst.track_scripts.retain(|t| {
                let tpos = kept.next().unwrap_or(&pos);
                let known = scripts.contains_key(t.name.as_str());
                if !known {
                    ctx.warn(tpos, not_found("vrrp_script", &t.name));
                }
                known
            });
            let key = (inst.interface.clone(), inst.vrid, v6);
            if let Some((other, _)) = vrids.get(&key) {
                return Err(ConfError::Invalid {
                    pos,
                    message: format!(
                        "vrrp_instance `{}` uses interface {}, virtual_router_id {} and IPv{} \
                         like `{other}`: change one virtual_router_id",
                        inst.name,
                        inst.interface,
                        inst.vrid,
                        if v6 { 6 } else { 4 }
                    ),
                });
            }
            vrids.insert(key, (inst.name.clone(), pos));
        }
        for (g, (refs, trefs)) in self.sync_groups.iter_mut().zip(sync_refs) {
            let gpos = g.pos.0.clone();
            let mut at = refs.iter();
            g.instances.retain(|name| {
                let rpos = at.next().unwrap_or(&gpos);
                let known = names.contains_key(name);
                if !known {
                    ctx.warn(rpos, not_found("vrrp_instance", name));
                }
                known
            });
            let mut at = trefs.iter();
            g.track_scripts.retain(|t| {
                let tpos = at.next().unwrap_or(&gpos);
                let known = scripts.contains_key(t.name.as_str());
                if !known {
                    ctx.warn(tpos, not_found("vrrp_script", &t.name));
                }
                known
            });
        }
        // A group left with no instance is removed, as keepalived does.
        self.sync_groups.retain(|g| {
            if g.instances.is_empty() {
                ctx.warn(
                    &g.pos.0,
                    format!(
                        "vrrp_sync_group `{}` has no existing vrrp_instance; removed",
                        g.name
                    ),
                );
            }
            !g.instances.is_empty()
        });
        self.keepalived_tracking_rules(ctx);
        Ok(())
    }

    /// keepalived's rules for tracking, applied when it completes an instance: a sync group
    /// starts as MASTER only if all its members are MASTER address owners; `nopreempt`
    /// does not work with `state MASTER` (cleared); a member of a sync group without
    /// `sync_group_tracking_weight`, or the address owner (priority 255), does not float its
    /// priority: weighted track scripts are dropped and tracked interfaces get weight 0 (the
    /// owner stops tracking weighted interfaces). Tracked processes are kept as written, but
    /// in a sync group with an address owner the group's weighted ones get weight 0.
    fn keepalived_tracking_rules(&mut self, ctx: &mut Ctx) {
        let mut fixed: HashMap<&str, bool> = HashMap::new();
        for g in &self.sync_groups {
            for name in &g.instances {
                fixed.insert(name, !g.tracking_weight);
            }
        }
        let script_weight: HashMap<&str, i32> = self
            .scripts
            .iter()
            .map(|s| (s.name.as_str(), s.weight))
            .collect();
        for inst in &mut self.instances {
            let pos = inst.pos.0.clone();
            if inst.state == InitialState::Master && !inst.preempt {
                ctx.warn(
                    &pos,
                    format!(
                        "({}) nopreempt does not work with state MASTER; cleared, as keepalived \
                         does",
                        inst.name
                    ),
                );
                inst.preempt = true;
            }
            let in_sync = fixed.get(inst.name.as_str()).copied().unwrap_or(false);
            let owner = inst.priority == 255;
            if !in_sync && !owner {
                continue;
            }
            let why = if in_sync {
                "sync group"
            } else {
                "address owner"
            };
            let name = inst.name.clone();
            inst.track_interfaces.retain_mut(|t| {
                if t.weight == 0 {
                    return true;
                }
                ctx.warn(
                    &pos,
                    format!(
                        "({name}) weight of tracked interface {} ignored: {why}",
                        t.name
                    ),
                );
                t.weight = 0;
                in_sync
            });
            inst.track_scripts.retain(|t| {
                let w = t
                    .weight
                    .or_else(|| script_weight.get(t.name.as_str()).copied())
                    .unwrap_or(0);
                if w != 0 {
                    ctx.warn(
                        &pos,
                        format!("({name}) weighted track script {} ignored: {why}", t.name),
                    );
                }
                w == 0
            });
        }
        // keepalived clears the weight of a group's tracked process when a member is the
        // address owner.
        let process_weight: HashMap<&str, i32> = self
            .track_processes
            .iter()
            .map(|p| (p.name.as_str(), p.weight))
            .collect();
        for g in &mut self.sync_groups {
            let owner = self
                .instances
                .iter()
                .any(|i| i.priority == 255 && g.instances.contains(&i.name));
            if !owner {
                continue;
            }
            for t in &mut g.track_processes {
                let w = t
                    .weight
                    .or_else(|| process_weight.get(t.name.as_str()).copied())
                    .unwrap_or(0);
                if w != 0 {
                    ctx.warn(
                        &g.pos.0,
                        format!(
                            "({}) weighted track process {} with a member of priority 255 \
                             (address owner); weight set to 0, as keepalived does",
                            g.name, t.name
                        ),
                    );
                    t.weight = Some(0);
                }
            }
        }
        // A sync group starts as MASTER only if every member is a MASTER address owner;
        // otherwise its MASTER members start as BACKUP (keepalived does this without a word).
        for g in &self.sync_groups {
            let members = || {
                self.instances
                    .iter()
                    .filter(|i| g.instances.contains(&i.name))
            };
            let master = members().any(|i| i.state == InitialState::Master);
            let backup = members().any(|i| i.state == InitialState::Backup || i.priority != 255);
            if master && backup {
                for i in &mut self.instances {
                    if g.instances.contains(&i.name) {
                        i.state = InitialState::Backup;
                    }
                }
            }
        }
    }
}

fn dup(kind: &str, name: &str, pos: &Pos, first: &Pos) -> ConfError {
    ConfError::Duplicate {
        pos: pos.clone(),
        kind: kind.into(),
        name: name.into(),
        first: first.clone(),
    }
}

/// keepalived's words for a reference to nothing, which it drops.
fn not_found(kind: &str, name: &str) -> String {
    format!("{kind} `{name}` is not defined; reference ignored")
}

/// Fits `advert_int` (already within 0.01..=255 s) to the version, as keepalived does:
/// VRRPv2 carries whole seconds, so a fraction is rounded to the nearest second (at least 1);
/// VRRPv3 carries centiseconds up to 40.95 s, so a longer interval becomes 40.95 s and a finer
/// one is rounded. Each change is a warning.
fn advert_int(d: Duration, pos: &Pos, version: u8, ctx: &mut Ctx) -> Duration {
    let (unit_ms, max_ms) = if version == 2 {
        (1000u128, 255_000u128)
    } else {
        (10, 40_950)
    };
    let unit = unit_ms * 1_000_000;
    let nanos = d.as_nanos();
    if nanos > max_ms * 1_000_000 {
        let out = Duration::from_millis(u64::try_from(max_ms).unwrap_or(u64::MAX));
        ctx.warn(
            pos,
            format!(
                "advert_int {} is longer than VRRPv{version} can carry; using {}",
                super::fmt_secs(d),
                super::fmt_secs(out)
            ),
        );
        return out;
    }
    let rounded_units = ((nanos + unit / 2) / unit).max(1);
    let ms = rounded_units.saturating_mul(unit_ms).min(max_ms);
    let out = Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX));
    if out != d {
        ctx.warn(
            pos,
            format!(
                "advert_int {} is not a multiple of {} for VRRPv{version}; using {}",
                super::fmt_secs(d),
                if version == 2 { "1 s" } else { "0.01 s" },
                super::fmt_secs(out)
            ),
        );
    }
    out
}

fn global_defs(node: &Node, g: &mut GlobalDefs, ctx: &mut Ctx) -> Result<(), ConfError> {
    for n in block(node)? {
        // keepalived ignores a line whose value it cannot use, with a message.
        let line = (|| -> Result<(), ConfError> {
            if n.keyword != "notification_email" {
                ctx.no_block(n);
            }
            match n.keyword.as_str() {
                "notification_email" => match &n.children {
                    // Every word of the block is an address, as keepalived reads it.
                    Some(children) if !children.is_empty() => {
                        for c in children {
                            ctx.no_block(c);
                            g.smtp.to.push(c.keyword.clone());
                            g.smtp.to.extend(c.args.iter().cloned());
                        }
                    }
                    _ => ctx.warn(&n.pos, "empty `notification_email` block; ignored"),
                },
                "notification_email_from" => {
                    ctx.max_args(n, 1);
                    g.smtp.from = Some(arg(n, 0, "an e-mail address")?.to_string());
                }
                "smtp_server" => {
                    ctx.max_args(n, 2);
                    let host = arg(n, 0, "an address or host name")?.to_string();
                    let port = match n.args.get(1) {
                        Some(_) => narrow(n, int_arg(n, 1, 1, 65_535)?)?,
                        None => 25,
                    };
                    g.smtp.server = Some(SmtpServer { host, port });
                }
                "smtp_connect_timeout" => {
                    ctx.max_args(n, 1);
                    let secs = int_arg(n, 0, 0, i64::from(u32::MAX / 1_000_000))?;
                    if secs == 0 {
                        ctx.warn(
                            &n.pos,
                            "smtp_connect_timeout must be greater than 0; using 1",
                        );
                    }
                    g.smtp.connect_timeout = Duration::from_secs(secs.max(1).unsigned_abs());
                }
                "smtp_helo_name" => {
                    ctx.max_args(n, 1);
                    g.smtp.helo_name = Some(arg(n, 0, "a host name")?.to_string());
                }
                "smtp_alert" => {
                    if let Some(b) = bool_arg(n, ctx) {
                        g.smtp.alert = Some(b);
                    }
                }
                "smtp_alert_vrrp" => {
                    if let Some(b) = bool_arg(n, ctx) {
                        g.smtp.alert_vrrp = Some(b);
                    }
                }
                "smtp_alert_checker" => {
                    if let Some(b) = bool_arg(n, ctx) {
                        g.smtp.alert_checker = Some(b);
                    }
                }
                "router_id" => {
                    ctx.max_args(n, 1);
                    g.router_id = Some(arg(n, 0, "a name")?.to_string());
                }
                "vrrp_version" => {
                    ctx.max_args(n, 1);
                    g.vrrp_version = narrow(n, int_arg(n, 0, 2, 3)?)?;
                }
                "vrrp_garp_master_delay" => {
                    g.garp_master_delay = secs_arg(n, 0, Duration::ZERO, SECS_1000)?
                }
                "vrrp_garp_master_repeat" => g.garp_master_repeat = u8_arg(n, 0, 1)?,
                "vrrp_garp_master_refresh" => {
                    g.garp_master_refresh = secs_arg(n, 0, Duration::ZERO, SECS_DAY)?;
                }
                "vrrp_garp_master_refresh_repeat" => {
                    g.garp_master_refresh_repeat = u8_arg(n, 0, 1)?
                }
                "vrrp_garp_interval" => {
                    g.garp_interval = secs_arg(n, 0, Duration::ZERO, SECS_1000)?
                }
                "vrrp_gna_interval" => g.gna_interval = secs_arg(n, 0, Duration::ZERO, SECS_1000)?,
                "enable_script_security" => g.enable_script_security = true,
                "script_user" => g.script_user = Some(script_user(n, ctx)?),
                "vrrp_strict" => g.vrrp_strict = true,
                "vrrp_iptables"
                | "vrrp_ipsets"
                | "vrrp_skip_check_adv_addr"
                | "vrrp_check_unicast_src"
                | "vrrp_mcast_group4"
                | "vrrp_mcast_group6"
                | "lvs_id"
                | "lvs_sync_daemon"
                | "max_auto_priority"
                | "vrrp_priority"
                | "checker_priority"
                | "bfd_priority"
                | "vrrp_no_swap"
                | "checker_no_swap"
                | "vrrp_lower_prio_no_advert"
                | "vrrp_higher_prio_send_advert"
                | "dynamic_interfaces"
                | "vrrp_min_garp"
                | "vrrp_garp_lower_prio_delay"
                | "vrrp_garp_lower_prio_repeat"
                | "lvs_timeouts"
                | "lvs_flush"
                | "enable_traps"
                | "enable_snmp_vrrp"
                | "enable_dbus"
                | "script_security" => ctx.unsupported(n),
                _ => ctx.unknown(n, "global_defs"),
            }
            Ok(())
        })();
        ctx.lenient(line)?;
    }
    Ok(())
}

fn script(node: &Node, ctx: &mut Ctx) -> Result<Option<VrrpScript>, ConfError> {
    ctx.max_args(node, 1);
    let name = arg(node, 0, "a script name")?.to_string();
    let mut s = VrrpScript {
        name,
        pos: SourcePos(node.pos.clone()),
        script: String::new(),
        interval: Duration::from_secs(1),
        timeout: None,
        weight: 0,
        weight_reverse: false,
        rise: 1,
        fall: 1,
        user: None,
    };
    let mut has_script = false;
    for n in block(node)? {
        // keepalived ignores a line whose value it cannot use, with a message.
        let line = (|| -> Result<(), ConfError> {
            ctx.no_block(n);
            match n.keyword.as_str() {
                "script" => {
                    s.script = command_arg(n)?;
                    has_script = true;
                }
                "interval" => s.interval = secs_arg(n, 0, Duration::from_millis(1), SECS_DAY)?,
                "timeout" => s.timeout = Some(secs_arg(n, 0, Duration::from_millis(1), SECS_DAY)?),
                "weight" => {
                    s.weight = weight_arg(n, 0)?;
                    s.weight_reverse = false;
                    match n.args.get(1).map(String::as_str) {
                        None => {}
                        Some("reverse") => {
                            s.weight_reverse = true;
                            ctx.max_args(n, 2);
                        }
                        // keepalived keeps the weight and reports the word.
                        Some(other) => ctx.warn(
                            &n.pos,
                            format!("weight: unknown option `{other}` (only `reverse`); ignored"),
                        ),
                    }
                }
                "rise" => s.rise = narrow(n, int_arg(n, 0, 1, i64::from(u32::MAX))?)?,
                "fall" => s.fall = narrow(n, int_arg(n, 0, 1, i64::from(u32::MAX))?)?,
                "user" => s.user = Some(script_user(n, ctx)?),
                "init_fail" => ctx.unsupported(n),
                _ => ctx.unknown(n, "vrrp_script"),
            }
            Ok(())
        })();
        ctx.lenient(line)?;
    }
    if !has_script {
        // keepalived removes it; references to it are then dropped with a warning each.
        ctx.warn(
            &node.pos,
            format!("vrrp_script `{}` has no `script`; removed", s.name),
        );
        return Ok(None);
    }
    Ok(Some(s))
}

/// A delay of a `vrrp_track_process` as keepalived reads it (`read_decimal_unsigned_strvec`
/// with 6 places): decimal seconds, 1 µs..=3600 s. A seventh decimal place rounds to the
/// microsecond (the digit after the sixth place decides, the further ones are not read), with
/// a warning, as keepalived does. A delay over [`MAX_PROCESS_DELAY`] is refused (an
/// [`ConfError::Invalid`], not ignored): keepalived would never end it.
fn process_delay_arg(n: &Node, ctx: &mut Ctx) -> Result<Duration, ConfError> {
    let s = arg(n, 0, "a number of seconds")?;
    let range = || out_of_range(n, s, "0.000001..=3600 seconds");
    let bad = || {
        bad_value(
            n,
            s,
            "a number of seconds (digits, optionally with a decimal point)",
        )
    };
    if s.starts_with('-') {
        return Err(range());
    }
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    let (frac, round_up) = match frac.as_bytes().get(6) {
        Some(&next) => {
            ctx.warn(
                &n.pos,
                format!(
                    "{}: `{s}` has more than 6 decimal places; rounded to the microsecond, as \
                     keepalived does",
                    n.keyword
                ),
            );
            (frac.get(..6).ok_or_else(bad)?, next >= b'5')
        }
        None => (frac, false),
    };
    if !whole
        .bytes()
        .chain(frac.bytes())
        .all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| range())?
    };
    let mut micros = 0u64;
    for k in 0..6 {
        let digit = frac.as_bytes().get(k).map_or(0, |b| u64::from(b - b'0'));
        micros = micros * 10 + digit;
    }
    let total = whole
        .checked_mul(1_000_000)
        .and_then(|w| w.checked_add(micros + u64::from(round_up)))
        .ok_or_else(range)?;
    let d = Duration::from_micros(total);
    if total == 0 || d > PROCESS_DELAY_READ_MAX {
        return Err(range());
    }
    if d > MAX_PROCESS_DELAY {
        return Err(ConfError::Invalid {
            pos: n.pos.clone(),
            message: format!(
                "{} {s}: keepalived 2.2.7 keeps a delay in microseconds in a C int, so one \
                 over 2147.483647 seconds wraps negative and never ends: use at most \
                 2147.483647",
                n.keyword
            ),
        });
    }
    Ok(d)
}

/// `vrrp_track_process NAME { ... }`, with keepalived 2.2.7's defaults and rules; `None` (with
/// a warning) without `process`, as keepalived drops it.
fn track_process(node: &Node, ctx: &mut Ctx) -> Result<Option<VrrpTrackProcess>, ConfError> {
    ctx.max_args(node, 1);
    let name = arg(node, 0, "a track process name")?.to_string();
    let mut p = VrrpTrackProcess {
        name,
        pos: SourcePos(node.pos.clone()),
        process: String::new(),
        params: Vec::new(),
        param_match: None,
        weight: 0,
        weight_reverse: false,
        quorum: 1,
        quorum_max: None,
        fork_delay: Duration::ZERO,
        terminate_delay: Duration::ZERO,
        full_command: false,
    };
    let mut has_process = false;
    for n in block(node)? {
        // keepalived ignores a line whose value it cannot use, with a message.
        let line = (|| -> Result<(), ConfError> {
            ctx.no_block(n);
            let pname = p.name.clone();
            match n.keyword.as_str() {
                "process" => {
                    if has_process {
                        ctx.warn(
                            &n.pos,
                            format!(
                                "vrrp_track_process `{pname}`: process already set; this \
                                 `process` line is ignored, as keepalived does"
                            ),
                        );
                        return Ok(());
                    }
                    p.process = arg(n, 0, "a process name or path")?.to_string();
                    p.params = n.args.get(1..).unwrap_or_default().to_vec();
                    has_process = true;
                    if !p.params.is_empty() {
                        p.param_match.get_or_insert(ParamMatch::Exact);
                        p.full_command = true;
                    }
                }
                "param_match" => {
                    ctx.max_args(n, 1);
                    p.param_match = Some(match n.args.first().map(String::as_str) {
                        None => ParamMatch::Exact,
                        Some("initial") => ParamMatch::Initial,
                        Some("partial") => ParamMatch::Partial,
                        Some(other) => {
                            return Err(bad_value(
                                n,
                                other,
                                "`initial` or `partial` (or nothing, for an exact match)",
                            ));
                        }
                    });
                    p.full_command = true;
                }
                "weight" => {
                    let w = arg(n, 0, "a weight")?;
                    if p.weight != 0 {
                        ctx.warn(
                            &n.pos,
                            format!(
                                "vrrp_track_process `{pname}`: weight already set to {}; \
                                 `{w}` ignored, as keepalived does",
                                p.weight
                            ),
                        );
                        return Ok(());
                    }
                    let w = weight_arg(n, 0)?;
                    match n.args.get(1).map(String::as_str) {
                        None => {}
                        Some("reverse") => {
                            p.weight_reverse = true;
                            ctx.max_args(n, 2);
                        }
                        // keepalived keeps the weight and reports the word.
                        Some(other) => ctx.warn(
                            &n.pos,
                            format!(
                                "vrrp_track_process `{pname}`: unknown weight option \
                                 `{other}` (only `reverse`); ignored"
                            ),
                        ),
                    }
                    p.weight = w;
                }
                "quorum" => {
                    ctx.max_args(n, 1);
                    let q: u32 = narrow(n, int_arg(n, 0, 1, 65_535)?)?;
                    match p.quorum_max {
                        Some(max) if q > max => ctx.warn(
                            &n.pos,
                            format!(
                                "vrrp_track_process `{pname}`: quorum {q} is greater than \
                                 quorum_max {max}; ignored, as keepalived does"
                            ),
                        ),
                        _ => p.quorum = q,
                    }
                }
                "quorum_max" => {
                    ctx.max_args(n, 1);
                    let max: u32 = narrow(n, int_arg(n, 0, 0, 65_535)?)?;
                    // keepalived takes `quorum_max 0` with the default quorum (then 0 too).
                    if (max != 0 || p.quorum > 1) && max < p.quorum {
                        ctx.warn(
                            &n.pos,
                            format!(
                                "vrrp_track_process `{pname}`: quorum_max {max} is less than \
                                 quorum {}; ignored, as keepalived does",
                                p.quorum
                            ),
                        );
                        return Ok(());
                    }
                    p.quorum_max = Some(max);
                    if max == 0 {
                        p.quorum = 0;
                    } else if p.quorum == 0 {
                        p.quorum = 1;
                    }
                }
                "fork_delay" => {
                    ctx.max_args(n, 1);
                    p.fork_delay = process_delay_arg(n, ctx)?;
                }
                "terminate_delay" => {
                    ctx.max_args(n, 1);
                    p.terminate_delay = process_delay_arg(n, ctx)?;
                }
                "delay" => {
                    ctx.max_args(n, 1);
                    let d = process_delay_arg(n, ctx)?;
                    p.fork_delay = d;
                    p.terminate_delay = d;
                }
                "full_command" => p.full_command = true,
                _ => ctx.unknown(n, "vrrp_track_process"),
            }
            Ok(())
        })();
        ctx.lenient(line)?;
    }
    if !has_process {
        // keepalived removes it; references to it are then dropped with a warning each.
        ctx.warn(
            &node.pos,
            format!(
                "vrrp_track_process `{}` has no `process`; removed, as keepalived does",
                p.name
            ),
        );
        return Ok(None);
    }
    Ok(Some(p))
}

/// Reads the `NAME [weight N [reverse|noreverse]]` lines of a `track_process` block of
/// `owner` (an instance or a sync group) into `out`, as keepalived's `alloc_track_process`
/// does: a name not among the `known` processes (those defined above), a name already
/// listed, an unknown option or a weight without a value drop the entry; a bad weight value
/// falls back to the process's weight; an unknown direction word is ignored. Each is a
/// warning.
fn track_process_refs(
    node: &Node,
    owner: &str,
    known: &[VrrpTrackProcess],
    out: &mut Vec<TrackProcess>,
    ctx: &mut Ctx,
) -> Result<(), ConfError> {
    for n in block(node)? {
        ctx.no_block(n);
        let name = n.keyword.as_str();
        let Some(proc) = known.iter().find(|p| p.name == name) else {
            ctx.warn(
                &n.pos,
                format!(
                    "({owner}) vrrp_track_process `{name}` is not defined above this line \
                     (keepalived only finds those defined before the reference); reference \
                     ignored"
                ),
            );
            continue;
        };
        if out.iter().any(|t| t.name == name) {
            ctx.warn(
                &n.pos,
                format!("({owner}) duplicate track_process `{name}`; ignored"),
            );
            continue;
        }
        let mut t = TrackProcess {
            name: name.to_string(),
            weight: None,
            reverse: None,
        };
        match n.args.first().map(String::as_str) {
            None => {}
            Some("weight") => {
                let Some(value) = n.args.get(1) else {
                    ctx.warn(
                        &n.pos,
                        format!(
                            "({owner}) track_process `{name}`: `weight` without a value; \
                             entry ignored"
                        ),
                    );
                    continue;
                };
                t.weight = Some(match weight_arg(n, 1) {
                    Ok(w) => w,
                    Err(_) => {
                        ctx.warn(
                            &n.pos,
                            format!(
                                "({owner}) track_process `{name}`: weight `{value}` is not a \
                                 whole number in -254..=254; the process's weight {} is used",
                                proc.weight
                            ),
                        );
                        proc.weight
                    }
                });
                match n.args.get(2).map(String::as_str) {
                    None => {}
                    Some("reverse") => t.reverse = Some(true),
                    Some("noreverse") => t.reverse = Some(false),
                    Some(other) => ctx.warn(
                        &n.pos,
                        format!(
                            "({owner}) track_process `{name}`: unknown weight option \
                             `{other}` (reverse or noreverse); ignored"
                        ),
                    ),
                }
                ctx.max_args(n, 3);
            }
            Some(other) => {
                ctx.warn(
                    &n.pos,
                    format!(
                        "({owner}) track_process `{name}`: unknown option `{other}` (only \
                         `weight N [reverse|noreverse]`); entry ignored"
                    ),
                );
                continue;
            }
        }
        out.push(t);
    }
    Ok(())
}

/// One `virtual_ipaddress` line.
fn vip(n: &Node, ctx: &mut Ctx) -> Result<Vip, ConfError> {
    ctx.no_block(n);
    let word = n.keyword.as_str();
    let (a, p) = match word.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (word, None),
    };
    let addr: IpAddr = a
        .parse()
        .map_err(|_| bad_value(n, word, "an IP address with an optional /prefix"))?;
    let max: u8 = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match p {
        None => max,
        Some(p) => {
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad_value(n, word, "an IP address with an optional /prefix"));
            }
            match p.parse::<u8>() {
                Ok(v) if v <= max => v,
                _ => return Err(out_of_range(n, p, &format!("a prefix length 0..={max}"))),
            }
        }
    };
    let mut v = Vip {
        addr,
        prefix,
        dev: None,
        brd: None,
        scope: None,
        label: None,
    };
    let mut i = 0;
    while let Some(opt) = n.args.get(i) {
        let value = || -> Result<String, ConfError> {
            n.args
                .get(i + 1)
                .cloned()
                .ok_or_else(|| ConfError::MissingArgument {
                    pos: n.pos.clone(),
                    keyword: opt.clone(),
                    what: "a value".into(),
                })
        };
        match opt.as_str() {
            "dev" => v.dev = Some(value()?),
            "brd" => {
                let s = value()?;
                v.brd = Some(
                    s.parse()
                        .map_err(|_| bad_value(n, &s, "a broadcast address after `brd`"))?,
                );
            }
            "scope" => v.scope = Some(value()?),
            "label" => v.label = Some(value()?),
            "no_track" | "home" | "nodad" | "-nodad" | "noprefixroute" | "autojoin" => {
                ctx.warn(
                    &n.pos,
                    format!("virtual address option `{opt}` is not supported; ignored"),
                );
                i += 1;
                continue;
            }
            "preferred_lft" | "track_group" | "peer" => {
                ctx.warn(
                    &n.pos,
                    format!("virtual address option `{opt}` is not supported; ignored"),
                );
                i += 2;
                continue;
            }
            other => {
                return Err(bad_value(
                    n,
                    other,
                    "a virtual address option (dev, brd, scope, label)",
                ));
            }
        }
        i += 2;
    }
    Ok(v)
}

fn names_block(node: &Node, ctx: &mut Ctx) -> Result<Vec<(String, Pos)>, ConfError> {
    let mut out = Vec::new();
    for n in block(node)? {
        ctx.no_block(n);
        ctx.max_args(n, 0);
        out.push((n.keyword.clone(), n.pos.clone()));
    }
    Ok(out)
}

/// Reads `NAME [weight N] [reverse]` lines.
fn track_scripts(node: &Node, ctx: &mut Ctx) -> Result<Vec<(TrackScript, Pos)>, ConfError> {
    let mut out = Vec::new();
    for n in block(node)? {
        ctx.no_block(n);
        let mut weight = None;
        match n.args.first().map(String::as_str) {
            None => {}
            Some("weight") => {
                weight = Some(weight_arg(n, 1)?);
                ctx.max_args(n, 2);
            }
            Some(other) => return Err(bad_value(n, other, "`weight N`")),
        }
        out.push((
            TrackScript {
                name: n.keyword.clone(),
                weight,
            },
            n.pos.clone(),
        ));
    }
    Ok(out)
}

fn opt_cmd(slot: &mut Option<String>, n: &Node) -> Result<(), ConfError> {
    *slot = Some(command_arg(n)?);
    Ok(())
}

fn instance(
    node: &Node,
    known: &[VrrpTrackProcess],
    prio: &mut RulePriorities,
    ctx: &mut Ctx,
) -> Result<(VrrpInstance, Pending), ConfError> {
    ctx.max_args(node, 1);
    let name = arg(node, 0, "an instance name")?.to_string();
    let mut i = VrrpInstance {
        name,
        pos: SourcePos(node.pos.clone()),
        state: InitialState::Backup,
        interface: String::new(),
        vrid: 0,
        priority: 100,
        advert_int: Duration::from_secs(1),
        version: 2,
        preempt: true,
        preempt_delay: Duration::ZERO,
        auth_pass: None,
        vips: Vec::new(),
        excluded_vips: Vec::new(),
        mcast_src_ip: None,
        unicast_src_ip: None,
        unicast_peers: Vec::new(),
        track_interfaces: Vec::new(),
        track_scripts: Vec::new(),
        track_processes: Vec::new(),
        notify_master: None,
        notify_backup: None,
        notify_fault: None,
        notify_stop: None,
        notify: None,
        use_vmac: None,
        vmac_xmit_base: false,
        accept: true,
        garp: GarpSettings::default(),
        dont_track_primary: false,
        smtp_alert: None,
        virtual_routes: Vec::new(),
        virtual_rules: Vec::new(),
    };
    let mut p = Pending {
        version: None,
        accept: None,
        advert: None,
        vmac_default: false,
        has_interface: false,
        has_vrid: false,
        auth_pos: None,
        track_pos: Vec::new(),
        has_priority: false,
    };
    for n in block(node)? {
        // keepalived ignores a line whose value it cannot use, with a message.
        let line = (|| -> Result<(), ConfError> {
            let blocky = matches!(
                n.keyword.as_str(),
                "authentication"
                    | "virtual_ipaddress"
                    | "virtual_ipaddress_excluded"
                    | "unicast_peer"
                    | "track_interface"
                    | "track_script"
                    | "virtual_routes"
                    | "virtual_rules"
                    | "track_file"
                    | "track_process"
                    | "track_bfd"
            );
            if !blocky {
                ctx.no_block(n);
            }
            match n.keyword.as_str() {
                "state" => {
                    ctx.max_args(n, 1);
                    let s = arg(n, 0, "MASTER or BACKUP")?;
                    // keepalived's words, upper case only; anything else is BACKUP, and a MASTER
                    // is not undone by a later BACKUP.
                    match s {
                        "MASTER" => i.state = InitialState::Master,
                        "BACKUP" if i.state == InitialState::Master => ctx.warn(
                            &n.pos,
                            format!(
                                "({}) state previously set as MASTER; BACKUP ignored",
                                i.name
                            ),
                        ),
                        "BACKUP" => i.state = InitialState::Backup,
                        other => {
                            ctx.warn(
                                &n.pos,
                                format!(
                                    "({}) unknown state `{other}` (MASTER or BACKUP); using BACKUP",
                                    i.name
                                ),
                            );
                            i.state = InitialState::Backup;
                        }
                    }
                }
                "interface" => {
                    ctx.max_args(n, 1);
                    i.interface = arg(n, 0, "an interface name")?.to_string();
                    p.has_interface = true;
                }
                "virtual_router_id" => {
                    ctx.max_args(n, 1);
                    i.vrid = u8_arg(n, 0, 1)?;
                    p.has_vrid = true;
                }
                "priority" => {
                    ctx.max_args(n, 1);
                    i.priority = u8_arg(n, 0, 1)?;
                    p.has_priority = true;
                }
                "advert_int" => {
                    ctx.max_args(n, 1);
                    // keepalived reads 0.01..=255 s and ignores anything else (1 s stays).
                    let d = secs_arg(n, 0, Duration::from_millis(10), Duration::from_secs(255))?;
                    p.advert = Some((d, n.pos.clone()));
                }
                "version" => {
                    ctx.max_args(n, 1);
                    let v = int_arg(n, 0, 2, 3)?;
                    p.version = Some((narrow(n, v)?, n.pos.clone()));
                }
                "nopreempt" => i.preempt = false,
                "preempt" => i.preempt = true,
                "preempt_delay" => {
                    i.preempt_delay =
                        secs_arg(n, 0, Duration::ZERO, vrrp_proto::MAX_PREEMPT_DELAY)?;
                }
                "authentication" => {
                    i.auth_pass = authentication(n, ctx)?;
                    p.auth_pos = Some(n.pos.clone());
                }
                "virtual_ipaddress" => {
                    for v in block(n)? {
                        // keepalived skips an address it cannot read and keeps the others.
                        match vip(v, ctx) {
                            Ok(v) => i.vips.push(v),
                            Err(e) => ctx.lenient(Err(e))?,
                        }
                    }
                }
                "virtual_ipaddress_excluded" => {
                    for v in block(n)? {
                        match vip(v, ctx) {
                            Ok(v) => i.excluded_vips.push(v),
                            Err(e) => ctx.lenient(Err(e))?,
                        }
                    }
                }
                "mcast_src_ip" => {
                    ctx.max_args(n, 1);
                    i.mcast_src_ip = Some(ip_arg(n, 0)?);
                }
                "unicast_src_ip" => {
                    ctx.max_args(n, 1);
                    i.unicast_src_ip = Some(ip_arg(n, 0)?);
                }
                "unicast_peer" => {
                    for a in block(n)? {
                        ctx.no_block(a);
                        if !a.args.is_empty() {
                            ctx.warn(&a.pos, "unicast_peer options are not supported; ignored");
                        }
                        match a.keyword.parse() {
                            Ok(ip) => i.unicast_peers.push(ip),
                            Err(_) => ctx.lenient(Err(bad_value(
                                a,
                                &a.keyword,
                                "an IPv4 or IPv6 address",
                            )))?,
                        }
                    }
                }
                "track_interface" => {
                    for a in block(n)? {
                        ctx.no_block(a);
                        let weight = match a.args.first().map(String::as_str) {
                            None => Ok(0),
                            Some("weight") => {
                                ctx.max_args(a, 2);
                                weight_arg(a, 1)
                            }
                            Some(other) => Err(bad_value(a, other, "`weight N`")),
                        };
                        // keepalived skips an entry it cannot read and keeps the others.
                        match weight {
                            Ok(weight) => i.track_interfaces.push(TrackIf {
                                name: a.keyword.clone(),
                                weight,
                            }),
                            Err(e) => ctx.lenient(Err(e))?,
                        }
                    }
                }
                "track_script" => {
                    for (t, tpos) in track_scripts(n, ctx)? {
                        i.track_scripts.push(t);
                        p.track_pos.push(tpos);
                    }
                }
                "track_process" => {
                    track_process_refs(n, &i.name, known, &mut i.track_processes, ctx)?;
                }
                "notify_master" => opt_cmd(&mut i.notify_master, n)?,
                "notify_backup" => opt_cmd(&mut i.notify_backup, n)?,
                "notify_fault" => opt_cmd(&mut i.notify_fault, n)?,
                "notify_stop" => opt_cmd(&mut i.notify_stop, n)?,
                "notify" => opt_cmd(&mut i.notify, n)?,
                "use_vmac" => {
                    ctx.max_args(n, 1);
                    match n.args.first() {
                        Some(name) => {
                            i.use_vmac = Some(name.clone());
                            p.vmac_default = false;
                        }
                        None => p.vmac_default = true,
                    }
                }
                "vmac_xmit_base" => i.vmac_xmit_base = true,
                "accept" => p.accept = Some(true),
                "no_accept" => p.accept = Some(false),
                "garp_master_delay" => {
                    i.garp.master_delay = Some(secs_arg(n, 0, Duration::ZERO, SECS_1000)?);
                }
                "garp_master_repeat" => i.garp.master_repeat = Some(u8_arg(n, 0, 1)?),
                "garp_master_refresh" => {
                    i.garp.master_refresh = Some(secs_arg(n, 0, Duration::ZERO, SECS_DAY)?);
                }
                "garp_master_refresh_repeat" => {
                    i.garp.master_refresh_repeat = Some(u8_arg(n, 0, 1)?);
                }
                "garp_interval" => {
                    i.garp.interval = Some(secs_arg(n, 0, Duration::ZERO, SECS_1000)?);
                }
                "gna_interval" => {
                    i.garp.gna_interval = Some(secs_arg(n, 0, Duration::ZERO, SECS_1000)?);
                }
                "dont_track_primary" => i.dont_track_primary = true,
                "smtp_alert" => {
                    if let Some(b) = bool_arg(n, ctx) {
                        i.smtp_alert = Some(b);
                    }
                }
                "virtual_routes" => i.virtual_routes.extend(routes_block(n, ctx)?),
                "virtual_rules" => i.virtual_rules.extend(rules_block(n, prio, ctx)?),
                "track_file"
                | "track_bfd"
                | "debug"
                | "lvs_sync_daemon_interface"
                | "garp_lower_prio_delay"
                | "garp_lower_prio_repeat"
                | "lower_prio_no_advert"
                | "higher_prio_send_advert"
                | "strict_mode"
                | "check_unicast_src"
                | "native_ipv6"
                | "kernel_rx_buf_size"
                | "mcast_dst_ip" => ctx.unsupported(n),
                _ => ctx.unknown(n, "vrrp_instance"),
            }
            Ok(())
        })();
        ctx.lenient(line)?;
    }
    Ok((i, p))
}

fn sync_group(
    node: &Node,
    known: &[VrrpTrackProcess],
    ctx: &mut Ctx,
) -> Result<(SyncGroup, SyncRefs), ConfError> {
    ctx.max_args(node, 1);
    let mut g = SyncGroup {
        name: arg(node, 0, "a group name")?.to_string(),
        pos: SourcePos(node.pos.clone()),
        instances: Vec::new(),
        notify_master: None,
        notify_backup: None,
        notify_fault: None,
        notify: None,
        track_scripts: Vec::new(),
        track_processes: Vec::new(),
        tracking_weight: false,
    };
    let mut refs = Vec::new();
    let mut track_refs = Vec::new();
    for n in block(node)? {
        // keepalived ignores a line whose value it cannot use, with a message.
        let line = (|| -> Result<(), ConfError> {
            if !matches!(
                n.keyword.as_str(),
                "group" | "track_script" | "track_process" | "track_interface"
            ) {
                ctx.no_block(n);
            }
            match n.keyword.as_str() {
                "group" => {
                    for (name, pos) in names_block(n, ctx)? {
                        g.instances.push(name);
                        refs.push(pos);
                    }
                }
                "notify_master" => opt_cmd(&mut g.notify_master, n)?,
                "notify_backup" => opt_cmd(&mut g.notify_backup, n)?,
                "notify_fault" => opt_cmd(&mut g.notify_fault, n)?,
                "notify" => opt_cmd(&mut g.notify, n)?,
                "track_script" => {
                    for (t, tpos) in track_scripts(n, ctx)? {
                        g.track_scripts.push(t);
                        track_refs.push(tpos);
                    }
                }
                "track_process" => {
                    track_process_refs(n, &g.name, known, &mut g.track_processes, ctx)?;
                }
                "sync_group_tracking_weight" | "global_tracking" => g.tracking_weight = true,
                "smtp_alert" | "notify_stop" | "track_interface" => ctx.unsupported(n),
                _ => ctx.unknown(n, "vrrp_sync_group"),
            }
            Ok(())
        })();
        ctx.lenient(line)?;
    }
    // A group with no instance is removed (with a warning) once the references are resolved.
    Ok((g, (refs, track_refs)))
}

/// `authentication { auth_type PASS auth_pass P }`: the password bytes as sent.
fn authentication(n: &Node, ctx: &mut Ctx) -> Result<Option<Vec<u8>>, ConfError> {
    let mut kind_seen = false;
    let mut pass = None;
    for a in block(n)? {
        ctx.no_block(a);
        match a.keyword.as_str() {
            "auth_type" => {
                ctx.max_args(a, 1);
                let t = arg(a, 0, "PASS")?;
                if t.eq_ignore_ascii_case("AH") {
                    return Err(ConfError::Invalid {
                        pos: a.pos.clone(),
                        message: "auth_type AH is not supported (keepalived deprecated it): \
                                  use PASS or remove the authentication block"
                            .into(),
                    });
                }
                if !t.eq_ignore_ascii_case("PASS") {
                    return Err(bad_value(a, t, "PASS"));
                }
                kind_seen = true;
            }
            "auth_pass" => {
                ctx.max_args(a, 1);
                let s = arg(a, 0, "a password")?;
                let bytes = s.as_bytes();
                if bytes.len() > 8 {
                    if !s.is_char_boundary(8) {
                        return Err(ConfError::Invalid {
                            pos: a.pos.clone(),
                            message: "auth_pass is cut to its first 8 bytes, which splits a \
                                      character here: use a password of at most 8 bytes"
                                .into(),
                        });
                    }
                    ctx.warn(
                        &a.pos,
                        "auth_pass is longer than 8 bytes; only the first 8 are used, as \
                         keepalived does",
                    );
                }
                pass = Some(bytes.iter().take(8).copied().collect());
            }
            _ => ctx.unknown(a, "authentication"),
        }
    }
    // keepalived ignores an authentication block it cannot use, with a message.
    let missing = if !kind_seen {
        "auth_type"
    } else if pass.is_none() {
        "auth_pass"
    } else {
        return Ok(pass);
    };
    ctx.warn(
        &n.pos,
        format!("authentication has no `{missing}`; the block is ignored"),
    );
    Ok(None)
}

// ---------------------------------------------------------------------------------------------
// Routes and rules: `virtual_routes`, `virtual_rules`, `static_routes`, `static_rules`

/// keepalived's routing protocol number (`RTPROT_KEEPALIVED`), given to the routes and rules
/// it tracks.
pub const RTPROT_KEEPALIVED: u8 = 18;
/// The `main` routing table.
pub const RT_TABLE_MAIN: u32 = 254;
/// The first priority keepalived gives a rule written without one (then one less for each
/// further rule of the same family).
pub const RULE_START_PRIORITY: u32 = 16384;

/// An address prefix: `ADDR[/LEN]`, or `default` (length 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpPrefix {
    /// The address.
    pub addr: IpAddr,
    /// The prefix length (0..=32 or 0..=128).
    pub len: u8,
}

impl std::fmt::Display for IpPrefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// The type of a route: what the kernel does with a packet that matches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum RouteKind {
    /// Forwarded (the default).
    #[default]
    Unicast,
    /// `blackhole`: dropped silently.
    Blackhole,
    /// `unreachable`: dropped with ICMP unreachable.
    Unreachable,
    /// `prohibit`: dropped with ICMP administratively prohibited.
    Prohibit,
}

impl RouteKind {
    /// keepalived's (and iproute2's) word.
    pub fn word(self) -> &'static str {
        match self {
            Self::Unicast => "unicast",
            Self::Blackhole => "blackhole",
            Self::Unreachable => "unreachable",
            Self::Prohibit => "prohibit",
        }
    }
}

/// One route of `virtual_routes` or `static_routes`:
/// `[src ADDR] [to] [TYPE] PREFIX [via|gw ADDR] [dev IFACE] [scope S] [table T]
/// [metric|priority|preference N] [protocol P] [no_track]`.
///
/// Unlike a virtual address, a route has no default interface: keepalived installs it
/// without `dev` unless one is written (the kernel then picks the interface of the gateway).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Route {
    /// The type (unicast unless `blackhole`, `unreachable` or `prohibit` is written).
    pub kind: RouteKind,
    /// The destination.
    pub dst: IpPrefix,
    /// `src`: the preferred source address of packets the host sends along the route.
    pub src: Option<IpAddr>,
    /// `via` (or the deprecated `gw`): the gateway.
    pub via: Option<IpAddr>,
    /// `dev` (or `oif`): the outgoing interface.
    pub dev: Option<String>,
    /// `scope`, as a number (`global` 0, `site` 200, `link` 253, `host` 254).
    pub scope: Option<u8>,
    /// `table` (254, `main`).
    pub table: u32,
    /// `metric` (also `priority`, `preference`).
    pub metric: Option<u32>,
    /// `protocol`, as written; see [`Route::protocol`].
    pub protocol: Option<u8>,
    /// `no_track`.
    pub no_track: bool,
}

impl Route {
    /// The address family of the route.
    pub fn family(&self) -> AddrFamily {
        if self.dst.addr.is_ipv6() {
            AddrFamily::Ipv6
        } else {
            AddrFamily::Ipv4
        }
    }

    /// The protocol the route is installed with: keepalived's (18) unless the route is
    /// `no_track` and names another, as keepalived 2.2.7 does.
    pub fn protocol(&self) -> u8 {
        match (self.no_track, self.protocol) {
            (true, Some(p)) => p,
            _ => RTPROT_KEEPALIVED,
        }
    }
}

/// What a rule does with a packet that matches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RuleAction {
    /// `table T` (or `lookup T`): look the packet up in table T.
    Table(u32),
    /// `blackhole`: drop it.
    Blackhole,
    /// `unreachable`: refuse it with ICMP unreachable.
    Unreachable,
    /// `prohibit`: refuse it with ICMP administratively prohibited.
    Prohibit,
}

/// One rule of `virtual_rules` or `static_rules`:
/// `[inet|inet6] [not] [from PREFIX] [to PREFIX] [iif|dev IF] [oif IF] [fwmark N[/M]]
/// [preference|priority|order N] [protocol P] (table T | lookup T | blackhole |
/// unreachable | prohibit) [no_track]`.
///
/// keepalived requires an action; a rule without a priority gets one from 16384 down
/// (per family, in file order), with a warning.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Rule {
    /// The family: of `from`/`to`, else `inet6`, else IPv4.
    pub family: AddrFamily,
    /// `not`: the selector is inverted.
    pub invert: bool,
    /// `from`: the source prefix.
    pub from: Option<IpPrefix>,
    /// `to`: the destination prefix.
    pub to: Option<IpPrefix>,
    /// `iif` (or `dev`): the incoming interface.
    pub iif: Option<String>,
    /// `oif`: the outgoing interface.
    pub oif: Option<String>,
    /// `fwmark N[/MASK]`.
    pub fwmark: Option<(u32, Option<u32>)>,
    /// `preference` (also `priority`, `order`), resolved as keepalived does.
    pub priority: u32,
    /// The action.
    pub action: RuleAction,
    /// `protocol`, as written; see [`Rule::protocol`].
    pub protocol: Option<u8>,
    /// `no_track`.
    pub no_track: bool,
}

impl Rule {
    /// The protocol the rule is installed with: keepalived's (18) unless the rule is
    /// `no_track`, then the one written (none when none is).
    pub fn protocol(&self) -> Option<u8> {
        if self.no_track {
            self.protocol
        } else {
            Some(RTPROT_KEEPALIVED)
        }
    }
}

/// The next automatic rule priority of each family, shared by every rule of a file.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RulePriorities {
    v4: u32,
    v6: u32,
}

impl Default for RulePriorities {
    fn default() -> Self {
        Self {
            v4: RULE_START_PRIORITY,
            v6: RULE_START_PRIORITY,
        }
    }
}

fn parse_prefix(s: &str) -> Option<(Option<IpAddr>, u8)> {
    if matches!(s, "default" | "any" | "all") {
        return Some((None, 0));
    }
    let (a, p) = match s.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (s, None),
    };
    let addr: IpAddr = a.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len = match p {
        None => max,
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
            p.parse::<u8>().ok().filter(|&l| l <= max)?
        }
        Some(_) => return None,
    };
    Some((Some(addr), len))
}

fn fam_of(a: IpAddr) -> AddrFamily {
    if a.is_ipv6() {
        AddrFamily::Ipv6
    } else {
        AddrFamily::Ipv4
    }
}

fn set_family(fam: &mut Option<AddrFamily>, f: AddrFamily) -> Result<(), String> {
    match *fam {
        None => {
            *fam = Some(f);
            Ok(())
        }
        Some(x) if x == f => Ok(()),
        Some(_) => Err("mixes IPv4 and IPv6".into()),
    }
}

fn resolve_prefix(p: (Option<IpAddr>, u8), fam: AddrFamily) -> IpPrefix {
    let addr = p.0.unwrap_or(match fam {
        AddrFamily::Ipv4 => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        AddrFamily::Ipv6 => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
    });
    IpPrefix { addr, len: p.1 }
}

fn table_word(s: &str) -> Option<u32> {
    match s {
        "main" => Some(RT_TABLE_MAIN),
        "local" => Some(255),
        "default" => Some(253),
        _ => num_word(s),
    }
}

/// A number as keepalived's `strtoul(…, 0)` reads it: decimal, `0x` hex or leading-0 octal.
fn num_word(s: &str) -> Option<u32> {
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u32::from_str_radix(h, 16).ok()
    } else if s.len() > 1 && s.starts_with('0') {
        u32::from_str_radix(&s[1..], 8).ok()
    } else if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

fn u8_word(s: &str) -> Option<u8> {
    num_word(s).and_then(|v| u8::try_from(v).ok())
}

fn scope_word(s: &str) -> Option<u8> {
    match s {
        "global" | "universe" => Some(0),
        "site" => Some(200),
        "link" => Some(253),
        "host" => Some(254),
        "nowhere" => Some(255),
        _ => u8_word(s),
    }
}

fn proto_word(s: &str) -> Option<u8> {
    match s {
        "none" => Some(0),
        "redirect" => Some(1),
        "kernel" => Some(2),
        "boot" => Some(3),
        "static" => Some(4),
        "keepalived" => Some(RTPROT_KEEPALIVED),
        "ra" => Some(9),
        "dhcp" => Some(16),
        _ => u8_word(s),
    }
}

/// Route options keepalived reads that vrrpd does not install.
const ROUTE_UNSUPPORTED: &[&str] = &[
    "as",
    "from",
    "tos",
    "dsfield",
    "onlink",
    "encap",
    "expires",
    "mtu",
    "hoplimit",
    "advmss",
    "rtt",
    "rttvar",
    "reordering",
    "window",
    "cwnd",
    "ssthresh",
    "realms",
    "rto_min",
    "initcwnd",
    "initrwnd",
    "features",
    "quickack",
    "congctl",
    "pref",
    "ttl-propagate",
    "fastopen_no_cookie",
    "add",
    "append",
    "or",
    "nexthop",
    "track_group",
    "vrf",
    "local",
    "nat",
    "broadcast",
    "brd",
    "anycast",
    "multicast",
    "xresolve",
    "throw",
];

/// Reads one route line; an error is the reason it is ignored.
fn route_words(words: &[&str], ctx: &mut Ctx, pos: &Pos) -> Result<Route, String> {
    let mut fam: Option<AddrFamily> = None;
    let mut kind = RouteKind::Unicast;
    let mut dst = None;
    let mut r = Route {
        kind,
        dst: resolve_prefix((None, 0), AddrFamily::Ipv4),
        src: None,
        via: None,
        dev: None,
        scope: None,
        table: RT_TABLE_MAIN,
        metric: None,
        protocol: None,
        no_track: false,
    };
    let mut i = 0;
    while let Some(&w) = words.get(i) {
        let value = |i: usize| -> Result<&str, String> {
            words
                .get(i + 1)
                .copied()
                .ok_or_else(|| format!("`{w}` needs a value"))
        };
        match w {
            "inet" => set_family(&mut fam, AddrFamily::Ipv4)?,
            "inet6" => set_family(&mut fam, AddrFamily::Ipv6)?,
            "src" => {
                let v = value(i)?;
                let a: IpAddr = v.parse().map_err(|_| format!("invalid src address {v}"))?;
                set_family(&mut fam, fam_of(a))?;
                r.src = Some(a);
                i += 1;
            }
            "via" | "gw" => {
                if w == "gw" {
                    ctx.warn(pos, "\"gw\" for routes is deprecated. Please use \"via\"");
                }
                let mut v = value(i)?;
                if matches!(v, "inet" | "inet6") {
                    i += 1;
                    v = value(i)?;
                }
                let a: IpAddr = v.parse().map_err(|_| format!("invalid via address {v}"))?;
                set_family(&mut fam, fam_of(a))?;
                r.via = Some(a);
                i += 1;
            }
            "dev" | "oif" => {
                r.dev = Some(value(i)?.to_string());
                i += 1;
            }
            "scope" => {
                let v = value(i)?;
                r.scope = Some(scope_word(v).ok_or_else(|| format!("invalid scope {v}"))?);
                i += 1;
            }
            "table" => {
                let v = value(i)?;
                r.table = table_word(v).ok_or_else(|| format!("routing table {v} not found"))?;
                i += 1;
            }
            "protocol" => {
                let v = value(i)?;
                r.protocol = Some(proto_word(v).ok_or_else(|| format!("invalid protocol {v}"))?);
                i += 1;
            }
            "metric" | "priority" | "preference" => {
                let v = value(i)?;
                r.metric = Some(num_word(v).ok_or_else(|| format!("invalid metric {v}"))?);
                i += 1;
            }
            "no_track" => r.no_track = true,
            "prepend" => {}
            w if ROUTE_UNSUPPORTED.contains(&w) => {
                return Err(format!("route option `{w}` is not supported"));
            }
            _ => {
                let mut w = w;
                if w == "to" {
                    i += 1;
                    w = value(i - 1)?;
                }
                let k = match w {
                    "unicast" => Some(RouteKind::Unicast),
                    "blackhole" => Some(RouteKind::Blackhole),
                    "unreachable" => Some(RouteKind::Unreachable),
                    "prohibit" => Some(RouteKind::Prohibit),
                    _ => None,
                };
                if let Some(k) = k {
                    kind = k;
                    i += 1;
                    w = value(i - 1)?;
                }
                let p = parse_prefix(w).ok_or_else(|| format!("unknown route keyword {w}"))?;
                if let Some(a) = p.0 {
                    set_family(&mut fam, fam_of(a))?;
                }
                dst = Some(p);
            }
        }
        i += 1;
    }
    let dst = dst.ok_or("a route must have a destination")?;
    if !r.no_track
        && let Some(p) = r.protocol.filter(|&p| p != RTPROT_KEEPALIVED)
    {
        ctx.warn(
            pos,
            format!(
                "route protocol {p}: a tracked route has protocol {RTPROT_KEEPALIVED} \
                 (keepalived); add `no_track` to keep it"
            ),
        );
    }
    let fam = fam.unwrap_or(AddrFamily::Ipv4);
    r.kind = kind;
    r.dst = resolve_prefix(dst, fam);
    Ok(r)
}

/// Reads one rule line; an error is the reason it is ignored.
fn rule_words(
    words: &[&str],
    prio: &mut RulePriorities,
    ctx: &mut Ctx,
    pos: &Pos,
) -> Result<Rule, String> {
    let mut fam: Option<AddrFamily> = None;
    let mut from = None;
    let mut to = None;
    let mut action = None;
    let mut priority = None;
    let mut r = Rule {
        family: AddrFamily::Ipv4,
        invert: false,
        from: None,
        to: None,
        iif: None,
        oif: None,
        fwmark: None,
        priority: 0,
        action: RuleAction::Blackhole,
        protocol: None,
        no_track: false,
    };
    let mut i = 0;
    while let Some(&w) = words.get(i) {
        let value = |i: usize| -> Result<&str, String> {
            words
                .get(i + 1)
                .copied()
                .ok_or_else(|| format!("`{w}` needs a value"))
        };
        let mut set_action = |a: RuleAction| -> Result<(), String> {
            if action.replace(a).is_some() {
                return Err("more than one of table/blackhole/prohibit/unreachable".into());
            }
            Ok(())
        };
        match w {
            "inet" => set_family(&mut fam, AddrFamily::Ipv4)?,
            "inet6" => set_family(&mut fam, AddrFamily::Ipv6)?,
            "from" | "to" => {
                let v = value(i)?;
                let p = parse_prefix(v).ok_or_else(|| format!("invalid rule {w} address {v}"))?;
                if let Some(a) = p.0 {
                    set_family(&mut fam, fam_of(a))?;
                }
                if w == "from" {
                    from = Some(p);
                } else {
                    to = Some(p);
                }
                i += 1;
            }
            "table" | "lookup" => {
                let v = value(i)?;
                let t = table_word(v).ok_or_else(|| format!("routing table {v} not found"))?;
                if t == 0 {
                    return Err("table 0 is not valid".into());
                }
                set_action(RuleAction::Table(t))?;
                i += 1;
            }
            "blackhole" => set_action(RuleAction::Blackhole)?,
            "unreachable" => set_action(RuleAction::Unreachable)?,
            "prohibit" => set_action(RuleAction::Prohibit)?,
            "not" => r.invert = true,
            "preference" | "priority" | "order" => {
                let v = value(i)?;
                priority = Some(num_word(v).ok_or_else(|| format!("invalid preference {v}"))?);
                i += 1;
            }
            "fwmark" => {
                let v = value(i)?;
                let bad = || format!("invalid fwmark {v}");
                let (m, mask) = match v.split_once('/') {
                    Some((m, k)) => (m, Some(num_word(k).ok_or_else(bad)?)),
                    None => (v, None),
                };
                r.fwmark = Some((num_word(m).ok_or_else(bad)?, mask));
                i += 1;
            }
            "dev" | "iif" => {
                r.iif = Some(value(i)?.to_string());
                i += 1;
            }
            "oif" => {
                r.oif = Some(value(i)?.to_string());
                i += 1;
            }
            "protocol" => {
                let v = value(i)?;
                r.protocol = Some(u8_word(v).ok_or_else(|| format!("invalid protocol {v}"))?);
                i += 1;
            }
            "no_track" => r.no_track = true,
            other => return Err(format!("rule option `{other}` is not supported")),
        }
        i += 1;
    }
    r.action = action.ok_or("no action specified for rule")?;
    if !r.no_track
        && let Some(p) = r.protocol.filter(|&p| p != RTPROT_KEEPALIVED)
    {
        ctx.warn(
            pos,
            format!(
                "rule protocol {p}: a tracked rule has protocol {RTPROT_KEEPALIVED} \
                 (keepalived); add `no_track` to keep it"
            ),
        );
    }
    let fam = fam.unwrap_or(AddrFamily::Ipv4);
    r.family = fam;
    r.from = from.map(|p| resolve_prefix(p, fam));
    r.to = to.map(|p| resolve_prefix(p, fam));
    r.priority = match priority {
        Some(p) => p,
        None => {
            let next = match fam {
                AddrFamily::Ipv4 => &mut prio.v4,
                AddrFamily::Ipv6 => &mut prio.v6,
            };
            let p = *next;
            *next = next.saturating_sub(1);
            ctx.warn(
                pos,
                format!(
                    "Rule has no preference specified - setting to {p}. This is probably \
                     not what you want."
                ),
            );
            p
        }
    };
    Ok(r)
}

/// A list read from a block, or none (with a warning) when the block is missing.
fn lenient_list<T>(l: Result<Vec<T>, ConfError>, ctx: &mut Ctx) -> Result<Vec<T>, ConfError> {
    match l {
        Ok(l) => Ok(l),
        Err(e) => ctx.lenient(Err(e)).map(|()| Vec::new()),
    }
}

fn words(n: &Node) -> Vec<&str> {
    std::iter::once(n.keyword.as_str())
        .chain(n.args.iter().map(String::as_str))
        .collect()
}

/// The routes of a `virtual_routes` or `static_routes` block; a line that cannot be read is a
/// warning and is skipped.
fn routes_block(node: &Node, ctx: &mut Ctx) -> Result<Vec<Route>, ConfError> {
    let mut out = Vec::new();
    for n in block(node)? {
        ctx.no_block(n);
        match route_words(&words(n), ctx, &n.pos) {
            Ok(r) => out.push(r),
            Err(why) => ctx.warn(&n.pos, format!("{}: {why}; route ignored", node.keyword)),
        }
    }
    Ok(out)
}

/// The rules of a `virtual_rules` or `static_rules` block; a line that cannot be read is a
/// warning and is skipped.
fn rules_block(
    node: &Node,
    prio: &mut RulePriorities,
    ctx: &mut Ctx,
) -> Result<Vec<Rule>, ConfError> {
    let mut out = Vec::new();
    for n in block(node)? {
        ctx.no_block(n);
        match rule_words(&words(n), prio, ctx, &n.pos) {
            Ok(r) => out.push(r),
            Err(why) => ctx.warn(&n.pos, format!("{}: {why}; rule ignored", node.keyword)),
        }
    }
    Ok(out)
}

/// The addresses of `static_ipaddress`: as virtual addresses, each with its `dev`.
fn static_addresses(node: &Node, ctx: &mut Ctx) -> Result<Vec<Vip>, ConfError> {
    let mut out = Vec::new();
    for v in block(node)? {
        match vip(v, ctx) {
            Ok(a) if a.dev.is_none() => ctx.warn(
                &v.pos,
                "static_ipaddress needs `dev IFACE` (the interface of the default route is \
                 not looked up); address ignored",
            ),
            Ok(a) => out.push(a),
            Err(e) => ctx.lenient(Err(e))?,
        }
    }
    Ok(out)
}
