//! Where a training clock (`PLEDGEFLOW_CLOCK=manual`) stands, kept in the database so that a
//! restarted training server resumes where it stood instead of jumping back to the wall clock or
//! its configured start — and never stands before its own cases' events.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr, FromQueryResult};

use super::{fetch, stmt};
use super::millis::from_ms;

const KEY: &str = "training_clock";

#[derive(FromQueryResult)]
struct Value {
    value: String,
}

#[derive(FromQueryResult)]
struct Latest {
    at: Option<i64>,
}

/// The instant to resume at: the one on record, else `start` (else `wall`) — and in any case no
/// earlier than the newest event written, since time on this server never runs back.
pub async fn resume_at(db: &impl ConnectionTrait, start: Option<DateTime<Utc>>, wall: DateTime<Utc>) -> Result<DateTime<Utc>, DbErr> {
    let kept: Vec<Value> = fetch(db, "SELECT value FROM settings WHERE key = ?", vec![KEY.into()]).await?;
    let kept = kept.into_iter().next().and_then(|v| v.value.parse::<i64>().ok()).map(from_ms);
    let latest: Vec<Latest> = fetch(db, "SELECT MAX(occurred_at) AS at FROM workflow_events", vec![]).await?;
    let latest = latest.into_iter().next().and_then(|l| l.at).map(from_ms);
    let wanted = match (kept, start) {
        (Some(kept), Some(start)) => kept.max(start),
        (Some(kept), None) => kept,
        (None, Some(start)) => start,
        (None, None) => wall,
    };
    Ok(latest.map_or(wanted, |l| wanted.max(l)))
}

/// Records where the clock stands now.
pub async fn keep(db: &impl ConnectionTrait, at: DateTime<Utc>) -> Result<(), DbErr> {
    db.execute_raw(stmt(
        db,
        "INSERT INTO settings (key, value, created_at) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        vec![KEY.into(), at.timestamp_millis().to_string().into(), Utc::now().timestamp_millis().into()],
    ))
    .await?;
    Ok(())
}
