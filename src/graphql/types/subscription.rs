//! `Subscription`: a customer's subscription, bought through a CSP partner or another channel.

use async_graphql::{Context, ID, Object};
use chrono::{DateTime, Utc};
use entity::subscription;

use super::customer::Customer;
use super::enums::{BillingModel, Channel, SubscriptionStatus};
use super::partner::Partner;
use super::{customer_ref, partner_ref, subscription_ref};
use crate::graphql::connection::connection;
use crate::graphql::ids::{self, NodeType};
use crate::graphql::plain::{PlainFields, enumeration, optional, scalar};

/// A customer's subscription to an offer, as it stands now (a term that ended has already renewed or
/// expired, whether or not the lifecycle runner has passed).
pub struct Subscription(pub subscription::Model);

connection!(
    fast SubscriptionConnection,
    SubscriptionEdge,
    Subscription,
    "A page of subscriptions visible to the caller.",
    "A subscription and its cursor."
);

/// A customer's subscription to an offer, as it stands now (a term that ended has already renewed or
/// expired, whether or not the lifecycle runner has passed).
#[Object]
impl Subscription {
    /// The global id of this subscription.
    pub async fn id(&self) -> ID {
        ids::encode(NodeType::Subscription, self.0.id)
    }

    /// The customer that holds the subscription.
    async fn customer(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Customer>> {
        customer_ref(ctx, Some(self.0.customer_id)).await
    }

    /// The offer's catalogue id.
    async fn offer_id(&self) -> &str {
        &self.0.offer_id
    }

    /// The offer's display name.
    async fn offer_name(&self) -> &str {
        &self.0.offer_name
    }

    /// Seats (license-based) or metered (usage-based).
    async fn billing_model(&self) -> BillingModel {
        self.0.billing_model.into()
    }

    /// Where it was bought.
    async fn channel(&self) -> Channel {
        self.0.channel.into()
    }

    /// The partner of record (CSP only); `null` when none or not visible to the caller.
    async fn partner(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Partner>> {
        partner_ref(ctx, self.0.partner_id).await
    }

    /// The indirect reseller of record (CSP sold by an indirect provider only).
    async fn reseller(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Partner>> {
        partner_ref(ctx, self.0.reseller_id).await
    }

    /// Seats (license-based only, 1 to 100000).
    async fn quantity(&self) -> Option<i32> {
        self.0.quantity
    }

    /// The lifecycle state, as it stands now.
    async fn status(&self) -> SubscriptionStatus {
        self.0.status.into()
    }

    /// Commitment length in months (1, 12 or 36; license-based).
    async fn term_months(&self) -> Option<i32> {
        self.0.term_months
    }

    /// Start of the current term.
    async fn term_start(&self) -> DateTime<Utc> {
        self.0.term_start
    }

    /// End of the current commitment, if any.
    async fn term_end(&self) -> Option<DateTime<Utc>> {
        self.0.term_end
    }

    /// Whether the subscription renews at `termEnd`.
    async fn auto_renew(&self) -> bool {
        self.0.auto_renew
    }

    /// CSP license-based: until when it may be cancelled or its quantity lowered.
    async fn cancellation_allowed_until(&self) -> Option<DateTime<Utc>> {
        self.0.cancellation_allowed_until
    }

    /// Non-CSP only: the agreement or enrollment number.
    async fn external_reference(&self) -> Option<&str> {
        self.0.external_reference.as_deref()
    }

    /// The non-CSP subscription that this CSP usage-based one replaced.
    async fn migrated_from(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Subscription>> {
        subscription_ref(ctx, self.0.migrated_from_id).await
    }

    /// Changes with every update; pass it as `expectedVersion` to change the subscription.
    async fn version(&self) -> i32 {
        self.0.version
    }

    /// When it was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// When it last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }

    /// When it was cancelled, if it was.
    async fn cancelled_at(&self) -> Option<DateTime<Utc>> {
        self.0.cancelled_at
    }
}

impl PlainFields for Subscription {
    fn plain_field(&self, name: &str) -> Option<async_graphql::Value> {
        let s = &self.0;
        Some(match name {
            "id" => ids::encode_value(NodeType::Subscription, s.id),
            "offerId" => scalar(&s.offer_id),
            "offerName" => scalar(&s.offer_name),
            "billingModel" => enumeration(BillingModel::from(s.billing_model)),
            "channel" => enumeration(Channel::from(s.channel)),
            "quantity" => optional(&s.quantity),
            "status" => enumeration(SubscriptionStatus::from(s.status)),
            "termMonths" => optional(&s.term_months),
            "termStart" => scalar(&s.term_start),
            "termEnd" => optional(&s.term_end),
            "autoRenew" => scalar(&s.auto_renew),
            "cancellationAllowedUntil" => optional(&s.cancellation_allowed_until),
            "externalReference" => optional(&s.external_reference),
            "version" => scalar(&s.version),
            "createdAt" => scalar(&s.created_at),
            "updatedAt" => scalar(&s.updated_at),
            "cancelledAt" => optional(&s.cancelled_at),
            _ => return None,
        })
    }
}
