//! `serve --demo`: a small world to explore in GraphiQL, and a ready token for each of its tenants.
//! Tenant ids are fixed so tokens printed once keep working across restarts.

use chrono::{Duration, Utc};
use entity::enums::{
    BillingModel, Channel, Cloud, PartnerType, RelationshipKind as K, RelationshipStatus as S, TransferStatus,
};
use entity::partner;
use sea_orm::{DatabaseConnection, EntityTrait, PaginatorTrait, TransactionTrait};
use uuid::Uuid;

use crate::auth::jwt::{Claims, mint_hs256};
use crate::seed::{NewSubscription, Seed};

/// The secret `serve --demo` signs and verifies with when none is configured. Never use it for real.
pub const DEMO_SECRET: &str = "partnerhub-demo-secret-do-not-use-in-production";

/// A demo tenant and the token to act for it.
pub struct DemoTenant {
    pub label: &'static str,
    pub tenant_id: Uuid,
    pub roles: &'static [&'static str],
}

const fn id(n: u128) -> Uuid {
    Uuid::from_u128(0x0000_0000_0000_4000_8000_0000_0000_0000 | n)
}

/// The tenants of the demo world.
pub fn tenants(platform: Uuid) -> Vec<DemoTenant> {
    vec![
        DemoTenant { label: "platform (operator)", tenant_id: platform, roles: &["platform_admin"] },
        DemoTenant { label: "Contoso Direct (direct-bill partner)", tenant_id: id(0x101), roles: &["admin_agent"] },
        DemoTenant { label: "Fabrikam Cloud (direct-bill partner)", tenant_id: id(0x102), roles: &["admin_agent"] },
        DemoTenant {
            label: "Northwind Distribution (indirect provider)",
            tenant_id: id(0x103),
            roles: &["admin_agent"],
        },
        DemoTenant { label: "Tailspin Resellers (indirect reseller)", tenant_id: id(0x104), roles: &["admin_agent"] },
        DemoTenant {
            label: "Woodgrove Federal (US Government partner)",
            tenant_id: id(0x105),
            roles: &["admin_agent"],
        },
        DemoTenant { label: "Adatum Corporation (customer)", tenant_id: id(0x201), roles: &["global_admin"] },
        DemoTenant {
            label: "Litware Inc. (customer of an indirect reseller)",
            tenant_id: id(0x202),
            roles: &["global_admin"],
        },
        DemoTenant {
            label: "Relecloud (customer with no partner yet)",
            tenant_id: id(0x203),
            roles: &["global_admin"],
        },
    ]
}

/// Loads the demo world unless the database already has partners; returns whether it loaded.
pub async fn load(db: &DatabaseConnection) -> anyhow::Result<bool> {
    if partner::Entity::find().count(db).await? > 0 {
        return Ok(false);
    }
    let now = Utc::now();
    let txn = db.begin().await?;
    let seed = Seed::new(&txn, now);
    let contoso = seed
        .partner(id(0x101), "Contoso Direct", "contoso-direct.example", PartnerType::DirectBill, Cloud::Public)
        .await?;
    let fabrikam = seed
        .partner(id(0x102), "Fabrikam Cloud", "fabrikam-cloud.example", PartnerType::DirectBill, Cloud::Public)
        .await?;
    let northwind = seed
        .partner(id(0x103), "Northwind Distribution", "northwind.example", PartnerType::IndirectProvider, Cloud::Public)
        .await?;
    let tailspin = seed
        .partner(id(0x104), "Tailspin Resellers", "tailspin.example", PartnerType::IndirectReseller, Cloud::Public)
        .await?;
    let woodgrove = seed
        .partner(
            id(0x105),
            "Woodgrove Federal",
            "woodgrove-federal.example",
            PartnerType::DirectBill,
            Cloud::UsGovernment,
        )
        .await?;

    let adatum = seed.customer(id(0x201), "Adatum Corporation", "adatum.example", "US", Cloud::Public).await?;
    let litware = seed.customer(id(0x202), "Litware Inc.", "litware.example", "DE", Cloud::Public).await?;
    let relecloud = seed.customer(id(0x203), "Relecloud", "relecloud.example", "GB", Cloud::Public).await?;
    let springfield =
        seed.customer(id(0x204), "City of Springfield", "springfield-gov.example", "US", Cloud::UsGovernment).await?;

    let da_until = Some(now + Duration::days(700));
    seed.relationship(K::IndirectReseller, S::Active, tailspin.id, None, Some(northwind.id), "", None).await?;
    seed.relationship(K::Reseller, S::Active, contoso.id, Some(&adatum), None, "", None).await?;
    seed.relationship(
        K::DelegatedAdmin,
        S::Active,
        contoso.id,
        Some(&adatum),
        None,
        "admin_agent,helpdesk_agent",
        da_until,
    )
    .await?;
    seed.relationship(K::Reseller, S::Active, fabrikam.id, Some(&adatum), None, "", None).await?;
    seed.relationship(K::Reseller, S::Active, tailspin.id, Some(&litware), Some(northwind.id), "", None).await?;
    seed.relationship(K::Reseller, S::Active, woodgrove.id, Some(&springfield), None, "", None).await?;
    seed.relationship(K::Reseller, S::Pending, fabrikam.id, Some(&relecloud), None, "", Some(now + Duration::days(90)))
        .await?;
    seed.relationship(
        K::DelegatedAdmin,
        S::Pending,
        fabrikam.id,
        Some(&adatum),
        None,
        "helpdesk_agent",
        Some(now + Duration::days(90)),
    )
    .await?;

    seed.subscription(NewSubscription::csp(adatum.id, contoso.id, None, BillingModel::LicenseBased), 3).await?;
    let azure =
        seed.subscription(NewSubscription::csp(adatum.id, contoso.id, None, BillingModel::UsageBased), 40).await?;
    seed.subscription(
        NewSubscription::external(adatum.id, Channel::EnterpriseAgreement, BillingModel::UsageBased, "EA-8812345"),
        200,
    )
    .await?;
    seed.subscription(
        NewSubscription::external(adatum.id, Channel::Open, BillingModel::LicenseBased, "OPEN-55120"),
        100,
    )
    .await?;
    seed.subscription(
        NewSubscription::csp(litware.id, northwind.id, Some(tailspin.id), BillingModel::LicenseBased),
        20,
    )
    .await?;
    seed.subscription(NewSubscription::csp(litware.id, northwind.id, Some(tailspin.id), BillingModel::UsageBased), 20)
        .await?;
    seed.subscription(
        NewSubscription::external(relecloud.id, Channel::Direct, BillingModel::UsageBased, "DIRECT-7781"),
        60,
    )
    .await?;
    seed.subscription(NewSubscription::csp(springfield.id, woodgrove.id, None, BillingModel::LicenseBased), 10).await?;
    seed.transfer(&azure, fabrikam.id, TransferStatus::Pending, now + Duration::days(30)).await?;
    txn.commit().await?;
    Ok(true)
}

/// A demo token for `tenant`, valid for 12 hours.
pub fn token(secret: &str, tenant: &DemoTenant) -> anyhow::Result<String> {
    let now = Utc::now().timestamp();
    let claims = Claims {
        tid: tenant.tenant_id,
        sub: format!("demo-user@{}", tenant.tenant_id.simple()),
        exp: now + 12 * 3600,
        roles: tenant.roles.iter().map(|r| (*r).to_owned()).collect(),
        nbf: None,
        iat: Some(now),
    };
    mint_hs256(secret, &claims)
}
