//! A raw IPv4 VRRP datagram through the daemon's receive path: never a panic, refusals change nothing.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    vrrp_linux::fuzzing::vrrpd_recv(data);
});
