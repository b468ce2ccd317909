//! GraphQL object types, one file per type, each wrapping its entity model (the database and the API
//! stay separate structs), plus shared helpers to follow references through the per-request loaders.

pub mod audit_event;
pub mod customer;
pub mod enums;
pub mod event;
pub mod filters;
pub mod node;
pub mod partner;
pub mod relationship;
pub mod subscription;
pub mod transfer;
pub mod viewer;
pub mod webhook;

use async_graphql::Context;
use uuid::Uuid;

use crate::graphql::context::{RequestCtx, session};

pub use audit_event::AuditEvent;
pub use customer::Customer;
pub use partner::Partner;
pub use relationship::Relationship;
pub use subscription::Subscription;
pub use transfer::SubscriptionTransfer;

/// Follows a reference to a partner: `null` when absent or not visible to the caller.
pub async fn partner_ref(ctx: &Context<'_>, id: Option<Uuid>) -> async_graphql::Result<Option<Partner>> {
    let Some(id) = id else { return Ok(None) };
    Ok(session(ctx)?.loaders.partners.load_one(id).await?.map(Partner))
}

/// Follows a reference to a customer: `null` when absent or not visible to the caller.
pub async fn customer_ref(ctx: &Context<'_>, id: Option<Uuid>) -> async_graphql::Result<Option<Customer>> {
    let Some(id) = id else { return Ok(None) };
    Ok(session(ctx)?.loaders.customers.load_one(id).await?.map(Customer))
}

/// Follows a reference to a subscription: `null` when absent or not visible to the caller.
pub async fn subscription_ref(ctx: &Context<'_>, id: Option<Uuid>) -> async_graphql::Result<Option<Subscription>> {
    let Some(id) = id else { return Ok(None) };
    let rc = RequestCtx::of(ctx)?;
    Ok(rc.session()?.loaders.subscriptions.load_one(id).await?.map(|m| Subscription(rc.subscription_now(m))))
}
