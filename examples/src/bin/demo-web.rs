//! `demo-web`: see [`hapri_examples::webapp`].

use std::process::ExitCode;

fn main() -> ExitCode {
    hapri_examples::webapp::main_with(std::env::args().skip(1))
}
