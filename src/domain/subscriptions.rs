//! Subscriptions: CSP sales (R5, R6), subscriptions bought through other channels (R10), changes by
//! the partner of record only (R10), new-commerce terms (R11), multi-channel usage migration (R9).
//! Every change of an existing subscription is versioned (R13); creations are idempotent (R14).

use chrono::{DateTime, Utc};
use entity::enums::{BillingModel, Channel, SubscriptionStatus};
use entity::{customer, partner, subscription};
use sea_orm::{ActiveModelTrait, ConnectionTrait, DatabaseTransaction, DbBackend, IntoActiveModel};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use super::audit::{self, By, Change};
use super::idempotency::{self, Claim};
use super::inputs::{self, IdempotencyKey, Quantity, TermMonths, Text, limits};
use super::lifecycle::{add_months, effective_subscription};
use super::{Actor, Writer, rules, versioned};
use crate::auth::{Role, Tenant};
use crate::error::{ApiError, ApiResult, Code};

const SELLERS: &[Role] = &[Role::AdminAgent, Role::SalesAgent];

/// Seats and term of a license-based subscription; nothing for a usage-based one.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Terms {
    pub quantity: Option<i32>,
    pub term_months: Option<i32>,
}

impl Terms {
    /// R11 inputs: license-based needs a quantity (and, when `term_required`, a term); usage-based has neither.
    pub fn parse(
        billing: BillingModel,
        quantity: Option<i32>,
        term_months: Option<i32>,
        term_required: bool,
    ) -> ApiResult<Self> {
        match billing {
            BillingModel::LicenseBased => {
                let quantity = Quantity::parse(
                    "quantity",
                    quantity.ok_or_else(|| {
                        ApiError::bad_input("quantity", "license-based subscriptions need a quantity")
                    })?,
                )?;
                let term = match term_months {
                    Some(t) => Some(TermMonths::parse("termMonths", t)?.get()),
                    None if term_required => {
                        return Err(ApiError::bad_input(
                            "termMonths",
                            "license-based subscriptions need a term: 1, 12 or 36",
                        ));
                    }
                    None => None,
                };
                Ok(Self { quantity: Some(quantity.get()), term_months: term })
            }
            BillingModel::UsageBased => {
                if quantity.is_some() {
                    return Err(ApiError::bad_input(
                        "quantity",
                        "usage-based subscriptions are metered: leave quantity out",
                    ));
                }
                if term_months.is_some() {
                    return Err(ApiError::bad_input("termMonths", "usage-based subscriptions have no term"));
                }
                Ok(Self { quantity: None, term_months: None })
            }
        }
    }
}

/// `createSubscription` input, parsed.
#[derive(Debug, Clone, Serialize)]
pub struct CreateSubscription {
    pub customer_id: Uuid,
    pub offer_id: String,
    pub offer_name: String,
    pub billing_model: BillingModel,
    pub terms: Terms,
    pub auto_renew: bool,
    pub reseller_id: Option<Uuid>,
    #[serde(skip)]
    pub idempotency_key: Option<IdempotencyKey>,
}

impl CreateSubscription {
    #[allow(clippy::too_many_arguments)]
    pub fn parse(
        customer_id: Uuid,
        offer_id: &str,
        offer_name: &str,
        billing_model: BillingModel,
        quantity: Option<i32>,
        term_months: Option<i32>,
        auto_renew: bool,
        reseller_id: Option<Uuid>,
        idempotency_key: Option<&str>,
    ) -> ApiResult<Self> {
        Ok(Self {
            customer_id,
            offer_id: Text::parse("offerId", offer_id, limits::IDENTIFIER)?.into_string(),
            offer_name: Text::parse("offerName", offer_name, limits::NAME)?.into_string(),
            billing_model,
            terms: Terms::parse(billing_model, quantity, term_months, true)?,
            auto_renew,
            reseller_id,
            idempotency_key: IdempotencyKey::parse(idempotency_key)?,
        })
    }
}

/// `registerExternalSubscription` input, parsed.
#[derive(Debug, Clone, Serialize)]
pub struct RegisterExternal {
    pub customer_id: Uuid,
    pub channel: Channel,
    pub external_reference: String,
    pub offer_id: String,
    pub offer_name: String,
    pub billing_model: BillingModel,
    pub terms: Terms,
    pub term_start: Option<DateTime<Utc>>,
    pub term_end: Option<DateTime<Utc>>,
    pub auto_renew: bool,
    #[serde(skip)]
    pub idempotency_key: Option<IdempotencyKey>,
}

impl RegisterExternal {
    #[allow(clippy::too_many_arguments)]
    pub fn parse(
        customer_id: Uuid,
        channel: Channel,
        external_reference: &str,
        offer_id: &str,
        offer_name: &str,
        billing_model: BillingModel,
        quantity: Option<i32>,
        term_start: Option<DateTime<Utc>>,
        term_end: Option<DateTime<Utc>>,
        auto_renew: Option<bool>,
        idempotency_key: Option<&str>,
    ) -> ApiResult<Self> {
        if channel == Channel::Csp {
            return Err(ApiError::bad_input(
                "channel",
                "CSP subscriptions are sold with createSubscription; register DIRECT, ADVISOR, OPEN, ENTERPRISE_AGREEMENT or THIRD_PARTY ones",
            ));
        }
        let term_start = term_start.map(|at| inputs::instant("termStart", at)).transpose()?;
        let term_end = term_end.map(|at| inputs::instant("termEnd", at)).transpose()?;
        if let (Some(start), Some(end)) = (term_start, term_end)
            && end <= start
        {
            return Err(ApiError::bad_input("termEnd", "must be after termStart"));
        }
        Ok(Self {
            customer_id,
            channel,
            external_reference: Text::parse("externalReference", external_reference, limits::EXTERNAL_REFERENCE)?
                .into_string(),
            offer_id: Text::parse("offerId", offer_id, limits::IDENTIFIER)?.into_string(),
            offer_name: Text::parse("offerName", offer_name, limits::NAME)?.into_string(),
            billing_model,
            terms: Terms::parse(billing_model, quantity, None, false)?,
            term_start,
            term_end,
            auto_renew: auto_renew.unwrap_or(false),
            idempotency_key: IdempotencyKey::parse(idempotency_key)?,
        })
    }
}

/// `migrateUsageSubscription` input, parsed.
#[derive(Debug, Clone, Serialize)]
pub struct Migrate {
    pub source_id: Uuid,
    pub offer_id: Option<String>,
    pub offer_name: Option<String>,
    pub reseller_id: Option<Uuid>,
    pub cancel_source: bool,
    #[serde(skip)]
    pub idempotency_key: Option<IdempotencyKey>,
}

impl Migrate {
    pub fn parse(
        source_id: Uuid,
        offer_id: Option<&str>,
        offer_name: Option<&str>,
        reseller_id: Option<Uuid>,
        cancel_source: bool,
        idempotency_key: Option<&str>,
    ) -> ApiResult<Self> {
        Ok(Self {
            source_id,
            offer_id: offer_id
                .map(|o| Text::parse("offerId", o, limits::IDENTIFIER).map(Text::into_string))
                .transpose()?,
            offer_name: offer_name
                .map(|o| Text::parse("offerName", o, limits::NAME).map(Text::into_string))
                .transpose()?,
            reseller_id,
            cancel_source,
            idempotency_key: IdempotencyKey::parse(idempotency_key)?,
        })
    }
}

/// A change to an existing subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Update { quantity: Option<i32>, auto_renew: Option<bool> },
    Suspend,
    Reactivate,
    Cancel,
}

impl Action {
    /// The audit action of the change.
    fn verb(self) -> &'static str {
        match self {
            Action::Update { .. } => "subscription.update",
            Action::Suspend => "subscription.suspend",
            Action::Reactivate => "subscription.reactivate",
            Action::Cancel => "subscription.cancel",
        }
    }

    /// The event type of the change.
    fn event(self) -> &'static str {
        match self {
            Action::Update { .. } => "SUBSCRIPTION_UPDATED",
            Action::Suspend => "SUBSCRIPTION_SUSPENDED",
            Action::Reactivate => "SUBSCRIPTION_REACTIVATED",
            Action::Cancel => "SUBSCRIPTION_CANCELLED",
        }
    }
}

fn seller(actor: &Actor) -> ApiResult<partner::Model> {
    let p = actor.partner(SELLERS)?.clone();
    rules::r17_not_suspended(&p)?;
    rules::r6_may_transact(&p)?;
    Ok(p)
}

fn new_subscription(
    actor: &Actor,
    customer_id: Uuid,
    offer_id: String,
    offer_name: String,
    billing: BillingModel,
    channel: Channel,
) -> subscription::Model {
    subscription::Model {
        id: Uuid::now_v7(),
        customer_id,
        offer_id,
        offer_name,
        billing_model: billing,
        channel,
        partner_id: None,
        reseller_id: None,
        quantity: None,
        status: SubscriptionStatus::Active,
        term_months: None,
        term_start: actor.now,
        term_end: None,
        auto_renew: false,
        cancellation_allowed_until: None,
        external_reference: None,
        migrated_from_id: None,
        version: 1,
        created_at: actor.now,
        updated_at: actor.now,
        cancelled_at: None,
    }
}

/// Runs `work` once per idempotency key: a repeat of the same input answers the ids stored by the
/// first call (re-read now), another input with the same key is refused.
#[allow(clippy::too_many_arguments)] // the steps of one protocol, named at the call site
async fn idempotent<T, Input, Work, Ids, Replay>(
    txn: &DatabaseTransaction,
    actor: &Actor,
    operation: &str,
    key: Option<&IdempotencyKey>,
    input: &Input,
    work: Work,
    ids: Ids,
    replay: Replay,
) -> ApiResult<T>
where
    Input: Serialize,
    Work: AsyncFnOnce() -> ApiResult<T>,
    Ids: FnOnce(&T) -> serde_json::Value,
    Replay: AsyncFnOnce(serde_json::Value) -> ApiResult<T>,
{
    let Some(key) = key else { return work().await };
    let hash = idempotency::request_hash(operation, input);
    if let Claim::Replay(response) =
        idempotency::claim(txn, actor.principal.tenant_id, key, operation, &hash, actor.now).await?
    {
        return replay(response).await;
    }
    let made = work().await?;
    idempotency::complete(txn, actor.principal.tenant_id, key, ids(&made)).await?;
    Ok(made)
}

fn stored_id(response: &serde_json::Value, name: &str) -> ApiResult<Uuid> {
    response
        .get(name)
        .and_then(|v| v.as_str())
        .and_then(|s| Uuid::parse_str(s).ok())
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("idempotency record without {name}")))
}

fn change_for(action: &'static str, event: &'static str, s: &subscription::Model) -> Change {
    Change::new(action, event, "Subscription", s.id)
        .partner(s.partner_id)
        .related_partner(s.reseller_id)
        .customer(s.customer_id)
}

/// A partner sells a CSP subscription (R4, R5, R6, R14, R17).
pub async fn create(writer: &Writer, actor: &Actor, input: CreateSubscription) -> ApiResult<subscription::Model> {
    let seller = seller(actor)?;
    let actor = actor.clone();
    writer
        .write(move |txn| {
            Box::pin(async move {
                let work = async || {
                    let customer = actor.load::<customer::Entity>(txn, input.customer_id, "customer").await?;
                    rules::r4_same_cloud(seller.cloud, customer.cloud, "createSubscription")?;
                    let reseller_id = rules::r5_may_sell(txn, &seller, &customer, input.reseller_id).await?;
                    let mut s = new_subscription(
                        &actor,
                        customer.id,
                        input.offer_id.clone(),
                        input.offer_name.clone(),
                        input.billing_model,
                        Channel::Csp,
                    );
                    s.partner_id = Some(seller.id);
                    s.reseller_id = reseller_id;
                    s.quantity = input.terms.quantity;
                    s.term_months = input.terms.term_months;
                    s.term_end = input.terms.term_months.map(|m| add_months(actor.now, m));
                    s.auto_renew = input.auto_renew && s.term_end.is_some();
                    if input.billing_model == BillingModel::LicenseBased {
                        s.cancellation_allowed_until = Some(actor.now + actor.cancellation_window);
                    }
                    let s = s.into_active_model().insert(txn).await?;
                    audit::record(
                        txn,
                        &By::from(&actor),
                        change_for("subscription.create", "SUBSCRIPTION_CREATED", &s).diff(None, &s),
                    )
                    .await?;
                    Ok(s)
                };
                let replay = async |response: serde_json::Value| {
                    actor.load::<subscription::Entity>(txn, stored_id(&response, "subscription")?, "subscription").await
                };
                idempotent(
                    txn,
                    &actor,
                    "createSubscription",
                    input.idempotency_key.as_ref(),
                    &input,
                    work,
                    |s| json!({"subscription": s.id}),
                    replay,
                )
                .await
            })
        })
        .await
}

/// Whether the caller may record or manage a customer's non-CSP subscriptions (R10): the customer
/// itself (`global_admin`, `billing_admin`) or a partner with ACTIVE delegated admin as `admin_agent`.
async fn r10_may_manage_external<C: ConnectionTrait>(txn: &C, actor: &Actor, customer_id: Uuid) -> ApiResult<()> {
    match &actor.principal.tenant {
        Tenant::Customer(c) if c.id == customer_id => actor.require_role(&[Role::GlobalAdmin, Role::BillingAdmin]),
        Tenant::Partner(p) => {
            r10_partner_may_manage_external(actor, p)?;
            if rules::active_delegated_admin(txn, p.id, customer_id, Role::AdminAgent, actor.now).await? {
                Ok(())
            } else {
                Err(ApiError::new(
                    Code::Forbidden,
                    "subscriptions bought elsewhere are managed by the customer (global_admin, billing_admin) or a partner with ACTIVE delegated admin (admin_agent)",
                ))
            }
        }
        _ => Err(ApiError::new(
            Code::Forbidden,
            "this needs the customer's global_admin or billing_admin, or a delegated admin_agent",
        )),
    }
}

/// [`r10_may_manage_external`] for a partner, all but the delegated-admin grant: the caller is the
/// partner's `admin_agent` and the partner is not suspended (as its principal says).
fn r10_partner_may_manage_external(actor: &Actor, partner: &partner::Model) -> ApiResult<()> {
    actor.require_role(&[Role::AdminAgent])?;
    rules::r17_not_suspended(partner)
}

/// Whether [`r10_may_manage_external`] can only depend on the grant: the caller is a partner that
/// passes [`r10_partner_may_manage_external`] (a write made of one statement reads the grant and the
/// partner's status as they stand).
fn r10_may_manage_external_if_granted(actor: &Actor) -> bool {
    match &actor.principal.tenant {
        Tenant::Partner(p) => r10_partner_may_manage_external(actor, p).is_ok(),
        _ => false,
    }
}

/// Records a subscription bought through another channel (R10, R14).
pub async fn register_external(
    writer: &Writer,
    actor: &Actor,
    input: RegisterExternal,
) -> ApiResult<subscription::Model> {
    let actor = actor.clone();
    writer
        .write(move |txn| {
            Box::pin(async move {
                let work = async || {
                    let customer = actor.load::<customer::Entity>(txn, input.customer_id, "customer").await?;
                    r10_may_manage_external(txn, &actor, customer.id).await?;
                    let mut s = new_subscription(
                        &actor,
                        customer.id,
                        input.offer_id.clone(),
                        input.offer_name.clone(),
                        input.billing_model,
                        input.channel,
                    );
                    s.external_reference = Some(input.external_reference.clone());
                    s.quantity = input.terms.quantity;
                    s.term_start = input.term_start.unwrap_or(actor.now);
                    s.term_end = input.term_end;
                    s.auto_renew = input.auto_renew && input.term_end.is_some();
                    let s = s.into_active_model().insert(txn).await?;
                    audit::record(
                        txn,
                        &By::from(&actor),
                        change_for("subscription.register", "SUBSCRIPTION_CREATED", &s).diff(None, &s),
                    )
                    .await?;
                    // A term that has already ended: the clock's change follows at once (R16).
                    actor.catch_up(txn, s).await
                };
                let replay = async |response: serde_json::Value| {
                    actor.load::<subscription::Entity>(txn, stored_id(&response, "subscription")?, "subscription").await
                };
                idempotent(
                    txn,
                    &actor,
                    "registerExternalSubscription",
                    input.idempotency_key.as_ref(),
                    &input,
                    work,
                    |s| json!({"subscription": s.id}),
                    replay,
                )
                .await
            })
        })
        .await
}

/// R10: who may change a subscription: CSP ones only their partner of record (`admin_agent`,
/// `sales_agent`); others the customer or a delegated `admin_agent`.
async fn r10_may_change<C: ConnectionTrait>(txn: &C, actor: &Actor, s: &subscription::Model) -> ApiResult<()> {
    if s.channel != Channel::Csp {
        return r10_may_manage_external(txn, actor, s.customer_id).await;
    }
    r10_may_change_csp(actor, s)
}

/// R10 for a CSP subscription: its partner of record only (`admin_agent`, `sales_agent`).
fn r10_may_change_csp(actor: &Actor, s: &subscription::Model) -> ApiResult<()> {
    match &actor.principal.tenant {
        Tenant::Partner(p) if Some(p.id) == s.partner_id => {
            actor.require_role(SELLERS)?;
            rules::r17_not_suspended(p)
        }
        _ => Err(ApiError::new(
            Code::Forbidden,
            "CSP subscriptions are changed only by their partner of record (admin_agent, sales_agent)",
        )),
    }
}

/// Updates, suspends, reactivates or cancels a subscription (R10, R11, R13).
pub async fn change(
    writer: &Writer,
    actor: &Actor,
    id: Uuid,
    expected_version: i32,
    action: Action,
) -> ApiResult<subscription::Model> {
    if let Some(changed) = change_known_version(writer, actor, id, expected_version, action).await? {
        return Ok(changed);
    }
    if let Some(changed) = change_with_reads_first(writer, actor, id, expected_version, action).await? {
        keep(writer, &changed);
        return Ok(changed);
    }
    let actor = actor.clone();
    let changed = writer
        .write(move |txn| {
            Box::pin(async move {
                let stored = changeable(txn, &actor, id, expected_version).await?;
                // What the clock has already done (a renewal, an expiry) is done first, as its own
                // change by the system (R16), so that the caller's change carries only its own fields.
                let before = actor.catch_up(txn, stored).await?;
                let after = r11_apply(&actor, &before, action)?;
                let after = versioned::update_subscription(txn, &before, after, None).await?;
                let (verb, event) = (action.verb(), action.event());
                audit::record(txn, &By::from(&actor), change_for(verb, event, &after).diff(Some(&before), &after))
                    .await?;
                Ok(after)
            })
        })
        .await?;
    keep(writer, &changed);
    Ok(changed)
}

/// Keeps a committed subscription row for the next change of it (`domain::known`).
fn keep(writer: &Writer, row: &subscription::Model) {
    if let Some(known) = writer.known() {
        known.keep(row);
    }
}

/// [`change`] in one statement, when this instance keeps the subscription at the version the
/// caller expects (`domain::known`, which says why the kept row can be trusted): the rules are
/// judged on the kept row as on a row read (R10, R11, R13, and R16's "nothing due"), and the write
/// itself checks what the kept row cannot tell (R1: the caller still sees the row; R17: its partner
/// is not suspended; R13: the version is still the one kept; R10 for a subscription bought
/// elsewhere: the partner still holds a delegated-admin grant with `admin_agent`). For a CSP
/// subscription changed by its partner of record and for one bought elsewhere changed by a partner's
/// `admin_agent`; others (a customer's own changes) take the ordinary path. On PostgreSQL one
/// statement; on SQLite a transaction of three (the guarded update, the audit and outbox rows).
/// `None`, with nothing written, whenever anything is not as this path needs (no kept row, a rule
/// that refuses, a write that found the row changed or hidden): the ordinary path reads, judges
/// again and answers, so no error is ever judged on a row the caller may not see.
async fn change_known_version(
    writer: &Writer,
    actor: &Actor,
    id: Uuid,
    expected_version: i32,
    action: Action,
) -> ApiResult<Option<subscription::Model>> {
    let db = writer.connection();
    let Some(before) = writer.known().and_then(|known| known.get(id, expected_version)) else {
        return Ok(None);
    };
    if super::lifecycle::is_due(&before, actor.now) {
        return Ok(None);
    }
    // R10 as far as the kept row and the caller tell; the write checks the rest as it happens.
    let guard = if before.channel == Channel::Csp {
        if r10_may_change_csp(actor, &before).is_err() {
            return Ok(None);
        }
        writer.write_guard::<subscription::Entity>(actor, id)
    } else {
        // Bought elsewhere: a partner's admin_agent, whose delegated-admin grant the write checks.
        if !r10_may_manage_external_if_granted(actor) {
            return Ok(None);
        }
        writer.write_guard_delegated::<subscription::Entity>(actor, id, subscription::Column::CustomerId)
    };
    let Some(guard) = guard else {
        return Ok(None);
    };
    let Ok(after) = r11_apply(actor, &before, action) else {
        return Ok(None);
    };
    let change = change_for(action.verb(), action.event(), &after).diff(Some(before.as_ref()), &after);
    let by = By::from(actor);
    let changed = if db.get_database_backend() == DbBackend::Postgres {
        let changed = versioned::update_subscription_guarded(db, &guard, &before, after, &by, change).await?;
        if changed.is_some() {
            writer.committed();
        }
        changed
    } else {
        // SQLite: the guarded update and its two rows as one script, in this server's write turn.
        writer
            .write_script(move |db| {
                Box::pin(async move {
                    versioned::update_subscription_guarded_script(&db, &guard, &before, after, &by, change).await
                })
            })
            .await?
    };
    if let Some(changed) = &changed {
        keep(writer, changed);
    }
    Ok(changed)
}

/// The subscription a change applies to: visible to the caller (R1, else `NOT_FOUND`), changeable by
/// it (R10), at the version it expects (R13).
async fn changeable(
    db: &impl ConnectionTrait,
    actor: &Actor,
    id: Uuid,
    expected_version: i32,
) -> ApiResult<subscription::Model> {
    let stored = actor.load::<subscription::Entity>(db, id, "subscription").await?;
    may_change(db, actor, stored, expected_version).await
}

/// The checks of [`changeable`] on a subscription already read under the caller's visibility.
async fn may_change(
    db: &impl ConnectionTrait,
    actor: &Actor,
    stored: subscription::Model,
    expected_version: i32,
) -> ApiResult<subscription::Model> {
    r10_may_change(db, actor, &stored).await?;
    versioned::check_expected(stored.version, Some(expected_version), "subscription")?;
    Ok(stored)
}

/// [`change`] in the common case (nothing due for the clock to do first): the same rules, the same
/// reads — the caller's partner (R17) and the subscription under the caller's visibility (R1), in
/// one statement ([`Writer::load_for_write`]) — made before the write, outside any transaction.
/// On PostgreSQL the write is one statement that also checks the version and writes the audit and
/// outbox rows (`versioned::update_subscription_recorded`): two statements (three for a
/// subscription bought outside CSP, whose R10 check reads the delegated-admin grant), none of them
/// `BEGIN` or `COMMIT`, where the transaction takes six. SQLite has no data-modifying `WITH`: the
/// update and its two rows are a transaction of their own ([`Writer::write_judged`]), which holds
/// the database's one write lock for three statements instead of five. What the whole transaction
/// would guarantee still holds: the reads see committed data, as they would inside a READ
/// COMMITTED transaction, and the version condition makes the write conditional on the row read.
/// `None`: take the whole transaction (a renewal or expiry due first, R16, is two changes).
async fn change_with_reads_first(
    writer: &Writer,
    actor: &Actor,
    id: Uuid,
    expected_version: i32,
    action: Action,
) -> ApiResult<Option<subscription::Model>> {
    let db = writer.connection();
    // The caller's partner (R17) and the subscription (R1) in one statement, then R10 and R13.
    let stored = writer.load_for_write::<subscription::Entity>(actor, id, "subscription").await?;
    let stored = may_change(db, actor, stored, expected_version).await?;
    if super::lifecycle::is_due(&stored, actor.now) {
        return Ok(None);
    }
    let after = r11_apply(actor, &stored, action)?;
    let change = change_for(action.verb(), action.event(), &after).diff(Some(&stored), &after);
    let by = By::from(actor);
    if db.get_database_backend() != DbBackend::Postgres {
        let changed = writer
            .write_judged(move |txn| {
                Box::pin(async move {
                    let after = versioned::update_subscription(txn, &stored, after, None).await?;
                    audit::record(txn, &by, change).await?;
                    Ok(after)
                })
            })
            .await?;
        return Ok(Some(changed));
    }
    let changed = versioned::update_subscription_recorded(db, &stored, after, &by, change).await?;
    // As `Writer::write` does after a commit: the event feed of this instance looks at once.
    writer.committed();
    Ok(Some(changed))
}

/// R11 (new-commerce terms) and the status machine: what `action` makes of `before`.
pub fn r11_apply(actor: &Actor, before: &subscription::Model, action: Action) -> ApiResult<subscription::Model> {
    let now = actor.now;
    let window_open = before.cancellation_allowed_until.is_none_or(|until| now <= until);
    let license_csp = before.channel == Channel::Csp && before.billing_model == BillingModel::LicenseBased;
    let closed = |what: &str| {
        ApiError::new(
            Code::CancellationWindowClosed,
            format!(
                "{what} is only possible within the cancellation window after purchase or renewal; you can raise the quantity, or turn autoRenew off to end at termEnd"
            ),
        )
    };
    if matches!(before.status, SubscriptionStatus::Cancelled | SubscriptionStatus::Expired) {
        return Err(ApiError::new(
            Code::InvalidState,
            format!("the subscription is {}: it never comes back", before.status.as_str()),
        ));
    }
    let mut after = before.clone();
    after.updated_at = now;
    match action {
        Action::Update { quantity, auto_renew } => {
            if let Some(q) = quantity {
                if before.billing_model != BillingModel::LicenseBased {
                    return Err(ApiError::bad_input("quantity", "usage-based subscriptions have no quantity"));
                }
                let q = Quantity::parse("quantity", q)?.get();
                if before.status == SubscriptionStatus::Suspended {
                    return Err(ApiError::new(
                        Code::InvalidState,
                        "a SUSPENDED subscription cannot change quantity: reactivate it first",
                    ));
                }
                if license_csp && q < before.quantity.unwrap_or(0) && !window_open {
                    return Err(closed("lowering the quantity"));
                }
                after.quantity = Some(q);
            }
            if let Some(auto) = auto_renew {
                if auto && before.term_end.is_none() {
                    return Err(ApiError::bad_input("autoRenew", "only subscriptions with a term renew"));
                }
                after.auto_renew = auto;
            }
        }
        Action::Suspend => {
            if before.channel != Channel::Csp {
                return Err(ApiError::new(Code::InvalidState, "only CSP subscriptions are suspended"));
            }
            if before.status != SubscriptionStatus::Active {
                return Err(ApiError::new(Code::InvalidState, "only ACTIVE subscriptions can be suspended"));
            }
            after.status = SubscriptionStatus::Suspended;
        }
        Action::Reactivate => {
            if before.status != SubscriptionStatus::Suspended {
                return Err(ApiError::new(Code::InvalidState, "only SUSPENDED subscriptions can be reactivated"));
            }
            if before.term_end.is_some_and(|end| end <= now) {
                return Err(ApiError::new(
                    Code::InvalidState,
                    "the term has ended: a SUSPENDED subscription can be reactivated only before its termEnd",
                ));
            }
            after.status = SubscriptionStatus::Active;
        }
        Action::Cancel => {
            if license_csp && !window_open {
                return Err(closed("cancelling"));
            }
            after.status = SubscriptionStatus::Cancelled;
            after.cancelled_at = Some(now);
            after.auto_renew = false;
        }
    }
    Ok(after)
}

/// R9: a partner allowed to sell to the customer replaces a non-CSP usage-based subscription with a
/// CSP one (`migratedFrom`); the source stays ACTIVE unless `cancelSource`, which needs ACTIVE
/// delegated admin as `admin_agent` and cancels it in the same transaction. R1: the source is read
/// under the caller's visibility (a partner sees a customer's subscriptions bought elsewhere through
/// ACTIVE delegated admin), so one it cannot see is `NOT_FOUND` like an id nobody holds. Returns the
/// new subscription and the source, `None` when the caller cannot see it (on a replay, after its
/// delegated admin ended).
pub async fn migrate(
    writer: &Writer,
    actor: &Actor,
    input: Migrate,
) -> ApiResult<(subscription::Model, Option<subscription::Model>)> {
    let seller = seller(actor)?;
    let actor = actor.clone();
    writer
        .write(move |txn| {
            Box::pin(async move {
                let work = async || {
                    let stored = actor.load::<subscription::Entity>(txn, input.source_id, "subscription").await?;
                    let source = effective_subscription(stored.clone(), actor.now, actor.cancellation_window);
                    if source.channel == Channel::Csp || source.billing_model != BillingModel::UsageBased {
                        return Err(ApiError::bad_input("sourceSubscriptionId", "only USAGE_BASED subscriptions bought outside CSP can be migrated"));
                    }
                    if source.status != SubscriptionStatus::Active {
                        return Err(ApiError::new(Code::InvalidState, "only ACTIVE subscriptions can be migrated"));
                    }
                    let customer = actor.load::<customer::Entity>(txn, source.customer_id, "customer").await?;
                    rules::r4_same_cloud(seller.cloud, customer.cloud, "migrateUsageSubscription")?;
                    let reseller_id = rules::r5_may_sell(txn, &seller, &customer, input.reseller_id).await?;
                    let by = By::from(&actor);
                    let source = if input.cancel_source {
                        if !rules::active_delegated_admin(txn, seller.id, customer.id, Role::AdminAgent, actor.now).await? {
                            return Err(ApiError::new(
                                Code::RelationshipRequired,
                                "cancelSource needs an ACTIVE delegated-admin relationship with the admin_agent role; migrate without it, or ask the customer for delegated admin",
                            ));
                        }
                        // A renewal the clock has done is recorded first, as its own change (R16).
                        let current = actor.catch_up(txn, stored).await?;
                        let mut cancelled = current.clone();
                        cancelled.status = SubscriptionStatus::Cancelled;
                        cancelled.cancelled_at = Some(actor.now);
                        cancelled.auto_renew = false;
                        cancelled.updated_at = actor.now;
                        let cancelled = versioned::update_subscription(txn, &current, cancelled, None).await?;
                        audit::record(txn, &by, change_for("subscription.cancel", "SUBSCRIPTION_CANCELLED", &cancelled).diff(Some(&current), &cancelled)).await?;
                        cancelled
                    } else {
                        source
                    };
                    let mut s = new_subscription(
                        &actor,
                        customer.id,
                        input.offer_id.clone().unwrap_or_else(|| source.offer_id.clone()),
                        input.offer_name.clone().unwrap_or_else(|| source.offer_name.clone()),
                        BillingModel::UsageBased,
                        Channel::Csp,
                    );
                    s.partner_id = Some(seller.id);
                    s.reseller_id = reseller_id;
                    s.migrated_from_id = Some(source.id);
                    let s = s.into_active_model().insert(txn).await?;
                    audit::record(txn, &by, change_for("subscription.migrate", "SUBSCRIPTION_MIGRATED", &s).diff(None, &s)).await?;
                    Ok((s, Some(source)))
                };
                // The first result, read again now: the source only while the caller still sees it.
                let replay = async |response: serde_json::Value| {
                    let s = actor.load::<subscription::Entity>(txn, stored_id(&response, "subscription")?, "subscription").await?;
                    let source = match s.migrated_from_id {
                        Some(id) => actor.find::<subscription::Entity>(txn, id).await?,
                        None => None,
                    };
                    Ok((s, source))
                };
                idempotent(txn, &actor, "migrateUsageSubscription", input.idempotency_key.as_ref(), &input, work, |(s, _)| json!({"subscription": s.id, "source": s.migrated_from_id}), replay).await
            })
        })
        .await
}
