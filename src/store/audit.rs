//! The audit trail: one append-only event per state change, each hashed over its own fields
//! and the hash of the instance's previous event, so that an edited, removed or inserted row
//! breaks the chain from there on.
//!
//! A plain hash only catches someone who does not recompute it. Events are therefore written
//! keyed — `hmac-sha256:<key id>`, an HMAC-SHA256 whose key lives in a file outside the
//! database (`crate::trail`) — and whoever can write the database but not read that file cannot
//! forge a link. Events from before keep their scheme, `sha256`, and verify as they were; an
//! unkeyed event after a keyed one in the same chain is a downgrade and reported.

use std::sync::Arc;

use hmac::{Hmac, Mac};
use sea_orm::{ConnectionTrait, DbErr, FromQueryResult};
use sha2::{Digest, Sha256};

use super::entities::{event, instance};

/// The `prev_hash` of an instance's first event.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The scheme of the events written before the trail was keyed.
pub const SHA256: &str = "sha256";
const HMAC_PREFIX: &str = "hmac-sha256:";

/// The settings row holding when this database's trail was first written keyed (UTC ms): a
/// wholly unkeyed chain begun after it was not written by this code.
pub const KEYED_SINCE: &str = "audit_keyed_since";
/// The settings row naming the key id events are written with (a second server started with
/// another key is refused instead of writing a trail no one can verify as one).
pub const KEY_ID: &str = "audit_key_id";

/// One audit key. Its id — the first 8 bytes of the SHA-256 of the key, in hex — names it in
/// every scheme and seal it makes, so a verifier holding several keys knows which to use.
#[derive(Clone)]
pub struct AuditKey {
    kid: String,
    secret: Arc<[u8]>,
}

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AuditKey({}, hidden)", self.kid)
    }
}

impl AuditKey {
    pub fn new(secret: &[u8]) -> Self {
        let kid = hex::encode(&Sha256::digest(secret)[..8]);
        Self { kid, secret: secret.into() }
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The scheme of the events this key writes.
    pub fn scheme(&self) -> String {
        format!("{HMAC_PREFIX}{}", self.kid)
    }

    fn mac(&self, parts: &[Option<&str>]) -> String {
        let mut m = Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC takes a key of any length");
        feed(&mut m, parts);
        hex::encode(m.finalize().into_bytes())
    }
}

/// The key events and seals are written with, and the retired ones older events and seals
/// were written with (read, never written).
#[derive(Clone, Debug)]
pub struct AuditKeys {
    current: AuditKey,
    retired: Vec<AuditKey>,
}

impl AuditKeys {
    pub fn new(current: AuditKey, retired: Vec<AuditKey>) -> Self {
        Self { current, retired }
    }

    pub fn current(&self) -> &AuditKey {
        &self.current
    }

    pub fn by_kid(&self, kid: &str) -> Option<&AuditKey> {
        std::iter::once(&self.current).chain(&self.retired).find(|k| k.kid == kid)
    }

    /// `parts` sealed with the current key: `hmac-sha256:<kid>:<hex>`.
    pub fn seal(&self, parts: &[Option<&str>]) -> String {
        format!("{}:{}", self.current.scheme(), self.current.mac(parts))
    }

    /// Whether `seal` is a seal of `parts` by one of these keys; `Err` says why not.
    pub fn check_seal(&self, parts: &[Option<&str>], seal: &str) -> Result<(), String> {
        let Some((kid, mac)) = seal.strip_prefix(HMAC_PREFIX).and_then(|rest| rest.split_once(':')) else {
            return Err(format!("its seal {seal:?} is not hmac-sha256:<key id>:<mac>"));
        };
        let key = self.by_kid(kid).ok_or_else(|| format!("sealed with key {kid}, which is not among the keys given (a retired key file missing?)"))?;
        if key.mac(parts) == mac {
            Ok(())
        } else {
            Err("its seal does not match its contents".into())
        }
    }
}

/// Each part length-prefixed (a missing one told apart from an empty one), so no field can
/// bleed into the next.
fn feed(m: &mut impl Mac, parts: &[Option<&str>]) {
    for part in parts {
        match part {
            Some(p) => {
                m.update(&(p.len() as u64).to_be_bytes());
                m.update(p.as_bytes());
            }
            None => m.update(&u64::MAX.to_be_bytes()),
        }
    }
}

/// The unkeyed hash of an event row over its stored text (scheme `sha256`, the events written
/// before the trail was keyed).
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

/// The keyed hash of an event row: its scheme is part of what is signed, so it cannot be
/// swapped for another.
fn event_mac(key: &AuditKey, e: &event::Model) -> String {
    let seq = e.seq.to_string();
    let at = e.occurred_at.to_string();
    key.mac(&[
        Some(e.scheme.as_str()),
        Some(&e.prev_hash),
        Some(&e.instance_id),
        Some(&seq),
        Some(&e.event),
        e.from_state.as_deref(),
        Some(&e.to_state),
        Some(&e.actor),
        Some(&e.payload),
        Some(&at),
        e.actor_subject.as_deref(),
    ])
}

/// Gives a new event row its scheme and hash: keyed with the current key.
pub fn seal_event(keys: &AuditKeys, row: &mut event::Model) {
    row.scheme = keys.current.scheme();
    row.hash = event_mac(&keys.current, row);
}

/// What a break concerns, named as `audit verify` prints it: `instance <id>`, `case <id>`,
/// `credit record <id>`, `applicant <uscc>`, `checkpoint line <n>` …
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainBreak {
    pub subject: String,
    pub seq: Option<i64>,
    pub problem: String,
}

impl ChainBreak {
    pub fn instance(id: &str, seq: Option<i64>, problem: impl Into<String>) -> Self {
        Self { subject: format!("instance {id}"), seq, problem: problem.into() }
    }

    pub fn row(subject: impl Into<String>, problem: impl Into<String>) -> Self {
        Self { subject: subject.into(), seq: None, problem: problem.into() }
    }
}

impl std::fmt::Display for ChainBreak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.seq {
            Some(seq) => write!(f, "{} event {seq}: {}", self.subject, self.problem),
            None => write!(f, "{}: {}", self.subject, self.problem),
        }
    }
}

#[derive(Debug, Default)]
pub struct VerifyReport {
    pub instances: u64,
    pub events: u64,
    /// Sealed rows checked (credit records, applicants, their change records) and cases.
    pub rows: u64,
    /// Instance heads a checkpoint file recorded, checked against the database.
    pub checkpointed: u64,
    pub breaks: Vec<ChainBreak>,
}

/// Checks one instance's chain against its row: contiguous sequence numbers from 1, each
/// hash recomputed (keyed events with the key their scheme names), each link to the previous
/// hash, no unkeyed event after a keyed one, the row's version, state and last hash.
/// `keyed_since`: when this database's trail was first keyed; a chain wholly unkeyed that
/// began after it is reported.
pub fn verify_chain(inst: &instance::Model, events: &[event::Model], keys: &AuditKeys, keyed_since: Option<i64>) -> Vec<ChainBreak> {
    let mut breaks = Vec::new();
    let mut brk = |seq: Option<i64>, problem: String| breaks.push(ChainBreak::instance(&inst.id, seq, problem));
    let mut prev = GENESIS.to_string();
    let mut keyed = false;
    for (i, e) in events.iter().enumerate() {
        let expected_seq = i as i64 + 1;
        if e.seq != expected_seq {
            brk(Some(e.seq), format!("expected event {expected_seq}, found {}", e.seq));
            return breaks;
        }
        if e.prev_hash != prev {
            brk(Some(e.seq), "does not link to the previous event's hash".into());
        }
        let expected = if e.scheme == SHA256 {
            if keyed {
                brk(Some(e.seq), "an unkeyed (sha256) event after a keyed one: a downgrade".into());
            }
            Some(event_hash(e))
        } else if let Some(kid) = e.scheme.strip_prefix(HMAC_PREFIX) {
            keyed = true;
            match keys.by_kid(kid) {
                Some(key) => Some(event_mac(key, e)),
                None => {
                    brk(Some(e.seq), format!("keyed with key {kid}, which is not among the keys given (a retired key file missing?)"));
                    None
                }
            }
        } else {
            brk(Some(e.seq), format!("unknown hash scheme {:?}", e.scheme));
            None
        };
        if expected.is_some_and(|h| h != e.hash) {
            brk(Some(e.seq), "its hash does not match its contents".into());
        }
        let subject = serde_json::from_str::<serde_json::Value>(&e.actor).ok().and_then(|a| a["subject"].as_str().map(str::to_string));
        if e.actor_subject.is_some() && e.actor_subject != subject {
            brk(Some(e.seq), "its actor_subject column disagrees with its actor".into());
        }
        prev = e.hash.clone();
    }
    if let (Some(first), Some(since), false) = (events.first(), keyed_since, keyed) {
        if first.occurred_at >= since {
            brk(Some(1), "a wholly unkeyed chain begun after the trail was keyed: rewritten without the key".into());
        }
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

/// When this database's trail was first written keyed, if it has been.
pub async fn keyed_since(db: &impl ConnectionTrait) -> Result<Option<i64>, DbErr> {
    #[derive(FromQueryResult)]
    struct Setting {
        value: String,
    }
    let rows: Vec<Setting> = super::fetch(db, "SELECT value FROM settings WHERE key = ?", vec![KEYED_SINCE.into()]).await?;
    Ok(rows.into_iter().next().and_then(|s| s.value.parse().ok()))
}
