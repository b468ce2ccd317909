//! Per-request data: who is calling, their scoped reader and loaders. Resolvers take everything they
//! read from here, and there is no unscoped database handle in it.

use async_graphql::Context;
use chrono::{DateTime, Duration, Utc};

use crate::access::{Reader, Scope};
use crate::auth::Principal;
use crate::config::Limits;
use crate::db::RequestConnection;
use crate::domain::lifecycle;
use crate::error::{ApiError, ApiResult};
use crate::graphql::loaders::Loaders;

/// The signed-in part of a request.
pub struct Session {
    pub principal: Principal,
    pub reader: Reader,
    pub loaders: std::sync::Arc<Loaders>,
    /// The write side: every mutation goes through the domain layer with it.
    pub writer: crate::domain::Writer,
}

impl Session {
    /// Prefetches what a page's rows name (see [`crate::graphql::loaders::RefLoaders::prefetch`]).
    pub async fn prefetch<M: crate::graphql::loaders::References>(
        &self,
        page: &crate::access::Page<M>,
        refs: crate::graphql::loaders::Refs,
    ) -> Result<(), async_graphql::Error> {
        self.loaders.refs().prefetch(&self.reader, page.items.iter().map(|(_, row)| row), refs).await
    }

    /// Remembers the customers of a page, so references to them cost no statement.
    pub async fn remember_customers(&self, page: &crate::access::Page<entity::customer::Model>) {
        self.loaders.customers.feed_many(page.items.iter().map(|(_, c)| (c.id, c.clone()))).await;
    }

    /// Remembers the partners of a page, so references to them cost no statement.
    pub async fn remember_partners(&self, page: &crate::access::Page<entity::partner::Model>) {
        self.loaders.partners.feed_many(page.items.iter().map(|(_, p)| (p.id, p.clone()))).await;
    }
}

/// Everything a resolver may use, attached to each request.
pub struct RequestCtx {
    session: Option<Session>,
    pub now: DateTime<Utc>,
    pub limits: Limits,
    pub cancellation_window: Duration,
    pub request_id: String,
    tenants: Option<std::sync::Arc<crate::auth::TenantCache>>,
    /// Webhook registration checks (`registerWebhook`).
    pub webhooks: crate::config::WebhookSettings,
}

impl RequestCtx {
    /// A request context; `principal` is `None` for an anonymous request (introspection only).
    /// `commits`: the instance's event feed, which the writer wakes after each commit.
    pub fn new(
        db: RequestConnection,
        commits: crate::events::feed::Commits,
        principal: Option<Principal>,
        now: DateTime<Utc>,
        limits: Limits,
        cancellation_window: Duration,
        request_id: String,
    ) -> Self {
        let session = principal.map(|principal| {
            let reader = Reader::new(db.clone(), Scope::for_principal(&principal, now));
            let loaders = std::sync::Arc::new(Loaders::new(&reader));
            let writer = crate::domain::Writer::for_principal(db, &principal, commits);
            Session { principal, reader, loaders, writer }
        });
        Self {
            session,
            now,
            limits,
            cancellation_window,
            request_id,
            tenants: None,
            webhooks: crate::config::WebhookSettings::default(),
        }
    }

    /// The server's tenant cache, for mutations that change a tenant row to drop its entry.
    pub fn with_tenant_cache(mut self, tenants: std::sync::Arc<crate::auth::TenantCache>) -> Self {
        self.tenants = Some(tenants);
        self
    }

    /// The instance's kept subscription rows, for the writer's one-statement changes
    /// (`domain::known`).
    pub fn with_known_rows(mut self, known: std::sync::Arc<crate::domain::known::KnownRows>) -> Self {
        if let Some(session) = self.session.as_mut() {
            session.writer = session.writer.clone().with_known_rows(known);
        }
        self
    }

    /// The server's webhook settings (which URLs `registerWebhook` accepts, how many per tenant).
    pub fn with_webhook_settings(mut self, webhooks: crate::config::WebhookSettings) -> Self {
        self.webhooks = webhooks;
        self
    }

    /// Drops a tenant's cached row (after a mutation changed it).
    pub fn forget_tenant(&self, tenant_id: uuid::Uuid) {
        if let Some(tenants) = &self.tenants {
            tenants.invalidate(tenant_id);
        }
    }

    /// The request context of a resolver.
    pub fn of<'a>(ctx: &Context<'a>) -> ApiResult<&'a RequestCtx> {
        ctx.data::<RequestCtx>().map_err(|_| ApiError::internal(anyhow::anyhow!("request context missing")))
    }

    /// The signed-in session; `UNAUTHENTICATED` for anonymous requests.
    pub fn session(&self) -> ApiResult<&Session> {
        self.session.as_ref().ok_or_else(|| {
            ApiError::unauthenticated("sign in: send `Authorization: Bearer <token>` (see `partnerhub token`)")
        })
    }

    /// The caller as the domain layer sees it (for mutations).
    pub fn actor(&self) -> ApiResult<crate::domain::Actor> {
        let session = self.session()?;
        Ok(crate::domain::Actor::new(
            session.principal.clone(),
            self.now,
            self.request_id.clone(),
            self.cancellation_window,
        ))
    }

    /// A subscription as it stands now (renewed or expired by the clock, R16).
    pub fn subscription_now(&self, model: entity::subscription::Model) -> entity::subscription::Model {
        lifecycle::effective_subscription(model, self.now, self.cancellation_window)
    }
}

/// Shorthand used by resolvers: the session of the request.
pub fn session<'a>(ctx: &Context<'a>) -> ApiResult<&'a Session> {
    RequestCtx::of(ctx)?.session()
}
