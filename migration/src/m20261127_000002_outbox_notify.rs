//! PostgreSQL only: every row inserted into `outbox_event` sends `NOTIFY partnerhub_outbox` (its id
//! as the payload), delivered when the inserting transaction commits, so the event feed of every
//! instance (`LISTEN partnerhub_outbox`) wakes at once. The outbox stays the truth: a lost
//! notification only delays an event until the feed's next poll. On SQLite this migration does
//! nothing (a single process; its feed is woken in process).

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261127_000002_outbox_notify"
    }
}

const UP: &[&str] = &[
    r"CREATE OR REPLACE FUNCTION partnerhub_outbox_notify() RETURNS trigger AS $$
BEGIN
  PERFORM pg_notify('partnerhub_outbox', NEW.id::text);
  RETURN NULL;
END;
$$ LANGUAGE plpgsql",
    "CREATE TRIGGER outbox_event_notify AFTER INSERT ON outbox_event FOR EACH ROW EXECUTE FUNCTION partnerhub_outbox_notify()",
];

const DOWN: &[&str] = &[
    "DROP TRIGGER IF EXISTS outbox_event_notify ON outbox_event",
    "DROP FUNCTION IF EXISTS partnerhub_outbox_notify()",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        for statement in UP {
            manager.get_connection().execute_unprepared(statement).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        for statement in DOWN {
            manager.get_connection().execute_unprepared(statement).await?;
        }
        Ok(())
    }
}
