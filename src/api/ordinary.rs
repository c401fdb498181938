//! The acts of the ordinary procedure (issue #19): the acceptance decision, the corrections
//! received, the legal clock suspended, resumed and extended. Each finds the case through the
//! caller's scope first (another's case is NOT_FOUND); `window::ordinary` checks the rest and the
//! definition (`standard-review`) says in which states each may happen and who may fire it.

use async_graphql::{Context, InputObject, Object, ID};

use super::access::{self, DEPARTMENT_HEAD};
use super::due_process::in_scope;
use super::window::{case_after, window_error, CasePayload, WINDOW_OR_APPROVER};
use crate::runtime::Engine;
use crate::window::ordinary::{self, AcceptanceDecision, CorrectionItemInput, SuspensionKind};

#[derive(InputObject)]
pub struct DecideAcceptanceInput {
    pub case_id: ID,
    pub decision: AcceptanceDecision,
    /// Why not accepted (required for NOT_ACCEPT); a note otherwise.
    pub reason: Option<String>,
    /// REQUEST_CORRECTION: everything to correct, in one list.
    #[graphql(default)]
    pub corrections: Vec<CorrectionItemInput>,
    /// REQUEST_CORRECTION: the period to correct in, in working days (5 if not given; at most 30).
    pub working_days: Option<i64>,
}

#[derive(InputObject)]
pub struct ReceiveCorrectionInput {
    pub case_id: ID,
    /// Where the corrected documents are filed.
    pub file_ref: String,
}

#[derive(InputObject)]
pub struct SuspendReviewInput {
    pub case_id: ID,
    pub kind: SuspensionKind,
    pub reason: String,
}

#[derive(InputObject)]
pub struct ResumeReviewInput {
    pub case_id: ID,
    pub note: Option<String>,
}

#[derive(InputObject)]
pub struct ExtendTimeLimitInput {
    pub case_id: ID,
    /// 1 to 10 working days, counted on from the limit as it stands.
    pub working_days: i64,
    pub reason: String,
}

#[derive(Default)]
pub struct OrdinaryMutation;

#[Object]
impl OrdinaryMutation {
    /// The acceptance decision on an ordinary application: accept (the legal clock starts),
    /// not accept with reasons, or list everything to correct at once. A written notice follows.
    #[graphql(guard = "WINDOW_OR_APPROVER")]
    async fn decide_acceptance(&self, ctx: &Context<'_>, input: DecideAcceptanceInput) -> async_graphql::Result<CasePayload> {
        let engine = ctx.data::<Engine>()?;
        in_scope(ctx, &input.case_id).await?;
        ordinary::decide_acceptance(engine, access::claims(ctx)?, &input.case_id, input.decision, input.reason.as_deref(), &input.corrections, input.working_days)
            .await
            .map_err(window_error)?;
        Ok(CasePayload { case: case_after(ctx, &input.case_id).await? })
    }

    /// The applicant's corrections are in: the application is before the acceptance decision again.
    #[graphql(guard = "access::WINDOW")]
    async fn receive_correction(&self, ctx: &Context<'_>, input: ReceiveCorrectionInput) -> async_graphql::Result<CasePayload> {
        let engine = ctx.data::<Engine>()?;
        in_scope(ctx, &input.case_id).await?;
        ordinary::receive_correction(engine, access::claims(ctx)?, &input.case_id, &input.file_ref).await.map_err(window_error)?;
        Ok(CasePayload { case: case_after(ctx, &input.case_id).await? })
    }

    /// Stops the legal clock for a hearing, an expert review, an on-site check or a correction.
    #[graphql(guard = "WINDOW_OR_APPROVER")]
    async fn suspend_review(&self, ctx: &Context<'_>, input: SuspendReviewInput) -> async_graphql::Result<CasePayload> {
        let engine = ctx.data::<Engine>()?;
        in_scope(ctx, &input.case_id).await?;
        ordinary::suspend(engine, access::claims(ctx)?, &input.case_id, input.kind, &input.reason).await.map_err(window_error)?;
        Ok(CasePayload { case: case_after(ctx, &input.case_id).await? })
    }

    /// Starts the legal clock again with the working days it had left.
    #[graphql(guard = "WINDOW_OR_APPROVER")]
    async fn resume_review(&self, ctx: &Context<'_>, input: ResumeReviewInput) -> async_graphql::Result<CasePayload> {
        let engine = ctx.data::<Engine>()?;
        in_scope(ctx, &input.case_id).await?;
        ordinary::resume(engine, access::claims(ctx)?, &input.case_id, input.note.as_deref()).await.map_err(window_error)?;
        Ok(CasePayload { case: case_after(ctx, &input.case_id).await? })
    }

    /// The head of the department extends the legal limit, once, by up to ten working days.
    #[graphql(guard = "DEPARTMENT_HEAD")]
    async fn extend_time_limit(&self, ctx: &Context<'_>, input: ExtendTimeLimitInput) -> async_graphql::Result<CasePayload> {
        let engine = ctx.data::<Engine>()?;
        in_scope(ctx, &input.case_id).await?;
        ordinary::extend(engine, access::claims(ctx)?, &input.case_id, input.working_days, &input.reason).await.map_err(window_error)?;
        Ok(CasePayload { case: case_after(ctx, &input.case_id).await? })
    }
}
