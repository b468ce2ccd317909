//! Subscription transfers: the partner-switch story (R7, R8), withdraw, reject and expiry, R1 on
//! transfers, R13 and R14.

use chrono::Duration;
use serde_json::{Value, json};

use crate::common::{TestApp, error_code};
use crate::write_customers::{CREATE_CUSTOMER, onboard};
use crate::write_relationships::linked;
use crate::write_subscriptions::SELL;

const REQUEST_TRANSFER: &str = "mutation($i: RequestTransferInput!) { requestSubscriptionTransfer(input: $i) {
    transfer { id status version expiresAt sourcePartner { id } targetPartner { id } } } }";
const ACCEPT: &str =
    "mutation($i: TransferActionInput!) { acceptSubscriptionTransfer(input: $i) { transfer { id status } } }";
const REJECT: &str =
    "mutation($i: TransferActionInput!) { rejectSubscriptionTransfer(input: $i) { transfer { id status } } }";
const WITHDRAW: &str =
    "mutation($i: TransferActionInput!) { withdrawSubscriptionTransfer(input: $i) { transfer { id status } } }";
const UPDATE: &str =
    "mutation($i: UpdateSubscriptionInput!) { updateSubscription(input: $i) { subscription { version } } }";

struct Switch {
    app: TestApp,
    a_admin: String,
    a_sales: String,
    b: String,
    b_id: String,
    usage: Value,
    license: Value,
}

/// A sells a usage-based and a license-based subscription to its customer; B has its own reseller
/// relationship with the customer.
async fn switch_world() -> Switch {
    let app = TestApp::new().await;
    let (_, a_tid) = onboard(&app, "Contoso", "contoso.example", "DIRECT_BILL", "PUBLIC").await;
    let (b_id, b_tid) = onboard(&app, "Fabrikam", "fabrikam.example", "DIRECT_BILL", "PUBLIC").await;
    let a_admin = app.token(a_tid, &["admin_agent"]);
    let a_sales = app.token(a_tid, &["sales_agent"]);
    let b = app.token(b_tid, &["admin_agent"]);
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
    linked(&app, &b, &owner, json!({"customerDomain": "adatum.example", "kind": "RESELLER"})).await;
    Switch { app, a_admin, a_sales, b, b_id, usage, license }
}

#[tokio::test]
async fn r7_license_based_subscription_cannot_switch_partner() {
    let w = switch_world().await;
    let body = w.app.gql_as(Some(&w.b), REQUEST_TRANSFER, json!({"i": {"subscriptionId": w.license["id"]}})).await;
    assert_eq!(error_code(&body), Some("LICENSE_BASED_SWITCH_NOT_ALLOWED"), "{body}");
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("cancellation window"));
}

#[tokio::test]
async fn r8_partner_switch_story_usage_based_moves_when_the_source_admin_accepts() {
    let w = switch_world().await;
    let app = &w.app;
    let data = app.data(&w.b, REQUEST_TRANSFER, json!({"i": {"subscriptionId": w.usage["id"]}})).await;
    let t = data["requestSubscriptionTransfer"]["transfer"].clone();
    assert_eq!(t["status"], "PENDING");
    assert_eq!(t["targetPartner"]["id"], w.b_id);
    let body = app.gql_as(Some(&w.b), REQUEST_TRANSFER, json!({"i": {"subscriptionId": w.usage["id"]}})).await;
    assert_eq!(error_code(&body), Some("CONFLICT"), "one pending transfer per subscription");

    // The source sees it; its sales agent may not accept; the target may not accept its own.
    let data = app.data(&w.a_sales, "{ transfers { nodes { id status } } }", json!({})).await;
    assert_eq!(data["transfers"]["nodes"][0]["id"], t["id"]);
    let body = app.gql_as(Some(&w.a_sales), ACCEPT, json!({"i": {"id": t["id"]}})).await;
    assert_eq!(error_code(&body), Some("FORBIDDEN"));
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("admin_agent"));
    let body = app.gql_as(Some(&w.b), ACCEPT, json!({"i": {"id": t["id"]}})).await;
    assert_eq!(error_code(&body), Some("FORBIDDEN"));
    let body = app.gql_as(Some(&w.a_admin), ACCEPT, json!({"i": {"id": t["id"], "expectedVersion": 9}})).await;
    assert_eq!(error_code(&body), Some("VERSION_CONFLICT"));

    let data = app.data(&w.a_admin, ACCEPT, json!({"i": {"id": t["id"]}})).await;
    assert_eq!(data["acceptSubscriptionTransfer"]["transfer"]["status"], "COMPLETED");
    let data = app
        .data(
            &w.b,
            "query($id: ID!) { subscription(id: $id) { version partner { id } } }",
            json!({"id": w.usage["id"]}),
        )
        .await;
    assert_eq!(data["subscription"]["partner"]["id"], w.b_id, "B is partner of record");
    // A can no longer change it (it no longer even sees it).
    let body = app
        .gql_as(
            Some(&w.a_admin),
            UPDATE,
            json!({"i": {"id": w.usage["id"], "expectedVersion": data["subscription"]["version"], "autoRenew": false}}),
        )
        .await;
    assert_eq!(error_code(&body), Some("NOT_FOUND"), "{body}");
    let body = app.gql_as(Some(&w.a_admin), ACCEPT, json!({"i": {"id": t["id"]}})).await;
    assert_eq!(error_code(&body), Some("INVALID_STATE"));
}

#[tokio::test]
async fn r8_withdraw_reject_and_thirty_day_expiry() {
    let w = switch_world().await;
    let app = &w.app;
    let request = || app.data(&w.b, REQUEST_TRANSFER, json!({"i": {"subscriptionId": w.usage["id"]}}));
    let t = request().await["requestSubscriptionTransfer"]["transfer"]["id"].clone();
    let body = app.gql_as(Some(&w.a_admin), WITHDRAW, json!({"i": {"id": t}})).await;
    assert_eq!(error_code(&body), Some("FORBIDDEN"), "only the target withdraws");
    let data = app.data(&w.b, WITHDRAW, json!({"i": {"id": t}})).await;
    assert_eq!(data["withdrawSubscriptionTransfer"]["transfer"]["status"], "WITHDRAWN");

    let t = request().await["requestSubscriptionTransfer"]["transfer"]["id"].clone();
    let data = app.data(&w.a_admin, REJECT, json!({"i": {"id": t}})).await;
    assert_eq!(data["rejectSubscriptionTransfer"]["transfer"]["status"], "REJECTED");

    let t = request().await["requestSubscriptionTransfer"]["transfer"]["id"].clone();
    app.clock.advance(Duration::days(31));
    let data = app.data(&w.b, "query($id: ID!) { transfer(id: $id) { status } }", json!({"id": t})).await;
    assert_eq!(data["transfer"]["status"], "EXPIRED", "unanswered for 30 days");
    let body = app.gql_as(Some(&w.a_admin), ACCEPT, json!({"i": {"id": t}})).await;
    assert_eq!(error_code(&body), Some("INVALID_STATE"));
    let data = request().await;
    assert_eq!(
        data["requestSubscriptionTransfer"]["transfer"]["status"], "PENDING",
        "an expired request no longer blocks"
    );
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
    let t = app.data(&w.b, REQUEST_TRANSFER, json!({"i": {"subscriptionId": w.usage["id"]}})).await["requestSubscriptionTransfer"]["transfer"]["id"].clone();
    let data = app.data(&stranger, "{ transfers { totalCount } }", json!({})).await;
    assert_eq!(data["transfers"]["totalCount"], 0);
    for mutation in [ACCEPT, REJECT, WITHDRAW] {
        let body = app.gql_as(Some(&stranger), mutation, json!({"i": {"id": t}})).await;
        assert_eq!(error_code(&body), Some("NOT_FOUND"));
    }
    // Its own subscription is not a transfer.
    let body = app.gql_as(Some(&w.a_admin), REQUEST_TRANSFER, json!({"i": {"subscriptionId": w.usage["id"]}})).await;
    assert!(matches!(error_code(&body), Some("BAD_USER_INPUT") | Some("RELATIONSHIP_REQUIRED")), "{body}");
}

#[tokio::test]
async fn r14_transfer_requests_are_idempotent() {
    let w = switch_world().await;
    let app = &w.app;
    let input = json!({"subscriptionId": w.usage["id"], "idempotencyKey": "move-azure"});
    let first = app.data(&w.b, REQUEST_TRANSFER, json!({"i": input})).await;
    let again = app.data(&w.b, REQUEST_TRANSFER, json!({"i": input})).await;
    assert_eq!(
        first["requestSubscriptionTransfer"]["transfer"]["id"],
        again["requestSubscriptionTransfer"]["transfer"]["id"]
    );
    let other = json!({"subscriptionId": w.license["id"], "idempotencyKey": "move-azure"});
    let body = app.gql_as(Some(&w.b), REQUEST_TRANSFER, json!({"i": other})).await;
    assert_eq!(error_code(&body), Some("IDEMPOTENCY_KEY_REUSED"));
}
