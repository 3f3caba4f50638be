//! The keepalived.conf parser: the classic nginx + keepalived and LVS + keepalived
//! configurations, every error path with its position, includes, warnings, comments, and render/parse round trips.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use keepalived_conf::lvs::{
    Check, Connect, Granularity, LbAlgo, LbKind, LvsConf, Protocol, RealServer, Url, VirtualServer,
    VsAddr, parse_lvs, parse_lvs_str,
};
use keepalived_conf::{
    ConfError, GarpSettings, GlobalDefs, InitialState, IpPrefix, MAX_PROCESS_DELAY, Options,
    ParamMatch, Pos, Route, RouteKind, Rule, RuleAction, ScriptUser, SmtpServer, SmtpSettings,
    SourcePos, SyncGroup, TrackIf, TrackProcess, TrackScript, Vip, VrrpConf, VrrpInstance,
    VrrpScript, VrrpTrackProcess, Warning, parse_tree_str, parse_vrrp, parse_vrrp_str,
};
use proptest::prelude::*;
use vrrp_proto::wire::AddrFamily;

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/kaconf")
        .join(name)
}

fn vrrp(text: &str) -> (VrrpConf, Vec<Warning>) {
    parse_vrrp_str(text, "t.conf").unwrap_or_else(|e| panic!("{e}"))
}

fn vrrp_err(text: &str) -> String {
    match parse_vrrp_str(text, "t.conf") {
        Ok(c) => panic!("accepted: {c:?}"),
        Err(e) => e.to_string(),
    }
}

fn warnings(w: &[Warning]) -> Vec<String> {
    w.iter().map(ToString::to_string).collect()
}

/// An instance wrapper: `body` lines go inside a valid instance (the body starts on line 4).
/// Without a `virtual_ipaddress` in `body`, one follows it (keepalived needs one under VRRPv3).
fn inst(body: &str) -> String {
    let vip = if body.contains("virtual_ipaddress") {
        ""
    } else {
        "\n    virtual_ipaddress {\n        192.0.2.1\n    }"
    };
    format!("vrrp_instance VI_1 {{\n    interface eth0\n    virtual_router_id 7\n{body}{vip}\n}}\n")
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

// ---------------------------------------------------------------------------------------------
// The classic nginx + keepalived and LVS + keepalived configurations

#[test]
fn seed_vrrp_config() {
    let (conf, w) = parse_vrrp(&data("seed_vrrp.conf")).unwrap();
    assert!(w.is_empty(), "{w:?}");
    assert_eq!(conf.global.router_id.as_deref(), Some("LVS_DEVEL"));
    assert_eq!(conf.scripts.len(), 1);
    let s = &conf.scripts[0];
    assert_eq!(s.name, "chk_nginx");
    assert_eq!(s.script, "/etc/keepalived/nginx_check.sh");
    assert_eq!(s.interval, Duration::from_secs(2));
    assert_eq!(s.weight, -20);
    assert_eq!((s.rise, s.fall, s.timeout), (1, 1, None));
    assert_eq!(s.pos.line, 6);
    let i = &conf.instances[0];
    assert_eq!(i.name, "VI_1");
    assert_eq!(i.pos.line, 12);
    assert_eq!(i.state, InitialState::Master);
    assert_eq!(i.interface, "eth0");
    assert_eq!((i.vrid, i.priority, i.version), (51, 100, 2));
    assert_eq!(i.advert_int, Duration::from_secs(1));
    assert_eq!(i.mcast_src_ip, Some(ip("192.168.1.10")));
    assert_eq!(i.auth_pass.as_deref(), Some(&b"1111"[..]));
    assert_eq!(
        i.track_scripts,
        vec![TrackScript {
            name: "chk_nginx".into(),
            weight: None
        }]
    );
    assert_eq!(
        i.vips,
        vec![Vip {
            addr: ip("192.168.1.100"),
            prefix: 32,
            dev: None,
            brd: None,
            scope: None,
            label: None
        }]
    );
    assert!(i.preempt && i.accept);
    assert_eq!(i.family(), AddrFamily::Ipv4);
    assert_eq!(i.announce(&conf.global), vrrp_proto::Announce::default());
    // The LVS layer skips the VRRP blocks without a word.
    let (lvs, w) = parse_lvs(&data("seed_vrrp.conf")).unwrap();
    assert!(lvs.virtual_servers.is_empty() && w.is_empty(), "{w:?}");
}

#[test]
fn seed_lvs_config() {
    let (conf, w) = parse_lvs(&data("seed_lvs.conf")).unwrap();
    // keepalived 2.2.7 reads `nb_get_retry` only in HTTP_GET and SSL_GET.
    assert_eq!(
        w.iter()
            .map(|w| (w.pos.line, w.message.as_str()))
            .collect::<Vec<_>>(),
        [
            (13, "unknown keyword `nb_get_retry` in TCP_CHECK; ignored"),
            (22, "unknown keyword `nb_get_retry` in TCP_CHECK; ignored")
        ]
    );
    let vs = &conf.virtual_servers[0];
    assert_eq!(
        vs.addr,
        VsAddr::Socket("192.168.1.100:80".parse::<SocketAddr>().unwrap())
    );
    assert_eq!(vs.delay_loop, Duration::from_secs(6));
    assert_eq!(
        (vs.lb_algo, vs.lb_kind, vs.protocol),
        (LbAlgo::Wrr, LbKind::Dr, Protocol::Tcp)
    );
    assert_eq!(vs.persistence_timeout, Some(60));
    assert_eq!(vs.real_servers.len(), 2);
    let rs = &vs.real_servers[0];
    assert_eq!(rs.addr, "192.168.1.21:80".parse::<SocketAddr>().unwrap());
    assert_eq!(rs.weight, 3);
    assert_eq!(
        rs.checks,
        vec![Check::Tcp(Connect {
            connect_timeout: Duration::from_secs(10),
            connect_port: Some(80),
            connect_ip: None,
            retry: 1,
            delay_before_retry: Duration::from_secs(3),
        })]
    );
    assert_eq!(rs.pos.line, 9);
    let (v, w) = parse_vrrp(&data("seed_lvs.conf")).unwrap();
    assert!(v.instances.is_empty() && w.is_empty(), "{w:?}");
}

#[test]
fn both_halves_in_one_file() {
    let text = std::fs::read_to_string(data("seed_vrrp.conf")).unwrap()
        + &std::fs::read_to_string(data("seed_lvs.conf")).unwrap();
    let (v, w1) = parse_vrrp_str(&text, "both.conf").unwrap();
    let (l, w2) = parse_lvs_str(&text, "both.conf").unwrap();
    assert!(w1.is_empty(), "{w1:?}");
    assert_eq!(w2.len(), 2, "the two nb_get_retry lines: {w2:?}");
    assert_eq!(v.instances.len(), 1);
    assert_eq!(l.virtual_servers[0].real_servers.len(), 2);
}

// ---------------------------------------------------------------------------------------------
// Generic syntax

#[test]
fn tree_shape_and_positions() {
    let text = "a b \"c d\" {\n\tx 1\n  y { z }\n}\nlast";
    let (nodes, w) = parse_tree_str(text, "t.conf", &Options::default()).unwrap();
    assert!(w.is_empty());
    assert_eq!(nodes.len(), 2);
    assert_eq!(nodes[0].args, vec!["b", "c d"]);
    let kids = nodes[0].children.as_ref().unwrap();
    assert_eq!(kids[0].keyword, "x");
    assert_eq!((kids[0].pos.line, kids[0].pos.col), (2, 2));
    assert_eq!((kids[1].pos.line, kids[1].pos.col), (3, 3));
    let z = &kids[1].children.as_ref().unwrap()[0];
    assert_eq!((z.keyword.as_str(), z.pos.line, z.pos.col), ("z", 3, 7));
    assert_eq!(nodes[1].keyword, "last");
    assert!(nodes[1].children.is_none());
    assert_eq!(nodes[1].pos.to_string(), "t.conf:5:1");
}

#[test]
fn brace_on_the_next_line() {
    let text = "vrrp_instance VI_1\n{\n    interface eth0\n    virtual_router_id 3\n    virtual_ipaddress\n    {\n        10.1.1.1/16 dev eth1\n    }\n}\n";
    let (c, w) = vrrp(text);
    assert!(w.is_empty(), "{w:?}");
    assert_eq!(c.instances[0].vips[0].prefix, 16);
    assert_eq!(c.instances[0].vips[0].dev.as_deref(), Some("eth1"));
}

#[test]
fn comments_in_every_position() {
    let text = r#"! leading comment
# another
global_defs { # after an open brace
    router_id r1 ! after a value
} # after a close brace
vrrp_script s1 # before the brace line
{
    script "/bin/check # not a comment" ! a comment
    interval 3#still part of the word? no: `3#` is one word
}
"#;
    // `3#still` is one word: `#` only starts a comment at the start of a word.
    let (c, w) = vrrp(text);
    assert_eq!(c.scripts[0].interval, Duration::from_secs(1));
    assert_eq!(
        warnings(&w),
        [
            "t.conf:9:5: interval: `3#still` is not a number of seconds (digits, optionally with a decimal point); line ignored"
        ]
    );
    let text = text.replace("3#still", "3 #still");
    let (c, w) = vrrp(&text);
    assert_eq!(c.global.router_id.as_deref(), Some("r1"));
    assert_eq!(c.scripts[0].script, "/bin/check # not a comment");
    assert_eq!(c.scripts[0].interval, Duration::from_secs(3));
    assert!(w.is_empty(), "{w:?}");
}

#[test]
fn crlf_and_tabs() {
    let text = "global_defs {\r\n\trouter_id\tr2\r\n}\r\n";
    let (c, _) = vrrp(text);
    assert_eq!(c.global.router_id.as_deref(), Some("r2"));
}

#[test]
fn syntax_errors_with_positions() {
    assert_eq!(
        vrrp_err("vrrp_script x {\n  script \"abc\n}"),
        "t.conf:2:10: unterminated quoted string: close it with `\"` on the same line"
    );
    assert_eq!(
        vrrp_err("global_defs {\n}\n   }"),
        "t.conf:3:4: `}` closes no block: remove it or add the missing `{`"
    );
    assert_eq!(
        vrrp_err("global_defs {\n}\nvrrp_instance VI_1 {\n    state MASTER\n"),
        "t.conf:3:1: the block of `vrrp_instance` is never closed: add the missing `}`"
    );
    assert_eq!(
        vrrp_err("  {"),
        "t.conf:1:3: `{` follows no keyword: put it after the keyword whose block it opens"
    );
    assert_eq!(
        vrrp_err("global_defs { } {"),
        "t.conf:1:17: `{` follows no keyword: put it after the keyword whose block it opens"
    );
    let deep = "a {".repeat(40);
    assert_eq!(
        vrrp_err(&deep),
        "t.conf:1:99: blocks nest deeper than 32 levels: check the braces"
    );
    assert_eq!(
        vrrp_err("vrrp_instance VI_1\nglobal_defs {}"),
        "t.conf:1:1: `vrrp_instance` needs a `{ ... }` block"
    );
    assert_eq!(
        vrrp_err("vrrp_instance {\n}"),
        "t.conf:1:1: `vrrp_instance` needs an instance name"
    );
}

#[test]
fn read_errors_keep_the_io_error() {
    let e = parse_vrrp(Path::new("/nonexistent/keepalived.conf")).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("cannot read /nonexistent/keepalived.conf: "),
        "{e}"
    );
    let ConfError::Read { source, path } = &e else {
        panic!("{e:?}")
    };
    assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
    assert_eq!(path, Path::new("/nonexistent/keepalived.conf"));
    assert!(std::error::Error::source(&e).is_some());
}

// ---------------------------------------------------------------------------------------------
// VRRP values and semantic errors

/// keepalived ignores a line whose value it cannot use (keeping the default) and says so; the
/// reader does the same, with the position. Only what keepalived would run differently from what
/// is written and this crate cannot express is an error (AH authentication, VRRPv2 over IPv6).
#[test]
fn bad_values_are_ignored_with_positions() {
    let cases: &[(&str, &str)] = &[
        (
            "    priority",
            "t.conf:4:5: `priority` needs a number; line ignored",
        ),
        (
            "    priority abc",
            "t.conf:4:5: priority: `abc` is not a whole number; line ignored",
        ),
        (
            "    priority 300",
            "t.conf:4:5: priority must be 1..=255, got 300; line ignored",
        ),
        (
            "    priority 0",
            "t.conf:4:5: priority must be 1..=255, got 0; line ignored",
        ),
        (
            "    priority 99999999999999999999",
            "t.conf:4:5: priority must be 1..=255, got 99999999999999999999; line ignored",
        ),
        (
            "    virtual_ipaddress {\n        10.0.0.300/24\n        192.0.2.9\n    }",
            "t.conf:5:9: 10.0.0.300/24: `10.0.0.300/24` is not an IP address with an optional /prefix; line ignored",
        ),
        (
            "    virtual_ipaddress {\n        10.0.0.1/33\n        192.0.2.9\n    }",
            "t.conf:5:9: 10.0.0.1/33 must be a prefix length 0..=32, got 33; line ignored",
        ),
        (
            "    virtual_ipaddress {\n        10.0.0.1 dev\n        192.0.2.9\n    }",
            "t.conf:5:9: `dev` needs a value; line ignored",
        ),
        (
            "    virtual_ipaddress {\n        10.0.0.1 colour blue\n        192.0.2.9\n    }",
            "t.conf:5:9: 10.0.0.1: `colour` is not a virtual address option (dev, brd, scope, label); line ignored",
        ),
        (
            "    mcast_src_ip 1.2.3",
            "t.conf:4:5: mcast_src_ip: `1.2.3` is not an IPv4 or IPv6 address; line ignored",
        ),
        (
            "    unicast_peer {\n      fe80::zz\n    }",
            "t.conf:5:7: fe80::zz: `fe80::zz` is not an IPv4 or IPv6 address; line ignored",
        ),
        (
            "    advert_int fast",
            "t.conf:4:5: advert_int: `fast` is not a number of seconds (digits, optionally with a decimal point); line ignored",
        ),
        (
            "    advert_int 0",
            "t.conf:4:5: advert_int must be 0.01..=255 seconds, got 0; line ignored",
        ),
        (
            "    advert_int 256",
            "t.conf:4:5: advert_int must be 0.01..=255 seconds, got 256; line ignored",
        ),
        (
            "    version 3\n    advert_int 41",
            "t.conf:5:5: advert_int 41 is longer than VRRPv3 can carry; using 40.95",
        ),
        (
            "    version 4",
            "t.conf:4:5: version must be 2..=3, got 4; line ignored",
        ),
        (
            "    preempt_delay 1001",
            "t.conf:4:5: preempt_delay must be 0..=1000 seconds, got 1001; line ignored",
        ),
        (
            "    track_interface {\n        eth1 weight 300\n    }",
            "t.conf:5:9: eth1 must be -254..=254, got 300; line ignored",
        ),
        (
            "    track_interface {\n        eth1 heavy\n    }",
            "t.conf:5:9: eth1: `heavy` is not `weight N`; line ignored",
        ),
        (
            "    authentication {\n        auth_type AH\n        auth_pass x\n    }",
            "error: t.conf:5:9: auth_type AH is not supported (keepalived deprecated it): use PASS or remove the authentication block",
        ),
        (
            "    authentication {\n        auth_type PASS\n    }",
            "t.conf:4:5: authentication has no `auth_pass`; the block is ignored",
        ),
        (
            "    notify_master",
            "t.conf:4:5: `notify_master` needs a command; line ignored",
        ),
        (
            "    track_script {\n        nope\n    }",
            "t.conf:5:9: vrrp_script `nope` is not defined; reference ignored",
        ),
        (
            "    version 2\n    virtual_ipaddress {\n        2001:db8::1\n    }",
            "error: t.conf:4:5: vrrp_instance `VI_1` has IPv6 addresses but VRRPv2 is IPv4 only: use `version 3`",
        ),
        (
            "    garp_master_repeat 0",
            "t.conf:4:5: garp_master_repeat must be 1..=255, got 0; line ignored",
        ),
    ];
    for (body, want) in cases {
        let got = match parse_vrrp_str(&inst(body), "t.conf") {
            Ok((_, w)) => warnings(&w).join("\n"),
            Err(e) => format!("error: {e}"),
        };
        assert_eq!(got, *want, "{body}");
    }
}

#[test]
fn semantic_errors_with_positions() {
    assert_eq!(
        vrrp_err("vrrp_instance A {\n    virtual_router_id 1\n}"),
        "t.conf:1:1: vrrp_instance `A` has no `interface`: add one"
    );
    assert_eq!(
        vrrp_err("vrrp_instance A {\n    interface eth0\n}"),
        "t.conf:1:1: vrrp_instance `A` has no `virtual_router_id`: add one"
    );
    let two = |a: &str, b: &str| {
        format!(
            "vrrp_instance {a} {{\n interface eth0\n virtual_router_id 9\n}}\nvrrp_instance {b} {{\n interface eth0\n virtual_router_id 9\n}}\n"
        )
    };
    assert_eq!(
        vrrp_err(&two("A", "A")),
        "t.conf:5:1: vrrp_instance `A` is already defined at t.conf:1:1: rename or remove one"
    );
    assert_eq!(
        vrrp_err(&two("A", "B")),
        "t.conf:5:1: vrrp_instance `B` uses interface eth0, virtual_router_id 9 and IPv4 like `A`: change one virtual_router_id"
    );
    // The same VRID on the same interface is fine for the other family.
    let v6 = two("A", "B").replacen(
        "virtual_router_id 9\n}\n",
        "virtual_router_id 9\n virtual_ipaddress { fe80::1 }\n}\n",
        1,
    );
    let (c, _) = vrrp(&v6);
    assert_eq!(c.instances[0].version, 3);
    assert_eq!(c.instances[0].family(), AddrFamily::Ipv6);
    assert_eq!(c.instances[1].version, 2);
    // keepalived drops references to nothing, and a group left empty, with a message.
    let (c, w) = vrrp(
        &(inst("") + "vrrp_sync_group G {\n    group {\n        VI_1\n        VI_2\n    }\n}\n"),
    );
    assert_eq!(c.sync_groups[0].instances, ["VI_1"]);
    assert_eq!(
        warnings(&w),
        ["t.conf:12:9: vrrp_instance `VI_2` is not defined; reference ignored"]
    );
    let (c, w) = vrrp(
        &(inst("")
            + "vrrp_sync_group G {\n    group { VI_1 }\n    track_script {\n        gone\n    }\n}\n"),
    );
    assert!(c.sync_groups[0].track_scripts.is_empty());
    assert_eq!(
        warnings(&w),
        ["t.conf:12:9: vrrp_script `gone` is not defined; reference ignored"]
    );
    let (c, w) = vrrp("vrrp_sync_group G {\n}\n");
    assert!(c.sync_groups.is_empty());
    assert_eq!(
        warnings(&w),
        ["t.conf:1:1: vrrp_sync_group `G` has no existing vrrp_instance; removed"]
    );
    assert_eq!(
        vrrp_err("vrrp_script s {\n    script a\n}\nvrrp_script s {\n    script b\n}\n"),
        "t.conf:4:1: vrrp_script `s` is already defined at t.conf:1:1: rename or remove one"
    );
    let (c, w) = vrrp("vrrp_script s {\n    interval 2\n}\n");
    assert!(c.scripts.is_empty());
    assert_eq!(
        warnings(&w),
        ["t.conf:1:1: vrrp_script `s` has no `script`; removed"]
    );
    let (c, w) = vrrp("vrrp_script s {\n    script a\n    weight 10 sideways\n}\n");
    assert_eq!(
        (c.scripts[0].weight, c.scripts[0].weight_reverse),
        (10, false)
    );
    assert_eq!(
        warnings(&w),
        ["t.conf:3:5: weight: unknown option `sideways` (only `reverse`); ignored"]
    );
    let (c, w) = vrrp("global_defs {\n    vrrp_version 1\n}\n");
    assert_eq!(c.global.vrrp_version, 2);
    assert_eq!(
        warnings(&w),
        ["t.conf:2:5: vrrp_version must be 2..=3, got 1; line ignored"]
    );
}

#[test]
fn defaults_and_full_instance() {
    let text = r#"
global_defs {
    vrrp_version 3
    vrrp_garp_master_delay 10
    vrrp_garp_master_repeat 3
    vrrp_garp_interval 0.001
    vrrp_gna_interval 0.002
    enable_script_security
    script_user nobody nogroup
    vrrp_strict
}
vrrp_script chk {
    script "/usr/bin/killall -0 nginx"
    interval 1.5
    timeout 3
    weight 10 reverse
    rise 2
    fall 3
    user root
}
vrrp_instance V6 {
    state BACKUP
    interface eth1
    virtual_router_id 255
    priority 254
    advert_int 0.1
    nopreempt
    preempt_delay 30
    virtual_ipaddress {
        2001:db8::10/64 dev eth1 scope global label x
        10.0.0.1
    }
    virtual_ipaddress_excluded {
        10.9.9.9/8 brd 10.255.255.255
    }
    unicast_src_ip 2001:db8::1
    unicast_peer {
        2001:db8::2
        2001:db8::3
    }
    track_interface {
        eth2
        eth3 weight -10
    }
    track_script {
        chk weight 20
    }
    notify_master "/bin/notify master"
    notify_backup /bin/notify backup
    notify_fault /bin/f
    notify_stop /bin/s
    notify /bin/n
    use_vmac
    vmac_xmit_base
    garp_master_delay 2
    garp_master_refresh 60
    garp_master_refresh_repeat 2
    gna_interval 0.5
    dont_track_primary
}
vrrp_sync_group G {
    group {
        V6
    }
    notify /bin/g
    track_script {
        chk
    }
    sync_group_tracking_weight
}
"#;
    let (c, w) = vrrp(text);
    let w = warnings(&w);
    assert_eq!(
        w,
        vec![
            "t.conf:21:1: vrrp_instance `V6`: 10.0.0.1 is not of the family of the first virtual address; moved to virtual_ipaddress_excluded"
        ]
    );
    let g = &c.global;
    assert_eq!(g.vrrp_version, 3);
    assert_eq!(g.garp_interval, Duration::from_millis(1));
    assert_eq!(
        g.script_user,
        Some(ScriptUser {
            user: "nobody".into(),
            group: Some("nogroup".into())
        })
    );
    assert!(g.enable_script_security && g.vrrp_strict);
    let s = &c.scripts[0];
    assert_eq!(s.interval, Duration::from_millis(1500));
    assert_eq!(s.timeout, Some(Duration::from_secs(3)));
    assert!(s.weight_reverse);
    let i = &c.instances[0];
    assert_eq!(i.state, InitialState::Backup);
    assert_eq!((i.vrid, i.priority, i.version), (255, 254, 3));
    assert_eq!(i.advert_int, Duration::from_millis(100));
    assert!(!i.preempt);
    assert!(!i.accept, "vrrp_strict makes no_accept the default");
    assert_eq!(i.vips.len(), 1);
    assert_eq!(i.vips[0].label.as_deref(), Some("x"));
    assert_eq!(i.excluded_vips.len(), 2);
    assert_eq!(i.excluded_vips[1].addr, ip("10.0.0.1"));
    assert_eq!(i.excluded_vips[0].brd, Some(ip("10.255.255.255")));
    assert_eq!(i.unicast_peers.len(), 2);
    assert_eq!(
        i.track_interfaces[1],
        TrackIf {
            name: "eth3".into(),
            weight: -10
        }
    );
    assert_eq!(i.track_scripts[0].weight, Some(20));
    assert_eq!(i.notify_master.as_deref(), Some("/bin/notify master"));
    assert_eq!(i.notify_backup.as_deref(), Some("/bin/notify backup"));
    assert_eq!(i.use_vmac.as_deref(), Some("vrrp.255"));
    assert_eq!(i.family(), AddrFamily::Ipv6);
    let a = i.announce(&c.global);
    assert_eq!(a.delay, Duration::from_secs(2));
    assert_eq!(a.repeat, 3);
    assert_eq!(a.refresh, Duration::from_secs(60));
    assert_eq!(a.refresh_repeat, 2);
    assert_eq!(
        a.interval,
        Duration::from_millis(500),
        "gna_interval for IPv6"
    );
    assert_eq!(c.sync_groups[0].instances, vec!["V6"]);
    assert!(c.sync_groups[0].tracking_weight);
    // Without sync_group_tracking_weight keepalived drops the member's weighted script and makes
    // its tracked interfaces weight 0; so does the reader.
    let (c, w) = vrrp(&text.replace("    sync_group_tracking_weight\n", ""));
    let i = &c.instances[0];
    assert!(i.track_scripts.is_empty());
    assert!(i.track_interfaces.iter().all(|t| t.weight == 0));
    assert_eq!(w.len(), 3, "{w:?}");
    let c = vrrp(text).0;
    // Rendering and re-parsing gives the same configuration.
    let again = vrrp(&c.to_string()).0;
    assert_eq!(again, c);
}

/// keepalived's readings of `state`, duplicate addresses and the mail settings (the
/// differential test `keepalived_diff` runs keepalived itself on such files).
#[test]
fn states_duplicates_and_mail_like_keepalived() {
    let inst = |body: &str| {
        format!(
            "vrrp_instance VI_1 {{\n    interface eth0\n    virtual_router_id 1\n{body}\n    \
             virtual_ipaddress {{\n        10.0.0.1\n    }}\n}}\n"
        )
    };
    for (body, state, warned) in [
        ("    state MASTER", InitialState::Master, false),
        ("    state BACKUP", InitialState::Backup, false),
        ("    state SLAVER", InitialState::Backup, true),
        ("    state master", InitialState::Backup, true),
        (
            "    state MASTER\n    state BACKUP",
            InitialState::Master,
            true,
        ),
        (
            "    state BACKUP\n    state MASTER",
            InitialState::Master,
            false,
        ),
    ] {
        let (c, w) = vrrp(&inst(body));
        assert_eq!(c.instances[0].state, state, "{body}");
        assert_eq!(!w.is_empty(), warned, "{body}: {w:?}");
    }
    let (c, w) = vrrp(
        "vrrp_instance VI_1 {\n    interface eth0\n    virtual_router_id 1\n    \
         virtual_ipaddress {\n        10.0.0.1\n        10.0.0.2/24\n        10.0.0.1/32\n        \
         10.0.0.2\n    }\n}\n",
    );
    let vips: Vec<_> = c.instances[0]
        .vips
        .iter()
        .map(|v| (v.addr.to_string(), v.prefix))
        .collect();
    assert_eq!(
        vips,
        [("10.0.0.1".into(), 32), ("10.0.0.2".to_string(), 24)]
    );
    assert!(w.is_empty(), "keepalived says nothing: {w:?}");

    let (c, w) = vrrp(&format!(
        "global_defs {{\n   notification_email {{\n     a@example.com\n     b@example.com c@example.com\n   }}\n   \
         notification_email_from ka@example.com\n   smtp_server 127.0.0.1\n   \
         smtp_connect_timeout 0\n   smtp_helo_name lb1\n   smtp_alert\n   smtp_alert_vrrp off\n}}\n{}",
        inst("    smtp_alert yes")
    ));
    let m = &c.global.smtp;
    assert_eq!(m.to, ["a@example.com", "b@example.com", "c@example.com"]);
    assert_eq!(m.from.as_deref(), Some("ka@example.com"));
    assert_eq!(
        m.server,
        Some(SmtpServer {
            host: "127.0.0.1".into(),
            port: 25
        })
    );
    assert_eq!(m.connect_timeout, Duration::from_secs(1));
    assert_eq!(m.helo_name.as_deref(), Some("lb1"));
    assert_eq!(
        (m.alert, m.alert_vrrp, m.alert_checker),
        (Some(true), Some(false), None)
    );
    assert!(c.instances[0].smtp_alert(&c.global));
    assert_eq!(
        warnings(&w),
        ["t.conf:8:4: smtp_connect_timeout must be greater than 0; using 1"]
    );
    // The instance's default comes from smtp_alert_vrrp, then smtp_alert.
    let (c, _) = vrrp(&format!(
        "global_defs {{\n smtp_alert\n smtp_alert_vrrp off\n}}\n{}",
        inst("")
    ));
    assert!(!c.instances[0].smtp_alert(&c.global));
    let (c, _) = vrrp(&format!("global_defs {{\n smtp_alert\n}}\n{}", inst("")));
    assert!(c.instances[0].smtp_alert(&c.global));
    let (c, w) = vrrp(&format!(
        "global_defs {{\n smtp_server mail.example.com 2525\n}}\n{}",
        inst("    smtp_alert maybe")
    ));
    assert_eq!(
        c.global
            .smtp
            .server
            .as_ref()
            .map(|s| (s.host.as_str(), s.port)),
        Some(("mail.example.com", 2525))
    );
    assert_eq!(c.instances[0].smtp_alert, None);
    assert_eq!(w.len(), 1, "{w:?}");
}

/// Routes and rules, read as keepalived 2.2.7's `alloc_route` and `alloc_rule` read them.
#[test]
fn routes_and_rules() {
    let text = "static_ipaddress {\n    10.9.0.1/24 dev eth9\n    10.9.0.2/24\n}\n\
static_routes {\n    10.8.0.0/16 via 10.9.0.254 dev eth9 table main metric 7\n    \
blackhole 10.7.0.0/16 table 100 protocol static no_track\n}\n\
static_rules {\n    from 10.9.0.0/24 lookup 100 priority 90\n    to 10.6.0.0/16 table 101\n}\n\
vrrp_instance VI_1 {\n    interface eth0\n    virtual_router_id 1\n    \
virtual_ipaddress {\n        192.0.2.1/24\n    }\n    virtual_routes {\n        \
src 192.0.2.1 to 198.51.100.0/24 via 192.0.2.254 dev eth0 scope global table 100 \
preference 5\n        2001:db8:1::/48 via 2001:db8::1\n        default gw 192.0.2.9\n        \
10.1.0.0/16 mtu 1400\n    }\n    virtual_rules {\n        from 192.0.2.1 table 100 \
preference 100\n        inet6 fwmark 0x10/0xff iif eth0 unreachable no_track\n        \
from 192.0.2.0/24 pref 5 table 3\n        to 192.0.2.7\n    }\n}\n";
    let (c, w) = vrrp(text);
    assert_eq!(
        warnings(&w),
        vec![
            "t.conf:3:5: static_ipaddress needs `dev IFACE` (the interface of the default route is not looked up); address ignored",
            "t.conf:11:5: Rule has no preference specified - setting to 16384. This is probably not what you want.",
            "t.conf:22:9: \"gw\" for routes is deprecated. Please use \"via\"",
            "t.conf:23:9: virtual_routes: route option `mtu` is not supported; route ignored",
            "t.conf:27:9: Rule has no preference specified - setting to 16384. This is probably not what you want.",
            "t.conf:28:9: virtual_rules: rule option `pref` is not supported; rule ignored",
            "t.conf:29:9: virtual_rules: no action specified for rule; rule ignored",
        ]
    );
    assert_eq!(c.static_addresses.len(), 1);
    assert_eq!(c.static_routes.len(), 2);
    assert_eq!(c.static_routes[0].table, 254);
    assert_eq!(c.static_routes[0].metric, Some(7));
    assert_eq!(c.static_routes[1].kind, RouteKind::Blackhole);
    assert_eq!(c.static_routes[1].protocol(), 4);
    assert_eq!(c.static_rules[0].action, RuleAction::Table(100));
    assert_eq!(c.static_rules[0].priority, 90);
    assert_eq!(c.static_rules[1].priority, 16384);
    let i = &c.instances[0];
    assert_eq!(
        i.virtual_routes[0],
        Route {
            kind: RouteKind::Unicast,
            dst: IpPrefix {
                addr: ip("198.51.100.0"),
                len: 24
            },
            src: Some(ip("192.0.2.1")),
            via: Some(ip("192.0.2.254")),
            dev: Some("eth0".into()),
            scope: Some(0),
            table: 100,
            metric: Some(5),
            protocol: None,
            no_track: false,
        }
    );
    assert_eq!(i.virtual_routes[0].protocol(), 18);
    assert_eq!(i.virtual_routes[1].family(), AddrFamily::Ipv6);
    assert_eq!(i.virtual_routes[1].dst.len, 48);
    assert_eq!(
        i.virtual_routes[2].dst,
        IpPrefix {
            addr: ip("0.0.0.0"),
            len: 0
        }
    );
    assert_eq!(i.virtual_routes.len(), 3);
    assert_eq!(i.virtual_rules.len(), 2);
    let r = &i.virtual_rules[1];
    assert_eq!(r.family, AddrFamily::Ipv6);
    assert_eq!(r.fwmark, Some((16, Some(255))));
    assert_eq!(r.priority, 16384, "the IPv6 counter is separate");
    assert_eq!(r.protocol(), None);
    // And back.
    let (again, _) = vrrp(&c.to_string());
    assert_eq!(again, c);
}

#[test]
fn warnings_not_errors() {
    let text = "global_defs {\n    vrrp_skip_check_adv_addr\n    vrrp_iptables\n    colour blue\n}\nvrrp_instance VI_1 {\n    interface eth0\n    virtual_router_id 1\n    version 3\n    smtp_alert\n    frobnicate 3\n    advert_int 0.015\n    authentication {\n        auth_type PASS\n        auth_pass 123456789\n    }\n    virtual_ipaddress {\n        192.0.2.1\n    }\n}\nlinkbeat_interfaces {\n}\nmystery_block {\n}\n";
    let (c, w) = vrrp(text);
    assert_eq!(
        warnings(&w),
        vec![
            "t.conf:2:5: `vrrp_skip_check_adv_addr` is not supported; ignored",
            "t.conf:3:5: `vrrp_iptables` is not supported; ignored",
            "t.conf:4:5: unknown keyword `colour` in global_defs; ignored",
            "t.conf:11:5: unknown keyword `frobnicate` in vrrp_instance; ignored",
            "t.conf:15:9: auth_pass is longer than 8 bytes; only the first 8 are used, as keepalived does",
            "t.conf:21:1: `linkbeat_interfaces` is not supported; ignored",
            "t.conf:23:1: unknown keyword `mystery_block` in the top level; ignored",
            "t.conf:12:5: advert_int 0.015 is not a multiple of 0.01 s for VRRPv3; using 0.02",
            "t.conf:13:5: authentication is not part of VRRPv3; ignored (as keepalived does)",
        ]
    );
    let i = &c.instances[0];
    assert_eq!(i.auth_pass, None);
    assert_eq!(i.advert_int, Duration::from_millis(20));
}

#[test]
fn v2_advert_int_is_rounded_and_password_truncated() {
    let (c, w) = vrrp(&inst(
        "    advert_int 1.5\n    authentication {\n        auth_type PASS\n        auth_pass 0123456789\n    }",
    ));
    let i = &c.instances[0];
    assert_eq!(i.advert_int, Duration::from_secs(2));
    assert_eq!(i.auth_pass.as_deref(), Some(&b"01234567"[..]));
    assert_eq!(w.len(), 2, "{w:?}");
    assert_eq!(
        w[1].to_string(),
        "t.conf:4:5: advert_int 1.5 is not a multiple of 1 s for VRRPv2; using 2"
    );
    // Cutting a multi-byte character is refused rather than guessed.
    let e = vrrp_err(&inst(
        "    authentication {\n        auth_type PASS\n        auth_pass abcdefgé\n    }",
    ));
    assert!(e.starts_with("t.conf:6:9: auth_pass is cut"), "{e}");
}

#[test]
fn accept_and_version_resolution() {
    let (c, _) = vrrp(&("global_defs {\n vrrp_strict\n}\n".to_string() + &inst("    accept")));
    assert!(c.instances[0].accept);
    let (c, _) = vrrp(&inst("    no_accept\n    use_vmac vm1"));
    assert!(!c.instances[0].accept);
    assert_eq!(c.instances[0].use_vmac.as_deref(), Some("vm1"));
    let (c, _) = vrrp(&("global_defs {\n vrrp_version 3\n}\n".to_string() + &inst("")));
    assert_eq!(c.instances[0].version, 3);
    let (c, _) =
        vrrp(&("global_defs {\n vrrp_version 3\n}\n".to_string() + &inst("    version 2")));
    assert_eq!(c.instances[0].version, 2);
}

#[test]
fn equality_ignores_positions() {
    let (a, _) = vrrp(&inst("    priority 50"));
    let (b, _) = vrrp(&format!("\n\n# moved down\n{}", inst("    priority 50")));
    assert_ne!(a.instances[0].pos.line, b.instances[0].pos.line);
    assert_eq!(a, b);
    let (c, _) = vrrp(&inst("    priority 51"));
    assert_ne!(a, c);
}

// ---------------------------------------------------------------------------------------------
// Process tracking: `vrrp_track_process` and `track_process`, as keepalived 2.2.7 reads them

/// `vrrp_track_process p { BODY }` (the body starts on line 2): the process kept, if any, and
/// the warnings.
fn tprocess(body: &str) -> (Option<VrrpTrackProcess>, Vec<String>) {
    let (c, w) = vrrp(&format!("vrrp_track_process p {{\n{body}\n}}\n"));
    assert!(c.track_processes.len() <= 1);
    (c.track_processes.into_iter().next(), warnings(&w))
}

/// keepalived's defaults for a process named `process`.
fn tp_default(process: &str) -> VrrpTrackProcess {
    VrrpTrackProcess {
        name: "p".into(),
        pos: SourcePos(pos()),
        process: process.into(),
        params: Vec::new(),
        param_match: None,
        weight: 0,
        weight_reverse: false,
        quorum: 1,
        quorum_max: None,
        fork_delay: Duration::ZERO,
        terminate_delay: Duration::ZERO,
        full_command: false,
    }
}

#[test]
fn track_process_defaults() {
    let (p, w) = tprocess("    process nginx");
    assert!(w.is_empty(), "{w:?}");
    let p = p.unwrap();
    // keepalived's structure is zeroed, then quorum 1 and no maximum: weight 0 (not the man
    // page's 1), no delay, the process name matched without parameters.
    assert_eq!(p, tp_default("nginx"));
    assert_eq!(p.pos.line, 1);
    assert_eq!(p.quorum_range(), 1..=u32::MAX);
    // A reference without options takes the process's weight and direction.
    let (c, w) = vrrp(&format!(
        "vrrp_track_process p {{\n    process nginx\n}}\n{}",
        inst("    track_process {\n        p\n    }")
    ));
    assert!(w.is_empty(), "{w:?}");
    assert_eq!(
        c.instances[0].track_processes,
        [TrackProcess {
            name: "p".into(),
            weight: None,
            reverse: None
        }]
    );
    // The LVS layer skips the block without a word.
    let (l, w) = parse_lvs_str("vrrp_track_process p {\n    process nginx\n}\n", "t.conf").unwrap();
    assert!(l.virtual_servers.is_empty() && w.is_empty(), "{w:?}");
}

#[test]
fn track_process_settings() {
    let (p, w) = tprocess(
        "    process \"/usr/sbin/my proxy\" -c \"/etc/a b.conf\"\n    param_match initial\n    \
         weight -5 reverse\n    quorum_max 3\n    quorum 2\n    delay 1.5\n    fork_delay 0.25",
    );
    assert!(w.is_empty(), "{w:?}");
    assert_eq!(
        p.unwrap(),
        VrrpTrackProcess {
            params: vec!["-c".into(), "/etc/a b.conf".into()],
            param_match: Some(ParamMatch::Initial),
            weight: -5,
            weight_reverse: true,
            quorum: 2,
            quorum_max: Some(3),
            fork_delay: Duration::from_millis(250),
            terminate_delay: Duration::from_millis(1500),
            full_command: true,
            ..tp_default("/usr/sbin/my proxy")
        }
    );
    // Parameters turn on full_command and an exact match, unless param_match came first.
    let (p, _) = tprocess("    process a b");
    let p = p.unwrap();
    assert_eq!(
        (&p.params[..], p.param_match, p.full_command),
        (&["b".to_string()][..], Some(ParamMatch::Exact), true)
    );
    let (p, _) = tprocess("    param_match partial\n    process a b");
    assert_eq!(p.unwrap().param_match, Some(ParamMatch::Partial));
    // param_match alone: no parameters allowed, the command line matched.
    let (p, _) = tprocess("    process a\n    param_match");
    let p = p.unwrap();
    assert_eq!(
        (p.params.len(), p.param_match, p.full_command),
        (0, Some(ParamMatch::Exact), true)
    );
    assert_eq!(ParamMatch::Exact.word(), None);
    assert_eq!(ParamMatch::Initial.word(), Some("initial"));
    assert_eq!(ParamMatch::Partial.word(), Some("partial"));
    let (p, _) = tprocess("    process a\n    full_command");
    let p = p.unwrap();
    assert_eq!((p.param_match, p.full_command), (None, true));
    // An empty quoted parameter is a parameter.
    let (p, _) = tprocess("    process a \"\"");
    assert_eq!(p.unwrap().params, [""]);
    // `quorum_max 0` with the default quorum: the check holds while no such process runs.
    let (p, w) = tprocess("    process a\n    quorum_max 0");
    let p = p.unwrap();
    assert!(w.is_empty(), "{w:?}");
    assert_eq!((p.quorum, p.quorum_max), (0, Some(0)));
    assert_eq!(p.quorum_range(), 0..=0);
    // A later maximum brings the quorum back to 1.
    let (p, _) = tprocess("    process a\n    quorum_max 0\n    quorum_max 4");
    let p = p.unwrap();
    assert_eq!((p.quorum, p.quorum_max), (1, Some(4)));
    // A weight after `weight 0 ...` is taken, the direction stays.
    let (p, w) = tprocess("    process a\n    weight 0 reverse\n    weight 6");
    let p = p.unwrap();
    assert!(w.is_empty(), "{w:?}");
    assert_eq!((p.weight, p.weight_reverse), (6, true));
    // Delays: microseconds, 1 µs..=1 h.
    for (body, fork, term) in [
        ("    delay 2", 2_000_000, 2_000_000),
        ("    delay 2\n    fork_delay 0.5", 500_000, 2_000_000),
        ("    terminate_delay 0.000001", 0, 1),
        ("    fork_delay 2147.483647", 2_147_483_647, 0),
        ("    delay .5", 500_000, 500_000),
        ("    delay 1.", 1_000_000, 1_000_000),
    ] {
        let (p, w) = tprocess(&format!("    process a\n{body}"));
        let p = p.unwrap();
        assert!(w.is_empty(), "{body}: {w:?}");
        assert_eq!(
            (p.fork_delay, p.terminate_delay),
            (Duration::from_micros(fork), Duration::from_micros(term)),
            "{body}"
        );
    }
}

#[test]
fn track_process_warnings_like_keepalived() {
    let cases: &[(&str, &str)] = &[
        (
            "    weight 3",
            "t.conf:1:1: vrrp_track_process `p` has no `process`; removed, as keepalived does",
        ),
        (
            "    process a\n    process b",
            "t.conf:3:5: vrrp_track_process `p`: process already set; this `process` line is \
             ignored, as keepalived does",
        ),
        (
            "    process",
            "t.conf:2:5: `process` needs a process name or path; line ignored\n\
             t.conf:1:1: vrrp_track_process `p` has no `process`; removed, as keepalived does",
        ),
        (
            "    process a\n    param_match fuzzy",
            "t.conf:3:5: param_match: `fuzzy` is not `initial` or `partial` (or nothing, for an \
             exact match); line ignored",
        ),
        (
            "    process a\n    weight 255",
            "t.conf:3:5: weight must be -254..=254, got 255; line ignored",
        ),
        (
            "    process a\n    weight",
            "t.conf:3:5: `weight` needs a weight; line ignored",
        ),
        (
            "    process a\n    weight 5\n    weight 6",
            "t.conf:4:5: vrrp_track_process `p`: weight already set to 5; `6` ignored, as \
             keepalived does",
        ),
        (
            "    process a\n    weight 5 sideways",
            "t.conf:3:5: vrrp_track_process `p`: unknown weight option `sideways` (only \
             `reverse`); ignored",
        ),
        (
            "    process a\n    quorum 0",
            "t.conf:3:5: quorum must be 1..=65535, got 0; line ignored",
        ),
        (
            "    process a\n    quorum 65536",
            "t.conf:3:5: quorum must be 1..=65535, got 65536; line ignored",
        ),
        (
            "    process a\n    quorum_max -1",
            "t.conf:3:5: quorum_max must be 0..=65535, got -1; line ignored",
        ),
        (
            "    process a\n    quorum 2\n    quorum_max 0",
            "t.conf:4:5: vrrp_track_process `p`: quorum_max 0 is less than quorum 2; ignored, as \
             keepalived does",
        ),
        (
            "    process a\n    quorum 3\n    quorum_max 2",
            "t.conf:4:5: vrrp_track_process `p`: quorum_max 2 is less than quorum 3; ignored, as \
             keepalived does",
        ),
        (
            "    process a\n    quorum_max 2\n    quorum 3",
            "t.conf:4:5: vrrp_track_process `p`: quorum 3 is greater than quorum_max 2; ignored, \
             as keepalived does",
        ),
        (
            "    process a\n    quorum_max 0\n    quorum 1",
            "t.conf:4:5: vrrp_track_process `p`: quorum 1 is greater than quorum_max 0; ignored, \
             as keepalived does",
        ),
        (
            "    process a\n    delay 0",
            "t.conf:3:5: delay must be 0.000001..=3600 seconds, got 0; line ignored",
        ),
        (
            "    process a\n    fork_delay 3600.000001",
            "t.conf:3:5: fork_delay must be 0.000001..=3600 seconds, got 3600.000001; line ignored",
        ),
        (
            "    process a\n    terminate_delay -1",
            "t.conf:3:5: terminate_delay must be 0.000001..=3600 seconds, got -1; line ignored",
        ),
        (
            "    process a\n    delay 1e3",
            "t.conf:3:5: delay: `1e3` is not a number of seconds (digits, optionally with a \
             decimal point); line ignored",
        ),
        (
            "    process a\n    delay .",
            "t.conf:3:5: delay must be 0.000001..=3600 seconds, got .; line ignored",
        ),
        (
            "    process a\n    delay",
            "t.conf:3:5: `delay` needs a number of seconds; line ignored",
        ),
        (
            "    process a\n    colour blue",
            "t.conf:3:5: unknown keyword `colour` in vrrp_track_process; ignored",
        ),
        (
            "    process a\n    quorum 2 3",
            "t.conf:3:5: `quorum` takes 1 argument(s); extra words ignored",
        ),
    ];
    for (body, want) in cases {
        let (_, w) = tprocess(body);
        assert_eq!(w.join("\n"), *want, "{body}");
    }
    // The values keepalived keeps after those lines.
    let (p, _) = tprocess("    process a\n    process b\n    weight 5 sideways\n    weight 6");
    let p = p.unwrap();
    assert_eq!(
        (p.process.as_str(), p.weight, p.weight_reverse),
        ("a", 5, false)
    );
    let (p, _) = tprocess("    process a\n    weight 300\n    quorum 0\n    param_match x");
    assert_eq!(p.unwrap(), tp_default("a"));
    let (p, _) = tprocess("    process a\n    quorum 2\n    quorum_max 0");
    let p = p.unwrap();
    assert_eq!((p.quorum, p.quorum_max), (2, None));
    // A seventh decimal place rounds to the microsecond (the digit after the sixth decides).
    for (value, micros) in [
        ("1.0000005", 1_000_001),
        ("1.0000004", 1_000_000),
        ("1.00000049", 1_000_000),
        ("2147.4836474", 2_147_483_647),
    ] {
        let (p, w) = tprocess(&format!("    process a\n    delay {value}"));
        let p = p.unwrap();
        assert_eq!(p.fork_delay, Duration::from_micros(micros), "{value}");
        assert_eq!(p.terminate_delay, p.fork_delay);
        assert_eq!(
            w,
            [format!(
                "t.conf:3:5: delay: `{value}` has more than 6 decimal places; rounded to the \
                 microsecond, as keepalived does"
            )]
        );
    }
    let (p, w) = tprocess("    process a\n    delay 3600.0000005");
    assert_eq!(p.unwrap().fork_delay, Duration::ZERO);
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(w[1].ends_with("got 3600.0000005; line ignored"), "{w:?}");
}

#[test]
fn track_process_delays_keepalived_would_never_end_are_refused() {
    assert_eq!(MAX_PROCESS_DELAY, Duration::from_micros(2_147_483_647));
    // keepalived reads up to 3600 s into a C int of microseconds: past 2147.483647 s the delay
    // wraps negative and never ends.
    for (line, value) in [
        ("fork_delay 3600", "3600"),
        ("terminate_delay 2147.483648", "2147.483648"),
        ("delay 2147.4836475", "2147.4836475"),
    ] {
        let keyword = line.split(' ').next().unwrap();
        assert_eq!(
            vrrp_err(&format!(
                "vrrp_track_process p {{\n    process a\n    {line}\n}}\n"
            )),
            format!(
                "t.conf:3:5: {keyword} {value}: keepalived 2.2.7 keeps a delay in microseconds \
                 in a C int, so one over 2147.483647 seconds wraps negative and never ends: use \
                 at most 2147.483647"
            )
        );
    }
}

#[test]
fn track_process_blocks_refused() {
    assert_eq!(
        vrrp_err("vrrp_track_process {\n    process a\n}\n"),
        "t.conf:1:1: `vrrp_track_process` needs a track process name"
    );
    assert_eq!(
        vrrp_err("vrrp_track_process p\n"),
        "t.conf:1:1: `vrrp_track_process` needs a `{ ... }` block"
    );
    // keepalived keeps both and finds the first: which one is meant is not clear.
    assert_eq!(
        vrrp_err(
            "vrrp_track_process p {\n    process a\n}\nvrrp_track_process p {\n    process b\n}\n"
        ),
        "t.conf:4:1: vrrp_track_process `p` is already defined at t.conf:1:1: rename or remove one"
    );
    // One removed for want of `process` leaves the name free.
    let (c, w) =
        vrrp("vrrp_track_process p {\n    weight 2\n}\nvrrp_track_process p {\n    process b\n}\n");
    assert_eq!(c.track_processes, [tp_default("b")]);
    assert_eq!(w.len(), 1, "{w:?}");
}

/// Two processes (`p` weight 10, `q` weight -4 reverse), then `rest`.
fn with_processes(rest: &str) -> (VrrpConf, Vec<String>) {
    let (c, w) = vrrp(&format!(
        "vrrp_track_process p {{\n    process nginx\n    weight 10\n}}\n\
         vrrp_track_process q {{\n    process sshd\n    weight -4 reverse\n}}\n{rest}"
    ));
    (c, warnings(&w))
}

fn tref(name: &str, weight: Option<i32>, reverse: Option<bool>) -> TrackProcess {
    TrackProcess {
        name: name.into(),
        weight,
        reverse,
    }
}

#[test]
fn track_process_references_like_keepalived() {
    // The instance starts on line 9, its body on line 12.
    let (c, w) = with_processes(&inst(
        "    track_process {\n        p\n        q weight 7 noreverse\n        p weight 2\n        \
         r\n        later\n        q weight\n        q heavy\n    }\n    track_process {\n        \
         q weight 300 reverse\n    }",
    ));
    assert_eq!(
        c.instances[0].track_processes,
        [tref("p", None, None), tref("q", Some(7), Some(false))]
    );
    assert_eq!(
        w,
        [
            "t.conf:15:9: (VI_1) duplicate track_process `p`; ignored",
            "t.conf:16:9: (VI_1) vrrp_track_process `r` is not defined above this line \
             (keepalived only finds those defined before the reference); reference ignored",
            "t.conf:17:9: (VI_1) vrrp_track_process `later` is not defined above this line \
             (keepalived only finds those defined before the reference); reference ignored",
            "t.conf:18:9: (VI_1) duplicate track_process `q`; ignored",
            "t.conf:19:9: (VI_1) duplicate track_process `q`; ignored",
            "t.conf:22:9: (VI_1) duplicate track_process `q`; ignored",
        ]
    );
    // Option errors, one entry each (the instance's body starts on line 12).
    let cases: &[(&str, Option<TrackProcess>, &str)] = &[
        (
            "q weight",
            None,
            "t.conf:13:9: (VI_1) track_process `q`: `weight` without a value; entry ignored",
        ),
        (
            "q heavy",
            None,
            "t.conf:13:9: (VI_1) track_process `q`: unknown option `heavy` (only `weight N \
             [reverse|noreverse]`); entry ignored",
        ),
        (
            "q weight 300 reverse",
            Some(tref("q", Some(-4), Some(true))),
            "t.conf:13:9: (VI_1) track_process `q`: weight `300` is not a whole number in \
             -254..=254; the process's weight -4 is used",
        ),
        (
            "p weight 5 sideways",
            Some(tref("p", Some(5), None)),
            "t.conf:13:9: (VI_1) track_process `p`: unknown weight option `sideways` (reverse \
             or noreverse); ignored",
        ),
        (
            "p weight -254 reverse x",
            Some(tref("p", Some(-254), Some(true))),
            "t.conf:13:9: `p` takes 3 argument(s); extra words ignored",
        ),
        (
            "p weight 0 reverse",
            Some(tref("p", Some(0), Some(true))),
            "",
        ),
    ];
    for (line, want, warning) in cases {
        let (c, w) = with_processes(&inst(&format!(
            "    track_process {{\n        {line}\n    }}"
        )));
        assert_eq!(
            c.instances[0].track_processes,
            want.iter().cloned().collect::<Vec<_>>(),
            "{line}"
        );
        assert_eq!(w.join("\n"), *warning, "{line}");
    }
    // A process defined below the reference is not found, as in keepalived.
    let (c, w) = vrrp(&format!(
        "{}vrrp_track_process p {{\n    process nginx\n}}\n",
        inst("    track_process {\n        p\n    }")
    ));
    assert!(c.instances[0].track_processes.is_empty());
    assert_eq!(c.track_processes.len(), 1);
    assert_eq!(
        warnings(&w),
        [
            "t.conf:5:9: (VI_1) vrrp_track_process `p` is not defined above this line (keepalived \
          only finds those defined before the reference); reference ignored"
        ]
    );
    // Nor is one removed for want of `process`.
    let (c, w) = vrrp(&format!(
        "vrrp_track_process p {{\n    weight 1\n}}\n{}",
        inst("    track_process {\n        p\n    }")
    ));
    assert!(c.instances[0].track_processes.is_empty());
    assert_eq!(w.len(), 2, "{w:?}");
}

#[test]
fn track_process_in_sync_groups_and_owners_like_keepalived() {
    let two = |a_body: &str, group_body: &str| {
        format!(
            "vrrp_instance A {{\n    interface eth0\n    virtual_router_id 1\n{a_body}\n    \
             virtual_ipaddress {{\n        192.0.2.1\n    }}\n}}\n\
             vrrp_instance B {{\n    interface eth0\n    virtual_router_id 2\n    \
             virtual_ipaddress {{\n        192.0.2.2\n    }}\n}}\n\
             vrrp_sync_group G {{\n    group {{\n        A\n        B\n    }}\n{group_body}\n}}\n"
        )
    };
    // Members keep their weighted processes (keepalived 2.2.7's weight-0 rule for sync groups
    // does not cover them), and the group's own are kept with their weights.
    let (c, w) = with_processes(&two(
        "    track_process {\n        p\n        q weight 3\n    }",
        "    track_process {\n        p weight 6\n        q\n        nope\n    }",
    ));
    assert_eq!(
        c.instances[0].track_processes,
        [tref("p", None, None), tref("q", Some(3), None)]
    );
    assert_eq!(
        c.sync_groups[0].track_processes,
        [tref("p", Some(6), None), tref("q", None, None)]
    );
    assert_eq!(
        w,
        [
            "t.conf:35:9: (G) vrrp_track_process `nope` is not defined above this line (keepalived \
          only finds those defined before the reference); reference ignored"
        ]
    );
    // The address owner keeps its weighted processes too.
    let (c, w) = with_processes(&inst(
        "    priority 255\n    track_process {\n        p\n        q weight 3\n    }",
    ));
    assert_eq!(
        c.instances[0].track_processes,
        [tref("p", None, None), tref("q", Some(3), None)]
    );
    assert!(w.is_empty(), "{w:?}");
    // A group with an address owner: its weighted processes get weight 0 (the direction
    // stays), its unweighted ones are untouched.
    let (c, w) = with_processes(&two(
        "    state MASTER",
        "    track_process {\n        p\n        q weight 0\n        p weight 2 reverse\n    }",
    ));
    assert_eq!(c.instances[0].priority, 255);
    assert_eq!(
        c.sync_groups[0].track_processes,
        [tref("p", Some(0), None), tref("q", Some(0), None)]
    );
    assert_eq!(
        w,
        [
            "t.conf:32:9: (G) duplicate track_process `p`; ignored",
            "t.conf:24:1: (G) weighted track process p with a member of priority 255 (address \
             owner); weight set to 0, as keepalived does",
        ]
    );
    let (c, _) = with_processes(&two(
        "    priority 255",
        "    track_process {\n        q weight 5 noreverse\n    }",
    ));
    assert_eq!(
        c.sync_groups[0].track_processes,
        [tref("q", Some(0), Some(false))]
    );
    // References in a sync group defined above the process are not found either.
    let (c, w) = vrrp(&format!(
        "{}vrrp_track_process p {{\n    process a\n}}\n",
        two("", "    track_process {\n        p\n    }")
    ));
    assert!(c.sync_groups[0].track_processes.is_empty());
    assert_eq!(w.len(), 1, "{w:?}");
}

#[test]
fn track_process_renders_back() {
    let (c, w) = with_processes(&inst(
        "    track_process {\n        p weight 0 reverse\n        q\n    }",
    ));
    assert!(w.is_empty(), "{w:?}");
    let (mut c2, _) = vrrp(
        "vrrp_track_process z {\n    process a \"b c\" \"\"\n    param_match partial\n    \
         quorum_max 0\n    delay 0.000001\n    full_command\n}\n",
    );
    let mut conf = c.clone();
    conf.track_processes.append(&mut c2.track_processes);
    let text = conf.to_string();
    assert!(
        text.contains(
            "vrrp_track_process z {\n    process a \"b c\" \"\"\n    param_match partial\n    \
             weight 0\n    quorum_max 0\n    fork_delay 0.000001\n    terminate_delay \
             0.000001\n    full_command\n}\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("    track_process {\n        p weight 0 reverse\n        q\n    }\n"),
        "{text}"
    );
    let (back, w) = vrrp(&text);
    assert!(w.is_empty(), "{w:?}");
    assert_eq!(back, conf);
}

// ---------------------------------------------------------------------------------------------
// Includes

#[test]
fn includes_with_globs() {
    let (c, w) = parse_vrrp(&data("main.conf")).unwrap();
    assert_eq!(c.global.router_id.as_deref(), Some("from_include"));
    assert_eq!(c.instances[0].track_scripts[0].weight, Some(5));
    let w = warnings(&w);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].ends_with("main.conf:4:1: include `nothing/*.conf` matches no file"),
        "{w:?}"
    );
    // Positions name the included file.
    assert!(c.instances[0].pos.file.ends_with("conf.d/20-vi1.conf"));
    let (l, _) = parse_lvs(&data("main.conf")).unwrap();
    assert_eq!(l.virtual_servers.len(), 1);
    assert_eq!(l.virtual_servers[0].lb_algo, LbAlgo::Rr);
}

#[test]
fn include_loops_are_errors() {
    let e = parse_vrrp(&data("loop/a.conf")).unwrap_err().to_string();
    let b = data("loop/b.conf");
    assert_eq!(
        e,
        format!(
            "{}:2:1: include loop: {} is already being read; remove the include",
            b.display(),
            data("loop/b.conf")
                .parent()
                .unwrap()
                .join("a.conf")
                .display()
        )
    );
    let e = parse_vrrp(&data("loop/self.conf")).unwrap_err().to_string();
    assert!(e.contains("self.conf:1:3: include loop"), "{e}");
}

#[test]
fn include_depth_limit_and_unreadable() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("kaconf-depth");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for k in 0..12 {
        std::fs::write(
            dir.join(format!("d{k}.conf")),
            format!("include d{}.conf\n", k + 1),
        )
        .unwrap();
    }
    std::fs::write(dir.join("d12.conf"), "").unwrap();
    let e = parse_vrrp(&dir.join("d0.conf")).unwrap_err().to_string();
    assert!(
        e.ends_with("d8.conf:1:1: includes nest deeper than 8 levels: flatten them"),
        "{e}"
    );
    // Eight levels are fine.
    std::fs::write(dir.join("d8.conf"), "").unwrap();
    parse_vrrp(&dir.join("d0.conf")).unwrap();
    // A directory named literally cannot be read.
    std::fs::create_dir_all(dir.join("sub.conf")).unwrap();
    std::fs::write(dir.join("top.conf"), "\n  include sub.conf\n").unwrap();
    let e = parse_vrrp(&dir.join("top.conf")).unwrap_err();
    assert!(matches!(e, ConfError::ReadInclude { .. }), "{e:?}");
    assert!(
        e.to_string()
            .contains("top.conf:2:3: cannot read included file"),
        "{e}"
    );
    // Include errors: no pattern, a block.
    assert_eq!(
        vrrp_err("include\n"),
        "t.conf:1:1: `include` needs a file name or pattern"
    );
    assert_eq!(
        vrrp_err("include x {\n}\n"),
        "t.conf:1:1: `include` takes no `{ ... }` block: remove the block"
    );
    let (_, w) =
        parse_tree_str("include /etc/*\n", "t.conf", &Options::without_includes()).unwrap();
    assert_eq!(
        warnings(&w),
        vec!["t.conf:1:1: include `/etc/*` skipped: includes are disabled"]
    );
}

// ---------------------------------------------------------------------------------------------
// LVS

/// `smtp_alert` of virtual and real servers, resolved as keepalived 2.2.7's
/// `validate_check_config` does: own value, `smtp_alert_checker`, `smtp_alert`, then yes for a
/// real server and no for a virtual server.
#[test]
fn lvs_smtp_alert() {
    let conf = |global: &str, vs_line: &str, rs_line: &str| {
        let text = format!(
            "global_defs {{\n{global}\n}}\nvirtual_server 10.0.0.1 80 {{\n    protocol TCP\n    \
             lb_algo rr\n    lb_kind NAT\n{vs_line}\n    real_server 10.0.0.9 80 {{\n{rs_line}\n    \
             }}\n}}\n"
        );
        let (lvs, w) = parse_lvs_str(&text, "t.conf").unwrap();
        let (vrrp, _) = parse_vrrp_str(&text, "t.conf").unwrap();
        let vs = lvs.virtual_servers[0].clone();
        assert_eq!(parse_lvs_str(&lvs.to_string(), "r.conf").unwrap().0, lvs);
        (
            vs.smtp_alert(&vrrp.global),
            vs.real_servers[0].smtp_alert(&vrrp.global),
            vs,
            warnings(&w),
        )
    };
    let (v, r, vs, w) = conf("", "", "");
    assert_eq!((v, r), (false, true));
    assert_eq!((vs.smtp_alert, vs.real_servers[0].smtp_alert), (None, None));
    assert!(w.is_empty(), "{w:?}");
    let (v, r, ..) = conf(" smtp_alert off", "", "");
    assert_eq!((v, r), (false, false));
    let (v, r, ..) = conf(" smtp_alert", "", "");
    assert_eq!((v, r), (true, true));
    let (v, r, ..) = conf(" smtp_alert on\n smtp_alert_checker no", "", "");
    assert_eq!((v, r), (false, false));
    // smtp_alert_vrrp is for VRRP instances only.
    let (v, r, ..) = conf(" smtp_alert_vrrp no", "", "");
    assert_eq!((v, r), (false, true));
    let (v, r, vs, _) = conf(
        " smtp_alert_checker no",
        "    smtp_alert",
        "        smtp_alert yes",
    );
    assert_eq!((v, r), (true, true));
    assert_eq!(
        (vs.smtp_alert, vs.real_servers[0].smtp_alert),
        (Some(true), Some(true))
    );
    let (v, r, ..) = conf(
        " smtp_alert",
        "    smtp_alert false",
        "        smtp_alert off",
    );
    assert_eq!((v, r), (false, false));
    // keepalived's booleans only: anything else is warned about and ignored.
    let (_, r, vs, w) = conf(" smtp_alert no", "", "        smtp_alert maybe");
    assert!(!r);
    assert_eq!(vs.real_servers[0].smtp_alert, None);
    assert_eq!(
        w,
        ["t.conf:10:9: `smtp_alert`: invalid value `maybe` (true/on/yes or false/off/no); ignored"]
    );
}

#[test]
fn lvs_full_and_errors() {
    let text = r#"
virtual_server fwmark 7 {
    lb_algo mh
    lb_kind TUN
    persistence_granularity 255.255.255.0
    quorum 2
    hysteresis 1
    virtualhost www.example.com
    sorry_server 10.0.0.250 8080
    real_server 10.0.0.1 {
        inhibit_on_failure
        weight 2
        HTTP_GET {
            url {
                path /health
                status_code 200
                digest 9B3A0C85A887A256D6939DA88AABD8CD
            }
            connect_timeout 3.5
            retry 2
        }
        notify_up "/bin/up 1"
        notify_down /bin/down
        SSL_GET {
        }
    }
}
virtual_server 2001:db8::1 443 {
    persistence_granularity 64
    protocol TCP
    lb_algo rr
    lb_kind NAT
    real_server 2001:db8::2 8443 {
    }
}
virtual_server_group G {
}
"#;
    let (c, w) = parse_lvs_str(text, "t.conf").unwrap();
    assert_eq!(
        warnings(&w),
        vec![
            "t.conf:24:9: `SSL_GET` is not supported; this checker is ignored",
            "t.conf:36:1: `virtual_server_group` is not supported; ignored",
        ]
    );
    let vs = &c.virtual_servers[0];
    assert_eq!(vs.addr, VsAddr::Fwmark(7));
    assert_eq!(
        vs.persistence_granularity,
        Some(Granularity::Mask("255.255.255.0".parse().unwrap()))
    );
    let rs = &vs.real_servers[0];
    assert_eq!(rs.notify_up.as_deref(), Some("/bin/up 1"));
    let Check::Http { connect, urls } = &rs.checks[0] else {
        panic!()
    };
    assert_eq!(connect.connect_timeout, Duration::from_millis(3500));
    assert_eq!(
        urls[0].digest.as_deref(),
        Some("9b3a0c85a887a256d6939da88aabd8cd")
    );
    assert_eq!(
        c.virtual_servers[1].persistence_granularity,
        Some(Granularity::Prefix(64))
    );
    assert_eq!(parse_lvs_str(&c.to_string(), "r.conf").unwrap().0, c);

    let vs = |body: &str| {
        format!(
            "virtual_server 10.0.0.1 80 {{\n{body}\n    protocol TCP\n    lb_algo rr\n    \
             lb_kind NAT\n    real_server 10.0.0.9 80 {{\n    }}\n}}\n"
        )
    };
    let cases: &[(&str, &str)] = &[
        (
            "    lb_algo fastest",
            "t.conf:2:5: lb_algo: `fastest` is not a scheduler: rr wrr lc wlc sed nq dh sh lblc lblcr mh fo ovf twos; line ignored",
        ),
        (
            "    lb_kind FAST",
            "t.conf:2:5: lb_kind: `FAST` is not NAT, DR or TUN; line ignored",
        ),
        (
            "    protocol ICMP",
            "t.conf:2:5: protocol: `ICMP` is not TCP, UDP or SCTP; line ignored",
        ),
        (
            "    delay_loop 0",
            "t.conf:2:5: delay_loop must be 0.001..=86400 seconds, got 0; line ignored",
        ),
        (
            "    sorry_server 10.0.0.2 70000",
            "t.conf:2:5: sorry_server must be 0..=65535, got 70000; line ignored",
        ),
        (
            "    real_server 10.0.0.2 80 {\n        weight 70000\n    }",
            "t.conf:3:9: weight must be 0..=65535, got 70000; line ignored",
        ),
        (
            "    real_server 10.0.0.2 80 {\n    }\n    real_server 10.0.0.2 80 {\n    }",
            "t.conf:4:5: real_server `10.0.0.2 80` is already defined at t.conf:2:5; this one is ignored",
        ),
        ("    real_server 10.0.0.2 {\n    }", ""),
        (
            "    real_server 10.0.0.2 80",
            "t.conf:2:5: `real_server` needs a `{ ... }` block; line ignored",
        ),
        (
            "    real_server 10.0.0.2 80 {\n        HTTP_GET {\n        }\n    }",
            "t.conf:3:9: HTTP_GET has no url; the checker is ignored, as keepalived does",
        ),
        (
            "    real_server 10.0.0.2 80 {\n        HTTP_GET {\n            url {\n                path /\n                digest abc\n            }\n        }\n    }",
            "t.conf:6:17: digest: `abc` is not an MD5 digest: 32 hex digits; line ignored",
        ),
        (
            "    real_server 10.0.0.2 80 {\n        HTTP_GET {\n            url {\n            }\n        }\n    }",
            "t.conf:4:13: url has no `path`; ignored, as keepalived does\nt.conf:3:9: HTTP_GET has no url; the checker is ignored, as keepalived does",
        ),
        (
            "    real_server 10.0.0.2 80 {\n        TCP_CHECK {\n            connect_port 0\n        }\n    }",
            "t.conf:4:13: connect_port must be 1..=65535, got 0; line ignored",
        ),
        (
            "    real_server 10.0.0.2 80 {\n        TCP_CHECK {\n            connect_ip nowhere\n        }\n    }",
            "t.conf:4:13: connect_ip: `nowhere` is not an IPv4 or IPv6 address; line ignored",
        ),
    ];
    // keepalived ignores what it cannot use, with a message; so does the reader.
    for (body, want) in cases {
        let got = match parse_lvs_str(&vs(body), "t.conf") {
            Ok((_, w)) => warnings(&w).join("\n"),
            Err(e) => format!("error: {e}"),
        };
        assert_eq!(got, *want, "{body}");
    }
    let lvs_warnings = |text: &str| {
        let (c, w) = parse_lvs_str(text, "t.conf").unwrap();
        (c.virtual_servers.len(), warnings(&w))
    };
    let rs = " protocol TCP\n lb_algo rr\n lb_kind NAT\n real_server 10.0.0.9 53 {\n }\n";
    assert_eq!(
        lvs_warnings(&format!(
            "virtual_server 10.0.0.1 80 {{\n{rs}}}\nvirtual_server 10.0.0.1 80 {{\n{rs}}}\n"
        )),
        (
            1,
            vec![
                "t.conf:8:1: virtual_server `10.0.0.1 80` is already defined at t.conf:1:1; this \
                 one is ignored (IPVS refuses a second service at the same address)"
                    .to_string()
            ]
        )
    );
    assert_eq!(
        lvs_warnings(&format!("virtual_server fwmark x {{\n{rs}}}\n")),
        (
            0,
            vec!["t.conf:1:1: virtual_server: `x` is not a whole number; line ignored".to_string()]
        )
    );
    assert_eq!(
        lvs_warnings(&format!("virtual_server localhost 80 {{\n{rs}}}\n")),
        (
            0,
            vec![
                "t.conf:1:1: virtual_server: `localhost` is not an IPv4 or IPv6 address; line ignored"
                    .to_string()
            ]
        )
    );
    // DR keeps the service's port: two real servers that differ only in their port become one
    // destination, and only the first is kept (the kernel refuses the second).
    let (c, w) = parse_lvs_str(
        "virtual_server 10.0.0.1 80 {\n protocol TCP\n lb_algo rr\n lb_kind DR\n \
         real_server 10.0.0.9 80 {\n  weight 3\n }\n real_server 10.0.0.9 11 {\n }\n}\n",
        "t.conf",
    )
    .unwrap();
    assert_eq!(c.virtual_servers[0].real_servers.len(), 1);
    assert_eq!(c.virtual_servers[0].real_servers[0].weight, 3);
    assert_eq!(
        warnings(&w),
        vec![
            "t.conf:8:2: real_server `10.0.0.9` port 11 does not match virtual_server \
             `10.0.0.1 80` (DR and TUN keep the port); using 80, as keepalived does",
            "t.conf:8:2: real_server `10.0.0.9:80` is the same destination as the one at \
             t.conf:5:2 once its port is fitted to virtual_server `10.0.0.1 80`; the kernel takes \
             only the first, so this one is ignored",
        ]
    );
    // TCP and UDP services on the same address and port are two virtual servers.
    let (c, _) = parse_lvs_str(
        &format!(
            "virtual_server 10.0.0.1 53 {{\n{rs} protocol UDP\n}}\nvirtual_server 10.0.0.1 53 {{\n{rs}}}\n"
        ),
        "t.conf",
    )
    .unwrap();
    assert_eq!(c.virtual_servers.len(), 2);
    // An unknown top-level keyword is reported by the LVS layer too; VRRP blocks are not.
    let (_, w) = parse_lvs_str("vrrp_instance X {\n}\nfoo\n", "t.conf").unwrap();
    assert_eq!(
        warnings(&w),
        vec!["t.conf:3:1: unknown keyword `foo` in the top level; ignored"]
    );
}

// ---------------------------------------------------------------------------------------------
// Property tests: render → parse is the identity; garbage never panics.

fn name() -> impl Strategy<Value = String> {
    "n_[a-zA-Z0-9_.-]{0,8}"
}

fn text() -> impl Strategy<Value = String> {
    // Anything but `"` and line breaks, including spaces, braces, `!` and `#`.
    "[ -!#-~é]{0,16}"
}

fn secs(max_ms: u64) -> impl Strategy<Value = Duration> {
    (0..=max_ms).prop_map(Duration::from_millis)
}

fn v4() -> impl Strategy<Value = IpAddr> {
    any::<[u8; 4]>().prop_map(IpAddr::from)
}

fn v6() -> impl Strategy<Value = IpAddr> {
    any::<[u8; 16]>().prop_map(IpAddr::from)
}

fn any_ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![v4(), v6()]
}

fn vip(v6_family: bool) -> impl Strategy<Value = Vip> {
    let addr = if v6_family {
        v6().boxed()
    } else {
        v4().boxed()
    };
    (
        addr,
        any::<u8>(),
        proptest::option::of(name()),
        proptest::option::of(v4()),
        proptest::option::of(name()),
        proptest::option::of(text()),
    )
        .prop_map(|(addr, p, dev, brd, scope, label)| Vip {
            addr,
            prefix: p % if addr.is_ipv4() { 33 } else { 129 },
            dev,
            brd,
            scope,
            label,
        })
}

fn any_vip() -> impl Strategy<Value = Vip> {
    prop_oneof![vip(false), vip(true)]
}

fn fam_ip(v6f: bool) -> BoxedStrategy<IpAddr> {
    if v6f { v6().boxed() } else { v4().boxed() }
}

fn prefix(v6f: bool) -> impl Strategy<Value = IpPrefix> {
    (fam_ip(v6f), any::<u8>()).prop_map(|(addr, l)| IpPrefix {
        addr,
        len: l % if addr.is_ipv4() { 33 } else { 129 },
    })
}

fn route() -> impl Strategy<Value = Route> {
    any::<bool>().prop_flat_map(|v6f| {
        (
            prop_oneof![
                Just(RouteKind::Unicast),
                Just(RouteKind::Blackhole),
                Just(RouteKind::Unreachable),
                Just(RouteKind::Prohibit),
            ],
            prefix(v6f),
            proptest::option::of(fam_ip(v6f)),
            proptest::option::of(fam_ip(v6f)),
            proptest::option::of(name()),
            proptest::option::of(any::<u8>()),
            1u32..,
            proptest::option::of(any::<u32>()),
            proptest::option::of(any::<u8>()),
            any::<bool>(),
        )
            .prop_map(
                |(kind, dst, src, via, dev, scope, table, metric, protocol, no_track)| Route {
                    kind,
                    dst,
                    src,
                    via,
                    dev,
                    scope,
                    table,
                    metric,
                    protocol,
                    no_track,
                },
            )
    })
}

fn rule() -> impl Strategy<Value = Rule> {
    any::<bool>().prop_flat_map(|v6f| {
        (
            any::<bool>(),
            proptest::option::of(prefix(v6f)),
            proptest::option::of(prefix(v6f)),
            proptest::option::of(name()),
            proptest::option::of(name()),
            proptest::option::of((any::<u32>(), proptest::option::of(any::<u32>()))),
            any::<u32>(),
            prop_oneof![
                (1u32..).prop_map(RuleAction::Table),
                Just(RuleAction::Blackhole),
                Just(RuleAction::Unreachable),
                Just(RuleAction::Prohibit),
            ],
            proptest::option::of(any::<u8>()),
            any::<bool>(),
        )
            .prop_map(
                move |(
                    invert,
                    from,
                    to,
                    iif,
                    oif,
                    fwmark,
                    priority,
                    action,
                    protocol,
                    no_track,
                )| {
                    Rule {
                        family: if v6f {
                            AddrFamily::Ipv6
                        } else {
                            AddrFamily::Ipv4
                        },
                        invert,
                        from,
                        to,
                        iif,
                        oif,
                        fwmark,
                        priority,
                        action,
                        protocol,
                        no_track,
                    }
                },
            )
    })
}

fn pos() -> Pos {
    Pos {
        file: Path::new("gen").into(),
        line: 1,
        col: 1,
    }
}

fn global() -> impl Strategy<Value = GlobalDefs> {
    (
        proptest::option::of(text()),
        2u8..=3,
        (secs(1_000_000), 1u8..=255, secs(86_400_000), 1u8..=255),
        (secs(1000), secs(1000), any::<bool>(), any::<bool>()),
        proptest::option::of((name(), proptest::option::of(name()))),
        smtp(),
    )
        .prop_map(
            |(router_id, vrrp_version, g, (gi, gna, sec, strict), user, smtp)| GlobalDefs {
                router_id,
                vrrp_version,
                garp_master_delay: g.0,
                garp_master_repeat: g.1,
                garp_master_refresh: g.2,
                garp_master_refresh_repeat: g.3,
                garp_interval: gi,
                gna_interval: gna,
                enable_script_security: sec,
                script_user: user.map(|(user, group)| ScriptUser { user, group }),
                vrrp_strict: strict,
                smtp,
            },
        )
}

fn smtp() -> impl Strategy<Value = SmtpSettings> {
    (
        proptest::collection::vec("[a-z0-9.]{1,8}@[a-z0-9.]{1,8}", 0..3),
        proptest::option::of(name()),
        proptest::option::of((
            prop_oneof![any_ip().prop_map(|a| a.to_string()), name()],
            1u16..,
        )),
        (1u64..=4294).prop_map(Duration::from_secs),
        proptest::option::of(name()),
        [
            proptest::option::of(any::<bool>()),
            proptest::option::of(any::<bool>()),
            proptest::option::of(any::<bool>()),
        ],
    )
        .prop_map(
            |(to, from, server, connect_timeout, helo_name, [a, v, c])| SmtpSettings {
                to,
                from,
                server: server.map(|(host, port)| SmtpServer { host, port }),
                connect_timeout,
                helo_name,
                alert: a,
                alert_vrrp: v,
                alert_checker: c,
            },
        )
}

fn script(sname: String) -> impl Strategy<Value = VrrpScript> {
    (
        text(),
        (1u64..=86_400_000).prop_map(Duration::from_millis),
        proptest::option::of((1u64..=86_400_000).prop_map(Duration::from_millis)),
        -254i32..=254,
        any::<bool>(),
        (1u32.., 1u32..),
        proptest::option::of((name(), proptest::option::of(name()))),
    )
        .prop_map(
            move |(script, interval, timeout, weight, rev, (rise, fall), user)| VrrpScript {
                name: sname.clone(),
                pos: SourcePos(pos()),
                script,
                interval,
                timeout,
                weight,
                weight_reverse: rev,
                rise,
                fall,
                user: user.map(|(user, group)| ScriptUser { user, group }),
            },
        )
}

/// A `vrrp_track_process` in a state keepalived's reading can reach: parameters imply a
/// `param_match`, which implies `full_command`; a quorum within its maximum, 0 only with
/// `quorum_max 0`; delays 0 or whole microseconds in 1 µs..=2147.483647 s.
fn track_process_def(pname: String) -> impl Strategy<Value = VrrpTrackProcess> {
    let delay = proptest::option::of(1u64..=2_147_483_647)
        .prop_map(|d| d.map_or(Duration::ZERO, Duration::from_micros));
    let quorum = prop_oneof![
        (1u32..=65_535).prop_map(|q| (q, None)),
        Just((0u32, Some(0u32))),
        (1u32..=65_535).prop_flat_map(|m| (1u32..=m).prop_map(move |q| (q, Some(m)))),
    ];
    (
        (text(), proptest::collection::vec(text(), 0..3)),
        proptest::option::of(proptest::sample::select(vec![
            ParamMatch::Exact,
            ParamMatch::Initial,
            ParamMatch::Partial,
        ])),
        (-254i32..=254, any::<bool>()),
        quorum,
        (delay.clone(), delay),
        any::<bool>(),
    )
        .prop_map(
            move |((process, params), mut param_match, (weight, rev), (q, max), (fd, td), fc)| {
                if !params.is_empty() && param_match.is_none() {
                    param_match = Some(ParamMatch::Exact);
                }
                VrrpTrackProcess {
                    name: pname.clone(),
                    pos: SourcePos(pos()),
                    process,
                    params,
                    param_match,
                    weight,
                    weight_reverse: rev,
                    quorum: q,
                    quorum_max: max,
                    fork_delay: fd,
                    terminate_delay: td,
                    full_command: fc || param_match.is_some(),
                }
            },
        )
}

/// `track_process` entries naming some of `names`, each at most once; a direction only after a
/// weight.
fn track_process_refs(names: Vec<String>) -> BoxedStrategy<Vec<TrackProcess>> {
    if names.is_empty() {
        return Just(Vec::new()).boxed();
    }
    let n = names.len();
    (
        proptest::sample::subsequence(names, 0..=n),
        proptest::collection::vec(
            proptest::option::of((-254i32..=254, proptest::option::of(any::<bool>()))),
            n,
        ),
    )
        .prop_map(|(names, opts)| {
            names
                .into_iter()
                .zip(opts)
                .map(|(name, o)| TrackProcess {
                    name,
                    weight: o.map(|(w, _)| w),
                    reverse: o.and_then(|(_, r)| r),
                })
                .collect()
        })
        .boxed()
}

fn garp() -> impl Strategy<Value = GarpSettings> {
    (
        proptest::option::of(secs(1_000_000)),
        proptest::option::of(1u8..=255),
        proptest::option::of(secs(86_400_000)),
        proptest::option::of(1u8..=255),
        proptest::option::of(secs(1000)),
        proptest::option::of(secs(1000)),
    )
        .prop_map(|(a, b, c, d, e, f)| GarpSettings {
            master_delay: a,
            master_repeat: b,
            master_refresh: c,
            master_refresh_repeat: d,
            interval: e,
            gna_interval: f,
        })
}

fn instance(
    idx: usize,
    scripts: Vec<String>,
    processes: Vec<String>,
) -> impl Strategy<Value = VrrpInstance> {
    let family_v6 = any::<bool>();
    family_v6.prop_flat_map(move |v6f| {
        let scripts = scripts.clone();
        let tprocs = track_process_refs(processes.clone());
        let track = if scripts.is_empty() {
            Just(Vec::new()).boxed()
        } else {
            proptest::collection::vec(
                (
                    proptest::sample::select(scripts),
                    proptest::option::of(-254i32..=254),
                ),
                0..3,
            )
            .prop_map(|v| {
                v.into_iter()
                    .map(|(name, weight)| TrackScript { name, weight })
                    .collect()
            })
            .boxed()
        };
        (
            (
                any::<bool>(),
                name(),
                1u8..=255,
                if v6f {
                    Just(3u8).boxed()
                } else {
                    (2u8..=3).boxed()
                },
            ),
            (1u64..=255, 1u64..=4095, any::<bool>(), secs(1_000_000)),
            proptest::option::of("[a-zA-Z0-9]{0,8}"),
            (
                proptest::collection::vec(vip(v6f), 1..4),
                proptest::collection::vec(any_vip(), 0..3),
            ),
            (
                proptest::option::of(any_ip()),
                proptest::option::of(any_ip()),
                proptest::collection::vec(any_ip(), 0..3),
            ),
            (
                proptest::collection::vec((name(), -254i32..=254), 0..3),
                track,
                tprocs,
            ),
            proptest::collection::vec(proptest::option::of(text()), 5),
            (
                proptest::option::of(name()),
                any::<bool>(),
                any::<bool>(),
                garp(),
                any::<bool>(),
            ),
            proptest::option::of(any::<bool>()),
            (
                proptest::collection::vec(route(), 0..3),
                proptest::collection::vec(rule(), 0..3),
            ),
        )
            .prop_map(
                move |(
                    a,
                    b,
                    auth,
                    (mut vips, excluded),
                    (mc, uc, peers),
                    (tifs, tss, tps),
                    notif,
                    last,
                    smtp_alert,
                    (virtual_routes, virtual_rules),
                )| {
                    // An address listed twice is read once.
                    let mut seen = std::collections::HashSet::new();
                    vips.retain(|v: &Vip| seen.insert(v.addr));
                    let (master, interface, priority, version) = a;
                    let (s2, cs3, preempt, preempt_delay) = b;
                    let advert_int = if version == 2 {
                        Duration::from_secs(s2)
                    } else {
                        Duration::from_millis(cs3 * 10)
                    };
                    let (use_vmac, xmit, accept, garp, dtp) = last;
                    VrrpInstance {
                        name: format!("VI_{idx}"),
                        pos: SourcePos(pos()),
                        state: if master {
                            InitialState::Master
                        } else {
                            InitialState::Backup
                        },
                        interface,
                        vrid: u8::try_from(idx + 1).unwrap(),
                        priority,
                        advert_int,
                        version,
                        preempt,
                        preempt_delay,
                        auth_pass: if version == 2 {
                            auth.map(String::into_bytes)
                        } else {
                            None
                        },
                        vips,
                        excluded_vips: excluded,
                        mcast_src_ip: mc,
                        unicast_src_ip: uc,
                        unicast_peers: peers,
                        track_interfaces: tifs
                            .into_iter()
                            .map(|(name, weight)| TrackIf { name, weight })
                            .collect(),
                        track_scripts: tss,
                        track_processes: tps,
                        notify_master: notif[0].clone(),
                        notify_backup: notif[1].clone(),
                        notify_fault: notif[2].clone(),
                        notify_stop: notif[3].clone(),
                        notify: notif[4].clone(),
                        use_vmac,
                        vmac_xmit_base: xmit,
                        accept,
                        garp,
                        dont_track_primary: dtp,
                        smtp_alert,
                        virtual_routes,
                        virtual_rules,
                    }
                },
            )
    })
}

fn vrrp_conf() -> impl Strategy<Value = VrrpConf> {
    (global(), 0usize..3, 0usize..3, 0usize..4).prop_flat_map(
        |(global, n_scripts, n_procs, n_inst)| {
            let names: Vec<String> = (0..n_scripts).map(|k| format!("chk_{k}")).collect();
            let scripts: Vec<_> = names.iter().cloned().map(script).collect();
            let pnames: Vec<String> = (0..n_procs).map(|k| format!("proc_{k}")).collect();
            let procs: Vec<_> = pnames.iter().cloned().map(track_process_def).collect();
            let insts: Vec<_> = (0..n_inst)
                .map(|k| instance(k, names.clone(), pnames.clone()))
                .collect();
            let inst_names: Vec<String> = (0..n_inst).map(|k| format!("VI_{k}")).collect();
            let groups = if n_inst == 0 {
                Just(Vec::new()).boxed()
            } else {
                let track_names = names.clone();
                proptest::collection::vec(
                    (
                        proptest::sample::subsequence(inst_names, 1..=n_inst),
                        proptest::collection::vec(proptest::option::of(text()), 4),
                        if track_names.is_empty() {
                            Just(Vec::new()).boxed()
                        } else {
                            proptest::collection::vec(proptest::sample::select(track_names), 0..2)
                                .boxed()
                        },
                        any::<bool>(),
                        track_process_refs(pnames.clone()),
                    ),
                    0..2,
                )
                .prop_map(|gs| {
                    gs.into_iter()
                        .enumerate()
                        .map(|(k, (instances, n, ts, tracking_weight, tps))| SyncGroup {
                            name: format!("G{k}"),
                            pos: SourcePos(pos()),
                            instances,
                            notify_master: n[0].clone(),
                            notify_backup: n[1].clone(),
                            notify_fault: n[2].clone(),
                            notify: n[3].clone(),
                            track_scripts: ts
                                .into_iter()
                                .map(|name| TrackScript { name, weight: None })
                                .collect(),
                            track_processes: tps,
                            tracking_weight,
                        })
                        .collect()
                })
                .boxed()
            };
            let statics = (
                proptest::collection::vec(
                    (any_vip(), name()).prop_map(|(mut v, d)| {
                        v.dev = Some(d);
                        v
                    }),
                    0..3,
                ),
                proptest::collection::vec(route(), 0..3),
                proptest::collection::vec(rule(), 0..3),
            );
            (Just(global), scripts, procs, insts, groups, statics).prop_map(
                |(global, scripts, track_processes, mut instances, mut sync_groups, statics)| {
                    keepalived_tracking(
                        &scripts,
                        &track_processes,
                        &mut instances,
                        &mut sync_groups,
                    );
                    let (static_addresses, static_routes, static_rules) = statics;
                    VrrpConf {
                        global,
                        scripts,
                        track_processes,
                        instances,
                        sync_groups,
                        static_addresses,
                        static_routes,
                        static_rules,
                    }
                },
            )
        },
    )
}

/// Only what keepalived keeps: no `nopreempt` with `state MASTER`; members of a sync group
/// without `sync_group_tracking_weight`, and address owners, without weighted tracking (but
/// for tracked processes); a sync group with an address owner without weighted processes.
fn keepalived_tracking(
    scripts: &[VrrpScript],
    processes: &[VrrpTrackProcess],
    instances: &mut [VrrpInstance],
    groups: &mut [SyncGroup],
) {
    let mut fixed = std::collections::HashMap::new();
    for g in groups.iter() {
        for name in &g.instances {
            fixed.insert(name.clone(), !g.tracking_weight);
        }
    }
    for i in instances.iter_mut() {
        if i.state == InitialState::Master {
            i.preempt = true;
        }
        let in_sync = fixed.get(&i.name).copied().unwrap_or(false);
        if !in_sync && i.priority != 255 {
            continue;
        }
        i.track_interfaces.retain_mut(|t| {
            let keep = t.weight == 0 || in_sync;
            t.weight = 0;
            keep
        });
        i.track_scripts.retain(|t| {
            let script = scripts
                .iter()
                .find(|s| s.name == t.name)
                .map_or(0, |s| s.weight);
            t.weight.unwrap_or(script) == 0
        });
    }
    for g in groups.iter_mut() {
        let owner = instances
            .iter()
            .any(|i| i.priority == 255 && g.instances.contains(&i.name));
        for t in g.track_processes.iter_mut().filter(|_| owner) {
            let process = processes
                .iter()
                .find(|p| p.name == t.name)
                .map_or(0, |p| p.weight);
            if t.weight.unwrap_or(process) != 0 {
                t.weight = Some(0);
            }
        }
    }
    for g in groups.iter() {
        let members = || instances.iter().filter(|i| g.instances.contains(&i.name));
        let master = members().any(|i| i.state == InitialState::Master);
        let backup = members().any(|i| i.state == InitialState::Backup || i.priority != 255);
        if master && backup {
            for i in instances.iter_mut() {
                if g.instances.contains(&i.name) {
                    i.state = InitialState::Backup;
                }
            }
        }
    }
}

fn connect() -> impl Strategy<Value = Connect> {
    (
        (1u64..=86_400_000).prop_map(Duration::from_millis),
        proptest::option::of(1u16..),
        proptest::option::of(any_ip()),
        any::<u32>(),
        secs(86_400_000),
    )
        .prop_map(
            |(connect_timeout, connect_port, connect_ip, retry, delay_before_retry)| Connect {
                connect_timeout,
                connect_port,
                connect_ip,
                retry,
                delay_before_retry,
            },
        )
}

fn check() -> impl Strategy<Value = Check> {
    prop_oneof![
        connect().prop_map(Check::Tcp),
        (
            connect(),
            proptest::collection::vec(
                (
                    text(),
                    proptest::option::of(100u16..=599),
                    proptest::option::of("[0-9a-f]{32}")
                ),
                1..3
            )
        )
            .prop_map(|(connect, urls)| Check::Http {
                connect,
                urls: urls
                    .into_iter()
                    .map(|(path, status_code, digest)| Url {
                        path,
                        status_code,
                        digest
                    })
                    .collect(),
            }),
    ]
}

fn real_server(k: u16) -> impl Strategy<Value = RealServer> {
    (
        any_ip(),
        0u32..=65_535,
        any::<bool>(),
        proptest::collection::vec(check(), 0..3),
        proptest::option::of(text()),
        proptest::option::of(text()),
        proptest::option::of(any::<bool>()),
    )
        .prop_map(
            move |(ip, weight, inhibit, checks, up, down, smtp)| RealServer {
                pos: SourcePos(pos()),
                addr: SocketAddr::new(ip, k),
                weight,
                inhibit_on_failure: inhibit,
                checks,
                notify_up: up,
                notify_down: down,
                smtp_alert: smtp,
            },
        )
}

fn virtual_server(k: u16) -> impl Strategy<Value = VirtualServer> {
    let algos = vec![
        LbAlgo::Rr,
        LbAlgo::Wrr,
        LbAlgo::Lc,
        LbAlgo::Wlc,
        LbAlgo::Sed,
        LbAlgo::Nq,
        LbAlgo::Dh,
        LbAlgo::Sh,
        LbAlgo::Lblc,
        LbAlgo::Lblcr,
        LbAlgo::Mh,
        LbAlgo::Fo,
        LbAlgo::Ovf,
        LbAlgo::Twos,
    ];
    (
        prop_oneof![
            any_ip().prop_map(move |ip| VsAddr::Socket(SocketAddr::new(ip, k))),
            Just(VsAddr::Fwmark(u32::from(k) + 1)),
        ],
        (1u64..=86_400_000).prop_map(Duration::from_millis),
        proptest::sample::select(algos),
        proptest::sample::select(vec![LbKind::Nat, LbKind::Dr, LbKind::Tun]),
        proptest::option::of(1u32..),
        proptest::option::of(prop_oneof![
            any::<[u8; 4]>().prop_map(|m| Granularity::Mask(m.into())),
            (1u8..=128).prop_map(Granularity::Prefix)
        ]),
        proptest::sample::select(vec![Protocol::Tcp, Protocol::Udp, Protocol::Sctp]),
        (
            1u32..,
            any::<u32>(),
            proptest::option::of(text()),
            proptest::option::of(any::<bool>()),
        ),
        proptest::option::of((any_ip(), any::<u16>()).prop_map(|(i, p)| SocketAddr::new(i, p))),
        (1u16..3).prop_flat_map(|n| (0..n).map(real_server).collect::<Vec<_>>()),
    )
        .prop_map(
            |(
                addr,
                delay_loop,
                lb_algo,
                lb_kind,
                pt,
                pg,
                protocol,
                (quorum, hysteresis, vh, smtp_alert),
                sorry,
                mut real_servers,
            )| {
                // Only what keepalived reads back unchanged: ports fitted to the forwarding
                // method, port-0 services persistent, quorum within the weights, hysteresis
                // below the quorum, no duplicate real server.
                let vs_port = match addr {
                    VsAddr::Socket(a) => Some(a.port()),
                    VsAddr::Fwmark(_) => None,
                };
                for rs in &mut real_servers {
                    match (vs_port, lb_kind) {
                        (Some(p), LbKind::Nat) if rs.addr.port() == 0 => rs.addr.set_port(p),
                        (Some(p), LbKind::Dr | LbKind::Tun) => rs.addr.set_port(p),
                        (None, LbKind::Dr | LbKind::Tun) => rs.addr.set_port(0),
                        _ => {}
                    }
                }
                let mut seen = std::collections::HashSet::new();
                real_servers.retain(|r| seen.insert(r.addr));
                if real_servers.iter().all(|r| r.weight == 0) {
                    real_servers[0].weight = 1;
                }
                let total: u64 = real_servers.iter().map(|r| u64::from(r.weight)).sum();
                let quorum = quorum.min(u32::try_from(total).unwrap_or(u32::MAX));
                let hysteresis = if hysteresis >= quorum {
                    quorum - 1
                } else {
                    hysteresis
                };
                let pt = if vs_port == Some(0) {
                    pt.or(Some(360))
                } else {
                    pt
                };
                let protocol = if vs_port.is_none() {
                    Protocol::Udp
                } else {
                    protocol
                };
                VirtualServer {
                    pos: SourcePos(pos()),
                    addr,
                    delay_loop,
                    lb_algo,
                    lb_kind,
                    persistence_timeout: pt,
                    persistence_granularity: pg,
                    protocol,
                    quorum,
                    hysteresis,
                    virtualhost: vh,
                    sorry_server: sorry,
                    smtp_alert,
                    real_servers,
                }
            },
        )
}

fn lvs_conf() -> impl Strategy<Value = LvsConf> {
    (0u16..4)
        .prop_flat_map(|n| (0..n).map(virtual_server).collect::<Vec<_>>())
        .prop_map(|virtual_servers| LvsConf { virtual_servers })
}

/// Words and symbols of the language, glued at random: reaches deeper than raw bytes.
fn ka_soup() -> impl Strategy<Value = String> {
    let atoms = vec![
        "vrrp_instance",
        "VI_1",
        "vrrp_script",
        "s",
        "global_defs",
        "vrrp_sync_group",
        "group",
        "virtual_server",
        "real_server",
        "10.0.0.1",
        "80",
        "fe80::1",
        "{",
        "}",
        "\"",
        "!",
        "#",
        "\n",
        " ",
        "interface",
        "eth0",
        "virtual_router_id",
        "1",
        "priority",
        "300",
        "advert_int",
        "0.01",
        "version",
        "3",
        "2",
        "virtual_ipaddress",
        "10.0.0.1/24",
        "2001:db8::1/64",
        "dev",
        "track_script",
        "weight",
        "-20",
        "reverse",
        "authentication",
        "auth_type",
        "PASS",
        "auth_pass",
        "123456789",
        "script",
        "TCP_CHECK",
        "HTTP_GET",
        "url",
        "path",
        "/",
        "fwmark",
        "lb_algo",
        "wrr",
        "unicast_peer",
        "use_vmac",
        "include",
        "nopreempt",
        "vrrp_track_process",
        "track_process",
        "process",
        "quorum",
        "quorum_max",
        "delay",
        "0.0000005",
        "param_match",
        "full_command",
    ];
    proptest::collection::vec(proptest::sample::select(atoms), 0..80).prop_map(|v| {
        v.iter()
            .enumerate()
            .map(|(i, a)| {
                if i % 3 == 0 {
                    format!("{a}\n")
                } else {
                    format!("{a} ")
                }
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn vrrp_render_parse_round_trip(conf in vrrp_conf()) {
        let text = conf.to_string();
        let (back, _) = parse_vrrp_str(&text, "r.conf").map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(back, conf, "{}", text);
    }

    #[test]
    fn lvs_render_parse_round_trip(conf in lvs_conf()) {
        let text = conf.to_string();
        let (back, w) = parse_lvs_str(&text, "r.conf").map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert!(w.is_empty(), "{:?}", w);
        prop_assert_eq!(back, conf, "{}", text);
    }

    #[test]
    fn garbage_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        keepalived_conf::fuzzing::keepalived_conf(&data);
    }

    #[test]
    fn garbage_ascii_never_panics(text in "[ -~\t\n]{0,400}") {
        keepalived_conf::fuzzing::keepalived_conf(text.as_bytes());
    }

    #[test]
    fn keyword_soup_never_panics(text in ka_soup()) {
        keepalived_conf::fuzzing::keepalived_conf(text.as_bytes());
    }
}
