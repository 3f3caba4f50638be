//! Helpers shared by the SQL tests.
#![allow(dead_code, unreachable_pub)]

pub mod servers;
