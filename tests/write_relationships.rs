//! Relationships: requests, invitations, answers and termination (R3, R4, R6, R12, R13, R17), and
//! the indirect story.

use chrono::Duration;
use partnerhub::graphql::ids::{NodeType, encode};
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
    // R4 meets R1: a customer of another cloud that the partner cannot see answers like no customer.
    let body = app
        .gql_as(Some(&partner), REQUEST, json!({"i": {"customerDomain": "springfield.example", "kind": "RESELLER"}}))
        .await;
    assert_eq!(error_code(&body), Some("NOT_FOUND"));
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("in your cloud"), "{body}");
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
    assert_eq!(error_code(&body), Some("NOT_FOUND"), "a partner it cannot see and cannot invite does not exist for it");

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

// ----- further cases: parties and roles on termination, audit of every change, the DB's R12 indexes,
// ----- the indirect reseller's own requests, invitations, and refusals that write nothing.

const READ_REL: &str = "query($id: ID!) { relationship(id: $id) { status version requestedAt respondedAt expiresAt terminatedAt indirectProvider { id } } }";

fn uuid_of(id: &Value) -> Uuid {
    partnerhub::graphql::ids::decode_any(id.as_str().unwrap()).unwrap().1
}

fn at(value: &Value) -> chrono::DateTime<chrono::Utc> {
    value.as_str().unwrap().parse().unwrap()
}

/// Audit events and outbox events with `action` / of `event` (read straight from the tables).
async fn written(app: &TestApp, action: &str, event: &str) -> (Vec<entity::audit_event::Model>, usize) {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let audits = entity::audit_event::Entity::find()
        .filter(entity::audit_event::Column::Action.eq(action))
        .all(&app.db)
        .await
        .unwrap();
    let events = entity::outbox_event::Entity::find()
        .filter(entity::outbox_event::Column::EventType.eq(event))
        .all(&app.db)
        .await
        .unwrap();
    (audits, events.len())
}

async fn outbox_total(app: &TestApp) -> u64 {
    use sea_orm::{EntityTrait, PaginatorTrait};
    entity::outbox_event::Entity::find().count(&app.db).await.unwrap()
}

#[tokio::test]
async fn r12_either_party_terminates_with_its_roles_and_each_change_is_audited_with_its_parties() {
    let app = TestApp::new().await;
    let (pid, ptid) = onboard(&app, "Contoso", "contoso.example", "DIRECT_BILL", "PUBLIC").await;
    let (customer_id, ctid) = platform_customer(&app, "Adatum", "adatum.example", "PUBLIC").await;
    let admin = app.token(ptid, &["admin_agent"]);
    let sales = app.token(ptid, &["sales_agent"]);
    let customer = app.token(ctid, &["global_admin"]);
    let billing = app.token(ctid, &["billing_admin"]);
    let da_input = json!({"customerDomain": "adatum.example", "kind": "DELEGATED_ADMIN", "roles": ["admin_agent"]});
    let reseller =
        linked(&app, &sales, &customer, json!({"customerDomain": "adatum.example", "kind": "RESELLER"})).await;
    let da = linked(&app, &admin, &customer, da_input.clone()).await;

    // Delegated admin: the partner's admin_agent or the customer's global_admin only.
    let body = app.gql_as(Some(&sales), TERMINATE, json!({"i": {"id": da}})).await;
    assert_eq!(error_code(&body), Some("FORBIDDEN"), "{body}");
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("admin_agent"), "{body}");
    let body = app.gql_as(Some(&billing), TERMINATE, json!({"i": {"id": da}})).await;
    assert_eq!(error_code(&body), Some("FORBIDDEN"), "{body}");
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("global_admin"), "{body}");
    let body = app.gql_as(Some(&billing), ACCEPT, json!({"i": {"id": da}})).await;
    assert_eq!(error_code(&body), Some("FORBIDDEN"), "billing_admin does not answer requests: {body}");
    let data = app.data(&customer, TERMINATE, json!({"i": {"id": da}})).await;
    assert_eq!(data["terminateRelationship"]["relationship"]["status"], "TERMINATED", "the customer side ends it");
    assert!(data["terminateRelationship"]["relationship"]["terminatedAt"].is_string());

    // A new grant; the partner's sales_agent ends the reseller relationship, which ends the grant too.
    let da2 = linked(&app, &admin, &customer, da_input).await;
    let data = app.data(&sales, TERMINATE, json!({"i": {"id": reseller}})).await;
    assert_eq!(data["terminateRelationship"]["relationship"]["status"], "TERMINATED", "the partner side ends it");
    let data = app.data(&customer, READ_REL, json!({"id": da2})).await;
    assert_eq!(data["relationship"]["status"], "TERMINATED");

    // Every change has its audit event and its domain event, naming partner and customer.
    let (pid, customer_id) = (uuid_of(&json!(pid)), uuid_of(&json!(customer_id)));
    for (action, event, count) in [
        ("relationship.request", "RELATIONSHIP_REQUESTED", 3),
        ("relationship.accept", "RELATIONSHIP_ACCEPTED", 3),
        ("relationship.terminate", "RELATIONSHIP_TERMINATED", 3),
    ] {
        let (audits, events) = written(&app, action, event).await;
        assert_eq!((audits.len(), events), (count, count), "{action}/{event}");
        for a in &audits {
            assert_eq!((a.partner_id, a.customer_id), (Some(pid), Some(customer_id)), "{action}");
            assert_eq!(a.target_type, "Relationship");
        }
    }
    let (cascaded, _) = written(&app, "relationship.terminate", "RELATIONSHIP_TERMINATED").await;
    assert!(cascaded.iter().any(|a| a.target_id == uuid_of(&json!(da2))), "the cascaded grant has its own change");
}

#[tokio::test]
async fn r12_acceptance_starts_the_grant_and_pending_requests_of_both_kinds_expire_after_90_days() {
    let app = TestApp::new().await;
    let (_, ptid) = onboard(&app, "Contoso", "contoso.example", "DIRECT_BILL", "PUBLIC").await;
    let (_, ctid) = platform_customer(&app, "Adatum", "adatum.example", "PUBLIC").await;
    let admin = app.token(ptid, &["admin_agent"]);
    let customer = app.token(ctid, &["global_admin"]);
    let mut ids = Vec::new();
    for input in [
        json!({"customerDomain": "adatum.example", "kind": "RESELLER", "message": "hello"}),
        json!({"customerDomain": "adatum.example", "kind": "DELEGATED_ADMIN", "roles": ["helpdesk_agent", "admin_agent"], "durationDays": 10}),
    ] {
        let data = app.data(&admin, REQUEST, json!({"i": input})).await;
        let id = data["requestRelationship"]["relationship"]["id"].clone();
        let rel = app.data(&admin, READ_REL, json!({"id": id})).await["relationship"].clone();
        assert_eq!(at(&rel["expiresAt"]) - at(&rel["requestedAt"]), Duration::days(90), "{input}");
        ids.push(id);
    }
    let data = app
        .data(&admin, "{ relationships(filter: {kind: DELEGATED_ADMIN}) { nodes { roles durationDays } } }", json!({}))
        .await;
    assert_eq!(data["relationships"]["nodes"][0]["roles"], json!(["admin_agent", "helpdesk_agent"]));
    assert_eq!(data["relationships"]["nodes"][0]["durationDays"], 10);

    app.clock.advance(Duration::days(3));
    for id in &ids {
        app.data(&customer, ACCEPT, json!({"i": {"id": id}})).await;
    }
    let rel = app.data(&customer, READ_REL, json!({"id": ids[0]})).await["relationship"].clone();
    assert_eq!(
        (rel["status"].as_str(), &rel["expiresAt"]),
        (Some("ACTIVE"), &Value::Null),
        "reseller links do not end"
    );
    let rel = app.data(&customer, READ_REL, json!({"id": ids[1]})).await["relationship"].clone();
    assert_eq!(rel["status"], "ACTIVE");
    assert_eq!(at(&rel["expiresAt"]) - at(&rel["respondedAt"]), Duration::days(10), "the grant lasts durationDays");

    // The default grant lasts 730 days.
    let data = app
        .data(
            &admin,
            REQUEST,
            json!({"i": {"customerDomain": "adatum.example", "kind": "DELEGATED_ADMIN", "roles": ["admin_agent"]}}),
        )
        .await;
    let id = data["requestRelationship"]["relationship"]["id"].clone();
    assert_eq!(data["requestRelationship"]["relationship"]["durationDays"], 730);
    let data = app.data(&customer, ACCEPT, json!({"i": {"id": id}})).await;
    let rel = app.data(&customer, READ_REL, json!({"id": id})).await["relationship"].clone();
    assert_eq!(
        at(&data["acceptRelationship"]["relationship"]["expiresAt"]) - at(&rel["respondedAt"]),
        Duration::days(730)
    );

    // A pending delegated-admin request expires after 90 days too.
    let data = app
        .data(
            &admin,
            REQUEST,
            json!({"i": {"customerDomain": "adatum.example", "kind": "DELEGATED_ADMIN", "roles": ["helpdesk_agent"]}}),
        )
        .await;
    let id = data["requestRelationship"]["relationship"]["id"].clone();
    app.clock.advance(Duration::days(91));
    let body = app.gql_as(Some(&customer), DECLINE, json!({"i": {"id": id}})).await;
    assert_eq!(error_code(&body), Some("INVALID_STATE"), "{body}");
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("PENDING"), "{body}");
}

#[tokio::test]
async fn r12_accepting_a_reseller_request_when_one_is_already_active_is_a_conflict() {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let app = TestApp::new().await;
    let (pid, ptid) = onboard(&app, "Contoso", "contoso.example", "DIRECT_BILL", "PUBLIC").await;
    let (_, ctid) = platform_customer(&app, "Adatum", "adatum.example", "PUBLIC").await;
    let partner = app.token(ptid, &["admin_agent"]);
    let customer = app.token(ctid, &["global_admin"]);
    let data =
        app.data(&partner, REQUEST, json!({"i": {"customerDomain": "adatum.example", "kind": "RESELLER"}})).await;
    let id = data["requestRelationship"]["relationship"]["id"].clone();
    // Meanwhile an ACTIVE reseller relationship for the pair came to exist.
    let adatum = entity::customer::Entity::find()
        .filter(entity::customer::Column::Domain.eq("adatum.example"))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    app.seed().reseller_link(uuid_of(&json!(pid)), &adatum).await.unwrap();
    let before = audit_total(&app).await;
    let body = app.gql_as(Some(&customer), ACCEPT, json!({"i": {"id": id}})).await;
    assert_eq!(error_code(&body), Some("CONFLICT"), "{body}");
    assert_eq!(audit_total(&app).await, before);
    let data = app.data(&customer, DECLINE, json!({"i": {"id": id}})).await;
    assert_eq!(data["declineRelationship"]["relationship"]["status"], "DECLINED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn r12_concurrent_identical_requests_leave_exactly_one_pending_request() {
    let app = TestApp::new().await;
    let (_, ptid) = onboard(&app, "Contoso", "contoso.example", "DIRECT_BILL", "PUBLIC").await;
    platform_customer(&app, "Adatum", "adatum.example", "PUBLIC").await;
    let partner = app.token(ptid, &["admin_agent"]);
    let input = json!({"i": {"customerDomain": "adatum.example", "kind": "RESELLER"}});
    let calls = (0..12).map(|_| (partner.clone(), REQUEST.to_owned(), input.clone())).collect();
    let answers = app.concurrently(calls).await;
    let ok = answers.iter().filter(|b| b.get("errors").is_none()).count();
    assert_eq!(ok, 1, "{answers:?}");
    for body in answers.iter().filter(|b| b.get("errors").is_some()) {
        assert_eq!(error_code(body), Some("CONFLICT"), "{body}");
    }
    let data = app.data(&partner, "{ relationships { totalCount } }", json!({})).await;
    assert_eq!(data["relationships"]["totalCount"], 1);

    // Declined, a request may be made again.
    let id =
        app.data(&partner, "{ relationships { nodes { id } } }", json!({})).await["relationships"]["nodes"][0]["id"]
            .clone();
    let customer_tid: Uuid = {
        let platform = app.token(app.platform(), &["platform_admin"]);
        app.data(&platform, "{ customers { nodes { tenantId } } }", json!({})).await["customers"]["nodes"][0]
            ["tenantId"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    };
    app.data(&app.token(customer_tid, &["global_admin"]), DECLINE, json!({"i": {"id": id}})).await;
    app.data(&partner, REQUEST, input).await;
}

#[tokio::test]
async fn r12_only_the_partners_own_live_subscriptions_block_termination() {
    use entity::enums::{BillingModel, Channel, SubscriptionStatus};
    use partnerhub::seed::NewSubscription;
    let app = TestApp::new().await;
    let (pid, ptid) = onboard(&app, "Contoso", "contoso.example", "DIRECT_BILL", "PUBLIC").await;
    let (other, _) = onboard(&app, "Fabrikam", "fabrikam.example", "DIRECT_BILL", "PUBLIC").await;
    let (customer_id, ctid) = platform_customer(&app, "Adatum", "adatum.example", "PUBLIC").await;
    let partner = app.token(ptid, &["admin_agent"]);
    let customer = app.token(ctid, &["global_admin"]);
    let reseller =
        linked(&app, &partner, &customer, json!({"customerDomain": "adatum.example", "kind": "RESELLER"})).await;
    let (pid, other, cid) = (uuid_of(&json!(pid)), uuid_of(&json!(other)), uuid_of(&json!(customer_id)));
    let seed = app.seed();
    // None of these block: another partner's, another channel's, suspended, cancelled, lapsed.
    seed.subscription(NewSubscription::csp(cid, other, None, BillingModel::UsageBased), 1).await.unwrap();
    seed.subscription(NewSubscription::external(cid, Channel::Direct, BillingModel::UsageBased, "D-1"), 1)
        .await
        .unwrap();
    for status in [SubscriptionStatus::Suspended, SubscriptionStatus::Cancelled] {
        let mut sub = NewSubscription::csp(cid, pid, None, BillingModel::LicenseBased);
        sub.status = status;
        seed.subscription(sub, 1).await.unwrap();
    }
    let mut lapsed = NewSubscription::csp(cid, pid, None, BillingModel::LicenseBased);
    lapsed.auto_renew = false;
    seed.subscription(lapsed, 400).await.unwrap();
    // This one does, until it is suspended.
    let live = seed.subscription(NewSubscription::csp(cid, pid, None, BillingModel::UsageBased), 1).await.unwrap();

    let body = app.gql_as(Some(&partner), TERMINATE, json!({"i": {"id": reseller}})).await;
    assert_eq!(error_code(&body), Some("ACTIVE_SUBSCRIPTIONS_EXIST"), "{body}");
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("suspend or cancel"), "{body}");
    let suspend =
        "mutation($i: SubscriptionActionInput!) { suspendSubscription(input: $i) { subscription { status } } }";
    let live_id = partnerhub::graphql::ids::encode(partnerhub::graphql::ids::NodeType::Subscription, live.id);
    let data = app.data(&partner, suspend, json!({"i": {"id": live_id.to_string(), "expectedVersion": 1}})).await;
    assert_eq!(data["suspendSubscription"]["subscription"]["status"], "SUSPENDED");
    let body = app.gql_as(Some(&partner), TERMINATE, json!({"i": {"id": reseller, "expectedVersion": 0}})).await;
    assert_eq!(error_code(&body), Some("VERSION_CONFLICT"), "R13 on terminate: {body}");
    let data = app.data(&partner, TERMINATE, json!({"i": {"id": reseller}})).await;
    assert_eq!(data["terminateRelationship"]["relationship"]["status"], "TERMINATED");
}

#[tokio::test]
async fn r6_an_indirect_reseller_asks_a_customer_through_its_provider() {
    use entity::enums::{BillingModel, Cloud, PartnerType};
    use partnerhub::seed::NewSubscription;
    let app = TestApp::new().await;
    let (provider_id, provider_tid) =
        onboard(&app, "Northwind", "northwind.example", "INDIRECT_PROVIDER", "PUBLIC").await;
    let (reseller_id, reseller_tid) =
        onboard(&app, "Tailspin", "tailspin.example", "INDIRECT_RESELLER", "PUBLIC").await;
    let (_, ctid) = platform_customer(&app, "Adatum", "adatum.example", "PUBLIC").await;
    let provider = app.token(provider_tid, &["admin_agent"]);
    let reseller = app.token(reseller_tid, &["admin_agent"]);
    let customer = app.token(ctid, &["global_admin"]);
    let ask = |provider: Option<&str>| {
        let mut input = json!({"customerDomain": "adatum.example", "kind": "RESELLER"});
        if let Some(p) = provider {
            input["indirectProviderId"] = json!(p);
        }
        json!({"i": input})
    };

    let body = app.gql_as(Some(&reseller), REQUEST, ask(None)).await;
    assert_eq!(error_code(&body), Some("BAD_USER_INPUT"), "{body}");
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("indirectProviderId"));
    let body = app.gql_as(Some(&reseller), REQUEST, ask(Some(&provider_id))).await;
    assert!(matches!(error_code(&body), Some("NOT_FOUND" | "RELATIONSHIP_REQUIRED")), "no link yet: {body}");
    let body = app.gql_as(Some(&provider), REQUEST, ask(Some(&provider_id))).await;
    assert_eq!(error_code(&body), Some("BAD_USER_INPUT"), "only resellers name a provider: {body}");

    let invite =
        app.data(&provider, INVITE, json!({"i": {"resellerId": reseller_id}})).await["inviteReseller"]["relationship"]
            ["id"]
            .clone();
    let data = app.data(&reseller, ACCEPT, json!({"i": {"id": invite}})).await;
    assert_eq!(data["acceptRelationship"]["relationship"]["expiresAt"], Value::Null);
    let data = app.data(&reseller, REQUEST, ask(Some(&provider_id))).await;
    let rel = data["requestRelationship"]["relationship"]["id"].clone();
    assert_eq!(data["requestRelationship"]["relationship"]["partner"]["id"], reseller_id);
    app.data(&customer, ACCEPT, json!({"i": {"id": rel}})).await;
    let data = app.data(&customer, READ_REL, json!({"id": rel})).await;
    assert_eq!(data["relationship"]["indirectProvider"]["id"], provider_id);
    for token in [&provider, &reseller] {
        let data = app.data(token, "{ customers { nodes { domain } } }", json!({})).await;
        assert_eq!(data["customers"]["nodes"][0]["domain"], "adatum.example", "both see the customer");
    }

    // The provider also holds delegated admin with the customer; its sale through the reseller blocks
    // termination; once cancelled, ending the reseller's relationship ends the provider's grant too.
    let da = linked(
        &app,
        &provider,
        &customer,
        json!({"customerDomain": "adatum.example", "kind": "DELEGATED_ADMIN", "roles": ["helpdesk_agent"]}),
    )
    .await;
    let seed = app.seed();
    let adatum_id =
        app.data(&customer, "{ viewer { customer { id } } }", json!({})).await["viewer"]["customer"]["id"].clone();
    let (pid, rid, cid) = (uuid_of(&json!(provider_id)), uuid_of(&json!(reseller_id)), uuid_of(&adatum_id));
    let sub = seed.subscription(NewSubscription::csp(cid, pid, Some(rid), BillingModel::UsageBased), 1).await.unwrap();
    let body = app.gql_as(Some(&customer), TERMINATE, json!({"i": {"id": rel}})).await;
    assert_eq!(error_code(&body), Some("ACTIVE_SUBSCRIPTIONS_EXIST"), "{body}");
    let cancel = "mutation($i: SubscriptionActionInput!) { cancelSubscription(input: $i) { subscription { status } } }";
    let sub_id = partnerhub::graphql::ids::encode(partnerhub::graphql::ids::NodeType::Subscription, sub.id);
    app.data(&provider, cancel, json!({"i": {"id": sub_id.to_string(), "expectedVersion": 1}})).await;
    let data = app.data(&reseller, TERMINATE, json!({"i": {"id": rel}})).await;
    assert_eq!(data["terminateRelationship"]["relationship"]["status"], "TERMINATED");
    let data = app.data(&customer, READ_REL, json!({"id": da})).await;
    assert_eq!(data["relationship"]["status"], "TERMINATED", "the provider's grant ended with its last link");

    // Invitations: none while one is ACTIVE, one pending per pair, again after a decline; R4; NOT_FOUND.
    let body = app.gql_as(Some(&provider), INVITE, json!({"i": {"resellerId": reseller_id}})).await;
    assert_eq!(error_code(&body), Some("CONFLICT"), "already ACTIVE: {body}");
    let (_, p2_tid) = onboard(&app, "Proseware", "proseware.example", "INDIRECT_PROVIDER", "PUBLIC").await;
    let p2 = app.token(p2_tid, &["admin_agent"]);
    let data = app.data(&p2, INVITE, json!({"i": {"resellerId": reseller_id, "message": "join us"}})).await;
    let second = data["inviteReseller"]["relationship"]["id"].clone();
    assert_eq!(data["inviteReseller"]["relationship"]["kind"], "INDIRECT_RESELLER");
    let body = app.gql_as(Some(&p2), INVITE, json!({"i": {"resellerId": reseller_id}})).await;
    assert_eq!(error_code(&body), Some("CONFLICT"), "one pending invitation per pair: {body}");
    let helpdesk = app.token(reseller_tid, &["helpdesk_agent"]);
    let body = app.gql_as(Some(&helpdesk), DECLINE, json!({"i": {"id": second}})).await;
    assert_eq!(error_code(&body), Some("FORBIDDEN"), "the reseller's admin_agent answers: {body}");
    app.data(&reseller, DECLINE, json!({"i": {"id": second}})).await;
    app.data(&p2, INVITE, json!({"i": {"resellerId": reseller_id}})).await;
    let sales = app.token(p2_tid, &["sales_agent"]);
    let body = app.gql_as(Some(&sales), INVITE, json!({"i": {"resellerId": reseller_id}})).await;
    assert_eq!(error_code(&body), Some("FORBIDDEN"), "{body}");
    let gov = seed
        .partner(
            Uuid::new_v4(),
            "Gov Reseller",
            "govreseller.example",
            PartnerType::IndirectReseller,
            Cloud::UsGovernment,
        )
        .await
        .unwrap();
    let gov_id = partnerhub::graphql::ids::encode(partnerhub::graphql::ids::NodeType::Partner, gov.id);
    let gov_body = app.gql_as(Some(&p2), INVITE, json!({"i": {"resellerId": gov_id.to_string()}})).await;
    assert_eq!(error_code(&gov_body), Some("NOT_FOUND"), "an unseen reseller of another cloud: {gov_body}");
    let nobody = partnerhub::graphql::ids::encode(partnerhub::graphql::ids::NodeType::Partner, Uuid::new_v4());
    let body = app.gql_as(Some(&p2), INVITE, json!({"i": {"resellerId": nobody.to_string()}})).await;
    assert_eq!(error_code(&body), Some("NOT_FOUND"), "{body}");
    assert_eq!(gov_body["errors"][0]["message"], body["errors"][0]["message"]);
    let body = app.gql_as(Some(&customer), INVITE, json!({"i": {"resellerId": reseller_id}})).await;
    assert_eq!(error_code(&body), Some("FORBIDDEN"), "{body}");

    // The provider side of an invitation terminates it (admin_agent).
    let data = app.data(&provider, TERMINATE, json!({"i": {"id": invite}})).await;
    assert_eq!(data["terminateRelationship"]["relationship"]["status"], "TERMINATED");
    let (audits, events) = written(&app, "relationship.invite", "RELATIONSHIP_REQUESTED").await;
    assert_eq!(audits.len(), 3);
    assert!(events >= 3);
    assert!(audits.iter().all(|a| a.partner_id == Some(rid) && a.related_partner_id.is_some()));
}

#[tokio::test]
async fn r15_refused_relationship_mutations_write_nothing() {
    let app = TestApp::new().await;
    let (pid, ptid) = onboard(&app, "Contoso", "contoso.example", "DIRECT_BILL", "PUBLIC").await;
    let (_, stranger_tid) = onboard(&app, "Fabrikam", "fabrikam.example", "DIRECT_BILL", "PUBLIC").await;
    let (_, ctid) = platform_customer(&app, "Adatum", "adatum.example", "PUBLIC").await;
    platform_customer(&app, "Springfield", "springfield.example", "US_GOVERNMENT").await;
    let partner = app.token(ptid, &["admin_agent"]);
    let stranger = app.token(stranger_tid, &["admin_agent"]);
    let customer = app.token(ctid, &["global_admin"]);
    let reader = app.token(ctid, &["reader"]);
    let data =
        app.data(&partner, REQUEST, json!({"i": {"customerDomain": "adatum.example", "kind": "RESELLER"}})).await;
    let pending = data["requestRelationship"]["relationship"]["id"].clone();
    let platform = app.token(app.platform(), &["platform_admin"]);

    let before = (audit_total(&app).await, outbox_total(&app).await);
    let refusals = [
        (&partner, REQUEST, json!({"customerDomain": "adatum.example", "kind": "RESELLER"}), "CONFLICT"),
        (
            &partner,
            REQUEST,
            json!({"customerDomain": "fabrikam.example", "kind": "RESELLER"}),
            "CANNOT_RESELL_TO_PARTNER",
        ),
        (&partner, REQUEST, json!({"customerDomain": "springfield.example", "kind": "RESELLER"}), "NOT_FOUND"),
        (&partner, REQUEST, json!({"customerDomain": "nobody.example", "kind": "RESELLER"}), "NOT_FOUND"),
        (&customer, REQUEST, json!({"customerDomain": "adatum.example", "kind": "RESELLER"}), "FORBIDDEN"),
        (&partner, INVITE, json!({"resellerId": pid}), "BAD_USER_INPUT"),
        (&partner, ACCEPT, json!({"id": pending}), "FORBIDDEN"),
        (&reader, DECLINE, json!({"id": pending}), "FORBIDDEN"),
        (&stranger, DECLINE, json!({"id": pending}), "NOT_FOUND"),
        (&customer, TERMINATE, json!({"id": pending}), "INVALID_STATE"),
        (&customer, ACCEPT, json!({"id": pending, "expectedVersion": 2}), "VERSION_CONFLICT"),
        (&platform, ACCEPT, json!({"id": pending}), "FORBIDDEN"),
    ];
    for (token, mutation, input, code) in refusals {
        let body = app.gql_as(Some(token), mutation, json!({"i": input})).await;
        assert_eq!(error_code(&body), Some(code), "{input}: {body}");
    }
    assert_eq!((audit_total(&app).await, outbox_total(&app).await), before, "refusals write no audit or outbox event");
    let data = app.data(&customer, READ_REL, json!({"id": pending})).await;
    assert_eq!(
        (data["relationship"]["status"].as_str(), data["relationship"]["version"].as_i64()),
        (Some("PENDING"), Some(1))
    );
}

/// The message of the first error.
fn message(body: &Value) -> String {
    body["errors"][0]["message"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn r1_request_relationship_errors_reveal_nothing_about_unseen_customers() {
    let app = TestApp::new().await;
    let (_, ptid) = onboard(&app, "Contoso", "contoso.example", "DIRECT_BILL", "PUBLIC").await;
    onboard(&app, "Woodgrove", "woodgrove.example", "DIRECT_BILL", "US_GOVERNMENT").await;
    platform_customer(&app, "Springfield", "springfield.example", "US_GOVERNMENT").await;
    let (_, ctid) = platform_customer(&app, "Adatum", "adatum.example", "PUBLIC").await;
    let partner = app.token(ptid, &["admin_agent"]);
    let request = |domain: &str| json!({"i": {"customerDomain": domain, "kind": "RESELLER"}});
    let nobody = app.gql_as(Some(&partner), REQUEST, request("nobody.example")).await;
    assert_eq!(error_code(&nobody), Some("NOT_FOUND"));
    // A customer of another cloud it cannot see: the same answer as no customer at all, not its cloud.
    let gov = app.gql_as(Some(&partner), REQUEST, request("springfield.example")).await;
    assert_eq!(error_code(&gov), Some("NOT_FOUND"), "{gov}");
    assert_eq!(message(&gov).replace("springfield", "nobody"), message(&nobody), "same answer as no customer");
    assert!(!message(&gov).contains("US_GOVERNMENT") && !message(&gov).contains("cloud ("), "{gov}");
    // A partner's domain is public (the program's partner directory): R3 may say so, in any cloud.
    let body = app.gql_as(Some(&partner), REQUEST, request("woodgrove.example")).await;
    assert_eq!(error_code(&body), Some("CANNOT_RESELL_TO_PARTNER"), "{body}");
    // A customer in its cloud can be asked: that is what a request is for.
    let data = app.data(&partner, REQUEST, request("adatum.example")).await;
    let rel = &data["requestRelationship"]["relationship"];
    assert_eq!(rel["customerDomain"], "adatum.example");
    assert!(rel["customer"].is_null(), "still unseen while pending");
    app.data(&app.token(ctid, &["global_admin"]), ACCEPT, json!({"i": {"id": rel["id"]}})).await;
}

#[tokio::test]
async fn r1_invite_reseller_answers_not_found_for_unseen_partners_that_cannot_be_invited() {
    let app = TestApp::new().await;
    let (_, provider_tid) = onboard(&app, "Northwind", "northwind.example", "INDIRECT_PROVIDER", "PUBLIC").await;
    let (direct_id, _) = onboard(&app, "Contoso", "contoso.example", "DIRECT_BILL", "PUBLIC").await;
    let (other_provider_id, _) = onboard(&app, "Lamna", "lamna.example", "INDIRECT_PROVIDER", "PUBLIC").await;
    let (gov_reseller_id, _) =
        onboard(&app, "Gov Reseller", "govreseller.example", "INDIRECT_RESELLER", "US_GOVERNMENT").await;
    let (reseller_id, _) = onboard(&app, "Tailspin", "tailspin.example", "INDIRECT_RESELLER", "PUBLIC").await;
    let provider = app.token(provider_tid, &["admin_agent"]);
    let invite = |id: &str| json!({"i": {"resellerId": id}});
    let nobody = encode(NodeType::Partner, Uuid::now_v7());
    let unknown = app.gql_as(Some(&provider), INVITE, invite(&nobody)).await;
    assert_eq!(error_code(&unknown), Some("NOT_FOUND"));
    for (case, id) in
        [("direct bill", &direct_id), ("indirect provider", &other_provider_id), ("other cloud", &gov_reseller_id)]
    {
        let body = app.gql_as(Some(&provider), INVITE, invite(id)).await;
        assert_eq!(error_code(&body), Some("NOT_FOUND"), "{case}: {body}");
        assert_eq!(message(&body), message(&unknown), "{case}: its type or cloud leaks");
    }
    // An indirect reseller of its cloud can be invited unseen: that is what an invitation is for.
    let data = app.data(&provider, INVITE, invite(&reseller_id)).await;
    assert_eq!(data["inviteReseller"]["relationship"]["status"], "PENDING");
}

#[tokio::test]
async fn input_limits_invitation_and_request_messages_are_bounded() {
    let app = TestApp::new().await;
    let (_, provider_tid) = onboard(&app, "Northwind", "northwind.example", "INDIRECT_PROVIDER", "PUBLIC").await;
    let (reseller_id, _) = onboard(&app, "Tailspin", "tailspin.example", "INDIRECT_RESELLER", "PUBLIC").await;
    let (_, ptid) = onboard(&app, "Contoso", "contoso.example", "DIRECT_BILL", "PUBLIC").await;
    platform_customer(&app, "Adatum", "adatum.example", "PUBLIC").await;
    let provider = app.token(provider_tid, &["admin_agent"]);
    let partner = app.token(ptid, &["admin_agent"]);
    let huge = "x".repeat(900 * 1024);
    for (token, mutation, input) in [
        (&provider, INVITE, json!({"resellerId": reseller_id, "message": huge})),
        (&provider, INVITE, json!({"resellerId": reseller_id, "message": "x".repeat(1001)})),
        (&provider, INVITE, json!({"resellerId": reseller_id, "message": "hello\u{0}"})),
        (
            &partner,
            REQUEST,
            json!({"customerDomain": "adatum.example", "kind": "RESELLER", "message": "x".repeat(1001)}),
        ),
        (&partner, REQUEST, json!({"customerDomain": "adatum.example", "kind": "RESELLER", "message": "a\u{0}"})),
        (&partner, REQUEST, json!({"customerDomain": huge, "kind": "RESELLER"})),
    ] {
        let body = app.gql_as(Some(token), mutation, json!({"i": input})).await;
        assert_eq!(error_code(&body), Some("BAD_USER_INPUT"), "{body:.300}");
        let text = message(&body);
        assert!(text.len() < 300, "the message does not echo the input: {} bytes", text.len());
        assert!(text.contains("message") || text.contains("customerDomain"), "{text}");
        assert!(text.contains("1000") || text.contains("253") || text.contains("control"), "names the limit: {text}");
    }
    assert_eq!(audit_total(&app).await, 4, "only the three onboardings and the customer wrote anything");
    let data =
        app.data(&provider, INVITE, json!({"i": {"resellerId": reseller_id, "message": "line one\nline two"}})).await;
    assert_eq!(data["inviteReseller"]["relationship"]["status"], "PENDING");
}
