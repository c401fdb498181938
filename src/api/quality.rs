//! The return rule through GraphQL: who is suspended, which items are flagged, an officer's
//! own rate, and the supervisor's record of retraining that reinstates an officer.

use async_graphql::{Context, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::access::{self, error, ErrorCode, Roles};
use super::window::window_error;
use crate::runtime::Engine;
use crate::store::millis::from_ms;
use crate::window::quality::{self, Suspension};

const SUPERVISORS: Roles = Roles(&["supervisor", "regional_admin"]);
const WINDOW_OR_SUPERVISORS: Roles = Roles(&["window", "supervisor", "regional_admin"]);

#[derive(SimpleObject)]
pub struct OfficerSuspension {
    pub officer: String,
    pub department: String,
    pub suspended_at: DateTime<Utc>,
    /// Returns for the officer's own error, of the applications taken in, when suspended.
    pub own_errors: i64,
    pub intake: i64,
    pub reinstated_at: Option<DateTime<Utc>>,
    pub reinstated_by: Option<String>,
    pub retraining: Option<String>,
}

impl From<Suspension> for OfficerSuspension {
    fn from(s: Suspension) -> Self {
        Self {
            officer: s.officer,
            department: s.department,
            suspended_at: from_ms(s.suspended_at),
            own_errors: s.own_errors,
            intake: s.intake,
            reinstated_at: s.reinstated_at.map(from_ms),
            reinstated_by: s.reinstated_by,
            retraining: s.retraining,
        }
    }
}

#[derive(SimpleObject)]
pub struct FlaggedItem {
    pub item_code: String,
    pub item_version: i64,
    pub flagged_at: DateTime<Utc>,
    /// Returns blamed on the item's configuration, of the applications taken in.
    pub misconfigured: i64,
    pub intake: i64,
    /// The re-examination its department's approvers were given (an `item-reexamination`).
    pub reexamination_id: Option<async_graphql::ID>,
}

#[derive(InputObject)]
pub struct RecordItemReexaminationInput {
    pub item_code: String,
    /// What the re-examination of the item's guide and configuration found and changed.
    pub findings: String,
}

#[derive(SimpleObject)]
pub struct RecordItemReexaminationPayload {
    pub item_code: String,
    /// The flag cleared.
    pub cleared: bool,
}

#[derive(SimpleObject)]
pub struct ReturnRate {
    pub officer: String,
    pub intake: i64,
    pub own_errors: i64,
    /// own errors / intake.
    pub share: f64,
    /// The window counted from (the rule's window, or the last reinstatement).
    pub since: DateTime<Utc>,
    pub threshold: f64,
    pub min_sample: i64,
    pub suspended: bool,
}

#[derive(InputObject)]
pub struct RecordRetrainingInput {
    pub officer: String,
    /// What retraining was done (course, date, by whom).
    pub retraining: String,
}

#[derive(SimpleObject)]
pub struct RecordRetrainingPayload {
    pub suspension: OfficerSuspension,
}

#[derive(Default)]
pub struct QualityQuery;

#[Object]
impl QualityQuery {
    /// Window officers suspended from intake under the return rule (a supervisor's region's departments).
    #[graphql(guard = "SUPERVISORS")]
    async fn officer_suspensions(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<OfficerSuspension>> {
        let engine = ctx.data::<Engine>()?;
        let departments = access::region_departments(&engine.db, access::claims(ctx)?).await?;
        let rows = quality::suspended(&engine.db, &departments).await.map_err(|e| e.internal())?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Approval items flagged under the return rule and not yet re-examined (they stay open to
    /// applicants; their departments' approvers re-examine them).
    #[graphql(guard = "SUPERVISORS")]
    async fn flagged_items(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<FlaggedItem>> {
        let engine = ctx.data::<Engine>()?;
        // Items of the supervisor's region's departments only.
        let departments = access::region_departments(&engine.db, access::claims(ctx)?).await?;
        let mut rows = quality::flagged_items(&engine.db).await.map_err(|e| e.internal())?;
        let mut own = Vec::with_capacity(rows.len());
        for f in rows.drain(..) {
            let item = crate::window::catalogue::item(&engine.db, &f.item_code, None).await.map_err(|e| e.internal())?;
            if item.is_some_and(|i| departments.contains(&i.department)) {
                own.push(f);
            }
        }
        Ok(own
            .into_iter()
            .map(|f| FlaggedItem {
                item_code: f.item_code,
                item_version: f.item_version,
                flagged_at: from_ms(f.flagged_at),
                misconfigured: f.misconfigured,
                intake: f.intake,
                reexamination_id: f.reexamination_id.map(async_graphql::ID),
            })
            .collect())
    }

    /// An officer's standing under the return rule: a window officer sees only the own.
    #[graphql(guard = "WINDOW_OR_SUPERVISORS")]
    async fn return_rate(&self, ctx: &Context<'_>, officer: Option<String>) -> async_graphql::Result<ReturnRate> {
        let engine = ctx.data::<Engine>()?;
        let claims = access::claims(ctx)?;
        let supervisor = claims.has_role("supervisor") || claims.has_role("regional_admin");
        let officer = match officer {
            Some(o) if o == claims.sub => o,
            Some(o) if supervisor => {
                // Another officer's standing: one of the supervisor's region only.
                let region = super::policy::region(&engine.db, claims, super::policy::Act::ReadReturnRates).await?;
                let staff = crate::window::registry::staff(&engine.db, &o).await.map_err(|e| e.internal())?;
                if staff.is_none_or(|s| s.region != region.code) {
                    return Err(super::policy::out_of_scope(format_args!("officer {o}")));
                }
                o
            }
            Some(_) => return Err(access::refusal("FORBIDDEN", super::policy::reason::ROLE, "a window officer sees only the own rate")),
            None => claims.sub.clone(),
        };
        let rule = &engine.workflows.returns;
        let now = engine.now();
        let rate = quality::officer_rate(&engine.db, rule, &officer, now).await.map_err(|e| e.internal())?;
        let suspended = quality::is_suspended(&engine.db, &officer).await.map_err(|e| e.internal())?;
        Ok(ReturnRate {
            share: rate.share(),
            officer,
            intake: rate.intake,
            own_errors: rate.returns,
            since: rate.since,
            threshold: rule.threshold,
            min_sample: rule.min_sample,
            suspended,
        })
    }
}

#[derive(Default)]
pub struct QualityMutation;

#[Object]
impl QualityMutation {
    /// An approver of the item's department records the re-examination of its guide and
    /// configuration (重新梳理): the item's flag clears and its re-examination ends.
    #[graphql(guard = "super::access::APPROVER")]
    async fn record_item_reexamination(&self, ctx: &Context<'_>, input: RecordItemReexaminationInput) -> async_graphql::Result<RecordItemReexaminationPayload> {
        let engine = ctx.data::<Engine>()?;
        let claims = access::claims(ctx)?;
        let item = crate::window::catalogue::item(&engine.db, &input.item_code, None).await.map_err(|e| e.internal())?;
        if item.is_none_or(|i| claims.department.as_deref() != Some(i.department.as_str())) {
            return Err(super::policy::out_of_scope(format_args!("approval item {} of your department", input.item_code)));
        }
        let actor = crate::workflow::Actor::act(claims.sub.clone(), claims.roles.clone(), "recordItemReexamination");
        let txn = crate::store::begin_write(&engine.db).await.map_err(|e| e.internal())?;
        quality::record_reexamination(&txn, &engine.workflows, &input.item_code, &actor, &input.findings, engine.now()).await.map_err(window_error)?;
        txn.commit().await.map_err(|e| e.internal())?;
        Ok(RecordItemReexaminationPayload { item_code: input.item_code, cleared: true })
    }

    /// Records the retraining of a suspended window officer: intake is open again, and the
    /// return rate is counted afresh from now.
    #[graphql(guard = "SUPERVISORS")]
    async fn record_retraining(&self, ctx: &Context<'_>, input: RecordRetrainingInput) -> async_graphql::Result<RecordRetrainingPayload> {
        let engine = ctx.data::<Engine>()?;
        let claims = access::claims(ctx)?;
        let departments = access::region_departments(&engine.db, claims).await?;
        let in_region = quality::suspended(&engine.db, &departments).await.map_err(|e| e.internal())?.iter().any(|s| s.officer == input.officer);
        if !in_region {
            return Err(error("NOT_FOUND", format!("{} is not suspended in your region", input.officer)));
        }
        let s = quality::reinstate(&engine.db, &input.officer, &claims.sub, &input.retraining, engine.now()).await.map_err(window_error)?;
        Ok(RecordRetrainingPayload { suspension: s.into() })
    }
}
