//! Domain events leaving the process: the outbox (written by every mutation in its own transaction,
//! `domain::audit::record`) is the truth; the WebSocket `events` stream and webhooks read it.
//!
//! Whatever the transport, an event reaches a tenant only through [`visible_to`]: R1 evaluated when
//! the event is delivered, not when it was written (a partner that lost its link stops hearing about
//! that customer at once).

pub mod feed;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use entity::outbox_event;
use uuid::Uuid;

use futures_util::Stream;
use tokio::sync::broadcast::error::RecvError;

use crate::access::{Reader, Scope};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, Code};

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

/// Request data of a subscription over WebSocket: fired once its stream listens to the feed, so
/// that the socket reads the client's next message only then (a `subscribe` followed by anything
/// on the same socket: every event committed after that answer is delivered).
#[derive(Default)]
pub struct Listening(std::sync::Mutex<Option<tokio::sync::oneshot::Sender<()>>>);

impl Listening {
    pub fn new(sender: tokio::sync::oneshot::Sender<()>) -> Self {
        Self(std::sync::Mutex::new(Some(sender)))
    }

    pub fn fire(&self) {
        if let Some(sender) = self.0.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = sender.send(());
        }
    }
}

/// What a live subscriber asked for besides R1: some event types, one node.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Outbox event types (`SUBSCRIPTION_CREATED`…); `None`: all.
    pub types: Option<HashSet<String>>,
    /// One node: its outbox `node_type` and id; `None`: all.
    pub node: Option<(String, Uuid)>,
}

impl Filter {
    fn matches(&self, event: &outbox_event::Model) -> bool {
        self.types.as_ref().is_none_or(|types| types.contains(&event.event_type))
            && self.node.as_ref().is_none_or(|(ty, id)| event.node_type == *ty && event.node_id == *id)
    }
}

/// The live events `principal` may see, from now on: each batch of the feed is filtered by
/// `filter`, then by [`visible_to`] on a scope taken at delivery (R1 at delivery). Ends with an
/// `EVENTS_LAGGED` error when the subscriber fell behind the feed's buffer, and ends when the feed
/// stops (shutdown).
pub async fn live(
    feed: Arc<feed::Feed>,
    principal: Principal,
    filter: Filter,
) -> ApiResult<impl Stream<Item = ApiResult<outbox_event::Model>> + Send + 'static> {
    let receiver = feed.subscribe().await.map_err(ApiError::internal)?;
    struct State {
        receiver: tokio::sync::broadcast::Receiver<feed::Batch>,
        queue: VecDeque<outbox_event::Model>,
        done: bool,
        feed: Arc<feed::Feed>,
        principal: Principal,
        filter: Filter,
    }
    let state = State { receiver, queue: VecDeque::new(), done: false, feed, principal, filter };
    Ok(futures_util::stream::unfold(state, |mut state| async move {
        loop {
            if let Some(event) = state.queue.pop_front() {
                metrics::counter!("partnerhub_events_delivered_total", "transport" => "websocket").increment(1);
                return Some((Ok(event), state));
            }
            if state.done {
                return None;
            }
            match state.receiver.recv().await {
                Ok(batch) => {
                    let wanted: Vec<outbox_event::Model> =
                        batch.iter().filter(|e| state.filter.matches(e)).cloned().collect();
                    if wanted.is_empty() {
                        continue;
                    }
                    let scope = Scope::for_principal(&state.principal, state.feed.clock().now());
                    let reader = Reader::new(state.feed.db().clone(), scope);
                    match visible_to(&reader, &wanted).await {
                        Ok(visible) => state.queue.extend(visible),
                        Err(err) => {
                            state.done = true;
                            return Some((Err(err), state));
                        }
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    state.done = true;
                    metrics::counter!("partnerhub_events_lagged_total", "transport" => "websocket").increment(1);
                    let message = format!(
                        "this subscriber fell {missed} batches of events behind and was ended; subscribe again, then catch up with a query"
                    );
                    return Some((Err(ApiError::new(Code::EventsLagged, message)), state));
                }
                Err(RecvError::Closed) => return None,
            }
        }
    }))
}
