//! The `Query` root: every read of the API (`docs/api.md`). Each field starts from the caller's session (its
//! scoped reader and loaders); there is no other way to the data.

use async_graphql::{Context, ID, Object};
use entity::{audit_event, relationship, subscription, subscription_transfer};
use sea_orm::Order;

use super::connection::page_args;
use super::context::{RequestCtx, session};
use super::ids::{self, NodeType};
use super::loaders::{Refs, prime};
use super::types::audit_event::AuditEventConnection;
use super::types::customer::{CustomerConnection, Under, customer_page, prime_nested};
use super::types::filters::{
    AuditEventFilter, CustomerFilter, CustomerOrder, PartnerFilter, RelationshipFilter, SubscriptionFilter,
    TransferFilter,
};
use super::types::node::{self, Node};
use super::types::partner::{PartnerConnection, partner_page, prime_under_partners};
use super::types::relationship::RelationshipConnection;
use super::types::subscription::SubscriptionConnection;
use super::types::transfer::SubscriptionTransferConnection;
use super::types::viewer::Viewer;
use super::types::webhook::{WebhookConnection, WebhookDeliveryConnection, WebhookDeliveryFilter};
use super::types::{AuditEvent, Customer, Partner, Relationship, Subscription, SubscriptionTransfer};
use crate::access::Sort;
use crate::error::ApiError;

/// Entry points for reading. Everything is filtered by the caller's tenant: what it may not see
/// does not exist (lookups return `null`, lists and totals leave it out).
pub struct Query;

/// Entry points for reading. Everything is filtered by the caller's tenant: what it may not see
/// does not exist (lookups return `null`, lists and totals leave it out).
#[Object]
impl Query {
    /// The signed-in caller.
    async fn viewer(&self, ctx: &Context<'_>) -> async_graphql::Result<Viewer> {
        Ok(Viewer(session(ctx)?.principal.clone()))
    }

    /// Any object by its global id; `null` if the caller may not see it.
    async fn node(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Node>> {
        Ok(node::load_all(ctx, std::slice::from_ref(&id)).await?.pop().flatten())
    }

    /// Several objects by their global ids, in the order given; `null` for those the caller may not see.
    #[graphql(complexity = "crate::graphql::cost::lookups(ids.len(), child_complexity)")]
    async fn nodes(&self, ctx: &Context<'_>, ids: Vec<ID>) -> async_graphql::Result<Vec<Option<Node>>> {
        let rc = RequestCtx::of(ctx)?;
        if ids.len() > rc.limits.max_node_ids {
            return Err(ApiError::bad_input("ids", format!("at most {} ids at once", rc.limits.max_node_ids)).into());
        }
        node::load_all(ctx, &ids).await
    }

    /// A partner by global id.
    async fn partner(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Partner>> {
        let Some(id) = ids::decode_lookup(NodeType::Partner, &id)? else { return Ok(None) };
        let found = prime(&session(ctx)?.loaders.partners, [id]).await?.remove(&id);
        if found.is_some() {
            prime_under_partners(ctx, &[id], Under::Object).await?;
        }
        Ok(found.map(Partner))
    }

    /// The partners the caller may see, in onboarding order.
    #[graphql(complexity = "crate::graphql::cost::connection(first, child_complexity)")]
    async fn partners(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<PartnerFilter>,
    ) -> async_graphql::Result<PartnerConnection> {
        let filter = filter.unwrap_or_default();
        filter.validate()?;
        partner_page(ctx, filter.condition(), first, after).await
    }

    /// A customer by global id.
    async fn customer(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Customer>> {
        let Some(id) = ids::decode_lookup(NodeType::Customer, &id)? else { return Ok(None) };
        let found = prime(&session(ctx)?.loaders.customers, [id]).await?.remove(&id);
        if found.is_some() {
            prime_nested(ctx, &[id], Under::Object).await?;
        }
        Ok(found.map(Customer))
    }

    /// The customers the caller may see.
    #[graphql(complexity = "crate::graphql::cost::connection(first, child_complexity)")]
    async fn customers(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<CustomerFilter>,
        order_by: Option<CustomerOrder>,
    ) -> async_graphql::Result<CustomerConnection> {
        let filter = filter.unwrap_or_default();
        filter.validate()?;
        customer_page(ctx, filter.condition(), first, after, order_by).await
    }

    /// A subscription by global id.
    async fn subscription(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Subscription>> {
        let Some(id) = ids::decode_lookup(NodeType::Subscription, &id)? else { return Ok(None) };
        let rc = RequestCtx::of(ctx)?;
        let found = prime(&rc.session()?.loaders.subscriptions, [id]).await?.remove(&id);
        Ok(found.map(|m| Subscription(rc.subscription_now(m))))
    }

    /// The subscriptions the caller may see, oldest first.
    #[graphql(complexity = "crate::graphql::cost::connection(first, child_complexity)")]
    async fn subscriptions(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<SubscriptionFilter>,
    ) -> async_graphql::Result<SubscriptionConnection> {
        let rc = RequestCtx::of(ctx)?;
        let args = page_args(&rc.limits, first, after)?;
        let cond = filter.unwrap_or_default().key()?.condition_at(rc.now);
        let session = rc.session()?;
        let page = session.reader.page::<subscription::Entity>(cond, &Sort::by_id(Order::Asc), &args).await?;
        session.prefetch(&page, Refs::wanted(ctx, &["partner", "reseller"], &["customer"])).await?;
        Ok(SubscriptionConnection::from_page(page, args.after.is_some(), |m| Subscription(rc.subscription_now(m))))
    }

    /// A relationship by global id.
    async fn relationship(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Relationship>> {
        let Some(id) = ids::decode_lookup(NodeType::Relationship, &id)? else { return Ok(None) };
        Ok(prime(&session(ctx)?.loaders.relationships, [id]).await?.remove(&id).map(Relationship))
    }

    /// The relationships the caller is a party to (the platform: all), oldest first.
    #[graphql(complexity = "crate::graphql::cost::connection(first, child_complexity)")]
    async fn relationships(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<RelationshipFilter>,
    ) -> async_graphql::Result<RelationshipConnection> {
        let rc = RequestCtx::of(ctx)?;
        let args = page_args(&rc.limits, first, after)?;
        let cond = filter.unwrap_or_default().key()?.condition_at(rc.now);
        let session = rc.session()?;
        let page = session.reader.page::<relationship::Entity>(cond, &Sort::by_id(Order::Asc), &args).await?;
        session.prefetch(&page, Refs::wanted(ctx, &["partner", "reseller", "indirectProvider"], &["customer"])).await?;
        Ok(RelationshipConnection::from_page(page, args.after.is_some(), Relationship))
    }

    /// A subscription transfer by global id.
    async fn transfer(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<SubscriptionTransfer>> {
        let Some(id) = ids::decode_lookup(NodeType::SubscriptionTransfer, &id)? else { return Ok(None) };
        Ok(prime(&session(ctx)?.loaders.transfers, [id]).await?.remove(&id).map(SubscriptionTransfer))
    }

    /// The subscription transfers the caller may see (as source or target partner, or as the customer), oldest first.
    #[graphql(complexity = "crate::graphql::cost::connection(first, child_complexity)")]
    async fn transfers(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<TransferFilter>,
    ) -> async_graphql::Result<SubscriptionTransferConnection> {
        let rc = RequestCtx::of(ctx)?;
        let args = page_args(&rc.limits, first, after)?;
        let cond = filter.unwrap_or_default().condition(rc.now);
        let session = rc.session()?;
        let page = session.reader.page::<subscription_transfer::Entity>(cond, &Sort::by_id(Order::Asc), &args).await?;
        session.prefetch(&page, Refs::wanted(ctx, &["sourcePartner", "targetPartner"], &["customer"])).await?;
        Ok(SubscriptionTransferConnection::from_page(page, args.after.is_some(), SubscriptionTransfer))
    }

    /// The audit events the caller caused or that concern it, newest first.
    #[graphql(complexity = "crate::graphql::cost::connection(first, child_complexity)")]
    async fn audit_events(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<AuditEventFilter>,
    ) -> async_graphql::Result<AuditEventConnection> {
        let rc = RequestCtx::of(ctx)?;
        let args = page_args(&rc.limits, first, after)?;
        let cond = filter.unwrap_or_default().condition()?;
        let session = rc.session()?;
        let page = session.reader.page::<audit_event::Entity>(cond, &Sort::by_id(Order::Desc), &args).await?;
        session.prefetch(&page, Refs::wanted(ctx, &["partner"], &["customer"])).await?;
        Ok(AuditEventConnection::from_page(page, args.after.is_some(), AuditEvent))
    }

    /// The caller's webhooks, oldest first (a partner's `admin_agent`, a customer's `global_admin`,
    /// the platform's `platform_admin`; others: `FORBIDDEN`). Secrets are never shown.
    #[graphql(complexity = "crate::graphql::cost::connection(first, child_complexity)")]
    async fn webhooks(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<WebhookConnection> {
        let rc = RequestCtx::of(ctx)?;
        let args = page_args(&rc.limits, first, after)?;
        let page = crate::domain::webhooks::page(&rc.session()?.writer, &rc.actor()?, &args).await?;
        Ok(WebhookConnection::from_page(page, args.after.is_some(), super::types::webhook::Webhook))
    }

    /// Deliveries to the caller's webhooks (deleted ones included), newest first; same roles as `webhooks`.
    #[graphql(complexity = "crate::graphql::cost::connection(first, child_complexity)")]
    async fn webhook_deliveries(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<WebhookDeliveryFilter>,
    ) -> async_graphql::Result<WebhookDeliveryConnection> {
        let rc = RequestCtx::of(ctx)?;
        let args = page_args(&rc.limits, first, after)?;
        let filter = filter.unwrap_or_default();
        let parsed = crate::domain::webhooks::DeliveryFilter {
            webhook_id: filter
                .webhook_id
                .as_ref()
                .map(|id| ids::decode("filter.webhookId", NodeType::Webhook, id))
                .transpose()?,
            status: filter.status.map(|s| s.as_str()),
        };
        let page = crate::domain::webhooks::deliveries(&rc.session()?.writer, &rc.actor()?, &parsed, &args).await?;
        Ok(WebhookDeliveryConnection::from_page(page, args.after.is_some(), super::types::webhook::WebhookDelivery))
    }
}
