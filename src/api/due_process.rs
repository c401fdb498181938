//! The acts of the procedure before an adverse decision (issue #18): the enterprise states its
//! case, the approving department decides. Both find the case through the caller's scope first
//! (another's case is NOT_FOUND); the definition says in which states each may happen and who
//! may fire it.

use async_graphql::{Context, InputObject, Object, ID};

use super::access::{self, error, Roles, APPROVER};
use super::window::{case_after, visible_case, window_error, CasePayload};
use crate::runtime::Engine;
use crate::window::due_process::{self, RevocationDecision};

/// The enterprise itself, or the window recording its statement for it.
const APPLICANT_OR_WINDOW: Roles = Roles(&["applicant", "window"]);

#[derive(InputObject)]
pub struct StateCaseInput {
    pub case_id: ID,
    /// The statement (陈述、申辩) in the enterprise's words; up to 2,000 characters.
    pub statement: String,
}

#[derive(InputObject)]
pub struct DecideRevocationInput {
    pub case_id: ID,
    pub decision: RevocationDecision,
    /// The decision's reasons, as the decision letter gives them.
    pub reason: String,
}

#[derive(Default)]
pub struct DueProcessMutation;

/// NOT_FOUND unless the case is the caller's to see (before anything is checked of it).
pub(super) async fn in_scope(ctx: &Context<'_>, id: &str) -> async_graphql::Result<()> {
    visible_case(ctx, id).await?.map(|_| ()).ok_or_else(|| error("NOT_FOUND", format!("no case {id}")))
}

#[Object]
impl DueProcessMutation {
    /// The enterprise's statement on a notice of intended revocation (or of ending its
    /// application), within the notice's period: the case goes before the approving department.
    #[graphql(guard = "APPLICANT_OR_WINDOW")]
    async fn state_case(&self, ctx: &Context<'_>, input: StateCaseInput) -> async_graphql::Result<CasePayload> {
        let engine = ctx.data::<Engine>()?;
        in_scope(ctx, &input.case_id).await?;
        due_process::state_case(engine, access::claims(ctx)?, &input.case_id, &input.statement).await.map_err(window_error)?;
        Ok(CasePayload { case: case_after(ctx, &input.case_id).await? })
    }

    /// The approving department's decision on an intended revocation: revoke (or end the
    /// application), a grace period once, or the statement accepted.
    #[graphql(guard = "APPROVER")]
    async fn decide_revocation(&self, ctx: &Context<'_>, input: DecideRevocationInput) -> async_graphql::Result<CasePayload> {
        let engine = ctx.data::<Engine>()?;
        in_scope(ctx, &input.case_id).await?;
        due_process::decide(engine, access::claims(ctx)?, &input.case_id, input.decision, &input.reason).await.map_err(window_error)?;
        Ok(CasePayload { case: case_after(ctx, &input.case_id).await? })
    }
}
