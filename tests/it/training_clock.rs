//! The training clock can be set and is kept (issue #18, finding 7), over the real binary: a
//! trainer starts a session on a chosen date, moves the clock, and a restarted server resumes
//! where it stood — never behind its own cases' events.

use sea_orm::ConnectionTrait;
use serde_json::{json, Value};

use crate::http::{graphql_as, start, token_as};

async fn clock(base: &str, url: &str) -> chrono::DateTime<chrono::Utc> {
    let admin = token_as(url, "admin-01", &["--role", "regional_admin"]);
    let r: Value = graphql_as(&crate::http::client(), base, &admin, json!({"query": "{ serverClock { now manual } }"})).await;
    assert_eq!(r["data"]["serverClock"]["manual"], true, "{r}");
    r["data"]["serverClock"]["now"].as_str().unwrap().parse().unwrap()
}

fn at(text: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&chrono::Utc)
}

#[tokio::test]
async fn a_training_clock_starts_where_it_is_set_and_a_restart_resumes_where_it_stood() {
    let dir = tempfile::tempdir().unwrap();
    // The day before the Spring Festival holiday of 2026.
    let start_at = "2026-02-13T09:00:00+08:00";
    let env = [("PLEDGEFLOW_CLOCK", "manual"), ("PLEDGEFLOW_CLOCK_START", start_at), ("PLEDGEFLOW_SWEEP_SCHEDULE", "0 0 0 1 1 * 2099")];
    let (server, base, url) = start(dir.path(), &env).await;
    assert_eq!(clock(&base, &url).await, at(start_at), "the demo was seeded on the chosen day");
    let admin = token_as(&url, "admin-01", &["--role", "regional_admin"]);
    let r = graphql_as(&crate::http::client(), &base, &admin, json!({"query": "mutation { advanceClock(input: {bySeconds: 86400}) { now } }"})).await;
    assert!(r.get("errors").is_none(), "{r}");
    let moved = at("2026-02-14T09:00:00+08:00");
    assert_eq!(clock(&base, &url).await, moved);
    drop(server);

    // Restarted with the same settings: where it stood, not back at the configured start.
    let (server, base, url) = start(dir.path(), &env).await;
    assert_eq!(clock(&base, &url).await, moved, "resumed where it stood");
    drop(server);

    // The position lost and an earlier start configured: never before the events on file.
    let db = pledgeflow::store::connect(&url, 1).await.unwrap();
    db.execute_unprepared("DELETE FROM settings WHERE key = 'training_clock'").await.unwrap();
    let row = db.query_one_raw(sea_orm::Statement::from_string(db.get_database_backend(), "SELECT MAX(occurred_at) AS t FROM workflow_events".to_string())).await.unwrap().unwrap();
    let newest = pledgeflow::store::millis::from_ms(row.try_get::<i64>("", "t").unwrap());
    db.close().await.unwrap();
    let earlier = [("PLEDGEFLOW_CLOCK", "manual"), ("PLEDGEFLOW_CLOCK_START", "2026-01-05T09:00:00+08:00"), ("PLEDGEFLOW_SWEEP_SCHEDULE", "0 0 0 1 1 * 2099")];
    let (_server, base, url) = start(dir.path(), &earlier).await;
    let now = clock(&base, &url).await;
    assert!(now >= newest && now >= at(start_at), "{now} stands before its events ({newest})");
}

#[test]
fn a_start_is_only_for_a_training_clock_and_must_be_a_time() {
    for (clock, start, says) in [("system", "2026-02-13T09:00:00+08:00", "PLEDGEFLOW_CLOCK=manual"), ("manual", "13 Feb 2026", "expected a time")] {
        let out = std::process::Command::new(crate::helpers::bin())
            .args(["check-workflows"])
            .env("PLEDGEFLOW_CLOCK", clock)
            .env("PLEDGEFLOW_CLOCK_START", start)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && stderr.contains("PLEDGEFLOW_CLOCK_START") && stderr.contains(says), "{clock} {start}: {stderr}");
    }
}
