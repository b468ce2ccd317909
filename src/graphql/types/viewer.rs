//! `Viewer`: who the caller is.

use async_graphql::{Context, Object};
use uuid::Uuid;

use super::customer::Customer;
use super::enums::TenantKind;
use super::partner::Partner;
use crate::auth::{Principal, Tenant};

/// The signed-in caller: the tenant it acts for and the roles it holds there.
pub struct Viewer(pub Principal);

/// The signed-in caller: the tenant it acts for and the roles it holds there.
#[Object]
impl Viewer {
    /// The tenant the caller acts for (the token's `tid`).
    async fn tenant_id(&self) -> Uuid {
        self.0.tenant_id
    }

    /// What kind of tenant that is.
    async fn tenant_kind(&self) -> TenantKind {
        self.0.tenant.kind().into()
    }

    /// The token's subject (`sub`).
    async fn subject(&self) -> &str {
        &self.0.subject
    }

    /// The caller's roles that apply to its tenant kind (others in the token are ignored).
    async fn roles(&self) -> Vec<&'static str> {
        self.0.roles.iter().map(|r| r.as_str()).collect()
    }

    /// The caller's partner organisation, when it acts for a partner.
    async fn partner(&self, _ctx: &Context<'_>) -> Option<Partner> {
        match &self.0.tenant {
            Tenant::Partner(p) => Some(Partner(p.clone())),
            _ => None,
        }
    }

    /// The caller's customer organisation, when it acts for a customer.
    async fn customer(&self) -> Option<Customer> {
        match &self.0.tenant {
            Tenant::Customer(c) => Some(Customer(c.clone())),
            _ => None,
        }
    }
}
