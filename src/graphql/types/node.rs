//! The Relay `Node` interface and global lookups (`node`, `nodes`).

use async_graphql::{Context, ID, Interface};

use super::{AuditEvent, Customer, Partner, Relationship, Subscription, SubscriptionTransfer};
use crate::graphql::context::RequestCtx;
use crate::graphql::ids::{self, NodeType};

/// Anything with a global id; `node(id:)` fetches any of them under the caller's visibility.
#[derive(Interface)]
#[graphql(field(name = "id", ty = "ID", desc = "The global id: opaque, stable, accepted by `node(id:)`."))]
pub enum Node {
    Partner(Partner),
    Customer(Customer),
    Subscription(Subscription),
    Relationship(Relationship),
    SubscriptionTransfer(SubscriptionTransfer),
    AuditEvent(AuditEvent),
}

/// Resolves a global id; `null` for ids the caller may not see, or that name nothing.
pub async fn load(ctx: &Context<'_>, id: &ID) -> async_graphql::Result<Option<Node>> {
    let rc = RequestCtx::of(ctx)?;
    let loaders = &rc.session()?.loaders;
    let Some((ty, id)) = ids::decode_any(id) else { return Ok(None) };
    Ok(match ty {
        NodeType::Partner => loaders.partners.load_one(id).await?.map(|m| Node::Partner(Partner(m))),
        NodeType::Customer => loaders.customers.load_one(id).await?.map(|m| Node::Customer(Customer(m))),
        NodeType::Subscription => {
            loaders.subscriptions.load_one(id).await?.map(|m| Node::Subscription(Subscription(rc.subscription_now(m))))
        }
        NodeType::Relationship => {
            loaders.relationships.load_one(id).await?.map(|m| Node::Relationship(Relationship(m)))
        }
        NodeType::SubscriptionTransfer => {
            loaders.transfers.load_one(id).await?.map(|m| Node::SubscriptionTransfer(SubscriptionTransfer(m)))
        }
        NodeType::AuditEvent => loaders.audit_events.load_one(id).await?.map(|m| Node::AuditEvent(AuditEvent(m))),
        // Webhooks are no nodes: they are read through `webhooks` and `webhookDeliveries`.
        NodeType::Webhook | NodeType::WebhookDelivery => None,
    })
}
