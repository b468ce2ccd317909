//! The audit trail: one row per successful mutation or lifecycle change, written in its transaction.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "audit_event")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub occurred_at: DateTimeUtc,
    pub actor_tenant_id: Uuid,
    /// JWT `sub`, or `system` for lifecycle changes.
    pub actor_subject: String,
    pub action: String,
    pub target_type: String,
    pub target_id: Uuid,
    /// The partner concerned.
    pub partner_id: Option<Uuid>,
    /// A second partner concerned (the other side of a transfer, the provider of a reseller).
    pub related_partner_id: Option<Uuid>,
    /// The customer concerned.
    pub customer_id: Option<Uuid>,
    pub details: Json,
    pub request_id: String,
}

impl ActiveModelBehavior for ActiveModel {}
