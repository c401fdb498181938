//! What leaves by webhook: each topic has its own typed body holding only what its receiver
//! needs, built from the transition's outbox payload. Staff ids beyond the deciding act, the
//! approver's notes, inspection notes, contact details and signatures stay inside unless a
//! receiver's work needs them (the supervising division contacts the enterprise for its visit).
//! A topic without a body of its own sends the bare envelope.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::message::inherited;

fn text(v: &Value) -> Option<String> {
    v.as_str().filter(|s| !s.is_empty()).map(str::to_string)
}

/// An enterprise by its code and name.
#[derive(Debug, Serialize, PartialEq)]
pub struct Enterprise {
    pub uscc: Option<String>,
    pub name: Option<String>,
}

/// An item, department or division by its code and name.
#[derive(Debug, Serialize, PartialEq)]
pub struct Named {
    pub code: Option<String>,
    pub name: Option<String>,
}

fn named(v: &Value) -> Named {
    Named { code: text(&v["code"]), name: text(&v["name"]) }
}

fn enterprise(ctx: &Value) -> Enterprise {
    let a = inherited(ctx, "applicant");
    Enterprise { uscc: text(&a["uscc"]), name: text(&a["name"]) }
}

/// `credit:breach|fulfilment` → the public credit platform: who, for which item, what, when,
/// decided by which department.
#[derive(Debug, Serialize, PartialEq)]
pub struct CreditNotice {
    pub topic: String,
    pub key: String,
    /// The case the record is about (for a supervision task's breach, its case).
    pub case_id: String,
    pub kind: String,
    /// The event that decided it (`expire`, `revoke`, `still_failing`, `supervision_closed`, …).
    pub cause: String,
    pub occurred_at: DateTime<Utc>,
    pub enterprise: Enterprise,
    pub item: Named,
    pub deciding_department: Named,
}

/// The case the supervision platform archives for the visit: what was approved and promised.
#[derive(Debug, Serialize, PartialEq)]
pub struct ArchivedCase {
    pub instance_id: String,
    pub definition: String,
    pub state: String,
    pub context: ArchivedContext,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct ArchivedContext {
    pub item: Value,
    pub mode: Value,
    /// Code, name and the contacts the division arranges its visit through.
    pub applicant: Value,
    /// Word for word what was promised, its version and signer.
    pub commitment: Value,
    pub materials: Value,
    pub licence_number: Value,
    pub decision: Value,
    pub department: Named,
    pub division: Named,
    pub supervision: Value,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct SupervisionArchive {
    pub topic: String,
    pub key: String,
    pub case: ArchivedCase,
}

/// `supervision:sla_breach` → the supervision platform: a division missed a limit on a task.
#[derive(Debug, Serialize, PartialEq)]
pub struct SlaBreachNotice {
    pub topic: String,
    pub key: String,
    pub task_id: String,
    pub case_id: Option<String>,
    /// The limit missed, as the event that found it (`look_at_overdue`, `feedback_overdue`).
    pub limit: String,
    pub occurred_at: DateTime<Utc>,
    pub division: Named,
    pub item: Named,
    pub enterprise: Enterprise,
}

/// `sms:task_assigned` → the SMS gateway: a division has a new task (no case details).
#[derive(Debug, Serialize, PartialEq)]
pub struct TaskAssigned {
    pub topic: String,
    pub key: String,
    pub task_id: String,
    pub division: Named,
    pub item: Named,
}

/// Any other topic: the bare envelope.
#[derive(Debug, Serialize, PartialEq)]
pub struct Envelope {
    pub topic: String,
    pub key: String,
    pub instance_id: String,
    pub event: String,
    pub state: String,
    pub occurred_at: DateTime<Utc>,
}

/// The body for a webhook to `channel` about `topic`, from the transition's outbox payload.
pub fn body(channel: &str, topic: &str, key: &str, payload: &Value, occurred_at: DateTime<Utc>) -> Value {
    let ctx = &payload["context"];
    let id = payload["instance_id"].as_str().unwrap_or_default().to_string();
    let event = payload["event"].as_str().unwrap_or_default().to_string();
    let parent_id = text(&ctx["parent"]["id"]);
    let (topic, key) = (topic.to_string(), key.to_string());
    let json = match (channel, topic.as_str()) {
        ("credit", _) => serde_json::to_value(CreditNotice {
            case_id: parent_id.unwrap_or(id),
            kind: topic.clone(),
            cause: event,
            occurred_at,
            enterprise: enterprise(ctx),
            item: named(inherited(ctx, "item")),
            deciding_department: named(inherited(ctx, "department")),
            topic,
            key,
        }),
        ("supervision", "archive") => {
            let applicant = &ctx["applicant"];
            serde_json::to_value(SupervisionArchive {
                case: ArchivedCase {
                    instance_id: id,
                    definition: payload["definition"].as_str().unwrap_or_default().to_string(),
                    state: payload["to"].as_str().unwrap_or_default().to_string(),
                    context: ArchivedContext {
                        item: ctx["item"].clone(),
                        mode: ctx["mode"].clone(),
                        applicant: serde_json::json!({"uscc": applicant["uscc"], "name": applicant["name"], "email": applicant["email"], "mobile": applicant["mobile"]}),
                        commitment: ctx["commitment"].clone(),
                        materials: ctx["materials"].clone(),
                        licence_number: ctx["licence_number"].clone(),
                        decision: ctx["decision"].clone(),
                        department: named(&ctx["department"]),
                        division: named(&ctx["division"]),
                        supervision: ctx["supervision"].clone(),
                    },
                },
                topic,
                key,
            })
        }
        ("supervision", "sla_breach") => serde_json::to_value(SlaBreachNotice {
            task_id: id,
            case_id: parent_id,
            limit: event,
            occurred_at,
            division: named(inherited(ctx, "division")),
            item: named(inherited(ctx, "item")),
            enterprise: enterprise(ctx),
            topic,
            key,
        }),
        ("sms", "task_assigned") => serde_json::to_value(TaskAssigned {
            task_id: id,
            division: named(inherited(ctx, "division")),
            item: named(inherited(ctx, "item")),
            topic,
            key,
        }),
        _ => serde_json::to_value(Envelope { instance_id: id, event, state: payload["to"].as_str().unwrap_or_default().to_string(), occurred_at, topic, key }),
    };
    json.unwrap_or(Value::Null)
}
