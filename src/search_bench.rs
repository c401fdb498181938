//! Search and the enterprise file over the bench's cases (issue #19): a search by unified social
//! credit code, by a two-character fragment of the name, and `enterprise(uscc)` for an
//! enterprise with hundreds of cases — each asked of the GraphQL schema in process (no HTTP), and
//! beside it the very statements it ran, recorded on the way (`set_metric_callback`) and run
//! again on their own: the raw SQL's time, and how many statements a request takes.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use sea_orm::{ConnectionTrait, Statement};
use serde_json::{json, Value};

use crate::auth::Claims;
use crate::config::Config;
use crate::runtime::Engine;

pub struct SearchOptions {
    pub cases: usize,
    pub runs: usize,
}

/// p50, p95, p99 of `samples` (seconds), in ms.
fn percentiles(mut samples: Vec<f64>) -> (f64, f64, f64) {
    samples.sort_by(f64::total_cmp);
    let at = |p: f64| samples[((samples.len() as f64 * p).ceil() as usize).clamp(1, samples.len()) - 1] * 1e3;
    (at(0.50), at(0.95), at(0.99))
}

fn staff(sub: &str, role: &str, department: Option<&str>) -> Claims {
    let mut c = Claims::new(sub, vec![role.to_string()], chrono::Utc::now(), chrono::Duration::hours(1));
    c.region = Some("B".into());
    c.department = department.map(str::to_string);
    c
}

pub async fn run(engine: Engine, config: &Config, opts: SearchOptions) -> anyhow::Result<()> {
    println!("backend: {:?}", engine.db.get_database_backend());
    crate::bench::ensure_bench_cases(&engine, opts.cases).await?;
    let recorded: Arc<Mutex<Vec<Statement>>> = Arc::default();
    let mut db = crate::store::connect(&config.database_url, 4).await?;
    let sink = recorded.clone();
    db.set_metric_callback(move |info| {
        if let Ok(mut all) = sink.lock() {
            all.push(info.statement.clone());
        }
    });
    let recording = Engine { db, ..engine.clone() };
    let channels = crate::delivery::Channels::from_config(config, &engine.workflows.set)?;
    let outbox = crate::delivery::Outbox::new(recording.clone(), Arc::new(channels), config);
    let services = crate::api::Services {
        engine: recording.clone(),
        outbox,
        manual_clock: None,
        wake: Arc::default(),
        worker: "bench-search".into(),
        keys: crate::auth::Keys::hs256(b"bench-search-key-not-for-tokens!"),
        live_poll: std::time::Duration::from_secs(1),
        loops: Default::default(),
        sampling: Default::default(),
        metrics: None,
        reads: None,
        public_limiter: Arc::new(crate::api::public::PublicLimiter::per_minute(std::num::NonZeroU32::new(1_000_000).unwrap_or(std::num::NonZeroU32::MIN))),
    };
    let schema = crate::api::schema(Some(services));

    // An enterprise of the spread (not one of the five largest) with the most cases.
    #[derive(sea_orm::FromQueryResult)]
    struct Top {
        applicant_uscc: String,
        n: i64,
    }
    let large: Vec<String> = (0..crate::bench::LARGE_APPLICANTS).map(crate::bench::bench_uscc).collect();
    let top: Vec<Top> = crate::store::fetch(
        &engine.db,
        &format!(
            "SELECT applicant_uscc, COUNT(*) AS n FROM cases WHERE department LIKE 'B-D%' AND applicant_uscc NOT IN ({}) GROUP BY applicant_uscc ORDER BY n DESC LIMIT 1",
            vec!["?"; large.len()].join(", ")
        ),
        large.into_iter().map(Into::into).collect(),
    )
    .await?;
    let Some(top) = top.into_iter().next() else { anyhow::bail!("no bench cases") };
    println!("enterprise: {} with {} cases", top.applicant_uscc, top.n);
    let fragment = "餐饮";
    let matching = crate::store::count(&engine.db, "SELECT COUNT(*) AS n FROM applicants WHERE name LIKE ?", vec![format!("%{fragment}%").into()]).await?;
    println!("fragment {fragment:?}: {matching} enterprises' names hold it");

    let window = staff("bench-window", "window", Some("B-D1"));
    let supervisor = staff("bench-supervisor", "supervisor", None);
    let search = "query($f: WorkflowInstanceFilter) { workflowInstances(filter: $f, first: 20) { totalCount nodes { id definitionName state createdAt } } }";
    let file = "query($u: String!) { enterprise(uscc: $u) { uscc name registration { creditTier dishonest }
        cases(first: 20) { totalCount nodes { id mode state licenceNumber instance { deadlines { name at } } } }
        licences { licenceNumber standing validUntil }
        supervisionTasks(first: 20) { totalCount nodes { caseId state findings } }
        creditRecords { kind createdAt } returns { category returnedAt } bundles(first: 5) { totalCount nodes { id } } } }";
    let probes: [(&str, &Claims, &str, Value); 3] = [
        ("search by code (window of one department)", &window, search, json!({"f": {"applicantUscc": top.applicant_uscc}})),
        ("search by a 2-character name fragment (window of one department)", &window, search, json!({"f": {"applicantName": fragment}})),
        ("enterprise(uscc), the regional supervisor", &supervisor, file, json!({"u": top.applicant_uscc})),
    ];
    for (label, who, doc, vars) in probes {
        let request = || {
            async_graphql::Request::new(doc)
                .variables(async_graphql::Variables::from_json(vars.clone()))
                .data(crate::api::access::Caller(Ok(Some(who.clone()))))
                .data(crate::api::loaders::Loaders::new(&recording.db))
        };
        let mut api = Vec::new();
        let mut statements = Vec::new();
        for i in 0..opts.runs + 5 {
            recorded.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.clear();
            let t = Instant::now();
            let r = schema.execute(request()).await;
            let took = t.elapsed().as_secs_f64();
            if !r.errors.is_empty() {
                anyhow::bail!("{label}: {:?}", r.errors);
            }
            if i == 0 {
                let data = r.data.into_json()?;
                println!("{label}: answered {}", summary(&data));
            }
            // The first runs warm the caches, as a server in service has them.
            if i >= 5 {
                api.push(took);
            }
            statements = recorded.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.clone();
        }
        let mut raw = Vec::new();
        for i in 0..opts.runs + 5 {
            let t = Instant::now();
            for s in &statements {
                engine.db.query_all_raw(s.clone()).await?;
            }
            if i >= 5 {
                raw.push(t.elapsed().as_secs_f64());
            }
        }
        let (a50, a95, a99) = percentiles(api);
        let (r50, r95, r99) = percentiles(raw);
        println!(
            "{label}: {} statements; API p50 {a50:.2} / p95 {a95:.2} / p99 {a99:.2} ms; raw SQL p50 {r50:.2} / p95 {r95:.2} / p99 {r99:.2} ms; p99 ratio {:.2}",
            statements.len(),
            a99 / r99
        );
        for s in &statements {
            println!("    {}", s.sql.split_whitespace().collect::<Vec<_>>().join(" "));
        }
    }
    Ok(())
}

/// Totals and list lengths of an answer, to show what was measured.
fn summary(data: &Value) -> String {
    let mut out = Vec::new();
    let mut walk = vec![("", data)];
    while let Some((path, v)) = walk.pop() {
        match v {
            Value::Object(map) => {
                for (k, x) in map {
                    if k == "totalCount" {
                        out.push(format!("{path}.totalCount={x}"));
                    }
                    walk.push((k.as_str(), x));
                }
            }
            Value::Array(list) => out.push(format!("{path}[{}]", list.len())),
            _ => {}
        }
    }
    out.sort();
    out.join(", ")
}
