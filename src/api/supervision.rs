//! The supervising side's GraphQL: the random inspection draw and its record.

use async_graphql::{Context, ErrorExtensions, InputObject, Object, SimpleObject, ID};

use super::access::{self, error, ErrorCode, Roles};
use super::events::store_error;
use super::Services;
use crate::supervision::draws;

const DRAWERS: Roles = Roles(&["supervisor", "regional_admin"]);

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
            drawn_at: crate::store::instances::from_ms(r.drawn_at),
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
    /// The latest random inspection draws with their seeds, pools and picks.
    #[graphql(guard = "DRAWERS")]
    async fn inspection_draws(&self, ctx: &Context<'_>, first: Option<i32>) -> async_graphql::Result<Vec<InspectionDraw>> {
        let services = ctx.data::<Services>()?;
        let page = access::Page::from_args(first, None)?;
        let rows = draws::list(&services.engine.db, page.first).await.map_err(|e| e.internal())?;
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
        let report = draws::run(&services.engine, &services.sampling, seed, &claims.sub).await.map_err(store_error)?;
        let rows = draws::list(&services.engine.db, 20).await.map_err(|e| e.internal())?;
        let row = rows.into_iter().find(|r| r.id == report.id).ok_or_else(|| error("INTERNAL", "internal error"))?;
        Ok(DrawInspectionsPayload { draw: InspectionDraw::try_from(row).map_err(|e| e.internal())? })
    }
}
