//! The organisation (regions, departments, divisions, staff) and the applicants with their
//! credit status. Plain rows, written by the regional admin and by credit imports.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr, FromQueryResult};
use serde::{Deserialize, Serialize};

use crate::store::stmt;

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
}

pub async fn department(db: &impl ConnectionTrait, code: &str) -> Result<Option<Department>, DbErr> {
    let row = db.query_one_raw(stmt(db, "SELECT code, region, name, side, email FROM departments WHERE code = ?", vec![code.into()])).await?;
    row.map(|r| Department::from_query_result(&r, "")).transpose()
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
    let roles = serde_json::to_string(roles).map_err(|e| DbErr::Custom(e.to_string()))?;
    upsert(
        db,
        "staff",
        "id",
        &["id", "name", "department", "division", "roles", "email", "active", "created_at"],
        vec![id.into(), name.into(), department.into(), division.into(), roles.into(), email.into(), 1i64.into(), now.timestamp_millis().into()],
    )
    .await
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
/// afterwards changes only through imports and credit records.
pub async fn put_applicant(db: &impl ConnectionTrait, a: &Applicant, now: DateTime<Utc>) -> Result<(), DbErr> {
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
    Ok(())
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
    crate::store::credit::recompute(db, rules, uscc, now).await?;
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
        .query_all_raw(stmt(db, "SELECT code, region, name, side, email FROM departments WHERE region = ? ORDER BY code", vec![region.into()]))
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
