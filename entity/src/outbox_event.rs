//! The outbox of domain events, written in the transaction of the change they describe.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "outbox_event")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub event_type: String,
    pub occurred_at: DateTimeUtc,
    pub node_type: String,
    pub node_id: Uuid,
    pub partner_id: Option<Uuid>,
    pub related_partner_id: Option<Uuid>,
    pub customer_id: Option<Uuid>,
    pub payload: Json,
}

impl ActiveModelBehavior for ActiveModel {}
