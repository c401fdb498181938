//! The acts of the ordinary procedure (一般程序, issue #19) beside opening a case and issuing
//! the licence: the acceptance decision, the correction received, the clock suspended and
//! resumed, the limit extended. Which states take them and what follows (notices, timers) is
//! `workflows/standard-review.toml`; these acts check what the definition cannot — the case is
//! of the ordinary procedure, the extension's days, the working days left when the clock stops —
//! and build the payload the transitions merge, so the case's timeline says who did what and why.

use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::ConnectionTrait;
use serde_json::json;

use super::due_process::fire;
use super::error::{bad, text, WindowError};
use super::intake::{case_row, end_of_working_day, CaseRow};
use crate::auth::Claims;
use crate::domain::definitions::MAX_EXTENSION_WORKING_DAYS;
use crate::runtime::Engine;
use crate::store::{self, instances, stmt, InstanceRecord};
use crate::workflow::Actor;

/// The longest correction period a list may give, in working days.
const MAX_CORRECTION_WORKING_DAYS: i64 = 30;
/// A correction period where the officer gives none.
const DEFAULT_CORRECTION_WORKING_DAYS: i64 = 5;

/// The acceptance decision (第三十二条).
#[derive(Debug, Clone, Copy, PartialEq, Eq, async_graphql::Enum)]
pub enum AcceptanceDecision {
    /// 受理: the legal clock starts.
    Accept,
    /// 不予受理, with its reasons.
    NotAccept,
    /// 一次性告知补正: everything to correct, in one list, with its period.
    RequestCorrection,
}

/// What does not count toward the legal limit (第四十五条).
#[derive(Debug, Clone, Copy, PartialEq, Eq, async_graphql::Enum)]
pub enum SuspensionKind {
    /// 听证.
    Hearing,
    /// 专家评审.
    ExpertReview,
    /// 现场核查 (检验、检测、检疫、鉴定).
    OnSiteCheck,
    /// 补正 during review.
    Correction,
}

impl SuspensionKind {
    fn code(self) -> &'static str {
        match self {
            Self::Hearing => "hearing",
            Self::ExpertReview => "expert_review",
            Self::OnSiteCheck => "on_site_check",
            Self::Correction => "correction",
        }
    }
    fn title(self) -> &'static str {
        match self {
            Self::Hearing => "举行听证",
            Self::ExpertReview => "组织专家评审",
            Self::OnSiteCheck => "进行现场核查",
            Self::Correction => "申请人补正材料",
        }
    }
}

/// One thing the applicant is to correct: the material it concerns (if any) and what is asked.
#[derive(Debug, Clone, async_graphql::InputObject)]
pub struct CorrectionItemInput {
    pub material_code: Option<String>,
    pub requirement: String,
}

/// The case, if it is the caller's department's and runs the ordinary procedure. The API has
/// checked the caller's scope before; this says what the act needs of the case itself.
async fn ordinary_case(engine: &Engine, caller: &Claims, id: &str) -> Result<CaseRow, WindowError> {
    let case = case_row(&engine.db, id).await?.ok_or_else(|| WindowError::NotFound(format!("no case {id}")))?;
    if caller.department.as_deref() != Some(case.department.as_str()) {
        return Err(WindowError::NotFound(format!("no case {id}")));
    }
    if case.mode != crate::window::catalogue::Mode::Ordinary.as_str() {
        return Err(WindowError::Invalid(format!("case {id} is a commitment case ({}): only the ordinary procedure has this act", case.mode)));
    }
    Ok(case)
}

fn today(engine: &Engine) -> NaiveDate {
    engine.now().with_timezone(&engine.workflows.env.tz).date_naive()
}

/// Accept, not accept (with reasons), or list everything to correct at once with its period.
pub async fn decide_acceptance(
    engine: &Engine,
    caller: &Claims,
    id: &str,
    decision: AcceptanceDecision,
    reason: Option<&str>,
    corrections: &[CorrectionItemInput],
    working_days: Option<i64>,
) -> Result<InstanceRecord, WindowError> {
    let case = ordinary_case(engine, caller, id).await?;
    let now = engine.now();
    if decision != AcceptanceDecision::RequestCorrection && (!corrections.is_empty() || working_days.is_some()) {
        return Err(bad("corrections", "a correction list and its period go with REQUEST_CORRECTION only"));
    }
    let (event, payload) = match decision {
        AcceptanceDecision::Accept => {
            let note = reason.map(|r| text("reason", r)).transpose()?;
            ("accept_application", json!({"acceptance": {"decision": "accept", "note": note, "by": caller.sub, "at": now}}))
        }
        AcceptanceDecision::NotAccept => {
            let reason = text("reason", reason.unwrap_or_default())?;
            ("not_accept", json!({"acceptance": {"decision": "not_accept", "reason": reason, "by": caller.sub, "at": now}}))
        }
        AcceptanceDecision::RequestCorrection => {
            if corrections.is_empty() {
                return Err(bad("corrections", "list everything the applicant is to correct, at once (一次性告知)"));
            }
            let days = working_days.unwrap_or(DEFAULT_CORRECTION_WORKING_DAYS);
            if !(1..=MAX_CORRECTION_WORKING_DAYS).contains(&days) {
                return Err(bad("workingDays", format!("a correction period is 1 to {MAX_CORRECTION_WORKING_DAYS} working days")));
            }
            let materials = store::fetch::<MaterialName>(&engine.db, "SELECT code, name FROM case_materials WHERE instance_id = ?", vec![id.into()]).await?;
            let mut items = Vec::new();
            for c in corrections {
                let requirement = text("corrections", &c.requirement)?;
                let material = match c.material_code.as_deref() {
                    None => None,
                    Some(code) => Some(
                        materials
                            .iter()
                            .find(|m| m.code == code)
                            .map(|m| format!("{}（{}）", m.name, m.code))
                            .ok_or_else(|| bad("corrections", format!("{code} is not a material of {}", case.item_code)))?,
                    ),
                };
                items.push(json!({"material": material, "material_code": c.material_code, "requirement": requirement}));
            }
            let note = reason.map(|r| text("reason", r)).transpose()?;
            ("request_correction", json!({"correction": {"items": items, "working_days": days, "note": note, "by": caller.sub, "at": now}}))
        }
    };
    fire(engine, caller, "decideAcceptance", id, event, payload).await
}

#[derive(sea_orm::FromQueryResult)]
struct MaterialName {
    code: String,
    name: String,
}

/// The applicant's corrections are in: the case is before the acceptance decision again.
pub async fn receive_correction(engine: &Engine, caller: &Claims, id: &str, file_ref: &str) -> Result<InstanceRecord, WindowError> {
    ordinary_case(engine, caller, id).await?;
    let file_ref = text("fileRef", file_ref)?;
    let now = engine.now();
    let txn = store::begin_write(&engine.db).await?;
    // Materials not given at the window are in with the corrections.
    txn.execute_raw(stmt(
        &txn,
        "UPDATE case_materials SET status = 'received', file_ref = ?, received_by = ?, received_at = ? WHERE instance_id = ? AND status = 'missing'",
        vec![file_ref.clone().into(), caller.sub.clone().into(), now.timestamp_millis().into(), id.into()],
    ))
    .await?;
    let actor = Actor::act(caller.sub.clone(), caller.roles.clone(), "receiveCorrection");
    let payload = json!({"corrected": {"file_ref": file_ref, "by": caller.sub, "at": now}});
    let fired = instances::fire(&txn, &engine.workflows, id, "correction_received", &actor, &payload, None, now).await?;
    txn.commit().await?;
    Ok(fired.instance)
}

/// The legal limit now on the case.
async fn legal_due(engine: &Engine, id: &str) -> Result<DateTime<Utc>, WindowError> {
    let instance = instances::load(&engine.db, id).await?;
    instance.deadlines.get("legal_due").copied().ok_or_else(|| WindowError::Invalid(format!("case {id} is not under review: it has no legal limit yet")))
}

/// Stops the legal clock: what is left of the limit is kept with the case, to resume with.
pub async fn suspend(engine: &Engine, caller: &Claims, id: &str, kind: SuspensionKind, reason: &str) -> Result<InstanceRecord, WindowError> {
    ordinary_case(engine, caller, id).await?;
    let reason = text("reason", reason)?;
    let due = legal_due(engine, id).await?;
    let tz = engine.workflows.env.tz;
    let left = engine.workflows.env.calendar.get().working_days_between(today(engine), due.with_timezone(&tz).date_naive()).map_err(|e| WindowError::Invalid(e.to_string()))?;
    let payload = json!({"suspension": {
        "kind": kind.code(), "kind_title": kind.title(), "reason": reason, "by": caller.sub, "at": engine.now(),
        "since": crate::domain::calendar::local_text(engine.now(), tz), "working_days_left": left,
    }});
    fire(engine, caller, "suspendReview", id, "suspend", payload).await
}

/// Starts the clock again with the working days that were left when it stopped (at least the
/// day it resumes on): the limit moves by exactly the working days the suspension took.
pub async fn resume(engine: &Engine, caller: &Claims, id: &str, note: Option<&str>) -> Result<InstanceRecord, WindowError> {
    ordinary_case(engine, caller, id).await?;
    let note = note.map(|n| text("note", n)).transpose()?;
    let instance = instances::load(&engine.db, id).await?;
    if instance.state != "suspended" {
        return Err(WindowError::Invalid(format!("the case is {}: only a suspended review resumes", instance.state)));
    }
    let left = instance.context["suspension"]["working_days_left"].as_i64().unwrap_or(0).max(1);
    let (due, _) = end_of_working_day(&engine.workflows.env, today(engine), left).map_err(WindowError::Invalid)?;
    let payload = json!({"legal_due": due.to_rfc3339(), "resumed": {"note": note, "by": caller.sub, "at": engine.now(), "working_days_left": left}});
    fire(engine, caller, "resumeReview", id, "resume", payload).await
}

/// The head of the department extends the limit once, by up to ten working days counted on from
/// the limit as it stands (第四十二条).
pub async fn extend(engine: &Engine, caller: &Claims, id: &str, working_days: i64, reason: &str) -> Result<InstanceRecord, WindowError> {
    ordinary_case(engine, caller, id).await?;
    let reason = text("reason", reason)?;
    if !(1..=MAX_EXTENSION_WORKING_DAYS).contains(&working_days) {
        return Err(bad("workingDays", format!("an extension is 1 to {MAX_EXTENSION_WORKING_DAYS} working days")));
    }
    let due = legal_due(engine, id).await?;
    let tz = engine.workflows.env.tz;
    let (extended, _) = end_of_working_day(&engine.workflows.env, due.with_timezone(&tz).date_naive(), working_days).map_err(WindowError::Invalid)?;
    let payload = json!({"legal_due": extended.to_rfc3339(), "extension": {"working_days": working_days, "reason": reason, "by": caller.sub, "at": engine.now(), "from": due}});
    fire(engine, caller, "extendTimeLimit", id, "extend", payload).await
}
