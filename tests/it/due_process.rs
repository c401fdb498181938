//! Consequences in proportion (issue #18), over the real binary: a supply timeout in
//! verification mode ends the application without a breach — the applicant promised nothing
//! about materials the electronic licence library could not verify (finding 2).

use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;

use crate::http::{graphql_as, start, token_as};

const PHARMACY: &str = "9135052155323005XL";

#[tokio::test]
async fn a_verification_case_whose_supply_runs_out_ends_without_a_breach() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, base, url) = start(dir.path(), &[("PLEDGEFLOW_CLOCK", "manual"), ("PLEDGEFLOW_SWEEP_SCHEDULE", "0 0 0 1 1 * 2099")]).await;
    let db = pledgeflow::store::connect(&url, 1).await.unwrap();
    let one = |sql: String| {
        let db = db.clone();
        async move { db.query_one_raw(Statement::from_string(db.get_database_backend(), sql)).await.unwrap().unwrap() }
    };
    // The demo's pharmacy: its pharmacist's registration could not be verified (expired).
    let row = one(format!(
        "SELECT i.id, i.definition_version AS v FROM workflow_instances i JOIN cases c ON c.instance_id = i.id \
         WHERE c.applicant_uscc = '{PHARMACY}' AND i.state = 'awaiting_supply'"
    ))
    .await;
    let (case, version): (String, i64) = (row.try_get("", "id").unwrap(), row.try_get("", "v").unwrap());
    assert!(version >= 6, "opened on the current definition (version {version})");
    let credit = |n: &'static str| one(format!("SELECT COUNT(*) AS n FROM credit_records WHERE applicant_uscc = '{PHARMACY}' AND kind = '{n}'"));
    let breaches_before: i64 = credit("breach").await.try_get("", "n").unwrap();

    // Three weeks on: far past the five working days for the supply.
    let admin = token_as(&url, "admin-01", &["--role", "regional_admin"]);
    let r = graphql_as(&reqwest::Client::new(), &base, &admin, json!({"query": "mutation { advanceClock(input: {bySeconds: 1814400}) { now } }"})).await;
    assert!(r.get("errors").is_none(), "{r}");

    let state: String = one(format!("SELECT state FROM workflow_instances WHERE id = '{case}'")).await.try_get("", "state").unwrap();
    assert_eq!(state, "refused", "the application ended");
    let breaches: i64 = credit("breach").await.try_get("", "n").unwrap();
    assert_eq!(breaches, breaches_before, "no breach recorded where nothing was promised");
    let topics = db
        .query_all_raw(Statement::from_string(db.get_database_backend(), format!("SELECT channel, topic FROM outbox WHERE instance_id = '{case}'")))
        .await
        .unwrap()
        .into_iter()
        .map(|r| format!("{}:{}", r.try_get::<String>("", "channel").unwrap(), r.try_get::<String>("", "topic").unwrap()))
        .collect::<Vec<_>>();
    assert!(topics.contains(&"email:supply_lapsed".to_string()), "{topics:?}");
    assert!(!topics.iter().any(|t| t.ends_with(":breach") || t.ends_with("supply_expired")), "{topics:?}");
}
