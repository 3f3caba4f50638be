//! `RedisStore` against real Redis processes (tests/support/kv.rs): the conformance suite on a
//! standalone `redis-server`, the `PX` safety net, typed errors, `WAIT` refusing a write no
//! replica acknowledged, and a master + replica + three Sentinels where the master is killed
//! with SIGKILL: Sentinel promotes the replica, the store follows, and every acknowledged
//! session is still there.
//! Without `redis-server` the tests are skipped (printed), except with `CI=true`.
#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod conformance;
#[path = "support/kv.rs"]
mod kv;

use std::future::Future;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use session_store::{
    ManualClock, Record, RedisError, RedisOptions, RedisStore, SessionId, SessionStore, StoreError,
    Token,
};

/// The standalone server shared by the tests of this process (each store has its own key
/// prefix); stopped by its reaper when the process ends.
fn shared() -> Option<&'static kv::Proc> {
    static SERVER: OnceLock<Option<kv::Proc>> = OnceLock::new();
    SERVER.get_or_init(kv::redis_standalone).as_ref()
}

fn prefix() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "t{}-{}:",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn url(p: &kv::Proc) -> String {
    format!("redis://{}", p.addr())
}

fn store(p: &kv::Proc, opts: RedisOptions, clock: ManualClock) -> RedisStore<ManualClock> {
    RedisStore::standalone(&url(p), opts.key_prefix(prefix()), clock).unwrap()
}

conformance::store_conformance!(async |clock| {
    let Some(server) = shared() else {
        return;
    };
    store(server, RedisOptions::default(), clock)
});

async fn raw(p: &kv::Proc) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url(p))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

fn fresh_record(n: u64) -> Record {
    let mut r = Record::new(
        SessionId::random().unwrap(),
        conformance::T0,
        conformance::TTL,
    );
    r.insert("n", &n).unwrap();
    r
}

#[tokio::test]
async fn px_is_a_safety_net_behind_the_clock() {
    let Some(server) = shared() else {
        return;
    };
    let s = store(
        server,
        RedisOptions::default(),
        ManualClock::new(conformance::T0),
    );
    let mut r = fresh_record(1);
    s.create(&mut r).await.unwrap();
    let pttl: i64 = redis::cmd("PTTL")
        .arg(s.key_for(r.id()))
        .query_async(&mut raw(server).await)
        .await
        .unwrap();
    // 60 s session + 60 s grace.
    assert!((110_000..=120_000).contains(&pttl), "PTTL {pttl}");
}

#[tokio::test]
async fn foreign_data_is_a_typed_error() {
    let Some(server) = shared() else {
        return;
    };
    let s = store(
        server,
        RedisOptions::default(),
        ManualClock::new(conformance::T0),
    );
    let mut conn = raw(server).await;
    let r = fresh_record(1);
    let key = s.key_for(r.id());
    let t = Token::from(r.id());
    let () = redis::cmd("HSET")
        .arg(&key)
        .arg("v")
        .arg("1")
        .arg("e")
        .arg("9999999999")
        .arg("d")
        .arg("bad")
        .query_async(&mut conn)
        .await
        .map(|_: i64| ())
        .unwrap();
    match s.load(&t).await {
        Err(StoreError::Backend(e)) => assert!(
            matches!(
                e.downcast_ref::<RedisError>(),
                Some(RedisError::Corrupt(Some(_)))
            ),
            "{e:?}"
        ),
        other => panic!("expected Corrupt, got {other:?}"),
    }
    let () = redis::cmd("SET")
        .arg(&key)
        .arg("a string")
        .query_async(&mut conn)
        .await
        .unwrap();
    match s.load(&t).await {
        Err(StoreError::Backend(e)) => assert!(
            matches!(
                e.downcast_ref::<RedisError>(),
                Some(RedisError::Command { op: "load", .. })
            ),
            "{e:?}"
        ),
        other => panic!("expected a WRONGTYPE command error, got {other:?}"),
    }
}

#[tokio::test]
async fn wait_without_replicas_reports_not_durable() {
    let Some(server) = shared() else {
        return;
    };
    let opts = RedisOptions::default().wait_for_replicas(1, Duration::from_millis(200));
    let s = store(server, opts, ManualClock::new(conformance::T0));
    let mut r = fresh_record(1);
    match s.create(&mut r).await {
        Err(StoreError::Unavailable(e)) => assert!(
            matches!(
                e.downcast_ref::<RedisError>(),
                Some(RedisError::NotDurable {
                    acked: 0,
                    wanted: 1,
                    ..
                })
            ),
            "{e:?}"
        ),
        other => panic!("expected NotDurable, got {other:?}"),
    }
    assert_eq!(r.version(), 0, "record changed by a failed write");
}

#[tokio::test]
async fn unreachable_server_is_unavailable_and_bad_urls_are_config_errors() {
    let port = kv::refused_port();
    let s = RedisStore::standalone(
        &format!("redis://127.0.0.1:{port}"),
        RedisOptions::default(),
        ManualClock::new(conformance::T0),
    )
    .unwrap();
    match s.load(&Token::from(fresh_record(1).id())).await {
        Err(StoreError::Unavailable(e)) => assert!(
            matches!(
                e.downcast_ref::<RedisError>(),
                Some(RedisError::Connect { .. })
            ),
            "{e:?}"
        ),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(matches!(
        RedisStore::standalone("http://x", RedisOptions::default(), ManualClock::default()),
        Err(RedisError::Config(_))
    ));
    assert!(matches!(
        RedisStore::sentinel(&[], "m", RedisOptions::default(), ManualClock::default()),
        Err(RedisError::Config(_))
    ));
}

/// Polls `f` every 100 ms until it returns `Some`, for at most `limit`.
async fn eventually<T, F: Future<Output = Option<T>>>(
    what: &str,
    limit: Duration,
    mut f: impl FnMut() -> F,
) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn info_field(p: &kv::Proc, section: &str, field: &str) -> Option<String> {
    let mut c = redis::Client::open(url(p))
        .ok()?
        .get_multiplexed_async_connection()
        .await
        .ok()?;
    let info: String = redis::cmd("INFO")
        .arg(section)
        .query_async(&mut c)
        .await
        .ok()?;
    info.lines().find_map(|l| {
        l.strip_prefix(&format!("{field}:"))
            .map(|v| v.trim().to_owned())
    })
}

async fn sentinel_view(p: &kv::Proc, service: &str) -> Option<Vec<(String, String)>> {
    let mut c = redis::Client::open(url(p))
        .ok()?
        .get_multiplexed_async_connection()
        .await
        .ok()?;
    let flat: Vec<String> = redis::cmd("SENTINEL")
        .arg("master")
        .arg(service)
        .query_async(&mut c)
        .await
        .ok()?;
    Some(
        flat.chunks_exact(2)
            .map(|kv| (kv[0].clone(), kv[1].clone()))
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sentinel_failover_keeps_every_acknowledged_session() {
    const SERVICE: &str = "sessions";
    let Some(bin) = kv::require("redis-server", "redis-server") else {
        return;
    };
    let master = kv::retry_port(|p| kv::redis_on(&bin, p, &[]));
    let mport = master.port.to_string();
    let replica = kv::retry_port(|p| kv::redis_on(&bin, p, &["--replicaof", "127.0.0.1", &mport]));
    eventually("replica linked", Duration::from_secs(20), || async {
        (info_field(&replica, "replication", "master_link_status")
            .await
            .as_deref()
            == Some("up"))
        .then_some(())
    })
    .await;
    let sentinels: Vec<kv::Proc> = (0..3)
        .map(|_| kv::retry_port(|p| kv::sentinel_on(&bin, p, SERVICE, master.port)))
        .collect();
    // Every sentinel must know the replica and the two other sentinels before a failover can
    // be agreed on.
    for s in &sentinels {
        eventually(
            "sentinels discover each other",
            Duration::from_secs(30),
            || async {
                let view = sentinel_view(s, SERVICE).await?;
                let get = |k: &str| view.iter().find(|(f, _)| f == k).map(|(_, v)| v.clone());
                (get("num-slaves").as_deref() == Some("1")
                    && get("num-other-sentinels").as_deref() == Some("2"))
                .then_some(())
            },
        )
        .await;
    }
    let urls: Vec<String> = sentinels.iter().map(url).collect();
    let url_refs: Vec<&str> = urls.iter().map(String::as_str).collect();
    let clock = ManualClock::new(conformance::T0);
    let opts = RedisOptions::default()
        .wait_for_replicas(1, Duration::from_secs(1))
        .connect_timeout(Duration::from_millis(500));
    let store = RedisStore::sentinel(&url_refs, SERVICE, opts.clone(), clock.clone()).unwrap();

    // Durable writes: each create and compare-and-save acknowledged by the replica.
    let mut acked: Vec<(Token, u64)> = Vec::new();
    for n in 0..60 {
        let mut r = fresh_record(n);
        let t = store.create(&mut r).await.unwrap();
        r.insert("n", &(n + 1000)).unwrap();
        store.compare_and_save(&mut r).await.unwrap();
        acked.push((t, n + 1000));
    }
    assert_eq!(store.connected_to(), Some(master.addr()));

    master.kill9();
    let killed = Instant::now();
    // The store follows: loads fail until Sentinel promotes the replica, then work there.
    let probe = acked[0].0.clone();
    eventually(
        "store follows the promoted replica",
        Duration::from_secs(30),
        || async {
            match store.load(&probe).await {
                Ok(found) => {
                    assert!(
                        found.is_some(),
                        "acknowledged session missing after failover"
                    );
                    Some(())
                }
                Err(StoreError::Unavailable(_)) => None,
                Err(e) => panic!("{e:?}"),
            }
        },
    )
    .await;
    let took = killed.elapsed();
    assert_eq!(store.connected_to(), Some(replica.addr()));
    assert_eq!(
        info_field(&replica, "replication", "role").await.as_deref(),
        Some("master")
    );
    let _ = writeln_stderr(&format!(
        "store followed the failover {took:?} after SIGKILL"
    ));

    // Every acknowledged session survived, with its acknowledged data.
    let mut present = 0;
    for (t, want) in &acked {
        let r = store
            .load(t)
            .await
            .unwrap()
            .expect("acknowledged session lost");
        assert_eq!(r.get::<u64>("n").unwrap(), Some(*want));
        assert_eq!(r.version(), 2);
        present += 1;
    }
    assert_eq!(present, 60);

    // The new master has no replica: durable writes are refused as not durable (it did reach
    // the new master), plain writes succeed.
    match store.create(&mut fresh_record(99)).await {
        Err(StoreError::Unavailable(e)) => assert!(
            matches!(
                e.downcast_ref::<RedisError>(),
                Some(RedisError::NotDurable { acked: 0, .. })
            ),
            "{e:?}"
        ),
        other => panic!("expected NotDurable on a master without replicas, got {other:?}"),
    }
    let plain = RedisStore::sentinel(
        &url_refs,
        SERVICE,
        RedisOptions::default().key_prefix("p:"),
        clock,
    )
    .unwrap();
    let mut r = fresh_record(7);
    let t = plain.create(&mut r).await.unwrap();
    assert!(plain.load(&t).await.unwrap().is_some());
    drop(sentinels);
}

fn writeln_stderr(s: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    writeln!(std::io::stderr(), "{s}")
}
