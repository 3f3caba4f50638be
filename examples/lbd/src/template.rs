//! Strings with nginx variables (`$host`, `$remote_addr`, `$cookie_NAME`, `"$scheme://$host"`),
//! parsed once at configuration time and evaluated per request into a reused buffer.

use std::io::Write as _;
use std::net::SocketAddr;

use http::request::Parts;
use http::{HeaderName, header};

/// A variable name that `lbd` does not know, or a malformed `${...}`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TemplateError {
    /// `$name` is not a supported variable.
    #[error(
        "unknown variable `${0}`: use $host, $http_host, $remote_addr, $remote_port, \
         $proxy_add_x_forwarded_for, $scheme, $request_uri, $uri, $args, $request_method, \
         $server_addr, $server_port, $proxy_host, $node_name, $http_NAME, $cookie_NAME or $arg_NAME"
    )]
    Unknown(String),
    /// `${` without `}` or `$` without a name.
    #[error("malformed variable in `{0}`: write $name or ${{name}}")]
    Malformed(String),
}

/// One variable.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Var {
    Host,
    RemoteAddr,
    RemotePort,
    ProxyAddXff,
    Scheme,
    RequestUri,
    Uri,
    Args,
    Method,
    ServerAddr,
    ServerPort,
    ProxyHost,
    NodeName,
    Http(HeaderName),
    Cookie(Box<str>),
    Arg(Box<str>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Lit(Box<str>),
    Var(Var),
}

/// A parsed string with variables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

/// What a template is evaluated against.
#[derive(Clone, Copy, Debug)]
pub struct Ctx<'a> {
    /// The client request.
    pub req: &'a Parts,
    /// The client's address.
    pub remote: SocketAddr,
    /// The address the client connected to.
    pub local: SocketAddr,
    /// The upstream name of `proxy_pass`.
    pub proxy_host: &'a str,
    /// The node name.
    pub node_name: &'a str,
}

impl Template {
    /// Parse `s`.
    ///
    /// # Errors
    /// [`TemplateError`] for an unknown or malformed variable.
    pub fn parse(s: &str) -> Result<Self, TemplateError> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut rest = s;
        while let Some(i) = rest.find('$') {
            lit.push_str(&rest[..i]);
            let after = &rest[i + 1..];
            let (name, tail) = if let Some(b) = after.strip_prefix('{') {
                let end = b
                    .find('}')
                    .ok_or_else(|| TemplateError::Malformed(s.to_owned()))?;
                (&b[..end], &b[end + 1..])
            } else {
                let n = after
                    .bytes()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == b'_')
                    .count();
                (&after[..n], &after[n..])
            };
            if name.is_empty() {
                return Err(TemplateError::Malformed(s.to_owned()));
            }
            if !lit.is_empty() {
                parts.push(Part::Lit(std::mem::take(&mut lit).into_boxed_str()));
            }
            parts.push(Part::Var(var(name)?));
            rest = tail;
        }
        lit.push_str(rest);
        if !lit.is_empty() {
            parts.push(Part::Lit(lit.into_boxed_str()));
        }
        Ok(Self { parts })
    }

    /// Whether the template is the empty string (`proxy_set_header X "";` removes `X`).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// The constant text if the template has no variable.
    #[must_use]
    pub fn as_literal(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [] => Some(""),
            [Part::Lit(s)] => Some(s),
            _ => None,
        }
    }

    /// Append the value for `ctx` to `out`.
    pub fn eval(&self, ctx: &Ctx<'_>, out: &mut Vec<u8>) {
        for p in &self.parts {
            match p {
                Part::Lit(s) => out.extend_from_slice(s.as_bytes()),
                Part::Var(v) => eval_var(v, ctx, out),
            }
        }
    }
}

fn var(name: &str) -> Result<Var, TemplateError> {
    Ok(match name {
        "host" => Var::Host,
        "remote_addr" | "binary_remote_addr" => Var::RemoteAddr,
        "remote_port" => Var::RemotePort,
        "proxy_add_x_forwarded_for" => Var::ProxyAddXff,
        "scheme" => Var::Scheme,
        "request_uri" => Var::RequestUri,
        "uri" | "document_uri" => Var::Uri,
        "args" | "query_string" => Var::Args,
        "request_method" => Var::Method,
        "server_addr" => Var::ServerAddr,
        "server_port" => Var::ServerPort,
        "proxy_host" => Var::ProxyHost,
        "node_name" | "hostname" => Var::NodeName,
        _ => {
            if let Some(h) = name.strip_prefix("http_") {
                let h = h.replace('_', "-").to_ascii_lowercase();
                let h = HeaderName::from_bytes(h.as_bytes())
                    .map_err(|_| TemplateError::Unknown(name.to_owned()))?;
                Var::Http(h)
            } else if let Some(c) = name.strip_prefix("cookie_") {
                Var::Cookie(c.into())
            } else if let Some(a) = name.strip_prefix("arg_") {
                Var::Arg(a.into())
            } else {
                return Err(TemplateError::Unknown(name.to_owned()));
            }
        }
    })
}

/// The `Host` header without its port (or the local address), nginx's `$host`.
pub(crate) fn host_of<'a>(req: &'a Parts, local: &SocketAddr, buf: &'a mut Vec<u8>) -> &'a [u8] {
    if let Some(h) = req.headers.get(header::HOST) {
        let b = h.as_bytes();
        if b.first() == Some(&b'[') {
            // [v6]:port
            let end = b.iter().position(|&c| c == b']').map_or(b.len(), |i| i + 1);
            return &b[..end];
        }
        let end = b.iter().position(|&c| c == b':').unwrap_or(b.len());
        return &b[..end];
    }
    if let Some(h) = req.uri.host() {
        return h.as_bytes();
    }
    let _ = write!(buf, "{}", local.ip());
    buf
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub(crate) fn cookie<'a>(req: &'a Parts, name: &str) -> Option<&'a [u8]> {
    for v in req.headers.get_all(header::COOKIE) {
        for pair in v.as_bytes().split(|&c| c == b';') {
            let pair = pair.trim_ascii();
            if let Some(eq) = pair.iter().position(|&c| c == b'=')
                && &pair[..eq] == name.as_bytes()
            {
                return Some(&pair[eq + 1..]);
            }
        }
    }
    None
}

fn eval_var(v: &Var, ctx: &Ctx<'_>, out: &mut Vec<u8>) {
    match v {
        Var::Host => {
            let mut tmp = Vec::new();
            let h = host_of(ctx.req, &ctx.local, &mut tmp);
            for &c in h {
                out.push(c.to_ascii_lowercase());
            }
        }
        Var::RemoteAddr => {
            let _ = write!(out, "{}", ctx.remote.ip());
        }
        Var::RemotePort => {
            let _ = write!(out, "{}", ctx.remote.port());
        }
        Var::ProxyAddXff => {
            let mut any = false;
            for v in ctx.req.headers.get_all("x-forwarded-for") {
                if any {
                    out.extend_from_slice(b", ");
                }
                out.extend_from_slice(v.as_bytes());
                any = true;
            }
            if any {
                out.extend_from_slice(b", ");
            }
            let _ = write!(out, "{}", ctx.remote.ip());
        }
        Var::Scheme => out.extend_from_slice(b"http"),
        Var::RequestUri => {
            let pq = ctx.req.uri.path_and_query().map_or("/", |p| p.as_str());
            out.extend_from_slice(pq.as_bytes());
        }
        Var::Uri => out.extend_from_slice(ctx.req.uri.path().as_bytes()),
        Var::Args => out.extend_from_slice(ctx.req.uri.query().unwrap_or("").as_bytes()),
        Var::Method => out.extend_from_slice(ctx.req.method.as_str().as_bytes()),
        Var::ServerAddr => {
            let _ = write!(out, "{}", ctx.local.ip());
        }
        Var::ServerPort => {
            let _ = write!(out, "{}", ctx.local.port());
        }
        Var::ProxyHost => out.extend_from_slice(ctx.proxy_host.as_bytes()),
        Var::NodeName => out.extend_from_slice(ctx.node_name.as_bytes()),
        Var::Http(h) => {
            let mut first = true;
            for v in ctx.req.headers.get_all(h) {
                if !first {
                    out.extend_from_slice(b", ");
                }
                out.extend_from_slice(v.as_bytes());
                first = false;
            }
        }
        Var::Cookie(name) => {
            if let Some(c) = cookie(ctx.req, name) {
                out.extend_from_slice(c);
            }
        }
        Var::Arg(name) => {
            if let Some(q) = ctx.req.uri.query() {
                for pair in q.split('&') {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    if k == &**name {
                        out.extend_from_slice(v.as_bytes());
                        break;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn eval(t: &str, req: http::Request<()>) -> String {
        let (parts, ()) = req.into_parts();
        let ctx = Ctx {
            req: &parts,
            remote: "10.0.0.9:5555".parse().unwrap(),
            local: "127.0.0.1:80".parse().unwrap(),
            proxy_host: "backend",
            node_name: "lb1",
        };
        let mut out = Vec::new();
        Template::parse(t).unwrap().eval(&ctx, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn variables() {
        let req = || {
            http::Request::get("/a/b?x=1&y=2")
                .header("host", "Example.COM:8080")
                .header("x-forwarded-for", "1.1.1.1")
                .header("cookie", "a=1; srv=abc")
                .header("user-agent", "t")
                .body(())
                .unwrap()
        };
        assert_eq!(eval("$host", req()), "example.com");
        assert_eq!(eval("$remote_addr:$remote_port", req()), "10.0.0.9:5555");
        assert_eq!(
            eval("$proxy_add_x_forwarded_for", req()),
            "1.1.1.1, 10.0.0.9"
        );
        assert_eq!(
            eval("${scheme}://$host$request_uri", req()),
            "http://example.com/a/b?x=1&y=2"
        );
        assert_eq!(
            eval("$cookie_srv|$arg_y|$http_user_agent|$uri|$args", req()),
            "abc|2|t|/a/b|x=1&y=2"
        );
        assert_eq!(eval("$proxy_host $node_name", req()), "backend lb1");
        let bare = http::Request::get("/").body(()).unwrap();
        assert_eq!(
            eval("$proxy_add_x_forwarded_for $host", bare),
            "10.0.0.9 127.0.0.1"
        );
        assert!(matches!(
            Template::parse("$nope"),
            Err(TemplateError::Unknown(_))
        ));
        assert!(matches!(
            Template::parse("a$"),
            Err(TemplateError::Malformed(_))
        ));
        assert!(Template::parse("").unwrap().is_empty());
        assert_eq!(Template::parse("x").unwrap().as_literal(), Some("x"));
    }
}
