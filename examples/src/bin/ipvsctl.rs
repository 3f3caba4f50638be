//! `ipvsctl`: ipvsadm's command line over ipvs-netlink. See [`hapri_examples::ipvsctl`].

use std::process::ExitCode;

fn main() -> ExitCode {
    hapri_examples::ipvsctl::run()
}
