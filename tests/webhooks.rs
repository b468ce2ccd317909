//! Webhooks (`docs/webhooks.md`): signed deliveries to a receiver on 127.0.0.1, retries that
//! survive a restart, R1 at fan-out and at send time, URL checks, roles and tenant isolation, and
//! on PostgreSQL two workers that never send one delivery twice.
//!
//! Most tests drive the worker pass by pass (`run_once`) so that they assert behaviour, not
//! timings; timeouts are only hang guards.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use chrono::Utc;
use entity::enums::{Cloud, RelationshipStatus};
use entity::webhook_delivery;
use hmac::{Hmac, Mac};
use partnerhub::config::Settings;
use partnerhub::domain::audit::{self, By, Change};
use partnerhub::events::webhooks;
use sea_orm::{ActiveModelTrait, EntityTrait, IntoActiveModel, Set};
use serde_json::{Value, json};
use sha2::Sha256;
use uuid::Uuid;

use crate::common::{SECRET, TestApp, error_code};
use crate::write_customers::{CREATE_CUSTOMER, onboard};

const REGISTER: &str = "mutation($input: RegisterWebhookInput!) { registerWebhook(input: $input) { secret webhook { id url eventTypes createdAt createdBy } } }";
const DELETE: &str = "mutation($input: DeleteWebhookInput!) { deleteWebhook(input: $input) { deletedWebhookId } }";
const DELIVERIES: &str = "query($filter: WebhookDeliveryFilter) { webhookDeliveries(first: 50, filter: $filter) { totalCount nodes { id webhookId eventId eventType status attempts lastError lastStatusCode nextAttemptAt createdAt deliveredAt } } }";

/// A hang guard: what a test waits for should come in well under this.
const PATIENCE: Duration = Duration::from_secs(30);

/// One request the receiver got.
#[derive(Clone, Debug)]
struct Received {
    path: String,
    headers: HeaderMap,
    body: String,
    answered: u16,
}

#[derive(Clone, Default)]
struct ReceiverState {
    received: Arc<Mutex<Vec<Received>>>,
    /// Statuses to answer, in order; 200 once empty.
    script: Arc<Mutex<VecDeque<u16>>>,
    /// How long to wait before answering (after recording the request).
    delay: Arc<Mutex<Duration>>,
}

/// A small HTTP server on 127.0.0.1 recording what it is sent.
struct Receiver {
    url: String,
    state: ReceiverState,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start(script: &[u16]) -> Self {
        let state = ReceiverState::default();
        state.script.lock().unwrap().extend(script.iter().copied());
        async fn record(
            State(state): State<ReceiverState>,
            uri: axum::http::Uri,
            headers: HeaderMap,
            body: String,
        ) -> axum::response::Response {
            let status = state.script.lock().unwrap().pop_front().unwrap_or(200);
            state.received.lock().unwrap().push(Received {
                path: uri.path().to_owned(),
                headers,
                body,
                answered: status,
            });
            let delay = *state.delay.lock().unwrap();
            tokio::time::sleep(delay).await;
            let code = StatusCode::from_u16(status).unwrap();
            if code.is_redirection() {
                return (code, [("location", "/elsewhere")], "moved").into_response();
            }
            (code, "x".repeat(2000)).into_response()
        }
        let app = Router::new().fallback(record).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, state, task }
    }

    fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Settings for a receiver on 127.0.0.1 and fast retries.
fn fast_settings() -> Settings {
    let mut settings = Settings::development(SECRET);
    settings.webhooks.allow_private = true;
    settings.webhooks.poll_interval = Duration::from_millis(20);
    settings.webhooks.backoff_base = Duration::from_millis(10);
    settings.webhooks.backoff_cap = Duration::from_millis(50);
    // These tests poll deliveries until they arrive; on a slow machine the polling alone could
    // spend the tenant's cost budget (RATE_LIMITED). Budgets have tests of their own.
    settings.limits.budgets.tenant.capacity = 0;
    settings
}

async fn register(app: &TestApp, token: &str, url: &str, types: &[&str]) -> Value {
    app.gql_as(Some(token), REGISTER, json!({"input": {"url": url, "eventTypes": types}})).await
}

/// Contoso, onboarded, with a webhook for `CUSTOMER_CREATED` at `url`; returns (admin token, hook id).
async fn contoso_hooked(app: &TestApp, url: &str) -> (String, String) {
    let (_, tid) = onboard(app, "Contoso", "contoso.example", "DIRECT_BILL", "PUBLIC").await;
    let admin = app.token(tid, &["admin_agent"]);
    let (hook, _) = register_ok(app, &admin, url, &["CUSTOMER_CREATED"]).await;
    (admin, hook)
}

/// Creates the customer Fabrikam (a `CUSTOMER_CREATED` event); returns the mutation's data.
async fn create_fabrikam(app: &TestApp, token: &str) -> Value {
    let input = json!({"companyName": "Fabrikam", "domain": "fabrikam.example", "country": "US"});
    app.data(token, CREATE_CUSTOMER, json!({"input": input})).await
}

/// Registers a webhook; returns (id, secret).
async fn register_ok(app: &TestApp, token: &str, url: &str, types: &[&str]) -> (String, String) {
    let body = register(app, token, url, types).await;
    assert!(body.get("errors").is_none(), "{body}");
    let payload = &body["data"]["registerWebhook"];
    (payload["webhook"]["id"].as_str().unwrap().to_owned(), payload["secret"].as_str().unwrap().to_owned())
}

/// Runs worker passes until `done` holds (or the hang guard fires).
async fn pass_until(app: &TestApp, settings: &Settings, mut done: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    loop {
        webhooks::run_once(&app.db, &settings.webhooks, app.clock.now()).await.unwrap();
        if done() {
            return;
        }
        assert!(start.elapsed() < PATIENCE, "gave up waiting");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn deliveries(app: &TestApp, token: &str, filter: Value) -> Vec<Value> {
    app.data(token, DELIVERIES, json!({"filter": filter})).await["webhookDeliveries"]["nodes"]
        .as_array()
        .unwrap()
        .clone()
}

/// Records an event on a customer, as a mutation would.
async fn customer_event(app: &TestApp, customer: Uuid) {
    let by = By::system(app.platform(), app.clock.now());
    audit::record(&app.db, &by, touch(customer)).await.unwrap();
}

/// The `CUSTOMER_CREATED` event [`customer_event`] records.
fn touch(customer: Uuid) -> Change {
    Change::new("customer.touch", "CUSTOMER_CREATED", "Customer", customer).customer(customer)
}

/// Records [`touch`] in `txn` (left open) and returns it with the outbox id its event took (a
/// transaction sees its own row).
async fn held_event(app: &TestApp, customer: Uuid) -> (sea_orm::DatabaseTransaction, i64) {
    use sea_orm::{QueryOrder, TransactionTrait};
    let txn = app.db.begin().await.unwrap();
    audit::record(&txn, &By::system(app.platform(), app.clock.now()), touch(customer)).await.unwrap();
    let last = entity::outbox_event::Entity::find()
        .order_by_desc(entity::outbox_event::Column::Id)
        .one(&txn)
        .await
        .unwrap()
        .expect("its own row");
    (txn, last.id)
}

/// Contoso with a webhook at `url` for `CUSTOMER_CREATED`, and its new customer Fabrikam (an
/// event); returns Fabrikam's id.
async fn hooked_fabrikam(app: &TestApp, url: &str) -> Uuid {
    let (admin, _) = contoso_hooked(app, url).await;
    let data = create_fabrikam(app, &admin).await;
    match partnerhub::graphql::ids::decode_any(data["createCustomer"]["customer"]["id"].as_str().unwrap()) {
        Some((_, id)) => id,
        None => panic!("not an id: {data}"),
    }
}

/// One pass of a copy of `worker` at the app's clock; returns the copy, moved on.
async fn worker_pass(app: &TestApp, settings: &Settings, worker: &webhooks::Worker) -> webhooks::Worker {
    let mut moved = worker.clone();
    moved.pass(&app.db, &settings.webhooks, app.clock.now()).await.unwrap();
    moved
}

fn verify_signature(secret: &str, header: &str, body: &str) -> i64 {
    let (t, v1) = header.split_once(",v1=").unwrap();
    let t: i64 = t.strip_prefix("t=").unwrap().parse().unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    let expected: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(v1, expected, "signature does not verify");
    t
}

#[tokio::test]
async fn a_registered_endpoint_gets_a_correctly_signed_delivery() {
    let settings = fast_settings();
    let app = TestApp::with_settings(settings.clone()).await;
    let receiver = Receiver::start(&[]).await;
    let (_, tid) = onboard(&app, "Contoso", "contoso.example", "DIRECT_BILL", "PUBLIC").await;
    let admin = app.token(tid, &["admin_agent"]);
    let (hook_id, secret) = register_ok(&app, &admin, &receiver.url, &["CUSTOMER_CREATED"]).await;
    assert!(secret.starts_with("whsec_") && secret.len() > 40);

    let created = create_fabrikam(&app, &admin).await;
    let customer_id = created["createCustomer"]["customer"]["id"].as_str().unwrap().to_owned();
    pass_until(&app, &settings, || !receiver.received().is_empty()).await;

    let got = receiver.received();
    assert_eq!(got.len(), 1);
    let request = &got[0];
    assert_eq!(request.path, "/hook");
    let body: Value = serde_json::from_str(&request.body).unwrap();
    assert_eq!(body["type"], "CUSTOMER_CREATED");
    assert_eq!(body["nodeType"], "Customer");
    assert_eq!(body["nodeId"], customer_id.as_str());
    assert!(body["id"].as_str().unwrap().starts_with("evt_"));
    assert!(body["occurredAt"].is_string() && body["details"].is_object());
    assert_eq!(request.headers["partnerhub-event-id"], body["id"].as_str().unwrap());
    assert_eq!(request.headers["partnerhub-event-type"], "CUSTOMER_CREATED");
    assert_eq!(request.headers["content-type"], "application/json");
    let t = verify_signature(&secret, request.headers["partnerhub-signature"].to_str().unwrap(), &request.body);
    assert!((Utc::now().timestamp() - t).abs() < 300, "the signed timestamp is the time of sending");
    // A tampered body or another secret does not verify.
    let mut mac = Hmac::<Sha256>::new_from_slice(b"whsec_other").unwrap();
    mac.update(format!("{t}.{}", request.body).as_bytes());
    let other: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    assert!(!request.headers["partnerhub-signature"].to_str().unwrap().ends_with(&other));

    let list = deliveries(&app, &admin, json!({"webhookId": hook_id})).await;
    assert_eq!(list.len(), 1, "{list:?}");
    let delivery = &list[0];
    assert_eq!(delivery["status"], "DELIVERED");
    assert_eq!(delivery["attempts"], 1);
    assert_eq!(delivery["lastStatusCode"], 200);
    assert_eq!(delivery["eventId"], body["id"]);
    assert_eq!(delivery["eventType"], "CUSTOMER_CREATED");
    assert!(delivery["deliveredAt"].is_string() && delivery["nextAttemptAt"].is_null());

    // Registration was audited in its transaction, without the secret.
    let audit = app.data(&admin, "{ auditEvents(first: 50) { nodes { action targetType details } } }", json!({})).await;
    let events = audit["auditEvents"]["nodes"].as_array().unwrap();
    let registered = events.iter().find(|e| e["action"] == "webhook.register").expect("audited");
    assert_eq!(registered["targetType"], "Webhook");
    assert!(!registered.to_string().contains(&secret), "the secret is never in the audit trail");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_delivery_is_retried_after_a_restart_and_arrives_once() {
    let mut settings = fast_settings();
    // The first instance waits long before a retry: the retry happens on the second one.
    settings.webhooks.backoff_base = Duration::from_millis(300);
    settings.webhooks.backoff_cap = Duration::from_millis(300);
    let app = TestApp::with_settings(settings.clone()).await;
    let receiver = Receiver::start(&[500]).await;
    let (admin, _) = contoso_hooked(&app, &receiver.url).await;
    create_fabrikam(&app, &admin).await;

    // First instance: its worker gets a 500, records the failure, then stops on shutdown.
    let first = webhooks::spawn(app.state.clone());
    let wait = async {
        loop {
            let list = deliveries(&app, &admin, json!({})).await;
            if list.first().is_some_and(|d| d["attempts"] == 1) {
                return list[0].clone();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let failed = tokio::time::timeout(PATIENCE, wait).await.expect("first attempt");
    assert_eq!(failed["status"], "PENDING");
    assert_eq!(failed["lastStatusCode"], 500);
    assert!(failed["lastError"].as_str().unwrap().starts_with("HTTP 500"));
    assert!(failed["lastError"].as_str().unwrap().len() <= 600, "only an excerpt of the response is kept");
    assert!(failed["nextAttemptAt"].is_string());
    app.state.shutdown.cancel();
    tokio::time::timeout(PATIENCE, first).await.expect("worker stops on shutdown").unwrap();

    // Second instance on the same database.
    let second_state =
        partnerhub::state::AppState::new(app.db.clone(), settings.clone(), partnerhub::clock::Clock::system()).unwrap();
    let second = webhooks::spawn(second_state.clone());
    let wait = async {
        loop {
            let list = deliveries(&app, &admin, json!({"status": "DELIVERED"})).await;
            if !list.is_empty() {
                return list[0].clone();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let delivered = tokio::time::timeout(PATIENCE, wait).await.expect("retried after the restart");
    assert_eq!(delivered["attempts"], 2);
    assert_eq!(delivered["lastStatusCode"], 200);
    assert!(delivered["lastError"].is_null());
    second_state.shutdown.cancel();
    tokio::time::timeout(PATIENCE, second).await.unwrap().unwrap();
    // Nothing more is due: further passes send nothing.
    for _ in 0..3 {
        webhooks::run_once(&app.db, &settings.webhooks, app.clock.now()).await.unwrap();
    }
    let got = receiver.received();
    assert_eq!(got.iter().map(|r| r.answered).collect::<Vec<_>>(), vec![500, 200], "exactly once as a success");
    assert_eq!(got[0].headers["partnerhub-event-id"], got[1].headers["partnerhub-event-id"], "stable event id");
}

#[tokio::test]
async fn an_endpoint_receives_only_what_its_owner_may_see_now() {
    let settings = fast_settings();
    let app = TestApp::with_settings(settings.clone()).await;
    let (a_receiver, b_receiver) = (Receiver::start(&[]).await, Receiver::start(&[]).await);
    let (_, a_tid) = onboard(&app, "Contoso", "contoso.example", "DIRECT_BILL", "PUBLIC").await;
    let (b_gid, b_tid) = onboard(&app, "Litware", "litware.example", "DIRECT_BILL", "PUBLIC").await;
    let (a, b) = (app.token(a_tid, &["admin_agent"]), app.token(b_tid, &["admin_agent"]));
    register_ok(&app, &a, &a_receiver.url, &["CUSTOMER_CREATED"]).await;
    let (b_hook, _) = register_ok(&app, &b, &b_receiver.url, &["CUSTOMER_CREATED"]).await;

    // A creates a customer: A hears of it, B (no link) does not.
    let created = create_fabrikam(&app, &a).await;
    let customer_tenant: Uuid = created["createCustomer"]["customer"]["tenantId"].as_str().unwrap().parse().unwrap();
    let customer = entity::customer::Entity::find()
        .all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.tenant_id == customer_tenant)
        .unwrap();
    pass_until(&app, &settings, || a_receiver.received().len() == 1).await;
    for _ in 0..3 {
        webhooks::run_once(&app.db, &settings.webhooks, app.clock.now()).await.unwrap();
    }
    assert!(b_receiver.received().is_empty(), "B may not see the customer");
    assert!(deliveries(&app, &b, json!({})).await.is_empty(), "no delivery row for an invisible event");

    // B gains a reseller link: the next event on the customer reaches it.
    let b_partner = partnerhub::graphql::ids::decode_any(&b_gid).unwrap().1;
    let link = app.seed().reseller_link(b_partner, &customer).await.unwrap();
    customer_event(&app, customer.id).await;
    pass_until(&app, &settings, || b_receiver.received().len() == 1).await;

    // R1 at send time: an event fanned out while B could see it, not sent once the link is gone.
    customer_event(&app, customer.id).await;
    let mut report = webhooks::PassReport::default();
    webhooks::fan_out(&app.db, &settings.webhooks, app.clock.now(), &mut report).await.unwrap();
    assert_eq!(report.deliveries, 2, "one for A, one for B");
    let mut ended = link.into_active_model();
    ended.status = Set(RelationshipStatus::Terminated);
    ended.update(&app.db).await.unwrap();
    for _ in 0..3 {
        webhooks::run_once(&app.db, &settings.webhooks, app.clock.now()).await.unwrap();
    }
    assert_eq!(b_receiver.received().len(), 1, "not sent once B lost sight of the customer");
    let failed = deliveries(&app, &b, json!({"webhookId": b_hook, "status": "FAILED"})).await;
    assert_eq!(failed.len(), 1);
    assert!(failed[0]["lastError"].as_str().unwrap().contains("no longer visible"), "{failed:?}");

    // Lost visibility before fan-out: no delivery at all.
    customer_event(&app, customer.id).await;
    for _ in 0..3 {
        webhooks::run_once(&app.db, &settings.webhooks, app.clock.now()).await.unwrap();
    }
    assert_eq!(b_receiver.received().len(), 1);
    assert_eq!(deliveries(&app, &b, json!({})).await.len(), 2);
    assert_eq!(a_receiver.received().len(), 4, "A saw every event");
}

#[tokio::test]
async fn webhook_urls_must_be_https_on_public_addresses() {
    let app = TestApp::new().await;
    let (_, tid) = onboard(&app, "Contoso", "contoso.example", "DIRECT_BILL", "PUBLIC").await;
    let admin = app.token(tid, &["admin_agent"]);
    let refused = [
        ("http://93.184.215.14/hook", "https"),
        ("ftp://93.184.215.14/hook", "https"),
        ("https://127.0.0.1/hook", "loopback"),
        ("https://localhost/hook", "localhost"),
        ("https://10.1.2.3/hook", "private"),
        ("https://192.168.0.10/hook", "private"),
        ("https://169.254.169.254/latest/meta-data", "link-local"),
        ("https://100.64.0.1/hook", "carrier-grade NAT"),
        ("https://0.0.0.0/hook", "unspecified"),
        ("https://224.0.0.1/hook", "multicast"),
        ("https://[::1]/hook", "loopback"),
        ("https://[fd12:3456::1]/hook", "unique local"),
        ("https://[fe80::1]/hook", "link-local"),
        ("https://[::ffff:10.0.0.1]/hook", "private"),
        ("https://user:pw@93.184.215.14/hook", "credentials"),
        ("not a url", "not a URL"),
    ];
    for (url, why) in refused {
        let body = register(&app, &admin, url, &["CUSTOMER_CREATED"]).await;
        assert_eq!(error_code(&body), Some("BAD_USER_INPUT"), "{url}: {body}");
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(message.starts_with("`url`") && message.contains(why), "{url}: {message}");
    }
    let long = format!("https://93.184.215.14/{}", "a".repeat(2048));
    let body = register(&app, &admin, &long, &["CUSTOMER_CREATED"]).await;
    assert_eq!(error_code(&body), Some("BAD_USER_INPUT"));
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("2048"));
    let spaces = format!("https://93.184.215.14/{}", "é".repeat(1000));
    let body = register(&app, &admin, &spaces, &["CUSTOMER_CREATED"]).await;
    assert_eq!(error_code(&body), Some("BAD_USER_INPUT"), "6000 characters once percent-encoded: {body}");
    let body = register(&app, &admin, "https://93.184.215.14/hook", &[]).await;
    assert_eq!(error_code(&body), Some("BAD_USER_INPUT"));
    assert!(body["errors"][0]["message"].as_str().unwrap().starts_with("`eventTypes`"));
    let body = register(&app, &admin, "https://93.184.215.14/hook", &["NOT_A_TYPE"]).await;
    assert!(body.get("errors").is_some(), "unknown event types are refused by the schema");
    // A public https address is accepted (an IP literal: no DNS needed by the test).
    register_ok(&app, &admin, "https://93.184.215.14/hook", &["CUSTOMER_CREATED", "CUSTOMER_CREATED"]).await;
}

#[tokio::test]
async fn targets_are_checked_again_at_send_time_and_redirects_are_not_followed() {
    let settings = fast_settings();
    let app = TestApp::with_settings(settings.clone()).await;
    let redirecting = Receiver::start(&[302, 302, 302, 302]).await;
    let (admin, hook) = contoso_hooked(&app, &redirecting.url).await;
    create_fabrikam(&app, &admin).await;
    pass_until(&app, &settings, || !redirecting.received().is_empty()).await;
    let got = redirecting.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].path, "/hook", "the redirect to /elsewhere is not followed");
    let list = deliveries(&app, &admin, json!({"webhookId": hook})).await;
    assert_eq!(list[0]["status"], "PENDING");
    assert_eq!(list[0]["lastStatusCode"], 302);
    assert!(list[0]["lastError"].as_str().unwrap().contains("redirects are not followed"));

    // The same endpoint under production settings: refused at send time, nothing sent.
    let mut strict = settings.clone();
    strict.webhooks.allow_private = false;
    let start = std::time::Instant::now();
    loop {
        webhooks::run_once(&app.db, &strict.webhooks, app.clock.now()).await.unwrap();
        let list = deliveries(&app, &admin, json!({"webhookId": hook})).await;
        if list[0]["status"] == "FAILED" {
            assert!(list[0]["lastError"].as_str().unwrap().contains("refused"), "{list:?}");
            break;
        }
        assert!(start.elapsed() < PATIENCE);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(redirecting.received().len(), 1, "nothing sent to a refused target");
}

#[tokio::test]
async fn roles_tenant_isolation_and_the_secret_shown_once() {
    let mut settings = fast_settings();
    settings.webhooks.max_per_tenant = 2;
    let app = TestApp::with_settings(settings.clone()).await;
    let receiver = Receiver::start(&[]).await;
    let (_, a_tid) = onboard(&app, "Contoso", "contoso.example", "DIRECT_BILL", "PUBLIC").await;
    let (_, b_tid) = onboard(&app, "Litware", "litware.example", "DIRECT_BILL", "PUBLIC").await;
    let (a, b) = (app.token(a_tid, &["admin_agent"]), app.token(b_tid, &["admin_agent"]));
    let types = ["CUSTOMER_CREATED"];

    // Roles: partner admin_agent, customer global_admin, platform_admin; nobody else.
    let customer =
        app.seed().customer(Uuid::new_v4(), "Fabrikam", "fabrikam.example", "US", Cloud::Public).await.unwrap();
    for token in [
        app.token(a_tid, &["sales_agent"]),
        app.token(a_tid, &["helpdesk_agent"]),
        app.token(customer.tenant_id, &["reader"]),
        app.token(customer.tenant_id, &["billing_admin"]),
    ] {
        assert_eq!(error_code(&register(&app, &token, &receiver.url, &types).await), Some("FORBIDDEN"));
        assert_eq!(
            error_code(&app.gql_as(Some(&token), "{ webhooks { totalCount } }", json!({})).await),
            Some("FORBIDDEN")
        );
        assert_eq!(
            error_code(&app.gql_as(Some(&token), "{ webhookDeliveries { totalCount } }", json!({})).await),
            Some("FORBIDDEN")
        );
    }
    register_ok(&app, &app.token(customer.tenant_id, &["global_admin"]), &receiver.url, &types).await;
    register_ok(&app, &app.token(app.platform(), &["platform_admin"]), &receiver.url, &types).await;

    // Each tenant sees and deletes only its own.
    let (a_hook, secret) = register_ok(&app, &a, &receiver.url, &types).await;
    let listed = app.data(&a, "{ webhooks { totalCount nodes { id url eventTypes } } }", json!({})).await;
    assert_eq!(listed["webhooks"]["totalCount"], 1);
    assert_eq!(listed["webhooks"]["nodes"][0]["id"], a_hook.as_str());
    assert_eq!(listed["webhooks"]["nodes"][0]["eventTypes"], json!(["CUSTOMER_CREATED"]));
    assert!(!listed.to_string().contains(&secret));
    let b_list = app.data(&b, "{ webhooks { totalCount } webhookDeliveries { totalCount } }", json!({})).await;
    assert_eq!(b_list["webhooks"]["totalCount"], 0);
    let body = app.gql_as(Some(&b), DELETE, json!({"input": {"id": a_hook}})).await;
    assert_eq!(error_code(&body), Some("NOT_FOUND"), "{body}");
    let unknown = partnerhub::graphql::ids::encode(partnerhub::graphql::ids::NodeType::Webhook, Uuid::now_v7());
    let body = app.gql_as(Some(&b), DELETE, json!({"input": {"id": unknown.0}})).await;
    assert_eq!(error_code(&body), Some("NOT_FOUND"), "the same answer as for another tenant's");
    assert!(deliveries(&app, &b, json!({"webhookId": a_hook})).await.is_empty());

    // A's event: A's deliveries are A's only.
    app.data(
        &a,
        CREATE_CUSTOMER,
        json!({"input": {"companyName": "Adatum", "domain": "adatum.example", "country": "US"}}),
    )
    .await;
    pass_until(&app, &settings, || receiver.received().len() >= 2).await;
    assert_eq!(deliveries(&app, &a, json!({})).await.len(), 1);
    assert_eq!(deliveries(&app, &b, json!({})).await.len(), 0);

    // The secret is not a field: it cannot be read back.
    let body = app.gql_as(Some(&a), "{ webhooks { nodes { secret } } }", json!({})).await;
    assert_eq!(error_code(&body), Some("GRAPHQL_VALIDATION_FAILED"), "{body}");

    // Bounded: at most `max_per_tenant` live webhooks.
    register_ok(&app, &a, &receiver.url, &types).await;
    let body = register(&app, &a, &receiver.url, &types).await;
    assert_eq!(error_code(&body), Some("CONFLICT"), "{body}");

    // Deleting frees a place, the webhook disappears, a second delete is NOT_FOUND; audited.
    let data = app.data(&a, DELETE, json!({"input": {"id": a_hook}})).await;
    assert_eq!(data["deleteWebhook"]["deletedWebhookId"], a_hook.as_str());
    let listed = app.data(&a, "{ webhooks { nodes { id } } }", json!({})).await;
    assert!(!listed.to_string().contains(&a_hook));
    assert_eq!(error_code(&app.gql_as(Some(&a), DELETE, json!({"input": {"id": a_hook}})).await), Some("NOT_FOUND"));
    register_ok(&app, &a, &receiver.url, &types).await;
    let audit = app.data(&a, "{ auditEvents(first: 50) { nodes { action } } }", json!({})).await;
    assert!(audit.to_string().contains("webhook.delete"));
    // Deleted webhooks' deliveries stay readable.
    assert_eq!(deliveries(&app, &a, json!({"webhookId": a_hook})).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_on_postgres_never_send_the_same_delivery_twice() {
    if crate::common::backend() != "postgres" {
        return;
    }
    let settings = fast_settings();
    let app = TestApp::with_settings(settings.clone()).await;
    let receiver = Receiver::start(&[]).await;
    let (_, tid) = onboard(&app, "Contoso", "contoso.example", "DIRECT_BILL", "PUBLIC").await;
    let admin = app.token(tid, &["admin_agent"]);
    register_ok(&app, &admin, &receiver.url, &["CUSTOMER_CREATED"]).await;
    register_ok(&app, &admin, &receiver.url, &["CUSTOMER_CREATED"]).await;
    let platform =
        app.seed().customer(Uuid::new_v4(), "Fabrikam", "fabrikam.example", "US", Cloud::Public).await.unwrap();
    let partner =
        entity::partner::Entity::find().all(&app.db).await.unwrap().into_iter().find(|p| p.tenant_id == tid).unwrap();
    app.seed().reseller_link(partner.id, &platform).await.unwrap();
    const EVENTS: usize = 40;
    for _ in 0..EVENTS {
        customer_event(&app, platform.id).await;
    }
    let expected = EVENTS * 2;
    let worker = |db: sea_orm::DatabaseConnection, settings: Settings, clock: partnerhub::clock::Clock| {
        tokio::spawn(async move {
            let start = std::time::Instant::now();
            loop {
                webhooks::run_once(&db, &settings.webhooks, clock.now()).await.unwrap();
                let done = webhook_delivery::Entity::find()
                    .all(&db)
                    .await
                    .unwrap()
                    .iter()
                    .filter(|d| d.status == "DELIVERED")
                    .count();
                if done == expected || start.elapsed() > PATIENCE {
                    return;
                }
            }
        })
    };
    let one = worker(app.db.clone(), settings.clone(), app.clock.clone());
    let two = worker(app.db.clone(), settings.clone(), app.clock.clone());
    one.await.unwrap();
    two.await.unwrap();
    let got = receiver.received();
    let mut seen = std::collections::HashSet::new();
    for request in &got {
        let body: Value = serde_json::from_str(&request.body).unwrap();
        seen.insert(body["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(got.len(), expected, "every delivery sent exactly once ({} requests)", got.len());
    assert_eq!(seen.len(), EVENTS);
    let rows = webhook_delivery::Entity::find().all(&app.db).await.unwrap();
    assert_eq!(rows.len(), expected, "one delivery per webhook and event");
    assert!(rows.iter().all(|d| d.status == "DELIVERED" && d.attempts == 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_a_claim_skips_the_deliveries_another_instance_holds() {
    use sea_orm::{QuerySelect, TransactionTrait};
    if crate::common::backend() != "postgres" {
        return;
    }
    let settings = fast_settings();
    let app = TestApp::with_settings(settings.clone()).await;
    let receiver = Receiver::start(&[]).await;
    let (admin, _) = contoso_hooked(&app, &receiver.url).await;
    for i in 0..6 {
        let domain = format!("c{i}.example");
        app.data(&admin, CREATE_CUSTOMER, json!({"input": {"companyName": "C", "domain": domain, "country": "US"}}))
            .await;
    }
    let mut report = webhooks::PassReport::default();
    webhooks::fan_out(&app.db, &settings.webhooks, app.clock.now(), &mut report).await.unwrap();
    assert_eq!(report.deliveries, 6);

    // Another instance is in the middle of claiming three rows (it holds their row locks).
    let other = app.db.begin().await.unwrap();
    let held = webhook_delivery::Entity::find().limit(3).lock_exclusive().all(&other).await.unwrap();
    assert_eq!(held.len(), 3);
    // This instance neither waits for them nor takes them.
    let mut report = webhooks::PassReport::default();
    let pass = webhooks::send::send_due(&app.db, &settings.webhooks, app.clock.now(), &mut report);
    tokio::time::timeout(Duration::from_secs(10), pass).await.expect("a claim does not wait for locked rows").unwrap();
    assert_eq!(report.succeeded, 3);
    let sent: Vec<String> = receiver.received().iter().map(|r| r.body.clone()).collect();
    for row in &held {
        assert!(!sent.iter().any(|b| b.contains(&format!("\"evt_{}\"", row.outbox_event_id))), "a held row was sent");
    }
    other.commit().await.unwrap();
    pass_until(&app, &settings, || receiver.received().len() == 6).await;
    for _ in 0..3 {
        webhooks::run_once(&app.db, &settings.webhooks, app.clock.now()).await.unwrap();
    }
    assert_eq!(receiver.received().len(), 6, "each delivery sent once");
}

#[tokio::test]
async fn the_fan_out_scan_starts_above_events_settled_long_ago() {
    let settings = fast_settings();
    let app = TestApp::with_settings(settings.clone()).await;
    let receiver = Receiver::start(&[]).await;
    let (admin, _) = contoso_hooked(&app, &receiver.url).await;
    let create = |i: usize| json!({"input": {"companyName": "C", "domain": format!("c{i}.example"), "country": "US"}});
    app.data(&admin, CREATE_CUSTOMER, create(1)).await;
    let mut floor = webhooks::Floor::default();
    let mut report = webhooks::PassReport::default();
    webhooks::fan_out_from(&app.db, &settings.webhooks, app.clock.now(), &mut floor, &mut report).await.unwrap();
    assert_eq!(report.deliveries, 1);
    assert_eq!(floor.0, 0, "fresh marks do not raise the floor (a smaller id may still commit)");
    app.clock.advance(webhooks::FLOOR_SAFETY + chrono::Duration::minutes(1));
    webhooks::fan_out_from(&app.db, &settings.webhooks, app.clock.now(), &mut floor, &mut report).await.unwrap();
    let last = entity::outbox_event::Entity::find().all(&app.db).await.unwrap().iter().map(|e| e.id).max().unwrap();
    assert_eq!(floor.0, last, "settled marks raise it");
    app.data(&admin, CREATE_CUSTOMER, create(2)).await;
    let mut report = webhooks::PassReport::default();
    webhooks::fan_out_from(&app.db, &settings.webhooks, app.clock.now(), &mut floor, &mut report).await.unwrap();
    assert_eq!(report.deliveries, 1, "events above the floor are still found");
}

#[tokio::test]
async fn a_delivery_still_failing_at_the_deadline_is_given_up() {
    let mut settings = fast_settings();
    settings.webhooks.deadline = Duration::from_secs(0);
    let app = TestApp::with_settings(settings.clone()).await;
    let receiver = Receiver::start(&[503, 503, 503]).await;
    let (admin, _) = contoso_hooked(&app, &receiver.url).await;
    create_fabrikam(&app, &admin).await;
    pass_until(&app, &settings, || !receiver.received().is_empty()).await;
    for _ in 0..3 {
        webhooks::run_once(&app.db, &settings.webhooks, app.clock.now()).await.unwrap();
    }
    assert_eq!(receiver.received().len(), 1, "no retry past the deadline");
    let list = deliveries(&app, &admin, json!({})).await;
    assert_eq!(list[0]["status"], "FAILED");
    assert_eq!(list[0]["attempts"], 1);
    assert_eq!(list[0]["lastStatusCode"], 503);
    assert!(list[0]["lastError"].as_str().unwrap().starts_with("gave up at the deadline; last attempt: HTTP 503"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_in_progress_at_shutdown_finishes_and_is_recorded() {
    let settings = fast_settings();
    let app = TestApp::with_settings(settings.clone()).await;
    let receiver = Receiver::start(&[]).await;
    *receiver.state.delay.lock().unwrap() = Duration::from_millis(500);
    let (admin, _) = contoso_hooked(&app, &receiver.url).await;
    create_fabrikam(&app, &admin).await;
    let worker = webhooks::spawn(app.state.clone());
    let arrived = async {
        while receiver.received().is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(PATIENCE, arrived).await.expect("the send started");
    // Shutdown while the receiver has not answered yet.
    app.state.shutdown.cancel();
    tokio::time::timeout(PATIENCE, worker).await.expect("the worker stops").unwrap();
    let list = deliveries(&app, &admin, json!({})).await;
    assert_eq!(list[0]["status"], "DELIVERED", "the send under way was finished and recorded: {list:?}");
    assert_eq!(receiver.received().len(), 1);
}

#[tokio::test]
async fn a_crashed_instances_claim_is_sent_again_once_its_lease_expires() {
    use sea_orm::{ColumnTrait, QueryFilter};
    let settings = fast_settings();
    let app = TestApp::with_settings(settings.clone()).await;
    let receiver = Receiver::start(&[]).await;
    let (admin, _) = contoso_hooked(&app, &receiver.url).await;
    create_fabrikam(&app, &admin).await;
    let mut report = webhooks::PassReport::default();
    webhooks::fan_out(&app.db, &settings.webhooks, app.clock.now(), &mut report).await.unwrap();
    // Another instance claimed it, then died before recording anything.
    let lease = chrono::Duration::from_std(settings.webhooks.lease).unwrap();
    webhook_delivery::Entity::update_many()
        .col_expr(webhook_delivery::Column::LeaseToken, sea_orm::sea_query::Expr::val(Uuid::now_v7()))
        .col_expr(webhook_delivery::Column::LeaseUntil, sea_orm::sea_query::Expr::val(app.clock.now() + lease))
        .filter(webhook_delivery::Column::Status.eq("PENDING"))
        .exec(&app.db)
        .await
        .unwrap();
    for _ in 0..3 {
        webhooks::run_once(&app.db, &settings.webhooks, app.clock.now()).await.unwrap();
    }
    assert!(receiver.received().is_empty(), "a live lease is respected");
    app.clock.advance(lease + chrono::Duration::seconds(1));
    pass_until(&app, &settings, || receiver.received().len() == 1).await;
    let list = deliveries(&app, &admin, json!({})).await;
    assert_eq!(list[0]["status"], "DELIVERED");
}

/// A running worker looks only above the highest event it has seen (a pass costs the new events)
/// and at the ids it skipped: an event whose id committed after a higher one is delivered on the
/// pass after its commit, once; an id that never commits is waited for no longer than
/// `FLOOR_SAFETY`.
#[tokio::test]
async fn a_worker_looks_above_what_it_fanned_out_and_picks_up_ids_that_commit_late() {
    // PostgreSQL only: on SQLite, writers are serialized and ids commit in order.
    if crate::common::backend() != "postgres" {
        return;
    }
    let settings = fast_settings();
    let app = TestApp::with_settings(settings.clone()).await;
    let receiver = Receiver::start(&[]).await;
    let fabrikam = hooked_fabrikam(&app, &receiver.url).await;
    // The first pass sweeps from the floor: Fabrikam's creation is delivered.
    let mut worker = worker_pass(&app, &settings, &webhooks::Worker::default()).await;
    assert_eq!(receiver.received().len(), 1);

    // Events whose ids are taken in transactions left open, then a later one committed.
    let (slow, _) = held_event(&app, fabrikam).await;
    let (abandoned, _) = held_event(&app, fabrikam).await;
    customer_event(&app, fabrikam).await;
    worker = worker_pass(&app, &settings, &worker).await;
    assert_eq!(receiver.received().len(), 2, "the committed event, found above the worker's hint");
    let waiting = worker.gaps();
    assert!(waiting >= 2, "the ids still in flight are waited for: {waiting}");
    worker = worker_pass(&app, &settings, &worker).await;
    assert_eq!(receiver.received().len(), 2, "nothing new: nothing sent");
    // The slow one commits: the next pass delivers it, once.
    slow.commit().await.unwrap();
    worker = worker_pass(&app, &settings, &worker).await;
    assert_eq!(receiver.received().len(), 3, "the late event, delivered on the pass after its commit");
    assert_eq!(worker.gaps(), waiting - 1);
    for _ in 0..3 {
        worker = worker_pass(&app, &settings, &worker).await;
    }
    assert_eq!(receiver.received().len(), 3, "delivered once");
    // The other is rolled back: given up after FLOOR_SAFETY (the sweep due by then finds nothing).
    abandoned.rollback().await.unwrap();
    app.clock.advance(webhooks::FLOOR_SAFETY + chrono::Duration::seconds(1));
    worker = worker_pass(&app, &settings, &worker).await;
    worker = worker_pass(&app, &settings, &worker).await;
    assert_eq!(worker.gaps(), 0, "an id that never commits is not waited for forever");
    assert_eq!(receiver.received().len(), 3);
}

/// Late commits far apart in the outbox (more than two batches of ids between them) are found
/// among the worker's gaps on one pass, and each gets its delivery, once.
#[tokio::test]
async fn ids_committed_late_far_apart_are_fanned_out_once_each() {
    use sea_orm::{ColumnTrait, QueryFilter};
    if crate::common::backend() != "postgres" {
        return;
    }
    let settings = fast_settings();
    let app = TestApp::with_settings(settings.clone()).await;
    let receiver = Receiver::start(&[]).await;
    let fabrikam = hooked_fabrikam(&app, &receiver.url).await;
    let mut worker = webhooks::Worker::default();
    worker = worker_pass(&app, &settings, &worker).await;
    let (first, a) = held_event(&app, fabrikam).await;
    for _ in 0..450 {
        customer_event(&app, fabrikam).await;
    }
    let (second, b) = held_event(&app, fabrikam).await;
    customer_event(&app, fabrikam).await;
    for _ in 0..4 {
        worker = worker_pass(&app, &settings, &worker).await;
    }
    assert!(b - a > 400, "{a} and {b}");
    assert_eq!(worker.gaps(), 2, "the two open transactions' ids are waited for");
    first.commit().await.unwrap();
    second.commit().await.unwrap();
    worker = worker_pass(&app, &settings, &worker).await;
    assert_eq!(worker.gaps(), 0);
    for id in [a, b] {
        let rows = webhook_delivery::Entity::find()
            .filter(webhook_delivery::Column::OutboxEventId.eq(id))
            .all(&app.db)
            .await
            .unwrap();
        assert_eq!(rows.len(), 1, "event {id}: one delivery");
    }
    worker_pass(&app, &settings, &worker).await;
    let deliveries = webhook_delivery::Entity::find()
        .filter(webhook_delivery::Column::OutboxEventId.is_in([a, b]))
        .all(&app.db)
        .await
        .unwrap();
    assert_eq!(deliveries.len(), 2, "nothing fanned out twice");
}
