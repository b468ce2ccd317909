//! Identity: a verified JWT becomes a [`Principal`] — the tenant the caller acts for, its kind and its
//! roles (only those that belong to the tenant's kind).

pub mod cache;
pub mod jwt;

use entity::enums::TenantKind;
use entity::{customer, partner};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{ApiError, ApiResult, Code};

pub use cache::TenantCache;
pub use jwt::{AuthConfig, Claims, Verifier};

/// A role named in the JWT `roles` claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    PlatformAdmin,
    AdminAgent,
    SalesAgent,
    HelpdeskAgent,
    GlobalAdmin,
    BillingAdmin,
    Reader,
}

impl Role {
    /// Every role: the platform's, then the partners', then the customers'.
    pub const ALL: [Role; 7] = [
        Role::PlatformAdmin,
        Role::AdminAgent,
        Role::SalesAgent,
        Role::HelpdeskAgent,
        Role::GlobalAdmin,
        Role::BillingAdmin,
        Role::Reader,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::PlatformAdmin => "platform_admin",
            Role::AdminAgent => "admin_agent",
            Role::SalesAgent => "sales_agent",
            Role::HelpdeskAgent => "helpdesk_agent",
            Role::GlobalAdmin => "global_admin",
            Role::BillingAdmin => "billing_admin",
            Role::Reader => "reader",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Some(match text {
            "platform_admin" => Role::PlatformAdmin,
            "admin_agent" => Role::AdminAgent,
            "sales_agent" => Role::SalesAgent,
            "helpdesk_agent" => Role::HelpdeskAgent,
            "global_admin" => Role::GlobalAdmin,
            "billing_admin" => Role::BillingAdmin,
            "reader" => Role::Reader,
            _ => return None,
        })
    }

    /// The tenant kind this role belongs to.
    pub fn tenant_kind(self) -> TenantKind {
        match self {
            Role::PlatformAdmin => TenantKind::Platform,
            Role::AdminAgent | Role::SalesAgent | Role::HelpdeskAgent => TenantKind::Partner,
            Role::GlobalAdmin | Role::BillingAdmin | Role::Reader => TenantKind::Customer,
        }
    }
}

/// The organisation a caller acts for.
#[derive(Debug, Clone, PartialEq)]
pub enum Tenant {
    Platform,
    Partner(partner::Model),
    Customer(customer::Model),
}

impl Tenant {
    pub fn kind(&self) -> TenantKind {
        match self {
            Tenant::Platform => TenantKind::Platform,
            Tenant::Partner(_) => TenantKind::Partner,
            Tenant::Customer(_) => TenantKind::Customer,
        }
    }
}

/// Who is calling: resolved once per request from a verified token.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    pub tenant_id: Uuid,
    pub subject: String,
    pub roles: Vec<Role>,
    pub tenant: Tenant,
    /// The platform's tenant id in this deployment (reserved: no partner or customer may take it,
    /// and time-driven changes applied on a caller's behalf are attributed to it, R2, R16).
    pub platform_tenant: Uuid,
}

impl Principal {
    pub fn has_any_role(&self, roles: &[Role]) -> bool {
        self.roles.iter().any(|r| roles.contains(r))
    }

    /// `FORBIDDEN` unless the caller holds one of `roles`; the message names them.
    pub fn require_any_role(&self, roles: &[Role]) -> ApiResult<()> {
        if self.has_any_role(roles) {
            return Ok(());
        }
        let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        Err(ApiError::new(Code::Forbidden, format!("this operation needs one of the roles: {}", names.join(", "))))
    }
}

/// Turns verified claims into a principal: `tid` must be the platform tenant or a known partner or
/// customer (`UNKNOWN_TENANT` otherwise); roles of another tenant kind are dropped.
pub async fn resolve_principal(db: &DatabaseConnection, platform_tenant: Uuid, claims: Claims) -> ApiResult<Principal> {
    let tenant = if claims.tid == platform_tenant { Tenant::Platform } else { read_tenant(db, claims.tid).await? };
    Ok(principal_of(claims, tenant, platform_tenant))
}

/// [`resolve_principal`] through the tenant cache: no statement when the tenant was resolved less
/// than the cache's TTL ago (see [`cache`] for why a stale entry cannot let a suspended partner
/// write or a terminated link read). Unknown tenants are not cached.
pub async fn resolve_principal_cached(
    db: &DatabaseConnection,
    cache: &TenantCache,
    platform_tenant: Uuid,
    claims: Claims,
) -> ApiResult<Principal> {
    let tenant = if claims.tid == platform_tenant {
        Tenant::Platform
    } else if let Some(tenant) = cache.get(claims.tid) {
        tenant
    } else {
        let tenant = read_tenant(db, claims.tid).await?;
        cache.insert(claims.tid, tenant.clone());
        tenant
    };
    Ok(principal_of(claims, tenant, platform_tenant))
}

/// The partner or customer with this tenant id; `UNKNOWN_TENANT` when there is none.
async fn read_tenant(db: &DatabaseConnection, tenant_id: Uuid) -> ApiResult<Tenant> {
    if let Some(p) = partner::Entity::find().filter(partner::Column::TenantId.eq(tenant_id)).one(db).await? {
        Ok(Tenant::Partner(p))
    } else if let Some(c) = customer::Entity::find().filter(customer::Column::TenantId.eq(tenant_id)).one(db).await? {
        Ok(Tenant::Customer(c))
    } else {
        Err(ApiError::new(Code::UnknownTenant, "the token's tenant (`tid`) is not known to this server"))
    }
}

fn principal_of(claims: Claims, tenant: Tenant, platform_tenant: Uuid) -> Principal {
    let kind = tenant.kind();
    let mut roles: Vec<Role> =
        claims.roles.iter().filter_map(|r| Role::parse(r)).filter(|r| r.tenant_kind() == kind).collect();
    roles.dedup();
    Principal { tenant_id: claims.tid, subject: claims.sub, roles, tenant, platform_tenant }
}
