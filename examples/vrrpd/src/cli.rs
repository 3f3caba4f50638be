//! The command line, shaped like keepalived's where the two overlap.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use super::daemon::{self, DaemonError};
use super::log::log;

const USAGE: &str = "\
usage: vrrpd [-f FILE] [--pid FILE] [options]
       vrrpd -t [FILE]     (or -t -f FILE)

  -f, --use-file FILE      keepalived.conf to read (default /etc/keepalived/keepalived.conf)
  -p, --pid FILE           write the daemon's PID here (removed on exit)
  -t, --check-config [FILE] check FILE, or the -f file (syntax, references, values) and
                           exit: 0 if usable
      --data-file FILE     where SIGUSR1 writes the state dump (default /tmp/vrrpd.data)
      --stats-file FILE    where SIGUSR2 writes the counters (default /tmp/vrrpd.stats)
      --metrics ADDR:PORT  serve Prometheus text metrics on http://ADDR:PORT/metrics
  -n, -l, -D, -P, --vrrp   accepted for keepalived compatibility (vrrpd always runs in the
                           foreground, logs to stderr and only does VRRP)
  -h, --help               this text
";

/// The parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The configuration file.
    pub config: PathBuf,
    /// The PID file, if any.
    pub pid_file: Option<PathBuf>,
    /// Only check the configuration.
    pub check_only: bool,
    /// SIGUSR1 dump file.
    pub data_file: PathBuf,
    /// SIGUSR2 statistics file.
    pub stats_file: PathBuf,
    /// The Prometheus endpoint.
    pub metrics: Option<SocketAddr>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            config: PathBuf::from("/etc/keepalived/keepalived.conf"),
            pid_file: None,
            check_only: false,
            data_file: PathBuf::from("/tmp/vrrpd.data"),
            stats_file: PathBuf::from("/tmp/vrrpd.stats"),
            metrics: None,
        }
    }
}

/// A command-line mistake.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UsageError {
    /// An unknown option, a missing or unparsable value (lexopt's words).
    #[error(transparent)]
    Args(#[from] lexopt::Error),
    /// `-h`.
    #[error("help requested")]
    Help,
}

impl Options {
    /// Parses the arguments after the program name.
    ///
    /// `-t`/`--check-config` takes the file to check as its value, or, followed by another
    /// option or nothing, checks the file `-f` names (keepalived's `-t -f FILE`).
    pub fn parse<I>(args: I) -> Result<Self, UsageError>
    where
        I: IntoIterator,
        I::Item: Into<std::ffi::OsString>,
    {
        use lexopt::prelude::*;
        let mut o = Self::default();
        let mut p = lexopt::Parser::from_args(args);
        while let Some(arg) = p.next()? {
            match arg {
                Short('f') | Long("use-file") => o.config = p.value()?.into(),
                Short('p') | Long("pid") => o.pid_file = Some(p.value()?.into()),
                Short('t') | Long("check-config" | "config-test") => {
                    o.check_only = true;
                    if let Some(v) = p.optional_value() {
                        o.config = v.into();
                    } else {
                        let mut raw = p.raw_args()?;
                        if let Some(file) =
                            raw.next_if(|a| a.to_str().is_some_and(|a| !a.starts_with('-')))
                        {
                            o.config = file.into();
                        }
                    }
                }
                Long("data-file") => o.data_file = p.value()?.into(),
                Long("stats-file") => o.stats_file = p.value()?.into(),
                Long("metrics") => o.metrics = Some(p.value()?.parse()?),
                Short('n' | 'l' | 'D' | 'P')
                | Long("dont-fork" | "log-console" | "log-detail" | "vrrp" | "dont-release-vrrp") =>
                    {}
                Short('h') | Long("help") => return Err(UsageError::Help),
                _ => return Err(arg.unexpected().into()),
            }
        }
        Ok(o)
    }
}

/// The whole program: parses `std::env::args`, then checks the configuration or runs the
/// daemon until SIGTERM/SIGINT.
pub fn run() -> ExitCode {
    let opts = match Options::parse(std::env::args_os().skip(1)) {
        Ok(o) => o,
        Err(UsageError::Help) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("vrrpd: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if opts.check_only {
        return check_config(&opts);
    }
    match daemon::run(&opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log!("{e}");
            if let DaemonError::Config(_) = e {
                return ExitCode::from(1);
            }
            ExitCode::from(1)
        }
    }
}

fn check_config(opts: &Options) -> ExitCode {
    match keepalived_conf::parse_vrrp(&opts.config) {
        Ok((conf, warnings)) => {
            for w in &warnings {
                eprintln!("warning: {w}");
            }
            if let Err(e) = daemon::validate(&conf) {
                eprintln!("{e}");
                return ExitCode::from(1);
            }
            println!(
                "{}: OK ({} instance(s), {} script(s), {} warning(s))",
                opts.config.display(),
                conf.instances.len(),
                conf.scripts.len(),
                warnings.len()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn keepalived_style_flags() {
        let o = Options::parse(args(
            "-n -l -D -f /x.conf --pid /run/v.pid --metrics 127.0.0.1:9650",
        ))
        .unwrap();
        assert_eq!(o.config, PathBuf::from("/x.conf"));
        assert_eq!(o.pid_file, Some(PathBuf::from("/run/v.pid")));
        assert_eq!(o.metrics, Some("127.0.0.1:9650".parse().unwrap()));
        assert!(!o.check_only);
        let o = Options::parse(args("--check-config=/y.conf")).unwrap();
        assert!(o.check_only);
        assert_eq!(o.config, PathBuf::from("/y.conf"));
        let e = Options::parse(args("-f")).unwrap_err();
        assert!(e.to_string().contains("-f"), "{e}");
        let e = Options::parse(args("--bogus")).unwrap_err();
        assert!(e.to_string().contains("--bogus"), "{e}");
        let e = Options::parse(args("--metrics nope")).unwrap_err();
        assert!(
            e.to_string().contains("nope") || e.to_string().contains("metrics"),
            "{e}"
        );
        assert!(matches!(Options::parse(args("-h")), Err(UsageError::Help)));
    }

    #[test]
    fn check_config_forms() {
        for line in [
            "-t /k.conf",
            "--check-config /k.conf",
            "-t -f /k.conf",
            "-f /k.conf -t",
            "--config-test -f /k.conf",
            "-t/k.conf",
        ] {
            let o = Options::parse(args(line)).unwrap();
            assert!(o.check_only, "{line}");
            assert_eq!(o.config, PathBuf::from("/k.conf"), "{line}");
        }
        // Alone, it checks the default file.
        let o = Options::parse(args("-t")).unwrap();
        assert!(o.check_only);
        assert_eq!(o.config, PathBuf::from("/etc/keepalived/keepalived.conf"));
    }
}
