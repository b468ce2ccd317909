//! A customer organisation; may exist with no partner at all.

use sea_orm::entity::prelude::*;

use crate::enums::Cloud;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "customer")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(unique)]
    pub tenant_id: Uuid,
    pub company_name: String,
    #[sea_orm(unique)]
    pub domain: String,
    /// ISO 3166-1 alpha-2, upper case.
    pub country: String,
    pub cloud: Cloud,
    pub version: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
