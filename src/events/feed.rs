//! The live event feed of one instance: one background task tails the outbox (`id > cursor`, at
//! most [`BATCH`] rows a read) and fans each batch out to the subscribers of this instance through a
//! `tokio::sync::broadcast` channel. The outbox stays the truth: the feed only decides *when* to
//! look at it again.
//!
//! Wake-ups, any of which is enough:
//! - in process: [`Commits::committed`], called after every committed transaction of
//!   [`crate::domain::Writer::write`] (mutations and the lifecycle runner);
//! - on PostgreSQL: `LISTEN partnerhub_outbox`, which the feed of the instance that committed
//!   sends after its pass ([`announce`]), so a commit made through another instance wakes this one;
//! - a fallback poll every [`FeedSettings::poll_interval`] (1 s by default), so a lost
//!   notification only delays an event.
//!
//! The in-process wake-up belongs to the instance, not to the process: each [`Feed`] owns its
//! [`Commits`] handle, and the writers of that instance carry a clone of it (the `Writer` is built
//! from the server's state for each request, and for the lifecycle runner; a writer whose commits
//! write no outbox rows, such as the webhook fan-out's, carries [`Commits::none`]). So two
//! instances in one process (the tests run two servers on one database) behave as two processes
//! do: a commit made through one wakes the other only through `NOTIFY`, and a test that sets the
//! other's poll interval long proves that `NOTIFY`/`LISTEN` work.
//!
//! Gaps: on PostgreSQL, ids come from a sequence when a row is inserted, and transactions commit
//! in any order, so id 10 may become visible after id 11. A tailer that only kept the highest id
//! would lose id 10. Every id skipped below the high-water mark is kept as a *gap* for
//! [`GAP_GRACE`] and looked up again on every pass; found, it is delivered (once: a gap is dropped
//! when filled, and the high-water mark only moves forward); not found after the grace, it is
//! taken for a rolled-back insert and forgotten. On SQLite, writers are serialized and gaps do not
//! arise (the same code runs, and finds none).
//!
//! Nobody listening: a pass that finds no subscriber on this instance reads nothing. It forgets
//! its position instead, and the next subscriber places it again at the outbox's end
//! ([`Feed::subscribe`], under the same lock as the pass), as the feed's start does. So an instance
//! serving only mutations pays no outbox read per pass, and a subscriber still gets every event
//! committed after it subscribed. The `NOTIFY` for other instances is sent all the same.
//!
//! Lag: the broadcast channel holds [`FeedSettings::channel_capacity`] batches (1,024 by default).
//! A subscriber that falls further behind than that is ended with an `EVENTS_LAGGED` error (see
//! `docs/api.md`); others never wait for it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use entity::outbox_event;
use sea_orm::{ColumnTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use tokio::sync::{Mutex, Notify, OnceCell, broadcast, watch};
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;

/// Most outbox rows read at once.
pub const BATCH: u64 = 500;
/// Longest the feed sleeps without a notification, by default ([`FeedSettings::poll_interval`]).
pub const POLL_INTERVAL: Duration = Duration::from_millis(1000);
/// How long an id skipped below the high-water mark is waited for.
pub const GAP_GRACE: Duration = Duration::from_secs(10);
/// Shortest time between two reads of the outbox: commits arriving faster are picked up together
/// (at most 200 reads, and NOTIFYs, a second whatever the write rate; an event waits 5 ms at worst).
pub const MIN_PASS_GAP: Duration = Duration::from_millis(5);
/// Batches the broadcast channel keeps for slow subscribers, by default
/// ([`FeedSettings::channel_capacity`]).
pub const CHANNEL_CAPACITY: usize = 1024;
/// Most gaps tracked at once (a huge jump in ids, e.g. after sequence changes, is not tracked id by id).
const MAX_GAPS: usize = 10_000;
/// The PostgreSQL notification channel.
pub const CHANNEL: &str = "partnerhub_outbox";

/// How one instance's feed runs (`Settings::feed`). The defaults are production's; tests change
/// them to take a wake-up away (a long poll) or to make lag easy to reach (a small channel).
#[derive(Debug, Clone, Copy)]
pub struct FeedSettings {
    /// Longest the feed sleeps without a notification (and the wait before `LISTEN` is tried
    /// again after its connection failed).
    pub poll_interval: Duration,
    /// Batches the broadcast channel keeps for slow subscribers (at least 1).
    pub channel_capacity: usize,
}

impl Default for FeedSettings {
    fn default() -> Self {
        Self { poll_interval: POLL_INTERVAL, channel_capacity: CHANNEL_CAPACITY }
    }
}

/// The in-process wake-up of one instance's feed: cheap to clone; a writer holding it calls
/// [`Commits::committed`] after each commit ([`Feed::commits`]).
#[derive(Clone, Debug, Default)]
pub struct Commits(Option<watch::Sender<u64>>);

impl Commits {
    /// Wakes nobody: for writers whose commits write no outbox rows, and for tests without a feed.
    pub fn none() -> Self {
        Self(None)
    }

    /// Wakes the feed this handle belongs to: something was committed (it may have written outbox
    /// rows).
    pub fn committed(&self) {
        if let Some(sender) = &self.0 {
            sender.send_modify(|n| *n = n.wrapping_add(1));
        }
    }
}

/// A batch of committed events, in the order the feed found them.
pub type Batch = Arc<Vec<outbox_event::Model>>;

/// The feed of one instance; started on first use (or by `serve`), stopped by `shutdown`.
pub struct Feed {
    db: DatabaseConnection,
    clock: Clock,
    shutdown: CancellationToken,
    settings: FeedSettings,
    sender: broadcast::Sender<Batch>,
    /// Bumped by this instance's writers after each commit.
    commits: watch::Sender<u64>,
    /// Whether `LISTEN` is in place (PostgreSQL; stays false elsewhere).
    listening: watch::Sender<bool>,
    /// The tailer's position, `None` while nobody listens on this instance (see the module
    /// documentation): shared by the tailing task and [`Feed::subscribe`].
    tail: Arc<Mutex<Option<Tail>>>,
    started: OnceCell<()>,
}

impl Feed {
    pub fn new(db: DatabaseConnection, clock: Clock, shutdown: CancellationToken, settings: FeedSettings) -> Self {
        let (sender, _) = broadcast::channel(settings.channel_capacity.max(1));
        Self {
            db,
            clock,
            shutdown,
            settings,
            sender,
            commits: watch::channel(0).0,
            listening: watch::channel(false).0,
            tail: Arc::new(Mutex::new(None)),
            started: OnceCell::new(),
        }
    }

    /// The handle this instance's writers wake the feed with after a commit.
    pub fn commits(&self) -> Commits {
        Commits(Some(self.commits.clone()))
    }

    /// Resolves once this feed's `LISTEN` is in place (on PostgreSQL, after [`Feed::start`]): from
    /// then on, a commit made through another instance wakes this one. Never resolves on other
    /// databases.
    pub async fn listening(&self) {
        let mut listening = self.listening.subscribe();
        let _ = listening.wait_for(|up| *up).await;
    }

    /// How many subscribers this instance has now.
    pub fn subscribers(&self) -> usize {
        self.sender.receiver_count()
    }

    /// Whether the feed keeps a position in the outbox (it does not while nobody listens here).
    pub async fn is_tailing(&self) -> bool {
        self.tail.lock().await.is_some()
    }

    /// The connection subscribers' visibility checks read through.
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Starts the tailing task if it is not running yet: from the outbox's current end, so that
    /// once this returns every event committed later is delivered.
    pub async fn start(&self) -> anyhow::Result<()> {
        self.started
            .get_or_try_init(|| async {
                *self.tail.lock().await = Some(Tail::open(&self.db).await?);
                let wake = Arc::new(Notify::new());
                let poll = self.settings.poll_interval;
                if self.db.get_database_backend() == DbBackend::Postgres {
                    let listening = self.listening.clone();
                    tokio::spawn(listen(self.db.clone(), wake.clone(), listening, poll, self.shutdown.clone()));
                }
                let commits = self.commits.subscribe();
                let sender = self.sender.clone();
                tokio::spawn(run(
                    self.tail.clone(),
                    self.db.clone(),
                    sender,
                    commits,
                    wake,
                    poll,
                    self.shutdown.clone(),
                ));
                anyhow::Ok(())
            })
            .await?;
        Ok(())
    }

    /// A receiver of every batch committed from now on (starts the feed if needed).
    pub async fn subscribe(&self) -> anyhow::Result<broadcast::Receiver<Batch>> {
        // Subscribed first: a batch published while the feed starts is not missed.
        let receiver = self.sender.subscribe();
        self.start().await?;
        // A feed that found nobody listening has forgotten its position: it starts again at the
        // outbox's end (the next pass, waiting for this lock, sees this receiver).
        let mut tail = self.tail.lock().await;
        if tail.is_none() {
            *tail = Some(Tail::open(&self.db).await?);
        }
        Ok(receiver)
    }
}

/// The tailer's position: the high-water mark and the gaps below it.
struct Tail {
    high: i64,
    /// Ids below `high` not seen yet, with when to give up on them.
    gaps: BTreeMap<i64, Instant>,
}

impl Tail {
    /// At the outbox's end. Ids just below it that are not there yet may be transactions still in
    /// flight: the last [`BATCH`] ids are checked and the missing ones kept as gaps.
    async fn open(db: &DatabaseConnection) -> anyhow::Result<Self> {
        let recent: Vec<i64> = outbox_event::Entity::find()
            .select_only()
            .column(outbox_event::Column::Id)
            .order_by_desc(outbox_event::Column::Id)
            .limit(BATCH)
            .into_tuple()
            .all(db)
            .await?;
        let high = recent.first().copied().unwrap_or(0);
        let low = recent.last().copied().unwrap_or(0);
        let deadline = Instant::now() + GAP_GRACE;
        let present: std::collections::HashSet<i64> = recent.into_iter().collect();
        let gaps = (low.max(1)..high).filter(|id| !present.contains(id)).map(|id| (id, deadline)).collect();
        Ok(Self { high, gaps })
    }

    /// One read: gaps first (they are older), then what follows the high-water mark. Returns the
    /// rows to deliver and whether more may be waiting (a full batch).
    async fn pass(&mut self, db: &DatabaseConnection) -> Result<(Vec<outbox_event::Model>, bool), sea_orm::DbErr> {
        let now = Instant::now();
        self.gaps.retain(|_, deadline| *deadline > now);
        let mut out = Vec::new();
        if !self.gaps.is_empty() {
            let wanted: Vec<i64> = self.gaps.keys().copied().take(BATCH as usize).collect();
            let found = outbox_event::Entity::find()
                .filter(outbox_event::Column::Id.is_in(wanted))
                .order_by_asc(outbox_event::Column::Id)
                .all(db)
                .await?;
            for row in found {
                if self.gaps.remove(&row.id).is_some() {
                    out.push(row);
                }
            }
        }
        let fresh = outbox_event::Entity::find()
            .filter(outbox_event::Column::Id.gt(self.high))
            .order_by_asc(outbox_event::Column::Id)
            .limit(BATCH)
            .all(db)
            .await?;
        let full = fresh.len() as u64 == BATCH;
        let deadline = now + GAP_GRACE;
        for row in fresh {
            let skipped = row.id - self.high - 1;
            if skipped > 0 && self.gaps.len() < MAX_GAPS {
                let from = (row.id - (MAX_GAPS - self.gaps.len()) as i64).max(self.high + 1);
                for id in from..row.id {
                    self.gaps.insert(id, deadline);
                }
            }
            self.high = row.id;
            out.push(row);
        }
        Ok((out, full))
    }
}

/// The tailing loop.
async fn run(
    tail: Arc<Mutex<Option<Tail>>>,
    db: DatabaseConnection,
    sender: broadcast::Sender<Batch>,
    mut commits: watch::Receiver<u64>,
    wake: Arc<Notify>,
    poll: Duration,
    shutdown: CancellationToken,
) {
    let postgres = db.get_database_backend() == DbBackend::Postgres;
    let mut committed_here = false;
    let mut last_pass: Option<Instant> = None;
    loop {
        // Under a stream of commits, passes are at least MIN_PASS_GAP apart: each reads the outbox
        // (and may NOTIFY), so one pass per commit would add two statements to every mutation.
        if let Some(last) = last_pass {
            let since = last.elapsed();
            if since < MIN_PASS_GAP {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(MIN_PASS_GAP - since) => {}
                }
            }
        }
        last_pass = Some(Instant::now());
        // Held for the pass: a subscriber arriving meanwhile waits, then finds the position kept
        // (this pass saw it) or gone (it places it again itself).
        let mut position = tail.lock().await;
        let more = if sender.receiver_count() == 0 {
            // Nobody to deliver to: no read. Other instances are still told of this one's commits.
            *position = None;
            if postgres && committed_here {
                announce(&db, None).await;
            }
            committed_here = false;
            false
        } else {
            let opened = match position.take() {
                Some(tail) => Ok(tail),
                None => Tail::open(&db).await,
            };
            match opened {
                Ok(mut current) => {
                    let result = current.pass(&db).await;
                    let high = current.high;
                    *position = Some(current);
                    match result {
                        Ok((rows, full)) => {
                            if !rows.is_empty() {
                                if postgres && committed_here {
                                    announce(&db, Some(high)).await;
                                }
                                // A receiver gone since is not an error.
                                let _ = sender.send(Arc::new(rows));
                            }
                            committed_here = false;
                            full
                        }
                        Err(err) => {
                            tracing::warn!(error = %err, "the event feed could not read the outbox; retrying");
                            false
                        }
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %err, "the event feed could not find the outbox's end; retrying");
                    false
                }
            }
        };
        drop(position);
        if more {
            if shutdown.is_cancelled() {
                break;
            }
            continue;
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = commits.changed() => committed_here = true,
            () = wake.notified() => {}
            () = tokio::time::sleep(poll) => {}
        }
    }
    tracing::debug!("event feed stopped");
}

/// Tells the other instances on this PostgreSQL database that events were committed here
/// (`NOTIFY partnerhub_outbox`, the payload the high-water mark: the feed's, or the outbox's
/// highest id when this instance's feed did not read it). Sent by the feed, once per pass
/// that found events after this instance's own commits, rather than by a trigger on the outbox: a
/// transaction that notifies takes PostgreSQL's global notify lock until its commit is flushed,
/// which serialized every mutation's commit (measured: `updateSubscription` 1,470 req/s with a
/// trigger, 1,670–2,080 without). Lost, it costs another instance at most its poll (1 s by default).
async fn announce(db: &DatabaseConnection, high: Option<i64>) {
    let statement = match high {
        Some(high) => sea_orm::Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_notify($1, $2)",
            [CHANNEL.into(), high.to_string().into()],
        ),
        None => sea_orm::Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_notify($1, (SELECT COALESCE(MAX(id), 0) FROM outbox_event)::text)",
            [CHANNEL.into()],
        ),
    };
    if let Err(err) = sea_orm::ConnectionTrait::execute_raw(db, statement).await {
        tracing::debug!(error = %err, "NOTIFY {CHANNEL} failed; other instances will poll");
    }
}

/// `LISTEN partnerhub_outbox` on a connection of its own; each notification wakes the feed. A lost
/// connection is opened again (the poll covers the time in between).
async fn listen(
    db: DatabaseConnection,
    wake: Arc<Notify>,
    listening: watch::Sender<bool>,
    poll: Duration,
    shutdown: CancellationToken,
) {
    let pool = db.get_postgres_connection_pool().clone();
    loop {
        let attempt = listen_once(&pool, &wake, &listening);
        tokio::select! {
            () = shutdown.cancelled() => return,
            result = attempt => {
                let Err(err) = result;
                listening.send_replace(false);
                tracing::warn!(error = %err, "LISTEN {CHANNEL} failed; polling until it is back");
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(poll) => {}
        }
    }
}

/// Listens until the connection fails; never returns otherwise.
async fn listen_once(
    pool: &sqlx::PgPool,
    wake: &Notify,
    listening: &watch::Sender<bool>,
) -> Result<std::convert::Infallible, sqlx::Error> {
    let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    listening.send_replace(true);
    // Anything committed while nobody listened is picked up by this wake-up.
    wake.notify_one();
    loop {
        listener.recv().await?;
        wake.notify_one();
    }
}
