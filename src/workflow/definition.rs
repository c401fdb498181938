//! A checked workflow definition, and the checks that make one out of a TOML file. Every
//! problem found is reported with its file, line and place, not only the first.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use sha2::{Digest, Sha256};

use super::source::{DefinitionSource, LineIndex, TransitionSource};
use super::timing::{parse_anchor, parse_offset, parse_time_of_day, Anchor, Offset, TimerSpec};
use super::vocabulary::{parse_effect, parse_guard, Effect, Guard, ROLES};

#[derive(Debug, Clone)]
pub struct Definition {
    pub name: String,
    pub version: i64,
    pub title: Option<String>,
    pub description: Option<String>,
    pub initial: String,
    pub deadlines: Vec<String>,
    pub events: Vec<String>,
    pub states: BTreeMap<String, State>,
    pub transitions: Vec<Transition>,
    /// A bundle's kinds of child, in the order declared; empty for every other definition.
    pub children: Vec<ChildKind>,
    /// The file's text, kept so that an instance's exact definition can be stored and shown.
    pub source: String,
    /// SHA-256 of `source`: the same name and version must never mean two different texts.
    pub digest: String,
    /// The event policy for this definition's name (every version), set by the set it joins.
    pub acts: std::sync::Arc<super::policy::DefinitionActs>,
}

/// One kind of child a bundle opens, and the kinds that must be approved before it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildKind {
    pub kind: String,
    pub title: Option<String>,
    /// The workflow its children start on; `None` for the catalogue's items, whose workflow is
    /// their commitment mode's.
    pub workflow: Option<String>,
    pub after: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct State {
    pub title: Option<String>,
    pub is_final: bool,
    pub timers: Vec<TimerSpec>,
}

#[derive(Debug, Clone)]
pub struct Transition {
    pub from: Vec<String>,
    pub on: String,
    /// `None` for an internal transition: the instance stays and its timers stay armed.
    pub to: Option<String>,
    /// Taken only when this holds of the instance's context.
    pub when: Option<Condition>,
    pub roles: Vec<String>,
    pub guards: Vec<(String, Guard)>,
    pub effects: Vec<(String, Effect)>,
}

/// A transition's `when`: a context value (by dotted path) that is, or is not, set — neither
/// absent, `false` nor empty: a choice the instance carries (an item's policy copied at its
/// start, a licence issued), not a check of the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub path: Vec<String>,
    pub negated: bool,
}

impl Condition {
    pub fn parse(s: &str) -> Result<Self, String> {
        let (negated, path) = match s.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let path: Vec<String> = path.split('.').map(str::to_string).collect();
        if path.iter().any(|p| !is_name(p)) {
            return Err(format!("when = {s:?}: expected a context path such as \"due_process.decision_required\", or it with a leading !"));
        }
        Ok(Self { path, negated })
    }

    pub fn holds(&self, context: &serde_json::Value) -> bool {
        use serde_json::Value;
        let set = !matches!(self.path.iter().fold(context, |v, k| &v[k.as_str()]), Value::Null | Value::Bool(false))
            && self.path.iter().fold(context, |v, k| &v[k.as_str()]).as_str() != Some("");
        set != self.negated
    }
}

impl Transition {
    /// The system actor (timers, signals from other instances) may fire transitions that name
    /// no role, or name `system`.
    pub fn allows_system(&self) -> bool {
        self.roles.is_empty() || self.roles.iter().any(|r| r == "system")
    }
}

impl Definition {
    /// The transition `event` takes from `state` for an instance with `context`: the first
    /// whose `when` holds.
    pub fn transition(&self, state: &str, event: &str, context: &serde_json::Value) -> Option<&Transition> {
        self.transitions
            .iter()
            .find(|t| t.on == event && t.from.iter().any(|f| f == state) && t.when.as_ref().is_none_or(|w| w.holds(context)))
    }

    pub fn is_final(&self, state: &str) -> bool {
        self.states.get(state).is_some_and(|s| s.is_final)
    }

    /// The kind the catalogue's items belong to (the one without a workflow of its own).
    pub fn catalogue_kind(&self) -> Option<&ChildKind> {
        self.children.iter().find(|c| c.workflow.is_none())
    }

    /// The kind whose children start on `workflow`.
    pub fn kind_started_by(&self, workflow: &str) -> Option<&ChildKind> {
        self.children.iter().find(|c| c.workflow.as_deref() == Some(workflow))
    }
}

pub use super::problem::Problem;

struct Problems<'a> {
    file: &'a str,
    lines: LineIndex,
    found: Vec<Problem>,
}

impl Problems<'_> {
    fn at(&mut self, line: Option<usize>, place: impl Into<String>, message: impl Into<String>) {
        self.found.push(Problem { file: self.file.to_string(), line, place: place.into(), message: message.into() });
    }
    fn top(&mut self, place: &str, message: impl Into<String>) {
        let line = self.lines.key(place);
        self.at(line, place, message)
    }
    fn state(&mut self, state: &str, place: impl Into<String>, message: impl Into<String>) {
        let line = self.lines.state(state);
        self.at(line, place, message)
    }
    fn child(&mut self, index: usize, message: impl Into<String>) {
        let line = self.lines.child(index);
        self.at(line, format!("children[{index}]"), message)
    }
    fn transition(&mut self, index: usize, message: impl Into<String>) {
        let line = self.lines.transition(index);
        self.at(line, format!("transitions[{index}]"), message)
    }
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// Parses and checks one definition file.
pub fn parse_definition(file: &str, text: &str) -> Result<Definition, Vec<Problem>> {
    let mut p = Problems { file, lines: LineIndex::of(text), found: Vec::new() };
    let src: DefinitionSource = match toml::from_str(text) {
        Ok(src) => src,
        Err(e) => {
            let line = e.span().map(|s| text[..s.start].lines().count().max(1));
            p.at(line, "file", format!("malformed definition: {}", e.message()));
            return Err(p.found);
        }
    };
    let def = check(&mut p, src, text);
    if p.found.is_empty() {
        Ok(def)
    } else {
        Err(p.found)
    }
}

fn check(p: &mut Problems<'_>, src: DefinitionSource, text: &str) -> Definition {
    if !is_name(&src.name) {
        p.top("name", format!("{:?} is not a lowercase name (letters, digits, - and _)", src.name));
    }
    if src.version < 1 {
        p.top("version", format!("{} is not a version (1 or more)", src.version));
    }
    if !src.states.contains_key(&src.initial) {
        p.top("initial", format!("unknown state {:?}", src.initial));
    }
    let events: BTreeSet<&str> = src.events.iter().map(String::as_str).collect();
    let deadlines: BTreeSet<&str> = src.deadlines.iter().map(String::as_str).collect();
    for (what, list, set) in [("events", &src.events, &events), ("deadlines", &src.deadlines, &deadlines)] {
        if list.len() != set.len() {
            p.top(what, "a name is listed twice");
        }
        if let Some(bad) = list.iter().find(|n| !is_name(n)) {
            p.top(what, format!("{bad:?} is not a lowercase name"));
        }
    }
    if events.contains("start") {
        p.top("events", "\"start\" is reserved for the creation of an instance");
    }

    let mut states = BTreeMap::new();
    for (name, state) in &src.states {
        if !is_name(name) {
            p.state(name, format!("states.{name}"), "not a lowercase name");
        }
        if state.is_final && !state.timers.is_empty() {
            p.state(name, format!("states.{name}"), "a final state cannot have timers");
        }
        let mut timers = Vec::new();
        let mut timer_names = BTreeSet::new();
        for (i, t) in state.timers.iter().enumerate() {
            let place = format!("states.{name}.timers[{i}]");
            let timer_name = t.name.clone().unwrap_or_else(|| t.fire.clone());
            if !timer_names.insert(timer_name.clone()) {
                p.state(name, &place, format!("timer name {timer_name:?} is used twice in this state"));
            }
            if !events.contains(t.fire.as_str()) {
                p.state(name, &place, format!("fires unknown event {:?}", t.fire));
            }
            let anchor = parse_anchor(t.at.as_deref()).unwrap_or_else(|e| {
                p.state(name, &place, e);
                Anchor::Entry
            });
            if let Anchor::Deadline(d) = &anchor {
                if !deadlines.contains(d.as_str()) {
                    p.state(name, &place, format!("refers to undeclared deadline {d:?}"));
                }
            }
            let offset = t.offset.as_deref().and_then(|o| parse_offset(o).map_err(|e| p.state(name, &place, e)).ok());
            let time_of_day = t.time.as_deref().and_then(|s| parse_time_of_day(s).map_err(|e| p.state(name, &place, e)).ok());
            if time_of_day.is_some() && matches!(offset, Some(Offset::Hours(_))) {
                p.state(name, &place, "a time of day goes with day offsets, not hours");
            }
            if let Some(tr) = src_transition(&src.transitions, name, &t.fire) {
                if !(tr.roles.is_empty() || tr.roles.iter().any(|r| r == "system")) {
                    p.state(name, &place, format!("fires {:?}, but that transition does not let the system fire it (roles = {:?})", t.fire, tr.roles));
                }
            } else if events.contains(t.fire.as_str()) {
                p.state(name, &place, format!("fires {:?}, which state {name:?} cannot take (no transition from it on that event)", t.fire));
            }
            timers.push(TimerSpec { name: timer_name, fire: t.fire.clone(), anchor, offset, time_of_day });
        }
        states.insert(name.clone(), super::State { title: state.title.clone(), is_final: state.is_final, timers });
    }

    let mut transitions = Vec::new();
    let mut seen: BTreeMap<(String, String), usize> = BTreeMap::new();
    for (i, t) in src.transitions.iter().enumerate() {
        let from = t.from.to_vec();
        if from.is_empty() {
            p.transition(i, "from names no state");
        }
        for f in &from {
            match src.states.get(f) {
                None => p.transition(i, format!("from unknown state {f:?}")),
                // An internal transition records something after the end (a linked consequence,
                // e.g. the licence lapsing with the business licence) without reopening the case.
                Some(s) if s.is_final && !t.internal => p.transition(i, format!("leaves final state {f:?}")),
                Some(_) => {}
            }
            if let Some(j) = seen.insert((f.clone(), t.on.clone()), i) {
                let other = &src.transitions[j];
                if t.when.is_some() && other.when.is_some() && t.when != other.when {
                    continue;
                }
                let same = other.to == t.to && other.guards == t.guards;
                let kind = if same { "duplicate of" } else { "ambiguous with" };
                p.transition(i, format!("{kind} transitions[{j}]: both leave {f:?} on {:?}", t.on));
            }
        }
        if !events.contains(t.on.as_str()) {
            p.transition(i, format!("on unknown event {:?}", t.on));
        }
        match (&t.to, t.internal) {
            (Some(to), false) if !src.states.contains_key(to) => p.transition(i, format!("to unknown state {to:?}")),
            (Some(_), true) => p.transition(i, "an internal transition has no `to`: it stays in its state"),
            (None, false) => p.transition(i, "needs `to`, or `internal = true`"),
            _ => {}
        }
        for r in &t.roles {
            if !ROLES.contains(&r.as_str()) {
                p.transition(i, format!("unknown role {r:?} (known: {})", ROLES.join(", ")));
            }
        }
        let guards = t.guards.iter().filter_map(|g| parse_guard(g).map(|x| (g.clone(), x)).map_err(|e| p.transition(i, e)).ok()).collect::<Vec<_>>();
        for (_, g) in &guards {
            if let Guard::BeforeDeadline(d) = g {
                if !deadlines.contains(d.as_str()) {
                    p.transition(i, format!("guard refers to undeclared deadline {d:?}"));
                }
            }
        }
        let effects = t.effects.iter().filter_map(|e| parse_effect(e).map(|x| (e.clone(), x)).map_err(|m| p.transition(i, m)).ok()).collect::<Vec<_>>();
        for (_, e) in &effects {
            match e {
                Effect::SignalParent { event } | Effect::SignalParentIfAny { event } | Effect::SignalChildren { event } | Effect::BundleAdvance { event }
                    if event == "start" =>
                {
                    p.transition(i, "cannot signal the reserved event \"start\"");
                }
                Effect::SetDeadline { name } | Effect::DeadlineAfter { name, .. } if !deadlines.contains(name.as_str()) => {
                    p.transition(i, format!("effect sets undeclared deadline {name:?}"));
                }
                _ => {}
            }
        }
        let when = t.when.as_deref().and_then(|w| Condition::parse(w).map_err(|m| p.transition(i, m)).ok());
        transitions.push(Transition { from, on: t.on.clone(), to: t.to.clone(), when, roles: t.roles.clone(), guards, effects });
    }

    let children = check_children(p, &src);
    let advances = transitions.iter().any(|t: &Transition| t.effects.iter().any(|(_, e)| matches!(e, Effect::BundleAdvance { .. })));
    if advances && children.is_empty() {
        p.top("children", "bundle:advance needs the kinds of child declared in [[children]]");
    }

    for e in &src.events {
        if !src.transitions.iter().any(|t| &t.on == e) {
            p.top("events", format!("event {e:?} is declared but no transition takes it"));
        }
    }
    // A transition to or from an unknown state would make every graph finding an echo of it.
    let references_known = src.transitions.iter().all(|t| {
        t.from.to_vec().iter().all(|f| src.states.contains_key(f)) && t.to.as_ref().is_none_or(|to| src.states.contains_key(to))
    });
    if references_known {
        check_graph(p, &src, &states);
    }

    Definition {
        name: src.name,
        version: src.version,
        title: src.title,
        description: src.description,
        initial: src.initial,
        deadlines: src.deadlines,
        events: src.events,
        states,
        transitions,
        children,
        source: text.to_string(),
        digest: hex::encode(Sha256::digest(text.as_bytes())),
        acts: Default::default(),
    }
}

/// Kinds named once, prerequisites that are declared kinds, at most one kind for the
/// catalogue's items, and an order without cycles (a cycle would leave its children waiting
/// for each other forever).
fn check_children(p: &mut Problems<'_>, src: &DefinitionSource) -> Vec<ChildKind> {
    let kinds: BTreeSet<&str> = src.children.iter().map(|c| c.kind.as_str()).collect();
    let mut seen = BTreeSet::new();
    for (i, c) in src.children.iter().enumerate() {
        if !is_name(&c.kind) {
            p.child(i, format!("kind {:?} is not a lowercase name", c.kind));
        }
        if !seen.insert(c.kind.as_str()) {
            p.child(i, format!("kind {:?} is declared twice", c.kind));
        }
        for a in &c.after {
            if !kinds.contains(a.as_str()) {
                p.child(i, format!("after unknown kind {a:?}"));
            }
        }
    }
    if src.children.iter().filter(|c| c.workflow.is_none()).count() > 1 {
        p.top("children", "more than one kind without a workflow: the catalogue's items must belong to one");
    }
    // Depth-first search for a cycle over `after`, reported once at the kind that closes it.
    let after: BTreeMap<&str, Vec<&str>> = src.children.iter().map(|c| (c.kind.as_str(), c.after.iter().map(String::as_str).collect())).collect();
    fn visit<'a>(k: &'a str, after: &BTreeMap<&'a str, Vec<&'a str>>, path: &mut Vec<&'a str>, done: &mut BTreeSet<&'a str>) -> Option<Vec<&'a str>> {
        if let Some(at) = path.iter().position(|p| *p == k) {
            let mut cycle = path[at..].to_vec();
            cycle.push(k);
            return Some(cycle);
        }
        if !done.insert(k) {
            return None;
        }
        path.push(k);
        for next in after.get(k).into_iter().flatten() {
            if let Some(c) = visit(next, after, path, done) {
                return Some(c);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    for (i, c) in src.children.iter().enumerate() {
        if let Some(cycle) = visit(&c.kind, &after, &mut Vec::new(), &mut done) {
            p.child(i, format!("the order has a cycle: {} (each would wait for the other forever)", cycle.join(" after ")));
            break;
        }
    }
    src.children
        .iter()
        .map(|c| ChildKind { kind: c.kind.clone(), title: c.title.clone(), workflow: c.workflow.clone(), after: c.after.clone() })
        .collect()
}

fn src_transition<'a>(ts: &'a [TransitionSource], state: &str, event: &str) -> Option<&'a TransitionSource> {
    ts.iter().find(|t| t.on == event && t.from.to_vec().iter().any(|f| f == state))
}

/// Reachability: every state reachable from the initial one, every non-final state with a
/// way out, and from every state some final state reachable.
fn check_graph(p: &mut Problems<'_>, src: &DefinitionSource, states: &BTreeMap<String, super::State>) {
    let mut edges: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for t in &src.transitions {
        if let (Some(to), false) = (&t.to, t.internal) {
            for f in t.from.to_vec() {
                if let Some((k, _)) = src.states.get_key_value(&f) {
                    if k != to {
                        edges.entry(k.as_str()).or_default().insert(to.as_str());
                    }
                }
            }
        }
    }
    let reach = |start: &str| -> BTreeSet<String> {
        let mut seen = BTreeSet::from([start.to_string()]);
        let mut queue = VecDeque::from([start.to_string()]);
        while let Some(s) = queue.pop_front() {
            for n in edges.get(s.as_str()).into_iter().flatten() {
                if seen.insert(n.to_string()) {
                    queue.push_back(n.to_string());
                }
            }
        }
        seen
    };
    if src.states.contains_key(&src.initial) {
        let reachable = reach(&src.initial);
        for name in src.states.keys().filter(|s| !reachable.contains(*s)) {
            p.state(name, format!("states.{name}"), format!("unreachable from the initial state {:?}", src.initial));
        }
    }
    if !states.values().any(|s| s.is_final) {
        p.top("states", "no state is marked final");
    }
    for name in states.iter().filter(|(_, s)| !s.is_final).map(|(n, _)| n) {
        if edges.get(name.as_str()).is_none_or(|e| e.is_empty()) {
            p.state(name, format!("states.{name}"), "a non-final state with no way out (no transition to another state)");
        } else if !reach(name).iter().any(|s| states.get(s).is_some_and(|s| s.is_final)) {
            p.state(name, format!("states.{name}"), "no final state can be reached from here");
        }
    }
}

/// Checks that span definitions: one text per name and version, spawn targets that exist.
pub fn check_set(defs: &[(String, Definition)]) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut by_key: BTreeMap<(&str, i64), &str> = BTreeMap::new();
    let names: BTreeSet<&str> = defs.iter().map(|(_, d)| d.name.as_str()).collect();
    for (file, d) in defs {
        if let Some(other) = by_key.insert((&d.name, d.version), file) {
            problems.push(Problem {
                file: file.clone(),
                line: None,
                place: "version".into(),
                message: format!("{} version {} is also defined in {other}", d.name, d.version),
            });
        }
        for (i, c) in d.children.iter().enumerate() {
            if let Some(w) = c.workflow.as_deref().filter(|w| !names.contains(w)) {
                problems.push(Problem {
                    file: file.clone(),
                    line: LineIndex::of(&d.source).child(i),
                    place: format!("children[{i}]"),
                    message: format!("kind {:?} starts unknown workflow {w:?}", c.kind),
                });
            }
        }
        for (i, t) in d.transitions.iter().enumerate() {
            for (text, e) in &t.effects {
                if let Effect::Spawn { definition } = e {
                    if !names.contains(definition.as_str()) {
                        problems.push(Problem {
                            file: file.clone(),
                            line: LineIndex::of(&d.source).transition(i),
                            place: format!("transitions[{i}]"),
                            message: format!("effect {text:?} spawns unknown workflow {definition:?}"),
                        });
                    }
                }
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::parse_definition;

    /// A case that ends in `closed` and may still record a note there.
    const ENDED: &str = r#"
name = "t"
version = 1
initial = "open"
events = ["close", "note"]

[states.open]

[states.closed]
final = true

[[transitions]]
from = "open"
on = "close"
to = "closed"

[[transitions]]
from = "closed"
on = "note"
internal = true
roles = ["system"]
effects = ["context:merge_payload"]
"#;

    #[test]
    fn an_internal_transition_from_a_final_state_is_accepted() {
        let def = parse_definition("t.toml", ENDED).unwrap_or_else(|p| panic!("{p:?}"));
        let t = def.transition("closed", "note", &serde_json::Value::Null).expect("the final state takes the internal event");
        assert_eq!(t.to, None, "it stays in the final state");
        assert!(def.is_final("closed"));
    }

    #[test]
    fn a_transition_to_another_state_from_a_final_state_is_refused() {
        let leaves = ENDED.replace("on = \"note\"\ninternal = true", "on = \"note\"\nto = \"open\"");
        let problems = parse_definition("t.toml", &leaves).expect_err("it leaves a final state");
        let texts: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(texts, ["t.toml:17: transitions[1]: leaves final state \"closed\""]);
    }
}
