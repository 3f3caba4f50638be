//! `vrrpd`: a keepalived-compatible VRRP daemon built on [`vrrp_proto`].
//!
//! It reads the VRRP half of a keepalived.conf ([`keepalived_conf`]), runs one
//! [`vrrp_proto::VirtualRouter`] per `vrrp_instance`, and does the Linux side: raw IP
//! sockets for protocol 112 ([`vrrp_linux::socket`]), virtual addresses and VMAC interfaces over
//! route netlink ([`vrrp_linux::rtnl`]), gratuitous ARP and unsolicited NA over `AF_PACKET`,
//! `vrrp_script` health checks, `track_interface`, notify scripts, signals (SIGTERM releases
//! with priority 0, SIGHUP reloads, SIGUSR1/SIGUSR2 dump state and statistics) and an
//! optional Prometheus endpoint.
//!
//! The run loop is the sans-IO one: every input (`handle_packet`, `handle_timeout`, a
//! priority or fault change) is followed by draining `poll_action`, and the loop sleeps
//! until the earliest `poll_timeout` or the next packet, script result, link change,
//! process event or signal. It sleeps in an `epoll` of its own on the main thread (the
//! receive sockets, a `timerfd` at the next deadline, an `eventfd`): an advert costs one
//! wakeup and three system calls. Everything else (check and notify scripts, link and
//! process events, signals, mail, metrics) runs as tokio tasks on one worker thread and
//! reaches the loop through a channel that bumps the `eventfd`.

mod cli;
mod daemon;
mod log;
mod notify;
mod report;
mod track;

pub use cli::{Options, run};
pub use daemon::DaemonError;
