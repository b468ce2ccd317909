//! The Relay `Node` interface and global lookups (`node`, `nodes`).

use std::collections::HashMap;

use async_graphql::dataloader::{DataLoader, HashMapCache, Loader};
use async_graphql::{Context, ID, Interface};
use uuid::Uuid;

use super::{AuditEvent, Customer, Partner, Relationship, Subscription, SubscriptionTransfer};
use crate::graphql::context::RequestCtx;
use crate::graphql::ids::{self, NodeType};
use crate::graphql::loaders::prime;

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

/// Resolves a global id through the loaders, batched with the other lookups of the same moment
/// (the `node` of each event of a page); `null` for ids the caller may not see, or that name nothing.
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

/// Resolves global ids (`node`, `nodes`), in the order given; `null` for ids the caller may not see, or that name
/// nothing. The ids of each type are loaded together and at once (`loaders::prime`): one statement
/// per type, without waiting through a loader's batching window.
pub async fn load_all(ctx: &Context<'_>, ids: &[ID]) -> async_graphql::Result<Vec<Option<Node>>> {
    let rc = RequestCtx::of(ctx)?;
    let loaders = &rc.session()?.loaders;
    let decoded: Vec<Option<(NodeType, Uuid)>> = ids.iter().map(|id| ids::decode_any(id)).collect();
    let of =
        |ty: NodeType| -> Vec<Uuid> { decoded.iter().flatten().filter(|(t, _)| *t == ty).map(|(_, id)| *id).collect() };
    async fn load<T: Loader<Uuid>>(
        loader: &DataLoader<T, HashMapCache>,
        ids: Vec<Uuid>,
    ) -> Result<HashMap<Uuid, T::Value>, T::Error> {
        if ids.is_empty() { Ok(HashMap::new()) } else { prime(loader, ids).await }
    }
    let partners = load(&loaders.partners, of(NodeType::Partner)).await?;
    let customers = load(&loaders.customers, of(NodeType::Customer)).await?;
    let subscriptions = load(&loaders.subscriptions, of(NodeType::Subscription)).await?;
    let relationships = load(&loaders.relationships, of(NodeType::Relationship)).await?;
    let transfers = load(&loaders.transfers, of(NodeType::SubscriptionTransfer)).await?;
    let audit_events = load(&loaders.audit_events, of(NodeType::AuditEvent)).await?;
    Ok(decoded
        .into_iter()
        .map(|found| {
            let (ty, id) = found?;
            match ty {
                NodeType::Partner => partners.get(&id).cloned().map(|m| Node::Partner(Partner(m))),
                NodeType::Customer => customers.get(&id).cloned().map(|m| Node::Customer(Customer(m))),
                NodeType::Subscription => {
                    subscriptions.get(&id).cloned().map(|m| Node::Subscription(Subscription(rc.subscription_now(m))))
                }
                NodeType::Relationship => relationships.get(&id).cloned().map(|m| Node::Relationship(Relationship(m))),
                NodeType::SubscriptionTransfer => {
                    transfers.get(&id).cloned().map(|m| Node::SubscriptionTransfer(SubscriptionTransfer(m)))
                }
                NodeType::AuditEvent => audit_events.get(&id).cloned().map(|m| Node::AuditEvent(AuditEvent(m))),
                // Webhooks are no nodes: they are read through `webhooks` and `webhookDeliveries`.
                NodeType::Webhook | NodeType::WebhookDelivery => None,
            }
        })
        .collect())
}
