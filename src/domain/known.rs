//! Subscription rows as this instance last wrote or read them for a write, by id: what lets a
//! change of a subscription be one statement (`subscriptions::change`).
//!
//! Why a kept row can be trusted: every change of a subscription row goes through
//! `versioned::update_subscription*`, which writes `version + 1` only where the version is still
//! the one read (R13). So a subscription's content at one version never changes: a row kept here is
//! the row as it is in the database for as long as the database holds that version, on every
//! instance. A change whose `expectedVersion` names the kept version can be judged on the kept row
//! (R10, R11, R13, R16), and its write (`WHERE id = ? AND version = ?`) applies only if that is still
//! the version. What the kept row cannot tell, the write checks as it happens, in the same
//! statement: that the caller may still see the row (R1) and that its partner is not suspended
//! (R17). A write that finds any of this changed writes nothing, and the change is made the
//! ordinary way (read, judge, write), which answers with the right error.
//!
//! A kept row is never an answer: nothing is returned or refused from it (a refusal judged on a row
//! the caller may not see would reveal it). Only a write that succeeded returns, and it returns the
//! row it wrote.
//!
//! Bounded like the tenant cache (`auth::cache`): at most [`CAPACITY`] rows, all dropped when full.
//! Rows are kept only after a commit, so a rolled-back version is never kept. A database restored
//! from a backup under a running server could hold other content at a version kept here: restart
//! the server after a restore (`docs/operations.md`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use entity::subscription;
use uuid::Uuid;

/// Most rows kept (about 400 bytes each).
pub const CAPACITY: usize = 20_000;

/// Subscription id → the row at the highest version this instance has seen.
#[derive(Default)]
pub struct KnownRows {
    rows: Mutex<HashMap<Uuid, Arc<subscription::Model>>>,
}

impl KnownRows {
    fn lock(&self) -> MutexGuard<'_, HashMap<Uuid, Arc<subscription::Model>>> {
        // Nothing can panic while the lock is held; a poisoned map is still a valid map.
        self.rows.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The row of subscription `id` at `version`, if kept.
    pub fn get(&self, id: Uuid, version: i32) -> Option<Arc<subscription::Model>> {
        self.lock().get(&id).filter(|row| row.version == version).cloned()
    }

    /// Keeps `row` (committed, or read from committed data), unless a later version is kept.
    pub fn keep(&self, row: &subscription::Model) {
        let mut rows = self.lock();
        if rows.get(&row.id).is_some_and(|kept| kept.version >= row.version) {
            return;
        }
        if rows.len() >= CAPACITY && !rows.contains_key(&row.id) {
            rows.clear();
        }
        rows.insert(row.id, Arc::new(row.clone()));
    }
}
