//! The outbox events already fanned out to webhook deliveries (one row each, written in the
//! transaction that wrote the deliveries).

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "outbox_fanout")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub outbox_event_id: i64,
    pub fanned_out_at: DateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
