//! When the official calendar for a year is loaded, timers that were counted over that year's
//! provisional (statutory-holiday) calendar are recomputed. A later due time is applied and
//! audited — a deadline as a `deadline_extended` event with the applicant told its true old and
//! new dates, a reminder as a `reminder_recounted` event told to nobody; an earlier one is never
//! applied (the deadline may already have been communicated), only the mark is cleared.

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, EntityTrait, FromQueryResult, QueryFilter};
use serde_json::json;

use super::entities::{event, timer};
use super::instances::{self, from_ms, timer_status, StoreError, Workflows};
use super::{begin_write, stmt};
use crate::workflow::{engine::Outcome, vocabulary::{Channel, Effect}, Actor};

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ConfirmReport {
    /// Later on the official calendar: moved, audited, applicant told.
    pub extended: usize,
    /// Same or earlier on the official calendar: kept as communicated.
    pub kept: usize,
    /// Still counted over a provisional year.
    pub still_provisional: usize,
}

/// Recomputes every provisional deadline, then every pending provisional timer, whose years
/// are now all official.
pub async fn confirm(db: &DatabaseConnection, wf: &Workflows, now: DateTime<Utc>) -> Result<ConfirmReport, StoreError> {
    let mut report = ConfirmReport::default();
    let rows = db
        .query_all_raw(stmt(db, "SELECT instance_id, name, from_date, working_days, time_of_day FROM provisional_deadlines", vec![]))
        .await?;
    for row in rows {
        let d = DeadlineBasis::from_query_result(&row, "")?;
        let txn = begin_write(db).await?;
        let outcome = confirm_deadline(&txn, wf, &d, now).await;
        finish(txn, outcome, &mut report).await?;
    }
    let pending = timer::Entity::find()
        .filter(timer::Column::Provisional.eq(1))
        .filter(timer::Column::Status.eq(timer_status::PENDING))
        .all(db)
        .await?;
    for t in pending {
        let txn = begin_write(db).await?;
        let outcome = confirm_one(&txn, wf, &t, now).await;
        finish(txn, outcome, &mut report).await?;
    }
    Ok(report)
}

/// Commits what was confirmed (or drops it while still provisional, or on error) and counts it.
async fn finish(txn: sea_orm::DatabaseTransaction, outcome: Result<Confirmed, StoreError>, report: &mut ConfirmReport) -> Result<(), StoreError> {
    match outcome {
        Ok(Confirmed::StillProvisional) => {
            txn.rollback().await?;
            report.still_provisional += 1;
        }
        Ok(c) => {
            txn.commit().await?;
            if c == Confirmed::Extended {
                report.extended += 1;
            } else {
                report.kept += 1;
            }
        }
        Err(e) => {
            txn.rollback().await?;
            return Err(e);
        }
    }
    Ok(())
}

/// A recount recorded on an instance that stays in its state: its one audit event, with what
/// the recount changed (context, deadlines, timers) and who is told.
fn recount(current: &instances::InstanceRecord, event: &str, context: serde_json::Value, arm: Vec<crate::workflow::engine::ArmTimer>, effects: Vec<Effect>, deadlines: Option<std::collections::BTreeMap<String, DateTime<Utc>>>) -> Outcome {
    Outcome {
        event: event.into(),
        from: Some(current.state.clone()),
        to: current.state.clone(),
        left_state: false,
        context,
        arm,
        effects,
        deadlines,
        counted: Vec::new(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Confirmed {
    Extended,
    Kept,
    StillProvisional,
}

async fn confirm_one(db: &DatabaseTransaction, wf: &Workflows, t: &timer::Model, now: DateTime<Utc>) -> Result<Confirmed, StoreError> {
    let model = instances::load_model(db, &t.instance_id).await?;
    let def = wf.set.get(&model.definition_name, model.definition_version).ok_or_else(|| StoreError::UnknownDefinition {
        name: model.definition_name.clone(),
        version: Some(model.definition_version),
    })?;
    let spec = def
        .states
        .get(&t.state)
        .and_then(|s| s.timers.iter().find(|s| s.name == t.name))
        .ok_or_else(|| StoreError::Corrupt(format!("timer {} names no timer of state {}", t.name, t.state)))?;
    let armed = event::Entity::find_by_id((t.instance_id.clone(), t.armed_seq))
        .one(db)
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("timer {} was armed by a missing event", t.id)))?;
    let current: instances::InstanceRecord = model.clone().try_into()?;
    let entered = from_ms(armed.occurred_at);
    let deadline = |n: &str| current.deadlines.get(n).copied();
    let env = &wf.env;
    let due = spec.due_at(entered, deadline, &env.calendar.get(), env.tz).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    if spec.is_provisional(entered, deadline, due, &env.calendar.get(), env.tz) {
        return Ok(Confirmed::StillProvisional);
    }
    let was = from_ms(t.due_at);
    let later = due > was;
    let new_due = if later { due } else { was };
    db.execute_raw(stmt(
        db,
        "UPDATE workflow_timers SET provisional = 0, due_at = ? WHERE id = ? AND status = 'pending'",
        vec![new_due.timestamp_millis().into(), t.id.clone().into()],
    ))
    .await?;
    if !later {
        return Ok(Confirmed::Kept);
    }
    // A timer whose transition ends the state is a deadline (a supply run out, a limit); one whose
    // transition is internal only reminds or notifies: it moves with the audit event, and nobody
    // is told a deadline moved when none did.
    let ends = def.transition(&t.state, &t.event, &current.context).is_some_and(|tr| tr.to.is_some());
    // A case's own deadlines are the applicant's to know; a task's limits are the division's.
    let effects = if ends && current.context.get("applicant").is_some() {
        vec![Effect::Deliver { channel: Channel::Email, recipient: "applicant".into(), topic: "deadline_extended".into() }]
    } else {
        Vec::new()
    };
    let local = |t| crate::domain::calendar::local_text(t, env.tz);
    let payload = json!({
        "timer": t.name, "event": t.event, "was": was, "now": due,
        "was_local": local(was), "now_local": local(due), "reason": "official calendar loaded",
    });
    let outcome = recount(&current, if ends { "deadline_extended" } else { "reminder_recounted" }, current.context.clone(), Vec::new(), effects, None);
    instances::apply(db, wf, model, def.clone(), current, outcome, &Actor::system(), &payload, now).await?;
    Ok(Confirmed::Extended)
}

/// How a deadline was counted: `working_days` after `from_date`, at `time_of_day`.
#[derive(Debug, Clone, FromQueryResult)]
struct DeadlineBasis {
    instance_id: String,
    name: String,
    from_date: String,
    working_days: i64,
    time_of_day: String,
}

/// Recounts one deadline on the calendar on file. Later: the deadline moves, the timers
/// anchored on it are re-armed from it, one `deadline_extended` event, the applicant told.
async fn confirm_deadline(db: &DatabaseTransaction, wf: &Workflows, d: &DeadlineBasis, now: DateTime<Utc>) -> Result<Confirmed, StoreError> {
    use chrono::{NaiveDate, NaiveTime};
    let env = &wf.env;
    let corrupt = |what: &str| StoreError::Corrupt(format!("provisional deadline {} of {}: {what}", d.name, d.instance_id));
    let from = NaiveDate::parse_from_str(&d.from_date, "%Y-%m-%d").map_err(|_| corrupt("from_date"))?;
    let time = NaiveTime::parse_from_str(&d.time_of_day, "%H:%M").map_err(|_| corrupt("time_of_day"))?;
    let day = env.calendar.get().add_working_days(from, d.working_days).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    if env.calendar.get().is_provisional_between(from, day) {
        return Ok(Confirmed::StillProvisional);
    }
    let due = crate::domain::calendar::local_instant(day, time, env.tz).ok_or_else(|| corrupt("no such local time"))?;
    db.execute_raw(stmt(db, "DELETE FROM provisional_deadlines WHERE instance_id = ? AND name = ?", vec![d.instance_id.clone().into(), d.name.clone().into()]))
        .await?;
    let model = instances::load_model(db, &d.instance_id).await?;
    let mut current: instances::InstanceRecord = model.clone().try_into()?;
    let was = current.deadlines.get(&d.name).copied().ok_or_else(|| corrupt("the instance has no such deadline"))?;
    let def = wf.set.get(&model.definition_name, model.definition_version).ok_or_else(|| StoreError::UnknownDefinition {
        name: model.definition_name.clone(),
        version: Some(model.definition_version),
    })?;
    if due <= was {
        // Kept as told: the mark the letter and the reminders read is cleared, with its event.
        let marked = current.context["provisional_deadlines"].as_array().is_some_and(|l| l.iter().any(|n| n == d.name.as_str()));
        if marked {
            let mut context = current.context.clone();
            if let Some(list) = context.get_mut("provisional_deadlines").and_then(|v| v.as_array_mut()) {
                list.retain(|n| n != d.name.as_str());
            }
            let outcome = recount(&current, "deadline_confirmed", context, Vec::new(), Vec::new(), None);
            let payload = json!({"deadline": d.name, "at": was, "reason": "official calendar loaded"});
            instances::apply(db, wf, model, def.clone(), current, outcome, &Actor::system(), &payload, now).await?;
        }
        return Ok(Confirmed::Kept);
    }
    current.deadlines.insert(d.name.clone(), due);
    // Re-arm the pending timers of the current state that count from this deadline.
    let anchored: Vec<_> = def
        .states
        .get(&current.state)
        .map(|s| s.timers.iter().filter(|t| t.anchor == crate::workflow::timing::Anchor::Deadline(d.name.clone())).collect())
        .unwrap_or_default();
    let mut arm = Vec::new();
    for spec in anchored {
        let cancelled = db
            .execute_raw(stmt(
                db,
                "UPDATE workflow_timers SET status = ?, settled_at = ? WHERE instance_id = ? AND state = ? AND name = ? AND status = ?",
                vec![
                    timer_status::CANCELLED.into(),
                    now.timestamp_millis().into(),
                    d.instance_id.clone().into(),
                    current.state.clone().into(),
                    spec.name.clone().into(),
                    timer_status::PENDING.into(),
                ],
            ))
            .await?;
        if cancelled.rows_affected() == 0 {
            continue; // already fired: nothing to move
        }
        let at = spec.due_at(now, |n| current.deadlines.get(n).copied(), &env.calendar.get(), env.tz).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let provisional = spec.is_provisional(now, |n| current.deadlines.get(n).copied(), at, &env.calendar.get(), env.tz);
        arm.push(crate::workflow::engine::ArmTimer { name: spec.name.clone(), event: spec.fire.clone(), state: current.state.clone(), due_at: at, provisional });
    }
    let local = |t| crate::domain::calendar::local_text(t, env.tz);
    let payload = json!({
        "deadline": d.name, "was": was, "now": due, "was_local": local(was), "now_local": local(due), "reason": "official calendar loaded",
    });
    let mut context = current.context.clone();
    if let Some(list) = context.get_mut("provisional_deadlines").and_then(|v| v.as_array_mut()) {
        list.retain(|n| n != d.name.as_str());
    }
    let told = vec![Effect::Deliver { channel: Channel::Email, recipient: "applicant".into(), topic: "deadline_extended".into() }];
    let outcome = recount(&current, "deadline_extended", context, arm, told, Some(current.deadlines.clone()));
    instances::apply(db, wf, model, def.clone(), current, outcome, &Actor::system(), &payload, now).await?;
    Ok(Confirmed::Extended)
}

/// (instance, name) of the deadlines of `instances` still counted over a provisional year, in one query.
pub async fn deadlines_of_all(db: &impl ConnectionTrait, instances: &[String]) -> Result<Vec<(String, String)>, sea_orm::DbErr> {
    #[derive(FromQueryResult)]
    struct Row {
        instance_id: String,
        name: String,
    }
    if instances.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!("SELECT instance_id, name FROM provisional_deadlines WHERE instance_id IN ({}) ORDER BY instance_id, name", vec!["?"; instances.len()].join(", "));
    let rows: Vec<Row> = super::fetch(db, &sql, instances.iter().map(|i| i.clone().into()).collect()).await?;
    Ok(rows.into_iter().map(|r| (r.instance_id, r.name)).collect())
}

