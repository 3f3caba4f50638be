//! `MemcachedStore` against real memcached processes (tests/support/kv.rs): the conformance
//! suite on a 3-server ring (one copy, and two), placement identical to libmemcached's for each
//! supported distribution (random weighted server lists on 64 servers, checked through pylibmc
//! in both directions by reading every server), a killed server (keys on the others stay
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

use session_store::memcached::Distribution;
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

/// Runs `script` in `/usr/bin/python3` with pylibmc imported, `stdin` on its standard input;
/// `None` if python3-pylibmc is missing outside CI.
fn pylibmc(script: &str, stdin: &str) -> Option<String> {
    use std::io::Write as _;
    let python = "/usr/bin/python3";
    let probe = std::process::Command::new(python)
        .args(["-c", "import pylibmc"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        return kv::skip("no python3 module pylibmc (apt-get install python3-pylibmc)");
    }
    let mut child = std::process::Command::new(python)
        .args(["-c", &format!("import sys, json, pylibmc\n{script}")])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let stdin = stdin.to_owned();
    let writer = std::thread::spawn(move || input.write_all(stdin.as_bytes()).unwrap());
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(
        out.status.success(),
        "pylibmc script failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8(out.stdout).unwrap())
}

/// For each server list of its input (one JSON object a line: `servers` as pylibmc's
/// `"host:port:weight"`, pylibmc `behaviors`, `op`, `keys`), a pylibmc client
/// that either sets every key (`"set"`, prints how many failed) or reads them all
/// (`"get"`, prints how many it found).
const PYLIBMC_JOBS: &str = r#"
for line in sys.stdin:
    job = json.loads(line)
    c = pylibmc.Client(job["servers"], behaviors=dict(job["behaviors"], tcp_nodelay=True))
    if job["op"] == "set":
        print(len(c.set_multi({k: b"x" for k in job["keys"]})))
    else:
        print(len(c.get_multi(job["keys"])))
    c.disconnect_all()
"#;

/// xorshift64*: the placement test's random server lists, weights and keys.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform enough in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// `len` characters of base64url, like a session id.
    fn text(&mut self, len: usize) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        (0..len)
            .map(|_| char::from(ALPHABET[self.below(64) as usize]))
            .collect()
    }
}

/// Which of `servers` hold each of `keys`, read from every server directly: per server (in
/// parallel), one pipelined batch of quiet meta gets (`mg <key> k q`, answered only on a hit)
/// closed by `mn`.
fn locate(servers: &[String], keys: &[String]) -> Vec<Vec<usize>> {
    use std::io::{BufRead as _, BufReader, BufWriter, Write as _};
    let hits: Vec<std::collections::HashSet<String>> = std::thread::scope(|scope| {
        let readers: Vec<_> = servers
            .iter()
            .map(|addr| {
                scope.spawn(move || {
                    let stream = std::net::TcpStream::connect(addr).unwrap();
                    stream
                        .set_read_timeout(Some(Duration::from_secs(30)))
                        .unwrap();
                    let out = stream.try_clone().unwrap();
                    let writer = scope.spawn(move || {
                        let mut w = BufWriter::new(out);
                        for k in keys {
                            write!(w, "mg {k} k q\r\n").unwrap();
                        }
                        w.write_all(b"mn\r\n").unwrap();
                        w.flush().unwrap();
                    });
                    let mut found = std::collections::HashSet::new();
                    for line in BufReader::new(stream).lines() {
                        let line = line.unwrap();
                        if line == "MN" {
                            break;
                        }
                        let key = line
                            .strip_prefix("HD k")
                            .unwrap_or_else(|| panic!("{addr}: unexpected {line:?}"));
                        found.insert(key.to_owned());
                    }
                    writer.join().unwrap();
                    found
                })
            })
            .collect();
        readers.into_iter().map(|r| r.join().unwrap()).collect()
    });
    keys.iter()
        .map(|k| {
            hits.iter()
                .enumerate()
                .filter(|(_, h)| h.contains(k))
                .map(|(i, _)| i)
                .collect()
        })
        .collect()
}

/// One random server list of the placement test.
struct PlacementCase {
    distribution: Distribution,
    /// The pylibmc setting that selects it.
    behaviors: serde_json::Value,
    /// `127.0.0.1:port` and weight.
    servers: Vec<(String, u32)>,
    prefix: String,
    /// Written by pylibmc.
    lib_keys: Vec<String>,
}

impl PlacementCase {
    fn addrs(&self) -> Vec<String> {
        self.servers.iter().map(|(a, _)| a.clone()).collect()
    }

    fn describe(&self, seed: u64) -> String {
        format!(
            "PLACEMENT_SEED={seed}, {:?} (pylibmc {}), {} servers, weights {:?}",
            self.distribution,
            self.behaviors,
            self.servers.len(),
            self.servers.iter().map(|(_, w)| *w).collect::<Vec<_>>()
        )
    }

    fn job(&self, op: &str, keys: &[String]) -> String {
        let servers: Vec<String> = self
            .servers
            .iter()
            .map(|(a, w)| format!("{a}:{w}"))
            .collect();
        serde_json::json!({"servers": servers, "behaviors": self.behaviors, "op": op, "keys": keys})
            .to_string()
    }

    fn store(&self) -> MemcachedStore<ManualClock> {
        let opts = MemcachedOptions::weighted(self.servers.clone())
            .distribution(self.distribution)
            .key_prefix(self.prefix.clone());
        MemcachedStore::new(opts, ManualClock::new(conformance::T0)).unwrap()
    }
}

/// Server lists per distribution in the placement test.
const PLACEMENT_LISTS: usize = 20;
/// Keys per list and direction in the placement test.
const PLACEMENT_KEYS: usize = 2000;

/// Random server lists (1-64 of 64 real servers, random order and weights) for each supported
/// distribution (`Ketama` selected in pylibmc both ways, `ketama` and distribution
/// `consistent`): pylibmc (libmemcached) writes 2,000 keys, the store writes 2,000 sessions,
/// and every server of the list is read directly: each key is on exactly the server the
/// other side expects, and pylibmc reads back every session the store wrote.
/// `PLACEMENT_SEED=n` repeats a run (the random start is printed).
#[test]
fn placement_matches_pylibmc_on_random_weighted_server_lists() {
    let Some(pool) = kv::memcached_cluster(64) else {
        return;
    };
    if pylibmc("pass", "").is_none() {
        return;
    }
    let seed = std::env::var("PLACEMENT_SEED").map_or_else(
        |_| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap();
            now.as_secs() ^ u64::from(now.subsec_nanos()) << 20 | 1
        },
        |s| s.parse().unwrap(),
    );
    let mut rng = Rng(seed);
    let pid = std::process::id();
    let mut cases = Vec::new();
    for distribution in [
        Distribution::KetamaWeighted,
        Distribution::Ketama,
        Distribution::ConsistentWeighted,
    ] {
        for i in 0..PLACEMENT_LISTS {
            let behaviors = match distribution {
                Distribution::KetamaWeighted => serde_json::json!({"ketama_weighted": true}),
                Distribution::Ketama if i % 2 == 0 => serde_json::json!({"ketama": true}),
                Distribution::Ketama => serde_json::json!({"distribution": "consistent"}),
                _ => serde_json::json!({"distribution": "consistent weighted"}),
            };
            // The 25 equal servers that get 156 points each, the largest and the smallest
            // list, then random ones; weights all 1, 0-1, 1-10, 0-1000 or 0-65535 (pylibmc's
            // largest).
            let n = match i {
                0 => 25,
                1 => 64,
                2 => 1,
                _ => 1 + rng.below(64) as usize,
            };
            let mut order: Vec<usize> = (0..pool.len()).collect();
            for j in (1..order.len()).rev() {
                order.swap(j, rng.below(j as u64 + 1) as usize);
            }
            let servers = order[..n]
                .iter()
                .map(|&p| {
                    let weight = match i % 5 {
                        0 => 1,
                        1 => rng.below(2),
                        2 => 1 + rng.below(10),
                        3 => rng.below(1001),
                        _ => rng.below(65536),
                    };
                    (pool[p].addr(), u32::try_from(weight).unwrap())
                })
                .collect();
            let prefix = format!("p{pid}-{}:", cases.len());
            let lib_keys = (0..PLACEMENT_KEYS)
                .map(|k| {
                    // Mostly session-id-shaped keys, every tenth of another length.
                    let len = if k % 10 == 0 {
                        1 + rng.below(120) as usize
                    } else {
                        22
                    };
                    format!("{prefix}{}", rng.text(len))
                })
                .collect();
            cases.push(PlacementCase {
                distribution,
                behaviors,
                servers,
                prefix,
                lib_keys,
            });
        }
    }

    // libmemcached writes (one pylibmc process for every list)…
    let jobs: String = cases
        .iter()
        .map(|c| c.job("set", &c.lib_keys) + "\n")
        .collect();
    let failed = pylibmc(PYLIBMC_JOBS, &jobs).unwrap();
    assert!(
        failed.lines().all(|l| l == "0") && failed.lines().count() == cases.len(),
        "pylibmc set_multi failures per list: {failed:?}"
    );
    // …and the store writes (every list at once).
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let stores: Vec<std::sync::Arc<MemcachedStore<ManualClock>>> = cases
        .iter()
        .map(|c| std::sync::Arc::new(c.store()))
        .collect();
    let store_keys: Vec<Vec<(String, String)>> = rt.block_on(async {
        let writers: Vec<_> = stores
            .iter()
            .map(|s| {
                let s = std::sync::Arc::clone(s);
                tokio::spawn(async move {
                    let mut keys = Vec::with_capacity(PLACEMENT_KEYS);
                    for _ in 0..PLACEMENT_KEYS {
                        let mut r = session_store::Record::new(
                            session_store::SessionId::random().unwrap(),
                            conformance::T0,
                            conformance::TTL,
                        );
                        let t = s.create(&mut r).await.unwrap();
                        keys.push((s.key_for(r.id()), s.servers_for(&t)[0].to_owned()));
                    }
                    keys
                })
            })
            .collect();
        let mut all = Vec::with_capacity(writers.len());
        for w in writers {
            all.push(w.await.unwrap());
        }
        all
    });

    // Every server of each list is read for every key of the list.
    let mut compared = (0, 0);
    for ((case, s), ours) in cases.iter().zip(&stores).zip(&store_keys) {
        let addrs = case.addrs();
        let all: Vec<String> = case
            .lib_keys
            .iter()
            .cloned()
            .chain(ours.iter().map(|(k, _)| k.clone()))
            .collect();
        let holders = locate(&addrs, &all);
        let (lib_holders, our_holders) = holders.split_at(case.lib_keys.len());
        let on = |h: &[usize]| h.iter().map(|&i| addrs[i].as_str()).collect::<Vec<_>>();
        let elsewhere = case
            .lib_keys
            .iter()
            .zip(lib_holders)
            .filter(|(k, h)| on(h) != [s.ring_order(k.as_bytes())[0]])
            .count();
        assert_eq!(
            elsewhere,
            0,
            "{elsewhere} of {} keys written by pylibmc are not (only) on the server our ring \
             names ({})",
            case.lib_keys.len(),
            case.describe(seed)
        );
        let elsewhere = ours
            .iter()
            .zip(our_holders)
            .filter(|((_, expected), h)| on(h) != [expected.as_str()])
            .count();
        assert_eq!(
            elsewhere,
            0,
            "{elsewhere} sessions are not (only) on their server ({})",
            case.describe(seed)
        );
        compared.0 += case.lib_keys.len();
        compared.1 += ours.len();
    }
    // libmemcached reads what the store wrote, looking only where it places each key.
    let jobs: String = cases
        .iter()
        .zip(&store_keys)
        .map(|(c, ours)| {
            let keys: Vec<String> = ours.iter().map(|(k, _)| k.clone()).collect();
            c.job("get", &keys) + "\n"
        })
        .collect();
    let found = pylibmc(PYLIBMC_JOBS, &jobs).unwrap();
    assert_eq!(found.lines().count(), cases.len());
    for (case, line) in cases.iter().zip(found.lines()) {
        assert_eq!(
            line,
            PLACEMENT_KEYS.to_string(),
            "pylibmc found only {line} of the store's {PLACEMENT_KEYS} sessions ({})",
            case.describe(seed)
        );
    }
    let sizes = cases.iter().map(|c| c.servers.len());
    eprintln!(
        "placement checked against pylibmc (PLACEMENT_SEED={seed}): {} server lists ({} per \
         distribution, {}-{} servers), {} keys written by pylibmc and {} sessions written by the \
         store, each found by reading every server only where the other side expects it",
        cases.len(),
        PLACEMENT_LISTS,
        sizes.clone().min().unwrap(),
        sizes.max().unwrap(),
        compared.0,
        compared.1
    );
    // Stopping a memcached takes a moment: stop the 64 together.
    std::thread::scope(|scope| {
        for p in pool {
            scope.spawn(move || drop(p));
        }
    });
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
    // A server too light for one point of the ring holds no copy.
    let light = || MemcachedOptions::weighted([("h:1", 1), ("h:2", 1000), ("h:3", 1000)]);
    assert!(matches!(
        err(light().replicas(3)),
        MemcachedError::Replicas {
            replicas: 3,
            servers: 2
        }
    ));
    assert!(MemcachedStore::new(light().replicas(2), c()).is_ok());
    // Unweighted ketama ignores weights of 0 and 1: every server is on the ring.
    let unweighted = MemcachedOptions::weighted([("h:1", 0), ("h:2", 1), ("h:3", 1)])
        .distribution(Distribution::Ketama)
        .replicas(3);
    assert!(MemcachedStore::new(unweighted, c()).is_ok());
    assert!(matches!(
        err(MemcachedOptions::weighted([("h:1", 1), ("h:1", 2)])),
        MemcachedError::DuplicateServer { .. }
    ));
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
