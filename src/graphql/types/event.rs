//! A domain event as clients receive it (WebSocket `events`, webhook bodies).

use async_graphql::{Context, Enum, ID, Object};
use chrono::{DateTime, Utc};
use entity::outbox_event;

use super::node::{self, Node};
use crate::graphql::ids::{self, NodeType};

/// What happened. New types may be added; clients should ignore types they do not know.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum EventType {
    /// A partner was onboarded by the platform.
    PartnerOnboarded,
    /// A partner was suspended, reactivated or offboarded.
    PartnerStatusChanged,
    /// A customer was created.
    CustomerCreated,
    /// A relationship was requested (or a reseller invited).
    RelationshipRequested,
    /// A relationship became active.
    RelationshipAccepted,
    /// A relationship request was declined.
    RelationshipDeclined,
    /// A relationship was ended by one of its parties.
    RelationshipTerminated,
    /// A relationship (a delegated-admin grant or an unanswered request) ran out.
    RelationshipExpired,
    /// A subscription was created or registered.
    SubscriptionCreated,
    /// A subscription's quantity, renewal or partner changed.
    SubscriptionUpdated,
    /// A subscription was suspended.
    SubscriptionSuspended,
    /// A suspended subscription was reactivated.
    SubscriptionReactivated,
    /// A subscription was cancelled.
    SubscriptionCancelled,
    /// A subscription renewed for another term.
    SubscriptionRenewed,
    /// A subscription reached the end of its term without renewal.
    SubscriptionExpired,
    /// A usage-based subscription was migrated to CSP.
    SubscriptionMigrated,
    /// A subscription transfer was requested.
    TransferRequested,
    /// A subscription transfer was accepted and carried out.
    TransferCompleted,
    /// A subscription transfer was rejected by the source partner.
    TransferRejected,
    /// A subscription transfer was withdrawn by the target partner.
    TransferWithdrawn,
    /// A subscription transfer was not answered in time.
    TransferExpired,
}

impl EventType {
    pub const ALL: [EventType; 21] = [
        EventType::PartnerOnboarded,
        EventType::PartnerStatusChanged,
        EventType::CustomerCreated,
        EventType::RelationshipRequested,
        EventType::RelationshipAccepted,
        EventType::RelationshipDeclined,
        EventType::RelationshipTerminated,
        EventType::RelationshipExpired,
        EventType::SubscriptionCreated,
        EventType::SubscriptionUpdated,
        EventType::SubscriptionSuspended,
        EventType::SubscriptionReactivated,
        EventType::SubscriptionCancelled,
        EventType::SubscriptionRenewed,
        EventType::SubscriptionExpired,
        EventType::SubscriptionMigrated,
        EventType::TransferRequested,
        EventType::TransferCompleted,
        EventType::TransferRejected,
        EventType::TransferWithdrawn,
        EventType::TransferExpired,
    ];

    /// The name stored in the outbox (`event_type`), the same as the GraphQL enum value.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::PartnerOnboarded => "PARTNER_ONBOARDED",
            EventType::PartnerStatusChanged => "PARTNER_STATUS_CHANGED",
            EventType::CustomerCreated => "CUSTOMER_CREATED",
            EventType::RelationshipRequested => "RELATIONSHIP_REQUESTED",
            EventType::RelationshipAccepted => "RELATIONSHIP_ACCEPTED",
            EventType::RelationshipDeclined => "RELATIONSHIP_DECLINED",
            EventType::RelationshipTerminated => "RELATIONSHIP_TERMINATED",
            EventType::RelationshipExpired => "RELATIONSHIP_EXPIRED",
            EventType::SubscriptionCreated => "SUBSCRIPTION_CREATED",
            EventType::SubscriptionUpdated => "SUBSCRIPTION_UPDATED",
            EventType::SubscriptionSuspended => "SUBSCRIPTION_SUSPENDED",
            EventType::SubscriptionReactivated => "SUBSCRIPTION_REACTIVATED",
            EventType::SubscriptionCancelled => "SUBSCRIPTION_CANCELLED",
            EventType::SubscriptionRenewed => "SUBSCRIPTION_RENEWED",
            EventType::SubscriptionExpired => "SUBSCRIPTION_EXPIRED",
            EventType::SubscriptionMigrated => "SUBSCRIPTION_MIGRATED",
            EventType::TransferRequested => "TRANSFER_REQUESTED",
            EventType::TransferCompleted => "TRANSFER_COMPLETED",
            EventType::TransferRejected => "TRANSFER_REJECTED",
            EventType::TransferWithdrawn => "TRANSFER_WITHDRAWN",
            EventType::TransferExpired => "TRANSFER_EXPIRED",
        }
    }

    /// The type of an outbox row; `None` for a name this build does not know.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

/// The node type of an outbox row's `node_type`.
pub fn node_type_of(name: &str) -> Option<NodeType> {
    Some(match name {
        "Partner" => NodeType::Partner,
        "Customer" => NodeType::Customer,
        "Subscription" => NodeType::Subscription,
        "Relationship" => NodeType::Relationship,
        "SubscriptionTransfer" => NodeType::SubscriptionTransfer,
        _ => return None,
    })
}

/// The stable id of an event: the same on every instance and in every delivery, so receivers can
/// de-duplicate.
pub fn event_id(event: &outbox_event::Model) -> String {
    format!("evt_{}", event.id)
}

/// One committed change.
pub struct Event(pub outbox_event::Model);

impl Event {
    fn global_node_id(&self) -> Option<ID> {
        node_type_of(&self.0.node_type).map(|ty| ids::encode(ty, self.0.node_id))
    }
}

/// One committed change, as the live `events` stream (and webhooks) deliver it.
#[Object]
impl Event {
    /// The event's stable id (the same in every delivery, on every instance): de-duplicate on it.
    async fn id(&self) -> ID {
        ID(event_id(&self.0))
    }

    /// What happened; `null` only for a type this server version does not know.
    #[graphql(name = "type")]
    async fn event_type(&self) -> Option<EventType> {
        EventType::parse(&self.0.event_type)
    }

    /// When the change was committed.
    async fn occurred_at(&self) -> DateTime<Utc> {
        self.0.occurred_at
    }

    /// The global id of the node concerned.
    async fn node_id(&self) -> Option<ID> {
        self.global_node_id()
    }

    /// The node concerned, as it is now, under the caller's visibility (`null` if no longer visible).
    async fn node(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Node>> {
        let Some(id) = self.global_node_id() else { return Ok(None) };
        node::load(ctx, &id).await
    }

    /// The fields the change touched, `{ field: { before, after } }`.
    async fn details(&self) -> async_graphql::Json<serde_json::Value> {
        async_graphql::Json(self.0.payload.get("details").cloned().unwrap_or(serde_json::Value::Null))
    }
}
