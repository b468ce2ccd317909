//! A relationship between a partner and a customer (RESELLER, DELEGATED_ADMIN) or between an indirect
//! provider and an indirect reseller (INDIRECT_RESELLER).
//!
//! One shape for all kinds: `partner_id` is the partner side (the reseller, for indirect kinds),
//! `indirect_provider_id` the provider when there is one, `customer_id` the customer for the partner ↔ customer kinds.
//! `expires_at` is when a PENDING request or an ACTIVE grant ends by the clock.

use sea_orm::entity::prelude::*;

use crate::enums::{RelationshipKind, RelationshipStatus};

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "relationship")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub kind: RelationshipKind,
    pub status: RelationshipStatus,
    pub partner_id: Uuid,
    pub customer_id: Option<Uuid>,
    pub indirect_provider_id: Option<Uuid>,
    pub customer_domain: Option<String>,
    /// Delegated-admin roles, comma separated (`admin_agent,helpdesk_agent`); empty for other kinds.
    pub roles: String,
    pub duration_days: Option<i32>,
    pub message: Option<String>,
    pub requested_at: DateTimeUtc,
    pub responded_at: Option<DateTimeUtc>,
    pub terminated_at: Option<DateTimeUtc>,
    pub expires_at: Option<DateTimeUtc>,
    pub version: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
