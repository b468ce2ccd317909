//! R15: every successful mutation writes its audit event and its outbox event in its transaction;
//! a failed one writes nothing. A random sequence of calls (valid and invalid, by every kind of
//! caller) is compared, call by call, with what the audit trail and the outbox hold.

use entity::outbox_event;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use sea_orm::EntityTrait;
use serde_json::json;
use uuid::Uuid;

use crate::common::TestApp;
use crate::write_customers::{CREATE_CUSTOMER, ONBOARD, onboard};

const SET_STATUS: &str =
    "mutation($input: SetPartnerStatusInput!) { setPartnerStatus(input: $input) { partner { status } } }";

#[tokio::test]
async fn r15_audit_and_outbox_events_match_successful_mutations_exactly() {
    let app = TestApp::new().await;
    let mut rng = StdRng::seed_from_u64(15);
    let platform = app.token(app.platform(), &["platform_admin"]);
    let (p1, t1) = onboard(&app, "P1", "p1.example", "DIRECT_BILL", "PUBLIC").await;
    let (_p2, t2) = onboard(&app, "P2", "p2.example", "INDIRECT_RESELLER", "PUBLIC").await;
    let tokens = [
        platform.clone(),
        app.token(t1, &["admin_agent"]),
        app.token(t1, &["helpdesk_agent"]),
        app.token(t2, &["admin_agent"]),
    ];
    let mut calls: Vec<(String, bool)> = Vec::new();
    for i in 0..100 {
        let token = tokens.choose(&mut rng).unwrap();
        // Some domains repeat on purpose (DOMAIN_TAKEN), some are invalid.
        let domain = match rng.random_range(0..10) {
            0 => "not a domain".to_owned(),
            1..=3 => format!("shared{}.example", rng.random_range(0..3)),
            _ => format!("c{i}.example"),
        };
        let (query, input) = match rng.random_range(0..4) {
            0 => (
                ONBOARD,
                json!({"name": format!("N{i}"), "domain": domain, "partnerType": "DIRECT_BILL", "partnerNetworkId": format!("PN{}", rng.random_range(0..20))}),
            ),
            1 => (
                SET_STATUS,
                json!({"partnerId": p1, "status": if rng.random_bool(0.5) { "ACTIVE" } else { "SUSPENDED" }}),
            ),
            _ => (
                CREATE_CUSTOMER,
                json!({"companyName": format!("C{i}"), "domain": domain, "country": *["US", "DE", "XX"].choose(&mut rng).unwrap()}),
            ),
        };
        let request_id = format!("r15-{i}-{}", Uuid::new_v4());
        let body = app.gql_with_request_id(token, &request_id, query, json!({"input": input})).await;
        let ok = body.get("errors").is_none();
        calls.push((request_id, ok));
    }
    let successes = calls.iter().filter(|(_, ok)| *ok).count();
    assert!(
        successes >= 10 && calls.len() - successes >= 10,
        "the sequence mixes successes ({successes}) and failures"
    );

    let data = app.data(&platform, "{ auditEvents(first: 100) { totalCount nodes { requestId } } }", json!({})).await;
    let audited: Vec<String> = data["auditEvents"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["requestId"].as_str().unwrap().to_owned())
        .collect();
    let outbox: Vec<String> = outbox_event::Entity::find()
        .all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.payload["requestId"].as_str().unwrap_or_default().to_owned())
        .collect();
    for (request_id, ok) in &calls {
        let in_audit = audited.iter().filter(|r| *r == request_id).count();
        let in_outbox = outbox.iter().filter(|r| *r == request_id).count();
        if *ok {
            assert!(in_audit >= 1, "{request_id} succeeded without an audit event");
            assert_eq!(in_audit, in_outbox, "{request_id}: one outbox event per audit event");
        } else {
            assert_eq!((in_audit, in_outbox), (0, 0), "{request_id} failed but left events");
        }
    }
}
