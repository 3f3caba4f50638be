//! The tests every server-based SQL store shares (PostgreSQL, MariaDB), written once: the
//! conformance suite, two stores on one database racing version-checked increments, sweep and
//! migrate, concurrent migrations, a malformed URL and an unreachable server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

/// `server_store_tests!(Store, servers::fn, sqlx::...::PoolOptions, "scheme://user@")`.
macro_rules! server_store_tests {
    ($store:ident, $server:path, $pool:ty, $base:expr) => {
        async fn store_on(url: &str, clock: ManualClock) -> $store<ManualClock> {
            let store = $store::connect(url, clock).await.unwrap();
            store.migrate().await.unwrap();
            store
        }

        conformance::store_conformance!(async |clock| {
            let Some(server) = $server() else {
                return;
            };
            store_on(&server.fresh_database().await, clock).await
        });

        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn two_stores_on_one_database_lose_no_update() {
            let Some(server) = $server() else {
                return;
            };
            let url = server.fresh_database().await;
            let clock = ManualClock::new(conformance::T0);
            let a = Arc::new(store_on(&url, clock.clone()).await);
            let b = Arc::new(store_on(&url, clock.clone()).await);
            let mut r = conformance::record(1);
            r.insert("counter", &0_u64).unwrap();
            let token = a.create(&mut r).await.unwrap();
            assert_eq!(b.load(&token).await.unwrap().as_ref(), Some(&r));
            let mut tasks = Vec::new();
            for i in 0..6_u32 {
                let s = if i % 2 == 0 { a.clone() } else { b.clone() };
                let token = token.clone();
                tasks.push(tokio::spawn(async move {
                    for _ in 0..30 {
                        loop {
                            let mut rec = s.load(&token).await.unwrap().unwrap();
                            let c: u64 = rec.get("counter").unwrap().unwrap();
                            rec.insert("counter", &(c + 1)).unwrap();
                            tokio::task::yield_now().await;
                            match s.compare_and_save(&mut rec).await {
                                Ok(_) => break,
                                Err(StoreError::VersionMismatch { .. }) => {}
                                Err(e) => panic!("{e:?}"),
                            }
                        }
                    }
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
            let got = a.load(&token).await.unwrap().unwrap();
            assert_eq!(got.get::<u64>("counter").unwrap(), Some(180));
            assert_eq!(got.version(), 181);
        }

        #[tokio::test]
        async fn sweep_and_migrate_on_a_real_server() {
            let Some(server) = $server() else {
                return;
            };
            let url = server.fresh_database().await;
            let clock = ManualClock::new(conformance::T0);
            let s = store_on(&url, clock.clone()).await;
            s.migrate().await.unwrap();
            for n in 0..4 {
                let mut r = conformance::record(n);
                if n < 2 {
                    r.set_ttl(conformance::T0, conformance::TTL * 10);
                }
                s.create(&mut r).await.unwrap();
            }
            assert_eq!(s.sweep(conformance::T0).await.unwrap(), 0);
            let later = conformance::T0.saturating_add(conformance::TTL);
            assert_eq!(s.sweep(later).await.unwrap(), 2);
            let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sessions")
                .fetch_one(s.pool())
                .await
                .unwrap();
            assert_eq!(rows, 2);
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn concurrent_migrations_all_succeed() {
            let Some(server) = $server() else {
                return;
            };
            let url = server.fresh_database().await;
            let mut tasks = Vec::new();
            for _ in 0..6 {
                let url = url.clone();
                tasks.push(tokio::spawn(async move {
                    let s = $store::connect(&url, ManualClock::new(conformance::T0))
                        .await
                        .unwrap();
                    s.migrate().await
                }));
            }
            for t in tasks {
                t.await.unwrap().unwrap();
            }
        }

        #[tokio::test]
        async fn without_migrate_the_error_names_the_missing_table() {
            let Some(server) = $server() else {
                return;
            };
            let url = server.fresh_database().await;
            let s = $store::connect(&url, ManualClock::new(conformance::T0))
                .await
                .unwrap();
            let token = session_store::Token::from(conformance::record(1).id());
            match s.load(&token).await {
                Err(StoreError::Backend(e)) => {
                    assert!(
                        matches!(
                            e.downcast_ref::<session_store::SqlError>(),
                            Some(session_store::SqlError::MissingTable { op: "load", .. })
                        ),
                        "{e:?}"
                    );
                    let text = session_store::error_chain(&*e);
                    assert!(
                        text.starts_with("table sessions missing: call migrate()"),
                        "{text}"
                    );
                }
                other => panic!("expected MissingTable, got {other:?}"),
            }
        }

        #[tokio::test]
        async fn malformed_url_is_a_connect_error() {
            match $store::connect(&format!("{}[::1", $base), ManualClock::new(conformance::T0))
                .await
            {
                Err(session_store::SqlError::Connect(_)) => {}
                other => panic!("expected Connect, got {other:?}"),
            }
        }

        #[tokio::test]
        async fn unreachable_server_is_unavailable_not_a_backend_bug() {
            // A port nobody listens on (bound, then released), and a pool that gives up quickly.
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let pool = <$pool>::new()
                .acquire_timeout(std::time::Duration::from_millis(300))
                .connect_lazy(&format!("{}127.0.0.1:{port}/x", $base))
                .unwrap();
            let s = $store::from_pool(pool, ManualClock::new(conformance::T0));
            let token = session_store::Token::from(conformance::record(1).id());
            match s.load(&token).await {
                Err(StoreError::Unavailable(e)) => assert!(
                    matches!(
                        e.downcast_ref::<session_store::SqlError>(),
                        Some(session_store::SqlError::Query { op: "load", .. })
                    ),
                    "{e:?}"
                ),
                other => panic!("expected Unavailable, got {other:?}"),
            }
        }
    };
}

pub(crate) use server_store_tests;
