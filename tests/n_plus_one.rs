//! No N+1: a partner's first 50 customers, each with its first 10 subscriptions and each
//! subscription's partner and customer, take a fixed number of SQL statements whatever the page sizes.

use entity::enums::{BillingModel, Cloud, PartnerType};
use partnerhub::seed::{NewSubscription, Seed};
use sea_orm::TransactionTrait;
use serde_json::json;
use uuid::Uuid;

use crate::common::TestApp;

const QUERY: &str = "query($customers: Int!, $subscriptions: Int!) {
  viewer { partner { customers(first: $customers) { edges { node { id companyName
    subscriptions(first: $subscriptions) { edges { node { id offerName status
      partner { id name } customer { id companyName } } } } } } } } } }";

const TOP_LEVEL_QUERY: &str = "query($customers: Int!, $subscriptions: Int!) {
  customers(first: $customers) { nodes { id
    subscriptions(first: $subscriptions) { totalCount nodes { id partner { id name } customer { id } } } } } }";

/// Statements one request issues, authentication included.
async fn statements_for(
    app: &TestApp,
    token: &str,
    query: &str,
    customers: i32,
    subscriptions: i32,
) -> (usize, serde_json::Value) {
    let before = app.statement_count();
    let data = app.data(token, query, json!({"customers": customers, "subscriptions": subscriptions})).await;
    (app.statement_count() - before, data)
}

#[tokio::test]
async fn nested_customers_and_subscriptions_take_a_bounded_number_of_statements() {
    // The tenant cache off, so every request counts its token → principal statement alike
    // (`auth::a_cached_tenant_costs_no_statement` covers the cache).
    let mut settings = partnerhub::config::Settings::development(crate::common::SECRET);
    settings.tenant_cache_ttl = std::time::Duration::ZERO;
    let app = TestApp::with_settings(settings).await;
    let tid = Uuid::new_v4();
    {
        let txn = app.db.begin().await.unwrap();
        let seed = Seed::new(&txn, app.clock.now());
        let partner =
            seed.partner(tid, "Contoso", "contoso.example", PartnerType::DirectBill, Cloud::Public).await.unwrap();
        for i in 0..60 {
            let customer = seed
                .customer(
                    Uuid::new_v4(),
                    &format!("Customer {i:02}"),
                    &format!("customer{i}.example"),
                    "US",
                    Cloud::Public,
                )
                .await
                .unwrap();
            seed.reseller_link(partner.id, &customer).await.unwrap();
            for j in 0..12 {
                let billing = if j % 2 == 0 { BillingModel::LicenseBased } else { BillingModel::UsageBased };
                seed.subscription(NewSubscription::csp(customer.id, partner.id, None, billing), 1).await.unwrap();
            }
        }
        txn.commit().await.unwrap();
    }
    let token = app.token(tid, &["admin_agent"]);

    let (full, data) = statements_for(&app, &token, QUERY, 50, 10).await;
    let customers = data["viewer"]["partner"]["customers"]["edges"].as_array().unwrap();
    assert_eq!(customers.len(), 50);
    for edge in customers {
        let subscriptions = edge["node"]["subscriptions"]["edges"].as_array().unwrap();
        assert_eq!(subscriptions.len(), 10);
        for s in subscriptions {
            assert_eq!(s["node"]["partner"]["name"], "Contoso");
            assert_eq!(s["node"]["customer"]["id"], edge["node"]["id"]);
        }
    }
    let (small, _) = statements_for(&app, &token, QUERY, 5, 2).await;
    let (one, _) = statements_for(&app, &token, QUERY, 1, 1).await;
    eprintln!("statements: 50x10 page: {full}, 5x2 page: {small}, 1x1 page: {one}");
    assert_eq!(full, small, "the statement count must not grow with the page size");
    assert_eq!(full, one, "the statement count must not grow with the page size");
    // Token → principal (1), the customers page (1), the first 10 subscriptions of every customer (1,
    // a window function), the partners they name (1); their customers are those of the page.
    assert_eq!(full, 4, "statements");

    let (top, data) = statements_for(&app, &token, TOP_LEVEL_QUERY, 50, 10).await;
    assert_eq!(data["customers"]["nodes"].as_array().unwrap().len(), 50);
    assert_eq!(data["customers"]["nodes"][0]["subscriptions"]["totalCount"], 12);
    let (top_small, _) = statements_for(&app, &token, TOP_LEVEL_QUERY, 3, 1).await;
    eprintln!("statements (top-level customers with totals): 50x10 page: {top}, 3x1 page: {top_small}");
    assert_eq!(top, top_small);
    // The same plus one grouped count for the nested totals.
    assert_eq!(top, 5, "statements");
}

#[tokio::test]
async fn customers_under_a_list_of_partners_take_a_bounded_number_of_statements() {
    let app = TestApp::new().await;
    {
        let txn = app.db.begin().await.unwrap();
        let seed = Seed::new(&txn, app.clock.now());
        for p in 0..12 {
            let partner = seed
                .partner(
                    Uuid::new_v4(),
                    &format!("P{p}"),
                    &format!("p{p}.example"),
                    PartnerType::DirectBill,
                    Cloud::Public,
                )
                .await
                .unwrap();
            for c in 0..3 {
                let customer = seed
                    .customer(Uuid::new_v4(), &format!("C{p}-{c}"), &format!("c{p}-{c}.example"), "US", Cloud::Public)
                    .await
                    .unwrap();
                seed.reseller_link(partner.id, &customer).await.unwrap();
            }
        }
        txn.commit().await.unwrap();
    }
    let token = app.token(app.platform(), &["platform_admin"]);
    let query = "query($partners: Int!) { partners(first: $partners) { nodes { name
        customers(first: 2, orderBy: {field: COMPANY_NAME, direction: DESC}) { totalCount nodes { companyName } } } } }";
    let count = |n: i32| {
        let (app, token) = (&app, &token);
        async move {
            let before = app.statement_count();
            let data = app.data(token, query, json!({"partners": n})).await;
            (app.statement_count() - before, data)
        }
    };
    let (many, data) = count(12).await;
    let (few, _) = count(2).await;
    eprintln!("statements: 12 partners with customers: {many}, 2 partners: {few}");
    for partner in data["partners"]["nodes"].as_array().unwrap() {
        let customers = &partner["customers"];
        assert_eq!(customers["totalCount"], 3);
        let names: Vec<&str> =
            customers["nodes"].as_array().unwrap().iter().map(|c| c["companyName"].as_str().unwrap()).collect();
        let p = partner["name"].as_str().unwrap().trim_start_matches('P');
        assert_eq!(names, [format!("C{p}-2"), format!("C{p}-1")], "first page in the requested order");
    }
    assert_eq!(many, few, "the statement count must not grow with the number of partners");

    // The other way round: every customer with the partners serving it.
    let query = "query($n: Int!) { customers(first: $n) { nodes { partners { totalCount nodes { name } } } } }";
    let before = app.statement_count();
    let data = app.data(&token, query, json!({"n": 36})).await;
    let all = app.statement_count() - before;
    assert!(data["customers"]["nodes"].as_array().unwrap().iter().all(|c| c["partners"]["totalCount"] == 1));
    let before = app.statement_count();
    app.data(&token, query, json!({"n": 3})).await;
    let three = app.statement_count() - before;
    eprintln!("statements: 36 customers with their partners: {all}, 3 customers: {three}");
    assert_eq!(all, three, "the statement count must not grow with the number of customers");
    // Token → principal is the platform's (no lookup); the partners page; one window query; one count.
    assert!(many <= 4, "{many} statements");
}
