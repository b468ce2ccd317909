//! R15: every successful mutation writes its audit event and its outbox event in its transaction;
//! a failed one writes nothing. A random sequence of calls (valid and invalid, by every kind of
//! caller) is compared, call by call, with what the audit trail and the outbox hold.

use entity::outbox_event;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use sea_orm::EntityTrait;
use std::collections::BTreeSet;

use serde_json::{Value, json};
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

/// The same comparison over every kind of mutation: relationships, subscriptions, transfers,
/// customers and partners, by every kind of caller, with stale versions and invalid inputs mixed in.
#[tokio::test]
async fn r15_every_mutation_kind_writes_audit_and_outbox_only_when_it_succeeds() {
    let app = TestApp::new().await;
    let mut rng = StdRng::seed_from_u64(1515);
    let platform = app.token(app.platform(), &["platform_admin"]);
    let (a, a_tid) = onboard(&app, "A", "a.example", "DIRECT_BILL", "PUBLIC").await;
    let (_b, b_tid) = onboard(&app, "B", "b.example", "DIRECT_BILL", "PUBLIC").await;
    let (_p, p_tid) = onboard(&app, "P", "p.example", "INDIRECT_PROVIDER", "PUBLIC").await;
    let (r, r_tid) = onboard(&app, "R", "r.example", "INDIRECT_RESELLER", "PUBLIC").await;
    let partners = [
        app.token(a_tid, &["admin_agent"]),
        app.token(b_tid, &["admin_agent", "sales_agent"]),
        app.token(p_tid, &["admin_agent"]),
        app.token(r_tid, &["admin_agent"]),
    ];
    let tenants = [a_tid, b_tid, p_tid, r_tid];
    let mut customers: Vec<(String, String, String)> = Vec::new(); // (id, domain, global_admin token)
    for (i, creator) in [&partners[0], &platform, &partners[1]].into_iter().enumerate() {
        let domain = format!("cust{i}.example");
        let data = app
            .data(
                creator,
                CREATE_CUSTOMER,
                json!({"input": {"companyName": format!("C{i}"), "domain": domain, "country": "US"}}),
            )
            .await;
        let c = &data["createCustomer"]["customer"];
        let token = app.token(c["tenantId"].as_str().unwrap().parse().unwrap(), &["global_admin"]);
        customers.push((c["id"].as_str().unwrap().to_owned(), domain, token));
    }
    let mut relationships: Vec<String> = Vec::new();
    let mut subscriptions: Vec<String> = Vec::new();
    let mut transfers: Vec<String> = Vec::new();
    let mut calls: Vec<(String, bool, &'static str)> = Vec::new();
    for i in 0..300 {
        let partner = partners.choose(&mut rng).unwrap().clone();
        let (customer_id, domain, owner) = customers.choose(&mut rng).unwrap().clone();
        // A real id when there is one, else an id that names nothing.
        let pick = |list: &Vec<String>, rng: &mut StdRng| {
            list.choose(rng).cloned().unwrap_or_else(|| {
                partnerhub::graphql::ids::encode(partnerhub::graphql::ids::NodeType::Subscription, Uuid::nil()).0
            })
        };
        let sub = pick(&subscriptions, &mut rng);
        // Mostly the current version, sometimes a stale one.
        let found = app
            .gql_as(
                Some(&platform),
                "query($id: ID!) { subscription(id: $id) { version partner { tenantId } } }",
                json!({"id": sub}),
            )
            .await;
        let current = found["data"]["subscription"]["version"].as_i64().unwrap_or(1);
        // Mostly the partner of record acts on its subscriptions (others mostly get NOT_FOUND).
        let of_record = found["data"]["subscription"]["partner"]["tenantId"]
            .as_str()
            .and_then(|t| tenants.iter().position(|x| x.to_string() == t));
        let partner = match of_record {
            Some(k) if rng.random_bool(0.7) => partners[k].clone(),
            _ => partner,
        };
        let version = if rng.random_bool(0.8) { current } else { current - 1 };
        let (name, token, query, input): (&'static str, String, &str, Value) = match rng.random_range(0..12) {
            0 => (
                "requestRelationship",
                partner,
                "mutation($i: RequestRelationshipInput!) { requestRelationship(input: $i) { relationship { id } } }",
                if rng.random_bool(0.5) {
                    json!({"customerDomain": domain, "kind": "RESELLER"})
                } else {
                    json!({"customerDomain": domain, "kind": "DELEGATED_ADMIN", "roles": ["admin_agent"]})
                },
            ),
            1 => (
                "acceptRelationship",
                if rng.random_bool(0.8) { owner } else { partner },
                "mutation($i: RelationshipActionInput!) { acceptRelationship(input: $i) { relationship { id } } }",
                json!({"id": pick(&relationships, &mut rng)}),
            ),
            2 => (
                "declineRelationship",
                owner,
                "mutation($i: RelationshipActionInput!) { declineRelationship(input: $i) { relationship { id } } }",
                json!({"id": pick(&relationships, &mut rng)}),
            ),
            3 => (
                "terminateRelationship",
                if rng.random_bool(0.5) { owner } else { partner },
                "mutation($i: RelationshipActionInput!) { terminateRelationship(input: $i) { relationship { id } } }",
                json!({"id": pick(&relationships, &mut rng)}),
            ),
            4 => (
                "createSubscription",
                partner,
                "mutation($i: CreateSubscriptionInput!) { createSubscription(input: $i) { subscription { id } } }",
                if rng.random_bool(0.5) {
                    json!({"customerId": customer_id, "offerId": "A", "offerName": "Azure", "billingModel": "USAGE_BASED"})
                } else {
                    json!({"customerId": customer_id, "offerId": "M", "offerName": "M365", "billingModel": "LICENSE_BASED", "quantity": rng.random_range(0..5), "termMonths": 12})
                },
            ),
            5 => (
                "registerExternalSubscription",
                if rng.random_bool(0.7) { owner } else { partner },
                "mutation($i: RegisterExternalSubscriptionInput!) { registerExternalSubscription(input: $i) { subscription { id } } }",
                json!({"customerId": customer_id, "channel": *["DIRECT", "OPEN", "CSP"].choose(&mut rng).unwrap(), "externalReference": "X", "offerId": "X", "offerName": "X", "billingModel": "USAGE_BASED"}),
            ),
            6 => (
                "updateSubscription",
                partner,
                "mutation($i: UpdateSubscriptionInput!) { updateSubscription(input: $i) { subscription { id } } }",
                json!({"id": sub, "expectedVersion": version, "autoRenew": rng.random_bool(0.5)}),
            ),
            7 => (
                *["suspendSubscription", "reactivateSubscription", "cancelSubscription"].choose(&mut rng).unwrap(),
                partner,
                "",
                json!({"id": pick(&subscriptions, &mut rng), "expectedVersion": version}),
            ),
            8 => (
                "migrateUsageSubscription",
                partner,
                "mutation($i: MigrateUsageSubscriptionInput!) { migrateUsageSubscription(input: $i) { subscription { id } } }",
                json!({"sourceSubscriptionId": sub, "cancelSource": rng.random_bool(0.3)}),
            ),
            9 => (
                "requestSubscriptionTransfer",
                partner,
                "mutation($i: RequestTransferInput!) { requestSubscriptionTransfer(input: $i) { transfer { id } } }",
                json!({"subscriptionId": sub}),
            ),
            10 => (
                *["acceptSubscriptionTransfer", "rejectSubscriptionTransfer", "withdrawSubscriptionTransfer"]
                    .choose(&mut rng)
                    .unwrap(),
                partner,
                "",
                json!({"id": pick(&transfers, &mut rng)}),
            ),
            _ => (
                "inviteReseller",
                partner,
                "mutation($i: InviteResellerInput!) { inviteReseller(input: $i) { relationship { id } } }",
                json!({"resellerId": if rng.random_bool(0.7) { r.clone() } else { a.clone() }}),
            ),
        };
        let query = if query.is_empty() {
            let input_type = if name.contains("Transfer") { "TransferActionInput" } else { "SubscriptionActionInput" };
            let field = if name.contains("Transfer") { "transfer" } else { "subscription" };
            format!("mutation($i: {input_type}!) {{ {name}(input: $i) {{ {field} {{ id }} }} }}")
        } else {
            query.to_owned()
        };
        let request_id = format!("r15b-{i}-{}", Uuid::new_v4());
        let body = app.gql_with_request_id(&token, &request_id, &query, json!({"i": input})).await;
        let ok = body.get("errors").is_none();
        if ok {
            let made = body["data"][name]
                .as_object()
                .and_then(|o| o.values().next())
                .and_then(|v| v["id"].as_str())
                .map(str::to_owned);
            if let Some(id) = made {
                match name {
                    "requestRelationship" | "inviteReseller" => relationships.push(id),
                    "createSubscription" | "registerExternalSubscription" | "migrateUsageSubscription" => {
                        subscriptions.push(id)
                    }
                    "requestSubscriptionTransfer" => transfers.push(id),
                    _ => {}
                }
            }
        }
        calls.push((request_id, ok, name));
    }
    let succeeded: BTreeSet<&str> = calls.iter().filter(|c| c.1).map(|c| c.2).collect();
    eprintln!(
        "r15: {} calls, {} succeeded, kinds that succeeded: {succeeded:?}",
        calls.len(),
        calls.iter().filter(|c| c.1).count()
    );
    assert!(succeeded.len() >= 10, "many kinds of mutation succeeded: {succeeded:?}");
    assert!(calls.iter().filter(|c| !c.1).count() >= 20, "and many failed");

    let outbox: Vec<String> = outbox_event::Entity::find()
        .all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.payload["requestId"].as_str().unwrap_or_default().to_owned())
        .collect();
    let audit: Vec<String> =
        entity::audit_event::Entity::find().all(&app.db).await.unwrap().into_iter().map(|e| e.request_id).collect();
    for (request_id, ok, name) in &calls {
        let in_audit = audit.iter().filter(|r| *r == request_id).count();
        let in_outbox = outbox.iter().filter(|r| *r == request_id).count();
        if *ok {
            assert!(in_audit >= 1, "{name} {request_id} succeeded without an audit event");
            assert_eq!(in_audit, in_outbox, "{name} {request_id}: one outbox event per audit event");
        } else {
            assert_eq!((in_audit, in_outbox), (0, 0), "{name} {request_id} failed but left events");
        }
    }
}
