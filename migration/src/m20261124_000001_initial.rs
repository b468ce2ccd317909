//! The whole data model (`docs/domain.md`), with its integrity rules in the database: foreign keys,
//! unique tenant ids, domains and partner network ids, at most one pending request per pair, and an
//! index for every access path of the visibility rule (R1).

use sea_orm_migration::{prelude::*, schema::*};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261124_000001_initial"
    }
}

fn fk(
    from_table: &'static str,
    from_col: &'static str,
    to_table: &'static str,
    to_col: &'static str,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(format!("fk_{from_table}_{from_col}"))
        .from(from_table, from_col)
        .to(to_table, to_col)
        .on_delete(ForeignKeyAction::Restrict)
        .to_owned()
}

/// Statements that are the same on SQLite and PostgreSQL: partial and expression indexes, and checks
/// that the schema builder does not express.
const RAW_INDEXES: &[&str] = &[
    // R12: at most one PENDING request per partner, customer (or provider) and kind.
    "CREATE UNIQUE INDEX ux_relationship_one_pending ON relationship (kind, partner_id, COALESCE(customer_id, indirect_provider_id)) WHERE status = 'PENDING'",
    // At most one ACTIVE reseller link per pair (delegated-admin grants may coexist with different roles).
    "CREATE UNIQUE INDEX ux_relationship_one_active_link ON relationship (kind, partner_id, COALESCE(customer_id, indirect_provider_id)) WHERE status = 'ACTIVE' AND kind <> 'DELEGATED_ADMIN'",
    // R8: at most one pending transfer per subscription.
    "CREATE UNIQUE INDEX ux_transfer_one_pending ON subscription_transfer (subscription_id) WHERE status = 'PENDING'",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("tenant")
                    .col(uuid("tenant_id").primary_key())
                    .col(string_len("kind", 32))
                    .col(string_len_uniq("domain", 253).check(Expr::cust("domain = lower(domain)")))
                    .col(timestamp_with_time_zone("created_at"))
                    .index(Index::create().name("ux_tenant_id_domain").unique().col("tenant_id").col("domain"))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("partner")
                    .col(uuid("id").primary_key())
                    .col(uuid_uniq("tenant_id"))
                    .col(string("name"))
                    .col(string_len_uniq("domain", 253))
                    .col(string_len("partner_type", 32))
                    .col(string_len_uniq("partner_network_id", 64))
                    .col(string_len("cloud", 32))
                    .col(string_len("status", 32))
                    .col(integer("version"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    // The registry row must be this tenant's own: one (tenant id, domain) pair.
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_partner_tenant")
                            .from_tbl("partner")
                            .from_col("tenant_id")
                            .from_col("domain")
                            .to_tbl("tenant")
                            .to_col("tenant_id")
                            .to_col("domain")
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("customer")
                    .col(uuid("id").primary_key())
                    .col(uuid_uniq("tenant_id"))
                    .col(string("company_name"))
                    .col(string_len_uniq("domain", 253))
                    .col(string_len("country", 2))
                    .col(string_len("cloud", 32))
                    .col(integer("version"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    // The registry row must be this tenant's own: one (tenant id, domain) pair.
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_customer_tenant")
                            .from_tbl("customer")
                            .from_col("tenant_id")
                            .from_col("domain")
                            .to_tbl("tenant")
                            .to_col("tenant_id")
                            .to_col("domain")
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("relationship")
                    .col(uuid("id").primary_key())
                    .col(string_len("kind", 32))
                    .col(string_len("status", 32))
                    .col(uuid("partner_id"))
                    .col(uuid_null("customer_id"))
                    .col(uuid_null("indirect_provider_id"))
                    .col(string_len_null("customer_domain", 253))
                    .col(string_len("roles", 128))
                    .col(integer_null("duration_days"))
                    .col(text_null("message"))
                    .col(timestamp_with_time_zone("requested_at"))
                    .col(timestamp_with_time_zone_null("responded_at"))
                    .col(timestamp_with_time_zone_null("terminated_at"))
                    .col(timestamp_with_time_zone_null("expires_at"))
                    .col(integer("version"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .foreign_key(&mut fk("relationship", "partner_id", "partner", "id"))
                    .foreign_key(&mut fk("relationship", "customer_id", "customer", "id"))
                    .foreign_key(&mut fk("relationship", "indirect_provider_id", "partner", "id"))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("subscription")
                    .col(uuid("id").primary_key())
                    .col(uuid("customer_id"))
                    .col(string_len("offer_id", 128))
                    .col(string("offer_name"))
                    .col(string_len("billing_model", 32))
                    .col(string_len("channel", 32))
                    .col(uuid_null("partner_id"))
                    .col(uuid_null("reseller_id"))
                    .col(integer_null("quantity"))
                    .col(string_len("status", 32))
                    .col(integer_null("term_months"))
                    .col(timestamp_with_time_zone("term_start"))
                    .col(timestamp_with_time_zone_null("term_end"))
                    .col(boolean("auto_renew"))
                    .col(timestamp_with_time_zone_null("cancellation_allowed_until"))
                    .col(string_len_null("external_reference", 128))
                    .col(uuid_null("migrated_from_id"))
                    .col(integer("version"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .col(timestamp_with_time_zone_null("cancelled_at"))
                    .foreign_key(&mut fk("subscription", "customer_id", "customer", "id"))
                    .foreign_key(&mut fk("subscription", "partner_id", "partner", "id"))
                    .foreign_key(&mut fk("subscription", "reseller_id", "partner", "id"))
                    .foreign_key(&mut fk("subscription", "migrated_from_id", "subscription", "id"))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("subscription_transfer")
                    .col(uuid("id").primary_key())
                    .col(uuid("subscription_id"))
                    .col(uuid("customer_id"))
                    .col(uuid("source_partner_id"))
                    .col(uuid("target_partner_id"))
                    .col(string_len("status", 32))
                    .col(timestamp_with_time_zone("requested_at"))
                    .col(timestamp_with_time_zone_null("responded_at"))
                    .col(timestamp_with_time_zone("expires_at"))
                    .col(integer("version"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .foreign_key(&mut fk("subscription_transfer", "subscription_id", "subscription", "id"))
                    .foreign_key(&mut fk("subscription_transfer", "customer_id", "customer", "id"))
                    .foreign_key(&mut fk("subscription_transfer", "source_partner_id", "partner", "id"))
                    .foreign_key(&mut fk("subscription_transfer", "target_partner_id", "partner", "id"))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("audit_event")
                    .col(uuid("id").primary_key())
                    .col(timestamp_with_time_zone("occurred_at"))
                    .col(uuid("actor_tenant_id"))
                    .col(string_len("actor_subject", 255))
                    .col(string_len("action", 64))
                    .col(string_len("target_type", 64))
                    .col(uuid("target_id"))
                    .col(uuid_null("partner_id"))
                    .col(uuid_null("related_partner_id"))
                    .col(uuid_null("customer_id"))
                    .col(json("details"))
                    .col(string_len("request_id", 128))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("idempotency_key")
                    .col(uuid("tenant_id"))
                    .col(string_len("key", 255))
                    .col(string_len("operation", 64))
                    .col(string_len("request_hash", 64))
                    .col(json("response"))
                    .col(timestamp_with_time_zone("created_at"))
                    .primary_key(Index::create().col("tenant_id").col("key"))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("outbox_event")
                    .col(big_pk_auto("id"))
                    .col(string_len("event_type", 64))
                    .col(timestamp_with_time_zone("occurred_at"))
                    .col(string_len("node_type", 64))
                    .col(uuid("node_id"))
                    .col(uuid_null("partner_id"))
                    .col(uuid_null("related_partner_id"))
                    .col(uuid_null("customer_id"))
                    .col(json("payload"))
                    .to_owned(),
            )
            .await?;

        // Access paths of the visibility rule and of the lifecycle runner.
        let indexes: &[(&str, &str, &[&str])] = &[
            ("ix_relationship_partner", "relationship", &["partner_id", "kind", "status"]),
            ("ix_relationship_provider", "relationship", &["indirect_provider_id", "kind", "status"]),
            ("ix_relationship_customer", "relationship", &["customer_id", "kind", "status"]),
            ("ix_relationship_expiry", "relationship", &["status", "expires_at"]),
            ("ix_subscription_customer", "subscription", &["customer_id", "id"]),
            ("ix_subscription_partner", "subscription", &["partner_id"]),
            ("ix_subscription_reseller", "subscription", &["reseller_id"]),
            ("ix_subscription_term_end", "subscription", &["status", "term_end"]),
            ("ix_customer_company_name", "customer", &["company_name", "id"]),
            ("ix_customer_created_at", "customer", &["created_at", "id"]),
            ("ix_transfer_source", "subscription_transfer", &["source_partner_id"]),
            ("ix_transfer_target", "subscription_transfer", &["target_partner_id"]),
            ("ix_transfer_customer", "subscription_transfer", &["customer_id"]),
            ("ix_transfer_expiry", "subscription_transfer", &["status", "expires_at"]),
            ("ix_audit_actor", "audit_event", &["actor_tenant_id"]),
            ("ix_audit_partner", "audit_event", &["partner_id"]),
            ("ix_audit_related_partner", "audit_event", &["related_partner_id"]),
            ("ix_audit_customer", "audit_event", &["customer_id"]),
            ("ix_audit_occurred_at", "audit_event", &["occurred_at"]),
            ("ix_idempotency_created_at", "idempotency_key", &["created_at"]),
        ];
        for (name, table, cols) in indexes {
            let mut index = Index::create();
            index.name(*name).table(*table);
            for col in *cols {
                index.col(*col);
            }
            manager.create_index(index).await?;
        }
        let db = manager.get_connection();
        for sql in RAW_INDEXES {
            db.execute_unprepared(sql).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "outbox_event",
            "idempotency_key",
            "audit_event",
            "subscription_transfer",
            "subscription",
            "relationship",
            "customer",
            "partner",
            "tenant",
        ] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
