//! Queries on a real PostgreSQL hot standby: the test makes its own primary and replica clusters
//! (pg_createcluster on free ports, streaming replication from pg_basebackup) and leaves the
//! shared cluster alone. Runs with the PostgreSQL tests (PLEDGEFLOW_TEST_DATABASE_URL set).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::bin;
use crate::http::{free_port, graphql_as, next_text, open_case, serve_on};

/// A cluster of this machine's PostgreSQL, dropped with the test.
struct Cluster {
    version: String,
    name: String,
    port: u16,
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn postgres_version() -> String {
    let mut versions: Vec<String> = std::fs::read_dir("/usr/lib/postgresql").expect("PostgreSQL installed").filter_map(|e| e.ok()?.file_name().into_string().ok()).collect();
    versions.sort_by_key(|v| v.parse::<u32>().unwrap_or(0));
    versions.pop().expect("a PostgreSQL version")
}

impl Cluster {
    /// A new cluster on a free port, trusting local connections (replication included).
    fn create(role: &str) -> Self {
        let version = postgres_version();
        let port = free_port();
        let name = format!("pf_{role}_{}_{port}", std::process::id());
        run(Command::new("pg_createcluster").args(["-p", &port.to_string(), &version, &name]));
        let cluster = Self { version, name, port };
        std::fs::write(
            cluster.conf_dir().join("pg_hba.conf"),
            "local all all trust\nhost all all 127.0.0.1/32 trust\nhost replication all 127.0.0.1/32 trust\n",
        )
        .unwrap();
        std::fs::write(cluster.conf_dir().join("conf.d/pledgeflow-test.conf"), "listen_addresses = '127.0.0.1'\nfsync = off\n").unwrap();
        cluster
    }

    fn conf_dir(&self) -> PathBuf {
        Path::new("/etc/postgresql").join(&self.version).join(&self.name)
    }

    fn data_dir(&self) -> PathBuf {
        Path::new("/var/lib/postgresql").join(&self.version).join(&self.name)
    }

    fn ctl(&self, action: &str) {
        run(Command::new("pg_ctlcluster").args(["--skip-systemctl-redirect", &self.version, &self.name, action]));
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn psql(&self, sql: &str) -> String {
        run(Command::new("psql").args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "postgres", "-d", "postgres", "-Atc", sql])).trim().to_string()
    }

    /// A hot standby of `primary`: its data folder replaced by a base backup streaming from it.
    fn standby_of(primary: &Cluster) -> Self {
        let replica = Self::create("replica");
        // Emptied, not removed: the folder stays the postgres user's, as the cluster made it.
        for entry in std::fs::read_dir(replica.data_dir()).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() { std::fs::remove_dir_all(&path).unwrap() } else { std::fs::remove_file(&path).unwrap() }
        }
        run(Command::new("runuser").args(["-u", "postgres", "--", "pg_basebackup", "-h", "127.0.0.1", "-p", &primary.port.to_string(), "-U", "postgres", "-D"]).arg(replica.data_dir()).args(["-R", "-X", "stream", "-c", "fast"]));
        replica.ctl("start");
        replica
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("pg_dropcluster").args(["--stop", &self.version, &self.name]).output();
    }
}

fn token(url: &str, dir: &Path, subject: &str, args: &[&str]) -> String {
    let out = Command::new(bin())
        .args(["token", "--subject", subject])
        .args(args)
        .env("PLEDGEFLOW_DATABASE_URL", url)
        .env("PLEDGEFLOW_KEY_FILE", dir.join("signing.key"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn routed(metrics: &str, on: &str) -> f64 {
    let series = format!("pledgeflow_graphql_queries_routed_total{{on=\"{on}\"}}");
    metrics.lines().find(|l| l.starts_with(&series)).and_then(|l| l.rsplit(' ').next()).and_then(|v| v.parse().ok()).unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_read_on_a_lagging_replica_and_callers_still_see_their_own_writes() {
    if std::env::var("PLEDGEFLOW_TEST_DATABASE_URL").is_err() {
        return; // the PostgreSQL tests are off
    }
    let primary = Cluster::create("primary");
    primary.ctl("start");
    let replica = Cluster::standby_of(&primary);
    for _ in 0..100 {
        if replica.psql("SELECT pg_is_in_recovery()") == "t" && !replica.psql("SELECT pg_last_wal_replay_lsn()").is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(replica.psql("SELECT pg_is_in_recovery()"), "t", "the replica is a standby");

    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("signing.key");
    let audit_key = dir.path().join("audit.key");
    let replica_url = replica.url();
    let env = [
        ("PLEDGEFLOW_READ_DATABASE_URL", replica_url.as_str()),
        ("PLEDGEFLOW_KEY_FILE", key.to_str().unwrap()),
        ("PLEDGEFLOW_AUDIT_KEY_FILE", audit_key.to_str().unwrap()),
    ];
    let (_server, base, url) = serve_on(dir.path(), &primary.url(), true, &env).await;
    let http = crate::http::client();
    let food = ["--department", "310101-SCJG"];
    let window = token(&url, dir.path(), "window-01", &[&["--role", "window"][..], &food].concat());
    let approver = token(&url, dir.path(), "approver-01", &[&["--role", "approver"][..], &food].concat());
    let supervisor = token(&url, dir.path(), "supervisor-01", &["--role", "supervisor", "--region", "310101"]);
    let metrics = || async { http.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap() };
    let case_query = |id: &str| json!({"query": "query($id: ID!) { case(id: $id) { id state } }", "variables": {"id": id}});
    let open = || open_case(json!({"applicantUscc": "91310110666007217T", "itemCode": "310101-FOOD-01", "mode": "AFTER_THE_FACT", "signedBy": "张伟",
        "materials": [{"code": "M01", "status": "PROVIDED"}, {"code": "M02", "status": "PROVIDED"}, {"code": "M03", "status": "PROVIDED"}]}));

    // Caught up: the window's own case is read at once, the statistics from the replica.
    let r = graphql_as(&http, &base, &window, open()).await;
    let first = r["data"]["openCase"]["case"]["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_string();
    let r = graphql_as(&http, &base, &window, case_query(&first)).await;
    assert_eq!(r["data"]["case"]["id"], first.as_str(), "the caller reads its own write: {r}");
    let stats = json!({"query": "{ statistics(filter: {from: \"2020-01-01T00:00:00Z\", to: \"2100-01-01T00:00:00Z\"}) { fulfilment { kept rate } casesByModeAndState { mode state count } } }"});
    let r = graphql_as(&http, &base, &supervisor, stats.clone()).await;
    assert!(r.get("errors").is_none(), "statistics on the replica: {r}");
    let before = metrics().await;
    assert!(routed(&before, "replica") >= 1.0, "queries were read on the replica: {before}");

    // The replica stops replaying: it lags as far as the test likes.
    replica.psql("SELECT pg_wal_replay_pause()");
    for _ in 0..50 {
        if replica.psql("SELECT pg_get_wal_replay_pause_state()") == "paused" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = graphql_as(&http, &base, &window, open()).await;
    let second = r["data"]["openCase"]["case"]["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_string();
    let opened_in = r["data"]["openCase"]["case"]["state"].clone();
    // Its author reads it at once (from the primary, the replica not having replayed it) …
    for _ in 0..3 {
        let r = graphql_as(&http, &base, &window, case_query(&second)).await;
        assert_eq!(r["data"]["case"]["state"], opened_in, "the window reads its own write despite the lag: {r}");
    }
    // … while another caller, reading the replica, sees the committed past as it was: the
    // earlier case, not yet the new one — a consistent, older answer, never an error.
    let r = graphql_as(&http, &base, &approver, case_query(&first)).await;
    assert_eq!(r["data"]["case"]["id"], first.as_str(), "{r}");
    let r = graphql_as(&http, &base, &approver, case_query(&second)).await;
    assert!(r.get("errors").is_none(), "{r}");
    assert_eq!(r["data"]["case"], Value::Null, "the lagging replica has not the new case yet: {r}");
    let r = graphql_as(&http, &base, &supervisor, stats.clone()).await;
    assert!(r.get("errors").is_none(), "statistics on the lagging replica: {r}");
    let during = metrics().await;
    assert!(routed(&during, "primary") > routed(&before, "primary"), "the author's reads went to the primary: {during}");

    // Replay resumes: the new case reaches the replica, and everyone reads it there.
    replica.psql("SELECT pg_wal_replay_resume()");
    let mut seen = Value::Null;
    for _ in 0..100 {
        let r = graphql_as(&http, &base, &approver, case_query(&second)).await;
        seen = r["data"]["case"]["id"].clone();
        if seen == second.as_str() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(seen, second.as_str(), "the replica caught up");
    // Once replayed, the author's queries return to the replica.
    tokio::time::sleep(api_refresh() * 3).await;
    let replica_reads = routed(&metrics().await, "replica");
    let r = graphql_as(&http, &base, &window, case_query(&second)).await;
    assert_eq!(r["data"]["case"]["id"], second.as_str(), "{r}");
    assert!(routed(&metrics().await, "replica") > replica_reads, "the author reads on the replica again");

    // Subscriptions stay on the primary and keep working: the case's live events arrive.
    {
        use futures::SinkExt;
        use tokio_tungstenite::tungstenite::{client::IntoClientRequest, Message};
        let mut request = format!("{}/graphql/ws", base.replace("http://", "ws://")).into_client_request().unwrap();
        request.headers_mut().insert("sec-websocket-protocol", "graphql-transport-ws".parse().unwrap());
        let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
        let send = |v: Value| Message::Text(v.to_string().into());
        ws.send(send(json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {window}")}}))).await.unwrap();
        assert_eq!(next_text(&mut ws).await["type"], "connection_ack");
        ws.send(send(json!({"id": "1", "type": "subscribe", "payload": {
            "query": "subscription($id: ID!) { caseEvents(instanceId: $id) { event toState } }", "variables": {"id": second}}}))).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let r = graphql_as(&http, &base, &approver, json!({"query": "mutation($id: ID!) { issueLicence(input: {caseId: $id}) { licenceNumber } }", "variables": {"id": second}})).await;
        assert!(r.get("errors").is_none(), "{r}");
        let heard = next_text(&mut ws).await;
        assert_eq!(heard["payload"]["data"]["caseEvents"]["toState"], "licensed", "{heard}");
    }
}

fn api_refresh() -> Duration {
    pledgeflow::api::reads::REFRESH
}
