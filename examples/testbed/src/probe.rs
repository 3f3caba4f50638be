//! The [`Probe`]: a client that connects to a service from one host at a fixed interval and
//! records who answered, as [`Sample`]s.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::{Testbed, TestbedError, io_err, lock};

/// One probe of a [`Probe`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// When the probe's connection was started.
    pub sent: Instant,
    /// When the answer (or the error) came; this is the time the analyses use.
    pub t: Instant,
    /// The answering host's name, if the exchange succeeded.
    pub answer: Option<String>,
    /// What went wrong otherwise (`TimedOut` for a probe that got no answer in time).
    pub error: Option<io::ErrorKind>,
}

/// A client that opens a fresh TCP connection to a service every interval from inside one host
/// and records who answered (see [`Responder`]). Probes run concurrently, so a lost SYN never
/// delays later probes.
///
/// [`Responder`]: crate::Responder
#[derive(Debug)]
pub struct Probe {
    samples: Arc<Mutex<Vec<Sample>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Option<()>>>,
    epoch: Instant,
}

impl Probe {
    /// Starts probing `target:port` from `host` every `interval`; each probe times out after
    /// four intervals, at least 20 ms.
    ///
    /// # Errors
    /// [`TestbedError::UnknownHost`], or the probe thread / its runtime could not be started.
    pub fn start(
        tb: &Testbed,
        host: &str,
        target: IpAddr,
        port: u16,
        interval: Duration,
    ) -> Result<Self, TestbedError> {
        let ns = tb.ns(host)?;
        let interval = interval.max(Duration::from_millis(1));
        let timeout = (interval * 4).max(Duration::from_millis(20));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(io_err("building the probe runtime"))?;
        let samples = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let epoch = Instant::now();
        let (s2, stop2) = (Arc::clone(&samples), Arc::clone(&stop));
        let addr = SocketAddr::new(target, port);
        // The runtime runs on this thread, in the host's namespace: every socket it creates
        // belongs to that namespace.
        let thread = ns
            .spawn(&format!("probe-{host}"), move || {
                runtime.block_on(probe_loop(addr, interval, timeout, s2, stop2));
            })
            .map_err(io_err(format!("starting the probe thread in {host}")))?;
        Ok(Self {
            samples,
            stop,
            thread: Some(thread),
            epoch,
        })
    }

    /// When the probe started.
    pub fn epoch(&self) -> Instant {
        self.epoch
    }

    /// A copy of the samples so far, in completion order.
    pub fn snapshot(&self) -> Vec<Sample> {
        lock(&self.samples).clone()
    }

    /// The answer of the latest successful probe.
    pub fn last_answer(&self) -> Option<String> {
        lock(&self.samples)
            .iter()
            .rev()
            .find_map(|s| s.answer.clone())
    }

    /// Waits up to `timeout` until a probe completed after this call is answered by `name`.
    /// Returns whether that happened.
    pub fn wait_for_answer(&self, name: &str, timeout: Duration) -> bool {
        let start = Instant::now();
        loop {
            let seen = lock(&self.samples)
                .iter()
                .rev()
                .take_while(|s| s.t >= start)
                .any(|s| s.answer.as_deref() == Some(name));
            if seen {
                return true;
            }
            if start.elapsed() >= timeout {
                return false;
            }
            thread::sleep(Duration::from_millis(2));
        }
    }

    /// Stops probing, waits for the probes in flight and returns all samples sorted by `t`.
    pub fn stop(mut self) -> Vec<Sample> {
        self.shutdown();
        let mut samples = std::mem::take(&mut *lock(&self.samples));
        samples.sort_by_key(|s| s.t);
        samples
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        self.shutdown();
    }
}

async fn probe_loop(
    addr: SocketAddr,
    interval: Duration,
    timeout: Duration,
    samples: Arc<Mutex<Vec<Sample>>>,
    stop: Arc<AtomicBool>,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut tasks = tokio::task::JoinSet::new();
    while !stop.load(Ordering::Relaxed) {
        ticker.tick().await;
        let samples = Arc::clone(&samples);
        tasks.spawn(async move {
            let sample = probe_once(addr, timeout).await;
            lock(&samples).push(sample);
        });
        // Reap finished tasks so the set does not grow.
        while tasks.try_join_next().is_some() {}
    }
    let _ = tokio::time::timeout(timeout + Duration::from_millis(100), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
}

async fn probe_once(addr: SocketAddr, timeout: Duration) -> Sample {
    use tokio::io::AsyncReadExt;
    let sent = Instant::now();
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        let mut buf = Vec::with_capacity(32);
        stream.read_to_end(&mut buf).await?;
        Ok::<_, io::Error>(buf)
    };
    let result = tokio::time::timeout(timeout, exchange).await;
    let t = Instant::now();
    let (answer, error) = match result {
        Ok(Ok(buf)) => {
            let text = String::from_utf8_lossy(&buf);
            match text.lines().next().map(str::trim) {
                Some(name) if !name.is_empty() => (Some(name.to_owned()), None),
                _ => (None, Some(io::ErrorKind::UnexpectedEof)),
            }
        }
        Ok(Err(e)) => (None, Some(e.kind())),
        Err(_) => (None, Some(io::ErrorKind::TimedOut)),
    };
    Sample {
        sent,
        t,
        answer,
        error,
    }
}
