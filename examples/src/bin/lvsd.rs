//! `lvsd`: keepalived's virtual_server half over ipvs-netlink. See [`hapri_examples::lvsd`].

use std::process::ExitCode;

fn main() -> ExitCode {
    hapri_examples::lvsd::run()
}
