//! Migrations run down and up again on both databases, and the schema keeps its integrity rules.

use entity::enums::{Cloud, PartnerType};
use migration::{Migrator, MigratorTrait};
use uuid::Uuid;

use crate::common::TestApp;

#[tokio::test]
async fn migrations_roll_back_and_reapply() {
    let app = TestApp::new().await;
    assert!(Migrator::get_pending_migrations(&app.db).await.unwrap().is_empty());
    Migrator::down(&app.db, None).await.unwrap();
    assert_eq!(Migrator::get_applied_migrations(&app.db).await.unwrap().len(), 0);
    Migrator::up(&app.db, None).await.unwrap();
    app.seed().partner(Uuid::new_v4(), "P", "p.example", PartnerType::DirectBill, Cloud::Public).await.unwrap();
}

#[tokio::test]
async fn r2_domains_and_tenant_ids_are_unique_across_partners_and_customers_in_the_database() {
    let app = TestApp::new().await;
    let seed = app.seed();
    let tid = Uuid::new_v4();
    seed.partner(tid, "P", "shared.example", PartnerType::DirectBill, Cloud::Public).await.unwrap();
    // The same domain (any case) as a customer, or the same tenant id, is refused by the database.
    assert!(seed.customer(Uuid::new_v4(), "C", "SHARED.example", "US", Cloud::Public).await.is_err());
    assert!(seed.customer(tid, "C", "other.example", "US", Cloud::Public).await.is_err());
    assert!(seed.partner(Uuid::new_v4(), "Q", "shared.example", PartnerType::DirectBill, Cloud::Public).await.is_err());
}
