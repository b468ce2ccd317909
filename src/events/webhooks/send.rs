//! Claiming due deliveries, sending them, and recording what happened.

use chrono::{DateTime, Duration, Utc};
use entity::{outbox_event, webhook, webhook_delivery};
use hmac::{Hmac, Mac};
use sea_orm::sea_query::{Expr, LockBehavior, LockType};
use sea_orm::{
    ColumnTrait, Condition, DatabaseConnection, DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    QueryTrait,
};
use serde::Serialize;
use sha2::Sha256;
use uuid::Uuid;

use super::{PassReport, owner_scope, target};
use crate::access::Reader;
use crate::config::WebhookSettings;
use crate::domain::webhooks::status;
use crate::error::{ApiError, ApiResult};
use crate::graphql::types::event::{event_id, node_type_of};

/// Most deliveries claimed (and sent side by side) per pass.
const SEND_BATCH: u64 = 16;

/// Most bytes of a response body read (and kept, as text, in `last_error`).
pub const RESPONSE_EXCERPT_BYTES: usize = 512;

/// Longest `last_error` stored, in characters.
const MAX_ERROR_CHARS: usize = 1000;

/// The JSON body of a delivery (fields in this order).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Body<'a> {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: &'a str,
    pub occurred_at: DateTime<Utc>,
    pub node_type: &'a str,
    pub node_id: Option<String>,
    pub details: serde_json::Value,
}

/// The body of `event`, as sent.
pub fn body_of(event: &outbox_event::Model) -> String {
    let body = Body {
        id: event_id(event),
        event_type: &event.event_type,
        occurred_at: event.occurred_at,
        node_type: &event.node_type,
        node_id: node_type_of(&event.node_type).map(|ty| crate::graphql::ids::encode(ty, event.node_id).0),
        details: event.payload.get("details").cloned().unwrap_or(serde_json::Value::Null),
    };
    serde_json::to_string(&body).unwrap_or_default()
}

/// `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    // HMAC takes a key of any length.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(format!("{timestamp}.{body}").as_bytes());
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("t={timestamp},v1={hex}")
}

/// The wait before the attempt after `failed_attempts` failures: a random duration between zero
/// and `min(cap, base × 2^(failed_attempts − 1))` (exponential backoff, full jitter).
pub fn backoff(settings: &WebhookSettings, failed_attempts: i32) -> std::time::Duration {
    let exp = failed_attempts.saturating_sub(1).clamp(0, 30) as u32;
    let ceiling = settings.backoff_base.saturating_mul(2u32.saturating_pow(exp)).min(settings.backoff_cap);
    ceiling.mul_f64(rand::random::<f64>())
}

/// Claims up to [`SEND_BATCH`] due deliveries for `instance` until `now + lease`: PENDING, due, and
/// not leased (or with an expired lease). On PostgreSQL the rows are chosen `FOR UPDATE SKIP
/// LOCKED` inside the claiming `UPDATE`, so two instances never claim the same row; SQLite runs one
/// writer at a time.
async fn claim(
    db: &DatabaseConnection,
    settings: &WebhookSettings,
    now: DateTime<Utc>,
    token: Uuid,
) -> ApiResult<Vec<webhook_delivery::Model>> {
    use webhook_delivery::Column as D;
    let lease_until = now + Duration::from_std(settings.lease).unwrap_or(Duration::seconds(60));
    let mut due = webhook_delivery::Entity::find()
        .select_only()
        .column(D::Id)
        .filter(D::Status.eq(status::PENDING))
        .filter(D::NextAttemptAt.lte(now))
        .filter(Condition::any().add(D::LeaseUntil.is_null()).add(D::LeaseUntil.lte(now)))
        .order_by_asc(D::NextAttemptAt)
        .limit(SEND_BATCH);
    if db.get_database_backend() == DbBackend::Postgres {
        due = due.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
    }
    let claimed = webhook_delivery::Entity::update_many()
        .col_expr(D::LeaseToken, Expr::val(token))
        .col_expr(D::LeaseUntil, Expr::val(lease_until))
        .filter(D::Id.in_subquery(due.into_query()))
        .exec(db)
        .await?;
    if claimed.rows_affected == 0 {
        return Ok(Vec::new());
    }
    Ok(webhook_delivery::Entity::find()
        .filter(D::LeaseToken.eq(token))
        .filter(D::Status.eq(status::PENDING))
        .all(db)
        .await?)
}

/// What became of one attempt.
#[derive(Debug)]
enum Outcome {
    Delivered { status: u16 },
    Failed { status: Option<u16>, error: String },
    GiveUp { error: String },
}

/// Claims the due deliveries and sends them side by side; every attempt is recorded before this
/// returns.
pub async fn send_due(
    db: &DatabaseConnection,
    settings: &WebhookSettings,
    now: DateTime<Utc>,
    report: &mut PassReport,
) -> ApiResult<()> {
    let token = Uuid::now_v7();
    let claimed = claim(db, settings, now, token).await?;
    let sends = claimed.into_iter().map(|delivery| async move {
        let outcome = attempt(db, settings, now, &delivery).await;
        let recorded = record(db, settings, &delivery, token, outcome).await;
        (delivery.id, recorded)
    });
    for (id, recorded) in futures_util::future::join_all(sends).await {
        match recorded {
            Ok(kind) => match kind {
                Recorded::Delivered => {
                    report.sent += 1;
                    report.succeeded += 1;
                }
                Recorded::Retry => {
                    report.sent += 1;
                    report.failed_attempts += 1;
                }
                Recorded::FailedAttemptGaveUp => {
                    report.sent += 1;
                    report.failed_attempts += 1;
                    report.given_up += 1;
                }
                Recorded::GaveUp => report.given_up += 1,
                Recorded::LeaseLost => {}
            },
            Err(err) => {
                let cause = err.source.as_ref().map(|c| format!("{c:#}")).unwrap_or_default();
                tracing::error!(delivery = %id, error = cause, "could not record a webhook delivery");
            }
        }
    }
    Ok(())
}

/// Checks the delivery can still be made (webhook live, event visible to its owner now), then sends it.
async fn attempt(
    db: &DatabaseConnection,
    settings: &WebhookSettings,
    now: DateTime<Utc>,
    delivery: &webhook_delivery::Model,
) -> Outcome {
    let loaded = async {
        let hook = webhook::Entity::find_by_id(delivery.webhook_id).one(db).await?;
        let event = outbox_event::Entity::find_by_id(delivery.outbox_event_id).one(db).await?;
        Ok::<_, ApiError>((hook, event))
    }
    .await;
    let (hook, event) = match loaded {
        Ok((Some(hook), Some(event))) => (hook, event),
        Ok(_) => return Outcome::GiveUp { error: "webhook or event no longer exists".into() },
        Err(err) => {
            return Outcome::Failed { status: None, error: format!("internal error: {}", err.message) };
        }
    };
    if hook.deleted_at.is_some() {
        return Outcome::GiveUp { error: "webhook deleted".into() };
    }
    // R1 at delivery: the owner must still see the event's node.
    let reader = Reader::new(db.clone(), owner_scope(&hook, now));
    match crate::events::visible_to(&reader, std::slice::from_ref(&event)).await {
        Ok(visible) if visible.is_empty() => {
            return Outcome::GiveUp { error: "not sent: the event is no longer visible to the webhook's owner".into() };
        }
        Ok(_) => {}
        Err(err) => return Outcome::Failed { status: None, error: format!("internal error: {}", err.message) },
    }
    post(settings, &hook, &event).await
}

/// POSTs the event to the webhook, connecting only to an address that passed the checks.
async fn post(settings: &WebhookSettings, hook: &webhook::Model, event: &outbox_event::Model) -> Outcome {
    let target = match target::parse("url", &hook.url, settings.allow_private) {
        Ok(target) => target,
        Err(err) => return Outcome::GiveUp { error: format!("refused: {}", err.message) },
    };
    let addrs = match target::resolve("url", &target, settings.allow_private).await {
        Ok(addrs) => addrs,
        // DNS may come back: retry (the deadline bounds it).
        Err(err) => return Outcome::Failed { status: None, error: err.message },
    };
    let client = match client_for(settings, &target.host, addrs) {
        Ok(client) => client,
        Err(err) => return Outcome::Failed { status: None, error: format!("client: {err}") },
    };
    let body = body_of(event);
    let signature = signature(&hook.secret, chrono::Utc::now().timestamp(), &body);
    let sent = client
        .post(target.url.clone())
        .header("content-type", "application/json")
        .header("Partnerhub-Event-Id", event_id(event))
        .header("Partnerhub-Event-Type", &event.event_type)
        .header("Partnerhub-Signature", signature)
        .body(body)
        .send()
        .await;
    let mut response = match sent {
        Ok(response) => response,
        Err(err) => return Outcome::Failed { status: None, error: describe(&err) },
    };
    let code = response.status();
    let mut excerpt: Vec<u8> = Vec::new();
    while excerpt.len() < RESPONSE_EXCERPT_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                excerpt.extend_from_slice(&chunk[..chunk.len().min(RESPONSE_EXCERPT_BYTES - excerpt.len())])
            }
            _ => break,
        }
    }
    drop(response);
    if code.is_success() {
        Outcome::Delivered { status: code.as_u16() }
    } else {
        let text = String::from_utf8_lossy(&excerpt).into_owned();
        let what = if code.is_redirection() { " (redirects are not followed)" } else { "" };
        Outcome::Failed { status: Some(code.as_u16()), error: format!("HTTP {}{what}: {text}", code.as_u16()) }
    }
}

/// Clients by (host, checked addresses, timeouts): a client connects only to the addresses it was
/// built with, and reusing it keeps connections alive and spares building TLS for every send.
type ClientKey = (String, Vec<std::net::SocketAddr>, std::time::Duration, std::time::Duration);
static CLIENTS: std::sync::OnceLock<std::sync::Mutex<std::collections::HashMap<ClientKey, reqwest::Client>>> =
    std::sync::OnceLock::new();

/// Most clients kept (the cache is emptied past it).
const MAX_CLIENTS: usize = 256;

fn client_for(
    settings: &WebhookSettings,
    host: &str,
    mut addrs: Vec<std::net::SocketAddr>,
) -> Result<reqwest::Client, reqwest::Error> {
    addrs.sort();
    let key = (host.to_owned(), addrs, settings.connect_timeout, settings.request_timeout);
    let cache = CLIENTS.get_or_init(Default::default);
    if let Some(client) = cache.lock().ok().and_then(|c| c.get(&key).cloned()) {
        return Ok(client);
    }
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .connect_timeout(settings.connect_timeout)
        .timeout(settings.request_timeout)
        .resolve_to_addrs(host, &key.1)
        .user_agent(concat!("partnerhub-webhooks/", env!("CARGO_PKG_VERSION")))
        .build()?;
    if let Ok(mut cache) = cache.lock() {
        if cache.len() >= MAX_CLIENTS {
            cache.clear();
        }
        cache.insert(key, client.clone());
    }
    Ok(client)
}

fn describe(err: &reqwest::Error) -> String {
    let kind = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    let mut text = format!("{kind}: {err}");
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

enum Recorded {
    Delivered,
    Retry,
    FailedAttemptGaveUp,
    GaveUp,
    LeaseLost,
}

fn excerpt(text: &str) -> String {
    text.chars().filter(|c| !c.is_control() || *c == ' ').take(MAX_ERROR_CHARS).collect()
}

/// Records an outcome, only while the lease is still ours (an instance whose lease expired and
/// was taken over leaves the row to the new holder).
async fn record(
    db: &DatabaseConnection,
    settings: &WebhookSettings,
    delivery: &webhook_delivery::Model,
    token: Uuid,
    outcome: Outcome,
) -> ApiResult<Recorded> {
    use webhook_delivery::Column as D;
    // The time of the recording (a send may take seconds after the pass began).
    let now = Utc::now().max(delivery.next_attempt_at);
    let mut update = webhook_delivery::Entity::update_many()
        .col_expr(D::LeaseToken, Expr::val(Option::<Uuid>::None))
        .col_expr(D::LeaseUntil, Expr::val(Option::<DateTime<Utc>>::None))
        .col_expr(D::UpdatedAt, Expr::val(now));
    let attempts = delivery.attempts + 1;
    let kind = match &outcome {
        Outcome::Delivered { status: code } => {
            metrics::counter!("partnerhub_webhook_attempts_total", "outcome" => "success").increment(1);
            metrics::counter!("partnerhub_events_delivered_total", "transport" => "webhook").increment(1);
            update = update
                .col_expr(D::Status, Expr::val(status::DELIVERED))
                .col_expr(D::Attempts, Expr::val(attempts))
                .col_expr(D::LastStatusCode, Expr::val(Some(i32::from(*code))))
                .col_expr(D::LastError, Expr::val(Option::<String>::None))
                .col_expr(D::DeliveredAt, Expr::val(Some(now)));
            Recorded::Delivered
        }
        Outcome::Failed { status: code, error } => {
            metrics::counter!("partnerhub_webhook_attempts_total", "outcome" => "failure").increment(1);
            let next = now + Duration::from_std(backoff(settings, attempts)).unwrap_or(Duration::seconds(5));
            update = update
                .col_expr(D::Attempts, Expr::val(attempts))
                .col_expr(D::LastStatusCode, Expr::val(code.map(i32::from)));
            if next > delivery.deadline_at {
                update = update.col_expr(D::Status, Expr::val(status::FAILED)).col_expr(
                    D::LastError,
                    Expr::val(Some(excerpt(&format!("gave up at the deadline; last attempt: {error}")))),
                );
                Recorded::FailedAttemptGaveUp
            } else {
                update = update
                    .col_expr(D::NextAttemptAt, Expr::val(next))
                    .col_expr(D::LastError, Expr::val(Some(excerpt(error))));
                Recorded::Retry
            }
        }
        Outcome::GiveUp { error } => {
            update = update
                .col_expr(D::Status, Expr::val(status::FAILED))
                .col_expr(D::LastError, Expr::val(Some(excerpt(error))));
            Recorded::GaveUp
        }
    };
    let done = update.filter(D::Id.eq(delivery.id)).filter(D::LeaseToken.eq(token)).exec(db).await?;
    if done.rows_affected == 0 {
        tracing::warn!(delivery = %delivery.id, "webhook delivery lease lost before its outcome was recorded");
        return Ok(Recorded::LeaseLost);
    }
    if let Outcome::Failed { error, .. } = &outcome {
        tracing::info!(delivery = %delivery.id, attempts, error = %excerpt(error), "webhook attempt failed");
    }
    Ok(kind)
}
