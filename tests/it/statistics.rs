//! Statistics on a fixed data set, checked against numbers counted by hand.

use chrono::Duration;
use pledgeflow::supervision::tasks::{self, Finding, Inspection};
use pledgeflow::workflow::Actor;
use serde_json::json;

use pledgeflow::insight::{self, Scope};
use pledgeflow::store::rollup::{self, Sum};

use crate::helpers::backends;
use crate::window::{open, who, Office, FOOD, OPEN};

const CONDITIONS: [&str; 2] = ["经营场所面积不少于 10 平方米", "从业人员持有效健康证明"];

fn visit(o: &Office, kept: bool) -> Inspection {
    let today = o.engine.now().with_timezone(&chrono_tz::Asia::Shanghai).date_naive();
    let findings = CONDITIONS
        .iter()
        .map(|c| {
            let ok = kept || !c.contains("健康");
            Finding { condition: c.to_string(), kept: ok, note: (!ok).then(|| "无健康证明".to_string()) }
        })
        .collect();
    Inspection { inspected_on: today, findings, evidence: vec![], note: None }
}

/// Week of Monday 2 November 2026 in Huangpu:
/// - A: deferral, materials in on Wednesday, licensed then (2 working days); its task ignored past 3 working days;
/// - B: deferral, materials never come: revoked at the deadline (Monday 9th, 17:30);
/// - a return for the officer's own error, for the same applicant and item, after A and B;
/// - C: on the spot (0 days); inspection finds a condition broken, rectification ordered, re-inspection kept: closed;
/// - D: on the spot (0 days), revoked by the approving department: its task withdrawn.
#[tokio::test]
async fn statistics_match_the_figures_counted_by_hand() {
    for db in backends().await {
        let o = Office::open(&db, (2026, 11, 2)).await;
        let (clock, e, api, admin, window, approver) = (&o.clock, &o.engine, &o.api, &o.admin, &o.window, &o.approver);
        let put_staff = "mutation($i: PutStaffInput!) { putStaff(input: $i) { code } }";
        api.ok(admin, put_staff, json!({"i": {"id": "inspector-1", "name": "周监管", "department": "310101-SCJG", "division": "310101-SCJG-SP", "roles": ["inspector"]}})).await;
        let division = [("department", "310101-SCJG"), ("division", "310101-SCJG-SP")];
        let (divadmin, inspector) = (who("divadmin-1", "division_admin", &division), who("inspector-1", "inspector", &division));
        let case_id = |r: serde_json::Value| r["openCase"]["case"]["id"].as_str().unwrap().to_string();
        let issue = "mutation($id: ID!) { issueLicence(input: {caseId: $id}) { licenceNumber } }";
        let task_of = |case: String| async move {
            let r = api.ok(admin, "query($p: ID!) { workflowInstances(filter: {parentId: $p}) { edges { node { id } } } }", json!({"p": case})).await;
            r["workflowInstances"]["edges"][0]["node"]["id"].as_str().unwrap().to_string()
        };

        let a = case_id(api.ok(window, OPEN, open("DEFERRAL", true, Some(5))).await);
        // The opening's figures were inserted as changes (no shared row taken); folding them in
        // moves them into the rollup's rows and changes no figure.
        let figures = rollup::snapshot(&e.db).await.unwrap();
        assert!(!figures.is_empty());
        assert!(rollup::fold(&e.db).await.unwrap() > 0, "the opening left changes to fold");
        assert_eq!(rollup::fold(&e.db).await.unwrap(), 0, "nothing left once folded");
        assert_eq!(rollup::snapshot(&e.db).await.unwrap(), figures);
        let _b = case_id(api.ok(window, OPEN, open("DEFERRAL", true, Some(5))).await);
        clock.advance(Duration::minutes(1));
        api.ok(window, "mutation($i: ReturnApplicationInput!) { returnApplication(input: $i) { id } }",
            json!({"i": {"itemCode": FOOD, "applicantUscc": "91310110666007217T", "category": "OFFICER_ERROR", "reason": "漏收材料"}})).await;
        clock.advance(Duration::minutes(1));
        let c = case_id(api.ok(window, OPEN, open("AFTER_THE_FACT", false, None)).await);
        api.ok(approver, issue, json!({"id": c})).await;
        let task_c = task_of(c.clone()).await;
        tasks::assign(e, &divadmin, &task_c, &["inspector-1".to_string()]).await.unwrap();
        tasks::record_inspection(e, &inspector, &task_c, &visit(&o, false)).await.unwrap();
        tasks::feed_back(e, &inspector, &task_c, Some("补办健康证明")).await.unwrap();
        tasks::record_reinspection(e, &inspector, &task_c, &visit(&o, true)).await.unwrap();
        let d = case_id(api.ok(window, OPEN, open("AFTER_THE_FACT", false, None)).await);
        api.ok(approver, issue, json!({"id": d})).await;
        e.fire(&d, "revoke", &Actor::person("approver-02", "approver"), &json!({"reason": "以欺骗手段取得许可"}), None).await.unwrap();
        // The revocation's procedure: the statement recorded at the window, the department's decision.
        e.fire(&d, "statement", &Actor::person("window-02", "window"), &json!({"statement": {"text": "无异议"}}), None).await.unwrap();
        e.fire(&d, "decide_revoke", &Actor::person("approver-02", "approver"), &json!({"revocation_decision": {"decision": "revoke", "reason": "以欺骗手段取得许可"}}), None).await.unwrap();
        o.api.outbox.deliver_due("stats").await.unwrap();

        clock.advance(Duration::days(2)); // Wednesday
        for m in ["M02", "M03"] {
            api.ok(window, "mutation($i: SubmitMaterialInput!) { submitMaterial(input: $i) { case { state } } }", json!({"i": {"caseId": a, "code": m, "fileRef": "doc"}})).await;
        }
        api.ok(approver, issue, json!({"id": a})).await;
        // The inboxes on Wednesday: B's deadline (Monday 17:30) for the window; A's new task's
        // look-at limit (Monday 10:00) for the division — not within one working day.
        let due = |who: pledgeflow::auth::Claims, days: i32| async move {
            let r = api.ok(&who, "query($d: Int!) { dueSoon(workingDays: $d) { timer definitionName } }", json!({"d": days})).await;
            r["dueSoon"].as_array().unwrap().iter().map(|d| format!("{}:{}", d["definitionName"].as_str().unwrap(), d["timer"].as_str().unwrap())).collect::<Vec<_>>()
        };
        assert_eq!(due(window.clone(), 3).await, ["material-deferral:expiry"]);
        assert_eq!(due(divadmin.clone(), 3).await, ["supervision-task:look_at_limit"]);
        assert_eq!(due(divadmin.clone(), 1).await, Vec::<String>::new());
        clock.advance(Duration::days(6)); // Tuesday 10th: B's deadline and A's task's look-at limit have passed
        e.sweep("stats").await.unwrap();
        o.api.outbox.deliver_due("stats").await.unwrap();

        let query = "query($f: StatisticsFilter!) { statistics(filter: $f) {
            casesByModeAndState { mode state count }
            fulfilment { kept notKept inForce rate }
            deferrals { onTime late never pending }
            revocations { cause count }
            rectifications { ordered succeeded failed }
            divisions { division tasks lookedAtInTime lookAtBreaches fedBackInTime feedbackBreaches }
            intakeToLicence { licensed averageWorkingDays p90WorkingDays }
            returns { applications returns returnRate oneTimeSuccessRate }
            weeks: series(period: WEEK) { start opened licensed returned }
            months: series(period: MONTH) { start opened licensed returned } } }";
        let november = json!({"f": {"from": "2026-11-01T00:00:00+08:00", "to": "2026-12-01T00:00:00+08:00"}});
        let supervisor = who("sup-1", "supervisor", &[("region", "310101")]);
        let s = &api.ok(&supervisor, query, november.clone()).await["statistics"];
        assert_eq!(s["casesByModeAndState"], json!([
            {"mode": "after_the_fact", "state": "closed", "count": 1},
            {"mode": "after_the_fact", "state": "revoked", "count": 1},
            {"mode": "deferral", "state": "breach_noticed", "count": 1},
            {"mode": "deferral", "state": "licensed", "count": 1}]), "{s}");
        // B ran out but is in its notice's period: not yet decided, so not yet a broken commitment.
        assert_eq!(s["fulfilment"], json!({"kept": 1, "notKept": 1, "inForce": 2, "rate": 0.5}));
        assert_eq!(s["deferrals"], json!({"onTime": 1, "late": 0, "never": 1, "pending": 0}));
        assert_eq!(s["revocations"], json!([{"cause": "revoke", "count": 1}]), "by cause: the department's own revocation, decided after the statement");
        assert_eq!(s["rectifications"], json!({"ordered": 1, "succeeded": 1, "failed": 0}));
        assert_eq!(s["divisions"], json!([{"division": "310101-SCJG-SP", "tasks": 3, "lookedAtInTime": 1, "lookAtBreaches": 1, "fedBackInTime": 1, "feedbackBreaches": 0}]));
        assert_eq!(s["intakeToLicence"], json!({"licensed": 3, "averageWorkingDays": 2.0 / 3.0, "p90WorkingDays": 2}));
        assert_eq!(s["returns"], json!({"applications": 5, "returns": 1, "returnRate": 0.2, "oneTimeSuccessRate": 0.5}));
        assert_eq!(s["weeks"], json!([{"start": "2026-11-02", "opened": 4, "licensed": 3, "returned": 1}]));
        assert_eq!(s["months"], json!([{"start": "2026-11-01", "opened": 4, "licensed": 3, "returned": 1}]));

        // Narrowed: an item nobody applied for; October; and a department's own staff only.
        let mut other = november.clone();
        other["f"]["itemCode"] = json!("310101-TZSB-01");
        let r = api.ok(&supervisor, "query($f: StatisticsFilter!) { statistics(filter: $f) { fulfilment { kept notKept inForce rate } } }", other).await;
        assert_eq!(r["statistics"]["fulfilment"], json!({"kept": 0, "notKept": 0, "inForce": 0, "rate": null}));
        let october = json!({"f": {"from": "2026-10-01T00:00:00+08:00", "to": "2026-11-01T00:00:00+08:00"}});
        let r = api.ok(&supervisor, "query($f: StatisticsFilter!) { statistics(filter: $f) { returns { applications } } }", october).await;
        assert_eq!(r["statistics"]["returns"]["applications"], 0);
        let mut foreign = november.clone();
        foreign["f"]["department"] = json!("310101-WJW");
        let r = api.call(Some(window), "query($f: StatisticsFilter!) { statistics(filter: $f) { returns { applications } } }", foreign).await;
        assert_eq!(r["errors"][0]["extensions"]["code"], "FORBIDDEN", "{r}");
        let r = api.ok(window, "query($f: StatisticsFilter!) { statistics(filter: $f) { returns { applications } } }", november).await;
        assert_eq!(r["statistics"]["returns"]["applications"], 5);

        // The running counts are what a recount from the cases, events and tasks gives …
        let tz = e.workflows.env.tz;
        let kept = rollup::snapshot(&e.db).await.unwrap();
        assert!(kept.len() > 10, "{kept:?}");
        rollup::fold(&e.db).await.unwrap();
        assert_eq!(rollup::snapshot(&e.db).await.unwrap(), kept, "folded or not, the same figures");
        let txn = pledgeflow::store::begin_write(&e.db).await.unwrap();
        rollup::rebuild(&txn, tz).await.unwrap();
        txn.commit().await.unwrap();
        assert_eq!(rollup::snapshot(&e.db).await.unwrap(), kept);
        // … and a range cut inside days (rollup for the whole days, counted directly at the ends)
        // agrees with counting everything directly.
        let metrics: Vec<&str> = rollup::facts(tz).iter().flat_map(|f| f.metrics.iter().copied()).collect();
        let at = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&chrono::Utc);
        for (from, to) in [
            ("2026-11-02T00:00:00+08:00", "2026-11-03T00:00:00+08:00"),
            ("2026-11-01T12:00:00+08:00", "2026-11-11T09:30:00+08:00"),
            ("2026-11-02T09:01:00+08:00", "2026-11-02T09:02:30+08:00"),
            ("2026-10-30T23:59:59+08:00", "2026-11-02T00:00:00+08:00"),
        ] {
            let scope = Scope { departments: vec!["310101-SCJG".into()], item: None, from: at(from), to: at(to) };
            for by_day in [false, true] {
                let combined = fold(insight::counted(&e.db, &scope, tz, &metrics, by_day).await.unwrap());
                let direct = fold(insight::exact(&e.db, &scope, tz, &metrics, by_day).await.unwrap());
                assert_eq!(combined, direct, "{from} .. {to}, by day: {by_day}");
            }
        }

    }
}

fn fold(rows: Vec<Sum>) -> std::collections::BTreeMap<(i64, String, String, String), i64> {
    let mut out = std::collections::BTreeMap::new();
    for r in rows {
        *out.entry((r.day, r.metric, r.mode, r.key)).or_insert(0) += r.n;
    }
    out.retain(|_, n| *n != 0);
    out
}
