//! Relationships: requests, invitations, answers and termination (R3, R4, R6, R12, R13, R17), and
//! the indirect story.

use chrono::Duration;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::{TestApp, error_code};
use crate::write_customers::{CREATE_CUSTOMER, onboard};

pub const REQUEST: &str = "mutation($i: RequestRelationshipInput!) { requestRelationship(input: $i) {
    relationship { id kind status version roles durationDays expiresAt customerDomain customer { id } partner { id } } } }";
pub const ACCEPT: &str = "mutation($i: RelationshipActionInput!) { acceptRelationship(input: $i) { relationship { id status version expiresAt } } }";
pub const DECLINE: &str =
    "mutation($i: RelationshipActionInput!) { declineRelationship(input: $i) { relationship { id status } } }";
pub const TERMINATE: &str = "mutation($i: RelationshipActionInput!) { terminateRelationship(input: $i) { relationship { id status terminatedAt } } }";
pub const INVITE: &str =
    "mutation($i: InviteResellerInput!) { inviteReseller(input: $i) { relationship { id kind status } } }";

/// A customer created by the platform; returns (global id, tenant id).
pub async fn platform_customer(app: &TestApp, name: &str, domain: &str, cloud: &str) -> (String, Uuid) {
    let platform = app.token(app.platform(), &["platform_admin"]);
    let input = json!({"companyName": name, "domain": domain, "country": "US", "cloud": cloud});
    let data = app.data(&platform, CREATE_CUSTOMER, json!({"input": input})).await;
    let id = data["createCustomer"]["customer"]["id"].as_str().unwrap().to_owned();
    let tid = data["createCustomer"]["customer"]["tenantId"].as_str().unwrap().parse().unwrap();
    (id, tid)
}

/// Requests and has the customer accept; returns the relationship id.
pub async fn linked(app: &TestApp, partner: &str, customer: &str, input: Value) -> String {
    let data = app.data(partner, REQUEST, json!({"i": input})).await;
    let id = data["requestRelationship"]["relationship"]["id"].as_str().unwrap().to_owned();
    app.data(customer, ACCEPT, json!({"i": {"id": id}})).await;
    id
}

async fn audit_total(app: &TestApp) -> u64 {
    let platform = app.token(app.platform(), &["platform_admin"]);
    app.data(&platform, "{ auditEvents { totalCount } }", json!({})).await["auditEvents"]["totalCount"]
        .as_u64()
        .unwrap()
}

#[tokio::test]
async fn r12_request_accept_decline_and_one_pending_request_per_pair() {
    let app = TestApp::new().await;
    let (_, ptid) = onboard(&app, "Fabrikam", "fabrikam.example", "DIRECT_BILL", "PUBLIC").await;
    let (customer_id, ctid) = platform_customer(&app, "Adatum", "adatum.example", "PUBLIC").await;
    let partner = app.token(ptid, &["sales_agent"]);
    let customer = app.token(ctid, &["global_admin"]);

    let data =
        app.data(&partner, REQUEST, json!({"i": {"customerDomain": "ADATUM.example", "kind": "RESELLER"}})).await;
    let rel = &data["requestRelationship"]["relationship"];
    assert_eq!(rel["status"], "PENDING");
    assert_eq!(rel["customerDomain"], "adatum.example");
    assert_eq!(rel["customer"], Value::Null, "the partner cannot see the customer before it accepts");
    let id = rel["id"].as_str().unwrap().to_owned();
    let body = app
        .gql_as(Some(&partner), REQUEST, json!({"i": {"customerDomain": "adatum.example", "kind": "RESELLER"}}))
        .await;
    assert_eq!(error_code(&body), Some("CONFLICT"), "one pending request per pair and kind");

    // The requester cannot accept its own request; the customer's reader cannot either.
    let body = app.gql_as(Some(&partner), ACCEPT, json!({"i": {"id": id}})).await;
    assert_eq!(error_code(&body), Some("FORBIDDEN"));
    let reader = app.token(ctid, &["reader"]);
    let body = app.gql_as(Some(&reader), ACCEPT, json!({"i": {"id": id}})).await;
    assert_eq!(error_code(&body), Some("FORBIDDEN"));
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("global_admin"));

    let data = app.data(&customer, ACCEPT, json!({"i": {"id": id}})).await;
    assert_eq!(data["acceptRelationship"]["relationship"]["status"], "ACTIVE");
    let body = app.gql_as(Some(&customer), ACCEPT, json!({"i": {"id": id}})).await;
    assert_eq!(error_code(&body), Some("INVALID_STATE"), "only PENDING requests can be accepted");
    let data = app.data(&partner, "{ customers { nodes { id } } }", json!({})).await;
    assert_eq!(data["customers"]["nodes"][0]["id"], customer_id, "the partner now sees its customer");

    // A reseller request when one is already ACTIVE is a conflict; a delegated-admin one may be declined.
    let body = app
        .gql_as(Some(&partner), REQUEST, json!({"i": {"customerDomain": "adatum.example", "kind": "RESELLER"}}))
        .await;
    assert_eq!(error_code(&body), Some("CONFLICT"));
    let admin = app.token(ptid, &["admin_agent"]);
    let body = app
        .gql_as(
            Some(&partner),
            REQUEST,
            json!({"i": {"customerDomain": "adatum.example", "kind": "DELEGATED_ADMIN", "roles": ["admin_agent"]}}),
        )
        .await;
    assert_eq!(error_code(&body), Some("FORBIDDEN"), "delegated admin is requested by an admin_agent");
    let data = app
        .data(&admin, REQUEST, json!({"i": {"customerDomain": "adatum.example", "kind": "DELEGATED_ADMIN", "roles": ["helpdesk_agent"], "durationDays": 30}}))
        .await;
    let da = data["requestRelationship"]["relationship"]["id"].as_str().unwrap().to_owned();
    let data = app.data(&customer, DECLINE, json!({"i": {"id": da}})).await;
    assert_eq!(data["declineRelationship"]["relationship"]["status"], "DECLINED");
}

#[tokio::test]
async fn r12_terminating_a_reseller_relationship_is_blocked_by_active_subscriptions_and_ends_delegated_admin() {
    let app = TestApp::new().await;
    let (_, ptid) = onboard(&app, "Contoso", "contoso.example", "DIRECT_BILL", "PUBLIC").await;
    let (customer_id, ctid) = platform_customer(&app, "Adatum", "adatum.example", "PUBLIC").await;
    let partner = app.token(ptid, &["admin_agent"]);
    let customer = app.token(ctid, &["global_admin"]);
    let reseller =
        linked(&app, &partner, &customer, json!({"customerDomain": "adatum.example", "kind": "RESELLER"})).await;
    let da = linked(
        &app,
        &partner,
        &customer,
        json!({"customerDomain": "adatum.example", "kind": "DELEGATED_ADMIN", "roles": ["admin_agent"]}),
    )
    .await;

    let sell =
        "mutation($i: CreateSubscriptionInput!) { createSubscription(input: $i) { subscription { id version } } }";
    let data = app.data(&partner, sell, json!({"i": {"customerId": customer_id, "offerId": "AZ", "offerName": "Azure plan", "billingModel": "USAGE_BASED"}})).await;
    let sub = data["createSubscription"]["subscription"].clone();

    let before = audit_total(&app).await;
    let body = app.gql_as(Some(&customer), TERMINATE, json!({"i": {"id": reseller}})).await;
    assert_eq!(error_code(&body), Some("ACTIVE_SUBSCRIPTIONS_EXIST"), "{body}");
    assert_eq!(audit_total(&app).await, before, "a refused mutation writes nothing");

    let cancel = "mutation($i: SubscriptionActionInput!) { cancelSubscription(input: $i) { subscription { status } } }";
    app.data(&partner, cancel, json!({"i": {"id": sub["id"], "expectedVersion": sub["version"]}})).await;
    let data = app.data(&customer, TERMINATE, json!({"i": {"id": reseller}})).await;
    assert_eq!(data["terminateRelationship"]["relationship"]["status"], "TERMINATED");
    let data = app.data(&customer, "query($id: ID!) { relationship(id: $id) { status } }", json!({"id": da})).await;
    assert_eq!(data["relationship"]["status"], "TERMINATED", "delegated admin ends with the reseller relationship");
    let body = app.gql_as(Some(&partner), TERMINATE, json!({"i": {"id": reseller}})).await;
    assert_eq!(error_code(&body), Some("INVALID_STATE"), "only ACTIVE relationships can be terminated");
    let data = app.data(&partner, "{ customers { totalCount } }", json!({})).await;
    assert_eq!(data["customers"]["totalCount"], 0);
}

#[tokio::test]
async fn r12_delegated_admin_expires_after_its_duration_and_requests_after_90_days() {
    let app = TestApp::new().await;
    let (_, ptid) = onboard(&app, "Contoso", "contoso.example", "DIRECT_BILL", "PUBLIC").await;
    let (_, ctid) = platform_customer(&app, "Adatum", "adatum.example", "PUBLIC").await;
    let (_, other_tid) = platform_customer(&app, "Relecloud", "relecloud.example", "PUBLIC").await;
    let partner = app.token(ptid, &["admin_agent"]);
    let customer = app.token(ctid, &["global_admin"]);
    let register = "mutation($i: RegisterExternalSubscriptionInput!) { registerExternalSubscription(input: $i) { subscription { id } } }";
    let adatum_id =
        app.data(&customer, "{ viewer { customer { id } } }", json!({})).await["viewer"]["customer"]["id"].clone();
    app.data(&customer, register, json!({"i": {"customerId": adatum_id, "channel": "DIRECT", "externalReference": "D-1", "offerId": "AZ", "offerName": "Azure", "billingModel": "USAGE_BASED"}})).await;
    linked(&app, &partner, &customer, json!({"customerDomain": "adatum.example", "kind": "DELEGATED_ADMIN", "roles": ["admin_agent"], "durationDays": 1})).await;
    let data = app.data(&partner, "{ subscriptions { totalCount } }", json!({})).await;
    assert_eq!(data["subscriptions"]["totalCount"], 1, "delegated admin shows what the customer bought elsewhere");
    let data =
        app.data(&partner, REQUEST, json!({"i": {"customerDomain": "relecloud.example", "kind": "RESELLER"}})).await;
    let pending = data["requestRelationship"]["relationship"]["id"].clone();

    app.clock.advance(Duration::days(2));
    let data = app.data(&partner, "{ subscriptions { totalCount } customers { totalCount } relationships(filter: {kind: DELEGATED_ADMIN}) { nodes { status } } }", json!({})).await;
    assert_eq!(data["subscriptions"]["totalCount"], 0, "an expired grant shows nothing");
    assert_eq!(data["customers"]["totalCount"], 0);
    assert_eq!(data["relationships"]["nodes"][0]["status"], "EXPIRED");

    app.clock.advance(Duration::days(90));
    let relecloud = app.token(other_tid, &["global_admin"]);
    let body = app.gql_as(Some(&relecloud), ACCEPT, json!({"i": {"id": pending}})).await;
    assert_eq!(error_code(&body), Some("INVALID_STATE"), "an unanswered request expires after 90 days");
    // A new request may replace the expired one.
    app.data(&partner, REQUEST, json!({"i": {"customerDomain": "relecloud.example", "kind": "RESELLER"}})).await;
}

#[tokio::test]
async fn r3_r4_requests_for_partners_or_across_clouds_are_refused() {
    let app = TestApp::new().await;
    let (_, ptid) = onboard(&app, "Contoso", "contoso.example", "DIRECT_BILL", "PUBLIC").await;
    onboard(&app, "Fabrikam", "fabrikam.example", "DIRECT_BILL", "PUBLIC").await;
    platform_customer(&app, "Springfield", "springfield.example", "US_GOVERNMENT").await;
    let partner = app.token(ptid, &["admin_agent"]);
    let body = app
        .gql_as(Some(&partner), REQUEST, json!({"i": {"customerDomain": "fabrikam.example", "kind": "RESELLER"}}))
        .await;
    assert_eq!(error_code(&body), Some("CANNOT_RESELL_TO_PARTNER"));
    let body = app
        .gql_as(Some(&partner), REQUEST, json!({"i": {"customerDomain": "springfield.example", "kind": "RESELLER"}}))
        .await;
    assert_eq!(error_code(&body), Some("CLOUD_MISMATCH"));
    let body = app
        .gql_as(Some(&partner), REQUEST, json!({"i": {"customerDomain": "nobody.example", "kind": "RESELLER"}}))
        .await;
    assert_eq!(error_code(&body), Some("NOT_FOUND"));
    for (input, field) in [
        (json!({"customerDomain": "x.example", "kind": "DELEGATED_ADMIN", "roles": []}), "roles"),
        (json!({"customerDomain": "x.example", "kind": "DELEGATED_ADMIN", "roles": ["sales_agent"]}), "roles"),
        (
            json!({"customerDomain": "x.example", "kind": "DELEGATED_ADMIN", "roles": ["admin_agent"], "durationDays": 731}),
            "durationDays",
        ),
        (json!({"customerDomain": "x.example", "kind": "INDIRECT_RESELLER"}), "kind"),
    ] {
        let body = app.gql_as(Some(&partner), REQUEST, json!({"i": input})).await;
        assert_eq!(error_code(&body), Some("BAD_USER_INPUT"), "{body}");
        assert!(body["errors"][0]["message"].as_str().unwrap().contains(field));
    }
}

#[tokio::test]
async fn r6_only_providers_invite_and_only_resellers_are_invited_then_the_indirect_story() {
    let app = TestApp::new().await;
    let (direct_id, direct_tid) = onboard(&app, "Contoso", "contoso.example", "DIRECT_BILL", "PUBLIC").await;
    let (reseller_id, reseller_tid) =
        onboard(&app, "Tailspin", "tailspin.example", "INDIRECT_RESELLER", "PUBLIC").await;
    let (_, provider_tid) = onboard(&app, "Northwind", "northwind.example", "INDIRECT_PROVIDER", "PUBLIC").await;
    let direct = app.token(direct_tid, &["admin_agent"]);
    let reseller = app.token(reseller_tid, &["admin_agent"]);
    let provider = app.token(provider_tid, &["admin_agent"]);
    let body = app.gql_as(Some(&direct), INVITE, json!({"i": {"resellerId": reseller_id}})).await;
    assert_eq!(error_code(&body), Some("BAD_USER_INPUT"), "direct-bill partners have no resellers");
    let body = app.gql_as(Some(&reseller), INVITE, json!({"i": {"resellerId": reseller_id}})).await;
    assert_eq!(error_code(&body), Some("INDIRECT_RESELLER_CANNOT_TRANSACT"));
    let body = app.gql_as(Some(&provider), INVITE, json!({"i": {"resellerId": direct_id}})).await;
    assert_eq!(error_code(&body), Some("BAD_USER_INPUT"), "only indirect resellers can be invited");

    // The provider invites, the reseller accepts.
    let data = app.data(&provider, INVITE, json!({"i": {"resellerId": reseller_id}})).await;
    let invite = data["inviteReseller"]["relationship"]["id"].clone();
    let body = app.gql_as(Some(&provider), ACCEPT, json!({"i": {"id": invite}})).await;
    assert_eq!(error_code(&body), Some("FORBIDDEN"), "the provider cannot accept its own invitation");
    app.data(&reseller, ACCEPT, json!({"i": {"id": invite}})).await;
    let data = app.data(&provider, "{ viewer { partner { resellers { nodes { id } } } } }", json!({})).await;
    assert_eq!(data["viewer"]["partner"]["resellers"]["nodes"][0]["id"], reseller_id);

    // The provider creates a customer for the reseller and sells with `resellerId`; both see them.
    let input =
        json!({"companyName": "Litware", "domain": "litware.example", "country": "DE", "resellerId": reseller_id});
    let data = app.data(&provider, CREATE_CUSTOMER, json!({"input": input})).await;
    let customer_id = data["createCustomer"]["customer"]["id"].clone();
    let sell = "mutation($i: CreateSubscriptionInput!) { createSubscription(input: $i) { subscription { id reseller { id } } } }";
    let data = app
        .data(&provider, sell, json!({"i": {"customerId": customer_id, "offerId": "M365", "offerName": "Microsoft 365", "billingModel": "LICENSE_BASED", "quantity": 5, "termMonths": 12, "resellerId": reseller_id}}))
        .await;
    assert_eq!(data["createSubscription"]["subscription"]["reseller"]["id"], reseller_id);
    for token in [&provider, &reseller] {
        let data = app.data(token, "{ customers { nodes { subscriptions { totalCount } } } }", json!({})).await;
        assert_eq!(data["customers"]["nodes"][0]["subscriptions"]["totalCount"], 1);
    }
    // The reseller sees but cannot transact.
    let body = app
        .gql_as(Some(&reseller), sell, json!({"i": {"customerId": customer_id, "offerId": "AZ", "offerName": "Azure", "billingModel": "USAGE_BASED"}}))
        .await;
    assert_eq!(error_code(&body), Some("INDIRECT_RESELLER_CANNOT_TRANSACT"));
}

#[tokio::test]
async fn r1_r13_r17_strangers_stale_versions_and_suspended_partners() {
    let app = TestApp::new().await;
    let (pid, ptid) = onboard(&app, "Contoso", "contoso.example", "DIRECT_BILL", "PUBLIC").await;
    let (_, stranger_tid) = onboard(&app, "Fabrikam", "fabrikam.example", "DIRECT_BILL", "PUBLIC").await;
    let (_, ctid) = platform_customer(&app, "Adatum", "adatum.example", "PUBLIC").await;
    let partner = app.token(ptid, &["admin_agent"]);
    let customer = app.token(ctid, &["global_admin"]);
    let stranger = app.token(stranger_tid, &["admin_agent"]);
    let data =
        app.data(&partner, REQUEST, json!({"i": {"customerDomain": "adatum.example", "kind": "RESELLER"}})).await;
    let rel = data["requestRelationship"]["relationship"].clone();
    // Another partner cannot act on it: it does not exist for it.
    for mutation in [ACCEPT, DECLINE, TERMINATE] {
        let body = app.gql_as(Some(&stranger), mutation, json!({"i": {"id": rel["id"]}})).await;
        assert_eq!(error_code(&body), Some("NOT_FOUND"), "{body}");
    }
    let body = app.gql_as(Some(&customer), ACCEPT, json!({"i": {"id": rel["id"], "expectedVersion": 7}})).await;
    assert_eq!(error_code(&body), Some("VERSION_CONFLICT"));
    app.data(&customer, ACCEPT, json!({"i": {"id": rel["id"], "expectedVersion": rel["version"]}})).await;

    let platform = app.token(app.platform(), &["platform_admin"]);
    let set = "mutation($i: SetPartnerStatusInput!) { setPartnerStatus(input: $i) { partner { status } } }";
    app.data(&platform, set, json!({"i": {"partnerId": pid, "status": "SUSPENDED"}})).await;
    let body = app.gql_as(Some(&partner), TERMINATE, json!({"i": {"id": rel["id"]}})).await;
    assert_eq!(error_code(&body), Some("PARTNER_SUSPENDED"));
    let body = app
        .gql_as(
            Some(&partner),
            REQUEST,
            json!({"i": {"customerDomain": "adatum.example", "kind": "DELEGATED_ADMIN", "roles": ["admin_agent"]}}),
        )
        .await;
    assert_eq!(error_code(&body), Some("PARTNER_SUSPENDED"));
}
