//! `lvsd`: keepalived's virtual_server half over ipvs-netlink. See [`lvsd`].

use std::process::ExitCode;

fn main() -> ExitCode {
    lvsd::run()
}
