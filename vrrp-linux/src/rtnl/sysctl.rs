//! Writing (and reading) sysctls under `/proc/sys`.
//!
//! `/proc/sys/net` shows the network namespace of the calling thread, so these act on the
//! namespace the caller is in.

use std::fs;
use std::io::Write;
use std::path::PathBuf;

use super::{RtnlError, validate_ifname};

const ROOT: &str = "/proc/sys";

/// Writes `value` to the sysctl `name`.
///
/// `name` is either in dotted form (`"net.ipv4.ip_forward"`, every dot a separator) or in
/// slash form (`"net/ipv4/conf/vrrp.51/arp_ignore"`, only slashes separate), as with
/// `sysctl(8)`; use the slash form or [`sysctl_set_iface`] when a component contains a dot.
pub fn sysctl_set(name: &str, value: &str) -> Result<(), RtnlError> {
    write(path_of(name)?, value)
}

/// Reads the sysctl `name` (same forms as [`sysctl_set`]), without the trailing newline.
pub fn sysctl_get(name: &str) -> Result<String, RtnlError> {
    let path = path_of(name)?;
    match fs::read_to_string(&path) {
        Ok(s) => Ok(s.trim_end_matches('\n').to_owned()),
        Err(source) => Err(RtnlError::Sysctl { path, source }),
    }
}

/// Writes `value` to `net.<family>.conf.<iface>.<key>`, e.g.
/// `sysctl_set_iface("ipv4", "vrrp.51", "arp_ignore", "1")`; `iface` may contain dots and
/// may be `all` or `default`.
pub fn sysctl_set_iface(
    family: &str,
    iface: &str,
    key: &str,
    value: &str,
) -> Result<(), RtnlError> {
    check_component(family)?;
    validate_ifname(iface)?;
    check_component(key)?;
    let mut path = PathBuf::from(ROOT);
    path.extend(["net", family, "conf", iface, key]);
    write(path, value)
}

fn write(path: PathBuf, value: &str) -> Result<(), RtnlError> {
    if value.contains('\n') || value.contains('\0') {
        return Err(RtnlError::InvalidName {
            name: value.to_owned(),
            why: "a sysctl value cannot contain a newline or NUL",
        });
    }
    let res = fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|mut f| f.write_all(format!("{value}\n").as_bytes()));
    res.map_err(|source| RtnlError::Sysctl { path, source })
}

fn path_of(name: &str) -> Result<PathBuf, RtnlError> {
    let sep = if name.contains('/') { '/' } else { '.' };
    let mut path = PathBuf::from(ROOT);
    for part in name.split(sep) {
        check_component(part).map_err(|_| RtnlError::InvalidName {
            name: name.to_owned(),
            why: "a sysctl name is non-empty components without \"..\", NUL or a leading separator",
        })?;
        path.push(part);
    }
    Ok(path)
}

fn check_component(part: &str) -> Result<(), RtnlError> {
    if part.is_empty() || part == "." || part == ".." || part.contains(['/', '\0']) {
        return Err(RtnlError::InvalidName {
            name: part.to_owned(),
            why: "not a valid sysctl path component",
        });
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "unit tests")]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_paths() {
        assert_eq!(
            path_of("net.ipv4.conf.eth0.arp_ignore").unwrap(),
            PathBuf::from("/proc/sys/net/ipv4/conf/eth0/arp_ignore")
        );
        assert_eq!(
            path_of("net/ipv4/conf/vrrp.51/arp_ignore").unwrap(),
            PathBuf::from("/proc/sys/net/ipv4/conf/vrrp.51/arp_ignore")
        );
        for bad in ["", "net..ipv4", "/net/ipv4", "net/../../etc", "net.ipv4."] {
            assert!(path_of(bad).is_err(), "{bad}");
        }
        assert!(sysctl_set_iface("ipv4", "../x", "arp_ignore", "1").is_err());
        assert!(sysctl_set_iface("ipv4", "eth0", "..", "1").is_err());
        assert!(sysctl_set("net.ipv4.ip_forward", "1\n0").is_err());
    }
}
