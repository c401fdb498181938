//! A template cannot hang the server (issue #17, item 5), over the real binary: one that would
//! run for ever, and one that would build a value of gigabytes in a few steps, are refused by
//! putApprovalItem naming the field; one stored before that check stops quickly at openCase
//! with its reason while /healthz keeps answering.

use sea_orm::ConnectionTrait;
use serde_json::json;

use crate::hostile::{quiet_demo, settled, snapshot};
use crate::http::{graphql_as, token_as};

/// Over fifty conditions: six million turns.
const RUNAWAY: &str = "{% for a in item.conditions %}{% for b in item.conditions %}{% for c in item.conditions %}{% for d in item.conditions %}{{ applicant.name }}{% endfor %}{% endfor %}{% endfor %}{% endfor %}";
/// Each step a tenfold string, 100 MB in a handful of instructions: fuel alone would not stop it.
const AMPLIFIER: &str = "{{ (applicant.name * 1000000)|length }}{{ (item.name ~ item.name) }}";

#[tokio::test]
async fn a_runaway_commitment_template_is_refused_at_put_and_stopped_at_intake() {
    let demo = quiet_demo().await;
    let (base, url, http, db) = (&demo.base, &demo.url, &demo.http, &demo.db);
    let admin = token_as(url, "admin-01", &["--role", "regional_admin", "--region", "310101"]);
    let window = token_as(url, "window-01", &["--role", "window", "--department", "310101-SCJG", "--region", "310101"]);
    let conditions: Vec<String> = (1..=52).map(|i| format!("条件{i}")).collect();
    let put = |template: &str| {
        json!({"query": "mutation($i: PutApprovalItemInput!) { putApprovalItem(input: $i) { item { version } } }",
        "variables": {"i": {"code": "310101-FOOD-99", "name": "食品经营许可（测试）", "department": "310101-SCJG", "spec": {
            "legalBasis": "x", "reformMode": "x", "conditions": conditions, "materials": [{"code": "M01", "name": "m", "deferrable": false}],
            "modes": {"verification": false, "afterTheFact": false}, "commitmentTemplate": template, "commitmentVersion": 1, "breachConsequences": "b",
            "licencePattern": "X{seq:04}"}}}})
    };
    let before = settled(db).await;
    let started = std::time::Instant::now();
    let stopped = |m: &str| m.contains("too much work") || m.contains("writes more than");
    let not_allowed = |m: &str| m.contains("is not allowed");
    for (template, why) in [(RUNAWAY, &stopped as &dyn Fn(&str) -> bool), (AMPLIFIER, &not_allowed)] {
        let r = graphql_as(http, base, &admin, put(template)).await;
        let ext = &r["errors"][0]["extensions"];
        assert_eq!((ext["code"].as_str(), ext["field"].as_str()), (Some("BAD_USER_INPUT"), Some("commitmentTemplate")), "{r}");
        assert!(r["errors"][0]["message"].as_str().is_some_and(why), "{r}");
    }
    assert_eq!(snapshot(db).await, before, "nothing changed");

    // The amplifier stored before the check.
    db.execute_unprepared(&format!(
        "UPDATE approval_items SET spec = json_set(spec, '$.commitment_template', '{AMPLIFIER}') WHERE code = '310101-FOOD-01'"
    ))
    .await
    .unwrap();
    let open = json!({"query": "mutation($i: OpenCaseInput!) { openCase(input: $i) { case { id } } }", "variables": {"i": {
        "applicantUscc": "91310110666007217T", "itemCode": "310101-FOOD-01", "mode": "AFTER_THE_FACT", "signedBy": "张伟",
        "materials": [{"code": "M01", "status": "PROVIDED"}, {"code": "M02", "status": "PROVIDED"}, {"code": "M03", "status": "PROVIDED"}]}}});
    let (r, healthz) = tokio::join!(graphql_as(http, base, &window, open), http.get(format!("{base}/healthz")).send());
    assert!(healthz.unwrap().status().is_success());
    assert!(r["errors"][0]["message"].as_str().is_some_and(not_allowed), "{r}");
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "stopped quickly: {:?}", started.elapsed());
}
