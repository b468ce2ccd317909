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
use sea_orm::{
    ColumnTrait, DatabaseConnection, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use super::audit::{self, By, Change};
use super::lifecycle::effective_subscription;
use super::{TxFuture, Writer, idempotency, versioned};
use crate::clock::Clock;
use crate::error::{ApiError, ApiResult, Code};
use crate::events::feed::Commits;

/// Most rows of one kind handled per pass (the next pass takes the rest).
const BATCH: u64 = 500;

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RunReport {
    pub renewed: u64,
    pub expired_subscriptions: u64,
    pub expired_relationships: u64,
    pub expired_transfers: u64,
    /// Rows another instance (or a user) changed first: left alone, the next pass looks again.
    pub skipped: u64,
    /// Rows whose change failed for another reason (logged; the next pass tries again).
    pub failed: u64,
    pub purged_idempotency_keys: u64,
}

/// Applies every change that is due at `now` (at most [`BATCH`] rows of each kind), each in its own
/// transaction. `window` is the cancellation window a renewed CSP license-based term gets;
/// `commits` wakes the instance's event feed after each ([`crate::events::feed::Feed::commits`]).
pub async fn run_once(
    db: &DatabaseConnection,
    commits: &Commits,
    platform_tenant: Uuid,
    now: DateTime<Utc>,
    window: Duration,
) -> ApiResult<RunReport> {
    let writer = &Writer::new(db.clone(), commits.clone());
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
            let (_, renewed) = apply_due_subscription(txn, &by, stored, now, window).await?;
            Ok(renewed.unwrap_or(false))
        })
    })
    .await?
    {
        match outcome {
            Outcome::Applied(true) => report.renewed += 1,
            Outcome::Applied(false) => report.expired_subscriptions += 1,
            other => report.count_unapplied(&other),
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
        match outcome {
            Outcome::Applied(()) => report.expired_relationships += 1,
            other => report.count_unapplied(&other),
        }
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
        match outcome {
            Outcome::Applied(()) => report.expired_transfers += 1,
            other => report.count_unapplied(&other),
        }
    }

    report.purged_idempotency_keys = idempotency::purge(db, now).await?;
    Ok(report)
}

/// R16: the time-driven change due on one subscription at `now` (a renewal, or an expiry), applied as
/// a change of its own — audit and outbox events by `by` (the system) — in the caller's transaction.
/// The runner applies it, and so does every write that finds it due before the runner has passed, so
/// that a user's change never carries it. Returns the row as stored afterwards and whether it renewed
/// (`None` when nothing was due).
pub async fn apply_due_subscription(
    txn: &DatabaseTransaction,
    by: &By,
    stored: subscription::Model,
    now: DateTime<Utc>,
    window: Duration,
) -> ApiResult<(subscription::Model, Option<bool>)> {
    if !super::lifecycle::is_due(&stored, now) {
        return Ok((stored, None));
    }
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
    audit::record(txn, by, change).await?;
    Ok((after, Some(renewed)))
}

/// What became of one due row.
enum Outcome<T> {
    Applied(T),
    /// Someone else changed the row first (version conflict): nothing written.
    Skipped,
    /// The change failed otherwise (logged): nothing written.
    Failed,
}

impl RunReport {
    fn count_unapplied<T>(&mut self, outcome: &Outcome<T>) {
        match outcome {
            Outcome::Applied(_) => {}
            Outcome::Skipped => self.skipped += 1,
            Outcome::Failed => self.failed += 1,
        }
    }
}

/// Applies `step` to each row in its own transaction. A version conflict means another instance (or
/// a user) changed the row first: skipped silently. Any other failure is logged and the row left for
/// the next pass, so one bad row never holds up the others.
async fn apply_each<M, T, F>(writer: &Writer, rows: Vec<M>, step: F) -> ApiResult<Vec<Outcome<T>>>
where
    M: Send,
    T: Send,
    F: for<'a> Fn(&'a DatabaseTransaction, M) -> TxFuture<'a, T> + Sync,
{
    let mut outcomes = Vec::with_capacity(rows.len());
    for row in rows {
        let step = &step;
        outcomes.push(match writer.write(move |txn| step(txn, row)).await {
            Ok(value) => Outcome::Applied(value),
            Err(ApiError { code: Code::VersionConflict, .. }) => Outcome::Skipped,
            Err(err) => {
                log_error(&err, "lifecycle change failed; retried at the next pass");
                Outcome::Failed
            }
        });
    }
    Ok(outcomes)
}

fn log_error(err: &ApiError, what: &str) {
    let cause = err.source.as_ref().map(|c| format!("{c:#}")).unwrap_or_default();
    tracing::error!(code = err.code.as_str(), message = %err.message, error = cause, "{what}");
}

/// Runs [`run_once`] every `interval` on the server's clock until `stop` is cancelled (between passes). Errors are
/// logged and retried at the next tick; each pass runs in its own task, so not even a panic stops
/// the loop.
pub fn spawn(
    stop: tokio_util::sync::CancellationToken,
    db: DatabaseConnection,
    commits: Commits,
    platform_tenant: Uuid,
    clock: Clock,
    interval: StdDuration,
    window: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                () = stop.cancelled() => break,
            }
            let (db, commits, now) = (db.clone(), commits.clone(), clock.now());
            let pass = tokio::spawn(async move { run_once(&db, &commits, platform_tenant, now, window).await });
            match pass.await {
                Ok(Ok(report)) if report != RunReport::default() => {
                    tracing::info!(?report, "lifecycle changes applied")
                }
                Ok(Ok(_)) => {}
                Ok(Err(err)) => log_error(&err, "lifecycle pass failed"),
                Err(join) => tracing::error!(error = %join, "lifecycle pass panicked"),
            }
        }
    })
}
