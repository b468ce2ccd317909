//! The `Mutation` root: one object per area, merged. Resolvers parse the input into the domain's
//! types and call the domain layer, which runs each mutation in one transaction with its audit and
//! outbox events.

mod customers;
mod partners;
mod relationships;
mod subscriptions;
mod transfers;
mod webhooks;

use async_graphql::MergedObject;

/// Every change goes through here. Each mutation takes one `input` and returns a payload; it runs
/// in one database transaction with its audit event, and a failure changes nothing.
#[derive(MergedObject, Default)]
pub struct Mutation(
    partners::PartnerMutations,
    customers::CustomerMutations,
    relationships::RelationshipMutations,
    subscriptions::SubscriptionMutations,
    transfers::TransferMutations,
    webhooks::WebhookMutations,
);
