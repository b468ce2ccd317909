//! Relationships: reseller and delegated-admin requests (partner → customer), indirect-reseller
//! invitations (provider → reseller), and their state machine (R12): at most one PENDING request per
//! partner, counterpart and kind; only PENDING requests are accepted or declined, only by the invited
//! party; only ACTIVE ones are terminated, by either party; terminating a reseller relationship is
//! blocked by the partner's active subscriptions and ends its delegated admin with the customer.

use chrono::Duration;
use entity::enums::{PartnerType, RelationshipKind, RelationshipStatus, SubscriptionStatus};
use entity::{customer, partner, relationship, subscription};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, DatabaseTransaction, DbErr, EntityTrait, IntoActiveModel, PaginatorTrait,
    QueryFilter,
};
use uuid::Uuid;

use super::audit::{self, By, Change};
use super::inputs::{DelegatedRoles, Domain, DurationDays, Message};
use super::lifecycle::{self, RELATIONSHIP_REQUEST_DAYS};
use super::{Actor, Writer, rules, versioned};
use crate::auth::{Role, Tenant};
use crate::error::{ApiError, ApiResult, Code};

/// `requestRelationship` input, parsed.
#[derive(Debug, Clone)]
pub struct RequestRelationship {
    pub customer_domain: Domain,
    pub kind: RelationshipKind,
    /// Delegated admin only.
    pub roles: Option<DelegatedRoles>,
    pub duration_days: DurationDays,
    pub indirect_provider_id: Option<Uuid>,
    pub message: Option<String>,
}

impl RequestRelationship {
    pub fn parse(
        customer_domain: &str,
        kind: RelationshipKind,
        roles: Option<&[String]>,
        duration_days: Option<i32>,
        indirect_provider_id: Option<Uuid>,
        message: Option<String>,
    ) -> ApiResult<Self> {
        let customer_domain = Domain::parse("customerDomain", customer_domain)?;
        let roles = match kind {
            RelationshipKind::DelegatedAdmin => Some(DelegatedRoles::parse("roles", roles.unwrap_or_default())?),
            RelationshipKind::Reseller if roles.is_some_and(|r| !r.is_empty()) => {
                return Err(ApiError::bad_input("roles", "only delegated-admin relationships carry roles"));
            }
            RelationshipKind::Reseller => None,
            RelationshipKind::IndirectReseller => {
                return Err(ApiError::bad_input("kind", "indirect providers invite resellers with `inviteReseller`"));
            }
        };
        if kind != RelationshipKind::DelegatedAdmin && duration_days.is_some() {
            return Err(ApiError::bad_input("durationDays", "only delegated-admin relationships have a duration"));
        }
        if kind != RelationshipKind::Reseller && indirect_provider_id.is_some() {
            return Err(ApiError::bad_input(
                "indirectProviderId",
                "only reseller relationships name an indirect provider",
            ));
        }
        let message = Message::parse("message", message.as_deref())?.map(Message::into_string);
        Ok(Self {
            customer_domain,
            kind,
            roles,
            duration_days: DurationDays::parse("durationDays", duration_days)?,
            indirect_provider_id,
            message,
        })
    }
}

fn new_relationship(kind: RelationshipKind, partner_id: Uuid, actor: &Actor) -> relationship::Model {
    relationship::Model {
        id: Uuid::now_v7(),
        kind,
        status: RelationshipStatus::Pending,
        partner_id,
        customer_id: None,
        indirect_provider_id: None,
        customer_domain: None,
        roles: String::new(),
        duration_days: None,
        message: None,
        requested_at: actor.now,
        responded_at: None,
        terminated_at: None,
        expires_at: None,
        version: 1,
        created_at: actor.now,
        updated_at: actor.now,
    }
}

/// R12: no other live PENDING request (or, for links, ACTIVE relationship) of this kind between
/// these parties. A request past its expiry does not count.
async fn r12_no_duplicate(
    txn: &DatabaseTransaction,
    actor: &Actor,
    kind: RelationshipKind,
    partner_id: Uuid,
    counterpart: Condition,
) -> ApiResult<()> {
    use relationship::Column as R;
    let existing = relationship::Entity::find()
        .filter(R::Kind.eq(kind))
        .filter(R::PartnerId.eq(partner_id))
        .filter(counterpart)
        .filter(R::Status.is_in([RelationshipStatus::Pending, RelationshipStatus::Active]))
        .all(txn)
        .await?;
    for r in existing {
        match lifecycle::effective_relationship_status(&r, actor.now) {
            RelationshipStatus::Pending => {
                return Err(ApiError::new(
                    Code::Conflict,
                    "a request of this kind is already pending between these parties",
                ));
            }
            RelationshipStatus::Active if kind != RelationshipKind::DelegatedAdmin => {
                return Err(ApiError::new(Code::Conflict, "this relationship is already ACTIVE"));
            }
            RelationshipStatus::Expired => expire(txn, actor, &r).await?,
            _ => {}
        }
    }
    Ok(())
}

/// Marks a request or grant that the clock has ended as EXPIRED, so that a new one may take its place.
async fn expire(txn: &DatabaseTransaction, actor: &Actor, r: &relationship::Model) -> ApiResult<()> {
    let mut after = r.clone();
    after.status = RelationshipStatus::Expired;
    after.updated_at = actor.now;
    let after = versioned::update_relationship(txn, r, after, None).await?;
    let change = Change::new("relationship.expire", "RELATIONSHIP_EXPIRED", "Relationship", after.id)
        .partner(after.partner_id)
        .related_partner(after.indirect_provider_id)
        .customer(after.customer_id)
        .diff(Some(r), &after);
    audit::record(txn, &By::from(actor), change).await
}

/// Partner `admin_agent`/`sales_agent` (delegated admin: `admin_agent`) asks a customer, by
/// domain, for a reseller or delegated-admin relationship. Rules R3, R4, R12, R17.
pub async fn request(writer: &Writer, actor: &Actor, input: RequestRelationship) -> ApiResult<relationship::Model> {
    let roles: &[Role] = match input.kind {
        RelationshipKind::DelegatedAdmin => &[Role::AdminAgent],
        _ => &[Role::AdminAgent, Role::SalesAgent],
    };
    let requester = actor.partner(roles)?.clone();
    rules::r17_not_suspended(&requester)?;
    let actor = actor.clone();
    writer
        .write(move |txn| {
            Box::pin(async move {
                // R3 first: partner domains are on the program's public directory, so saying that a
                // domain is a partner's reveals nothing.
                rules::r3_not_a_partner(txn, Some(input.customer_domain.as_str()), None).await?;
                let customer = r1_requestable_customer(txn, &actor, &requester, &input.customer_domain).await?;

                let mut rel = new_relationship(input.kind, requester.id, &actor);
                if let Some(provider_id) = input.indirect_provider_id {
                    if requester.partner_type != PartnerType::IndirectReseller {
                        return Err(ApiError::bad_input(
                            "indirectProviderId",
                            "only indirect resellers name a provider",
                        ));
                    }
                    let provider = actor.load::<partner::Entity>(txn, provider_id, "indirect provider").await?;
                    active_indirect_link(txn, provider.id, requester.id).await?;
                    rules::r4_same_cloud(
                        requester.cloud,
                        provider.cloud,
                        "requestRelationship (reseller and provider)",
                    )?;
                    rules::r4_same_cloud(
                        provider.cloud,
                        customer.cloud,
                        "requestRelationship (provider and customer)",
                    )?;
                    rel.indirect_provider_id = Some(provider.id);
                } else if requester.partner_type == PartnerType::IndirectReseller
                    && input.kind == RelationshipKind::Reseller
                {
                    return Err(ApiError::bad_input(
                        "indirectProviderId",
                        "an indirect reseller names the provider it sells through",
                    ));
                }
                r12_no_duplicate(
                    txn,
                    &actor,
                    input.kind,
                    requester.id,
                    Condition::all().add(relationship::Column::CustomerId.eq(customer.id)),
                )
                .await?;
                rel.customer_id = Some(customer.id);
                rel.customer_domain = Some(customer.domain.clone());
                rel.roles = input.roles.as_ref().map(DelegatedRoles::stored).unwrap_or_default();
                rel.duration_days = (input.kind == RelationshipKind::DelegatedAdmin).then(|| input.duration_days.get());
                rel.message = input.message.clone();
                rel.expires_at = Some(actor.now + Duration::days(RELATIONSHIP_REQUEST_DAYS));
                let insert = rel.into_active_model().insert(txn);
                let rel = super::on_unique(insert, Code::Conflict, "a request of this kind is already pending").await?;
                let change = Change::new("relationship.request", "RELATIONSHIP_REQUESTED", "Relationship", rel.id)
                    .partner(rel.partner_id)
                    .related_partner(rel.indirect_provider_id)
                    .customer(rel.customer_id)
                    .diff(None, &rel);
                audit::record(txn, &By::from(&actor), change).await?;
                Ok(rel)
            })
        })
        .await
}

/// R1 for requests by domain: a partner names a customer it cannot see yet (that is what a request
/// is for), so the customer's existence under that domain is revealed (as R2's `DOMAIN_TAKEN` does
/// anyway), but nothing about it: a customer the partner cannot see and that lives in another
/// cloud (R4) answers exactly as a domain nobody holds. A customer it sees gets the R4 error.
async fn r1_requestable_customer(
    txn: &DatabaseTransaction,
    actor: &Actor,
    requester: &partner::Model,
    domain: &Domain,
) -> ApiResult<customer::Model> {
    let unknown = || {
        ApiError::new(
            Code::NotFound,
            format!(
                "no customer with the domain `{}` in your cloud: check the spelling, or create the customer instead",
                domain.as_str()
            ),
        )
    };
    let customer = customer::Entity::find()
        .filter(customer::Column::Domain.eq(domain.as_str()))
        .one(txn)
        .await?
        .ok_or_else(unknown)?;
    if customer.cloud != requester.cloud {
        let visible = actor.find::<customer::Entity>(txn, customer.id).await?.is_some();
        if !visible {
            return Err(unknown());
        }
        rules::r4_same_cloud(requester.cloud, customer.cloud, "requestRelationship")?;
    }
    Ok(customer)
}

/// `RELATIONSHIP_REQUIRED` unless the provider has an ACTIVE indirect-reseller relationship with the reseller.
async fn active_indirect_link(txn: &DatabaseTransaction, provider_id: Uuid, reseller_id: Uuid) -> ApiResult<()> {
    use relationship::Column as R;
    let link = relationship::Entity::find()
        .filter(R::Kind.eq(RelationshipKind::IndirectReseller))
        .filter(R::Status.eq(RelationshipStatus::Active))
        .filter(R::PartnerId.eq(reseller_id))
        .filter(R::IndirectProviderId.eq(provider_id))
        .one(txn)
        .await?;
    link.map(|_| ()).ok_or_else(|| {
        ApiError::new(
            Code::RelationshipRequired,
            "the reseller and the provider need an ACTIVE indirect-reseller relationship",
        )
    })
}

/// An indirect provider's `admin_agent` invites an indirect reseller (R6, R4, R12, R17).
pub async fn invite_reseller(
    writer: &Writer,
    actor: &Actor,
    reseller_id: Uuid,
    message: Option<String>,
) -> ApiResult<relationship::Model> {
    let message = Message::parse("message", message.as_deref())?.map(Message::into_string);
    let provider = actor.partner(&[Role::AdminAgent])?.clone();
    rules::r17_not_suspended(&provider)?;
    match provider.partner_type {
        PartnerType::IndirectProvider => {}
        PartnerType::IndirectReseller => rules::r6_may_transact(&provider)?,
        PartnerType::DirectBill => {
            return Err(ApiError::bad_input(
                "resellerId",
                "direct-bill partners have no resellers; only indirect providers invite them",
            ));
        }
    }
    let actor = actor.clone();
    writer
        .write(move |txn| {
            Box::pin(async move {
                let reseller = r1_invitable_reseller(txn, &actor, &provider, reseller_id).await?;
                r12_no_duplicate(
                    txn,
                    &actor,
                    RelationshipKind::IndirectReseller,
                    reseller.id,
                    Condition::all().add(relationship::Column::IndirectProviderId.eq(provider.id)),
                )
                .await?;
                let mut rel = new_relationship(RelationshipKind::IndirectReseller, reseller.id, &actor);
                rel.indirect_provider_id = Some(provider.id);
                rel.message = message;
                let insert = rel.into_active_model().insert(txn);
                let rel = super::on_unique(insert, Code::Conflict, "an invitation is already pending").await?;
                let change = Change::new("relationship.invite", "RELATIONSHIP_REQUESTED", "Relationship", rel.id)
                    .partner(rel.partner_id)
                    .related_partner(provider.id)
                    .diff(None, &rel);
                audit::record(txn, &By::from(&actor), change).await?;
                Ok(rel)
            })
        })
        .await
}

/// R1 for invitations: the provider names a reseller it cannot see yet (the reseller gives it its
/// id), so only an INDIRECT_RESELLER of the provider's cloud may be named unseen; any other partner
/// it cannot see answers exactly as an id nobody holds (its type and cloud stay hidden). A partner it
/// sees gets the R6/R4 errors.
async fn r1_invitable_reseller(
    txn: &DatabaseTransaction,
    actor: &Actor,
    provider: &partner::Model,
    reseller_id: Uuid,
) -> ApiResult<partner::Model> {
    let reseller =
        partner::Entity::find_by_id(reseller_id).one(txn).await?.ok_or_else(|| ApiError::not_found("reseller"))?;
    let invitable = reseller.partner_type == PartnerType::IndirectReseller && reseller.cloud == provider.cloud;
    if !invitable && actor.find::<partner::Entity>(txn, reseller.id).await?.is_none() {
        return Err(ApiError::not_found("reseller"));
    }
    if reseller.partner_type != PartnerType::IndirectReseller {
        return Err(ApiError::bad_input("resellerId", "only INDIRECT_RESELLER partners can be invited"));
    }
    rules::r4_same_cloud(provider.cloud, reseller.cloud, "inviteReseller")?;
    Ok(reseller)
}

/// The invited party answers a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Accept,
    Decline,
}

/// R12: only the invited party (the customer's `global_admin`; for indirect-reseller invitations the
/// reseller's `admin_agent`) accepts or declines, and only a PENDING request.
pub async fn answer(
    writer: &Writer,
    actor: &Actor,
    id: Uuid,
    expected_version: Option<i32>,
    answer: Answer,
) -> ApiResult<relationship::Model> {
    if let Tenant::Partner(p) = &actor.principal.tenant {
        rules::r17_not_suspended(p)?;
    }
    let actor = actor.clone();
    writer
        .write(move |txn| {
            Box::pin(async move {
                let before = actor.load::<relationship::Entity>(txn, id, "relationship").await?;
                require_invited_party(&actor, &before)?;
                let status = lifecycle::effective_relationship_status(&before, actor.now);
                if status != RelationshipStatus::Pending {
                    let verb = if answer == Answer::Accept { "accepted" } else { "declined" };
                    return Err(ApiError::new(
                        Code::InvalidState,
                        format!("only PENDING requests can be {verb}; this one is {}", status.as_str()),
                    ));
                }
                versioned::check_expected(before.version, expected_version, "relationship")?;
                let mut after = before.clone();
                after.responded_at = Some(actor.now);
                after.updated_at = actor.now;
                let (action, event) = match answer {
                    Answer::Accept => {
                        after.status = RelationshipStatus::Active;
                        after.expires_at = match before.kind {
                            RelationshipKind::DelegatedAdmin => Some(
                                actor.now
                                    + Duration::days(i64::from(before.duration_days.unwrap_or(DurationDays::DEFAULT))),
                            ),
                            _ => None,
                        };
                        if before.kind != RelationshipKind::DelegatedAdmin {
                            let counterpart = match before.customer_id {
                                Some(c) => Condition::all().add(relationship::Column::CustomerId.eq(c)),
                                None => Condition::all()
                                    .add(relationship::Column::IndirectProviderId.eq(before.indirect_provider_id)),
                            };
                            let active = relationship::Entity::find()
                                .filter(relationship::Column::Kind.eq(before.kind))
                                .filter(relationship::Column::PartnerId.eq(before.partner_id))
                                .filter(relationship::Column::Status.eq(RelationshipStatus::Active))
                                .filter(counterpart)
                                .count(txn)
                                .await?;
                            if active > 0 {
                                return Err(ApiError::new(Code::Conflict, "this relationship is already ACTIVE"));
                            }
                        }
                        // A reseller relationship through a provider needs the provider's link to be live still.
                        if let (RelationshipKind::Reseller, Some(provider_id)) =
                            (before.kind, before.indirect_provider_id)
                        {
                            active_indirect_link(txn, provider_id, before.partner_id).await?;
                        }
                        ("relationship.accept", "RELATIONSHIP_ACCEPTED")
                    }
                    Answer::Decline => {
                        after.status = RelationshipStatus::Declined;
                        after.expires_at = None;
                        ("relationship.decline", "RELATIONSHIP_DECLINED")
                    }
                };
                let after = versioned::update_relationship(txn, &before, after, expected_version)
                    .await
                    .map_err(|e| unique_to(e, Code::Conflict, "this relationship is already ACTIVE"))?;
                let change = Change::new(action, event, "Relationship", after.id)
                    .partner(after.partner_id)
                    .related_partner(after.indirect_provider_id)
                    .customer(after.customer_id)
                    .diff(Some(&before), &after);
                audit::record(txn, &By::from(&actor), change).await?;
                Ok(after)
            })
        })
        .await
}

/// A unique violation hidden in an internal error (the database's own R12 indexes, when two
/// requests race) becomes `code`.
fn unique_to(err: ApiError, code: Code, message: &str) -> ApiError {
    let unique = err.source.as_ref().and_then(|s| s.downcast_ref::<DbErr>()).is_some_and(super::is_unique_violation);
    if unique { ApiError::new(code, message) } else { err }
}

fn require_invited_party(actor: &Actor, r: &relationship::Model) -> ApiResult<()> {
    let invited = match (&actor.principal.tenant, r.kind) {
        (Tenant::Customer(c), RelationshipKind::Reseller | RelationshipKind::DelegatedAdmin) => {
            Some(c.id) == r.customer_id && actor.principal.has_any_role(&[Role::GlobalAdmin])
        }
        (Tenant::Partner(p), RelationshipKind::IndirectReseller) => {
            p.id == r.partner_id && actor.principal.has_any_role(&[Role::AdminAgent])
        }
        _ => false,
    };
    if invited {
        return Ok(());
    }
    let who = match r.kind {
        RelationshipKind::IndirectReseller => "the invited reseller's admin_agent",
        _ => "the customer's global_admin",
    };
    Err(ApiError::new(Code::Forbidden, format!("only {who} can answer this request")))
}

/// R12: either party ends an ACTIVE relationship. A reseller relationship cannot end while the
/// partner has ACTIVE subscriptions with the customer; ending it ends the partner's delegated admin
/// with the customer too, in the same transaction.
pub async fn terminate(
    writer: &Writer,
    actor: &Actor,
    id: Uuid,
    expected_version: Option<i32>,
) -> ApiResult<relationship::Model> {
    if let Tenant::Partner(p) = &actor.principal.tenant {
        rules::r17_not_suspended(p)?;
    }
    let actor = actor.clone();
    writer
        .write(move |txn| {
            Box::pin(async move {
                let before = actor.load::<relationship::Entity>(txn, id, "relationship").await?;
                require_party(&actor, &before)?;
                let status = lifecycle::effective_relationship_status(&before, actor.now);
                if status != RelationshipStatus::Active {
                    return Err(ApiError::new(
                        Code::InvalidState,
                        format!("only ACTIVE relationships can be terminated; this one is {}", status.as_str()),
                    ));
                }
                versioned::check_expected(before.version, expected_version, "relationship")?;
                let by = By::from(&actor);
                if before.kind == RelationshipKind::Reseller
                    && let Some(customer_id) = before.customer_id
                {
                    let active = subscription::Entity::find()
                        .filter(subscription::Column::CustomerId.eq(customer_id))
                        .filter(subscription::Column::Status.eq(SubscriptionStatus::Active))
                        .filter(sold_through(&before))
                        .all(txn)
                        .await?;
                    let active = active
                        .into_iter()
                        .map(|s| lifecycle::effective_subscription(s, actor.now, actor.cancellation_window))
                        .filter(|s| s.status == SubscriptionStatus::Active)
                        .count();
                    if active > 0 {
                        return Err(ApiError::new(
                            Code::ActiveSubscriptionsExist,
                            format!("{active} ACTIVE subscription(s) of this customer were sold through this relationship: suspend or cancel them first"),
                        ));
                    }
                    // The partner's delegated admin with the customer ends with it (and the provider's,
                    // unless another reseller relationship still joins it to the customer).
                    for party in [Some(before.partner_id), before.indirect_provider_id].into_iter().flatten() {
                        if party != before.partner_id && still_linked(txn, &before, party, customer_id).await? {
                            continue;
                        }
                        end_delegated_admin(txn, &actor, &by, party, customer_id).await?;
                    }
                }
                let after = versioned::update_relationship(txn, &before, ended(&before, &actor), expected_version).await?;
                let change = Change::new("relationship.terminate", "RELATIONSHIP_TERMINATED", "Relationship", after.id)
                    .partner(after.partner_id)
                    .related_partner(after.indirect_provider_id)
                    .customer(after.customer_id)
                    .diff(Some(&before), &after);
                audit::record(txn, &by, change).await?;
                Ok(after)
            })
        })
        .await
}

/// The subscriptions sold through a reseller relationship: those of which its partner is partner or
/// reseller of record. Through an indirect provider that is the provider's sales naming this reseller
/// (not its sales through other resellers, which their own relationships carry).
fn sold_through(r: &relationship::Model) -> Condition {
    use subscription::Column as S;
    Condition::any().add(S::PartnerId.eq(r.partner_id)).add(S::ResellerId.eq(r.partner_id))
}

/// Whether `party` keeps another ACTIVE reseller relationship (as partner or indirect provider)
/// with the customer once `ending` is terminated.
async fn still_linked(
    txn: &DatabaseTransaction,
    ending: &relationship::Model,
    party: Uuid,
    customer_id: Uuid,
) -> ApiResult<bool> {
    use relationship::Column as R;
    let others = relationship::Entity::find()
        .filter(R::Kind.eq(RelationshipKind::Reseller))
        .filter(R::Status.eq(RelationshipStatus::Active))
        .filter(R::CustomerId.eq(customer_id))
        .filter(R::Id.ne(ending.id))
        .filter(Condition::any().add(R::PartnerId.eq(party)).add(R::IndirectProviderId.eq(party)))
        .count(txn)
        .await?;
    Ok(others > 0)
}

/// Terminates `partner_id`'s ACTIVE (unexpired) delegated-admin relationships with the customer, each
/// with its own audit change.
async fn end_delegated_admin(
    txn: &DatabaseTransaction,
    actor: &Actor,
    by: &By,
    partner_id: Uuid,
    customer_id: Uuid,
) -> ApiResult<()> {
    use relationship::Column as R;
    let grants = relationship::Entity::find()
        .filter(R::Kind.eq(RelationshipKind::DelegatedAdmin))
        .filter(R::Status.eq(RelationshipStatus::Active))
        .filter(R::PartnerId.eq(partner_id))
        .filter(R::CustomerId.eq(customer_id))
        .all(txn)
        .await?;
    for grant in grants {
        if lifecycle::effective_relationship_status(&grant, actor.now) != RelationshipStatus::Active {
            continue;
        }
        let ended = versioned::update_relationship(txn, &grant, ended(&grant, actor), None).await?;
        let change = Change::new("relationship.terminate", "RELATIONSHIP_TERMINATED", "Relationship", ended.id)
            .partner(ended.partner_id)
            .related_partner(ended.indirect_provider_id)
            .customer(ended.customer_id)
            .diff(Some(&grant), &ended);
        audit::record(txn, by, change).await?;
    }
    Ok(())
}

fn ended(r: &relationship::Model, actor: &Actor) -> relationship::Model {
    let mut after = r.clone();
    after.status = RelationshipStatus::Terminated;
    after.terminated_at = Some(actor.now);
    after.expires_at = None;
    after.updated_at = actor.now;
    after
}

/// Either party, with a role that may end it.
fn require_party(actor: &Actor, r: &relationship::Model) -> ApiResult<()> {
    match &actor.principal.tenant {
        Tenant::Customer(c) if Some(c.id) == r.customer_id => actor.require_role(&[Role::GlobalAdmin]),
        Tenant::Partner(p) if p.id == r.partner_id || Some(p.id) == r.indirect_provider_id => {
            if r.kind == RelationshipKind::Reseller {
                actor.require_role(&[Role::AdminAgent, Role::SalesAgent])
            } else {
                actor.require_role(&[Role::AdminAgent])
            }
        }
        Tenant::Platform => Err(ApiError::new(Code::Forbidden, "only the parties of a relationship can terminate it")),
        _ => Err(ApiError::not_found("relationship")),
    }
}
