//! Entry point of the cargo-fuzz target `lbd_conf` (feature `fuzzing`).

// A fuzz target reports a broken invariant by panicking.
#![allow(clippy::panic)]

/// lbd's configuration readers, nginx syntax and TOML, on arbitrary bytes: a [`Config`] or a
/// [`ConfigError`] naming file, line and column (within the text), never a panic.
///
/// [`Config`]: crate::config::Config
/// [`ConfigError`]: crate::config::ConfigError
pub fn lbd_conf(data: &[u8]) {
    use crate::config::{ConfigError, parse_str};
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let lines = text.split('\n').count();
    for name in ["fuzz.conf", "fuzz.toml"] {
        match parse_str(std::path::Path::new(name), text) {
            Ok(_) => {}
            Err(ConfigError::At { line, .. }) => {
                if line == 0 || line > lines + 1 {
                    panic!("error on line {line} of a {lines}-line text");
                }
            }
            Err(ConfigError::Read { .. }) => {}
            // `ConfigError` is non-exhaustive.
            #[allow(unreachable_patterns)]
            Err(_) => {}
        }
    }
}
