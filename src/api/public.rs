//! What anyone may see without signing in (seed 001 (二)3: 企业承诺内容应向社会公开): an
//! enterprise's commitments — the item, the licence conditions it promised to meet, the dates —
//! and whether each was kept. Never a person's name, contact or identity number, never an
//! officer's opinion or the internal context. Rate-limited per client address.

use std::net::IpAddr;
use std::num::NonZeroU32;

use async_graphql::{Context, Enum, ErrorExtensions, Object, SimpleObject};
use chrono::NaiveDate;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use sea_orm::{ConnectionTrait, FromQueryResult};

use super::access::{error, ErrorCode};
use super::Services;
use crate::domain::ids;
use crate::store::{fetch, instances::from_ms};

/// Requests per minute and client address for the unauthenticated fields.
pub struct PublicLimiter(DefaultKeyedRateLimiter<Option<IpAddr>>, Quota);

impl PublicLimiter {
    pub fn per_minute(n: NonZeroU32) -> Self {
        Self(RateLimiter::keyed(Quota::per_minute(n)), Quota::per_minute(n))
    }

    /// A bucket of the same size for one websocket connection: its operations have no request
    /// of their own to key by, and sharing one bucket between every websocket client let one
    /// of them starve the rest. (A client opening many connections is bounded by the edge's
    /// connections per address.)
    pub fn per_connection(&self) -> ConnectionLimiter {
        ConnectionLimiter(std::sync::Arc::new(RateLimiter::direct(self.1)))
    }
}

/// One websocket connection's bucket for the unauthenticated fields.
#[derive(Clone)]
pub struct ConnectionLimiter(std::sync::Arc<governor::DefaultDirectRateLimiter>);

/// The address the request came from (absent for in-process calls).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<IpAddr>);

pub(super) fn limited(ctx: &Context<'_>) -> async_graphql::Result<()> {
    if let Some(connection) = ctx.data_opt::<ConnectionLimiter>() {
        return connection.0.check().map_err(|_| error("RATE_LIMITED", "too many requests on this connection: try again in a minute"));
    }
    let services = ctx.data::<Services>()?;
    let client = ctx.data_opt::<ClientAddr>().and_then(|c| c.0);
    services
        .public_limiter
        .0
        .check_key(&client)
        .map_err(|_| error("RATE_LIMITED", "too many requests from this address: try again in a minute"))
}

/// Whether a commitment was kept, as the public sees it.
#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum CommitmentStatus {
    /// Still being fulfilled or checked (materials due, awaiting supervision).
    InForce,
    /// Checked and found kept.
    Kept,
    /// Broken: the licence was revoked or the deferral ran out.
    NotKept,
}

/// One commitment an enterprise made to obtain a licence.
#[derive(SimpleObject, Debug)]
pub struct PublicCommitment {
    pub item_code: String,
    pub item_name: String,
    /// The approving department's name.
    pub department: String,
    /// `deferral`, `verification` or `after_the_fact`.
    pub mode: String,
    /// The licence conditions the enterprise promised to meet.
    pub conditions: Vec<String>,
    pub promised_on: NaiveDate,
    /// When deferred materials were due, if any.
    pub materials_due: Option<NaiveDate>,
    pub licence_number: Option<String>,
    pub status: CommitmentStatus,
    /// When it was found kept or broken.
    pub settled_on: Option<NaiveDate>,
    /// A broken commitment whose credit consequences were repaired (信用修复).
    pub credit_repaired: bool,
}

#[derive(SimpleObject, Debug)]
pub struct PublicEnterprise {
    pub uscc: String,
    /// The enterprise's registered name.
    pub name: String,
    pub commitments: Vec<PublicCommitment>,
}

#[derive(FromQueryResult)]
struct Row {
    item_code: String,
    item_name: String,
    spec: String,
    department: String,
    mode: String,
    created_at: i64,
    licence_number: Option<String>,
    state: String,
    deadlines: String,
    updated_at: i64,
    breaches: i64,
    repaired: i64,
}

pub(super) fn status(state: &str, breaches: i64) -> Option<CommitmentStatus> {
    match state {
        "closed" => Some(CommitmentStatus::Kept),
        "revoked" => Some(CommitmentStatus::NotKept),
        // Refused on a deferral that ran out is a broken promise; otherwise no commitment stands.
        "refused" if breaches > 0 => Some(CommitmentStatus::NotKept),
        // Returned (退件) before any decision: nothing was promised to be kept.
        "refused" | "withdrawn" | "returned" => None,
        // Ended with the business licence (一照通行): not a broken promise, no longer in force.
        "deregistered" => None,
        _ => Some(CommitmentStatus::InForce),
    }
}

pub async fn commitments(db: &impl ConnectionTrait, tz: chrono_tz::Tz, uscc: &str) -> Result<Option<PublicEnterprise>, sea_orm::DbErr> {
    let Some(name) = crate::window::registry::applicant(db, uscc).await?.map(|a| a.name) else {
        return Ok(None);
    };
    let rows: Vec<Row> = fetch(
        db,
            "SELECT c.item_code, ai.name AS item_name, ai.spec, d.name AS department, c.mode, c.created_at, c.licence_number, \
                    i.state, i.deadlines, i.updated_at, \
                    (SELECT COUNT(*) FROM credit_records r WHERE r.instance_id = c.instance_id AND r.kind IN ('breach', 'revocation')) AS breaches, \
                    (SELECT COUNT(*) FROM credit_records r WHERE r.instance_id = c.instance_id AND r.kind IN ('breach', 'revocation') AND r.repaired_at IS NOT NULL) AS repaired \
             FROM cases c \
             JOIN workflow_instances i ON i.id = c.instance_id \
             JOIN approval_items ai ON ai.code = c.item_code AND ai.version = c.item_version \
             JOIN departments d ON d.code = c.department \
             WHERE c.applicant_uscc = ? AND c.mode <> 'ordinary' ORDER BY c.created_at DESC, c.instance_id",
        vec![uscc.into()],
    )
    .await?;
    let day = |ms: i64| from_ms(ms).with_timezone(&tz).date_naive();
    let mut commitments = Vec::new();
    for r in rows {
        let Some(status) = status(&r.state, r.breaches) else { continue };
        let spec: serde_json::Value = serde_json::from_str(&r.spec).unwrap_or_default();
        let deadlines: serde_json::Value = serde_json::from_str(&r.deadlines).unwrap_or_default();
        let materials_due = deadlines["materials_due"]
            .as_str()
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.with_timezone(&tz).date_naive());
        commitments.push(PublicCommitment {
            item_code: r.item_code,
            item_name: r.item_name,
            department: r.department,
            mode: r.mode,
            conditions: spec["conditions"].as_array().into_iter().flatten().filter_map(|c| c.as_str().map(str::to_string)).collect(),
            promised_on: day(r.created_at),
            materials_due,
            licence_number: r.licence_number,
            settled_on: (status != CommitmentStatus::InForce).then(|| day(r.updated_at)),
            credit_repaired: r.breaches > 0 && r.repaired == r.breaches,
            status,
        });
    }
    Ok(Some(PublicEnterprise { uscc: uscc.to_string(), name, commitments }))
}

#[derive(Default)]
pub struct PublicQuery;

#[Object]
impl PublicQuery {
    /// An enterprise's commitments and whether each was kept: open to anyone, no sign-in,
    /// limited per client address. Null when no enterprise with this code is on file. Cases of
    /// the ordinary procedure carry no commitment and are not listed; their licences are in
    /// `enterpriseLicences`.
    async fn public_commitments(&self, ctx: &Context<'_>, uscc: String) -> async_graphql::Result<Option<PublicEnterprise>> {
        limited(ctx)?;
        let uscc = ids::uscc(&uscc).map_err(|e| error("BAD_USER_INPUT", e.to_string()).extend_with(|_, x| x.set("field", "uscc")))?;
        let services = ctx.data::<Services>()?;
        commitments(&services.engine.db, services.engine.workflows.env.tz, &uscc).await.map_err(|e| e.internal())
    }
}

/// The reverse proxies whose `X-Forwarded-For` is believed (`PLEDGEFLOW_TRUSTED_PROXIES`).
#[derive(Clone, Default)]
pub struct TrustedProxies(pub std::sync::Arc<Vec<ipnet::IpNet>>);

impl TrustedProxies {
    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client behind `peer`: the peer itself unless it is a trusted proxy; then, walking
    /// `X-Forwarded-For` from the nearest hop back, the first address that is not a trusted
    /// proxy (anything further back was written by the client and proves nothing).
    pub fn client(&self, peer: IpAddr, forwarded_for: &[&str]) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let hops: Vec<&str> = forwarded_for.iter().flat_map(|v| v.split(',')).map(str::trim).collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            match hop.parse::<IpAddr>() {
                Ok(ip) => {
                    client = ip;
                    if !self.trusts(ip) {
                        break;
                    }
                }
                // A hop that is no address: stop at the last good one.
                Err(_) => break,
            }
        }
        client
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, Self::Rejection> {
        let Some(peer) = parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip()) else {
            return Ok(ClientAddr(None));
        };
        let trusted = parts.extensions.get::<TrustedProxies>().cloned().unwrap_or_default();
        let forwarded: Vec<&str> = parts.headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()).collect();
        Ok(ClientAddr(Some(trusted.client(peer, &forwarded))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_is_believed_from_trusted_proxies_only() {
        let trusted = TrustedProxies(std::sync::Arc::new(vec!["127.0.0.1/32".parse().unwrap(), "10.0.0.0/8".parse().unwrap()]));
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        // Straight from a client: its own header is ignored.
        assert_eq!(trusted.client(ip("203.0.113.9"), &["1.2.3.4"]), ip("203.0.113.9"));
        // Through the proxy: the address the proxy saw.
        assert_eq!(trusted.client(ip("127.0.0.1"), &["198.51.100.7"]), ip("198.51.100.7"));
        // A client forging hops before the proxy's: the nearest untrusted one counts.
        assert_eq!(trusted.client(ip("127.0.0.1"), &["1.1.1.1, 198.51.100.7", "10.1.2.3"]), ip("198.51.100.7"));
        // No header, or nonsense: the proxy itself.
        assert_eq!(trusted.client(ip("127.0.0.1"), &[]), ip("127.0.0.1"));
        assert_eq!(trusted.client(ip("127.0.0.1"), &["unknown"]), ip("127.0.0.1"));
        // Nothing trusted: never believed.
        assert_eq!(TrustedProxies::default().client(ip("127.0.0.1"), &["198.51.100.7"]), ip("127.0.0.1"));
    }
}
