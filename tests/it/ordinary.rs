//! The ordinary procedure (issue #19) over the real binary, mail at a real SMTP server: the
//! route a dishonest applicant and an excluded item take; the acceptance decision with its
//! one-time correction list; the legal clock from the item's limit, stopped and resumed by a
//! suspension and extended by the head of the department — across the 2026 National Day
//! holiday; the officer reminded, the overdue escalated and counted.

use serde_json::{json, Value};

use crate::http::{advance_clock_to, eventually, graphql_as, mails_eventually, open_case, token_as, Demo};

const FOOD_APPLICANT: &str = "91310110666007217T";
const APPLICANT_MAIL: &str = "contact0@applicant.demo.pledgeflow.localhost";
const DEPARTMENT_MAIL: &str = "310101-scjg@demo.pledgeflow.localhost";
/// Special-equipment use registration: excluded from commitment approval; 15 working days.
const TZSB: &str = "310101-TZSB-01";

fn provided(codes: &[&str]) -> Value {
    json!(codes.iter().map(|c| json!({"code": c, "status": "PROVIDED", "fileRef": format!("DOC-{c}")})).collect::<Vec<_>>())
}

fn opened(r: &Value) -> String {
    r["data"]["openCase"]["case"]["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_string()
}

fn decide_acceptance(id: &str, input: Value) -> Value {
    let mut i = input;
    i["caseId"] = json!(id);
    json!({"query": "mutation($i: DecideAcceptanceInput!) { decideAcceptance(input: $i) { case { state materials { code status } } } }", "variables": {"i": i}})
}

fn act(mutation: &str, input_type: &str, input: Value) -> Value {
    json!({"query": format!("mutation($i: {input_type}!) {{ {mutation}(input: $i) {{ case {{ state }} }} }}"), "variables": {"i": input}})
}

fn state(r: &Value, mutation: &str) -> String {
    r["data"][mutation]["case"]["state"].as_str().unwrap_or_else(|| panic!("{r}")).to_string()
}

fn refusal(r: &Value) -> (String, String) {
    let e = &r["errors"][0]["extensions"];
    (e["code"].as_str().unwrap_or_else(|| panic!("{r}")).to_string(), e["reason"].as_str().or(e["field"].as_str()).unwrap_or("").to_string())
}

/// The pending timers of a case, name → due (RFC 3339).
async fn timers(d: &Demo, token: &str, id: &str) -> Vec<(String, String)> {
    let q = json!({"query": "query($id: ID!) { workflowInstance(id: $id) { timers { name dueAt status } } }", "variables": {"id": id}});
    let r = graphql_as(&d.http, &d.base, token, q).await;
    r["data"]["workflowInstance"]["timers"]
        .as_array()
        .unwrap_or_else(|| panic!("{r}"))
        .iter()
        .filter(|t| t["status"] == "PENDING" || t["status"] == "pending")
        .map(|t| (t["name"].as_str().unwrap().to_string(), t["dueAt"].as_str().unwrap().to_string()))
        .collect()
}

/// A pending timer's due time in Shanghai, `YYYY-MM-DD HH:MM`.
async fn due_local(d: &Demo, token: &str, id: &str, name: &str) -> String {
    let all = timers(d, token, id).await;
    let at = &all.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no pending {name}: {all:?}")).1;
    chrono::DateTime::parse_from_rfc3339(at).unwrap().with_timezone(&chrono_tz::Asia::Shanghai).format("%Y-%m-%d %H:%M").to_string()
}

async fn move_to(d: &Demo, to: &str) {
    let r = graphql_as(&d.http, &d.base, &d.admin, advance_clock_to(json!(to))).await;
    assert!(r.get("errors").is_none(), "{r}");
}

/// Subjects of the mail to `to` since message `from`.
fn subjects_to(d: &Demo, to: &str, from: usize) -> Vec<String> {
    d.smtp.received()[from..]
        .iter()
        .filter(|m| m.to.iter().any(|t| t == to))
        .filter_map(|m| mail_parser::MessageParser::default().parse(&m.data).and_then(|p| p.subject().map(str::to_string)))
        .collect()
}

/// The one mail to `to` since message `from` about case `id` whose subject has `words`: its text.
async fn mail_with(d: &Demo, to: &str, from: usize, id: &str, words: &str) -> String {
    let found = |all: &[crate::smtp::Received]| {
        all[from..]
            .iter()
            .filter(|m| m.to.iter().any(|t| t == to))
            .filter_map(|m| mail_parser::MessageParser::default().parse(&m.data).map(|p| (p.subject().unwrap_or("").to_string(), p.body_text(0).unwrap_or_default().to_string())))
            .filter(|(s, body)| s.contains(words) && body.contains(id))
            .count()
    };
    assert_eq!(mails_eventually(&d.smtp, 1, found).await, 1, "one mail to {to} about {words}: {:?}", subjects_to(d, to, from));
    d.smtp.received()[from..]
        .iter()
        .filter_map(|m| mail_parser::MessageParser::default().parse(&m.data).map(|p| (p.subject().unwrap_or("").to_string(), p.body_text(0).unwrap_or_default().to_string())))
        .find(|(s, body)| s.contains(words) && body.contains(id))
        .map(|(_, body)| body)
        .unwrap()
}

#[tokio::test]
async fn a_dishonest_applicant_refused_commitment_takes_the_ordinary_route_and_is_licensed_within_the_items_limit() {
    let d = Demo::start().await;
    let list = json!({"query": "mutation($u: String!) { listDishonest(input: {uscc: $u, basis: \"《严重失信主体名单管理办法》第八条\", reason: \"黄市监信〔2026〕9号\"}) { applicant { dishonest } } }",
        "variables": {"u": FOOD_APPLICANT}});
    let r = graphql_as(&d.http, &d.base, &d.supervisor, list).await;
    assert_eq!(r["data"]["listDishonest"]["applicant"]["dishonest"], true, "{r}");
    let food = |mode: &str, materials: Value| open_case(json!({"applicantUscc": FOOD_APPLICANT, "itemCode": "310101-FOOD-01", "mode": mode, "signedBy": "张伟", "materials": materials}));
    // Commitment is closed to it; the refusal names the route that is open.
    let r = graphql_as(&d.http, &d.base, &d.window, food("AFTER_THE_FACT", provided(&["M01", "M02", "M03"]))).await;
    assert_eq!(refusal(&r), ("BAD_USER_INPUT".into(), "CREDIT_BARRED".into()), "{r}");
    assert!(r["errors"][0]["message"].as_str().unwrap().contains("ORDINARY"), "{r}");
    // The ordinary route: taken as it comes, the floor plan (M03) not given.
    let r = graphql_as(&d.http, &d.base, &d.window, food("ORDINARY", provided(&["M01", "M02"]))).await;
    let id = opened(&r);
    assert_eq!(r["data"]["openCase"]["case"]["state"], "intake", "{r}");
    let statuses: Vec<&str> = r["data"]["openCase"]["case"]["materials"].as_array().unwrap().iter().map(|m| m["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["provided", "provided", "missing"], "{r}");

    // One list of everything to correct, with its period; a list without items is refused.
    let r = graphql_as(&d.http, &d.base, &d.window, decide_acceptance(&id, json!({"decision": "REQUEST_CORRECTION", "corrections": []}))).await;
    assert_eq!(refusal(&r), ("BAD_USER_INPUT".into(), "corrections".into()), "{r}");
    let before = d.smtp.received().len();
    let list = json!({"decision": "REQUEST_CORRECTION", "workingDays": 5, "corrections": [
        {"materialCode": "M03", "requirement": "补交经营场所平面布局图（标明功能分区）"},
        {"requirement": "申请书第 3 页法定代表人未签字"}]});
    let r = graphql_as(&d.http, &d.base, &d.window, decide_acceptance(&id, list)).await;
    assert_eq!(state(&r, "decideAcceptance"), "awaiting_correction");
    let body = mail_with(&d, APPLICANT_MAIL, before, &id, "补正材料通知书").await;
    assert!(body.contains("经营场所平面布局图") && body.contains("法定代表人未签字") && body.contains("视为放弃申请"), "{body}");
    let r = graphql_as(&d.http, &d.base, &d.window, act("receiveCorrection", "ReceiveCorrectionInput", json!({"caseId": id, "fileRef": "DOC-M03-补正"}))).await;
    assert_eq!(state(&r, "receiveCorrection"), "intake");

    // Accepted: the legal clock runs from today for the item's limit (20 working days: the
    // food item names none).
    let before = d.smtp.received().len();
    let r = graphql_as(&d.http, &d.base, &d.window, decide_acceptance(&id, json!({"decision": "ACCEPT"}))).await;
    assert_eq!(state(&r, "decideAcceptance"), "under_review");
    let statuses: Vec<&str> = r["data"]["decideAcceptance"]["case"]["materials"].as_array().unwrap().iter().map(|m| m["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["provided", "provided", "received"], "{r}");
    let body = mail_with(&d, APPLICANT_MAIL, before, &id, "受理通知书").await;
    let due = due_local(&d, &d.window, &id, "legal_limit").await;
    assert!(body.contains(&due[..4]), "the notice names the limit {due}: {body}");
    // The window cannot license in the ordinary procedure; the approver can, still the dishonest applicant.
    let issue = json!({"query": "mutation($id: ID!) { issueLicence(input: {caseId: $id}) { licenceNumber case { state } } }", "variables": {"id": id}});
    let r = graphql_as(&d.http, &d.base, &d.window, issue.clone()).await;
    assert!(r["errors"][0]["extensions"]["code"] == "FORBIDDEN" || r["errors"][0]["extensions"]["code"] == "INVALID_TRANSITION", "{r}");
    let before = d.smtp.received().len();
    let r = graphql_as(&d.http, &d.base, &d.approver, issue).await;
    assert_eq!(r["data"]["issueLicence"]["case"]["state"], "licensed", "{r}");
    let decision = mail_with(&d, APPLICANT_MAIL, before, &id, "准予行政许可决定书").await;
    // Every notice stays with the case as it was worded when sent, for the window and the enterprise alike.
    let q = json!({"query": "query($id: ID!) { case(id: $id) { notices { topic subject text sentAt } } }", "variables": {"id": id}});
    let applicant = token_as(&d.url, FOOD_APPLICANT, &["--role", "applicant", "--uscc", FOOD_APPLICANT]);
    for who in [&d.window, &applicant] {
        // Kept once the message is sent: a moment after the SMTP server has it.
        let r = eventually(&d.http, &d.base, who, q.clone(), |r| r["data"]["case"]["notices"].as_array().is_some_and(|n| n.len() >= 3)).await;
        let topics: Vec<&str> = r["data"]["case"]["notices"].as_array().unwrap_or_else(|| panic!("{r}")).iter().map(|n| n["topic"].as_str().unwrap()).collect();
        assert_eq!(topics, ["correction_notice", "acceptance_notice", "licensed_ordinary"], "{r}");
        let last = &r["data"]["case"]["notices"][2];
        assert_eq!(last["text"].as_str().map(|t| t.replace("\r\n", "\n").trim().to_string()), Some(decision.replace("\r\n", "\n").trim().to_string()), "{r}");
    }
    // Within the limit: nothing escalated; the statistics count it under its mode.
    let q = json!({"query": "query($f: StatisticsFilter!) { statistics(filter: $f) { casesByModeAndState { mode state count } legalLimitsPassed } }",
        "variables": {"f": {"from": "2020-01-01T00:00:00Z", "to": "2099-01-01T00:00:00Z"}}});
    let r = graphql_as(&d.http, &d.base, &d.supervisor, q).await;
    let s = &r["data"]["statistics"];
    assert!(s["casesByModeAndState"].as_array().unwrap_or_else(|| panic!("{r}")).iter().any(|c| c["mode"] == "ordinary" && c["state"] == "licensed" && c["count"] == 1), "{r}");
    assert_eq!(s["legalLimitsPassed"], 0, "{r}");
}

#[tokio::test]
async fn an_extension_and_a_suspension_move_the_legal_limit_by_exactly_their_working_days_across_national_day() {
    // A Monday two weeks before the Mid-Autumn Festival and National Day.
    let d = Demo::with_env(&[("PLEDGEFLOW_CLOCK_START", "2026-09-14T09:00:00+08:00")]).await;
    let head = token_as(&d.url, "head-01", &["--role", "department_head", "--department", "310101-SCJG"]);
    let r = graphql_as(&d.http, &d.base, &d.window, open_case(json!({"applicantUscc": FOOD_APPLICANT, "itemCode": TZSB, "mode": "ORDINARY", "signedBy": "张伟", "materials": provided(&["M01", "M02"])}))).await;
    let id = opened(&r);
    // An excluded item takes no commitment mode.
    let r = graphql_as(&d.http, &d.base, &d.window, open_case(json!({"applicantUscc": FOOD_APPLICANT, "itemCode": TZSB, "mode": "AFTER_THE_FACT", "signedBy": "张伟", "materials": provided(&["M01", "M02"])}))).await;
    assert_eq!(refusal(&r), ("BAD_USER_INPUT".into(), "MODE_NOT_ALLOWED".into()), "{r}");

    let r = graphql_as(&d.http, &d.base, &d.window, decide_acceptance(&id, json!({"decision": "ACCEPT"}))).await;
    assert_eq!(state(&r, "decideAcceptance"), "under_review");
    // 15 working days from Monday 14 September: 15–18, Sunday the 20th (worked), 21–24, 28–30
    // (the 25th–27th are the festival), 8–9 October and Saturday the 10th (worked).
    assert_eq!(due_local(&d, &d.window, &id, "legal_limit").await, "2026-10-10 17:30");
    assert_eq!(due_local(&d, &d.window, &id, "legal_limit_reminder").await, "2026-09-30 09:00");

    // Tuesday 22 September: an expert review stops the clock with eight working days left
    // (23, 24, 28, 29, 30 September, 8, 9, 10 October).
    move_to(&d, "2026-09-22T10:00:00+08:00").await;
    let suspend = act("suspendReview", "SuspendReviewInput", json!({"caseId": id, "kind": "EXPERT_REVIEW", "reason": "压力容器改造需组织专家评审"}));
    let r = graphql_as(&d.http, &d.base, &d.approver, suspend.clone()).await;
    assert_eq!(state(&r, "suspendReview"), "suspended");
    assert!(timers(&d, &d.window, &id).await.is_empty(), "a stopped clock has no timers");
    // Through the holidays nothing fires; it resumes on Friday 9 October with the eight left:
    // Saturday the 10th (worked), 12–16, 19 and 20 October.
    move_to(&d, "2026-10-09T10:00:00+08:00").await;
    let r = graphql_as(&d.http, &d.base, &d.approver, act("resumeReview", "ResumeReviewInput", json!({"caseId": id, "note": "专家评审意见已出具"}))).await;
    assert_eq!(state(&r, "resumeReview"), "under_review");
    assert_eq!(due_local(&d, &d.window, &id, "legal_limit").await, "2026-10-20 17:30");
    let r = graphql_as(&d.http, &d.base, &d.approver, act("resumeReview", "ResumeReviewInput", json!({"caseId": id}))).await;
    assert_eq!(refusal(&r).0, "INVALID_TRANSITION", "resumed once: {r}");

    // The extension is the head's, once, up to ten working days, counted on from the limit.
    let extend = |days: i64| act("extendTimeLimit", "ExtendTimeLimitInput", json!({"caseId": id, "workingDays": days, "reason": "需征求消防部门意见"}));
    let r = graphql_as(&d.http, &d.base, &d.approver, extend(10)).await;
    assert_eq!(refusal(&r).0, "FORBIDDEN", "{r}");
    let r = graphql_as(&d.http, &d.base, &head, extend(11)).await;
    assert_eq!(refusal(&r), ("BAD_USER_INPUT".into(), "workingDays".into()), "{r}");
    let before = d.smtp.received().len();
    let r = graphql_as(&d.http, &d.base, &head, extend(10)).await;
    assert_eq!(state(&r, "extendTimeLimit"), "under_review");
    // 21–23, 26–30 October, 2–3 November.
    assert_eq!(due_local(&d, &d.window, &id, "legal_limit").await, "2026-11-03 17:30");
    let body = mail_with(&d, APPLICANT_MAIL, before, &id, "延长期限告知书").await;
    assert!(body.contains("2026年11月3日"), "{body}");
    let r = graphql_as(&d.http, &d.base, &head, extend(2)).await;
    assert_eq!(refusal(&r).0, "INVALID_TRANSITION", "once only: {r}");

    // In the officer's inbox; reminded three working days before (29 October, 09:00).
    let due_soon = json!({"query": "{ dueSoon(workingDays: 20) { instanceId timer } }"});
    let r = graphql_as(&d.http, &d.base, &d.approver, due_soon).await;
    assert!(r["data"]["dueSoon"].as_array().unwrap_or_else(|| panic!("{r}")).iter().any(|i| i["instanceId"] == id.as_str() && i["timer"] == "legal_limit"), "{r}");
    let before = d.smtp.received().len();
    move_to(&d, "2026-10-29T09:30:00+08:00").await;
    let body = mail_with(&d, DEPARTMENT_MAIL, before, &id, "法定审查时限").await;
    assert!(body.contains("2026年11月3日"), "{body}");
    // Past the limit: the department and the region's supervisors hear of it, once; the breach is
    // recorded against the department and counted.
    let before = d.smtp.received().len();
    move_to(&d, "2026-11-04T09:00:00+08:00").await;
    mail_with(&d, DEPARTMENT_MAIL, before, &id, "已超过法定审查时限").await;
    let q = json!({"query": "{ slaBreaches(first: 50) { taskId limit department } }"});
    let r = graphql_as(&d.http, &d.base, &d.supervisor, q).await;
    let breaches: Vec<&Value> = r["data"]["slaBreaches"].as_array().unwrap_or_else(|| panic!("{r}")).iter().filter(|b| b["taskId"] == id.as_str()).collect();
    assert_eq!(breaches.len(), 1, "{r}");
    assert_eq!((&breaches[0]["limit"], &breaches[0]["department"]), (&json!("legal_limit"), &json!("310101-SCJG")), "{r}");
    let q = json!({"query": "query($f: StatisticsFilter!) { statistics(filter: $f) { legalLimitsPassed } }", "variables": {"f": {"from": "2026-09-01T00:00:00Z", "to": "2026-12-01T00:00:00Z"}}});
    let r = graphql_as(&d.http, &d.base, &d.approver, q).await;
    // This case, and the demo's own accepted application nobody decided (its limit, 10 October).
    assert_eq!(r["data"]["statistics"]["legalLimitsPassed"], 2, "{r}");
}

#[tokio::test]
async fn an_excluded_item_in_a_bundle_runs_as_an_ordinary_child() {
    let d = Demo::start().await;
    let combined = token_as(&d.url, "window-00", &["--role", "window", "--department", "310101-ZWZX"]);
    let bundle = |mode: &str| {
        json!({"query": "mutation($i: OpenBundleInput!) { openBundle(input: $i) { bundle { id children { itemCode mode instanceId state } } } }",
            "variables": {"i": {"applicantUscc": FOOD_APPLICANT, "signedBy": "张伟",
                "items": [
                    {"itemCode": "310101-FOOD-01", "mode": "AFTER_THE_FACT", "materials": provided(&["M01", "M02", "M03"])},
                    {"itemCode": TZSB, "mode": mode, "materials": provided(&["M01", "M02"])}],
                "fields": [{"code": "premises_address", "value": "上海市黄浦区示例路 2 号"}, {"code": "business_area", "value": "80"}, {"code": "food_safety_manager", "value": "张伟"}]}}})
    };
    let r = graphql_as(&d.http, &d.base, &combined, bundle("AFTER_THE_FACT")).await;
    assert_eq!(r["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{r}");
    assert!(r["errors"][0]["message"].as_str().unwrap().contains("ORDINARY"), "{r}");
    let r = graphql_as(&d.http, &d.base, &combined, bundle("ORDINARY")).await;
    let children = r["data"]["openBundle"]["bundle"]["children"].as_array().unwrap_or_else(|| panic!("{r}"));
    let tzsb = children.iter().find(|c| c["itemCode"] == TZSB).unwrap_or_else(|| panic!("{r}"));
    assert_eq!((&tzsb["mode"], &tzsb["state"]), (&json!("ordinary"), &json!("intake")), "{r}");
    // Its department takes it from there: accepted, licensed; the bundle hears it has ended.
    let id = tzsb["instanceId"].as_str().unwrap().to_string();
    let r = graphql_as(&d.http, &d.base, &d.window, decide_acceptance(&id, json!({"decision": "ACCEPT"}))).await;
    assert_eq!(state(&r, "decideAcceptance"), "under_review");
    let issue = json!({"query": "mutation($id: ID!) { issueLicence(input: {caseId: $id}) { licenceNumber case { state } } }", "variables": {"id": id}});
    let r = graphql_as(&d.http, &d.base, &d.approver, issue).await;
    assert!(r["data"]["issueLicence"]["licenceNumber"].as_str().unwrap_or_else(|| panic!("{r}")).starts_with("TZ"), "{r}");
}
