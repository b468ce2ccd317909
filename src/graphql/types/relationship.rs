//! `Relationship`: reseller, delegated-admin and indirect-reseller links.

use async_graphql::{Context, ID, Object};
use chrono::{DateTime, Utc};
use entity::relationship;

use super::customer::Customer;
use super::enums::{RelationshipKind, RelationshipStatus};
use super::partner::Partner;
use super::{customer_ref, partner_ref};
use crate::domain::lifecycle;
use crate::graphql::connection::connection;
use crate::graphql::context::RequestCtx;
use crate::graphql::ids::{self, NodeType};

/// A relationship: partner ↔ customer (`RESELLER`, `DELEGATED_ADMIN`) or indirect provider ↔
/// indirect reseller (`INDIRECT_RESELLER`).
pub struct Relationship(pub relationship::Model);

connection!(
    RelationshipConnection,
    RelationshipEdge,
    Relationship,
    "A page of relationships visible to the caller.",
    "A relationship and its cursor."
);

/// A relationship: partner ↔ customer (`RESELLER`, `DELEGATED_ADMIN`) or indirect provider ↔
/// indirect reseller (`INDIRECT_RESELLER`).
#[Object]
impl Relationship {
    /// The global id of this relationship.
    pub async fn id(&self) -> ID {
        ids::encode(NodeType::Relationship, self.0.id)
    }

    /// What the relationship allows.
    async fn kind(&self) -> RelationshipKind {
        self.0.kind.into()
    }

    /// The state as it stands now (a grant past `expiresAt` is `EXPIRED`).
    async fn status(&self, ctx: &Context<'_>) -> async_graphql::Result<RelationshipStatus> {
        Ok(lifecycle::effective_relationship_status(&self.0, RequestCtx::of(ctx)?.now).into())
    }

    /// The partner side: the partner (for `RESELLER` and `DELEGATED_ADMIN`; the reseller when an
    /// indirect provider is involved) or the indirect reseller (for `INDIRECT_RESELLER`).
    async fn partner(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Partner>> {
        partner_ref(ctx, Some(self.0.partner_id)).await
    }

    /// The indirect reseller, when one is involved (same as `partner` then), else `null`.
    async fn reseller(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Partner>> {
        let id = self.0.indirect_provider_id.map(|_| self.0.partner_id);
        partner_ref(ctx, id).await
    }

    /// The indirect provider, when one is involved.
    async fn indirect_provider(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Partner>> {
        partner_ref(ctx, self.0.indirect_provider_id).await
    }

    /// The customer (partner ↔ customer kinds); `null` while the caller may not see it (e.g. a
    /// request still pending), which is why `customerDomain` is there too.
    async fn customer(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Customer>> {
        customer_ref(ctx, self.0.customer_id).await
    }

    /// The customer's domain (partner ↔ customer kinds).
    async fn customer_domain(&self) -> Option<&str> {
        self.0.customer_domain.as_deref()
    }

    /// Delegated-admin roles granted (`admin_agent`, `helpdesk_agent`); empty for other kinds.
    async fn roles(&self) -> Vec<&str> {
        self.0.roles.split(',').filter(|r| !r.is_empty()).collect()
    }

    /// Delegated admin: how many days the grant lasts once accepted.
    async fn duration_days(&self) -> Option<i32> {
        self.0.duration_days
    }

    /// The requester's message.
    async fn message(&self) -> Option<&str> {
        self.0.message.as_deref()
    }

    /// When it was requested (or created).
    async fn requested_at(&self) -> DateTime<Utc> {
        self.0.requested_at
    }

    /// When the invited party answered.
    async fn responded_at(&self) -> Option<DateTime<Utc>> {
        self.0.responded_at
    }

    /// When it was terminated.
    async fn terminated_at(&self) -> Option<DateTime<Utc>> {
        self.0.terminated_at
    }

    /// When a pending request or an active grant ends by the clock.
    async fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.0.expires_at
    }

    /// Changes with every update; may be passed as `expectedVersion`.
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
