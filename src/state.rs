//! Shared state of a running server.

use std::sync::Arc;

use sea_orm::DatabaseConnection;

use crate::auth::{TenantCache, Verifier};
use crate::clock::Clock;
use crate::config::Settings;
use crate::graphql::budget::Budgets;
use crate::graphql::validated::Validated;
use crate::graphql::{AppSchema, build_execution_schema, build_fast_check_schema, build_schema};

/// Everything handlers share; cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub db: DatabaseConnection,
    /// The schema with the cost guard: every operation is checked (bounds, depth, cost, budget) here.
    pub schema: AppSchema,
    /// The same guard, validating in fast mode: for documents in `validated` whose variables cannot
    /// change the outcome of the full validation (`graphql::validated`).
    pub fast_check_schema: AppSchema,
    /// The documents that passed the full validation on `schema`.
    pub validated: Arc<Validated>,
    /// The same schema without the guard: HTTP operations run here once checked (see
    /// `graphql::build_execution_schema`).
    pub exec_schema: AppSchema,
    pub verifier: Verifier,
    pub settings: Settings,
    pub clock: Clock,
    /// Resolved tenants, for `settings.tenant_cache_ttl` (`auth::cache`).
    pub tenants: Arc<TenantCache>,
    /// Cancelled when the server starts shutting down (SIGTERM/SIGINT): background workers stop
    /// between units of work, WebSockets close with 1001, the listener stops accepting.
    pub shutdown: tokio_util::sync::CancellationToken,
    /// The live event feed of this instance (started by `serve`, or by the first subscriber).
    pub feed: Arc<crate::events::feed::Feed>,
    /// WebSockets open on this instance, bounded by `settings.limits.ws_max_sockets`.
    pub ws_sockets: Arc<tokio::sync::Semaphore>,
    /// Sees the statements a request runs on its kept connection (`db::StatementCallback`).
    pub on_statement: Option<crate::db::StatementCallback>,
    /// Connections requests finished with, for the next request (`db::WarmConnections`).
    pub warm: crate::db::WarmConnections,
    /// Turns at writing, on SQLite (`db::WriteTurns`).
    pub write_turns: crate::db::WriteTurns,
    /// Subscription rows kept for one-statement changes (`domain::known`).
    pub known: Arc<crate::domain::known::KnownRows>,
}

impl AppState {
    /// Builds the state; fails when no JWT key is configured.
    pub fn new(db: DatabaseConnection, settings: Settings, clock: Clock) -> anyhow::Result<Self> {
        Self::with_statement_callback(db, settings, clock, None)
    }

    /// [`AppState::new`], with a callback for [`Inner::on_statement`] (tests count statements).
    pub fn with_statement_callback(
        db: DatabaseConnection,
        settings: Settings,
        clock: Clock,
        on_statement: Option<crate::db::StatementCallback>,
    ) -> anyhow::Result<Self> {
        let verifier = Verifier::new(settings.auth.clone())?;
        crate::metrics::install();
        let budgets = Arc::new(Budgets::new(settings.limits.budgets));
        let schema = build_schema(&settings.limits, budgets.clone());
        let fast_check_schema = build_fast_check_schema(&settings.limits, budgets);
        let exec_schema = build_execution_schema();
        let tenants = Arc::new(TenantCache::new(settings.tenant_cache_ttl, crate::auth::cache::DEFAULT_CAPACITY));
        let shutdown = tokio_util::sync::CancellationToken::new();
        let feed = Arc::new(crate::events::feed::Feed::new(db.clone(), clock.clone(), shutdown.clone(), settings.feed));
        let ws_sockets = Arc::new(tokio::sync::Semaphore::new(settings.limits.ws_max_sockets));
        let warm = crate::db::WarmConnections::new(&db);
        let write_turns = crate::db::WriteTurns::new(&db);
        Ok(Self(Arc::new(Inner {
            db,
            schema,
            fast_check_schema,
            validated: Arc::default(),
            exec_schema,
            verifier,
            settings,
            clock,
            tenants,
            shutdown,
            feed,
            ws_sockets,
            on_statement,
            warm,
            write_turns,
            known: Arc::default(),
        })))
    }
}

impl std::ops::Deref for AppState {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}
