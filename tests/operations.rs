//! Operating the server: `/metrics` and graceful shutdown.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use entity::enums::{Cloud, PartnerType};
use partnerhub::config::Settings;
use serde_json::json;
use tower::ServiceExt;
use uuid::Uuid;

use crate::cancellation::{Server, token};
use crate::common::{SECRET, ScratchDatabase, TestApp};

async fn get_metrics(app: &TestApp, bearer: Option<&str>) -> (StatusCode, String) {
    let mut request = Request::get("/metrics");
    if let Some(bearer) = bearer {
        request = request.header("authorization", format!("Bearer {bearer}"));
    }
    let response = app.router.clone().oneshot(request.body(Body::empty()).unwrap()).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    (status, String::from_utf8(bytes.to_vec()).unwrap())
}

/// The value of the first sample of `series` whose labels include every one of `labels`.
fn sample(page: &str, series: &str, labels: &[&str]) -> Option<f64> {
    page.lines().filter(|l| !l.starts_with('#')).find_map(|line| {
        let (name_and_labels, value) = line.rsplit_once(' ')?;
        let matches = name_and_labels.starts_with(&format!("{series}{{"))
            && labels.iter().all(|l| name_and_labels.contains(l))
            || labels.is_empty() && name_and_labels == series;
        matches.then(|| value.parse().ok()).flatten()
    })
}

/// After a few requests, `/metrics` shows requests by operation and outcome, their latency, the
/// SQL statements they issued and the pool, with no tenant id anywhere.
#[tokio::test]
async fn metrics_show_requests_latency_statements_and_the_pool() {
    let app = TestApp::new().await;
    let partner = app
        .seed()
        .partner(Uuid::new_v4(), "Metrics Partner", "metrics.example", PartnerType::DirectBill, Cloud::Public)
        .await
        .unwrap();
    let token = app.token(partner.tenant_id, &["admin_agent"]);
    for _ in 0..3 {
        app.data(&token, "{ customers(first: 5) { totalCount nodes { id } } }", json!({})).await;
    }
    let refused = app.gql_as(Some(&token), "{ customers(first: 5) { nope } }", json!({})).await;
    assert!(refused["errors"].is_array());
    let unparsable = app.gql_as(Some(&token), "{ customers(", json!({})).await;
    assert!(unparsable["errors"].is_array());

    let (status, page) = get_metrics(&app, None).await;
    assert_eq!(status, StatusCode::OK);
    let ok = sample(
        &page,
        "partnerhub_graphql_requests_total",
        &[r#"type="query""#, r#"field="customers""#, r#"outcome="OK""#],
    );
    assert!(ok.is_some_and(|n| n >= 3.0), "requests by operation and outcome:\n{page}");
    assert!(
        sample(&page, "partnerhub_graphql_requests_total", &[r#"outcome="GRAPHQL_VALIDATION_FAILED""#, r#"field="-""#])
            .is_some(),
        "a refused document is counted under its code, without a field of its own"
    );
    assert!(sample(&page, "partnerhub_graphql_requests_total", &[r#"outcome="GRAPHQL_PARSE_FAILED""#]).is_some());
    let latency = sample(&page, "partnerhub_graphql_request_duration_seconds_count", &[r#"type="query""#]);
    assert!(latency.is_some_and(|n| n >= 3.0), "latency histogram:\n{page}");
    let statements = sample(&page, "partnerhub_sql_statements_per_request_sum", &[r#"type="query""#]);
    assert!(statements.is_some_and(|n| n >= 3.0), "each read issued SQL statements, counted per request:\n{page}");
    assert!(sample(&page, "partnerhub_db_pool_connections", &[r#"state="idle""#]).is_some());
    assert!(sample(&page, "partnerhub_db_pool_connections", &[r#"state="in_use""#]).is_some());
    assert!(sample(&page, "partnerhub_db_pool_connections", &[r#"state="max""#]).is_some_and(|n| n >= 1.0));
    // Nothing waits for a connection once the reads have answered.
    assert_eq!(sample(&page, "partnerhub_db_requests_waiting", &[]), Some(0.0), "{page}");
    for series in [
        "partnerhub_websockets_open",
        "partnerhub_events_delivered_total{transport=\"websocket\"}",
        "partnerhub_events_delivered_total{transport=\"webhook\"}",
        "partnerhub_webhook_attempts_total{outcome=\"success\"}",
        "partnerhub_webhook_attempts_total{outcome=\"failure\"}",
        "partnerhub_outbox_lag_seconds",
    ] {
        assert!(page.lines().any(|l| l.starts_with(&format!("{series} "))), "{series} is listed:\n{page}");
    }
    assert!(!page.contains(&partner.tenant_id.to_string()), "no tenant id in a label");
}

#[tokio::test]
async fn metrics_ask_for_the_configured_token() {
    let mut settings = Settings::development(SECRET);
    settings.metrics_token = Some("scrape-me".into());
    let app = TestApp::with_settings(settings).await;
    assert_eq!(get_metrics(&app, None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(get_metrics(&app, Some("scrape-m")).await.0, StatusCode::UNAUTHORIZED);
    let (status, page) = get_metrics(&app, Some("scrape-me")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("partnerhub_db_pool_connections"));
}

/// SIGTERM: the server stops accepting connections, finishes the request in flight (here one whose
/// body is still arriving), and exits 0.
#[tokio::test]
async fn sigterm_finishes_the_request_in_flight_then_exits() {
    let database = ScratchDatabase::new().await;
    let log = std::env::temp_dir().join(format!("ph-sigterm-{}.log", Uuid::new_v4().simple()));
    let platform = Uuid::new_v4();
    let mut server = Server::start(&database.url, platform, &log).await;
    let address = server.base.trim_start_matches("http://").to_owned();

    let body = json!({"query": "{ viewer { tenantId } }"}).to_string();
    let (first, rest) = body.split_at(body.len() / 2);
    let mut stream = std::net::TcpStream::connect(&address).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let head = format!(
        "POST /graphql HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nAuthorization: Bearer {}\r\nContent-Length: {}\r\n\r\n",
        token(platform, &["platform_admin"]),
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(first.as_bytes()).unwrap();
    stream.flush().unwrap();
    // The request is in flight once its head has been read; then the signal.
    std::thread::sleep(Duration::from_millis(300));
    let pid = server.child.id().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());

    // New connections are refused once the listener is closed.
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(&address).is_ok() {
        assert!(Instant::now() < deadline, "the listener is still open after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }

    stream.write_all(rest.as_bytes()).unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "the request in flight was answered:\n{answer}");
    assert!(answer.contains(&platform.to_string()), "with its data:\n{answer}");

    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the server did not exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status after SIGTERM: {status}");
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(logged.contains("shutting down"), "the shutdown is logged:\n{logged}");
    let _ = std::fs::remove_file(&log);
}
