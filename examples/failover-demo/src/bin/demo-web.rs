//! `demo-web`: see [`failover_demo::webapp`].

use std::process::ExitCode;

fn main() -> ExitCode {
    failover_demo::webapp::main_with(std::env::args_os().skip(1))
}
