//! `http-check`: see [`hapri_examples::demo::check`].

use std::process::ExitCode;

fn main() -> ExitCode {
    hapri_examples::demo::check::main_with(std::env::args().skip(1))
}
