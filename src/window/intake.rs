//! The window's acts on a case: opening it (credit gate, materials, the signed commitment,
//! the workflow for its mode), receiving deferred materials, issuing the licence, and
//! returning an application (at intake, or an opened case not yet decided). Each is one
//! transaction; a refusal changes nothing.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbErr, FromQueryResult};
use serde_json::{json, Value};

use super::catalogue::{self, Item, ItemSpec, Mode};
use super::quality;
use super::registry;
use super::verify::{Library, Verdict, Verifier};
use crate::auth::Claims;
use crate::domain::calendar::local_instant;
use crate::domain::{ids, reason};
use crate::runtime::Engine;
use crate::store::{self, instances, stmt, InstanceRecord, StoreError};
use crate::workflow::{Actor, TimeEnv, TransitionError};

pub use super::error::{bad, WindowError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, async_graphql::Enum)]
pub enum MaterialStatus {
    Provided,
    /// To be supplied by the deferral deadline.
    Deferred,
    /// To be verified against an electronic licence.
    ToVerify,
    /// Not given at the window (ordinary procedure): recorded so, never listed by the caller.
    Missing,
}

impl MaterialStatus {
    /// As stored in a case's and a bundle's materials.
    pub fn as_str(self) -> &'static str {
        match self {
            MaterialStatus::Provided => "provided",
            MaterialStatus::Deferred => "deferred",
            MaterialStatus::ToVerify => "to_verify",
            MaterialStatus::Missing => "missing",
        }
    }
}

#[derive(Debug, Clone, async_graphql::InputObject)]
pub struct MaterialInput {
    pub code: String,
    pub status: MaterialStatus,
    /// Where the document is filed (e.g. the document system's reference).
    pub file_ref: Option<String>,
    /// For `TO_VERIFY`: the electronic licence's number.
    pub licence_number: Option<String>,
}

#[derive(Debug, Clone, async_graphql::InputObject)]
pub struct OpenCaseInput {
    pub applicant_uscc: String,
    pub item_code: String,
    pub mode: Mode,
    pub materials: Vec<MaterialInput>,
    /// Material deferral: the deadline, in working days from today (within the item's limit).
    pub deferral_working_days: Option<i64>,
    /// Who signed the commitment letter for the applicant.
    pub signed_by: String,
}

/// The close of the office day a deadline falls at.
const END_OF_DAY: (u32, u32) = (17, 30);

/// The end of the office day `days` working days after `from`, and whether it was counted over
/// a provisional calendar year (to be recounted once the official notice is on file).
pub fn end_of_working_day(env: &TimeEnv, from: NaiveDate, days: i64) -> Result<(DateTime<Utc>, bool), String> {
    let day = env.calendar.get().add_working_days(from, days).map_err(|e| e.to_string())?;
    let (h, m) = END_OF_DAY;
    let at = local_instant(day, NaiveTime::from_hms_opt(h, m, 0).unwrap_or_default(), env.tz).ok_or_else(|| format!("no local time {day} {h:02}:{m:02}"))?;
    Ok((at, env.calendar.get().is_provisional_between(from, day)))
}

async fn item_for_officer(db: &impl ConnectionTrait, officer: &Claims, code: &str) -> Result<Item, WindowError> {
    let item = catalogue::item(db, code, None).await?.ok_or_else(|| WindowError::NotFound(format!("no approval item {code}")))?;
    // Another region's catalogue is not the officer's to know of: not found, as in the listings.
    let region = registry::department(db, &item.department).await?.map(|d| d.region);
    if officer.region.is_some() && region != officer.region {
        return Err(WindowError::Refused { code: "NOT_FOUND", reason: reason::OUT_OF_SCOPE, field: None, message: format!("no approval item {code}") });
    }
    if officer.department.as_deref() != Some(item.department.as_str()) {
        return Err(WindowError::Refused { code: "FORBIDDEN", reason: reason::OTHER_DEPARTMENT, field: None, message: format!("item {code} is handled by department {}, not yours", item.department) });
    }
    Ok(item)
}

/// Opens a case: checks everything first, then writes the instance, the case, its materials
/// and (for verification) the verification results in one transaction.
pub async fn open_case(engine: &Engine, officer: &Claims, input: OpenCaseInput) -> Result<InstanceRecord, WindowError> {
    let db = &engine.db;
    let now = engine.now();
    let uscc = ids::uscc(&input.applicant_uscc).map_err(|e| bad("applicantUscc", e.to_string()))?;
    let item = item_for_officer(db, officer, &input.item_code).await?;
    let applicant = registry::applicant(db, &uscc).await?.ok_or_else(|| WindowError::NotFound(format!("no applicant {uscc}")))?;
    let actor = Actor::act(officer.sub.clone(), officer.roles.clone(), "openCase");
    let prepared = prepare(db, &engine.workflows.env, &officer.sub, &actor, item, &applicant, input, now).await?;
    let txn = store::begin_write(db).await?;
    let record = write(&txn, &engine.workflows, prepared, None, now).await?;
    txn.commit().await?;
    Ok(record)
}

/// A case checked and ready to be written: everything `write` needs, nothing stored yet.
pub struct Prepared {
    officer: String,
    actor: Actor,
    item: Item,
    uscc: String,
    mode: Mode,
    materials: Vec<(super::catalogue::MaterialSpec, MaterialInput)>,
    deadlines: BTreeMap<String, DateTime<Utc>>,
    provisional: Option<(NaiveDate, i64)>,
    today: NaiveDate,
    /// None in the ordinary procedure: no commitment is signed.
    commitment: Option<String>,
    signed_by: String,
    credit_tier: String,
    /// What the instance starts with; a bundle adds what its children share.
    pub context: Value,
}

/// The checks of opening a case on `item` (the caller has routed it to its department): the
/// return rule's gate, the credit gate, the mode, the materials, the deferral, the commitment.
/// Reads only; a refusal changes nothing.
#[allow(clippy::too_many_arguments)]
pub async fn prepare(
    db: &impl ConnectionTrait,
    env: &TimeEnv,
    officer: &str,
    actor: &Actor,
    item: Item,
    applicant: &registry::Applicant,
    input: OpenCaseInput,
    now: DateTime<Utc>,
) -> Result<Prepared, WindowError> {
    let uscc = applicant.uscc.clone();
    quality::gate(db, officer).await?;
    let commitment_mode = input.mode.is_commitment();
    if item.excluded && commitment_mode {
        return Err(WindowError::Refused {
            code: "BAD_USER_INPUT",
            reason: reason::MODE_NOT_ALLOWED,
            field: Some("mode"),
            message: format!("{} is excluded from commitment approval: open it in the ordinary procedure (mode ORDINARY)", item.name),
        });
    }
    // An enterprise whose business licence is deregistered takes no new licence.
    if super::registry::is_deregistered(db, &uscc).await? {
        return Err(bad("applicantUscc", format!("the business licence of {uscc} is deregistered")));
    }
    // The credit gate comes first (事前信用查询); the ordinary procedure stays open to all.
    if applicant.dishonest != 0 && commitment_mode {
        return Err(WindowError::Refused {
            code: "BAD_USER_INPUT",
            reason: reason::CREDIT_BARRED,
            field: Some("mode"),
            message: format!("{} is on the dishonesty list: commitment approval, deferral and licence-before-check are closed to it; open it in the ordinary procedure (mode ORDINARY)", applicant.name),
        });
    }
    let limits = &item.spec.modes;
    let allowed = match input.mode {
        Mode::Deferral => limits.deferral_max_working_days.is_some(),
        Mode::Verification => limits.verification,
        Mode::AfterTheFact => limits.after_the_fact,
        Mode::Ordinary => true,
    };
    if !allowed {
        return Err(WindowError::Refused { code: "BAD_USER_INPUT", reason: reason::MODE_NOT_ALLOWED, field: Some("mode"), message: format!("{} does not allow {}", item.name, input.mode.as_str()) });
    }

    // Every required material once, in a status the mode and the item allow.
    let mut materials = Vec::new();
    for spec in &item.spec.materials {
        let given: Vec<&MaterialInput> = input.materials.iter().filter(|m| m.code == spec.code).collect();
        let m = match given.as_slice() {
            [m] => *m,
            // The ordinary procedure takes an application as it comes: what is missing goes on
            // the one-time correction list (一次性告知), not back across the counter.
            [] if !commitment_mode => {
                materials.push((spec, MaterialInput { code: spec.code.clone(), status: MaterialStatus::Missing, file_ref: None, licence_number: None }));
                continue;
            }
            _ => return Err(bad("materials", format!("material {} ({}) must be listed exactly once", spec.code, spec.name))),
        };
        match m.status {
            MaterialStatus::Deferred if input.mode != Mode::Deferral => {
                return Err(bad("materials", format!("{} can only be deferred under material deferral", spec.name)))
            }
            MaterialStatus::Deferred if !spec.deferrable => {
                return Err(bad("materials", format!("{} may not be deferred for {}", spec.name, item.name)))
            }
            MaterialStatus::ToVerify if input.mode != Mode::Verification || spec.licence_kind.is_none() => {
                return Err(bad("materials", format!("{} cannot be verified against an electronic licence here", spec.name)))
            }
            MaterialStatus::ToVerify if m.licence_number.is_none() => {
                return Err(bad("materials", format!("{}: give the electronic licence's number", spec.name)))
            }
            MaterialStatus::Missing => return Err(bad("materials", format!("{}: leave a missing material out of the list", spec.name))),
            _ => {}
        }
        materials.push((spec, m.clone()));
    }
    if let Some(extra) = input.materials.iter().find(|m| !item.spec.materials.iter().any(|s| s.code == m.code)) {
        return Err(bad("materials", format!("{} is not a material of {}", extra.code, item.name)));
    }
    let deferred: Vec<_> = materials.iter().filter(|(_, m)| m.status == MaterialStatus::Deferred).collect();

    let today = now.with_timezone(&env.tz).date_naive();
    let mut deadlines = BTreeMap::new();
    // Counted over a year whose official notice is not on file yet: (from, working days).
    let mut provisional = None;
    if input.mode == Mode::Deferral {
        if deferred.is_empty() {
            return Err(bad("materials", "material deferral needs at least one deferred material"));
        }
        let max = limits.deferral_max_working_days.unwrap_or(0);
        let days = input.deferral_working_days.ok_or_else(|| bad("deferralWorkingDays", "give the deferral in working days"))?;
        if !(1..=max).contains(&days) {
            return Err(bad("deferralWorkingDays", format!("{days} working days is beyond {}'s limit of {max}", item.name)));
        }
        let (at, counted_provisionally) = end_of_working_day(env, today, days).map_err(|m| bad("deferralWorkingDays", m))?;
        deadlines.insert("materials_due".to_string(), at);
        if counted_provisionally {
            provisional = Some((today, days));
        }
    } else if input.deferral_working_days.is_some() {
        return Err(bad("deferralWorkingDays", "only material deferral has a deferral deadline"));
    }
    if input.signed_by.trim().is_empty() {
        return Err(bad("signedBy", if commitment_mode { "the commitment must be signed" } else { "say who signed the application" }));
    }
    let department = registry::department(db, &item.department).await?.ok_or_else(|| WindowError::NotFound(format!("no department {}", item.department)))?;
    // Who is told what: the approving department, and the supervising division the case is
    // handed to (its supervision task belongs to that division).
    let supervising = match &item.spec.supervision {
        Some(link) => registry::division(db, &link.division).await?,
        None => None,
    };
    let due = deadlines.get("materials_due").copied().map(|at| (at, provisional.is_some()));
    let commitment = if commitment_mode { Some(render_commitment(&item, applicant, due, &input.signed_by, now, env.tz).await?) } else { None };

    let material_json: Vec<Value> = materials
        .iter()
        .map(|(s, m)| json!({"code": s.code, "name": s.name, "status": m.status.as_str()}))
        .collect();
    let context = json!({
        "scope": {"region": department.region, "department": item.department},
        "applicant": {"uscc": applicant.uscc, "name": applicant.name, "email": applicant.email, "mobile": applicant.mobile},
        "item": {"code": item.code, "name": item.name, "version": item.version, "conditions": item.spec.conditions},
        // The archive handed to supervision carries what was promised, word for word.
        "commitment": commitment.as_ref().map(|text| json!({"text": text, "version": item.spec.commitment_version, "signed_by": input.signed_by})),
        // The ordinary procedure's legal clock: the item's limit, counted from acceptance.
        "legal_clock": (!commitment_mode).then(|| json!({"limit_working_days": item.spec.time_limit_working_days.unwrap_or(crate::domain::definitions::STATUTORY_DECISION_WORKING_DAYS)})),
        "mode": input.mode.as_str(),
        "materials": material_json,
        "supervision": item.spec.supervision,
        // The item's policy for this applicant's tier at intake: a routine supervision task at
        // licensing, or none (left to the random draw).
        "supervision_waived": item.spec.supervision.as_ref().is_some_and(|l| !l.routine_for(&applicant.credit_tier)),
        // The procedure before an adverse decision, as the item had it when the case opened.
        "due_process": item.spec.due_process,
        "department": {"code": department.code, "name": department.name, "email": department.email},
        "division": supervising.as_ref().map(|d| json!({"code": d.code, "name": d.name, "email": d.email})),
        "credit": {"tier": applicant.credit_tier, "dishonest": applicant.dishonest != 0, "checked_at": now},
        // Counted on the statutory holidays: recomputed (never earlier) once the notice is on file.
        "provisional_deadlines": if provisional.is_some() { json!(["materials_due"]) } else { json!([]) },
    });
    Ok(Prepared {
        officer: officer.to_string(),
        actor: actor.clone(),
        uscc,
        mode: input.mode,
        materials: materials.into_iter().map(|(s, m)| (s.clone(), m)).collect(),
        deadlines,
        provisional,
        today,
        commitment,
        signed_by: input.signed_by.trim().to_string(),
        credit_tier: applicant.credit_tier.clone(),
        context,
        item,
    })
}

/// What the return rule judges of an item.
fn judged(item: &Item) -> quality::JudgedItem<'_> {
    quality::JudgedItem { code: &item.code, version: item.version, name: &item.name, department: &item.department, since: item.created_at }
}

/// Writes a prepared case in the caller's transaction: the instance (a child of `parent`,
/// when a bundle opens it), the case row, its materials and, for verification, the verdicts.
pub async fn write(txn: &DatabaseTransaction, wf: &instances::Workflows, p: Prepared, parent: Option<&str>, now: DateTime<Utc>) -> Result<InstanceRecord, WindowError> {
    let Prepared { officer, actor, item, uscc, mode, materials, deadlines, provisional, today, commitment, signed_by, credit_tier, context } = p;
    let dishonest = context["credit"]["dishonest"].as_bool().unwrap_or(false);
    let limits = &item.spec.modes;
    let started = instances::start(txn, wf, mode.workflow(limits), context, deadlines.clone(), &actor, parent.map(str::to_string), now).await?;
    let id = started.id.clone();
    txn.execute_raw(stmt(
        txn,
        "INSERT INTO cases (instance_id, item_code, item_version, applicant_uscc, mode, department, opened_by, credit_tier, dishonest, \
         commitment_version, commitment_text, signed_by, signed_at, licence_number, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?)",
        vec![
            id.clone().into(),
            item.code.clone().into(),
            item.version.into(),
            uscc.clone().into(),
            mode.as_str().into(),
            item.department.clone().into(),
            officer.clone().into(),
            credit_tier.into(),
            i64::from(dishonest).into(),
            commitment.as_ref().map(|_| item.spec.commitment_version).into(),
            commitment.into(),
            signed_by.into(),
            now.timestamp_millis().into(),
            now.timestamp_millis().into(),
        ],
    ))
    .await?;
    crate::store::rollup::case_opened(txn, wf.env.tz, &id, &uscc, &started.state).await?;
    if let Some((from, days)) = provisional {
        let (h, m) = END_OF_DAY;
        txn.execute_raw(stmt(
            txn,
            "INSERT INTO provisional_deadlines (instance_id, name, from_date, working_days, time_of_day) VALUES (?, 'materials_due', ?, ?, ?)",
            vec![id.clone().into(), from.to_string().into(), days.into(), format!("{h:02}:{m:02}").into()],
        ))
        .await?;
    }
    let mut unverified = Vec::new();
    for (spec, m) in &materials {
        let (status, due, verification) = match m.status {
            MaterialStatus::Provided => ("provided".to_string(), None, None),
            MaterialStatus::Missing => ("missing".to_string(), None, None),
            MaterialStatus::Deferred => ("deferred".to_string(), deadlines.get("materials_due").map(|d| d.timestamp_millis()), None),
            MaterialStatus::ToVerify => {
                let kind = spec.licence_kind.as_deref().unwrap_or_default();
                let number = m.licence_number.as_deref().unwrap_or_default();
                let verdict = Library(txn).verify(&uscc, kind, number, today).await?;
                if verdict != Verdict::Verified {
                    unverified.push(spec.name.clone());
                }
                let status = if verdict == Verdict::Verified { "verified" } else { "to_supply" };
                (status.to_string(), None, Some(json!({"kind": kind, "number": number, "verdict": verdict.as_str()}).to_string()))
            }
        };
        txn.execute_raw(stmt(
            txn,
            "INSERT INTO case_materials (instance_id, code, name, status, due_at, file_ref, received_by, received_at, verification) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            vec![
                id.clone().into(),
                spec.code.clone().into(),
                spec.name.clone().into(),
                status.into(),
                due.into(),
                m.file_ref.clone().into(),
                (m.status == MaterialStatus::Provided).then(|| officer.clone()).into(),
                (m.status == MaterialStatus::Provided).then(|| now.timestamp_millis()).into(),
                verification.into(),
            ],
        ))
        .await?;
    }
    let record = if mode == Mode::Verification {
        let (event, payload) = if unverified.is_empty() { ("verified", json!({})) } else { ("unverifiable", json!({"missing": unverified})) };
        instances::fire(txn, wf, &id, event, &actor, &payload, None, now).await?.instance
    } else {
        started
    };
    // An intake changes the officer's (and the item's) counts: the return rule is judged again.
    quality::judge(txn, wf, &officer, &judged(&item), now).await?;
    Ok(record)
}

/// What a commitment template sees.
fn commitment_context(code: &str, name: &str, spec: &ItemSpec, applicant: (&str, &str, &str), due: Option<(DateTime<Utc>, bool)>, signed_by: &str, now: DateTime<Utc>, tz: chrono_tz::Tz) -> Value {
    let local = |t: DateTime<Utc>| crate::domain::calendar::local_text(t, tz);
    json!({
        "item": {"code": code, "name": name, "legal_basis": spec.legal_basis, "conditions": spec.conditions,
                 "breach_consequences": spec.breach_consequences},
        "applicant": {"name": applicant.0, "uscc": applicant.1, "legal_representative": applicant.2},
        "due": due.map(|(at, _)| local(at)),
        // Counted over a year whose official holidays are not yet published: the letter says so.
        "due_provisional": due.is_some_and(|(_, p)| p),
        "due_process": spec.due_process,
        "signed_by": signed_by,
        "signed_at": local(now),
    })
}

/// `due`: the materials' deadline, and whether it is counted over a provisional year.
async fn render_commitment(item: &Item, applicant: &registry::Applicant, due: Option<(DateTime<Utc>, bool)>, signed_by: &str, now: DateTime<Utc>, tz: chrono_tz::Tz) -> Result<String, WindowError> {
    let ctx = commitment_context(&item.code, &item.name, &item.spec, (&applicant.name, &applicant.uscc, &applicant.legal_representative), due, signed_by, now, tz);
    let source = item.spec.commitment_template.clone();
    crate::templating::off_thread(move || crate::templating::render_str(&source, ctx))
        .await
        .map_err(|e| WindowError::Invalid(format!("the commitment template of {} v{} does not render: {e}", item.code, item.version)))
}

/// A commitment template as `putApprovalItem` receives it, rendered once for a sample applicant
/// (bounded like every render): `Err` says why it cannot serve.
pub async fn check_commitment_template(code: &str, name: &str, spec: &ItemSpec, now: DateTime<Utc>, tz: chrono_tz::Tz) -> Result<(), String> {
    let sample = ("上海示例餐饮管理有限公司", "91310101MA1FPX1234", "张三");
    let ctx = commitment_context(code, name, spec, sample, Some((now, true)), "张三", now, tz);
    let source = spec.commitment_template.clone();
    crate::templating::off_thread(move || crate::templating::render_str(&source, ctx)).await.map(|_| ())
}

#[derive(Debug, Clone, FromQueryResult)]
pub struct CaseRow {
    pub instance_id: String,
    pub item_code: String,
    pub item_version: i64,
    pub applicant_uscc: String,
    pub mode: String,
    pub department: String,
    pub licence_number: Option<String>,
    pub commitment_text: Option<String>,
    pub commitment_version: Option<i64>,
    pub signed_by: Option<String>,
    pub created_at: i64,
}

const CASE_COLUMNS: &str = "instance_id, item_code, item_version, applicant_uscc, mode, department, licence_number, commitment_text, commitment_version, signed_by, created_at";

pub async fn case_row(db: &impl ConnectionTrait, id: &str) -> Result<Option<CaseRow>, DbErr> {
    let row = db
        .query_one_raw(stmt(
            db,
            &format!("SELECT {CASE_COLUMNS} FROM cases WHERE instance_id = ?"),
            vec![id.into()],
        ))
        .await?;
    row.map(|r| CaseRow::from_query_result(&r, "")).transpose()
}

/// The case rows of `ids` (those that are cases), in one query.
pub async fn case_rows(db: &impl ConnectionTrait, ids: &[String]) -> Result<Vec<CaseRow>, DbErr> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!("SELECT {CASE_COLUMNS} FROM cases WHERE instance_id IN ({})", vec!["?"; ids.len()].join(", "));
    crate::store::fetch(db, &sql, ids.iter().map(|i| i.clone().into()).collect()).await
}

async fn case_for(db: &impl ConnectionTrait, officer: &Claims, id: &str) -> Result<CaseRow, WindowError> {
    let case = case_row(db, id).await?.ok_or_else(|| WindowError::NotFound(format!("no case {id}")))?;
    if officer.department.as_deref() != Some(case.department.as_str()) {
        // Another department's case is not found, not forbidden.
        return Err(WindowError::NotFound(format!("no case {id}")));
    }
    Ok(case)
}

/// Records a deferred material as received; when the last one is in, the case moves on
/// (`materials_complete`) in the same transaction.
pub async fn submit_material(engine: &Engine, officer: &Claims, id: &str, code: &str, file_ref: &str) -> Result<InstanceRecord, WindowError> {
    let db = &engine.db;
    let now = engine.now();
    let case = case_for(db, officer, id).await?;
    if file_ref.trim().is_empty() {
        return Err(bad("fileRef", "give where the document is filed"));
    }
    let instance = instances::load(db, id).await?;
    let waiting = match case.mode.as_str() {
        "deferral" => matches!(instance.state.as_str(), "awaiting_materials" | "under_review" | "licensed_not_operating")
            && !(instance.definition_name == "material-deferral" && instance.state == "under_review"),
        "verification" => instance.state == "awaiting_supply",
        _ => false,
    };
    if !waiting {
        return Err(WindowError::Invalid(format!("the case is {}: it takes no materials", instance.state)));
    }
    let txn = store::begin_write(db).await?;
    let owed_status = if case.mode == "deferral" { "deferred" } else { "to_supply" };
    let updated = txn
        .execute_raw(stmt(
            &txn,
            "UPDATE case_materials SET status = 'received', file_ref = ?, received_by = ?, received_at = ? WHERE instance_id = ? AND code = ? AND status = ?",
            vec![file_ref.trim().into(), officer.sub.clone().into(), now.timestamp_millis().into(), id.into(), code.into(), owed_status.into()],
        ))
        .await?;
    if updated.rows_affected() == 0 {
        // Received already (a concurrent identical request won, or a repeat) is a state the
        // case has moved past, not a bad code.
        let received = txn
            .query_one_raw(stmt(&txn, "SELECT code FROM case_materials WHERE instance_id = ? AND code = ? AND status = 'received'", vec![id.into(), code.into()]))
            .await?
            .is_some();
        txn.rollback().await?;
        if received {
            return Err(WindowError::Invalid(format!("{code} has already been received for this case")));
        }
        return Err(bad("code", format!("{code} is not a material this case is waiting for")));
    }
    #[derive(FromQueryResult)]
    struct Owed {
        n: i64,
    }
    let owed = txn
        .query_one_raw(stmt(&txn, "SELECT COUNT(*) AS n FROM case_materials WHERE instance_id = ? AND status = ?", vec![id.into(), owed_status.into()]))
        .await?
        .map(|r| Owed::from_query_result(&r, ""))
        .transpose()?
        .map_or(0, |o| o.n);
    let actor = Actor::act(officer.sub.clone(), officer.roles.clone(), "submitMaterial");
    let record = if owed == 0 {
        #[derive(FromQueryResult)]
        struct Code {
            code: String,
        }
        let rows = txn
            .query_all_raw(stmt(&txn, "SELECT code FROM case_materials WHERE instance_id = ? AND status = 'received'", vec![id.into()]))
            .await?;
        let received: Vec<String> = rows.iter().filter_map(|r| Code::from_query_result(r, "").ok()).map(|c| c.code).collect();
        let event = if case.mode == "deferral" { "materials_complete" } else { "supplied" };
        instances::fire(&txn, &engine.workflows, id, event, &actor, &json!({"received": received}), None, now).await?.instance
    } else {
        instance
    };
    txn.commit().await?;
    Ok(record)
}

/// Issues the licence: the next number of the item's pattern, never reused, and the approval
/// event, in one transaction.
/// `opinion` is the approver's opinion (审批意见), kept with the decision in the archive handed to supervision.
pub async fn issue_licence(engine: &Engine, officer: &Claims, id: &str, opinion: Option<&str>) -> Result<(InstanceRecord, String), WindowError> {
    let db = &engine.db;
    let now = engine.now();
    let case = case_for(db, officer, id).await?;
    let item = catalogue::item(db, &case.item_code, Some(case.item_version))
        .await?
        .ok_or_else(|| WindowError::NotFound(format!("no approval item {} v{}", case.item_code, case.item_version)))?;
    // Credit can change after intake: checked again at decision time.
    let applicant = registry::applicant(db, &case.applicant_uscc).await?;
    let commitment_mode = case.mode != Mode::Ordinary.as_str();
    if commitment_mode && applicant.as_ref().is_some_and(|a| a.dishonest != 0) {
        return Err(WindowError::Refused {
            code: "INVALID_TRANSITION",
            reason: reason::CREDIT_BARRED,
            field: None,
            message: "the applicant has entered the dishonesty list since intake: the commitment route is closed".into(),
        });
    }
    let instance = instances::load(db, id).await?;
    let event = match (case.mode.as_str(), instance.state.as_str()) {
        ("after_the_fact", "intake") => "decide_on_spot",
        (_, "under_review" | "under_review_complete") => "approve",
        (_, state) => return Err(WindowError::Invalid(format!("the case is {state}: no licence can be issued"))),
    };
    let txn = store::begin_write(db).await?;
    let actor = Actor::act(officer.sub.clone(), officer.roles.clone(), "issueLicence");
    let fired = instances::fire(&txn, &engine.workflows, id, event, &actor, &json!({
        "licence_number": number_taken_last(),
        "decision": {"by": officer.sub, "name": officer.name, "at": now, "opinion": opinion.map(str::trim).filter(|o| !o.is_empty()).unwrap_or(if commitment_mode { "符合告知承诺审批条件，准予许可" } else { "经审查，符合法定条件、标准，准予许可" })},
    }), None, now).await;
    let fired = match fired {
        Ok(f) => f,
        Err(e) => {
            txn.rollback().await?;
            return Err(e.into());
        }
    };
    // Working days from intake to licence, counted now on the calendar in force (statistics).
    let tz = engine.workflows.env.tz;
    let opened = crate::store::millis::from_ms(case.created_at).with_timezone(&tz).date_naive();
    let days = engine.workflows.env.calendar.get().working_days_between(opened, now.with_timezone(&tz).date_naive()).ok();
    txn.execute_raw(stmt(
        &txn,
        "UPDATE cases SET licensed_at = ?, licence_working_days = ? WHERE instance_id = ?",
        vec![now.timestamp_millis().into(), days.into(), id.into()],
    ))
    .await?;
    crate::store::rollup::licensed(&txn, tz, id, days, now).await?;
    let mut instance = fired.instance;
    let number = take_number(&txn, engine, &item, &mut instance, fired.seq, now).await?;
    txn.commit().await?;
    Ok((instance, number))
}

/// What the approval's event carries for the licence number: the definitions' guard
/// (`payload_has:licence_number`) sees that the licence gets one, given by the system; the
/// number itself is taken after the event is written (`take_number`), sealed in `licences`, and
/// put on the case and into its context, replacing this.
pub fn number_taken_last() -> serde_json::Value {
    json!({ "assigned_by": "system" })
}

/// The licence's number, taken last before the commit: the item's sequence row for the year is
/// shared by every licence of the item, held by whoever takes a number until they commit, so it
/// is taken after everything else is written (a few statements and the commit, not the whole
/// approval). Gap-free, since a rolled-back transaction gives its number back. The number is
/// written with it, sealed (`licences`), on the case and into the instance's context; the
/// approval's event does not carry it.
async fn take_number(txn: &DatabaseTransaction, engine: &Engine, item: &catalogue::Item, instance: &mut InstanceRecord, event_seq: i64, now: DateTime<Utc>) -> Result<String, WindowError> {
    let year = now.with_timezone(&engine.workflows.env.tz).format("%Y").to_string();
    #[derive(FromQueryResult)]
    struct Seq {
        seq: i64,
    }
    let seq = txn
        .query_one_raw(stmt(
            txn,
            "INSERT INTO licence_sequences (item_code, year, next) VALUES (?, ?, 2) \
             ON CONFLICT (item_code, year) DO UPDATE SET next = licence_sequences.next + 1 RETURNING next - 1 AS seq",
            vec![item.code.clone().into(), year.parse::<i64>().unwrap_or_default().into()],
        ))
        .await?
        .map(|r| Seq::from_query_result(&r, ""))
        .transpose()?
        .map_or(1, |s| s.seq);
    let number = licence_number(&item.spec.licence_pattern, &item.code, &year, seq);
    let id = instance.id.as_str();
    let (seq_text, at) = (event_seq.to_string(), now.timestamp_millis());
    let mac = crate::store::seal::seal_of(&engine.workflows.audit, &crate::store::seal::LICENCES, &[id, &number, &seq_text, &at.to_string()]);
    txn.execute_raw(stmt(
        txn,
        "INSERT INTO licences (instance_id, number, event_seq, issued_at, mac) VALUES (?, ?, ?, ?, ?)",
        vec![id.into(), number.clone().into(), event_seq.into(), at.into(), mac.into()],
    ))
    .await?;
    txn.execute_raw(stmt(txn, "UPDATE cases SET licence_number = ? WHERE instance_id = ?", vec![number.clone().into(), id.into()])).await?;
    if let Some(context) = instance.context.as_object_mut() {
        context.insert("licence_number".into(), serde_json::Value::String(number.clone()));
    }
    let context = serde_json::to_string(&instance.context).map_err(|e| WindowError::Invalid(format!("the case's context: {e}")))?;
    txn.execute_raw(stmt(txn, "UPDATE workflow_instances SET context = ? WHERE id = ?", vec![context.into(), instance.id.clone().into()])).await?;
    Ok(number)
}

/// `{item}`, `{year}` and `{seq:0N}` (or `{seq}`) filled in.
pub fn licence_number(pattern: &str, item: &str, year: &str, seq: i64) -> String {
    let mut out = pattern.replace("{item}", item).replace("{year}", year);
    if let Some(start) = out.find("{seq") {
        if let Some(len) = out[start..].find('}') {
            let spec = &out[start + 4..start + len];
            let width: usize = spec.trim_start_matches(":0").trim_start_matches(':').parse().unwrap_or(0);
            out.replace_range(start..=start + len, &format!("{seq:0width$}"));
        }
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, async_graphql::Enum)]
pub enum ReturnCategory {
    /// The applicant's materials were incomplete or wrong.
    ApplicantMaterials,
    /// The officer's own error (counts toward the 15% rule).
    OfficerError,
    /// The item is configured wrongly (counts toward the item's 15%).
    ItemMisconfiguration,
}

impl ReturnCategory {
    pub fn as_str(self) -> &'static str {
        match self {
            ReturnCategory::ApplicantMaterials => "applicant_materials",
            ReturnCategory::OfficerError => "officer_error",
            ReturnCategory::ItemMisconfiguration => "item_misconfiguration",
        }
    }
}

/// Records a return (退件). Returns its id.
///
/// Without `case_id` the application is returned at intake, before any case is opened. With
/// it, that opened case is returned: it must be of this department and item and in a state its
/// workflow takes `return` from (not yet decided); it ends as `returned` in the transaction
/// that writes the return, so the return rule and the statistics count it like any other, and
/// a bundle hears its child has ended.
#[allow(clippy::too_many_arguments)]
pub async fn return_application(
    engine: &Engine,
    officer: &Claims,
    item_code: &str,
    applicant_uscc: Option<&str>,
    case_id: Option<&str>,
    category: ReturnCategory,
    reason: &str,
) -> Result<String, WindowError> {
    let db = &engine.db;
    let item = item_for_officer(db, officer, item_code).await?;
    quality::gate(db, &officer.sub).await?;
    let mut uscc = applicant_uscc.map(ids::uscc).transpose().map_err(|e| bad("applicantUscc", e.to_string()))?;
    if reason.trim().is_empty() {
        return Err(bad("reason", "say why the application is returned"));
    }
    let case = match case_id {
        None => None,
        Some(id) => {
            let case = case_for(db, officer, id).await?;
            if case.item_code != item.code {
                return Err(bad("itemCode", format!("case {id} is an application for {}, not {}", case.item_code, item.code)));
            }
            if let Some(given) = uscc.as_deref().filter(|u| *u != case.applicant_uscc) {
                return Err(bad("applicantUscc", format!("case {id} is the application of {}, not {given}", case.applicant_uscc)));
            }
            uscc = Some(case.applicant_uscc.clone());
            Some(case)
        }
    };
    let id = uuid::Uuid::now_v7().to_string();
    let now = engine.now();
    let txn = store::begin_write(db).await?;
    if let Some(case) = &case {
        let actor = Actor::act(officer.sub.clone(), officer.roles.clone(), "returnApplication");
        let payload = json!({"reason": reason.trim(), "return": {"id": id, "category": category.as_str(), "by": officer.sub}});
        // Whether the case can still be returned is the engine's to say, in this transaction.
        match instances::fire(&txn, &engine.workflows, &case.instance_id, "return", &actor, &payload, None, now).await {
            Ok(_) => {}
            Err(StoreError::Transition(TransitionError::UnknownEvent { definition, .. })) => {
                return Err(WindowError::Invalid(format!("case {} runs on a version of {definition} that knows no return of an opened case", case.instance_id)));
            }
            Err(StoreError::Transition(TransitionError::NotAllowedInState { state, .. })) => {
                return Err(WindowError::Invalid(format!("the case is {state}: only a case not yet decided can be returned")));
            }
            Err(e) => return Err(e.into()),
        }
    }
    txn.execute_raw(stmt(
        &txn,
        "INSERT INTO returns (id, item_code, applicant_uscc, officer, department, category, reason, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        vec![
            id.clone().into(),
            item.code.clone().into(),
            uscc.into(),
            officer.sub.clone().into(),
            item.department.clone().into(),
            category.as_str().into(),
            reason.trim().into(),
            now.timestamp_millis().into(),
        ],
    ))
    .await?;
    crate::store::rollup::returned(&txn, engine.workflows.env.tz, &item.department, &item.code, now).await?;
    quality::judge(&txn, &engine.workflows, &officer.sub, &judged(&item), now).await?;
    txn.commit().await?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    #[test]
    fn licence_numbers_fill_the_pattern() {
        assert_eq!(super::licence_number("JY{year}{seq:06}", "X", "2026", 42), "JY2026000042");
        assert_eq!(super::licence_number("{item}-{year}-{seq}", "310101-FOOD-01", "2026", 7), "310101-FOOD-01-2026-7");
    }
}
