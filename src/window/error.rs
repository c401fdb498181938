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

pub fn bad(field: &'static str, message: impl Into<String>) -> WindowError {
    WindowError::BadInput { field, message: message.into() }
}
