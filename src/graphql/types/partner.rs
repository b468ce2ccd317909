//! `Partner`: a partner organisation in the program.

use async_graphql::{Context, ID, Object};
use chrono::{DateTime, Utc};
use entity::partner;
use sea_orm::Condition;
use uuid::Uuid;

use super::enums::{Cloud, PartnerStatus, PartnerType};
use super::filters::{CustomerFilter, CustomerOrder, PartnerFilter};
use crate::access::{Scope, Sort};
use crate::graphql::connection::{connection, page_args};
use crate::graphql::context::RequestCtx;
use crate::graphql::ids::{self, NodeType};
use crate::graphql::types::customer::{CustomerConnection, customer_page};

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
    async fn customers(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<CustomerFilter>,
        order_by: Option<CustomerOrder>,
    ) -> async_graphql::Result<CustomerConnection> {
        let now = RequestCtx::of(ctx)?.now;
        let cond = Condition::all()
            .add(Scope::of_partner(&self.0, now).customer_condition())
            .add(filter.unwrap_or_default().condition());
        customer_page(ctx, cond, first, after, order_by).await
    }

    /// The indirect resellers of this indirect provider (ACTIVE indirect-reseller relationships).
    async fn resellers(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<PartnerFilter>,
    ) -> async_graphql::Result<PartnerConnection> {
        let cond = Condition::all().add(Scope::resellers_of(self.0.id)).add(filter.unwrap_or_default().condition());
        partner_page(ctx, cond, first, after).await
    }

    /// The indirect providers this indirect reseller sells through (ACTIVE indirect-reseller relationships).
    async fn providers(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<PartnerFilter>,
    ) -> async_graphql::Result<PartnerConnection> {
        let cond = Condition::all().add(Scope::providers_of(self.0.id)).add(filter.unwrap_or_default().condition());
        partner_page(ctx, cond, first, after).await
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
    Ok(PartnerConnection::from_page(page, args.after.is_some(), Partner))
}
