//! The TCP [`Responder`]: a service in one host that answers with the host's name, to see which
//! host a virtual address leads to.

use std::io::{self, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::{Testbed, TestbedError, io_err};

/// A TCP service in one host that answers every connection with the host name (one line) and
/// closes it. Used to see which host a virtual address leads to.
#[derive(Debug)]
pub struct Responder {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    local: SocketAddr,
}

impl Responder {
    /// Listens on `0.0.0.0:port` inside `host` (the socket is created in the host's namespace)
    /// and serves it from a background thread.
    ///
    /// # Errors
    /// [`TestbedError::UnknownHost`], or creating / binding the socket failed.
    pub fn start(tb: &Testbed, host: &str, port: u16) -> Result<Self, TestbedError> {
        let ns = tb.ns(host)?;
        let what = format!("listening on 0.0.0.0:{port} in {host}");
        let listener = ns
            .run(|| -> io::Result<TcpListener> {
                let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
                s.set_reuse_address(true)?;
                s.bind(&SockAddr::from(SocketAddr::from((
                    Ipv4Addr::UNSPECIFIED,
                    port,
                ))))?;
                s.listen(1024)?;
                // accept() returns EAGAIN after this, so the thread can notice `stop`.
                s.set_read_timeout(Some(Duration::from_millis(50)))?;
                Ok(s.into())
            })
            .and_then(|r| r)
            .map_err(io_err(what.clone()))?;
        let local = listener.local_addr().map_err(io_err(what))?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let answer = format!("{host}\n").into_bytes();
        let thread = thread::Builder::new()
            .name(format!("responder-{host}"))
            .spawn(move || serve(&listener, &flag, &answer))
            .map_err(io_err("starting the responder thread"))?;
        Ok(Self {
            stop,
            thread: Some(thread),
            local,
        })
    }

    /// The bound address (inside the host's namespace).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Stops serving and closes the listener.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn serve(listener: &TcpListener, stop: &AtomicBool, answer: &[u8]) {
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((mut conn, _)) => {
                let _ = conn.set_write_timeout(Some(Duration::from_millis(100)));
                let _ = conn.write_all(answer);
                let _ = conn.shutdown(std::net::Shutdown::Write);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // ECONNABORTED and friends: the client gave up; EMFILE: back off a little.
            Err(_) => thread::sleep(Duration::from_millis(1)),
        }
    }
}
