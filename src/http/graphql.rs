//! GraphQL over HTTP (`POST`/`GET /graphql`), following the GraphQL-over-HTTP specification:
//! content negotiation between `application/graphql-response+json` and `application/json`, 400 for
//! malformed requests (and, with `application/graphql-response+json`, for documents that fail to
//! parse or validate), 405 for mutations over GET, 406/415 for media types we do not speak, and
//! GraphiQL for browsers.

use std::time::Instant;

use async_graphql::parser::types::OperationType;
use async_graphql::{ServerError, Variables};
use axum::body::Bytes;
use axum::extract::{Query as UrlQuery, State};
use axum::http::header::{ACCEPT, ALLOW, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::error::{ApiError, Code};
use crate::graphql::context::RequestCtx;
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

/// A response carrying only request errors.
fn error_response(status: StatusCode, format: Format, errors: &[(Code, String)]) -> Response {
    let errors: Vec<Value> = errors
        .iter()
        .map(|(code, message)| json!({"message": message, "extensions": {"code": code.as_str()}}))
        .collect();
    let mut response = (status, axum::Json(json!({ "errors": errors }))).into_response();
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
pub async fn post(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
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
    match params_from_json(&body) {
        Ok(params) => execute(state, headers, format, params, false).await,
        Err(message) => bad_request(format, message),
    }
}

/// `GET /graphql`: GraphiQL for browsers, queries (never mutations) for everything else.
pub async fn get(State(state): State<AppState>, headers: HeaderMap, UrlQuery(get): UrlQuery<GetParams>) -> Response {
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
        Ok(params) => execute(state, headers, format, params, true).await,
        Err(message) => bad_request(format, message),
    }
}

/// The GraphiQL page.
pub fn graphiql() -> Html<String> {
    Html(
        async_graphql::http::GraphiQLSource::build()
            .endpoint("/graphql")
            .subscription_endpoint("/graphql/ws")
            .title("partnerhub GraphiQL — add {\"Authorization\": \"Bearer <token>\"} under Headers")
            .finish(),
    )
}

/// Parses, authenticates and runs one GraphQL request, and logs one line about it.
async fn execute(state: AppState, headers: HeaderMap, format: Format, params: Params, is_get: bool) -> Response {
    let started = Instant::now();
    let request_id = headers.get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();

    // The document is parsed here first: a GET must not run a mutation, and a document that does not
    // parse is a request error (400 with application/graphql-response+json).
    let document = match async_graphql::parser::parse_query(&params.query) {
        Ok(document) => document,
        Err(err) => {
            let status = if format == Format::Json { StatusCode::OK } else { StatusCode::BAD_REQUEST };
            return error_response(
                status,
                format,
                &[(Code::BadUserInput, format!("the document does not parse: {err}"))],
            );
        }
    };
    if is_get {
        let mutation = document.operations.iter().any(|(name, op)| {
            let selected = match (&params.operation_name, name) {
                (Some(wanted), Some(name)) => wanted.as_str() == name.as_str(),
                _ => true,
            };
            selected && op.node.ty == OperationType::Mutation
        });
        if mutation {
            let mut response = error_response(
                StatusCode::METHOD_NOT_ALLOWED,
                format,
                &[(Code::BadUserInput, "mutations are only accepted over POST".into())],
            );
            response.headers_mut().insert(ALLOW, HeaderValue::from_static("POST"));
            return response;
        }
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
    let principal = match super::auth::authenticate(&state, &headers).await {
        Ok(principal) => principal,
        Err(err) => {
            tracing::info!(request_id, outcome = err.code.as_str(), "graphql request refused");
            let status = if err.code == Code::UnknownTenant { StatusCode::FORBIDDEN } else { StatusCode::UNAUTHORIZED };
            return auth_error(status, format, err);
        }
    };
    let tenant_id = principal.as_ref().map(|p| p.tenant_id.to_string()).unwrap_or_else(|| "anonymous".into());

    let settings = &state.settings;
    let ctx = RequestCtx::new(
        &state.db,
        principal,
        state.clock.now(),
        settings.limits,
        chrono::Duration::hours(settings.cancellation_window_hours),
        request_id.clone(),
    );
    let mut request = async_graphql::Request::new(params.query)
        .variables(Variables::from_json(Value::Object(params.variables)))
        .data(ctx);
    if let Some(name) = &params.operation_name {
        request = request.operation_name(name.clone());
    }
    let _ = params.extensions;
    // The operation runs in its own task: when the client goes away, hyper drops this handler's
    // future, but a mutation already inside its transaction still commits or rolls back on its own
    // instead of being cut between `BEGIN` and `COMMIT` (see docs on cancellation safety).
    let schema = state.schema.clone();
    let mut response = match tokio::spawn(async move { schema.execute(request).await }).await {
        Ok(response) => response,
        Err(err) => {
            tracing::error!(request_id, error = %err, "the operation's task failed");
            return error_response(StatusCode::INTERNAL_SERVER_ERROR, format, &[(Code::Internal, "internal error".into())]);
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
    tracing::info!(
        request_id,
        tenant_id,
        operation,
        duration_ms = started.elapsed().as_secs_f64() * 1000.0,
        errors = response.errors.len(),
        outcome = outcome.trim_matches('"'),
        "graphql request"
    );

    let status = if request_error && !response.errors.is_empty() && format == Format::GraphqlResponseJson {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let mut body =
        serde_json::to_value(&response).unwrap_or_else(|_| json!({"errors": [{"message": "internal error"}]}));
    if request_error && let Value::Object(map) = &mut body {
        map.remove("data");
    }
    let mut http = (status, axum::Json(body)).into_response();
    http.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
    http
}

fn add_default_code(error: &mut ServerError) {
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
