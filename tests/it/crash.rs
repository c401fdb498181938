//! A process killed between transitions loses nothing committed and half-writes nothing:
//! after restarts every instance is at its last committed state with exactly one audit event
//! per committed transition and an intact hash chain.

use std::{process::Command, time::Duration};

use pledgeflow::store::{self, entities};
use sea_orm::{EntityTrait, PaginatorTrait};

use crate::helpers::{backends, bin, repo};

async fn event_count(url: &str) -> u64 {
    match store::connect(url, 1).await {
        Ok(db) => entities::event::Entity::find().count(&db).await.unwrap_or(0),
        Err(_) => 0,
    }
}

#[tokio::test]
async fn a_killed_process_leaves_every_instance_at_its_last_committed_state() {
    for db in backends().await {
        let mut seen = 0;
        for round in 0..3 {
            let mut child = Command::new(bin())
                .args(["bench", "--cases", "1000000", "--plain-commits", "0", "--clients", "2"])
                .env("PLEDGEFLOW_DATABASE_URL", &db.url)
                .env("PLEDGEFLOW_WORKFLOWS_DIR", repo().join("workflows"))
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap();
            // Let it commit a few hundred more transitions, then kill it without warning.
            let target = seen + 200;
            for _ in 0..600 {
                tokio::time::sleep(Duration::from_millis(50)).await;
                if event_count(&db.url).await >= target {
                    break;
                }
            }
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            let now = event_count(&db.url).await;
            assert!(now >= target, "{} round {round}: the bench wrote only {now} events", db.label);
            seen = now;
        }

        let conn = store::connect(&db.url, 1).await.unwrap();
        // The bench's key, where it made it: beside the SQLite file, else in the data folder.
        let keys = pledgeflow::trail::keys(&pledgeflow::config::Config { database_url: db.url.clone(), ..Default::default() }, false).unwrap();
        let report = pledgeflow::store::verify::verify_all(&conn, &keys).await.unwrap();
        assert!(report.breaks.is_empty(), "{}: {:?}", db.label, &report.breaks[..report.breaks.len().min(5)]);
        assert_eq!(report.events, seen);
        conn.close().await.ok();

        let out = Command::new(bin()).args(["audit", "verify"]).env("PLEDGEFLOW_DATABASE_URL", &db.url).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && stdout.contains("0 break(s)"), "{stdout}");
        db.cleanup().await;
    }
}

#[tokio::test]
async fn audit_verify_reports_a_tampered_event() {
    let db = crate::helpers::TestDb::sqlite().await;
    let clock = pledgeflow::clock::ManualClock::at(crate::helpers::monday_morning());
    let e = crate::helpers::engine(&db, &clock).await;
    let case = e.start("after-the-fact-review", serde_json::json!({}), Default::default(), &pledgeflow::workflow::Actor::person("w", "window")).await.unwrap();
    e.fire(&case.id, "withdraw", &pledgeflow::workflow::Actor::person("w", "window"), &serde_json::json!({}), None).await.unwrap();
    use sea_orm::ConnectionTrait;
    e.db.execute_unprepared("UPDATE workflow_events SET actor = '{\"subject\":\"someone-else\",\"roles\":[\"window\"]}' WHERE seq = 2").await.unwrap();

    let out = Command::new(bin()).args(["audit", "verify"]).env("PLEDGEFLOW_DATABASE_URL", &db.url).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(stdout.contains(&format!("BREAK instance {} event 2: its hash does not match its contents", case.id)), "{stdout}");
}
