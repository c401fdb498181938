//! Idempotency keys of mutations: the first request with a key records what it did in the
//! same transaction as the change; a retry with the same key gets that record back instead
//! of acting again. Keys are per caller (subject), so one caller cannot replay another's.

use sea_orm::{ConnectionTrait, DbErr, FromQueryResult};
use serde_json::Value;

use super::stmt;

#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct Recorded {
    pub operation: String,
    pub result: String,
}

pub async fn find(db: &impl ConnectionTrait, subject: &str, key: &str) -> Result<Option<Recorded>, DbErr> {
    let row = db
        .query_one_raw(stmt(db, "SELECT operation, result FROM idempotency_keys WHERE subject = ? AND key = ?", vec![subject.into(), key.into()]))
        .await?;
    row.map(|r| Recorded::from_query_result(&r, "")).transpose()
}

/// Records the key; false when it was recorded meanwhile (a concurrent retry), so the caller
/// rolls back and replays.
pub async fn record(db: &impl ConnectionTrait, subject: &str, key: &str, operation: &str, result: &Value, now_ms: i64) -> Result<bool, DbErr> {
    let r = db
        .execute_raw(stmt(
            db,
            "INSERT INTO idempotency_keys (subject, key, operation, result, created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            vec![subject.into(), key.into(), operation.into(), result.to_string().into(), now_ms.into()],
        ))
        .await?;
    Ok(r.rows_affected() == 1)
}

/// Removes keys older than `before_ms` (housekeeping).
pub async fn purge(db: &impl ConnectionTrait, before_ms: i64) -> Result<u64, DbErr> {
    let r = db.execute_raw(stmt(db, "DELETE FROM idempotency_keys WHERE created_at < ?", vec![before_ms.into()])).await?;
    Ok(r.rows_affected())
}
