//! [`SqliteStore`]: sessions in one SQLite file that several processes can share.

use std::path::Path;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::{Placeholders, Queries, SqlError, sql_store};
use crate::clock::{Clock, SystemClock};

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS sessions (\
        id BLOB PRIMARY KEY NOT NULL, \
        data BLOB NOT NULL, \
        created INTEGER NOT NULL, \
        expires INTEGER NOT NULL, \
        version INTEGER NOT NULL\
    ) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS sessions_expires ON sessions (expires)",
];

/// How long a connection waits for another writer's lock before failing with "database is
/// locked" (SQLite's `busy_timeout`).
pub const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Sessions in a SQLite file: the embedded choice when a few servers on one host (or on a
/// shared, lock-honouring filesystem) must see the same sessions, as in the two-server failover
/// demo.
///
/// [`open`](Self::open) turns on write-ahead logging (readers never block the writer, and
/// several processes can use the file at once), `synchronous = NORMAL` (a power loss may lose
/// the last few commits but never corrupts the file) and a busy timeout, so a writer waits for
/// another process's write instead of failing. Writes are single statements with row-level
/// version checks, so two processes doing `compare_and_save` on one session never lose an
/// update. Call [`migrate`](Self::migrate) once after opening.
///
/// Use a real file: `:memory:` would give every pooled connection its own empty database.
///
/// ```
/// use std::time::Duration;
/// use session_store::{Clock, Record, SessionId, SessionStore, SqliteStore, SystemClock};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("sessions.db");
/// // Two servers, one file.
/// let a = SqliteStore::open(&path, SystemClock::default()).await?;
/// let b = SqliteStore::open(&path, SystemClock::default()).await?;
/// a.migrate().await?;
/// b.migrate().await?;
///
/// let mut rec = Record::new(SessionId::random()?, a.clock().now(), Duration::from_secs(1800));
/// rec.insert("user", "alice")?;
/// let token = a.create(&mut rec).await?;
/// let seen = b.load(&token).await?.ok_or("b does not see a's session")?;
/// assert_eq!(seen.get::<String>("user")?.as_deref(), Some("alice"));
/// # Ok(())
/// # }
/// ```
pub struct SqliteStore<C: Clock = SystemClock> {
    pool: SqlitePool,
    clock: C,
    q: Queries,
}

impl<C: Clock> SqliteStore<C> {
    /// The connect options [`open`](Self::open) uses: create the file if missing, WAL,
    /// `synchronous = NORMAL`, [`SQLITE_BUSY_TIMEOUT`]. Adjust them and pass a pool built
    /// from them to [`from_pool`](Self::from_pool).
    #[must_use]
    pub fn connect_options(path: impl AsRef<Path>) -> SqliteConnectOptions {
        SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(SQLITE_BUSY_TIMEOUT)
    }

    /// Opens (creating if missing) the database file at `path` with
    /// [`connect_options`](Self::connect_options) and a pool of up to 8 connections, reading
    /// time from `clock`. Does not create the table: call [`migrate`](Self::migrate).
    ///
    /// # Errors
    /// [`SqlError::Connect`] if the file cannot be opened or created, or is not a database.
    pub async fn open(path: impl AsRef<Path>, clock: C) -> Result<Self, SqlError> {
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(Self::connect_options(path))
            .await
            .map_err(SqlError::Connect)?;
        Ok(Self::from_pool(pool, clock))
    }

    /// A store on an existing pool. The pool's connections should use WAL and a busy
    /// timeout (see [`connect_options`](Self::connect_options)) if other processes share the
    /// file.
    #[must_use]
    pub fn from_pool(pool: SqlitePool, clock: C) -> Self {
        Self {
            pool,
            clock,
            q: Queries::new(SCHEMA, Placeholders::Question),
        }
    }
}

sql_store!(SqliteStore, sqlx::Sqlite);
