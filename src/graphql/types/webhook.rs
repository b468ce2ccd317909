//! `Webhook` and `WebhookDelivery`: a tenant's endpoints and what was sent to them.

use async_graphql::{Enum, ID, InputObject, Object};
use chrono::{DateTime, Utc};
use entity::{webhook, webhook_delivery};

use super::event::EventType;
use crate::domain::webhooks::status;
use crate::graphql::connection::connection;
use crate::graphql::ids::{self, NodeType};

/// An endpoint that receives the caller's events as signed HTTP POSTs (`docs/webhooks.md`).
pub struct Webhook(pub webhook::Model);

connection!(
    WebhookConnection,
    WebhookEdge,
    Webhook,
    "A page of the caller's webhooks, oldest first.",
    "A webhook and its cursor."
);

/// An endpoint that receives the caller's events as signed HTTP POSTs (`docs/webhooks.md`).
#[Object]
impl Webhook {
    /// The webhook's id (pass it to `deleteWebhook` and `webhookDeliveries(filter: {webhookId})`).
    async fn id(&self) -> ID {
        ids::encode(NodeType::Webhook, self.0.id)
    }

    /// Where events are POSTed.
    async fn url(&self) -> &str {
        &self.0.url
    }

    /// The event types sent to it.
    async fn event_types(&self) -> Vec<EventType> {
        crate::events::webhooks::wanted_types(&self.0).iter().filter_map(|t| EventType::parse(t)).collect()
    }

    /// When it was registered; only events that occur after this are sent.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// The JWT `sub` of whoever registered it.
    async fn created_by(&self) -> &str {
        &self.0.created_by
    }
}

/// Where a delivery stands.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum WebhookDeliveryStatus {
    /// Not yet delivered: waiting for its first attempt or for a retry.
    Pending,
    /// The endpoint answered with a 2xx status.
    Delivered,
    /// Given up: the retry deadline passed, the webhook was deleted, or the event is no longer
    /// visible to the webhook's owner (see `lastError`).
    Failed,
}

impl WebhookDeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookDeliveryStatus::Pending => status::PENDING,
            WebhookDeliveryStatus::Delivered => status::DELIVERED,
            WebhookDeliveryStatus::Failed => status::FAILED,
        }
    }

    fn parse(text: &str) -> Self {
        match text {
            status::DELIVERED => WebhookDeliveryStatus::Delivered,
            status::FAILED => WebhookDeliveryStatus::Failed,
            _ => WebhookDeliveryStatus::Pending,
        }
    }
}

/// One event sent (or to be sent) to one webhook.
pub struct WebhookDelivery(pub webhook_delivery::Model);

connection!(
    WebhookDeliveryConnection,
    WebhookDeliveryEdge,
    WebhookDelivery,
    "A page of deliveries to the caller's webhooks, newest first.",
    "A webhook delivery and its cursor."
);

/// One event sent (or to be sent) to one webhook.
#[Object]
impl WebhookDelivery {
    /// The delivery's id.
    async fn id(&self) -> ID {
        ids::encode(NodeType::WebhookDelivery, self.0.id)
    }

    /// The webhook it goes to.
    async fn webhook_id(&self) -> ID {
        ids::encode(NodeType::Webhook, self.0.webhook_id)
    }

    /// The event's stable id (`evt_…`), the `id` of the body and the `Partnerhub-Event-Id` header.
    async fn event_id(&self) -> ID {
        ID(format!("evt_{}", self.0.outbox_event_id))
    }

    /// The event's type; `null` only for a type this server version does not know.
    async fn event_type(&self) -> Option<EventType> {
        EventType::parse(&self.0.event_type)
    }

    /// Where the delivery stands.
    async fn status(&self) -> WebhookDeliveryStatus {
        WebhookDeliveryStatus::parse(&self.0.status)
    }

    /// Attempts made so far.
    async fn attempts(&self) -> i32 {
        self.0.attempts
    }

    /// Why the last attempt failed (or why the delivery was given up): an error, or the HTTP
    /// status and the first bytes of the response.
    async fn last_error(&self) -> Option<&str> {
        self.0.last_error.as_deref()
    }

    /// The HTTP status of the last response, if one came.
    async fn last_status_code(&self) -> Option<i32> {
        self.0.last_status_code
    }

    /// When the next attempt is due (`PENDING` only).
    async fn next_attempt_at(&self) -> Option<DateTime<Utc>> {
        (self.0.status == status::PENDING).then_some(self.0.next_attempt_at)
    }

    /// When the delivery was created (the event fanned out to this webhook).
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// When the endpoint accepted it (`DELIVERED` only).
    async fn delivered_at(&self) -> Option<DateTime<Utc>> {
        self.0.delivered_at
    }
}

/// Which deliveries to list.
#[derive(InputObject, Default)]
pub struct WebhookDeliveryFilter {
    /// Only the deliveries of this webhook.
    pub webhook_id: Option<ID>,
    /// Only the deliveries in this status.
    pub status: Option<WebhookDeliveryStatus>,
}
