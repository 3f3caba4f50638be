//! ipvsctl without a kernel: argument parsing (ipvsadm's options, defaults and refusals),
//! listings formatted from model values, and `-S`/`-R` text round trips through the parser
//! and the formatter. The same against the real kernel and ipvsadm: `tests/ipvsctl_vm.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use ipvs_netlink::{
    Dest, Family, ForwardMethod, Netmask, Op, Protocol, Service, ServiceFlags, ServiceKey,
    Timeouts, TunnelType,
};
use ipvsctl::args::{self, ArgError, Command, Format, ListWhat};
use ipvsctl::format::{self, DestRow, Row, SvcRow};
use ipvsctl::names::{NoNames, TableNames};
use ipvsctl::restore::{self, Step};
use ipvsctl::{kernel_message, main_with, strerror};

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn argv(line: &str) -> Vec<String> {
    std::iter::once("ipvsadm")
        .chain(line.split_whitespace())
        .map(str::to_owned)
        .collect()
}

fn parse(line: &str) -> Command {
    args::parse(&argv(line), &NoNames)
        .unwrap_or_else(|e| panic!("{line}: {e}"))
        .command
}

fn refuse(line: &str) -> (String, u8) {
    let e = args::parse(&argv(line), &NoNames).expect_err(line);
    (e.to_string(), e.exit_code())
}

// ---- parsing ----

#[test]
fn services_parse_with_ipvsadm_defaults() {
    let tcp = ServiceKey::tcp(sa("10.0.0.1:80"));
    assert_eq!(
        parse("-A -t 10.0.0.1:80"),
        Command::AddService(Service::new(tcp, "wlc").unwrap())
    );
    // Clustered short options, attached values, long options with '='.
    assert_eq!(
        parse("-At 10.0.0.1:80 -srr"),
        Command::AddService(Service::new(tcp, "rr").unwrap())
    );
    assert_eq!(
        parse("--add-service --tcp-service=10.0.0.1:80 --scheduler rr"),
        Command::AddService(Service::new(tcp, "rr").unwrap())
    );
    // -p without a value is 300 s; with -M.
    let udp = ServiceKey::udp(sa("10.0.0.2:53"));
    assert_eq!(
        parse("-A -u 10.0.0.2:53 -s sh -p -M 255.255.255.0 -o -b sh-fallback,sh-port"),
        Command::AddService(
            Service::new_persistent(udp, "sh", 300)
                .unwrap()
                .with_netmask(Netmask::v4(Ipv4Addr::new(255, 255, 255, 0)).unwrap())
                .unwrap()
                .with_flags(
                    ServiceFlags::SH_FALLBACK | ServiceFlags::SH_PORT | ServiceFlags::ONE_PACKET
                )
        )
    );
    // IPv6 with a prefix, fwmark with -6, SCTP, persistence engine.
    let v6 = ServiceKey::tcp(sa("[2001:db8::1]:443"));
    assert_eq!(
        parse("-E -t [2001:db8::1]:443 -s wlc -p 60 -M 64"),
        Command::EditService(
            Service::new_persistent(v6, "wlc", 60)
                .unwrap()
                .with_netmask(Netmask::v6(64).unwrap())
                .unwrap()
        )
    );
    assert_eq!(
        parse("-D -f 6 -6"),
        Command::DeleteService(ServiceKey::Fwmark {
            family: Family::V6,
            mark: 6
        })
    );
    let sctp = ServiceKey::Inet {
        protocol: Protocol::Sctp,
        addr: sa("10.0.0.9:5000"),
    };
    assert_eq!(
        parse("-A --sctp-service 10.0.0.9:5000 -s rr"),
        Command::AddService(Service::new(sctp, "rr").unwrap())
    );
    assert_eq!(
        parse("-A -u 10.0.0.3:5060 -s rr -p 60 --pe sip"),
        Command::AddService(
            Service::new_persistent(ServiceKey::udp(sa("10.0.0.3:5060")), "rr", 60)
                .unwrap()
                .with_pe("sip")
                .unwrap()
        )
    );
    // Port 0 is fine when persistent.
    assert!(matches!(
        parse("-A -t 10.0.0.1:0 -p 10"),
        Command::AddService(_)
    ));
}

#[test]
fn destinations_follow_ipvsadm_port_rules() {
    let key = ServiceKey::tcp(sa("10.0.0.1:80"));
    // No port: the service's. Direct routing (the default) and tunnels always use it.
    assert_eq!(
        parse("-a -t 10.0.0.1:80 -r 10.0.0.2"),
        Command::AddDest(
            key,
            Dest::new(sa("10.0.0.2:80"), ForwardMethod::DirectRoute).unwrap()
        )
    );
    assert_eq!(
        parse("-a -t 10.0.0.1:80 -r 10.0.0.2:8080"),
        Command::AddDest(
            key,
            Dest::new(sa("10.0.0.2:80"), ForwardMethod::DirectRoute).unwrap()
        )
    );
    assert_eq!(
        parse("-a -t 10.0.0.1:80 -r 10.0.0.2:8080 -m -w 3 -x 10 -y 5"),
        Command::AddDest(
            key,
            Dest::new(sa("10.0.0.2:8080"), ForwardMethod::Masq)
                .unwrap()
                .with_weight(3)
                .unwrap()
                .with_thresholds(10, 5)
                .unwrap()
        )
    );
    assert_eq!(
        parse("-e -t 10.0.0.1:80 -r 10.0.0.4 -i --tun-type gue --tun-port 6080 --tun-csum"),
        Command::EditDest(
            key,
            Dest::new(
                sa("10.0.0.4:80"),
                ForwardMethod::Tunnel(TunnelType::Gue {
                    port: 6080,
                    flags: 1
                })
            )
            .unwrap()
        )
    );
    // A fwmark service keeps the given port (0 when none).
    assert_eq!(
        parse("-a -f 5 -r 10.0.0.7 -g"),
        Command::AddDest(
            ServiceKey::Fwmark {
                family: Family::V4,
                mark: 5
            },
            Dest::new(sa("10.0.0.7:0"), ForwardMethod::DirectRoute).unwrap()
        )
    );
    assert_eq!(
        parse("-d -t 10.0.0.1:80 -r 10.0.0.2:8080"),
        Command::DeleteDest(key, sa("10.0.0.2:8080"))
    );
    // IPv6 tunnel to an IPv4 service is allowed.
    assert!(matches!(
        parse("-a -t 10.0.0.1:80 -r [2001:db8::9]:80 -i"),
        Command::AddDest(..)
    ));
}

#[test]
fn names_resolve_from_the_tables() {
    let names = TableNames::new()
        .service("http", 80, Protocol::Tcp)
        .host("web", IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
    let c = args::parse(&argv("-A -t web:http"), &names)
        .unwrap()
        .command;
    assert_eq!(
        c,
        Command::AddService(Service::new(ServiceKey::tcp(sa("10.0.0.1:80")), "wlc").unwrap())
    );
    let e = args::parse(&argv("-A -u web:http"), &names).unwrap_err();
    assert_eq!(e, ArgError::IllegalVirtualServer);
}

#[test]
fn listing_and_other_commands() {
    let fmt = |numeric, stats| Format {
        numeric,
        stats,
        ..Format::default()
    };
    assert_eq!(
        args::parse(&argv(""), &NoNames).unwrap().command,
        Command::List {
            what: ListWhat::All,
            format: Format::default()
        }
    );
    assert_eq!(
        parse("-Ln --stats"),
        Command::List {
            what: ListWhat::All,
            format: fmt(true, true)
        }
    );
    assert_eq!(
        parse("-l -n -t 10.0.0.1:80"),
        Command::List {
            what: ListWhat::Service(ServiceKey::tcp(sa("10.0.0.1:80"))),
            format: fmt(true, false)
        }
    );
    assert_eq!(
        parse("-L --timeout"),
        Command::List {
            what: ListWhat::Timeouts,
            format: Format::default()
        }
    );
    assert_eq!(
        parse("--set 900 120 300"),
        Command::SetTimeouts(Timeouts::new(900, 120, 300))
    );
    assert_eq!(parse("-Z"), Command::Zero(None));
    assert_eq!(parse("-C"), Command::Flush);
    assert_eq!(parse("-R"), Command::Restore);
    assert!(matches!(parse("-Sn"), Command::Save { format } if format.rule && format.numeric));
}

#[test]
fn refusals_say_what_ipvsadm_says() {
    let cases: &[(&str, &str, u8)] = &[
        (
            "-n -L",
            "Try `ipvsadm -h' or 'ipvsadm --help' for more information.",
            255,
        ),
        (
            "--bogus",
            "Try `ipvsadm -h' or 'ipvsadm --help' for more information.",
            255,
        ),
        ("-L --bogus", "--bogus: unknown option", 255),
        ("-L -A", "invalid option `-A'", 2),
        ("-LA", "invalid option `-LA'", 2),
        ("-L -n -n", "multiple 'numeric' options specified", 2),
        (
            "-A",
            "You need to supply the 'service-address' option for the 'add-service' command",
            2,
        ),
        (
            "-A -t 1.2.3.4:80 -x 5",
            "Illegal 'u-threshold' option with the 'add-service' command",
            2,
        ),
        (
            "-L --timeout --daemon",
            "The option 'daemon' conflicts with the 'timeout' option in the 'list' command",
            2,
        ),
        (
            "-L --timeout --stats",
            "options conflicts in the list command",
            2,
        ),
        (
            "-A -t 1.2.3.4:0",
            "Zero port specified for non-persistent service",
            2,
        ),
        (
            "-A -t 1.2.3.4:80 -o",
            "One-Packet Scheduling is only for UDP virtual services",
            2,
        ),
        (
            "-A -t 80",
            "illegal virtual server address[:port] specified",
            2,
        ),
        (
            "-A -t [::1:80",
            "illegal virtual server address[:port] specified",
            2,
        ),
        ("-A -f 0", "invalid fwmark value `0' specified", 2),
        ("-A -6 -f 1", "-6 used before -f\n", 2),
        (
            "-A -t 1.2.3.4:80 -p abc",
            "invalid timeout value `abc' specified",
            2,
        ),
        (
            "-A -t 1.2.3.4:80 -M bad",
            "illegal virtual server persistent mask specified",
            2,
        ),
        ("-A -t [::1]:80 -M 200", "illegal ipv6 netmask specified", 2),
        (
            "-A -u 1.2.3.4:80 -b flag-9",
            "invalid scheduler flag `flag-9'",
            2,
        ),
        (
            "-A -u 1.2.3.4:80 -s rr -b sh-port",
            "incompatible scheduler flag `sh-port'",
            2,
        ),
        (
            "-A -t 1.2.3.4:80 -s Bad-Name",
            "Scheduler or persistence engine not found",
            255,
        ),
        (
            "-a -t 1.2.3.4:80 -r 1.2.3.5 -w 2147483648",
            "illegal weight specified",
            2,
        ),
        (
            "-a -t 1.2.3.4:80 -r 1.2.3.5 -x -1",
            "illegal u_threshold specified",
            2,
        ),
        (
            "-a -t 1.2.3.4:80 -r [::5]:80 -m",
            "Different address family is allowed only for tunneling servers",
            2,
        ),
        (
            "-a -t 1.2.3.4:80 -r 1.2.3.5 -m --tun-type gre",
            "Tunnel options conflict with forward method",
            2,
        ),
        (
            "-a -t 1.2.3.4:80 -r 1.2.3.5 -i --tun-type gue",
            "You need to supply the 'tun-port' option for the 'gue' tunnel type",
            2,
        ),
        (
            "-a -t 1.2.3.4:80 -r 1.2.3.5 -i --tun-type gre --tun-port 9",
            "Illegal 'tun-port' option with the 'gre' tunnel type",
            2,
        ),
        (
            "-a -t 1.2.3.4:80 -r 1.2.3.5 -i --tun-type gue --tun-port 9 --tun-csum --tun-remcsum",
            "The option 'tun-remcsum' conflicts with the 'tun-csum' option in the 'gue' tunnel type",
            2,
        ),
        (
            "-a -t 1.2.3.4:80 -r 1.2.3.5 -i --tun-type vxlan",
            "illegal tunnel type specified",
            2,
        ),
        ("--set 1 2", "--set option requires 3 timeout values", 2),
        ("--set 1 2 x", "invalid timeout value `x' specified", 2),
        ("-C now", "unexpected argument now", 2),
        (
            "--start-daemon sideways",
            "illegal start-daemon parameter specified",
            2,
        ),
        ("-A -t", "-t: missing argument", 255),
    ];
    for (line, msg, code) in cases {
        assert_eq!(refuse(line), ((*msg).to_owned(), *code), "{line}");
    }
    // -c is refused with a reason.
    let (msg, code) = refuse("-L -c");
    assert!(msg.contains("/proc/net/ip_vs_conn"), "{msg}");
    assert_eq!(code, 2);
}

#[test]
fn bad_input_never_reaches_the_kernel() {
    // main_with answers parse errors itself (no socket is opened).
    let mut out = Vec::new();
    let mut err = Vec::new();
    let code = main_with(
        &argv("-A -t 1.2.3.4:0"),
        &mut &b""[..],
        &mut out,
        &mut err,
        &NoNames,
    );
    assert_eq!(code, 2);
    assert!(out.is_empty());
    assert_eq!(
        String::from_utf8(err).unwrap(),
        "Zero port specified for non-persistent service\n"
    );
    let mut out = Vec::new();
    let code = main_with(
        &argv("-h"),
        &mut &b""[..],
        &mut out,
        &mut Vec::new(),
        &NoNames,
    );
    assert_eq!(code, 0);
    assert!(String::from_utf8(out).unwrap().contains("--tun-type"));
}

#[test]
fn kernel_errors_use_ipvsadm_words() {
    assert_eq!(kernel_message(Op::AddService, 17), "Service already exists");
    assert_eq!(kernel_message(Op::DeleteService, 3), "No such service");
    assert_eq!(kernel_message(Op::AddDest, 3), "Service not defined");
    assert_eq!(kernel_message(Op::DeleteDest, 2), "No such destination");
    assert_eq!(
        kernel_message(Op::AddService, 2),
        "Scheduler or persistence engine not found"
    );
    assert_eq!(
        kernel_message(Op::EditDest, 34),
        "Numerical result out of range"
    );
    assert_eq!(strerror(16), "Device or resource busy");
}

// ---- formatting ----

fn row(service: Service, dests: Vec<Dest>) -> Row {
    (
        SvcRow::new(service),
        dests.into_iter().map(DestRow::new).collect(),
    )
}

fn numeric() -> Format {
    Format {
        numeric: true,
        ..Format::default()
    }
}

#[test]
fn default_listing_is_ipvsadms_table() {
    let tcp = ServiceKey::tcp(sa("10.0.0.1:80"));
    let mut rows = vec![
        row(
            Service::new_persistent(ServiceKey::udp(sa("10.0.0.2:53")), "sh", 300)
                .unwrap()
                .with_netmask(Netmask::v4(Ipv4Addr::new(255, 255, 255, 0)).unwrap())
                .unwrap()
                .with_flags(ServiceFlags::SH_PORT | ServiceFlags::ONE_PACKET),
            vec![],
        ),
        row(
            Service::new(tcp, "wrr").unwrap(),
            vec![
                Dest::new(sa("10.0.0.3:80"), ForwardMethod::Tunnel(TunnelType::Ipip)).unwrap(),
                Dest::new(sa("10.0.0.2:8080"), ForwardMethod::Masq)
                    .unwrap()
                    .with_weight(3)
                    .unwrap(),
            ],
        ),
    ];
    let text = format::list_all(Some((0x0001_0201, 4096)), &mut rows, numeric(), &NoNames);
    let expected = concat!(
        "IP Virtual Server version 1.2.1 (size=4096)\n",
        "Prot LocalAddress:Port Scheduler Flags\n",
        "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n",
        "TCP  10.0.0.1:80 wrr\n",
        "  -> 10.0.0.2:8080                Masq    3      0          0         \n",
        "  -> 10.0.0.3:80                  Tunnel  1      0          0         \n",
        "UDP  10.0.0.2:53 sh (sh-port) persistent 300 mask 255.255.255.0 ops\n",
    );
    assert_eq!(text, expected);
}

#[test]
fn counters_abbreviate_unless_exact() {
    let key = ServiceKey::Fwmark {
        family: Family::V6,
        mark: 7,
    };
    let mut svc = SvcRow::new(Service::new(key, "rr").unwrap());
    svc.counters.conns = 5;
    svc.counters.inpkts = 123_456_789;
    svc.counters.outpkts = 12_345_678_901;
    svc.counters.inbytes = 123_456_789_012_345;
    svc.counters.outbytes = 99_999_999;
    let mut rows = vec![(svc, vec![])];
    let stats = Format {
        numeric: true,
        stats: true,
        ..Format::default()
    };
    let text = format::list_all(None, &mut rows, stats, &NoNames);
    let expected = concat!(
        "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n",
        "  -> RemoteAddress:Port\n",
        "FWM  7 IPv6                              5  123456K   12345M     123T 99999999\n",
    );
    assert_eq!(text, expected);
    let exact = Format {
        exact: true,
        ..stats
    };
    let text = format::list_all(None, &mut rows, exact, &NoNames);
    assert!(
        text.ends_with(
            "FWM  7 IPv6                              5 123456789 12345678901 123456789012345 99999999\n"
        ),
        "{text}"
    );
}

#[test]
fn other_columns_and_titles() {
    let mut rows = vec![row(
        Service::new(ServiceKey::tcp(sa("[2001:db8::1]:443")), "lc").unwrap(),
        vec![
            Dest::new(
                sa("[2001:db8::2]:443"),
                ForwardMethod::Tunnel(TunnelType::Gue {
                    port: 6080,
                    flags: 2,
                }),
            )
            .unwrap()
            .with_thresholds(10, 5)
            .unwrap(),
        ],
    )];
    let f = |g: fn(&mut Format)| {
        let mut f = numeric();
        g(&mut f);
        f
    };
    let thr = format::list_all(None, &mut rows, f(|f| f.thresholds = true), &NoNames);
    assert!(
        thr.ends_with(
            "  -> [2001:db8::2]:443            10         5          0          0         \n"
        ),
        "{thr:?}"
    );
    let tun = format::list_all(None, &mut rows, f(|f| f.tun_info = true), &NoNames);
    assert!(
        tun.ends_with(
            "  -> [2001:db8::2]:443            Tunnel  gue:6080:r+c  1      0          0         \n"
        ),
        "{tun:?}"
    );
    let pc = format::list_all(None, &mut rows, f(|f| f.persistent_conn = true), &NoNames);
    assert!(
        pc.starts_with(
            "Prot LocalAddress:Port            Weight    PersistConn ActiveConn InActConn \n"
        ),
        "{pc:?}"
    );
    let rate = format::list_all(None, &mut rows, f(|f| f.rate = true), &NoNames);
    assert!(
        rate.starts_with(
            "Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS\n"
        ),
        "{rate:?}"
    );
    assert_eq!(
        format::timeouts(&Timeouts::new(900, 120, 300)),
        "Timeout (tcp tcpfin udp): 900 120 300\n"
    );
}

#[test]
fn names_print_unless_numeric() {
    let names = TableNames::new()
        .service("http", 80, Protocol::Tcp)
        .host("web", IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
    let mut rows = vec![row(
        Service::new(ServiceKey::tcp(sa("10.0.0.1:80")), "rr").unwrap(),
        vec![],
    )];
    let text = format::list_all(None, &mut rows, Format::default(), &names);
    assert!(text.ends_with("TCP  web:http rr\n"), "{text}");
    let rules = Format {
        rule: true,
        ..Format::default()
    };
    assert_eq!(
        format::list_all(None, &mut rows, rules, &names),
        "-A -t web:http -s rr\n"
    );
}

#[test]
fn sort_order_is_libipvs_order() {
    let keys = [
        ServiceKey::Fwmark {
            family: Family::V4,
            mark: 2,
        },
        ServiceKey::tcp(sa("[2001:db8::1]:80")),
        ServiceKey::udp(sa("10.0.0.1:53")),
        ServiceKey::tcp(sa("10.0.0.2:80")),
        ServiceKey::tcp(sa("10.0.0.1:443")),
        ServiceKey::tcp(sa("10.0.0.1:80")),
        ServiceKey::Fwmark {
            family: Family::V4,
            mark: 1,
        },
    ];
    let mut rows: Vec<Row> = keys
        .iter()
        .map(|k| {
            let s = match k {
                ServiceKey::Fwmark { .. } => Service::new(*k, "rr").unwrap(),
                _ => Service::new(*k, "rr").unwrap(),
            };
            row(s, vec![])
        })
        .collect();
    format::sort_table(&mut rows, Format::default());
    let order: Vec<String> = rows.iter().map(|r| r.0.service.key().to_string()).collect();
    assert_eq!(
        order,
        [
            "TCP 10.0.0.1:80",
            "TCP 10.0.0.1:443",
            "TCP 10.0.0.2:80",
            "UDP 10.0.0.1:53",
            "TCP [2001:db8::1]:80",
            "FWM 1",
            "FWM 2"
        ]
    );
}

// ---- -S / -R text ----

/// Apply parsed `-R` lines to an in-memory table, as the kernel would.
fn apply(script: &str) -> Vec<Row> {
    let mut rows: Vec<Row> = Vec::new();
    for words in restore::split_lines(script) {
        let mut a = vec!["ipvsadm".to_owned()];
        a.extend(words);
        match args::parse(&a, &NoNames).unwrap().command {
            Command::AddService(s) => rows.push((SvcRow::new(s), vec![])),
            Command::AddDest(k, d) => rows
                .iter_mut()
                .find(|r| *r.0.service.key() == k)
                .expect("service exists")
                .1
                .push(DestRow::new(d)),
            other => panic!("unexpected {other:?}"),
        }
    }
    rows
}

const SAVED: &str = "\
-A -t 10.0.0.1:80 -s wrr
-a -t 10.0.0.1:80 -r 10.0.0.2:8080 -m -w 3
-a -t 10.0.0.1:80 -r 10.0.0.3:80 -i -w 1 --tun-type ipip
-a -t 10.0.0.1:80 -r 10.0.0.4:80 -i -w 1 --tun-type gue --tun-port 6080 --tun-csum
-a -t 10.0.0.1:80 -r 10.0.0.5:80 -i -w 1 --tun-type gre --tun-nocsum
-a -t 10.0.0.1:80 -r 10.0.0.6:80 -g -w 0
-a -t 10.0.0.1:80 -r [2001:db8::7]:80 -i -w 2 --tun-type ipip
-A -u 10.0.0.2:53 -s sh -p 300 -M 255.255.255.0 -o -b sh-fallback,sh-port
-A -u 10.0.0.3:5060 -s rr -p 60 --pe sip
-A --sctp-service 10.0.0.9:5000 -s rr
-A -t [2001:db8::1]:443 -s wlc -p 60 -M 64
-a -t [2001:db8::1]:443 -r [2001:db8::2]:443 -m -w 65535
-A -f 5 -s mh -b mh-port
-a -f 5 -r 10.0.0.7:0 -g -w 1
-A -f 6 -6 -s lc
";

#[test]
fn saved_rules_round_trip() {
    let rules = Format {
        rule: true,
        numeric: true,
        ..Format::default()
    };
    let mut rows = apply(SAVED);
    let again = format::list_all(None, &mut rows, rules, &NoNames);
    assert_eq!(again, SAVED);
    // And once more through the text it printed.
    let mut rows = apply(&again);
    assert_eq!(format::list_all(None, &mut rows, rules, &NoNames), SAVED);
}

#[test]
fn restore_scripts_become_one_request_per_line() {
    let script = format!("ipvsadm -C\n\n   \n# comment\n{SAVED}-Z\n--set 0 0 0\n");
    let (steps, err) = restore::parse_script(&script, "ipvsadm", &NoNames);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(steps.len(), SAVED.lines().count() + 3);
    assert!(steps.iter().all(|s| matches!(s, Step::Request(..))));
    assert!(matches!(steps.first(), Some(Step::Request(Op::Flush, _))));

    // A line that does not parse stops the script there; the lines before it still run.
    let (steps, err) = restore::parse_script(
        "-A -t 10.0.0.1:80\n-A -t 10.0.0.2:0\n-A -t 10.0.0.3:80\n",
        "ipvsadm",
        &NoNames,
    );
    assert_eq!(steps.len(), 1);
    assert_eq!(err, Some(ArgError::ZeroPort));
    // Thresholds the kernel refuses go to the kernel (ERANGE, as with ipvsadm); scheduler
    // names no module can have are refused in place, listings run on their own.
    let (steps, err) = restore::parse_script(
        "-a -t 10.0.0.1:80 -r 10.0.0.2 -x 1 -y 5\n-A -t 10.0.0.5:80 -s No\n-L -n\n",
        "ipvsadm",
        &NoNames,
    );
    assert!(err.is_none());
    assert!(matches!(&steps[0], Step::Request(Op::AddDest, _)));
    assert!(
        matches!(&steps[1], Step::Refused(m, 255) if m == "Scheduler or persistence engine not found")
    );
    assert!(matches!(&steps[2], Step::Direct(_)));
    // -R inside -R is refused as ipvsadm does.
    let (_, err) = restore::parse_script("-R\n", "ipvsadm", &NoNames);
    assert!(matches!(err, Some(ArgError::TryHelp { .. })));
}
