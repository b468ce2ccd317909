//! Webhooks (`docs/webhooks.md`): endpoints registered by tenants, one delivery row per (webhook,
//! outbox event), and the mark of the outbox events already fanned out to deliveries.
//!
//! Fan-out marks rows (`outbox_fanout`) instead of keeping a `max(id)` cursor: on PostgreSQL the
//! autoincrement ids of concurrent transactions commit out of order, and a cursor would step over
//! an id whose transaction commits a moment later.

use sea_orm_migration::{prelude::*, schema::*};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261127_000001_webhooks"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("webhook")
                    .col(uuid("id").primary_key())
                    // The owner: its tenant, and the partner or customer row (none for the platform).
                    .col(uuid("tenant_id"))
                    .col(string_len("owner_kind", 32))
                    .col(uuid_null("partner_id"))
                    .col(uuid_null("customer_id"))
                    .col(string_len("url", 2048))
                    // JSON array of event type names.
                    .col(json("event_types"))
                    .col(string_len("secret", 128))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(string_len("created_by", 255))
                    .col(timestamp_with_time_zone_null("deleted_at"))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("webhook_delivery")
                    .col(uuid("id").primary_key())
                    .col(uuid("webhook_id"))
                    .col(uuid("tenant_id"))
                    .col(big_integer("outbox_event_id"))
                    .col(string_len("event_type", 64))
                    .col(string_len("status", 32))
                    .col(integer("attempts"))
                    .col(timestamp_with_time_zone("next_attempt_at"))
                    .col(timestamp_with_time_zone("deadline_at"))
                    .col(timestamp_with_time_zone_null("lease_until"))
                    .col(uuid_null("lease_token"))
                    .col(string_len_null("last_error", 1024))
                    .col(integer_null("last_status_code"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .col(timestamp_with_time_zone_null("delivered_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_webhook_delivery_webhook")
                            .from("webhook_delivery", "webhook_id")
                            .to("webhook", "id")
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_webhook_delivery_outbox_event")
                            .from("webhook_delivery", "outbox_event_id")
                            .to("outbox_event", "id")
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("outbox_fanout")
                    .col(big_integer("outbox_event_id").primary_key())
                    .col(timestamp_with_time_zone("fanned_out_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_outbox_fanout_outbox_event")
                            .from("outbox_fanout", "outbox_event_id")
                            .to("outbox_event", "id")
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await?;

        let indexes: &[(&str, &str, &[&str], bool)] = &[
            ("ix_webhook_tenant", "webhook", &["tenant_id", "id"], false),
            // One delivery per webhook and event: fan-out is idempotent.
            ("ux_webhook_delivery_event", "webhook_delivery", &["webhook_id", "outbox_event_id"], true),
            ("ix_webhook_delivery_due", "webhook_delivery", &["status", "next_attempt_at"], false),
            ("ix_webhook_delivery_tenant", "webhook_delivery", &["tenant_id", "id"], false),
        ];
        for (name, table, cols, unique) in indexes {
            let mut index = Index::create();
            index.name(*name).table(*table);
            if *unique {
                index.unique();
            }
            for col in *cols {
                index.col(*col);
            }
            manager.create_index(index).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["outbox_fanout", "webhook_delivery", "webhook"] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
