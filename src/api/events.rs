//! Acting on an instance: firing one of its definition's events as the caller. The engine
//! checks the caller's role against the transition; the API checks the instance is in the
//! caller's scope first (out of scope is not found).

use async_graphql::{Context, ErrorExtensions, InputObject, Json, Object, SimpleObject, ID};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::access::{self, error, ErrorCode};
use super::types::WorkflowInstance;
use crate::runtime::Engine;
use crate::store::{self, idempotency, instances, StoreError};
use crate::workflow::{policy::PolicyRefusal, Actor, TransitionError};

#[derive(InputObject)]
pub struct FireEventInput {
    pub instance_id: ID,
    pub event: String,
    /// What the event carries: only the keys `workflows/policy/events.toml` declares for it
    /// (e.g. `{"reason": "…"}` for `refuse`); any other key is refused, never merged.
    pub payload: Option<Json<Value>>,
    /// The instance version the caller saw; refused with CONFLICT if it has moved on.
    pub expected_version: Option<i64>,
    /// A retried request with the same key returns the first result instead of acting again.
    pub idempotency_key: Option<String>,
}

#[derive(SimpleObject)]
pub struct FireEventPayload {
    pub instance: WorkflowInstance,
    /// The audit event's sequence number.
    pub seq: i64,
    /// Instances the event started (e.g. a supervision task).
    pub spawned: Vec<ID>,
    /// True when this answers a retry of an earlier request with the same idempotency key.
    pub replayed: bool,
}

#[derive(Default)]
pub struct EventMutation;

/// The coded GraphQL error for a store failure.
pub fn store_error(e: StoreError) -> async_graphql::Error {
    match e {
        StoreError::NotFound(id) => error("NOT_FOUND", format!("no instance {id}")),
        StoreError::Conflict { expected, actual, .. } => {
            error("CONFLICT", format!("the instance is at version {actual}, not {expected}: reload and try again"))
        }
        StoreError::Transition(TransitionError::RoleNotAllowed { .. }) => error("FORBIDDEN", e.to_string()),
        StoreError::Transition(TransitionError::Policy(refusal)) => policy_error(refusal),
        StoreError::Transition(TransitionError::UnknownEvent { .. }) => {
            error("BAD_USER_INPUT", e.to_string()).extend_with(|_, x| x.set("field", "event"))
        }
        StoreError::Transition(t) => error("INVALID_TRANSITION", t.to_string()),
        other => other.internal(),
    }
}

/// The event policy's refusals: the generic path is closed to a typed act's event (FORBIDDEN,
/// naming the act), a payload key it may not carry (BAD_USER_INPUT naming `payload.KEY`).
fn policy_error(refusal: PolicyRefusal) -> async_graphql::Error {
    let message = refusal.to_string();
    let (code, reason) = match &refusal {
        PolicyRefusal::TypedActOnly { .. } => ("FORBIDDEN", "TYPED_ACT_ONLY"),
        PolicyRefusal::NotOpen { .. } => ("FORBIDDEN", "NOT_OPEN_TO_FIRE_EVENT"),
        PolicyRefusal::SystemOwnedKey { .. } => ("BAD_USER_INPUT", "SYSTEM_OWNED_KEY"),
        PolicyRefusal::UndeclaredKey { .. } => ("BAD_USER_INPUT", "UNDECLARED_PAYLOAD_KEY"),
        PolicyRefusal::BadValue { .. } => ("BAD_USER_INPUT", "BAD_PAYLOAD_VALUE"),
    };
    error(code, message).extend_with(|_, e| {
        e.set("reason", reason);
        match &refusal {
            PolicyRefusal::TypedActOnly { act, .. } => e.set("act", act.as_str()),
            other => e.set("field", other.key().map_or_else(|| "payload".to_string(), |k| format!("payload.{k}"))),
        }
    })
}

#[Object]
impl EventMutation {
    /// Fires `event` on an instance as the caller: only events with no typed act (e.g.
    /// `withdraw`, `refuse`, `revoke`); an event reached through its typed act (`approve` →
    /// `issueLicence`, …) is refused with FORBIDDEN, `extensions.reason` TYPED_ACT_ONLY and the
    /// act's name in `extensions.act`.
    #[graphql(guard = "access::ANYONE")]
    async fn fire_event(&self, ctx: &Context<'_>, input: FireEventInput) -> async_graphql::Result<FireEventPayload> {
        let engine = ctx.data::<Engine>()?;
        let claims = access::claims(ctx)?;
        let id = input.instance_id.to_string();
        if access::visible_instance(&engine.db, claims, &id).await?.is_none() {
            return Err(error("NOT_FOUND", format!("no instance {id}")));
        }
        let payload = input.payload.map(|j| j.0).unwrap_or_else(|| json!({}));
        if !payload.is_object() {
            return Err(error("BAD_USER_INPUT", "payload must be an object").extend_with(|_, e| e.set("field", "payload")));
        }
        let operation = format!(
            "fireEvent:{id}:{}:{}",
            input.event,
            hex::encode(Sha256::digest(payload.to_string().as_bytes()))
        );
        if let Some(key) = &input.idempotency_key {
            if let Some(done) = idempotency::find(&engine.db, &claims.sub, key).await.map_err(|e| e.internal())? {
                return replay(engine, &operation, done).await;
            }
        }
        let actor = Actor::api(claims.sub.clone(), claims.roles.clone());
        let now = engine.now();
        let txn = store::begin_write(&engine.db).await.map_err(|e| e.internal())?;
        let fired = match instances::fire(&txn, &engine.workflows, &id, &input.event, &actor, &payload, input.expected_version, now).await {
            Ok(r) => r,
            Err(e) => {
                let _ = txn.rollback().await;
                // A retry racing the first request with the same key finds the instance already
                // moved on by it: once that request has committed, the retry is its replay.
                if let Some(key) = &input.idempotency_key {
                    if let Some(done) = idempotency::find(&engine.db, &claims.sub, key).await.map_err(|e| e.internal())? {
                        return replay(engine, &operation, done).await;
                    }
                }
                return Err(store_error(e));
            }
        };
        if let Some(key) = &input.idempotency_key {
            let result = json!({ "instance_id": id, "seq": fired.seq, "spawned": fired.spawned });
            if !idempotency::record(&txn, &claims.sub, key, &operation, &result, now.timestamp_millis()).await.map_err(|e| e.internal())? {
                let _ = txn.rollback().await;
                let done = idempotency::find(&engine.db, &claims.sub, key).await.map_err(|e| e.internal())?;
                let done = done.ok_or_else(|| error("CONFLICT", "the idempotency key is in use by a concurrent request"))?;
                return replay(engine, &operation, done).await;
            }
        }
        txn.commit().await.map_err(|e| e.internal())?;
        Ok(FireEventPayload {
            instance: WorkflowInstance(fired.instance),
            seq: fired.seq,
            spawned: fired.spawned.into_iter().map(ID).collect(),
            replayed: false,
        })
    }
}

async fn replay(engine: &Engine, operation: &str, done: idempotency::Recorded) -> async_graphql::Result<FireEventPayload> {
    if done.operation != operation {
        return Err(error("CONFLICT", "this idempotency key was used for a different request")
            .extend_with(|_, e| e.set("field", "idempotencyKey")));
    }
    let result: Value = serde_json::from_str(&done.result).map_err(|e| StoreError::Corrupt(e.to_string()).internal())?;
    let id = result["instance_id"].as_str().unwrap_or_default();
    let instance = engine.instance(id).await.map_err(store_error)?.ok_or_else(|| error("NOT_FOUND", format!("no instance {id}")))?;
    Ok(FireEventPayload {
        instance: WorkflowInstance(instance),
        seq: result["seq"].as_i64().unwrap_or_default(),
        spawned: result["spawned"].as_array().into_iter().flatten().filter_map(Value::as_str).map(|s| ID(s.to_string())).collect(),
        replayed: true,
    })
}
