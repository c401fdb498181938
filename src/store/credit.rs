//! Credit: records per applicant (fulfilment, breach, revocation, repair), and the applicant's
//! effective tier and dishonesty-list flag computed from them by configurable rules over what
//! the outside credit platform last imported. The window's credit gate reads the effective
//! values; a repaired record no longer counts.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr, FromQueryResult};
use serde::{Deserialize, Serialize};

use super::audit::AuditKeys;
use super::seal::{self, APPLICANTS, CREDIT_RECORDS};
use super::stmt;

/// How records move an applicant's tier (A best … D worst), how long each is published and when
/// it may be repaired (DOMAIN, "Default numbers": general 3 months–1 year, serious 1–3 years,
/// repair after the minimum). The dishonesty list is never entered by counting: only by a
/// listing, the explicit decision of the region's credit authority (`kind::LISTING`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CreditRules {
    /// The category of a breach (a commitment broken, an application ended for it).
    pub breach_category: Category,
    /// The category of a licence revoked for a broken commitment.
    pub revocation_category: Category,
    pub general: CategoryRule,
    pub serious: CategoryRule,
    /// This many fulfilments with nothing unrepaired against them lift the applicant to A.
    pub fulfilments_for_a: i64,
}

/// The two categories of an adverse record (失信信息).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    General,
    Serious,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::General => "general",
            Self::Serious => "serious",
        }
    }
}

/// What a category of record does while it counts, and for how long.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategoryRule {
    /// An unrepaired record of this category puts the applicant at least this low.
    pub tier: String,
    /// Months the record is published (and counts) from when it is written.
    pub publication_months: u32,
    /// Months before it may be repaired.
    pub minimum_months: u32,
}

impl Default for CreditRules {
    fn default() -> Self {
        Self {
            breach_category: Category::General,
            revocation_category: Category::General,
            general: CategoryRule { tier: "C".into(), publication_months: 6, minimum_months: 3 },
            serious: CategoryRule { tier: "D".into(), publication_months: 24, minimum_months: 12 },
            fulfilments_for_a: 3,
        }
    }
}

impl CreditRules {
    pub fn rule(&self, c: Category) -> &CategoryRule {
        match c {
            Category::General => &self.general,
            Category::Serious => &self.serious,
        }
    }

    /// The category a record of `kind` is written in; none for a fulfilment or a repair.
    pub fn category_of(&self, kind: &str) -> Option<Category> {
        match kind {
            kind::BREACH => Some(self.breach_category),
            kind::REVOCATION => Some(self.revocation_category),
            kind::LISTING => Some(Category::Serious),
            _ => None,
        }
    }

    /// Checks the rules against the ranges the national rules allow; `Err` names the setting.
    pub fn check(&self) -> Result<(), (&'static str, String, &'static str)> {
        for (name, rule, range, expected) in [
            ("credit.general", &self.general, 3..=12, "publication 3–12 months, a minimum of 3 months up to the publication"),
            ("credit.serious", &self.serious, 12..=36, "publication 12–36 months, a minimum of 12 months up to the publication"),
        ] {
            if !["A", "B", "C", "D"].contains(&rule.tier.as_str()) {
                return Err((name, rule.tier.clone(), "a tier A, B, C or D"));
            }
            let ok = range.contains(&rule.publication_months) && rule.minimum_months >= *range.start() && rule.minimum_months <= rule.publication_months;
            if !ok {
                return Err((name, format!("publication_months {} minimum_months {}", rule.publication_months, rule.minimum_months), expected));
            }
        }
        Ok(())
    }
}

pub mod kind {
    pub const FULFILMENT: &str = "fulfilment";
    pub const BREACH: &str = "breach";
    pub const REVOCATION: &str = "revocation";
    pub const REPAIR: &str = "repair";
    /// Entered on the dishonesty list by a decision of the region's credit authority; lifted by
    /// repairing it.
    pub const LISTING: &str = "listing";
}

/// `months` calendar months after `at` (the same day of the month, or the month's last).
fn months_after(at: DateTime<Utc>, months: u32) -> DateTime<Utc> {
    at.checked_add_months(chrono::Months::new(months)).unwrap_or(at)
}

fn worse<'a>(a: &'a str, b: &'a str) -> &'a str {
    if b > a { b } else { a }
}

/// Writes one record, sealed, and recomputes the applicant's standing.
#[allow(clippy::too_many_arguments)]
pub async fn record(
    db: &impl ConnectionTrait,
    rules: &CreditRules,
    keys: &AuditKeys,
    uscc: &str,
    kind: &str,
    instance_id: Option<&str>,
    event_seq: Option<i64>,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<String, DbErr> {
    let id = uuid::Uuid::now_v7().to_string();
    // An adverse record is written with its category, its publication period and the day it
    // may be repaired, by the rules in force when it is written.
    let category = rules.category_of(kind);
    let terms = category.map(|c| {
        let rule = rules.rule(c);
        (months_after(now, rule.publication_months).timestamp_millis(), months_after(now, rule.minimum_months).timestamp_millis())
    });
    db.execute_raw(stmt(
        db,
        "INSERT INTO credit_records (id, applicant_uscc, kind, instance_id, event_seq, reason, created_at, category, publish_until, repairable_from) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        vec![
            id.clone().into(),
            uscc.into(),
            kind.into(),
            instance_id.into(),
            event_seq.into(),
            reason.into(),
            now.timestamp_millis().into(),
            category.map(Category::as_str).into(),
            terms.map(|t| t.0).into(),
            terms.map(|t| t.1).into(),
        ],
    ))
    .await?;
    seal::seal(db, keys, &CREDIT_RECORDS, &id).await?;
    recompute(db, rules, keys, uscc, now).await?;
    Ok(id)
}

/// The applicant's effective tier and flag from the imported ones and the unrepaired records.
pub async fn recompute(db: &impl ConnectionTrait, rules: &CreditRules, keys: &AuditKeys, uscc: &str, now: DateTime<Utc>) -> Result<(), DbErr> {
    #[derive(FromQueryResult)]
    struct Imported {
        imported_tier: String,
        imported_dishonest: i64,
    }
    let Some(row) = db
        .query_one_raw(stmt(db, "SELECT imported_tier, imported_dishonest FROM applicants WHERE uscc = ?", vec![uscc.into()]))
        .await?
    else {
        return Ok(()); // not on file at the window: the record stands alone
    };
    let imported = Imported::from_query_result(&row, "")?;
    #[derive(FromQueryResult)]
    struct Counting {
        kind: String,
        category: Option<String>,
    }
    // What counts: unrepaired records still in their publication period (records from before
    // categories count until repaired).
    let rows = db
        .query_all_raw(stmt(
            db,
            "SELECT kind, category FROM credit_records WHERE applicant_uscc = ? AND repaired_at IS NULL AND (publish_until IS NULL OR publish_until > ?)",
            vec![uscc.into(), now.timestamp_millis().into()],
        ))
        .await?;
    let counting: Vec<Counting> = rows.iter().map(|r| Counting::from_query_result(r, "")).collect::<Result<_, _>>()?;
    let mut tier = imported.imported_tier.clone();
    let mut dishonest = imported.imported_dishonest != 0;
    let mut adverse = false;
    let mut fulfilments = 0;
    for r in &counting {
        if r.kind == kind::FULFILMENT {
            fulfilments += 1;
            continue;
        }
        let category = match r.category.as_deref() {
            Some("serious") => Some(Category::Serious),
            Some("general") => Some(Category::General),
            _ => rules.category_of(&r.kind),
        };
        if let Some(c) = category {
            adverse = true;
            tier = worse(&tier, &rules.rule(c).tier).to_string();
        }
        dishonest |= r.kind == kind::LISTING;
    }
    if !adverse && fulfilments >= rules.fulfilments_for_a && !dishonest {
        tier = "A".to_string();
    }
    let tier = tier.as_str();
    db.execute_raw(stmt(
        db,
        "UPDATE applicants SET credit_tier = ?, dishonest = ?, updated_at = ? WHERE uscc = ?",
        vec![tier.into(), i64::from(dishonest).into(), now.timestamp_millis().into(), uscc.into()],
    ))
    .await?;
    seal::seal(db, keys, &APPLICANTS, uscc).await
}

#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct CreditRecord {
    pub id: String,
    pub applicant_uscc: String,
    pub kind: String,
    pub instance_id: Option<String>,
    pub reason: String,
    pub created_at: i64,
    pub repaired_at: Option<i64>,
    pub repaired_by: Option<String>,
    pub repair_reason: Option<String>,
    pub category: Option<String>,
    pub publish_until: Option<i64>,
    pub repairable_from: Option<i64>,
}

pub async fn records(db: &impl ConnectionTrait, uscc: &str) -> Result<Vec<CreditRecord>, DbErr> {
    let rows = db
        .query_all_raw(stmt(db, &format!("SELECT {RECORD_COLUMNS} FROM credit_records WHERE applicant_uscc = ? ORDER BY created_at, id"), vec![uscc.into()]))
        .await?;
    rows.iter().map(|r| CreditRecord::from_query_result(r, "")).collect()
}

const RECORD_COLUMNS: &str = "id, applicant_uscc, kind, instance_id, reason, created_at, repaired_at, repaired_by, repair_reason, category, publish_until, repairable_from";

async fn one(db: &impl ConnectionTrait, id: &str) -> Result<Option<CreditRecord>, DbErr> {
    let row = db.query_one_raw(stmt(db, &format!("SELECT {RECORD_COLUMNS} FROM credit_records WHERE id = ?"), vec![id.into()])).await?;
    row.map(|r| CreditRecord::from_query_result(&r, "")).transpose()
}

/// Recomputes the standing of every applicant one of whose records' publication period ended
/// since the last pass (kept in `settings`): the record stops counting without anyone acting.
/// Returns how many applicants were recomputed.
pub async fn recompute_lapsed(db: &sea_orm::DatabaseConnection, rules: &CreditRules, keys: &AuditKeys, now: DateTime<Utc>) -> Result<usize, DbErr> {
    const MARK: &str = "credit_publication_checked_until";
    let txn = super::begin_write(db).await?;
    let since: i64 = txn
        .query_one_raw(stmt(&txn, "SELECT value FROM settings WHERE key = ?", vec![MARK.into()]))
        .await?
        .and_then(|r| r.try_get::<String>("", "value").ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let rows = txn
        .query_all_raw(stmt(
            &txn,
            "SELECT DISTINCT applicant_uscc FROM credit_records WHERE publish_until > ? AND publish_until <= ? AND repaired_at IS NULL",
            vec![since.into(), now.timestamp_millis().into()],
        ))
        .await?;
    let applicants: Vec<String> = rows.iter().filter_map(|r| r.try_get::<String>("", "applicant_uscc").ok()).collect();
    for uscc in &applicants {
        recompute(&txn, rules, keys, uscc, now).await?;
    }
    let upsert = "INSERT INTO settings (key, value, created_at) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value";
    txn.execute_raw(stmt(&txn, upsert, vec![MARK.into(), now.timestamp_millis().to_string().into(), now.timestamp_millis().into()])).await?;
    txn.commit().await?;
    Ok(applicants.len())
}

/// Why a listing was refused.
#[derive(Debug, thiserror::Error)]
pub enum ListingRefused {
    #[error("already on the dishonesty list (record {0})")]
    AlreadyListed(String),
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// Enters the applicant on the dishonesty list by a decision of `by`: a `listing` record (serious,
/// sealed) naming the rule and the reasons. One listing in force at a time.
pub async fn listing(db: &impl ConnectionTrait, rules: &CreditRules, keys: &AuditKeys, uscc: &str, by: &str, basis: &str, reason: &str, now: DateTime<Utc>) -> Result<CreditRecord, ListingRefused> {
    let sql = "SELECT id FROM credit_records WHERE applicant_uscc = ? AND kind = ? AND repaired_at IS NULL AND (publish_until IS NULL OR publish_until > ?)";
    if let Some(row) = db.query_one_raw(stmt(db, sql, vec![uscc.into(), kind::LISTING.into(), now.timestamp_millis().into()])).await? {
        return Err(ListingRefused::AlreadyListed(row.try_get("", "id")?));
    }
    let id = record(db, rules, keys, uscc, kind::LISTING, None, None, &format!("{basis}：{reason}（{by}）"), now).await?;
    Ok(one(db, &id).await?.ok_or(DbErr::RecordNotFound(id))?)
}

/// Why a repair was refused.
#[derive(Debug, thiserror::Error)]
pub enum RepairRefused {
    #[error("no unrepaired breach, revocation or listing record {0}")]
    NoSuchRecord(String),
    /// The minimum publication period of its category has not passed.
    #[error("the record may be repaired from {0} (the minimum publication period of its category)")]
    TooEarly(DateTime<Utc>),
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// Repairs a breach, a revocation or a listing (信用修复; a listing's repair lifts it from the
/// dishonesty list) once its category's minimum period has passed: it no longer counts; a
/// `repair` record says who, why and when, and is returned.
pub async fn repair(db: &impl ConnectionTrait, rules: &CreditRules, keys: &AuditKeys, id: &str, by: &str, reason: &str, now: DateTime<Utc>) -> Result<CreditRecord, RepairRefused> {
    let found = one(db, id).await?.ok_or_else(|| RepairRefused::NoSuchRecord(id.to_string()))?;
    if found.repaired_at.is_some() || rules.category_of(&found.kind).is_none() {
        return Err(RepairRefused::NoSuchRecord(id.to_string()));
    }
    if let Some(from) = found.repairable_from.and_then(DateTime::from_timestamp_millis) {
        if now < from {
            return Err(RepairRefused::TooEarly(from));
        }
    }
    db.execute_raw(stmt(
        db,
        "UPDATE credit_records SET repaired_at = ?, repaired_by = ?, repair_reason = ? WHERE id = ? AND repaired_at IS NULL",
        vec![now.timestamp_millis().into(), by.into(), reason.into(), id.into()],
    ))
    .await?;
    seal::seal(db, keys, &CREDIT_RECORDS, id).await?;
    let repair = record(db, rules, keys, &found.applicant_uscc, kind::REPAIR, found.instance_id.as_deref(), None, &format!("{id}: {reason}"), now).await?;
    one(db, &repair).await?.ok_or_else(|| RepairRefused::NoSuchRecord(repair))
}

#[cfg(test)]
mod tests {
    #[test]
    fn tiers_compare_worst_last() {
        assert_eq!(super::worse("A", "D"), "D");
        assert_eq!(super::worse("C", "B"), "C");
    }
}
