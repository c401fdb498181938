//! Supervisors' figures as running counts (`statistics_rollup`), moved in the transaction of
//! whatever changes them — a case opened, a transition, a licence, a return — so that a
//! statistics query over a million cases reads a few thousand rows. `rebuild` recounts them
//! from the cases, events and tasks themselves: the rows a database had before the rollup
//! existed, and the oracle the incremental counts are tested against.
//!
//! A row is (department, local day, item, mode, metric, key) → n. The day is the office-zone
//! day of intake, except for `licensed` (the licence's day) and `returned` (the return's).

use chrono::{DateTime, NaiveDate, Offset, Utc};
use sea_orm::{ConnectionTrait, DbErr, FromQueryResult};

use super::{count, fetch, stmt};
use crate::domain::definitions::SUPERVISION_TASK as TASK;

/// Current state of each case (`key`: the state).
pub const STATE: &str = "state";
/// A deferral's outcome (`key`: on_time, late, never, pending).
pub const DEFERRAL: &str = "deferral";
/// A revocation (`key`: the revoking event).
pub const REVOKED: &str = "revoked";
/// Working days from intake to licence (`key`: the number).
pub const LICENCE_DAYS: &str = "licence_days";
/// A licence issued, on the licence's day.
pub const LICENSED: &str = "licensed";
/// A case opened with no earlier return of the same applicant and item.
pub const FIRST_TIME: &str = "first_time";
/// An application returned, on the return's day (mode empty).
pub const RETURNED: &str = "returned";
/// Supervision tasks of the case (`key`: the division, for all five task figures).
pub const TASK_COUNT: &str = "task";
pub const LOOKED_AT_IN_TIME: &str = "looked_at_in_time";
pub const LOOK_AT_BREACH: &str = "look_at_breach";
pub const FED_BACK_IN_TIME: &str = "fed_back_in_time";
pub const FEEDBACK_BREACH: &str = "feedback_breach";
/// Rectification orders, successes and failures (events on the case's tasks).
pub const RECT_ORDERED: &str = "rect_ordered";
pub const RECT_SUCCEEDED: &str = "rect_succeeded";
pub const RECT_FAILED: &str = "rect_failed";

const SUPPLIED_OR_EXPIRED: &str = "'materials_complete', 'expire'";
/// Ends that leave a deferral neither supplied nor expired: no longer pending, counted nowhere.
const ENDED_UNSETTLED: [&str; 4] = ["withdrawn", "refused", "deregistered", "returned"];
const SETTING: &str = "statistics_rollup_zone";

/// The local day number (days since 1970-01-01 in the office's zone) of an instant in ms.
pub fn local_day(ms: i64, tz: chrono_tz::Tz) -> i64 {
    let date = super::millis::from_ms(ms).with_timezone(&tz).date_naive();
    (date - NaiveDate::default()).num_days()
}

/// The date of a local day number.
pub fn day_date(day: i64) -> NaiveDate {
    NaiveDate::default() + chrono::Duration::days(day)
}

/// What a figure is counted against.
#[derive(Debug, Clone, FromQueryResult)]
pub struct CaseDims {
    pub instance_id: String,
    pub department: String,
    pub item_code: String,
    pub mode: String,
    pub created_at: i64,
}

impl CaseDims {
    pub async fn of(db: &impl ConnectionTrait, instance_id: &str) -> Result<Option<Self>, DbErr> {
        Ok(fetch(db, "SELECT instance_id, department, item_code, mode, created_at FROM cases WHERE instance_id = ?", vec![instance_id.into()]).await?.into_iter().next())
    }
}

/// Changes to apply, each (metric, key, day, ±n) against one case's dimensions.
struct Deltas<'a> {
    dims: &'a CaseDims,
    tz: chrono_tz::Tz,
    rows: Vec<(&'static str, String, i64, i64)>,
}

impl<'a> Deltas<'a> {
    fn new(dims: &'a CaseDims, tz: chrono_tz::Tz) -> Self {
        Deltas { dims, tz, rows: Vec::new() }
    }

    fn add(&mut self, metric: &'static str, key: impl Into<String>, n: i64) {
        let day = local_day(self.dims.created_at, self.tz);
        self.rows.push((metric, key.into(), day, n));
    }

    fn add_on(&mut self, metric: &'static str, at_ms: i64, n: i64) {
        let day = local_day(at_ms, self.tz);
        self.rows.push((metric, String::new(), day, n));
    }

    /// Inserted, never updated: concurrent transactions moving the same figure take no lock on
    /// a shared row; `fold` adds them into `statistics_rollup` later.
    async fn write(self, db: &impl ConnectionTrait) -> Result<(), DbErr> {
        let rows: Vec<_> = self.rows.into_iter().filter(|r| r.3 != 0).collect();
        if rows.is_empty() {
            return Ok(());
        }
        let mut values: Vec<sea_orm::Value> = Vec::with_capacity(rows.len() * 7);
        for (metric, key, day, n) in &rows {
            let mode = if *metric == RETURNED { "" } else { self.dims.mode.as_str() };
            values.extend([
                self.dims.department.clone().into(),
                (*day).into(),
                self.dims.item_code.clone().into(),
                mode.into(),
                (*metric).into(),
                key.clone().into(),
                (*n).into(),
            ]);
        }
        let marks = vec!["(?, ?, ?, ?, ?, ?, ?)"; rows.len()].join(", ");
        db.execute_raw(stmt(db, &format!("INSERT INTO {DELTAS} (department, day, item_code, mode, metric, key, n) VALUES {marks}"), values)).await?;
        Ok(())
    }
}

/// The rollup's unfolded changes.
const DELTAS: &str = "statistics_rollup_deltas";
/// Every row of the rollup as it stands: the folded counts and the tail not yet folded.
const ROLLUP: &str = "(SELECT department, day, item_code, mode, metric, key, n FROM statistics_rollup \
                       UNION ALL SELECT department, day, item_code, mode, metric, key, n FROM statistics_rollup_deltas) r";

/// Adds the unfolded changes into `statistics_rollup` and removes them, atomically: a reader
/// sees them on one side or the other, never both or neither. Returns the changes folded.
pub async fn fold(db: &sea_orm::DatabaseConnection) -> Result<u64, DbErr> {
    // Most sweeps find nothing: a read, not SQLite's write lock, says so.
    if super::count(db, &format!("SELECT COUNT(*) AS n FROM (SELECT 1 FROM {DELTAS} LIMIT 1) t"), vec![]).await? == 0 {
        return Ok(0);
    }
    let txn = super::begin_write(db).await?;
    let upsert = "ON CONFLICT (department, day, item_code, mode, metric, key) DO UPDATE SET n = statistics_rollup.n + excluded.n";
    let folded = if db.get_database_backend() == sea_orm::DbBackend::Postgres {
        // One folder at a time across processes; a busy one is not waited for.
        let mine = super::count(&txn, "SELECT CAST(CASE WHEN pg_try_advisory_xact_lock(7210221) THEN 1 ELSE 0 END AS BIGINT) AS n", vec![]).await? == 1;
        if !mine {
            txn.rollback().await?;
            return Ok(0);
        }
        // One statement, one snapshot: exactly the rows deleted are added, whatever commits meanwhile.
        let moved = super::count(
            &txn,
            &format!(
                "WITH moved AS (DELETE FROM {DELTAS} RETURNING department, day, item_code, mode, metric, key, n), \
                 added AS (INSERT INTO statistics_rollup (department, day, item_code, mode, metric, key, n) \
                           SELECT department, day, item_code, mode, metric, key, SUM(n) FROM moved GROUP BY department, day, item_code, mode, metric, key {upsert} RETURNING 1) \
                 SELECT COUNT(*) AS n FROM moved"
            ),
            vec![],
        )
        .await?;
        moved as u64
    } else {
        // SQLite's write transaction excludes every other writer: the two statements see one set.
        let n = super::count(&txn, &format!("SELECT COUNT(*) AS n FROM {DELTAS}"), vec![]).await?;
        if n > 0 {
            txn.execute_unprepared(&format!(
                "INSERT INTO statistics_rollup (department, day, item_code, mode, metric, key, n) \
                 SELECT department, day, item_code, mode, metric, key, SUM(n) FROM {DELTAS} WHERE true GROUP BY department, day, item_code, mode, metric, key {upsert}"
            ))
            .await?;
            txn.execute_unprepared(&format!("DELETE FROM {DELTAS}")).await?;
        }
        n as u64
    };
    txn.commit().await?;
    Ok(folded)
}

/// Events of `instance_id` before `seq` named in `events` (a quoted, comma-separated list).
async fn earlier(db: &impl ConnectionTrait, instance_id: &str, seq: i64, events: &str) -> Result<bool, DbErr> {
    let sql = format!("SELECT COUNT(*) AS n FROM workflow_events WHERE instance_id = ? AND seq < ? AND event IN ({events})");
    Ok(count(db, &sql, vec![instance_id.into(), seq.into()]).await? > 0)
}

/// The events that end a procedure before a revocation: the cause is the event that opened it.
const DECIDING: &str = "'decide_revoke', 'response_lapsed'";
/// The events that open it (or, on versions without it, revoke at once): the causes.
const CAUSES: &str = "'expire', 'revocation_decided', 'revoke'";

/// Why a case entering `revoked` by `event` (its `seq`) was revoked: a deadline run out
/// (`expire`), a failed re-inspection (`revocation_decided`) or the department (`revoke`) —
/// for a decision at the end of the procedure, the event that opened it.
async fn cause(db: &impl ConnectionTrait, instance_id: &str, seq: i64, event: &str) -> Result<String, DbErr> {
    if !DECIDING.contains(&format!("'{event}'")) {
        return Ok(event.to_string());
    }
    let sql = format!("SELECT event FROM workflow_events WHERE instance_id = ? AND seq < ? AND event IN ({CAUSES}) ORDER BY seq DESC LIMIT 1");
    let row = db.query_one_raw(stmt(db, &sql, vec![instance_id.into(), seq.into()])).await?;
    Ok(row.and_then(|r| r.try_get::<String>("", "event").ok()).unwrap_or_else(|| event.to_string()))
}

async fn breached(db: &impl ConnectionTrait, task_id: &str, limit: &str) -> Result<bool, DbErr> {
    let sql = "SELECT COUNT(*) AS n FROM sla_breaches WHERE instance_id = ? AND limit_kind = ?";
    Ok(count(db, sql, vec![task_id.into(), limit.into()]).await? > 0)
}

/// A case just written to `cases` (in state `state`).
pub async fn case_opened(db: &impl ConnectionTrait, tz: chrono_tz::Tz, instance_id: &str, applicant_uscc: &str, state: &str) -> Result<(), DbErr> {
    let Some(dims) = CaseDims::of(db, instance_id).await? else { return Ok(()) };
    let mut d = Deltas::new(&dims, tz);
    d.add(STATE, state, 1);
    if dims.mode == "deferral" {
        d.add(DEFERRAL, "pending", 1);
    }
    let returned_before = count(
        db,
        "SELECT COUNT(*) AS n FROM returns WHERE item_code = ? AND applicant_uscc = ? AND created_at < ?",
        vec![dims.item_code.clone().into(), applicant_uscc.into(), dims.created_at.into()],
    )
    .await?;
    if returned_before == 0 {
        d.add(FIRST_TIME, "", 1);
    }
    d.write(db).await
}

/// A licence issued at `at` for the case, `working_days` after intake.
pub async fn licensed(db: &impl ConnectionTrait, tz: chrono_tz::Tz, instance_id: &str, working_days: Option<i64>, at: DateTime<Utc>) -> Result<(), DbErr> {
    let Some(dims) = CaseDims::of(db, instance_id).await? else { return Ok(()) };
    let mut d = Deltas::new(&dims, tz);
    if let Some(days) = working_days {
        d.add(LICENCE_DAYS, days.to_string(), 1);
    }
    d.add_on(LICENSED, at.timestamp_millis(), 1);
    d.write(db).await
}

/// An application returned at `at` for an item of a department.
pub async fn returned(db: &impl ConnectionTrait, tz: chrono_tz::Tz, department: &str, item_code: &str, at: DateTime<Utc>) -> Result<(), DbErr> {
    let dims = CaseDims { instance_id: String::new(), department: department.into(), item_code: item_code.into(), mode: String::new(), created_at: at.timestamp_millis() };
    let mut d = Deltas::new(&dims, tz);
    d.add_on(RETURNED, at.timestamp_millis(), 1);
    d.write(db).await
}

/// A supervision task started under a case.
pub async fn task_started(db: &impl ConnectionTrait, tz: chrono_tz::Tz, case_instance: &str, division: Option<&str>) -> Result<(), DbErr> {
    let Some(dims) = CaseDims::of(db, case_instance).await? else { return Ok(()) };
    let mut d = Deltas::new(&dims, tz);
    d.add(TASK_COUNT, division.unwrap_or_default(), 1);
    d.write(db).await
}

const TRACKED_TASK_EVENTS: [&str; 6] = ["accept", "kept", "not_kept", "rectified", "still_failing", "rectification_expired"];

fn settles_deferral(event: &str, from: &str, to: &str) -> bool {
    matches!(event, "materials_complete" | "expire") || (from != to && ENDED_UNSETTLED.contains(&to))
}

/// Whether a transition moves any running count: the timer sweep fires the ones that move
/// none several to a transaction (they lock no row shared with other instances).
pub fn moves(definition: &str, (event, from, to): (&str, &str, &str), breaches: &[&str]) -> bool {
    if definition == TASK {
        TRACKED_TASK_EVENTS.contains(&event) || !breaches.is_empty()
    } else {
        from != to || settles_deferral(event, from, to)
    }
}

/// What a transition of instance `id` (a case, or a task whose parent is `parent`) changes:
/// called in the transition's transaction, after its event `seq` is written and before its
/// SLA breach rows are.
#[allow(clippy::too_many_arguments)]
pub async fn transition(
    db: &impl ConnectionTrait,
    tz: chrono_tz::Tz,
    definition: &str,
    id: &str,
    parent: Option<&str>,
    division: Option<&str>,
    seq: i64,
    (event, from, to): (&str, &str, &str),
    breaches: &[&str],
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    if !moves(definition, (event, from, to), breaches) {
        return Ok(());
    }
    if definition == TASK {
        let Some(case) = parent else { return Ok(()) };
        let Some(dims) = CaseDims::of(db, case).await? else { return Ok(()) };
        let division = division.unwrap_or_default().to_string();
        let mut d = Deltas::new(&dims, tz);
        match event {
            "accept" if !earlier(db, id, seq, "'accept'").await? && !breached(db, id, "look_at").await? => d.add(LOOKED_AT_IN_TIME, division.clone(), 1),
            "kept" | "not_kept" if !earlier(db, id, seq, "'kept', 'not_kept'").await? && !breached(db, id, "feedback").await? => {
                d.add(FED_BACK_IN_TIME, division.clone(), 1)
            }
            _ => {}
        }
        match event {
            "not_kept" => d.add(RECT_ORDERED, "", 1),
            "rectified" => d.add(RECT_SUCCEEDED, "", 1),
            "still_failing" | "rectification_expired" => d.add(RECT_FAILED, "", 1),
            _ => {}
        }
        for limit in breaches {
            let metric = match *limit {
                "look_at" => LOOK_AT_BREACH,
                "feedback" => FEEDBACK_BREACH,
                _ => continue,
            };
            if !breached(db, id, limit).await? {
                d.add(metric, division.clone(), 1);
            }
        }
        return d.write(db).await;
    }
    let settles_deferral = settles_deferral(event, from, to);
    let Some(dims) = CaseDims::of(db, id).await? else { return Ok(()) };
    let mut d = Deltas::new(&dims, tz);
    if from != to {
        d.add(STATE, from, -1);
        d.add(STATE, to, 1);
        if to == "revoked" {
            d.add(REVOKED, cause(db, id, seq, event).await?, 1);
        }
    }
    if dims.mode == "deferral" && settles_deferral && !earlier(db, id, seq, SUPPLIED_OR_EXPIRED).await? {
        d.add(DEFERRAL, "pending", -1);
        match event {
            "materials_complete" => {
                let due = count(db, "SELECT COALESCE(MAX(due_at), 0) AS n FROM case_materials WHERE instance_id = ?", vec![id.into()]).await?;
                let late = due > 0 && now.timestamp_millis() > due;
                d.add(DEFERRAL, if late { "late" } else { "on_time" }, 1);
            }
            "expire" => d.add(DEFERRAL, "never", 1),
            _ => {}
        }
    }
    d.write(db).await
}

/// One kind of fact behind the rollup: a query yielding (department, day, item_code, mode,
/// metric, key) per counted thing, and the table alias and instant column its range is on.
pub struct Fact {
    pub metrics: &'static [&'static str],
    /// Ends in a WHERE clause, so that a range can be appended with AND.
    pub sql: String,
    pub alias: &'static str,
    pub column: &'static str,
}

/// The day number of `column` in SQL at the zone's current offset (exact for zones without
/// daylight saving, China's among them).
pub fn day_sql(column: &str, tz: chrono_tz::Tz) -> String {
    let offset = i64::from(Utc::now().with_timezone(&tz).offset().fix().local_minus_utc()) * 1000;
    format!("({column} + {offset}) / 86400000")
}

/// Every fact, counted from the cases, events, tasks and returns themselves: what `rebuild`
/// writes and what a statistics query counts directly over the part-days at its range's ends.
pub fn facts(tz: chrono_tz::Tz) -> Vec<Fact> {
    let intake = day_sql("c.created_at", tz);
    let of_case = |metric: &str, key: &str| format!("SELECT c.department, {intake} AS day, c.item_code, c.mode, '{metric}' AS metric, {key} AS key");
    let supplied = "EXISTS (SELECT 1 FROM workflow_events e WHERE e.instance_id = c.instance_id AND e.event = 'materials_complete')";
    let late = "EXISTS (SELECT 1 FROM workflow_events e WHERE e.instance_id = c.instance_id AND e.event = 'materials_complete' \
                AND e.occurred_at > (SELECT MAX(m.due_at) FROM case_materials m WHERE m.instance_id = c.instance_id))";
    let expired = "EXISTS (SELECT 1 FROM workflow_events e WHERE e.instance_id = c.instance_id AND e.event = 'expire')";
    let task_event = |names: &str| format!("EXISTS (SELECT 1 FROM workflow_events e WHERE e.instance_id = t.id AND e.event IN ({names}))");
    let breach = |limit: &str| format!("EXISTS (SELECT 1 FROM sla_breaches b WHERE b.instance_id = t.id AND b.limit_kind = '{limit}')");
    let tasks = format!("FROM cases c JOIN workflow_instances t ON t.parent_id = c.instance_id AND t.definition_name = '{TASK}'");
    let division = "COALESCE(t.division, '')";
    let on_case = |metrics: &'static [&'static str], sql: String| Fact { metrics, sql, alias: "c", column: "created_at" };
    vec![
        on_case(&[STATE], format!("{} FROM cases c JOIN workflow_instances i ON i.id = c.instance_id WHERE 1 = 1", of_case(STATE, "i.state"))),
        on_case(
            &[DEFERRAL],
            format!(
                "{} FROM cases c JOIN workflow_instances i ON i.id = c.instance_id WHERE c.mode = 'deferral' \
                 AND NOT (i.state IN ('withdrawn', 'refused', 'deregistered', 'returned') AND NOT {supplied} AND NOT {expired})",
                of_case(DEFERRAL, &format!("CASE WHEN {late} THEN 'late' WHEN {supplied} THEN 'on_time' WHEN {expired} THEN 'never' ELSE 'pending' END"))
            ),
        ),
        on_case(
            &[REVOKED],
            format!(
                "{} FROM cases c JOIN workflow_events e ON e.instance_id = c.instance_id WHERE e.to_state = 'revoked' AND e.from_state <> 'revoked'",
                of_case(
                    REVOKED,
                    &format!(
                        "CASE WHEN e.event IN ({DECIDING}) THEN COALESCE((SELECT o.event FROM workflow_events o WHERE o.instance_id = e.instance_id AND o.seq < e.seq \
                         AND o.event IN ({CAUSES}) ORDER BY o.seq DESC LIMIT 1), e.event) ELSE e.event END"
                    )
                )
            ),
        ),
        on_case(&[LICENCE_DAYS], format!("{} FROM cases c WHERE c.licence_working_days IS NOT NULL", of_case(LICENCE_DAYS, "CAST(c.licence_working_days AS TEXT)"))),
        Fact {
            metrics: &[LICENSED],
            sql: format!("SELECT c.department, {} AS day, c.item_code, c.mode, '{LICENSED}' AS metric, '' AS key FROM cases c WHERE c.licensed_at IS NOT NULL", day_sql("c.licensed_at", tz)),
            alias: "c",
            column: "licensed_at",
        },
        on_case(
            &[FIRST_TIME],
            format!(
                "{} FROM cases c WHERE NOT EXISTS (SELECT 1 FROM returns r WHERE r.item_code = c.item_code AND r.applicant_uscc = c.applicant_uscc AND r.created_at < c.created_at)",
                of_case(FIRST_TIME, "''")
            ),
        ),
        Fact {
            metrics: &[RETURNED],
            sql: format!("SELECT r.department, {} AS day, r.item_code, '' AS mode, '{RETURNED}' AS metric, '' AS key FROM returns r WHERE 1 = 1", day_sql("r.created_at", tz)),
            alias: "r",
            column: "created_at",
        },
        on_case(&[TASK_COUNT], format!("{} {tasks} WHERE 1 = 1", of_case(TASK_COUNT, division))),
        on_case(&[LOOKED_AT_IN_TIME], format!("{} {tasks} WHERE {} AND NOT {}", of_case(LOOKED_AT_IN_TIME, division), task_event("'accept'"), breach("look_at"))),
        on_case(&[LOOK_AT_BREACH], format!("{} {tasks} WHERE {}", of_case(LOOK_AT_BREACH, division), breach("look_at"))),
        on_case(&[FED_BACK_IN_TIME], format!("{} {tasks} WHERE {} AND NOT {}", of_case(FED_BACK_IN_TIME, division), task_event("'kept', 'not_kept'"), breach("feedback"))),
        on_case(&[FEEDBACK_BREACH], format!("{} {tasks} WHERE {}", of_case(FEEDBACK_BREACH, division), breach("feedback"))),
        on_case(
            &[RECT_ORDERED, RECT_SUCCEEDED, RECT_FAILED],
            format!(
                "SELECT c.department, {intake} AS day, c.item_code, c.mode, \
                        CASE e.event WHEN 'not_kept' THEN '{RECT_ORDERED}' WHEN 'rectified' THEN '{RECT_SUCCEEDED}' ELSE '{RECT_FAILED}' END AS metric, '' AS key \
                 {tasks} JOIN workflow_events e ON e.instance_id = t.id WHERE e.event IN ('not_kept', 'rectified', 'still_failing', 'rectification_expired')"
            ),
        ),
    ]
}

/// Recounts every row from the source tables.
pub async fn rebuild(db: &impl ConnectionTrait, tz: chrono_tz::Tz) -> Result<(), DbErr> {
    db.execute_unprepared("DELETE FROM statistics_rollup").await?;
    db.execute_unprepared(&format!("DELETE FROM {DELTAS}")).await?;
    for fact in facts(tz) {
        db.execute_unprepared(&format!(
            "INSERT INTO statistics_rollup (department, day, item_code, mode, metric, key, n) \
             SELECT department, day, item_code, mode, metric, key, COUNT(*) FROM ({}) f GROUP BY department, day, item_code, mode, metric, key",
            fact.sql
        ))
        .await?;
    }
    Ok(())
}

/// Fills the rollup once per database and zone: on the first start after the migration that
/// made it (counting what was there before), and again if the office's zone is changed.
pub async fn ensure(db: &sea_orm::DatabaseConnection, tz: chrono_tz::Tz) -> Result<bool, DbErr> {
    let txn = super::begin_write(db).await?;
    #[derive(FromQueryResult)]
    struct Setting {
        value: String,
    }
    let current: Option<Setting> = fetch(&txn, "SELECT value FROM settings WHERE key = ?", vec![SETTING.into()]).await?.into_iter().next();
    if current.is_some_and(|s| s.value == tz.name()) {
        txn.rollback().await?;
        return Ok(false);
    }
    // The upsert first: a second process starting at the same moment waits here, then recounts
    // after this one's commit instead of beside it.
    txn.execute_raw(stmt(
        &txn,
        "INSERT INTO settings (key, value, created_at) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        vec![SETTING.into(), tz.name().into(), Utc::now().timestamp_millis().into()],
    ))
    .await?;
    rebuild(&txn, tz).await?;
    txn.commit().await?;
    Ok(true)
}

/// What a summed row is keyed by: (mode, metric, key) over the whole range, or (day, metric)
/// for a series — the select list and the GROUP BY.
pub fn grouping(by_day: bool) -> (&'static str, &'static str) {
    if by_day {
        ("day, '' AS mode, metric, '' AS key", "day, metric")
    } else {
        ("CAST(0 AS BIGINT) AS day, mode, metric, key", "mode, metric, key")
    }
}

/// One summed row of the rollup.
#[derive(Debug, Clone, FromQueryResult)]
pub struct Sum {
    pub day: i64,
    pub mode: String,
    pub metric: String,
    pub key: String,
    pub n: i64,
}

/// The rows of `metrics` over local days `[from_day, to_day)` for these departments (none:
/// all) and item, summed by mode, metric and key — or by day and metric when `by_day`.
pub async fn sums(
    db: &impl ConnectionTrait,
    departments: &[String],
    item: Option<&str>,
    (from_day, to_day): (i64, i64),
    metrics: &[&str],
    by_day: bool,
) -> Result<Vec<Sum>, DbErr> {
    let mut sql = String::from("WHERE day >= ? AND day < ?");
    let mut values: Vec<sea_orm::Value> = vec![from_day.into(), to_day.into()];
    if !departments.is_empty() {
        sql.push_str(&format!(" AND department IN ({})", vec!["?"; departments.len()].join(", ")));
        values.extend(departments.iter().map(|d| d.clone().into()));
    }
    if let Some(item) = item {
        sql.push_str(" AND item_code = ?");
        values.push(item.into());
    }
    sql.push_str(&format!(" AND metric IN ({})", vec!["?"; metrics.len()].join(", ")));
    values.extend(metrics.iter().map(|m| (*m).into()));
    let (select, group) = grouping(by_day);
    fetch(db, &format!("SELECT {select}, CAST(SUM(n) AS BIGINT) AS n FROM {ROLLUP} {sql} GROUP BY {group}"), values).await
}

/// Every row, for comparing the running counts with a rebuild.
pub async fn snapshot(db: &impl ConnectionTrait) -> Result<Vec<(String, i64, String, String, String, String, i64)>, DbErr> {
    #[derive(FromQueryResult)]
    struct Row {
        department: String,
        day: i64,
        item_code: String,
        mode: String,
        metric: String,
        key: String,
        n: i64,
    }
    let rows: Vec<Row> = fetch(
        db,
        &format!(
            "SELECT department, day, item_code, mode, metric, key, CAST(SUM(n) AS BIGINT) AS n FROM {ROLLUP} \
             GROUP BY department, day, item_code, mode, metric, key HAVING SUM(n) <> 0 ORDER BY department, day, item_code, mode, metric, key"
        ),
        vec![],
    )
    .await?;
    Ok(rows.into_iter().map(|r| (r.department, r.day, r.item_code, r.mode, r.metric, r.key, r.n)).collect())
}
