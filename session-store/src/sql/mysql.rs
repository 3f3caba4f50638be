//! [`MysqlStore`]: sessions in a MariaDB or MySQL table.

use sqlx::mysql::{MySqlPool, MySqlPoolOptions};

use super::{Placeholders, Queries, SqlError, sql_store};
use crate::clock::{Clock, SystemClock};

const SCHEMA: &[&str] = &["CREATE TABLE IF NOT EXISTS sessions (\
        id BINARY(16) NOT NULL PRIMARY KEY, \
        data MEDIUMBLOB NOT NULL, \
        created BIGINT NOT NULL, \
        expires BIGINT NOT NULL, \
        version BIGINT NOT NULL, \
        INDEX sessions_expires (expires)\
    ) ENGINE = InnoDB"];

/// Sessions in a MariaDB (or MySQL) InnoDB table, `sessions`.
///
/// Every write is one statement with a row-level version check, so any number of servers
/// sharing the database never lose an update through `compare_and_save`. The driver asks for
/// "found rows", so a row that matched counts as affected even when no value changed. `data`
/// is a `MEDIUMBLOB` (16 MiB); the server's `max_allowed_packet` bounds it further. Call
/// [`migrate`](Self::migrate) once after connecting.
pub struct MysqlStore<C: Clock = SystemClock> {
    pool: MySqlPool,
    clock: C,
    q: Queries,
}

impl<C: Clock> MysqlStore<C> {
    /// Connects a pool of up to 10 connections to `url`
    /// (`mysql://user:password@host:port/database`), reading time from `clock`. Does not
    /// create the table: call [`migrate`](Self::migrate). Waits up to the pool's default
    /// acquire timeout (30 s) for the first connection; build the pool yourself and use
    /// [`from_pool`](Self::from_pool) to choose another.
    ///
    /// # Errors
    /// [`SqlError::Connect`] if the URL is malformed or the server refuses the connection.
    pub async fn connect(url: &str, clock: C) -> Result<Self, SqlError> {
        let pool = MySqlPoolOptions::new()
            .max_connections(10)
            .connect(url)
            .await
            .map_err(SqlError::Connect)?;
        Ok(Self::from_pool(pool, clock))
    }

    /// A store on an existing pool (TLS, timeouts and pool size are the pool's business).
    #[must_use]
    pub fn from_pool(pool: MySqlPool, clock: C) -> Self {
        Self {
            pool,
            clock,
            q: Queries::new(SCHEMA, Placeholders::Question),
        }
    }
}

sql_store!(MysqlStore, sqlx::MySql);
