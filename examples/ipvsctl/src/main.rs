//! `ipvsctl`: ipvsadm's command line over ipvs-netlink. See [`ipvsctl`].

use std::process::ExitCode;

fn main() -> ExitCode {
    ipvsctl::run()
}
