//! `lvs-realserver start|stop VIP...`: prepare (or undo) an LVS-DR real server, as the
//! classic realserver.sh does: VIP on lo, arp_ignore=1, arp_announce=2.

use std::net::IpAddr;
use std::process::ExitCode;

use lvsd::realserver;

const USAGE: &str = "usage: lvs-realserver start|stop VIP...\n";

/// `start` or `stop` and the VIPs; `None` for `--help`.
fn parse_args<I>(args: I) -> Result<Option<(bool, Vec<IpAddr>)>, lexopt::Error>
where
    I: IntoIterator,
    I::Item: Into<std::ffi::OsString>,
{
    use lexopt::prelude::*;
    let mut p = lexopt::Parser::from_args(args);
    let mut start = None;
    let mut vips = Vec::new();
    while let Some(arg) = p.next()? {
        match arg {
            Short('h') | Long("help") => return Ok(None),
            Value(v) if start.is_none() => match v.to_str() {
                Some("start") => start = Some(true),
                Some("stop") => start = Some(false),
                _ => return Err(format!("{v:?}: expected start or stop").into()),
            },
            Value(v) => vips.push(v.parse()?),
            _ => return Err(arg.unexpected()),
        }
    }
    let start = start.ok_or("start or stop is needed")?;
    Ok(Some((start, vips)))
}

fn main() -> ExitCode {
    let (start, ips) = match parse_args(std::env::args_os().skip(1)) {
        Ok(Some(a)) => a,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprint!("lvs-realserver: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let res = if start {
        realserver::start(&ips).map(|n| format!("RealServer Start OK ({n} VIP(s) added to lo)"))
    } else {
        realserver::stop(&ips).map(|n| format!("RealServer Stopped ({n} VIP(s) removed from lo)"))
    };
    match res {
        Ok(msg) => {
            println!("{msg}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("lvs-realserver: {e}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn command_line() {
        let vip: IpAddr = "192.0.2.10".parse().unwrap();
        let v6: IpAddr = "2001:db8::10".parse().unwrap();
        assert_eq!(
            parse_args(["start", "192.0.2.10", "2001:db8::10"]).unwrap(),
            Some((true, vec![vip, v6]))
        );
        assert_eq!(parse_args(["stop"]).unwrap(), Some((false, vec![])));
        assert_eq!(parse_args(["--help"]).unwrap(), None);
        assert_eq!(parse_args(["start", "-h"]).unwrap(), None);
        let e = |a: &[&str]| parse_args(a.iter().copied()).unwrap_err().to_string();
        assert!(e(&[]).contains("start or stop"), "{}", e(&[]));
        assert!(e(&["restart"]).contains("expected start or stop"));
        assert!(e(&["start", "10.0.0.300"]).contains("10.0.0.300"));
        assert!(e(&["start", "-x"]).contains("-x"));
    }
}
