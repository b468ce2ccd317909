//! `createSubscription`, `registerExternalSubscription`, `updateSubscription`,
//! `suspendSubscription`, `reactivateSubscription`, `cancelSubscription`, `migrateUsageSubscription`.

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};

use crate::domain::subscriptions::{self, Action, CreateSubscription, Migrate, RegisterExternal};
use crate::graphql::context::{RequestCtx, session};
use crate::graphql::ids::{self, NodeType};
use crate::graphql::types::Subscription;
use crate::graphql::types::enums::{BillingModel, Channel};

/// A partner sells a CSP subscription.
#[derive(InputObject)]
pub struct CreateSubscriptionInput {
    /// The customer (with which the seller has an ACTIVE reseller relationship).
    pub customer_id: ID,
    /// The offer's catalogue id.
    pub offer_id: String,
    /// The offer's display name.
    pub offer_name: String,
    /// Seats or metered.
    pub billing_model: BillingModel,
    /// License-based: seats (1 to 100000).
    pub quantity: Option<i32>,
    /// License-based: 1, 12 or 36 months.
    pub term_months: Option<i32>,
    /// License-based: renew at the end of the term.
    #[graphql(default = true)]
    pub auto_renew: bool,
    /// Indirect providers: the reseller of record (its customer's ACTIVE reseller relationship names you as provider).
    pub reseller_id: Option<ID>,
    /// Repeat a call safely: the same key with the same input answers the first result.
    pub idempotency_key: Option<String>,
}

/// Records a subscription bought through another channel.
#[derive(InputObject)]
pub struct RegisterExternalSubscriptionInput {
    /// The customer.
    pub customer_id: ID,
    /// Where it was bought (not `CSP`).
    pub channel: Channel,
    /// The agreement or enrollment number.
    pub external_reference: String,
    /// The offer's id.
    pub offer_id: String,
    /// The offer's name.
    pub offer_name: String,
    /// Seats or metered.
    pub billing_model: BillingModel,
    /// License-based: seats.
    pub quantity: Option<i32>,
    /// Start of the current term (default: now).
    pub term_start: Option<DateTime<Utc>>,
    /// End of the commitment, if any.
    pub term_end: Option<DateTime<Utc>>,
    /// Whether it renews at `termEnd`.
    pub auto_renew: Option<bool>,
    /// Repeat a call safely.
    pub idempotency_key: Option<String>,
}

/// Changes a subscription's seats or renewal.
#[derive(InputObject)]
pub struct UpdateSubscriptionInput {
    /// The subscription.
    pub id: ID,
    /// The version you read (required): a stale one gets `VERSION_CONFLICT`.
    pub expected_version: i32,
    /// New seat count (license-based). Lowering it is possible only inside the cancellation window.
    pub quantity: Option<i32>,
    /// Turn renewal on or off.
    pub auto_renew: Option<bool>,
}

/// Acts on a subscription.
#[derive(InputObject)]
pub struct SubscriptionActionInput {
    /// The subscription.
    pub id: ID,
    /// The version you read (required).
    pub expected_version: i32,
}

/// Replaces a usage-based subscription bought elsewhere with a CSP one.
#[derive(InputObject)]
pub struct MigrateUsageSubscriptionInput {
    /// The non-CSP usage-based subscription; one you can see (a customer's subscriptions bought
    /// elsewhere are visible to partners holding ACTIVE delegated admin with it).
    pub source_subscription_id: ID,
    /// The CSP offer's id (default: the source's).
    pub offer_id: Option<String>,
    /// The CSP offer's name (default: the source's).
    pub offer_name: Option<String>,
    /// Indirect providers: the reseller of record.
    pub reseller_id: Option<ID>,
    /// Also cancel the source, in the same transaction (needs ACTIVE delegated admin as `admin_agent`).
    #[graphql(default = false)]
    pub cancel_source: bool,
    /// Repeat a call safely.
    pub idempotency_key: Option<String>,
}

/// The subscription a mutation made or changed.
#[derive(SimpleObject)]
pub struct SubscriptionPayload {
    /// The subscription as it now stands.
    pub subscription: Subscription,
}

/// What `migrateUsageSubscription` made.
#[derive(SimpleObject)]
pub struct MigrationPayload {
    /// The new CSP subscription (`migratedFrom` names the source).
    pub subscription: Subscription,
    /// The source, ACTIVE or (with `cancelSource`) CANCELLED; `null` when you can no longer see it
    /// (a repeat with the same `idempotencyKey` after your delegated admin ended).
    pub source: Option<Subscription>,
}

#[derive(Default)]
pub struct SubscriptionMutations;

fn optional_partner(field: &str, id: &Option<ID>) -> async_graphql::Result<Option<uuid::Uuid>> {
    Ok(id.as_ref().map(|id| ids::decode(field, NodeType::Partner, id)).transpose()?)
}

/// Selling, recording and changing subscriptions.
#[Object]
impl SubscriptionMutations {
    /// Sells a CSP subscription (partner `admin_agent`/`sales_agent` with an ACTIVE reseller relationship).
    async fn create_subscription(
        &self,
        ctx: &Context<'_>,
        input: CreateSubscriptionInput,
    ) -> async_graphql::Result<SubscriptionPayload> {
        let actor = RequestCtx::of(ctx)?.actor()?;
        let parsed = CreateSubscription::parse(
            ids::decode("customerId", NodeType::Customer, &input.customer_id)?,
            &input.offer_id,
            &input.offer_name,
            input.billing_model.into(),
            input.quantity,
            input.term_months,
            input.auto_renew,
            optional_partner("resellerId", &input.reseller_id)?,
            input.idempotency_key.as_deref(),
        )?;
        let s = subscriptions::create(&session(ctx)?.writer, &actor, parsed).await?;
        Ok(SubscriptionPayload { subscription: Subscription(RequestCtx::of(ctx)?.subscription_now(s)) })
    }

    /// Records a subscription bought through another channel (the customer's `global_admin` or
    /// `billing_admin`, or a partner with ACTIVE delegated admin as `admin_agent`).
    async fn register_external_subscription(
        &self,
        ctx: &Context<'_>,
        input: RegisterExternalSubscriptionInput,
    ) -> async_graphql::Result<SubscriptionPayload> {
        let actor = RequestCtx::of(ctx)?.actor()?;
        let parsed = RegisterExternal::parse(
            ids::decode("customerId", NodeType::Customer, &input.customer_id)?,
            input.channel.into(),
            &input.external_reference,
            &input.offer_id,
            &input.offer_name,
            input.billing_model.into(),
            input.quantity,
            input.term_start,
            input.term_end,
            input.auto_renew,
            input.idempotency_key.as_deref(),
        )?;
        let s = subscriptions::register_external(&session(ctx)?.writer, &actor, parsed).await?;
        Ok(SubscriptionPayload { subscription: Subscription(RequestCtx::of(ctx)?.subscription_now(s)) })
    }

    /// Changes seats or renewal. CSP: the partner of record only.
    async fn update_subscription(
        &self,
        ctx: &Context<'_>,
        input: UpdateSubscriptionInput,
    ) -> async_graphql::Result<SubscriptionPayload> {
        let action = Action::Update { quantity: input.quantity, auto_renew: input.auto_renew };
        change(ctx, &input.id, input.expected_version, action).await
    }

    /// Suspends an ACTIVE CSP subscription (its partner of record).
    async fn suspend_subscription(
        &self,
        ctx: &Context<'_>,
        input: SubscriptionActionInput,
    ) -> async_graphql::Result<SubscriptionPayload> {
        change(ctx, &input.id, input.expected_version, Action::Suspend).await
    }

    /// Reactivates a SUSPENDED subscription before its `termEnd` (its partner of record).
    async fn reactivate_subscription(
        &self,
        ctx: &Context<'_>,
        input: SubscriptionActionInput,
    ) -> async_graphql::Result<SubscriptionPayload> {
        change(ctx, &input.id, input.expected_version, Action::Reactivate).await
    }

    /// Cancels a subscription (CSP license-based: only inside the cancellation window).
    async fn cancel_subscription(
        &self,
        ctx: &Context<'_>,
        input: SubscriptionActionInput,
    ) -> async_graphql::Result<SubscriptionPayload> {
        change(ctx, &input.id, input.expected_version, Action::Cancel).await
    }

    /// Replaces a non-CSP usage-based subscription with a CSP one; the source stays ACTIVE unless `cancelSource`.
    async fn migrate_usage_subscription(
        &self,
        ctx: &Context<'_>,
        input: MigrateUsageSubscriptionInput,
    ) -> async_graphql::Result<MigrationPayload> {
        let actor = RequestCtx::of(ctx)?.actor()?;
        let parsed = Migrate::parse(
            ids::decode("sourceSubscriptionId", NodeType::Subscription, &input.source_subscription_id)?,
            input.offer_id.as_deref(),
            input.offer_name.as_deref(),
            optional_partner("resellerId", &input.reseller_id)?,
            input.cancel_source,
            input.idempotency_key.as_deref(),
        )?;
        let (s, source) = subscriptions::migrate(&session(ctx)?.writer, &actor, parsed).await?;
        let rc = RequestCtx::of(ctx)?;
        Ok(MigrationPayload {
            subscription: Subscription(rc.subscription_now(s)),
            source: source.map(|source| Subscription(rc.subscription_now(source))),
        })
    }
}

async fn change(
    ctx: &Context<'_>,
    id: &ID,
    expected_version: i32,
    action: Action,
) -> async_graphql::Result<SubscriptionPayload> {
    let rc = RequestCtx::of(ctx)?;
    let actor = rc.actor()?;
    let id = ids::decode("id", NodeType::Subscription, id)?;
    let s = subscriptions::change(&session(ctx)?.writer, &actor, id, expected_version, action).await?;
    Ok(SubscriptionPayload { subscription: Subscription(rc.subscription_now(s)) })
}
