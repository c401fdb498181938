//! The catalogue: approval items, each edit a new version (a running case keeps the version it
//! started with), with the commitment modes they allow and their limits, the materials, the
//! commitment letter template, and the linkage to the supervising division.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr, FromQueryResult};
use serde::{Deserialize, Serialize};

use crate::store::stmt;

/// The commitment modes (告知承诺审批情形).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, async_graphql::Enum)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// 材料延期 / 容缺受理: materials later, by a deadline.
    Deferral,
    /// 材料核验: materials checked against electronic licences.
    Verification,
    /// 事后核查: decided on the spot, checked afterwards.
    AfterTheFact,
    /// 一般程序: no commitment; acceptance, review and decision under the legal clock. Open to
    /// every item and applicant (excluded items and dishonest enterprises take only this route).
    Ordinary,
}

impl Mode {
    /// The workflow a case in this mode runs, for an item with these limits.
    pub fn workflow(self, limits: &ModeLimits) -> &'static str {
        match self {
            Mode::Deferral if limits.deferral_licence_first => "material-deferral-licence-first",
            Mode::Deferral => "material-deferral",
            Mode::Verification => "material-verification",
            Mode::AfterTheFact => "after-the-fact-review",
            Mode::Ordinary => crate::domain::definitions::STANDARD_REVIEW,
        }
    }
    /// A commitment mode (a letter signed, the credit gate applied), not the ordinary procedure.
    pub fn is_commitment(self) -> bool {
        self != Mode::Ordinary
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Deferral => "deferral",
            Mode::Verification => "verification",
            Mode::AfterTheFact => "after_the_fact",
            Mode::Ordinary => "ordinary",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, async_graphql::SimpleObject, async_graphql::InputObject)]
#[graphql(input_name = "MaterialSpecInput")]
pub struct MaterialSpec {
    pub code: String,
    pub name: String,
    /// May be supplied later under material deferral.
    #[serde(default)]
    #[graphql(default)]
    pub deferrable: bool,
    /// The kind of electronic licence it can be verified against, if any.
    #[serde(default)]
    pub licence_kind: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, async_graphql::SimpleObject, async_graphql::InputObject)]
#[graphql(input_name = "ModeLimitsInput")]
pub struct ModeLimits {
    /// Longest deferral in working days; null when deferral is not allowed.
    pub deferral_max_working_days: Option<i64>,
    /// Deferral issues the licence first; the holder may not operate until the materials are
    /// in (seed 001 (二)3). Otherwise the licence waits for the materials.
    #[serde(default)]
    #[graphql(default)]
    pub deferral_licence_first: bool,
    /// Whether verification against electronic licences is allowed.
    #[serde(default)]
    #[graphql(default)]
    pub verification: bool,
    /// Whether the decision may be made on the spot and checked afterwards.
    #[serde(default)]
    #[graphql(default)]
    pub after_the_fact: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, async_graphql::SimpleObject, async_graphql::InputObject)]
#[graphql(input_name = "LinkageInput")]
pub struct Linkage {
    pub department: String,
    pub division: String,
    pub supervision_item: String,
    /// Working days a rectification order gives the holder (限期整改), counted from the order.
    #[serde(default = "default_rectification_days")]
    #[graphql(default_with = "default_rectification_days()")]
    pub rectification_working_days: i64,
    /// The credit tiers whose licences get a routine supervision task at licensing (seed 004
    /// §12: better credit, fewer checks); none given, every tier. The others are left to the
    /// random draw.
    #[serde(default)]
    pub routine_tiers: Option<Vec<String>>,
}

impl Linkage {
    /// Whether a licence for an applicant of `tier` gets a routine task.
    pub fn routine_for(&self, tier: &str) -> bool {
        self.routine_tiers.as_ref().is_none_or(|tiers| tiers.iter().any(|t| t == tier))
    }
}

/// About two months, as the Shanghai measures give.
fn default_rectification_days() -> i64 {
    40
}

/// The procedure before an adverse decision on a broken commitment (seed 004 §8, §10; the
/// Administrative Licensing Law's 陈述、申辩): a notice of intended revocation with a period to
/// respond, the department's decision within its own limit, and a grace period it may grant once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, async_graphql::SimpleObject, async_graphql::InputObject)]
#[graphql(input_name = "DueProcessInput")]
#[serde(default)]
pub struct DueProcess {
    /// Working days the enterprise has to state its case after the notice.
    #[graphql(default = 5)]
    pub response_working_days: i64,
    /// Working days the approving department has to decide once the case is before it.
    #[graphql(default = 5)]
    pub decision_working_days: i64,
    /// Working days of the grace period the department may grant, once.
    #[graphql(default = 15)]
    pub grace_working_days: i64,
    /// Every case goes to the department's decision; otherwise, where the enterprise is
    /// silent when the response period ends, the system revokes on the department's behalf.
    #[graphql(default)]
    pub decision_required: bool,
}

impl Default for DueProcess {
    fn default() -> Self {
        Self { response_working_days: 5, decision_working_days: 5, grace_working_days: 15, decision_required: false }
    }
}

/// A field of the application form (经营场所, 经营面积, …): a bundle asks each code once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, async_graphql::SimpleObject, async_graphql::InputObject)]
#[graphql(input_name = "FormFieldSpecInput")]
pub struct FormFieldSpec {
    pub code: String,
    pub name: String,
}

/// Everything about an item beyond its code, name and department.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, async_graphql::SimpleObject, async_graphql::InputObject)]
#[graphql(input_name = "ItemSpecInput")]
pub struct ItemSpec {
    pub legal_basis: String,
    /// 直接取消审批 / 审批改为备案 / 实行告知承诺 / 优化审批服务.
    pub reform_mode: String,
    /// The licence conditions: quantifiable, no catch-all clause.
    pub conditions: Vec<String>,
    pub materials: Vec<MaterialSpec>,
    pub modes: ModeLimits,
    /// The commitment letter template (minijinja), and its version.
    pub commitment_template: String,
    pub commitment_version: i64,
    pub breach_consequences: String,
    pub supervision: Option<Linkage>,
    /// e.g. `JY{year}{seq:06}`: `{year}` and `{seq:0N}` are filled in.
    pub licence_pattern: String,
    /// The application form's fields (a bundle asks a code shared by several items once).
    #[serde(default)]
    #[graphql(default)]
    pub fields: Vec<FormFieldSpec>,
    /// The promised time limit in working days, counted from acceptance: the ordinary
    /// procedure's legal clock (20, the Administrative Licensing Law's own, where none is given).
    #[serde(default)]
    pub time_limit_working_days: Option<i64>,
    /// Years a licence is valid from its issue; none for one without a term.
    #[serde(default)]
    pub licence_valid_years: Option<i64>,
    /// The procedure before revoking a licence or ending an application for a broken commitment.
    #[serde(default)]
    #[graphql(default)]
    pub due_process: DueProcess,
}

/// An approval item (审批事项) at one version; a running case keeps the version it started on.
#[derive(Debug, Clone, PartialEq, Eq, async_graphql::SimpleObject)]
#[graphql(name = "ApprovalItem")]
pub struct Item {
    pub code: String,
    pub version: i64,
    pub name: String,
    pub department: String,
    /// Excluded from commitment approval (public safety, health, …): ordinary procedure only.
    pub excluded: bool,
    pub spec: ItemSpec,
    #[graphql(skip)]
    pub created_at: DateTime<Utc>,
}

#[derive(FromQueryResult)]
struct Row {
    code: String,
    version: i64,
    name: String,
    department: String,
    excluded: i64,
    spec: String,
    created_at: i64,
}

impl TryFrom<Row> for Item {
    type Error = DbErr;
    fn try_from(r: Row) -> Result<Self, DbErr> {
        let spec = serde_json::from_str(&r.spec).map_err(|e| DbErr::Custom(format!("item {} v{}: {e}", r.code, r.version)))?;
        Ok(Item {
            code: r.code,
            version: r.version,
            name: r.name,
            department: r.department,
            excluded: r.excluded != 0,
            spec,
            created_at: crate::store::millis::from_ms(r.created_at),
        })
    }
}

const COLUMNS: &str = "code, version, name, department, excluded, spec, created_at";

/// The newest version of `code`, or the given one.
pub async fn item(db: &impl ConnectionTrait, code: &str, version: Option<i64>) -> Result<Option<Item>, DbErr> {
    let row = match version {
        Some(v) => db.query_one_raw(stmt(db, &format!("SELECT {COLUMNS} FROM approval_items WHERE code = ? AND version = ?"), vec![code.into(), v.into()])).await?,
        None => {
            db.query_one_raw(stmt(db, &format!("SELECT {COLUMNS} FROM approval_items WHERE code = ? ORDER BY version DESC LIMIT 1"), vec![code.into()]))
                .await?
        }
    };
    row.map(|r| Row::from_query_result(&r, "").and_then(Item::try_from)).transpose()
}

/// Every version of the items `codes`, in one query.
pub async fn versions_of(db: &impl ConnectionTrait, codes: &[String]) -> Result<Vec<Item>, DbErr> {
    if codes.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!("SELECT {COLUMNS} FROM approval_items WHERE code IN ({}) ORDER BY code, version", vec!["?"; codes.len()].join(", "));
    let rows = db.query_all_raw(stmt(db, &sql, codes.iter().map(|c| c.clone().into()).collect())).await?;
    rows.iter().map(|r| Row::from_query_result(r, "").and_then(Item::try_from)).collect()
}

/// Newest version of every item, by code.
pub async fn items(db: &impl ConnectionTrait) -> Result<Vec<Item>, DbErr> {
    let rows = db
        .query_all_raw(stmt(
            db,
            &format!("SELECT {COLUMNS} FROM approval_items a WHERE version = (SELECT MAX(version) FROM approval_items b WHERE b.code = a.code) ORDER BY code"),
            vec![],
        ))
        .await?;
    rows.iter().map(|r| Row::from_query_result(r, "").and_then(Item::try_from)).collect()
}

/// Stores a new version of an item (1 for a new code). Returns the version.
pub async fn put(
    db: &impl ConnectionTrait,
    code: &str,
    name: &str,
    department: &str,
    excluded: bool,
    spec: &ItemSpec,
    by: &str,
    now: DateTime<Utc>,
) -> Result<i64, DbErr> {
    #[derive(FromQueryResult)]
    struct Max {
        v: Option<i64>,
    }
    let max = db.query_one_raw(stmt(db, "SELECT MAX(version) AS v FROM approval_items WHERE code = ?", vec![code.into()])).await?;
    let version = max.map(|r| Max::from_query_result(&r, "")).transpose()?.and_then(|m| m.v).unwrap_or(0) + 1;
    let spec = serde_json::to_string(spec).map_err(|e| DbErr::Custom(e.to_string()))?;
    db.execute_raw(stmt(
        db,
        "INSERT INTO approval_items (code, version, name, department, excluded, spec, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        vec![
            code.into(),
            version.into(),
            name.into(),
            department.into(),
            i64::from(excluded).into(),
            spec.into(),
            by.into(),
            now.timestamp_millis().into(),
        ],
    ))
    .await?;
    Ok(version)
}
