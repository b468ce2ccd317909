//! Filter and order inputs of the list fields, turned into query conditions.

use async_graphql::{ID, InputObject};
use chrono::{DateTime, Utc};
use entity::{audit_event, customer, partner, relationship, subscription};
use sea_orm::sea_query::{Expr, ExprTrait, Func};
use sea_orm::{ColumnTrait, Condition, IdenStatic};

use super::enums::{
    BillingModel, Channel, Cloud, CustomerOrderField, OrderDirection, PartnerStatus, PartnerType, RelationshipKind,
    RelationshipStatus, SubscriptionStatus, TransferStatus,
};
use crate::access::Reader;
use crate::domain::{inputs, lifecycle};
use crate::error::ApiResult;
use crate::graphql::ids::{self, NodeType};
use crate::graphql::loaders::ChildFilter;

/// A case-insensitive substring match on any of `columns`.
fn search_condition<C: ColumnTrait + IdenStatic>(columns: &[C], text: &str) -> Condition {
    let escaped = text.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    let pattern = format!("%{escaped}%");
    columns.iter().fold(Condition::any(), |cond, col| {
        cond.add(
            Expr::expr(Func::lower(Expr::col((col.entity_name(), *col))))
                .like(sea_orm::sea_query::LikeExpr::new(pattern.clone()).escape('\\')),
        )
    })
}

/// A filter that becomes a condition at a given instant (statuses are time-dependent).
pub trait ConditionAt {
    fn condition_at(&self, now: DateTime<Utc>) -> Condition;
}

impl ConditionAt for SubscriptionFilterKey {
    fn condition_at(&self, now: DateTime<Utc>) -> Condition {
        SubscriptionFilterKey::condition_at(self, now)
    }
}

impl ConditionAt for RelationshipFilterKey {
    fn condition_at(&self, now: DateTime<Utc>) -> Condition {
        RelationshipFilterKey::condition_at(self, now)
    }
}

/// Narrows a partner list.
#[derive(InputObject, Default, Debug, Clone, PartialEq, Eq, Hash)]
pub struct PartnerFilter {
    /// Only partners of this type.
    pub partner_type: Option<PartnerType>,
    /// Only partners in this cloud.
    pub cloud: Option<Cloud>,
    /// Only partners in this status.
    pub status: Option<PartnerStatus>,
    /// A case-insensitive substring of the name or the domain.
    pub search: Option<String>,
}

impl PartnerFilter {
    /// `BAD_USER_INPUT` naming the field for text no stored value could match (too long, NUL or
    /// other control characters), which PostgreSQL would otherwise refuse.
    pub fn validate(&self) -> ApiResult<()> {
        inputs::filter_text("filter.search", self.search.as_deref())
    }

    pub fn condition(&self) -> Condition {
        use partner::Column as P;
        let mut cond = Condition::all();
        if let Some(t) = self.partner_type {
            cond = cond.add(P::PartnerType.eq(entity::enums::PartnerType::from(t)));
        }
        if let Some(c) = self.cloud {
            cond = cond.add(P::Cloud.eq(entity::enums::Cloud::from(c)));
        }
        if let Some(s) = self.status {
            cond = cond.add(P::Status.eq(entity::enums::PartnerStatus::from(s)));
        }
        if let Some(text) = self.search.as_deref().filter(|t| !t.is_empty()) {
            cond = cond.add(search_condition(&[P::Name, P::Domain], text));
        }
        cond
    }
}

/// Narrows a customer list.
#[derive(InputObject, Default, Debug, Clone)]
pub struct CustomerFilter {
    /// A case-insensitive substring of the company name or the domain.
    pub search: Option<String>,
    /// Only customers in this country (ISO 3166-1 alpha-2).
    pub country: Option<String>,
    /// Only customers in this cloud.
    pub cloud: Option<Cloud>,
}

impl CustomerFilter {
    /// As [`PartnerFilter::validate`].
    pub fn validate(&self) -> ApiResult<()> {
        inputs::filter_text("filter.search", self.search.as_deref())?;
        inputs::filter_text("filter.country", self.country.as_deref())
    }

    pub fn condition(&self) -> Condition {
        use customer::Column as C;
        let mut cond = Condition::all();
        if let Some(text) = self.search.as_deref().filter(|t| !t.is_empty()) {
            cond = cond.add(search_condition(&[C::CompanyName, C::Domain], text));
        }
        if let Some(country) = &self.country {
            cond = cond.add(C::Country.eq(country.to_uppercase()));
        }
        if let Some(c) = self.cloud {
            cond = cond.add(C::Cloud.eq(entity::enums::Cloud::from(c)));
        }
        cond
    }
}

/// The hashable form of a customer list's filter and order (batch key of `Partner.customers`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct CustomerListKey {
    pub search: Option<String>,
    pub country: Option<String>,
    pub cloud: Option<Cloud>,
    pub field: CustomerOrderField,
    pub direction: OrderDirection,
}

impl CustomerListKey {
    pub fn new(filter: &CustomerFilter, order: CustomerOrder) -> Self {
        Self {
            search: filter.search.clone(),
            country: filter.country.clone(),
            cloud: filter.cloud,
            field: order.field,
            direction: order.direction,
        }
    }

    pub fn filter(&self) -> CustomerFilter {
        CustomerFilter { search: self.search.clone(), country: self.country.clone(), cloud: self.cloud }
    }

    pub fn order(&self) -> CustomerOrder {
        CustomerOrder { field: self.field, direction: self.direction }
    }
}

/// The order of a customer list.
#[derive(InputObject, Default, Debug, Clone, Copy)]
pub struct CustomerOrder {
    /// What to order by.
    #[graphql(default_with = "CustomerOrderField::CreatedAt")]
    pub field: CustomerOrderField,
    /// Ascending or descending.
    #[graphql(default_with = "OrderDirection::Asc")]
    pub direction: OrderDirection,
}

/// Narrows a subscription list.
#[derive(InputObject, Default, Debug, Clone)]
pub struct SubscriptionFilter {
    /// Only subscriptions of this customer.
    pub customer_id: Option<ID>,
    /// Only subscriptions whose partner of record is this partner.
    pub partner_id: Option<ID>,
    /// Only subscriptions bought through this channel.
    pub channel: Option<Channel>,
    /// Only subscriptions billed this way.
    pub billing_model: Option<BillingModel>,
    /// Only subscriptions in this status (as it stands now).
    pub status: Option<SubscriptionStatus>,
}

/// The hashable form of a subscription filter (batch key of nested connections).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct SubscriptionFilterKey {
    pub customer_id: Option<uuid::Uuid>,
    pub partner_id: Option<uuid::Uuid>,
    pub channel: Option<Channel>,
    pub billing_model: Option<BillingModel>,
    pub status: Option<SubscriptionStatus>,
}

impl SubscriptionFilter {
    pub fn key(&self) -> ApiResult<SubscriptionFilterKey> {
        Ok(SubscriptionFilterKey {
            customer_id: self
                .customer_id
                .as_ref()
                .map(|id| ids::decode("filter.customerId", NodeType::Customer, id))
                .transpose()?,
            partner_id: self
                .partner_id
                .as_ref()
                .map(|id| ids::decode("filter.partnerId", NodeType::Partner, id))
                .transpose()?,
            channel: self.channel,
            billing_model: self.billing_model,
            status: self.status,
        })
    }
}

impl SubscriptionFilterKey {
    pub fn condition_at(&self, now: DateTime<Utc>) -> Condition {
        use subscription::Column as S;
        let mut cond = Condition::all();
        if let Some(id) = self.customer_id {
            cond = cond.add(S::CustomerId.eq(id));
        }
        if let Some(id) = self.partner_id {
            cond = cond.add(S::PartnerId.eq(id));
        }
        if let Some(c) = self.channel {
            cond = cond.add(S::Channel.eq(entity::enums::Channel::from(c)));
        }
        if let Some(b) = self.billing_model {
            cond = cond.add(S::BillingModel.eq(entity::enums::BillingModel::from(b)));
        }
        if let Some(s) = self.status {
            cond = cond.add(lifecycle::subscription_status_is(s.into(), now));
        }
        cond
    }
}

impl ChildFilter for SubscriptionFilterKey {
    fn condition(&self, reader: &Reader) -> Condition {
        self.condition_at(reader.scope().now())
    }
}

/// Narrows a relationship list.
#[derive(InputObject, Default, Debug, Clone)]
pub struct RelationshipFilter {
    /// Only relationships of this kind.
    pub kind: Option<RelationshipKind>,
    /// Only relationships in this status (as it stands now).
    pub status: Option<RelationshipStatus>,
    /// Only relationships with this customer.
    pub customer_id: Option<ID>,
}

/// The hashable form of a relationship filter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct RelationshipFilterKey {
    pub kind: Option<RelationshipKind>,
    pub status: Option<RelationshipStatus>,
    pub customer_id: Option<uuid::Uuid>,
}

impl RelationshipFilter {
    pub fn key(&self) -> ApiResult<RelationshipFilterKey> {
        Ok(RelationshipFilterKey {
            kind: self.kind,
            status: self.status,
            customer_id: self
                .customer_id
                .as_ref()
                .map(|id| ids::decode("filter.customerId", NodeType::Customer, id))
                .transpose()?,
        })
    }
}

impl RelationshipFilterKey {
    pub fn condition_at(&self, now: DateTime<Utc>) -> Condition {
        use relationship::Column as R;
        let mut cond = Condition::all();
        if let Some(k) = self.kind {
            cond = cond.add(R::Kind.eq(entity::enums::RelationshipKind::from(k)));
        }
        if let Some(s) = self.status {
            cond = cond.add(lifecycle::relationship_status_is(s.into(), now));
        }
        if let Some(id) = self.customer_id {
            cond = cond.add(R::CustomerId.eq(id));
        }
        cond
    }
}

impl ChildFilter for RelationshipFilterKey {
    fn condition(&self, reader: &Reader) -> Condition {
        self.condition_at(reader.scope().now())
    }
}

/// Narrows a transfer list.
#[derive(InputObject, Default, Debug, Clone)]
pub struct TransferFilter {
    /// Only transfers in this status (as it stands now).
    pub status: Option<TransferStatus>,
}

impl TransferFilter {
    pub fn condition(&self, now: DateTime<Utc>) -> Condition {
        match self.status {
            Some(s) => lifecycle::transfer_status_is(s.into(), now),
            None => Condition::all(),
        }
    }
}

/// Narrows the audit trail.
#[derive(InputObject, Default, Debug, Clone)]
pub struct AuditEventFilter {
    /// Only events of this action (e.g. `subscription.create`).
    pub action: Option<String>,
    /// Only events concerning this customer.
    pub customer_id: Option<ID>,
    /// Only events concerning this partner.
    pub partner_id: Option<ID>,
    /// Only events at or after this instant.
    pub from: Option<DateTime<Utc>>,
    /// Only events before this instant.
    pub to: Option<DateTime<Utc>>,
}

impl AuditEventFilter {
    pub fn condition(&self) -> ApiResult<Condition> {
        use audit_event::Column as A;
        let mut cond = Condition::all();
        if let Some(action) = &self.action {
            inputs::filter_text("filter.action", Some(action))?;
            cond = cond.add(A::Action.eq(action.clone()));
        }
        if let Some(id) = &self.customer_id {
            cond = cond.add(A::CustomerId.eq(ids::decode("filter.customerId", NodeType::Customer, id)?));
        }
        if let Some(id) = &self.partner_id {
            let id = ids::decode("filter.partnerId", NodeType::Partner, id)?;
            cond = cond.add(Condition::any().add(A::PartnerId.eq(id)).add(A::RelatedPartnerId.eq(id)));
        }
        if let Some(from) = self.from {
            cond = cond.add(A::OccurredAt.gte(inputs::instant("filter.from", from)?));
        }
        if let Some(to) = self.to {
            cond = cond.add(A::OccurredAt.lt(inputs::instant("filter.to", to)?));
        }
        Ok(cond)
    }
}
