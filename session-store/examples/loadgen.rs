//! Load generator: throughput and p50/p99 latency of `load` and `save` of a 1 KiB session on
//! one session-store backend, at concurrency 1 and 64.
//!
//! ```text
//! cargo run --release -p session-store --example loadgen --all-features -- [OPTIONS] BACKEND...
//! cargo run --release -p session-store --example loadgen --all-features -- --compare [OPTIONS]
//! ```
//!
//! BACKEND is `memory`, `sqlite:PATH`, `redis://HOST:PORT[/DB]`, `memcached://HOST:PORT[,HOST:PORT…]`,
//! `postgres://…` or `mysql://…` (each needs its cargo feature). Options: `--ops N` operations
//! per phase (default 20000), `--concurrency 1,64`, `--sessions N` distinct sessions (default
//! 1000).
//!
//! `--compare` starts a throw-away `redis-server` and `memcached` on loopback ports (the test
//! suite's `tests/support/kv.rs`: stopped by PID when this program ends, however it ends) and,
//! for each concurrency, runs `redis-benchmark -t set,get -d 1024 -P 1` and `memcslap --test
//! set|get` against them, then this tool against the same servers, and prints one table.
//!
//! `--servers` starts a throw-away PostgreSQL and MariaDB (`initdb` / `mariadb-install-db` in
//! a temp dir, loopback ports; the SQL tests' `tests/support/servers.rs`), a Redis and a
//! memcached, and runs this tool on every backend: memory, an SQLite file, PostgreSQL,
//! MariaDB, Redis, memcached.
//!
//! One phase is `--ops` operations spread over `concurrency` tokio tasks on a 2-worker
//! runtime: `save` (unconditional write of a task's own sessions, version bumped each time) or
//! `load` (of the sessions saved before, every load must find its session). Latency is measured
//! per operation, from the call to the completed future.
#[path = "../tests/support/kv.rs"]
mod kv;
// kv.rs and servers.rs each include tests/support/reaper.rs as their own private module.
#[cfg(all(feature = "postgres", feature = "mysql"))]
#[allow(clippy::duplicate_mod)]
#[path = "../tests/support/servers.rs"]
mod servers;

use std::error::Error;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use session_store::{Clock, Record, SessionId, SessionStore, SystemClock, Token, UnixTime};

type BoxResult<T> = Result<T, Box<dyn Error + Send + Sync>>;

/// Command-line settings.
#[derive(Clone, Debug)]
struct Opts {
    ops: usize,
    concurrency: Vec<usize>,
    sessions: usize,
    compare: bool,
    servers: bool,
    backends: Vec<String>,
}

fn parse_args() -> BoxResult<Opts> {
    let mut o = Opts {
        ops: 20_000,
        concurrency: vec![1, 64],
        sessions: 1000,
        compare: false,
        servers: false,
        backends: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--ops" => o.ops = args.next().ok_or("--ops needs a number")?.parse()?,
            "--sessions" => o.sessions = args.next().ok_or("--sessions needs a number")?.parse()?,
            "--concurrency" => {
                o.concurrency = args
                    .next()
                    .ok_or("--concurrency needs a list")?
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<_, _>>()?;
            }
            "--compare" => o.compare = true,
            "--servers" => o.servers = true,
            "-h" | "--help" => {
                println!(
                    "loadgen [--ops N] [--concurrency 1,64] [--sessions N] (--compare | --servers | BACKEND...)"
                );
                std::process::exit(0);
            }
            _ if a.starts_with("--") => return Err(format!("unknown option {a}").into()),
            _ => o.backends.push(a),
        }
    }
    if o.ops == 0 || o.sessions == 0 || o.concurrency.contains(&0) {
        return Err("--ops, --sessions and --concurrency must be positive".into());
    }
    if !o.compare && !o.servers && o.backends.is_empty() {
        return Err("name a BACKEND or pass --compare or --servers (see --help)".into());
    }
    Ok(o)
}

/// One measured phase.
#[derive(Clone, Debug)]
struct Row {
    tool: String,
    target: String,
    op: &'static str,
    concurrency: usize,
    ops_per_sec: f64,
    p50_us: Option<f64>,
    p99_us: Option<f64>,
}

impl Row {
    fn print_header() {
        println!("| tool | target | op | conc. | ops/s | p50 µs | p99 µs |");
        println!("|---|---|---|---:|---:|---:|---:|");
    }

    fn print(&self) {
        let us = |v: Option<f64>| {
            v.map_or_else(
                || "–".to_owned(),
                |v| {
                    if v < 10.0 {
                        format!("{v:.1}")
                    } else {
                        format!("{v:.0}")
                    }
                },
            )
        };
        println!(
            "| {} | {} | {} | {} | {:.0} | {} | {} |",
            self.tool,
            self.target,
            self.op,
            self.concurrency,
            self.ops_per_sec,
            us(self.p50_us),
            us(self.p99_us)
        );
    }
}

/// A session whose binary encoding is 1,024 bytes.
fn session_1k(i: usize, now: UnixTime) -> BoxResult<Record> {
    let mut r = Record::new(SessionId::random()?, now, Duration::from_secs(3600));
    r.insert("user", &format!("user{i}@example.com"))?;
    r.insert("roles", &["admin", "ops"])?;
    r.insert("blob", "")?;
    let pad = 1024_usize.saturating_sub(session_store::codec::encoded_len(&r)?);
    r.insert("blob", &"x".repeat(pad))?;
    Ok(r)
}

fn percentile(sorted: &[u64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(idx).map(|&ns| ns as f64 / 1000.0)
}

/// Runs the save and load phases on `store` at each concurrency.
async fn run_store<S: SessionStore>(store: Arc<S>, name: &str, opts: &Opts) -> BoxResult<Vec<Row>> {
    let now = SystemClock::default().now();
    let mut records = Vec::with_capacity(opts.sessions);
    let mut tokens = Vec::with_capacity(opts.sessions);
    for i in 0..opts.sessions {
        let mut r = session_1k(i, now)?;
        tokens.push(store.create(&mut r).await?);
        records.push(r);
    }
    let tokens: Arc<[Token]> = tokens.into();
    let mut rows = Vec::new();
    for &c in &opts.concurrency {
        for op in ["save", "load"] {
            let per_task = opts.ops.div_ceil(c);
            let start = Instant::now();
            let mut handles = Vec::with_capacity(c);
            for t in 0..c {
                let store = Arc::clone(&store);
                let tokens = Arc::clone(&tokens);
                // Task t owns sessions t, t + c, t + 2c, …: no two tasks write one session.
                let mut mine: Vec<Record> = records.iter().skip(t).step_by(c).cloned().collect();
                handles.push(tokio::spawn(async move {
                    let mut lat = Vec::with_capacity(per_task);
                    let mut misses = 0_usize;
                    for k in 0..per_task {
                        let t0 = Instant::now();
                        if op == "save" {
                            let n = mine.len().max(1);
                            if let Some(r) = mine.get_mut(k % n) {
                                store.save(r).await?;
                            }
                        } else {
                            let i = (t + k * c) % tokens.len();
                            if let Some(tok) = tokens.get(i)
                                && store.load(tok).await?.is_none()
                            {
                                misses += 1;
                            }
                        }
                        lat.push(u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX));
                    }
                    Ok::<_, Box<dyn Error + Send + Sync>>((lat, misses))
                }));
            }
            let mut all = Vec::with_capacity(per_task * c);
            let mut misses = 0;
            for h in handles {
                let (lat, m) = h.await??;
                all.extend(lat);
                misses += m;
            }
            if misses > 0 {
                eprintln!("warning: {name}: {misses} loads found no session (evicted?)");
            }
            let secs = start.elapsed().as_secs_f64();
            all.sort_unstable();
            rows.push(Row {
                tool: "loadgen".into(),
                target: name.into(),
                op,
                concurrency: c,
                ops_per_sec: all.len() as f64 / secs,
                p50_us: percentile(&all, 0.50),
                p99_us: percentile(&all, 0.99),
            });
            if let Some(last) = rows.last() {
                last.print();
            }
        }
    }
    Ok(rows)
}

async fn run_backend(url: &str, opts: &Opts) -> BoxResult<Vec<Row>> {
    if url == "memory" {
        #[cfg(feature = "memory")]
        {
            let store = Arc::new(session_store::MemoryStore::new(10_000_000));
            return run_store(store, url, opts).await;
        }
    }
    if let Some(path) = url.strip_prefix("sqlite:") {
        #[cfg(feature = "sqlite")]
        {
            let store = session_store::SqliteStore::open(path, SystemClock::default()).await?;
            store.migrate().await?;
            return run_store(Arc::new(store), url, opts).await;
        }
        #[cfg(not(feature = "sqlite"))]
        let _ = path;
    }
    if url.starts_with("redis://") {
        #[cfg(feature = "redis")]
        {
            let store = session_store::RedisStore::standalone(
                url,
                session_store::RedisOptions::default(),
                SystemClock::default(),
            )?;
            return run_store(Arc::new(store), url, opts).await;
        }
    }
    if let Some(servers) = url.strip_prefix("memcached://") {
        #[cfg(feature = "memcached")]
        {
            let opts_mc = session_store::MemcachedOptions::new(servers.split(','));
            let store = session_store::MemcachedStore::new(opts_mc, SystemClock::default())?;
            return run_store(Arc::new(store), url, opts).await;
        }
        #[cfg(not(feature = "memcached"))]
        let _ = servers;
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        #[cfg(feature = "postgres")]
        {
            let store = session_store::PostgresStore::connect(url, SystemClock::default()).await?;
            store.migrate().await?;
            return run_store(Arc::new(store), url, opts).await;
        }
    }
    if url.starts_with("mysql://") || url.starts_with("mariadb://") {
        #[cfg(feature = "mysql")]
        {
            let store = session_store::MysqlStore::connect(url, SystemClock::default()).await?;
            store.migrate().await?;
            return run_store(Arc::new(store), url, opts).await;
        }
    }
    Err(format!("unknown backend {url:?}, or its cargo feature is off").into())
}

/// `redis-benchmark` SET and GET with the same payload size, concurrency and operation count,
/// no pipelining, keys spread over `sessions` names.
fn redis_benchmark(port: u16, c: usize, opts: &Opts) -> BoxResult<Vec<Row>> {
    let out = Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(["-t", "set,get", "-d", "1024", "-P", "1", "--csv"])
        .args(["-c", &c.to_string(), "-n", &opts.ops.to_string()])
        .args(["-r", &opts.sessions.to_string()])
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "redis-benchmark failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&redis_benchmark_save_script(port, c, opts)?);
    let mut rows = Vec::new();
    // "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
    for line in text.lines() {
        let f: Vec<&str> = line.split(',').map(|s| s.trim_matches('"')).collect();
        let (Some(&test), Some(rps), Some(p50), Some(p99)) =
            (f.first(), f.get(1), f.get(4), f.get(6))
        else {
            continue;
        };
        let op = match test {
            "SET" => "save (SET)",
            "GET" => "load (GET)",
            t if t.starts_with("EVALSHA") => "save (EVALSHA of the store's save script)",
            _ => continue,
        };
        let ms = |s: &str| s.parse::<f64>().ok().map(|v| v * 1000.0);
        rows.push(Row {
            tool: "redis-benchmark".into(),
            target: "redis".into(),
            op,
            concurrency: c,
            ops_per_sec: rps.parse()?,
            p50_us: ms(p50),
            p99_us: ms(p99),
        });
    }
    Ok(rows)
}

/// `redis-benchmark` running the store's own `save` script (`EVALSHA`, 1,024-byte data, keys
/// spread like the SET run): the same server-side work as `RedisStore::save`, so the ratio to
/// it measures the client alone. Returns redis-benchmark's CSV lines.
fn redis_benchmark_save_script(port: u16, c: usize, opts: &Opts) -> BoxResult<String> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/0"))?;
    let mut conn = client.get_connection()?;
    let sha: String = redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg(session_store::redis::SAVE_SCRIPT)
        .query(&mut conn)?;
    let data = "x".repeat(1024);
    // An expiry far ahead (2096), so no run sees its sessions expire.
    let expires = "4000000000";
    let out = Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "--csv"])
        .args(["-P", "1", "-c", &c.to_string(), "-n", &opts.ops.to_string()])
        .args(["-r", &opts.sessions.to_string()])
        .args([
            "EVALSHA",
            &sha,
            "1",
            "bench:__rand_int__",
            "0",
            &data,
            expires,
        ])
        .arg("3600000")
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "redis-benchmark EVALSHA failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `memcslap --test set|get` with `c` threads of `ops / c` operations each. It prints only the
/// elapsed time, so no percentiles; its values are its own (random sizes, not 1 KiB).
fn memcslap(addr: &str, c: usize, opts: &Opts) -> BoxResult<Vec<Row>> {
    let mut rows = Vec::new();
    for (test, op) in [("set", "save (set)"), ("get", "load (get)")] {
        let out = Command::new("memcslap")
            .arg(format!("--servers={addr}"))
            .arg(format!("--test={test}"))
            .arg(format!("--concurrency={c}"))
            .arg(format!("--execute-number={}", opts.ops.div_ceil(c)))
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        // "Time to get   20000 keys by   64 threads:   0.412 seconds."
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("Time to {test} ")) && l.contains("threads"))
            .ok_or_else(|| format!("memcslap printed no timing line:\n{text}"))?;
        let words: Vec<&str> = line.split_whitespace().collect();
        let keys: f64 = words.get(3).ok_or("memcslap: no key count")?.parse()?;
        let secs: f64 = words
            .iter()
            .rev()
            .nth(1)
            .ok_or("memcslap: no seconds")?
            .parse()?;
        rows.push(Row {
            tool: "memcslap".into(),
            target: "memcached".into(),
            op,
            concurrency: c,
            ops_per_sec: keys / secs.max(1e-9),
            p50_us: None,
            p99_us: None,
        });
    }
    Ok(rows)
}

async fn compare(opts: &Opts) -> BoxResult<Vec<Row>> {
    let redis = kv::redis_standalone().ok_or("no redis-server")?;
    let mc = kv::memcached_cluster(1)
        .and_then(|mut v| v.pop())
        .ok_or("no memcached")?;
    eprintln!(
        "redis-server pid {} on {}, memcached pid {} on {}",
        redis.pid,
        redis.addr(),
        mc.pid,
        mc.addr()
    );
    let mut rows = Vec::new();
    Row::print_header();
    for &c in &opts.concurrency {
        let one = Opts {
            concurrency: vec![c],
            ..opts.clone()
        };
        // This tool first, then the other: memcslap fills memcached (16 MB) with its own
        // items, which would evict sessions written before it.
        rows.extend(run_backend(&format!("redis://{}/0", redis.addr()), &one).await?);
        for r in redis_benchmark(redis.port, c, opts)? {
            r.print();
            rows.push(r);
        }
        rows.extend(run_backend(&format!("memcached://{}", mc.addr()), &one).await?);
        for r in memcslap(&mc.addr(), c, opts)? {
            r.print();
            rows.push(r);
        }
    }
    println!();
    println!("| target | op (the tool's) | conc. | loadgen / tool |");
    println!("|---|---|---:|---:|");
    for r in rows.iter().filter(|r| r.tool != "loadgen") {
        let ours = rows.iter().find(|o| {
            o.tool == "loadgen"
                && o.concurrency == r.concurrency
                && o.target.starts_with(&r.target)
                && r.op.starts_with(o.op)
        });
        if let Some(o) = ours {
            println!(
                "| {} | {} | {} | {:.0} % |",
                r.target,
                r.op,
                r.concurrency,
                100.0 * o.ops_per_sec / r.ops_per_sec
            );
        }
    }
    // Dropping the guards stops both servers by PID.
    drop(redis);
    drop(mc);
    Ok(rows)
}

/// Every backend on throw-away servers (`--servers`).
#[cfg(all(feature = "postgres", feature = "mysql", feature = "sqlite"))]
async fn every_backend(opts: &Opts) -> BoxResult<()> {
    let pg = servers::postgres().ok_or("PostgreSQL is not installed")?;
    let maria = servers::mariadb().ok_or("MariaDB is not installed")?;
    let redis = kv::redis_standalone().ok_or("no redis-server")?;
    let mc = kv::memcached_cluster(1)
        .and_then(|mut v| v.pop())
        .ok_or("no memcached")?;
    let dir = kv::temp_dir("loadgen-sqlite");
    let urls = [
        "memory".to_owned(),
        format!("sqlite:{}", dir.join("sessions.db").display()),
        pg.fresh_database().await,
        maria.fresh_database().await,
        format!("redis://{}/0", redis.addr()),
        format!("memcached://{}", mc.addr()),
    ];
    Row::print_header();
    for url in &urls {
        run_backend(url, opts).await?;
    }
    drop(redis);
    drop(mc);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[cfg(not(all(feature = "postgres", feature = "mysql", feature = "sqlite")))]
async fn every_backend(_: &Opts) -> BoxResult<()> {
    Err("--servers needs the sqlite, postgres and mysql features (--all-features)".into())
}

fn main() -> BoxResult<()> {
    let opts = parse_args()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        if opts.compare {
            compare(&opts).await?;
        }
        if opts.servers {
            every_backend(&opts).await?;
        }
        if !opts.backends.is_empty() {
            Row::print_header();
        }
        for b in &opts.backends {
            run_backend(b, &opts).await?;
        }
        Ok(())
    })
}
