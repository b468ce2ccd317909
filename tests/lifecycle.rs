//! R16: the lifecycle runner makes durable what the clock has done — renewals, expiries of
//! subscriptions, grants, requests and transfers — each with an audit event by `system`, once even
//! when several runners race.

use chrono::Duration;
use entity::enums::{
    BillingModel, Channel, Cloud, PartnerType, RelationshipKind, RelationshipStatus, SubscriptionStatus, TransferStatus,
};
use entity::{relationship, subscription, subscription_transfer};
use partnerhub::domain::Writer;
use partnerhub::domain::runner::{RunReport, run_once};
use partnerhub::seed::NewSubscription;
use sea_orm::EntityTrait;
use serde_json::json;
use uuid::Uuid;

use crate::common::TestApp;

const WINDOW: Duration = Duration::hours(168);

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
    let writer = Writer::new(app.db.clone());

    // Nothing is due yet.
    let report = run_once(&writer, app.platform(), app.clock.now(), WINDOW).await.unwrap();
    assert_eq!(report, RunReport::default());

    // 100 days later: one renewal (several terms rolled), one expiry, grant, request and transfer expired.
    app.clock.advance(Duration::days(100));
    let at = app.clock.now();
    let report = run_once(&writer, app.platform(), at, WINDOW).await.unwrap();
    assert_eq!(report.renewed, 1);
    assert_eq!(report.expired_subscriptions, 1);
    assert_eq!(report.expired_relationships, 2);
    assert_eq!(report.expired_transfers, 1);

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

    // Each change has its audit event by `system`; a second pass does nothing.
    let platform = app.token(app.platform(), &["platform_admin"]);
    let data = app.data(&platform, "{ auditEvents { nodes { action actorSubject } } }", json!({})).await;
    let mut actions: Vec<String> = data["auditEvents"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .inspect(|e| assert_eq!(e["actorSubject"], "system"))
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    actions.sort();
    assert_eq!(
        actions,
        ["relationship.expire", "relationship.expire", "subscription.expire", "subscription.renew", "transfer.expire"]
    );
    assert_eq!(run_once(&writer, app.platform(), at, WINDOW).await.unwrap(), RunReport::default());
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
    let (a, b) = (Writer::new(app.db.clone()), Writer::new(app.db.clone()));
    let now = app.clock.now();
    let (ra, rb) = tokio::join!(run_once(&a, app.platform(), now, WINDOW), run_once(&b, app.platform(), now, WINDOW));
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert_eq!(ra.renewed + rb.renewed, 10, "{ra:?} {rb:?}");
    let platform = app.token(app.platform(), &["platform_admin"]);
    let data = app
        .data(&platform, "{ auditEvents(filter: {action: \"subscription.renew\"}) { totalCount } }", json!({}))
        .await;
    assert_eq!(data["auditEvents"]["totalCount"], 10, "one audit event per renewal, none doubled");
    let rows = subscription::Entity::find().all(&app.db).await.unwrap();
    assert!(rows.iter().all(|s| s.version == 2), "each subscription changed exactly once");
}
