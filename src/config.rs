//! Runtime settings of a server, gathered from the CLI and the environment (see `cli.rs`).

use std::net::SocketAddr;

use uuid::Uuid;

use crate::auth::AuthConfig;

/// Default platform tenant, used when `PARTNERHUB_PLATFORM_TENANT` is not set.
pub const DEFAULT_PLATFORM_TENANT: Uuid = Uuid::from_u128(0x0000_0000_0000_4000_8000_0000_0000_0001);

/// Everything a running server needs to know.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub platform_tenant: Uuid,
    pub auth: AuthConfig,
    pub limits: Limits,
    /// `PARTNERHUB_CANCELLATION_WINDOW_HOURS` (R11).
    pub cancellation_window_hours: i64,
    /// Allowed CORS origins; empty: no cross-origin access.
    pub cors_origins: Vec<String>,
    /// `PARTNERHUB_TENANT_CACHE_SECS`: how long a resolved tenant is reused (zero: not cached).
    pub tenant_cache_ttl: std::time::Duration,
    /// `PARTNERHUB_METRICS_TOKEN`: when set, `/metrics` asks for it as a bearer token.
    pub metrics_token: Option<String>,
    /// Webhook registration checks and delivery timing (`docs/webhooks.md`).
    pub webhooks: WebhookSettings,
    /// The live event feed's poll interval and buffer (not configurable from the CLI: the defaults
    /// are production's; tests change them).
    pub feed: crate::events::feed::FeedSettings,
}

/// Webhooks: which endpoints may be registered, and how deliveries are sent and retried.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// `PARTNERHUB_WEBHOOK_ALLOW_PRIVATE`: allow `http` URLs and loopback/private targets (tests,
    /// development). Off in production: endpoints must be `https` on public addresses.
    pub allow_private: bool,
    /// `PARTNERHUB_WEBHOOK_POLL_MS`: how often the worker looks for new events and due deliveries.
    pub poll_interval: std::time::Duration,
    /// `PARTNERHUB_WEBHOOK_BACKOFF_BASE_MS`: the first retry waits up to this long (full jitter),
    /// doubling with each failed attempt up to `backoff_cap`.
    pub backoff_base: std::time::Duration,
    /// `PARTNERHUB_WEBHOOK_BACKOFF_CAP_SECS`: the longest wait between two attempts.
    pub backoff_cap: std::time::Duration,
    /// `PARTNERHUB_WEBHOOK_DEADLINE_SECS`: how long after the event a delivery is still retried.
    pub deadline: std::time::Duration,
    /// `PARTNERHUB_WEBHOOK_LEASE_SECS`: how long a claimed delivery belongs to the instance that
    /// claimed it (longer than one send); after that another instance may send it again.
    pub lease: std::time::Duration,
    /// Time allowed to connect to an endpoint.
    pub connect_timeout: std::time::Duration,
    /// Time allowed for a whole request (connect, send, response headers and excerpt).
    pub request_timeout: std::time::Duration,
    /// Most live webhooks per tenant.
    pub max_per_tenant: u64,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            allow_private: false,
            poll_interval: std::time::Duration::from_millis(500),
            backoff_base: std::time::Duration::from_secs(5),
            backoff_cap: std::time::Duration::from_secs(3600),
            deadline: std::time::Duration::from_secs(24 * 3600),
            lease: std::time::Duration::from_secs(60),
            connect_timeout: std::time::Duration::from_secs(5),
            request_timeout: std::time::Duration::from_secs(10),
            max_per_tenant: 20,
        }
    }
}

/// Request limits (`docs/limits.md`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_depth: usize,
    pub max_complexity: usize,
    pub max_page_size: u64,
    pub default_page_size: u64,
    pub max_body_bytes: usize,
    /// Most ids accepted by `nodes(ids:)`.
    pub max_node_ids: usize,
    /// Largest response body; a bigger one is replaced by an error.
    pub max_response_bytes: usize,
    /// Longest a request may run; a read past it is stopped.
    pub request_timeout: std::time::Duration,
    /// Longest a client may take to send a request's whole body (answered 408 after).
    pub body_read_timeout: std::time::Duration,
    /// Most requests handled at once; more are answered 503 at once.
    pub max_in_flight: usize,
    /// Per-tenant cost budgets.
    pub budgets: crate::graphql::budget::BudgetSettings,
    /// WebSocket: longest wait for `connection_init` before closing with 4408.
    pub ws_init_timeout: std::time::Duration,
    /// WebSocket: most operations running at once on one socket.
    pub ws_max_operations: usize,
    /// WebSocket: most sockets open at once on this instance (more are refused with 503).
    pub ws_max_sockets: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_depth: 12,
            // Cost points: connections count `first` × their selection (see graphql::cost). A page of
            // 50 customers with 10 subscriptions each costs about 3,000.
            max_complexity: 10_000,
            max_page_size: 100,
            default_page_size: 20,
            max_body_bytes: 1024 * 1024,
            max_node_ids: 100,
            max_response_bytes: 16 * 1024 * 1024,
            request_timeout: std::time::Duration::from_secs(30),
            body_read_timeout: std::time::Duration::from_secs(15),
            max_in_flight: 512,
            budgets: crate::graphql::budget::BudgetSettings::default(),
            ws_init_timeout: std::time::Duration::from_secs(10),
            ws_max_operations: 100,
            ws_max_sockets: 10_000,
        }
    }
}

impl Settings {
    /// Settings for tests and the demo: a fixed development secret.
    pub fn development(secret: &str) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            platform_tenant: DEFAULT_PLATFORM_TENANT,
            auth: AuthConfig { hs256_secret: Some(secret.to_owned()), leeway_secs: 30, ..AuthConfig::default() },
            limits: Limits::default(),
            cancellation_window_hours: 168,
            cors_origins: Vec::new(),
            tenant_cache_ttl: crate::auth::cache::DEFAULT_TTL,
            metrics_token: None,
            webhooks: WebhookSettings::default(),
            feed: crate::events::feed::FeedSettings::default(),
        }
    }
}
