//! `MemcachedStore` against real memcached processes (tests/support/kv.rs): the conformance
//! suite on a 3-server ring (one copy, and two), placement identical to libmemcached's ketama
//! (checked through pylibmc in both directions), a killed server (keys on the others stay
//! readable; the dead one is ejected, re-tried, and taken back once it answers), replicas=2
//! losing nothing, the memcached expiry safety net, and typed errors.
//! Without the `memcached` binary the tests are skipped (printed), except with `CI=true`.
#![cfg(feature = "memcached")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod conformance;
#[path = "support/kv.rs"]
mod kv;

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use session_store::{
    ManualClock, MemcachedError, MemcachedOptions, MemcachedStore, SessionStore, StoreError, Token,
};

/// The 3-server ring shared by the conformance tests (each test uses its own key prefix);
/// stopped by the reapers when the test process ends.
fn shared_ring() -> Option<&'static [kv::Proc]> {
    static RING: OnceLock<Option<Vec<kv::Proc>>> = OnceLock::new();
    RING.get_or_init(|| kv::memcached_cluster(3)).as_deref()
}

fn prefix() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "t{}-{}:",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn addrs(procs: &[kv::Proc]) -> Vec<String> {
    procs.iter().map(kv::Proc::addr).collect()
}

fn store(procs: &[kv::Proc], replicas: usize, clock: ManualClock) -> MemcachedStore<ManualClock> {
    let opts = MemcachedOptions::new(addrs(procs))
        .replicas(replicas)
        .key_prefix(prefix())
        .failure_limit(2)
        .retry_after(Duration::from_millis(600))
        .io_timeout(Duration::from_millis(800));
    MemcachedStore::new(opts, clock).unwrap()
}

conformance::store_conformance!(async |clock| {
    let Some(ring) = shared_ring() else {
        return;
    };
    store(ring, 1, clock)
});

mod replicated {
    use super::{conformance, shared_ring, store};

    conformance::store_conformance!(async |clock| {
        let Some(ring) = shared_ring() else {
            return;
        };
        store(ring, 2, clock)
    });
}

/// Which server of `procs` holds `key` (asked directly, not through the store).
fn holders(procs: &[kv::Proc], key: &str) -> Vec<String> {
    procs
        .iter()
        .filter(|p| {
            kv::memcached_raw(&p.addr(), format!("get {key}\r\n").as_bytes(), &["END"])
                .starts_with("VALUE ")
        })
        .map(kv::Proc::addr)
        .collect()
}

/// Runs a pylibmc script (`ketama_weighted`, libmemcached's ketama) against `servers`;
/// `None` if python3-pylibmc is missing outside CI.
fn pylibmc(servers: &[String], script: &str, stdin: &str) -> Option<String> {
    use std::io::Write as _;
    let python = "/usr/bin/python3";
    let probe = std::process::Command::new(python)
        .args(["-c", "import pylibmc"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        return kv::skip("no python3 module pylibmc (apt-get install python3-pylibmc)");
    }
    let prelude = format!(
        "import sys, pylibmc\nc = pylibmc.Client({servers:?}, behaviors={{'ketama_weighted': True}})\n"
    );
    let mut child = std::process::Command::new(python)
        .args(["-c", &format!("{prelude}{script}")])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "pylibmc script failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8(out.stdout).unwrap())
}

#[tokio::test]
async fn placement_matches_libmemcached_ketama() {
    let Some(ring) = shared_ring() else {
        return;
    };
    let clock = ManualClock::new(conformance::T0);
    let s = store(ring, 1, clock);
    // libmemcached writes, we predict: every key is on the server our ring names, only there.
    let keys: Vec<String> = (0..150).map(|n| format!("{}lib{n}", prefix())).collect();
    let Some(out) = pylibmc(
        &addrs(ring),
        "keys = sys.stdin.read().split()\nfor k in keys: c.set(k, b'x')\nprint(len(keys))\n",
        &keys.join("\n"),
    ) else {
        return;
    };
    assert_eq!(out.trim(), "150");
    let mut per_server = std::collections::BTreeMap::<String, u32>::new();
    for k in &keys {
        let expected = s.ring_order(k.as_bytes())[0].to_owned();
        assert_eq!(holders(ring, k), vec![expected.clone()], "key {k}");
        *per_server.entry(expected).or_default() += 1;
    }
    assert_eq!(
        per_server.len(),
        3,
        "150 keys all on some servers: {per_server:?}"
    );
    // We write sessions, libmemcached reads them back: it looks only where ketama says.
    let mut wanted = Vec::new();
    for n in 0..60_u8 {
        let mut r = fresh_record(n);
        let t = s.create(&mut r).await.unwrap();
        assert_eq!(holders(ring, &s.key_for(r.id())).len(), 1);
        wanted.push(s.key_for(r.id()));
        drop(t);
    }
    let out = pylibmc(
        &addrs(ring),
        "keys = sys.stdin.read().split()\nprint(sum(1 for k in keys if c.get(k) is not None))\n",
        &wanted.join("\n"),
    )
    .unwrap();
    assert_eq!(
        out.trim(),
        "60",
        "libmemcached did not find every session we stored"
    );
}

/// A record with a random id (the conformance ones are fixed), created at T0.
fn fresh_record(n: u8) -> session_store::Record {
    let mut r = session_store::Record::new(
        session_store::SessionId::random().unwrap(),
        conformance::T0,
        conformance::TTL,
    );
    r.insert("n", &u64::from(n)).unwrap();
    r
}

/// Creates `n` sessions with a counter; returns their tokens.
async fn sessions<S: SessionStore>(s: &S, n: u8) -> Vec<Token> {
    let mut out = Vec::new();
    for i in 0..n {
        let mut r = fresh_record(i);
        r.insert("counter", &1_u64).unwrap();
        out.push(s.create(&mut r).await.unwrap());
    }
    out
}

#[tokio::test]
async fn a_killed_server_is_ejected_retried_and_taken_back() {
    let Some(procs) = kv::memcached_cluster(3) else {
        return;
    };
    let clock = ManualClock::new(conformance::T0);
    let s = store(&procs, 1, clock);
    let tokens = sessions(&s, 60).await;
    let dead = procs[0].addr();
    let (on_dead, on_others): (Vec<&Token>, Vec<&Token>) =
        tokens.iter().partition(|t| s.servers_for(t)[0] == dead);
    assert!(!on_dead.is_empty() && !on_others.is_empty());
    procs[0].kill9();

    // Keys on the others stay readable, before and after the ejection.
    for t in &on_others {
        assert!(s.load(t).await.unwrap().is_some());
    }
    // Keys on the dead one: errors (Unavailable) until the failure limit ejects it…
    for _ in 0..2 {
        match s.load(on_dead[0]).await {
            Err(StoreError::Unavailable(e)) => assert!(
                matches!(
                    e.downcast_ref::<MemcachedError>(),
                    Some(MemcachedError::Io { .. } | MemcachedError::Timeout { .. })
                ),
                "{e:?}"
            ),
            other => panic!("expected Unavailable from the dead server, got {other:?}"),
        }
    }
    assert_eq!(s.ejected(), vec![dead.as_str()]);
    // …then they go to the next server on the ring, which never had them (one copy only).
    assert_ne!(s.servers_for(on_dead[0])[0], dead);
    assert!(s.load(on_dead[0]).await.unwrap().is_none());
    for t in &on_others {
        assert!(s.load(t).await.unwrap().is_some());
    }
    // New sessions keep working while it is out.
    assert_eq!(sessions(&s, 10).await.len(), 10);

    // After the retry delay it is tried again: still dead, one failure ejects it again.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        s.ejected().is_empty(),
        "retry delay over, yet still ejected"
    );
    assert_eq!(s.servers_for(on_dead[0])[0], dead);
    assert!(matches!(
        s.load(on_dead[0]).await,
        Err(StoreError::Unavailable(_))
    ));
    assert_eq!(
        s.ejected(),
        vec![dead.as_str()],
        "re-ejected after one failure"
    );

    // Restarted (empty) on the same port: taken back at the next retry.
    let bin = kv::which("memcached").unwrap();
    let revived = kv::memcached_on(&bin, procs[0].port).unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        s.load(on_dead[0]).await.unwrap().is_none(),
        "restarted empty"
    );
    assert!(s.ejected().is_empty());
    let fresh = sessions(&s, 30).await;
    let back: Vec<&Token> = fresh
        .iter()
        .filter(|t| s.servers_for(t)[0] == dead)
        .collect();
    assert!(
        !back.is_empty(),
        "no new session landed on the revived server"
    );
    for t in back {
        assert_eq!(
            holders(
                std::slice::from_ref(&revived),
                &s.key_for(t.as_str().parse().unwrap())
            )
            .len(),
            1
        );
        assert!(s.load(t).await.unwrap().is_some());
    }
}

#[tokio::test]
async fn two_replicas_lose_nothing_when_a_server_dies() {
    let Some(procs) = kv::memcached_cluster(3) else {
        return;
    };
    let clock = ManualClock::new(conformance::T0);
    let s = store(&procs, 2, clock);
    let tokens = sessions(&s, 60).await;
    // Each session is on exactly its two servers, at version 2 after a compare-and-save.
    for t in &tokens {
        let mut r = s.load(t).await.unwrap().unwrap();
        r.insert("counter", &2_u64).unwrap();
        s.compare_and_save(&mut r).await.unwrap();
        let key = s.key_for(r.id());
        let mut want: Vec<String> = s.servers_for(t).iter().map(|a| (*a).to_owned()).collect();
        want.sort();
        let mut got = holders(&procs, &key);
        got.sort();
        assert_eq!(got, want, "replicas of {key}");
    }
    procs[1].kill9();
    // Every session still loads, at its latest version, even before the dead server is ejected.
    let mut loaded = 0;
    for t in &tokens {
        let r = s.load(t).await.unwrap().expect("session lost");
        assert_eq!(r.version(), 2);
        assert_eq!(r.get::<u64>("counter").unwrap(), Some(2));
        loaded += 1;
    }
    assert_eq!(loaded, 60);
    // Writes: those whose primary is the dead server fail until it is ejected, then succeed.
    for t in &tokens {
        let mut tries = 0;
        loop {
            let mut r = s.load(t).await.unwrap().expect("session lost");
            r.insert("counter", &3_u64).unwrap();
            match s.compare_and_save(&mut r).await {
                Ok(_) => break,
                Err(StoreError::Unavailable(_)) if tries < 3 => tries += 1,
                Err(e) => panic!("{e:?}"),
            }
        }
    }
    assert_eq!(s.ejected(), vec![procs[1].addr().as_str()]);
    for t in &tokens {
        let r = s.load(t).await.unwrap().expect("session lost");
        assert_eq!(
            (r.version(), r.get::<u64>("counter").unwrap()),
            (3, Some(3))
        );
    }
}

#[tokio::test]
async fn memcached_expiry_is_a_safety_net_behind_the_clock() {
    let Some(ring) = shared_ring() else {
        return;
    };
    let clock = ManualClock::new(conformance::T0);
    let s = store(ring, 1, clock);
    let mut r = conformance::record(1);
    let t = s.create(&mut r).await.unwrap();
    let addr = s.servers_for(&t)[0].to_owned();
    // Meta get, flag t: the remaining TTL memcached holds (60 s session + 60 s grace).
    let reply = kv::memcached_raw(
        &addr,
        format!("mg {} t\r\n", s.key_for(r.id())).as_bytes(),
        &["HD", "EN"],
    );
    let ttl: u64 = reply
        .trim()
        .strip_prefix("HD t")
        .unwrap_or_else(|| panic!("{reply:?}"))
        .parse()
        .unwrap();
    assert!((110..=120).contains(&ttl), "memcached TTL {ttl}");
}

#[tokio::test]
async fn corrupt_values_and_oversized_sessions_are_typed_errors() {
    let Some(ring) = shared_ring() else {
        return;
    };
    let clock = ManualClock::new(conformance::T0);
    let opts = MemcachedOptions::new(addrs(ring))
        .key_prefix(prefix())
        .max_value_size(1000);
    let s = MemcachedStore::new(opts, clock).unwrap();
    let mut big = conformance::record(1);
    big.insert("blob", &"x".repeat(2000)).unwrap();
    match s.create(&mut big).await {
        Err(StoreError::TooLarge { limit: 1000, size }) => assert!(size > 2000),
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert_eq!(big.version(), 0);
    let mut r = conformance::record(2);
    let t = s.create(&mut r).await.unwrap();
    let key = s.key_for(r.id());
    let addr = s.servers_for(&t)[0].to_owned();
    let reply = kv::memcached_raw(
        &addr,
        format!("set {key} 0 0 3\r\nbad\r\n").as_bytes(),
        &["STORED"],
    );
    assert_eq!(reply, "STORED\r\n");
    match s.load(&t).await {
        Err(StoreError::Backend(e)) => assert!(
            matches!(
                e.downcast_ref::<MemcachedError>(),
                Some(MemcachedError::Corrupt { .. })
            ),
            "{e:?}"
        ),
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[tokio::test]
async fn unreachable_servers_are_unavailable_then_all_ejected() {
    let port = kv::refused_port();
    let opts = MemcachedOptions::new([format!("127.0.0.1:{port}")]).failure_limit(2);
    let s = MemcachedStore::new(opts, ManualClock::new(conformance::T0)).unwrap();
    let t = Token::from(conformance::record(1).id());
    for _ in 0..2 {
        match s.load(&t).await {
            Err(StoreError::Unavailable(e)) => assert!(
                matches!(
                    e.downcast_ref::<MemcachedError>(),
                    Some(MemcachedError::Io { op: "load", .. })
                ),
                "{e:?}"
            ),
            other => panic!("expected Unavailable, got {other:?}"),
        }
    }
    match s.create(&mut conformance::record(1)).await {
        Err(StoreError::Unavailable(e)) => assert!(matches!(
            e.downcast_ref::<MemcachedError>(),
            Some(MemcachedError::AllEjected)
        )),
        other => panic!("expected AllEjected, got {other:?}"),
    }
}

#[test]
fn bad_configurations_are_typed_errors() {
    let c = || ManualClock::new(conformance::T0);
    let err = |o: MemcachedOptions| MemcachedStore::new(o, c()).unwrap_err();
    assert!(matches!(
        err(MemcachedOptions::new(Vec::<String>::new())),
        MemcachedError::NoServers
    ));
    for bad in ["localhost", "h:0", "h:99999", ":11211", "a b:1"] {
        assert!(
            matches!(
                err(MemcachedOptions::new([bad])),
                MemcachedError::BadAddress { .. }
            ),
            "{bad}"
        );
    }
    assert!(matches!(
        err(MemcachedOptions::new(["h:1", "h:1"])),
        MemcachedError::DuplicateServer { .. }
    ));
    assert!(matches!(
        err(MemcachedOptions::new(["h:1"]).key_prefix("a b")),
        MemcachedError::BadPrefix { .. }
    ));
    assert!(matches!(
        err(MemcachedOptions::new(["h:1"]).key_prefix("x".repeat(229))),
        MemcachedError::BadPrefix { max: 228, .. }
    ));
    assert!(matches!(
        err(MemcachedOptions::new(["h:1", "h:2"]).replicas(3)),
        MemcachedError::Replicas {
            replicas: 3,
            servers: 2
        }
    ));
    assert!(
        MemcachedStore::new(MemcachedOptions::new(["[::1]:1", "h:2"]).replicas(2), c()).is_ok()
    );
}

/// One counter of memcached's `stats`.
fn stat(addr: &str, name: &str) -> u64 {
    let reply = kv::memcached_raw(addr, b"stats\r\n", &["END"]);
    reply
        .lines()
        .find_map(|l| l.strip_prefix(&format!("STAT {name} ")))
        .unwrap_or_else(|| panic!("no {name} in {reply:?}"))
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn a_save_after_a_load_is_one_round_trip_and_stale_copies_are_caught() {
    let Some(ring) = shared_ring() else {
        return;
    };
    // Two stores sharing keys, as two web servers would.
    let p = prefix();
    let mk = || {
        let opts = MemcachedOptions::new(addrs(ring)).key_prefix(p.clone());
        MemcachedStore::new(opts, ManualClock::new(conformance::T0)).unwrap()
    };
    let (a, b) = (mk(), mk());
    let mut r = conformance::record(1);
    let t = a.create(&mut r).await.unwrap();
    let addr = a.servers_for(&t)[0].to_owned();
    let gets = || stat(&addr, "cmd_get");
    let sets = || stat(&addr, "cmd_set");

    // Load then save through one store: the save reads nothing (one meta set, CAS-checked).
    let mut loaded = a.load(&t).await.unwrap().unwrap();
    let (g0, s0) = (gets(), sets());
    loaded.insert("n", &1).unwrap();
    a.save(&mut loaded).await.unwrap();
    assert_eq!((gets() - g0, sets() - s0), (0, 1));
    // Saving again (the store remembers what it wrote): still one round trip.
    loaded.insert("n", &2).unwrap();
    a.compare_and_save(&mut loaded).await.unwrap();
    assert_eq!((gets() - g0, sets() - s0), (0, 2));
    assert_eq!(loaded.version(), 3);

    // The other server writes meanwhile: what `a` remembers is stale.
    let mut other = b.load(&t).await.unwrap().unwrap();
    other.insert("n", &10).unwrap();
    b.compare_and_save(&mut other).await.unwrap();
    assert_eq!(other.version(), 4);

    // A compare-and-save from `a`'s old copy fails on the server's CAS, then a real read
    // reports the version mismatch (not a lost update).
    let mut stale = loaded.clone();
    let (g1, s1) = (gets(), sets());
    match a.compare_and_save(&mut stale).await {
        Err(StoreError::VersionMismatch {
            expected: 3,
            found: Some(4),
        }) => {}
        other => panic!("expected VersionMismatch, got {other:?}"),
    }
    assert_eq!((gets() - g1, sets() - s1), (1, 1));
    // A compare-and-save of the current copy through `a`, whose remembered copy is older, is
    // not refused on that memory: it succeeds.
    let mut current = b.load(&t).await.unwrap().unwrap();
    assert_eq!(current.get::<i32>("n").unwrap(), Some(10));
    // `a` was refreshed by its failed attempt's read; make it stale again through `b`.
    current.insert("n", &11).unwrap();
    b.compare_and_save(&mut current).await.unwrap();
    current.insert("n", &12).unwrap();
    a.compare_and_save(&mut current).await.unwrap();
    assert_eq!(current.version(), 6);
    // An unconditional save from a stale copy still moves the version forward.
    let mut old = loaded.clone();
    old.insert("n", &99).unwrap();
    a.save(&mut old).await.unwrap();
    assert_eq!(old.version(), 7);
    let seen = b.load(&t).await.unwrap().unwrap();
    assert_eq!(
        (seen.version(), seen.get::<i32>("n").unwrap()),
        (7, Some(99))
    );
}
