//! `vrrpd`: a keepalived-compatible VRRP daemon. See [`hapri_examples::vrrpd`].

use std::process::ExitCode;

fn main() -> ExitCode {
    hapri_examples::vrrpd::run()
}
