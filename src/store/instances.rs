//! Starting instances and firing events on them: the engine decides, these functions write
//! the decision — instance row, one audit event, timers, outbox rows — inside the caller's
//! transaction.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sea_orm::{
    sea_query::Expr, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, DbErr, EntityTrait, QueryFilter, QueryOrder,
};
use serde_json::{json, Value};

use super::audit::{seal_event, AuditKeys, GENESIS};
use super::entities::{event, instance, outbox, timer};
use crate::workflow::{
    engine::{self, ArmTimer, Snapshot},
    vocabulary::Effect,
    Actor, Definition, Outcome,
};

/// The counter of transitions written (by workflow and event), at `/metrics`.
pub const TRANSITIONS: &str = "pledgeflow_transitions_total";

pub use super::error::StoreError;
pub use super::workflows::Workflows;

pub mod timer_status {
    pub const PENDING: &str = "pending";
    pub const FIRED: &str = "fired";
    pub const CANCELLED: &str = "cancelled";
    pub const FAILED: &str = "failed";
}

/// An instance as the rest of the application sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceRecord {
    pub id: String,
    pub definition_name: String,
    pub definition_version: i64,
    pub state: String,
    pub version: i64,
    pub context: Value,
    pub deadlines: BTreeMap<String, DateTime<Utc>>,
    pub parent_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub scope: Scope,
}

pub use super::millis::from_ms;
pub use super::scope::Scope;

impl TryFrom<instance::Model> for InstanceRecord {
    type Error = StoreError;
    fn try_from(m: instance::Model) -> Result<Self, StoreError> {
        let corrupt = |what: &str, e: serde_json::Error| StoreError::Corrupt(format!("instance {} {what}: {e}", m.id));
        let context = serde_json::from_str(&m.context).map_err(|e| corrupt("context", e))?;
        let deadlines = serde_json::from_str(&m.deadlines).map_err(|e| corrupt("deadlines", e))?;
        Ok(Self {
            context,
            deadlines,
            created_at: from_ms(m.created_at),
            updated_at: from_ms(m.updated_at),
            id: m.id,
            definition_name: m.definition_name,
            definition_version: m.definition_version,
            state: m.state,
            version: m.version,
            parent_id: m.parent_id,
            scope: Scope { region: m.region, department: m.department, division: m.division, applicant_uscc: m.applicant_uscc },
        })
    }
}

#[derive(Debug, Clone)]
pub struct FireResult {
    pub instance: InstanceRecord,
    /// The audit event's sequence number (equal to the instance's new version).
    pub seq: i64,
    pub from: String,
    pub spawned: Vec<String>,
}

fn to_json(v: &impl serde::Serialize) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

/// The audit event for `outcome`, keyed onto `prev_hash`.
#[allow(clippy::too_many_arguments)]
fn audit_event(
    keys: &AuditKeys,
    instance_id: &str,
    seq: i64,
    prev_hash: &str,
    outcome: &Outcome,
    actor: &Actor,
    payload: &Value,
    now_ms: i64,
) -> event::Model {
    let mut row = event::Model {
        instance_id: instance_id.to_string(),
        seq,
        event: outcome.event.clone(),
        from_state: outcome.from.clone(),
        to_state: outcome.to.clone(),
        actor: to_json(actor),
        payload: to_json(payload),
        occurred_at: now_ms,
        prev_hash: prev_hash.to_string(),
        hash: String::new(),
        actor_subject: Some(actor.subject.clone()),
        scheme: String::new(),
    };
    seal_event(keys, &mut row);
    row
}

async fn insert_event(db: &impl ConnectionTrait, ev: event::Model) -> Result<(), DbErr> {
    event::Entity::insert(event::ActiveModel::from(ev)).exec_without_returning(db).await?;
    Ok(())
}

async fn arm_timers(db: &impl ConnectionTrait, instance_id: &str, seq: i64, timers: &[ArmTimer]) -> Result<(), DbErr> {
    if timers.is_empty() {
        return Ok(());
    }
    timer::Entity::insert_many(timers.iter().map(|t| timer_row(instance_id, seq, t))).exec_without_returning(db).await?;
    Ok(())
}

fn timer_row(instance_id: &str, seq: i64, t: &ArmTimer) -> timer::ActiveModel {
    timer::ActiveModel {
        id: Set(uuid::Uuid::now_v7().to_string()),
        instance_id: Set(instance_id.to_string()),
        state: Set(t.state.clone()),
        name: Set(t.name.clone()),
        event: Set(t.event.clone()),
        due_at: Set(t.due_at.timestamp_millis()),
        status: Set(timer_status::PENDING.into()),
        armed_seq: Set(seq),
        claimed_by: Set(None),
        claimed_until: Set(None),
        settled_at: Set(None),
        last_error: Set(None),
        provisional: Set(i64::from(t.provisional)),
    }
}

/// Starts an instance of the newest version of `name`.
#[tracing::instrument(level = "debug", name = "start", skip_all, fields(workflow = name, actor = %actor.subject))]
pub async fn start(
    db: &DatabaseTransaction,
    wf: &Workflows,
    name: &str,
    context: Value,
    deadlines: BTreeMap<String, DateTime<Utc>>,
    actor: &Actor,
    parent_id: Option<String>,
    now: DateTime<Utc>,
) -> Result<InstanceRecord, StoreError> {
    let def = wf.set.latest(name).ok_or_else(|| StoreError::UnknownDefinition { name: name.into(), version: None })?;
    let outcome = engine::start(&def, &context, &deadlines, now, &wf.env)?;
    let id = uuid::Uuid::now_v7().to_string();
    let now_ms = now.timestamp_millis();
    let payload = json!({ "context": context, "deadlines": deadlines });
    let ev = audit_event(&wf.audit, &id, 1, GENESIS, &outcome, actor, &payload, now_ms);
    let scope = Scope::from_context(&outcome.context);
    // The row goes first: the event refers to it.
    instance::Entity::insert(instance::ActiveModel {
        id: Set(id.clone()),
        definition_name: Set(def.name.clone()),
        definition_version: Set(def.version),
        state: Set(outcome.to.clone()),
        version: Set(1),
        context: Set(to_json(&outcome.context)),
        deadlines: Set(to_json(&deadlines)),
        parent_id: Set(parent_id.clone()),
        last_event_hash: Set(ev.hash.clone()),
        created_at: Set(now_ms),
        updated_at: Set(now_ms),
        region: Set(scope.region.clone()),
        department: Set(scope.department.clone()),
        division: Set(scope.division.clone()),
        applicant_uscc: Set(scope.applicant_uscc.clone()),
    })
    .exec_without_returning(db)
    .await?;
    insert_event(db, ev).await?;
    arm_timers(db, &id, 1, &outcome.arm).await?;
    if let (Some(case), true) = (&parent_id, def.name == crate::domain::definitions::SUPERVISION_TASK) {
        super::rollup::task_started(db, wf.env.tz, case, scope.division.as_deref()).await?;
    }
    metrics::counter!(TRANSITIONS, "workflow" => def.name.clone(), "event" => "start").increment(1);
    Ok(InstanceRecord {
        id,
        definition_name: def.name.clone(),
        definition_version: def.version,
        state: outcome.to,
        version: 1,
        context: outcome.context,
        deadlines,
        parent_id,
        created_at: now,
        updated_at: now,
        scope,
    })
}

pub async fn load(db: &impl ConnectionTrait, id: &str) -> Result<InstanceRecord, StoreError> {
    load_model(db, id).await?.try_into()
}

pub(crate) async fn load_model(db: &impl ConnectionTrait, id: &str) -> Result<instance::Model, StoreError> {
    instance::Entity::find_by_id(id.to_string()).one(db).await?.ok_or_else(|| StoreError::NotFound(id.into()))
}

/// The rows of `ids`, locked to the caller's transaction on PostgreSQL — `skip_held` leaves out
/// those another transaction holds instead of waiting for them. On SQLite the write
/// transaction holds the whole database already.
pub(crate) async fn lock_models(db: &impl ConnectionTrait, ids: &[&str], skip_held: bool) -> Result<Vec<instance::Model>, DbErr> {
    let lock = match (db.get_database_backend(), skip_held) {
        (sea_orm::DbBackend::Postgres, true) => " FOR UPDATE SKIP LOCKED",
        (sea_orm::DbBackend::Postgres, false) => " FOR UPDATE",
        _ => "",
    };
    let marks = vec!["?"; ids.len()].join(", ");
    let values = ids.iter().map(|id| sea_orm::Value::from(id.to_string())).collect();
    super::fetch(db, &format!("SELECT * FROM workflow_instances WHERE id IN ({marks}) ORDER BY id{lock}"), values).await
}

/// Fires `event` on instance `id`. With `expected_version`, refuses with a conflict unless
/// the instance is still at the version the caller saw.
#[allow(clippy::too_many_arguments)]
pub async fn fire(
    db: &DatabaseTransaction,
    wf: &Workflows,
    id: &str,
    event_name: &str,
    actor: &Actor,
    payload: &Value,
    expected_version: Option<i64>,
    now: DateTime<Utc>,
) -> Result<FireResult, StoreError> {
    let model = load_model(db, id).await?;
    fire_model(db, wf, model, event_name, actor, payload, expected_version, now).await
}

/// `fire` on an instance row the caller has already read (a timer's sweep reads it under lock).
// A debug-level span: only the trace exporter listens at that level, so without it the span costs nothing.
#[allow(clippy::too_many_arguments)]
#[tracing::instrument(level = "debug", name = "transition", skip_all, fields(workflow = %model.definition_name, instance = %model.id, event = event_name, from = %model.state, actor = %actor.subject))]
pub(crate) async fn fire_model(
    db: &DatabaseTransaction,
    wf: &Workflows,
    model: instance::Model,
    event_name: &str,
    actor: &Actor,
    payload: &Value,
    expected_version: Option<i64>,
    now: DateTime<Utc>,
) -> Result<FireResult, StoreError> {
    let decided = decide(wf, &model, event_name, actor, payload, expected_version, now)?;
    apply(db, wf, model, &decided.definition, decided.current, decided.outcome, actor, payload, now).await
}

/// What the engine decided for an instance row, before anything is written.
pub(crate) struct Decided {
    pub definition: std::sync::Arc<Definition>,
    pub current: InstanceRecord,
    pub outcome: Outcome,
}

/// The engine's decision on `event_name` for `model`; reads and writes nothing.
pub(crate) fn decide(
    wf: &Workflows,
    model: &instance::Model,
    event_name: &str,
    actor: &Actor,
    payload: &Value,
    expected_version: Option<i64>,
    now: DateTime<Utc>,
) -> Result<Decided, StoreError> {
    if let Some(expected) = expected_version {
        if expected != model.version {
            return Err(StoreError::Conflict { id: model.id.clone().into(), expected, actual: model.version });
        }
    }
    let definition: std::sync::Arc<Definition> = wf.set.get(&model.definition_name, model.definition_version).ok_or_else(|| {
        StoreError::UnknownDefinition { name: model.definition_name.clone(), version: Some(model.definition_version) }
    })?;
    let current: InstanceRecord = model.clone().try_into()?;
    let snapshot = Snapshot { state: &current.state, context: &current.context, deadlines: &current.deadlines };
    let outcome = engine::fire(&definition, &snapshot, event_name, actor, payload, now, &wf.env)?;
    Ok(Decided { definition, current, outcome })
}

/// Writes what was decided for `model` — the instance row, one audit event, timers, spawned
/// instances, outbox rows — in the caller's transaction. Also used for the system's own
/// decisions that are not a definition's events (a deadline recomputed on the official calendar).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn apply(
    db: &DatabaseTransaction,
    wf: &Workflows,
    model: instance::Model,
    def: &Definition,
    current: InstanceRecord,
    outcome: Outcome,
    actor: &Actor,
    payload: &Value,
    now: DateTime<Utc>,
) -> Result<FireResult, StoreError> {
    let id = model.id.as_str();
    let event_name = outcome.event.as_str();
    let seq = model.version + 1;
    let now_ms = now.timestamp_millis();
    let ev = audit_event(&wf.audit, id, seq, &model.last_event_hash, &outcome, actor, payload, now_ms);
    let mut update = instance::Entity::update_many();
    if let Some(deadlines) = &outcome.deadlines {
        update = update.col_expr(instance::Column::Deadlines, Expr::value(to_json(deadlines)));
    }
    // A deadline counted over a provisional year is kept to be recounted once the official one
    // is on file (`provisional::confirm`); one counted on official years needs no recount.
    for c in &outcome.counted {
        db.execute_raw(super::stmt(db, "DELETE FROM provisional_deadlines WHERE instance_id = ? AND name = ?", vec![id.into(), c.name.clone().into()])).await?;
        if c.provisional {
            db.execute_raw(super::stmt(
                db,
                "INSERT INTO provisional_deadlines (instance_id, name, from_date, working_days, time_of_day) VALUES (?, ?, ?, ?, '17:30')",
                vec![id.into(), c.name.clone().into(), c.from.to_string().into(), c.working_days.into()],
            ))
            .await?;
        }
    }
    let updated = update
        .col_expr(instance::Column::State, Expr::value(outcome.to.clone()))
        .col_expr(instance::Column::Context, Expr::value(to_json(&outcome.context)))
        .col_expr(instance::Column::Version, Expr::value(seq))
        .col_expr(instance::Column::LastEventHash, Expr::value(ev.hash.clone()))
        .col_expr(instance::Column::UpdatedAt, Expr::value(now_ms))
        .filter(instance::Column::Id.eq(id.to_string()))
        .filter(instance::Column::Version.eq(model.version))
        .exec(db)
        .await?;
    if updated.rows_affected == 0 {
        let actual = load_model(db, id).await?.version;
        return Err(StoreError::Conflict { id: id.into(), expected: model.version, actual });
    }
    insert_event(db, ev).await?;
    let breaches: Vec<&str> = outcome.effects.iter().filter_map(|e| if let Effect::SlaBreach { limit } = e { Some(limit.as_str()) } else { None }).collect();
    super::rollup::transition(
        db,
        wf.env.tz,
        &def.name,
        id,
        model.parent_id.as_deref(),
        current.scope.division.as_deref(),
        seq,
        (event_name, &model.state, &outcome.to),
        &breaches,
        now,
    )
    .await?;
    if outcome.left_state {
        timer::Entity::update_many()
            .col_expr(timer::Column::Status, Expr::value(timer_status::CANCELLED))
            .col_expr(timer::Column::SettledAt, Expr::value(now_ms))
            .filter(timer::Column::InstanceId.eq(id.to_string()))
            .filter(timer::Column::Status.eq(timer_status::PENDING))
            .exec(db)
            .await?;
    }
    arm_timers(db, id, seq, &outcome.arm).await?;

    let mut spawned = Vec::new();
    let mut deliveries = Vec::new();
    for (index, effect) in outcome.effects.iter().enumerate() {
        let key = format!("{id}:{seq}:{index}");
        match effect {
            Effect::Spawn { definition } => {
                let context = json!({ "parent": { "id": id, "definition": def.name, "context": outcome.context } });
                let child = Box::pin(start(db, wf, definition, context, BTreeMap::new(), &Actor::system(), Some(id.into()), now)).await?;
                spawned.push(child.id);
            }
            Effect::Deliver { .. } | Effect::SignalParent { .. } | Effect::SignalParentIfAny { .. } => {
                deliveries.extend(delivery(effect, key, id, model.parent_id.as_deref())?);
            }
            Effect::BundleAdvance { event } => {
                // The window's handler (a child it opens writes through this function again).
                let advance = wf.effects.handler(super::workflows::BUNDLE_ADVANCE)?;
                if advance.run(db, wf, def, id, now).await? {
                    deliveries.push((key, "signal".into(), id.to_string(), event.clone()));
                }
            }
            Effect::SignalChildren { event } => {
                let children = instance::Entity::find()
                    .filter(instance::Column::ParentId.eq(id.to_string()))
                    .order_by_asc(instance::Column::Id)
                    .all(db)
                    .await?;
                for child in children {
                    deliveries.push((format!("{key}:{}", child.id), "signal".into(), child.id, event.clone()));
                }
            }
            Effect::SlaBreach { limit } => {
                // A case's own limit (the legal clock) is the approving department's, not the
                // supervising division's its scope also names.
                let scope = if super::scope::is_case_limit(limit) { Scope { division: None, ..current.scope.clone() } } else { current.scope.clone() };
                super::sla::record(db, id, seq, &scope, limit, now).await?;
            }
            Effect::MergePayload | Effect::SetDeadline { .. } | Effect::DeadlineAfter { .. } => {}
            Effect::CreditRecord { kind } => match &current.scope.applicant_uscc {
                Some(uscc) => {
                    let reason = payload["reason"].as_str().map_or_else(|| format!("{} {event_name}", def.name), str::to_string);
                    super::credit::record(db, &wf.credit, &wf.audit, uscc, kind, Some(id), Some(seq), &reason, now).await?;
                }
                None => tracing::warn!(instance = %id, event = %event_name, "credit:{kind} on an instance with no applicant: no record written"),
            },
        }
    }
    if !deliveries.is_empty() {
        let body = outbox_body(id, def, seq, &outcome, &current.deadlines, payload);
        outbox::Entity::insert_many(deliveries.into_iter().map(|d| outbox_row(id, seq, d, &body, now_ms))).exec_without_returning(db).await?;
    }

    metrics::counter!(TRANSITIONS, "workflow" => def.name.clone(), "event" => event_name.to_string()).increment(1);
    let mut instance = current;
    if let Some(deadlines) = outcome.deadlines {
        instance.deadlines = deadlines;
    }
    instance.state = outcome.to;
    instance.context = outcome.context;
    instance.version = seq;
    instance.updated_at = now;
    Ok(FireResult { instance, seq, from: model.state, spawned })
}

/// What an outbox row of a transition carries: the transition, for templates and webhooks.
fn outbox_body(id: &str, def: &Definition, seq: i64, outcome: &Outcome, deadlines: &BTreeMap<String, DateTime<Utc>>, payload: &Value) -> String {
    to_json(&json!({
        "instance_id": id, "definition": def.name, "definition_version": def.version,
        "event": outcome.event, "seq": seq, "from": outcome.from, "to": outcome.to,
        "context": outcome.context, "deadlines": outcome.deadlines.as_ref().unwrap_or(deadlines), "payload": payload,
    }))
}

/// The outbox delivery an effect asks for — (idempotency key, channel, recipient, topic) — if
/// it is a message or a signal to the parent (none for `signal:parent?` without one).
fn delivery(effect: &Effect, key: String, id: &str, parent: Option<&str>) -> Result<Option<(String, String, String, String)>, StoreError> {
    Ok(match effect {
        Effect::Deliver { channel, recipient, topic } => Some((key, channel.as_str().to_string(), recipient.clone(), topic.clone())),
        Effect::SignalParent { event } => Some((key, "signal".into(), parent.ok_or_else(|| StoreError::NoParent(id.into()))?.to_string(), event.clone())),
        Effect::SignalParentIfAny { event } => parent.map(|p| (key, "signal".into(), p.to_string(), event.clone())),
        _ => None,
    })
}

/// A pending outbox row: (idempotency key, channel, recipient, topic).
fn outbox_row(id: &str, seq: i64, (key, channel, recipient, topic): (String, String, String, String), body: &str, now_ms: i64) -> outbox::ActiveModel {
    outbox::ActiveModel {
        id: Set(uuid::Uuid::now_v7().to_string()),
        instance_id: Set(id.to_string()),
        event_seq: Set(seq),
        channel: Set(channel),
        recipient: Set(recipient),
        topic: Set(topic),
        payload: Set(body.to_string()),
        idempotency_key: Set(key),
        status: Set(super::outbox::status::PENDING.into()),
        attempts: Set(0),
        next_attempt_at: Set(now_ms),
        last_error: Set(None),
        claimed_by: Set(None),
        claimed_until: Set(None),
        created_at: Set(now_ms),
        delivered_at: Set(None),
    }
}

/// A decided event of an instance row the caller holds, for `apply_own`.
pub(crate) struct Own {
    pub model: instance::Model,
    pub decided: Decided,
    pub payload: Value,
}

/// Whether a decided event writes only rows of its own instance — its row, one audit event,
/// its timers, outbox rows — and no statistics count, credit, breach or child: rows other
/// instances' events lock too. Such events may share a transaction (`apply_own`) without ever
/// waiting on another's.
pub(crate) fn writes_only_its_own(decided: &Decided, from: &str) -> bool {
    let o = &decided.outcome;
    let own = o.counted.is_empty()
        && o.effects.iter().all(|e| matches!(e, Effect::MergePayload | Effect::SetDeadline { .. } | Effect::Deliver { .. } | Effect::SignalParent { .. } | Effect::SignalParentIfAny { .. }));
    own && !super::rollup::moves(&decided.definition.name, (&o.event, from, &o.to), &[])
}

/// Writes several instances' decided events (each `writes_only_its_own`) in the caller's
/// transaction, in one statement per table rather than several per event: what `apply` writes
/// for each, no more. The timer sweep's shared transaction; a commit per timer was its cost.
pub(crate) async fn apply_own(db: &impl ConnectionTrait, keys: &AuditKeys, items: Vec<Own>, actor: &Actor, now: DateTime<Utc>) -> Result<(), StoreError> {
    if items.is_empty() {
        return Ok(());
    }
    let now_ms = now.timestamp_millis();
    let (mut rows, mut events, mut arms, mut left, mut deliveries) = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for item in items {
        if !writes_only_its_own(&item.decided, &item.model.state) {
            return Err(StoreError::Db(DbErr::Custom(format!("{} on {} writes more than its own rows", item.decided.outcome.event, item.model.id))));
        }
        let Own { model, decided: Decided { definition: def, current, outcome }, payload } = item;
        let (id, seq) = (model.id.as_str(), model.version + 1);
        let ev = audit_event(keys, id, seq, &model.last_event_hash, &outcome, actor, &payload, now_ms);
        let deadlines = to_json(outcome.deadlines.as_ref().unwrap_or(&current.deadlines));
        rows.extend::<[sea_orm::Value; 8]>([
            id.into(), model.version.into(), outcome.to.clone().into(), to_json(&outcome.context).into(), deadlines.into(), seq.into(), ev.hash.clone().into(), now_ms.into(),
        ]);
        events.push(event::ActiveModel::from(ev));
        if outcome.left_state {
            left.push(sea_orm::Value::from(id.to_string()));
        }
        arms.extend(outcome.arm.iter().map(|t| timer_row(id, seq, t)));
        let body = outbox_body(id, &def, seq, &outcome, &current.deadlines, &payload);
        for (index, effect) in outcome.effects.iter().enumerate() {
            let d = delivery(effect, format!("{id}:{seq}:{index}"), id, model.parent_id.as_deref())?;
            deliveries.extend(d.map(|d| outbox_row(id, seq, d, &body, now_ms)));
        }
        metrics::counter!(TRANSITIONS, "workflow" => def.name.clone(), "event" => outcome.event.clone()).increment(1);
    }
    let n = events.len();
    let marks = vec!["(?, ?, ?, ?, ?, ?, ?, ?)"; n].join(", ");
    // The version each row was read at guards it as `apply`'s does (the caller holds the rows).
    let updated = db
        .execute_raw(super::stmt(
            db,
            &format!(
                "WITH v (id, seen, state, context, deadlines, version, hash, updated_at) AS (VALUES {marks}) \
                 UPDATE workflow_instances SET state = v.state, context = v.context, deadlines = v.deadlines, version = v.version, \
                   last_event_hash = v.hash, updated_at = v.updated_at \
                 FROM v WHERE workflow_instances.id = v.id AND workflow_instances.version = v.seen"
            ),
            rows,
        ))
        .await?;
    if updated.rows_affected() != n as u64 {
        return Err(StoreError::Db(DbErr::Custom(format!("{} of {n} instances were changed meanwhile", n as u64 - updated.rows_affected()))));
    }
    event::Entity::insert_many(events).exec_without_returning(db).await?;
    if !left.is_empty() {
        let marks = vec!["?"; left.len()].join(", ");
        let mut values: Vec<sea_orm::Value> = vec![timer_status::CANCELLED.into(), now_ms.into(), timer_status::PENDING.into()];
        values.extend(left);
        db.execute_raw(super::stmt(db, &format!("UPDATE workflow_timers SET status = ?, settled_at = ? WHERE status = ? AND instance_id IN ({marks})"), values)).await?;
    }
    if !arms.is_empty() {
        timer::Entity::insert_many(arms).exec_without_returning(db).await?;
    }
    if !deliveries.is_empty() {
        outbox::Entity::insert_many(deliveries).exec_without_returning(db).await?;
    }
    Ok(())
}

pub async fn history(db: &impl ConnectionTrait, id: &str) -> Result<Vec<event::Model>, DbErr> {
    event::Entity::find()
        .filter(event::Column::InstanceId.eq(id.to_string()))
        .order_by_asc(event::Column::Seq)
        .all(db)
        .await
}

pub async fn timers(db: &impl ConnectionTrait, id: &str) -> Result<Vec<timer::Model>, DbErr> {
    timer::Entity::find()
        .filter(timer::Column::InstanceId.eq(id.to_string()))
        .order_by_asc(timer::Column::DueAt)
        .all(db)
        .await
}
