//! When the official calendar for a year is loaded, timers that were counted over that year's
//! provisional (statutory-holiday) calendar are recomputed. A later due time is applied, audited
//! as a `deadline_extended` event, and the applicant is told; an earlier one is never applied
//! (the deadline may already have been communicated), only the mark is cleared.

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter};
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

/// Recomputes every pending provisional timer whose years are now all official.
pub async fn confirm(db: &DatabaseConnection, wf: &Workflows, now: DateTime<Utc>) -> Result<ConfirmReport, StoreError> {
    let mut report = ConfirmReport::default();
    let pending = timer::Entity::find()
        .filter(timer::Column::Provisional.eq(1))
        .filter(timer::Column::Status.eq(timer_status::PENDING))
        .all(db)
        .await?;
    for t in pending {
        let txn = begin_write(db).await?;
        let outcome = confirm_one(&txn, wf, &t, now).await;
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
    }
    Ok(report)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Confirmed {
    Extended,
    Kept,
    StillProvisional,
}

async fn confirm_one(db: &impl ConnectionTrait, wf: &Workflows, t: &timer::Model, now: DateTime<Utc>) -> Result<Confirmed, StoreError> {
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
    let due = spec.due_at(entered, deadline, &env.calendar, env.tz).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    if spec.is_provisional(entered, deadline, due, &env.calendar, env.tz) {
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
    // A case's own deadlines are the applicant's to know; a task's limits are the division's.
    let effects = if current.context.get("applicant").is_some() {
        vec![Effect::Deliver { channel: Channel::Email, recipient: "applicant".into(), topic: "deadline_extended".into() }]
    } else {
        Vec::new()
    };
    let local = |t| crate::delivery::message::local_text(t, env.tz);
    let payload = json!({
        "timer": t.name, "event": t.event, "was": was, "now": due,
        "was_local": local(was), "now_local": local(due), "reason": "official calendar loaded",
    });
    let outcome = Outcome {
        event: "deadline_extended".into(),
        from: Some(current.state.clone()),
        to: current.state.clone(),
        left_state: false,
        context: current.context.clone(),
        arm: Vec::new(),
        effects,
    };
    instances::apply(db, wf, model, &def, current, outcome, &Actor::system(), &payload, now).await?;
    Ok(Confirmed::Extended)
}
