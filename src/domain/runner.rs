//! R16, the lifecycle runner: time-driven changes happen on time whether or not anyone reads.
//! Renewals and expiries of subscriptions, expiry of delegated-admin grants, of unanswered requests
//! and of transfers — each in its own transaction with its audit and outbox events (actor `system`).
//!
//! Several servers may run it against one database: every change is a versioned conditional update
//! of the row as read, so when two instances race for one row exactly one applies it and the other
//! gets a version conflict, skips the row and writes nothing (no double renewal).

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use entity::enums::{RelationshipStatus, SubscriptionStatus, TransferStatus};
use entity::{relationship, subscription, subscription_transfer};
use sea_orm::{ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use super::audit::{self, By, Change};
use super::lifecycle::effective_subscription;
use super::{TxFuture, Writer, idempotency, versioned};
use crate::clock::Clock;
use crate::error::{ApiError, ApiResult, Code};

/// Most rows of one kind handled per pass (the next pass takes the rest).
const BATCH: u64 = 500;

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RunReport {
    pub renewed: u64,
    pub expired_subscriptions: u64,
    pub expired_relationships: u64,
    pub expired_transfers: u64,
    /// Rows another instance (or a user) changed first.
    pub skipped: u64,
    pub purged_idempotency_keys: u64,
}

/// Applies every change that is due at `now`.
pub async fn run_once(
    writer: &Writer,
    platform_tenant: Uuid,
    now: DateTime<Utc>,
    window: Duration,
) -> ApiResult<RunReport> {
    let db = writer.connection();
    let mut report = RunReport::default();
    let by = By::system(platform_tenant, now);

    let due = subscription::Entity::find()
        .filter(subscription::Column::Status.eq(SubscriptionStatus::Active))
        .filter(subscription::Column::TermEnd.lte(now))
        .order_by_asc(subscription::Column::TermEnd)
        .limit(BATCH)
        .all(db)
        .await?;
    for outcome in apply_each(writer, due, |txn, stored| {
        let by = by.clone();
        Box::pin(async move {
            let mut after = effective_subscription(stored.clone(), now, window);
            after.updated_at = now;
            let renewed = after.status == SubscriptionStatus::Active;
            let after = versioned::update_subscription(txn, &stored, after, None).await?;
            let (action, event) = if renewed {
                ("subscription.renew", "SUBSCRIPTION_RENEWED")
            } else {
                ("subscription.expire", "SUBSCRIPTION_EXPIRED")
            };
            let change = Change::new(action, event, "Subscription", after.id)
                .partner(after.partner_id)
                .related_partner(after.reseller_id)
                .customer(after.customer_id)
                .diff(Some(&stored), &after);
            audit::record(txn, &by, change).await?;
            Ok(renewed)
        })
    })
    .await?
    {
        match outcome {
            Some(true) => report.renewed += 1,
            Some(false) => report.expired_subscriptions += 1,
            None => report.skipped += 1,
        }
    }

    let due = relationship::Entity::find()
        .filter(relationship::Column::Status.is_in([RelationshipStatus::Pending, RelationshipStatus::Active]))
        .filter(relationship::Column::ExpiresAt.lte(now))
        .order_by_asc(relationship::Column::ExpiresAt)
        .limit(BATCH)
        .all(db)
        .await?;
    for outcome in apply_each(writer, due, |txn, stored| {
        let by = by.clone();
        Box::pin(async move {
            let mut after = stored.clone();
            after.status = RelationshipStatus::Expired;
            after.updated_at = now;
            let after = versioned::update_relationship(txn, &stored, after, None).await?;
            let change = Change::new("relationship.expire", "RELATIONSHIP_EXPIRED", "Relationship", after.id)
                .partner(after.partner_id)
                .related_partner(after.indirect_provider_id)
                .customer(after.customer_id)
                .diff(Some(&stored), &after);
            audit::record(txn, &by, change).await
        })
    })
    .await?
    {
        if outcome.is_some() { report.expired_relationships += 1 } else { report.skipped += 1 }
    }

    let due = subscription_transfer::Entity::find()
        .filter(subscription_transfer::Column::Status.eq(TransferStatus::Pending))
        .filter(subscription_transfer::Column::ExpiresAt.lte(now))
        .order_by_asc(subscription_transfer::Column::ExpiresAt)
        .limit(BATCH)
        .all(db)
        .await?;
    for outcome in apply_each(writer, due, |txn, stored| {
        let by = by.clone();
        Box::pin(async move {
            let mut after = stored.clone();
            after.status = TransferStatus::Expired;
            after.updated_at = now;
            let after = versioned::update_transfer(txn, &stored, after, None).await?;
            let change = Change::new("transfer.expire", "TRANSFER_EXPIRED", "SubscriptionTransfer", after.id)
                .partner(after.source_partner_id)
                .related_partner(after.target_partner_id)
                .customer(after.customer_id)
                .diff(Some(&stored), &after);
            audit::record(txn, &by, change).await
        })
    })
    .await?
    {
        if outcome.is_some() { report.expired_transfers += 1 } else { report.skipped += 1 }
    }

    report.purged_idempotency_keys = idempotency::purge(db, now).await?;
    Ok(report)
}

/// Applies `step` to each row in its own transaction; `None` for rows someone else changed first.
async fn apply_each<M, T, F>(writer: &Writer, rows: Vec<M>, step: F) -> ApiResult<Vec<Option<T>>>
where
    M: Send,
    T: Send,
    F: for<'a> Fn(&'a DatabaseTransaction, M) -> TxFuture<'a, T> + Sync,
{
    let mut outcomes = Vec::with_capacity(rows.len());
    for row in rows {
        let step = &step;
        outcomes.push(skip_conflicts(writer.write(move |txn| step(txn, row)).await)?);
    }
    Ok(outcomes)
}

/// A version conflict means someone else changed the row first: skip it.
fn skip_conflicts<T>(outcome: ApiResult<T>) -> ApiResult<Option<T>> {
    match outcome {
        Ok(value) => Ok(Some(value)),
        Err(ApiError { code: Code::VersionConflict, .. }) => Ok(None),
        Err(err) => Err(err),
    }
}

/// Runs [`run_once`] every `interval` on the server's clock until the process ends; errors are
/// logged and retried at the next tick.
pub fn spawn(
    writer: Writer,
    platform_tenant: Uuid,
    clock: Clock,
    interval: StdDuration,
    window: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            match run_once(&writer, platform_tenant, clock.now(), window).await {
                Ok(report) if report != RunReport::default() => tracing::info!(?report, "lifecycle changes applied"),
                Ok(_) => {}
                Err(err) => {
                    let cause = err.source.as_ref().map(|c| format!("{c:#}")).unwrap_or_default();
                    tracing::error!(code = err.code.as_str(), error = cause, "lifecycle pass failed");
                }
            }
        }
    })
}
