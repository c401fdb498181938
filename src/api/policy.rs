//! One authorization policy: for a caller and an act, whether it may touch which object.
//!
//! - `resolve` turns a verified token into the caller the policy judges: a staff member's
//!   region, department and division are those the staff registry (`staff`) records for the
//!   token's subject — a token claiming anything else, or a subject not registered, is refused
//!   — and an applicant is its `uscc` claim.
//! - The constructors below are the only way to get a `Scoped<T>`: the target loaded with the
//!   caller's scope as an argument of the lookup, the role checked for the act. A target
//!   outside the caller's scope is NOT_FOUND (`reason: OUT_OF_SCOPE`), a role that may not do
//!   the act FORBIDDEN (`reason: ROLE_NOT_ALLOWED`). Upserts go through `department_slot`,
//!   `staff_slot`, `applicant_slot`: an existing object of another region is not found, and a
//!   new one is created in the caller's region only.
//! - Instances (cases, tasks, bundles) are filtered by `access::visible_instances`, which reads
//!   the resolved claims; applicants never see a supervision task there.
//!
//! `RULES` lists every rule (role × act × scope); README's "Who may do what" is its reading.

use async_graphql::ErrorExtensions;
use sea_orm::{ConnectionTrait, DatabaseConnection};

use super::access::{refusal, ErrorCode};
use crate::auth::{AuthError, Claims};
use crate::window::registry;

/// The supervision task's definition: hidden from applicants.
pub use crate::domain::definitions::SUPERVISION_TASK;

/// The machine-readable causes in `extensions.reason` (README, "Reasons").
pub use crate::domain::reason;

/// What a caller may try to do; each act has its roles and its scope (`RULES`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    /// putDepartment, putStaff, putApprovalItem, putSupervisionItem.
    ManageOrganisation,
    /// applicant, creditRecords, applicantChanges (staff side).
    ReadApplicant,
    /// putApplicant: master data (name, legal representative, contact).
    EditApplicant,
    /// repairCredit.
    RepairCredit,
    /// listDishonest: entering an applicant on the dishonesty list, a decision of the region's
    /// credit authority.
    ListDishonest,
    /// importCredit, importElectronicLicences.
    ImportCredit,
    /// deregisterBusinessLicence.
    Deregister,
    /// drawInspections, inspectionDraws.
    Draw,
    /// outbox (dead letters too), requeueOutboxMessage.
    Operate,
    /// returnRate of an officer other than the caller.
    ReadReturnRates,
}

/// Where the target must be for the act.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// In the caller's region (departments, staff, draws, outbox rows through their instance).
    Region,
    /// The applicant's home region is the caller's region (or the applicant is the caller).
    HomeRegion,
    /// The caller's department is its region's registration authority, and the enterprise's
    /// home region is that region.
    RegistrationAuthority,
}

/// Every rule: the act, the roles that may do it, and where its target must be.
pub const RULES: &[(Act, &[&str], Scope)] = &[
    (Act::ManageOrganisation, &["regional_admin"], Scope::Region),
    (Act::ReadApplicant, &["applicant", "window", "approver", "department_head", "division_admin", "inspector", "supervisor", "regional_admin"], Scope::HomeRegion),
    (Act::EditApplicant, &["window", "regional_admin"], Scope::HomeRegion),
    (Act::RepairCredit, &["supervisor", "regional_admin"], Scope::HomeRegion),
    (Act::ListDishonest, &["supervisor"], Scope::HomeRegion),
    (Act::ImportCredit, &["regional_admin"], Scope::HomeRegion),
    (Act::Deregister, &["approver"], Scope::RegistrationAuthority),
    (Act::Draw, &["supervisor", "regional_admin"], Scope::Region),
    (Act::Operate, &["regional_admin"], Scope::Region),
    (Act::ReadReturnRates, &["supervisor", "regional_admin"], Scope::Region),
];

fn roles(act: Act) -> &'static [&'static str] {
    RULES.iter().find(|(a, _, _)| *a == act).map_or(&[], |(_, r, _)| r)
}

/// A target the policy has checked for one caller and act. Only this module makes one.
#[derive(Debug, Clone)]
pub struct Scoped<T> {
    target: T,
}

impl<T> std::ops::Deref for Scoped<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.target
    }
}

impl<T> Scoped<T> {
    pub fn into_inner(self) -> T {
        self.target
    }
}

/// NOT_FOUND for a target outside the caller's scope: it is not theirs to know of.
pub fn out_of_scope(what: impl std::fmt::Display) -> async_graphql::Error {
    refusal("NOT_FOUND", reason::OUT_OF_SCOPE, format!("no {what}"))
}

/// FORBIDDEN unless one of the caller's roles may do `act`.
pub fn may(claims: &Claims, act: Act) -> async_graphql::Result<()> {
    let allowed = roles(act);
    if allowed.iter().any(|r| claims.has_role(r)) {
        Ok(())
    } else {
        Err(refusal("FORBIDDEN", reason::ROLE, format!("this needs the role {}", allowed.join(" or "))))
    }
}

fn registry_refusal(reason: &'static str, message: impl Into<String>) -> AuthError {
    AuthError::Registry { reason, message: message.into() }
}

/// Checks a verified token against the staff registry and gives the caller the policy judges:
/// the registry's region, department and division in place of (and equal to) any the token
/// claims. Applicants are their `uscc` claim and hold no staff scope.
pub async fn resolve(db: &DatabaseConnection, mut claims: Claims) -> Result<Claims, AuthError> {
    if claims.roles.is_empty() {
        // An identity provider's token says who the person is, not what they may do here: a
        // registered member of staff gets the registry's roles, an enterprise's login its own.
        match registry::staff(db, &claims.sub).await {
            Ok(Some(staff)) => claims.roles = staff.roles,
            Ok(None) if claims.uscc.as_deref().is_some_and(|u| !u.trim().is_empty()) => claims.roles = vec!["applicant".into()],
            Ok(None) => return Err(registry_refusal(reason::STAFF_NOT_REGISTERED, format!("{} is not in the staff registry", claims.sub))),
            Err(e) => {
                tracing::error!(error = %e, "the staff registry could not be read");
                return Err(registry_refusal(reason::REGISTRY_UNAVAILABLE, "the staff registry cannot be read now; try again"));
            }
        }
    }
    let staff_roles: Vec<&String> = claims.roles.iter().filter(|r| *r != "applicant").collect();
    if staff_roles.is_empty() {
        if claims.uscc.as_deref().is_none_or(|u| u.trim().is_empty()) {
            return Err(registry_refusal(reason::APPLICANT_WITHOUT_USCC, "an applicant's token carries its unified social credit code (uscc)"));
        }
        claims.region = None;
        claims.department = None;
        claims.division = None;
        return Ok(claims);
    }
    if claims.has_role("applicant") {
        return Err(registry_refusal(reason::CLAIMS_DISAGREE, "a token is an applicant's or a staff member's, not both"));
    }
    let record = match registry::staff(db, &claims.sub).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "the staff registry could not be read");
            return Err(registry_refusal(reason::REGISTRY_UNAVAILABLE, "the staff registry cannot be read now; try again"));
        }
    };
    let Some(staff) = record else {
        return Err(registry_refusal(reason::STAFF_NOT_REGISTERED, format!("{} is not in the staff registry", claims.sub)));
    };
    if !staff.active {
        return Err(registry_refusal(reason::STAFF_INACTIVE, format!("{} is not an active member of staff", claims.sub)));
    }
    if let Some(role) = staff_roles.iter().find(|r| !staff.roles.contains(r)) {
        return Err(registry_refusal(reason::CLAIMS_DISAGREE, format!("the staff registry does not give {} the role {role}", claims.sub)));
    }
    let disagree = |claim: &Option<String>, recorded: Option<&String>| claim.as_ref().is_some_and(|c| Some(c) != recorded);
    for (name, claim, recorded) in [
        ("region", &claims.region, Some(&staff.region)),
        ("department", &claims.department, staff.department.as_ref()),
        ("division", &claims.division, staff.division.as_ref()),
    ] {
        if disagree(claim, recorded) {
            return Err(registry_refusal(
                reason::CLAIMS_DISAGREE,
                format!("the token claims {name} {} but the staff registry gives {} {}", claim.as_deref().unwrap_or_default(), claims.sub, recorded.map_or("none", |s| s.as_str())),
            ));
        }
    }
    claims.region = Some(staff.region);
    claims.department = staff.department;
    claims.division = staff.division;
    claims.uscc = None;
    if claims.name.is_none() {
        claims.name = Some(staff.name);
    }
    Ok(claims)
}

/// The transport's caller (HTTP and WebSocket both come here): a verified token resolved
/// against the registry, or why there is none.
pub async fn caller(db: &DatabaseConnection, verified: Result<Option<Claims>, AuthError>) -> Result<Option<Claims>, AuthError> {
    match verified {
        Ok(Some(claims)) => resolve(db, claims).await.map(Some),
        other => other,
    }
}

/// A workflow instance (a case, a task, a bundle) in the caller's scope: the department (window,
/// approver), division (division admin, inspector) or region (supervisor, regional admin) it is
/// in now, or an applicant's own — never a supervision task for an applicant. `None` when there
/// is no such instance for this caller.
pub async fn instance(db: &DatabaseConnection, claims: &Claims, id: &str) -> async_graphql::Result<Option<Scoped<crate::store::entities::instance::Model>>> {
    Ok(super::access::visible_instance(db, claims, id).await?.map(|target| Scoped { target }))
}

/// A supervision task in the caller's scope, NOT_FOUND otherwise.
pub async fn task(db: &DatabaseConnection, claims: &Claims, id: &str) -> async_graphql::Result<Scoped<crate::store::entities::instance::Model>> {
    match instance(db, claims, id).await? {
        Some(t) if t.definition_name == SUPERVISION_TASK => Ok(t),
        _ => Err(async_graphql::Error::new(format!("no supervision task {id}")).extend_with(|_, e| e.set("code", "NOT_FOUND"))),
    }
}

/// A region, as the caller's: listings and creations are filtered or placed by it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    pub code: String,
}

/// The caller's region (the registry's; for a caller resolved in-process without one, the
/// region of its department), NOT_FOUND when it has none.
async fn region_of(db: &impl ConnectionTrait, claims: &Claims) -> async_graphql::Result<Option<String>> {
    if let Some(r) = &claims.region {
        return Ok(Some(r.clone()));
    }
    match &claims.department {
        Some(d) => Ok(registry::department(db, d).await.map_err(|e| e.internal())?.map(|d| d.region)),
        None => Ok(None),
    }
}

/// The approval departments whose items the caller sees: staff those of their region; `None`
/// for an applicant, to whom the catalogue is open like the published list it is.
pub async fn catalogue_departments(db: &impl ConnectionTrait, claims: &Claims) -> async_graphql::Result<Option<Vec<String>>> {
    if claims.roles.iter().all(|r| r == "applicant") {
        return Ok(None);
    }
    let Some(region) = region_of(db, claims).await? else { return Ok(Some(Vec::new())) };
    let all = registry::departments(db, &region).await.map_err(|e| e.internal())?;
    Ok(Some(all.into_iter().map(|(d, _)| d.code).collect()))
}

/// The caller's own region for `act`.
pub async fn region(db: &impl ConnectionTrait, claims: &Claims, act: Act) -> async_graphql::Result<Scoped<Region>> {
    may(claims, act)?;
    let code = region_of(db, claims).await?.ok_or_else(|| out_of_scope("region for a caller with none"))?;
    Ok(Scoped { target: Region { code } })
}

/// Region `code`, if it is the caller's (creating in another region is not possible).
pub async fn region_named(db: &impl ConnectionTrait, claims: &Claims, act: Act, code: &str) -> async_graphql::Result<Scoped<Region>> {
    let own = region(db, claims, act).await?;
    if own.code != code {
        return Err(out_of_scope(format_args!("region {code}")));
    }
    Ok(own)
}

/// An existing department of the caller's region. A missing one is BAD_USER_INPUT naming
/// `field` (the caller named it), one of another region NOT_FOUND.
pub async fn department(db: &impl ConnectionTrait, claims: &Claims, act: Act, code: &str, field: &'static str) -> async_graphql::Result<Scoped<registry::Department>> {
    let own = region(db, claims, act).await?;
    let Some(department) = registry::department(db, code).await.map_err(|e| e.internal())? else {
        return Err(super::access::error("BAD_USER_INPUT", format!("no department {code}")).extend_field(field));
    };
    if department.region != own.code {
        return Err(out_of_scope(format_args!("department {code}")));
    }
    Ok(Scoped { target: department })
}

/// Where an upserted department goes: `existing` (of the caller's region) or a new one in it.
#[derive(Debug, Clone)]
pub struct DepartmentSlot {
    pub code: String,
    pub region: String,
    pub existing: Option<registry::Department>,
}

/// The department `code` to create or replace in region `region`: an existing department of
/// another region is not found, and `region` must be the caller's.
pub async fn department_slot(db: &impl ConnectionTrait, claims: &Claims, code: &str, region: &str) -> async_graphql::Result<Scoped<DepartmentSlot>> {
    let existing = registry::department(db, code).await.map_err(|e| e.internal())?;
    let own = region_named(db, claims, Act::ManageOrganisation, region).await?;
    if existing.as_ref().is_some_and(|d| d.region != own.code) {
        return Err(out_of_scope(format_args!("department {code}")));
    }
    Ok(Scoped { target: DepartmentSlot { code: code.to_string(), region: own.code.clone(), existing } })
}

/// The staff member `id` to create or replace: one registered in another region is not found.
pub async fn staff_slot(db: &impl ConnectionTrait, claims: &Claims, id: &str) -> async_graphql::Result<Scoped<Region>> {
    let own = region(db, claims, Act::ManageOrganisation).await?;
    let existing = registry::staff(db, id).await.map_err(|e| e.internal())?;
    if existing.is_some_and(|s| s.region != own.code) {
        return Err(out_of_scope(format_args!("staff member {id}")));
    }
    Ok(own)
}

/// The owner of an upserted approval or supervision item: an existing item's department must
/// be of the caller's region as well as the department it is given.
pub async fn item_owner(db: &impl ConnectionTrait, claims: &Claims, what: &str, existing_department: Option<&str>, department: &str) -> async_graphql::Result<Scoped<registry::Department>> {
    if let Some(current) = existing_department {
        let own = region(db, claims, Act::ManageOrganisation).await?;
        let theirs = registry::department(db, current).await.map_err(|e| e.internal())?;
        if theirs.is_none_or(|d| d.region != own.code) {
            return Err(out_of_scope(what));
        }
    }
    self::department(db, claims, Act::ManageOrganisation, department, "department").await
}

/// An applicant the caller may act on: the applicant itself (reading only), or staff of the
/// applicant's home region with a role for `act`. An applicant of another region is not found.
pub async fn applicant(db: &impl ConnectionTrait, claims: &Claims, act: Act, uscc: &str) -> async_graphql::Result<Scoped<registry::Applicant>> {
    let not_found = || out_of_scope(format_args!("applicant {uscc}"));
    if act == Act::ReadApplicant && claims.roles.iter().all(|r| r == "applicant") {
        if claims.uscc.as_deref() != Some(uscc) {
            return Err(not_found());
        }
    } else {
        if claims.roles.iter().all(|r| r == "applicant") {
            return Err(refusal("FORBIDDEN", reason::ROLE, format!("this needs the role {}", roles(act).join(" or "))));
        }
        may(claims, act)?;
        let own = region_of(db, claims).await?;
        let home = registry::home_region(db, uscc).await.map_err(|e| e.internal())?.ok_or_else(not_found)?;
        // An applicant on file without a home region (no case, registered before regions were
        // recorded) is claimed by the first region that records it (`adopt`).
        if home.is_some() && home != own {
            return Err(not_found());
        }
    }
    let row = registry::applicant(db, uscc).await.map_err(|e| e.internal())?.ok_or_else(not_found)?;
    Ok(Scoped { target: row })
}

/// Where an upserted applicant goes: its current record (of the caller's region) or a new
/// one registered in the caller's region.
#[derive(Debug, Clone)]
pub struct ApplicantSlot {
    pub region: String,
    pub existing: Option<registry::Applicant>,
}

pub async fn applicant_slot(db: &impl ConnectionTrait, claims: &Claims, uscc: &str) -> async_graphql::Result<Scoped<ApplicantSlot>> {
    may(claims, Act::EditApplicant)?;
    let region = region_of(db, claims).await?.ok_or_else(|| out_of_scope("region for a caller with none"))?;
    let existing = match registry::home_region(db, uscc).await.map_err(|e| e.internal())? {
        None => None,
        Some(Some(home)) if home != region => return Err(out_of_scope(format_args!("applicant {uscc}"))),
        Some(_) => registry::applicant(db, uscc).await.map_err(|e| e.internal())?,
    };
    Ok(Scoped { target: ApplicantSlot { region, existing } })
}

/// Every applicant of `usccs` the caller may import credit (or electronic licences) for:
/// applicants on file of another region are not found (the whole import is refused); those
/// not on file are passed back as unknown.
pub async fn import_targets(db: &impl ConnectionTrait, claims: &Claims, usccs: &[String]) -> async_graphql::Result<Scoped<Region>> {
    let own = region(db, claims, Act::ImportCredit).await?;
    for uscc in usccs {
        if let Some(Some(home)) = registry::home_region(db, uscc).await.map_err(|e| e.internal())? {
            if home != own.code {
                return Err(out_of_scope(format_args!("applicant {uscc}")));
            }
        }
    }
    Ok(own)
}

/// The enterprise whose business licence the caller deregisters: the caller's department is
/// its region's registration authority and the enterprise's home region is that region.
pub async fn deregistration(db: &impl ConnectionTrait, claims: &Claims, uscc: &str) -> async_graphql::Result<Scoped<registry::Applicant>> {
    may(claims, Act::Deregister)?;
    let not_found = || out_of_scope(format_args!("applicant {uscc}"));
    let region = region_of(db, claims).await?.ok_or_else(not_found)?;
    let home = registry::home_region(db, uscc).await.map_err(|e| e.internal())?.ok_or_else(not_found)?;
    if home.as_deref() != Some(region.as_str()) {
        return Err(not_found());
    }
    let department = claims.department.clone().unwrap_or_default();
    if !registry::is_registration_authority(db, &department).await.map_err(|e| e.internal())? {
        return Err(refusal(
            "FORBIDDEN",
            reason::NOT_REGISTRATION_AUTHORITY,
            format!("business licences are deregistered by the registration authority of region {region}; {department} is not it"),
        ));
    }
    let row = registry::applicant(db, uscc).await.map_err(|e| e.internal())?.ok_or_else(not_found)?;
    Ok(Scoped { target: row })
}

trait ExtendField {
    fn extend_field(self, field: &'static str) -> Self;
}

impl ExtendField for async_graphql::Error {
    fn extend_field(self, field: &'static str) -> Self {
        self.extend_with(move |_, e| e.set("field", field))
    }
}
