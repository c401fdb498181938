//! Supervisors' statistics (闭环管理), counted in the database: every figure is an aggregate
//! over `cases` and what hangs off them (events, tasks, SLA breaches, returns), filtered by
//! region / department / item and the intake date range; only counts come back.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Offset, Utc};
use sea_orm::{ConnectionTrait, DbErr, FromQueryResult};

use crate::store::{count, fetch};

/// Which cases: opened in `[from, to)`, in these departments (none: every department), of this item.
#[derive(Debug, Clone)]
pub struct Scope {
    pub departments: Vec<String>,
    pub item: Option<String>,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

impl Scope {
    /// The condition on `cases` aliased `alias`, with its values.
    fn condition(&self, alias: &str) -> (String, Vec<sea_orm::Value>) {
        self.condition_on(alias, "created_at")
    }

    fn condition_on(&self, alias: &str, column: &str) -> (String, Vec<sea_orm::Value>) {
        let mut sql = format!("{alias}.{column} >= ? AND {alias}.{column} < ?");
        let mut values: Vec<sea_orm::Value> = vec![self.from.timestamp_millis().into(), self.to.timestamp_millis().into()];
        if !self.departments.is_empty() {
            sql.push_str(&format!(" AND {alias}.department IN ({})", vec!["?"; self.departments.len()].join(", ")));
            values.extend(self.departments.iter().map(|d| d.clone().into()));
        }
        if let Some(item) = &self.item {
            sql.push_str(&format!(" AND {alias}.item_code = ?"));
            values.push(item.clone().into());
        }
        (sql, values)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct ModeState {
    pub mode: String,
    pub state: String,
    pub count: i64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fulfilment {
    pub kept: i64,
    pub not_kept: i64,
    pub in_force: i64,
}

impl Fulfilment {
    /// Kept over settled (kept or not); `None` before anything settled.
    pub fn rate(&self) -> Option<f64> {
        let settled = self.kept + self.not_kept;
        (settled > 0).then(|| self.kept as f64 / settled as f64)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, FromQueryResult, async_graphql::SimpleObject)]
#[graphql(name = "DeferralFigures")]
pub struct Deferrals {
    pub on_time: i64,
    pub late: i64,
    pub never: i64,
    pub pending: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct Cause {
    pub event: String,
    pub count: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, FromQueryResult, async_graphql::SimpleObject)]
#[graphql(name = "RectificationFigures")]
pub struct Rectifications {
    pub ordered: i64,
    pub succeeded: i64,
    pub failed: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult, async_graphql::SimpleObject)]
pub struct DivisionFigures {
    pub division: Option<String>,
    pub tasks: i64,
    /// Looked at (inspectors assigned) within 3 working days of the notice.
    pub looked_at_in_time: i64,
    pub look_at_breaches: i64,
    /// Result fed back within 5 working days of the inspection.
    pub fed_back_in_time: i64,
    pub feedback_breaches: i64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ToLicence {
    pub licensed: i64,
    pub average_working_days: Option<f64>,
    pub p90_working_days: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Returns {
    /// Applications taken in: cases opened and applications returned.
    pub applications: i64,
    pub returns: i64,
    /// Cases opened with no earlier return of the same applicant and item.
    pub first_time: i64,
    pub cases: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Week,
    Month,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bucket {
    pub start: NaiveDate,
    pub opened: i64,
    pub licensed: i64,
    pub returned: i64,
}

async fn one<T: FromQueryResult + Default>(db: &impl ConnectionTrait, sql: &str, values: Vec<sea_orm::Value>) -> Result<T, DbErr> {
    Ok(fetch(db, sql, values).await?.into_iter().next().unwrap_or_default())
}

/// The mode a case workflow stands for.
fn mode_of(definition: &str) -> Option<&'static str> {
    match definition {
        "material-deferral" | "material-deferral-licence-first" => Some("deferral"),
        "material-verification" => Some("verification"),
        "after-the-fact-review" => Some("after_the_fact"),
        _ => None,
    }
}

pub async fn by_mode_and_state(db: &impl ConnectionTrait, s: &Scope) -> Result<Vec<ModeState>, DbErr> {
    if s.item.is_some() {
        let (w, v) = s.condition("c");
        return fetch(
            db,
            &format!("SELECT c.mode, i.state, COUNT(*) AS count FROM cases c JOIN workflow_instances i ON i.id = c.instance_id WHERE {w} GROUP BY c.mode, i.state ORDER BY c.mode, i.state"),
            v,
        )
        .await;
    }
    // Without an item, the instances alone answer (a case's instance has its department and
    // intake time), read from one covering index.
    #[derive(FromQueryResult)]
    struct Row {
        definition_name: String,
        state: String,
        count: i64,
    }
    let (w, v) = s.condition("i");
    let rows: Vec<Row> = fetch(
        db,
        &format!("SELECT i.definition_name, i.state, COUNT(*) AS count FROM workflow_instances i WHERE {w} AND i.parent_id IS NULL GROUP BY i.definition_name, i.state"),
        v,
    )
    .await?;
    let mut merged: BTreeMap<(String, String), i64> = BTreeMap::new();
    for r in rows {
        if let Some(mode) = mode_of(&r.definition_name) {
            *merged.entry((mode.to_string(), r.state)).or_default() += r.count;
        }
    }
    Ok(merged.into_iter().map(|((mode, state), count)| ModeState { mode, state, count }).collect())
}

/// From the states: closed is kept, revoked is not; refused and withdrawn carry no standing
/// commitment; the rest are still in force.
pub fn fulfilment(rows: &[ModeState]) -> Fulfilment {
    let mut f = Fulfilment::default();
    for r in rows {
        match r.state.as_str() {
            "closed" => f.kept += r.count,
            "revoked" => f.not_kept += r.count,
            "refused" | "withdrawn" => {}
            _ => f.in_force += r.count,
        }
    }
    f
}

pub async fn deferrals(db: &impl ConnectionTrait, s: &Scope) -> Result<Deferrals, DbErr> {
    let (w, v) = s.condition("c");
    let supplied = "EXISTS (SELECT 1 FROM workflow_events e WHERE e.instance_id = c.instance_id AND e.event = 'materials_complete')";
    let late = "EXISTS (SELECT 1 FROM workflow_events e WHERE e.instance_id = c.instance_id AND e.event = 'materials_complete' \
                AND e.occurred_at > (SELECT MAX(m.due_at) FROM case_materials m WHERE m.instance_id = c.instance_id))";
    let expired = "EXISTS (SELECT 1 FROM workflow_events e WHERE e.instance_id = c.instance_id AND e.event = 'expire')";
    one(
        db,
        &format!(
            "SELECT COALESCE(SUM(CASE WHEN {supplied} AND NOT {late} THEN 1 ELSE 0 END), 0) AS on_time, \
                    COALESCE(SUM(CASE WHEN {late} THEN 1 ELSE 0 END), 0) AS late, \
                    COALESCE(SUM(CASE WHEN {expired} THEN 1 ELSE 0 END), 0) AS never, \
                    COALESCE(SUM(CASE WHEN NOT {supplied} AND NOT {expired} AND i.state NOT IN ('withdrawn', 'refused') THEN 1 ELSE 0 END), 0) AS pending \
             FROM cases c JOIN workflow_instances i ON i.id = c.instance_id WHERE {w} AND c.mode = 'deferral'"
        ),
        v,
    )
    .await
}

/// Revocations by the event that revoked: `expire` (deferred materials not in), `revocation_decided`
/// (supervision found the commitment broken), `revoke` (the approving department).
pub async fn revocations(db: &impl ConnectionTrait, s: &Scope) -> Result<Vec<Cause>, DbErr> {
    if s.item.is_none() {
        // The revoked instances from the covering index, then each one's revoking event.
        let (w, v) = s.condition("i");
        return fetch(
            db,
            &format!(
                "SELECT e.event, COUNT(*) AS count FROM workflow_instances i JOIN workflow_events e ON e.instance_id = i.id \
                 WHERE {w} AND i.parent_id IS NULL AND i.state = 'revoked' AND e.to_state = 'revoked' AND e.from_state <> 'revoked' \
                 GROUP BY e.event ORDER BY e.event"
            ),
            v,
        )
        .await;
    }
    let (w, v) = s.condition("c");
    fetch(
        db,
        &format!(
            "SELECT e.event, COUNT(*) AS count FROM cases c JOIN workflow_events e ON e.instance_id = c.instance_id \
             WHERE {w} AND e.to_state = 'revoked' AND e.from_state <> 'revoked' GROUP BY e.event ORDER BY e.event"
        ),
        v,
    )
    .await
}

pub async fn rectifications(db: &impl ConnectionTrait, s: &Scope) -> Result<Rectifications, DbErr> {
    let (w, v) = s.condition("c");
    one(
        db,
        &format!(
            "SELECT COALESCE(SUM(CASE WHEN e.event = 'not_kept' THEN 1 ELSE 0 END), 0) AS ordered, \
                    COALESCE(SUM(CASE WHEN e.event = 'rectified' THEN 1 ELSE 0 END), 0) AS succeeded, \
                    COALESCE(SUM(CASE WHEN e.event IN ('still_failing', 'rectification_expired') THEN 1 ELSE 0 END), 0) AS failed \
             FROM cases c JOIN workflow_instances t ON t.parent_id = c.instance_id \
             JOIN workflow_events e ON e.instance_id = t.id \
             WHERE {w} AND t.definition_name = 'supervision-task' AND e.event IN ('not_kept', 'rectified', 'still_failing', 'rectification_expired')"
        ),
        v,
    )
    .await
}

/// Per supervising division: tasks, looked at within 3 working days (accepted with no breach of
/// that limit), fed back within 5 (a result fed back with no breach of that limit), breaches.
pub async fn divisions(db: &impl ConnectionTrait, s: &Scope) -> Result<Vec<DivisionFigures>, DbErr> {
    let (w, v) = s.condition("c");
    let event = |names: &str| format!("EXISTS (SELECT 1 FROM workflow_events e WHERE e.instance_id = t.id AND e.event IN ({names}))");
    let breach = |limit: &str| format!("EXISTS (SELECT 1 FROM sla_breaches b WHERE b.instance_id = t.id AND b.limit_kind = '{limit}')");
    let (accepted, fed_back) = (event("'accept'"), event("'kept', 'not_kept'"));
    let (late_look, late_feedback) = (breach("look_at"), breach("feedback"));
    fetch(
        db,
        &format!(
            "SELECT t.division, COUNT(*) AS tasks, \
                    COALESCE(SUM(CASE WHEN {accepted} AND NOT {late_look} THEN 1 ELSE 0 END), 0) AS looked_at_in_time, \
                    COALESCE(SUM(CASE WHEN {late_look} THEN 1 ELSE 0 END), 0) AS look_at_breaches, \
                    COALESCE(SUM(CASE WHEN {fed_back} AND NOT {late_feedback} THEN 1 ELSE 0 END), 0) AS fed_back_in_time, \
                    COALESCE(SUM(CASE WHEN {late_feedback} THEN 1 ELSE 0 END), 0) AS feedback_breaches \
             FROM cases c JOIN workflow_instances t ON t.parent_id = c.instance_id \
             WHERE {w} AND t.definition_name = 'supervision-task' GROUP BY t.division ORDER BY t.division"
        ),
        v,
    )
    .await
}

pub async fn to_licence(db: &impl ConnectionTrait, s: &Scope) -> Result<ToLicence, DbErr> {
    #[derive(FromQueryResult, Default)]
    struct Agg {
        n: i64,
        total: Option<i64>,
    }
    let (w, v) = s.condition("c");
    let agg: Agg = one(
        db,
        &format!("SELECT COUNT(c.licence_working_days) AS n, CAST(SUM(c.licence_working_days) AS BIGINT) AS total FROM cases c WHERE {w} AND c.licence_working_days IS NOT NULL"),
        v.clone(),
    )
    .await?;
    if agg.n == 0 {
        return Ok(ToLicence::default());
    }
    // The nearest-rank 90th percentile: the ⌈0.9·n⌉-th smallest.
    let rank = (agg.n * 9 + 9) / 10 - 1;
    let p90 = count(
        db,
        &format!("SELECT c.licence_working_days AS n FROM cases c WHERE {w} AND c.licence_working_days IS NOT NULL ORDER BY c.licence_working_days LIMIT 1 OFFSET {rank}"),
        v,
    )
    .await?;
    Ok(ToLicence { licensed: agg.n, average_working_days: agg.total.map(|t| t as f64 / agg.n as f64), p90_working_days: Some(p90) })
}

pub async fn returns(db: &impl ConnectionTrait, s: &Scope) -> Result<Returns, DbErr> {
    let (w, v) = s.condition("c");
    let first = count(
        db,
        &format!(
            "SELECT COUNT(*) AS n FROM cases c WHERE {w} AND NOT EXISTS (SELECT 1 FROM returns r WHERE r.item_code = c.item_code \
             AND r.applicant_uscc = c.applicant_uscc AND r.created_at < c.created_at)"
        ),
        v.clone(),
    )
    .await?;
    let cases = count(db, &format!("SELECT COUNT(*) AS n FROM cases c WHERE {w}"), v).await?;
    let (rw, rv) = s.condition("r");
    let returned = count(db, &format!("SELECT COUNT(*) AS n FROM returns r WHERE {rw}"), rv).await?;
    Ok(Returns { applications: cases + returned, returns: returned, first_time: first, cases })
}

/// Opened, licensed and returned per week (from Monday) or month, in the office's zone: the
/// database counts per local day, the days are folded into periods here.
pub async fn series(db: &impl ConnectionTrait, s: &Scope, period: Period, tz: chrono_tz::Tz) -> Result<Vec<Bucket>, DbErr> {
    #[derive(FromQueryResult)]
    struct Day {
        day: i64,
        n: i64,
    }
    // The zone's offset now, applied to every instant: exact for zones without daylight saving (China's).
    let offset = i64::from(Utc::now().with_timezone(&tz).offset().fix().local_minus_utc()) * 1000;
    let per_day = |column: &'static str, table: &'static str, alias: &'static str| {
        let (w, v) = s.condition_on(alias, column);
        (format!("SELECT ({alias}.{column} + {offset}) / 86400000 AS day, COUNT(*) AS n FROM {table} {alias} WHERE {w} GROUP BY ({alias}.{column} + {offset}) / 86400000"), v)
    };
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    let bucket = |day: i64| {
        let date = epoch + Duration::days(day);
        match period {
            Period::Week => date - Duration::days(i64::from(date.weekday().num_days_from_monday())),
            Period::Month => date.with_day(1).unwrap_or(date),
        }
    };
    let mut out: BTreeMap<NaiveDate, Bucket> = BTreeMap::new();
    for (which, (sql, values)) in [per_day("created_at", "cases", "c"), per_day("licensed_at", "cases", "c"), per_day("created_at", "returns", "r")].into_iter().enumerate() {
        for d in fetch::<Day>(db, &sql, values).await? {
            let start = bucket(d.day);
            let b = out.entry(start).or_insert_with(|| Bucket { start, ..Bucket::default() });
            match which {
                0 => b.opened += d.n,
                1 => b.licensed += d.n,
                _ => b.returned += d.n,
            }
        }
    }
    Ok(out.into_values().collect())
}
