//! Identity: every kind of bad token is refused with `UNAUTHENTICATED` (401), unknown tenants with
//! `UNKNOWN_TENANT`, and roles of another tenant kind are ignored.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use entity::enums::{Cloud, PartnerType};
use partnerhub::auth::jwt::{Claims, mint_hs256};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::{SECRET, TestApp, error_code};

async fn viewer_with(app: &TestApp, authorization: &str) -> (StatusCode, Value) {
    let request = Request::post("/graphql")
        .header("content-type", "application/json")
        .header("authorization", authorization)
        .body(Body::from(json!({"query": "{ viewer { tenantKind roles } }"}).to_string()))
        .unwrap();
    let (status, _, body) = app.send(request).await;
    (status, body)
}

fn claims(tid: Uuid, exp_offset: i64) -> Claims {
    let now = chrono::Utc::now().timestamp();
    Claims {
        tid,
        sub: "someone".into(),
        exp: now + exp_offset,
        roles: vec!["platform_admin".into()],
        nbf: None,
        iat: Some(now),
    }
}

#[tokio::test]
async fn bad_tokens_are_unauthenticated() {
    let app = TestApp::new().await;
    let platform = app.platform();
    let expired = mint_hs256(SECRET, &claims(platform, -3600)).unwrap();
    let wrong_key = mint_hs256("another-secret-another-secret-another", &claims(platform, 3600)).unwrap();
    let mut future = claims(platform, 7200);
    future.nbf = Some(chrono::Utc::now().timestamp() + 3600);
    let not_yet = mint_hs256(SECRET, &future).unwrap();
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims(platform, 3600)).unwrap());
    let alg_none = format!("{}.{payload}.", URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#));
    // Correctly signed, but without the required `tid` claim.
    let no_tid = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({"sub": "x", "exp": chrono::Utc::now().timestamp() + 60}),
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    let cases = [
        ("expired", format!("Bearer {expired}")),
        ("wrong key", format!("Bearer {wrong_key}")),
        ("not yet valid", format!("Bearer {not_yet}")),
        ("alg none", format!("Bearer {alg_none}")),
        ("no tid", format!("Bearer {no_tid}")),
        ("garbage", "Bearer not.a.token".into()),
        ("not bearer", format!("Basic {}", URL_SAFE_NO_PAD.encode("user:pass"))),
        ("empty bearer", "Bearer ".into()),
    ];
    for (case, header) in cases {
        let (status, body) = viewer_with(&app, &header).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{case}: {body}");
        assert_eq!(error_code(&body), Some("UNAUTHENTICATED"), "{case}");
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(!message.contains(header.trim_start_matches("Bearer ")) || header.len() < 10, "{case}: token echoed");
    }
}

#[tokio::test]
async fn expiry_within_the_leeway_is_accepted() {
    let app = TestApp::new().await;
    let token = mint_hs256(SECRET, &claims(app.platform(), -5)).unwrap();
    let (status, body) = viewer_with(&app, &format!("Bearer {token}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["viewer"]["tenantKind"], "PLATFORM");
}

#[tokio::test]
async fn unknown_tenants_are_refused() {
    let app = TestApp::new().await;
    let token = app.token(Uuid::new_v4(), &["admin_agent"]);
    let (status, body) = viewer_with(&app, &format!("Bearer {token}")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(error_code(&body), Some("UNKNOWN_TENANT"));
}

#[tokio::test]
async fn roles_of_another_tenant_kind_are_ignored() {
    let app = TestApp::new().await;
    let seed = app.seed();
    let tid = Uuid::new_v4();
    seed.partner(tid, "Contoso", "contoso.example", PartnerType::DirectBill, Cloud::Public).await.unwrap();
    let token = app.token(tid, &["admin_agent", "global_admin", "platform_admin", "no_such_role", "sales_agent"]);
    let data = app
        .data(&token, "{ viewer { tenantId tenantKind roles partner { name } customer { companyName } } }", json!({}))
        .await;
    assert_eq!(data["viewer"]["tenantKind"], "PARTNER");
    assert_eq!(data["viewer"]["tenantId"], tid.to_string());
    assert_eq!(data["viewer"]["roles"], json!(["admin_agent", "sales_agent"]));
    assert_eq!(data["viewer"]["partner"]["name"], "Contoso");
    assert_eq!(data["viewer"]["customer"], Value::Null);

    let ctid = Uuid::new_v4();
    seed.customer(ctid, "Adatum", "adatum.example", "US", Cloud::Public).await.unwrap();
    let token = app.token(ctid, &["admin_agent", "reader"]);
    let data = app.data(&token, "{ viewer { tenantKind roles customer { companyName } } }", json!({})).await;
    assert_eq!(data["viewer"]["tenantKind"], "CUSTOMER");
    assert_eq!(data["viewer"]["roles"], json!(["reader"]));
    assert_eq!(data["viewer"]["customer"]["companyName"], "Adatum");
}

#[tokio::test]
async fn a_token_issued_in_the_future_beyond_the_leeway_is_unauthenticated() {
    let app = TestApp::new().await;
    let mut future = claims(app.platform(), 7200);
    future.iat = Some(chrono::Utc::now().timestamp() + 3600);
    let token = mint_hs256(SECRET, &future).unwrap();
    let (status, body) = viewer_with(&app, &format!("Bearer {token}")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(error_code(&body), Some("UNAUTHENTICATED"));
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("iat"), "{body}");
    // A clock a few seconds ahead is within the leeway.
    future.iat = Some(chrono::Utc::now().timestamp() + 5);
    let token = mint_hs256(SECRET, &future).unwrap();
    let (status, body) = viewer_with(&app, &format!("Bearer {token}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn a_subject_longer_than_256_bytes_is_unauthenticated() {
    let app = TestApp::new().await;
    for sub in ["s".repeat(200 * 1024), "s".repeat(257), "line\nbreak".into()] {
        let mut c = claims(app.platform(), 3600);
        c.sub = sub;
        let token = mint_hs256(SECRET, &c).unwrap();
        let (status, body) = viewer_with(&app, &format!("Bearer {token}")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(error_code(&body), Some("UNAUTHENTICATED"));
        assert!(body["errors"][0]["message"].as_str().unwrap().contains("256"), "{body}");
    }
    let mut c = claims(app.platform(), 3600);
    c.sub = "s".repeat(256);
    let (status, body) = viewer_with(&app, &format!("Bearer {}", mint_hs256(SECRET, &c).unwrap())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// Unknown tenants are not cached: a tenant onboarded right after its token was refused signs in
/// at once.
#[tokio::test]
async fn a_tenant_onboarded_after_an_unknown_tenant_lookup_signs_in_at_once() {
    let app = TestApp::new().await;
    let tid = Uuid::new_v4();
    let token = app.token(tid, &["admin_agent"]);
    let (status, body) = viewer_with(&app, &format!("Bearer {token}")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(error_code(&body), Some("UNKNOWN_TENANT"));
    let platform = app.token(app.platform(), &["platform_admin"]);
    let input = json!({"tenantId": tid, "name": "Contoso", "domain": "contoso.example", "partnerType": "DIRECT_BILL",
        "partnerNetworkId": "PN-1", "cloud": "PUBLIC"});
    let onboard = "mutation($input: OnboardPartnerInput!) { onboardPartner(input: $input) { partner { tenantId } } }";
    app.data(&platform, onboard, json!({"input": input})).await;
    let (status, body) = viewer_with(&app, &format!("Bearer {token}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["viewer"]["tenantKind"], "PARTNER");
}

/// A signed-in request reads its tenant once: repeated within the cache's TTL, `{ __typename }`
/// issues no statement at all.
#[tokio::test]
async fn a_cached_tenant_costs_no_statement() {
    let app = TestApp::new().await;
    let tid = Uuid::new_v4();
    app.seed().partner(tid, "Contoso", "contoso.example", PartnerType::DirectBill, Cloud::Public).await.unwrap();
    let ctid = Uuid::new_v4();
    app.seed().customer(ctid, "Adatum", "adatum.example", "US", Cloud::Public).await.unwrap();
    for token in [app.token(tid, &["admin_agent"]), app.token(ctid, &["reader"])] {
        let before = app.statement_count();
        assert_eq!(app.data(&token, "{ __typename }", json!({})).await["__typename"], "Query");
        let first = app.statement_count() - before;
        let before = app.statement_count();
        assert_eq!(app.data(&token, "{ __typename }", json!({})).await["__typename"], "Query");
        let second = app.statement_count() - before;
        assert!(first >= 1, "the first request reads the tenant");
        assert_eq!(second, 0, "the second request is served from the tenant cache");
    }

    // Turned off (`PARTNERHUB_TENANT_CACHE_SECS=0`), every request reads it.
    let mut settings = partnerhub::config::Settings::development(crate::common::SECRET);
    settings.tenant_cache_ttl = std::time::Duration::ZERO;
    let app = TestApp::with_settings(settings).await;
    app.seed().partner(tid, "Contoso", "contoso.example", PartnerType::DirectBill, Cloud::Public).await.unwrap();
    let token = app.token(tid, &["admin_agent"]);
    app.data(&token, "{ __typename }", json!({})).await;
    let before = app.statement_count();
    app.data(&token, "{ __typename }", json!({})).await;
    assert_eq!(app.statement_count() - before, 1);
}
