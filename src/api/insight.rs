//! Statistics and inboxes through GraphQL. `statistics` resolves each figure on demand, so a
//! dashboard asking for three figures runs three aggregates; scope comes from the caller
//! (a supervisor's region, a department's own staff) narrowed by the filter.

use async_graphql::{Context, Enum, ErrorExtensions, InputObject, Object, SimpleObject, ID};
use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::{sea_query::Query, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::access::{self, error, ErrorCode, Roles};
use crate::insight::{self, Period, Scope};
use crate::runtime::Engine;
use crate::store::entities::{instance, timer};
use crate::store::instances::{from_ms, timer_status};

use super::access::STAFF;
const READERS: Roles = Roles(&["window", "approver", "department_head", "supervisor", "regional_admin"]);

#[derive(InputObject)]
pub struct StatisticsFilter {
    /// A department of the caller's region (department staff: their own, implied).
    pub department: Option<String>,
    pub item_code: Option<String>,
    /// Cases opened from this instant (inclusive) …
    pub from: DateTime<Utc>,
    /// … up to this one (exclusive).
    pub to: DateTime<Utc>,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum SeriesPeriod {
    Week,
    Month,
}

#[derive(SimpleObject)]
pub struct ModeStateCount {
    pub mode: String,
    pub state: String,
    pub count: i64,
}

#[derive(SimpleObject)]
pub struct FulfilmentFigures {
    pub kept: i64,
    pub not_kept: i64,
    pub in_force: i64,
    /// Kept over settled; null before any settled.
    pub rate: Option<f64>,
}

#[derive(SimpleObject)]
pub struct RevocationCause {
    /// `expire` (deferred materials not in time), `revocation_decided` (supervision found the
    /// commitment broken), `revoke` (revoked by the approving department).
    pub cause: String,
    pub count: i64,
}

#[derive(SimpleObject)]
pub struct LicenceTimeFigures {
    pub licensed: i64,
    pub average_working_days: Option<f64>,
    pub p90_working_days: Option<i64>,
}

#[derive(SimpleObject)]
pub struct ReturnFigures {
    /// Cases opened plus applications returned.
    pub applications: i64,
    pub returns: i64,
    pub return_rate: Option<f64>,
    /// Cases opened with no earlier return of the same applicant and item, over cases opened.
    pub one_time_success_rate: Option<f64>,
}

#[derive(SimpleObject)]
pub struct SeriesBucket {
    /// The Monday of the week, or the first of the month.
    pub start: NaiveDate,
    pub opened: i64,
    pub licensed: i64,
    pub returned: i64,
}

pub struct Statistics(Scope);

fn db<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a sea_orm::DatabaseConnection> {
    Ok(&ctx.data::<Engine>()?.db)
}

/// The office's zone: what a day of the statistics is.
fn tz(ctx: &Context<'_>) -> async_graphql::Result<chrono_tz::Tz> {
    Ok(ctx.data::<Engine>()?.workflows.env.tz)
}

fn ratio(n: i64, d: i64) -> Option<f64> {
    (d > 0).then(|| n as f64 / d as f64)
}

#[Object]
impl Statistics {
    async fn cases_by_mode_and_state(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ModeStateCount>> {
        let rows = insight::by_mode_and_state(db(ctx)?, &self.0, tz(ctx)?).await.map_err(|e| e.internal())?;
        Ok(rows.into_iter().map(|r| ModeStateCount { mode: r.mode, state: r.state, count: r.count }).collect())
    }
    async fn fulfilment(&self, ctx: &Context<'_>) -> async_graphql::Result<FulfilmentFigures> {
        let rows = insight::by_mode_and_state(db(ctx)?, &self.0, tz(ctx)?).await.map_err(|e| e.internal())?;
        let f = insight::fulfilment(&rows);
        Ok(FulfilmentFigures { rate: f.rate(), kept: f.kept, not_kept: f.not_kept, in_force: f.in_force })
    }
    async fn deferrals(&self, ctx: &Context<'_>) -> async_graphql::Result<insight::Deferrals> {
        insight::deferrals(db(ctx)?, &self.0, tz(ctx)?).await.map_err(|e| e.internal())
    }
    async fn revocations(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<RevocationCause>> {
        let rows = insight::revocations(db(ctx)?, &self.0, tz(ctx)?).await.map_err(|e| e.internal())?;
        Ok(rows.into_iter().map(|c| RevocationCause { cause: c.event, count: c.count }).collect())
    }
    /// Ordinary cases whose legal limit passed before the decision (`legal_limit` breaches).
    async fn legal_limits_passed(&self, ctx: &Context<'_>) -> async_graphql::Result<i64> {
        insight::legal_limits_passed(db(ctx)?, &self.0).await.map_err(|e| e.internal())
    }
    async fn rectifications(&self, ctx: &Context<'_>) -> async_graphql::Result<insight::Rectifications> {
        insight::rectifications(db(ctx)?, &self.0, tz(ctx)?).await.map_err(|e| e.internal())
    }
    async fn divisions(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<insight::DivisionFigures>> {
        insight::divisions(db(ctx)?, &self.0, tz(ctx)?).await.map_err(|e| e.internal())
    }
    /// Working days from intake to licence.
    async fn intake_to_licence(&self, ctx: &Context<'_>) -> async_graphql::Result<LicenceTimeFigures> {
        let t = insight::to_licence(db(ctx)?, &self.0, tz(ctx)?).await.map_err(|e| e.internal())?;
        Ok(LicenceTimeFigures { licensed: t.licensed, average_working_days: t.average_working_days, p90_working_days: t.p90_working_days })
    }
    async fn returns(&self, ctx: &Context<'_>) -> async_graphql::Result<ReturnFigures> {
        let r = insight::returns(db(ctx)?, &self.0, tz(ctx)?).await.map_err(|e| e.internal())?;
        Ok(ReturnFigures {
            return_rate: ratio(r.returns, r.applications),
            one_time_success_rate: ratio(r.first_time, r.cases),
            applications: r.applications,
            returns: r.returns,
        })
    }
    async fn series(&self, ctx: &Context<'_>, period: SeriesPeriod) -> async_graphql::Result<Vec<SeriesBucket>> {
        let engine = ctx.data::<Engine>()?;
        let period = if period == SeriesPeriod::Week { Period::Week } else { Period::Month };
        let rows = insight::series(&engine.db, &self.0, period, engine.workflows.env.tz).await.map_err(|e| e.internal())?;
        Ok(rows.into_iter().map(|b| SeriesBucket { start: b.start, opened: b.opened, licensed: b.licensed, returned: b.returned }).collect())
    }
}

#[derive(SimpleObject)]
pub struct DueItem {
    pub instance_id: ID,
    pub definition_name: String,
    pub state: String,
    /// The limit's timer (`expiry`, `decision_limit`, `look_at_limit`, `rectification_limit`, …).
    pub timer: String,
    pub due_at: DateTime<Utc>,
    /// Working days after today up to the due day (0: due today; negative: passed that many
    /// working days ago), counted on the office's calendar; null beyond its years.
    pub working_days_left: Option<i32>,
    /// Counted over a provisional calendar year: the date may still move.
    pub provisional: bool,
}

#[derive(Default)]
pub struct InsightQuery;

#[Object]
impl InsightQuery {
    /// Figures over the cases opened in the filter's range, within the caller's scope.
    #[graphql(guard = "READERS")]
    async fn statistics(&self, ctx: &Context<'_>, filter: StatisticsFilter) -> async_graphql::Result<Statistics> {
        let engine = ctx.data::<Engine>()?;
        let claims = access::claims(ctx)?;
        if filter.from >= filter.to {
            return Err(error("BAD_USER_INPUT", "from must be before to").extend_with(|_, e| e.set("field", "filter")));
        }
        let regional = claims.has_role("supervisor") || claims.has_role("regional_admin");
        let departments = if regional {
            let mut list = access::region_departments(&engine.db, claims).await?;
            if let Some(d) = &filter.department {
                list.retain(|x| x == d);
            }
            list
        } else {
            let own = claims.department.clone().unwrap_or_default();
            if filter.department.as_ref().is_some_and(|d| *d != own) {
                return Err(error("FORBIDDEN", "department staff see their own department's figures"));
            }
            vec![own]
        };
        // An empty list would mean every department: nothing in scope matches nothing instead.
        let departments = if departments.is_empty() { vec![String::new()] } else { departments };
        Ok(Statistics(Scope { departments, item: filter.item_code, from: filter.from, to: filter.to }))
    }

    /// What falls due in the caller's scope by the end of the `workingDays`-th working day from
    /// today (0: today): the limits, not the reminders; soonest first.
    #[graphql(guard = "STAFF")]
    async fn due_soon(&self, ctx: &Context<'_>, #[graphql(default = 3)] working_days: i32, first: Option<i32>) -> async_graphql::Result<Vec<DueItem>> {
        let engine = ctx.data::<Engine>()?;
        let claims = access::claims(ctx)?;
        if !(0..=60).contains(&working_days) {
            return Err(error("BAD_USER_INPUT", "workingDays is between 0 and 60").extend_with(|_, e| e.set("field", "workingDays")));
        }
        let page = access::Page::from_args(first, None)?;
        let env = &engine.workflows.env;
        let now = engine.now();
        let today = now.with_timezone(&env.tz).date_naive();
        let last = if working_days == 0 { today } else { env.calendar.get().add_working_days(today, i64::from(working_days)).map_err(|e| error("BAD_USER_INPUT", e.to_string()))? };
        let until = crate::domain::calendar::local_instant(last + chrono::Duration::days(1), chrono::NaiveTime::MIN, env.tz).unwrap_or(now);
        // Each role's own inbox: the window and approvers their cases' limits, the division its
        // tasks'; supervisors everything in the region.
        let (task, case) = (instance::Column::DefinitionName.eq(crate::supervision::tasks::DEFINITION), instance::Column::DefinitionName.ne(crate::supervision::tasks::DEFINITION));
        let kinds = match (claims.has_role("supervisor") || claims.has_role("regional_admin"), claims.has_role("window") || claims.has_role("approver") || claims.has_role("department_head"), claims.has_role("division_admin") || claims.has_role("inspector")) {
            (true, _, _) | (false, true, true) => sea_orm::Condition::all(),
            (false, true, false) => sea_orm::Condition::all().add(case),
            (false, false, _) => sea_orm::Condition::all().add(task),
        };
        let visible = Query::select().column(instance::Column::Id).from(instance::Entity).cond_where(access::visible_instances(claims)).cond_where(kinds).to_owned();
        let timers = timer::Entity::find()
            .filter(timer::Column::Status.eq(timer_status::PENDING))
            .filter(timer::Column::DueAt.lt(until.timestamp_millis()))
            .filter(timer::Column::Name.not_like("%reminder%"))
            .filter(timer::Column::Name.ne("notice"))
            .filter(timer::Column::InstanceId.in_subquery(visible))
            .order_by_asc(timer::Column::DueAt)
            .limit(page.first)
            .all(&engine.db)
            .await
            .map_err(|e| e.internal())?;
        let ids: Vec<String> = timers.iter().map(|t| t.instance_id.clone()).collect();
        let instances: std::collections::HashMap<String, instance::Model> =
            instance::Entity::find().filter(instance::Column::Id.is_in(ids)).all(&engine.db).await.map_err(|e| e.internal())?.into_iter().map(|i| (i.id.clone(), i)).collect();
        let mut due = Vec::with_capacity(timers.len());
        for t in timers {
            let Some(i) = instances.get(&t.instance_id) else { continue };
            let due_at = from_ms(t.due_at);
            let working_days_left = super::types::working_days_left(engine, due_at);
            due.push(DueItem { instance_id: ID(t.instance_id.clone()), definition_name: i.definition_name.clone(), state: i.state.clone(), timer: t.name, due_at, working_days_left, provisional: t.provisional != 0 });
        }
        Ok(due)
    }
}


