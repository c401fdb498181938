//! The HTTP edge over the real binary: header, idle, body and request timeouts, connection caps
//! in all and per address, 413 as JSON, introspection behind a token with GraphiQL off, and the
//! websocket's token expiry, per-connection public limit and fresh data per operation.
//! Small limits are configured for each server so that every wait is a second or two.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use pledgeflow::auth::{Claims, Keys};
use pledgeflow::store::{self, entities};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::{client::IntoClientRequest, Message};

use crate::helpers::{bin, repo};

const SECRET: &str = "edge-tests-secret-edge-tests-secret-0123";

struct Server {
    child: Child,
    base: String,
    port: u16,
    url: String,
    log: std::path::PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// `serve --demo` on a fresh SQLite file with the given settings (and `prefix`, e.g. prlimit),
/// its log in a file; waits until ready.
async fn serve(dir: &std::path::Path, env: &[(&str, &str)], prefix: &[&str]) -> Server {
    let url = format!("sqlite://{}/edge.db", dir.display());
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let log = dir.join("server.log");
    let binary = bin();
    let mut cmd = match prefix.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(&binary);
            c
        }
        None => Command::new(&binary),
    };
    cmd.args(["serve", "--demo"])
        .env("PLEDGEFLOW_DATABASE_URL", &url)
        .env("PLEDGEFLOW_LISTEN", format!("127.0.0.1:{port}"))
        .env("PLEDGEFLOW_WORKFLOWS_DIR", repo().join("workflows"))
        .env("PLEDGEFLOW_TEMPLATES_DIR", repo().join("templates"))
        .env("PLEDGEFLOW_DATA_DIR", dir.join("data"))
        .env("PLEDGEFLOW_JWT_SECRET", SECRET)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let server = Server { child: cmd.spawn().unwrap(), base: format!("http://127.0.0.1:{port}"), port, url, log };
    let http = reqwest::Client::new();
    for _ in 0..300 {
        if let Ok(r) = http.get(format!("{}/readyz", server.base)).send().await {
            if r.status() == 200 {
                return server;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("server did not come up: {}", server.log());
}

fn token(department: &str, valid_for: chrono::Duration) -> String {
    let mut claims = Claims::new("window-01", vec!["window".into()], chrono::Utc::now(), valid_for);
    claims.department = Some(department.into());
    Keys::hs256(SECRET.as_bytes()).mint(&claims).unwrap()
}

/// A raw connection from `source` (any 127.x.y.z address: the whole block is loopback).
async fn connect_from(source: &str, port: u16) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    socket.connect(format!("127.0.0.1:{port}").parse().unwrap()).await.unwrap()
}

/// Reads until the server closes or `within` passes: (what arrived, whether it closed, when).
async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> (String, bool, Duration) {
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = within.saturating_sub(started.elapsed());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Err(_) => return (String::from_utf8_lossy(&got).into(), false, started.elapsed()),
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&got).into(), true, started.elapsed()),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

async fn healthz_from(source: &str, port: u16) -> String {
    let mut s = connect_from(source, port).await;
    s.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").await.unwrap();
    read_until_closed(&mut s, Duration::from_secs(5)).await.0
}

/// A refused connection is answered 503 and closed at once (or closed before it is answered);
/// an admitted one would stay open until the idle timeout (10 s in these tests). The bound is
/// loose because the machine may be busy.
async fn assert_refused(stream: &mut TcpStream) {
    let (text, closed, took) = read_until_closed(stream, Duration::from_secs(5)).await;
    assert!(closed, "refused at once, got {text:?} after {took:?}");
    assert!(text.is_empty() || text.starts_with("HTTP/1.1 503"), "{text}");
}

#[tokio::test]
async fn partial_silent_and_idle_connections_are_dropped_after_their_timeouts() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), &[("PLEDGEFLOW_HTTP_HEADER_READ_TIMEOUT_SECS", "2"), ("PLEDGEFLOW_HTTP_IDLE_TIMEOUT_SECS", "1")], &[]).await;

    // Half a request head: the header timer, not the idle one, decides (bytes came).
    let mut partial = connect_from("127.0.0.1", server.port).await;
    partial.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n").await.unwrap();
    // A socket that never sends a byte: idle.
    let mut silent = connect_from("127.0.0.1", server.port).await;
    // A kept-alive connection after its answer: idle.
    let mut kept = connect_from("127.0.0.1", server.port).await;
    kept.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();

    let (_, closed, took) = read_until_closed(&mut silent, Duration::from_secs(5)).await;
    assert!(closed && took >= Duration::from_millis(700) && took < Duration::from_secs(3), "silent socket closed after {took:?}");
    let (text, closed, took) = read_until_closed(&mut kept, Duration::from_secs(5)).await;
    assert!(text.starts_with("HTTP/1.1 200") && closed && took < Duration::from_secs(3), "kept-alive socket: {text:?} closed {closed} after {took:?}");
    let (_, closed, took) = read_until_closed(&mut partial, Duration::from_secs(5)).await;
    assert!(closed, "a partial head is dropped");
    // Measured from when its bytes were sent, about 2 s; the other reads took about 1 s of it.
    assert!(took < Duration::from_secs(3), "partial head closed after a further {took:?}");
    assert_eq!(healthz_from("127.0.0.1", server.port).await.lines().next(), Some("HTTP/1.1 200 OK"));
}

/// Waits until the server counts `open` connections (it sees openings and closings a moment
/// after the client does).
async fn settle(kept: &reqwest::Client, base: &str, open: u32) {
    let want = format!("pledgeflow_http_connections_open {open}");
    let mut last = String::new();
    for _ in 0..100 {
        last = kept.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
        if last.lines().any(|l| l == want) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("never {want}: {}", last.lines().filter(|l| l.contains("http_connections")).collect::<Vec<_>>().join("\n"));
}

#[tokio::test]
async fn connections_beyond_the_caps_are_refused_while_healthz_still_answers() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = serve(
        dir.path(),
        &[("PLEDGEFLOW_HTTP_MAX_CONNECTIONS", "6"), ("PLEDGEFLOW_HTTP_MAX_CONNECTIONS_PER_ADDRESS", "4"), ("PLEDGEFLOW_HTTP_IDLE_TIMEOUT_SECS", "10"), ("PLEDGEFLOW_HTTP_HEADER_READ_TIMEOUT_SECS", "10")],
        &[],
    )
    .await;
    let port = server.port;
    // A client with one kept-alive connection, made before the flood.
    let kept = reqwest::Client::builder().pool_max_idle_per_host(1).build().unwrap();
    assert_eq!(kept.get(format!("{}/healthz", server.base)).send().await.unwrap().status(), 200);
    // The readiness probe's connection may still be open on the server's side.
    settle(&kept, &server.base, 1).await;

    // Per address: three more from 127.0.0.1 fill its four; the fifth is refused.
    let mut idle = Vec::new();
    for _ in 0..3 {
        idle.push(connect_from("127.0.0.1", port).await);
    }
    settle(&kept, &server.base, 4).await;
    for _ in 0..5 {
        assert_refused(&mut connect_from("127.0.0.1", port).await).await;
    }
    // Another address still gets in.
    assert!(healthz_from("127.0.0.2", port).await.starts_with("HTTP/1.1 200"));
    // Its connection is closed, but the server may not have seen it go yet (on a busy machine):
    // back to four before counting to the total cap.
    settle(&kept, &server.base, 4).await;
    // In all: one more idle makes five, a sixth from elsewhere six; the next is refused.
    idle.push(connect_from("127.0.0.3", port).await);
    idle.push(connect_from("127.0.0.4", port).await);
    settle(&kept, &server.base, 6).await;
    for source in ["127.0.0.5", "127.0.0.6", "127.0.0.7"] {
        assert_refused(&mut connect_from(source, port).await).await;
    }
    // The kept-alive client is still answered, on its own connection.
    assert_eq!(kept.get(format!("{}/healthz", server.base)).send().await.unwrap().status(), 200);
    let metrics = kept.get(format!("{}/metrics", server.base)).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("pledgeflow_http_connections_refused_total{reason=\"per_address\"} 5"), "{metrics}");
    assert!(metrics.contains("pledgeflow_http_connections_refused_total{reason=\"total\"} 3"), "{metrics}");

    // Closed connections give their places back.
    drop(idle);
    settle(&kept, &server.base, 1).await;
    assert!(healthz_from("127.0.0.5", port).await.starts_with("HTTP/1.1 200"));

    // SIGTERM with connections open still stops the server promptly and cleanly.
    let _held = connect_from("127.0.0.1", port).await;
    assert!(Command::new("kill").args(["-TERM", &server.child.id().to_string()]).status().unwrap().success());
    let started = Instant::now();
    let status = loop {
        if let Some(s) = server.child.try_wait().unwrap() {
            break s;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "still running 15 s after SIGTERM");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(status.success(), "{status:?}");
    assert!(!server.log().contains("Too many open files"));
}

#[tokio::test]
async fn the_cap_fits_the_open_file_limit_so_a_flood_never_exhausts_descriptors() {
    let dir = tempfile::tempdir().unwrap();
    // 256 descriptors in all: the default cap of 1024 connections is lowered to fit.
    let server = serve(dir.path(), &[("PLEDGEFLOW_HTTP_MAX_CONNECTIONS_PER_ADDRESS", "1024"), ("PLEDGEFLOW_HTTP_IDLE_TIMEOUT_SECS", "10"), ("PLEDGEFLOW_HTTP_HEADER_READ_TIMEOUT_SECS", "10")], &["prlimit", "--nofile=256:256", "--"]).await;
    let kept = reqwest::Client::builder().pool_max_idle_per_host(1).build().unwrap();
    assert_eq!(kept.get(format!("{}/healthz", server.base)).send().await.unwrap().status(), 200);
    let mut flood = Vec::new();
    for _ in 0..400 {
        flood.push(connect_from("127.0.0.1", server.port).await);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(kept.get(format!("{}/healthz", server.base)).send().await.unwrap().status(), 200);
    let log = server.log();
    assert!(log.contains("lowered to fit the open-file limit"), "{log}");
    assert!(!log.contains("Too many open files") && !log.contains("accept failed"), "{log}");
    drop(flood);
}

#[tokio::test]
async fn slow_bodies_are_cut_and_big_ones_get_413_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), &[("PLEDGEFLOW_HTTP_BODY_TIMEOUT_SECS", "1"), ("PLEDGEFLOW_HTTP_REQUEST_TIMEOUT_SECS", "3")], &[]).await;
    let head = b"POST /graphql HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n";

    // A body that stops: cut after the body timeout.
    let mut stalled = connect_from("127.0.0.1", server.port).await;
    stalled.write_all(head).await.unwrap();
    stalled.write_all(b"{\"query\":").await.unwrap();
    let (text, _, took) = read_until_closed(&mut stalled, Duration::from_secs(5)).await;
    assert!(text.starts_with("HTTP/1.1 408") && text.contains("\"TIMEOUT\"") && took < Duration::from_secs(3), "{text:?} after {took:?}");

    // A body trickled a byte at a time, each within the body timeout: cut by the request's.
    let mut trickle = connect_from("127.0.0.1", server.port).await;
    trickle.write_all(head).await.unwrap();
    let started = Instant::now();
    let mut answer = String::new();
    for _ in 0..20 {
        if trickle.write_all(b" ").await.is_err() {
            break;
        }
        let mut buf = [0u8; 1024];
        if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(400), trickle.read(&mut buf)).await {
            answer = String::from_utf8_lossy(&buf[..n]).into();
            break;
        }
    }
    assert!(answer.starts_with("HTTP/1.1 408") && answer.contains("\"TIMEOUT\""), "{answer:?}");
    assert!(started.elapsed() < Duration::from_secs(5), "cut after {:?}", started.elapsed());

    // A head over 64 KiB: 431, read no further.
    let r = reqwest::Client::new().get(format!("{}/healthz", server.base)).header("x-pad", "x".repeat(100 * 1024)).send().await.unwrap();
    assert_eq!(r.status(), 431);

    // Over the limit: 413 with a GraphQL error body in the negotiated media type.
    let huge = "x".repeat(300 * 1024);
    for (accept, media) in [("application/json", "application/json"), ("application/graphql-response+json", "application/graphql-response+json")] {
        let r = reqwest::Client::new()
            .post(format!("{}/graphql", server.base))
            .header("accept", accept)
            .json(&json!({"query": format!("{{ __typename }} # {huge}")}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 413);
        assert_eq!(r.headers()["content-type"], media);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["errors"][0]["extensions"]["code"], "PAYLOAD_TOO_LARGE", "{body}");
    }
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

async fn ws_connect(base: &str, init: Value) -> Ws {
    let mut request = format!("{}/graphql/ws", base.replace("http://", "ws://")).into_client_request().unwrap();
    request.headers_mut().insert("sec-websocket-protocol", "graphql-transport-ws".parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    ws.send(Message::Text(json!({"type": "connection_init", "payload": init}).to_string().into())).await.unwrap();
    assert_eq!(ws_next(&mut ws).await.expect("ack")["type"], "connection_ack");
    ws
}

/// The next text message as JSON; `None` when the server closed (or nothing came in 10 s).
async fn ws_next(ws: &mut Ws) -> Option<Value> {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return Some(serde_json::from_str(&t).unwrap()),
            Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) | Err(_) => return None,
            Ok(Some(Ok(_))) => continue,
        }
    }
}

/// Runs one operation to its `complete` and returns its `next` payloads.
async fn ws_run(ws: &mut Ws, id: &str, query: &str, variables: Value) -> Vec<Value> {
    ws.send(Message::Text(json!({"id": id, "type": "subscribe", "payload": {"query": query, "variables": variables}}).to_string().into())).await.unwrap();
    let mut out = Vec::new();
    while let Some(m) = ws_next(ws).await {
        match m["type"].as_str() {
            Some("next") => out.push(m["payload"].clone()),
            Some("complete") => return out,
            Some("error") => {
                out.push(json!({"errors": m["payload"]}));
                return out;
            }
            _ => {}
        }
    }
    out
}

async fn awaiting_case(url: &str) -> String {
    let db = store::connect(url, 1).await.unwrap();
    entities::instance::Entity::find()
        .filter(entities::instance::Column::DefinitionName.eq("material-deferral"))
        .filter(entities::instance::Column::State.eq("awaiting_materials"))
        .one(&db)
        .await
        .unwrap()
        .expect("demo seeds a deferral case awaiting materials")
        .id
}

#[tokio::test]
async fn a_websocket_is_closed_when_its_token_expires_and_refuses_what_comes_after() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), &[], &[]).await;
    let case = awaiting_case(&server.url).await;
    let short = token("310101-SCJG", chrono::Duration::seconds(3));
    let started = Instant::now();
    let mut ws = ws_connect(&server.base, json!({"Authorization": format!("Bearer {short}")})).await;
    let state = ws_run(&mut ws, "1", "query($id: ID!) { workflowInstance(id: $id) { state } }", json!({"id": case})).await;
    assert_eq!(state[0]["data"]["workflowInstance"]["state"], "awaiting_materials", "{state:?}");
    ws.send(Message::Text(json!({"id": "2", "type": "subscribe", "payload": {"query": "subscription($id: ID!) { caseEvents(instanceId: $id) { event } }", "variables": {"id": case}}}).to_string().into())).await.unwrap();

    // The server closes the connection, with its subscription, when the token runs out.
    let close = loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await.expect("closed within 10 s") {
            Some(Ok(Message::Close(frame))) => break frame,
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    let took = started.elapsed();
    assert_eq!(close.as_ref().map(|f| u16::from(f.code)), Some(4401), "{close:?}");
    assert!(took >= Duration::from_millis(1500) && took < Duration::from_secs(6), "closed after {took:?}");
    // A fireEvent sent after expiry goes nowhere: the connection is gone.
    let fire = json!({"id": "3", "type": "subscribe", "payload": {"query": "mutation($i: FireEventInput!) { fireEvent(input: $i) { instance { state } } }",
        "variables": {"i": {"instanceId": case, "event": "withdraw", "payload": {"reason": "x"}}}}});
    let _ = ws.send(Message::Text(fire.to_string().into())).await;
    assert!(ws_next(&mut ws).await.is_none());

    // A new connection with the expired token (still within the verifier's 30 s leeway) is
    // refused the same operation.
    let mut again = ws_connect(&server.base, json!({"Authorization": format!("Bearer {short}")})).await;
    ws_run(&mut again, "1", "mutation($i: FireEventInput!) { fireEvent(input: $i) { instance { state } } }",
        json!({"i": {"instanceId": case, "event": "withdraw", "payload": {"reason": "x"}}})).await;
    let long = token("310101-SCJG", chrono::Duration::hours(1));
    let r: Value = reqwest::Client::new()
        .post(format!("{}/graphql", server.base))
        .bearer_auth(&long)
        .json(&json!({"query": "query($id: ID!) { workflowInstance(id: $id) { state } }", "variables": {"id": case}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["data"]["workflowInstance"]["state"], "awaiting_materials", "nothing fired after expiry: {r}");
}

#[tokio::test]
async fn websockets_serve_fresh_history_limit_public_fields_per_connection_and_guard_introspection() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), &[("PLEDGEFLOW_PUBLIC_REQUESTS_PER_MINUTE", "2"), ("PLEDGEFLOW_GRAPHIQL", "false")], &[]).await;
    let case = awaiting_case(&server.url).await;
    let window = token("310101-SCJG", chrono::Duration::hours(1));

    // Fresh history: the same query twice over one connection, an event fired between them.
    let mut ws = ws_connect(&server.base, json!({"Authorization": format!("Bearer {window}")})).await;
    let history = "query($id: ID!) { workflowInstance(id: $id) { history { event } } }";
    let events = |r: &[Value]| -> Vec<String> {
        r[0]["data"]["workflowInstance"]["history"].as_array().unwrap_or_else(|| panic!("{r:?}")).iter().map(|e| e["event"].as_str().unwrap().to_string()).collect()
    };
    let before = events(&ws_run(&mut ws, "1", history, json!({"id": case})).await);
    let fire = json!({"query": "mutation($i: FireEventInput!) { fireEvent(input: $i) { instance { state } } }",
        "variables": {"i": {"instanceId": case, "event": "withdraw", "payload": {"reason": "不再经营"}}}});
    let r: Value = reqwest::Client::new().post(format!("{}/graphql", server.base)).bearer_auth(&window).json(&fire).send().await.unwrap().json().await.unwrap();
    assert_eq!(r["data"]["fireEvent"]["instance"]["state"], "withdrawn", "{r}");
    let after = events(&ws_run(&mut ws, "2", history, json!({"id": case})).await);
    assert_eq!(after.len(), before.len() + 1, "{before:?} then {after:?}");
    assert_eq!(after.last().map(String::as_str), Some("withdraw"));

    // Public fields: two a minute per connection; another connection has its own two.
    let public = "{ publicCommitments(uscc: \"91310110666007217T\") { name } }";
    let mut a = ws_connect(&server.base, json!({})).await;
    for i in 0..2 {
        let r = ws_run(&mut a, &format!("p{i}"), public, json!({})).await;
        assert!(r[0]["data"]["publicCommitments"]["name"].is_string(), "{r:?}");
    }
    let r = ws_run(&mut a, "p3", public, json!({})).await;
    assert_eq!(r[0]["errors"][0]["extensions"]["code"], "RATE_LIMITED", "{r:?}");
    let mut b = ws_connect(&server.base, json!({})).await;
    let r = ws_run(&mut b, "p1", public, json!({})).await;
    assert!(r[0]["data"]["publicCommitments"]["name"].is_string(), "a second connection is not held back by the first: {r:?}");

    // Introspection with GraphiQL off: refused without a token, over HTTP and websockets.
    let schema = "{ __schema { queryType { name } } }";
    let r = ws_run(&mut b, "i1", schema, json!({})).await;
    assert_eq!(r[0]["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{r:?}");
    let r = ws_run(&mut ws, "i2", schema, json!({})).await;
    assert_eq!(r[0]["data"]["__schema"]["queryType"]["name"], "Query", "{r:?}");
    let http = reqwest::Client::new();
    let ask = |token: Option<&str>, query: &str| {
        let mut req = http.post(format!("{}/graphql", server.base)).json(&json!({"query": query}));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    let r: Value = ask(None, schema).await.unwrap().json().await.unwrap();
    assert_eq!(r["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{r}");
    let r: Value = ask(None, "{ __type(name: \"Query\") { name } }").await.unwrap().json().await.unwrap();
    assert_eq!(r["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{r}");
    let r: Value = ask(Some(&window), schema).await.unwrap().json().await.unwrap();
    assert_eq!(r["data"]["__schema"]["queryType"]["name"], "Query", "{r}");
    let r: Value = ask(None, "{ __typename }").await.unwrap().json().await.unwrap();
    assert_eq!(r["data"]["__typename"], "Query", "{r}");
}

/// A websocket's operations are judged by the staff registry as it is when each runs: a member
/// deactivated (or moved) after `connection_init` is refused from the next operation on.
#[tokio::test]
async fn a_websocket_of_a_member_the_registry_no_longer_bears_out_is_refused() {
    use sea_orm::ConnectionTrait;
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), &[], &[]).await;
    let case = awaiting_case(&server.url).await;
    let mut ws = ws_connect(&server.base, json!({"Authorization": format!("Bearer {}", token("310101-SCJG", chrono::Duration::minutes(10)))})).await;
    let query = "query($id: ID!) { workflowInstance(id: $id) { state } }";
    let state = ws_run(&mut ws, "1", query, json!({"id": case})).await;
    assert_eq!(state[0]["data"]["workflowInstance"]["state"], "awaiting_materials", "{state:?}");
    let db = store::connect(&server.url, 1).await.unwrap();
    db.execute_unprepared("UPDATE staff SET active = 0 WHERE id = 'window-01'").await.unwrap();
    let refused = ws_run(&mut ws, "2", query, json!({"id": case})).await;
    let error = refused[0]["errors"][0].clone();
    assert_eq!(error["extensions"]["code"], "UNAUTHENTICATED", "{refused:?}");
}
