//! GraphQL over HTTP (`POST`/`GET /graphql`), following the GraphQL-over-HTTP specification:
//! content negotiation between `application/graphql-response+json` and `application/json`, 400 for
//! malformed requests (and, with `application/graphql-response+json`, for documents that fail to
//! parse or validate), 405 for mutations over GET, 406/415 for media types we do not speak, and
//! GraphiQL for browsers.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use async_graphql::parser::types::OperationType;
use async_graphql::{ServerError, Variables};
use axum::Extension;
use axum::body::Body;
use axum::extract::{ConnectInfo, Query as UrlQuery, State};
use axum::http::header::{ACCEPT, ALLOW, CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{ApiError, Code};
use crate::graphql::budget::BudgetKey;
use crate::graphql::context::RequestCtx;
use crate::graphql::cost::{DocumentChecked, ValidateOnly};
use crate::state::AppState;

const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";
const APPLICATION_JSON: &str = "application/json";

/// The response media type chosen by `Accept`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    GraphqlResponseJson,
    Json,
}

impl Format {
    fn content_type(self) -> &'static str {
        match self {
            Format::GraphqlResponseJson => "application/graphql-response+json; charset=utf-8",
            Format::Json => "application/json; charset=utf-8",
        }
    }
}

/// Picks the response format: the first acceptable media type in the `Accept` list (ignoring those
/// with `q=0`); no `Accept` or a wildcard means `application/json` (as the graphql-http audits ask).
fn negotiate(headers: &HeaderMap) -> Option<Format> {
    let Some(accept) = headers.get(ACCEPT).and_then(|v| v.to_str().ok()) else { return Some(Format::Json) };
    if accept.trim().is_empty() {
        return Some(Format::Json);
    }
    for item in accept.split(',') {
        let mut parts = item.split(';').map(str::trim);
        let media = parts.next().unwrap_or_default().to_ascii_lowercase();
        let refused = parts.any(|p| {
            p.replace(' ', "").starts_with("q=0") && p.trim_start_matches("q=").trim_matches(['0', '.']).is_empty()
        });
        if refused {
            continue;
        }
        match media.as_str() {
            GRAPHQL_RESPONSE_JSON => return Some(Format::GraphqlResponseJson),
            // A wildcard gets the legacy media type, which every client understands.
            APPLICATION_JSON | "application/*" | "*/*" => return Some(Format::Json),
            _ => {}
        }
    }
    None
}

fn wants_html(headers: &HeaderMap) -> bool {
    headers.get(ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/html"))
}

/// A request error raised before the engine ran, `message` first.
#[derive(Serialize)]
struct RequestError<'a> {
    message: &'a str,
    extensions: ErrorCode,
}

#[derive(Serialize)]
struct ErrorCode {
    code: &'static str,
}

#[derive(Serialize)]
struct RequestErrors<'a> {
    errors: Vec<RequestError<'a>>,
}

/// A response carrying only request errors.
fn error_response(status: StatusCode, format: Format, errors: &[(Code, String)]) -> Response {
    let errors = errors
        .iter()
        .map(|(code, message)| RequestError { message, extensions: ErrorCode { code: code.as_str() } })
        .collect();
    let mut response = (status, axum::Json(RequestErrors { errors })).into_response();
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
    response
}

fn bad_request(format: Format, message: impl Into<String>) -> Response {
    error_response(StatusCode::BAD_REQUEST, format, &[(Code::BadUserInput, message.into())])
}

/// The parameters of a GraphQL request, from a JSON body or a query string.
struct Params {
    query: String,
    operation_name: Option<String>,
    variables: Map<String, Value>,
    extensions: Map<String, Value>,
}

fn params_from_json(body: &[u8]) -> Result<Params, String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| format!("the body is not valid JSON: {e}"))?;
    let Value::Object(mut object) = value else { return Err("the body must be a JSON object".into()) };
    let query = match object.remove("query") {
        Some(Value::String(q)) => q,
        Some(_) => return Err("`query` must be a string".into()),
        None => return Err("`query` is missing".into()),
    };
    let operation_name = match object.remove("operationName") {
        None | Some(Value::Null) => None,
        Some(Value::String(name)) => Some(name),
        Some(_) => return Err("`operationName` must be a string".into()),
    };
    let map = |name: &str, value: Option<Value>| match value {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(m)) => Ok(m),
        Some(_) => Err(format!("`{name}` must be an object")),
    };
    let variables = map("variables", object.remove("variables"))?;
    let extensions = map("extensions", object.remove("extensions"))?;
    Ok(Params { query, operation_name, variables, extensions })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetParams {
    query: Option<String>,
    operation_name: Option<String>,
    variables: Option<String>,
    extensions: Option<String>,
}

fn params_from_url(get: GetParams) -> Result<Params, String> {
    let query = get.query.ok_or("the `query` parameter is missing")?;
    let parse = |name: &str, text: Option<String>| -> Result<Map<String, Value>, String> {
        match text.filter(|t| !t.is_empty()) {
            None => Ok(Map::new()),
            Some(text) => match serde_json::from_str(&text) {
                Ok(Value::Object(m)) => Ok(m),
                Ok(Value::Null) => Ok(Map::new()),
                _ => Err(format!("`{name}` must be a JSON object")),
            },
        }
    };
    Ok(Params {
        query,
        operation_name: get.operation_name.filter(|n| !n.is_empty()),
        variables: parse("variables", get.variables)?,
        extensions: parse("extensions", get.extensions)?,
    })
}

/// `POST /graphql`.
pub async fn post(
    State(state): State<AppState>,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let client = connect.map(|Extension(ConnectInfo(addr))| addr.ip());
    let Some(format) = negotiate(&headers) else {
        return error_response(
            StatusCode::NOT_ACCEPTABLE,
            Format::Json,
            &[(Code::BadUserInput, format!("accept {GRAPHQL_RESPONSE_JSON} or {APPLICATION_JSON}"))],
        );
    };
    let content_type = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_ascii_lowercase();
    let mut parts = content_type.split(';').map(str::trim);
    let media = parts.next().unwrap_or_default();
    let charset_ok = parts.all(|p| !p.starts_with("charset=") || p.eq_ignore_ascii_case("charset=utf-8"));
    if media != APPLICATION_JSON || !charset_ok {
        return error_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format,
            &[(Code::BadUserInput, "send the request as `Content-Type: application/json`".into())],
        );
    }
    // The whole body must arrive within the limit: a client trickling a byte at a time is stopped
    // as surely as one that goes quiet.
    let limits = &state.settings.limits;
    let body =
        match tokio::time::timeout(limits.body_read_timeout, axum::body::to_bytes(body, limits.max_body_bytes)).await {
            Ok(Ok(body)) => body,
            Ok(Err(err)) => return body_error(format, limits.max_body_bytes, err),
            Err(_) => {
                let message = format!(
                    "the request body did not arrive within {} s (PARTNERHUB_BODY_READ_TIMEOUT_SECS)",
                    limits.body_read_timeout.as_secs()
                );
                return error_response(StatusCode::REQUEST_TIMEOUT, format, &[(Code::BadUserInput, message)]);
            }
        };
    match params_from_json(&body) {
        Ok(params) => execute(state, headers, client, format, params, false).await,
        Err(message) => bad_request(format, message),
    }
}

/// `GET /graphql`: GraphiQL for browsers, queries (never mutations) for everything else.
pub async fn get(
    State(state): State<AppState>,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    UrlQuery(get): UrlQuery<GetParams>,
) -> Response {
    let client = connect.map(|Extension(ConnectInfo(addr))| addr.ip());
    if get.query.is_none() && wants_html(&headers) {
        return graphiql().into_response();
    }
    let Some(format) = negotiate(&headers) else {
        if wants_html(&headers) {
            return graphiql().into_response();
        }
        return error_response(
            StatusCode::NOT_ACCEPTABLE,
            Format::Json,
            &[(Code::BadUserInput, format!("accept {GRAPHQL_RESPONSE_JSON} or {APPLICATION_JSON}"))],
        );
    };
    match params_from_url(get) {
        Ok(params) => execute(state, headers, client, format, params, true).await,
        Err(message) => bad_request(format, message),
    }
}

/// The GraphiQL page, served from the binary (see [`super::graphiql`]).
pub fn graphiql() -> Response {
    super::graphiql::page()
}

/// Parses, authenticates and runs one GraphQL request, and logs one line about it.
async fn execute(
    state: AppState,
    headers: HeaderMap,
    client: Option<IpAddr>,
    format: Format,
    params: Params,
    is_get: bool,
) -> Response {
    let started = Instant::now();
    let request_id = headers.get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();

    // The document is parsed here first: a GET must not run a mutation, and a document that does not
    // parse is a request error (400 with application/graphql-response+json).
    // The nesting bound comes first: async-graphql's parser recurses without a limit on values and
    // list types, and a stack overflow would abort the process (see `graphql::guard`).
    let document = match crate::graphql::guard::parse(&params.query) {
        Ok(document) => document,
        Err(error) => {
            crate::metrics::graphql_request("unknown", "-", error.0.as_str(), started.elapsed().as_secs_f64(), 0);
            let status = if format == Format::Json { StatusCode::OK } else { StatusCode::BAD_REQUEST };
            return error_response(status, format, &[error]);
        }
    };
    if is_get && may_run(&document, params.operation_name.as_deref(), OperationType::Mutation) {
        let mut response = error_response(
            StatusCode::METHOD_NOT_ALLOWED,
            format,
            &[(Code::BadUserInput, "mutations are only accepted over POST".into())],
        );
        response.headers_mut().insert(ALLOW, HeaderValue::from_static("POST"));
        return response;
    }

    // Subscriptions are served over WebSocket only: a request error naming the endpoint, before
    // anything runs.
    if may_run(&document, params.operation_name.as_deref(), OperationType::Subscription) {
        let status = if format == Format::Json { StatusCode::OK } else { StatusCode::BAD_REQUEST };
        let message = "subscriptions are served over WebSocket: connect to /graphql/ws with the subprotocol \
                       graphql-transport-ws (see docs/api.md, \"Events over WebSocket\")";
        return error_response(status, format, &[(Code::BadUserInput, message.into())]);
    }

    // For the log line: the operation's name, or its first field when it has none.
    let operation = params.operation_name.clone().unwrap_or_else(|| {
        document
            .operations
            .iter()
            .next()
            .map(|(name, op)| match name {
                Some(name) => name.to_string(),
                None => op
                    .node
                    .selection_set
                    .node
                    .items
                    .first()
                    .map(|item| match &item.node {
                        async_graphql::parser::types::Selection::Field(f) => f.node.name.node.to_string(),
                        _ => String::new(),
                    })
                    .unwrap_or_default(),
            })
            .unwrap_or_default()
    });
    let (operation_type, root_field) = metric_labels(&document, params.operation_name.as_deref());
    let principal = match super::auth::authenticate(&state, &headers).await {
        Ok(principal) => principal,
        Err(err) => {
            tracing::info!(request_id, outcome = err.code.as_str(), "graphql request refused");
            crate::metrics::graphql_request(operation_type, "-", err.code.as_str(), started.elapsed().as_secs_f64(), 0);
            // A database that cannot be reached while resolving the tenant is ours, not the token's:
            // 503, so clients retry instead of discarding a good token.
            let status = match err.code {
                Code::UnknownTenant => StatusCode::FORBIDDEN,
                Code::Internal => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::UNAUTHORIZED,
            };
            return auth_error(status, format, err);
        }
    };
    let tenant_id = principal.as_ref().map(|p| p.tenant_id.to_string()).unwrap_or_else(|| "anonymous".into());

    let settings = &state.settings;
    // The request's statements share one pooled connection (`db::RequestConnection`).
    let ctx = RequestCtx::new(
        crate::db::RequestConnection::keeping(state.db.clone(), &state.warm, state.on_statement.clone())
            .with_write_turns(state.write_turns.clone()),
        state.feed.commits(),
        principal,
        state.clock.now(),
        settings.limits,
        chrono::Duration::hours(settings.cancellation_window_hours),
        request_id.clone(),
    )
    .with_tenant_cache(state.tenants.clone())
    .with_known_rows(state.known.clone())
    .with_webhook_settings(state.settings.webhooks.clone());
    let budget_key = match ctx.session() {
        Ok(session) => BudgetKey::Tenant(session.principal.tenant_id),
        Err(_) => BudgetKey::Anonymous(client),
    };
    let is_query = document.operations.iter().all(|(_, op)| op.node.ty == OperationType::Query);
    let mut document = document;
    crate::graphql::document::hoist_typename_directives(&mut document);
    let variables = Variables::from_json(Value::Object(params.variables));
    // A document that passed the full validation before, with variables that cannot change its
    // outcome, is checked in fast mode (`graphql::validated`); any other is validated in full, and
    // remembered once it passes every check.
    let operation_name = params.operation_name.as_deref();
    let seen = state.validated.contains(&params.query, operation_name);
    let known = seen && crate::graphql::validated::plain_variables(&document, operation_name, &variables);
    let remember = (!seen).then(|| (state.validated.clone(), params.query.clone(), params.operation_name.clone()));
    // Checked first (bounds, depth, cost, budget: `graphql::cost`) on the guarded schema, then run on
    // the schema without the extension (`graphql::build_execution_schema`). Both take the document
    // parsed above instead of parsing it again.
    let passed = Arc::new(AtomicBool::new(false));
    let mut check = async_graphql::Request::new(params.query.clone())
        .variables(variables.clone())
        .data(budget_key)
        .data(DocumentChecked)
        .data(ValidateOnly(passed.clone()));
    check.set_parsed_query(document.clone());
    let mut request = async_graphql::Request::new(params.query).variables(variables).data(ctx);
    request.set_parsed_query(document);
    if let Some(name) = &params.operation_name {
        check = check.operation_name(name.clone());
        request = request.operation_name(name.clone());
    }
    let _ = params.extensions;
    // The operation runs in its own task: when the client goes away, hyper drops this handler's
    // future, but a mutation already inside its transaction still commits or rolls back on its own
    // instead of being cut between `BEGIN` and `COMMIT` (see docs on cancellation safety).
    // Past the request time limit a read is stopped (nothing of it is left running); a mutation
    // is never stopped halfway: its answer is awaited, since its transaction is short and bounded.
    let schema = if known { state.fast_check_schema.clone() } else { state.schema.clone() };
    let exec_schema = state.exec_schema.clone();
    let statements = crate::metrics::statement_counter();
    let counted = statements.clone();
    let mut task = tokio::spawn(async move {
        let checked = schema.execute(check).await;
        if !passed.load(Ordering::Acquire) {
            return checked;
        }
        if let Some((validated, query, operation)) = remember {
            validated.insert(&query, operation.as_deref());
        }
        let mut response = crate::metrics::counting_statements(counted, exec_schema.execute(request)).await;
        if let Some(cost) = checked.extensions.get("cost") {
            response.extensions.insert("cost".into(), cost.clone());
        }
        response
    });
    let timeout = settings.limits.request_timeout;
    let joined = match tokio::time::timeout(timeout, &mut task).await {
        Ok(joined) => joined,
        Err(_) if is_query => {
            task.abort();
            tracing::warn!(request_id, tenant_id, operation, "graphql request stopped at the time limit");
            let seconds = started.elapsed().as_secs_f64();
            let statements = statements.load(std::sync::atomic::Ordering::Relaxed);
            crate::metrics::graphql_request(operation_type, &root_field, Code::Timeout.as_str(), seconds, statements);
            let message = format!(
                "the operation ran longer than {} s (PARTNERHUB_REQUEST_TIMEOUT_SECS) and was stopped; ask for less",
                timeout.as_secs()
            );
            return error_response(StatusCode::SERVICE_UNAVAILABLE, format, &[(Code::Timeout, message)]);
        }
        Err(_) => task.await,
    };
    let mut response = match joined {
        Ok(response) => response,
        Err(err) => {
            tracing::error!(request_id, error = %err, "the operation's task failed");
            let errors = [(Code::Internal, "internal error".to_owned())];
            return error_response(StatusCode::INTERNAL_SERVER_ERROR, format, &errors);
        }
    };

    // Errors raised by the engine itself (parse, validation, limits) carry no code: they are the
    // caller's, never ours.
    let request_error =
        response.data == async_graphql::Value::Null && response.errors.iter().all(|e| e.path.is_empty());
    for error in &mut response.errors {
        add_default_code(error);
    }
    let outcome = response
        .errors
        .first()
        .and_then(|e| e.extensions.as_ref().and_then(|x| x.get("code")).map(|c| c.to_string()))
        .unwrap_or_else(|| "OK".into());
    let outcome = outcome.trim_matches('"');
    // A document the engine refused names no field worth a series of its own.
    let field = if request_error { "-" } else { root_field.as_str() };
    crate::metrics::graphql_request(
        operation_type,
        field,
        outcome,
        started.elapsed().as_secs_f64(),
        statements.load(std::sync::atomic::Ordering::Relaxed),
    );
    tracing::info!(
        request_id,
        tenant_id,
        operation,
        duration_ms = started.elapsed().as_secs_f64() * 1000.0,
        errors = response.errors.len(),
        outcome,
        "graphql request"
    );

    let retry_after = response.errors.iter().find_map(|e| {
        let ext = e.extensions.as_ref()?;
        let limited =
            matches!(ext.get("code"), Some(async_graphql::Value::String(c)) if c == Code::RateLimited.as_str());
        match ext.get("retryAfter") {
            Some(async_graphql::Value::Number(n)) if limited => n.as_u64(),
            _ => None,
        }
    });
    let status = if retry_after.is_some() {
        StatusCode::TOO_MANY_REQUESTS
    } else if request_error && !response.errors.is_empty() && format == Format::GraphqlResponseJson {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let data = if request_error { None } else { Some(&response.data) };
    let bytes = match super::json::response_body(&response.errors, data, &response.extensions) {
        Ok(bytes) if bytes.len() <= settings.limits.max_response_bytes => bytes,
        Ok(bytes) => {
            tracing::warn!(request_id, bytes = bytes.len(), "response over the size limit replaced by an error");
            let message = format!(
                "the response would be {} bytes, above the limit of {} (PARTNERHUB_MAX_RESPONSE_BYTES); ask for smaller pages or fewer fields",
                bytes.len(),
                settings.limits.max_response_bytes
            );
            return error_response(StatusCode::OK, format, &[(Code::BadUserInput, message)]);
        }
        Err(_) => {
            return error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                format,
                &[(Code::Internal, "internal error".into())],
            );
        }
    };
    let mut http = (status, bytes).into_response();
    http.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
    if let Some(secs) = retry_after {
        http.headers_mut().insert(RETRY_AFTER, HeaderValue::from(secs.max(1)));
    }
    http
}

/// Whether an operation of type `ty` may be the one the request runs.
fn may_run(
    document: &async_graphql::parser::types::ExecutableDocument,
    operation_name: Option<&str>,
    ty: OperationType,
) -> bool {
    document
        .operations
        .iter()
        .any(|(name, op)| crate::graphql::document::may_be_selected(operation_name, name) && op.node.ty == ty)
}

/// The labels of `partnerhub_graphql_requests_total`: the selected operation's type and its first
/// root field's name (not its alias: the values stay bounded by the schema; a field the schema does
/// not have fails validation and is recorded as `-`); `unknown` when no operation is selected.
fn metric_labels(
    document: &async_graphql::parser::types::ExecutableDocument,
    operation_name: Option<&str>,
) -> (&'static str, String) {
    use async_graphql::parser::types::Selection;
    let Ok(operation) = crate::graphql::document::select_operation(document, operation_name) else {
        return ("unknown", "-".into());
    };
    let operation_type = match operation.node.ty {
        OperationType::Query => "query",
        OperationType::Mutation => "mutation",
        OperationType::Subscription => "subscription",
    };
    let items = &operation.node.selection_set.node.items;
    let field = match items.first().map(|item| &item.node) {
        Some(Selection::Field(f)) if items.len() == 1 => f.node.name.node.to_string(),
        Some(_) if items.len() > 1 => "(several)".into(),
        _ => "-".into(),
    };
    (operation_type, field)
}

pub(crate) fn add_default_code(error: &mut ServerError) {
    let has_code = error.extensions.as_ref().is_some_and(|x| x.get("code").is_some());
    if !has_code {
        let code = if error.path.is_empty() { Code::BadUserInput } else { Code::Internal };
        error.extensions.get_or_insert_with(Default::default).set("code", code.as_str());
    }
}

fn auth_error(status: StatusCode, format: Format, err: ApiError) -> Response {
    let mut response = error_response(status, format, &[(err.code, err.message)]);
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert("www-authenticate", HeaderValue::from_static("Bearer"));
    }
    response
}

/// A body that could not be read: too large (413) or broken (400), each answered as a GraphQL error
/// body (one too slow is answered 408 by `post`).
fn body_error(format: Format, limit: usize, err: axum::Error) -> Response {
    let inner = err.into_inner();
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&*inner);
    while let Some(error) = cause {
        if error.is::<http_body_util::LengthLimitError>() {
            let message = format!("the request body is larger than {limit} bytes (PARTNERHUB_MAX_BODY_BYTES)");
            return error_response(StatusCode::PAYLOAD_TOO_LARGE, format, &[(Code::BadUserInput, message)]);
        }
        cause = error.source();
    }
    bad_request(format, "the request body could not be read")
}
