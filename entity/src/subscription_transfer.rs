//! A request to move a CSP usage-based subscription to another partner of record.

use sea_orm::entity::prelude::*;

use crate::enums::TransferStatus;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "subscription_transfer")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub subscription_id: Uuid,
    /// Denormalised from the subscription so that the customer's view needs no join.
    pub customer_id: Uuid,
    pub source_partner_id: Uuid,
    pub target_partner_id: Uuid,
    pub status: TransferStatus,
    pub requested_at: DateTimeUtc,
    pub responded_at: Option<DateTimeUtc>,
    pub expires_at: DateTimeUtc,
    pub version: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
