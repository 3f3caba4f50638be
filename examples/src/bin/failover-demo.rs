//! `failover-demo`: see [`hapri_examples::demo`].

use std::process::ExitCode;

fn main() -> ExitCode {
    hapri_examples::demo::main_with(std::env::args().skip(1))
}
