//! `SubscriptionTransfer`: moving a CSP usage-based subscription to another partner of record.

use async_graphql::{Context, ID, Object};
use chrono::{DateTime, Utc};
use entity::subscription_transfer;

use super::customer::Customer;
use super::enums::TransferStatus;
use super::partner::Partner;
use super::subscription::Subscription;
use super::{customer_ref, partner_ref, subscription_ref};
use crate::domain::lifecycle;
use crate::graphql::connection::connection;
use crate::graphql::context::RequestCtx;
use crate::graphql::ids::{self, NodeType};

/// A request to move a CSP usage-based subscription from its partner of record to another partner.
pub struct SubscriptionTransfer(pub subscription_transfer::Model);

connection!(
    SubscriptionTransferConnection,
    SubscriptionTransferEdge,
    SubscriptionTransfer,
    "A page of subscription transfers visible to the caller.",
    "A subscription transfer and its cursor."
);

/// A request to move a CSP usage-based subscription from its partner of record to another partner.
#[Object]
impl SubscriptionTransfer {
    /// The global id of this transfer.
    pub async fn id(&self) -> ID {
        ids::encode(NodeType::SubscriptionTransfer, self.0.id)
    }

    /// The subscription being moved (`null` if the caller may not see it).
    async fn subscription(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Subscription>> {
        subscription_ref(ctx, Some(self.0.subscription_id)).await
    }

    /// The customer holding the subscription.
    async fn customer(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Customer>> {
        customer_ref(ctx, Some(self.0.customer_id)).await
    }

    /// The current partner of record, who accepts or rejects.
    async fn source_partner(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Partner>> {
        partner_ref(ctx, Some(self.0.source_partner_id)).await
    }

    /// The partner asking to become partner of record.
    async fn target_partner(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Partner>> {
        partner_ref(ctx, Some(self.0.target_partner_id)).await
    }

    /// The state as it stands now (unanswered for 30 days: `EXPIRED`).
    async fn status(&self, ctx: &Context<'_>) -> async_graphql::Result<TransferStatus> {
        Ok(lifecycle::effective_transfer_status(&self.0, RequestCtx::of(ctx)?.now).into())
    }

    /// When it was requested.
    async fn requested_at(&self) -> DateTime<Utc> {
        self.0.requested_at
    }

    /// When the source partner answered, or the target withdrew.
    async fn responded_at(&self) -> Option<DateTime<Utc>> {
        self.0.responded_at
    }

    /// When an unanswered request expires.
    async fn expires_at(&self) -> DateTime<Utc> {
        self.0.expires_at
    }

    /// Changes with every update.
    async fn version(&self) -> i32 {
        self.0.version
    }

    /// When the row was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// When it last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}
