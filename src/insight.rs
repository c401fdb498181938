//! Supervisors' statistics (闭环管理), counted in the database: the whole local days of the
//! range are read from the running counts (`store::rollup`), the part-days at its ends are
//! counted from the cases, events and tasks themselves by the same facts the rollup is built
//! from; only counts come back.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, Utc};
use sea_orm::{ConnectionTrait, DbErr, FromQueryResult};

use crate::domain::calendar::local_instant;
use crate::store::fetch;
use crate::store::rollup::{self, local_day, Sum};

/// Which cases: opened in `[from, to)`, in these departments (none: every department), of this item.
#[derive(Debug, Clone)]
pub struct Scope {
    pub departments: Vec<String>,
    pub item: Option<String>,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

impl Scope {
    /// The condition on the table aliased `alias` (with `department` and `item_code` columns)
    /// whose instant `column` is in the range, with its values.
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

/// The whole local days inside `[from, to)`, and the part-days at its ends.
fn split(s: &Scope, tz: chrono_tz::Tz) -> (Option<(i64, i64)>, Vec<Scope>) {
    let midnight = |day: i64| local_instant(rollup::day_date(day), NaiveTime::MIN, tz);
    let mut first = local_day(s.from.timestamp_millis(), tz);
    if midnight(first) != Some(s.from) {
        first += 1;
    }
    let last = local_day(s.to.timestamp_millis(), tz);
    let (Some(start), Some(end)) = (midnight(first), midnight(last)) else { return (None, vec![s.clone()]) };
    if first >= last {
        return (None, vec![s.clone()]);
    }
    let edges = [(s.from, start), (end, s.to)].into_iter().filter(|(a, b)| a < b).map(|(from, to)| Scope { from, to, ..s.clone() }).collect();
    (Some((first, last)), edges)
}

/// The rows of `metrics` in scope: summed from the rollup over whole days, counted directly
/// over the part-days; per day and metric when `by_day` (as `rollup::grouping`).
pub async fn counted(db: &impl ConnectionTrait, s: &Scope, tz: chrono_tz::Tz, metrics: &[&str], by_day: bool) -> Result<Vec<Sum>, DbErr> {
    let (days, edges) = split(s, tz);
    let mut rows = match days {
        Some(days) => rollup::sums(db, &s.departments, s.item.as_deref(), days, metrics, by_day).await?,
        None => Vec::new(),
    };
    for edge in edges {
        rows.extend(exact(db, &edge, tz, metrics, by_day).await?);
    }
    Ok(rows)
}

/// The rows of `metrics` counted from the source tables over the scope's exact range.
pub async fn exact(db: &impl ConnectionTrait, s: &Scope, tz: chrono_tz::Tz, metrics: &[&str], by_day: bool) -> Result<Vec<Sum>, DbErr> {
    let mut rows = Vec::new();
    let (select, group) = rollup::grouping(by_day);
    for fact in rollup::facts(tz).into_iter().filter(|f| f.metrics.iter().any(|m| metrics.contains(m))) {
        let (w, mut v) = s.condition_on(fact.alias, fact.column);
        let wanted = vec!["?"; metrics.len()].join(", ");
        v.extend(metrics.iter().map(|m| (*m).into()));
        let sql = format!("SELECT {select}, COUNT(*) AS n FROM ({} AND {w}) f WHERE metric IN ({wanted}) GROUP BY {group}", fact.sql);
        rows.extend(fetch::<Sum>(db, &sql, v).await?);
    }
    Ok(rows)
}

/// Summed by (mode, metric, key), zeros dropped (a state every case has left).
fn folded(rows: Vec<Sum>) -> BTreeMap<(String, String, String), i64> {
    let mut out: BTreeMap<(String, String, String), i64> = BTreeMap::new();
    for r in rows {
        *out.entry((r.metric, r.mode, r.key)).or_default() += r.n;
    }
    out.retain(|_, n| *n != 0);
    out
}

/// Summed by key over modes, for one metric.
fn by_key(rows: &BTreeMap<(String, String, String), i64>, metric: &str) -> BTreeMap<String, i64> {
    let mut out: BTreeMap<String, i64> = BTreeMap::new();
    for ((m, _, key), n) in rows {
        if m == metric {
            *out.entry(key.clone()).or_default() += n;
        }
    }
    out
}

fn total(rows: &BTreeMap<(String, String, String), i64>, metric: &str) -> i64 {
    by_key(rows, metric).values().sum()
}

pub async fn by_mode_and_state(db: &impl ConnectionTrait, s: &Scope, tz: chrono_tz::Tz) -> Result<Vec<ModeState>, DbErr> {
    let rows = folded(counted(db, s, tz, &[rollup::STATE], false).await?);
    Ok(rows.into_iter().map(|((_, mode, state), count)| ModeState { mode, state, count }).collect())
}

/// From the states: closed is kept, revoked is not; refused, withdrawn, returned (退件, before
/// any decision) and deregistered (the business licence cancelled, not a breach) carry no
/// standing commitment; the rest are still in force.
pub fn fulfilment(rows: &[ModeState]) -> Fulfilment {
    let mut f = Fulfilment::default();
    // The ordinary procedure promises nothing: no commitment to keep or break.
    for r in rows.iter().filter(|r| r.mode != crate::window::catalogue::Mode::Ordinary.as_str()) {
        match r.state.as_str() {
            "closed" => f.kept += r.count,
            "revoked" => f.not_kept += r.count,
            "refused" | "withdrawn" | "deregistered" | "returned" => {}
            _ => f.in_force += r.count,
        }
    }
    f
}

pub async fn deferrals(db: &impl ConnectionTrait, s: &Scope, tz: chrono_tz::Tz) -> Result<Deferrals, DbErr> {
    let rows = folded(counted(db, s, tz, &[rollup::DEFERRAL], false).await?);
    let k = by_key(&rows, rollup::DEFERRAL);
    let get = |key: &str| k.get(key).copied().unwrap_or(0);
    Ok(Deferrals { on_time: get("on_time"), late: get("late"), never: get("never"), pending: get("pending") })
}

/// Revocations by the event that revoked: `expire` (deferred materials not in), `revocation_decided`
/// (supervision found the commitment broken), `revoke` (the approving department).
pub async fn revocations(db: &impl ConnectionTrait, s: &Scope, tz: chrono_tz::Tz) -> Result<Vec<Cause>, DbErr> {
    let rows = folded(counted(db, s, tz, &[rollup::REVOKED], false).await?);
    Ok(by_key(&rows, rollup::REVOKED).into_iter().map(|(event, count)| Cause { event, count }).collect())
}

/// Ordinary cases opened in the range whose legal limit passed before a decision (each case once,
/// however often it passed after an extension).
pub async fn legal_limits_passed(db: &impl ConnectionTrait, s: &Scope) -> Result<i64, DbErr> {
    let (condition, values) = s.condition_on("c", "created_at");
    let sql = format!(
        "SELECT COUNT(DISTINCT b.instance_id) AS n FROM sla_breaches b JOIN cases c ON c.instance_id = b.instance_id WHERE b.limit_kind = 'legal_limit' AND {condition}"
    );
    crate::store::count(db, &sql, values).await
}

pub async fn rectifications(db: &impl ConnectionTrait, s: &Scope, tz: chrono_tz::Tz) -> Result<Rectifications, DbErr> {
    let rows = folded(counted(db, s, tz, &[rollup::RECT_ORDERED, rollup::RECT_SUCCEEDED, rollup::RECT_FAILED], false).await?);
    Ok(Rectifications { ordered: total(&rows, rollup::RECT_ORDERED), succeeded: total(&rows, rollup::RECT_SUCCEEDED), failed: total(&rows, rollup::RECT_FAILED) })
}

/// Per supervising division: tasks, looked at within 3 working days (accepted with no breach of
/// that limit), fed back within 5 (a result fed back with no breach of that limit), breaches.
pub async fn divisions(db: &impl ConnectionTrait, s: &Scope, tz: chrono_tz::Tz) -> Result<Vec<DivisionFigures>, DbErr> {
    use rollup::{FEEDBACK_BREACH, FED_BACK_IN_TIME, LOOKED_AT_IN_TIME, LOOK_AT_BREACH, TASK_COUNT};
    let rows = folded(counted(db, s, tz, &[TASK_COUNT, LOOKED_AT_IN_TIME, LOOK_AT_BREACH, FED_BACK_IN_TIME, FEEDBACK_BREACH], false).await?);
    let per = |metric: &str| by_key(&rows, metric);
    let (looked, late_look, fed, late_feedback) = (per(LOOKED_AT_IN_TIME), per(LOOK_AT_BREACH), per(FED_BACK_IN_TIME), per(FEEDBACK_BREACH));
    let of = |m: &BTreeMap<String, i64>, d: &str| m.get(d).copied().unwrap_or(0);
    Ok(per(TASK_COUNT)
        .into_iter()
        .map(|(d, tasks)| DivisionFigures {
            looked_at_in_time: of(&looked, &d),
            look_at_breaches: of(&late_look, &d),
            fed_back_in_time: of(&fed, &d),
            feedback_breaches: of(&late_feedback, &d),
            division: (!d.is_empty()).then_some(d),
            tasks,
        })
        .collect())
}

pub async fn to_licence(db: &impl ConnectionTrait, s: &Scope, tz: chrono_tz::Tz) -> Result<ToLicence, DbErr> {
    let rows = folded(counted(db, s, tz, &[rollup::LICENCE_DAYS], false).await?);
    let mut histogram: Vec<(i64, i64)> = by_key(&rows, rollup::LICENCE_DAYS).into_iter().filter_map(|(k, n)| Some((k.parse().ok()?, n))).collect();
    histogram.sort_unstable();
    let licensed: i64 = histogram.iter().map(|(_, n)| n).sum();
    if licensed == 0 {
        return Ok(ToLicence::default());
    }
    let sum: i64 = histogram.iter().map(|(days, n)| days * n).sum();
    // The nearest-rank 90th percentile: the ⌈0.9·n⌉-th smallest.
    let rank = (licensed * 9 + 9) / 10;
    let mut seen = 0;
    let p90 = histogram.iter().find(|(_, n)| {
        seen += n;
        seen >= rank
    });
    Ok(ToLicence { licensed, average_working_days: Some(sum as f64 / licensed as f64), p90_working_days: p90.map(|(d, _)| *d) })
}

pub async fn returns(db: &impl ConnectionTrait, s: &Scope, tz: chrono_tz::Tz) -> Result<Returns, DbErr> {
    let rows = folded(counted(db, s, tz, &[rollup::STATE, rollup::FIRST_TIME, rollup::RETURNED], false).await?);
    let (cases, returned) = (total(&rows, rollup::STATE), total(&rows, rollup::RETURNED));
    Ok(Returns { applications: cases + returned, returns: returned, first_time: total(&rows, rollup::FIRST_TIME), cases })
}

/// Opened, licensed and returned per week (from Monday) or month, in the office's zone: counted
/// per local day, the days folded into periods here.
pub async fn series(db: &impl ConnectionTrait, s: &Scope, period: Period, tz: chrono_tz::Tz) -> Result<Vec<Bucket>, DbErr> {
    let bucket = |day: i64| {
        let date = rollup::day_date(day);
        match period {
            Period::Week => date - Duration::days(i64::from(date.weekday().num_days_from_monday())),
            Period::Month => date.with_day(1).unwrap_or(date),
        }
    };
    let mut out: BTreeMap<NaiveDate, Bucket> = BTreeMap::new();
    for r in counted(db, s, tz, &[rollup::STATE, rollup::LICENSED, rollup::RETURNED], true).await? {
        let start = bucket(r.day);
        let b = out.entry(start).or_insert_with(|| Bucket { start, ..Bucket::default() });
        match r.metric.as_str() {
            rollup::STATE => b.opened += r.n,
            rollup::LICENSED => b.licensed += r.n,
            _ => b.returned += r.n,
        }
    }
    out.retain(|_, b| b.opened != 0 || b.licensed != 0 || b.returned != 0);
    Ok(out.into_values().collect())
}
