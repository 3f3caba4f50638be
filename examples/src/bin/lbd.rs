//! `lbd`: the nginx half of the failover pair, an HTTP/1.1 reverse proxy. See
//! [`hapri_examples::lbd`].

use std::process::ExitCode;

fn main() -> ExitCode {
    hapri_examples::lbd::run()
}
