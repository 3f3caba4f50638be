//! `failover-demo`: see [`failover_demo`].

use std::process::ExitCode;

fn main() -> ExitCode {
    failover_demo::main_with(std::env::args_os().skip(1))
}
