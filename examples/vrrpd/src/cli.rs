//! The command line, shaped like keepalived's where the two overlap.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use super::daemon::{self, DaemonError};
use super::log::log;

const USAGE: &str = "\
usage: vrrpd [-f FILE] [--pid FILE] [options]
       vrrpd --check-config FILE

  -f, --use-file FILE      keepalived.conf to read (default /etc/keepalived/keepalived.conf)
  -p, --pid FILE           write the daemon's PID here (removed on exit)
  -t, --check-config FILE  check FILE (syntax, references, values) and exit: 0 if usable
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
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UsageError {
    /// An option needs a value that is missing.
    #[error("option {0} needs a value")]
    MissingValue(String),
    /// An option we do not know.
    #[error("unknown option {0}")]
    Unknown(String),
    /// A value that does not parse.
    #[error("bad value {value:?} for {option}")]
    BadValue {
        /// The option.
        option: String,
        /// The value given.
        value: String,
    },
    /// `-h`.
    #[error("help requested")]
    Help,
}

impl Options {
    /// Parses the arguments after the program name.
    pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Self, UsageError> {
        let mut o = Self::default();
        let mut it = args.into_iter();
        while let Some(arg) = it.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
                _ => (arg.clone(), None),
            };
            let mut value = |name: &str| {
                inline
                    .clone()
                    .or_else(|| it.next())
                    .ok_or_else(|| UsageError::MissingValue(name.to_owned()))
            };
            match flag.as_str() {
                "-f" | "--use-file" => o.config = PathBuf::from(value(&flag)?),
                "-p" | "--pid" => o.pid_file = Some(PathBuf::from(value(&flag)?)),
                "-t" | "--check-config" | "--config-test" => {
                    o.check_only = true;
                    o.config = PathBuf::from(value(&flag)?);
                }
                "--data-file" => o.data_file = PathBuf::from(value(&flag)?),
                "--stats-file" => o.stats_file = PathBuf::from(value(&flag)?),
                "--metrics" => {
                    let v = value(&flag)?;
                    o.metrics = Some(v.parse().map_err(|_| UsageError::BadValue {
                        option: flag.clone(),
                        value: v,
                    })?);
                }
                "-n"
                | "--dont-fork"
                | "-l"
                | "--log-console"
                | "-D"
                | "--log-detail"
                | "-P"
                | "--vrrp"
                | "--dont-release-vrrp" => {}
                "-h" | "--help" => return Err(UsageError::Help),
                _ => return Err(UsageError::Unknown(arg)),
            }
        }
        Ok(o)
    }
}

/// The whole program: parses `std::env::args`, then checks the configuration or runs the
/// daemon until SIGTERM/SIGINT.
pub fn run() -> ExitCode {
    let opts = match Options::parse(std::env::args().skip(1)) {
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
        assert_eq!(
            Options::parse(args("-f")),
            Err(UsageError::MissingValue("-f".into()))
        );
        assert_eq!(
            Options::parse(args("--bogus")),
            Err(UsageError::Unknown("--bogus".into()))
        );
        assert!(matches!(
            Options::parse(args("--metrics nope")),
            Err(UsageError::BadValue { .. })
        ));
    }
}
