//! Identical requests racing each other over the real binary (issue #17, item 10): the losers
//! get the answer their request deserves — the replay of a keyed retry, or "already done" —
//! never a complaint about their input, and the act happens once.

use futures::future::join_all;
use sea_orm::ConnectionTrait;
use serde_json::{json, Value};

use crate::hostile::quiet_demo;
use crate::http::{graphql_as, token_as};

async fn one(db: &sea_orm::DatabaseConnection, sql: &str) -> Option<(String, String)> {
    let row = db.query_one_raw(sea_orm::Statement::from_string(db.get_database_backend(), sql.to_string())).await.unwrap()?;
    Some((row.try_get::<String>("", "a").unwrap(), row.try_get::<String>("", "b").unwrap()))
}

async fn events(db: &sea_orm::DatabaseConnection, id: &str) -> i64 {
    let sql = format!("SELECT COUNT(*) AS n FROM workflow_events WHERE instance_id = '{id}'");
    let row = db.query_one_raw(sea_orm::Statement::from_string(db.get_database_backend(), sql)).await.unwrap().unwrap();
    row.try_get::<i64>("", "n").unwrap()
}

#[tokio::test]
async fn concurrent_identical_submissions_and_keyed_retries_act_once_and_answer_in_kind() {
    let demo = quiet_demo().await;
    let (base, url, http, db) = (&demo.base, &demo.url, &demo.http, &demo.db);
    let window = token_as(url, "window-01", &["--role", "window", "--department", "310101-SCJG", "--region", "310101"]);

    // A deferral case of the food department still owing one material.
    let (case, code) = one(
        db,
        "SELECT m.instance_id AS a, m.code AS b FROM case_materials m JOIN workflow_instances i ON i.id = m.instance_id \
         WHERE m.status = 'deferred' AND i.department = '310101-SCJG' AND i.state = 'awaiting_materials' ORDER BY m.instance_id LIMIT 1",
    )
    .await
    .expect("the demo has a deferral case waiting for a material");
    let before = events(db, &case).await;
    let submit = json!({"query": "mutation($i: SubmitMaterialInput!) { submitMaterial(input: $i) { case { state } } }",
        "variables": {"i": {"caseId": case, "code": code, "fileRef": "档案-2026-0001"}}});
    let answers: Vec<Value> = join_all((0..20).map(|_| graphql_as(http, base, &window, submit.clone()))).await;
    let won = answers.iter().filter(|r| r["errors"].is_null()).count();
    assert_eq!(won, 1, "one submission records the material: {answers:?}");
    for r in answers.iter().filter(|r| !r["errors"].is_null()) {
        let code = r["errors"][0]["extensions"]["code"].as_str();
        assert!(matches!(code, Some("INVALID_TRANSITION" | "CONFLICT")), "a loser is told it is done already: {r}");
    }
    assert!(events(db, &case).await <= before + 1, "at most the one materials_complete event");

    // Twenty retries of one keyed withdraw at once: one acts, every other is its replay.
    let (other, _) = one(
        db,
        "SELECT i.id AS a, i.state AS b FROM workflow_instances i WHERE i.definition_name = 'material-deferral' \
         AND i.department = '310101-SCJG' AND i.state = 'awaiting_materials' ORDER BY i.id DESC LIMIT 1",
    )
    .await
    .expect("another waiting deferral case");
    let before = events(db, &other).await;
    let withdraw = json!({"query": "mutation($i: FireEventInput!) { fireEvent(input: $i) { seq replayed instance { state } } }",
        "variables": {"i": {"instanceId": other, "event": "withdraw", "payload": {"reason": "申请人决定暂不开业"}, "idempotencyKey": "retry-1"}}});
    let answers: Vec<Value> = join_all((0..20).map(|_| graphql_as(http, base, &window, withdraw.clone()))).await;
    for r in &answers {
        assert_eq!(r["data"]["fireEvent"]["instance"]["state"], "withdrawn", "every retry answers with the result: {r}");
    }
    assert_eq!(answers.iter().filter(|r| r["data"]["fireEvent"]["replayed"] == false).count(), 1, "{answers:?}");
    assert_eq!(events(db, &other).await, before + 1, "withdrawn once");
}
