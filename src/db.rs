//! Database connection and migrations, for SQLite (the embedded default) and PostgreSQL.
//!
//! The pool only hands out connections that are outside any transaction. Every transaction of ours
//! goes through [`crate::domain::Writer::write`], which never leaves one open; the checks here are
//! the defence in depth behind it (a connection that comes back inside a transaction, whoever left
//! it so, is closed instead of being handed to the next request, where its `BEGIN` would run
//! inside somebody else's transaction and its autocommit writes would never commit).

use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::{Connection, Row};
use sea_orm::{ConnectOptions, Database, DatabaseConnection};

/// The default database: a SQLite file in the working directory, created when missing.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://partnerhub.db?mode=rwc";

/// PostgreSQL ends a session that sits inside a transaction doing nothing for this long (the
/// server-side backstop: a transaction left open by mistake cannot hold its locks for ever).
pub const IDLE_IN_TRANSACTION_TIMEOUT: Duration = Duration::from_secs(60);

/// Whether a pooled PostgreSQL connection is inside a transaction block, asked of the server.
///
/// `sqlx` only exposes its own transaction depth, which misses a `BEGIN` whose answer was never
/// read (its future was dropped in between). The server knows: within a transaction block the
/// transaction's start time is fixed, and it equals the statement's start time only for the first
/// statement of a transaction, which is what a lone statement outside any block is. The query
/// runs over the simple protocol (one message, one statement). A connection in a failed
/// transaction answers with an error, which discards it too.
const PG_IN_TRANSACTION_SQL: &str = "SELECT pg_catalog.transaction_timestamp() <> pg_catalog.statement_timestamp()";

/// Succeeds only on a SQLite connection outside any transaction.
const SQLITE_OUTSIDE_TRANSACTION_SQL: &str = "BEGIN; COMMIT";

/// Default most connections of a PostgreSQL pool.
pub const DEFAULT_POSTGRES_POOL_SIZE: u32 = 20;

/// Default most connections of a SQLite pool (one writer at a time; readers beside it in WAL).
pub const DEFAULT_SQLITE_POOL_SIZE: u32 = 4;

/// Opens a connection pool of the default size.
pub async fn connect(url: &str) -> anyhow::Result<DatabaseConnection> {
    connect_with_pool_size(url, None).await
}

/// Opens a connection pool of at most `pool_size` connections (`PARTNERHUB_DB_POOL_SIZE`; `None`:
/// 20 on PostgreSQL, 4 on SQLite).
pub async fn connect_with_pool_size(url: &str, pool_size: Option<u32>) -> anyhow::Result<DatabaseConnection> {
    if pool_size == Some(0) {
        anyhow::bail!("the database pool size (PARTNERHUB_DB_POOL_SIZE) must be at least 1");
    }
    let mut options = ConnectOptions::new(url.to_owned());
    options.connect_timeout(Duration::from_secs(10)).acquire_timeout(Duration::from_secs(10)).sqlx_logging(false);
    if url.starts_with("sqlite:") {
        // SQLite allows one writer at a time; a small pool avoids needless lock waits. WAL lets
        // readers run beside the writer; write transactions begin IMMEDIATE (see `domain::write`)
        // and wait for the lock instead of failing.
        options.max_connections(pool_size.unwrap_or(DEFAULT_SQLITE_POOL_SIZE)).min_connections(1);
        options.map_sqlx_sqlite_opts(|opts| {
            opts.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(30))
        });
        // The SQLite worker thread keeps the transaction depth of the transactions it runs (and
        // rolls back a `BEGIN` nobody waited for), and the pool's ping on release waits until the
        // worker has run any queued rollback. A connection still inside a transaction at acquire
        // would hold the write lock for ever: it is closed. `BEGIN` fails inside a transaction, so
        // `BEGIN; COMMIT` also catches one that sqlx does not count (one worker round trip, as the
        // liveness ping it replaces).
        options.test_before_acquire(false);
        options.map_sqlx_sqlite_before_acquire(|conn, _| {
            Box::pin(async move {
                if conn.is_in_transaction() {
                    tracing::warn!("a pooled SQLite connection was still inside a transaction; closing it");
                    return Ok(false);
                }
                if let Err(error) = sea_orm::sqlx::raw_sql(SQLITE_OUTSIDE_TRANSACTION_SQL).execute(&mut *conn).await {
                    tracing::warn!(%error, "a pooled SQLite connection was inside a transaction nobody owns; closing it");
                    return Ok(false);
                }
                Ok(true)
            })
        });
    } else {
        options.max_connections(pool_size.unwrap_or(DEFAULT_POSTGRES_POOL_SIZE));
        let timeout = IDLE_IN_TRANSACTION_TIMEOUT.as_millis().to_string();
        options.map_sqlx_postgres_opts(move |opts| {
            opts.options([("idle_in_transaction_session_timeout", timeout.as_str())])
        });
        // The server is asked whether the connection is inside a transaction when the connection
        // is given back, before it becomes idle: in the task sqlx spawns for the release, so no
        // request waits for that round trip (it used to run at acquire, on every request's path).
        // A connection given back while sqlx still counts an open transaction is closed without
        // asking. At acquire, only sqlx's own bookkeeping (no round trip).
        options.test_before_acquire(false);
        options.map_sqlx_postgres_before_acquire(|conn, _| Box::pin(async move { Ok(!conn.is_in_transaction()) }));
        options.map_sqlx_postgres_pool_opts(|pool| {
            pool.after_release(|conn, _| {
                Box::pin(async move {
                    if conn.is_in_transaction() {
                        tracing::warn!("a pooled PostgreSQL connection was still inside a transaction; closing it");
                        return Ok(false);
                    }
                    let row = sea_orm::sqlx::raw_sql(PG_IN_TRANSACTION_SQL).fetch_one(&mut *conn).await?;
                    if row.try_get::<bool, _>(0)? {
                        tracing::warn!(
                            "a pooled PostgreSQL connection was inside a transaction nobody owns; closing it (its work is rolled back)"
                        );
                        return Ok(false);
                    }
                    Ok(true)
                })
            })
        });
    }
    // sqlx turns SQLite foreign keys on for every connection by default.
    let mut db = Database::connect(options).await?;
    // Statements per operation, for `/metrics` (a task-local counter; nothing when none is set).
    db.set_metric_callback(|_| crate::metrics::statement_issued());
    Ok(db)
}

/// Applies every pending migration.
pub async fn migrate_up(db: &DatabaseConnection) -> anyhow::Result<()> {
    Migrator::up(db, None).await?;
    Ok(())
}
