//! Partners and customers: onboarding, suspension, customer creation, and the rules R2, R3, R4, R6,
//! R14, R15, R17 on them.

use entity::enums::{PartnerStatus, RelationshipKind, RelationshipStatus};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::{TestApp, error_code};

pub const ONBOARD: &str = "mutation($input: OnboardPartnerInput!) { onboardPartner(input: $input) { partner { id tenantId name domain partnerType cloud status version } } }";
pub const CREATE_CUSTOMER: &str = "mutation($input: CreateCustomerInput!) { createCustomer(input: $input) {
    customer { id tenantId companyName domain country cloud } relationship { id kind status partner { id } indirectProvider { id } } } }";

/// Onboards a partner through the API; returns (global id, tenant id).
pub async fn onboard(app: &TestApp, name: &str, domain: &str, partner_type: &str, cloud: &str) -> (String, Uuid) {
    let platform = app.token(app.platform(), &["platform_admin"]);
    let input = json!({"name": name, "domain": domain, "partnerType": partner_type, "partnerNetworkId": format!("PN-{domain}"), "cloud": cloud});
    let data = app.data(&platform, ONBOARD, json!({"input": input})).await;
    let partner = &data["onboardPartner"]["partner"];
    (partner["id"].as_str().unwrap().to_owned(), partner["tenantId"].as_str().unwrap().parse().unwrap())
}

fn customer_input(name: &str, domain: &str) -> Value {
    json!({"companyName": name, "domain": domain, "country": "US"})
}

async fn audit_count(app: &TestApp) -> u64 {
    let platform = app.token(app.platform(), &["platform_admin"]);
    app.data(&platform, "{ auditEvents { totalCount } }", json!({})).await["auditEvents"]["totalCount"]
        .as_u64()
        .unwrap()
}

#[tokio::test]
async fn platform_onboards_partners_and_creates_partnerless_customers() {
    let app = TestApp::new().await;
    let (pid, tid) = onboard(&app, "Contoso", "Contoso.example", "DIRECT_BILL", "PUBLIC").await;
    let partner = app.token(tid, &["admin_agent"]);
    let data = app.data(&partner, "{ viewer { partner { id domain status version } } }", json!({})).await;
    assert_eq!(data["viewer"]["partner"]["id"], pid);
    assert_eq!(data["viewer"]["partner"]["domain"], "contoso.example", "domains are lower-cased");

    let platform = app.token(app.platform(), &["platform_admin"]);
    let data = app.data(&platform, CREATE_CUSTOMER, json!({"input": customer_input("Adatum", "adatum.example")})).await;
    assert_eq!(data["createCustomer"]["relationship"], Value::Null, "the platform's customers have no partner");
    assert_eq!(data["createCustomer"]["customer"]["cloud"], "PUBLIC");
    let events = app.data(&platform, "{ auditEvents { nodes { action actorSubject requestId } } }", json!({})).await;
    let actions: Vec<&str> =
        events["auditEvents"]["nodes"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["customer.create", "partner.onboard"]);
}

#[tokio::test]
async fn a_partner_creating_a_customer_gets_an_active_reseller_relationship() {
    let app = TestApp::new().await;
    let (pid, tid) = onboard(&app, "Contoso", "contoso.example", "DIRECT_BILL", "PUBLIC").await;
    let token = app.token(tid, &["sales_agent"]);
    let data = app.data(&token, CREATE_CUSTOMER, json!({"input": customer_input("Adatum", "adatum.example")})).await;
    let rel = &data["createCustomer"]["relationship"];
    assert_eq!(rel["kind"], "RESELLER");
    assert_eq!(rel["status"], "ACTIVE");
    assert_eq!(rel["partner"]["id"], pid);
    let data = app.data(&token, "{ customers { nodes { companyName } } }", json!({})).await;
    assert_eq!(data["customers"]["nodes"][0]["companyName"], "Adatum");
}

#[tokio::test]
async fn r2_domains_tenant_ids_and_network_ids_are_unique() {
    let app = TestApp::new().await;
    let platform = app.token(app.platform(), &["platform_admin"]);
    let (_, tid) = onboard(&app, "Contoso", "contoso.example", "DIRECT_BILL", "PUBLIC").await;
    app.data(&platform, CREATE_CUSTOMER, json!({"input": customer_input("Adatum", "adatum.example")})).await;

    let before = audit_count(&app).await;
    let cases = [
        (
            ONBOARD,
            json!({"name": "X", "domain": "ADATUM.example", "partnerType": "DIRECT_BILL", "partnerNetworkId": "PN-x"}),
            "DOMAIN_TAKEN",
        ),
        (
            ONBOARD,
            json!({"name": "X", "domain": "x.example", "partnerType": "DIRECT_BILL", "partnerNetworkId": "PN-contoso.example"}),
            "CONFLICT",
        ),
        (
            ONBOARD,
            json!({"tenantId": tid, "name": "X", "domain": "x.example", "partnerType": "DIRECT_BILL", "partnerNetworkId": "PN-x"}),
            "CONFLICT",
        ),
        (CREATE_CUSTOMER, customer_input("Adatum 2", "adatum.example"), "DOMAIN_TAKEN"),
    ];
    for (mutation, input, code) in cases {
        let body = app.gql_as(Some(&platform), mutation, json!({"input": input})).await;
        assert_eq!(error_code(&body), Some(code), "{input}: {body}");
    }
    assert_eq!(audit_count(&app).await, before, "failed mutations write no audit event");
}

#[tokio::test]
async fn r3_partners_cannot_become_customers() {
    let app = TestApp::new().await;
    let (_, tid) = onboard(&app, "Contoso", "contoso.example", "DIRECT_BILL", "PUBLIC").await;
    let (_, other) = onboard(&app, "Fabrikam", "fabrikam.example", "DIRECT_BILL", "PUBLIC").await;
    let token = app.token(tid, &["admin_agent"]);
    let body =
        app.gql_as(Some(&token), CREATE_CUSTOMER, json!({"input": customer_input("F", "fabrikam.example")})).await;
    assert_eq!(error_code(&body), Some("CANNOT_RESELL_TO_PARTNER"), "{body}");
    let mut input = customer_input("F", "f2.example");
    input["tenantId"] = json!(other);
    let body = app.gql_as(Some(&token), CREATE_CUSTOMER, json!({"input": input})).await;
    assert_eq!(error_code(&body), Some("CANNOT_RESELL_TO_PARTNER"), "{body}");
}

#[tokio::test]
async fn r4_customers_live_in_their_partner_cloud() {
    let app = TestApp::new().await;
    let (_, gov) = onboard(&app, "Woodgrove", "woodgrove.example", "DIRECT_BILL", "US_GOVERNMENT").await;
    let token = app.token(gov, &["admin_agent"]);
    let mut input = customer_input("Springfield", "springfield.example");
    input["cloud"] = json!("PUBLIC");
    let body = app.gql_as(Some(&token), CREATE_CUSTOMER, json!({"input": input})).await;
    assert_eq!(error_code(&body), Some("CLOUD_MISMATCH"), "{body}");
    let data =
        app.data(&token, CREATE_CUSTOMER, json!({"input": customer_input("Springfield", "springfield.example")})).await;
    assert_eq!(data["createCustomer"]["customer"]["cloud"], "US_GOVERNMENT", "the partner's cloud by default");
}

#[tokio::test]
async fn r6_indirect_resellers_do_not_create_customers_and_providers_create_them_for_resellers() {
    let app = TestApp::new().await;
    let (reseller_id, reseller_tid) =
        onboard(&app, "Tailspin", "tailspin.example", "INDIRECT_RESELLER", "PUBLIC").await;
    let (provider_id, provider_tid) =
        onboard(&app, "Northwind", "northwind.example", "INDIRECT_PROVIDER", "PUBLIC").await;
    let reseller = app.token(reseller_tid, &["admin_agent"]);
    let body =
        app.gql_as(Some(&reseller), CREATE_CUSTOMER, json!({"input": customer_input("L", "litware.example")})).await;
    assert_eq!(error_code(&body), Some("INDIRECT_RESELLER_CANNOT_TRANSACT"));

    // Without an ACTIVE indirect-reseller relationship the provider cannot create for the reseller.
    let provider = app.token(provider_tid, &["admin_agent"]);
    let mut input = customer_input("Litware", "litware.example");
    input["resellerId"] = json!(reseller_id);
    let body = app.gql_as(Some(&provider), CREATE_CUSTOMER, json!({"input": input.clone()})).await;
    assert!(matches!(error_code(&body), Some("RELATIONSHIP_REQUIRED") | Some("NOT_FOUND")), "{body}");

    let ids = |id: &str| partnerhub::graphql::ids::decode_any(id).unwrap().1;
    app.seed()
        .relationship(
            RelationshipKind::IndirectReseller,
            RelationshipStatus::Active,
            ids(&reseller_id),
            None,
            Some(ids(&provider_id)),
            "",
            None,
        )
        .await
        .unwrap();
    let data = app.data(&provider, CREATE_CUSTOMER, json!({"input": input})).await;
    let rel = &data["createCustomer"]["relationship"];
    assert_eq!(rel["partner"]["id"], reseller_id, "the reseller is the relationship's partner");
    assert_eq!(rel["indirectProvider"]["id"], provider_id);
    for token in [&provider, &reseller] {
        let data = app.data(token, "{ customers { nodes { companyName } } }", json!({})).await;
        assert_eq!(data["customers"]["nodes"][0]["companyName"], "Litware");
    }
}

#[tokio::test]
async fn r17_suspended_partners_can_read_but_not_mutate() {
    let app = TestApp::new().await;
    let (pid, tid) = onboard(&app, "Contoso", "contoso.example", "DIRECT_BILL", "PUBLIC").await;
    let platform = app.token(app.platform(), &["platform_admin"]);
    let set =
        "mutation($input: SetPartnerStatusInput!) { setPartnerStatus(input: $input) { partner { status version } } }";
    let data = app.data(&platform, set, json!({"input": {"partnerId": pid, "status": "SUSPENDED"}})).await;
    assert_eq!(data["setPartnerStatus"]["partner"]["status"], "SUSPENDED");
    let token = app.token(tid, &["admin_agent"]);
    let body = app.gql_as(Some(&token), CREATE_CUSTOMER, json!({"input": customer_input("A", "adatum.example")})).await;
    assert_eq!(error_code(&body), Some("PARTNER_SUSPENDED"));
    app.data(&token, "{ viewer { partner { status } } customers { totalCount } }", json!({})).await;
    app.data(&platform, set, json!({"input": {"partnerId": pid, "status": "ACTIVE"}})).await;
    app.data(&token, CREATE_CUSTOMER, json!({"input": customer_input("A", "adatum.example")})).await;
}

/// R17 does not wait for the tenant cache: the partner's row is cached by its first request, yet
/// its next mutation after a suspension is refused at once — after `setPartnerStatus` on this
/// instance, and after a suspension this instance never saw (another instance's, written straight
/// to the database here), which leaves the cached row saying ACTIVE.
#[tokio::test]
async fn r17_a_suspension_stops_writes_at_once_although_the_tenant_is_cached() {
    let app = TestApp::new().await;
    let (pid, tid) = onboard(&app, "Contoso", "contoso.example", "DIRECT_BILL", "PUBLIC").await;
    let platform = app.token(app.platform(), &["platform_admin"]);
    let token = app.token(tid, &["admin_agent"]);
    let data = app.data(&token, "{ viewer { partner { status } } }", json!({})).await;
    assert_eq!(data["viewer"]["partner"]["status"], "ACTIVE");
    assert!(app.state.tenants.get(tid).is_some(), "the partner's tenant is cached");

    let set = "mutation($input: SetPartnerStatusInput!) { setPartnerStatus(input: $input) { partner { status } } }";
    app.data(&platform, set, json!({"input": {"partnerId": pid, "status": "SUSPENDED"}})).await;
    let body = app.gql_as(Some(&token), CREATE_CUSTOMER, json!({"input": customer_input("A", "adatum.example")})).await;
    assert_eq!(error_code(&body), Some("PARTNER_SUSPENDED"), "{body}");
    let data = app.data(&token, "{ viewer { partner { status } } }", json!({})).await;
    assert_eq!(data["viewer"]["partner"]["status"], "SUSPENDED", "this instance dropped its entry");
    app.data(&platform, set, json!({"input": {"partnerId": pid, "status": "ACTIVE"}})).await;
    app.data(&token, CREATE_CUSTOMER, json!({"input": customer_input("A", "adatum.example")})).await;

    // Suspended behind this instance's back: the cache still says ACTIVE, the write is refused.
    let data = app.data(&token, "{ viewer { partner { status } } }", json!({})).await;
    assert_eq!(data["viewer"]["partner"]["status"], "ACTIVE");
    entity::partner::Entity::update_many()
        .col_expr(entity::partner::Column::Status, sea_orm::sea_query::Expr::value(PartnerStatus::Suspended))
        .filter(entity::partner::Column::TenantId.eq(tid))
        .exec(&app.db)
        .await
        .unwrap();
    let cached = app.state.tenants.get(tid);
    assert!(
        matches!(&cached, Some(partnerhub::auth::Tenant::Partner(p)) if p.status == PartnerStatus::Active),
        "the cached row is stale: {cached:?}"
    );
    let before = audit_count(&app).await;
    let body = app.gql_as(Some(&token), CREATE_CUSTOMER, json!({"input": customer_input("B", "bdatum.example")})).await;
    assert_eq!(error_code(&body), Some("PARTNER_SUSPENDED"), "{body}");
    assert_eq!(audit_count(&app).await, before, "nothing was written");
    // Reads go on (R17), and see only what the partner's relationships give, as they stand.
    let data = app.data(&token, "{ customers { totalCount } }", json!({})).await;
    assert_eq!(data["customers"]["totalCount"], 1);
}

#[tokio::test]
async fn roles_are_required_and_named() {
    let app = TestApp::new().await;
    let (_, tid) = onboard(&app, "Contoso", "contoso.example", "DIRECT_BILL", "PUBLIC").await;
    let helpdesk = app.token(tid, &["helpdesk_agent"]);
    let body =
        app.gql_as(Some(&helpdesk), CREATE_CUSTOMER, json!({"input": customer_input("A", "adatum.example")})).await;
    assert_eq!(error_code(&body), Some("FORBIDDEN"));
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("admin_agent") && message.contains("sales_agent"), "{message}");
    let body = app
        .gql_as(
            Some(&helpdesk),
            ONBOARD,
            json!({"input": {"name": "X", "domain": "x.example", "partnerType": "DIRECT_BILL", "partnerNetworkId": "PN-x"}}),
        )
        .await;
    assert_eq!(error_code(&body), Some("FORBIDDEN"));
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("platform_admin"));
    let body = app.gql_as(None, CREATE_CUSTOMER, json!({"input": customer_input("A", "adatum.example")})).await;
    assert_eq!(error_code(&body), Some("UNAUTHENTICATED"));
}

#[tokio::test]
async fn invalid_input_names_the_field() {
    let app = TestApp::new().await;
    let platform = app.token(app.platform(), &["platform_admin"]);
    for (input, field) in [
        (json!({"companyName": "A", "domain": "not a domain", "country": "US"}), "domain"),
        (json!({"companyName": "A", "domain": "a.example", "country": "XX"}), "country"),
        (json!({"companyName": "  ", "domain": "a.example", "country": "US"}), "companyName"),
        (json!({"companyName": "A", "domain": "a.example", "country": "US", "idempotencyKey": ""}), "idempotencyKey"),
    ] {
        let body = app.gql_as(Some(&platform), CREATE_CUSTOMER, json!({"input": input})).await;
        assert_eq!(error_code(&body), Some("BAD_USER_INPUT"), "{body}");
        assert!(body["errors"][0]["message"].as_str().unwrap().contains(field), "{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn r14_create_customer_is_idempotent_under_concurrent_repeats() {
    let app = TestApp::new().await;
    let (_, tid) = onboard(&app, "Contoso", "contoso.example", "DIRECT_BILL", "PUBLIC").await;
    let token = app.token(tid, &["admin_agent"]);
    let mut input = customer_input("Adatum", "adatum.example");
    input["idempotencyKey"] = json!("create-adatum-1");
    let calls = (0..30).map(|_| (token.clone(), CREATE_CUSTOMER.to_owned(), json!({"input": input.clone()}))).collect();
    let answers = app.concurrently(calls).await;
    let ids: std::collections::BTreeSet<String> = answers
        .iter()
        .map(|body| {
            assert!(body.get("errors").is_none(), "{body}");
            body["data"]["createCustomer"]["customer"]["id"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(ids.len(), 1, "every repeat answers the first customer");
    let platform = app.token(app.platform(), &["platform_admin"]);
    let data = app.data(&platform, "{ customers { totalCount } relationships { totalCount } auditEvents(filter: {action: \"customer.create\"}) { totalCount } }", json!({})).await;
    assert_eq!(data["customers"]["totalCount"], 1);
    assert_eq!(data["relationships"]["totalCount"], 1);
    assert_eq!(data["auditEvents"]["totalCount"], 1);

    input["companyName"] = json!("Adatum Other");
    let body = app.gql_as(Some(&token), CREATE_CUSTOMER, json!({"input": input})).await;
    assert_eq!(error_code(&body), Some("IDEMPOTENCY_KEY_REUSED"));
    // Keys belong to a tenant: another partner may use the same key.
    let (_, other) = onboard(&app, "Fabrikam", "fabrikam.example", "DIRECT_BILL", "PUBLIC").await;
    let other = app.token(other, &["admin_agent"]);
    let mut input = customer_input("Relecloud", "relecloud.example");
    input["idempotencyKey"] = json!("create-adatum-1");
    app.data(&other, CREATE_CUSTOMER, json!({"input": input})).await;
}

#[tokio::test]
async fn r2_the_platform_tenant_id_is_taken() {
    let app = TestApp::new().await;
    let platform = app.token(app.platform(), &["platform_admin"]);
    let (_, tid) = onboard(&app, "Contoso", "contoso.example", "DIRECT_BILL", "PUBLIC").await;
    let partner = app.token(tid, &["admin_agent"]);
    let before = audit_count(&app).await;
    let mut input = customer_input("Impostor", "impostor.example");
    input["tenantId"] = json!(app.platform());
    for token in [&platform, &partner] {
        let body = app.gql_as(Some(token), CREATE_CUSTOMER, json!({"input": input})).await;
        assert_eq!(error_code(&body), Some("CONFLICT"), "{body}");
        assert!(body["errors"][0]["message"].as_str().unwrap().contains("tenant id"), "{body}");
    }
    let partner_input = json!({"tenantId": app.platform(), "name": "X", "domain": "x.example", "partnerType": "DIRECT_BILL", "partnerNetworkId": "PN-x"});
    let body = app.gql_as(Some(&platform), ONBOARD, json!({"input": partner_input})).await;
    assert_eq!(error_code(&body), Some("CONFLICT"), "{body}");
    assert_eq!(audit_count(&app).await, before, "nothing was written");
    // The platform's token still means the platform.
    let data = app.data(&platform, "{ viewer { tenantKind } customers { totalCount } }", json!({})).await;
    assert_eq!(data["viewer"]["tenantKind"], "PLATFORM");
    assert_eq!(data["customers"]["totalCount"], 0);
}

/// A cursor as a client could craft it.
fn crafted_cursor(key: Value) -> String {
    use base64::Engine;
    let json = json!({"k": key, "i": Uuid::now_v7()}).to_string();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
}

#[tokio::test]
async fn input_crafted_cursors_and_nul_bytes_are_bad_user_input_naming_the_field() {
    let app = TestApp::new().await;
    let platform = app.token(app.platform(), &["platform_admin"]);
    let (_, tid) = onboard(&app, "Contoso", "contoso.example", "DIRECT_BILL", "PUBLIC").await;
    let partner = app.token(tid, &["admin_agent"]);
    app.data(&partner, CREATE_CUSTOMER, json!({"input": customer_input("Adatum", "adatum.example")})).await;
    let customers = "query($after: String, $order: CustomerOrder, $filter: CustomerFilter) {
        customers(after: $after, orderBy: $order, filter: $filter) { nodes { id } } }";
    let by_name = json!({"field": "COMPANY_NAME"});
    let by_time = json!({"field": "CREATED_AT"});
    let cases = [
        (
            "text key on a time order",
            json!({"after": crafted_cursor(json!({"Text": "abc"})), "order": by_time}),
            "after",
        ),
        (
            "time key on a text order",
            json!({"after": crafted_cursor(json!({"Time": "2020-01-01T00:00:00Z"})), "order": by_name}),
            "after",
        ),
        ("NUL in a text key", json!({"after": crafted_cursor(json!({"Text": "a\u{0}"})), "order": by_name}), "after"),
        (
            "time out of range",
            json!({"after": crafted_cursor(json!({"Time": "-200000-01-01T00:00:00Z"})), "order": by_time}),
            "after",
        ),
        ("oversized cursor", json!({"after": "A".repeat(5000)}), "after"),
        ("NUL in search", json!({"filter": {"search": "a\u{0}"}}), "filter.search"),
        ("NUL in country", json!({"filter": {"country": "U\u{0}"}}), "filter.country"),
        ("overlong search", json!({"filter": {"search": "a".repeat(201)}}), "filter.search"),
    ];
    for (case, variables, field) in cases {
        for token in [&platform, &partner] {
            let body = app.gql_as(Some(token), customers, variables.clone()).await;
            assert_eq!(error_code(&body), Some("BAD_USER_INPUT"), "{case}: {body}");
            assert!(body["errors"][0]["message"].as_str().unwrap().contains(field), "{case}: {body}");
        }
    }
    // Nested lists and the other text filters go through the same checks.
    let nested = "query($f: CustomerFilter, $p: PartnerFilter) { partners(filter: $p) { nodes { customers(filter: $f) { totalCount } } } }";
    for (variables, field) in
        [(json!({"f": {"search": "a\u{0}"}}), "filter.search"), (json!({"p": {"search": "a\u{0}"}}), "filter.search")]
    {
        let body = app.gql_as(Some(&platform), nested, variables).await;
        assert_eq!(error_code(&body), Some("BAD_USER_INPUT"), "{body}");
        assert!(body["errors"][0]["message"].as_str().unwrap().contains(field), "{body}");
    }
    let audit = "query($a: String) { auditEvents(filter: {action: $a}) { totalCount } }";
    let body = app.gql_as(Some(&platform), audit, json!({"a": "customer.create\u{0}"})).await;
    assert_eq!(error_code(&body), Some("BAD_USER_INPUT"), "{body}");
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("filter.action"), "{body}");
    // And mutations' text inputs.
    for (input, field) in [
        (json!({"companyName": "A\u{0}", "domain": "a.example", "country": "US"}), "companyName"),
        (json!({"companyName": "A", "domain": "a\u{0}.example", "country": "US"}), "domain"),
        (json!({"companyName": "A", "domain": "a.example", "country": "U\u{0}"}), "country"),
        (
            json!({"companyName": "A", "domain": "a.example", "country": "US", "idempotencyKey": "k\u{0}"}),
            "idempotencyKey",
        ),
    ] {
        let body = app.gql_as(Some(&partner), CREATE_CUSTOMER, json!({"input": input})).await;
        assert_eq!(error_code(&body), Some("BAD_USER_INPUT"), "{body}");
        assert!(body["errors"][0]["message"].as_str().unwrap().contains(field), "{body}");
    }
    // A cursor the API returned still works.
    let page = app
        .data(
            &platform,
            "{ customers(first: 1, orderBy: {field: COMPANY_NAME}) { pageInfo { endCursor } } }",
            json!({}),
        )
        .await;
    let after = page["customers"]["pageInfo"]["endCursor"].clone();
    app.data(&platform, customers, json!({"after": after, "order": by_name})).await;
}

#[tokio::test]
async fn input_limits_names_offers_and_keys_are_bounded_and_named() {
    let app = TestApp::new().await;
    let platform = app.token(app.platform(), &["platform_admin"]);
    for (input, field, limit) in [
        (json!({"companyName": "A".repeat(201), "domain": "a.example", "country": "US"}), "companyName", "200"),
        (
            json!({"companyName": "A", "domain": format!("{}.example", "a.".repeat(130)), "country": "US"}),
            "domain",
            "253",
        ),
        (
            json!({"companyName": "A", "domain": "a.example", "country": "US", "idempotencyKey": "k".repeat(256)}),
            "idempotencyKey",
            "255",
        ),
    ] {
        let body = app.gql_as(Some(&platform), CREATE_CUSTOMER, json!({"input": input})).await;
        assert_eq!(error_code(&body), Some("BAD_USER_INPUT"), "{body}");
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains(field) && message.contains(limit), "{message}");
        assert!(message.len() < 300, "the input is not echoed whole");
    }
    let body = app
        .gql_as(Some(&platform), ONBOARD, json!({"input": {"name": "X", "domain": "x.example", "partnerType": "DIRECT_BILL", "partnerNetworkId": "P".repeat(101)}}))
        .await;
    assert_eq!(error_code(&body), Some("BAD_USER_INPUT"), "{body}");
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("partnerNetworkId"), "{body}");
}

#[tokio::test]
async fn r15_an_oversized_or_unprintable_request_id_is_replaced_in_the_audit_trail() {
    use axum::body::Body;
    use axum::http::Request;
    let app = TestApp::new().await;
    let platform = app.token(app.platform(), &["platform_admin"]);
    let send = |request_id: String, domain: &str| {
        let body = json!({"query": CREATE_CUSTOMER, "variables": {"input": customer_input("A", domain)}}).to_string();
        Request::post("/graphql")
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {platform}"))
            .header("x-request-id", request_id)
            .body(Body::from(body))
            .unwrap()
    };
    let cases = [
        ("x".repeat(6 * 1024), "a1.example", false),
        ("tab\there".into(), "a2.example", false),
        ("r".repeat(128), "a3.example", true),
    ];
    for (request_id, domain, kept) in cases {
        let (status, headers, body) = app.send(send(request_id.clone(), domain)).await;
        assert!(status.is_success() && body.get("errors").is_none(), "{body}");
        let answered = headers["x-request-id"].to_str().unwrap().to_owned();
        assert_eq!(answered == request_id, kept, "{domain}: {answered}");
        assert!(answered.len() <= 128);
        let rows = entity::audit_event::Entity::find()
            .filter(entity::audit_event::Column::Action.eq("customer.create"))
            .all(&app.db)
            .await
            .unwrap();
        let row = rows.iter().find(|r| r.details.to_string().contains(domain)).unwrap();
        assert_eq!(row.request_id, answered, "the audit row carries the id the response names");
    }
}
