//! The transition function: pure, over a definition, an instance's current values and one
//! event. It decides; the store writes what it decided in one transaction.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::definition::Definition;
use super::policy::PolicyRefusal;
use super::timing::TimingError;
use super::vocabulary::{Effect, GuardInput};

/// Where a deadline counted in working days ends on its last day.
const END_OF_OFFICE_DAY: chrono::NaiveTime = match chrono::NaiveTime::from_hms_opt(17, 30, 0) {
    Some(t) => t,
    None => panic!("17:30 is a time"),
};

/// Who fires an event. Timers and other instances act as [`Actor::system`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub subject: String,
    pub roles: Vec<String>,
    /// The path the event came by; the event policy binds the generic one.
    #[serde(skip)]
    pub via: Via,
}

/// The path an event came by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Via {
    /// The generic `fireEvent`: only events the policy opens to it, with their declared keys.
    Api,
    /// A typed act of the API, which checked what its transition needs and built the payload.
    Act(&'static str),
    /// The system itself (timers, signals between instances, start-up work, benchmarks).
    #[default]
    Internal,
}

impl Actor {
    pub fn system() -> Self {
        Self { subject: "system".into(), roles: vec!["system".into()], via: Via::Internal }
    }
    pub fn person(subject: impl Into<String>, role: impl Into<String>) -> Self {
        Self { subject: subject.into(), roles: vec![role.into()], via: Via::Internal }
    }
    /// A caller on the generic path.
    pub fn api(subject: impl Into<String>, roles: Vec<String>) -> Self {
        Self { subject: subject.into(), roles, via: Via::Api }
    }
    /// A caller through the typed act `act`.
    pub fn act(subject: impl Into<String>, roles: Vec<String>, act: &'static str) -> Self {
        Self { subject: subject.into(), roles, via: Via::Act(act) }
    }
    pub fn is_system(&self) -> bool {
        self.roles.iter().any(|r| r == "system")
    }
}

/// The working-day calendar and the office's zone that timers are computed in.
#[derive(Debug, Clone)]
pub struct TimeEnv {
    pub calendar: crate::domain::calendar::SharedCalendar,
    pub tz: Tz,
}

/// The parts of an instance the transition function reads.
#[derive(Debug, Clone)]
pub struct Snapshot<'a> {
    pub state: &'a str,
    pub context: &'a Value,
    pub deadlines: &'a BTreeMap<String, DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArmTimer {
    pub name: String,
    pub event: String,
    pub state: String,
    pub due_at: DateTime<Utc>,
    /// Counted over a provisional calendar year: recomputed when the official one is loaded.
    pub provisional: bool,
}

/// Everything one event causes.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub event: String,
    pub from: Option<String>,
    pub to: String,
    /// The state was left, so its pending timers are cancelled.
    pub left_state: bool,
    pub context: Value,
    pub arm: Vec<ArmTimer>,
    pub effects: Vec<Effect>,
    /// The instance's deadlines after the event, when it set or moved one.
    pub deadlines: Option<BTreeMap<String, DateTime<Utc>>>,
    /// Deadlines the event counted in working days (`deadline:after`), with how: the store keeps
    /// those counted over a provisional year, to recount them once the official one is on file.
    pub counted: Vec<Counted>,
}

/// A deadline counted `working_days` after `from`, ending at the end of the office day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counted {
    pub name: String,
    pub from: chrono::NaiveDate,
    pub working_days: i64,
    pub provisional: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("workflow {definition} has no event {event:?}")]
    UnknownEvent { definition: String, event: String },
    #[error("event {event:?} is not allowed in state {state:?}")]
    NotAllowedInState { event: String, state: String },
    #[error("event {event:?} may be fired by {allowed}, not by {actor}")]
    RoleNotAllowed { event: String, allowed: String, actor: String },
    #[error("refused by guard {guard}: {reason}")]
    GuardRefused { guard: String, reason: String },
    #[error("the payload must be a JSON object")]
    BadPayload,
    #[error("{name} must be an instant (RFC 3339, e.g. 2026-12-31T17:30:00+08:00): {reason}")]
    BadDeadline { name: String, reason: String },
    #[error("deadline {name:?} is not declared by workflow {definition}")]
    UnknownDeadline { definition: String, name: String },
    #[error(transparent)]
    Timing(#[from] TimingError),
    #[error(transparent)]
    Policy(#[from] PolicyRefusal),
}

fn arm_state(
    def: &Definition,
    state: &str,
    deadlines: &BTreeMap<String, DateTime<Utc>>,
    now: DateTime<Utc>,
    env: &TimeEnv,
) -> Result<Vec<ArmTimer>, TransitionError> {
    let Some(s) = def.states.get(state) else { return Ok(Vec::new()) };
    s.timers
        .iter()
        .map(|t| {
            let due_at = t.due_at(now, |n| deadlines.get(n).copied(), &env.calendar.get(), env.tz)?;
            let provisional = t.is_provisional(now, |n| deadlines.get(n).copied(), due_at, &env.calendar.get(), env.tz);
            Ok(ArmTimer { name: t.name.clone(), event: t.fire.clone(), state: state.to_string(), due_at, provisional })
        })
        .collect()
}

/// Keeps the context's list of deadlines counted over a provisional year (what a letter or a
/// reminder reads) in step with how `name` was just counted.
fn mark_provisional(context: &mut Value, name: &str, provisional: bool) {
    let Some(ctx) = context.as_object_mut() else { return };
    let list = ctx.entry("provisional_deadlines").or_insert_with(|| Value::Array(Vec::new()));
    if let Some(list) = list.as_array_mut() {
        list.retain(|n| n != name);
        if provisional {
            list.push(Value::String(name.to_string()));
        }
    }
}

/// A new instance enters the initial state: its timers are armed from `now` and its
/// deadlines. Recorded as the reserved event `start`.
pub fn start(
    def: &Definition,
    context: &Value,
    deadlines: &BTreeMap<String, DateTime<Utc>>,
    now: DateTime<Utc>,
    env: &TimeEnv,
) -> Result<Outcome, TransitionError> {
    if !context.is_object() {
        return Err(TransitionError::BadPayload);
    }
    if let Some(name) = deadlines.keys().find(|k| !def.deadlines.contains(k)) {
        return Err(TransitionError::UnknownDeadline { definition: def.name.clone(), name: name.clone() });
    }
    Ok(Outcome {
        event: "start".into(),
        from: None,
        to: def.initial.clone(),
        left_state: false,
        context: context.clone(),
        arm: arm_state(def, &def.initial, deadlines, now, env)?,
        effects: Vec::new(),
        deadlines: None,
        counted: Vec::new(),
    })
}

/// Fires `event` on an instance: which transition applies, whether `actor` may fire it,
/// whether its guards pass, and what follows.
pub fn fire(
    def: &Definition,
    instance: &Snapshot<'_>,
    event: &str,
    actor: &Actor,
    payload: &Value,
    now: DateTime<Utc>,
    env: &TimeEnv,
) -> Result<Outcome, TransitionError> {
    if !def.events.iter().any(|e| e == event) {
        return Err(TransitionError::UnknownEvent { definition: def.name.clone(), event: event.into() });
    }
    // Before the state and the role: a typed act's event is refused on the generic path whatever
    // state the instance is in, so the answer does not depend on the path's probing.
    if actor.via == Via::Api {
        if let Err(refusal @ PolicyRefusal::TypedActOnly { .. }) = def.acts.check_caller(event, &serde_json::Value::Null) {
            return Err(refusal.into());
        }
    }
    let t = def.transition(instance.state, event, instance.context).ok_or_else(|| TransitionError::NotAllowedInState {
        event: event.into(),
        state: instance.state.into(),
    })?;
    let permitted = if actor.is_system() { t.allows_system() } else { actor.roles.iter().any(|r| t.roles.contains(r)) };
    if !permitted {
        let allowed = if t.roles.is_empty() { "the system only".to_string() } else { t.roles.join(", ") };
        return Err(TransitionError::RoleNotAllowed { event: event.into(), allowed, actor: actor.roles.join(", ") });
    }
    if !(payload.is_object() || payload.is_null()) {
        return Err(TransitionError::BadPayload);
    }
    if actor.via == Via::Api {
        def.acts.check_caller(event, payload)?;
    }
    let deadline = |n: &str| instance.deadlines.get(n).copied();
    let input = GuardInput { context: instance.context, payload, deadline: &deadline, now };
    for (name, guard) in &t.guards {
        guard.check(&input).map_err(|reason| TransitionError::GuardRefused { guard: name.clone(), reason })?;
    }
    let mut context = instance.context.clone();
    let mut effects = Vec::new();
    let mut deadlines = None;
    let mut counted = Vec::new();
    for (_, effect) in &t.effects {
        match effect {
            Effect::MergePayload => {
                if let (Some(ctx), Some(p)) = (context.as_object_mut(), payload.as_object()) {
                    ctx.extend(p.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
            }
            Effect::SetDeadline { name } => {
                let bad = |reason: &str| TransitionError::BadDeadline { name: name.clone(), reason: reason.into() };
                let text = payload[name.as_str()].as_str().ok_or_else(|| bad("missing"))?;
                let at = DateTime::parse_from_rfc3339(text).map_err(|e| bad(&e.to_string()))?.with_timezone(&Utc);
                if at <= now {
                    return Err(bad("it has already passed"));
                }
                deadlines.get_or_insert_with(|| instance.deadlines.clone()).insert(name.clone(), at);
            }
            Effect::DeadlineAfter { name, days, default } => {
                let n = days.iter().fold(&context, |v, k| &v[k.as_str()]).as_i64().filter(|n| (1..=3650).contains(n)).unwrap_or(*default);
                let today = now.with_timezone(&env.tz).date_naive();
                let day = env.calendar.get().add_working_days(today, n).map_err(TimingError::from)?;
                let at = crate::domain::calendar::local_instant(day, END_OF_OFFICE_DAY, env.tz)
                    .ok_or_else(|| TransitionError::BadDeadline { name: name.clone(), reason: format!("{day} 17:30 does not exist in the office's zone") })?;
                deadlines.get_or_insert_with(|| instance.deadlines.clone()).insert(name.clone(), at);
                let provisional = env.calendar.get().is_provisional_between(today, day);
                mark_provisional(&mut context, name, provisional);
                counted.push(Counted { name: name.clone(), from: today, working_days: n, provisional });
            }
            other => effects.push(other.clone()),
        }
    }
    let current = deadlines.as_ref().unwrap_or(instance.deadlines);
    let (to, left_state, arm) = match &t.to {
        None => (instance.state.to_string(), false, Vec::new()),
        Some(to) => (to.clone(), true, arm_state(def, to, current, now, env)?),
    };
    Ok(Outcome { event: event.into(), from: Some(instance.state.into()), to, left_state, context, arm, effects, deadlines, counted })
}
