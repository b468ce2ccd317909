//! Nothing lost: clients that go away mid-request, write futures dropped at random points,
//! and a server killed with SIGKILL in the middle of a write burst leave no half-applied write, no
//! lost acknowledged write and no connection stuck inside a transaction.
//!
//! The invariant checked after each storm ([`check_ledger`]): every audit event has its outbox
//! event (one for one, same request, same node, same action); every subscription was created once
//! (one `subscription.create` event) and its `version - 1` is the number of its other
//! `subscription.*` events.

use std::collections::{BTreeMap, HashMap};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use entity::enums::SubscriptionStatus;
use entity::{audit_event, outbox_event, subscription};
use partnerhub::auth::jwt::{Claims, mint_hs256};
use partnerhub::domain::Writer;
use partnerhub::domain::audit::{self, By, Change};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sea_orm::{ConnectionTrait, DatabaseConnection, EntityTrait, PaginatorTrait, Statement};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::{SECRET, ScratchDatabase, TestApp, backend, error_code, graphql_post, json_answer};
use crate::write_customers::{CREATE_CUSTOMER, ONBOARD, onboard};

const SELL: &str =
    "mutation($i: CreateSubscriptionInput!) { createSubscription(input: $i) { subscription { id version status } } }";
const UPDATE: &str =
    "mutation($i: UpdateSubscriptionInput!) { updateSubscription(input: $i) { subscription { id version status } } }";
const SUSPEND: &str =
    "mutation($i: SubscriptionActionInput!) { suspendSubscription(input: $i) { subscription { id version status } } }";
const REACTIVATE: &str = "mutation($i: SubscriptionActionInput!) { reactivateSubscription(input: $i) { subscription { id version status } } }";

fn raw_id(global: &str) -> Uuid {
    partnerhub::graphql::ids::decode_any(global).expect("a global id").1
}

fn license_input(customer: &str, quantity: i64, key: Option<&str>) -> Value {
    let mut input = json!({"customerId": customer, "offerId": "M365", "offerName": "Microsoft 365",
        "billingModel": "LICENSE_BASED", "quantity": quantity, "termMonths": 12});
    if let Some(key) = key {
        input["idempotencyKey"] = json!(key);
    }
    input
}

/// The field of a mutation's payload (`createSubscription`, ...) that a request names.
fn payload_field(query: &str) -> &'static str {
    for field in ["createSubscription", "updateSubscription", "suspendSubscription", "reactivateSubscription"] {
        if query.contains(field) {
            return field;
        }
    }
    panic!("unknown mutation {query}")
}

/// What the database holds, checked against the invariant; per subscription, its version.
struct Ledger {
    versions: HashMap<Uuid, (i32, SubscriptionStatus)>,
    /// Audit events per request id.
    audit_by_request: HashMap<String, usize>,
    /// Outbox events per request id.
    outbox_by_request: HashMap<String, usize>,
    audit_events: usize,
}

async fn check_ledger(db: &DatabaseConnection) -> Ledger {
    let audits = audit_event::Entity::find().all(db).await.expect("read audit events");
    let outbox = outbox_event::Entity::find().all(db).await.expect("read outbox events");
    let subscriptions = subscription::Entity::find().all(db).await.expect("read subscriptions");

    // One outbox event per audit event: same request, same node, same action.
    let mut audit_keys: BTreeMap<(String, Uuid, String), usize> = BTreeMap::new();
    for a in &audits {
        *audit_keys.entry((a.request_id.clone(), a.target_id, a.action.clone())).or_default() += 1;
    }
    let mut outbox_keys: BTreeMap<(String, Uuid, String), usize> = BTreeMap::new();
    for o in &outbox {
        let request = o.payload["requestId"].as_str().unwrap_or_default().to_owned();
        let action = o.payload["action"].as_str().unwrap_or_default().to_owned();
        *outbox_keys.entry((request, o.node_id, action)).or_default() += 1;
    }
    let unmatched: Vec<_> = audit_keys
        .iter()
        .filter(|(k, n)| outbox_keys.get(*k) != Some(n))
        .chain(outbox_keys.iter().filter(|(k, n)| audit_keys.get(*k) != Some(n)))
        .take(5)
        .collect();
    assert!(unmatched.is_empty(), "audit and outbox events differ (request, node, action): {unmatched:?}");

    // Every subscription: created once, and one event per version step.
    for s in &subscriptions {
        let events: Vec<&str> = audits
            .iter()
            .filter(|a| a.target_id == s.id && a.action.starts_with("subscription."))
            .map(|a| a.action.as_str())
            .collect();
        let created = events.iter().filter(|a| **a == "subscription.create").count();
        let changes = events.len() - created;
        assert_eq!(created, 1, "subscription {} has {created} creation events", s.id);
        assert_eq!(
            i64::from(s.version) - 1,
            changes as i64,
            "subscription {} is at version {} after {changes} recorded changes: {events:?}",
            s.id,
            s.version
        );
    }

    let mut audit_by_request: HashMap<String, usize> = HashMap::new();
    for a in &audits {
        *audit_by_request.entry(a.request_id.clone()).or_default() += 1;
    }
    let mut outbox_by_request: HashMap<String, usize> = HashMap::new();
    for o in &outbox {
        *outbox_by_request.entry(o.payload["requestId"].as_str().unwrap_or_default().to_owned()).or_default() += 1;
    }
    Ledger {
        versions: subscriptions.iter().map(|s| (s.id, (s.version, s.status))).collect(),
        audit_by_request,
        outbox_by_request,
        audit_events: audits.len(),
    }
}

/// Waits until no more audit events appear (work cut off from its client finishes on its own);
/// bounded.
async fn settle(db: &DatabaseConnection) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = u64::MAX;
    let mut quiet = 0;
    while quiet < 20 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let count = audit_event::Entity::find().count(db).await.expect("count audit events");
        if count == last {
            quiet += 1;
        } else {
            (last, quiet) = (count, 0);
        }
    }
    last
}

/// On PostgreSQL, the connections to the test database sitting inside a transaction.
async fn idle_in_transaction(db: &DatabaseConnection) -> Vec<String> {
    if backend() != "postgres" {
        return Vec::new();
    }
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT state, coalesce(query, '') AS query FROM pg_stat_activity \
             WHERE datname = current_database() AND state LIKE 'idle in transaction%'",
        ))
        .await
        .expect("read pg_stat_activity");
    rows.iter()
        .map(|r| {
            format!(
                "{}: {}",
                r.try_get::<String>("", "state").unwrap_or_default(),
                r.try_get::<String>("", "query").unwrap_or_default()
            )
        })
        .collect()
}

/// POSTs a GraphQL operation through the in-process router with an `X-Request-Id`.
async fn post(router: Router, token: String, request_id: String, query: &'static str, variables: Value) -> Value {
    json_answer(router, graphql_post(Some(&token), Some(&request_id), query, variables)).await
}

/// How one request of a storm ended for its client.
#[derive(Debug)]
enum Outcome {
    /// The client stopped waiting before the answer.
    CutOff,
    Answered(Value),
}

struct Sent {
    request_id: String,
    query: &'static str,
    key: Option<String>,
    outcome: Outcome,
}

/// A partner with one customer and `n` license-based subscriptions made through the API.
async fn world(app: &TestApp, n: usize) -> (String, String, Vec<String>) {
    let (_, ptid) = onboard(app, "Contoso", "contoso.example", "DIRECT_BILL", "PUBLIC").await;
    let partner = app.token(ptid, &["admin_agent"]);
    let input = json!({"companyName": "Adatum", "domain": "adatum.example", "country": "US"});
    let data = app.data(&partner, CREATE_CUSTOMER, json!({"input": input})).await;
    let customer = data["createCustomer"]["customer"]["id"].as_str().unwrap().to_owned();
    let mut subscriptions = Vec::new();
    for _ in 0..n {
        let data = app.data(&partner, SELL, json!({"i": license_input(&customer, 10, None)})).await;
        subscriptions.push(data["createSubscription"]["subscription"]["id"].as_str().unwrap().to_owned());
    }
    (partner, customer, subscriptions)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn disconnect_mid_mutation_leaves_no_half_applied_write() {
    let app = TestApp::new().await;
    let (partner, customer, subscriptions) = world(&app, 16).await;
    let seed: u64 = rand::rng().random();
    eprintln!("cancellation storm seed {seed}");
    let mut rng = StdRng::seed_from_u64(seed);

    // Waves of concurrent requests, each at the versions current when the wave starts (so many
    // succeed).
    let mut sent: Vec<Sent> = Vec::new();
    for wave in 0..8 {
        // (Requests cut off in the previous wave may still be running: only versions are read.)
        let current: HashMap<Uuid, i32> =
            subscription::Entity::find().all(&app.db).await.unwrap().into_iter().map(|s| (s.id, s.version)).collect();
        let mut tasks = Vec::new();
        for n in 0..60 {
            let sub = &subscriptions[rng.random_range(0..subscriptions.len())];
            let version = current[&raw_id(sub)] - i32::from(rng.random_bool(0.1));
            let (query, input, key) = match rng.random_range(0..10) {
                0..=3 => (
                    UPDATE,
                    json!({"id": sub, "expectedVersion": version, "quantity": rng.random_range(5..50), "autoRenew": rng.random_bool(0.5)}),
                    None,
                ),
                4..=5 => (SUSPEND, json!({"id": sub, "expectedVersion": version}), None),
                6..=7 => (REACTIVATE, json!({"id": sub, "expectedVersion": version}), None),
                _ => {
                    // Keys repeat across requests (with the same input): one subscription per key.
                    let k = rng.random_range(0..24);
                    let key = format!("storm-{k}");
                    (SELL, license_input(&customer, 1 + k, Some(&key)), Some(key))
                }
            };
            let request_id = format!("storm-{wave}-{n}-{}", Uuid::new_v4());
            // Most clients give up after a random 0-20 ms; a third are patient, so that answers of
            // every kind can be checked against what the database holds.
            let budget = if rng.random_bool(0.33) {
                Duration::from_secs(30)
            } else {
                Duration::from_micros(rng.random_range(0..20_000))
            };
            let call = post(app.router.clone(), partner.clone(), request_id.clone(), query, json!({"i": input}));
            tasks.push(tokio::spawn(async move {
                let outcome = match tokio::time::timeout(budget, call).await {
                    Ok(body) => Outcome::Answered(body),
                    Err(_) => Outcome::CutOff,
                };
                Sent { request_id, query, key, outcome }
            }));
        }
        for task in tasks {
            sent.push(task.await.expect("request task"));
        }
    }

    let audit_events = settle(&app.db).await;
    let cut_off = sent.iter().filter(|s| matches!(s.outcome, Outcome::CutOff)).count();
    let answered: Vec<(&Sent, &Value)> = sent
        .iter()
        .filter_map(|s| match &s.outcome {
            Outcome::Answered(body) => Some((s, body)),
            Outcome::CutOff => None,
        })
        .collect();
    let succeeded = answered.iter().filter(|(_, body)| body.get("errors").is_none()).count();
    eprintln!(
        "cancellation storm ({}): {} requests, {cut_off} cut off, {} answered ({succeeded} succeeded), {audit_events} audit events",
        backend(),
        sent.len(),
        answered.len()
    );
    assert!(cut_off > 0, "some requests were cut off by their client");
    assert!(succeeded > 0, "some requests succeeded");

    let ledger = check_ledger(&app.db).await;
    let stuck = idle_in_transaction(&app.db).await;
    assert!(stuck.is_empty(), "connections left inside a transaction: {stuck:?}");

    // What clients were told holds: a success is recorded once (a replayed idempotent creation
    // not at all), an error left nothing, and nobody saw an internal error.
    let mut by_key: HashMap<&str, Vec<&str>> = HashMap::new();
    for (s, body) in &answered {
        let audited = ledger.audit_by_request.get(&s.request_id).copied().unwrap_or(0);
        let outboxed = ledger.outbox_by_request.get(&s.request_id).copied().unwrap_or(0);
        assert_eq!(audited, outboxed, "{}: audit and outbox events", s.request_id);
        if body.get("errors").is_some() {
            assert_ne!(error_code(body), Some("INTERNAL"), "{}: {body}", s.request_id);
            assert_eq!(audited, 0, "{} failed ({body}) but left events", s.request_id);
            continue;
        }
        let made = &body["data"][payload_field(s.query)]["subscription"];
        let id = raw_id(made["id"].as_str().unwrap());
        assert!(ledger.versions.contains_key(&id), "{}: the subscription it answered with exists", s.request_id);
        match &s.key {
            Some(key) => {
                assert!(audited <= 1, "{}: a creation writes one event", s.request_id);
                by_key.entry(key).or_default().push(made["id"].as_str().unwrap());
            }
            None => assert_eq!(audited, 1, "{} succeeded: one event", s.request_id),
        }
    }
    for (key, ids) in &by_key {
        assert!(ids.windows(2).all(|w| w[0] == w[1]), "key {key} answered with different subscriptions: {ids:?}");
    }
    let keyed = ledger.versions.len() - subscriptions.len();
    let keys_used: std::collections::BTreeSet<_> = sent.iter().filter_map(|s| s.key.as_deref()).collect();
    assert!(keyed <= keys_used.len(), "{keyed} subscriptions from {} idempotency keys", keys_used.len());

    // Nobody is left holding a transaction: a mutation on every subscription goes through.
    for sub in &subscriptions {
        let (version, status) = ledger.versions[&raw_id(sub)];
        let (query, input) = if status == SubscriptionStatus::Suspended {
            (REACTIVATE, json!({"id": sub, "expectedVersion": version}))
        } else {
            (UPDATE, json!({"id": sub, "expectedVersion": version, "autoRenew": true}))
        };
        let call =
            post(app.router.clone(), partner.clone(), format!("final-{}", Uuid::new_v4()), query, json!({"i": input}));
        let body = tokio::time::timeout(Duration::from_secs(60), call).await.expect("the final mutation answers");
        assert!(body.get("errors").is_none(), "final mutation on {sub} (version {version}, {status:?}): {body}");
        assert_eq!(body["data"][payload_field(query)]["subscription"]["version"], version + 1);
    }
    let after = check_ledger(&app.db).await;
    assert_eq!(after.audit_events, ledger.audit_events + subscriptions.len());
    let stuck = idle_in_transaction(&app.db).await;
    assert!(stuck.is_empty(), "connections left inside a transaction: {stuck:?}");
}

/// The write path itself, dropped at random points (inside `BEGIN`, between statements, inside
/// `COMMIT`): each write is all there or not at all, and the pool hands out no connection still
/// inside a transaction (whose autocommit statements would then never be committed).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dropped_writes_leave_no_connection_inside_a_transaction() {
    let app = TestApp::new().await;
    let writer = Writer::new(app.db.clone(), app.state.feed.commits());
    let seed: u64 = rand::rng().random();
    eprintln!("dropped writes seed {seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let mut tasks: Vec<tokio::task::JoinHandle<(String, bool)>> = Vec::new();
    let by = |request_id: &str| By {
        tenant_id: Uuid::nil(),
        subject: "cancellation-test".into(),
        request_id: request_id.to_owned(),
        at: chrono::Utc::now(),
    };
    let mut results = Vec::new();
    for n in 0..300 {
        if n % 30 == 0 {
            for task in std::mem::take(&mut tasks) {
                results.push(task.await.expect("write task"));
            }
        }
        let request_id = format!("dropped-{n}");
        let (writer, by) = (writer.clone(), by(&request_id));
        let budget = Duration::from_micros(rng.random_range(0..40_000));
        tasks.push(tokio::spawn(async move {
            let write = writer.write(move |txn| {
                Box::pin(async move {
                    for step in ["first", "second"] {
                        let change = Change::new("test.write", "TEST_WRITTEN", "Test", Uuid::now_v7());
                        let change = Change { details: json!({ "step": step }), ..change };
                        audit::record(txn, &by, change).await?;
                    }
                    Ok(())
                })
            });
            let acknowledged = matches!(tokio::time::timeout(budget, write).await, Ok(Ok(())));
            (request_id, acknowledged)
        }));
    }
    for task in tasks {
        results.push(task.await.expect("write task"));
    }
    settle(&app.db).await;
    let acknowledged = results.iter().filter(|(_, ok)| *ok).count();
    eprintln!("dropped writes ({}): {} of {} acknowledged", backend(), acknowledged, results.len());
    assert!(acknowledged > 0 && acknowledged < results.len(), "some writes were dropped, some acknowledged");

    let ledger = check_ledger(&app.db).await;
    for (request_id, ok) in &results {
        let audited = ledger.audit_by_request.get(request_id).copied().unwrap_or(0);
        let outboxed = ledger.outbox_by_request.get(request_id).copied().unwrap_or(0);
        assert!(audited == 0 || audited == 2, "{request_id}: half a write ({audited} of 2 events)");
        assert_eq!(audited, outboxed, "{request_id}: audit and outbox events");
        if *ok {
            assert_eq!(audited, 2, "{request_id} was acknowledged");
        }
    }
    let stuck = idle_in_transaction(&app.db).await;
    assert!(stuck.is_empty(), "connections left inside a transaction: {stuck:?}");

    // Statements outside any transaction are committed at once, whichever pooled connection runs
    // them, and every connection sees them.
    let before = audit_event::Entity::find().count(&app.db).await.unwrap();
    let statements: Vec<_> = (0..40)
        .map(|n| {
            let writer = writer.clone();
            tokio::spawn(async move {
                audit::record(
                    writer.connection(),
                    &by(&format!("autocommit-{n}")),
                    Change::new("test.autocommit", "TEST_WRITTEN", "Test", Uuid::now_v7()),
                )
                .await
                .map_err(|e| e.message)
            })
        })
        .collect();
    for statement in statements {
        statement.await.unwrap().expect("an autocommit write");
    }
    let readers: Vec<_> = (0..20)
        .map(|_| {
            let db = app.db.clone();
            tokio::spawn(async move { audit_event::Entity::find().count(&db).await.unwrap() })
        })
        .collect();
    for reader in readers {
        assert_eq!(reader.await.unwrap(), before + 40, "every connection sees the committed statements");
    }
    let stuck = idle_in_transaction(&app.db).await;
    assert!(stuck.is_empty(), "connections left inside a transaction: {stuck:?}");
}

/// Whoever leaves a pooled connection inside a transaction (a `BEGIN` cut off from its answer,
/// raw SQL), the pool never hands it out again: statements run outside any transaction are
/// committed, and another connection sees them.
#[tokio::test]
async fn a_connection_left_inside_a_transaction_is_never_reused() {
    let database = ScratchDatabase::new().await;
    let db = partnerhub::db::connect(&database.url).await.unwrap();
    db.execute_unprepared("CREATE TABLE probe (n INTEGER NOT NULL)").await.unwrap();
    for _ in 0..3 {
        db.execute_unprepared("BEGIN").await.unwrap();
    }
    for n in 0..10 {
        db.execute_unprepared(&format!("INSERT INTO probe (n) VALUES ({n})")).await.unwrap();
    }
    let other = partnerhub::db::connect(&database.url).await.unwrap();
    let count = other
        .query_one_raw(Statement::from_string(other.get_database_backend(), "SELECT COUNT(*) AS n FROM probe"))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "n")
        .unwrap();
    assert_eq!(count, 10, "every statement was committed");
    other.close().await.unwrap();
    db.close().await.unwrap();
}

/// A `partnerhub serve` process on a free port.
pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) base: String,
}

impl Server {
    pub(crate) async fn start(database_url: &str, platform: Uuid, log: &std::path::Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let log = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_partnerhub"))
            .arg("serve")
            .env("DATABASE_URL", database_url)
            .env("PARTNERHUB_LISTEN", format!("127.0.0.1:{port}"))
            .env("PARTNERHUB_JWT_SECRET", SECRET)
            .env("PARTNERHUB_PLATFORM_TENANT", platform.to_string())
            .env("PARTNERHUB_LIFECYCLE_INTERVAL_SECS", "3600")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start partnerhub serve");
        let server = Self { child, base: format!("http://127.0.0.1:{port}") };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = client.get(format!("{}/readyz", server.base)).send().await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                return server;
            }
            assert!(Instant::now() < deadline, "the server did not become ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL.
    fn kill_9(&mut self) {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("reap");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn token(tenant: Uuid, roles: &[&str]) -> String {
    let now = chrono::Utc::now().timestamp();
    let claims = Claims {
        tid: tenant,
        sub: "burst".into(),
        exp: now + 3600,
        roles: roles.iter().map(|r| r.to_string()).collect(),
        nbf: None,
        iat: Some(now),
    };
    mint_hs256(SECRET, &claims).unwrap()
}

/// POSTs over HTTP; `None` when no answer came (the server is gone).
async fn http_post(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    request_id: &str,
    query: &str,
    variables: Value,
) -> Option<Value> {
    let response = client
        .post(format!("{base}/graphql"))
        .bearer_auth(token)
        .header("x-request-id", request_id)
        .json(&json!({"query": query, "variables": variables}))
        .send()
        .await
        .ok()?;
    if !response.status().is_success() {
        return None;
    }
    response.json().await.ok()
}

async fn http_data(client: &reqwest::Client, base: &str, token: &str, query: &str, variables: Value) -> Value {
    let body = http_post(client, base, token, &format!("setup-{}", Uuid::new_v4()), query, variables)
        .await
        .expect("an answer");
    assert!(body.get("errors").is_none(), "{body}");
    body["data"].clone()
}

/// An acknowledged write: which request, and what it answered.
struct Ack {
    request_id: String,
    subscription: Uuid,
    version: i64,
    created: bool,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_during_write_burst_loses_no_acknowledged_write() {
    let database = ScratchDatabase::new().await;
    let platform = Uuid::new_v4();
    let log = std::env::temp_dir().join(format!("partnerhub-kill9-{}.log", Uuid::new_v4().simple()));
    let mut server = Server::start(&database.url, platform, &log).await;
    let client = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();
    let base = server.base.clone();

    // A partner, a customer and 12 subscriptions, through the API.
    let admin = token(platform, &["platform_admin"]);
    let input = json!({"name": "Contoso", "domain": "contoso.example", "partnerType": "DIRECT_BILL", "partnerNetworkId": "PN-1", "cloud": "PUBLIC"});
    let data = http_data(&client, &base, &admin, ONBOARD, json!({"input": input})).await;
    let partner =
        token(data["onboardPartner"]["partner"]["tenantId"].as_str().unwrap().parse().unwrap(), &["admin_agent"]);
    let input = json!({"companyName": "Adatum", "domain": "adatum.example", "country": "US"});
    let data = http_data(&client, &base, &partner, CREATE_CUSTOMER, json!({"input": input})).await;
    let customer = data["createCustomer"]["customer"]["id"].as_str().unwrap().to_owned();
    let mut subscriptions = Vec::new();
    for _ in 0..12 {
        let data = http_data(&client, &base, &partner, SELL, json!({"i": license_input(&customer, 10, None)})).await;
        subscriptions.push(data["createSubscription"]["subscription"]["id"].as_str().unwrap().to_owned());
    }

    // Six writers, each owning two subscriptions (so it knows their versions), change them and
    // sell new ones until the server dies under them.
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..6 {
        let owned: Vec<String> = subscriptions[2 * w..2 * w + 2].to_vec();
        let (client, base, partner, customer, stop) =
            (client.clone(), base.clone(), partner.clone(), customer.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(w as u64);
            let mut state: Vec<(i64, bool)> = vec![(1, false); owned.len()]; // (version, suspended)
            let mut acks = Vec::new();
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let request_id = format!("burst-{w}-{n}");
                let pick = rng.random_range(0..owned.len());
                let (version, suspended) = state[pick];
                let (query, input) = match rng.random_range(0..10) {
                    0 => (SELL, license_input(&customer, 3, Some(&format!("burst-{w}-{}", n / 2)))),
                    1..=2 if !suspended => (SUSPEND, json!({"id": owned[pick], "expectedVersion": version})),
                    1..=2 => (REACTIVATE, json!({"id": owned[pick], "expectedVersion": version})),
                    _ => (
                        UPDATE,
                        json!({"id": owned[pick], "expectedVersion": version, "autoRenew": rng.random_bool(0.5)}),
                    ),
                };
                let Some(body) = http_post(&client, &base, &partner, &request_id, query, json!({"i": input})).await
                else {
                    break; // no answer: the server is gone (what it did with this one is unknown)
                };
                let made = &body["data"][payload_field(query)]["subscription"];
                if body.get("errors").is_some() || !made.is_object() {
                    // Only a dead server may answer otherwise (a reconnecting pool, for instance).
                    assert!(stop.load(Ordering::Relaxed), "{request_id}: {body}");
                    break;
                }
                let subscription = raw_id(made["id"].as_str().unwrap());
                let version_after = made["version"].as_i64().unwrap();
                if query != SELL {
                    state[pick] = (version_after, made["status"] == "SUSPENDED");
                }
                acks.push(Ack { request_id, subscription, version: version_after, created: query == SELL });
            }
            acks
        }));
    }
    // Kill it mid-burst, once the writers have had some answers.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);
    server.kill_9();
    let mut acks: Vec<Ack> = Vec::new();
    for writer in writers {
        acks.extend(writer.await.expect("writer task"));
    }
    eprintln!("kill -9 ({}): {} acknowledged writes to check", backend(), acks.len());
    assert!(acks.len() >= 12, "the burst got answers before the kill ({})", acks.len());

    // The database, opened directly: every acknowledged write is there with its events.
    let db = partnerhub::db::connect(&database.url).await.expect("open the database");
    let ledger = check_ledger(&db).await;
    let mut last: HashMap<Uuid, i64> = HashMap::new();
    for ack in &acks {
        let audited = ledger.audit_by_request.get(&ack.request_id).copied().unwrap_or(0);
        let outboxed = ledger.outbox_by_request.get(&ack.request_id).copied().unwrap_or(0);
        assert_eq!(audited, outboxed, "{}: audit and outbox events", ack.request_id);
        let stored = ledger.versions.get(&ack.subscription).map(|v| i64::from(v.0));
        assert!(stored.is_some(), "{}: its subscription is stored", ack.request_id);
        if ack.created {
            assert!(audited <= 1, "{}: one creation event (none for a replay)", ack.request_id);
        } else {
            assert_eq!(audited, 1, "{} was acknowledged: its change is recorded", ack.request_id);
            let newest = last.entry(ack.subscription).or_default();
            *newest = (*newest).max(ack.version);
        }
    }
    for (subscription, acknowledged) in &last {
        let stored = i64::from(ledger.versions[subscription].0);
        // At most one more change: the request in flight when the server died.
        assert!(
            stored == *acknowledged || stored == acknowledged + 1,
            "subscription {subscription}: version {stored} stored, {acknowledged} acknowledged"
        );
    }
    let stuck = idle_in_transaction(&db).await;
    assert!(stuck.is_empty(), "connections left inside a transaction: {stuck:?}");
    db.close().await.unwrap();

    // Restarted on the same database, it serves: reads and writes.
    let server = Server::start(&database.url, platform, &log).await;
    let sub = &subscriptions[0];
    let data = http_data(
        &client,
        &server.base,
        &partner,
        "query($id: ID!) { subscription(id: $id) { version status } }",
        json!({"id": sub}),
    )
    .await;
    let version = data["subscription"]["version"].as_i64().unwrap();
    let (query, input) = if data["subscription"]["status"] == "SUSPENDED" {
        (REACTIVATE, json!({"id": sub, "expectedVersion": version}))
    } else {
        (UPDATE, json!({"id": sub, "expectedVersion": version, "autoRenew": false}))
    };
    let data = http_data(&client, &server.base, &partner, query, json!({"i": input})).await;
    assert_eq!(data[payload_field(query)]["subscription"]["version"], version + 1);
    drop(server);
    let _ = std::fs::remove_file(&log);
}
