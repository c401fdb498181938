//! The 15% return rule (seed 002 item 66: 窗口退件率): per window officer, returns for the
//! officer's own error over applications taken in (cases opened and applications returned) in
//! a rolling window; at or above the threshold, with enough applications to judge by, the
//! officer is suspended from intake until a supervisor records retraining. Per approval item,
//! returns blamed on its configuration flag the item until a new version is put. Counted in
//! the database and judged at every act that changes the counts (a return, an intake); checked
//! at every intake act.

use chrono::{DateTime, Duration, Utc};
use sea_orm::{ConnectionTrait, DbErr, FromQueryResult};


use super::error::WindowError;
use crate::store::{count, fetch, instances::from_ms, stmt};

pub use crate::domain::return_rule::{Rate, ReturnRule};

#[derive(Debug, Clone, FromQueryResult)]
pub struct Suspension {
    pub id: String,
    pub officer: String,
    pub department: String,
    pub suspended_at: i64,
    pub own_errors: i64,
    pub intake: i64,
    pub reinstated_at: Option<i64>,
    pub reinstated_by: Option<String>,
    pub retraining: Option<String>,
}

async fn latest_suspension(db: &impl ConnectionTrait, officer: &str) -> Result<Option<Suspension>, DbErr> {
    let rows: Vec<Suspension> = fetch(
        db,
        "SELECT id, officer, department, suspended_at, own_errors, intake, reinstated_at, reinstated_by, retraining \
         FROM officer_suspensions WHERE officer = ? ORDER BY suspended_at DESC, id DESC LIMIT 1",
        vec![officer.into()],
    )
    .await?;
    Ok(rows.into_iter().next())
}

/// Whether the officer is suspended from intake now.
pub async fn is_suspended(db: &impl ConnectionTrait, officer: &str) -> Result<bool, DbErr> {
    Ok(latest_suspension(db, officer).await?.is_some_and(|s| s.reinstated_at.is_none()))
}

/// The officer's rate in the window, which opens no earlier than the last reinstatement.
pub async fn officer_rate(db: &impl ConnectionTrait, rule: &ReturnRule, officer: &str, now: DateTime<Utc>) -> Result<Rate, DbErr> {
    let mut since = now - Duration::days(rule.window_days);
    if let Some(reinstated) = latest_suspension(db, officer).await?.and_then(|s| s.reinstated_at) {
        since = since.max(from_ms(reinstated));
    }
    let ms = since.timestamp_millis();
    let opened = count(db, "SELECT COUNT(*) AS n FROM cases WHERE opened_by = ? AND created_at >= ?", vec![officer.into(), ms.into()]).await?;
    let returned = count(db, "SELECT COUNT(*) AS n FROM returns WHERE officer = ? AND created_at >= ?", vec![officer.into(), ms.into()]).await?;
    let own = count(db, "SELECT COUNT(*) AS n FROM returns WHERE officer = ? AND category = 'officer_error' AND created_at >= ?", vec![officer.into(), ms.into()]).await?;
    Ok(Rate { intake: opened + returned, returns: own, since })
}

/// The item's rate in the window, which opens no earlier than its current version.
pub async fn item_rate(db: &impl ConnectionTrait, rule: &ReturnRule, code: &str, version_since: DateTime<Utc>, now: DateTime<Utc>) -> Result<Rate, DbErr> {
    let since = (now - Duration::days(rule.window_days)).max(version_since);
    let ms = since.timestamp_millis();
    let opened = count(db, "SELECT COUNT(*) AS n FROM cases WHERE item_code = ? AND created_at >= ?", vec![code.into(), ms.into()]).await?;
    let returned = count(db, "SELECT COUNT(*) AS n FROM returns WHERE item_code = ? AND created_at >= ?", vec![code.into(), ms.into()]).await?;
    let blamed = count(db, "SELECT COUNT(*) AS n FROM returns WHERE item_code = ? AND category = 'item_misconfiguration' AND created_at >= ?", vec![code.into(), ms.into()]).await?;
    Ok(Rate { intake: opened + returned, returns: blamed, since })
}

/// Refuses intake by a suspended officer or on a flagged item version, saying why.
pub async fn gate(db: &impl ConnectionTrait, officer: &str, item_code: &str, item_version: i64) -> Result<(), WindowError> {
    if let Some(s) = latest_suspension(db, officer).await?.filter(|s| s.reinstated_at.is_none()) {
        return Err(WindowError::Refused { code: "FORBIDDEN", reason: crate::domain::reason::OFFICER_SUSPENDED, field: None, message: format!(
            "{officer} is suspended from intake since {} under the return rule ({} of {} applications returned for the officer's own error); a supervisor records retraining to reinstate",
            from_ms(s.suspended_at).format("%Y-%m-%d %H:%M UTC"),
            s.own_errors,
            s.intake
        ) });
    }
    let flagged = count(db, "SELECT COUNT(*) AS n FROM item_flags WHERE item_code = ? AND item_version = ?", vec![item_code.into(), item_version.into()]).await?;
    if flagged > 0 {
        return Err(WindowError::Refused { code: "FORBIDDEN", reason: crate::domain::reason::ITEM_FLAGGED, field: None, message: format!(
            "item {item_code} version {item_version} is flagged for re-configuration under the return rule: its department must put a corrected version first"
        ) });
    }
    Ok(())
}

/// After every act that changes the counts — a return, an intake — suspends the officer and
/// flags the item when the rule says so (once: an officer suspended, an item flagged, stays so).
pub async fn judge(
    db: &impl ConnectionTrait,
    rule: &ReturnRule,
    officer: &str,
    department: &str,
    item: (&str, i64, DateTime<Utc>),
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let rate = officer_rate(db, rule, officer, now).await?;
    if rate.breaches(rule) && !is_suspended(db, officer).await? {
        tracing::warn!(%officer, returns = rate.returns, intake = rate.intake, "window officer suspended under the return rule");
        db.execute_raw(stmt(
            db,
            "INSERT INTO officer_suspensions (id, officer, department, suspended_at, own_errors, intake) VALUES (?, ?, ?, ?, ?, ?)",
            vec![uuid::Uuid::now_v7().to_string().into(), officer.into(), department.into(), now.timestamp_millis().into(), rate.returns.into(), rate.intake.into()],
        ))
        .await?;
    }
    let (code, version, version_since) = item;
    let rate = item_rate(db, rule, code, version_since, now).await?;
    if rate.breaches(rule) {
        tracing::warn!(item = %code, version, returns = rate.returns, intake = rate.intake, "approval item flagged for re-configuration under the return rule");
        db.execute_raw(stmt(
            db,
            "INSERT INTO item_flags (id, item_code, item_version, flagged_at, misconfigured, intake) VALUES (?, ?, ?, ?, ?, ?) \
             ON CONFLICT (item_code, item_version) DO NOTHING",
            vec![uuid::Uuid::now_v7().to_string().into(), code.into(), version.into(), now.timestamp_millis().into(), rate.returns.into(), rate.intake.into()],
        ))
        .await?;
    }
    Ok(())
}

/// A supervisor records the officer's retraining: intake is open again, counted afresh.
pub async fn reinstate(db: &impl ConnectionTrait, officer: &str, by: &str, retraining: &str, now: DateTime<Utc>) -> Result<Suspension, WindowError> {
    let Some(s) = latest_suspension(db, officer).await?.filter(|s| s.reinstated_at.is_none()) else {
        return Err(WindowError::NotFound(format!("{officer} is not suspended")));
    };
    if retraining.trim().is_empty() {
        return Err(WindowError::BadInput { field: "retraining", message: "say what retraining was done".into() });
    }
    db.execute_raw(stmt(
        db,
        "UPDATE officer_suspensions SET reinstated_at = ?, reinstated_by = ?, retraining = ? WHERE id = ? AND reinstated_at IS NULL",
        vec![now.timestamp_millis().into(), by.into(), retraining.trim().into(), s.id.clone().into()],
    ))
    .await?;
    Ok(Suspension { reinstated_at: Some(now.timestamp_millis()), reinstated_by: Some(by.into()), retraining: Some(retraining.trim().into()), ..s })
}

/// Suspensions in force in these departments (all of them when `departments` is empty).
pub async fn suspended(db: &impl ConnectionTrait, departments: &[String]) -> Result<Vec<Suspension>, DbErr> {
    let mut sql = String::from(
        "SELECT id, officer, department, suspended_at, own_errors, intake, reinstated_at, reinstated_by, retraining \
         FROM officer_suspensions WHERE reinstated_at IS NULL",
    );
    if !departments.is_empty() {
        sql.push_str(&format!(" AND department IN ({})", vec!["?"; departments.len()].join(", ")));
    }
    sql.push_str(" ORDER BY suspended_at DESC");
    fetch(db, &sql, departments.iter().map(|d| d.clone().into()).collect()).await
}

#[derive(Debug, Clone, FromQueryResult)]
pub struct Flag {
    pub item_code: String,
    pub item_version: i64,
    pub flagged_at: i64,
    pub misconfigured: i64,
    pub intake: i64,
}

/// Items whose current version is flagged.
pub async fn flagged_items(db: &impl ConnectionTrait) -> Result<Vec<Flag>, DbErr> {
    fetch(
        db,
        "SELECT f.item_code, f.item_version, f.flagged_at, f.misconfigured, f.intake FROM item_flags f \
         WHERE f.item_version = (SELECT MAX(version) FROM approval_items a WHERE a.code = f.item_code) ORDER BY f.flagged_at DESC",
        vec![],
    )
    .await
}
