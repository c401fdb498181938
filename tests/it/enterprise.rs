//! The enterprise file (一企一档, issue #19) over the real binary: one enterprise's registration,
//! cases, licences, supervision tasks with findings, credit, returns and bundles — each list as
//! the caller may see it.

use serde_json::{json, Value};

use crate::http::{graphql_as, token_as, Demo};

const FOOD_APPLICANT: &str = "91310110666007217T";

const FILE: &str = "query($u: String!) { enterprise(uscc: $u) { uscc name registration { legalRepresentative creditTier }
    cases(first: 200) { totalCount nodes { id mode state instance { deadlines { name at } } } }
    licences { licenceNumber caseId mode standing validUntil }
    supervisionTasks(first: 200) { totalCount nodes { caseId state findings rectificationOrder instance { id } } }
    creditRecords { kind caseId repairedAt }
    returns { itemCode department category reason }
    bundles(first: 50) { totalCount nodes { id } } } }";

async fn file(d: &Demo, token: &str, uscc: &str) -> Value {
    let r = graphql_as(&d.http, &d.base, token, json!({"query": FILE, "variables": {"u": uscc}})).await;
    assert!(r.get("errors").is_none(), "{r}");
    r["data"]["enterprise"].clone()
}

fn count(v: &Value, list: &str) -> usize {
    v[list]["nodes"].as_array().or(v[list].as_array()).map_or(0, Vec::len)
}

#[tokio::test]
async fn the_enterprise_file_shows_each_caller_what_is_theirs_to_see() {
    let d = Demo::start().await;
    // The regional supervisor: everything of the enterprise in the region.
    let all = file(&d, &d.supervisor, FOOD_APPLICANT).await;
    assert_eq!(all["uscc"], FOOD_APPLICANT);
    assert_eq!(all["registration"]["legalRepresentative"].as_str().map(|s| !s.is_empty()), Some(true), "{all}");
    let cases = all["cases"]["nodes"].as_array().unwrap();
    assert_eq!(all["cases"]["totalCount"].as_u64(), Some(cases.len() as u64), "{all}");
    let modes: std::collections::BTreeSet<&str> = cases.iter().map(|c| c["mode"].as_str().unwrap()).collect();
    assert!(modes.contains("deferral") && modes.contains("after_the_fact") && modes.contains("ordinary"), "{modes:?}");
    // The deadlines come with each case; an ordinary case under review carries its legal limit.
    assert!(cases.iter().any(|c| c["mode"] == "ordinary" && c["instance"]["deadlines"].as_array().unwrap().iter().any(|d| d["name"] == "legal_due")), "{all}");
    // Licences with their standing: the one the department revoked is shown as revoked.
    let standings: Vec<&str> = all["licences"].as_array().unwrap().iter().map(|l| l["standing"].as_str().unwrap()).collect();
    assert!(standings.contains(&"VALID") && standings.contains(&"REVOKED"), "{standings:?}");
    // The tasks, with what the inspection found (one kept, one in rectification).
    let tasks = all["supervisionTasks"]["nodes"].as_array().unwrap();
    assert!(tasks.iter().any(|t| t["rectificationOrder"].as_str().is_some_and(|o| o.contains("健康证明"))), "{all}");
    assert!(tasks.iter().all(|t| t["caseId"].as_str().is_some_and(|c| cases.iter().any(|k| k["id"] == c))), "each task under one of its cases: {all}");
    assert!(!all["creditRecords"].as_array().unwrap().is_empty(), "{all}");
    assert_eq!(count(&all, "returns"), 1, "the demo's return at intake: {all}");

    // The enterprise itself: its cases and credit, never a supervision task.
    let own_token = token_as(&d.url, FOOD_APPLICANT, &["--role", "applicant", "--uscc", FOOD_APPLICANT]);
    let own = file(&d, &own_token, FOOD_APPLICANT).await;
    assert_eq!(count(&own, "cases"), cases.len(), "{own}");
    assert_eq!((count(&own, "supervisionTasks"), own["supervisionTasks"]["totalCount"].as_u64()), (0, Some(0)), "{own}");
    assert_eq!(count(&own, "creditRecords"), count(&all, "creditRecords"));
    // Another enterprise: nothing, not even that the file exists.
    let other = token_as(&d.url, "91350100M000100Y43", &["--role", "applicant", "--uscc", "91350100M000100Y43"]);
    assert_eq!(file(&d, &other, FOOD_APPLICANT).await, Value::Null);

    // The health office's window: the registration, but none of the market regulator's cases or returns.
    let health = token_as(&d.url, "window-02", &["--role", "window", "--department", "310101-WJW"]);
    let theirs = file(&d, &health, FOOD_APPLICANT).await;
    assert_eq!(theirs["uscc"], FOOD_APPLICANT);
    assert_eq!((count(&theirs, "cases"), count(&theirs, "supervisionTasks"), count(&theirs, "returns")), (0, 0, 0), "{theirs}");
    // The food division: the tasks it supervises, no case of the window's.
    let division = file(&d, &d.division, FOOD_APPLICANT).await;
    assert_eq!(count(&division, "supervisionTasks"), tasks.len(), "{division}");

    // Paged: the second page continues the first, and a bad code is a typed error.
    let page = |after: Option<&str>| json!({"query": "query($u: String!, $a: String) { enterprise(uscc: $u) { cases(first: 3, after: $a) { nodes { id } pageInfo { endCursor hasNextPage } } } }",
        "variables": {"u": FOOD_APPLICANT, "a": after}});
    let first = graphql_as(&d.http, &d.base, &d.supervisor, page(None)).await;
    let cursor = first["data"]["enterprise"]["cases"]["pageInfo"]["endCursor"].as_str().unwrap().to_string();
    let second = graphql_as(&d.http, &d.base, &d.supervisor, page(Some(&cursor))).await;
    let ids = |r: &Value| r["data"]["enterprise"]["cases"]["nodes"].as_array().unwrap().iter().map(|n| n["id"].as_str().unwrap().to_string()).collect::<Vec<_>>();
    let both: Vec<String> = [ids(&first), ids(&second)].concat();
    assert_eq!(both, cases.iter().take(6).map(|c| c["id"].as_str().unwrap().to_string()).collect::<Vec<_>>());
    let r = graphql_as(&d.http, &d.base, &d.supervisor, json!({"query": "{ enterprise(uscc: \"91310110666007217X\") { uscc } }"})).await;
    assert_eq!((&r["errors"][0]["extensions"]["code"], &r["errors"][0]["extensions"]["field"]), (&json!("BAD_USER_INPUT"), &json!("uscc")), "{r}");
}

/// No N+1: the enterprise file and a search answer in as many statements for an enterprise with
/// twelve more cases as with one (each list one query, a page of cases two, the nested deadlines,
/// histories and timers one each), on SQLite and on PostgreSQL.
#[tokio::test]
async fn the_enterprise_file_and_a_search_take_as_many_statements_for_many_cases_as_for_one() {
    use std::sync::{Arc, Mutex};
    use pledgeflow::clock::Clock;
    use pledgeflow::window::catalogue::Mode;
    use pledgeflow::window::intake::{self, MaterialInput, MaterialStatus, OpenCaseInput};
    const Y: &str = "91350100M000100Y43";
    for db in crate::helpers::backends().await {
        let clock = pledgeflow::clock::ManualClock::at(crate::helpers::monday_morning());
        let engine = crate::helpers::engine(&db, &clock).await;
        pledgeflow::demo::seed(&engine).await.unwrap();
        let recorded: Arc<Mutex<Vec<String>>> = Arc::default();
        let mut conn = pledgeflow::store::connect(&db.url, 2).await.unwrap();
        let sink = recorded.clone();
        conn.set_metric_callback(move |info| sink.lock().unwrap().push(info.statement.sql.clone()));
        let dir = tempfile::tempdir().unwrap();
        let api = crate::helpers::Api::new(pledgeflow::runtime::Engine { db: conn, ..engine.clone() }, dir.path());
        let mut window = pledgeflow::auth::Claims::new("window-01", vec!["window".into()], clock.now(), chrono::Duration::hours(1));
        window.region = Some("310101".into());
        window.department = Some("310101-SCJG".into());
        let mut supervisor = pledgeflow::auth::Claims::new("supervisor-01", vec!["supervisor".into()], clock.now(), chrono::Duration::hours(1));
        supervisor.region = Some("310101".into());
        let open = || OpenCaseInput {
            applicant_uscc: Y.into(),
            item_code: "310101-FOOD-01".into(),
            mode: Mode::AfterTheFact,
            materials: ["M01", "M02", "M03"].iter().map(|c| MaterialInput { code: c.to_string(), status: MaterialStatus::Provided, file_ref: Some(format!("DOC-{c}")), licence_number: None }).collect(),
            deferral_working_days: None,
            signed_by: "陈六".into(),
        };
        let file = "query($u: String!) { enterprise(uscc: $u) { registration { uscc } cases(first: 50) { totalCount nodes { id state instance { deadlines { name at } history { seq } timers { name } } } }
            licences { licenceNumber } supervisionTasks(first: 50) { nodes { state findings } } creditRecords { id } returns { id } bundles(first: 5) { totalCount } } }";
        let search = "query($u: String!) { workflowInstances(filter: {applicantUscc: $u}, first: 50) { totalCount nodes { id deadlines { name } history { seq } timers { name } } } }";
        let mut counts = Vec::new();
        for more in [1, 12] {
            for _ in 0..more {
                let case = intake::open_case(&engine, &window, open()).await.unwrap();
                let approver = pledgeflow::auth::Claims { sub: "approver-01".into(), roles: vec!["approver".into()], ..window.clone() };
                intake::issue_licence(&engine, &approver, &case.id, None).await.unwrap();
            }
            let mut per = Vec::new();
            for (who, doc) in [(&supervisor, file), (&window, search)] {
                recorded.lock().unwrap().clear();
                let data = api.ok(who, doc, json!({"u": Y})).await;
                assert!(!data.to_string().contains("null,\"nodes\":[]"), "{data}");
                per.push(recorded.lock().unwrap().len());
            }
            counts.push(per);
        }
        assert_eq!(counts[0], counts[1], "statements for 1 and 13 cases of the enterprise: {counts:?}");
        db.cleanup().await;
    }
}
