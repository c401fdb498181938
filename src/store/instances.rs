//! Starting instances and firing events on them: the engine decides, these functions write
//! the decision — instance row, one audit event, timers, outbox rows — inside the caller's
//! transaction.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, DbErr, EntityTrait, QueryFilter, QueryOrder,
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
    apply(db, wf, model, decided.definition, decided.current, decided.outcome, actor, payload, now).await
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
    def: std::sync::Arc<Definition>,
    current: InstanceRecord,
    outcome: Outcome,
    actor: &Actor,
    payload: &Value,
    now: DateTime<Utc>,
) -> Result<FireResult, StoreError> {
    let own = Own { model, decided: Decided { definition: def, current, outcome }, payload: payload.clone() };
    let mut done = apply_all(db, wf, vec![own], actor, now).await?;
    done.pop().ok_or_else(|| StoreError::Db(DbErr::Custom("a transition was written without its result".into())))
}

/// A decided event of an instance row the caller holds, for `apply_all`.
pub(crate) struct Own {
    pub model: instance::Model,
    pub decided: Decided,
    pub payload: Value,
}

/// Whether a decided event may share a transaction with other instances' (the timer sweep's
/// batches): it writes rows of its own instance, rows only ever inserted (statistics changes,
/// breaches) and credit rows, which `apply_all` takes last in one order. Not a child started, a
/// bundle advanced or children signalled: those reach other instances' rows mid-transaction,
/// where two batches could each hold what the other waits for.
pub(crate) fn shares_a_transaction(decided: &Decided) -> bool {
    !decided.outcome.effects.iter().any(|e| matches!(e, Effect::Spawn { .. } | Effect::BundleAdvance { .. } | Effect::SignalChildren { .. }))
}

/// What one item of `apply_all` writes to its instance row.
struct RowWrite {
    id: String,
    seen: i64,
    seq: i64,
    hash: String,
    state: String,
    context: String,
    deadlines: String,
    /// Whether its state, context or deadlines change.
    moved: bool,
}

/// Writes several instances' decided events in the caller's transaction — for each its row,
/// one audit event, its timers, statistics changes, breaches, children, outbox rows and credit
/// records — with one statement per table where the rows allow it rather than several per
/// event. The one write path of every transition: `apply` is this with one item; the timer
/// sweep gives it a batch (each `shares_a_transaction`). The rows several instances' events
/// may both write — an applicant's credit — are written last, in the order of their keys, so
/// two batches never wait on each other in opposite orders.
pub(crate) async fn apply_all(db: &DatabaseTransaction, wf: &Workflows, items: Vec<Own>, actor: &Actor, now: DateTime<Utc>) -> Result<Vec<FireResult>, StoreError> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let now_ms = now.timestamp_millis();
    let (mut rows, mut events, mut arms, mut left) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for item in &items {
        let (model, o, current) = (&item.model, &item.decided.outcome, &item.decided.current);
        let seq = model.version + 1;
        let ev = audit_event(&wf.audit, &model.id, seq, &model.last_event_hash, o, actor, &item.payload, now_ms);
        // A reminder changes no state, context or deadline: its row is written narrowly, so that
        // PostgreSQL can keep the row's new version on its page without touching any index.
        let moved = o.to != model.state || o.deadlines.is_some() || o.context != current.context;
        rows.push(RowWrite {
            id: model.id.clone(),
            seen: model.version,
            seq,
            hash: ev.hash.clone(),
            state: o.to.clone(),
            context: to_json(&o.context),
            deadlines: to_json(o.deadlines.as_ref().unwrap_or(&current.deadlines)),
            moved,
        });
        events.push(event::ActiveModel::from(ev));
        if o.left_state {
            left.push(sea_orm::Value::from(model.id.clone()));
        }
        arms.extend(o.arm.iter().map(|t| timer_row(&model.id, seq, t)));
    }
    write_rows(db, &rows, now_ms).await?;
    event::Entity::insert_many(events).exec_without_returning(db).await?;
    for item in &items {
        let (id, o) = (item.model.id.as_str(), &item.decided.outcome);
        // A deadline counted over a provisional year is kept to be recounted once the official
        // one is on file (`provisional::confirm`); one counted on official years needs no recount.
        for c in &o.counted {
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
        let breaches: Vec<&str> = o.effects.iter().filter_map(|e| if let Effect::SlaBreach { limit } = e { Some(limit.as_str()) } else { None }).collect();
        let current = &item.decided.current;
        super::rollup::transition(
            db,
            wf.env.tz,
            &item.decided.definition.name,
            id,
            item.model.parent_id.as_deref(),
            current.scope.division.as_deref(),
            item.model.version + 1,
            (&o.event, &item.model.state, &o.to),
            &breaches,
            now,
        )
        .await?;
    }
    if !left.is_empty() {
        let marks = vec!["?"; left.len()].join(", ");
        let mut values: Vec<sea_orm::Value> = vec![timer_status::CANCELLED.into(), now_ms.into(), timer_status::PENDING.into()];
        values.extend(left);
        db.execute_raw(super::stmt(db, &format!("UPDATE workflow_timers SET status = ?, settled_at = ? WHERE status = ? AND instance_id IN ({marks})"), values)).await?;
    }
    if !arms.is_empty() {
        timer::Entity::insert_many(arms).exec_without_returning(db).await?;
    }

    let mut outbox_rows = Vec::new();
    let mut credit = Vec::new();
    let mut spawned_of = Vec::with_capacity(items.len());
    for item in &items {
        let (model, def, o, current) = (&item.model, &item.decided.definition, &item.decided.outcome, &item.decided.current);
        let (id, seq, event_name) = (model.id.as_str(), model.version + 1, o.event.as_str());
        let mut spawned = Vec::new();
        let mut deliveries = Vec::new();
        for (index, effect) in o.effects.iter().enumerate() {
            let key = format!("{id}:{seq}:{index}");
            match effect {
                Effect::Spawn { definition } => {
                    let context = json!({ "parent": { "id": id, "definition": def.name, "context": o.context } });
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
                        let reason = item.payload["reason"].as_str().map_or_else(|| format!("{} {event_name}", def.name), str::to_string);
                        credit.push((uscc.clone(), id.to_string(), seq, kind.clone(), reason));
                    }
                    None => tracing::warn!(instance = %id, event = %event_name, "credit:{kind} on an instance with no applicant: no record written"),
                },
            }
        }
        if !deliveries.is_empty() {
            let body = outbox_body(id, def, seq, o, &current.deadlines, &item.payload);
            outbox_rows.extend(deliveries.into_iter().map(|d| outbox_row(id, seq, d, &body, now_ms)));
        }
        spawned_of.push(spawned);
    }
    if !outbox_rows.is_empty() {
        outbox::Entity::insert_many(outbox_rows).exec_without_returning(db).await?;
    }
    credit.sort();
    for (uscc, id, seq, kind, reason) in credit {
        super::credit::record(db, &wf.credit, &wf.audit, &uscc, &kind, Some(&id), Some(seq), &reason, now).await?;
    }

    let mut done = Vec::with_capacity(items.len());
    for (item, spawned) in items.into_iter().zip(spawned_of) {
        let Own { model, decided: Decided { definition: def, current, outcome }, .. } = item;
        metrics::counter!(TRANSITIONS, "workflow" => def.name.clone(), "event" => outcome.event.clone()).increment(1);
        let seq = model.version + 1;
        let mut instance = current;
        if let Some(deadlines) = outcome.deadlines {
            instance.deadlines = deadlines;
        }
        instance.state = outcome.to;
        instance.context = outcome.context;
        instance.version = seq;
        instance.updated_at = now;
        done.push(FireResult { instance, seq, from: model.state, spawned });
    }
    Ok(done)
}

/// The instance rows of `apply_all`, one statement for all, each guarded by the version it was
/// read at (the caller holds the rows). One row that changed meanwhile is a conflict the caller
/// can name.
async fn write_rows(db: &DatabaseTransaction, rows: &[RowWrite], now_ms: i64) -> Result<(), StoreError> {
    let n = rows.len();
    let narrow = rows.iter().all(|r| !r.moved);
    let (columns, set) = if narrow {
        ("(id, seen, version, hash, updated_at)", "")
    } else {
        ("(id, seen, version, hash, updated_at, state, context, deadlines)", "state = v.state, context = v.context, deadlines = v.deadlines, ")
    };
    let width = if narrow { 5 } else { 8 };
    let mut values: Vec<sea_orm::Value> = Vec::with_capacity(n * width);
    for r in rows {
        values.extend::<[sea_orm::Value; 5]>([r.id.clone().into(), r.seen.into(), r.seq.into(), r.hash.clone().into(), now_ms.into()]);
        if !narrow {
            values.extend::<[sea_orm::Value; 3]>([r.state.clone().into(), r.context.clone().into(), r.deadlines.clone().into()]);
        }
    }
    let mark = format!("({})", vec!["?"; width].join(", "));
    let marks = vec![mark.as_str(); n].join(", ");
    let sql = format!(
        "WITH v {columns} AS (VALUES {marks}) \
         UPDATE workflow_instances SET {set}version = v.version, last_event_hash = v.hash, updated_at = v.updated_at \
         FROM v WHERE workflow_instances.id = v.id AND workflow_instances.version = v.seen"
    );
    let updated = db.execute_raw(super::stmt(db, &sql, values)).await?.rows_affected();
    if updated == n as u64 {
        return Ok(());
    }
    match rows {
        [one] => {
            let actual = load_model(db, &one.id).await?.version;
            Err(StoreError::Conflict { id: one.id.clone().into(), expected: one.seen, actual })
        }
        _ => Err(StoreError::Db(DbErr::Custom(format!("{} of {n} instances were changed meanwhile", n as u64 - updated)))),
    }
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
