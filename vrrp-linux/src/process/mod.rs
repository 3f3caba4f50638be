//! Tracked processes (keepalived's `vrrp_track_process`): how many processes of a kind run,
//! learned from the kernel's process-event connector the moment they start or end.
//!
//! - [`Tracker`]: the counting and quorum rules, sans IO, driven by a `/proc` scan and
//!   process events.
//! - [`ProcessWatcher`]: a [`Tracker`] on a real connector socket and `/proc`, as a tokio
//!   stream of [`QuorumChange`]s.
//! - [`connector`]: the connector's messages, parsed and written.

pub mod connector;
mod tracker;
mod watcher;

pub use tracker::{ParamMatch, ProcInfo, ProcessSpec, QuorumChange, Tracker};
pub use watcher::{ProcessError, ProcessWatcher, RESCAN_DELAY, WatcherStats};
