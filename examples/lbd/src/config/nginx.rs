//! The nginx-syntax reader: turns the subset of nginx's configuration language described in
//! the [crate documentation](crate) into a [`Config`], every error at its line and column.

use super::*;

#[derive(Clone, Debug)]
struct Tok {
    text: String,
    pos: Pos,
    quoted: bool,
}

#[derive(Clone, Debug)]
enum Node {
    Directive {
        name: Tok,
        args: Vec<Tok>,
        block: Option<Vec<Self>>,
    },
}

type Err = (Pos, String);

struct Lexer<'a> {
    chars: std::iter::Peekable<std::str::CharIndices<'a>>,
    line: usize,
    col: usize,
    end: Pos,
}

#[derive(Debug)]
enum Lex {
    Word(Tok),
    Semi(Pos),
    Open(Pos),
    Close(Pos),
}

impl Lexer<'_> {
    fn bump(&mut self) -> Option<char> {
        let (_, c) = self.chars.next()?;
        if c == '\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        self.end = Pos {
            line: self.line,
            column: self.col,
        };
        Some(c)
    }
    fn pos(&self) -> Pos {
        Pos {
            line: self.line,
            column: self.col,
        }
    }
    fn next_tok(&mut self) -> Result<Option<Lex>, Err> {
        loop {
            let Some(&(_, c)) = self.chars.peek() else {
                return Ok(None);
            };
            if c.is_whitespace() {
                self.bump();
            } else if c == '#' {
                while let Some(&(_, c)) = self.chars.peek() {
                    if c == '\n' {
                        break;
                    }
                    self.bump();
                }
            } else {
                break;
            }
        }
        let pos = self.pos();
        let Some(&(_, c)) = self.chars.peek() else {
            return Ok(None);
        };
        match c {
            ';' => {
                self.bump();
                return Ok(Some(Lex::Semi(pos)));
            }
            '{' => {
                self.bump();
                return Ok(Some(Lex::Open(pos)));
            }
            '}' => {
                self.bump();
                return Ok(Some(Lex::Close(pos)));
            }
            '"' | '\'' => {
                self.bump();
                let mut text = String::new();
                loop {
                    match self.bump() {
                        None => {
                            return Err((pos, format!("unterminated string: add the closing {c}")));
                        }
                        Some('\\') => match self.bump() {
                            Some('n') => text.push('\n'),
                            Some('t') => text.push('\t'),
                            Some(o) => text.push(o),
                            None => {
                                return Err((
                                    pos,
                                    format!("unterminated string: add the closing {c}"),
                                ));
                            }
                        },
                        Some(q) if q == c => break,
                        Some(o) => text.push(o),
                    }
                }
                return Ok(Some(Lex::Word(Tok {
                    text,
                    pos,
                    quoted: true,
                })));
            }
            _ => {}
        }
        let mut text = String::new();
        while let Some(&(_, c)) = self.chars.peek() {
            if c.is_whitespace() || c == ';' || c == '{' || c == '}' {
                break;
            }
            if c == '\\' {
                self.bump();
                if let Some(n) = self.bump() {
                    text.push(n);
                }
                continue;
            }
            text.push(c);
            self.bump();
        }
        Ok(Some(Lex::Word(Tok {
            text,
            pos,
            quoted: false,
        })))
    }
}

fn parse_block(lx: &mut Lexer<'_>, open: Option<Pos>) -> Result<Vec<Node>, Err> {
    let mut nodes = Vec::new();
    let mut words: Vec<Tok> = Vec::new();
    loop {
        match lx.next_tok()? {
            None => {
                if let Some(p) = open {
                    return Err((p, "unclosed `{`: add the matching `}`".into()));
                }
                if let Some(w) = words.first() {
                    return Err((
                        lx.end,
                        format!("unexpected end of file: directive `{}` needs a `;`", w.text),
                    ));
                }
                return Ok(nodes);
            }
            Some(Lex::Word(t)) => words.push(t),
            Some(Lex::Semi(p)) => {
                let mut it = words.drain(..);
                let Some(name) = it.next() else {
                    return Err((p, "unexpected `;`: remove it".into()));
                };
                nodes.push(Node::Directive {
                    name,
                    args: it.collect(),
                    block: None,
                });
            }
            Some(Lex::Open(p)) => {
                let mut it = words.drain(..);
                let Some(name) = it.next() else {
                    return Err((p, "unexpected `{`: a block needs a directive name".into()));
                };
                let args = it.collect();
                let block = parse_block(lx, Some(p))?;
                nodes.push(Node::Directive {
                    name,
                    args,
                    block: Some(block),
                });
            }
            Some(Lex::Close(p)) => {
                if let Some(w) = words.first() {
                    return Err((
                        w.pos,
                        format!("directive `{}` is not terminated by `;`", w.text),
                    ));
                }
                if open.is_none() {
                    return Err((p, "unexpected `}`: no block is open here".into()));
                }
                return Ok(nodes);
            }
        }
    }
}

/// `access_log off | stdout | stderr | PATH [combined] [buffer=SIZE] [flush=TIME]`.
fn log_directive(name: &Tok, args: &[Tok]) -> Result<LogConf, Err> {
    need_args(name, args, 1, usize::MAX)?;
    let target = LogTarget::named(&args[0].text);
    if target == LogTarget::Off {
        need_args(name, args, 1, 1)?;
    }
    let buffer = parse_log_params(args[1..].iter().map(|a| a.text.as_str()))
        .map_err(|(i, m)| (args.get(1 + i).map_or(name.pos, |a| a.pos), m))?;
    Ok(LogConf { target, buffer })
}

fn need_args(name: &Tok, args: &[Tok], min: usize, max: usize) -> Result<(), Err> {
    if args.len() < min || args.len() > max {
        let want = if min == max {
            format!("{min}")
        } else if max == usize::MAX {
            format!("at least {min}")
        } else {
            format!("{min} to {max}")
        };
        return Err((
            name.pos,
            format!(
                "`{}` takes {want} argument(s), {} given",
                name.text,
                args.len()
            ),
        ));
    }
    Ok(())
}

fn no_block(name: &Tok, block: Option<&Vec<Node>>) -> Result<(), Err> {
    if block.is_some() {
        return Err((
            name.pos,
            format!("`{}` does not take a block: end it with `;`", name.text),
        ));
    }
    Ok(())
}

fn block<'a>(name: &Tok, block: Option<&'a Vec<Node>>) -> Result<&'a [Node], Err> {
    block.map(Vec::as_slice).ok_or_else(|| {
        (
            name.pos,
            format!("`{}` needs a block `{{ ... }}`", name.text),
        )
    })
}

fn at<T>(t: &Tok, r: Result<T, String>) -> Result<T, Err> {
    r.map_err(|m| (t.pos, m))
}

fn num<T: std::str::FromStr>(t: &Tok, what: &str) -> Result<T, Err> {
    t.text.parse::<T>().map_err(|_| {
        (
            t.pos,
            format!("invalid {what} `{}`: give a whole number", t.text),
        )
    })
}

fn flag(t: &Tok) -> Result<bool, Err> {
    match t.text.as_str() {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err((t.pos, format!("expected `on` or `off`, found `{}`", t.text))),
    }
}

struct Positions {
    upstreams: Vec<Pos>,
    peers: Vec<Vec<Pos>>,
    servers: Vec<Pos>,
    locations: Vec<Vec<Pos>>,
}

pub(super) fn parse(path: &Path, text: &str) -> Result<Config, Err> {
    let mut lx = Lexer {
        chars: text.char_indices().peekable(),
        line: 1,
        col: 1,
        end: Pos { line: 1, column: 1 },
    };
    let nodes = parse_block(&mut lx, None)?;
    let mut cfg = Config {
        path: path.to_path_buf(),
        workers: 0,
        node_name: String::new(),
        pid_file: None,
        access_log: LogTarget::Stdout,
        access_log_buffer: None,
        shutdown_timeout: Duration::from_secs(30),
        upstreams: Vec::new(),
        servers: Vec::new(),
    };
    let mut ps = Positions {
        upstreams: Vec::new(),
        peers: Vec::new(),
        servers: Vec::new(),
        locations: Vec::new(),
    };
    main_block(&nodes, &mut cfg, &mut ps, true)?;
    implicit_upstreams(&mut cfg);
    if cfg.node_name.is_empty() {
        cfg.node_name = default_node_name();
    }
    let where_ = |i: Item| -> Pos {
        let p = match i {
            Item::Upstream(u) => ps.upstreams.get(u),
            Item::Peer(u, p) => ps.peers.get(u).and_then(|v| v.get(p)),
            Item::Server(s) => ps.servers.get(s),
            Item::Location(s, l) => ps.locations.get(s).and_then(|v| v.get(l)),
        };
        p.copied().unwrap_or(Pos { line: 1, column: 1 })
    };
    validate(&cfg, &where_)?;
    Ok(cfg)
}

/// The main context and `http { }` (which we flatten).
fn main_block(nodes: &[Node], cfg: &mut Config, ps: &mut Positions, top: bool) -> Result<(), Err> {
    for Node::Directive {
        name,
        args,
        block: b,
    } in nodes
    {
        match name.text.as_str() {
            "http" if top => {
                need_args(name, args, 0, 0)?;
                main_block(block(name, b.as_ref())?, cfg, ps, false)?;
            }
            "events" if top => {
                // Accepted for nginx compatibility; connections are not limited.
                block(name, b.as_ref())?;
            }
            "worker_processes" | "workers" | "worker_threads" => {
                no_block(name, b.as_ref())?;
                need_args(name, args, 1, 1)?;
                cfg.workers = if args[0].text == "auto" {
                    0
                } else {
                    num(&args[0], "worker count")?
                };
            }
            "node_name" => {
                no_block(name, b.as_ref())?;
                need_args(name, args, 1, 1)?;
                cfg.node_name.clone_from(&args[0].text);
            }
            "pid" => {
                no_block(name, b.as_ref())?;
                need_args(name, args, 1, 1)?;
                cfg.pid_file = Some(PathBuf::from(&args[0].text));
            }
            "shutdown_timeout" | "worker_shutdown_timeout" => {
                no_block(name, b.as_ref())?;
                need_args(name, args, 1, 1)?;
                cfg.shutdown_timeout = at(&args[0], parse_duration(&args[0].text))?;
            }
            "access_log" => {
                no_block(name, b.as_ref())?;
                let l = log_directive(name, args)?;
                cfg.access_log = l.target;
                cfg.access_log_buffer = l.buffer;
            }
            // Accepted and ignored: errors go to standard error.
            "error_log" | "include" if !top || name.text == "error_log" => {
                if name.text == "include" {
                    return Err((
                        name.pos,
                        "`include` is not supported: put everything in one file".into(),
                    ));
                }
            }
            "upstream" => {
                need_args(name, args, 1, 1)?;
                let body = block(name, b.as_ref())?;
                ps.upstreams.push(name.pos);
                let mut peers = Vec::new();
                let u = upstream(&args[0].text, body, &mut peers)?;
                ps.peers.push(peers);
                cfg.upstreams.push(u);
            }
            "server" => {
                need_args(name, args, 0, 0)?;
                let body = block(name, b.as_ref())?;
                ps.servers.push(name.pos);
                let mut locs = Vec::new();
                let s = server(body, &mut locs)?;
                ps.locations.push(locs);
                cfg.servers.push(s);
            }
            other => {
                return Err((
                    name.pos,
                    format!(
                        "unknown directive `{other}` here: see the lbd documentation for the supported subset"
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn upstream(uname: &str, nodes: &[Node], peer_pos: &mut Vec<Pos>) -> Result<UpstreamConf, Err> {
    let mut u = UpstreamConf {
        name: uname.to_owned(),
        kind: SchedulerKind::NginxRoundRobin,
        hash_key: None,
        sticky_cookie: None,
        keepalive: 32,
        peers: Vec::new(),
        health: None,
    };
    let mut balancer: Option<Pos> = None;
    let mut set_balancer =
        |name: &Tok, kind: SchedulerKind, u: &mut UpstreamConf| -> Result<(), Err> {
            if let Some(p) = balancer {
                return Err((
                    name.pos,
                    format!(
                        "a balancer was already chosen at line {}: keep only one",
                        p.line
                    ),
                ));
            }
            balancer = Some(name.pos);
            u.kind = kind;
            Ok(())
        };
    for Node::Directive {
        name,
        args,
        block: b,
    } in nodes
    {
        no_block(name, b.as_ref())?;
        match name.text.as_str() {
            "server" => {
                need_args(name, args, 1, usize::MAX)?;
                peer_pos.push(name.pos);
                u.peers.push(peer(args)?);
            }
            "ip_hash" => {
                need_args(name, args, 0, 0)?;
                set_balancer(name, SchedulerKind::NginxIpHash, &mut u)?;
            }
            "least_conn" => {
                need_args(name, args, 0, 0)?;
                set_balancer(name, SchedulerKind::NginxLeastConn, &mut u)?;
            }
            "hash" => {
                need_args(name, args, 1, 2)?;
                let kind = match args.get(1) {
                    None => SchedulerKind::NginxHash,
                    Some(t) if t.text == "consistent" => SchedulerKind::NginxChash,
                    Some(t) => {
                        return Err((t.pos, format!("expected `consistent`, found `{}`", t.text)));
                    }
                };
                set_balancer(name, kind, &mut u)?;
                u.hash_key = Some(at(&args[0], parse_template(&args[0].text))?);
            }
            "random" => {
                need_args(name, args, 0, 2)?;
                let kind = match args.first() {
                    None => SchedulerKind::NginxRandom,
                    Some(t) if t.text == "two" => {
                        if let Some(m) = args.get(1)
                            && m.text != "least_conn"
                        {
                            return Err((
                                m.pos,
                                format!(
                                    "`random two` supports only the `least_conn` method, found `{}`",
                                    m.text
                                ),
                            ));
                        }
                        SchedulerKind::NginxRandomTwo
                    }
                    Some(t) => {
                        return Err((t.pos, format!("expected `two`, found `{}`", t.text)));
                    }
                };
                set_balancer(name, kind, &mut u)?;
            }
            "scheduler" | "balance" => {
                need_args(name, args, 1, 1)?;
                let kind = at(&args[0], scheduler(&args[0].text))?;
                set_balancer(name, kind, &mut u)?;
            }
            "sticky" => {
                need_args(name, args, 2, usize::MAX)?;
                if args[0].text != "cookie" {
                    return Err((
                        args[0].pos,
                        format!(
                            "only `sticky cookie NAME` is supported, found `{}`",
                            args[0].text
                        ),
                    ));
                }
                let c = &args[1].text;
                if c.is_empty()
                    || !c
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                {
                    return Err((
                        args[1].pos,
                        format!("invalid cookie name `{c}`: use letters, digits, `_` and `-`"),
                    ));
                }
                u.sticky_cookie = Some(c.clone());
            }
            "keepalive" => {
                need_args(name, args, 1, 1)?;
                u.keepalive = num(&args[0], "connection count")?;
            }
            "health_check" => {
                let mut h = HealthConf::default();
                let mut uri = "/".to_owned();
                let mut status = 200u16;
                let mut tcp = false;
                for a in args {
                    let (k, v) = a.text.split_once('=').ok_or_else(|| {
                        (
                            a.pos,
                            format!("expected key=value in health_check, found `{}`", a.text),
                        )
                    })?;
                    match k {
                        "interval" => h.interval = at(a, parse_duration(v))?,
                        "timeout" => h.timeout = at(a, parse_duration(v))?,
                        "rise" | "passes" => {
                            h.rise = at(
                                a,
                                v.parse()
                                    .map_err(|_| format!("invalid {k} `{v}`: give a number ≥ 1")),
                            )?
                        }
                        "fall" | "fails" => {
                            h.fall = at(
                                a,
                                v.parse()
                                    .map_err(|_| format!("invalid {k} `{v}`: give a number ≥ 1")),
                            )?
                        }
                        "uri" => {
                            if !v.starts_with('/') {
                                return Err((
                                    a.pos,
                                    format!("health_check uri `{v}` must start with `/`"),
                                ));
                            }
                            uri = v.to_owned();
                        }
                        "status" => {
                            status = at(
                                a,
                                v.parse()
                                    .map_err(|_| format!("invalid status `{v}`: give 100..599")),
                            )?
                        }
                        "type" => match v {
                            "tcp" => tcp = true,
                            "http" => tcp = false,
                            _ => {
                                return Err((
                                    a.pos,
                                    format!("health_check type `{v}`: use http or tcp"),
                                ));
                            }
                        },
                        _ => {
                            return Err((
                                a.pos,
                                format!(
                                    "unknown health_check parameter `{k}`: use interval, timeout, rise, fall, uri, status, type"
                                ),
                            ));
                        }
                    }
                }
                if h.rise == 0 || h.fall == 0 || h.interval.is_zero() || h.timeout.is_zero() {
                    return Err((
                        name.pos,
                        "health_check rise, fall, interval and timeout must be above 0".into(),
                    ));
                }
                h.kind = if tcp {
                    HealthKind::Tcp
                } else {
                    HealthKind::Http { uri, status }
                };
                u.health = Some(h);
            }
            "keepalive_timeout" | "keepalive_requests" | "zone" => {}
            other => {
                return Err((
                    name.pos,
                    format!(
                        "unknown directive `{other}` in upstream: use server, ip_hash, least_conn, hash, random, scheduler, sticky, keepalive, health_check"
                    ),
                ));
            }
        }
    }
    Ok(u)
}

fn peer(args: &[Tok]) -> Result<PeerConf, Err> {
    let addr = at(&args[0], resolve(&args[0].text))?;
    let mut p = PeerConf {
        addr,
        weight: 1,
        max_fails: 1,
        fail_timeout: Duration::from_secs(10),
        max_conns: 0,
        backup: false,
        down: false,
    };
    for a in &args[1..] {
        match a.text.split_once('=') {
            Some(("weight", v)) => {
                p.weight = at(
                    a,
                    v.parse()
                        .ok()
                        .filter(|w| *w >= 1)
                        .ok_or_else(|| format!("invalid weight `{v}`: give a number ≥ 1")),
                )?;
            }
            Some(("max_fails", v)) => {
                p.max_fails = at(
                    a,
                    v.parse()
                        .map_err(|_| format!("invalid max_fails `{v}`: give a number")),
                )?
            }
            Some(("max_conns", v)) => {
                p.max_conns = at(
                    a,
                    v.parse()
                        .map_err(|_| format!("invalid max_conns `{v}`: give a number")),
                )?
            }
            Some(("fail_timeout", v)) => p.fail_timeout = at(a, parse_duration(v))?,
            None if a.text == "backup" => p.backup = true,
            None if a.text == "down" => p.down = true,
            _ => {
                return Err((
                    a.pos,
                    format!(
                        "unknown server parameter `{}`: use weight=, max_fails=, fail_timeout=, max_conns=, backup, down",
                        a.text
                    ),
                ));
            }
        }
    }
    Ok(p)
}

fn server(nodes: &[Node], loc_pos: &mut Vec<Pos>) -> Result<ServerConf, Err> {
    let mut s = ServerConf {
        listen: Vec::new(),
        access_log: None,
        locations: Vec::new(),
    };
    // Server-level proxy settings are inherited by locations that do not set them.
    let mut inherited: Vec<&Node> = Vec::new();
    for n in nodes {
        let Node::Directive {
            name,
            args,
            block: b,
        } = n;
        match name.text.as_str() {
            "listen" => {
                no_block(name, b.as_ref())?;
                need_args(name, args, 1, usize::MAX)?;
                s.listen.push(at(&args[0], listen_addr(&args[0].text))?);
            }
            "server_name" => no_block(name, b.as_ref())?,
            "access_log" => {
                no_block(name, b.as_ref())?;
                s.access_log = Some(log_directive(name, args)?);
            }
            "location" => {}
            _ if name.text.starts_with("proxy_") || name.text == "client_max_body_size" => {
                no_block(name, b.as_ref())?;
                inherited.push(n);
            }
            other => {
                return Err((
                    name.pos,
                    format!(
                        "unknown directive `{other}` in server: use listen, server_name, location, access_log and proxy_* settings"
                    ),
                ));
            }
        }
    }
    for n in nodes {
        let Node::Directive {
            name,
            args,
            block: b,
        } = n;
        if name.text != "location" {
            continue;
        }
        let body = block(name, b.as_ref())?;
        let (exact, path) = match args.as_slice() {
            [p] => (false, p),
            [eq, p] if eq.text == "=" => (true, p),
            [m, _] => {
                return Err((
                    m.pos,
                    format!(
                        "location modifier `{}` is not supported: use `=` or none",
                        m.text
                    ),
                ));
            }
            _ => return Err((name.pos, "location takes `[=] PATH`".into())),
        };
        if !path.text.starts_with('/') {
            return Err((
                path.pos,
                format!("location path `{}` must start with `/`", path.text),
            ));
        }
        loc_pos.push(name.pos);
        let mut l = location(exact, &path.text, &inherited, body, name)?;
        if l.access_log.is_none() {
            l.access_log.clone_from(&s.access_log);
        }
        s.locations.push(l);
    }
    Ok(s)
}

fn location(
    exact: bool,
    path: &str,
    inherited: &[&Node],
    nodes: &[Node],
    lname: &Tok,
) -> Result<LocationConf, Err> {
    let mut action: Option<Action> = None;
    let mut access_log = None;
    let mut settings: Vec<&Node> = inherited.to_vec();
    let mut own_headers = false;
    for n in nodes {
        let Node::Directive {
            name,
            args,
            block: b,
        } = n;
        no_block(name, b.as_ref())?;
        match name.text.as_str() {
            "proxy_pass" => {
                need_args(name, args, 1, 1)?;
                let target = args[0].text.strip_prefix("http://").ok_or_else(|| {
                    (
                        args[0].pos,
                        format!(
                            "proxy_pass `{}`: only http://UPSTREAM is supported",
                            args[0].text
                        ),
                    )
                })?;
                let target = target.strip_suffix('/').unwrap_or(target);
                if target.is_empty() || target.contains('/') {
                    return Err((
                        args[0].pos,
                        "proxy_pass takes http://UPSTREAM without a URI part".into(),
                    ));
                }
                if action.is_some() {
                    return Err((name.pos, "this location already has a handler: keep one of proxy_pass, lbd_status, return".into()));
                }
                action = Some(Action::Proxy(ProxyConf::new(target.to_owned())));
            }
            "access_log" => access_log = Some(log_directive(name, args)?),
            "lbd_status" => {
                need_args(name, args, 0, 0)?;
                if action.is_some() {
                    return Err((name.pos, "this location already has a handler: keep one of proxy_pass, lbd_status, return".into()));
                }
                action = Some(Action::Status);
            }
            "return" => {
                need_args(name, args, 1, 2)?;
                let status: u16 = num(&args[0], "status")?;
                if !(100..=599).contains(&status) {
                    return Err((
                        args[0].pos,
                        format!("return status {status} is out of 100..599"),
                    ));
                }
                if action.is_some() {
                    return Err((name.pos, "this location already has a handler: keep one of proxy_pass, lbd_status, return".into()));
                }
                action = Some(Action::Return {
                    status,
                    body: args.get(1).map(|t| t.text.clone()).unwrap_or_default(),
                });
            }
            _ if name.text.starts_with("proxy_") || name.text == "client_max_body_size" => {
                if name.text == "proxy_set_header" && !own_headers {
                    // As in nginx, headers set in the location replace the inherited ones.
                    own_headers = true;
                    settings.retain(|Node::Directive { name, .. }| name.text != "proxy_set_header");
                }
                settings.push(n);
            }
            other => {
                return Err((
                    name.pos,
                    format!(
                        "unknown directive `{other}` in location: use proxy_pass, lbd_status, return, access_log and proxy_* settings"
                    ),
                ));
            }
        }
    }
    let Some(mut action) = action else {
        return Err((
            lname.pos,
            "location has no handler: add proxy_pass http://UPSTREAM, lbd_status or return".into(),
        ));
    };
    if let Action::Proxy(p) = &mut action {
        for Node::Directive { name, args, .. } in settings {
            proxy_setting(p, name, args)?;
        }
    }
    Ok(LocationConf {
        exact,
        path: path.to_owned(),
        action,
        access_log,
    })
}

fn proxy_setting(p: &mut ProxyConf, name: &Tok, args: &[Tok]) -> Result<(), Err> {
    match name.text.as_str() {
        "proxy_next_upstream" => {
            need_args(name, args, 1, usize::MAX)?;
            p.next_upstream = at(
                name,
                NextUpstream::parse(args.iter().map(|t| t.text.as_str())),
            )?;
        }
        "proxy_next_upstream_tries" => {
            need_args(name, args, 1, 1)?;
            p.tries = num(&args[0], "try count")?;
        }
        "proxy_next_upstream_timeout" => {
            need_args(name, args, 1, 1)?;
            p.next_timeout = at(&args[0], parse_duration(&args[0].text))?;
        }
        "proxy_connect_timeout" => {
            need_args(name, args, 1, 1)?;
            p.connect_timeout = at(&args[0], parse_duration(&args[0].text))?;
        }
        "proxy_read_timeout" => {
            need_args(name, args, 1, 1)?;
            p.read_timeout = at(&args[0], parse_duration(&args[0].text))?;
        }
        "proxy_send_timeout" => {
            need_args(name, args, 1, 1)?;
            p.send_timeout = at(&args[0], parse_duration(&args[0].text))?;
        }
        "client_max_body_size" => {
            need_args(name, args, 1, 1)?;
            p.client_max_body_size = at(&args[0], parse_size(&args[0].text))?;
        }
        "proxy_set_header" => {
            need_args(name, args, 1, 2)?;
            let h = at(&args[0], parse_header_name(&args[0].text))?;
            let v = args.get(1).map_or("", |t| t.text.as_str());
            let t = at(args.get(1).unwrap_or(&args[0]), parse_template(v))?;
            p.set_headers.retain(|(n, _)| *n != h);
            p.set_headers.push((h, t));
        }
        "proxy_http_version" => {
            need_args(name, args, 1, 1)?;
            if args[0].text != "1.1" && args[0].text != "1.0" {
                return Err((args[0].pos, "proxy_http_version: use 1.1".into()));
            }
        }
        "proxy_buffering" | "proxy_request_buffering" | "proxy_intercept_errors" => {
            need_args(name, args, 1, 1)?;
            flag(&args[0])?;
        }
        other => {
            return Err((
                name.pos,
                format!(
                    "unsupported directive `{other}`: see the lbd documentation for the proxy_* subset"
                ),
            ));
        }
    }
    let _ = args.iter().any(|t| t.quoted);
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::super::tests::err_at;
    use super::*;

    const SEED: &str = r#"
worker_processes 2;
node_name lb1;
upstream backend {
    ip_hash;
    server 127.0.0.1:8081 weight=4 max_fails=2 fail_timeout=30s;
    server 127.0.0.1:8082;
    server 127.0.0.1:8083 down;
    keepalive 16;
    health_check interval=1s rise=2 fall=3 uri=/health;
}
upstream rr {
    server 127.0.0.1:9001;
    server 127.0.0.1:9002 backup;
    sticky cookie srv;
}
upstream w { scheduler wlc; server 127.0.0.1:1; server 127.0.0.1:2; }
upstream h { hash $cookie_x consistent; server 127.0.0.1:1; server 127.0.0.1:2; }
upstream r { random two least_conn; server 127.0.0.1:1; server 127.0.0.1:2; }
server {
    listen 127.0.0.1:8080;
    proxy_connect_timeout 2s;
    location / {
        proxy_pass http://backend;
        proxy_next_upstream error timeout http_502 non_idempotent;
        proxy_next_upstream_tries 3;
        proxy_next_upstream_timeout 10s;
        proxy_read_timeout 5s;
        proxy_set_header Host $host;
        proxy_set_header X-Real-IP $remote_addr;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
    }
    location = /lbd-status { lbd_status; }
}
"#;

    #[test]
    fn nginx_seed_parses() {
        let c = parse_str(Path::new("lbd.conf"), SEED).unwrap();
        assert_eq!(c.workers, 2);
        assert_eq!(c.node_name, "lb1");
        assert_eq!(c.upstreams.len(), 5);
        let b = &c.upstreams[0];
        assert_eq!(b.kind, SchedulerKind::NginxIpHash);
        assert_eq!(b.keepalive, 16);
        assert_eq!(b.peers[0].weight, 4);
        assert_eq!(b.peers[0].max_fails, 2);
        assert_eq!(b.peers[0].fail_timeout, Duration::from_secs(30));
        assert!(b.peers[2].down);
        assert_eq!(b.health.as_ref().unwrap().interval, Duration::from_secs(1));
        assert!(c.upstreams[1].peers[1].backup);
        assert_eq!(c.upstreams[1].sticky_cookie.as_deref(), Some("srv"));
        assert_eq!(c.upstreams[2].kind, SchedulerKind::Wlc);
        assert_eq!(c.upstreams[3].kind, SchedulerKind::NginxChash);
        assert_eq!(c.upstreams[4].kind, SchedulerKind::NginxRandomTwo);
        let l = &c.servers[0].locations[0];
        let Action::Proxy(p) = &l.action else {
            panic!("not proxy")
        };
        assert_eq!(p.tries, 3);
        assert_eq!(p.connect_timeout, Duration::from_secs(2));
        assert!(p.next_upstream.has(NextUpstream::HTTP_502));
        assert!(p.next_upstream.has(NextUpstream::NON_IDEMPOTENT));
        assert!(!p.next_upstream.has(NextUpstream::HTTP_500));
        assert_eq!(p.set_headers.len(), 4);
        assert!(c.servers[0].locations[1].exact);
        assert!(matches!(c.servers[0].locations[1].action, Action::Status));
    }

    #[test]
    fn nginx_errors_name_line_and_column() {
        let (l, c, m) = err_at(
            "upstream a {\n  server 127.0.0.1:1 wieght=2;\n}\n",
            "x.conf",
        );
        assert_eq!((l, c), (2, 22), "{m}");
        assert!(m.contains("wieght=2"), "{m}");
        let (l, _, m) = err_at(
            "server {\n listen 1;\n location / { proxy_pass http://nope; }\n}\n",
            "x.conf",
        );
        assert_eq!(l, 3);
        assert!(m.contains("unknown upstream `nope`"), "{m}");
        let (l, c, _) = err_at("upstream a {\n server 127.0.0.1:1\n}\n", "x.conf");
        assert_eq!((l, c), (2, 2));
        let (l, _, m) = err_at(
            "upstream a { hash $remote_addr; server 127.0.0.1:1 backup; }",
            "x.conf",
        );
        assert_eq!(l, 1);
        assert!(m.contains("backup"), "{m}");
        let (_, _, m) = err_at(
            "upstream a { scheduler bogus; server 127.0.0.1:1; }",
            "x.conf",
        );
        assert!(m.contains("unknown scheduler"), "{m}");
        let (l, _, m) = err_at(
            "server {\n listen 1;\n location / {\n proxy_pass http://u;\n proxy_next_upstream error http_999;\n }\n}",
            "x.conf",
        );
        assert_eq!(l, 5);
        assert!(m.contains("http_999"), "{m}");
        let (l, _, _) = err_at(
            "server { listen 1;\n location / { return 200 \"x; } }",
            "x.conf",
        );
        assert_eq!(l, 2);
    }
}
