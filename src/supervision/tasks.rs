//! The acts on a supervision task, checked against what the task holds: the division admin
//! assigns inspectors of the division; an assigned inspector records an inspection with a
//! finding for every condition the applicant promised; the result is fed back (kept, or a
//! rectification order with the item's period in working days); a re-inspection settles it.
//! Each act is one event on the task's workflow, so one audit event.

use chrono::NaiveDate;
use sea_orm::ConnectionTrait;
use serde::Serialize;
use serde_json::{json, Value};

use crate::auth::Claims;
use crate::runtime::Engine;
use crate::store::{self, instances, stmt, InstanceRecord};
use crate::window::intake::{end_of_working_day, WindowError};
use crate::workflow::Actor;

pub const DEFINITION: &str = crate::domain::definitions::SUPERVISION_TASK;

/// A condition of the licence as the inspector found it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, async_graphql::InputObject)]
#[graphql(name = "FindingInput")]
pub struct Finding {
    /// One of the item's licence conditions, word for word.
    pub condition: String,
    pub kept: bool,
    pub note: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, async_graphql::Enum)]
#[serde(rename_all = "snake_case")]
pub enum InspectionResult {
    Kept,
    NotKept,
}

/// What an inspector saw on one visit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    pub inspected_on: NaiveDate,
    pub findings: Vec<Finding>,
    /// References to photographs, records, documents kept elsewhere.
    pub evidence: Vec<String>,
    pub note: Option<String>,
}

fn bad(field: &'static str, message: impl Into<String>) -> WindowError {
    WindowError::BadInput { field, message: message.into() }
}

fn actor(claims: &Claims, act: &'static str) -> Actor {
    Actor::act(claims.sub.clone(), claims.roles.clone(), act)
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect()).unwrap_or_default()
}

async fn task(engine: &Engine, id: &str, state: &[&str]) -> Result<InstanceRecord, WindowError> {
    let task = engine.instance(id).await?.filter(|t| t.definition_name == DEFINITION).ok_or_else(|| WindowError::NotFound(format!("no supervision task {id}")))?;
    if !state.contains(&task.state.as_str()) {
        return Err(WindowError::Invalid(format!("the task is {}: this is done when it is {}", task.state, state.join(" or "))));
    }
    Ok(task)
}

/// The conditions promised on the case behind the task (none for a case opened before they
/// were kept in the case: then any named condition is taken).
fn conditions(task: &InstanceRecord) -> Vec<String> {
    strings(&task.context["parent"]["context"]["item"]["conditions"])
}

/// Fires `event` for the typed act `act` (the event policy reaches the event only through it).
async fn fire(engine: &Engine, act: &'static str, id: &str, event: &str, claims: &Claims, payload: Value, version: i64) -> Result<InstanceRecord, WindowError> {
    let txn = store::begin_write(&engine.db).await?;
    match instances::fire(&txn, &engine.workflows, id, event, &actor(claims, act), &payload, Some(version), engine.now()).await {
        Ok(r) => {
            txn.commit().await?;
            Ok(r.instance)
        }
        Err(e) => {
            txn.rollback().await?;
            Err(e.into())
        }
    }
}

/// The division admin assigns inspectors (active staff of the task's division with the inspector role).
pub async fn assign(engine: &Engine, claims: &Claims, id: &str, inspectors: &[String]) -> Result<InstanceRecord, WindowError> {
    let task = task(engine, id, &["notified"]).await?;
    if inspectors.is_empty() {
        return Err(bad("inspectors", "assign at least one inspector"));
    }
    let division = task.scope.division.clone().unwrap_or_default();
    let available = super::draws::inspectors(&engine.db, &division).await?;
    if let Some(unknown) = inspectors.iter().find(|i| !available.contains(i)) {
        return Err(bad("inspectors", format!("{unknown} is not an active inspector of division {division}")));
    }
    let mut unique = inspectors.to_vec();
    unique.sort();
    unique.dedup();
    fire(engine, "assignInspectors", id, "accept", claims, json!({"inspectors": unique, "accepted_by": claims.sub}), task.version).await
}

/// Checks a visit's record against the task: one finding per promised condition, a date
/// neither in the future nor before the task existed. Returns the payload to store.
fn inspection_payload(engine: &Engine, claims: &Claims, task: &InstanceRecord, i: &Inspection) -> Result<(Value, bool), WindowError> {
    if !strings(&task.context["inspectors"]).contains(&claims.sub) {
        return Err(WindowError::Refused { code: "FORBIDDEN", reason: crate::domain::reason::NOT_ASSIGNED, field: None, message: format!("{} is not assigned to this task", claims.sub) });
    }
    let tz = engine.workflows.env.tz;
    let today = engine.now().with_timezone(&tz).date_naive();
    if i.inspected_on > today {
        return Err(bad("inspectedOn", format!("{} is in the future", i.inspected_on)));
    }
    if i.inspected_on < task.created_at.with_timezone(&tz).date_naive() {
        return Err(bad("inspectedOn", format!("{} is before the task was created", i.inspected_on)));
    }
    if i.findings.is_empty() {
        return Err(bad("findings", "record a finding for each condition"));
    }
    let promised = conditions(task);
    for (n, f) in i.findings.iter().enumerate() {
        if f.condition.trim().is_empty() {
            return Err(bad("findings", format!("finding {} names no condition", n + 1)));
        }
        if !promised.is_empty() && !promised.contains(&f.condition) {
            return Err(bad("findings", format!("{:?} is not a condition of this licence (they are: {})", f.condition, promised.join("；"))));
        }
        if i.findings[..n].iter().any(|g| g.condition == f.condition) {
            return Err(bad("findings", format!("{:?} is recorded twice", f.condition)));
        }
        if !f.kept && f.note.as_deref().is_none_or(|s| s.trim().is_empty()) {
            return Err(bad("findings", format!("say what was found for {:?}, which is not kept", f.condition)));
        }
    }
    if let Some(missing) = promised.iter().find(|c| !i.findings.iter().any(|f| &f.condition == *c)) {
        return Err(bad("findings", format!("no finding for {missing:?}")));
    }
    if i.evidence.iter().any(|e| e.trim().is_empty()) {
        return Err(bad("evidence", "an evidence reference is empty"));
    }
    let kept = i.findings.iter().all(|f| f.kept);
    let result = if kept { InspectionResult::Kept } else { InspectionResult::NotKept };
    let record = json!({
        "inspected_on": i.inspected_on, "inspected_by": claims.sub, "findings": i.findings,
        "evidence": i.evidence, "note": i.note, "result": result,
    });
    Ok((record, kept))
}

/// An assigned inspector records the inspection: the task then waits for the result to be fed back.
pub async fn record_inspection(engine: &Engine, claims: &Claims, id: &str, i: &Inspection) -> Result<InstanceRecord, WindowError> {
    let task = task(engine, id, &["inspecting"]).await?;
    let (record, _) = inspection_payload(engine, claims, &task, i)?;
    let payload = json!({"findings": record["findings"], "inspection": record});
    fire(engine, "recordInspection", id, "inspection_finished", claims, payload, task.version).await
}

/// Feeds the recorded result back: kept closes the task; not kept orders rectification by the
/// item's period (working days from today, to the end of the office day), sent to the applicant.
pub async fn feed_back(engine: &Engine, claims: &Claims, id: &str, order: Option<&str>) -> Result<InstanceRecord, WindowError> {
    let task = task(engine, id, &["awaiting_feedback"]).await?;
    let kept = task.context["inspection"]["result"] == "kept";
    if kept {
        if order.is_some() {
            return Err(bad("rectificationOrder", "the inspection found every condition kept: nothing to rectify"));
        }
        return fire(engine, "feedBackInspection", id, "kept", claims, json!({"fed_back_by": claims.sub}), task.version).await;
    }
    let order = order.map(str::trim).filter(|o| !o.is_empty()).ok_or_else(|| bad("rectificationOrder", "a condition was not kept: say what must be rectified"))?;
    let days = task.context["parent"]["context"]["supervision"]["rectification_working_days"].as_i64().unwrap_or(40);
    let env = &engine.workflows.env;
    let now = engine.now();
    let today = now.with_timezone(&env.tz).date_naive();
    let (due, provisional) = end_of_working_day(env, today, days).map_err(|m| bad("rectificationOrder", m))?;
    let payload = json!({
        "fed_back_by": claims.sub, "rectification_order": order, "rectification_working_days": days,
        "rectification_due": due.to_rfc3339(),
    });
    let txn = store::begin_write(&engine.db).await?;
    let fired = instances::fire(&txn, &engine.workflows, id, "not_kept", &actor(claims, "feedBackInspection"), &payload, Some(task.version), now).await;
    let fired = match fired {
        Ok(f) => f,
        Err(e) => {
            txn.rollback().await?;
            return Err(e.into());
        }
    };
    if provisional {
        txn.execute_raw(stmt(
            &txn,
            "INSERT INTO provisional_deadlines (instance_id, name, from_date, working_days, time_of_day) VALUES (?, 'rectification_due', ?, ?, '17:30')",
            vec![id.into(), today.to_string().into(), days.into()],
        ))
        .await?;
    }
    txn.commit().await?;
    Ok(fired.instance)
}

/// The re-inspection after a rectification order: every condition kept closes the task as
/// fulfilled; anything still failing recommends revocation to the approving department.
pub async fn record_reinspection(engine: &Engine, claims: &Claims, id: &str, i: &Inspection) -> Result<InstanceRecord, WindowError> {
    let task = task(engine, id, &["rectifying"]).await?;
    let (record, kept) = inspection_payload(engine, claims, &task, i)?;
    if kept {
        return fire(engine, "recordReinspection", id, "rectified", claims, json!({"reinspection": record}), task.version).await;
    }
    let failing: Vec<&str> = i.findings.iter().filter(|f| !f.kept).map(|f| f.condition.as_str()).collect();
    let reason = format!("复查仍不符合承诺：{}", failing.join("；"));
    fire(engine, "recordReinspection", id, "still_failing", claims, json!({"reinspection": record, "reason": reason}), task.version).await
}
