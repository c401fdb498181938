//! The outbox: messages and signals written by transitions, delivered after commit. Rows are
//! claimed under a lease exactly like timers; each attempt is recorded; a row that fails
//! `max_attempts` times in a row becomes `dead` until an admin requeues it.

use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, FromQueryResult, QueryFilter, QueryOrder,
    QuerySelect,
};
use sea_orm::ColumnTrait;

use super::entities::outbox;
use super::{begin_write, stmt};

pub mod status {
    pub const PENDING: &str = "pending";
    pub const DELIVERED: &str = "delivered";
    pub const DEAD: &str = "dead";
    /// Not sent, on purpose: a reminder whose deadline had passed when its turn came.
    pub const SKIPPED: &str = "skipped";
}

/// A claimed row: the outbox entity itself.
pub type Delivery = outbox::Model;

/// How long to wait before attempt `n + 1` after `n` failures: doubling from `base`, at most
/// six hours.
pub fn backoff(base: std::time::Duration, failures: i64) -> Duration {
    let base = Duration::from_std(base).unwrap_or(Duration::seconds(60));
    let factor = 1i32 << (failures.clamp(1, 16) - 1);
    std::cmp::min(base * factor, Duration::hours(6))
}

/// Claims up to `limit` pending rows whose next attempt is due, for `worker`.
pub async fn claim_due(
    db: &DatabaseConnection,
    worker: &str,
    now: DateTime<Utc>,
    lease: Duration,
    limit: u64,
) -> Result<Vec<Delivery>, DbErr> {
    let mut due: Vec<Delivery> = super::claim_rows(db, "outbox", "next_attempt_at", worker, now, lease, limit).await?;
    // RETURNING gives no order on PostgreSQL: deliver in the order the transitions wrote them.
    due.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(due)
}

/// What came of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Delivered { detail: String },
    /// Failed; tried again at `next_at` unless attempts are used up.
    Failed { error: String, next_at: DateTime<Utc> },
    /// Failed in a way a retry cannot fix (no address, a permanent SMTP refusal).
    Dead { error: String },
    /// Deliberately not sent (a reminder that would arrive after its deadline).
    Skipped { reason: String },
}

pub mod attempt_outcome {
    pub const DELIVERED: &str = "delivered";
    pub const FAILED: &str = "failed";
    pub const DEAD: &str = "dead";
    pub const REQUEUED: &str = "requeued";
    pub const SKIPPED: &str = "skipped";
}

/// Records one attempt of a row this worker holds and moves the row on. Returns false, and
/// changes nothing, when the claim was lost (the lease ran out and another worker took it).
pub async fn settle(
    db: &impl ConnectionTrait,
    delivery: &Delivery,
    worker: &str,
    now: DateTime<Utc>,
    outcome: &Outcome,
    max_attempts: u32,
) -> Result<bool, DbErr> {
    let now_ms = now.timestamp_millis();
    let attempts = delivery.attempts + 1;
    let (row_status, next_ms, error, recorded, detail) = match outcome {
        Outcome::Delivered { detail } => (status::DELIVERED, now_ms, None, attempt_outcome::DELIVERED, detail.clone()),
        Outcome::Skipped { reason } => (status::SKIPPED, now_ms, None, attempt_outcome::SKIPPED, reason.clone()),
        Outcome::Failed { error, next_at } if attempts < i64::from(max_attempts) => {
            (status::PENDING, next_at.timestamp_millis(), Some(error.clone()), attempt_outcome::FAILED, error.clone())
        }
        Outcome::Failed { error, .. } | Outcome::Dead { error } => {
            (status::DEAD, now_ms, Some(error.clone()), attempt_outcome::DEAD, error.clone())
        }
    };
    let delivered_at = (row_status == status::DELIVERED).then_some(now_ms);
    let updated = db
        .execute_raw(stmt(
            db,
            "UPDATE outbox SET status = ?, attempts = ?, next_attempt_at = ?, last_error = ?, delivered_at = ?, \
             claimed_by = NULL, claimed_until = NULL \
             WHERE id = ? AND status = 'pending' AND claimed_by = ?",
            vec![
                row_status.into(),
                attempts.into(),
                next_ms.into(),
                error.into(),
                delivered_at.into(),
                delivery.id.clone().into(),
                worker.into(),
            ],
        ))
        .await?;
    if updated.rows_affected() == 0 {
        return Ok(false);
    }
    record_attempt(db, &delivery.id, worker, now_ms, recorded, Some(detail)).await?;
    Ok(true)
}

async fn record_attempt(
    db: &impl ConnectionTrait,
    id: &str,
    worker: &str,
    at_ms: i64,
    outcome: &str,
    detail: Option<String>,
) -> Result<(), DbErr> {
    db.execute_raw(stmt(
        db,
        "INSERT INTO outbox_attempts (outbox_id, attempt, worker, at, outcome, detail) \
         SELECT ?, COALESCE(MAX(attempt), 0) + 1, ?, ?, ?, ? FROM outbox_attempts WHERE outbox_id = ?",
        vec![id.into(), worker.into(), at_ms.into(), outcome.into(), detail.into(), id.into()],
    ))
    .await?;
    Ok(())
}

/// Puts a dead row back in the queue for `attempts` fresh tries, recording who asked.
/// Returns false when the row is not dead.
pub async fn requeue(db: &DatabaseConnection, id: &str, by: &str, now: DateTime<Utc>) -> Result<bool, DbErr> {
    let now_ms = now.timestamp_millis();
    let txn = begin_write(db).await?;
    let updated = txn
        .execute_raw(stmt(
            &txn,
            "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = ?, claimed_by = NULL, claimed_until = NULL \
             WHERE id = ? AND status = 'dead'",
            vec![now_ms.into(), id.into()],
        ))
        .await?;
    if updated.rows_affected() == 0 {
        txn.rollback().await?;
        return Ok(false);
    }
    record_attempt(&txn, id, by, now_ms, attempt_outcome::REQUEUED, Some(format!("requeued by {by}"))).await?;
    txn.commit().await?;
    Ok(true)
}

#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct Attempt {
    pub outbox_id: String,
    pub attempt: i64,
    pub worker: String,
    pub at: i64,
    pub outcome: String,
    pub detail: Option<String>,
}

pub async fn attempts(db: &impl ConnectionTrait, id: &str) -> Result<Vec<Attempt>, DbErr> {
    let rows = db
        .query_all_raw(stmt(
            db,
            "SELECT outbox_id, attempt, worker, at, outcome, detail FROM outbox_attempts WHERE outbox_id = ? ORDER BY attempt",
            vec![id.into()],
        ))
        .await?;
    rows.iter().map(|r| Attempt::from_query_result(r, "")).collect()
}

/// Rows of one status (newest first), or of one instance, `limit` at most after `offset`.
pub async fn list(
    db: &impl ConnectionTrait,
    status: Option<&str>,
    instance_id: Option<&str>,
    offset: u64,
    limit: u64,
) -> Result<(Vec<outbox::Model>, u64), DbErr> {
    use sea_orm::PaginatorTrait;
    let mut q = outbox::Entity::find();
    if let Some(s) = status {
        q = q.filter(outbox::Column::Status.eq(s));
    }
    if let Some(i) = instance_id {
        q = q.filter(outbox::Column::InstanceId.eq(i));
    }
    let total = q.clone().count(db).await?;
    let rows = q
        .order_by_desc(outbox::Column::CreatedAt)
        .order_by_desc(outbox::Column::Id)
        .offset(offset)
        .limit(limit)
        .all(db)
        .await?;
    Ok((rows, total))
}

/// Removes delivered rows (and their attempts) delivered before `before`. Returns how many.
pub async fn purge_delivered(db: &DatabaseConnection, before: DateTime<Utc>) -> Result<u64, DbErr> {
    let cutoff = before.timestamp_millis();
    let txn = begin_write(db).await?;
    txn.execute_raw(stmt(
        &txn,
        "DELETE FROM outbox_attempts WHERE outbox_id IN (SELECT id FROM outbox WHERE status = 'delivered' AND delivered_at < ?)",
        vec![cutoff.into()],
    ))
    .await?;
    let r = txn
        .execute_raw(stmt(&txn, "DELETE FROM outbox WHERE status = 'delivered' AND delivered_at < ?", vec![cutoff.into()]))
        .await?;
    txn.commit().await?;
    Ok(r.rows_affected())
}

/// Counts by status, for operators and the digest.
pub async fn depth(db: &impl ConnectionTrait) -> Result<Vec<(String, i64)>, DbErr> {
    #[derive(FromQueryResult)]
    struct Row {
        status: String,
        n: i64,
    }
    let rows = db
        .query_all_raw(stmt(db, "SELECT status, COUNT(*) AS n FROM outbox GROUP BY status ORDER BY status", vec![]))
        .await?;
    rows.iter().map(|r| Row::from_query_result(r, "").map(|r| (r.status, r.n))).collect()
}
