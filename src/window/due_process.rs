//! The procedure before an adverse decision on a broken commitment (issue #18): the
//! enterprise's statement (陈述、申辩), by itself or recorded for it at the window, and the
//! approving department's decision. Which states take them, and what follows, is in the
//! definitions (`breach_noticed`, `revocation_noticed`, …); these acts build the payload the
//! transitions merge and say who acted, so the case's timeline holds both.

use serde_json::json;

use super::error::WindowError;
use crate::auth::Claims;
use crate::runtime::Engine;
use crate::store::{self, instances, InstanceRecord};
use crate::workflow::Actor;

/// What the approving department decides on an intended revocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, async_graphql::Enum)]
pub enum RevocationDecision {
    /// Revoke the licence, or end the application where none was issued; the breach is recorded.
    Revoke,
    /// A grace period of the item's working days, once: the deadline moves, reminders follow.
    Grace,
    /// The statement is accepted: the licence stands and the case ends without a credit record.
    AcceptStatement,
}

impl RevocationDecision {
    fn event(self) -> &'static str {
        match self {
            Self::Revoke => "decide_revoke",
            Self::Grace => "decide_grace",
            Self::AcceptStatement => "decide_close",
        }
    }
}

pub(super) use super::error::text;

/// Fires `event` with `payload` as `caller` through the typed act `act`, in one transaction.
pub(super) async fn fire(engine: &Engine, caller: &Claims, act: &'static str, id: &str, event: &str, payload: serde_json::Value) -> Result<InstanceRecord, WindowError> {
    let actor = Actor::act(caller.sub.clone(), caller.roles.clone(), act);
    let txn = store::begin_write(&engine.db).await?;
    let fired = instances::fire(&txn, &engine.workflows, id, event, &actor, &payload, None, engine.now()).await?;
    txn.commit().await?;
    Ok(fired.instance)
}

/// The enterprise's statement on a notice of intended revocation (or of ending its
/// application): the case goes before the approving department. The caller's scope (its own
/// case, or its department's at the window) is checked by the API before this.
pub async fn state_case(engine: &Engine, caller: &Claims, id: &str, statement: &str) -> Result<InstanceRecord, WindowError> {
    let statement = text("statement", statement)?;
    let role = if caller.has_role("applicant") { "applicant" } else { "window" };
    let payload = json!({"statement": {"text": statement, "by": caller.sub, "role": role, "at": engine.now()}});
    fire(engine, caller, "stateCase", id, "statement", payload).await
}

/// The approving department's decision, with its reasons.
pub async fn decide(engine: &Engine, caller: &Claims, id: &str, decision: RevocationDecision, reason: &str) -> Result<InstanceRecord, WindowError> {
    let reason = text("reason", reason)?;
    let record = json!({"reason": reason, "by": caller.sub, "at": engine.now()});
    let payload = match decision {
        RevocationDecision::Grace => json!({"grace": record}),
        RevocationDecision::Revoke => json!({"revocation_decision": {"decision": "revoke", "reason": reason, "by": caller.sub, "at": engine.now()}}),
        RevocationDecision::AcceptStatement => {
            json!({"revocation_decision": {"decision": "accept_statement", "reason": reason, "by": caller.sub, "at": engine.now()}})
        }
    };
    fire(engine, caller, "decideRevocation", id, decision.event(), payload).await
}
