//! The command line: `serve`, `migrate`, `schema`, `token`. Every flag has an environment fallback
//! (the table in `docs/operations.md`).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use entity::enums::TenantKind;
use migration::{Migrator, MigratorTrait};
use uuid::Uuid;

use crate::auth::jwt::{Claims, mint_hs256};
use crate::auth::{AuthConfig, Role};
use crate::clock::Clock;
use crate::config::{DEFAULT_PLATFORM_TENANT, Limits, Settings};
use crate::db::{self, DEFAULT_DATABASE_URL};
use crate::demo;
use crate::graphql::budget::{BucketSettings, BudgetSettings};
use crate::state::AppState;

/// partnerhub: a multi-tenant GraphQL API server for cloud-reseller partner programs.
#[derive(Parser, Debug)]
#[command(name = "partnerhub", version, about)]
pub struct Cli {
    /// Database URL: `sqlite://file.db?mode=rwc` or `postgres://user@host/db`.
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL, global = true)]
    pub database_url: String,

    /// Most database connections held open (default: 20 on PostgreSQL, 4 on SQLite).
    #[arg(long, env = "PARTNERHUB_DB_POOL_SIZE", global = true, value_parser = clap::value_parser!(u32).range(1..))]
    pub db_pool_size: Option<u32>,

    #[command(subcommand)]
    pub command: Command,
}

// Parsed once per process: the size of the largest variant costs nothing worth boxing for.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run pending migrations, then serve the API.
    Serve(ServeArgs),
    /// Manage the database schema.
    Migrate {
        #[command(subcommand)]
        action: MigrateAction,
    },
    /// Print the GraphQL schema (SDL); `schema.graphql` is its output.
    Schema,
    /// Mint an HS256 token for local development.
    Token(TokenArgs),
}

#[derive(Subcommand, Debug)]
pub enum MigrateAction {
    /// Apply all pending migrations.
    Up,
    /// Roll back the last migrations.
    Down {
        /// How many to roll back.
        #[arg(long, default_value_t = 1)]
        steps: u32,
    },
    /// List migrations and whether they are applied.
    Status,
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "PARTNERHUB_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Load a demo world into an empty database and print a token per tenant (uses a development
    /// secret unless one is configured).
    #[arg(long)]
    pub demo: bool,
    #[command(flatten)]
    pub jwt: JwtArgs,
    /// The platform operator's tenant id.
    #[arg(long, env = "PARTNERHUB_PLATFORM_TENANT", default_value_t = DEFAULT_PLATFORM_TENANT)]
    pub platform_tenant: Uuid,
    /// Cancellation window of CSP license-based subscriptions, in hours (R11).
    #[arg(long, env = "PARTNERHUB_CANCELLATION_WINDOW_HOURS", default_value_t = 168)]
    pub cancellation_window_hours: i64,
    /// Origins allowed to call the API from a browser (comma separated).
    #[arg(long, env = "PARTNERHUB_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
    /// Deepest query accepted.
    #[arg(long, env = "PARTNERHUB_MAX_DEPTH", default_value_t = Limits::default().max_depth)]
    pub max_depth: usize,
    /// Most complex query accepted.
    #[arg(long, env = "PARTNERHUB_MAX_COMPLEXITY", default_value_t = Limits::default().max_complexity)]
    pub max_complexity: usize,
    /// Seconds between passes of the lifecycle runner (renewals and expiries, R16).
    #[arg(long, env = "PARTNERHUB_LIFECYCLE_INTERVAL_SECS", default_value_t = 30)]
    pub lifecycle_interval_secs: u64,
    /// Largest request body, in bytes.
    #[arg(long, env = "PARTNERHUB_MAX_BODY_BYTES", default_value_t = Limits::default().max_body_bytes)]
    pub max_body_bytes: usize,
    /// Largest response body, in bytes (a bigger one is replaced by an error).
    #[arg(long, env = "PARTNERHUB_MAX_RESPONSE_BYTES", default_value_t = Limits::default().max_response_bytes)]
    pub max_response_bytes: usize,
    /// Longest a request may run, in seconds.
    #[arg(long, env = "PARTNERHUB_REQUEST_TIMEOUT_SECS", default_value_t = Limits::default().request_timeout.as_secs())]
    pub request_timeout_secs: u64,
    /// Cost points a tenant's bucket holds (its largest burst); 0 turns tenant budgets off.
    #[arg(long, env = "PARTNERHUB_TENANT_BUDGET", default_value_t = BudgetSettings::default().tenant.capacity)]
    pub tenant_budget: u64,
    /// Cost points returned to a tenant's bucket per second.
    #[arg(long, env = "PARTNERHUB_TENANT_BUDGET_REFILL", default_value_t = BudgetSettings::default().tenant.refill_per_sec)]
    pub tenant_budget_refill: u64,
    /// Cost points an anonymous client's bucket holds (introspection); 0 turns them off.
    #[arg(long, env = "PARTNERHUB_ANONYMOUS_BUDGET", default_value_t = BudgetSettings::default().anonymous.capacity)]
    pub anonymous_budget: u64,
    /// Cost points returned to an anonymous client's bucket per second.
    #[arg(long, env = "PARTNERHUB_ANONYMOUS_BUDGET_REFILL", default_value_t = BudgetSettings::default().anonymous.refill_per_sec)]
    pub anonymous_budget_refill: u64,
    /// Most connections served at once; more wait in the kernel's accept queue.
    #[arg(long, env = "PARTNERHUB_MAX_CONNECTIONS", default_value_t = 1024)]
    pub max_connections: usize,
    /// Seconds a client may take to send a request's whole body (answered 408 after).
    #[arg(long, env = "PARTNERHUB_BODY_READ_TIMEOUT_SECS", default_value_t = Limits::default().body_read_timeout.as_secs())]
    pub body_read_timeout_secs: u64,
    /// Seconds a client may take to send a request's headers (and to start its next one).
    #[arg(long, env = "PARTNERHUB_HEADER_READ_TIMEOUT_SECS", default_value_t = 10)]
    pub header_read_timeout_secs: u64,
    /// Most requests handled at once; more are answered 503 at once.
    #[arg(long, env = "PARTNERHUB_MAX_IN_FLIGHT", default_value_t = Limits::default().max_in_flight)]
    pub max_in_flight: usize,
    /// Seconds a resolved tenant (the token's partner or customer row) is reused without reading
    /// it again; 0 turns the cache off. Writes always re-read the partner (R17).
    #[arg(long, env = "PARTNERHUB_TENANT_CACHE_SECS", default_value_t = crate::auth::cache::DEFAULT_TTL.as_secs())]
    pub tenant_cache_secs: u64,
    /// Bearer token `GET /metrics` asks for; unset: `/metrics` is open (keep it off the public network).
    #[arg(long, env = "PARTNERHUB_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
    /// Allow webhook endpoints on `http` and on loopback/private addresses (development, tests).
    #[arg(long, env = "PARTNERHUB_WEBHOOK_ALLOW_PRIVATE")]
    pub webhook_allow_private: bool,
    /// Milliseconds between passes of the webhook worker (new events, due deliveries).
    #[arg(long, env = "PARTNERHUB_WEBHOOK_POLL_MS", default_value_t = 500)]
    pub webhook_poll_ms: u64,
    /// First retry delay bound of a failed webhook delivery, in milliseconds (doubles per attempt, full jitter).
    #[arg(long, env = "PARTNERHUB_WEBHOOK_BACKOFF_BASE_MS", default_value_t = 5000)]
    pub webhook_backoff_base_ms: u64,
    /// Longest delay between two attempts of a webhook delivery, in seconds.
    #[arg(long, env = "PARTNERHUB_WEBHOOK_BACKOFF_CAP_SECS", default_value_t = 3600)]
    pub webhook_backoff_cap_secs: u64,
    /// How long after an event its webhook deliveries are still retried, in seconds.
    #[arg(long, env = "PARTNERHUB_WEBHOOK_DEADLINE_SECS", default_value_t = 86400)]
    pub webhook_deadline_secs: u64,
    /// How long an instance keeps a claimed webhook delivery before another may send it, in seconds (at least 30).
    #[arg(long, env = "PARTNERHUB_WEBHOOK_LEASE_SECS", default_value_t = 60)]
    pub webhook_lease_secs: u64,
    /// Seconds a WebSocket may take to send `connection_init` (closed with 4408 after).
    #[arg(long, env = "PARTNERHUB_WS_INIT_TIMEOUT_SECS", default_value_t = Limits::default().ws_init_timeout.as_secs())]
    pub ws_init_timeout_secs: u64,
    /// Most operations running at once on one WebSocket.
    #[arg(long, env = "PARTNERHUB_WS_MAX_OPERATIONS", default_value_t = Limits::default().ws_max_operations)]
    pub ws_max_operations: usize,
    /// Most WebSockets open at once on this instance; more are refused with 503.
    #[arg(long, env = "PARTNERHUB_WS_MAX_SOCKETS", default_value_t = Limits::default().ws_max_sockets)]
    pub ws_max_sockets: usize,
}

#[derive(Args, Debug, Clone)]
pub struct JwtArgs {
    /// HS256 secret.
    #[arg(long, env = "PARTNERHUB_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// JWKS URL (RS256/ES256 keys chosen by `kid`).
    #[arg(long, env = "PARTNERHUB_JWKS_URL")]
    pub jwks_url: Option<String>,
    /// JWKS file (RS256/ES256 keys chosen by `kid`).
    #[arg(long, env = "PARTNERHUB_JWKS_FILE")]
    pub jwks_file: Option<PathBuf>,
    /// Required `iss` claim.
    #[arg(long, env = "PARTNERHUB_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// Required `aud` claim.
    #[arg(long, env = "PARTNERHUB_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
}

#[derive(Args, Debug)]
pub struct TokenArgs {
    /// Tenant id (`tid`).
    #[arg(long)]
    pub tenant: Uuid,
    /// Roles (repeat the flag or separate with commas): platform_admin; admin_agent, sales_agent,
    /// helpdesk_agent (partners); global_admin, billing_admin, reader (customers).
    #[arg(long = "role", value_delimiter = ',', required = true, value_parser = parse_role)]
    pub roles: Vec<String>,
    /// Subject (`sub`).
    #[arg(long, default_value = "dev-user")]
    pub subject: String,
    /// Lifetime: a number followed by s, m, h or d.
    #[arg(long, default_value = "1h", value_parser = parse_ttl)]
    pub ttl: i64,
    /// HS256 secret to sign with (defaults to the demo secret).
    #[arg(long, env = "PARTNERHUB_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
}

/// A role the server knows; anything else would give a token that silently carries no role.
fn parse_role(text: &str) -> Result<String, String> {
    if let Some(role) = Role::parse(text.trim()) {
        return Ok(role.as_str().to_owned());
    }
    let groups: Vec<String> =
        [(TenantKind::Platform, "platform"), (TenantKind::Partner, "partners"), (TenantKind::Customer, "customers")]
            .into_iter()
            .map(|(kind, label)| {
                let roles: Vec<&str> =
                    Role::ALL.iter().filter(|r| r.tenant_kind() == kind).map(|r| r.as_str()).collect();
                format!("{} ({label})", roles.join(", "))
            })
            .collect();
    Err(format!("unknown role `{text}`; the known roles are {}", groups.join("; ")))
}

fn parse_ttl(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: i64 = number.parse().map_err(|_| format!("`{text}`: expected a number followed by s, m, h or d"))?;
    let factor = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return Err(format!("`{text}`: unit must be s, m, h or d")),
    };
    Ok(number * factor)
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Schema => {
            print!("{}", crate::graphql::sdl());
            Ok(())
        }
        Command::Token(args) => {
            let secret = args.jwt_secret.unwrap_or_else(|| demo::DEMO_SECRET.to_owned());
            let now = chrono::Utc::now().timestamp();
            let claims = Claims {
                tid: args.tenant,
                sub: args.subject,
                exp: now + args.ttl,
                roles: args.roles,
                nbf: None,
                iat: Some(now),
            };
            println!("{}", mint_hs256(&secret, &claims)?);
            Ok(())
        }
        Command::Migrate { action } => {
            let db = db::connect_with_pool_size(&cli.database_url, cli.db_pool_size).await?;
            match action {
                MigrateAction::Up => {
                    let pending = Migrator::get_pending_migrations(&db).await?;
                    Migrator::up(&db, None).await?;
                    println!("applied {} migration(s)", pending.len());
                    for m in pending {
                        println!("  {}", m.name());
                    }
                }
                MigrateAction::Down { steps } => {
                    let applied = Migrator::get_applied_migrations(&db).await?;
                    Migrator::down(&db, Some(steps)).await?;
                    let undone: Vec<_> = applied.iter().rev().take(steps as usize).collect();
                    println!("rolled back {} migration(s)", undone.len());
                    for m in undone {
                        println!("  {}", m.name());
                    }
                }
                MigrateAction::Status => {
                    let applied = Migrator::get_applied_migrations(&db).await?;
                    let pending = Migrator::get_pending_migrations(&db).await?;
                    for m in &applied {
                        println!("applied  {}", m.name());
                    }
                    for m in &pending {
                        println!("pending  {}", m.name());
                    }
                }
            }
            Ok(())
        }
        Command::Serve(args) => serve(&cli.database_url, cli.db_pool_size, args).await,
    }
}

async fn serve(database_url: &str, db_pool_size: Option<u32>, args: ServeArgs) -> anyhow::Result<()> {
    let mut auth = AuthConfig {
        hs256_secret: args.jwt.jwt_secret,
        jwks_url: args.jwt.jwks_url,
        jwks_file: args.jwt.jwks_file,
        issuer: args.jwt.jwt_issuer,
        audience: args.jwt.jwt_audience,
        leeway_secs: 30,
    };
    let no_key = auth.hs256_secret.is_none() && auth.jwks_url.is_none() && auth.jwks_file.is_none();
    if no_key && args.demo {
        tracing::warn!("DEMO MODE: tokens are signed with a fixed development secret; never expose this server");
        auth.hs256_secret = Some(demo::DEMO_SECRET.to_owned());
    } else if no_key {
        anyhow::bail!(
            "no JWT key configured: set PARTNERHUB_JWT_SECRET, PARTNERHUB_JWKS_FILE or PARTNERHUB_JWKS_URL (or run `serve --demo`)"
        );
    }
    let settings = Settings {
        listen: args.listen,
        platform_tenant: args.platform_tenant,
        auth,
        limits: Limits {
            max_depth: args.max_depth,
            max_complexity: args.max_complexity,
            max_body_bytes: args.max_body_bytes,
            max_response_bytes: args.max_response_bytes,
            request_timeout: std::time::Duration::from_secs(args.request_timeout_secs.max(1)),
            body_read_timeout: std::time::Duration::from_secs(args.body_read_timeout_secs.max(1)),
            max_in_flight: args.max_in_flight.max(1),
            budgets: BudgetSettings {
                tenant: BucketSettings { capacity: args.tenant_budget, refill_per_sec: args.tenant_budget_refill },
                anonymous: BucketSettings {
                    capacity: args.anonymous_budget,
                    refill_per_sec: args.anonymous_budget_refill,
                },
            },
            ws_init_timeout: std::time::Duration::from_secs(args.ws_init_timeout_secs.max(1)),
            ws_max_operations: args.ws_max_operations.max(1),
            ws_max_sockets: args.ws_max_sockets.max(1),
            ..Limits::default()
        },
        cancellation_window_hours: args.cancellation_window_hours,
        cors_origins: args.cors_origins,
        tenant_cache_ttl: std::time::Duration::from_secs(args.tenant_cache_secs),
        metrics_token: args.metrics_token.filter(|t| !t.is_empty()),
        webhooks: crate::config::WebhookSettings {
            allow_private: args.webhook_allow_private,
            poll_interval: std::time::Duration::from_millis(args.webhook_poll_ms.max(10)),
            backoff_base: std::time::Duration::from_millis(args.webhook_backoff_base_ms.max(1)),
            backoff_cap: std::time::Duration::from_secs(args.webhook_backoff_cap_secs.max(1)),
            deadline: std::time::Duration::from_secs(args.webhook_deadline_secs),
            // A lease must outlast one send (connect + request timeouts).
            lease: std::time::Duration::from_secs(args.webhook_lease_secs.max(30)),
            ..crate::config::WebhookSettings::default()
        },
        feed: crate::events::feed::FeedSettings::default(),
    };

    let db = db::connect_with_pool_size(database_url, db_pool_size).await?;
    db::migrate_up(&db).await?;
    let state = AppState::new(db, settings.clone(), Clock::system())?;
    if args.demo {
        if demo::load(&state).await? {
            tracing::info!("demo world loaded (through the GraphQL mutations)");
        } else {
            tracing::info!("the database already has data; demo world not loaded again");
        }
    }
    let shutdown = state.shutdown.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        shutdown.cancel();
    });
    let runner = crate::domain::runner::spawn(
        state.shutdown.clone(),
        state.db.clone(),
        state.feed.commits(),
        settings.platform_tenant,
        state.clock.clone(),
        std::time::Duration::from_secs(args.lifecycle_interval_secs.max(1)),
        chrono::Duration::hours(settings.cancellation_window_hours),
    );
    let webhooks = crate::events::webhooks::spawn(state.clone());
    // The live event feed starts at the outbox's current end (subscribers hear what follows).
    state.feed.start().await?;
    let listener = tokio::net::TcpListener::bind(settings.listen).await?;
    let url = format!("http://{}/graphql", listener.local_addr()?);
    tracing::info!(%url, "partnerhub listening");
    if args.demo {
        print_demo_banner(&url, &settings);
    }
    let limits = crate::http::server::ServeLimits {
        max_connections: args.max_connections,
        header_read_timeout: std::time::Duration::from_secs(args.header_read_timeout_secs.max(1)),
    };
    #[cfg(feature = "profiling")]
    let profile = crate::profiling::Profile::start();
    let stop = state.shutdown.clone();
    crate::http::server::serve(listener, crate::app(state), limits, stop.cancelled_owned()).await?;
    #[cfg(feature = "profiling")]
    if let Some(profile) = profile {
        profile.finish();
    }
    // The runner stops between passes; a pass under way finishes its transaction first.
    let _ = runner.await;
    // The webhook worker stops between units of work; a send under way is finished and recorded.
    let _ = webhooks.await;
    tracing::info!("stopped");
    Ok(())
}

fn print_demo_banner(url: &str, settings: &Settings) {
    let Some(secret) = settings.auth.hs256_secret.as_deref() else { return };
    match demo_banner(url, secret, settings.platform_tenant) {
        Ok(banner) => println!("{banner}"),
        Err(err) => tracing::error!(error = %err, "could not mint the demo tokens"),
    }
}

/// What `serve --demo` prints: the GraphiQL URL, and for each demo tenant its name, tenant id
/// (what `partnerhub token --tenant` takes), roles and a token valid 12 hours.
pub fn demo_banner(url: &str, secret: &str, platform_tenant: uuid::Uuid) -> anyhow::Result<String> {
    use std::fmt::Write as _;
    let mut out = String::new();
    writeln!(out, "\npartnerhub demo — open {url} in a browser (GraphiQL).")?;
    writeln!(
        out,
        "In GraphiQL's Headers tab paste {{\"Authorization\": \"Bearer <token>\"}} with one of these tokens (valid 12 h):\n"
    )?;
    for tenant in demo::tenants(platform_tenant) {
        let token = demo::token(secret, &tenant)?;
        writeln!(out, "# {}  tenant {}  [{}]\n{token}\n", tenant.label, tenant.tenant_id, tenant.roles.join(","))?;
    }
    writeln!(
        out,
        "Sample query:\n  {{ viewer {{ tenantKind roles }} customers(first: 10) {{ totalCount nodes {{ companyName subscriptions {{ nodes {{ offerName channel status partner {{ name }} }} }} }} }} }}"
    )?;
    Ok(out)
}

/// SIGINT (Ctrl-C) or SIGTERM (what service managers and container runtimes send).
async fn shutdown_signal() {
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
    tracing::info!("shutting down: no new connections; finishing the requests in flight");
}
