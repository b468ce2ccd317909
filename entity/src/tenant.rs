//! The registry of every partner and customer tenant: one row per tenant id, and the primary domain it owns.
//! Unique keys here make tenant ids and domains unique across partners and customers (R2).

use sea_orm::entity::prelude::*;

use crate::enums::TenantKind;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "tenant")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: Uuid,
    pub kind: TenantKind,
    /// Lower-cased primary domain; unique.
    #[sea_orm(unique)]
    pub domain: String,
    pub created_at: DateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
