//! The read API on the demo world: every query field, filters, ordering, cursors, lookups, and
//! time-dependent state evaluated at read time.

use chrono::Duration;
use entity::enums::{BillingModel, Cloud, PartnerType, RelationshipKind, RelationshipStatus};
use partnerhub::demo;
use partnerhub::seed::NewSubscription;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::{TestApp, error_code};

/// The demo world loaded into a fresh app, with the platform's token.
async fn demo_app() -> (TestApp, String) {
    let app = TestApp::new().await;
    assert!(demo::load(&app.state).await.unwrap());
    let token = app.token(app.platform(), &["platform_admin"]);
    (app, token)
}

fn demo_tenant(label_start: &str, app: &TestApp) -> Uuid {
    demo::tenants(app.platform()).into_iter().find(|t| t.label.starts_with(label_start)).unwrap().tenant_id
}

fn names(conn: &Value, field: &str) -> Vec<String> {
    conn["nodes"].as_array().unwrap().iter().map(|n| n[field].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn every_list_and_lookup_answers_for_the_platform() {
    let (app, token) = demo_app().await;
    let data = app
        .data(
            &token,
            "{ viewer { tenantKind roles }
               partners { totalCount nodes { id name partnerType cloud status tenantId domain partnerNetworkId version createdAt updatedAt } }
               customers { totalCount nodes { id companyName domain country cloud tenantId } }
               subscriptions(first: 100) { totalCount nodes { id offerId offerName billingModel channel status quantity termMonths
                   termStart termEnd autoRenew cancellationAllowedUntil externalReference migratedFrom { id } version cancelledAt } }
               relationships(first: 100) { totalCount nodes { id kind status roles durationDays customerDomain requestedAt respondedAt expiresAt } }
               transfers { totalCount nodes { id status requestedAt expiresAt subscription { id } } }
               auditEvents { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(data["viewer"]["tenantKind"], "PLATFORM");
    assert_eq!(data["viewer"]["roles"], json!(["platform_admin"]));
    assert_eq!(data["partners"]["totalCount"], 5);
    assert_eq!(data["customers"]["totalCount"], 4);
    assert_eq!(data["subscriptions"]["totalCount"], 10);
    assert_eq!(data["relationships"]["totalCount"], 8);
    assert_eq!(data["transfers"]["totalCount"], 2);
    assert_eq!(data["transfers"]["nodes"][0]["status"], "PENDING");
    assert!(data["auditEvents"]["totalCount"].as_u64().unwrap() >= 25, "the demo was built through audited mutations");

    // Every id found in the lists resolves through `node`, `nodes` and its own lookup.
    for (list, lookup) in [
        ("partners", "partner"),
        ("customers", "customer"),
        ("subscriptions", "subscription"),
        ("relationships", "relationship"),
        ("transfers", "transfer"),
    ] {
        let ids: Vec<Value> = data[list]["nodes"].as_array().unwrap().iter().map(|n| n["id"].clone()).collect();
        let found = app.data(&token, "query($ids: [ID!]!) { nodes(ids: $ids) { id } }", json!({"ids": ids})).await;
        let found: Vec<Value> = found["nodes"].as_array().unwrap().iter().map(|n| n["id"].clone()).collect();
        assert_eq!(found, ids, "nodes() keeps order for {list}");
        for id in &ids {
            let query = format!("query($id: ID!) {{ {lookup}(id: $id) {{ id }} node(id: $id) {{ id __typename }} }}");
            let one = app.data(&token, &query, json!({"id": id})).await;
            assert_eq!(&one[lookup]["id"], id);
            assert_eq!(&one["node"]["id"], id);
        }
    }
}

#[tokio::test]
async fn filters_narrow_every_list() {
    let (app, token) = demo_app().await;
    let q = |query: &'static str| app.data(&token, query, json!({}));
    let data = q("{ partners(filter: {partnerType: INDIRECT_RESELLER}) { nodes { name } } }").await;
    assert_eq!(names(&data["partners"], "name"), ["Tailspin Resellers"]);
    let data = q("{ partners(filter: {cloud: US_GOVERNMENT}) { nodes { name } } }").await;
    assert_eq!(names(&data["partners"], "name"), ["Woodgrove Federal"]);
    let data = q("{ partners(filter: {search: \"WIND\"}) { nodes { name } } }").await;
    assert_eq!(names(&data["partners"], "name"), ["Northwind Distribution"]);

    let data = q("{ customers(filter: {search: \"ADAT\"}) { nodes { companyName } } }").await;
    assert_eq!(names(&data["customers"], "companyName"), ["Adatum Corporation"]);
    let data = q("{ customers(filter: {search: \"litware.ex\"}) { nodes { companyName } } }").await;
    assert_eq!(names(&data["customers"], "companyName"), ["Litware Inc."]);
    let data = q("{ customers(filter: {search: \"%\"}) { totalCount } }").await;
    assert_eq!(data["customers"]["totalCount"], 0, "LIKE wildcards are matched literally");
    let data = q("{ customers(filter: {country: \"de\"}) { nodes { companyName } } }").await;
    assert_eq!(names(&data["customers"], "companyName"), ["Litware Inc."]);
    let data = q("{ customers(filter: {cloud: US_GOVERNMENT}) { nodes { companyName } } }").await;
    assert_eq!(names(&data["customers"], "companyName"), ["City of Springfield"]);

    let data = q("{ subscriptions(filter: {channel: ENTERPRISE_AGREEMENT}) { nodes { externalReference } } }").await;
    assert_eq!(names(&data["subscriptions"], "externalReference"), ["EA-8812345"]);
    let data = q("{ subscriptions(filter: {billingModel: USAGE_BASED, channel: CSP}) { totalCount } }").await;
    assert_eq!(
        data["subscriptions"]["totalCount"], 4,
        "Contoso's Azure plan, the dev/test plan now Fabrikam's, the migrated EA usage, Litware's Azure plan"
    );
    let data = q("{ subscriptions(filter: {status: CANCELLED}) { totalCount } }").await;
    assert_eq!(data["subscriptions"]["totalCount"], 0);

    let adatum = q("{ customers(filter: {search: \"adatum\"}) { nodes { id } } partners(filter: {search: \"contoso\"}) { nodes { id } } }").await;
    let (customer_id, partner_id) =
        (adatum["customers"]["nodes"][0]["id"].clone(), adatum["partners"]["nodes"][0]["id"].clone());
    let data = app
        .data(
            &token,
            "query($c: ID!) { subscriptions(filter: {customerId: $c}) { totalCount } }",
            json!({"c": customer_id}),
        )
        .await;
    assert_eq!(data["subscriptions"]["totalCount"], 6);
    let data = app
        .data(
            &token,
            "query($p: ID!) { subscriptions(filter: {partnerId: $p}) { totalCount } }",
            json!({"p": partner_id}),
        )
        .await;
    assert_eq!(data["subscriptions"]["totalCount"], 3);
    let data = app
        .data(
            &token,
            "query($c: ID!) { relationships(filter: {customerId: $c, kind: DELEGATED_ADMIN}) { nodes { status } } }",
            json!({"c": customer_id}),
        )
        .await;
    let mut statuses = names(&data["relationships"], "status");
    statuses.sort();
    assert_eq!(statuses, ["ACTIVE", "PENDING"]);
    let data = q("{ relationships(filter: {status: PENDING}) { totalCount } transfers(filter: {status: COMPLETED}) { totalCount } }").await;
    assert_eq!(data["relationships"]["totalCount"], 2);
    assert_eq!(data["transfers"]["totalCount"], 1);

    // A filter id of the wrong type is the caller's mistake.
    let body = app
        .gql_as(
            Some(&token),
            "query($p: ID!) { subscriptions(filter: {customerId: $p}) { totalCount } }",
            json!({"p": partner_id}),
        )
        .await;
    assert_eq!(error_code(&body), Some("BAD_USER_INPUT"));
}

#[tokio::test]
async fn audit_events_filter_by_action_party_and_time() {
    let app = TestApp::new().await;
    let seed = app.seed();
    let p = seed.partner(Uuid::new_v4(), "P", "p.example", PartnerType::DirectBill, Cloud::Public).await.unwrap();
    let c = seed.customer(Uuid::new_v4(), "C", "c.example", "US", Cloud::Public).await.unwrap();
    seed.audit_event(p.tenant_id, "customer.create", Some(p.id), None, Some(c.id)).await.unwrap();
    seed.audit_event(p.tenant_id, "subscription.create", Some(p.id), None, Some(c.id)).await.unwrap();
    seed.audit_event(app.platform(), "partner.onboard", Some(p.id), None, None).await.unwrap();
    let token = app.token(app.platform(), &["platform_admin"]);
    let count = |filter: Value| {
        let app = &app;
        let token = &token;
        async move {
            app.data(
                token,
                "query($f: AuditEventFilter) { auditEvents(filter: $f) { totalCount } }",
                json!({"f": filter}),
            )
            .await["auditEvents"]["totalCount"]
                .as_u64()
                .unwrap()
        }
    };
    assert_eq!(count(json!({})).await, 3);
    assert_eq!(count(json!({"action": "customer.create"})).await, 1);
    let cid = partnerhub::graphql::ids::encode(partnerhub::graphql::ids::NodeType::Customer, c.id).0;
    let pid = partnerhub::graphql::ids::encode(partnerhub::graphql::ids::NodeType::Partner, p.id).0;
    assert_eq!(count(json!({"customerId": cid})).await, 2);
    assert_eq!(count(json!({"partnerId": pid})).await, 3);
    let past = (app.clock.now() - Duration::hours(1)).to_rfc3339();
    let future = (app.clock.now() + Duration::hours(1)).to_rfc3339();
    assert_eq!(count(json!({"from": past, "to": future})).await, 3);
    assert_eq!(count(json!({"from": future})).await, 0);
    // Newest first.
    let data = app.data(&token, "{ auditEvents { nodes { action } } }", json!({})).await;
    assert_eq!(names(&data["auditEvents"], "action"), ["partner.onboard", "subscription.create", "customer.create"]);
}

#[tokio::test]
async fn customers_order_by_name_or_creation_and_pages_walk_every_item_once() {
    let (app, token) = demo_app().await;
    for (order, expected) in [
        (
            "{field: COMPANY_NAME, direction: ASC}",
            vec!["Adatum Corporation", "City of Springfield", "Litware Inc.", "Relecloud"],
        ),
        (
            "{field: COMPANY_NAME, direction: DESC}",
            vec!["Relecloud", "Litware Inc.", "City of Springfield", "Adatum Corporation"],
        ),
    ] {
        let query = format!(
            "query($after: String) {{ customers(first: 1, after: $after, orderBy: {order}) {{ pageInfo {{ hasNextPage endCursor }} nodes {{ companyName }} }} }}"
        );
        let mut walked = Vec::new();
        let mut after = Value::Null;
        loop {
            let data = app.data(&token, &query, json!({"after": after})).await;
            walked.extend(names(&data["customers"], "companyName"));
            if !data["customers"]["pageInfo"]["hasNextPage"].as_bool().unwrap() {
                break;
            }
            after = data["customers"]["pageInfo"]["endCursor"].clone();
        }
        assert_eq!(walked, expected, "{order}");
    }
    // A cursor from one order is refused in another, and garbage is refused.
    let data = app.data(&token, "{ customers(first: 1) { pageInfo { endCursor } } }", json!({})).await;
    let cursor = data["customers"]["pageInfo"]["endCursor"].clone();
    let body = app
        .gql_as(Some(&token), "query($a: String) { partners(after: $a) { totalCount } }", json!({"a": cursor}))
        .await;
    assert_eq!(error_code(&body), Some("BAD_USER_INPUT"), "{body}");
    let body = app.gql_as(Some(&token), "{ customers(after: \"garbage\") { totalCount } }", json!({})).await;
    assert_eq!(error_code(&body), Some("BAD_USER_INPUT"));
    let body = app.gql_as(Some(&token), "{ customers(first: -1) { totalCount } }", json!({})).await;
    assert_eq!(error_code(&body), Some("BAD_USER_INPUT"));
}

#[tokio::test]
async fn nested_connections_page_with_after() {
    let (app, token) = demo_app().await;
    let query = "query($after: String) { customers(filter: {search: \"adatum\"}) { nodes {
        subscriptions(first: 3, after: $after) { totalCount pageInfo { hasNextPage endCursor } nodes { id } } } } }";
    let mut seen = Vec::new();
    let mut after = Value::Null;
    loop {
        let data = app.data(&token, query, json!({"after": after})).await;
        let conn = &data["customers"]["nodes"][0]["subscriptions"];
        assert_eq!(conn["totalCount"], 6);
        seen.extend(conn["nodes"].as_array().unwrap().iter().map(|n| n["id"].as_str().unwrap().to_owned()));
        if !conn["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            break;
        }
        after = conn["pageInfo"]["endCursor"].clone();
    }
    let mut unique = seen.clone();
    unique.dedup();
    assert_eq!(seen.len(), 6);
    assert_eq!(unique.len(), 6);
}

#[tokio::test]
async fn lookups_of_malformed_ids_are_bad_input_and_ids_of_another_type_are_null() {
    let (app, token) = demo_app().await;
    let body = app.gql_as(Some(&token), "{ customer(id: \"nope\") { id } }", json!({})).await;
    assert_eq!(error_code(&body), Some("BAD_USER_INPUT"));
    let data = app.data(&token, "{ partners(first: 1) { nodes { id } } }", json!({})).await;
    let partner_id = data["partners"]["nodes"][0]["id"].clone();
    let data = app
        .data(&token, "query($id: ID!) { customer(id: $id) { id } node(id: $id) { id } }", json!({"id": partner_id}))
        .await;
    assert_eq!(data["customer"], Value::Null);
    assert_eq!(data["node"]["id"], partner_id);
    let data = app.data(&token, "{ node(id: \"nope\") { id } }", json!({})).await;
    assert_eq!(data["node"], Value::Null);
    let many: Vec<String> = (0..101).map(|_| "x".to_string()).collect();
    let body = app.gql_as(Some(&token), "query($ids: [ID!]!) { nodes(ids: $ids) { id } }", json!({"ids": many})).await;
    assert_eq!(error_code(&body), Some("BAD_USER_INPUT"));
}

#[tokio::test]
async fn tenants_see_only_their_world_in_the_demo() {
    let (app, _) = demo_app().await;
    // The direct-bill partner with delegated admin at Adatum sees Adatum and all six of its
    // subscriptions, whatever the channel, but not the other partners' customers.
    let contoso = app.token(demo_tenant("Contoso", &app), &["admin_agent"]);
    let data = app
        .data(
            &contoso,
            "{ customers { nodes { companyName } } subscriptions { totalCount } partners { nodes { name } } }",
            json!({}),
        )
        .await;
    assert_eq!(names(&data["customers"], "companyName"), ["Adatum Corporation"]);
    assert_eq!(data["subscriptions"]["totalCount"], 6);
    assert_eq!(
        names(&data["partners"], "name"),
        ["Contoso Direct", "Fabrikam Cloud"],
        "Fabrikam is named on the transfer"
    );

    // Fabrikam has only a reseller link at Adatum (its delegated-admin request is pending): it sees
    // Adatum but, of Adatum's subscriptions, only the one transferred to it; its pending request to
    // Relecloud names the domain while the customer itself stays hidden.
    let fabrikam = app.token(demo_tenant("Fabrikam", &app), &["admin_agent"]);
    let data = app
        .data(
            &fabrikam,
            "{ customers { nodes { companyName } } subscriptions { totalCount }
               relationships(filter: {status: PENDING, kind: RESELLER}) { nodes { customerDomain customer { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(names(&data["customers"], "companyName"), ["Adatum Corporation"]);
    assert_eq!(data["subscriptions"]["totalCount"], 1, "only the dev/test plan it took over");
    assert_eq!(data["relationships"]["nodes"][0]["customerDomain"], "relecloud.example");
    assert_eq!(data["relationships"]["nodes"][0]["customer"], Value::Null);

    // The indirect reseller and its provider both see Litware and its two CSP subscriptions.
    for label in ["Tailspin", "Northwind"] {
        let token = app.token(demo_tenant(label, &app), &["admin_agent"]);
        let data =
            app.data(&token, "{ customers { nodes { companyName subscriptions { totalCount } } } }", json!({})).await;
        assert_eq!(names(&data["customers"], "companyName"), ["Litware Inc."], "{label}");
        assert_eq!(data["customers"]["nodes"][0]["subscriptions"]["totalCount"], 2, "{label}");
    }
    let northwind = app.token(demo_tenant("Northwind", &app), &["admin_agent"]);
    let data = app
        .data(&northwind, "{ viewer { partner { resellers { nodes { name } } providers { totalCount } } } }", json!({}))
        .await;
    assert_eq!(names(&data["viewer"]["partner"]["resellers"], "name"), ["Tailspin Resellers"]);
    assert_eq!(data["viewer"]["partner"]["providers"]["totalCount"], 0);

    // A customer sees itself, all its subscriptions, its relationships (pending included) and the
    // partners named on them.
    let relecloud = app.token(demo_tenant("Relecloud", &app), &["reader"]);
    let data = app
        .data(
            &relecloud,
            "{ customers { nodes { companyName } } subscriptions { nodes { channel } }
               relationships { nodes { status partner { name } customer { companyName } } } partners { nodes { name } } }",
            json!({}),
        )
        .await;
    assert_eq!(names(&data["customers"], "companyName"), ["Relecloud"]);
    assert_eq!(names(&data["subscriptions"], "channel"), ["DIRECT"]);
    assert_eq!(data["relationships"]["nodes"][0]["status"], "PENDING");
    assert_eq!(data["relationships"]["nodes"][0]["partner"]["name"], "Fabrikam Cloud");
    assert_eq!(data["relationships"]["nodes"][0]["customer"]["companyName"], "Relecloud");
    assert_eq!(names(&data["partners"], "name"), ["Fabrikam Cloud"]);

    // The US Government partner sees its own customer only.
    let woodgrove = app.token(demo_tenant("Woodgrove", &app), &["admin_agent"]);
    let data = app.data(&woodgrove, "{ customers { nodes { companyName cloud } } }", json!({})).await;
    assert_eq!(names(&data["customers"], "companyName"), ["City of Springfield"]);
}

#[tokio::test]
async fn r1_expired_delegated_admin_grants_nothing_even_before_any_runner() {
    let app = TestApp::new().await;
    let seed = app.seed();
    let partner_tid = Uuid::new_v4();
    let p = seed.partner(partner_tid, "P", "p.example", PartnerType::DirectBill, Cloud::Public).await.unwrap();
    let c = seed.customer(Uuid::new_v4(), "C", "c.example", "US", Cloud::Public).await.unwrap();
    let expires = app.clock.now() + Duration::hours(1);
    seed.relationship(
        RelationshipKind::DelegatedAdmin,
        RelationshipStatus::Active,
        p.id,
        Some(&c),
        None,
        "admin_agent",
        Some(expires),
    )
    .await
    .unwrap();
    seed.subscription(
        NewSubscription::external(c.id, entity::enums::Channel::Direct, BillingModel::UsageBased, "D-1"),
        1,
    )
    .await
    .unwrap();
    let token = app.token(partner_tid, &["admin_agent"]);
    let query = "{ customers { totalCount } subscriptions { totalCount } relationships { nodes { status } }
                   active: relationships(filter: {status: ACTIVE}) { totalCount }
                   expired: relationships(filter: {status: EXPIRED}) { totalCount } }";
    let data = app.data(&token, query, json!({})).await;
    assert_eq!(data["customers"]["totalCount"], 1);
    assert_eq!(data["subscriptions"]["totalCount"], 1);
    assert_eq!(data["relationships"]["nodes"][0]["status"], "ACTIVE");
    assert_eq!(data["active"]["totalCount"], 1);

    app.clock.advance(Duration::hours(2));
    let data = app.data(&token, query, json!({})).await;
    assert_eq!(data["customers"]["totalCount"], 0, "an expired grant shows no customer");
    assert_eq!(data["subscriptions"]["totalCount"], 0, "an expired grant shows no subscription");
    assert_eq!(data["relationships"]["nodes"][0]["status"], "EXPIRED");
    assert_eq!(data["active"]["totalCount"], 0);
    assert_eq!(data["expired"]["totalCount"], 1);
}

#[tokio::test]
async fn r16_subscriptions_past_their_term_show_renewed_or_expired_at_read_time() {
    let app = TestApp::new().await;
    let seed = app.seed();
    let p = seed.partner(Uuid::new_v4(), "P", "p.example", PartnerType::DirectBill, Cloud::Public).await.unwrap();
    let c = seed.customer(Uuid::new_v4(), "C", "c.example", "US", Cloud::Public).await.unwrap();
    let mut renewing = NewSubscription::csp(c.id, p.id, None, BillingModel::LicenseBased);
    renewing.term_months = Some(1);
    let renewing = seed.subscription(renewing, 40).await.unwrap();
    let mut lapsing = NewSubscription::csp(c.id, p.id, None, BillingModel::LicenseBased);
    lapsing.term_months = Some(1);
    lapsing.auto_renew = false;
    seed.subscription(lapsing, 40).await.unwrap();
    let token = app.token(app.platform(), &["platform_admin"]);
    let data = app
        .data(
            &token,
            "{ subscriptions { nodes { status autoRenew termStart termEnd cancellationAllowedUntil } }
               expired: subscriptions(filter: {status: EXPIRED}) { totalCount }
               active: subscriptions(filter: {status: ACTIVE}) { totalCount } }",
            json!({}),
        )
        .await;
    let nodes = data["subscriptions"]["nodes"].as_array().unwrap();
    let now = app.clock.now();
    let renewed = &nodes[0];
    assert_eq!(renewed["status"], "ACTIVE");
    let term_start: chrono::DateTime<chrono::Utc> = renewed["termStart"].as_str().unwrap().parse().unwrap();
    let term_end: chrono::DateTime<chrono::Utc> = renewed["termEnd"].as_str().unwrap().parse().unwrap();
    assert!(term_start > renewing.term_start && term_start <= now && term_end > now, "rolled into the current term");
    let window: chrono::DateTime<chrono::Utc> = renewed["cancellationAllowedUntil"].as_str().unwrap().parse().unwrap();
    assert_eq!(window, term_start + Duration::hours(168), "a renewal opens a new cancellation window");
    assert_eq!(nodes[1]["status"], "EXPIRED");
    assert_eq!(data["expired"]["totalCount"], 1);
    assert_eq!(data["active"]["totalCount"], 1);
}

/// `access::rows` decodes customers and subscriptions by column position (for speed): on every
/// row of the demo world (all channels, optional columns both set and empty) it gives exactly what
/// SeaORM's decoding by column name gives.
#[tokio::test]
async fn rows_decoded_by_position_equal_rows_decoded_by_name() {
    use entity::{customer, subscription};
    use partnerhub::access::rows;
    use sea_orm::{ConnectionTrait, EntityTrait, QueryOrder, QueryTrait};

    let (app, _) = demo_app().await;
    let backend = app.db.get_database_backend();

    let by_name = subscription::Entity::find().order_by_asc(subscription::Column::Id).all(&app.db).await.unwrap();
    let statement = subscription::Entity::find().order_by_asc(subscription::Column::Id).build(backend);
    let rows = app.db.query_all_raw(statement).await.unwrap();
    let by_position: Vec<_> = rows.iter().map(|row| rows::subscription(row).unwrap()).collect();
    assert!(by_name.len() >= 10, "the demo world has subscriptions of every channel");
    assert!(by_name.iter().any(|s| s.partner_id.is_some()) && by_name.iter().any(|s| s.partner_id.is_none()));
    assert!(
        by_name.iter().any(|s| s.external_reference.is_some()) && by_name.iter().any(|s| s.migrated_from_id.is_some())
    );
    assert_eq!(by_position, by_name);

    let by_name = customer::Entity::find().order_by_asc(customer::Column::Id).all(&app.db).await.unwrap();
    let statement = customer::Entity::find().order_by_asc(customer::Column::Id).build(backend);
    let rows = app.db.query_all_raw(statement).await.unwrap();
    let by_position: Vec<_> = rows.iter().map(|row| rows::customer(row).unwrap()).collect();
    assert!(!by_name.is_empty());
    assert_eq!(by_position, by_name);
}

/// SQLite plans without statistics. Every relationship step of the visibility rule, in each of its
/// forms, must search relationships by a key it is given: the row's customer (the probes, and the
/// grants of a page's customers) or the caller as a party (the list of its own customers). The
/// probe once took `ix_relationship_expiry (status, …)` and read every ACTIVE relationship of the
/// database for every customer or subscription row it checked, which made a page's cost grow with
/// the whole table. PostgreSQL chooses by its statistics, which a test database does not have in a
/// representative form: there the tenant-size benchmark (`bench/tenant_size.py`) and the README's
/// `EXPLAIN ANALYZE` cover it.
///
/// The same statements bind no kind or status (they are written into the SQL): see `access::is`.
#[tokio::test]
async fn on_sqlite_visibility_searches_relationships_by_customer_or_party() {
    use entity::{customer, subscription};
    use partnerhub::access::{Scope, Viewer};
    use sea_orm::{
        ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait, Statement,
    };

    if crate::common::backend() != "sqlite" {
        return;
    }
    let (app, _) = demo_app().await;
    let backend = app.db.get_database_backend();
    let scope = Scope::of_viewer(Viewer::Partner { id: Uuid::now_v7(), tenant_id: Uuid::now_v7() }, chrono::Utc::now());
    let customers = [Uuid::now_v7(), Uuid::now_v7()];
    // `USING INDEX`, or `USING COVERING INDEX` when the index carries every column the step reads.
    let by_customer = "INDEX ix_relationship_customer (customer_id=?";
    let by_party = [
        "USING INDEX ix_relationship_partner (partner_id=?",
        "USING INDEX ix_relationship_provider (indirect_provider_id=?",
    ];
    let statements = [
        // A page of the caller's customers (the list form: the caller's own links).
        (scope.customers().order_by_asc(customer::Column::CompanyName).limit(51).build(backend), true),
        // A customer by id (the probe form).
        (
            customer::Entity::find()
                .filter(scope.customer_probe_condition())
                .filter(customer::Column::Id.eq(customers[0]))
                .build(backend),
            false,
        ),
        // The subscriptions of a few customers (the probe form, per subscription row).
        (
            subscription::Entity::find()
                .filter(scope.subscription_probe_condition())
                .filter(subscription::Column::CustomerId.is_in(customers))
                .build(backend),
            false,
        ),
        // A page of the caller's subscriptions (the list form).
        (scope.subscriptions().order_by_asc(subscription::Column::Id).limit(51).build(backend), false),
    ];
    for (statement, party) in statements {
        // No kind or status is bound: SQLite re-prepares, on every run, a statement that binds a
        // value compared with a column a partial index's `WHERE` names (relationship's kind and
        // status), to decide again whether the index applies.
        let bound_text: Vec<_> = statement
            .values
            .iter()
            .flat_map(|values| values.0.iter())
            .filter(|value| matches!(value, sea_orm::Value::String(_)))
            .collect();
        assert!(bound_text.is_empty(), "text bound in {}: {bound_text:?}", statement.sql);
        let explain = Statement {
            sql: format!("EXPLAIN QUERY PLAN {}", statement.sql),
            values: statement.values.clone(),
            db_backend: backend,
        };
        let plan: Vec<String> = app
            .db
            .query_all_raw(explain)
            .await
            .unwrap()
            .iter()
            .map(|row| row.try_get::<String>("", "detail").unwrap())
            .collect();
        let relationship_steps: Vec<&String> = plan.iter().filter(|step| step.contains("relationship")).collect();
        assert!(!relationship_steps.is_empty(), "no relationship step in {plan:?} for {}", statement.sql);
        for step in relationship_steps {
            let keyed = if party { by_party.iter().any(|p| step.contains(p)) } else { step.contains(by_customer) };
            assert!(keyed, "a relationship step does not search by its key: {step} (plan {plan:?})");
        }
    }
}

/// Plain fields of page nodes are answered in place (`graphql::plain`), without async-graphql's
/// future per field; through a fragment the same fields take async-graphql's own resolution. Every
/// field of `Customer` and `Subscription` that takes no argument and returns a scalar or an enum is
/// asked both ways, through `nodes` and `edges`, beside a nested connection and `__typename`: the
/// answers must be equal.
#[tokio::test]
async fn plain_fields_answer_as_async_graphql_does() {
    let (app, token) = demo_app().await;
    let schema = app
        .data(
            &token,
            "{ c: __type(name: \"Customer\") { fields { name args { name } type { kind ofType { kind } } } }
               s: __type(name: \"Subscription\") { fields { name args { name } type { kind ofType { kind } } } } }",
            json!({}),
        )
        .await;
    let plain = |ty: &str| -> String {
        let fields = schema[ty]["fields"].as_array().unwrap().iter().filter(|f| {
            let kind = match f["type"]["kind"].as_str().unwrap() {
                "NON_NULL" => f["type"]["ofType"]["kind"].as_str().unwrap(),
                kind => kind,
            };
            f["args"].as_array().unwrap().is_empty() && (kind == "SCALAR" || kind == "ENUM")
        });
        fields.map(|f| f["name"].as_str().unwrap()).collect::<Vec<_>>().join(" ")
    };
    let (customer, subscription) = (plain("c"), plain("s"));
    assert!(customer.contains("companyName") && customer.contains("cloud"), "{customer}");
    assert!(subscription.contains("termEnd") && subscription.contains("status"), "{subscription}");

    let query = |c: &str, s: &str| {
        format!(
            "{{ customers(first: 10) {{
                 nodes {{ __typename {c} subscriptions(first: 10) {{ nodes {{ __typename {s} }} }} }}
                 edges {{ node {{ {c} subscriptions(first: 10) {{ edges {{ node {{ {s} }} }} }} }} }} }} }}"
        )
    };
    let fast = app.data(&token, &query(&customer, &subscription), json!({})).await;
    let fallback = app
        .data(
            &token,
            &query(&format!("... on Customer {{ {customer} }}"), &format!("... on Subscription {{ {subscription} }}")),
            json!({}),
        )
        .await;
    let subscriptions: usize = fast["customers"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["subscriptions"]["nodes"].as_array().unwrap().len())
        .sum();
    assert_eq!(subscriptions, 10, "every demo subscription is in the answer");
    assert_eq!(fast["customers"]["nodes"][0]["__typename"], "Customer");
    assert_eq!(fast, fallback);

    // A field beside the plain ones that fails for each customer (a nested page after a cursor
    // that is not one): the same data and the same errors either way.
    let failing = |c: &str| {
        format!(
            "{{ customers(first: 3) {{ nodes {{ {c} subscriptions(first: 2, after: \"bad\") {{ nodes {{ id }} }} }} }} }}"
        )
    };
    let fast = app.gql_as(Some(&token), &failing("id companyName"), json!({})).await;
    let fallback = app.gql_as(Some(&token), &failing("... on Customer { id companyName }"), json!({})).await;
    assert_eq!(fast["errors"].as_array().map(Vec::len), Some(3), "one error per customer: {fast}");
    assert_eq!(fast["errors"][2]["path"], json!(["customers", "nodes", 2, "subscriptions"]), "{fast}");
    assert_eq!(fast["data"], fallback["data"]);
    // The same errors, at the same paths (the fragment only moves the columns of their locations).
    let without_locations = |answer: &Value| {
        let mut errors = answer["errors"].clone();
        errors.as_array_mut().unwrap().iter_mut().for_each(|e| _ = e.as_object_mut().unwrap().remove("locations"));
        errors
    };
    assert_eq!(without_locations(&fast), without_locations(&fallback));
}
