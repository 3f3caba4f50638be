//! State and statistics dumps (SIGUSR1 / SIGUSR2, like keepalived's `/tmp/keepalived.data`
//! and `.stats`) and the Prometheus text exposition of the RFC 6527 counters.

use std::fmt::Write;
use std::net::IpAddr;
use std::time::Duration;

use vrrp_proto::{State, Stats};

/// What the dumps show of one instance.
#[derive(Debug, Clone)]
pub(crate) struct InstanceReport {
    pub(crate) name: String,
    pub(crate) vrid: u8,
    pub(crate) version: u8,
    pub(crate) interface: String,
    pub(crate) state: State,
    pub(crate) base_priority: u8,
    pub(crate) priority: u8,
    pub(crate) master: Option<IpAddr>,
    pub(crate) advert_int: Duration,
    pub(crate) master_down_interval: Duration,
    pub(crate) vips: Vec<String>,
    pub(crate) faults: Vec<String>,
    pub(crate) stats: Stats,
}

pub(crate) fn state_name(s: State) -> &'static str {
    match s {
        State::Initialize => "INIT",
        State::Backup => "BACKUP",
        State::Master => "MASTER",
        State::Fault => "FAULT",
        _ => "UNKNOWN",
    }
}

/// The SIGUSR1 dump.
pub(crate) fn data(instances: &[InstanceReport]) -> String {
    let mut s = String::from("------< VRRP Topology >------\n");
    for i in instances {
        let _ = writeln!(s, " VRRP Instance = {}", i.name);
        let _ = writeln!(s, "   State = {}", state_name(i.state));
        let _ = writeln!(s, "   Interface = {}", i.interface);
        let _ = writeln!(s, "   Virtual Router ID = {}", i.vrid);
        let _ = writeln!(s, "   VRRP version = {}", i.version);
        let _ = writeln!(s, "   Base priority = {}", i.base_priority);
        let _ = writeln!(s, "   Effective priority = {}", i.priority);
        let _ = writeln!(s, "   Advert interval = {} ms", i.advert_int.as_millis());
        let _ = writeln!(
            s,
            "   Master down interval = {} us",
            i.master_down_interval.as_micros()
        );
        match i.master {
            Some(m) => {
                let _ = writeln!(s, "   Master router = {m}");
            }
            None => {
                let _ = writeln!(s, "   Master router = (none)");
            }
        }
        let _ = writeln!(s, "   Virtual IP = {}", i.vips.len());
        for v in &i.vips {
            let _ = writeln!(s, "     {v}");
        }
        if !i.faults.is_empty() {
            let _ = writeln!(s, "   Fault causes = {}", i.faults.join(", "));
        }
    }
    s
}

fn counters(st: &Stats) -> [(&'static str, &'static str, u64); 21] {
    [
        (
            "master_transitions",
            "Transitions to MASTER",
            st.master_transitions,
        ),
        (
            "rcvd_advertisements",
            "Valid advertisements received",
            st.adverts_received,
        ),
        (
            "sent_advertisements",
            "Advertisements sent",
            st.adverts_sent,
        ),
        (
            "rcvd_pri_zero_packets",
            "Priority-0 advertisements received",
            st.priority_zero_received,
        ),
        (
            "sent_pri_zero_packets",
            "Priority-0 advertisements sent",
            st.priority_zero_sent,
        ),
        (
            "adv_interval_errors",
            "Advertisement interval errors",
            st.adv_interval_errors,
        ),
        ("ip_ttl_errors", "TTL / hop limit not 255", st.ip_ttl_errors),
        (
            "rcvd_invalid_type_packets",
            "Packets of an unknown type",
            st.invalid_type,
        ),
        (
            "address_list_errors",
            "Address lists that differ from ours",
            st.address_list_errors,
        ),
        (
            "packet_length_errors",
            "Truncated or over-long packets",
            st.packet_length_errors,
        ),
        ("checksum_errors", "Bad checksums", st.checksum_errors),
        ("version_errors", "Wrong VRRP version", st.version_errors),
        ("vrid_errors", "Packets for another VRID", st.vrid_errors),
        (
            "auth_failures",
            "Wrong password (RFC 2787)",
            st.auth_failures,
        ),
        (
            "invalid_auth_type",
            "Unknown authentication type (RFC 2787)",
            st.invalid_auth_type,
        ),
        (
            "auth_type_mismatch",
            "Authentication type differs (RFC 2787)",
            st.auth_type_mismatch,
        ),
        (
            "address_family_errors",
            "Wrong address family",
            st.address_family_errors,
        ),
        ("own_adverts", "Our own adverts looped back", st.own_adverts),
        (
            "unknown_source",
            "Adverts from an unknown unicast source",
            st.unknown_source,
        ),
        (
            "owner_discards",
            "Adverts an address owner discarded",
            st.owner_discards,
        ),
        (
            "lower_priority_master_seen",
            "Lower-priority masters answered while MASTER",
            st.lower_priority_master_seen,
        ),
    ]
}

/// The SIGUSR2 dump.
pub(crate) fn stats(instances: &[InstanceReport]) -> String {
    let mut s = String::new();
    for i in instances {
        let _ = writeln!(s, "VRRP Instance: {}", i.name);
        for (_, help, v) in counters(&i.stats) {
            let _ = writeln!(s, "  {help}: {v}");
        }
    }
    s
}

/// The Prometheus text exposition (format 0.0.4).
pub(crate) fn prometheus(instances: &[InstanceReport], unknown_vrid: u64) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# HELP vrrp_state Current state: 0 init, 1 backup, 2 master, 3 fault.\n# TYPE vrrp_state gauge"
    );
    for i in instances {
        let v = match i.state {
            State::Backup => 1,
            State::Master => 2,
            State::Fault => 3,
            _ => 0,
        };
        let _ = writeln!(s, "vrrp_state{{{}}} {v}", labels(i));
    }
    let _ = writeln!(
        s,
        "# HELP vrrp_priority Effective priority.\n# TYPE vrrp_priority gauge"
    );
    for i in instances {
        let _ = writeln!(s, "vrrp_priority{{{}}} {}", labels(i), i.priority);
    }
    for (name, help, _) in counters(&Stats::default()) {
        let _ = writeln!(
            s,
            "# HELP vrrp_{name}_total {help}.\n# TYPE vrrp_{name}_total counter"
        );
        for i in instances {
            let v = counters(&i.stats)
                .iter()
                .find(|c| c.0 == name)
                .map_or(0, |c| c.2);
            let _ = writeln!(s, "vrrp_{name}_total{{{}}} {v}", labels(i));
        }
    }
    let _ = writeln!(
        s,
        "# HELP vrrp_unknown_vrid_total Packets for a VRID no instance has.\n# TYPE vrrp_unknown_vrid_total counter\nvrrp_unknown_vrid_total {unknown_vrid}"
    );
    s
}

fn labels(i: &InstanceReport) -> String {
    format!(
        "instance=\"{}\",vrid=\"{}\",interface=\"{}\"",
        escape(&i.name),
        i.vrid,
        escape(&i.interface)
    )
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text_has_every_counter() {
        let r = InstanceReport {
            name: "VI_\"1".into(),
            vrid: 51,
            version: 3,
            interface: "eth0".into(),
            state: State::Master,
            base_priority: 100,
            priority: 80,
            master: None,
            advert_int: Duration::from_millis(100),
            master_down_interval: Duration::from_millis(361),
            vips: vec!["10.0.0.1/32".into()],
            faults: vec![],
            stats: Stats::default(),
        };
        let t = prometheus(std::slice::from_ref(&r), 7);
        assert!(t.contains("vrrp_state{instance=\"VI_\\\"1\",vrid=\"51\",interface=\"eth0\"} 2"));
        assert!(
            t.contains("vrrp_priority{instance=\"VI_\\\"1\",vrid=\"51\",interface=\"eth0\"} 80")
        );
        assert_eq!(t.matches("# TYPE").count(), 2 + 21 + 1);
        assert!(t.ends_with("vrrp_unknown_vrid_total 7\n"));
        assert!(data(std::slice::from_ref(&r)).contains("State = MASTER"));
        assert!(stats(&[r]).contains("Advertisements sent: 0"));
    }
}
