//! Who may call what: every guarded field names its roles; errors carry `extensions.code`
//! (UNAUTHENTICATED, FORBIDDEN, NOT_FOUND, BAD_USER_INPUT, CONFLICT, INTERNAL).

use async_graphql::{Context, ErrorExtensions, Guard};

use crate::auth::{AuthError, Claims};

/// The caller as the request's Authorization header showed it.
#[derive(Debug, Clone)]
pub struct Caller(pub Result<Option<Claims>, AuthError>);

pub fn error(code: &'static str, message: impl Into<String>) -> async_graphql::Error {
    async_graphql::Error::new(message.into()).extend_with(|_, e| e.set("code", code))
}

/// The caller's claims, or UNAUTHENTICATED saying why there are none.
pub fn claims<'a>(ctx: &'a Context<'_>) -> async_graphql::Result<&'a Claims> {
    match ctx.data_opt::<Caller>().map(|c| &c.0) {
        Some(Ok(Some(claims))) => Ok(claims),
        Some(Err(e)) => Err(error("UNAUTHENTICATED", e.to_string())),
        _ => Err(error("UNAUTHENTICATED", AuthError::Missing.to_string())),
    }
}

/// A field open to any of `roles`.
pub struct Roles(pub &'static [&'static str]);

impl Guard for Roles {
    async fn check(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        let claims = claims(ctx)?;
        if self.0.iter().any(|r| claims.has_role(r)) {
            Ok(())
        } else {
            Err(error("FORBIDDEN", format!("this needs the role {}", self.0.join(" or "))))
        }
    }
}

/// Operators of the installation: outbox, dead letters, the training clock.
pub const OPERATORS: Roles = Roles(&["regional_admin"]);

impl ErrorCode for crate::store::StoreError {}

/// Maps internal failures to a coded GraphQL error without leaking internals.
pub trait ErrorCode: std::fmt::Display {
    fn internal(&self) -> async_graphql::Error {
        tracing::error!(error = %self, "internal error answering a request");
        error("INTERNAL", "internal error")
    }
}

impl ErrorCode for sea_orm::DbErr {}
