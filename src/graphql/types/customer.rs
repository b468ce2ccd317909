//! `Customer`: a customer organisation.

use async_graphql::{Context, ID, Object};
use chrono::{DateTime, Utc};
use entity::{customer, relationship, subscription};
use sea_orm::{ColumnTrait, Condition, Order};
use uuid::Uuid;

use super::enums::{Cloud, CustomerOrderField, OrderDirection};
use super::filters::{CustomerOrder, PartnerFilter, RelationshipFilter, SubscriptionFilter};
use super::partner::{PartnerConnection, partner_page};
use super::relationship::{Relationship, RelationshipConnection};
use super::subscription::{Subscription, SubscriptionConnection};
use crate::access::{CursorKey, PageArgs, Sort, TotalCount, page_from_rows};
use crate::error::ApiError;
use crate::graphql::connection::{connection, page_args};
use crate::graphql::context::RequestCtx;
use crate::graphql::ids::{self, NodeType};
use crate::graphql::loaders::ChildrenKey;

/// A customer organisation. It may have no partner at all (it bought directly from the vendor).
pub struct Customer(pub customer::Model);

connection!(
    CustomerConnection,
    CustomerEdge,
    Customer,
    "A page of customers visible to the caller.",
    "A customer and its cursor."
);

/// The sort of a customer list.
pub fn customer_sort(order: CustomerOrder) -> Sort<customer::Entity> {
    let direction = match order.direction {
        OrderDirection::Asc => Order::Asc,
        OrderDirection::Desc => Order::Desc,
    };
    let column: (customer::Column, fn(&customer::Model) -> CursorKey) = match order.field {
        CustomerOrderField::CompanyName => (customer::Column::CompanyName, |c| CursorKey::Text(c.company_name.clone())),
        CustomerOrderField::CreatedAt => (customer::Column::CreatedAt, |c| CursorKey::Time(c.created_at)),
    };
    Sort { column: Some(column), direction }
}

/// A customer organisation. It may have no partner at all (it bought directly from the vendor).
#[Object]
impl Customer {
    /// The global id of this customer.
    pub async fn id(&self) -> ID {
        ids::encode(NodeType::Customer, self.0.id)
    }

    /// The customer's tenant id (the `tid` claim of its users' tokens).
    async fn tenant_id(&self) -> Uuid {
        self.0.tenant_id
    }

    /// The company's name.
    async fn company_name(&self) -> &str {
        &self.0.company_name
    }

    /// The primary domain, lower-cased.
    async fn domain(&self) -> &str {
        &self.0.domain
    }

    /// ISO 3166-1 alpha-2 country code.
    async fn country(&self) -> &str {
        &self.0.country
    }

    /// The cloud the customer lives in.
    async fn cloud(&self) -> Cloud {
        self.0.cloud.into()
    }

    /// Changes with every update (optimistic concurrency).
    async fn version(&self) -> i32 {
        self.0.version
    }

    /// When the customer was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// When the customer last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }

    /// The customer's subscriptions that the caller may see (all of them for the customer itself and
    /// for a partner holding delegated admin; otherwise those the partner sold).
    async fn subscriptions(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<SubscriptionFilter>,
    ) -> async_graphql::Result<SubscriptionConnection> {
        let rc = RequestCtx::of(ctx)?;
        let session = rc.session()?;
        let args = page_args(&rc.limits, first, after)?;
        let mut key = filter.unwrap_or_default().key()?;
        key.customer_id = None;
        let loaders = session.loaders.clone();
        let total = {
            let parent = self.0.id;
            let key = key.clone();
            TotalCount::new(move || {
                let (loaders, key) = (loaders.clone(), key.clone());
                Box::pin(async move {
                    loaders
                        .customer_subscription_counts
                        .load_one((parent, key))
                        .await
                        .map(|n| n.unwrap_or(0))
                        .map_err(ApiError::from_gql)
                })
            })
        };
        let cond = Condition::all().add(subscription::Column::CustomerId.eq(self.0.id)).add(key.condition_at(rc.now));
        let page = match &args {
            PageArgs { after: None, first } => {
                let rows = session
                    .loaders
                    .customer_subscriptions
                    .load_one(ChildrenKey { parent: self.0.id, limit: first + 1, filter: key })
                    .await?
                    .unwrap_or_default();
                page_from_rows::<subscription::Entity>(rows, *first, total)
            }
            PageArgs { .. } => {
                let mut page =
                    session.reader.page::<subscription::Entity>(cond, &Sort::by_id(Order::Asc), &args).await?;
                page.total = total;
                page
            }
        };
        Ok(SubscriptionConnection::from_page(page, args.after.is_some(), |m| Subscription(rc.subscription_now(m))))
    }

    /// The customer's relationships that the caller may see (pending requests included, for the customer).
    async fn relationships(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<RelationshipFilter>,
    ) -> async_graphql::Result<RelationshipConnection> {
        let rc = RequestCtx::of(ctx)?;
        let session = rc.session()?;
        let args = page_args(&rc.limits, first, after)?;
        let mut key = filter.unwrap_or_default().key()?;
        key.customer_id = None;
        let loaders = session.loaders.clone();
        let total = {
            let parent = self.0.id;
            let key = key.clone();
            TotalCount::new(move || {
                let (loaders, key) = (loaders.clone(), key.clone());
                Box::pin(async move {
                    loaders
                        .customer_relationship_counts
                        .load_one((parent, key))
                        .await
                        .map(|n| n.unwrap_or(0))
                        .map_err(ApiError::from_gql)
                })
            })
        };
        let cond = Condition::all().add(relationship::Column::CustomerId.eq(self.0.id)).add(key.condition_at(rc.now));
        let page = match &args {
            PageArgs { after: None, first } => {
                let rows = session
                    .loaders
                    .customer_relationships
                    .load_one(ChildrenKey { parent: self.0.id, limit: first + 1, filter: key })
                    .await?
                    .unwrap_or_default();
                page_from_rows::<relationship::Entity>(rows, *first, total)
            }
            PageArgs { .. } => {
                let mut page =
                    session.reader.page::<relationship::Entity>(cond, &Sort::by_id(Order::Asc), &args).await?;
                page.total = total;
                page
            }
        };
        Ok(RelationshipConnection::from_page(page, args.after.is_some(), Relationship))
    }

    /// The partners serving this customer (ACTIVE reseller relationship, as partner or indirect
    /// provider, or ACTIVE unexpired delegated admin), among those the caller may see.
    async fn partners(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<PartnerFilter>,
    ) -> async_graphql::Result<PartnerConnection> {
        let now = RequestCtx::of(ctx)?.now;
        let cond = Condition::all()
            .add(crate::access::Scope::partners_of_customer(self.0.id, now))
            .add(filter.unwrap_or_default().condition());
        partner_page(ctx, cond, first, after).await
    }
}
