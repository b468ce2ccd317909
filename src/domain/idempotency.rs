//! R14, idempotency: a unique row per (tenant, key) holds the request's canonical hash and what the
//! first call made. The row is claimed in the mutation's own transaction, so a failed call leaves
//! no record, and a concurrent repeat waits on the row (PostgreSQL) or the write lock (SQLite) and
//! then replays the first result.

use chrono::{DateTime, Duration, Utc};
use entity::idempotency_key;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set, TryInsertResult};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::inputs::IdempotencyKey;
use crate::error::{ApiError, ApiResult, Code};

/// How long keys are kept (at least 24 hours, R14 in `docs/rules.md`).
pub const RETENTION: Duration = Duration::hours(48);

/// The SHA-256 of an operation and its canonical input (JSON with sorted keys).
pub fn request_hash<T: Serialize>(operation: &str, input: &T) -> String {
    let canonical = serde_json::to_value(input).map(|v| v.to_string()).unwrap_or_default();
    let digest = Sha256::digest(format!("{operation}\n{canonical}").as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// What claiming a key found.
pub enum Claim {
    /// The key is new: do the work, then [`complete`] it.
    Fresh,
    /// The same request ran before: answer with what it made.
    Replay(Value),
}

/// Claims `key` for this tenant and operation inside the transaction.
pub async fn claim<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    key: &IdempotencyKey,
    operation: &str,
    hash: &str,
    now: DateTime<Utc>,
) -> ApiResult<Claim> {
    let row = idempotency_key::ActiveModel {
        tenant_id: Set(tenant_id),
        key: Set(key.as_str().to_owned()),
        operation: Set(operation.to_owned()),
        request_hash: Set(hash.to_owned()),
        response: Set(Value::Null),
        created_at: Set(now),
    };
    let inserted = idempotency_key::Entity::insert(row)
        .on_conflict_do_nothing_on([idempotency_key::Column::TenantId, idempotency_key::Column::Key])
        .exec_without_returning(db)
        .await?;
    if matches!(inserted, TryInsertResult::Inserted(n) if n > 0) {
        return Ok(Claim::Fresh);
    }
    let existing = idempotency_key::Entity::find()
        .filter(idempotency_key::Column::TenantId.eq(tenant_id))
        .filter(idempotency_key::Column::Key.eq(key.as_str()))
        .one(db)
        .await?
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("idempotency key vanished while claimed")))?;
    if existing.operation != operation || existing.request_hash != hash {
        return Err(ApiError::new(
            Code::IdempotencyKeyReused,
            format!(
                "idempotencyKey `{}` was already used by this tenant for a different request ({}); use a new key",
                key.as_str(),
                existing.operation
            ),
        ));
    }
    Ok(Claim::Replay(existing.response))
}

/// Records what the first call made.
pub async fn complete<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    key: &IdempotencyKey,
    response: Value,
) -> ApiResult<()> {
    idempotency_key::ActiveModel {
        tenant_id: Set(tenant_id),
        key: Set(key.as_str().to_owned()),
        response: Set(response),
        ..Default::default()
    }
    .update(db)
    .await?;
    Ok(())
}

/// Forgets keys older than the retention (called by the lifecycle runner).
pub async fn purge<C: ConnectionTrait>(db: &C, now: DateTime<Utc>) -> ApiResult<u64> {
    let result = idempotency_key::Entity::delete_many()
        .filter(idempotency_key::Column::CreatedAt.lt(now - RETENTION))
        .exec(db)
        .await?;
    Ok(result.rows_affected)
}
