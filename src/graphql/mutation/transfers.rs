//! `requestSubscriptionTransfer`, `acceptSubscriptionTransfer`, `rejectSubscriptionTransfer`,
//! `withdrawSubscriptionTransfer`.

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};

use crate::domain::inputs::IdempotencyKey;
use crate::domain::transfers::{self, Answer, RequestTransfer};
use crate::graphql::context::{RequestCtx, session};
use crate::graphql::ids::{self, NodeType};
use crate::graphql::types::SubscriptionTransfer;

/// The target partner asks to become partner of record of a CSP usage-based subscription.
#[derive(InputObject)]
pub struct RequestTransferInput {
    /// The subscription (of a customer with which you have an ACTIVE reseller relationship).
    pub subscription_id: ID,
    /// Repeat a call safely: the same key with the same input answers the first result.
    pub idempotency_key: Option<String>,
}

/// Acts on a transfer.
#[derive(InputObject)]
pub struct TransferActionInput {
    /// The transfer.
    pub id: ID,
    /// When given, the action applies only if the transfer still has this version.
    pub expected_version: Option<i32>,
}

/// The transfer a mutation made or changed.
#[derive(SimpleObject)]
pub struct TransferPayload {
    /// The transfer as it now stands.
    pub transfer: SubscriptionTransfer,
}

#[derive(Default)]
pub struct TransferMutations;

/// Moving usage-based subscriptions between partners of record.
#[Object]
impl TransferMutations {
    /// Asks to take over a CSP usage-based subscription (target partner `admin_agent`/`sales_agent`).
    /// License-based subscriptions cannot switch (`LICENSE_BASED_SWITCH_NOT_ALLOWED`).
    async fn request_subscription_transfer(
        &self,
        ctx: &Context<'_>,
        input: RequestTransferInput,
    ) -> async_graphql::Result<TransferPayload> {
        let actor = RequestCtx::of(ctx)?.actor()?;
        let parsed = RequestTransfer {
            subscription_id: ids::decode("subscriptionId", NodeType::Subscription, &input.subscription_id)?,
            idempotency_key: IdempotencyKey::parse(input.idempotency_key.as_deref())?,
        };
        let transfer = transfers::request(&session(ctx)?.writer, &actor, parsed).await?;
        Ok(TransferPayload { transfer: SubscriptionTransfer(transfer) })
    }

    /// Accepts a PENDING transfer (the source partner's `admin_agent`): the target becomes partner of record.
    async fn accept_subscription_transfer(
        &self,
        ctx: &Context<'_>,
        input: TransferActionInput,
    ) -> async_graphql::Result<TransferPayload> {
        answer(ctx, input, Answer::Accept).await
    }

    /// Rejects a PENDING transfer (the source partner's `admin_agent`).
    async fn reject_subscription_transfer(
        &self,
        ctx: &Context<'_>,
        input: TransferActionInput,
    ) -> async_graphql::Result<TransferPayload> {
        answer(ctx, input, Answer::Reject).await
    }

    /// Withdraws a PENDING transfer (the target partner).
    async fn withdraw_subscription_transfer(
        &self,
        ctx: &Context<'_>,
        input: TransferActionInput,
    ) -> async_graphql::Result<TransferPayload> {
        answer(ctx, input, Answer::Withdraw).await
    }
}

async fn answer(
    ctx: &Context<'_>,
    input: TransferActionInput,
    answer: Answer,
) -> async_graphql::Result<TransferPayload> {
    let actor = RequestCtx::of(ctx)?.actor()?;
    let id = ids::decode("id", NodeType::SubscriptionTransfer, &input.id)?;
    let transfer = transfers::answer(&session(ctx)?.writer, &actor, id, input.expected_version, answer).await?;
    Ok(TransferPayload { transfer: SubscriptionTransfer(transfer) })
}
