//! `AuditEvent`: one entry of the audit trail.

use async_graphql::{Context, ID, Json, Object};
use chrono::{DateTime, Utc};
use entity::audit_event;
use uuid::Uuid;

use super::customer::Customer;
use super::partner::Partner;
use super::{customer_ref, partner_ref};
use crate::graphql::connection::connection;
use crate::graphql::ids::{self, NodeType};

/// A record of one successful mutation or lifecycle change, written in its transaction.
pub struct AuditEvent(pub audit_event::Model);

connection!(
    AuditEventConnection,
    AuditEventEdge,
    AuditEvent,
    "A page of audit events visible to the caller, newest first.",
    "An audit event and its cursor."
);

/// A record of one successful mutation or lifecycle change, written in its transaction.
#[Object]
impl AuditEvent {
    /// The global id of this event.
    pub async fn id(&self) -> ID {
        ids::encode(NodeType::AuditEvent, self.0.id)
    }

    /// When the change was committed.
    async fn occurred_at(&self) -> DateTime<Utc> {
        self.0.occurred_at
    }

    /// The tenant of the caller who made the change.
    async fn actor_tenant_id(&self) -> Uuid {
        self.0.actor_tenant_id
    }

    /// The JWT `sub` of the caller, or `system` for lifecycle changes.
    async fn actor_subject(&self) -> &str {
        &self.0.actor_subject
    }

    /// What was done, e.g. `subscription.create`.
    async fn action(&self) -> &str {
        &self.0.action
    }

    /// The type of the changed object, e.g. `Subscription`.
    async fn target_type(&self) -> &str {
        &self.0.target_type
    }

    /// The global id of the changed object.
    async fn target_id(&self) -> ID {
        let ty = match self.0.target_type.as_str() {
            "Partner" => NodeType::Partner,
            "Customer" => NodeType::Customer,
            "Relationship" => NodeType::Relationship,
            "SubscriptionTransfer" => NodeType::SubscriptionTransfer,
            "Webhook" => NodeType::Webhook,
            _ => NodeType::Subscription,
        };
        ids::encode(ty, self.0.target_id)
    }

    /// The partner concerned, if the caller may see it.
    async fn partner(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Partner>> {
        partner_ref(ctx, self.0.partner_id).await
    }

    /// The customer concerned, if the caller may see it.
    async fn customer(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Customer>> {
        customer_ref(ctx, self.0.customer_id).await
    }

    /// The changed fields, before and after.
    async fn details(&self) -> Json<serde_json::Value> {
        Json(self.0.details.clone())
    }

    /// The `X-Request-Id` of the request that made the change.
    async fn request_id(&self) -> &str {
        &self.0.request_id
    }
}
