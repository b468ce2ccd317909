//! `Customer`: a customer organisation.

use async_graphql::{Context, ID, Object};
use chrono::{DateTime, Utc};
use entity::{customer, relationship, subscription};
use sea_orm::{ColumnTrait, Condition, Order};
use uuid::Uuid;

use super::enums::{Cloud, CustomerOrderField, OrderDirection};
use super::filters::ConditionAt;
use super::filters::{CustomerOrder, PartnerFilter, RelationshipFilter, SubscriptionFilter};
use super::partner::{PartnerConnection, linked_partner_page};
use super::relationship::{Relationship, RelationshipConnection};
use super::subscription::{Subscription, SubscriptionConnection};
use crate::access::{CursorKey, Page, PageArgs, Sort, TotalCount, Visible, page_from_rows};
use crate::error::{ApiError, ApiResult};
use crate::graphql::connection::{connection, page_args};
use crate::graphql::context::RequestCtx;
use crate::graphql::ids::{self, NodeType};
use crate::graphql::loaders::{
    ChildCounts, ChildFilter, Children, ChildrenKey, Loaders, RELATIONSHIP_REFS, References, Refs, SUBSCRIPTION_REFS,
    prime,
};
use crate::graphql::plain::{PlainFields, enumeration, scalar};
use async_graphql::dataloader::{DataLoader, HashMapCache};
use std::sync::Arc;

/// A customer organisation. It may have no partner at all (it bought directly from the vendor).
pub struct Customer(pub customer::Model);

connection!(
    fast CustomerConnection,
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

/// A page of visible customers matching `cond`, with the nested connections the query asks for
/// primed for the whole page.
pub async fn customer_page(
    ctx: &Context<'_>,
    cond: Condition,
    first: Option<i32>,
    after: Option<String>,
    order_by: Option<CustomerOrder>,
) -> async_graphql::Result<CustomerConnection> {
    let rc = RequestCtx::of(ctx)?;
    let args = page_args(&rc.limits, first, after)?;
    let sort = customer_sort(order_by.unwrap_or_default());
    let session = rc.session()?;
    let page = session.reader.page::<customer::Entity>(cond, &sort, &args).await?;
    session.remember_customers(&page).await;
    let ids: Vec<Uuid> = page.items.iter().map(|(_, c)| c.id).collect();
    prime_nested(ctx, &ids, Under::Page).await?;
    Ok(CustomerConnection::from_page(page, args.after.is_some(), Customer))
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
    #[graphql(complexity = "crate::graphql::cost::connection(first, child_complexity)")]
    async fn subscriptions(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<SubscriptionFilter>,
    ) -> async_graphql::Result<SubscriptionConnection> {
        let rc = RequestCtx::of(ctx)?;
        let mut key = filter.unwrap_or_default().key()?;
        key.customer_id = None;
        let refs = Refs::wanted(ctx, SUBSCRIPTION_REFS.0, SUBSCRIPTION_REFS.1);
        let nested = Nested {
            parent: self.0.id,
            column: subscription::Column::CustomerId,
            rows: |l| &l.customer_subscriptions,
            counts: |l| &l.customer_subscription_counts,
        };
        let page = nested.page(rc, first, after, key, refs).await?;
        Ok(SubscriptionConnection::from_page(page.0, page.1, |m| Subscription(rc.subscription_now(m))))
    }

    /// The customer's relationships that the caller may see (pending requests included, for the customer).
    #[graphql(complexity = "crate::graphql::cost::connection(first, child_complexity)")]
    async fn relationships(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<RelationshipFilter>,
    ) -> async_graphql::Result<RelationshipConnection> {
        let rc = RequestCtx::of(ctx)?;
        let mut key = filter.unwrap_or_default().key()?;
        key.customer_id = None;
        let refs = Refs::wanted(ctx, RELATIONSHIP_REFS.0, RELATIONSHIP_REFS.1);
        let nested = Nested {
            parent: self.0.id,
            column: relationship::Column::CustomerId,
            rows: |l| &l.customer_relationships,
            counts: |l| &l.customer_relationship_counts,
        };
        let page = nested.page(rc, first, after, key, refs).await?;
        Ok(RelationshipConnection::from_page(page.0, page.1, Relationship))
    }

    /// The partners serving this customer (ACTIVE reseller relationship, as partner or indirect
    /// provider, or ACTIVE unexpired delegated admin), among those the caller may see.
    #[graphql(complexity = "crate::graphql::cost::connection(first, child_complexity)")]
    async fn partners(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<PartnerFilter>,
    ) -> async_graphql::Result<PartnerConnection> {
        let link = crate::access::PartnerLink::PartnersOfCustomer;
        linked_partner_page(ctx, link, self.0.id, first, after, filter.unwrap_or_default()).await
    }
}

/// A nested connection under one customer: the first page comes batched (one statement for all the
/// customers of the enclosing list, see [`Children`]), later pages (`after`) by a direct keyset query;
/// the total is batched too.
struct Nested<E: Visible, F> {
    parent: Uuid,
    column: E::Column,
    rows: fn(&Loaders) -> &DataLoader<Children<E, F>, HashMapCache>,
    counts: fn(&Loaders) -> &DataLoader<ChildCounts<E, F>, HashMapCache>,
}

impl<E, F> Nested<E, F>
where
    E: Visible,
    E::Model: Send + Sync + Clone + References,
    E::Column: Send + Sync,
    F: ChildFilter + ConditionAt,
{
    /// The page and whether it was asked for with `after`.
    async fn page(
        &self,
        rc: &RequestCtx,
        first: Option<i32>,
        after: Option<String>,
        key: F,
        refs: Refs,
    ) -> ApiResult<(Page<E::Model>, bool)> {
        let session = rc.session()?;
        let args = page_args(&rc.limits, first, after)?;
        let total = {
            let (loaders, counts, parent, key) = (session.loaders.clone(), self.counts, self.parent, key.clone());
            TotalCount::new(move || {
                let (loaders, key) = (loaders.clone(), key.clone());
                Box::pin(async move {
                    counts(&loaders).load_one((parent, key)).await.map(|n| n.unwrap_or(0)).map_err(ApiError::from_gql)
                })
            })
        };
        let page = match &args {
            PageArgs { after: None, first } => {
                let key = ChildrenKey { parent: self.parent, limit: first + 1, filter: key, refs };
                let rows = (self.rows)(&session.loaders).load_one(key).await.map_err(ApiError::from_gql)?;
                page_from_rows::<E>(rows.map(Arc::unwrap_or_clone).unwrap_or_default(), *first, total)
            }
            PageArgs { .. } => {
                let cond = Condition::all().add(self.column.eq(self.parent)).add(key.condition_at(rc.now));
                let mut page = session.reader.page::<E>(cond, &Sort::by_id(Order::Asc), &args).await?;
                session.prefetch(&page, refs).await.map_err(ApiError::from_gql)?;
                page.total = total;
                page
            }
        };
        Ok((page, args.after.is_some()))
    }
}

/// Where the objects whose nested connections are primed sit under the field being resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Under {
    /// In a connection (a page): under its `nodes` and `edges { node }`.
    Page,
    /// The field's own object (a lookup by id).
    Object,
}

impl Under {
    /// The selections of the nested field `name` of the objects.
    pub fn fields<'a>(self, look: &async_graphql::Lookahead<'a>, name: &str) -> Vec<async_graphql::SelectionField<'a>> {
        match self {
            Under::Page => {
                let mut fields = look.field("nodes").field(name).selection_fields();
                fields.extend(look.field("edges").field("node").field(name).selection_fields());
                fields
            }
            Under::Object => look.field(name).selection_fields(),
        }
    }
}

/// Primes the nested connections that the query asks under a page of customers or a customer
/// looked up (`subscriptions`, `relationships`, `partners` and their totals) for all of them at
/// once, so that each needs one statement however many customers the page holds, independent of
/// timing, and none waits for a loader's batching window.
pub async fn prime_nested(ctx: &Context<'_>, customers: &[Uuid], under: Under) -> async_graphql::Result<()> {
    if customers.is_empty() {
        return Ok(());
    }
    let rc = RequestCtx::of(ctx)?;
    let loaders = &rc.session()?.loaders;
    let look = ctx.look_ahead();
    super::partner::prime_linked_partners(
        ctx,
        "partners",
        crate::access::PartnerLink::PartnersOfCustomer,
        customers,
        under,
    )
    .await?;
    for field in under.fields(&look, "subscriptions") {
        let Some((first, filter)) = nested_args::<SubscriptionFilter>(rc, &field)? else { continue };
        let mut key = filter.key()?;
        key.customer_id = None;
        let refs = Refs::of_field(&field, SUBSCRIPTION_REFS.0, SUBSCRIPTION_REFS.1);
        let keys = customers.iter().map(|p| ChildrenKey { parent: *p, limit: first + 1, filter: key.clone(), refs });
        prime(&loaders.customer_subscriptions, keys).await?;
        if field.selection_set().any(|f| f.name() == "totalCount") {
            prime(&loaders.customer_subscription_counts, customers.iter().map(|p| (*p, key.clone()))).await?;
        }
    }
    for field in under.fields(&look, "relationships") {
        let Some((first, filter)) = nested_args::<RelationshipFilter>(rc, &field)? else { continue };
        let mut key = filter.key()?;
        key.customer_id = None;
        let refs = Refs::of_field(&field, RELATIONSHIP_REFS.0, RELATIONSHIP_REFS.1);
        let keys = customers.iter().map(|p| ChildrenKey { parent: *p, limit: first + 1, filter: key.clone(), refs });
        prime(&loaders.customer_relationships, keys).await?;
        if field.selection_set().any(|f| f.name() == "totalCount") {
            prime(&loaders.customer_relationship_counts, customers.iter().map(|p| (*p, key.clone()))).await?;
        }
    }
    Ok(())
}

/// `first` and `filter` of a nested connection field; `None` when it pages with `after` (not primed).
fn nested_args<F: async_graphql::InputType + Default>(
    rc: &RequestCtx,
    field: &async_graphql::SelectionField<'_>,
) -> async_graphql::Result<Option<(u64, F)>> {
    let (mut first, mut filter) = (None, F::default());
    for (name, value) in field.arguments()? {
        match name.as_str() {
            "after" if value != async_graphql::Value::Null => return Ok(None),
            "first" => first = value.into_json().ok().and_then(|v| v.as_i64()).map(|n| n as i32),
            "filter" => {
                filter = F::parse(Some(value)).map_err(|_| ApiError::bad_input("filter", "not a valid filter"))?;
            }
            _ => {}
        }
    }
    Ok(Some((page_args(&rc.limits, first, None)?.first, filter)))
}

impl PlainFields for Customer {
    fn plain_field(&self, name: &str) -> Option<async_graphql::Value> {
        let c = &self.0;
        Some(match name {
            "id" => ids::encode_value(NodeType::Customer, c.id),
            "tenantId" => scalar(&c.tenant_id),
            "companyName" => scalar(&c.company_name),
            "domain" => scalar(&c.domain),
            "country" => scalar(&c.country),
            "cloud" => enumeration(Cloud::from(c.cloud)),
            "version" => scalar(&c.version),
            "createdAt" => scalar(&c.created_at),
            "updatedAt" => scalar(&c.updated_at),
            _ => return None,
        })
    }
}
