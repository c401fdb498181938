//! Backups of an installation on SQLite: the database as one consistent file, taken while the
//! server runs (`VACUUM INTO` reads one snapshot; writers go on), with the files a restore needs
//! to be the same installation — the token signing key, the audit keys (current and retired)
//! and the audit checkpoints. A trail cannot be verified without the key it was written with,
//! so a backup without its keys is no backup. PostgreSQL is backed up by its own tools
//! (`pg_dump`, WAL archiving: docs/deploy.md); there `backup` copies the keys alone.

use std::path::{Path, PathBuf};

use anyhow::Context;
use sea_orm::ConnectionTrait;

use crate::config::Config;

/// The database file's name inside a backup folder.
pub const DATABASE: &str = "pledgeflow.db";
/// What a backup holds and how to restore it, written last: a folder without it is incomplete.
pub const MANIFEST: &str = "backup.toml";

/// One file of the installation a backup carries: its role, where the configuration keeps it,
/// and its name in the backup.
struct Part {
    role: &'static str,
    live: PathBuf,
    name: String,
}

fn parts(config: &Config) -> Vec<Part> {
    let mut parts = vec![
        Part { role: "signing key", live: config.key_path(), name: "signing.key".into() },
        Part { role: "audit key", live: crate::trail::audit_key_path(config), name: "audit.key".into() },
        Part { role: "audit checkpoints", live: crate::trail::checkpoint_path(config), name: "audit-checkpoints.jsonl".into() },
    ];
    for (i, p) in config.audit_retired_key_files.iter().enumerate() {
        parts.push(Part { role: "retired audit key", live: p.clone(), name: format!("audit-retired-{i}.key") });
    }
    parts
}

fn sqlite_file(config: &Config) -> Option<PathBuf> {
    let rest = config.database_url.strip_prefix("sqlite://")?;
    let file = rest.split('?').next()?;
    (!file.is_empty() && !file.contains(":memory:")).then(|| PathBuf::from(file))
}

/// What a backup wrote.
pub struct Taken {
    pub database: Option<PathBuf>,
    pub files: Vec<PathBuf>,
}

/// Takes a backup into `folder` (created; it must not hold a backup already).
pub async fn take(config: &Config, folder: &Path) -> anyhow::Result<Taken> {
    anyhow::ensure!(!folder.join(MANIFEST).exists(), "{} already holds a backup", folder.display());
    std::fs::create_dir_all(folder).with_context(|| format!("creating {}", folder.display()))?;
    let database = match sqlite_file(config) {
        Some(_) => {
            let target = folder.join(DATABASE);
            anyhow::ensure!(!target.exists(), "{} exists", target.display());
            let db = crate::store::connect(&config.database_url, 1).await?;
            let path = target.to_str().context("the backup folder's path is not text")?.replace('\'', "''");
            // One read transaction: every committed transition is in, none half.
            db.execute_unprepared(&format!("VACUUM INTO '{path}'")).await.context("VACUUM INTO")?;
            db.close().await?;
            Some(target)
        }
        None => None,
    };
    let mut files = Vec::new();
    let mut manifest = toml::map::Map::new();
    manifest.insert("taken_at".into(), chrono::Utc::now().to_rfc3339().into());
    manifest.insert("version".into(), env!("CARGO_PKG_VERSION").into());
    if database.is_some() {
        manifest.insert("database".into(), DATABASE.into());
    }
    let mut list = Vec::new();
    for part in parts(config) {
        if !part.live.exists() {
            continue;
        }
        let to = folder.join(&part.name);
        std::fs::copy(&part.live, &to).with_context(|| format!("copying the {} {}", part.role, part.live.display()))?;
        let mut entry = toml::map::Map::new();
        entry.insert("role".into(), part.role.into());
        entry.insert("file".into(), part.name.clone().into());
        entry.insert("from".into(), part.live.display().to_string().into());
        list.push(toml::Value::Table(entry));
        files.push(to);
    }
    manifest.insert("files".into(), toml::Value::Array(list));
    let text = format!(
        "# A pledgeflow backup. Restore with `pledgeflow restore --from <this folder>` under the\n# configuration of the installation to restore into.\n{}",
        toml::to_string(&toml::Value::Table(manifest))?
    );
    std::fs::write(folder.join(MANIFEST), text)?;
    Ok(Taken { database, files })
}

/// Restores the backup in `folder` to where `config` keeps the database and keys; refuses to
/// overwrite any of them (a restore goes into a fresh place, then is switched to).
pub fn restore(config: &Config, folder: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let manifest: toml::Value = toml::from_str(&std::fs::read_to_string(folder.join(MANIFEST)).with_context(|| format!("{} is not a complete backup", folder.display()))?)?;
    let mut moves = Vec::new();
    if manifest.get("database").is_some() {
        let to = sqlite_file(config).context("the backup holds a SQLite database; PLEDGEFLOW_DATABASE_URL names no SQLite file to restore it to")?;
        moves.push((folder.join(DATABASE), to));
    }
    let carried: Vec<String> = manifest.get("files").and_then(|f| f.as_array()).map(|a| a.iter().filter_map(|e| e.get("file")?.as_str().map(str::to_string)).collect()).unwrap_or_default();
    for part in parts(config) {
        if carried.contains(&part.name) {
            moves.push((folder.join(&part.name), part.live));
        }
    }
    for (_, to) in &moves {
        anyhow::ensure!(!to.exists(), "{} exists: restore into a fresh place", to.display());
    }
    let mut restored = Vec::new();
    for (from, to) in moves {
        if let Some(dir) = to.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::copy(&from, &to).with_context(|| format!("restoring {}", to.display()))?;
        restored.push(to);
    }
    Ok(restored)
}
