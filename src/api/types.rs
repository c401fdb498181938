//! The API's own types: what clients see of definitions and instances. Built from engine and
//! store values in one place each, so that storage can change without changing the contract.

use async_graphql::{Json, SimpleObject, ID};
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::access::ErrorCode;
use crate::store::{entities, instances::from_ms, InstanceRecord};
use crate::workflow::{timing::Anchor, timing::Offset, Definition};

#[derive(SimpleObject)]
pub struct WorkflowDefinition {
    pub name: String,
    pub version: i64,
    pub title: Option<String>,
    pub description: Option<String>,
    pub initial_state: String,
    pub deadlines: Vec<String>,
    pub events: Vec<String>,
    pub states: Vec<WorkflowState>,
    pub transitions: Vec<WorkflowTransition>,
    /// A bundle's kinds of child and the order between them; empty for other definitions.
    pub children: Vec<WorkflowChildKind>,
    /// SHA-256 of the definition's text.
    pub digest: String,
}

/// One kind of child a bundle opens.
#[derive(SimpleObject)]
pub struct WorkflowChildKind {
    pub kind: String,
    pub title: Option<String>,
    /// The workflow its children start on; null for the catalogue's items (their mode's).
    pub workflow: Option<String>,
    /// Kinds whose children must hold their licence before these start.
    pub after: Vec<String>,
}

#[derive(SimpleObject)]
pub struct WorkflowState {
    pub name: String,
    pub title: Option<String>,
    pub is_final: bool,
    pub timers: Vec<TimerSpec>,
}

/// When a timer armed on entering a state fires.
#[derive(SimpleObject)]
pub struct TimerSpec {
    pub name: String,
    /// The event it fires.
    pub fires: String,
    /// `entry`, or `deadline:NAME`.
    pub anchor: String,
    /// e.g. `-1 working days`; null when it fires at the anchor itself.
    pub offset: Option<String>,
    /// Local time of day in the office's zone, `HH:MM`.
    pub time_of_day: Option<String>,
}

#[derive(SimpleObject)]
pub struct WorkflowTransition {
    pub from: Vec<String>,
    pub on: String,
    /// Null for an internal transition, which stays in its state.
    pub to: Option<String>,
    /// Roles that may fire it; empty means the system only (timers, other instances).
    pub roles: Vec<String>,
    pub guards: Vec<String>,
    pub effects: Vec<String>,
}

impl From<&Definition> for WorkflowDefinition {
    fn from(d: &Definition) -> Self {
        Self {
            name: d.name.clone(),
            version: d.version,
            title: d.title.clone(),
            description: d.description.clone(),
            initial_state: d.initial.clone(),
            deadlines: d.deadlines.clone(),
            events: d.events.clone(),
            states: d
                .states
                .iter()
                .map(|(name, s)| WorkflowState {
                    name: name.clone(),
                    title: s.title.clone(),
                    is_final: s.is_final,
                    timers: s
                        .timers
                        .iter()
                        .map(|t| TimerSpec {
                            name: t.name.clone(),
                            fires: t.fire.clone(),
                            anchor: match &t.anchor {
                                Anchor::Entry => "entry".into(),
                                Anchor::Deadline(n) => format!("deadline:{n}"),
                            },
                            offset: t.offset.map(|o| match o {
                                Offset::Hours(n) => format!("{n} hours"),
                                Offset::CalendarDays(n) => format!("{n} calendar days"),
                                Offset::WorkingDays(n) => format!("{n} working days"),
                            }),
                            time_of_day: t.time_of_day.map(|t| t.format("%H:%M").to_string()),
                        })
                        .collect(),
                })
                .collect(),
            transitions: d
                .transitions
                .iter()
                .map(|t| WorkflowTransition {
                    from: t.from.clone(),
                    on: t.on.clone(),
                    to: t.to.clone(),
                    roles: t.roles.clone(),
                    guards: t.guards.iter().map(|(n, _)| n.clone()).collect(),
                    effects: t.effects.iter().map(|(n, _)| n.clone()).collect(),
                })
                .collect(),
            children: d
                .children
                .iter()
                .map(|c| WorkflowChildKind { kind: c.kind.clone(), title: c.title.clone(), workflow: c.workflow.clone(), after: c.after.clone() })
                .collect(),
            digest: d.digest.clone(),
        }
    }
}

#[derive(SimpleObject)]
pub struct Deadline {
    pub name: String,
    pub at: DateTime<Utc>,
    /// Counted over a year whose official holiday notice is not on file yet: recounted, and
    /// told if it moves, once the notice is loaded.
    pub provisional: bool,
    /// Working days from today to the deadline's day (0: today; negative: passed), on the
    /// office's calendar; null beyond the years the calendar holds.
    pub working_days_left: Option<i32>,
}

/// Working days from the engine's today to the day `due` falls on, in the office's zone; `None`
/// beyond the calendar's years.
pub fn working_days_left(engine: &crate::runtime::Engine, due: DateTime<Utc>) -> Option<i32> {
    let env = &engine.workflows.env;
    let today = engine.now().with_timezone(&env.tz).date_naive();
    let n = env.calendar.get().working_days_until(today, due.with_timezone(&env.tz).date_naive()).ok()?;
    i32::try_from(n).ok()
}

/// One entry of an instance's audit trail.
#[derive(SimpleObject)]
pub struct AuditEvent {
    pub instance_id: ID,
    pub seq: i64,
    pub event: String,
    /// Null for the event that created the instance.
    pub from_state: Option<String>,
    pub to_state: String,
    pub actor: Json<Value>,
    pub payload: Json<Value>,
    pub occurred_at: DateTime<Utc>,
    pub prev_hash: String,
    pub hash: String,
}

impl From<entities::event::Model> for AuditEvent {
    fn from(e: entities::event::Model) -> Self {
        Self {
            instance_id: ID(e.instance_id),
            seq: e.seq,
            event: e.event,
            from_state: e.from_state,
            to_state: e.to_state,
            actor: Json(serde_json::from_str(&e.actor).unwrap_or(Value::Null)),
            payload: Json(serde_json::from_str(&e.payload).unwrap_or(Value::Null)),
            occurred_at: from_ms(e.occurred_at),
            prev_hash: e.prev_hash,
            hash: e.hash,
        }
    }
}

#[derive(SimpleObject)]
pub struct Timer {
    pub name: String,
    pub event: String,
    pub state: String,
    pub due_at: DateTime<Utc>,
    /// pending, fired or cancelled.
    pub status: String,
    /// Counted over a year whose official holiday notice is not on file yet.
    pub provisional: bool,
}

impl From<entities::timer::Model> for Timer {
    fn from(t: entities::timer::Model) -> Self {
        Self { name: t.name, event: t.event, state: t.state, due_at: from_ms(t.due_at), status: t.status, provisional: t.provisional != 0 }
    }
}

/// A workflow instance: a case or a supervision task, with where it stands.
pub struct WorkflowInstance(pub InstanceRecord);

#[async_graphql::Object]
impl WorkflowInstance {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn definition_name(&self) -> &str {
        &self.0.definition_name
    }
    /// The definition version it started on, and keeps.
    async fn definition_version(&self) -> i64 {
        self.0.definition_version
    }
    async fn state(&self) -> &str {
        &self.0.state
    }
    /// Increases with every event; send it back to guard against concurrent changes.
    async fn version(&self) -> i64 {
        self.0.version
    }
    async fn context(&self) -> Json<Value> {
        Json(self.0.context.clone())
    }
    async fn deadlines(&self, ctx: &async_graphql::Context<'_>) -> async_graphql::Result<Vec<Deadline>> {
        // The deadlines still to be recounted: a row each until the official notice confirms it.
        let loaders = ctx.data::<super::loaders::Loaders>()?;
        let provisional = loaders.provisional.load_one(self.0.id.clone()).await.map_err(|e| e.internal())?.unwrap_or_default();
        let engine = ctx.data::<crate::runtime::Engine>()?;
        Ok(self
            .0
            .deadlines
            .iter()
            .map(|(name, at)| Deadline { name: name.clone(), at: *at, provisional: provisional.contains(name), working_days_left: working_days_left(engine, *at) })
            .collect())
    }
    async fn parent_id(&self) -> Option<ID> {
        self.0.parent_id.clone().map(ID)
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    /// The audit trail, oldest first.
    async fn history(&self, ctx: &async_graphql::Context<'_>) -> async_graphql::Result<Vec<AuditEvent>> {
        let loaders = ctx.data::<super::loaders::Loaders>()?;
        let rows = loaders.history.load_one(self.0.id.clone()).await.map_err(|e| e.internal())?;
        Ok(rows.unwrap_or_default().into_iter().map(Into::into).collect())
    }
    async fn timers(&self, ctx: &async_graphql::Context<'_>) -> async_graphql::Result<Vec<Timer>> {
        let loaders = ctx.data::<super::loaders::Loaders>()?;
        let rows = loaders.timers.load_one(self.0.id.clone()).await.map_err(|e| e.internal())?;
        Ok(rows.unwrap_or_default().into_iter().map(Into::into).collect())
    }
}
