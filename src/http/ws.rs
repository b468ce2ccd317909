//! GraphQL over WebSocket (`GET /graphql/ws`), protocol `graphql-transport-ws` as written in
//! `PROTOCOL.md` of enisdenjo/graphql-ws. async-graphql-axum's stock handler differs from that text
//! on close codes, so this is a thin protocol loop of our own over `axum::extract::ws`; operations
//! run through async-graphql's `Schema::execute_stream` after the same bounded parse, validation,
//! depth and cost limits and tenant budget as over HTTP (`super::graphql`).
//!
//! Close codes (the client should act as said in docs/api.md, "Events over WebSocket"):
//! - 4400 a message that is not JSON, has an unknown `type`, lacks an `id`…;
//! - 4401 `connection_init` without a usable token, a `subscribe` before `connection_ack`, or the
//!   token's `exp` passed while the socket was open (reason `token expired`);
//! - 4403 the token is valid but names a tenant this server does not know;
//! - 4408 no `connection_init` within `PARTNERHUB_WS_INIT_TIMEOUT_SECS`;
//! - 4409 a `subscribe` reusing the id of an operation still running;
//! - 4429 a second `connection_init`;
//! - 1001 the server is shutting down; 1011 the database could not be reached to check the token.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use async_graphql::parser::types::OperationType;
use async_graphql::{ServerError, Variables};
use axum::Extension;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, rejection::WebSocketUpgradeRejection};
use axum::extract::{ConnectInfo, State};
use axum::http::header::{CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::Serialize;
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use crate::auth::{Principal, resolve_principal_cached};
use crate::error::Code;
use crate::graphql::budget::BudgetKey;
use crate::graphql::context::RequestCtx;
use crate::graphql::cost::DocumentChecked;
use crate::state::AppState;

/// The only subprotocol spoken.
pub const PROTOCOL: &str = "graphql-transport-ws";

/// Longest the socket waits for a new subscription to listen before reading on.
const SETUP_WAIT: Duration = Duration::from_secs(10);

/// A refusal before the upgrade, as a GraphQL error body.
fn refuse(status: StatusCode, message: &str) -> Response {
    let body = json!({"errors": [{"message": message, "extensions": {"code": Code::BadUserInput.as_str()}}]});
    let mut response = (status, axum::Json(body)).into_response();
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// `GET /graphql/ws`: the upgrade, refused with 400 without the `graphql-transport-ws`
/// subprotocol and with 503 when `PARTNERHUB_WS_MAX_SOCKETS` sockets are already open.
pub async fn upgrade(
    State(state): State<AppState>,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => {
            let message = format!(
                "this endpoint speaks GraphQL over WebSocket (subprotocol {PROTOCOL}); open a WebSocket: {rejection}"
            );
            return refuse(StatusCode::BAD_REQUEST, &message);
        }
    };
    let offered = ws
        .requested_protocols()
        .flat_map(|v| v.to_str().unwrap_or_default().split(',').map(|p| p.trim().to_owned()).collect::<Vec<_>>())
        .any(|p| p == PROTOCOL);
    if !offered {
        let message = format!(
            "request the WebSocket subprotocol {PROTOCOL} (header `Sec-WebSocket-Protocol: {PROTOCOL}`); no other is spoken"
        );
        return refuse(StatusCode::BAD_REQUEST, &message);
    }
    let Ok(permit) = state.ws_sockets.clone().try_acquire_owned() else {
        let mut response = refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many WebSockets are open on this server (PARTNERHUB_WS_MAX_SOCKETS); retry shortly",
        );
        response.headers_mut().insert(RETRY_AFTER, HeaderValue::from_static("5"));
        return response;
    };
    let client = connect.map(|Extension(ConnectInfo(addr))| addr);
    let max = state.settings.limits.max_body_bytes;
    ws.protocols([PROTOCOL]).max_message_size(max).max_frame_size(max).on_upgrade(move |socket| async move {
        let _permit = permit;
        let _open = OpenGauge::new();
        Connection::new(state, client).run(socket).await;
    })
}

/// `partnerhub_websockets_open`, up while a socket lives.
struct OpenGauge;

impl OpenGauge {
    fn new() -> Self {
        metrics::gauge!("partnerhub_websockets_open").increment(1.0);
        Self
    }
}

impl Drop for OpenGauge {
    fn drop(&mut self) {
        metrics::gauge!("partnerhub_websockets_open").decrement(1.0);
    }
}

/// What an operation task sends to the socket loop.
struct Outgoing {
    id: String,
    generation: u64,
    text: Option<String>,
    /// The operation is over (after its `complete` or `error`).
    last: bool,
}

/// A fatal condition: close the socket with this code and reason.
struct Close(u16, String);

impl Close {
    fn new(code: u16, reason: impl Into<String>) -> Self {
        let mut reason = reason.into();
        // A close frame's reason holds at most 123 bytes.
        while reason.len() > 123 {
            reason.pop();
        }
        Self(code, reason)
    }
}

struct Connection {
    state: AppState,
    client: Option<SocketAddr>,
    init_received: bool,
    principal: Option<Principal>,
    /// Running operations: id → (generation, task).
    operations: HashMap<String, (u64, AbortHandle)>,
    generation: u64,
    sender: mpsc::Sender<Outgoing>,
    receiver: mpsc::Receiver<Outgoing>,
}

impl Connection {
    fn new(state: AppState, client: Option<SocketAddr>) -> Self {
        let (sender, receiver) = mpsc::channel(64);
        Self {
            state,
            client,
            init_received: false,
            principal: None,
            operations: HashMap::new(),
            generation: 0,
            sender,
            receiver,
        }
    }

    async fn run(mut self, mut socket: WebSocket) {
        let far = tokio::time::Instant::now() + Duration::from_secs(86_400 * 365);
        let init_deadline = tokio::time::sleep(self.state.settings.limits.ws_init_timeout);
        tokio::pin!(init_deadline);
        let expiry = tokio::time::sleep_until(far);
        tokio::pin!(expiry);
        let shutdown = self.state.shutdown.clone();
        let close = loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break Some(Close::new(1001, "server shutting down")),
                () = &mut init_deadline, if !self.init_received => {
                    break Some(Close::new(4408, "Connection initialisation timeout"));
                }
                () = &mut expiry, if self.principal.is_some() => {
                    break Some(Close::new(4401, "token expired: connect again with a fresh token"));
                }
                Some(out) = self.receiver.recv() => {
                    let current = self.operations.get(&out.id).is_some_and(|(g, _)| *g == out.generation);
                    if !current {
                        continue;
                    }
                    if out.last {
                        self.operations.remove(&out.id);
                    }
                    if let Some(text) = out.text
                        && socket.send(Message::Text(text.into())).await.is_err()
                    {
                        break None;
                    }
                }
                incoming = socket.recv() => {
                    let message = match incoming {
                        Some(Ok(message)) => message,
                        // A message over the size limit, a broken frame, or the peer gone.
                        Some(Err(err)) => {
                            tracing::debug!(error = %err, "websocket read failed");
                            break Some(Close::new(1009, "message too large or malformed frame"));
                        }
                        None => break None,
                    };
                    match self.handle(message, &mut socket).await {
                        Ok(Some(exp)) => {
                            let left = (exp - chrono::Utc::now().timestamp()).max(0) as u64;
                            expiry.as_mut().reset(tokio::time::Instant::now() + Duration::from_secs(left));
                        }
                        Ok(None) => {}
                        Err(Some(close)) => break Some(close),
                        Err(None) => break None,
                    }
                }
            }
        };
        for (_, (_, task)) in self.operations.drain() {
            task.abort();
        }
        if let Some(Close(code, reason)) = close {
            tracing::debug!(code, reason, client = ?self.client, "closing websocket");
            let _ = socket.send(Message::Close(Some(CloseFrame { code, reason: reason.into() }))).await;
        }
    }

    /// One client message. `Ok(Some(exp))`: authenticated, arm the expiry; `Err(Some(close))`:
    /// close the socket; `Err(None)`: the peer is gone.
    async fn handle(&mut self, message: Message, socket: &mut WebSocket) -> Result<Option<i64>, Option<Close>> {
        let text = match message {
            Message::Text(text) => text,
            Message::Binary(_) => return Err(Some(Close::new(4400, "binary messages are not part of the protocol"))),
            Message::Ping(_) | Message::Pong(_) => return Ok(None),
            Message::Close(_) => return Err(None),
        };
        let Ok(Value::Object(mut object)) = serde_json::from_str::<Value>(text.as_str()) else {
            return Err(Some(Close::new(4400, "Invalid message received: not a JSON object")));
        };
        let Some(Value::String(kind)) = object.remove("type") else {
            return Err(Some(Close::new(4400, "Invalid message received: `type` is missing")));
        };
        match kind.as_str() {
            "connection_init" => {
                if self.init_received {
                    return Err(Some(Close::new(4429, "Too many initialisation requests")));
                }
                self.init_received = true;
                let (principal, exp) = self.authenticate(object.remove("payload")).await.map_err(Some)?;
                self.principal = Some(principal);
                send(socket, json!({"type": "connection_ack"})).await?;
                Ok(Some(exp))
            }
            "ping" => {
                send(socket, json!({"type": "pong"})).await?;
                Ok(None)
            }
            "pong" => Ok(None),
            "subscribe" => {
                let id = message_id(&mut object)?;
                let Some(principal) = self.principal.clone() else {
                    return Err(Some(Close::new(
                        4401,
                        "Unauthorized: send connection_init and wait for connection_ack",
                    )));
                };
                let Some(Value::Object(payload)) = object.remove("payload") else {
                    return Err(Some(Close::new(4400, "Invalid message received: `payload` must be an object")));
                };
                if self.operations.contains_key(&id) {
                    return Err(Some(Close::new(4409, format!("Subscriber for {id} already exists"))));
                }
                let max = self.state.settings.limits.ws_max_operations;
                if self.operations.len() >= max {
                    let error = json!([{
                        "message": format!("at most {max} operations may run at once on one socket (PARTNERHUB_WS_MAX_OPERATIONS); complete some first"),
                        "extensions": {"code": Code::RateLimited.as_str()},
                    }]);
                    send(socket, json!({"type": "error", "id": id, "payload": error})).await?;
                    return Ok(None);
                }
                let request = parse_payload(payload)
                    .map_err(|m| Some(Close::new(4400, format!("Invalid message received: {m}"))))?;
                self.generation += 1;
                let generation = self.generation;
                let (listening, ready) = tokio::sync::oneshot::channel();
                let task = tokio::spawn(operation(
                    self.state.clone(),
                    principal,
                    request,
                    id.clone(),
                    generation,
                    self.sender.clone(),
                    listening,
                ));
                self.operations.insert(id, (generation, task.abort_handle()));
                // A subscription is listening before the next message is read (queries and
                // mutations go on by themselves), so "subscribe, then act" never misses an event.
                let _ = tokio::time::timeout(SETUP_WAIT, ready).await;
                Ok(None)
            }
            "complete" => {
                let id = message_id(&mut object)?;
                if let Some((_, task)) = self.operations.remove(&id) {
                    task.abort();
                }
                Ok(None)
            }
            other => {
                let other: String = other.chars().take(40).collect();
                Err(Some(Close::new(4400, format!("Invalid message received: unknown type `{other}`"))))
            }
        }
    }

    /// The token of `connection_init`'s payload (`{"Authorization": "Bearer …"}`, key in any case),
    /// verified and resolved as over HTTP; the principal and the token's `exp`.
    async fn authenticate(&self, payload: Option<Value>) -> Result<(Principal, i64), Close> {
        let unauthorized = |why: &str| Close::new(4401, format!("Unauthorized: {why}"));
        let payload = match payload {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(map)) => map,
            Some(_) => {
                return Err(Close::new(4400, "Invalid message received: connection_init payload must be an object"));
            }
        };
        let Some(value) = payload.iter().find(|(k, _)| k.eq_ignore_ascii_case("authorization")).map(|(_, v)| v) else {
            return Err(unauthorized("send {\"Authorization\": \"Bearer <token>\"} in connection_init's payload"));
        };
        let token = value
            .as_str()
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| unauthorized("expected \"Bearer <token>\""))?;
        let claims = self.state.verifier.verify(token).await.map_err(|err| unauthorized(&err.message))?;
        let exp = claims.exp;
        let (db, tenants) = (&self.state.db, &self.state.tenants);
        match resolve_principal_cached(db, tenants, self.state.settings.platform_tenant, claims).await {
            Ok(principal) => Ok((principal, exp)),
            Err(err) if err.code == Code::UnknownTenant => Err(Close::new(4403, format!("Forbidden: {}", err.message))),
            Err(err) if err.code == Code::Internal => {
                Err(Close::new(1011, "the server could not check the token; retry shortly"))
            }
            Err(err) => Err(unauthorized(&err.message)),
        }
    }
}

/// Sends one protocol message; `Err(None)` when the peer is gone.
async fn send(socket: &mut WebSocket, value: Value) -> Result<(), Option<Close>> {
    socket.send(Message::Text(value.to_string().into())).await.map_err(|_| None)
}

/// A message's `id`: a non-empty string, or 4400.
fn message_id(object: &mut Map<String, Value>) -> Result<String, Option<Close>> {
    match object.remove("id") {
        Some(Value::String(id)) if !id.is_empty() => Ok(id),
        _ => Err(Some(Close::new(4400, "Invalid message received: `id` must be a non-empty string"))),
    }
}

struct OperationRequest {
    query: String,
    operation_name: Option<String>,
    variables: Map<String, Value>,
}

fn parse_payload(mut payload: Map<String, Value>) -> Result<OperationRequest, &'static str> {
    let Some(Value::String(query)) = payload.remove("query") else { return Err("`payload.query` must be a string") };
    let operation_name = match payload.remove("operationName") {
        None | Some(Value::Null) => None,
        Some(Value::String(name)) => Some(name),
        Some(_) => return Err("`payload.operationName` must be a string"),
    };
    let variables = match payload.remove("variables") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(map)) => map,
        Some(_) => return Err("`payload.variables` must be an object"),
    };
    Ok(OperationRequest { query, operation_name, variables })
}

/// A `next` payload: `errors` first when present, then `data`.
#[derive(Serialize)]
struct Payload<'a> {
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    errors: &'a [ServerError],
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a async_graphql::Value>,
}

/// Runs one operation and sends its messages: `error` for a request error (nothing runs),
/// otherwise `next` per result and `complete` at the end.
async fn operation(
    state: AppState,
    principal: Principal,
    request: OperationRequest,
    id: String,
    generation: u64,
    out: mpsc::Sender<Outgoing>,
    listening: tokio::sync::oneshot::Sender<()>,
) {
    let send = |text: Option<String>, last: bool| {
        let message = Outgoing { id: id.clone(), generation, text, last };
        let out = out.clone();
        async move { out.send(message).await.is_ok() }
    };
    let error = |errors: Value| Some(json!({"type": "error", "id": id, "payload": errors}).to_string());
    let started = Instant::now();
    let document = match crate::graphql::guard::parse(&request.query) {
        Ok(document) => document,
        Err((code, message)) => {
            send(error(json!([{"message": message, "extensions": {"code": code.as_str()}}])), true).await;
            return;
        }
    };
    let wanted = request.operation_name.as_deref();
    let kind = document
        .operations
        .iter()
        .find(|(name, _)| crate::graphql::document::may_be_selected(wanted, *name))
        .map(|(_, op)| op.node.ty)
        .unwrap_or(OperationType::Query);
    // Only a subscription makes the socket wait (dropped on any early return: the wait ends).
    let listening = if kind == OperationType::Subscription {
        Some(crate::events::Listening::new(listening))
    } else {
        let _ = listening.send(());
        None
    };
    let settings = &state.settings;
    let tenant_id = principal.tenant_id;
    // One connection per statement: a subscription's context lives as long as it does.
    let ctx = RequestCtx::new(
        state.db.clone().into(),
        state.feed.commits(),
        Some(principal),
        state.clock.now(),
        settings.limits,
        chrono::Duration::hours(settings.cancellation_window_hours),
        format!("ws-{}", uuid::Uuid::now_v7()),
    )
    .with_tenant_cache(state.tenants.clone())
    .with_known_rows(state.known.clone());
    if kind == OperationType::Subscription
        && let Ok(session) = ctx.session()
    {
        session.loaders.disable_caches();
    }
    let mut gql = async_graphql::Request::new(request.query)
        .variables(Variables::from_json(Value::Object(request.variables)))
        .data(ctx)
        .data(BudgetKey::Tenant(tenant_id))
        .data(DocumentChecked)
        .data(state.feed.clone());
    if let Some(listening) = listening {
        gql = gql.data(listening);
    }
    gql.set_parsed_query(document);
    if let Some(name) = request.operation_name {
        gql = gql.operation_name(name);
    }
    let mut stream = state.schema.execute_stream(gql);
    let mut first = true;
    loop {
        let next = if kind == OperationType::Query {
            match tokio::time::timeout_at((started + settings.limits.request_timeout).into(), stream.next()).await {
                Ok(next) => next,
                Err(_) => {
                    let message = format!(
                        "the operation ran longer than {} s (PARTNERHUB_REQUEST_TIMEOUT_SECS) and was stopped; ask for less",
                        settings.limits.request_timeout.as_secs()
                    );
                    send(error(json!([{"message": message, "extensions": {"code": Code::Timeout.as_str()}}])), true)
                        .await;
                    return;
                }
            }
        } else {
            stream.next().await
        };
        let Some(mut response) = next else { break };
        for error in &mut response.errors {
            super::graphql::add_default_code(error);
        }
        let request_error = first
            && response.data == async_graphql::Value::Null
            && !response.errors.is_empty()
            && response.errors.iter().all(|e| e.path.is_empty());
        first = false;
        if request_error {
            let errors = serde_json::to_value(&response.errors).unwrap_or(Value::Null);
            send(error(errors), true).await;
            return;
        }
        let payload = Payload { errors: &response.errors, data: Some(&response.data) };
        let text = match serde_json::to_string(&json!({"type": "next", "id": id, "payload": payload})) {
            Ok(text) if text.len() <= settings.limits.max_response_bytes => text,
            _ => {
                let message = format!(
                    "the result would be larger than {} bytes (PARTNERHUB_MAX_RESPONSE_BYTES); ask for fewer fields",
                    settings.limits.max_response_bytes
                );
                json!({"type": "next", "id": id, "payload": {"errors": [{"message": message, "extensions": {"code": Code::BadUserInput.as_str()}}]}}).to_string()
            }
        };
        if !send(Some(text), false).await {
            return;
        }
    }
    send(Some(json!({"type": "complete", "id": id}).to_string()), true).await;
}
