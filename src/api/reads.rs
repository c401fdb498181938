//! Queries on a PostgreSQL streaming replica (`PLEDGEFLOW_READ_DATABASE_URL`).
//!
//! A query request (statistics, lists, the public fields, the enterprise file, exports) runs
//! against the replica, a mutation against the primary. After a caller's mutation the primary's
//! WAL position is kept for that caller, and its queries stay on the primary until the replica
//! has replayed that far: a window officer sees the case just opened, whatever the lag. The
//! replica's replay position is read in the background (every `REFRESH`), so routing costs no
//! round trip; a replica that stops answering sends every query to the primary until it answers.
//! Subscriptions and the background loops never leave the primary.
//!
//! The positions are this process's: with several instances, route a caller to one instance
//! (sticky sessions at the proxy) or its own writes may be read from a lagging replica elsewhere.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};

/// How often the replica's replay position is read.
pub const REFRESH: Duration = Duration::from_millis(100);
/// How long a caller's write position is kept when nothing asks for it.
const KEEP: Duration = Duration::from_secs(600);

pub struct ReadReplica {
    db: DatabaseConnection,
    /// Replayed up to here (a WAL position as a number); 0 until first read.
    replayed: AtomicU64,
    answering: AtomicBool,
    /// Each caller's last write on the primary.
    written: Mutex<HashMap<String, (u64, Instant)>>,
}

/// Where a request reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Replica,
    Primary,
}

impl ReadReplica {
    /// Connects to the replica and starts following its replay position.
    pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<Arc<Self>> {
        let db = crate::store::connect(url, max_connections).await.map_err(|e| anyhow::anyhow!("the read replica {}: {e}", crate::config::redact(url)))?;
        let replica = Arc::new(Self { db, replayed: AtomicU64::new(0), answering: AtomicBool::new(false), written: Mutex::new(HashMap::new()) });
        replica.refresh().await;
        if !replica.answering.load(Ordering::Relaxed) {
            tracing::warn!(replica = %crate::config::redact(url), "the read replica does not report a replay position (is it a standby?); queries read from the primary until it does");
        }
        tokio::spawn(follow(Arc::downgrade(&replica)));
        Ok(replica)
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Where a query of `subject` (none: an anonymous caller) reads.
    pub fn route(&self, subject: Option<&str>) -> Route {
        if !self.answering.load(Ordering::Relaxed) {
            return Route::Primary;
        }
        let Some(subject) = subject else { return Route::Replica };
        let replayed = self.replayed.load(Ordering::Acquire);
        let mut written = self.written.lock().unwrap_or_else(|p| p.into_inner());
        match written.get(subject) {
            Some((at, _)) if *at > replayed => Route::Primary,
            Some(_) => {
                written.remove(subject);
                Route::Replica
            }
            None => Route::Replica,
        }
    }

    /// Notes that `subject` has just written on `primary`: its queries wait for the replica to
    /// replay the primary's present WAL position (at or past the caller's commit).
    pub async fn wrote(&self, primary: &DatabaseConnection, subject: &str) {
        match wal_position(primary, "SELECT pg_current_wal_lsn()::text AS lsn").await {
            Ok(Some(at)) => {
                let mut written = self.written.lock().unwrap_or_else(|p| p.into_inner());
                written.insert(subject.to_string(), (at, Instant::now()));
            }
            // Without the position, read this caller from the primary for a while.
            Ok(None) | Err(_) => {
                let mut written = self.written.lock().unwrap_or_else(|p| p.into_inner());
                written.insert(subject.to_string(), (u64::MAX, Instant::now()));
            }
        }
    }

    async fn refresh(&self) {
        match wal_position(&self.db, "SELECT pg_last_wal_replay_lsn()::text AS lsn").await {
            Ok(Some(at)) => {
                self.replayed.store(at, Ordering::Release);
                if !self.answering.swap(true, Ordering::Relaxed) {
                    tracing::info!("the read replica answers: queries read from it");
                }
            }
            Ok(None) | Err(_) => {
                if self.answering.swap(false, Ordering::Relaxed) {
                    tracing::warn!("the read replica does not answer: queries read from the primary until it does");
                }
            }
        }
        let mut written = self.written.lock().unwrap_or_else(|p| p.into_inner());
        let replayed = self.replayed.load(Ordering::Acquire);
        // A kept position expires only once replayed, or (the u64::MAX stand-in) after KEEP.
        written.retain(|_, (at, since)| *at > replayed && since.elapsed() < KEEP);
    }
}

async fn follow(replica: Weak<ReadReplica>) {
    let mut tick = tokio::time::interval(REFRESH);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(replica) = replica.upgrade() else { return };
        replica.refresh().await;
    }
}

async fn wal_position(db: &DatabaseConnection, sql: &str) -> Result<Option<u64>, sea_orm::DbErr> {
    let row = db.query_one_raw(Statement::from_string(db.get_database_backend(), sql)).await?;
    let text: Option<String> = match row {
        Some(r) => r.try_get("", "lsn")?,
        None => None,
    };
    Ok(text.as_deref().and_then(parse_lsn))
}

/// A WAL position as PostgreSQL prints it (`16/B374D848`: high and low 32 bits in hex).
pub fn parse_lsn(text: &str) -> Option<u64> {
    let (high, low) = text.split_once('/')?;
    Some((u64::from_str_radix(high, 16).ok()? << 32) | u64::from_str_radix(low, 16).ok()?)
}

/// Whether the request's operation (the named one, else the only one) is a query.
pub fn is_query(request: &async_graphql::Request) -> bool {
    use async_graphql::parser::types::{DocumentOperations, OperationType};
    let Ok(doc) = async_graphql::parser::parse_query(&request.query) else { return false };
    let ty = match (&doc.operations, request.operation_name.as_deref()) {
        (DocumentOperations::Single(op), _) => Some(op.node.ty),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name).map(|op| op.node.ty),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => ops.values().next().map(|op| op.node.ty),
        _ => None,
    };
    ty == Some(OperationType::Query)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wal_positions_parse_and_order() {
        assert_eq!(parse_lsn("0/0"), Some(0));
        assert_eq!(parse_lsn("16/B374D848"), Some((0x16 << 32) | 0xB374_D848));
        assert!(parse_lsn("1/0") > parse_lsn("0/FFFFFFFF"));
        assert_eq!(parse_lsn("nonsense"), None);
    }

    #[test]
    fn only_queries_read_from_the_replica() {
        let req = |q: &str, name: Option<&str>| {
            let mut r = async_graphql::Request::new(q);
            if let Some(n) = name {
                r = r.operation_name(n);
            }
            r
        };
        assert!(is_query(&req("{ serverClock { now } }", None)));
        assert!(!is_query(&req("mutation { advanceClock(input: {bySeconds: 1}) { now } }", None)));
        assert!(!is_query(&req("subscription { caseEvents(caseId: \"x\") { seq } }", None)));
        let two = "query A { serverClock { now } } mutation B { advanceClock(input: {bySeconds: 1}) { now } }";
        assert!(is_query(&req(two, Some("A"))));
        assert!(!is_query(&req(two, Some("B"))));
        assert!(!is_query(&req(two, None)));
        assert!(!is_query(&req("{ not graphql", None)));
    }
}
