//! The organisation (regions, departments, divisions, staff) and the applicants with their
//! credit status. Plain rows, written by the regional admin and by credit imports.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr, FromQueryResult};
use serde::{Deserialize, Serialize};

use crate::store::audit::AuditKeys;
use crate::store::{count, seal, stmt};

/// Inserts or replaces one row of a keyed table.
async fn upsert(db: &impl ConnectionTrait, table: &str, key: &str, columns: &[&str], values: Vec<sea_orm::Value>) -> Result<(), DbErr> {
    let placeholders = vec!["?"; columns.len()].join(", ");
    let updates: Vec<String> = columns.iter().filter(|c| **c != key).map(|c| format!("{c} = excluded.{c}")).collect();
    let sql = format!(
        "INSERT INTO {table} ({}) VALUES ({placeholders}) ON CONFLICT ({key}) DO UPDATE SET {}",
        columns.join(", "),
        updates.join(", ")
    );
    db.execute_raw(stmt(db, &sql, values)).await?;
    Ok(())
}

pub async fn put_region(db: &impl ConnectionTrait, code: &str, name: &str) -> Result<(), DbErr> {
    upsert(db, "regions", "code", &["code", "name"], vec![code.into(), name.into()]).await
}

/// `side`: `approval` or `supervision`; `email` receives the department's notices.
pub async fn put_department(db: &impl ConnectionTrait, code: &str, region: &str, name: &str, side: &str, email: Option<&str>) -> Result<(), DbErr> {
    upsert(
        db,
        "departments",
        "code",
        &["code", "region", "name", "side", "email"],
        vec![code.into(), region.into(), name.into(), side.into(), email.into()],
    )
    .await
}

pub async fn put_division(db: &impl ConnectionTrait, code: &str, department: &str, name: &str, email: Option<&str>) -> Result<(), DbErr> {
    upsert(db, "divisions", "code", &["code", "department", "name", "email"], vec![code.into(), department.into(), name.into(), email.into()])
        .await
}

pub async fn put_supervision_item(db: &impl ConnectionTrait, code: &str, name: &str, department: &str, division: &str) -> Result<(), DbErr> {
    upsert(
        db,
        "supervision_items",
        "code",
        &["code", "name", "department", "division"],
        vec![code.into(), name.into(), department.into(), division.into()],
    )
    .await
}

#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct Department {
    pub code: String,
    pub region: String,
    pub name: String,
    pub side: String,
    pub email: Option<String>,
    /// 1 when the department is its region's registration authority.
    pub registration_authority: i64,
}

pub async fn department(db: &impl ConnectionTrait, code: &str) -> Result<Option<Department>, DbErr> {
    let row = db.query_one_raw(stmt(db, "SELECT code, region, name, side, email, registration_authority FROM departments WHERE code = ?", vec![code.into()])).await?;
    row.map(|r| Department::from_query_result(&r, "")).transpose()
}

/// The department owning supervision item `code`, if it exists.
pub async fn supervision_item_department(db: &impl ConnectionTrait, code: &str) -> Result<Option<String>, DbErr> {
    #[derive(FromQueryResult)]
    struct Row {
        department: String,
    }
    let row = db.query_one_raw(stmt(db, "SELECT department FROM supervision_items WHERE code = ?", vec![code.into()])).await?;
    Ok(row.map(|r| Row::from_query_result(&r, "")).transpose()?.map(|r| r.department))
}

/// The applicant a credit record is about, if the record exists.
pub async fn credit_record_holder(db: &impl ConnectionTrait, id: &str) -> Result<Option<String>, DbErr> {
    #[derive(FromQueryResult)]
    struct Row {
        applicant_uscc: String,
    }
    let row = db.query_one_raw(stmt(db, "SELECT applicant_uscc FROM credit_records WHERE id = ?", vec![id.into()])).await?;
    Ok(row.map(|r| Row::from_query_result(&r, "")).transpose()?.map(|r| r.applicant_uscc))
}

#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct Division {
    pub code: String,
    pub department: String,
    pub name: String,
    pub email: Option<String>,
}

pub async fn division(db: &impl ConnectionTrait, code: &str) -> Result<Option<Division>, DbErr> {
    let row = db.query_one_raw(stmt(db, "SELECT code, department, name, email FROM divisions WHERE code = ?", vec![code.into()])).await?;
    row.map(|r| Division::from_query_result(&r, "")).transpose()
}

/// A staff member of `department` (whose region becomes theirs), created or replaced.
pub async fn put_staff(
    db: &impl ConnectionTrait,
    id: &str,
    name: &str,
    department: &str,
    division: Option<&str>,
    roles: &[String],
    email: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let region = department_region(db, department).await?.ok_or_else(|| DbErr::RecordNotFound(format!("department {department}")))?;
    put_staff_in(db, &StaffRecord { id: id.into(), name: name.into(), region, department: Some(department.into()), division: division.map(str::to_string), roles: roles.to_vec(), email: email.map(str::to_string), active: true }, now).await
}

async fn department_region(db: &impl ConnectionTrait, code: &str) -> Result<Option<String>, DbErr> {
    Ok(department(db, code).await?.map(|d| d.region))
}

/// A staff member as the registry records them: the region, department and division a
/// token's claims are checked against (`api::policy`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffRecord {
    pub id: String,
    pub name: String,
    pub region: String,
    pub department: Option<String>,
    pub division: Option<String>,
    pub roles: Vec<String>,
    pub email: Option<String>,
    pub active: bool,
}

/// Creates or replaces a staff member with the region given (a regional admin or supervisor
/// may belong to no department).
pub async fn put_staff_in(db: &impl ConnectionTrait, s: &StaffRecord, now: DateTime<Utc>) -> Result<(), DbErr> {
    let roles = serde_json::to_string(&s.roles).map_err(|e| DbErr::Custom(e.to_string()))?;
    upsert(
        db,
        "staff",
        "id",
        &["id", "name", "region", "department", "division", "roles", "email", "active", "created_at"],
        vec![
            s.id.clone().into(),
            s.name.clone().into(),
            s.region.clone().into(),
            s.department.clone().into(),
            s.division.clone().into(),
            roles.into(),
            s.email.clone().into(),
            i64::from(s.active).into(),
            now.timestamp_millis().into(),
        ],
    )
    .await
}

/// The registry's record of staff member `id`.
pub async fn staff(db: &impl ConnectionTrait, id: &str) -> Result<Option<StaffRecord>, DbErr> {
    let rows = db.query_all_raw(stmt(db, &format!("{STAFF_COLUMNS} WHERE id = ?"), vec![id.into()])).await?;
    Ok(staff_records(&rows)?.pop())
}

/// Every staff member of `region`, by id.
pub async fn staff_of_region(db: &impl ConnectionTrait, region: &str) -> Result<Vec<StaffRecord>, DbErr> {
    let rows = db.query_all_raw(stmt(db, &format!("{STAFF_COLUMNS} WHERE region = ? ORDER BY id"), vec![region.into()])).await?;
    staff_records(&rows)
}

const STAFF_COLUMNS: &str = "SELECT id, name, region, department, division, roles, email, active FROM staff";

fn staff_records(rows: &[sea_orm::QueryResult]) -> Result<Vec<StaffRecord>, DbErr> {
    #[derive(FromQueryResult)]
    struct Row {
        id: String,
        name: String,
        region: String,
        department: Option<String>,
        division: Option<String>,
        roles: String,
        email: Option<String>,
        active: i64,
    }
    rows.iter()
        .map(|r| {
            let row = Row::from_query_result(r, "")?;
            let roles: Vec<String> = serde_json::from_str(&row.roles).map_err(|e| DbErr::Custom(format!("staff {}: roles: {e}", row.id)))?;
            Ok(StaffRecord { id: row.id, name: row.name, region: row.region, department: row.department, division: row.division, roles, email: row.email, active: row.active != 0 })
        })
        .collect()
}

/// Marks (or unmarks) a department as its region's registration authority: the one that
/// deregisters business licences there.
pub async fn set_registration_authority(db: &impl ConnectionTrait, code: &str, on: bool) -> Result<(), DbErr> {
    db.execute_raw(stmt(db, "UPDATE departments SET registration_authority = ? WHERE code = ?", vec![i64::from(on).into(), code.into()])).await?;
    Ok(())
}

/// Whether `code` is a registration authority.
pub async fn is_registration_authority(db: &impl ConnectionTrait, code: &str) -> Result<bool, DbErr> {
    #[derive(FromQueryResult)]
    struct Flag {
        registration_authority: i64,
    }
    let row = db.query_one_raw(stmt(db, "SELECT registration_authority FROM departments WHERE code = ?", vec![code.into()])).await?;
    Ok(row.map(|r| Flag::from_query_result(&r, "")).transpose()?.is_some_and(|f| f.registration_authority != 0))
}

/// Credit tier (A best … D worst) and whether the applicant is on the dishonesty list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, FromQueryResult)]
pub struct Applicant {
    pub uscc: String,
    pub name: String,
    pub legal_representative: String,
    pub email: Option<String>,
    pub mobile: Option<String>,
    pub credit_tier: String,
    pub dishonest: i64,
}

pub const CREDIT_TIERS: [&str; 4] = ["A", "B", "C", "D"];

/// Creates an applicant (its credit as given, as if imported) or updates its details; credit
/// afterwards changes only through imports and credit records. The row is sealed as written.
pub async fn put_applicant(db: &impl ConnectionTrait, keys: &AuditKeys, a: &Applicant, now: DateTime<Utc>) -> Result<(), DbErr> {
    let sql = "INSERT INTO applicants (uscc, name, legal_representative, email, mobile, credit_tier, dishonest, imported_tier, imported_dishonest, updated_at) \
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (uscc) DO UPDATE SET name = excluded.name, \
               legal_representative = excluded.legal_representative, email = excluded.email, mobile = excluded.mobile, updated_at = excluded.updated_at";
    db.execute_raw(stmt(
        db,
        sql,
        vec![
            a.uscc.clone().into(),
            a.name.clone().into(),
            a.legal_representative.clone().into(),
            a.email.clone().into(),
            a.mobile.clone().into(),
            a.credit_tier.clone().into(),
            a.dishonest.into(),
            a.credit_tier.clone().into(),
            a.dishonest.into(),
            now.timestamp_millis().into(),
        ],
    ))
    .await?;
    crate::store::name_index::write(db, &a.uscc, &a.name).await?;
    seal::seal(db, keys, &seal::APPLICANTS, &a.uscc).await
}

/// The region that registered applicant `uscc`: `None` when unknown, `Some(None)` when it is on
/// file with no home region yet (registered before regions were recorded and with no case).
pub async fn home_region(db: &impl ConnectionTrait, uscc: &str) -> Result<Option<Option<String>>, DbErr> {
    #[derive(FromQueryResult)]
    struct Row {
        home_region: Option<String>,
    }
    let row = db.query_one_raw(stmt(db, "SELECT home_region FROM applicants WHERE uscc = ?", vec![uscc.into()])).await?;
    Ok(row.map(|r| Row::from_query_result(&r, "")).transpose()?.map(|r| r.home_region))
}

/// Gives applicant `uscc` its home region if it has none yet.
pub async fn adopt(db: &impl ConnectionTrait, keys: &AuditKeys, uscc: &str, region: &str) -> Result<(), DbErr> {
    let r = db.execute_raw(stmt(db, "UPDATE applicants SET home_region = ? WHERE uscc = ? AND home_region IS NULL", vec![region.into(), uscc.into()])).await?;
    if r.rows_affected() > 0 {
        seal::seal(db, keys, &seal::APPLICANTS, uscc).await?;
    }
    Ok(())
}

/// One change of an applicant's master data, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct ApplicantChange {
    pub id: String,
    pub uscc: String,
    pub field: String,
    pub old_value: Option<String>,
    pub new_value: Option<String>,
    pub changed_by: String,
    pub changed_at: i64,
}

/// Records each field of `new` that differs from `old` (name, legal representative, email,
/// mobile) as a change by `by`, each record sealed.
pub async fn record_changes(db: &impl ConnectionTrait, keys: &AuditKeys, old: &Applicant, new: &Applicant, by: &str, now: DateTime<Utc>) -> Result<usize, DbErr> {
    let pairs = [
        ("name", Some(old.name.clone()), Some(new.name.clone())),
        ("legal_representative", Some(old.legal_representative.clone()), Some(new.legal_representative.clone())),
        ("email", old.email.clone(), new.email.clone()),
        ("mobile", old.mobile.clone(), new.mobile.clone()),
    ];
    let mut n = 0;
    for (field, before, after) in pairs {
        if before == after {
            continue;
        }
        let id = uuid::Uuid::now_v7().to_string();
        db.execute_raw(stmt(
            db,
            "INSERT INTO applicant_changes (id, uscc, field, old_value, new_value, changed_by, changed_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            vec![id.clone().into(), new.uscc.clone().into(), field.into(), before.into(), after.into(), by.into(), now.timestamp_millis().into()],
        ))
        .await?;
        seal::seal(db, keys, &seal::APPLICANT_CHANGES, &id).await?;
        n += 1;
    }
    Ok(n)
}

/// The recorded changes of an applicant's master data, oldest first.
pub async fn applicant_changes(db: &impl ConnectionTrait, uscc: &str) -> Result<Vec<ApplicantChange>, DbErr> {
    let rows = db
        .query_all_raw(stmt(
            db,
            "SELECT id, uscc, field, old_value, new_value, changed_by, changed_at FROM applicant_changes WHERE uscc = ? ORDER BY changed_at, id",
            vec![uscc.into()],
        ))
        .await?;
    rows.iter().map(|r| ApplicantChange::from_query_result(r, "")).collect()
}

pub async fn applicant(db: &impl ConnectionTrait, uscc: &str) -> Result<Option<Applicant>, DbErr> {
    let row = db
        .query_one_raw(stmt(
            db,
            "SELECT uscc, name, legal_representative, email, mobile, credit_tier, dishonest FROM applicants WHERE uscc = ?",
            vec![uscc.into()],
        ))
        .await?;
    row.map(|r| Applicant::from_query_result(&r, "")).transpose()
}

/// Sets an applicant's imported credit status (a credit import) and recomputes its effective
/// standing with its records. False when the applicant is unknown.
pub async fn set_credit(
    db: &impl ConnectionTrait,
    rules: &crate::store::credit::CreditRules,
    keys: &AuditKeys,
    uscc: &str,
    tier: &str,
    dishonest: bool,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let r = db
        .execute_raw(stmt(
            db,
            "UPDATE applicants SET imported_tier = ?, imported_dishonest = ?, updated_at = ? WHERE uscc = ?",
            vec![tier.into(), i64::from(dishonest).into(), now.timestamp_millis().into(), uscc.into()],
        ))
        .await?;
    if r.rows_affected() == 0 {
        return Ok(false);
    }
    crate::store::credit::recompute(db, rules, keys, uscc, now).await?;
    Ok(true)
}

/// An electronic licence in the library materials are verified against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, FromQueryResult)]
pub struct ElectronicLicence {
    pub holder_uscc: String,
    pub kind: String,
    pub number: String,
    /// `YYYY-MM-DD`.
    pub valid_until: String,
    pub revoked: i64,
}

pub async fn put_electronic_licence(db: &impl ConnectionTrait, l: &ElectronicLicence) -> Result<(), DbErr> {
    let sql = "INSERT INTO electronic_licences (holder_uscc, kind, number, valid_until, revoked) VALUES (?, ?, ?, ?, ?) \
               ON CONFLICT (kind, number) DO UPDATE SET holder_uscc = excluded.holder_uscc, valid_until = excluded.valid_until, revoked = excluded.revoked";
    db.execute_raw(stmt(
        db,
        sql,
        vec![l.holder_uscc.clone().into(), l.kind.clone().into(), l.number.clone().into(), l.valid_until.clone().into(), l.revoked.into()],
    ))
    .await?;
    Ok(())
}

pub async fn electronic_licence(db: &impl ConnectionTrait, kind: &str, number: &str) -> Result<Option<ElectronicLicence>, DbErr> {
    let row = db
        .query_one_raw(stmt(
            db,
            "SELECT holder_uscc, kind, number, valid_until, revoked FROM electronic_licences WHERE kind = ? AND number = ?",
            vec![kind.into(), number.into()],
        ))
        .await?;
    row.map(|r| ElectronicLicence::from_query_result(&r, "")).transpose()
}

/// Departments of a region with their divisions, by code.
pub async fn departments(db: &impl ConnectionTrait, region: &str) -> Result<Vec<(Department, Vec<Division>)>, DbErr> {
    let rows = db
        .query_all_raw(stmt(db, "SELECT code, region, name, side, email, registration_authority FROM departments WHERE region = ? ORDER BY code", vec![region.into()]))
        .await?;
    let departments: Vec<Department> = rows.iter().map(|r| Department::from_query_result(r, "")).collect::<Result<_, _>>()?;
    let rows = db
        .query_all_raw(stmt(
            db,
            "SELECT d.code, d.department, d.name, d.email FROM divisions d JOIN departments p ON p.code = d.department WHERE p.region = ? ORDER BY d.code",
            vec![region.into()],
        ))
        .await?;
    let divisions: Vec<Division> = rows.iter().map(|r| Division::from_query_result(r, "")).collect::<Result<_, _>>()?;
    Ok(departments
        .into_iter()
        .map(|d| {
            let own = divisions.iter().filter(|v| v.department == d.code).cloned().collect();
            (d, own)
        })
        .collect())
}

/// Whether the business licence of `uscc` has been deregistered.
pub async fn is_deregistered(db: &impl ConnectionTrait, uscc: &str) -> Result<bool, DbErr> {
    Ok(count(db, "SELECT COUNT(*) AS n FROM deregistrations WHERE uscc = ?", vec![uscc.into()]).await? > 0)
}
