//! Subscription transfers: the partner-switch story (R7, R8), withdraw, reject and expiry, who may
//! ask and answer (R1, R6, R17, R4), R13, R14 and R15 on transfers.

use chrono::Duration;
use entity::enums::{Cloud, PartnerType, TransferStatus};
use entity::{audit_event, customer, outbox_event, subscription, subscription_transfer};
use partnerhub::graphql::ids::{NodeType, decode_any, encode};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::{TestApp, error_code};
use crate::write_customers::{CREATE_CUSTOMER, onboard};
use crate::write_relationships::{ACCEPT as ACCEPT_RELATIONSHIP, INVITE, TERMINATE, linked};
use crate::write_subscriptions::SELL;

const REQUEST_TRANSFER: &str = "mutation($i: RequestTransferInput!) { requestSubscriptionTransfer(input: $i) {
    transfer { id status version expiresAt sourcePartner { id } targetPartner { id } } } }";
const ACCEPT: &str =
    "mutation($i: TransferActionInput!) { acceptSubscriptionTransfer(input: $i) { transfer { id status version } } }";
const REJECT: &str =
    "mutation($i: TransferActionInput!) { rejectSubscriptionTransfer(input: $i) { transfer { id status version } } }";
const WITHDRAW: &str =
    "mutation($i: TransferActionInput!) { withdrawSubscriptionTransfer(input: $i) { transfer { id status version } } }";
const UPDATE: &str =
    "mutation($i: UpdateSubscriptionInput!) { updateSubscription(input: $i) { subscription { version } } }";
const SUSPEND: &str =
    "mutation($i: SubscriptionActionInput!) { suspendSubscription(input: $i) { subscription { version status } } }";
const REACTIVATE: &str =
    "mutation($i: SubscriptionActionInput!) { reactivateSubscription(input: $i) { subscription { version status } } }";
const REGISTER: &str = "mutation($i: RegisterExternalSubscriptionInput!) { registerExternalSubscription(input: $i) { subscription { id } } }";
const SUBSCRIPTION: &str =
    "query($id: ID!) { subscription(id: $id) { version status partner { id } reseller { id } } }";
const SET_STATUS: &str =
    "mutation($input: SetPartnerStatusInput!) { setPartnerStatus(input: $input) { partner { status } } }";

struct Switch {
    app: TestApp,
    a_id: String,
    a_admin: String,
    a_sales: String,
    b: String,
    b_id: String,
    b_sales: String,
    /// B's reseller relationship with the customer.
    b_link: String,
    customer: Value,
    /// The customer's `global_admin`.
    owner: String,
    usage: Value,
    license: Value,
}

/// A sells a usage-based and a license-based subscription to its customer; B has its own reseller
/// relationship with the customer.
async fn switch_world() -> Switch {
    let app = TestApp::new().await;
    let (a_id, a_tid) = onboard(&app, "Contoso", "contoso.example", "DIRECT_BILL", "PUBLIC").await;
    let (b_id, b_tid) = onboard(&app, "Fabrikam", "fabrikam.example", "DIRECT_BILL", "PUBLIC").await;
    let a_admin = app.token(a_tid, &["admin_agent"]);
    let a_sales = app.token(a_tid, &["sales_agent"]);
    let b = app.token(b_tid, &["admin_agent"]);
    let b_sales = app.token(b_tid, &["sales_agent"]);
    let input = json!({"companyName": "Adatum", "domain": "adatum.example", "country": "US"});
    let data = app.data(&a_sales, CREATE_CUSTOMER, json!({"input": input})).await;
    let customer = data["createCustomer"]["customer"]["id"].clone();
    let customer_tid = data["createCustomer"]["customer"]["tenantId"].as_str().unwrap().parse().unwrap();
    let usage = app
        .data(&a_sales, SELL, json!({"i": {"customerId": customer, "offerId": "AZ", "offerName": "Azure plan", "billingModel": "USAGE_BASED"}}))
        .await["createSubscription"]["subscription"]
        .clone();
    let license = app
        .data(&a_sales, SELL, json!({"i": {"customerId": customer, "offerId": "M365", "offerName": "M365", "billingModel": "LICENSE_BASED", "quantity": 3, "termMonths": 1}}))
        .await["createSubscription"]["subscription"]
        .clone();
    let owner = app.token(customer_tid, &["global_admin"]);
    let b_link = linked(&app, &b, &owner, json!({"customerDomain": "adatum.example", "kind": "RESELLER"})).await;
    Switch { app, a_id, a_admin, a_sales, b, b_id, b_sales, b_link, customer, owner, usage, license }
}

fn uuid_of(id: &Value) -> Uuid {
    decode_any(id.as_str().unwrap()).unwrap().1
}

async fn audit_total(app: &TestApp) -> u64 {
    audit_event::Entity::find().count(&app.db).await.unwrap()
}

async fn outbox_total(app: &TestApp) -> u64 {
    outbox_event::Entity::find().count(&app.db).await.unwrap()
}

async fn audits(app: &TestApp, action: &str) -> Vec<audit_event::Model> {
    audit_event::Entity::find().filter(audit_event::Column::Action.eq(action)).all(&app.db).await.unwrap()
}

async fn events(app: &TestApp, event_type: &str) -> Vec<outbox_event::Model> {
    outbox_event::Entity::find().filter(outbox_event::Column::EventType.eq(event_type)).all(&app.db).await.unwrap()
}

#[tokio::test]
async fn r7_license_based_subscription_cannot_switch_partner() {
    let w = switch_world().await;
    // B sees the customer's subscriptions through delegated admin (unseen, R1 answers NOT_FOUND).
    let grant = json!({"customerDomain": "adatum.example", "kind": "DELEGATED_ADMIN", "roles": ["helpdesk_agent"]});
    linked(&w.app, &w.b, &w.owner, grant).await;
    let before = (audit_total(&w.app).await, outbox_total(&w.app).await);
    let body = w.app.gql_as(Some(&w.b), REQUEST_TRANSFER, json!({"i": {"subscriptionId": w.license["id"]}})).await;
    assert_eq!(error_code(&body), Some("LICENSE_BASED_SWITCH_NOT_ALLOWED"), "{body}");
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("cancellation window") && message.contains("autoRenew"), "{message}");
    assert_eq!((audit_total(&w.app).await, outbox_total(&w.app).await), before, "a refusal writes nothing");
    assert_eq!(subscription_transfer::Entity::find().count(&w.app.db).await.unwrap(), 0);
}

#[tokio::test]
async fn r8_partner_switch_story_usage_based_moves_when_the_source_admin_accepts() {
    let w = switch_world().await;
    let app = &w.app;
    let data = app.data(&w.b_sales, REQUEST_TRANSFER, json!({"i": {"subscriptionId": w.usage["id"]}})).await;
    let t = data["requestSubscriptionTransfer"]["transfer"].clone();
    assert_eq!(t["status"], "PENDING");
    assert_eq!(t["sourcePartner"]["id"], w.a_id);
    assert_eq!(t["targetPartner"]["id"], w.b_id);
    let expires: chrono::DateTime<chrono::Utc> = t["expiresAt"].as_str().unwrap().parse().unwrap();
    assert!((expires - app.clock.now() - Duration::days(30)).num_seconds().abs() < 60, "expires in 30 days");
    let body = app.gql_as(Some(&w.b), REQUEST_TRANSFER, json!({"i": {"subscriptionId": w.usage["id"]}})).await;
    assert_eq!(error_code(&body), Some("CONFLICT"), "one pending transfer per subscription");

    // The request is audited with both partners and the customer.
    let request = audits(app, "transfer.request").await;
    assert_eq!(request.len(), 1);
    assert_eq!(request[0].partner_id, Some(uuid_of(&json!(w.a_id))), "partner = source");
    assert_eq!(request[0].related_partner_id, Some(uuid_of(&json!(w.b_id))), "related partner = target");
    assert_eq!(request[0].customer_id, Some(uuid_of(&w.customer)));
    assert_eq!(events(app, "TRANSFER_REQUESTED").await.len(), 1);

    // The source sees it; its sales agent may not accept; the target may not accept its own.
    let data = app.data(&w.a_sales, "{ transfers { nodes { id status } } }", json!({})).await;
    assert_eq!(data["transfers"]["nodes"][0]["id"], t["id"]);
    let body = app.gql_as(Some(&w.a_sales), ACCEPT, json!({"i": {"id": t["id"]}})).await;
    assert_eq!(error_code(&body), Some("FORBIDDEN"));
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("admin_agent"));
    let body = app.gql_as(Some(&w.a_sales), REJECT, json!({"i": {"id": t["id"]}})).await;
    assert_eq!(error_code(&body), Some("FORBIDDEN"));
    let body = app.gql_as(Some(&w.b), ACCEPT, json!({"i": {"id": t["id"]}})).await;
    assert_eq!(error_code(&body), Some("FORBIDDEN"));
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("admin_agent"));
    let body = app.gql_as(Some(&w.a_admin), ACCEPT, json!({"i": {"id": t["id"], "expectedVersion": 9}})).await;
    assert_eq!(error_code(&body), Some("VERSION_CONFLICT"));

    let data = app.data(&w.a_admin, ACCEPT, json!({"i": {"id": t["id"], "expectedVersion": t["version"]}})).await;
    assert_eq!(data["acceptSubscriptionTransfer"]["transfer"]["status"], "COMPLETED");
    let data = app.data(&w.b, SUBSCRIPTION, json!({"id": w.usage["id"]})).await;
    assert_eq!(data["subscription"]["partner"]["id"], w.b_id, "B is partner of record");
    assert_eq!(data["subscription"]["status"], "ACTIVE");
    let stored = subscription::Entity::find_by_id(uuid_of(&w.usage["id"])).one(&app.db).await.unwrap().unwrap();
    let transfer = subscription_transfer::Entity::find_by_id(uuid_of(&t["id"])).one(&app.db).await.unwrap().unwrap();
    assert_eq!(stored.partner_id, Some(uuid_of(&json!(w.b_id))));
    assert_eq!(transfer.status, TransferStatus::Completed);
    assert!(transfer.responded_at.is_some());

    // One transaction, three records: the subscription's switch and the transfer's completion.
    let switched = audits(app, "subscription.transfer").await;
    assert_eq!(switched.len(), 1);
    assert_eq!(switched[0].target_id, stored.id);
    assert_eq!(
        (switched[0].partner_id, switched[0].related_partner_id),
        (Some(uuid_of(&json!(w.a_id))), Some(uuid_of(&json!(w.b_id))))
    );
    assert_eq!(switched[0].details["partner_id"]["after"], json!(uuid_of(&json!(w.b_id))));
    assert_eq!(audits(app, "transfer.accept").await.len(), 1);
    assert_eq!(events(app, "SUBSCRIPTION_UPDATED").await.len(), 1);
    assert_eq!(events(app, "TRANSFER_COMPLETED").await.len(), 1);

    // A can no longer change it (it no longer even sees it); B can.
    let data = app.data(&w.a_admin, SUBSCRIPTION, json!({"id": w.usage["id"]})).await;
    assert!(data["subscription"].is_null(), "the old partner no longer sees it");
    let version = stored.version;
    let body = app
        .gql_as(
            Some(&w.a_admin),
            UPDATE,
            json!({"i": {"id": w.usage["id"], "expectedVersion": version, "autoRenew": false}}),
        )
        .await;
    assert_eq!(error_code(&body), Some("NOT_FOUND"), "{body}");
    app.data(&w.b, UPDATE, json!({"i": {"id": w.usage["id"], "expectedVersion": version, "autoRenew": false}})).await;
    let body = app.gql_as(Some(&w.a_admin), ACCEPT, json!({"i": {"id": t["id"]}})).await;
    assert_eq!(error_code(&body), Some("INVALID_STATE"), "only PENDING transfers can be answered");
    // The customer sees the transfer of its subscription.
    let data = app.data(&w.owner, "{ transfers { nodes { status } } }", json!({})).await;
    assert_eq!(data["transfers"]["nodes"][0]["status"], "COMPLETED");
}

#[tokio::test]
async fn r8_withdraw_reject_and_thirty_day_expiry() {
    let w = switch_world().await;
    let app = &w.app;
    let request = || app.data(&w.b, REQUEST_TRANSFER, json!({"i": {"subscriptionId": w.usage["id"]}}));
    let t = request().await["requestSubscriptionTransfer"]["transfer"]["id"].clone();
    let body = app.gql_as(Some(&w.a_admin), WITHDRAW, json!({"i": {"id": t}})).await;
    assert_eq!(error_code(&body), Some("FORBIDDEN"), "only the target withdraws");
    let data = app.data(&w.b_sales, WITHDRAW, json!({"i": {"id": t}})).await;
    assert_eq!(data["withdrawSubscriptionTransfer"]["transfer"]["status"], "WITHDRAWN");
    assert_eq!(audits(app, "transfer.withdraw").await.len(), 1);
    assert_eq!(events(app, "TRANSFER_WITHDRAWN").await.len(), 1);
    let body = app.gql_as(Some(&w.b), WITHDRAW, json!({"i": {"id": t}})).await;
    assert_eq!(error_code(&body), Some("INVALID_STATE"));

    let t = request().await["requestSubscriptionTransfer"]["transfer"]["id"].clone();
    let data = app.data(&w.a_admin, REJECT, json!({"i": {"id": t}})).await;
    assert_eq!(data["rejectSubscriptionTransfer"]["transfer"]["status"], "REJECTED");
    assert_eq!(audits(app, "transfer.reject").await.len(), 1);
    assert_eq!(events(app, "TRANSFER_REJECTED").await.len(), 1);
    let data = app.data(&w.a_admin, SUBSCRIPTION, json!({"id": w.usage["id"]})).await;
    assert_eq!(data["subscription"]["partner"]["id"], w.a_id, "a rejected transfer moves nothing");

    let t = request().await["requestSubscriptionTransfer"]["transfer"]["id"].clone();
    app.clock.advance(Duration::days(29));
    let data = app.data(&w.b, "query($id: ID!) { transfer(id: $id) { status } }", json!({"id": t})).await;
    assert_eq!(data["transfer"]["status"], "PENDING", "still pending after 29 days");
    app.clock.advance(Duration::days(2));
    let data = app.data(&w.b, "query($id: ID!) { transfer(id: $id) { status } }", json!({"id": t})).await;
    assert_eq!(data["transfer"]["status"], "EXPIRED", "unanswered for 30 days");
    for (token, mutation) in [(&w.a_admin, ACCEPT), (&w.a_admin, REJECT), (&w.b, WITHDRAW)] {
        let body = app.gql_as(Some(token), mutation, json!({"i": {"id": t}})).await;
        assert_eq!(error_code(&body), Some("INVALID_STATE"));
    }
    let stale = uuid_of(&t);
    let row = subscription_transfer::Entity::find_by_id(stale).one(&app.db).await.unwrap().unwrap();
    assert_eq!(row.status, TransferStatus::Pending, "the runner has not passed yet");

    // A new request is allowed; the stale row is marked EXPIRED in the same transaction.
    let data = request().await;
    assert_eq!(
        data["requestSubscriptionTransfer"]["transfer"]["status"], "PENDING",
        "an expired request no longer blocks"
    );
    let row = subscription_transfer::Entity::find_by_id(stale).one(&app.db).await.unwrap().unwrap();
    assert_eq!((row.status, row.version), (TransferStatus::Expired, 2));
    let expired = audits(app, "transfer.expire").await;
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].target_id, stale);
    assert_eq!(events(app, "TRANSFER_EXPIRED").await.len(), 1);
}

#[tokio::test]
async fn r8_the_target_needs_its_own_reseller_relationship_and_strangers_see_nothing() {
    let w = switch_world().await;
    let app = &w.app;
    let (_, c_tid) = onboard(app, "Litware Partners", "litware-partners.example", "DIRECT_BILL", "PUBLIC").await;
    let stranger = app.token(c_tid, &["admin_agent"]);
    let body = app.gql_as(Some(&stranger), REQUEST_TRANSFER, json!({"i": {"subscriptionId": w.usage["id"]}})).await;
    assert_eq!(
        error_code(&body),
        Some("NOT_FOUND"),
        "a subscription of a customer it does not serve does not exist for it"
    );
    let nowhere = encode(NodeType::Subscription, Uuid::now_v7());
    let unknown = app.gql_as(Some(&stranger), REQUEST_TRANSFER, json!({"i": {"subscriptionId": nowhere}})).await;
    assert_eq!(error_code(&unknown), Some("NOT_FOUND"));
    assert_eq!(body["errors"][0]["message"], unknown["errors"][0]["message"], "existence does not leak");

    let t = app.data(&w.b, REQUEST_TRANSFER, json!({"i": {"subscriptionId": w.usage["id"]}})).await["requestSubscriptionTransfer"]["transfer"]["id"].clone();
    let data = app.data(&stranger, "{ transfers { totalCount } }", json!({})).await;
    assert_eq!(data["transfers"]["totalCount"], 0);
    let data = app.data(&stranger, "query($id: ID!) { transfer(id: $id) { id } }", json!({"id": t})).await;
    assert!(data["transfer"].is_null());
    for mutation in [ACCEPT, REJECT, WITHDRAW] {
        let body = app.gql_as(Some(&stranger), mutation, json!({"i": {"id": t}})).await;
        assert_eq!(error_code(&body), Some("NOT_FOUND"));
    }
    // Its own subscription is not a transfer.
    app.data(&w.b, WITHDRAW, json!({"i": {"id": t}})).await;
    let body = app.gql_as(Some(&w.a_admin), REQUEST_TRANSFER, json!({"i": {"subscriptionId": w.usage["id"]}})).await;
    assert_eq!(error_code(&body), Some("BAD_USER_INPUT"), "{body}");
}

#[tokio::test]
async fn r8_delegated_admin_alone_does_not_allow_taking_a_subscription_over() {
    let w = switch_world().await;
    let app = &w.app;
    let (_, d_tid) = onboard(app, "Wingtip", "wingtip.example", "DIRECT_BILL", "PUBLIC").await;
    let d = app.token(d_tid, &["admin_agent"]);
    let grant = json!({"customerDomain": "adatum.example", "kind": "DELEGATED_ADMIN", "roles": ["admin_agent"]});
    linked(app, &d, &w.owner, grant).await;
    let data = app.data(&d, SUBSCRIPTION, json!({"id": w.usage["id"]})).await;
    assert_eq!(data["subscription"]["partner"]["id"], w.a_id, "the delegated admin sees the subscription");
    let body = app.gql_as(Some(&d), REQUEST_TRANSFER, json!({"i": {"subscriptionId": w.usage["id"]}})).await;
    assert_eq!(error_code(&body), Some("RELATIONSHIP_REQUIRED"), "{body}");
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("reseller relationship"));

    // B loses its reseller relationship while its request is pending: the source cannot accept.
    let t = app.data(&w.b, REQUEST_TRANSFER, json!({"i": {"subscriptionId": w.usage["id"]}})).await["requestSubscriptionTransfer"]["transfer"]["id"].clone();
    app.data(&w.owner, TERMINATE, json!({"i": {"id": w.b_link}})).await;
    let body = app.gql_as(Some(&w.a_admin), ACCEPT, json!({"i": {"id": t}})).await;
    assert_eq!(error_code(&body), Some("RELATIONSHIP_REQUIRED"), "{body}");
    let data = app.data(&w.a_admin, SUBSCRIPTION, json!({"id": w.usage["id"]})).await;
    assert_eq!(data["subscription"]["partner"]["id"], w.a_id, "nothing moved");
    // Without any relationship B no longer sees the customer: its subscriptions do not exist for B.
    let body = app.gql_as(Some(&w.b), REQUEST_TRANSFER, json!({"i": {"subscriptionId": w.usage["id"]}})).await;
    assert_eq!(error_code(&body), Some("NOT_FOUND"), "{body}");
}

#[tokio::test]
async fn r8_only_active_csp_usage_based_subscriptions_transfer() {
    let w = switch_world().await;
    let app = &w.app;
    // B sees the customer's subscriptions through delegated admin (unseen, R1 answers NOT_FOUND).
    let grant = json!({"customerDomain": "adatum.example", "kind": "DELEGATED_ADMIN", "roles": ["helpdesk_agent"]});
    linked(app, &w.b, &w.owner, grant).await;
    // Another channel: no partner of record to change.
    let ea = json!({"customerId": w.customer, "channel": "ENTERPRISE_AGREEMENT", "externalReference": "EA-1", "offerId": "EA", "offerName": "Azure EA", "billingModel": "USAGE_BASED"});
    let ea = app.data(&w.owner, REGISTER, json!({"i": ea})).await["registerExternalSubscription"]["subscription"]["id"]
        .clone();
    let body = app.gql_as(Some(&w.b), REQUEST_TRANSFER, json!({"i": {"subscriptionId": ea}})).await;
    assert_eq!(error_code(&body), Some("BAD_USER_INPUT"), "{body}");
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("CSP"));

    // Suspended: not transferable, and a pending transfer cannot complete.
    let t = app.data(&w.b, REQUEST_TRANSFER, json!({"i": {"subscriptionId": w.usage["id"]}})).await["requestSubscriptionTransfer"]["transfer"]["id"].clone();
    let v = app
        .data(&w.a_admin, SUSPEND, json!({"i": {"id": w.usage["id"], "expectedVersion": w.usage["version"]}}))
        .await["suspendSubscription"]["subscription"]["version"]
        .clone();
    let body = app.gql_as(Some(&w.a_admin), ACCEPT, json!({"i": {"id": t}})).await;
    assert_eq!(error_code(&body), Some("INVALID_STATE"), "{body}");
    app.data(&w.b, WITHDRAW, json!({"i": {"id": t}})).await;
    let body = app.gql_as(Some(&w.b), REQUEST_TRANSFER, json!({"i": {"subscriptionId": w.usage["id"]}})).await;
    assert_eq!(error_code(&body), Some("INVALID_STATE"), "{body}");
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("ACTIVE"));
    app.data(&w.a_admin, REACTIVATE, json!({"i": {"id": w.usage["id"], "expectedVersion": v}})).await;
    let data = app.data(&w.b, REQUEST_TRANSFER, json!({"i": {"subscriptionId": w.usage["id"]}})).await;
    assert_eq!(data["requestSubscriptionTransfer"]["transfer"]["status"], "PENDING");
}

#[tokio::test]
async fn r8_an_indirect_sale_moves_without_its_reseller_and_r6_resellers_cannot_ask() {
    let app = TestApp::new().await;
    let (reseller_id, reseller_tid) =
        onboard(&app, "Tailspin", "tailspin.example", "INDIRECT_RESELLER", "PUBLIC").await;
    let (_, provider_tid) = onboard(&app, "Northwind", "northwind.example", "INDIRECT_PROVIDER", "PUBLIC").await;
    let (b_id, b_tid) = onboard(&app, "Fabrikam", "fabrikam.example", "INDIRECT_PROVIDER", "PUBLIC").await;
    let reseller = app.token(reseller_tid, &["admin_agent"]);
    let provider = app.token(provider_tid, &["admin_agent"]);
    let b = app.token(b_tid, &["sales_agent"]);
    let invite =
        app.data(&provider, INVITE, json!({"i": {"resellerId": reseller_id}})).await["inviteReseller"]["relationship"]
            ["id"]
            .clone();
    app.data(&reseller, ACCEPT_RELATIONSHIP, json!({"i": {"id": invite}})).await;
    let input =
        json!({"companyName": "Litware", "domain": "litware.example", "country": "DE", "resellerId": reseller_id});
    let data = app.data(&provider, CREATE_CUSTOMER, json!({"input": input})).await;
    let customer_id = data["createCustomer"]["customer"]["id"].clone();
    let owner =
        app.token(data["createCustomer"]["customer"]["tenantId"].as_str().unwrap().parse().unwrap(), &["global_admin"]);
    let usage = app
        .data(&provider, SELL, json!({"i": {"customerId": customer_id, "offerId": "AZ", "offerName": "Azure plan", "billingModel": "USAGE_BASED", "resellerId": reseller_id}}))
        .await["createSubscription"]["subscription"]
        .clone();
    assert_eq!(usage["reseller"]["id"], reseller_id);

    // R6: the reseller sees the subscription but does not transact.
    let body = app.gql_as(Some(&reseller), REQUEST_TRANSFER, json!({"i": {"subscriptionId": usage["id"]}})).await;
    assert_eq!(error_code(&body), Some("INDIRECT_RESELLER_CANNOT_TRANSACT"), "{body}");

    // B (an indirect provider selling directly) takes it over; the provider's admin accepts.
    linked(&app, &b, &owner, json!({"customerDomain": "litware.example", "kind": "RESELLER"})).await;
    let t = app.data(&b, REQUEST_TRANSFER, json!({"i": {"subscriptionId": usage["id"]}})).await["requestSubscriptionTransfer"]["transfer"]["id"].clone();
    app.data(&provider, ACCEPT, json!({"i": {"id": t}})).await;
    let data = app.data(&b, SUBSCRIPTION, json!({"id": usage["id"]})).await;
    assert_eq!(data["subscription"]["partner"]["id"], b_id);
    assert!(data["subscription"]["reseller"].is_null(), "the old reseller of record does not follow");
    for token in [&provider, &reseller] {
        let data = app.data(token, SUBSCRIPTION, json!({"id": usage["id"]})).await;
        assert!(data["subscription"].is_null(), "the old channel no longer sees it");
    }
}

#[tokio::test]
async fn r4_r17_clouds_and_suspended_partners_on_transfers() {
    let w = switch_world().await;
    let app = &w.app;
    let platform = app.token(app.platform(), &["platform_admin"]);

    // B suspended: it cannot ask; A suspended: it cannot answer.
    app.data(&platform, SET_STATUS, json!({"input": {"partnerId": w.b_id, "status": "SUSPENDED"}})).await;
    let body = app.gql_as(Some(&w.b), REQUEST_TRANSFER, json!({"i": {"subscriptionId": w.usage["id"]}})).await;
    assert_eq!(error_code(&body), Some("PARTNER_SUSPENDED"));
    app.data(&platform, SET_STATUS, json!({"input": {"partnerId": w.b_id, "status": "ACTIVE"}})).await;
    let t = app.data(&w.b, REQUEST_TRANSFER, json!({"i": {"subscriptionId": w.usage["id"]}})).await["requestSubscriptionTransfer"]["transfer"]["id"].clone();
    app.data(&platform, SET_STATUS, json!({"input": {"partnerId": w.a_id, "status": "SUSPENDED"}})).await;
    for mutation in [ACCEPT, REJECT] {
        let body = app.gql_as(Some(&w.a_admin), mutation, json!({"i": {"id": t}})).await;
        assert_eq!(error_code(&body), Some("PARTNER_SUSPENDED"));
    }
    app.data(&platform, SET_STATUS, json!({"input": {"partnerId": w.b_id, "status": "SUSPENDED"}})).await;
    let body = app.gql_as(Some(&w.b), WITHDRAW, json!({"i": {"id": t}})).await;
    assert_eq!(error_code(&body), Some("PARTNER_SUSPENDED"));

    // R4: a US Government partner holding (seeded, against R4) a reseller link with a public customer.
    let seed = app.seed();
    let gov_tid = Uuid::new_v4();
    let gov = seed.partner(gov_tid, "Gov", "gov.example", PartnerType::DirectBill, Cloud::UsGovernment).await.unwrap();
    let customer_model = customer::Entity::find_by_id(uuid_of(&w.customer)).one(&app.db).await.unwrap().unwrap();
    seed.reseller_link(gov.id, &customer_model).await.unwrap();
    let gov_token = app.token(gov_tid, &["admin_agent"]);
    let body = app.gql_as(Some(&gov_token), REQUEST_TRANSFER, json!({"i": {"subscriptionId": w.usage["id"]}})).await;
    assert_eq!(error_code(&body), Some("CLOUD_MISMATCH"), "{body}");
    // Customers and the platform do not answer transfers.
    let platform_body = app.gql_as(Some(&platform), ACCEPT, json!({"i": {"id": t}})).await;
    assert_eq!(error_code(&platform_body), Some("FORBIDDEN"));
    let owner_body =
        app.gql_as(Some(&w.owner), REQUEST_TRANSFER, json!({"i": {"subscriptionId": w.usage["id"]}})).await;
    assert_eq!(error_code(&owner_body), Some("FORBIDDEN"));
}

#[tokio::test]
async fn r13_stale_versions_change_no_transfer() {
    let w = switch_world().await;
    let app = &w.app;
    let t = app.data(&w.b, REQUEST_TRANSFER, json!({"i": {"subscriptionId": w.usage["id"]}})).await["requestSubscriptionTransfer"]["transfer"].clone();
    let before = audit_total(app).await;
    for (token, mutation) in [(&w.a_admin, ACCEPT), (&w.a_admin, REJECT), (&w.b, WITHDRAW)] {
        let body = app.gql_as(Some(token), mutation, json!({"i": {"id": t["id"], "expectedVersion": 0}})).await;
        assert_eq!(error_code(&body), Some("VERSION_CONFLICT"), "{body}");
    }
    assert_eq!(audit_total(app).await, before);
    let data = app.data(&w.b, WITHDRAW, json!({"i": {"id": t["id"], "expectedVersion": t["version"]}})).await;
    assert_eq!(data["withdrawSubscriptionTransfer"]["transfer"]["version"], t["version"].as_i64().unwrap() + 1);
}

#[tokio::test]
async fn r14_transfer_requests_are_idempotent() {
    let w = switch_world().await;
    let app = &w.app;
    let input = json!({"subscriptionId": w.usage["id"], "idempotencyKey": "move-azure"});
    let first = app.data(&w.b, REQUEST_TRANSFER, json!({"i": input})).await;
    let written = (audit_total(app).await, outbox_total(app).await);
    let again = app.data(&w.b, REQUEST_TRANSFER, json!({"i": input})).await;
    assert_eq!(
        first["requestSubscriptionTransfer"]["transfer"]["id"],
        again["requestSubscriptionTransfer"]["transfer"]["id"]
    );
    assert_eq!((audit_total(app).await, outbox_total(app).await), written, "a replay writes nothing");
    assert_eq!(subscription_transfer::Entity::find().count(&app.db).await.unwrap(), 1);
    let other = json!({"subscriptionId": w.license["id"], "idempotencyKey": "move-azure"});
    let body = app.gql_as(Some(&w.b), REQUEST_TRANSFER, json!({"i": other})).await;
    assert_eq!(error_code(&body), Some("IDEMPOTENCY_KEY_REUSED"));
    // Once answered, the replay shows the transfer as it now stands.
    let id = first["requestSubscriptionTransfer"]["transfer"]["id"].clone();
    app.data(&w.a_admin, REJECT, json!({"i": {"id": id}})).await;
    let again = app.data(&w.b, REQUEST_TRANSFER, json!({"i": input})).await;
    assert_eq!(again["requestSubscriptionTransfer"]["transfer"]["id"], id);
    assert_eq!(again["requestSubscriptionTransfer"]["transfer"]["status"], "REJECTED");
}

#[tokio::test]
async fn r15_failed_transfer_mutations_write_nothing() {
    let w = switch_world().await;
    let app = &w.app;
    let t = app.data(&w.b, REQUEST_TRANSFER, json!({"i": {"subscriptionId": w.usage["id"]}})).await["requestSubscriptionTransfer"]["transfer"]["id"].clone();
    let before = (audit_total(app).await, outbox_total(app).await);
    let refused = [
        (&w.b, REQUEST_TRANSFER, json!({"subscriptionId": w.license["id"]}), "NOT_FOUND"),
        (&w.b, REQUEST_TRANSFER, json!({"subscriptionId": w.usage["id"]}), "CONFLICT"),
        (&w.a_admin, REQUEST_TRANSFER, json!({"subscriptionId": w.usage["id"]}), "BAD_USER_INPUT"),
        (&w.a_sales, ACCEPT, json!({"id": t}), "FORBIDDEN"),
        (&w.b, ACCEPT, json!({"id": t}), "FORBIDDEN"),
        (&w.a_admin, WITHDRAW, json!({"id": t}), "FORBIDDEN"),
        (&w.a_admin, ACCEPT, json!({"id": t, "expectedVersion": 7}), "VERSION_CONFLICT"),
    ];
    for (token, mutation, input, code) in refused {
        let body = app.gql_as(Some(token), mutation, json!({"i": input})).await;
        assert_eq!(error_code(&body), Some(code), "{body}");
    }
    assert_eq!((audit_total(app).await, outbox_total(app).await), before, "refusals write no audit or outbox event");
    let row = subscription_transfer::Entity::find_by_id(uuid_of(&t)).one(&app.db).await.unwrap().unwrap();
    assert_eq!((row.status, row.version), (TransferStatus::Pending, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn r8_concurrent_requests_leave_exactly_one_pending_transfer() {
    let w = switch_world().await;
    let app = &w.app;
    let input = json!({"i": {"subscriptionId": w.usage["id"]}});
    let calls = (0..12).map(|_| (w.b.clone(), REQUEST_TRANSFER.to_owned(), input.clone())).collect();
    let answers = app.concurrently(calls).await;
    let ok = answers.iter().filter(|b| b.get("errors").is_none()).count();
    assert_eq!(ok, 1, "{answers:?}");
    for body in answers.iter().filter(|b| b.get("errors").is_some()) {
        assert_eq!(error_code(body), Some("CONFLICT"), "{body}");
    }
    assert_eq!(subscription_transfer::Entity::find().count(&app.db).await.unwrap(), 1);
    assert_eq!(audits(app, "transfer.request").await.len(), 1);

    // The database itself holds at most one PENDING transfer per subscription.
    let usage = subscription::Entity::find_by_id(uuid_of(&w.usage["id"])).one(&app.db).await.unwrap().unwrap();
    let b = uuid_of(&json!(w.b_id));
    let at = app.clock.now() + Duration::days(30);
    assert!(app.seed().transfer(&usage, b, TransferStatus::Pending, at).await.is_err(), "ux_transfer_one_pending");
    app.seed().transfer(&usage, b, TransferStatus::Rejected, at).await.unwrap();
}

#[tokio::test]
async fn r1_transfer_requests_answer_not_found_for_unseen_subscriptions_they_cannot_take_over() {
    let w = switch_world().await;
    let app = &w.app;
    let ea = json!({"customerId": w.customer, "channel": "ENTERPRISE_AGREEMENT", "externalReference": "EA-1", "offerId": "EA", "offerName": "Azure EA", "billingModel": "USAGE_BASED"});
    let ea = app.data(&w.owner, REGISTER, json!({"i": ea})).await["registerExternalSubscription"]["subscription"]["id"]
        .clone();
    let suspended = app
        .data(&w.a_sales, SELL, json!({"i": {"customerId": w.customer, "offerId": "AZ2", "offerName": "Azure plan 2", "billingModel": "USAGE_BASED"}}))
        .await["createSubscription"]["subscription"]
        .clone();
    app.data(&w.a_admin, SUSPEND, json!({"i": {"id": suspended["id"], "expectedVersion": suspended["version"]}})).await;
    let nowhere = encode(NodeType::Subscription, Uuid::now_v7());
    let unknown = app.gql_as(Some(&w.b), REQUEST_TRANSFER, json!({"i": {"subscriptionId": nowhere}})).await;
    assert_eq!(error_code(&unknown), Some("NOT_FOUND"));
    let before = (audit_total(app).await, outbox_total(app).await);
    // B (reseller link only) sees none of them: license-based, another channel, suspended.
    for (case, id) in
        [("license-based", &w.license["id"]), ("enterprise agreement", &ea), ("suspended", &suspended["id"])]
    {
        let body = app.gql_as(Some(&w.b), REQUEST_TRANSFER, json!({"i": {"subscriptionId": id}})).await;
        assert_eq!(error_code(&body), Some("NOT_FOUND"), "{case}: {body}");
        assert_eq!(body["errors"][0]["message"], unknown["errors"][0]["message"], "{case}: existence leaks");
    }
    assert_eq!((audit_total(app).await, outbox_total(app).await), before, "refusals write nothing");
    // What it could take over it may name unseen: that is what a transfer request is for.
    let data = app.data(&w.b, REQUEST_TRANSFER, json!({"i": {"subscriptionId": w.usage["id"]}})).await;
    assert_eq!(data["requestSubscriptionTransfer"]["transfer"]["status"], "PENDING");
}
