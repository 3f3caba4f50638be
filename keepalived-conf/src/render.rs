//! Writes typed configurations back as keepalived.conf text (`vrrpd --check-config`).
//!
//! The output is normalized: every value is explicit, one keyword per line, four-space
//! indentation. Parsing it back gives an equal configuration.

use std::fmt::{self, Write as _};

use super::fmt_secs;
use super::vrrp::{
    GlobalDefs, InitialState, Route, RouteKind, Rule, RuleAction, ScriptUser, SyncGroup,
    TrackProcess, TrackScript, Vip, VrrpConf, VrrpInstance, VrrpScript, VrrpTrackProcess,
};
use vrrp_proto::wire::AddrFamily;

/// A word as the lexer reads it back: bare when possible, else in double quotes.
///
/// Strings containing `"` or a line break cannot be written; the parser never produces them.
pub(crate) fn word(s: &str) -> String {
    let bare = !s.is_empty()
        && !s.starts_with(['!', '#'])
        && !s
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '{' | '}' | '"'));
    if bare {
        s.to_string()
    } else {
        format!("\"{s}\"")
    }
}

/// Writes `indent` levels of indentation, `keyword`, then each argument.
pub(crate) fn line(
    f: &mut fmt::Formatter<'_>,
    indent: usize,
    keyword: &str,
    args: &[&str],
) -> fmt::Result {
    for _ in 0..indent {
        f.write_str("    ")?;
    }
    f.write_str(&word(keyword))?;
    for a in args {
        f.write_char(' ')?;
        f.write_str(&word(a))?;
    }
    f.write_char('\n')
}

/// Closes a block.
pub(crate) fn close(f: &mut fmt::Formatter<'_>, indent: usize) -> fmt::Result {
    for _ in 0..indent {
        f.write_str("    ")?;
    }
    f.write_str("}\n")
}

/// Opens a block: `keyword args {`.
pub(crate) fn open(
    f: &mut fmt::Formatter<'_>,
    indent: usize,
    keyword: &str,
    args: &[&str],
) -> fmt::Result {
    for _ in 0..indent {
        f.write_str("    ")?;
    }
    f.write_str(&word(keyword))?;
    for a in args {
        f.write_char(' ')?;
        f.write_str(&word(a))?;
    }
    f.write_str(" {\n")
}

pub(crate) fn opt_line(
    f: &mut fmt::Formatter<'_>,
    indent: usize,
    keyword: &str,
    value: Option<&str>,
) -> fmt::Result {
    match value {
        Some(v) => line(f, indent, keyword, &[v]),
        None => Ok(()),
    }
}

fn user_line(f: &mut fmt::Formatter<'_>, indent: usize, kw: &str, u: &ScriptUser) -> fmt::Result {
    match &u.group {
        Some(g) => line(f, indent, kw, &[&u.user, g]),
        None => line(f, indent, kw, &[&u.user]),
    }
}

impl fmt::Display for GlobalDefs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        open(f, 0, "global_defs", &[])?;
        opt_line(f, 1, "router_id", self.router_id.as_deref())?;
        line(f, 1, "vrrp_version", &[&self.vrrp_version.to_string()])?;
        line(
            f,
            1,
            "vrrp_garp_master_delay",
            &[&fmt_secs(self.garp_master_delay)],
        )?;
        line(
            f,
            1,
            "vrrp_garp_master_repeat",
            &[&self.garp_master_repeat.to_string()],
        )?;
        line(
            f,
            1,
            "vrrp_garp_master_refresh",
            &[&fmt_secs(self.garp_master_refresh)],
        )?;
        line(
            f,
            1,
            "vrrp_garp_master_refresh_repeat",
            &[&self.garp_master_refresh_repeat.to_string()],
        )?;
        line(f, 1, "vrrp_garp_interval", &[&fmt_secs(self.garp_interval)])?;
        line(f, 1, "vrrp_gna_interval", &[&fmt_secs(self.gna_interval)])?;
        if self.enable_script_security {
            line(f, 1, "enable_script_security", &[])?;
        }
        if let Some(u) = &self.script_user {
            user_line(f, 1, "script_user", u)?;
        }
        if self.vrrp_strict {
            line(f, 1, "vrrp_strict", &[])?;
        }
        let smtp = &self.smtp;
        if !smtp.to.is_empty() {
            open(f, 1, "notification_email", &[])?;
            for to in &smtp.to {
                line(f, 2, to, &[])?;
            }
            close(f, 1)?;
        }
        if let Some(from) = &smtp.from {
            line(f, 1, "notification_email_from", &[from])?;
        }
        if let Some(s) = &smtp.server {
            line(f, 1, "smtp_server", &[&s.host, &s.port.to_string()])?;
        }
        line(
            f,
            1,
            "smtp_connect_timeout",
            &[&smtp.connect_timeout.as_secs().to_string()],
        )?;
        if let Some(h) = &smtp.helo_name {
            line(f, 1, "smtp_helo_name", &[h])?;
        }
        for (keyword, value) in [
            ("smtp_alert", smtp.alert),
            ("smtp_alert_vrrp", smtp.alert_vrrp),
            ("smtp_alert_checker", smtp.alert_checker),
        ] {
            if let Some(b) = value {
                line(f, 1, keyword, &[if b { "true" } else { "false" }])?;
            }
        }
        close(f, 0)
    }
}

impl fmt::Display for VrrpScript {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        open(f, 0, "vrrp_script", &[&self.name])?;
        line(f, 1, "script", &[&self.script])?;
        line(f, 1, "interval", &[&fmt_secs(self.interval)])?;
        if let Some(t) = self.timeout {
            line(f, 1, "timeout", &[&fmt_secs(t)])?;
        }
        let w = self.weight.to_string();
        if self.weight_reverse {
            line(f, 1, "weight", &[&w, "reverse"])?;
        } else {
            line(f, 1, "weight", &[&w])?;
        }
        line(f, 1, "rise", &[&self.rise.to_string()])?;
        line(f, 1, "fall", &[&self.fall.to_string()])?;
        if let Some(u) = &self.user {
            user_line(f, 1, "user", u)?;
        }
        close(f, 0)
    }
}

/// Written so that keepalived reads back the same values: `quorum_max` before `quorum` (a
/// quorum is refused above the maximum), no `quorum` when `quorum_max 0` has set it to 0, no
/// delay line for a zero delay (keepalived's default, which it does not read).
impl fmt::Display for VrrpTrackProcess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        open(f, 0, "vrrp_track_process", &[&self.name])?;
        let mut words: Vec<&str> = vec![&self.process];
        words.extend(self.params.iter().map(String::as_str));
        line(f, 1, "process", &words)?;
        if let Some(m) = self.param_match {
            match m.word() {
                Some(w) => line(f, 1, "param_match", &[w])?,
                None => line(f, 1, "param_match", &[])?,
            }
        }
        let w = self.weight.to_string();
        if self.weight_reverse {
            line(f, 1, "weight", &[&w, "reverse"])?;
        } else {
            line(f, 1, "weight", &[&w])?;
        }
        if let Some(max) = self.quorum_max {
            line(f, 1, "quorum_max", &[&max.to_string()])?;
        }
        if self.quorum != 0 {
            line(f, 1, "quorum", &[&self.quorum.to_string()])?;
        }
        if !self.fork_delay.is_zero() {
            line(f, 1, "fork_delay", &[&fmt_secs(self.fork_delay)])?;
        }
        if !self.terminate_delay.is_zero() {
            line(f, 1, "terminate_delay", &[&fmt_secs(self.terminate_delay)])?;
        }
        if self.full_command {
            line(f, 1, "full_command", &[])?;
        }
        close(f, 0)
    }
}

fn vip_line(f: &mut fmt::Formatter<'_>, indent: usize, v: &Vip) -> fmt::Result {
    let addr = format!("{}/{}", v.addr, v.prefix);
    let brd = v.brd.map(|b| b.to_string());
    let mut args: Vec<&str> = Vec::new();
    if let Some(d) = &v.dev {
        args.extend(["dev", d]);
    }
    if let Some(b) = &brd {
        args.extend(["brd", b]);
    }
    if let Some(s) = &v.scope {
        args.extend(["scope", s]);
    }
    if let Some(l) = &v.label {
        args.extend(["label", l]);
    }
    line(f, indent, &addr, &args)
}

/// One route as keepalived reads it, every field explicit but the defaults.
fn route_line(f: &mut fmt::Formatter<'_>, indent: usize, r: &Route) -> fmt::Result {
    let dst = r.dst.to_string();
    let mut words: Vec<String> = Vec::new();
    if r.kind != RouteKind::Unicast {
        words.push(r.kind.word().into());
    }
    words.push(dst);
    let mut opt = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            words.push(k.into());
            words.push(v);
        }
    };
    opt("src", r.src.map(|a| a.to_string()));
    opt("via", r.via.map(|a| a.to_string()));
    opt("dev", r.dev.clone());
    opt("scope", r.scope.map(|s| s.to_string()));
    opt("table", Some(r.table.to_string()));
    opt("metric", r.metric.map(|m| m.to_string()));
    opt("protocol", r.protocol.map(|p| p.to_string()));
    if r.no_track {
        words.push("no_track".into());
    }
    list_line(f, indent, &words)
}

/// One rule as keepalived reads it, the priority always explicit.
fn rule_line(f: &mut fmt::Formatter<'_>, indent: usize, r: &Rule) -> fmt::Result {
    let mut words: Vec<String> = Vec::new();
    if r.from.is_none() && r.to.is_none() && r.family == AddrFamily::Ipv6 {
        words.push("inet6".into());
    }
    if r.invert {
        words.push("not".into());
    }
    let mut opt = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            words.push(k.into());
            words.push(v);
        }
    };
    opt("from", r.from.map(|p| p.to_string()));
    opt("to", r.to.map(|p| p.to_string()));
    opt("iif", r.iif.clone());
    opt("oif", r.oif.clone());
    opt(
        "fwmark",
        r.fwmark.map(|(m, k)| match k {
            Some(k) => format!("{m}/{k}"),
            None => m.to_string(),
        }),
    );
    opt("preference", Some(r.priority.to_string()));
    opt("protocol", r.protocol.map(|p| p.to_string()));
    match r.action {
        RuleAction::Table(t) => opt("table", Some(t.to_string())),
        RuleAction::Blackhole => words.push("blackhole".into()),
        RuleAction::Unreachable => words.push("unreachable".into()),
        RuleAction::Prohibit => words.push("prohibit".into()),
    }
    if r.no_track {
        words.push("no_track".into());
    }
    list_line(f, indent, &words)
}

fn list_line(f: &mut fmt::Formatter<'_>, indent: usize, words: &[String]) -> fmt::Result {
    let Some((kw, args)) = words.split_first() else {
        return Ok(());
    };
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    line(f, indent, kw, &args)
}

/// A block of routes or rules at `indent`, nothing when empty.
fn list_block<T>(
    f: &mut fmt::Formatter<'_>,
    indent: usize,
    keyword: &str,
    items: &[T],
    each: fn(&mut fmt::Formatter<'_>, usize, &T) -> fmt::Result,
) -> fmt::Result {
    if items.is_empty() {
        return Ok(());
    }
    open(f, indent, keyword, &[])?;
    for i in items {
        each(f, indent + 1, i)?;
    }
    close(f, indent)
}

fn track_scripts(f: &mut fmt::Formatter<'_>, indent: usize, ts: &[TrackScript]) -> fmt::Result {
    if ts.is_empty() {
        return Ok(());
    }
    open(f, indent, "track_script", &[])?;
    for t in ts {
        match t.weight {
            Some(w) => line(f, indent + 1, &t.name, &["weight", &w.to_string()])?,
            None => line(f, indent + 1, &t.name, &[])?,
        }
    }
    close(f, indent)
}

/// A `track_process` block; the direction is written only after a weight, where keepalived
/// reads it.
fn track_processes(f: &mut fmt::Formatter<'_>, indent: usize, ts: &[TrackProcess]) -> fmt::Result {
    if ts.is_empty() {
        return Ok(());
    }
    open(f, indent, "track_process", &[])?;
    for t in ts {
        let w = t.weight.map(|w| w.to_string());
        let mut args: Vec<&str> = Vec::new();
        if let Some(w) = &w {
            args.extend(["weight", w]);
            match t.reverse {
                Some(true) => args.push("reverse"),
                Some(false) => args.push("noreverse"),
                None => {}
            }
        }
        line(f, indent + 1, &t.name, &args)?;
    }
    close(f, indent)
}

impl fmt::Display for VrrpInstance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        open(f, 0, "vrrp_instance", &[&self.name])?;
        let state = match self.state {
            InitialState::Master => "MASTER",
            InitialState::Backup => "BACKUP",
        };
        line(f, 1, "state", &[state])?;
        line(f, 1, "interface", &[&self.interface])?;
        line(f, 1, "virtual_router_id", &[&self.vrid.to_string()])?;
        line(f, 1, "priority", &[&self.priority.to_string()])?;
        line(f, 1, "advert_int", &[&fmt_secs(self.advert_int)])?;
        line(f, 1, "version", &[&self.version.to_string()])?;
        if !self.preempt {
            line(f, 1, "nopreempt", &[])?;
        }
        line(f, 1, "preempt_delay", &[&fmt_secs(self.preempt_delay)])?;
        if let Some(p) = &self.auth_pass {
            open(f, 1, "authentication", &[])?;
            line(f, 2, "auth_type", &["PASS"])?;
            line(f, 2, "auth_pass", &[&String::from_utf8_lossy(p)])?;
            close(f, 1)?;
        }
        for (kw, list) in [
            ("virtual_ipaddress", &self.vips),
            ("virtual_ipaddress_excluded", &self.excluded_vips),
        ] {
            if !list.is_empty() {
                open(f, 1, kw, &[])?;
                for v in list {
                    vip_line(f, 2, v)?;
                }
                close(f, 1)?;
            }
        }
        if let Some(a) = self.mcast_src_ip {
            line(f, 1, "mcast_src_ip", &[&a.to_string()])?;
        }
        if let Some(a) = self.unicast_src_ip {
            line(f, 1, "unicast_src_ip", &[&a.to_string()])?;
        }
        if !self.unicast_peers.is_empty() {
            open(f, 1, "unicast_peer", &[])?;
            for p in &self.unicast_peers {
                line(f, 2, &p.to_string(), &[])?;
            }
            close(f, 1)?;
        }
        if !self.track_interfaces.is_empty() {
            open(f, 1, "track_interface", &[])?;
            for t in &self.track_interfaces {
                line(f, 2, &t.name, &["weight", &t.weight.to_string()])?;
            }
            close(f, 1)?;
        }
        track_scripts(f, 1, &self.track_scripts)?;
        track_processes(f, 1, &self.track_processes)?;
        opt_line(f, 1, "notify_master", self.notify_master.as_deref())?;
        opt_line(f, 1, "notify_backup", self.notify_backup.as_deref())?;
        opt_line(f, 1, "notify_fault", self.notify_fault.as_deref())?;
        opt_line(f, 1, "notify_stop", self.notify_stop.as_deref())?;
        opt_line(f, 1, "notify", self.notify.as_deref())?;
        opt_line(f, 1, "use_vmac", self.use_vmac.as_deref())?;
        if self.vmac_xmit_base {
            line(f, 1, "vmac_xmit_base", &[])?;
        }
        line(f, 1, if self.accept { "accept" } else { "no_accept" }, &[])?;
        let g = &self.garp;
        let secs = |d: Option<std::time::Duration>| d.map(fmt_secs);
        let num = |n: Option<u8>| n.map(|n| n.to_string());
        opt_line(f, 1, "garp_master_delay", secs(g.master_delay).as_deref())?;
        opt_line(f, 1, "garp_master_repeat", num(g.master_repeat).as_deref())?;
        opt_line(
            f,
            1,
            "garp_master_refresh",
            secs(g.master_refresh).as_deref(),
        )?;
        opt_line(
            f,
            1,
            "garp_master_refresh_repeat",
            num(g.master_refresh_repeat).as_deref(),
        )?;
        opt_line(f, 1, "garp_interval", secs(g.interval).as_deref())?;
        opt_line(f, 1, "gna_interval", secs(g.gna_interval).as_deref())?;
        if let Some(b) = self.smtp_alert {
            line(f, 1, "smtp_alert", &[if b { "true" } else { "false" }])?;
        }
        if self.dont_track_primary {
            line(f, 1, "dont_track_primary", &[])?;
        }
        list_block(f, 1, "virtual_routes", &self.virtual_routes, route_line)?;
        list_block(f, 1, "virtual_rules", &self.virtual_rules, rule_line)?;
        close(f, 0)
    }
}

impl fmt::Display for SyncGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        open(f, 0, "vrrp_sync_group", &[&self.name])?;
        open(f, 1, "group", &[])?;
        for i in &self.instances {
            line(f, 2, i, &[])?;
        }
        close(f, 1)?;
        opt_line(f, 1, "notify_master", self.notify_master.as_deref())?;
        opt_line(f, 1, "notify_backup", self.notify_backup.as_deref())?;
        opt_line(f, 1, "notify_fault", self.notify_fault.as_deref())?;
        opt_line(f, 1, "notify", self.notify.as_deref())?;
        track_scripts(f, 1, &self.track_scripts)?;
        track_processes(f, 1, &self.track_processes)?;
        if self.tracking_weight {
            line(f, 1, "sync_group_tracking_weight", &[])?;
        }
        close(f, 0)
    }
}

/// The whole configuration, in the order global_defs, static addresses, routes and rules,
/// scripts, track processes (above the instances and groups that refer to them, where
/// keepalived looks for them), instances, sync groups.
impl fmt::Display for VrrpConf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.global.fmt(f)?;
        list_block(f, 0, "static_ipaddress", &self.static_addresses, vip_line)?;
        list_block(f, 0, "static_routes", &self.static_routes, route_line)?;
        list_block(f, 0, "static_rules", &self.static_rules, rule_line)?;
        for s in &self.scripts {
            writeln!(f)?;
            s.fmt(f)?;
        }
        for p in &self.track_processes {
            writeln!(f)?;
            p.fmt(f)?;
        }
        for i in &self.instances {
            writeln!(f)?;
            i.fmt(f)?;
        }
        for g in &self.sync_groups {
            writeln!(f)?;
            g.fmt(f)?;
        }
        Ok(())
    }
}
