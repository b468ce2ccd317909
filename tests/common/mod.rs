//! Test harness: a fresh database per test (a SQLite file, or a PostgreSQL database when
//! `PARTNERHUB_TEST_DATABASE_URL` is set), the app driven in-process with `oneshot`, and helpers.

#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use partnerhub::auth::jwt::{Claims, mint_hs256};
use partnerhub::clock::Clock;
use partnerhub::config::Settings;
use partnerhub::seed::Seed;
use partnerhub::state::AppState;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use serde_json::{Value, json};
use tower::ServiceExt;
use uuid::Uuid;

pub const SECRET: &str = "test-secret-0123456789abcdef0123456789abcdef";

/// Where this test's database lives, and how to remove it.
enum DbHandle {
    Sqlite(std::path::PathBuf),
    Postgres { admin_url: String, name: String },
}

impl Drop for DbHandle {
    fn drop(&mut self) {
        match self {
            DbHandle::Sqlite(path) => {
                for suffix in ["", "-wal", "-shm", "-journal"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            }
            DbHandle::Postgres { admin_url, name } => {
                let (admin_url, name) = (admin_url.clone(), name.clone());
                let _ = std::thread::spawn(move || {
                    let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
                    rt.block_on(async {
                        if let Ok(admin) = Database::connect(admin_url).await {
                            let _ = admin
                                .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                                .await;
                            let _ = admin.close().await;
                        }
                    });
                })
                .join();
            }
        }
    }
}

/// Which database the suite runs on.
pub fn backend() -> &'static str {
    match std::env::var("PARTNERHUB_TEST_DATABASE_URL") {
        Ok(url) if url.starts_with("postgres") => "postgres",
        _ => "sqlite",
    }
}

/// A fresh, empty database: its URL, and the handle that removes it when dropped.
async fn fresh_database_url() -> (String, DbHandle) {
    let name = format!("ph_test_{}", Uuid::new_v4().simple());
    match std::env::var("PARTNERHUB_TEST_DATABASE_URL") {
        Ok(admin_url) if admin_url.starts_with("postgres") => {
            let admin = Database::connect(admin_url.clone()).await.expect("connect to PARTNERHUB_TEST_DATABASE_URL");
            admin.execute_unprepared(&format!("CREATE DATABASE \"{name}\"")).await.expect("create test database");
            admin.close().await.expect("close admin connection");
            let base = match admin_url.rfind('/') {
                Some(i) if admin_url[..i].contains("://") && i > admin_url.find("://").unwrap_or(0) + 2 => {
                    &admin_url[..i]
                }
                _ => admin_url.as_str(),
            };
            (format!("{base}/{name}"), DbHandle::Postgres { admin_url, name })
        }
        _ => {
            let path = std::env::temp_dir().join(format!("{name}.db"));
            (format!("sqlite://{}?mode=rwc", path.display()), DbHandle::Sqlite(path))
        }
    }
}

async fn fresh_database() -> (DatabaseConnection, DbHandle) {
    let (url, handle) = fresh_database_url().await;
    let db = partnerhub::db::connect(&url).await.expect("connect to test database");
    (db, handle)
}

/// An empty database of the backend under test (no schema), for tests that run the server binary
/// against it; removed when dropped.
pub struct ScratchDatabase {
    pub url: String,
    _handle: DbHandle,
}

impl ScratchDatabase {
    pub async fn new() -> Self {
        let (url, handle) = fresh_database_url().await;
        Self { url, _handle: handle }
    }
}

/// The app under test, with its database.
pub struct TestApp {
    pub router: Router,
    pub state: AppState,
    pub db: DatabaseConnection,
    pub settings: Settings,
    pub clock: Clock,
    /// SQL statements issued since the app was built (all connections).
    pub statements: Arc<AtomicUsize>,
    /// The database's URL (for a second server on the same database).
    pub url: String,
    _handle: DbHandle,
}

pub fn init_test_log() {
    if std::env::var("TEST_LOG").is_ok() {
        partnerhub::telemetry::init();
    }
}

impl TestApp {
    pub async fn new() -> Self {
        Self::with_settings(Settings::development(SECRET)).await
    }

    pub async fn with_settings(settings: Settings) -> Self {
        Self::build(settings, None).await
    }

    /// The app with a database pool of at most `connections` connections.
    pub async fn with_pool_size(connections: u32) -> Self {
        Self::with_settings_and_pool_size(Settings::development(SECRET), connections).await
    }

    /// The app with `settings` and a database pool of at most `connections` connections.
    pub async fn with_settings_and_pool_size(settings: Settings, connections: u32) -> Self {
        Self::build(settings, Some(connections)).await
    }

    async fn build(settings: Settings, pool_size: Option<u32>) -> Self {
        init_test_log();
        let (url, handle) = fresh_database_url().await;
        let mut db = partnerhub::db::connect_with_pool_size(&url, pool_size).await.expect("connect to test database");
        partnerhub::db::migrate_up(&db).await.expect("migrate");
        let statements = Arc::new(AtomicUsize::new(0));
        let counter = statements.clone();
        // `TEST_PRINT_SQL=1` prints the first 150 characters of each statement, `=full` all of it.
        let print_sql = std::env::var("TEST_PRINT_SQL").ok().map(|v| if v == "full" { usize::MAX } else { 150 });
        // Every statement, on the pool or on a request's kept connection (`db::RequestConnection`).
        let observe: partnerhub::db::StatementCallback = Arc::new(move |statement| {
            counter.fetch_add(1, Ordering::SeqCst);
            partnerhub::metrics::statement_issued();
            if let Some(width) = print_sql {
                let sql = statement.sql.clone();
                let end = sql.char_indices().nth(width).map_or(sql.len(), |(at, _)| at);
                eprintln!("SQL[{}]: {}", statement.values.as_ref().map_or(0, |v| v.0.len()), &sql[..end]);
            }
        });
        let on_pool = observe.clone();
        db.set_metric_callback(move |info| on_pool(info.statement));
        let clock = Clock::system();
        let state = AppState::with_statement_callback(db.clone(), settings.clone(), clock.clone(), Some(observe))
            .expect("state");
        let router = partnerhub::app(state.clone());
        Self { router, state, db, settings, clock, statements, url, _handle: handle }
    }

    /// Direct inserts (no business rules) for building worlds.
    pub fn seed(&self) -> Seed<'_, DatabaseConnection> {
        Seed::new(&self.db, self.clock.now())
    }

    pub fn platform(&self) -> Uuid {
        self.settings.platform_tenant
    }

    /// A valid HS256 token for `tenant` with `roles`.
    pub fn token(&self, tenant: Uuid, roles: &[&str]) -> String {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            tid: tenant,
            sub: "test-user".into(),
            exp: now + 3600,
            roles: roles.iter().map(|r| r.to_string()).collect(),
            nbf: None,
            iat: Some(now),
        };
        mint_hs256(SECRET, &claims).expect("mint")
    }

    /// Sends a request; returns status, headers and the body (JSON when it parses, else a string).
    pub async fn send(&self, request: Request<Body>) -> (StatusCode, HeaderMap, Value) {
        let response = self.router.clone().oneshot(request).await.expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.expect("body").to_bytes();
        let body =
            serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
        (status, headers, body)
    }

    /// POSTs a GraphQL operation with an optional bearer token; returns the JSON body.
    pub async fn gql_as(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let (status, _, body) = self.send(graphql_post(token, None, query, variables)).await;
        assert!(status.is_success() || status.is_client_error(), "unexpected status {status}: {body}");
        body
    }

    /// Sends `requests` (token, query, variables) at once, each from its own task (so they run in
    /// parallel on a multi-thread runtime); answers in the same order.
    pub async fn concurrently(&self, requests: Vec<(String, String, Value)>) -> Vec<Value> {
        let tasks: Vec<_> = requests
            .into_iter()
            .map(|(token, query, variables)| {
                let request = graphql_post(Some(&token), None, &query, variables);
                tokio::spawn(json_answer(self.router.clone(), request))
            })
            .collect();
        let mut out = Vec::new();
        for task in tasks {
            out.push(task.await.expect("task"));
        }
        out
    }

    /// Like [`gql_as`], with an `X-Request-Id` header.
    pub async fn gql_with_request_id(&self, token: &str, request_id: &str, query: &str, variables: Value) -> Value {
        self.send(graphql_post(Some(token), Some(request_id), query, variables)).await.2
    }

    pub async fn post_raw(&self, token: Option<&str>, accept: &str, body: Value) -> (StatusCode, String) {
        let mut builder = Request::post("/graphql").header("content-type", "application/json").header("accept", accept);
        if let Some(token) = token {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        let response = self
            .router
            .clone()
            .oneshot(builder.body(Body::from(body.to_string())).expect("request"))
            .await
            .expect("infallible");
        let status = response.status();
        let bytes = response.into_body().collect().await.expect("body").to_bytes();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    pub async fn data(&self, token: &str, query: &str, variables: Value) -> Value {
        let body = self.gql_as(Some(token), query, variables).await;
        assert!(body.get("errors").is_none(), "unexpected errors: {body}");
        body["data"].clone()
    }

    pub fn statement_count(&self) -> usize {
        self.statements.load(Ordering::SeqCst)
    }
}

/// The `extensions.code` of the first error.
/// `POST /graphql` of `query` with `variables` (JSON in and out), as `token` when given, with an
/// `X-Request-Id` when given.
pub fn graphql_post(token: Option<&str>, request_id: Option<&str>, query: &str, variables: Value) -> Request<Body> {
    let mut builder =
        Request::post("/graphql").header("content-type", "application/json").header("accept", "application/json");
    if let Some(token) = token {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    if let Some(request_id) = request_id {
        builder = builder.header("x-request-id", request_id);
    }
    let body = json!({"query": query, "variables": variables}).to_string();
    builder.body(Body::from(body)).expect("request")
}

/// Runs `request` through `router` (owned, so it can run in a task of its own); the JSON answer.
pub async fn json_answer(router: Router, request: Request<Body>) -> Value {
    let response = router.oneshot(request).await.expect("infallible");
    let bytes = response.into_body().collect().await.expect("body").to_bytes();
    serde_json::from_slice(&bytes).expect("a JSON answer")
}

pub fn error_code(body: &Value) -> Option<&str> {
    body["errors"][0]["extensions"]["code"].as_str()
}

/// Percent-encodes `text` for a query string (every byte but the unreserved ones).
pub fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
