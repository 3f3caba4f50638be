//! `-R`: ipvsadm-save rules (one ipvsadm invocation per line, without the program name)
//! turned into netlink requests and sent pipelined.
//!
//! Semantics are ipvsadm's: lines run in order; a line the kernel refuses prints ipvsadm's
//! message and the next line still runs; a line that does not parse stops the restore with
//! exit status 2 after the lines before it have been applied; otherwise the exit status is
//! the last line's (0, or 255 when the kernel refused it).

use std::io::Write;

use ipvs_netlink::wire::{CmdAttr, IpvsCmd, IpvsMessage};
use ipvs_netlink::{Client, Dest, ForwardMethod, Op};

use super::args::{self, ArgError, Command, Parsed};
use super::names::Names;
use super::{EXIT_KERNEL, error_message};

/// Split a script into argument lists the way ipvsadm's config reader does: words are
/// separated by blanks (space, tab, CR; also form feed here), the word `ipvsadm` is dropped wherever it appears, lines without
/// words are skipped. Lines whose first word starts with `#` are comments.
#[must_use]
pub fn split_lines(text: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for line in text.lines() {
        let words: Vec<String> = line
            .split_ascii_whitespace()
            .filter(|w| *w != "ipvsadm")
            .map(str::to_owned)
            .collect();
        if words.first().is_some_and(|f| !f.starts_with('#')) {
            out.push(words);
        }
    }
    out
}

/// One line of a script, ready to send.
#[derive(Debug, Clone)]
pub enum Step {
    /// A request for the batch.
    Request(Op, IpvsMessage),
    /// A line refused without asking the kernel (what the kernel would answer), with its
    /// message and exit status.
    Refused(String, u8),
    /// A command that is not a table change (listing, daemons, help): run it on its own.
    Direct(Parsed),
}

/// The netlink request for a table-changing command, or how it is refused.
#[must_use]
pub fn step(parsed: Parsed) -> Step {
    let svc = |k: &ipvs_netlink::ServiceKey| CmdAttr::Service(k.attrs());
    let (op, msg) = match &parsed.command {
        Command::AddService(s) => (
            Op::AddService,
            IpvsMessage::new(IpvsCmd::NewService, vec![CmdAttr::Service(s.attrs())]),
        ),
        Command::EditService(s) => (
            Op::EditService,
            IpvsMessage::new(IpvsCmd::SetService, vec![CmdAttr::Service(s.attrs())]),
        ),
        Command::DeleteService(k) => (
            Op::DeleteService,
            IpvsMessage::new(IpvsCmd::DelService, vec![svc(k)]),
        ),
        Command::AddDest(k, d) => (
            Op::AddDest,
            IpvsMessage::new(IpvsCmd::NewDest, vec![svc(k), CmdAttr::Dest(d.attrs())]),
        ),
        Command::EditDest(k, d) => (
            Op::EditDest,
            IpvsMessage::new(IpvsCmd::SetDest, vec![svc(k), CmdAttr::Dest(d.attrs())]),
        ),
        Command::DeleteDest(k, a) => match Dest::new(*a, ForwardMethod::Masq) {
            Ok(d) => (
                Op::DeleteDest,
                IpvsMessage::new(IpvsCmd::DelDest, vec![svc(k), CmdAttr::Dest(d.key_attrs())]),
            ),
            Err(e) => return Step::Refused(e.to_string(), EXIT_KERNEL),
        },
        Command::Flush => (Op::Flush, IpvsMessage::new(IpvsCmd::Flush, vec![])),
        Command::Zero(k) => (
            Op::Zero,
            IpvsMessage::new(IpvsCmd::Zero, k.iter().map(svc).collect()),
        ),
        Command::SetTimeouts(t) => (
            Op::SetTimeouts,
            IpvsMessage::new(IpvsCmd::SetConfig, t.attrs()),
        ),
        _ => return Step::Direct(parsed),
    };
    Step::Request(op, msg)
}

/// Parse a whole script: the steps up to the first line that does not parse, and that
/// line's error. Lines whose scheduler name no module can have become [`Step::Refused`],
/// as the kernel would refuse them.
#[must_use]
pub fn parse_script(text: &str, program: &str, names: &dyn Names) -> (Vec<Step>, Option<ArgError>) {
    let mut steps = Vec::new();
    for words in split_lines(text) {
        let mut argv = Vec::with_capacity(words.len() + 1);
        argv.push(program.to_owned());
        argv.extend(words);
        match args::parse(&argv, names) {
            Ok(p) if p.command == Command::Restore => {
                return (
                    steps,
                    Some(ArgError::TryHelp {
                        program: program.to_owned(),
                    }),
                );
            }
            Ok(p) => steps.push(step(p)),
            Err(e @ ArgError::SchedulerNotFound) => {
                steps.push(Step::Refused(e.to_string(), e.exit_code()));
            }
            Err(e) => return (steps, Some(e)),
        }
    }
    (steps, None)
}

/// Send the pending requests pipelined and report them in order; returns the last status.
fn flush(
    pending: &mut Vec<Step>,
    client: &mut Client,
    err: &mut dyn Write,
    last: &mut u8,
) -> Result<(), u8> {
    if pending.is_empty() {
        return Ok(());
    }
    let requests: Vec<(Op, IpvsMessage)> = pending
        .iter()
        .filter_map(|s| match s {
            Step::Request(op, m) => Some((*op, m.clone())),
            _ => None,
        })
        .collect();
    let results = match client.batch(&requests) {
        Ok(r) => r,
        Err(e) => {
            let _ = writeln!(err, "{}", error_message(&e));
            return Err(EXIT_KERNEL);
        }
    };
    let mut results = results.into_iter();
    for s in pending.drain(..) {
        match s {
            Step::Request(..) => match results.next() {
                Some(Ok(())) | None => *last = 0,
                Some(Err(e)) => {
                    let _ = writeln!(err, "{}", error_message(&e));
                    *last = EXIT_KERNEL;
                }
            },
            Step::Refused(msg, code) => {
                let _ = writeln!(err, "{msg}");
                *last = code;
            }
            Step::Direct(_) => {}
        }
    }
    Ok(())
}

/// Apply a script: batches of requests, direct commands in between. Returns the exit status.
pub fn run_script(
    text: &str,
    program: &str,
    client: &mut Client,
    out: &mut dyn Write,
    err: &mut dyn Write,
    names: &dyn Names,
) -> u8 {
    let (steps, parse_error) = parse_script(text, program, names);
    let mut last = 0;
    let mut pending = Vec::new();
    for s in steps {
        match s {
            Step::Direct(p) => {
                if let Err(code) = flush(&mut pending, client, err, &mut last) {
                    return code;
                }
                if matches!(p.command, Command::Help | Command::Version) {
                    let _ = out.write_all(super::usage(program).as_bytes());
                    return 0;
                }
                last = super::execute(&p, client, out, err, names);
            }
            other => pending.push(other),
        }
    }
    if let Err(code) = flush(&mut pending, client, err, &mut last) {
        return code;
    }
    match parse_error {
        Some(e) => {
            let _ = writeln!(err, "{e}");
            e.exit_code()
        }
        None => last,
    }
}
