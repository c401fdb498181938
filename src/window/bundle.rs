//! 一照通行 (issue #9; seeds 000 (五)–(九), 003 (一)1–4, 002 item 35): one application for a
//! business licence and the operating licences an enterprise needs. A bundle is a workflow
//! instance (`workflows/bundle.toml`) whose children are rows of `bundle_children`, opened in the
//! order its definition's `[[children]]` declare: `advance` (the `bundle:advance` effect) starts
//! each child whose prerequisites hold, in the transaction of the event that made them hold, and
//! says when every child has ended. An enterprise being established lives in `establishments`
//! until its registration gives it a unified social credit code; deregistering that business
//! licence ends every running case and every licence of the enterprise in one transaction,
//! without a breach.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseTransaction, FromQueryResult};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::catalogue::{self, FormFieldSpec, Item, Mode};
use super::intake::{self, bad, end_of_working_day, MaterialInput, MaterialStatus, OpenCaseInput, WindowError};
use super::registry::{self, Applicant};
use crate::auth::Claims;
use crate::domain::ids;
use crate::runtime::Engine;
use crate::store::{self, fetch, instances, stmt, InstanceRecord, StoreError};
use crate::workflow::{Actor, Definition};

/// The bundle's own workflow and the registration's.
pub const BUNDLE: &str = "bundle";
pub const REGISTRATION: &str = "business-registration";

/// What a registration asks, beside the items' fields (a code shared with an item is asked once).
pub fn registration_fields() -> Vec<FormFieldSpec> {
    [("premises_address", "住所（经营场所）"), ("business_scope", "经营范围"), ("registered_capital", "注册资本（万元）")]
        .into_iter()
        .map(|(code, name)| FormFieldSpec { code: code.into(), name: name.into() })
        .collect()
}

#[derive(Debug, Clone, async_graphql::InputObject)]
pub struct EstablishmentInput {
    /// The name reserved for the enterprise (名称自主申报).
    pub reserved_name: String,
    pub legal_representative: String,
    /// The legal representative's resident ID number (check character included).
    pub legal_representative_id: String,
    /// The department that registers enterprises (market regulation).
    pub registration_department: String,
    pub email: Option<String>,
    pub mobile: Option<String>,
}

#[derive(Debug, Clone, async_graphql::InputObject)]
pub struct BundleItemInput {
    pub item_code: String,
    pub mode: Mode,
    /// The item's materials; a business licence the bundle itself issues is not listed.
    pub materials: Vec<MaterialInput>,
    pub deferral_working_days: Option<i64>,
}

#[derive(Debug, Clone, async_graphql::InputObject)]
pub struct FieldValueInput {
    pub code: String,
    pub value: String,
}

#[derive(Debug, Clone, async_graphql::InputObject)]
pub struct OpenBundleInput {
    /// A registered enterprise's code; leave out for one being established.
    pub applicant_uscc: Option<String>,
    /// An enterprise being established: its business licence is applied for in the bundle.
    pub establishment: Option<EstablishmentInput>,
    pub items: Vec<BundleItemInput>,
    /// One value for each field of the bundle's form (`bundleForm`).
    pub fields: Vec<FieldValueInput>,
    /// Who signed the commitments for the applicant.
    pub signed_by: String,
}

/// A material as kept in a waiting child's request.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredMaterial {
    code: String,
    status: String,
    file_ref: Option<String>,
    licence_number: Option<String>,
}

/// What a child is opened with once its prerequisites hold.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Request {
    item_code: Option<String>,
    item_version: Option<i64>,
    mode: Option<Mode>,
    deferral_working_days: Option<i64>,
    #[serde(default)]
    materials: Vec<StoredMaterial>,
    #[serde(default)]
    fields: BTreeMap<String, String>,
    /// For the registration: who is being established.
    establishment: Option<Value>,
}

impl StoredMaterial {
    fn input(&self) -> MaterialInput {
        let status = match self.status.as_str() {
            "deferred" => MaterialStatus::Deferred,
            "to_verify" => MaterialStatus::ToVerify,
            _ => MaterialStatus::Provided,
        };
        MaterialInput { code: self.code.clone(), status, file_ref: self.file_ref.clone(), licence_number: self.licence_number.clone() }
    }
}

/// One field of a bundle's form and the items that ask it.
#[derive(Debug, Clone, PartialEq, Eq, async_graphql::SimpleObject)]
pub struct FormField {
    pub code: String,
    pub name: String,
    /// Item codes asking it (`BUSINESS_LICENCE` for the registration).
    pub items: Vec<String>,
}

/// The label the registration's fields are listed under.
pub const BUSINESS_LICENCE: &str = "BUSINESS_LICENCE";

/// The union of the fields of `items` (and the registration's), each code once, in the order
/// first asked.
pub fn form(items: &[Item], establishment: bool) -> Vec<FormField> {
    let mut out: Vec<FormField> = Vec::new();
    let registration = establishment.then(|| (BUSINESS_LICENCE.to_string(), registration_fields()));
    let asked = registration.into_iter().chain(items.iter().map(|i| (i.code.clone(), i.spec.fields.clone())));
    for (by, fields) in asked {
        for f in fields {
            match out.iter_mut().find(|o| o.code == f.code) {
                Some(o) if !o.items.contains(&by) => o.items.push(by.clone()),
                Some(_) => {}
                None => out.push(FormField { code: f.code, name: f.name, items: vec![by.clone()] }),
            }
        }
    }
    out
}

/// The newest version of each item code, or BAD_USER_INPUT naming `field`.
pub async fn items_named(db: &impl ConnectionTrait, codes: &[String], field: &'static str) -> Result<Vec<Item>, WindowError> {
    let mut items = Vec::new();
    for (i, code) in codes.iter().enumerate() {
        if codes[..i].contains(code) {
            return Err(bad(field, format!("{code} is listed twice")));
        }
        let item = catalogue::item(db, code, None).await?.ok_or_else(|| bad(field, format!("no approval item {code}")))?;
        items.push(item);
    }
    Ok(items)
}

#[derive(FromQueryResult)]
struct StaffContact {
    name: String,
    email: Option<String>,
}

/// Takes a bundled application at a (comprehensive) window: checks the whole form and every
/// item as the departments will, then writes the bundle, its children's requests and the
/// children that may start at once, in one transaction.
pub async fn open_bundle(engine: &Engine, officer: &Claims, input: OpenBundleInput) -> Result<InstanceRecord, WindowError> {
    let db = &engine.db;
    let now = engine.now();
    let wf = &engine.workflows;
    let def = wf.set.latest(BUNDLE).ok_or_else(|| StoreError::UnknownDefinition { name: BUNDLE.into(), version: None })?;
    let actor = Actor::act(officer.sub.clone(), officer.roles.clone(), "openBundle");
    let window_department = officer.department.clone().ok_or_else(|| WindowError::Forbidden("a window officer of no department takes no applications".into()))?;
    let window_department = registry::department(db, &window_department).await?.ok_or_else(|| WindowError::NotFound(format!("no department {window_department}")))?;
    if input.signed_by.trim().is_empty() {
        return Err(bad("signedBy", "the commitments must be signed"));
    }

    // Who applies: a registered enterprise, or one being established (never both).
    let (applicant, establishment) = match (&input.applicant_uscc, &input.establishment) {
        (Some(code), None) => {
            let uscc = ids::uscc(code).map_err(|e| bad("applicantUscc", e.to_string()))?;
            let a = registry::applicant(db, &uscc).await?.ok_or_else(|| WindowError::NotFound(format!("no applicant {uscc}")))?;
            (a, None)
        }
        (None, Some(e)) => {
            let id = ids::resident_id(&e.legal_representative_id).map_err(|err| bad("legalRepresentativeId", err.to_string()))?;
            if e.reserved_name.trim().is_empty() {
                return Err(bad("reservedName", "give the reserved name"));
            }
            if e.legal_representative.trim().is_empty() {
                return Err(bad("legalRepresentative", "give the legal representative's name"));
            }
            let dept = registry::department(db, &e.registration_department).await?.ok_or_else(|| bad("registrationDepartment", format!("no department {}", e.registration_department)))?;
            // Checked as the departments will see it once registered: a new enterprise has no record.
            let provisional = Applicant {
                uscc: String::new(),
                name: e.reserved_name.trim().into(),
                legal_representative: e.legal_representative.trim().into(),
                email: e.email.clone(),
                mobile: e.mobile.clone(),
                credit_tier: NEW_ENTERPRISE_TIER.into(),
                dishonest: 0,
            };
            (provisional, Some((e.clone(), id, dept)))
        }
        _ => return Err(bad("applicantUscc", "give either the applicant's unified social credit code or the enterprise being established")),
    };
    if input.items.is_empty() && establishment.is_none() {
        return Err(bad("items", "a bundle holds at least one approval item"));
    }
    let codes: Vec<String> = input.items.iter().map(|i| i.item_code.clone()).collect();
    let items = items_named(db, &codes, "items").await?;
    // The window routes only to its own region's departments: another region's catalogue and
    // registration authorities are not its to know of (not found, as in the listings).
    let routed = items.iter().map(|i| (format!("approval item {}", i.code), i.department.as_str()));
    let routed = routed.chain(establishment.iter().map(|(e, _, _)| (format!("registration department {}", e.registration_department), e.registration_department.as_str())));
    for (what, department) in routed {
        let region = registry::department(db, department).await?.map(|d| d.region);
        if region.as_deref() != Some(window_department.region.as_str()) {
            return Err(WindowError::Refused { code: "NOT_FOUND", reason: crate::domain::reason::OUT_OF_SCOPE, field: None, message: format!("no {what}") });
        }
    }

    // One form: every field of the union once, nothing else.
    let form = form(&items, establishment.is_some());
    let mut values = BTreeMap::new();
    for v in &input.fields {
        if !form.iter().any(|f| f.code == v.code) {
            return Err(bad("fields", format!("{} is not a field of this application", v.code)));
        }
        if v.value.trim().is_empty() {
            return Err(bad("fields", format!("{} must not be empty", v.code)));
        }
        if values.insert(v.code.clone(), v.value.trim().to_string()).is_some() {
            return Err(bad("fields", format!("{} is given twice", v.code)));
        }
    }
    if let Some(missing) = form.iter().find(|f| !values.contains_key(&f.code)) {
        return Err(bad("fields", format!("{} ({}) is missing", missing.name, missing.code)));
    }

    // Each item checked now, as its department will when it starts.
    let mut requests = Vec::new();
    for (item, given) in items.iter().zip(&input.items) {
        let materials = bundle_materials(item, &given.materials, establishment.is_some())?;
        let open = OpenCaseInput {
            applicant_uscc: applicant.uscc.clone(),
            item_code: item.code.clone(),
            mode: given.mode,
            materials: materials.iter().map(StoredMaterial::input).collect(),
            deferral_working_days: given.deferral_working_days,
            signed_by: input.signed_by.clone(),
        };
        let mut checked = applicant.clone();
        if checked.uscc.is_empty() {
            checked.uscc = "(待核发)".into();
        }
        intake::prepare(db, &wf.env, &officer.sub, &actor, item.clone(), &checked, open, now).await.map_err(|e| in_item(e, &item.code))?;
        let fields = item.spec.fields.iter().filter_map(|f| values.get(&f.code).map(|v| (f.code.clone(), v.clone()))).collect();
        requests.push(Request {
            item_code: Some(item.code.clone()),
            item_version: Some(item.version),
            mode: Some(given.mode),
            deferral_working_days: given.deferral_working_days,
            materials,
            fields,
            establishment: None,
        });
    }

    // One limit: a working day for simple items, the longest of the items' own otherwise.
    let days = items.iter().filter_map(|i| i.spec.time_limit_working_days).max().unwrap_or(1).max(1);
    let today = now.with_timezone(&wf.env.tz).date_naive();
    let (due, _) = end_of_working_day(&wf.env, today, days).map_err(|m| bad("items", m))?;

    let contact = fetch::<StaffContact>(db, "SELECT name, email FROM staff WHERE id = ?", vec![officer.sub.clone().into()]).await?.into_iter().next();
    let window = json!({"code": officer.sub, "name": contact.as_ref().map(|c| c.name.clone()).or(officer.name.clone()), "email": contact.and_then(|c| c.email)});
    let uscc = (!applicant.uscc.is_empty()).then(|| applicant.uscc.clone());
    let context = json!({
        "scope": {"region": window_department.region, "department": window_department.code},
        "applicant": {"uscc": uscc, "name": applicant.name, "email": applicant.email, "mobile": applicant.mobile},
        "window": window,
        "officer": {"sub": officer.sub, "roles": officer.roles},
        "signed_by": input.signed_by.trim(),
        "fields": values,
        "limit_working_days": days,
    });

    let txn = store::begin_write(db).await?;
    let bundle = instances::start(&txn, wf, BUNDLE, context, BTreeMap::from([("bundle_due".to_string(), due)]), &actor, None, now).await?;
    let mut position = 0i64;
    let mut add = |kind: &str, item: Option<&str>, request: &Request| {
        position += 1;
        (position, kind.to_string(), item.map(str::to_string), serde_json::to_string(request).unwrap_or_default())
    };
    let mut rows = Vec::new();
    if let Some((e, id, dept)) = &establishment {
        let kind = def.kind_started_by(REGISTRATION).ok_or_else(|| bad("establishment", "this bundle's definition opens no business licence"))?;
        let fields = registration_fields().into_iter().filter_map(|f| values.get(&f.code).map(|v| (f.code, v.clone()))).collect();
        let establishment = json!({"reserved_name": e.reserved_name.trim(), "legal_representative": e.legal_representative.trim(), "legal_representative_id": id,
                                   "department": dept.code, "email": e.email, "mobile": e.mobile});
        rows.push(add(&kind.kind, None, &Request { fields, establishment: Some(establishment), ..Request::default() }));
    }
    let catalogue_kind = def.catalogue_kind().ok_or_else(|| bad("items", "this bundle's definition takes no approval items"))?.kind.clone();
    for r in &requests {
        rows.push(add(&catalogue_kind, r.item_code.as_deref(), r));
    }
    for (position, kind, item, request) in rows {
        txn.execute_raw(stmt(
            &txn,
            "INSERT INTO bundle_children (bundle_id, position, kind, item_code, request, status) VALUES (?, ?, ?, ?, ?, 'waiting')",
            vec![bundle.id.clone().into(), position.into(), kind.into(), item.into(), request.into()],
        ))
        .await?;
    }
    advance(&txn, wf, &def, &bundle.id, now).await?;
    txn.commit().await?;
    Ok(bundle)
}

/// A new enterprise's standing: no credit record yet, so the ordinary tier.
const NEW_ENTERPRISE_TIER: &str = "B";

/// An item's refusal, naming the item.
fn in_item(e: WindowError, code: &str) -> WindowError {
    match e {
        WindowError::BadInput { field, message } => WindowError::BadInput { field, message: format!("{code}: {message}") },
        WindowError::Refused { code: c, reason, field, message } => WindowError::Refused { code: c, reason, field, message: format!("{code}: {message}") },
        WindowError::NotFound(m) => WindowError::NotFound(format!("{code}: {m}")),
        WindowError::Forbidden(m) => WindowError::Forbidden(format!("{code}: {m}")),
        WindowError::Invalid(m) => WindowError::Invalid(format!("{code}: {m}")),
        other => other,
    }
}

/// The item's materials as given, and — when the bundle issues the business licence itself —
/// the business licence filled in by the bundle when the child starts.
fn bundle_materials(item: &Item, given: &[MaterialInput], issues_licence: bool) -> Result<Vec<StoredMaterial>, WindowError> {
    let mut out = Vec::new();
    for spec in &item.spec.materials {
        let from_bundle = issues_licence && spec.licence_kind.as_deref() == Some("business_licence");
        let listed: Vec<&MaterialInput> = given.iter().filter(|m| m.code == spec.code).collect();
        if from_bundle {
            if !listed.is_empty() {
                return Err(bad("materials", format!("{}: {} is issued in this bundle: do not list it", item.code, spec.name)));
            }
            out.push(StoredMaterial { code: spec.code.clone(), status: "provided".into(), file_ref: None, licence_number: None });
        } else if let [m] = listed.as_slice() {
            out.push(StoredMaterial { code: m.code.clone(), status: m.status.as_str().into(), file_ref: m.file_ref.clone(), licence_number: m.licence_number.clone() });
        } else {
            return Err(bad("materials", format!("{}: material {} ({}) must be listed exactly once", item.code, spec.code, spec.name)));
        }
    }
    if let Some(extra) = given.iter().find(|m| !item.spec.materials.iter().any(|s| s.code == m.code)) {
        return Err(bad("materials", format!("{}: {} is not a material of {}", item.code, extra.code, item.name)));
    }
    Ok(out)
}

#[derive(Debug, Clone, FromQueryResult)]
pub struct ChildRow {
    pub position: i64,
    pub kind: String,
    pub item_code: Option<String>,
    pub request: String,
    /// `waiting`, `started` or `not_started`.
    pub status: String,
    pub instance_id: Option<String>,
    pub note: Option<String>,
}

pub async fn children(db: &impl ConnectionTrait, bundle_id: &str) -> Result<Vec<ChildRow>, sea_orm::DbErr> {
    fetch(db, "SELECT position, kind, item_code, request, status, instance_id, note FROM bundle_children WHERE bundle_id = ? ORDER BY position", vec![bundle_id.into()]).await
}

/// Where a started child stands, as the bundle sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    pub state: String,
    /// Licensed (or registered): what dependants wait for.
    pub approved: bool,
    /// Licensed, or in a final state: the bundle no longer waits for it.
    pub ended: bool,
    pub licence_number: Option<String>,
}

pub async fn standing(db: &impl ConnectionTrait, wf: &instances::Workflows, instance_id: &str) -> Result<Standing, StoreError> {
    let child = instances::load(db, instance_id).await?;
    let is_final = wf.set.get(&child.definition_name, child.definition_version).is_some_and(|d| d.is_final(&child.state));
    #[derive(FromQueryResult)]
    struct Licence {
        number: Option<String>,
    }
    let sql = if child.definition_name == REGISTRATION {
        "SELECT uscc AS number FROM establishments WHERE registration_id = ?"
    } else {
        "SELECT licence_number AS number FROM cases WHERE instance_id = ?"
    };
    let number = fetch::<Licence>(db, sql, vec![instance_id.into()]).await?.into_iter().next().and_then(|l| l.number);
    // A licence once issued approved the child, whatever became of it later.
    let approved = number.is_some();
    Ok(Standing { ended: approved || is_final, approved, licence_number: number, state: child.state })
}

/// Starts every waiting child of `bundle_id` whose prerequisites hold, marks those whose
/// prerequisites can no longer hold, and answers whether every child has ended. Runs in the
/// caller's transaction (the event that changed a child, or the bundle's intake).
/// The window's handler of `bundle:advance`, which the application registers with the store.
pub struct Advance;

impl crate::store::workflows::EffectHandler for Advance {
    fn run<'a>(&'a self, txn: &'a DatabaseTransaction, wf: &'a instances::Workflows, def: &'a Definition, id: &'a str, now: DateTime<Utc>) -> crate::store::workflows::EffectFuture<'a> {
        Box::pin(advance(txn, wf, def, id, now))
    }
}

pub async fn advance(db: &DatabaseTransaction, wf: &instances::Workflows, def: &Definition, bundle_id: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
    let bundle = instances::load(db, bundle_id).await?;
    let rows = children(db, bundle_id).await?;
    let mut standings: BTreeMap<i64, Standing> = BTreeMap::new();
    for r in &rows {
        if let Some(id) = &r.instance_id {
            standings.insert(r.position, standing(db, wf, id).await?);
        }
    }
    let mut uscc = bundle.context["applicant"]["uscc"].as_str().map(str::to_string);
    if uscc.is_none() {
        #[derive(FromQueryResult)]
        struct Code {
            uscc: String,
        }
        uscc = fetch::<Code>(db, "SELECT uscc FROM establishments WHERE bundle_id = ? AND uscc IS NOT NULL", vec![bundle_id.into()]).await?.into_iter().next().map(|c| c.uscc);
    }
    let mut not_started: Vec<i64> = rows.iter().filter(|r| r.status == "not_started").map(|r| r.position).collect();
    for r in rows.iter().filter(|r| r.status == "waiting") {
        let after = def.children.iter().find(|k| k.kind == r.kind).map(|k| k.after.clone()).unwrap_or_default();
        let prerequisites: Vec<&ChildRow> = rows.iter().filter(|p| after.contains(&p.kind)).collect();
        let failed = prerequisites.iter().find(|p| not_started.contains(&p.position) || standings.get(&p.position).is_some_and(|s| s.ended && !s.approved));
        if let Some(p) = failed {
            let note = format!("not started: {} ended without a licence", p.item_code.as_deref().unwrap_or(&p.kind));
            mark(db, bundle_id, r.position, "not_started", None, Some(&note), now).await?;
            not_started.push(r.position);
            continue;
        }
        if !prerequisites.iter().all(|p| standings.get(&p.position).is_some_and(|s| s.approved)) {
            continue;
        }
        let request: Request = serde_json::from_str(&r.request).map_err(|e| StoreError::Corrupt(format!("bundle {bundle_id} child {}: {e}", r.position)))?;
        let started = match (&r.item_code, &request.establishment) {
            (None, Some(e)) => Ok(start_registration(db, wf, &bundle, e, &request, now).await?),
            (Some(_), _) => match &uscc {
                // The operating licences need the enterprise's code (seed 000 (八)).
                None => continue,
                Some(code) => start_case(db, wf, &bundle, &request, code, now).await,
            },
            (None, None) => return Err(StoreError::Corrupt(format!("bundle {bundle_id} child {} names nothing to open", r.position))),
        };
        match started {
            Ok(id) => {
                mark(db, bundle_id, r.position, "started", Some(&id), None, now).await?;
                standings.insert(r.position, standing(db, wf, &id).await?);
            }
            Err(WindowError::Store(e)) => return Err(e),
            // Refused now (the applicant's credit or standing changed since intake): the others go on.
            Err(e) => {
                mark(db, bundle_id, r.position, "not_started", None, Some(&format!("not started: {e}")), now).await?;
                not_started.push(r.position);
            }
        }
    }
    Ok(rows.iter().all(|r| not_started.contains(&r.position) || standings.get(&r.position).is_some_and(|s| s.ended)))
}

async fn mark(db: &impl ConnectionTrait, bundle_id: &str, position: i64, status: &str, instance: Option<&str>, note: Option<&str>, now: DateTime<Utc>) -> Result<(), sea_orm::DbErr> {
    db.execute_raw(stmt(
        db,
        "UPDATE bundle_children SET status = ?, instance_id = ?, note = ?, started_at = ? WHERE bundle_id = ? AND position = ?",
        vec![status.into(), instance.into(), note.into(), instance.map(|_| now.timestamp_millis()).into(), bundle_id.into(), position.into()],
    ))
    .await?;
    Ok(())
}

/// The window officer who took the bundle, acting through it.
fn officer_of(bundle: &InstanceRecord) -> (String, Actor) {
    let sub = bundle.context["officer"]["sub"].as_str().unwrap_or("system").to_string();
    let roles = bundle.context["officer"]["roles"].as_array().map(|r| r.iter().filter_map(|x| x.as_str().map(str::to_string)).collect()).unwrap_or_default();
    (sub.clone(), Actor::act(sub, roles, "openBundle"))
}

/// What a child shares with its bundle: the bundle, the window to escalate to, its fields.
fn shared(bundle: &InstanceRecord, request: &Request) -> Value {
    json!({"bundle": {"id": bundle.id, "due": bundle.deadlines.get("bundle_due")}, "window": bundle.context["window"], "fields": request.fields})
}

async fn start_case(db: &DatabaseTransaction, wf: &instances::Workflows, bundle: &InstanceRecord, request: &Request, uscc: &str, now: DateTime<Utc>) -> Result<String, WindowError> {
    let code = request.item_code.clone().unwrap_or_default();
    let item = catalogue::item(db, &code, request.item_version).await?.ok_or_else(|| WindowError::NotFound(format!("no approval item {code}")))?;
    let applicant = registry::applicant(db, uscc).await?.ok_or_else(|| WindowError::NotFound(format!("no applicant {uscc}")))?;
    let (officer, actor) = officer_of(bundle);
    // The business licence the bundle issued is the material it stands for.
    let materials = request
        .materials
        .iter()
        .map(|m| {
            let mut m = m.input();
            if m.file_ref.is_none() && item.spec.materials.iter().any(|s| s.code == m.code && s.licence_kind.as_deref() == Some("business_licence")) {
                m.file_ref = Some(format!("营业执照 {uscc}"));
            }
            m
        })
        .collect();
    let input = OpenCaseInput {
        applicant_uscc: uscc.into(),
        item_code: code.clone(),
        mode: request.mode.unwrap_or(Mode::AfterTheFact),
        materials,
        deferral_working_days: request.deferral_working_days,
        signed_by: bundle.context["signed_by"].as_str().unwrap_or_default().into(),
    };
    let mut prepared = intake::prepare(db, &wf.env, &officer, &actor, item, &applicant, input, now).await?;
    if let (Some(ctx), Value::Object(extra)) = (prepared.context.as_object_mut(), shared(bundle, request)) {
        ctx.extend(extra);
    }
    Ok(intake::write(db, wf, prepared, Some(&bundle.id), now).await?.id)
}

async fn start_registration(db: &DatabaseTransaction, wf: &instances::Workflows, bundle: &InstanceRecord, e: &Value, request: &Request, now: DateTime<Utc>) -> Result<String, StoreError> {
    let text = |k: &str| e[k].as_str().unwrap_or_default().to_string();
    let department = registry::department(db, &text("department")).await?.ok_or_else(|| StoreError::Corrupt(format!("bundle {}: no department {}", bundle.id, text("department"))))?;
    let mut context = json!({
        "scope": {"region": department.region, "department": department.code},
        "applicant": {"name": text("reserved_name"), "email": e["email"], "mobile": e["mobile"]},
        "item": {"code": BUSINESS_LICENCE, "name": "营业执照（设立登记）"},
        "establishment": {"reserved_name": text("reserved_name"), "legal_representative": text("legal_representative")},
        "department": {"code": department.code, "name": department.name, "email": department.email},
    });
    if let (Some(ctx), Value::Object(extra)) = (context.as_object_mut(), shared(bundle, request)) {
        ctx.extend(extra);
    }
    let (_, actor) = officer_of(bundle);
    let started = instances::start(db, wf, REGISTRATION, context, BTreeMap::new(), &actor, Some(bundle.id.clone()), now).await?;
    db.execute_raw(stmt(
        db,
        "INSERT INTO establishments (registration_id, bundle_id, reserved_name, legal_representative, legal_representative_id, department, email, mobile, uscc, registered_at, created_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, ?)",
        vec![
            started.id.clone().into(),
            bundle.id.clone().into(),
            text("reserved_name").into(),
            text("legal_representative").into(),
            text("legal_representative_id").into(),
            department.code.into(),
            e["email"].as_str().map(str::to_string).into(),
            e["mobile"].as_str().map(str::to_string).into(),
            now.timestamp_millis().into(),
        ],
    ))
    .await?;
    Ok(started.id)
}

#[derive(Debug, Clone, FromQueryResult)]
pub struct Establishment {
    pub registration_id: String,
    pub bundle_id: String,
    pub reserved_name: String,
    pub legal_representative: String,
    pub department: String,
    pub email: Option<String>,
    pub mobile: Option<String>,
    pub uscc: Option<String>,
}

pub async fn establishment(db: &impl ConnectionTrait, column: &str, value: &str) -> Result<Option<Establishment>, sea_orm::DbErr> {
    let sql = format!(
        "SELECT registration_id, bundle_id, reserved_name, legal_representative, department, email, mobile, uscc FROM establishments WHERE {column} = ?"
    );
    Ok(fetch(db, &sql, vec![value.into()]).await?.into_iter().next())
}

/// Registers an enterprise being established: its unified social credit code (the number its
/// business licence carries) is assigned, the enterprise enters the registry with its business
/// licence in the electronic library, and the registration is approved — one transaction. The
/// bundle hears of it and starts the operating licences.
pub async fn register(engine: &Engine, officer: &Claims, registration_id: &str, opinion: Option<&str>) -> Result<(InstanceRecord, String), WindowError> {
    let db = &engine.db;
    let now = engine.now();
    let not_found = || WindowError::NotFound(format!("no registration {registration_id}"));
    let e = establishment(db, "registration_id", registration_id).await?.ok_or_else(not_found)?;
    if officer.department.as_deref() != Some(e.department.as_str()) {
        return Err(not_found());
    }
    let instance = instances::load(db, registration_id).await?;
    if instance.state != "under_review" {
        return Err(WindowError::Invalid(format!("the registration is {}: it cannot be approved", instance.state)));
    }
    let region = registry::department(db, &e.department).await?.map(|d| d.region).unwrap_or_default();
    let txn = store::begin_write(db).await?;
    #[derive(FromQueryResult)]
    struct Seq {
        seq: i64,
    }
    let seq = fetch::<Seq>(
        &txn,
        "INSERT INTO licence_sequences (item_code, year, next) VALUES (?, 0, 2) \
         ON CONFLICT (item_code, year) DO UPDATE SET next = licence_sequences.next + 1 RETURNING next - 1 AS seq",
        vec![format!("uscc:{region}").into()],
    )
    .await?
    .first()
    .map_or(1, |s| s.seq);
    let uscc = ids::new_uscc(&region, seq as u64).ok_or_else(|| WindowError::Invalid(format!("no unified social credit code can be assigned in division {region:?}")))?;
    let applicant = Applicant {
        uscc: uscc.clone(),
        name: e.reserved_name.clone(),
        legal_representative: e.legal_representative.clone(),
        email: e.email.clone(),
        mobile: e.mobile.clone(),
        credit_tier: NEW_ENTERPRISE_TIER.into(),
        dishonest: 0,
    };
    registry::put_applicant(&txn, &engine.workflows.audit, &applicant, now).await?;
    // The region that registered the enterprise is its home region (api::policy).
    registry::adopt(&txn, &engine.workflows.audit, &uscc, &region).await?;
    registry::put_electronic_licence(
        &txn,
        &registry::ElectronicLicence { holder_uscc: uscc.clone(), kind: "business_licence".into(), number: uscc.clone(), valid_until: "9999-12-31".into(), revoked: 0 },
    )
    .await?;
    txn.execute_raw(stmt(&txn, "UPDATE establishments SET uscc = ?, registered_at = ? WHERE registration_id = ?", vec![uscc.clone().into(), now.timestamp_millis().into(), registration_id.into()])).await?;
    let actor = Actor::act(officer.sub.clone(), officer.roles.clone(), "registerEnterprise");
    let payload = json!({
        "uscc": uscc,
        "licence_number": uscc,
        "applicant": {"uscc": uscc, "name": e.reserved_name, "email": e.email, "mobile": e.mobile},
        "decision": {"by": officer.sub, "name": officer.name, "at": now, "opinion": opinion.map(str::trim).filter(|o| !o.is_empty()).unwrap_or("符合设立登记条件，准予登记")},
    });
    let fired = instances::fire(&txn, &engine.workflows, registration_id, "approve", &actor, &payload, None, now).await?;
    txn.commit().await?;
    Ok((fired.instance, uscc))
}

/// What a deregistration ended, and what it could not (an instance on a definition version
/// that knows no deregistration).
#[derive(Debug, Clone, Default)]
pub struct Deregistered {
    pub ended: Vec<String>,
    /// Closed cases (commitment kept): their licence lapses with the business licence, recorded
    /// by an internal `deregister` on the closed case, which stays closed.
    pub lapsed: Vec<String>,
    pub not_ended: Vec<(String, String)>,
}

/// Deregisters the business licence of `uscc` (seed 002 item 35): the registration, every
/// running case of the enterprise and its active licences (those of closed cases too) end in
/// one transaction, each with its audit event and notice — as deregistered, not as a breach (no
/// credit record) where nothing is owed. What is owed stays owed (issue #18, current versions):
/// a case before a revocation decision records its breach as it ends, and a supervision task in
/// rectification records its breach when the case's end reaches it (`case_deregistered`).
pub async fn deregister(engine: &Engine, officer: &Claims, uscc: &str, reason: &str) -> Result<Deregistered, WindowError> {
    let db = &engine.db;
    let now = engine.now();
    let wf = &engine.workflows;
    let uscc = ids::uscc(uscc).map_err(|e| bad("uscc", e.to_string()))?;
    if reason.trim().is_empty() {
        return Err(bad("reason", "say why the business licence is deregistered"));
    }
    registry::applicant(db, &uscc).await?.ok_or_else(|| WindowError::NotFound(format!("no applicant {uscc}")))?;
    let department = officer.department.clone().ok_or_else(|| WindowError::Forbidden("an approver of no department deregisters nothing".into()))?;
    let registration = establishment(db, "uscc", &uscc).await?;
    if let Some(e) = &registration {
        if e.department != department {
            return Err(WindowError::Forbidden(format!("the business licence of {uscc} was registered by {}, not your department", e.department)));
        }
    }
    if registry::is_deregistered(db, &uscc).await? {
        return Err(WindowError::Invalid(format!("the business licence of {uscc} is already deregistered")));
    }
    #[derive(FromQueryResult)]
    struct Id {
        id: String,
        definition_name: String,
        definition_version: i64,
        state: String,
    }
    let mut running: Vec<Id> = fetch(
        db,
        "SELECT i.id, i.definition_name, i.definition_version, i.state FROM cases c JOIN workflow_instances i ON i.id = c.instance_id \
         WHERE c.applicant_uscc = ? ORDER BY i.created_at, i.id",
        vec![uscc.clone().into()],
    )
    .await?;
    if let Some(e) = &registration {
        running.extend(fetch::<Id>(db, "SELECT id, definition_name, definition_version, state FROM workflow_instances WHERE id = ?", vec![e.registration_id.clone().into()]).await?);
    }
    // The system ends them, as the consequence of this officer's act.
    let actor = Actor::act(officer.sub.clone(), vec!["system".into()], "deregisterBusinessLicence");
    let payload = json!({"reason": reason.trim(), "cause": "deregistered", "business_licence": uscc, "by": officer.sub});
    let txn = store::begin_write(db).await?;
    let mut out = Deregistered::default();
    for r in running {
        let ended = wf.set.get(&r.definition_name, r.definition_version).is_some_and(|d| d.is_final(&r.state));
        // A closed case's licence is in force (its commitment was kept), so it lapses with the
        // business licence and is told so; any other end holds no licence and is left alone.
        if ended && r.state != "closed" {
            continue;
        }
        match instances::fire(&txn, wf, &r.id, "deregister", &actor, &payload, None, now).await {
            Ok(_) if ended => out.lapsed.push(r.id),
            Ok(_) => out.ended.push(r.id),
            // A definition version that knows no deregistration (of a closed case, or at all).
            Err(StoreError::Transition(e)) => out.not_ended.push((r.id, e.to_string())),
            Err(e) => return Err(e.into()),
        }
    }
    // Every licence the enterprise holds stands on its business licence (seed 002 item 35).
    txn.execute_raw(stmt(&txn, "UPDATE electronic_licences SET revoked = 1 WHERE holder_uscc = ?", vec![uscc.clone().into()])).await?;
    txn.execute_raw(stmt(
        &txn,
        "INSERT INTO deregistrations (uscc, reason, officer, department, ended, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        vec![uscc.into(), reason.trim().into(), officer.sub.clone().into(), department.into(), serde_json::to_string(&out.ended).unwrap_or_default().into(), now.timestamp_millis().into()],
    ))
    .await?;
    txn.commit().await?;
    Ok(out)
}
