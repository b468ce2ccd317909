//! The live `events` stream over WebSocket (`/graphql/ws`, graphql-transport-ws), against a real
//! server on 127.0.0.1: R1 at delivery, filters, every close code of the protocol, (on
//! PostgreSQL) a mutation made through one server heard by a subscriber of another, and a
//! subscriber further behind than the buffer ended with `EVENTS_LAGGED` (in process).
//!
//! Timeouts here are hang guards only, with one exception: the two-server test expects the other
//! server's subscriber within 10 s, where without `NOTIFY` it would wait for a 60 s poll.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use partnerhub::auth::jwt::{Claims, mint_hs256};
use partnerhub::config::Settings;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use uuid::Uuid;

use crate::common::{SECRET, TestApp, error_code};
use crate::write_customers::{CREATE_CUSTOMER, onboard};
use crate::write_relationships::{REQUEST, TERMINATE};
use crate::write_subscriptions::SELL;

const GUARD: Duration = Duration::from_secs(10);

const EVENTS: &str =
    "subscription($types: [EventType!], $node: ID) { events(types: $types, nodeId: $node) { id type nodeId details } }";
const UPDATE: &str =
    "mutation($i: UpdateSubscriptionInput!) { updateSubscription(input: $i) { subscription { id version } } }";
const SUSPEND: &str =
    "mutation($i: SubscriptionActionInput!) { suspendSubscription(input: $i) { subscription { version status } } }";
const ACCEPT: &str = "mutation($i: RelationshipActionInput!) { acceptRelationship(input: $i) { relationship { id } } }";

/// Serves the app on 127.0.0.1:0 until its state's shutdown token is cancelled.
async fn serve(app: &TestApp) -> SocketAddr {
    serve_state(app.state.clone()).await
}

/// Serves `state` as `partnerhub serve` does: its event feed running, on a free port.
async fn serve_state(state: partnerhub::state::AppState) -> SocketAddr {
    state.feed.start().await.expect("event feed");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let limits =
        partnerhub::http::server::ServeLimits { max_connections: 64, header_read_timeout: Duration::from_secs(10) };
    let stop = state.shutdown.clone().cancelled_owned();
    tokio::spawn(partnerhub::http::server::serve(listener, partnerhub::app(state), limits, stop));
    addr
}

/// What the server sent: a protocol message, or the close frame (code, reason).
#[derive(Debug)]
enum Received {
    Json(Value),
    Closed(u16, String),
}

struct Ws(WebSocketStream<MaybeTlsStream<TcpStream>>);

impl Ws {
    async fn open(addr: SocketAddr) -> Self {
        Self::open_with(addr, Some("graphql-transport-ws")).await.expect("websocket opens")
    }

    async fn open_with(
        addr: SocketAddr,
        protocol: Option<&str>,
    ) -> Result<Self, tokio_tungstenite::tungstenite::Error> {
        let mut request = format!("ws://{addr}/graphql/ws").into_client_request().expect("request");
        if let Some(protocol) = protocol {
            request.headers_mut().insert("sec-websocket-protocol", protocol.parse().expect("header"));
        }
        let (stream, _) =
            tokio::time::timeout(GUARD, tokio_tungstenite::connect_async(request)).await.expect("hang")?;
        Ok(Self(stream))
    }

    /// Opens, sends `connection_init` with the token, expects `connection_ack`.
    async fn authenticated(addr: SocketAddr, token: &str) -> Self {
        let mut ws = Self::open(addr).await;
        ws.send(json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}})).await;
        match ws.recv().await {
            Received::Json(m) if m["type"] == "connection_ack" => ws,
            other => panic!("expected connection_ack, got {other:?}"),
        }
    }

    async fn send(&mut self, message: Value) {
        self.send_text(&message.to_string()).await;
    }

    async fn send_text(&mut self, text: &str) {
        self.0.send(Message::Text(text.into())).await.expect("send");
    }

    async fn recv(&mut self) -> Received {
        loop {
            let message = tokio::time::timeout(GUARD, self.0.next()).await.expect("the server said nothing for 10 s");
            match message {
                Some(Ok(Message::Text(text))) => return Received::Json(serde_json::from_str(&text).expect("json")),
                Some(Ok(Message::Close(Some(frame)))) => {
                    return Received::Closed(frame.code.into(), frame.reason.to_string());
                }
                Some(Ok(Message::Close(None))) | None => return Received::Closed(1005, String::new()),
                Some(Ok(_)) => continue,
                Some(Err(err)) => panic!("websocket error: {err}"),
            }
        }
    }

    /// Reads until the close frame; panics on anything but pings and pongs before it.
    async fn closed(&mut self) -> (u16, String) {
        loop {
            match self.recv().await {
                Received::Closed(code, reason) => return (code, reason),
                Received::Json(m) if m["type"] == "pong" => continue,
                Received::Json(m) => panic!("expected the socket to close, got {m}"),
            }
        }
    }

    async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        self.send(json!({"type": "subscribe", "id": id, "payload": {"query": query, "variables": variables}})).await;
    }

    /// The next protocol message.
    /// Sends a query and waits for its answer: operations subscribed before it are registered.
    async fn sync(&mut self) {
        self.send(json!({"type": "subscribe", "id": "sync", "payload": {"query": "{ viewer { tenantKind } }"}})).await;
        assert_eq!(self.next_message().await["type"], "next");
        assert_eq!(self.next_message().await["type"], "complete");
    }

    async fn next_message(&mut self) -> Value {
        match self.recv().await {
            Received::Json(m) => m,
            other => panic!("expected a message, got {other:?}"),
        }
    }
}

/// Reads `count` `next` messages per operation id in `counts`; returns the events per id.
async fn collect(ws: &mut Ws, counts: &[(&str, usize)]) -> std::collections::HashMap<String, Vec<Value>> {
    let mut out: std::collections::HashMap<String, Vec<Value>> = Default::default();
    let done = |out: &std::collections::HashMap<String, Vec<Value>>| {
        counts.iter().all(|(id, n)| out.get(*id).map_or(0, Vec::len) >= *n)
    };
    while !done(&out) {
        let message = ws.next_message().await;
        assert_eq!(message["type"], "next", "{message}");
        assert!(message["payload"].get("errors").is_none(), "{message}");
        let id = message["id"].as_str().expect("id").to_owned();
        out.entry(id).or_default().push(message["payload"]["data"]["events"].clone());
    }
    out
}

fn summary(events: &[Value]) -> Vec<(String, String)> {
    events
        .iter()
        .map(|e| (e["type"].as_str().unwrap_or("?").to_owned(), e["nodeId"].as_str().unwrap_or("?").to_owned()))
        .collect()
}

fn token_with_exp(tenant: Uuid, roles: &[&str], exp: i64) -> String {
    let claims = Claims {
        tid: tenant,
        sub: "ws-user".into(),
        exp,
        roles: roles.iter().map(|r| r.to_string()).collect(),
        nbf: None,
        iat: Some(chrono::Utc::now().timestamp()),
    };
    mint_hs256(SECRET, &claims).expect("mint")
}

/// Q (a partner) with customer C and a subscription S sold to it; returns (Q's token, C's token,
/// C's domain, S's id, S's version).
async fn partner_customer_subscription(app: &TestApp, name: &str, domain: &str) -> (String, String, String, Value) {
    let (_, qtid) = onboard(app, name, &format!("{domain}-partner.example"), "DIRECT_BILL", "PUBLIC").await;
    let q = app.token(qtid, &["admin_agent"]);
    let input =
        json!({"companyName": format!("{name} customer"), "domain": format!("{domain}.example"), "country": "US"});
    let data = app.data(&q, CREATE_CUSTOMER, json!({"input": input})).await;
    let customer = data["createCustomer"]["customer"]["id"].clone();
    let ctid: Uuid = data["createCustomer"]["customer"]["tenantId"].as_str().unwrap().parse().unwrap();
    let sell = json!({"customerId": customer, "offerId": "M365", "offerName": "Microsoft 365", "billingModel": "LICENSE_BASED", "quantity": 5, "termMonths": 12});
    let s = app.data(&q, SELL, json!({"i": sell})).await["createSubscription"]["subscription"].clone();
    (q, app.token(ctid, &["global_admin"]), s["id"].as_str().unwrap().to_owned(), s["version"].clone())
}

async fn update_quantity(app: &TestApp, token: &str, id: &str, version: &Value, quantity: i32) -> Value {
    let data =
        app.data(token, UPDATE, json!({"i": {"id": id, "expectedVersion": version, "quantity": quantity}})).await;
    data["updateSubscription"]["subscription"]["version"].clone()
}

#[tokio::test]
async fn a_partner_hears_what_it_may_see_as_visibility_is_gained_and_lost() {
    let app = TestApp::new().await;
    let addr = serve(&app).await;
    let (_, ptid) = onboard(&app, "Fabrikam", "fabrikam.example", "DIRECT_BILL", "PUBLIC").await;
    let p = app.token(ptid, &["admin_agent"]);
    let (q, c, s, mut v) = partner_customer_subscription(&app, "Contoso", "adatum").await;
    let (r, _, other, mut ov) = partner_customer_subscription(&app, "Northwind", "litware").await;

    let mut ws = Ws::authenticated(addr, &p).await;
    ws.subscribe("all", EVENTS, json!({})).await;
    // A query on the same socket answers once the subscription is registered: `next` + `complete`.
    ws.send(json!({"type": "subscribe", "id": "q", "payload": {"query": "{ viewer { tenantKind } }"}})).await;
    let answer = ws.next_message().await;
    assert_eq!((answer["type"].as_str(), answer["id"].as_str()), (Some("next"), Some("q")), "{answer}");
    assert_eq!(answer["payload"]["data"]["viewer"]["tenantKind"], "PARTNER");
    let done = ws.next_message().await;
    assert_eq!(done, json!({"type": "complete", "id": "q"}));

    // Visibility is checked when an event is delivered, so the test waits for what P hears at each
    // step before changing what P may see (otherwise a late delivery would be judged by the next
    // step's visibility, as R1 at delivery intends).
    let marker = |name: &'static str| {
        let input = json!({"companyName": name, "domain": format!("{}.example", name.to_lowercase()), "country": "US"});
        let (app, p) = (&app, &p);
        async move {
            app.data(p, CREATE_CUSTOMER, json!({"input": input})).await["createCustomer"]["customer"]["id"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let created = |id: &str| ("CUSTOMER_CREATED".to_owned(), id.to_owned());

    // Before any link: Q's change to its customer's subscription is not P's business; a change of
    // P's own (a marker) shows the stream went on and nothing came before it.
    v = update_quantity(&app, &q, &s, &v, 6).await;
    // (A customer P creates comes with P's reseller relationship to it: two events.)
    let first = marker("First").await;
    let got = summary(&collect(&mut ws, &[("all", 2)]).await["all"]);
    assert_eq!((&got[0], got[1].0.as_str()), (&created(&first), "RELATIONSHIP_ACCEPTED"));

    // P gains delegated admin over Q's customer: from then on it hears about its subscriptions,
    // never about another partner's unrelated change.
    let request = json!({"customerDomain": "adatum.example", "kind": "DELEGATED_ADMIN", "roles": ["admin_agent"]});
    let rel = app.data(&p, REQUEST, json!({"i": request})).await["requestRelationship"]["relationship"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.data(&c, ACCEPT, json!({"i": {"id": rel}})).await;
    ov = update_quantity(&app, &r, &other, &ov, 9).await;
    v = update_quantity(&app, &q, &s, &v, 7).await;
    let got = collect(&mut ws, &[("all", 3)]).await;
    let expected = vec![
        ("RELATIONSHIP_REQUESTED".to_owned(), rel.clone()),
        ("RELATIONSHIP_ACCEPTED".to_owned(), rel.clone()),
        ("SUBSCRIPTION_UPDATED".to_owned(), s.clone()),
    ];
    assert_eq!(summary(&got["all"]), expected);
    // Each event carries a stable id and what changed.
    assert!(got["all"][2]["id"].as_str().unwrap().starts_with("evt_"));
    assert_eq!(got["all"][2]["details"]["quantity"]["after"], 7);

    // The customer ends the grant: P hears that, and nothing more about the customer.
    app.data(&c, TERMINATE, json!({"i": {"id": rel}})).await;
    update_quantity(&app, &q, &s, &v, 8).await;
    update_quantity(&app, &r, &other, &ov, 10).await;
    let last = marker("Last").await;
    let got = summary(&collect(&mut ws, &[("all", 3)]).await["all"]);
    assert_eq!(got[..2], [("RELATIONSHIP_TERMINATED".to_owned(), rel.clone()), created(&last)]);
    assert_eq!(got[2].0, "RELATIONSHIP_ACCEPTED");
}

#[tokio::test]
async fn after_a_spell_with_nobody_listening_a_new_subscriber_hears_what_follows_and_nothing_before() {
    let app = TestApp::new().await;
    let addr = serve(&app).await;
    let (q, _, s, v) = partner_customer_subscription(&app, "Contoso", "adatum").await;
    let feed = app.state.feed.clone();
    let mut first = Ws::authenticated(addr, &q).await;
    first.subscribe("all", EVENTS, json!({})).await;
    first.sync().await;
    let v = update_quantity(&app, &q, &s, &v, 6).await;
    assert_eq!(collect(&mut first, &[("all", 1)]).await["all"][0]["details"]["quantity"]["after"], 6);
    drop(first);
    tokio::time::timeout(GUARD, async {
        while feed.subscribers() > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the subscriber is gone within 10 s");

    // Nobody listens: the feed stops reading the outbox and forgets where it was.
    let v = update_quantity(&app, &q, &s, &v, 7).await;
    tokio::time::timeout(GUARD, async {
        while feed.is_tailing().await {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the feed stops tailing within 10 s");

    // A new subscriber: the change made while nobody listened is not replayed; the next one is heard.
    let mut second = Ws::authenticated(addr, &q).await;
    second.subscribe("all", EVENTS, json!({})).await;
    second.sync().await;
    assert!(feed.is_tailing().await, "a subscriber places the feed at the outbox's end");
    update_quantity(&app, &q, &s, &v, 8).await;
    let got = collect(&mut second, &[("all", 1)]).await;
    assert_eq!(summary(&got["all"]), vec![("SUBSCRIPTION_UPDATED".to_owned(), s.clone())]);
    assert_eq!(got["all"][0]["details"]["quantity"]["after"], 8, "{:?}", got["all"]);
}

#[tokio::test]
async fn event_type_and_node_filters_narrow_the_stream() {
    let app = TestApp::new().await;
    let addr = serve(&app).await;
    let (q, _, s1, mut v1) = partner_customer_subscription(&app, "Contoso", "adatum").await;
    // A second subscription of the same customer.
    let customer =
        app.data(&q, "{ customers(first: 1) { nodes { id } } }", json!({})).await["customers"]["nodes"][0]["id"]
            .clone();
    let sell = json!({"customerId": customer, "offerId": "E5", "offerName": "Microsoft 365 E5", "billingModel": "LICENSE_BASED", "quantity": 1, "termMonths": 12});
    let second = app.data(&q, SELL, json!({"i": sell})).await["createSubscription"]["subscription"].clone();
    let (s2, mut v2) = (second["id"].as_str().unwrap().to_owned(), second["version"].clone());

    let mut ws = Ws::authenticated(addr, &q).await;
    ws.subscribe("types", EVENTS, json!({"types": ["SUBSCRIPTION_UPDATED"]})).await;
    ws.subscribe("node", EVENTS, json!({"node": s2})).await;
    // Both subscriptions are registered once a query sent after them is answered.
    ws.send(json!({"type": "subscribe", "id": "sync", "payload": {"query": "{ viewer { tenantKind } }"}})).await;
    assert_eq!(ws.next_message().await["type"], "next");
    assert_eq!(ws.next_message().await["type"], "complete");

    v1 = update_quantity(&app, &q, &s1, &v1, 6).await;
    v2 = update_quantity(&app, &q, &s2, &v2, 2).await;
    app.data(&q, SUSPEND, json!({"i": {"id": s2, "expectedVersion": v2}})).await;
    update_quantity(&app, &q, &s1, &v1, 7).await;

    let got = collect(&mut ws, &[("types", 3), ("node", 2)]).await;
    let updated = |id: &str| ("SUBSCRIPTION_UPDATED".to_owned(), id.to_owned());
    assert_eq!(summary(&got["types"]), vec![updated(&s1), updated(&s2), updated(&s1)]);
    assert_eq!(summary(&got["node"]), vec![updated(&s2), ("SUBSCRIPTION_SUSPENDED".to_owned(), s2.clone())]);

    // A node id this API never returned is the caller's mistake, said on that operation.
    ws.subscribe("bad", EVENTS, json!({"node": "nonsense"})).await;
    let message = ws.next_message().await;
    assert_eq!(message["id"], "bad", "{message}");
    let errors = if message["type"] == "error" { &message["payload"] } else { &message["payload"]["errors"] };
    assert_eq!(errors[0]["extensions"]["code"], "BAD_USER_INPUT", "{message}");
}

#[tokio::test]
async fn each_protocol_violation_closes_the_socket_with_its_code() {
    let mut settings = Settings::development(SECRET);
    settings.limits.ws_init_timeout = Duration::from_secs(1);
    let app = TestApp::with_settings(settings).await;
    let addr = serve(&app).await;
    let (_, ptid) = onboard(&app, "Fabrikam", "fabrikam.example", "DIRECT_BILL", "PUBLIC").await;
    let p = app.token(ptid, &["admin_agent"]);
    let init =
        |token: &str| json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {token}")}});

    // No subprotocol, or another one: refused before the upgrade.
    for protocol in [None, Some("graphql-ws")] {
        match Ws::open_with(addr, protocol).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert_eq!(response.status(), 400),
            Err(other) => panic!("expected an HTTP refusal, got {other}"),
            Ok(_) => panic!("a socket without graphql-transport-ws was accepted"),
        }
    }

    // 4400: not JSON; an unknown type; a subscribe without id.
    for bad in [
        "not json".to_owned(),
        json!({"type": "hello"}).to_string(),
        json!({"type": "subscribe", "payload": {"query": "{ viewer { roles } }"}}).to_string(),
    ] {
        let mut ws = Ws::open(addr).await;
        if bad.contains("subscribe") {
            ws.send(init(&p)).await;
            assert!(matches!(ws.recv().await, Received::Json(m) if m["type"] == "connection_ack"));
        }
        ws.send_text(&bad).await;
        assert_eq!(ws.closed().await.0, 4400, "{bad}");
    }

    // 4401: no token; a bad token; subscribe before connection_init.
    let mut ws = Ws::open(addr).await;
    ws.send(json!({"type": "connection_init", "payload": {}})).await;
    assert_eq!(ws.closed().await.0, 4401);
    let mut ws = Ws::open(addr).await;
    ws.send(init("not-a-token")).await;
    assert_eq!(ws.closed().await.0, 4401);
    let mut ws = Ws::open(addr).await;
    ws.subscribe("1", EVENTS, json!({})).await;
    assert_eq!(ws.closed().await.0, 4401);

    // 4403: a valid token for a tenant this server does not know.
    let mut ws = Ws::open(addr).await;
    ws.send(init(&app.token(Uuid::new_v4(), &["admin_agent"]))).await;
    assert_eq!(ws.closed().await.0, 4403);

    // 4408: no connection_init in time (1 s here); ping and pong meanwhile.
    let mut ws = Ws::open(addr).await;
    ws.send(json!({"type": "ping"})).await;
    assert!(matches!(ws.recv().await, Received::Json(m) if m == json!({"type": "pong"})));
    let (code, reason) = ws.closed().await;
    assert_eq!((code, reason.as_str()), (4408, "Connection initialisation timeout"));

    // 4409: a second subscribe with the id of a running operation.
    let mut ws = Ws::authenticated(addr, &p).await;
    ws.subscribe("dup", EVENTS, json!({})).await;
    ws.subscribe("dup", EVENTS, json!({})).await;
    assert_eq!(ws.closed().await, (4409, "Subscriber for dup already exists".to_owned()));

    // 4429: a second connection_init.
    let mut ws = Ws::authenticated(addr, &p).await;
    ws.send(init(&p)).await;
    assert_eq!(ws.closed().await, (4429, "Too many initialisation requests".to_owned()));

    // 4401 when the token expires while the socket is open.
    let short = token_with_exp(ptid, &["admin_agent"], chrono::Utc::now().timestamp() + 2);
    let mut ws = Ws::authenticated(addr, &short).await;
    ws.subscribe("1", EVENTS, json!({})).await;
    let (code, reason) = ws.closed().await;
    assert_eq!(code, 4401);
    assert!(reason.contains("expired"), "{reason}");
}

#[tokio::test]
async fn request_errors_are_answered_with_error_and_the_socket_stays_open() {
    let app = TestApp::new().await;
    let addr = serve(&app).await;
    let (_, ptid) = onboard(&app, "Fabrikam", "fabrikam.example", "DIRECT_BILL", "PUBLIC").await;
    let p = app.token(ptid, &["admin_agent"]);
    let mut ws = Ws::authenticated(addr, &p).await;
    // A document that does not parse, and one that does not validate: `error`, no `complete`.
    ws.subscribe("1", "subscription { events { id ", json!({})).await;
    let m = ws.next_message().await;
    assert_eq!((m["type"].as_str(), m["id"].as_str()), (Some("error"), Some("1")), "{m}");
    assert_eq!(m["payload"][0]["extensions"]["code"], "GRAPHQL_PARSE_FAILED");
    ws.subscribe("2", "subscription { events { nope } }", json!({})).await;
    let m = ws.next_message().await;
    assert_eq!((m["type"].as_str(), m["id"].as_str()), (Some("error"), Some("2")), "{m}");
    assert_eq!(m["payload"][0]["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED");
    // The same ids may be used again: those operations are over.
    ws.send(json!({"type": "subscribe", "id": "1", "payload": {"query": "{ viewer { tenantKind } }"}})).await;
    assert_eq!(ws.next_message().await["type"], "next");
    assert_eq!(ws.next_message().await, json!({"type": "complete", "id": "1"}));

    // Over plain HTTP a subscription is a clear request error.
    let body = app.gql_as(Some(&p), "subscription { events { id } }", json!({})).await;
    assert_eq!(error_code(&body), Some("BAD_USER_INPUT"), "{body}");
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("/graphql/ws"), "{body}");
}

#[tokio::test]
async fn sockets_are_closed_with_1001_when_the_server_shuts_down() {
    let app = TestApp::new().await;
    let addr = serve(&app).await;
    let (_, ptid) = onboard(&app, "Fabrikam", "fabrikam.example", "DIRECT_BILL", "PUBLIC").await;
    let mut ws = Ws::authenticated(addr, &app.token(ptid, &["admin_agent"])).await;
    ws.subscribe("1", EVENTS, json!({})).await;
    app.state.shutdown.cancel();
    assert_eq!(ws.closed().await.0, 1001);
}

#[tokio::test]
async fn a_subscriber_of_one_server_hears_a_mutation_made_through_another() {
    // PostgreSQL only: two servers on one database need a database two processes can share; on
    // SQLite the suite's database belongs to one server.
    if crate::common::backend() != "postgres" {
        return;
    }
    let app = TestApp::new().await;
    let addr_a = serve(&app).await;
    // Server B, a second instance in this process: its feed is woken in process only by B's own
    // commits (none here), and polls once a minute; within GUARD (10 s), only A's NOTIFY can
    // wake it. This test fails if NOTIFY or LISTEN is broken.
    let mut settings_b = app.settings.clone();
    settings_b.feed.poll_interval = Duration::from_secs(60);
    let db_b = partnerhub::db::connect(&app.url).await.expect("connect");
    let state_b = partnerhub::state::AppState::new(db_b, settings_b, app.clock.clone()).expect("state");
    let addr_b = serve_state(state_b.clone()).await;
    let _ = addr_a;
    // Before this, B's feed may be woken once more by LISTEN coming up (it looks at the outbox
    // when it starts listening); from here on, only a NOTIFY wakes it.
    tokio::time::timeout(GUARD, state_b.feed.listening()).await.expect("B listens");

    // The committing instance's feed notifies every listener of the database.
    let mut listener = sqlx::postgres::PgListener::connect(&app.url).await.expect("listen");
    listener.listen("partnerhub_outbox").await.expect("listen");

    let (_, ptid) = onboard(&app, "Fabrikam", "fabrikam.example", "DIRECT_BILL", "PUBLIC").await;
    let p = app.token(ptid, &["admin_agent"]);
    let notification = tokio::time::timeout(GUARD, listener.recv()).await.expect("no NOTIFY").expect("recv");
    assert!(notification.payload().parse::<i64>().is_ok(), "the payload is the outbox id");

    let mut ws = Ws::authenticated(addr_b, &p).await;
    ws.subscribe("all", EVENTS, json!({"types": ["CUSTOMER_CREATED"]})).await;
    ws.send(json!({"type": "subscribe", "id": "sync", "payload": {"query": "{ viewer { tenantKind } }"}})).await;
    assert_eq!(ws.next_message().await["type"], "next");
    assert_eq!(ws.next_message().await["type"], "complete");
    // Made through server A (the in-process router of `app`).
    let input = json!({"companyName": "Adatum", "domain": "adatum.example", "country": "US"});
    let id = app.data(&p, CREATE_CUSTOMER, json!({"input": input})).await["createCustomer"]["customer"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let got = collect(&mut ws, &[("all", 1)]).await;
    assert_eq!(summary(&got["all"]), vec![("CUSTOMER_CREATED".to_owned(), id)]);
    state_b.shutdown.cancel();
}

#[tokio::test]
async fn an_event_whose_id_commits_after_a_later_one_is_still_delivered_once() {
    // PostgreSQL only: there, ids are taken at insert and transactions commit in any order. SQLite
    // serializes writers, so ids always commit in order and there is no gap to test.
    if crate::common::backend() != "postgres" {
        return;
    }
    use sea_orm::{ActiveModelTrait, ActiveValue::NotSet, Set, TransactionTrait};
    let app = TestApp::new().await;
    let addr = serve(&app).await;
    let partner = app
        .seed()
        .partner(
            Uuid::new_v4(),
            "Fabrikam",
            "fabrikam.example",
            entity::enums::PartnerType::DirectBill,
            entity::enums::Cloud::Public,
        )
        .await
        .expect("seed");
    let p = app.token(partner.tenant_id, &["admin_agent"]);
    let mut ws = Ws::authenticated(addr, &p).await;
    ws.subscribe("all", EVENTS, json!({})).await;
    ws.send(json!({"type": "subscribe", "id": "sync", "payload": {"query": "{ viewer { tenantKind } }"}})).await;
    assert_eq!(ws.next_message().await["type"], "next");
    assert_eq!(ws.next_message().await["type"], "complete");

    // A transaction takes an outbox id and stays open…
    let row = |details: &str| entity::outbox_event::ActiveModel {
        id: NotSet,
        event_type: Set("PARTNER_STATUS_CHANGED".into()),
        occurred_at: Set(chrono::Utc::now()),
        node_type: Set("Partner".into()),
        node_id: Set(partner.id),
        partner_id: Set(Some(partner.id)),
        related_partner_id: Set(None),
        customer_id: Set(None),
        payload: Set(json!({"details": {"step": details}})),
    };
    let slow = app.db.begin().await.expect("begin");
    let early = row("early").insert(&slow).await.expect("insert");
    // …while a later id commits and is delivered.
    let late = row("late").insert(&app.db).await.expect("insert");
    app.state.feed.commits().committed();
    assert!(late.id > early.id);
    let got = collect(&mut ws, &[("all", 1)]).await;
    assert_eq!(got["all"][0]["details"]["step"], "late");
    // The earlier id commits last: it is delivered too, once.
    slow.commit().await.expect("commit");
    app.state.feed.commits().committed();
    // A customer created afterwards (two events: the customer and its relationship) marks the
    // end: a pass that finds the marker's rows also looks up the gap, in the same pass or an
    // earlier one, so by then `early` has been delivered (before or after the marker's events,
    // depending on which pass found it).
    let marker = |name: &'static str| json!({"companyName": name, "domain": format!("{}.example", name.to_lowercase()), "country": "US"});
    app.data(&p, CREATE_CUSTOMER, json!({"input": marker("Marker")})).await;
    let got = collect(&mut ws, &[("all", 3)]).await;
    let early_count = got["all"].iter().filter(|e| e["details"]["step"] == "early").count();
    assert_eq!(early_count, 1, "{:?}", got["all"]);
    assert!(got["all"].iter().any(|e| e["type"] == "CUSTOMER_CREATED"), "{:?}", got["all"]);
    // Once: the next events are the next marker's, and `early` is not among them again.
    app.data(&p, CREATE_CUSTOMER, json!({"input": marker("Second")})).await;
    let got = collect(&mut ws, &[("all", 2)]).await;
    assert!(got["all"].iter().all(|e| e["details"]["step"] != "early"), "{:?}", got["all"]);
    assert!(got["all"].iter().any(|e| e["type"] == "CUSTOMER_CREATED"), "{:?}", got["all"]);
}

#[tokio::test]
async fn operations_past_the_per_socket_limit_are_refused_and_the_socket_stays_open() {
    let mut settings = Settings::development(SECRET);
    settings.limits.ws_max_operations = 2;
    let app = TestApp::with_settings(settings).await;
    let addr = serve(&app).await;
    let (_, ptid) = onboard(&app, "Fabrikam", "fabrikam.example", "DIRECT_BILL", "PUBLIC").await;
    let mut ws = Ws::authenticated(addr, &app.token(ptid, &["admin_agent"])).await;
    // Filtered to a type nothing here produces: the onboarding's own events may still be on their
    // way when "a" starts listening, and this test is about the limit.
    let quiet = json!({"types": ["TRANSFER_EXPIRED"]});
    ws.subscribe("a", EVENTS, quiet.clone()).await;
    ws.subscribe("b", EVENTS, quiet.clone()).await;
    ws.subscribe("c", EVENTS, quiet).await;
    let m = ws.next_message().await;
    assert_eq!((m["type"].as_str(), m["id"].as_str()), (Some("error"), Some("c")), "{m}");
    assert_eq!(m["payload"][0]["extensions"]["code"], "RATE_LIMITED");
    // Completing one makes room.
    ws.send(json!({"type": "complete", "id": "a"})).await;
    ws.send(json!({"type": "subscribe", "id": "q", "payload": {"query": "{ viewer { tenantKind } }"}})).await;
    assert_eq!(ws.next_message().await["type"], "next");
    assert_eq!(ws.next_message().await, json!({"type": "complete", "id": "q"}));
}

#[tokio::test]
async fn a_message_over_the_body_limit_closes_the_socket() {
    let mut settings = Settings::development(SECRET);
    settings.limits.max_body_bytes = 4096;
    let app = TestApp::with_settings(settings).await;
    let addr = serve(&app).await;
    let mut ws = Ws::open(addr).await;
    let query = format!("{{ viewer {{ tenantKind }} }} # {}", "x".repeat(8192));
    ws.send(json!({"type": "subscribe", "id": "1", "payload": {"query": query}})).await;
    let (code, _) = ws.closed().await;
    assert_eq!(code, 1009);
}

#[tokio::test]
async fn sockets_past_the_instance_limit_are_refused_with_503() {
    let mut settings = Settings::development(SECRET);
    settings.limits.ws_max_sockets = 1;
    let app = TestApp::with_settings(settings).await;
    let addr = serve(&app).await;
    let (_, ptid) = onboard(&app, "Fabrikam", "fabrikam.example", "DIRECT_BILL", "PUBLIC").await;
    let _open = Ws::authenticated(addr, &app.token(ptid, &["admin_agent"])).await;
    match Ws::open_with(addr, Some("graphql-transport-ws")).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 503);
            assert!(response.headers().get("retry-after").is_some());
        }
        Err(other) => panic!("expected an HTTP refusal, got {other}"),
        Ok(_) => panic!("a socket past PARTNERHUB_WS_MAX_SOCKETS was accepted"),
    }
}

#[tokio::test]
async fn a_subscriber_further_behind_than_the_buffer_is_ended_with_events_lagged() {
    // Through the schema in process, not over a socket: a socket's reader cannot be stopped
    // deterministically (the kernel's buffers take what the server writes), a stream nobody polls
    // can. The server's buffer is made small: 2 batches.
    let mut settings = Settings::development(SECRET);
    settings.feed.channel_capacity = 2;
    let app = TestApp::with_settings(settings).await;
    app.state.feed.start().await.expect("event feed");
    let (_, ptid) = onboard(&app, "Fabrikam", "fabrikam.example", "DIRECT_BILL", "PUBLIC").await;
    let p = app.token(ptid, &["admin_agent"]);

    // The slow subscriber: started, then left alone once it listens.
    let claims = Claims {
        tid: ptid,
        sub: "slow".into(),
        exp: chrono::Utc::now().timestamp() + 600,
        roles: vec!["admin_agent".into()],
        nbf: None,
        iat: None,
    };
    let principal = partnerhub::auth::resolve_principal(&app.db, app.platform(), claims).await.expect("principal");
    let ctx = partnerhub::graphql::context::RequestCtx::new(
        app.db.clone().into(),
        app.state.feed.commits(),
        Some(principal),
        app.clock.now(),
        app.settings.limits,
        chrono::Duration::hours(app.settings.cancellation_window_hours),
        "slow-subscriber".into(),
    );
    let (fired, listening) = tokio::sync::oneshot::channel();
    // (Only customers: a late batch of the onboarding's events would answer at once.)
    let request = async_graphql::Request::new(EVENTS)
        .variables(async_graphql::Variables::from_json(json!({"types": ["CUSTOMER_CREATED"]})))
        .data(ctx)
        .data(app.state.feed.clone())
        .data(partnerhub::events::Listening::new(fired));
    let mut slow = app.state.schema.execute_stream(request);
    tokio::select! {
        first = slow.next() => panic!("the subscription answered before anything was committed: {first:?}"),
        _ = listening => {}
    }

    // Four commits, each in a batch of its own (each is seen by another receiver before the next is
    // made): more than the buffer holds.
    let mut fast = app.state.feed.subscribe().await.expect("subscribe");
    for i in 0..4 {
        let input = json!({"companyName": format!("Customer {i}"), "domain": format!("c{i}.example"), "country": "US"});
        app.data(&p, CREATE_CUSTOMER, json!({"input": input})).await;
        loop {
            match tokio::time::timeout(GUARD, fast.recv()).await.expect("no batch for 10 s") {
                Ok(batch) if batch.iter().any(|e| e.event_type == "CUSTOMER_CREATED") => break,
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(closed) => panic!("{closed}"),
            }
        }
    }

    // The slow subscriber's next message is the error, and its stream ends.
    let response = tokio::time::timeout(GUARD, slow.next()).await.expect("hang").expect("a response");
    let body = serde_json::to_value(&response).expect("json");
    assert_eq!(error_code(&body), Some("EVENTS_LAGGED"), "{body}");
    assert!(tokio::time::timeout(GUARD, slow.next()).await.expect("hang").is_none(), "the stream ends");
}
