//! The supervising side's GraphQL: acts on a supervision task (inspectors, inspection,
//! feedback, re-inspection), breaches of the supervision limits, the random inspection draw.

use async_graphql::{Context, ErrorExtensions, InputObject, Object, SimpleObject, ID};
use chrono::{DateTime, NaiveDate, Utc};

use super::access::{self, error, ErrorCode, Roles};
use super::policy::{self, Act};
use super::events::store_error;
use super::types::WorkflowInstance;
use super::window::window_error;
use super::Services;
use crate::runtime::Engine;
use crate::store::sla;
use crate::supervision::draws;
use crate::supervision::tasks::{self, Finding, Inspection};

const DRAWERS: Roles = Roles(&["supervisor", "regional_admin"]);
const DIVISION_ADMIN: Roles = Roles(&["division_admin"]);
const INSPECTOR: Roles = Roles(&["inspector"]);
const DIVISION: Roles = Roles(&["division_admin", "inspector"]);
const OVERSEERS: Roles = Roles(&["supervisor", "regional_admin", "division_admin"]);

#[derive(SimpleObject)]
pub struct SlaBreach {
    pub id: ID,
    /// The task's id — for a case's own limit (`legal_limit`, `revocation_decision`), the case's.
    pub task_id: ID,
    /// `look_at` (3 working days from the notice) or `feedback` (5 from the inspection) of a
    /// supervision task; `legal_limit` (the ordinary procedure's decision limit) or
    /// `revocation_decision` of a case, kept against its department alone.
    pub limit: String,
    pub region: Option<String>,
    pub department: Option<String>,
    pub division: Option<String>,
    pub breached_at: DateTime<Utc>,
}

#[derive(InputObject, Default)]
pub struct SlaBreachFilter {
    pub department: Option<String>,
    pub division: Option<String>,
    /// From this instant (inclusive).
    pub from: Option<DateTime<Utc>>,
    /// Up to this instant (exclusive).
    pub to: Option<DateTime<Utc>>,
}

#[derive(InputObject)]
pub struct AssignInspectorsInput {
    pub task_id: ID,
    /// Staff ids of active inspectors of the task's division.
    pub inspectors: Vec<String>,
}

#[derive(InputObject)]
pub struct RecordInspectionInput {
    pub task_id: ID,
    /// The day of the visit (office calendar date).
    pub inspected_on: NaiveDate,
    /// One finding for each condition of the licence.
    pub findings: Vec<Finding>,
    /// References to photographs, records and documents kept elsewhere.
    #[graphql(default)]
    pub evidence: Vec<String>,
    pub note: Option<String>,
}

impl From<RecordInspectionInput> for Inspection {
    fn from(i: RecordInspectionInput) -> Self {
        Inspection { inspected_on: i.inspected_on, findings: i.findings, evidence: i.evidence, note: i.note }
    }
}

#[derive(InputObject)]
pub struct FeedBackInspectionInput {
    pub task_id: ID,
    /// What must be put right, when a condition was not kept; the period is the item's.
    pub rectification_order: Option<String>,
}

#[derive(SimpleObject)]
pub struct SupervisionTaskPayload {
    pub task: WorkflowInstance,
}

/// The task, when the caller may see it.
async fn visible_task(ctx: &Context<'_>, id: &ID) -> async_graphql::Result<()> {
    let engine = ctx.data::<Engine>()?;
    policy::task(&engine.db, access::claims(ctx)?, id).await.map(|_| ())
}

#[derive(SimpleObject)]
pub struct DrawPick {
    pub case_id: ID,
    pub tier: String,
    pub inspector: Option<String>,
    pub task_id: ID,
}

#[derive(SimpleObject)]
pub struct InspectionDraw {
    pub id: ID,
    /// The seed: the same seed over the same pool draws the same cases.
    pub seed: String,
    pub drawn_by: String,
    pub drawn_at: chrono::DateTime<chrono::Utc>,
    /// The shares per tier used, as JSON.
    pub ratios: String,
    /// How many cases were in the pool.
    pub pool_size: i64,
    pub picks: Vec<DrawPick>,
}

impl TryFrom<draws::DrawRow> for InspectionDraw {
    type Error = serde_json::Error;
    fn try_from(r: draws::DrawRow) -> Result<Self, Self::Error> {
        let pool: Vec<serde_json::Value> = serde_json::from_str(&r.pool)?;
        let picks: Vec<serde_json::Value> = serde_json::from_str(&r.picks)?;
        let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
        Ok(Self {
            id: ID(r.id),
            seed: (r.seed as u64).to_string(),
            drawn_by: r.drawn_by,
            drawn_at: crate::store::millis::from_ms(r.drawn_at),
            ratios: r.ratios,
            pool_size: pool.len() as i64,
            picks: picks
                .iter()
                .map(|p| DrawPick { case_id: ID(text(&p["case_id"])), tier: text(&p["tier"]), inspector: p["inspector"].as_str().map(str::to_string), task_id: ID(text(&p["task_id"])) })
                .collect(),
        })
    }
}

#[derive(Default)]
pub struct SupervisionQuery;

#[Object]
impl SupervisionQuery {
    /// Breaches of the supervision limits in the caller's region (a division admin: in the
    /// own division), newest first.
    #[graphql(guard = "OVERSEERS")]
    async fn sla_breaches(&self, ctx: &Context<'_>, filter: Option<SlaBreachFilter>, first: Option<i32>) -> async_graphql::Result<Vec<SlaBreach>> {
        let engine = ctx.data::<Engine>()?;
        let claims = access::claims(ctx)?;
        let page = access::Page::from_args(first, None)?;
        let f = filter.unwrap_or_default();
        // Supervisors see their region; a division admin only the own division ("" matches nothing).
        let regional = claims.roles.iter().any(|r| r == "supervisor" || r == "regional_admin");
        let (region, division) = if regional {
            (Some(claims.region.clone().unwrap_or_default()), f.division)
        } else {
            (None, Some(claims.division.clone().unwrap_or_default()))
        };
        let query = sla::Filter { region, department: f.department, division, from: f.from, to: f.to };
        let rows = sla::list(&engine.db, &query, page.first).await.map_err(|e| e.internal())?;
        Ok(rows
            .into_iter()
            .map(|b| SlaBreach {
                id: ID(b.id),
                task_id: ID(b.instance_id),
                limit: b.limit_kind,
                region: b.region,
                department: b.department,
                division: b.division,
                breached_at: crate::store::millis::from_ms(b.breached_at),
            })
            .collect())
    }

    /// The latest random inspection draws with their seeds, pools and picks.
    #[graphql(guard = "DRAWERS")]
    async fn inspection_draws(&self, ctx: &Context<'_>, first: Option<i32>) -> async_graphql::Result<Vec<InspectionDraw>> {
        let services = ctx.data::<Services>()?;
        let region = policy::region(&services.engine.db, access::claims(ctx)?, Act::Draw).await?;
        let page = access::Page::from_args(first, None)?;
        let rows = draws::list(&services.engine.db, &region.code, page.first).await.map_err(|e| e.internal())?;
        rows.into_iter().map(|r| InspectionDraw::try_from(r).map_err(|e| e.internal())).collect()
    }
}

#[derive(InputObject)]
pub struct DrawInspectionsInput {
    /// A decimal seed to repeat a draw; a random one (recorded) when absent.
    pub seed: Option<String>,
}

#[derive(SimpleObject)]
pub struct DrawInspectionsPayload {
    pub draw: InspectionDraw,
}

#[derive(Default)]
pub struct SupervisionMutation;

#[Object]
impl SupervisionMutation {
    /// The division admin looks at a task and assigns inspectors of the division to it.
    #[graphql(guard = "DIVISION_ADMIN")]
    async fn assign_inspectors(&self, ctx: &Context<'_>, input: AssignInspectorsInput) -> async_graphql::Result<SupervisionTaskPayload> {
        visible_task(ctx, &input.task_id).await?;
        let task = tasks::assign(ctx.data::<Engine>()?, access::claims(ctx)?, &input.task_id, &input.inspectors).await.map_err(window_error)?;
        Ok(SupervisionTaskPayload { task: WorkflowInstance(task) })
    }

    /// An assigned inspector records the inspection: a finding for every condition of the
    /// licence, evidence references; the result follows from the findings.
    #[graphql(guard = "INSPECTOR")]
    async fn record_inspection(&self, ctx: &Context<'_>, input: RecordInspectionInput) -> async_graphql::Result<SupervisionTaskPayload> {
        visible_task(ctx, &input.task_id).await?;
        let id = input.task_id.to_string();
        let task = tasks::record_inspection(ctx.data::<Engine>()?, access::claims(ctx)?, &id, &input.into()).await.map_err(window_error)?;
        Ok(SupervisionTaskPayload { task: WorkflowInstance(task) })
    }

    /// Feeds the inspection's result back (within 5 working days): kept closes the task;
    /// not kept sends the applicant a rectification order with the item's period.
    #[graphql(guard = "DIVISION")]
    async fn feed_back_inspection(&self, ctx: &Context<'_>, input: FeedBackInspectionInput) -> async_graphql::Result<SupervisionTaskPayload> {
        visible_task(ctx, &input.task_id).await?;
        let engine = ctx.data::<Engine>()?;
        let task = tasks::feed_back(engine, access::claims(ctx)?, &input.task_id, input.rectification_order.as_deref()).await.map_err(window_error)?;
        Ok(SupervisionTaskPayload { task: WorkflowInstance(task) })
    }

    /// The re-inspection after rectification: all kept closes the task as fulfilled; anything
    /// still failing recommends revocation to the approving department.
    #[graphql(guard = "INSPECTOR")]
    async fn record_reinspection(&self, ctx: &Context<'_>, input: RecordInspectionInput) -> async_graphql::Result<SupervisionTaskPayload> {
        visible_task(ctx, &input.task_id).await?;
        let id = input.task_id.to_string();
        let task = tasks::record_reinspection(ctx.data::<Engine>()?, access::claims(ctx)?, &id, &input.into()).await.map_err(window_error)?;
        Ok(SupervisionTaskPayload { task: WorkflowInstance(task) })
    }

    /// Runs the random inspection draw now over the licensed after-the-fact cases, creating a
    /// supervision task per pick.
    #[graphql(guard = "DRAWERS")]
    async fn draw_inspections(&self, ctx: &Context<'_>, input: DrawInspectionsInput) -> async_graphql::Result<DrawInspectionsPayload> {
        let services = ctx.data::<Services>()?;
        let claims = access::claims(ctx)?;
        let seed = match &input.seed {
            Some(s) => s.trim().parse::<u64>().map_err(|_| error("BAD_USER_INPUT", "seed is a whole number").extend_with(|_, e| e.set("field", "seed")))?,
            None => rand::random(),
        };
        let region = policy::region(&services.engine.db, claims, Act::Draw).await?;
        let report = draws::run(&services.engine, &services.sampling, seed, &claims.sub, &region.code).await.map_err(store_error)?;
        let rows = draws::list(&services.engine.db, &region.code, 20).await.map_err(|e| e.internal())?;
        let row = rows.into_iter().find(|r| r.id == report.id).ok_or_else(|| error("INTERNAL", "internal error"))?;
        Ok(DrawInspectionsPayload { draw: InspectionDraw::try_from(row).map_err(|e| e.internal())? })
    }
}
