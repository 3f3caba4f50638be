//! `vrrp_script` health checks, run natively, and notify scripts. What their results do to
//! priorities and FAULT is [`vrrp_proto::policy`]'s job.

use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;
use tokio::task::JoinHandle;

use super::daemon::{Event, EventTx};

/// How one run of a check script ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Exit status 0.
    Success,
    /// Non-zero exit status (or killed by a signal: `None`).
    Failed(Option<i32>),
    /// Still running at its timeout: killed.
    TimedOut,
    /// Could not be started.
    SpawnFailed,
}

/// Starts the periodic runner of one script: runs `cmd` through `/bin/sh -c` every
/// `interval`, kills it at `timeout`, and sends each outcome to the daemon loop.
pub(crate) fn spawn_runner(
    name: String,
    cmd: String,
    interval: Duration,
    timeout: Duration,
    tx: EventTx,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let interval = interval.max(Duration::from_millis(10));
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let outcome = run_once(&cmd, timeout).await;
            if tx
                .send(Event::Script {
                    name: name.clone(),
                    outcome,
                })
                .is_err()
            {
                return;
            }
        }
    })
}

async fn run_once(cmd: &str, timeout: Duration) -> Outcome {
    let child = Command::new("/bin/sh")
        .arg("-c")
        .arg(cmd)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        // Its own process group, so a timeout kills whatever the script started too.
        .process_group(0)
        .spawn();
    let Ok(mut child) = child else {
        return Outcome::SpawnFailed;
    };
    let pgid = child
        .id()
        .and_then(|p| i32::try_from(p).ok())
        .map(nix::unistd::Pid::from_raw);
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) if status.success() => Outcome::Success,
        Ok(Ok(status)) => Outcome::Failed(status.code()),
        Ok(Err(_)) => Outcome::SpawnFailed,
        Err(_) => {
            // Timed out: kill its whole process group and reap it so nothing is left.
            if let Some(g) = pgid {
                let _ = nix::sys::signal::killpg(g, nix::sys::signal::Signal::SIGKILL);
            }
            let _ = child.start_kill();
            let _ = child.wait().await;
            Outcome::TimedOut
        }
    }
}

/// Runs a notify script without waiting for it (keepalived does not wait either).
pub(crate) fn notify(cmd: &str, extra: &[&str]) {
    let mut c = Command::new("/bin/sh");
    if extra.is_empty() {
        c.arg("-c").arg(cmd);
    } else {
        // `notify` gets TYPE NAME STATE PRIORITY appended as separate arguments.
        c.arg("-c").arg(format!("{cmd} \"$@\"")).arg("notify");
        c.args(extra);
    }
    c.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Ok(mut child) = c.spawn() {
        tokio::spawn(async move {
            let _ = child.wait().await;
        });
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn scripts_time_out_and_report_status() {
        assert_eq!(
            run_once("exit 0", Duration::from_secs(5)).await,
            Outcome::Success
        );
        assert_eq!(
            run_once("exit 3", Duration::from_secs(5)).await,
            Outcome::Failed(Some(3))
        );
        let t = std::time::Instant::now();
        assert_eq!(
            run_once("sleep 30", Duration::from_millis(200)).await,
            Outcome::TimedOut
        );
        assert!(t.elapsed() < Duration::from_secs(10));
        // A grandchild in the background dies with the script.
        let marker = format!("sleep 47.{}", std::process::id());
        assert_eq!(
            run_once(&format!("{marker} & wait"), Duration::from_millis(200)).await,
            Outcome::TimedOut
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        let left = std::process::Command::new("pgrep")
            .args(["-f", &marker])
            .output()
            .map(|o| o.stdout)
            .unwrap_or_default();
        assert!(left.is_empty(), "{}", String::from_utf8_lossy(&left));
    }
}
