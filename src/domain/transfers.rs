//! Subscription transfers between partners of record: R7 (license-based subscriptions cannot switch)
//! and R8 (usage-based ones can: the target asks, the source's `admin_agent` accepts or rejects,
//! the target may withdraw, unanswered it expires after 30 days; at most one pending per
//! subscription; acceptance switches the partner of record in the same transaction).

use chrono::Duration;
use entity::enums::{BillingModel, Channel, RelationshipKind, RelationshipStatus, SubscriptionStatus, TransferStatus};
use entity::{customer, partner, relationship, subscription, subscription_transfer};
use sea_orm::{ActiveModelTrait, ColumnTrait, DatabaseTransaction, EntityTrait, IntoActiveModel, QueryFilter};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use super::audit::{self, By, Change};
use super::idempotency::{self, Claim};
use super::inputs::IdempotencyKey;
use super::lifecycle::{TRANSFER_REQUEST_DAYS, effective_subscription, effective_transfer_status};
use super::{Actor, Writer, rules, versioned};
use crate::auth::{Role, Tenant};
use crate::error::{ApiError, ApiResult, Code};

/// `requestSubscriptionTransfer` input.
#[derive(Debug, Clone, Serialize)]
pub struct RequestTransfer {
    pub subscription_id: Uuid,
    #[serde(skip)]
    pub idempotency_key: Option<IdempotencyKey>,
}

fn change_for(action: &'static str, event: &'static str, t: &subscription_transfer::Model) -> Change {
    Change::new(action, event, "SubscriptionTransfer", t.id)
        .partner(t.source_partner_id)
        .related_partner(t.target_partner_id)
        .customer(t.customer_id)
}

/// The target partner asks to become partner of record of a usage-based subscription (R6, R7, R8, R14, R17).
pub async fn request(
    writer: &Writer,
    actor: &Actor,
    input: RequestTransfer,
) -> ApiResult<subscription_transfer::Model> {
    let target = actor.partner(&[Role::AdminAgent, Role::SalesAgent])?.clone();
    rules::r17_not_suspended(&target)?;
    rules::r6_may_transact(&target)?;
    let actor = actor.clone();
    writer
        .write(move |txn| {
            Box::pin(async move {
                if let Some(key) = &input.idempotency_key {
                    let hash = idempotency::request_hash("requestSubscriptionTransfer", &input);
                    if let Claim::Replay(response) = idempotency::claim(
                        txn,
                        actor.principal.tenant_id,
                        key,
                        "requestSubscriptionTransfer",
                        &hash,
                        actor.now,
                    )
                    .await?
                    {
                        let id =
                            response.get("transfer").and_then(|v| v.as_str()).and_then(|s| Uuid::parse_str(s).ok());
                        let id = id.ok_or_else(|| {
                            ApiError::internal(anyhow::anyhow!("idempotency record without transfer"))
                        })?;
                        return actor.load::<subscription_transfer::Entity>(txn, id, "transfer").await;
                    }
                }
                let transfer = request_in(txn, &actor, &target, input.subscription_id).await?;
                if let Some(key) = &input.idempotency_key {
                    idempotency::complete(txn, actor.principal.tenant_id, key, json!({"transfer": transfer.id}))
                        .await?;
                }
                Ok(transfer)
            })
        })
        .await
}

async fn request_in(
    txn: &DatabaseTransaction,
    actor: &Actor,
    target: &partner::Model,
    subscription_id: Uuid,
) -> ApiResult<subscription_transfer::Model> {
    let (s, customer) = r1_requestable_subscription(txn, actor, target, subscription_id).await?;
    if !has_own_reseller_link(txn, target.id, customer.id).await? {
        return Err(ApiError::new(
            Code::RelationshipRequired,
            "taking over a subscription needs your own ACTIVE reseller relationship with its customer (request one and have the customer accept)",
        ));
    }
    if s.channel != Channel::Csp {
        return Err(ApiError::bad_input(
            "subscriptionId",
            "only CSP subscriptions have a partner of record to transfer",
        ));
    }
    r7_license_based_cannot_switch(&s)?;
    if s.status != SubscriptionStatus::Active {
        return Err(ApiError::new(Code::InvalidState, "only ACTIVE subscriptions can be transferred"));
    }
    let Some(source_id) = s.partner_id else {
        return Err(ApiError::bad_input("subscriptionId", "the subscription has no partner of record"));
    };
    if source_id == target.id {
        return Err(ApiError::bad_input("subscriptionId", "you are already its partner of record"));
    }
    let source =
        partner::Entity::find_by_id(source_id).one(txn).await?.ok_or_else(|| ApiError::not_found("partner"))?;
    rules::r4_same_cloud(target.cloud, customer.cloud, "requestSubscriptionTransfer")?;
    // R8: at most one pending transfer per subscription (one the clock ended is marked EXPIRED first).
    let pending = subscription_transfer::Entity::find()
        .filter(subscription_transfer::Column::SubscriptionId.eq(s.id))
        .filter(subscription_transfer::Column::Status.eq(TransferStatus::Pending))
        .all(txn)
        .await?;
    for t in pending {
        if effective_transfer_status(&t, actor.now) == TransferStatus::Pending {
            return Err(ApiError::new(Code::Conflict, "a transfer of this subscription is already pending"));
        }
        let mut expired = t.clone();
        expired.status = TransferStatus::Expired;
        expired.updated_at = actor.now;
        // Someone else (another request, the lifecycle runner) changed it first.
        let expired = versioned::update_transfer(txn, &t, expired, None).await.map_err(|err| match err.code {
            Code::VersionConflict => ApiError::new(
                Code::Conflict,
                "another transfer of this subscription was being requested at the same time; read it again and retry",
            ),
            _ => err,
        })?;
        audit::record(
            txn,
            &By::from(actor),
            change_for("transfer.expire", "TRANSFER_EXPIRED", &expired).diff(Some(&t), &expired),
        )
        .await?;
    }
    let transfer = subscription_transfer::Model {
        id: Uuid::now_v7(),
        subscription_id: s.id,
        customer_id: s.customer_id,
        source_partner_id: source.id,
        target_partner_id: target.id,
        status: TransferStatus::Pending,
        requested_at: actor.now,
        responded_at: None,
        expires_at: actor.now + Duration::days(TRANSFER_REQUEST_DAYS),
        version: 1,
        created_at: actor.now,
        updated_at: actor.now,
    };
    let insert = transfer.into_active_model().insert(txn);
    let transfer =
        super::on_unique(insert, Code::Conflict, "a transfer of this subscription is already pending").await?;
    audit::record(
        txn,
        &By::from(actor),
        change_for("transfer.request", "TRANSFER_REQUESTED", &transfer).diff(None, &transfer),
    )
    .await?;
    Ok(transfer)
}

/// R1 for transfer requests: the target is not the partner of record, so it usually cannot see the
/// subscription (the customer gives it the id). Unseen, it may name only what it could take over: an
/// ACTIVE CSP usage-based subscription with a partner of record, of a customer it serves through its
/// own ACTIVE reseller relationship (a customer it sees, cloud included, so R4 may then speak). Anything else it cannot see answers exactly as an id
/// nobody holds, so neither its billing model, channel, state nor customer is revealed. A
/// subscription it sees gets the specific errors (R7, R8).
async fn r1_requestable_subscription(
    txn: &DatabaseTransaction,
    actor: &Actor,
    target: &partner::Model,
    subscription_id: Uuid,
) -> ApiResult<(subscription::Model, customer::Model)> {
    let not_found = || ApiError::not_found("subscription");
    let stored = subscription::Entity::find_by_id(subscription_id).one(txn).await?.ok_or_else(not_found)?;
    let customer = actor.find::<customer::Entity>(txn, stored.customer_id).await?.ok_or_else(not_found)?;
    let s = effective_subscription(stored, actor.now, actor.cancellation_window);
    if actor.find::<subscription::Entity>(txn, s.id).await?.is_none() {
        let could_take_over = s.channel == Channel::Csp
            && s.billing_model == BillingModel::UsageBased
            && s.status == SubscriptionStatus::Active
            && s.partner_id.is_some_and(|p| p != target.id)
            && has_own_reseller_link(txn, target.id, customer.id).await?;
        if !could_take_over {
            return Err(not_found());
        }
    }
    Ok((s, customer))
}

/// Whether the partner holds its own ACTIVE reseller relationship with the customer (as partner,
/// not through an indirect provider): what a transfer target needs, when asking and when accepted.
async fn has_own_reseller_link(txn: &DatabaseTransaction, partner_id: Uuid, customer_id: Uuid) -> ApiResult<bool> {
    let link = relationship::Entity::find()
        .filter(relationship::Column::Kind.eq(RelationshipKind::Reseller))
        .filter(relationship::Column::Status.eq(RelationshipStatus::Active))
        .filter(relationship::Column::PartnerId.eq(partner_id))
        .filter(relationship::Column::IndirectProviderId.is_null())
        .filter(relationship::Column::CustomerId.eq(customer_id))
        .one(txn)
        .await?;
    Ok(link.is_some())
}

/// R7: license-based subscriptions cannot switch partner.
pub fn r7_license_based_cannot_switch(s: &subscription::Model) -> ApiResult<()> {
    if s.billing_model == BillingModel::LicenseBased {
        return Err(ApiError::new(
            Code::LicenseBasedSwitchNotAllowed,
            "license-based subscriptions cannot switch partner: the customer waits for the end of the term (autoRenew off) or cancels inside the cancellation window, and the new partner sells a new subscription",
        ));
    }
    Ok(())
}

/// How a pending transfer ends by someone's hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// The source's `admin_agent`: the target becomes partner of record.
    Accept,
    /// The source's `admin_agent`.
    Reject,
    /// The target.
    Withdraw,
}

/// Accepts, rejects or withdraws a PENDING transfer (R8, R13).
pub async fn answer(
    writer: &Writer,
    actor: &Actor,
    id: Uuid,
    expected_version: Option<i32>,
    answer: Answer,
) -> ApiResult<subscription_transfer::Model> {
    let caller = match &actor.principal.tenant {
        Tenant::Partner(p) => p.clone(),
        _ => return Err(ApiError::new(Code::Forbidden, "transfers are answered by partners")),
    };
    rules::r17_not_suspended(&caller)?;
    let actor = actor.clone();
    writer
        .write(move |txn| {
            Box::pin(async move {
                let before = actor.load::<subscription_transfer::Entity>(txn, id, "transfer").await?;
                match answer {
                    Answer::Accept | Answer::Reject => {
                        if caller.id != before.source_partner_id {
                            return Err(ApiError::new(
                                Code::Forbidden,
                                "only the source partner's admin_agent can accept or reject a transfer",
                            ));
                        }
                        actor.require_role(&[Role::AdminAgent])?;
                    }
                    Answer::Withdraw => {
                        if caller.id != before.target_partner_id {
                            return Err(ApiError::new(
                                Code::Forbidden,
                                "only the partner that asked for the transfer can withdraw it",
                            ));
                        }
                        actor.require_role(&[Role::AdminAgent, Role::SalesAgent])?;
                    }
                }
                if effective_transfer_status(&before, actor.now) != TransferStatus::Pending {
                    return Err(ApiError::new(Code::InvalidState, "only PENDING transfers can be answered"));
                }
                let by = By::from(&actor);
                let mut after = before.clone();
                after.responded_at = Some(actor.now);
                after.updated_at = actor.now;
                let (action, event) = match answer {
                    Answer::Accept => {
                        let stored = subscription::Entity::find_by_id(before.subscription_id)
                            .one(txn)
                            .await?
                            .ok_or_else(|| ApiError::not_found("subscription"))?;
                        // A renewal or expiry the clock has done is recorded first, as its own change (R16).
                        let stored = actor.catch_up(txn, stored).await?;
                        let current = stored.clone();
                        if current.status != SubscriptionStatus::Active
                            || current.partner_id != Some(before.source_partner_id)
                        {
                            return Err(ApiError::new(
                                Code::InvalidState,
                                "the subscription is no longer ACTIVE with the source as partner of record",
                            ));
                        }
                        if !has_own_reseller_link(txn, before.target_partner_id, before.customer_id).await? {
                            return Err(ApiError::new(
                                Code::RelationshipRequired,
                                "the requesting partner needs an ACTIVE reseller relationship with the customer to take the subscription over; reject the transfer or wait until it has one",
                            ));
                        }
                        // The target sells directly (its own reseller link): an indirect reseller of
                        // record of the source's sale does not follow.
                        let mut switched = current.clone();
                        switched.partner_id = Some(before.target_partner_id);
                        switched.reseller_id = None;
                        switched.updated_at = actor.now;
                        let switched = versioned::update_subscription(txn, &stored, switched, None)
                            .await
                            .map_err(|err| match err.code {
                                Code::VersionConflict => ApiError::new(
                                    Code::InvalidState,
                                    "the subscription changed while the transfer was being accepted; read it again and retry",
                                ),
                                _ => err,
                            })?;
                        let change =
                            Change::new("subscription.transfer", "SUBSCRIPTION_UPDATED", "Subscription", switched.id)
                                .partner(before.source_partner_id)
                                .related_partner(before.target_partner_id)
                                .customer(switched.customer_id)
                                .diff(Some(&stored), &switched);
                        audit::record(txn, &by, change).await?;
                        after.status = TransferStatus::Completed;
                        ("transfer.accept", "TRANSFER_COMPLETED")
                    }
                    Answer::Reject => {
                        after.status = TransferStatus::Rejected;
                        ("transfer.reject", "TRANSFER_REJECTED")
                    }
                    Answer::Withdraw => {
                        after.status = TransferStatus::Withdrawn;
                        ("transfer.withdraw", "TRANSFER_WITHDRAWN")
                    }
                };
                let after = versioned::update_transfer(txn, &before, after, expected_version).await?;
                audit::record(txn, &by, change_for(action, event, &after).diff(Some(&before), &after)).await?;
                Ok(after)
            })
        })
        .await
}
