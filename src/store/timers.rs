//! Due timers: claimed in batches under a lease (so that several processes never fire the same
//! timer, and a killed process's claims are retaken once the lease runs out), then each fired
//! through the engine together with the timer's own settlement — several instances' at once on
//! PostgreSQL, each instance's in due order; several instances' timers to a transaction where
//! their events lock nothing but their own instance's rows.

use chrono::{DateTime, Duration, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, TransactionTrait};
use serde_json::json;

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
    tracing::error!(timer = %timer.id, instance = %timer.instance_id, event = %timer.event, error = %e, "timer event refused; marked failed");
    let txn = db.begin().await?;
    txn.execute_raw(stmt(
        &txn,
        "UPDATE workflow_timers SET status = ?, settled_at = ?, last_error = ? WHERE id = ? AND status = ?",
        vec![timer_status::FAILED.into(), now_ms.into(), e.to_string().into(), timer.id.clone().into(), timer_status::PENDING.into()],
    ))
    .await?;
    txn.commit().await?;
    Ok(Fired::Failed)
}

async fn release(db: &DatabaseConnection, timers: &[DueTimer], worker: &str) {
    let ids: Vec<&str> = timers.iter().map(|t| t.id.as_str()).collect();
    super::release_rows(db, "workflow_timers", &ids, worker).await;
}

/// Timers fired at once on PostgreSQL, each in its own transaction and task: one at a time a
/// sweep waits on round trips and commit flushes (neither side busy), while concurrent commits
/// share WAL flushes. Below the default pool of 8, so API requests still find connections.
/// SQLite has one writer, so there they go one at a time.
pub const CONCURRENCY: usize = 6;

/// Most instances' timers fired in one transaction (see `fire_together`).
const CHUNK_MAX: usize = 32;

/// Fires the first timer of each group in one transaction, where that is safe: the instance
/// could be locked without waiting (`SKIP LOCKED`: another transaction holding it cannot then
/// be waiting on this one), it is still in the timer's state, the engine accepts the event and
/// the event locks only its own rows. Everything else — and each group's later timers, fired
/// after this commit so that an instance's timers keep their order — is handed back to be fired
/// one at a time. A commit per timer was the sweep's cost: its round trips and WAL flushes.
#[tracing::instrument(level = "debug", name = "timers", skip_all, fields(timers = chunk.iter().map(Vec::len).sum::<usize>()))]
async fn fire_together(db: &DatabaseConnection, wf: &Workflows, chunk: &[Vec<DueTimer>], worker: &str, now: DateTime<Utc>) -> Result<(Vec<Fired>, Vec<Vec<DueTimer>>), StoreError> {
    let txn = begin_write(db).await?;
    let ids: Vec<&str> = chunk.iter().map(|g| g[0].instance_id.as_str()).collect();
    let locked = instances::lock_models(&txn, &ids, true).await?;
    let mut locked: std::collections::HashMap<String, super::entities::instance::Model> = locked.into_iter().map(|m| (m.id.clone(), m)).collect();
    let actor = Actor::system();
    let mut rest = Vec::new();
    let mut together = Vec::new();
    for group in chunk {
        let t = &group[0];
        let decided = match locked.remove(&t.instance_id) {
            Some(model) if model.state == t.state => instances::decide(wf, &model, &t.event, &actor, &payload(t), Some(model.version), now).ok().map(|d| (model, d)),
            _ => None,
        };
        match decided {
            Some((model, d)) if instances::writes_only_its_own(&d, &model.state) => {
                together.push((t, model, d));
                if group.len() > 1 {
                    rest.push(group[1..].to_vec());
                }
            }
            _ => rest.push(group.clone()),
        }
    }
    if together.is_empty() {
        txn.rollback().await?;
        return Ok((Vec::new(), rest));
    }
    let mut values: Vec<sea_orm::Value> = vec![timer_status::FIRED.into(), now.timestamp_millis().into()];
    values.extend(together.iter().map(|(t, ..)| sea_orm::Value::from(t.id.clone())));
    values.extend([timer_status::PENDING.into(), worker.into()]);
    let marks = vec!["?"; together.len()].join(", ");
    #[derive(sea_orm::FromQueryResult)]
    struct Id {
        id: String,
    }
    let settled: std::collections::HashSet<String> =
        super::fetch::<Id>(&txn, &format!("UPDATE workflow_timers SET status = ?, settled_at = ? WHERE id IN ({marks}) AND status = ? AND claimed_by = ? RETURNING id"), values)
            .await?
            .into_iter()
            .map(|r| r.id)
            .collect();
    let mut out = Vec::with_capacity(together.len());
    let mut own = Vec::with_capacity(together.len());
    for (t, model, decided) in together {
        if settled.contains(&t.id) {
            own.push(instances::Own { model, decided, payload: payload(t) });
            out.push(Fired::Fired);
        } else {
            // Settled meanwhile by another process (its lease had run out).
            out.push(Fired::Stale);
        }
    }
    instances::apply_own(&txn, &wf.audit, own, &actor, now).await?;
    txn.commit().await?;
    Ok((out, rest))
}

/// Fires a chunk of groups: as many first timers together as is safe, then the rest one at a
/// time. When the shared transaction fails for any reason, the whole chunk goes the one-at-a-
/// time way, which tells each timer's own outcome (or the database's error).
async fn fire_chunk(db: &DatabaseConnection, wf: &Workflows, chunk: Vec<Vec<DueTimer>>, worker: &str, now: DateTime<Utc>) -> Result<Vec<Fired>, StoreError> {
    let (mut out, rest) = match fire_together(db, wf, &chunk, worker, now).await {
        Ok(done) => done,
        Err(e) => {
            tracing::debug!(error = %e, timers = chunk.len(), "timers fired one at a time: their shared transaction failed");
            (Vec::new(), chunk)
        }
    };
    let mut rest = rest.into_iter();
    while let Some(group) = rest.next() {
        match fire_group(db, wf, &group, worker, now).await {
            Ok(fired) => out.extend(fired),
            Err(e) => {
                for left in rest {
                    release(db, &left, worker).await;
                }
                return Err(e);
            }
        }
    }
    Ok(out)
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

/// Fires every timer due at `now`, a batch at a time, until none is left.
pub async fn sweep(
    db: &DatabaseConnection,
    wf: &std::sync::Arc<Workflows>,
    worker: &str,
    now: DateTime<Utc>,
    batch: u64,
) -> Result<SweepReport, StoreError> {
    let mut report = SweepReport::default();
    let lease = Duration::minutes(5);
    let concurrency = if db.get_database_backend() == sea_orm::DbBackend::Postgres { CONCURRENCY } else { 1 };
    loop {
        let claimed = claim_due(db, worker, now, lease, batch).await?;
        if claimed.is_empty() {
            return Ok(report);
        }
        // Chunks of instances' timers, one task each, `concurrency` tasks at a time, on any core.
        let groups = by_instance(claimed);
        let size = groups.len().div_ceil(concurrency).clamp(1, CHUNK_MAX);
        let mut groups = groups.into_iter().peekable();
        let mut running = tokio::task::JoinSet::new();
        let mut results: Vec<Result<Vec<Fired>, StoreError>> = Vec::new();
        loop {
            while running.len() < concurrency && groups.peek().is_some() {
                let chunk: Vec<Vec<DueTimer>> = groups.by_ref().take(size).collect();
                let (db, wf, worker) = (db.clone(), wf.clone(), worker.to_string());
                running.spawn(async move { fire_chunk(&db, &wf, chunk, &worker, now).await });
            }
            match running.join_next().await {
                Some(done) => results.push(done.unwrap_or_else(|e| Err(StoreError::Db(DbErr::Custom(format!("a timer task ended abnormally: {e}")))))),
                None => break,
            }
        }
        let mut progressed = false;
        let mut failure = None;
        for result in results {
            match result {
                Ok(fired) => {
                    for f in fired {
                        match f {
                            Fired::Fired => report.fired += 1,
                            Fired::Stale => report.stale += 1,
                            Fired::Failed => report.failed += 1,
                            Fired::Retry => {
                                report.retried += 1;
                                continue;
                            }
                        }
                        progressed = true;
                    }
                }
                Err(e) => failure = failure.or(Some(e)),
            }
        }
        if let Some(e) = failure {
            return Err(e);
        }
        if !progressed {
            // Only races lost: leave them to the next sweep rather than spin.
            return Ok(report);
        }
    }
}
