//! The real binary over HTTP: probes, GraphiQL, and the GraphQL endpoint on demo data.

use std::{process::Command, time::Duration};

use pledgeflow::store::{self, entities};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{json, Value};

use crate::helpers::{bin, repo};

pub(crate) struct Server(std::process::Child);

impl Server {
    /// Stops the server cleanly (SIGTERM, then waits), so that SQLite's write-ahead log is folded
    /// in and PostgreSQL has seen its connections close — before a database is copied.
    pub(crate) fn stop(mut self) {
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        for _ in 0..100 {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) async fn graphql(http: &reqwest::Client, base: &str, body: Value) -> Value {
    http.post(format!("{base}/graphql")).json(&body).send().await.unwrap().json().await.unwrap()
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts `serve --demo` on a fresh SQLite file in `dir` and waits until it is ready.
pub(crate) async fn start(dir: &std::path::Path, env: &[(&str, &str)]) -> (Server, String, String) {
    serve_on(dir, &format!("sqlite://{}/serve.db", dir.display()), true, env).await
}

/// Starts `serve` (with `--demo` if `demo`) on the database at `url`, its data folder in `dir`,
/// and waits until it is ready.
pub(crate) async fn serve_on(dir: &std::path::Path, url: &str, demo: bool, env: &[(&str, &str)]) -> (Server, String, String) {
    let url = url.to_string();
    let port = free_port();
    let mut cmd = Command::new(bin());
    cmd.arg("serve");
    if demo {
        cmd.arg("--demo");
    }
    cmd.env("PLEDGEFLOW_DATABASE_URL", &url)
        .env("PLEDGEFLOW_LISTEN", format!("127.0.0.1:{port}"))
        .env("PLEDGEFLOW_WORKFLOWS_DIR", repo().join("workflows"))
        .env("PLEDGEFLOW_TEMPLATES_DIR", repo().join("templates"))
        .env("PLEDGEFLOW_DATA_DIR", dir.join("data"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let server = Server(cmd.spawn().unwrap());
    let base = format!("http://127.0.0.1:{port}");
    let http = crate::http::client();
    for _ in 0..200 {
        if let Ok(r) = http.get(format!("{base}/readyz")).send().await {
            assert_eq!(r.status(), 200);
            let body: Value = r.json().await.unwrap();
            let files = std::fs::read_dir(repo().join("workflows")).unwrap().filter(|f| f.as_ref().unwrap().path().extension().is_some_and(|x| x == "toml")).count();
            assert_eq!((&body["ready"], &body["database"], &body["definitions"]), (&json!(true), &json!(true), &json!(files)), "every deployed version: {body}");
            let loops: Vec<&str> = body["loops"].as_array().unwrap().iter().filter_map(|l| l["name"].as_str()).collect();
            assert_eq!(loops, ["checkpoint", "digest", "draw", "housekeeping", "outbox", "sweeper"], "every loop reports: {body}");
            return (server, base, url);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("server did not come up");
}

/// The demo's staff member holding `role` (tokens are checked against the staff registry).
pub(crate) fn demo_subject(role: &str) -> &'static str {
    match role {
        "window" => "window-01",
        "approver" => "approver-01",
        "division_admin" => "divadmin-sp",
        "inspector" => "inspector-sp-1",
        "supervisor" => "supervisor-01",
        _ => "admin-01",
    }
}

/// A token from `pledgeflow token`, signed with the installation's key in `url`'s database,
/// for the demo's staff member of `role`.
fn token(url: &str, role: &str) -> String {
    token_with(url, &["--role", role])
}

fn token_in(url: &str, role: &str, department: &str) -> String {
    token_with(url, &["--role", role, "--department", department])
}

fn token_with(url: &str, args: &[&str]) -> String {
    let role = args.iter().skip_while(|a| **a != "--role").nth(1).copied().unwrap_or_default();
    token_as(url, demo_subject(role), args)
}

pub(crate) fn token_as(url: &str, subject: &str, args: &[&str]) -> String {
    let out = Command::new(bin())
        .args(["token", "--subject", subject])
        .args(args)
        .env("PLEDGEFLOW_DATABASE_URL", url)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

pub(crate) async fn graphql_as(http: &reqwest::Client, base: &str, token: &str, body: Value) -> Value {
    http.post(format!("{base}/graphql")).bearer_auth(token).json(&body).send().await.unwrap().json().await.unwrap()
}

fn code(r: &Value) -> &str {
    r["errors"][0]["extensions"]["code"].as_str().unwrap_or_else(|| panic!("no error code in {r}"))
}

#[tokio::test]
async fn serve_with_demo_data_answers_probes_and_graphql() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, base, url) = start(dir.path(), &[]).await;
    let http = crate::http::client();
    assert_eq!(http.get(format!("{base}/healthz")).send().await.unwrap().text().await.unwrap(), "ok");
    let page = http.get(format!("{base}/graphql")).header("accept", "text/html").send().await.unwrap().text().await.unwrap();
    assert!(page.contains("graphiql"), "GraphiQL is served");

    // The demo's licensed deferral case, found in the database the server wrote.
    let db = store::connect(&url, 1).await.unwrap();
    let case = entities::instance::Entity::find()
        .filter(entities::instance::Column::DefinitionName.eq("material-deferral"))
        .filter(entities::instance::Column::State.eq("licensed"))
        .one(&db)
        .await
        .unwrap()
        .expect("demo seeds a licensed deferral case");
    let query = "query($id: ID!) { workflowInstance(id: $id) { state version definitionVersion \
                 history { seq event fromState toState hash prevHash } timers { name status } } \
                 workflowDefinitions { totalCount edges { node { name } } } }";
    let window = token_as(&url, "window-02", &["--role", "window"]);
    let r = graphql(&http, &base, json!({"query": query, "variables": {"id": case.id}})).await;
    assert_eq!(code(&r), "UNAUTHENTICATED");
    let r = graphql_as(&http, &base, &window, json!({"query": query, "variables": {"id": case.id}})).await;
    assert_eq!(r["data"]["workflowInstance"], Value::Null, "a window officer of another department sees nothing: {r}");
    let window = token_in(&url, "window", "310101-SCJG");
    let r = graphql_as(&http, &base, &window, json!({"query": query, "variables": {"id": case.id}})).await;
    assert!(r.get("errors").is_none(), "{r}");
    let inst = &r["data"]["workflowInstance"];
    assert_eq!(inst["state"], "licensed");
    assert_eq!(inst["version"], 3);
    let events: Vec<&str> = inst["history"].as_array().unwrap().iter().map(|h| h["event"].as_str().unwrap()).collect();
    assert_eq!(events, ["start", "materials_complete", "approve"]);
    assert_eq!(inst["history"][1]["prevHash"], inst["history"][0]["hash"]);
    // One per name (the newest version): the three modes, the licence-first variant, the
    // ordinary procedure, supervision, the bundle, the business licence's registration and an
    // item's re-examination.
    assert_eq!(r["data"]["workflowDefinitions"]["totalCount"], 9);
    assert_eq!(r["data"]["workflowDefinitions"]["edges"].as_array().unwrap().len(), 9);

    let missing = graphql_as(&http, &base, &window, json!({"query": "{ workflowInstance(id: \"nope\") { state } }"})).await;
    assert_eq!(missing["data"]["workflowInstance"], Value::Null);

    // Prometheus: what this process did, and the database's gauges.
    let metrics = || async {
        let r = http.get(format!("{base}/metrics")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        r.text().await.unwrap()
    };
    let value = |text: &str, series: &str| -> f64 {
        text.lines().find(|l| l.starts_with(series)).and_then(|l| l.rsplit(' ').next()).and_then(|v| v.parse().ok()).unwrap_or(-1.0)
    };
    let text = metrics().await;
    assert!(value(&text, "pledgeflow_graphql_requests_total{outcome=\"ok\"}") >= 3.0, "{text}");
    assert!(value(&text, "pledgeflow_graphql_requests_total{outcome=\"error\"}") >= 1.0, "{text}");
    assert!(text.contains("pledgeflow_graphql_request_duration_seconds_bucket"), "{text}");
    assert!(value(&text, "pledgeflow_transitions_total{workflow=\"material-deferral\",event=\"approve\"}") >= 1.0, "{text}");
    assert!(value(&text, "pledgeflow_timers_pending") > 0.0, "{text}");
    assert_eq!(value(&text, "pledgeflow_outbox_depth{status=\"dead\"}"), 0.0, "{text}");
    // A timer may fall due between two sweeps; nothing waits longer than a few sweep periods.
    let lag = value(&text, "pledgeflow_timer_sweep_lag_seconds");
    assert!((0.0..30.0).contains(&lag), "nothing waits past its time: {text}");
    // The official calendar on file runs to the end of 2026: the days left of it, from today.
    let today = chrono::Utc::now().with_timezone(&chrono_tz::Asia::Shanghai).date_naive();
    let horizon = (chrono::NaiveDate::from_ymd_opt(2026, 12, 31).unwrap() - today).num_days() as f64;
    assert_eq!(value(&text, "pledgeflow_calendar_horizon_days"), horizon, "{text}");
    // The demo's mail goes out (to .eml files) within moments of serving.
    let mut sent = value(&text, "pledgeflow_emails_sent_total");
    for _ in 0..50 {
        if sent > 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        sent = value(&metrics().await, "pledgeflow_emails_sent_total");
    }
    assert!(sent > 0.0, "emails sent are counted");
}

#[tokio::test]
async fn operators_see_the_outbox_and_move_the_training_clock_only_when_it_is_on() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, base, url) = start(dir.path(), &[("PLEDGEFLOW_CLOCK", "manual")]).await;
    let http = crate::http::client();
    let admin = token(&url, "regional_admin");
    let outbox = json!({"query": "{ outbox(filter: {status: DELIVERED}, first: 100) { totalCount edges { node { channel topic status history { outcome } } } } }"});

    let anonymous = graphql(&http, &base, outbox.clone()).await;
    assert_eq!(code(&anonymous), "UNAUTHENTICATED");
    let window = graphql_as(&http, &base, &token(&url, "window"), outbox.clone()).await;
    assert_eq!(code(&window), "FORBIDDEN");
    let forged = graphql_as(&http, &base, &format!("{admin}x"), outbox.clone()).await;
    assert_eq!(code(&forged), "UNAUTHENTICATED");

    // The demo's messages go out at start-up (to .eml files: no mail server configured).
    let mut delivered = 0;
    for _ in 0..100 {
        let r = graphql_as(&http, &base, &admin, outbox.clone()).await;
        delivered = r["data"]["outbox"]["totalCount"].as_u64().unwrap_or_else(|| panic!("{r}"));
        if delivered >= 6 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(delivered >= 6, "demo messages delivered: {delivered}");

    // Ten days on, the demo's open deferral case is reminded and revoked, and told so.
    let move_clock = json!({"query": "mutation { advanceClock(input: {bySeconds: 864000}) { now timersFired messagesDelivered } }"});
    let r = graphql_as(&http, &base, &token(&url, "window"), move_clock.clone()).await;
    assert_eq!(code(&r), "FORBIDDEN");
    let r = graphql_as(&http, &base, &admin, move_clock).await;
    assert!(r.get("errors").is_none(), "{r}");
    assert!(r["data"]["advanceClock"]["timersFired"].as_u64().unwrap() >= 2, "{r}");
    assert!(r["data"]["advanceClock"]["messagesDelivered"].as_u64().unwrap() >= 3, "{r}");
    let emls = std::fs::read_dir(dir.path().join("data/mail")).unwrap().count();
    assert!(emls >= 6 + 3, "{emls} .eml files");

    let back = json!({"query": "mutation { advanceClock(input: {to: \"2020-01-01T00:00:00Z\"}) { now } }"});
    let r = graphql_as(&http, &base, &admin, back).await;
    assert_eq!(code(&r), "BAD_USER_INPUT");
}

#[tokio::test]
async fn the_clock_cannot_be_moved_unless_the_server_was_told_so() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, base, url) = start(dir.path(), &[("PLEDGEFLOW_CORS_ORIGINS", "[\"https://zwfw.example.gov.cn\"]")]).await;
    let http = crate::http::client();
    // CORS: the configured origin may call from a browser; another may not.
    for (origin, allowed) in [("https://zwfw.example.gov.cn", true), ("https://evil.example", false)] {
        let preflight = http
            .request(reqwest::Method::OPTIONS, format!("{base}/graphql"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization,content-type")
            .send()
            .await
            .unwrap();
        let allow = preflight.headers().get("access-control-allow-origin").map(|v| v.to_str().unwrap().to_string());
        assert_eq!(allow.as_deref() == Some(origin), allowed, "{origin}: {allow:?}");
    }
    // Each kind of bad token is told apart.
    let expired = token_with(&url, &["--role", "window", "--hours=-1"]);
    let claims = pledgeflow::auth::Claims::new("x", vec!["window".into()], chrono::Utc::now(), chrono::Duration::hours(1));
    let forged = pledgeflow::auth::Keys::hs256(b"not-this-installations-key-at-all").mint(&claims).unwrap();
    let cases = [(None, "no bearer token"), (Some("not-a-token".to_string()), "malformed"), (Some(expired), "expired"), (Some(forged), "signature")];
    for (bearer, says) in cases {
        let mut req = http.post(format!("{base}/graphql")).json(&json!({"query": "{ workflowInstances { totalCount } }"}));
        if let Some(t) = bearer {
            req = req.bearer_auth(t);
        }
        let r: Value = req.send().await.unwrap().json().await.unwrap();
        assert_eq!(code(&r), "UNAUTHENTICATED");
        assert!(r["errors"][0]["message"].as_str().unwrap().contains(says), "{says}: {r}");
    }
    let r = graphql_as(&http, &base, &token(&url, "regional_admin"), json!({"query": "mutation { advanceClock(input: {bySeconds: 60}) { now } }"})).await;
    assert_eq!(code(&r), "FORBIDDEN");
    let r = graphql_as(&http, &base, &token(&url, "regional_admin"), json!({"query": "{ serverClock { manual } }"})).await;
    assert_eq!(r["data"]["serverClock"]["manual"], false);
}

#[tokio::test]
async fn a_subscriber_over_graphql_transport_ws_hears_its_case() {
    use futures::SinkExt;
    use tokio_tungstenite::tungstenite::{client::IntoClientRequest, Message};

    let dir = tempfile::tempdir().unwrap();
    let (_server, base, url) = start(dir.path(), &[]).await;
    let db = store::connect(&url, 1).await.unwrap();
    let case = entities::instance::Entity::find()
        .filter(entities::instance::Column::DefinitionName.eq("material-deferral"))
        .filter(entities::instance::Column::State.eq("awaiting_materials"))
        .one(&db)
        .await
        .unwrap()
        .expect("demo seeds a deferral case awaiting materials");
    let window = token_in(&url, "window", "310101-SCJG");

    let mut request = format!("{}/graphql/ws", base.replace("http://", "ws://")).into_client_request().unwrap();
    request.headers_mut().insert("sec-websocket-protocol", "graphql-transport-ws".parse().unwrap());
    let (mut ws, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(response.headers()["sec-websocket-protocol"], "graphql-transport-ws");
    let send = |v: Value| Message::Text(v.to_string().into());
    ws.send(send(json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {window}")}}))).await.unwrap();
    assert_eq!(next_text(&mut ws).await["type"], "connection_ack");
    let subscribe = json!({"id": "1", "type": "subscribe", "payload": {
        "query": "subscription($id: ID!) { caseEvents(instanceId: $id) { event toState } }", "variables": {"id": case.id}}});
    ws.send(send(subscribe)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let http = crate::http::client();
    let fire = json!({"query": "mutation($i: FireEventInput!) { fireEvent(input: $i) { instance { state } } }",
        "variables": {"i": {"instanceId": case.id, "event": "withdraw", "payload": {"reason": "不再经营"}}}});
    let r = graphql_as(&http, &base, &window, fire).await;
    assert_eq!(r["data"]["fireEvent"]["instance"]["state"], "withdrawn", "{r}");
    let heard = next_text(&mut ws).await;
    assert_eq!(heard["type"], "next", "{heard}");
    assert_eq!(heard["payload"]["data"]["caseEvents"], json!({"event": "withdraw", "toState": "withdrawn"}));
}

/// The next text frame as JSON, within 10 s.
pub(crate) async fn next_text<S, E>(ws: &mut S) -> Value
where
    S: futures::Stream<Item = Result<tokio_tungstenite::tungstenite::Message, E>> + Unpin,
    E: std::fmt::Debug,
{
    use futures::StreamExt;
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), ws.next()).await.expect("a message within 10 s");
        if let tokio_tungstenite::tungstenite::Message::Text(t) = frame.unwrap().unwrap() {
            return serde_json::from_str(&t).unwrap();
        }
    }
}

#[tokio::test]
async fn hostile_requests_are_refused_before_they_cost_anything() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, base, url) = start(dir.path(), &[]).await;
    let http = crate::http::client();
    let admin = token(&url, "regional_admin");

    // Too deep: refused at validation (no data, 400 with the spec's media type).
    let mut deep = String::from("__typename");
    for _ in 0..20 {
        deep = format!("ofType {{ {deep} }}");
    }
    let query = format!("{{ __schema {{ types {{ {deep} }} }} }}");
    let r = http
        .post(format!("{base}/graphql"))
        .header("accept", "application/graphql-response+json")
        .bearer_auth(&admin)
        .json(&json!({"query": query}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert!(body.get("data").is_none() && body["errors"][0]["message"].as_str().unwrap().contains("deep"), "{body}");

    // GraphiQL's own introspection still fits the limits.
    let introspection = "query { __schema { queryType { name } types { name kind fields(includeDeprecated: true) { name args { name type { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } type { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } }";
    let r = graphql_as(&http, &base, &admin, json!({"query": introspection})).await;
    assert!(r.get("errors").is_none(), "{r}");

    // Too big: 413 before parsing. On a client of its own: the server closes the connection
    // after refusing the body, and a pooled client's next request would meet a broken pipe.
    let huge = "x".repeat(300 * 1024);
    let r = crate::http::client().post(format!("{base}/graphql")).json(&json!({"query": format!("{{ __typename }} # {huge}")})).send().await.unwrap();
    assert_eq!(r.status(), 413);

    // A mutation by GET: 405, and nothing ran.
    let r = http
        .get(format!("{base}/graphql"))
        .query(&[("query", "mutation { advanceClock(input: {bySeconds: 60}) { now } }")])
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["allow"], "POST");

    // Injection in a string field is data, not SQL.
    let sneaky = json!({"query": "query($id: ID!) { workflowInstance(id: $id) { id } }", "variables": {"id": "x' OR '1'='1"}});
    let r = graphql_as(&http, &base, &token_in(&url, "window", "310101-SCJG"), sneaky).await;
    assert_eq!(r["data"]["workflowInstance"], Value::Null, "{r}");
}

/// The window end to end through the real binary: a deferral case opened over HTTP, its
/// reminder arriving at a real SMTP server on the working day before the deadline (the clock
/// moved by an operator), the materials received, the licence issued, the audit trail whole;
/// and a second case left to run out, revoked at its deadline with its notices sent.
#[tokio::test]
async fn a_deferral_case_end_to_end_over_http_with_the_reminder_at_a_real_smtp_server() {
    let d = Demo::start().await;
    let (http, base, smtp) = (&d.http, &d.base, &d.smtp);
    let (window, approver, admin) = (&d.window, &d.approver, &d.admin);
    let open = open_case(json!({"applicantUscc": "91310110666007217T", "itemCode": "310101-FOOD-01", "mode": "DEFERRAL", "deferralWorkingDays": 3,
            "signedBy": "张伟", "materials": [{"code": "M01", "status": "PROVIDED", "fileRef": "DOC-1"},
            {"code": "M02", "status": "DEFERRED"}, {"code": "M03", "status": "PROVIDED", "fileRef": "DOC-3"}]}));
    let kept = graphql_as(&http, &base, &window, open.clone()).await;
    let broken = graphql_as(&http, &base, &window, open).await;
    let id = |r: &Value| r["data"]["openCase"]["case"]["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_string();
    let (kept_id, broken_id) = (id(&kept), id(&broken));
    let due = |r: &Value, name: &str| {
        let timers = r["data"]["openCase"]["case"]["instance"]["timers"].as_array().unwrap();
        timers.iter().find(|t| t["name"] == name).unwrap()["dueAt"].as_str().unwrap().to_string()
    };
    let advance = |to: String| advance_clock_to(json!(to));

    // The working day before the deadline, 09:00: both reminders go out, once.
    let before = smtp.received().len();
    let r = graphql_as(&http, &base, &admin, advance(due(&kept, "reminder"))).await;
    // (The demo's own cases and tasks have timers too.)
    assert!(r["data"]["advanceClock"]["timersFired"].as_u64().unwrap() >= 2, "{r}");
    // (The demo's start-up notices may still be arriving: pick the reminders.)
    let subject = |m: &crate::smtp::Received| {
        mail_parser::MessageParser::default().parse(&m.data).and_then(|p| p.subject().map(str::to_string)).unwrap_or_default()
    };
    let is_reminder = |m: &crate::smtp::Received| m.to == ["contact0@applicant.demo.pledgeflow.localhost"] && subject(m).contains("容缺材料明天到期");
    mails_eventually(&smtp, 2, |all| all[before..].iter().filter(|m| is_reminder(m)).count()).await;
    let reminders: Vec<_> = smtp.received()[before..]
        .iter()
        .filter(|m| m.to == ["contact0@applicant.demo.pledgeflow.localhost"] && subject(m).contains("容缺材料明天到期"))
        .cloned()
        .collect();
    assert_eq!(reminders.len(), 2, "one reminder per case");
    for m in &reminders {
        let text = String::from_utf8_lossy(&m.data).to_string();
        assert!(text.contains("text/calendar") && text.contains("method=PUBLISH"), "{text}");
    }

    // The kept case: the certificate arrives, the licence is issued.
    let submit = json!({"query": "mutation($id: ID!) { submitMaterial(input: {caseId: $id, code: \"M02\", fileRef: \"DOC-2\"}) { case { state } } }", "variables": {"id": kept_id}});
    let r = graphql_as(&http, &base, &window, submit).await;
    assert_eq!(r["data"]["submitMaterial"]["case"]["state"], "under_review", "{r}");
    let issue = issue_licence(&kept_id);
    let r = graphql_as(&http, &base, &approver, issue).await;
    assert_eq!(r["data"]["issueLicence"]["case"]["state"], "licensed", "{r}");

    // The broken case runs out: revoked at the deadline, applicant and department told, the
    // credit platform told of the breach.
    let before = smtp.received().len();
    let r = graphql_as(&http, &base, &admin, advance(due(&broken, "expiry"))).await;
    assert!(r["data"]["advanceClock"]["timersFired"].as_u64().unwrap() >= 1, "{r}");
    // A notice first; silent through its period, ended on the department's behalf.
    let timers = json!({"query": "query($id: ID!) { workflowInstance(id: $id) { state timers { name dueAt status } } }", "variables": {"id": broken_id}});
    let r = graphql_as(&http, &base, &window, timers).await;
    assert_eq!(r["data"]["workflowInstance"]["state"], "breach_noticed", "{r}");
    let response = r["data"]["workflowInstance"]["timers"].as_array().unwrap().iter().find(|t| t["name"] == "response_limit").unwrap()["dueAt"].as_str().unwrap().to_string();
    graphql_as(&http, &base, &admin, advance(response)).await;
    let history = json!({"query": "query($id: ID!) { workflowInstance(id: $id) { state history { seq event prevHash hash } } }", "variables": {"id": broken_id}});
    let r = graphql_as(&http, &base, &window, history).await;
    let inst = &r["data"]["workflowInstance"];
    assert_eq!(inst["state"], "revoked", "{r}");
    let events: Vec<&str> = inst["history"].as_array().unwrap().iter().map(|h| h["event"].as_str().unwrap()).collect();
    assert_eq!(events, ["start", "remind", "expire", "response_lapsed"]);
    let told = |all: &[crate::smtp::Received]| {
        let to: Vec<&Vec<String>> = all[before..].iter().map(|m| &m.to).collect();
        ["contact0@applicant.demo.pledgeflow.localhost", "310101-scjg@demo.pledgeflow.localhost"]
            .iter()
            .filter(|a| to.iter().any(|t| t.as_slice() == [a.to_string()]))
            .count()
    };
    mails_eventually(&smtp, 2, told).await;
    let notices: Vec<Vec<String>> = smtp.received()[before..].iter().map(|m| m.to.clone()).collect();
    assert!(notices.contains(&vec!["contact0@applicant.demo.pledgeflow.localhost".to_string()]), "{notices:?}");
    assert!(notices.contains(&vec!["310101-scjg@demo.pledgeflow.localhost".to_string()]), "the approving department, at its own address: {notices:?}");
    let breaches = || {
        std::fs::read_dir(d.dir.path().join("data/webhooks/credit"))
            .map_or(0, |files| files.filter(|f| f.as_ref().is_ok_and(|f| f.path().to_string_lossy().contains(&broken_id))).count())
    };
    until(|| breaches() >= 1).await;
    assert_eq!(breaches(), 1, "one breach pushed to the credit platform");
    let db = store::connect(&d.url, 1).await.unwrap();
    let records = {
        use sea_orm::ConnectionTrait;
        let sql = format!("SELECT applicant_uscc, kind FROM credit_records WHERE instance_id = '{broken_id}'");
        db.query_all_raw(sea_orm::Statement::from_string(db.get_database_backend(), sql)).await.unwrap()
    };
    let records: Vec<(String, String)> = records.iter().map(|r| (r.try_get("", "applicant_uscc").unwrap(), r.try_get("", "kind").unwrap())).collect();
    assert_eq!(records, [("91310110666007217T".to_string(), "breach".to_string())], "one breach credit record");
    let out = Command::new(bin()).args(["audit", "verify"]).env("PLEDGEFLOW_DATABASE_URL", &d.url).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}

/// Verification and after-the-fact, each from intake to licence through the real binary: the
/// pharmacist's registration has expired in the library, so it must be supplied; its reminder
/// reaches a real SMTP server; the audit trail of each case is whole.
#[tokio::test]
async fn verification_and_after_the_fact_cases_end_to_end_over_http() {
    let d = Demo::start().await;
    let (http, base, smtp) = (&d.http, &d.base, &d.smtp);
    let (window, approver, admin) = (&d.window, &d.approver, &d.admin);
    let open = |item: &str, uscc: &str, mode: &str, materials: Value| {
        open_case(json!({"applicantUscc": uscc, "itemCode": item, "mode": mode, "signedBy": "法定代表人", "materials": materials}))
    };
    let issue = issue_licence;
    let history = |id: &str| json!({"query": "query($id: ID!) { workflowInstance(id: $id) { state history { event prevHash hash } } }", "variables": {"id": id}});
    let events = |r: &Value| -> Vec<String> {
        let h = r["data"]["workflowInstance"]["history"].as_array().unwrap();
        for pair in h.windows(2) {
            assert_eq!(pair[1]["prevHash"], pair[0]["hash"], "the chain is whole");
        }
        h.iter().map(|e| e["event"].as_str().unwrap().to_string()).collect()
    };

    // After the fact: decided on the spot, licensed, handed to supervision.
    let r = graphql_as(&http, &base, &window, food_after_the_fact("91310110666007217T", "法定代表人")).await;
    let spot = r["data"]["openCase"]["case"]["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_string();
    let r = graphql_as(&http, &base, &approver, issue(&spot)).await;
    assert_eq!(r["data"]["issueLicence"]["case"]["state"], "licensed", "{r}");
    assert!(r["data"]["issueLicence"]["licenceNumber"].as_str().unwrap().starts_with("JY1310101"));
    assert_eq!(events(&graphql_as(&http, &base, &window, history(&spot)).await), ["start", "decide_on_spot"]);

    // Verification: the business licence checks out, the registration has expired.
    let r = graphql_as(&http, &base, &window, open("310101-YPLS-01", "9135052155323005XL", "VERIFICATION", json!([
        {"code": "M01", "status": "TO_VERIFY", "licenceNumber": "310101000022222"}, {"code": "M02", "status": "TO_VERIFY", "licenceNumber": "ZY2019000123"}]))).await;
    let case = &r["data"]["openCase"]["case"];
    let id = case["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_string();
    assert_eq!(case["state"], "awaiting_supply");
    assert!(case["materials"][1]["verification"].as_str().unwrap().contains("expired"), "{case}");
    let reminder = case["instance"]["timers"].as_array().unwrap().iter().find(|t| t["name"] == "reminder").unwrap()["dueAt"].clone();
    let r = graphql_as(&http, &base, &admin, advance_clock_to(reminder)).await;
    assert!(r["data"]["advanceClock"]["timersFired"].as_u64().unwrap() >= 1, "{r}");
    let is_ours = |m: &crate::smtp::Received| {
        mail_parser::MessageParser::default()
            .parse(&m.data)
            .is_some_and(|p| p.body_text(0).is_some_and(|t| t.contains(&id)) && p.subject().is_some_and(|s| s.contains("补交期限")))
    };
    mails_eventually(&smtp, 1, |all| all.iter().filter(|m| is_ours(m)).count()).await;
    let ours: Vec<_> = smtp
        .received()
        .into_iter()
        .filter_map(|m| {
            let parsed = mail_parser::MessageParser::default().parse(&m.data)?;
            let text = parsed.body_text(0)?.to_string();
            (text.contains(&id) && parsed.subject()?.contains("补交期限")).then_some((m.to.clone(), text))
        })
        .collect();
    assert_eq!(ours.len(), 1, "one supply reminder for this case");
    assert!(ours[0].1.contains("执业药师注册证"), "it names what is missing: {}", ours[0].1);
    let supply = json!({"query": "mutation($id: ID!) { submitMaterial(input: {caseId: $id, code: \"M02\", fileRef: \"ZY-2026\"}) { case { state } } }", "variables": {"id": id}});
    let r = graphql_as(&http, &base, &window, supply).await;
    assert_eq!(r["data"]["submitMaterial"]["case"]["state"], "under_review", "{r}");
    let r = graphql_as(&http, &base, &approver, issue(&id)).await;
    assert_eq!(r["data"]["issueLicence"]["case"]["state"], "licensed", "{r}");
    assert_eq!(events(&graphql_as(&http, &base, &window, history(&id)).await), ["start", "unverifiable", "remind", "supplied", "approve"]);
}

/// The supervision loop through the real binary: a licence decided on the spot, its task
/// accepted and inspected, rectification ordered and failed → the licence revoked, a breach on
/// the applicant's credit, the window then refusing it commitment approval; a credit repair
/// lets it in again. Notices arrive at a real SMTP server.
#[tokio::test]
async fn a_failed_rectification_is_noticed_then_revoked_with_one_record_and_repair_clears_it() {
    let d = Demo::start().await;
    let (http, base, smtp) = (&d.http, &d.base, &d.smtp);
    let (window, approver, division, inspector, supervisor, admin) = (&d.window, &d.approver, &d.division, &d.inspector, &d.supervisor, &d.admin);
    const USCC: &str = "91310110666007217T";
    let open = food_after_the_fact(USCC, "张伟");
    let r = graphql_as(&http, &base, &window, open.clone()).await;
    let case = r["data"]["openCase"]["case"]["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_string();
    let r = graphql_as(&http, &base, &approver, issue_licence(&case)).await;
    assert_eq!(r["data"]["issueLicence"]["case"]["state"], "licensed", "{r}");

    // The division finds the task for the case among its own.
    let tasks = json!({"query": "query($p: ID!) { workflowInstances(filter: {definition: \"supervision-task\", parentId: $p}) { edges { node { id state } } } }", "variables": {"p": case}});
    let r = graphql_as(&http, &base, &division, tasks).await;
    let task = r["data"]["workflowInstances"]["edges"][0]["node"]["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_string();
    let today = office_today(&d).await;
    let failing = findings(&[HEALTH]);
    let steps = [
        (&division, assign(&task, &["inspector-sp-1"]), "inspecting"),
        (&inspector, inspection("recordInspection", &task, &today, failing.clone()), "awaiting_feedback"),
        (&inspector, feed_back(&task, Some("限期补办从业人员健康证明")), "rectifying"),
        (&inspector, inspection("recordReinspection", &task, &today, failing), "revocation_recommended"),
    ];
    for (who, body, state) in steps {
        let r = graphql_as(&http, &base, who, body).await;
        assert_eq!(task_state(&r), state, "{r}");
    }
    // The recommendation reaches the case through the outbox (run at once by moving the clock
    // 0 s): a notice of intended revocation, nothing recorded yet.
    graphql_as(&http, &base, &admin, json!({"query": "mutation { advanceClock(input: {bySeconds: 0}) { messagesDelivered } }"})).await;
    let state = json!({"query": "query($id: ID!) { workflowInstance(id: $id) { state timers { name dueAt status } } }", "variables": {"id": case}});
    let r = eventually(&http, &base, &window, state.clone(), |r| r["data"]["workflowInstance"]["state"] == "revocation_noticed").await;
    let response_due = r["data"]["workflowInstance"]["timers"].as_array().unwrap().iter().find(|t| t["name"] == "response_limit").unwrap()["dueAt"].clone();
    let records = json!({"query": "query($u: String!) { applicant(uscc: $u) { creditTier dishonest } creditRecords(uscc: $u) { id kind caseId repairedAt } }", "variables": {"u": USCC}});
    let of_case = |r: &Value| -> Vec<Value> { r["data"]["creditRecords"].as_array().unwrap().iter().filter(|c| c["caseId"] == case.as_str()).cloned().collect() };
    assert!(of_case(&graphql_as(&http, &base, &supervisor, records.clone()).await).is_empty(), "heard before anything is recorded");
    // Silent through the period: revoked on the department's behalf.
    graphql_as(&http, &base, &admin, advance_clock_to(response_due)).await;
    eventually(&http, &base, &window, state, |r| r["data"]["workflowInstance"]["state"] == "revoked").await;
    let subjects = || -> Vec<String> {
        smtp.received()
            .iter()
            .filter(|m| m.to == ["contact0@applicant.demo.pledgeflow.localhost"])
            .filter_map(|m| mail_parser::MessageParser::default().parse(&m.data).and_then(|p| p.subject().map(str::to_string)))
            .collect()
    };
    let arrived = |list: &[String]| list.iter().any(|s| s.contains("责令整改")) && list.iter().any(|s| s.contains("拟撤销")) && list.iter().any(|s| s.contains("许可已撤销"));
    until(|| arrived(&subjects())).await;
    assert!(arrived(&subjects()), "{:?}", subjects());

    // One record for the one breach (the task writes none): a revocation, not the dishonesty list.
    let r = graphql_as(&http, &base, &supervisor, records.clone()).await;
    let mine = of_case(&r);
    assert_eq!(mine.iter().map(|c| c["kind"].clone()).collect::<Vec<_>>(), [json!("revocation")], "{r}");
    assert_eq!(r["data"]["applicant"]["dishonest"], false, "{r}");
    let record = mine[0]["id"].clone();

    // Credit repair (信用修复) by the credit authority only, once, after the minimum period.
    let repair = json!({"query": "mutation($i: RepairCreditInput!) { repairCredit(input: $i) { applicant { dishonest } repair { kind } } }",
        "variables": {"i": {"recordId": record, "reason": "已完成整改并公开承诺，信用修复决定书 黄市监信修〔2026〕12号"}}});
    let r = graphql_as(&http, &base, &window, repair.clone()).await;
    assert_eq!(r["errors"][0]["extensions"]["code"], "FORBIDDEN", "a window officer may not repair credit");
    let r = graphql_as(&http, &base, &supervisor, repair.clone()).await;
    assert_eq!(r["errors"][0]["extensions"]["reason"], "REPAIR_TOO_EARLY", "{r}");
    graphql_as(&http, &base, &admin, json!({"query": "mutation { advanceClock(input: {bySeconds: 8640000}) { now } }"})).await;
    let r = graphql_as(&http, &base, &supervisor, repair.clone()).await;
    assert_eq!(r["data"]["repairCredit"]["repair"]["kind"], "repair", "{r}");
    let r = graphql_as(&http, &base, &supervisor, repair).await;
    assert_eq!(r["errors"][0]["extensions"]["code"], "NOT_FOUND", "a record is repaired once");
    let r = graphql_as(&http, &base, &window, open).await;
    assert!(r["data"]["openCase"]["case"]["id"].is_string(), "{r}");
}

/// Three supervision tasks through the real binary: one looked at in time and closed as kept
/// (the case closes, a fulfilment record), one ignored past 3 working days and escalated to the
/// region's supervisors, one failing inspection then rectified.
#[tokio::test]
async fn supervision_tasks_kept_escalated_and_rectified_over_http() {
    let d = Demo::start().await;
    let (http, base, smtp) = (&d.http, &d.base, &d.smtp);
    let (window, approver, division, inspector, admin) = (&d.window, &d.approver, &d.division, &d.inspector, &d.admin);
    let open = food_after_the_fact("91110000600037341L", "刘洋");
    let mut cases = Vec::new();
    let mut tasks = Vec::new();
    for _ in 0..3 {
        let r = graphql_as(&http, &base, &window, open.clone()).await;
        let case = r["data"]["openCase"]["case"]["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_string();
        graphql_as(&http, &base, &approver, issue_licence(&case)).await;
        let r = graphql_as(&http, &base, &division, json!({"query": "query($p: ID!) { workflowInstances(filter: {parentId: $p}) { edges { node { id timers { name dueAt } } } } }", "variables": {"p": case}})).await;
        tasks.push(r["data"]["workflowInstances"]["edges"][0]["node"].clone());
        cases.push(case);
    }
    let id = |t: &Value| t["id"].as_str().unwrap().to_string();
    let today = office_today(&d).await;
    let (kept, rectify) = (id(&tasks[0]), id(&tasks[2]));
    // Refused, and nothing changes: a finding missing, a stranger as inspector, a result fed back before inspecting.
    let r = graphql_as(&http, &base, &division, assign(&kept, &["window-01"])).await;
    assert_eq!(r["errors"][0]["extensions"]["field"], "inspectors", "{r}");
    let r = graphql_as(&http, &base, &inspector, feed_back(&kept, None)).await;
    assert_eq!(r["errors"][0]["extensions"]["code"], "INVALID_TRANSITION", "{r}");
    let steps: Vec<(&String, Value, &str)> = vec![
        (&division, assign(&kept, &["inspector-sp-1"]), "inspecting"),
        (&inspector, inspection("recordInspection", &kept, &today, findings(&[])), "awaiting_feedback"),
        (&inspector, feed_back(&kept, None), "closed_kept"),
        (&division, assign(&rectify, &["inspector-sp-1"]), "inspecting"),
    ];
    for (who, body, state) in steps {
        let r = graphql_as(&http, &base, who, body).await;
        assert_eq!(task_state(&r), state, "{r}");
    }
    let partial = json!([{"condition": HEALTH, "kept": false, "note": "两名员工无健康证明"}]);
    let r = graphql_as(&http, &base, &inspector, inspection("recordInspection", &rectify, &today, partial)).await;
    assert_eq!(r["errors"][0]["extensions"]["field"], "findings", "every condition needs a finding: {r}");
    let steps: Vec<(&String, Value, &str)> = vec![
        (&inspector, inspection("recordInspection", &rectify, &today, findings(&[HEALTH])), "awaiting_feedback"),
        (&division, feed_back(&rectify, Some("补办健康证明")), "rectifying"),
    ];
    for (who, body, state) in steps {
        let r = graphql_as(&http, &base, who, body).await;
        assert_eq!(task_state(&r), state, "{r}");
    }
    // The rectification runs for the item's 20 working days, to the end of the office day; the
    // reminder 3 working days before.
    let r = graphql_as(&http, &base, &inspector, json!({"query": "query($id: ID!) { workflowInstance(id: $id) { deadlines { name at } timers { name dueAt status } } }", "variables": {"id": rectify}})).await;
    let due = &r["data"]["workflowInstance"]["deadlines"][0];
    assert_eq!(due["name"], "rectification_due", "{r}");
    let expected = working_days_from(&today, 20);
    assert_eq!(due["at"], format!("{expected}T09:30:00+00:00"), "{r}");
    let pending: Vec<&str> = r["data"]["workflowInstance"]["timers"].as_array().unwrap().iter().filter(|t| t["status"] == "pending").map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(pending, ["rectification_reminder", "rectification_limit"], "{r}");
    let r = graphql_as(&http, &base, &inspector, inspection("recordReinspection", &rectify, &today, findings(&[]))).await;
    assert_eq!(task_state(&r), "closed_kept", "{r}");

    // Three working days on, the ignored task is overdue: escalated to the region's supervisors.
    let limit = tasks[1]["timers"].as_array().unwrap().iter().find(|t| t["name"] == "look_at_limit").unwrap()["dueAt"].clone();
    let r = graphql_as(&http, &base, &admin, advance_clock_to(limit)).await;
    assert!(r["data"]["advanceClock"]["timersFired"].as_u64().unwrap() >= 2, "the reminder, then the limit: {r}");
    let history = |task: String| json!({"query": "query($id: ID!) { workflowInstance(id: $id) { state history { event } } }", "variables": {"id": task}});
    let ignored = id(&tasks[1]);
    let r = graphql_as(&http, &base, &division, history(id(&tasks[1]))).await;
    let events: Vec<&str> = r["data"]["workflowInstance"]["history"].as_array().unwrap().iter().map(|h| h["event"].as_str().unwrap()).collect();
    assert_eq!(events, ["start", "notify", "look_at_reminder", "look_at_overdue"], "one audit event per step");
    // The division heard of the task at once, at its own address, with the limit in its calendar.
    let notices = mails_eventually(&smtp, 1, |all| {
        all.iter()
            .filter(|m| m.to == ["310101-scjg-sp@demo.pledgeflow.localhost"])
            .filter_map(|m| mail_parser::MessageParser::default().parse(&m.data).map(|p| p.body_text(0).unwrap_or_default().to_string()))
            .filter(|body| body.contains(&ignored))
            .count()
    })
    .await;
    let outbox = graphql_as(&http, &base, &admin, json!({"query": "query($id: ID!) { outbox(filter: {instanceId: $id}) { edges { node { channel recipient topic status lastError } } } }", "variables": {"id": ignored}})).await;
    assert_eq!(notices, 1, "one notice to the division: {outbox}");
    // (The demo's own tasks, created at the same time, are overdue too: count this one's.)
    let escalations = mails_eventually(&smtp, 1, |all| {
        all.iter()
            .filter(|m| m.to == ["supervisors@demo.pledgeflow.localhost"])
            .filter_map(|m| mail_parser::MessageParser::default().parse(&m.data).map(|p| (p.subject().unwrap_or("").to_string(), p.body_text(0).unwrap_or_default().to_string())))
            .filter(|(subject, body)| subject.contains("超过 3 个工作日") && body.contains(&ignored))
            .count()
    })
    .await;
    assert_eq!(escalations, 1, "the supervisors hear of it once");
    let sla = || {
        std::fs::read_dir(d.dir.path().join("data/webhooks/supervision"))
            .map_or(0, |d| d.filter(|f| f.as_ref().is_ok_and(|f| f.path().to_string_lossy().contains(&ignored))).count())
    };
    until(|| sla() >= 1).await;
    let breaches = sla();
    assert_eq!(breaches, 1, "and the supervision platform is told of the SLA breach");
    // And the breach is recorded against the division, for the supervisors' dashboards.
    let query = json!({"query": "{ slaBreaches(filter: {division: \"310101-SCJG-SP\"}) { taskId limit division } }"});
    let r = graphql_as(&http, &base, &d.supervisor, query.clone()).await;
    let ours: Vec<&Value> = r["data"]["slaBreaches"].as_array().unwrap_or_else(|| panic!("{r}")).iter().filter(|b| b["taskId"] == ignored.as_str()).collect();
    assert_eq!(ours, [&json!({"taskId": ignored, "limit": "look_at", "division": "310101-SCJG-SP"})], "{r}");
    let r = graphql_as(&http, &base, &window, query).await;
    assert_eq!(r["errors"][0]["extensions"]["code"], "FORBIDDEN", "{r}");

    // The kept task closed its case, with a fulfilment record; the rectified one too.
    for case in [&cases[0], &cases[2]] {
        eventually(&http, &base, &window, history(case.clone()), |r| r["data"]["workflowInstance"]["state"] == "closed").await;
    }
    let r = graphql_as(&http, &base, &admin, json!({"query": "{ creditRecords(uscc: \"91110000600037341L\") { kind } }"})).await;
    let fulfilments = r["data"]["creditRecords"].as_array().unwrap().iter().filter(|c| c["kind"] == "fulfilment").count();
    assert_eq!(fulfilments, 2, "{r}");
}

/// A licence revoked by its approving department ends the supervision task with it: the task
/// is withdrawn from the division (one audit event, one notice), not left to run out.
#[tokio::test]
async fn a_licence_revoked_by_its_department_withdraws_its_supervision_task() {
    let d = Demo::start().await;
    let (http, base) = (&d.http, &d.base);
    let r = graphql_as(http, base, &d.window, food_after_the_fact("91310110666007217T", "张伟")).await;
    let case = r["data"]["openCase"]["case"]["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_string();
    let issue = json!({"query": "mutation($id: ID!) { issueLicence(input: {caseId: $id, opinion: \"经审查符合条件\"}) { licenceNumber } }", "variables": {"id": case}});
    let r = graphql_as(http, base, &d.approver, issue).await;
    let number = r["data"]["issueLicence"]["licenceNumber"].as_str().unwrap_or_else(|| panic!("{r}")).to_string();
    // The archive handed to supervision: materials, the decision with its opinion, the commitment word for word.
    graphql_as(http, base, &d.admin, json!({"query": "mutation { advanceClock(input: {bySeconds: 0}) { messagesDelivered } }"})).await;
    let archive = || -> Option<Value> {
        std::fs::read_dir(d.dir.path().join("data/webhooks/supervision")).ok()?.filter_map(Result::ok).find_map(|f| {
            let body: Value = serde_json::from_slice(&std::fs::read(f.path()).ok()?).ok()?;
            (body["topic"] == "archive" && body["case"]["instance_id"] == case.as_str()).then_some(body)
        })
    };
    until(|| archive().is_some()).await;
    let archived = archive().expect("the archive reaches the supervision platform")["case"].clone();
    let ctx = &archived["context"];
    assert_eq!(ctx["materials"].as_array().map(Vec::len), Some(3), "{archived}");
    assert_eq!(ctx["decision"]["opinion"], "经审查符合条件", "{archived}");
    assert_eq!(ctx["decision"]["by"], "approver-01", "{archived}");
    assert_eq!(ctx["licence_number"], number.as_str(), "{archived}");
    assert!(ctx["commitment"]["text"].as_str().is_some_and(|t| t.contains("张伟")), "{archived}");
    assert_eq!(ctx["item"]["conditions"].as_array().map(Vec::len), Some(3), "{archived}");
    let r = graphql_as(http, base, &d.division, json!({"query": "query($p: ID!) { workflowInstances(filter: {parentId: $p}) { edges { node { id } } } }", "variables": {"p": case}})).await;
    let task = r["data"]["workflowInstances"]["edges"][0]["node"]["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_string();
    let r = graphql_as(http, base, &d.division, assign(&task, &["inspector-sp-1"])).await;
    assert_eq!(task_state(&r), "inspecting", "{r}");

    let revoke = json!({"query": "mutation($i: FireEventInput!) { fireEvent(input: $i) { instance { state } } }",
        "variables": {"i": {"instanceId": case, "event": "revoke", "payload": {"reason": "以欺骗手段取得许可"}}}});
    let r = graphql_as(http, base, &d.approver, revoke).await;
    assert_eq!(r["data"]["fireEvent"]["instance"]["state"], "revocation_noticed", "a notice first: {r}");
    let state_case = json!({"query": "mutation($id: ID!) { stateCase(input: {caseId: $id, statement: \"无异议\"}) { case { state } } }", "variables": {"id": case}});
    let r = graphql_as(http, base, &d.window, state_case).await;
    assert_eq!(r["data"]["stateCase"]["case"]["state"], "revocation_before_department", "{r}");
    let decide = json!({"query": "mutation($id: ID!) { decideRevocation(input: {caseId: $id, decision: REVOKE, reason: \"以欺骗手段取得许可\"}) { case { state } } }", "variables": {"id": case}});
    let r = graphql_as(http, base, &d.approver, decide).await;
    assert_eq!(r["data"]["decideRevocation"]["case"]["state"], "revoked", "{r}");
    graphql_as(http, base, &d.admin, json!({"query": "mutation { advanceClock(input: {bySeconds: 0}) { messagesDelivered } }"})).await;
    let history = json!({"query": "query($id: ID!) { workflowInstance(id: $id) { state history { event } } }", "variables": {"id": task}});
    let r = eventually(http, base, &d.division, history, |r| r["data"]["workflowInstance"]["state"] == "cancelled").await;
    let events: Vec<&str> = r["data"]["workflowInstance"]["history"].as_array().unwrap().iter().map(|h| h["event"].as_str().unwrap()).collect();
    assert_eq!(events.iter().filter(|e| **e == "case_ended").count(), 1, "{r}");
    assert_eq!(events.last(), Some(&"case_ended"), "{r}");
    let withdrawn = mails_eventually(&d.smtp, 1, |all| {
        all.iter()
            .filter(|m| m.to == ["310101-scjg-sp@demo.pledgeflow.localhost"])
            .filter_map(|m| mail_parser::MessageParser::default().parse(&m.data).map(|p| (p.subject().unwrap_or("").to_string(), p.body_text(0).unwrap_or_default().to_string())))
            .filter(|(subject, body)| subject.contains("监管任务撤销") && body.contains(&task))
            .count()
    })
    .await;
    assert_eq!(withdrawn, 1, "the division is told once");
    // Nothing more can be recorded on it.
    let today = office_today(&d).await;
    let r = graphql_as(http, base, &d.inspector, inspection("recordInspection", &task, &today, findings(&[]))).await;
    assert_eq!(r["errors"][0]["extensions"]["code"], "INVALID_TRANSITION", "{r}");
}

/// The demo installation on the real binary with a manual clock and a real SMTP server, and a
/// token for each role of the Huangpu food-safety line.
pub(crate) struct Demo {
    pub(crate) _server: Server,
    pub(crate) base: String,
    pub(crate) url: String,
    pub(crate) http: reqwest::Client,
    pub(crate) dir: tempfile::TempDir,
    pub(crate) smtp: crate::smtp::SmtpServer,
    pub(crate) window: String,
    pub(crate) approver: String,
    pub(crate) division: String,
    pub(crate) inspector: String,
    pub(crate) supervisor: String,
    pub(crate) admin: String,
}

impl Demo {
    pub(crate) async fn start() -> Self {
        Self::with_env(&[]).await
    }

    /// The same, with more settings (say, `PLEDGEFLOW_CLOCK_START`).
    pub(crate) async fn with_env(extra: &[(&str, &str)]) -> Self {
        let smtp = crate::smtp::SmtpServer::start();
        let dir = tempfile::tempdir().unwrap();
        let smtp_url = smtp.url();
        let env = [&[("PLEDGEFLOW_CLOCK", "manual"), ("PLEDGEFLOW_MAIL_URL", smtp_url.as_str())][..], extra].concat();
        let (server, base, url) = start(dir.path(), &env).await;
        // Subjects are the demo's staff ids: an inspector acts on the tasks assigned to it.
        let staff = |subject: &str, role: &str, scope: &[&str]| token_as(&url, subject, &[&["--role", role][..], scope].concat());
        let food = ["--department", "310101-SCJG"];
        let food_division = ["--department", "310101-SCJG", "--division", "310101-SCJG-SP"];
        Self {
            window: staff("window-01", "window", &food),
            approver: staff("approver-01", "approver", &food),
            division: staff("divadmin-sp", "division_admin", &food_division),
            inspector: staff("inspector-sp-1", "inspector", &food_division),
            supervisor: staff("supervisor-01", "supervisor", &["--region", "310101"]),
            admin: staff("admin-01", "regional_admin", &["--region", "310101"]),
            _server: server,
            base,
            url,
            http: crate::http::client(),
            dir,
            smtp,
        }
    }
}

/// The tests' HTTP client: a pooled connection is dropped after a second idle, well inside the
/// server's idle timeout (5 s), so that a request never goes out on a connection the server is
/// closing at that moment (`IncompleteMessage` on a busy machine).
pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder().pool_idle_timeout(std::time::Duration::from_secs(1)).build().expect("an HTTP client")
}

/// `openCase` with `input`, answering the case with its materials and timers.
pub(crate) fn open_case(input: Value) -> Value {
    json!({"query": "mutation($i: OpenCaseInput!) { openCase(input: $i) { case { id state materials { code status verification } instance { timers { name dueAt status } } } } }",
        "variables": {"i": input}})
}

/// Opening a food business case decided on the spot, every material provided.
pub(crate) fn food_after_the_fact(uscc: &str, signed_by: &str) -> Value {
    let provided = json!([{"code": "M01", "status": "PROVIDED", "fileRef": "D1"}, {"code": "M02", "status": "PROVIDED", "fileRef": "D2"}, {"code": "M03", "status": "PROVIDED", "fileRef": "D3"}]);
    open_case(json!({"applicantUscc": uscc, "itemCode": "310101-FOOD-01", "mode": "AFTER_THE_FACT", "signedBy": signed_by, "materials": provided}))
}

pub(crate) fn issue_licence(id: &str) -> Value {
    json!({"query": "mutation($id: ID!) { issueLicence(input: {caseId: $id}) { licenceNumber case { state } } }", "variables": {"id": id}})
}

/// The food item's condition on staff health certificates.
pub(crate) const HEALTH: &str = "从业人员持有效健康证明";

/// A finding for each of the demo food item's conditions: the ones named not kept.
pub(crate) fn findings(not_kept: &[&str]) -> Value {
    let conditions = ["经营场所面积不少于 10 平方米，与有毒有害场所距离 25 米以上", HEALTH, "设有食品安全管理人员和管理制度"];
    json!(conditions
        .iter()
        .map(|c| if not_kept.contains(c) { json!({"condition": c, "kept": false, "note": "现场未见"}) } else { json!({"condition": c, "kept": true}) })
        .collect::<Vec<_>>())
}

pub(crate) fn assign(task: &str, inspectors: &[&str]) -> Value {
    json!({"query": "mutation($i: AssignInspectorsInput!) { assignInspectors(input: $i) { task { state } } }",
        "variables": {"i": {"taskId": task, "inspectors": inspectors}}})
}

/// `recordInspection` or `recordReinspection` on `day` with `findings`.
pub(crate) fn inspection(mutation: &str, task: &str, day: &str, findings: Value) -> Value {
    json!({"query": format!("mutation($i: RecordInspectionInput!) {{ {mutation}(input: $i) {{ task {{ state }} }} }}"),
        "variables": {"i": {"taskId": task, "inspectedOn": day, "findings": findings, "evidence": ["现场照片 IMG-0412"]}}})
}

pub(crate) fn feed_back(task: &str, order: Option<&str>) -> Value {
    json!({"query": "mutation($i: FeedBackInspectionInput!) { feedBackInspection(input: $i) { task { state } } }",
        "variables": {"i": {"taskId": task, "rectificationOrder": order}}})
}

/// The state a supervision-task mutation answered with.
pub(crate) fn task_state(r: &Value) -> &Value {
    let data = &r["data"];
    ["assignInspectors", "recordInspection", "feedBackInspection", "recordReinspection"]
        .iter()
        .map(|m| &data[*m]["task"]["state"])
        .find(|s| !s.is_null())
        .unwrap_or(&Value::Null)
}

/// The server's (manual) clock's date in the office zone.
pub(crate) async fn office_today(d: &Demo) -> String {
    let r = graphql_as(&d.http, &d.base, &d.admin, json!({"query": "{ serverClock { now } }"})).await;
    let now: chrono::DateTime<chrono::Utc> = r["data"]["serverClock"]["now"].as_str().unwrap().parse().unwrap();
    now.with_timezone(&chrono_tz::Asia::Shanghai).date_naive().to_string()
}

/// The date `days` working days after `from`, on the official calendar.
fn working_days_from(from: &str, days: i64) -> String {
    let calendar = pledgeflow::domain::calendar::WorkingCalendar::load_dir(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows/calendars")).unwrap().with_provisional_next_year();
    calendar.add_working_days(from.parse().unwrap(), days).unwrap().to_string()
}

pub(crate) fn advance_clock_to(to: Value) -> Value {
    json!({"query": "mutation($to: DateTime!) { advanceClock(input: {to: $to}) { timersFired messagesDelivered } }", "variables": {"to": to}})
}

/// Asks `body` until `done` holds of the answer (at most 10 s): for effects that travel through
/// the server's outbox worker, which may hold a message for a moment.
pub(crate) async fn eventually(http: &reqwest::Client, base: &str, token: &str, body: Value, done: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..100 {
        last = graphql_as(http, base, token, body.clone()).await;
        if done(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("not within 10 s: {last}");
}

/// Waits (at most 10 s) until `count` of the messages the SMTP server received reaches `want`;
/// returns the final count.
pub(crate) async fn mails_eventually(smtp: &crate::smtp::SmtpServer, want: usize, count: impl Fn(&[crate::smtp::Received]) -> usize) -> usize {
    until(|| count(&smtp.received()) >= want).await;
    count(&smtp.received())
}

/// Waits until `done` holds, at most 10 s (the caller asserts afterwards).
pub(crate) async fn until(done: impl Fn() -> bool) {
    for _ in 0..100 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// SIGTERM: the server stops taking requests, finishes what it holds, gives back its claims and
/// exits cleanly, leaving no timer or message claimed.
#[tokio::test]
async fn a_terminated_server_finishes_releases_its_claims_and_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, base, url) = start(dir.path(), &[]).await;
    let http = crate::http::client();
    assert_eq!(http.get(format!("{base}/healthz")).send().await.unwrap().status(), 200);
    let pid = server.0.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let mut status = None;
    for _ in 0..100 {
        if let Some(s) = server.0.try_wait().unwrap() {
            status = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let status = status.expect("the server stops within 10 s of SIGTERM");
    assert!(status.success(), "{status:?}");
    let db = store::connect(&url, 1).await.unwrap();
    use sea_orm::PaginatorTrait;
    let claimed_timers = entities::timer::Entity::find().filter(entities::timer::Column::ClaimedBy.is_not_null()).filter(entities::timer::Column::Status.eq("pending")).count(&db).await.unwrap();
    let claimed_messages = entities::outbox::Entity::find().filter(entities::outbox::Column::ClaimedBy.is_not_null()).filter(entities::outbox::Column::Status.eq("pending")).count(&db).await.unwrap();
    assert_eq!((claimed_timers, claimed_messages), (0, 0));
}

#[tokio::test]
async fn every_response_names_its_request_and_an_internal_error_quotes_it() {
    let dir = tempfile::tempdir().unwrap();
    let (server, base, url) = start(dir.path(), &[]).await;
    let http = crate::http::client();
    for path in ["/healthz", "/readyz", "/metrics", "/nothing", "/console/app.js", "/graphql?query=%7B__typename%7D"] {
        let r = http.get(format!("{base}{path}")).send().await.unwrap();
        let id = r.headers().get("x-request-id").map(|v| v.to_str().unwrap().to_string());
        assert!(id.as_deref().is_some_and(|id| id.len() >= 32), "{path}: {id:?}");
    }
    // The caller's own id is kept, so a proxy's id follows the request through.
    let r = http.get(format!("{base}/healthz")).header("x-request-id", "support-42").send().await.unwrap();
    assert_eq!(r.headers()["x-request-id"], "support-42");
    // Anything but a plain token is replaced, not repeated into logs, spans and errors.
    for hostile in ["x".repeat(129), "a b".to_string(), "id;drop".to_string(), "\"quoted\"".to_string()] {
        let r = http.get(format!("{base}/healthz")).header("x-request-id", hostile.as_str()).send().await.unwrap();
        let id = r.headers()["x-request-id"].to_str().unwrap();
        assert!(id != hostile && id.len() == 36, "{hostile:?} answered with {id:?}");
    }
    // The store broken under the server: the error says nothing of the cause, and quotes the id.
    let db = store::connect(&url, 1).await.unwrap();
    sea_orm::ConnectionTrait::execute_unprepared(&db, "DROP TABLE inspection_draws").await.unwrap();
    let supervisor = token(&url, "supervisor");
    let r = http.post(format!("{base}/graphql")).bearer_auth(&supervisor).json(&json!({"query": "{ inspectionDraws(first: 5) { id } }"})).send().await.unwrap();
    let id = r.headers()["x-request-id"].to_str().unwrap().to_string();
    let body: Value = r.json().await.unwrap();
    assert_eq!(code(&body), "INTERNAL", "{body}");
    assert_eq!(body["errors"][0]["extensions"]["requestId"], json!(id), "{body}");
    assert!(!body.to_string().contains("inspection_draws"), "no cause leaks: {body}");
    server.stop();
}
