//! Route-netlink reply bytes through the reply parser: never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    vrrp_linux::fuzzing::rtnl_reply(data);
});
