//! A small in-process cache of resolved tenants, so an authenticated request costs no database
//! round trip before GraphQL runs.
//!
//! How stale an entry may be, and why that is safe (`docs/operations.md`, "Tenant cache"):
//! - an entry lives at most the configured TTL (`PARTNERHUB_TENANT_CACHE_SECS`, default 5 s; 0 turns
//!   the cache off), and `setPartnerStatus` on this instance drops the partner's entry at once;
//! - writes never trust it: every mutation of a partner re-reads the partner row inside its
//!   transaction and applies R17 from that row ([`crate::domain::Writer::write`]), so a suspension
//!   stops the partner's writes at once, on every instance;
//! - reads only take the tenant's id from it: visibility is computed in SQL, per query, from the
//!   viewer's id and the relationships as they stand (`access`), so a terminated link stops
//!   reads at once whatever the cache holds;
//! - unknown tenants are not cached, so a tenant onboarded a moment ago signs in at once.
//!
//! A `Mutex<HashMap>` is enough: the lock is held for a lookup or an insert (no await inside), and
//! the map is bounded by dropping expired entries, then everything, when it is full.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use uuid::Uuid;

use super::Tenant;

/// Default most entries held.
pub const DEFAULT_CAPACITY: usize = 10_000;

/// Default time an entry is trusted.
pub const DEFAULT_TTL: Duration = Duration::from_secs(5);

/// Tenant id → its partner or customer row, for at most `ttl`.
pub struct TenantCache {
    ttl: Duration,
    capacity: usize,
    entries: Mutex<HashMap<Uuid, (Instant, Tenant)>>,
}

impl TenantCache {
    /// A cache holding at most `capacity` tenants for `ttl` each; a zero `ttl` or `capacity` turns
    /// it off (every lookup misses).
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self { ttl, capacity, entries: Mutex::new(HashMap::new()) }
    }

    fn enabled(&self) -> bool {
        !self.ttl.is_zero() && self.capacity > 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, (Instant, Tenant)>> {
        // Nothing can panic while the lock is held; a poisoned map is still a valid map.
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The tenant, when it was resolved less than the TTL ago.
    pub fn get(&self, tenant_id: Uuid) -> Option<Tenant> {
        if !self.enabled() {
            return None;
        }
        let mut entries = self.lock();
        match entries.get(&tenant_id) {
            Some((at, tenant)) if at.elapsed() < self.ttl => Some(tenant.clone()),
            Some(_) => {
                entries.remove(&tenant_id);
                None
            }
            None => None,
        }
    }

    /// Remembers a tenant just read from the database (the platform is never looked up, and
    /// unknown tenants are not remembered).
    pub fn insert(&self, tenant_id: Uuid, tenant: Tenant) {
        if !self.enabled() || matches!(tenant, Tenant::Platform) {
            return;
        }
        let mut entries = self.lock();
        if entries.len() >= self.capacity && !entries.contains_key(&tenant_id) {
            let ttl = self.ttl;
            entries.retain(|_, (at, _)| at.elapsed() < ttl);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(tenant_id, (Instant::now(), tenant));
    }

    /// Forgets a tenant (its row has just changed on this instance).
    pub fn invalidate(&self, tenant_id: Uuid) {
        self.lock().remove(&tenant_id);
    }

    /// Entries held (expired ones included until they are next touched).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_are_bounded_and_can_be_dropped() {
        let cache = TenantCache::new(Duration::from_millis(50), 2);
        let [a, b, c] = [Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4()];
        let customer = |id| Tenant::Customer(entity::customer::Model { id, ..fake_customer() });
        cache.insert(a, customer(a));
        cache.insert(b, customer(b));
        assert!(cache.get(a).is_some());
        cache.insert(c, customer(c));
        assert!(cache.len() <= 2, "bounded");
        assert!(cache.get(c).is_some());
        cache.invalidate(c);
        assert!(cache.get(c).is_none());
        cache.insert(a, customer(a));
        std::thread::sleep(Duration::from_millis(60));
        assert!(cache.get(a).is_none(), "expired");
        let off = TenantCache::new(Duration::ZERO, 10);
        off.insert(a, customer(a));
        assert!(off.get(a).is_none() && off.is_empty(), "a zero TTL turns the cache off");
    }

    fn fake_customer() -> entity::customer::Model {
        let now = chrono::Utc::now();
        entity::customer::Model {
            id: Uuid::nil(),
            tenant_id: Uuid::nil(),
            company_name: "C".into(),
            domain: "c.example".into(),
            country: "US".into(),
            cloud: entity::enums::Cloud::Public,
            version: 1,
            created_at: now,
            updated_at: now,
        }
    }
}
