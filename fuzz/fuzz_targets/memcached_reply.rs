//! memcached text-protocol replies through the store's parser: never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    session_store::fuzzing::memcached_reply(data);
});
