//! Integration tests of `vrrp_linux::rtnl` against the real kernel.
//!
//! Each test makes its own network namespace (`ip netns add`), runs the code under test on a
//! thread that has entered it, and removes the namespace afterwards (also on failure).
//! They need root; without it they print a skip, except with `CI=true`, where a missing
//! prerequisite fails the test.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs::File;
use std::net::IpAddr;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nix::sched::{CloneFlags, setns};
use vrrp_linux::rtnl::{
    AsyncLinkWatcher, IfAddr, Link, LinkChange, LinkWatcher, Route, RouteKind, Rtnl, RtnlError,
    Rule, RuleAction, sysctl_get, sysctl_set, sysctl_set_iface,
};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

fn on_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// `true` when the prerequisite holds; otherwise a printed skip (`false`), or a failure on CI.
fn prerequisite(ok: bool, what: &str) -> bool {
    if !ok {
        assert!(!on_ci(), "missing test prerequisite on CI: {what}");
        eprintln!("skipped: {what}");
    }
    ok
}

/// A network namespace that lives as long as the value.
struct Ns {
    name: String,
}

impl Ns {
    /// A fresh namespace, or `None` (after printing why) when this host cannot make one.
    fn new() -> Option<Self> {
        if !prerequisite(
            nix::unistd::geteuid().is_root(),
            "these tests must run as root",
        ) {
            return None;
        }
        let name = format!(
            "hapri-rtnl-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let made = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .is_ok_and(|s| s.success());
        if !prerequisite(made, "`ip netns add` failed (iproute2 missing?)") {
            return None;
        }
        Some(Self { name })
    }

    /// `ip -n NS ARGS`, which must succeed; its stdout.
    fn ip(&self, args: &[&str]) -> String {
        let out = self.try_ip(args);
        out.unwrap_or_else(|e| panic!("ip -n {} {}: {e}", self.name, args.join(" ")))
    }

    fn try_ip(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new("ip")
            .args(["-n", &self.name])
            .args(args)
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// Runs `f` on a thread inside the namespace.
    fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let path = format!("/run/netns/{}", self.name);
        std::thread::scope(|s| {
            s.spawn(|| {
                let fd = File::open(&path).unwrap();
                setns(fd, CloneFlags::CLONE_NEWNET).unwrap();
                f()
            })
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    }

    /// A veth pair `a`/`b`.
    fn veth(&self, a: &str, b: &str) {
        self.ip(&["link", "add", a, "type", "veth", "peer", "name", b]);
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// The raw value of `"key":` in `ip -j` output (quotes stripped), first occurrence.
fn json_field<'a>(json: &'a str, key: &str) -> Option<&'a str> {
    let pat = format!("\"{key}\":");
    let start = json.find(&pat)? + pat.len();
    let rest = &json[start..];
    if let Some(stripped) = rest.strip_prefix('"') {
        return stripped.split('"').next();
    }
    if rest.starts_with('[') {
        return rest.split(']').next().map(|s| &s[1..]);
    }
    rest.split([',', '}']).next()
}

fn parse_mac(s: &str) -> [u8; 6] {
    let mut mac = [0u8; 6];
    let parts: Vec<u8> = s
        .split(':')
        .map(|p| u8::from_str_radix(p, 16).unwrap())
        .collect();
    mac.copy_from_slice(&parts);
    mac
}

/// Polls `f` for up to `within`.
fn eventually(within: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + within;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn links_match_ip() {
    let Some(ns) = Ns::new() else { return };
    ns.veth("v0", "v1");
    ns.ip(&["link", "set", "v0", "mtu", "1400", "up"]);
    let json = ns.ip(&["-j", "link", "show", "dev", "v0"]);
    ns.run(|| {
        let mut rt = Rtnl::open().unwrap();
        let l = rt.link_by_name("v0").unwrap();
        assert_eq!(l.name, "v0");
        assert_eq!(
            Some(l.index.to_string().as_str()),
            json_field(&json, "ifindex")
        );
        assert_eq!(l.mtu, 1400);
        assert_eq!(Some(l.mtu.to_string().as_str()), json_field(&json, "mtu"));
        assert_eq!(l.mac, parse_mac(json_field(&json, "address").unwrap()));
        assert!(json_field(&json, "flags").unwrap().contains("\"UP\""));
        assert!(l.up);
        // The peer is down: no carrier, so not running.
        assert!(!l.running, "{l:?} / {json}");

        assert_eq!(rt.link_by_index(l.index).unwrap(), l);
        let all = rt.links().unwrap();
        assert!(all.contains(&l), "{all:?}");
        assert!(all.iter().any(|x| x.name == "lo" && x.mac == [0; 6]));
        assert!(all.iter().any(|x| x.name == "v1" && !x.up));

        // Peer up: carrier, and (once link-watch has run) running.
        let v1 = rt.link_by_name("v1").unwrap();
        rt.set_link_up(v1.index, true).unwrap();
        assert!(
            eventually(Duration::from_secs(3), || rt
                .link_by_index(l.index)
                .unwrap()
                .running),
            "v0 never became running"
        );
    });
}

#[test]
fn errors_are_typed() {
    let Some(ns) = Ns::new() else { return };
    ns.run(|| {
        let mut rt = Rtnl::open().unwrap();
        match rt.link_by_name("absent0") {
            Err(RtnlError::NoSuchLink { name }) => assert_eq!(name, "absent0"),
            other => panic!("expected NoSuchLink, got {other:?}"),
        }
        assert!(matches!(
            rt.link_by_index(99_999),
            Err(RtnlError::NoSuchIndex { index: 99_999 })
        ));
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        let e = rt.add_addr(99_999, v4, 24).unwrap_err();
        assert!(
            matches!(
                e,
                RtnlError::Kernel {
                    errno: libc::ENODEV,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(e.to_string().contains("ENODEV"), "{e}");
        assert!(matches!(
            rt.del_link(99_999),
            Err(RtnlError::Kernel {
                errno: libc::ENODEV,
                ..
            })
        ));
        assert!(matches!(
            rt.set_link_up(99_999, true),
            Err(RtnlError::Kernel {
                errno: libc::ENODEV,
                ..
            })
        ));
        assert!(matches!(
            rt.add_addr(1, v4, 33),
            Err(RtnlError::InvalidPrefix { prefix: 33, .. })
        ));
        assert!(matches!(
            rt.link_by_name("much-too-long-name"),
            Err(RtnlError::InvalidName { .. })
        ));
        match rt.addrs(99_999) {
            Err(RtnlError::NoSuchIndex { index: 99_999 }) => {}
            Ok(v) => assert!(v.is_empty(), "{v:?}"),
            other => panic!("expected NoSuchIndex, got {other:?}"),
        }
        // The socket is still in step after all those errors.
        assert_eq!(rt.link_by_name("lo").unwrap().index, 1);
    });
}

#[test]
fn addresses_add_and_delete() {
    let Some(ns) = Ns::new() else { return };
    ns.veth("v0", "v1");
    ns.ip(&["link", "set", "v1", "up"]);
    let v4: IpAddr = "192.0.2.10".parse().unwrap();
    let v4b: IpAddr = "192.0.2.11".parse().unwrap();
    let v6: IpAddr = "2001:db8::10".parse().unwrap();
    let index = ns.run(|| {
        let mut rt = Rtnl::open().unwrap();
        let index = rt.link_by_name("v0").unwrap().index;
        rt.set_link_up(index, true).unwrap();
        assert!(rt.add_addr(index, v4, 24).unwrap());
        assert!(rt.add_addr(index, v4b, 24).unwrap());
        assert!(rt.add_addr(index, v6, 64).unwrap());
        assert!(
            !rt.add_addr(index, v4, 24).unwrap(),
            "second add must say 'already there'"
        );
        assert!(!rt.add_addr(index, v6, 64).unwrap());
        let addrs = rt.addrs(index).unwrap();
        let find = |a: IpAddr| addrs.iter().find(|x| x.addr == a).copied();
        assert_eq!(
            find(v4),
            Some(IfAddr {
                addr: v4,
                prefix: 24,
                link_local: false,
                secondary: false
            }),
            "{addrs:?}"
        );
        assert_eq!(find(v4b).map(|a| a.secondary), Some(true), "{addrs:?}");
        assert_eq!(
            find(v6).map(|a| (a.prefix, a.link_local)),
            Some((64, false))
        );
        // The IPv6 link-local address appears once the link has carrier.
        assert!(eventually(Duration::from_secs(3), || {
            rt.addrs(index).unwrap().iter().any(|a| {
                a.link_local && matches!(a.addr, IpAddr::V6(v) if v.segments()[0] == 0xfe80)
            })
        }));
        // Only this link's addresses.
        let lo = rt.addrs(1).unwrap();
        assert!(lo.iter().all(|a| a.addr != v4), "{lo:?}");
        index
    });
    let shown = ns.ip(&["addr", "show", "dev", "v0"]);
    assert!(shown.contains("inet 192.0.2.10/24"), "{shown}");
    assert!(shown.contains("inet 192.0.2.11/24"), "{shown}");
    let v6_line = shown
        .lines()
        .find(|l| l.contains("inet6 2001:db8::10/64"))
        .unwrap_or_else(|| panic!("v6 address missing: {shown}"));
    assert!(!v6_line.contains("tentative"), "{v6_line}");
    assert!(v6_line.contains("nodad"), "{v6_line}");

    ns.run(|| {
        let mut rt = Rtnl::open().unwrap();
        assert!(rt.del_addr(index, v6, 64).unwrap());
        assert!(!rt.del_addr(index, v6, 64).unwrap());
        assert!(rt.del_addr(index, v4b, 24).unwrap());
        assert!(rt.del_addr(index, v4, 24).unwrap());
        assert!(!rt.del_addr(index, v4, 24).unwrap());
        assert!(rt.addrs(index).unwrap().iter().all(|a| a.link_local));
    });
    let shown = ns.ip(&["addr", "show", "dev", "v0"]);
    assert!(!shown.contains("192.0.2.1"), "{shown}");
    assert!(!shown.contains("2001:db8::10"), "{shown}");
}

#[test]
fn set_link_up_and_down() {
    let Some(ns) = Ns::new() else { return };
    ns.veth("v0", "v1");
    ns.run(|| {
        let mut rt = Rtnl::open().unwrap();
        let l = rt.link_by_name("v0").unwrap();
        assert!(!l.up);
        rt.set_link_up(l.index, true).unwrap();
        assert!(rt.link_by_index(l.index).unwrap().up);
    });
    assert!(ns.ip(&["-br", "link", "show", "dev", "v0"]).contains("UP"));
    ns.run(|| {
        let mut rt = Rtnl::open().unwrap();
        let l = rt.link_by_name("v0").unwrap();
        rt.set_link_up(l.index, false).unwrap();
        assert!(!rt.link_by_index(l.index).unwrap().up);
    });
    let json = ns.ip(&["-j", "link", "show", "dev", "v0"]);
    assert!(
        !json_field(&json, "flags").unwrap().contains("\"UP\""),
        "{json}"
    );
}

#[test]
fn macvlan_create_reuse_delete() {
    let Some(ns) = Ns::new() else { return };
    ns.veth("v0", "v1");
    let mac = [0x00, 0x00, 0x5e, 0x00, 0x01, 0x33];
    let mac2 = [0x00, 0x00, 0x5e, 0x00, 0x01, 0x34];
    let parent = ns.run(|| {
        let mut rt = Rtnl::open().unwrap();
        let parent = rt.link_by_name("v0").unwrap().index;
        // A name taken by something that is not a macvlan on that parent is refused.
        match rt.add_macvlan("v1", parent, mac) {
            Err(RtnlError::LinkConflict { name, .. }) => assert_eq!(name, "v1"),
            other => panic!("expected LinkConflict, got {other:?}"),
        }
        assert!(matches!(
            rt.add_macvlan("vrrp.51", parent, [0x01, 0, 0x5e, 0, 0, 1]),
            Err(RtnlError::InvalidMac { .. })
        ));
        parent
    });
    let supported = ns
        .try_ip(&["link", "add", "probe0", "link", "v0", "type", "macvlan"])
        .is_ok();
    if !supported {
        // What the daemon sees on such a kernel: a kernel error naming the missing feature.
        ns.run(|| {
            let e = Rtnl::open()
                .unwrap()
                .add_macvlan("vrrp.51", parent, mac)
                .unwrap_err();
            assert!(
                matches!(
                    e,
                    RtnlError::Kernel {
                        errno: libc::EOPNOTSUPP,
                        ..
                    }
                ),
                "{e:?}"
            );
            assert!(e.to_string().contains("macvlan"), "{e}");
        });
    }
    if !prerequisite(
        supported,
        "this kernel has no macvlan support (CONFIG_MACVLAN)",
    ) {
        return;
    }
    ns.ip(&["link", "del", "probe0"]);

    let index = ns.run(|| {
        let mut rt = Rtnl::open().unwrap();
        let index = rt.add_macvlan("vrrp.51", parent, mac).unwrap();
        let l = rt.link_by_index(index).unwrap();
        assert_eq!((l.name.as_str(), l.mac, l.up), ("vrrp.51", mac, true));
        index
    });
    let shown = ns.ip(&["-d", "link", "show", "dev", "vrrp.51"]);
    assert!(shown.contains("macvlan mode private"), "{shown}");
    assert!(shown.contains("link/ether 00:00:5e:00:01:33"), "{shown}");
    assert!(shown.contains("vrrp.51@v0"), "{shown}");
    assert!(shown.contains(",UP") || shown.contains("<UP"), "{shown}");

    ns.ip(&["link", "set", "vrrp.51", "down"]);
    ns.run(|| {
        let mut rt = Rtnl::open().unwrap();
        assert_eq!(rt.add_macvlan("vrrp.51", parent, mac2).unwrap(), index);
        let l = rt.link_by_index(index).unwrap();
        assert_eq!((l.mac, l.up), (mac2, true));
        // An interface name with a dot in it works for sysctls.
        sysctl_set_iface("ipv4", "vrrp.51", "arp_ignore", "1").unwrap();
        assert_eq!(sysctl_get("net/ipv4/conf/vrrp.51/arp_ignore").unwrap(), "1");
        rt.del_link(index).unwrap();
        assert!(matches!(
            rt.link_by_name("vrrp.51"),
            Err(RtnlError::NoSuchLink { .. })
        ));
    });
    assert!(ns.try_ip(&["link", "show", "dev", "vrrp.51"]).is_err());
}

#[test]
fn watcher_sees_link_changes() {
    let Some(ns) = Ns::new() else { return };
    ns.veth("v0", "v1");
    ns.ip(&["link", "set", "v0", "up"]);
    let name = ns.name.clone();
    let ip = |args: &[&str]| {
        let ok = Command::new("ip")
            .args(["-n", &name])
            .args(args)
            .status()
            .unwrap()
            .success();
        assert!(ok, "ip {args:?}");
    };
    ns.run(|| {
        // The plain, non-blocking watcher: Ok(empty) when nothing is pending.
        let mut sync = LinkWatcher::open().unwrap();
        assert!(sync.read_events().unwrap().is_empty());
        ip(&["link", "set", "v1", "up"]);
        assert!(eventually(Duration::from_secs(1), || {
            sync.read_events()
                .unwrap()
                .iter()
                .any(|l| l.name == "v1" && l.up)
        }));

        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut w = AsyncLinkWatcher::open().unwrap();
            ip(&["link", "set", "v0", "down"]);
            let down = wait_for(
                &mut w,
                |c| matches!(c, LinkChange::Changed(l) if l.name == "v0" && !l.up),
            )
            .await;
            assert!(down, "no 'v0 down' notification within 1 s");
            ip(&["link", "del", "v0"]);
            let gone = wait_for(
                &mut w,
                |c| matches!(c, LinkChange::Removed(l) if l.name == "v0"),
            )
            .await;
            assert!(gone, "no 'v0 removed' notification within 1 s");
        });
    });
}

/// Reads notifications for up to a second until one satisfies `want`.
async fn wait_for(w: &mut AsyncLinkWatcher, want: impl Fn(&LinkChange) -> bool) -> bool {
    let read = async {
        loop {
            if w.changes().await.unwrap().iter().any(&want) {
                return;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(1), read)
        .await
        .is_ok()
}

#[test]
fn sysctls_by_name_and_by_interface() {
    let Some(ns) = Ns::new() else { return };
    ns.veth("vrrp.7", "p7");
    ns.run(|| {
        sysctl_set_iface("ipv4", "vrrp.7", "arp_ignore", "1").unwrap();
        sysctl_set("net/ipv4/conf/vrrp.7/arp_announce", "2").unwrap();
        sysctl_set("net.ipv4.conf.p7.arp_filter", "1").unwrap();
        sysctl_set_iface("ipv6", "p7", "accept_dad", "0").unwrap();
        assert_eq!(sysctl_get("net.ipv4.conf.p7.arp_filter").unwrap(), "1");
        match sysctl_set_iface("ipv4", "absent0", "arp_ignore", "1") {
            Err(e @ RtnlError::Sysctl { .. }) => {
                assert_eq!(e.errno(), Some(libc::ENOENT), "{e}");
            }
            other => panic!("expected a Sysctl error, got {other:?}"),
        }
        assert!(matches!(
            sysctl_set_iface("ipv4", "../../kernel", "hostname", "x"),
            Err(RtnlError::InvalidName { .. })
        ));
    });
    let read = |p: &str| {
        let out = Command::new("ip")
            .args(["netns", "exec", &ns.name, "cat", p])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    assert_eq!(read("/proc/sys/net/ipv4/conf/vrrp.7/arp_ignore"), "1");
    assert_eq!(read("/proc/sys/net/ipv4/conf/vrrp.7/arp_announce"), "2");
    assert_eq!(read("/proc/sys/net/ipv6/conf/p7/accept_dad"), "0");
    // The host's own settings were not touched.
    assert!(!std::path::Path::new("/proc/sys/net/ipv4/conf/vrrp.7").exists());
}

/// `Link` is plain data the daemon can compare and clone.
#[test]
fn link_is_plain_data() {
    let l = Link {
        index: 3,
        name: "eth0".into(),
        mac: [2, 0, 0, 0, 0, 1],
        up: true,
        running: false,
        mtu: 1500,
    };
    assert_eq!(l.clone(), l);
}

#[test]
fn routes_and_rules_add_and_delete() {
    let Some(ns) = Ns::new() else { return };
    ns.veth("v0", "v1");
    ns.ip(&["link", "set", "v1", "up"]);
    ns.ip(&["link", "set", "v0", "up"]);
    ns.ip(&["addr", "add", "192.0.2.10/24", "dev", "v0"]);
    ns.ip(&["addr", "add", "2001:db8::10/64", "dev", "v0", "nodad"]);
    let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
    let index = ns.run(|| Rtnl::open().unwrap().link_by_name("v0").unwrap().index);
    let via = Route {
        kind: RouteKind::Unicast,
        dst: ip("198.51.100.0"),
        dst_len: 24,
        pref_src: Some(ip("192.0.2.10")),
        gateway: Some(ip("192.0.2.1")),
        oif: Some(index),
        scope: None,
        table: 1000,
        metric: Some(5),
        protocol: 18,
    };
    let hole = Route {
        kind: RouteKind::Blackhole,
        dst: ip("2001:db8:1::"),
        dst_len: 48,
        pref_src: None,
        gateway: None,
        oif: None,
        scope: None,
        table: 254,
        metric: None,
        protocol: 18,
    };
    let rule = Rule {
        ipv6: false,
        invert: false,
        from: Some((ip("192.0.2.10"), 32)),
        to: None,
        iif: None,
        oif: None,
        fwmark: Some(16),
        fwmask: Some(255),
        priority: 100,
        action: RuleAction::Table(1000),
        protocol: Some(18),
    };
    ns.run(|| {
        let mut rt = Rtnl::open().unwrap();
        assert!(rt.add_route(&via).unwrap());
        assert!(!rt.add_route(&via).unwrap(), "EEXIST is 'already there'");
        assert!(rt.add_route(&hole).unwrap());
        assert!(rt.add_rule(&rule).unwrap());
        assert!(!rt.add_rule(&rule).unwrap());
    });
    let routes = ns.ip(&["route", "show", "table", "1000"]);
    assert!(
        routes.contains(
            "198.51.100.0/24 via 192.0.2.1 dev v0 proto keepalived src 192.0.2.10 metric 5"
        ),
        "{routes}"
    );
    let v6 = ns.ip(&["-6", "route", "show"]);
    assert!(
        v6.contains("blackhole 2001:db8:1::/48 dev lo proto keepalived"),
        "{v6}"
    );
    let rules = ns.ip(&["rule", "show"]);
    assert!(
        rules.contains("100:\tfrom 192.0.2.10 fwmark 0x10/0xff lookup 1000 proto keepalived"),
        "{rules}"
    );
    ns.run(|| {
        let mut rt = Rtnl::open().unwrap();
        assert!(rt.del_rule(&rule).unwrap());
        assert!(!rt.del_rule(&rule).unwrap(), "ENOENT is 'not there'");
        assert!(rt.del_route(&via).unwrap());
        assert!(!rt.del_route(&via).unwrap(), "ESRCH is 'not there'");
        assert!(rt.del_route(&hole).unwrap());
        assert!(!rt.del_route(&hole).unwrap());
        let mixed = Route {
            gateway: Some(ip("2001:db8::1")),
            ..via.clone()
        };
        assert!(matches!(
            rt.add_route(&mixed),
            Err(RtnlError::MixedFamilies { .. })
        ));
    });
    assert_eq!(ns.ip(&["route", "show", "table", "1000"]).trim(), "");
    assert!(!ns.ip(&["rule", "show"]).contains("lookup 1000"));
}
