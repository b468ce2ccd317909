//! Hostile input: no document crashes the server, costly operations are refused before they run,
//! tenants spend their own budgets, and oversized or slow requests get clear errors.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use entity::enums::{BillingModel, Cloud, PartnerType};
use partnerhub::config::Settings;
use partnerhub::graphql::budget::{BucketSettings, BudgetSettings};
use partnerhub::seed::NewSubscription;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::{SECRET, TestApp, error_code};

fn post(query: &str) -> Request<Body> {
    post_raw(json!({ "query": query }).to_string().into_bytes())
}

fn post_raw(body: Vec<u8>) -> Request<Body> {
    Request::post("/graphql")
        .header("content-type", "application/json")
        .header("accept", "application/json")
        .body(Body::from(body))
        .expect("request")
}

fn get(query: &str) -> Request<Body> {
    let url = format!("/graphql?query={}", crate::common::url_encode(query));
    Request::get(url).header("accept", "application/json").body(Body::empty()).expect("request")
}

/// The server still answers a plain query.
async fn assert_alive(app: &TestApp) {
    let (status, _, body) = app.send(post("{ __typename }")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["__typename"], "Query");
}

/// The documents that overflowed the parser's stack: 2,000 levels of lists, input objects, list
/// types and directive arguments, each about 4 KB.
fn crash_documents() -> Vec<String> {
    let n = 2000;
    vec![
        format!("{{ __typename(x: {}1{}) }}", "[".repeat(n), "]".repeat(n)),
        format!("{{ __typename(x: {}1{}) }}", "{a:".repeat(n), "}".repeat(n)),
        format!("query($v: {}Int{}) {{ __typename }}", "[".repeat(n), "]".repeat(n)),
        format!("{{ __typename @include(if: {}true{}) }}", "[".repeat(n), "]".repeat(n)),
        format!("{}__typename{}", "{a ".repeat(n), "}".repeat(n)),
        format!("{{ __typename(x: {}1 ", "[".repeat(n)),
    ]
}

#[tokio::test]
async fn the_4kb_crash_documents_answer_graphql_parse_failed_over_post_and_get() {
    let app = TestApp::new().await;
    for document in crash_documents() {
        for request in [post(&document), get(&document)] {
            let (status, _, body) = app.send(request).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            assert_eq!(error_code(&body), Some("GRAPHQL_PARSE_FAILED"), "{body}");
            assert!(body.get("data").is_none(), "{body}");
        }
    }
    // Just under the bound still parses (and then fails validation: `id` is not a list).
    let document = format!("{{ node(id: {}1{}) {{ id }} }}", "[".repeat(60), "]".repeat(60));
    let (_, _, body) = app.send(post(&document)).await;
    assert_eq!(error_code(&body), Some("GRAPHQL_VALIDATION_FAILED"), "{body}");
    assert_alive(&app).await;
}

#[tokio::test]
async fn fragment_chains_cycles_and_doubling_are_refused_before_validation() {
    let app = TestApp::new().await;
    // A chain of 3,000 fragments, each spreading the next.
    let mut chain = String::from("{ ...F0 }\n");
    for i in 0..3000 {
        chain.push_str(&format!("fragment F{i} on Query {{ __typename ...F{} }}\n", i + 1));
    }
    chain.push_str("fragment F3000 on Query { __typename }\n");
    // Thirty fragments, each spreading the next one twice: 2^30 fields once expanded.
    let mut doubling2 = String::from("query { ...E0 }\n");
    for i in 0..30 {
        doubling2.push_str(&format!(
            "fragment E{i} on Query {{ a{i}: __typename ...E{n} x{i}: __typename ...E{n} }}\n",
            n = i + 1
        ));
    }
    doubling2.push_str("fragment E30 on Query { __typename }\n");
    let cycle = "{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }".to_owned();
    for document in [chain, doubling2, cycle] {
        let (status, _, body) = app.send(post(&document)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let code = error_code(&body);
        assert!(matches!(code, Some("GRAPHQL_VALIDATION_FAILED" | "GRAPHQL_PARSE_FAILED")), "{body}");
        assert!(body.get("data").is_none(), "{body}");
    }
    assert_alive(&app).await;
}

/// A partner seeing `customers` customers with `subscriptions` subscriptions each.
async fn partner_with_customers(app: &TestApp, customers: usize, subscriptions: usize) -> Uuid {
    let tid = Uuid::new_v4();
    let seed = app.seed();
    let domain = format!("p{}.example", tid.simple());
    let partner = seed.partner(tid, "Noisy", &domain, PartnerType::DirectBill, Cloud::Public).await.expect("partner");
    for i in 0..customers {
        let domain = format!("c{i}-{}.example", tid.simple());
        let customer = seed.customer(Uuid::new_v4(), &format!("C{i}"), &domain, "US", Cloud::Public).await.expect("c");
        seed.reseller_link(partner.id, &customer).await.expect("relationship");
        for _ in 0..subscriptions {
            seed.subscription(NewSubscription::csp(customer.id, partner.id, None, BillingModel::UsageBased), 1)
                .await
                .expect("subscription");
        }
    }
    tid
}

#[tokio::test]
async fn alias_amplification_is_refused_before_any_resolver_runs() {
    let app = TestApp::new().await;
    let tid = partner_with_customers(&app, 3, 2).await;
    let token = app.token(tid, &["admin_agent"]);
    let aliases: String = (0..200)
        .map(|i| {
            format!("a{i}: customers(first: 100) {{ nodes {{ subscriptions(first: 100) {{ nodes {{ id }} }} }} }}\n")
        })
        .collect();
    let before = app.statement_count();
    let body = app.gql_as(Some(&token), &format!("{{ {aliases} }}"), json!({})).await;
    assert_eq!(error_code(&body), Some("GRAPHQL_VALIDATION_FAILED"), "{body}");
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("PARTNERHUB_MAX_COMPLEXITY"), "{message}");
    assert!(body.get("data").is_none_or(Value::is_null), "{body}");
    let cost = &body["extensions"]["cost"];
    assert!(cost["requestedQueryCost"].as_u64().unwrap_or_default() > 1_000_000, "{body}");
    assert_eq!(cost["remaining"], 100_000, "a refused operation takes nothing from the budget: {body}");
    // Authentication reads the tenant; nothing else is read.
    assert!(app.statement_count() - before <= 2, "resolvers ran: {} statements", app.statement_count() - before);

    // One of them alone costs 1 + 100 × (1 + 1 + 100 × 2) = 20,201 points: over the limit too.
    let one = "{ customers(first: 100) { nodes { subscriptions(first: 100) { nodes { id } } } } }";
    let body = app.gql_as(Some(&token), one, json!({})).await;
    assert_eq!(error_code(&body), Some("GRAPHQL_VALIDATION_FAILED"), "{body}");
    assert!(body["errors"][0]["message"].as_str().unwrap_or_default().contains("20201"), "{body}");

    // A page of 20 customers with 10 subscriptions each is an ordinary query and runs.
    let fine = "{ customers(first: 20) { nodes { subscriptions(first: 10) { nodes { id } } } } }";
    let body = app.gql_as(Some(&token), fine, json!({})).await;
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(body["extensions"]["cost"]["requestedQueryCost"], 20 * (1 + 1 + 10 * 2) + 1);
}

/// A document that passed every check is checked in async-graphql's fast mode the next time
/// (`graphql::validated`). Its cost still follows its variables, and a bad value is refused exactly
/// as by a server that never saw the document.
#[tokio::test]
async fn a_document_seen_before_is_still_charged_and_refused_by_its_variables() {
    let (app, other) = (TestApp::new().await, TestApp::new().await);
    let token = app.token(partner_with_customers(&app, 3, 2).await, &["admin_agent"]);
    let other_token = other.token(partner_with_customers(&other, 3, 2).await, &["admin_agent"]);
    let query = "query Page($n: Int!, $m: Int!) { customers(first: $n) { nodes { companyName \
                 subscriptions(first: $m) { nodes { id } } } } }";
    // n × (nodes + companyName + subscriptions (1 + m × (nodes + id))) + 1.
    let cost = |n: u64, m: u64| n * (1 + 1 + 1 + m * 2) + 1;

    let body = app.gql_as(Some(&token), query, json!({"n": 2, "m": 1})).await;
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(body["extensions"]["cost"]["requestedQueryCost"], cost(2, 1));
    assert!(app.state.validated.contains(query, None), "a document that passed is remembered");

    let body = app.gql_as(Some(&token), query, json!({"n": 3, "m": 5})).await;
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(body["data"]["customers"]["nodes"].as_array().map(Vec::len), Some(3), "{body}");
    assert_eq!(body["extensions"]["cost"]["requestedQueryCost"], cost(3, 5), "charged for what it asks now");

    for variables in [
        json!({"n": 100, "m": 100}),
        json!({"n": "two", "m": 1}),
        json!({"n": 2_147_483_648_i64, "m": 1}),
        json!({"n": null, "m": 1}),
        json!({"m": 1}),
    ] {
        let seen = app.gql_as(Some(&token), query, variables.clone()).await;
        let unseen = other.gql_as(Some(&other_token), query, variables.clone()).await;
        assert!(error_code(&seen).is_some(), "{variables}: {seen}");
        assert_eq!(seen["errors"], unseen["errors"], "{variables}");
        assert!(seen.get("data").is_none_or(Value::is_null), "{variables}: {seen}");
    }
    assert!(!other.state.validated.contains(query, None), "a document refused is not remembered");

    let broken = "query Page($n: Int!) { customers(first: $n) { nodes { noSuchField } } }";
    let body = app.gql_as(Some(&token), broken, json!({"n": 1})).await;
    assert_eq!(error_code(&body), Some("GRAPHQL_VALIDATION_FAILED"), "{body}");
    assert!(!app.state.validated.contains(broken, None));
}

/// GraphQL's variable coercion: a variable declared non-null without a default must be given a
/// value, even where it is passed into a nullable argument (`first: $n`).
#[tokio::test]
async fn a_required_variable_left_out_or_null_is_bad_user_input() {
    let app = TestApp::new().await;
    let token = app.token(partner_with_customers(&app, 2, 0).await, &["admin_agent"]);
    let query = "query Page($n: Int!) { customers(first: $n) { nodes { id } } }";
    for variables in [json!({}), json!({"n": null})] {
        let body = app.gql_as(Some(&token), query, variables.clone()).await;
        assert_eq!(error_code(&body), Some("BAD_USER_INPUT"), "{variables}: {body}");
        let message = body["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(message.contains("`$n`") && message.contains("`Int!`"), "{message}");
        assert!(body.get("data").is_none_or(Value::is_null), "{body}");
    }
    let with_default = "query Page($n: Int! = 1) { customers(first: $n) { nodes { id } } }";
    let body = app.gql_as(Some(&token), with_default, json!({})).await;
    assert_eq!(body["data"]["customers"]["nodes"].as_array().map(Vec::len), Some(1), "{body}");
    let nullable = "query Page($n: Int) { customers(first: $n) { nodes { id } } }";
    let body = app.gql_as(Some(&token), nullable, json!({"n": null})).await;
    assert_eq!(body["data"]["customers"]["nodes"].as_array().map(Vec::len), Some(2), "{body}");
}

fn small_budget() -> Settings {
    let mut settings = Settings::development(SECRET);
    settings.limits.budgets = BudgetSettings {
        tenant: BucketSettings { capacity: 1000, refill_per_sec: 1 },
        anonymous: BucketSettings { capacity: 20, refill_per_sec: 1 },
    };
    settings
}

#[tokio::test]
async fn a_tenant_over_its_budget_gets_429_with_retry_after_and_others_are_unaffected() {
    let app = TestApp::with_settings(small_budget()).await;
    let noisy = partner_with_customers(&app, 2, 1).await;
    let quiet = partner_with_customers(&app, 2, 1).await;
    let noisy_token = app.token(noisy, &["admin_agent"]);
    let quiet_token = app.token(quiet, &["admin_agent"]);
    // customers(first: 100) { nodes { id companyName } } costs 1 + 100 × 3 = 301.
    let query = r#"{"query":"{ customers(first: 100) { nodes { id companyName } } }"}"#;
    let send = |token: &str| {
        Request::post("/graphql")
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {token}"))
            .body(Body::from(query))
            .expect("request")
    };
    let mut remaining = Vec::new();
    for _ in 0..3 {
        let (status, _, body) = app.send(send(&noisy_token)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["extensions"]["cost"]["requestedQueryCost"], 301);
        assert!(body["extensions"]["cost"]["resetAt"].is_string(), "{body}");
        remaining.push(body["extensions"]["cost"]["remaining"].as_u64().expect("remaining"));
    }
    assert!(remaining[0] > remaining[1] && remaining[1] > remaining[2], "{remaining:?}");
    let before = app.statement_count();
    let (status, headers, body) = app.send(send(&noisy_token)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(error_code(&body), Some("RATE_LIMITED"), "{body}");
    let retry_after: u64 = headers["retry-after"].to_str().expect("ascii").parse().expect("seconds");
    assert!(retry_after >= 1, "{retry_after}");
    assert!(body.get("data").is_none_or(Value::is_null), "{body}");
    assert!(app.statement_count() - before <= 2, "resolvers ran after the budget refused the operation");

    // The quiet tenant has its own bucket.
    let (status, _, body) = app.send(send(&quiet_token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["data"]["customers"]["nodes"].is_array(), "{body}");
}

#[tokio::test]
async fn anonymous_introspection_has_a_small_budget_of_its_own() {
    let app = TestApp::with_settings(small_budget()).await;
    let query = "{ __schema { queryType { name } types { name fields { name } } } }";
    let mut statuses = Vec::new();
    for _ in 0..30 {
        let (status, _, body) = app.send(post(query)).await;
        statuses.push(status);
        if status == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(error_code(&body), Some("RATE_LIMITED"), "{body}");
            break;
        }
        assert!(body["extensions"]["cost"]["requestedQueryCost"].as_u64().is_some(), "{body}");
    }
    assert_eq!(statuses.first(), Some(&StatusCode::OK));
    assert_eq!(statuses.last(), Some(&StatusCode::TOO_MANY_REQUESTS), "{statuses:?}");
    // A signed-in tenant is not charged to the anonymous bucket.
    let tid = partner_with_customers(&app, 1, 0).await;
    let body = app.gql_as(Some(&app.token(tid, &["reader", "admin_agent"])), query, json!({})).await;
    assert!(body.get("errors").is_none(), "{body}");
}

#[tokio::test]
async fn an_oversized_body_is_413_with_a_graphql_error() {
    let app = TestApp::new().await;
    let padding = " ".repeat(app.settings.limits.max_body_bytes + 10);
    let body = format!(r#"{{"query":"{{ __typename }}{padding}"}}"#).into_bytes();
    let (status, _, body) = app.send(post_raw(body)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(error_code(&body), Some("BAD_USER_INPUT"), "{body}");
    assert!(body["errors"][0]["message"].as_str().unwrap_or_default().contains("PARTNERHUB_MAX_BODY_BYTES"));
}

/// A read that cannot finish within the time limit answers `TIMEOUT` (503). The read is held back
/// by the pool: its one connection is taken by another user, so the read waits for a connection
/// until the limit stops it, however fast the machine. (A zero limit with a large read was used
/// before: the read won the race once the responses got cheaper to write.)
#[tokio::test]
async fn a_read_past_the_time_limit_is_stopped_with_a_timeout_error() {
    use sea_orm::TransactionTrait;
    let mut settings = Settings::development(SECRET);
    settings.limits.request_timeout = std::time::Duration::from_millis(300);
    let app = TestApp::with_settings_and_pool_size(settings, 1).await;
    let tid = partner_with_customers(&app, 2, 1).await;
    let token = app.token(tid, &["admin_agent"]);
    let read = "{ customers(first: 5) { totalCount nodes { companyName subscriptions { nodes { offerName } } } } }";
    // Within the limit while the pool is free (and the caller's tenant is now known).
    let body = app.gql_as(Some(&token), read, json!({})).await;
    assert_eq!(body["data"]["customers"]["totalCount"], 2, "{body}");

    let other_user = tokio::time::timeout(std::time::Duration::from_secs(5), app.db.begin())
        .await
        .expect("the pool's connection came back")
        .expect("a transaction on the pool");
    let request = Request::post("/graphql")
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::from(serde_json::to_vec(&json!({ "query": read })).expect("body")))
        .expect("request");
    let (status, _, body) =
        tokio::time::timeout(std::time::Duration::from_secs(10), app.send(request)).await.expect("answered");
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(error_code(&body), Some("TIMEOUT"), "{body}");
    assert!(body["errors"][0]["message"].as_str().unwrap_or_default().contains("PARTNERHUB_REQUEST_TIMEOUT_SECS"));
    other_user.rollback().await.expect("rollback");
}

/// One generated hostile document (or raw body).
fn hostile_body(rng: &mut StdRng) -> Vec<u8> {
    let depth = rng.random_range(1..3000);
    let document = match rng.random_range(0..14) {
        0 => format!("{{ __typename(x: {}1{}) }}", "[".repeat(depth), "]".repeat(depth)),
        1 => format!("{{ __typename(x: {}1{}) }}", "{a:".repeat(depth), "}".repeat(depth)),
        2 => format!("query($v: {}Int{}) {{ __typename }}", "[".repeat(depth), "]".repeat(depth)),
        3 => format!("{}__typename{}", "{ viewer ".repeat(depth.min(200)), "}".repeat(depth.min(200))),
        4 => {
            let n = rng.random_range(1..5000);
            format!("{{ {} }}", (0..n).map(|i| format!("a{i}: __typename")).collect::<Vec<_>>().join(" "))
        }
        5 => {
            let n = rng.random_range(1..500);
            format!("{{ __typename {} }}", "@include(if: true) ".repeat(n))
        }
        6 => {
            let n = rng.random_range(1..2000);
            let mut doc = String::from("{ ...F0 }");
            for i in 0..n {
                doc.push_str(&format!(" fragment F{i} on Query {{ __typename ...F{} }}", i + 1));
            }
            doc
        }
        7 => format!("{{ customers(filter: {{search: \"{}\"}}) {{ totalCount }} }}", "x".repeat(depth * 100)),
        8 => "{ customers(filter: {search: \"a\\u0000b\"}) { totalCount } }".to_owned(),
        9 => {
            // Random bytes, often not UTF-8 and not JSON at all.
            return (0..rng.random_range(0..2000)).map(|_| rng.random()).collect();
        }
        10 => {
            // Valid JSON around invalid UTF-8 in the document.
            let mut body = br#"{"query":"{ __typename "#.to_vec();
            body.extend([0xff, 0xfe, 0xc3]);
            body.extend(br#" }"}"#);
            return body;
        }
        11 => {
            // Deeply nested variables.
            let n = rng.random_range(1..3000);
            let variables = format!("{}1{}", "[".repeat(n), "]".repeat(n));
            return format!(r#"{{"query":"query($v: [Int]) {{ __typename }}","variables":{{"v":{variables}}}}}"#)
                .into_bytes();
        }
        12 => {
            let keep: String = crash_documents().concat().chars().filter(|_| rng.random_bool(0.97)).collect();
            keep
        }
        _ => {
            let n = rng.random_range(1..200);
            format!(
                "{{ {} }}",
                (0..n)
                    .map(|i| format!("c{i}: customers(first: 100) {{ nodes {{ id }} }}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        }
    };
    json!({ "query": document }).to_string().into_bytes()
}

#[tokio::test]
async fn generated_hostile_documents_get_a_graphql_answer_and_the_server_stays_up() {
    let app = TestApp::new().await;
    let tid = partner_with_customers(&app, 2, 1).await;
    let token = app.token(tid, &["admin_agent"]);
    let seed: u64 = std::env::var("HOSTILE_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5eed);
    let mut rng = StdRng::seed_from_u64(seed);
    for i in 0..400 {
        let body = hostile_body(&mut rng);
        let mut request = post_raw(body.clone());
        if i % 2 == 0 {
            request.headers_mut().insert("authorization", format!("Bearer {token}").parse().expect("header"));
        }
        let (status, _, answer) = app.send(request).await;
        let shown = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
        assert!(
            [StatusCode::OK, StatusCode::BAD_REQUEST, StatusCode::PAYLOAD_TOO_LARGE, StatusCode::TOO_MANY_REQUESTS]
                .contains(&status),
            "case {i} ({shown}): status {status}: {answer}"
        );
        let graphql_shaped = answer.get("data").is_some() || answer["errors"][0]["message"].is_string();
        assert!(graphql_shaped, "case {i} ({shown}): {answer}");
        for error in answer["errors"].as_array().into_iter().flatten() {
            assert_ne!(error["extensions"]["code"], "INTERNAL", "case {i} ({shown}): {answer}");
        }
    }
    assert_alive(&app).await;
}

#[tokio::test]
async fn a_database_that_goes_away_answers_503_and_readyz_says_not_ready() {
    let app = TestApp::new().await;
    let tid = partner_with_customers(&app, 1, 0).await;
    let token = app.token(tid, &["admin_agent"]);
    let ready = Request::get("/readyz").body(Body::empty()).expect("request");
    assert_eq!(app.send(ready).await.0, StatusCode::OK);

    app.db.clone().close().await.expect("close the pool");
    let request = Request::post("/graphql")
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::from(r#"{"query":"{ customers { totalCount } }"}"#))
        .expect("request");
    let (status, headers, body) = app.send(request).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(error_code(&body), Some("INTERNAL"), "{body}");
    assert!(headers.get("www-authenticate").is_none(), "a good token must not look rejected");
    let ready = Request::get("/readyz").body(Body::empty()).expect("request");
    let (status, _, body) = app.send(ready).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
}

/// Serves the app on a real socket with the given limits; returns its address.
async fn listen(app: &TestApp, limits: partnerhub::http::server::ServeLimits) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let router = app.router.clone();
    tokio::spawn(partnerhub::http::server::serve(listener, router, limits, std::future::pending()));
    addr
}

#[tokio::test]
async fn a_client_that_trickles_its_headers_is_disconnected() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::new().await;
    let limits = partnerhub::http::server::ServeLimits {
        max_connections: 4,
        header_read_timeout: std::time::Duration::from_secs(1),
    };
    let addr = listen(&app, limits).await;

    // A complete request is served.
    let mut ok = tokio::net::TcpStream::connect(addr).await.expect("connect");
    ok.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.expect("write");
    let mut answer = String::new();
    tokio::time::timeout(std::time::Duration::from_secs(10), ok.read_to_string(&mut answer))
        .await
        .expect("answered")
        .expect("read");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // Half a request, then silence: the server hangs up instead of waiting for ever.
    let mut slow = tokio::net::TcpStream::connect(addr).await.expect("connect");
    slow.write_all(b"POST /graphql HTTP/1.1\r\nHost: x\r\nX-Slow: ").await.expect("write");
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(std::time::Duration::from_secs(10), slow.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the connection was still open after 10 s");
    let rest = String::from_utf8_lossy(&rest);
    assert!(!rest.contains("200 OK"), "{rest}");
}

/// How long a socket test waits for anything the server should send.
const PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);

/// Limits of a listening loop that stay out of the way of the bound under test.
fn roomy_serve_limits() -> partnerhub::http::server::ServeLimits {
    partnerhub::http::server::ServeLimits {
        max_connections: 16,
        header_read_timeout: std::time::Duration::from_secs(30),
    }
}

/// A response read off a socket.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Value,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Reads more bytes into `buffer`; fails the test when nothing comes within [`PATIENCE`] or the
/// server hangs up.
async fn read_more(stream: &mut (impl tokio::io::AsyncRead + Unpin), buffer: &mut Vec<u8>) {
    use tokio::io::AsyncReadExt;
    let mut chunk = [0u8; 8192];
    let n = tokio::time::timeout(PATIENCE, stream.read(&mut chunk))
        .await
        .unwrap_or_else(|_| panic!("nothing from the server in {} s", PATIENCE.as_secs()))
        .expect("read");
    assert!(n > 0, "the server hung up; received: {}", String::from_utf8_lossy(buffer));
    buffer.extend_from_slice(&chunk[..n]);
}

/// Reads one response head (also a `100 Continue`): its status and headers; `buffer` keeps what
/// follows it.
async fn read_head(
    stream: &mut (impl tokio::io::AsyncRead + Unpin),
    buffer: &mut Vec<u8>,
) -> (u16, Vec<(String, String)>) {
    let end = loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        read_more(stream, buffer).await;
    };
    let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
    buffer.drain(..end + 4);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("{head}"));
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    (status, headers)
}

/// Reads one whole response (its body sized by `Content-Length`).
async fn read_answer(stream: &mut (impl tokio::io::AsyncRead + Unpin), buffer: &mut Vec<u8>) -> Answer {
    let (status, headers) = read_head(stream, buffer).await;
    let length: usize = headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or_else(|| panic!("no content-length: {headers:?}"));
    while buffer.len() < length {
        read_more(stream, buffer).await;
    }
    let bytes: Vec<u8> = buffer.drain(..length).collect();
    let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    Answer { status, headers, body }
}

/// `POST /graphql` of `query` as raw HTTP/1.1.
fn raw_graphql_request(query: &str) -> String {
    let body = json!({ "query": query }).to_string();
    format!(
        "POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAccept: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Sends `{ __typename }` on a fresh connection and returns the answer.
async fn typename_over_a_socket(addr: std::net::SocketAddr) -> Answer {
    use tokio::io::AsyncWriteExt;
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(raw_graphql_request("{ __typename }").as_bytes()).await.expect("write");
    read_answer(&mut stream, &mut Vec::new()).await
}

/// The answer is a plain, successful `{ __typename }`.
fn assert_typename(answer: &Answer) {
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["data"]["__typename"], "Query", "{}", answer.body);
}

#[tokio::test]
async fn a_response_over_the_size_limit_is_replaced_by_a_graphql_error() {
    let mut settings = Settings::development(SECRET);
    settings.limits.max_response_bytes = 1024;
    let app = TestApp::with_settings(settings).await;
    let tid = partner_with_customers(&app, 20, 0).await;
    let token = app.token(tid, &["admin_agent"]);
    let page = |first: u32| format!("{{ customers(first: {first}) {{ nodes {{ id companyName }} }} }}");

    // Twenty customers (an id of 40-odd characters each) do not fit in 1 KiB.
    let request = crate::common::graphql_post(Some(&token), None, &page(20), json!({}));
    let (status, headers, body) = app.send(request).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(error_code(&body), Some("BAD_USER_INPUT"), "{body}");
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("PARTNERHUB_MAX_RESPONSE_BYTES") && message.contains("1024"), "{message}");
    assert!(body.get("data").is_none(), "no part of the oversized answer is sent: {body}");
    let content_type = headers["content-type"].to_str().expect("ascii");
    assert!(content_type.starts_with("application/json"), "{content_type}");
    let sent = serde_json::to_vec(&body).expect("json").len();
    assert!(sent <= 1024, "the error itself is {sent} bytes");

    // A smaller page of the same query fits and is served whole.
    let body = app.gql_as(Some(&token), &page(2), json!({})).await;
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(body["data"]["customers"]["nodes"].as_array().map(Vec::len), Some(2), "{body}");
    assert_alive(&app).await;
}

#[tokio::test]
async fn requests_past_the_in_flight_limit_get_503_rate_limited_with_retry_after() {
    use tokio::io::AsyncWriteExt;
    let mut settings = Settings::development(SECRET);
    settings.limits.max_in_flight = 1;
    // The request held open below must not be stopped by the body timeout meanwhile.
    settings.limits.body_read_timeout = std::time::Duration::from_secs(120);
    let app = TestApp::with_settings(settings).await;
    let addr = listen(&app, roomy_serve_limits()).await;

    // One request in flight: its handler is reading a body that has not all arrived. With `Expect:
    // 100-continue` the server says when it starts reading the body, that is once the request
    // holds its place; no guess about timing.
    let body = json!({ "query": "{ __typename }" }).to_string();
    let mut held = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAccept: application/json\r\n\
         Expect: 100-continue\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    held.write_all(head.as_bytes()).await.expect("write");
    let mut held_buffer = Vec::new();
    let (status, _) = read_head(&mut held, &mut held_buffer).await;
    assert_eq!(status, 100, "the server should ask for the body");
    held.write_all(&body.as_bytes()[..5]).await.expect("write");

    // Meanwhile every other request is refused at once, with a GraphQL error and Retry-After.
    for _ in 0..3 {
        let answer = typename_over_a_socket(addr).await;
        assert_eq!(answer.status, 503, "{}", answer.body);
        assert_eq!(error_code(&answer.body), Some("RATE_LIMITED"), "{}", answer.body);
        assert!(answer.body["errors"][0]["message"].is_string(), "{}", answer.body);
        assert!(answer.body.get("data").is_none(), "{}", answer.body);
        assert_eq!(answer.header("retry-after"), Some("1"));
        assert!(answer.header("content-type").is_some_and(|t| t.starts_with("application/json")));
    }
    // Health probes do not count against the limit: a busy server is not a dead one.
    for path in ["/healthz", "/readyz"] {
        use tokio::io::AsyncWriteExt;
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.expect("write");
        let answer = read_answer(&mut stream, &mut Vec::new()).await;
        assert_eq!(answer.status, 200, "{path} while the server is at its in-flight limit: {}", answer.body);
    }

    // The request in flight is not disturbed: its body completes and it is answered.
    held.write_all(&body.as_bytes()[5..]).await.expect("write");
    assert_typename(&read_answer(&mut held, &mut held_buffer).await);
    // Its place is free again: the next request is served.
    assert_typename(&typename_over_a_socket(addr).await);
}

#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_is_408_with_a_graphql_error() {
    use tokio::io::AsyncWriteExt;
    let mut settings = Settings::development(SECRET);
    settings.limits.body_read_timeout = std::time::Duration::from_secs(1);
    let app = TestApp::with_settings(settings).await;
    let addr = listen(&app, roomy_serve_limits()).await;
    let head = "POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAccept: application/json\r\n\
                Content-Length: 4096\r\n\r\n{\"query\":\"{ __typename }\"";
    let assert_408 = |answer: &Answer| {
        assert_eq!(answer.status, 408, "{}", answer.body);
        assert_eq!(error_code(&answer.body), Some("BAD_USER_INPUT"), "{}", answer.body);
        let message = answer.body["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(message.contains("PARTNERHUB_BODY_READ_TIMEOUT_SECS"), "{message}");
        assert!(answer.body.get("data").is_none(), "{}", answer.body);
    };

    // Part of a body, then silence.
    let mut stalled = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stalled.write_all(head.as_bytes()).await.expect("write");
    assert_408(&read_answer(&mut stalled, &mut Vec::new()).await);

    // A body trickled a byte at a time, each byte well within the limit of the one before: the
    // limit is on the whole body, so this client is stopped too.
    let (mut reader, mut writer) = tokio::net::TcpStream::connect(addr).await.expect("connect").into_split();
    writer.write_all(head.as_bytes()).await.expect("write");
    let trickle = tokio::spawn(async move {
        for _ in 0..(4 * PATIENCE.as_secs()) {
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            if writer.write_all(b" ").await.is_err() {
                break;
            }
        }
    });
    assert_408(&read_answer(&mut reader, &mut Vec::new()).await);
    trickle.abort();

    // A client that sends its body is served as ever.
    assert_typename(&typename_over_a_socket(addr).await);
}

#[tokio::test]
async fn connections_past_the_limit_wait_until_one_closes() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::new().await;
    let limits = partnerhub::http::server::ServeLimits {
        max_connections: 1,
        header_read_timeout: std::time::Duration::from_secs(30),
    };
    let addr = listen(&app, limits).await;

    // The one connection allowed is served, and kept open.
    let mut first = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut first_buffer = Vec::new();
    first.write_all(raw_graphql_request("{ __typename }").as_bytes()).await.expect("write");
    assert_typename(&read_answer(&mut first, &mut first_buffer).await);

    // A second connection is accepted by the kernel, but its request is not served while the
    // first connection is open.
    let mut second = tokio::net::TcpStream::connect(addr).await.expect("connect");
    second.write_all(raw_graphql_request("{ __typename }").as_bytes()).await.expect("write");
    let mut byte = [0u8; 1];
    let early = tokio::time::timeout(std::time::Duration::from_secs(1), second.read(&mut byte)).await;
    assert!(early.is_err(), "a connection past PARTNERHUB_MAX_CONNECTIONS was served: {early:?}");

    // The connection being served is not disturbed by the one waiting.
    first.write_all(raw_graphql_request("{ __typename }").as_bytes()).await.expect("write");
    assert_typename(&read_answer(&mut first, &mut first_buffer).await);

    // Once it closes, the waiting connection is served.
    drop(first);
    assert_typename(&read_answer(&mut second, &mut Vec::new()).await);
}

/// A request's statements share one pooled connection on PostgreSQL (`db::RequestConnection`), and
/// a request never waits for the pool while it keeps one. With a pool of a single connection, a
/// document of two transactions whose payloads read (the second must not wait for the connection
/// the first one's payload kept), and a query of two roots resolved side by side, both answer;
/// waiting would hold the pool until its 10 s acquire timeout and fail the request.
#[tokio::test]
async fn with_one_pooled_connection_every_request_still_answers() {
    let app = TestApp::with_pool_size(1).await;
    let (_, tid) = crate::write_customers::onboard(&app, "Solo", "solo.example", "DIRECT_BILL", "PUBLIC").await;
    let partner = app.token(tid, &["admin_agent"]);
    let two = "mutation($a: CreateCustomerInput!, $b: CreateCustomerInput!) {
        a: createCustomer(input: $a) { customer { companyName subscriptions { totalCount } } }
        b: createCustomer(input: $b) { customer { companyName subscriptions { totalCount } } } }";
    let input = |name: &str, domain: &str| json!({"companyName": name, "domain": domain, "country": "US"});
    let body = app
        .gql_as(
            Some(&partner),
            two,
            json!({"a": input("First", "first.example"), "b": input("Second", "second.example")}),
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(body["data"]["a"]["customer"]["companyName"], "First");
    assert_eq!(body["data"]["b"]["customer"]["companyName"], "Second");
    assert_eq!(body["data"]["b"]["customer"]["subscriptions"]["totalCount"], 0);

    let side_by_side = "{ a: customers(first: 5) { totalCount nodes { companyName subscriptions { totalCount } } }
        b: customers(first: 1) { totalCount } }";
    let body = app.gql_as(Some(&partner), side_by_side, json!({})).await;
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(body["data"]["a"]["totalCount"], 2);
    assert_eq!(body["data"]["b"]["totalCount"], 2);
}

/// Only a connection on which nothing but completed `SELECT`, `INSERT`, `UPDATE`, `DELETE` or `WITH`
/// statements ran is handed on warm: one that ran anything else (here a `BEGIN`, followed by a plain
/// `SELECT`) goes back to the pool, whose check closes it, so no request inherits its transaction.
#[tokio::test]
async fn a_connection_that_ran_anything_but_plain_statements_never_goes_warm() {
    use partnerhub::db::RequestConnection;
    use sea_orm::{ConnectionTrait, DbBackend, Statement};
    let app = TestApp::new().await;
    if app.db.get_database_backend() != DbBackend::Postgres {
        return; // SQLite keeps no connection for a request.
    }
    let sql = |text: &str| Statement::from_string(DbBackend::Postgres, text);
    let plain = RequestConnection::keeping(app.db.clone(), &app.state.warm, None);
    plain.query_one_raw(sql("SELECT 1")).await.expect("select");
    drop(plain);
    assert_eq!(app.state.warm.len(), 1, "a connection that ran a SELECT goes warm");

    let opened = RequestConnection::keeping(app.db.clone(), &app.state.warm, None);
    opened.execute_raw(sql("BEGIN")).await.expect("begin");
    opened.query_one_raw(sql("SELECT 1")).await.expect("select");
    drop(opened);
    assert_eq!(app.state.warm.len(), 0, "the connection inside a transaction went warm");

    // `SAVEPOINT` fails outside a transaction block.
    let next = RequestConnection::keeping(app.db.clone(), &app.state.warm, None);
    assert!(next.execute_raw(sql("SAVEPOINT probe")).await.is_err(), "the next request is inside a transaction");
}

/// Sends `read` until a request's connection is held warm (at most 50 times; once on SQLite).
async fn read_until_warm(app: &TestApp, token: &str, read: &str, postgres: bool) {
    for _ in 0..50 {
        let body = app.gql_as(Some(token), read, json!({})).await;
        assert_eq!(body["data"]["customers"]["totalCount"], 2, "{body}");
        if !app.state.warm.is_empty() || !postgres {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// On PostgreSQL a request hands its connection on to the next request (held "warm",
/// `db::WarmConnections`) only while the pool could still give its other users a connection at
/// once. With the pool exhausted, the connection goes back to the pool, where a waiting
/// transaction, the event feed or a webhook takes it in its turn.
#[tokio::test]
async fn connections_held_warm_never_keep_the_pools_other_users_waiting() {
    use sea_orm::{DbBackend, TransactionTrait};
    let app = TestApp::with_pool_size(2).await;
    let tid = partner_with_customers(&app, 2, 1).await;
    let token = app.token(tid, &["admin_agent"]);
    // No nested page: its loader's task could hold the request's connection a moment after the
    // answer.
    let read = "{ customers(first: 5) { totalCount nodes { companyName } } }";
    let postgres = app.db.get_database_backend() == DbBackend::Postgres;
    // With room in the pool, a request's connection waits warm for the next one (once the pool
    // has back the connection the first request's tenant was read on: it checks it in a task of its
    // own).
    read_until_warm(&app, &token, read, postgres).await;
    assert_eq!(!app.state.warm.is_empty(), postgres, "warm connections: {}", app.state.warm.len());

    // Another user of the pool takes its other connection; the next request takes the warm one,
    // which leaves the pool nothing to hand out: when that request ends, its connection goes back
    // to the pool.
    let other_user = app.db.begin().await.expect("a transaction on the pool");
    let body = app.gql_as(Some(&token), read, json!({})).await;
    assert_eq!(body["data"]["customers"]["totalCount"], 2, "{body}");
    assert_eq!(app.state.warm.len(), 0, "a connection held warm while the pool had none to give");
    let second_user = tokio::time::timeout(std::time::Duration::from_secs(5), app.db.begin())
        .await
        .expect("the pool's other user waited")
        .expect("a second transaction on the pool");
    second_user.rollback().await.expect("rollback");
    other_user.rollback().await.expect("rollback");
    // Once the pool has its connections back, a request's connection goes warm again.
    read_until_warm(&app, &token, read, postgres).await;

    // Closing the pool waits for every connection to come back: those held warm come back at
    // once, and no request gets one afterwards.
    assert_eq!(!app.state.warm.is_empty(), postgres, "warm connections: {}", app.state.warm.len());
    tokio::time::timeout(std::time::Duration::from_secs(5), app.db.clone().close())
        .await
        .expect("closing the pool waited for connections held warm")
        .expect("close the pool");
    assert_eq!(app.state.warm.len(), 0);
    let body = app.gql_as(Some(&token), read, json!({})).await;
    assert!(body["data"]["customers"].is_null(), "a request after the pool closed: {body}");
}

/// On PostgreSQL, while the pool has no connection to give, a request that ends hands its
/// connection straight to the first request waiting for one (`db::WarmConnections`), skipping the
/// pool's two round trips of checks; yet the pool's own waiters (here a transaction) still get a
/// connection while requests keep queueing: at least one connection every few milliseconds goes back
/// to the pool.
#[tokio::test]
async fn with_the_pool_exhausted_connections_go_to_waiting_requests_and_transactions_still_get_theirs() {
    use partnerhub::db::RequestConnection;
    use sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionTrait};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;
    let app = TestApp::with_pool_size(1).await;
    if app.db.get_database_backend() != DbBackend::Postgres {
        return; // SQLite keeps no connection for a request.
    }
    let pid = |conn: RequestConnection| async move {
        let sql = Statement::from_string(DbBackend::Postgres, "SELECT pg_backend_pid() AS pid");
        let row = conn.query_one_raw(sql).await.expect("query").expect("a row");
        row.try_get::<i32>("", "pid").expect("pid")
    };
    let keeping = || RequestConnection::keeping(app.db.clone(), &app.state.warm, None);

    // One request holds the pool's only connection; the next waits, and gets that connection as
    // soon as the first ends.
    let first = keeping();
    let first_pid = pid(first.clone()).await;
    let next = tokio::spawn(pid(keeping()));
    for _ in 0..200 {
        if app.state.warm.waiting() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(app.state.warm.waiting(), 1, "the second request is not waiting");
    let handed = app.state.warm.handed_on();
    drop(first);
    let next_pid =
        tokio::time::timeout(Duration::from_secs(5), next).await.expect("the waiting request").expect("task");
    assert_eq!(next_pid, first_pid, "the waiting request got another connection");
    assert_eq!(app.state.warm.handed_on(), handed + 1, "the connection went through the pool");
    assert_eq!(app.state.warm.waiting(), 0);

    // Three requests keep reading, one connection between them: each that ends hands it to the
    // next. A transaction on the pool still gets the connection while they go on.
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let (db, warm, stop) = (app.db.clone(), app.state.warm.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    pid(RequestConnection::keeping(db.clone(), &warm, None)).await;
                }
            })
        })
        .collect();
    let before = app.state.warm.handed_on();
    for _ in 0..400 {
        if app.state.warm.handed_on() >= before + 20 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(app.state.warm.handed_on() >= before + 20, "the readers did not hand the connection on");
    let transaction = tokio::time::timeout(Duration::from_secs(5), app.db.begin()).await;
    stop.store(true, Ordering::Relaxed);
    let transaction =
        transaction.expect("the transaction waited while requests handed the connection on").expect("begin");
    transaction.rollback().await.expect("rollback");
    for reader in readers {
        tokio::time::timeout(Duration::from_secs(5), reader).await.expect("a reader stops").expect("task");
    }
}

/// The embedded SQLite is built with its query planner stability guarantee on
/// (`.cargo/config.toml`): without it, every execution of a cached statement with a bound `LIMIT`
/// (every page and every lookup) makes SQLite parse and plan the statement again, which on SQLite
/// took a tenth of the server's time under a write load and a sixth of one-customer reads.
#[tokio::test]
async fn sqlite_keeps_each_statements_plan_whatever_values_are_bound() {
    use sea_orm::{ConnectionTrait, DbBackend, Statement};
    let app = TestApp::new().await;
    if app.db.get_database_backend() != DbBackend::Sqlite {
        return; // PostgreSQL plans its prepared statements itself.
    }
    let row = app
        .db
        .query_one_raw(Statement::from_string(
            DbBackend::Sqlite,
            "SELECT sqlite_compileoption_used('ENABLE_QPSG') AS on_",
        ))
        .await
        .expect("query")
        .expect("a row");
    let on: i32 = row.try_get("", "on_").expect("an integer");
    assert_eq!(on, 1, "SQLite was built without SQLITE_ENABLE_QPSG: is LIBSQLITE3_FLAGS in .cargo/config.toml set?");
}

/// On SQLite the server's write transactions queue for their turn (`db::WriteTurns`) before they
/// take a pooled connection. While another writer (here a transaction outside the server's
/// requests, as another process would hold it) keeps the database's write lock, the mutations
/// waiting behind it hold one connection between them, not one each, so reads still get
/// connections and answer; once the lock is free, every mutation commits.
#[tokio::test]
async fn mutations_waiting_for_sqlites_write_lock_leave_the_connections_to_reads() {
    use sea_orm::{DbBackend, SqliteTransactionMode, TransactionOptions, TransactionTrait};
    let app = TestApp::with_pool_size(3).await;
    if app.db.get_database_backend() != DbBackend::Sqlite {
        return; // PostgreSQL's transactions write side by side.
    }
    let tid = partner_with_customers(&app, 1, 0).await;
    let token = app.token(tid, &["admin_agent"]);
    let read = "{ customers(first: 5) { totalCount } }";
    // Resolves and caches the tenant, so the mutations below only read what they write.
    assert_eq!(app.gql_as(Some(&token), read, json!({})).await["data"]["customers"]["totalCount"], 1);

    let immediate =
        TransactionOptions { sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate), ..Default::default() };
    let lock = app.db.begin_with_options(immediate).await.expect("the write lock, on one connection of three");
    let create = "mutation($i: CreateCustomerInput!) { createCustomer(input: $i) { customer { companyName } } }";
    let writes = (0..3)
        .map(|i| {
            let input = json!({"i": {"companyName": format!("Queued {i}"), "domain": format!("q{i}-{}.example", tid.simple()), "country": "US"}});
            (token.clone(), create.to_owned(), input)
        })
        .collect();
    let writes = app.concurrently(writes);
    tokio::pin!(writes);
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(300), &mut writes).await.is_err(),
        "the mutations wait for the write lock"
    );
    let body = tokio::time::timeout(std::time::Duration::from_secs(5), app.gql_as(Some(&token), read, json!({})))
        .await
        .expect("a read answers while mutations wait for the write lock");
    assert_eq!(body["data"]["customers"]["totalCount"], 1, "{body}");

    lock.rollback().await.expect("rollback");
    for body in writes.await {
        assert!(body["data"]["createCustomer"]["customer"]["companyName"].is_string(), "{body}");
    }
    assert_eq!(app.gql_as(Some(&token), read, json!({})).await["data"]["customers"]["totalCount"], 4);
}
