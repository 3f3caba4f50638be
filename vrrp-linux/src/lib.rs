#![doc = include_str!("../README.md")]

pub mod instance;
pub mod process;
pub mod rtnl;
pub mod socket;
pub mod timer;

#[cfg(feature = "fuzzing")]
pub mod fuzzing;

pub use instance::{Instance, InstanceBuilder, InstanceError, Status};
pub use socket::{IoError, PacketSocket, Received, VrrpRecvSocket, VrrpSendSocket};
pub use timer::Timer;
