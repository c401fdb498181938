//! `pledgeflow bench-load`: the real server under load. Fills the database with a year of
//! cases (every mode and end, their events, timers and supervision tasks) beside the demo
//! office, starts `pledgeflow serve` on it as a child process, and drives it over HTTP:
//! intake-to-licence flows (openCase → issueLicence over three departments' items, and bundles
//! of two items) at each number of concurrent clients, then the window's inbox, a case's detail
//! and the department's statistics at a fixed request rate (open loop: requests are sent on
//! schedule whether or not earlier ones have answered), optionally while other clients keep
//! running flows, and reads the server's peak resident memory.

use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::auth::Claims;
use crate::config::Config;
use crate::runtime::Engine;
use crate::store;

pub struct LoadOptions {
    /// Background cases in the database (seeded once, reused by later runs).
    pub cases: usize,
    /// Concurrent clients for the intake-to-licence phase, one run each.
    pub clients: Vec<usize>,
    /// Flows per run.
    pub flows: usize,
    /// Requests per second in the latency phase, and for how long.
    pub rate: u32,
    pub seconds: u64,
    /// Clients running flows all through the latency phase (the reads measured under write load).
    pub write_clients: usize,
}

const OPEN: &str = "mutation($i: OpenCaseInput!) { openCase(input: $i) { case { id } } }";
const OPEN_BUNDLE: &str = "mutation($i: OpenBundleInput!) { openBundle(input: $i) { bundle { id children { itemCode instanceId } } } }";
const ISSUE: &str = "mutation($id: ID!) { issueLicence(input: {caseId: $id}) { licenceNumber } }";
const INBOX: &str = "query { workflowInstances(filter: {definition: \"material-deferral\", state: \"awaiting_materials\"}, first: 20) { totalCount edges { node { id state deadlines { name at } timers { name dueAt status } } } } }";
const STATISTICS: &str = "query($f: StatisticsFilter!) { statistics(filter: $f) { casesByModeAndState { mode state count } legalLimitsPassed } }";
const DETAIL: &str = "query($id: ID!) { workflowInstance(id: $id) { id state version context deadlines { name at } history { seq event actor occurredAt hash } timers { name event dueAt status } } }";
/// The demo's applicant in good standing and its food business item (materials M01–M03).
const APPLICANT: &str = "91310110666007217T";
const ITEM: &str = "310101-FOOD-01";
/// The demo's items decided on the spot, each with its department (materials M01–M03 each):
/// food business at the market regulator, public-place hygiene at the health
/// commission, road freight at the transport commission.
const ITEMS: [(&str, &str); 3] = [(ITEM, "310101-SCJG"), ("310101-HYG-01", "310101-WJW"), ("310101-HY-01", "310101-JTW")];
/// Every `BUNDLE_EVERY`-th flow is a bundle (一照通行) of food and hygiene at the service
/// centre's window instead of one case.
const BUNDLE_EVERY: usize = 4;

struct Server {
    child: tokio::process::Child,
    url: String,
    http: reqwest::Client,
}

impl Server {
    async fn start(config: &Config, data: &std::path::Path) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let child = tokio::process::Command::new(std::env::current_exe()?)
            .arg("serve")
            .env("PLEDGEFLOW_DATABASE_URL", &config.database_url)
            .env("PLEDGEFLOW_LISTEN", format!("127.0.0.1:{port}"))
            .env("PLEDGEFLOW_DATA_DIR", data)
            .env("PLEDGEFLOW_LOG", "warn")
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::builder().pool_max_idle_per_host(256).build()?;
        let started = Instant::now();
        while !http.get(format!("{url}/readyz")).send().await.map(|r| r.status().is_success()).unwrap_or(false) {
            anyhow::ensure!(started.elapsed() < Duration::from_secs(120), "the server did not become ready");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(Server { child, url, http })
    }

    async fn call(&self, token: &str, query: &str, variables: Value) -> anyhow::Result<Value> {
        let r: Value = self
            .http
            .post(format!("{}/graphql", self.url))
            .bearer_auth(token)
            .json(&json!({"query": query, "variables": variables}))
            .send()
            .await?
            .json()
            .await?;
        anyhow::ensure!(r.get("errors").is_none(), "request refused: {r}");
        Ok(r["data"].clone())
    }

    /// The peak resident set (VmHWM) of the server process, in MiB.
    fn peak_memory_mib(&self) -> Option<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()?)).ok()?;
        let kib: f64 = status.lines().find(|l| l.starts_with("VmHWM:"))?.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib / 1024.0)
    }
}

/// The staff the flows act as, by department.
struct Flow {
    windows: std::collections::HashMap<&'static str, String>,
    approvers: std::collections::HashMap<&'static str, String>,
    centre: String,
}

impl Flow {
    /// Runs flow `n` of the mix; answers how many licences it issued.
    async fn run(&self, server: &Server, n: usize) -> anyhow::Result<usize> {
        let materials = json!([{"code": "M01", "status": "PROVIDED", "fileRef": "DOC-1"}, {"code": "M02", "status": "PROVIDED", "fileRef": "DOC-2"}, {"code": "M03", "status": "PROVIDED", "fileRef": "DOC-3"}]);
        if n % BUNDLE_EVERY == BUNDLE_EVERY - 1 {
            let items: Vec<Value> = ITEMS[..2].iter().map(|(code, _)| json!({"itemCode": code, "mode": "AFTER_THE_FACT", "materials": materials})).collect();
            let fields: Vec<Value> = [("premises_address", "黄浦区中山东一路 1 号"), ("business_area", "120"), ("food_safety_manager", "张伟"), ("hygiene_manager", "李娜")]
                .iter()
                .map(|(code, value)| json!({"code": code, "value": value}))
                .collect();
            let input = json!({"i": {"applicantUscc": APPLICANT, "items": items, "fields": fields, "signedBy": "张伟"}});
            let opened = server.call(&self.centre, OPEN_BUNDLE, input).await?;
            let children = opened["openBundle"]["bundle"]["children"].as_array().cloned().unwrap_or_default();
            anyhow::ensure!(children.len() == 2, "a bundle of two items opened {children:?}");
            for child in &children {
                let department = ITEMS.iter().find(|(code, _)| child["itemCode"].as_str() == Some(code)).map(|(_, d)| *d).unwrap_or_default();
                let id = child["instanceId"].as_str().ok_or_else(|| anyhow::anyhow!("a child not started: {child}"))?;
                server.call(&self.approvers[department], ISSUE, json!({"id": id})).await?;
            }
            return Ok(children.len());
        }
        let (item, department) = ITEMS[n % BUNDLE_EVERY % ITEMS.len()];
        let input = json!({"i": {"applicantUscc": APPLICANT, "itemCode": item, "mode": "AFTER_THE_FACT", "signedBy": "张伟", "materials": materials}});
        let opened = server.call(&self.windows[department], OPEN, input).await?;
        let id = opened["openCase"]["case"]["id"].as_str().unwrap_or_default().to_string();
        server.call(&self.approvers[department], ISSUE, json!({"id": id})).await?;
        Ok(1)
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

pub async fn run(engine: Engine, config: &Config, opts: LoadOptions) -> anyhow::Result<()> {
    let db = &engine.db;
    println!("backend: {:?}", db.get_database_backend());
    // The demo office is where the flows run: loaded first, on an empty database.
    if crate::demo::seed(&engine).await? > 0 {
        println!("fixture: demo office loaded");
    }
    anyhow::ensure!(
        store::count(db, "SELECT COUNT(*) AS n FROM approval_items WHERE code = ?", vec![ITEM.into()]).await? > 0,
        "bench-load needs an empty database (it loads the demo office first) or one an earlier bench-load filled"
    );
    crate::bench::ensure_bench_cases(&engine, opts.cases).await?;
    let now = chrono::Utc::now();
    let keys = crate::auth::keys(db, &config.tokens()).await?;
    // Every staff token is checked against the staff registry: the load's officers are registered first.
    let mut officers = vec![("load-window-centre".to_string(), "window", "310101-ZWZX".to_string()), ("load-inbox".to_string(), "window", "B-D1".to_string())];
    for (_, department) in ITEMS {
        officers.push((format!("load-window-{department}"), "window", department.to_string()));
        officers.push((format!("load-approver-{department}"), "approver", department.to_string()));
    }
    for (sub, role, department) in &officers {
        crate::window::registry::put_staff(db, sub, sub, department, None, &[role.to_string()], None, now).await?;
    }
    let token = |sub: &str, role: &str, department: &str| -> anyhow::Result<String> {
        let mut claims = Claims::new(sub, vec![role.to_string()], now, chrono::Duration::hours(4));
        claims.department = Some(department.into());
        keys.mint(&claims).ok_or_else(|| anyhow::anyhow!("this installation cannot mint tokens"))
    };
    let mut windows = std::collections::HashMap::new();
    let mut approvers = std::collections::HashMap::new();
    for (_, department) in ITEMS {
        windows.insert(department, token(&format!("load-window-{department}"), "window", department)?);
        approvers.insert(department, token(&format!("load-approver-{department}"), "approver", department)?);
    }
    let centre = token("load-window-centre", "window", "310101-ZWZX")?;
    let flow = Arc::new(Flow { windows, approvers, centre });
    let inbox_window = token("load-inbox", "window", "B-D1")?;
    #[derive(sea_orm::FromQueryResult)]
    struct Id {
        instance_id: String,
    }
    let detail_ids: Vec<String> = store::fetch::<Id>(db, "SELECT instance_id FROM cases WHERE department = 'B-D1' ORDER BY created_at DESC LIMIT 1000", vec![])
        .await?
        .into_iter()
        .map(|i| i.instance_id)
        .collect();
    anyhow::ensure!(!detail_ids.is_empty(), "no background cases to read");

    let data = std::env::temp_dir().join(format!("pledgeflow-load-{}", std::process::id()));
    std::fs::create_dir_all(&data)?;
    let server = Arc::new(Server::start(config, &data).await?);

    println!(
        "flows: openCase → issueLicence on the spot, in turn food / hygiene / road freight at their departments; every {BUNDLE_EVERY}th a bundle of food and hygiene opened at the service centre, each child licensed by its department"
    );
    for &clients in &opts.clients {
        let next = Arc::new(AtomicUsize::new(0));
        let licences = Arc::new(AtomicUsize::new(0));
        let events_before = store::count(db, "SELECT COUNT(*) AS n FROM workflow_events", vec![]).await?;
        let started = Instant::now();
        let workers: Vec<_> = (0..clients)
            .map(|_| {
                let (server, next, licences, flow, flows) = (server.clone(), next.clone(), licences.clone(), flow.clone(), opts.flows);
                tokio::spawn(async move {
                    loop {
                        let n = next.fetch_add(1, Ordering::SeqCst);
                        if n >= flows {
                            return anyhow::Ok(());
                        }
                        licences.fetch_add(flow.run(&server, n).await?, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for w in workers {
            w.await??;
        }
        let secs = started.elapsed().as_secs_f64();
        let events = store::count(db, "SELECT COUNT(*) AS n FROM workflow_events", vec![]).await? - events_before;
        let licences = licences.load(Ordering::SeqCst);
        println!(
            "intake to licence, {clients} clients: {} flows ({licences} licences) in {secs:.1}s — {:.0} flows/s, {:.0} licences/s, {:.0} transitions/s (audit events written meanwhile)",
            opts.flows,
            opts.flows as f64 / secs,
            licences as f64 / secs,
            events as f64 / secs
        );
    }

    // Writers through the latency phase, numbered after the flows above so the mix goes on.
    let writing = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let written = Arc::new(AtomicUsize::new(0));
    let writers: Vec<_> = (0..opts.write_clients)
        .map(|_| {
            let (server, flow, writing, written) = (server.clone(), flow.clone(), writing.clone(), written.clone());
            let next = Arc::new(AtomicUsize::new(0));
            tokio::spawn(async move {
                while writing.load(Ordering::SeqCst) {
                    let n = next.fetch_add(1, Ordering::SeqCst);
                    flow.run(&server, n).await?;
                    written.fetch_add(1, Ordering::SeqCst);
                }
                anyhow::Ok(())
            })
        })
        .collect();
    let year = json!({"f": {"from": (now - chrono::Duration::days(366)).to_rfc3339(), "to": (now + chrono::Duration::days(1)).to_rfc3339()}});
    let reading = Instant::now();
    // Open loop at a fixed rate: every tick sends the next request, the three queries in turn.
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(opts.rate.max(1))));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let total = u64::from(opts.rate) * opts.seconds;
    let mut pending = Vec::with_capacity(total as usize);
    for n in 0..total {
        tick.tick().await;
        let server = server.clone();
        let (query, vars) = match n % 3 {
            0 => (INBOX, json!({})),
            // A background case of B-D1, read by that department's window.
            1 => (DETAIL, json!({"id": detail_ids[(n as usize / 3) % detail_ids.len()]})),
            _ => (STATISTICS, year.clone()),
        };
        let token = inbox_window.clone();
        pending.push(tokio::spawn(async move {
            let t = Instant::now();
            let r = server.call(&token, query, vars).await;
            (n % 3, t.elapsed().as_secs_f64() * 1e3, r.is_ok())
        }));
    }
    let mut latencies = [Vec::new(), Vec::new(), Vec::new()];
    let mut failed = 0;
    for p in pending {
        let (kind, ms, ok) = p.await?;
        if !ok {
            failed += 1;
        }
        latencies[kind as usize].push(ms);
    }
    writing.store(false, Ordering::SeqCst);
    let read_for = reading.elapsed().as_secs_f64();
    for w in writers {
        w.await??;
    }
    if opts.write_clients > 0 {
        let flows = written.load(Ordering::SeqCst);
        println!("meanwhile {} clients ran {flows} flows ({:.0} flows/s)", opts.write_clients, flows as f64 / read_for);
    }
    let [inbox, detail, statistics] = &mut latencies;
    for (name, v) in [
        ("window inbox (20 of B-D1's waiting deferrals, with totalCount)", inbox),
        ("case detail (history, timers)", detail),
        ("statistics (B-D1, the past year)", statistics),
    ] {
        v.sort_by(f64::total_cmp);
        println!(
            "{name} at {} req/s (the three queries together) for {}s: p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms over {} requests",
            opts.rate,
            opts.seconds,
            percentile(v, 0.5),
            percentile(v, 0.95),
            percentile(v, 0.99),
            v.len()
        );
    }
    anyhow::ensure!(failed == 0, "{failed} requests failed in the latency phase");
    match server.peak_memory_mib() {
        Some(mib) => println!("server peak memory (VmHWM): {mib:.0} MiB"),
        None => println!("server peak memory: not readable"),
    }
    Ok(())
}
