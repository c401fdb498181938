//! What an engine runs with besides the database: the deployed definitions, the time rules, the
//! credit and return rules, the audit keys — and the handlers of the effects a definition names
//! that belong to a domain module above the store (the window's `bundle:advance`): the store
//! runs them, in the transition's transaction, through the handler that module registered, so it
//! never imports the modules that use it. A definition naming an effect no handler serves is
//! refused when the engine is built.

use std::{collections::BTreeMap, future::Future, pin::Pin, sync::Arc};

use chrono::{DateTime, Utc};
use sea_orm::DatabaseTransaction;

use super::audit::AuditKeys;
use super::error::StoreError;
use crate::workflow::{vocabulary::Effect, Definition, TimeEnv, WorkflowSet};

/// The definitions and the time rules an engine runs with.
#[derive(Debug, Clone)]
pub struct Workflows {
    pub set: WorkflowSet,
    pub env: TimeEnv,
    /// How `credit:*` effects move an applicant's standing.
    pub credit: super::credit::CreditRules,
    /// When window officers are suspended and items flagged for their returns.
    pub returns: crate::domain::return_rule::ReturnRule,
    /// The keys audit events and sealed rows are written with (`store::audit`).
    pub audit: AuditKeys,
    /// The handlers of the effects that belong to a domain module (below).
    pub effects: EffectHandlers,
}

/// `bundle:advance:EVENT`: the bundle opens what its order allows now; the handler answers
/// whether every child has ended (then EVENT is signalled to the bundle).
pub const BUNDLE_ADVANCE: &str = "bundle:advance";

pub type EffectFuture<'a> = Pin<Box<dyn Future<Output = Result<bool, StoreError>> + Send + 'a>>;

/// A domain module's part of an effect, on the instance `id` of `def` whose transition names it.
pub trait EffectHandler: Send + Sync {
    fn run<'a>(&'a self, txn: &'a DatabaseTransaction, wf: &'a Workflows, def: &'a Definition, id: &'a str, now: DateTime<Utc>) -> EffectFuture<'a>;
}

/// The registered handlers, by effect kind.
#[derive(Clone, Default)]
pub struct EffectHandlers(BTreeMap<&'static str, Arc<dyn EffectHandler>>);

impl std::fmt::Debug for EffectHandlers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

impl EffectHandlers {
    pub fn with(mut self, kind: &'static str, handler: Arc<dyn EffectHandler>) -> Self {
        self.0.insert(kind, handler);
        self
    }

    pub fn handler(&self, kind: &str) -> Result<&Arc<dyn EffectHandler>, StoreError> {
        self.0.get(kind).ok_or_else(|| StoreError::NoEffectHandler(kind.to_string()))
    }

    /// The domain effects the definitions (every version) name that no handler serves.
    pub fn missing(&self, set: &WorkflowSet) -> Vec<String> {
        let mut missing = Vec::new();
        for def in set.all() {
            for t in &def.transitions {
                for (_, effect) in &t.effects {
                    if let Effect::BundleAdvance { .. } = effect {
                        if !self.0.contains_key(BUNDLE_ADVANCE) {
                            missing.push(format!("{} v{}: {BUNDLE_ADVANCE} (event {})", def.name, def.version, t.on));
                        }
                    }
                }
            }
        }
        missing
    }
}
