//! Running a draw against the database: the pool (licensed after-the-fact cases with their
//! applicants' tiers and the linked divisions' inspectors), the picks, and one supervision task
//! per pick — all in one transaction with the draw's record (seed, ratios, pool, picks).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr, FromQueryResult};
use serde_json::{json, Value};

use super::draw::{self, Candidate, Pick, Sampling};
use crate::domain::definitions::SUPERVISION_TASK;
use crate::runtime::Engine;
use crate::store::{self, instances, stmt, StoreError};
use crate::workflow::Actor;

#[derive(Debug, Clone, PartialEq)]
pub struct DrawReport {
    pub id: String,
    pub seed: u64,
    pub pool: usize,
    /// Each pick with the task created for it.
    pub picks: Vec<(Pick, String)>,
}

#[derive(FromQueryResult)]
struct PoolRow {
    case_id: String,
    tier: String,
    context: String,
}

pub(crate) async fn inspectors(db: &impl ConnectionTrait, division: &str) -> Result<Vec<String>, DbErr> {
    #[derive(FromQueryResult)]
    struct Id {
        id: String,
    }
    let rows = db
        .query_all_raw(stmt(
            db,
            "SELECT id FROM staff WHERE division = ? AND active = 1 AND roles LIKE '%\"inspector\"%' ORDER BY id",
            vec![division.into()],
        ))
        .await?;
    Ok(rows.iter().filter_map(|r| Id::from_query_result(r, "").ok()).map(|i| i.id).collect())
}

/// Draws with `seed` (recorded) from the cases of `region` and creates the tasks; `by` is who
/// ran it (a person, or `cron`). A draw never reaches past its region, never picks a case that
/// has an open task, and leaves out an enterprise inspected for the same item within the
/// policy's period (查重对碰).
pub async fn run(engine: &Engine, sampling: &Sampling, seed: u64, by: &str, region: &str) -> Result<DrawReport, StoreError> {
    let now: DateTime<Utc> = engine.now();
    let ratios = &sampling.ratios;
    let since = (now - chrono::Duration::days(sampling.no_repeat_days)).timestamp_millis();
    // A task is open in any state its definition (of any version) does not mark final.
    let mut open: Vec<String> = engine
        .workflows
        .set
        .all()
        .filter(|d| d.name == SUPERVISION_TASK)
        .flat_map(|d| d.states.iter().filter(|(_, st)| !st.is_final).map(|(name, _)| format!("'{name}'")))
        .collect();
    open.sort();
    open.dedup();
    let open = open.join(", ");
    let txn = store::begin_write(&engine.db).await?;
    let rows = txn
        .query_all_raw(stmt(
            &txn,
            &format!(
                "SELECT c.instance_id AS case_id, a.credit_tier AS tier, i.context AS context \
                 FROM cases c JOIN workflow_instances i ON i.id = c.instance_id JOIN applicants a ON a.uscc = c.applicant_uscc \
                 WHERE c.mode = 'after_the_fact' AND i.state = 'licensed' AND i.region = ? \
                 AND NOT EXISTS (SELECT 1 FROM workflow_instances t WHERE t.parent_id = c.instance_id AND t.definition_name = '{SUPERVISION_TASK}' \
                                 AND t.state IN ({open})) \
                 AND NOT EXISTS (SELECT 1 FROM workflow_events e JOIN workflow_instances t ON t.id = e.instance_id JOIN cases o ON o.instance_id = t.parent_id \
                                 WHERE e.event = 'inspection_finished' AND e.occurred_at > ? AND o.applicant_uscc = c.applicant_uscc AND o.item_code = c.item_code) \
                 ORDER BY c.instance_id"
            ),
            vec![region.into(), since.into()],
        ))
        .await?;
    let mut contexts: BTreeMap<String, Value> = BTreeMap::new();
    let mut pool = Vec::new();
    let mut by_division: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for row in rows {
        let row = PoolRow::from_query_result(&row, "")?;
        let context: Value = serde_json::from_str(&row.context).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let division = context["supervision"]["division"].as_str().unwrap_or_default().to_string();
        if !by_division.contains_key(&division) {
            let list = if division.is_empty() { Vec::new() } else { inspectors(&txn, &division).await? };
            by_division.insert(division.clone(), list);
        }
        pool.push(Candidate { case_id: row.case_id.clone(), tier: row.tier, inspectors: by_division[&division].clone() });
        contexts.insert(row.case_id, context);
    }
    let picks = draw::draw(&pool, ratios, seed);
    let id = uuid::Uuid::now_v7().to_string();
    let mut created = Vec::new();
    for pick in picks {
        let case = &contexts[&pick.case_id];
        let context = json!({
            "parent": {"id": pick.case_id, "definition": "after-the-fact-review", "context": case},
            "draw": {"id": id, "seed": seed.to_string(), "tier": pick.tier},
            "inspectors": pick.inspector.iter().collect::<Vec<_>>(),
        });
        let task = instances::start(&txn, &engine.workflows, "supervision-task", context, BTreeMap::new(), &Actor::system(), Some(pick.case_id.clone()), now).await?;
        created.push((pick, task.id));
    }
    let pool_json = json!(pool.iter().map(|c| json!({"case_id": c.case_id, "tier": c.tier})).collect::<Vec<_>>());
    let picks_json = json!(created.iter().map(|(p, task)| json!({"case_id": p.case_id, "tier": p.tier, "inspector": p.inspector, "task_id": task})).collect::<Vec<_>>());
    txn.execute_raw(stmt(
        &txn,
        "INSERT INTO inspection_draws (id, seed, drawn_by, drawn_at, ratios, pool, picks, region) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        vec![
            id.clone().into(),
            (seed as i64).into(),
            by.into(),
            now.timestamp_millis().into(),
            json!(ratios).to_string().into(),
            pool_json.to_string().into(),
            picks_json.to_string().into(),
            region.into(),
        ],
    ))
    .await?;
    txn.commit().await?;
    Ok(DrawReport { id, seed, pool: pool.len(), picks: created })
}

#[derive(Debug, Clone, FromQueryResult)]
pub struct DrawRow {
    pub id: String,
    pub seed: i64,
    pub drawn_by: String,
    pub drawn_at: i64,
    pub ratios: String,
    pub pool: String,
    pub picks: String,
}

/// The cron's draw: one per region that has licensed after-the-fact cases, each with `seed`.
pub async fn run_every_region(engine: &Engine, sampling: &Sampling, seed: u64, by: &str) -> Result<Vec<DrawReport>, StoreError> {
    #[derive(FromQueryResult)]
    struct Region {
        region: String,
    }
    let rows = engine
        .db
        .query_all_raw(stmt(
            &engine.db,
            "SELECT DISTINCT i.region AS region FROM cases c JOIN workflow_instances i ON i.id = c.instance_id \
             WHERE c.mode = 'after_the_fact' AND i.state = 'licensed' AND i.region IS NOT NULL ORDER BY i.region",
            vec![],
        ))
        .await?;
    let mut out = Vec::new();
    for row in rows {
        let region = Region::from_query_result(&row, "")?.region;
        out.push(run(engine, sampling, seed, by, &region).await?);
    }
    Ok(out)
}

/// The latest draws of `region`, newest first.
pub async fn list(db: &impl ConnectionTrait, region: &str, limit: u64) -> Result<Vec<DrawRow>, DbErr> {
    let rows = db
        .query_all_raw(stmt(
            db,
            "SELECT id, seed, drawn_by, drawn_at, ratios, pool, picks FROM inspection_draws WHERE region = ? ORDER BY drawn_at DESC LIMIT ?",
            vec![region.into(), (limit as i64).into()],
        ))
        .await?;
    rows.iter().map(|r| DrawRow::from_query_result(r, "")).collect()
}
