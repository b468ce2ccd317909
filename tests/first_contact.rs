//! What a newcomer's tools meet first: the standard introspection query at the default limits,
//! response keys in the order asked, and error codes that tell a broken query from bad data.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use partnerhub::config::Settings;
use serde_json::{Value, json};

use crate::common::{SECRET, TestApp, error_code};

/// graphql-js 16 `getIntrospectionQuery({ descriptions: true, specifiedByUrl: true,
/// directiveIsRepeatable: true, schemaDescription: true, inputValueDeprecation: true })`, the text
/// GraphiQL 4, code generators and IDE plugins send, byte for byte.
const INTROSPECTION: &str = include_str!("fixtures/introspection.graphql");

fn introspection_request() -> Value {
    json!({"query": INTROSPECTION, "operationName": "IntrospectionQuery"})
}

/// The positions of `needles` in `text`, which must all be there.
fn positions(text: &str, needles: &[&str]) -> Vec<usize> {
    needles.iter().map(|n| text.find(n).unwrap_or_else(|| panic!("{n} not in {text}"))).collect()
}

fn is_sorted(positions: &[usize]) -> bool {
    positions.windows(2).all(|w| w[0] < w[1])
}

#[tokio::test]
async fn the_standard_introspection_query_works_at_default_limits_with_and_without_a_token() {
    let app = TestApp::new().await;
    assert!(INTROSPECTION.contains("specifiedByURL") && INTROSPECTION.contains("isRepeatable"));
    let token = app.token(app.platform(), &["platform_admin"]);
    for token in [None, Some(token.as_str())] {
        for accept in ["application/json", "application/graphql-response+json"] {
            let (status, body) = app.post_raw(token, accept, introspection_request()).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            let body: Value = serde_json::from_str(&body).unwrap();
            assert!(body.get("errors").is_none(), "token {}: {body}", token.is_some());
            let types = body["data"]["__schema"]["types"].as_array().unwrap();
            let query = types.iter().find(|t| t["name"] == "Query").unwrap();
            assert!(query["fields"].as_array().unwrap().iter().any(|f| f["name"] == "customers"));
            assert_eq!(body["data"]["__schema"]["queryType"]["name"], "Query");
            // docs/limits.md (Introspection) states this figure and what the budgets admit.
            assert_eq!(body["extensions"]["cost"]["requestedQueryCost"], 229, "update docs/limits.md");
        }
    }
    // Over GET too (GraphiQL may use it).
    let url = format!("/graphql?query={}&operationName=IntrospectionQuery", crate::common::url_encode(INTROSPECTION));
    let request = Request::get(url).header("accept", "application/json").body(Body::empty()).unwrap();
    let (status, _, body) = app.send(request).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.get("errors").is_none(), "{body}");
    assert!(body["data"]["__schema"]["types"].as_array().unwrap().len() > 20);
}

#[tokio::test]
async fn the_default_anonymous_budget_admits_a_few_introspection_queries_in_a_row() {
    let app = TestApp::new().await;
    for attempt in 0..4 {
        let (status, body) = app.post_raw(None, "application/json", introspection_request()).await;
        assert_eq!(status, StatusCode::OK, "attempt {attempt}: {body}");
        assert!(!body.contains("RATE_LIMITED"), "attempt {attempt}");
    }
}

#[tokio::test]
async fn data_queries_cannot_ride_along_with_introspection_past_the_depth_limit() {
    let app = TestApp::new().await;
    let token = app.token(app.platform(), &["platform_admin"]);
    let deep = "customers { nodes { partners { nodes { customers { nodes { partners { nodes { customers { nodes { partners { nodes { name } } } } } } } } } } } }";
    for query in [
        format!("{{ __schema {{ queryType {{ name }} }} {deep} }}"),
        format!("{{ __typename ... on Query {{ {deep} }} }}"),
        format!("{{ __typename ...F }} fragment F on Query {{ {deep} }}"),
        format!("query A {{ __schema {{ queryType {{ name }} }} }} query B {{ {deep} }}"),
    ] {
        let body = app.gql_as(Some(&token), &query, json!({})).await;
        let body = if query.starts_with("query A") {
            let request = json!({"query": query, "operationName": "B"});
            let (_, text) = app.post_raw(Some(&token), "application/json", request).await;
            serde_json::from_str(&text).unwrap()
        } else {
            body
        };
        assert_eq!(error_code(&body), Some("GRAPHQL_VALIDATION_FAILED"), "{query}: {body}");
        assert!(body["errors"][0]["message"].as_str().unwrap().contains("PARTNERHUB_MAX_DEPTH"), "{body}");
    }
}

#[tokio::test]
async fn introspection_still_pays_the_cost_limit() {
    let mut settings = Settings::development(SECRET);
    settings.limits.max_complexity = 50;
    let app = TestApp::with_settings(settings).await;
    let (_, body) = app.post_raw(None, "application/json", introspection_request()).await;
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error_code(&body), Some("GRAPHQL_VALIDATION_FAILED"), "{body}");
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("PARTNERHUB_MAX_COMPLEXITY"));
}

#[tokio::test]
async fn response_keys_come_back_in_the_order_asked() {
    let app = TestApp::new().await;
    let token = app.token(app.platform(), &["platform_admin"]);
    let query =
        "{ zeta: viewer { tenantKind roles } alpha: __typename viewer { roles tenantKind } middle: __typename }";
    let (status, body) = app.post_raw(Some(&token), "application/json", json!({"query": query})).await;
    assert_eq!(status, StatusCode::OK);
    let order = positions(&body, &["\"data\"", "\"zeta\"", "\"tenantKind\"", "\"roles\"", "\"alpha\"", "\"viewer\""]);
    assert!(is_sorted(&order), "keys out of the order asked: {body}");
    let inner = &body[body.find("\"viewer\"").unwrap()..];
    assert!(is_sorted(&positions(inner, &["\"roles\"", "\"tenantKind\"", "\"middle\""])), "{body}");
    assert!(is_sorted(&positions(&body, &["\"data\"", "\"extensions\""])), "{body}");
}

#[tokio::test]
async fn errors_start_with_their_message() {
    let app = TestApp::new().await;
    let token = app.token(app.platform(), &["platform_admin"]);
    // A resolver error (path and locations), a validation error, a parse error, a request error
    // raised before the engine.
    for (token, query) in [
        (Some(token.as_str()), "{ customers(first: 101) { totalCount } }"),
        (Some(token.as_str()), "{ noSuchField }"),
        (Some(token.as_str()), "{"),
        (None, "{ customers { totalCount } }"),
    ] {
        let (_, body) = app.post_raw(token, "application/json", json!({"query": query})).await;
        let errors = &body[body.find("\"errors\"").unwrap()..];
        assert!(errors.starts_with("\"errors\":[{\"message\":"), "{query}: {body}");
        let expected: &[&str] = if errors.contains("\"path\"") {
            &["\"message\"", "\"locations\"", "\"path\"", "\"extensions\""]
        } else {
            &["\"message\"", "\"extensions\""]
        };
        assert!(is_sorted(&positions(errors, expected)), "{query}: {body}");
    }
}

async fn code_of(app: &TestApp, token: Option<&str>, request: Value) -> (StatusCode, Value) {
    let (status, text) = app.post_raw(token, "application/graphql-response+json", request).await;
    (status, serde_json::from_str(&text).unwrap())
}

#[tokio::test]
async fn broken_documents_and_bad_data_have_their_own_codes() {
    let app = TestApp::new().await;
    let token = app.token(app.platform(), &["platform_admin"]);
    let token = Some(token.as_str());
    for (request, code) in [
        (json!({"query": "{ customers { totalCount "}), "GRAPHQL_PARSE_FAILED"),
        (json!({"query": "{ customers { noSuchField } }"}), "GRAPHQL_VALIDATION_FAILED"),
        (json!({"query": "{ customers(first: \"ten\") { totalCount } }"}), "GRAPHQL_VALIDATION_FAILED"),
        (json!({"query": "query Q($x: Int) { __typename }"}), "GRAPHQL_VALIDATION_FAILED"),
        (json!({"query": "{ __typename }", "operationName": "Nope"}), "GRAPHQL_VALIDATION_FAILED"),
        (json!({"query": "query A { __typename } query B { __typename }"}), "GRAPHQL_VALIDATION_FAILED"),
        (
            json!({"query": "query Q($b: Boolean!) { __typename @include(if: $nope) }", "variables": {"b": true}}),
            "GRAPHQL_VALIDATION_FAILED",
        ),
    ] {
        let (status, body) = code_of(&app, token, request.clone()).await;
        assert_eq!(error_code(&body), Some(code), "{request}: {body}");
        assert_eq!(status, StatusCode::BAD_REQUEST, "{request}: {body}");
        assert!(body.get("data").is_none(), "{body}");
    }
    // Variables of the wrong type are bad data.
    for (query, variables) in [
        ("query Q($n: Int) { customers(first: $n) { totalCount } }", json!({"n": "ten"})),
        ("query Q($n: Int!) { customers(first: $n) { totalCount } }", json!({})),
        ("query Q($b: Boolean!) { __typename @include(if: $b) }", json!({"b": "yes"})),
    ] {
        let (_, body) = code_of(&app, token, json!({"query": query, "variables": variables})).await;
        assert_eq!(error_code(&body), Some("BAD_USER_INPUT"), "{query} {variables}: {body}");
        if variables == json!({}) {
            let message = body["errors"][0]["message"].as_str().unwrap();
            assert!(message.contains("`$n`") && message.contains("variables"), "{message}");
        }
    }
}

#[tokio::test]
async fn error_codes_are_the_same_over_get() {
    let app = TestApp::new().await;
    for (query, extra, code) in [
        ("{ customers { totalCount ", "", "GRAPHQL_PARSE_FAILED"),
        ("{ noSuchField }", "", "GRAPHQL_VALIDATION_FAILED"),
        ("{ __typename }", "&operationName=Nope", "GRAPHQL_VALIDATION_FAILED"),
        (
            "query Q($n: Int) { customers(first: $n) { totalCount } }",
            "&variables=%7B%22n%22%3A%22ten%22%7D",
            "BAD_USER_INPUT",
        ),
    ] {
        let url = format!("/graphql?query={}{extra}", crate::common::url_encode(query));
        let request = Request::get(url).header("accept", "application/json").body(Body::empty()).unwrap();
        let (status, _, body) = app.send(request).await;
        assert_eq!(status, StatusCode::OK, "{query}");
        assert_eq!(error_code(&body), Some(code), "{query}: {body}");
    }
}

#[tokio::test]
async fn a_variable_used_only_in_a_directive_on_typename_counts_as_used() {
    let app = TestApp::new().await;
    let query = "query Q($b: Boolean!) { __typename @include(if: $b) also: __typename @skip(if: $b) }";
    for (b, expected) in [(true, json!({"__typename": "Query"})), (false, json!({"also": "Query"}))] {
        let (status, body) = code_of(&app, None, json!({"query": query, "variables": {"b": b}})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["data"], expected, "{body}");
    }
}
