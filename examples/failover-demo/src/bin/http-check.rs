//! `http-check`: see [`failover_demo::check`].

use std::process::ExitCode;

fn main() -> ExitCode {
    failover_demo::check::main_with(std::env::args_os().skip(1))
}
