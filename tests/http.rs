//! GraphQL over HTTP: status codes, media types, limits, request ids, GraphiQL, health.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::json;

use crate::common::{TestApp, error_code};

fn post() -> axum::http::request::Builder {
    Request::post("/graphql")
}

#[tokio::test]
async fn health_and_readiness_answer() {
    let app = TestApp::new().await;
    let (status, _, body) = app.send(Request::get("/healthz").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ok");
    let (status, _, body) = app.send(Request::get("/readyz").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ready");
}

#[tokio::test]
async fn request_id_is_echoed_or_generated() {
    let app = TestApp::new().await;
    let request = Request::get("/healthz").header("x-request-id", "abc-123").body(Body::empty()).unwrap();
    let (_, headers, _) = app.send(request).await;
    assert_eq!(headers["x-request-id"], "abc-123");
    let (_, headers, _) = app.send(Request::get("/healthz").body(Body::empty()).unwrap()).await;
    let generated = headers["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(generated).is_ok(), "generated id {generated}");
}

#[tokio::test]
async fn post_requires_json_content_type() {
    let app = TestApp::new().await;
    let body = json!({"query": "{ __typename }"}).to_string();
    let (status, _, _) = app.send(post().body(Body::from(body.clone())).unwrap()).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (status, _, _) =
        app.send(post().header("content-type", "text/plain").body(Body::from(body.clone())).unwrap()).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let request = post().header("content-type", "application/json; charset=utf-8").body(Body::from(body)).unwrap();
    let (status, _, body) = app.send(request).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"]["__typename"], "Query");
}

#[tokio::test]
async fn accept_header_chooses_the_response_media_type() {
    let app = TestApp::new().await;
    let body = json!({"query": "{ __typename }"}).to_string();
    for (accept, expected) in [
        (Some("application/graphql-response+json"), Some("application/graphql-response+json")),
        (Some("application/json"), Some("application/json")),
        (None, Some("application/json")),
        (Some("*/*"), Some("application/json")),
        (Some("text/html;q=0.9, application/graphql-response+json"), Some("application/graphql-response+json")),
        (Some("text/xml"), None),
    ] {
        let mut builder = post().header("content-type", "application/json");
        if let Some(accept) = accept {
            builder = builder.header("accept", accept);
        }
        let (status, headers, _) = app.send(builder.body(Body::from(body.clone())).unwrap()).await;
        match expected {
            Some(media) => {
                assert_eq!(status, StatusCode::OK, "accept {accept:?}");
                assert!(headers["content-type"].to_str().unwrap().starts_with(media), "accept {accept:?}");
            }
            None => assert_eq!(status, StatusCode::NOT_ACCEPTABLE, "accept {accept:?}"),
        }
    }
}

#[tokio::test]
async fn malformed_requests_are_400() {
    let app = TestApp::new().await;
    for body in [
        "{not json",
        "[]",
        r#"{"query": 5}"#,
        r#"{"variables": {}}"#,
        r#"{"query": "{ __typename }", "variables": "x"}"#,
    ] {
        let request = post().header("content-type", "application/json").body(Body::from(body)).unwrap();
        let (status, _, response) = app.send(request).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "body {body}: {response}");
        assert_eq!(error_code(&response), Some("BAD_USER_INPUT"));
    }
}

#[tokio::test]
async fn documents_that_do_not_parse_or_validate_are_400_with_graphql_response_json() {
    let app = TestApp::new().await;
    for (query, code) in [("{", "GRAPHQL_PARSE_FAILED"), ("{ noSuchField }", "GRAPHQL_VALIDATION_FAILED")] {
        let body = json!({"query": query}).to_string();
        let request = post()
            .header("content-type", "application/json")
            .header("accept", "application/graphql-response+json")
            .body(Body::from(body.clone()))
            .unwrap();
        let (status, _, response) = app.send(request).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {response}");
        assert!(response.get("data").is_none(), "no data on request errors: {response}");
        assert_eq!(error_code(&response), Some(code));
        // With application/json the GraphQL-over-HTTP spec asks for 200.
        let request = post()
            .header("content-type", "application/json")
            .header("accept", "application/json")
            .body(Body::from(body))
            .unwrap();
        let (status, _, _) = app.send(request).await;
        assert_eq!(status, StatusCode::OK, "{query}");
    }
}

#[tokio::test]
async fn get_runs_queries_but_not_mutations() {
    let app = TestApp::new().await;
    let (status, _, body) = app
        .send(
            Request::get("/graphql?query=%7B__typename%7D")
                .header("accept", "application/json")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"]["__typename"], "Query");
    let request = Request::get("/graphql?query=mutation%7B__typename%7D").body(Body::empty()).unwrap();
    let (status, headers, _) = app.send(request).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(headers["allow"], "POST");
}

#[tokio::test]
async fn browsers_get_graphiql() {
    let app = TestApp::new().await;
    let request =
        Request::get("/graphql").header("accept", "text/html,application/xhtml+xml").body(Body::empty()).unwrap();
    let (status, headers, body) = app.send(request).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(body.as_str().unwrap().contains("graphiql"), "GraphiQL page expected");
}

#[tokio::test]
async fn bodies_over_one_mebibyte_are_413() {
    let app = TestApp::new().await;
    let padding = "x".repeat(1024 * 1024 + 1);
    let body = json!({"query": "{ __typename }", "extensions": {"pad": padding}}).to_string();
    let request = post().header("content-type", "application/json").body(Body::from(body)).unwrap();
    let (status, _, _) = app.send(request).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn anonymous_callers_can_introspect_but_not_read_data() {
    let app = TestApp::new().await;
    let body = app.gql_as(None, "{ __schema { queryType { name } } }", json!({})).await;
    assert_eq!(body["data"]["__schema"]["queryType"]["name"], "Query");
    let body = app.gql_as(None, "{ customers { totalCount } }", json!({})).await;
    assert_eq!(error_code(&body), Some("UNAUTHENTICATED"));
}

#[tokio::test]
async fn first_may_not_exceed_100() {
    let app = TestApp::new().await;
    let token = app.token(app.platform(), &["platform_admin"]);
    let body = app.gql_as(Some(&token), "{ customers(first: 101) { totalCount } }", json!({})).await;
    assert_eq!(error_code(&body), Some("BAD_USER_INPUT"));
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("first"));
    let body = app.gql_as(Some(&token), "{ customers(first: 100) { totalCount } }", json!({})).await;
    assert_eq!(body["data"]["customers"]["totalCount"], 0);
}

#[tokio::test]
async fn queries_deeper_than_the_limit_are_refused() {
    let app = TestApp::new().await;
    let token = app.token(app.platform(), &["platform_admin"]);
    let deep = "{ customers { nodes { partners { nodes { customers { nodes { partners { nodes { customers { nodes { partners { nodes { name } } } } } } } } } } } } }";
    let body = app.gql_as(Some(&token), deep, json!({})).await;
    assert_eq!(error_code(&body), Some("GRAPHQL_VALIDATION_FAILED"), "{body}");
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("PARTNERHUB_MAX_DEPTH") && message.contains("12"), "{message}");
}
