//! R1, the isolation property test: random worlds are built directly through the data layer, then
//! for every tenant everything reachable through the API (every list, walked page by page, every
//! total, every nested connection, every reference field, and a `node` lookup of every object in the
//! world) is compared with the visibility rule computed here, independently of `src/access`.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{DateTime, Duration, Utc};
use entity::enums::{
    BillingModel, Channel, Cloud, PartnerType, RelationshipKind as K, RelationshipStatus as S, SubscriptionStatus,
    TransferStatus,
};
use entity::{audit_event, customer, partner, relationship, subscription, subscription_transfer};
use partnerhub::graphql::ids::{NodeType, encode};
use partnerhub::seed::NewSubscription;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::TestApp;

/// How many random worlds the test builds (each with its own seed).
const WORLDS: u64 = 6;

struct World {
    now: DateTime<Utc>,
    partners: Vec<partner::Model>,
    customers: Vec<customer::Model>,
    relationships: Vec<relationship::Model>,
    subscriptions: Vec<subscription::Model>,
    transfers: Vec<subscription_transfer::Model>,
    audit: Vec<audit_event::Model>,
}

/// Who is looking.
#[derive(Clone, Copy, Debug)]
enum Viewer {
    Platform,
    Partner(Uuid),
    Customer(Uuid),
}

/// What a viewer may see, by R1 (`docs/rules.md`), computed from the in-memory world.
#[derive(Default, Debug)]
struct Visible {
    partners: BTreeSet<Uuid>,
    customers: BTreeSet<Uuid>,
    subscriptions: BTreeSet<Uuid>,
    relationships: BTreeSet<Uuid>,
    transfers: BTreeSet<Uuid>,
    audit: BTreeSet<Uuid>,
}

impl World {
    fn active_da(&self, r: &relationship::Model) -> bool {
        r.kind == K::DelegatedAdmin && r.status == S::Active && r.expires_at.is_some_and(|at| at > self.now)
    }

    /// Customers a partner serves: ACTIVE reseller link (as partner or provider) or ACTIVE unexpired DA.
    fn served_by(&self, p: Uuid) -> BTreeSet<Uuid> {
        self.relationships
            .iter()
            .filter(|r| {
                (r.kind == K::Reseller
                    && r.status == S::Active
                    && (r.partner_id == p || r.indirect_provider_id == Some(p)))
                    || (self.active_da(r) && r.partner_id == p)
            })
            .filter_map(|r| r.customer_id)
            .collect()
    }

    fn partners_serving(&self, c: Uuid) -> BTreeSet<Uuid> {
        self.partners.iter().map(|p| p.id).filter(|p| self.served_by(*p).contains(&c)).collect()
    }

    fn resellers_of(&self, p: Uuid) -> BTreeSet<Uuid> {
        self.relationships
            .iter()
            .filter(|r| r.kind == K::IndirectReseller && r.status == S::Active && r.indirect_provider_id == Some(p))
            .map(|r| r.partner_id)
            .collect()
    }

    fn providers_of(&self, p: Uuid) -> BTreeSet<Uuid> {
        self.relationships
            .iter()
            .filter(|r| r.kind == K::IndirectReseller && r.status == S::Active && r.partner_id == p)
            .filter_map(|r| r.indirect_provider_id)
            .collect()
    }

    fn visible(&self, viewer: Viewer) -> Visible {
        let mut v = Visible::default();
        match viewer {
            Viewer::Platform => {
                v.partners = self.partners.iter().map(|x| x.id).collect();
                v.customers = self.customers.iter().map(|x| x.id).collect();
                v.subscriptions = self.subscriptions.iter().map(|x| x.id).collect();
                v.relationships = self.relationships.iter().map(|x| x.id).collect();
                v.transfers = self.transfers.iter().map(|x| x.id).collect();
                v.audit = self.audit.iter().map(|x| x.id).collect();
                return v;
            }
            Viewer::Partner(p) => {
                let tenant = self.partners.iter().find(|x| x.id == p).map(|x| x.tenant_id);
                v.customers = self.served_by(p);
                let da: BTreeSet<Uuid> = self
                    .relationships
                    .iter()
                    .filter(|r| self.active_da(r) && r.partner_id == p)
                    .filter_map(|r| r.customer_id)
                    .collect();
                v.subscriptions = self
                    .subscriptions
                    .iter()
                    .filter(|s| v.customers.contains(&s.customer_id))
                    .filter(|s| s.partner_id == Some(p) || s.reseller_id == Some(p) || da.contains(&s.customer_id))
                    .map(|s| s.id)
                    .collect();
                v.relationships = self
                    .relationships
                    .iter()
                    .filter(|r| r.partner_id == p || r.indirect_provider_id == Some(p))
                    .map(|r| r.id)
                    .collect();
                v.transfers = self
                    .transfers
                    .iter()
                    .filter(|t| t.source_partner_id == p || t.target_partner_id == p)
                    .map(|t| t.id)
                    .collect();
                v.audit = self
                    .audit
                    .iter()
                    .filter(|a| {
                        Some(a.actor_tenant_id) == tenant || a.partner_id == Some(p) || a.related_partner_id == Some(p)
                    })
                    .map(|a| a.id)
                    .collect();
                v.partners.insert(p);
            }
            Viewer::Customer(c) => {
                let tenant = self.customers.iter().find(|x| x.id == c).map(|x| x.tenant_id);
                v.customers.insert(c);
                v.subscriptions = self.subscriptions.iter().filter(|s| s.customer_id == c).map(|s| s.id).collect();
                v.relationships =
                    self.relationships.iter().filter(|r| r.customer_id == Some(c)).map(|r| r.id).collect();
                v.transfers = self.transfers.iter().filter(|t| t.customer_id == c).map(|t| t.id).collect();
                v.audit = self
                    .audit
                    .iter()
                    .filter(|a| Some(a.actor_tenant_id) == tenant || a.customer_id == Some(c))
                    .map(|a| a.id)
                    .collect();
            }
        }
        // Partners named on what the viewer sees.
        for r in self.relationships.iter().filter(|r| v.relationships.contains(&r.id)) {
            v.partners.insert(r.partner_id);
            v.partners.extend(r.indirect_provider_id);
        }
        for s in self.subscriptions.iter().filter(|s| v.subscriptions.contains(&s.id)) {
            v.partners.extend(s.partner_id);
            v.partners.extend(s.reseller_id);
        }
        for t in self.transfers.iter().filter(|t| v.transfers.contains(&t.id)) {
            v.partners.insert(t.source_partner_id);
            v.partners.insert(t.target_partner_id);
        }
        v
    }

    fn tenants(&self) -> Vec<(Viewer, Uuid, &'static str)> {
        let mut out = Vec::new();
        out.extend(self.partners.iter().map(|p| (Viewer::Partner(p.id), p.tenant_id, "admin_agent")));
        out.extend(self.customers.iter().map(|c| (Viewer::Customer(c.id), c.tenant_id, "reader")));
        out
    }
}

async fn build_world(app: &TestApp, rng: &mut StdRng) -> World {
    let seed = app.seed();
    let now = seed.now;
    let mut partners = Vec::new();
    let types = [(PartnerType::DirectBill, 3), (PartnerType::IndirectProvider, 2), (PartnerType::IndirectReseller, 3)];
    let mut n = 0;
    for (partner_type, count) in types {
        for _ in 0..count {
            n += 1;
            let cloud = if rng.random_bool(0.15) { Cloud::UsGovernment } else { Cloud::Public };
            let p = seed
                .partner(
                    Uuid::new_v4(),
                    &format!("Partner {n}"),
                    &format!("p{n}-{}.example", Uuid::new_v4().simple()),
                    partner_type,
                    cloud,
                )
                .await
                .unwrap();
            partners.push(p);
        }
    }
    let mut customers = Vec::new();
    for i in 0..rng.random_range(6..=10) {
        let cloud = if rng.random_bool(0.15) { Cloud::UsGovernment } else { Cloud::Public };
        let country = ["US", "DE", "GB", "FR"].choose(rng).unwrap();
        let c = seed
            .customer(
                Uuid::new_v4(),
                &format!("Customer {i}"),
                &format!("c{i}-{}.example", Uuid::new_v4().simple()),
                country,
                cloud,
            )
            .await
            .unwrap();
        customers.push(c);
    }
    let direct: Vec<&partner::Model> = partners.iter().filter(|p| p.partner_type == PartnerType::DirectBill).collect();
    let providers: Vec<&partner::Model> =
        partners.iter().filter(|p| p.partner_type == PartnerType::IndirectProvider).collect();
    let resellers: Vec<&partner::Model> =
        partners.iter().filter(|p| p.partner_type == PartnerType::IndirectReseller).collect();

    let statuses = [S::Pending, S::Active, S::Declined, S::Terminated, S::Expired];
    // The database allows one PENDING and one ACTIVE (non-DA) link per (kind, partner, counterpart).
    let mut taken: std::collections::HashSet<(K, Uuid, Uuid, S)> = std::collections::HashSet::new();
    let mut relationships = Vec::new();
    let mut try_rel = |kind: K, status: S, partner: Uuid, counterpart: Uuid| {
        let unique = matches!(status, S::Pending) || (status == S::Active && kind != K::DelegatedAdmin);
        unique && !taken.insert((kind, partner, counterpart, status))
    };
    // Provider ↔ reseller links in every status.
    for provider in &providers {
        for reseller in &resellers {
            if rng.random_bool(0.7) {
                let status = *statuses.choose(rng).unwrap();
                if try_rel(K::IndirectReseller, status, reseller.id, provider.id) {
                    continue;
                }
                relationships.push(
                    seed.relationship(K::IndirectReseller, status, reseller.id, None, Some(provider.id), "", None)
                        .await
                        .unwrap(),
                );
            }
        }
    }
    // Partner ↔ customer links of both kinds in every status, some delegated-admin grants expired.
    for _ in 0..rng.random_range(12..=24) {
        let c = customers.choose(rng).unwrap();
        let kind = if rng.random_bool(0.5) { K::Reseller } else { K::DelegatedAdmin };
        let status = *statuses.choose(rng).unwrap();
        let (partner_id, provider_id) = match rng.random_range(0..3) {
            0 => (direct.choose(rng).unwrap().id, None),
            1 => (providers.choose(rng).unwrap().id, None),
            _ if kind == K::Reseller => (resellers.choose(rng).unwrap().id, Some(providers.choose(rng).unwrap().id)),
            _ => (direct.choose(rng).unwrap().id, None),
        };
        if try_rel(kind, status, partner_id, c.id) {
            continue;
        }
        let expires_at = match (kind, status) {
            (K::DelegatedAdmin, S::Active) if rng.random_bool(0.4) => {
                Some(now - Duration::days(rng.random_range(1..30)))
            }
            (K::DelegatedAdmin, S::Active) => Some(now + Duration::days(rng.random_range(1..700))),
            (_, S::Pending) => Some(now + Duration::days(60)),
            _ => None,
        };
        let roles = if kind == K::DelegatedAdmin { "admin_agent" } else { "" };
        relationships
            .push(seed.relationship(kind, status, partner_id, Some(c), provider_id, roles, expires_at).await.unwrap());
    }
    // Subscriptions of every channel; CSP ones sold by direct partners or providers (with a reseller).
    let channels = [
        Channel::Csp,
        Channel::Direct,
        Channel::Advisor,
        Channel::Open,
        Channel::EnterpriseAgreement,
        Channel::ThirdParty,
    ];
    let sub_statuses = [
        SubscriptionStatus::Active,
        SubscriptionStatus::Suspended,
        SubscriptionStatus::Cancelled,
        SubscriptionStatus::Expired,
    ];
    let mut subscriptions = Vec::new();
    for c in &customers {
        for _ in 0..rng.random_range(0..=5) {
            let billing = if rng.random_bool(0.5) { BillingModel::UsageBased } else { BillingModel::LicenseBased };
            let channel = *channels.choose(rng).unwrap();
            let mut new = if channel == Channel::Csp {
                if rng.random_bool(0.6) {
                    NewSubscription::csp(c.id, direct.choose(rng).unwrap().id, None, billing)
                } else {
                    NewSubscription::csp(
                        c.id,
                        providers.choose(rng).unwrap().id,
                        Some(resellers.choose(rng).unwrap().id),
                        billing,
                    )
                }
            } else {
                NewSubscription::external(c.id, channel, billing, "REF-1")
            };
            new.status = *sub_statuses.choose(rng).unwrap();
            subscriptions.push(seed.subscription(new, rng.random_range(0..20)).await.unwrap());
        }
    }
    // Transfers of CSP subscriptions, at most one pending per subscription.
    let mut transfers = Vec::new();
    for s in subscriptions.iter().filter(|s| s.channel == Channel::Csp) {
        if rng.random_bool(0.5) {
            let target = direct.choose(rng).unwrap().id;
            let status = *[
                TransferStatus::Pending,
                TransferStatus::Completed,
                TransferStatus::Rejected,
                TransferStatus::Withdrawn,
                TransferStatus::Expired,
            ]
            .choose(rng)
            .unwrap();
            transfers.push(seed.transfer(s, target, status, now + Duration::days(10)).await.unwrap());
        }
    }
    // Audit events with every combination of actor and concerned parties.
    let mut audit = Vec::new();
    for _ in 0..rng.random_range(10..=20) {
        let actor = if rng.random_bool(0.5) {
            partners.choose(rng).unwrap().tenant_id
        } else {
            customers.choose(rng).unwrap().tenant_id
        };
        let p = rng.random_bool(0.6).then(|| partners.choose(rng).unwrap().id);
        let rp = rng.random_bool(0.3).then(|| partners.choose(rng).unwrap().id);
        let c = rng.random_bool(0.6).then(|| customers.choose(rng).unwrap().id);
        audit.push(seed.audit_event(actor, "test.event", p, rp, c).await.unwrap());
    }
    World { now, partners, customers, relationships, subscriptions, transfers, audit }
}

static LOOKUPS: AtomicUsize = AtomicUsize::new(0);

fn checked(n: usize) {
    LOOKUPS.fetch_add(n, Ordering::Relaxed);
}

fn id_of(ty: NodeType, id: Uuid) -> String {
    encode(ty, id).0
}

fn ids(ty: NodeType, set: &BTreeSet<Uuid>) -> BTreeSet<String> {
    set.iter().map(|id| id_of(ty, *id)).collect()
}

/// Walks a top-level list page by page (small pages), checking no item repeats and the total.
async fn walk(app: &TestApp, token: &str, field: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut after = Value::Null;
    let mut total;
    loop {
        let query = format!(
            "query($after: String) {{ {field}(first: 7, after: $after) {{ totalCount pageInfo {{ hasNextPage endCursor }} nodes {{ id }} }} }}"
        );
        let data = app.data(token, &query, json!({"after": after})).await;
        let conn = &data[field];
        total = Some(conn["totalCount"].as_u64().unwrap());
        for node in conn["nodes"].as_array().unwrap() {
            assert!(seen.insert(node["id"].as_str().unwrap().to_owned()), "{field}: an item came twice");
        }
        if !conn["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            break;
        }
        after = conn["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(total, Some(seen.len() as u64), "{field}: totalCount differs from the items walked");
    seen
}

fn node_ids(conn: &Value) -> BTreeSet<String> {
    conn["nodes"].as_array().unwrap().iter().map(|n| n["id"].as_str().unwrap().to_owned()).collect()
}

fn reference(node: &Value, field: &str) -> Option<String> {
    node[field]["id"].as_str().map(str::to_owned)
}

async fn check_tenant(app: &TestApp, world: &World, viewer: Viewer, token: &str) {
    let v = world.visible(viewer);
    let ctx = format!("{viewer:?}");

    // Every list, walked page by page, with its total.
    for (field, ty, set) in [
        ("partners", NodeType::Partner, &v.partners),
        ("customers", NodeType::Customer, &v.customers),
        ("subscriptions", NodeType::Subscription, &v.subscriptions),
        ("relationships", NodeType::Relationship, &v.relationships),
        ("transfers", NodeType::SubscriptionTransfer, &v.transfers),
        ("auditEvents", NodeType::AuditEvent, &v.audit),
    ] {
        assert_eq!(walk(app, token, field).await, ids(ty, set), "{ctx}: {field}");
        checked(1);
    }

    // A node lookup of every object in the world.
    let mut all: Vec<(String, bool)> = Vec::new();
    all.extend(world.partners.iter().map(|x| (id_of(NodeType::Partner, x.id), v.partners.contains(&x.id))));
    all.extend(world.customers.iter().map(|x| (id_of(NodeType::Customer, x.id), v.customers.contains(&x.id))));
    all.extend(
        world.subscriptions.iter().map(|x| (id_of(NodeType::Subscription, x.id), v.subscriptions.contains(&x.id))),
    );
    all.extend(
        world.relationships.iter().map(|x| (id_of(NodeType::Relationship, x.id), v.relationships.contains(&x.id))),
    );
    all.extend(
        world.transfers.iter().map(|x| (id_of(NodeType::SubscriptionTransfer, x.id), v.transfers.contains(&x.id))),
    );
    all.extend(world.audit.iter().map(|x| (id_of(NodeType::AuditEvent, x.id), v.audit.contains(&x.id))));
    for chunk in all.chunks(100) {
        let list: Vec<&str> = chunk.iter().map(|(id, _)| id.as_str()).collect();
        let data = app.data(token, "query($ids: [ID!]!) { nodes(ids: $ids) { id } }", json!({"ids": list})).await;
        for ((id, expected), got) in chunk.iter().zip(data["nodes"].as_array().unwrap()) {
            assert_eq!(!got.is_null(), *expected, "{ctx}: nodes({id})");
            if !got.is_null() {
                assert_eq!(got["id"].as_str(), Some(id.as_str()));
            }
        }
        checked(chunk.len());
    }
    // Single lookups, on a sample of each type.
    for (field, ty, list, set) in [
        ("customer", NodeType::Customer, world.customers.iter().map(|c| c.id).collect::<Vec<_>>(), &v.customers),
        ("partner", NodeType::Partner, world.partners.iter().map(|c| c.id).collect(), &v.partners),
        (
            "subscription",
            NodeType::Subscription,
            world.subscriptions.iter().map(|c| c.id).take(8).collect(),
            &v.subscriptions,
        ),
    ] {
        for id in list {
            let query = format!("query($id: ID!) {{ {field}(id: $id) {{ id }} node(id: $id) {{ id }} }}");
            let data = app.data(token, &query, json!({"id": id_of(ty, id)})).await;
            assert_eq!(!data[field].is_null(), set.contains(&id), "{ctx}: {field}({id})");
            assert_eq!(!data["node"].is_null(), set.contains(&id), "{ctx}: node({id})");
            checked(2);
        }
    }

    // A customer looked up by id, with its subscriptions: the nested page of one parent (its own
    // statement, not the window over a page of parents).
    for c in &world.customers {
        let data = app
            .data(
                token,
                "query($id: ID!) { customer(id: $id) { subscriptions(first: 100) { totalCount nodes { id } } } }",
                json!({"id": id_of(NodeType::Customer, c.id)}),
            )
            .await;
        if !v.customers.contains(&c.id) {
            assert!(data["customer"].is_null(), "{ctx}: customer({}) with subscriptions", c.id);
            continue;
        }
        let subs: BTreeSet<Uuid> = world
            .subscriptions
            .iter()
            .filter(|s| s.customer_id == c.id && v.subscriptions.contains(&s.id))
            .map(|s| s.id)
            .collect();
        let page = &data["customer"]["subscriptions"];
        assert_eq!(node_ids(page), ids(NodeType::Subscription, &subs), "{ctx}: customer({}).subscriptions", c.id);
        assert_eq!(
            page["totalCount"].as_u64(),
            Some(subs.len() as u64),
            "{ctx}: customer({}).subscriptions total",
            c.id
        );
        checked(1);
    }

    // Nested connections and references under every visible customer.
    let data = app
        .data(
            token,
            "{ customers(first: 100) { nodes { id
                subscriptions(first: 100) { totalCount nodes { id partner { id } reseller { id } customer { id } } }
                relationships(first: 100) { totalCount nodes { id partner { id } indirectProvider { id } customer { id } } }
                partners(first: 100) { totalCount nodes { id } } } } }",
            json!({}),
        )
        .await;
    for c in data["customers"]["nodes"].as_array().unwrap() {
        let cid =
            world.customers.iter().find(|x| id_of(NodeType::Customer, x.id) == c["id"].as_str().unwrap()).unwrap().id;
        let subs: BTreeSet<Uuid> = world
            .subscriptions
            .iter()
            .filter(|s| s.customer_id == cid && v.subscriptions.contains(&s.id))
            .map(|s| s.id)
            .collect();
        assert_eq!(node_ids(&c["subscriptions"]), ids(NodeType::Subscription, &subs), "{ctx}: Customer.subscriptions");
        assert_eq!(
            c["subscriptions"]["totalCount"].as_u64(),
            Some(subs.len() as u64),
            "{ctx}: Customer.subscriptions total"
        );
        for s in c["subscriptions"]["nodes"].as_array().unwrap() {
            let model = world
                .subscriptions
                .iter()
                .find(|x| id_of(NodeType::Subscription, x.id) == s["id"].as_str().unwrap())
                .unwrap();
            let expect = |id: Option<Uuid>| id.filter(|p| v.partners.contains(p)).map(|p| id_of(NodeType::Partner, p));
            assert_eq!(reference(s, "partner"), expect(model.partner_id), "{ctx}: Subscription.partner");
            assert_eq!(reference(s, "reseller"), expect(model.reseller_id), "{ctx}: Subscription.reseller");
            assert_eq!(reference(s, "customer"), Some(id_of(NodeType::Customer, cid)), "{ctx}: Subscription.customer");
            checked(3);
        }
        let rels: BTreeSet<Uuid> = world
            .relationships
            .iter()
            .filter(|r| r.customer_id == Some(cid) && v.relationships.contains(&r.id))
            .map(|r| r.id)
            .collect();
        assert_eq!(node_ids(&c["relationships"]), ids(NodeType::Relationship, &rels), "{ctx}: Customer.relationships");
        assert_eq!(
            c["relationships"]["totalCount"].as_u64(),
            Some(rels.len() as u64),
            "{ctx}: Customer.relationships total"
        );
        let partners: BTreeSet<Uuid> = world.partners_serving(cid).intersection(&v.partners).copied().collect();
        assert_eq!(node_ids(&c["partners"]), ids(NodeType::Partner, &partners), "{ctx}: Customer.partners");
        assert_eq!(c["partners"]["totalCount"].as_u64(), Some(partners.len() as u64), "{ctx}: Customer.partners total");
        checked(6);
    }

    // Nested connections under every visible partner.
    let data = app
        .data(
            token,
            "{ partners(first: 100) { nodes { id
                customers(first: 100) { totalCount nodes { id } }
                resellers(first: 100) { totalCount nodes { id } }
                providers(first: 100) { totalCount nodes { id } } } } }",
            json!({}),
        )
        .await;
    for p in data["partners"]["nodes"].as_array().unwrap() {
        let pid =
            world.partners.iter().find(|x| id_of(NodeType::Partner, x.id) == p["id"].as_str().unwrap()).unwrap().id;
        let customers: BTreeSet<Uuid> = world.served_by(pid).intersection(&v.customers).copied().collect();
        let resellers: BTreeSet<Uuid> = world.resellers_of(pid).intersection(&v.partners).copied().collect();
        let providers: BTreeSet<Uuid> = world.providers_of(pid).intersection(&v.partners).copied().collect();
        for (field, ty, set) in [
            ("customers", NodeType::Customer, &customers),
            ("resellers", NodeType::Partner, &resellers),
            ("providers", NodeType::Partner, &providers),
        ] {
            assert_eq!(node_ids(&p[field]), ids(ty, set), "{ctx}: Partner.{field}");
            assert_eq!(p[field]["totalCount"].as_u64(), Some(set.len() as u64), "{ctx}: Partner.{field} total");
            checked(2);
        }
    }

    // References from transfers, relationships and audit events.
    let data = app
        .data(
            token,
            "{ transfers(first: 100) { nodes { id subscription { id } customer { id } sourcePartner { id } targetPartner { id } } }
               relationships(first: 100) { nodes { id partner { id } customer { id } indirectProvider { id } } }
               auditEvents(first: 100) { nodes { id partner { id } customer { id } } } }",
            json!({}),
        )
        .await;
    let partner_ref = |id: Option<Uuid>| id.filter(|p| v.partners.contains(p)).map(|p| id_of(NodeType::Partner, p));
    let customer_ref = |id: Option<Uuid>| id.filter(|c| v.customers.contains(c)).map(|c| id_of(NodeType::Customer, c));
    let by_id: HashMap<String, &subscription_transfer::Model> =
        world.transfers.iter().map(|t| (id_of(NodeType::SubscriptionTransfer, t.id), t)).collect();
    for t in data["transfers"]["nodes"].as_array().unwrap() {
        let m = by_id[t["id"].as_str().unwrap()];
        let sub =
            Some(m.subscription_id).filter(|s| v.subscriptions.contains(s)).map(|s| id_of(NodeType::Subscription, s));
        assert_eq!(reference(t, "subscription"), sub, "{ctx}: Transfer.subscription");
        assert_eq!(reference(t, "customer"), customer_ref(Some(m.customer_id)), "{ctx}: Transfer.customer");
        assert_eq!(
            reference(t, "sourcePartner"),
            partner_ref(Some(m.source_partner_id)),
            "{ctx}: Transfer.sourcePartner"
        );
        assert_eq!(
            reference(t, "targetPartner"),
            partner_ref(Some(m.target_partner_id)),
            "{ctx}: Transfer.targetPartner"
        );
        checked(4);
    }
    let by_id: HashMap<String, &relationship::Model> =
        world.relationships.iter().map(|r| (id_of(NodeType::Relationship, r.id), r)).collect();
    for r in data["relationships"]["nodes"].as_array().unwrap() {
        let m = by_id[r["id"].as_str().unwrap()];
        assert_eq!(reference(r, "partner"), partner_ref(Some(m.partner_id)), "{ctx}: Relationship.partner");
        assert_eq!(reference(r, "customer"), customer_ref(m.customer_id), "{ctx}: Relationship.customer");
        assert_eq!(
            reference(r, "indirectProvider"),
            partner_ref(m.indirect_provider_id),
            "{ctx}: Relationship.indirectProvider"
        );
        checked(3);
    }
    let by_id: HashMap<String, &audit_event::Model> =
        world.audit.iter().map(|a| (id_of(NodeType::AuditEvent, a.id), a)).collect();
    for a in data["auditEvents"]["nodes"].as_array().unwrap() {
        let m = by_id[a["id"].as_str().unwrap()];
        assert_eq!(reference(a, "partner"), partner_ref(m.partner_id), "{ctx}: AuditEvent.partner");
        assert_eq!(reference(a, "customer"), customer_ref(m.customer_id), "{ctx}: AuditEvent.customer");
        checked(2);
    }
}

#[tokio::test]
async fn r1_every_tenant_sees_exactly_what_the_visibility_rule_allows() {
    let mut tenants_checked = 0;
    for world_seed in 0..WORLDS {
        // The walk reads everything at once (pages of 100 under pages of 100): a test of
        // visibility, not of cost, so the cost limit and budgets are lifted here.
        let mut settings = partnerhub::config::Settings::development(crate::common::SECRET);
        settings.limits.max_complexity = usize::MAX;
        settings.limits.budgets.tenant.capacity = 0;
        let app = TestApp::with_settings(settings).await;
        let mut rng = StdRng::seed_from_u64(0x5eed_0000 + world_seed);
        let world = build_world(&app, &mut rng).await;
        let platform = app.token(app.platform(), &["platform_admin"]);
        check_tenant(&app, &world, Viewer::Platform, &platform).await;
        for (viewer, tenant_id, role) in world.tenants() {
            let token = app.token(tenant_id, &[role]);
            check_tenant(&app, &world, viewer, &token).await;
            tenants_checked += 1;
        }
    }
    eprintln!(
        "isolation: {WORLDS} worlds, {tenants_checked} tenants (+{WORLDS} platform views), {} lookups compared",
        LOOKUPS.load(Ordering::Relaxed)
    );
}
