//! Workflow definitions (`workflows/*.toml`), their validation, and the pure transition
//! function. Domain rules a definition needs are named guards and effects in [`vocabulary`].

pub mod definition;
pub mod engine;
pub mod policy;
pub mod problem;
pub mod source;
pub mod timing;
pub mod vocabulary;

use std::{collections::BTreeMap, path::Path, sync::Arc};

pub use definition::{parse_definition, ChildKind, Definition, Problem, State, Transition};
pub use engine::{Actor, Outcome, TimeEnv, TransitionError, Via};
pub use policy::EventPolicy;

use crate::domain::calendar::WorkingCalendar;
use crate::domain::shipped::Source;

/// Every definition the engine can run, by name and version. The newest version of a name is
/// used for new instances; older ones stay for the instances pinned to them.
#[derive(Debug, Clone, Default)]
pub struct WorkflowSet {
    by_key: BTreeMap<(String, i64), Arc<Definition>>,
    /// Applied by name to every definition that joins the set, whatever its version or origin
    /// (a file, or a text stored by an earlier deployment).
    policy: Arc<EventPolicy>,
}

impl WorkflowSet {
    /// An empty set whose definitions take `policy`.
    pub fn with_policy(policy: EventPolicy) -> Self {
        Self { by_key: BTreeMap::new(), policy: Arc::new(policy) }
    }

    pub fn insert(&mut self, mut def: Definition) {
        def.acts = Arc::new(self.policy.for_definition(&def.name));
        self.by_key.insert((def.name.clone(), def.version), Arc::new(def));
    }

    pub fn policy(&self) -> &EventPolicy {
        &self.policy
    }

    pub fn get(&self, name: &str, version: i64) -> Option<Arc<Definition>> {
        self.by_key.get(&(name.to_string(), version)).cloned()
    }

    pub fn latest(&self, name: &str) -> Option<Arc<Definition>> {
        self.by_key.range((name.to_string(), i64::MIN)..=(name.to_string(), i64::MAX)).next_back().map(|(_, d)| d.clone())
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<Definition>> {
        self.by_key.values()
    }

    pub fn latest_all(&self) -> Vec<Arc<Definition>> {
        let mut out: BTreeMap<&str, Arc<Definition>> = BTreeMap::new();
        for d in self.by_key.values() {
            out.insert(&d.name, d.clone());
        }
        out.into_values().collect()
    }
}

/// What `check-workflows` and `serve` load from a workflows folder or the built-in set.
pub struct Loaded {
    pub workflows: WorkflowSet,
    pub calendar: WorkingCalendar,
}

/// Loads and checks every `*.toml` in `dir` and the calendars in `dir/calendars`, returning
/// every problem found in any file.
pub fn load_dir(dir: &Path) -> Result<Loaded, Vec<Problem>> {
    load(&Source::Folder(dir.to_path_buf()))
}

/// Loads and checks the definitions, the event policy and the calendars of `source` (a folder,
/// or the set built into the binary), returning every problem found in any file.
pub fn load(source: &Source) -> Result<Loaded, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut defs = Vec::new();
    let unreadable = |u: crate::domain::shipped::Unreadable, place: &str| Problem { file: u.place, line: None, place: place.into(), message: u.reason };
    let files = match source.files("", "toml") {
        Ok(files) => files,
        Err(u) => return Err(vec![unreadable(u, "folder")]),
    };
    for file in files {
        match parse_definition(&file.name, &file.text) {
            Ok(def) => defs.push((file.name, def)),
            Err(mut found) => problems.append(&mut found),
        }
    }
    if defs.is_empty() && problems.is_empty() {
        problems.push(Problem { file: source.name_of(""), line: None, place: "folder".into(), message: "no workflow definitions (*.toml) found".into() });
    }
    problems.extend(definition::check_set(&defs));
    let policy = match EventPolicy::load(source) {
        Ok(policy) => {
            let people: Vec<policy::PeopleEvents> = defs
                .iter()
                .map(|(file, d)| policy::PeopleEvents {
                    file,
                    name: &d.name,
                    events: d.transitions.iter().filter(|t| t.roles.iter().any(|r| r != "system")).map(|t| t.on.as_str()).collect(),
                })
                .collect();
            problems.extend(policy.check(&source.name_of(policy::FILE), &people));
            policy
        }
        Err(found) => {
            problems.extend(found);
            EventPolicy::default()
        }
    };
    let calendar = source
        .sub("calendars")
        .files("toml")
        .map_err(|u| crate::domain::calendar::CalendarError::Malformed { file: u.place, line: None, message: u.reason })
        .and_then(|files| WorkingCalendar::from_files(&files))
        .map(WorkingCalendar::with_provisional_next_year)
        .unwrap_or_else(|e| {
            let problem = match e {
                crate::domain::calendar::CalendarError::Malformed { file, line, message } => Problem { file, line, place: "calendar".into(), message },
                e => Problem { file: source.name_of("calendars"), line: None, place: "calendar".into(), message: e.to_string() },
            };
            problems.push(problem);
            WorkingCalendar::default()
        });
    if problems.is_empty() {
        let mut workflows = WorkflowSet::with_policy(policy);
        for (_, d) in defs {
            workflows.insert(d);
        }
        Ok(Loaded { workflows, calendar })
    } else {
        Err(problems)
    }
}
