//! Process-connector datagrams through the parser, writer and process tracker: never a
//! panic, every message reads back as written, and the tracker's verdicts settle on its
//! counts.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    vrrp_linux::fuzzing::proc_connector(data);
});
