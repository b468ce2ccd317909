//! Tokens never appear in logs: every log line of requests with good, bad and garbage tokens, at
//! TRACE level, is captured and searched for the token and its signature.

use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::Request;
use serde_json::json;

use crate::common::TestApp;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn tokens_never_appear_in_logs() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let tokens = tracing::subscriber::with_default(subscriber, || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let app = TestApp::new().await;
            let good = app.token(app.platform(), &["platform_admin"]);
            let forged = format!("{}x", &good[..good.len() - 1]);
            for token in [&good, &forged, &"not-a-jwt-but-secret-looking-0123456789".to_owned()] {
                let request = Request::post("/graphql")
                    .header("content-type", "application/json")
                    .header("authorization", format!("Bearer {token}"))
                    .body(Body::from(json!({"query": "{ viewer { tenantId } customers { totalCount } }"}).to_string()))
                    .unwrap();
                app.send(request).await;
            }
            vec![good, forged]
        })
    });
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("graphql request"), "the request lines are captured");
    for token in tokens {
        let signature = token.rsplit('.').next().unwrap();
        assert!(!logs.contains(&token) && !logs.contains(signature), "a token reached the logs");
    }
    assert!(!logs.contains("not-a-jwt-but-secret-looking"), "a bearer value reached the logs");
}
