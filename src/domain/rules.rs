//! The business rules shared by several mutations, one function each, named after the rule
//! (`docs/rules.md`) they enforce. Rules that belong to one aggregate live in its module (R7–R9 in
//! `transfers.rs`/`subscriptions.rs`, R11 in `subscriptions.rs`, R12 in `relationships.rs`).

use chrono::{DateTime, Utc};
use entity::enums::{Cloud, PartnerStatus, PartnerType, RelationshipKind, RelationshipStatus, TenantKind};
use entity::{customer, partner, relationship, tenant};
use sea_orm::sea_query::{Expr, ExprTrait, Func, SimpleExpr};
use sea_orm::{ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter};
use uuid::Uuid;

use super::inputs::Domain;
use crate::auth::Role;
use crate::error::{ApiError, ApiResult, Code};

/// R2: tenant ids and domains are unique across partners and customers, and the platform's own
/// tenant id (configured, not a registry row) is taken too. Registers the pair in the shared registry
/// (whose unique keys are the final word when two requests race).
pub async fn r2_register_tenant<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    kind: TenantKind,
    domain: &Domain,
    platform_tenant: Uuid,
    now: DateTime<Utc>,
) -> ApiResult<()> {
    if tenant_id == platform_tenant {
        return Err(tenant_id_taken(tenant_id));
    }
    let taken = tenant::Entity::find()
        .filter(
            Condition::any()
                .add(tenant::Column::TenantId.eq(tenant_id))
                .add(tenant::Column::Domain.eq(domain.as_str())),
        )
        .all(db)
        .await?;
    if taken.iter().any(|t| t.domain == domain.as_str()) {
        return Err(ApiError::new(
            Code::DomainTaken,
            format!("the domain `{}` is already registered; choose another", domain.as_str()),
        ));
    }
    if !taken.is_empty() {
        return Err(tenant_id_taken(tenant_id));
    }
    let insert = tenant::Model { tenant_id, kind, domain: domain.as_str().to_owned(), created_at: now }
        .into_active_model()
        .insert(db);
    super::on_unique(
        insert,
        Code::DomainTaken,
        format!("the domain `{}` or tenant id is already registered", domain.as_str()),
    )
    .await?;
    Ok(())
}

fn tenant_id_taken(tenant_id: Uuid) -> ApiError {
    ApiError::new(
        Code::Conflict,
        format!("the tenant id {tenant_id} is already registered; leave tenantId out to have one generated"),
    )
}

/// R3: CSP partners cannot resell to other CSP partners: a domain or tenant id that belongs to a
/// partner cannot become a customer or be asked for a relationship.
pub async fn r3_not_a_partner<C: ConnectionTrait>(
    db: &C,
    domain: Option<&str>,
    tenant_id: Option<Uuid>,
) -> ApiResult<()> {
    let mut cond = Condition::any();
    if let Some(domain) = domain {
        cond = cond.add(partner::Column::Domain.eq(domain));
    }
    if let Some(tenant_id) = tenant_id {
        cond = cond.add(partner::Column::TenantId.eq(tenant_id));
    }
    if partner::Entity::find().filter(cond).one(db).await?.is_some() {
        return Err(ApiError::new(
            Code::CannotResellToPartner,
            "this domain or tenant belongs to a CSP partner, and partners cannot resell to other partners",
        ));
    }
    Ok(())
}

/// R4: cloud separation: a relationship or subscription joins parties of the same cloud only.
pub fn r4_same_cloud(a: Cloud, b: Cloud, what: &str) -> ApiResult<()> {
    if a == b {
        return Ok(());
    }
    Err(ApiError::new(
        Code::CloudMismatch,
        format!(
            "{what}: the parties live in different clouds ({} and {}); the US Government cloud is separate",
            a.as_str(),
            b.as_str()
        ),
    ))
}

/// R6: indirect resellers do not transact (customers, subscriptions, transfers): their provider does.
pub fn r6_may_transact(partner: &partner::Model) -> ApiResult<()> {
    if partner.partner_type == PartnerType::IndirectReseller {
        return Err(ApiError::new(
            Code::IndirectResellerCannotTransact,
            "indirect resellers do not transact: ask your indirect provider to do it for you",
        ));
    }
    Ok(())
}

/// R17: suspended partners can read but not mutate.
pub fn r17_not_suspended(partner: &partner::Model) -> ApiResult<()> {
    r17_status_allows_writes(partner.status)
}

/// R17 on a partner's status alone (read together with something else).
pub fn r17_status_allows_writes(status: PartnerStatus) -> ApiResult<()> {
    if status == PartnerStatus::Suspended {
        return Err(ApiError::new(
            Code::PartnerSuspended,
            "this partner is suspended: it can read but not change anything",
        ));
    }
    Ok(())
}

/// R17 as a list: the partner statuses [`r17_status_allows_writes`] lets write (for a write whose
/// check of the partner's row runs in its own statement, `Writer::write_guard`).
pub fn r17_statuses_allowing_writes() -> impl Iterator<Item = PartnerStatus> {
    use sea_orm::Iterable;
    PartnerStatus::iter().filter(|status| r17_status_allows_writes(*status).is_ok())
}

/// Whether the partner holds an ACTIVE, unexpired delegated-admin relationship with a customer that
/// grants `role`.
pub async fn active_delegated_admin<C: ConnectionTrait>(
    db: &C,
    partner_id: Uuid,
    customer_id: Uuid,
    role: Role,
    now: DateTime<Utc>,
) -> ApiResult<bool> {
    let grant = relationship::Entity::find()
        .filter(delegated_admin_grant(partner_id, Expr::val(customer_id), role, now))
        .one(db)
        .await?;
    Ok(grant.is_some())
}

/// The condition on a `relationship` row of [`active_delegated_admin`], for the customer
/// `customer` (a value, or the customer column of an enclosing query: a write made of one
/// statement checks it as it writes, `Writer::write_guard_delegated`). `roles` holds the granted
/// roles separated by commas: the role is granted when `,<roles>,` contains `,<role>,`, which
/// `replace` (exact and case-sensitive on both databases, unlike `LIKE`) tells by changing it.
pub fn delegated_admin_grant(partner_id: Uuid, customer: SimpleExpr, role: Role, now: DateTime<Utc>) -> Condition {
    let listed = || Expr::cust(r#"(',' || "relationship"."roles" || ',')"#);
    let without = Func::cust("replace").arg(listed()).arg(format!(",{},", role.as_str())).arg("");
    Condition::all()
        .add(relationship::Column::Kind.eq(RelationshipKind::DelegatedAdmin))
        .add(relationship::Column::Status.eq(RelationshipStatus::Active))
        .add(relationship::Column::PartnerId.eq(partner_id))
        .add(Expr::col((relationship::Entity, relationship::Column::CustomerId)).eq(customer))
        .add(relationship::Column::ExpiresAt.gt(now))
        .add(listed().ne(without))
}

/// R5: who may sell to a customer. A partner sells through its ACTIVE reseller relationship; an
/// indirect provider through an ACTIVE reseller relationship whose `indirectProvider` it is, naming
/// that relationship's reseller, which must still hold its ACTIVE indirect-reseller link with the
/// provider (R6). Delegated admin alone does not allow selling. Returns the reseller
/// of record (for indirect sales).
pub async fn r5_may_sell<C: ConnectionTrait>(
    db: &C,
    seller: &partner::Model,
    customer: &customer::Model,
    reseller_id: Option<Uuid>,
) -> ApiResult<Option<Uuid>> {
    use relationship::Column as R;
    let active_reseller_link = relationship::Entity::find()
        .filter(R::Kind.eq(RelationshipKind::Reseller))
        .filter(R::Status.eq(RelationshipStatus::Active))
        .filter(R::CustomerId.eq(customer.id));
    match (seller.partner_type, reseller_id) {
        (PartnerType::IndirectProvider, Some(reseller_id)) => {
            // The provider sells in the reseller's name only while the reseller keeps its ACTIVE
            // indirect-reseller link with it (a reseller that ended the link has left the provider).
            let indirect = relationship::Entity::find()
                .filter(R::Kind.eq(RelationshipKind::IndirectReseller))
                .filter(R::Status.eq(RelationshipStatus::Active))
                .filter(R::PartnerId.eq(reseller_id))
                .filter(R::IndirectProviderId.eq(seller.id))
                .one(db)
                .await?;
            if indirect.is_none() {
                return Err(ApiError::new(
                    Code::RelationshipRequired,
                    "selling through this reseller needs an ACTIVE indirect-reseller relationship with it (invite it again and have it accept)",
                ));
            }
            let link = active_reseller_link
                .filter(R::PartnerId.eq(reseller_id))
                .filter(R::IndirectProviderId.eq(seller.id))
                .one(db)
                .await?;
            if link.is_none() {
                return Err(ApiError::new(
                    Code::RelationshipRequired,
                    "selling through this reseller needs an ACTIVE reseller relationship between the reseller and the customer with you as indirect provider",
                ));
            }
            Ok(Some(reseller_id))
        }
        (PartnerType::IndirectProvider, None) => Err(ApiError::bad_input(
            "resellerId",
            "an indirect provider sells through one of its resellers: name it in `resellerId`",
        )),
        (_, Some(_)) => Err(ApiError::bad_input("resellerId", "only indirect providers sell through resellers")),
        (_, None) => {
            let link = active_reseller_link
                .filter(R::PartnerId.eq(seller.id))
                .filter(R::IndirectProviderId.is_null())
                .one(db)
                .await?;
            if link.is_none() {
                return Err(ApiError::new(
                    Code::RelationshipRequired,
                    "selling to this customer needs an ACTIVE reseller relationship with it (request one and have the customer accept)",
                ));
            }
            Ok(None)
        }
    }
}
