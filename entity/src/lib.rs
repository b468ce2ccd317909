//! SeaORM entities: one module per table, no GraphQL derives (the API has its own types).
//!
//! Enumerations are stored as upper-case text so that the same migrations run on SQLite and PostgreSQL.

pub mod audit_event;
pub mod customer;
pub mod enums;
pub mod idempotency_key;
pub mod outbox_event;
pub mod outbox_fanout;
pub mod partner;
pub mod relationship;
pub mod subscription;
pub mod subscription_transfer;
pub mod tenant;
pub mod webhook;
pub mod webhook_delivery;
