//! How a write through the store fails.

use sea_orm::DbErr;

use crate::workflow::TransitionError;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no workflow instance {0}")]
    NotFound(String),
    #[error("instance {id} was changed meanwhile: expected version {expected}, it is at {actual}")]
    Conflict { id: String, expected: i64, actual: i64 },
    #[error("no workflow definition {name:?}{}", version.map(|v| format!(" version {v}")).unwrap_or_default())]
    UnknownDefinition { name: String, version: Option<i64> },
    #[error("workflow {name} version {version} differs from the text deployed before under the same version: give it a new version")]
    DefinitionChanged { name: String, version: i64 },
    #[error("instance {0} has no parent to signal")]
    NoParent(String),
    #[error(transparent)]
    Transition(#[from] TransitionError),
    #[error("database: {0}")]
    Db(#[from] DbErr),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// A definition names a domain effect no module registered a handler for.
    #[error("no handler is registered for the effect {0}")]
    NoEffectHandler(String),
}
