//! The enterprise file (一企一档, seed 004 §13, seed 002 item 97): one enterprise's affairs in one
//! place — its registration, cases, licences, supervision tasks with their findings, credit
//! records and repairs, returns and bundles. For staff whose region is the enterprise's home
//! (the policy's `ReadApplicant`), and for the enterprise itself; each list holds only what the
//! caller may see (instances through `access::visible_instances`, so an applicant never sees a
//! task, a window officer only its department's cases). Each list is one query (two for a page of
//! cases: instances, then their case rows), whatever its length.

use async_graphql::connection::{Connection, EmptyFields, OpaqueCursor};
use async_graphql::{Context, Enum, ErrorExtensions, Object, SimpleObject, ID};
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use sea_orm::{ColumnTrait, EntityTrait, FromQueryResult, QueryFilter};

use super::access::{self, ConnectionTotal, ErrorCode, Page};
use super::policy::{self, Act};
use super::types::WorkflowInstance;
use super::window::{none_if_out_of_scope, Applicant, Case, CreditRecordView};
use crate::domain::definitions::SUPERVISION_TASK;
use crate::domain::ids;
use crate::runtime::Engine;
use crate::store::entities::instance::{Column, Entity};
use crate::store::{fetch, millis::from_ms};
use crate::window::intake;

type Paged<T> = Connection<OpaqueCursor<u64>, T, ConnectionTotal, EmptyFields>;

/// Definitions that are not cases of the enterprise: a bundle, a registration, a task, an item's
/// re-examination.
const NOT_CASES: [&str; 4] = [SUPERVISION_TASK, "bundle", "business-registration", "item-reexamination"];

#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum LicenceStanding {
    Valid,
    /// Past its term.
    Lapsed,
    Revoked,
    /// Ended with the business licence.
    Deregistered,
}

#[derive(SimpleObject, Debug, Clone)]
pub struct EnterpriseLicence {
    pub licence_number: String,
    pub case_id: ID,
    pub item_code: String,
    pub item_name: String,
    /// `deferral`, `verification`, `after_the_fact` or `ordinary`.
    pub mode: String,
    pub issued_at: DateTime<Utc>,
    /// Null for a licence without a term.
    pub valid_until: Option<NaiveDate>,
    pub standing: LicenceStanding,
}

#[derive(SimpleObject, Debug, Clone)]
pub struct EnterpriseReturn {
    pub id: ID,
    pub item_code: String,
    pub department: String,
    /// `applicant_materials`, `officer_error` or `item_misconfiguration`.
    pub category: String,
    pub reason: String,
    pub returned_at: DateTime<Utc>,
}

/// A supervision task of one of the enterprise's licences, with what the inspection found.
pub struct EnterpriseTask(crate::store::InstanceRecord);

#[Object]
impl EnterpriseTask {
    async fn instance(&self) -> WorkflowInstance {
        WorkflowInstance(self.0.clone())
    }
    async fn case_id(&self) -> Option<ID> {
        self.0.parent_id.clone().map(ID)
    }
    async fn state(&self) -> &str {
        &self.0.state
    }
    /// The findings recorded, one per promised condition (null before the inspection).
    async fn findings(&self) -> Option<async_graphql::Json<serde_json::Value>> {
        let f = &self.0.context["findings"];
        (!f.is_null()).then(|| async_graphql::Json(f.clone()))
    }
    /// The rectification order, when a condition was not kept.
    async fn rectification_order(&self) -> Option<String> {
        self.0.context["rectification_order"].as_str().map(str::to_string)
    }
}

/// One enterprise's file, as the caller may see it.
pub struct EnterpriseFile {
    applicant: crate::window::registry::Applicant,
}

fn engine<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a Engine> {
    ctx.data::<Engine>()
}

/// The caller's instances of the enterprise, of the definitions `keep` picks, newest first.
async fn instances(ctx: &Context<'_>, uscc: &str, keep: sea_orm::Condition, first: Option<i32>, after: Option<String>) -> async_graphql::Result<(Vec<crate::store::InstanceRecord>, u64, Page)> {
    let engine = engine(ctx)?;
    let claims = access::claims(ctx)?;
    let page = Page::from_args(first, after)?;
    let query = Entity::find().filter(access::visible_instances(claims)).filter(Column::ApplicantUscc.eq(uscc)).filter(keep);
    let (rows, total) = access::instance_page(&engine.db, query, &page).await?;
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    ctx.data::<super::loaders::Loaders>()?.prefetch(ctx, &ids).await.map_err(|e| e.internal())?;
    let records = rows.into_iter().map(TryInto::try_into).collect::<Result<Vec<crate::store::InstanceRecord>, crate::store::StoreError>>().map_err(|e| e.internal())?;
    Ok((records, total, page))
}

#[Object]
impl EnterpriseFile {
    async fn uscc(&self) -> &str {
        &self.applicant.uscc
    }
    async fn name(&self) -> &str {
        &self.applicant.name
    }
    /// The registration: name, legal representative, contact, credit tier.
    async fn registration(&self) -> Applicant {
        self.applicant.clone().into()
    }
    /// Its cases the caller may see, newest first, with their states and deadlines.
    async fn cases(&self, ctx: &Context<'_>, first: Option<i32>, after: Option<String>) -> async_graphql::Result<Paged<Case>> {
        let (records, total, page) = instances(ctx, &self.applicant.uscc, sea_orm::Condition::all().add(Column::DefinitionName.is_not_in(NOT_CASES)), first, after).await?;
        let ids: Vec<String> = records.iter().map(|r| r.id.clone()).collect();
        let mut rows: std::collections::HashMap<String, intake::CaseRow> =
            intake::case_rows(&engine(ctx)?.db, &ids).await.map_err(|e| e.internal())?.into_iter().map(|r| (r.instance_id.clone(), r)).collect();
        let cases = records.into_iter().filter_map(|i| rows.remove(&i.id).map(|row| Case::new(row, i))).collect();
        Ok(page.connection(cases, total))
    }
    /// The supervision tasks of its licences with their findings: staff of the supervising
    /// division and the region (an inspection is unannounced: never the enterprise's to see here).
    async fn supervision_tasks(&self, ctx: &Context<'_>, first: Option<i32>, after: Option<String>) -> async_graphql::Result<Paged<EnterpriseTask>> {
        let (records, total, page) = instances(ctx, &self.applicant.uscc, sea_orm::Condition::all().add(Column::DefinitionName.eq(SUPERVISION_TASK)), first, after).await?;
        Ok(page.connection(records.into_iter().map(EnterpriseTask).collect(), total))
    }
    /// Its bundled applications (一照通行) the caller may see.
    async fn bundles(&self, ctx: &Context<'_>, first: Option<i32>, after: Option<String>) -> async_graphql::Result<Paged<WorkflowInstance>> {
        let (records, total, page) = instances(ctx, &self.applicant.uscc, sea_orm::Condition::all().add(Column::DefinitionName.eq("bundle")), first, after).await?;
        Ok(page.connection(records.into_iter().map(WorkflowInstance).collect(), total))
    }
    /// Every licence issued to it, standing or not (licences are public: the whole list).
    async fn licences(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<EnterpriseLicence>> {
        let engine = engine(ctx)?;
        let tz = engine.workflows.env.tz;
        let today = engine.now().with_timezone(&tz).date_naive();
        licences(&engine.db, tz, today, &self.applicant.uscc).await.map_err(|e| e.internal())
    }
    /// Its credit records, repairs included, oldest first.
    async fn credit_records(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<CreditRecordView>> {
        let rows = crate::store::credit::records(&engine(ctx)?.db, &self.applicant.uscc).await.map_err(|e| e.internal())?;
        Ok(rows.into_iter().map(CreditRecordView::from).collect())
    }
    /// Applications returned to it (退件), newest first: by the caller's department, the region's
    /// departments for its supervisors, all of them for the enterprise itself.
    async fn returns(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<EnterpriseReturn>> {
        let engine = engine(ctx)?;
        let claims = access::claims(ctx)?;
        let departments = if claims.has_role("applicant") {
            None
        } else if claims.has_role("supervisor") || claims.has_role("regional_admin") {
            Some(access::region_departments(&engine.db, claims).await?)
        } else if claims.has_role("window") || claims.has_role("approver") || claims.has_role("department_head") {
            Some(vec![claims.department.clone().unwrap_or_default()])
        } else {
            return Ok(Vec::new());
        };
        returns(&engine.db, &self.applicant.uscc, departments.as_deref()).await.map_err(|e| e.internal())
    }
}

#[derive(FromQueryResult)]
struct LicenceRow {
    licence_number: String,
    instance_id: String,
    item_code: String,
    item_version: i64,
    mode: String,
    licensed_at: Option<i64>,
    created_at: i64,
    state: String,
}

async fn licences(db: &sea_orm::DatabaseConnection, tz: chrono_tz::Tz, today: NaiveDate, uscc: &str) -> Result<Vec<EnterpriseLicence>, sea_orm::DbErr> {
    let deregistered = crate::window::registry::is_deregistered(db, uscc).await?;
    let rows: Vec<LicenceRow> = fetch(
        db,
        "SELECT c.licence_number, c.instance_id, c.item_code, c.item_version, c.mode, c.licensed_at, c.created_at, i.state \
         FROM cases c JOIN workflow_instances i ON i.id = c.instance_id \
         WHERE c.applicant_uscc = ? AND c.licence_number IS NOT NULL ORDER BY c.licensed_at DESC, c.licence_number",
        vec![uscc.into()],
    )
    .await?;
    // The items' names and terms once each (an enterprise holds licences of a few items), not per licence.
    let mut codes: Vec<String> = rows.iter().map(|r| r.item_code.clone()).collect();
    codes.sort();
    codes.dedup();
    let items: std::collections::HashMap<(String, i64), crate::window::catalogue::Item> =
        crate::window::catalogue::versions_of(db, &codes).await?.into_iter().map(|i| ((i.code.clone(), i.version), i)).collect();
    Ok(rows
        .into_iter()
        .map(|r| {
            let issued_at = from_ms(r.licensed_at.unwrap_or(r.created_at));
            let from = issued_at.with_timezone(&tz).date_naive();
            let item = items.get(&(r.item_code.clone(), r.item_version));
            let item_name = item.map(|i| i.name.clone()).unwrap_or_default();
            let valid_until = item
                .and_then(|i| i.spec.licence_valid_years)
                .and_then(|y| from.with_year(from.year() + y as i32).or_else(|| from.checked_add_days(chrono::Days::new(365 * y as u64))))
                .and_then(|d| d.pred_opt());
            let standing = match r.state.as_str() {
                "revoked" => LicenceStanding::Revoked,
                "deregistered" => LicenceStanding::Deregistered,
                _ if deregistered => LicenceStanding::Deregistered,
                _ if valid_until.is_some_and(|u| u < today) => LicenceStanding::Lapsed,
                _ => LicenceStanding::Valid,
            };
            EnterpriseLicence { licence_number: r.licence_number, case_id: ID(r.instance_id), item_code: r.item_code, item_name, mode: r.mode, issued_at, valid_until, standing }
        })
        .collect())
}

#[derive(FromQueryResult)]
struct ReturnRow {
    id: String,
    item_code: String,
    department: String,
    category: String,
    reason: String,
    created_at: i64,
}

async fn returns(db: &sea_orm::DatabaseConnection, uscc: &str, departments: Option<&[String]>) -> Result<Vec<EnterpriseReturn>, sea_orm::DbErr> {
    let mut sql = String::from("SELECT id, item_code, department, category, reason, created_at FROM returns WHERE applicant_uscc = ?");
    let mut values: Vec<sea_orm::Value> = vec![uscc.into()];
    if let Some(list) = departments {
        sql.push_str(&format!(" AND department IN ({})", vec!["?"; list.len().max(1)].join(", ")));
        values.extend(list.iter().map(|d| d.clone().into()));
        if list.is_empty() {
            values.push(String::new().into());
        }
    }
    sql.push_str(" ORDER BY created_at DESC, id DESC");
    let rows: Vec<ReturnRow> = fetch(db, &sql, values).await?;
    Ok(rows
        .into_iter()
        .map(|r| EnterpriseReturn { id: ID(r.id), item_code: r.item_code, department: r.department, category: r.category, reason: r.reason, returned_at: from_ms(r.created_at) })
        .collect())
}

#[derive(Default)]
pub struct EnterpriseQuery;

#[Object]
impl EnterpriseQuery {
    /// 一企一档: an enterprise's file by its unified social credit code — staff of its home
    /// region, or the enterprise itself; null otherwise. Each list shows what the caller may see.
    #[graphql(guard = "access::ANYONE")]
    async fn enterprise(&self, ctx: &Context<'_>, uscc: String) -> async_graphql::Result<Option<EnterpriseFile>> {
        let engine = engine(ctx)?;
        let claims = access::claims(ctx)?;
        let uscc = ids::uscc(&uscc).map_err(|e| access::error("BAD_USER_INPUT", e.to_string()).extend_with(|_, x| x.set("field", "uscc")))?;
        let found = none_if_out_of_scope(policy::applicant(&engine.db, claims, Act::ReadApplicant, &uscc).await)?;
        Ok(found.map(|a| EnterpriseFile { applicant: a.into_inner() }))
    }
}
