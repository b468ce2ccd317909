//! `onboardPartner`, `setPartnerStatus`.

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use uuid::Uuid;

use crate::domain::inputs::{Domain, Text, limits};
use crate::domain::partners::{self, OnboardPartner};
use crate::graphql::context::{RequestCtx, session};
use crate::graphql::ids::{self, NodeType};
use crate::graphql::types::Partner;
use crate::graphql::types::enums::{Cloud, PartnerStatus, PartnerType};

/// Onboards a partner organisation into the program.
#[derive(InputObject)]
pub struct OnboardPartnerInput {
    /// The partner's tenant id (the `tid` of its users' tokens); generated when absent.
    pub tenant_id: Option<Uuid>,
    /// The organisation's name.
    pub name: String,
    /// Its primary domain (unique across partners and customers).
    pub domain: String,
    /// Its place in the program.
    pub partner_type: PartnerType,
    /// The program membership id (unique).
    pub partner_network_id: String,
    /// The cloud it lives in.
    #[graphql(default_with = "Cloud::Public")]
    pub cloud: Cloud,
}

/// Suspends or reactivates a partner.
#[derive(InputObject)]
pub struct SetPartnerStatusInput {
    /// The partner.
    pub partner_id: ID,
    /// The new status.
    pub status: PartnerStatus,
}

/// The partner a mutation made or changed.
#[derive(SimpleObject)]
pub struct PartnerPayload {
    /// The partner as it now stands.
    pub partner: Partner,
}

#[derive(Default)]
pub struct PartnerMutations;

/// Partner onboarding and status, by the platform operator.
#[Object]
impl PartnerMutations {
    /// Onboards a partner (`platform_admin`). `DOMAIN_TAKEN` when the domain is registered,
    /// `CONFLICT` for a taken tenant id or partner network id.
    async fn onboard_partner(
        &self,
        ctx: &Context<'_>,
        input: OnboardPartnerInput,
    ) -> async_graphql::Result<PartnerPayload> {
        let rc = RequestCtx::of(ctx)?;
        let actor = rc.actor()?;
        let parsed = OnboardPartner {
            tenant_id: input.tenant_id,
            name: Text::parse("name", &input.name, limits::NAME)?,
            domain: Domain::parse("domain", &input.domain)?,
            partner_type: input.partner_type.into(),
            partner_network_id: Text::parse("partnerNetworkId", &input.partner_network_id, limits::IDENTIFIER)?,
            cloud: input.cloud.into(),
        };
        let partner = partners::onboard(&session(ctx)?.writer, &actor, parsed).await?;
        Ok(PartnerPayload { partner: Partner(partner) })
    }

    /// Suspends (`SUSPENDED`: read-only) or reactivates a partner (`platform_admin`).
    async fn set_partner_status(
        &self,
        ctx: &Context<'_>,
        input: SetPartnerStatusInput,
    ) -> async_graphql::Result<PartnerPayload> {
        let rc = RequestCtx::of(ctx)?;
        let actor = rc.actor()?;
        let id = ids::decode("partnerId", NodeType::Partner, &input.partner_id)?;
        let partner = partners::set_status(&session(ctx)?.writer, &actor, id, input.status.into()).await?;
        // Other instances see the change within the cache's TTL for reads; writes everywhere see
        // it at once (`Writer::for_principal`).
        rc.forget_tenant(partner.tenant_id);
        Ok(PartnerPayload { partner: Partner(partner) })
    }
}
