//! Breaches of the supervision limits, one row per breach, against the division (and
//! department and region) that held the task when the limit passed.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr, FromQueryResult};

use super::scope::Scope;
use super::stmt;

pub async fn record(db: &impl ConnectionTrait, instance_id: &str, seq: i64, scope: &Scope, limit: &str, now: DateTime<Utc>) -> Result<(), DbErr> {
    db.execute_raw(stmt(
        db,
        "INSERT INTO sla_breaches (id, instance_id, event_seq, region, department, division, limit_kind, breached_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        vec![
            uuid::Uuid::now_v7().to_string().into(),
            instance_id.into(),
            seq.into(),
            scope.region.clone().into(),
            scope.department.clone().into(),
            scope.division.clone().into(),
            limit.into(),
            now.timestamp_millis().into(),
        ],
    ))
    .await?;
    Ok(())
}

#[derive(Debug, Clone, FromQueryResult)]
pub struct Breach {
    pub id: String,
    pub instance_id: String,
    pub region: Option<String>,
    pub department: Option<String>,
    pub division: Option<String>,
    pub limit_kind: String,
    pub breached_at: i64,
}

/// What to list: any of region, department, division; a half-open time range.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub region: Option<String>,
    pub department: Option<String>,
    pub division: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

/// Newest first, at most `limit`.
pub async fn list(db: &impl ConnectionTrait, f: &Filter, limit: u64) -> Result<Vec<Breach>, DbErr> {
    let mut sql = String::from(
        "SELECT id, instance_id, region, department, division, limit_kind, breached_at FROM sla_breaches WHERE 1 = 1",
    );
    let mut values: Vec<sea_orm::Value> = Vec::new();
    for (column, value) in [("region", &f.region), ("department", &f.department), ("division", &f.division)] {
        if let Some(v) = value {
            sql.push_str(&format!(" AND {column} = ?"));
            values.push(v.clone().into());
        }
    }
    if let Some(from) = f.from {
        sql.push_str(" AND breached_at >= ?");
        values.push(from.timestamp_millis().into());
    }
    if let Some(to) = f.to {
        sql.push_str(" AND breached_at < ?");
        values.push(to.timestamp_millis().into());
    }
    sql.push_str(&format!(" ORDER BY breached_at DESC, id DESC LIMIT {limit}"));
    super::fetch(db, &sql, values).await
}
