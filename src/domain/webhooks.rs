//! Webhooks: registering and deleting endpoints, and reading one's own endpoints and deliveries.
//!
//! A webhook belongs to the tenant that registered it: a partner's `admin_agent`, a customer's
//! `global_admin` or the platform's `platform_admin`. Nobody else sees or deletes it (another
//! tenant's id answers `NOT_FOUND`, as an unknown one does). Events reach it only through
//! `events::visible_to` with its owner's scope (R1), checked at fan-out and again at send time.

use chrono::{DateTime, Utc};
use entity::{webhook, webhook_delivery};
use futures_util::FutureExt;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, EntityTrait, IntoActiveModel, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use serde_json::json;
use uuid::Uuid;

use super::audit::{self, By, Change};
use super::{Actor, Writer};
use crate::access::{Cursor, Page, PageArgs, TotalCount};
use crate::auth::{Role, Tenant};
use crate::config::WebhookSettings;
use crate::error::{ApiError, ApiResult, Code};
use crate::events::webhooks::target;

/// Roles that manage a tenant's webhooks.
pub const ROLES: [Role; 3] = [Role::AdminAgent, Role::GlobalAdmin, Role::PlatformAdmin];

/// Delivery states, as stored and as GraphQL shows them.
pub mod status {
    pub const PENDING: &str = "PENDING";
    pub const DELIVERED: &str = "DELIVERED";
    pub const FAILED: &str = "FAILED";
}

/// The owner columns of a webhook the caller registers: (kind, partner, customer). `FORBIDDEN`
/// unless the caller holds its tenant kind's managing role.
fn owner(actor: &Actor) -> ApiResult<(&'static str, Option<Uuid>, Option<Uuid>)> {
    match &actor.principal.tenant {
        Tenant::Partner(p) => {
            actor.require_role(&[Role::AdminAgent])?;
            Ok(("PARTNER", Some(p.id), None))
        }
        Tenant::Customer(c) => {
            actor.require_role(&[Role::GlobalAdmin])?;
            Ok(("CUSTOMER", None, Some(c.id)))
        }
        Tenant::Platform => {
            actor.require_role(&[Role::PlatformAdmin])?;
            Ok(("PLATFORM", None, None))
        }
    }
}

/// `registerWebhook` input, parsed.
#[derive(Debug, Clone)]
pub struct RegisterWebhook {
    pub url: String,
    /// Event type names, without duplicates, in the order given.
    pub event_types: Vec<&'static str>,
}

impl RegisterWebhook {
    pub fn parse(url: &str, event_types: &[&'static str], settings: &WebhookSettings) -> ApiResult<Self> {
        if event_types.is_empty() {
            return Err(ApiError::bad_input("eventTypes", "name at least one event type"));
        }
        let mut types: Vec<&'static str> = Vec::new();
        for t in event_types {
            if !types.contains(t) {
                types.push(t);
            }
        }
        let target = target::parse("url", url, settings.allow_private)?;
        Ok(Self { url: target.url.to_string(), event_types: types })
    }
}

/// A webhook just registered, with its secret (shown this once).
#[derive(Debug, Clone)]
pub struct Registered {
    pub webhook: webhook::Model,
    pub secret: String,
}

/// A new signing secret: `whsec_` and 32 random bytes in hex.
fn new_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    let mut out = String::from("whsec_");
    for b in bytes {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Registers a webhook (R15: audited in its transaction). The URL is checked again after DNS
/// resolution; a tenant holds at most `settings.max_per_tenant` live webhooks (`CONFLICT`).
pub async fn register(
    writer: &Writer,
    actor: &Actor,
    settings: &WebhookSettings,
    input: RegisterWebhook,
) -> ApiResult<Registered> {
    let (kind, partner_id, customer_id) = owner(actor)?;
    target::check("url", &input.url, settings.allow_private).await?;
    let tenant_id = actor.principal.tenant_id;
    let secret = new_secret();
    let model = webhook::Model {
        id: Uuid::now_v7(),
        tenant_id,
        owner_kind: kind.to_owned(),
        partner_id,
        customer_id,
        url: input.url,
        event_types: json!(input.event_types),
        secret: secret.clone(),
        created_at: actor.now,
        created_by: actor.principal.subject.clone(),
        deleted_at: None,
    };
    let max = settings.max_per_tenant;
    let by = By::from(actor);
    let webhook = writer
        .write(move |txn| {
            async move {
                let live = webhook::Entity::find()
                    .filter(webhook::Column::TenantId.eq(tenant_id))
                    .filter(webhook::Column::DeletedAt.is_null())
                    .count(txn)
                    .await?;
                if live >= max {
                    return Err(ApiError::new(
                        Code::Conflict,
                        format!("a tenant holds at most {max} webhooks: delete one first"),
                    ));
                }
                let created = model.into_active_model().insert(txn).await?;
                let change = Change::new("webhook.register", "WEBHOOK_REGISTERED", "Webhook", created.id)
                    .partner(partner_id)
                    .customer(customer_id)
                    .diff(None, &created);
                audit::record(txn, &by, change).await?;
                Ok(created)
            }
            .boxed()
        })
        .await?;
    Ok(Registered { webhook, secret })
}

/// Deletes one of the caller's webhooks; its pending deliveries become `FAILED` ("webhook
/// deleted"). Another tenant's webhook, a deleted one or an unknown id: `NOT_FOUND`.
pub async fn delete(writer: &Writer, actor: &Actor, id: Uuid) -> ApiResult<webhook::Model> {
    owner(actor)?;
    let tenant_id = actor.principal.tenant_id;
    let (by, now) = (By::from(actor), actor.now);
    writer
        .write(move |txn| {
            async move {
                let stored = webhook::Entity::find_by_id(id)
                    .filter(webhook::Column::TenantId.eq(tenant_id))
                    .filter(webhook::Column::DeletedAt.is_null())
                    .one(txn)
                    .await?
                    .ok_or_else(|| ApiError::not_found("webhook"))?;
                let mut active = stored.clone().into_active_model();
                active.deleted_at = Set(Some(now));
                let deleted = active.update(txn).await?;
                webhook_delivery::Entity::update_many()
                    .col_expr(webhook_delivery::Column::Status, status::FAILED.into())
                    .col_expr(webhook_delivery::Column::LastError, "webhook deleted".into())
                    .col_expr(webhook_delivery::Column::UpdatedAt, now.into())
                    .col_expr(webhook_delivery::Column::LeaseToken, Option::<Uuid>::None.into())
                    .col_expr(webhook_delivery::Column::LeaseUntil, Option::<DateTime<Utc>>::None.into())
                    .filter(webhook_delivery::Column::WebhookId.eq(id))
                    .filter(webhook_delivery::Column::Status.eq(status::PENDING))
                    .exec(txn)
                    .await?;
                let change = Change::new("webhook.delete", "WEBHOOK_DELETED", "Webhook", id)
                    .partner(stored.partner_id)
                    .customer(stored.customer_id)
                    .diff(Some(&stored), &deleted);
                audit::record(txn, &by, change).await?;
                Ok(deleted)
            }
            .boxed()
        })
        .await
}

/// The caller's live webhooks, oldest first.
pub async fn page(writer: &Writer, actor: &Actor, args: &PageArgs) -> ApiResult<Page<webhook::Model>> {
    owner(actor)?;
    let db = writer.connection().clone();
    let base = webhook::Entity::find()
        .filter(webhook::Column::TenantId.eq(actor.principal.tenant_id))
        .filter(webhook::Column::DeletedAt.is_null());
    let total = count_of(&db, &base);
    let mut query = base;
    if let Some(after) = &args.after {
        query = query.filter(webhook::Column::Id.gt(after.id));
    }
    let rows = query.order_by_asc(webhook::Column::Id).limit(args.first + 1).all(&db).await?;
    Ok(into_page(rows, args.first, total, |w| w.id))
}

/// Which deliveries to list.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    pub webhook_id: Option<Uuid>,
    pub status: Option<&'static str>,
}

/// The deliveries of the caller's webhooks (deleted ones included), newest first.
pub async fn deliveries(
    writer: &Writer,
    actor: &Actor,
    filter: &DeliveryFilter,
    args: &PageArgs,
) -> ApiResult<Page<webhook_delivery::Model>> {
    owner(actor)?;
    let db = writer.connection().clone();
    let mut cond = Condition::all().add(webhook_delivery::Column::TenantId.eq(actor.principal.tenant_id));
    if let Some(id) = filter.webhook_id {
        cond = cond.add(webhook_delivery::Column::WebhookId.eq(id));
    }
    if let Some(status) = filter.status {
        cond = cond.add(webhook_delivery::Column::Status.eq(status));
    }
    let base = webhook_delivery::Entity::find().filter(cond);
    let total = count_of(&db, &base);
    let mut query = base;
    if let Some(after) = &args.after {
        query = query.filter(webhook_delivery::Column::Id.lt(after.id));
    }
    let rows = query.order_by_desc(webhook_delivery::Column::Id).limit(args.first + 1).all(&db).await?;
    Ok(into_page(rows, args.first, total, |d| d.id))
}

/// The total of `base`, counted only when a client asks for `totalCount`.
fn count_of<E: EntityTrait>(db: &crate::db::RequestConnection, base: &sea_orm::Select<E>) -> TotalCount
where
    E::Model: Send + Sync,
{
    let (db, base) = (db.clone(), base.clone());
    TotalCount::new(move || {
        let (db, base) = (db.clone(), base.clone());
        async move { Ok(base.count(&db).await?) }.boxed()
    })
}

fn into_page<M>(mut rows: Vec<M>, first: u64, total: TotalCount, id: impl Fn(&M) -> Uuid) -> Page<M> {
    let has_next_page = rows.len() as u64 > first;
    rows.truncate(first as usize);
    let items = rows.into_iter().map(|row| (Cursor { key: None, id: id(&row) }, row)).collect();
    Page { items, has_next_page, total }
}
