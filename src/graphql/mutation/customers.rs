//! `createCustomer`.

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use uuid::Uuid;

use crate::domain::customers::{self, CreateCustomer};
use crate::graphql::context::{RequestCtx, session};
use crate::graphql::ids::{self, NodeType};
use crate::graphql::types::enums::Cloud;
use crate::graphql::types::{Customer, Relationship};

/// Creates a customer organisation.
#[derive(InputObject)]
pub struct CreateCustomerInput {
    /// The customer's tenant id; generated when absent.
    pub tenant_id: Option<Uuid>,
    /// The company's name.
    pub company_name: String,
    /// Its primary domain (unique across partners and customers; not a partner's).
    pub domain: String,
    /// ISO 3166-1 alpha-2 country code.
    pub country: String,
    /// The cloud it lives in (default: the creating partner's, or `PUBLIC`).
    pub cloud: Option<Cloud>,
    /// Indirect providers only: the reseller the customer is created for.
    pub reseller_id: Option<ID>,
    /// Repeat a call safely: the same key with the same input answers the first result.
    pub idempotency_key: Option<String>,
}

/// The customer a `createCustomer` made.
#[derive(SimpleObject)]
pub struct CreateCustomerPayload {
    /// The new customer.
    pub customer: Customer,
    /// The ACTIVE reseller relationship with the creating partner (`null` when the platform created it).
    pub relationship: Option<Relationship>,
}

#[derive(Default)]
pub struct CustomerMutations;

/// Creating customers.
#[Object]
impl CustomerMutations {
    /// Creates a customer (`platform_admin`, or a partner's `admin_agent`/`sales_agent`, which then
    /// gets an ACTIVE reseller relationship with it).
    async fn create_customer(
        &self,
        ctx: &Context<'_>,
        input: CreateCustomerInput,
    ) -> async_graphql::Result<CreateCustomerPayload> {
        let rc = RequestCtx::of(ctx)?;
        let actor = rc.actor()?;
        let reseller_id =
            input.reseller_id.as_ref().map(|id| ids::decode("resellerId", NodeType::Partner, id)).transpose()?;
        let parsed = CreateCustomer::parse(
            input.tenant_id,
            &input.company_name,
            &input.domain,
            &input.country,
            input.cloud.map(Into::into),
            reseller_id,
            input.idempotency_key.as_deref(),
        )?;
        let created = customers::create(&session(ctx)?.writer, &actor, parsed).await?;
        Ok(CreateCustomerPayload {
            customer: Customer(created.customer),
            relationship: created.relationship.map(Relationship),
        })
    }
}
