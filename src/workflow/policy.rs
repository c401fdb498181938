//! Which events a caller may fire through the generic path (`fireEvent`), with what payload,
//! and which are reached only through their typed act (`workflows/policy/events.toml`).
//!
//! The file applies by definition name and event to every version, so instances pinned to an
//! old definition text are protected like new ones. The engine consults it whenever the actor
//! came through the generic path ([`Via::Api`](super::engine::Via)); a typed act has made its own
//! checks and builds its payload itself.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use serde_json::Value;

use super::problem::Problem;

/// What the policy is checked against in one definition: its file, its name and the events
/// people (any role but the system) may fire in it.
pub struct PeopleEvents<'a> {
    pub file: &'a str,
    pub name: &'a str,
    pub events: Vec<&'a str>,
}

/// The API's typed acts a rule may name in `via`: each one checks what its transition needs
/// before it fires it.
pub const TYPED_ACTS: [&str; 19] = [
    "openCase",
    "submitMaterial",
    "issueLicence",
    "returnApplication",
    "registerEnterprise",
    "deregisterBusinessLicence",
    "assignInspectors",
    "recordInspection",
    "feedBackInspection",
    "recordReinspection",
    "openBundle",
    "stateCase",
    "decideRevocation",
    "recordItemReexamination",
    "decideAcceptance",
    "receiveCorrection",
    "suspendReview",
    "resumeReview",
    "extendTimeLimit",
];

/// Where the policy sits inside a workflows folder.
pub const FILE: &str = "policy/events.toml";

/// Longest text a caller's payload value may hold.
const MAX_TEXT: usize = 2000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicySource {
    #[serde(default)]
    system_keys: Vec<String>,
    #[serde(default)]
    event: Vec<RuleSource>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSource {
    name: String,
    /// Definitions the rule is for; every definition when absent.
    definitions: Option<Vec<String>>,
    via: Option<String>,
    payload: Option<BTreeMap<String, String>>,
}

/// What a payload key may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    Text { required: bool },
}

impl KeyType {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "text" => Some(Self::Text { required: true }),
            "text?" => Some(Self::Text { required: false }),
            _ => None,
        }
    }

    /// `Err` says what is wrong with `value` (absent values are `Value::Null`).
    fn check(self, value: &Value) -> Result<(), String> {
        match (self, value) {
            (Self::Text { required: true }, Value::Null) => Err("is required".into()),
            (Self::Text { required: false }, Value::Null) => Ok(()),
            (Self::Text { required }, Value::String(s)) => {
                if s.trim().is_empty() && required {
                    Err("must not be empty".into())
                } else if s.chars().count() > MAX_TEXT {
                    Err(format!("must be at most {MAX_TEXT} characters"))
                } else if s.chars().any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t') {
                    Err("must not contain control characters".into())
                } else {
                    Ok(())
                }
            }
            (Self::Text { .. }, _) => Err("must be a text".into()),
        }
    }
}

/// The rule for one event of one definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventRule {
    /// Reached only through this typed act.
    Via(String),
    /// Open to the generic path with exactly these payload keys.
    Payload(BTreeMap<String, KeyType>),
}

/// A caller's payload or path refused by the policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyRefusal {
    #[error("event {event:?} is taken through {act}, which checks what it needs; fireEvent does not fire it")]
    TypedActOnly { event: String, act: String },
    #[error("event {event:?} cannot be fired through fireEvent")]
    NotOpen { event: String },
    #[error("payload key {key:?} is written by the system and cannot come from a caller")]
    SystemOwnedKey { key: String },
    #[error("payload key {key:?} is not declared for event {event:?} (declared: {declared})")]
    UndeclaredKey { event: String, key: String, declared: String },
    #[error("payload key {key:?} {reason}")]
    BadValue { key: String, reason: String },
}

impl PolicyRefusal {
    /// The payload key a refusal is about, if any.
    pub fn key(&self) -> Option<&str> {
        match self {
            Self::SystemOwnedKey { key } | Self::UndeclaredKey { key, .. } | Self::BadValue { key, .. } => Some(key),
            Self::TypedActOnly { .. } | Self::NotOpen { .. } => None,
        }
    }
}

/// The policy as it applies to one definition name (every version of it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DefinitionActs {
    rules: BTreeMap<String, EventRule>,
    system_keys: BTreeSet<String>,
}

impl DefinitionActs {
    pub fn rule(&self, event: &str) -> Option<&EventRule> {
        self.rules.get(event)
    }

    /// Whether a caller on the generic path may fire `event` with `payload` (an object or null).
    pub fn check_caller(&self, event: &str, payload: &Value) -> Result<(), PolicyRefusal> {
        let declared = match self.rules.get(event) {
            Some(EventRule::Via(act)) => return Err(PolicyRefusal::TypedActOnly { event: event.into(), act: act.clone() }),
            Some(EventRule::Payload(keys)) => keys,
            None => return Err(PolicyRefusal::NotOpen { event: event.into() }),
        };
        let empty = serde_json::Map::new();
        let given = payload.as_object().unwrap_or(&empty);
        for key in given.keys() {
            if self.system_keys.contains(key) {
                return Err(PolicyRefusal::SystemOwnedKey { key: key.clone() });
            }
            if !declared.contains_key(key) {
                let names: Vec<&str> = declared.keys().map(String::as_str).collect();
                let declared = if names.is_empty() { "none".to_string() } else { names.join(", ") };
                return Err(PolicyRefusal::UndeclaredKey { event: event.into(), key: key.clone(), declared });
            }
        }
        for (key, ty) in declared {
            ty.check(given.get(key).unwrap_or(&Value::Null)).map_err(|reason| PolicyRefusal::BadValue { key: key.clone(), reason })?;
        }
        Ok(())
    }
}

/// The whole policy file, checked.
#[derive(Debug, Clone, Default)]
pub struct EventPolicy {
    system_keys: BTreeSet<String>,
    rules: Vec<Rule>,
}

#[derive(Debug, Clone)]
struct Rule {
    event: String,
    definitions: Option<Vec<String>>,
    rule: EventRule,
    line: Option<usize>,
}

impl EventPolicy {
    /// Reads `dir/policy/events.toml`.
    pub fn load(source: &crate::domain::shipped::Source) -> Result<Self, Vec<Problem>> {
        let file = source.file(FILE).map_err(|u| {
            vec![Problem { file: u.place, line: None, place: "file".into(), message: format!("the event policy cannot be read: {}", u.reason) }]
        })?;
        Self::parse(&file.name, &file.text)
    }

    pub fn parse(file: &str, text: &str) -> Result<Self, Vec<Problem>> {
        let problem = |line: Option<usize>, place: String, message: String| Problem { file: file.to_string(), line, place, message };
        let src: PolicySource = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| text[..s.start].lines().count().max(1));
            vec![problem(line, "file".into(), format!("malformed event policy: {}", e.message()))]
        })?;
        // The line of each `[[event]]` table, in order, for the problems found below.
        let lines: Vec<usize> = text.lines().enumerate().filter(|(_, l)| l.trim() == "[[event]]").map(|(i, _)| i + 1).collect();
        let system_keys: BTreeSet<String> = src.system_keys.into_iter().collect();
        let mut problems = Vec::new();
        let mut rules = Vec::new();
        for (i, r) in src.event.into_iter().enumerate() {
            let line = lines.get(i).copied();
            let place = format!("event[{i}] {}", r.name);
            let rule = match (r.via, r.payload) {
                (Some(act), None) => {
                    if !TYPED_ACTS.contains(&act.as_str()) {
                        problems.push(problem(line, place.clone(), format!("unknown typed act {act:?} (known: {})", TYPED_ACTS.join(", "))));
                    }
                    EventRule::Via(act)
                }
                (None, Some(payload)) => {
                    let mut keys = BTreeMap::new();
                    for (key, ty) in payload {
                        if system_keys.contains(&key) {
                            problems.push(problem(line, place.clone(), format!("payload key {key:?} is system-owned")));
                        }
                        match KeyType::parse(&ty) {
                            Some(t) => {
                                keys.insert(key, t);
                            }
                            None => problems.push(problem(line, place.clone(), format!("unknown type {ty:?} for {key:?} (known: text, text?)"))),
                        }
                    }
                    EventRule::Payload(keys)
                }
                _ => {
                    problems.push(problem(line, place.clone(), "give exactly one of `via` (a typed act) or `payload` (what fireEvent may carry)".into()));
                    continue;
                }
            };
            rules.push(Rule { event: r.name, definitions: r.definitions, rule, line });
        }
        if problems.is_empty() {
            Ok(Self { system_keys, rules })
        } else {
            Err(problems)
        }
    }

    /// One line per rule, for `check-workflows`: `event → act` or `event: fireEvent {keys}`.
    pub fn describe(&self) -> Vec<String> {
        self.rules
            .iter()
            .map(|r| {
                let scope = r.definitions.as_ref().map(|d| format!(" ({})", d.join(", "))).unwrap_or_default();
                match &r.rule {
                    EventRule::Via(act) => format!("{}{scope} → {act}", r.event),
                    EventRule::Payload(keys) => {
                        let keys: Vec<String> = keys.iter().map(|(k, t)| if matches!(t, KeyType::Text { required: false }) { format!("{k}?") } else { k.clone() }).collect();
                        format!("{}{scope} → fireEvent {{{}}}", r.event, keys.join(", "))
                    }
                }
            })
            .collect()
    }

    /// The rules for `name`: a rule naming the definition wins over one for every definition.
    pub fn for_definition(&self, name: &str) -> DefinitionActs {
        let mut rules = BTreeMap::new();
        for specific in [false, true] {
            for r in self.rules.iter().filter(|r| r.definitions.is_some() == specific) {
                if r.definitions.as_ref().is_none_or(|d| d.iter().any(|d| d == name)) {
                    rules.insert(r.event.clone(), r.rule.clone());
                }
            }
        }
        DefinitionActs { rules, system_keys: self.system_keys.clone() }
    }

    /// Problems of the policy against every loaded definition (every version): an event a person
    /// may fire without a rule, two rules for the same event and definition. (A rule for a
    /// definition not in the folder is no problem: one policy serves every installation.)
    pub fn check(&self, file: &str, defs: &[PeopleEvents<'_>]) -> Vec<Problem> {
        let mut problems = Vec::new();
        for (i, r) in self.rules.iter().enumerate() {
            let place = format!("event[{i}] {}", r.event);
            let twin = self.rules[..i].iter().find(|o| {
                o.event == r.event
                    && o.definitions.is_some() == r.definitions.is_some()
                    && match (&o.definitions, &r.definitions) {
                        (Some(a), Some(b)) => a.iter().any(|x| b.contains(x)),
                        _ => true,
                    }
            });
            if twin.is_some() {
                problems.push(Problem { file: file.into(), line: r.line, place, message: "a second rule for the same event and definition".into() });
            }
        }
        let mut seen = BTreeSet::new();
        for d in defs {
            let acts = self.for_definition(d.name);
            for on in &d.events {
                if acts.rule(on).is_none() && seen.insert((d.name, *on)) {
                    problems.push(Problem {
                        file: d.file.to_string(),
                        line: None,
                        place: format!("event {on}"),
                        message: format!("people may fire {on:?}, but {file} has no rule for it (a `via` typed act, or the payload fireEvent may carry)"),
                    });
                }
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const POLICY: &str = r#"
system_keys = ["scope", "licence_number"]
[[event]]
name = "approve"
via = "issueLicence"
[[event]]
name = "approve"
definitions = ["business-registration"]
via = "registerEnterprise"
[[event]]
name = "refuse"
payload = { reason = "text" }
[[event]]
name = "withdraw"
payload = { reason = "text?" }
"#;

    #[test]
    fn a_caller_may_fire_only_open_events_with_their_declared_keys() {
        let policy = EventPolicy::parse("p.toml", POLICY).unwrap();
        let acts = policy.for_definition("material-deferral");
        assert_eq!(
            acts.check_caller("approve", &json!({"licence_number": "X"})),
            Err(PolicyRefusal::TypedActOnly { event: "approve".into(), act: "issueLicence".into() })
        );
        assert_eq!(policy.for_definition("business-registration").rule("approve"), Some(&EventRule::Via("registerEnterprise".into())));
        assert_eq!(acts.check_caller("refuse", &json!({"reason": "不符合条件"})), Ok(()));
        assert_eq!(acts.check_caller("refuse", &json!({})), Err(PolicyRefusal::BadValue { key: "reason".into(), reason: "is required".into() }));
        assert_eq!(acts.check_caller("refuse", &json!({"reason": "x", "scope": {"region": "999999"}})), Err(PolicyRefusal::SystemOwnedKey { key: "scope".into() }));
        assert!(matches!(acts.check_caller("refuse", &json!({"reason": "x", "note": 1})), Err(PolicyRefusal::UndeclaredKey { .. })));
        assert!(matches!(acts.check_caller("refuse", &json!({"reason": 7})), Err(PolicyRefusal::BadValue { .. })));
        assert!(matches!(acts.check_caller("refuse", &json!({"reason": "a\u{0}b"})), Err(PolicyRefusal::BadValue { .. })));
        assert_eq!(acts.check_caller("withdraw", &Value::Null), Ok(()));
        assert_eq!(acts.check_caller("expire", &json!({})), Err(PolicyRefusal::NotOpen { event: "expire".into() }));
    }

    #[test]
    fn a_rule_must_say_one_thing_in_known_words() {
        let bad = "[[event]]\nname = \"x\"\nvia = \"hackTheGibson\"\n[[event]]\nname = \"y\"\n[[event]]\nname = \"z\"\npayload = { scope = \"text\", n = \"number\" }\n";
        let problems = EventPolicy::parse("p.toml", &format!("system_keys = [\"scope\"]\n{bad}")).unwrap_err();
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert!(text.iter().any(|p| p.contains("p.toml:2:") && p.contains("unknown typed act")), "{text:?}");
        assert!(text.iter().any(|p| p.contains("exactly one of")), "{text:?}");
        assert!(text.iter().any(|p| p.contains("\"scope\" is system-owned")), "{text:?}");
        assert!(text.iter().any(|p| p.contains("unknown type \"number\"")), "{text:?}");
    }
}
