//! The audit trail: one append-only event per state change, each hashed over its own fields
//! and the hash of the instance's previous event, so that an edited, removed or inserted row
//! breaks the chain from there on.

use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use sha2::{Digest, Sha256};

use super::entities::{event, instance};

/// The `prev_hash` of an instance's first event.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The hash of an event row over its stored text, fields separated so none can bleed into
/// the next.
pub fn event_hash(e: &event::Model) -> String {
    let mut h = Sha256::new();
    for part in [
        e.prev_hash.as_str(),
        e.instance_id.as_str(),
        &e.seq.to_string(),
        e.event.as_str(),
        e.from_state.as_deref().unwrap_or(""),
        e.to_state.as_str(),
        e.actor.as_str(),
        e.payload.as_str(),
        &e.occurred_at.to_string(),
    ] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(h.finalize())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainBreak {
    pub instance_id: String,
    pub seq: Option<i64>,
    pub problem: String,
}

#[derive(Debug, Default)]
pub struct VerifyReport {
    pub instances: u64,
    pub events: u64,
    pub breaks: Vec<ChainBreak>,
}

/// Checks one instance's chain against its row: contiguous sequence numbers from 1, each
/// hash recomputed, each link to the previous hash, the row's version, state and last hash.
pub fn verify_chain(inst: &instance::Model, events: &[event::Model]) -> Vec<ChainBreak> {
    let mut breaks = Vec::new();
    let mut brk = |seq: Option<i64>, problem: String| breaks.push(ChainBreak { instance_id: inst.id.clone(), seq, problem });
    let mut prev = GENESIS.to_string();
    for (i, e) in events.iter().enumerate() {
        let expected_seq = i as i64 + 1;
        if e.seq != expected_seq {
            brk(Some(e.seq), format!("expected event {expected_seq}, found {}", e.seq));
            return breaks;
        }
        if e.prev_hash != prev {
            brk(Some(e.seq), "does not link to the previous event's hash".into());
        }
        if event_hash(e) != e.hash {
            brk(Some(e.seq), "its hash does not match its contents".into());
        }
        prev = e.hash.clone();
    }
    let last = events.last();
    if events.len() as i64 != inst.version {
        brk(None, format!("instance is at version {} but has {} events", inst.version, events.len()));
    }
    if last.map(|e| e.hash.as_str()) != Some(inst.last_event_hash.as_str()) {
        brk(None, "the instance's last hash is not its last event's".into());
    }
    if let Some(e) = last {
        if e.to_state != inst.state {
            brk(Some(e.seq), format!("last event leads to {:?} but the instance is in {:?}", e.to_state, inst.state));
        }
    }
    breaks
}

/// Walks every instance's chain, a page of instances at a time.
pub async fn verify_all(db: &impl ConnectionTrait) -> Result<VerifyReport, DbErr> {
    const PAGE: u64 = 500;
    let mut report = VerifyReport::default();
    let mut after = String::new();
    loop {
        let page = instance::Entity::find()
            .filter(instance::Column::Id.gt(after.clone()))
            .order_by_asc(instance::Column::Id)
            .limit(PAGE)
            .all(db)
            .await?;
        let Some(last) = page.last() else { break };
        after = last.id.clone();
        let ids: Vec<String> = page.iter().map(|i| i.id.clone()).collect();
        let events = event::Entity::find()
            .filter(event::Column::InstanceId.is_in(ids))
            .order_by_asc(event::Column::InstanceId)
            .order_by_asc(event::Column::Seq)
            .all(db)
            .await?;
        let mut by_instance: std::collections::HashMap<&str, &[event::Model]> = Default::default();
        for chunk in events.chunk_by(|a, b| a.instance_id == b.instance_id) {
            by_instance.insert(&chunk[0].instance_id, chunk);
        }
        for inst in &page {
            let mine = by_instance.get(inst.id.as_str()).copied().unwrap_or_default();
            report.events += mine.len() as u64;
            report.breaks.extend(verify_chain(inst, mine));
        }
        report.instances += page.len() as u64;
    }
    Ok(report)
}
