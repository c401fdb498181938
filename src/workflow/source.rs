//! The raw shape of a `workflows/*.toml` file, exactly as written, parsed strictly
//! (`deny_unknown_fields`). `validate` turns it into a checked [`Definition`](super::Definition).

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefinitionSource {
    pub name: String,
    pub version: i64,
    pub title: Option<String>,
    pub description: Option<String>,
    pub initial: String,
    /// Named deadlines an instance carries (set when it starts), which timers may refer to.
    #[serde(default)]
    pub deadlines: Vec<String>,
    pub events: Vec<String>,
    pub states: BTreeMap<String, StateSource>,
    #[serde(default)]
    pub transitions: Vec<TransitionSource>,
    /// A bundle's kinds of child and the order between them (`after`).
    #[serde(default)]
    pub children: Vec<ChildSource>,
}

/// One kind of child a bundle opens: started by its own `workflow` (the business licence's
/// registration), or, without one, the catalogue's items each in its commitment mode.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChildSource {
    pub kind: String,
    pub title: Option<String>,
    pub workflow: Option<String>,
    /// Kinds whose children must be approved before these start.
    #[serde(default)]
    pub after: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateSource {
    pub title: Option<String>,
    #[serde(default, rename = "final")]
    pub is_final: bool,
    #[serde(default)]
    pub timers: Vec<TimerSource>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimerSource {
    /// Defaults to the event it fires.
    pub name: Option<String>,
    pub fire: String,
    /// `entry` (the default) or `deadline:NAME`.
    pub at: Option<String>,
    /// e.g. `3 working days`, `-1 working day`, `48 hours`, `10 calendar days`.
    pub offset: Option<String>,
    /// Local time of day `HH:MM` in the office's zone, for day offsets.
    pub time: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransitionSource {
    pub from: OneOrMany,
    pub on: String,
    /// Absent for internal transitions, which stay in the state without re-arming its timers.
    pub to: Option<String>,
    #[serde(default)]
    pub internal: bool,
    /// `"KEY.PATH"` or `"!KEY.PATH"`: taken only when that context value is (not) set.
    /// Several transitions may leave one state on one event when each has its own `when`;
    /// the first whose condition holds is taken.
    pub when: Option<String>,
    /// Roles that may fire it; empty means only the system (timers, other instances).
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub guards: Vec<String>,
    #[serde(default)]
    pub effects: Vec<String>,
}

/// The 1-based line of each `[[transitions]]` header, `[states.X]` table and top-level key
/// (`name = …`, `events = …`), so that problems can point at the place a person would edit.
pub struct LineIndex {
    transitions: Vec<usize>,
    children: Vec<usize>,
    states: BTreeMap<String, usize>,
    keys: BTreeMap<String, usize>,
    first_state: Option<usize>,
}

impl LineIndex {
    pub fn of(text: &str) -> Self {
        let mut transitions = Vec::new();
        let mut children = Vec::new();
        let mut states = BTreeMap::new();
        let mut keys = BTreeMap::new();
        let mut first_state = None;
        let mut in_table = false;
        for (i, line) in text.lines().enumerate() {
            let t = line.trim();
            if t.starts_with('[') {
                in_table = true;
            } else if !in_table {
                if let Some((key, _)) = t.split_once('=') {
                    keys.entry(key.trim().trim_matches('"').to_string()).or_insert(i + 1);
                }
            }
            if t.starts_with("[states.") {
                first_state.get_or_insert(i + 1);
            }
            if t.starts_with("[[transitions]]") {
                transitions.push(i + 1);
            } else if t.starts_with("[[children]]") {
                children.push(i + 1);
            } else if let Some(rest) = t.strip_prefix("[states.") {
                if let Some(name) = rest.split(']').next() {
                    let name = name.split('.').next().unwrap_or(name).trim_matches('"');
                    states.entry(name.to_string()).or_insert(i + 1);
                }
            }
        }
        Self { transitions, children, states, keys, first_state }
    }

    /// The line of a top-level key; for `states`, the first state's table.
    pub fn key(&self, key: &str) -> Option<usize> {
        self.keys.get(key).copied().or(if key == "states" { self.first_state } else { None })
    }

    pub fn transition(&self, index: usize) -> Option<usize> {
        self.transitions.get(index).copied()
    }

    pub fn child(&self, index: usize) -> Option<usize> {
        self.children.get(index).copied()
    }

    pub fn state(&self, name: &str) -> Option<usize> {
        self.states.get(name).copied()
    }
}
