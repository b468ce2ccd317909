//! Database migrations, shared by SQLite and PostgreSQL.

pub use sea_orm_migration::prelude::*;

mod m20261124_000001_initial;
mod m20261127_000001_webhooks;
mod m20261128_000001_relationship_probe_index;
mod m20261129_000001_relationship_covering_index;

/// All migrations, in order.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261124_000001_initial::Migration),
            Box::new(m20261127_000001_webhooks::Migration),
            Box::new(m20261128_000001_relationship_probe_index::Migration),
            Box::new(m20261129_000001_relationship_covering_index::Migration),
        ]
    }
}
