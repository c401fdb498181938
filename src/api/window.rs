//! The window's GraphQL: the catalogue and organisation (regional admin), applicants and
//! credit imports, opening and carrying cases (window officers, approvers).

use async_graphql::{Context, ErrorExtensions, Guard, InputObject, Object, SimpleObject, ID};
use chrono::NaiveDate;
use sea_orm::{ConnectionTrait, FromQueryResult};

use super::access::{self, error, ErrorCode, Roles, APPROVER, WINDOW};
use super::policy::{self, Act};
use super::events::store_error;
use super::types::WorkflowInstance;
use crate::domain::ids;
use crate::runtime::Engine;
use crate::store::{instances, stmt};
use crate::window::catalogue::{self, ItemSpec};
use crate::window::intake::{self, OpenCaseInput, ReturnCategory, WindowError};
use crate::window::registry::{self, Applicant as ApplicantRow, ElectronicLicence};

const ADMIN: Roles = Roles(&["regional_admin"]);
pub(super) const WINDOW_OR_APPROVER: Roles = Roles(&["window", "approver"]);
use super::access::STAFF;

pub(super) fn window_error(e: WindowError) -> async_graphql::Error {
    match e {
        WindowError::BadInput { field, message } => error("BAD_USER_INPUT", message).extend_with(|_, x| x.set("field", field)),
        WindowError::NotFound(m) => error("NOT_FOUND", m),
        WindowError::Forbidden(m) => error("FORBIDDEN", m),
        WindowError::Invalid(m) => error("INVALID_TRANSITION", m),
        WindowError::Refused { code, reason, field, message } => {
            let e = access::refusal(code, reason, message);
            match field {
                Some(f) => e.extend_with(move |_, x| x.set("field", f)),
                None => e,
            }
        }
        WindowError::Store(s) => store_error(s),
    }
}

fn bad(field: &'static str, message: impl Into<String>) -> async_graphql::Error {
    error("BAD_USER_INPUT", message.into()).extend_with(move |_, x| x.set("field", field))
}

#[derive(SimpleObject)]
pub struct Applicant {
    pub uscc: String,
    pub name: String,
    pub legal_representative: String,
    pub email: Option<String>,
    pub mobile: Option<String>,
    pub credit_tier: String,
    pub dishonest: bool,
}

impl From<ApplicantRow> for Applicant {
    fn from(a: ApplicantRow) -> Self {
        Self {
            uscc: a.uscc,
            name: a.name,
            legal_representative: a.legal_representative,
            email: a.email,
            mobile: a.mobile,
            credit_tier: a.credit_tier,
            dishonest: a.dishonest != 0,
        }
    }
}

#[derive(SimpleObject, FromQueryResult)]
pub struct CaseMaterial {
    pub code: String,
    pub name: String,
    /// provided, deferred, received, verified, to_supply.
    pub status: String,
    pub file_ref: Option<String>,
    pub received_by: Option<String>,
    /// The electronic licence checked and the verdict, as JSON text.
    pub verification: Option<String>,
}

/// What an applicant may know of an inspection once its result has been fed back.
#[derive(SimpleObject)]
pub struct InspectionOutcome {
    /// closed_kept, rectifying or revocation_recommended.
    pub state: String,
    /// kept or not_kept, as the inspection found.
    pub result: Option<String>,
    pub inspected_on: Option<String>,
    /// The promised conditions found not kept.
    pub conditions_not_kept: Vec<String>,
    /// The rectification order and its deadline, when one was given.
    pub rectification_order: Option<String>,
    pub rectification_due: Option<String>,
    pub decided_at: chrono::DateTime<chrono::Utc>,
}

impl InspectionOutcome {
    /// A task's states once its result is fed back.
    const AFTER_THE_VISIT: [&'static str; 3] = ["closed_kept", "rectifying", "revocation_recommended"];

    fn of(task: &crate::store::InstanceRecord) -> Self {
        let c = &task.context;
        let text = |v: &serde_json::Value| v.as_str().map(str::to_string);
        let latest = if c["reinspection"].is_object() { &c["reinspection"] } else { &c["inspection"] };
        Self {
            state: task.state.clone(),
            result: text(&latest["result"]),
            inspected_on: text(&latest["inspected_on"]),
            conditions_not_kept: latest["findings"]
                .as_array()
                .map(|f| f.iter().filter(|x| x["kept"] == false).filter_map(|x| text(&x["condition"])).collect())
                .unwrap_or_default(),
            rectification_order: text(&c["rectification_order"]),
            rectification_due: text(&c["rectification_due"]),
            decided_at: task.updated_at,
        }
    }
}

/// A written notice sent to the applicant.
#[derive(SimpleObject)]
pub struct CaseNotice {
    /// The template it was rendered from (`acceptance_notice`, `correction_notice`, …).
    pub topic: String,
    pub subject: String,
    pub text: String,
    pub sent_at: chrono::DateTime<chrono::Utc>,
}

/// A case: its workflow instance with what the window recorded.
pub struct Case {
    row: intake::CaseRow,
    instance: crate::store::InstanceRecord,
}

impl Case {
    pub(super) fn new(row: intake::CaseRow, instance: crate::store::InstanceRecord) -> Self {
        Self { row, instance }
    }
}

#[Object]
impl Case {
    async fn id(&self) -> ID {
        ID(self.row.instance_id.clone())
    }
    async fn instance(&self) -> WorkflowInstance {
        WorkflowInstance(self.instance.clone())
    }
    async fn state(&self) -> &str {
        &self.instance.state
    }
    async fn item_code(&self) -> &str {
        &self.row.item_code
    }
    /// The item's name as the case started on it.
    async fn item_name(&self) -> Option<&str> {
        self.instance.context.pointer("/item/name").and_then(serde_json::Value::as_str)
    }
    /// The catalogue version the case started on, and keeps.
    async fn item_version(&self) -> i64 {
        self.row.item_version
    }
    async fn mode(&self) -> &str {
        &self.row.mode
    }
    async fn applicant_uscc(&self) -> &str {
        &self.row.applicant_uscc
    }
    async fn licence_number(&self) -> Option<&str> {
        self.row.licence_number.as_deref()
    }
    /// The signed commitment letter, verbatim as rendered from its template version.
    async fn commitment_text(&self) -> Option<&str> {
        self.row.commitment_text.as_deref()
    }
    async fn commitment_version(&self) -> Option<i64> {
        self.row.commitment_version
    }
    async fn signed_by(&self) -> Option<&str> {
        self.row.signed_by.as_deref()
    }
    /// The outcome of each inspection of the licence once it has been fed back (kept,
    /// rectification ordered, revocation recommended). Never a draw, an inspector or a planned
    /// visit: an inspection is unannounced, and this is what the applicant sees of it.
    async fn inspection_outcomes(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<InspectionOutcome>> {
        use crate::store::entities::instance::{Column, Entity};
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
        let engine = ctx.data::<Engine>()?;
        let rows = Entity::find()
            .filter(Column::ParentId.eq(self.row.instance_id.clone()))
            .filter(Column::DefinitionName.eq(policy::SUPERVISION_TASK))
            .filter(Column::State.is_in(InspectionOutcome::AFTER_THE_VISIT))
            .order_by_asc(Column::CreatedAt)
            .all(&engine.db)
            .await
            .map_err(|e| e.internal())?;
        rows.into_iter()
            .map(|m| {
                let task: crate::store::InstanceRecord = m.try_into().map_err(|e: crate::store::StoreError| e.internal())?;
                Ok(InspectionOutcome::of(&task))
            })
            .collect()
    }
    /// The written notices its applicant was sent (受理、补正、决定、告知, …), oldest first, worded
    /// as they were sent.
    async fn notices(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<CaseNotice>> {
        let loaders = ctx.data::<super::loaders::Loaders>()?;
        let rows = loaders.notices.load_one(self.row.instance_id.clone()).await.map_err(|e| e.internal())?.unwrap_or_default();
        Ok(rows
            .into_iter()
            .map(|n| CaseNotice { topic: n.topic, subject: n.subject, text: n.body, sent_at: crate::store::millis::from_ms(n.sent_at) })
            .collect())
    }
    async fn materials(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<CaseMaterial>> {
        let engine = ctx.data::<Engine>()?;
        let rows = engine
            .db
            .query_all_raw(stmt(
                &engine.db,
                "SELECT code, name, status, file_ref, received_by, verification FROM case_materials WHERE instance_id = ? ORDER BY code",
                vec![self.row.instance_id.clone().into()],
            ))
            .await
            .map_err(|e| e.internal())?;
        rows.iter().map(|r| CaseMaterial::from_query_result(r, "").map_err(|e| e.internal())).collect()
    }
}

/// `Ok(None)` for a target out of the caller's scope (a lookup answers null, not an error).
pub(super) fn none_if_out_of_scope<T>(r: async_graphql::Result<T>) -> async_graphql::Result<Option<T>> {
    match r {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.extensions.as_ref().and_then(|x| x.get("reason")).is_some_and(|r| *r == async_graphql::Value::from(policy::reason::OUT_OF_SCOPE)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Loads a case if its instance is in the caller's scope.
pub(super) async fn visible_case(ctx: &Context<'_>, id: &str) -> async_graphql::Result<Option<Case>> {
    let engine = ctx.data::<Engine>()?;
    if policy::instance(&engine.db, access::claims(ctx)?, id).await?.is_none() {
        return Ok(None);
    }
    let Some(row) = intake::case_row(&engine.db, id).await.map_err(|e| e.internal())? else { return Ok(None) };
    let instance = instances::load(&engine.db, id).await.map_err(store_error)?;
    Ok(Some(Case { row, instance }))
}

pub(super) async fn case_after(ctx: &Context<'_>, id: &str) -> async_graphql::Result<Case> {
    visible_case(ctx, id).await?.ok_or_else(|| error("NOT_FOUND", format!("no case {id}")))
}

#[derive(SimpleObject)]
pub struct CreditRecordView {
    pub id: ID,
    /// fulfilment, breach, revocation or repair.
    pub kind: String,
    pub case_id: Option<ID>,
    pub reason: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Set once repaired: the record no longer counts.
    pub repaired_at: Option<chrono::DateTime<chrono::Utc>>,
    pub repaired_by: Option<String>,
    pub repair_reason: Option<String>,
    /// general or serious, for a breach, revocation or listing.
    pub category: Option<String>,
    /// The end of its publication period: after it the record no longer counts.
    pub publish_until: Option<chrono::DateTime<chrono::Utc>>,
    /// The earliest it may be repaired (the category's minimum period).
    pub repairable_from: Option<chrono::DateTime<chrono::Utc>>,
}

impl From<crate::store::credit::CreditRecord> for CreditRecordView {
    fn from(r: crate::store::credit::CreditRecord) -> Self {
        use crate::store::millis::from_ms;
        Self {
            id: ID(r.id),
            kind: r.kind,
            case_id: r.instance_id.map(ID),
            reason: r.reason,
            created_at: from_ms(r.created_at),
            repaired_at: r.repaired_at.map(from_ms),
            repaired_by: r.repaired_by,
            repair_reason: r.repair_reason,
            category: r.category,
            publish_until: r.publish_until.map(from_ms),
            repairable_from: r.repairable_from.map(from_ms),
        }
    }
}

#[derive(InputObject)]
pub struct ListDishonestInput {
    pub uscc: String,
    /// The rule the listing is decided under (e.g. the article that sets the list).
    pub basis: String,
    /// The decision's reasons and reference (决定书文号).
    pub reason: String,
}

#[derive(SimpleObject)]
pub struct ListDishonestPayload {
    pub applicant: Applicant,
    pub listing: CreditRecordView,
}

#[derive(InputObject)]
pub struct RepairCreditInput {
    pub record_id: ID,
    /// Why the record is repaired (信用修复): the decision's reference and grounds.
    pub reason: String,
}

#[derive(SimpleObject)]
pub struct RepairCreditPayload {
    pub applicant: Applicant,
    pub repair: CreditRecordView,
}

/// One change of an applicant's master data.
#[derive(SimpleObject)]
pub struct ApplicantChange {
    /// name, legal_representative, email or mobile.
    pub field: String,
    pub old_value: Option<String>,
    pub new_value: Option<String>,
    /// The staff member who made it.
    pub changed_by: String,
    pub changed_at: chrono::DateTime<chrono::Utc>,
}

#[derive(SimpleObject)]
pub struct DivisionView {
    pub code: String,
    pub name: String,
    pub email: Option<String>,
}

#[derive(SimpleObject)]
pub struct DepartmentView {
    pub code: String,
    pub name: String,
    pub side: String,
    pub email: Option<String>,
    /// The region's registration authority: it deregisters business licences there.
    pub registration_authority: bool,
    pub divisions: Vec<DivisionView>,
}

#[derive(Default)]
pub struct WindowQuery;

#[Object]
impl WindowQuery {
    /// The catalogue: newest version of each approval item (staff: their region's).
    #[graphql(guard = "access::ANYONE")]
    async fn approval_items(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<async_graphql::connection::Connection<async_graphql::connection::OpaqueCursor<u64>, catalogue::Item, super::access::ConnectionTotal, async_graphql::connection::EmptyFields>> {
        let engine = ctx.data::<Engine>()?;
        let page = access::Page::from_args(first, after)?;
        let mut all = catalogue::items(&engine.db).await.map_err(|e| e.internal())?;
        if let Some(own) = policy::catalogue_departments(&engine.db, access::claims(ctx)?).await? {
            all.retain(|i| own.contains(&i.department));
        }
        let total = all.len() as u64;
        let items = all.into_iter().skip(page.offset as usize).take(page.first as usize).collect();
        Ok(page.connection(items, total))
    }

    /// One item: the newest version unless `version` is given (staff: of their region).
    #[graphql(guard = "access::ANYONE")]
    async fn approval_item(&self, ctx: &Context<'_>, code: String, version: Option<i64>) -> async_graphql::Result<Option<catalogue::Item>> {
        let engine = ctx.data::<Engine>()?;
        let item = catalogue::item(&engine.db, &code, version).await.map_err(|e| e.internal())?;
        let own = policy::catalogue_departments(&engine.db, access::claims(ctx)?).await?;
        Ok(item.filter(|i| own.is_none_or(|own| own.contains(&i.department))))
    }

    /// An applicant with its credit status: staff, or the applicant itself.
    #[graphql(guard = "access::ANYONE")]
    async fn applicant(&self, ctx: &Context<'_>, uscc: String) -> async_graphql::Result<Option<Applicant>> {
        let engine = ctx.data::<Engine>()?;
        let claims = access::claims(ctx)?;
        let uscc = ids::uscc(&uscc).map_err(|e| bad("uscc", e.to_string()))?;
        Ok(none_if_out_of_scope(policy::applicant(&engine.db, claims, Act::ReadApplicant, &uscc).await)?.map(|a| a.into_inner().into()))
    }

    /// An applicant's credit records, oldest first: staff, or the applicant itself.
    #[graphql(guard = "access::ANYONE")]
    async fn credit_records(&self, ctx: &Context<'_>, uscc: String) -> async_graphql::Result<Vec<CreditRecordView>> {
        let engine = ctx.data::<Engine>()?;
        let claims = access::claims(ctx)?;
        let uscc = ids::uscc(&uscc).map_err(|e| bad("uscc", e.to_string()))?;
        let Some(applicant) = none_if_out_of_scope(policy::applicant(&engine.db, claims, Act::ReadApplicant, &uscc).await)? else { return Ok(Vec::new()) };
        let rows = crate::store::credit::records(&engine.db, &applicant.uscc).await.map_err(|e| e.internal())?;
        Ok(rows.into_iter().map(CreditRecordView::from).collect())
    }

    /// The recorded changes of an applicant's name, legal representative and contact, oldest
    /// first: staff of the applicant's home region.
    #[graphql(guard = "STAFF")]
    async fn applicant_changes(&self, ctx: &Context<'_>, uscc: String) -> async_graphql::Result<Vec<ApplicantChange>> {
        let engine = ctx.data::<Engine>()?;
        let claims = access::claims(ctx)?;
        let uscc = ids::uscc(&uscc).map_err(|e| bad("uscc", e.to_string()))?;
        let Some(applicant) = none_if_out_of_scope(policy::applicant(&engine.db, claims, Act::ReadApplicant, &uscc).await)? else { return Ok(Vec::new()) };
        let rows = registry::applicant_changes(&engine.db, &applicant.uscc).await.map_err(|e| e.internal())?;
        Ok(rows
            .into_iter()
            .map(|c| ApplicantChange {
                field: c.field,
                old_value: c.old_value,
                new_value: c.new_value,
                changed_by: c.changed_by,
                changed_at: crate::store::millis::from_ms(c.changed_at),
            })
            .collect())
    }

    /// The departments of the caller's region, with their divisions.
    #[graphql(guard = "STAFF")]
    async fn departments(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<DepartmentView>> {
        let engine = ctx.data::<Engine>()?;
        let Some(region) = caller_region(ctx).await? else { return Ok(Vec::new()) };
        let all = registry::departments(&engine.db, &region).await.map_err(|e| e.internal())?;
        Ok(all
            .into_iter()
            .map(|(d, divisions)| DepartmentView {
                code: d.code,
                name: d.name,
                side: d.side,
                email: d.email,
                registration_authority: d.registration_authority != 0,
                divisions: divisions.into_iter().map(|v| DivisionView { code: v.code, name: v.name, email: v.email }).collect(),
            })
            .collect())
    }

    /// The staff of the caller's region (the directory a division admin assigns inspectors
    /// from), by id; each filter narrows it.
    #[graphql(guard = "STAFF")]
    async fn staff(&self, ctx: &Context<'_>, department: Option<String>, division: Option<String>, role: Option<String>) -> async_graphql::Result<Vec<StaffMember>> {
        let engine = ctx.data::<Engine>()?;
        let Some(region) = caller_region(ctx).await? else { return Ok(Vec::new()) };
        let all = registry::staff_of_region(&engine.db, &region).await.map_err(|e| e.internal())?;
        Ok(all
            .into_iter()
            .filter(|s| department.as_ref().is_none_or(|d| s.department.as_ref() == Some(d)))
            .filter(|s| division.as_ref().is_none_or(|d| s.division.as_ref() == Some(d)))
            .filter(|s| role.as_ref().is_none_or(|r| s.roles.contains(r)))
            .map(|s| StaffMember { id: s.id, name: s.name, department: s.department, division: s.division, roles: s.roles, email: s.email, active: s.active })
            .collect())
    }

    /// A case in the caller's scope.
    #[graphql(guard = "access::ANYONE")]
    async fn case(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Case>> {
        visible_case(ctx, &id).await
    }
}

/// The region a staff caller belongs to: the token's, else its department's.
async fn caller_region(ctx: &Context<'_>) -> async_graphql::Result<Option<String>> {
    let engine = ctx.data::<Engine>()?;
    let claims = access::claims(ctx)?;
    Ok(match (&claims.region, &claims.department) {
        (Some(r), _) => Some(r.clone()),
        (None, Some(d)) => Some(registry::department(&engine.db, d).await.map_err(|e| e.internal())?.map(|d| d.region).unwrap_or_default()),
        (None, None) => None,
    })
}

/// A staff member as the registry holds them.
#[derive(SimpleObject)]
pub struct StaffMember {
    pub id: String,
    pub name: String,
    pub department: Option<String>,
    pub division: Option<String>,
    pub roles: Vec<String>,
    pub email: Option<String>,
    /// An inactive account signs in to nothing.
    pub active: bool,
}

#[derive(InputObject)]
pub struct PutDepartmentInput {
    pub region: String,
    pub region_name: String,
    pub code: String,
    pub name: String,
    /// `approval` or `supervision`.
    pub side: String,
    /// Where the department's notices go (revocations, overdue decisions).
    pub email: Option<String>,
    pub divisions: Vec<DivisionInput>,
    /// Marks the department as its region's registration authority (it deregisters business
    /// licences); left out, an existing department keeps its mark and a new one has none.
    pub registration_authority: Option<bool>,
}

#[derive(InputObject)]
pub struct DivisionInput {
    pub code: String,
    pub name: String,
    pub email: Option<String>,
}

/// What a `put…` mutation stored: the key of the department, supervision item or staff member.
#[derive(SimpleObject)]
pub struct PutPayload {
    pub code: String,
}

#[derive(SimpleObject)]
pub struct PutApplicantPayload {
    pub applicant: Applicant,
}

#[derive(SimpleObject)]
pub struct ImportElectronicLicencesPayload {
    /// How many licences were stored (created or replaced).
    pub imported: i64,
}

#[derive(InputObject)]
pub struct PutSupervisionItemInput {
    pub code: String,
    pub name: String,
    /// The supervising department and the division that owns the item.
    pub department: String,
    pub division: String,
}

#[derive(InputObject)]
pub struct PutStaffInput {
    /// The login subject the staff member's tokens carry.
    pub id: String,
    pub name: String,
    pub department: String,
    pub division: Option<String>,
    pub roles: Vec<String>,
    pub email: Option<String>,
}

#[derive(InputObject)]
pub struct PutApprovalItemInput {
    pub code: String,
    pub name: String,
    pub department: String,
    #[graphql(default)]
    pub excluded: bool,
    pub spec: ItemSpec,
}

#[derive(SimpleObject)]
pub struct PutApprovalItemPayload {
    pub item: catalogue::Item,
}

#[derive(InputObject)]
pub struct PutApplicantInput {
    pub uscc: String,
    pub name: String,
    pub legal_representative: String,
    pub email: Option<String>,
    pub mobile: Option<String>,
}

#[derive(InputObject)]
pub struct CreditRecordInput {
    pub uscc: String,
    /// A, B, C or D.
    pub tier: String,
    pub dishonest: bool,
}

#[derive(InputObject)]
pub struct ImportCreditInput {
    pub records: Vec<CreditRecordInput>,
}

#[derive(SimpleObject)]
pub struct ImportCreditPayload {
    pub updated: i64,
    /// Codes of applicants not on file (nothing was changed for them).
    pub unknown: Vec<String>,
}

#[derive(InputObject)]
pub struct ElectronicLicenceInput {
    pub holder_uscc: String,
    pub kind: String,
    pub number: String,
    pub valid_until: NaiveDate,
    #[graphql(default)]
    pub revoked: bool,
}

#[derive(InputObject)]
pub struct ImportElectronicLicencesInput {
    pub licences: Vec<ElectronicLicenceInput>,
}

#[derive(SimpleObject)]
pub struct CasePayload {
    pub case: Case,
}

#[derive(InputObject)]
pub struct SubmitMaterialInput {
    pub case_id: ID,
    pub code: String,
    pub file_ref: String,
}

#[derive(InputObject)]
pub struct IssueLicenceInput {
    pub case_id: ID,
    /// The approver's opinion (审批意见), archived with the decision.
    pub opinion: Option<String>,
}

#[derive(SimpleObject)]
pub struct IssueLicencePayload {
    pub case: Case,
    pub licence_number: String,
}

#[derive(InputObject)]
pub struct ReturnApplicationInput {
    /// The approval item; for an opened case, the case's.
    pub item_code: String,
    /// For an opened case, the case's applicant (which it is when left out).
    pub applicant_uscc: Option<String>,
    /// An opened case of the department, not yet decided, to return with the application: it
    /// ends as `returned`. Left out, the application is returned at intake, before any case.
    pub case_id: Option<ID>,
    pub category: ReturnCategory,
    pub reason: String,
}

#[derive(SimpleObject)]
pub struct ReturnApplicationPayload {
    pub id: ID,
}

#[derive(Default)]
pub struct WindowMutation;

#[Object]
impl WindowMutation {
    /// A department of the caller's region and its divisions (created or replaced).
    #[graphql(guard = "ADMIN")]
    async fn put_department(&self, ctx: &Context<'_>, input: PutDepartmentInput) -> async_graphql::Result<PutPayload> {
        let engine = ctx.data::<Engine>()?;
        let claims = access::claims(ctx)?;
        let slot = policy::department_slot(&engine.db, claims, &input.code, &input.region).await?;
        for d in &input.divisions {
            // A division of another department (another region's, perhaps) is not taken over.
            if let Some(existing) = registry::division(&engine.db, &d.code).await.map_err(|e| e.internal())? {
                if existing.department != slot.code {
                    return Err(policy::out_of_scope(format_args!("division {} of department {}", d.code, slot.code)));
                }
            }
        }
        if !matches!(input.side.as_str(), "approval" | "supervision") {
            return Err(bad("side", "expected approval or supervision"));
        }
        let txn = crate::store::begin_write(&engine.db).await.map_err(|e| e.internal())?;
        registry::put_region(&txn, &input.region, &input.region_name).await.map_err(|e| e.internal())?;
        for email in input.email.iter().chain(input.divisions.iter().filter_map(|d| d.email.as_ref())) {
            if email.parse::<lettre::Address>().is_err() {
                return Err(bad("email", format!("{email:?} is not an email address")));
            }
        }
        registry::put_department(&txn, &slot.code, &slot.region, &input.name, &input.side, input.email.as_deref()).await.map_err(|e| e.internal())?;
        if let Some(flag) = input.registration_authority {
            registry::set_registration_authority(&txn, &slot.code, flag).await.map_err(|e| e.internal())?;
        }
        for d in &input.divisions {
            registry::put_division(&txn, &d.code, &input.code, &d.name, d.email.as_deref()).await.map_err(|e| e.internal())?;
        }
        txn.commit().await.map_err(|e| e.internal())?;
        Ok(PutPayload { code: input.code })
    }

    /// A supervision item (监管事项) owned by a division of the caller's region.
    #[graphql(guard = "ADMIN")]
    async fn put_supervision_item(&self, ctx: &Context<'_>, input: PutSupervisionItemInput) -> async_graphql::Result<PutPayload> {
        let engine = ctx.data::<Engine>()?;
        let claims = access::claims(ctx)?;
        let existing = registry::supervision_item_department(&engine.db, &input.code).await.map_err(|e| e.internal())?;
        policy::item_owner(&engine.db, claims, &format!("supervision item {}", input.code), existing.as_deref(), &input.department).await?;
        let division = registry::division(&engine.db, &input.division).await.map_err(|e| e.internal())?;
        if division.is_none_or(|d| d.department != input.department) {
            return Err(bad("division", format!("{} is not a division of {}", input.division, input.department)));
        }
        registry::put_supervision_item(&engine.db, &input.code, &input.name, &input.department, &input.division)
            .await
            .map_err(|e| e.internal())?;
        Ok(PutPayload { code: input.code })
    }

    /// A staff account in the caller's region (created or replaced).
    #[graphql(guard = "ADMIN")]
    async fn put_staff(&self, ctx: &Context<'_>, input: PutStaffInput) -> async_graphql::Result<PutPayload> {
        let engine = ctx.data::<Engine>()?;
        let claims = access::claims(ctx)?;
        let region = policy::staff_slot(&engine.db, claims, input.id.trim()).await?;
        let department = policy::department(&engine.db, claims, Act::ManageOrganisation, &input.department, "department").await?;
        if let Some(division) = &input.division {
            let found = registry::division(&engine.db, division).await.map_err(|e| e.internal())?;
            if found.is_none_or(|d| d.department != input.department) {
                return Err(bad("division", format!("{division} is not a division of {}", input.department)));
            }
        }
        let staff_roles = access::STAFF.0;
        if input.roles.is_empty() || !input.roles.iter().all(|r| staff_roles.contains(&r.as_str())) {
            return Err(bad("roles", format!("roles must be among {}", staff_roles.join(", "))));
        }
        if input.id.trim().is_empty() || input.name.trim().is_empty() {
            return Err(bad("id", "id and name are required"));
        }
        let record = registry::StaffRecord {
            id: input.id.trim().to_string(),
            name: input.name.trim().to_string(),
            region: region.code.clone(),
            department: Some(department.code.clone()),
            division: input.division.clone(),
            roles: input.roles.clone(),
            email: input.email.clone(),
            active: true,
        };
        registry::put_staff_in(&engine.db, &record, engine.now()).await.map_err(|e| e.internal())?;
        Ok(PutPayload { code: input.id.trim().to_string() })
    }

    /// A new version of an approval item; running cases keep theirs.
    #[graphql(guard = "ADMIN")]
    async fn put_approval_item(&self, ctx: &Context<'_>, input: PutApprovalItemInput) -> async_graphql::Result<PutApprovalItemPayload> {
        let engine = ctx.data::<Engine>()?;
        let claims = access::claims(ctx)?;
        let existing = catalogue::item(&engine.db, &input.code, None).await.map_err(|e| e.internal())?.map(|i| i.department);
        policy::item_owner(&engine.db, claims, &format!("approval item {}", input.code), existing.as_deref(), &input.department).await?;
        let spec = &input.spec;
        if spec.materials.is_empty() || spec.conditions.is_empty() {
            return Err(bad("spec", "an item lists its conditions and its materials"));
        }
        if let Some(max) = spec.modes.deferral_max_working_days {
            if max < 1 {
                return Err(bad("spec", "the longest deferral is at least one working day"));
            }
        }
        // Checked and rendered once for a sample applicant, on fuel: a template that fails, runs too long or
        // writes too much is refused here, not at the window.
        if let Err(why) = crate::window::intake::check_commitment_template(&input.code, &input.name, &spec, engine.now(), engine.workflows.env.tz).await {
            return Err(bad("commitmentTemplate", format!("the commitment template cannot serve: {why}")));
        }
        let on_commitment = spec.modes.deferral_max_working_days.is_some() || spec.modes.verification || spec.modes.after_the_fact;
        if on_commitment && !input.excluded && spec.supervision.is_none() {
            // A licence on commitment without a supervising division would fall through the cracks.
            return Err(bad("spec", "an item approved on commitment needs its supervision linkage (department, division, supervision item)"));
        }
        if let Some(link) = &spec.supervision {
            policy::department(&engine.db, claims, Act::ManageOrganisation, &link.department, "spec").await?;
            let division = registry::division(&engine.db, &link.division).await.map_err(|e| e.internal())?;
            if division.is_none_or(|d| d.department != link.department) {
                return Err(bad("spec", format!("linkage: {} is not a division of {}", link.division, link.department)));
            }
            if !(1..=250).contains(&link.rectification_working_days) {
                return Err(bad("spec", "linkage: a rectification period is between 1 and 250 working days"));
            }
            if let Some(t) = link.routine_tiers.iter().flatten().find(|t| !registry::CREDIT_TIERS.contains(&t.as_str())) {
                return Err(bad("spec", format!("linkage: routine tiers are credit tiers (A–D), not {t:?}")));
            }
        }
        let periods = &spec.due_process;
        for (name, days) in [
            ("responseWorkingDays", periods.response_working_days),
            ("decisionWorkingDays", periods.decision_working_days),
            ("graceWorkingDays", periods.grace_working_days),
        ] {
            if !(1..=60).contains(&days) {
                return Err(bad("spec", format!("dueProcess.{name}: a period of the procedure is between 1 and 60 working days")));
            }
        }
        if !spec.licence_pattern.contains("{seq") {
            return Err(bad("spec", "the licence pattern needs {seq} so numbers are unique"));
        }
        let now = engine.now();
        // A new version clears the flags of the older ones and ends their re-examinations.
        let txn = crate::store::begin_write(&engine.db).await.map_err(|e| e.internal())?;
        let version = catalogue::put(&txn, &input.code, &input.name, &input.department, input.excluded, spec, &claims.sub, now)
            .await
            .map_err(|e| e.internal())?;
        crate::window::quality::supersede(&txn, &engine.workflows, &input.code, version, &claims.sub, now).await.map_err(window_error)?;
        txn.commit().await.map_err(|e| e.internal())?;
        let item = catalogue::item(&engine.db, &input.code, Some(version)).await.map_err(|e| e.internal())?.ok_or_else(|| error("INTERNAL", "internal error"))?;
        Ok(PutApprovalItemPayload { item })
    }

    /// An applicant (created or its details replaced); credit comes from credit imports.
    #[graphql(guard = "STAFF")]
    async fn put_applicant(&self, ctx: &Context<'_>, input: PutApplicantInput) -> async_graphql::Result<PutApplicantPayload> {
        let engine = ctx.data::<Engine>()?;
        let claims = access::claims(ctx)?;
        let uscc = ids::uscc(&input.uscc).map_err(|e| bad("uscc", e.to_string()))?;
        if input.name.trim().is_empty() || input.legal_representative.trim().is_empty() {
            return Err(bad("name", "name and legal representative are required"));
        }
        if let Some(email) = &input.email {
            if email.parse::<lettre::Address>().is_err() {
                return Err(bad("email", format!("{email:?} is not an email address")));
            }
        }
        let slot = policy::applicant_slot(&engine.db, claims, &uscc).await?;
        let existing = slot.existing.clone();
        let row = ApplicantRow {
            uscc,
            name: input.name.trim().to_string(),
            legal_representative: input.legal_representative.trim().to_string(),
            email: input.email,
            mobile: input.mobile,
            credit_tier: existing.as_ref().map_or("B".into(), |a| a.credit_tier.clone()),
            dishonest: existing.as_ref().map_or(0, |a| a.dishonest),
        };
        let now = engine.now();
        let txn = crate::store::begin_write(&engine.db).await.map_err(|e| e.internal())?;
        registry::put_applicant(&txn, &engine.workflows.audit, &row, now).await.map_err(|e| e.internal())?;
        registry::adopt(&txn, &engine.workflows.audit, &row.uscc, &slot.region).await.map_err(|e| e.internal())?;
        if let Some(old) = &existing {
            registry::record_changes(&txn, &engine.workflows.audit, old, &row, &claims.sub, now).await.map_err(|e| e.internal())?;
        }
        txn.commit().await.map_err(|e| e.internal())?;
        Ok(PutApplicantPayload { applicant: row.into() })
    }

    /// Repairs a breach or revocation record (信用修复) with the reason; the applicant's
    /// standing is recomputed (and may leave the dishonesty list).
    #[graphql(guard = "Roles(&[\"supervisor\", \"regional_admin\"])")]
    async fn repair_credit(&self, ctx: &Context<'_>, input: RepairCreditInput) -> async_graphql::Result<RepairCreditPayload> {
        let engine = ctx.data::<Engine>()?;
        let claims = access::claims(ctx)?;
        if input.reason.trim().is_empty() {
            return Err(bad("reason", "say why the record is repaired"));
        }
        let not_found = || error("NOT_FOUND", format!("no unrepaired breach, revocation or listing record {}", input.record_id.as_str()));
        let holder = registry::credit_record_holder(&engine.db, &input.record_id).await.map_err(|e| e.internal())?.ok_or_else(not_found)?;
        policy::applicant(&engine.db, claims, Act::RepairCredit, &holder).await.map_err(|e| if e.message.starts_with("no applicant") { not_found() } else { e })?;
        let now = engine.now();
        let txn = crate::store::begin_write(&engine.db).await.map_err(|e| e.internal())?;
        use crate::store::credit::RepairRefused;
        let repair = match crate::store::credit::repair(&txn, &engine.workflows.credit, &engine.workflows.audit, &input.record_id, &claims.sub, input.reason.trim(), now).await {
            Ok(r) => r,
            Err(RepairRefused::NoSuchRecord(_)) => return Err(not_found()),
            Err(e @ RepairRefused::TooEarly(_)) => {
                return Err(access::refusal("BAD_USER_INPUT", crate::domain::reason::REPAIR_TOO_EARLY, e.to_string()).extend_with(|_, x| x.set("field", "recordId")))
            }
            Err(RepairRefused::Db(e)) => return Err(e.internal()),
        };
        txn.commit().await.map_err(|e| e.internal())?;
        let uscc = &repair.applicant_uscc;
        let applicant = registry::applicant(&engine.db, uscc).await.map_err(|e| e.internal())?.ok_or_else(|| error("NOT_FOUND", format!("no applicant {uscc}")))?;
        Ok(RepairCreditPayload { applicant: applicant.into(), repair: repair.into() })
    }

    /// Enters an applicant on the dishonesty list (失信名单): a legal determination, made only by
    /// this explicit decision of the region's credit authority (its supervisor), under a named
    /// rule and with reasons — never by counting records. A serious record; lifted by repairing it.
    #[graphql(guard = "access::ANYONE")]
    async fn list_dishonest(&self, ctx: &Context<'_>, input: ListDishonestInput) -> async_graphql::Result<ListDishonestPayload> {
        let engine = ctx.data::<Engine>()?;
        let claims = access::claims(ctx)?;
        policy::may(claims, Act::ListDishonest)?;
        let uscc = ids::uscc(&input.uscc).map_err(|e| bad("uscc", e.to_string()))?;
        let (basis, reason) = (input.basis.trim(), input.reason.trim());
        if basis.is_empty() || reason.is_empty() {
            return Err(bad(if basis.is_empty() { "basis" } else { "reason" }, "a listing names the rule it is decided under and its reasons"));
        }
        policy::applicant(&engine.db, claims, Act::ListDishonest, &uscc).await?;
        let now = engine.now();
        let txn = crate::store::begin_write(&engine.db).await.map_err(|e| e.internal())?;
        let listed = crate::store::credit::listing(&txn, &engine.workflows.credit, &engine.workflows.audit, &uscc, &claims.sub, basis, reason, now)
            .await
            .map_err(|e| match e {
                crate::store::credit::ListingRefused::AlreadyListed(id) => error("CONFLICT", format!("{uscc} is on the dishonesty list already (record {id})")),
                crate::store::credit::ListingRefused::Db(e) => e.internal(),
            })?;
        txn.commit().await.map_err(|e| e.internal())?;
        let applicant = registry::applicant(&engine.db, &uscc).await.map_err(|e| e.internal())?.ok_or_else(|| error("NOT_FOUND", format!("no applicant {uscc}")))?;
        Ok(ListDishonestPayload { applicant: applicant.into(), listing: listed.into() })
    }

    /// Credit statuses from the credit platform: all or nothing.
    #[graphql(guard = "ADMIN")]
    async fn import_credit(&self, ctx: &Context<'_>, input: ImportCreditInput) -> async_graphql::Result<ImportCreditPayload> {
        let engine = ctx.data::<Engine>()?;
        let claims = access::claims(ctx)?;
        for r in &input.records {
            ids::uscc(&r.uscc).map_err(|e| bad("records", format!("{}: {e}", r.uscc)))?;
            if !registry::CREDIT_TIERS.contains(&r.tier.as_str()) {
                return Err(bad("records", format!("{}: tier {:?} is not A, B, C or D", r.uscc, r.tier)));
            }
        }
        let codes: Vec<String> = input.records.iter().map(|r| ids::uscc(&r.uscc).unwrap_or_default()).collect();
        policy::import_targets(&engine.db, claims, &codes).await?;
        let now = engine.now();
        let txn = crate::store::begin_write(&engine.db).await.map_err(|e| e.internal())?;
        let (mut updated, mut unknown) = (0, Vec::new());
        for r in &input.records {
            let code = ids::uscc(&r.uscc).unwrap_or_default();
            if registry::set_credit(&txn, &engine.workflows.credit, &engine.workflows.audit, &code, &r.tier, r.dishonest, now).await.map_err(|e| e.internal())? {
                updated += 1;
            } else {
                unknown.push(code);
            }
        }
        txn.commit().await.map_err(|e| e.internal())?;
        Ok(ImportCreditPayload { updated, unknown })
    }

    /// Electronic licences for verification (the embedded library).
    #[graphql(guard = "ADMIN")]
    async fn import_electronic_licences(&self, ctx: &Context<'_>, input: ImportElectronicLicencesInput) -> async_graphql::Result<ImportElectronicLicencesPayload> {
        let engine = ctx.data::<Engine>()?;
        let claims = access::claims(ctx)?;
        let mut holders = Vec::new();
        for l in &input.licences {
            let holder = ids::uscc(&l.holder_uscc).map_err(|e| bad("licences", format!("{}: {e}", l.holder_uscc)))?;
            // A licence is checked against its holder: only an applicant on file, of this region.
            if registry::home_region(&engine.db, &holder).await.map_err(|e| e.internal())?.is_none() {
                return Err(policy::out_of_scope(format_args!("applicant {holder}")));
            }
            holders.push(holder);
        }
        policy::import_targets(&engine.db, claims, &holders).await?;
        let txn = crate::store::begin_write(&engine.db).await.map_err(|e| e.internal())?;
        for l in &input.licences {
            let holder = ids::uscc(&l.holder_uscc).map_err(|e| bad("licences", format!("{}: {e}", l.holder_uscc)))?;
            let row = ElectronicLicence {
                holder_uscc: holder,
                kind: l.kind.clone(),
                number: l.number.clone(),
                valid_until: l.valid_until.to_string(),
                revoked: i64::from(l.revoked),
            };
            registry::put_electronic_licence(&txn, &row).await.map_err(|e| e.internal())?;
        }
        txn.commit().await.map_err(|e| e.internal())?;
        Ok(ImportElectronicLicencesPayload { imported: input.licences.len() as i64 })
    }

    /// Opens a case at the window: credit gate, materials, the signed commitment.
    #[graphql(guard = "WINDOW")]
    async fn open_case(&self, ctx: &Context<'_>, input: OpenCaseInput) -> async_graphql::Result<CasePayload> {
        let engine = ctx.data::<Engine>()?;
        let claims = access::claims(ctx)?;
        let record = intake::open_case(engine, claims, input).await.map_err(window_error)?;
        Ok(CasePayload { case: case_after(ctx, &record.id).await? })
    }

    /// Records a deferred (or unverifiable) material as received.
    #[graphql(guard = "WINDOW")]
    async fn submit_material(&self, ctx: &Context<'_>, input: SubmitMaterialInput) -> async_graphql::Result<CasePayload> {
        let engine = ctx.data::<Engine>()?;
        let claims = access::claims(ctx)?;
        intake::submit_material(engine, claims, &input.case_id, &input.code, &input.file_ref).await.map_err(window_error)?;
        Ok(CasePayload { case: case_after(ctx, &input.case_id).await? })
    }

    /// Approves and issues the licence, with the item's next number.
    #[graphql(guard = "APPROVER")]
    async fn issue_licence(&self, ctx: &Context<'_>, input: IssueLicenceInput) -> async_graphql::Result<IssueLicencePayload> {
        let engine = ctx.data::<Engine>()?;
        let claims = access::claims(ctx)?;
        let (_, number) = intake::issue_licence(engine, claims, &input.case_id, input.opinion.as_deref()).await.map_err(window_error)?;
        Ok(IssueLicencePayload { case: case_after(ctx, &input.case_id).await?, licence_number: number })
    }

    /// Returns an application (退件), with the reason's category: at intake (a window officer),
    /// or an opened case not yet decided (`caseId`: its department's window officer or approver).
    #[graphql(guard = "WINDOW_OR_APPROVER")]
    async fn return_application(&self, ctx: &Context<'_>, input: ReturnApplicationInput) -> async_graphql::Result<ReturnApplicationPayload> {
        let engine = ctx.data::<Engine>()?;
        let claims = access::claims(ctx)?;
        match &input.case_id {
            // Taking in (and turning away) applications is the window's; a case's approver may
            // only return the case in front of them.
            None => WINDOW.check(ctx).await?,
            Some(case) => {
                if access::visible_instance(&engine.db, claims, case).await?.is_none() {
                    return Err(error("NOT_FOUND", format!("no case {}", case.as_str())));
                }
            }
        }
        let case = input.case_id.as_ref().map(|c| c.as_str());
        let id = intake::return_application(engine, claims, &input.item_code, input.applicant_uscc.as_deref(), case, input.category, &input.reason)
            .await
            .map_err(window_error)?;
        Ok(ReturnApplicationPayload { id: ID(id) })
    }
}
