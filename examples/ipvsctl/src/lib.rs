//! `ipvsctl`: an ipvsadm-compatible command line over [`ipvs_netlink`].
//!
//! Same options, same output byte for byte, same messages and exit statuses as ipvsadm
//! 1.31 for what it implements (everything but `-c`, which needs `/proc/net/ip_vs_conn`:
//! the IPVS netlink interface has no connection list). `-R` sends the whole script
//! pipelined on one netlink socket ([`ipvs_netlink::Client::batch`]) instead of one
//! request and one round trip per line, with ipvsadm's semantics: every line runs in
//! order, a refused line prints its message and the next one still runs, the exit status
//! is the last line's.
//!
//! - [`args`]: the command line (popt-style options, ipvsadm's validity table and checks).
//! - [`format`](mod@format): the listings (`-L`, `-S`, `--timeout`, `--daemon`).
//! - [`restore`]: `-R` scripts (ipvsadm-save format) to requests.
//! - [`names`]: host and service names for non-numeric input and output.

pub mod args;
pub mod format;
pub mod names;
pub mod restore;

use std::io::{Read, Write};
use std::process::ExitCode;

use ipvs_netlink::{Client, IpvsError, Op};

use self::args::{Command, ListWhat, Parsed};
use self::format::{DestRow, Row, SvcRow};
use self::names::{Names, SystemNames};

/// ipvsadm's exit status when a kernel request fails (its `-1`).
pub const EXIT_KERNEL: u8 = 255;
/// ipvsadm's exit status for a listing that could not be read.
pub const EXIT_LIST: u8 = 1;
/// ipvsadm's exit status for bad input and for a kernel without IPVS.
pub const EXIT_USAGE: u8 = 2;

/// The message ipvsadm prints for `errno` after operation `op` (libipvs's table, then
/// `strerror`).
#[must_use]
pub fn kernel_message(op: Op, errno: i32) -> String {
    const ENOENT: i32 = 2;
    const ESRCH: i32 = 3;
    const EEXIST: i32 = 17;
    let s = match (op, errno) {
        (Op::AddService, EEXIST) => "Service already exists",
        (Op::AddService | Op::EditService, ENOENT) => "Scheduler or persistence engine not found",
        (
            Op::EditService
            | Op::DeleteService
            | Op::Zero
            | Op::ListServices
            | Op::ListDests
            | Op::GetService,
            ESRCH,
        ) => "No such service",
        (Op::AddDest | Op::EditDest | Op::DeleteDest, ESRCH) => "Service not defined",
        (Op::AddDest, EEXIST) => "Destination already exists",
        (Op::EditDest | Op::DeleteDest, ENOENT) => "No such destination",
        (Op::StartDaemon, EEXIST) => "Daemon has already run",
        (Op::StopDaemon, ESRCH) => "No daemon is running",
        (_, 1) => "Permission denied (you must be root)",
        (_, 22) => "Invalid operation.  Possibly wrong module version, address not unicast, ...",
        (_, 92) => "Protocol not available",
        (_, 12) => "Memory allocation problem",
        (_, 95) => "Operation not supported with IPv6",
        (_, 97) => "Operation not supported with specified address family",
        (_, 90) => "Module is wrong version",
        _ => return strerror(errno),
    };
    s.to_owned()
}

/// C's `strerror` text for `errno`.
#[must_use]
pub fn strerror(errno: i32) -> String {
    let s = std::io::Error::from_raw_os_error(errno).to_string();
    match s.rfind(" (os error ") {
        Some(i) => s.get(..i).unwrap_or(&s).to_owned(),
        None => s,
    }
}

/// What to print for a failed client call.
#[must_use]
pub fn error_message(e: &IpvsError) -> String {
    match e {
        IpvsError::Kernel { op, errno, .. } => kernel_message(*op, *errno),
        other => other.to_string(),
    }
}

/// Run ipvsctl with the process's arguments and standard streams.
#[must_use]
pub fn run() -> ExitCode {
    // ipvsadm reads its arguments as C strings; bytes that are not UTF-8 become U+FFFD here, so
    // an address or name holding them is refused by the parser instead of panicking.
    let argv: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let code = main_with(
        &argv,
        &mut stdin.lock(),
        &mut stdout.lock(),
        &mut stderr.lock(),
        &SystemNames::new(),
    );
    ExitCode::from(code)
}

/// Open the IPVS client, loading `ip_vs` once (as ipvsadm does) if the family is missing.
fn connect(err: &mut dyn Write) -> Result<Client, u8> {
    let first = Client::new();
    let res = match first {
        Err(IpvsError::FamilyNotFound) => {
            let _ = std::process::Command::new("/sbin/modprobe")
                .args(["--", "ip_vs"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
            Client::new()
        }
        other => other,
    };
    res.map_err(|e| {
        let why = match &e {
            IpvsError::FamilyNotFound => "Protocol not available".to_owned(),
            other => error_message(other),
        };
        let _ = writeln!(
            err,
            "Can't initialize ipvs: {why}\nAre you sure that IP Virtual Server is built in the kernel or as module?"
        );
        EXIT_USAGE
    })
}

/// Run one invocation: `argv[0]` is the program name. Returns the exit status.
pub fn main_with(
    argv: &[String],
    stdin: &mut dyn Read,
    out: &mut dyn Write,
    err: &mut dyn Write,
    names: &dyn Names,
) -> u8 {
    let parsed = match args::parse(argv, names) {
        Ok(p) => p,
        Err(e) => {
            let _ = writeln!(err, "{e}");
            return e.exit_code();
        }
    };
    let program = argv.first().map_or("ipvsctl", String::as_str);
    match &parsed.command {
        Command::Help => {
            let _ = out.write_all(usage(program).as_bytes());
            return 0;
        }
        Command::Version => {
            let _ = writeln!(
                out,
                "ipvsctl {} (ipvsadm v1.31 compatible, IPVS over generic netlink)",
                env!("CARGO_PKG_VERSION")
            );
            return 0;
        }
        _ => {}
    }
    let mut client = match connect(err) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if parsed.command == Command::Restore {
        let mut text = String::new();
        if let Err(e) = stdin.read_to_string(&mut text) {
            let _ = writeln!(err, "cannot read the rules from stdin: {e}");
            return EXIT_USAGE;
        }
        return restore::run_script(&text, program, &mut client, out, err, names);
    }
    execute(&parsed, &mut client, out, err, names)
}

/// Read the whole table as listing rows.
pub fn read_table(client: &mut Client) -> Result<Vec<Row>, IpvsError> {
    Ok(client
        .table()?
        .into_iter()
        .map(|(s, ds)| {
            (
                SvcRow::from(s),
                ds.into_iter().map(DestRow::from).collect::<Vec<_>>(),
            )
        })
        .collect())
}

/// Run one parsed command (not `-R`, not `-h`/`-v`) against the kernel.
pub fn execute(
    parsed: &Parsed,
    client: &mut Client,
    out: &mut dyn Write,
    err: &mut dyn Write,
    names: &dyn Names,
) -> u8 {
    let fail = |err: &mut dyn Write, e: &IpvsError, code: u8| {
        let _ = writeln!(err, "{}", error_message(e));
        code
    };
    let result = match &parsed.command {
        Command::List { what, format } => {
            let text = match what {
                ListWhat::All => client.info().and_then(|info| {
                    let mut rows = read_table(client)?;
                    Ok(format::list_all(
                        Some((info.version, info.conn_tab_size)),
                        &mut rows,
                        *format,
                        names,
                    ))
                }),
                ListWhat::Service(key) => client.service(key).and_then(|s| {
                    let dests = client.dests(key)?;
                    let mut row = (
                        SvcRow::from(s),
                        dests.into_iter().map(DestRow::from).collect(),
                    );
                    Ok(format::list_one(&mut row, *format, names))
                }),
                ListWhat::Timeouts => client.timeouts().map(|t| format::timeouts(&t)),
                ListWhat::Daemons => client.daemons().map(|d| format::daemons(&d)),
            };
            return match text {
                Ok(t) => {
                    let _ = out.write_all(t.as_bytes());
                    0
                }
                Err(e) => fail(err, &e, EXIT_LIST),
            };
        }
        Command::Save { format } => {
            return match read_table(client) {
                Ok(mut rows) => {
                    let t = format::list_all(None, &mut rows, *format, names);
                    let _ = out.write_all(t.as_bytes());
                    0
                }
                Err(e) => fail(err, &e, EXIT_LIST),
            };
        }
        Command::Flush => client.flush(),
        Command::AddService(s) => client.add_service(s),
        Command::EditService(s) => client.edit_service(s),
        Command::DeleteService(k) => client.delete_service(k),
        Command::Zero(k) => client.zero(k.as_ref()),
        Command::AddDest(k, d) => client.add_dest(k, d),
        Command::EditDest(k, d) => client.edit_dest(k, d),
        Command::DeleteDest(k, a) => client.delete_dest(k, *a),
        Command::SetTimeouts(t) => client.set_timeouts(*t),
        Command::StartDaemon(d) => client.start_daemon(d),
        Command::StopDaemon(s) => client.stop_daemon(*s),
        Command::Restore | Command::Help | Command::Version => Ok(()),
    };
    match result {
        Ok(()) => 0,
        Err(e) => fail(err, &e, EXIT_KERNEL),
    }
}

/// The `-h` text.
#[must_use]
pub fn usage(program: &str) -> String {
    format!(
        "ipvsctl {ver}: ipvsadm-compatible IPVS administration over generic netlink
Usage:
  {program} -A|E virtual-service [-s scheduler] [-p [timeout]] [-M netmask] [--pe engine] [-o] [-b sched-flags]
  {program} -D virtual-service
  {program} -C
  {program} -R            restore rules (ipvsadm -S format) from stdin, pipelined
  {program} -S [-n]       save rules to stdout
  {program} -a|e virtual-service -r server-address [-g|i|m] [-w weight] [-x upper] [-y lower]
           [--tun-type ipip|gue|gre [--tun-port port] [--tun-nocsum|--tun-csum|--tun-remcsum]]
  {program} -d virtual-service -r server-address
  {program} -L|l [virtual-service] [-n] [--stats|--rate|--thresholds|--persistent-conn|--tun-info] [--exact] [--nosort]
  {program} -L --timeout | --daemon
  {program} -Z [virtual-service]
  {program} --set tcp tcpfin udp
  {program} --start-daemon master|backup [--mcast-interface if] [--syncid id] [--sync-maxlen n]
           [--mcast-group addr] [--mcast-port port] [--mcast-ttl ttl]
  {program} --stop-daemon master|backup
  {program} -h | -v
virtual-service: -t|u|--sctp-service host[:port] (IPv6 as [addr]:port), or -f fwmark [-6]
Not supported: -c/--connection (netlink has no connection list; read /proc/net/ip_vs_conn).
",
        ver = env!("CARGO_PKG_VERSION")
    )
}
