//! Webhooks from the outbox (`docs/webhooks.md`). One worker per server, started by `serve`:
//!
//! 1. **Fan-out**: outbox events without a mark in `outbox_fanout` become one `webhook_delivery`
//!    per live webhook that wants the event's type, was registered before the event, and whose
//!    owner may see the event ([`crate::events::visible_to`] with the owner's scope). Deliveries
//!    and marks are written in one transaction; both inserts ignore rows already there, so two
//!    instances fanning out the same event write it once (unique (webhook, event)). Marking rows,
//!    not keeping a `max(id)` cursor: PostgreSQL commits autoincrement ids out of order.
//! 2. **Send**: due deliveries are claimed with a lease (PostgreSQL: `FOR UPDATE SKIP LOCKED` in
//!    the claiming `UPDATE`, so two instances never claim the same attempt), visibility is checked
//!    again (R1 at delivery: an event the owner may no longer see is not sent, the delivery becomes
//!    `FAILED` "no longer visible"), the event is POSTed, signed, and the outcome recorded only if
//!    the lease is still ours. Failures are retried with exponential backoff and full jitter until
//!    the deadline; a crashed instance's lease expires and another instance sends again
//!    (at-least-once, receivers de-duplicate on the event id).

pub mod send;
pub mod target;

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use entity::{outbox_event, outbox_fanout, webhook, webhook_delivery};
use futures_util::FutureExt;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Query};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use crate::access::{Reader, Scope, Viewer};
use crate::config::WebhookSettings;
use crate::domain::Writer;
use crate::domain::webhooks::status;
use crate::error::ApiResult;
use crate::state::AppState;

/// Most outbox events fanned out per pass.
const FANOUT_BATCH: u64 = 200;

/// What one pass of the worker did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PassReport {
    /// Outbox events marked as fanned out.
    pub fanned_out: u64,
    /// Delivery rows written.
    pub deliveries: u64,
    /// Attempts made, and how they went.
    pub sent: u64,
    pub succeeded: u64,
    pub failed_attempts: u64,
    /// Deliveries given up (deadline, no longer visible, webhook deleted).
    pub given_up: u64,
    /// The fan-out read a full batch: more events may be waiting.
    pub more: bool,
}

/// The scope a webhook's owner sees at `now`.
pub fn owner_scope(hook: &webhook::Model, now: DateTime<Utc>) -> Scope {
    let viewer = match (hook.owner_kind.as_str(), hook.partner_id, hook.customer_id) {
        ("PARTNER", Some(id), _) => Viewer::Partner { id, tenant_id: hook.tenant_id },
        ("CUSTOMER", _, Some(id)) => Viewer::Customer { id, tenant_id: hook.tenant_id },
        ("PLATFORM", ..) => Viewer::Platform,
        // A row without its owner sees nothing: a customer id that matches no customer.
        _ => Viewer::Customer { id: Uuid::nil(), tenant_id: hook.tenant_id },
    };
    Scope::of_viewer(viewer, now)
}

/// The event type names a webhook wants.
pub fn wanted_types(hook: &webhook::Model) -> Vec<String> {
    serde_json::from_value(hook.event_types.clone()).unwrap_or_default()
}

/// Fans out up to [`FANOUT_BATCH`] outbox events not yet fanned out, oldest first. Also sets the
/// gauge `partnerhub_outbox_lag_seconds` (age of the oldest event not yet fanned out).
pub async fn fan_out(
    db: &DatabaseConnection,
    settings: &WebhookSettings,
    now: DateTime<Utc>,
    report: &mut PassReport,
) -> ApiResult<()> {
    fan_out_from(db, settings, now, &mut Floor::default(), report).await
}

/// How long after its fan-out an event's id may serve as the floor of the scan. A smaller outbox id
/// can only still appear (commit) if its transaction has been open longer than this; transactions
/// are bounded far below it (request timeout, PostgreSQL's idle-in-transaction timeout).
pub const FLOOR_SAFETY: chrono::Duration = chrono::Duration::minutes(5);

/// A worker's lower bound for the fan-out scan: every outbox id at or below it is fanned out, so
/// the scan for unmarked events does not walk the whole outbox on every pass. Kept in memory; a new
/// worker starts at zero (one full scan).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Floor(pub i64);

/// [`fan_out`] starting above `floor`, which it then raises: to the highest marked id below the
/// first unmarked one, among marks older than [`FLOOR_SAFETY`].
pub async fn fan_out_from(
    db: &DatabaseConnection,
    settings: &WebhookSettings,
    now: DateTime<Utc>,
    floor: &mut Floor,
    report: &mut PassReport,
) -> ApiResult<()> {
    sweep(db, settings, now, floor, report).await.map(|_| ())
}

/// [`fan_out_from`], returning the highest id it fanned out.
async fn sweep(
    db: &DatabaseConnection,
    settings: &WebhookSettings,
    now: DateTime<Utc>,
    floor: &mut Floor,
    report: &mut PassReport,
) -> ApiResult<Option<i64>> {
    let events = unmarked_above(db, floor.0).await?;
    {
        use outbox_fanout::Column as F;
        let mut settled = outbox_fanout::Entity::find()
            .select_only()
            .column_as(Expr::col(F::OutboxEventId).max(), "m")
            .filter(F::OutboxEventId.gt(floor.0))
            .filter(F::FannedOutAt.lt(now - FLOOR_SAFETY));
        if let Some(first) = events.first() {
            settled = settled.filter(F::OutboxEventId.lt(first.id));
        }
        if let Some(Some(max)) = settled.into_tuple::<Option<i64>>().one(db).await? {
            floor.0 = std::cmp::Ord::max(floor.0, max);
        }
    }
    fan_out_events(db, settings, now, events, report).await
}

/// `SELECT 1 FROM outbox_fanout WHERE outbox_event_id = outbox_event.id`: the mark of the outbox
/// row at hand.
fn mark_of_row() -> sea_orm::sea_query::SelectStatement {
    Query::select()
        .expr(Expr::val(1))
        .from(outbox_fanout::Entity)
        .and_where(
            Expr::col((outbox_fanout::Entity, outbox_fanout::Column::OutboxEventId))
                .equals((outbox_event::Entity, outbox_event::Column::Id)),
        )
        .to_owned()
}

/// The first [`FANOUT_BATCH`] outbox events above id `above` without a mark, oldest first.
async fn unmarked_above(db: &DatabaseConnection, above: i64) -> ApiResult<Vec<outbox_event::Model>> {
    use outbox_event::Column as O;
    let select = outbox_event::Entity::find()
        .filter(O::Id.gt(above))
        .filter(Expr::exists(mark_of_row()).not())
        .order_by_asc(O::Id)
        .limit(FANOUT_BATCH);
    headers(db, select).await
}

/// The outbox events `select` finds, without their payloads (`null` in their place): the fan-out
/// decides by an event's type, time and node, and the sender reads the event again by id. Read
/// whole, every event's payload (the change's details, as JSON) was parsed into a
/// `serde_json::Value` only to be dropped: under a stream of subscription updates with no webhook
/// registered, that parse and the row's decoding by column name were most of the fan-out's CPU.
async fn headers(
    db: &DatabaseConnection,
    select: sea_orm::Select<outbox_event::Entity>,
) -> ApiResult<Vec<outbox_event::Model>> {
    use outbox_event::Column as O;
    type Header = (i64, String, DateTime<Utc>, String, Uuid, Option<Uuid>, Option<Uuid>, Option<Uuid>);
    let rows: Vec<Header> = select
        .select_only()
        .columns([
            O::Id,
            O::EventType,
            O::OccurredAt,
            O::NodeType,
            O::NodeId,
            O::PartnerId,
            O::RelatedPartnerId,
            O::CustomerId,
        ])
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(id, event_type, occurred_at, node_type, node_id, partner_id, related_partner_id, customer_id)| {
            outbox_event::Model {
                id,
                event_type,
                occurred_at,
                node_type,
                node_id,
                partner_id,
                related_partner_id,
                customer_id,
                payload: serde_json::Value::Null,
            }
        })
        .collect())
}

/// Outbox rows matching `which` (at most [`FANOUT_BATCH`], in id order), each with whether it is
/// marked. The marks are read by a second statement, by the mark table's key (the range the rows
/// span, or their ids): each statement reads one table by its primary key whatever plan PostgreSQL
/// keeps for it. Asked
/// as a column (`EXISTS` per row) or an anti-join, PostgreSQL's generic plan hashed the whole mark
/// table on every pass (it does not count the `LIMIT` in how often the subquery runs): 21 ms a pass
/// with 60,000 marks, half a core under a steady stream of writes.
async fn scan(
    db: &DatabaseConnection,
    which: sea_orm::sea_query::SimpleExpr,
) -> ApiResult<Vec<(outbox_event::Model, bool)>> {
    use outbox_event::Column as O;
    use outbox_fanout::Column as F;
    let events =
        headers(db, outbox_event::Entity::find().filter(which).order_by_asc(O::Id).limit(FANOUT_BATCH)).await?;
    let (Some(first), Some(last)) = (events.first(), events.last()) else {
        return Ok(Vec::new());
    };
    // A dense run of ids (what follows the hint) by its key range; scattered ones (late commits
    // found among the gaps) by their ids, the list padded to a power of two so that its statements
    // take a handful of shapes.
    let mut marks = outbox_fanout::Entity::find().select_only().column(F::OutboxEventId);
    if last.id - first.id < 2 * FANOUT_BATCH as i64 {
        marks = marks.filter(F::OutboxEventId.gte(first.id)).filter(F::OutboxEventId.lte(last.id));
    } else {
        marks = marks.filter(F::OutboxEventId.is_in(padded(events.iter().map(|e| e.id).collect())));
    }
    let marked: std::collections::HashSet<i64> = marks.into_tuple().all(db).await?.into_iter().collect();
    Ok(events
        .into_iter()
        .map(|event| {
            let is_marked = marked.contains(&event.id);
            (event, is_marked)
        })
        .collect())
}

/// `ids` padded with its last id to a power of two: an `IN` list of a handful of lengths, whose
/// statements stay prepared (the same ids, so the same rows).
fn padded(mut ids: Vec<i64>) -> Vec<i64> {
    if let Some(&last) = ids.last() {
        ids.resize(ids.len().next_power_of_two(), last);
    }
    ids
}

/// Fans out `events` (unmarked, in id order): their deliveries and marks, in one transaction.
/// Returns the highest id among them.
async fn fan_out_events(
    db: &DatabaseConnection,
    settings: &WebhookSettings,
    now: DateTime<Utc>,
    events: Vec<outbox_event::Model>,
    report: &mut PassReport,
) -> ApiResult<Option<i64>> {
    let lag = events
        .iter()
        .map(|e| e.occurred_at)
        .min()
        .map(|oldest| std::cmp::Ord::max((now - oldest).num_milliseconds(), 0));
    metrics::gauge!("partnerhub_outbox_lag_seconds").set(lag.unwrap_or(0) as f64 / 1000.0);
    let Some(highest) = events.iter().map(|e| e.id).max() else {
        return Ok(None);
    };

    let hooks = webhook::Entity::find().filter(webhook::Column::DeletedAt.is_null()).all(db).await?;
    let mut rows = Vec::new();
    // One visibility query per owner (and node type), whatever the number of its webhooks.
    let mut by_owner: HashMap<Uuid, Vec<&webhook::Model>> = HashMap::new();
    for hook in &hooks {
        by_owner.entry(hook.tenant_id).or_default().push(hook);
    }
    let deadline = chrono::Duration::from_std(settings.deadline).unwrap_or(chrono::Duration::days(1));
    for hooks in by_owner.into_values() {
        let Some(first) = hooks.first() else { continue };
        let scope = owner_scope(first, now);
        let oldest_hook = hooks.iter().map(|h| h.created_at).min().unwrap_or(now);
        let candidates: Vec<outbox_event::Model> = events
            .iter()
            .filter(|e| e.occurred_at >= oldest_hook)
            .filter(|e| hooks.iter().any(|h| wanted_types(h).contains(&e.event_type)))
            .cloned()
            .collect();
        if candidates.is_empty() {
            continue;
        }
        let visible = crate::events::visible_to(&Reader::new(db.clone(), scope), &candidates).await?;
        for hook in hooks {
            let types = wanted_types(hook);
            for event in visible.iter().filter(|e| e.occurred_at >= hook.created_at && types.contains(&e.event_type)) {
                rows.push(webhook_delivery::Model {
                    id: Uuid::now_v7(),
                    webhook_id: hook.id,
                    tenant_id: hook.tenant_id,
                    outbox_event_id: event.id,
                    event_type: event.event_type.clone(),
                    status: status::PENDING.into(),
                    attempts: 0,
                    next_attempt_at: now,
                    deadline_at: event.occurred_at + deadline,
                    lease_until: None,
                    lease_token: None,
                    last_error: None,
                    last_status_code: None,
                    created_at: now,
                    updated_at: now,
                    delivered_at: None,
                });
            }
        }
    }
    let marks: Vec<outbox_fanout::Model> =
        events.iter().map(|e| outbox_fanout::Model { outbox_event_id: e.id, fanned_out_at: now }).collect();
    let (n_events, n_rows) = (marks.len() as u64, rows.len() as u64);
    // These commits write deliveries and marks, no outbox rows: no event feed needs waking.
    Writer::new(db.clone(), crate::events::feed::Commits::none())
        .write(move |txn| {
            async move {
                for chunk in rows.chunks(100) {
                    webhook_delivery::Entity::insert_many(
                        chunk.iter().cloned().map(sea_orm::IntoActiveModel::into_active_model),
                    )
                    .on_conflict(
                        OnConflict::columns([
                            webhook_delivery::Column::WebhookId,
                            webhook_delivery::Column::OutboxEventId,
                        ])
                        .do_nothing()
                        .to_owned(),
                    )
                    .exec_without_returning(txn)
                    .await?;
                }
                outbox_fanout::Entity::insert_many(marks.into_iter().map(sea_orm::IntoActiveModel::into_active_model))
                    .on_conflict(OnConflict::column(outbox_fanout::Column::OutboxEventId).do_nothing().to_owned())
                    .exec_without_returning(txn)
                    .await?;
                Ok(())
            }
            .boxed()
        })
        .await?;
    report.fanned_out += n_events;
    report.deliveries += n_rows;
    Ok(Some(highest))
}

/// Time between two sweeps of a running worker from its [`Floor`] ([`Worker`]).
pub const SWEEP_INTERVAL: chrono::Duration = chrono::Duration::minutes(1);

/// Most ids a worker waits for at once below its hint ([`Worker`]); a larger jump in ids (say, a
/// sequence moved by hand) is left to the next sweep.
const MAX_GAPS: usize = 10_000;

/// A running worker's place in the outbox.
///
/// - Its first pass, and one pass every [`SWEEP_INTERVAL`], *sweeps*: it fans out the lowest
///   unmarked events above the [`Floor`], as [`fan_out_from`] does. That scan walks every event
///   marked in the last [`FLOOR_SAFETY`], so it is kept rare: done on every pass under a steady
///   stream of writes, it cost PostgreSQL half a core at 2,500 mutations a second.
/// - Every other pass looks only above `hint`, the highest id it has seen (fanned out, or marked
///   by another instance), and at its `gaps`: the ids it skipped below the hint. PostgreSQL takes
///   ids from a sequence at insert and commits them in any order, so id 10 may appear after id 11
///   was fanned out. A skipped id is looked up on every pass until it appears (and is fanned out,
///   once) or [`FLOOR_SAFETY`] has passed (no transaction stays open that long: it was rolled
///   back). A pass thus costs the events new since the last one, plus the handful in flight.
/// - What a sweep finds below the hint (ids in flight when the worker started, or beyond
///   `MAX_GAPS`) is fanned out then.
#[derive(Debug, Default, Clone)]
pub struct Worker {
    floor: Floor,
    hint: i64,
    /// Ids below the hint not seen yet, with when to give up on them.
    gaps: BTreeMap<i64, DateTime<Utc>>,
    last_sweep: Option<DateTime<Utc>>,
}

impl Worker {
    /// One pass: fan out (a sweep, or what is new above the hint and in its gaps), then send what
    /// is due. The report's `fanned_out` reaching [`FANOUT_BATCH`], or `more`, says that more is
    /// waiting.
    pub async fn pass(
        &mut self,
        db: &DatabaseConnection,
        settings: &WebhookSettings,
        now: DateTime<Utc>,
    ) -> ApiResult<PassReport> {
        let mut report = PassReport::default();
        if self.last_sweep.is_none_or(|last| now - last >= SWEEP_INTERVAL || now < last) {
            let highest = sweep(db, settings, now, &mut self.floor, &mut report).await?;
            self.last_sweep = Some(now);
            // The sweep fanned out the lowest unmarked events: none is left below the highest of
            // them, nor below the floor.
            let settled = std::cmp::Ord::max(self.floor.0, highest.unwrap_or(0));
            self.gaps.retain(|id, _| *id > settled);
            self.hint = std::cmp::Ord::max(self.hint, settled);
            report.more = report.fanned_out >= FANOUT_BATCH;
        } else {
            self.gaps.retain(|_, give_up| *give_up > now);
            let mut events = Vec::new();
            if !self.gaps.is_empty() {
                for (event, marked) in scan(db, outbox_event::Column::Id.is_in(self.gap_probe())).await? {
                    self.gaps.remove(&event.id);
                    if !marked {
                        events.push(event);
                    }
                }
            }
            let fresh = scan(db, outbox_event::Column::Id.gt(self.hint)).await?;
            report.more = fresh.len() as u64 >= FANOUT_BATCH;
            let give_up = now + FLOOR_SAFETY;
            for (event, marked) in fresh {
                let skipped = (self.hint + 1..event.id).rev().take(MAX_GAPS.saturating_sub(self.gaps.len()));
                self.gaps.extend(skipped.map(|id| (id, give_up)));
                self.hint = event.id;
                if !marked {
                    events.push(event);
                }
            }
            events.sort_by_key(|e| e.id);
            fan_out_events(db, settings, now, events, &mut report).await?;
        }
        send::send_due(db, settings, now, &mut report).await?;
        Ok(report)
    }

    /// The gaps to look up this pass: the oldest [`FANOUT_BATCH`], the list padded (with its last
    /// id) to a power of two, so the statements differ in a handful of lengths and stay prepared.
    fn gap_probe(&self) -> Vec<i64> {
        padded(self.gaps.keys().copied().take(FANOUT_BATCH as usize).collect())
    }

    /// Ids this worker is still waiting for below its hint (for tests and logs).
    pub fn gaps(&self) -> usize {
        self.gaps.len()
    }
}

/// One pass: fan out new events, then claim and send the deliveries that are due.
pub async fn run_once(
    db: &DatabaseConnection,
    settings: &WebhookSettings,
    now: DateTime<Utc>,
) -> ApiResult<PassReport> {
    run_once_from(db, settings, now, &mut Floor::default()).await
}

/// [`run_once`] with a worker's [`Floor`].
pub async fn run_once_from(
    db: &DatabaseConnection,
    settings: &WebhookSettings,
    now: DateTime<Utc>,
    floor: &mut Floor,
) -> ApiResult<PassReport> {
    let mut report = PassReport::default();
    fan_out_from(db, settings, now, floor, &mut report).await?;
    send::send_due(db, settings, now, &mut report).await?;
    Ok(report)
}

/// Runs [`run_once`] every `settings.webhooks.poll_interval` until `state.shutdown` is cancelled,
/// checked between passes: a pass under way (a send in progress) finishes and is recorded. Each
/// pass runs in its own task, so a panic does not stop the loop.
pub fn spawn(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let settings = state.settings.webhooks.clone();
        let mut worker = Worker::default();
        let mut ticker = tokio::time::interval(settings.poll_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut behind = false;
        loop {
            // A pass that fanned out a full batch is followed at once: the fan-out keeps up with
            // any write rate instead of FANOUT_BATCH events per poll.
            if behind {
                if state.shutdown.is_cancelled() {
                    break;
                }
            } else {
                tokio::select! {
                    biased;
                    () = state.shutdown.cancelled() => break,
                    _ = ticker.tick() => {}
                }
            }
            behind = false;
            let (db, now, settings) = (state.db.clone(), state.clock.now(), settings.clone());
            let start = worker.clone();
            let pass = tokio::spawn(async move {
                let mut worker = start;
                worker.pass(&db, &settings, now).await.map(|report| (report, worker))
            });
            match pass.await {
                Ok(Ok((report, moved))) => {
                    worker = moved;
                    behind = report.more || report.fanned_out >= FANOUT_BATCH;
                    if report != (PassReport { more: report.more, ..PassReport::default() }) {
                        tracing::debug!(?report, "webhook pass");
                    }
                }
                Ok(Err(err)) => {
                    let cause = err.source.as_ref().map(|c| format!("{c:#}")).unwrap_or_default();
                    tracing::error!(code = err.code.as_str(), message = %err.message, error = cause, "webhook pass failed");
                }
                Err(join) => tracing::error!(error = %join, "webhook pass panicked"),
            }
        }
    })
}
