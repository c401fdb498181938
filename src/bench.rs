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

/// Fixture rows for the timer benchmark: instances of material-deferral waiting for their
/// materials, each with its reminder timer due at `due_at`. Written in bulk, not through the
/// engine (it measures the sweep, not the intake), so these instances carry no audit events.
async fn insert_waiting_instances(engine: &Engine, count: usize, due_at: chrono::DateTime<chrono::Utc>) -> anyhow::Result<()> {
    use crate::store::entities::{instance, timer};
    use sea_orm::{ActiveValue::Set, EntityTrait};
    let def = engine.workflows.set.latest("material-deferral").ok_or_else(|| anyhow::anyhow!("material-deferral not deployed"))?;
    let now_ms = engine.now().timestamp_millis();
    let deadlines = serde_json::to_string(&BTreeMap::from([("materials_due", due_at + Duration::days(1))]))?;
    const CHUNK: usize = 500;
    let mut done = 0;
    while done < count {
        let n = CHUNK.min(count - done);
        let ids: Vec<String> = (0..n).map(|_| uuid::Uuid::now_v7().to_string()).collect();
        let txn = store::begin_write(&engine.db).await?;
        instance::Entity::insert_many(ids.iter().map(|id| instance::ActiveModel {
            id: Set(id.clone()),
            definition_name: Set(def.name.clone()),
            definition_version: Set(def.version),
            state: Set("awaiting_materials".into()),
            version: Set(1),
            context: Set("{}".into()),
            deadlines: Set(deadlines.clone()),
            parent_id: Set(None),
            last_event_hash: Set(store::audit::GENESIS.into()),
            created_at: Set(now_ms),
            updated_at: Set(now_ms),
            region: Set(None),
            department: Set(None),
            division: Set(None),
            applicant_uscc: Set(None),
        }))
        .exec_without_returning(&txn)
        .await?;
        timer::Entity::insert_many(ids.iter().map(|id| timer::ActiveModel {
            id: Set(uuid::Uuid::now_v7().to_string()),
            instance_id: Set(id.clone()),
            state: Set("awaiting_materials".into()),
            name: Set("reminder".into()),
            event: Set("remind".into()),
            due_at: Set(due_at.timestamp_millis()),
            status: Set("pending".into()),
            armed_seq: Set(1),
            claimed_by: Set(None),
            claimed_until: Set(None),
            settled_at: Set(None),
            last_error: Set(None),
            provisional: Set(0),
        }))
        .exec_without_returning(&txn)
        .await?;
        txn.commit().await?;
        done += n;
    }
    Ok(())
}

async fn timed_sweep(engine: &Engine) -> anyhow::Result<(f64, usize)> {
    let started = Instant::now();
    let report = engine.sweep("bench").await?;
    Ok((started.elapsed().as_secs_f64(), report.fired))
}

/// Empty sweeps at 0 and at `pending` future timers, then firing `due` due timers among them.
pub async fn run_timers(engine: Engine, pending: usize, due: usize) -> anyhow::Result<()> {
    println!("backend: {:?}", engine.db.get_database_backend());
    let (secs, _) = timed_sweep(&engine).await?;
    println!("empty sweep, 0 pending timers: {:.3} ms", secs * 1e3);
    let started = Instant::now();
    insert_waiting_instances(&engine, pending, engine.now() + Duration::days(30)).await?;
    println!("fixture: {pending} future timers inserted in {:.1}s", started.elapsed().as_secs_f64());
    let mut best = f64::MAX;
    for _ in 0..5 {
        best = best.min(timed_sweep(&engine).await?.0);
    }
    println!("empty sweep, {pending} pending timers: {:.3} ms (best of 5)", best * 1e3);
    insert_waiting_instances(&engine, due, engine.now() - Duration::minutes(1)).await?;
    let (secs, fired) = timed_sweep(&engine).await?;
    println!(
        "fired {fired} due timers with {pending} pending in {secs:.1}s: {:.0} timers/s",
        fired as f64 / secs
    );
    Ok(())
}
