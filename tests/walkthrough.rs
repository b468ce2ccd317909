//! The README's walk-through, replayed against the demo world: each step's query, as printed there,
//! answers the data or the error code the README says it does. When the README changes, change
//! this test with it.

use partnerhub::demo;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::{TestApp, error_code};

struct Demo {
    app: TestApp,
}

impl Demo {
    async fn new() -> Self {
        let app = TestApp::new().await;
        assert!(demo::load(&app.state).await.unwrap());
        Self { app }
    }

    /// A token for the demo tenant whose banner label starts with `label`, with the banner's roles
    /// (or `roles` instead).
    fn token(&self, label: &str, roles: Option<&[&str]>) -> String {
        let tenant = demo::tenants(self.app.platform()).into_iter().find(|t| t.label.starts_with(label)).unwrap();
        self.app.token(tenant.tenant_id, roles.unwrap_or(tenant.roles))
    }

    async fn data(&self, as_: &str, query: &str) -> Value {
        self.app.data(&self.token(as_, None), query, json!({})).await
    }

    async fn code(&self, as_: &str, roles: Option<&[&str]>, query: &str) -> String {
        let body = self.app.gql_as(Some(&self.token(as_, roles)), query, json!({})).await;
        error_code(&body).unwrap_or_else(|| panic!("an error expected: {body}")).to_owned()
    }
}

fn nodes(value: &Value) -> &Vec<Value> {
    value["nodes"].as_array().unwrap()
}

fn find<'a>(list: &'a Value, field: &str, wanted: &str) -> &'a Value {
    nodes(list).iter().find(|n| n[field] == wanted).unwrap_or_else(|| panic!("no {field} = {wanted} in {list}"))
}

/// The README's "Exploring with GraphiQL" query.
const EXPLORE: &str = "{
  viewer { tenantKind roles partner { name } customer { companyName } }
  customers(first: 10) {
    totalCount
    nodes {
      companyName country cloud
      subscriptions(first: 10) { nodes { offerName channel billingModel status partner { name } } }
      relationships { nodes { kind status partner { name } } }
    }
  }
  transfers { nodes { status sourcePartner { name } targetPartner { name } } }
}";

#[tokio::test]
async fn readme_what_each_demo_tenant_sees() {
    let demo = Demo::new().await;
    // Without a token: the schema, but no data.
    let body = demo.app.gql_as(None, "{ __schema { queryType { name } } }", json!({})).await;
    assert_eq!(body["data"]["__schema"]["queryType"]["name"], "Query");
    assert_eq!(error_code(&demo.app.gql_as(None, EXPLORE, json!({})).await), Some("UNAUTHENTICATED"));

    let platform = demo
        .data(
            "platform",
            "{ partners { totalCount } customers { totalCount } subscriptions { totalCount }
               relationships { totalCount } transfers { nodes { status } } }",
        )
        .await;
    assert_eq!(platform["partners"]["totalCount"], 5);
    assert_eq!(platform["customers"]["totalCount"], 4);
    assert_eq!(platform["subscriptions"]["totalCount"], 10);
    assert_eq!(platform["relationships"]["totalCount"], 8);
    let mut statuses: Vec<&str> = nodes(&platform["transfers"]).iter().map(|t| t["status"].as_str().unwrap()).collect();
    statuses.sort();
    assert_eq!(statuses, ["COMPLETED", "PENDING"]);
    demo.data("platform", EXPLORE).await;

    let contoso = demo.data("Contoso", EXPLORE).await;
    assert_eq!(contoso["customers"]["totalCount"], 1);
    let adatum = find(&contoso["customers"], "companyName", "Adatum Corporation");
    let subscriptions = nodes(&adatum["subscriptions"]);
    assert_eq!(subscriptions.len(), 6, "all of Adatum's subscriptions: {adatum}");
    let channels: Vec<&str> = subscriptions.iter().map(|s| s["channel"].as_str().unwrap()).collect();
    assert!(channels.contains(&"ENTERPRISE_AGREEMENT") && channels.contains(&"OPEN"), "{channels:?}");
    let devtest = find(&adatum["subscriptions"], "offerName", "Azure plan (dev/test)");
    assert_eq!(devtest["partner"]["name"], "Fabrikam Cloud", "handed over to Fabrikam");

    let fabrikam = demo.data("Fabrikam", EXPLORE).await;
    let adatum = find(&fabrikam["customers"], "companyName", "Adatum Corporation");
    let offers: Vec<&str> = nodes(&adatum["subscriptions"]).iter().map(|s| s["offerName"].as_str().unwrap()).collect();
    assert_eq!(offers, ["Azure plan (dev/test)"]);
    let pending = demo
        .data(
            "Fabrikam",
            "{ relationships(filter: {status: PENDING}) { nodes { kind customerDomain customer { id } } } }",
        )
        .await;
    let relecloud = find(&pending["relationships"], "customerDomain", "relecloud.example");
    assert_eq!(relecloud["customer"], Value::Null);
    let transfers: Vec<&str> = nodes(&fabrikam["transfers"]).iter().map(|t| t["status"].as_str().unwrap()).collect();
    assert!(transfers.contains(&"PENDING"), "{transfers:?}");

    for tenant in ["Northwind", "Tailspin"] {
        let seen = demo.data(tenant, EXPLORE).await;
        let litware = find(&seen["customers"], "companyName", "Litware Inc.");
        assert_eq!(nodes(&litware["subscriptions"]).len(), 2, "{tenant}");
    }
    let woodgrove = demo.data("Woodgrove", EXPLORE).await;
    assert_eq!(woodgrove["customers"]["totalCount"], 1);
    assert_eq!(woodgrove["customers"]["nodes"][0]["companyName"], "City of Springfield");
    for customer in ["Adatum", "Litware", "Relecloud"] {
        let seen = demo.data(customer, EXPLORE).await;
        assert_eq!(seen["viewer"]["tenantKind"], "CUSTOMER");
        assert!(seen["viewer"]["customer"]["companyName"].as_str().unwrap().starts_with(customer));
    }

    // The `curl` example: Contoso's tenant id and `admin_agent`.
    let contoso_id = Uuid::parse_str("00000000-0000-4000-8000-000000000101").unwrap();
    let token = demo.app.token(contoso_id, &["admin_agent"]);
    let data = demo.app.data(&token, "{ customers { nodes { companyName } } }", json!({})).await;
    assert_eq!(data["customers"]["nodes"][0]["companyName"], "Adatum Corporation");
}

#[tokio::test]
async fn readme_multi_channel_story() {
    let demo = Demo::new().await;
    // 1. Relecloud's direct subscription and Fabrikam's pending request; it records an Open purchase.
    let step1 = demo
        .data(
            "Relecloud",
            "{ subscriptions { nodes { id offerName channel billingModel status externalReference } }
               relationships(filter: {status: PENDING}) { nodes { id kind partner { name } message } } }",
        )
        .await;
    let direct = find(&step1["subscriptions"], "channel", "DIRECT")["id"].as_str().unwrap().to_owned();
    let request = find(&step1["relationships"], "kind", "RESELLER");
    assert_eq!(request["partner"]["name"], "Fabrikam Cloud");
    let request = request["id"].as_str().unwrap().to_owned();
    let relecloud = demo.data("Relecloud", "{ viewer { customer { id } } }").await;
    let relecloud = relecloud["viewer"]["customer"]["id"].as_str().unwrap().to_owned();
    let open = demo
        .data(
            "Relecloud",
            &format!(
                r#"mutation {{ registerExternalSubscription(input: {{customerId: "{relecloud}",
                channel: OPEN, externalReference: "OPEN-1", offerId: "O365-E3", offerName: "Office 365 E3 (Open)",
                billingModel: LICENSE_BASED, quantity: 10}}) {{ subscription {{ id channel status }} }} }}"#
            ),
        )
        .await;
    assert_eq!(open["registerExternalSubscription"]["subscription"]["status"], "ACTIVE");

    // 2. Relecloud accepts Fabrikam's reseller request.
    let accept = |id: &str| {
        format!(r#"mutation {{ acceptRelationship(input: {{id: "{id}"}}) {{ relationship {{ status }} }} }}"#)
    };
    let accepted = demo.data("Relecloud", &accept(&request)).await;
    assert_eq!(accepted["acceptRelationship"]["relationship"]["status"], "ACTIVE");

    // 3. Fabrikam sees Relecloud but none of what it bought elsewhere, until delegated admin.
    let subscriptions_of_relecloud = r#"{ customers(filter: {search: "Relecloud"}) { nodes { companyName subscriptions { nodes { id channel } } } } }"#;
    let seen = demo.data("Fabrikam", subscriptions_of_relecloud).await;
    assert_eq!(seen["customers"]["nodes"][0]["companyName"], "Relecloud");
    assert!(nodes(&seen["customers"]["nodes"][0]["subscriptions"]).is_empty(), "{seen}");
    let requested = demo
        .data(
            "Fabrikam",
            r#"mutation { requestRelationship(input: {customerDomain: "relecloud.example", kind: DELEGATED_ADMIN,
     roles: ["admin_agent"], durationDays: 90}) { relationship { id status customerDomain } } }"#,
        )
        .await;
    let relationship = &requested["requestRelationship"]["relationship"];
    assert_eq!(relationship["status"], "PENDING");
    demo.data("Relecloud", &accept(relationship["id"].as_str().unwrap())).await;
    let seen = demo.data("Fabrikam", subscriptions_of_relecloud).await;
    assert_eq!(nodes(&seen["customers"]["nodes"][0]["subscriptions"]).len(), 2, "every channel: {seen}");

    // 4. Migrating a subscription you cannot see answers NOT_FOUND; Fabrikam migrates it to CSP.
    let migrate = format!(
        r#"mutation {{ migrateUsageSubscription(input: {{sourceSubscriptionId: "{direct}"}}) {{
     subscription {{ id channel partner {{ name }} }} source {{ status }} }} }}"#
    );
    assert_eq!(demo.code("Contoso", None, &migrate).await, "NOT_FOUND");
    let migrated = demo.data("Fabrikam", &migrate).await;
    let migrated = &migrated["migrateUsageSubscription"];
    assert_eq!(migrated["subscription"]["channel"], "CSP");
    assert_eq!(migrated["subscription"]["partner"]["name"], "Fabrikam Cloud");
    assert_eq!(migrated["source"]["status"], "ACTIVE", "CSP coexists with the other channels");

    // Adatum shows the finished story: Contoso migrated its Enterprise Agreement usage.
    let adatum =
        demo.data("Adatum", "{ subscriptions { nodes { channel partner { name } migratedFrom { channel } } } }").await;
    let from_ea = nodes(&adatum["subscriptions"])
        .iter()
        .find(|s| s["migratedFrom"]["channel"] == "ENTERPRISE_AGREEMENT")
        .unwrap_or_else(|| panic!("{adatum}"));
    assert_eq!(from_ea["partner"]["name"], "Contoso Direct");
}

#[tokio::test]
async fn readme_partner_switch_story() {
    let demo = Demo::new().await;
    // 1. Fabrikam's pending transfer.
    let step1 = demo
        .data(
            "Fabrikam",
            "{ transfers { nodes { id status expiresAt sourcePartner { name } targetPartner { name } subscription { offerName } } } }",
        )
        .await;
    let pending = find(&step1["transfers"], "status", "PENDING");
    assert_eq!(pending["sourcePartner"]["name"], "Contoso Direct");
    assert_eq!(pending["targetPartner"]["name"], "Fabrikam Cloud");
    assert!(pending["expiresAt"].is_string());
    let transfer = pending["id"].as_str().unwrap().to_owned();

    // Asking for Contoso's Microsoft 365 seats instead: Fabrikam does not see them (no delegated
    // admin yet), so NOT_FOUND; a partner that sees them gets LICENSE_BASED_SWITCH_NOT_ALLOWED.
    let adatum = demo.data("Adatum", "{ subscriptions { nodes { id offerName } } }").await;
    let seats =
        find(&adatum["subscriptions"], "offerName", "Microsoft 365 Business Basic")["id"].as_str().unwrap().to_owned();
    let ask = format!(
        r#"mutation {{ requestSubscriptionTransfer(input: {{subscriptionId: "{seats}"}}) {{ transfer {{ id }} }} }}"#
    );
    assert_eq!(demo.code("Fabrikam", None, &ask).await, "NOT_FOUND");
    let contoso = demo
        .data("Contoso", r#"{ customers { nodes { relationships { nodes { id kind status partner { name } } } } } }"#)
        .await;
    let contoso_grant = nodes(&contoso["customers"]["nodes"][0]["relationships"])
        .iter()
        .find(|r| r["kind"] == "DELEGATED_ADMIN" && r["partner"]["name"] == "Contoso Direct")
        .unwrap()
        .clone();
    assert_eq!(contoso_grant["status"], "ACTIVE");
    let fabrikam_request = demo
        .data("Adatum", "{ relationships(filter: {status: PENDING}) { nodes { id kind partner { name } } } }")
        .await;
    let fabrikam_request =
        find(&fabrikam_request["relationships"], "kind", "DELEGATED_ADMIN")["id"].as_str().unwrap().to_owned();
    let accept = format!(
        r#"mutation {{ acceptRelationship(input: {{id: "{fabrikam_request}"}}) {{ relationship {{ status }} }} }}"#
    );
    demo.data("Adatum", &accept).await;
    assert_eq!(demo.code("Fabrikam", None, &ask).await, "LICENSE_BASED_SWITCH_NOT_ALLOWED");

    // 2. Contoso accepts (admin_agent; a sales_agent gets FORBIDDEN).
    let accept = format!(
        r#"mutation {{ acceptSubscriptionTransfer(input: {{id: "{transfer}"}}) {{ transfer {{ status }} }} }}"#
    );
    assert_eq!(demo.code("Contoso", Some(&["sales_agent"]), &accept).await, "FORBIDDEN");
    let accepted = demo.data("Contoso", &accept).await;
    assert_eq!(accepted["acceptSubscriptionTransfer"]["transfer"]["status"], "COMPLETED");

    // 3. Fabrikam is partner of record; Contoso still sees the plan through its delegated admin, but
    // may no longer change it: FORBIDDEN.
    let seen = demo.data("Fabrikam", "{ subscriptions { nodes { offerName partner { name } } } }").await;
    assert_eq!(find(&seen["subscriptions"], "offerName", "Azure plan")["partner"]["name"], "Fabrikam Cloud");
    let plan = demo.data("Contoso", "{ subscriptions { nodes { id offerName version partner { name } } } }").await;
    let plan = find(&plan["subscriptions"], "offerName", "Azure plan");
    assert_eq!(plan["partner"]["name"], "Fabrikam Cloud");
    let update = format!(
        r#"mutation {{ updateSubscription(input: {{id: "{}", expectedVersion: {}, autoRenew: false}}) {{ subscription {{ id }} }} }}"#,
        plan["id"].as_str().unwrap(),
        plan["version"]
    );
    assert_eq!(demo.code("Contoso", None, &update).await, "FORBIDDEN");
}

#[tokio::test]
async fn readme_indirect_story_and_retries() {
    let demo = Demo::new().await;
    let northwind = demo.data("Northwind", "{ viewer { partner { resellers { nodes { name } } } } }").await;
    assert_eq!(northwind["viewer"]["partner"]["resellers"]["nodes"][0]["name"], "Tailspin Resellers");
    let tailspin = demo
        .data(
            "Tailspin",
            "{ customers { nodes { id companyName subscriptions { nodes { offerName reseller { name } } } } } }",
        )
        .await;
    let litware = find(&tailspin["customers"], "companyName", "Litware Inc.");
    for subscription in nodes(&litware["subscriptions"]) {
        assert_eq!(subscription["reseller"]["name"], "Tailspin Resellers");
    }
    let sell = format!(
        r#"mutation {{ createSubscription(input: {{customerId: "{}", offerId: "DZH318Z0BQ3Q", offerName: "Azure plan",
        billingModel: USAGE_BASED}}) {{ subscription {{ id }} }} }}"#,
        litware["id"].as_str().unwrap()
    );
    assert_eq!(demo.code("Tailspin", None, &sell).await, "INDIRECT_RESELLER_CANNOT_TRANSACT");

    // Concurrency and retries: a stale version changes nothing; a repeated key answers the first result.
    let seats = demo.data("Northwind", "{ subscriptions { nodes { id version billingModel } } }").await;
    let seats = find(&seats["subscriptions"], "billingModel", "LICENSE_BASED");
    let update = |version: i64| {
        format!(
            r#"mutation {{ updateSubscription(input: {{id: "{}", expectedVersion: {version}, quantity: 41}}) {{ subscription {{ quantity version }} }} }}"#,
            seats["id"].as_str().unwrap()
        )
    };
    let version = seats["version"].as_i64().unwrap();
    demo.data("Northwind", &update(version)).await;
    assert_eq!(demo.code("Northwind", None, &update(version)).await, "VERSION_CONFLICT");
    let tailspin_id = demo.data("Tailspin", "{ viewer { partner { id } } }").await;
    let create = format!(
        r#"mutation {{ createSubscription(input: {{customerId: "{}", offerId: "DZH318Z0BQ3Q", offerName: "Azure plan (2)",
        billingModel: USAGE_BASED, resellerId: "{}", idempotencyKey: "readme-1"}}) {{ subscription {{ id }} }} }}"#,
        litware["id"].as_str().unwrap(),
        tailspin_id["viewer"]["partner"]["id"].as_str().unwrap()
    );
    let first = demo.data("Northwind", &create).await;
    let again = demo.data("Northwind", &create).await;
    assert_eq!(first, again);
}
