//! Active health checks: every `interval`, each server of an upstream with `health_check` is
//! probed (TCP connect, or `GET uri` expecting `status`); `fall` consecutive failures take it
//! out of the balancer, `rise` consecutive passes bring it back. The runs and the verdict live
//! in the [`Peer`](super::upstream::Peer), so a reload carries them over.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use http_probe::{Expect, HttpProbe};
use tokio::sync::watch;

use super::config::{HealthConf, HealthKind};
use super::upstream::Upstream;

/// Why a probe failed (logged on state changes).
pub use http_probe::ProbeError;

/// Probe `addr` once.
///
/// # Errors
/// [`ProbeError`] saying why the server is not healthy.
pub async fn probe(addr: SocketAddr, conf: &HealthConf) -> Result<(), ProbeError> {
    match &conf.kind {
        HealthKind::Tcp => http_probe::tcp(addr, conf.timeout).await,
        HealthKind::Http { uri, status } => HttpProbe::get(uri.as_str())
            .user_agent("lbd-health-check")
            .expect(Expect::Status(*status))
            .timeout(conf.timeout)
            .run(addr)
            .await
            .map(|_| ()),
    }
}

/// Start the checker tasks of `up` (one per server); they end when `stop` changes.
pub fn spawn(up: &Arc<Upstream>, stop: &watch::Receiver<bool>) {
    let Some(conf) = up.conf.health.clone() else {
        return;
    };
    for i in 0..up.peers.len() {
        let up = Arc::clone(up);
        let conf = conf.clone();
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let Some(peer) = up.peers.get(i) else {
                return;
            };
            let addr = peer.addr;
            // Carried over from the previous generation on a reload (see
            // `Upstream::with_previous`), else a fresh start: healthy, no runs.
            let mut ok_run = peer.check_passes.load(Ordering::Relaxed);
            let mut fail_run = peer.check_fails.load(Ordering::Relaxed);
            let mut healthy = peer.healthy.load(Ordering::Relaxed);
            let mut tick = tokio::time::interval(conf.interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop.changed() => return,
                }
                let verdict = probe(addr, &conf).await;
                if *stop.borrow() {
                    // Replaced by a reload while probing: the new generation carries on.
                    return;
                }
                match verdict {
                    Ok(()) => {
                        fail_run = 0;
                        ok_run = ok_run.saturating_add(1);
                        if !healthy && ok_run >= conf.rise {
                            healthy = true;
                            up.set_healthy(i, true);
                            eprintln!(
                                "lbd: [notice] upstream {} server {addr} is up (health check passed {ok_run} times)",
                                up.name
                            );
                        }
                    }
                    Err(e) => {
                        ok_run = 0;
                        fail_run = fail_run.saturating_add(1);
                        if healthy && fail_run >= conf.fall {
                            healthy = false;
                            up.set_healthy(i, false);
                            eprintln!(
                                "lbd: [warn] upstream {} server {addr} is down: health check failed {fail_run} times, last: {e}",
                                up.name
                            );
                        }
                    }
                }
                peer.check_passes.store(ok_run, Ordering::Relaxed);
                peer.check_fails.store(fail_run, Ordering::Relaxed);
            }
        });
    }
}
