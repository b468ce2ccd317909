//! DataLoaders, created per request around the caller's [`Reader`], so a batch never mixes two
//! tenants' scopes and every batched query carries the caller's visibility.

use std::collections::HashMap;
use std::hash::Hash;
use std::marker::PhantomData;

use async_graphql::dataloader::{DataLoader, Loader};
use entity::{audit_event, customer, partner, relationship, subscription, subscription_transfer};
use sea_orm::Condition;
use uuid::Uuid;

use crate::access::{Reader, Visible};

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
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChildrenKey<F> {
    pub parent: Uuid,
    /// Rows to fetch (the page size plus one, to know whether more follow).
    pub limit: u64,
    pub filter: F,
}

/// The first rows of many parents' nested connections, one statement per (limit, filter) group.
pub struct Children<E: Visible, F> {
    reader: Reader,
    parent: E::Column,
    parent_of: fn(&E::Model) -> Option<Uuid>,
    _filter: PhantomData<fn() -> F>,
}

impl<E: Visible, F: ChildFilter> Loader<ChildrenKey<F>> for Children<E, F>
where
    E::Model: Send + Sync + Clone,
    E::Column: Send + Sync,
{
    type Value = Vec<E::Model>;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[ChildrenKey<F>]) -> Result<HashMap<ChildrenKey<F>, Vec<E::Model>>, Self::Error> {
        let mut groups: HashMap<(u64, F), Vec<Uuid>> = HashMap::new();
        for key in keys {
            groups.entry((key.limit, key.filter.clone())).or_default().push(key.parent);
        }
        let mut out = HashMap::new();
        for ((limit, filter), parents) in groups {
            let rows =
                self.reader.first_per_parent::<E>(self.parent, &parents, filter.condition(&self.reader), limit).await?;
            let mut by_parent: HashMap<Uuid, Vec<E::Model>> = parents.iter().map(|p| (*p, Vec::new())).collect();
            for row in rows {
                if let Some(list) = (self.parent_of)(&row).and_then(|p| by_parent.get_mut(&p)) {
                    list.push(row);
                }
            }
            for (parent, list) in by_parent {
                out.insert(ChildrenKey { parent, limit, filter: filter.clone() }, list);
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

/// Filter of `Customer.subscriptions`.
pub type SubscriptionChildFilter = crate::graphql::types::filters::SubscriptionFilterKey;
/// Filter of `Customer.relationships`.
pub type RelationshipChildFilter = crate::graphql::types::filters::RelationshipFilterKey;

/// Every loader of one request.
pub struct Loaders {
    pub partners: DataLoader<ById<partner::Entity>>,
    pub customers: DataLoader<ById<customer::Entity>>,
    pub subscriptions: DataLoader<ById<subscription::Entity>>,
    pub relationships: DataLoader<ById<relationship::Entity>>,
    pub transfers: DataLoader<ById<subscription_transfer::Entity>>,
    pub audit_events: DataLoader<ById<audit_event::Entity>>,
    pub customer_subscriptions: DataLoader<Children<subscription::Entity, SubscriptionChildFilter>>,
    pub customer_subscription_counts: DataLoader<ChildCounts<subscription::Entity, SubscriptionChildFilter>>,
    pub customer_relationships: DataLoader<Children<relationship::Entity, RelationshipChildFilter>>,
    pub customer_relationship_counts: DataLoader<ChildCounts<relationship::Entity, RelationshipChildFilter>>,
}

impl Loaders {
    pub fn new(reader: &Reader) -> Self {
        fn by_id<E: Visible>(reader: &Reader) -> DataLoader<ById<E>>
        where
            E::Model: Send + Sync + Clone,
        {
            DataLoader::new(ById { reader: reader.clone(), _entity: PhantomData }, tokio::spawn)
        }
        Self {
            partners: by_id(reader),
            customers: by_id(reader),
            subscriptions: by_id(reader),
            relationships: by_id(reader),
            transfers: by_id(reader),
            audit_events: by_id(reader),
            customer_subscriptions: DataLoader::new(
                Children {
                    reader: reader.clone(),
                    parent: subscription::Column::CustomerId,
                    parent_of: |s| Some(s.customer_id),
                    _filter: PhantomData,
                },
                tokio::spawn,
            ),
            customer_subscription_counts: DataLoader::new(
                ChildCounts { reader: reader.clone(), parent: subscription::Column::CustomerId, _filter: PhantomData },
                tokio::spawn,
            ),
            customer_relationships: DataLoader::new(
                Children {
                    reader: reader.clone(),
                    parent: relationship::Column::CustomerId,
                    parent_of: |r| r.customer_id,
                    _filter: PhantomData,
                },
                tokio::spawn,
            ),
            customer_relationship_counts: DataLoader::new(
                ChildCounts { reader: reader.clone(), parent: relationship::Column::CustomerId, _filter: PhantomData },
                tokio::spawn,
            ),
        }
    }
}
