//! The client header timeout (nginx's `client_header_timeout`): a connection waiting for a
//! request head for longer than [`HEADER_TIMEOUT`] is closed.
//!
//! hyper's own `header_read_timeout` allocates and registers a new timer for every request
//! and removes it again when the head has arrived; here each connection keeps one timer whose
//! deadline is only moved forward when a wait for a head begins, which tokio does without
//! taking the timer wheel's lock.
//!
//! The service counts the requests it starts and finishes ([`Activity`]); the socket wrapper
//! ([`IdleIo`]) starts the clock on the first read after a request is finished (or on the
//! connection's first read), and while no request is being served, a read that would wait
//! past the deadline fails with [`std::io::ErrorKind::TimedOut`], which makes hyper close the
//! connection. While a request is served (the upstream may take `proxy_read_timeout`), the
//! clock does not run.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// How long a client may take to send a request head, counted from the end of the previous
/// response (or from the connection's start).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(60);

/// Requests started and finished on one connection.
#[derive(Debug, Default)]
pub struct Activity {
    started: AtomicU64,
    finished: AtomicU64,
}

impl Activity {
    /// A request starts; it is finished when the guard is dropped (when hyper has sent the
    /// whole response and drops its body, or when the request is abandoned).
    #[must_use]
    pub fn begin(self: &Arc<Self>) -> Busy {
        self.started.fetch_add(1, Ordering::Relaxed);
        Busy(Arc::clone(self))
    }
}

/// A request in progress on a connection (see [`Activity::begin`]).
#[derive(Debug)]
pub struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.finished.fetch_add(1, Ordering::Relaxed);
    }
}

/// A client socket with the header timeout.
#[derive(Debug)]
pub struct IdleIo<T> {
    io: T,
    activity: Arc<Activity>,
    /// `finished` when the current wait for a head began, if one is running.
    waiting: Option<u64>,
    timeout: Duration,
    sleep: Pin<Box<Sleep>>,
}

impl<T> IdleIo<T> {
    /// Wrap `io`, whose requests `activity` counts, with a header timeout of `timeout`.
    #[must_use]
    pub fn new(io: T, activity: Arc<Activity>, timeout: Duration) -> Self {
        Self {
            io,
            activity,
            waiting: None,
            timeout,
            sleep: Box::pin(tokio::time::sleep(timeout)),
        }
    }

    /// Whether a wait for a request head has lasted too long (and, if not, make sure the
    /// task is woken when it would).
    fn timed_out(&mut self, cx: &mut Context<'_>) -> bool {
        let finished = self.activity.finished.load(Ordering::Relaxed);
        if self.activity.started.load(Ordering::Relaxed) != finished {
            // A request is being served.
            self.waiting = None;
            return false;
        }
        if self.waiting != Some(finished) {
            // A new wait for a head: move the deadline forward (lock-free in tokio while the
            // timer is registered and the new deadline is later).
            self.waiting = Some(finished);
            let deadline = Instant::now() + self.timeout;
            self.sleep.as_mut().reset(deadline);
        }
        self.sleep.as_mut().poll(cx).is_ready()
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for IdleIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_read(cx, buf);
        if r.is_pending() && this.timed_out(cx) {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "client header timeout",
            )));
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for IdleIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    #[tokio::test]
    async fn idle_times_out_but_not_while_busy() {
        let limit = Duration::from_millis(300);
        let (a, mut b) = tokio::io::duplex(64);
        let act = Arc::new(Activity::default());
        let mut io = IdleIo::new(a, Arc::clone(&act), limit);
        let mut buf = [0u8; 8];
        // Data within the timeout is read.
        b.write_all(b"x").await.unwrap();
        assert_eq!(io.read(&mut buf).await.unwrap(), 1);
        // A request in progress: no timeout however long it takes.
        let busy = act.begin();
        let t = tokio::time::timeout(limit * 3, io.read(&mut buf)).await;
        assert!(t.is_err(), "the read must still wait");
        drop(busy);
        // The next wait for a head times out after the limit.
        let start = Instant::now();
        let e = io.read(&mut buf).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(start.elapsed() >= limit);
        // Data keeps being read when it comes in time.
        let (a, mut b) = tokio::io::duplex(64);
        let act = Arc::new(Activity::default());
        let mut io = IdleIo::new(a, Arc::clone(&act), limit);
        for _ in 0..3 {
            let busy = act.begin();
            drop(busy);
            tokio::time::sleep(limit / 2).await;
            b.write_all(b"y").await.unwrap();
            assert_eq!(io.read(&mut buf).await.unwrap(), 1);
        }
    }
}
