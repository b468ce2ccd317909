//! `requestRelationship`, `inviteReseller`, `acceptRelationship`, `declineRelationship`,
//! `terminateRelationship`.

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};

use crate::domain::relationships::{self, Answer, RequestRelationship};
use crate::graphql::context::{RequestCtx, session};
use crate::graphql::ids::{self, NodeType};
use crate::graphql::types::Relationship;
use crate::graphql::types::enums::RelationshipKind;

/// A partner asks a customer, by domain, for a relationship.
#[derive(InputObject)]
pub struct RequestRelationshipInput {
    /// The customer's domain (the partner cannot see the customer before it accepts).
    pub customer_domain: String,
    /// `RESELLER` or `DELEGATED_ADMIN` (resellers are invited with `inviteReseller`).
    pub kind: RelationshipKind,
    /// Delegated admin: the roles asked for (`admin_agent`, `helpdesk_agent`).
    pub roles: Option<Vec<String>>,
    /// Delegated admin: how many days the grant lasts once accepted (1 to 730, default 730).
    pub duration_days: Option<i32>,
    /// An indirect reseller asking for a reseller relationship: the provider it sells through.
    pub indirect_provider_id: Option<ID>,
    /// A note for the customer.
    pub message: Option<String>,
}

/// An indirect provider invites an indirect reseller.
#[derive(InputObject)]
pub struct InviteResellerInput {
    /// The reseller (a partner of type `INDIRECT_RESELLER`).
    pub reseller_id: ID,
    /// A note for the reseller.
    pub message: Option<String>,
}

/// Acts on a relationship.
#[derive(InputObject)]
pub struct RelationshipActionInput {
    /// The relationship.
    pub id: ID,
    /// When given, the action applies only if the relationship still has this version.
    pub expected_version: Option<i32>,
}

/// The relationship a mutation made or changed.
#[derive(SimpleObject)]
pub struct RelationshipPayload {
    /// The relationship as it now stands.
    pub relationship: Relationship,
}

#[derive(Default)]
pub struct RelationshipMutations;

/// Relationships between partners and customers, and between providers and resellers.
#[Object]
impl RelationshipMutations {
    /// Asks a customer for a reseller relationship (partner `admin_agent`/`sales_agent`) or for
    /// delegated admin (`admin_agent`). The request expires after 90 days unanswered.
    async fn request_relationship(
        &self,
        ctx: &Context<'_>,
        input: RequestRelationshipInput,
    ) -> async_graphql::Result<RelationshipPayload> {
        let actor = RequestCtx::of(ctx)?.actor()?;
        let provider = input
            .indirect_provider_id
            .as_ref()
            .map(|id| ids::decode("indirectProviderId", NodeType::Partner, id))
            .transpose()?;
        let parsed = RequestRelationship::parse(
            &input.customer_domain,
            input.kind.into(),
            input.roles.as_deref(),
            input.duration_days,
            provider,
            input.message,
        )?;
        let relationship = relationships::request(&session(ctx)?.writer, &actor, parsed).await?;
        Ok(RelationshipPayload { relationship: Relationship(relationship) })
    }

    /// Invites an indirect reseller (indirect provider `admin_agent`).
    async fn invite_reseller(
        &self,
        ctx: &Context<'_>,
        input: InviteResellerInput,
    ) -> async_graphql::Result<RelationshipPayload> {
        let actor = RequestCtx::of(ctx)?.actor()?;
        let reseller = ids::decode("resellerId", NodeType::Partner, &input.reseller_id)?;
        let relationship =
            relationships::invite_reseller(&session(ctx)?.writer, &actor, reseller, input.message).await?;
        Ok(RelationshipPayload { relationship: Relationship(relationship) })
    }

    /// Accepts a PENDING request: the customer's `global_admin` (the invited reseller's
    /// `admin_agent` for an invitation). Delegated admin then lasts `durationDays`.
    async fn accept_relationship(
        &self,
        ctx: &Context<'_>,
        input: RelationshipActionInput,
    ) -> async_graphql::Result<RelationshipPayload> {
        answer(ctx, input, Answer::Accept).await
    }

    /// Declines a PENDING request (the invited party).
    async fn decline_relationship(
        &self,
        ctx: &Context<'_>,
        input: RelationshipActionInput,
    ) -> async_graphql::Result<RelationshipPayload> {
        answer(ctx, input, Answer::Decline).await
    }

    /// Ends an ACTIVE relationship (either party). A reseller relationship cannot end while
    /// subscriptions sold through it are ACTIVE; ending it ends the partner's delegated admin too.
    async fn terminate_relationship(
        &self,
        ctx: &Context<'_>,
        input: RelationshipActionInput,
    ) -> async_graphql::Result<RelationshipPayload> {
        let actor = RequestCtx::of(ctx)?.actor()?;
        let id = ids::decode("id", NodeType::Relationship, &input.id)?;
        let relationship = relationships::terminate(&session(ctx)?.writer, &actor, id, input.expected_version).await?;
        Ok(RelationshipPayload { relationship: Relationship(relationship) })
    }
}

async fn answer(
    ctx: &Context<'_>,
    input: RelationshipActionInput,
    answer: Answer,
) -> async_graphql::Result<RelationshipPayload> {
    let actor = RequestCtx::of(ctx)?.actor()?;
    let id = ids::decode("id", NodeType::Relationship, &input.id)?;
    let relationship = relationships::answer(&session(ctx)?.writer, &actor, id, input.expected_version, answer).await?;
    Ok(RelationshipPayload { relationship: Relationship(relationship) })
}
