//! Due timers, fired by the sweep in batches: each batch takes its timers and their instances
//! into one transaction (locked on PostgreSQL, skipping whatever another transaction holds, so
//! several processes never fire the same timer and a killed one's locks go with its
//! connection), settles them and writes their events together. What a batch cannot take — a
//! timer whose event reaches other instances, or whose instance another transaction holds — is
//! claimed under a lease and fired on its own (a killed process's claims are retaken once the
//! lease runs out). Each instance's timers fire in due order.

use chrono::{DateTime, Duration, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, FromQueryResult, IdenStatic, Iterable, TransactionTrait};
use serde_json::json;

use super::entities::{instance, timer};
use super::instances::{self, timer_status, StoreError, Workflows};
use super::{begin_write, stmt};
use crate::workflow::Actor;

/// A claimed timer: the timer entity itself.
pub type DueTimer = super::entities::timer::Model;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepReport {
    pub fired: usize,
    /// Settled meanwhile by another process, or their instance had left the timer's state.
    pub stale: usize,
    /// Refused by the engine: kept as `failed` with the reason.
    pub failed: usize,
    /// Lost an optimistic-concurrency race: released, fired by a later sweep.
    pub retried: usize,
}

impl SweepReport {
    fn add(&mut self, other: SweepReport) {
        self.fired += other.fired;
        self.stale += other.stale;
        self.failed += other.failed;
        self.retried += other.retried;
    }

    fn count(&mut self, fired: Fired) {
        match fired {
            Fired::Fired => self.fired += 1,
            Fired::Stale => self.stale += 1,
            Fired::Failed => self.failed += 1,
            Fired::Retry => self.retried += 1,
        }
    }
}

/// Claims up to `limit` due, unclaimed (or lease-expired) timers for `worker`. Reads only due
/// rows through the partial index on pending `due_at`, so its cost follows the number due.
pub async fn claim_due(
    db: &DatabaseConnection,
    worker: &str,
    now: DateTime<Utc>,
    lease: Duration,
    limit: u64,
) -> Result<Vec<DueTimer>, DbErr> {
    let mut due: Vec<DueTimer> =
        super::claim_rows(db, "workflow_timers", "due_at", worker, now, lease, limit).await?;
    // RETURNING gives no order on PostgreSQL: fire in due order, so a reminder precedes its expiry.
    due.sort_by(|a, b| (a.due_at, &a.id).cmp(&(b.due_at, &b.id)));
    Ok(due)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fired {
    Fired,
    Stale,
    Failed,
    Retry,
}

/// Fires one claimed timer: settles the timer and records the event in one transaction, so
/// the event happens exactly once however often this is retried.
#[tracing::instrument(level = "debug", name = "timer", skip_all, fields(timer = %timer.id, event = %timer.event))]
pub async fn fire_claimed(
    db: &DatabaseConnection,
    wf: &Workflows,
    timer: &DueTimer,
    worker: &str,
    now: DateTime<Utc>,
) -> Result<Fired, StoreError> {
    let now_ms = now.timestamp_millis();
    let txn = begin_write(db).await?;
    // The instance first, then its timer: every other writer (an event from the API, another
    // process firing a sibling timer that leaves the state) locks the instance row before it
    // cancels the instance's timers, and the other order deadlocked against it on PostgreSQL
    // (found by tools/faults). SQLite's IMMEDIATE transactions are serial already. The row read
    // here is the one the event is fired on.
    let instance = instances::lock_models(&txn, &[&timer.instance_id], false)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| StoreError::NotFound(timer.instance_id.clone()));
    let settled = txn
        .execute_raw(stmt(
            &txn,
            "UPDATE workflow_timers SET status = ?, settled_at = ? WHERE id = ? AND status = ? AND claimed_by = ?",
            vec![timer_status::FIRED.into(), now_ms.into(), timer.id.clone().into(), timer_status::PENDING.into(), worker.into()],
        ))
        .await?;
    if settled.rows_affected() == 0 {
        return Ok(Fired::Stale);
    }
    let instance = match instance {
        Ok(i) => i,
        Err(StoreError::Db(e)) => return Err(StoreError::Db(e)),
        Err(e) => {
            txn.rollback().await?;
            return mark_failed(db, timer, now_ms, &e).await;
        }
    };
    if instance.state != timer.state {
        txn.execute_raw(stmt(&txn, "UPDATE workflow_timers SET status = ? WHERE id = ?", vec![timer_status::CANCELLED.into(), timer.id.clone().into()]))
            .await?;
        txn.commit().await?;
        return Ok(Fired::Stale);
    }
    let payload = payload(timer);
    let version = instance.version;
    match instances::fire_model(&txn, wf, instance, &timer.event, &Actor::system(), &payload, Some(version), now).await {
        Ok(_) => {
            txn.commit().await?;
            Ok(Fired::Fired)
        }
        Err(StoreError::Conflict { .. }) => {
            txn.rollback().await?;
            db.execute_raw(stmt(db, "UPDATE workflow_timers SET claimed_until = NULL WHERE id = ? AND claimed_by = ?", vec![timer.id.clone().into(), worker.into()]))
                .await?;
            Ok(Fired::Retry)
        }
        Err(StoreError::Db(e)) => Err(StoreError::Db(e)),
        // Refused by the engine, or unreadable (an unknown definition, corrupt data): the
        // same every time, so kept as `failed` with the reason instead of failing every sweep
        // (and holding up the timers claimed behind it).
        Err(e) => {
            txn.rollback().await?;
            mark_failed(db, timer, now_ms, &e).await
        }
    }
}

/// What a timer's event carries.
fn payload(timer: &DueTimer) -> serde_json::Value {
    json!({ "timer": timer.name, "due_at": instances::from_ms(timer.due_at) })
}

async fn mark_failed(db: &DatabaseConnection, timer: &DueTimer, now_ms: i64, e: &StoreError) -> Result<Fired, StoreError> {
    let txn = db.begin().await?;
    keep_failed(&txn, timer, now_ms, e).await?;
    txn.commit().await?;
    Ok(Fired::Failed)
}

/// A timer the engine refuses, or whose instance cannot be read: the same every time, so kept
/// as `failed` with the reason (and logged) instead of failing every sweep.
async fn keep_failed(db: &impl ConnectionTrait, timer: &DueTimer, now_ms: i64, e: &StoreError) -> Result<(), DbErr> {
    tracing::error!(timer = %timer.id, instance = %timer.instance_id, event = %timer.event, error = %e, "timer event refused; marked failed");
    db.execute_raw(stmt(
        db,
        "UPDATE workflow_timers SET status = ?, settled_at = ?, last_error = ? WHERE id = ? AND status = ?",
        vec![timer_status::FAILED.into(), now_ms.into(), e.to_string().into(), timer.id.clone().into(), timer_status::PENDING.into()],
    ))
    .await?;
    Ok(())
}

async fn release(db: &DatabaseConnection, timers: &[DueTimer], worker: &str) {
    let ids: Vec<&str> = timers.iter().map(|t| t.id.as_str()).collect();
    super::release_rows(db, "workflow_timers", &ids, worker).await;
}

/// How a sweep divides its work: `tasks` batches run at once on PostgreSQL, each in its own
/// transaction and task, of at most `batch` timers. One at a time a sweep waits on round trips
/// and commit flushes (neither side busy), while concurrent commits share WAL flushes. The
/// default (measured against others on 2 cores: BENCHMARKS.md, issue #22) leaves half the
/// default pool of 8 to API requests. SQLite has one writer, so there batches go one at a time
/// whatever `tasks` says.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub tasks: usize,
    pub batch: u64,
}

impl Default for Shape {
    fn default() -> Self {
        Shape { tasks: 4, batch: 128 }
    }
}

/// How long a claim keeps other sweepers off a timer: a killed process's claims are retaken
/// once it runs out.
const LEASE_MS: i64 = 5 * 60 * 1000;

/// What one batch did.
#[derive(Default)]
struct Batch {
    taken: usize,
    report: SweepReport,
    /// Claimed under a lease, to be fired one at a time: their events reach other instances.
    handed: Vec<DueTimer>,
}

/// Takes up to `limit` due timers with their instances into the caller's transaction: each
/// instance's earliest pending timer only, so that an instance's timers fire in due order
/// whichever transaction takes them; on PostgreSQL locked, skipping any timer or instance
/// another transaction holds, so that the batch never waits (nor can two batches wait on each
/// other). Timers under another sweeper's lease are left to it. `'pending'` is written in the
/// statement, not bound: only then can a prepared statement's plan use the partial index of
/// pending timers (SQLite's, and PostgreSQL's generic plans), in due order, stopping at `limit`.
async fn take_due(txn: &DatabaseTransaction, now: DateTime<Utc>, limit: u64) -> Result<Vec<(DueTimer, instance::Model)>, DbErr> {
    let columns = |alias: &str, names: Vec<&str>| names.iter().map(|c| format!("{alias}.{c} AS {alias}_{c}")).collect::<Vec<_>>().join(", ");
    let timer_columns = columns("t", timer::Column::iter().map(|c| c.as_str()).collect());
    let instance_columns = columns("i", instance::Column::iter().map(|c| c.as_str()).collect());
    let postgres = txn.get_database_backend() == DbBackend::Postgres;
    let lock = if postgres { " FOR UPDATE OF t, i SKIP LOCKED" } else { "" };
    if postgres {
        txn.execute_unprepared(super::DUE_ORDER).await?;
    }
    let sql = format!(
        "SELECT {timer_columns}, {instance_columns} \
         FROM workflow_timers t JOIN workflow_instances i ON i.id = t.instance_id \
         WHERE t.status = 'pending' AND t.due_at <= ? AND (t.claimed_until IS NULL OR t.claimed_until < ?) \
           AND NOT EXISTS (SELECT 1 FROM workflow_timers e WHERE e.instance_id = t.instance_id AND e.status = 'pending' \
                           AND (e.due_at < t.due_at OR (e.due_at = t.due_at AND e.id < t.id))) \
         ORDER BY t.due_at LIMIT ?{lock}"
    );
    let now_ms = now.timestamp_millis();
    let values = vec![now_ms.into(), now_ms.into(), (limit as i64).into()];
    let rows = txn.query_all_raw(stmt(txn, &sql, values)).await?;
    if postgres {
        txn.execute_unprepared(super::USUAL_PLANS).await?;
    }
    rows.iter().map(|r| Ok((DueTimer::from_query_result(r, "t_")?, instance::Model::from_query_result(r, "i_")?))).collect()
}

/// Sets `status` and `settled_at` on the timers `ids`.
async fn settle(txn: &DatabaseTransaction, ids: Vec<sea_orm::Value>, status: &str, now_ms: i64) -> Result<(), DbErr> {
    if ids.is_empty() {
        return Ok(());
    }
    let marks = vec!["?"; ids.len()].join(", ");
    let mut values: Vec<sea_orm::Value> = vec![status.into(), now_ms.into()];
    values.extend(ids);
    txn.execute_raw(stmt(txn, &format!("UPDATE workflow_timers SET status = ?, settled_at = ? WHERE id IN ({marks})"), values)).await?;
    Ok(())
}

/// Fires a batch of due timers in one transaction: each settled and its event written with the
/// others' (`instances::apply_all`), a timer whose instance has left its state cancelled, one
/// the engine refuses (or whose instance cannot be read) kept as `failed` with the reason, and
/// one whose event reaches other instances claimed, to be fired on its own. A commit per timer
/// was the sweep's cost: its round trips and WAL flushes; and a timer written twice (claimed,
/// then settled) was most of its database time.
#[tracing::instrument(level = "debug", name = "timers", skip_all)]
async fn fire_batch(db: &DatabaseConnection, wf: &Workflows, worker: &str, now: DateTime<Utc>, limit: u64) -> Result<Batch, StoreError> {
    let now_ms = now.timestamp_millis();
    let txn = begin_write(db).await?;
    let taken = take_due(&txn, now, limit).await?;
    let mut batch = Batch { taken: taken.len(), ..Batch::default() };
    if taken.is_empty() {
        txn.rollback().await?;
        return Ok(batch);
    }
    let actor = Actor::system();
    let (mut own, mut fired, mut stale, mut handed) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (t, model) in taken {
        if model.state != t.state {
            stale.push(sea_orm::Value::from(t.id.clone()));
            continue;
        }
        let payload = payload(&t);
        match instances::decide(wf, &model, &t.event, &actor, &payload, Some(model.version), now) {
            Ok(decided) if instances::shares_a_transaction(&decided) => {
                fired.push(sea_orm::Value::from(t.id.clone()));
                own.push(instances::Own { model, decided, payload });
            }
            Ok(_) => handed.push(t),
            Err(StoreError::Db(e)) => return Err(StoreError::Db(e)),
            // Refused by the engine, or unreadable (an unknown definition, corrupt data): the
            // same every time, so kept as `failed` with the reason instead of failing every
            // sweep (and holding up the timers beside it).
            Err(e) => {
                keep_failed(&txn, &t, now_ms, &e).await?;
                batch.report.failed += 1;
            }
        }
    }
    batch.report.stale = stale.len();
    batch.report.fired = fired.len();
    // Settled before the events are written: an event leaving its state cancels the
    // instance's pending timers, and this one is fired, not cancelled.
    settle(&txn, stale, timer_status::CANCELLED, now_ms).await?;
    settle(&txn, fired, timer_status::FIRED, now_ms).await?;
    if !handed.is_empty() {
        let marks = vec!["?"; handed.len()].join(", ");
        let mut values: Vec<sea_orm::Value> = vec![worker.into(), (now_ms + LEASE_MS).into()];
        values.extend(handed.iter().map(|t| sea_orm::Value::from(t.id.clone())));
        txn.execute_raw(stmt(&txn, &format!("UPDATE workflow_timers SET claimed_by = ?, claimed_until = ? WHERE id IN ({marks})"), values)).await?;
    }
    instances::apply_all(&txn, wf, own, &actor, now).await?;
    txn.commit().await?;
    batch.handed = handed;
    Ok(batch)
}

/// One task of the sweep: batches until none is left that it can take, then the timers it
/// claimed to fire on their own.
async fn sweep_task(db: &DatabaseConnection, wf: &Workflows, worker: &str, now: DateTime<Utc>, limit: u64) -> Result<SweepReport, StoreError> {
    let mut report = SweepReport::default();
    let mut handed = Vec::new();
    loop {
        let batch = match fire_batch(db, wf, worker, now, limit).await {
            Ok(b) => b,
            Err(e) => {
                // Whatever failed the shared transaction (a row another writer made invalid, a
                // deadlock detected) is rolled back; the one-at-a-time pass after the batches
                // tells each timer's own outcome.
                tracing::debug!(error = %e, "a batch of timers failed: its timers are fired one at a time");
                break;
            }
        };
        if batch.taken == 0 {
            break;
        }
        report.add(batch.report);
        handed.extend(batch.handed);
    }
    for fired in fire_group(db, wf, &handed, worker, now).await? {
        report.count(fired);
    }
    Ok(report)
}

/// The claimed timers by instance, each instance's in due order: an instance's timers are fired
/// in sequence (a reminder before its expiry), different instances' side by side.
fn by_instance(claimed: Vec<DueTimer>) -> Vec<Vec<DueTimer>> {
    let mut groups: Vec<Vec<DueTimer>> = Vec::new();
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for t in claimed {
        match index.get(&t.instance_id) {
            Some(&i) => groups[i].push(t),
            None => {
                index.insert(t.instance_id.clone(), groups.len());
                groups.push(vec![t]);
            }
        }
    }
    groups
}

/// Fires one instance's claimed timers in order; on a database error gives back those not yet
/// fired, so the next sweep retakes them at once rather than after the lease (seen in
/// tools/faults after PostgreSQL restarts).
async fn fire_group(db: &DatabaseConnection, wf: &Workflows, group: &[DueTimer], worker: &str, now: DateTime<Utc>) -> Result<Vec<Fired>, StoreError> {
    let mut out = Vec::with_capacity(group.len());
    for (i, t) in group.iter().enumerate() {
        match fire_claimed(db, wf, t, worker, now).await {
            Ok(f) => out.push(f),
            Err(e) => {
                release(db, &group[i..], worker).await;
                return Err(e);
            }
        }
    }
    Ok(out)
}

/// Fires every timer due at `now`: batches side by side until none is left that a batch can
/// take, then — one at a time, waiting for them — the timers whose instances other
/// transactions held, claimed `claim` at a time.
pub async fn sweep(
    db: &DatabaseConnection,
    wf: &std::sync::Arc<Workflows>,
    worker: &str,
    now: DateTime<Utc>,
    claim: u64,
    shape: Shape,
) -> Result<SweepReport, StoreError> {
    let concurrency = if db.get_database_backend() == DbBackend::Postgres { shape.tasks.max(1) } else { 1 };
    let mut running = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (db, wf, worker) = (db.clone(), wf.clone(), worker.to_string());
        running.spawn(async move { sweep_task(&db, &wf, &worker, now, shape.batch).await });
    }
    let mut report = SweepReport::default();
    let mut failure = None;
    while let Some(done) = running.join_next().await {
        match done.unwrap_or_else(|e| Err(StoreError::Db(DbErr::Custom(format!("a timer task ended abnormally: {e}"))))) {
            Ok(r) => report.add(r),
            Err(e) => failure = failure.or(Some(e)),
        }
    }
    if let Some(e) = failure {
        return Err(e);
    }
    let lease = Duration::milliseconds(LEASE_MS);
    loop {
        let claimed = claim_due(db, worker, now, lease, claim).await?;
        if claimed.is_empty() {
            return Ok(report);
        }
        let mut progressed = false;
        let mut groups = by_instance(claimed).into_iter();
        while let Some(group) = groups.next() {
            let fired = match fire_group(db, wf, &group, worker, now).await {
                Ok(f) => f,
                Err(e) => {
                    for left in groups {
                        release(db, &left, worker).await;
                    }
                    return Err(e);
                }
            };
            for f in fired {
                progressed |= f != Fired::Retry;
                report.count(f);
            }
        }
        if !progressed {
            // Only races lost: leave them to the next sweep rather than spin.
            return Ok(report);
        }
    }
}
