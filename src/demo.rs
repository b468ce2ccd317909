//! `serve --demo`: a small world to explore in GraphiQL, and a ready token for each of its tenants.
//!
//! The world is built through the GraphQL mutations themselves, as each tenant would (the platform
//! onboards partners, customers accept requests, partners sell), so the demo exercises the real write
//! path and its audit trail shows the stories of the README. Tenant ids are fixed so tokens printed
//! once keep working across restarts.

use anyhow::{Context as _, bail};
use chrono::Utc;
use entity::partner;
use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::auth::jwt::{Claims, mint_hs256};
use crate::auth::resolve_principal;
use crate::graphql::context::RequestCtx;
use crate::state::AppState;

/// The secret `serve --demo` signs and verifies with when none is configured. Never use it for real.
pub const DEMO_SECRET: &str = "partnerhub-demo-secret-do-not-use-in-production";

/// A demo tenant and the roles of its demo token.
pub struct DemoTenant {
    pub label: &'static str,
    pub tenant_id: Uuid,
    pub roles: &'static [&'static str],
}

const fn id(n: u128) -> Uuid {
    Uuid::from_u128(0x0000_0000_0000_4000_8000_0000_0000_0000 | n)
}

const CONTOSO: Uuid = id(0x101);
const FABRIKAM: Uuid = id(0x102);
const NORTHWIND: Uuid = id(0x103);
const TAILSPIN: Uuid = id(0x104);
const WOODGROVE: Uuid = id(0x105);
const ADATUM: Uuid = id(0x201);
const LITWARE: Uuid = id(0x202);
const RELECLOUD: Uuid = id(0x203);
const SPRINGFIELD: Uuid = id(0x204);

/// The tenants of the demo world.
pub fn tenants(platform: Uuid) -> Vec<DemoTenant> {
    vec![
        DemoTenant { label: "platform (operator)", tenant_id: platform, roles: &["platform_admin"] },
        DemoTenant { label: "Contoso Direct (direct-bill partner)", tenant_id: CONTOSO, roles: &["admin_agent"] },
        DemoTenant { label: "Fabrikam Cloud (direct-bill partner)", tenant_id: FABRIKAM, roles: &["admin_agent"] },
        DemoTenant {
            label: "Northwind Distribution (indirect provider)",
            tenant_id: NORTHWIND,
            roles: &["admin_agent"],
        },
        DemoTenant { label: "Tailspin Resellers (indirect reseller)", tenant_id: TAILSPIN, roles: &["admin_agent"] },
        DemoTenant {
            label: "Woodgrove Federal (US Government partner)",
            tenant_id: WOODGROVE,
            roles: &["admin_agent"],
        },
        DemoTenant { label: "Adatum Corporation (customer)", tenant_id: ADATUM, roles: &["global_admin"] },
        DemoTenant {
            label: "Litware Inc. (customer of an indirect reseller)",
            tenant_id: LITWARE,
            roles: &["global_admin"],
        },
        DemoTenant {
            label: "Relecloud (customer with no partner yet)",
            tenant_id: RELECLOUD,
            roles: &["global_admin"],
        },
        DemoTenant {
            label: "City of Springfield (US Government customer)",
            tenant_id: SPRINGFIELD,
            roles: &["global_admin"],
        },
    ]
}

/// Runs one GraphQL operation as `tenant` with `roles`, in-process; fails on any error.
async fn run(state: &AppState, tenant: Uuid, roles: &[&str], query: &str, variables: Value) -> anyhow::Result<Value> {
    let claims = Claims {
        tid: tenant,
        sub: "demo-loader".into(),
        exp: Utc::now().timestamp() + 600,
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        nbf: None,
        iat: None,
    };
    let principal = resolve_principal(&state.db, state.settings.platform_tenant, claims)
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    let ctx = RequestCtx::new(
        state.db.clone().into(),
        state.feed.commits(),
        Some(principal),
        state.clock.now(),
        state.settings.limits,
        chrono::Duration::hours(state.settings.cancellation_window_hours),
        format!("demo-{}", Uuid::now_v7()),
    );
    let request =
        async_graphql::Request::new(query).variables(async_graphql::Variables::from_json(variables)).data(ctx);
    let response = state.schema.execute(request).await;
    if let Some(error) = response.errors.first() {
        bail!("demo step failed: {} ({query})", error.message);
    }
    response.data.into_json().context("demo response")
}

/// Reads a string at a JSON pointer of a response.
fn at(value: &Value, pointer: &str) -> anyhow::Result<String> {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .with_context(|| format!("no {pointer} in {value}"))
}

const ONBOARD: &str = "mutation($i: OnboardPartnerInput!) { onboardPartner(input: $i) { partner { id } } }";
const CREATE_CUSTOMER: &str = "mutation($i: CreateCustomerInput!) { createCustomer(input: $i) { customer { id } } }";
const REQUEST: &str =
    "mutation($i: RequestRelationshipInput!) { requestRelationship(input: $i) { relationship { id } } }";
const ACCEPT: &str = "mutation($i: RelationshipActionInput!) { acceptRelationship(input: $i) { relationship { id } } }";
const INVITE: &str = "mutation($i: InviteResellerInput!) { inviteReseller(input: $i) { relationship { id } } }";
const SELL: &str = "mutation($i: CreateSubscriptionInput!) { createSubscription(input: $i) { subscription { id } } }";
const REGISTER: &str = "mutation($i: RegisterExternalSubscriptionInput!) { registerExternalSubscription(input: $i) { subscription { id } } }";
const MIGRATE: &str =
    "mutation($i: MigrateUsageSubscriptionInput!) { migrateUsageSubscription(input: $i) { subscription { id } } }";
const ACCEPT_TRANSFER: &str =
    "mutation($i: TransferActionInput!) { acceptSubscriptionTransfer(input: $i) { transfer { id } } }";
const TRANSFER: &str =
    "mutation($i: RequestTransferInput!) { requestSubscriptionTransfer(input: $i) { transfer { id } } }";

/// Loads the demo world unless the database already has partners; returns whether it loaded.
pub async fn load(state: &AppState) -> anyhow::Result<bool> {
    if partner::Entity::find().count(&state.db).await? > 0 {
        return Ok(false);
    }
    let platform = state.settings.platform_tenant;
    let admin = &["platform_admin"][..];
    let agent = &["admin_agent"][..];
    let global = &["global_admin"][..];

    // The platform onboards the partners.
    let mut partners = std::collections::HashMap::new();
    for (tenant, name, domain, kind, cloud) in [
        (CONTOSO, "Contoso Direct", "contoso-direct.example", "DIRECT_BILL", "PUBLIC"),
        (FABRIKAM, "Fabrikam Cloud", "fabrikam-cloud.example", "DIRECT_BILL", "PUBLIC"),
        (NORTHWIND, "Northwind Distribution", "northwind.example", "INDIRECT_PROVIDER", "PUBLIC"),
        (TAILSPIN, "Tailspin Resellers", "tailspin.example", "INDIRECT_RESELLER", "PUBLIC"),
        (WOODGROVE, "Woodgrove Federal", "woodgrove-federal.example", "DIRECT_BILL", "US_GOVERNMENT"),
    ] {
        let input = json!({"tenantId": tenant, "name": name, "domain": domain, "partnerType": kind,
            "partnerNetworkId": format!("PN-{}", &tenant.simple().to_string()[26..]), "cloud": cloud});
        let data = run(state, platform, admin, ONBOARD, json!({"i": input})).await?;
        partners.insert(tenant, at(&data, "/onboardPartner/partner/id")?);
    }

    // Multi-channel: Adatum bought directly from the vendor (the platform created it) under an
    // Enterprise Agreement and through Open licensing.
    let adatum = run(state, platform, admin, CREATE_CUSTOMER,
        json!({"i": {"tenantId": ADATUM, "companyName": "Adatum Corporation", "domain": "adatum.example", "country": "US"}})).await?;
    let adatum = at(&adatum, "/createCustomer/customer/id")?;
    let ea = run(state, ADATUM, global, REGISTER, json!({"i": {"customerId": adatum, "channel": "ENTERPRISE_AGREEMENT",
        "externalReference": "EA-8812345", "offerId": "EA-AZURE", "offerName": "Azure (Enterprise Agreement)", "billingModel": "USAGE_BASED"}})).await?;
    let ea = at(&ea, "/registerExternalSubscription/subscription/id")?;
    run(state, ADATUM, global, REGISTER, json!({"i": {"customerId": adatum, "channel": "OPEN", "externalReference": "OPEN-55120",
        "offerId": "OPEN-O365-E3", "offerName": "Office 365 E3 (Open)", "billingModel": "LICENSE_BASED", "quantity": 25}})).await?;

    // Contoso asks to become Adatum's reseller and its delegated admin; Adatum accepts both.
    for input in [
        json!({"customerDomain": "adatum.example", "kind": "RESELLER", "message": "Contoso would like to be your CSP partner"}),
        json!({"customerDomain": "adatum.example", "kind": "DELEGATED_ADMIN", "roles": ["admin_agent", "helpdesk_agent"], "durationDays": 730}),
    ] {
        let request = run(state, CONTOSO, agent, REQUEST, json!({"i": input})).await?;
        let rel = at(&request, "/requestRelationship/relationship/id")?;
        run(state, ADATUM, global, ACCEPT, json!({"i": {"id": rel}})).await?;
    }
    // Contoso sells Microsoft 365 seats and an Azure plan, and moves the EA Azure usage to CSP
    // (both stay active: CSP coexists with the other channels).
    run(state, CONTOSO, agent, SELL, json!({"i": {"customerId": adatum, "offerId": "CFQ7TTC0LH18",
        "offerName": "Microsoft 365 Business Basic", "billingModel": "LICENSE_BASED", "quantity": 10, "termMonths": 12}})).await?;
    let azure = run(
        state,
        CONTOSO,
        agent,
        SELL,
        json!({"i": {"customerId": adatum, "offerId": "DZH318Z0BQ3Q",
        "offerName": "Azure plan", "billingModel": "USAGE_BASED"}}),
    )
    .await?;
    let azure = at(&azure, "/createSubscription/subscription/id")?;
    run(
        state,
        CONTOSO,
        agent,
        MIGRATE,
        json!({"i": {"sourceSubscriptionId": ea, "offerName": "Azure plan (migrated from EA)"}}),
    )
    .await?;

    // Partner switch: Fabrikam becomes Adatum's reseller too and asks for Contoso's Azure plan.
    let request =
        run(state, FABRIKAM, agent, REQUEST, json!({"i": {"customerDomain": "adatum.example", "kind": "RESELLER"}}))
            .await?;
    run(state, ADATUM, global, ACCEPT, json!({"i": {"id": at(&request, "/requestRelationship/relationship/id")?}}))
        .await?;
    run(state, FABRIKAM, agent, TRANSFER, json!({"i": {"subscriptionId": azure}})).await?;
    // An earlier switch already happened: Contoso's dev/test Azure plan moved to Fabrikam.
    let devtest = run(
        state,
        CONTOSO,
        agent,
        SELL,
        json!({"i": {"customerId": adatum, "offerId": "DZH318Z0BQ3Q",
        "offerName": "Azure plan (dev/test)", "billingModel": "USAGE_BASED"}}),
    )
    .await?;
    let devtest = at(&devtest, "/createSubscription/subscription/id")?;
    let moved = run(state, FABRIKAM, agent, TRANSFER, json!({"i": {"subscriptionId": devtest}})).await?;
    run(
        state,
        CONTOSO,
        agent,
        ACCEPT_TRANSFER,
        json!({"i": {"id": at(&moved, "/requestSubscriptionTransfer/transfer/id")?}}),
    )
    .await?;
    // Fabrikam's delegated-admin request is still waiting for Adatum.
    run(
        state,
        FABRIKAM,
        agent,
        REQUEST,
        json!({"i": {"customerDomain": "adatum.example", "kind": "DELEGATED_ADMIN", "roles": ["helpdesk_agent"]}}),
    )
    .await?;

    // Indirect: Northwind invites Tailspin, Tailspin accepts; Northwind creates Litware for Tailspin
    // and sells through it.
    let invite = run(state, NORTHWIND, agent, INVITE, json!({"i": {"resellerId": partners[&TAILSPIN]}})).await?;
    run(state, TAILSPIN, agent, ACCEPT, json!({"i": {"id": at(&invite, "/inviteReseller/relationship/id")?}})).await?;
    let litware = run(
        state,
        NORTHWIND,
        agent,
        CREATE_CUSTOMER,
        json!({"i": {"tenantId": LITWARE, "companyName": "Litware Inc.",
        "domain": "litware.example", "country": "DE", "resellerId": partners[&TAILSPIN]}}),
    )
    .await?;
    let litware = at(&litware, "/createCustomer/customer/id")?;
    run(
        state,
        NORTHWIND,
        agent,
        SELL,
        json!({"i": {"customerId": litware, "offerId": "CFQ7TTC0LH18", "offerName": "Microsoft 365 Business Basic",
        "billingModel": "LICENSE_BASED", "quantity": 40, "termMonths": 36, "resellerId": partners[&TAILSPIN]}}),
    )
    .await?;
    run(
        state,
        NORTHWIND,
        agent,
        SELL,
        json!({"i": {"customerId": litware, "offerId": "DZH318Z0BQ3Q", "offerName": "Azure plan",
        "billingModel": "USAGE_BASED", "resellerId": partners[&TAILSPIN]}}),
    )
    .await?;

    // Relecloud bought Azure directly and has a pending request from Fabrikam.
    let relecloud = run(state, platform, admin, CREATE_CUSTOMER,
        json!({"i": {"tenantId": RELECLOUD, "companyName": "Relecloud", "domain": "relecloud.example", "country": "GB"}})).await?;
    let relecloud = at(&relecloud, "/createCustomer/customer/id")?;
    run(
        state,
        RELECLOUD,
        global,
        REGISTER,
        json!({"i": {"customerId": relecloud, "channel": "DIRECT", "externalReference": "DIRECT-7781",
        "offerId": "AZURE-DIRECT", "offerName": "Azure (direct)", "billingModel": "USAGE_BASED"}}),
    )
    .await?;
    run(state, FABRIKAM, agent, REQUEST, json!({"i": {"customerDomain": "relecloud.example", "kind": "RESELLER"}}))
        .await?;

    // The US Government cloud is a world of its own.
    let springfield = run(
        state,
        WOODGROVE,
        agent,
        CREATE_CUSTOMER,
        json!({"i": {"tenantId": SPRINGFIELD,
        "companyName": "City of Springfield", "domain": "springfield-gov.example", "country": "US"}}),
    )
    .await?;
    run(state, WOODGROVE, agent, SELL, json!({"i": {"customerId": at(&springfield, "/createCustomer/customer/id")?,
        "offerId": "GCC-M365-G3", "offerName": "Microsoft 365 G3 GCC", "billingModel": "LICENSE_BASED", "quantity": 200, "termMonths": 12}})).await?;
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
