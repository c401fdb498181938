//! How the window's acts refuse: the one error type of intake, bundles, the return rule and the
//! registry checks, which the API turns into codes and reasons.

use sea_orm::DbErr;

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum WindowError {
    #[error("{message}")]
    BadInput { field: &'static str, message: String },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Invalid(String),
    /// A refusal whose code covers several causes: `reason` tells them apart (README, "Reasons").
    #[error("{message}")]
    Refused { code: &'static str, reason: &'static str, field: Option<&'static str>, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<DbErr> for WindowError {
    fn from(e: DbErr) -> Self {
        WindowError::Store(StoreError::Db(e))
    }
}

/// Longest text an act takes from a person (a statement, a reason, a requirement).
const MAX_TEXT: usize = 2000;

/// A person's text for `field`, trimmed: not empty, at most 2,000 characters.
pub fn text(field: &'static str, value: &str) -> Result<String, WindowError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(WindowError::BadInput { field, message: format!("{field} must not be empty") });
    }
    if value.chars().count() > MAX_TEXT {
        return Err(WindowError::BadInput { field, message: format!("{field} is longer than {MAX_TEXT} characters") });
    }
    Ok(value.to_string())
}

pub fn bad(field: &'static str, message: impl Into<String>) -> WindowError {
    WindowError::BadInput { field, message: message.into() }
}
