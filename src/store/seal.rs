//! Audited records: rows no event records in full — credit records, applicants, the records of
//! applicants' changes — carry a seal (`hmac-sha256:<key id>:<mac>`) over their columns, made
//! with the audit key wherever they are written. `audit verify` checks each seal, and checks
//! the rows that events do record against those events: a case's licence number, commitment
//! and applicant; a credit record against the event that wrote it; an applicant against its
//! latest change records.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr, FromQueryResult};
use serde_json::Value;

use super::audit::{AuditKeys, ChainBreak, VerifyReport, KEYED_SINCE, KEY_ID};
use super::entities::event;
use super::{fetch, stmt};

/// A sealed table: its key column and the columns its seal covers.
pub struct Table {
    pub name: &'static str,
    pub key: &'static str,
    pub columns: &'static [&'static str],
    /// Columns added later: sealed by name and value when set, left out when NULL, so that a row
    /// sealed before they existed keeps its seal, and setting or clearing one breaks it.
    pub later: &'static [&'static str],
    /// How a break names one of its rows.
    pub what: &'static str,
}

pub const CREDIT_RECORDS: Table = Table {
    name: "credit_records",
    key: "id",
    columns: &["id", "applicant_uscc", "kind", "instance_id", "event_seq", "reason", "created_at", "repaired_at", "repaired_by", "repair_reason"],
    later: &["category", "publish_until", "repairable_from"],
    what: "credit record",
};

// `updated_at` is left out: it says when, not what.
pub const APPLICANTS: Table = Table {
    name: "applicants",
    key: "uscc",
    columns: &["uscc", "name", "legal_representative", "email", "mobile", "credit_tier", "dishonest", "imported_tier", "imported_dishonest", "home_region"],
    later: &[],
    what: "applicant",
};

pub const APPLICANT_CHANGES: Table = Table {
    name: "applicant_changes",
    key: "id",
    columns: &["id", "uscc", "field", "old_value", "new_value", "changed_by", "changed_at"],
    later: &[],
    what: "applicant change",
};

// Written once, last in the transaction that issues the licence (`window::intake`).
pub const LICENCES: Table = Table {
    name: "licences",
    key: "instance_id",
    columns: &["instance_id", "number", "event_seq", "issued_at"],
    later: &[],
    what: "licence",
};

pub const TABLES: [&Table; 4] = [&CREDIT_RECORDS, &APPLICANTS, &APPLICANT_CHANGES, &LICENCES];

/// The seal of a row about to be written with `values` (every column of `t`, as text, none
/// later): for a row that must be written in one statement, without reading it back.
pub fn seal_of(keys: &AuditKeys, t: &Table, values: &[&str]) -> String {
    debug_assert!(t.later.is_empty() && values.len() == t.columns.len());
    let parts: Vec<Option<&str>> = std::iter::once(Some(t.name)).chain(values.iter().map(|v| Some(*v))).collect();
    keys.seal(&parts)
}

/// A row as text: every column cast, so that both backends give the same string for a number.
struct Row {
    values: Vec<Option<String>>,
    mac: Option<String>,
}

impl Row {
    fn key(&self) -> &str {
        self.values[0].as_deref().unwrap_or_default()
    }

    fn get(&self, t: &Table, column: &str) -> Option<&str> {
        t.columns.iter().chain(t.later).position(|c| *c == column).and_then(|i| self.values[i].as_deref())
    }

    /// What the seal covers: the table, its columns, and each later column that is set.
    fn parts(&self, t: &Table) -> Vec<Option<String>> {
        let base = self.values[..t.columns.len()].iter().map(|v| v.clone());
        let later = t.later.iter().zip(&self.values[t.columns.len()..]).filter_map(|(c, v)| v.as_ref().map(|v| Some(format!("{c}={v}"))));
        std::iter::once(Some(t.name.to_string())).chain(base).chain(later).collect()
    }
}

fn as_refs(parts: &[Option<String>]) -> Vec<Option<&str>> {
    parts.iter().map(|p| p.as_deref()).collect()
}

fn select(t: &Table) -> String {
    // The key first (`Row::key`), then the rest in the seal's order.
    debug_assert_eq!(t.columns[0], t.key);
    let cols: Vec<String> = t.columns.iter().chain(t.later).map(|c| format!("CAST({c} AS TEXT) AS {c}")).collect();
    format!("SELECT {}, mac FROM {}", cols.join(", "), t.name)
}

async fn rows(db: &impl ConnectionTrait, t: &Table, filter: &str, values: Vec<sea_orm::Value>) -> Result<Vec<Row>, DbErr> {
    let found = db.query_all_raw(stmt(db, &format!("{} {filter}", select(t)), values)).await?;
    found
        .iter()
        .map(|r| {
            let n = t.columns.len() + t.later.len();
            let values = (0..n).map(|i| r.try_get_by_index::<Option<String>>(i)).collect::<Result<_, _>>()?;
            Ok(Row { values, mac: r.try_get_by_index::<Option<String>>(n)? })
        })
        .collect()
}

/// Seals row `key` of `t` as it stands, in the caller's transaction: called after each write.
pub async fn seal(db: &impl ConnectionTrait, keys: &AuditKeys, t: &Table, key: &str) -> Result<(), DbErr> {
    for row in rows(db, t, &format!("WHERE {} = ?", t.key), vec![key.into()]).await? {
        let mac = keys.seal(&as_refs(&row.parts(t)));
        db.execute_raw(stmt(db, &format!("UPDATE {} SET mac = ? WHERE {} = ?", t.name, t.key), vec![mac.into(), key.into()])).await?;
    }
    Ok(())
}

/// At start: refuses a key other than the one the trail is written with (unless that one is
/// among the retired keys: a rotation), and on the first start with a key marks when the trail
/// became keyed and seals the rows written before — trusted as they stand at that moment.
pub async fn start_up(db: &sea_orm::DatabaseConnection, keys: &AuditKeys, now: DateTime<Utc>) -> anyhow::Result<()> {
    #[derive(FromQueryResult)]
    struct Setting {
        key: String,
        value: String,
    }
    let read = "SELECT key, value FROM settings WHERE key IN (?, ?)";
    let settings: Vec<Setting> = fetch(db, read, vec![KEY_ID.into(), KEYED_SINCE.into()]).await?;
    let get = |settings: &[Setting], k: &str| settings.iter().find(|s| s.key == k).map(|s| s.value.clone());
    // Nothing to write is the usual start: no write transaction (a server may start on a
    // read-only copy).
    if get(&settings, KEY_ID).as_deref() == Some(keys.current().kid()) && get(&settings, KEYED_SINCE).is_some() {
        return Ok(());
    }
    let txn = super::begin_write(db).await?;
    let settings: Vec<Setting> = fetch(&txn, read, vec![KEY_ID.into(), KEYED_SINCE.into()]).await?;
    let get = |k: &str| get(&settings, k);
    if let Some(kid) = get(KEY_ID) {
        if keys.by_kid(&kid).is_none() {
            anyhow::bail!(
                "this database's audit trail is written with audit key {kid}, and the audit key file given is key {}: give every server the same key file \
                 (PLEDGEFLOW_AUDIT_KEY_FILE), or, to rotate, list the old key's file in PLEDGEFLOW_AUDIT_RETIRED_KEY_FILES",
                keys.current().kid()
            );
        }
    }
    let upsert = "INSERT INTO settings (key, value, created_at) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value";
    let now_ms = now.timestamp_millis();
    if get(KEY_ID).as_deref() != Some(keys.current().kid()) {
        txn.execute_raw(stmt(&txn, upsert, vec![KEY_ID.into(), keys.current().kid().into(), now_ms.into()])).await?;
    }
    if get(KEYED_SINCE).is_none() {
        let mut sealed = 0;
        for t in TABLES {
            loop {
                let page = rows(&txn, t, "WHERE mac IS NULL LIMIT 500", vec![]).await?;
                if page.is_empty() {
                    break;
                }
                for row in &page {
                    let mac = keys.seal(&as_refs(&row.parts(t)));
                    txn.execute_raw(stmt(&txn, &format!("UPDATE {} SET mac = ? WHERE {} = ?", t.name, t.key), vec![mac.into(), row.key().into()])).await?;
                }
                sealed += page.len();
            }
        }
        txn.execute_raw(stmt(&txn, upsert, vec![KEYED_SINCE.into(), now_ms.to_string().into(), now_ms.into()])).await?;
        tracing::info!(sealed, kid = keys.current().kid(), "audit trail keyed from now on; rows written before sealed as they stand");
    }
    txn.commit().await?;
    Ok(())
}

/// Checks the cases of a page of instances against those instances' events: the applicant and
/// the commitment text the first event recorded; the licence number against its sealed row
/// (whose seal `check_rows` checks), or for a licence issued before those rows, the last event
/// recording a licence number.
pub async fn check_cases(db: &impl ConnectionTrait, ids: &[String], events: &HashMap<&str, &[event::Model]>, report: &mut VerifyReport) -> Result<(), DbErr> {
    #[derive(FromQueryResult)]
    struct Case {
        instance_id: String,
        applicant_uscc: String,
        commitment_text: Option<String>,
        licence_number: Option<String>,
        sealed_number: Option<String>,
        sealed_seq: Option<i64>,
    }
    if ids.is_empty() {
        return Ok(());
    }
    let marks = vec!["?"; ids.len()].join(", ");
    let cases: Vec<Case> = fetch(
        db,
        &format!(
            "SELECT c.instance_id, c.applicant_uscc, c.commitment_text, c.licence_number, l.number AS sealed_number, l.event_seq AS sealed_seq \
             FROM cases c LEFT JOIN licences l ON l.instance_id = c.instance_id WHERE c.instance_id IN ({marks})"
        ),
        ids.iter().map(|i| i.as_str().into()).collect(),
    )
    .await?;
    for case in cases {
        report.rows += 1;
        let mine = events.get(case.instance_id.as_str()).copied().unwrap_or_default();
        let payload = |e: &event::Model| serde_json::from_str::<Value>(&e.payload).unwrap_or(Value::Null);
        let subject = format!("case {}", case.instance_id);
        let Some(first) = mine.first().map(payload) else {
            report.breaks.push(ChainBreak::row(subject, "its instance has no events"));
            continue;
        };
        let context = &first["context"];
        if context["applicant"]["uscc"].as_str() != Some(case.applicant_uscc.as_str()) {
            report.breaks.push(ChainBreak::row(&subject, format!("its applicant {} is not the one its first event recorded", case.applicant_uscc)));
        }
        if context["commitment"]["text"].as_str() != case.commitment_text.as_deref() {
            report.breaks.push(ChainBreak::row(&subject, "its commitment text is not the one its first event recorded"));
        }
        let sealed = case.sealed_number.clone().zip(case.sealed_seq).map(|(n, seq)| (seq, n));
        if let Some((seq, _)) = &sealed {
            if !mine.iter().any(|e| e.seq == *seq) {
                report.breaks.push(ChainBreak::row(&subject, format!("its licence was issued by event {seq}, which it does not have")));
            }
        }
        let recorded = sealed.or_else(|| {
            mine.iter().rev().find_map(|e| {
                let p = payload(e);
                p["licence_number"].as_str().map(|n| (e.seq, n.to_string()))
            })
        });
        match (&recorded, &case.licence_number) {
            (None, None) => {}
            (Some((_, n)), Some(row)) if n == row => {}
            (Some((seq, n)), row) => {
                let row = row.as_deref().map_or_else(|| "(none)".to_string(), |r| format!("{r:?}"));
                report.breaks.push(ChainBreak::row(&subject, format!("its licence number {row} is not the {n:?} event {seq} recorded")))
            }
            (None, Some(row)) => report.breaks.push(ChainBreak::row(&subject, format!("its licence number {row:?} was recorded by no event"))),
        }
    }
    Ok(())
}

/// Checks every sealed row's seal, a page at a time, and what events and change records say
/// of them: a credit record against the event that wrote it; an applicant's details against
/// its latest change of each.
pub async fn check_rows(db: &impl ConnectionTrait, keys: &AuditKeys, report: &mut VerifyReport) -> Result<(), DbErr> {
    for t in TABLES {
        let mut after = String::new();
        loop {
            let page = rows(db, t, &format!("WHERE {} > ? ORDER BY {} LIMIT 500", t.key, t.key), vec![after.clone().into()]).await?;
            let Some(last) = page.last() else { break };
            after = last.key().to_string();
            for row in &page {
                report.rows += 1;
                let subject = format!("{} {}", t.what, row.key());
                match &row.mac {
                    None => report.breaks.push(ChainBreak::row(subject, "not sealed: written without the audit key")),
                    Some(mac) => {
                        if let Err(problem) = keys.check_seal(&as_refs(&row.parts(t)), mac) {
                            report.breaks.push(ChainBreak::row(subject, problem));
                        }
                    }
                }
            }
            if t.name == CREDIT_RECORDS.name {
                credit_against_events(db, &page, report).await?;
            } else if t.name == APPLICANTS.name {
                applicants_against_changes(db, &page, report).await?;
            }
        }
    }
    Ok(())
}

/// A credit record an event wrote names that event: it must exist, at the same instant, on an
/// instance of the same applicant, with the reason it gave.
async fn credit_against_events(db: &impl ConnectionTrait, page: &[Row], report: &mut VerifyReport) -> Result<(), DbErr> {
    let t = &CREDIT_RECORDS;
    let written: Vec<(&Row, &str, i64)> = page
        .iter()
        .filter_map(|r| Some((r, r.get(t, "instance_id")?, r.get(t, "event_seq")?.parse().ok()?)))
        .collect();
    if written.is_empty() {
        return Ok(());
    }
    #[derive(FromQueryResult)]
    struct Written {
        instance_id: String,
        seq: i64,
        event: String,
        payload: String,
        occurred_at: i64,
        definition_name: String,
        applicant_uscc: Option<String>,
    }
    let marks = vec!["(?, ?)"; written.len()].join(", ");
    let values = written.iter().flat_map(|(_, id, seq)| [sea_orm::Value::from(id.to_string()), (*seq).into()]).collect();
    let found: Vec<Written> = fetch(
        db,
        &format!(
            "SELECT e.instance_id, e.seq, e.event, e.payload, e.occurred_at, i.definition_name, i.applicant_uscc \
             FROM workflow_events e JOIN workflow_instances i ON i.id = e.instance_id WHERE (e.instance_id, e.seq) IN (VALUES {marks})"
        ),
        values,
    )
    .await?;
    let by_event: HashMap<(&str, i64), &Written> = found.iter().map(|w| ((w.instance_id.as_str(), w.seq), w)).collect();
    for (row, id, seq) in written {
        let subject = format!("credit record {}", row.key());
        let Some(w) = by_event.get(&(id, seq)) else {
            report.breaks.push(ChainBreak::row(subject, format!("the event that wrote it (instance {id} event {seq}) is not there")));
            continue;
        };
        let payload: Value = serde_json::from_str(&w.payload).unwrap_or(Value::Null);
        let reason = payload["reason"].as_str().map_or_else(|| format!("{} {}", w.definition_name, w.event), str::to_string);
        let mut disagrees = Vec::new();
        if row.get(t, "created_at") != Some(w.occurred_at.to_string().as_str()) {
            disagrees.push("time");
        }
        if row.get(t, "applicant_uscc") != w.applicant_uscc.as_deref() {
            disagrees.push("applicant");
        }
        if row.get(t, "reason") != Some(reason.as_str()) {
            disagrees.push("reason");
        }
        if !disagrees.is_empty() {
            report.breaks.push(ChainBreak::row(subject, format!("its {} disagree(s) with instance {id} event {seq}, which wrote it", disagrees.join(", "))));
        }
    }
    Ok(())
}

/// An applicant's name, legal representative and contacts are those its latest change of each
/// recorded (a field never changed has no record to compare with; its seal covers it).
async fn applicants_against_changes(db: &impl ConnectionTrait, page: &[Row], report: &mut VerifyReport) -> Result<(), DbErr> {
    #[derive(FromQueryResult)]
    struct Change {
        uscc: String,
        field: String,
        new_value: Option<String>,
    }
    if page.is_empty() {
        return Ok(());
    }
    let marks = vec!["?"; page.len()].join(", ");
    let changes: Vec<Change> = fetch(
        db,
        &format!("SELECT uscc, field, new_value FROM applicant_changes WHERE uscc IN ({marks}) ORDER BY uscc, changed_at, id"),
        page.iter().map(|r| r.key().into()).collect(),
    )
    .await?;
    let mut latest: HashMap<(&str, &str), Option<&str>> = HashMap::new();
    for c in &changes {
        latest.insert((c.uscc.as_str(), c.field.as_str()), c.new_value.as_deref());
    }
    for row in page {
        for field in ["name", "legal_representative", "email", "mobile"] {
            if let Some(recorded) = latest.get(&(row.key(), field)) {
                if row.get(&APPLICANTS, field) != *recorded {
                    report.breaks.push(ChainBreak::row(format!("applicant {}", row.key()), format!("its {field} is not the one its latest change record gave")));
                }
            }
        }
    }
    Ok(())
}

/// How many rows each sealed table holds: a checkpoint records them, so that rows deleted
/// afterwards are told.
pub async fn counts(db: &impl ConnectionTrait) -> Result<std::collections::BTreeMap<String, i64>, DbErr> {
    let mut out = std::collections::BTreeMap::new();
    for t in TABLES {
        out.insert(t.name.to_string(), super::count(db, &format!("SELECT COUNT(*) AS n FROM {}", t.name), vec![]).await?);
    }
    Ok(out)
}
