//! Routes and policy-routing rules: [`Route`] and [`Rule`], added and removed by
//! [`Rtnl`](super::Rtnl) as keepalived's `virtual_routes`, `virtual_rules`, `static_routes`
//! and `static_rules` are.

use std::net::IpAddr;

use netlink_packet_route::AddressFamily;
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::rule::{
    RuleAction as NlRuleAction, RuleAttribute, RuleFlags, RuleMessage,
};

use super::RtnlError;

/// What the kernel does with a packet a [`Route`] matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum RouteKind {
    /// Forward it (`RTN_UNICAST`).
    #[default]
    Unicast,
    /// Drop it silently (`RTN_BLACKHOLE`).
    Blackhole,
    /// Drop it with ICMP unreachable (`RTN_UNREACHABLE`).
    Unreachable,
    /// Drop it with ICMP administratively prohibited (`RTN_PROHIBIT`).
    Prohibit,
}

/// One route, as `ip route add` takes it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Route {
    /// The type.
    pub kind: RouteKind,
    /// The destination address.
    pub dst: IpAddr,
    /// The destination prefix length.
    pub dst_len: u8,
    /// The preferred source address (`src`).
    pub pref_src: Option<IpAddr>,
    /// The gateway (`via`).
    pub gateway: Option<IpAddr>,
    /// The outgoing interface index (`dev`).
    pub oif: Option<u32>,
    /// The scope (`RT_SCOPE_*`); none: universe.
    pub scope: Option<u8>,
    /// The table (254 is `main`).
    pub table: u32,
    /// The metric (`RTA_PRIORITY`).
    pub metric: Option<u32>,
    /// The protocol (`RTPROT_*`; keepalived uses 18).
    pub protocol: u8,
}

/// What a [`Rule`] does with a packet it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RuleAction {
    /// Look it up in this table.
    Table(u32),
    /// Drop it.
    Blackhole,
    /// Refuse it with ICMP unreachable.
    Unreachable,
    /// Refuse it with ICMP administratively prohibited.
    Prohibit,
}

/// One policy-routing rule, as `ip rule add` takes it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Rule {
    /// IPv6 (else IPv4).
    pub ipv6: bool,
    /// `not`: the selector is inverted.
    pub invert: bool,
    /// The source prefix (`from`).
    pub from: Option<(IpAddr, u8)>,
    /// The destination prefix (`to`).
    pub to: Option<(IpAddr, u8)>,
    /// The incoming interface name (`iif`).
    pub iif: Option<String>,
    /// The outgoing interface name (`oif`).
    pub oif: Option<String>,
    /// The firewall mark (`fwmark`).
    pub fwmark: Option<u32>,
    /// The firewall mark's mask.
    pub fwmask: Option<u32>,
    /// The priority (`preference`).
    pub priority: u32,
    /// The action.
    pub action: RuleAction,
    /// The protocol (`FRA_PROTOCOL`), if any.
    pub protocol: Option<u8>,
}

fn family(v6: bool) -> AddressFamily {
    if v6 {
        AddressFamily::Inet6
    } else {
        AddressFamily::Inet
    }
}

fn check_prefix(addr: IpAddr, prefix: u8) -> Result<(), RtnlError> {
    let max = if addr.is_ipv4() { 32 } else { 128 };
    if prefix > max {
        return Err(RtnlError::InvalidPrefix { addr, prefix });
    }
    Ok(())
}

/// The message that adds (or, with `del`, removes) `r`, as keepalived's `netlink_route`
/// builds it.
pub(crate) fn route_msg(r: &Route, del: bool) -> Result<RouteMessage, RtnlError> {
    check_prefix(r.dst, r.dst_len)?;
    let v6 = r.dst.is_ipv6();
    for a in [r.pref_src, r.gateway].into_iter().flatten() {
        if a.is_ipv6() != v6 {
            return Err(RtnlError::MixedFamilies { what: "route" });
        }
    }
    let mut m = RouteMessage::default();
    m.header.address_family = family(v6);
    m.header.destination_prefix_length = r.dst_len;
    match u8::try_from(r.table) {
        Ok(t) => m.header.table = t,
        Err(_) => m.attributes.push(RouteAttribute::Table(r.table)),
    }
    m.header.protocol = RouteProtocol::from(r.protocol);
    let kind = match r.kind {
        RouteKind::Unicast => RouteType::Unicast,
        RouteKind::Blackhole => RouteType::BlackHole,
        RouteKind::Unreachable => RouteType::Unreachable,
        RouteKind::Prohibit => RouteType::Prohibit,
    };
    m.header.kind = kind;
    m.header.scope = match (r.scope, del) {
        (Some(s), _) => RouteScope::from(s),
        (None, true) => RouteScope::NoWhere,
        (None, false) => RouteScope::Universe,
    };
    if r.dst_len > 0 {
        m.attributes
            .push(RouteAttribute::Destination(RouteAddress::from(r.dst)));
    }
    if let Some(a) = r.pref_src {
        m.attributes
            .push(RouteAttribute::PrefSource(RouteAddress::from(a)));
    }
    if let Some(a) = r.gateway {
        m.attributes
            .push(RouteAttribute::Gateway(RouteAddress::from(a)));
    }
    if let Some(i) = r.oif {
        m.attributes.push(RouteAttribute::Oif(i));
    }
    if let Some(p) = r.metric {
        m.attributes.push(RouteAttribute::Priority(p));
    }
    Ok(m)
}

/// The message that adds (or removes) `r`, as keepalived's `netlink_rule` builds it.
pub(crate) fn rule_msg(r: &Rule) -> Result<RuleMessage, RtnlError> {
    let mut m = RuleMessage::default();
    m.header.family = family(r.ipv6);
    for (p, is_from) in [(r.from, true), (r.to, false)] {
        let Some((addr, len)) = p else { continue };
        check_prefix(addr, len)?;
        if addr.is_ipv6() != r.ipv6 {
            return Err(RtnlError::MixedFamilies { what: "rule" });
        }
        if is_from {
            m.header.src_len = len;
            m.attributes.push(RuleAttribute::Source(addr));
        } else {
            m.header.dst_len = len;
            m.attributes.push(RuleAttribute::Destination(addr));
        }
    }
    if r.invert {
        m.header.flags = RuleFlags::Invert;
    }
    m.attributes.push(RuleAttribute::Priority(r.priority));
    if let Some(v) = r.fwmark {
        m.attributes.push(RuleAttribute::FwMark(v));
    }
    if let Some(v) = r.fwmask {
        m.attributes.push(RuleAttribute::FwMask(v));
    }
    if let Some(i) = &r.iif {
        m.attributes.push(RuleAttribute::Iifname(i.clone()));
    }
    if let Some(o) = &r.oif {
        m.attributes.push(RuleAttribute::Oifname(o.clone()));
    }
    if let Some(p) = r.protocol {
        m.attributes
            .push(RuleAttribute::Protocol(RouteProtocol::from(p)));
    }
    m.header.action = match r.action {
        RuleAction::Table(t) => {
            match u8::try_from(t) {
                Ok(t) => m.header.table = t,
                Err(_) => m.attributes.push(RuleAttribute::Table(t)),
            }
            NlRuleAction::ToTable
        }
        RuleAction::Blackhole => NlRuleAction::Blackhole,
        RuleAction::Unreachable => NlRuleAction::Unreachable,
        RuleAction::Prohibit => NlRuleAction::Prohibit,
    };
    Ok(m)
}
