//! Credit: records per applicant (fulfilment, breach, revocation, repair), and the applicant's
//! effective tier and dishonesty-list flag computed from them by configurable rules over what
//! the outside credit platform last imported. The window's credit gate reads the effective
//! values; a repaired record no longer counts.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr, FromQueryResult};
use serde::{Deserialize, Serialize};

use super::audit::AuditKeys;
use super::seal::{self, APPLICANTS, CREDIT_RECORDS};
use super::stmt;

/// How records move an applicant's tier (A best … D worst) and the dishonesty list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CreditRules {
    /// An unrepaired breach puts the applicant at this tier …
    pub breach_tier: String,
    /// … and on the dishonesty list.
    pub breach_enters_dishonesty_list: bool,
    /// An unrepaired revocation puts the applicant at least this low.
    pub revocation_tier: String,
    /// This many fulfilments with nothing unrepaired against them lift the applicant to A.
    pub fulfilments_for_a: i64,
}

impl Default for CreditRules {
    fn default() -> Self {
        Self { breach_tier: "D".into(), breach_enters_dishonesty_list: true, revocation_tier: "C".into(), fulfilments_for_a: 3 }
    }
}

pub mod kind {
    pub const FULFILMENT: &str = "fulfilment";
    pub const BREACH: &str = "breach";
    pub const REVOCATION: &str = "revocation";
    pub const REPAIR: &str = "repair";
}

fn worse<'a>(a: &'a str, b: &'a str) -> &'a str {
    if b > a { b } else { a }
}

/// Writes one record, sealed, and recomputes the applicant's standing.
#[allow(clippy::too_many_arguments)]
pub async fn record(
    db: &impl ConnectionTrait,
    rules: &CreditRules,
    keys: &AuditKeys,
    uscc: &str,
    kind: &str,
    instance_id: Option<&str>,
    event_seq: Option<i64>,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<String, DbErr> {
    let id = uuid::Uuid::now_v7().to_string();
    db.execute_raw(stmt(
        db,
        "INSERT INTO credit_records (id, applicant_uscc, kind, instance_id, event_seq, reason, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        vec![id.clone().into(), uscc.into(), kind.into(), instance_id.into(), event_seq.into(), reason.into(), now.timestamp_millis().into()],
    ))
    .await?;
    seal::seal(db, keys, &CREDIT_RECORDS, &id).await?;
    recompute(db, rules, keys, uscc, now).await?;
    Ok(id)
}

/// The applicant's effective tier and flag from the imported ones and the unrepaired records.
pub async fn recompute(db: &impl ConnectionTrait, rules: &CreditRules, keys: &AuditKeys, uscc: &str, now: DateTime<Utc>) -> Result<(), DbErr> {
    #[derive(FromQueryResult)]
    struct Imported {
        imported_tier: String,
        imported_dishonest: i64,
    }
    let Some(row) = db
        .query_one_raw(stmt(db, "SELECT imported_tier, imported_dishonest FROM applicants WHERE uscc = ?", vec![uscc.into()]))
        .await?
    else {
        return Ok(()); // not on file at the window: the record stands alone
    };
    let imported = Imported::from_query_result(&row, "")?;
    #[derive(FromQueryResult)]
    struct Count {
        kind: String,
        n: i64,
    }
    let rows = db
        .query_all_raw(stmt(
            db,
            "SELECT kind, COUNT(*) AS n FROM credit_records WHERE applicant_uscc = ? AND repaired_at IS NULL GROUP BY kind",
            vec![uscc.into()],
        ))
        .await?;
    let counts: Vec<Count> = rows.iter().map(|r| Count::from_query_result(r, "")).collect::<Result<_, _>>()?;
    let n = |k: &str| counts.iter().find(|c| c.kind == k).map_or(0, |c| c.n);
    let mut tier = imported.imported_tier.as_str();
    let mut dishonest = imported.imported_dishonest != 0;
    if n(kind::BREACH) > 0 {
        tier = worse(tier, &rules.breach_tier);
        dishonest |= rules.breach_enters_dishonesty_list;
    }
    if n(kind::REVOCATION) > 0 {
        tier = worse(tier, &rules.revocation_tier);
    }
    if n(kind::BREACH) == 0 && n(kind::REVOCATION) == 0 && n(kind::FULFILMENT) >= rules.fulfilments_for_a && !dishonest {
        tier = "A";
    }
    db.execute_raw(stmt(
        db,
        "UPDATE applicants SET credit_tier = ?, dishonest = ?, updated_at = ? WHERE uscc = ?",
        vec![tier.into(), i64::from(dishonest).into(), now.timestamp_millis().into(), uscc.into()],
    ))
    .await?;
    seal::seal(db, keys, &APPLICANTS, uscc).await
}

#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct CreditRecord {
    pub id: String,
    pub applicant_uscc: String,
    pub kind: String,
    pub instance_id: Option<String>,
    pub reason: String,
    pub created_at: i64,
    pub repaired_at: Option<i64>,
    pub repaired_by: Option<String>,
    pub repair_reason: Option<String>,
}

pub async fn records(db: &impl ConnectionTrait, uscc: &str) -> Result<Vec<CreditRecord>, DbErr> {
    let rows = db
        .query_all_raw(stmt(db, &format!("SELECT {RECORD_COLUMNS} FROM credit_records WHERE applicant_uscc = ? ORDER BY created_at, id"), vec![uscc.into()]))
        .await?;
    rows.iter().map(|r| CreditRecord::from_query_result(r, "")).collect()
}

const RECORD_COLUMNS: &str = "id, applicant_uscc, kind, instance_id, reason, created_at, repaired_at, repaired_by, repair_reason";

async fn one(db: &impl ConnectionTrait, id: &str) -> Result<Option<CreditRecord>, DbErr> {
    let row = db.query_one_raw(stmt(db, &format!("SELECT {RECORD_COLUMNS} FROM credit_records WHERE id = ?"), vec![id.into()])).await?;
    row.map(|r| CreditRecord::from_query_result(&r, "")).transpose()
}

/// Repairs a breach or revocation (信用修复): it no longer counts; a `repair` record says who
/// and why, and is returned. `None` when there is no such unrepaired record.
pub async fn repair(db: &impl ConnectionTrait, rules: &CreditRules, keys: &AuditKeys, id: &str, by: &str, reason: &str, now: DateTime<Utc>) -> Result<Option<CreditRecord>, DbErr> {
    let Some(found) = one(db, id).await? else { return Ok(None) };
    if found.repaired_at.is_some() || !(found.kind == kind::BREACH || found.kind == kind::REVOCATION) {
        return Ok(None);
    }
    db.execute_raw(stmt(
        db,
        "UPDATE credit_records SET repaired_at = ?, repaired_by = ?, repair_reason = ? WHERE id = ? AND repaired_at IS NULL",
        vec![now.timestamp_millis().into(), by.into(), reason.into(), id.into()],
    ))
    .await?;
    seal::seal(db, keys, &CREDIT_RECORDS, id).await?;
    let repair = record(db, rules, keys, &found.applicant_uscc, kind::REPAIR, found.instance_id.as_deref(), None, &format!("{id}: {reason}"), now).await?;
    one(db, &repair).await
}

#[cfg(test)]
mod tests {
    #[test]
    fn tiers_compare_worst_last() {
        assert_eq!(super::worse("A", "D"), "D");
        assert_eq!(super::worse("C", "B"), "C");
    }
}
