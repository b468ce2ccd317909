//! R16: the lifecycle runner makes durable what the clock has done — renewals, expiries of
//! subscriptions, grants, requests and transfers — each with an audit event by `system`, once even
//! when several runners race.

use chrono::Duration;
use entity::enums::{
    BillingModel, Channel, Cloud, PartnerType, RelationshipKind, RelationshipStatus, SubscriptionStatus, TransferStatus,
};
use entity::{relationship, subscription, subscription_transfer};
use partnerhub::domain::runner::{RunReport, run_once, spawn};
use partnerhub::events::feed::Commits;
use partnerhub::seed::NewSubscription;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::TestApp;
use crate::write_customers::CREATE_CUSTOMER;

const WINDOW: Duration = Duration::hours(168);

/// Everything time-dependent, as the platform reads it through the API.
const WORLD: &str =
    "{ subscriptions(first: 100) { nodes { id status termStart termEnd autoRenew cancellationAllowedUntil } }
    relationships(first: 100) { nodes { id status expiresAt } } transfers(first: 100) { nodes { id status } } }";

async fn world(app: &TestApp) -> Value {
    let platform = app.token(app.platform(), &["platform_admin"]);
    app.data(&platform, WORLD, json!({})).await
}

#[tokio::test]
async fn r16_runner_renews_expires_and_records_each_change_once() {
    let app = TestApp::new().await;
    let seed = app.seed();
    let p = seed.partner(Uuid::new_v4(), "P", "p.example", PartnerType::DirectBill, Cloud::Public).await.unwrap();
    let q = seed.partner(Uuid::new_v4(), "Q", "q.example", PartnerType::DirectBill, Cloud::Public).await.unwrap();
    let c = seed.customer(Uuid::new_v4(), "C", "c.example", "US", Cloud::Public).await.unwrap();
    let mut renewing = NewSubscription::csp(c.id, p.id, None, BillingModel::LicenseBased);
    renewing.term_months = Some(1);
    let renewing = seed.subscription(renewing, 0).await.unwrap();
    let mut lapsing = NewSubscription::csp(c.id, p.id, None, BillingModel::LicenseBased);
    lapsing.term_months = Some(1);
    lapsing.auto_renew = false;
    let lapsing = seed.subscription(lapsing, 0).await.unwrap();
    let usage = seed.subscription(NewSubscription::csp(c.id, p.id, None, BillingModel::UsageBased), 0).await.unwrap();
    let external = seed
        .subscription(NewSubscription::external(c.id, Channel::Direct, BillingModel::UsageBased, "D"), 0)
        .await
        .unwrap();
    let now = app.clock.now();
    let grant = seed
        .relationship(
            RelationshipKind::DelegatedAdmin,
            RelationshipStatus::Active,
            p.id,
            Some(&c),
            None,
            "admin_agent",
            Some(now + Duration::days(10)),
        )
        .await
        .unwrap();
    let request = seed
        .relationship(
            RelationshipKind::Reseller,
            RelationshipStatus::Pending,
            q.id,
            Some(&c),
            None,
            "",
            Some(now + Duration::days(90)),
        )
        .await
        .unwrap();
    let transfer = seed.transfer(&usage, q.id, TransferStatus::Pending, now + Duration::days(30)).await.unwrap();
    // An idempotency key (kept 48 hours).
    let platform = app.token(app.platform(), &["platform_admin"]);
    let input = json!({"companyName": "D", "domain": "d.example", "country": "US", "idempotencyKey": "k-1"});
    app.data(&platform, CREATE_CUSTOMER, json!({"input": input})).await;

    // Nothing is due yet.
    let report = run_once(&app.db, &app.state.feed.commits(), app.platform(), app.clock.now(), WINDOW).await.unwrap();
    assert_eq!(report, RunReport::default());

    // 100 days later: one renewal (several terms rolled), one expiry, grant, request and transfer expired.
    app.clock.advance(Duration::days(100));
    let at = app.clock.now();
    let read_before = world(&app).await;
    let report = run_once(&app.db, &app.state.feed.commits(), app.platform(), at, WINDOW).await.unwrap();
    assert_eq!(report.renewed, 1);
    assert_eq!(report.expired_subscriptions, 1);
    assert_eq!(report.expired_relationships, 2);
    assert_eq!(report.expired_transfers, 1);
    assert_eq!((report.skipped, report.failed), (0, 0));
    assert_eq!(report.purged_idempotency_keys, 1);
    assert_eq!(world(&app).await, read_before, "the stored state is what reads showed before the runner passed");

    let renewed = subscription::Entity::find_by_id(renewing.id).one(&app.db).await.unwrap().unwrap();
    assert_eq!(renewed.status, SubscriptionStatus::Active);
    assert!(renewed.term_start <= at && renewed.term_end.unwrap() > at, "renewed into the current term");
    assert_eq!(renewed.cancellation_allowed_until, Some(renewed.term_start + WINDOW), "a new cancellation window");
    let shown = partnerhub::domain::lifecycle::effective_subscription(renewing.clone(), at, WINDOW);
    assert_eq!(
        (renewed.term_start, renewed.term_end, renewed.cancellation_allowed_until),
        (shown.term_start, shown.term_end, shown.cancellation_allowed_until),
        "the runner stores what reads already showed"
    );
    let lapsed = subscription::Entity::find_by_id(lapsing.id).one(&app.db).await.unwrap().unwrap();
    assert_eq!(lapsed.status, SubscriptionStatus::Expired);
    for id in [grant.id, request.id] {
        let r = relationship::Entity::find_by_id(id).one(&app.db).await.unwrap().unwrap();
        assert_eq!(r.status, RelationshipStatus::Expired);
    }
    let t = subscription_transfer::Entity::find_by_id(transfer.id).one(&app.db).await.unwrap().unwrap();
    assert_eq!(t.status, TransferStatus::Expired);
    let untouched = subscription::Entity::find_by_id(external.id).one(&app.db).await.unwrap().unwrap();
    assert_eq!(untouched.version, 1, "subscriptions without a term are left alone");

    // Each change has its audit event by `system` (and its outbox event); a second pass does nothing.
    let data = app.data(&platform, "{ auditEvents(first: 100) { nodes { action actorSubject } } }", json!({})).await;
    let mut actions: Vec<String> = data["auditEvents"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actorSubject"] == "system")
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    actions.sort();
    assert_eq!(
        actions,
        ["relationship.expire", "relationship.expire", "subscription.expire", "subscription.renew", "transfer.expire"]
    );
    let mut types: Vec<String> = entity::outbox_event::Entity::find()
        .filter(entity::outbox_event::Column::OccurredAt.eq(at))
        .all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event_type)
        .collect();
    types.sort();
    assert_eq!(
        types,
        [
            "RELATIONSHIP_EXPIRED",
            "RELATIONSHIP_EXPIRED",
            "SUBSCRIPTION_EXPIRED",
            "SUBSCRIPTION_RENEWED",
            "TRANSFER_EXPIRED"
        ]
    );
    let audits = entity::audit_event::Entity::find().count(&app.db).await.unwrap();
    assert_eq!(
        run_once(&app.db, &app.state.feed.commits(), app.platform(), at, WINDOW).await.unwrap(),
        RunReport::default()
    );
    assert_eq!(entity::audit_event::Entity::find().count(&app.db).await.unwrap(), audits, "idempotent");
    assert_eq!(world(&app).await, read_before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn r16_two_runners_racing_renew_a_subscription_exactly_once() {
    let app = TestApp::new().await;
    let seed = app.seed();
    let p = seed.partner(Uuid::new_v4(), "P", "p.example", PartnerType::DirectBill, Cloud::Public).await.unwrap();
    let c = seed.customer(Uuid::new_v4(), "C", "c.example", "US", Cloud::Public).await.unwrap();
    for _ in 0..10 {
        let mut s = NewSubscription::csp(c.id, p.id, None, BillingModel::LicenseBased);
        s.term_months = Some(1);
        seed.subscription(s, 40).await.unwrap();
    }
    // Two server instances: each pass from its own task (true parallelism on this runtime).
    let (a, b, tenant) = (app.db.clone(), app.db.clone(), app.platform());
    let now = app.clock.now();
    let (ra, rb) = tokio::join!(
        tokio::spawn(async move { run_once(&a, &Commits::none(), tenant, now, WINDOW).await }),
        tokio::spawn(async move { run_once(&b, &Commits::none(), tenant, now, WINDOW).await })
    );
    let (ra, rb) = (ra.unwrap().unwrap(), rb.unwrap().unwrap());
    assert_eq!(ra.renewed + rb.renewed, 10, "{ra:?} {rb:?}");
    assert_eq!((ra.failed, rb.failed), (0, 0), "a losing runner skips, it does not fail");
    let renewals = entity::outbox_event::Entity::find()
        .filter(entity::outbox_event::Column::EventType.eq("SUBSCRIPTION_RENEWED"))
        .count(&app.db)
        .await
        .unwrap();
    assert_eq!(renewals, 10, "one outbox event per renewal");
    let platform = app.token(app.platform(), &["platform_admin"]);
    let data = app
        .data(&platform, "{ auditEvents(filter: {action: \"subscription.renew\"}) { totalCount } }", json!({}))
        .await;
    assert_eq!(data["auditEvents"]["totalCount"], 10, "one audit event per renewal, none doubled");
    let rows = subscription::Entity::find().all(&app.db).await.unwrap();
    assert!(rows.iter().all(|s| s.version == 2), "each subscription changed exactly once");
}

#[tokio::test]
async fn r16_the_spawned_runner_applies_changes_on_time_without_any_read() {
    let app = TestApp::new().await;
    let seed = app.seed();
    let p = seed.partner(Uuid::new_v4(), "P", "p.example", PartnerType::DirectBill, Cloud::Public).await.unwrap();
    let c = seed.customer(Uuid::new_v4(), "C", "c.example", "US", Cloud::Public).await.unwrap();
    let mut lapsing = NewSubscription::csp(c.id, p.id, None, BillingModel::LicenseBased);
    lapsing.term_months = Some(1);
    lapsing.auto_renew = false;
    let lapsing = seed.subscription(lapsing, 0).await.unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let runner = spawn(
        stop.clone(),
        app.db.clone(),
        app.state.feed.commits(),
        app.platform(),
        app.clock.clone(),
        std::time::Duration::from_millis(20),
        WINDOW,
    );
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let row = subscription::Entity::find_by_id(lapsing.id).one(&app.db).await.unwrap().unwrap();
    assert_eq!(row.status, SubscriptionStatus::Active, "nothing is due yet");

    app.clock.advance(Duration::days(40));
    let mut status = row.status;
    for _ in 0..250 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        status = subscription::Entity::find_by_id(lapsing.id).one(&app.db).await.unwrap().unwrap().status;
        if status == SubscriptionStatus::Expired {
            break;
        }
    }
    assert!(!runner.is_finished(), "the runner keeps running");
    stop.cancel();
    tokio::time::timeout(std::time::Duration::from_secs(5), runner)
        .await
        .expect("the runner stops between passes when the server shuts down")
        .unwrap();
    assert_eq!(status, SubscriptionStatus::Expired, "the runner made the expiry durable");
    let expiries = entity::audit_event::Entity::find()
        .filter(entity::audit_event::Column::Action.eq("subscription.expire"))
        .filter(entity::audit_event::Column::ActorSubject.eq("system"))
        .count(&app.db)
        .await
        .unwrap();
    assert_eq!(expiries, 1);
}

const SELL_LICENSE: &str =
    "mutation($i: CreateSubscriptionInput!) { createSubscription(input: $i) { subscription { id version termEnd } } }";
const UPDATE: &str = "mutation($i: UpdateSubscriptionInput!) { updateSubscription(input: $i) {
    subscription { id version status quantity autoRenew termStart termEnd } } }";

/// The audit events of one target, in order.
async fn audits_of(app: &TestApp, target: Uuid) -> Vec<entity::audit_event::Model> {
    use sea_orm::QueryOrder;
    entity::audit_event::Entity::find()
        .filter(entity::audit_event::Column::TargetId.eq(target))
        .order_by_asc(entity::audit_event::Column::Id)
        .all(&app.db)
        .await
        .unwrap()
}

fn uuid_of(id: &Value) -> Uuid {
    partnerhub::graphql::ids::decode_any(id.as_str().unwrap()).unwrap().1
}

#[tokio::test]
async fn r16_a_write_after_term_end_records_the_renewal_first_as_its_own_event() {
    let app = TestApp::new().await;
    let seed = app.seed();
    let ptid = Uuid::new_v4();
    seed.partner(ptid, "P", "p.example", PartnerType::DirectBill, Cloud::Public).await.unwrap();
    let partner = app.token(ptid, &["admin_agent"]);
    let input = json!({"companyName": "C", "domain": "c.example", "country": "US"});
    let customer =
        app.data(&partner, CREATE_CUSTOMER, json!({"input": input})).await["createCustomer"]["customer"]["id"].clone();
    let sold = app
        .data(&partner, SELL_LICENSE, json!({"i": {"customerId": customer, "offerId": "M365", "offerName": "M365", "billingModel": "LICENSE_BASED", "quantity": 5, "termMonths": 1}}))
        .await["createSubscription"]["subscription"]
        .clone();
    let id = uuid_of(&sold["id"]);

    // The term ends; the runner has not passed. The partner raises the seats at the version it read.
    app.clock.advance(Duration::days(40));
    let data = app
        .data(&partner, UPDATE, json!({"i": {"id": sold["id"], "expectedVersion": sold["version"], "quantity": 7}}))
        .await;
    let s = &data["updateSubscription"]["subscription"];
    assert_eq!((s["status"].as_str(), s["quantity"].as_i64()), (Some("ACTIVE"), Some(7)));
    assert_ne!(s["termEnd"], sold["termEnd"], "renewed");
    assert_eq!(s["version"], sold["version"].as_i64().unwrap() + 2, "the renewal and the update, each a version");

    let audits = audits_of(&app, id).await;
    let actions: Vec<(&str, &str)> = audits.iter().map(|a| (a.action.as_str(), a.actor_subject.as_str())).collect();
    assert_eq!(
        actions,
        [("subscription.create", "test-user"), ("subscription.renew", "system"), ("subscription.update", "test-user")]
    );
    assert_eq!(audits[1].actor_tenant_id, app.platform(), "the system acts as the platform, as the runner does");
    let update = &audits[2].details;
    assert!(update.get("quantity").is_some(), "{update}");
    assert!(
        update.get("term_end").is_none() && update.get("term_start").is_none(),
        "the user's change carries only its own fields: {update}"
    );
    let renewed = entity::outbox_event::Entity::find()
        .filter(entity::outbox_event::Column::EventType.eq("SUBSCRIPTION_RENEWED"))
        .filter(entity::outbox_event::Column::NodeId.eq(id))
        .count(&app.db)
        .await
        .unwrap();
    assert_eq!(renewed, 1);
    // The runner then finds nothing left to do for it.
    let report = run_once(&app.db, &app.state.feed.commits(), app.platform(), app.clock.now(), WINDOW).await.unwrap();
    assert_eq!(report.renewed, 0);
}

#[tokio::test]
async fn r16_registering_a_subscription_whose_term_has_ended_shows_the_state_the_clock_gives() {
    let app = TestApp::new().await;
    let seed = app.seed();
    let ctid = Uuid::new_v4();
    let c = seed.customer(ctid, "C", "c.example", "US", Cloud::Public).await.unwrap();
    let owner = app.token(ctid, &["global_admin"]);
    let customer = partnerhub::graphql::ids::encode(partnerhub::graphql::ids::NodeType::Customer, c.id);
    let now = app.clock.now();
    let register = "mutation($i: RegisterExternalSubscriptionInput!) { registerExternalSubscription(input: $i) { subscription { id status } } }";
    let input = json!({"i": {"customerId": customer, "channel": "DIRECT", "externalReference": "D-1", "offerId": "O", "offerName": "Office", "billingModel": "LICENSE_BASED", "quantity": 3,
        "termStart": now - Duration::days(400), "termEnd": now - Duration::days(35), "autoRenew": true}});
    let data = app.data(&owner, register, input).await;
    let s = &data["registerExternalSubscription"]["subscription"];
    assert_eq!(s["status"], "EXPIRED", "{data}");
    let read = app.data(&owner, "query($id: ID!) { subscription(id: $id) { status } }", json!({"id": s["id"]})).await;
    assert_eq!(read["subscription"]["status"], "EXPIRED");
    let actions: Vec<String> = audits_of(&app, uuid_of(&s["id"])).await.into_iter().map(|a| a.action).collect();
    assert_eq!(actions, ["subscription.register", "subscription.expire"], "the expiry is its own event");
}
