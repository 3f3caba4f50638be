//! [`PostgresStore`]: sessions in a PostgreSQL table.

use sqlx::postgres::{PgPool, PgPoolOptions};

use super::{Placeholders, Queries, SqlError, sql_store};
use crate::clock::{Clock, SystemClock};

const SCHEMA: &[&str] = &[
    // Serialises concurrent `migrate()` calls until commit: two sessions racing on
    // `CREATE TABLE IF NOT EXISTS` can otherwise both try to create the table's row type and
    // one fails. The key is this crate's own constant (0x5e55_1011_5701_0001).
    "SELECT pg_advisory_xact_lock(6797356879245803521)",
    "CREATE TABLE IF NOT EXISTS sessions (\
        id BYTEA PRIMARY KEY, \
        data BYTEA NOT NULL, \
        created BIGINT NOT NULL, \
        expires BIGINT NOT NULL, \
        version BIGINT NOT NULL\
    )",
    "CREATE INDEX IF NOT EXISTS sessions_expires ON sessions (expires)",
];

/// Sessions in a PostgreSQL table (`sessions`, in the connection's `search_path`).
///
/// Every write is one statement with a row-level version check, so any number of servers
/// sharing the database never lose an update through `compare_and_save`. Call
/// [`migrate`](Self::migrate) once after connecting; servers starting together may all call it.
pub struct PostgresStore<C: Clock = SystemClock> {
    pool: PgPool,
    clock: C,
    q: Queries,
}

impl<C: Clock> PostgresStore<C> {
    /// Connects a pool of up to 10 connections to `url`
    /// (`postgres://user:password@host:port/database`), reading time from `clock`. Does not
    /// create the table: call [`migrate`](Self::migrate). Waits up to the pool's default
    /// acquire timeout (30 s) for the first connection; build the pool yourself and use
    /// [`from_pool`](Self::from_pool) to choose another.
    ///
    /// # Errors
    /// [`SqlError::Connect`] if the URL is malformed or the server refuses the connection.
    pub async fn connect(url: &str, clock: C) -> Result<Self, SqlError> {
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .connect(url)
            .await
            .map_err(SqlError::Connect)?;
        Ok(Self::from_pool(pool, clock))
    }

    /// A store on an existing pool (TLS, timeouts and pool size are the pool's business).
    #[must_use]
    pub fn from_pool(pool: PgPool, clock: C) -> Self {
        Self {
            pool,
            clock,
            q: Queries::new(SCHEMA, Placeholders::Dollar),
        }
    }
}

sql_store!(PostgresStore, sqlx::Postgres);
