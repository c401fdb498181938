//! Nothing a message holds stops the mail (issue #17, item 1), over the real binary and a real
//! SMTP server: a name with a line break is refused where it enters; one stored before that
//! check is sent with a space; a message that cannot be built and one whose delivery panics are
//! dead with their reasons; the outbox loop itself panicking is restarted; the rest arrives, and
//! `/metrics` and `/readyz` say what happened.

use sea_orm::ConnectionTrait;
use serde_json::{json, Value};

use crate::http::{graphql_as, start, token_as};

async fn rows(db: &sea_orm::DatabaseConnection, sql: &str) -> Vec<sea_orm::QueryResult> {
    db.query_all_raw(sea_orm::Statement::from_string(db.get_database_backend(), sql.to_string())).await.unwrap()
}

fn text(r: &sea_orm::QueryResult, col: &str) -> String {
    r.try_get::<Option<String>>("", col).unwrap().unwrap_or_default()
}

#[tokio::test]
async fn a_message_that_cannot_be_built_or_panics_is_dead_with_its_reason_and_the_rest_is_delivered() {
    let smtp = crate::smtp::SmtpServer::start();
    let dir = tempfile::tempdir().unwrap();
    let smtp_url = smtp.url();
    let env = [
        ("PLEDGEFLOW_MAIL_URL", smtp_url.as_str()),
        ("PLEDGEFLOW_FAULTS", "loop:outbox,deliver:licensed"),
        ("PLEDGEFLOW_SWEEP_SCHEDULE", "0 0 0 1 1 * 2099"),
    ];
    let (_server, base, url) = start(dir.path(), &env).await;
    let http = crate::http::client();
    let db = pledgeflow::store::connect(&url, 1).await.unwrap();
    let window = token_as(&url, "window-01", &["--role", "window", "--department", "310101-SCJG", "--region", "310101"]);

    // The finding as reported: a newline in a name is refused where it enters, naming the field.
    let uscc = text(&rows(&db, "SELECT uscc FROM applicants WHERE home_region = '310101' ORDER BY uscc LIMIT 1").await[0], "uscc");
    let put = json!({"query": "mutation($i: PutApplicantInput!) { putApplicant(input: $i) { applicant { uscc } } }",
        "variables": {"i": {"uscc": uscc, "name": "Acme\nCo", "legalRepresentative": "R", "email": "a@b.example"}}});
    let r = graphql_as(&http, &base, &window, put).await;
    assert_eq!((r["errors"][0]["extensions"]["code"].as_str(), r["errors"][0]["extensions"]["field"].as_str()), (Some("BAD_USER_INPUT"), Some("name")), "{r}");

    // Data from before the check: two waiting deferral cases, one whose applicant's name holds a
    // line break, one whose address is no address.
    let waiting = rows(&db, "SELECT DISTINCT m.instance_id AS id, i.department AS department FROM case_materials m JOIN workflow_instances i ON i.id = m.instance_id \
        WHERE m.status = 'deferred' AND i.state = 'awaiting_materials' ORDER BY m.instance_id LIMIT 2").await;
    assert_eq!(waiting.len(), 2, "the demo has two waiting deferral cases");
    let (broken_name, bad_address) = (text(&waiting[0], "id"), text(&waiting[1], "id"));
    // The demo's window officer of each case's department.
    let officer = |department: &str| match department {
        "310101-SCJG" => "window-01",
        "310101-WJW" => "window-02",
        _ => "window-03",
    };
    let windows: Vec<String> = waiting
        .iter()
        .map(|w| token_as(&url, officer(&text(w, "department")), &["--role", "window", "--department", &text(w, "department"), "--region", "310101"]))
        .collect();
    db.execute_unprepared(&format!("UPDATE workflow_instances SET context = json_set(context, '$.applicant.name', 'Acme' || char(10) || 'Co') WHERE id = '{broken_name}'")).await.unwrap();
    db.execute_unprepared(&format!("UPDATE workflow_instances SET context = json_set(context, '$.applicant.email', 'not an address') WHERE id = '{bad_address}'")).await.unwrap();
    for (case, window) in [(&broken_name, &windows[0]), (&bad_address, &windows[1])] {
        for m in rows(&db, &format!("SELECT code FROM case_materials WHERE instance_id = '{case}' AND status = 'deferred'")).await {
            let submit = json!({"query": "mutation($i: SubmitMaterialInput!) { submitMaterial(input: $i) { case { state } } }",
                "variables": {"i": {"caseId": case, "code": text(&m, "code"), "fileRef": "档案-2026-0042"}}});
            let r = graphql_as(&http, &base, window, submit).await;
            assert!(r["errors"].is_null(), "{r}");
        }
    }

    // Everything settles: nothing pending is due.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let pending = rows(&db, &format!("SELECT id FROM outbox WHERE status IN ('pending', 'failed') AND channel = 'email' AND next_attempt_at <= {}", chrono::Utc::now().timestamp_millis())).await;
        if pending.is_empty() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the outbox never drained: {} left", pending.len());
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }

    let status_of = |case: &str| format!("SELECT status, last_error FROM outbox WHERE instance_id = '{case}' AND topic = 'materials_received' AND channel = 'email'");
    let sent = rows(&db, &status_of(&broken_name)).await;
    assert_eq!(text(&sent[0], "status"), "delivered", "the stored line break became a space");
    let dead = rows(&db, &status_of(&bad_address)).await;
    assert_eq!(text(&dead[0], "status"), "dead");
    assert!(text(&dead[0], "last_error").contains("bad address"), "{}", text(&dead[0], "last_error"));
    let panicked = rows(&db, "SELECT status, last_error FROM outbox WHERE topic = 'licensed' AND channel = 'email'").await;
    assert!(!panicked.is_empty(), "the demo licenses cases");
    for r in &panicked {
        assert_eq!(text(r, "status"), "dead");
        assert!(text(r, "last_error").contains("panicked"), "{}", text(r, "last_error"));
    }
    let delivered = rows(&db, "SELECT id FROM outbox WHERE status = 'delivered' AND channel = 'email'").await.len();
    let received = smtp.received();
    assert!(delivered > 2, "the rest of the mail went out: {delivered}");
    assert_eq!(received.len(), delivered, "every delivered message arrived at the SMTP server");
    assert!(received.iter().any(|m| String::from_utf8_lossy(&m.data).contains("Acme Co")), "the display name with a space");

    let metrics = http.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("pledgeflow_loop_panics_total{loop=\"outbox\"} 1"), "{metrics}");
    assert!(metrics.lines().any(|l| l.starts_with("pledgeflow_delivery_panics_total{channel=\"email\"}")), "{metrics}");
    assert!(metrics.contains("pledgeflow_loop_up{loop=\"outbox\"} 1"), "{metrics}");
    let ready: Value = http.get(format!("{base}/readyz")).send().await.unwrap().json().await.unwrap();
    assert_eq!(ready["ready"], true, "{ready}");
    let outbox = ready["loops"].as_array().unwrap().iter().find(|l| l["name"] == "outbox").cloned().unwrap();
    assert_eq!(outbox["restarts"], 1, "{ready}");
    assert!(outbox["last_panic"].as_str().is_some_and(|p| p.contains("fault injected")), "{ready}");
}
