//! `pledgeflow bench`: transitions per second through the engine, beside the same database's
//! plain single-row commit rate measured in the same run, so that the engine's cost is read
//! against what the database can do at all.

use std::{collections::BTreeMap, sync::Arc, time::Instant};

use chrono::Duration;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use serde_json::json;

use crate::runtime::Engine;
use crate::store;
use crate::workflow::Actor;

pub struct BenchOptions {
    /// Cases taken from intake to licence (4 audited transitions each, plus the supervision
    /// task spawned on approval).
    pub cases: usize,
    /// Single-row commits for the baseline; 0 skips it.
    pub plain_commits: usize,
    pub clients: Vec<usize>,
}

/// One case through material deferral: start, materials complete, approve (spawning its
/// supervision task). Returns the number of audit events written.
async fn one_case(engine: &Engine, n: usize) -> anyhow::Result<usize> {
    let window = Actor::person("bench-window", "window");
    let approver = Actor::person("bench-approver", "approver");
    let due = engine.now() + Duration::days(3);
    let ctx = json!({"bench": n, "materials": [{"code": "M1", "status": "deferred"}]});
    let case = engine.start("material-deferral", ctx, BTreeMap::from([("materials_due".into(), due)]), &window).await?;
    engine.fire(&case.id, "materials_complete", &window, &json!({"received": ["M1"]}), Some(1)).await?;
    let r = engine.fire(&case.id, "approve", &approver, &json!({"licence_number": format!("B{n}")}), Some(2)).await?;
    Ok(3 + r.spawned.len())
}

async fn plain_commits(db: &DatabaseConnection, n: usize) -> anyhow::Result<f64> {
    let backend = db.get_database_backend();
    db.execute_unprepared("DROP TABLE IF EXISTS bench_plain_commit").await?;
    db.execute_unprepared("CREATE TABLE bench_plain_commit (id BIGINT PRIMARY KEY, payload TEXT NOT NULL)").await?;
    let sql = match backend {
        DbBackend::Postgres => "INSERT INTO bench_plain_commit (id, payload) VALUES ($1, $2)",
        _ => "INSERT INTO bench_plain_commit (id, payload) VALUES (?, ?)",
    };
    let started = Instant::now();
    for i in 0..n {
        let txn = store::begin_write(db).await?;
        txn.execute_raw(Statement::from_sql_and_values(backend, sql, [(i as i64).into(), "x".repeat(200).into()])).await?;
        txn.commit().await?;
    }
    let rate = n as f64 / started.elapsed().as_secs_f64();
    db.execute_unprepared("DROP TABLE bench_plain_commit").await?;
    Ok(rate)
}

pub async fn run(engine: Engine, opts: BenchOptions) -> anyhow::Result<()> {
    let backend = format!("{:?}", engine.db.get_database_backend());
    println!("backend: {backend}");
    if opts.plain_commits > 0 {
        let rate = plain_commits(&engine.db, opts.plain_commits).await?;
        println!("plain single-row commits: {} in sequence, {rate:.0} commits/s", opts.plain_commits);
    }
    let engine = Arc::new(engine);
    for &clients in &opts.clients {
        let started = Instant::now();
        let per_client = opts.cases.div_ceil(clients.max(1));
        let mut tasks = Vec::new();
        for c in 0..clients.max(1) {
            let engine = engine.clone();
            tasks.push(tokio::spawn(async move {
                let mut events = 0;
                for i in 0..per_client {
                    events += one_case(&engine, c * per_client + i).await?;
                }
                anyhow::Ok(events)
            }));
        }
        let mut events = 0;
        for t in tasks {
            events += t.await??;
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "transitions: {clients} client(s), {} cases, {events} audited transitions in {secs:.2}s: {:.0} transitions/s",
            per_client * clients.max(1),
            events as f64 / secs
        );
    }
    Ok(())
}
