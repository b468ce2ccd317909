//! Subscriptions: selling (R5), other channels (R10), new-commerce terms (R11), migration (R9),
//! optimistic concurrency under real races (R13), idempotency under concurrent repeats (R14), and the
//! multi-channel story.

use std::collections::BTreeSet;

use chrono::Duration;
use partnerhub::graphql::ids::{NodeType, encode};
use serde_json::{Value, json};

use crate::common::{TestApp, error_code};
use crate::write_customers::{CREATE_CUSTOMER, onboard};
use crate::write_relationships::{ACCEPT, INVITE, TERMINATE, linked, platform_customer};

pub const SELL: &str = "mutation($i: CreateSubscriptionInput!) { createSubscription(input: $i) {
    subscription { id version status quantity termEnd autoRenew cancellationAllowedUntil partner { id } reseller { id } } } }";
const REGISTER: &str = "mutation($i: RegisterExternalSubscriptionInput!) { registerExternalSubscription(input: $i) { subscription { id version channel status } } }";
const UPDATE: &str = "mutation($i: UpdateSubscriptionInput!) { updateSubscription(input: $i) { subscription { id version quantity autoRenew status } } }";
const SUSPEND: &str =
    "mutation($i: SubscriptionActionInput!) { suspendSubscription(input: $i) { subscription { version status } } }";
const REACTIVATE: &str =
    "mutation($i: SubscriptionActionInput!) { reactivateSubscription(input: $i) { subscription { version status } } }";
const CANCEL: &str = "mutation($i: SubscriptionActionInput!) { cancelSubscription(input: $i) { subscription { version status cancelledAt } } }";
const MIGRATE: &str = "mutation($i: MigrateUsageSubscriptionInput!) { migrateUsageSubscription(input: $i) {
    subscription { id channel billingModel status partner { id } migratedFrom { id } } source { id status } } }";

fn license(customer: &Value, quantity: i32) -> Value {
    json!({"customerId": customer, "offerId": "M365", "offerName": "Microsoft 365", "billingModel": "LICENSE_BASED", "quantity": quantity, "termMonths": 12})
}

fn usage(customer: &Value) -> Value {
    json!({"customerId": customer, "offerId": "AZ", "offerName": "Azure plan", "billingModel": "USAGE_BASED"})
}

/// A direct-bill partner that created a customer (so holds an ACTIVE reseller relationship with it).
async fn partner_with_customer(app: &TestApp) -> (String, String, Value, String) {
    let (pid, ptid) = onboard(app, "Contoso", "contoso.example", "DIRECT_BILL", "PUBLIC").await;
    let token = app.token(ptid, &["admin_agent"]);
    let input = json!({"companyName": "Adatum", "domain": "adatum.example", "country": "US"});
    let data = app.data(&token, CREATE_CUSTOMER, json!({"input": input})).await;
    let customer = data["createCustomer"]["customer"]["id"].clone();
    let customer_tid = data["createCustomer"]["customer"]["tenantId"].as_str().unwrap().parse().unwrap();
    (pid, token, customer, app.token(customer_tid, &["global_admin"]))
}

#[tokio::test]
async fn r5_selling_needs_an_active_reseller_relationship_not_just_delegated_admin() {
    let app = TestApp::new().await;
    let (_, ptid) = onboard(&app, "Contoso", "contoso.example", "DIRECT_BILL", "PUBLIC").await;
    let (customer, ctid) = platform_customer(&app, "Adatum", "adatum.example", "PUBLIC").await;
    let partner = app.token(ptid, &["admin_agent"]);
    let customer_token = app.token(ctid, &["global_admin"]);
    let customer = json!(customer);
    let body = app.gql_as(Some(&partner), SELL, json!({"i": usage(&customer)})).await;
    assert_eq!(error_code(&body), Some("NOT_FOUND"), "a customer the partner cannot see does not exist for it");
    linked(
        &app,
        &partner,
        &customer_token,
        json!({"customerDomain": "adatum.example", "kind": "DELEGATED_ADMIN", "roles": ["admin_agent"]}),
    )
    .await;
    let body = app.gql_as(Some(&partner), SELL, json!({"i": usage(&customer)})).await;
    assert_eq!(error_code(&body), Some("RELATIONSHIP_REQUIRED"), "delegated admin alone does not allow selling");
    linked(&app, &partner, &customer_token, json!({"customerDomain": "adatum.example", "kind": "RESELLER"})).await;
    let data = app.data(&partner, SELL, json!({"i": license(&customer, 10)})).await;
    let s = &data["createSubscription"]["subscription"];
    assert_eq!(s["status"], "ACTIVE");
    assert_eq!(s["quantity"], 10);
    assert!(s["termEnd"].is_string() && s["cancellationAllowedUntil"].is_string());
    for (input, field) in [
        (
            json!({"customerId": customer, "offerId": "M", "offerName": "M", "billingModel": "LICENSE_BASED", "termMonths": 12}),
            "quantity",
        ),
        (
            json!({"customerId": customer, "offerId": "M", "offerName": "M", "billingModel": "LICENSE_BASED", "quantity": 0, "termMonths": 12}),
            "quantity",
        ),
        (
            json!({"customerId": customer, "offerId": "M", "offerName": "M", "billingModel": "LICENSE_BASED", "quantity": 1, "termMonths": 6}),
            "termMonths",
        ),
        (
            json!({"customerId": customer, "offerId": "A", "offerName": "A", "billingModel": "USAGE_BASED", "quantity": 3}),
            "quantity",
        ),
    ] {
        let body = app.gql_as(Some(&partner), SELL, json!({"i": input})).await;
        assert_eq!(error_code(&body), Some("BAD_USER_INPUT"), "{body}");
        assert!(body["errors"][0]["message"].as_str().unwrap().contains(field), "{body}");
    }
}

#[tokio::test]
async fn r4_subscriptions_join_partner_and_customer_of_one_cloud() {
    let app = TestApp::new().await;
    let (_, ptid) = onboard(&app, "Woodgrove", "woodgrove.example", "DIRECT_BILL", "US_GOVERNMENT").await;
    let partner = app.token(ptid, &["admin_agent"]);
    let input = json!({"companyName": "Springfield", "domain": "springfield.example", "country": "US"});
    let customer =
        app.data(&partner, CREATE_CUSTOMER, json!({"input": input})).await["createCustomer"]["customer"]["id"].clone();
    app.data(&partner, SELL, json!({"i": usage(&customer)})).await;
    // A public-cloud partner holding a (seeded, inconsistent) link still cannot sell across clouds.
    let (_, public_tid) = onboard(&app, "Contoso", "contoso.example", "DIRECT_BILL", "PUBLIC").await;
    let ids = |id: &Value| partnerhub::graphql::ids::decode_any(id.as_str().unwrap()).unwrap().1;
    let customer_model = entity::customer::Model {
        id: ids(&customer),
        tenant_id: uuid::Uuid::nil(),
        company_name: String::new(),
        domain: "springfield.example".into(),
        country: "US".into(),
        cloud: entity::enums::Cloud::UsGovernment,
        version: 1,
        created_at: app.clock.now(),
        updated_at: app.clock.now(),
    };
    let public_partner =
        app.data(&app.token(public_tid, &["admin_agent"]), "{ viewer { partner { id } } }", json!({})).await;
    let public_id = ids(&public_partner["viewer"]["partner"]["id"]);
    app.seed().reseller_link(public_id, &customer_model).await.unwrap();
    let body = app.gql_as(Some(&app.token(public_tid, &["admin_agent"])), SELL, json!({"i": usage(&customer)})).await;
    assert_eq!(error_code(&body), Some("CLOUD_MISMATCH"), "{body}");
}

#[tokio::test]
async fn r10_other_channels_are_recorded_by_the_customer_or_a_delegated_admin_and_csp_changed_only_by_the_partner_of_record()
 {
    let app = TestApp::new().await;
    let (_, partner, customer, customer_token) = partner_with_customer(&app).await;
    let ea = json!({"customerId": customer, "channel": "ENTERPRISE_AGREEMENT", "externalReference": "EA-1", "offerId": "EA", "offerName": "Azure EA", "billingModel": "USAGE_BASED"});
    let data = app.data(&customer_token, REGISTER, json!({"i": ea})).await;
    assert_eq!(data["registerExternalSubscription"]["subscription"]["channel"], "ENTERPRISE_AGREEMENT");
    let open = json!({"customerId": customer, "channel": "OPEN", "externalReference": "O-1", "offerId": "O", "offerName": "Office (Open)", "billingModel": "LICENSE_BASED", "quantity": 5});
    let billing = app.token(partner_ctid(&app, &customer_token).await, &["billing_admin"]);
    let data = app.data(&billing, REGISTER, json!({"i": open})).await;
    let open_sub = data["registerExternalSubscription"]["subscription"].clone();
    let reader = app.token(partner_ctid(&app, &customer_token).await, &["reader"]);
    let body = app.gql_as(Some(&reader), REGISTER, json!({"i": ea})).await;
    assert_eq!(error_code(&body), Some("FORBIDDEN"));
    let mut csp = ea.clone();
    csp["channel"] = json!("CSP");
    let body = app.gql_as(Some(&customer_token), REGISTER, json!({"i": csp})).await;
    assert_eq!(error_code(&body), Some("BAD_USER_INPUT"));

    // The reseller partner without delegated admin cannot record or cancel them.
    let body = app.gql_as(Some(&partner), REGISTER, json!({"i": ea})).await;
    assert_eq!(error_code(&body), Some("FORBIDDEN"), "{body}");
    // The customer cancels its own; it cannot touch the partner's CSP subscription.
    let sold =
        app.data(&partner, SELL, json!({"i": usage(&customer)})).await["createSubscription"]["subscription"].clone();
    let body = app
        .gql_as(Some(&customer_token), CANCEL, json!({"i": {"id": sold["id"], "expectedVersion": sold["version"]}}))
        .await;
    assert_eq!(error_code(&body), Some("FORBIDDEN"), "CSP subscriptions are changed only by their partner of record");
    let data = app
        .data(&customer_token, CANCEL, json!({"i": {"id": open_sub["id"], "expectedVersion": open_sub["version"]}}))
        .await;
    assert_eq!(data["cancelSubscription"]["subscription"]["status"], "CANCELLED");
    let helpdesk = app.token(partner_tid(&app, &partner).await, &["helpdesk_agent"]);
    let body =
        app.gql_as(Some(&helpdesk), CANCEL, json!({"i": {"id": sold["id"], "expectedVersion": sold["version"]}})).await;
    assert_eq!(error_code(&body), Some("FORBIDDEN"));
}

async fn partner_ctid(app: &TestApp, customer_token: &str) -> uuid::Uuid {
    app.data(customer_token, "{ viewer { tenantId } }", json!({})).await["viewer"]["tenantId"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

async fn partner_tid(app: &TestApp, partner_token: &str) -> uuid::Uuid {
    partner_ctid(app, partner_token).await
}

#[tokio::test]
async fn r11_cancellation_window_and_seat_reductions_suspend_and_reactivate() {
    let app = TestApp::new().await;
    let (_, partner, customer, _) = partner_with_customer(&app).await;
    let s = app.data(&partner, SELL, json!({"i": license(&customer, 10)})).await["createSubscription"]["subscription"]
        .clone();
    let id = s["id"].clone();
    // Inside the window: lowering is fine.
    let v = app.data(&partner, UPDATE, json!({"i": {"id": id, "expectedVersion": s["version"], "quantity": 8}})).await
        ["updateSubscription"]["subscription"]["version"]
        .clone();

    app.clock.advance(Duration::hours(200));
    let body = app.gql_as(Some(&partner), UPDATE, json!({"i": {"id": id, "expectedVersion": v, "quantity": 5}})).await;
    assert_eq!(error_code(&body), Some("CANCELLATION_WINDOW_CLOSED"));
    let body = app.gql_as(Some(&partner), CANCEL, json!({"i": {"id": id, "expectedVersion": v}})).await;
    assert_eq!(error_code(&body), Some("CANCELLATION_WINDOW_CLOSED"));
    let data = app
        .data(&partner, UPDATE, json!({"i": {"id": id, "expectedVersion": v, "quantity": 20, "autoRenew": false}}))
        .await;
    let s = &data["updateSubscription"]["subscription"];
    assert_eq!(
        (s["quantity"].clone(), s["autoRenew"].clone()),
        (json!(20), json!(false)),
        "raising and ending renewal are always allowed"
    );

    let v = s["version"].clone();
    let v = app.data(&partner, SUSPEND, json!({"i": {"id": id, "expectedVersion": v}})).await["suspendSubscription"]["subscription"]["version"].clone();
    let body = app.gql_as(Some(&partner), UPDATE, json!({"i": {"id": id, "expectedVersion": v, "quantity": 25}})).await;
    assert_eq!(error_code(&body), Some("INVALID_STATE"), "a SUSPENDED subscription cannot change quantity");
    let v =
        app.data(&partner, REACTIVATE, json!({"i": {"id": id, "expectedVersion": v}})).await["reactivateSubscription"]
            ["subscription"]["version"]
            .clone();
    let v = app.data(&partner, SUSPEND, json!({"i": {"id": id, "expectedVersion": v}})).await["suspendSubscription"]["subscription"]["version"].clone();
    app.clock.advance(Duration::days(400));
    let body = app.gql_as(Some(&partner), REACTIVATE, json!({"i": {"id": id, "expectedVersion": v}})).await;
    assert_eq!(error_code(&body), Some("INVALID_STATE"), "reactivation only before termEnd");

    // A usage-based subscription can always be cancelled, and never comes back.
    let u =
        app.data(&partner, SELL, json!({"i": usage(&customer)})).await["createSubscription"]["subscription"].clone();
    let c = app.data(&partner, CANCEL, json!({"i": {"id": u["id"], "expectedVersion": u["version"]}})).await;
    let v = c["cancelSubscription"]["subscription"]["version"].clone();
    let body = app.gql_as(Some(&partner), REACTIVATE, json!({"i": {"id": u["id"], "expectedVersion": v}})).await;
    assert_eq!(error_code(&body), Some("INVALID_STATE"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn r13_twenty_concurrent_updates_at_one_version_exactly_one_wins() {
    let app = TestApp::new().await;
    let (_, partner, customer, _) = partner_with_customer(&app).await;
    let s = app.data(&partner, SELL, json!({"i": license(&customer, 10)})).await["createSubscription"]["subscription"]
        .clone();
    let calls = (0..20)
        .map(|n| {
            (
                partner.clone(),
                UPDATE.to_owned(),
                json!({"i": {"id": s["id"], "expectedVersion": s["version"], "quantity": 11 + n}}),
            )
        })
        .collect();
    let answers = app.concurrently(calls).await;
    let won: Vec<&Value> = answers.iter().filter(|b| b.get("errors").is_none()).collect();
    let lost = answers.iter().filter(|b| error_code(b) == Some("VERSION_CONFLICT")).count();
    assert_eq!((won.len(), lost), (1, 19), "{answers:#?}");
    let winner = &won[0]["data"]["updateSubscription"]["subscription"];
    let data = app
        .data(&partner, "query($id: ID!) { subscription(id: $id) { version quantity } }", json!({"id": s["id"]}))
        .await;
    assert_eq!(data["subscription"]["version"], s["version"].as_i64().unwrap() + 1);
    assert_eq!(data["subscription"]["quantity"], winner["quantity"], "the stored row is the winner's");
    let platform = app.token(app.platform(), &["platform_admin"]);
    let audits = app
        .data(&platform, "{ auditEvents(filter: {action: \"subscription.update\"}) { totalCount } }", json!({}))
        .await;
    assert_eq!(audits["auditEvents"]["totalCount"], 1, "losers leave no audit event");
    // A stale version after the race changes nothing.
    let body = app
        .gql_as(
            Some(&partner),
            UPDATE,
            json!({"i": {"id": s["id"], "expectedVersion": s["version"], "autoRenew": false}}),
        )
        .await;
    assert_eq!(error_code(&body), Some("VERSION_CONFLICT"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn r14_thirty_concurrent_creates_with_one_key_make_one_subscription() {
    let app = TestApp::new().await;
    let (_, partner, customer, _) = partner_with_customer(&app).await;
    let mut input = license(&customer, 10);
    input["idempotencyKey"] = json!("order-4711");
    let calls = (0..30).map(|_| (partner.clone(), SELL.to_owned(), json!({"i": input.clone()}))).collect();
    let answers = app.concurrently(calls).await;
    let ids: BTreeSet<String> = answers
        .iter()
        .map(|b| {
            assert!(b.get("errors").is_none(), "{b}");
            b["data"]["createSubscription"]["subscription"]["id"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(ids.len(), 1, "every repeat answers the first subscription");
    let data = app.data(&partner, "{ subscriptions { totalCount } }", json!({})).await;
    assert_eq!(data["subscriptions"]["totalCount"], 1);
    input["quantity"] = json!(11);
    let body = app.gql_as(Some(&partner), SELL, json!({"i": input})).await;
    assert_eq!(error_code(&body), Some("IDEMPOTENCY_KEY_REUSED"));
}

#[tokio::test]
async fn r9_multi_channel_story_migrate_usage_with_and_without_cancelling_the_source() {
    let app = TestApp::new().await;
    // A customer created by the platform registers an EA usage-based and an Open license-based subscription.
    let (customer, ctid) = platform_customer(&app, "Adatum", "adatum.example", "PUBLIC").await;
    let customer = json!(customer);
    let owner = app.token(ctid, &["global_admin"]);
    let ea = app
        .data(&owner, REGISTER, json!({"i": {"customerId": customer, "channel": "ENTERPRISE_AGREEMENT", "externalReference": "EA-1", "offerId": "EA", "offerName": "Azure EA", "billingModel": "USAGE_BASED"}}))
        .await["registerExternalSubscription"]["subscription"]["id"]
        .clone();
    let open = app
        .data(&owner, REGISTER, json!({"i": {"customerId": customer, "channel": "OPEN", "externalReference": "O-1", "offerId": "O", "offerName": "Office", "billingModel": "LICENSE_BASED", "quantity": 5}}))
        .await["registerExternalSubscription"]["subscription"]["id"]
        .clone();
    // Partner B requests a reseller relationship by domain; the customer's global admin accepts.
    let (b_id, b_tid) = onboard(&app, "Fabrikam", "fabrikam.example", "DIRECT_BILL", "PUBLIC").await;
    let b = app.token(b_tid, &["admin_agent"]);
    let body = app.gql_as(Some(&b), MIGRATE, json!({"i": {"sourceSubscriptionId": ea}})).await;
    assert_eq!(error_code(&body), Some("NOT_FOUND"), "before any relationship B cannot see the subscription");
    linked(&app, &b, &owner, json!({"customerDomain": "adatum.example", "kind": "RESELLER"})).await;
    // B may sell to the customer (R5), but what the customer bought elsewhere is visible to it only
    // through delegated admin (R1).
    let body = app.gql_as(Some(&b), MIGRATE, json!({"i": {"sourceSubscriptionId": ea}})).await;
    assert_eq!(error_code(&body), Some("NOT_FOUND"), "a reseller link alone does not show the EA subscription");
    linked(
        &app,
        &b,
        &owner,
        json!({"customerDomain": "adatum.example", "kind": "DELEGATED_ADMIN", "roles": ["helpdesk_agent"]}),
    )
    .await;
    // Now it migrates the usage-based one; both stay active.
    let data = app.data(&b, MIGRATE, json!({"i": {"sourceSubscriptionId": ea}})).await;
    let m = &data["migrateUsageSubscription"];
    assert_eq!(m["subscription"]["channel"], "CSP");
    assert_eq!(m["subscription"]["billingModel"], "USAGE_BASED");
    assert_eq!(m["subscription"]["partner"]["id"], b_id);
    assert_eq!(m["source"]["status"], "ACTIVE", "CSP coexists with the other channels");
    let owner_view = app
        .data(
            &owner,
            "query($id: ID!) { subscription(id: $id) { migratedFrom { id status } } }",
            json!({"id": m["subscription"]["id"]}),
        )
        .await;
    assert_eq!(owner_view["subscription"]["migratedFrom"]["id"], ea, "migratedFrom names the source");
    assert_eq!(owner_view["subscription"]["migratedFrom"]["status"], "ACTIVE");
    // cancelSource needs delegated admin with the admin_agent role: helpdesk only is not enough.
    let body = app.gql_as(Some(&b), MIGRATE, json!({"i": {"sourceSubscriptionId": ea, "cancelSource": true}})).await;
    assert_eq!(error_code(&body), Some("RELATIONSHIP_REQUIRED"));
    linked(
        &app,
        &b,
        &owner,
        json!({"customerDomain": "adatum.example", "kind": "DELEGATED_ADMIN", "roles": ["admin_agent"]}),
    )
    .await;
    let data = app.data(&b, MIGRATE, json!({"i": {"sourceSubscriptionId": ea, "cancelSource": true}})).await;
    assert_eq!(data["migrateUsageSubscription"]["source"]["status"], "CANCELLED", "cancelled in the same transaction");
    // License-based or CSP sources are refused.
    let body = app.gql_as(Some(&b), MIGRATE, json!({"i": {"sourceSubscriptionId": open}})).await;
    assert_eq!(error_code(&body), Some("BAD_USER_INPUT"));
    let csp = data["migrateUsageSubscription"]["subscription"]["id"].clone();
    let body = app.gql_as(Some(&b), MIGRATE, json!({"i": {"sourceSubscriptionId": csp}})).await;
    assert_eq!(error_code(&body), Some("BAD_USER_INPUT"));
}

#[tokio::test]
async fn r6_r17_resellers_and_suspended_partners_cannot_sell() {
    let app = TestApp::new().await;
    let (pid, partner, customer, _) = partner_with_customer(&app).await;
    let platform = app.token(app.platform(), &["platform_admin"]);
    let set = "mutation($i: SetPartnerStatusInput!) { setPartnerStatus(input: $i) { partner { status } } }";
    app.data(&platform, set, json!({"i": {"partnerId": pid, "status": "SUSPENDED"}})).await;
    let body = app.gql_as(Some(&partner), SELL, json!({"i": usage(&customer)})).await;
    assert_eq!(error_code(&body), Some("PARTNER_SUSPENDED"));
    let (_, rtid) = onboard(&app, "Tailspin", "tailspin.example", "INDIRECT_RESELLER", "PUBLIC").await;
    let reseller = app.token(rtid, &["admin_agent"]);
    let body = app.gql_as(Some(&reseller), SELL, json!({"i": usage(&customer)})).await;
    assert_eq!(error_code(&body), Some("INDIRECT_RESELLER_CANNOT_TRANSACT"));
}

const MIGRATE_SOURCE: &str = "mutation($i: MigrateUsageSubscriptionInput!) { migrateUsageSubscription(input: $i) {
    subscription { id channel migratedFrom { id } } source { id channel externalReference offerId offerName status } } }";

#[tokio::test]
async fn r1_migrate_usage_subscription_hides_invisible_source() {
    let app = TestApp::new().await;
    let (customer, ctid) = platform_customer(&app, "Adatum", "adatum.example", "PUBLIC").await;
    let owner = app.token(ctid, &["global_admin"]);
    let ea = app
        .data(&owner, REGISTER, json!({"i": {"customerId": customer, "channel": "ENTERPRISE_AGREEMENT", "externalReference": "EA-SECRET-42", "offerId": "EA", "offerName": "Azure EA", "billingModel": "USAGE_BASED"}}))
        .await["registerExternalSubscription"]["subscription"]["id"]
        .clone();
    let (_, b_tid) = onboard(&app, "Fabrikam", "fabrikam.example", "DIRECT_BILL", "PUBLIC").await;
    let b = app.token(b_tid, &["admin_agent"]);
    let nowhere = encode(NodeType::Subscription, uuid::Uuid::now_v7());
    let unknown = app.gql_as(Some(&b), MIGRATE_SOURCE, json!({"i": {"sourceSubscriptionId": nowhere}})).await;
    assert_eq!(error_code(&unknown), Some("NOT_FOUND"));
    let same_as_unknown = |body: &Value, case: &str| {
        assert_eq!(error_code(body), Some("NOT_FOUND"), "{case}: {body}");
        assert_eq!(body["errors"][0]["message"], unknown["errors"][0]["message"], "{case}: existence leaks");
        assert!(!body.to_string().contains("EA-SECRET-42"), "{case}: the source leaks: {body}");
    };

    // A reseller link lets B sell to the customer, but not see what it bought elsewhere.
    linked(&app, &b, &owner, json!({"customerDomain": "adatum.example", "kind": "RESELLER"})).await;
    let body = app.gql_as(Some(&b), MIGRATE_SOURCE, json!({"i": {"sourceSubscriptionId": ea}})).await;
    same_as_unknown(&body, "reseller link only");
    let mine = app.data(&b, "{ subscriptions { totalCount } }", json!({})).await;
    assert_eq!(mine["subscriptions"]["totalCount"], 0, "a refused migration writes nothing");

    // With delegated admin for a day B sees it and migrates it, with an idempotency key.
    let grant = json!({"customerDomain": "adatum.example", "kind": "DELEGATED_ADMIN", "roles": ["helpdesk_agent"], "durationDays": 1});
    linked(&app, &b, &owner, grant).await;
    let input = json!({"i": {"sourceSubscriptionId": ea, "idempotencyKey": "migrate-ea-1"}});
    let first = app.data(&b, MIGRATE_SOURCE, input.clone()).await["migrateUsageSubscription"].clone();
    assert_eq!(first["source"]["id"], ea);
    assert_eq!(first["source"]["externalReference"], "EA-SECRET-42");
    assert_eq!(first["subscription"]["migratedFrom"]["id"], ea);

    // The grant expires: the replay answers the first result, without the source B no longer sees.
    app.clock.advance(Duration::days(2));
    let replay = app.data(&b, MIGRATE_SOURCE, input).await["migrateUsageSubscription"].clone();
    assert_eq!(replay["subscription"]["id"], first["subscription"]["id"], "the replay is the first result");
    assert!(replay["source"].is_null(), "the source resolves to null: {replay}");
    assert!(replay["subscription"]["migratedFrom"].is_null());
    assert!(!replay.to_string().contains("EA-SECRET-42"));
    let mine = app.data(&b, "{ subscriptions { totalCount } }", json!({})).await;
    assert_eq!(mine["subscriptions"]["totalCount"], 1, "the replay wrote nothing");
    // A new migration of the source it no longer sees is NOT_FOUND, like an unknown id.
    let body = app.gql_as(Some(&b), MIGRATE_SOURCE, json!({"i": {"sourceSubscriptionId": ea}})).await;
    same_as_unknown(&body, "expired delegated admin");
}

#[tokio::test]
async fn r5_an_indirect_provider_cannot_sell_for_a_reseller_that_ended_their_link() {
    let app = TestApp::new().await;
    let (reseller_id, reseller_tid) =
        onboard(&app, "Tailspin", "tailspin.example", "INDIRECT_RESELLER", "PUBLIC").await;
    let (_, provider_tid) = onboard(&app, "Northwind", "northwind.example", "INDIRECT_PROVIDER", "PUBLIC").await;
    let reseller = app.token(reseller_tid, &["admin_agent"]);
    let provider = app.token(provider_tid, &["admin_agent"]);
    let invite =
        app.data(&provider, INVITE, json!({"i": {"resellerId": reseller_id}})).await["inviteReseller"]["relationship"]
            ["id"]
            .clone();
    app.data(&reseller, ACCEPT, json!({"i": {"id": invite}})).await;
    let input =
        json!({"companyName": "Litware", "domain": "litware.example", "country": "DE", "resellerId": reseller_id});
    let customer =
        app.data(&provider, CREATE_CUSTOMER, json!({"input": input})).await["createCustomer"]["customer"]["id"].clone();
    let mut sale = usage(&customer);
    sale["resellerId"] = json!(reseller_id);
    app.data(&provider, SELL, json!({"i": sale})).await;

    // The reseller leaves the provider: the provider no longer sells in its name.
    app.data(&reseller, TERMINATE, json!({"i": {"id": invite}})).await;
    let body = app.gql_as(Some(&provider), SELL, json!({"i": sale})).await;
    assert_eq!(error_code(&body), Some("RELATIONSHIP_REQUIRED"), "{body}");
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("indirect-reseller"), "{body}");
    let data = app.data(&provider, "{ subscriptions { totalCount } }", json!({})).await;
    assert_eq!(data["subscriptions"]["totalCount"], 1, "nothing new was sold");
    // createCustomer for that reseller says the same.
    let input =
        json!({"companyName": "Proseware", "domain": "proseware.example", "country": "DE", "resellerId": reseller_id});
    let body = app.gql_as(Some(&provider), CREATE_CUSTOMER, json!({"input": input})).await;
    assert_eq!(error_code(&body), Some("RELATIONSHIP_REQUIRED"), "{body}");
}

/// R13 + R15 + R17 on the update path (on PostgreSQL one statement without a transaction): a stale
/// version and a partner suspended behind the tenant cache's back change nothing and record nothing;
/// an update records exactly one audit and one outbox event, carrying only the fields it changed.
#[tokio::test]
async fn r13_r15_r17_an_update_writes_its_change_and_events_or_nothing() {
    use entity::enums::PartnerStatus;
    use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
    let app = TestApp::new().await;
    let (pid, partner, customer, _) = partner_with_customer(&app).await;
    let data = app.data(&partner, SELL, json!({"i": license(&customer, 10)})).await;
    let id = data["createSubscription"]["subscription"]["id"].clone();
    let counts = || async {
        let audit = entity::audit_event::Entity::find()
            .filter(entity::audit_event::Column::Action.eq("subscription.update"))
            .count(&app.db)
            .await
            .unwrap();
        let outbox = entity::outbox_event::Entity::find()
            .filter(entity::outbox_event::Column::EventType.eq("SUBSCRIPTION_UPDATED"))
            .count(&app.db)
            .await
            .unwrap();
        (audit, outbox)
    };

    let before = app.statement_count();
    let data = app.data(&partner, UPDATE, json!({"i": {"id": id, "expectedVersion": 1, "quantity": 12}})).await;
    if crate::common::backend() == "postgres" {
        // The caller's partner (R17) read together with the subscription (R1), then the write
        // with its version check, audit row and outbox row: no transaction, two statements.
        assert_eq!(app.statement_count() - before, 2, "statements of one updateSubscription");
    } else {
        // The same read first, outside the transaction; then, holding SQLite's write lock, the
        // update, the audit row and the outbox row (`BEGIN` and `COMMIT` are not counted).
        assert_eq!(app.statement_count() - before, 4, "statements of one updateSubscription");
    }
    assert_eq!(data["updateSubscription"]["subscription"]["version"], 2);
    assert_eq!(data["updateSubscription"]["subscription"]["quantity"], 12);
    assert_eq!(counts().await, (1, 1));
    let event = entity::audit_event::Entity::find()
        .filter(entity::audit_event::Column::Action.eq("subscription.update"))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    let changed: BTreeSet<&str> = event.details.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(changed, BTreeSet::from(["quantity"]), "only the changed field is recorded: {}", event.details);

    let body = app.gql_as(Some(&partner), UPDATE, json!({"i": {"id": id, "expectedVersion": 1, "quantity": 14}})).await;
    assert_eq!(error_code(&body), Some("VERSION_CONFLICT"), "{body}");
    assert_eq!(counts().await, (1, 1), "a stale version records nothing");

    // Suspended by another instance: this one's tenant cache still says ACTIVE.
    let partner_id: uuid::Uuid = match partnerhub::graphql::ids::decode_any(&pid) {
        Some((NodeType::Partner, id)) => id,
        other => panic!("not a partner id: {other:?}"),
    };
    entity::partner::Entity::update_many()
        .col_expr(entity::partner::Column::Status, sea_orm::sea_query::Expr::value(PartnerStatus::Suspended))
        .filter(entity::partner::Column::Id.eq(partner_id))
        .exec(&app.db)
        .await
        .unwrap();
    let body = app.gql_as(Some(&partner), UPDATE, json!({"i": {"id": id, "expectedVersion": 2, "quantity": 14}})).await;
    assert_eq!(error_code(&body), Some("PARTNER_SUSPENDED"), "{body}");
    assert_eq!(counts().await, (1, 1), "a suspended partner's update records nothing");
    // R17 comes first, also for a subscription it cannot see.
    let unknown = partnerhub::graphql::ids::encode(NodeType::Subscription, uuid::Uuid::new_v4()).0;
    let body =
        app.gql_as(Some(&partner), UPDATE, json!({"i": {"id": unknown, "expectedVersion": 1, "quantity": 3}})).await;
    assert_eq!(error_code(&body), Some("PARTNER_SUSPENDED"), "{body}");
    let data = app
        .data(
            &partner,
            "query($id: ID!) { node(id: $id) { ... on Subscription { version quantity } } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(data["node"]["version"], 2);
    assert_eq!(data["node"]["quantity"], 12);
}

/// The audit rows of subscription changes.
async fn subscription_audit_rows(app: &TestApp) -> u64 {
    use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
    entity::audit_event::Entity::find()
        .filter(entity::audit_event::Column::Action.starts_with("subscription."))
        .count(&app.db)
        .await
        .unwrap()
}

/// R10 on the kept-row path: a subscription bought elsewhere, changed by a partner's `admin_agent`
/// as the customer's delegated admin, at the version this instance kept, is written in one
/// statement, and that statement checks the delegated-admin grant as it stands: with the grant
/// still ACTIVE (the subscription still visible) but no longer granting `admin_agent`, the change
/// is refused and nothing is written.
#[tokio::test]
async fn r10_a_kept_subscription_bought_elsewhere_changes_in_one_statement_only_while_the_grant_holds_admin_agent() {
    use entity::enums::{RelationshipKind, RelationshipStatus};
    use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter};
    let app = TestApp::new().await;
    let (pid, partner, customer, customer_token) = partner_with_customer(&app).await;
    let uuid_of = |id: &Value| partnerhub::graphql::ids::decode_any(id.as_str().unwrap()).unwrap().1;
    let customer_model = entity::customer::Entity::find_by_id(uuid_of(&customer)).one(&app.db).await.unwrap().unwrap();
    let grant = app
        .seed()
        .relationship(
            RelationshipKind::DelegatedAdmin,
            RelationshipStatus::Active,
            uuid_of(&json!(pid)),
            Some(&customer_model),
            None,
            "helpdesk_agent,admin_agent",
            Some(app.seed().now + Duration::days(30)),
        )
        .await
        .unwrap();
    let open = json!({"customerId": customer, "channel": "OPEN", "externalReference": "O-1", "offerId": "O", "offerName": "Office (Open)", "billingModel": "LICENSE_BASED", "quantity": 5});
    let id = app.data(&customer_token, REGISTER, json!({"i": open})).await["registerExternalSubscription"]["subscription"]
        ["id"]
        .clone();

    // Read, judged (the grant read too), written; the row written is kept.
    app.data(&partner, UPDATE, json!({"i": {"id": id, "expectedVersion": 1, "quantity": 6}})).await;
    // At the kept version: one statement.
    let before = app.statement_count();
    let data = app.data(&partner, UPDATE, json!({"i": {"id": id, "expectedVersion": 2, "quantity": 7}})).await;
    assert_eq!(app.statement_count() - before, 1, "statements of an update at a kept version");
    assert_eq!(data["updateSubscription"]["subscription"]["version"], 3);
    assert_eq!(subscription_audit_rows(&app).await, 3, "the registration and two updates");

    // The grant stays ACTIVE (the partner still sees the subscription) but no longer grants
    // admin_agent: refused, as the ordinary path refuses it, and nothing written.
    let mut narrowed = grant.clone().into_active_model();
    narrowed.roles = sea_orm::Set("helpdesk_agent".into());
    narrowed.update(&app.db).await.unwrap();
    assert!(
        app.data(&partner, "query($id: ID!) { node(id: $id) { id } }", json!({"id": id})).await["node"].is_object()
    );
    let body = app.gql_as(Some(&partner), UPDATE, json!({"i": {"id": id, "expectedVersion": 3, "quantity": 8}})).await;
    assert_eq!(error_code(&body), Some("FORBIDDEN"), "{body}");
    assert_eq!(subscription_audit_rows(&app).await, 3, "nothing was written");
    // A role that merely contains the name is no grant either.
    let mut lookalike = grant.clone().into_active_model();
    lookalike.roles = sea_orm::Set("helpdesk_agent,admin_agents".into());
    lookalike.update(&app.db).await.unwrap();
    let body = app.gql_as(Some(&partner), UPDATE, json!({"i": {"id": id, "expectedVersion": 3, "quantity": 8}})).await;
    assert_eq!(error_code(&body), Some("FORBIDDEN"), "{body}");

    // Granted again: the kept row serves again, in one statement.
    let mut restored = grant.into_active_model();
    restored.roles = sea_orm::Set("admin_agent".into());
    restored.update(&app.db).await.unwrap();
    let before = app.statement_count();
    let data = app.data(&partner, UPDATE, json!({"i": {"id": id, "expectedVersion": 3, "quantity": 8}})).await;
    assert_eq!(app.statement_count() - before, 1, "statements of an update at a kept version");
    assert_eq!(data["updateSubscription"]["subscription"]["quantity"], 8);
    let stored = entity::subscription::Entity::find()
        .filter(entity::subscription::Column::ExternalReference.eq("O-1"))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((stored.version, stored.quantity), (4, Some(8)));
}

/// A change at the version this instance wrote last is judged on the row it kept (`domain::known`)
/// and written in one statement (on SQLite, one script with its transaction); the write itself still checks that the caller sees
/// the row (R1) and the version (R13), and a refusal is judged as if nothing were kept, so a caller
/// that may not see the row learns nothing from it.
#[tokio::test]
async fn r1_r13_a_change_at_a_kept_version_is_one_statement_and_still_checks_visibility_and_version() {
    use sea_orm::EntityTrait;
    let app = TestApp::new().await;
    let (_, partner, customer, customer_token) = partner_with_customer(&app).await;
    let (_, other_tid) = onboard(&app, "Fabrikam", "fabrikam.example", "DIRECT_BILL", "PUBLIC").await;
    let other = app.token(other_tid, &["admin_agent"]);
    let data = app.data(&partner, SELL, json!({"i": license(&customer, 10)})).await;
    let id = data["createSubscription"]["subscription"]["id"].clone();

    // Read, judged, written (two statements on PostgreSQL); the row written is kept.
    app.data(&partner, UPDATE, json!({"i": {"id": id, "expectedVersion": 1, "quantity": 12}})).await;
    // At the kept version: one statement, which also writes the audit and outbox rows.
    let before = app.statement_count();
    let data = app.data(&partner, UPDATE, json!({"i": {"id": id, "expectedVersion": 2, "quantity": 13}})).await;
    // On SQLite the guarded update and the two rows, in one script holding its own transaction:
    // the read the ordinary path makes first is gone.
    assert_eq!(app.statement_count() - before, 1, "statements of an update at a kept version");
    assert_eq!(data["updateSubscription"]["subscription"]["version"], 3);
    assert_eq!(data["updateSubscription"]["subscription"]["quantity"], 13);
    assert_eq!(subscription_audit_rows(&app).await, 3, "the sale and two updates");

    // Another partner naming the kept version: NOT_FOUND, as for any row it cannot see (the kept
    // row says it is not the partner of record; that is not what it is told).
    let body = app.gql_as(Some(&other), UPDATE, json!({"i": {"id": id, "expectedVersion": 3, "quantity": 1}})).await;
    assert_eq!(error_code(&body), Some("NOT_FOUND"), "{body}");
    // A stale version is still a conflict.
    let body = app.gql_as(Some(&partner), UPDATE, json!({"i": {"id": id, "expectedVersion": 2, "quantity": 20}})).await;
    assert_eq!(error_code(&body), Some("VERSION_CONFLICT"), "{body}");

    // Suspended (kept at version 4), then the customer ends the partner's reseller relationship:
    // the partner no longer sees the subscription, and the kept row does not let it reactivate it.
    let data = app.data(&partner, SUSPEND, json!({"i": {"id": id, "expectedVersion": 3}})).await;
    assert_eq!(data["suspendSubscription"]["subscription"]["version"], 4);
    let links = app.data(&customer_token, "{ relationships(first: 10) { nodes { id kind } } }", json!({})).await;
    let link = links["relationships"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "RESELLER")
        .expect("the partner's reseller relationship")["id"]
        .clone();
    app.data(&customer_token, TERMINATE, json!({"i": {"id": link}})).await;
    assert_eq!(subscription_audit_rows(&app).await, 4, "… and the suspension");
    let body = app.gql_as(Some(&partner), REACTIVATE, json!({"i": {"id": id, "expectedVersion": 4}})).await;
    assert_eq!(error_code(&body), Some("NOT_FOUND"), "{body}");
    assert_eq!(subscription_audit_rows(&app).await, 4, "nothing was written");
    let Some((NodeType::Subscription, uuid)) = partnerhub::graphql::ids::decode_any(id.as_str().unwrap()) else {
        panic!("not a subscription id: {id}");
    };
    let stored = entity::subscription::Entity::find_by_id(uuid).one(&app.db).await.unwrap().unwrap();
    assert_eq!((stored.version, stored.quantity, stored.status.as_str()), (4, Some(13), "SUSPENDED"));
}
