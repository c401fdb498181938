//! The 15% return rule (seed 002 item 66: 窗口退件率): per window officer, returns for the
//! officer's own error over applications taken in (cases opened and applications returned) in
//! a rolling window; at or above the threshold, with enough applications to judge by, the
//! officer is suspended from intake until a supervisor records retraining. Per approval item,
//! returns blamed on its configuration flag the item — which stays open to the public: its
//! department's approvers get a re-examination (`item-reexamination`), the department and the
//! supervisors are told, the department is scored; the flag clears when an approver records the
//! re-examination or a new version is put. Counted in the database and judged at every act that
//! changes the counts (a return, an intake); the officer's suspension checked at every intake act.

use chrono::{DateTime, Duration, Utc};
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbErr, FromQueryResult};


use serde_json::json;

use super::error::WindowError;
use crate::store::{count, fetch, instances::{self, from_ms, Workflows}, stmt};
use crate::workflow::Actor;

/// The definition of an item's re-examination.
pub const REEXAMINATION: &str = "item-reexamination";

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

/// Refuses intake by a suspended officer, saying why. A flagged item is never refused: the
/// public is not turned away for the department's configuration (seed 002 item 66).
pub async fn gate(db: &impl ConnectionTrait, officer: &str) -> Result<(), WindowError> {
    if let Some(s) = latest_suspension(db, officer).await?.filter(|s| s.reinstated_at.is_none()) {
        return Err(WindowError::Refused { code: "FORBIDDEN", reason: crate::domain::reason::OFFICER_SUSPENDED, field: None, message: format!(
            "{officer} is suspended from intake since {} under the return rule ({} of {} applications returned for the officer's own error); a supervisor records retraining to reinstate",
            from_ms(s.suspended_at).format("%Y-%m-%d %H:%M UTC"),
            s.own_errors,
            s.intake
        ) });
    }
    Ok(())
}

/// The item an act judges: code, version, name, department and when the version was put.
pub struct JudgedItem<'a> {
    pub code: &'a str,
    pub version: i64,
    pub name: &'a str,
    pub department: &'a str,
    pub since: DateTime<Utc>,
}

/// After every act that changes the counts — a return, an intake — suspends the officer and
/// flags the item when the rule says so (once: an officer suspended, an item version flagged,
/// stays so until reinstated or cleared). Flagging starts the item's re-examination for its
/// department and writes the department's score record, in the act's transaction.
pub async fn judge(db: &DatabaseTransaction, wf: &Workflows, officer: &str, item: &JudgedItem<'_>, now: DateTime<Utc>) -> Result<(), WindowError> {
    let rule = &wf.returns;
    let rate = officer_rate(db, rule, officer, now).await?;
    if rate.breaches(rule) && !is_suspended(db, officer).await? {
        tracing::warn!(%officer, returns = rate.returns, intake = rate.intake, "window officer suspended under the return rule");
        db.execute_raw(stmt(
            db,
            "INSERT INTO officer_suspensions (id, officer, department, suspended_at, own_errors, intake) VALUES (?, ?, ?, ?, ?, ?)",
            vec![uuid::Uuid::now_v7().to_string().into(), officer.into(), item.department.into(), now.timestamp_millis().into(), rate.returns.into(), rate.intake.into()],
        ))
        .await?;
    }
    let rate = item_rate(db, rule, item.code, item.since, now).await?;
    if !rate.breaches(rule) {
        return Ok(());
    }
    let flag_id = uuid::Uuid::now_v7().to_string();
    let inserted = db
        .execute_raw(stmt(
            db,
            "INSERT INTO item_flags (id, item_code, item_version, flagged_at, misconfigured, intake, department) VALUES (?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (item_code, item_version) DO NOTHING",
            vec![flag_id.clone().into(), item.code.into(), item.version.into(), now.timestamp_millis().into(), rate.returns.into(), rate.intake.into(), item.department.into()],
        ))
        .await?
        .rows_affected();
    if inserted == 0 {
        return Ok(());
    }
    tracing::warn!(item = %item.code, version = item.version, returns = rate.returns, intake = rate.intake, "approval item flagged for re-examination under the return rule");
    #[derive(FromQueryResult)]
    struct Blamed {
        id: String,
        officer: String,
        reason: String,
        created_at: i64,
    }
    let blamed: Vec<Blamed> = fetch(
        db,
        "SELECT id, officer, reason, created_at FROM returns WHERE item_code = ? AND category = 'item_misconfiguration' AND created_at >= ? ORDER BY created_at",
        vec![item.code.into(), rate.since.timestamp_millis().into()],
    )
    .await?;
    let region = super::registry::department(db, item.department).await?.map(|d| d.region);
    let context = json!({
        "scope": {"region": region, "department": item.department},
        "item": {"code": item.code, "name": item.name, "version": item.version, "misconfigured": rate.returns, "intake": rate.intake},
        "flag": {"id": flag_id, "flagged_at": now, "threshold": rule.threshold},
        "returns": blamed.iter().map(|b| json!({"id": b.id, "officer": b.officer, "reason": b.reason, "at": from_ms(b.created_at)})).collect::<Vec<_>>(),
    });
    let started = instances::start(db, wf, REEXAMINATION, context, Default::default(), &Actor::system(), None, now).await?;
    db.execute_raw(stmt(db, "UPDATE item_flags SET reexamination_id = ? WHERE id = ?", vec![started.id.clone().into(), flag_id.into()])).await?;
    db.execute_raw(stmt(
        db,
        "INSERT INTO department_scores (id, department, item_code, item_version, deduction, reason, created_at) VALUES (?, ?, ?, ?, 1, ?, ?)",
        vec![
            uuid::Uuid::now_v7().to_string().into(),
            item.department.into(),
            item.code.into(),
            item.version.into(),
            format!("退件率：{} 件事项配置原因退件 / 受理 {} 件", rate.returns, rate.intake).into(),
            now.timestamp_millis().into(),
        ],
    ))
    .await?;
    Ok(())
}

/// An approver of the item's department records the re-examination of its flagged version:
/// the re-examination ends and the flag clears. NotFound when the item has no open flag.
pub async fn record_reexamination(db: &DatabaseTransaction, wf: &Workflows, item_code: &str, actor: &Actor, findings: &str, now: DateTime<Utc>) -> Result<String, WindowError> {
    let findings = findings.trim();
    if findings.is_empty() {
        return Err(WindowError::BadInput { field: "findings", message: "say what the re-examination found and changed".into() });
    }
    let Some(flag) = open_flags(db, item_code).await?.into_iter().next() else {
        return Err(WindowError::NotFound(format!("item {item_code} has no flag to re-examine")));
    };
    let payload = json!({"reexamination": {"findings": findings, "by": actor.subject, "at": now}});
    if let Some(id) = &flag.reexamination_id {
        instances::fire(db, wf, id, "reexamined", actor, &payload, None, now).await?;
    }
    clear(db, &flag.id, &actor.subject, "reexamined", now).await?;
    Ok(flag.id)
}

/// A new version of the item is put: every open flag of its older versions clears and their
/// re-examinations end as superseded.
pub async fn supersede(db: &DatabaseTransaction, wf: &Workflows, item_code: &str, version: i64, by: &str, now: DateTime<Utc>) -> Result<(), WindowError> {
    for flag in open_flags(db, item_code).await?.into_iter().filter(|f| f.item_version < version) {
        if let Some(id) = &flag.reexamination_id {
            instances::fire(db, wf, id, "superseded", &Actor::system(), &json!({"version": version, "by": by}), None, now).await?;
        }
        clear(db, &flag.id, by, "new_version", now).await?;
    }
    Ok(())
}

#[derive(Debug, Clone, FromQueryResult)]
struct OpenFlag {
    id: String,
    item_version: i64,
    reexamination_id: Option<String>,
}

async fn open_flags(db: &impl ConnectionTrait, item_code: &str) -> Result<Vec<OpenFlag>, DbErr> {
    fetch(db, "SELECT id, item_version, reexamination_id FROM item_flags WHERE item_code = ? AND cleared_at IS NULL ORDER BY item_version DESC", vec![item_code.into()]).await
}

async fn clear(db: &impl ConnectionTrait, id: &str, by: &str, how: &str, now: DateTime<Utc>) -> Result<(), DbErr> {
    db.execute_raw(stmt(
        db,
        "UPDATE item_flags SET cleared_at = ?, cleared_by = ?, cleared_how = ? WHERE id = ? AND cleared_at IS NULL",
        vec![now.timestamp_millis().into(), by.into(), how.into(), id.into()],
    ))
    .await?;
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
    pub department: Option<String>,
    pub flagged_at: i64,
    pub misconfigured: i64,
    pub intake: i64,
    pub reexamination_id: Option<String>,
}

/// Items with a flag not yet cleared (by a recorded re-examination or a new version).
pub async fn flagged_items(db: &impl ConnectionTrait) -> Result<Vec<Flag>, DbErr> {
    fetch(
        db,
        "SELECT item_code, item_version, department, flagged_at, misconfigured, intake, reexamination_id FROM item_flags \
         WHERE cleared_at IS NULL ORDER BY flagged_at DESC",
        vec![],
    )
    .await
}
