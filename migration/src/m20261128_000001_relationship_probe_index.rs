//! `ix_relationship_customer` becomes `(customer_id, status, kind)` (was `(customer_id, kind,
//! status)`): the visibility probe of a row's own relationships (R1, `access::Scope`) asks
//! `customer_id = ? AND status = 'ACTIVE'` and picks the rule by kind, so both of its equalities
//! are now the index's leading columns.
//!
//! On PostgreSQL the probe used the old index too, with `status` checked inside the index
//! (`kind` lay between). On SQLite, which plans without statistics, the old index offered one
//! usable column against `ix_relationship_expiry (status, …)`'s one, and SQLite took the latter:
//! every ACTIVE relationship of the database was read for every customer or subscription row
//! checked (a page of 50 customers' subscriptions: 3.4 ms with 100 customers, growing with the
//! table). With two leading equalities the probe takes this index on both databases.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261128_000001_relationship_probe_index"
    }
}

const INDEX: &str = "ix_relationship_customer";

/// Plain SQL, the same on both databases, sent as one batch: on SQLite the migration's statements
/// are not bound to one connection, and a `CREATE INDEX` prepared on another connection than the
/// `DROP INDEX` still saw the old index.
async fn recreate(manager: &SchemaManager<'_>, columns: &str) -> Result<(), DbErr> {
    let sql = format!("DROP INDEX IF EXISTS {INDEX}; CREATE INDEX {INDEX} ON relationship ({columns})");
    manager.get_connection().execute_unprepared(&sql).await?;
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        recreate(manager, "customer_id, status, kind").await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        recreate(manager, "customer_id, kind, status").await
    }
}
