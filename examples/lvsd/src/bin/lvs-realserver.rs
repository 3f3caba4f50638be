//! `lvs-realserver start|stop VIP...`: prepare (or undo) an LVS-DR real server, as the
//! seed's realserver.sh: VIP on lo, arp_ignore=1, arp_announce=2.

use std::net::IpAddr;
use std::process::ExitCode;

use lvsd::realserver;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(cmd), vips) = (args.first(), args.get(1..).unwrap_or_default()) else {
        eprintln!("usage: lvs-realserver start|stop VIP...");
        return ExitCode::from(2);
    };
    let mut ips = Vec::new();
    for v in vips {
        match v.parse::<IpAddr>() {
            Ok(ip) => ips.push(ip),
            Err(_) => {
                eprintln!("lvs-realserver: {v:?} is not an IP address");
                return ExitCode::from(2);
            }
        }
    }
    let res = match cmd.as_str() {
        "start" => {
            realserver::start(&ips).map(|n| format!("RealServer Start OK ({n} VIP(s) added to lo)"))
        }
        "stop" => realserver::stop(&ips)
            .map(|n| format!("RealServer Stopped ({n} VIP(s) removed from lo)")),
        _ => {
            eprintln!("usage: lvs-realserver start|stop VIP...");
            return ExitCode::from(2);
        }
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
