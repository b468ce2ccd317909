//! `ix_relationship_partner (partner_id, kind, status)` also carries `customer_id` and
//! `expires_at`, and `ix_relationship_provider (indirect_provider_id, kind, status)` carries
//! `customer_id`: every column the list of a partner's customers reads (R1, `Scope::served_by`:
//! the customers of the partner's ACTIVE reseller links, as partner or as indirect provider, and of
//! its ACTIVE unexpired delegated-admin grants). With `served_by` reading each party's links on its
//! own (a `UNION ALL`), PostgreSQL answers both from the indexes alone; the `OR` of the two parties
//! it replaces was a bitmap scan that visited every relationship row.
//!
//! Measured on the team benchmark's data (the page of 50 of a partner's 199 customers, Q1's first
//! statement): 239 relationship pages no longer read, buffer reads 846 → 613, execution time
//! 1.76–1.92 → 0.63–1.09 ms (see the README's performance section). On PostgreSQL the extra
//! columns are `INCLUDE`d; SQLite has no `INCLUDE`, and there they are trailing key columns.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261129_000002_relationship_party_covering_indexes"
    }
}

/// Each index: its name, its key, the columns it comes to carry.
const INDEXES: [(&str, &str, &str); 2] = [
    ("ix_relationship_partner", "partner_id, kind, status", "customer_id, expires_at"),
    ("ix_relationship_provider", "indirect_provider_id, kind, status", "customer_id"),
];

/// Plain SQL sent as one batch, as in the migrations before (on SQLite a `CREATE INDEX` prepared
/// on another connection than the `DROP INDEX` still saw the old index).
async fn recreate(manager: &SchemaManager<'_>, covering: bool) -> Result<(), DbErr> {
    let postgres = manager.get_database_backend() == sea_orm_migration::sea_orm::DbBackend::Postgres;
    let mut sql = String::new();
    for (index, key, carried) in INDEXES {
        let columns = match (covering, postgres) {
            (false, _) => key.to_owned(),
            (true, true) => format!("{key}) INCLUDE ({carried}"),
            (true, false) => format!("{key}, {carried}"),
        };
        sql.push_str(&format!("DROP INDEX IF EXISTS {index}; CREATE INDEX {index} ON relationship ({columns}); "));
    }
    manager.get_connection().execute_unprepared(&sql).await?;
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        recreate(manager, true).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        recreate(manager, false).await
    }
}
