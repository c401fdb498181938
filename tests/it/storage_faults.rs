//! A SQLite database that cannot take writes — full (its `max_page_count` reached, as a full
//! disk would) or read-only — refuses `openCase` with a clear, typed error that leaks nothing
//! of the database, and keeps no half-written case: no instance without its case row, its
//! materials and its creation event; the audit chains whole. Once the condition is gone the
//! same request succeeds.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use pledgeflow::{app, clock::ManualClock, store};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use serde_json::Value;

use crate::helpers::{config_for, repo, Api, TestDb};
use crate::window::{catalogue, open, who, OPEN};

async fn n(db: &DatabaseConnection, sql: &str) -> i64 {
    let row = db.query_one_raw(Statement::from_string(db.get_database_backend(), sql.to_string())).await.unwrap().unwrap();
    row.try_get_by_index::<i64>(0).unwrap()
}

/// Every table an opened case writes to, by row count (the rollup by its running total).
async fn footprint(db: &DatabaseConnection) -> Vec<i64> {
    let mut out = Vec::new();
    for t in ["workflow_instances", "workflow_events", "workflow_timers", "cases", "case_materials", "outbox"] {
        out.push(n(db, &format!("SELECT COUNT(*) FROM {t}")).await);
    }
    out.push(n(db, "SELECT COALESCE(SUM(n), 0) FROM statistics_rollup").await + n(db, "SELECT COALESCE(SUM(n), 0) FROM statistics_rollup_deltas").await);
    out
}

/// No instance without its case, its three materials and exactly its version's events; no
/// case without its instance; every chain whole.
async fn whole(db: &DatabaseConnection, keys: &store::audit::AuditKeys) {
    let orphans = [
        "SELECT COUNT(*) FROM workflow_instances i WHERE i.definition_name LIKE 'material-%' AND NOT EXISTS (SELECT 1 FROM cases c WHERE c.instance_id = i.id)",
        "SELECT COUNT(*) FROM cases c WHERE NOT EXISTS (SELECT 1 FROM workflow_instances i WHERE i.id = c.instance_id)",
        "SELECT COUNT(*) FROM cases c WHERE (SELECT COUNT(*) FROM case_materials m WHERE m.instance_id = c.instance_id) <> 3",
        "SELECT COUNT(*) FROM workflow_instances i WHERE i.version <> (SELECT COUNT(*) FROM workflow_events e WHERE e.instance_id = i.id)",
    ];
    for sql in orphans {
        assert_eq!(n(db, sql).await, 0, "{sql}");
    }
    let report = store::verify::verify_all(db, keys).await.unwrap();
    assert!(report.breaks.is_empty(), "{:?}", report.breaks);
}

/// A window on a fresh SQLite database whose pool has exactly one connection, so that a pragma
/// set through the pool holds for every statement that follows (pragmas are per connection).
async fn office(db: &TestDb) -> (Api, pledgeflow::auth::Claims, tempfile::TempDir) {
    let clock = ManualClock::at(chrono_tz::Asia::Shanghai.with_ymd_and_hms(2026, 9, 28, 10, 0, 0).unwrap().with_timezone(&Utc));
    let mut config = config_for(db, repo().join("workflows"));
    config.database_max_connections = 1;
    let engine = app::build_engine(&config, Arc::new(clock)).await.unwrap();
    let data = tempfile::tempdir().unwrap();
    let api = Api::new(engine, data.path());
    catalogue(&api, &who("admin", "regional_admin", &[("region", "310101")])).await;
    let window = who("window-07", "window", &[("department", "310101-SCJG")]);
    api.ok(&window, OPEN, open("DEFERRAL", true, Some(5))).await;
    (api, window, data)
}

fn refusal(r: &Value) -> (&str, &str) {
    let e = &r["errors"][0];
    (e["extensions"]["code"].as_str().unwrap_or_else(|| panic!("no error code in {r}")), e["message"].as_str().unwrap())
}

#[tokio::test]
async fn a_full_sqlite_database_refuses_a_case_clearly_and_keeps_none_of_it() {
    let db = TestDb::sqlite().await;
    let (api, window, _data) = office(&db).await;
    let conn = api.engine.db.clone();
    let pages = n(&conn, "PRAGMA page_count").await;
    conn.execute_unprepared(&format!("PRAGMA max_page_count = {pages}")).await.unwrap();
    // Cases fill the free room left in the pages there are; the first that needs a new page
    // meets a full database, at whichever of its statements that is.
    let mut refused = None;
    for _ in 0..500 {
        let before = footprint(&conn).await;
        let r = api.call(Some(&window), OPEN, open("DEFERRAL", true, Some(5))).await;
        if r["errors"].as_array().is_some_and(|e| !e.is_empty()) {
            refused = Some((r, before));
            break;
        }
    }
    let (r, before) = refused.expect("the database filled up within 500 cases");
    let (code, message) = refusal(&r);
    assert_eq!(code, "UNAVAILABLE", "{r}");
    assert!(message.contains("the database is full") && message.contains("nothing was recorded"), "{message}");
    assert!(!message.to_lowercase().contains("sqlite") && !message.contains("disk is full"), "no database text: {message}");
    assert!(r["data"]["openCase"].is_null(), "{r}");
    assert_eq!(footprint(&conn).await, before, "nothing of the refused case is kept");
    whole(&conn, &api.engine.workflows.audit).await;

    // Room again: the same request goes through.
    conn.execute_unprepared("PRAGMA max_page_count = 1073741823").await.unwrap();
    let r = api.ok(&window, OPEN, open("DEFERRAL", true, Some(5))).await;
    assert_eq!(r["openCase"]["case"]["state"], "awaiting_materials");
    whole(&conn, &api.engine.workflows.audit).await;
}

#[tokio::test]
async fn a_read_only_sqlite_database_refuses_a_case_clearly_and_keeps_none_of_it() {
    let db = TestDb::sqlite().await;
    let (api, window, _data) = office(&db).await;
    let conn = api.engine.db.clone();
    let before = footprint(&conn).await;
    // As a file on a read-only mount behaves: every write refused with SQLITE_READONLY.
    conn.execute_unprepared("PRAGMA query_only = ON").await.unwrap();
    let r = api.call(Some(&window), OPEN, open("DEFERRAL", true, Some(5))).await;
    let (code, message) = refusal(&r);
    assert_eq!(code, "UNAVAILABLE", "{r}");
    assert!(message.contains("the database is read-only") && message.contains("nothing was recorded"), "{message}");
    assert!(!message.to_lowercase().contains("sqlite") && !message.contains("readonly database"), "no database text: {message}");
    conn.execute_unprepared("PRAGMA query_only = OFF").await.unwrap();
    assert_eq!(footprint(&conn).await, before, "nothing of the refused case is kept");
    whole(&conn, &api.engine.workflows.audit).await;
    api.ok(&window, OPEN, open("DEFERRAL", true, Some(5))).await;
    whole(&conn, &api.engine.workflows.audit).await;
}

/// The file itself opened read-only (`mode=ro`), as a server pointed at a read-only copy would
/// be: reads answer, a case is refused as read-only.
#[tokio::test]
async fn a_server_on_a_read_only_file_answers_reads_and_refuses_writes_as_read_only() {
    let db = TestDb::sqlite().await;
    let (api, window, _data) = office(&db).await;
    let before = footprint(&api.engine.db).await;
    let mut config = config_for(&db, repo().join("workflows"));
    config.database_url = format!("{}?mode=ro", db.url);
    let clock = ManualClock::at(chrono_tz::Asia::Shanghai.with_ymd_and_hms(2026, 9, 28, 11, 0, 0).unwrap().with_timezone(&Utc));
    let engine = app::build_engine(&config, Arc::new(clock)).await.expect("starts on a read-only file");
    let data = tempfile::tempdir().unwrap();
    let read_only = Api::new(engine, data.path());
    let cases = read_only.ok(&window, "{ workflowInstances { totalCount } }", serde_json::json!({})).await;
    assert_eq!(cases["workflowInstances"]["totalCount"], 1);
    let r = read_only.call(Some(&window), OPEN, open("DEFERRAL", true, Some(5))).await;
    let (code, message) = refusal(&r);
    assert_eq!(code, "UNAVAILABLE", "{r}");
    assert!(message.contains("read-only"), "{message}");
    assert_eq!(footprint(&api.engine.db).await, before);
    whole(&api.engine.db, &api.engine.workflows.audit).await;
}
