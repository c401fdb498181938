//! 一照通行's other half (seed 000 (九), 003 (一)4): every licence recorded under the business
//! licence, so that scanning its code shows them all. Open to anyone and rate-limited like the
//! public disclosure: given a unified social credit code, the enterprise's valid operating
//! licences — number, item, issuer, validity, commitment status — and no personal data.

use async_graphql::{Context, Enum, ErrorExtensions, Object, SimpleObject};
use chrono::{Datelike, NaiveDate};
use sea_orm::{ConnectionTrait, FromQueryResult};

use super::access::{error, ErrorCode};
use super::public::{limited, status, CommitmentStatus};
use super::Services;
use crate::domain::ids;
use crate::store::{fetch, instances::from_ms};
use crate::workflow::WorkflowSet;

#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum BusinessLicenceStatus {
    Valid,
    /// Deregistered: no licence stands under it any more.
    Deregistered,
}

/// One licence held under the business licence.
#[derive(SimpleObject, Debug, Clone, PartialEq, Eq)]
pub struct PublicLicence {
    pub licence_number: String,
    pub item_code: String,
    pub item_name: String,
    /// The issuing department's name.
    pub issuer: String,
    pub valid_from: NaiveDate,
    /// Null for a licence without a term.
    pub valid_until: Option<NaiveDate>,
    /// False while a licence issued first may not be used (deferred materials still owed).
    pub may_operate: bool,
    /// Whether the commitment it was granted on is kept; null for a licence granted in the
    /// ordinary procedure (一般程序), checked before it was issued: nothing was promised.
    pub commitment_status: Option<CommitmentStatus>,
}

#[derive(SimpleObject, Debug)]
pub struct PublicLicenceHolder {
    /// The code on the business licence.
    pub uscc: String,
    pub name: String,
    pub business_licence: BusinessLicenceStatus,
    pub licences: Vec<PublicLicence>,
}

#[derive(FromQueryResult)]
struct Row {
    licence_number: String,
    item_code: String,
    item_name: String,
    spec: String,
    issuer: String,
    licensed_at: Option<i64>,
    created_at: i64,
    definition_name: String,
    definition_version: i64,
    state: String,
    mode: String,
    breaches: i64,
}

pub async fn licences(db: &impl ConnectionTrait, set: &WorkflowSet, tz: chrono_tz::Tz, today: NaiveDate, uscc: &str) -> Result<Option<PublicLicenceHolder>, sea_orm::DbErr> {
    let Some(name) = crate::window::registry::applicant(db, uscc).await?.map(|a| a.name) else {
        return Ok(None);
    };
    if crate::window::registry::is_deregistered(db, uscc).await? {
        return Ok(Some(PublicLicenceHolder { uscc: uscc.into(), name, business_licence: BusinessLicenceStatus::Deregistered, licences: Vec::new() }));
    }
    let rows: Vec<Row> = fetch(
        db,
        "SELECT c.licence_number, c.item_code, ai.name AS item_name, ai.spec, d.name AS issuer, c.licensed_at, c.created_at, \
                i.definition_name, i.definition_version, i.state, c.mode, \
                (SELECT COUNT(*) FROM credit_records r WHERE r.instance_id = c.instance_id AND r.kind IN ('breach', 'revocation')) AS breaches \
         FROM cases c \
         JOIN workflow_instances i ON i.id = c.instance_id \
         JOIN approval_items ai ON ai.code = c.item_code AND ai.version = c.item_version \
         JOIN departments d ON d.code = c.department \
         WHERE c.applicant_uscc = ? AND c.licence_number IS NOT NULL ORDER BY c.licensed_at, c.item_code, c.licence_number",
        vec![uscc.into()],
    )
    .await?;
    let mut licences = Vec::new();
    for r in rows {
        // A licence stands while its case runs, or once closed with its commitment kept.
        let ended = set.get(&r.definition_name, r.definition_version).is_some_and(|d| d.is_final(&r.state)) && r.state != "closed";
        let Some(standing) = status(&r.state, r.breaches).filter(|_| !ended) else { continue };
        let commitment_status = (r.mode != crate::window::catalogue::Mode::Ordinary.as_str()).then_some(standing);
        let valid_from = from_ms(r.licensed_at.unwrap_or(r.created_at)).with_timezone(&tz).date_naive();
        let spec: serde_json::Value = serde_json::from_str(&r.spec).unwrap_or_default();
        let valid_until = spec["licence_valid_years"]
            .as_i64()
            .and_then(|y| valid_from.with_year(valid_from.year() + y as i32).or_else(|| valid_from.checked_add_days(chrono::Days::new(365 * y as u64))))
            .and_then(|d| d.pred_opt());
        if valid_until.is_some_and(|u| u < today) {
            continue;
        }
        licences.push(PublicLicence {
            licence_number: r.licence_number,
            item_code: r.item_code,
            item_name: r.item_name,
            issuer: r.issuer,
            valid_from,
            valid_until,
            may_operate: r.state != "licensed_not_operating",
            commitment_status,
        });
    }
    Ok(Some(PublicLicenceHolder { uscc: uscc.into(), name, business_licence: BusinessLicenceStatus::Valid, licences }))
}

#[derive(Default)]
pub struct LicenceQuery;

#[Object]
impl LicenceQuery {
    /// The licences recorded under a business licence, by the unified social credit code it
    /// carries: open to anyone, no sign-in, limited per client address. Null when no enterprise
    /// with this code is on file.
    async fn enterprise_licences(&self, ctx: &Context<'_>, uscc: String) -> async_graphql::Result<Option<PublicLicenceHolder>> {
        limited(ctx)?;
        let uscc = ids::uscc(&uscc).map_err(|e| error("BAD_USER_INPUT", e.to_string()).extend_with(|_, x| x.set("field", "uscc")))?;
        let services = ctx.data::<Services>()?;
        let engine = &services.engine;
        let tz = engine.workflows.env.tz;
        let today = engine.now().with_timezone(&tz).date_naive();
        licences(&engine.db, &engine.workflows.set, tz, today, &uscc).await.map_err(|e| e.internal())
    }
}
