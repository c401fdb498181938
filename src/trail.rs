//! What anchors the audit trail outside the database: the audit key file the chain is keyed
//! with, and the checkpoint file where the head of every instance's chain is appended, sealed,
//! on a schedule. Whoever can write the database but not these files cannot rewrite, delete
//! or truncate a history without `audit verify --checkpoint` telling.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use rand::RngCore;
use sea_orm::{ConnectionTrait, DbErr, FromQueryResult};

use crate::store::fetch;
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::store::audit::{self, AuditKey, AuditKeys, ChainBreak, VerifyReport};

/// Where the audit key lives: `PLEDGEFLOW_AUDIT_KEY_FILE`; else, when the signing key file is
/// configured, `audit.key` in its folder (several servers on one PostgreSQL share that folder's
/// keys); else beside an embedded SQLite database (`<file>.audit.key`); else `audit.key` in the
/// data folder. Never in the database.
pub fn audit_key_path(config: &Config) -> PathBuf {
    if let Some(path) = &config.audit_key_file {
        return path.clone();
    }
    if let Some(signing) = &config.key_file {
        return signing.parent().unwrap_or(Path::new("")).join("audit.key");
    }
    if let Some(file) = config.database_url.strip_prefix("sqlite://").and_then(|rest| rest.split('?').next()) {
        if !file.is_empty() && !file.contains(":memory:") {
            return PathBuf::from(format!("{file}.audit.key"));
        }
    }
    config.data_dir.join("audit.key")
}

/// Where checkpoints are appended: `PLEDGEFLOW_AUDIT_CHECKPOINT_FILE`, else
/// `audit-checkpoints.jsonl` in the data folder.
pub fn checkpoint_path(config: &Config) -> PathBuf {
    config.audit_checkpoint_file.clone().unwrap_or_else(|| config.data_dir.join("audit-checkpoints.jsonl"))
}

/// Creates `path` holding `text`, readable by this user alone, all at once: written under a
/// temporary name and linked into place, so a server starting beside another never reads a
/// half-written key. `Ok(false)` when another process created it first.
fn create_private(path: &Path, text: &str) -> std::io::Result<bool> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    }
    let tmp = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4().simple()));
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

fn read_key(path: &Path, what: &str) -> anyhow::Result<AuditKey> {
    use std::os::unix::fs::PermissionsExt;
    let shown = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("reading the {what} {shown}: {e}"))?;
    let secret = text.trim();
    if secret.len() < 32 {
        anyhow::bail!("the {what} {shown} holds less than 32 characters");
    }
    let mode = std::fs::metadata(path)?.permissions().mode();
    if mode & 0o077 != 0 {
        tracing::warn!(file = %shown, mode = format!("{:o}", mode & 0o777), "the {what} is readable by others: chmod 600 it");
    }
    Ok(AuditKey::new(secret.as_bytes()))
}

/// The audit keys: the current one from `audit_key_path` — generated there (0600) when
/// `create` and there is none yet, which only a server's first start should do — and the
/// retired ones listed in `PLEDGEFLOW_AUDIT_RETIRED_KEY_FILES`.
pub fn keys(config: &Config, create: bool) -> anyhow::Result<AuditKeys> {
    let path = audit_key_path(config);
    if !path.exists() {
        if !create {
            anyhow::bail!(
                "no audit key file at {} (PLEDGEFLOW_AUDIT_KEY_FILE): the trail cannot be verified without the key it was written with",
                path.display()
            );
        }
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        if create_private(&path, &hex::encode(bytes)).map_err(|e| anyhow::anyhow!("creating the audit key file {}: {e}", path.display()))? {
            tracing::info!(file = %path.display(), "audit key file created (0600); back it up with the database and keep it out of the database's reach");
        }
    }
    let current = read_key(&path, "audit key file")?;
    let retired = config.audit_retired_key_files.iter().map(|p| read_key(p, "retired audit key file")).collect::<anyhow::Result<_>>()?;
    Ok(AuditKeys::new(current, retired))
}

/// One instance's chain head: id, version (= its last event's seq) and last hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head(pub String, pub i64, pub String);

/// One line of the checkpoint file. Every field but `seal` is sealed, in this order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// When it was taken (UTC ms, the engine's clock).
    pub at: i64,
    /// Instances in the database then.
    pub instances: i64,
    /// `None`: every instance's head; else the heads of the instances changed since then
    /// (the previous checkpoint, less a margin), the earlier lines holding the rest.
    pub since: Option<i64>,
    pub heads: Vec<Head>,
    /// Rows of each sealed table (`store::seal::TABLES`): deletions show as fewer.
    pub rows: BTreeMap<String, i64>,
    /// When the trail was first keyed (`store::audit::KEYED_SINCE`).
    pub keyed_since: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seal: Option<String>,
}

impl Checkpoint {
    fn sealed_text(&self) -> String {
        let bare = Self { seal: None, ..self.clone() };
        serde_json::to_string(&bare).expect("a checkpoint serializes")
    }
}

/// A transaction committed with an `updated_at` taken a little before a checkpoint's read can
/// land after it: the next checkpoint looks back this far.
const MARGIN_MS: i64 = 10 * 60 * 1000;

/// The last line of `path`, read from the end (the file grows by a line per checkpoint).
fn last_line(path: &Path) -> std::io::Result<Option<String>> {
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let len = f.metadata()?.len();
    let mut tail = Vec::new();
    let mut pos = len;
    const STEP: u64 = 64 * 1024;
    loop {
        let start = pos.saturating_sub(STEP);
        let mut chunk = vec![0; (pos - start) as usize];
        f.seek(SeekFrom::Start(start))?;
        f.read_exact(&mut chunk)?;
        chunk.extend_from_slice(&tail);
        tail = chunk;
        let text = String::from_utf8_lossy(&tail);
        let trimmed = text.trim_end();
        if let Some(i) = trimmed.rfind('\n') {
            return Ok(Some(trimmed[i + 1..].to_string()));
        }
        if start == 0 {
            return Ok((!trimmed.is_empty()).then(|| trimmed.to_string()));
        }
        pos = start;
    }
}

/// Takes a checkpoint of `db` at `now` and appends it to `path` (created 0600): the heads of the
/// instances changed since the file's last checkpoint (all of them when `full`, or when the
/// file holds none this key can read).
pub async fn write_checkpoint(db: &impl ConnectionTrait, keys: &AuditKeys, path: &Path, now: DateTime<Utc>, full: bool) -> anyhow::Result<Checkpoint> {
    let previous = if full {
        None
    } else {
        last_line(path)?.and_then(|line| serde_json::from_str::<Checkpoint>(&line).ok()).filter(|c| c.seal.as_deref().is_some_and(|s| keys.check_seal(&[Some(&c.sealed_text())], s).is_ok()))
    };
    let since = previous.map(|p| p.at - MARGIN_MS);
    #[derive(FromQueryResult)]
    struct Row {
        id: String,
        version: i64,
        last_event_hash: String,
    }
    let sql = "SELECT id, version, last_event_hash FROM workflow_instances";
    let rows: Vec<Row> = match since {
        Some(t) => fetch(db, &format!("{sql} WHERE updated_at >= ? ORDER BY id"), vec![t.into()]).await?,
        None => fetch(db, &format!("{sql} ORDER BY id"), vec![]).await?,
    };
    let mut checkpoint = Checkpoint {
        at: now.timestamp_millis(),
        instances: count(db, "SELECT COUNT(*) AS n FROM workflow_instances").await?,
        since,
        heads: rows.into_iter().map(|r| Head(r.id, r.version, r.last_event_hash)).collect(),
        rows: crate::store::seal::counts(db).await?,
        keyed_since: audit::keyed_since(db).await?,
        seal: None,
    };
    checkpoint.seal = Some(keys.seal(&[Some(&checkpoint.sealed_text())]));
    append(path, &(serde_json::to_string(&checkpoint)? + "\n")).map_err(|e| anyhow::anyhow!("appending a checkpoint to {}: {e}", path.display()))?;
    Ok(checkpoint)
}

fn append(path: &Path, line: &str) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    }
    use std::os::fd::AsRawFd;
    let mut f = std::fs::OpenOptions::new().read(true).append(true).create(true).mode(0o600).open(path)?;
    // Servers sharing a data folder append to one file: a line is written whole under the lock.
    // SAFETY: flock on a descriptor this function owns; released when `f` is closed.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // A process killed mid-line left a torn line: the next starts on a line of its own.
    let len = f.metadata()?.len();
    let mut text = String::new();
    if len > 0 {
        let mut last = [0u8; 1];
        f.seek(SeekFrom::Start(len - 1))?;
        f.read_exact(&mut last)?;
        if last[0] != b'\n' {
            text.push('\n');
        }
    }
    text.push_str(line);
    f.write_all(text.as_bytes())?;
    f.sync_data()
}

async fn count(db: &impl ConnectionTrait, sql: &str) -> Result<i64, DbErr> {
    crate::store::count(db, sql, vec![]).await
}

/// Checks the database against the checkpoint file at `path`: each line's seal (a forged or
/// edited line is a break and is not used), then for the newest head of every instance any
/// line recorded — the instance is still there, at least at that version, and its event at
/// that version still has that hash — and, against the newest line, that no sealed table
/// holds fewer rows and the keyed-since mark is unchanged.
pub async fn verify_checkpoints(db: &impl ConnectionTrait, keys: &AuditKeys, path: &Path, report: &mut VerifyReport) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("reading the checkpoint file {}: {e}", path.display()))?;
    let mut heads: HashMap<String, (i64, String, i64)> = HashMap::new();
    let mut newest: Option<Checkpoint> = None;
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let subject = format!("checkpoint line {}", n + 1);
        let Ok(c) = serde_json::from_str::<Checkpoint>(line) else {
            report.breaks.push(ChainBreak::row(subject, "not a checkpoint (torn by a crash while it was written, or edited)"));
            continue;
        };
        let sealed = match &c.seal {
            Some(s) => keys.check_seal(&[Some(&c.sealed_text())], s),
            None => Err("it has no seal".into()),
        };
        if let Err(problem) = sealed {
            report.breaks.push(ChainBreak::row(subject, format!("{problem}: forged or edited, not used")));
            continue;
        }
        for Head(id, version, hash) in &c.heads {
            if heads.get(id).is_none_or(|(v, _, _)| v <= version) {
                heads.insert(id.clone(), (*version, hash.clone(), c.at));
            }
        }
        if newest.as_ref().is_none_or(|p| p.at <= c.at) {
            newest = Some(c);
        }
    }
    let Some(newest) = newest else {
        report.breaks.push(ChainBreak::row(format!("checkpoint file {}", path.display()), "holds no checkpoint sealed with the keys given"));
        return Ok(());
    };
    let mut ids: Vec<&String> = heads.keys().collect();
    ids.sort();
    #[derive(FromQueryResult)]
    struct Now {
        id: String,
        version: i64,
    }
    #[derive(FromQueryResult)]
    struct Event {
        instance_id: String,
        seq: i64,
        hash: String,
    }
    let when = |at: i64| crate::store::millis::from_ms(at).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    for chunk in ids.chunks(400) {
        let marks = vec!["?"; chunk.len()].join(", ");
        let values: Vec<sea_orm::Value> = chunk.iter().map(|id| id.as_str().into()).collect();
        let found: HashMap<String, i64> =
            fetch::<Now>(db, &format!("SELECT id, version FROM workflow_instances WHERE id IN ({marks})"), values).await?.into_iter().map(|r| (r.id, r.version)).collect();
        let pairs: Vec<sea_orm::Value> = chunk.iter().flat_map(|id| [sea_orm::Value::from(id.as_str()), heads[*id].0.into()]).collect();
        let pair_marks = vec!["(?, ?)"; chunk.len()].join(", ");
        let events: HashMap<(String, i64), String> = fetch::<Event>(
            db,
            &format!("SELECT instance_id, seq, hash FROM workflow_events WHERE (instance_id, seq) IN (VALUES {pair_marks})"),
            pairs,
        )
        .await?
        .into_iter()
        .map(|e| ((e.instance_id, e.seq), e.hash))
        .collect();
        for id in chunk {
            let (version, hash, at) = &heads[*id];
            report.checkpointed += 1;
            let Some(now) = found.get(*id) else {
                report.breaks.push(ChainBreak::instance(id, None, format!("deleted: the checkpoint of {} recorded it at version {version}", when(*at))));
                continue;
            };
            if now < version {
                report.breaks.push(ChainBreak::instance(id, None, format!("at version {now}, below the version {version} the checkpoint of {} recorded: its history was truncated", when(*at))));
            }
            match events.get(&((*id).clone(), *version)) {
                None => report.breaks.push(ChainBreak::instance(id, Some(*version), format!("gone, though the checkpoint of {} recorded it", when(*at)))),
                Some(h) if h != hash => report.breaks.push(ChainBreak::instance(id, Some(*version), format!("its hash is not the one the checkpoint of {} recorded: rewritten", when(*at)))),
                Some(_) => {}
            }
        }
    }
    let now_rows = crate::store::seal::counts(db).await?;
    for (table, then) in &newest.rows {
        let now = now_rows.get(table).copied().unwrap_or_default();
        if now < *then {
            report.breaks.push(ChainBreak::row(format!("table {table}"), format!("{now} rows, fewer than the {then} the checkpoint of {} recorded: rows deleted", when(newest.at))));
        }
    }
    let instances = count(db, "SELECT COUNT(*) AS n FROM workflow_instances").await?;
    if instances < newest.instances {
        report.breaks.push(ChainBreak::row("table workflow_instances", format!("{instances} instances, fewer than the {} the checkpoint of {} recorded", newest.instances, when(newest.at))));
    }
    if audit::keyed_since(db).await? != newest.keyed_since {
        report.breaks.push(ChainBreak::row(format!("setting {}", audit::KEYED_SINCE), "differs from what the checkpoints recorded"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_audit_key_goes_beside_the_signing_key_else_the_database_else_the_data_folder() {
        let mut c = Config { database_url: "sqlite:///srv/pf/pledgeflow.db?mode=rwc".into(), ..Config::default() };
        assert_eq!(audit_key_path(&c), PathBuf::from("/srv/pf/pledgeflow.db.audit.key"));
        c.key_file = Some("/etc/pledgeflow/signing.key".into());
        assert_eq!(audit_key_path(&c), PathBuf::from("/etc/pledgeflow/audit.key"), "servers sharing a signing key share the audit key");
        c.audit_key_file = Some("/etc/pledgeflow/trail.key".into());
        assert_eq!(audit_key_path(&c), PathBuf::from("/etc/pledgeflow/trail.key"));
        let pg = Config { database_url: "postgres://pf@db/pf".into(), data_dir: "/var/lib/pf".into(), ..Config::default() };
        assert_eq!(audit_key_path(&pg), PathBuf::from("/var/lib/pf/audit.key"));
        assert_eq!(checkpoint_path(&pg), PathBuf::from("/var/lib/pf/audit-checkpoints.jsonl"));
    }

    #[test]
    fn a_seal_names_its_key_and_only_that_key_or_a_retired_one_opens_it() {
        let (old, new) = (AuditKey::new(b"0123456789abcdef0123456789abcdef"), AuditKey::new(b"fedcba9876543210fedcba9876543210"));
        let before = AuditKeys::new(old.clone(), vec![]);
        let seal = before.seal(&[Some("credit_records"), Some("x"), None]);
        assert!(seal.starts_with(&format!("hmac-sha256:{}:", old.kid())));
        assert_eq!(before.check_seal(&[Some("credit_records"), Some("x"), None], &seal), Ok(()));
        assert!(before.check_seal(&[Some("credit_records"), Some("x"), Some("")], &seal).is_err(), "a missing value is not an empty one");
        assert!(AuditKeys::new(new.clone(), vec![]).check_seal(&[Some("credit_records"), Some("x"), None], &seal).unwrap_err().contains("not among the keys given"));
        assert_eq!(AuditKeys::new(new, vec![old]).check_seal(&[Some("credit_records"), Some("x"), None], &seal), Ok(()), "a retired key still opens its seals");
    }
}
