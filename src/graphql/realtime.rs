//! The real-time root (`Realtime`): live streams, served over WebSocket only (`/graphql/ws`,
//! `graphql-transport-ws`; see `crate::http::ws`).

use std::collections::HashSet;
use std::sync::Arc;

use async_graphql::{Context, ID, Subscription};
use futures_util::{Stream, StreamExt};

use crate::error::ApiError;
use crate::events::{Filter, feed::Feed};
use crate::graphql::context::session;
use crate::graphql::ids;
use crate::graphql::types::event::{Event, EventType};

/// Live streams of what happens, over WebSocket (`/graphql/ws`, protocol `graphql-transport-ws`).
#[derive(Default)]
pub struct Realtime;

/// Live streams of what happens, over WebSocket (`/graphql/ws`, protocol `graphql-transport-ws`).
#[Subscription]
impl Realtime {
    /// The domain events committed from now on that your tenant may see, as they are committed.
    /// Visibility (R1) is checked when each event is delivered: a partner that loses its link to a
    /// customer stops hearing about that customer at once. At most once, in commit order as far as
    /// the database tells it; on a reconnect, catch up with queries (see docs/api.md).
    async fn events(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only these event types (all when absent).")] types: Option<Vec<EventType>>,
        #[graphql(desc = "Only the events of this node (a global id returned by this API).")] node_id: Option<ID>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<Event>> + use<>> {
        let principal = session(ctx)?.principal.clone();
        let feed = ctx
            .data_opt::<Arc<Feed>>()
            .cloned()
            .ok_or_else(|| ApiError::bad_input("events", "subscriptions are served over WebSocket at /graphql/ws"))?;
        let node = match node_id {
            None => None,
            Some(id) => match ids::decode_any(&id) {
                Some((ty, uuid)) => Some((ty.name().to_owned(), uuid)),
                None => return Err(ApiError::bad_input("nodeId", "not an id returned by this API").into()),
            },
        };
        let types = types.map(|types| types.into_iter().map(|t| t.as_str().to_owned()).collect::<HashSet<_>>());
        let stream = crate::events::live(feed, principal, Filter { types, node }).await?;
        if let Some(listening) = ctx.data_opt::<crate::events::Listening>() {
            listening.fire();
        }
        Ok(stream.map(|item| item.map(Event).map_err(async_graphql::Error::from)))
    }
}
