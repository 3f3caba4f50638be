//! `lbd`: the nginx half of the failover pair, an HTTP/1.1 reverse proxy. See
//! [`lbd`].

use std::process::ExitCode;

/// mimalloc instead of glibc's malloc: every request allocates and frees a few small blocks
/// (header maps, buffers, futures), and mimalloc's thread-local free lists make those cheaper
/// (see BENCHMARKS.md, "lbd against nginx").
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    lbd::run()
}
