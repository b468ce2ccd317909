//! DataLoaders, created per request around the caller's [`Reader`], so a batch never mixes two
//! tenants' scopes and every batched query carries the caller's visibility.
//!
//! Batching by time alone (the loaders' 1 ms window) splits a large nested page into several
//! statements when resolving it takes longer than the window. So the statement count does not
//! depend on timing, pages also *prefetch* the partners and customers their rows name (when the
//! query selects them) into the per-request caches of the by-id loaders, in one statement each.

use std::collections::HashMap;
use std::hash::Hash;
use std::marker::PhantomData;

use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, HashMapCache, Loader};
use async_graphql::{Context, SelectionField};
use entity::{audit_event, customer, partner, relationship, subscription, subscription_transfer};
use sea_orm::Condition;
use uuid::Uuid;

use crate::access::{PartnerLink, Reader, Visible};
use crate::graphql::types::filters::{CustomerListKey, PartnerFilter};

/// Loads visible rows by id; an invisible id loads nothing (the field resolves to `null`).
pub struct ById<E> {
    reader: Reader,
    _entity: PhantomData<fn() -> E>,
}

impl<E: Visible> Loader<Uuid> for ById<E>
where
    E::Model: Send + Sync + Clone,
{
    type Value = E::Model;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, E::Model>, Self::Error> {
        let rows = self.reader.by_ids::<E>(keys).await?;
        Ok(rows.into_iter().map(|row| (E::id_of(&row), row)).collect())
    }
}

/// A filter on a nested connection, usable as part of a batch key.
pub trait ChildFilter: Clone + Hash + Eq + Send + Sync + 'static {
    fn condition(&self, reader: &Reader) -> Condition;
}

/// The key of a nested page: whose children, how many, filtered how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildrenKey<F> {
    pub parent: Uuid,
    /// Rows to fetch (the page size plus one, to know whether more follow).
    pub limit: u64,
    pub filter: F,
    /// Which references of the rows to prefetch.
    pub refs: Refs,
}

/// Hashes the parent and the limit only: keys that differ only by filter or references (the same
/// parent's connection asked twice in one document with other arguments) are rare and still told
/// apart by `Eq`. A page's key is hashed about a dozen times on its way through priming, the
/// loader and its cache, and hashing every optional field of a filter each time was 3% of the
/// server's instructions for a page of 50 customers' subscriptions.
impl<F> Hash for ChildrenKey<F> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.parent.hash(state);
        self.limit.hash(state);
    }
}

/// The first rows of many parents' nested connections, one statement per (limit, filter) group.
pub struct Children<E: Visible, F> {
    reader: Reader,
    parent: E::Column,
    parent_of: fn(&E::Model) -> Option<Uuid>,
    refs: RefLoaders,
    _filter: PhantomData<fn() -> F>,
}

impl<E: Visible, F: ChildFilter> Loader<ChildrenKey<F>> for Children<E, F>
where
    E::Model: Send + Sync + Clone + References,
    E::Column: Send + Sync,
{
    /// Shared: the DataLoader copies a value into its cache, into the answer of the batch that
    /// primed it and into each later lookup; a page is copied out once, by the field that shows it.
    type Value = Arc<Vec<E::Model>>;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[ChildrenKey<F>]) -> Result<HashMap<ChildrenKey<F>, Self::Value>, Self::Error> {
        let mut groups: HashMap<(u64, F, Refs), Vec<Uuid>> = HashMap::new();
        for key in keys {
            groups.entry((key.limit, key.filter.clone(), key.refs)).or_default().push(key.parent);
        }
        let mut out = HashMap::new();
        for ((limit, filter, refs), parents) in groups {
            let rows =
                self.reader.first_per_parent::<E>(self.parent, &parents, filter.condition(&self.reader), limit).await?;
            self.refs.prefetch(&self.reader, &rows, refs).await?;
            let mut by_parent: HashMap<Uuid, Vec<E::Model>> = parents.iter().map(|p| (*p, Vec::new())).collect();
            for row in rows {
                if let Some(list) = (self.parent_of)(&row).and_then(|p| by_parent.get_mut(&p)) {
                    list.push(row);
                }
            }
            for (parent, list) in by_parent {
                out.insert(ChildrenKey { parent, limit, filter: filter.clone(), refs }, Arc::new(list));
            }
        }
        Ok(out)
    }
}

/// The totals of many parents' nested connections, one statement per filter.
pub struct ChildCounts<E: Visible, F> {
    reader: Reader,
    parent: E::Column,
    _filter: PhantomData<fn() -> F>,
}

impl<E: Visible, F: ChildFilter> Loader<(Uuid, F)> for ChildCounts<E, F>
where
    E::Column: Send + Sync,
{
    type Value = u64;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[(Uuid, F)]) -> Result<HashMap<(Uuid, F), u64>, Self::Error> {
        let mut groups: HashMap<F, Vec<Uuid>> = HashMap::new();
        for (parent, filter) in keys {
            groups.entry(filter.clone()).or_default().push(*parent);
        }
        let mut out = HashMap::new();
        for (filter, parents) in groups {
            let counts =
                self.reader.count_per_parent::<E>(self.parent, &parents, filter.condition(&self.reader)).await?;
            for parent in parents {
                out.insert((parent, filter.clone()), counts.get(&parent).copied().unwrap_or(0));
            }
        }
        Ok(out)
    }
}

/// `Partner.customers` of many partners: the first rows of each, in one statement per key group.
pub struct PartnerCustomers {
    reader: Reader,
}

impl Loader<ChildrenKey<CustomerListKey>> for PartnerCustomers {
    type Value = Vec<customer::Model>;
    type Error = async_graphql::Error;

    async fn load(
        &self,
        keys: &[ChildrenKey<CustomerListKey>],
    ) -> Result<HashMap<ChildrenKey<CustomerListKey>, Vec<customer::Model>>, Self::Error> {
        let mut groups: HashMap<(u64, CustomerListKey), Vec<Uuid>> = HashMap::new();
        for key in keys {
            groups.entry((key.limit, key.filter.clone())).or_default().push(key.parent);
        }
        let mut out = HashMap::new();
        for ((limit, list), parents) in groups {
            let sort = crate::graphql::types::customer::customer_sort(list.order());
            let rows =
                self.reader.first_customers_of_partners(&parents, list.filter().condition(), &sort, limit).await?;
            let mut by_parent: HashMap<Uuid, Vec<customer::Model>> = parents.iter().map(|p| (*p, Vec::new())).collect();
            for (parent, row) in rows {
                if let Some(list) = by_parent.get_mut(&parent) {
                    list.push(row);
                }
            }
            for (parent, rows) in by_parent {
                out.insert(ChildrenKey { parent, limit, filter: list.clone(), refs: Refs::default() }, rows);
            }
        }
        Ok(out)
    }
}

/// `Partner.customers { totalCount }` of many partners, one statement per filter.
pub struct PartnerCustomerCounts {
    reader: Reader,
}

impl Loader<(Uuid, CustomerListKey)> for PartnerCustomerCounts {
    type Value = u64;
    type Error = async_graphql::Error;

    async fn load(
        &self,
        keys: &[(Uuid, CustomerListKey)],
    ) -> Result<HashMap<(Uuid, CustomerListKey), u64>, Self::Error> {
        let mut groups: HashMap<CustomerListKey, Vec<Uuid>> = HashMap::new();
        for (parent, list) in keys {
            groups.entry(list.clone()).or_default().push(*parent);
        }
        let mut out = HashMap::new();
        for (list, parents) in groups {
            let counts = self.reader.count_customers_of_partners(&parents, list.filter().condition()).await?;
            for parent in parents {
                out.insert((parent, list.clone()), counts.get(&parent).copied().unwrap_or(0));
            }
        }
        Ok(out)
    }
}

/// Which linked partners, filtered how.
pub type LinkedPartnersKey = (PartnerLink, PartnerFilter);

/// `Partner.resellers`, `Partner.providers`, `Customer.partners` of many parents at once.
pub struct LinkedPartners {
    reader: Reader,
}

impl Loader<ChildrenKey<LinkedPartnersKey>> for LinkedPartners {
    type Value = Vec<partner::Model>;
    type Error = async_graphql::Error;

    async fn load(
        &self,
        keys: &[ChildrenKey<LinkedPartnersKey>],
    ) -> Result<HashMap<ChildrenKey<LinkedPartnersKey>, Vec<partner::Model>>, Self::Error> {
        let mut groups: HashMap<(u64, LinkedPartnersKey), Vec<Uuid>> = HashMap::new();
        for key in keys {
            groups.entry((key.limit, key.filter.clone())).or_default().push(key.parent);
        }
        let mut out = HashMap::new();
        for ((limit, (link, filter)), parents) in groups {
            let rows = self.reader.first_linked_partners(link, &parents, filter.condition(), limit).await?;
            let mut by_parent: HashMap<Uuid, Vec<partner::Model>> = parents.iter().map(|p| (*p, Vec::new())).collect();
            for (parent, row) in rows {
                if let Some(list) = by_parent.get_mut(&parent) {
                    list.push(row);
                }
            }
            for (parent, rows) in by_parent {
                out.insert(ChildrenKey { parent, limit, filter: (link, filter.clone()), refs: Refs::default() }, rows);
            }
        }
        Ok(out)
    }
}

/// Totals of [`LinkedPartners`], one statement per key group.
pub struct LinkedPartnerCounts {
    reader: Reader,
}

impl Loader<(Uuid, LinkedPartnersKey)> for LinkedPartnerCounts {
    type Value = u64;
    type Error = async_graphql::Error;

    async fn load(
        &self,
        keys: &[(Uuid, LinkedPartnersKey)],
    ) -> Result<HashMap<(Uuid, LinkedPartnersKey), u64>, Self::Error> {
        let mut groups: HashMap<LinkedPartnersKey, Vec<Uuid>> = HashMap::new();
        for (parent, key) in keys {
            groups.entry(key.clone()).or_default().push(*parent);
        }
        let mut out = HashMap::new();
        for ((link, filter), parents) in groups {
            let counts = self.reader.count_linked_partners(link, &parents, filter.condition()).await?;
            for parent in parents {
                out.insert((parent, (link, filter.clone())), counts.get(&parent).copied().unwrap_or(0));
            }
        }
        Ok(out)
    }
}

/// Filter of `Customer.subscriptions`.
pub type SubscriptionChildFilter = crate::graphql::types::filters::SubscriptionFilterKey;
/// Filter of `Customer.relationships`.
pub type RelationshipChildFilter = crate::graphql::types::filters::RelationshipFilterKey;

/// A by-id loader with a per-request cache.
pub type CachedById<E> = DataLoader<ById<E>, HashMapCache>;

/// Which references of a page's rows the query follows (and so are worth prefetching).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Refs {
    pub partners: bool,
    pub customers: bool,
}

impl Refs {
    /// Reads the selection under a connection field: does it follow any of `partner_fields` or
    /// `customer_fields` of its nodes?
    pub fn wanted(ctx: &Context<'_>, partner_fields: &[&str], customer_fields: &[&str]) -> Self {
        Self::of_field(&ctx.field(), partner_fields, customer_fields)
    }

    /// Like [`Refs::wanted`], for any connection field of the query.
    pub fn of_field(field: &SelectionField<'_>, partner_fields: &[&str], customer_fields: &[&str]) -> Self {
        let mut names = Vec::new();
        for child in field.selection_set() {
            match child.name() {
                "nodes" => names.extend(child.selection_set().map(|f| f.name())),
                "edges" => {
                    for edge_field in child.selection_set().filter(|f| f.name() == "node") {
                        names.extend(edge_field.selection_set().map(|f| f.name()));
                    }
                }
                _ => {}
            }
        }
        Self {
            partners: partner_fields.iter().any(|f| names.contains(f)),
            customers: customer_fields.iter().any(|f| names.contains(f)),
        }
    }
}

/// The fields of a subscription that follow a partner, and a customer.
pub const SUBSCRIPTION_REFS: (&[&str], &[&str]) = (&["partner", "reseller"], &["customer"]);
/// The fields of a relationship that follow a partner, and a customer.
pub const RELATIONSHIP_REFS: (&[&str], &[&str]) = (&["partner", "reseller", "indirectProvider"], &["customer"]);

/// The partners and customers a row names.
pub trait References {
    fn partner_ids(&self) -> Vec<Uuid>;
    fn customer_ids(&self) -> Vec<Uuid>;
}

impl References for subscription::Model {
    fn partner_ids(&self) -> Vec<Uuid> {
        self.partner_id.into_iter().chain(self.reseller_id).collect()
    }
    fn customer_ids(&self) -> Vec<Uuid> {
        vec![self.customer_id]
    }
}

impl References for relationship::Model {
    fn partner_ids(&self) -> Vec<Uuid> {
        std::iter::once(self.partner_id).chain(self.indirect_provider_id).collect()
    }
    fn customer_ids(&self) -> Vec<Uuid> {
        self.customer_id.into_iter().collect()
    }
}

impl References for subscription_transfer::Model {
    fn partner_ids(&self) -> Vec<Uuid> {
        vec![self.source_partner_id, self.target_partner_id]
    }
    fn customer_ids(&self) -> Vec<Uuid> {
        vec![self.customer_id]
    }
}

impl References for audit_event::Model {
    fn partner_ids(&self) -> Vec<Uuid> {
        self.partner_id.into_iter().chain(self.related_partner_id).collect()
    }
    fn customer_ids(&self) -> Vec<Uuid> {
        self.customer_id.into_iter().collect()
    }
}

/// The by-id loaders that prefetching fills.
#[derive(Clone)]
pub struct RefLoaders {
    pub partners: Arc<CachedById<partner::Entity>>,
    pub customers: Arc<CachedById<customer::Entity>>,
}

impl RefLoaders {
    /// Loads the visible partners and customers that `rows` name (one statement each, only for what
    /// `refs` asks) into the loaders' caches, so following the references costs no statement.
    pub async fn prefetch<'a, M: References + 'a>(
        &self,
        reader: &Reader,
        rows: impl IntoIterator<Item = &'a M>,
        refs: Refs,
    ) -> Result<(), async_graphql::Error> {
        let (mut partner_ids, mut customer_ids) = (Vec::new(), Vec::new());
        for row in rows {
            if refs.partners {
                partner_ids.extend(row.partner_ids());
            }
            if refs.customers {
                customer_ids.extend(row.customer_ids());
            }
        }
        // What an earlier page or lookup of this request already loaded costs nothing.
        if !partner_ids.is_empty() {
            let known = self.partners.get_cached_values::<Uuid>();
            partner_ids.retain(|id| !known.contains_key(id));
        }
        if !customer_ids.is_empty() {
            let known = self.customers.get_cached_values::<Uuid>();
            customer_ids.retain(|id| !known.contains_key(id));
        }
        if !partner_ids.is_empty() {
            partner_ids.sort_unstable();
            partner_ids.dedup();
            let found = reader.by_ids::<partner::Entity>(&partner_ids).await?;
            self.partners.feed_many(found.into_iter().map(|p| (p.id, p))).await;
        }
        if !customer_ids.is_empty() {
            customer_ids.sort_unstable();
            customer_ids.dedup();
            let found = reader.by_ids::<customer::Entity>(&customer_ids).await?;
            self.customers.feed_many(found.into_iter().map(|c| (c.id, c))).await;
        }
        Ok(())
    }
}

/// Every loader of one request.
pub struct Loaders {
    pub partners: Arc<CachedById<partner::Entity>>,
    pub customers: Arc<CachedById<customer::Entity>>,
    pub subscriptions: CachedById<subscription::Entity>,
    pub relationships: CachedById<relationship::Entity>,
    pub transfers: CachedById<subscription_transfer::Entity>,
    pub audit_events: CachedById<audit_event::Entity>,
    pub customer_subscriptions: DataLoader<Children<subscription::Entity, SubscriptionChildFilter>, HashMapCache>,
    pub customer_subscription_counts:
        DataLoader<ChildCounts<subscription::Entity, SubscriptionChildFilter>, HashMapCache>,
    pub customer_relationships: DataLoader<Children<relationship::Entity, RelationshipChildFilter>, HashMapCache>,
    pub customer_relationship_counts:
        DataLoader<ChildCounts<relationship::Entity, RelationshipChildFilter>, HashMapCache>,
    pub partner_customers: DataLoader<PartnerCustomers, HashMapCache>,
    pub partner_customer_counts: DataLoader<PartnerCustomerCounts, HashMapCache>,
    pub linked_partners: DataLoader<LinkedPartners, HashMapCache>,
    pub linked_partner_counts: DataLoader<LinkedPartnerCounts, HashMapCache>,
}

/// Loads `keys` through `loader`'s batch function now, in the calling task, and keeps the answers in
/// its cache, as `DataLoader::load_many` would, without its wait for more keys: `load_many` hands
/// its keys to a task of its own that sleeps through the batching window (1 ms, up to 2 with the
/// timer's granularity) before it loads, which only pays when keys arrive from many resolvers. A
/// caller that holds every key there will be (a page priming its rows' nested connections, a lookup
/// by id) loads them here, in the same statements. Keys already cached are not loaded again; the
/// answers are returned, cached ones included.
pub async fn prime<T, K>(
    loader: &DataLoader<T, HashMapCache>,
    keys: impl IntoIterator<Item = K>,
) -> Result<HashMap<K, T::Value>, T::Error>
where
    T: Loader<K>,
    K: Send + Sync + Hash + Eq + Clone + 'static,
{
    let mut known = loader.get_cached_values::<K>();
    let mut answers = HashMap::new();
    let mut wanted = std::collections::HashSet::new();
    for key in keys {
        match known.remove(&key) {
            Some(value) => {
                answers.insert(key, value);
            }
            None if !answers.contains_key(&key) => {
                wanted.insert(key);
            }
            None => {}
        }
    }
    if !wanted.is_empty() {
        let wanted: Vec<K> = wanted.into_iter().collect();
        let found = loader.loader().load(&wanted).await?;
        loader.feed_many(found.iter().map(|(key, value)| (key.clone(), value.clone()))).await;
        answers.extend(found);
    }
    Ok(answers)
}

/// Spawns a loader's batch in its own task, counting its SQL statements against the operation that
/// created the loaders (`metrics::counting_statements`: a task-local does not follow `tokio::spawn`).
fn spawner()
-> impl Fn(futures_util::future::BoxFuture<'static, ()>) -> tokio::task::JoinHandle<()> + Send + Sync + 'static {
    let counter = crate::metrics::current_statement_counter();
    move |batch| match counter.clone() {
        Some(counter) => tokio::spawn(crate::metrics::counting_statements(counter, batch)),
        None => tokio::spawn(batch),
    }
}

impl Loaders {
    /// Turns every cache off: for a subscription, whose context lives as long as the socket, each
    /// delivered event reads its node as it is then.
    pub fn disable_caches(&self) {
        self.partners.enable_all_cache(false);
        self.customers.enable_all_cache(false);
        self.subscriptions.enable_all_cache(false);
        self.relationships.enable_all_cache(false);
        self.transfers.enable_all_cache(false);
        self.audit_events.enable_all_cache(false);
        self.customer_subscriptions.enable_all_cache(false);
        self.customer_subscription_counts.enable_all_cache(false);
        self.customer_relationships.enable_all_cache(false);
        self.customer_relationship_counts.enable_all_cache(false);
        self.partner_customers.enable_all_cache(false);
        self.partner_customer_counts.enable_all_cache(false);
        self.linked_partners.enable_all_cache(false);
        self.linked_partner_counts.enable_all_cache(false);
    }

    pub fn new(reader: &Reader) -> Self {
        fn by_id<E: Visible>(reader: &Reader) -> CachedById<E>
        where
            E::Model: Send + Sync + Clone,
        {
            DataLoader::with_cache(
                ById { reader: reader.clone(), _entity: PhantomData },
                spawner(),
                HashMapCache::default(),
            )
        }
        let refs = RefLoaders { partners: Arc::new(by_id(reader)), customers: Arc::new(by_id(reader)) };
        Self {
            partners: refs.partners.clone(),
            customers: refs.customers.clone(),
            subscriptions: by_id(reader),
            relationships: by_id(reader),
            transfers: by_id(reader),
            audit_events: by_id(reader),
            customer_subscriptions: DataLoader::with_cache(
                Children {
                    reader: reader.clone(),
                    parent: subscription::Column::CustomerId,
                    parent_of: |s: &subscription::Model| Some(s.customer_id),
                    refs: refs.clone(),
                    _filter: PhantomData,
                },
                spawner(),
                HashMapCache::default(),
            ),
            customer_subscription_counts: DataLoader::with_cache(
                ChildCounts { reader: reader.clone(), parent: subscription::Column::CustomerId, _filter: PhantomData },
                spawner(),
                HashMapCache::default(),
            ),
            customer_relationships: DataLoader::with_cache(
                Children {
                    reader: reader.clone(),
                    parent: relationship::Column::CustomerId,
                    parent_of: |r: &relationship::Model| r.customer_id,
                    refs,
                    _filter: PhantomData,
                },
                spawner(),
                HashMapCache::default(),
            ),
            customer_relationship_counts: DataLoader::with_cache(
                ChildCounts { reader: reader.clone(), parent: relationship::Column::CustomerId, _filter: PhantomData },
                spawner(),
                HashMapCache::default(),
            ),
            partner_customers: DataLoader::with_cache(
                PartnerCustomers { reader: reader.clone() },
                spawner(),
                HashMapCache::default(),
            ),
            partner_customer_counts: DataLoader::with_cache(
                PartnerCustomerCounts { reader: reader.clone() },
                spawner(),
                HashMapCache::default(),
            ),
            linked_partners: DataLoader::with_cache(
                LinkedPartners { reader: reader.clone() },
                spawner(),
                HashMapCache::default(),
            ),
            linked_partner_counts: DataLoader::with_cache(
                LinkedPartnerCounts { reader: reader.clone() },
                spawner(),
                HashMapCache::default(),
            ),
        }
    }

    /// The loaders that prefetching fills.
    pub fn refs(&self) -> RefLoaders {
        RefLoaders { partners: self.partners.clone(), customers: self.customers.clone() }
    }
}
