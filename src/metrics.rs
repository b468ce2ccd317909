//! Prometheus metrics (`GET /metrics`), through the `metrics` facade: code anywhere records with
//! `metrics::counter!`/`gauge!`/`histogram!`, and [`install`] sets the process-wide recorder that
//! renders them in the Prometheus text format (`metrics-exporter-prometheus`, without its own HTTP
//! listener: the API's router serves the page).
//!
//! Labels never carry a tenant id, a subject or anything a client chooses freely: a label's values
//! are bounded by the schema (operation type, root field) and the error codes.
//!
//! The series (the README lists them with their meaning):
//! - `partnerhub_graphql_requests_total{type, field, outcome}` and
//!   `partnerhub_graphql_request_duration_seconds{type}`: GraphQL operations over HTTP;
//! - `partnerhub_sql_statements_per_request{type}`: SQL statements issued by one operation;
//! - `partnerhub_db_pool_connections{state="in_use"|"idle"|"max"}`: the database pool, at scrape time;
//! - `partnerhub_websockets_open`, `partnerhub_events_delivered_total{transport}`,
//!   `partnerhub_webhook_attempts_total{outcome}`, `partnerhub_outbox_lag_seconds`: events.

use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use sea_orm::{DatabaseConnection, DatabaseConnectionType};

/// Request latency buckets, in seconds.
const LATENCY_BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
/// Statements-per-request buckets.
const STATEMENT_BUCKETS: &[f64] = &[0.0, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0, 32.0, 64.0];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide recorder once (later calls reuse it). `None` when another recorder
/// was installed first (an embedding application's): then `/metrics` answers 404.
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_duration_seconds".into()), LATENCY_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("partnerhub_sql_statements_per_request".into()),
                        STATEMENT_BUCKETS,
                    )
                });
            match builder.map(PrometheusBuilder::install_recorder) {
                Ok(Ok(handle)) => {
                    describe();
                    Some(handle)
                }
                Ok(Err(err)) | Err(err) => {
                    tracing::warn!(error = %err, "metrics recorder not installed; /metrics is off");
                    None
                }
            }
        })
        .as_ref()
}

/// Help texts, and every event series at zero, so that a scrape shows them before the first
/// event (a dashboard or an alert on a series that does not exist yet sees nothing).
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "partnerhub_graphql_requests_total",
        "GraphQL operations over HTTP, by type, root field and outcome"
    );
    describe_histogram!("partnerhub_graphql_request_duration_seconds", "Time to answer a GraphQL operation over HTTP");
    describe_histogram!("partnerhub_sql_statements_per_request", "SQL statements issued by one GraphQL operation");
    describe_gauge!("partnerhub_db_pool_connections", "Database pool connections, by state, at scrape time");
    describe_gauge!("partnerhub_websockets_open", "Open /graphql/ws connections");
    describe_counter!(
        "partnerhub_events_delivered_total",
        "Events handed to a WebSocket subscriber or delivered to a webhook"
    );
    describe_counter!("partnerhub_events_lagged_total", "WebSocket subscriptions ended because they fell behind");
    describe_counter!("partnerhub_webhook_attempts_total", "Webhook delivery attempts, by outcome");
    describe_gauge!("partnerhub_outbox_lag_seconds", "Age of the oldest outbox event not yet fanned out to webhooks");
    metrics::gauge!("partnerhub_websockets_open").increment(0.0);
    metrics::gauge!("partnerhub_outbox_lag_seconds").increment(0.0);
    for transport in ["websocket", "webhook"] {
        metrics::counter!("partnerhub_events_delivered_total", "transport" => transport).increment(0);
    }
    metrics::counter!("partnerhub_events_lagged_total", "transport" => "websocket").increment(0);
    for outcome in ["success", "failure"] {
        metrics::counter!("partnerhub_webhook_attempts_total", "outcome" => outcome).increment(0);
    }
}

/// The page `GET /metrics` serves: every series, with the pool's gauges read now. `warm`: the
/// connections held for the next request and the requests waiting for one (`db::WarmConnections`).
pub fn render(db: &DatabaseConnection, warm: &crate::db::WarmConnections) -> Option<String> {
    let handle = install()?;
    record_pool(db, warm);
    handle.run_upkeep();
    Some(handle.render())
}

fn record_pool(db: &DatabaseConnection, warm: &crate::db::WarmConnections) {
    fn counts<DB: sea_orm::sqlx::Database>(pool: &sea_orm::sqlx::Pool<DB>) -> (u32, usize, u32) {
        (pool.size(), pool.num_idle(), pool.options().get_max_connections())
    }
    let (size, idle, max) = match &db.inner {
        DatabaseConnectionType::SqlxPostgresPoolConnection(_) => counts(db.get_postgres_connection_pool()),
        DatabaseConnectionType::SqlxSqlitePoolConnection(_) => counts(db.get_sqlite_connection_pool()),
        _ => return,
    };
    // Idle: the pool's own, and those held warm (idle too, though the pool counts them in use).
    let idle = (idle + warm.len()) as f64;
    metrics::gauge!("partnerhub_db_pool_connections", "state" => "in_use").set((size as f64 - idle).max(0.0));
    metrics::gauge!("partnerhub_db_pool_connections", "state" => "idle").set(idle);
    metrics::gauge!("partnerhub_db_pool_connections", "state" => "max").set(max as f64);
    metrics::gauge!("partnerhub_db_requests_waiting").set(warm.waiting() as f64);
    metrics::counter!("partnerhub_db_connections_handed_on_total").absolute(warm.handed_on());
}

tokio::task_local! {
    /// The SQL statements of the operation running in this task (and in the loader tasks it spawns).
    static STATEMENTS: Arc<AtomicU64>;
}

/// Counts one SQL statement against the operation running in this task, if any. Called from the
/// database handle's statement callback (`db::connect`).
pub fn statement_issued() {
    let _ = STATEMENTS.try_with(|count| count.fetch_add(1, Ordering::Relaxed));
}

/// A fresh statement counter for one operation.
pub fn statement_counter() -> Arc<AtomicU64> {
    Arc::new(AtomicU64::new(0))
}

/// Runs `future` with `counter` counting its statements.
pub async fn counting_statements<F: Future>(counter: Arc<AtomicU64>, future: F) -> F::Output {
    STATEMENTS.scope(counter, future).await
}

/// The counter of the operation running in this task: what a task it spawns must carry along
/// (the per-request DataLoaders' spawner does).
pub fn current_statement_counter() -> Option<Arc<AtomicU64>> {
    STATEMENTS.try_with(Arc::clone).ok()
}

/// Records one GraphQL operation served over HTTP.
pub fn graphql_request(operation_type: &'static str, field: &str, outcome: &str, seconds: f64, statements: u64) {
    metrics::counter!(
        "partnerhub_graphql_requests_total",
        "type" => operation_type,
        "field" => field.to_owned(),
        "outcome" => outcome.to_owned()
    )
    .increment(1);
    metrics::histogram!("partnerhub_graphql_request_duration_seconds", "type" => operation_type).record(seconds);
    metrics::histogram!("partnerhub_sql_statements_per_request", "type" => operation_type).record(statements as f64);
}
