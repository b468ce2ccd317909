//! Per-tenant cost budgets: one token bucket per tenant (and one per anonymous client address),
//! charged with each operation's computed cost before it runs (see [`super::cost`]).
//!
//! Buckets live in this process. Behind a load balancer with N instances a tenant may spend up to N
//! buckets; the operations guide gives the arithmetic (set capacity and refill to the budget you
//! want divided by N).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// Size and refill rate of one kind of bucket. A capacity of 0 turns budgets off for that kind.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BucketSettings {
    /// Most cost points a bucket holds (and the largest burst).
    pub capacity: u64,
    /// Points returned to the bucket per second.
    pub refill_per_sec: u64,
}

/// Budgets for signed-in tenants and for anonymous callers (introspection only).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BudgetSettings {
    pub tenant: BucketSettings,
    pub anonymous: BucketSettings,
}

impl Default for BudgetSettings {
    fn default() -> Self {
        Self {
            tenant: BucketSettings { capacity: 100_000, refill_per_sec: 10_000 },
            anonymous: BucketSettings { capacity: 5_000, refill_per_sec: 100 },
        }
    }
}

/// Whose bucket an operation is charged to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BudgetKey {
    Tenant(Uuid),
    /// An anonymous caller, by client address when the server knows it.
    Anonymous(Option<IpAddr>),
}

/// The outcome of one charge, as reported in `extensions.cost`.
#[derive(Debug, Clone, Copy)]
pub struct Charge {
    pub cost: u64,
    /// Whether the operation may run (the points were taken).
    pub allowed: bool,
    /// Points left after this charge (or before it, when refused).
    pub remaining: u64,
    /// When the bucket will be full again.
    pub reset_at: DateTime<Utc>,
    /// Whole seconds until enough points are back for this cost (0 when allowed).
    pub retry_after_secs: u64,
}

struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// Buckets kept before full (idle) ones are dropped.
const MAX_BUCKETS: usize = 10_000;

/// The buckets of this process.
pub struct Budgets {
    settings: BudgetSettings,
    buckets: Mutex<HashMap<BudgetKey, Bucket>>,
}

impl Budgets {
    pub fn new(settings: BudgetSettings) -> Self {
        Self { settings, buckets: Mutex::new(HashMap::new()) }
    }

    /// The most a bucket of `key`'s kind holds (0: no budget).
    pub fn capacity(&self, key: &BudgetKey) -> u64 {
        self.settings_for(key).capacity
    }

    fn settings_for(&self, key: &BudgetKey) -> BucketSettings {
        match key {
            BudgetKey::Tenant(_) => self.settings.tenant,
            BudgetKey::Anonymous(_) => self.settings.anonymous,
        }
    }

    /// Takes `cost` points from `key`'s bucket if it holds them; otherwise takes nothing.
    pub fn charge(&self, key: &BudgetKey, cost: u64, now: Instant, wall: DateTime<Utc>) -> Charge {
        let settings = self.settings_for(key);
        if settings.capacity == 0 {
            return Charge { cost, allowed: true, remaining: u64::MAX, reset_at: wall, retry_after_secs: 0 };
        }
        let capacity = settings.capacity as f64;
        let rate = settings.refill_per_sec.max(1) as f64;
        let mut buckets = self.buckets.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(key) {
            // Drop the buckets that have refilled: forgetting them changes nothing.
            buckets.retain(|k, b| {
                let s = self.settings_for(k);
                let refilled = now.saturating_duration_since(b.updated).as_secs_f64() * s.refill_per_sec.max(1) as f64;
                b.tokens + refilled < (s.capacity as f64)
            });
        }
        let bucket = buckets.entry(key.clone()).or_insert(Bucket { tokens: capacity, updated: now });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(capacity);
        bucket.updated = now;
        let cost_f = cost as f64;
        let allowed = bucket.tokens >= cost_f;
        if allowed {
            bucket.tokens -= cost_f;
        }
        let missing = if allowed { 0.0 } else { cost_f.min(capacity) - bucket.tokens };
        let to_full = (capacity - bucket.tokens) / rate;
        Charge {
            cost,
            allowed,
            remaining: bucket.tokens.floor() as u64,
            reset_at: wall + chrono::Duration::milliseconds((to_full * 1000.0).ceil() as i64),
            retry_after_secs: (missing / rate).ceil() as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn budgets(capacity: u64, refill: u64) -> Budgets {
        Budgets::new(BudgetSettings {
            tenant: BucketSettings { capacity, refill_per_sec: refill },
            anonymous: BucketSettings { capacity: 10, refill_per_sec: 1 },
        })
    }

    #[test]
    fn a_bucket_refuses_what_it_does_not_hold_and_refills_with_time() {
        let b = budgets(1000, 100);
        let key = BudgetKey::Tenant(Uuid::nil());
        let t0 = Instant::now();
        let wall = Utc::now();
        let first = b.charge(&key, 700, t0, wall);
        assert!(first.allowed);
        assert_eq!(first.remaining, 300);
        let refused = b.charge(&key, 700, t0, wall);
        assert!(!refused.allowed);
        assert_eq!(refused.remaining, 300, "a refused charge takes nothing");
        assert_eq!(refused.retry_after_secs, 4);
        let later = b.charge(&key, 700, t0 + Duration::from_secs(4), wall);
        assert!(later.allowed);
        assert_eq!(later.remaining, 0);
    }

    #[test]
    fn tenants_do_not_share_buckets() {
        let b = budgets(100, 1);
        let now = Instant::now();
        assert!(b.charge(&BudgetKey::Tenant(Uuid::nil()), 100, now, Utc::now()).allowed);
        assert!(b.charge(&BudgetKey::Tenant(Uuid::max()), 100, now, Utc::now()).allowed);
        assert!(!b.charge(&BudgetKey::Tenant(Uuid::nil()), 1, now, Utc::now()).allowed);
    }

    #[test]
    fn capacity_zero_means_no_budget() {
        let b = budgets(0, 0);
        assert!(b.charge(&BudgetKey::Tenant(Uuid::nil()), 1_000_000, Instant::now(), Utc::now()).allowed);
    }
}
