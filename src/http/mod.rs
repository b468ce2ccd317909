//! The HTTP shell: routes and layers. Request path: body limit, request id, CORS and panic catcher
//! here → [`auth`] turns the bearer token into a principal → [`graphql`] runs the operation.

pub mod auth;
pub mod graphiql;
pub mod graphql;
pub mod json;
pub mod server;
pub mod ws;

use std::sync::Arc;
use std::time::Duration;

use axum::error_handling::HandleErrorLayer;
use tokio::sync::Semaphore;
use tower::ServiceBuilder;
use tower::limit::GlobalConcurrencyLimitLayer;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

use crate::state::AppState;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest `X-Request-Id` taken from a client, in characters.
pub const MAX_REQUEST_ID_CHARS: usize = 128;

/// A client's `X-Request-Id` is copied into every audit row and log line of the request: one that is
/// longer than [`MAX_REQUEST_ID_CHARS`], holds anything but printable ASCII, or is sent twice is
/// dropped here, before anything reads it, so that [`SetRequestIdLayer`] generates a fresh one.
async fn sanitize_request_id(mut request: axum::extract::Request) -> axum::extract::Request {
    let values = request.headers().get_all(&REQUEST_ID);
    let acceptable = |bytes: &[u8]| {
        !bytes.is_empty() && bytes.len() <= MAX_REQUEST_ID_CHARS && bytes.iter().all(|b| (0x21..=0x7e).contains(b))
    };
    let mut count = 0;
    let mut keep = true;
    for value in values {
        count += 1;
        keep &= acceptable(value.as_bytes());
    }
    if count > 1 || !keep {
        request.headers_mut().remove(&REQUEST_ID);
    }
    request
}

/// The whole application, without a socket (tests drive it with `oneshot`).
pub fn router(state: AppState) -> Router {
    let cors = cors_layer(&state.settings.cors_origins);
    let body_limit = state.settings.limits.max_body_bytes;
    let in_flight = Arc::new(Semaphore::new(state.settings.limits.max_in_flight));
    Router::new()
        .route("/", get(graphiql::root))
        .route("/graphql", get(graphql::get).post(graphql::post))
        .route("/graphql/ws", get(ws::upgrade))
        .route(graphiql::ASSETS_ROUTE, get(graphiql::asset))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(overloaded))
                .load_shed()
                .layer(GlobalConcurrencyLimitLayer::with_semaphore(in_flight)),
        )
        // Probes and metrics stay outside the in-flight limit: a server at its limit is busy, not
        // dead, and an orchestrator must not restart it for that.
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .layer(cors)
        .layer(CatchPanicLayer::custom(|_| {
            tracing::error!("a request handler panicked");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                r#"{"errors":[{"message":"internal error","extensions":{"code":"INTERNAL"}}]}"#,
            )
                .into_response()
        }))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(axum::middleware::map_request(sanitize_request_id))
        .with_state(state)
}

/// More requests in flight than `PARTNERHUB_MAX_IN_FLIGHT`: refused at once rather than queued.
async fn overloaded(_: tower::BoxError) -> Response {
    let mut response = (
        StatusCode::SERVICE_UNAVAILABLE,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        // Written out so that `message` comes first, as in every other error.
        r#"{"errors":[{"message":"the server is busy; retry shortly","extensions":{"code":"RATE_LIMITED"}}]}"#,
    )
        .into_response();
    response.headers_mut().insert(axum::http::header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

fn cors_layer(origins: &[String]) -> CorsLayer {
    let origins: Vec<HeaderValue> = origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([axum::http::header::AUTHORIZATION, axum::http::header::CONTENT_TYPE, REQUEST_ID])
        .expose_headers([REQUEST_ID])
        .max_age(Duration::from_secs(600))
}

/// The process is up.
async fn healthz() -> Response {
    Json(json!({"status": "ok"})).into_response()
}

/// Prometheus text (`crate::metrics`). With `PARTNERHUB_METRICS_TOKEN` set, only for
/// `Authorization: Bearer <that token>`.
async fn metrics(State(state): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    if let Some(expected) = &state.settings.metrics_token {
        let given = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let matches = given.is_some_and(|given| {
            use sha2::Digest;
            // Compared as digests: equal-length, and no early exit on the first differing byte.
            sha2::Sha256::digest(given.as_bytes()) == sha2::Sha256::digest(expected.as_bytes())
        });
        if !matches {
            return (
                StatusCode::UNAUTHORIZED,
                [(axum::http::header::WWW_AUTHENTICATE, "Bearer")],
                "metrics token required\n",
            )
                .into_response();
        }
    }
    match crate::metrics::render(&state.db, &state.warm) {
        Some(page) => {
            ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], page).into_response()
        }
        None => (StatusCode::NOT_FOUND, "metrics are off in this process\n").into_response(),
    }
}

/// The database answers.
async fn readyz(State(state): State<AppState>) -> Response {
    match crate::access::Reader::ping(&state.db).await {
        Ok(()) => Json(json!({"status": "ready"})).into_response(),
        Err(err) => {
            if let Some(cause) = &err.source {
                tracing::warn!(error = format!("{cause:#}"), "readiness check failed");
            }
            (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "database unreachable"}))).into_response()
        }
    }
}
