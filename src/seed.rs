//! Direct inserts into the data layer, for the demo world and for tests that build worlds without the
//! write path. They keep the database's own integrity rules (registry rows, foreign keys) but apply
//! no business rule: callers decide what world they want.

use chrono::{DateTime, Duration, Utc};
use entity::enums::{
    BillingModel, Channel, Cloud, PartnerStatus, PartnerType, RelationshipKind, RelationshipStatus, SubscriptionStatus,
    TenantKind, TransferStatus,
};
use entity::{customer, partner, relationship, subscription, subscription_transfer, tenant};
use sea_orm::{ActiveModelTrait, ConnectionTrait, DbErr, IntoActiveModel};
use uuid::Uuid;

/// Inserts rows stamped with one instant.
pub struct Seed<'a, C: ConnectionTrait> {
    pub db: &'a C,
    pub now: DateTime<Utc>,
}

/// What a seeded subscription looks like (the rest is derived).
#[derive(Debug, Clone)]
pub struct NewSubscription {
    pub customer_id: Uuid,
    pub offer_id: String,
    pub offer_name: String,
    pub billing_model: BillingModel,
    pub channel: Channel,
    pub partner_id: Option<Uuid>,
    pub reseller_id: Option<Uuid>,
    pub quantity: Option<i32>,
    pub status: SubscriptionStatus,
    pub term_months: Option<i32>,
    pub auto_renew: bool,
    pub external_reference: Option<String>,
    pub migrated_from_id: Option<Uuid>,
}

impl NewSubscription {
    /// A CSP subscription sold by `partner_id` (and `reseller_id` for indirect sales).
    pub fn csp(customer_id: Uuid, partner_id: Uuid, reseller_id: Option<Uuid>, billing_model: BillingModel) -> Self {
        let license = billing_model == BillingModel::LicenseBased;
        Self {
            customer_id,
            offer_id: if license { "CFQ7TTC0LH18".into() } else { "DZH318Z0BQ3Q".into() },
            offer_name: if license { "Microsoft 365 Business Basic".into() } else { "Azure plan".into() },
            billing_model,
            channel: Channel::Csp,
            partner_id: Some(partner_id),
            reseller_id,
            quantity: license.then_some(10),
            status: SubscriptionStatus::Active,
            term_months: license.then_some(12),
            auto_renew: true,
            external_reference: None,
            migrated_from_id: None,
        }
    }

    /// A subscription bought through another channel.
    pub fn external(customer_id: Uuid, channel: Channel, billing_model: BillingModel, reference: &str) -> Self {
        let license = billing_model == BillingModel::LicenseBased;
        Self {
            customer_id,
            offer_id: if license { "OPEN-O365-E3".into() } else { "EA-AZURE".into() },
            offer_name: if license { "Office 365 E3 (Open)".into() } else { "Azure (Enterprise Agreement)".into() },
            billing_model,
            channel,
            partner_id: None,
            reseller_id: None,
            quantity: license.then_some(25),
            status: SubscriptionStatus::Active,
            term_months: license.then_some(12),
            auto_renew: true,
            external_reference: Some(reference.into()),
            migrated_from_id: None,
        }
    }
}

impl<'a, C: ConnectionTrait> Seed<'a, C> {
    pub fn new(db: &'a C, now: DateTime<Utc>) -> Self {
        Self { db, now }
    }

    async fn register(&self, tenant_id: Uuid, kind: TenantKind, domain: &str) -> Result<(), DbErr> {
        tenant::Model { tenant_id, kind, domain: domain.to_lowercase(), created_at: self.now }
            .into_active_model()
            .insert(self.db)
            .await?;
        Ok(())
    }

    /// A partner (and its registry row).
    pub async fn partner(
        &self,
        tenant_id: Uuid,
        name: &str,
        domain: &str,
        partner_type: PartnerType,
        cloud: Cloud,
    ) -> Result<partner::Model, DbErr> {
        self.register(tenant_id, TenantKind::Partner, domain).await?;
        partner::Model {
            id: Uuid::now_v7(),
            tenant_id,
            name: name.into(),
            domain: domain.to_lowercase(),
            partner_type,
            partner_network_id: format!("PNID-{}", &tenant_id.simple().to_string()[20..]),
            cloud,
            status: PartnerStatus::Active,
            version: 1,
            created_at: self.now,
            updated_at: self.now,
        }
        .into_active_model()
        .insert(self.db)
        .await
    }

    /// A customer (and its registry row).
    pub async fn customer(
        &self,
        tenant_id: Uuid,
        company_name: &str,
        domain: &str,
        country: &str,
        cloud: Cloud,
    ) -> Result<customer::Model, DbErr> {
        self.register(tenant_id, TenantKind::Customer, domain).await?;
        customer::Model {
            id: Uuid::now_v7(),
            tenant_id,
            company_name: company_name.into(),
            domain: domain.to_lowercase(),
            country: country.into(),
            cloud,
            version: 1,
            created_at: self.now,
            updated_at: self.now,
        }
        .into_active_model()
        .insert(self.db)
        .await
    }

    /// An ACTIVE reseller link between a partner and a customer (what `createCustomer` leaves).
    pub async fn reseller_link(
        &self,
        partner_id: Uuid,
        customer: &customer::Model,
    ) -> Result<relationship::Model, DbErr> {
        self.relationship(
            RelationshipKind::Reseller,
            RelationshipStatus::Active,
            partner_id,
            Some(customer),
            None,
            "",
            None,
        )
        .await
    }

    /// A relationship in any state. `expires_at` bounds a pending request or an active grant.
    #[allow(clippy::too_many_arguments)]
    pub async fn relationship(
        &self,
        kind: RelationshipKind,
        status: RelationshipStatus,
        partner_id: Uuid,
        customer: Option<&customer::Model>,
        indirect_provider_id: Option<Uuid>,
        roles: &str,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<relationship::Model, DbErr> {
        let answered = status != RelationshipStatus::Pending;
        relationship::Model {
            id: Uuid::now_v7(),
            kind,
            status,
            partner_id,
            customer_id: customer.map(|c| c.id),
            indirect_provider_id,
            customer_domain: customer.map(|c| c.domain.clone()),
            roles: roles.into(),
            duration_days: (kind == RelationshipKind::DelegatedAdmin).then_some(730),
            message: None,
            requested_at: self.now - Duration::days(1),
            responded_at: answered.then_some(self.now),
            terminated_at: (status == RelationshipStatus::Terminated).then_some(self.now),
            expires_at,
            version: 1,
            created_at: self.now,
            updated_at: self.now,
        }
        .into_active_model()
        .insert(self.db)
        .await
    }

    /// A subscription whose current term started `started_days_ago`.
    pub async fn subscription(
        &self,
        new: NewSubscription,
        started_days_ago: i64,
    ) -> Result<subscription::Model, DbErr> {
        let term_start = self.now - Duration::days(started_days_ago);
        let term_end = new.term_months.map(|m| crate::domain::lifecycle::add_months(term_start, m));
        let window = (new.channel == Channel::Csp && new.billing_model == BillingModel::LicenseBased)
            .then_some(term_start + Duration::hours(168));
        subscription::Model {
            id: Uuid::now_v7(),
            customer_id: new.customer_id,
            offer_id: new.offer_id,
            offer_name: new.offer_name,
            billing_model: new.billing_model,
            channel: new.channel,
            partner_id: new.partner_id,
            reseller_id: new.reseller_id,
            quantity: new.quantity,
            status: new.status,
            term_months: new.term_months,
            term_start,
            term_end,
            auto_renew: new.auto_renew,
            cancellation_allowed_until: window,
            external_reference: new.external_reference,
            migrated_from_id: new.migrated_from_id,
            version: 1,
            created_at: self.now,
            updated_at: self.now,
            cancelled_at: (new.status == SubscriptionStatus::Cancelled).then_some(self.now),
        }
        .into_active_model()
        .insert(self.db)
        .await
    }

    /// A transfer of `subscription` to `target_partner_id`.
    pub async fn transfer(
        &self,
        subscription: &subscription::Model,
        target_partner_id: Uuid,
        status: TransferStatus,
        expires_at: DateTime<Utc>,
    ) -> Result<subscription_transfer::Model, DbErr> {
        let source = subscription.partner_id.ok_or_else(|| DbErr::Custom("only CSP subscriptions transfer".into()))?;
        subscription_transfer::Model {
            id: Uuid::now_v7(),
            subscription_id: subscription.id,
            customer_id: subscription.customer_id,
            source_partner_id: source,
            target_partner_id,
            status,
            requested_at: self.now,
            responded_at: (status != TransferStatus::Pending).then_some(self.now),
            expires_at,
            version: 1,
            created_at: self.now,
            updated_at: self.now,
        }
        .into_active_model()
        .insert(self.db)
        .await
    }
}

impl<C: ConnectionTrait> Seed<'_, C> {
    /// An audit event, as the write path would record it.
    pub async fn audit_event(
        &self,
        actor_tenant_id: Uuid,
        action: &str,
        partner_id: Option<Uuid>,
        related_partner_id: Option<Uuid>,
        customer_id: Option<Uuid>,
    ) -> Result<entity::audit_event::Model, DbErr> {
        entity::audit_event::Model {
            id: Uuid::now_v7(),
            occurred_at: self.now,
            actor_tenant_id,
            actor_subject: "seed".into(),
            action: action.into(),
            target_type: "Customer".into(),
            target_id: customer_id.unwrap_or_else(Uuid::now_v7),
            partner_id,
            related_partner_id,
            customer_id,
            details: serde_json::json!({}),
            request_id: "seed".into(),
        }
        .into_active_model()
        .insert(self.db)
        .await
    }
}
