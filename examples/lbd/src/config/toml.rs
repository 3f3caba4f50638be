//! The TOML reader: the same [`Config`] model written as TOML tables (`*.toml` files), every
//! error at its line and column.
//!
//! The module is named like the `toml` crate, which is therefore always spelt `::toml` here.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::*;

type Err = (Pos, String);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default, alias = "worker_threads")]
    workers: Option<usize>,
    #[serde(default)]
    node_name: Option<String>,
    #[serde(default)]
    pid: Option<PathBuf>,
    #[serde(default)]
    access_log: Option<String>,
    #[serde(default)]
    access_log_buffer: Option<::toml::Spanned<String>>,
    #[serde(default)]
    access_log_flush: Option<::toml::Spanned<String>>,
    #[serde(default)]
    shutdown_timeout: Option<::toml::Spanned<String>>,
    #[serde(default)]
    upstream: BTreeMap<String, ::toml::Spanned<Upstream>>,
    #[serde(default)]
    server: Vec<::toml::Spanned<Server>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Upstream {
    #[serde(default)]
    balance: Option<::toml::Spanned<String>>,
    #[serde(default)]
    hash: Option<::toml::Spanned<String>>,
    #[serde(default)]
    consistent: bool,
    #[serde(default)]
    sticky_cookie: Option<String>,
    #[serde(default)]
    keepalive: Option<usize>,
    #[serde(default)]
    server: Vec<::toml::Spanned<Peer>>,
    #[serde(default)]
    health_check: Option<::toml::Spanned<Health>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Peer {
    addr: String,
    #[serde(default)]
    weight: Option<u32>,
    #[serde(default)]
    max_fails: Option<u32>,
    #[serde(default)]
    fail_timeout: Option<String>,
    #[serde(default)]
    max_conns: Option<u32>,
    #[serde(default)]
    backup: bool,
    #[serde(default)]
    down: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Health {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    uri: Option<String>,
    #[serde(default)]
    status: Option<u16>,
    #[serde(default)]
    interval: Option<String>,
    #[serde(default)]
    timeout: Option<String>,
    #[serde(default)]
    rise: Option<u32>,
    #[serde(default)]
    fall: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Server {
    listen: Vec<String>,
    #[serde(default)]
    access_log: Option<String>,
    #[serde(default)]
    access_log_buffer: Option<String>,
    #[serde(default)]
    access_log_flush: Option<String>,
    #[serde(default)]
    location: Vec<::toml::Spanned<Location>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Location {
    #[serde(default)]
    access_log: Option<String>,
    #[serde(default)]
    access_log_buffer: Option<String>,
    #[serde(default)]
    access_log_flush: Option<String>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    exact: Option<String>,
    #[serde(default)]
    proxy_pass: Option<String>,
    #[serde(default)]
    lbd_status: bool,
    #[serde(default, rename = "return")]
    ret: Option<u16>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    proxy_next_upstream: Option<Vec<String>>,
    #[serde(default)]
    proxy_next_upstream_tries: Option<u32>,
    #[serde(default)]
    proxy_next_upstream_timeout: Option<String>,
    #[serde(default)]
    proxy_connect_timeout: Option<String>,
    #[serde(default)]
    proxy_read_timeout: Option<String>,
    #[serde(default)]
    proxy_send_timeout: Option<String>,
    #[serde(default)]
    client_max_body_size: Option<String>,
    #[serde(default)]
    proxy_set_header: Vec<(String, String)>,
}

pub(super) fn parse(path: &Path, text: &str) -> Result<Config, Err> {
    let f: File = ::toml::from_str(text).map_err(|e| {
        let pos = e
            .span()
            .map_or(Pos { line: 1, column: 1 }, |s| pos_of(text, s.start));
        (pos, e.message().to_owned())
    })?;
    let sp = |s: std::ops::Range<usize>| pos_of(text, s.start);
    let mut upstream_pos = Vec::new();
    let mut peer_pos = Vec::new();
    let mut upstreams = Vec::new();
    for (name, u) in f.upstream {
        let upos = sp(u.span());
        let u = u.into_inner();
        let mut kind = SchedulerKind::NginxRoundRobin;
        if let Some(b) = &u.balance {
            kind = scheduler(b.get_ref()).map_err(|m| (sp(b.span()), m))?;
        }
        let mut hash_key = None;
        if let Some(h) = &u.hash {
            hash_key = Some(parse_template(h.get_ref()).map_err(|m| (sp(h.span()), m))?);
            if u.balance.is_none() {
                kind = if u.consistent {
                    SchedulerKind::NginxChash
                } else {
                    SchedulerKind::NginxHash
                };
            }
        }
        let mut peers = Vec::new();
        let mut pp = Vec::new();
        for p in u.server {
            let ppos = sp(p.span());
            let p = p.into_inner();
            fn at<T>(pos: Pos, r: Result<T, String>) -> Result<T, Err> {
                r.map_err(|m| (pos, m))
            }
            pp.push(ppos);
            peers.push(PeerConf {
                addr: at(ppos, resolve(&p.addr))?,
                weight: p.weight.unwrap_or(1).max(1),
                max_fails: p.max_fails.unwrap_or(1),
                fail_timeout: match &p.fail_timeout {
                    Some(t) => at(ppos, parse_duration(t))?,
                    None => Duration::from_secs(10),
                },
                max_conns: p.max_conns.unwrap_or(0),
                backup: p.backup,
                down: p.down,
            });
        }
        let health = match u.health_check {
            None => None,
            Some(h) => {
                let hpos = sp(h.span());
                let h = h.into_inner();
                let at = |r: Result<_, String>| r.map_err(|m| (hpos, m));
                let mut c = HealthConf::default();
                if let Some(i) = &h.interval {
                    c.interval = at(parse_duration(i))?;
                }
                if let Some(i) = &h.timeout {
                    c.timeout = at(parse_duration(i))?;
                }
                c.rise = h.rise.unwrap_or(c.rise);
                c.fall = h.fall.unwrap_or(c.fall);
                c.kind = match h.kind.as_deref() {
                    Some("tcp") => HealthKind::Tcp,
                    None | Some("http") => HealthKind::Http {
                        uri: h.uri.unwrap_or_else(|| "/".into()),
                        status: h.status.unwrap_or(200),
                    },
                    Some(o) => {
                        return Err((hpos, format!("health_check type `{o}`: use http or tcp")));
                    }
                };
                if c.rise == 0 || c.fall == 0 || c.interval.is_zero() || c.timeout.is_zero() {
                    return Err((
                        hpos,
                        "health_check rise, fall, interval and timeout must be above 0".into(),
                    ));
                }
                Some(c)
            }
        };
        upstream_pos.push(upos);
        peer_pos.push(pp);
        upstreams.push(UpstreamConf {
            name,
            kind,
            hash_key,
            sticky_cookie: u.sticky_cookie,
            keepalive: u.keepalive.unwrap_or(32),
            peers,
            health,
        });
    }
    let mut servers = Vec::new();
    let mut server_pos = Vec::new();
    let mut loc_pos = Vec::new();
    for s in f.server {
        let spos = sp(s.span());
        let s = s.into_inner();
        let mut listen = Vec::new();
        for l in &s.listen {
            listen.push(listen_addr(l).map_err(|m| (spos, m))?);
        }
        let access_log = log_conf(
            s.access_log.as_deref(),
            s.access_log_buffer.as_deref(),
            s.access_log_flush.as_deref(),
        )
        .map_err(|m| (spos, m))?;
        let mut locations = Vec::new();
        let mut lp = Vec::new();
        for l in s.location {
            let lpos = sp(l.span());
            let l = l.into_inner();
            lp.push(lpos);
            let mut l = location(l).map_err(|m| (lpos, m))?;
            if l.access_log.is_none() {
                l.access_log.clone_from(&access_log);
            }
            locations.push(l);
        }
        server_pos.push(spos);
        loc_pos.push(lp);
        servers.push(ServerConf {
            listen,
            access_log,
            locations,
        });
    }
    let mut cfg = Config {
        path: path.to_path_buf(),
        workers: f.workers.unwrap_or(0),
        node_name: f.node_name.unwrap_or_else(default_node_name),
        pid_file: f.pid,
        access_log: f
            .access_log
            .as_deref()
            .map_or(LogTarget::Stdout, LogTarget::named),
        access_log_buffer: {
            // Each setting as the nginx parameter it stands for, with its position.
            let params: Vec<(String, Pos)> = (f.access_log_buffer.iter())
                .map(|b| (format!("buffer={}", b.get_ref()), sp(b.span())))
                .chain(
                    (f.access_log_flush.iter())
                        .map(|t| (format!("flush={}", t.get_ref()), sp(t.span()))),
                )
                .collect();
            parse_log_params(params.iter().map(|(p, _)| p.as_str())).map_err(|(i, m)| {
                let pos = params.get(i).map_or(Pos { line: 1, column: 1 }, |p| p.1);
                (pos, m)
            })?
        },
        shutdown_timeout: match &f.shutdown_timeout {
            Some(t) => parse_duration(t.get_ref()).map_err(|m| (sp(t.span()), m))?,
            None => Duration::from_secs(30),
        },
        upstreams,
        servers,
    };
    let where_ = |i: Item| -> Pos {
        let p = match i {
            Item::Upstream(u) => upstream_pos.get(u),
            Item::Peer(u, p) => peer_pos.get(u).and_then(|v| v.get(p)),
            Item::Server(s) => server_pos.get(s),
            Item::Location(s, l) => loc_pos.get(s).and_then(|v| v.get(l)),
        };
        p.copied().unwrap_or(Pos { line: 1, column: 1 })
    };
    implicit_upstreams(&mut cfg);
    validate(&cfg, &where_)?;
    Ok(cfg)
}

/// The `access_log*` keys of a `[[server]]` or `[[server.location]]` table.
fn log_conf(
    target: Option<&str>,
    buffer: Option<&str>,
    flush: Option<&str>,
) -> Result<Option<LogConf>, String> {
    let Some(target) = target else {
        if buffer.is_some() || flush.is_some() {
            return Err("access_log_buffer/access_log_flush need access_log here".into());
        }
        return Ok(None);
    };
    let target = LogTarget::named(target);
    let params: Vec<String> = (buffer.iter().map(|b| format!("buffer={b}")))
        .chain(flush.iter().map(|t| format!("flush={t}")))
        .collect();
    let buffer = parse_log_params(params.iter().map(String::as_str)).map_err(|(_, m)| m)?;
    Ok(Some(LogConf { target, buffer }))
}

fn location(l: Location) -> Result<LocationConf, String> {
    let access_log = log_conf(
        l.access_log.as_deref(),
        l.access_log_buffer.as_deref(),
        l.access_log_flush.as_deref(),
    )?;
    let (exact, path) = match (l.exact, l.path) {
        (Some(p), None) => (true, p),
        (None, Some(p)) => (false, p),
        _ => return Err("a location needs exactly one of `path` (prefix) or `exact`".into()),
    };
    if !path.starts_with('/') {
        return Err(format!("location path `{path}` must start with `/`"));
    }
    let handlers = usize::from(l.proxy_pass.is_some())
        + usize::from(l.lbd_status)
        + usize::from(l.ret.is_some());
    if handlers != 1 {
        return Err("a location needs exactly one of proxy_pass, lbd_status = true, return".into());
    }
    let action = if let Some(target) = l.proxy_pass {
        let t = target
            .strip_prefix("http://")
            .ok_or_else(|| format!("proxy_pass `{target}`: only http://UPSTREAM is supported"))?;
        let t = t.strip_suffix('/').unwrap_or(t);
        let mut p = ProxyConf::new(t.to_owned());
        if let Some(n) = &l.proxy_next_upstream {
            p.next_upstream = NextUpstream::parse(n.iter().map(String::as_str))?;
        }
        p.tries = l.proxy_next_upstream_tries.unwrap_or(0);
        if let Some(t) = &l.proxy_next_upstream_timeout {
            p.next_timeout = parse_duration(t)?;
        }
        if let Some(t) = &l.proxy_connect_timeout {
            p.connect_timeout = parse_duration(t)?;
        }
        if let Some(t) = &l.proxy_read_timeout {
            p.read_timeout = parse_duration(t)?;
        }
        if let Some(t) = &l.proxy_send_timeout {
            p.send_timeout = parse_duration(t)?;
        }
        if let Some(s) = &l.client_max_body_size {
            p.client_max_body_size = parse_size(s)?;
        }
        for (h, v) in &l.proxy_set_header {
            let h = parse_header_name(h)?;
            p.set_headers.retain(|(n, _)| *n != h);
            p.set_headers.push((h, parse_template(v)?));
        }
        Action::Proxy(p)
    } else if l.lbd_status {
        Action::Status
    } else {
        Action::Return {
            status: l.ret.unwrap_or(200),
            body: l.body.unwrap_or_default(),
        }
    };
    Ok(LocationConf {
        exact,
        path,
        action,
        access_log,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::super::tests::err_at;
    use super::*;

    #[test]
    fn toml_parses_and_reports_positions() {
        let t = r#"
workers = 3
node_name = "lb2"
access_log = "off"
[upstream.b]
balance = "least_conn"
[[upstream.b.server]]
addr = "127.0.0.1:1"
weight = 2
fail_timeout = "5s"
[[upstream.b.server]]
addr = "127.0.0.1:2"
backup = true
[upstream.b.health_check]
type = "tcp"
interval = "500ms"
[[server]]
listen = ["127.0.0.1:0"]
[[server.location]]
path = "/"
proxy_pass = "http://b"
proxy_next_upstream = ["error", "http_503"]
proxy_set_header = [["X-Real-IP", "$remote_addr"]]
[[server.location]]
exact = "/lbd-status"
lbd_status = true
"#;
        let c = parse_str(Path::new("c.toml"), t).unwrap();
        assert_eq!(c.workers, 3);
        assert_eq!(c.access_log, LogTarget::Off);
        let u = &c.upstreams[0];
        assert_eq!(u.kind, SchedulerKind::NginxLeastConn);
        assert_eq!(u.peers[0].fail_timeout, Duration::from_secs(5));
        assert!(u.peers[1].backup);
        assert_eq!(u.health.as_ref().unwrap().kind, HealthKind::Tcp);
        let (l, _, m) = err_at("workers = 1\nbogus = 2\n", "c.toml");
        assert_eq!(l, 2, "{m}");
        let (l, _, m) = err_at(
            "[[server]]\nlisten = [\"1\"]\n[[server.location]]\npath = \"/\"\nproxy_pass = \"http://x\"\n",
            "c.toml",
        );
        assert_eq!(l, 3, "{m}");
    }
}
