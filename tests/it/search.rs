//! Search (issue #19, its search half): cases by the applicant's code, by a fragment of its name
//! — Chinese, two characters or one — by licence number, item, mode, opening time and a deadline
//! ahead; each within the caller's scope, over the real binary.

use serde_json::{json, Value};

use crate::http::{food_after_the_fact, graphql_as, issue_licence, Demo};

const RESTAURANT: &str = "91310110666007217T";

async fn find(d: &Demo, token: &str, filter: Value) -> Vec<Value> {
    let q = json!({"query": "query($f: WorkflowInstanceFilter) { workflowInstances(filter: $f, first: 200) { totalCount edges { node { id definitionName context } } } }",
        "variables": {"f": filter}});
    let r = graphql_as(&d.http, &d.base, token, q).await;
    assert!(r.get("errors").is_none(), "{r}");
    let edges = r["data"]["workflowInstances"]["edges"].as_array().unwrap();
    assert_eq!(r["data"]["workflowInstances"]["totalCount"].as_u64(), Some(edges.len() as u64));
    edges.iter().map(|e| e["node"].clone()).collect()
}

fn applicants(nodes: &[Value]) -> Vec<String> {
    let mut out: Vec<String> = nodes.iter().filter_map(|n| n["context"]["applicant"]["uscc"].as_str().map(str::to_string)).collect();
    out.sort();
    out.dedup();
    out
}

#[tokio::test]
async fn cases_are_found_by_code_name_fragment_licence_item_mode_and_deadline_within_scope() {
    let d = Demo::start().await;
    let mine = find(&d, &d.window, json!({})).await;
    let restaurant = find(&d, &d.window, json!({"applicantUscc": RESTAURANT})).await;
    assert!(!restaurant.is_empty() && restaurant.len() < mine.len(), "{} of {}", restaurant.len(), mine.len());
    assert_eq!(applicants(&restaurant), [RESTAURANT]);

    // 上海示例餐饮管理有限公司: two characters, one, the whole name; pairs in another order are no match.
    for fragment in ["餐饮", "餐", "示例餐饮管理", "饮管"] {
        let found = find(&d, &d.window, json!({"applicantName": fragment})).await;
        assert_eq!(found.len(), restaurant.len(), "{fragment}");
    }
    assert!(find(&d, &d.window, json!({"applicantName": "饮餐"})).await.is_empty());
    assert!(find(&d, &d.window, json!({"applicantName": "有限公司"})).await.len() > restaurant.len(), "every demo enterprise is a 有限公司");
    // Scope holds: the road-freight carrier's cases are the transport department's.
    assert!(find(&d, &d.window, json!({"applicantName": "货运"})).await.is_empty(), "another department's cases are not found");
    let transport = crate::http::token_as(&d.url, "window-03", &["--role", "window", "--department", "310101-JTW"]);
    assert!(!find(&d, &transport, json!({"applicantName": "货运"})).await.is_empty());

    // A licence number finds its case; an item and a mode narrow; a name fragment and a mode combine.
    let r = graphql_as(&d.http, &d.base, &d.window, food_after_the_fact(RESTAURANT, "张伟")).await;
    let case = r["data"]["openCase"]["case"]["id"].as_str().unwrap().to_string();
    let r = graphql_as(&d.http, &d.base, &d.approver, issue_licence(&case)).await;
    let number = r["data"]["issueLicence"]["licenceNumber"].as_str().unwrap().to_string();
    let by_number = find(&d, &d.window, json!({"licenceNumber": number})).await;
    assert_eq!(by_number.iter().map(|n| n["id"].as_str().unwrap()).collect::<Vec<_>>(), [case.as_str()]);
    let food = find(&d, &d.window, json!({"itemCode": "310101-FOOD-01", "mode": "AFTER_THE_FACT"})).await;
    assert!(food.iter().all(|n| n["context"]["item"]["code"] == "310101-FOOD-01" && n["context"]["mode"] == "after_the_fact") && !food.is_empty());
    let deferrals = find(&d, &d.window, json!({"applicantName": "餐饮", "mode": "DEFERRAL"})).await;
    assert!(deferrals.iter().all(|n| n["context"]["mode"] == "deferral"));
    assert!(deferrals.len() < restaurant.len() + 1);

    // Opened in a window; a deadline ahead.
    assert!(find(&d, &d.window, json!({"openedTo": "2000-01-01T00:00:00Z"})).await.is_empty());
    // The demo's server goes on opening cases meanwhile (bundle children as its outbox delivers
    // their signals): every case before, and none beyond those after.
    let before = find(&d, &d.window, json!({})).await.len();
    let opened = find(&d, &d.window, json!({"openedFrom": "2000-01-01T00:00:00Z"})).await.len();
    let after = find(&d, &d.window, json!({})).await.len();
    assert!((before..=after).contains(&opened), "{before} ≤ {opened} ≤ {after}");
    assert!(find(&d, &d.window, json!({"deadlineBefore": "2000-01-01T00:00:00Z"})).await.is_empty());
    let ahead = find(&d, &d.window, json!({"deadlineBefore": "2100-01-01T00:00:00Z"})).await;
    assert!(!ahead.is_empty() && ahead.len() < find(&d, &d.window, json!({})).await.len(), "only instances with a pending timer");
}

/// The name index's conditions on both backends: pairs, single characters, order, escapes.
#[tokio::test]
async fn name_fragments_find_their_applicants_on_every_backend() {
    use pledgeflow::window::registry;
    use sea_orm::ConnectionTrait;
    for db in crate::helpers::backends().await {
        let clock = pledgeflow::clock::ManualClock::at(chrono::Utc::now());
        let e = crate::helpers::engine(&db, &clock).await;
        let names = [("91310000MA0000001A", "上海食品有限公司"), ("91310000MA0000002B", "食为天餐饮管理"), ("91310000MA0000003C", "100%纯净水厂")];
        for (code, name) in names {
            let a = registry::Applicant { uscc: code.into(), name: name.into(), legal_representative: "张".into(), email: None, mobile: None, credit_tier: "B".into(), dishonest: 0 };
            registry::put_applicant(&e.db, &e.workflows.audit, &a, e.now()).await.unwrap();
        }
        let found = |fragment: &'static str| {
            let db = e.db.clone();
            async move {
                let (cond, values) = pledgeflow::store::name_index::condition("uscc", fragment).unwrap();
                let sql = format!("SELECT uscc FROM applicants WHERE {cond} ORDER BY uscc");
                let rows = db.query_all_raw(pledgeflow::store::stmt(&db, &sql, values)).await.unwrap();
                rows.iter().map(|r| r.try_get::<String>("", "uscc").unwrap()[17..].to_string()).collect::<Vec<_>>()
            }
        };
        assert_eq!(found("食品").await, ["A"], "{}", db.label);
        assert_eq!(found("食").await, ["A", "B"], "{}", db.label);
        assert_eq!(found("司").await, ["A"], "the last character too: {}", db.label);
        assert_eq!(found("品食").await, Vec::<String>::new(), "{}", db.label);
        assert_eq!(found("0%纯").await, ["C"], "a % in the name is a character, not a wildcard: {}", db.label);
        assert_eq!(found("有限 公司").await, ["A"], "{}", db.label);
        db.cleanup().await;
    }
}

/// Every filter through the API on every backend: the conditions written with `?` reach
/// PostgreSQL in its own placeholders (a name fragment, a licence number, an item, a mode, a
/// deadline ahead), and a page agrees with its count.
#[tokio::test]
async fn every_search_filter_answers_on_every_backend() {
    use pledgeflow::clock::Clock;
    for db in crate::helpers::backends().await {
        let clock = pledgeflow::clock::ManualClock::at(crate::helpers::monday_morning());
        let engine = crate::helpers::engine(&db, &clock).await;
        pledgeflow::demo::seed(&engine).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let api = crate::helpers::Api::new(engine.clone(), dir.path());
        let mut window = pledgeflow::auth::Claims::new("window-01", vec!["window".into()], clock.now(), chrono::Duration::hours(1));
        window.region = Some("310101".into());
        window.department = Some("310101-SCJG".into());
        let q = "query($f: WorkflowInstanceFilter) { workflowInstances(filter: $f, first: 200) { totalCount nodes { id } } }";
        let licence: String = {
            use sea_orm::ConnectionTrait;
            let row = engine.db.query_one_raw(pledgeflow::store::stmt(&engine.db, "SELECT licence_number FROM cases WHERE licence_number IS NOT NULL AND department = ?", vec!["310101-SCJG".into()])).await.unwrap().unwrap();
            row.try_get("", "licence_number").unwrap()
        };
        for (filter, some) in [
            (json!({"applicantName": "餐饮"}), true),
            (json!({"applicantName": "餐"}), true),
            (json!({"applicantName": "饮餐"}), false),
            (json!({"licenceNumber": licence}), true),
            (json!({"itemCode": "310101-FOOD-01", "mode": "DEFERRAL"}), true),
            (json!({"applicantName": "示例", "deadlineBefore": "2100-01-01T00:00:00Z", "openedFrom": "2000-01-01T00:00:00Z"}), true),
        ] {
            let data = api.ok(&window, q, json!({"f": filter})).await;
            let page = data["workflowInstances"]["nodes"].as_array().unwrap().len();
            assert_eq!(data["workflowInstances"]["totalCount"].as_u64(), Some(page as u64), "{filter}: {data}");
            assert_eq!(page > 0, some, "{filter}: {data}");
        }
        db.cleanup().await;
    }
}
