//! Entry point of the cargo-fuzz target `demo_response` (feature `fuzzing`).

// A fuzz target reports a broken invariant by panicking.
#![allow(clippy::panic)]

/// The failover demo's response parsers (the client's HTTP/1.1 response reader, the answer
/// line, `Set-Cookie` lookup) and `http-check`'s URL splitter on arbitrary bytes: never a
/// panic; a parsed answer's fields come from the input.
pub fn demo_response(data: &[u8]) {
    use crate::{check, client};
    if let Ok(r) = client::parse_response(data) {
        if let Some(a) = client::parse_answer(&r.body, str::to_owned)
            && !r.body.contains(&a.served_by)
        {
            panic!("served_by {:?} is not in the body", a.served_by);
        }
        let _ = client::cookie_pair(&r.set_cookies, "sid");
    }
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok((authority, path)) = check::split_url(text)
        && (!path.starts_with('/') || authority.is_empty())
    {
        panic!("split {text:?} into {authority:?} and {path:?}");
    }
}
