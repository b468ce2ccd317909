//! Domain events leaving the process: the outbox (written by every mutation in its own transaction,
//! `domain::audit::record`) is the truth; the WebSocket `events` stream and webhooks read it.
//!
//! Whatever the transport, an event reaches a tenant only through [`visible_to`]: R1 evaluated when
//! the event is delivered, not when it was written (a partner that lost its link stops hearing about
//! that customer at once).

use std::collections::{HashMap, HashSet};

use entity::outbox_event;
use uuid::Uuid;

use crate::access::Reader;
use crate::error::ApiResult;

pub mod webhooks;

/// The events among `events` that `reader`'s scope may see now: those whose node (`node_type`,
/// `node_id`) it can read. One query per node type present, whatever the number of events.
pub async fn visible_to(reader: &Reader, events: &[outbox_event::Model]) -> ApiResult<Vec<outbox_event::Model>> {
    let mut by_type: HashMap<&str, Vec<Uuid>> = HashMap::new();
    for event in events {
        by_type.entry(event.node_type.as_str()).or_default().push(event.node_id);
    }
    let mut visible: HashMap<&str, HashSet<Uuid>> = HashMap::new();
    for (node_type, ids) in by_type {
        visible.insert(node_type, reader.visible_nodes(node_type, &ids).await?);
    }
    Ok(events
        .iter()
        .filter(|e| visible.get(e.node_type.as_str()).is_some_and(|ids| ids.contains(&e.node_id)))
        .cloned()
        .collect())
}
