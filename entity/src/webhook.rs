//! A webhook endpoint registered by a tenant (`docs/webhooks.md`). Deleting one sets `deleted_at`
//! (its deliveries stay readable); the secret signs every delivery and is never shown again.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "webhook")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The owner's tenant.
    pub tenant_id: Uuid,
    /// `PLATFORM`, `PARTNER` or `CUSTOMER`.
    pub owner_kind: String,
    pub partner_id: Option<Uuid>,
    pub customer_id: Option<Uuid>,
    pub url: String,
    /// JSON array of event type names (`SUBSCRIPTION_CREATED`, …).
    pub event_types: Json,
    #[serde(skip)]
    pub secret: String,
    pub created_at: DateTimeUtc,
    /// JWT `sub` of the caller who registered it.
    pub created_by: String,
    pub deleted_at: Option<DateTimeUtc>,
}

impl ActiveModelBehavior for ActiveModel {}
