//! Customers: created by the platform (a customer with no partner) or by a partner, which then gets
//! an ACTIVE reseller relationship with it (for an indirect provider's reseller: the reseller, with
//! the provider as `indirectProvider`).

use entity::enums::{Cloud, PartnerType, RelationshipKind, RelationshipStatus, TenantKind};
use entity::{customer, partner, relationship};
use sea_orm::{ActiveModelTrait, ColumnTrait, DatabaseTransaction, EntityTrait, IntoActiveModel, QueryFilter};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use super::audit::{self, By, Change};
use super::idempotency::{self, Claim};
use super::inputs::{CountryCode, Domain, IdempotencyKey, Text, limits};
use super::{Actor, Writer, rules};
use crate::auth::{Role, Tenant};
use crate::error::{ApiError, ApiResult, Code};

/// `createCustomer` input, parsed.
#[derive(Debug, Clone, Serialize)]
pub struct CreateCustomer {
    pub tenant_id: Option<Uuid>,
    pub company_name: String,
    pub domain: String,
    pub country: String,
    pub cloud: Option<Cloud>,
    pub reseller_id: Option<Uuid>,
    #[serde(skip)]
    pub idempotency_key: Option<IdempotencyKey>,
}

impl CreateCustomer {
    /// Parses the raw fields (names, domain, country).
    #[allow(clippy::too_many_arguments)]
    pub fn parse(
        tenant_id: Option<Uuid>,
        company_name: &str,
        domain: &str,
        country: &str,
        cloud: Option<Cloud>,
        reseller_id: Option<Uuid>,
        idempotency_key: Option<&str>,
    ) -> ApiResult<Self> {
        Ok(Self {
            tenant_id,
            company_name: Text::parse("companyName", company_name, limits::NAME)?.into_string(),
            domain: Domain::parse("domain", domain)?.as_str().to_owned(),
            country: CountryCode::parse("country", country)?.as_str().to_owned(),
            cloud,
            reseller_id,
            idempotency_key: IdempotencyKey::parse(idempotency_key)?,
        })
    }
}

/// What `createCustomer` made.
#[derive(Debug, Clone)]
pub struct Created {
    pub customer: customer::Model,
    pub relationship: Option<relationship::Model>,
}

const OPERATION: &str = "createCustomer";

/// Creates a customer (platform_admin; partner admin_agent or sales_agent). Rules: R2 (unique
/// tenant id and domain), R3 (not a partner's), R4 (same cloud), R6 (resellers do not transact),
/// R14 (idempotency key), R17 (suspended partners cannot).
pub async fn create(writer: &Writer, actor: &Actor, input: CreateCustomer) -> ApiResult<Created> {
    let seller = match &actor.principal.tenant {
        Tenant::Platform => {
            actor.require_role(&[Role::PlatformAdmin])?;
            if input.reseller_id.is_some() {
                return Err(ApiError::bad_input(
                    "resellerId",
                    "only an indirect provider creates customers for a reseller",
                ));
            }
            None
        }
        Tenant::Partner(p) => {
            actor.require_role(&[Role::AdminAgent, Role::SalesAgent])?;
            rules::r17_not_suspended(p)?;
            rules::r6_may_transact(p)?;
            Some(p.clone())
        }
        Tenant::Customer(_) => {
            return Err(ApiError::new(
                Code::Forbidden,
                "customers are created by the platform or by partners (platform_admin, admin_agent, sales_agent)",
            ));
        }
    };
    let by = By::from(actor);
    let actor = actor.clone();
    writer
        .write(move |txn| {
            Box::pin(async move {
                let key = input.idempotency_key.clone();
                if let Some(key) = &key {
                    let hash = idempotency::request_hash(OPERATION, &input);
                    if let Claim::Replay(response) = idempotency::claim(txn, actor.principal.tenant_id, key, OPERATION, &hash, actor.now).await? {
                        return replay(txn, &actor, response).await;
                    }
                }
                let created = create_in(txn, &actor, &by, seller.as_ref(), &input).await?;
                if let Some(key) = &key {
                    let response = json!({"customer": created.customer.id, "relationship": created.relationship.as_ref().map(|r| r.id)});
                    idempotency::complete(txn, actor.principal.tenant_id, key, response).await?;
                }
                Ok(created)
            })
        })
        .await
}

async fn replay(txn: &DatabaseTransaction, actor: &Actor, response: serde_json::Value) -> ApiResult<Created> {
    let id = |name: &str| response.get(name).and_then(|v| v.as_str()).and_then(|s| Uuid::parse_str(s).ok());
    let customer_id =
        id("customer").ok_or_else(|| ApiError::internal(anyhow::anyhow!("idempotency record without customer")))?;
    let customer = actor.load::<customer::Entity>(txn, customer_id, "customer").await?;
    let relationship = match id("relationship") {
        Some(rid) => Some(actor.load::<relationship::Entity>(txn, rid, "relationship").await?),
        None => None,
    };
    Ok(Created { customer, relationship })
}

async fn create_in(
    txn: &DatabaseTransaction,
    actor: &Actor,
    by: &By,
    seller: Option<&partner::Model>,
    input: &CreateCustomer,
) -> ApiResult<Created> {
    let now = actor.now;
    let domain = Domain::parse("domain", &input.domain)?;
    let tenant_id = input.tenant_id.unwrap_or_else(Uuid::new_v4);
    let cloud = input.cloud.or(seller.map(|s| s.cloud)).unwrap_or(Cloud::Public);

    // Who the reseller relationship joins: the seller itself, or (indirect provider) its reseller.
    let link = match seller {
        None => None,
        Some(seller) => {
            rules::r4_same_cloud(seller.cloud, cloud, "createCustomer")?;
            match (seller.partner_type, input.reseller_id) {
                (PartnerType::IndirectProvider, Some(reseller_id)) => {
                    let reseller = active_reseller_of(txn, actor, seller, reseller_id).await?;
                    rules::r4_same_cloud(reseller.cloud, cloud, "createCustomer for a reseller")?;
                    Some((reseller.id, Some(seller.id)))
                }
                (_, Some(_)) => {
                    return Err(ApiError::bad_input(
                        "resellerId",
                        "only indirect providers create customers for a reseller",
                    ));
                }
                (_, None) => Some((seller.id, None)),
            }
        }
    };
    rules::r3_not_a_partner(txn, Some(domain.as_str()), Some(tenant_id)).await?;
    rules::r2_register_tenant(txn, tenant_id, TenantKind::Customer, &domain, actor.principal.platform_tenant, now)
        .await?;
    let customer = customer::Model {
        id: Uuid::now_v7(),
        tenant_id,
        company_name: input.company_name.clone(),
        domain: domain.as_str().to_owned(),
        country: input.country.clone(),
        cloud,
        version: 1,
        created_at: now,
        updated_at: now,
    }
    .into_active_model()
    .insert(txn)
    .await?;
    let change = Change::new("customer.create", "CUSTOMER_CREATED", "Customer", customer.id)
        .customer(customer.id)
        .partner(link.map(|(p, _)| p))
        .related_partner(link.and_then(|(_, provider)| provider))
        .diff(None, &customer);
    audit::record(txn, by, change).await?;

    let relationship = match link {
        None => None,
        Some((partner_id, indirect_provider_id)) => {
            let rel = relationship::Model {
                id: Uuid::now_v7(),
                kind: RelationshipKind::Reseller,
                status: RelationshipStatus::Active,
                partner_id,
                customer_id: Some(customer.id),
                indirect_provider_id,
                customer_domain: Some(customer.domain.clone()),
                roles: String::new(),
                duration_days: None,
                message: None,
                requested_at: now,
                responded_at: Some(now),
                terminated_at: None,
                expires_at: None,
                version: 1,
                created_at: now,
                updated_at: now,
            }
            .into_active_model()
            .insert(txn)
            .await?;
            let change = Change::new("relationship.create", "RELATIONSHIP_ACCEPTED", "Relationship", rel.id)
                .customer(customer.id)
                .partner(partner_id)
                .related_partner(indirect_provider_id)
                .diff(None, &rel);
            audit::record(txn, by, change).await?;
            Some(rel)
        }
    };
    Ok(Created { customer, relationship })
}

/// The provider's ACTIVE indirect reseller `reseller_id` (NOT_FOUND when the provider cannot see it,
/// RELATIONSHIP_REQUIRED when the link is not active).
async fn active_reseller_of(
    txn: &DatabaseTransaction,
    actor: &Actor,
    provider: &partner::Model,
    reseller_id: Uuid,
) -> ApiResult<partner::Model> {
    let reseller = actor.load::<partner::Entity>(txn, reseller_id, "reseller").await?;
    let link = relationship::Entity::find()
        .filter(relationship::Column::Kind.eq(RelationshipKind::IndirectReseller))
        .filter(relationship::Column::Status.eq(RelationshipStatus::Active))
        .filter(relationship::Column::PartnerId.eq(reseller.id))
        .filter(relationship::Column::IndirectProviderId.eq(provider.id))
        .one(txn)
        .await?;
    if link.is_none() {
        return Err(ApiError::new(
            Code::RelationshipRequired,
            "you need an ACTIVE indirect-reseller relationship with this reseller (invite it and have it accept)",
        ));
    }
    Ok(reseller)
}
