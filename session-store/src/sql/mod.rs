//! SQL backends: [`SqliteStore`] (feature `sqlite`), [`PostgresStore`] (feature `postgres`)
//! and [`MysqlStore`] (feature `mysql`, for MariaDB and MySQL), all on [`sqlx`].
//!
//! Every backend keeps one table, `sessions`:
//!
//! | column | type | meaning |
//! |---|---|---|
//! | `id` | 16 bytes (`BLOB` / `BYTEA` / `BINARY(16)`), primary key | the [`SessionId`] bits |
//! | `data` | bytes | the record in the crate's [`codec`] encoding |
//! | `created` | 64-bit integer | Unix seconds |
//! | `expires` | 64-bit integer, indexed | Unix seconds; the row is dead from this instant on |
//! | `version` | 64-bit integer | the compare-and-save version |
//!
//! `migrate()` creates the table and the index on `expires` if they are missing (PostgreSQL
//! serialises concurrent migrations with a transaction-scoped advisory lock). Every query is
//! parameterised, and every decision about expiry compares `expires` with the store's
//! [`Clock`](crate::Clock) reading, passed in as a parameter, never with the database's `now()`:
//! a [`ManualClock`](crate::ManualClock) drives a real server in the tests, and servers whose
//! clocks disagree with the database host still agree with each other's application clocks.
//!
//! How each operation maps to SQL:
//!
//! * `create`: a plain `INSERT`; a primary-key violation means the id is taken. If the row
//!   holding it has expired, it is deleted (`DELETE … WHERE id = ? AND expires <= now`) and the
//!   insert retried; otherwise a fresh id is drawn. A live session is never overwritten.
//! * `compare_and_save`: `UPDATE … WHERE id = ? AND version = ? AND expires > now`; one row
//!   affected is success, none is [`StoreError::VersionMismatch`](crate::StoreError).
//! * `save`: reads the stored `(version, expires)` and writes with the same row-level check on
//!   both (or inserts if there is no row), retrying if another writer got in between; so it
//!   stores `max(stored, record) + 1` without a read-modify-write race, using no
//!   dialect-specific upsert.
//! * `touch`: `UPDATE sessions SET expires = ? WHERE id = ? AND expires > now`.
//! * `sweep(now)`: `DELETE FROM sessions WHERE expires <= now`, using the index.

use crate::clock::UnixTime;
use crate::{Record, SessionId, StoreError, codec};

#[cfg(feature = "mysql")]
mod mysql;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;

#[cfg(feature = "mysql")]
pub use mysql::MysqlStore;
#[cfg(feature = "postgres")]
pub use postgres::PostgresStore;
#[cfg(feature = "sqlite")]
pub use sqlite::{SQLITE_BUSY_TIMEOUT, SqliteStore};

/// The `sqlx` this crate was built with, for building pools and connect options of the same
/// version to hand to `from_pool`.
pub use sqlx;

/// How many ids `create` tries before giving up with [`StoreError::Conflict`].
const CREATE_RETRIES: usize = 4;
/// How many read-then-write rounds `save` makes before reporting [`SqlError::SaveContention`].
const SAVE_RETRIES: u32 = 64;

/// Why a SQL store operation failed: the driver error is kept as the source.
///
/// Session operations return [`StoreError`]; it wraps one of these as
/// [`StoreError::Unavailable`] (the database cannot be reached: retry or fail over) or
/// [`StoreError::Backend`] (anything else).
#[non_exhaustive]
#[derive(thiserror::Error, Debug)]
pub enum SqlError {
    /// Opening the database or its connection pool failed. Check the URL or path, that the
    /// server runs and accepts this user, and (SQLite) that the directory is writable.
    #[error("cannot connect to the session database")]
    Connect(#[source] sqlx::Error),
    /// Creating the `sessions` table or its index failed. Check that the user may create
    /// tables, or create them by hand from the crate's documented schema.
    #[error("cannot create the sessions table")]
    Migrate(#[source] sqlx::Error),
    /// A query failed. If the table is missing, call `migrate()`; a connection error means the
    /// database is unreachable: retry or fail over.
    #[error("session query failed during {op}")]
    Query {
        /// The store operation that ran the query (`"load"`, `"compare_and_save"`, …).
        op: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// The `sessions` table does not exist: `migrate()` was never called on this database.
    #[error("table sessions missing: call migrate() once at start-up (during {op})")]
    MissingTable {
        /// The store operation that ran the query.
        op: &'static str,
        /// The driver's error ("no such table", "relation does not exist", …).
        #[source]
        source: sqlx::Error,
    },
    /// A stored row's `data` is not a record this crate can decode: the row was written by
    /// something else or by a newer, incompatible version of the crate. Delete the row.
    #[error("stored session data cannot be decoded")]
    Corrupt(#[source] codec::Error),
    /// A stored integer column is negative or a version does not fit the database's signed
    /// 64-bit integer. The row was not written by this crate; delete it.
    #[error("column {column} holds {value}, outside 0..=i64::MAX")]
    OutOfRange {
        /// The column (`"expires"`, `"version"`, …).
        column: &'static str,
        /// The offending value as read or about to be written.
        value: i128,
    },
    /// `save` lost the race to other writers of the same session this many times in a row.
    /// The session is written extremely often: retry later, or use `compare_and_save`.
    #[error("save gave up after {attempts} rounds of concurrent writes to the same session")]
    SaveContention {
        /// Rounds attempted.
        attempts: u32,
    },
}

impl SqlError {
    /// The [`StoreError`] a session operation reports for this error: unreachable databases
    /// become [`StoreError::Unavailable`], everything else [`StoreError::Backend`].
    fn into_store(self) -> StoreError {
        let unavailable = matches!(
            &self,
            Self::Connect(e) | Self::Query { source: e, .. } if is_unavailable(e)
        );
        if unavailable {
            StoreError::Unavailable(Box::new(self))
        } else {
            StoreError::Backend(Box::new(self))
        }
    }
}

/// `true` for the driver errors that mean "cannot reach the database" rather than "the query
/// is wrong".
fn is_unavailable(e: &sqlx::Error) -> bool {
    matches!(
        e,
        sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
    )
}

/// Maps a driver error of operation `op` into a [`StoreError`], naming a missing table as such.
fn query_err(op: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| {
        let e = if is_missing_table(&source) {
            SqlError::MissingTable { op, source }
        } else {
            SqlError::Query { op, source }
        };
        tracing::debug!(op, error = %crate::error_chain(&e), "session SQL query failed");
        e.into_store()
    }
}

/// `true` if `e` says the `sessions` table does not exist: SQLite's "no such table",
/// PostgreSQL's SQLSTATE 42P01, MySQL/MariaDB's 42S02 (error 1146).
fn is_missing_table(e: &sqlx::Error) -> bool {
    e.as_database_error().is_some_and(|d| {
        matches!(d.code().as_deref(), Some("42P01" | "42S02"))
            || d.message().starts_with("no such table")
    })
}

/// `true` if `e` is a primary-key (unique) violation: `create` found the id taken.
fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(sqlx::error::DatabaseError::is_unique_violation)
}

/// A time as the database stores it; times past `i64::MAX` seconds saturate (they are
/// "never" either way).
fn db_time(t: UnixTime) -> i64 {
    i64::try_from(t.as_secs()).unwrap_or(i64::MAX)
}

/// A version as the database stores it.
fn db_version(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| {
        SqlError::OutOfRange {
            column: "version",
            value: i128::from(v),
        }
        .into_store()
    })
}

/// A non-negative integer column read back.
fn from_db(column: &'static str, v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| {
        SqlError::OutOfRange {
            column,
            value: i128::from(v),
        }
        .into_store()
    })
}

/// `rec` as stored with `id` and `version`: the bytes of the `data` column.
fn encode_row(rec: &Record, id: SessionId, version: u64) -> Result<Vec<u8>, StoreError> {
    let mut stored = rec.clone();
    stored.set_id(id);
    stored.set_version(version);
    codec::encode(&stored).map_err(StoreError::Encode)
}

/// A row read back: the columns `expires` and `version` are authoritative (`touch` moves only
/// the column), the rest comes from `data`.
fn decode_row(data: &[u8], expires: i64, version: i64) -> Result<Record, StoreError> {
    let mut rec = codec::decode(data).map_err(|e| SqlError::Corrupt(e).into_store())?;
    rec.set_expires(UnixTime::from_secs(from_db("expires", expires)?));
    rec.set_version(from_db("version", version)?);
    Ok(rec)
}

/// The SQL text of every statement, in one dialect.
struct Queries {
    schema: &'static [&'static str],
    insert: String,
    delete_expired_id: String,
    load: String,
    live_version: String,
    probe: String,
    compare_and_save: String,
    replace: String,
    touch: String,
    delete: String,
    sweep: String,
}

/// Placeholder style of a dialect.
#[derive(Clone, Copy)]
enum Placeholders {
    /// `?` (SQLite, MySQL/MariaDB).
    #[cfg_attr(not(any(feature = "sqlite", feature = "mysql")), allow(dead_code))]
    Question,
    /// `$1`, `$2`, … (PostgreSQL).
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    Dollar,
}

impl Queries {
    fn new(schema: &'static [&'static str], style: Placeholders) -> Self {
        let q = |sql: &str| match style {
            Placeholders::Question => sql.to_owned(),
            Placeholders::Dollar => numbered(sql),
        };
        Self {
            schema,
            insert: q(
                "INSERT INTO sessions (id, data, created, expires, version) \
                       VALUES (?, ?, ?, ?, ?)",
            ),
            delete_expired_id: q("DELETE FROM sessions WHERE id = ? AND expires <= ?"),
            load: q("SELECT data, expires, version FROM sessions WHERE id = ? AND expires > ?"),
            live_version: q("SELECT version FROM sessions WHERE id = ? AND expires > ?"),
            probe: q("SELECT version, expires FROM sessions WHERE id = ?"),
            compare_and_save: q("UPDATE sessions SET data = ?, created = ?, expires = ?, \
                                 version = ? WHERE id = ? AND version = ? AND expires > ?"),
            replace: q(
                "UPDATE sessions SET data = ?, created = ?, expires = ?, version = ? \
                        WHERE id = ? AND version = ? AND expires = ?",
            ),
            touch: q("UPDATE sessions SET expires = ? WHERE id = ? AND expires > ?"),
            delete: q("DELETE FROM sessions WHERE id = ?"),
            sweep: q("DELETE FROM sessions WHERE expires <= ?"),
        }
    }
}

/// Rewrites `?` placeholders as `$1`, `$2`, … (the statements above hold no `?` elsewhere).
fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0_u32;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(c);
        }
    }
    out
}

/// Implements `migrate`, `sweep`, accessors and [`SessionStore`](crate::SessionStore) for a
/// store struct `{ pool: sqlx::Pool<$db>, clock: C, q: Queries }`. The SQL text differs by
/// dialect (in [`Queries`]); the logic is the same for all three.
macro_rules! sql_store {
    ($store:ident, $db:ty) => {
        impl<C: $crate::Clock> $store<C> {
            /// Creates the `sessions` table and its index on `expires` if they are missing,
            /// in one transaction. Safe to call on every start-up, from several servers at
            /// once.
            ///
            /// # Errors
            /// [`SqlError::Migrate`](crate::SqlError::Migrate) if a statement fails.
            pub async fn migrate(&self) -> Result<(), $crate::SqlError> {
                let mut tx = self.pool.begin().await.map_err($crate::SqlError::Migrate)?;
                for stmt in self.q.schema {
                    sqlx::query(stmt)
                        .execute(&mut *tx)
                        .await
                        .map_err($crate::SqlError::Migrate)?;
                }
                tx.commit().await.map_err($crate::SqlError::Migrate)
            }

            /// Deletes every session expired at `now` (use the store's clock:
            /// `store.sweep(store.clock().now())`); returns how many rows went. Run it
            /// periodically from one server or from all: it is idempotent.
            ///
            /// # Errors
            /// [`StoreError::Unavailable`](crate::StoreError) or
            /// [`StoreError::Backend`](crate::StoreError) if the query fails.
            pub async fn sweep(&self, now: $crate::UnixTime) -> Result<u64, $crate::StoreError> {
                let done = sqlx::query(&self.q.sweep)
                    .bind(super::db_time(now))
                    .execute(&self.pool)
                    .await
                    .map_err(super::query_err("sweep"))?;
                Ok(done.rows_affected())
            }

            /// Spawns a tokio task that calls [`sweep`](Self::sweep) with the store clock's
            /// "now" every `period`, first at once. It stops when the store's last other `Arc`
            /// is dropped, or with the returned handle's `abort()`. A failed sweep is logged
            /// (`tracing` warning) and retried at the next tick; each sweep that deletes rows
            /// logs how many at `debug`. Every server may run one (the `DELETE` is idempotent);
            /// one per database is enough. A period of a few minutes suits most sites: expired
            /// rows are invisible to `load` at once, the sweeper only frees their space.
            /// Must be called inside a tokio runtime.
            pub fn spawn_sweeper(
                self: &::std::sync::Arc<Self>,
                period: ::std::time::Duration,
            ) -> ::tokio::task::JoinHandle<()> {
                let weak = ::std::sync::Arc::downgrade(self);
                ::tokio::spawn(async move {
                    let mut tick = ::tokio::time::interval(period);
                    tick.set_missed_tick_behavior(::tokio::time::MissedTickBehavior::Delay);
                    loop {
                        tick.tick().await;
                        let Some(store) = weak.upgrade() else { break };
                        match store.sweep(store.clock.now()).await {
                            Ok(0) => {}
                            Ok(rows) => {
                                ::tracing::debug!(rows, "session sweeper deleted expired rows");
                            }
                            Err(e) => ::tracing::warn!(
                                error = %$crate::error_chain(&e),
                                "session sweeper failed; retrying at the next tick"
                            ),
                        }
                    }
                })
            }

            /// The connection pool (for health checks, or to run the schema yourself).
            #[must_use]
            pub fn pool(&self) -> &sqlx::Pool<$db> {
                &self.pool
            }

            /// The store's clock.
            #[must_use]
            pub fn clock(&self) -> &C {
                &self.clock
            }

            /// Inserts `data` as `id` at `version`; `Ok(false)` if the id is taken.
            async fn insert_row(
                &self,
                op: &'static str,
                id: $crate::SessionId,
                rec: &$crate::Record,
                version: u64,
            ) -> Result<bool, $crate::StoreError> {
                let data = super::encode_row(rec, id, version)?;
                let res = sqlx::query(&self.q.insert)
                    .bind(&id.as_bytes()[..])
                    .bind(data)
                    .bind(super::db_time(rec.created()))
                    .bind(super::db_time(rec.expires()))
                    .bind(super::db_version(version)?)
                    .execute(&self.pool)
                    .await;
                match res {
                    Ok(_) => Ok(true),
                    Err(e) if super::is_unique_violation(&e) => Ok(false),
                    Err(e) => Err(super::query_err(op)(e)),
                }
            }

            async fn create_impl(
                &self,
                rec: &mut $crate::Record,
            ) -> Result<$crate::Token, $crate::StoreError> {
                let mut id = rec.id();
                for _ in 0..super::CREATE_RETRIES {
                    if self.insert_row("create", id, rec, 1).await? {
                        rec.set_id(id);
                        rec.set_version(1);
                        return Ok($crate::Token::from(id));
                    }
                    // Taken. An expired row is garbage: remove it and retry the same id.
                    let now = self.clock.now();
                    let freed = sqlx::query(&self.q.delete_expired_id)
                        .bind(&id.as_bytes()[..])
                        .bind(super::db_time(now))
                        .execute(&self.pool)
                        .await
                        .map_err(super::query_err("create"))?
                        .rows_affected();
                    if freed == 0 {
                        id = $crate::fresh_id()?;
                    }
                }
                Err($crate::StoreError::Conflict)
            }

            async fn save_impl(
                &self,
                rec: &mut $crate::Record,
            ) -> Result<$crate::Token, $crate::StoreError> {
                let id = rec.id();
                let mine = rec.version();
                for _ in 0..super::SAVE_RETRIES {
                    let probe: Option<(i64, i64)> = sqlx::query_as(&self.q.probe)
                        .bind(&id.as_bytes()[..])
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(super::query_err("save"))?;
                    let Some((stored, expires)) = probe else {
                        let new = mine.checked_add(1).unwrap_or(u64::MAX);
                        if self.insert_row("save", id, rec, new).await? {
                            rec.set_version(new);
                            return Ok($crate::Token::from(id));
                        }
                        continue; // someone inserted it meanwhile: read again
                    };
                    let live = super::from_db("expires", expires)? > self.clock.now().as_secs();
                    let base = if live {
                        super::from_db("version", stored)?.max(mine)
                    } else {
                        mine
                    };
                    let new = base.checked_add(1).unwrap_or(u64::MAX);
                    let data = super::encode_row(rec, id, new)?;
                    let done = sqlx::query(&self.q.replace)
                        .bind(data)
                        .bind(super::db_time(rec.created()))
                        .bind(super::db_time(rec.expires()))
                        .bind(super::db_version(new)?)
                        .bind(&id.as_bytes()[..])
                        .bind(stored)
                        .bind(expires)
                        .execute(&self.pool)
                        .await
                        .map_err(super::query_err("save"))?;
                    if done.rows_affected() == 1 {
                        rec.set_version(new);
                        return Ok($crate::Token::from(id));
                    }
                }
                tracing::warn!(
                    attempts = super::SAVE_RETRIES,
                    "session save kept losing to concurrent writers; giving up"
                );
                Err(super::SqlError::SaveContention {
                    attempts: super::SAVE_RETRIES,
                }
                .into_store())
            }

            async fn compare_and_save_impl(
                &self,
                rec: &mut $crate::Record,
            ) -> Result<$crate::Token, $crate::StoreError> {
                let id = rec.id();
                let expected = rec.version();
                let now = super::db_time(self.clock.now());
                let new = expected.checked_add(1).unwrap_or(u64::MAX);
                let data = super::encode_row(rec, id, new)?;
                let done = sqlx::query(&self.q.compare_and_save)
                    .bind(data)
                    .bind(super::db_time(rec.created()))
                    .bind(super::db_time(rec.expires()))
                    .bind(super::db_version(new)?)
                    .bind(&id.as_bytes()[..])
                    .bind(super::db_version(expected)?)
                    .bind(now)
                    .execute(&self.pool)
                    .await
                    .map_err(super::query_err("compare_and_save"))?;
                if done.rows_affected() == 1 {
                    rec.set_version(new);
                    return Ok($crate::Token::from(id));
                }
                // Lost: report what is stored now (informational; it may move again).
                let found: Option<i64> = sqlx::query_scalar(&self.q.live_version)
                    .bind(&id.as_bytes()[..])
                    .bind(now)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(super::query_err("compare_and_save"))?;
                let found = found.map(|v| super::from_db("version", v)).transpose()?;
                Err($crate::StoreError::VersionMismatch { expected, found })
            }

            async fn load_impl(
                &self,
                token: &$crate::Token,
            ) -> Result<Option<$crate::Record>, $crate::StoreError> {
                let Ok(id) = $crate::SessionId::parse(token.as_str().as_bytes()) else {
                    return Ok(None);
                };
                let row: Option<(Vec<u8>, i64, i64)> = sqlx::query_as(&self.q.load)
                    .bind(&id.as_bytes()[..])
                    .bind(super::db_time(self.clock.now()))
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(super::query_err("load"))?;
                row.map(|(data, expires, version)| super::decode_row(&data, expires, version))
                    .transpose()
            }

            async fn delete_impl(&self, token: &$crate::Token) -> Result<(), $crate::StoreError> {
                let Ok(id) = $crate::SessionId::parse(token.as_str().as_bytes()) else {
                    return Ok(());
                };
                sqlx::query(&self.q.delete)
                    .bind(&id.as_bytes()[..])
                    .execute(&self.pool)
                    .await
                    .map_err(super::query_err("delete"))?;
                Ok(())
            }

            async fn touch_impl(
                &self,
                token: &$crate::Token,
                expires: $crate::UnixTime,
            ) -> Result<Option<$crate::Token>, $crate::StoreError> {
                let Ok(id) = $crate::SessionId::parse(token.as_str().as_bytes()) else {
                    return Ok(None);
                };
                let done = sqlx::query(&self.q.touch)
                    .bind(super::db_time(expires))
                    .bind(&id.as_bytes()[..])
                    .bind(super::db_time(self.clock.now()))
                    .execute(&self.pool)
                    .await
                    .map_err(super::query_err("touch"))?;
                Ok((done.rows_affected() == 1).then(|| $crate::Token::from(id)))
            }
        }

        forward_session_store!($store);

        impl<C: $crate::Clock> ::std::fmt::Debug for $store<C> {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.debug_struct(stringify!($store))
                    .field("pool_size", &self.pool.size())
                    .finish_non_exhaustive()
            }
        }
    };
}
pub(crate) use sql_store;

#[cfg(test)]
mod tests {
    use super::numbered;

    #[test]
    fn placeholders_are_numbered_in_order() {
        assert_eq!(
            numbered("UPDATE t SET a = ? WHERE b = ? AND c > ?"),
            "UPDATE t SET a = $1 WHERE b = $2 AND c > $3"
        );
        assert_eq!(numbered("SELECT 1"), "SELECT 1");
    }
}
