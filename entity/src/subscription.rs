//! A customer's subscription, bought through a CSP partner or through another channel.

use sea_orm::entity::prelude::*;

use crate::enums::{BillingModel, Channel, SubscriptionStatus};

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "subscription")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub customer_id: Uuid,
    pub offer_id: String,
    pub offer_name: String,
    pub billing_model: BillingModel,
    pub channel: Channel,
    /// Partner of record (CSP only).
    pub partner_id: Option<Uuid>,
    /// Indirect reseller of record (CSP sold by an indirect provider only).
    pub reseller_id: Option<Uuid>,
    pub quantity: Option<i32>,
    pub status: SubscriptionStatus,
    pub term_months: Option<i32>,
    pub term_start: DateTimeUtc,
    pub term_end: Option<DateTimeUtc>,
    pub auto_renew: bool,
    pub cancellation_allowed_until: Option<DateTimeUtc>,
    pub external_reference: Option<String>,
    pub migrated_from_id: Option<Uuid>,
    pub version: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub cancelled_at: Option<DateTimeUtc>,
}

impl ActiveModelBehavior for ActiveModel {}
