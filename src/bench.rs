//! `pledgeflow bench`: transitions per second through the engine, beside the same database's
//! plain single-row commit rate measured in the same run, so that the engine's cost is read
//! against what the database can do at all.

use std::{collections::BTreeMap, sync::Arc, time::Instant};

use chrono::Duration;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use serde_json::json;

use crate::runtime::Engine;
use crate::store;
use crate::store::timers::Shape;
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

/// The settings row that marks a database as a bench's own: seeded by a bench, so another bench
/// may reuse its fixtures (the million-case ones take long to build).
const BENCH_MARK: &str = "bench_fixtures";

/// Takes the database for a bench: refused when it holds instances no bench seeded (a real
/// installation's, a demo's), unless `force`; then marked, so later benches reuse it.
pub async fn claim_database(db: &DatabaseConnection, force: bool) -> anyhow::Result<()> {
    let marked = store::count(db, "SELECT COUNT(*) AS n FROM settings WHERE key = ?", vec![BENCH_MARK.into()]).await? > 0;
    let instances = store::count(db, "SELECT COUNT(*) AS n FROM workflow_instances", vec![]).await?;
    if instances > 0 && !marked && !force {
        anyhow::bail!(
            "this database holds {instances} workflow instance(s) no bench seeded: a bench fills the database it is given, so point \
             PLEDGEFLOW_DATABASE_URL at a scratch database (or pass --force to run on this one anyway)"
        );
    }
    if !marked {
        db.execute_raw(store::stmt(db, "INSERT INTO settings (key, value, created_at) VALUES (?, ?, ?)", vec![BENCH_MARK.into(), "seeded by a bench".into(), chrono::Utc::now().timestamp_millis().into()]))
            .await?;
    }
    Ok(())
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
/// materials, each with its timer for `event` (`remind` or `expire`) due at `due_at`. Written in
/// bulk, not through the engine (it measures the sweep, not the intake), so these instances
/// carry no audit events.
async fn insert_waiting_instances(engine: &Engine, count: usize, due_at: chrono::DateTime<chrono::Utc>, event: &str) -> anyhow::Result<()> {
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
            name: Set(if event == "remind" { "reminder" } else { "expiry" }.into()),
            event: Set(event.into()),
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

/// CPU seconds this process has used, and the machine's busy and total jiffies: where a timed
/// stretch spent its time — in this process, or elsewhere on the machine (the database).
struct CpuMark {
    process: f64,
    machine: Option<(u64, u64)>,
}

impl CpuMark {
    fn now() -> Self {
        let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
        // SAFETY: getrusage writes the struct it is given; RUSAGE_SELF cannot fail.
        let usage = unsafe {
            libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
            usage.assume_init()
        };
        let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        let machine = std::fs::read_to_string("/proc/stat").ok().and_then(|s| {
            let fields: Vec<u64> = s.lines().next()?.split_whitespace().skip(1).filter_map(|f| f.parse().ok()).collect();
            let idle = fields.get(3)? + fields.get(4).copied().unwrap_or(0);
            Some((fields.iter().sum::<u64>() - idle, fields.iter().sum::<u64>()))
        });
        CpuMark { process: secs(usage.ru_utime) + secs(usage.ru_stime), machine }
    }

    /// "this process X s of CPU (Y % of one core), the machine Z % busy".
    fn since(&self, wall: f64) -> String {
        let later = CpuMark::now();
        let process = later.process - self.process;
        let machine = match (self.machine, later.machine) {
            (Some((b0, t0)), Some((b1, t1))) if t1 > t0 => format!(", the machine {:.0} % busy (all cores)", (b1 - b0) as f64 * 100.0 / (t1 - t0) as f64),
            _ => String::new(),
        };
        format!("this process {process:.1} s of CPU ({:.0} % of one core){machine}", process * 100.0 / wall)
    }
}

async fn timed_sweep(engine: &Engine, shape: Shape) -> anyhow::Result<(f64, usize)> {
    let started = Instant::now();
    let report = engine.sweep_shaped("bench", shape).await?;
    Ok((started.elapsed().as_secs_f64(), report.fired))
}

/// Empty sweeps at 0 and at `pending` future timers, then firing `due` due timers among them.
pub async fn run_timers(engine: Engine, pending: usize, due: usize, event: &str, shape: Shape) -> anyhow::Result<()> {
    println!("backend: {:?}, {} batches at once of up to {} timers", engine.db.get_database_backend(), shape.tasks, shape.batch);
    let (secs, _) = timed_sweep(&engine, shape).await?;
    println!("empty sweep, 0 pending timers: {:.3} ms", secs * 1e3);
    let started = Instant::now();
    insert_waiting_instances(&engine, pending, engine.now() + Duration::days(30), "remind").await?;
    println!("fixture: {pending} future timers inserted in {:.1}s", started.elapsed().as_secs_f64());
    let mut best = f64::MAX;
    for _ in 0..5 {
        best = best.min(timed_sweep(&engine, shape).await?.0);
    }
    println!("empty sweep, {pending} pending timers: {:.3} ms (best of 5)", best * 1e3);
    insert_waiting_instances(&engine, due, engine.now() - Duration::minutes(1), event).await?;
    // Statistics as autovacuum keeps them for tables that grew by this much over days, not the
    // minute the fixture took: planned on the empty tables' figures, a batch looked for an
    // expired instance's other pending timers through every pending timer.
    if engine.db.get_database_backend() == sea_orm::DbBackend::Postgres {
        engine.db.execute_unprepared("ANALYZE").await?;
    }
    // Where pg_stat_statements is installed (tools/peer-bench/profile.sh), it counts the timed
    // sweep alone.
    if engine.db.get_database_backend() == sea_orm::DbBackend::Postgres && engine.db.execute_unprepared("SELECT pg_stat_statements_reset()").await.is_ok() {
        println!("pg_stat_statements reset: it counts the timed sweep alone");
    }
    let cpu = CpuMark::now();
    let (secs, fired) = timed_sweep(&engine, shape).await?;
    println!(
        "fired {fired} due {event} timers with {pending} pending in {secs:.1}s: {:.0} timers/s; {}",
        fired as f64 / secs,
        cpu.since(secs)
    );
    Ok(())
}

/// `pledgeflow bench-stats`: fills the database with `cases` cases of one region — a year of
/// intake across four departments, every mode and end, their events and supervision tasks —
/// then times each statistics figure over all of them (best of three).
pub async fn run_stats(engine: Engine, cases: usize) -> anyhow::Result<()> {
    use crate::insight::{self, Period, Scope};
    println!("backend: {:?}", engine.db.get_database_backend());
    let db = &engine.db;
    let tz = engine.workflows.env.tz;
    let (from, to) = ensure_bench_cases(&engine, cases).await?;
    let departments: Vec<String> = (1..=4).map(|d| format!("B-D{d}")).collect();
    let region = Scope { departments: departments.clone(), item: None, from, to };
    let one_department = Scope { departments: vec!["B-D1".into()], item: None, from, to };
    for (label, scope) in [("region, all cases", &region), ("one department", &one_department)] {
        let mut total = 0.0;
        let mut figures = Vec::new();
        macro_rules! time {
            ($name:literal, $e:expr) => {{
                let mut best = f64::MAX;
                for _ in 0..3 {
                    let t = Instant::now();
                    let _ = $e.await?;
                    best = best.min(t.elapsed().as_secs_f64());
                }
                total += best;
                figures.push(format!("{} {:.0} ms", $name, best * 1e3));
            }};
        }
        time!("by mode and state", insight::by_mode_and_state(db, scope, tz));
        time!("deferrals", insight::deferrals(db, scope, tz));
        time!("revocations", insight::revocations(db, scope, tz));
        time!("rectifications", insight::rectifications(db, scope, tz));
        time!("divisions", insight::divisions(db, scope, tz));
        time!("to licence", insight::to_licence(db, scope, tz));
        time!("returns", insight::returns(db, scope, tz));
        time!("monthly series", insight::series(db, scope, Period::Month, tz));
        println!("statistics over {label}: {:.0} ms in all — {}", total * 1e3, figures.join(", "));
        // The same figures counted from the source tables alone, as before the rollup (once).
        let t = Instant::now();
        insight::exact(db, scope, tz, &store::rollup::facts(tz).iter().flat_map(|f| f.metrics.iter().copied()).collect::<Vec<_>>(), false).await?;
        println!("without the rollup, every figure over {label}: {:.0} ms", t.elapsed().as_secs_f64() * 1e3);
    }
    Ok(())
}

/// The bench fixture in the database: `cases` cases seeded unless an earlier run left them
/// (seeding a million takes minutes), their statistics counted, the planner's statistics
/// refreshed as after any bulk load. Returns a range covering them.
pub(crate) async fn ensure_bench_cases(engine: &Engine, cases: usize) -> anyhow::Result<(chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>)> {
    let db = &engine.db;
    let tz = engine.workflows.env.tz;
    let started = Instant::now();
    let existing = store::count(db, "SELECT COUNT(*) AS n FROM cases WHERE department LIKE 'B-D%'", vec![]).await?;
    let range = if existing > 0 {
        println!("fixture: reusing the {existing} bench cases already in the database");
        (engine.now() - Duration::days(400), engine.now() + Duration::days(1))
    } else {
        let range = seed_cases(engine, cases).await?;
        println!("fixture: {cases} cases with their events, timers and tasks in {:.1}s", started.elapsed().as_secs_f64());
        range
    };
    // The fixture is written around the transitions, so its running counts are recounted.
    if existing == 0 || store::count(db, "SELECT COUNT(*) AS n FROM statistics_rollup WHERE department LIKE 'B-D%'", vec![]).await? == 0 {
        let t = Instant::now();
        let txn = store::begin_write(db).await?;
        store::rollup::rebuild(&txn, tz).await?;
        txn.commit().await?;
        println!("rollup: recounted from the cases, events and tasks in {:.1}s", t.elapsed().as_secs_f64());
    }
    // A database in service has been vacuumed by autovacuum; a bulk-loaded one not yet, and
    // without a visibility map PostgreSQL's counts visit every row (the inbox's totalCount took
    // 120 ms instead of 9 at 1 M cases).
    let maintain = if db.get_database_backend() == sea_orm::DbBackend::Postgres { "VACUUM (ANALYZE)" } else { "ANALYZE" };
    db.execute_unprepared(maintain).await?;
    let rollup_rows = store::count(db, "SELECT COUNT(*) AS n FROM statistics_rollup", vec![]).await?;
    println!("rollup: {rollup_rows} rows");
    Ok(range)
}

/// The bench's enterprises.
const APPLICANTS: usize = 1000;

/// A varied, realistic enterprise name for bench applicant `a` (a place, a brand, a trade and a
/// legal form), so that a name fragment matches some enterprises and not all.
fn enterprise_name(a: usize) -> String {
    const PLACES: [&str; 12] = ["上海", "黄浦", "浦东", "杭州", "苏州", "南京", "宁波", "无锡", "嘉兴", "合肥", "福州", "厦门"];
    const BRANDS: [&str; 16] = ["鑫源", "华信", "恒泰", "金桥", "瑞丰", "永盛", "同德", "宏达", "新天地", "百川", "汇通", "嘉禾", "东方", "锦江", "长城", "云海"];
    const TRADES: [&str; 10] = ["餐饮管理", "食品", "商贸", "货运", "大药房", "浴室管理", "便利店", "科技", "建筑工程", "物业管理"];
    const FORMS: [&str; 3] = ["有限公司", "股份有限公司", "有限责任公司"];
    let pick = |n: usize, by: usize| (a.wrapping_mul(by) >> 3) % n;
    format!("{}{}{}{}", PLACES[pick(PLACES.len(), 7919)], BRANDS[pick(BRANDS.len(), 104_729)], TRADES[pick(TRADES.len(), 1_299_709)], FORMS[pick(FORMS.len(), 15_485_863)])
}

/// Bench applicant `a`'s unified social credit code: a valid one (check characters and all) of a
/// division no real enterprise has, so the API takes it like any other.
pub(crate) fn bench_uscc(a: usize) -> String {
    crate::domain::ids::new_uscc("319900", a as u64).unwrap_or_default()
}

/// The five large enterprises of `applicant_of`.
pub(crate) const LARGE_APPLICANTS: usize = 5;

/// The applicant of bench case `i`: skewed as a service centre's are — one case in five belongs
/// to one of five large enterprises (hundreds of cases each at any sizeable count), the rest spread.
fn applicant_of(i: usize) -> usize {
    if i % 5 == 0 { (i / 5) % LARGE_APPLICANTS } else { LARGE_APPLICANTS + (i.wrapping_mul(2_654_435_761) >> 7) % (APPLICANTS - LARGE_APPLICANTS) }
}

/// The bench's cases: ids in one order, spread evenly over the year before now.
async fn seed_cases(engine: &Engine, count: usize) -> anyhow::Result<(chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>)> {
    use crate::store::entities::{event, instance, timer};
    use crate::window::{catalogue, registry};
    use sea_orm::{ActiveValue::Set, EntityTrait};
    let db = &engine.db;
    let now = engine.now();
    let year_ago = now - Duration::days(365);
    registry::put_region(db, "B", "基准区").await?;
    for d in 1..=4 {
        let code = format!("B-D{d}");
        registry::put_department(db, &code, "B", &format!("基准部门{d}"), "approval", None).await?;
        registry::put_division(db, &format!("{code}-SP"), &code, "监管科", None).await?;
        let spec: catalogue::ItemSpec = serde_json::from_value(json!({
            "legal_basis": "基准", "reform_mode": "实行告知承诺", "conditions": ["条件一", "条件二"],
            "materials": [{"code": "M1", "name": "材料"}], "modes": {"deferral_max_working_days": 20, "verification": true, "after_the_fact": true},
            "commitment_template": "承诺", "commitment_version": 1, "breach_consequences": "撤销", "supervision": null, "licence_pattern": "B{seq}"}))?;
        catalogue::put(db, &format!("B-ITEM-{d}"), "基准事项", &code, false, &spec, "bench", now).await?;
    }
    for a in 0..APPLICANTS {
        let applicant = registry::Applicant { uscc: bench_uscc(a), name: enterprise_name(a), legal_representative: "代表".into(), email: None, mobile: None, credit_tier: "B".into(), dishonest: 0 };
        registry::put_applicant(db, &engine.workflows.audit, &applicant, now).await?;
    }
    let def = |name: &str| engine.workflows.set.latest(name).map(|d| (d.name.clone(), d.version)).ok_or_else(|| anyhow::anyhow!("{name} not deployed"));
    let defs = [def("material-deferral")?, def("material-verification")?, def("after-the-fact-review")?];
    let task_def = def("supervision-task")?;
    // Per mode, the state a case is in by its number: most licensed or closed, some revoked, refused, withdrawn, in progress.
    const STATES: [[&str; 10]; 3] = [
        ["awaiting_materials", "under_review", "licensed", "licensed", "closed", "closed", "closed", "revoked", "withdrawn", "refused"],
        ["under_review", "licensed", "licensed", "licensed", "closed", "closed", "closed", "closed", "revoked", "refused"],
        ["licensed", "licensed", "licensed", "closed", "closed", "closed", "closed", "closed", "closed", "revoked"],
    ];
    const MODES: [&str; 3] = ["deferral", "verification", "after_the_fact"];
    let span = (now - year_ago).num_milliseconds();
    let hash = "0".repeat(64);
    const CHUNK: usize = 200;
    let mut done = 0;
    while done < count {
        let n = CHUNK.min(count - done);
        let txn = store::begin_write(db).await?;
        let mut instances = Vec::new();
        let mut events = Vec::new();
        let mut case_rows = Vec::new();
        let mut timers = Vec::new();
        for i in done..done + n {
            let (mode, state) = (i % 3, STATES[i % 3][(i / 3) % 10]);
            let created = year_ago.timestamp_millis() + (span / count as i64) * i as i64;
            let id = uuid::Uuid::now_v7().to_string();
            let department = format!("B-D{}", i % 4 + 1);
            let instance = |id: &str, def: &(String, i64), state: &str, parent: Option<String>, division: Option<String>| instance::ActiveModel {
                id: Set(id.to_string()),
                definition_name: Set(def.0.clone()),
                definition_version: Set(def.1),
                state: Set(state.into()),
                version: Set(2),
                context: Set("{}".into()),
                deadlines: Set("{}".into()),
                parent_id: Set(parent),
                last_event_hash: Set(hash.clone()),
                created_at: Set(created),
                updated_at: Set(created),
                region: Set(Some("B".into())),
                department: Set(Some(department.clone())),
                division: Set(division),
                applicant_uscc: Set(Some(bench_uscc(applicant_of(i)))),
            };
            instances.push(instance(&id, &defs[mode], state, None, None));
            // The limits still running, all ahead (a server started on the fixture has nothing due).
            let ahead = now.timestamp_millis() + 86_400_000 * (1 + (i % 60) as i64);
            let pending = |instance_id: &str, state: &str, name: &str, event: &str| timer::ActiveModel {
                id: Set(uuid::Uuid::now_v7().to_string()),
                instance_id: Set(instance_id.to_string()),
                state: Set(state.into()),
                name: Set(name.into()),
                event: Set(event.into()),
                due_at: Set(ahead),
                status: Set("pending".into()),
                armed_seq: Set(2),
                claimed_by: Set(None),
                claimed_until: Set(None),
                settled_at: Set(None),
                last_error: Set(None),
                provisional: Set(0),
            };
            match state {
                "awaiting_materials" => timers.extend([pending(&id, state, "reminder", "remind"), pending(&id, state, "expiry", "expire")]),
                "under_review" => timers.push(pending(&id, state, "decision_limit", "decision_overdue")),
                _ => {}
            }
            let ev = |instance_id: &str, seq: i64, name: &str, to: &str| event::ActiveModel {
                instance_id: Set(instance_id.to_string()),
                seq: Set(seq),
                event: Set(name.into()),
                from_state: Set(Some("x".into())),
                to_state: Set(to.into()),
                actor: Set("{}".into()),
                payload: Set("{}".into()),
                occurred_at: Set(created + 86_400_000),
                prev_hash: Set(hash.clone()),
                hash: Set(hash.clone()),
                actor_subject: Set(Some("bench".into())),
                // Stand-ins for the statistics, not a trail: nothing verifies them.
                scheme: Set(store::audit::SHA256.into()),
            };
            let licensed = matches!(state, "licensed" | "closed") || (state == "revoked" && i % 2 == 0 && mode != 0);
            if mode == 0 && state != "awaiting_materials" && state != "withdrawn" {
                events.push(ev(&id, 2, if state == "revoked" { "expire" } else { "materials_complete" }, state));
            } else if state == "revoked" {
                events.push(ev(&id, 2, "revocation_decided", "revoked"));
            }
            if licensed {
                let task = uuid::Uuid::now_v7().to_string();
                let task_state = if state == "closed" { "closed_kept" } else { "notified" };
                instances.push(instance(&task, &task_def, task_state, Some(id.clone()), Some(format!("{department}-SP"))));
                if task_state == "notified" {
                    timers.push(pending(&task, task_state, "look_at_limit", "look_at_overdue"));
                }
                if state == "closed" {
                    events.push(ev(&task, 2, "accept", "inspecting"));
                }
            }
            let days = (i % 7) as i64;
            case_rows.push((id, mode, department, created, licensed.then_some((created + days * 86_400_000, days))));
        }
        instance::Entity::insert_many(instances).exec_without_returning(&txn).await?;
        if !events.is_empty() {
            event::Entity::insert_many(events).exec_without_returning(&txn).await?;
        }
        if !timers.is_empty() {
            timer::Entity::insert_many(timers).exec_without_returning(&txn).await?;
        }
        let mut sql = String::from(
            "INSERT INTO cases (instance_id, item_code, item_version, applicant_uscc, mode, department, opened_by, credit_tier, dishonest, licensed_at, licence_working_days, licence_number, created_at) VALUES ",
        );
        let mut values: Vec<sea_orm::Value> = Vec::new();
        for (k, (id, mode, department, created, licence)) in case_rows.into_iter().enumerate() {
            sql.push_str(if k == 0 { "(?, ?, 1, ?, ?, ?, 'bench', 'B', 0, ?, ?, ?, ?)" } else { ", (?, ?, 1, ?, ?, ?, 'bench', 'B', 0, ?, ?, ?, ?)" });
            let item = format!("B-ITEM-{}", &department[3..]);
            values.extend([
                id.into(),
                item.into(),
                bench_uscc(applicant_of(done + k)).into(),
                MODES[mode].into(),
                department.into(),
                licence.map(|l| l.0).into(),
                licence.map(|l| l.1).into(),
                licence.map(|_| format!("B{:09}", done + k)).into(),
                created.into(),
            ]);
        }
        txn.execute_raw(store::stmt(&txn, &sql, values)).await?;
        txn.commit().await?;
        done += n;
    }
    Ok((year_ago, now + Duration::days(1)))
}

#[cfg(test)]
mod names_tests {
    use super::*;

    #[test]
    fn bench_enterprises_have_varied_names_and_a_few_hold_hundreds_of_cases() {
        let names: std::collections::BTreeSet<String> = (0..APPLICANTS).map(enterprise_name).collect();
        assert!(names.len() > APPLICANTS / 2, "{} distinct names", names.len());
        let catering = (0..APPLICANTS).filter(|a| enterprise_name(*a).contains("餐饮")).count();
        assert!(catering > 20 && catering < APPLICANTS / 4, "a fragment matches some, not all: {catering}");
        let mut counts = vec![0usize; APPLICANTS];
        for i in 0..1_000_000 {
            counts[applicant_of(i)] += 1;
        }
        assert!(counts[..5].iter().all(|n| *n >= 500), "the large enterprises: {:?}", &counts[..5]);
        assert!(counts[5..].iter().all(|n| *n > 0), "every other enterprise has cases");
    }
}
