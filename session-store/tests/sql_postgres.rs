//! `PostgresStore` against a real, throw-away PostgreSQL server (tests/support/servers.rs):
//! the tests of `tests/sql_server` (the conformance suite, with `concurrent_increments_lose_nothing`
//! racing 8 tasks on a multi-threaded runtime through a connection pool, two stores on one
//! database, sweep, concurrent migrations, bad URL, unreachable server).
//! Without the server binaries the tests are skipped (printed), except with `CI=true`.
#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod conformance;
mod sql_server;
mod support;

use std::sync::Arc;

use session_store::{ManualClock, PostgresStore, SessionStore, StoreError};
use support::servers;

sql_server::server_store_tests!(
    PostgresStore,
    servers::postgres,
    sqlx::postgres::PgPoolOptions,
    "postgres://postgres@"
);
