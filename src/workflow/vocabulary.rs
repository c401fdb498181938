//! The names a definition may use for guards and effects, and what each means. A guard is a
//! pure check over the instance and the event; an effect is either applied inside the
//! transition's transaction (context updates, spawning an instance) or written to the outbox
//! for delivery after commit (email, SMS, webhooks, signals to other instances).

use chrono::{DateTime, Utc};
use serde_json::Value;

/// Who may receive a message about an instance.
pub const RECIPIENTS: [&str; 6] = ["applicant", "window", "approver", "department", "division", "supervisors"];
/// Outside systems reached by webhook.
pub const WEBHOOK_CHANNELS: [&str; 4] = ["credit", "supervision", "approval", "sms"];
/// Roles a transition may name (besides the implicit system actor).
pub const ROLES: [&str; 9] = [
    "applicant",
    "window",
    "approver",
    "department_head",
    "division_admin",
    "inspector",
    "supervisor",
    "regional_admin",
    "system",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Guard {
    /// Every material the case deferred is named in the event's `received` list.
    AllDeferredMaterialsReceived,
    /// The event's payload carries a non-empty value under this key.
    PayloadHas(String),
    /// The named deadline has not passed yet.
    BeforeDeadline(String),
    /// The instance's context has no value under this key: something done once (a grace
    /// period) has not been done yet.
    Once(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Shallow-merge the event's payload object into the instance's context.
    MergePayload,
    /// Start an instance of another definition, in the same transaction.
    Spawn { definition: String },
    /// A message or webhook, delivered by the outbox after commit.
    Deliver { channel: Channel, recipient: String, topic: String },
    /// Fire an event on the parent instance, delivered by the outbox after commit.
    SignalParent { event: String },
    /// `signal:parent?:EVENT`: the same when the instance has a parent, nothing otherwise — a
    /// case may run alone or as a child of a bundle.
    SignalParentIfAny { event: String },
    /// `bundle:advance:EVENT`: start the children whose prerequisites (the definition's
    /// `[[children]]` order) now hold, in the same transaction; once every child has ended,
    /// signal EVENT to this instance itself.
    BundleAdvance { event: String },
    /// Fire an event on every child instance, delivered by the outbox after commit; a child
    /// that has moved on (the event no longer applies) is left alone.
    SignalChildren { event: String },
    /// Set (or move) a deadline to the instant the event's payload carries under its name
    /// (RFC 3339), before the new state's timers are armed.
    SetDeadline { name: String },
    /// `deadline:after:NAME:PATH:DEFAULT`: set (or move) a deadline to the end of the office
    /// day (17:30) that many working days from now as the context holds under PATH (dotted) —
    /// a period an item configures, copied into the case when it opened — or DEFAULT working
    /// days for an instance that holds none.
    DeadlineAfter { name: String, days: Vec<String>, default: i64 },
    /// A breach of a working-day limit (`look_at`, `feedback`), recorded against the
    /// instance's division in the same transaction.
    SlaBreach { limit: String },
    /// A credit record for the instance's applicant (`fulfilment`, `breach`, `revocation`),
    /// written in the same transaction.
    CreditRecord { kind: String },
}

/// Kinds of credit record a transition may write (repair is an act of its own).
pub const CREDIT_KINDS: [&str; 3] = ["fulfilment", "breach", "revocation"];

/// The supervision limits whose breach is recorded against a division.
/// `revocation_decision`: the approving department's limit for deciding on an intended
/// revocation, recorded against that department.
pub const SLA_LIMITS: [&str; 4] = ["look_at", "feedback", "revocation_decision", "legal_limit"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Email,
    Sms,
    Webhook,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
            Channel::Webhook => "webhook",
        }
    }
}

fn is_identifier(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

pub fn parse_guard(name: &str) -> Result<Guard, String> {
    let (head, arg) = match name.split_once(':') {
        Some((h, a)) => (h, Some(a)),
        None => (name, None),
    };
    match (head, arg) {
        ("all_deferred_materials_received", None) => Ok(Guard::AllDeferredMaterialsReceived),
        ("payload_has", Some(key)) if is_identifier(key) => Ok(Guard::PayloadHas(key.into())),
        ("before_deadline", Some(d)) if is_identifier(d) => Ok(Guard::BeforeDeadline(d.into())),
        ("once", Some(key)) if is_identifier(key) => Ok(Guard::Once(key.into())),
        _ => Err(format!(
            "unknown guard {name:?} (known: all_deferred_materials_received, payload_has:KEY, before_deadline:DEADLINE, once:KEY)"
        )),
    }
}

pub fn parse_effect(name: &str) -> Result<Effect, String> {
    let parts: Vec<&str> = name.split(':').collect();
    let unknown = || {
        format!(
            "unknown effect {name:?} (known: context:merge_payload, spawn:DEFINITION, signal:parent:EVENT, signal:parent?:EVENT, signal:children:EVENT, \
             bundle:advance:EVENT, deadline:from_payload:DEADLINE, deadline:after:DEADLINE:CONTEXT.PATH:DEFAULT_DAYS, \
             credit:fulfilment|breach|revocation, sla:look_at|feedback, \
             email|sms:RECIPIENT:TEMPLATE with RECIPIENT one of {}, webhook:CHANNEL:TOPIC with CHANNEL one of {})",
            RECIPIENTS.join("|"),
            WEBHOOK_CHANNELS.join("|")
        )
    };
    match parts.as_slice() {
        ["context", "merge_payload"] => Ok(Effect::MergePayload),
        ["spawn", def] if is_identifier(def) => Ok(Effect::Spawn { definition: def.to_string() }),
        ["signal", "parent", event] if is_identifier(event) => Ok(Effect::SignalParent { event: event.to_string() }),
        ["signal", "parent?", event] if is_identifier(event) => Ok(Effect::SignalParentIfAny { event: event.to_string() }),
        ["signal", "children", event] if is_identifier(event) => Ok(Effect::SignalChildren { event: event.to_string() }),
        ["bundle", "advance", event] if is_identifier(event) => Ok(Effect::BundleAdvance { event: event.to_string() }),
        ["deadline", "from_payload", name] if is_identifier(name) => Ok(Effect::SetDeadline { name: name.to_string() }),
        ["deadline", "after", name, path, default] if is_identifier(name) && path.split('.').all(is_identifier) => match default.parse::<i64>() {
            Ok(d) if (1..=3650).contains(&d) => Ok(Effect::DeadlineAfter { name: name.to_string(), days: path.split('.').map(str::to_string).collect(), default: d }),
            _ => Err(unknown()),
        },
        ["sla", limit] if SLA_LIMITS.contains(limit) => Ok(Effect::SlaBreach { limit: limit.to_string() }),
        ["credit", kind] if CREDIT_KINDS.contains(kind) => Ok(Effect::CreditRecord { kind: kind.to_string() }),
        [kind @ ("email" | "sms"), recipient, template] if RECIPIENTS.contains(recipient) && is_identifier(template) => {
            let channel = if *kind == "email" { Channel::Email } else { Channel::Sms };
            Ok(Effect::Deliver { channel, recipient: recipient.to_string(), topic: template.to_string() })
        }
        ["webhook", channel, topic] if WEBHOOK_CHANNELS.contains(channel) && is_identifier(topic) => {
            Ok(Effect::Deliver { channel: Channel::Webhook, recipient: channel.to_string(), topic: topic.to_string() })
        }
        _ => Err(unknown()),
    }
}

/// What a guard sees: the instance's context and deadlines, the event's payload, the time.
pub struct GuardInput<'a> {
    pub context: &'a Value,
    pub payload: &'a Value,
    pub deadline: &'a dyn Fn(&str) -> Option<DateTime<Utc>>,
    pub now: DateTime<Utc>,
}

impl Guard {
    /// `Err` carries the reason shown to the person whose event was refused.
    pub fn check(&self, input: &GuardInput<'_>) -> Result<(), String> {
        match self {
            Guard::AllDeferredMaterialsReceived => {
                let received: Vec<&str> = input.payload["received"]
                    .as_array()
                    .map(|a| a.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                let missing: Vec<&str> = input.context["materials"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter(|m| m["status"] == "deferred")
                            .filter_map(|m| m["code"].as_str())
                            .filter(|code| !received.contains(code))
                            .collect()
                    })
                    .unwrap_or_default();
                if missing.is_empty() {
                    Ok(())
                } else {
                    Err(format!("deferred materials not yet received: {}", missing.join(", ")))
                }
            }
            Guard::PayloadHas(key) => match &input.payload[key.as_str()] {
                Value::Null => Err(format!("{key} is required")),
                Value::String(s) if s.trim().is_empty() => Err(format!("{key} must not be empty")),
                _ => Ok(()),
            },
            Guard::BeforeDeadline(name) => match (input.deadline)(name) {
                Some(d) if input.now <= d => Ok(()),
                Some(d) => Err(format!("deadline {name} passed at {d}")),
                None => Err(format!("the instance has no deadline {name}")),
            },
            Guard::Once(key) => match &input.context[key.as_str()] {
                Value::Null => Ok(()),
                _ => Err(format!("{key} was already granted; it is granted once")),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_parse_into_guards_and_effects_or_are_refused() {
        assert_eq!(parse_guard("payload_has:reason"), Ok(Guard::PayloadHas("reason".into())));
        assert!(parse_guard("is_nice").is_err());
        assert!(parse_guard("payload_has:").is_err());
        assert_eq!(
            parse_effect("email:applicant:deferral_reminder"),
            Ok(Effect::Deliver { channel: Channel::Email, recipient: "applicant".into(), topic: "deferral_reminder".into() })
        );
        assert!(parse_effect("email:neighbour:hello").is_err());
        assert!(parse_effect("webhook:twitter:x").is_err());
        assert!(parse_effect("launch:rockets").is_err());
        assert_eq!(parse_effect("signal:parent?:child_ended"), Ok(Effect::SignalParentIfAny { event: "child_ended".into() }));
        assert_eq!(parse_effect("bundle:advance:all_ended"), Ok(Effect::BundleAdvance { event: "all_ended".into() }));
        assert!(parse_effect("bundle:advance").is_err());
    }

    #[test]
    fn deferred_materials_guard_names_what_is_missing() {
        let context = json!({"materials": [
            {"code": "M1", "status": "provided"},
            {"code": "M2", "status": "deferred"},
            {"code": "M3", "status": "deferred"}]});
        let none = |_: &str| None;
        let check = |payload: Value| {
            Guard::AllDeferredMaterialsReceived.check(&GuardInput { context: &context, payload: &payload, deadline: &none, now: Utc::now() })
        };
        assert_eq!(check(json!({"received": ["M2"]})), Err("deferred materials not yet received: M3".into()));
        assert_eq!(check(json!({"received": ["M3", "M2"]})), Ok(()));
    }
}
