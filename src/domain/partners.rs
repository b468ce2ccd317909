//! Partners: onboarding and suspension, by the platform.

use entity::enums::{Cloud, PartnerStatus, PartnerType, TenantKind};
use entity::partner;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter};
use uuid::Uuid;

use super::audit::{self, By, Change};
use super::inputs::{Domain, Text};
use super::{Actor, Writer, rules, versioned};
use crate::auth::Role;
use crate::error::{ApiError, ApiResult, Code};

/// `onboardPartner` input, parsed.
#[derive(Debug, Clone)]
pub struct OnboardPartner {
    pub tenant_id: Option<Uuid>,
    pub name: Text,
    pub domain: Domain,
    pub partner_type: PartnerType,
    pub partner_network_id: Text,
    pub cloud: Cloud,
}

/// Onboards a partner (platform_admin). R2: its tenant id, domain and partner network id are unique.
pub async fn onboard(writer: &Writer, actor: &Actor, input: OnboardPartner) -> ApiResult<partner::Model> {
    actor.require_role(&[Role::PlatformAdmin])?;
    let tenant_id = input.tenant_id.unwrap_or_else(Uuid::new_v4);
    let by = By::from(actor);
    let now = actor.now;
    let platform_tenant = actor.principal.platform_tenant;
    writer
        .write(move |txn| {
            Box::pin(async move {
                rules::r2_register_tenant(txn, tenant_id, TenantKind::Partner, &input.domain, platform_tenant, now)
                    .await?;
                let network_id = input.partner_network_id.into_string();
                if partner::Entity::find()
                    .filter(partner::Column::PartnerNetworkId.eq(&network_id))
                    .one(txn)
                    .await?
                    .is_some()
                {
                    return Err(ApiError::new(
                        Code::Conflict,
                        format!("partner network id `{network_id}` is already in use"),
                    ));
                }
                let model = partner::Model {
                    id: Uuid::now_v7(),
                    tenant_id,
                    name: input.name.into_string(),
                    domain: input.domain.as_str().to_owned(),
                    partner_type: input.partner_type,
                    partner_network_id: network_id,
                    cloud: input.cloud,
                    status: PartnerStatus::Active,
                    version: 1,
                    created_at: now,
                    updated_at: now,
                };
                let insert = model.clone().into_active_model().insert(txn);
                let model = super::on_unique(insert, Code::Conflict, "partner network id already in use").await?;
                let change = Change::new("partner.onboard", "PARTNER_ONBOARDED", "Partner", model.id)
                    .partner(model.id)
                    .diff(None, &model);
                audit::record(txn, &by, change).await?;
                Ok(model)
            })
        })
        .await
}

/// Suspends or reactivates a partner (platform_admin). R17: a suspended partner can only read.
pub async fn set_status(
    writer: &Writer,
    actor: &Actor,
    partner_id: Uuid,
    status: PartnerStatus,
) -> ApiResult<partner::Model> {
    actor.require_role(&[Role::PlatformAdmin])?;
    let by = By::from(actor);
    let actor = actor.clone();
    writer
        .write(move |txn| {
            Box::pin(async move {
                let before = actor.load::<partner::Entity>(txn, partner_id, "partner").await?;
                if before.status == status {
                    // Nothing changes, but the call is still recorded (R15).
                    let change = Change::new("partner.set_status", "PARTNER_STATUS_CHANGED", "Partner", before.id)
                        .partner(before.id)
                        .diff(Some(&before), &before);
                    audit::record(txn, &by, change).await?;
                    return Ok(before);
                }
                let mut after = before.clone();
                after.status = status;
                after.updated_at = actor.now;
                let after = versioned::update_partner(txn, &before, after, None).await?;
                let change = Change::new("partner.set_status", "PARTNER_STATUS_CHANGED", "Partner", after.id)
                    .partner(after.id)
                    .diff(Some(&before), &after);
                audit::record(txn, &by, change).await?;
                Ok(after)
            })
        })
        .await
}
