//! The session cookie: its name and attributes ([`CookieConfig`]), rendering `Set-Cookie`, and
//! finding the cookie in a request's `Cookie` headers ([`find_cookie`]).

use std::fmt;
use std::time::Duration;

use ::http::header::COOKIE;
use ::http::{HeaderMap, HeaderValue};

/// The `SameSite` cookie attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SameSite {
    /// Sent only with same-site requests.
    Strict,
    /// Sent with same-site requests and top-level cross-site navigations (the default).
    Lax,
    /// Sent with every request. Browsers require `Secure` with it.
    None,
}

impl SameSite {
    fn as_str(self) -> &'static str {
        match self {
            Self::Strict => "Strict",
            Self::Lax => "Lax",
            Self::None => "None",
        }
    }
}

/// Why a [`CookieConfig`] value was refused by a `try_` constructor.
#[non_exhaustive]
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum CookieConfigError {
    /// The name is empty or has a character outside RFC 6265's `token` (controls, spaces,
    /// separators such as `=`, `;`, `,`, non-ASCII).
    #[error("invalid cookie name (must be a non-empty RFC 6265 token)")]
    Name,
    /// The path does not start with `/`, or contains a control character or `;`.
    #[error("invalid cookie path (must start with '/', no ';' or control characters)")]
    Path,
    /// The domain is empty or has a character other than ASCII letters, digits, `-` and `.`.
    #[error("invalid cookie domain (ASCII letters, digits, '-' and '.' only)")]
    Domain,
}

/// The session cookie's name and attributes.
///
/// Defaults: name `id`, `Path=/`, no `Domain`, `Secure`, `HttpOnly`, `SameSite=Lax`, and a
/// `Max-Age` that follows the session's remaining lifetime.
///
/// Names and attributes are validated. The `try_` constructors return a
/// [`CookieConfigError`]; the infallible builders ([`new`](Self::new), [`path`](Self::path),
/// [`domain`](Self::domain)) never panic and **ignore an invalid value**, keeping the
/// previous one (the default for `new`). Use the `try_` forms when the value comes from
/// configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CookieConfig {
    pub(super) name: String,
    path: String,
    domain: Option<String>,
    secure: bool,
    http_only: bool,
    same_site: SameSite,
    pub(super) max_age: Option<Duration>,
}

impl Default for CookieConfig {
    fn default() -> Self {
        Self {
            name: "id".to_owned(),
            path: "/".to_owned(),
            domain: None,
            secure: true,
            http_only: true,
            same_site: SameSite::Lax,
            max_age: None,
        }
    }
}

impl CookieConfig {
    /// The defaults with the cookie called `name`; an invalid name is ignored (the name stays
    /// `id`): see [`try_new`](Self::try_new).
    #[must_use]
    pub fn new(name: impl Into<String>) -> Self {
        Self::try_new(name).unwrap_or_default()
    }

    /// The defaults with the cookie called `name`.
    ///
    /// # Errors
    /// [`CookieConfigError::Name`] unless `name` is a non-empty RFC 6265 token.
    pub fn try_new(name: impl Into<String>) -> Result<Self, CookieConfigError> {
        let name = name.into();
        if !valid_name(&name) {
            return Err(CookieConfigError::Name);
        }
        Ok(Self {
            name,
            ..Self::default()
        })
    }

    /// Sets `Path`; an invalid path is ignored: see [`try_path`](Self::try_path).
    #[must_use]
    pub fn path(self, p: impl Into<String>) -> Self {
        let p = p.into();
        if valid_path(&p) {
            Self { path: p, ..self }
        } else {
            self
        }
    }

    /// Sets `Path`.
    ///
    /// # Errors
    /// [`CookieConfigError::Path`] unless `p` starts with `/` and has no `;` or control
    /// characters.
    pub fn try_path(self, p: impl Into<String>) -> Result<Self, CookieConfigError> {
        let p = p.into();
        if valid_path(&p) {
            Ok(Self { path: p, ..self })
        } else {
            Err(CookieConfigError::Path)
        }
    }

    /// Sets `Domain`; an invalid domain is ignored: see [`try_domain`](Self::try_domain).
    #[must_use]
    pub fn domain(self, d: impl Into<String>) -> Self {
        let d = d.into();
        if valid_domain(&d) {
            Self {
                domain: Some(d),
                ..self
            }
        } else {
            self
        }
    }

    /// Sets `Domain` (the cookie then also goes to subdomains).
    ///
    /// # Errors
    /// [`CookieConfigError::Domain`] unless `d` is non-empty ASCII letters, digits, `-`, `.`.
    pub fn try_domain(self, d: impl Into<String>) -> Result<Self, CookieConfigError> {
        let d = d.into();
        if valid_domain(&d) {
            Ok(Self {
                domain: Some(d),
                ..self
            })
        } else {
            Err(CookieConfigError::Domain)
        }
    }

    /// `Secure`: send the cookie over HTTPS only (default on). Turn off only for plain-HTTP
    /// development.
    #[must_use]
    pub fn secure(self, on: bool) -> Self {
        Self { secure: on, ..self }
    }

    /// `HttpOnly`: hide the cookie from scripts (default on).
    #[must_use]
    pub fn http_only(self, on: bool) -> Self {
        Self {
            http_only: on,
            ..self
        }
    }

    /// `SameSite` (default [`SameSite::Lax`]).
    #[must_use]
    pub fn same_site(self, s: SameSite) -> Self {
        Self {
            same_site: s,
            ..self
        }
    }

    /// A fixed `Max-Age` (whole seconds); `None` (the default) makes the cookie expire with
    /// the session.
    #[must_use]
    pub fn max_age(self, d: Option<Duration>) -> Self {
        Self { max_age: d, ..self }
    }

    /// The cookie name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The `Set-Cookie` value `name=value; Path=..; Domain=..; Max-Age=N; Secure; HttpOnly;
    /// SameSite=..` (attributes that are off or unset are left out).
    pub(super) fn render(&self, value: &str, max_age: u64) -> String {
        use fmt::Write as _;
        let mut s = String::with_capacity(self.name.len() + value.len() + 80);
        let _ = write!(s, "{}={}; Path={}", self.name, value, self.path);
        if let Some(d) = &self.domain {
            let _ = write!(s, "; Domain={d}");
        }
        let _ = write!(s, "; Max-Age={max_age}");
        if self.secure {
            s.push_str("; Secure");
        }
        if self.http_only {
            s.push_str("; HttpOnly");
        }
        let _ = write!(s, "; SameSite={}", self.same_site.as_str());
        s
    }

    /// The `Set-Cookie` header for `value`; `None` if `value` is not a valid cookie value.
    pub(super) fn header(&self, value: &str, max_age: u64) -> Option<HeaderValue> {
        if !value.bytes().all(cookie_octet) {
            return None;
        }
        HeaderValue::from_str(&self.render(value, max_age)).ok()
    }

    /// The `Set-Cookie` header that makes the browser drop the cookie.
    pub(super) fn expired(&self) -> Option<HeaderValue> {
        self.header("", 0)
    }
}

/// RFC 6265 `token` (RFC 2616 §2.2): visible ASCII except separators.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|b| {
            b.is_ascii_graphic()
                && !matches!(
                    b,
                    b'(' | b')'
                        | b'<'
                        | b'>'
                        | b'@'
                        | b','
                        | b';'
                        | b':'
                        | b'\\'
                        | b'"'
                        | b'/'
                        | b'['
                        | b']'
                        | b'?'
                        | b'='
                        | b'{'
                        | b'}'
                )
        })
}

/// RFC 6265 `av-octet` (no controls, no `;`), ASCII only, starting with `/`.
fn valid_path(p: &str) -> bool {
    p.starts_with('/') && p.bytes().all(|b| (b' '..=b'~').contains(&b) && b != b';')
}

fn valid_domain(d: &str) -> bool {
    !d.is_empty()
        && d.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// RFC 6265 `cookie-octet`: visible ASCII except `"`, `,`, `;`, `\`.
fn cookie_octet(b: u8) -> bool {
    b.is_ascii_graphic() && !matches!(b, b'"' | b',' | b';' | b'\\')
}

/// The value of the first well-formed cookie called `name` in the request's `Cookie` headers.
///
/// Every `Cookie` header is read, each as a `;`-separated list of `name=value` pairs; spaces
/// and tabs around names and values are trimmed and a value in double quotes is unquoted.
/// Pairs without `=`, values that are empty, non-UTF-8 or contain bytes outside RFC 6265's
/// `cookie-octet` are skipped. Never fails, never panics.
#[must_use]
pub fn find_cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .find_map(|h| find_in_header(h.as_bytes(), name))
}

fn find_in_header<'a>(header: &'a [u8], name: &str) -> Option<&'a str> {
    header.split(|&b| b == b';').find_map(|pair| {
        let eq = pair.iter().position(|&b| b == b'=')?;
        let (n, v) = pair.split_at(eq);
        let v = v.get(1..)?;
        if trim(n) != name.as_bytes() {
            return None;
        }
        let v = trim(v);
        let v = match v {
            [b'"', inner @ .., b'"'] => inner,
            _ => v,
        };
        if v.is_empty() || !v.iter().all(|&b| cookie_octet(b)) {
            return None;
        }
        std::str::from_utf8(v).ok()
    })
}

fn trim(s: &[u8]) -> &[u8] {
    let ws = |b: &u8| *b == b' ' || *b == b'\t';
    let start = s.iter().position(|b| !ws(b)).unwrap_or(s.len());
    let end = s.iter().rposition(|b| !ws(b)).map_or(start, |i| i + 1);
    s.get(start..end).unwrap_or_default()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn headers(values: &[&[u8]]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(COOKIE, HeaderValue::from_bytes(v).unwrap());
        }
        h
    }

    #[test]
    fn finds_first_cookie_with_our_name() {
        let h = headers(&[b"a=1; id=first; id=second", b"id=third"]);
        assert_eq!(find_cookie(&h, "id"), Some("first"));
        assert_eq!(find_cookie(&h, "a"), Some("1"));
        assert_eq!(find_cookie(&h, "b"), None);
        assert_eq!(find_cookie(&HeaderMap::new(), "id"), None);
    }

    #[test]
    fn searches_every_cookie_header() {
        let h = headers(&[b"a=1", b"b=2;id=x2"]);
        assert_eq!(find_cookie(&h, "id"), Some("x2"));
    }

    #[test]
    fn trims_and_unquotes() {
        let h = headers(&[b"  a=1 ;\tid = \"abc\" "]);
        assert_eq!(find_cookie(&h, "id"), Some("abc"));
        assert_eq!(find_cookie(&h, "a"), Some("1"));
    }

    #[test]
    fn skips_malformed_pairs() {
        // No '=', empty value, bad octets, non-UTF-8, prefix names: all skipped.
        let h = headers(&[
            b"id; id=; id=a\"b; id=a\\b; ids=no; xid=no; =id; id=\xff\xfe",
            b"id=good",
        ]);
        assert_eq!(find_cookie(&h, "id"), Some("good"));
        let h = headers(&[b";;;=;==;id"]);
        assert_eq!(find_cookie(&h, "id"), None);
    }

    #[test]
    fn value_may_contain_equals() {
        let h = headers(&[b"id=a=b"]);
        assert_eq!(find_cookie(&h, "id"), Some("a=b"));
    }

    #[test]
    fn renders_default_attributes() {
        let c = CookieConfig::default();
        assert_eq!(
            c.render("tok", 60),
            "id=tok; Path=/; Max-Age=60; Secure; HttpOnly; SameSite=Lax"
        );
    }

    #[test]
    fn renders_every_attribute() {
        let c = CookieConfig::new("sid")
            .path("/app")
            .domain("example.com")
            .secure(false)
            .http_only(false)
            .same_site(SameSite::Strict);
        assert_eq!(
            c.render("v", 5),
            "sid=v; Path=/app; Domain=example.com; Max-Age=5; SameSite=Strict"
        );
        let c = CookieConfig::default().same_site(SameSite::None);
        assert!(
            c.render("v", 0)
                .ends_with("; Secure; HttpOnly; SameSite=None")
        );
        assert_eq!(
            c.expired().unwrap().to_str().unwrap(),
            "id=; Path=/; Max-Age=0; Secure; HttpOnly; SameSite=None"
        );
    }

    #[test]
    fn refuses_bad_cookie_values() {
        let c = CookieConfig::default();
        assert!(c.header("a;b", 1).is_none());
        assert!(c.header("a b", 1).is_none());
        assert!(c.header("é", 1).is_none());
        assert!(c.header("Zm9v_-", 1).is_some());
    }

    #[test]
    fn validates_config() {
        assert_eq!(CookieConfig::try_new("a b"), Err(CookieConfigError::Name));
        assert_eq!(CookieConfig::try_new(""), Err(CookieConfigError::Name));
        assert_eq!(CookieConfig::try_new("a=b"), Err(CookieConfigError::Name));
        assert_eq!(
            CookieConfig::try_new("sid\u{e9}"),
            Err(CookieConfigError::Name)
        );
        assert_eq!(
            CookieConfig::try_new("__Host-sid").unwrap().name(),
            "__Host-sid"
        );
        assert_eq!(
            CookieConfig::default().try_path("app"),
            Err(CookieConfigError::Path)
        );
        assert_eq!(
            CookieConfig::default().try_path("/a;b"),
            Err(CookieConfigError::Path)
        );
        assert_eq!(
            CookieConfig::default().try_domain("exa mple.com"),
            Err(CookieConfigError::Domain)
        );
        // The infallible builders keep the previous value.
        assert_eq!(CookieConfig::new("bad;name").name(), "id");
        let c = CookieConfig::new("sid")
            .path("/ok")
            .path("bad")
            .domain("x;y");
        assert_eq!(
            c.render("v", 1),
            "sid=v; Path=/ok; Max-Age=1; Secure; HttpOnly; SameSite=Lax"
        );
    }

    proptest! {
        #[test]
        fn parsing_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200),
                                name in "[a-z]{0,3}") {
            let found = find_in_header(&bytes, &name);
            if let Some(v) = found {
                prop_assert!(!v.is_empty());
                prop_assert!(v.bytes().all(cookie_octet));
            }
            if let Ok(h) = HeaderValue::from_bytes(&bytes) {
                let mut map = HeaderMap::new();
                map.append(COOKIE, h);
                prop_assert_eq!(find_cookie(&map, &name), found);
            }
        }

        #[test]
        fn finds_what_it_renders(value in "[A-Za-z0-9_-]{1,64}", other in "x[a-z]{0,8}=[a-z]{0,8}") {
            let c = CookieConfig::default();
            let set = c.render(&value, 10);
            // A browser sends back only `name=value`.
            let pair = set.split(';').next().unwrap_or_default();
            let header = format!("{other}; {pair}");
            prop_assert_eq!(find_in_header(header.as_bytes(), "id"), Some(value.as_str()));
        }
    }
}
