//! One event to one webhook: its state, attempts and the lease of the instance sending it.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "webhook_delivery")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub webhook_id: Uuid,
    /// The webhook owner's tenant (copied, for listing).
    pub tenant_id: Uuid,
    pub outbox_event_id: i64,
    pub event_type: String,
    /// `PENDING`, `DELIVERED` or `FAILED`.
    pub status: String,
    /// Attempts made so far.
    pub attempts: i32,
    pub next_attempt_at: DateTimeUtc,
    /// After this instant a failed attempt is not retried: the delivery becomes `FAILED`.
    pub deadline_at: DateTimeUtc,
    /// Until when the instance that claimed it may send it; expired leases are claimed again.
    pub lease_until: Option<DateTimeUtc>,
    pub lease_token: Option<Uuid>,
    pub last_error: Option<String>,
    pub last_status_code: Option<i32>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub delivered_at: Option<DateTimeUtc>,
}

impl ActiveModelBehavior for ActiveModel {}
