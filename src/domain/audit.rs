//! R15: the audit event and the outbox event of every change, written in the change's transaction.

use chrono::{DateTime, Utc};
use entity::{audit_event, outbox_event};
use sea_orm::sea_query::{CommonTableExpression, WithClause};
use sea_orm::{ActiveValue::NotSet, ConnectionTrait, DbBackend, EntityTrait, IntoActiveModel, QueryTrait, Set};
use serde::Serialize;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::Actor;
use crate::error::ApiResult;

/// Who a change is attributed to.
#[derive(Debug, Clone)]
pub struct By {
    pub tenant_id: Uuid,
    pub subject: String,
    pub request_id: String,
    pub at: DateTime<Utc>,
}

impl By {
    /// The lifecycle runner (R16).
    pub fn system(platform_tenant: Uuid, at: DateTime<Utc>) -> Self {
        Self {
            tenant_id: platform_tenant,
            subject: "system".into(),
            request_id: format!("lifecycle-{}", Uuid::now_v7()),
            at,
        }
    }
}

impl From<&Actor> for By {
    fn from(actor: &Actor) -> Self {
        Self {
            tenant_id: actor.principal.tenant_id,
            subject: actor.principal.subject.clone(),
            request_id: actor.request_id.clone(),
            at: actor.now,
        }
    }
}

/// One committed change, as the audit trail and the event stream see it.
#[derive(Debug, Clone)]
pub struct Change {
    /// Audit action, e.g. `subscription.create`.
    pub action: &'static str,
    /// Domain event type, e.g. `SUBSCRIPTION_CREATED`.
    pub event: &'static str,
    /// GraphQL type of the changed object, e.g. `Subscription`.
    pub target_type: &'static str,
    pub target_id: Uuid,
    pub partner_id: Option<Uuid>,
    pub related_partner_id: Option<Uuid>,
    pub customer_id: Option<Uuid>,
    /// The changed fields, `{ field: { before, after } }`.
    pub details: Value,
}

impl Change {
    pub fn new(action: &'static str, event: &'static str, target_type: &'static str, target_id: Uuid) -> Self {
        Self {
            action,
            event,
            target_type,
            target_id,
            partner_id: None,
            related_partner_id: None,
            customer_id: None,
            details: json!({}),
        }
    }

    pub fn partner(mut self, id: impl Into<Option<Uuid>>) -> Self {
        self.partner_id = id.into();
        self
    }

    pub fn related_partner(mut self, id: impl Into<Option<Uuid>>) -> Self {
        self.related_partner_id = id.into();
        self
    }

    pub fn customer(mut self, id: impl Into<Option<Uuid>>) -> Self {
        self.customer_id = id.into();
        self
    }

    /// Details from the row before and after the change (only the fields that changed).
    pub fn diff<T: Serialize>(mut self, before: Option<&T>, after: &T) -> Self {
        self.details = diff(before, after);
        self
    }
}

/// `{ field: { before, after } }` for every field that differs (all fields when there is no before).
pub fn diff<T: Serialize>(before: Option<&T>, after: &T) -> Value {
    let after = serde_json::to_value(after).unwrap_or(Value::Null);
    let before = before.and_then(|b| serde_json::to_value(b).ok()).unwrap_or(Value::Null);
    let mut out = Map::new();
    if let Value::Object(fields) = &after {
        for (name, value) in fields {
            let old = before.get(name).cloned().unwrap_or(Value::Null);
            if &old != value && !matches!(name.as_str(), "updated_at" | "version") {
                out.insert(name.clone(), json!({ "before": old, "after": value }));
            }
        }
    }
    Value::Object(out)
}

/// The audit row and the outbox row of `change`.
pub fn rows(by: &By, change: Change) -> (audit_event::ActiveModel, outbox_event::ActiveModel) {
    let audit = audit_event::Model {
        id: Uuid::now_v7(),
        occurred_at: by.at,
        actor_tenant_id: by.tenant_id,
        actor_subject: by.subject.clone(),
        action: change.action.into(),
        target_type: change.target_type.into(),
        target_id: change.target_id,
        partner_id: change.partner_id,
        related_partner_id: change.related_partner_id,
        customer_id: change.customer_id,
        details: change.details.clone(),
        request_id: by.request_id.clone(),
    }
    .into_active_model();
    let outbox = outbox_event::ActiveModel {
        id: NotSet,
        event_type: Set(change.event.into()),
        occurred_at: Set(by.at),
        node_type: Set(change.target_type.into()),
        node_id: Set(change.target_id),
        partner_id: Set(change.partner_id),
        related_partner_id: Set(change.related_partner_id),
        customer_id: Set(change.customer_id),
        payload: Set(json!({ "action": change.action, "details": change.details, "requestId": by.request_id })),
    };
    (audit, outbox)
}

/// Writes the audit event and the outbox event of `change`: on PostgreSQL in one statement (the
/// audit insert as a data-modifying CTE of the outbox insert: one round trip instead of two); on
/// SQLite, which has no data-modifying CTEs and no network round trip to save, as two.
pub async fn record<C: ConnectionTrait>(db: &C, by: &By, change: Change) -> ApiResult<()> {
    let (audit, outbox) = rows(by, change);
    let backend = db.get_database_backend();
    if backend == DbBackend::Postgres {
        let mut cte = CommonTableExpression::new();
        cte.query(audit_event::Entity::insert(audit).into_query()).table_name("ph_audit");
        let statement = outbox_event::Entity::insert(outbox).into_query().with(WithClause::new().cte(cte).to_owned());
        db.execute(&statement).await?;
    } else {
        audit_event::Entity::insert(audit).exec_without_returning(db).await?;
        outbox_event::Entity::insert(outbox).exec_without_returning(db).await?;
    }
    Ok(())
}
