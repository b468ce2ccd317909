//! Time-driven state (R16): what the clock has already ended is never shown, whether or not the
//! lifecycle runner has passed. This module is the one place that says what a row's state is *now*,
//! both for a loaded row (`effective_*`) and as a database condition (`*_status_is`), so reads and
//! filters agree.

use chrono::{DateTime, Months, Utc};
use entity::enums::{RelationshipStatus, SubscriptionStatus, TransferStatus};
use entity::{relationship, subscription, subscription_transfer};
use sea_orm::{ColumnTrait, Condition};

/// How long an unanswered delegated-admin request stays pending.
pub const RELATIONSHIP_REQUEST_DAYS: i64 = 90;
/// How long an unanswered transfer stays pending.
pub const TRANSFER_REQUEST_DAYS: i64 = 30;

/// The status of a relationship at `now`: a PENDING request or ACTIVE grant past `expires_at` is EXPIRED.
pub fn effective_relationship_status(r: &relationship::Model, now: DateTime<Utc>) -> RelationshipStatus {
    match (r.status, r.expires_at) {
        (RelationshipStatus::Pending | RelationshipStatus::Active, Some(at)) if at <= now => {
            RelationshipStatus::Expired
        }
        (status, _) => status,
    }
}

/// Condition: the relationship's status at `now` is `status`.
pub fn relationship_status_is(status: RelationshipStatus, now: DateTime<Utc>) -> Condition {
    use relationship::Column as C;
    let live = Condition::any().add(C::ExpiresAt.is_null()).add(C::ExpiresAt.gt(now));
    match status {
        RelationshipStatus::Pending | RelationshipStatus::Active => {
            Condition::all().add(C::Status.eq(status)).add(live)
        }
        RelationshipStatus::Expired => Condition::any().add(C::Status.eq(status)).add(
            Condition::all()
                .add(C::Status.is_in([RelationshipStatus::Pending, RelationshipStatus::Active]))
                .add(C::ExpiresAt.lte(now)),
        ),
        RelationshipStatus::Declined | RelationshipStatus::Terminated => Condition::all().add(C::Status.eq(status)),
    }
}

/// The status of a transfer at `now`.
pub fn effective_transfer_status(t: &subscription_transfer::Model, now: DateTime<Utc>) -> TransferStatus {
    if t.status == TransferStatus::Pending && t.expires_at <= now { TransferStatus::Expired } else { t.status }
}

/// Condition: the transfer's status at `now` is `status`.
pub fn transfer_status_is(status: TransferStatus, now: DateTime<Utc>) -> Condition {
    use subscription_transfer::Column as C;
    match status {
        TransferStatus::Pending => Condition::all().add(C::Status.eq(status)).add(C::ExpiresAt.gt(now)),
        TransferStatus::Expired => Condition::any()
            .add(C::Status.eq(status))
            .add(Condition::all().add(C::Status.eq(TransferStatus::Pending)).add(C::ExpiresAt.lte(now))),
        _ => Condition::all().add(C::Status.eq(status)),
    }
}

/// Adds whole months to an instant (the end of a term).
pub fn add_months(at: DateTime<Utc>, months: i32) -> DateTime<Utc> {
    at.checked_add_months(Months::new(months.max(0) as u32)).unwrap_or(at)
}

/// R16: whether the clock has something to do to `s` (a renewal or an expiry at `termEnd`).
pub fn is_due(s: &subscription::Model, now: DateTime<Utc>) -> bool {
    s.status == SubscriptionStatus::Active && s.term_end.is_some_and(|end| end <= now)
}

/// A subscription as it stands at `now`: an ACTIVE one past `termEnd` has renewed (new term, new
/// cancellation window) when `autoRenew` is on, and is EXPIRED otherwise.
pub fn effective_subscription(
    mut s: subscription::Model,
    now: DateTime<Utc>,
    cancellation_window: chrono::Duration,
) -> subscription::Model {
    if !is_due(&s, now) {
        return s;
    }
    let Some(mut end) = s.term_end else { return s };
    match (s.auto_renew, s.term_months) {
        (true, Some(months)) if months > 0 => {
            let mut start = s.term_start;
            while end <= now {
                start = end;
                end = add_months(start, months);
            }
            s.term_start = start;
            s.term_end = Some(end);
            if s.cancellation_allowed_until.is_some() {
                s.cancellation_allowed_until = Some(start + cancellation_window);
            }
        }
        _ => s.status = SubscriptionStatus::Expired,
    }
    s
}

/// Condition: the subscription's status at `now` is `status`.
pub fn subscription_status_is(status: SubscriptionStatus, now: DateTime<Utc>) -> Condition {
    use subscription::Column as C;
    let lapsed = Condition::all()
        .add(C::Status.eq(SubscriptionStatus::Active))
        .add(C::TermEnd.is_not_null())
        .add(C::TermEnd.lte(now))
        .add(C::AutoRenew.eq(false));
    match status {
        SubscriptionStatus::Active => Condition::all().add(C::Status.eq(status)).add(lapsed.not()),
        SubscriptionStatus::Expired => Condition::any().add(C::Status.eq(status)).add(lapsed),
        _ => Condition::all().add(C::Status.eq(status)),
    }
}
