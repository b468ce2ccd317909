//! Business rules and the write path. Each rule has one home here (`rules.rs` names them R2–R17);
//! resolvers only translate GraphQL inputs into the typed inputs of `inputs.rs` and call in.
//!
//! Every mutation runs in one database transaction ([`Writer::write`]) that holds the change, its
//! audit event and its outbox event; a failed mutation writes nothing.

pub mod audit;
pub mod customers;
pub mod idempotency;
pub mod inputs;
pub mod known;
pub mod lifecycle;
pub mod partners;
pub mod relationships;
pub mod rules;
pub mod runner;
pub mod subscriptions;
pub mod transfers;
pub mod versioned;
pub mod webhooks;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    DatabaseConnection, DatabaseTransaction, DbErr, QueryFilter, SqliteTransactionMode, TransactionOptions,
    TransactionTrait,
};
use uuid::Uuid;

use crate::access::{Scope, Visible};
use crate::auth::{Principal, Role, Tenant};
use crate::db::RequestConnection;
use crate::error::{ApiError, ApiResult, Code};
use crate::events::feed::Commits;

use self::known::KnownRows;

/// Who is writing, and when: the caller of one request (or the lifecycle runner).
#[derive(Debug, Clone)]
pub struct Actor {
    pub principal: Principal,
    pub scope: Scope,
    pub now: DateTime<Utc>,
    pub request_id: String,
    pub cancellation_window: Duration,
}

impl Actor {
    pub fn new(principal: Principal, now: DateTime<Utc>, request_id: String, cancellation_window: Duration) -> Self {
        let scope = Scope::for_principal(&principal, now);
        Self { principal, scope, now, request_id, cancellation_window }
    }

    /// `FORBIDDEN` unless the caller holds one of `roles` (the message names them).
    pub fn require_role(&self, roles: &[Role]) -> ApiResult<()> {
        self.principal.require_any_role(roles)
    }

    /// The calling partner, or `FORBIDDEN` naming the roles of partners that would do.
    pub fn partner(&self, roles: &[Role]) -> ApiResult<&entity::partner::Model> {
        match &self.principal.tenant {
            Tenant::Partner(p) => {
                self.require_role(roles)?;
                Ok(p)
            }
            _ => Err(self
                .principal
                .require_any_role(roles)
                .err()
                .unwrap_or_else(|| ApiError::new(Code::Forbidden, "this operation is for partners"))),
        }
    }

    /// The calling customer, or `FORBIDDEN`.
    pub fn customer(&self, roles: &[Role]) -> ApiResult<&entity::customer::Model> {
        match &self.principal.tenant {
            Tenant::Customer(c) => {
                self.require_role(roles)?;
                Ok(c)
            }
            _ => Err(self
                .principal
                .require_any_role(roles)
                .err()
                .unwrap_or_else(|| ApiError::new(Code::Forbidden, "this operation is for customers"))),
        }
    }

    /// R16: a subscription about to be written, with what the clock has done to it (renewal, expiry)
    /// first applied and recorded as its own change by the system, in this transaction.
    pub async fn catch_up(
        &self,
        txn: &DatabaseTransaction,
        stored: entity::subscription::Model,
    ) -> ApiResult<entity::subscription::Model> {
        let by = audit::By::system(self.principal.platform_tenant, self.now);
        let (now, window) = (self.now, self.cancellation_window);
        Ok(runner::apply_due_subscription(txn, &by, stored, now, window).await?.0)
    }

    /// A row the caller may see, read inside the transaction; `None` otherwise.
    pub async fn find<E: Visible>(&self, txn: &impl sea_orm::ConnectionTrait, id: Uuid) -> ApiResult<Option<E::Model>> {
        let select = sea_orm::QuerySelect::limit(
            E::visible_named(&self.scope).filter(sea_orm::ColumnTrait::eq(&E::id_column(), id)),
            1,
        );
        Ok(crate::access::fetch_all(txn, select).await?.into_iter().next())
    }

    /// A row the caller may see, read inside the transaction (or on the connection, for a write
    /// made of one statement); `NOT_FOUND` otherwise (R1: never `FORBIDDEN`, which would reveal
    /// that it exists).
    pub async fn load<E: Visible>(
        &self,
        txn: &impl sea_orm::ConnectionTrait,
        id: Uuid,
        what: &str,
    ) -> ApiResult<E::Model> {
        self.find::<E>(txn, id).await?.ok_or_else(|| ApiError::not_found(what))
    }
}

/// A boxed future borrowing the transaction, as a write closure returns.
pub type TxFuture<'a, T> = Pin<Box<dyn Future<Output = ApiResult<T>> + Send + 'a>>;

/// The write side of the database.
#[derive(Clone)]
pub struct Writer {
    /// The request's statements outside a transaction (`db::RequestConnection`); transactions
    /// begin on its pool.
    conn: RequestConnection,
    /// The calling partner's id: every transaction first re-reads its row and applies R17.
    partner: Option<Uuid>,
    /// The event feed of this instance, told after each commit (`events::feed`).
    commits: Commits,
    /// The instance's kept subscription rows ([`known`]), when its writes may use them.
    known: Option<Arc<KnownRows>>,
}

impl Writer {
    /// A writer for code acting for nobody in particular (the lifecycle runner), waking `commits`
    /// (the instance's feed, [`crate::events::feed::Feed::commits`]) after each commit.
    pub fn new(db: DatabaseConnection, commits: Commits) -> Self {
        Self { conn: db.into(), partner: None, commits, known: None }
    }

    /// The writer of one caller. When the caller is a partner, each transaction starts by reading
    /// the partner's row as it stands and refuses with `PARTNER_SUSPENDED` (R17) when it is
    /// suspended: the principal's copy of the row may come from the tenant cache (`auth::cache`)
    /// and be seconds old, so writes never rely on it.
    pub fn for_principal(conn: RequestConnection, principal: &Principal, commits: Commits) -> Self {
        let partner = match &principal.tenant {
            Tenant::Partner(p) => Some(p.id),
            _ => None,
        };
        Self { conn, partner, commits, known: None }
    }

    /// This writer keeps the subscription rows it reads and writes in `known`, the instance's, and
    /// may change a subscription in one statement when the caller names a kept version ([`known`]).
    pub fn with_known_rows(mut self, known: Arc<KnownRows>) -> Self {
        self.known = Some(known);
        self
    }

    /// The instance's kept subscription rows, if this writer uses them.
    pub fn known(&self) -> Option<&KnownRows> {
        self.known.as_deref()
    }

    /// Runs `work` in one transaction: committed when it succeeds, rolled back when it fails (so a
    /// failed mutation leaves no change, audit event, outbox event or idempotency record). On
    /// SQLite the transaction takes the write lock up front, so concurrent writers queue instead
    /// of failing.
    ///
    /// Cancellation: `BEGIN`, `COMMIT` and `ROLLBACK` each run in a task of their own, so dropping
    /// this future (a client gone, a timeout) never cuts one of them half-way, which would leave the
    /// connection's state unknown to the driver (a `BEGIN` the server ran but the driver never
    /// counted leaves the pooled connection inside a transaction; a `COMMIT` cut after sending is
    /// followed by a needless `ROLLBACK`). Dropped while `work` runs, the transaction is rolled back
    /// before its connection returns to the pool (the driver queues the `ROLLBACK`, and the pool
    /// flushes it on release); the pool checks the connection again before handing it out
    /// (`db::connect`).
    pub async fn write<T, F>(&self, work: F) -> ApiResult<T>
    where
        T: Send,
        F: for<'a> FnOnce(&'a DatabaseTransaction) -> TxFuture<'a, T> + Send,
    {
        self.transaction(true, work).await
    }

    /// SQLite: runs `work`, a write made of one script holding its own transaction
    /// ([`crate::db::sqlite_script`]), in this server's write turn and in a task of its own, so it
    /// completes even when the caller stops waiting; wakes the event feed when it wrote (`Some`).
    pub async fn write_script<T, F>(&self, work: F) -> ApiResult<Option<T>>
    where
        T: Send + 'static,
        F: FnOnce(RequestConnection) -> futures_util::future::BoxFuture<'static, ApiResult<Option<T>>> + Send + 'static,
    {
        self.conn.give_back().await;
        let turn = self.conn.write_turn().await;
        let conn = self.conn.clone();
        // The operation's statement counter (for `/metrics`) goes along into the task.
        let counter = crate::metrics::current_statement_counter().unwrap_or_else(crate::metrics::statement_counter);
        let written = uncancellable(
            "a write script",
            crate::metrics::counting_statements(counter, async move {
                let _turn = turn;
                work(conn).await
            }),
        )
        .await??;
        if written.is_some() {
            self.commits.committed();
        }
        Ok(written)
    }

    /// [`Writer::write`] for work whose caller has judged R17 already, from the partner's row as it
    /// stood just before (read with the row the work changes, [`Writer::load_for_write`]): the
    /// transaction holds SQLite's write lock for one statement less. The same guarantee as a write
    /// made of one statement outside a transaction on PostgreSQL
    /// (`subscriptions::change_with_reads_first`).
    pub async fn write_judged<T, F>(&self, work: F) -> ApiResult<T>
    where
        T: Send,
        F: for<'a> FnOnce(&'a DatabaseTransaction) -> TxFuture<'a, T> + Send,
    {
        self.transaction(false, work).await
    }

    async fn transaction<T, F>(&self, check_partner: bool, work: F) -> ApiResult<T>
    where
        T: Send,
        F: for<'a> FnOnce(&'a DatabaseTransaction) -> TxFuture<'a, T> + Send,
    {
        let options = TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..TransactionOptions::default()
        };
        // Never wait for the pool while keeping a connection (see `db::RequestConnection`).
        self.conn.give_back().await;
        // On SQLite, wait for this request's turn at writing before taking a connection
        // (`db::WriteTurns`); held until the transaction has ended.
        let _turn = self.conn.write_turn().await;
        let db = self.conn.pool().clone();
        let txn = uncancellable("BEGIN", async move { db.begin_with_options(options).await }).await??;
        let partner = self.partner.filter(|_| check_partner);
        let result = async {
            if let Some(id) = partner {
                fresh_partner_not_suspended(&txn, id).await?;
            }
            work(&txn).await
        }
        .await;
        match result {
            Ok(value) => {
                uncancellable("COMMIT", txn.commit()).await?.map_err(commit_error)?;
                // The live event feed of this instance looks at the outbox again.
                self.commits.committed();
                Ok(value)
            }
            Err(err) => {
                // A failed rollback drops the transaction, which queues another (or the
                // connection is broken and the pool closes it): the caller gets its error.
                if let Err(rollback) = uncancellable("ROLLBACK", txn.rollback()).await? {
                    tracing::warn!(error = %rollback, "rollback failed");
                }
                Err(err)
            }
        }
    }

    /// The connection of reads outside a transaction and of writes made of one statement
    /// (`subscriptions::change` on PostgreSQL): a request's own (`db::RequestConnection`), or the
    /// pool for code outside a request (the lifecycle runner, the demo).
    pub fn connection(&self) -> &RequestConnection {
        &self.conn
    }

    /// Tells this instance's event feed that a write made of one statement outside a transaction
    /// (committed when it returned) may have written outbox rows, as [`Writer::write`] does after
    /// a commit.
    pub fn committed(&self) {
        self.commits.committed();
    }

    /// [`Actor::load`] and [`Writer::partner_not_suspended`] in one statement, for a write made of
    /// one statement outside a transaction: the row the caller may see (R1, else `NOT_FOUND`) read
    /// together with the status of the calling partner's row as it stands now (R17). R17 is
    /// judged first, as the two separate reads do: when no row comes back, the partner's row is
    /// read on its own to tell `PARTNER_SUSPENDED` from `NOT_FOUND`.
    pub async fn load_for_write<E: Visible>(&self, actor: &Actor, id: Uuid, what: &str) -> ApiResult<E::Model> {
        use sea_orm::ConnectionTrait;
        let Some(partner_id) = self.partner else {
            return actor.load::<E>(&self.conn, id, what).await;
        };
        let statement =
            load_for_write_statement::<E>(self.conn.get_database_backend(), actor.scope, partner_id, id, None);
        let row = self.conn.query_one_raw(statement).await?;
        let Some(row) = row else {
            self.partner_not_suspended().await?;
            return Err(ApiError::not_found(what));
        };
        let status: Option<String> = row.try_get("", PARTNER_STATUS)?;
        match status.as_deref().and_then(entity::enums::PartnerStatus::from_text) {
            Some(status) => rules::r17_status_allows_writes(status)?,
            None => return Err(unknown_tenant()),
        }
        Ok(E::decode(&row)?)
    }

    /// What a write made of one statement checks as it writes, for a calling partner: the read of
    /// [`Writer::load_for_write`] (the row under the caller's visibility, R1, with the partner's
    /// status as it stands, R17), and that it admits the write. `None` for other callers.
    pub fn write_guard<E: Visible>(&self, actor: &Actor, id: Uuid) -> Option<WriteGuard> {
        self.guard::<E>(actor, id, None)
    }

    /// [`Writer::write_guard`] for a row of a customer's that the calling partner changes as its
    /// delegated admin (R10, a subscription bought elsewhere): the read also tells whether the
    /// partner holds, as it stands, an ACTIVE unexpired delegated-admin relationship granting
    /// `admin_agent` with the customer in the row's column `customer` (`rules::delegated_admin_grant`,
    /// the same condition the ordinary path reads), and admits the write only if it does.
    pub fn write_guard_delegated<E: Visible>(
        &self,
        actor: &Actor,
        id: Uuid,
        customer: E::Column,
    ) -> Option<WriteGuard> {
        self.guard::<E>(actor, id, Some(customer))
    }

    fn guard<E: Visible>(&self, actor: &Actor, id: Uuid, delegated: Option<E::Column>) -> Option<WriteGuard> {
        use sea_orm::ConnectionTrait;
        let partner_id = self.partner?;
        let backend = self.conn.get_database_backend();
        let scope = actor.scope;
        // The same for every write: built once (R17's statuses, and R10's grant when asked).
        static WRITABLE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            let writable: Vec<String> =
                rules::r17_statuses_allowing_writes().map(|s| format!("'{}'", s.as_str())).collect();
            format!("\"{PARTNER_STATUS}\" IN ({})", writable.join(", "))
        });
        static WRITABLE_AND_GRANTED: std::sync::LazyLock<String> =
            std::sync::LazyLock::new(|| format!("{} AND \"{DELEGATED_ADMIN}\"", WRITABLE.as_str()));
        let admits = if delegated.is_some() { &WRITABLE_AND_GRANTED } else { &WRITABLE };
        Some(WriteGuard {
            statement: load_for_write_statement::<E>(backend, scope, partner_id, id, delegated),
            query: Box::new(move || load_for_write_query::<E>(&scope, partner_id, id, delegated)),
            admits: admits.as_str(),
        })
    }

    /// R17 as [`Writer::write`] applies it, for a write made of one statement outside a
    /// transaction: the calling partner's row as it stands now.
    pub async fn partner_not_suspended(&self) -> ApiResult<()> {
        match self.partner {
            Some(id) => fresh_partner_not_suspended(&self.conn, id).await,
            None => Ok(()),
        }
    }
}

/// R17 from the partner's row as it stands, read inside the transaction (not from the principal's
/// copy, which may be cached).
async fn fresh_partner_not_suspended<C: sea_orm::ConnectionTrait>(txn: &C, id: Uuid) -> ApiResult<()> {
    use sea_orm::EntityTrait;
    let Some(partner) = entity::partner::Entity::find_by_id(id).one(txn).await? else {
        return Err(unknown_tenant());
    };
    rules::r17_not_suspended(&partner)
}

/// The column [`Writer::load_for_write`] reads the calling partner's status into.
const PARTNER_STATUS: &str = "ph_partner_status";

/// The column [`Writer::write_guard_delegated`] reads whether the partner is the customer's
/// delegated `admin_agent` into.
const DELEGATED_ADMIN: &str = "ph_delegated_admin";

/// The read of [`Writer::load_for_write`]: the row `id` if `scope` sees it, with the status of
/// partner `partner_id` in [`PARTNER_STATUS`] and, given the row's customer column, whether the
/// partner is that customer's delegated `admin_agent` in [`DELEGATED_ADMIN`].
fn load_for_write_query<E: Visible>(
    scope: &Scope,
    partner_id: Uuid,
    id: Uuid,
    delegated: Option<E::Column>,
) -> sea_orm::sea_query::SelectStatement {
    use sea_orm::sea_query::{Expr, Query};
    use sea_orm::{ColumnTrait, QuerySelect, QueryTrait};
    let status = Query::select()
        .column(entity::partner::Column::Status)
        .from(entity::partner::Entity)
        .and_where(entity::partner::Column::Id.eq(partner_id))
        .to_owned();
    let mut read = E::visible_named(scope)
        .filter(E::id_column().eq(id))
        .expr_as(Expr::SubQuery(None, Box::new(status.into())), PARTNER_STATUS);
    if let Some(customer) = delegated {
        let grant = Query::select()
            .expr(Expr::val(1))
            .from(entity::relationship::Entity)
            .cond_where(rules::delegated_admin_grant(
                partner_id,
                Expr::col((E::default(), customer)),
                crate::auth::Role::AdminAgent,
                scope.now(),
            ))
            .to_owned();
        read = read.expr_as(Expr::exists(grant), DELEGATED_ADMIN);
    }
    read.limit(1).into_query()
}

/// [`load_for_write_query`] as a statement, built once per shape (`access::template`): the
/// partner, the row's id and the clock are its only values.
fn load_for_write_statement<E: Visible>(
    backend: sea_orm::DbBackend,
    scope: Scope,
    partner_id: Uuid,
    id: Uuid,
    delegated: Option<E::Column>,
) -> sea_orm::Statement {
    use crate::access::template;
    let args = template::Args { scope, ids: vec![partner_id, id], ints: Vec::new() };
    let what = if delegated.is_some() { "load_for_write_delegated" } else { "load_for_write" };
    let shape = template::Shape { what, by: "id", entity: std::any::TypeId::of::<E>(), ids: 2 };
    template::statement(backend, shape, &args, |args| {
        backend.build(&load_for_write_query::<E>(&args.scope, args.ids[0], args.ids[1], delegated))
    })
}

/// A read a write made of one statement runs first and depends on ([`Writer::write_guard`]):
/// the write applies only if `statement` returns a row that `admits` holds for.
pub struct WriteGuard {
    /// The read, as built for this call (its SQL, and its values first among the write's).
    pub statement: sea_orm::Statement,
    /// The same read as a query, for building the write's SQL.
    pub query: Box<dyn Fn() -> sea_orm::sea_query::SelectStatement + Send + Sync>,
    /// A condition on the read's columns, as SQL without values.
    pub admits: &'static str,
}

/// The calling partner's row is gone.
fn unknown_tenant() -> ApiError {
    ApiError::new(Code::UnknownTenant, "the token's tenant (`tid`) is not known to this server")
}

/// Runs a transaction-control statement to completion in its own task, even when the caller stops
/// waiting (see [`Writer::write`]).
async fn uncancellable<T: Send + 'static>(
    what: &'static str,
    statement: impl Future<Output = T> + Send + 'static,
) -> ApiResult<T> {
    tokio::spawn(statement)
        .await
        .map_err(|err| ApiError::internal(anyhow::anyhow!("the task running {what} failed: {err}")))
}

fn commit_error(err: DbErr) -> ApiError {
    ApiError::internal(anyhow::anyhow!(err).context("commit failed"))
}

/// Whether a database error is a unique-constraint violation (on either backend).
pub fn is_unique_violation(err: &DbErr) -> bool {
    matches!(err.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_)))
}

/// Runs a statement, turning a unique violation into `code` with `message`.
pub async fn on_unique<T>(
    result: impl Future<Output = Result<T, DbErr>>,
    code: Code,
    message: impl Into<String>,
) -> ApiResult<T> {
    match result.await {
        Ok(value) => Ok(value),
        Err(err) if is_unique_violation(&err) => Err(ApiError::new(code, message)),
        Err(err) => Err(err.into()),
    }
}
