//! Database connection and migrations, for SQLite (the embedded default) and PostgreSQL.
//!
//! The pool only hands out connections that are outside any transaction. Every transaction of ours
//! goes through [`crate::domain::Writer::write`], which never leaves one open; the checks here are
//! the defence in depth behind it (a connection that comes back inside a transaction, whoever left
//! it so, is closed instead of being handed to the next request, where its `BEGIN` would run
//! inside somebody else's transaction and its autocommit writes would never commit).

use std::sync::Arc;
use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::pool::PoolConnection;
use sea_orm::sqlx::postgres::{PgConnection, Postgres};
use sea_orm::sqlx::{self, Connection, Row};
use sea_orm::{
    ConnAcquireErr, ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr, ExecResult,
    QueryResult, RuntimeErr, Statement,
};
use sea_query_sqlx::SqlxValues;

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
        // rolls back a `BEGIN` nobody waited for). A connection still inside a transaction would
        // hold the write lock for ever: it is closed. `BEGIN` fails inside a transaction, so
        // `BEGIN; COMMIT` also catches one that sqlx does not count. It runs when the connection is
        // given back, in the task sqlx spawns for the release, so no request waits for it (at
        // acquire it was one worker round trip on every request's path, and inside every write
        // turn); it is queued behind whatever the connection's last user left (a rollback of a
        // dropped transaction), so it sees the connection as the next user would. At acquire,
        // only sqlx's own bookkeeping.
        options.test_before_acquire(false);
        options.map_sqlx_sqlite_before_acquire(|conn, _| Box::pin(async move { Ok(!conn.is_in_transaction()) }));
        options.map_sqlx_sqlite_pool_opts(|pool| {
            pool.after_release(|conn, _| {
                Box::pin(async move {
                    if let Err(error) = sea_orm::sqlx::raw_sql(SQLITE_OUTSIDE_TRANSACTION_SQL).execute(&mut *conn).await {
                        tracing::warn!(%error, "a pooled SQLite connection was inside a transaction nobody owns; closing it");
                        return Ok(false);
                    }
                    if conn.is_in_transaction() {
                        tracing::warn!("a pooled SQLite connection was still inside a transaction; closing it");
                        return Ok(false);
                    }
                    Ok(true)
                })
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

/// The statements of one request, on one pooled connection (PostgreSQL).
///
/// The pool takes a connection back after every statement, and each time asks it two things
/// before it is idle again: whether it is inside a transaction (the check in [`connect`]) and
/// whether it is alive (sqlx's own ping). Each is a round trip, so a statement cost three, and a
/// request of two statements (a page and its nested page; a subscription read for a change, then
/// its write) six. A `RequestConnection` made with [`RequestConnection::keeping`] keeps the first
/// connection it takes until the request ends (its last clone is dropped), so that request pays
/// its two statements and, once, the two checks. When the request ends, a connection whose every
/// statement ran to completion, and that only ever ran `SELECT`, `INSERT`, `UPDATE`, `DELETE` or
/// `WITH` statements, goes to the [`WarmConnections`] for the next request instead of back through
/// the pool's checks (the request then pays two round trips in all): such a connection cannot be
/// inside a transaction (see [`WarmConnections`]). Any other goes back to the pool and is checked
/// there.
///
/// It never waits for the pool while it keeps a connection, so requests cannot starve each other
/// of connections: a statement that finds the kept connection busy (fields resolved side by side)
/// takes an idle one when the pool has one (without waiting) and otherwise waits for the kept one;
/// a transaction ([`crate::domain::Writer::write`]) first gives the kept one back
/// ([`RequestConnection::give_back`]). Text run with `execute_unprepared` goes to the pool, never to
/// the kept connection. On SQLite (no round trip to save, and a pool of four that a kept connection
/// would take one of from every other request) every statement takes a connection of the pool, as
/// does a `RequestConnection` made from a bare pool (`From<DatabaseConnection>`: the event stream,
/// webhooks, the demo).
#[derive(Clone)]
pub struct RequestConnection {
    db: DatabaseConnection,
    kept: Option<Arc<KeptSlot>>,
    on_statement: Option<StatementCallback>,
    turns: WriteTurns,
}

/// Called with each statement run on a kept connection, where SeaORM's metric callback of the pool
/// (`DatabaseConnection::set_metric_callback`, which SeaORM does not let us call) sees the others.
/// Without one, the statement is counted for `/metrics` ([`crate::metrics::statement_issued`]), as
/// [`connect`]'s metric callback does.
pub type StatementCallback = Arc<dyn Fn(&Statement) + Send + Sync>;

impl From<DatabaseConnection> for RequestConnection {
    fn from(db: DatabaseConnection) -> Self {
        Self { db, kept: None, on_statement: None, turns: WriteTurns::default() }
    }
}

/// The connection a request keeps, and where it goes when the request ends.
struct KeptSlot {
    conn: tokio::sync::Mutex<Option<Kept>>,
    warm: WarmConnections,
}

/// A kept connection, and what tells whether it may be handed to the next request as it is.
struct Kept {
    conn: PoolConnection<Postgres>,
    /// From the start of a statement until it completed without error (for good if it never does).
    busy: bool,
    /// Once a statement other than `SELECT`, `INSERT`, `UPDATE`, `DELETE` or `WITH` ran on it.
    tainted: bool,
}

impl KeptSlot {
    fn release(&self, kept: Kept) {
        if !kept.busy && !kept.tainted {
            self.warm.put(kept.conn);
        }
        // Otherwise dropped: back to the pool, through its checks.
    }
}

impl Drop for KeptSlot {
    fn drop(&mut self) {
        if let Some(kept) = self.conn.get_mut().take() {
            self.release(kept);
        }
    }
}

impl RequestConnection {
    /// A request's connection: on PostgreSQL its statements share one pooled connection, taken
    /// from `warm` when it holds one. `on_statement`: see [`StatementCallback`].
    pub fn keeping(db: DatabaseConnection, warm: &WarmConnections, on_statement: Option<StatementCallback>) -> Self {
        let kept = (db.get_database_backend() == DbBackend::Postgres)
            .then(|| Arc::new(KeptSlot { conn: tokio::sync::Mutex::new(None), warm: warm.clone() }));
        Self { db, kept, on_statement, turns: WriteTurns::default() }
    }

    /// Transactions begun through this connection wait for their turn at `turns` first (SQLite; see
    /// [`WriteTurns`]).
    pub fn with_write_turns(mut self, turns: WriteTurns) -> Self {
        self.turns = turns;
        self
    }

    /// Waits for this connection's turn to write (at once on PostgreSQL, or without [`WriteTurns`]);
    /// the turn lasts until the returned value is dropped.
    pub async fn write_turn(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.turns.take().await
    }

    /// The pool (transactions begin on it).
    pub fn pool(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Gives the kept connection back, before waiting for another one (a transaction).
    pub async fn give_back(&self) {
        if let Some(slot) = &self.kept {
            let kept = slot.conn.lock().await.take();
            if let Some(kept) = kept {
                slot.release(kept);
            }
        }
    }

    /// [`sqlite_script`] on this connection's pool, counted as one statement (it is one round trip).
    pub async fn sqlite_script(&self, script: Statement) -> Result<Vec<QueryResult>, DbErr> {
        self.observe(&script);
        sqlite_script(&self.db, script).await
    }

    /// Reports `statement` to the [`StatementCallback`], or counts it for `/metrics` without one.
    fn observe(&self, statement: &Statement) {
        match &self.on_statement {
            Some(callback) => callback(statement),
            None => crate::metrics::statement_issued(),
        }
    }

    /// The connection to run `statement` on: the kept one (taken from the warm connections or the
    /// pool first if none is kept yet), or, when another statement of this request is using it, an
    /// idle connection of the pool, or else the kept one once that statement is done.
    async fn connection<'a>(&'a self, slot: &'a KeptSlot, statement: &Statement) -> Result<Held<'a>, DbErr> {
        self.observe(statement);
        let pool = self.db.get_postgres_connection_pool();
        let mut kept = match slot.conn.try_lock() {
            Ok(kept) => kept,
            Err(_) => match pool.try_acquire() {
                Some(spare) => return Ok(Held::Spare(spare)),
                None => slot.conn.lock().await,
            },
        };
        if kept.is_none() {
            let conn = slot.warm.acquire(pool).await.map_err(acquire_error)?;
            *kept = Some(Kept { conn, busy: false, tainted: false });
        }
        match tokio::sync::MutexGuard::try_map(kept, Option::as_mut) {
            Ok(mut kept) => {
                // Until this statement has completed (see `Held::completed`).
                kept.busy = true;
                Ok(Held::Kept(kept))
            }
            Err(_) => Err(DbErr::Custom("the request's kept connection went missing".into())),
        }
    }
}

/// A connection a statement runs on (see [`RequestConnection::connection`]).
enum Held<'a> {
    /// The request's kept connection.
    Kept(tokio::sync::MappedMutexGuard<'a, Kept>),
    /// An idle connection of the pool, given back after the statement.
    Spare(PoolConnection<Postgres>),
}

impl Held<'_> {
    fn get(&mut self) -> &mut PgConnection {
        match self {
            Held::Kept(kept) => &mut kept.conn,
            Held::Spare(spare) => spare,
        }
    }

    /// `statement` ran to completion without error: the kept connection is as the statement found
    /// it if the statement is one that cannot begin or end a transaction block; after any other, it
    /// is never handed on warm.
    fn completed(&mut self, statement: &Statement) {
        if let Held::Kept(kept) = self {
            kept.busy = false;
            kept.tainted |= !runs_outside_transactions(&statement.sql);
        }
    }
}

/// Whether `sql` is a statement that leaves the session outside any transaction block when it ran
/// there: a `SELECT`, `INSERT`, `UPDATE`, `DELETE` or `WITH` sent as one prepared statement (the
/// extended protocol takes one statement; only `BEGIN`/`START TRANSACTION` open a block). Every
/// statement SeaORM builds for us is one of these.
fn runs_outside_transactions(sql: &str) -> bool {
    let head = sql.trim_start().as_bytes();
    ["SELECT", "INSERT", "UPDATE", "DELETE", "WITH"].iter().any(|verb| {
        head.len() > verb.len()
            && head[..verb.len()].eq_ignore_ascii_case(verb.as_bytes())
            && !head[verb.len()].is_ascii_alphanumeric()
            && head[verb.len()] != b'_'
    })
}

/// Turns at writing on SQLite, which lets one transaction write at a time: the server's write
/// transactions ([`crate::domain::Writer::write`]) queue here, first come first served, before they
/// take a pooled connection and `BEGIN IMMEDIATE`.
///
/// Without it they queued inside SQLite: each writer took one of the pool's four connections and
/// waited in `BEGIN IMMEDIATE`, where SQLite's busy handler sleeps and retries with growing sleeps
/// (1, 2, 5, 10 … 100 ms). Writers waiting that way held the connections the requests' reads needed,
/// and one that slept past the moment the lock came free left it unused. Measured under
/// `updateSubscription` load (16 clients): see the README's performance section. A writer outside
/// this server's requests (the lifecycle runner, the webhook fan-out, another process on the same
/// file) still waits in SQLite's busy handler (`busy_timeout`, 30 s), as before.
///
/// Cloning shares the turns. Empty on PostgreSQL, whose transactions write side by side.
#[derive(Clone, Default)]
pub struct WriteTurns(Option<Arc<tokio::sync::Semaphore>>);

impl WriteTurns {
    /// One turn at a time on SQLite; none to wait for on PostgreSQL.
    pub fn new(db: &DatabaseConnection) -> Self {
        Self((db.get_database_backend() == DbBackend::Sqlite).then(|| Arc::new(tokio::sync::Semaphore::new(1))))
    }

    async fn take(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        // The semaphore is never closed, so `acquire_owned` only fails if it were.
        self.0.clone()?.acquire_owned().await.ok()
    }
}

/// How long a connection stays warm unused before it goes back to the pool.
const WARM_FOR: Duration = Duration::from_secs(1);

/// Connections requests finished with, held for the next request (PostgreSQL): handing one on
/// costs nothing, where giving it back to the pool costs two round trips (the pool's check that it
/// is outside any transaction, then sqlx's ping). Only connections that cannot be inside a
/// transaction come here ([`RequestConnection`]: every statement they ran completed, and none could
/// open a transaction block), so the check would find nothing.
///
/// When the pool has none to give, requests wait here (and at the pool, for one it opens or gets
/// back), first come first served, and a connection a request finished with goes straight to the
/// first of them. Under a load beyond the pool that saves every request the two round trips, and
/// each connection the time they took: a connection checked on its way back is nobody's meanwhile.
///
/// They never keep the pool's other users waiting long:
/// - a connection is held here only while the pool could hand out another without waiting (it has
///   an idle one, or room to open one); otherwise it goes to a waiting request or back to the pool;
/// - while requests wait here, one connection every [`POOL_TURN_EVERY`] goes back to the pool
///   instead, whose waiters (transactions, the event stream, webhooks) take it in their turn;
/// - one unused for [`WARM_FOR`] goes back to the pool (checked there, and closed when idle too
///   long as any other);
/// - when the pool closes, every connection held here goes back at once (`Pool::close` waits for
///   them).
///
/// Cloning shares them. Empty and inert on SQLite, or when made outside a Tokio runtime.
#[derive(Clone, Default)]
pub struct WarmConnections(Option<Arc<Warm>>);

struct Warm {
    pool: sqlx::PgPool,
    state: std::sync::Mutex<WarmState>,
}

#[derive(Default)]
struct WarmState {
    /// The connections held warm, each with the moment it came; oldest first, taken from the back
    /// (the most recently used, the warmest).
    held: WarmQueue,
    /// Requests waiting for a connection (while the pool has none to give), first come first.
    waiting: std::collections::VecDeque<(u64, tokio::sync::oneshot::Sender<PoolConnection<Postgres>>)>,
    /// The ticket of the next request to wait.
    next_ticket: u64,
    /// When a connection last went back to the pool while requests were waiting here.
    pool_turn: Option<std::time::Instant>,
    /// Connections handed straight to a waiting request, since the start.
    handed_on: u64,
}

/// The connections held warm, each with the moment it came.
type WarmQueue = std::collections::VecDeque<(std::time::Instant, PoolConnection<Postgres>)>;

/// While requests wait for connections here, at least one connection this often goes back to the
/// pool instead of to the next of them, so that the pool's own waiters (transactions, the event
/// stream, the webhook fan-out) have their turn (see [`WarmConnections`]).
const POOL_TURN_EVERY: Duration = Duration::from_millis(5);

impl WarmConnections {
    /// Warm connections of `db`'s pool; on PostgreSQL, starts the task that returns those unused
    /// for [`WARM_FOR`], and all of them when the pool closes.
    pub fn new(db: &DatabaseConnection) -> Self {
        if db.get_database_backend() != DbBackend::Postgres {
            return Self(None);
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return Self(None) };
        let pool = db.get_postgres_connection_pool().clone();
        let closed = pool.close_event();
        let warm = Arc::new(Warm { pool, state: Default::default() });
        runtime.spawn(Warm::tend(Arc::downgrade(&warm), closed));
        Self(Some(warm))
    }

    /// How many connections are held warm now.
    pub fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |warm| warm.lock().held.len())
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many requests wait for a connection now (the pool has none to give).
    pub fn waiting(&self) -> usize {
        self.0.as_ref().map_or(0, |warm| warm.lock().waiting.len())
    }

    /// How many connections went straight from a request that ended to one waiting, since the
    /// start.
    pub fn handed_on(&self) -> u64 {
        self.0.as_ref().map_or(0, |warm| warm.lock().handed_on)
    }

    /// The warmest connection, if one is held and the pool is open.
    fn take(&self) -> Option<PoolConnection<Postgres>> {
        let warm = self.0.as_ref()?;
        if warm.pool.is_closed() {
            warm.return_older_than(Duration::ZERO);
            return None;
        }
        let (since, conn) = warm.lock().held.pop_back()?;
        if since.elapsed() < WARM_FOR {
            return Some(conn);
        }
        // This one and all held before it have waited too long: back to the pool.
        drop(conn);
        warm.return_older_than(Duration::ZERO);
        None
    }

    /// A connection for a request: the warmest held, else an idle one of the pool, else a new one
    /// if the pool has room to open it, else the first of a connection handed on by a request
    /// that finished ([`WarmConnections::put`]) or one the pool gives back, whichever comes
    /// first. Requests waiting here are served first come first.
    async fn acquire(&self, pool: &sqlx::PgPool) -> Result<PoolConnection<Postgres>, sqlx::Error> {
        let Some(warm) = &self.0 else { return pool.acquire().await };
        if let Some(conn) = self.take().or_else(|| pool.try_acquire()) {
            return Ok(conn);
        }
        if pool.size() < pool.options().get_max_connections() {
            // The pool has room: it opens a connection. Racing that against a hand-off would
            // drop the connection half-opened whenever the hand-off came first (PostgreSQL forks a
            // backend for each; under Q1 load that was hundreds of connections opened and cut
            // per minute, and a pool that never filled).
            return pool.acquire().await;
        }
        let (ticket, mut handed) = warm.wait();
        // Leaves the queue however this ends (a connection came, or the request stopped waiting).
        let _leave = Leave { warm, ticket };
        let pooled = tokio::select! {
            biased;
            conn = &mut handed => match conn {
                Ok(conn) => return Ok(conn),
                // Only if the state were dropped, which `warm` keeps alive.
                Err(_) => pool.acquire().await,
            },
            conn = pool.acquire() => conn,
        };
        // The pool gave one first. One handed on meanwhile goes on to the next.
        handed.close();
        if let Ok(conn) = handed.try_recv() {
            self.put(conn);
        }
        pooled
    }

    /// Hands `conn` to the first request waiting for one, or holds it for the next request, or
    /// gives it back to the pool (see [`WarmConnections`]).
    fn put(&self, mut conn: PoolConnection<Postgres>) {
        let Some(warm) = &self.0 else { return };
        let pool = &warm.pool;
        if pool.is_closed() {
            return;
        }
        let mut state = warm.lock();
        if !state.waiting.is_empty() {
            let now = std::time::Instant::now();
            if state.pool_turn.is_some_and(|turn| now.duration_since(turn) >= POOL_TURN_EVERY) {
                // The pool's turn: its own waiters come first there.
                state.pool_turn = Some(now);
                return;
            }
            state.pool_turn.get_or_insert(now);
            while let Some((_, waiter)) = state.waiting.pop_front() {
                match waiter.send(conn) {
                    Ok(()) => {
                        state.handed_on += 1;
                        return;
                    }
                    // That request stopped waiting.
                    Err(back) => conn = back,
                }
            }
        }
        state.pool_turn = None;
        let max = pool.options().get_max_connections();
        let others_can_get_one = pool.num_idle() > 0 || pool.size() < max;
        if others_can_get_one && state.held.len() < max as usize {
            state.held.push_back((std::time::Instant::now(), conn));
        }
    }
}

/// Takes a waiting request out of the queue when it stops waiting.
struct Leave<'a> {
    warm: &'a Warm,
    ticket: u64,
}

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        self.warm.lock().waiting.retain(|(ticket, _)| *ticket != self.ticket);
    }
}

impl Warm {
    fn lock(&self) -> std::sync::MutexGuard<'_, WarmState> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues a request for the next connection handed on: its ticket, and where the connection
    /// comes.
    fn wait(&self) -> (u64, tokio::sync::oneshot::Receiver<PoolConnection<Postgres>>) {
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let mut state = self.lock();
        let ticket = state.next_ticket;
        state.next_ticket += 1;
        state.waiting.push_back((ticket, sender));
        (ticket, receiver)
    }

    /// Gives back to the pool every connection held for at least `age`.
    fn return_older_than(&self, age: Duration) {
        let mut stale = Vec::new();
        {
            let mut state = self.lock();
            while state.held.front().is_some_and(|(since, _)| since.elapsed() >= age) {
                stale.extend(state.held.pop_front().map(|(_, conn)| conn));
            }
        }
        drop(stale);
    }

    /// Every [`WARM_FOR`], returns the connections unused that long; when the pool closes, all.
    /// Ends when the connections are dropped (their `AppState` is gone) or the pool closes.
    async fn tend(warm: std::sync::Weak<Warm>, closed: sqlx::pool::CloseEvent) {
        tokio::pin!(closed);
        loop {
            let closing = tokio::select! {
                _ = &mut closed => true,
                _ = tokio::time::sleep(WARM_FOR) => false,
            };
            let Some(warm) = warm.upgrade() else { return };
            warm.return_older_than(if closing { Duration::ZERO } else { WARM_FOR });
            if closing {
                return;
            }
        }
    }
}

/// Runs `script`, several SQLite statements separated by `;` (their values bound in order, one
/// statement after another), on a connection of `db`'s pool as one command of that connection's
/// worker thread; returns the rows its statements return. A script that opens a transaction and
/// commits it is one round trip to the worker where running its statements one by one takes one
/// each. If a statement fails, the script stops there and the transaction it opened is rolled back
/// (`ROLLBACK`; should that fail too, the pool's release check finds the connection inside a
/// transaction and closes it, which rolls back). Run it in its own task if the caller may stop
/// waiting: the worker stops between statements when nobody reads the results.
pub async fn sqlite_script(db: &DatabaseConnection, script: Statement) -> Result<Vec<QueryResult>, DbErr> {
    let mut conn = db.get_sqlite_connection_pool().acquire().await.map_err(acquire_error)?;
    let values = script.values.unwrap_or(sea_orm::Values(Vec::new()));
    let result = sqlx::query_with(sqlx::AssertSqlSafe(script.sql), SqlxValues(values)).fetch_all(&mut *conn).await;
    match result {
        Ok(rows) => Ok(rows.into_iter().map(QueryResult::from).collect()),
        Err(err) => {
            // Fails (harmlessly) when the script failed before its BEGIN or after its COMMIT.
            let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await;
            Err(DbErr::Exec(RuntimeErr::SqlxError(Arc::new(err))))
        }
    }
}

/// A SeaORM statement as sqlx runs it (a prepared statement, its values bound).
fn bound(statement: &Statement) -> sqlx::query::Query<'_, Postgres, SqlxValues> {
    let values = statement.values.clone().unwrap_or(sea_orm::Values(Vec::new()));
    sqlx::query_with(sqlx::AssertSqlSafe(statement.sql.as_str()), SqlxValues(values))
}

fn query_error(err: sqlx::Error) -> DbErr {
    DbErr::Query(RuntimeErr::SqlxError(Arc::new(err)))
}

fn acquire_error(err: sqlx::Error) -> DbErr {
    match err {
        sqlx::Error::PoolTimedOut => DbErr::ConnectionAcquire(ConnAcquireErr::Timeout),
        sqlx::Error::PoolClosed => DbErr::ConnectionAcquire(ConnAcquireErr::ConnectionClosed),
        err => DbErr::Conn(RuntimeErr::SqlxError(Arc::new(err))),
    }
}

#[async_graphql::async_trait::async_trait]
impl ConnectionTrait for RequestConnection {
    fn get_database_backend(&self) -> DbBackend {
        self.db.get_database_backend()
    }

    async fn execute_raw(&self, statement: Statement) -> Result<ExecResult, DbErr> {
        let Some(kept) = &self.kept else { return self.db.execute_raw(statement).await };
        let mut held = self.connection(kept, &statement).await?;
        let result = bound(&statement).execute(held.get()).await;
        if result.is_ok() {
            held.completed(&statement);
        }
        // SeaORM tells a failed write from a failed read by its variant.
        result.map(ExecResult::from).map_err(|err| DbErr::Exec(RuntimeErr::SqlxError(Arc::new(err))))
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        self.db.execute_unprepared(sql).await
    }

    async fn query_one_raw(&self, statement: Statement) -> Result<Option<QueryResult>, DbErr> {
        let Some(kept) = &self.kept else { return self.db.query_one_raw(statement).await };
        let mut held = self.connection(kept, &statement).await?;
        let row = bound(&statement).fetch_optional(held.get()).await.map_err(query_error)?;
        held.completed(&statement);
        Ok(row.map(QueryResult::from))
    }

    async fn query_all_raw(&self, statement: Statement) -> Result<Vec<QueryResult>, DbErr> {
        let Some(kept) = &self.kept else { return self.db.query_all_raw(statement).await };
        let mut held = self.connection(kept, &statement).await?;
        let rows = bound(&statement).fetch_all(held.get()).await.map_err(query_error)?;
        held.completed(&statement);
        Ok(rows.into_iter().map(QueryResult::from).collect())
    }
}
