#![doc = include_str!("../README.md")]

pub mod demo;
pub mod io;
pub mod ipvsctl;
pub mod kaconf;
pub mod lbd;
pub mod lvsd;
pub mod netns;
pub mod realserver;
pub mod rtnl;
pub mod testbed;
pub mod vrrpd;
pub mod webapp;

#[cfg(feature = "fuzzing")]
pub mod fuzzing;
