//! `Partner`: a partner organisation in the program.

use async_graphql::{Context, ID, Object};
use chrono::{DateTime, Utc};
use entity::partner;
use sea_orm::Condition;
use uuid::Uuid;

use super::customer::{Customer, Under, customer_sort, prime_nested};
use super::enums::{Cloud, PartnerStatus, PartnerType};
use super::filters::{CustomerFilter, CustomerListKey, CustomerOrder, PartnerFilter};
use crate::access::{PartnerLink, Scope, Sort, TotalCount, page_from_sorted_rows};
use crate::error::ApiError;
use crate::graphql::connection::{connection, page_args};
use crate::graphql::context::RequestCtx;
use crate::graphql::ids::{self, NodeType};
use crate::graphql::loaders::{ChildrenKey, Refs, prime};
use crate::graphql::types::customer::{CustomerConnection, customer_page};
use async_graphql::InputType;
use entity::customer;

/// A partner organisation: a direct-bill partner, an indirect provider or an indirect reseller.
pub struct Partner(pub partner::Model);

connection!(
    PartnerConnection,
    PartnerEdge,
    Partner,
    "A page of partners visible to the caller.",
    "A partner and its cursor."
);

/// A partner organisation: a direct-bill partner, an indirect provider or an indirect reseller.
#[Object]
impl Partner {
    /// The global id of this partner.
    pub async fn id(&self) -> ID {
        ids::encode(NodeType::Partner, self.0.id)
    }

    /// The partner's tenant id (the `tid` claim of its users' tokens).
    async fn tenant_id(&self) -> Uuid {
        self.0.tenant_id
    }

    /// The organisation's name.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// The primary domain, lower-cased.
    async fn domain(&self) -> &str {
        &self.0.domain
    }

    /// The partner's place in the program.
    async fn partner_type(&self) -> PartnerType {
        self.0.partner_type.into()
    }

    /// The program membership id (unique).
    async fn partner_network_id(&self) -> &str {
        &self.0.partner_network_id
    }

    /// The cloud the partner lives in.
    async fn cloud(&self) -> Cloud {
        self.0.cloud.into()
    }

    /// Whether the partner may transact.
    async fn status(&self) -> PartnerStatus {
        self.0.status.into()
    }

    /// Changes with every update (optimistic concurrency).
    async fn version(&self) -> i32 {
        self.0.version
    }

    /// When the partner was onboarded.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// When the partner last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }

    /// The customers this partner serves (an ACTIVE reseller relationship, as partner or indirect
    /// provider, or an ACTIVE unexpired delegated-admin one), among those the caller may see.
    #[graphql(complexity = "crate::graphql::cost::connection(first, child_complexity)")]
    async fn customers(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<CustomerFilter>,
        order_by: Option<CustomerOrder>,
    ) -> async_graphql::Result<CustomerConnection> {
        let rc = RequestCtx::of(ctx)?;
        let filter = filter.unwrap_or_default();
        filter.validate()?;
        let list = CustomerListKey::new(&filter, order_by.unwrap_or_default());
        if after.is_some() {
            let cond = Condition::all()
                .add(Scope::of_partner(&self.0, rc.now).customer_condition())
                .add(list.filter().condition());
            return customer_page(ctx, cond, first, after, Some(list.order())).await;
        }
        // The first page comes from a batch over every partner of the enclosing list.
        let session = rc.session()?;
        let args = page_args(&rc.limits, first, None)?;
        let total = {
            let (loaders, key) = (session.loaders.clone(), (self.0.id, list.clone()));
            TotalCount::new(move || {
                let (loaders, key) = (loaders.clone(), key.clone());
                Box::pin(async move {
                    loaders
                        .partner_customer_counts
                        .load_one(key)
                        .await
                        .map(|n| n.unwrap_or(0))
                        .map_err(ApiError::from_gql)
                })
            })
        };
        let key = ChildrenKey { parent: self.0.id, limit: args.first + 1, filter: list.clone(), refs: Refs::default() };
        let rows = session.loaders.partner_customers.load_one(key).await?.unwrap_or_default();
        session.loaders.customers.feed_many(rows.iter().map(|c| (c.id, c.clone()))).await;
        let ids: Vec<_> = rows.iter().map(|c| c.id).collect();
        let page = page_from_sorted_rows::<customer::Entity>(rows, &customer_sort(list.order()), args.first, total);
        prime_nested(ctx, &ids, Under::Page).await?;
        Ok(CustomerConnection::from_page(page, false, Customer))
    }

    /// The indirect resellers of this indirect provider (ACTIVE indirect-reseller relationships).
    #[graphql(complexity = "crate::graphql::cost::connection(first, child_complexity)")]
    async fn resellers(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<PartnerFilter>,
    ) -> async_graphql::Result<PartnerConnection> {
        linked_partner_page(ctx, PartnerLink::ResellersOf, self.0.id, first, after, filter.unwrap_or_default()).await
    }

    /// The indirect providers this indirect reseller sells through (ACTIVE indirect-reseller relationships).
    #[graphql(complexity = "crate::graphql::cost::connection(first, child_complexity)")]
    async fn providers(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<PartnerFilter>,
    ) -> async_graphql::Result<PartnerConnection> {
        linked_partner_page(ctx, PartnerLink::ProvidersOf, self.0.id, first, after, filter.unwrap_or_default()).await
    }
}

/// A page of visible partners matching `cond`, in onboarding order.
pub async fn partner_page(
    ctx: &Context<'_>,
    cond: Condition,
    first: Option<i32>,
    after: Option<String>,
) -> async_graphql::Result<PartnerConnection> {
    let rc = RequestCtx::of(ctx)?;
    let args = page_args(&rc.limits, first, after)?;
    let session = rc.session()?;
    let page = session.reader.page::<partner::Entity>(cond, &Sort::by_id(sea_orm::Order::Asc), &args).await?;
    session.remember_partners(&page).await;
    let ids: Vec<Uuid> = page.items.iter().map(|(_, p)| p.id).collect();
    prime_under_partners(ctx, &ids, Under::Page).await?;
    Ok(PartnerConnection::from_page(page, args.after.is_some(), Partner))
}

/// What nested connections under a page of partners (or the partner looked up) need, loaded for
/// all of them at once.
pub async fn prime_under_partners(ctx: &Context<'_>, ids: &[Uuid], under: Under) -> async_graphql::Result<()> {
    prime_partner_customers(ctx, ids, under).await?;
    prime_linked_partners(ctx, "resellers", PartnerLink::ResellersOf, ids, under).await?;
    prime_linked_partners(ctx, "providers", PartnerLink::ProvidersOf, ids, under).await
}

/// A nested partner connection (`resellers`, `providers`, `Customer.partners`): the first page
/// comes from a batch over every parent of the enclosing list, later pages by a keyset query.
pub async fn linked_partner_page(
    ctx: &Context<'_>,
    link: PartnerLink,
    parent: Uuid,
    first: Option<i32>,
    after: Option<String>,
    filter: PartnerFilter,
) -> async_graphql::Result<PartnerConnection> {
    filter.validate()?;
    let rc = RequestCtx::of(ctx)?;
    if after.is_some() {
        let relation = match link {
            PartnerLink::ResellersOf => Scope::resellers_of(parent),
            PartnerLink::ProvidersOf => Scope::providers_of(parent),
            PartnerLink::PartnersOfCustomer => Scope::partners_of_customer(parent, rc.now),
        };
        return partner_page(ctx, Condition::all().add(relation).add(filter.condition()), first, after).await;
    }
    let session = rc.session()?;
    let args = page_args(&rc.limits, first, None)?;
    let key = (link, filter);
    let total = {
        let (loaders, key) = (session.loaders.clone(), (parent, key.clone()));
        TotalCount::new(move || {
            let (loaders, key) = (loaders.clone(), key.clone());
            Box::pin(async move {
                loaders.linked_partner_counts.load_one(key).await.map(|n| n.unwrap_or(0)).map_err(ApiError::from_gql)
            })
        })
    };
    let children = ChildrenKey { parent, limit: args.first + 1, filter: key, refs: Refs::default() };
    let rows = session.loaders.linked_partners.load_one(children).await?.unwrap_or_default();
    session.loaders.partners.feed_many(rows.iter().map(|p| (p.id, p.clone()))).await;
    let ids: Vec<Uuid> = rows.iter().map(|p| p.id).collect();
    let page = page_from_sorted_rows::<partner::Entity>(rows, &Sort::by_id(sea_orm::Order::Asc), args.first, total);
    prime_under_partners(ctx, &ids, Under::Page).await?;
    Ok(PartnerConnection::from_page(page, false, Partner))
}

/// Primes a nested partner connection named `field` under `parents` (a page of them, or the one
/// looked up).
pub async fn prime_linked_partners(
    ctx: &Context<'_>,
    field: &str,
    link: PartnerLink,
    parents: &[Uuid],
    under: Under,
) -> async_graphql::Result<()> {
    if parents.is_empty() {
        return Ok(());
    }
    let rc = RequestCtx::of(ctx)?;
    let loaders = &rc.session()?.loaders;
    let look = ctx.look_ahead();
    for selection in under.fields(&look, field) {
        let (mut first, mut filter, mut paged) = (None, PartnerFilter::default(), false);
        for (name, value) in selection.arguments()? {
            match name.as_str() {
                "after" => paged = value != async_graphql::Value::Null,
                "first" => first = value.into_json().ok().and_then(|v| v.as_i64()).map(|n| n as i32),
                "filter" => {
                    filter = PartnerFilter::parse(Some(value))
                        .map_err(|_| ApiError::bad_input("filter", "not a valid filter"))?
                }
                _ => {}
            }
        }
        if paged {
            continue;
        }
        filter.validate()?;
        let limit = page_args(&rc.limits, first, None)?.first + 1;
        let key = (link, filter);
        let keys =
            parents.iter().map(|p| ChildrenKey { parent: *p, limit, filter: key.clone(), refs: Refs::default() });
        prime(&loaders.linked_partners, keys).await?;
        if selection.selection_set().any(|f| f.name() == "totalCount") {
            prime(&loaders.linked_partner_counts, parents.iter().map(|p| (*p, key.clone()))).await?;
        }
    }
    Ok(())
}

/// Primes `customers` (and its `totalCount`) under a list of partners for the whole page at once,
/// so that each costs one statement however many partners the page holds.
async fn prime_partner_customers(ctx: &Context<'_>, partners: &[Uuid], under: Under) -> async_graphql::Result<()> {
    if partners.is_empty() {
        return Ok(());
    }
    let rc = RequestCtx::of(ctx)?;
    let loaders = &rc.session()?.loaders;
    let look = ctx.look_ahead();
    for field in under.fields(&look, "customers") {
        let (mut first, mut filter, mut order, mut paged) =
            (None, CustomerFilter::default(), CustomerOrder::default(), false);
        for (name, value) in field.arguments()? {
            match name.as_str() {
                "after" => paged = value != async_graphql::Value::Null,
                "first" => first = value.into_json().ok().and_then(|v| v.as_i64()).map(|n| n as i32),
                "filter" => {
                    filter = CustomerFilter::parse(Some(value))
                        .map_err(|_| ApiError::bad_input("filter", "not a valid filter"))?
                }
                "orderBy" => {
                    order = CustomerOrder::parse(Some(value))
                        .map_err(|_| ApiError::bad_input("orderBy", "not a valid order"))?
                }
                _ => {}
            }
        }
        if paged {
            continue;
        }
        filter.validate()?;
        let list = CustomerListKey::new(&filter, order);
        let limit = page_args(&rc.limits, first, None)?.first + 1;
        let keys =
            partners.iter().map(|p| ChildrenKey { parent: *p, limit, filter: list.clone(), refs: Refs::default() });
        prime(&loaders.partner_customers, keys).await?;
        if field.selection_set().any(|f| f.name() == "totalCount") {
            prime(&loaders.partner_customer_counts, partners.iter().map(|p| (*p, list.clone()))).await?;
        }
    }
    Ok(())
}
