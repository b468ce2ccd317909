//! `registerWebhook`, `deleteWebhook`.

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};

use crate::domain::webhooks::{self, RegisterWebhook};
use crate::graphql::context::RequestCtx;
use crate::graphql::ids::{self, NodeType};
use crate::graphql::types::event::EventType;
use crate::graphql::types::webhook::Webhook;

/// Registers an endpoint for the caller's events.
#[derive(InputObject)]
pub struct RegisterWebhookInput {
    /// Where to POST events: `https`, on a public address, at most 2048 characters.
    pub url: String,
    /// The event types to send (at least one).
    pub event_types: Vec<EventType>,
}

/// The webhook a `registerWebhook` made, and its signing secret.
#[derive(SimpleObject)]
pub struct RegisterWebhookPayload {
    /// The new webhook.
    pub webhook: Webhook,
    /// The secret that signs its deliveries (`Partnerhub-Signature`). Shown only here, once: store it.
    pub secret: String,
}

/// Deletes one of the caller's webhooks.
#[derive(InputObject)]
pub struct DeleteWebhookInput {
    /// The webhook's id.
    pub id: ID,
}

/// The webhook a `deleteWebhook` removed.
#[derive(SimpleObject)]
pub struct DeleteWebhookPayload {
    /// The id of the deleted webhook.
    pub deleted_webhook_id: ID,
}

#[derive(Default)]
pub struct WebhookMutations;

/// Webhooks.
#[Object]
impl WebhookMutations {
    /// Registers a webhook for the caller's tenant (a partner's `admin_agent`, a customer's
    /// `global_admin`, the platform's `platform_admin`). It receives the events of the chosen types
    /// that its tenant may see, signed with the returned secret.
    async fn register_webhook(
        &self,
        ctx: &Context<'_>,
        input: RegisterWebhookInput,
    ) -> async_graphql::Result<RegisterWebhookPayload> {
        let rc = RequestCtx::of(ctx)?;
        let actor = rc.actor()?;
        let types: Vec<&'static str> = input.event_types.iter().map(|t| t.as_str()).collect();
        let parsed = RegisterWebhook::parse(&input.url, &types, &rc.webhooks)?;
        let registered = webhooks::register(&rc.session()?.writer, &actor, &rc.webhooks, parsed).await?;
        Ok(RegisterWebhookPayload { webhook: Webhook(registered.webhook), secret: registered.secret })
    }

    /// Deletes one of the caller's webhooks (same roles as `registerWebhook`); its pending
    /// deliveries are given up. Another tenant's webhook is `NOT_FOUND`.
    async fn delete_webhook(
        &self,
        ctx: &Context<'_>,
        input: DeleteWebhookInput,
    ) -> async_graphql::Result<DeleteWebhookPayload> {
        let rc = RequestCtx::of(ctx)?;
        let actor = rc.actor()?;
        let id = ids::decode("id", NodeType::Webhook, &input.id)?;
        let deleted = webhooks::delete(&rc.session()?.writer, &actor, id).await?;
        Ok(DeleteWebhookPayload { deleted_webhook_id: ids::encode(NodeType::Webhook, deleted.id) })
    }
}
