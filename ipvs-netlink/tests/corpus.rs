//! Replays the `ipvs_reply` fuzz seeds through `ipvs_netlink::fuzzing::reply` on stable.
#![allow(clippy::unwrap_used, missing_docs)]

#[test]
fn replay_ipvs_reply_seeds() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/seeds/ipvs_reply");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        ipvs_netlink::fuzzing::reply(&data);
        n += 1;
    }
    assert!(n > 0, "no seeds in {dir}");
}
