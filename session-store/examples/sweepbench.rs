//! Sweep throughput of the SQL stores: rows of expired sessions deleted per second by one
//! `sweep` (what each tick of `spawn_sweeper` runs), for SQLite and, with `--servers`, a
//! throw-away PostgreSQL and MariaDB (the SQL tests' `tests/support/servers.rs`).
//!
//! ```text
//! cargo run --release -p session-store --example sweepbench --all-features -- [--rows N] [--servers]
//! ```
//!
//! Each run fills a fresh `sessions` table with N (default 100,000) sessions of ~100 bytes that
//! are expired at the sweep's "now" plus N/10 live ones (which must survive), then times one
//! `sweep` and then the sweeper task (`spawn_sweeper`) on a second fill until the table holds
//! only the live rows.
#[cfg(all(feature = "postgres", feature = "mysql"))]
#[allow(clippy::duplicate_mod)]
#[path = "../tests/support/servers.rs"]
mod servers;

use std::error::Error;
use std::sync::Arc;
use std::time::{Duration, Instant};

use session_store::{ManualClock, Record, SessionId, SessionStore, SqliteStore, UnixTime};

type BoxResult<T> = Result<T, Box<dyn Error + Send + Sync>>;

const T0: UnixTime = UnixTime::from_secs(1_700_000_000);

/// What the bench needs of a SQL store.
trait Sweepable: SessionStore + Sized {
    fn sweep_at(
        &self,
        now: UnixTime,
    ) -> impl Future<Output = Result<u64, session_store::StoreError>> + Send;
    fn sweeper(self: &Arc<Self>, period: Duration) -> tokio::task::JoinHandle<()>;
    fn count(&self) -> impl Future<Output = BoxResult<i64>> + Send;
}

macro_rules! sweepable {
    ($t:ty) => {
        impl Sweepable for $t {
            fn sweep_at(
                &self,
                now: UnixTime,
            ) -> impl Future<Output = Result<u64, session_store::StoreError>> + Send {
                self.sweep(now)
            }
            fn sweeper(self: &Arc<Self>, period: Duration) -> tokio::task::JoinHandle<()> {
                self.spawn_sweeper(period)
            }
            async fn count(&self) -> BoxResult<i64> {
                Ok(sqlx::query_scalar("SELECT COUNT(*) FROM sessions")
                    .fetch_one(self.pool())
                    .await?)
            }
        }
    };
}
sweepable!(SqliteStore<ManualClock>);
#[cfg(feature = "postgres")]
sweepable!(session_store::PostgresStore<ManualClock>);
#[cfg(feature = "mysql")]
sweepable!(session_store::MysqlStore<ManualClock>);

/// `rows` expired and `rows / 10` live sessions, written by 16 tasks.
async fn fill<S: Sweepable>(store: &Arc<S>, rows: usize) -> BoxResult<()> {
    let mut tasks = Vec::new();
    for t in 0..16 {
        let store = Arc::clone(store);
        tasks.push(tokio::spawn(async move {
            let mut i = t;
            while i < rows + rows / 10 {
                let ttl = if i < rows {
                    Duration::from_secs(60)
                } else {
                    Duration::from_secs(86_400)
                };
                let mut rec = Record::new(SessionId::random()?, T0, ttl);
                rec.insert("user", &format!("user-{i}"))?;
                rec.insert("roles", &["reader", "writer"])?;
                store.create(&mut rec).await?;
                i += 16;
            }
            Ok::<_, Box<dyn Error + Send + Sync>>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

async fn run<S: Sweepable>(
    name: &str,
    store: S,
    clock: &ManualClock,
    rows: usize,
) -> BoxResult<()> {
    let store = Arc::new(store);
    fill(&store, rows).await?;
    let later = T0.saturating_add(Duration::from_secs(3600));
    let start = Instant::now();
    let deleted = store.sweep_at(later).await?;
    let one = start.elapsed();
    if deleted != rows as u64 || store.count().await? != (rows / 10) as i64 {
        return Err(format!("{name}: sweep deleted {deleted} of {rows}").into());
    }
    // The sweeper task on a second fill (clock moved on so the new rows expire too).
    clock.set(T0);
    fill(&store, rows).await?;
    clock.set(later);
    let start = Instant::now();
    let task = store.sweeper(Duration::from_millis(50));
    while store.count().await? > (rows / 10 + rows / 10) as i64 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let by_task = start.elapsed();
    task.abort();
    println!(
        "| {name} | {rows} | {:.0} ms | {:.0} rows/s | {:.0} ms |",
        one.as_secs_f64() * 1e3,
        rows as f64 / one.as_secs_f64(),
        by_task.as_secs_f64() * 1e3
    );
    Ok(())
}

fn main() -> BoxResult<()> {
    let mut rows = 100_000;
    let mut servers = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--rows" => rows = args.next().ok_or("--rows needs a number")?.parse()?,
            "--servers" => servers = true,
            other => return Err(format!("unknown argument {other:?}").into()),
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        println!("| backend | expired rows | one sweep | rate | sweeper task, 50 ms period |");
        println!("|---|---|---|---|---|");
        let dir = tempfile::tempdir()?;
        let clock = ManualClock::new(T0);
        let s = SqliteStore::open(dir.path().join("sessions.db"), clock.clone()).await?;
        s.migrate().await?;
        run("SQLite (WAL, file)", s, &clock, rows).await?;
        if servers {
            every_server(&clock, rows).await?;
        }
        Ok(())
    })
}

#[cfg(all(feature = "postgres", feature = "mysql"))]
async fn every_server(clock: &ManualClock, rows: usize) -> BoxResult<()> {
    let pg = servers::postgres().ok_or("PostgreSQL is not installed")?;
    let s =
        session_store::PostgresStore::connect(&pg.fresh_database().await, clock.clone()).await?;
    s.migrate().await?;
    clock.set(T0);
    run("PostgreSQL", s, clock, rows).await?;
    let maria = servers::mariadb().ok_or("MariaDB is not installed")?;
    let s =
        session_store::MysqlStore::connect(&maria.fresh_database().await, clock.clone()).await?;
    s.migrate().await?;
    clock.set(T0);
    run("MariaDB (InnoDB)", s, clock, rows).await?;
    Ok(())
}

#[cfg(not(all(feature = "postgres", feature = "mysql")))]
async fn every_server(_: &ManualClock, _: usize) -> BoxResult<()> {
    Err("--servers needs the postgres and mysql features (--all-features)".into())
}
