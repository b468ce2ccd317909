//! Relay global ids: `base64url("Type:uuid")`, opaque to clients.

use async_graphql::ID;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};

/// The node types a global id can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeType {
    Partner,
    Customer,
    Subscription,
    Relationship,
    SubscriptionTransfer,
    AuditEvent,
    /// Not a `Node`: webhooks are read through `webhooks` only.
    Webhook,
    /// Not a `Node`: deliveries are read through `webhookDeliveries` only.
    WebhookDelivery,
}

impl NodeType {
    /// The GraphQL type name (also the outbox `node_type`).
    pub fn name(self) -> &'static str {
        match self {
            NodeType::Partner => "Partner",
            NodeType::Customer => "Customer",
            NodeType::Subscription => "Subscription",
            NodeType::Relationship => "Relationship",
            NodeType::SubscriptionTransfer => "SubscriptionTransfer",
            NodeType::AuditEvent => "AuditEvent",
            NodeType::Webhook => "Webhook",
            NodeType::WebhookDelivery => "WebhookDelivery",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        [
            NodeType::Partner,
            NodeType::Customer,
            NodeType::Subscription,
            NodeType::Relationship,
            NodeType::SubscriptionTransfer,
            NodeType::AuditEvent,
            NodeType::Webhook,
            NodeType::WebhookDelivery,
        ]
        .into_iter()
        .find(|t| t.name() == name)
    }
}

/// Encodes a global id.
pub fn encode(ty: NodeType, id: Uuid) -> ID {
    ID(URL_SAFE_NO_PAD.encode(format!("{}:{}", ty.name(), id)))
}

/// Decodes any global id; `None` when it is not one of ours.
pub fn decode_any(id: &str) -> Option<(NodeType, Uuid)> {
    let bytes = URL_SAFE_NO_PAD.decode(id).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (ty, uuid) = text.split_once(':')?;
    Some((NodeType::parse(ty)?, Uuid::parse_str(uuid).ok()?))
}

/// Decodes a global id that must name a `ty`; `BAD_USER_INPUT` naming `field` otherwise.
pub fn decode(field: &str, ty: NodeType, id: &ID) -> ApiResult<Uuid> {
    match decode_any(id) {
        Some((found, uuid)) if found == ty => Ok(uuid),
        _ => Err(ApiError::bad_input(field, format!("not a {} id", ty.name()))),
    }
}

/// For lookups: an id of another type simply matches nothing (`null`); a string that is no id at
/// all is `BAD_USER_INPUT`.
pub fn decode_lookup(ty: NodeType, id: &ID) -> ApiResult<Option<Uuid>> {
    match decode_any(id) {
        Some((found, uuid)) => Ok((found == ty).then_some(uuid)),
        None => Err(ApiError::bad_input("id", "not an id returned by this API")),
    }
}
