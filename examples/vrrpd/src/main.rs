//! `vrrpd`: a keepalived-compatible VRRP daemon. See [`vrrpd`].

use std::process::ExitCode;

fn main() -> ExitCode {
    vrrpd::run()
}
