//! A partner organisation in the program.

use sea_orm::entity::prelude::*;

use crate::enums::{Cloud, PartnerStatus, PartnerType};

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "partner")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(unique)]
    pub tenant_id: Uuid,
    pub name: String,
    #[sea_orm(unique)]
    pub domain: String,
    pub partner_type: PartnerType,
    #[sea_orm(unique)]
    pub partner_network_id: String,
    pub cloud: Cloud,
    pub status: PartnerStatus,
    pub version: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
